"""
A corporate proxy stand-in: HTTP CONNECT on 127.0.0.1, optional Basic auth.

`api.proxy.*` sends the API proxy's upstream traffic through a proxy like
this one.  It answers CONNECT host:port with "200 Connection established"
and then copies bytes both ways (the TLS inside is the client's and the
upstream's: this proxy sees none of it).  With `auth=(user, password)` a
CONNECT without Proxy-Authorization, or with other credentials, gets
407 Proxy Authentication Required (Proxy-Authenticate: Basic).  Any other
method gets 405.

Every CONNECT is recorded, one JSON object a line in the log file and in
memory (requests()): the target, "auth" ("none", "ok" or "wrong") and the
user name it offered (never the password), and the status answered.

    px = ConnectProxy(log_path, auth=("proxyuser", "s3cret")).start()
    px.port
    px.requests()          # [{"target": "127.0.0.1:4443", "auth": "ok", ...}]
    px.stop()
"""
import base64
import binascii
import json
import select
import socket
import threading
import time
from socketserver import StreamRequestHandler, ThreadingTCPServer

HEADER_MAX = 64
EVENTS = []     # (monotonic time, what): every tunnel's steps, for a failed test to show
LINE_MAX = 8192


class Handler(StreamRequestHandler):
    timeout = 30
    # Unbuffered: the request head is read a byte at a time, so nothing the
    # client sends after it (its TLS hello) is left in a buffer of ours.
    rbufsize = 0

    def _reply(self, status, reason, headers=()):
        lines = ["HTTP/1.1 %d %s" % (status, reason)] + list(headers)
        if status != 200:
            lines += ["Content-Length: 0", "Connection: close"]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.wfile.flush()

    def _headers(self):
        headers = {}
        for _ in range(HEADER_MAX):
            line = self.rfile.readline(LINE_MAX).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                return headers
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return None

    def _auth(self, headers):
        """("none"|"ok"|"wrong", the user name offered or None)."""
        value = headers.get("proxy-authorization")
        if not value:
            return "none", None
        scheme, _, cred = value.partition(" ")
        if scheme.lower() != "basic":
            return "wrong", None
        try:
            user, _, password = base64.b64decode(cred.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "wrong", None
        want = self.server.auth
        return ("ok" if want is None or (user, password) == tuple(want) else "wrong"), user

    def handle(self):
        EVENTS.append("%.3f connect-proxy accepted %s:%d" % ((time.monotonic(),) + self.client_address[:2]))
        line = self.rfile.readline(LINE_MAX).decode("latin-1").strip()
        parts = line.split()
        headers = self._headers()
        if len(parts) != 3 or headers is None:
            self._reply(400, "Bad Request")
            return
        method, target = parts[0], parts[1]
        if method != "CONNECT":
            self.server.record({"method": method, "target": target, "auth": "none",
                                "user": None, "status": 405})
            self._reply(405, "Method Not Allowed")
            return
        auth, user = self._auth(headers)
        if self.server.auth is not None and auth != "ok":
            self.server.record({"method": method, "target": target, "auth": auth,
                                "user": user, "status": 407})
            self._reply(407, "Proxy Authentication Required",
                        ['Proxy-Authenticate: Basic realm="kw-test-proxy"'])
            return
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError):
            self.server.record({"method": method, "target": target, "auth": auth,
                                "user": user, "status": 502})
            self._reply(502, "Bad Gateway")
            return
        self.server.record({"method": method, "target": target, "auth": auth,
                            "user": user, "status": 200})
        self._reply(200, "Connection established")
        EVENTS.append("%.3f connect-proxy tunnel %s -> %s:%d" % (
            (time.monotonic(), target) + upstream.getsockname()[:2]))
        self._pipe(upstream)

    def _pipe(self, upstream):
        """Copy both ways until either side closes."""
        client = self.connection
        client.settimeout(None)
        upstream.settimeout(None)
        try:
            while True:
                r, _, _ = select.select([client, upstream], [], [], 300)
                if not r:
                    return
                for s in r:
                    data = s.recv(65536)
                    EVENTS.append("%.3f connect-proxy %s %d bytes" % (
                        time.monotonic(), "up" if s is client else "down", len(data)))
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()


class ConnectProxy:
    def __init__(self, log_path, auth=None):
        self.log_path = log_path
        self.auth = auth
        self._entries = []
        self._lock = threading.Lock()
        self.server = None
        open(log_path, "a").close()

    def _record(self, entry):
        with self._lock:
            self._entries.append(entry)
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def start(self):
        ThreadingTCPServer.allow_reuse_address = True
        srv = ThreadingTCPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        srv.auth = self.auth
        srv.record = self._record
        srv.handle_error = lambda request, address: None
        self.server = srv
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return self

    @property
    def port(self):
        return self.server.server_address[1]

    def requests(self):
        with self._lock:
            return list(self._entries)

    def stop(self):
        if self.server is not None:
            # shutdown() waits without a bound: a stop gets 10 s, never a hang.
            t = threading.Thread(target=self.server.shutdown, daemon=True)
            t.start()
            t.join(10)
            self.server.server_close()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
