"""Locking other people out: refusals are charged to whoever earned them.

A caller refused because it may not act for another user must not run up
that user's count (and so lock them, end their sessions and open incidents
in their name); made-up names must neither push a real caller's count out
of the monitor's memory nor leave audit pseudonyms behind.  The legitimate
paths still lock: wrong codes through PAM as root (sshd, sudo) and a user's
own wrong codes.

Every attack runs as a distinct non-root Unix user (UserConn or the CLI
under setpriv, users.py); the broker is the real one under nss_wrapper.
"""
import json
import subprocess

from conftest import IO_TIMEOUT, assert_error, assert_ok, clean_env, db_rows, deep_merge
from test_pam import (AUTH_ERR, MAXTRIES, failed, pam_broker,  # noqa: F401 (fixture)
                      succeeded, totp as pam_totp, wrong_code as pam_wrong_code)
from users import (USERS, UserConn, as_json, id_broker, meta, mfa_broker, setpriv,  # noqa: F401
                   totp, wrong_code)

CHECK = {"action": "read", "resource": "key/demo"}
BLOCK_AT = 4


def block_rules(threshold=BLOCK_AT):
    """suspicious_activity blocks (locks, ends sessions, opens an incident) at threshold."""
    return {"security": {"monitoring": {"alerts": [
        {"type": "suspicious_activity", "threshold": threshold, "action": "block"},
        {"type": "failed_authentication", "threshold": 3, "action": "block"}]}}}


def incidents(b):
    doc = as_json(b.cli("admin", "incident", "list", "--json"))
    return doc["incidents"]


def account(b, user):
    with b.connect() as c:
        return assert_ok(c.call("account", {"user": user}))


def subjects(b):
    """Every name that has an audit pseudonym (audit.db, read-only)."""
    return {r["name"] for r in db_rows(b.audit_db, "SELECT name FROM audit_subjects")}


def alerts_about(b, user):
    return b.audit_rows("action IN ('alert', 'incident.open') AND user = ?", (user,))


BURST_SCRIPT = r"""
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[2]))
s.connect(sys.argv[1])
def recv(n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise SystemExit("broker closed the connection")
        buf += c
    return buf
def reply():
    (n,) = struct.unpack(">I", recv(4))
    return json.loads(recv(n))
reqs = [json.loads(l) for l in sys.stdin if l.strip()]
codes = {}
for i in range(0, len(reqs), 64):
    chunk = reqs[i:i + 64]
    s.sendall(b"".join(struct.pack(">I", len(b)) + b for b in
                       (json.dumps(r).encode() for r in chunk)))
    for _ in chunk:
        r = reply()
        k = "ok" if r["ok"] else r["error"]["code"]
        codes[k] = codes.get(k, 0) + 1
print(json.dumps(codes))
"""


def burst(b, user, requests):
    """Send requests (hello first) over one connection as user, 64 frames at a
    time; how many answers of each kind came back ({"ok"|code: n})."""
    reqs = [{"id": 1, "op": "hello", "args": {"version": 1}}]
    reqs += [dict(r, id=i + 2) for i, r in enumerate(requests)]
    argv = setpriv(user, ["/usr/bin/python3", "-c", BURST_SCRIPT, b.sock, str(IO_TIMEOUT)])
    cp = subprocess.run(argv, input="\n".join(json.dumps(r) for r in reqs), env=clean_env(),
                        cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, timeout=IO_TIMEOUT * 20)
    assert cp.returncode == 0, cp.stderr
    codes = json.loads(cp.stdout)
    codes["ok"] = codes.get("ok", 0) - 1      # the hello
    return codes


# --------------------------------------------------------------------------
# Naming someone else: the caller pays
# --------------------------------------------------------------------------

def attack_alice(b, attacker, n):
    """n account and n login requests naming alice, as attacker: all denied."""
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, attacker) as c:
        for _ in range(n):
            assert_error(c.call("account", {"user": "alice"}), "denied")
            assert_error(c.call("login", {"user": "alice",
                                          "code": wrong_code(secret, b.clock.now())}), "denied")


def alice_untouched(b, lg, token):
    """alice: not locked, her session still answers, nothing opened in her name."""
    acct = account(b, "alice")
    assert acct["locked"] is False, acct
    assert_ok(lg.call("check", CHECK, session=token))
    assert [i for i in incidents(b) if i["user"] == "alice"] == []
    assert alerts_about(b, "alice") == []
    assert db_rows(b.state_db, "SELECT count(*) FROM failures WHERE uid = ?",
                   (USERS["alice"][0],))[0][0] == 0


def test_unregistered_caller_naming_alice_cannot_lock_her(mfa_broker):
    b = mfa_broker(block_rules())
    with UserConn(b, "alice") as lg:
        token = assert_ok(lg.call("login", {"code": totp(b.enrolled["alice"]["secret"],
                                                         b.clock.now())}))["session"]
        attack_alice(b, "bob", 3 * BLOCK_AT)
        alice_untouched(b, lg, token)
    # bob's own refusals are counted against bob: blocked every BLOCK_AT of them
    # (nothing to lock, he is no keywarden user, but each block is an incident).
    mine = [i for i in incidents(b) if i["user"] == "bob"]
    assert len(mine) == 6 and all(i["type"] == "suspicious_activity" for i in mine), mine
    assert all("locked" not in i["actions"] for i in mine), mine


def test_registered_caller_naming_alice_locks_only_himself(mfa_broker):
    b = mfa_broker(block_rules(), users=("alice", "bob"))
    with UserConn(b, "alice") as lg, UserConn(b, "bob") as bob:
        token = assert_ok(lg.call("login", {"code": totp(b.enrolled["alice"]["secret"],
                                                         b.clock.now())}))["session"]
        bob_token = assert_ok(bob.call("login", {"code": totp(b.enrolled["bob"]["secret"],
                                                              b.clock.now())}))["session"]
        attack_alice(b, "bob", BLOCK_AT // 2)
        alice_untouched(b, lg, token)
        # bob reached the threshold with his own refusals: he is the one locked.
        acct = account(b, "bob")
        assert acct["locked"] is True and "suspicious" in acct["message"], acct
        assert_error(bob.call("check", CHECK, session=bob_token), "session_required")
    (inc,) = incidents(b)
    assert (inc["user"], inc["type"]) == ("bob", "suspicious_activity"), inc
    assert "locked" in inc["actions"], inc


def test_login_as_alice_through_pam_by_bob_counts_against_bob(pam_broker):
    pb = pam_broker(block_rules())
    pb.add("alice", "developer")
    pb.add("bob", "developer")
    bad = pam_wrong_code(pb.secret("alice"))
    for _ in range(BLOCK_AT):
        # bob's own PAM stack, bob's uid: only root may ask for someone else.
        failed(pb.login("bob", bad, "-u", "alice"))
    acct = account(pb.b, "alice")
    assert acct["locked"] is False, acct
    assert [i for i in incidents(pb.b) if i["user"] == "alice"] == []
    assert alerts_about(pb.b, "alice") == []
    assert account(pb.b, "bob")["locked"] is True
    # alice logs in as ever.
    succeeded(pb.login("alice", pam_totp(pb.secret("alice"))), "logged in as alice")


# --------------------------------------------------------------------------
# The legitimate paths still lock
# --------------------------------------------------------------------------

def test_wrong_codes_through_pam_as_root_lock_the_user(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    bad = pam_wrong_code(pb.secret("alice"))
    for _ in range(2):
        failed(pb.pamtester("alice", "authenticate", input=bad + "\n"), AUTH_ERR)
    out = failed(pb.pamtester("alice", "authenticate", input=bad + "\n"), MAXTRIES)
    assert "locked" in out, out
    assert account(pb.b, "alice")["locked"] is True
    (inc,) = incidents(pb.b)
    assert (inc["user"], inc["type"]) == ("alice", "failed_authentication"), inc


def test_own_wrong_codes_still_lock(mfa_broker):
    b = mfa_broker(block_rules())
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, "alice") as a:
        for _ in range(2):
            assert_error(a.call("login", {"code": wrong_code(secret, b.clock.now())}), "denied")
        assert_error(a.call("login", {"code": wrong_code(secret, b.clock.now())}), "locked")
    assert account(b, "alice")["locked"] is True
    (inc,) = incidents(b)
    assert (inc["user"], inc["type"]) == ("alice", "failed_authentication"), inc


# --------------------------------------------------------------------------
# Made-up names
# --------------------------------------------------------------------------

def test_made_up_names_neither_evict_the_caller_nor_leave_pseudonyms(id_broker):
    # The default rules: suspicious_activity notifies at 5 refusals (one alert
    # per rateLimit, 300 s: this test takes far less).
    # Each refusal its own record (no summaries of repeated ones): every
    # made-up name gets a record, to show none of them made a pseudonym.
    b = id_broker({"security": {"audit": {"refusalWindow": 0}}}, clocked=True)
    with b.connect() as c:
        assert_ok(c.call("user.add", {"user": "alice", "roles": ["developer"]}))
    names = ["ghost%04d" % i for i in range(1100)]
    # Four refusals of bob's own, then more made-up names than the monitor
    # ever tracked, then one more refusal of his own.
    own = [{"op": "user.list", "args": {}}]
    made_up = [{"op": "account" if i % 2 else "login", "args": {"user": n, "code": "123456"}}
               for i, n in enumerate(names)]
    assert burst(b, "bob", own * 4) == {"ok": 0, "denied": 4}
    assert rows_alert(b) == []
    # Later (well inside the 900 s window): the made-up names are seen last.
    b.clock.advance(5)
    got = burst(b, "bob", made_up + own)
    assert got == {"ok": 0, "denied": len(made_up) + 1}, got
    # bob's count was never pushed out: the fifth refusal (the first made-up
    # name) raised the alert, in bob's name.
    (alert,) = rows_alert(b)
    assert alert["user"] == "bob" and alert["resource"] == "user/bob", alert
    assert meta(alert)["count"] == 5 and meta(alert)["type"] == "suspicious_activity", alert
    # No pseudonym for a name that is neither a keywarden user nor a caller.
    names_kept = subjects(b)
    assert not any(n.startswith("ghost") for n in names_kept), sorted(names_kept)[:10]
    assert "bob" in names_kept and "alice" in names_kept
    # The refusals are on the record all the same, naming no made-up name.
    refusals = b.audit_rows("user = 'bob' AND action IN ('account', 'login')")
    assert len(refusals) == len(made_up), len(refusals)
    raw = db_rows(b.audit_db, "SELECT count(*) FROM audit_log WHERE metadata LIKE '%ghost%' "
                  "OR resource LIKE '%ghost%'")[0][0]
    assert raw == 0


def rows_alert(b):
    return b.audit_rows("action = 'alert'")


def test_root_asking_for_an_unknown_name_leaves_no_pseudonym(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    # sshd or sudo (root) with a mistyped user name, which may be a password.
    for name in ("carol", "hunter2x"):
        failed(pb.run(["pamtester", "keywarden", name, "authenticate"], input="123456\n"))
    kept = subjects(pb.b)
    assert "carol" not in kept and "hunter2x" not in kept, kept
    rows = pb.b.audit_rows("action = 'login' AND user = 'root'")
    assert len(rows) == 2 and all(r["resource"] == "user/~unknown" for r in rows), rows


# --------------------------------------------------------------------------
# A locked user cannot trade an administrator's lock for a shorter one
# --------------------------------------------------------------------------

def test_locked_user_cannot_shorten_an_admin_lock(mfa_broker):
    b = mfa_broker(block_rules())
    with UserConn(b, "alice") as a:
        token = assert_ok(a.call("login", {"code": totp(b.enrolled["alice"]["secret"],
                                                        b.clock.now())}))["session"]
        with b.connect() as c:
            assert_ok(c.call("user.lock", {"user": "alice", "message": "left the team"}))
        # Her refusals reach the suspicious_activity block threshold ...
        for _ in range(BLOCK_AT):
            assert_error(a.call("check", CHECK, session=token), "session_required")
    # ... which opens an incident, but the lock stays the administrator's.
    (inc,) = incidents(b)
    assert (inc["user"], inc["type"]) == ("alice", "suspicious_activity"), inc
    acct = account(b, "alice")
    assert acct["locked"] is True and acct["until"] is None, acct
    assert "left the team" in acct["message"], acct
