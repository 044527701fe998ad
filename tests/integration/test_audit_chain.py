"""The audit trail's hash chain (SPEC6): `keywarden admin audit verify` finds
every change made to audit.db behind the broker's back, and an independent
implementation of the record hash in this file agrees with the broker.

The tampering is done the way an intruder with the file would do it: with the
sqlite3 command-line tool, while the broker runs.

Helpers here (record_hash, py_verify, audit_cli, ...) are shared by the other
test_audit_*.py files and test_gdpr.py.
"""
import hashlib
import json
import re
import sqlite3
import struct
import subprocess

from conftest import IO_TIMEOUT, Client, assert_ok, db_rows
from users import as_json, fails, id_broker, ok, run_as  # noqa: F401 (fixture)
from test_identity import setup_users  # noqa: F401 (test_gdpr imports it from here)

ZERO = b"\0" * 32
DOMAIN = b"keywarden-audit-v1\0"
HASHED = ("seq", "ts", "ts_ms", "user", "pid", "action", "resource", "result", "metadata",
          "request_id")
PSEUDONYM_RE = re.compile(r"^~[0-9a-f]{20}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
REC_FIELDS = {"seq", "timestamp", "user", "action", "resource", "result", "metadata", "pid",
              "request_id", "prev_hash", "hash"}


# --------------------------------------------------------------------------
# The record hash, from SPEC6.md alone
# --------------------------------------------------------------------------

def field(x):
    """F(x): u32 big-endian length + bytes; integers as decimal ASCII; NULL = 0xFFFFFFFF."""
    if x is None:
        return b"\xff\xff\xff\xff"
    if isinstance(x, bool):
        raise TypeError("no booleans in a record")
    if isinstance(x, int):
        x = str(x).encode()
    elif isinstance(x, str):
        x = x.encode("utf-8")
    return struct.pack(">I", len(x)) + bytes(x)


def record_hash(prev, rec):
    """SHA-256 of a stored record (a dict of the audit_log columns) after prev."""
    assert isinstance(prev, (bytes, bytearray)) and len(prev) == 32, prev
    h = hashlib.sha256(DOMAIN + bytes(prev))
    for k in HASHED:
        h.update(field(rec[k]))
    return h.digest()


def raw_rows(db, where="1", params=()):
    """audit_log rows as stored (pseudonyms, JSON text, blobs), oldest first."""
    return [dict(r) for r in db_rows(db, "SELECT * FROM audit_log WHERE %s ORDER BY seq"
                                     % where, params)]


def named_rows(db, where="1", params=()):
    """The audit_named view: names resolved (hashes stay blobs)."""
    return [dict(r) for r in db_rows(db, "SELECT * FROM audit_named WHERE %s ORDER BY seq"
                                     % where, params)]


def anchor(db):
    """(first_seq, prev_hash) of the latest audit_anchor row, or (None, ZERO)."""
    rows = db_rows(db, "SELECT first_seq, prev_hash FROM audit_anchor "
                   "ORDER BY first_seq DESC LIMIT 1")
    if not rows:
        return None, ZERO
    row = rows[0]
    assert isinstance(row[1], bytes) and len(row[1]) == 32, tuple(row)
    return row[0], row[1]


def py_verify(db):
    """Verify audit.db's chain without the broker: (n, bad) where bad is None
    or (seq, reason)."""
    rows = raw_rows(db)
    first, prev = anchor(db)
    expect_seq = first if first is not None else (rows[0]["seq"] if rows else None)
    if first is None and rows:
        if rows[0]["seq"] != 1:
            return len(rows), (rows[0]["seq"], "chain does not start at 1")
    for r in rows:
        if r["seq"] != expect_seq:
            return len(rows), (r["seq"], "gap before (expected %s)" % expect_seq)
        if bytes(r["prev_hash"] or b"") != prev:
            return len(rows), (r["seq"], "prev_hash mismatch")
        h = record_hash(prev, r)
        if bytes(r["hash"] or b"") != h:
            return len(rows), (r["seq"], "hash mismatch")
        prev = h
        expect_seq = r["seq"] + 1
    return len(rows), None


def sql(db, statement):
    """Run statement with the sqlite3 command-line tool (a writer beside the broker)."""
    cp = subprocess.run(["sqlite3", "-bail", "-cmd", ".timeout 10000", db, statement],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, timeout=IO_TIMEOUT * 3)
    assert cp.returncode == 0, "sqlite3 %r: %s" % (statement, cp.stderr)
    return cp.stdout


def audit_cli(b, *args, user="root"):
    """keywarden admin audit ARGS as user."""
    return run_as(b, user, "admin", "audit", *args)


def verify_json(b, *extra):
    """(exit status, parsed JSON) of `admin audit verify --json`."""
    cp = audit_cli(b, "verify", "--json", *extra)
    try:
        doc = json.loads(cp.stdout)
    except ValueError:
        raise AssertionError("verify --json printed no JSON (exit %d):\n%s\n%s"
                             % (cp.returncode, cp.stdout, cp.stderr))
    return cp, doc


def verified(b):
    """verify --json succeeds; its answer."""
    cp, doc = verify_json(b)
    assert cp.returncode == 0 and doc["ok"] is True and doc["bad"] is None, (
        "verify failed (exit %d): %s %s" % (cp.returncode, doc, cp.stderr))
    return doc


def records_of(doc):
    """The records of a query/export answer: a bare list or {"records": [...]}."""
    if isinstance(doc, dict):
        assert "records" in doc, doc
        doc = doc["records"]
    assert isinstance(doc, list), doc
    return doc


def query(b, *args, user="root"):
    """`admin audit query ARGS --json` -> list of records."""
    return records_of(as_json(audit_cli(b, "query", *(list(args) + ["--json"]), user=user)))


def check_rec(r):
    """A record of audit.query / query --json has the documented shape."""
    assert isinstance(r, dict), r
    assert REC_FIELDS <= set(r), "record lacks %s: %r" % (REC_FIELDS - set(r), r)
    assert isinstance(r["seq"], int) and r["seq"] > 0, r
    assert isinstance(r["timestamp"], str) and TS_RE.match(r["timestamp"]), r
    assert isinstance(r["user"], str), r
    assert isinstance(r["action"], str) and r["action"], r
    assert r["resource"] is None or isinstance(r["resource"], str), r
    assert r["result"] in ("success", "denied", "error"), r
    assert isinstance(r["metadata"], dict), r
    assert HEX64_RE.match(r["hash"]) and HEX64_RE.match(r["prev_hash"]), r
    return r




def mixed_requests(b):
    """Changes, reads and refusals from several users and the raw protocol."""
    setup_users(b, alice=["developer"], bob=["reviewer"])
    ok(run_as(b, "root", "admin", "role", "create", "auditors", "--permission", "read:key/*"))
    ok(run_as(b, "root", "admin", "role", "grant", "bob", "auditors"))
    ok(run_as(b, "alice", "check", "read", "key/anthropic"))
    fails(run_as(b, "bob", "check", "write", "key/anthropic"), 1, "denied")
    fails(run_as(b, "carol", "admin", "user", "add", "mallory"), 1)
    ok(run_as(b, "root", "status"))
    with Client(b.sock) as c:
        assert_ok(c.hello())
        c.call("nosuch.op", {"x": 1})
        assert_ok(c.call("check", {"action": "read", "resource": "key/x"}))


def count_rows(db):
    return db_rows(db, "SELECT count(*) FROM audit_log")[0][0]


# --------------------------------------------------------------------------

def test_chain_verifies_and_python_agrees(id_broker):
    b = id_broker()
    mixed_requests(b)
    doc = verified(b)
    rows = raw_rows(b.audit_db)
    # The verify request's own record may land after the answer was computed.
    assert doc["records"] == len([r for r in rows if r["seq"] <= doc["last_seq"]]), (doc, len(rows))
    assert doc["records"] >= len(rows) - 1 and doc["records"] > 20, (doc, len(rows))
    assert doc["first_seq"] == 1 and doc["anchor_seq"] in (None, 1, 0), doc
    head = [r for r in rows if r["seq"] == doc["last_seq"]][0]
    assert doc["head_hash"] == head["hash"].hex(), (doc, head["hash"].hex())

    # Independently: consecutive seqs from 1, zero prev for the first, every hash recomputed.
    n, bad = py_verify(b.audit_db)
    assert bad is None, "the broker's chain does not follow SPEC6's hash: %r" % (bad,)
    assert n == len(rows)
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["prev_hash"] == ZERO
    for r in rows:
        assert isinstance(r["hash"], bytes) and len(r["hash"]) == 32, r
        # Callers appear as pseudonyms (the broker's own records may have "").
        assert PSEUDONYM_RE.match(r["user"]) or (r["user"] == "" and r["request_id"] is None), (
            "user column is not a pseudonym: %r" % r)
        if r["metadata"]:
            m = json.loads(r["metadata"])
            # Stored compact with sorted keys (what the archive verifier re-creates).
            assert r["metadata"] == json.dumps(m, sort_keys=True, separators=(",", ":"),
                                               ensure_ascii=False), r
        assert TS_RE.match(r["ts"]), r

    # The chain continues across a restart (the head is not reset).
    before = raw_rows(b.audit_db)[-1]
    assert b.stop() == 0
    b.start(env=b.nss_env)
    ok(run_as(b, "alice", "check", "read", "key/anthropic"))
    nxt = raw_rows(b.audit_db, "seq > ?", (before["seq"],))
    assert nxt and nxt[0]["seq"] == before["seq"] + 1 and nxt[0]["prev_hash"] == before["hash"]
    doc = verified(b)
    assert doc["records"] >= len(rows) + 2
    assert py_verify(b.audit_db)[1] is None


def test_query_records_have_the_seed_shape(id_broker):
    b = id_broker()
    mixed_requests(b)
    recs = query(b)
    rows = raw_rows(b.audit_db)
    assert len(recs) >= len(rows) - 2, (len(recs), len(rows))
    by_seq = {r["seq"]: r for r in rows}
    users = set()
    for r in recs:
        check_rec(r)
        users.add(r["user"])
        if r["seq"] in by_seq:
            row = by_seq[r["seq"]]
            assert r["hash"] == row["hash"].hex() and r["prev_hash"] == row["prev_hash"].hex()
            assert r["action"] == row["action"] and r["result"] == row["result"], (r, row)
            assert r["timestamp"] == row["ts"], (r, row)
    # Names, not pseudonyms, for whoever is still known.
    assert {"root", "alice", "bob", "carol"} <= users, users
    assert not any(PSEUDONYM_RE.match(u) for u in users), users
    denied = [r for r in recs if r["user"] == "bob" and r["action"] == "check"
              and r["result"] == "denied"]
    assert len(denied) == 1 and denied[0]["resource"] == "key/anthropic", denied
    grant = [r for r in recs if r["action"] == "role.grant"]
    assert grant and grant[0]["resource"] == "user/bob", grant
    assert grant[0]["metadata"].get("role") == "auditors", grant


def tamper_case(b, k, column, bad_value_sql):
    """Set column of record k to a new value; verify must fail at k; then put it back."""
    orig = raw_rows(b.audit_db, "seq = ?", (k,))[0]
    sql(b.audit_db, "UPDATE audit_log SET %s = %s WHERE seq = %d" % (column, bad_value_sql, k))
    assert raw_rows(b.audit_db, "seq = ?", (k,))[0][column] != orig[column]
    cp, doc = verify_json(b)
    assert cp.returncode == 1, "verify passed with %s of seq %d changed: %s" % (column, k, doc)
    assert doc["ok"] is False and doc["bad"]["seq"] == k, (column, doc)
    assert isinstance(doc["bad"]["reason"], str) and doc["bad"]["reason"], doc
    # The human form names the record too, on one non-zero exit.
    cp = audit_cli(b, "verify")
    assert cp.returncode == 1, cp
    assert re.search(r"\b%d\b" % k, cp.stdout + cp.stderr), (cp.stdout, cp.stderr)
    assert py_verify(b.audit_db)[1][0] == k
    # Restored byte for byte, it verifies again.
    con = sqlite3.connect(b.audit_db, timeout=10)
    try:
        con.execute("UPDATE audit_log SET %s = ? WHERE seq = ?" % column, (orig[column], k))
        con.commit()
    finally:
        con.close()
    verified(b)


def test_tampered_result_metadata_user_named(id_broker):
    b = id_broker()
    mixed_requests(b)
    rows = raw_rows(b.audit_db)
    denied = [r for r in rows if r["result"] == "denied"]
    assert denied, rows
    k = denied[0]["seq"]
    tamper_case(b, k, "result", "'success'")
    # Metadata: an edit that keeps valid JSON (the reason reworded).
    with_meta = [r for r in rows if r["metadata"] and len(json.loads(r["metadata"])) > 0]
    k2 = with_meta[len(with_meta) // 2]["seq"]
    m = json.loads(with_meta[len(with_meta) // 2]["metadata"])
    m["tampered"] = True
    text = json.dumps(m, sort_keys=True, separators=(",", ":")).replace("'", "''")
    tamper_case(b, k2, "metadata", "'%s'" % text)
    # User: the record made to look like someone else's (another real pseudonym).
    alice_rows = named_rows(b.audit_db, "user = 'alice'")
    assert alice_rows, "no records of alice"
    k3 = alice_rows[-1]["seq"]
    alice_p = raw_rows(b.audit_db, "seq = ?", (k3,))[0]["user"]
    other = sorted({r["user"] for r in rows if PSEUDONYM_RE.match(r["user"])} - {alice_p})
    assert other, rows
    tamper_case(b, k3, "user", "'%s'" % other[0])
    # The pid and timestamp are covered too.
    tamper_case(b, k3, "ts_ms", "ts_ms + 1")
    tamper_case(b, k, "pid", "pid + 1")


def test_deleted_record_is_a_gap(id_broker):
    b = id_broker()
    mixed_requests(b)
    rows = raw_rows(b.audit_db)
    k = rows[len(rows) // 2]["seq"]
    sql(b.audit_db, "DELETE FROM audit_log WHERE seq = %d" % k)
    cp, doc = verify_json(b)
    assert cp.returncode == 1 and doc["ok"] is False, doc
    assert doc["bad"]["seq"] in (k, k + 1), (k, doc)
    reason = doc["bad"]["reason"].lower()
    assert any(w in reason for w in ("gap", "missing", "expected")), doc
    cp = audit_cli(b, "verify")
    assert cp.returncode == 1
    assert re.search(r"\b%d\b" % k, cp.stdout + cp.stderr), (k, cp.stdout, cp.stderr)
    # The broker keeps appending (and answering) meanwhile.
    ok(run_as(b, "alice", "check", "read", "key/anthropic"))
    assert b.running()


def test_rehashed_record_breaks_the_next_link(id_broker):
    b = id_broker()
    mixed_requests(b)
    rows = raw_rows(b.audit_db)
    target = [r for r in rows if r["result"] == "denied"][0]
    k = target["seq"]
    assert k < rows[-1]["seq"]
    forged = dict(target, result="success")
    h = record_hash(target["prev_hash"], forged)
    # Our hash of the original must be the broker's: the format is as specified.
    assert record_hash(target["prev_hash"], target) == target["hash"]
    sql(b.audit_db, "UPDATE audit_log SET result = 'success', hash = X'%s' WHERE seq = %d"
        % (h.hex(), k))
    cp, doc = verify_json(b)
    assert cp.returncode == 1 and doc["ok"] is False, doc
    assert doc["bad"]["seq"] == k + 1, "want the link after %d reported: %s" % (k, doc)
    assert "prev" in doc["bad"]["reason"].lower() or "link" in doc["bad"]["reason"].lower(), doc
    assert py_verify(b.audit_db)[1] == (k + 1, "prev_hash mismatch")

    # The broker keeps going, chained to what it wrote (its head), not to the forgery.
    ok(run_as(b, "alice", "check", "read", "key/anthropic"))
    assert b.running()


def test_record_appended_by_another_writer_is_judged(id_broker):
    """A row forged onto the end with the sqlite3 shell takes the broker's next seq:
    that turn is refused, the broker goes on after the forged row, and verify names it."""
    b = id_broker()
    with b.connect() as c:
        for _ in range(3):
            assert_ok(c.call("check", {"action": "read", "resource": "key/x"}))
    last = raw_rows(b.audit_db)[-1]
    forged = last["seq"] + 1
    sql(b.audit_db, "INSERT INTO audit_log SELECT %d, ts, ts_ms, user, pid, action, resource, "
        "'success', metadata, request_id, hash, hash FROM audit_log WHERE seq = %d"
        % (forged, last["seq"]))
    # The next record collides with the forged one: refused, not chained blindly.
    with Client(b.sock) as c:
        first = c.hello()
    assert first["ok"] is False and first["error"]["code"] == "audit_unavailable", first
    with b.connect() as c:                              # service goes on
        assert_ok(c.call("check", {"action": "read", "resource": "key/x"}))
    rows = raw_rows(b.audit_db)
    assert rows[-1]["seq"] > forged and [r["seq"] for r in rows] == sorted(
        {r["seq"] for r in rows}), rows[-3:]
    cp, doc = verify_json(b)
    assert cp.returncode == 1 and doc["bad"]["seq"] == forged, doc
