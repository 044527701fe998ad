"""Reading the audit trail (SPEC6): `keywarden admin audit query` filters,
`export` files, paging of audit.query, and what the configuration makes the
broker record (logActions, includeContext, includeUser)."""
import calendar
import fnmatch
import json
import os
import time

from conftest import (CLI_BIN, SEED_LOG_ACTIONS, Client, assert_error, assert_ok, clean_env,
                      file_mode, wait_for)
from test_audit_chain import (check_rec, named_rows, py_verify, query, raw_rows, records_of,
                              setup_users, verified)
from users import fails, id_broker, ok, run_as  # noqa: F401 (fixture)


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def ts_ms(ts):
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(ts[20:23])


def populate(b):
    setup_users(b, alice=["developer"], bob=["reviewer"])
    ok(run_as(b, "root", "admin", "role", "create", "ops", "--permission", "read:key/ops-*"))
    ok(run_as(b, "root", "admin", "role", "grant", "bob", "ops"))
    ok(run_as(b, "alice", "check", "read", "key/a"))
    ok(run_as(b, "bob", "check", "read", "key/ops-1"))
    fails(run_as(b, "bob", "check", "write", "key/ops-1"), 1, "denied")
    fails(run_as(b, "alice", "admin", "role", "create", "evil", "--permission", "*"), 1)
    ok(run_as(b, "root", "admin", "role", "revoke", "bob", "ops"))


def seqs(recs):
    return [r["seq"] for r in recs]


def test_filters(id_broker):
    b = id_broker()
    populate(b)
    rows = named_rows(b.audit_db)
    every = query(b)
    for r in every:
        check_rec(r)
    assert seqs(every) == sorted(seqs(every))
    assert set(seqs(every)) >= {r["seq"] for r in rows}

    # --user
    alice = query(b, "--user", "alice")
    want = [r["seq"] for r in rows if r["user"] == "alice"]
    assert want and seqs(alice)[:len(want)] == want, (seqs(alice), want)
    assert all(r["user"] == "alice" for r in alice), alice
    # --action, a glob
    roles = query(b, "--action", "role.*")
    assert {r["action"] for r in roles} == {"role.create", "role.grant", "role.revoke"}, roles
    assert seqs(roles) == [r["seq"] for r in rows if fnmatch.fnmatchcase(r["action"], "role.*")]
    exact = query(b, "--action", "role.grant")
    assert len(exact) == 1 and exact[0]["resource"] == "user/bob", exact
    # --result
    denied = query(b, "--result", "denied")
    assert len(denied) == 2 and all(r["result"] == "denied" for r in denied), denied
    assert {r["user"] for r in denied} == {"alice", "bob"}
    # Combined: AND.
    both = query(b, "--user", "bob", "--result", "denied")
    assert len(both) == 1 and both[0]["action"] == "check", both
    assert query(b, "--user", "alice", "--action", "role.grant") == []
    # Bad values: usage errors, exit 2.
    for bad in (["--result", "maybe"], ["--since", "yesterday-ish"], ["--until", "13:99"]):
        cp = run_as(b, "root", "admin", "audit", "query", *bad)
        assert cp.returncode == 2, (bad, cp.returncode, cp.stderr)
        assert bad[0] in cp.stderr or bad[1] in cp.stderr, cp.stderr


def test_since_until(id_broker):
    b = id_broker()
    setup_users(b, alice=["developer"])
    ok(run_as(b, "alice", "check", "read", "key/early"))
    early = raw_rows(b.audit_db)[-1]
    # Records carry milliseconds: wait until the clock is past the early one.
    wait_for(lambda: time.time() * 1000 > early["ts_ms"] + 5, 2)
    mid = int(time.time() * 1000)
    wait_for(lambda: time.time() * 1000 > mid + 5, 2)
    ok(run_as(b, "alice", "check", "read", "key/late"))
    late = [r for r in raw_rows(b.audit_db) if r["resource"] == "key/late"][0]
    assert early["ts_ms"] < mid < late["ts_ms"]

    after = query(b, "--since", rfc3339(mid))
    assert late["seq"] in seqs(after) and early["seq"] not in seqs(after), seqs(after)
    assert all(ts_ms(r["timestamp"]) >= mid for r in after), after
    before = query(b, "--until", rfc3339(mid))
    assert early["seq"] in seqs(before) and late["seq"] not in seqs(before)
    assert all(ts_ms(r["timestamp"]) <= mid for r in before), before
    window = query(b, "--since", rfc3339(early["ts_ms"]), "--until", rfc3339(late["ts_ms"]))
    assert early["seq"] in seqs(window) and late["seq"] in seqs(window)
    # Ages and dates.
    assert late["seq"] in seqs(query(b, "--since", "1h"))
    assert query(b, "--until", "1h") == []
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert early["seq"] in seqs(query(b, "--since", today))
    # The wire op takes Unix milliseconds.
    with b.connect() as c:
        res = assert_ok(c.call("audit.query", {"since": mid}))
        assert late["seq"] in seqs(res["records"]) and early["seq"] not in seqs(res["records"])
        res = assert_ok(c.call("audit.query", {"until": mid}))
        assert early["seq"] in seqs(res["records"]) and late["seq"] not in seqs(res["records"])


def test_query_needs_admin(id_broker):
    b = id_broker()
    setup_users(b, alice=["developer"])
    for args in (["query"], ["verify"], ["prune"]):
        cp = run_as(b, "alice", "admin", "audit", *args)
        assert cp.returncode == 1 and "denied" in (cp.stderr + cp.stdout).lower(), (args, cp)
    denied = named_rows(b.audit_db, "user = 'alice' AND result = 'denied'")
    assert {r["action"] for r in denied} >= {"audit.query", "audit.verify", "audit.prune"}


def test_export_files(id_broker, tmpdir_short):
    b = id_broker()
    populate(b)
    every = query(b)
    out_json = os.path.join(tmpdir_short, "audit.json")
    out_jsonl = os.path.join(tmpdir_short, "audit.jsonl")
    ok(run_as(b, "root", "admin", "audit", "export", "--format", "json", "--output", out_json))
    ok(run_as(b, "root", "admin", "audit", "export", "--format", "jsonl", "--output", out_jsonl))
    for f in (out_json, out_jsonl):
        assert file_mode(f) == 0o600, (f, oct(file_mode(f)))
    with open(out_json) as f:
        doc = records_of(json.load(f))
    with open(out_jsonl) as f:
        text = f.read()
    lines = [json.loads(l) for l in text.splitlines()]
    assert text.endswith("\n") and all(isinstance(l, dict) for l in lines)
    for recs in (doc, lines):
        for r in recs:
            check_rec(r)
        # Everything that query listed (exports see later records too).
        assert seqs(recs)[:len(every)] == seqs(every), (seqs(recs), seqs(every))
        assert [r["hash"] for r in recs[:len(every)]] == [r["hash"] for r in every]
    # Never overwrites.
    with open(out_json, "rb") as f:
        orig = f.read()
    cp = run_as(b, "root", "admin", "audit", "export", "--format", "json", "--output", out_json)
    assert cp.returncode != 0, cp
    assert out_json in cp.stderr or "exist" in cp.stderr, cp.stderr
    with open(out_json, "rb") as f:
        assert f.read() == orig
    # Unless told to (--force), and the file stays private.
    ok(run_as(b, "root", "admin", "audit", "export", "--format", "json", "--output", out_json,
              "--force", "--result", "denied"))
    with open(out_json) as f:
        forced = records_of(json.load(f))
    assert forced and all(r["result"] == "denied" for r in forced), forced
    assert file_mode(out_json) == 0o600
    # Filters apply to exports too.
    out2 = os.path.join(tmpdir_short, "alice.jsonl")
    ok(run_as(b, "root", "admin", "audit", "export", "--format", "jsonl", "--user", "alice",
              "--output", out2))
    with open(out2) as f:
        recs = [json.loads(l) for l in f]
    assert recs and all(r["user"] == "alice" for r in recs), recs
    cp = run_as(b, "root", "admin", "audit", "export", "--format", "xml", "--output",
                os.path.join(tmpdir_short, "x"))
    assert cp.returncode == 2 and not os.path.exists(os.path.join(tmpdir_short, "x")), cp


def pipelined_checks(b, n):
    with b.connect() as c:
        for i in range(n):
            c.send_msg({"id": 10 + i, "op": "check",
                        "args": {"action": "read", "resource": "key/p%d" % i}})
        for i in range(n):
            assert_ok(c.recv_msg(), id=10 + i)


def walk(c, limit):
    """All pages of audit.query at limit; the list of pages."""
    pages, after = [], None
    while True:
        args = {"limit": limit}
        if after is not None:
            args["after"] = after
        res = assert_ok(c.call("audit.query", args))
        assert len(res["records"]) <= limit, (limit, len(res["records"]))
        pages.append(res["records"])
        after = res["next"]
        if after is None:
            return pages
        assert res["records"] and after >= res["records"][-1]["seq"], res["next"]
        assert len(pages) < 1000, "paging does not end"


def test_paging(broker_factory):
    b = broker_factory()
    n = 450
    pipelined_checks(b, n)
    total = len(raw_rows(b.audit_db))
    assert total >= n
    with b.connect() as c:
        pages = walk(c, 100)
        # Pages may come shorter than the limit (a reply must fit a frame).
        sizes = [len(p) for p in pages]
        assert len(pages) >= 5 and all(0 < k <= 100 for k in sizes[:-1]), sizes
        assert sum(sizes) >= n
        got = [r["seq"] for p in pages for r in p]
        assert got == sorted(set(got)), "pages overlap or are out of order"
        assert got[:total] == [r["seq"] for r in raw_rows(b.audit_db)][:total]
        assert len(got) >= total
    # The CLI walks all pages; --limit caps the records it lists.
    recs = query(b, "--action", "check")
    assert len(recs) == n, len(recs)
    assert [r["resource"] for r in recs] == ["key/p%d" % i for i in range(n)]
    some = query(b, "--action", "check", "--limit", "250")
    assert [r["resource"] for r in some] == ["key/p%d" % i for i in range(250)]
    cp = run_as(b, "root", "admin", "audit", "query", "--limit", "0")
    assert cp.returncode == 2, cp
    verified(b)


def test_query_arguments_checked(broker_factory):
    b = broker_factory()
    pipelined_checks(b, 5)
    with b.connect() as c:
        for args in ({"limit": 0}, {"limit": "10"}, {"limit": -5}, {"result": "maybe"},
                     {"since": "yesterday"}, {"after": -1}, {"action": 5}):
            r = c.call("audit.query", args)
            assert r["ok"] is False, (args, r)
            # (other ops answer bad argument values with invalid_argument)
            assert r["error"]["code"] in ("invalid_argument", "bad_request"), (args, r)
            key = next(iter(args))
            assert key in r["error"]["message"], (args, r)
        # Above the maximum: refused, or held to 1000.
        r = c.call("audit.query", {"limit": 1001})
        assert not r["ok"] or len(r["result"]["records"]) <= 1000, r
        res = assert_ok(c.call("audit.query", {"limit": 2}))
        assert len(res["records"]) == 2 and res["next"] == res["records"][1]["seq"], res
        res2 = assert_ok(c.call("audit.query", {"limit": 2, "after": res["next"]}))
        assert res2["records"][0]["seq"] == res["next"] + 1, res2


def test_large_pages_fit_a_frame(broker_factory):
    """SPEC6: limit 1..1000, default 200.  A page of 200 (or 1000) check
    records is larger than a frame (64 KiB): the broker must still answer
    (a shorter page with a cursor), not drop the connection."""
    b = broker_factory()
    n = 1200
    pipelined_checks(b, n)
    for args in ({}, {"limit": 200}, {"limit": 1000}):
        with b.connect() as c:
            try:
                res = assert_ok(c.call("audit.query", args))
            except Exception as e:  # noqa: BLE001
                raise AssertionError("audit.query %r got no answer: %s" % (args, e))
            recs = res["records"]
            want = args.get("limit", 200)
            assert recs and len(recs) <= want, (args, len(recs))
            assert res["next"] is not None, "a short page must say where to go on"
            if len(recs) < want:
                print("audit.query %r: %d records in a page" % (args, len(recs)))
        with b.connect() as c:
            pages = walk(c, want)
        got = [r["seq"] for p in pages for r in p]
        assert got == sorted(set(got)) and len(got) >= n, (args, len(got))


def test_log_actions_default_and_refusals(broker_factory):
    # The seed's default logActions (conftest's brokers add hello and status).
    b = broker_factory({"security": {"audit": {"logActions": SEED_LOG_ACTIONS}}})
    pid = os.getpid()
    with Client(b.sock) as c:
        # Refused before the handshake (which ends the connection): recorded.
        assert_error(c.call("status", id=2), "handshake_required", id=2)
    with Client(b.sock) as c:
        assert_ok(c.hello(id=3))
        for i in range(3):
            assert_ok(c.call("status", id=4 + i))
        assert_error(c.call("frobnicate", id=9), "unknown_op")
        assert_ok(c.call("check", {"action": "read", "resource": "key/x"}, id=10))
    with Client(b.sock) as c:
        assert_error(c.hello(version=99, id=11), "version_mismatch")
    rows = raw_rows(b.audit_db, "pid = ?", (pid,))
    acts = [(r["action"], r["request_id"], r["result"]) for r in rows]
    # Default logActions: hello and status are not recorded; refusals and decisions are.
    assert [a for a in acts if a[1] == 2 and a[2] != "success"], acts
    assert ("unknown_op", 9, "error") in acts, acts
    assert ("check", 10, "success") in acts, acts
    assert any(a == "hello" and i == 11 for a, i, _ in acts), acts
    assert not [a for a in acts if a[0] in ("status", "hello") and a[2] == "success"], acts

    # Listed in logActions: recorded.
    b.stop()
    b.write_config({"security": {"audit": {"logActions": ["status", "hello"]}}})
    b.start()
    n0 = len(raw_rows(b.audit_db))
    with b.connect() as c:
        for i in range(3):
            assert_ok(c.call("status", id=20 + i))
    new = raw_rows(b.audit_db)[n0:]
    assert [r["action"] for r in new if r["pid"] == pid] == ["hello", "status", "status", "status"]
    verified_direct(b)


def verified_direct(b):
    assert py_verify(b.audit_db)[1] is None
    cp = b.cli("admin", "audit", "verify")
    assert cp.returncode == 0, cp


def test_include_context_false_keeps_only_the_decision(id_broker):
    b = id_broker({"security": {"audit": {"includeContext": False}}})
    setup_users(b, alice=["reviewer"])
    ok(run_as(b, "root", "admin", "role", "create", "ctxrole", "--permission", "read:key/c*"))
    ok(run_as(b, "alice", "check", "read", "key/x"))
    fails(run_as(b, "alice", "check", "write", "key/x"), 1, "denied")
    rows = named_rows(b.audit_db)
    for r in rows:
        m = json.loads(r["metadata"])
        assert set(m) <= {"error", "reason"}, "context kept: %r" % r
        assert "ctxrole" not in r["metadata"] or r["resource"] == "role/ctxrole"
    create = [r for r in rows if r["action"] == "role.create"][0]
    assert json.loads(create["metadata"]) == {}, create
    denied = [r for r in rows if r["result"] == "denied"][0]
    m = json.loads(denied["metadata"])
    assert m.get("error") == "denied" and m.get("reason"), denied
    # Users and resources are still there.
    assert denied["user"] == "alice" and denied["resource"] == "key/x", denied
    verified(b)


def test_include_user_false_stores_empty_user(id_broker):
    b = id_broker({"security": {"audit": {"includeUser": False}}})
    setup_users(b, alice=["reviewer"])
    ok(run_as(b, "alice", "check", "read", "key/x"))
    fails(run_as(b, "alice", "check", "write", "key/x"), 1, "denied")
    rows = raw_rows(b.audit_db)
    assert rows and all(r["user"] == "" for r in rows), [r["user"] for r in rows]
    recs = query(b)
    assert recs and all(r["user"] == "" for r in recs), [r["user"] for r in recs]
    # Whoever it was does not appear in the details either.
    for r in rows:
        assert "alice" not in r["metadata"], r
    # --user finds nothing: there is nobody to match.
    assert query(b, "--user", "alice") == []
    verified(b)


def run_with_tty_stderr(b, *args):
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe); returns
    (exit status, stdout, what the terminal showed)."""
    import pty
    import subprocess
    master, slave = pty.openpty()
    try:
        env = clean_env({"KEYWARDEN_SOCKET": b.sock})
        p = subprocess.Popen([CLI_BIN, *args],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                             env=env)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:       # EIO: the child closed its end
                break
            if not chunk:
                break
            shown += chunk
        out = p.stdout.read().decode()
        p.wait(timeout=60)
        return p.returncode, out, shown.decode(errors="replace")
    finally:
        os.close(master)


def test_export_progress_only_on_a_terminal(id_broker, tmp_path):
    b = id_broker()
    with b.connect() as c:
        for _ in range(250):
            assert_ok(c.call("check", {"action": "read", "resource": "key/x"}))
    out = str(tmp_path / "all.jsonl")
    rc, _, shown = run_with_tty_stderr(b, "admin", "audit", "export", "--format", "jsonl",
                                       "--output", out)
    assert rc == 0, shown
    with open(out) as f:
        n = sum(1 for _ in f)
    assert n >= 250
    # The count is drawn on the terminal and left there when the export is done.
    assert "exported %d records" % n in shown, shown
    # Not a terminal: no progress at all.
    cp = b.cli("admin", "audit", "export", "--format", "jsonl", "--output",
               str(tmp_path / "again.jsonl"))
    assert cp.returncode == 0, cp.stderr
    assert "exported" not in cp.stderr, cp.stderr
