"""Identity: real distinct Unix users asking the broker, one decision point.

Each test starts a broker under nss_wrapper (see users.py) and runs the real
CLI as alice (2001), bob (2002), carol (2003) and dave (2004) with setpriv.
"""
import json

from users import (USERS, as_json, change_row, check_user_object, denied_as, denied_row, fails,
                   id_broker, ok, raw_as, rows_of, run_as, UserConn)  # noqa: F401 (fixture)


def setup_users(b, **roles):
    """As root: register each name with its roles (a list)."""
    for name, rs in roles.items():
        args = ["admin", "user", "add", name]
        for r in rs:
            args += ["--role", r]
        ok(run_as(b, "root", *args))


def allowed(b, user, *args):
    cp = run_as(b, user, "check", *args)
    out = ok(cp)
    assert "allowed" in out, (cp.args, out)
    assert "denied" not in out, (cp.args, out)
    return cp


def denied(b, user, action, resource, *more):
    """`check action resource` as user is denied (exit 1), says why, and is audited."""
    cp = run_as(b, user, "check", action, resource, *more)
    out = fails(cp, 1, "denied")
    m = denied_row(b, cp, user, "check", resource)
    assert m["reason"] in out, "the CLI does not show the broker's reason %r:\n%s" % (
        m["reason"], out)
    return m


# --------------------------------------------------------------------------

def test_caller_is_the_unix_user(id_broker):
    """Sanity of the setup: the broker names each caller from SO_PEERCRED."""
    b = id_broker()
    for name in ("alice", "dave"):
        cp = run_as(b, name, "status", "--json")
        doc = as_json(cp)
        assert doc["caller"]["user"] == name, doc
        assert doc["caller"]["uid"] == USERS[name][0], doc
        assert doc["caller"]["gid"] == USERS[name][1], doc
        assert doc["caller"]["pid"] == cp.pid, doc


def test_status_names_registered_user_and_roles(id_broker):
    b = id_broker()
    setup_users(b, alice=["reviewer", "developer"])
    st = raw_as(b, "alice", [{"op": "status"}])[0]
    assert st["ok"] is True, st
    assert st["result"]["user"] == "alice", st
    assert sorted(st["result"]["roles"]) == ["developer", "reviewer"], st
    st = raw_as(b, "dave", [{"op": "status"}])[0]
    assert st["ok"] is True, st
    assert st["result"]["user"] is None, st
    assert st["result"]["roles"] == [], st


def test_reviewer_reads_but_does_not_write(id_broker):
    b = id_broker()
    setup_users(b, alice=["reviewer"])
    allowed(b, "alice", "read", "key/anthropic")
    allowed(b, "alice", "read", "key/openai")
    for verb in ("write", "execute", "admin"):
        m = denied(b, "alice", verb, "key/anthropic")
        assert m["reason"], m


def test_check_json(id_broker):
    b = id_broker()
    setup_users(b, alice=["reviewer"])
    doc = as_json(run_as(b, "alice", "check", "read", "key/anthropic", "--json"))
    assert doc.get("allowed") is True, doc
    cp = run_as(b, "alice", "check", "write", "key/anthropic", "--json")
    assert cp.returncode == 1, (cp.stdout, cp.stderr)
    denied_row(b, cp, "alice", "check", "key/anthropic")


def test_developer_uses_keys_but_cannot_administer(id_broker):
    b = id_broker()
    setup_users(b, bob=["developer"])
    for verb in ("read", "write", "execute"):
        allowed(b, "bob", verb, "key/anthropic")
    denied(b, "bob", "admin", "user/bob")
    for args, action, resource in (
            (("admin", "user", "list"), "user.list", "user"),
            (("admin", "role", "list"), "role.list", "role"),
            # carol is no keywarden user yet: the record names her by no pseudonym.
            (("admin", "user", "add", "carol"), "user.add", "user/~unknown"),
            (("admin", "role", "grant", "bob", "admin"), "role.grant", "user/bob"),
            (("admin", "role", "create", "mine", "--permission", "*"), "role.create",
             "role/mine")):
        denied_as(b, "bob", action, resource, *args)
    # None of the refused changes happened.
    doc = as_json(run_as(b, "root", "admin", "user", "show", "bob", "--json"))
    assert doc["roles"] == ["developer"], doc
    fails(run_as(b, "root", "admin", "user", "show", "carol"), 1)
    fails(run_as(b, "root", "admin", "role", "show", "mine"), 1)


def test_custom_role_glob_allows_exactly_its_resources(id_broker):
    b = id_broker()
    ok(run_as(b, "root", "admin", "role", "create", "anth",
              "--permission", "read:key/anthropic*"))
    setup_users(b, carol=["anth"])
    allowed(b, "carol", "read", "key/anthropic")
    allowed(b, "carol", "read", "key/anthropic-prod")
    allowed(b, "carol", "read", "key/anthropic/team/x")   # '*' crosses '/'
    denied(b, "carol", "read", "key/openai")
    denied(b, "carol", "read", "key/anthropi")
    denied(b, "carol", "read", "xkey/anthropic")
    denied(b, "carol", "write", "key/anthropic")
    denied(b, "carol", "execute", "key/anthropic-prod")
    denied_as(b, "carol", "user.list", "user", "admin", "user", "list")


def test_question_mark_glob(id_broker):
    b = id_broker()
    ok(run_as(b, "root", "admin", "role", "create", "envs",
              "--permission", "write:key/env?", "--permission", "read:key/exact"))
    setup_users(b, alice=["envs"])
    allowed(b, "alice", "write", "key/env1")
    allowed(b, "alice", "read", "key/exact")
    denied(b, "alice", "write", "key/env")
    denied(b, "alice", "write", "key/env12")
    denied(b, "alice", "read", "key/env1")
    denied(b, "alice", "read", "key/exact2")


def test_unregistered_user_denied_everything_but_status(id_broker):
    b = id_broker()
    setup_users(b, alice=["developer"])
    doc = as_json(run_as(b, "dave", "status", "--json"))
    assert doc["caller"]["user"] == "dave", doc
    for verb in ("read", "write", "execute", "admin"):
        denied(b, "dave", verb, "key/anthropic")
    for args, action, resource in ((("admin", "user", "list"), "user.list", "user"),
                                   (("admin", "role", "list"), "role.list", "role"),
                                   (("admin", "user", "add", "dave"), "user.add",
                                    "user/dave")):
        denied_as(b, "dave", action, resource, *args)
    fails(run_as(b, "root", "admin", "user", "show", "dave"), 1)


def test_root_administers_without_registration(id_broker):
    b = id_broker()
    cp = run_as(b, "root", "admin", "user", "list", "--json")
    ok(cp)
    assert rows_of(b, cp, "result = 'denied'") == []
    allowed(b, "root", "admin", "user/alice")
    allowed(b, "root", "write", "key/anything")


def test_admin_role_can_administer(id_broker):
    b = id_broker()
    setup_users(b, carol=["admin"])
    doc = as_json(run_as(b, "carol", "admin", "user", "list", "--json"))
    names = [u["user"] for u in (doc["users"] if isinstance(doc, dict) else doc)]
    assert names == ["carol"], doc
    cp = run_as(b, "carol", "admin", "user", "add", "alice", "--role", "reviewer", "--json")
    u = as_json(cp)
    check_user_object(u, "alice", ["reviewer"], created_by="carol")
    m = change_row(b, cp, "user.add", "user/alice", user="carol")
    assert m.get("roles") == ["reviewer"], m
    cp = run_as(b, "carol", "admin", "role", "grant", "alice", "developer")
    ok(cp)
    m = change_row(b, cp, "role.grant", "user/alice", user="carol")
    assert m.get("role") == "developer", m
    allowed(b, "alice", "write", "key/anthropic")
    # admin carries '*': keys too.
    allowed(b, "carol", "execute", "key/anthropic")


def test_narrow_admin_permission(id_broker):
    """admin:user/* administers users but not roles."""
    b = id_broker()
    ok(run_as(b, "root", "admin", "role", "create", "useradmin",
              "--permission", "admin:user/*"))
    setup_users(b, alice=["useradmin"])
    ok(run_as(b, "alice", "admin", "user", "add", "bob"))
    ok(run_as(b, "alice", "admin", "user", "show", "bob"))
    # Handing out a role needs admin on that role too: no self-promotion.
    m = denied_as(b, "alice", "role.grant", "user/alice",
                  "admin", "role", "grant", "alice", "admin")
    assert "role/admin" in m["reason"], m
    fails(run_as(b, "alice", "admin", "user", "add", "carol", "--role", "reviewer"), 1, "denied")
    ok(run_as(b, "root", "admin", "role", "create", "reviewgranter",
              "--permission", "admin:role/reviewer"))
    ok(run_as(b, "root", "admin", "role", "grant", "alice", "reviewgranter"))
    # user.list is on resource "user", which "user/*" does not match.
    denied_as(b, "alice", "user.list", "user", "admin", "user", "list")
    # ... and no key rights came with it.
    denied(b, "alice", "read", "key/anthropic")
    # Nor may she hand out what she does not hold herself (reviewer's "read").
    # (carol is not a user yet: the record does not name her.)
    m = denied_as(b, "alice", "user.add", "user/~unknown",
                  "admin", "user", "add", "carol", "--role", "reviewer")
    assert "beyond what alice holds" in m["reason"], m
    ok(run_as(b, "root", "admin", "role", "grant", "alice", "reviewer"))
    ok(run_as(b, "alice", "admin", "user", "add", "carol", "--role", "reviewer"))
    ok(run_as(b, "alice", "admin", "role", "grant", "bob", "reviewer"))
    fails(run_as(b, "alice", "admin", "role", "grant", "bob", "admin"), 1, "denied")
    denied_as(b, "alice", "role.create", "role/x",
              "admin", "role", "create", "x", "--permission", "read")


def test_acting_for_another_user(id_broker):
    b = id_broker()
    setup_users(b, alice=["developer"], bob=["reviewer"])
    # alice may not ask on bob's behalf, even for what both may do.
    m = denied(b, "alice", "read", "key/x", "--user", "bob")
    assert "acting for another user needs root" in m["reason"], m
    # ... nor name herself through someone else's question about admin.
    denied(b, "alice", "write", "key/x", "--user", "bob")
    # root is answered according to bob's roles, not its own.
    allowed(b, "root", "read", "key/x", "--user", "bob")
    cp = run_as(b, "root", "check", "write", "key/x", "--user", "bob")
    fails(cp, 1, "denied")
    r = rows_of(b, cp, "result = 'denied'")
    assert len(r) == 1 and r[0]["uid"] == 0 and r[0]["resource"] == "key/x", r
    assert json.loads(r[0]["metadata"]).get("reason"), r
    # ... and an unregistered user gets nothing even through root.
    fails(run_as(b, "root", "check", "read", "key/x", "--user", "dave"), 1, "denied")
    # alice naming herself is just alice.
    allowed(b, "alice", "write", "key/x", "--user", "alice")


def test_changes_apply_on_next_request(id_broker):
    b = id_broker()
    denied(b, "dave", "read", "key/anthropic")
    ok(run_as(b, "root", "admin", "user", "add", "dave", "--role", "reviewer"))
    allowed(b, "dave", "read", "key/anthropic")
    denied(b, "dave", "write", "key/anthropic")
    ok(run_as(b, "root", "admin", "role", "grant", "dave", "developer"))
    allowed(b, "dave", "write", "key/anthropic")
    ok(run_as(b, "root", "admin", "role", "revoke", "dave", "developer"))
    denied(b, "dave", "write", "key/anthropic")
    allowed(b, "dave", "read", "key/anthropic")
    ok(run_as(b, "root", "admin", "user", "del", "dave"))
    denied(b, "dave", "read", "key/anthropic")


def test_changes_apply_on_an_open_connection(id_broker):
    """A client connected before a grant or revocation sees it on its next request."""
    b = id_broker()
    setup_users(b, alice=["reviewer"])
    q = {"action": "write", "resource": "key/a"}
    with UserConn(b, "alice") as alice, b.connect() as root:
        r = alice.call("check", q)
        assert r["ok"] is False and r["error"]["code"] == "denied", r
        assert root.call("role.grant", {"user": "alice", "role": "developer"})["ok"] is True
        r = alice.call("check", q)
        assert r["ok"] is True and r["result"]["allowed"] is True, r
        assert root.call("role.revoke", {"user": "alice", "role": "developer"})["ok"] is True
        r = alice.call("check", q)
        assert r["ok"] is False and r["error"]["code"] == "denied", r
        assert root.call("user.del", {"user": "alice"})["ok"] is True
        r = alice.call("check", {"action": "read", "resource": "key/a"})
        assert r["ok"] is False and r["error"]["code"] == "denied", r


def test_every_refusal_is_audited(id_broker):
    """One 'denied' row per refused request, nothing else marked denied."""
    b = id_broker()
    setup_users(b, alice=["reviewer"])
    before = len(b.audit_rows("result = 'denied'"))
    refusals = [("alice", ("check", "write", "key/a")),
                ("alice", ("admin", "user", "list")),
                ("alice", ("check", "read", "key/a", "--user", "bob")),
                ("dave", ("check", "read", "key/a")),
                ("bob", ("admin", "role", "list"))]
    for user, args in refusals:
        cp = run_as(b, user, *args)
        assert cp.returncode == 1, (user, args, cp.stdout, cp.stderr)
        rows = rows_of(b, cp, "result = 'denied'")
        assert len(rows) == 1, rows
        assert rows[0]["user"] == user and rows[0]["uid"] == USERS[user][0], rows
        assert json.loads(rows[0]["metadata"])["reason"], rows
    assert len(b.audit_rows("result = 'denied'")) == before + len(refusals)


def test_changes_are_audited_with_who_asked(id_broker):
    b = id_broker()
    cp = run_as(b, "root", "admin", "user", "add", "alice", "--role", "reviewer")
    ok(cp)
    m = change_row(b, cp, "user.add", "user/alice")
    assert m.get("roles") == ["reviewer"], m
    cp = run_as(b, "root", "admin", "role", "grant", "alice", "developer")
    ok(cp)
    assert change_row(b, cp, "role.grant", "user/alice").get("role") == "developer"
    cp = run_as(b, "root", "admin", "role", "revoke", "alice", "reviewer")
    ok(cp)
    assert change_row(b, cp, "role.revoke", "user/alice").get("role") == "reviewer"
    cp = run_as(b, "root", "admin", "role", "create", "ops", "--permission", "read:key/ops-*")
    ok(cp)
    assert change_row(b, cp, "role.create", "role/ops").get("permissions") == [
        "read:key/ops-*"]
    ok(run_as(b, "root", "admin", "role", "grant", "alice", "ops"))
    cp = run_as(b, "root", "admin", "role", "delete", "ops", "--force")
    ok(cp)
    m = change_row(b, cp, "role.delete", "role/ops")
    assert m.get("force") is True and m.get("grants_removed") == 1, m
    cp = run_as(b, "root", "admin", "user", "del", "alice")
    ok(cp)
    change_row(b, cp, "user.del", "user/alice")
    # Failed changes are recorded as failures, not successes.
    cp = run_as(b, "root", "admin", "user", "add", "mallory")
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    rows = rows_of(b, cp, "action = 'user.add'")
    assert len(rows) == 1 and rows[0]["result"] == "error", rows
    # mallory is neither a caller nor a keywarden user: named by no pseudonym.
    assert rows[0]["resource"] == "user/~unknown", rows
    assert json.loads(rows[0]["metadata"]).get("error") == "invalid_argument", rows


def test_check_refusal_records_what_was_asked(id_broker):
    """A refused check's row says which right was asked for, and on whose behalf.

    The row's action is the operation ("check"); the verb asked about and the
    user named with --user must be in the record too, or an auditor cannot
    tell a refused read from a refused write, nor whom alice tried to act for.
    """
    b = id_broker()
    setup_users(b, alice=["reviewer"], bob=["developer"])
    m = denied_as(b, "alice", "check", "key/x", "check", "write", "key/x", "--user", "bob")
    values = [v for v in m.values() if isinstance(v, str)]
    assert "write" in values, "the refused verb is not recorded: %r" % m
    assert "bob" in values, "the user alice tried to act for is not recorded: %r" % m


def test_admin_role_does_not_act_for_others(id_broker):
    """Acting for another user needs uid 0, not the admin role."""
    b = id_broker()
    setup_users(b, carol=["admin"], bob=["developer"])
    m = denied(b, "carol", "read", "key/x", "--user", "bob")
    assert "acting for another user needs root" in m["reason"], m


def test_rbac_disabled_still_decides(id_broker):
    """rbac.enabled false: a warning at start, and still deny by default."""
    b = id_broker({"security": {"authorization": {"rbac": {"enabled": False}}}})
    # The warning is written at start, before the broker listens.
    err = b.stderr()
    warned = [l for l in err.splitlines() if "rbac" in l.lower() and "listening" not in l]
    assert warned, "no warning about security.authorization.rbac.enabled at start:\n%s" % err
    setup_users(b, alice=["reviewer"])
    allowed(b, "alice", "read", "key/anthropic")
    denied(b, "alice", "write", "key/anthropic")
    denied(b, "dave", "read", "key/anthropic")
    denied_as(b, "dave", "user.list", "user", "admin", "user", "list")


def test_check_validates_its_arguments(id_broker):
    """An unknown verb or a resource that is not TYPE/NAME is a usage error (2), not a decision."""
    b = id_broker()
    setup_users(b, alice=["developer"])
    for args in (("reed", "key/a"), ("read", ""), ("read", "key/a b"), ("*", "key/a")):
        cp = run_as(b, "alice", "check", *args)
        assert cp.returncode == 2, (args, cp.stdout, cp.stderr)
        assert cp.stderr.strip(), (args, cp.stderr)
