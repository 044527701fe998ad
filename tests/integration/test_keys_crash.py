"""Crash safety of API keys (SPEC5: "a crash leaves the old state or the
new, never a torn file"; "any tampering -> integrity check failed, never
garbage").

A client thread sets and rotates one key in a loop over the raw protocol
while the test SIGKILLs the broker at a random moment, then restarts it.
After every restart `keywarden key get` must print a value that was sent
(the last acknowledged one, or the one in flight when the broker died),
`key list` must agree with it, every version it lists must still read back
as the value first seen under that number, and no version number may ever
change its value.  Random kills land anywhere: in the sealed-file write, in
the purge of expired versions (rotationGrace is short), between the
backend's put and the state commit, in the audit write.
"""
import json
import os
import random
import threading
import time

import pytest

from conftest import IO_TIMEOUT, SLOW, Client, ProtocolError, db_rows
from test_keys import key_cli, keys_json, random_key, sealed
from users import epoch

ROUNDS = 30
GRACE = 2          # seconds: versions expire (and are purged) while the loop runs


def seed():
    s = int(os.environ.get("KW_CRASH_SEED") or random.randrange(1 << 30))
    print("KW_CRASH_SEED=%d" % s)
    return random.Random(s)


def on_disk_versions(b, name):
    """(sealed versions present, temp files) in keystore/NAME."""
    d = os.path.join(b.datadir, "keystore", name)
    if not os.path.isdir(d):
        return set(), []
    files = os.listdir(d)
    versions = {int(f[1:-len(".sealed")]) for f in files
                if f.startswith("v") and f.endswith(".sealed")}
    temps = [f for f in files if ".tmp" in f]
    return versions, temps


def committed_versions(b, name):
    """Versions state.db knows (any state), read beside the running broker."""
    return {v for (v,) in db_rows(b.state_db, "SELECT version FROM key_versions WHERE name = ?",
                                  (name,))}


class Loop(threading.Thread):
    """Sends key.set / key.rotate one after another until the connection dies."""

    def __init__(self, b, rng, name, sent):
        super().__init__(daemon=True)
        self.b, self.rng, self.name, self.sent = b, rng, name, sent
        self.acked = None          # index in sent of the last acknowledged value
        self.first = threading.Event()
        self.errors = []

    def run(self):
        try:
            c = Client(self.b.sock, IO_TIMEOUT)
            c.hello()
        except OSError:
            self.first.set()
            return
        try:
            while self.turn(c):
                pass
        except (OSError, ProtocolError):
            pass                   # the broker was killed
        finally:
            self.first.set()
            c.close()

    def turn(self, c):
        """One request (self.first is set before it goes); False to stop."""
        value = random_key(n=self.rng.randrange(20, 200))
        op = self.rng.choice(("key.set", "key.rotate"))
        self.sent.append(value)
        self.first.set()
        r = c.call(op, {"name": self.name, "value": value})
        if not r.get("ok"):
            self.errors.append(r)
            return False
        self.acked = len(self.sent) - 1
        return True


def kill_during(b, loop, rng):
    """Run loop against b and SIGKILL b at a random moment after its first request."""
    loop.start()
    assert loop.first.wait(IO_TIMEOUT), "the client never sent"
    time.sleep(rng.uniform(0, 0.05) * SLOW)     # the moment of the kill, not a wait
    b.kill9()
    loop.join(IO_TIMEOUT)
    assert not loop.is_alive(), "the client hung on a dead broker"


def check_after_restart(b, name, sent, durable, by_version, last_version):
    """The state after a restart; returns (index of the value read, its version)."""
    allowed = {i for i in (durable, len(sent) - 1) if i is not None}
    cp = key_cli(b, "key", "get", name, "--json")
    if cp.returncode != 0:
        # Only before anything was ever acknowledged may the key be missing.
        assert durable is None and "no key named" in cp.stderr, (
            "key get failed after a restart: %s %s" % (cp.returncode, cp.stderr))
        assert name not in keys_json(b)
        return None, last_version
    doc = json.loads(cp.stdout)
    value, version = doc["value"], doc["version"]
    idx = [i for i in allowed if sent[i] == value]
    assert idx, ("after a restart key get gave a value that was neither the last "
                 "acknowledged nor the one in flight (version %d, %d bytes)"
                 % (version, len(value)))
    assert version >= last_version, (version, last_version)
    # The plain CLI form prints exactly the same.
    cp = key_cli(b, "key", "get", name)
    assert cp.returncode == 0 and cp.stdout == value + "\n" and cp.stderr == "", cp

    # key list agrees, and every version it shows reads back.
    k = keys_json(b)[name]
    assert k["current"] == version, (k, version)
    states = {v["version"]: v["state"] for v in k["versions"]}
    assert [v for v, s in states.items() if s == "current"] == [version], k
    assert set(states.values()) <= {"current", "grace"}, k
    if version in by_version:
        assert by_version[version] == value, "version %d changed its value" % version
    by_version[version] = value
    with b.connect() as c:
        for v in k["versions"]:
            if v["state"] != "grace":
                continue
            r = c.call("key.get", {"name": name, "version": v["version"]})
            if not r["ok"]:
                # It may have expired since the listing; nothing else excuses it.
                assert r["error"]["code"] == "not_found", r
                assert time.time() >= epoch(v["grace_until"]) - 1, (v, r)
                continue
            val = r["result"]["value"]
            assert val in sent, "version %d reads as a value never sent" % v["version"]
            if v["version"] in by_version:
                assert by_version[v["version"]] == val, "version %d changed" % v["version"]
            by_version[v["version"]] = val
            assert os.path.exists(sealed(b, name, v["version"]))
    return idx[0], version


def test_kill_during_set_and_rotate(broker_factory):
    rng = seed()
    b = broker_factory({"api": {"rotationGrace": GRACE}})
    name = "anthropic"
    sent, by_version = [], {}
    durable, last_version = None, 0
    orphans, temps = 0, set()
    for round in range(ROUNDS):
        if not b.running():
            b.start()
        # What the last kill left on disk, before any op purges or replaces it.
        on_disk, tmp = on_disk_versions(b, name)
        orphans += len(on_disk - committed_versions(b, name))
        temps |= set(tmp)
        durable, last_version = check_after_restart(b, name, sent, durable, by_version,
                                                    last_version)
        loop = Loop(b, rng, name, sent)
        kill_during(b, loop, rng)
        assert not loop.errors, "a set/rotate failed before the kill: %r" % loop.errors
        if loop.acked is not None:
            durable = loop.acked
    b.start()
    durable, last_version = check_after_restart(b, name, sent, durable, by_version, last_version)
    assert durable is not None and len(sent) > ROUNDS, "too few writes to mean anything"
    print("%d values sent, %d versions seen, %d uncommitted sealed files and %d temporary "
          "files left by kills" % (len(sent), len(by_version), orphans, len(temps)))
    # After all that the store still works normally.
    k = random_key()
    ok_cp = key_cli(b, "key", "set", name, input=k)
    assert ok_cp.returncode == 0, ok_cp.stderr
    cp = key_cli(b, "key", "get", name)
    assert cp.stdout == k + "\n", cp


class RevokeLoop(Loop):
    """set, rotate, revoke the old version, revoke the key: over and over."""

    def turn(self, c):
        for op in ("key.set", "key.rotate", "key.revoke-old", "key.revoke"):
            args = {"name": self.name}
            if op in ("key.set", "key.rotate"):
                args["value"] = random_key()
                self.sent.append(args["value"])
            self.first.set()
            if op == "key.revoke-old":
                r = c.call("key.list", {})
                vs = [v["version"] for k in r["result"]["keys"]
                      if k["name"] == self.name for v in k["versions"]
                      if v["state"] == "grace"]
                if not vs:
                    continue
                op, args["version"] = "key.revoke", vs[0]
            r = c.call(op, args)
            if not r.get("ok") and r["error"]["code"] != "not_found":
                self.errors.append(r)
                return False
        return True


def test_kill_during_revoke_keeps_list_and_get_consistent(broker_factory):
    rng = seed()
    b = broker_factory({"api": {"rotationGrace": 3600}})
    name = "anthropic"
    sent = []
    for round in range(ROUNDS):
        if not b.running():
            b.start()
        keys = keys_json(b)
        if name in keys:
            with b.connect() as c:
                for v in keys[name]["versions"]:
                    r = c.call("key.get", {"name": name, "version": v["version"]})
                    assert r["ok"], ("round %d: key list shows version %d (%s) but key get "
                                     "says: %s; its sealed file %s" % (
                                         round, v["version"], v["state"], r["error"],
                                         "exists" if os.path.exists(sealed(b, name, v["version"]))
                                         else "is gone"))
                    assert r["result"]["value"] in sent
            cur = keys[name]["current"]
            cp = key_cli(b, "key", "get", name)
            if cur is None:
                assert cp.returncode == 1 and cp.stdout == "", cp
            else:
                assert cp.returncode == 0 and cp.stdout[:-1] in sent, cp
        loop = RevokeLoop(b, rng, name, sent)
        kill_during(b, loop, rng)
        assert not loop.errors, loop.errors


# --------------------------------------------------------------------------
# Tampering
# --------------------------------------------------------------------------

def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


def test_tampered_sealed_file_is_an_integrity_error(broker_factory):
    b = broker_factory()
    k, o = random_key(), random_key("sk-proj-", 40)
    for name, v in (("anthropic", k), ("openai", o)):
        cp = key_cli(b, "key", "set", name, input=v)
        assert cp.returncode == 0, cp.stderr
    path = sealed(b, "anthropic", 1)
    with open(path, "rb") as f:
        orig = f.read()
    size = len(orig)
    rng = seed()
    # Magic, IV, ciphertext, tag: a flipped bit anywhere is caught.
    for offset in sorted({0, 3, 4, 15, 16, size // 2, size - 17, size - 16, size - 1,
                          rng.randrange(size)}):
        flip(path, offset)
        cp = key_cli(b, "key", "get", "anthropic")
        assert cp.returncode == 1, (offset, cp)
        assert cp.stdout == "", "a tampered key printed something: %r" % cp.stdout
        assert "integrity" in cp.stderr and cp.stderr.count("\n") == 1, cp.stderr
        flip(path, offset)
    # Truncated, or grown.
    for data in (orig[:size - 1], orig[:20], b"", orig + b"\0"):
        with open(path, "wb") as f:
            f.write(data)
        cp = key_cli(b, "key", "get", "anthropic")
        assert cp.returncode == 1 and cp.stdout == "" and "integrity" in cp.stderr, cp
    with open(path, "wb") as f:
        f.write(orig)
    assert key_cli(b, "key", "get", "anthropic").stdout == k + "\n"

    flip(path, size - 1)
    # exec does not run the command with a key that failed its check.
    marker = os.path.join(b.root, "ran")
    cp = key_cli(b, "exec", "--key", "anthropic=A", "--", "touch", marker)
    assert cp.returncode == 1 and "integrity" in cp.stderr, cp
    assert not os.path.exists(marker)
    # Other keys are unaffected, and so is a restart.
    assert key_cli(b, "key", "get", "openai").stdout == o + "\n"
    b.stop()
    b.start()
    cp = key_cli(b, "key", "get", "anthropic")
    assert cp.returncode == 1 and cp.stdout == "" and "integrity" in cp.stderr, cp
    # A new value replaces the damaged one.
    cp = key_cli(b, "key", "rotate", "anthropic", input=k)
    assert cp.returncode == 0, cp.stderr
    assert key_cli(b, "key", "get", "anthropic").stdout == k + "\n"
    for _, path in b.history:
        assert k not in b.stderr(path)


def test_sealed_file_swapped_between_versions_or_keys(broker_factory):
    b = broker_factory({"api": {"rotationGrace": 3600}})
    k1, k2, o = random_key(), random_key(), random_key()
    for args, v in ((("set", "anthropic"), k1), (("rotate", "anthropic"), k2),
                    (("set", "openai"), o)):
        assert key_cli(b, "key", *args, input=v).returncode == 0
    with open(sealed(b, "anthropic", 1), "rb") as f:
        v1 = f.read()
    with open(sealed(b, "anthropic", 2), "rb") as f:
        v2 = f.read()
    # An old version copied over the current one: refused, not served.
    with open(sealed(b, "anthropic", 2), "wb") as f:
        f.write(v1)
    cp = key_cli(b, "key", "get", "anthropic")
    assert cp.returncode == 1 and cp.stdout == "" and "integrity" in cp.stderr, cp
    # Another key's file: refused too.
    with open(sealed(b, "openai", 1), "wb") as f:
        f.write(v2)
    cp = key_cli(b, "key", "get", "openai")
    assert cp.returncode == 1 and cp.stdout == "" and "integrity" in cp.stderr, cp


def test_broker_refuses_to_start_with_a_changed_master_key(broker_factory):
    b = broker_factory()
    k = random_key()
    assert key_cli(b, "key", "set", "anthropic", input=k).returncode == 0
    b.stop()
    mk = os.path.join(b.datadir, "provider.key")
    with open(mk, "rb") as f:
        orig = f.read()
    with open(mk, "wb") as f:
        f.write(os.urandom(32))
    b.start(wait=False)
    rc = b.wait_exit()
    assert rc != 0
    err = b.stderr()
    # The same master key wraps the broker secret, which is opened first.
    assert "broker-secret.wrapped" in err and "master key" in err, err
    assert k not in err
    with open(mk, "wb") as f:
        f.write(orig)
    b.start()
    assert key_cli(b, "key", "get", "anthropic").stdout == k + "\n"


def test_verify_of_a_tampered_key_says_integrity(broker_factory):
    b = broker_factory()
    assert key_cli(b, "key", "set", "anthropic", input=random_key()).returncode == 0
    flip(sealed(b, "anthropic", 1), 20)
    cp = key_cli(b, "key", "verify", "anthropic")
    assert cp.returncode == 1 and cp.stdout == "", cp
    assert "integrity" in cp.stderr, cp.stderr
