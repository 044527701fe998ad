# process.sh - section_process for run.sh (sourced): the commands Claude Code
# starts as whole processes, beside the spawn floor and a keychain lookup.
#
#   key get    `keywarden key get anthropic` (the apiKeyHelper: exec,
#              connect, hello, key.get -- the broker's decrypt and audit
#              row -- print)
#   hook       `keywarden hook claude` with a PreToolUse Bash "git status"
#              on stdin (before every tool call: read the JSON, connect,
#              hello, policy.check -- parse, decide, audit -- answer)
#   start      `keywarden --version`: the CLI's own start-up and exit, no
#              broker (what key get and hook cost before they connect)
#   floor      bench/spawn_floor, a C program that does nothing, linked
#              like any C program: exec, the loader, libc, exit
#   secret-tool `secret-tool lookup` of the same key from a headless
#              gnome-keyring in a D-Bus session of its own (what a
#              keychain-based helper costs)
#
# bench/spawntime starts all of them the same way (posix_spawn, stdout to
# /dev/null, the hook JSON on stdin), one round after another with the
# order rotating, BENCH_PROCESS_RUNS rounds after a warm-up round; each
# ratio is the median of the per-round ratios.  Targets (issue 17): key get
# and hook at most 1.6 x the floor; (issue 13) hook at most 1.5 x key get.
# When secret-tool cannot run here, the figure says why instead.
#
# The bench broker runs as root, which needs no session: the CLI still
# looks for a cached token (keyring search) but finds none to attach.
#
# Environment: BENCH_PROCESS_RUNS (60).

PROCESS_RUNS=${BENCH_PROCESS_RUNS:-60}
KEYS_SERVICE=anthropic-api-key

# The loop inside dbus-run-session.  Arguments: SPAWNTIME RUNS HOOKJSON
# KEYFILE OUT, then the spawntime commands.  Prints spawntime's line to OUT.
# shellcheck disable=SC2016
PROCESS_LOOP='
set -eu
spawntime=$1 runs=$2 hook=$3 keyfile=$4 out=$5
shift 5
eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets)"
stop_keyring() {
	# The daemon --unlock started is ours (it prints no pid): end it by the
	# pid that owns the Secret Service name on this private bus.
	pid=$(dbus-send --session --dest=org.freedesktop.DBus --print-reply /org/freedesktop/DBus \
	    org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null |
	    awk '"'"'/uint32/ { print $2 }'"'"')
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
}
trap stop_keyring EXIT
secret-tool store --label="keywarden bench" service '"$KEYS_SERVICE"' account root <"$keyfile"
[ "$(secret-tool lookup service '"$KEYS_SERVICE"' account root)" = "$(cat "$keyfile")" ] ||
    { echo "secret-tool lookup gave another value" >&2; exit 1; }
"$spawntime" --runs "$runs" --stdin "$hook" "$@" \
    -- secret_tool "$(command -v secret-tool)" lookup service '"$KEYS_SERVICE"' account root >"$out"
'

section_process() {
	local d=$T/process st_why="" st_json t cmds kg_ms hk_ms fl_ms st_ms r_kg r_hk r_hk_kg r_kg_st r_hk_st
	local sa_ms r_sa
	mkdir -p "$d/home" "$d/run"
	chmod 0700 "$d" "$d/run"
	for t in "$BUILD/bench/spawntime" "$BUILD/bench/spawn_floor" "$BUILD/keywarden"; do
		[ -x "$t" ] || die "$t is missing"
	done
	ensure_bench_key
	cp "$BENCH_KEY_FILE" "$d/key"
	printf '{"session_id": "bench", "transcript_path": "/dev/null", "cwd": "%s", "permission_mode": "default", "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "git status"}, "tool_use_id": "toolu_bench"}\n' \
	    "$d" >"$d/hook.json"
	KEYWARDEN_SOCKET=$BROKER_SOCK "$BUILD/keywarden" hook claude <"$d/hook.json" |
	    grep -q '"permissionDecision":"allow"' || die "hook claude did not allow git status"
	cmds=(-- floor "$BUILD/bench/spawn_floor"
	    -- start "$BUILD/keywarden" --version
	    -- key_get "$BUILD/keywarden" key get anthropic
	    -- hook "$BUILD/keywarden" hook claude)
	for t in dbus-run-session dbus-send gnome-keyring-daemon secret-tool; do
		command -v "$t" >/dev/null || { st_why="$t is not installed"; break; }
	done
	if [ -z "$st_why" ] && ! env -i PATH=/usr/bin:/bin HOME="$d/home" XDG_RUNTIME_DIR="$d/run" \
	    KEYWARDEN_SOCKET="$BROKER_SOCK" dbus-run-session -- bash -c "$PROCESS_LOOP" process-loop \
	    "$BUILD/bench/spawntime" "$PROCESS_RUNS" "$d/hook.json" "$d/key" "$d/times.json" \
	    "${cmds[@]}" >"$d/loop.log" 2>&1; then
		st_why="secret-tool could not run here: $(grep -v '^$' "$d/loop.log" | tail -n 1)"
	fi
	if [ -n "$st_why" ]; then
		# The rest still gets measured, the same way, without the keychain.
		KEYWARDEN_SOCKET=$BROKER_SOCK "$BUILD/bench/spawntime" --runs "$PROCESS_RUNS" \
		    --stdin "$d/hook.json" "${cmds[@]}" >"$d/times.json" ||
		    die "spawntime failed for key get / hook claude / the floor"
	fi
	fl_ms=$(jq -r '.floor_us / 1000' "$d/times.json")
	kg_ms=$(jq -r '.key_get_us / 1000' "$d/times.json")
	hk_ms=$(jq -r '.hook_us / 1000' "$d/times.json")
	sa_ms=$(jq -r '.start_us / 1000' "$d/times.json")
	r_sa=$(process_ratio "$d/times.json" start floor)
	r_kg=$(process_ratio "$d/times.json" key_get floor)
	r_hk=$(process_ratio "$d/times.json" hook floor)
	r_hk_kg=$(process_ratio "$d/times.json" hook key_get)
	printf '\nwhole processes as Claude Code starts them (spawntime, %s rounds, order rotating; medians)\n' \
	    "$PROCESS_RUNS"
	printf '%-40s %10s %14s\n' "process" "median ms" "ratio"
	printf '%-40s %10.3f %14s\n' "spawn floor (C program doing nothing)" "$fl_ms" "1"
	printf '%-40s %10.3f %14s\n' "keywarden --version (start-up alone)" "$sa_ms" "$r_sa x floor"
	printf '%-40s %10.3f %14s\n' "keywarden key get anthropic" "$kg_ms" "$r_kg x floor"
	printf '%-40s %10.3f %14s\n' "keywarden hook claude (Bash git status)" "$hk_ms" "$r_hk x floor"
	if [ -z "$st_why" ]; then
		st_ms=$(jq -r '.secret_tool_us / 1000' "$d/times.json")
		r_kg_st=$(process_ratio "$d/times.json" key_get secret_tool)
		r_hk_st=$(process_ratio "$d/times.json" hook secret_tool)
		printf '%-40s %10.3f %14s\n' "secret-tool lookup (gnome-keyring)" "$st_ms" "-"
		printf 'key get / secret-tool %s, hook / secret-tool %s, hook / key get %s\n' \
		    "$r_kg_st" "$r_hk_st" "$r_hk_kg"
		st_json=$(printf '{"ms": %s, "key_get_ratio": %s, "hook_ratio": %s}' "$st_ms" "$r_kg_st" "$r_hk_st")
	else
		printf '%-40s %10s   (%s)\n' "secret-tool lookup (gnome-keyring)" "-" "$st_why"
		printf 'hook / key get %s\n' "$r_hk_kg"
		st_json=$(printf '{"ms": null, "why_missing": %s}' "$(json_str "$st_why")")
	fi
	printf '(targets: key get and hook at most 1.6 x floor; hook at most 1.5 x key get)\n'
	json_key process "$(printf '{"runs": %d, "floor_ms": %s, "start_ms": %s, "key_get_ms": %s, "hook_ms": %s, "start_over_floor": %s, "key_get_over_floor": %s, "hook_over_floor": %s, "hook_over_key_get": %s, "secret_tool": %s}' \
	    "$PROCESS_RUNS" "$fl_ms" "$sa_ms" "$kg_ms" "$hk_ms" "$r_sa" "$r_kg" "$r_hk" "$r_hk_kg" "$st_json")"
	note "process: whole-process wall times from bench/spawntime (posix_spawn to waitpid, stdout to /dev/null, the hook JSON on stdin for all), $PROCESS_RUNS rounds rotating the order; each ratio is the median of per-round ratios. floor = bench/spawn_floor (empty main, dynamically linked, libc only); start = keywarden --version, the CLI starting and exiting without a broker. key get and hook include the broker's work (the audit row committed with fsync before the answer). The bench broker runs as root: no session token is attached. Targets (issue 17): at most 1.6 x floor; (issue 13) hook at most 1.5 x key get."
}
