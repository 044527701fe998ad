"""
A stand-in for Anthropic's Messages API on 127.0.0.1, for running the real
Claude Code CLI offline (../shared/TESTING.md, "The real Claude Code CLI as a
client").

It answers POST /v1/messages (Claude Code calls /v1/messages?beta=true) with a
Messages API reply: a stream of server-sent events (message_start,
content_block_start, ping, content_block_delta, content_block_stop,
message_delta, message_stop) when the request asks for "stream": true, one
JSON message otherwise.  /v1/messages/count_tokens gets a token count; any
other path gets 404 with an API-shaped error body.  Every request is recorded,
one JSON object a line, in the log file: method, path, the x-api-key and
Authorization header values (None when absent), the model, whether it
streamed, and the status it got.

With `expect_key` set, a request whose x-api-key (or Bearer token) is not that
key gets 401 authentication_error, as the real API would answer it.

With `tool_uses` (a list of {"name": TOOL, "input": {...}}), the stand-in
plays a model that calls tools: a request that offers tools (its body has
"tools") and whose last message carries no tool_result is answered with the
next scripted tool use -- a `tool_use` content block streamed as
content_block_start (input {}), input_json_delta chunks, content_block_stop,
then message_delta with stop_reason "tool_use" -- and Claude Code runs the
tool (or its hooks refuse it) and sends the result back in the next request,
which gets the text reply.  Requests without tools (Claude Code's side
requests) always get text.  `on_tool_use(use)`, when given, runs just before
a tool use is sent.  Each log entry then also holds "tools" (offered or not),
"tool_results" (every tool_result block of the last message: tool_use_id,
its text, is_error) and "tool_use" (the id and name sent, or None); the raw
request bodies are kept too (bodies(), sent(needle)), so a test can show
what did or did not reach the API.

Use from a test:

    srv = AnthropicServer(log_path, reply_text="...", expect_key="sk-ant-...")
    srv.start()            # srv.port, srv.url
    ...
    srv.requests()         # the recorded requests, oldest first
    srv.tool_results()     # every tool_result Claude Code sent back
    srv.sent("marker")     # did any request body carry the text?
    srv.stop()

or run it alone: python3 anthropic_server.py LOG [REPLY_TEXT] (prints the URL).

Over TLS (for the API proxy, which only talks TLS upstream): `tls=(certfile,
keyfile)` serves HTTPS (srv.url is then https://127.0.0.1:PORT), with
`min_version`/`max_version` (ssl.TLSVersion) bounding the versions offered --
max_version=ssl.TLSVersion.TLSv1_2 makes a TLS 1.2-only upstream.  The
handshake runs in the request's own thread; each one that fails is counted
(srv.tls_failures(): the reasons, oldest first) and served nothing; each that
succeeds records its version in the request log ("tls": "TLSv1.3", None over
plain HTTP).

`stall_first=N` takes the first N TLS connections and never answers their
handshake (what the client sends is read and dropped) until the client
hangs up; srv.events() tells each connection's course ("accepted",
"stalled", "handshake done" or "handshake failed", with monotonic times).

`stream_pause` (a threading.Event) holds every streamed text reply after its
first text delta until the event is set (at most 60 s); srv.paused (an Event)
is set when a stream has reached that point, so a test can see the first half
arrive through a proxy before the rest is sent.
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_MODEL = "claude-sonnet-4-5"


PAUSE = object()         # in a stream's event list: where stream_pause holds it


def sse(event, data):
    return ("event: %s\ndata: %s\n\n" % (event, json.dumps(data))).encode()


def api_error(kind, message):
    return {"type": "error", "error": {"type": kind, "message": message}}


def bearer(value):
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


def block_text(content):
    """A tool_result's content as text: a string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content
                         if isinstance(b, dict) and b.get("type") == "text")
    return ""


def tool_results(doc):
    """The tool_result blocks of a request's last message."""
    msgs = doc.get("messages") if isinstance(doc, dict) else None
    if not isinstance(msgs, list) or not msgs or not isinstance(msgs[-1], dict):
        return []
    content = msgs[-1].get("content")
    if msgs[-1].get("role") != "user" or not isinstance(content, list):
        return []
    return [{"tool_use_id": b.get("tool_use_id"), "text": block_text(b.get("content")),
             "is_error": bool(b.get("is_error"))}
            for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kw-anthropic-stand-in/1"

    def log_message(self, fmt, *args):   # quiet: the log file is the record
        pass

    def setup(self):
        # The TLS handshake here, in the request's thread: a client that
        # never finishes it holds up no one else.
        if isinstance(self.request, ssl.SSLSocket):
            self.server.event("accepted %s:%d" % self.client_address[:2])
            with self.server.lock:
                stall = self.server.stalls_left > 0
                self.server.stalls_left -= stall
            if stall:
                self._stall()
            self.request.settimeout(30)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                self.server.event("handshake failed %s:%d: %s" % (self.client_address[:2] + (e,)))
                with self.server.lock:
                    self.server.tls_failures.append(str(e))
                raise
            self.server.event("handshake done %s:%d" % self.client_address[:2])
            self.request.settimeout(None)
        super().setup()

    def _stall(self):
        # The TCP connection is taken and the TLS handshake never answered
        # (its hello read and dropped, below TLS) until the client gives up.
        sock = self.request
        sock.settimeout(120)
        try:
            while socket.socket.recv(sock, 4096):
                pass
        except OSError:
            pass
        self.server.event("stalled %s:%d until it hung up" % self.client_address[:2])
        raise ConnectionAbortedError("stalled on purpose")

    # -- recording ------------------------------------------------------------
    def _record(self, status, body_doc, tool_use=None):
        srv = self.server
        entry = {
            "method": self.command,
            "path": self.path,
            "x-api-key": self.headers.get("x-api-key"),
            "authorization": self.headers.get("authorization"),
            "anthropic-version": self.headers.get("anthropic-version"),
            "user-agent": self.headers.get("user-agent"),
            "model": body_doc.get("model") if isinstance(body_doc, dict) else None,
            "stream": bool(body_doc.get("stream")) if isinstance(body_doc, dict) else False,
            "status": status,
            "tools": bool(body_doc.get("tools")) if isinstance(body_doc, dict) else False,
            "tool_results": tool_results(body_doc),
            "tool_use": tool_use,
            "tls": self.connection.version() if isinstance(self.connection, ssl.SSLSocket)
            else None,
        }
        with srv.lock:
            with open(srv.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()

    def _body(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        with self.server.lock:
            self.server.bodies.append(raw)
        try:
            return json.loads(raw.decode("utf-8")) if raw else {}
        except ValueError:
            return None

    def _send_json(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self):
        want = self.server.expect_key
        got = self.headers.get("x-api-key") or bearer(self.headers.get("authorization"))
        if not got:
            return False
        return want is None or got == want

    # -- methods --------------------------------------------------------------
    def do_GET(self):
        self._record(404, None)
        self._send_json(404, api_error("not_found_error", "Not found: %s" % self.path))

    def do_HEAD(self):
        self._record(200, None)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self):
        doc = self._body()
        route = self.path.split("?", 1)[0]
        if route not in ("/v1/messages", "/v1/messages/count_tokens"):
            self._record(404, doc)
            self._send_json(404, api_error("not_found_error", "Not found: %s" % self.path))
            return
        if doc is None or not isinstance(doc, dict):
            self._record(400, None)
            self._send_json(400, api_error("invalid_request_error", "body is not JSON"))
            return
        if not self._authorized():
            self._record(401, doc)
            self._send_json(401, api_error("authentication_error", "invalid x-api-key"))
            return
        if route == "/v1/messages/count_tokens":
            self._record(200, doc)
            self._send_json(200, {"input_tokens": 12})
            return
        use = self._next_tool_use(doc)
        self._record(200, doc, use and {"id": use["id"], "name": use["name"]})
        model = doc.get("model") or DEFAULT_MODEL
        text = self.server.reply_text
        msg_id = "msg_" + uuid.uuid4().hex[:24]
        usage = {"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}
        if use is not None:
            if self.server.on_tool_use:
                self.server.on_tool_use(use)
            if doc.get("stream"):
                self._stream(msg_id, model, usage, self._tool_use_events(use), "tool_use")
            else:
                self._send_json(200, {
                    "id": msg_id, "type": "message", "role": "assistant", "model": model,
                    "content": [dict(use, type="tool_use")], "stop_reason": "tool_use",
                    "stop_sequence": None, "usage": usage})
            return
        if not doc.get("stream"):
            self._send_json(200, {
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": dict(usage, output_tokens=len(text.split()))})
            return
        half = len(text) // 2
        self._stream(msg_id, model, usage, [
            sse("content_block_start", {"type": "content_block_start", "index": 0,
                                        "content_block": {"type": "text", "text": ""}}),
            sse("ping", {"type": "ping"}),
            sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": text[:half]}}),
            PAUSE,
            sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": text[half:]}}),
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ], "end_turn", len(text.split()))

    # -- the scripted model ---------------------------------------------------
    def _next_tool_use(self, doc):
        """The next scripted tool use, with an id, if this request is a turn
        that offers tools and answers no tool use; else None."""
        srv = self.server
        if not doc.get("tools") or tool_results(doc):
            return None
        with srv.lock:
            if not srv.tool_uses:
                return None
            use = srv.tool_uses.pop(0)
        return {"id": "toolu_" + uuid.uuid4().hex[:24], "name": use["name"],
                "input": use.get("input", {})}

    @staticmethod
    def _tool_use_events(use):
        """A tool_use block as the API streams it: input {} at the start,
        then the input's JSON in pieces (input_json_delta)."""
        text = json.dumps(use["input"])
        cut = [0, len(text) // 3, 2 * len(text) // 3, len(text)]
        return [
            sse("content_block_start", {"type": "content_block_start", "index": 0,
                                        "content_block": {"type": "tool_use", "id": use["id"],
                                                          "name": use["name"], "input": {}}}),
            sse("ping", {"type": "ping"}),
            sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "input_json_delta",
                                                  "partial_json": ""}}),
        ] + [
            sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "input_json_delta",
                                                  "partial_json": text[a:b]}})
            for a, b in zip(cut, cut[1:]) if b > a
        ] + [
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ]

    def _stream(self, msg_id, model, usage, blocks, stop_reason, output_tokens=1):
        """message_start, the content blocks' events, message_delta, message_stop."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        self.close_connection = True
        events = [
            sse("message_start", {"type": "message_start", "message": {
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}}),
        ] + blocks + [
            sse("message_delta", {"type": "message_delta",
                                  "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                  "usage": {"output_tokens": output_tokens}}),
            sse("message_stop", {"type": "message_stop"}),
        ]
        for e in events:
            if e is PAUSE:
                if self.server.stream_pause is not None:
                    self.server.paused.set()
                    self.server.stream_pause.wait(60)
                continue
            self.wfile.write(e)
            self.wfile.flush()


class AnthropicServer:
    def __init__(self, log_path, reply_text="Hello from the keywarden stand-in.",
                 expect_key=None, tool_uses=None, on_tool_use=None, tls=None,
                 min_version=None, max_version=None, stream_pause=None, stall_first=0):
        self.log_path = log_path
        self.tls = tls
        self.min_version = min_version
        self.max_version = max_version
        self.stream_pause = stream_pause
        self.paused = threading.Event()
        self._tls_failures = []
        self._events = []       # (monotonic time, what) of each connection's TLS
        self.stall_first = stall_first
        self.reply_text = reply_text
        self.expect_key = expect_key
        self.tool_uses = [dict(u) for u in tool_uses or []]
        self.on_tool_use = on_tool_use
        self._bodies = []       # kept after stop(), like the log
        self._lock = threading.Lock()
        self.httpd = None
        self.thread = None
        open(log_path, "a").close()

    def start(self):
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.handle_error = lambda request, address: None   # failures are recorded
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls[0], self.tls[1])
            if self.min_version is not None:
                ctx.minimum_version = self.min_version
            if self.max_version is not None:
                ctx.maximum_version = self.max_version
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True,
                                           do_handshake_on_connect=False)
        httpd.stream_pause = self.stream_pause
        httpd.paused = self.paused
        httpd.tls_failures = self._tls_failures
        httpd.log_path = self.log_path
        httpd.reply_text = self.reply_text
        httpd.expect_key = self.expect_key
        httpd.tool_uses = self.tool_uses
        httpd.on_tool_use = self.on_tool_use
        httpd.bodies = self._bodies
        httpd.lock = self._lock
        httpd.events = self._events
        httpd.stalls_left = self.stall_first

        def event(what):
            with self._lock:
                self._events.append("%.3f %s" % (time.monotonic(), what))
        httpd.event = event
        self.httpd = httpd
        self.thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def tls_failures(self):
        """The reasons of the TLS handshakes that failed, oldest first."""
        with self._lock:
            return list(self._tls_failures)

    def diagnose(self):
        """What a failed call needs explained (text): the stand-in's TLS
        failures, its sockets as the kernel sees them, and where every
        thread of this process is."""
        out = ["stand-in %s: tls failures %r" % (self.url if self.httpd else "stopped",
                                                  self.tls_failures()),
               "now %.3f; its connections:" % time.monotonic()]
        with self._lock:
            out += self._events[-20:]
        if self.httpd:
            port = self.port
            try:
                out.append(subprocess.run(
                    ["ss", "-tanpi", "( sport = :%d or dport = :%d )" % (port, port)],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    universal_newlines=True, timeout=10).stdout)
            except (OSError, subprocess.SubprocessError) as e:
                out.append("ss: %s" % e)
        frames = sys._current_frames()
        out.append("%d threads in pid %d" % (len(frames), os.getpid()))
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in frames.items():
            out.append("-- thread %s %s\n%s" % (ident, names.get(ident, "?"),
                                                "".join(traceback.format_stack(frame)[-6:])))
        return "\n".join(out)

    def events(self):
        """What happened to each TLS connection, oldest first ("TIME what")."""
        with self._lock:
            return list(self._events)

    def requests(self):
        """The recorded requests, oldest first."""
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def messages(self):
        """The recorded requests to /v1/messages (not count_tokens)."""
        return [r for r in self.requests() if r["method"] == "POST" and
                r["path"].split("?", 1)[0] == "/v1/messages"]

    def tool_uses_sent(self):
        """The tool uses the stand-in sent ({"id", "name"}), oldest first."""
        return [r["tool_use"] for r in self.requests() if r.get("tool_use")]

    def tool_results(self):
        """Every tool_result block Claude Code sent back, oldest first."""
        return [t for r in self.requests() for t in r.get("tool_results", [])]

    def bodies(self):
        """The raw request bodies, oldest first (bytes)."""
        with self._lock:
            return list(self._bodies)

    def sent(self, needle):
        """Whether any request body held needle (as is, or JSON-escaped)."""
        forms = {needle.encode(), json.dumps(needle)[1:-1].encode()}
        return any(f in b for b in self.bodies() for f in forms)

    def clear(self):
        with self._lock:
            open(self.log_path, "w").close()
            del self._bodies[:]

    def stop(self):
        if self.httpd is not None:
            # shutdown() waits without a bound for serve_forever to notice;
            # a stop must never hang a test run, so it gets 10 s.
            t = threading.Thread(target=self.httpd.shutdown, daemon=True)
            t.start()
            t.join(10)
            self.httpd.server_close()
            self.httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: anthropic_server.py LOG [REPLY_TEXT]")
    srv = AnthropicServer(sys.argv[1], *sys.argv[2:3]).start()
    print(srv.url, flush=True)
    try:
        srv.thread.join()
    except KeyboardInterrupt:
        srv.stop()
