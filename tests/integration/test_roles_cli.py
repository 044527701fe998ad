"""`keywarden admin user ...` / `admin role ...`: users, roles and grants as root,
config-defined roles, and how listings read (aligned tables, --json)."""
import os

import pytest

from conftest import START_TIMEOUT, assert_ok, clean_env, run_broker_once
from users import (BUILTIN_ROLES, USERS, as_json, change_row, check_role_object,
                   check_user_object, fails, id_broker, listing, meta, ok, rows_of,
                   run_as, start, table)  # noqa: F401 (fixture)


def adm(b, *args):
    return run_as(b, "root", "admin", *args)


def role_map(b):
    roles = listing(as_json(adm(b, "role", "list", "--json")), "roles")
    by_name = {r["role"]: r for r in roles}
    assert len(by_name) == len(roles), "duplicate role names: %r" % roles
    return by_name


def error_row(b, cp, action, resource, code):
    """The refused change is in the audit store: result 'error', the code and why."""
    rows = rows_of(b, cp, "action = ?", (action,))
    assert len(rows) == 1, "want one %s row for %s, got %r" % (action, cp.args, rows)
    r = rows[0]
    assert r["result"] == "error", r
    assert r["user"] == "root" and r["uid"] == 0, r
    assert r["resource"] == resource, r
    m = meta(r)
    assert m.get("error") == code, r
    assert isinstance(m.get("reason"), str) and m["reason"].strip(), r
    return m


def user_map(b):
    users = listing(as_json(adm(b, "user", "list", "--json")), "users")
    by_name = {u["user"]: u for u in users}
    assert len(by_name) == len(users), "duplicate users: %r" % users
    return by_name


# --------------------------------------------------------------------------
# Users

def test_user_add_json_object(id_broker):
    b = id_broker()
    u = as_json(adm(b, "user", "add", "alice", "--role", "developer", "--role", "reviewer",
                    "--json"))
    check_user_object(u, "alice", ["developer", "reviewer"])
    u = as_json(adm(b, "user", "add", "bob", "--json"))
    check_user_object(u, "bob", [])
    shown = as_json(adm(b, "user", "show", "alice", "--json"))
    check_user_object(shown, "alice", ["developer", "reviewer"])
    assert shown["created"] == user_map(b)["alice"]["created"]


def test_user_add_without_unix_user(id_broker):
    b = id_broker()
    cp = adm(b, "user", "add", "mallory", "--role", "reviewer")
    fails(cp, 2, "no Unix user named mallory")
    # A name that is no keywarden user (nor the caller) gets no audit pseudonym:
    # the record names it as ~unknown, in its resource and its reason alike.
    m = error_row(b, cp, "user.add", "user/~unknown", "invalid_argument")
    assert m["reason"] == "no Unix user named ~unknown", m
    assert "mallory" not in user_map(b)


def test_user_add_duplicate(id_broker):
    b = id_broker()
    ok(adm(b, "user", "add", "alice", "--role", "reviewer"))
    cp = adm(b, "user", "add", "alice", "--role", "developer")
    fails(cp, 2, "already exists", "alice")
    assert "already exists" in error_row(b, cp, "user.add", "user/alice", "invalid_argument")[
        "reason"]
    # The first registration stands unchanged.
    assert user_map(b)["alice"]["roles"] == ["reviewer"]


def test_user_add_unknown_role(id_broker):
    b = id_broker()
    cp = adm(b, "user", "add", "alice", "--role", "developer", "--role", "nosuchrole")
    fails(cp, 1, "no role named nosuchrole")
    assert "no role named nosuchrole" in error_row(b, cp, "user.add", "user/alice",
                                                   "not_found")["reason"]
    # Nothing half-done: alice was not registered without the role.
    fails(adm(b, "user", "show", "alice"), 1)


def test_user_list_show_del(id_broker):
    b = id_broker()
    ok(adm(b, "user", "add", "alice", "--role", "developer", "--role", "reviewer"))
    ok(adm(b, "user", "add", "bob", "--role", "reviewer"))
    users = user_map(b)
    assert sorted(users) == ["alice", "bob"]
    check_user_object(users["alice"], "alice", ["developer", "reviewer"])
    check_user_object(users["bob"], "bob", ["reviewer"])
    assert sorted(role_map(b)["reviewer"]["users"]) == ["alice", "bob"]

    cp = adm(b, "user", "del", "alice")
    ok(cp)
    m = change_row(b, cp, "user.del", "user/alice")
    assert isinstance(m, dict)
    fails(adm(b, "user", "show", "alice"), 1)
    assert sorted(user_map(b)) == ["bob"]
    # Her grants went with her.
    roles = role_map(b)
    assert roles["reviewer"]["users"] == ["bob"], roles["reviewer"]
    assert roles["developer"]["users"] == [], roles["developer"]
    # ... and do not come back with a new registration.
    check_user_object(as_json(adm(b, "user", "add", "alice", "--json")), "alice", [])
    # Deleting someone not registered is "not found".
    fails(adm(b, "user", "del", "carol"), 1)
    fails(adm(b, "user", "show", "carol"), 1)


def test_user_del_result_counts_grants(id_broker):
    b = id_broker()
    ok(adm(b, "user", "add", "alice", "--role", "developer", "--role", "reviewer"))
    with b.connect() as c:
        res = assert_ok(c.call("user.del", {"user": "alice"}))
        assert res == {"user": "alice", "grants_removed": 2}, res
        r = c.call("user.show", {"user": "alice"})
        assert r["ok"] is False and r["error"]["code"] == "not_found", r


# --------------------------------------------------------------------------
# Roles

def test_role_list_builtins(id_broker):
    b = id_broker()
    roles = role_map(b)
    assert set(roles) == set(BUILTIN_ROLES), roles
    for name, perms in BUILTIN_ROLES.items():
        check_role_object(roles[name], name, "builtin", perms, [])
    r = as_json(adm(b, "role", "show", "developer", "--json"))
    check_role_object(r, "developer", "builtin", BUILTIN_ROLES["developer"], [])
    fails(adm(b, "role", "show", "nosuchrole"), 1, "no role named nosuchrole")


def test_role_create_with_globs(id_broker):
    b = id_broker()
    perms = ["read:key/anthropic*", "write:key/env?", "execute", "admin:user/*"]
    args = ["role", "create", "mixed"]
    for p in perms:
        args += ["--permission", p]
    cp = adm(b, *(args + ["--json"]))
    check_role_object(as_json(cp), "mixed", "cli", perms, [])
    assert change_row(b, cp, "role.create", "role/mixed").get("permissions") == perms
    ok(adm(b, "role", "create", "everything", "--permission", "*"))
    roles = role_map(b)
    check_role_object(roles["mixed"], "mixed", "cli", perms, [])
    check_role_object(roles["everything"], "everything", "cli", ["*"], [])
    # Built-ins are still there, unchanged.
    check_role_object(roles["admin"], "admin", "builtin", ["*"])


@pytest.mark.parametrize("perm, quoted, where", [
    ("reed:key/x", '"reed:key/x"', 'unknown verb "reed"'),
    ("read:", '"read:"', "empty resource pattern"),
    ("read:key/[ab]", '"read:key/[ab]"', "position 10"),
    ("read:key/a b", '"read:key/a b"', "position 11"),
    ("write:key/x!", '"write:key/x!"', "position 12"),
    ("read:" + "k" * 129, '"read:kkkkkkkkkk', "128"),
    ("", None, None),
])
def test_role_create_malformed_permission(id_broker, perm, quoted, where):
    b = id_broker()
    cp = adm(b, "role", "create", "bad", "--permission", "read", "--permission", perm)
    out = fails(cp, 2)
    if quoted:
        error_row(b, cp, "role.create", "role/bad", "invalid_argument")
    for text in (quoted, where):
        if text:
            assert text in out, out
    fails(adm(b, "role", "show", "bad"), 1)


@pytest.mark.parametrize("name", ["developer", "reviewer", "admin"])
def test_role_create_builtin_name(id_broker, name):
    b = id_broker()
    fails(adm(b, "role", "create", name, "--permission", "*"), 2, name)
    check_role_object(role_map(b)[name], name, "builtin", BUILTIN_ROLES[name])


def test_role_create_existing_and_bad_names(id_broker):
    b = id_broker()
    ok(adm(b, "role", "create", "ops", "--permission", "read"))
    fails(adm(b, "role", "create", "ops", "--permission", "write"), 2, "ops")
    assert role_map(b)["ops"]["permissions"] == ["read"]
    for bad in ("a b", "x" * 65, "r/1", "caf\u00e9"):
        cp = adm(b, "role", "create", bad, "--permission", "read")
        assert cp.returncode == 2, (bad, cp.stdout, cp.stderr)
    assert sorted(role_map(b)) == sorted(list(BUILTIN_ROLES) + ["ops"])
    ok(adm(b, "role", "create", "A_z-9" + "x" * 59, "--permission", "read"))


def test_role_create_duplicate_permission(id_broker):
    b = id_broker()
    cp = adm(b, "role", "create", "twice", "--permission", "read", "--permission", "read")
    fails(cp, 2, "listed twice")
    assert "twice" not in role_map(b)


@pytest.mark.parametrize("name", ["developer", "admin"])
def test_role_delete_builtin(id_broker, name):
    b = id_broker()
    fails(adm(b, "role", "delete", name), 2, "defined in the configuration")
    fails(adm(b, "role", "delete", name, "--force"), 2, "defined in the configuration")
    assert name in role_map(b)


def test_role_delete_granted(id_broker):
    b = id_broker()
    ok(adm(b, "role", "create", "ops", "--permission", "read:key/ops-*"))
    ok(adm(b, "user", "add", "alice", "--role", "ops", "--role", "reviewer"))
    ok(adm(b, "user", "add", "bob", "--role", "ops"))
    cp = adm(b, "role", "delete", "ops")
    fails(cp, 2, "granted to 2 user(s)", "--force")
    error_row(b, cp, "role.delete", "role/ops", "invalid_argument")
    assert sorted(role_map(b)["ops"]["users"]) == ["alice", "bob"]
    cp = adm(b, "role", "delete", "ops", "--force")
    ok(cp)
    m = change_row(b, cp, "role.delete", "role/ops")
    assert m.get("force") is True and m.get("grants_removed") == 2, m
    assert "ops" not in role_map(b)
    users = user_map(b)
    assert users["alice"]["roles"] == ["reviewer"], users
    assert users["bob"]["roles"] == [], users
    fails(adm(b, "role", "show", "ops"), 1, "no role named ops")
    # An ungranted CLI role goes without --force; the result counts grants.
    ok(adm(b, "role", "create", "tmp", "--permission", "read"))
    with b.connect() as c:
        res = assert_ok(c.call("role.delete", {"role": "tmp", "force": False}))
        assert res == {"role": "tmp", "grants_removed": 0}, res
    fails(adm(b, "role", "delete", "tmp"), 1, "no role named tmp")


def test_grant_and_revoke(id_broker):
    b = id_broker()
    ok(adm(b, "user", "add", "alice", "--role", "reviewer"))
    cp = adm(b, "role", "grant", "alice", "developer")
    ok(cp)
    assert sorted(user_map(b)["alice"]["roles"]) == ["developer", "reviewer"]
    cp = adm(b, "role", "grant", "alice", "developer")
    fails(cp, 2, "already has")
    error_row(b, cp, "role.grant", "user/alice", "invalid_argument")
    cp = adm(b, "role", "grant", "alice", "nosuchrole")
    fails(cp, 1, "no role named nosuchrole")
    error_row(b, cp, "role.grant", "user/alice", "not_found")
    fails(adm(b, "role", "grant", "bob", "reviewer"), 1)           # bob is not registered
    ok(adm(b, "role", "revoke", "alice", "reviewer"))
    assert user_map(b)["alice"]["roles"] == ["developer"]
    fails(adm(b, "role", "revoke", "alice", "reviewer"), 1)
    fails(adm(b, "role", "revoke", "alice", "nosuchrole"), 1, "nosuchrole")
    assert user_map(b)["alice"]["roles"] == ["developer"]
    with b.connect() as c:
        u = assert_ok(c.call("role.grant", {"user": "alice", "role": "admin"}))
        check_user_object(u, "alice", ["developer", "admin"])
        u = assert_ok(c.call("role.revoke", {"user": "alice", "role": "developer"}))
        check_user_object(u, "alice", ["admin"])
        r = c.call("role.grant", {"user": "alice", "role": "admin"})
        assert r["ok"] is False and r["error"]["code"] == "invalid_argument", r
        r = c.call("role.revoke", {"user": "alice", "role": "reviewer"})
        assert r["ok"] is False and r["error"]["code"] == "not_found", r
        r = c.call("role.grant", {"user": "alice", "role": "ghost"})
        assert r["ok"] is False and r["error"]["code"] == "not_found", r
        assert "no role named ghost" in r["error"]["message"], r


def test_state_survives_restart(id_broker):
    b = id_broker()
    ok(adm(b, "role", "create", "ops", "--permission", "read:key/ops-*"))
    ok(adm(b, "user", "add", "alice", "--role", "ops"))
    assert b.stop() == 0
    start(b)
    check_role_object(role_map(b)["ops"], "ops", "cli", ["read:key/ops-*"], ["alice"])
    check_user_object(user_map(b)["alice"], "alice", ["ops"])
    ok(run_as(b, "alice", "check", "read", "key/ops-db"))


# --------------------------------------------------------------------------
# Config-defined roles

CONFIG_ROLES = {"security": {"authorization": {"rbac": {"roles": {
    "ops": {"permissions": ["read:key/ops-*"]},
    "reviewer": {"permissions": ["read:key/*"]},
}}}}}


def test_config_roles(id_broker):
    b = id_broker(CONFIG_ROLES)
    roles = role_map(b)
    check_role_object(roles["ops"], "ops", "config", ["read:key/ops-*"], [])
    check_role_object(roles["reviewer"], "reviewer", "config", ["read:key/*"], [])
    check_role_object(roles["developer"], "developer", "builtin", BUILTIN_ROLES["developer"])
    check_role_object(roles["admin"], "admin", "builtin", ["*"])
    # Config roles are granted like any other, and can be neither shadowed nor deleted.
    fails(adm(b, "role", "create", "ops", "--permission", "*"), 2, "ops")
    fails(adm(b, "role", "delete", "ops", "--force"), 2, "defined in the configuration")
    ok(adm(b, "user", "add", "alice", "--role", "ops"))
    ok(adm(b, "user", "add", "bob", "--role", "reviewer"))
    ok(run_as(b, "alice", "check", "read", "key/ops-db"))
    fails(run_as(b, "alice", "check", "read", "key/anthropic"), 1, "denied")
    fails(run_as(b, "alice", "check", "write", "key/ops-db"), 1, "denied")
    # The overridden reviewer reads keys only, no longer everything.
    ok(run_as(b, "bob", "check", "read", "key/anthropic"))
    fails(run_as(b, "bob", "check", "read", "role/developer"), 1, "denied")
    # Human listing names the source too.
    _, rows = table(ok(adm(b, "role", "list")), "ROLE")
    by = {r["ROLE"]: r for r in rows}
    assert by["ops"]["SOURCE"] == "config" and by["reviewer"]["SOURCE"] == "config", rows
    assert by["admin"]["SOURCE"] == "builtin", rows


def test_role_names_checked_on_grant(id_broker):
    b = id_broker()
    ok(adm(b, "user", "add", "alice"))
    for bad in ("x y", "-x", "a/b"):
        fails(adm(b, "role", "grant", "alice", bad), 2, "role")
        fails(adm(b, "user", "add", "bob", "--role", bad), 2, "role")
    assert user_map(b)["alice"]["roles"] == []
    assert "bob" not in user_map(b)


def test_config_role_shadowing_a_cli_role(id_broker):
    """A role created from the CLI and later defined in the configuration: the
    configured definition applies, the role is listed once, and the broker warns."""
    b = id_broker()
    ok(adm(b, "role", "create", "ops", "--permission", "write"))
    assert b.stop() == 0
    b.write_config({"security": {"authorization": {"rbac": {"roles": {
        "ops": {"permissions": ["read:key/ops-*"]}}}}}})
    start(b)
    assert "role ops created with the CLI is shadowed" in b.stderr()
    roles = listing(as_json(adm(b, "role", "list", "--json")), "roles")
    assert [r["role"] for r in roles].count("ops") == 1
    assert role_map(b)["ops"]["permissions"] == ["read:key/ops-*"]


@pytest.mark.parametrize("perms, index", [
    (["reed:key/x"], 0),
    (["read", "read:"], 1),
    (["read:key/[ab]"], 0),
])
def test_config_malformed_permission(broker_factory, perms, index):
    extra = {"security": {"authorization": {"rbac": {"roles": {"ops": {"permissions": perms}}}}}}
    b = broker_factory(extra, start=False)
    key = "security.authorization.rbac.roles.ops.permissions[%d]" % index
    b.start(wait=False, env=clean_env())
    rc = b.wait_exit(START_TIMEOUT)
    err = b.stderr()
    assert rc == 2, (rc, err)
    assert key in err, err
    assert '"%s"' % perms[index] in err, err
    assert not os.path.lexists(b.sock), "refused config but created the socket"
    cp = run_broker_once(["--config", b.config_path, "--check-config"])
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    assert key in cp.stderr + cp.stdout, cp.stderr


# --------------------------------------------------------------------------
# How listings read

def test_user_list_table(id_broker):
    b = id_broker()
    ok(adm(b, "user", "add", "alice", "--role", "developer", "--role", "reviewer"))
    ok(adm(b, "user", "add", "bob", "--role", "reviewer"))
    ok(adm(b, "user", "add", "carol", "--role", "admin"))
    out = ok(adm(b, "user", "list"))
    cols, rows = table(out, "USER")
    assert cols == ["USER", "UID", "ROLES", "CREATED", "TOTP", "SESSIONS", "LOCKED"], out
    by = {r["USER"]: r for r in rows}
    assert sorted(by) == ["alice", "bob", "carol"], out
    for name, r in by.items():
        assert r["UID"] == str(USERS[name][0]), out
        assert r["CREATED"], out
    assert "developer" in by["alice"]["ROLES"] and "reviewer" in by["alice"]["ROLES"], out
    assert by["bob"]["ROLES"] == "reviewer", out
    assert by["carol"]["ROLES"] == "admin", out
    # --json says the same thing in fields.
    users = user_map(b)
    for name in ("alice", "bob", "carol"):
        assert users[name]["uid"] == USERS[name][0]


def test_role_list_table(id_broker):
    b = id_broker(CONFIG_ROLES)
    ok(adm(b, "role", "create", "anth", "--permission", "read:key/anthropic*",
           "--permission", "write:key/anthropic-dev"))
    ok(adm(b, "user", "add", "alice", "--role", "developer", "--role", "anth"))
    ok(adm(b, "user", "add", "bob", "--role", "reviewer", "--role", "ops"))
    ok(adm(b, "user", "add", "carol", "--role", "admin", "--role", "anth"))
    out = ok(adm(b, "role", "list"))
    cols, rows = table(out, "ROLE")
    assert cols == ["ROLE", "SOURCE", "USERS", "PERMISSIONS"], out
    by = {r["ROLE"]: r for r in rows}
    assert sorted(by) == ["admin", "anth", "developer", "ops", "reviewer"], out
    want_source = {"admin": "builtin", "developer": "builtin", "reviewer": "config",
                   "ops": "config", "anth": "cli"}
    for name, src in want_source.items():
        assert by[name]["SOURCE"] == src, out
    # USERS holds the grantees or their number.
    assert by["anth"]["USERS"] == "2" or (
        "alice" in by["anth"]["USERS"] and "carol" in by["anth"]["USERS"]), out
    assert by["ops"]["USERS"] in ("1", "bob"), out
    assert "read:key/anthropic*" in by["anth"]["PERMISSIONS"], out
    assert "write:key/anthropic-dev" in by["anth"]["PERMISSIONS"], out
    for p in ("read", "write", "execute"):
        assert p in by["developer"]["PERMISSIONS"], out
    # --json agrees.
    roles = role_map(b)
    check_role_object(roles["anth"], "anth", "cli",
                      ["read:key/anthropic*", "write:key/anthropic-dev"], ["alice", "carol"])
    check_role_object(roles["ops"], "ops", "config", ["read:key/ops-*"], ["bob"])
    check_role_object(roles["admin"], "admin", "builtin", ["*"], ["carol"])


def test_show_human(id_broker):
    b = id_broker()
    ok(adm(b, "role", "create", "anth", "--permission", "read:key/anthropic*"))
    ok(adm(b, "user", "add", "alice", "--role", "anth"))
    out = ok(adm(b, "user", "show", "alice"))
    assert "alice" in out and "2001" in out and "anth" in out, out
    assert "{" not in out, out
    out = ok(adm(b, "role", "show", "anth"))
    assert "read:key/anthropic*" in out and "alice" in out and "cli" in out, out
    assert "{" not in out, out


def test_empty_user_list(id_broker):
    b = id_broker()
    assert listing(as_json(adm(b, "user", "list", "--json")), "users") == []
    out = ok(adm(b, "user", "list"))
    lines = [l for l in out.splitlines() if l.strip()]
    # Either just the header or a sentence saying there is nobody; never JSON.
    assert "{" not in out, out
    assert len(lines) <= 1, out
