"""The broker under slow, many and hostile clients."""
import json
import os
import random
import socket
import struct
import threading
import time

import pytest

from conftest import (FRAME_MAX, IO_TIMEOUT, MALFORMED_CODES, SANITIZE, SLOW, Client,
                      assert_error, assert_ok, frame, wait_for)


def _serve_one(path, results, idx):
    """hello + status on a fresh connection; records (ok, finish time, detail)."""
    try:
        with Client(path) as c:
            assert_ok(c.hello())
            res = assert_ok(c.call("status"))
            assert res["caller"]["pid"] == os.getpid()
        results[idx] = (True, time.monotonic(), None)
    except Exception as e:  # reported by the main thread
        results[idx] = (False, time.monotonic(), repr(e))


def serve_many(path, n):
    """n clients at once, each served (_serve_one) within the deadline; their results."""
    results = [None] * n
    threads = [threading.Thread(target=_serve_one, args=(path, results, i), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30 * SLOW)
        assert not t.is_alive(), "a client was not served"
    failures = [r for r in results if not r[0]]
    assert not failures, failures
    return results


@pytest.mark.parametrize("stall", ["half_body", "half_header"])
def test_stalled_client_does_not_block_others(broker_factory, stall):
    b = broker_factory({"broker": {"clientTimeout": 1}})
    slow = Client(b.sock, timeout=IO_TIMEOUT)
    assert_ok(slow.hello())
    body = json.dumps({"id": 2, "op": "status", "pad": "x" * 80}).encode()
    if stall == "half_body":
        slow.send_raw(struct.pack(">I", len(body)) + body[: len(body) // 2])
    else:
        slow.send_raw(struct.pack(">I", len(body))[:2])
    t0 = time.monotonic()

    closed_at = {}

    def watch():
        replies, closed = slow.read_until_eof(timeout=10 * SLOW)
        closed_at["t"] = time.monotonic()
        closed_at["closed"] = closed
        closed_at["replies"] = replies

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    results = serve_many(b.sock, 20)

    watcher.join(timeout=15 * SLOW)
    assert not watcher.is_alive()
    slow.close()
    assert closed_at["closed"], "stalled client was never disconnected"
    # Any reply before the close may only say why (timeout).
    for r in closed_at["replies"]:
        assert_error(r, "timeout")
    waited = closed_at["t"] - t0
    assert waited >= 0.5, "stalled client closed after %.2fs, before clientTimeout=1" % waited
    assert waited <= 1 + 5 * SLOW, "stalled client closed only after %.2fs" % waited
    # The 20 were served while the stalled client still held its connection:
    # a broker blocked on the stalled read would serve them only after the close.
    last = max(r[1] for r in results)
    assert last < closed_at["t"], (
        "others finished %.2fs after t0 but the stalled client was closed at %.2fs"
        % (last - t0, closed_at["t"] - t0))
    # Still serving afterwards.
    with b.connect() as c:
        assert_ok(c.call("status"))


def test_client_that_never_reads(broker_factory):
    """A client pipelining requests without reading replies does not stall others."""
    b = broker_factory({"broker": {"clientTimeout": 1}})
    flood = b.connect()
    flood.sock.setblocking(False)
    chunk = b"".join(frame({"id": 5, "op": "status"}) for _ in range(500))
    sent = 0
    for _ in range(400):                 # until the socket buffers are full
        try:
            sent += flood.sock.send(chunk)
        except BlockingIOError:
            break
    else:
        raise AssertionError("broker accepted %d bytes of requests whose replies nobody read"
                             % sent)
    try:
        serve_many(b.sock, 20)
    finally:
        flood.close()
    with b.connect() as c:
        assert_ok(c.call("status"))
    assert b.running()


def test_max_clients(broker_factory):
    b = broker_factory({"broker": {"maxClients": 5}})
    held = [b.connect() for _ in range(5)]
    try:
        with Client(b.sock) as extra:
            try:
                extra.send_msg({"id": 1, "op": "hello", "args": {"version": 1}})
            except (BrokenPipeError, ConnectionResetError):
                pass
            replies, closed = extra.read_until_eof()
        assert closed, "client beyond maxClients kept open"
        for r in replies:
            assert_error(r, "busy")
        for c in held:
            assert_ok(c.call("status"))
    finally:
        held.pop().close()

    def try_one():
        try:
            with Client(b.sock) as c:
                return c.hello()["ok"] and c.call("status")["ok"]
        except Exception:
            return False
    # A slot is free again once the broker has seen the close.
    wait_for(try_one, 10 * SLOW, interval=0.05, what="a free client slot")
    for c in held:
        c.close()


def test_idle_connection_closed(broker_factory):
    b = broker_factory({"broker": {"idleTimeout": 1}})
    # A connection that keeps talking is not idle.
    with b.connect() as busy:
        t_end = time.monotonic() + 2.0
        n = 0
        while time.monotonic() < t_end and n < 100:
            assert_ok(busy.call("status"))
            time.sleep(0.25)     # pacing the traffic, not waiting for readiness
            n += 1
        assert_ok(busy.call("status"))
    # An idle one is closed after about a second.
    with b.connect() as idle:
        t0 = time.monotonic()
        replies, closed = idle.read_until_eof(timeout=10 * SLOW)
        waited = time.monotonic() - t0
    assert closed, "idle connection still open"
    for r in replies:
        assert_error(r, "timeout")
    assert 0.5 <= waited <= 1 + 5 * SLOW, waited


def test_200_concurrent_clients(broker):
    n = 200
    clients = []
    try:
        for _ in range(n):
            clients.append(Client(broker.sock))
        # All 200 are connected at once; each says hello, then asks status.
        for i, c in enumerate(clients):
            c.send_msg({"id": 1, "op": "hello", "args": {"version": 1}})
        for c in clients:
            assert_ok(c.recv_msg(), id=1)
        for i, c in enumerate(clients):
            c.send_msg({"id": 1000 + i, "op": "status"})
        for i, c in enumerate(clients):
            res = assert_ok(c.recv_msg(), id=1000 + i)
            assert res["caller"]["pid"] == os.getpid()
    finally:
        for c in clients:
            c.close()
    with broker.connect() as c:
        assert_ok(c.call("status"))


# --------------------------------------------------------------------------
# Malformed input
# --------------------------------------------------------------------------

JSON_START = set(b' \t\r\n0123456789-"[{tfn')


def simulate_stream(data):
    """What the spec says a stream of bytes yields: (codes, complete_bodies).
    Frame errors end the stream; a stream that ends inside a frame gets EOF."""
    codes, bodies, i = [], 0, 0
    while len(data) - i >= 4:
        (n,) = struct.unpack(">I", data[i:i + 4])
        i += 4
        if n == 0:
            codes.append("bad_frame")
            return codes, bodies
        if n > FRAME_MAX:
            codes.append("frame_too_large")
            return codes, bodies
        if len(data) - i < n:
            return codes, bodies
        i += n
        bodies += 1
    return codes, bodies


VALID = b'{"id":12,"op":"status","args":{"k":[1,2,{"x":"y"}]}}'

INVALID_JSON = [
    b"{", b"}", b"[", b"nope", b"nul", b"tru", b"{'id':1,'op':'status'}",
    b'{"id":1 "op":"status"}', b'{"id":1,"op":"status",}', b'{"id":1,"op":status}',
    b'{"id":01,"op":"status"}', b'{"id":1,"op":"status"} x', b'{"id":1,"op":"status"}{}',
    b"\xff\xfe\xfd", b'{"id":1,"op":"\xc3\x28"}', b'{"id":1,"op":"st\x00atus"}',
    b'{"id":1,"op":"a\x01b"}', b"   ", b"\n", b'{"id":1,"op":"\\ud800"}',
    b'{"id":1,"op":"\\x41"}', b'{"id":NaN,"op":"status"}', b'{"id":Infinity}',
    b"/* c */ {}", b'"unterminated',
]

NON_OBJECT = [b"[]", b"[1,2,3]", b'["status"]', b'[{"id":1,"op":"status"}]', b"[null]",
              b'[[],{}]']
# JSON texts that are not arrays or objects: separate test (test_scalar_json).
SCALARS = [b'"status"', b"42", b"-1", b"3.25", b"null", b"true", b"false", b'""']


def wrong_typed(rng):
    """(body, expected id in the reply) for well-formed JSON of the wrong shape."""
    i = rng.randrange(1, 10 ** 6)
    # (An id beyond int64 is in test_huge_id: jansson itself refuses it.)
    bad_ids = ['"%d"' % i, "%d.5" % i, "1e3", "true", "null", "[]", "{}", "-1",
               str(2 ** 53 + 1), str(2 ** 63 - 1), "-%d" % 2 ** 63]
    bad_vals = ["5", "null", "[]", "{}", "true", '["status"]']
    choice = rng.randrange(4)
    if choice == 0:
        return ('{"id":%s,"op":"status"}' % rng.choice(bad_ids)).encode(), None
    if choice == 1:
        return ('{"id":%d,"op":%s}' % (i, rng.choice(bad_vals))).encode(), i
    if choice == 2:
        return ('{"id":%d,"op":"status","args":%s}'
                % (i, rng.choice(['"x"', "5", "[]", "null", "true", "[{}]"]))).encode(), i
    # Duplicate keys: separate test (test_duplicate_keys).
    return ('{"id":%d}' % i if rng.random() < 0.5
            else '{"id":%d,"args":{}}' % i).encode(), i


def make_cases(rng):
    """3000 malformed inputs: (kind, payload, expectation)."""
    cases = []

    def add(kind, count, gen):
        for _ in range(count):
            cases.append((kind,) + gen())

    def random_raw():
        while True:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 160)))
            codes, bodies = simulate_stream(data)
            if bodies == 0:
                return data, codes

    def random_framed():
        n = rng.randrange(2, 300)
        first = rng.choice([c for c in range(256) if c not in JSON_START])
        return bytes([first]) + bytes(rng.randrange(256) for _ in range(n - 1)), None

    def oversized():
        n = rng.choice([FRAME_MAX + 1, 0xFFFFFFFF, rng.randrange(FRAME_MAX + 1, 2 ** 32)])
        tail = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 100)))
        return struct.pack(">I", n) + tail, None

    def zero():
        tail = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 20)))
        return b"\0\0\0\0" + tail, None

    def truncated():
        n = rng.randrange(2, FRAME_MAX + 1)
        got = rng.randrange(0, min(n, 200))
        return struct.pack(">I", n) + VALID[:got] + b" " * max(0, got - len(VALID)), \
            rng.random() < 0.5

    def invalid_json():
        if rng.random() < 0.5:
            return rng.choice(INVALID_JSON), None
        return VALID[:rng.randrange(1, len(VALID))], None

    def non_object():
        return rng.choice(NON_OBJECT), None

    def wrong():
        return wrong_typed(rng)

    def unknown():
        i = rng.randrange(1, 10 ** 6)
        op = rng.choice(["nosuch", "STATUS", "Status", "status ", "hello2", "x" * 64,
                         "key_get", "admin", "\u043a\u043b\u044e\u0447", "op%d" % i])
        return json.dumps({"id": i, "op": op, "args": {}}).encode(), (i, op)

    deep_cases = [b"[" * FRAME_MAX, b"[" * 20000 + b"]" * 20000,
                  b'{"id":1,"op":"status","args":{"a":' + b"[" * 30000 + b"]" * 30000 + b"}}",
                  b'{"id":1,"op":"status","args":' + b'{"a":' * 10000 + b"1" + b"}" * 10001]

    def deep():
        return rng.choice(deep_cases), None

    def deep_oversized():
        return struct.pack(">I", 100000) + b"[" * 100000, None

    add("random_raw", 300, random_raw)
    add("random_framed", 400, random_framed)
    add("oversized", 300, oversized)
    add("zero", 250, zero)
    add("truncated", 300, truncated)
    add("invalid_json", 450, invalid_json)
    add("deep", 40, deep)
    add("deep_oversized", 10, deep_oversized)
    add("non_object", 300, non_object)
    add("wrong_type", 450, wrong)
    add("unknown_op", 200, unknown)
    assert len(cases) == 3000
    rng.shuffle(cases)
    return cases


# Kinds answered on a live connection that stays open.
IN_BAND = {"random_framed", "invalid_json", "deep", "non_object", "wrong_type", "unknown_op"}


class Runner:
    def __init__(self, broker, seed):
        self.broker = broker
        self.seed = seed
        self.conn = None
        self.on_conn = 0
        self.counts = {}
        self.failures = []

    def fail(self, kind, payload, why):
        # Collected, so one run shows every kind of mismatch.
        self.failures.append("%s %r: %s" % (kind, payload[:80], why))
        if len(self.failures) > 200:
            raise AssertionError("seed %d: too many failures:\n%s"
                                 % (self.seed, "\n".join(self.failures[:40])))

    def live(self):
        if self.conn is None or self.on_conn >= 50:
            self.end_live()
            self.conn = self.broker.connect()
            self.on_conn = 0
        return self.conn

    def end_live(self):
        if self.conn is not None:
            # The connection survived every malformed message on it.
            assert_ok(self.conn.call("status"))
            self.conn.close()
            self.conn = None

    def run(self, case):
        kind, payload, expect = case
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind in IN_BAND:
            c = self.live()
            self.on_conn += 1
            c.send_raw(frame(payload))
            r = c.recv_msg()
            if r is None:
                self.fail(kind, payload, "connection closed; the spec keeps it open")
                self.conn.close()
                self.conn = None
                return
            if kind in ("random_framed", "invalid_json", "deep"):
                code, rid = "bad_json", None
            elif kind == "non_object":
                code, rid = "bad_request", None
            elif kind == "wrong_type":
                code, rid = "bad_request", expect
            else:
                code, rid = "unknown_op", expect[0]
            if r["ok"] or r["error"]["code"] != code:
                self.fail(kind, payload, "want %s, got %r" % (code, r))
            if rid != "any" and r["id"] != rid:
                self.fail(kind, payload, "want id %r, got %r" % (rid, r))
            return
        # Kinds that end the connection: each on its own.
        c = Client(self.broker.sock)
        try:
            if kind == "random_raw":
                assert_ok(c.hello())
                c.send_raw(payload)
                c.sock.shutdown(socket.SHUT_WR)
                replies, closed = c.read_until_eof()
                got = [r["error"]["code"] if not r["ok"] else "ok" for r in replies]
                if got != expect or not closed:
                    self.fail(kind, payload, "want %r then close, got %r closed=%s"
                              % (expect, got, closed))
                for r in replies:
                    if r["id"] is not None:
                        self.fail(kind, payload, "frame errors carry id null: %r" % r)
            elif kind in ("oversized", "zero", "deep_oversized"):
                code = "bad_frame" if kind == "zero" else "frame_too_large"
                c.send_raw(payload)
                replies, closed = c.read_until_eof()
                if len(replies) != 1 or replies[0]["ok"] or \
                        replies[0]["error"]["code"] != code or replies[0]["id"] is not None:
                    self.fail(kind, payload, "want one %s (id null), got %r" % (code, replies))
                if not closed:
                    self.fail(kind, payload, "connection left open after %s" % code)
            elif kind == "truncated":
                c.send_raw(payload)
                if expect:
                    # Half-close: the broker sees EOF inside a frame and closes.
                    c.sock.shutdown(socket.SHUT_WR)
                    replies, closed = c.read_until_eof()
                    if not closed:
                        self.fail(kind, payload, "not closed after EOF inside a frame")
                    for r in replies:
                        if r["ok"] or r["error"]["code"] not in MALFORMED_CODES:
                            self.fail(kind, payload, "unexpected reply %r" % r)
                # else: just vanish mid-frame.
            else:
                raise AssertionError(kind)
        finally:
            c.close()


def test_malformed_inputs(broker):
    seed = int(os.environ.get("KW_FUZZ_SEED", "20261124"))
    rng = random.Random(seed)
    cases = make_cases(rng)
    runner = Runner(broker, seed)
    warmup = 600
    for case in cases[:warmup]:
        runner.run(case)
    runner.end_live()
    rss0 = broker.rss_kb()
    for case in cases[warmup:]:
        runner.run(case)
    runner.end_live()
    rss1 = broker.rss_kb()

    assert sum(runner.counts.values()) == 3000
    assert broker.running(), broker.stderr()
    with broker.connect() as c:
        res = assert_ok(c.call("status"))
        assert res["socket"] == broker.sock
    cp = broker.cli("status")
    assert cp.returncode == 0, cp.stderr
    if runner.failures:
        by_kind = {}
        for f in runner.failures:
            by_kind.setdefault(f.split(" ", 1)[0], []).append(f)
        raise AssertionError("seed %d: %d mismatches:\n%s" % (
            seed, len(runner.failures),
            "\n".join("%d x %s" % (len(v), "\n    ".join(v[:3])) for v in by_kind.values())))
    if not SANITIZE:
        # ASan's quarantine inflates RSS; LeakSanitizer at exit covers leaks there.
        assert rss1 - rss0 < 4096, "RSS grew from %d kB to %d kB" % (rss0, rss1)


@pytest.mark.parametrize("body", SCALARS, ids=[b.decode() or "empty_string" for b in SCALARS])
def test_scalar_json(broker, body):
    """A JSON text that is not an object is JSON of the wrong shape: bad_request."""
    with broker.connect() as c:
        c.send_raw(frame(body))
        assert_error(c.recv_msg(), "bad_request", id=None)
        assert_ok(c.call("status"))


DUPLICATES = [b'{"id":4,"op":"status","op":"status"}', b'{"id":4,"id":4,"op":"status"}',
              b'{"id":4,"op":"status","args":{"a":1,"a":2}}']


@pytest.mark.parametrize("body", DUPLICATES, ids=["op", "id", "args"])
def test_duplicate_keys(broker, body):
    """Duplicate keys are JSON of the wrong shape: bad_request, connection kept."""
    with broker.connect() as c:
        c.send_raw(frame(body))
        r = c.recv_msg()
        assert_error(r, "bad_request")
        assert r["id"] in (None, 4), r
        assert_ok(c.call("status"))


def test_huge_id(broker):
    """An id beyond int64 is valid JSON that jansson cannot hold: the spec's
    bad_request, or bad_json like its nesting limit; either way id null and
    the connection stays open."""
    with broker.connect() as c:
        c.send_raw(frame(b'{"id":%d,"op":"status"}' % 2 ** 64))
        r = c.recv_msg()
        assert r["ok"] is False and r["error"]["code"] in ("bad_request", "bad_json"), r
        assert r["id"] is None
        assert_ok(c.call("status"))


def test_frame_size_boundary(broker):
    """A 65536-byte body is accepted; 65537 is refused from the header."""
    with broker.connect() as c:
        head = b'{"id":31,"op":"status"}'
        body = head + b" " * (FRAME_MAX - len(head))
        assert len(body) == FRAME_MAX
        c.send_raw(frame(body))
        assert_ok(c.recv_msg(), id=31)
        c.send_raw(struct.pack(">I", FRAME_MAX + 1))
        assert_error(c.recv_msg(), "frame_too_large", id=None)
        replies, closed = c.read_until_eof()
        assert closed and replies == []


def test_pipelined_requests(broker):
    """Several frames in one write, and one frame split across many writes."""
    with broker.connect() as c:
        c.send_raw(b"".join(frame({"id": 100 + i, "op": "status"}) for i in range(10)))
        for i in range(10):
            assert_ok(c.recv_msg(), id=100 + i)
        data = frame({"id": 200, "op": "status"})
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
        assert_ok(c.recv_msg(), id=200)
