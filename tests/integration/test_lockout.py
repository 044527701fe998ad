"""Lockout after failed logins, admin locks, and what the audit trail keeps.

Same setting as test_sessions.py: a broker under nss_wrapper and libfaketime,
users registered with op user.add, logins in the raw protocol as those users
(UserConn under setpriv), admin operations as root.  Lock durations and
failure intervals are crossed by moving the broker's clock (b.clock).
"""
import base64
import json
import os
import re

import pytest

from conftest import assert_error, assert_ok, db_rows, deep_merge, run_broker_once
from users import (NO_MFA_REQUIRED, TOKEN_RE, TOTP_STEP, USERS, UserConn, epoch,  # noqa: F401
                   id_broker, meta, mfa_broker, session_of, totp, wrong_code)

CHECK = {"action": "read", "resource": "key/demo"}


def lockout(**keys):
    return {"security": {"authentication": {"lockout": keys}}}


class Login:
    """One user's side of logging in: codes for the broker's time, one connection."""

    def __init__(self, b, user="alice"):
        self.b = b
        self.user = user
        self.secret = b.enrolled[user]["secret"]
        self.conn = UserConn(b, user)
        self.sent = []          # every code sent, for the secrecy checks
        self.last_step = None   # TOTP step of the last accepted code

    def fresh(self):
        """A right code that is not a replay: if the current step is not past
        the last accepted one, the clock moves on to the next step first."""
        now = self.b.clock.now()
        if self.last_step is not None and int(now // TOTP_STEP) <= self.last_step:
            self.b.clock.advance(int((self.last_step + 1) * TOTP_STEP - now) + 1)
            now = self.b.clock.now()
        return totp(self.secret, now), int(now // TOTP_STEP)

    def send(self, code):
        self.sent.append(code)
        return self.conn.call("login", {"code": code})

    def right(self):
        return self.send(self.fresh()[0])

    def wrong(self):
        return self.send(wrong_code(self.secret, self.b.clock.now()))

    def logged_in(self):
        """A right code, accepted: the login's result (users.session_of)."""
        code, step = self.fresh()
        res = session_of(self.send(code))
        self.last_step = step
        return res

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def root_call(b, op, args):
    with b.connect() as c:
        return c.call(op, args)


def account(b, user="alice"):
    return assert_ok(root_call(b, "account", {"user": user}))


def failures(b, uid):
    """Failed logins the broker counts for uid (state.db, read-only)."""
    return db_rows(b.state_db, "SELECT count(*) FROM failures WHERE uid = ?", (uid,))[0][0]


def lock_after_three(lg):
    """Three wrong codes: denied, denied, locked (the default threshold)."""
    assert_error(lg.wrong(), "denied")
    assert_error(lg.wrong(), "denied")
    err = assert_error(lg.wrong(), "locked")
    assert "locked" in err["message"], err
    return err


# --------------------------------------------------------------------------
# Locks from failed logins
# --------------------------------------------------------------------------

def test_three_wrong_codes_lock_and_end_sessions(mfa_broker):
    b = mfa_broker()
    uid = USERS["alice"][0]
    with Login(b) as lg:
        s1 = lg.logged_in()
        s2 = assert_ok(lg.send(b.enrolled["alice"]["recovery_codes"][0]))
        assert_ok(lg.conn.call("check", CHECK, session=s1["session"]))
        lock_after_three(lg)
        # Both sessions ended with the lock, effective on the next request.
        for s in (s1, s2):
            assert_error(lg.conn.call("check", CHECK, session=s["session"]), "session_required")
        counted = failures(b, uid)
        # Right codes (and a recovery code) are not even checked while locked.
        held, _ = lg.fresh()
        later = totp(lg.secret, b.clock.now() + TOTP_STEP)
        for code in (held, later, b.enrolled["alice"]["recovery_codes"][1]):
            err = assert_error(lg.send(code), "locked")
            assert "locked until" in err["message"], err
        assert failures(b, uid) == counted
        acct = account(b)
        assert acct["locked"] is True and acct["registered"] is True, acct
        assert abs(epoch(acct["until"]) - (b.clock.now() + 900)) <= 60, acct

        assert assert_ok(root_call(b, "user.unlock", {"user": "alice"}))["locked"] is False
        # The code refused while locked was never checked, so it is still unused.
        session_of(lg.send(held))
        # And the recovery code refused while locked was not spent either.
        assert_ok(lg.send(b.enrolled["alice"]["recovery_codes"][1]))

    rows = b.audit_rows("action = 'login' AND pid = ?", (lg.conn.pid,))
    assert len(rows) == len(lg.sent), rows
    lock_row = rows[4]
    assert meta(lock_row).get("error") == "locked", lock_row
    assert meta(lock_row).get("locked") is True, lock_row
    assert meta(lock_row).get("sessions_ended") == 2, lock_row
    assert all(meta(r).get("error") == "locked" for r in rows[5:8]), rows[5:8]


def test_lock_ends_after_duration(mfa_broker):
    b = mfa_broker(lockout(duration=60))
    with Login(b) as lg:
        lock_after_three(lg)
        b.clock.advance(55)
        err = assert_error(lg.right(), "locked")
        assert "until" in err["message"], err
        assert account(b)["locked"] is True
        b.clock.advance(6)                      # 61 s after the lock
        lg.logged_in()
        assert account(b)["locked"] is False


def test_duration_zero_locks_until_unlocked(mfa_broker):
    b = mfa_broker(lockout(duration=0))
    with Login(b) as lg:
        lock_after_three(lg)
        b.clock.advance(86400)
        err = assert_error(lg.right(), "locked")
        assert "until an administrator unlocks" in err["message"], err
        acct = account(b)
        assert acct["locked"] is True and acct["until"] is None, acct

        res = assert_ok(root_call(b, "user.unlock", {"user": "alice"}))
        assert res == {"user": "alice", "locked": False, "was_locked": True}, res
        assert account(b)["locked"] is False
        lg.logged_in()


def test_failures_older_than_interval_do_not_count(mfa_broker):
    b = mfa_broker(lockout(interval=60))
    with Login(b) as lg:
        assert_error(lg.wrong(), "denied")
        assert_error(lg.wrong(), "denied")
        b.clock.advance(61)
        # Those two are out of the interval: counting starts again ...
        assert_error(lg.wrong(), "denied")
        assert_error(lg.wrong(), "denied")
        # ... and still reaches the threshold.
        assert_error(lg.wrong(), "locked")


def test_success_clears_failures(mfa_broker):
    b = mfa_broker()
    with Login(b) as lg:
        assert_error(lg.wrong(), "denied")
        assert_error(lg.wrong(), "denied")
        lg.logged_in()
        assert_error(lg.wrong(), "denied")
        assert_error(lg.wrong(), "denied")
        assert_error(lg.wrong(), "locked")


# --------------------------------------------------------------------------
# Repeated locks last longer (lockout.backoffFactor, maxDuration, backoffWindow)
# --------------------------------------------------------------------------

def lock_record(b, lg):
    """The metadata of the last login of lg's connection that locked the account."""
    rows = b.audit_rows("action = 'login' AND pid = ? AND metadata LIKE '%\"locked\":true%'",
                        (lg.conn.pid,))
    assert rows, "no locking login recorded"
    return meta(rows[-1])


def relock(b, lg, duration, repeat):
    """Three wrong codes lock alice again: the lock lasts duration seconds (its
    record and account's until say so) and is repeat number `repeat`."""
    t0 = b.clock.now()
    lock_after_three(lg)
    until = epoch(account(b)["until"])
    assert t0 + duration - 1 <= until <= b.clock.now() + duration + 1, (until, t0, duration)
    m = lock_record(b, lg)
    assert (m.get("lock_duration"), m.get("lock_repeat")) == (duration, repeat), m
    inc = b.audit_rows("action = 'incident.open'")[-1]
    assert (meta(inc).get("lock_duration"), meta(inc).get("lock_repeat")) == (duration,
                                                                            repeat), inc
    return until


def still_locked_until(b, lg, until):
    """Locked a few seconds before until, unlocked (a right code logs in) after it."""
    b.clock.advance(int(until - b.clock.now()) - 5)
    assert_error(lg.right(), "locked")
    b.clock.advance(int(until - b.clock.now()) + 1)
    lg.logged_in()


def test_repeated_locks_last_longer(mfa_broker):
    b = mfa_broker(lockout(duration=60))
    with Login(b) as lg:
        until = relock(b, lg, 60, 0)
        still_locked_until(b, lg, until)
        # The next lock, well within backoffWindow (a day) of the first one's
        # end, lasts twice as long: 61 s on, where the first had ended, it holds.
        until = relock(b, lg, 120, 1)
        b.clock.advance(61)
        err = assert_error(lg.right(), "locked")
        assert "locked until" in err["message"], err
        still_locked_until(b, lg, until)
        until = relock(b, lg, 240, 2)
        still_locked_until(b, lg, until)


def test_backoff_is_capped_and_starts_afresh(mfa_broker):
    b = mfa_broker(lockout(duration=60, backoffFactor=3, maxDuration=200, backoffWindow=1000))
    with Login(b) as lg:
        still_locked_until(b, lg, relock(b, lg, 60, 0))
        still_locked_until(b, lg, relock(b, lg, 180, 1))
        still_locked_until(b, lg, relock(b, lg, 200, 2))       # maxDuration
        # A lock more than backoffWindow after the last one ended is a first one.
        b.clock.advance(1001)
        relock(b, lg, 60, 0)
        # So is one after an administrator's unlock.
        assert_ok(root_call(b, "user.unlock", {"user": "alice"}))
        lg.logged_in()
        relock(b, lg, 60, 0)


def test_backoff_factor_one_keeps_every_lock_as_long(mfa_broker):
    b = mfa_broker(lockout(duration=60, backoffFactor=1))
    with Login(b) as lg:
        still_locked_until(b, lg, relock(b, lg, 60, 0))
        still_locked_until(b, lg, relock(b, lg, 60, 1))


def test_max_duration_shorter_than_duration_is_refused(id_broker):
    b = id_broker(lockout(duration=900, maxDuration=600), start_it=False)
    cp = run_broker_once(["--config", b.config_path, "--check-config"])
    assert cp.returncode == 2 and "lockout.maxDuration" in cp.stderr, cp.stderr
    b.start(wait=False, env=b.nss_env)
    assert b.wait_exit() == 2
    assert "security.authentication.lockout.maxDuration" in b.stderr(), b.stderr()
    # Each key's own range is checked as well.
    for bad in ({"backoffFactor": 0}, {"backoffFactor": 17}, {"backoffWindow": 0},
                {"maxDuration": "1d"}):
        b.write_config(deep_merge(NO_MFA_REQUIRED, lockout(**bad)))
        cp = run_broker_once(["--config", b.config_path, "--check-config"])
        assert cp.returncode == 2 and "security.authentication.lockout." in cp.stderr, (
            bad, cp.stderr)


# --------------------------------------------------------------------------
# Admin locks
# --------------------------------------------------------------------------

def test_admin_lock_with_message_and_expiry(mfa_broker):
    b = mfa_broker(users=("alice", "bob"))
    with Login(b) as lg, Login(b, "bob") as bob:
        s = lg.logged_in()
        sb = bob.logged_in()
        assert_ok(lg.conn.call("check", CHECK, session=s["session"]))
        t0 = b.clock.now()
        res = assert_ok(root_call(b, "user.lock", {"user": "alice", "message": "security review",
                                                   "expires": 600}))
        assert (res["user"], res["locked"], res["sessions_ended"]) == ("alice", True, 1), res
        assert abs(epoch(res["until"]) - (t0 + 600)) <= 3, res
        # The very next request on alice's open connection is refused ...
        assert_error(lg.conn.call("check", CHECK, session=s["session"]), "session_required")
        # ... and bob is not touched.
        assert_ok(bob.conn.call("check", CHECK, session=sb["session"]))

        err = assert_error(lg.right(), "locked")
        assert "security review" in err["message"] and res["until"] in err["message"], err
        acct = assert_ok(lg.conn.call("account", {}))
        assert acct["locked"] is True and acct["until"] == res["until"], acct
        assert "security review" in acct["message"], acct

        b.clock.advance(601)
        lg.logged_in()
        assert account(b)["locked"] is False


def test_admin_lock_until_unlock(mfa_broker):
    b = mfa_broker()
    with Login(b) as lg:
        s = lg.logged_in()
        res = assert_ok(root_call(b, "user.lock", {"user": "alice", "message": "left the team"}))
        assert res["until"] is None and res["sessions_ended"] == 1, res
        assert assert_ok(lg.conn.call("status", session=s["session"]))["session"] is None
        b.clock.advance(30 * 86400)
        err = assert_error(lg.right(), "locked")
        assert "by an administrator: left the team" in err["message"], err
        acct = account(b)
        assert acct["locked"] is True and acct["until"] is None, acct
        assert "left the team" in acct["message"], acct

        assert assert_ok(root_call(b, "user.unlock", {"user": "alice"}))["was_locked"] is True
        s2 = lg.logged_in()
        assert_ok(lg.conn.call("check", CHECK, session=s2["session"]))
        # Unlocking an unlocked account says so.
        assert assert_ok(root_call(b, "user.unlock", {"user": "alice"}))["was_locked"] is False

    for bad in ({"user": "alice", "expires": 0}, {"user": "alice", "expires": "1h"},
                {"user": "alice", "message": 5}, {"user": "alice", "message": "m" * 201}):
        assert_error(root_call(b, "user.lock", bad), "invalid_argument")
    assert account(b)["locked"] is False


def test_only_admins_lock(mfa_broker):
    b = mfa_broker(users=("alice", "bob"))
    with Login(b) as lg:
        s = lg.logged_in()
        for op in ("user.lock", "user.unlock"):
            assert_error(lg.conn.call(op, {"user": "bob"}), "session_required")
            assert_error(lg.conn.call(op, {"user": "bob"}, session=s["session"]), "denied")
    assert account(b, "bob")["locked"] is False


# --------------------------------------------------------------------------
# The audit trail: every event, never a secret
# --------------------------------------------------------------------------

def test_every_event_is_audited_and_no_code_or_token_is_kept(mfa_broker):
    # The most talkative broker: whatever it logs must still hold no secret.
    b = mfa_broker({"security": {"audit": {"logLevel": "debug"}}}, users=("alice", "bob"))
    tokens = []
    recovery = b.enrolled["alice"]["recovery_codes"][0].upper()
    with Login(b) as al, Login(b, "bob") as bo, UserConn(b, "root") as root:
        tokens.append(al.logged_in()["session"])
        tokens.append(assert_ok(al.send(recovery))["session"])
        assert_error(al.wrong(), "denied")
        tokens.append(bo.logged_in()["session"])
        lock_after_three(bo)
        assert_error(bo.right(), "locked")
        assert_ok(root.call("user.unlock", {"user": "bob"}))
        tokens.append(bo.logged_in()["session"])
        assert_ok(root.call("user.lock", {"user": "alice", "message": "m1"}))
        assert_ok(root.call("user.unlock", {"user": "alice"}))
        s = al.logged_in()
        tokens.append(s["session"])
        assert_ok(root.call("session.revoke", {"id": s["id"]}))
        tokens.append(al.logged_in()["session"])
        assert_ok(root.call("session.revoke", {"user": "bob"}))
        assert_ok(root.call("session.revoke", {"all": True}))
        for t in tokens:                        # present each (refused) once more
            al.conn.call("check", CHECK, session=t)
        assert_error(al.conn.call("check", CHECK, session=tokens[0][:-1] + "A"),
                     "session_required")

    def results(conn, action):
        """Each row's result; a refusal for a lock as "locked" (whether the
        trail files it under denied or error)."""
        rows = b.audit_rows("action = ? AND pid = ?", (action, conn.pid))
        return [r["result"] if meta(r).get("error") != "locked" or r["result"] == "success"
                else "locked" for r in rows]

    assert results(al.conn, "login") == ["success", "success", "denied", "success", "success"]
    assert results(bo.conn, "login") == ["success", "denied", "denied", "locked", "locked",
                                         "success"], b.audit_rows("pid = ?", (bo.conn.pid,))
    assert results(root, "user.lock") == ["success"]
    assert results(root, "user.unlock") == ["success", "success"]
    assert results(root, "session.revoke") == ["success"] * 3
    lock = b.audit_rows("action = 'login' AND pid = ? AND metadata LIKE '%\"locked\":true%'",
                        (bo.conn.pid,))
    assert len(lock) == 1 and meta(lock[0])["error"] == "locked", lock
    b.stop()

    secrets = set(al.sent) | set(bo.sent) | {recovery, recovery.lower()}
    for u in ("alice", "bob"):
        secrets |= {c for c in b.enrolled[u]["recovery_codes"]}
        secrets.add(b.enrolled[u]["secret"])
    for t in tokens:
        secrets |= {t, TOKEN_RE.match(t).group(2)}
    assert all(len(x) >= 6 for x in secrets), secrets

    def blob(*paths):
        out = b""
        for p in paths:
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out += f.read()
        return out

    audit = blob(b.audit_db, b.audit_db + "-wal")
    assert len(audit) > 0
    stderr = b.stderr().encode()
    assert b"listening on" in stderr
    state = blob(b.state_db, b.state_db + "-wal")

    def no_secret_in(name, data):
        for x in secrets:
            if len(x) > 6:
                assert x.encode() not in data, "%r found in the %s" % (x, name)
        # Six digits could turn up inside a session id's hex by chance: not there.
        data = re.sub(rb"[0-9a-f]{32}", b"-", data)
        for x in secrets:
            assert x.encode() not in data, "%r found in the %s" % (x, name)

    no_secret_in("audit store", audit)
    no_secret_in("broker's stderr", stderr)
    # The state store keeps hashes and sealed seeds, not tokens, codes or seeds.
    no_secret_in("state store", state)
    for u in ("alice", "bob"):
        seed = base64.b32decode(b.enrolled[u]["secret"])
        assert len(seed) == 20 and seed not in state, "%s's raw TOTP seed is in state.db" % u
    # Every session id in the trail names a session, never its secret.
    for r in b.audit_rows("metadata LIKE '%session%'"):
        m = json.loads(r["metadata"])
        if isinstance(m.get("session"), str):
            assert re.match(r"^[0-9a-f]{32}$", m["session"]), r


def test_lock_message_stays_one_printable_line(mfa_broker):
    b = mfa_broker()
    bad = "line one\nline two \x1b[31mred\x07"
    with b.connect() as c:
        # Client.call checks every reply's shape (one-line messages) itself.
        r = c.call("user.lock", {"user": "alice", "message": bad})
        if not r["ok"]:
            assert r["error"]["code"] == "invalid_argument", r
            return
        for reply in (c.call("login", {"user": "alice", "code": "000000"}),
                      c.call("account", {"user": "alice"})):
            text = json.dumps(reply, ensure_ascii=False)
            assert not re.search(r"[\x00-\x1f\x7f]", reply.get("error", {}).get("message", "")
                                 + reply.get("result", {}).get("message", "")), text
