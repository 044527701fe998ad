"""The audit trail's hash chain (SPEC6): `keywarden admin audit verify` finds
every change made to audit.db behind the broker's back, and an independent
implementation of the record hash in this file agrees with the broker.

The tampering is done the way an intruder with the file would do it: with the
sqlite3 command-line tool, while the broker runs.

Helpers here (record_hash, py_verify, audit_cli, ...) are shared by the other
test_audit_*.py files and test_gdpr.py.
"""
import base64
import hashlib
import json
import os
import re
import sqlite3
import struct
import subprocess

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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


# --------------------------------------------------------------------------
# Signatures (audit_chain.h): Ed25519 over domain-separated messages
# --------------------------------------------------------------------------

HEAD_DOMAIN = b"keywarden-audit-head-v1\0"
ANCHOR_DOMAIN = b"keywarden-audit-anchor-v1\0"
MANIFEST_DOMAIN = b"keywarden-audit-manifest-v1\0"


def head_message(seq, h):
    """What the broker signs at each commit: the head's seq and hash."""
    return HEAD_DOMAIN + field(seq) + bytes(h)


def anchor_message(first_seq, prev):
    """What an anchor's signature covers: where the chain goes on, after which hash."""
    return ANCHOR_DOMAIN + field(first_seq) + bytes(prev)


def manifest_message(m):
    """What an archive manifest's signature covers."""
    return (MANIFEST_DOMAIN + field(m["first_seq"]) + field(m["last_seq"]) + field(m["count"])
            + bytes.fromhex(m["prev_hash"]) + bytes.fromhex(m["last_hash"])
            + bytes.fromhex(m["sha256"]))


def broker_pubkey(b):
    """The public key the broker published in its data directory (raw 32 bytes)."""
    with open(os.path.join(b.datadir, "audit.pub")) as f:
        pk = base64.b64decode(f.read().strip(), validate=True)
    assert len(pk) == 32, pk
    return pk


def sig_ok(pk, msg, sig):
    try:
        Ed25519PublicKey.from_public_bytes(bytes(pk)).verify(bytes(sig), msg)
        return True
    except InvalidSignature:
        return False


def head_sigs(db):
    """{seq: signature} of the signed heads ({} for a store without the table)."""
    try:
        return {r[0]: bytes(r[1]) for r in db_rows(db, "SELECT seq, sig FROM audit_head_sig")}
    except sqlite3.OperationalError:
        return {}


def rehash(db, from_seq, edit):
    """An intruder's rewrite: edit(row) the record from_seq, then recompute that
    record's hash and every later link and hash, so the unkeyed chain holds."""
    con = sqlite3.connect(db, timeout=10)
    try:
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute("SELECT * FROM audit_log WHERE seq >= ? "
                                             "ORDER BY seq", (from_seq,))]
        prev = bytes(rows[0]["prev_hash"])
        for r in rows:
            if r["seq"] == from_seq:
                edit(r)
            r["prev_hash"] = prev
            r["hash"] = record_hash(prev, r)
            con.execute("UPDATE audit_log SET ts = ?, ts_ms = ?, user = ?, pid = ?, action = ?, "
                        "resource = ?, result = ?, metadata = ?, request_id = ?, prev_hash = ?, "
                        "hash = ? WHERE seq = ?",
                        (r["ts"], r["ts_ms"], r["user"], r["pid"], r["action"], r["resource"],
                         r["result"], r["metadata"], r["request_id"], r["prev_hash"], r["hash"],
                         r["seq"]))
            prev = r["hash"]
        con.commit()
    finally:
        con.close()


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
    if k in head_sigs(b.audit_db):
        # A commit ended at k: its signature names the record itself.
        assert doc["bad"]["seq"] == k and "head signature" in doc["bad"]["reason"], doc
    else:
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


# --------------------------------------------------------------------------
# Signed heads and anchors: the chain alone is unkeyed, so whoever can write
# audit.db could recompute it; the broker's Ed25519 signatures stop that.
# --------------------------------------------------------------------------

def bad_of(doc):
    assert doc["ok"] is False and isinstance(doc["bad"], dict), doc
    return doc["bad"]["seq"], doc["bad"]["reason"]


def test_signed_head_verifies_and_pubkey_matches_audit_pub(id_broker):
    b = id_broker()
    mixed_requests(b)
    doc = verified(b)
    pk = broker_pubkey(b)
    pk_b64 = base64.b64encode(pk).decode()
    assert doc["signed"] is True and doc["public_key"] == pk_b64, doc
    assert doc["unsigned_through"] is None, doc
    # The head verify reported is signed by that key, in the documented format (Python).
    sigs = head_sigs(b.audit_db)
    rows = {r["seq"]: r for r in raw_rows(b.audit_db)}
    assert doc["last_seq"] in sigs, (doc, sorted(sigs)[-5:])
    assert sig_ok(pk, head_message(doc["last_seq"], rows[doc["last_seq"]]["hash"]),
                  sigs[doc["last_seq"]])
    # One signature per commit: every one of them holds, and none is of a foreign message.
    for seq, sig in sigs.items():
        assert sig_ok(pk, head_message(seq, rows[seq]["hash"]), sig), seq
        assert not sig_ok(pk, anchor_message(seq + 1, rows[seq]["hash"]), sig), seq
    assert oct(os.stat(os.path.join(b.datadir, "audit.pub")).st_mode & 0o777) == "0o644"

    # admin audit pubkey prints the same key, as a line and as JSON; it is an admin request.
    assert ok(audit_cli(b, "pubkey")).strip() == pk_b64
    j = as_json(audit_cli(b, "pubkey", "--json"))
    assert j["public_key"] == pk_b64 and j["algorithm"] == "ed25519", j
    assert j["file"] == os.path.join(b.datadir, "audit.pub"), j
    fails(audit_cli(b, "pubkey", user="alice"), 1, "denied")
    # The human verify says the head is signed.
    out = ok(audit_cli(b, "verify"))
    assert "intact" in out and "signed" in out, out
    # Pinned to the published key, verify passes; pinned to another, it refuses the broker.
    ok(audit_cli(b, "verify", "--pubkey", os.path.join(b.datadir, "audit.pub")))
    cp = audit_cli(b, "verify", "--pubkey", base64.b64encode(b"\x01" * 32).decode())
    assert cp.returncode == 1 and "not with the key given" in cp.stderr, (cp.stdout, cp.stderr)
    # Across a restart the key is the same (derived from the master secret, not random).
    assert b.stop() == 0
    b.start(env=b.nss_env)
    assert broker_pubkey(b) == pk
    assert verified(b)["public_key"] == pk_b64


def test_cut_prefix_with_a_planted_anchor_names_the_anchor(id_broker):
    """Attack 1: delete the first records and plant an anchor that follows them."""
    b = id_broker()
    mixed_requests(b)
    verified(b)
    rows = raw_rows(b.audit_db)
    sigs = head_sigs(b.audit_db)
    # Cut where a commit ended, so the broker's own head signature for the cut exists.
    cut = min([s for s in sigs if 3 <= s < rows[-1]["seq"] - 3] or [len(rows) // 2])
    nxt = [r for r in rows if r["seq"] == cut + 1][0]
    sql(b.audit_db, "DELETE FROM audit_log WHERE seq <= %d; INSERT INTO audit_anchor "
        "(first_seq, prev_hash, made_ts, note) VALUES (%d, X'%s', '2026-01-01T00:00:00.000Z', "
        "'pruned without archive')" % (cut, cut + 1, nxt["prev_hash"].hex()))
    assert py_verify(b.audit_db)[1] is None, "the unkeyed chain is fooled by the anchor"
    cp, doc = verify_json(b)
    assert cp.returncode == 1, "verify trusted a planted anchor: %s" % doc
    seq, reason = bad_of(doc)
    assert seq == cut + 1 and "anchor" in reason and "signature" in reason, doc
    cp = audit_cli(b, "verify")
    assert cp.returncode == 1 and "anchor %d" % (cut + 1) in cp.stdout, cp.stdout

    # The broker's head signature for seq `cut` says the same hash, but it signs a head,
    # not a cut: replayed as the anchor's signature it is refused too.
    sql(b.audit_db, "UPDATE audit_anchor SET sig = X'%s' WHERE first_seq = %d"
        % (sigs[cut].hex(), cut + 1))
    cp, doc = verify_json(b)
    seq, reason = bad_of(doc)
    assert cp.returncode == 1 and seq == cut + 1 and "anchor" in reason, doc
    assert b.running()


def test_recomputed_chain_names_the_head_signature(id_broker):
    """Attack 2: a record edited and the whole chain after it recomputed."""
    b = id_broker()
    mixed_requests(b)
    verified(b)
    rows = raw_rows(b.audit_db)
    k = [r for r in rows if r["result"] == "denied"][0]["seq"]

    def to_success(r):
        r["result"] = "success"

    # While the broker runs.
    rehash(b.audit_db, k, to_success)
    assert py_verify(b.audit_db)[1] is None, "the unkeyed chain holds after the rewrite"
    cp, doc = verify_json(b)
    assert cp.returncode == 1, "verify passed a recomputed chain: %s" % doc
    seq, reason = bad_of(doc)
    assert "head signature" in reason, doc
    first_signed = min(s for s in head_sigs(b.audit_db) if s >= k)
    assert seq == first_signed, (k, first_signed, doc)
    cp = audit_cli(b, "verify")
    assert cp.returncode == 1 and "head signature" in cp.stdout, cp.stdout


def test_recomputed_chain_while_stopped_names_the_head_signature(id_broker):
    """Attack 2 with the broker down: the rewrite, then the signatures after it removed."""
    b = id_broker()
    mixed_requests(b)
    verified(b)
    k = [r for r in raw_rows(b.audit_db) if r["result"] == "denied"][0]["seq"]
    assert b.stop() == 0

    def to_success(r):
        r["result"] = "success"

    rehash(b.audit_db, k, to_success)
    b.start(env=b.nss_env)
    cp, doc = verify_json(b)
    assert cp.returncode == 1, "verify passed a chain recomputed while the broker was down"
    seq, reason = bad_of(doc)
    assert "head signature" in reason and seq == min(s for s in head_sigs(b.audit_db)
                                                     if s >= k), doc
    # Removing the signatures that no longer fit does not help: the head has none.
    assert b.stop() == 0
    sql(b.audit_db, "DELETE FROM audit_head_sig WHERE seq >= %d" % k)
    b.start(env=b.nss_env)
    cp, doc = verify_json(b)
    assert cp.returncode == 1, doc
    seq, reason = bad_of(doc)
    assert "head signature" in reason, doc
    marks = [r for r in raw_rows(b.audit_db) if r["action"] == "audit.unsigned_head"]
    assert marks and seq == marks[0]["seq"], (marks, doc)


def strip_signatures(b):
    """Make b's stopped store what keywarden 0.1.0 left: schema 2, nothing signed."""
    con = sqlite3.connect(b.audit_db, timeout=10)
    try:
        con.execute("DROP TABLE IF EXISTS audit_head_sig")
        if "sig" in [c[1] for c in con.execute("PRAGMA table_info(audit_anchor)")]:
            con.execute("ALTER TABLE audit_anchor DROP COLUMN sig")
        con.execute("PRAGMA user_version = 2")
        con.commit()
    finally:
        con.close()
    sql(b.state_db, "DELETE FROM meta WHERE key = 'audit_signed'")


def test_unsigned_store_is_signed_from_the_next_start(id_broker):
    """Migration: an audit.db from before signing gets its head signed at the next
    start, with a record saying so; verify calls what came before unsigned history."""
    b = id_broker()
    mixed_requests(b)
    assert b.stop() == 0
    strip_signatures(b)
    head = raw_rows(b.audit_db)[-1]["seq"]
    b.start(env=b.nss_env)
    doc = verified(b)
    assert doc["signed"] is True and doc["unsigned_through"] == head, doc
    signing = [r for r in raw_rows(b.audit_db) if r["action"] == "audit.signing"]
    assert len(signing) == 1 and signing[0]["seq"] == head + 1, signing
    m = json.loads(signing[0]["metadata"])
    assert m["unsigned_through"] == head, m
    assert m["public_key"] == base64.b64encode(broker_pubkey(b)).decode(), m
    out = ok(audit_cli(b, "verify"))
    assert "unsigned history" in out and str(head) in out, out
    # Only once: a store that was signed and lost its signatures is not "migrated" again.
    assert b.stop() == 0
    sql(b.audit_db, "DELETE FROM audit_head_sig")
    b.start(env=b.nss_env)
    cp, doc = verify_json(b)
    assert cp.returncode == 1, "a store stripped of its signatures passed: %s" % doc
    assert "head signature" in bad_of(doc)[1], doc
    assert len([r for r in raw_rows(b.audit_db) if r["action"] == "audit.signing"]) == 1


def test_record_appended_with_a_valid_hash_is_named(id_broker):
    """A row chained correctly onto the end by another writer: the broker goes on
    after it (its seq was taken), but records that the head was not its own."""
    b = id_broker()
    with b.connect() as c:
        for _ in range(3):
            assert_ok(c.call("check", {"action": "read", "resource": "key/x"}))
    last = raw_rows(b.audit_db)[-1]
    forged = dict(last, seq=last["seq"] + 1, result="success", action="key.get",
                  prev_hash=last["hash"])
    forged["hash"] = record_hash(last["hash"], forged)
    con = sqlite3.connect(b.audit_db, timeout=10)
    try:
        con.execute("INSERT INTO audit_log (seq, ts, ts_ms, user, pid, action, resource, result, "
                    "metadata, request_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?, ?)", tuple(forged[k] for k in (
                        "seq", "ts", "ts_ms", "user", "pid", "action", "resource", "result",
                        "metadata", "request_id", "prev_hash", "hash")))
        con.commit()
    finally:
        con.close()
    assert py_verify(b.audit_db)[1] is None, "the unkeyed chain takes the row"
    with Client(b.sock) as c:                           # that turn collides: refused
        c.hello()
    with b.connect() as c:
        assert_ok(c.call("check", {"action": "read", "resource": "key/x"}))
    cp, doc = verify_json(b)
    assert cp.returncode == 1, "verify passed a row the broker did not write: %s" % doc
    seq, reason = bad_of(doc)
    assert "head signature" in reason and str(forged["seq"]) in reason, doc
    marks = [r for r in raw_rows(b.audit_db) if r["action"] == "audit.unsigned_head"]
    assert marks and seq == marks[0]["seq"] == forged["seq"] + 1, (marks, doc)
