"""The broker keeps what each request re-derives -- the caller's user row,
roles and compiled permissions, the MFA setting -- in memory
(broker/accounts/cache.h).  These tests hold it to what state.db and the
configuration say: each change an administrator makes is seen by the very
next request of the user it concerns, on a connection that stayed open
(so nothing per connection can hide a stale answer), as alice (uid 2001,
under setpriv) against the real broker.

Each test first asks the same question a few times, so that the answer is
kept, then changes what it depends on, then asks once more.
"""
import json

from conftest import assert_error, assert_ok
from test_reload import reload
from users import (UserConn, id_broker, mfa_broker, session_of, start)  # noqa: F401 (fixtures)

WRITE = {"action": "write", "resource": "key/demo"}
READ = {"action": "read", "resource": "key/demo"}
GDPR = {"security": {"compliance": {"gdpr": {"enabled": True}}}}


def warm(conn, args, ok, session=None, times=3):
    """Ask the same check a few times (kept from the second on); all answer alike."""
    for _ in range(times):
        reply = conn.call("check", args, session=session)
        if ok:
            assert_ok(reply)
        else:
            assert_error(reply, "denied")


def test_grant_and_revoke_are_seen_by_the_next_request(id_broker):
    b = id_broker()
    with UserConn(b, "root") as root, UserConn(b, "alice") as a:
        assert_ok(root.call("user.add", {"user": "alice", "roles": ["reviewer"]}))
        warm(a, READ, True)
        warm(a, WRITE, False)
        assert assert_ok(a.call("status"))["roles"] == ["reviewer"]

        assert_ok(root.call("role.grant", {"user": "alice", "role": "developer"}))
        assert_ok(a.call("check", WRITE))
        assert assert_ok(a.call("status"))["roles"] == ["developer", "reviewer"]
        warm(a, WRITE, True)

        assert_ok(root.call("role.revoke", {"user": "alice", "role": "developer"}))
        assert_error(a.call("check", WRITE), "denied")
        assert assert_ok(a.call("status"))["roles"] == ["reviewer"]

        assert_ok(root.call("role.revoke", {"user": "alice", "role": "reviewer"}))
        assert_error(a.call("check", READ), "denied")


def test_role_definitions_are_seen_by_the_next_request(id_broker):
    b = id_broker()
    with UserConn(b, "root") as root, UserConn(b, "alice") as a:
        assert_ok(root.call("user.add", {"user": "alice"}))
        assert_ok(root.call("role.create", {"role": "ops", "permissions": ["write:key/*"]}))
        assert_ok(root.call("role.grant", {"user": "alice", "role": "ops"}))
        warm(a, WRITE, True)
        # The role goes (with its grant), and is made again narrower: alice holds
        # nothing until granted again, then only what the new definition says.
        assert_ok(root.call("role.delete", {"role": "ops", "force": True}))
        assert_error(a.call("check", WRITE), "denied")
        assert_ok(root.call("role.create", {"role": "ops", "permissions": ["read:key/*"]}))
        assert_ok(root.call("role.grant", {"user": "alice", "role": "ops"}))
        assert_error(a.call("check", WRITE), "denied")
        assert_ok(a.call("check", READ))


def test_removed_and_erased_users_are_gone_for_the_next_request(id_broker):
    b = id_broker(GDPR)
    with UserConn(b, "root") as root, UserConn(b, "alice") as a:
        assert_ok(root.call("user.add", {"user": "alice", "roles": ["developer"]}))
        warm(a, WRITE, True)
        assert_ok(root.call("user.del", {"user": "alice"}))
        assert_error(a.call("check", WRITE), "denied")
        assert assert_ok(a.call("status"))["user"] is None

        assert_ok(root.call("user.add", {"user": "alice", "roles": ["developer"]}))
        warm(a, WRITE, True)
        assert assert_ok(a.call("status"))["user"] == "alice"
        assert_ok(root.call("user.erase", {"user": "alice"}))
        err = assert_error(a.call("check", WRITE), "denied")
        assert "regist" in err["message"] or "not" in err["message"], err
        st = assert_ok(a.call("status"))
        assert st["user"] is None and st["roles"] == [], st


def test_lock_ends_sessions_and_refuses_the_next_request(mfa_broker):
    b = mfa_broker()
    codes = b.enrolled["alice"]["recovery_codes"]
    with UserConn(b, "root") as root, UserConn(b, "alice") as a:
        tok = session_of(a.call("login", {"code": codes[0]}))["session"]
        warm(a, WRITE, True, session=tok)
        res = assert_ok(root.call("user.lock", {"user": "alice", "message": "held"}))
        assert res["sessions_ended"] == 1, res
        err = assert_error(a.call("check", WRITE, session=tok), "session_required")
        assert "held" in err["message"], err
        assert assert_ok(root.call("session.list", {"user": "alice"}))["sessions"] == []
        # Locked: no new session either; unlocked, alice is as she was.
        assert_error(a.call("login", {"code": codes[1]}), "locked")
        assert_ok(root.call("user.unlock", {"user": "alice"}))
        tok = session_of(a.call("login", {"code": codes[2]}))["session"]
        assert_ok(a.call("check", WRITE, session=tok))


def test_reload_changes_are_seen_by_the_next_request(id_broker):
    b = id_broker()
    with UserConn(b, "root") as root, UserConn(b, "alice") as a:
        assert_ok(root.call("user.add", {"user": "alice", "roles": ["developer"]}))
        warm(a, WRITE, True)

        # The built-in role redefined in the file: read only.
        cfg = json.loads(json.dumps(b.config))
        cfg["security"].setdefault("authorization", {})["rbac"] = {
            "roles": {"developer": {"permissions": ["read"]}}}
        b.write_config(cfg)
        reload(b)
        assert_error(a.call("check", WRITE), "denied")
        warm(a, READ, True)

        # A second factor required from now on: rights only with a session.
        cfg["security"]["authentication"]["mfa"]["required"] = True
        b.write_config(cfg)
        reload(b)
        assert_error(a.call("check", READ), "session_required")
