"""Replacing one's own second factor (totp.enroll, `keywarden totp enroll`).

A session token is readable by every process of its user, so the token
alone must not be enough to take the second factor over: enrollment needs a
current TOTP or recovery code in the same request, a wrong code counts as a
failed authentication (as login's do, up to the lock), and a replacement is
an audited alert, mailed to the admins when monitoring mail is configured.
Users are distinct Unix users (users.py); the broker's clock is libfaketime's.
"""
import hashlib
import json
import os

import pytest

from conftest import assert_error, assert_ok
from mail_server import MailServer, body_text
from users import (USERS, UserConn, as_json, fails, id_broker, meta, mfa_broker,  # noqa: F401
                   run_as, totp, wrong_code)

ADMIN_MAIL = "security-team@example.test"


@pytest.fixture
def smtp(tmpdir_short):
    s = MailServer(os.path.join(tmpdir_short, "maildir"))
    yield s
    s.stop()


def mailing(url):
    return {"security": {"monitoring": {"notificationEmail": ADMIN_MAIL, "smtp": {"url": url}}}}


def login(b, conn, user="alice"):
    """A session for user (conn runs as user) with the code of the broker's step now;
    the clock then moves on a step, so the next code is a fresh one."""
    res = assert_ok(conn.call("login", {"code": totp(b.enrolled[user]["secret"],
                                                     b.clock.now())}))
    b.clock.advance(30)
    return res["session"]


def cached(b, user, token):
    """An environment whose file token cache holds token for b, as user's."""
    uid, gid = USERS[user]
    run = os.path.join(b.root, "xdg-" + user)
    cache = os.path.join(run, "keywarden")
    os.makedirs(cache, exist_ok=True)
    for d in (run, cache):
        os.chown(d, uid, gid)
        os.chmod(d, 0o700)
    path = os.path.join(cache, "session-" +
                        hashlib.sha256(os.path.realpath(b.sock).encode()).hexdigest()[:16])
    with open(path, "w") as f:
        f.write("0\n%s\n" % token)
    os.chown(path, uid, gid)
    os.chmod(path, 0o600)
    return {"KEYWARDEN_TOKEN_CACHE": "file", "XDG_RUNTIME_DIR": run}


def enroll_rows(b, result):
    return [r for r in b.audit_rows("action = 'totp.enroll'") if r["result"] == result]


def test_a_token_alone_cannot_replace_the_second_factor(mfa_broker, smtp):
    b = mfa_broker(mailing(smtp.url), users=("alice", "bob"))
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, "alice") as a:
        tok = login(b, a)
        # A process of alice's uid holding her token, but not her code.
        err = assert_error(a.call("totp.enroll", {}, session=tok), "bad_request")
        assert "code" in err["message"], err
        err = assert_error(a.call("totp.enroll", {"code": wrong_code(secret, b.clock.now())},
                                  session=tok), "denied")
        assert "wrong" in err["message"], err
    # bob's process with alice's token, code or not: the token is not his.
    with UserConn(b, "bob") as c:
        r = c.call("totp.enroll", {"code": totp(secret, b.clock.now())}, session=tok)
        assert r["ok"] is False, r
    # Nothing changed: no enrollment, no alert, the old secret still logs alice in.
    assert enroll_rows(b, "success") == [] and b.audit_rows("action = 'alert'") == []
    denied = enroll_rows(b, "denied")
    assert sorted(r["user"] for r in denied) == ["alice", "bob"], denied
    assert all(meta(r).get("error") == "denied" for r in denied), denied

    # With a current code (on stdin: no terminal here) the CLI replaces it.
    env = cached(b, "alice", tok)
    doc = as_json(run_as(b, "alice", "totp", "enroll", "--json", env=env,
                         input=totp(secret, b.clock.now()) + "\n"))
    assert doc["user"] == "alice" and doc["secret"] != secret, doc
    (done,) = enroll_rows(b, "success")
    assert done["user"] == "alice" and meta(done).get("method") == "totp", done
    assert meta(done).get("sessions_ended") == 1, done
    code_used = totp(secret, b.clock.now())
    assert code_used not in json.dumps(enroll_rows(b, "success") + enroll_rows(b, "denied"))
    # The user and the admins hear of it: an audited alert, and mail.
    (alert,) = b.audit_rows("action = 'alert'")
    m = meta(alert)
    assert (alert["user"], alert["resource"], m["type"]) == ("alice", "user/alice",
                                                             "totp_enrolled"), alert
    assert m["delivery"] == ["mail"], m
    (msg,) = smtp.wait(1)
    assert msg["Subject"] == "[keywarden] ALERT totp_enrolled for alice", msg["Subject"]
    assert "alice" in body_text(msg)
    assert not any(s in json.dumps(alert) + body_text(msg) for s in
                   [doc["secret"], secret] + doc["recovery_codes"]), "a secret in the alert"
    # The old factor is gone, the new one works.
    b.clock.advance(30)
    with UserConn(b, "alice") as a:
        assert_error(a.call("login", {"code": totp(secret, b.clock.now())}), "denied")
        assert_ok(a.call("login", {"code": totp(doc["secret"], b.clock.now())}))


def test_wrong_codes_at_enrollment_lock_like_failed_logins(mfa_broker):
    b = mfa_broker()
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, "alice") as a:
        tok = login(b, a)
        for _ in range(2):
            assert_error(a.call("totp.enroll", {"code": wrong_code(secret, b.clock.now())},
                                session=tok), "denied")
        # The third failure (security.monitoring's failed_authentication block, 3) locks.
        err = assert_error(a.call("totp.enroll", {"code": wrong_code(secret, b.clock.now())},
                                  session=tok), "locked")
        assert "locked" in err["message"], err
        # The lock ended the session and refuses even the right code now.
        assert_error(a.call("check", {"action": "read", "resource": "key/demo"}, session=tok),
                     "session_required")
        assert_error(a.call("login", {"code": totp(secret, b.clock.now())}), "locked")
    alerts = [meta(r) for r in b.audit_rows("action = 'alert'")]
    assert alerts[0]["type"] == "failed_authentication" and alerts[0]["count"] == 3, alerts
    assert "totp_enrolled" not in [m["type"] for m in alerts], alerts


def test_recovery_code_and_the_cli_without_a_code(mfa_broker):
    b = mfa_broker()
    rc = b.enrolled["alice"]["recovery_codes"][0]
    with UserConn(b, "alice") as a:
        tok = login(b, a)
    env = cached(b, "alice", tok)
    # Nothing on stdin: nothing is sent.
    fails(run_as(b, "alice", "totp", "enroll", env=env, input=""), 2, "code")
    assert b.audit_rows("action = 'totp.enroll'") == []
    # A recovery code works instead of a TOTP code, once.
    doc = as_json(run_as(b, "alice", "totp", "enroll", "--json", env=env, input=rc + "\n"))
    assert doc["user"] == "alice", doc
    (done,) = enroll_rows(b, "success")
    assert meta(done).get("method") == "recovery", done
