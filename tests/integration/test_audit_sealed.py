"""Sealed record details (SPEC6): with security.audit.encrypt on, metadata is
stored as {"sealed": BASE64}, a libsodium sealed box to the auditor's public
key from `keywarden admin audit keygen`; only `query --decrypt-key FILE`
with the matching secret key shows the details."""
import base64
import json
import os

from conftest import clean_env, file_mode, run_cli
from test_audit_chain import (check_rec, py_verify, query, raw_rows, records_of, setup_users,
                              verified)
from users import as_json, fails, id_broker, ok, run_as  # noqa: F401 (fixture)

ROLE = "zebracorn-ops"          # a name that appears nowhere else
RESOURCE = "key/zebracorn-vault"
SEALBYTES = 48                  # crypto_box_SEALBYTES


def keygen(path, *extra, cwd=None):
    return run_cli(["admin", "audit", "keygen"] + (["--output", path] if path else [])
                   + list(extra), env=clean_env(), cwd=cwd)


def public_key(cp):
    """The public key printed by keygen --json: a string, or the object's *public* member."""
    doc = as_json(cp)
    if isinstance(doc, dict):
        keys = [k for k in doc if "public" in k.lower()]
        assert keys, "keygen --json names no public key: %r" % doc
        doc = doc[keys[0]]
    assert isinstance(doc, str), doc
    assert len(base64.b64decode(doc, validate=True)) == 32, doc
    return doc


def secret_of(path):
    with open(path) as f:
        text = f.read()
    assert text.endswith("\n") and text.count("\n") == 1, "not one line: %r" % path
    assert len(base64.b64decode(text.strip(), validate=True)) in (32, 64), path
    return text


def test_keygen_writes_a_private_file_and_never_overwrites(tmpdir_short):
    f = os.path.join(tmpdir_short, "auditor.key")
    cp = keygen(f, "--json")
    pub = public_key(cp)
    assert file_mode(f) == 0o600, oct(file_mode(f))
    sk = secret_of(f)
    assert pub not in sk
    assert sk.strip() not in cp.stdout + cp.stderr, "keygen printed the secret key"
    # Refuses to overwrite, and leaves the file as it was.
    cp2 = keygen(f, "--json")
    assert cp2.returncode != 0, cp2.stdout
    assert f in cp2.stderr or "exist" in cp2.stderr, cp2.stderr
    assert secret_of(f) == sk
    # Two runs give two different key pairs; the default file is ./audit-secret.key.
    cp3 = keygen(None, cwd=tmpdir_short)
    ok(cp3)
    default = os.path.join(tmpdir_short, "audit-secret.key")
    assert file_mode(default) == 0o600
    assert secret_of(default) != sk
    assert pub not in cp3.stdout


def sealed_broker(id_broker, tmpdir):
    key = os.path.join(tmpdir, "auditor.key")
    pub = public_key(keygen(key, "--json"))
    b = id_broker({"security": {"audit": {"encrypt": True, "encryptionKey": pub}}})
    setup_users(b, alice=["reviewer"], bob=["reviewer"])
    ok(run_as(b, "root", "admin", "role", "create", ROLE, "--permission", "read:key/zebracorn-*"))
    ok(run_as(b, "root", "admin", "role", "grant", "alice", ROLE))
    ok(run_as(b, "alice", "check", "read", RESOURCE))
    fails(run_as(b, "bob", "check", "write", RESOURCE), 1, "denied")
    return b, key


def test_metadata_is_sealed_on_disk(id_broker, tmpdir_short):
    b, _ = sealed_broker(id_broker, tmpdir_short)
    rows = raw_rows(b.audit_db)
    assert len(rows) >= 6, rows
    for r in rows:
        m = json.loads(r["metadata"])
        assert set(m) == {"sealed"}, "record %d stored unsealed: %r" % (r["seq"], r["metadata"])
        box = base64.b64decode(m["sealed"], validate=True)
        assert len(box) >= SEALBYTES + 2, r
        # Nothing of the details in clear: the role name, the verbs, reasons.
        for word in (ROLE, "reason", "denied", "permissions", "verb", "zebracorn"):
            assert word not in r["metadata"], (word, r)
    # The resource column stays readable (it is not a detail), the chain holds.
    assert any(r["resource"] == RESOURCE for r in rows), rows
    assert py_verify(b.audit_db)[1] is None
    verified(b)
    # Two equal requests never store the same ciphertext.
    ok(run_as(b, "alice", "check", "read", RESOURCE))
    checks = [json.loads(r["metadata"])["sealed"] for r in raw_rows(b.audit_db)
              if r["action"] == "check" and r["result"] == "success"]
    assert len(checks) == 2 and checks[0] != checks[1], checks


def test_query_opens_sealed_details_only_with_the_key(id_broker, tmpdir_short):
    b, key = sealed_broker(id_broker, tmpdir_short)
    recs = query(b)
    assert recs
    for r in recs:
        check_rec(r)
        assert set(r["metadata"]) == {"sealed"}, r
    assert ROLE not in json.dumps([r["metadata"] for r in recs])

    opened = query(b, "--decrypt-key", key)
    assert len(opened) >= len(recs)
    by_action = {}
    for r in opened:
        check_rec(r)
        assert "sealed" not in r["metadata"], "not opened: %r" % r
        by_action.setdefault(r["action"], []).append(r)
    create = by_action["role.create"][0]
    assert create["metadata"].get("permissions") == ["read:key/zebracorn-*"], create
    grant = by_action["role.grant"][0]
    assert grant["metadata"].get("role") == ROLE, grant
    denied = [r for r in by_action["check"] if r["result"] == "denied"]
    assert len(denied) == 1, by_action["check"]
    assert denied[0]["metadata"].get("error") == "denied", denied
    assert denied[0]["metadata"].get("reason"), denied
    allowed = [r for r in by_action["check"] if r["result"] == "success"][0]
    # Names inside opened details are resolved like the user column.
    assert allowed["metadata"].get("user") == "alice", allowed
    # The human listing opens them too.
    cp = run_as(b, "root", "admin", "audit", "query", "--decrypt-key", key)
    assert ok(cp) and ROLE in cp.stdout, cp.stdout

    # A wrong key: a clear failure, no details, no garbage.
    other = os.path.join(tmpdir_short, "other.key")
    ok(keygen(other))
    cp = run_as(b, "root", "admin", "audit", "query", "--json", "--decrypt-key", other)
    assert cp.returncode != 0, cp.stdout[:500]
    assert "permissions" not in cp.stdout and "read:key/zebracorn" not in cp.stdout
    err = cp.stderr.lower()
    assert "key" in err and any(w in err for w in ("decrypt", "open", "does not match",
                                                   "wrong")), cp.stderr
    # A file that is no key at all.
    junk = os.path.join(tmpdir_short, "junk.key")
    with open(junk, "w") as f:
        f.write("not a key\n")
    os.chmod(junk, 0o600)
    cp = run_as(b, "root", "admin", "audit", "query", "--json", "--decrypt-key", junk)
    assert cp.returncode != 0 and "key" in cp.stderr.lower(), cp
    # A missing file.
    cp = run_as(b, "root", "admin", "audit", "query", "--decrypt-key",
                os.path.join(tmpdir_short, "nope.key"))
    assert cp.returncode != 0 and "nope.key" in cp.stderr, cp
    verified(b)


def test_sealed_records_export_sealed(id_broker, tmpdir_short):
    """An export without the key carries the sealed boxes, never plaintext."""
    b, key = sealed_broker(id_broker, tmpdir_short)
    out = os.path.join(tmpdir_short, "export.jsonl")
    ok(run_as(b, "root", "admin", "audit", "export", "--format", "jsonl", "--output", out))
    with open(out) as f:
        text = f.read()
    lines = [json.loads(l) for l in text.splitlines() if l.strip()]
    assert ROLE not in json.dumps([r["metadata"] for r in lines])
    assert lines and all(set(r["metadata"]) == {"sealed"} for r in lines), lines[:3]
    assert records_of(lines)
