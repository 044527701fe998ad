"""One local user must not deny the broker to everyone else.

Each attack runs as a distinct non-root Unix user (a small Python client
under setpriv, users.py); the broker runs under nss_wrapper so it names
them.  Counted things are asserted, not times: where an effect follows a
window or a deadline, the test waits for it with a generous bound.

  * connections: a per-uid cap (broker.maxClientsPerUser), room kept for
    uid 0 (sshd's and sudo's PAM module), and a deadline for hello
    (broker.helloTimeout);
  * refusals: identical ones repeated by one uid are coalesced into a
    summary record with a count (security.audit.refusalWindow,
    security.audit.refusalBurst), while every request is still answered;
  * space: a free-space watermark (security.audit.minFreeSpace) raises an
    alert before the disk is full, and the broker goes on serving.
"""
import json
import os
import subprocess

from conftest import CLI_BIN, IO_TIMEOUT, SLOW, assert_ok, clean_env, end_process, wait_for
from mail_server import MailServer  # noqa: F401 (the smtp fixture's server)
from test_alerts import alerting, hook, smtp  # noqa: F401 (fixtures)
from test_audit_durability import tmpfs_broker  # noqa: F401 (fixture)
from test_pam import (pam_broker, service_text, succeeded, totp,  # noqa: F401
                      write_services)
from users import USERS, id_broker, meta, ok, run_as, setpriv  # noqa: F401

# --------------------------------------------------------------------------
# Clients run as a test user
# --------------------------------------------------------------------------

CLIENT_LIB = r"""
import json, select, socket, struct, sys

def conn(path, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s

def send(s, obj):
    body = json.dumps(obj).encode()
    try:
        s.sendall(struct.pack(">I", len(body)) + body)
    except OSError:
        pass            # a refused connection is closed; its reply is still there

def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        try:
            c = s.recv(n - len(buf))
        except ConnectionResetError:
            c = b""
        if not c:
            return None
        buf += c
    return buf

def reply(s):
    h = recv_exact(s, 4)
    if h is None:
        return None
    body = recv_exact(s, struct.unpack(">I", h)[0])
    return json.loads(body) if body is not None else None

def code(r):
    if r is None:
        return "closed"
    return "ok" if r.get("ok") else r["error"]["code"]

def hello(s):
    send(s, {"id": 1, "op": "hello", "args": {"version": 1}})
    return reply(s)
"""

# argv: socket n hello(0|1) timeout.  Opens n connections one after the other.
# With hello, each says hello and is held when the answer is ok; without, they
# stay silent, and after a line on stdin each is classified by whether the
# broker already sent something (a refusal, then EOF) or nothing (held).
HOLD_SCRIPT = CLIENT_LIB + r"""
path, n, say_hello, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", float(sys.argv[4])
socks, codes = [], {}
for i in range(n):
    s = conn(path, timeout)
    if say_hello:
        c = code(hello(s))
        if c != "ok":
            codes[c] = codes.get(c, 0) + 1
            s.close()
            continue
    socks.append(s)
if not say_hello:
    print(json.dumps({"opened": len(socks)}), flush=True)
    sys.stdin.readline()
    held = []
    for s in socks:
        r, _, _ = select.select([s], [], [], 0)
        if r:
            c = code(reply(s))
            codes[c] = codes.get(c, 0) + 1
            s.close()
        else:
            held.append(s)
    socks = held
print(json.dumps({"held": len(socks), "codes": codes}), flush=True)
sys.stdin.read()
"""

# argv: socket conns per_conn op args-json timeout.  Sends per_conn requests on
# each of conns connections (after hello), pipelined 50 at a time; prints the
# reply codes and the ids answered.
FLOOD_SCRIPT = CLIENT_LIB + r"""
path, conns, per, op, args, timeout = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                        sys.argv[4], json.loads(sys.argv[5]), float(sys.argv[6]))
codes, ids, nid = {}, [], 100
for _ in range(conns):
    s = conn(path, timeout)
    assert code(hello(s)) == "ok"
    left = per
    while left:
        k = min(50, left)
        for _ in range(k):
            nid += 1
            send(s, {"id": nid, "op": op, "args": args})
        for _ in range(k):
            r = reply(s)
            c = code(r)
            codes[c] = codes.get(c, 0) + 1
            if r is not None:
                ids.append(r["id"])
        left -= k
    s.close()
print(json.dumps({"codes": codes, "ids": ids}), flush=True)
"""

# argv: socket timeout.  Connects, says nothing, and reads until EOF or timeout.
SILENT_SCRIPT = CLIENT_LIB + r"""
path, timeout = sys.argv[1], float(sys.argv[2])
s = conn(path, timeout)
replies, closed = [], False
try:
    while True:
        r = reply(s)
        if r is None:
            closed = True
            break
        replies.append(r)
except socket.timeout:
    pass
print(json.dumps({"replies": replies, "closed": closed}), flush=True)
"""


class Holder:
    """n connections to b held open by a process running as user (HOLD_SCRIPT)."""

    def __init__(self, b, user, n, hello):
        argv = setpriv(user, ["/usr/bin/python3", "-c", HOLD_SCRIPT, b.sock, str(n),
                              "1" if hello else "0", str(IO_TIMEOUT)])
        self.proc = subprocess.Popen(argv, env=clean_env(), cwd="/", stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     universal_newlines=True)
        self.hello = hello

    def line(self):
        text = self.proc.stdout.readline()
        if not text:
            raise AssertionError("holder exited: %s" % self.proc.stderr.read())
        return json.loads(text)

    def result(self):
        """{"held": N, "codes": {code: count}} (silent holders classify now)."""
        if not self.hello:
            self.proc.stdin.write("check\n")
            self.proc.stdin.flush()
        return self.line()

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        end_process(self.proc, IO_TIMEOUT, sig=None)
        self.proc.stdout.close()
        self.proc.stderr.close()


def run_script(user, script, *args, timeout=None):
    cp = subprocess.run(setpriv(user, ["/usr/bin/python3", "-c", script] + [str(a) for a in args]),
                        env=clean_env(), cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, timeout=timeout or 120 * SLOW)
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def flood(b, user, conns, per, op, args):
    return subprocess.Popen(
        setpriv(user, ["/usr/bin/python3", "-c", FLOOD_SCRIPT, b.sock, str(conns), str(per),
                       op, json.dumps(args), str(IO_TIMEOUT)]),
        env=clean_env(), cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True)


def flood_result(proc):
    out, err = proc.communicate(timeout=180 * SLOW)
    assert proc.returncode == 0, err
    return json.loads(out)


def recorded(rows):
    """How many refusals rows stand for: one each, or a summary's count."""
    return sum(meta(r)["count"] if meta(r).get("summary") else 1 for r in rows)


# --------------------------------------------------------------------------
# (a) connections
# --------------------------------------------------------------------------

def test_one_user_cannot_take_the_connections_of_others_or_root(pam_broker):
    """bob holds idle connections far beyond his share; carol and dave come
    next; sshd's PAM module (root) still authenticates alice."""
    pb = pam_broker({"broker": {"maxClients": 24, "maxClientsPerUser": 8,
                                "helloTimeout": 600}})
    b = pb.b
    pb.add("alice", "developer")
    # The nosession service is what sshd or sudo use for a second factor.
    write_services(b, {"keywarden": service_text(b, auth="nosession")})
    holders = []
    try:
        bob = Holder(b, "bob", 40, hello=False)
        holders.append(bob)
        assert bob.line() == {"opened": 40}
        carol = Holder(b, "carol", 40, hello=True)
        holders.append(carol)
        got = carol.result()
        # bob took his 8, carol hers; the last 8 of 24 are kept for root.
        assert got == {"held": 8, "codes": {"busy": 32}}, got
        dave = Holder(b, "dave", 4, hello=True)
        holders.append(dave)
        got = dave.result()
        assert got == {"held": 0, "codes": {"busy": 4}}, got

        # Root is served: sshd's PAM second factor, the CLI, and room to spare.
        succeeded(pb.pamtester("alice", "authenticate", input=totp(pb.secret("alice")) + "\n"),
                  "successfully authenticated")
        ok(b.cli("status"))
        mine = [b.connect() for _ in range(8)]
        try:
            for c in mine:
                assert_ok(c.call("status"))
        finally:
            for c in mine:
                c.close()

        got = bob.result()
        assert got == {"held": 8, "codes": {"busy": 32}}, got
    finally:
        for h in holders:
            h.close()
    # The refused connections are on the record, and named.
    for user in ("bob", "carol", "dave"):
        rows = b.audit_rows("user = ? AND action = 'connect'", (user,))
        assert rows and all(r["result"] == "error" and meta(r)["error"] == "busy"
                            for r in rows), (user, rows)
    assert recorded(b.audit_rows("user = 'dave' AND action = 'connect'")) == 4


def test_connection_that_never_says_hello_is_closed_and_recorded(id_broker):
    b = id_broker({"broker": {"helloTimeout": 1}})
    greeted = b.connect()
    try:
        got = run_script("bob", SILENT_SCRIPT, b.sock, 30 * SLOW)
        assert got["closed"], "a connection without hello was kept open: %r" % got
        assert [r["error"]["code"] for r in got["replies"]] == ["timeout"], got
        assert "hello" in got["replies"][0]["error"]["message"], got
        # The deadline is for the handshake: a greeted connection stays.
        assert_ok(greeted.call("status"))
    finally:
        greeted.close()
    rows = b.audit_rows("user = 'bob' AND action = 'handshake'")
    assert len(rows) == 1, rows
    assert rows[0]["result"] == "error" and rows[0]["uid"] == USERS["bob"][0], rows
    assert meta(rows[0])["error"] == "timeout", rows


# --------------------------------------------------------------------------
# (b) refusals
# --------------------------------------------------------------------------

CHECK = {"action": "read", "resource": "key/demo"}


def test_refusal_flood_is_coalesced_and_every_request_answered(id_broker):
    b = id_broker({"security": {"audit": {"refusalWindow": 1, "refusalBurst": 3}}})
    with b.connect() as c:
        assert_ok(c.call("user.add", {"user": "alice", "roles": ["developer"]}))
    n_bob, n_alice = 4 * 600, 60
    bob = flood(b, "bob", 4, 600, "user.list", {})
    alice = flood(b, "alice", 1, n_alice, "check", CHECK)
    got_bob, got_alice = flood_result(bob), flood_result(alice)
    # Every request was answered: bob's each refused, alice's each allowed.
    assert got_bob["codes"] == {"denied": n_bob}, got_bob["codes"]
    assert got_alice["codes"] == {"ok": n_alice}, got_alice["codes"]

    def bob_rows():
        return b.audit_rows("user = 'bob' AND action = 'user.list'")
    # Once the last window closed, the records stand for every refusal ...
    wait_for(lambda: recorded(bob_rows()) == n_bob, 30 * SLOW,
             what="bob's refusals all on the record")
    rows = bob_rows()
    assert recorded(rows) == n_bob
    # ... in a few rows, not one per request.
    print("%d refusals of bob in %d records" % (n_bob, len(rows)))
    assert len(rows) <= 60, "%d rows for %d refusals" % (len(rows), n_bob)
    plain = [r for r in rows if not meta(r).get("summary")]
    summaries = [r for r in rows if meta(r).get("summary")]
    assert len(plain) >= 3 and summaries, rows
    for r in rows:
        m = meta(r)
        assert (r["result"], r["uid"], m["error"]) == ("denied", USERS["bob"][0], "denied"), r
    for r in summaries:
        m = meta(r)
        assert m["count"] >= 1 and m["window"] == 1 and m["first"] <= m["last"], r
        assert "not a keywarden user" in m["reason"], r
    # alice's honest requests in the same period: each one recorded.
    arows = b.audit_rows("user = 'alice' AND action = 'check'")
    assert sorted(r["request_id"] for r in arows) == sorted(got_alice["ids"]), arows
    assert all(r["result"] == "success" and not meta(r).get("summary") for r in arows)


def test_coalesced_refusals_are_recorded_at_shutdown(id_broker):
    b = id_broker({"security": {"audit": {"refusalWindow": 3600, "refusalBurst": 2}}})
    n = 300
    got = flood_result(flood(b, "bob", 1, n, "user.list", {}))
    assert got["codes"] == {"denied": n}, got["codes"]
    # Within the window: the first two on the record, the rest counted.
    rows = b.audit_rows("user = 'bob' AND action = 'user.list'")
    assert len(rows) == 2 and not any(meta(r).get("summary") for r in rows), rows
    assert b.stop() == 0
    rows = b.audit_rows("user = 'bob' AND action = 'user.list'")
    assert len(rows) == 3, rows
    assert meta(rows[2])["summary"] is True and meta(rows[2])["count"] == n - 2, rows
    assert recorded(rows) == n


# --------------------------------------------------------------------------
# (c) free space
# --------------------------------------------------------------------------

def test_low_free_space_raises_the_audit_alert_while_serving(tmpfs_broker, smtp, hook):
    b = tmpfs_broker("24m", alerting(smtp.url, hook.url,
                                     security={"audit": {"minFreeSpace": 8}}))
    os.chmod(b.root, 0o755)      # bob reaches the socket
    b.start()
    with b.connect() as c:
        assert_ok(c.call("status"))
    st = os.statvfs(b.datadir)
    free = st.f_bavail * st.f_frsize
    assert free > 12 << 20, free
    filler = os.path.join(b.datadir, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * (free - (4 << 20)))
    (msg,) = smtp.wait(1, timeout=30 * SLOW)
    assert msg["Subject"] == "[keywarden] ALERT audit_space_low for keywardend", msg["Subject"]
    (post,) = hook.wait(1, timeout=30 * SLOW)
    assert post["type"] == "audit_space_low" and post["min_free_mb"] == 8, post
    assert 0 < post["free_mb"] < 8, post
    rows = [r for r in b.audit_rows("action = 'alert'") if meta(r)["type"] == "audit_space_low"]
    assert len(rows) == 1 and meta(rows[0])["min_free_mb"] == 8, rows
    # Above the hard limit the broker goes on serving (and recording), for anyone.
    assert os.statvfs(b.datadir).f_bavail > 0
    cp = subprocess.run(setpriv("bob", [CLI_BIN, "status"]),
                        env=clean_env({"KEYWARDEN_SOCKET": b.sock, "HOME": "/nonexistent"}),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                        timeout=IO_TIMEOUT)
    assert cp.returncode == 0, cp.stderr
    with b.connect() as c:
        before = len(b.audit_rows("action = 'check'"))
        assert_ok(c.call("check", CHECK))
        assert len(b.audit_rows("action = 'check'")) == before + 1
    # Space back: the recovery is announced the same ways.
    os.unlink(filler)
    msgs = smtp.wait(2, timeout=30 * SLOW)
    assert msgs[1]["Subject"] == "[keywarden] ALERT audit_space_recovered for keywardend"
    assert [p["type"] for p in hook.wait(2, timeout=30 * SLOW)] == [
        "audit_space_low", "audit_space_recovered"]
