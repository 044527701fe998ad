# policy.sh - section_policy for run.sh (sourced): deciding an agent's tool calls.
#
# In-process decisions per second: policy_decide decides a 200-byte command
# line against a 100-rule policy on one core, lexically and with the file
# system asked, beside parsing the same line alone.  (The whole-process
# latency of `keywarden hook claude` is section_process's, bench/process.sh,
# beside key get, the spawn floor and secret-tool.)
#
# Environment: BENCH_POLICY_SECONDS (1.5).

POLICY_SECS=${BENCH_POLICY_SECONDS:-1.5}

section_policy() {
	local lex fs
	[ -x "$BUILD/bench/policy_decide" ] || die "$BUILD/bench/policy_decide is missing"
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
    "decisions": {"lexical": %s, "fs": %s}
  }' "$lex" "$fs")"
	note "policy: decisions = policy_decide, in process, one core: kw_policy_command on a 200-byte line with 100 rules, beside kw_sh_parse of the same line (ratio_to_parse); fs asks the file system for links and globs as the broker does. Target from issue 13: over 100k decisions/s."
}
