"""Durability of the audit trail (SPEC6, group commit): a reply is only sent
after its record's COMMIT returned, so every acknowledged request survives
a SIGKILL; when the store cannot write, requests are refused with
audit_unavailable and the broker stays up and resumes.

Load: N client threads over the raw protocol, each sending `check`
requests (always audited) with request ids unique to the test run, and
remembering every id whose reply arrived.
"""
import errno
import json
import sqlite3
import os
import random
import struct
import subprocess
import threading
import time

import pytest

from conftest import (IO_TIMEOUT, SLOW, Client, ProtocolError, assert_error,
                      assert_ok, short_tmpdir, wait_for)
from test_audit_chain import py_verify, raw_rows

THREADS = 8
ROUNDS = 10
CHECK = {"action": "read", "resource": "key/durable"}


def seed():
    s = int(os.environ.get("KW_CRASH_SEED") or random.randrange(1 << 30))
    print("KW_CRASH_SEED=%d" % s)
    return random.Random(s)


class Loader(threading.Thread):
    """One connection sending check requests until stopped or the broker dies.

    acked: ids whose reply was ok; refused: {error code: count}; sent_after:
    (monotonic time the request was sent, id) for acked ones."""

    def __init__(self, b, base):
        super().__init__(daemon=True)
        self.b, self.base = b, base
        self.acked = []
        self.times = {}
        self.refused = {}
        self.stop = threading.Event()
        self.started = threading.Event()
        self.error = None

    def run(self):
        try:
            c = Client(self.b.sock, IO_TIMEOUT)
            r = c.hello(id=self.base)
        except (OSError, ProtocolError):
            self.started.set()
            return
        self.started.set()
        if not r["ok"]:
            self.refused[r["error"]["code"]] = self.refused.get(r["error"]["code"], 0) + 1
        try:
            i = 1
            while not self.stop.is_set():
                rid = self.base + i
                i += 1
                t = time.monotonic()
                try:
                    r = c.call("check", CHECK, id=rid)
                except (OSError, ProtocolError):
                    return
                if r["ok"]:
                    assert r["id"] == rid, r
                    self.acked.append(rid)
                    self.times[rid] = t
                else:
                    code = r["error"]["code"]
                    self.refused[code] = self.refused.get(code, 0) + 1
                    if code not in ("audit_unavailable", "busy"):
                        self.error = r
                        return
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            c.close()


def start_load(b, base, n=THREADS):
    loaders = [Loader(b, base + t * 1000000) for t in range(n)]
    for l in loaders:
        l.start()
    for l in loaders:
        assert l.started.wait(IO_TIMEOUT), "a client thread never connected"
    return loaders


def stop_load(loaders):
    for l in loaders:
        l.stop.set()
    for l in loaders:
        l.join(IO_TIMEOUT * 2)
        assert not l.is_alive(), "a client thread hung"


def acked(loaders):
    return sum(len(l.acked) for l in loaders)


def recorded_ids(b):
    rows = raw_rows(b.audit_db, "pid = ? AND action = 'check'", (os.getpid(),))
    return {r["request_id"] for r in rows}, rows


def checks(b, first_id, n):
    """n checks over one connection, ids first_id, first_id + 1, ...: each answered."""
    with b.connect() as c:
        for i in range(n):
            assert_ok(c.call("check", CHECK, id=first_id + i))


def assert_all_recorded(b, ids, what):
    have, _ = recorded_ids(b)
    missing = sorted(set(ids) - have)
    assert not missing, "%d acknowledged requests have no record after %s, e.g. %r" % (
        len(missing), what, missing[:10])


def assert_chain_ok(b):
    n, bad = py_verify(b.audit_db)
    assert bad is None, "chain broken: %r" % (bad,)
    cp = b.cli("admin", "audit", "verify", "--json")
    assert cp.returncode == 0, (cp.stdout, cp.stderr)
    return n


# --------------------------------------------------------------------------
# SIGKILL under load
# --------------------------------------------------------------------------

def test_kill9_under_concurrent_load_loses_no_acknowledged_record(broker_factory):
    rng = seed()
    b = broker_factory()
    every = []
    for rnd in range(ROUNDS):
        base = (rnd + 1) * 100000000
        loaders = start_load(b, base)
        target = acked(loaders) + rng.randrange(30, 400)
        wait_for(lambda: acked(loaders) >= target or any(l.error for l in loaders),
                 30 * SLOW, what="%d acknowledged checks" % target)
        b.kill9()
        stop_load(loaders)
        errs = [l.error for l in loaders if l.error]
        assert not errs, errs
        ids = [i for l in loaders for i in l.acked]
        assert len(ids) >= target - 1
        every += ids
        b.start()
        assert_all_recorded(b, ids, "SIGKILL round %d" % rnd)
        assert_all_recorded(b, every, "SIGKILL round %d (earlier rounds)" % rnd)
        assert_chain_ok(b)
    # Interleaved: the records of the concurrent connections share the sequence.
    _, rows = recorded_ids(b)
    last = [r for r in rows if r["request_id"] // 100000000 == ROUNDS]
    owners = [r["request_id"] // 1000000 for r in last]
    switches = sum(1 for a, c in zip(owners, owners[1:]) if a != c)
    assert switches >= THREADS, "records of %d connections did not interleave" % THREADS


# --------------------------------------------------------------------------
# Group commit, seen in the WAL: fewer commits than requests
# --------------------------------------------------------------------------

def wal_commits(path):
    """(salt, number of commit frames of the current WAL generation)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, 0
    if len(data) < 32:
        return None, 0
    magic, _ver, page, _ckpt, s1, s2 = struct.unpack(">IIIIII", data[:24])
    assert magic in (0x377F0682, 0x377F0683), "not a WAL file: %s" % path
    n, off = 0, 32
    while off + 24 + page <= len(data):
        _pg, commit, f1, f2 = struct.unpack(">IIII", data[off:off + 16])
        if (f1, f2) != (s1, s2):
            break
        if commit:
            n += 1
        off += 24 + page
    return (s1, s2), n


def test_concurrent_requests_share_commits(broker_factory):
    b = broker_factory()
    n = 32
    conns = [b.connect() for _ in range(n)]
    wal = b.audit_db + "-wal"
    best = None
    try:
        for attempt in range(6):
            salt0, c0 = wal_commits(wal)
            for i, c in enumerate(conns):
                c.send_msg({"id": 1000 * attempt + i, "op": "check", "args": CHECK})
            for i, c in enumerate(conns):
                assert_ok(c.recv_msg(), id=1000 * attempt + i)
            salt1, c1 = wal_commits(wal)
            if salt0 != salt1 or salt0 is None:
                continue        # checkpointed meanwhile: count again
            delta = c1 - c0
            assert delta >= 1, "no commit in audit.db's WAL for %d audited requests" % n
            best = delta if best is None else min(best, delta)
    finally:
        for c in conns:
            c.close()
    assert best is not None, "the WAL was reset on every attempt"
    assert best <= n // 2, (
        "%d concurrent requests took %d audit commits: no group commit" % (n, best))
    print("%d concurrent requests: %d commits at best" % (n, best))
    assert_chain_ok(b)


# --------------------------------------------------------------------------
# A full, read-only or removed store
# --------------------------------------------------------------------------

def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path],
                   check=True, timeout=IO_TIMEOUT)


def umount(path):
    cp = subprocess.run(["umount", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=IO_TIMEOUT)
    if cp.returncode != 0:
        subprocess.run(["umount", "-l", path], timeout=IO_TIMEOUT)


@pytest.fixture
def tmpfs_broker(broker_factory):
    """make(size) -> a Broker (not started) whose dataDir is a fresh tmpfs."""
    made = []

    def make(size="16m", extra=None):
        root = short_tmpdir()
        os.chmod(root, 0o700)
        mount_tmpfs(os.path.join(root, "lib"), size)
        b = broker_factory(extra, start=False, root=root)
        made.append(b)
        return b
    yield make
    for b in made:
        if b.running():
            b.stop()
        umount(b.datadir)
        subprocess.run(["rm", "-rf", b.root], timeout=IO_TIMEOUT)


def fill(directory):
    """Write a filler file until the file system is full; its path."""
    path = os.path.join(directory, "filler")
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 512, 1):
            buf = b"\0" * chunk
            while True:
                try:
                    f.write(buf)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    st = os.statvfs(directory)
    assert st.f_bavail == 0, "file system not full: %d blocks left" % st.f_bavail
    return path


def refused_audit(reply):
    err = assert_error(reply, "audit_unavailable")
    assert "audit" in err["message"].lower(), err
    return err


def test_full_store_refuses_then_resumes(tmpfs_broker):
    b = tmpfs_broker("16m")
    b.start()
    loaders = start_load(b, 700000000, n=4)
    wait_for(lambda: acked(loaders) >= 100, 20 * SLOW, what="acknowledged checks")
    filler = fill(b.datadir)
    # Under load: once full, the requests are refused with audit_unavailable.
    wait_for(lambda: any(l.refused.get("audit_unavailable") for l in loaders), 20 * SLOW,
             what="an audit_unavailable refusal under load")
    with Client(b.sock) as c:
        refused_audit(c.hello())
        refused_audit(c.call("check", CHECK))
    cp = b.cli("check", "read", "key/durable")
    assert cp.returncode != 0, cp.stdout
    assert b.running()
    n_full = acked(loaders)
    print("refusals under load while full: %r" % [l.refused for l in loaders])
    os.unlink(filler)

    def served():
        with Client(b.sock) as c:
            r = c.hello()
            return r["ok"] and c.call("check", CHECK)["ok"]
    wait_for(served, 20 * SLOW, what="service after the space came back")
    wait_for(lambda: acked(loaders) >= n_full + 100, 20 * SLOW,
             what="the load served again")
    stop_load(loaders)
    errs = [l.error for l in loaders if l.error]
    assert not errs, errs
    ids = [i for l in loaders for i in l.acked]
    assert_all_recorded(b, ids, "a full store")
    assert_chain_ok(b)
    # And across a restart.
    assert b.stop() == 0
    b.start()
    assert_all_recorded(b, ids, "a full store and a restart")
    assert_chain_ok(b)
    log = "".join(b.stderr(p) for _, p in b.history).lower()
    assert "audit" in log and ("full" in log or "space" in log), log[-3000:]


def test_read_only_store_refuses_then_resumes(tmpfs_broker):
    b = tmpfs_broker("16m")
    b.start()
    with b.connect() as c:
        ids = [c.call("check", CHECK, id=800000000 + i)["id"] for i in range(20)]
    cp = subprocess.run(["mount", "-o", "remount,ro", b.datadir], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, universal_newlines=True, timeout=IO_TIMEOUT)
    print("remount,ro under the running broker: %s" % (cp.stderr.strip() or "done"))
    if cp.returncode == 0:
        # Remounted under a running broker: refused, and it stays up.
        try:
            with Client(b.sock) as c:
                refused_audit(c.hello())
            assert b.running()
        finally:
            subprocess.run(["mount", "-o", "remount,rw", b.datadir], check=True,
                           timeout=IO_TIMEOUT)
        wait_for(lambda: Client(b.sock).hello()["ok"], 20 * SLOW, what="service after rw")
    else:
        # Linux refuses to make a file system with files open for writing
        # read-only (EBUSY: the broker holds audit.db open), so the store can
        # only turn read-only between runs: a broker started on it must not
        # serve unaudited requests.
        assert "busy" in cp.stderr, cp.stderr
        assert b.stop() == 0
        subprocess.run(["mount", "-o", "remount,ro", b.datadir], check=True, timeout=IO_TIMEOUT)
        try:
            b.start(wait=False)
            served = False
            if b.wait_ready(exit_ok=True):
                with Client(b.sock, 2) as c:
                    r = c.hello()
                    if r["ok"]:
                        served = c.call("check", CHECK)["ok"]
                    else:
                        refused_audit(r)
            assert not served, "a broker on a read-only store answered a request"
            print("broker on a read-only store: %s" % (
                "running, refusing" if b.running() else "exited %s: %s" % (
                    b.proc.returncode, b.stderr().strip()[-300:])))
            if b.running():
                assert b.stop() == 0
            else:
                assert b.proc.returncode != 0
                err = b.stderr().lower()
                assert "read-only" in err or "readonly" in err or "audit" in err, err
        finally:
            if b.running():
                b.stop()
            subprocess.run(["mount", "-o", "remount,rw", b.datadir], check=True,
                           timeout=IO_TIMEOUT)
        b.start()
    with b.connect() as c:
        assert_ok(c.call("check", CHECK, id=800000999))
    assert_all_recorded(b, ids + [800000999], "a read-only store")
    assert_chain_ok(b)


def test_removed_store_is_recreated_and_anchored(broker_factory):
    b = broker_factory()
    checks(b, 900000000, 30)
    old = raw_rows(b.audit_db)
    head = old[-1]
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(b.audit_db + suffix)
        except FileNotFoundError:
            pass
    acks = []
    refusals = 0
    deadline = time.monotonic() + 20 * SLOW
    i = 100
    while time.monotonic() < deadline and len(acks) < 5:
        with Client(b.sock) as c:
            r = c.hello()
            if r["ok"]:
                rid = 900000000 + i
                i += 1
                r = c.call("check", CHECK, id=rid)
                if r["ok"]:
                    acks.append(rid)
                    continue
            refused_audit(r)
            refusals += 1
        wait_for(b.running, 1, what="the broker to stay up")
        time.sleep(0.05)
    assert b.running()
    assert len(acks) >= 5, "no service within 20 s after audit.db was removed"
    print("%d refusals before the store was back" % refusals)
    assert os.path.exists(b.audit_db), ("the broker answers but audit.db is gone: "
                                        "records go to a deleted file")
    assert_all_recorded(b, acks, "audit.db was removed")
    new = raw_rows(b.audit_db)
    # The new file continues the chain from the head the broker knew, and
    # its first record says the store was replaced.
    assert new[0]["seq"] == head["seq"] + 1 and new[0]["prev_hash"] == head["hash"], (
        new[0], head)
    assert new[0]["action"] == "audit.store_replaced", new[0]
    n, bad = py_verify(b.audit_db)
    assert bad is None, "chain broken: %r" % (bad,)
    # verify reports the trail incomplete at that record (what was before is lost).
    cp = b.cli("admin", "audit", "verify", "--json")
    assert cp.returncode == 1, (cp.stdout, cp.stderr)
    doc = json.loads(cp.stdout)
    assert doc["ok"] is False and doc["anchor_seq"] == new[0]["seq"], doc
    assert doc["bad"]["seq"] == new[0]["seq"], doc
    assert "incomplete" in doc["bad"]["reason"], doc


def test_store_removed_while_stopped_continues_and_is_reported(broker_factory):
    b = broker_factory()
    checks(b, 910000000, 10)
    assert b.stop() == 0
    head = raw_rows(b.audit_db)[-1]
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(b.audit_db + suffix):
            os.unlink(b.audit_db + suffix)
    b.start()
    # One answer: the start-up records are written before the first request is served.
    with b.connect() as c:
        assert_ok(c.call("status"))
    new = raw_rows(b.audit_db)
    # state.db remembered the head: the new file goes on from it and says so.
    assert new[0]["seq"] == head["seq"] + 1 and new[0]["prev_hash"] == head["hash"], (
        new[0], head)
    assert new[0]["action"] == "audit.store_replaced", new[0]
    cp = b.cli("admin", "audit", "verify", "--json")
    assert cp.returncode == 1, (cp.stdout, cp.stderr)
    assert json.loads(cp.stdout)["bad"]["seq"] == new[0]["seq"], cp.stdout
    assert "missing" in b.stderr().lower(), b.stderr()


def test_records_cut_from_the_end_while_stopped_are_reported(broker_factory):
    b = broker_factory()
    checks(b, 920000000, 10)
    assert b.stop() == 0
    rows = raw_rows(b.audit_db)
    # The tail goes: an intact but shorter chain, which the chain alone cannot show.
    con = sqlite3.connect(b.audit_db)
    con.execute("DELETE FROM audit_log WHERE seq > ?", (rows[-4]["seq"],))
    con.commit()
    con.close()
    b.start()
    with b.connect() as c:
        assert_ok(c.call("status"))
    gap = [r for r in raw_rows(b.audit_db) if r["action"] == "audit.gap"]
    assert len(gap) == 1, raw_rows(b.audit_db)[-3:]
    assert json.loads(gap[0]["metadata"])["expected_seq"] >= rows[-1]["seq"], gap
    cp = b.cli("admin", "audit", "verify", "--json")
    assert cp.returncode == 1, (cp.stdout, cp.stderr)
    doc = json.loads(cp.stdout)
    assert doc["bad"]["seq"] == gap[0]["seq"] and "audit.gap" in doc["bad"]["reason"], doc
