"""The audit trail: one row per answered message, written before the reply."""
import calendar
import json
import os
import re
import sqlite3
import struct
import time

from conftest import (Client, assert_error, assert_ok, file_mode, frame, wait_for)

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
COLUMNS = {"seq", "ts", "ts_ms", "user", "uid", "pid", "action", "resource", "result",
           "metadata", "request_id", "prev_hash", "hash"}


def ts_to_ms(ts):
    base = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
    return base * 1000 + int(ts[20:23])


def meta(row):
    m = json.loads(row["metadata"])
    assert isinstance(m, dict), row
    return m


def mine(b, pid=None):
    return b.audit_rows("pid = ?", (pid or os.getpid(),))


def check_row(row, action, result="success", pid=None):
    assert row["action"] == action, row
    assert row["result"] == result, row
    assert row["uid"] == 0, row
    assert row["user"] == "root", row
    assert row["pid"] == (pid or os.getpid()), row
    assert TS_RE.match(row["ts"]), row
    assert ts_to_ms(row["ts"]) == row["ts_ms"], row
    assert abs(row["ts_ms"] - time.time() * 1000) < 10 * 60 * 1000, row
    meta(row)


def test_status_rows(broker):
    n = 7
    assert mine(broker) == []
    with Client(broker.sock) as c:
        assert_ok(c.hello(id=1), id=1)
        rows = mine(broker)
        assert len(rows) == 1
        check_row(rows[0], "hello")
        assert rows[0]["request_id"] == 1
        for i in range(n):
            assert_ok(c.call("status", id=10 + i), id=10 + i)
            # Committed before the reply was sent.
            rows = mine(broker)
            assert len(rows) == 2 + i, rows
    assert [r["action"] for r in rows] == ["hello"] + ["status"] * n
    for i, r in enumerate(rows[1:]):
        check_row(r, "status")
        assert r["request_id"] == 10 + i
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs)
    ts = [r["ts_ms"] for r in rows]
    assert ts == sorted(ts)
    # A connection that sends nothing leaves no row.
    Client(broker.sock).close()
    assert len(mine(broker)) == n + 1


def test_cli_status_row_names_cli_process(broker):
    cp = broker.cli("status")
    assert cp.returncode == 0, cp.stderr
    rows = mine(broker, cp.pid)
    assert [r["action"] for r in rows] == ["hello", "status"], rows
    for r in rows:
        check_row(r, r["action"], pid=cp.pid)


def test_malformed_rows(broker):
    with broker.connect() as c:
        c.send_raw(frame(b"{not json"))
        assert_error(c.recv_msg(), "bad_json", id=None)
        assert_error(c.request({"id": 5, "op": 17}), "bad_request", id=5)
        assert_error(c.request([1, 2]), "bad_request", id=None)
    rows = mine(broker)
    assert [r["action"] for r in rows] == ["hello", "malformed", "malformed", "malformed"]
    for r, code in zip(rows[1:], ["bad_json", "bad_request", "bad_request"]):
        check_row(r, "malformed", result="error")
        assert meta(r)["error"] == code, r
    assert rows[1]["request_id"] is None
    assert rows[2]["request_id"] in (5, None)

    for hdr, code in ((struct.pack(">I", 1 << 20), "frame_too_large"),
                      (b"\0\0\0\0", "bad_frame")):
        with Client(broker.sock) as c:
            c.send_raw(hdr)
            assert_error(c.recv_msg(), code, id=None)
            replies, closed = c.read_until_eof()
            assert closed
        r = mine(broker)[-1]
        check_row(r, "malformed", result="error")
        assert meta(r)["error"] == code
    assert len(mine(broker)) == 6


def test_unknown_op_row(broker):
    with broker.connect() as c:
        assert_error(c.call("frobnicate", {"x": 1}, id=44), "unknown_op", id=44)
    rows = mine(broker)
    assert [r["action"] for r in rows] == ["hello", "unknown_op"]
    r = rows[1]
    assert r["resource"] == "frobnicate"
    assert r["result"] != "success"
    assert r["uid"] == 0 and r["user"] == "root" and r["pid"] == os.getpid()
    assert r["request_id"] == 44
    assert meta(r)["error"] == "unknown_op"


def test_every_answered_message_one_row(broker):
    """Handshake failures are answered, so they are audited too."""
    with Client(broker.sock) as c:
        assert_error(c.call("status", id=3), "handshake_required", id=3)
    with Client(broker.sock) as c:
        assert_error(c.hello(version=9, id=4), "version_mismatch", id=4)
    rows = mine(broker)
    assert len(rows) == 2, rows
    assert meta(rows[0])["error"] == "handshake_required"
    assert meta(rows[1])["error"] == "version_mismatch"
    for r in rows:
        assert r["result"] != "success"
    # A mixed session: replies == rows.
    with broker.connect() as c:
        replies = 1
        for m in ({"id": 7, "op": "status"}, {"id": 8, "op": "nope"}, [], {"id": 9, "op": "status"}):
            c.request(m)
            replies += 1
        c.send_raw(frame(b"}{"))
        c.recv_msg()
        replies += 1
    assert len(mine(broker)) == 2 + replies


def break_audit(db, sql):
    con = sqlite3.connect(db, timeout=10)
    try:
        con.execute(sql)
        con.commit()
    finally:
        con.close()


def test_audit_unavailable_and_recovery(broker):
    c1 = broker.connect()
    before = len(broker.audit_rows())
    errlen = len(broker.stderr())
    break_audit(broker.audit_db,
                "CREATE TRIGGER kw_break BEFORE INSERT ON audit_log "
                "BEGIN SELECT RAISE(ABORT,'broken'); END")
    try:
        assert_error(c1.call("status", id=21), "audit_unavailable", id=21)
    finally:
        c1.close()
    with Client(broker.sock) as c2:
        r = c2.hello()
        assert_error(r, "audit_unavailable")
    cp = broker.cli("status")
    assert cp.returncode != 0, cp.stdout
    assert "status" not in [r["action"] for r in broker.audit_rows()[before:]]
    assert len(broker.audit_rows()) == before
    # The broker says why, and keeps running.
    wait_for(lambda: any(w in broker.stderr()[errlen:].lower() for w in ("broken", "constraint")),
             10, what="the audit failure logged on stderr")
    assert "audit" in broker.stderr()[errlen:].lower()
    assert broker.running()

    break_audit(broker.audit_db, "DROP TRIGGER kw_break")
    with broker.connect() as c3:
        assert_ok(c3.call("status", id=22), id=22)
    cp = broker.cli("status")
    assert cp.returncode == 0, cp.stderr
    assert [r["action"] for r in broker.audit_rows()[before:]][-2:] == ["hello", "status"]


def test_audit_table_dropped(broker):
    c = broker.connect()
    try:
        break_audit(broker.audit_db, "DROP TABLE audit_log")
        assert_error(c.call("status", id=31), "audit_unavailable", id=31)
    finally:
        c.close()
    assert broker.running()
    with Client(broker.sock) as c2:
        assert_error(c2.hello(), "audit_unavailable")
    assert broker.running()


def test_store_files_and_modes(broker_factory):
    # umask 0: the broker must set the modes itself.
    b = broker_factory(umask=0)
    with b.connect() as c:
        assert_ok(c.call("status"))
    assert file_mode(b.datadir) == 0o700
    for db in (b.state_db, b.audit_db):
        assert os.path.isfile(db), db
        assert file_mode(db) == 0o600, (db, oct(file_mode(db)))
        for suffix in ("-wal", "-shm", "-journal"):
            if os.path.exists(db + suffix):
                assert file_mode(db + suffix) == 0o600, (db + suffix, oct(file_mode(db + suffix)))
    for db in (b.state_db, b.audit_db):
        con = sqlite3.connect(db, timeout=10)
        try:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal", db
            assert con.execute("PRAGMA user_version").fetchone()[0] >= 1, db
        finally:
            con.close()
    con = sqlite3.connect(b.audit_db, timeout=10)
    try:
        cols = {r[1] for r in con.execute("PRAGMA table_info(audit_named)")}
    finally:
        con.close()
    assert COLUMNS <= cols, COLUMNS - cols
    assert b.stop() == 0
    # Still so after a clean stop.
    assert file_mode(b.datadir) == 0o700
    assert file_mode(b.audit_db) == 0o600
