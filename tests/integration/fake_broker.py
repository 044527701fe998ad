"""
A stand-in for keywardend's side of the proxy's fd (proxy/DESIGN.md, "The
protocol between the proxy and the broker"), for testing keywarden-proxy on
its own.

It makes a socketpair, starts the real proxy with one end as --broker-fd, and
answers on the other: frames of a 4-byte big-endian length and a JSON body,
`hello` first, then proxy.ready / proxy.authorize / proxy.refuse /
proxy.record.  Every request is kept (requests(op)), so a test can assert
what the proxy reported.  authorize answers from `tokens`: token -> key
(allowed) or token -> ("code", "message") (refused).

    fb = FakeBroker(tokens={"kwp1_ok": "sk-ant-real"})
    fb.start([proxy_binary, "--broker-fd", "{fd}", "--config", cfg])
    fb.wait_ready()        # the "listen" the proxy reported
    ...
    fb.close()             # the broker goes away: the proxy should exit
"""
import itertools
import json
import os
import socket
import struct
import subprocess
import threading
import time


class FakeBroker:
    def __init__(self, tokens=None, env=None, authorize_delay=0.0):
        self.tokens = dict(tokens or {})
        self.env = env
        self.authorize_delay = authorize_delay
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.seen = []
        self.batches = 0       # proxy.record requests that carried a list
        self.calls = itertools.count(1)
        self.proc = None
        self.sock = None
        self.listen = None

    # -- process ---------------------------------------------------------------
    def start(self, argv, preexec_fn=None):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = ours
        self._sock = ours       # the server thread's, kept after close()
        fd = theirs.fileno()

        # "{fd}" in argv names the proxy's end (the broker uses 3; any works).
        argv = [a.replace("{fd}", str(fd)) for a in argv]
        self.proc = subprocess.Popen(argv, pass_fds=(fd,), preexec_fn=preexec_fn,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=self.env)
        theirs.close()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self.proc

    def close(self):
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None

    def stop(self):
        self.close()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait(timeout=10)

    # -- what the proxy said ---------------------------------------------------
    def requests(self, op=None):
        with self.lock:
            return [r for r in self.seen if op is None or r["op"] == op]

    def wait_for(self, pred, timeout=10.0):
        """Wait until pred(requests) is true; returns the requests."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(list(self.seen)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("fake broker: condition not met; saw %r" %
                                         [r["op"] for r in self.seen])
                self.cond.wait(left)
            return list(self.seen)

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                ready = [r for r in self.seen if r["op"] == "proxy.ready"]
            if ready:
                return ready[0]["args"]["listen"]
            if self.proc.poll() is not None:
                raise AssertionError("proxy exited %d: %s" % (
                    self.proc.returncode, self.proc.stderr.read().decode()))
            with self.cond:
                self.cond.wait(0.05)
        raise AssertionError("proxy never said proxy.ready")

    # -- protocol --------------------------------------------------------------
    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _send(self, doc):
        body = json.dumps(doc).encode()
        self._sock.sendall(struct.pack(">I", len(body)) + body)

    def _answer(self, req):
        op, args = req.get("op"), req.get("args") or {}
        if op == "hello":
            return {"version": 1, "server": "fake-broker"}, None
        if op == "proxy.authorize":
            if self.authorize_delay:
                time.sleep(self.authorize_delay)
            got = self.tokens.get(args.get("token"))
            if got is None:
                return None, ("session_required", "keywarden: token expired or revoked")
            if isinstance(got, tuple):
                return None, got
            call = next(self.calls)         # a number, as keywardend's
            return {"call": call, "user": "alice", "key": "anthropic", "version": 1,
                    "value": got}, None
        if op == "proxy.record" and "records" in args:
            return {"recorded": len(args["records"]), "refused": 0}, None
        if op in ("proxy.ready", "proxy.refuse", "proxy.record"):
            return {}, None
        return None, ("unknown_op", "unknown op")

    def _serve(self):
        try:
            while True:
                head = self._recv_exact(4)
                if head is None:
                    return
                body = self._recv_exact(struct.unpack(">I", head)[0])
                if body is None:
                    return
                req = json.loads(body)
                args = req.get("args") or {}
                with self.cond:
                    # A batch of records (proxy.record {records: [...]}) is
                    # kept as the records it carries, each as if sent alone.
                    if req.get("op") == "proxy.record" and "records" in args:
                        self.batches += 1
                        for rec in args["records"]:
                            self.seen.append({"op": "proxy.record", "args": rec})
                    else:
                        self.seen.append({"op": req.get("op"), "args": args})
                    self.cond.notify_all()
                result, error = self._answer(req)
                if error:
                    self._send({"id": req.get("id"), "ok": False,
                                "error": {"code": error[0], "message": error[1]}})
                else:
                    self._send({"id": req.get("id"), "ok": True, "result": result})
        except OSError:
            return
