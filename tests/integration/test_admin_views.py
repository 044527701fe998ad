"""What the admin views show (issue 12): the state of each account in
`admin user list|show` (its lock, with expiry and message; its second
factor; its live sessions), `admin user list --locked`, incidents closed
with a note and listed by state, and files written for an admin under sudo.

Brokers run under nss_wrapper (users.py); logins are TOTP codes over the raw
protocol as the user; administration is the real CLI as root.
"""
import json
import os
import stat

from conftest import assert_ok, db_rows, deep_merge
from users import (USERS, UserConn, as_json, denied_row, epoch, fails, id_broker,  # noqa: F401
                   meta, mfa_broker, ok, rows_of, run_as, session_of, table, totp)

NO_MFA = {"security": {"authentication": {"mfa": {"enabled": False, "required": False}}}}


def adm(b, *args):
    return run_as(b, "root", "admin", *args)


def users_by_name(b, *flags):
    doc = as_json(adm(b, "user", "list", "--json", *flags))
    return {u["user"]: u for u in doc["users"]}


def login(b, conn, user):
    """A right code for the broker's time, accepted: the login's result."""
    return session_of(conn.call("login", {"code": totp(b.enrolled[user]["secret"],
                                                       b.clock.now())}))


# --------------------------------------------------------------------------
# admin user list|show: lock, second factor, live sessions

def test_user_views_show_lock_enrolment_and_sessions(mfa_broker):
    b = mfa_broker(users=("alice", "bob"))
    with UserConn(b, "alice") as a:
        login(b, a, "alice")
        # A lock with a message and an expiry, made by root.
        ok(adm(b, "user", "lock", "bob", "--message", "laptop stolen, call IT",
               "--expires", "2h"))
        now = b.clock.now()

        users = users_by_name(b)
        alice, bob = users["alice"], users["bob"]
        assert alice["locked"] is False and alice["lock"] is None, alice
        assert alice["sessions"] == 1, alice
        assert alice["totp"]["enrolled"] is True, alice
        assert abs(epoch(alice["totp"]["enrolled_at"]) - now) < 120, alice
        assert alice["totp"]["recovery_codes_left"] == len(b.enrolled["alice"]["recovery_codes"])
        assert bob["locked"] is True and bob["sessions"] == 0, bob
        assert bob["lock"]["message"] == "laptop stolen, call IT", bob
        assert bob["lock"]["by"] == "root", bob
        assert abs(epoch(bob["lock"]["until"]) - (now + 7200)) < 60, bob

        # show --json says the same of one user.
        shown = as_json(adm(b, "user", "show", "bob", "--json"))
        for k in ("locked", "lock", "totp", "sessions"):
            assert shown[k] == bob[k], (shown, bob)

        # The table: a column each for the second factor, the sessions and the lock.
        cols, rows = table(ok(adm(b, "user", "list")), "USER")
        assert cols == ["USER", "UID", "ROLES", "CREATED", "TOTP", "SESSIONS", "LOCKED"], cols
        by = {r["USER"]: r for r in rows}
        assert by["alice"]["SESSIONS"] == "1" and by["alice"]["TOTP"] == "enrolled", by
        assert by["alice"]["LOCKED"] == "-", by
        assert by["bob"]["SESSIONS"] == "0", by
        assert by["bob"]["LOCKED"] == "until %s by root: laptop stolen, call IT" % (
            bob["lock"]["until"]), by

        # show in words.
        out = ok(adm(b, "user", "show", "bob"))
        assert "locked      until %s by root: laptop stolen, call IT" % bob["lock"]["until"] \
            in out, out
        assert "totp        enrolled" in out and "sessions    0 live" in out, out
        out = ok(adm(b, "user", "show", "alice"))
        assert "locked      no" in out and "sessions    1 live" in out, out

    # A session idle past security.session.timeout is no longer counted.
    b.clock.advance(3600 + 60)
    assert users_by_name(b)["alice"]["sessions"] == 0


def test_user_list_locked_filter_and_lock_expiry(id_broker):
    b = id_broker(NO_MFA, clocked=True)
    for name in ("alice", "bob", "carol"):
        ok(adm(b, "user", "add", name, "--role", "developer"))
    # Nobody locked: the filter says so, in words and in JSON.
    assert users_by_name(b, "--locked") == {}
    assert "no locked users" in ok(adm(b, "user", "list", "--locked"))

    ok(adm(b, "user", "lock", "bob"))                         # until unlocked
    ok(adm(b, "user", "lock", "carol", "--expires", "60"))    # runs out
    locked = users_by_name(b, "--locked")
    assert sorted(locked) == ["bob", "carol"], locked
    assert locked["bob"]["lock"]["until"] is None, locked
    assert locked["bob"]["lock"]["message"] == "locked by an administrator", locked
    # Without a second factor configured, nobody is enrolled.
    assert locked["bob"]["totp"] == {"enrolled": False, "enrolled_at": None,
                                     "recovery_codes_left": 0}, locked
    _, rows = table(ok(adm(b, "user", "list", "--locked")), "USER")
    assert sorted(r["USER"] for r in rows) == ["bob", "carol"], rows
    bob_row = next(r for r in rows if r["USER"] == "bob")
    assert bob_row["LOCKED"].startswith("until an administrator unlocks it by root"), rows
    assert bob_row["TOTP"] == "none", rows

    # carol's lock runs out: she is no longer listed as locked.
    b.clock.advance(120)
    assert sorted(users_by_name(b, "--locked")) == ["bob"]
    assert users_by_name(b)["carol"]["locked"] is False
    # Unlocked: nobody.
    ok(adm(b, "user", "unlock", "bob"))
    assert users_by_name(b, "--locked") == {}
    # The filter is an admin view like the list: refused to a developer.
    cp = run_as(b, "alice", "admin", "user", "list", "--locked")
    fails(cp, 1, "denied")
    denied_row(b, cp, "alice", "user.list", "user")


# --------------------------------------------------------------------------
# Incidents: closed with a note, listed by state

BLOCK_RULES = [{"type": "suspicious_activity", "threshold": 4, "action": "block"},
               {"type": "failed_authentication", "threshold": 3, "action": "block"}]


def open_incident(b, user="alice"):
    """user makes four admin requests it may not: blocked, an incident opens."""
    with UserConn(b, user) as c:
        for _ in range(4):
            assert c.call("user.list", {})["ok"] is False
    (inc,) = as_json(adm(b, "incident", "list", "--json"))["incidents"]
    assert inc["status"] == "open", inc
    return inc


def incident_ids(b, state):
    doc = as_json(adm(b, "incident", "list", "--state", state, "--json"))
    return [i["id"] for i in doc["incidents"]]


def test_incident_close_with_note(id_broker):
    b = id_broker({"security": {"monitoring": {"alerts": BLOCK_RULES}}})
    for name in ("alice", "bob"):
        ok(adm(b, "user", "add", name, "--role", "developer"))
    inc = open_incident(b)
    assert inc["closed"] is None and inc["closed_by"] is None and inc["note"] is None, inc
    assert incident_ids(b, "open") == [inc["id"]]
    assert incident_ids(b, "closed") == []

    # Not an administrator: refused, and the refusal is on record.
    cp = run_as(b, "bob", "admin", "incident", "close", inc["id"], "--note", "nothing to see")
    fails(cp, 1, "denied")
    denied_row(b, cp, "bob", "incident.close", "incident")
    assert incident_ids(b, "open") == [inc["id"]]

    note = "alice's script looped on user.list; fixed and unlocked"
    out = ok(adm(b, "incident", "close", inc["id"], "--note", note))
    assert out.strip() == "closed %s: %s" % (inc["id"], note), out
    assert incident_ids(b, "open") == []
    (closed,) = as_json(adm(b, "incident", "list", "--state", "closed", "--json"))["incidents"]
    assert closed["id"] == inc["id"] and closed["status"] == "closed", closed
    assert closed["closed_by"] == "root" and closed["note"] == note, closed
    epoch(closed["closed"])
    # Kept in the state store ...
    (row,) = db_rows(b.state_db, "SELECT status, closed_by, close_note FROM incidents")
    assert tuple(row) == ("closed", "root", note), tuple(row)
    # ... and on the record, with the note and the incident it closed.
    cp = adm(b, "incident", "close", inc["id"], "--note", "again")
    fails(cp, 2, "closed already")
    (rec,) = b.audit_rows("action = 'incident.close' AND result = 'success'")
    assert rec["user"] == "root" and rec["resource"] == "incident/" + inc["id"], rec
    assert meta(rec)["note"] == note, rec
    (again,) = rows_of(b, cp, "action = 'incident.close'")
    assert again["result"] == "error" and meta(again)["error"] == "invalid_argument", again

    # The report and the table say it too.
    rep = ok(adm(b, "incident", "report", inc["id"]))
    assert "closed      %s by root: %s" % (closed["closed"], note) in rep, rep
    _, rows = table(ok(adm(b, "incident", "list", "--state", "closed")), "ID")
    assert [r["STATUS"] for r in rows] == ["closed"], rows

    # What is refused before the broker is asked, and by it.
    fails(adm(b, "incident", "list", "--state", "resolved"), 2, "usage")
    fails(adm(b, "incident", "close", inc["id"]), 2, "usage")
    with b.connect() as c:
        assert c.call("incident.close", {"id": "INC-000009", "note": "x"})["error"]["code"] \
            == "not_found"
        assert c.call("incident.close", {"id": inc["id"], "note": "two\nlines"})["error"][
            "code"] == "invalid_argument"
        assert c.call("incident.list", {"state": "resolved"})["error"]["code"] == "bad_request"


# --------------------------------------------------------------------------
# Files written for an admin under sudo belong to the admin

def owner(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def test_outputs_under_sudo_belong_to_the_invoking_user(id_broker):
    b = id_broker({"security": {"compliance": {"gdpr": {"enabled": True}}}})
    ok(adm(b, "user", "add", "alice", "--role", "developer"))
    uid, gid = USERS["alice"]
    # What sudo sets when alice runs `sudo keywarden ...`; the CLI runs as root.
    sudo = {"SUDO_UID": str(uid), "SUDO_GID": str(gid), "SUDO_USER": "alice"}
    out = os.path.join(b.root, "out")
    os.mkdir(out, 0o755)

    audit = os.path.join(out, "audit.jsonl")
    ok(run_as(b, "root", "admin", "audit", "export", "--format", "jsonl", "--output", audit,
              env=sudo))
    assert owner(audit) == (uid, gid, 0o600), owner(audit)
    with open(audit) as f:
        assert any(json.loads(line)["action"] == "user.add" for line in f)

    export = os.path.join(out, "alice.json")
    ok(run_as(b, "root", "admin", "user", "export", "alice", "--output", export, env=sudo))
    assert owner(export) == (uid, gid, 0o600), owner(export)
    # Replacing a file (--force) gives the new one to alice too.
    os.chown(export, 0, 0)
    ok(run_as(b, "root", "admin", "user", "export", "alice", "--output", export, "--force",
              env=sudo))
    assert owner(export) == (uid, gid, 0o600), owner(export)

    key = os.path.join(out, "audit-secret.key")
    ok(run_as(b, "root", "admin", "audit", "keygen", "--output", key, env=sudo))
    assert owner(key) == (uid, gid, 0o600), owner(key)
    # No temporary file is left beside them.
    assert sorted(os.listdir(out)) == ["alice.json", "audit-secret.key", "audit.jsonl"]

    # Without sudo's word, or with a word that is not a uid, the file stays root's.
    for i, env in enumerate(({}, {"SUDO_UID": "2001x", "SUDO_GID": "2001"},
                             {"SUDO_UID": "-1", "SUDO_GID": "-1"},
                             {"SUDO_UID": "2001"},
                             {"SUDO_UID": "4294967295", "SUDO_GID": "2001"})):
        path = os.path.join(out, "root%d.jsonl" % i)
        ok(run_as(b, "root", "admin", "audit", "export", "--format", "jsonl", "--output", path,
                  env=dict(env, SUDO_USER="alice")))
        assert owner(path) == (0, 0, 0o600), (env, owner(path))
