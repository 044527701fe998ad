"""
The broker's side of the API proxy (broker/apiproxy/, proxy/DESIGN.md): it
starts and supervises keywarden-proxy, answers proxy.* on that channel only,
issues proxy tokens tied to a session, authorizes each call (session, lock,
role, budget), records calls, and summarises usage.

The real broker runs as root; users act as alice (uid 2001) through setpriv.
The proxy here is a stand-in that speaks only the broker's side of the
protocol (FAKE_PROXY below): it binds broker.apiProxy.listen like the real
one, says hello and proxy.ready on fd 3, then relays frames that a test
sends to that port over to the broker -- so the test plays the proxy, on the
proxy's own channel.  The broker finds it next to itself (a copy of
keywardend in a directory of the test's), as it finds the real one.
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import conftest
from conftest import (BUILD, IO_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, assert_error, assert_ok,
                      short_tmpdir, wait_for)
from users import UserConn, id_broker, mfa_broker, session_of, start, totp  # noqa: F401

KEY = "sk-ant-api03-" + "Q" * 80 + "-realvalue"

# keywarden-proxy itself: a static launcher, so that the broker's LD_PRELOAD
# (ASan's runtime, libfaketime, nss_wrapper -- together they hang an
# uninstrumented program) is not applied to it; it drops LD_PRELOAD and runs
# the script beside it (its own path + ".py").
LAUNCHER = r'''
#include <stdio.h>
#include <string.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv)
{
	char script[4096], *args[64];
	int n = 0, j = 0;
	snprintf(script, sizeof(script), "%s.py", argv[0]);
	args[n++] = "/usr/bin/python3";
	args[n++] = script;
	for (int i = 1; i < argc && n < 63; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	for (int i = 0; environ[i]; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			environ[j++] = environ[i];
	environ[j] = NULL;
	execve(args[0], args, environ);
	perror("keywarden-proxy: python3");
	return 127;
}
'''

FAKE_PROXY = r'''
"""keywarden-proxy stand-in: the broker's side of the protocol, and a relay."""
import json, os, select, socket, struct, sys

args = sys.argv[1:]
fds = []
for name in os.listdir("/proc/self/fd"):
    try:
        os.fstat(int(name))
        fds.append(int(name))
    except OSError:
        pass          # the directory listdir itself had open
log = os.environ.get("FAKE_PROXY_LOG")
if log:
    with open(log, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "args": args, "fds": sorted(fds),
                            "notify": os.environ.get("NOTIFY_SOCKET")}) + "\n")
if args[:2] != ["--broker-fd", "3"]:
    sys.exit("keywarden-proxy: usage: --broker-fd 3 [--config FILE]")
cfg = {}
if "--config" in args:
    with open(args[args.index("--config") + 1]) as f:
        cfg = json.load(f)
listen = cfg.get("broker", {}).get("apiProxy", {}).get("listen", "127.0.0.1:8788")
ch = socket.socket(fileno=3)

def readn(s, n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            return None
        buf += c
    return buf

def frame_of(s):
    hdr = readn(s, 4)
    if not hdr:
        return None
    return readn(s, struct.unpack(">I", hdr)[0])

def call(obj):
    body = json.dumps(obj).encode()
    ch.sendall(struct.pack(">I", len(body)) + body)
    reply = frame_of(ch)
    if reply is None:
        sys.exit("keywarden-proxy: the broker closed the channel")
    return json.loads(reply)

host, port = listen.rsplit(":", 1)
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    srv.bind((host, int(port)))
except OSError as e:
    sys.exit("keywarden-proxy: cannot listen on %s: %s" % (listen, e.strerror))
srv.listen(16)
assert call({"id": 1, "op": "hello", "args": {"version": 1}})["ok"]
if os.environ.get("FAKE_PROXY_MODE") == "silent":
    select.select([ch], [], [])
    sys.exit(0)
ready = call({"id": 2, "op": "proxy.ready",
              "args": {"listen": "%s:%d" % (host, srv.getsockname()[1])}})
if not ready["ok"]:
    sys.exit("keywarden-proxy: %s" % ready)
while True:
    r, _, _ = select.select([srv, ch], [], [])
    if ch in r:
        sys.exit(0)       # the broker closed the channel (or stops us)
    conn, _ = srv.accept()
    while True:
        body = frame_of(conn)
        if body is None:
            break
        ch.sendall(struct.pack(">I", len(body)) + body)
        reply = frame_of(ch)
        if reply is None:
            sys.exit(0)
        conn.sendall(struct.pack(">I", len(reply)) + reply)
    conn.close()
'''


@pytest.fixture
def proxy_bin(monkeypatch):
    """A directory with a copy of keywardend and the stand-in proxy beside it."""
    d = short_tmpdir()
    os.chmod(d, 0o755)
    shutil.copy2(os.path.join(BUILD, "keywardend"), os.path.join(d, "keywardend"))
    path = os.path.join(d, "keywarden-proxy")
    with open(path + ".c", "w") as f:
        f.write(LAUNCHER)
    subprocess.run(["gcc", "-static", "-O", "-o", path, path + ".c"], check=True,
                   timeout=IO_TIMEOUT * 6)
    with open(path + ".py", "w") as f:
        f.write(FAKE_PROXY)
    monkeypatch.setattr(conftest, "BROKER_BIN", os.path.join(d, "keywardend"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


PROXY_ON = {"broker": {"apiProxy": {"enabled": True, "listen": "127.0.0.1:0"}}}


def proxy_env(b, **extra):
    """The broker's environment: the stand-in logs its starts in b.root/proxy.log."""
    b.proxy_log = os.path.join(b.root, "proxy.log")
    b.nss_env = dict(b.nss_env, FAKE_PROXY_LOG=b.proxy_log, **extra)


def starts(b):
    if not os.path.exists(b.proxy_log):
        return []
    with open(b.proxy_log) as f:
        return [json.loads(l) for l in f if l.strip()]


def status(b):
    with b.connect() as c:
        return assert_ok(c.call("status"))


def running_pid(b):
    """The proxy's pid when the broker says it runs (one status reply), else None."""
    st = status(b)["api_proxy"]
    return st["pid"] if st["running"] else None


class ProxySide:
    """The proxy's channel, through the stand-in's relay on its listen port."""

    def __init__(self, b):
        listen = status(b)["api_proxy"]["listen"]
        host, port = listen.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=IO_TIMEOUT)
        self.next_id = 100

    def call(self, op, args=None):
        self.next_id += 1
        msg = {"id": self.next_id, "op": op, "args": args or {}}
        body = json.dumps(msg).encode()
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        hdr = self._readn(4)
        return json.loads(self._readn(struct.unpack(">I", hdr)[0]))

    def _readn(self, n):
        buf = b""
        while len(buf) < n:
            c = self.sock.recv(n - len(buf))
            assert c, "the stand-in proxy closed the relay"
            buf += c
        return buf

    def authorize(self, token, path="/v1/messages?beta=true"):
        return self.call("proxy.authorize", {"token": token, "method": "POST", "path": path})

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def pbroker(mfa_broker, proxy_bin):
    """make(extra=None) -> a running broker with the stand-in proxy, alice a
    developer (enrolled), the key "anthropic" stored, and b.login(user)."""
    def make(extra=None, users=("alice",), env=None):
        b = mfa_broker(conftest.deep_merge(PROXY_ON, extra or {}), users=users)
        # mfa_broker started it without the log: start it again with it.
        b.stop()
        proxy_env(b, **(env or {}))
        start(b)
        with b.connect() as c:
            assert_ok(c.call("key.set", {"name": "anthropic", "value": KEY}))

        def login(user="alice"):
            b.clock.align()
            conn = UserConn(b, user)
            res = session_of(conn.call("login", {"code": totp(b.enrolled[user]["secret"],
                                                               b.clock.now())}))
            return conn, res["session"]
        b.login = login
        return b
    return make


def proxy_token(conn, session, name="anthropic"):
    res = assert_ok(conn.call("key.proxy_token", {"name": name}, session=session))
    return res


def error_of(reply):
    assert reply["ok"] is False, reply
    return reply["error"]["code"], reply["error"]["message"]


def api_rows(b):
    return b.audit_rows("action = 'api_call'")


def meta(row):
    return json.loads(row["metadata"] or "{}")


# ---------------------------------------------------------------------------


def test_proxy_ops_answered_only_on_the_internal_channel(id_broker):
    """proxy.* on the socket is refused for alice, root and the broker's own uid."""
    b = id_broker({"security": {"authorization": {"rbac": {"enabled": True}}}})
    with b.connect() as c:   # root: uid 0, and the broker's own uid here
        assert_ok(c.call("user.add", {"user": "alice", "roles": ["developer"]}))
        for op, args in (("proxy.authorize", {"token": "kwp1_" + "0" * 32 + "_x",
                                              "method": "POST", "path": "/v1/messages"}),
                         ("proxy.ready", {"listen": "127.0.0.1:1"}),
                         ("proxy.record", {"call": 1, "status": 200}),
                         ("proxy.refuse", {"reason": "no_token", "method": "GET",
                                           "path": "/"})):
            err = assert_error(c.call(op, args), "denied")
            assert "helper it started" in err["message"], err
    with UserConn(b, "alice") as a:
        r = a.call("proxy.authorize", {"token": "x", "method": "GET", "path": "/"})
        assert r["ok"] is False and r["error"]["code"] == "denied", r
    rows = b.audit_rows("action LIKE 'proxy.%'")
    assert {(r["user"], r["result"]) for r in rows} >= {("root", "denied"), ("alice", "denied")}


def test_check_config_refuses_a_listen_address_off_loopback(broker_factory):
    b = broker_factory({"broker": {"apiProxy": {"listen": "0.0.0.0:8788"}}}, start=False)
    cp = conftest.run_broker_once(["--check-config", "--config", b.config_path])
    assert cp.returncode == 2, cp
    assert "broker.apiProxy.listen" in cp.stderr and "loopback" in cp.stderr, cp.stderr
    b.write_config({"broker": {"apiProxy": {"listen": "[::1]:8788"}},
                    "security": {"api": {"budgets": {"developer": {"dailyTokens": 10}}}}})
    cp = conftest.run_broker_once(["--check-config", "--config", b.config_path])
    assert cp.returncode == 0, cp.stderr
    b.write_config({"security": {"api": {"budgets": {"developer": {"dailyTokens": "lots"}}}}})
    cp = conftest.run_broker_once(["--check-config", "--config", b.config_path])
    assert cp.returncode == 2 and "security.api.budgets.developer.dailyTokens" in cp.stderr, cp


def test_start_spawns_the_proxy_and_waits_for_ready(pbroker):
    b = pbroker({"security": {"network": {"verifyCertificates": False}}})
    st = status(b)["api_proxy"]
    assert st["running"] is True and st["listen"].startswith("127.0.0.1:"), st
    assert not st["listen"].endswith(":0"), st
    s = starts(b)
    assert len(s) == 1, s
    # fd 3 and stdio only; its arguments name the broker's configuration; not systemd's.
    assert s[0]["fds"] == [0, 1, 2, 3], s
    assert s[0]["args"] == ["--broker-fd", "3", "--config", b.config_path], s
    assert s[0]["notify"] is None, s
    assert "verifyCertificates is false" in b.stderr()
    # The channel is good for proxy.* only.
    with ProxySide(b) as p:
        err = error_of(p.call("user.list"))
        assert err[0] == "denied" and "internal channel" in err[1], err


def test_token_needs_a_session_and_the_role(pbroker):
    b = pbroker({"security": {"authorization": {"rbac": {"roles": {
        "runner": {"permissions": ["execute"]}}}}}})
    with b.connect() as c:
        assert_ok(c.call("user.add", {"user": "bob", "roles": ["runner"]}))
    # No session: refused whoever asks (even root holds no session of its own).
    with UserConn(b, "alice") as a:
        assert_error(a.call("key.proxy_token", {"name": "anthropic"}), "session_required")
    with b.connect() as c:
        assert_error(c.call("key.proxy_token", {"name": "anthropic"}), "session_required")
    conn, session = b.login("alice")
    with conn:
        res = proxy_token(conn, session)
        sess = assert_ok(conn.call("status", session=session))["session"]
    assert re.match(r"^kwp1_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$", res["token"]), res
    assert res["expires"] == sess["expires"], (res, sess)
    assert res["base_url"] == "http://" + status(b)["api_proxy"]["listen"], res
    with ProxySide(b) as p:
        ok = assert_ok(p.authorize(res["token"]))
    assert ok["value"] == KEY and ok["user"] == "alice" and ok["key"] == "anthropic", ok
    rows = b.audit_rows("action = 'key.proxy_token'")
    assert [(r["user"], r["result"]) for r in rows if r["result"] == "success"] == [
        ("alice", "success")], rows
    raw = open(b.audit_db, "rb").read() + open(b.state_db, "rb").read()
    assert res["token"].split("_", 2)[2].encode() not in raw


def test_token_refused_without_read_on_the_key(pbroker):
    b = pbroker({"security": {"authorization": {"rbac": {"roles": {
        "runner": {"permissions": ["execute"]}}}}}}, users=("alice", "bob"))
    with b.connect() as c:
        assert_ok(c.call("role.revoke", {"user": "bob", "role": "developer"}))
        assert_ok(c.call("role.grant", {"user": "bob", "role": "runner"}))
    conn, session = b.login("bob")
    with conn:
        r = conn.call("key.proxy_token", {"name": "anthropic"}, session=session)
    assert error_of(r)[0] == "denied", r


def test_authorize_follows_the_session_the_lock_and_the_role(pbroker):
    b = pbroker()
    conn, session = b.login("alice")
    with conn:
        tok = proxy_token(conn, session)["token"]
    with ProxySide(b) as p:
        call = assert_ok(p.authorize(tok))
        assert_ok(p.call("proxy.record", {"call": call["call"], "model": "claude-sonnet-4",
                                          "status": 200, "input_tokens": 12,
                                          "output_tokens": 34, "bytes_in": 500,
                                          "bytes_out": 900, "latency_ms": 20, "ttfb_ms": 5}))
        # admin session revoke: the very next call is refused.
        with b.connect() as c:
            assert_ok(c.call("session.revoke", {"user": "alice"}))
        code, msg = error_of(p.authorize(tok))
        assert code == "expired" and "run keywarden login" in msg and msg.startswith(
            "keywarden:"), msg

        conn, session = b.login("alice")
        with conn:
            tok = proxy_token(conn, session)["token"]
        assert_ok(p.authorize(tok))
        with b.connect() as c:
            assert_ok(c.call("user.lock", {"user": "alice"}))
        code, msg = error_of(p.authorize(tok))
        assert code == "locked" and msg.startswith("keywarden:"), msg
        with b.connect() as c:
            assert_ok(c.call("user.unlock", {"user": "alice"}))

        conn, session = b.login("alice")
        with conn:
            tok = proxy_token(conn, session)["token"]
            assert_ok(p.authorize(tok))
            with b.connect() as c:
                assert_ok(c.call("role.revoke", {"user": "alice", "role": "developer"}))
            code, msg = error_of(p.authorize(tok))
            assert code == "denied" and "read:key/anthropic" in msg, msg
            with b.connect() as c:
                assert_ok(c.call("role.grant", {"user": "alice", "role": "developer"}))
            assert_ok(p.authorize(tok))
            assert_ok(conn.call("logout", session=session))
        code, msg = error_of(p.authorize(tok))
        assert code == "expired", msg
        # A token never issued, and a real key, are refused too.
        assert error_of(p.authorize("kwp1_" + "a" * 32 + "_" + "b" * 43))[0] == "expired"
        assert_ok(p.call("proxy.refuse", {"reason": "real_key", "method": "POST",
                                          "path": "/v1/messages?key=" + KEY}))
    rows = api_rows(b)
    ok = [r for r in rows if r["result"] == "success"]
    assert len(ok) == 1 and ok[0]["user"] == "alice" and ok[0]["resource"] == "key/anthropic", rows
    m = meta(ok[0])
    for k, v in (("model", "claude-sonnet-4"), ("status", 200), ("input_tokens", 12),
                 ("output_tokens", 34), ("bytes_in", 500), ("bytes_out", 900),
                 ("latency_ms", 20), ("ttfb_ms", 5), ("key", "anthropic")):
        assert m[k] == v, (k, m)
    denied = [r for r in rows if r["result"] == "denied"]
    reasons = [meta(r).get("error") for r in denied]
    assert {"expired", "locked", "denied"} <= set(reasons), denied
    refused = [r for r in denied if meta(r).get("reason") == "real_key"]
    assert len(refused) == 1 and refused[0]["resource"] == "/v1/messages", refused
    # Neither the key nor a token's secret is anywhere in the trail.
    raw = open(b.audit_db, "rb").read()
    assert KEY.encode() not in raw and b"sk-ant-api03" not in raw
    assert tok.split("_", 2)[2].encode() not in raw


def test_unrecorded_calls_are_recorded_when_the_proxy_goes_and_it_is_restarted(pbroker):
    b = pbroker()
    conn, session = b.login("alice")
    with conn:
        tok = proxy_token(conn, session)["token"]
    first = starts(b)[0]["pid"]
    with ProxySide(b) as p:
        assert_ok(p.authorize(tok))
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: len(starts(b)) == 2 and running_pid(b) == starts(b)[1]["pid"],
             START_TIMEOUT, what="the proxy started again")
    assert status(b)["api_proxy"]["pid"] == starts(b)[1]["pid"] != first
    gone = [r for r in api_rows(b) if meta(r).get("error") == "proxy gone"]
    assert len(gone) == 1 and gone[0]["result"] == "error" and gone[0]["user"] == "alice", gone
    assert "was killed by signal 9" in b.stderr()
    # The new proxy serves the same token.
    with ProxySide(b) as p:
        assert_ok(p.authorize(tok))


def test_sighup_restarts_the_proxy_and_sigterm_stops_it_first(pbroker):
    b = pbroker()
    first = starts(b)[0]["pid"]
    cfg = conftest.deep_merge(b.config, {"security": {"session": {"timeout": 3000}}})
    b.write_config(cfg)
    b.send_signal(signal.SIGHUP)
    wait_for(lambda: len(starts(b)) == 2 and running_pid(b) == starts(b)[1]["pid"],
             START_TIMEOUT, what="the proxy restarted on SIGHUP")
    second = starts(b)[1]["pid"]
    assert second != first and not os.path.exists("/proc/%d" % first)
    assert b.stop() == 0
    assert not os.path.exists("/proc/%d" % second), "the proxy outlived the broker"


def test_start_fails_with_the_proxy_reason(proxy_bin, broker_factory):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        from users import prepare
        b = prepare(broker_factory({"broker": {"apiProxy": {
            "enabled": True, "listen": "127.0.0.1:%d" % port}}}, start=False))
        b.start(env=b.nss_env, wait=False)
        assert b.wait_ready(exit_ok=True) is False
        assert b.proc.returncode == 1
        err = b.stderr()
        assert "cannot listen on 127.0.0.1:%d: Address already in use" % port in err, err
        assert "before it was ready" in err, err
    finally:
        busy.close()


def test_start_fails_when_the_proxy_never_says_ready(proxy_bin, broker_factory):
    from users import prepare
    b = prepare(broker_factory(PROXY_ON, start=False))
    proxy_env(b, FAKE_PROXY_MODE="silent")
    t0 = time.monotonic()
    b.start(env=b.nss_env, wait=False)
    assert b.wait_ready(timeout=START_TIMEOUT + 10, exit_ok=True) is False
    assert b.proc.returncode == 1
    assert "did not report ready within 10 s" in b.stderr()
    assert time.monotonic() - t0 >= 9


def test_budget_refuses_past_the_daily_tokens_and_resets(pbroker):
    b = pbroker({"security": {"api": {"budgets": {"developer": {"dailyTokens": 100},
                                                  "reviewer": {"dailyTokens": 5}}}}})
    conn, session = b.login("alice")
    with conn:
        tok = proxy_token(conn, session)["token"]
    with ProxySide(b) as p:
        call = assert_ok(p.authorize(tok))
        assert_ok(p.call("proxy.record", {"call": call["call"], "model": "m", "status": 200,
                                          "input_tokens": 60, "output_tokens": 39}))
        call = assert_ok(p.authorize(tok))          # 99 < 100
        assert_ok(p.call("proxy.record", {"call": call["call"], "model": "m", "status": 200,
                                          "input_tokens": 1, "output_tokens": 0}))
        code, msg = error_of(p.authorize(tok))
        assert code == "budget", msg
        assert msg == ("keywarden: daily token budget of 100 for role developer spent "
                       "(100 used); resets at 00:00 UTC"), msg
    # The count survives a restart: it is read back from the trail.
    b.stop()
    start(b)
    with ProxySide(b) as p:
        assert error_of(p.authorize(tok))[0] == "budget"
    # The next UTC day starts from nothing.
    now = b.clock.now()
    b.clock.advance(86400 - int(now) % 86400 + 60)
    conn, session = b.login("alice")
    with conn:
        tok = proxy_token(conn, session)["token"]
    with ProxySide(b) as p:
        assert_ok(p.authorize(tok))
    denied = [r for r in api_rows(b) if meta(r).get("error") == "budget"]
    assert denied and denied[0]["user"] == "alice", denied


def test_usage_summary_per_user_and_model(pbroker):
    b = pbroker(users=("alice", "bob"))
    calls = [("alice", "claude-sonnet-4", 200, 10, 20), ("alice", "claude-sonnet-4", 500, 1, 0),
             ("alice", "claude-haiku", 200, 3, 4), ("bob", "claude-sonnet-4", 200, 7, 8)]
    toks = {}
    for user in ("alice", "bob"):
        conn, session = b.login(user)
        with conn:
            toks[user] = proxy_token(conn, session)["token"]
    with ProxySide(b) as p:
        for user, model, st, i, o in calls:
            c = assert_ok(p.authorize(toks[user]))
            assert_ok(p.call("proxy.record", {"call": c["call"], "model": model, "status": st,
                                              "input_tokens": i, "output_tokens": o}))
    with b.connect() as c:
        res = assert_ok(c.call("admin.usage", {}))
        rows = {(r["user"], r["model"]): r for r in res["rows"]}
        assert rows[("alice", "claude-sonnet-4")] == {
            "user": "alice", "model": "claude-sonnet-4", "calls": 2, "input_tokens": 11,
            "output_tokens": 20, "errors": 1}, rows
        assert rows[("alice", "claude-haiku")]["calls"] == 1
        assert rows[("bob", "claude-sonnet-4")]["input_tokens"] == 7
        assert len(rows) == 3
        assert assert_ok(c.call("admin.usage", {"since": "7d"}))["rows"] == res["rows"]
        future = assert_ok(c.call("admin.usage", {"since": "2999-01-01T00:00:00Z"}))
        assert future["rows"] == []
        assert_error(c.call("admin.usage", {"since": "yesterday"}), "invalid_argument")
    conn, session = b.login("alice")
    with conn:
        r = conn.call("admin.usage", {}, session=session)
        assert r["ok"] is False and r["error"]["code"] == "denied", r


def test_records_in_one_batch_each_land_and_a_bad_one_is_refused_alone(pbroker):
    """proxy.record {records: [...]}: the proxy sends what finished meanwhile
    together (one commit); each is recorded as if sent alone, and a record
    naming no waiting call is refused without losing the others."""
    b = pbroker()
    conn, session = b.login("alice")
    with conn:
        tok = proxy_token(conn, session)["token"]
    with ProxySide(b) as p:
        calls = [assert_ok(p.authorize(tok))["call"] for _ in range(3)]
        res = assert_ok(p.call("proxy.record", {"records": [
            {"call": calls[0], "model": "m1", "status": 200, "input_tokens": 5,
             "output_tokens": 6},
            {"call": 999999, "model": "m1", "status": 200},
            {"call": calls[1], "model": "m2", "status": 529},
            "not a record",
            {"call": calls[2], "model": "m1", "status": 200, "input_tokens": 1,
             "output_tokens": 1}]}))
        assert res == {"recorded": 3, "refused": 2}, res
        # A call is recorded once: the same batch again finds none waiting.
        again = assert_ok(p.call("proxy.record", {"records": [{"call": calls[0], "status": 200}]}))
        assert again == {"recorded": 0, "refused": 1}, again
        assert_error(p.call("proxy.record", {"records": [{}] * 257}), "bad_request")
    with b.connect() as c:
        rows = {(r["model"]): r for r in assert_ok(c.call("admin.usage", {}))["rows"]}
    assert rows["m1"]["calls"] == 2 and rows["m1"]["input_tokens"] == 6, rows
    assert rows["m2"]["calls"] == 1 and rows["m2"]["errors"] == 1, rows


# ---------------------------------------------------------------------------
# With the real keywarden-proxy (built beside keywardend) and the stand-in
# Messages API over TLS (apiproxy_support.py).

from apiproxy_support import apiproxy, tls_ca, upstream  # noqa: E402,F401
from apiproxy_support import KEY as AP_KEY, message_body  # noqa: E402
from anthropic_server import AnthropicServer  # noqa: E402


def test_real_proxy_start_fails_with_its_reason(apiproxy):
    kw = apiproxy(start=False)
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", kw.port))
    busy.listen(1)
    try:
        err = kw.start_refused()
    finally:
        busy.close()
    assert kw.b.proc.returncode == 1
    assert "before it was ready" in err, err
    # The proxy's own words are on the broker's stderr, and the broker names the address.
    assert "keywarden-proxy: " in err and "Address already in use" in err, err
    assert "listen 127.0.0.1:%d) exited with status" % kw.port in err, err


def test_real_proxy_is_supervised_and_each_call_recorded(apiproxy):
    kw = apiproxy()
    tok = kw.proxy_token()["token"]
    code, _, _ = kw.call(tok)
    assert code == 200
    # The proxy records a call once its response is out.
    rows = wait_for(lambda: kw.api_calls(), IO_TIMEOUT, what="the call's record")
    assert len(rows) == 1 and rows[0]["result"] == "success" and rows[0]["user"] == "alice"
    assert meta(rows[0])["status"] == 200 and meta(rows[0])["key"] == "anthropic", rows
    first = status(kw.b)["api_proxy"]["pid"]
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: running_pid(kw.b) not in (None, first), START_TIMEOUT,
             what="the proxy started again")
    code, _, _ = kw.call(tok)
    assert code == 200
    second = status(kw.b)["api_proxy"]["pid"]
    kw.b.send_signal(signal.SIGHUP)
    wait_for(lambda: running_pid(kw.b) not in (None, first, second), START_TIMEOUT,
             what="the proxy restarted on SIGHUP")
    code, _, _ = kw.call(tok)
    assert code == 200
    with kw.b.connect() as c:
        assert_ok(c.call("session.revoke", {"user": "alice"}))
    code, _, text = kw.call(tok)
    assert code == 401 and "keywarden: session" in text and "keywarden login" in text, text
    wait_for(lambda: len([r for r in kw.api_calls() if r["result"] == "success"]) == 3,
             IO_TIMEOUT, what="three calls recorded")
    third = status(kw.b)["api_proxy"]["pid"]
    assert kw.b.stop() == 0
    assert not os.path.exists("/proc/%d" % third), "the proxy outlived the broker"


class HeldStream:
    """A streamed call through the proxy whose reply the stand-in holds after
    its first text (stream_pause) until release()."""

    def __init__(self, kw, tok):
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", kw.port, timeout=IO_TIMEOUT * 3)
        self.conn.request("POST", "/v1/messages?beta=true",
                          json.dumps(message_body(stream=True)).encode(),
                          {"x-api-key": tok, "content-type": "application/json",
                           "anthropic-version": "2023-06-01"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        self.got = b""
        while b"text_delta" not in self.got:
            chunk = self.resp.read1(4096)
            assert chunk, self.got
            self.got += chunk

    def rest(self):
        self.got += self.resp.read()
        self.conn.close()
        return self.got


@pytest.fixture
def held_upstream(tls_ca, tmpdir_short):
    hold = threading.Event()
    srv = AnthropicServer(os.path.join(tmpdir_short, "held.jsonl"), reply_text="one two three",
                          expect_key=AP_KEY, tls=tls_ca.server, stream_pause=hold).start()
    srv.hold = hold
    yield srv
    hold.set()
    srv.stop()


def refused_at(port):
    """Whether nothing listens on port (a connection caught in the backlog as
    the socket closes is reset: asked again)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionResetError:
        return False
    except ConnectionRefusedError:
        return True


def test_restart_lets_calls_in_flight_finish_and_records_them(apiproxy, held_upstream):
    """SIGHUP restarts the proxy, but a call in flight is not cut: the old
    proxy takes no new connection, ends the call, hands its record over, and
    only then does the new one start.  (It was killed at once: the stream was
    cut and the call recorded as an error, "proxy gone".)"""
    kw = apiproxy(server=held_upstream)
    tok = kw.proxy_token()["token"]
    first = status(kw.b)["api_proxy"]["pid"]
    call = HeldStream(kw, tok)
    assert held_upstream.paused.is_set()
    kw.b.send_signal(signal.SIGHUP)
    wait_for(lambda: refused_at(kw.port), IO_TIMEOUT, what="the old proxy's door closed")
    assert os.path.exists("/proc/%d" % first), "the old proxy did not wait for its call"
    assert not status(kw.b)["api_proxy"]["running"]
    held_upstream.hold.set()
    body = call.rest()
    assert b"message_stop" in body, body[-200:]
    wait_for(lambda: running_pid(kw.b) not in (None, first), START_TIMEOUT,
             what="the new proxy")
    rows = kw.api_calls()
    assert len(rows) == 1 and rows[0]["result"] == "success", rows
    assert meta(rows[0])["status"] == 200 and "error" not in meta(rows[0]), rows
    assert meta(rows[0])["output_tokens"] > 0, rows
    code, _, _ = kw.call(tok)
    assert code == 200


def test_broker_stop_lets_calls_in_flight_finish_and_records_them(apiproxy, held_upstream):
    """The broker's stop waits for the proxy to end its calls and hand their
    records over (bounded by the proxy's own drain), then exits 0."""
    kw = apiproxy(server=held_upstream)
    tok = kw.proxy_token()["token"]
    pid = status(kw.b)["api_proxy"]["pid"]
    call = HeldStream(kw, tok)
    kw.b.send_signal(signal.SIGTERM)
    wait_for(lambda: refused_at(kw.port), IO_TIMEOUT, what="the proxy's door closed")
    assert kw.b.proc.poll() is None, "the broker did not wait for the proxy's call"
    held_upstream.hold.set()
    assert b"message_stop" in call.rest()
    assert kw.b.wait_exit(STOP_TIMEOUT) == 0
    assert not os.path.exists("/proc/%d" % pid), "the proxy outlived the broker"
    rows = kw.api_calls()
    assert len(rows) == 1 and rows[0]["result"] == "success", rows
    assert meta(rows[0])["status"] == 200 and "error" not in meta(rows[0]), rows


def test_log_actions_decide_whether_allowed_calls_are_recorded(pbroker):
    """As for the hook's tool calls: an allowed call is recorded only when
    security.audit.logActions lists api_call; a refusal always is, and the
    budget counts the call either way."""
    b = pbroker({"security": {"audit": {"logActions": ["hello", "status"]},
                              "api": {"budgets": {"developer": {"dailyTokens": 10}}}}})
    conn, session = b.login("alice")
    with conn:
        tok = proxy_token(conn, session)["token"]
    with ProxySide(b) as p:
        c = assert_ok(p.authorize(tok))
        assert_ok(p.call("proxy.record", {"call": c["call"], "model": "m", "status": 200,
                                          "input_tokens": 6, "output_tokens": 4}))
        assert error_of(p.authorize(tok))[0] == "budget"
    rows = api_rows(b)
    assert [r["result"] for r in rows] == ["denied"], rows
    assert meta(rows[0])["error"] == "budget"
