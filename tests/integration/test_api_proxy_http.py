"""
keywarden-proxy over HTTP (proxy/DESIGN.md): the real proxy, started by a
fake broker on its fd (fake_broker.py), in front of a local upstream.

The proxy runs as alice (uid 2001), as the broker's user would not be root.
The upstream is either the suite's stand-in Messages API
(anthropic_server.py) or the small recording server below, which echoes
every header and query and can hold a stream mid-way, over plain HTTP
(enforceHttps false) or TLS with a CA made in the test.

What is checked: the key is injected and the client's credential removed,
headers and query pass unchanged but hop-by-hop ones, a stream reaches the
client before upstream has finished, the broker is told what each call
cost (tokens, model, status, bytes), real keys and missing tokens are
refused and reported, broker refusals come back in the Messages API's error
shape, malformed and oversized requests leave the proxy serving, the
configuration's refusals stop the start, upstream TLS is held to the
configured floor and CA, and the proxy ends when the broker goes away.
"""
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import BUILD, IO_TIMEOUT, START_TIMEOUT, sanitizer_report, wait_for
from anthropic_server import AnthropicServer
from fake_broker import FakeBroker
from users import setpriv

PROXY_BIN = os.path.join(BUILD, "keywarden-proxy")
REAL_KEY = "sk-ant-api03-REALKEY-" + "x" * 40
TOKEN = "kwp1_" + "t" * 40


# ---- a recording upstream ---------------------------------------------------

def sse(event, data):
    return ("event: %s\ndata: %s\n\n" % (event, json.dumps(data))).encode()


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context=None):
        super().__init__(("127.0.0.1", 0), UpstreamHandler)
        self.seen = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.context = context
        if context:
            self.socket = context.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.context else "http",
                                      self.server_address[1])

    def requests(self):
        with self.lock:
            return list(self.seen)

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()


class UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body are separate writes: without this, Nagle and
        # delayed ACKs add 40 ms to every reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError):
            self.close_connection = True

    def _record(self, body):
        entry = {"method": self.command, "path": self.path, "headers": list(self.headers.items()),
                 "body": body.decode("utf-8", "replace"), "peer": self.client_address[1],
                 "body_sha256": hashlib.sha256(body).hexdigest()}
        with self.server.lock:
            self.server.seen.append(entry)
        return entry

    def _reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.do_POST()

    def do_DELETE(self):
        self.do_POST()

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        entry = self._record(body)
        if "hold" in self.path:
            self.server.release.wait(IO_TIMEOUT * 3)
        if self.path.startswith("/big/"):
            size = int(self.path.split("/")[2])
            data = bytes(range(256)) * (size // 256)
            return self._reply(200, data, [("content-type", "application/octet-stream")])
        if self.path.startswith("/v1/messages") and b'"stream": true' in body:
            return self._stream(json.loads(body), "pause" in self.path)
        doc = {"id": "msg_1", "type": "message", "model": "claude-echo-1",
               "content": [{"type": "text", "text": "ok"}],
               "usage": {"input_tokens": 21, "output_tokens": 4}, "seen": entry}
        self._reply(200, json.dumps(doc).encode(),
                    [("content-type", "application/json"), ("x-upstream", "yes"),
                     ("anthropic-ratelimit-requests-remaining", "41"),
                     ("keep-alive", "timeout=5")])

    def _stream(self, req, pause):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(sse("message_start", {"type": "message_start", "message": {
            "id": "msg_s", "type": "message", "role": "assistant", "model": req.get("model"),
            "content": [], "usage": {"input_tokens": 321, "output_tokens": 1}}}))
        self.wfile.flush()
        if pause:
            self.server.release.wait(IO_TIMEOUT * 3)
        for word in ("Hello", " from", " upstream"):
            self.wfile.write(sse("content_block_delta", {"type": "content_block_delta",
                                                         "index": 0, "delta": {
                                                             "type": "text_delta",
                                                             "text": word}}))
        self.wfile.write(sse("message_delta", {"type": "message_delta",
                                               "delta": {"stop_reason": "end_turn"},
                                               "usage": {"output_tokens": 17}}))
        self.wfile.write(sse("message_stop", {"type": "message_stop"}))
        self.wfile.flush()
        self.close_connection = True


# ---- the proxy --------------------------------------------------------------

class Proxy:
    def __init__(self, tmp, base_url, extra=None, tokens=None):
        self.tmp = tmp
        cfg = {"broker": {"apiProxy": {"listen": "127.0.0.1:0", "idleTimeout": 30}},
               "api": {"baseUrl": base_url},
               "security": {"network": {"enforceHttps": False, "allowedHosts": []}}}
        for k, v in (extra or {}).items():
            node = cfg
            parts = k.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = v
        self.config = os.path.join(tmp, "config.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f)
        os.chmod(self.config, 0o644)
        self.fb = FakeBroker(tokens=tokens if tokens is not None else {TOKEN: REAL_KEY})
        self.proc = None
        self.listen = None

    def start(self):
        self.proc = self.fb.start(setpriv("alice", [PROXY_BIN, "--broker-fd", "{fd}",
                                                    "--config", self.config]))
        self.listen = self.fb.wait_ready(START_TIMEOUT)
        host, port = self.listen.rsplit(":", 1)
        self.host, self.port = host, int(port)
        return self

    def conn(self):
        return http.client.HTTPConnection(self.host.strip("[]"), self.port, timeout=IO_TIMEOUT)

    def records(self):
        return [r["args"] for r in self.fb.requests("proxy.record")]

    def wait_records(self, n):
        self.fb.wait_for(lambda seen: len([r for r in seen if r["op"] == "proxy.record"]) >= n,
                         IO_TIMEOUT)
        return self.records()

    def stop(self):
        self.fb.stop()
        err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc else ""
        mark = sanitizer_report(err)
        assert mark is None, "%s in the proxy:\n%s" % (mark, err)
        return err


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="kw-proxy-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.stop()


@pytest.fixture
def proxy_factory(tmp):
    started = []

    def make(base_url, extra=None, tokens=None, start=True):
        p = Proxy(tmp, base_url, extra, tokens)
        started.append(p)
        return p.start() if start else p
    yield make
    for p in started:
        p.stop()


def post(conn, path, doc, headers):
    body = json.dumps(doc) if not isinstance(doc, (bytes, str)) else doc
    conn.request("POST", path, body, dict({"content-type": "application/json"}, **headers))
    r = conn.getresponse()
    return r, r.read()


def api_error(body):
    doc = json.loads(body)
    assert doc["type"] == "error", doc
    return doc["error"]["type"], doc["error"]["message"]


def header_names(entry):
    return [k.lower() for k, _ in entry["headers"]]


def header(entry, name):
    vals = [v for k, v in entry["headers"] if k.lower() == name]
    assert len(vals) <= 1, (name, vals)
    return vals[0] if vals else None


# ---- forwarding -------------------------------------------------------------

def test_stream_through_stand_in_key_injected_and_recorded(tmp, proxy_factory):
    srv = AnthropicServer(os.path.join(tmp, "api.log"), reply_text="through the proxy",
                          expect_key=REAL_KEY)
    srv.start()
    try:
        p = proxy_factory(srv.url)
        req = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
               "messages": [{"role": "user", "content": "hi"}]}
        raw = json.dumps(req)
        r, body = post(p.conn(), "/v1/messages?beta=true", raw,
                       {"x-api-key": TOKEN, "anthropic-version": "2023-06-01"})
        assert r.status == 200, body
        assert r.getheader("content-type").startswith("text/event-stream")
        assert r.getheader("transfer-encoding") == "chunked"
        text = body.decode()
        assert "event: message_start" in text and "event: content_block_delta" in text
        assert "event: message_stop" in text
        got = srv.requests()
        assert len(got) == 1
        assert got[0]["x-api-key"] == REAL_KEY and got[0]["authorization"] is None
        assert got[0]["path"] == "/v1/messages?beta=true" and got[0]["status"] == 200
        auth = p.fb.requests("proxy.authorize")
        assert [a["args"] for a in auth] == [{"token": TOKEN, "method": "POST",
                                              "path": "/v1/messages"}]
        rec = p.wait_records(1)[0]
        assert rec["call"] == 1 and rec["status"] == 200
        assert rec["model"] == "claude-sonnet-4-5"
        assert rec["input_tokens"] > 0 and rec["output_tokens"] > 0
        assert rec["bytes_in"] == len(raw) and rec["bytes_out"] == len(body)
        assert rec["latency_ms"] >= rec["ttfb_ms"] >= 0
        assert "error" not in rec
        # The real key went upstream and nowhere else.
        assert REAL_KEY not in body.decode()
    finally:
        srv.stop()


def test_headers_and_query_pass_credential_replaced(upstream, proxy_factory):
    p = proxy_factory(upstream.url)
    c = p.conn()
    path = "/v1/messages/count_tokens?beta=true&q=a%2Fb%20c&empty="
    body = b'{"model": "claude-haiku", "messages": []}'
    c.putrequest("POST", path, skip_accept_encoding=True)
    for k, v in [("Authorization", "Bearer " + TOKEN), ("anthropic-version", "2023-06-01"),
                 ("anthropic-beta", "tools-2024,prompt-caching"), ("X-Custom", "kept"),
                 ("User-Agent", "claude-cli/2.0 (test)"), ("Content-Type", "application/json"),
                 ("Connection", "keep-alive, X-Hop"), ("X-Hop", "h"), ("Keep-Alive", "timeout=9"),
                 ("TE", "trailers"), ("Trailer", "X-T"), ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
                 ("Proxy-Connection", "keep-alive"), ("Content-Length", str(len(body)))]:
        c.putheader(k, v)
    c.endheaders(body)
    r = c.getresponse()
    out = r.read()
    assert r.status == 200, out
    seen = upstream.requests()
    assert len(seen) == 1
    e = seen[0]
    assert e["path"] == path and e["method"] == "POST" and e["body"] == body.decode()
    names = header_names(e)
    assert header(e, "x-api-key") == REAL_KEY
    assert "authorization" not in names
    for gone in ("keep-alive", "te", "trailer", "proxy-authorization", "proxy-connection",
                 "transfer-encoding", "upgrade", "expect"):
        assert gone not in names, (gone, e["headers"])
    assert header(e, "connection") in (None, "keep-alive")   # curl's own, for its hop
    assert header(e, "anthropic-version") == "2023-06-01"
    assert header(e, "anthropic-beta") == "tools-2024,prompt-caching"
    assert header(e, "x-custom") == "kept"
    assert header(e, "user-agent") == "claude-cli/2.0 (test)"
    assert header(e, "content-type") == "application/json"
    assert header(e, "content-length") == str(len(body))
    assert header(e, "host") == "127.0.0.1:%d" % upstream.server_address[1]
    assert "accept" not in names            # curl adds none the client did not send
    # The response's end-to-end headers come back; its hop-by-hop ones do not.
    assert r.getheader("x-upstream") == "yes"
    assert r.getheader("anthropic-ratelimit-requests-remaining") == "41"
    assert r.getheader("keep-alive") is None
    # Upstream's length is kept (no chunking of a reply of known size).
    assert r.getheader("content-length") == str(len(out))
    assert r.getheader("transfer-encoding") is None
    assert json.loads(out)["model"] == "claude-echo-1"
    rec = p.wait_records(1)[0]
    assert (rec["model"], rec["input_tokens"], rec["output_tokens"]) == ("claude-echo-1", 21, 4)
    auth = p.fb.requests("proxy.authorize")[0]["args"]
    assert auth["path"] == "/v1/messages/count_tokens"


def test_large_bodies_pass_intact_both_ways(upstream, proxy_factory):
    p = proxy_factory(upstream.url)
    size = 12 * 1024 * 1024
    up = os.urandom(3 * 1024 * 1024)
    c = p.conn()
    c.request("POST", "/big/%d" % size, up, {"x-api-key": TOKEN,
                                             "content-type": "application/octet-stream"})
    r = c.getresponse()
    got = bytearray()
    while True:
        chunk = r.read(1 << 16)     # slower than upstream writes: curl is paused and resumed
        if not chunk:
            break
        got += chunk
    assert r.status == 200 and len(got) == size
    assert hashlib.sha256(got).digest() == hashlib.sha256(
        bytes(range(256)) * (size // 256)).digest()
    assert upstream.requests()[0]["body_sha256"] == hashlib.sha256(up).hexdigest()
    rec = p.wait_records(1)[0]
    assert rec["bytes_in"] == len(up) and rec["bytes_out"] == size


def test_get_and_delete_pass_with_method(upstream, proxy_factory):
    p = proxy_factory(upstream.url)
    c = p.conn()
    c.request("GET", "/v1/models?limit=2", headers={"x-api-key": TOKEN})
    r = c.getresponse()
    r.read()
    c.request("DELETE", "/v1/files/file_1", headers={"x-api-key": TOKEN})
    r2 = c.getresponse()
    r2.read()
    assert (r.status, r2.status) == (200, 200)
    seen = upstream.requests()
    assert [(e["method"], e["path"]) for e in seen] == [("GET", "/v1/models?limit=2"),
                                                       ("DELETE", "/v1/files/file_1")]
    assert all(header(e, "x-api-key") == REAL_KEY for e in seen)


def test_stream_reaches_client_before_upstream_finishes(upstream, proxy_factory):
    p = proxy_factory(upstream.url)
    c = p.conn()
    c.request("POST", "/v1/messages?pause=1", json.dumps(
        {"model": "claude-paused", "stream": True, "max_tokens": 9, "messages": []}),
        {"x-api-key": TOKEN, "content-type": "application/json"})
    r = c.getresponse()
    assert r.status == 200
    first = b""
    while b"\n\n" not in first:
        chunk = r.read1(4096)
        assert chunk, "stream ended early"
        first += chunk
    # The first event arrived while upstream still holds the rest.
    assert b"message_start" in first and not upstream.release.is_set()
    assert p.records() == []
    upstream.release.set()
    rest = r.read()
    assert b"message_stop" in rest and b"upstream" in rest
    rec = p.wait_records(1)[0]
    assert (rec["model"], rec["input_tokens"], rec["output_tokens"]) == ("claude-paused", 321, 17)
    assert rec["bytes_out"] == len(first) + len(rest)


def test_streams_run_side_by_side(upstream, proxy_factory):
    """Many held streams at once: each gets its first event while all are
    held (no stream waits for another, nor for the broker), then all end
    and each is recorded once."""
    n = 64
    p = proxy_factory(upstream.url)
    body = json.dumps({"model": "claude-many", "stream": True, "messages": []}).encode()
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection((p.host, p.port), timeout=IO_TIMEOUT)
            s.sendall(b"POST /v1/messages?pause=1 HTTP/1.1\r\nHost: x\r\nx-api-key: " +
                      TOKEN.encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
            socks.append(s)
        for s in socks:
            got = b""
            while b"message_start" not in got:
                chunk = s.recv(4096)
                assert chunk
                got += chunk
        assert not upstream.release.is_set() and p.records() == []
        upstream.release.set()
        for s in socks:
            got = b""
            while not got.endswith(b"0\r\n\r\n"):
                chunk = s.recv(65536)
                assert chunk, got[-200:]
                got += chunk
            assert b"message_stop" in got
    finally:
        for s in socks:
            s.close()
    recs = p.wait_records(n)
    assert len(recs) == n and len({r["call"] for r in recs}) == n
    assert all(r["output_tokens"] == 17 and r["status"] == 200 for r in recs)


def test_client_gone_mid_stream_is_recorded(upstream, proxy_factory):
    p = proxy_factory(upstream.url)
    s = socket.create_connection((p.host, p.port), timeout=IO_TIMEOUT)
    body = json.dumps({"model": "claude-gone", "stream": True, "messages": []}).encode()
    s.sendall(b"POST /v1/messages?pause=1 HTTP/1.1\r\nHost: x\r\nx-api-key: " + TOKEN.encode() +
              b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) +
              body)
    got = b""
    while b"message_start" not in got:
        chunk = s.recv(4096)
        assert chunk
        got += chunk
    s.close()
    upstream.release.set()
    rec = p.wait_records(1)[0]
    assert rec["model"] == "claude-gone" and rec["input_tokens"] == 321
    assert rec.get("error"), rec
    # And it still serves.
    r, _ = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
    assert r.status == 200


def test_upstream_connection_is_reused(upstream, proxy_factory):
    p = proxy_factory(upstream.url)
    for _ in range(3):
        r, _ = post(p.conn(), "/v1/messages/count_tokens", {"model": "m"}, {"x-api-key": TOKEN})
        assert r.status == 200
    peers = {e["peer"] for e in upstream.requests()}
    assert len(upstream.requests()) == 3 and len(peers) == 1, peers


def test_calls_at_once_each_get_a_connection_and_leave_it_warm(upstream, proxy_factory):
    """Four calls at once run on four upstream connections (curl does not
    support one connection cache shared by threads at once, so the proxy
    lends each call a handle with its own), and the next four calls at once
    find those four connections open."""
    p = proxy_factory(upstream.url)

    def burst():
        before = len(upstream.requests())
        upstream.release.clear()
        statuses = []

        def one():
            r, _ = post(p.conn(), "/v1/messages/count_tokens?hold", {"model": "m"},
                        {"x-api-key": TOKEN})
            statuses.append(r.status)
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(upstream.requests()) >= before + 4, IO_TIMEOUT,
                 what="four calls held upstream at once")
        upstream.release.set()
        for t in threads:
            t.join(IO_TIMEOUT * 3)
        assert statuses == [200] * 4, statuses
        return {e["peer"] for e in upstream.requests()[before:]}

    first = burst()
    assert len(first) == 4, first
    assert burst() == first


# ---- refusals ---------------------------------------------------------------

@pytest.mark.parametrize("headers", [{"x-api-key": REAL_KEY},
                                     {"authorization": "Bearer " + REAL_KEY},
                                     {"x-api-key": TOKEN, "authorization": "Bearer " + REAL_KEY}])
def test_real_key_refused_and_reported(upstream, proxy_factory, headers):
    p = proxy_factory(upstream.url)
    r, body = post(p.conn(), "/v1/messages?beta=true", {"model": "m"}, headers)
    assert r.status == 401
    kind, msg = api_error(body)
    assert kind == "authentication_error" and "real Anthropic API key" in msg
    assert REAL_KEY not in msg
    p.fb.wait_for(lambda seen: any(x["op"] == "proxy.refuse" for x in seen))
    assert [x["args"] for x in p.fb.requests("proxy.refuse")] == [
        {"reason": "real_key", "method": "POST", "path": "/v1/messages"}]
    assert p.fb.requests("proxy.authorize") == [] and upstream.requests() == []


def test_no_token_refused(upstream, proxy_factory):
    p = proxy_factory(upstream.url)
    r, body = post(p.conn(), "/v1/messages", {"model": "m"}, {"authorization": "Basic eDp5"})
    assert r.status == 401
    assert api_error(body)[0] == "authentication_error"
    assert "keywarden exec --proxy" in api_error(body)[1]
    p.fb.wait_for(lambda seen: any(x["op"] == "proxy.refuse" for x in seen))
    assert p.fb.requests("proxy.refuse")[0]["args"]["reason"] == "no_token"
    assert upstream.requests() == []


@pytest.mark.parametrize("token", ["kwp1_" + "a" * 5000, "kwp1_\u00e9t\u00e9", "kwp1_a b"])
def test_implausible_token_never_reaches_the_broker(upstream, proxy_factory, token):
    p = proxy_factory(upstream.url)
    s = socket.create_connection((p.host, p.port), timeout=IO_TIMEOUT)
    s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nx-api-key: " + token.encode() +
              b"\r\n\r\n")
    head = s.recv(65536)
    s.close()
    assert head.startswith(b"HTTP/1.1 401"), head[:100]
    p.fb.wait_for(lambda seen: any(x["op"] == "proxy.refuse" for x in seen))
    assert p.fb.requests("proxy.refuse")[0]["args"]["reason"] == "malformed"
    assert p.fb.requests("proxy.authorize") == [] and upstream.requests() == []


def test_broker_refusals_in_messages_api_shape(upstream, proxy_factory):
    tokens = {"kwp1_locked": ("locked", "keywarden: account alice is locked"),
              "kwp1_role": ("denied", "keywarden: role developer lacks read:key/anthropic"),
              "kwp1_budget": ("budget", "keywarden: daily token budget of role developer spent"),
              "kwp1_expired": ("expired", "keywarden: session expired; log in again")}
    p = proxy_factory(upstream.url, tokens=tokens)
    want = {"kwp1_locked": (403, "permission_error"), "kwp1_role": (403, "permission_error"),
            "kwp1_budget": (429, "rate_limit_error"),
            "kwp1_expired": (401, "authentication_error"),
            "kwp1_unknown": (401, "authentication_error")}
    for tok, (status, kind) in want.items():
        r, body = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": tok})
        assert (r.status, api_error(body)[0]) == (status, kind), (tok, body)
        msg = api_error(body)[1]
        assert msg.startswith("keywarden: ")
        if tok in tokens:
            assert msg == tokens[tok][1]
    assert upstream.requests() == [] and p.records() == []


def test_malformed_and_oversized_requests_leave_it_serving(upstream, proxy_factory):
    p = proxy_factory(upstream.url)

    def raw(data):
        s = socket.create_connection((p.host, p.port), timeout=IO_TIMEOUT)
        try:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass    # answered and closed before it read everything: read what it said
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        except ConnectionResetError:
            return out
        finally:
            s.close()

    # MHD answers 400 or just closes; either way nothing is forwarded.
    assert raw(b"GARBAGE\r\n\r\n")[:12] in (b"", b"HTTP/1.1 400")
    assert raw(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-length: zz\r\n\r\n")[:12] in (
        b"", b"HTTP/1.1 400")
    assert raw(b"GET http://evil.example/ HTTP/1.1\r\nHost: x\r\nx-api-key: " + TOKEN.encode() +
               b"\r\n\r\n").startswith(b"HTTP/1.1 400")
    big = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n"
    status = raw(big)[:12]
    assert status in (b"HTTP/1.1 431", b"HTTP/1.1 414", b"HTTP/1.1 400"), status
    many = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(20000)) + b"\r\n"
    assert raw(many)[:12] in (b"HTTP/1.1 431", b"HTTP/1.1 414", b"HTTP/1.1 400")
    huge = raw(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " + TOKEN.encode() +
               b"\r\ncontent-length: 40000000\r\n\r\n")
    assert huge.startswith(b"HTTP/1.1 413"), huge[:80]
    assert upstream.requests() == [] and p.fb.requests("proxy.authorize") == []
    p.fb.wait_for(lambda seen: len([x for x in seen if x["op"] == "proxy.refuse"]) >= 2)
    assert [x["args"]["reason"] for x in p.fb.requests("proxy.refuse")] == ["malformed"] * 2
    r, _ = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
    assert r.status == 200


# RFC 9112 6.3 and 11.2: requests whose end a later hop could read differently.
# Upstream connections are kept alive and shared between clients, so forwarding
# one of these lets its sender write the start of the next client's request.
SMUGGLING = {
    "two different Content-Lengths": [b"Content-Length: 11", b"Content-Length: 16"],
    "a space before the colon": [b"Content-Length: 11", b"X-Bad : value"],
    "a tab before the colon": [b"Content-Length: 11", b"X-Bad\t: value"],
    "a name that is not a token": [b"Content-Length: 11", b"X(Bad): value"],
    "Content-Length and Transfer-Encoding": [b"Content-Length: 11",
                                             b"Transfer-Encoding: chunked"],
    "a coding other than chunked": [b"Transfer-Encoding: gzip, chunked"],
    "a Content-Length list": [b"Content-Length: 11, 11"],
    "a signed Content-Length": [b"Content-Length: +11"],
}
# MHD answers these 400 itself, before the proxy sees the request: nothing to report.
SMUGGLING_MHD = {"a Content-Length list", "a signed Content-Length"}


@pytest.mark.parametrize("what", list(SMUGGLING))
def test_smuggling_shapes_refused_400_never_forwarded(upstream, proxy_factory, what):
    p = proxy_factory(upstream.url)
    body = b'{"model":1}'
    head = (b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: " + TOKEN.encode() +
            b"\r\ncontent-type: application/json\r\n" +
            b"".join(h + b"\r\n" for h in SMUGGLING[what]) + b"\r\n")
    s = socket.create_connection((p.host, p.port), timeout=IO_TIMEOUT)
    try:
        try:
            s.sendall(head + body + b"\r\n0\r\n\r\n")
        except OSError:
            pass        # answered and closed before it read everything
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    assert out.startswith(b"HTTP/1.1 400"), out[:200]
    if what not in SMUGGLING_MHD:
        p.fb.wait_for(lambda seen: any(x["op"] == "proxy.refuse" for x in seen))
        assert [x["args"] for x in p.fb.requests("proxy.refuse")] == [
            {"reason": "malformed", "method": "POST", "path": "/v1/messages"}]
    # The next call goes through, and it is the only one upstream saw.
    r, _ = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
    assert r.status == 200
    assert [(e["method"], e["body"]) for e in upstream.requests()] == [
        ("POST", json.dumps({"model": "m"}))]
    assert len(p.fb.requests("proxy.authorize")) == 1


def test_upstream_unreachable_is_502_and_recorded(proxy_factory):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = proxy_factory("http://127.0.0.1:%d" % port)
    r, body = post(p.conn(), "/v1/messages", {"model": "claude-x"}, {"x-api-key": TOKEN})
    assert r.status == 502
    kind, msg = api_error(body)
    assert kind == "api_error" and msg.startswith("keywarden: upstream unreachable")
    rec = p.wait_records(1)[0]
    assert rec["status"] == 502 and rec["model"] == "claude-x"
    assert rec["error"].startswith("keywarden: upstream unreachable")


# ---- start and stop ---------------------------------------------------------

def test_exits_when_broker_goes_away(upstream, proxy_factory):
    p = proxy_factory(upstream.url)
    # It runs as alice, cannot be dumped, and is inside Landlock (no_new_privs set).
    with open("/proc/%d/status" % p.proc.pid) as f:
        status = f.read()
    assert "\nUid:\t2001\t2001\t2001\t2001\n" in status
    assert "\nNoNewPrivs:\t1\n" in status
    r, _ = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
    assert r.status == 200
    p.fb.close()
    assert p.proc.wait(timeout=IO_TIMEOUT) == 0


def test_upstream_by_name_resolves_inside_landlock(upstream, proxy_factory):
    # getaddrinfo reads /etc/hosts and nsswitch.conf after Landlock closed the rest.
    p = proxy_factory("http://localhost:%d" % upstream.server_address[1])
    r, body = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
    assert r.status == 200, body
    assert header(upstream.requests()[0], "host") == "localhost:%d" % upstream.server_address[1]


def test_listens_on_ipv6_loopback(upstream, proxy_factory):
    p = proxy_factory(upstream.url, {"broker.apiProxy.listen": "[::1]:0"})
    assert p.listen.startswith("[::1]:") and p.port > 0
    r, _ = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
    assert r.status == 200


def run_refused(tmp, base_url, extra):
    p = Proxy(tmp, base_url, extra)
    proc = p.fb.start(setpriv("alice", [PROXY_BIN, "--broker-fd", "{fd}", "--config", p.config]))
    rc = proc.wait(timeout=START_TIMEOUT)
    err = proc.stderr.read().decode()
    p.fb.stop()
    assert p.fb.requests("proxy.ready") == []
    return rc, err


@pytest.mark.parametrize("base,extra,needle", [
    ("http://127.0.0.1:9", {"broker.apiProxy.listen": "0.0.0.0:0"}, "not a loopback address"),
    ("http://127.0.0.1:9", {"security.network.enforceHttps": True}, "enforceHttps"),
    ("https://evil.example.net", {"security.network.allowedHosts": ["api.anthropic.com"]},
     "allowedHosts"),
    ("https://127.0.0.1:9", {"security.network.caFile": "/nonexistent/ca.pem"},
     "security.network.caFile: cannot read /nonexistent/ca.pem"),
])
def test_config_refusals_stop_the_start(tmp, base, extra, needle):
    rc, err = run_refused(tmp, base, extra)
    assert rc == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1, err


def test_refuses_without_a_broker_fd(tmp):
    cp = subprocess.run([PROXY_BIN], capture_output=True, text=True, timeout=START_TIMEOUT)
    assert cp.returncode == 2 and "--broker-fd" in cp.stderr


def test_unverified_tls_warns_at_start(upstream, proxy_factory):
    p = proxy_factory(upstream.url, {"security.network.verifyCertificates": False})
    err = p.stop()
    assert "verifyCertificates is false" in err


def test_listen_port_in_use_is_refused(upstream, tmp):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        rc, err = run_refused(tmp, upstream.url,
                              {"broker.apiProxy.listen": "127.0.0.1:%d" % s.getsockname()[1]})
    finally:
        s.close()
    assert rc == 2 and "cannot listen" in err, err


# ---- upstream TLS -----------------------------------------------------------

@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="kw-proxy-pki-")
    os.chmod(d, 0o755)

    def sh(*argv):
        subprocess.run(argv, cwd=d, check=True, capture_output=True)
    for ca in ("ca", "other"):
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
           "-nodes", "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
           "-subj", "/CN=kw-test-" + ca)
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    sh("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
       "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def tls_upstream(pki, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(pki, "srv.pem"), os.path.join(pki, "srv.key"))
    if max_version:
        ctx.maximum_version = max_version
    return Upstream(ctx)


def tls_config(pki, ca="ca.pem", **extra):
    cfg = {"security.network.enforceHttps": True,
           "security.network.caFile": os.path.join(pki, ca)}
    cfg.update(extra)
    return cfg


def test_tls13_upstream_with_ca_file(pki, proxy_factory):
    u = tls_upstream(pki)
    try:
        p = proxy_factory(u.url, tls_config(pki))
        r, body = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
        assert r.status == 200, body
        assert header(u.requests()[0], "x-api-key") == REAL_KEY
    finally:
        u.stop()


def test_tls12_only_upstream_refused_under_tls13(pki, proxy_factory):
    u = tls_upstream(pki, ssl.TLSVersion.TLSv1_2)
    try:
        p = proxy_factory(u.url, tls_config(pki))
        r, body = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
        assert r.status == 502
        kind, msg = api_error(body)
        assert kind == "api_error" and "upstream TLS handshake failed" in msg, msg
        assert u.requests() == []
        # With TLS1.2 allowed, the same upstream answers.
        p2 = proxy_factory(u.url, tls_config(
            pki, **{"security.encryption.inTransit.protocol": "TLS1.2"}))
        r, body = post(p2.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
        assert r.status == 200, body
    finally:
        u.stop()


def test_untrusted_certificate_refused(pki, proxy_factory):
    u = tls_upstream(pki)
    try:
        p = proxy_factory(u.url, tls_config(pki, ca="other.pem"))
        r, body = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
        assert r.status == 502
        kind, msg = api_error(body)
        assert "certificate verify failed" in msg, msg
        assert u.requests() == []
        rec = p.wait_records(1)[0]
        assert rec["status"] == 502 and "certificate verify failed" in rec["error"]
    finally:
        u.stop()


# ---- the corporate proxy (api.proxy.*) --------------------------------------

class ConnectProxy(threading.Thread):
    """A minimal HTTP CONNECT proxy with basic auth: records each CONNECT's
    target and Proxy-Authorization, answers 407 to wrong credentials, then
    pipes bytes both ways."""

    def __init__(self, user, password):
        super().__init__(daemon=True)
        import base64
        self.want = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(4096)
            if not chunk:
                c.close()
                return
            head += chunk
        lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        target = lines[0].split()[1]
        auth = next((l.split(":", 1)[1].strip() for l in lines[1:]
                     if l.lower().startswith("proxy-authorization:")), None)
        self.seen.append({"request": lines[0], "auth": auth, "head": head.decode("latin-1")})
        if auth != self.want:
            c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                      b"Proxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n")
            c.close()
            return
        host, port = target.rsplit(":", 1)
        up = socket.create_connection((host, int(port)))
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        threading.Thread(target=pipe, args=(up, c), daemon=True).start()
        pipe(c, up)

    def stop(self):
        # Wake the accept loop and let it end before the descriptor is
        # closed: closed first, its number could be handed to a later test's
        # listening socket while this thread is about to accept on it.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.join(10)
        self.sock.close()


def corp_config(cp, **extra):
    cfg = {"api.proxy.enabled": True, "api.proxy.host": "127.0.0.1", "api.proxy.port": cp.port,
           "api.proxy.protocol": "http", "api.proxy.auth.type": "basic",
           "api.proxy.auth.username": "${KW_T_PROXY_USER}",
           "api.proxy.auth.password": "${KW_T_PROXY_PASS}"}
    cfg.update(extra)
    return cfg


def test_through_corporate_proxy_with_env_credentials(pki, tmp):
    secret = "corp-pass-%s" % os.getpid()
    cp = ConnectProxy("svc-user", secret)
    u = tls_upstream(pki)
    p = Proxy(tmp, u.url, dict(tls_config(pki), **corp_config(cp)))
    p.fb.env = dict(os.environ, KW_T_PROXY_USER="svc-user", KW_T_PROXY_PASS=secret)
    try:
        p.start()
        r, body = post(p.conn(), "/v1/messages", {"model": "m"},
                       {"x-api-key": TOKEN, "anthropic-version": "2023-06-01"})
        assert r.status == 200, body
        assert "anthropic-version" not in cp.seen[0]["head"].lower()
        assert cp.seen and cp.seen[0]["request"].startswith(
            "CONNECT 127.0.0.1:%d " % u.server_address[1])
        assert header(u.requests()[0], "x-api-key") == REAL_KEY
        # The corporate proxy sees a CONNECT, never the key nor the client's headers.
        assert REAL_KEY not in cp.seen[0]["head"] and TOKEN not in cp.seen[0]["head"]
        assert "x-api-key" not in cp.seen[0]["head"].lower()
        # The expanded password is not in the configuration the proxy was given.
        with open(p.config) as f:
            assert secret not in f.read()
    finally:
        err = p.stop()
        u.stop()
        cp.stop()
    assert secret not in err


def test_corporate_proxy_credentials_missing_or_wrong(pki, tmp):
    cp = ConnectProxy("svc-user", "right")
    u = tls_upstream(pki)
    p = Proxy(tmp, u.url, dict(tls_config(pki), **corp_config(cp)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KW_T_PROXY")}
    p.fb.env = dict(env, KW_T_PROXY_USER="svc-user")
    try:
        p.start()
        r, body = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
        assert r.status == 502
        msg = api_error(body)[1]
        assert "KW_T_PROXY_PASS is not set" in msg, msg
        assert cp.seen == [] and u.requests() == []
    finally:
        p.stop()
    p = Proxy(tmp, u.url, dict(tls_config(pki), **corp_config(cp)))
    p.fb.env = dict(env, KW_T_PROXY_USER="svc-user", KW_T_PROXY_PASS="wrong")
    try:
        p.start()
        r, body = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
        assert r.status == 502 and "407" in api_error(body)[1], body
        assert u.requests() == []
    finally:
        err = p.stop()
        u.stop()
        cp.stop()
    assert "wrong" not in err


# ---- the suite's stand-in Messages API over TLS (tls_ca.py) ----------------

@pytest.fixture(scope="module")
def test_ca():
    from tls_ca import TestCA
    d = tempfile.mkdtemp(prefix="kw-proxy-ca-")
    os.chmod(d, 0o755)
    yield TestCA(d)
    shutil.rmtree(d, ignore_errors=True)


def test_stand_in_over_tls13_streams_through_held_reply(tmp, test_ca, proxy_factory):
    hold = threading.Event()
    srv = AnthropicServer(os.path.join(tmp, "api.log"), reply_text="one two three four",
                          expect_key=REAL_KEY, tls=test_ca.server, stream_pause=hold)
    srv.start()
    try:
        p = proxy_factory(srv.url, {"security.network.enforceHttps": True,
                                    "security.network.caFile": test_ca.ca_pem})
        c = p.conn()
        c.request("POST", "/v1/messages?beta=true", json.dumps(
            {"model": "claude-sonnet-4-5", "stream": True, "max_tokens": 9,
             "messages": [{"role": "user", "content": "hi"}]}).encode(),
            {"authorization": "Bearer " + TOKEN, "content-type": "application/json",
             "anthropic-version": "2023-06-01"})
        r = c.getresponse()
        assert r.status == 200
        got = b""
        while b"text_delta" not in got:
            chunk = r.read1(4096)
            assert chunk, got
            got += chunk
        # The first text arrived while the stand-in holds the rest.
        assert srv.paused.is_set() and not hold.is_set()
        hold.set()
        got += r.read()
        assert b"message_stop" in got
        reqs = srv.requests()
        assert len(reqs) == 1 and reqs[0]["tls"] == "TLSv1.3"
        assert reqs[0]["x-api-key"] == REAL_KEY and reqs[0]["authorization"] is None
        rec = p.wait_records(1)[0]
        assert rec["model"] == "claude-sonnet-4-5" and rec["output_tokens"] > 0
        assert rec["input_tokens"] > 0 and rec["bytes_out"] == len(got)
    finally:
        hold.set()
        srv.stop()


def test_certificate_for_another_name_refused(tmp, test_ca, proxy_factory):
    srv = AnthropicServer(os.path.join(tmp, "api.log"), tls=test_ca.mismatch_server)
    srv.start()
    try:
        p = proxy_factory(srv.url, {"security.network.enforceHttps": True,
                                    "security.network.caFile": test_ca.ca_pem})
        r, body = post(p.conn(), "/v1/messages", {"model": "m"}, {"x-api-key": TOKEN})
        assert r.status == 502
        msg = api_error(body)[1]
        assert "upstream certificate verify failed" in msg and "name" in msg, msg
        assert srv.requests() == []
    finally:
        srv.stop()
