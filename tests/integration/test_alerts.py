"""Alerts, their delivery (SMTP, webhook) and incidents.

A real SMTP server (aiosmtpd, Maildir) and a local HTTP server stand in for
the admin's mailbox and webhook.  Users log in over the raw protocol as
themselves (UserConn under setpriv, as in test_lockout.py); the broker's
clock is libfaketime's, so rate limits are crossed by moving it.
Deliveries happen on the broker's own thread, so tests wait for them with
a deadline; audit records are written with the request that raised the
alert, so those are checked at once.
"""
import json
import os
import socket
import stat

import pytest

from conftest import IO_TIMEOUT, assert_error, assert_ok, deep_merge, wait_for
from test_audit import break_audit
from mail_server import MailServer, body_text, free_port
from users import (USERS, UserConn, as_json, id_broker, meta, mfa_broker, totp,  # noqa: F401
                   wrong_code)
from webhook_server import WebhookServer

ADMIN_MAIL = "security-team@example.test"
CHECK = {"action": "read", "resource": "key/demo"}
THRESHOLD = 5          # suspicious_activity's default threshold


@pytest.fixture
def smtp(tmpdir_short):
    s = MailServer(os.path.join(tmpdir_short, "maildir"))
    yield s
    s.stop()


@pytest.fixture
def hook():
    h = WebhookServer()
    yield h
    h.stop()


def alerting(smtp_url, hook_url, **more):
    """Config sending alert mail to smtp_url and posts to hook_url (plain HTTP: local test)."""
    cfg = {"security": {
        "monitoring": {"notificationEmail": ADMIN_MAIL, "smtp": {"url": smtp_url},
                       "webhookUrl": hook_url},
        "network": {"enforceHttps": False}}}
    return deep_merge(cfg, more)


def incident_response(**keys):
    return {"security": {"incidentResponse": keys}}


def add_user(b, name, roles=("developer",)):
    with b.connect() as c:
        return assert_ok(c.call("user.add", {"user": name, "roles": list(roles)}))


def refuse(conn, n):
    """n admin requests a developer may not make: each one denied."""
    for _ in range(n):
        assert_error(conn.call("user.list", {}), "denied")


def rows(b, action, user=None):
    where, params = "action = ?", (action,)
    if user is not None:
        where += " AND user = ?"
        params += (user,)
    return b.audit_rows(where, params)


def incidents(b):
    """admin incident list --json, through the real CLI as root."""
    doc = as_json(b.cli("admin", "incident", "list", "--json"))
    assert isinstance(doc, dict) and isinstance(doc.get("incidents"), list), doc
    return doc["incidents"]


def wrong_codes_lock(conn, b, secret, n=3):
    """n wrong codes: all but the last denied; the last's reply is returned."""
    for _ in range(n - 1):
        assert_error(conn.call("login", {"code": wrong_code(secret, b.clock.now())}), "denied")
    return conn.call("login", {"code": wrong_code(secret, b.clock.now())})


# --------------------------------------------------------------------------
# (a) failed logins: lock, incident, mail, webhook, incident log
# --------------------------------------------------------------------------

def test_lockout_opens_incident_mails_posts_and_logs(mfa_broker, smtp, hook):
    b = mfa_broker(alerting(smtp.url, hook.url))
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, "alice") as a:
        tok = assert_ok(a.call("login", {"code": totp(secret, b.clock.now())}))["session"]
        assert_ok(a.call("check", CHECK, session=tok))
        err = assert_error(wrong_codes_lock(a, b, secret), "locked")
        assert "locked" in err["message"], err
        # The lock ended alice's session.
        assert_error(a.call("check", CHECK, session=tok), "session_required")

    # The incident, through the CLI.
    incs = incidents(b)
    assert len(incs) == 1, incs
    inc = incs[0]
    assert inc["id"] == "INC-000001", inc
    assert (inc["type"], inc["user"], inc["status"]) == ("failed_authentication", "alice",
                                                        "open"), inc
    for act in ("locked", "sessions_revoked", "mailed", "webhook", "logged"):
        assert act in inc["actions"], inc
    assert inc["details"].get("count") == 3 and inc["details"].get("threshold") == 3, inc

    # The mail names the user and the incident.
    (msg,) = smtp.wait(1)
    assert msg["Subject"] == "[keywarden] ALERT failed_authentication for alice", msg["Subject"]
    assert ADMIN_MAIL in msg["To"] and ADMIN_MAIL in msg["X-RcptTo"], dict(msg)
    assert "keywarden@localhost" in msg["From"], msg["From"]
    assert msg["Date"] and msg["Message-ID"], dict(msg)
    text = body_text(msg)
    assert "INC-000001" in text and "alice" in text, text

    # The webhook got the same alert as JSON.
    (post,) = hook.wait(1)
    path, headers, _ = hook.received()[0]
    assert path == "/hook"
    assert headers.get("Content-Type") == "application/json", headers
    assert (post["type"], post["user"], post["incident"], post["action"]) == (
        "failed_authentication", "alice", "INC-000001", "block"), post
    assert "locked" in post["actions"], post

    # The incident log: one line, 0600, the user only by pseudonym.
    log = os.path.join(b.datadir, "incidents.log")
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    with open(log) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["id"] == "INC-000001" and entry["type"] == "failed_authentication", entry
    assert entry["user"].startswith("~") and "alice" not in lines[0], entry
    assert "locked" in entry["actions"], entry

    # The audit trail: the login that locked says so, and the alert and incident are there.
    (alert,) = rows(b, "alert")
    m = meta(alert)
    assert alert["user"] == "alice" and alert["resource"] == "user/alice", alert
    assert (m["type"], m["action"], m["count"], m["threshold"], m["incident"]) == (
        "failed_authentication", "block", 3, 3, "INC-000001"), m
    assert sorted(m["delivery"]) == ["mail", "webhook"], m
    (opened,) = rows(b, "incident.open")
    assert opened["resource"] == "incident/INC-000001" and opened["user"] == "alice", opened
    locking = [r for r in rows(b, "login", "alice") if meta(r).get("error") == "locked"]
    assert meta(locking[0]).get("incident") == "INC-000001", locking[0]
    assert meta(locking[0]).get("sessions_ended") == 1, locking[0]

    # The report: the incident and alice's records around it, failures included.
    rep = as_json(b.cli("admin", "incident", "report", "INC-000001", "--json"))
    assert rep["incident"]["id"] == "INC-000001", rep
    denied = [r for r in rep["timeline"] if r["action"] == "login" and r["result"] == "denied"]
    assert len(denied) == 3, rep["timeline"]
    # What alice did and what was done to her (user.add, the lock) around the opening.
    assert all(r["user"] == "alice" or r["resource"] == "user/alice"
               for r in rep["timeline"]), rep["timeline"]
    assert any(r["user"] == "root" and r["action"] == "user.add" for r in rep["timeline"])
    assert_error(b.connect().call("incident.report", {"id": "INC-000002"}), "not_found")


# --------------------------------------------------------------------------
# (b) suspicious activity
# --------------------------------------------------------------------------

def test_refusals_raise_suspicious_activity(id_broker, smtp, hook):
    b = id_broker(alerting(smtp.url, hook.url))
    add_user(b, "alice")
    with UserConn(b, "alice") as a:
        refuse(a, THRESHOLD - 1)
        assert rows(b, "alert") == []
        refuse(a, 1)
        (alert,) = rows(b, "alert")
    m = meta(alert)
    assert (alert["user"], alert["resource"], alert["result"]) == ("alice", "user/alice",
                                                                   "success"), alert
    assert (m["type"], m["action"], m["count"], m["threshold"], m["suppressed"]) == (
        "suspicious_activity", "notify", THRESHOLD, THRESHOLD, 0), m
    assert sorted(m["delivery"]) == ["mail", "webhook"], m
    assert "incident" not in m, m

    (msg,) = smtp.wait(1)
    assert msg["Subject"] == "[keywarden] ALERT suspicious_activity for alice", msg["Subject"]
    assert "alice" in body_text(msg)
    (post,) = hook.wait(1)
    assert (post["type"], post["user"], post["count"], post["threshold"]) == (
        "suspicious_activity", "alice", THRESHOLD, THRESHOLD), post
    # notify opens no incident and locks nothing.
    assert incidents(b) == []


def test_monitoring_disabled_raises_nothing(id_broker, smtp, hook):
    b = id_broker(alerting(smtp.url, hook.url, security={"monitoring": {"enabled": False}}))
    add_user(b, "alice")
    with UserConn(b, "alice") as a:
        refuse(a, THRESHOLD * 2)
    assert rows(b, "alert") == []
    assert hook.received() == [] and smtp.messages() == []


# --------------------------------------------------------------------------
# (c) rate limit
# --------------------------------------------------------------------------

def test_rate_limit_holds_alerts_and_counts_them(id_broker, smtp, hook):
    b = id_broker(alerting(smtp.url, hook.url), clocked=True)
    add_user(b, "alice")
    extra = 10
    with UserConn(b, "alice") as a:
        refuse(a, THRESHOLD)
        assert len(rows(b, "alert")) == 1
        refuse(a, extra)                     # within rateLimit (300 s): held back
        assert len(rows(b, "alert")) == 1
        b.clock.advance(301)                 # past rateLimit, inside window (900 s)
        refuse(a, 1)
        alerts = rows(b, "alert")
    assert len(alerts) == 2, alerts
    assert meta(alerts[0])["suppressed"] == 0, alerts[0]
    assert meta(alerts[1])["suppressed"] == extra, alerts[1]
    assert meta(alerts[1])["count"] == THRESHOLD + extra + 1, alerts[1]

    # One delivery thread, first in first out: the second mail is the second alert's.
    msgs = smtp.wait(2)
    assert len(msgs) == 2, [m["Subject"] for m in msgs]
    assert "Suppressed: %d" % extra in body_text(msgs[1]), body_text(msgs[1])
    posts = hook.wait(2)
    assert [p["suppressed"] for p in posts] == [0, extra], posts


def test_rate_limit_is_per_user(id_broker, smtp, hook):
    b = id_broker(alerting(smtp.url, hook.url))
    add_user(b, "alice")
    add_user(b, "bob")
    with UserConn(b, "alice") as a, UserConn(b, "bob") as o:
        refuse(a, THRESHOLD)
        refuse(o, THRESHOLD)
    assert sorted(r["user"] for r in rows(b, "alert")) == ["alice", "bob"]
    subjects = sorted(m["Subject"] for m in smtp.wait(2))
    assert subjects == ["[keywarden] ALERT suspicious_activity for alice",
                        "[keywarden] ALERT suspicious_activity for bob"], subjects


# --------------------------------------------------------------------------
# (d) delivery failures never hold the broker
# --------------------------------------------------------------------------

def test_smtp_down_broker_keeps_answering(id_broker, hook):
    dead = "smtp://127.0.0.1:%d" % free_port()
    b = id_broker(alerting(dead, hook.url), start_it=False)
    password = "smtp-pw-never-logged-7f3a"
    b.nss_env = dict(b.nss_env, KEYWARDEN_SMTP_USER="kw-alerts",
                     KEYWARDEN_SMTP_PASSWORD=password)
    b.start(env=b.nss_env)
    add_user(b, "alice")
    with UserConn(b, "alice") as a:
        refuse(a, THRESHOLD)
        assert len(rows(b, "alert")) == 1
        b.wait_stderr("not delivered")
        # Still serving, the refused user included.
        refuse(a, 1)
        assert_ok(a.call("status"))
    with b.connect() as c:
        assert_ok(c.call("status"))
    hook.wait(1)                             # the webhook still got its post
    assert b.running()
    assert password not in b.stderr() and "kw-alerts" not in b.stderr()


def test_hung_mail_server_does_not_hold_requests(id_broker, hook):
    # A server that accepts connections and never says a word: curl waits for
    # its greeting (up to its 10 s timeout) on the delivery thread.
    sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sink.bind(("127.0.0.1", 0))
    sink.listen(8)
    held = []
    try:
        b = id_broker(alerting("smtp://127.0.0.1:%d" % sink.getsockname()[1], hook.url))
        add_user(b, "alice")
        with UserConn(b, "alice") as a:
            refuse(a, THRESHOLD)
        sink.settimeout(IO_TIMEOUT)
        conn, _ = sink.accept()              # the delivery is now stuck on the greeting
        held.append(conn)
        # Answered well inside curl's 10 s: delivery is not on the event loop.
        with b.connect(timeout=5) as c:
            assert_ok(c.call("status"))
        assert b.running()
        # And the broker still stops promptly (a short grace, then the delivery is abandoned).
        assert b.stop() == 0
    finally:
        for c in held:
            c.close()
        sink.close()


def test_http_webhook_refused_while_https_enforced(broker_factory):
    b = broker_factory({"security": {"monitoring": {"webhookUrl": "http://127.0.0.1:9/x"}}},
                       start=False)
    b.start(wait=False)
    assert b.wait_exit() == 2  # a configuration error
    assert "webhookUrl" in b.stderr(), b.stderr()


# --------------------------------------------------------------------------
# (e) incident response settings
# --------------------------------------------------------------------------

def test_autoblock_off_opens_incident_without_lock(mfa_broker, smtp, hook):
    b = mfa_broker(deep_merge(alerting(smtp.url, hook.url), incident_response(autoBlock=False)))
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, "alice") as a:
        tok = assert_ok(a.call("login", {"code": totp(secret, b.clock.now())}))["session"]
        assert_error(wrong_codes_lock(a, b, secret), "denied")
        (inc,) = incidents(b)
        assert inc["user"] == "alice" and inc["type"] == "failed_authentication", inc
        assert "locked" not in inc["actions"] and "sessions_revoked" not in inc["actions"], inc
        assert "mailed" in inc["actions"], inc
        # Not locked: the session still works, and the account says so.
        assert_ok(a.call("check", CHECK, session=tok))
        with b.connect() as c:
            assert assert_ok(c.call("account", {"user": "alice"}))["locked"] is False
    (msg,) = smtp.wait(1)
    assert "INC-000001" in body_text(msg)


def test_incident_response_off_locks_without_incident(mfa_broker, smtp, hook):
    b = mfa_broker(deep_merge(alerting(smtp.url, hook.url), incident_response(enabled=False)))
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, "alice") as a:
        assert_error(wrong_codes_lock(a, b, secret), "locked")
    assert incidents(b) == []
    assert not os.path.exists(os.path.join(b.datadir, "incidents.log"))
    (alert,) = rows(b, "alert")
    assert meta(alert)["type"] == "failed_authentication" and "incident" not in meta(alert)
    # The block is still an alert: mailed and posted.
    (msg,) = smtp.wait(1)
    assert msg["Subject"] == "[keywarden] ALERT failed_authentication for alice"
    hook.wait(1)


def test_suspicious_block_locks_and_opens_incident(id_broker, smtp, hook):
    rules = [{"type": "suspicious_activity", "threshold": 4, "action": "block"},
             {"type": "failed_authentication", "threshold": 3, "action": "block"}]
    b = id_broker(alerting(smtp.url, hook.url, security={"monitoring": {"alerts": rules}}))
    add_user(b, "alice")
    with UserConn(b, "alice") as a:
        refuse(a, 4)
    (inc,) = incidents(b)
    assert (inc["type"], inc["user"]) == ("suspicious_activity", "alice"), inc
    assert "locked" in inc["actions"], inc
    with b.connect() as c:
        acct = assert_ok(c.call("account", {"user": "alice"}))
    assert acct["locked"] is True and "suspicious" in acct.get("message", ""), acct
    smtp.wait(1)


def test_erased_user_incident_keeps_only_the_pseudonym(mfa_broker, smtp, hook):
    gdpr = {"security": {"compliance": {"gdpr": {"enabled": True}}}}
    b = mfa_broker(deep_merge(alerting(smtp.url, hook.url), gdpr))
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, "alice") as a:
        assert_error(wrong_codes_lock(a, b, secret), "locked")
    (before,) = incidents(b)
    assert before["user"] == "alice", before
    erased = as_json(b.cli("admin", "user", "erase", "alice", "--yes", "--json"))
    (after,) = incidents(b)
    assert after["user"] == erased["pseudonym"] and after["user"].startswith("~"), (after, erased)
    rep = as_json(b.cli("admin", "incident", "report", after["id"], "--json"))
    assert "alice" not in json.dumps(rep), rep


# --------------------------------------------------------------------------
# The audit store failing is an alert too
# --------------------------------------------------------------------------



def test_audit_unavailable_alert_and_recovery_notice(broker_factory, smtp, hook):
    b = broker_factory(alerting(smtp.url, hook.url))
    break_audit(b.audit_db, "CREATE TRIGGER kw_break BEFORE INSERT ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'broken'); END")
    with b.connect(hello=False) as c:
        assert_error(c.hello(), "audit_unavailable")
    (msg,) = smtp.wait(1)
    assert msg["Subject"] == "[keywarden] ALERT audit_unavailable for keywardend", msg["Subject"]
    (post,) = hook.wait(1)
    assert post["type"] == "audit_unavailable", post
    b.wait_stderr("alert audit_unavailable")
    # Still failing: no second alert (one per failure, and rate-limited).
    with b.connect(hello=False) as c:
        assert_error(c.hello(), "audit_unavailable")

    break_audit(b.audit_db, "DROP TRIGGER kw_break")
    with b.connect() as c:
        assert_ok(c.call("status"))
    msgs = smtp.wait(2)
    assert len(msgs) == 2, [m["Subject"] for m in msgs]
    assert msgs[1]["Subject"] == "[keywarden] ALERT audit_recovered for keywardend"
    assert [p["type"] for p in hook.wait(2)] == ["audit_unavailable", "audit_recovered"]
