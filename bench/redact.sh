# redact.sh - section_redact for run.sh (sourced): `keywarden redact` over a
# generated log, beside `sed -E` with the same five patterns (the seed's four
# filters and the anthropic-api-key rule) and beside a PCRE2 JIT loop of the
# same five (redact_pcre2: the library ceiling), in one run, alternating the
# order, BENCH_REDACT_RUNS times each.  The figures are MB/s and the medians
# of the per-round ratios.
#
# keywarden runs with the default configuration: all 15 built-in secret rules
# and the four filters, the validators (Luhn, SSN) and the overlap rules --
# more work than the baselines do.  The log's planted values all pass the
# validators, so the three outputs must be the same bytes; the section checks.
#
# Environment: BENCH_REDACT_MB (200), BENCH_REDACT_RUNS (3).

REDACT_MB=${BENCH_REDACT_MB:-200}
REDACT_RUNS=${BENCH_REDACT_RUNS:-3}

# The five patterns in sed's ERE (no \d or \s there).
REDACT_SED=(-E
	-e 's/[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}/[EMAIL]/g'
	-e 's/[0-9]{3}-[0-9]{3}-[0-9]{4}/[PHONE]/g'
	-e 's/[0-9]{3}-[0-9]{2}-[0-9]{4}/[SSN]/g'
	-e 's/[0-9]{4}[[:space:]-]?[0-9]{4}[[:space:]-]?[0-9]{4}[[:space:]-]?[0-9]{4}/[CARD]/g'
	-e 's/sk-ant-api03-[A-Za-z0-9_-]{20,200}/[REDACTED:anthropic-api-key]/g')

# A log of about MB megabytes: service lines, one in 8 with an email, one in
# 50 a phone, one in 200 an SSN and a card, one in 1000 an API key.
redact_make_log() {
	/usr/bin/python3 - "$1" "$2" <<'PY'
import random, string, sys
out, mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(2024)
al = string.ascii_letters + string.digits
def luhn_card():
    d = [4] + [rng.randrange(10) for _ in range(14)]
    s = sum(x if i % 2 else (2 * x - 9 if 2 * x > 9 else 2 * x)
            for i, x in enumerate(reversed(d)))
    d.append((10 - s % 10) % 10)
    t = "".join(map(str, d))
    return " ".join(t[i:i + 4] for i in range(0, 16, 4))
lines = []
for i in range(20000):
    ms, code = rng.randrange(1, 900), rng.choice((200, 200, 200, 201, 204, 304, 404, 500))
    l = ("2024-05-01T12:%02d:%02d.%03dZ INFO api.%s req=%08x path=/v1/items/%d status=%d took=%dms"
         % (i // 60 % 60, i % 60, i % 1000, rng.choice(("gateway", "worker", "auth")), rng.getrandbits(32),
            rng.randrange(1 << 20), code, ms))
    if i % 8 == 0:
        l += " user=%s.%s@example.com" % (rng.choice(("alice", "bob", "carol")), rng.randrange(1000))
    if i % 50 == 1:
        l += " callback=%03d-%03d-%04d" % (rng.randrange(200, 999), rng.randrange(200, 999), rng.randrange(10000))
    if i % 200 == 2:
        l += " ssn=%03d-%02d-%04d card=%s" % (rng.randrange(1, 600), rng.randrange(1, 99),
                                              rng.randrange(1, 9999), luhn_card())
    if i % 1000 == 3:
        l += " header=sk-ant-api03-%sAA" % "".join(rng.choice(al) for _ in range(93))
    lines.append(l + "\n")
block = "".join(lines).encode()
with open(out, "wb") as f:
    for _ in range(max(1, mb * 1048576 // len(block))):
        f.write(block)
PY
}

# Seconds one run takes, its output to FILE.  Arguments: OUT CMD...
redact_time() {
	local out=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@" <"$REDACT_LOG" >"$out" || die "$* failed"
	t1=$EPOCHREALTIME
	awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN { printf "%.4f\n", (b - a) / 1e6 }'
}

section_redact() {
	local d=$T/redact i kw sd pc mb kw_mbs sd_mbs pc_mbs r_sed r_pcre
	mkdir -p "$d"
	[ -x "$BUILD/bench/redact_pcre2" ] || die "$BUILD/bench/redact_pcre2 is missing"
	REDACT_LOG=$d/log
	redact_make_log "$REDACT_LOG" "$REDACT_MB"
	mb=$(awk -v b="$(stat -c %s "$REDACT_LOG")" 'BEGIN { printf "%.1f\n", b / 1048576 }')
	# An empty configuration: the defaults, wherever the bench runs.
	printf '{}\n' >"$d/config.json"
	chmod 600 "$d/config.json"
	: >"$d/kw"; : >"$d/sed"; : >"$d/pcre"
	for ((i = 0; i < REDACT_RUNS; i++)); do
		if ((i % 2)); then
			redact_time "$d/out.kw" "$BUILD/keywarden" --config "$d/config.json" redact >>"$d/kw"
			redact_time "$d/out.sed" sed "${REDACT_SED[@]}" >>"$d/sed"
			redact_time "$d/out.pcre" "$BUILD/bench/redact_pcre2" >>"$d/pcre"
		else
			redact_time "$d/out.pcre" "$BUILD/bench/redact_pcre2" >>"$d/pcre"
			redact_time "$d/out.sed" sed "${REDACT_SED[@]}" >>"$d/sed"
			redact_time "$d/out.kw" "$BUILD/keywarden" --config "$d/config.json" redact >>"$d/kw"
		fi
	done
	cmp -s "$d/out.kw" "$d/out.pcre" || die "keywarden redact and redact_pcre2 disagree"
	cmp -s "$d/out.kw" "$d/out.sed" || die "keywarden redact and sed -E disagree"
	kw=$(median <"$d/kw"); sd=$(median <"$d/sed"); pc=$(median <"$d/pcre")
	kw_mbs=$(awk -v m="$mb" -v s="$kw" 'BEGIN { printf "%.1f\n", m / s }')
	sd_mbs=$(awk -v m="$mb" -v s="$sd" 'BEGIN { printf "%.1f\n", m / s }')
	pc_mbs=$(awk -v m="$mb" -v s="$pc" 'BEGIN { printf "%.1f\n", m / s }')
	r_sed=$(paste "$d/sed" "$d/kw" | awk '{ if ($2 > 0) printf "%.3f\n", $1 / $2 }' | median)
	r_pcre=$(paste "$d/pcre" "$d/kw" | awk '{ if ($2 > 0) printf "%.3f\n", $1 / $2 }' | median)
	printf '\nredact: %s MiB log, five patterns (4 filters + anthropic-api-key); %d runs each, medians\n' \
	    "$mb" "$REDACT_RUNS"
	printf '%-44s %10s %10s\n' "program" "seconds" "MiB/s"
	printf '%-44s %10s %10s\n' "keywarden redact (all 19 default rules)" "$kw" "$kw_mbs"
	printf '%-44s %10s %10s\n' "sed -E (5 patterns)" "$sd" "$sd_mbs"
	printf '%-44s %10s %10s\n' "redact_pcre2 (5 patterns, PCRE2 JIT)" "$pc" "$pc_mbs"
	printf '%-44s %10s   (target: at least 5)\n' "speed-up over sed (sed time / keywarden)" "$r_sed"
	printf '%-44s %10s   (1 = the library ceiling)\n' "fraction of PCRE2 JIT (pcre2 / keywarden)" "$r_pcre"
	json_key redact "$(printf '{"mib": %s, "runs": %d, "keywarden_s": %s, "sed_s": %s, "pcre2_s": %s, "keywarden_mib_s": %s, "sed_mib_s": %s, "pcre2_mib_s": %s, "ratio_over_sed": %s, "ratio_of_pcre2": %s}' \
	    "$mb" "$REDACT_RUNS" "$kw" "$sd" "$pc" "$kw_mbs" "$sd_mbs" "$pc_mbs" "$r_sed" "$r_pcre")"
	note "redact: ratio_over_sed = median over rounds of (sed -E time) / (keywarden redact time) on the same generated log, outputs checked byte for byte equal; target from issue 14: at least 5. ratio_of_pcre2 = (redact_pcre2 time) / (keywarden time): 1 would be the PCRE2 JIT ceiling for the same five patterns, with none of keywarden's other 14 rules, validators or overlap rules."
	rm -f "$d"/out.* "$REDACT_LOG"
}
