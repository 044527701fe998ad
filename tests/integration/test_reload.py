"""keywardend reloads its configuration on SIGHUP (issue 12).

A valid, changed file is recorded (config.change with the previous and the
new digest) and then applied between two turns: values read per request
(security.session.timeout, security.audit.logActions), the compiled roles,
the monitor's windows and the daemon's timeouts all follow.  A file that is
not valid, or that changes what only a restart can change, is refused: the
broker keeps serving with the configuration in force, and the refusal is
logged and recorded (config.reload, result error).  `config set` says
whether the running broker has the change, comparing the digest `status`
shows an administrator with the file's.

Reloads are waited for through their audit record (or, for a file that did
not change, the log line), with a bounded loop.
"""
import hashlib
import json
import os
import signal
import time

from conftest import (IO_TIMEOUT, SLOW, START_TIMEOUT, assert_ok, clean_env, db_rows,
                      deep_merge, run_cli, wait_for)
from users import (UserConn, as_json, epoch, fails, id_broker, meta, mfa_broker,  # noqa: F401
                   ok, run_as, session_of, totp)

RELOAD_ACTIONS = "action IN ('config.change', 'config.reload')"


def digest(b):
    with open(b.config_path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def reload(b, want="config.change"):
    """SIGHUP b and wait for the record of that reload (want: its action); the record."""
    before = len(b.audit_rows(RELOAD_ACTIONS))
    b.send_signal(signal.SIGHUP)
    rows = wait_for(lambda: b.audit_rows(RELOAD_ACTIONS)[before:] or None,
                    START_TIMEOUT, what="the reload's record")
    assert len(rows) == 1, rows
    assert rows[0]["action"] == want, (rows[0], b.stderr())
    assert b.running(), b.stderr()
    return rows[0]


def root_status(b):
    with b.connect() as c:
        return assert_ok(c.call("status"))


def statuses_recorded(b, pid):
    return len(b.audit_rows("action = 'status' AND pid = ?", (pid,)))


def log_actions(*actions):
    return {"security": {"audit": {"logActions": list(actions)}}}


# --------------------------------------------------------------------------
# A valid change is recorded, then applied

def test_sighup_applies_session_timeout_and_records_the_change(mfa_broker):
    b = mfa_broker()
    first = digest(b)
    st = root_status(b)
    assert st["config_sha256"] == first, st
    assert st["config_path"] == os.path.realpath(b.config_path), st

    with UserConn(b, "alice") as a:
        tok = session_of(a.call("login", {"code": totp(b.enrolled["alice"]["secret"],
                                                       b.clock.now())}))["session"]
        s = assert_ok(a.call("status", session=tok))["session"]
        assert abs(epoch(s["idle_expires"]) - b.clock.now() - 3600) < 60, s

        b.write_config(deep_merge(b.config, {"security": {"session": {"timeout": 600}}}))
        second = digest(b)
        rec = reload(b)
        # The record, as at start: which file, the digest before and after.
        m = meta(rec)
        assert rec["result"] == "success" and rec["resource"] == "config", rec
        assert (m["previous_sha256"], m["sha256"]) == (first, second), m
        assert m["config"] == os.path.realpath(b.config_path), m
        b.wait_stderr("reload: configuration")

        # The same connection, the same session: the new timeout is the one in force.
        s = assert_ok(a.call("status", session=tok))["session"]
        assert abs(epoch(s["idle_expires"]) - b.clock.now() - 600) < 60, s
        assert root_status(b)["config_sha256"] == second
        # 601 idle seconds later the session has ended (it had 3600 before).
        b.clock.advance(601)
        assert a.call("status", session=tok).get("result", {}).get("session") is None

    # Remembered like a start's: restarting with the same file records no change.
    (meta_row,) = db_rows(b.state_db, "SELECT value FROM meta WHERE key = 'config_sha256'")
    assert meta_row["value"] == second
    assert b.stop() == 0
    b.start(env=b.nss_env)
    assert len(b.audit_rows("action = 'config.change'")) == 1


def test_sighup_swaps_roles_monitoring_and_timeouts(id_broker):
    ops = {"security": {"authorization": {"rbac": {"roles": {
        "ops": {"permissions": ["read:key/ops-*"]}}}}}}
    rules = {"security": {"monitoring": {"alerts": [
        {"type": "suspicious_activity", "threshold": 5, "action": "block"}]}}}
    b = id_broker(deep_merge(ops, rules))
    ok(run_as(b, "root", "admin", "user", "add", "alice", "--role", "ops"))
    ok(run_as(b, "root", "admin", "user", "add", "bob", "--role", "developer"))
    ok(run_as(b, "root", "check", "read", "key/ops-db", "--user", "alice"))
    with UserConn(b, "bob") as c:
        for _ in range(2):
            assert c.call("user.list", {})["error"]["code"] == "denied"
    idle = b.connect()

    # ops now reads other keys; two refusals within a minute block; idle
    # connections close after a second.
    new = deep_merge(b.config, {
        "broker": {"idleTimeout": 1},
        "security": {
            "authorization": {"rbac": {"roles": {"ops": {"permissions": ["read:key/web-*"]}}}},
            "monitoring": {"window": 60, "alerts": [{"type": "suspicious_activity",
                                                     "threshold": 2, "action": "block"}]}}})
    b.write_config(new)
    reload(b)

    # The compiled roles were made again from the new file.
    fails(run_as(b, "root", "check", "read", "key/ops-db", "--user", "alice"), 1, "denied")
    ok(run_as(b, "root", "check", "read", "key/web-1", "--user", "alice"))
    # Counting started afresh under the new windows (bob's two earlier refusals
    # are forgotten), and the new threshold holds: two more refusals block bob.
    with UserConn(b, "bob") as c:
        assert c.call("user.list", {})["error"]["code"] == "denied"
        assert not b.audit_rows("action = 'alert'")
        assert c.call("user.list", {})["error"]["code"] == "denied"
    wait_for(lambda: b.audit_rows("action = 'alert'"), IO_TIMEOUT, what="the alert")
    with b.connect() as c:
        assert assert_ok(c.call("account", {"user": "bob"}))["locked"] is True
    # The daemon's idle timeout: the connection opened before the reload is closed.
    _, closed = idle.read_until_eof(timeout=10 * SLOW)
    idle.close()
    assert closed, "the idle connection was not closed after idleTimeout became 1"


def test_many_reloads_while_serving(broker_factory):
    """Reloads land between turns: a client asking all along is always answered."""
    b = broker_factory()
    a = deep_merge(b.config, log_actions("hello", "status"))
    z = deep_merge(b.config, log_actions("hello"))
    with b.connect() as c:
        for i in range(12):
            b.write_config(z if i % 2 == 0 else a)
            before = len(b.audit_rows(RELOAD_ACTIONS))
            b.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + START_TIMEOUT
            while len(b.audit_rows(RELOAD_ACTIONS)) == before:
                assert time.monotonic() < deadline, "no record of reload %d" % i
                assert_ok(c.call("status"))
            assert b.audit_rows(RELOAD_ACTIONS)[-1]["action"] == "config.change"
    assert len(b.audit_rows("action = 'config.change'")) == 12


# --------------------------------------------------------------------------
# What is refused keeps the configuration in force

def test_invalid_file_is_refused_and_the_old_one_kept(broker_factory):
    b = broker_factory()
    first = digest(b)
    with b.connect() as c:
        assert_ok(c.call("status"))
        pid_rows = lambda: statuses_recorded(b, os.getpid())  # noqa: E731
        seen = pid_rows()
        assert seen >= 1

        # Not JSON at all.
        b.write_config_text('{"security": {"session": ')
        rec = reload(b, "config.reload")
        assert rec["result"] == "error", rec
        assert "line" in meta(rec)["reason"], rec
        assert meta(rec)["running_sha256"] == first, rec
        b.wait_stderr("reload refused")

        # Valid JSON, a value the schema refuses; and logActions without status.
        b.write_config(deep_merge(b.config, deep_merge(
            log_actions("hello"), {"security": {"session": {"timeout": "soon"}}})))
        rec = reload(b, "config.reload")
        assert "security.session.timeout" in meta(rec)["reason"], rec

        # Still serving, with the old configuration: status is still recorded.
        assert_ok(c.call("status"))
        assert pid_rows() == seen + 1
        assert root_status(b)["config_sha256"] == first

    # Fixed: the next SIGHUP applies it.
    b.write_config(deep_merge(b.config, {"security": {"session": {"timeout": 900}}}))
    m = meta(reload(b))
    assert m["previous_sha256"] == first and m["sha256"] == digest(b), m


def test_restart_only_keys_are_refused_and_keep_their_value(broker_factory):
    b = broker_factory()
    first = digest(b)
    secret = "c2VhbGluZyBrZXkgdGhhdCBtdXN0IG5vdCBiZSBsb2dnZWQhIQ=="
    b.write_config(deep_merge(b.config, deep_merge(log_actions("hello"), {
        "broker": {"maxClients": 7},
        "security": {"audit": {"encryptionKey": secret}}})))
    rec = reload(b, "config.reload")
    m = meta(rec)
    assert sorted(m["restart_required"]) == ["broker.maxClients",
                                              "security.audit.encryptionKey"], m
    assert "restart" in m["reason"] and "broker.maxClients" in m["reason"], m
    # The names of the keys, never a value (one of them is a secret).
    assert secret not in json.dumps(rec) and secret not in b.stderr()
    b.wait_stderr("a restart is needed to change broker.maxClients")
    # Nothing of that file applies: logActions still records status.
    with b.connect() as c:
        assert_ok(c.call("status"))
    assert statuses_recorded(b, os.getpid()) == 1
    assert root_status(b)["config_sha256"] == first

    # The data directory and the socket too.
    for extra in ({"broker": {"dataDir": os.path.join(b.root, "lib2")}},
                  {"broker": {"socket": os.path.join(b.root, "run", "other.sock")}},
                  {"api": {"keySource": "keychain"}}):
        b.write_config(deep_merge(b.base_config(), extra))
        key = "broker.%s" % next(iter(extra["broker"])) if "broker" in extra else \
            "api.keySource"
        assert meta(reload(b, "config.reload"))["restart_required"] == [key]
    assert not os.path.exists(os.path.join(b.root, "lib2"))
    assert root_status(b)["config_sha256"] == first


def test_unchanged_file_changes_nothing(broker_factory):
    b = broker_factory()
    before = len(b.audit_rows(RELOAD_ACTIONS))
    b.send_signal(signal.SIGHUP)
    b.wait_stderr("is unchanged")
    assert len(b.audit_rows(RELOAD_ACTIONS)) == before
    assert root_status(b)["config_sha256"] == digest(b)


# --------------------------------------------------------------------------
# config set says whether the broker has applied it; status shows admins the digest

def test_config_set_says_whether_the_broker_applied_it(id_broker):
    b = id_broker()
    env = clean_env({"KEYWARDEN_SOCKET": b.sock})
    cs = ["--config", b.config_path, "config", "set", "security.session.timeout"]
    out = ok(run_cli(cs + ["1200"], env=env))
    assert "not applied yet" in out and "send SIGHUP to keywardend" in out, out
    assert "systemctl reload keywarden" in out, out
    reload(b)
    assert root_status(b)["config_sha256"] == digest(b)
    # The same value again: the file as the broker runs it.
    out = ok(run_cli(cs + ["1200"], env=env))
    assert "applied" in out and "not applied" not in out, out
    # As status shows it.
    st = as_json(run_as(b, "root", "status", "--json"))
    assert st["config"] == {"path": os.path.realpath(b.config_path), "sha256": digest(b)}, st
    assert "config    %s" % os.path.realpath(b.config_path) in ok(run_as(b, "root", "status"))

    # Only administrators see it.
    ok(run_as(b, "root", "admin", "user", "add", "alice", "--role", "developer"))
    ok(run_as(b, "root", "admin", "user", "add", "carol", "--role", "admin"))
    assert "config" not in as_json(run_as(b, "alice", "status", "--json"))
    assert as_json(run_as(b, "carol", "status", "--json"))["config"]["sha256"] == digest(b)

    # No broker: it says so, and when the file is read.
    assert b.stop() == 0
    out = ok(run_cli(cs + ["1300"], env=env))
    assert "no broker answers" in out and "when it starts" in out, out
