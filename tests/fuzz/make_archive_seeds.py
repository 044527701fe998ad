#!/usr/bin/python3
"""Write the fuzz_archive seed corpus (corpus/archive/) from the formats in
common/audit_chain.h, independently of the C code: a valid signed archive
and damaged ones.  The signing key is the fixed test seed bytes 0..31, whose
public key fuzz_archive.c passes to the checker, so the valid seed reaches
the manifest's signature check.  Deterministic: rerun after a format change.

    tests/fuzz/make_archive_seeds.py [DIR]
"""
import base64
import gzip
import hashlib
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ZERO = "0" * 64
HASHED = ("seq", "timestamp", "ts_ms", "user", "pid", "action", "resource", "result",
          "metadata", "request_id")


def field(x):
    if x is None:
        return b"\xff\xff\xff\xff"
    x = (str(x) if isinstance(x, int) else x).encode()
    return struct.pack(">I", len(x)) + x


def record_hash(prev_hex, r):
    h = hashlib.sha256(b"keywarden-audit-v1\0" + bytes.fromhex(prev_hex))
    for k in HASHED:
        v = r[k]
        if k == "metadata":
            v = json.dumps(v, sort_keys=True, separators=(",", ":"))
        h.update(field(v))
    return h.hexdigest()


def pub(key):
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def chain(records, prev=ZERO):
    for r in records:
        r["prev_hash"] = prev
        r["hash"] = prev = record_hash(prev, r)
    return records


def manifest(body_lines, head, records, key):
    m = {"keywarden_manifest": 1, "first_seq": head["first_seq"], "last_seq": head["last_seq"],
         "count": len(records), "prev_hash": head["prev_hash"], "last_hash": records[-1]["hash"],
         "sha256": hashlib.sha256("".join(l + "\n" for l in body_lines).encode()).hexdigest()}
    msg = (b"keywarden-audit-manifest-v1\0" + field(m["first_seq"]) + field(m["last_seq"])
           + field(m["count"]) + bytes.fromhex(m["prev_hash"]) + bytes.fromhex(m["last_hash"])
           + bytes.fromhex(m["sha256"]))
    m["public_key"] = base64.b64encode(pub(key)).decode()
    m["signature"] = base64.b64encode(key.sign(msg)).decode()
    return m


def records():
    return [
        {"seq": 1, "timestamp": "2026-01-01T00:00:00.000Z", "ts_ms": 1767225600001,
         "user": "~0123456789abcdef0123", "pid": 10, "action": "key.get", "resource": "key/a",
         "result": "denied", "metadata": {"version": 1}, "request_id": None},
        {"seq": 2, "timestamp": "2026-01-02T00:00:00.000Z", "ts_ms": 1767225600002,
         "user": "~0123456789abcdef0123", "pid": 10, "action": "key.get", "resource": None,
         "result": "success", "metadata": {"version": 2}, "request_id": 2},
        {"seq": 3, "timestamp": "2026-01-03T00:00:00.000Z", "ts_ms": 1767225600003,
         "user": "", "pid": 11, "action": "audit.prune", "resource": "audit",
         "result": "success", "metadata": {"sealed": "AAAA"}, "request_id": 3},
    ]


def archive(version=2, key=KEY, edit=None, rechain=False, with_manifest=True):
    head = {"keywarden_archive": version, "first_seq": 1, "last_seq": 3, "prev_hash": ZERO,
            "created": "2026-02-01T00:00:00.000Z"}
    recs = chain(records())
    if edit:
        edit(recs)
        if rechain:
            chain(recs)
    lines = [json.dumps(head, separators=(",", ":"))]
    lines += [json.dumps(r, separators=(",", ":")) for r in recs]
    if with_manifest:
        lines.append(json.dumps(manifest(lines, head, recs, key), separators=(",", ":")))
    return ("".join(l + "\n" for l in lines)).encode()


def deny_to_success(recs):
    recs[0]["result"] = "success"


def gz(data):
    return gzip.compress(data, 9, mtime=0)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "corpus", "archive")
    valid = archive()
    seeds = {
        "valid.jsonl.gz": gz(valid),
        "plain.jsonl": valid,
        "truncated.gz": gz(valid)[:-40],
        "header-only.jsonl.gz": gz(valid.split(b"\n")[0] + b"\n"),
        # Changed without re-chaining: the record's hash fails.
        "tampered.jsonl.gz": gz(archive(edit=deny_to_success, with_manifest=False)
                               + valid.split(b"\n")[-2] + b"\n"),
        # Changed, re-chained, the manifest made anew with another key: its signature fails.
        "forged.jsonl.gz": gz(archive(key=OTHER, edit=deny_to_success, rechain=True)),
        "no-manifest.jsonl.gz": gz(archive(with_manifest=False)),
        "format1.jsonl.gz": gz(archive(version=1, with_manifest=False)),
    }
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("public key (hex): %s" % pub(KEY).hex())


if __name__ == "__main__":
    main()
