#!/bin/bash
# run.sh - the body of `make bench`: keywardend against a bare echo server
# on the same kind of socket, measured back to back in one run.  Machines
# here are shared and noisy, so the figures that mean something are the
# ratios broker/echo, each a median over several runs (TESTING.md, Timing).
#
# Environment (all optional):
#   BUILD           build dir with keywardend and bench/{loadgen,echo}
#                   (default: ../build next to this script)
#   BENCH_RUNS      runs per figure; the median is reported (3)
#   BENCH_SECONDS   measured seconds per run (1.5)
#   BENCH_WARMUP    unmeasured seconds before each run (0.25)
#   BENCH_CLIENTS   concurrent connections to try ("1 8 64 256"): status and
#                   the audited requests
#   BENCH_SECTIONS  sections to run, in order ("status_roundtrips audit process
#                   login memory policy redact scan sandbox apiproxy")
#   BENCH_OUT       where the JSON goes ($BUILD/bench.json)
#
# To add a figure: write section_NAME, which measures (compare_pair does a
# broker-vs-echo comparison for any op), prints its table and calls
# json_key NAME VALUE, and note TEXT for anything a reader must know; then
# add NAME to the default BENCH_SECTIONS.  The broker and the echo server
# are up for every section at $BROKER_SOCK and $ECHO_SOCK.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$HERE/../build}
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-1.5}
WARMUP=${BENCH_WARMUP:-0.25}
CLIENTS=${BENCH_CLIENTS:-"1 8 64 256"}
SECTIONS=${BENCH_SECTIONS:-"status_roundtrips audit process login memory policy redact scan sandbox apiproxy"}
OUT=${BENCH_OUT:-$BUILD/bench.json}

BROKER=$BUILD/keywardend
LOADGEN=$BUILD/bench/loadgen
ECHO=$BUILD/bench/echo
READY_TIMEOUT=10	# seconds a daemon gets to accept connections
STOP_POLLS=100		# x 0.05 s for a daemon to exit after SIGTERM

DAEMON_PIDS=()
DAEMON_NAMES=()
LAST_DAEMON=	# index of the daemon start_daemon started last
JSON_KEYS=()
NOTES=()
T=

die() {
	echo "bench: $*" >&2
	exit 1
}

# A function for the loops the sections run in a shell of their own: TIME_US
# CMD prints the microseconds one whole run of CMD takes (output discarded).
# shellcheck disable=SC2016
TIME_US_FN='
time_us() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$1" >/dev/null || { echo "$1 failed" >&2; exit 1; }
	t1=$EPOCHREALTIME
	echo $(( ${t1/./} - ${t0/./} ))
}
'

# ---- daemons -------------------------------------------------------------

# start_daemon NAME SOCKET CMD...: run CMD in the background (stderr to
# $T/NAME.log) and return once SOCKET accepts connections.
start_daemon() {
	local name=$1 sock=$2 pid
	shift 2
	"$@" 2>"$T/$name.log" </dev/null &
	pid=$!
	LAST_DAEMON=${#DAEMON_PIDS[@]}
	DAEMON_PIDS+=("$pid")
	DAEMON_NAMES+=("$name")
	if ! "$LOADGEN" --wait-socket "$sock" --timeout "$READY_TIMEOUT" \
	    --pid "$pid"; then
		tail -n 20 "$T/$name.log" >&2 || true
		die "$name did not start listening on $sock"
	fi
}

# stop_daemon INDEX: SIGTERM, a bounded wait, then SIGKILL.  The broker
# must exit 0 after SIGTERM (SPEC); say so when it does not.
stop_daemon() {
	local pid=${DAEMON_PIDS[$1]} name=${DAEMON_NAMES[$1]} i rc=0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < STOP_POLLS; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null && echo "bench: $name killed" >&2
	wait "$pid" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "bench: $name exited with status $rc after SIGTERM" >&2
		tail -n 5 "$T/$name.log" >&2 || true
	fi
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	# A failed run is often the broker's doing: show what it said.
	if [ "$rc" -ne 0 ] && [ -s "$T/keywardend.log" ]; then
		echo "bench: last lines of keywardend's log:" >&2
		tail -n 10 "$T/keywardend.log" >&2 || true
	fi
	for ((i = ${#DAEMON_PIDS[@]} - 1; i >= 0; i--)); do
		stop_daemon "$i"
	done
	[ -n "$T" ] && rm -rf "$T"
	exit "$rc"
}

start_broker() {
	BROKER_SOCK=$T/broker.sock
	# hello and status are ordinary actions, recorded only when listed: listed
	# here so every status round trip is an audited (committed) request.
	(umask 077 && printf '{"broker":{"socket":"%s","dataDir":"%s"},"security":{"audit":{"logActions":["hello","status"]}}}\n' \
	    "$BROKER_SOCK" "$T/lib" >"$T/config.json")
	chmod 0600 "$T/config.json"
	# A notify socket or config from the caller's environment is not ours.
	start_daemon keywardend "$BROKER_SOCK" env -u NOTIFY_SOCKET \
	    -u KEYWARDEN_CONFIG -u KEYWARDEN_SOCKET \
	    "$BROKER" --config "$T/config.json"
}

start_echo() {
	ECHO_SOCK=$T/echo.sock
	# Room for section_memory's idle connections.
	start_daemon echo "$ECHO_SOCK" "$ECHO" --socket "$ECHO_SOCK" \
	    --max-seconds 1800 --max-clients 8192
	ECHO_PID=${DAEMON_PIDS[$LAST_DAEMON]}
}

# ensure_bench_key: the bench broker holds key anthropic (a fake of the real
# format, kept in the 0600 file BENCH_KEY_FILE; never on a command line).
ensure_bench_key() {
	BENCH_KEY_FILE=$T/bench.key
	[ -s "$BENCH_KEY_FILE" ] && return 0
	(umask 077 && printf 'sk-ant-api03-%s\n' \
	    "kwBench0123456789_-kwBench0123456789_-kwBench0123456789_-kwBench0123456789_-kwBench012345AA" \
	    >"$BENCH_KEY_FILE")
	KEYWARDEN_SOCKET=$BROKER_SOCK "$BUILD/keywarden" key set anthropic <"$BENCH_KEY_FILE" \
	    >/dev/null || die "keywarden key set anthropic failed"
}

# ---- measuring and arithmetic --------------------------------------------

# measure LABEL SOCKET CLIENTS [LOADGEN-OPTION...]: one run's JSON line.
measure() {
	local label=$1 sock=$2 clients=$3
	shift 3
	"$LOADGEN" --socket "$sock" --clients "$clients" --seconds "$SECS" \
	    --warmup "$WARMUP" --label "$label" "$@" ||
	    die "loadgen failed ($label, $clients clients)"
}

# col FILE KEY: KEY's number from each JSON line of FILE, one per line.
col() {
	sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" "$1"
}

# median: of the numbers on stdin.
median() {
	sort -g | awk '{ v[NR] = $1 }
	    END { if (NR == 0) exit 1
		  if (NR % 2) print v[(NR + 1) / 2]
		  else printf "%.4g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio_median FILE_A FILE_B KEY: median over runs of A's KEY / B's KEY.
ratio_median() {
	paste <(col "$1" "$3") <(col "$2" "$3") |
	    awk '{ if ($2 > 0) printf "%.4f\n", $1 / $2 }' | median
}

# process_ratio FILE A B: median over rounds of A / B in a spawntime line.
process_ratio() {
	jq -r --arg a "$2" --arg b "$3" \
	    '[.[$a + "_runs_us"], .[$b + "_runs_us"]] | transpose[] | select(.[1] > 0) | .[0] / .[1]' \
	    "$1" | median
}

# json_list FILE KEY: [v1,v2,...] of KEY over FILE's lines.
json_list() {
	printf '[%s]' "$(col "$1" "$2" | paste -sd, -)"
}

# ---- output ----------------------------------------------------------------

# json_key NAME VALUE: a top-level member of bench.json (VALUE is JSON).
json_key() {
	JSON_KEYS+=("$(printf '"%s": %s' "$1" "$2")")
}

# json_str TEXT: TEXT as a JSON string.
json_str() {
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

note() {
	NOTES+=("$1")
}

write_json() {
	local i notes="" sep=""
	for ((i = 0; i < ${#NOTES[@]}; i++)); do
		notes+="$sep$(json_str "${NOTES[$i]}")"
		sep=", "
	done
	json_key notes "[$notes]"
	{
		printf '{\n'
		for ((i = 0; i < ${#JSON_KEYS[@]}; i++)); do
			printf '  %s%s\n' "${JSON_KEYS[$i]}" \
			    "$( ((i + 1 < ${#JSON_KEYS[@]})) && echo ,)"
		done
		printf '}\n'
	} >"$OUT.tmp"
	mv "$OUT.tmp" "$OUT"
}

# ---- broker vs echo ------------------------------------------------------

# compare_pair CLIENTS [LOADGEN-OPTION...]: RUNS runs against each server,
# alternating which goes first so a drift in machine load hits both alike.
# Prints a table row; leaves the row's JSON object in PAIR_JSON.
compare_pair() {
	local c=$1 i b e
	shift
	: >"$T/b.runs"
	: >"$T/e.runs"
	for ((i = 1; i <= RUNS; i++)); do
		if ((i % 2)); then
			b=$(measure broker "$BROKER_SOCK" "$c" "$@")
			e=$(measure echo "$ECHO_SOCK" "$c" "$@")
		else
			e=$(measure echo "$ECHO_SOCK" "$c" "$@")
			b=$(measure broker "$BROKER_SOCK" "$c" "$@")
		fi
		echo "$b" >>"$T/b.runs"
		echo "$e" >>"$T/e.runs"
	done
	local b_rps b_p50 b_p99 e_rps e_p50 e_p99 ratio p50_ratio
	b_rps=$(col "$T/b.runs" rps | median)
	e_rps=$(col "$T/e.runs" rps | median)
	b_p50=$(col "$T/b.runs" p50_us | median)
	b_p99=$(col "$T/b.runs" p99_us | median)
	e_p50=$(col "$T/e.runs" p50_us | median)
	e_p99=$(col "$T/e.runs" p99_us | median)
	ratio=$(ratio_median "$T/b.runs" "$T/e.runs" rps)
	p50_ratio=$(ratio_median "$T/b.runs" "$T/e.runs" p50_us)
	printf '%7s %12.0f %12.0f %7.3f %17s %15s %9.2f\n' "$c" "$b_rps" \
	    "$e_rps" "$ratio" "$b_p50/$b_p99" "$e_p50/$e_p99" "$p50_ratio"
	PAIR_JSON=$(printf '{"clients": %s, "broker_rps": %s, "echo_rps": %s, "ratio": %s, "broker_p50_us": %s, "broker_p99_us": %s, "echo_p50_us": %s, "echo_p99_us": %s, "p50_ratio": %s, "broker_rps_runs": %s, "echo_rps_runs": %s}' \
	    "$c" "$b_rps" "$e_rps" "$ratio" "$b_p50" "$b_p99" "$e_p50" \
	    "$e_p99" "$p50_ratio" "$(json_list "$T/b.runs" rps)" \
	    "$(json_list "$T/e.runs" rps)")
}

# A literal: printf pads by bytes, and µ is two of them in UTF-8.
pair_header() {
	echo "clients  broker rt/s    echo rt/s   ratio broker p50/p99 µs echo p50/p99 µs p50 ratio"
}

# ---- sections --------------------------------------------------------------

section_status_roundtrips() {
	local c rows="" sep=""
	printf '\nstatus round trips (one request in flight per connection; %s runs x %s s, medians)\n' \
	    "$RUNS" "$SECS"
	pair_header
	for c in $CLIENTS; do
		compare_pair "$c" --op status
		rows+="$sep$PAIR_JSON"
		sep=$',\n    '
	done
	json_key status_roundtrips "[
    $rows
  ]"
	note "status_roundtrips: ratio = median over runs of broker rt/s / echo rt/s and p50_ratio = median of broker p50 / echo p50, each pair measured back to back; absolute rt/s and microseconds depend on the machine and its load, so compare ratios."
	note "status_roundtrips: each status is audited (a committed SQLite row in $(stat -f -c %T "$T") under the temp dir) before the reply; the echo server only copies the frame back."
}

# Sections kept in files of their own.
# shellcheck source=login.sh
. "$HERE/login.sh"
# shellcheck source=process.sh
. "$HERE/process.sh"
# shellcheck source=memory.sh
. "$HERE/memory.sh"
# shellcheck source=audit.sh
. "$HERE/audit.sh"
# shellcheck source=policy.sh
. "$HERE/policy.sh"
# shellcheck source=redact.sh
. "$HERE/redact.sh"
# shellcheck source=scan.sh
. "$HERE/scan.sh"
# shellcheck source=sandbox.sh
. "$HERE/sandbox.sh"
# shellcheck source=apiproxy.sh
. "$HERE/apiproxy.sh"

# ---- main ----------------------------------------------------------------

main() {
	local s cpu
	for s in "$BROKER" "$LOADGEN" "$ECHO"; do
		[ -x "$s" ] || die "$s is missing: run make (and make -C bench)"
	done
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	T=$(mktemp -d)
	start_broker
	start_echo
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	printf 'keywarden bench: %s cpus (%s), Linux %s, %s per run after %s s warmup, loadgen %s\n' \
	    "$(nproc)" "${cpu:-unknown CPU}" "$(uname -r)" "${SECS} s" "$WARMUP" "one thread, epoll"
	json_key meta "$(printf '{"cpus": %s, "cpu_model": %s, "kernel": %s, "date": %s, "runs": %s, "seconds": %s, "warmup": %s, "clients": %s, "loadavg_start": %s}' \
	    "$(nproc)" "$(json_str "${cpu:-unknown}")" "$(json_str "$(uname -r)")" \
	    "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$RUNS" "$SECS" "$WARMUP" \
	    "$(json_str "$CLIENTS")" "$(cut -d' ' -f1 /proc/loadavg)")"
	for s in $SECTIONS; do
		declare -F "section_$s" >/dev/null || die "no section $s"
		"section_$s"
	done
	note "loadgen is one thread keeping one request in flight per connection; with $(nproc) cores it and the server share them, so at high client counts the loadgen can be what limits echo rt/s."
	json_key meta_end "$(printf '{"loadavg_end": %s}' "$(cut -d' ' -f1 /proc/loadavg)")"
	write_json
	printf '\nwrote %s\n' "$OUT"
	# The README's performance table, when every figure it shows was measured.
	if [[ " $SECTIONS " == *" audit "* && " $SECTIONS " == *" process "* ]]; then
		printf '\nfor the README (bench/summary.sh %s):\n\n' "$OUT"
		"$HERE/summary.sh" "$OUT" || true
	fi
}

main "$@"
