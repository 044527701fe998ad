# policy.sh - section_policy for run.sh (sourced): deciding an agent's tool calls.
#
# (a) The whole-process latency of `keywarden hook claude` answering a
#     PreToolUse for Bash "git status" (what Claude Code runs before every
#     tool call: exec, read the hook JSON, connect, hello, policy.check --
#     the broker parses the line, decides it, audits it -- and the JSON
#     answer), beside `keywarden key get anthropic` (the apiKeyHelper, the
#     other process Claude Code runs) and the spawn floor /bin/true, in one
#     loop, alternating the order, BENCH_POLICY_RUNS times each after a
#     warm-up.  The figures are medians of the per-round ratios.
# (b) In-process decisions per second: policy_decide decides a 200-byte
#     command line against a 100-rule policy on one core, lexically and
#     with the file system asked, beside parsing the same line alone.
#
# Environment: BENCH_POLICY_RUNS (30), BENCH_POLICY_WARMUP (3),
# BENCH_POLICY_SECONDS (1.5).

POLICY_RUNS=${BENCH_POLICY_RUNS:-30}
POLICY_WARMUP=${BENCH_POLICY_WARMUP:-3}
POLICY_SECS=${BENCH_POLICY_SECONDS:-1.5}

# The loop, run by bash.  Arguments: CLI SOCKET HOOKJSON RUNS WARMUP OUTDIR.
# shellcheck disable=SC2016
POLICY_LOOP='
set -eu
cli=$1 sock=$2 hook=$3 runs=$4 warmup=$5 out=$6
export KEYWARDEN_SOCKET=$sock
hk() { "$cli" hook claude <"$hook"; }
kg() { "$cli" key get anthropic; }
fl() { /bin/true; }
hk | grep -q "\"permissionDecision\":\"allow\"" || { echo "hook claude did not allow git status" >&2; exit 1; }
for ((i = 0; i < warmup; i++)); do time_us hk >/dev/null; time_us kg >/dev/null; done
: >"$out/hook"; : >"$out/get"; : >"$out/floor"
for ((i = 0; i < runs; i++)); do
	if ((i % 2)); then
		a=$(time_us hk); b=$(time_us kg); c=$(time_us fl)
	else
		c=$(time_us fl); b=$(time_us kg); a=$(time_us hk)
	fi
	echo "$a" >>"$out/hook"; echo "$b" >>"$out/get"; echo "$c" >>"$out/floor"
done
'

section_policy() {
	local d=$T/policy hook_ms get_ms floor_ms r_get r_floor lex fs
	mkdir -p "$d"
	[ -x "$BUILD/bench/policy_decide" ] || die "$BUILD/bench/policy_decide is missing"
	printf '{"session_id": "bench", "transcript_path": "/dev/null", "cwd": "%s", "permission_mode": "default", "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "git status"}, "tool_use_id": "toolu_bench"}\n' \
	    "$d" >"$d/hook.json"
	# section_keys stored the key; store it here too when it ran alone.
	if ! KEYWARDEN_SOCKET=$BROKER_SOCK "$BUILD/keywarden" key get anthropic >/dev/null 2>&1; then
		(umask 077 && printf 'sk-ant-api03-%s\n' \
		    "kwBench0123456789_-kwBench0123456789_-kwBench0123456789_-kwBench0123456789_-kwBench012345AA" \
		    >"$d/key")
		KEYWARDEN_SOCKET=$BROKER_SOCK "$BUILD/keywarden" key set anthropic <"$d/key" \
		    >/dev/null || die "keywarden key set anthropic failed"
	fi
	bash -c "$TIME_US_FN$POLICY_LOOP" policy-loop "$BUILD/keywarden" "$BROKER_SOCK" "$d/hook.json" \
	    "$POLICY_RUNS" "$POLICY_WARMUP" "$d" >"$d/loop.log" 2>&1 || {
		tail -n 20 "$d/loop.log" >&2
		die "the hook claude / key get loop failed (see above)"
	}
	hook_ms=$(awk '{ printf "%.3f\n", $1 / 1e3 }' "$d/hook" | median)
	get_ms=$(awk '{ printf "%.3f\n", $1 / 1e3 }' "$d/get" | median)
	floor_ms=$(awk '{ printf "%.3f\n", $1 / 1e3 }' "$d/floor" | median)
	r_get=$(paste "$d/hook" "$d/get" | awk '{ if ($2 > 0) printf "%.4f\n", $1 / $2 }' | median)
	r_floor=$(paste "$d/hook" "$d/floor" | awk '{ if ($2 > 0) printf "%.4f\n", $1 / $2 }' | median)
	printf '\nhook claude latency (whole process, PreToolUse Bash "git status"; %d runs each, medians)\n' \
	    "$POLICY_RUNS"
	printf '%-36s %10s\n' "process" "median ms"
	printf '%-36s %10s\n' "keywarden hook claude" "$hook_ms"
	printf '%-36s %10s\n' "keywarden key get anthropic" "$get_ms"
	printf '%-36s %10s\n' "/bin/true (spawn floor)" "$floor_ms"
	printf '%-36s %10s   (target: at most 1.5)\n' "ratio hook / key get" "$r_get"
	printf '%-36s %10s\n' "ratio hook / spawn floor" "$r_floor"

	lex=$("$BUILD/bench/policy_decide" "$POLICY_SECS")
	fs=$("$BUILD/bench/policy_decide" "$POLICY_SECS" fs)
	printf '\nin-process decisions (200-byte command line, 100-rule policy, one core)\n'
	printf '%-36s %12s %12s %8s\n' "mode" "decisions/s" "parses/s" "ratio"
	printf '%-36s %12s %12s %8s\n' "lexical" "$(jq -r .decisions_per_s <<<"$lex")" \
	    "$(jq -r .parses_per_s <<<"$lex")" "$(jq -r .ratio_to_parse <<<"$lex")"
	printf '%-36s %12s %12s %8s\n' "file system asked (links, globs)" \
	    "$(jq -r .decisions_per_s <<<"$fs")" "$(jq -r .parses_per_s <<<"$fs")" \
	    "$(jq -r .ratio_to_parse <<<"$fs")"
	json_key policy "$(printf '{
    "hook_latency": {"runs": %d, "hook_ms": %s, "key_get_ms": %s, "floor_ms": %s, "ratio_to_key_get": %s, "ratio_to_floor": %s},
    "decisions": {"lexical": %s, "fs": %s}
  }' "$POLICY_RUNS" "$hook_ms" "$get_ms" "$floor_ms" "$r_get" "$r_floor" "$lex" "$fs")"
	note "policy: hook_latency.ratio_to_key_get = median over rounds of (keywarden hook claude, PreToolUse Bash git status) / (keywarden key get anthropic) wall time, both whole processes against the bench broker; ratio_to_floor divides by spawning /bin/true. Target from issue 13: at most 1.5 times key get."
	note "policy: decisions = policy_decide, in process, one core: kw_policy_command on a 200-byte line with 100 rules, beside kw_sh_parse of the same line (ratio_to_parse); fs asks the file system for links and globs as the broker does. Target from issue 13: over 100k decisions/s."
}
