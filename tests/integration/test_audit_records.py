"""What the trail records: one record for each kind of decision the issue
lists (login, MFA failure, session create/revoke, key read/write, role and user
changes, locks, policy decisions, configuration changes), read back through
`keywarden admin audit query --json`, and none of them carrying a secret."""
import json

from conftest import assert_ok
from users import UserConn, id_broker, mfa_broker, totp, wrong_code  # noqa: F401 (fixtures)


def query(b, *args):
    cp = b.cli("admin", "audit", "query", "--json", *args)
    assert cp.returncode == 0, cp.stderr
    recs = json.loads(cp.stdout)
    assert isinstance(recs, list), recs
    return recs


def actions(recs):
    return [(r["action"], r["result"]) for r in recs]


def test_every_kind_of_decision_is_recorded(mfa_broker):
    b = mfa_broker(users=("alice", "bob"))
    secret = b.enrolled["alice"]["secret"]
    with UserConn(b, "alice") as c:
        bad = c.call("login", {"code": wrong_code(secret, b.clock.now())})
        assert bad["ok"] is False, bad
        good = assert_ok(c.call("login", {"code": totp(secret, b.clock.now())}))
        token = good["session"]
        assert_ok(c.call("key.set", {"name": "demo", "value": "sk-ant-secret-value-1234"},
                         session=token))
        assert_ok(c.call("key.get", {"name": "demo"}, session=token))
        refused = c.call("user.lock", {"user": "bob"}, session=token)
        assert refused["ok"] is False, refused
        assert_ok(c.call("check", {"action": "read", "resource": "key/demo"}, session=token))
    with b.connect() as c:
        assert_ok(c.call("role.create", {"role": "ops", "permissions": ["read:key/*"]}))
        assert_ok(c.call("role.grant", {"user": "bob", "role": "ops"}))
        assert_ok(c.call("user.lock", {"user": "bob"}))
        assert_ok(c.call("user.unlock", {"user": "bob"}))
        assert_ok(c.call("session.revoke", {"user": "alice"}))

    recs = query(b)
    got = actions(recs)
    for want in [("login", "denied"), ("login", "success"), ("key.set", "success"),
                 ("key.get", "success"), ("user.lock", "denied"), ("check", "success"),
                 ("role.create", "success"), ("role.grant", "success"),
                 ("user.lock", "success"), ("user.unlock", "success"),
                 ("session.revoke", "success"), ("user.add", "success"),
                 ("broker.start", "success")]:
        assert want in got, (want, got)
    by_alice = query(b, "--user", "alice")
    assert by_alice and all(r["user"] == "alice" for r in by_alice), by_alice
    assert ("login", "denied") in actions(by_alice)
    # The seed's shape, and no secret anywhere in what an auditor reads.
    for r in recs:
        for k in ("timestamp", "user", "action", "resource", "result", "metadata"):
            assert k in r, r
    text = json.dumps(recs)
    assert "sk-ant-secret-value-1234" not in text
    assert token not in text and token.split("_")[-1] not in text
    assert secret not in text
    lock = [r for r in recs if r["action"] == "user.lock" and r["result"] == "success"][0]
    assert lock["resource"] == "user/bob", lock


def test_configuration_changes_are_recorded(id_broker):
    b = id_broker()
    starts = query(b, "--action", "broker.start")
    assert len(starts) == 1 and len(starts[0]["metadata"]["sha256"]) == 64, starts
    assert query(b, "--action", "config.change") == []

    assert b.stop() == 0
    b.start()
    assert query(b, "--action", "config.change") == [], "same file, no change recorded"

    first = starts[0]["metadata"]["sha256"]
    assert b.stop() == 0
    b.write_config(dict(b.config, security=dict(b.config.get("security", {}),
                                                 session={"timeout": 1234})))
    b.start()
    changes = query(b, "--action", "config.change")
    assert len(changes) == 1, changes
    m = changes[0]["metadata"]
    assert m["previous_sha256"] == first and m["sha256"] != first, m
    assert len(query(b, "--action", "broker.start")) == 3


def test_log_file_mirrors_committed_records(id_broker):
    b = id_broker({"security": {"audit": {"logFile": "audit.log"}}})
    with b.connect() as c:
        for _ in range(5):
            assert_ok(c.call("check", {"action": "read", "resource": "key/x"}))
    path = b.datadir + "/audit.log"
    assert oct(__import__("os").stat(path).st_mode & 0o777) == "0o600"
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    seqs = [r["seq"] for r in lines]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert [r["action"] for r in lines].count("check") == 5
    # Each line follows the one before it, and the last is the chain's head.
    for prev, cur in zip(lines, lines[1:]):
        assert cur["prev_hash"] == prev["hash"], (prev, cur)
    cp = b.cli("admin", "audit", "verify", "--json")
    assert cp.returncode == 0, cp.stderr
    head = json.loads(cp.stdout)["head_hash"]
    # The CLI's own hello came before verify: the head it saw is in the file by now.
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    assert head in [r["hash"] for r in lines], head
    # The stored form: pseudonyms, never the caller's name.
    assert all(r["user"].startswith("~") for r in lines), lines
