"""TOTP login and sessions, spoken in the raw protocol by distinct Unix users.

Each test starts the broker under nss_wrapper and libfaketime (users.py:
id_broker(clocked=True)), registers users as root with op user.add (whose answer
carries the TOTP secret and recovery codes), and logs in as those users over
a UserConn relay running under setpriv.  Codes come from oathtool for the
broker's time (b.clock.now()); moving b.clock replaces waiting.
"""
import json
import re

import pytest

from conftest import assert_error, assert_ok
from users import (TOKEN_RE, TOTP_STEP, USERS, UserConn, as_json, epoch, id_broker,
                   meta, mfa_broker, run_as, session_of, totp)  # noqa: F401 (fixtures)

CHECK = {"action": "read", "resource": "key/demo"}
RECOVERY_RE = re.compile(r"^[a-z2-7]{5}-[a-z2-7]{5}$")


def login(conn, code):
    return conn.call("login", {"code": code})


def logged_in(conn, code):
    return session_of(login(conn, code))


def works(conn, token):
    return assert_ok(conn.call("check", CHECK, session=token))


def refused(conn, token, *texts):
    """The token no longer opens a session: session_required, saying why."""
    err = assert_error(conn.call("check", CHECK, session=token), "session_required")
    for t in texts:
        assert t in err["message"], err
    return err


def login_rows(b, conn, result=None):
    rows = b.audit_rows("action = 'login' AND pid = ?", (conn.pid,))
    return [r for r in rows if result is None or r["result"] == result]


def sessions_of(b, user):
    with b.connect() as c:
        return assert_ok(c.call("session.list", {"user": user}))["sessions"]


# --------------------------------------------------------------------------
# Login
# --------------------------------------------------------------------------

def test_login_answers_token_and_session_fields(mfa_broker):
    b = mfa_broker({"security": {"session": {"timeout": 600, "reauthInterval": 7200}}},
                   users=())
    # Enrolled by the CLI this time: its secret is the one the broker checks.
    added = as_json(run_as(b, "root", "admin", "user", "add", "alice", "--role", "developer",
                           "--json"))
    secret = added["secret"]
    assert "secret=%s&" % secret in added["otpauth_uri"], added
    assert len(added["recovery_codes"]) == 10, added
    with UserConn(b, "alice") as a:
        t0 = b.clock.now()
        res = logged_in(a, totp(secret, t0))
        assert res["user"] == "alice", res
        assert res["roles"] == ["developer"], res
        assert res["idle_timeout"] == 600, res
        assert abs(epoch(res["expires"]) - (t0 + 7200)) <= 3, (res, t0)
        assert works(a, res["session"])["allowed"] is True

    rows = login_rows(b, a)
    assert len(rows) == 1, rows
    r = rows[0]
    assert (r["result"], r["user"], r["uid"], r["resource"]) == (
        "success", "alice", USERS["alice"][0], "user/alice"), r
    assert meta(r).get("session") == res["id"], r
    assert meta(r).get("method") == "totp", r
    listed = sessions_of(b, "alice")
    assert [s["id"] for s in listed] == [res["id"]], listed
    assert listed[0]["user"] == "alice" and listed[0]["expires"] == res["expires"], listed


def test_replayed_code_and_earlier_step_refused(mfa_broker):
    b = mfa_broker()
    secret = b.enrolled["alice"]["secret"]
    b.clock.align()
    now = b.clock.now()
    code = totp(secret, now)
    with UserConn(b, "alice") as a:
        logged_in(a, code)
        err = assert_error(login(a, code), "denied")
        assert "code" in err["message"], err
        # A later step still works: the refusal was the replay, nothing else.
        logged_in(a, totp(secret, now + TOTP_STEP))
        assert_error(login(a, code), "denied")
        assert_error(login(a, totp(secret, now - TOTP_STEP)), "denied")

    rows = login_rows(b, a)
    assert [r["result"] for r in rows] == ["success", "denied", "success", "denied", "denied"], rows
    for r in rows:
        if r["result"] == "denied":
            assert meta(r).get("error") == "denied", r
            assert meta(r).get("method") == "totp", r


def test_window_one_accepts_one_step_either_side(mfa_broker):
    b = mfa_broker(users=("alice", "bob", "carol"))
    s = {u: b.enrolled[u]["secret"] for u in ("alice", "bob", "carol")}
    b.clock.align(past=10)
    now = b.clock.now()
    with UserConn(b, "alice") as a, UserConn(b, "bob") as bo, UserConn(b, "carol") as c:
        logged_in(a, totp(s["alice"], now - TOTP_STEP))
        logged_in(bo, totp(s["bob"], now + TOTP_STEP))
        assert_error(login(c, totp(s["carol"], now - 2 * TOTP_STEP)), "denied")
        assert_error(login(c, totp(s["carol"], now + 2 * TOTP_STEP)), "denied")
        # carol has accepted nothing yet, so only the window refused those two.
        logged_in(c, totp(s["carol"], now))


def test_window_zero_accepts_only_the_current_step(mfa_broker):
    b = mfa_broker({"security": {"authentication": {"mfa": {"window": 0}}}})
    secret = b.enrolled["alice"]["secret"]
    b.clock.align(past=10)
    now = b.clock.now()
    with UserConn(b, "alice") as a:
        assert_error(login(a, totp(secret, now + TOTP_STEP)), "denied")
        assert_error(login(a, totp(secret, now - TOTP_STEP)), "denied")
        logged_in(a, totp(secret, now))


def test_recovery_code_works_once_in_any_case(mfa_broker):
    b = mfa_broker()
    codes = b.enrolled["alice"]["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    assert all(RECOVERY_RE.match(c) for c in codes), codes
    with UserConn(b, "alice") as a:
        res = logged_in(a, codes[0].upper())
        works(a, res["session"])
        assert_error(login(a, codes[0]), "denied")
        assert_error(login(a, codes[0].upper()), "denied")
        logged_in(a, codes[1])
    rows = login_rows(b, a)
    assert [r["result"] for r in rows] == ["success", "denied", "denied", "success"], rows
    assert all(meta(r).get("method") == "recovery" for r in rows), rows


# Strings within the length limit are wrong codes (denied); the rest are not
# codes at all (bad_request, or bad_json for a NUL jansson will not take).
MALFORMED = ["", "1", "12345", "1234567", "abcdef", "12345a", " 12345", "123456 ", "+12345",
             "-12345", "12\t456", "\uff11\uff12\uff13\uff14\uff15\uff16", "\u00e9" * 6,
             "12345\u0000", "aaaaa-aaaaa", "aaaaa_aaaaa", "11111-11111", "aaaaa-aaaaa1",
             "%s%s%s%s", "x" * 33, "9" * 5000, 123456, None, ["123456"], {"code": "1"}, True]


def test_malformed_codes_refused_without_harm(mfa_broker):
    b = mfa_broker({"security": {"monitoring": {"alerts": [
        {"type": "failed_authentication", "threshold": 100, "action": "block"}]}}})
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, "alice") as a:
        for code in MALFORMED:
            reply = login(a, code)
            assert reply["ok"] is False, (code, reply)
            assert reply["error"]["code"] in ("denied", "bad_request", "bad_json"), (code, reply)
        err = assert_error(a.call("login", {}), "bad_request")
        assert "code" in err["message"], err
        # The broker, the connection and alice's factor are all still fine.
        logged_in(a, totp(secret, b.clock.now()))
    assert b.running()
    assert sessions_of(b, "alice")


# --------------------------------------------------------------------------
# Sessions required
# --------------------------------------------------------------------------

def test_permissioned_ops_need_a_session_root_does_not(mfa_broker):
    b = mfa_broker({"security": {"session": {"timeout": 900}}})
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, "alice") as a:
        err = assert_error(a.call("check", CHECK), "session_required")
        assert "keywarden login" in err["message"], err
        assert_error(a.call("user.list", {}), "session_required")
        st = assert_ok(a.call("status"))
        assert st["session"] is None and st["user"] == "alice", st

        res = logged_in(a, totp(secret, b.clock.now()))
        tok = res["session"]
        ans = works(a, tok)
        assert (ans["allowed"], ans["user"], ans["resource"]) == (True, "alice", "key/demo"), ans
        # With a session the roles answer: a developer is not an admin.
        err = assert_error(a.call("check", {"action": "admin", "resource": "user/bob"},
                                  session=tok), "denied")
        assert_error(a.call("user.list", {}, session=tok), "denied")
        now = b.clock.now()
        st = assert_ok(a.call("status", session=tok))
        assert st["session"]["id"] == res["id"], st
        assert st["session"]["expires"] == res["expires"], st
        assert abs(epoch(st["session"]["idle_expires"]) - (now + 900)) <= 3, (st, now)
        assert tok not in str(st)

    with b.connect() as c:
        ans = assert_ok(c.call("check", {"action": "admin", "resource": "user/alice"}))
        assert ans["allowed"] is True, ans
        assert assert_ok(c.call("status"))["session"] is None

    refusal = b.audit_rows("action = 'check' AND pid = ? AND result != 'success'", (a.pid,))
    assert meta(refusal[0]).get("error") == "session_required", refusal
    ok_rows = b.audit_rows("action = 'check' AND pid = ? AND result = 'success'", (a.pid,))
    assert len(ok_rows) == 1 and meta(ok_rows[0]).get("session") == res["id"], ok_rows


def test_foreign_token_refused_and_audited(mfa_broker):
    b = mfa_broker(users=("alice", "bob"))
    with UserConn(b, "alice") as a, UserConn(b, "bob") as bo:
        res = logged_in(a, totp(b.enrolled["alice"]["secret"], b.clock.now()))
        tok = res["session"]
        for op, args in (("check", CHECK), ("status", None)):
            err = assert_error(bo.call(op, args, session=tok), "denied")
            assert "belongs to another user" in err["message"], err
            assert tok not in err["message"]
        # Still alice's, and still good for her.
        works(a, tok)
        st = assert_ok(a.call("status", session=tok))
        assert st["session"]["id"] == res["id"], st

    rows = b.audit_rows("pid = ?", (bo.pid,))
    denied = [r for r in rows if r["result"] == "denied"]
    assert [r["action"] for r in denied] == ["check", "status"], rows
    for r in denied:
        assert (r["user"], r["uid"]) == ("bob", USERS["bob"][0]), r
        assert "belongs to another user" in meta(r).get("reason", ""), r
        assert TOKEN_RE.match(tok).group(2) not in (r["metadata"] or ""), r


def test_malformed_and_forged_tokens_refused(mfa_broker):
    b = mfa_broker()
    with UserConn(b, "alice") as a:
        tok = logged_in(a, totp(b.enrolled["alice"]["secret"], b.clock.now()))["session"]
        sid = TOKEN_RE.match(tok).group(1)
        forged = [tok[:-1] + ("A" if tok[-1] != "A" else "B"), tok + "x", tok[:-1],
                  "kw1_%s_" % sid, "kw1_%s" % sid, "kw1_" + sid.upper() + tok[36:],
                  "kw2" + tok[3:], "kw1_" + "0" * 32 + tok[36:], "kw1_" + sid[:31] + "g" + tok[36:],
                  tok.replace("_", "-"), " " + tok, tok + "\n", "kw1_%s_%s" % (sid, "A" * 5000),
                  "\u00e9" * 60, "%s%s%n"]
        for t in forged:
            reply = a.call("check", CHECK, session=t)
            assert reply["ok"] is False, (t, reply)
            assert reply["error"]["code"] in ("session_required", "bad_request"), (t, reply)
        # Not even strings: the request itself is malformed.
        for t in ("", 123, [tok], {"t": tok}, True, "x" * 60000):
            assert_error(a.call("check", CHECK, session=t), "bad_request")
        # A token that merely fails leaves status answered, without a session.
        st = assert_ok(a.call("status", session=forged[0]))
        assert st["session"] is None and st.get("session_error"), st
        assert forged[0][37:] not in str(st)
        # None of that touched the real session.
        works(a, tok)


def test_max_sessions_evicts_the_oldest(mfa_broker):
    b = mfa_broker({"security": {"session": {"maxSessions": 2}}})
    rc = b.enrolled["alice"]["recovery_codes"]
    with UserConn(b, "alice") as a:
        s1 = logged_in(a, rc[0])
        s2 = logged_in(a, rc[1])
        works(a, s1["session"])
        works(a, s2["session"])
        s3 = logged_in(a, rc[2])
        refused(a, s1["session"], s1["id"])
        works(a, s2["session"])
        works(a, s3["session"])

    rows = login_rows(b, a, "success")
    assert len(rows) == 3, rows
    assert "evicted" not in meta(rows[0]) and "evicted" not in meta(rows[1]), rows
    assert meta(rows[2]).get("evicted") == [s1["id"]], rows[2]
    assert sorted(s["id"] for s in sessions_of(b, "alice")) == sorted([s2["id"], s3["id"]])


# --------------------------------------------------------------------------
# Expiry, under a moved clock
# --------------------------------------------------------------------------

def test_idle_session_ends_but_use_keeps_it_alive(mfa_broker):
    b = mfa_broker({"security": {"session": {"timeout": 60}}})
    with UserConn(b, "alice") as a:
        res = logged_in(a, totp(b.enrolled["alice"]["secret"], b.clock.now()))
        tok = res["session"]
        for _ in range(3):
            b.clock.advance(40)
            works(a, tok)
        # 120 s after login, and alive: idle time counts from the last use.
        now = b.clock.now()
        st = assert_ok(a.call("status", session=tok))
        assert abs(epoch(st["session"]["idle_expires"]) - (now + 60)) <= 3, (st, now)
        b.clock.advance(61)
        refused(a, tok, "idle")
        # Gone for good, not merely refused once.
        st = assert_ok(a.call("status", session=tok))
        assert st["session"] is None, st
        refused(a, tok)
    assert sessions_of(b, "alice") == []


def test_session_expires_at_reauth_interval_even_when_used(mfa_broker):
    b = mfa_broker({"security": {"session": {"timeout": 100000, "reauthInterval": 120}}})
    with UserConn(b, "alice") as a:
        t0 = b.clock.now()
        res = logged_in(a, totp(b.enrolled["alice"]["secret"], t0))
        assert abs(epoch(res["expires"]) - (t0 + 120)) <= 3, (res, t0)
        b.clock.advance(61)
        works(a, res["session"])
        b.clock.advance(60)
        refused(a, res["session"], "expired")


def test_no_absolute_limit_without_require_reauth(mfa_broker):
    b = mfa_broker({"security": {"session": {"timeout": 30 * 86400, "requireReauth": False,
                                             "reauthInterval": 60}}})
    with UserConn(b, "alice") as a:
        res = logged_in(a, totp(b.enrolled["alice"]["secret"], b.clock.now()))
        assert res["expires"] is None, res
        b.clock.advance(2 * 86400)
        works(a, res["session"])
        assert assert_ok(a.call("status", session=res["session"]))["session"]["expires"] is None


# --------------------------------------------------------------------------
# Revocation
# --------------------------------------------------------------------------

def test_revocation_takes_effect_on_the_next_request(mfa_broker):
    b = mfa_broker(users=("alice", "bob"))
    rca = b.enrolled["alice"]["recovery_codes"]
    rcb = b.enrolled["bob"]["recovery_codes"]
    with UserConn(b, "alice") as a, UserConn(b, "bob") as bo, UserConn(b, "root") as root:
        a1, a2, a3 = (logged_in(a, rca[i]) for i in range(3))
        b1 = logged_in(bo, rcb[0])
        # An ordinary user may not revoke sessions, even with one.
        assert_error(a.call("session.revoke", {"all": True}, session=a1["session"]), "denied")

        assert assert_ok(root.call("session.revoke", {"id": a1["id"]})) == {"revoked": 1}
        refused(a, a1["session"])
        works(a, a2["session"])
        assert_error(root.call("session.revoke", {"id": a1["id"]}), "not_found")

        assert assert_ok(root.call("session.revoke", {"user": "alice"})) == {"revoked": 2}
        refused(a, a2["session"])
        refused(a, a3["session"])
        works(bo, b1["session"])

        a4 = logged_in(a, rca[3])
        assert assert_ok(root.call("session.revoke", {"all": True})) == {"revoked": 2}
        refused(a, a4["session"])
        refused(bo, b1["session"])

        for bad in ({}, {"id": a4["id"], "all": True}, {"user": "alice", "id": a4["id"]}):
            assert_error(root.call("session.revoke", bad), "invalid_argument")

    rows = b.audit_rows("action = 'session.revoke' AND pid = ? AND result = 'success'",
                        (root.pid,))
    assert [meta(r).get("revoked") for r in rows] == [1, 2, 2], rows
    assert meta(rows[0]).get("id") == a1["id"], rows[0]
    assert meta(rows[1]).get("user") == "alice", rows[1]
    assert meta(rows[2]).get("all") is True, rows[2]


# --------------------------------------------------------------------------
# Product bugs found while writing these tests (strict: fixing one flips it)
# --------------------------------------------------------------------------

def test_foreign_presentation_does_not_extend_idle_session(mfa_broker):
    b = mfa_broker({"security": {"session": {"timeout": 60}}}, users=("alice", "bob"))
    with UserConn(b, "alice") as a, UserConn(b, "bob") as bo:
        res = logged_in(a, totp(b.enrolled["alice"]["secret"], b.clock.now()))
        b.clock.advance(40)
        assert_error(bo.call("check", CHECK, session=res["session"]), "denied")
        b.clock.advance(30)
        # 70 s since alice last used it: idle, whatever bob did with it.
        refused(a, res["session"], "idle")


def test_eviction_has_its_own_audit_row(mfa_broker):
    b = mfa_broker({"security": {"session": {"maxSessions": 1}}})
    rc = b.enrolled["alice"]["recovery_codes"]
    with UserConn(b, "alice") as a:
        s1 = logged_in(a, rc[0])
        logged_in(a, rc[1])
    rows = b.audit_rows("action = 'session.evict'")
    assert len(rows) == 1 and rows[0]["resource"] == "session/" + s1["id"], rows
    assert json.loads(rows[0]["metadata"])["user"] == "alice", rows


def test_ended_session_message_names_the_login_command(mfa_broker):
    b = mfa_broker({"security": {"session": {"timeout": 60}}})
    with UserConn(b, "alice") as a:
        res = logged_in(a, totp(b.enrolled["alice"]["secret"], b.clock.now()))
        b.clock.advance(61)
        refused(a, res["session"], "idle", "keywarden login")


def test_ended_sessions_are_not_listed_or_counted(mfa_broker):
    b = mfa_broker({"security": {"session": {"timeout": 60, "maxSessions": 2}}})
    rc = b.enrolled["alice"]["recovery_codes"]
    with UserConn(b, "alice") as a:
        s1 = logged_in(a, rc[0])
        b.clock.advance(1)
        logged_in(a, rc[1])                     # s2: left to go idle
        for _ in range(2):
            b.clock.advance(40)
            works(a, s1["session"])             # s1: kept alive
        s3 = logged_in(a, rc[2])
        # Only s1 and s3 are alive; the new login had room without evicting s1.
        works(a, s1["session"])
        listed = sorted(s["id"] for s in sessions_of(b, "alice"))
        assert listed == sorted([s1["id"], s3["id"]]), listed
