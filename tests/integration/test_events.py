"""Answers that are not replies to a whole request: refusals at connect,
messages not finished in time, requests before the handshake.  Each is
answered with a typed error and audited like any request."""
import json
import os
import sqlite3
import struct

from conftest import Client, SLOW, assert_error, assert_ok, frame


def meta(row):
    return json.loads(row["metadata"])


def mine(b):
    return b.audit_rows("pid = ?", (os.getpid(),))


def test_busy_refusal_is_answered_and_audited(broker_factory):
    b = broker_factory({"broker": {"maxClients": 2}})
    held = [b.connect(), b.connect()]
    try:
        with Client(b.sock) as extra:
            replies, closed = extra.read_until_eof()
        assert closed
        assert len(replies) == 1, replies
        assert_error(replies[0], "busy")
        rows = [r for r in mine(b) if r["action"] == "connect"]
        assert len(rows) == 1, rows
        assert rows[0]["result"] == "error"
        assert meta(rows[0])["error"] == "busy"
        assert rows[0]["uid"] == 0 and rows[0]["user"] == "root"
    finally:
        for c in held:
            c.close()


def test_unfinished_message_gets_timeout_and_row(broker_factory):
    b = broker_factory({"broker": {"clientTimeout": 1}})
    with b.connect() as c:
        body = json.dumps({"id": 5, "op": "status"}).encode()
        c.send_raw(struct.pack(">I", len(body)) + body[:4])
        replies, closed = c.read_until_eof(timeout=10 * SLOW)
    assert closed
    assert len(replies) == 1, replies
    assert_error(replies[0], "timeout")
    row = mine(b)[-1]
    assert row["action"] == "malformed"
    assert row["result"] == "error"
    assert meta(row)["error"] == "timeout"


def test_request_before_hello_is_recorded_as_handshake(broker):
    with Client(broker.sock) as c:
        assert_error(c.call("status", id=9), "handshake_required", id=9)
        assert c.recv_msg() is None     # closed after the refusal
    row = mine(broker)[-1]
    assert row["action"] == "handshake"
    assert row["resource"] == "status"
    assert meta(row)["error"] == "handshake_required"


def test_hello_not_counted_when_its_record_fails(broker):
    """A handshake whose audit record cannot be written does not open the
    connection: the next request still needs a hello."""
    con = sqlite3.connect(broker.audit_db, timeout=10)
    con.execute("CREATE TRIGGER kw_break BEFORE INSERT ON audit_log "
                "BEGIN SELECT RAISE(ABORT,'broken'); END")
    con.commit()
    with Client(broker.sock) as c:
        assert_error(c.hello(id=1), "audit_unavailable", id=1)
        con.execute("DROP TRIGGER kw_break")
        con.commit()
        assert_error(c.call("status", id=2), "handshake_required", id=2)
    con.close()
    with broker.connect() as c:
        assert_ok(c.call("status"))
