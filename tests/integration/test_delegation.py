"""Delegated administrators stay within their own rights (security finding 3).

A user whose role grants `admin:role/*` or `admin:user/*` administers roles
or users, but never beyond what she holds herself: a role she creates, a role
she grants or revokes, and a user she locks, unlocks, resets, deletes or
erases must hold no permission she lacks.  Grants of a role removed from the
configuration are reported at start and block re-creating that name until
they are cleared, so nobody inherits them.  root is not limited.

Every attacker is a distinct non-root Unix user (users.py); root sets up.
"""
from conftest import assert_ok, deep_merge
from users import (NO_MFA_REQUIRED, as_json, change_row, denied_as, fails, id_broker, listing,
                   meta, ok, rows_of, run_as, start)  # noqa: F401 (fixture)


def adm(b, user, *args):
    return run_as(b, user, "admin", *args)


def register(b, **roles):
    """As root: register each name with its roles (a list)."""
    for name, rs in roles.items():
        args = ["user", "add", name]
        for r in rs:
            args += ["--role", r]
        ok(adm(b, "root", *args))


def create_role(b, name, *perms):
    args = ["role", "create", name]
    for p in perms:
        args += ["--permission", p]
    ok(adm(b, "root", *args))


def is_allowed(b, user, verb, resource):
    cp = run_as(b, user, "check", verb, resource)
    assert cp.returncode in (0, 1), (cp.args, cp.stdout, cp.stderr)
    return cp.returncode == 0


def role_exists(b, name):
    return adm(b, "root", "role", "show", name).returncode == 0


def roles_of(b, name):
    return as_json(adm(b, "root", "user", "show", name, "--json"))["roles"]


# --------------------------------------------------------------------------
# A role removed from the configuration: its grants do not come back to life

OPS = {"ops": {"permissions": ["read:key/ops-*"]}}


def with_roles(roles):
    return deep_merge(NO_MFA_REQUIRED, {"security": {"authorization": {"rbac": {
        "roles": roles}}}})


def retire_ops(id_broker, alice_roles):
    """A broker whose configuration had role ops, held by alice and bob, and
    was restarted without it; alice also holds alice_roles (CLI roles)."""
    b = id_broker(with_roles(OPS))
    create_role(b, "roleadmin", "admin:role/*", "read:key/ops-*")
    register(b, alice=["ops"] + list(alice_roles), bob=["ops"])
    assert is_allowed(b, "bob", "read", "key/ops-db")
    assert b.stop() == 0
    b.write_config(NO_MFA_REQUIRED)
    start(b)
    # The grants are still in the store, and grant nothing.
    assert "ops" in roles_of(b, "bob")
    assert not is_allowed(b, "bob", "read", "key/ops-db")
    return b


def test_delegated_admin_cannot_revive_a_retired_role(id_broker):
    """The attack: alice (admin:role/*) re-creates the retired ops with "*" and
    would inherit its old grants, hers and bob's.  Refused; nobody gains."""
    b = retire_ops(id_broker, ["roleadmin"])
    cp = adm(b, "alice", "role", "create", "ops", "--permission", "*")
    assert cp.returncode != 0, (cp.stdout, cp.stderr)
    assert not role_exists(b, "ops")
    for user in ("alice", "bob"):
        for verb, res in (("admin", "user/carol"), ("write", "key/anthropic"),
                          ("admin", "audit"), ("admin", "role")):
            assert not is_allowed(b, user, verb, res), (user, verb, res)
    assert not is_allowed(b, "bob", "read", "key/ops-db")
    # Even within alice's own rights the name is refused while it is granted:
    # bob would get read:key/ops-* back without anyone granting it to him.
    cp = adm(b, "alice", "role", "create", "ops", "--permission", "read:key/ops-*")
    fails(cp, 2, "still granted to 2 user(s)", "role delete ops --force")
    r = rows_of(b, cp, "action = 'role.create'")
    assert len(r) == 1 and r[0]["result"] == "error" and r[0]["user"] == "alice", r
    assert not role_exists(b, "ops")
    assert not is_allowed(b, "bob", "read", "key/ops-db")


def test_root_too_must_clear_a_retired_roles_grants(id_broker):
    """The rule is about the name, not who asks: root is refused the same way,
    and `role delete NAME --force` clears the leftover grants (audited)."""
    b = retire_ops(id_broker, ["roleadmin"])
    fails(adm(b, "root", "role", "create", "ops", "--permission", "read:key/ops-*"), 2,
          "still granted to 2 user(s)")
    # Without --force the leftover grants are only described.
    fails(adm(b, "alice", "role", "delete", "ops"), 2, "no longer exists", "2 user(s)",
          "--force")
    assert "ops" in roles_of(b, "bob")
    cp = adm(b, "alice", "role", "delete", "ops", "--force", "--json")
    assert as_json(cp) == {"role": "ops", "grants_removed": 2, "orphaned": True}
    m = change_row(b, cp, "role.delete", "role/ops", user="alice")
    assert m.get("grants_removed") == 2 and m.get("orphaned") is True, m
    assert roles_of(b, "bob") == [] and roles_of(b, "alice") == ["roleadmin"]
    # Now the name is free, and a new ops starts with no holders.
    ok(adm(b, "alice", "role", "create", "ops", "--permission", "read:key/ops-*"))
    assert as_json(adm(b, "root", "role", "show", "ops", "--json"))["users"] == []
    assert not is_allowed(b, "bob", "read", "key/ops-db")
    # Nothing left to clear: not found.
    ok(adm(b, "root", "role", "delete", "ops"))
    fails(adm(b, "root", "role", "delete", "ops", "--force"), 1, "no role named ops")


def test_orphaned_grants_reported_at_start(id_broker):
    b = retire_ops(id_broker, [])
    err = b.stderr()
    assert "role ops is granted to 2 user(s)" in err, err
    # One record per leftover grant, naming its holder (pseudonymised like any name).
    rows = b.audit_rows("action = 'role.orphaned_grant'")
    assert sorted(meta(r).get("user") for r in rows) == ["alice", "bob"], rows
    for r in rows:
        assert r["resource"] == "role/ops" and r["result"] == "success", r
    # The listings say so too.
    doc = as_json(adm(b, "root", "role", "list", "--json"))
    assert "ops" not in [x["role"] for x in listing(doc, "roles")], doc
    assert doc.get("orphaned") == [{"role": "ops", "users": ["alice", "bob"]}], doc
    out = ok(adm(b, "root", "role", "list"))
    assert "ops" in out and "no longer" in out, out
    u = as_json(adm(b, "root", "user", "show", "bob", "--json"))
    assert u["roles"] == ["ops"] and u.get("orphaned_roles") == ["ops"], u
    assert "no longer defined" in ok(adm(b, "root", "user", "show", "bob"))
    # Reported at every start until cleared, then no more.
    ok(adm(b, "root", "role", "delete", "ops", "--force"))
    assert b.stop() == 0
    start(b)
    assert len(b.audit_rows("action = 'role.orphaned_grant'")) == 2
    assert "granted to" not in b.stderr()
    assert "orphaned" not in as_json(adm(b, "root", "role", "list", "--json"))


# --------------------------------------------------------------------------
# A new role is within its creator's permissions

# Each refusal its own record (no summary of repeated ones): the test counts them.
EACH_REFUSAL = {"security": {"audit": {"refusalWindow": 0}}}


def test_role_admin_creates_only_roles_within_her_own(id_broker):
    b = id_broker(EACH_REFUSAL)
    create_role(b, "teamlead", "admin:role/team-*", "read:key/team-*", "write:key/team-a")
    register(b, alice=["teamlead"])
    for perms in (["*"], ["admin"], ["read"], ["admin:role/*"], ["read:key/*"],
                  ["write:key/team-*"], ["*:key/team-a"], ["read:key/team-a", "execute"],
                  ["admin:user/alice"]):
        args = ["role", "create", "team-x"]
        for p in perms:
            args += ["--permission", p]
        m = denied_as(b, "alice", "role.create", "role/team-x", "admin", *args)
        assert "beyond" in m["reason"], (perms, m)
        assert not role_exists(b, "team-x"), perms
    # Within hers: equal, narrower by a literal name, narrower by a longer prefix.
    ok(adm(b, "alice", "role", "create", "team-b", "--permission", "read:key/team-*",
           "--permission", "write:key/team-a", "--permission", "admin:role/team-sub*"))
    ok(adm(b, "alice", "role", "create", "team-c", "--permission", "read:key/team-c",
           "--permission", "read:key/team-c?"))
    # Her rights on role/NAME still decide which names she may create at all.
    denied_as(b, "alice", "role.create", "role/other", "admin", "role", "create", "other",
              "--permission", "read:key/team-c")
    # root is not limited.
    ok(adm(b, "root", "role", "create", "everything", "--permission", "*"))


# --------------------------------------------------------------------------
# A user admin touches no one stronger, and hands out nothing stronger

def user_admin_broker(id_broker):
    """alice: admin:user/* and read; bob: admin ("*"); carol, dave: reviewer."""
    b = id_broker()
    create_role(b, "useradmin", "admin:user/*", "admin:role/*", "read")
    register(b, alice=["useradmin"], bob=["admin"], carol=["reviewer"], dave=["reviewer"])
    return b


def test_user_admin_cannot_touch_a_stronger_user(id_broker):
    b = user_admin_broker(id_broker)
    for op, args in (("user.lock", ("user", "lock", "bob")),
                     ("user.unlock", ("user", "unlock", "bob")),
                     ("user.totp-reset", ("user", "totp-reset", "bob")),
                     ("user.del", ("user", "del", "bob")),
                     ("user.erase", ("user", "erase", "bob", "--yes"))):
        m = denied_as(b, "alice", op, "user/bob", "admin", *args)
        assert "bob holds" in m["reason"] and "beyond" in m["reason"], (op, m)
    # bob is untouched: registered, unlocked, still the admin.
    assert roles_of(b, "bob") == ["admin"]
    with b.connect() as c:
        assert assert_ok(c.call("account", {"user": "bob"}))["locked"] is False
    assert is_allowed(b, "bob", "admin", "user/alice")
    # carol holds nothing alice lacks: alice administers her.
    ok(adm(b, "alice", "user", "lock", "carol"))
    with b.connect() as c:
        assert assert_ok(c.call("account", {"user": "carol"}))["locked"] is True
    ok(adm(b, "alice", "user", "unlock", "carol"))
    ok(adm(b, "alice", "user", "totp-reset", "carol"))
    ok(adm(b, "alice", "user", "erase", "dave", "--yes"))
    ok(adm(b, "alice", "user", "del", "carol"))
    # root is not limited.
    ok(adm(b, "root", "user", "lock", "bob"))
    ok(adm(b, "root", "user", "unlock", "bob"))


def test_user_admin_grants_nothing_stronger_than_her_own(id_broker):
    b = user_admin_broker(id_broker)
    for who in ("alice", "carol"):
        m = denied_as(b, "alice", "role.grant", "user/" + who, "admin", "role", "grant", who,
                      "admin")
        assert "role admin grants" in m["reason"] and "beyond" in m["reason"], m
        denied_as(b, "alice", "role.grant", "user/" + who, "admin", "role", "grant", who,
                  "developer")
    m = denied_as(b, "alice", "role.revoke", "user/bob", "admin", "role", "revoke", "bob",
                  "admin")
    assert "beyond" in m["reason"], m
    assert roles_of(b, "alice") == ["useradmin"] and roles_of(b, "bob") == ["admin"]
    assert roles_of(b, "carol") == ["reviewer"]
    assert not is_allowed(b, "alice", "write", "key/anthropic")
    # What she holds herself she may hand out.
    ok(adm(b, "alice", "role", "revoke", "carol", "reviewer"))
    ok(adm(b, "alice", "role", "grant", "carol", "reviewer"))
    ok(adm(b, "alice", "user", "del", "dave"))
    denied_as(b, "alice", "user.add", "user/dave", "admin", "user", "add", "dave",
              "--role", "reviewer", "--role", "developer")
    fails(adm(b, "root", "user", "show", "dave"), 1)
    ok(adm(b, "alice", "user", "add", "dave", "--role", "reviewer"))
    # root is not limited.
    ok(adm(b, "root", "role", "grant", "carol", "admin"))
