# sandbox.sh - section_sandbox for run.sh (sourced): what `keywarden run`
# adds to starting a command.
#
# The whole-process wall time of `keywarden run -- /bin/true` (connect,
# hello, sandbox.begin, detect, plan, fork, namespaces, Landlock, seccomp,
# sandbox.report, exec, wait) beside `/bin/true` alone, in one loop,
# alternating the order, BENCH_SANDBOX_RUNS times each after a warm-up.
# Reported: the medians, the median of the per-round differences (the
# milliseconds run adds; the issue's target is under 5) and of the
# per-round ratios.  The broker is the bench's (its owner needs no
# session); the run's cwd is a directory of its own under $T.
#
# Environment: BENCH_SANDBOX_RUNS (30), BENCH_SANDBOX_WARMUP (3).

SANDBOX_RUNS=${BENCH_SANDBOX_RUNS:-30}
SANDBOX_WARMUP=${BENCH_SANDBOX_WARMUP:-3}

# The loop, run by bash in the run's cwd.  Arguments: CLI SOCKET RUNS WARMUP OUTDIR.
# shellcheck disable=SC2016
SANDBOX_LOOP='
set -eu
cli=$1 sock=$2 runs=$3 warmup=$4 out=$5
export KEYWARDEN_SOCKET=$sock
sb() { "$cli" run -- /bin/true; }
fl() { /bin/true; }
sb || { echo "keywarden run -- /bin/true failed" >&2; exit 1; }
for ((i = 0; i < warmup; i++)); do time_us sb >/dev/null; time_us fl >/dev/null; done
: >"$out/run"; : >"$out/floor"
for ((i = 0; i < runs; i++)); do
	if ((i % 2)); then
		a=$(time_us sb); b=$(time_us fl)
	else
		b=$(time_us fl); a=$(time_us sb)
	fi
	echo "$a" >>"$out/run"; echo "$b" >>"$out/floor"
done
'

section_sandbox() {
	local d=$T/sandbox run_ms floor_ms added_ms ratio level
	mkdir -p "$d/cwd"
	(cd "$d/cwd" && bash -c "$TIME_US_FN$SANDBOX_LOOP" sandbox-loop "$BUILD/keywarden" \
	    "$BROKER_SOCK" "$SANDBOX_RUNS" "$SANDBOX_WARMUP" "$d") >"$d/loop.log" 2>&1 || {
		tail -n 20 "$d/loop.log" >&2
		die "the keywarden run -- /bin/true loop failed (see above)"
	}
	level=$(cd "$d/cwd" && KEYWARDEN_SOCKET=$BROKER_SOCK "$BUILD/keywarden" run --check --json |
	    jq -r .plan.level)
	run_ms=$(awk '{ printf "%.3f\n", $1 / 1e3 }' "$d/run" | median)
	floor_ms=$(awk '{ printf "%.3f\n", $1 / 1e3 }' "$d/floor" | median)
	added_ms=$(paste "$d/run" "$d/floor" | awk '{ printf "%.3f\n", ($1 - $2) / 1e3 }' | median)
	ratio=$(paste "$d/run" "$d/floor" | awk '{ if ($2 > 0) printf "%.4f\n", $1 / $2 }' | median)
	printf '\nkeywarden run start-up (whole processes, %d runs each, medians; level %s)\n' \
	    "$SANDBOX_RUNS" "$level"
	printf '%-36s %10s\n' "process" "median ms"
	printf '%-36s %10s\n' "keywarden run -- /bin/true" "$run_ms"
	printf '%-36s %10s\n' "/bin/true" "$floor_ms"
	printf '%-36s %10s   (target: under 5)\n' "added ms (median of differences)" "$added_ms"
	printf '%-36s %10s\n' "ratio run / true" "$ratio"
	json_key sandbox "$(printf '{"runs": %d, "level": %s, "run_ms": %s, "true_ms": %s, "added_ms": %s, "ratio_to_true": %s}' \
	    "$SANDBOX_RUNS" "$(json_str "$level")" "$run_ms" "$floor_ms" "$added_ms" "$ratio")"
	note "sandbox: added_ms = median over rounds of (keywarden run -- /bin/true) - (/bin/true) wall time, both whole processes, the broker the bench's; ratio_to_true the median of their ratios. Target from issue 15: under 5 ms added."
}
