# keys.sh - section_keys for run.sh (sourced): serving API keys.
#
# (a) The whole-process latency of `keywarden key get anthropic` (what Claude
#     Code's apiKeyHelper runs: exec, connect, hello, key.get, the broker's
#     decrypt and audit row, print) beside `secret-tool lookup service
#     anthropic-api-key account root` reading the same value from a headless
#     gnome-keyring, the way a keychain-based helper would.  Both run in one
#     D-Bus session, alternating which goes first, BENCH_KEYS_RUNS times each
#     after a short warm-up; the figure is the median of the per-pair ratios.
# (b) Broker key reads per second: loadgen's key.get against the bench broker
#     beside the echo server on the same socket type (compare_pair), at
#     BENCH_KEYS_CLIENTS connections.  The bench broker runs as root, so no
#     session is needed.
#
# The key is a fake of the real format; it travels on stdin and in a 0600
# file, never on a command line.
#
# Environment: BENCH_KEYS_RUNS (30), BENCH_KEYS_WARMUP (3),
# BENCH_KEYS_CLIENTS ("1 8").

KEYS_RUNS=${BENCH_KEYS_RUNS:-30}
KEYS_WARMUP=${BENCH_KEYS_WARMUP:-3}
KEYS_CLIENTS=${BENCH_KEYS_CLIENTS:-"1 8"}
KEYS_SERVICE=anthropic-api-key

# The measuring loop, run by bash inside dbus-run-session.  Arguments: CLI
# SOCKET KEYFILE RUNS WARMUP OUT_KW OUT_ST.  Each output line is microseconds.
# shellcheck disable=SC2016
KEYS_LOOP='
set -eu
cli=$1 sock=$2 keyfile=$3 runs=$4 warmup=$5 out_kw=$6 out_st=$7
eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets)"
secret-tool store --label="keywarden bench" service '"$KEYS_SERVICE"' account root <"$keyfile"
want=$(cat "$keyfile")
kw() { KEYWARDEN_SOCKET=$sock "$cli" key get anthropic; }
st() { secret-tool lookup service '"$KEYS_SERVICE"' account root; }
[ "$(kw)" = "$want" ] || { echo "keywarden key get gave another value" >&2; exit 1; }
[ "$(st)" = "$want" ] || { echo "secret-tool lookup gave another value" >&2; exit 1; }
for ((i = 0; i < warmup; i++)); do
	time_us kw >/dev/null
	time_us st >/dev/null
done
: >"$out_kw"
: >"$out_st"
for ((i = 0; i < runs; i++)); do
	if ((i % 2)); then
		a=$(time_us kw); b=$(time_us st)
	else
		b=$(time_us st); a=$(time_us kw)
	fi
	echo "$a" >>"$out_kw"
	echo "$b" >>"$out_st"
done
# The daemon --unlock started is ours (it prints no pid): end it by the pid
# that owns the Secret Service name on this private bus.
pid=$(dbus-send --session --dest=org.freedesktop.DBus --print-reply /org/freedesktop/DBus \
    org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null |
    awk '"'"'/uint32/ { print $2 }'"'"')
[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
'

keys_latency() {
	local d=$T/keys
	mkdir -p "$d/home" "$d/run"
	chmod 0700 "$d" "$d/run"
	env -i PATH=/usr/bin:/bin HOME="$d/home" XDG_RUNTIME_DIR="$d/run" \
	    dbus-run-session -- bash -c "$TIME_US_FN$KEYS_LOOP" keys-loop "$BUILD/keywarden" \
	    "$BROKER_SOCK" "$d/key" "$KEYS_RUNS" "$KEYS_WARMUP" "$T/keys.kw" "$T/keys.st" \
	    >"$d/loop.log" 2>&1 || {
		tail -n 20 "$d/loop.log" >&2
		die "the key get / secret-tool lookup loop failed (see above)"
	}
}

section_keys() {
	local t c rows="" sep="" kw_ms st_ms ratio n
	for t in dbus-run-session dbus-send gnome-keyring-daemon secret-tool; do
		command -v "$t" >/dev/null || die "$t is missing (contrib/deps.sh installs it)"
	done
	[ -x "$BUILD/keywarden" ] || die "$BUILD/keywarden is missing"
	mkdir -p "$T/keys"
	(umask 077 && printf 'sk-ant-api03-%s\n' \
	    "kwBench0123456789_-kwBench0123456789_-kwBench0123456789_-kwBench0123456789_-kwBench012345AA" \
	    >"$T/keys/key")
	KEYWARDEN_SOCKET=$BROKER_SOCK "$BUILD/keywarden" key set anthropic <"$T/keys/key" \
	    >/dev/null || die "keywarden key set anthropic failed"

	keys_latency
	n=$(wc -l <"$T/keys.kw")
	kw_ms=$(awk '{ printf "%.3f\n", $1 / 1e3 }' "$T/keys.kw" | median)
	st_ms=$(awk '{ printf "%.3f\n", $1 / 1e3 }' "$T/keys.st" | median)
	ratio=$(paste "$T/keys.kw" "$T/keys.st" | awk '{ if ($2 > 0) printf "%.4f\n", $1 / $2 }' | median)
	printf '\nkey get latency (whole process, as an apiKeyHelper runs it; %d runs each, medians)\n' "$n"
	printf '%-34s %10s\n' "reader" "median ms"
	printf '%-34s %10s\n' "keywarden key get (broker)" "$kw_ms"
	printf '%-34s %10s\n' "secret-tool lookup (gnome-keyring)" "$st_ms"
	printf '%-34s %10s\n' "ratio keywarden/secret-tool" "$ratio"

	printf '\nkey.get round trips (key read, decrypt, audit row; %s runs x %s s, medians)\n' \
	    "$RUNS" "$SECS"
	pair_header
	for c in $KEYS_CLIENTS; do
		compare_pair "$c" --op key.get --args '{"name":"anthropic"}'
		rows+="$sep$PAIR_JSON"
		sep=$',\n      '
	done
	json_key keys "$(printf '{
    "get_latency": {"runs": %d, "keywarden_ms": %s, "secret_tool_ms": %s, "ratio": %s},
    "reads": [
      %s
    ]
  }' "$n" "$kw_ms" "$st_ms" "$ratio" "$rows")"
	note "keys: get_latency.ratio = median over pairs of (keywarden key get anthropic) / (secret-tool lookup on a headless gnome-keyring) wall time, each a whole process run back to back in one D-Bus session; the broker answers from its file keystore (AES-256-GCM, local master key) and audits the read."
	note "keys: reads = loadgen key.get against the broker beside the same request echoed by the echo server, as in status_roundtrips; every broker read decrypts the key, updates last_used and commits an audit row."
}
