# login.sh - section_login for run.sh (sourced): the latency of a whole
# login, pamtester process and PAM stack included, through pam_keywarden
# (PAM -> broker -> TOTP check -> session) beside the same login through the
# stock pam_oath.so, measured back to back in one run.
#
# TOTP codes work once (both modules refuse replays), so each measured
# login uses a fresh (user, time step) pair: BENCH_LOGIN_USERS users, each
# logging in with the codes of BENCH_LOGIN_STEPS successive steps, which both
# modules accept because their window is that wide.
#
# Then, on the same broker, what a logged-in user's apiKeyHelper costs:
# `keywarden key get anthropic` run as a user (kwbenchkey, uid 3100, role
# developer) whose session token `keywarden login` cached in the kernel
# keyring, beside the spawn floor, both started by bench/spawntime as that
# user (section_process measures root, which needs no session).
#
# Environment: BENCH_LOGIN_USERS (4), BENCH_LOGIN_STEPS (6),
# BENCH_LOGIN_KEY_RUNS (60).

LOGIN_USERS=${BENCH_LOGIN_USERS:-4}
LOGIN_STEPS=${BENCH_LOGIN_STEPS:-6}
LOGIN_KEY_RUNS=${BENCH_LOGIN_KEY_RUNS:-60}
LOGIN_KEY_UID=3100
PAM_OATH=/usr/lib/x86_64-linux-gnu/security/pam_oath.so

# login_once SERVICE USER CODE: nanoseconds for one pamtester authentication.
login_once() {
	local t0 t1
	t0=$(date +%s%N)
	printf '%s\n' "$3" | LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 \
	    PAM_WRAPPER_SERVICE_DIR="$LOGIN_DIR/pam.d" pamtester "$1" "$2" authenticate \
	    >/dev/null 2>>"$LOGIN_DIR/pamtester.log" || die "login failed: $1 $2 (see $LOGIN_DIR/pamtester.log)"
	t1=$(date +%s%N)
	echo $((t1 - t0))
}

login_setup() {
	local i uid secret
	LOGIN_DIR=$T/login
	mkdir -p "$LOGIN_DIR/pam.d"
	: >"$LOGIN_DIR/passwd"
	: >"$LOGIN_DIR/group"
	: >"$LOGIN_DIR/users.oath"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >>"$LOGIN_DIR/passwd"
	printf 'root:x:0:\n' >>"$LOGIN_DIR/group"
	for ((i = 1; i <= LOGIN_USERS; i++)); do
		uid=$((3000 + i))
		printf 'kwbench%d:x:%d:%d::/nonexistent:/bin/false\n' "$i" "$uid" "$uid" >>"$LOGIN_DIR/passwd"
		printf 'kwbench%d:x:%d:\n' "$i" "$uid" >>"$LOGIN_DIR/group"
	done
	printf 'kwbenchkey:x:%d:%d::/nonexistent:/bin/false\n' "$LOGIN_KEY_UID" "$LOGIN_KEY_UID" \
	    >>"$LOGIN_DIR/passwd"
	printf 'kwbenchkey:x:%d:\n' "$LOGIN_KEY_UID" >>"$LOGIN_DIR/group"
	(umask 077 && printf '{"broker":{"socket":"%s","dataDir":"%s"},"security":{"authentication":{"mfa":{"window":%d}}}}\n' \
	    "$LOGIN_DIR/broker.sock" "$LOGIN_DIR/lib" "$LOGIN_STEPS" >"$LOGIN_DIR/config.json")
	start_daemon keywardend-login "$LOGIN_DIR/broker.sock" env -u NOTIFY_SOCKET \
	    -u KEYWARDEN_CONFIG -u KEYWARDEN_SOCKET LD_PRELOAD=libnss_wrapper.so \
	    NSS_WRAPPER_PASSWD="$LOGIN_DIR/passwd" NSS_WRAPPER_GROUP="$LOGIN_DIR/group" \
	    "$BROKER" --config "$LOGIN_DIR/config.json"
	for ((i = 1; i <= LOGIN_USERS; i++)); do
		secret=$(KEYWARDEN_SOCKET=$LOGIN_DIR/broker.sock "$BUILD/keywarden" admin user add \
		    "kwbench$i" --json | sed -n 's/.*"secret": "\([A-Z2-7]*\)".*/\1/p')
		[ -n "$secret" ] || die "admin user add kwbench$i gave no secret"
		echo "$secret" >"$LOGIN_DIR/secret.$i"
		# pam_oath's users file takes the same seed, in hex.
		printf 'HOTP/T30/6 kwbench%d - %s\n' "$i" \
		    "$(printf '%s' "$secret" | base32 -d | od -An -tx1 | tr -d ' \n')" >>"$LOGIN_DIR/users.oath"
	done
	chmod 0600 "$LOGIN_DIR/users.oath"
	printf 'auth required %s socket=%s\n' "$BUILD/pam_keywarden.so" "$LOGIN_DIR/broker.sock" \
	    >"$LOGIN_DIR/pam.d/keywarden"
	printf 'auth required %s usersfile=%s window=%d digits=6\n' "$PAM_OATH" \
	    "$LOGIN_DIR/users.oath" "$LOGIN_STEPS" >"$LOGIN_DIR/pam.d/oath"
	printf 'auth required pam_deny.so\n' >"$LOGIN_DIR/pam.d/other"
}

section_login() {
	local i k now code kw oa
	for i in pamtester oathtool base32; do
		command -v "$i" >/dev/null || die "$i is missing (contrib/deps.sh installs it)"
	done
	[ -e "$BUILD/pam_keywarden.so" ] || die "$BUILD/pam_keywarden.so is missing"
	[ -e "$PAM_OATH" ] || die "$PAM_OATH is missing (libpam-oath)"
	login_setup
	: >"$T/login.kw"
	: >"$T/login.oath"
	now=$(date +%s)
	# Oldest step first: each module accepts only codes newer than the last.
	for ((k = LOGIN_STEPS - 1; k >= 0; k--)); do
		for ((i = 1; i <= LOGIN_USERS; i++)); do
			code=$(oathtool --totp -b "$(cat "$LOGIN_DIR/secret.$i")" -N "@$((now - 30 * k))")
			if (((i + k) % 2)); then
				kw=$(login_once keywarden "kwbench$i" "$code")
				oa=$(login_once oath "kwbench$i" "$code")
			else
				oa=$(login_once oath "kwbench$i" "$code")
				kw=$(login_once keywarden "kwbench$i" "$code")
			fi
			echo "$kw" >>"$T/login.kw"
			echo "$oa" >>"$T/login.oath"
		done
	done
	local kw_ms oa_ms ratio n
	n=$(wc -l <"$T/login.kw")
	kw_ms=$(awk '{ printf "%.3f\n", $1 / 1e6 }' "$T/login.kw" | median)
	oa_ms=$(awk '{ printf "%.3f\n", $1 / 1e6 }' "$T/login.oath" | median)
	ratio=$(paste "$T/login.kw" "$T/login.oath" | awk '{ printf "%.4f\n", $1 / $2 }' | median)
	printf '\nlogin latency (pamtester process + PAM stack + TOTP check; %d logins each, medians)\n' "$n"
	printf '%-28s %10s\n' "login through" "median ms"
	printf '%-28s %10s\n' "pam_keywarden (broker)" "$kw_ms"
	printf '%-28s %10s\n' "pam_oath (users file)" "$oa_ms"
	printf '%-28s %10s   (target: at most 1.0)\n' "ratio keywarden/pam_oath" "$ratio"
	login_key_get
	json_key login "$(printf '{"logins": %d, "keywarden_ms": %s, "pam_oath_ms": %s, "ratio": %s, "session_key_get": %s}' \
	    "$n" "$kw_ms" "$oa_ms" "$ratio" "$LOGIN_KEY_JSON")"
	note "login: ratio = median over pairs of (pamtester through pam_keywarden) / (pamtester through pam_oath) for the same user and code, measured back to back; the keywarden login also opens a session and writes audit records."
	note "login: session_key_get = keywarden key get anthropic as uid $LOGIN_KEY_UID with a session token cached in its kernel keyring by keywarden login, beside the spawn floor, both started by bench/spawntime running as that user; ratio = median of per-round ratios."
}

# login_key_get: section_login's second figure (see the header).
login_key_get() {
	local secret code nss as_user kg_ms fl_ms ratio
	# The user must reach the broker's socket under $T.
	chmod 0711 "$T" "$LOGIN_DIR"
	ensure_bench_key
	secret=$(KEYWARDEN_SOCKET=$LOGIN_DIR/broker.sock "$BUILD/keywarden" admin user add \
	    kwbenchkey --role developer --json | sed -n 's/.*"secret": "\([A-Z2-7]*\)".*/\1/p')
	[ -n "$secret" ] || die "admin user add kwbenchkey gave no secret"
	KEYWARDEN_SOCKET=$LOGIN_DIR/broker.sock "$BUILD/keywarden" key set anthropic \
	    <"$BENCH_KEY_FILE" >/dev/null || die "key set anthropic (login broker) failed"
	code=$(oathtool --totp -b "$secret")
	nss=(LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD="$LOGIN_DIR/passwd"
	    NSS_WRAPPER_GROUP="$LOGIN_DIR/group")
	as_user=(setpriv --reuid "$LOGIN_KEY_UID" --regid "$LOGIN_KEY_UID" --clear-groups
	    env KEYWARDEN_SOCKET="$LOGIN_DIR/broker.sock")
	printf '%s\n' "$code" | "${as_user[@]}" "${nss[@]}" "$BUILD/keywarden" login >/dev/null ||
	    die "keywarden login as kwbenchkey failed"
	[ "$("${as_user[@]}" "$BUILD/keywarden" key get anthropic)" = "$(cat "$BENCH_KEY_FILE")" ] ||
	    die "key get as kwbenchkey (cached session) gave another value"
	KEYWARDEN_SOCKET=$LOGIN_DIR/broker.sock "$BUILD/bench/spawntime" --runs "$LOGIN_KEY_RUNS" \
	    --user "$LOGIN_KEY_UID:$LOGIN_KEY_UID" -- floor "$BUILD/bench/spawn_floor" \
	    -- key_get "$BUILD/keywarden" key get anthropic >"$T/login_key.json" ||
	    die "spawntime failed (key get as kwbenchkey)"
	# The token leaves the user's keyring with the session.
	"${as_user[@]}" "$BUILD/keywarden" logout >/dev/null || true
	fl_ms=$(jq -r '.floor_us / 1000' "$T/login_key.json")
	kg_ms=$(jq -r '.key_get_us / 1000' "$T/login_key.json")
	ratio=$(process_ratio "$T/login_key.json" key_get floor)
	printf '\nkey get as a logged-in user (session token in the keyring; spawntime as uid %d, %d rounds, medians)\n' \
	    "$LOGIN_KEY_UID" "$LOGIN_KEY_RUNS"
	printf '%-40s %10s\n' "process" "median ms"
	printf '%-40s %10.3f\n' "spawn floor (C program doing nothing)" "$fl_ms"
	printf '%-40s %10.3f\n' "keywarden key get anthropic (session)" "$kg_ms"
	printf '%-40s %10s   (target: at most 1.6)\n' "ratio key get / floor" "$ratio"
	LOGIN_KEY_JSON=$(printf '{"runs": %d, "floor_ms": %s, "key_get_ms": %s, "ratio": %s}' \
	    "$LOGIN_KEY_RUNS" "$fl_ms" "$kg_ms" "$ratio")
}
