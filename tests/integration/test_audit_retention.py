"""Retention (SPEC6): records older than security.audit.retention days leave
the store, archived first with autoArchive, and the chain that stays is
anchored where the cut was made.  The broker's clock is moved with
libfaketime (id_broker(clocked=True), users.Clock); nothing in the product
is test-only.

The broker prunes at start and then daily (a wall-clock schedule).  To have
`keywarden admin audit prune` do the work, the broker is restarted just
before the records become due, so its daily run is still a day away.
"""
import base64
import gzip
import hashlib
import json
import os
import re
import time

from conftest import Client, assert_ok, db_rows, file_mode, wait_for
from test_audit_chain import (ZERO, anchor_message, audit_cli, broker_pubkey, manifest_message, py_verify,
                              raw_rows, record_hash, setup_users, sig_ok, verified, verify_json)
from users import fails, id_broker, ok, run_as  # noqa: F401

DAY = 86400
CFG = {"security": {"audit": {"retention": 1, "autoArchive": True}}}
ARCHIVE_RE = re.compile(r"^audit-(\d+)-(\d+)\.jsonl\.gz$")


def restart_at(b, offset):
    """Restart b with its clock at offset; returns once its loop has turned
    (the start-up retention run happens in the first turn, not before the
    socket accepts)."""
    assert b.stop() == 0
    b.clock.set(offset)
    b.start(env=b.nss_env)
    with Client(b.sock) as c:
        assert_ok(c.hello())
        assert_ok(c.call("status"))


def archives(b):
    d = os.path.join(b.datadir, "archive")
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d) if ARCHIVE_RE.match(f))


def read_archive(path):
    """(header, records, manifest) of an archive: its first line, the records, its last line."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [json.loads(l) for l in f.read().splitlines()]
    return lines[0], lines[1:-1], lines[-1]


def stored(rec):
    """An archived record as the columns it was hashed from."""
    return {"seq": rec["seq"], "ts": rec["timestamp"], "ts_ms": rec["ts_ms"], "user": rec["user"],
            "pid": rec["pid"], "action": rec["action"], "resource": rec["resource"],
            "result": rec["result"],
            "metadata": json.dumps(rec["metadata"], sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False),
            "request_id": rec["request_id"]}


def check_manifest(path, pk):
    """The manifest (the last line) describes the file and its signature holds under pk
    (Python, from audit_chain.h); the manifest."""
    with gzip.open(path, "rb") as f:
        lines = f.read().split(b"\n")
    assert lines[-1] == b"", "the archive does not end with a newline"
    body = b"".join(l + b"\n" for l in lines[:-2])
    m = json.loads(lines[-2])
    head, recs, _ = read_archive(path)
    assert m["keywarden_manifest"] == 1, m
    assert (m["first_seq"], m["last_seq"], m["count"]) == (head["first_seq"], head["last_seq"],
                                                          len(recs)), m
    assert m["prev_hash"] == head["prev_hash"] and m["last_hash"] == recs[-1]["hash"], m
    assert m["sha256"] == hashlib.sha256(body).hexdigest(), "sha256 is not of the lines before it"
    assert m["public_key"] == base64.b64encode(pk).decode(), m
    assert sig_ok(pk, manifest_message(m), base64.b64decode(m["signature"])), m
    return m


def check_archive(path):
    """The archive's own chain holds (Python, from SPEC6); (header, records)."""
    head, recs, _ = read_archive(path)
    first, last = map(int, ARCHIVE_RE.match(os.path.basename(path)).groups())
    assert head["keywarden_archive"] == 2, head
    assert (head["first_seq"], head["last_seq"]) == (first, last), head
    assert [r["seq"] for r in recs] == list(range(first, last + 1)), [r["seq"] for r in recs]
    prev = bytes.fromhex(head["prev_hash"])
    for r in recs:
        assert r["prev_hash"] == prev.hex(), r
        h = record_hash(prev, stored(r))
        assert r["hash"] == h.hex(), "archived record %d does not hash as specified" % r["seq"]
        assert r["user"] == "" or r["user"].startswith("~"), "a name in the archive: %r" % r
        prev = h
    return head, recs


def cli_prune(b):
    cp = audit_cli(b, "prune", "--json")
    ok(cp)
    return json.loads(cp.stdout) if cp.stdout.strip() else None


def test_cli_prune_archives_and_anchors(id_broker, tmpdir_short):
    b = id_broker(CFG, clocked=True)
    setup_users(b, alice=["developer"])
    for i in range(5):
        ok(run_as(b, "alice", "check", "read", "key/old-%d" % i))
    old = raw_rows(b.audit_db)
    assert len(old) >= 6
    # Restarted 1 min short of the records' first birthday: its start-up run
    # finds nothing due, the next daily one is a day away.
    restart_at(b, DAY - 60)
    assert [r["seq"] for r in raw_rows(b.audit_db)][:len(old)] == [r["seq"] for r in old]
    b.clock.set(DAY + 120)
    ok(run_as(b, "alice", "check", "read", "key/new"))
    new = [r for r in raw_rows(b.audit_db) if r["resource"] == "key/new"]
    assert len(new) == 1
    assert len(raw_rows(b.audit_db)) > len(old), "records went before anyone asked"

    doc = cli_prune(b)
    if isinstance(doc, dict) and "pruned" in doc:
        assert doc["pruned"] == len(old), doc
    rows = raw_rows(b.audit_db)
    seqs = [r["seq"] for r in rows]
    assert not set(seqs) & {r["seq"] for r in old}, "old records still there"
    assert new[0]["seq"] in seqs, "a record within retention was pruned"
    cutoff = (time.time() + b.clock.offset - DAY) * 1000
    assert all(r["ts_ms"] >= cutoff - 5000 for r in rows), "due records left"

    # The archive: where SPEC6 says, private, holding exactly the pruned records.
    arcs = archives(b)
    assert len(arcs) == 1, arcs
    arc = arcs[0]
    assert file_mode(arc) == 0o600 and file_mode(os.path.dirname(arc)) == 0o700
    head, recs = check_archive(arc)
    assert [r["seq"] for r in recs] == [r["seq"] for r in old]
    assert [r["hash"] for r in recs] == [r["hash"].hex() for r in old]
    assert head["prev_hash"] == ZERO.hex()
    pk = broker_pubkey(b)
    check_manifest(arc, pk)
    # Checked offline against the published key, given as a file or as the key itself.
    pub = os.path.join(b.datadir, "audit.pub")
    cp = audit_cli(b, "verify", "--archive", arc, "--pubkey", pub)
    assert cp.returncode == 0, (cp.stdout, cp.stderr)
    assert "intact" in cp.stdout and "signed" in cp.stdout, cp.stdout
    cp = audit_cli(b, "verify", "--archive", arc, "--pubkey", base64.b64encode(pk).decode(),
                   "--json")
    assert cp.returncode == 0, (cp.stdout, cp.stderr)
    j = json.loads(cp.stdout)
    assert j["ok"] is True and j["signed"] is True and j["records"] == len(old), j
    # Without --pubkey: the audit.pub of the configuration's data directory.
    cp = run_as(b, "root", "--config", b.config_path, "admin", "audit", "verify", "--archive", arc)
    assert cp.returncode == 0 and pub in cp.stdout, (cp.stdout, cp.stderr)

    # The live chain starts at the anchor, which follows the archive's last hash.
    doc = verified(b)
    assert doc["anchor_seq"] == old[-1]["seq"] + 1 == doc["first_seq"] == rows[0]["seq"], doc
    assert rows[0]["prev_hash"] == old[-1]["hash"]
    assert py_verify(b.audit_db)[1] is None
    # The anchor is signed by the broker (Python checks it against audit.pub).
    first, prev, sig = db_rows(b.audit_db, "SELECT first_seq, prev_hash, sig FROM audit_anchor "
                               "ORDER BY first_seq DESC LIMIT 1")[0]
    assert first == doc["anchor_seq"] and sig_ok(pk, anchor_message(first, prev), sig)
    # The prune is itself a record, saying what went where.
    prunes = [r for r in raw_rows(b.audit_db) if r["action"] == "audit.prune"
              and r["resource"] == "audit" and r["result"] == "success"]
    m = [json.loads(r["metadata"]) for r in prunes]
    m = [x for x in m if x.get("count")]
    assert len(m) == 1, prunes
    assert m[0]["count"] == len(old) and m[0]["through_seq"] == old[-1]["seq"], m
    assert m[0]["archive"] == arc, m
    # Nothing more to prune: a second run does nothing.
    doc = cli_prune(b)
    if isinstance(doc, dict) and "pruned" in doc:
        assert doc["pruned"] == 0, doc
    assert archives(b) == arcs
    # And across a restart the anchored chain still verifies.
    restart_at(b, DAY + 180)
    verified(b)


def tampered_copy(src, dst, edit):
    with gzip.open(src, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    lines = edit(lines)
    with gzip.open(dst, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(dst, 0o600)
    return dst


def test_tampered_archive_fails_verify(id_broker, tmpdir_short):
    b = id_broker(CFG, clocked=True)
    setup_users(b, alice=["developer"])
    fails(run_as(b, "alice", "admin", "user", "add", "mallory"), 1, "denied")
    for i in range(4):
        ok(run_as(b, "alice", "check", "read", "key/old-%d" % i))
    restart_at(b, DAY - 60)
    b.clock.set(DAY + 120)
    cli_prune(b)
    arcs = archives(b)
    assert len(arcs) == 1, arcs
    arc = arcs[0]
    pub = os.path.join(b.datadir, "audit.pub")
    ok(audit_cli(b, "verify", "--archive", arc, "--pubkey", pub))

    def flip_result(lines):
        i = next(i for i, l in enumerate(lines) if '"result":"denied"' in l)
        lines[i] = lines[i].replace('"result":"denied"', '"result":"success"')
        return lines

    def one_byte(lines):
        l = lines[2]
        j = l.index('"timestamp":"') + len('"timestamp":"') + 3     # a year digit
        lines[2] = l[:j] + ("1" if l[j] != "1" else "2") + l[j + 1:]
        return lines

    def drop_line(lines):
        return lines[:2] + lines[3:]

    def meta_change(lines):
        rec = json.loads(lines[1])
        rec["metadata"]["note"] = "x"
        lines[1] = json.dumps(rec, separators=(",", ":"))
        return lines

    for name, edit in (("result", flip_result), ("byte", one_byte), ("gap", drop_line),
                       ("metadata", meta_change)):
        bad = tampered_copy(arc, os.path.join(tmpdir_short, "t-%s.jsonl.gz" % name), edit)
        cp = audit_cli(b, "verify", "--archive", bad, "--pubkey", pub)
        assert cp.returncode == 1, "tampered archive (%s) passed: %s %s" % (
            name, cp.stdout, cp.stderr)
        assert cp.stderr.strip() or cp.stdout.strip(), "no word on what failed"
    # An untouched copy passes: the failures above are about the edits.
    same = tampered_copy(arc, os.path.join(tmpdir_short, "same.jsonl.gz"), lambda l: l)
    ok(audit_cli(b, "verify", "--archive", same, "--pubkey", pub))
    # A file that is not gzip at all.
    junk = os.path.join(tmpdir_short, "junk.jsonl.gz")
    with open(junk, "wb") as f:
        f.write(b"not gzip\n")
    cp = audit_cli(b, "verify", "--archive", junk, "--pubkey", pub)
    assert cp.returncode != 0, cp


def forge(lines, edit):
    """Archive lines with edit(record) applied to the first record it returns True for,
    every later hash recomputed and the manifest rewritten to match, without the key."""
    head = json.loads(lines[0])
    recs = [json.loads(l) for l in lines[1:-1]]
    m = json.loads(lines[-1])
    assert "keywarden_manifest" in m, m
    done = False
    prev = bytes.fromhex(head["prev_hash"])
    for r in recs:
        done = done or edit(r)
        r["prev_hash"] = prev.hex()
        r["hash"] = record_hash(prev, stored(r)).hex()
        prev = bytes.fromhex(r["hash"])
    assert done, "nothing to forge"
    out = [lines[0]] + [json.dumps(r, separators=(",", ":")) for r in recs]
    m["last_hash"] = recs[-1]["hash"]
    m["count"] = len(recs)
    m["sha256"] = hashlib.sha256("".join(l + "\n" for l in out).encode()).hexdigest()
    return out, m


def test_forged_archive_names_the_manifest_signature(id_broker, tmpdir_short):
    """Attack 3: records edited and re-chained, the manifest rewritten to match them."""
    b = id_broker(CFG, clocked=True)
    setup_users(b, alice=["developer"])
    fails(run_as(b, "alice", "admin", "user", "add", "mallory"), 1, "denied")
    for i in range(3):
        ok(run_as(b, "alice", "check", "read", "key/old-%d" % i))
    restart_at(b, DAY - 60)
    b.clock.set(DAY + 120)
    cli_prune(b)
    arcs = archives(b)
    assert len(arcs) == 1, arcs
    pub = os.path.join(b.datadir, "audit.pub")
    ok(audit_cli(b, "verify", "--archive", arcs[0], "--pubkey", pub))

    def deny_to_success(r):
        if r["result"] != "denied":
            return False
        r["result"] = "success"
        return True

    # (a) the broker's signature kept: it does not cover the new contents.
    def keep_signature(lines):
        out, m = forge(lines, deny_to_success)
        return out + [json.dumps(m, separators=(",", ":"))]

    # (b) signed afresh with a key of the forger's own, named in the manifest.
    def own_key(lines):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        out, m = forge(lines, deny_to_success)
        k = Ed25519PrivateKey.generate()
        m["public_key"] = base64.b64encode(k.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw)).decode()
        m["signature"] = base64.b64encode(k.sign(manifest_message(m))).decode()
        return out + [json.dumps(m, separators=(",", ":"))]

    for name, edit in (("kept", keep_signature), ("own-key", own_key)):
        # Named as the broker names archives: only the contents are forged.
        os.mkdir(os.path.join(tmpdir_short, name))
        bad = tampered_copy(arcs[0], os.path.join(tmpdir_short, name,
                                                  os.path.basename(arcs[0])), edit)
        assert check_archive(bad), "the forgery's chain holds"
        cp = audit_cli(b, "verify", "--archive", bad, "--pubkey", pub)
        assert cp.returncode == 1, "forged archive (%s) passed: %s %s" % (name, cp.stdout,
                                                                          cp.stderr)
        assert "manifest signature" in cp.stdout, (name, cp.stdout, cp.stderr)
        cp = audit_cli(b, "verify", "--archive", bad, "--pubkey", pub, "--json")
        j = json.loads(cp.stdout)
        assert cp.returncode == 1 and j["ok"] is False and j["signed"] is False, j
        assert "manifest signature" in j["bad"]["reason"], j

    # An archive without a manifest (format 1, or the manifest cut off) is refused.
    def unsigned(lines):
        head = json.loads(lines[0])
        head["keywarden_archive"] = 1
        return [json.dumps(head, separators=(",", ":"))] + lines[1:-1]

    def manifest_cut(lines):
        return lines[:-1]

    for name, edit in (("format1", unsigned), ("cut", manifest_cut)):
        bad = tampered_copy(arcs[0], os.path.join(tmpdir_short, "%s.jsonl.gz" % name), edit)
        cp = audit_cli(b, "verify", "--archive", bad, "--pubkey", pub)
        assert cp.returncode == 1 and "manifest" in cp.stdout, (name, cp.stdout, cp.stderr)

    # The honest archive against another key: refused, naming the signature.
    other = base64.b64encode(b"\x01" * 32).decode()
    cp = audit_cli(b, "verify", "--archive", arcs[0], "--pubkey", other)
    assert cp.returncode == 1 and "manifest signature" in cp.stdout, cp.stdout
    # A --pubkey that is neither a key nor a readable key file is a usage error.
    cp = audit_cli(b, "verify", "--archive", arcs[0], "--pubkey",
                   os.path.join(tmpdir_short, "nosuch.pub"))
    assert cp.returncode == 2, cp


def test_daily_prune_without_cli(id_broker):
    b = id_broker(CFG, clocked=True)
    setup_users(b, alice=["developer"])
    for i in range(3):
        ok(run_as(b, "alice", "check", "read", "key/old-%d" % i))
    old = raw_rows(b.audit_db)
    b.clock.set(2 * DAY)
    with Client(b.sock) as c:
        assert_ok(c.hello())

        def gone():
            # A turn of the broker's loop (it also wakes once a minute by itself).
            assert_ok(c.call("status"))
            seqs = {r["seq"] for r in raw_rows(b.audit_db)}
            return not seqs & {r["seq"] for r in old}
        wait_for(gone, 90, interval=0.5, what="the daily prune")
    arcs = archives(b)
    assert len(arcs) == 1, arcs
    _, recs = check_archive(arcs[0])
    check_manifest(arcs[0], broker_pubkey(b))
    assert [r["seq"] for r in recs] == [r["seq"] for r in old]
    prunes = [r for r in raw_rows(b.audit_db) if r["action"] == "audit.prune"]
    # The broker's own record: its pid, no request.
    assert prunes and prunes[0]["pid"] == b.pid and prunes[0]["request_id"] is None, prunes
    assert json.loads(prunes[0]["metadata"])["count"] == len(old)
    verified(b)
    # Records made now stay through the next daily run's reach.
    ok(run_as(b, "alice", "check", "read", "key/fresh"))
    b.clock.set(2 * DAY + DAY // 2)
    with Client(b.sock) as c:
        assert_ok(c.hello())
    assert [r for r in raw_rows(b.audit_db) if r["resource"] == "key/fresh"]


def test_prune_without_archive(id_broker):
    b = id_broker({"security": {"audit": {"retention": 1, "autoArchive": False}}},
                  clocked=True)
    setup_users(b, alice=["developer"])
    ok(run_as(b, "alice", "check", "read", "key/old"))
    old = raw_rows(b.audit_db)
    restart_at(b, DAY - 60)
    b.clock.set(DAY + 120)
    cli_prune(b)
    assert not archives(b)
    rows = raw_rows(b.audit_db)
    assert not {r["seq"] for r in rows} & {r["seq"] for r in old}
    doc = verified(b)
    assert doc["anchor_seq"] == old[-1]["seq"] + 1, doc
    cp, doc = verify_json(b)
    assert cp.returncode == 0 and doc["ok"] is True
