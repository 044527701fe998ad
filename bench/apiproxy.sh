# apiproxy.sh - section_apiproxy for run.sh (sourced): what the API proxy
# (keywarden-proxy, proxy/DESIGN.md) adds to a Messages API call.
#
# A local upstream (api_upstream: libmicrohttpd, TLS 1.3, a certificate of a
# test CA made here with openssl) answers POST /v1/messages from memory, and
# checks that x-api-key is the real key.  A broker of this section's own
# (the bench's main broker has no proxy) runs with broker.apiProxy.enabled,
# api.baseUrl = the upstream and security.network.caFile = the test CA, so
# the proxy under test is the real one, started by the real broker; root
# (the broker's owner, as in the other sections) gets a real proxy token
# with `keywarden key get anthropic --proxy`.
#
# apiload (libcurl, keep-alive, N calls in flight) then calls, alternating
# which goes first, BENCH_RUNS times each:
#   direct   https://127.0.0.1:UPSTREAM/v1/messages with the real key
#   proxy    http://127.0.0.1:PROXY/v1/messages with the proxy token
# (a) one JSON reply per call, at BENCH_APIPROXY_CLIENTS connections: calls
#     per second and p50/p99 latency; added = proxy - direct, per run;
# (b) a server-sent event stream per call (first event at once, the rest
#     BENCH_APIPROXY_GAP_US apart), one connection: time to the first body
#     byte, direct and through the proxy (target: under 1 ms added at p50).
# The token and the key travel in 0600 files, never on a command line.
#
# Environment: BENCH_APIPROXY_CLIENTS ("1 8"), BENCH_APIPROXY_GAP_US (1000),
# BENCH_APIPROXY_STREAM_CLIENTS ("1").

APIPROXY_CLIENTS=${BENCH_APIPROXY_CLIENTS:-"1 8"}
APIPROXY_STREAM_CLIENTS=${BENCH_APIPROXY_STREAM_CLIENTS:-"1"}
APIPROXY_GAP_US=${BENCH_APIPROXY_GAP_US:-1000}
APIPROXY_KEY_NAME=anthropic

# A free TCP port on 127.0.0.1 (the kernel's choice, released at once).
apiproxy_free_port() {
	/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# apiproxy_token_by_protocol SOCKET NAME: a proxy token for key NAME on
# stdout.  A proxy token belongs to a session, so root (the broker's owner)
# is enrolled (user.add, role developer: read:key/*), logs in with an
# oathtool code, and asks key.proxy_token on that session -- what `keywarden
# login` and `keywarden key get NAME --proxy` do, over the protocol.
apiproxy_token_by_protocol() {
	/usr/bin/python3 -c 'import json, socket, struct, subprocess, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
def call(i, op, args, session=None):
    m = {"id": i, "op": op, "args": args}
    if session:
        m["session"] = session
    b = json.dumps(m).encode()
    s.sendall(struct.pack(">I", len(b)) + b)
    n = b""
    while len(n) < 4: n += s.recv(4 - len(n))
    n, r = struct.unpack(">I", n)[0], b""
    while len(r) < n: r += s.recv(n - len(r))
    r = json.loads(r)
    if not r.get("ok"): sys.exit("%s: %s" % (op, r.get("error")))
    return r["result"]
call(1, "hello", {"version": 1})
secret = call(2, "user.add", {"user": "root", "roles": ["developer"]})["secret"]
code = subprocess.run(["oathtool", "--totp", "-b", "-"], input=secret, check=True,
                      stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
session = call(3, "login", {"code": code})["session"]
print(call(4, "key.proxy_token", {"name": sys.argv[2]}, session)["token"])' "$1" "$2"
}

# apiproxy_tls DIR: a test CA and a server certificate for 127.0.0.1.
apiproxy_tls() {
	local d=$1
	(
		cd "$d" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		    -keyout ca.key -out ca.pem -days 2 -subj /CN=keywarden-bench-ca &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		    -keyout srv.key -out srv.csr -subj /CN=localhost &&
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext.cnf &&
		openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		    -out srv.pem -days 2 -extfile ext.cnf
	) >"$d/openssl.log" 2>&1 || {
		cat "$d/openssl.log" >&2
		die "openssl could not make the test CA"
	}
	chmod 0644 "$d/ca.pem"
}

# apiproxy_measure LABEL URL CLIENTS HEADERS BODY [APILOAD-OPTION...]
apiproxy_measure() {
	local label=$1 url=$2 c=$3 hdr=$4 body=$5
	shift 5
	"$BUILD/bench/apiload" --url "$url" --cacert "$T/apiproxy/ca.pem" --clients "$c" \
	    --seconds "$SECS" --warmup "$WARMUP" --label "$label" --header-file "$hdr" \
	    --body-file "$body" "$@" || die "apiload failed ($label, $c clients)"
}

# apiproxy_pair CLIENTS BODY [APILOAD-OPTION...]: RUNS runs of each, order
# alternating; the runs land in $T/apiproxy/{p,d}.runs.
apiproxy_pair() {
	local c=$1 body=$2 i d=$T/apiproxy p_out d_out
	shift 2
	: >"$d/p.runs"
	: >"$d/d.runs"
	for ((i = 1; i <= RUNS; i++)); do
		if ((i % 2)); then
			p_out=$(apiproxy_measure proxy "$APIPROXY_URL" "$c" "$d/proxy.hdr" "$body" "$@")
			d_out=$(apiproxy_measure direct "$APIPROXY_UPSTREAM" "$c" "$d/direct.hdr" "$body" "$@")
		else
			d_out=$(apiproxy_measure direct "$APIPROXY_UPSTREAM" "$c" "$d/direct.hdr" "$body" "$@")
			p_out=$(apiproxy_measure proxy "$APIPROXY_URL" "$c" "$d/proxy.hdr" "$body" "$@")
		fi
		echo "$p_out" >>"$d/p.runs"
		echo "$d_out" >>"$d/d.runs"
	done
}

# diff_median FILE_A FILE_B KEY: median over runs of A's KEY - B's KEY.
diff_median() {
	paste <(col "$1" "$3") <(col "$2" "$3") | awk '{ print $1 - $2 }' | median
}

apiproxy_start() {
	local d=$T/apiproxy up_port px_port sock=$T/apiproxy/broker.sock i
	[ -x "$BUILD/keywarden-proxy" ] || die "$BUILD/keywarden-proxy is missing: run make"
	for i in api_upstream apiload; do
		[ -x "$BUILD/bench/$i" ] || die "$BUILD/bench/$i is missing: run make -C bench"
	done
	mkdir -p "$d"
	chmod 0700 "$d"
	apiproxy_tls "$d"
	(umask 077 && printf 'sk-ant-api03-%s\n' \
	    "kwProxyBench0123456789_-kwProxyBench0123456789_-kwProxyBench0123456789_-kwProxyBench0123AA" \
	    >"$d/key")

	# The upstream writes its port once it listens: that file is the signal.
	"$BUILD/bench/api_upstream" --cert "$d/srv.pem" --key "$d/srv.key" \
	    --port-file "$d/upstream.port" --expect-key-file "$d/key" \
	    --gap-us "$APIPROXY_GAP_US" --max-seconds 900 2>"$T/api_upstream.log" </dev/null &
	DAEMON_PIDS+=("$!")
	DAEMON_NAMES+=(api_upstream)
	for ((i = 0; i < READY_TIMEOUT * 100; i++)); do
		[ -s "$d/upstream.port" ] && break
		kill -0 "${DAEMON_PIDS[-1]}" 2>/dev/null || break
		sleep 0.01
	done
	[ -s "$d/upstream.port" ] || {
		cat "$T/api_upstream.log" >&2
		die "api_upstream did not start"
	}
	up_port=$(cat "$d/upstream.port")
	APIPROXY_UPSTREAM=https://127.0.0.1:$up_port/v1/messages

	px_port=$(apiproxy_free_port)
	(umask 077 && printf '{"broker":{"socket":"%s","dataDir":"%s","apiProxy":{"enabled":true,"listen":"127.0.0.1:%s"}},"api":{"baseUrl":"https://127.0.0.1:%s"},"security":{"network":{"caFile":"%s","allowedHosts":["127.0.0.1"]}}}\n' \
	    "$sock" "$d/lib" "$px_port" "$up_port" "$d/ca.pem" >"$d/config.json")
	start_daemon keywardend-apiproxy "$sock" env -u NOTIFY_SOCKET \
	    -u KEYWARDEN_CONFIG -u KEYWARDEN_SOCKET \
	    "$BROKER" --config "$d/config.json"
	KEYWARDEN_SOCKET=$sock "$BUILD/keywarden" key set "$APIPROXY_KEY_NAME" <"$d/key" \
	    >/dev/null || die "keywarden key set $APIPROXY_KEY_NAME failed"
	# The token goes from the CLI's stdout into a 0600 header file.  A CLI
	# without --proxy yet: key.proxy_token asked over the protocol instead.
	(umask 077 && {
		printf 'x-api-key: '
		KEYWARDEN_SOCKET=$sock "$BUILD/keywarden" key get "$APIPROXY_KEY_NAME" --proxy \
		    2>"$d/token.err" ||
		    apiproxy_token_by_protocol "$sock" "$APIPROXY_KEY_NAME"
	} >"$d/proxy.hdr") || {
		cat "$d/token.err" >&2
		die "no proxy token (keywarden key get $APIPROXY_KEY_NAME --proxy)"
	}
	grep -q '^x-api-key: kwp1_' "$d/proxy.hdr" ||
	    die "keywarden key get --proxy did not print a kwp1_ token"
	(umask 077 && { printf 'x-api-key: '; head -n 1 "$d/key"; } >"$d/direct.hdr")
	printf 'Content-Type: application/json\nanthropic-version: 2023-06-01\n' |
	    tee -a "$d/proxy.hdr" >>"$d/direct.hdr"
	printf '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"bench"}]}' \
	    >"$d/body.json"
	printf '{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"bench"}]}' \
	    >"$d/stream.json"
	APIPROXY_URL=http://127.0.0.1:$px_port/v1/messages
	"$BUILD/bench/apiload" --wait-url "http://127.0.0.1:$px_port/" --timeout "$READY_TIMEOUT" ||
	    die "the API proxy does not answer on 127.0.0.1:$px_port"
}

section_apiproxy() {
	local d=$T/apiproxy c rows="" srows="" sep="" p_rps d_rps ratio p50 p99 dp50 dp99 add50 add99
	local tp50 tp99 dtp50 dtp99 tadd50 tadd99
	apiproxy_start

	printf '\nAPI proxy: one JSON reply per call, keep-alive (%s runs x %s s, medians; added = proxy - direct per run)\n' \
	    "$RUNS" "$SECS"
	printf '%7s %11s %11s %7s %16s %16s %11s %11s\n' clients "proxy/s" "direct/s" ratio \
	    "proxy p50/p99 µs" "direct p50/p99" "added p50" "added p99"
	for c in $APIPROXY_CLIENTS; do
		apiproxy_pair "$c" "$d/body.json"
		p_rps=$(col "$d/p.runs" rps | median)
		d_rps=$(col "$d/d.runs" rps | median)
		ratio=$(ratio_median "$d/p.runs" "$d/d.runs" rps)
		p50=$(col "$d/p.runs" p50_us | median)
		p99=$(col "$d/p.runs" p99_us | median)
		dp50=$(col "$d/d.runs" p50_us | median)
		dp99=$(col "$d/d.runs" p99_us | median)
		add50=$(diff_median "$d/p.runs" "$d/d.runs" p50_us)
		add99=$(diff_median "$d/p.runs" "$d/d.runs" p99_us)
		printf '%7s %11.0f %11.0f %7.3f %16s %16s %11s %11s\n' "$c" "$p_rps" "$d_rps" \
		    "$ratio" "$p50/$p99" "$dp50/$dp99" "$add50" "$add99"
		rows+="$sep$(printf '{"clients": %s, "proxy_rps": %s, "direct_rps": %s, "ratio": %s, "proxy_p50_us": %s, "proxy_p99_us": %s, "direct_p50_us": %s, "direct_p99_us": %s, "added_p50_us": %s, "added_p99_us": %s, "proxy_rps_runs": %s, "direct_rps_runs": %s}' \
		    "$c" "$p_rps" "$d_rps" "$ratio" "$p50" "$p99" "$dp50" "$dp99" "$add50" "$add99" \
		    "$(json_list "$d/p.runs" rps)" "$(json_list "$d/d.runs" rps)")"
		sep=$',\n      '
	done

	printf '\nAPI proxy: time to first streamed byte (SSE, next events %s µs apart; %s runs x %s s, medians)\n' \
	    "$APIPROXY_GAP_US" "$RUNS" "$SECS"
	printf '%7s %20s %20s %11s %11s %10s\n' clients "proxy ttfb p50/p99" "direct ttfb p50/p99" \
	    "added p50" "added p99" "streams"
	sep=""
	for c in $APIPROXY_STREAM_CLIENTS; do
		apiproxy_pair "$c" "$d/stream.json" --expect 'event: message_stop'
		tp50=$(col "$d/p.runs" ttfb_p50_us | median)
		tp99=$(col "$d/p.runs" ttfb_p99_us | median)
		dtp50=$(col "$d/d.runs" ttfb_p50_us | median)
		dtp99=$(col "$d/d.runs" ttfb_p99_us | median)
		tadd50=$(diff_median "$d/p.runs" "$d/d.runs" ttfb_p50_us)
		tadd99=$(diff_median "$d/p.runs" "$d/d.runs" ttfb_p99_us)
		printf '%7s %20s %20s %11s %11s %10s   (target: added p50 under 1000 µs)\n' "$c" \
		    "$tp50/$tp99" "$dtp50/$dtp99" "$tadd50" "$tadd99" \
		    "$(col "$d/p.runs" requests | awk '{ n += $1 } END { print n }')"
		srows+="$sep$(printf '{"clients": %s, "proxy_ttfb_p50_us": %s, "proxy_ttfb_p99_us": %s, "direct_ttfb_p50_us": %s, "direct_ttfb_p99_us": %s, "added_ttfb_p50_us": %s, "added_ttfb_p99_us": %s, "proxy_p50_us": %s, "direct_p50_us": %s, "proxy_streams_runs": %s}' \
		    "$c" "$tp50" "$tp99" "$dtp50" "$dtp99" "$tadd50" "$tadd99" \
		    "$(col "$d/p.runs" p50_us | median)" "$(col "$d/d.runs" p50_us | median)" \
		    "$(json_list "$d/p.runs" requests)")"
		sep=$',\n      '
	done
	json_key apiproxy "$(printf '{
    "runs": %s, "seconds": %s, "stream_gap_us": %s,
    "calls": [
      %s
    ],
    "streams": [
      %s
    ]
  }' "$RUNS" "$SECS" "$APIPROXY_GAP_US" "$rows" "$srows")"
	note "apiproxy: the real keywarden-proxy started by a broker of the section's own (broker.apiProxy.enabled), forwarding over TLS 1.3 to api_upstream (libmicrohttpd + GnuTLS, a test CA in security.network.caFile), called by apiload (libcurl, HTTP/1.1 keep-alive) with a real proxy token; direct = the same calls to the upstream with the real key. Each proxied call also makes the broker check the token (proxy.authorize) and audit the call (proxy.record)."
	note "apiproxy: added_* = median over runs of (proxy - direct) for that run pair's percentile, in µs; ratio = median of proxy rps / direct rps. The client leg through the proxy is plain HTTP on loopback, the direct leg is TLS, so the proxy's figure includes one TLS hop the direct one also has."
	note "apiproxy: ttfb = from handing the call to libcurl to the first response-body byte (the first SSE event); the upstream sends it at once and the rest $APIPROXY_GAP_US µs apart, so a proxy that buffered would show here. Target from issue 16: under 1 ms added at p50."
}
