# scan.sh - section_scan for run.sh (sourced): `keywarden scan` over a
# generated source tree beside grep with the same rule regexes.
#
# The tree: BENCH_SCAN_FILES files (2000) of source-like text, BENCH_SCAN_MB
# (50) MB in all, where words the rules' keywords look for (token, secret,
# password, aws, postgres, ...) occur often without a secret, and one secret
# of each built-in rule's shape is planted in every 50th file (generated
# here: no key-shaped literal in the repository).  Every planted secret must
# be found at its file and line, or the section dies.
#
# Baselines, each over the same tree, LC_ALL=C (byte-wise, as keywarden is):
#   grep -rP  the built-in rules' regexes, read from policy/detect/rules.c
#             and joined into one alternation (named groups renumbered):
#             the same regexes, without keywarden's keyword prefilter;
#   grep -rE  the same regexes converted to ERE where possible (lookarounds
#             dropped, (?i) made -i for all, \s \w spelled as classes):
#             looser than the rules, a floor for a plain regex scan.
# Figures: MB/s of each (median of BENCH_SCAN_RUNS wall times, 3) and the
# ratios grep time / keywarden time from the same rounds (target from issue
# 14: at least 2 times grep).
#
# Environment: BENCH_SCAN_RUNS (3), BENCH_SCAN_MB (50), BENCH_SCAN_FILES (2000).

SCAN_RUNS=${BENCH_SCAN_RUNS:-3}
SCAN_MB=${BENCH_SCAN_MB:-50}
SCAN_FILES=${BENCH_SCAN_FILES:-2000}

# Writes the tree under $1, the planted list to $2 ("file\tline\trule"), and
# the two grep patterns to $3.P and $3.E.  Arguments: DIR PLANTED PATTERNS MB FILES RULES_C.
# shellcheck disable=SC2016
SCAN_GEN='
import ast, os, random, re, secrets, string, sys
out, planted, pats, mb, nfiles, rules_c = sys.argv[1:7]
mb, nfiles = int(mb), int(nfiles)
A = string.ascii_letters + string.digits
def r(n, al=A): return "".join(secrets.choice(al) for _ in range(n))
def b64u(n): return r(n, A + "_-")
makers = {
  "anthropic-api-key": lambda: "key = \"sk-ant-" + "api03-" + b64u(93) + "AA\"",
  "aws-access-key-id": lambda: "id = \"AKIA" + r(16, string.ascii_uppercase + "234567") + "\"",
  "github-token": lambda: "gh = \"ghp" + "_" + r(36) + "\"",
  "gitlab-token": lambda: "gl = \"glpat" + "-" + b64u(20) + "\"",
  "slack-token": lambda: "sl = \"xoxb" + "-" + r(12, string.digits) + "-" + r(24) + "\"",
  "stripe-key": lambda: "st = \"sk" + "_live_" + r(24) + "\"",
  "google-api-key": lambda: "gk = \"AIza" + b64u(35) + "\"",
  "jwt": lambda: "jwt = \"eyJ" + b64u(20) + ".eyJ" + b64u(40) + "." + b64u(43) + "\"",
  "database-url": lambda: "url = \"postgres://app:" + r(20) + "@db.internal:5432/app\"",
  "generic-secret": lambda: "password = \"" + r(22) + "x9Q\"",
}
words = ["token", "secret", "password", "api_key", "aws", "postgres", "credential", "auth",
  "client", "request", "response", "config", "value", "session", "user", "buffer"]
rnd = random.Random(14)
def line():
    k = rnd.randrange(10)
    w = rnd.choice(words)
    if k == 0: return "    %s = NULL;  /* the %s, read from the vault below */" % (w, w)
    if k == 1: return "    if (%s_len > MAX_%s) return -EINVAL;" % (w, w.upper())
    if k == 2: return "    log.debug(\"%s refreshed for %%s\", user.name)" % w
    return "    " + " ".join(rnd.choice(words) + "_" + str(rnd.randrange(1000))
                            for _ in range(rnd.randrange(4, 12))) + ";"
per = mb * 1000000 // nfiles
plist = []
names = sorted(makers)
for i in range(nfiles):
    d = os.path.join(out, "pkg%02d" % (i % 40), "mod%d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    rel = os.path.relpath(os.path.join(d, "f%04d.c" % i), out)
    lines, size = [], 0
    while size < per:
        lines.append(line()); size += len(lines[-1]) + 1
    if i % 50 == 0:
        rule = names[(i // 50) % len(names)]
        at = rnd.randrange(len(lines))
        lines.insert(at, makers[rule]())
        plist.append("%s\t%d\t%s" % (rel, at + 1, rule))
    with open(os.path.join(out, rel), "w") as f:
        f.write("\n".join(lines) + "\n")
with open(planted, "w") as f:
    f.write("\n".join(plist) + "\n")
# The rules regexes from rules.c: .regex = "..." "..." END_B64URL, ...
src = open(rules_c).read()
end = ast.literal_eval(re.search(r"#define END_B64URL\s+(\".*?\")\n", src).group(1))
regs = []
for m in re.finditer(r"\.regex = (.*?),\n", src, re.S):
    text = m.group(1).replace("END_B64URL", repr(end))
    regs.append("".join(ast.literal_eval(t) for t in re.findall(r"\"(?:[^\"\\]|\\.)*\"|\x27[^\x27]*\x27", text)))
def pcre(rx):
    rx = rx.replace("(?<secret>", "(?:")
    return "(?:" + rx + ")"
P = "|".join(pcre(x) for x in regs)
# One group named kind: renumber it as the only capturing group.
P = P.replace("(?<kind>", "(").replace("\\k<kind>", "\\1")
def ere(rx):
    rx = rx.replace("(?i)", "").replace("(?<secret>", "(").replace("(?<kind>", "(")
    rx = re.sub(r"\(\?[!=]([^()]|\([^()]*\))*\)", "", rx)
    rx = rx.replace("(?:", "(").replace("\\k<kind>", "[A-Z ]*")
    rx = rx.replace("[\\s\\S]{16,12000}?", ".*").replace("\\s", "[[:space:]]").replace("\\w", "[[:alnum:]_]")
    # Long bounded repeats make a large DFA: open them (looser still).
    rx = re.sub(r"\{(\d+),(\d+)\}", lambda m: m.group(0) if int(m.group(2)) <= 255 else "{%s,}" % m.group(1), rx)
    return "(" + rx + ")"
E = "|".join(ere(x) for x in regs)
open(pats + ".P", "w").write(P + "\n")
open(pats + ".E", "w").write(E + "\n")
'

section_scan() {
	local d=$T/scan kw=$BUILD/keywarden i t0 t1 missing mb kw_s gp_s ge_s
	mkdir -p "$d"
	/usr/bin/python3 -c "$SCAN_GEN" "$d/tree" "$d/planted" "$d/pattern" "$SCAN_MB" \
	    "$SCAN_FILES" "$HERE/../policy/detect/rules.c" || die "scan: generating the tree failed"
	mb=$(du -sb "$d/tree" | awk '{ printf "%.2f", $1 / 1e6 }')
	# Every planted secret, at its file and line, or the section dies.
	KEYWARDEN_CONFIG=$d/absent.json "$kw" scan --json "$d/tree" >"$d/found.json" 2>"$d/err" &&
	    die "scan: keywarden scan found nothing (exit 0)"
	missing=$(jq -r '.findings[] | "\(.file)\t\(.line)\t\(.rule)"' "$d/found.json" |
	    sed "s|^$d/tree/||" | sort >"$d/found"; sort "$d/planted" | comm -23 - "$d/found")
	[ -z "$missing" ] || die "scan: planted secrets not found: $missing"
	: >"$d/kw"; : >"$d/gp"; : >"$d/ge"
	for ((i = 0; i < SCAN_RUNS; i++)); do
		t0=$EPOCHREALTIME
		KEYWARDEN_CONFIG=$d/absent.json "$kw" scan "$d/tree" >/dev/null 2>&1 ||
		    [ $? -eq 1 ] || die "scan: keywarden scan failed"
		t1=$EPOCHREALTIME; echo $(( ${t1/./} - ${t0/./} )) >>"$d/kw"
		t0=$EPOCHREALTIME
		LC_ALL=C grep -rnP -f "$d/pattern.P" "$d/tree" >/dev/null ||
		    die "scan: grep -rP matched nothing"
		t1=$EPOCHREALTIME; echo $(( ${t1/./} - ${t0/./} )) >>"$d/gp"
		t0=$EPOCHREALTIME
		LC_ALL=C grep -rniE -f "$d/pattern.E" "$d/tree" >/dev/null ||
		    die "scan: grep -rE matched nothing"
		t1=$EPOCHREALTIME; echo $(( ${t1/./} - ${t0/./} )) >>"$d/ge"
	done
	kw_s=$(median <"$d/kw"); gp_s=$(median <"$d/gp"); ge_s=$(median <"$d/ge")
	local kw_mbs gp_mbs ge_mbs r_p r_e n_planted
	kw_mbs=$(awk -v m="$mb" -v t="$kw_s" 'BEGIN { printf "%.1f", m / (t / 1e6) }')
	gp_mbs=$(awk -v m="$mb" -v t="$gp_s" 'BEGIN { printf "%.1f", m / (t / 1e6) }')
	ge_mbs=$(awk -v m="$mb" -v t="$ge_s" 'BEGIN { printf "%.1f", m / (t / 1e6) }')
	r_p=$(paste "$d/gp" "$d/kw" | awk '{ if ($2 > 0) printf "%.3f\n", $1 / $2 }' | median)
	r_e=$(paste "$d/ge" "$d/kw" | awk '{ if ($2 > 0) printf "%.3f\n", $1 / $2 }' | median)
	n_planted=$(grep -c . "$d/planted")
	printf '\nkeywarden scan over %s MB in %d files (%d planted secrets, all found; %d runs, medians)\n' \
	    "$mb" "$SCAN_FILES" "$n_planted" "$SCAN_RUNS"
	printf '%-40s %10s %12s\n' "scanner" "MB/s" "grep/keywarden"
	printf '%-40s %10s %12s\n' "keywarden scan (all built-in rules)" "$kw_mbs" "-"
	printf '%-40s %10s %12s   (target: at least 2)\n' "grep -rP (the same regexes)" "$gp_mbs" "$r_p"
	printf '%-40s %10s %12s\n' "grep -rE (converted to ERE, looser)" "$ge_mbs" "$r_e"
	json_key scan "$(printf '{"mb": %s, "files": %d, "planted": %d, "runs": %d, "keywarden_mb_s": %s, "grep_p_mb_s": %s, "grep_e_mb_s": %s, "ratio_grep_p": %s, "ratio_grep_e": %s}' \
	    "$mb" "$SCAN_FILES" "$n_planted" "$SCAN_RUNS" "$kw_mbs" "$gp_mbs" "$ge_mbs" "$r_p" "$r_e")"
	note "scan: ratio_grep_p = median over rounds of (LC_ALL=C grep -rnP with the built-in rules' regexes joined into one alternation) / (keywarden scan, all built-in rules, default config) wall time over the same generated tree; ratio_grep_e the same with the regexes converted to ERE (lookarounds dropped: looser). Every planted secret was found at its file and line. Target from issue 14: at least 2 times grep."
}
