"""state.db's transactions begin at the first write of a turn: a change made in a
turn is committed with it (a restarted broker has it, even one killed), and
requests that only read leave state.db as it was (no commit: its data_version
and WAL unchanged).  That a turn of reads takes no write lock at all cannot be
seen from outside in the moment; tests/unit/broker/test_state_turns.c checks it."""
import os
import sqlite3

from conftest import SEED_LOG_ACTIONS
from users import as_json, id_broker, ok, run_as, start  # noqa: F401 (fixture)


def adm(b, *args):
    return run_as(b, "root", "admin", *args)


def roles_of(b, name):
    return as_json(adm(b, "user", "show", name, "--json"))["roles"]


def test_a_grant_survives_a_restart(id_broker):
    b = id_broker()
    ok(adm(b, "user", "add", "alice", "--role", "reviewer"))
    ok(adm(b, "role", "grant", "alice", "developer"))
    assert roles_of(b, "alice") == ["developer", "reviewer"]
    # Stopped hard: nothing but the turns' own commits can have saved the grant.
    b.kill9()
    start(b)
    assert roles_of(b, "alice") == ["developer", "reviewer"]
    ok(adm(b, "role", "revoke", "alice", "reviewer"))
    assert b.stop() == 0
    start(b)
    assert roles_of(b, "alice") == ["developer"]


def test_reads_leave_state_db_alone(id_broker):
    # The default logActions: hello and status are not recorded.  (A turn that
    # writes records has the audit head remembered in state.db after it,
    # batch.c's remember_head: that write is on purpose.)
    b = id_broker({"security": {"audit": {"logActions": SEED_LOG_ACTIONS}}})
    ok(adm(b, "user", "add", "alice", "--role", "reviewer"))
    wal = b.state_db + "-wal"
    con = sqlite3.connect("file:%s?mode=ro" % b.state_db, uri=True, timeout=10)
    try:
        def version():
            return con.execute("PRAGMA data_version").fetchone()[0]
        # Whatever the start and the registration left is written by now.
        ok(run_as(b, "alice", "status"))
        before, size = version(), os.stat(wal).st_size
        for _ in range(5):
            ok(run_as(b, "alice", "status"))
        assert version() == before, "a turn of reads committed to state.db"
        assert os.stat(wal).st_size == size
        # And a change is seen at once (the check above would see a commit).
        ok(adm(b, "role", "grant", "alice", "developer"))
        assert version() != before
    finally:
        con.close()
