"""The command-line contract every command keeps (keywarden(1)):

- `--help` after any command or subcommand prints its usage and options on
  stdout and exits 0; the commands are the ones the bash completion knows;
- a usage error is `keywarden CMD: reason`, then the usage line, on stderr,
  exit 2, before any broker is asked;
- with `--json`, exactly one JSON value on stdout, success or failure
  (failures as {"error": {"code", "message"}});
- a configuration key that is accepted but not enforced yet is reported by
  `keywardend --check-config`, at broker start, by `config set` and by
  `config list`, and the schema's enforced flags match the code.
"""
import json
import os
import re

import pytest

from conftest import clean_env, run_broker_once, run_cli
from users import fails, id_broker, run_as  # noqa: F401

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPLETION = os.path.join(ROOT, "contrib", "bash-completion", "keywarden")
SOC2 = "is accepted but not enforced yet (no SOC 2 reporting)"


# --------------------------------------------------------------------------
# The commands: the completion's lists, and what the tables print
# --------------------------------------------------------------------------

def completion_lists():
    """The _keywarden_NAME="words" lists of the completion script."""
    with open(COMPLETION) as f:
        text = f.read()
    return {m.group(1): m.group(2).split()
            for m in re.finditer(r'^_keywarden_(\w+)="([^"\\]*)"$', text, re.M)}


def completion_tree():
    """{command path (tuple): [subcommands]} for every group, from the completion."""
    lists = completion_lists()
    tree = {(): lists["commands"]}
    # A group's subcommands are _keywarden_GROUP (admin's: admin_groups).
    for group in lists["commands"]:
        name = "admin_groups" if group == "admin" else group
        if name in lists:
            tree[(group,)] = lists[name]
    # admin's words are groups, but for a command of its own (admin usage).
    for sub in lists["admin_groups"]:
        if "admin_" + sub in lists:
            tree[("admin", sub)] = lists["admin_" + sub]
    return tree


def no_broker_env(tmp):
    """An environment in which no broker answers and the config file is absent."""
    return clean_env({"KEYWARDEN_SOCKET": os.path.join(tmp, "none.sock"),
                      "KEYWARDEN_CONFIG": os.path.join(tmp, "absent.json")})


def help_of(path, env):
    cp = run_cli(list(path) + ["--help"], env=env)
    assert cp.returncode == 0, (path, cp.stdout, cp.stderr)
    return cp.stdout


def listed_commands(text, top):
    """The command names a --help lists: `  name  help` at the top, `  name usage` in a group."""
    lines = text.split("\nCommands:\n", 1)[1].splitlines()
    pat = r"^  (\S+)\s{2,}\S" if top else r"^  ([a-z][\w-]*)(?: |$)"
    return [m.group(1) for m in (re.match(pat, l) for l in lines) if m]


def cli_tree(env):
    """{path: [subcommands]} for every group, from the tables (keywarden --help)."""
    tree = {(): listed_commands(help_of((), env), top=True)}
    todo = [(c,) for c in tree[()]]
    while todo:
        path = todo.pop(0)
        text = help_of(path, env)
        if "usage: keywarden %s COMMAND" % " ".join(path) in text:
            tree[path] = listed_commands(text, top=False)
            todo += [path + (s,) for s in tree[path]]
    return tree


def all_paths(tree):
    """Every command path: the groups and their leaves."""
    paths = []
    for group, subs in sorted(tree.items()):
        paths += [group + (s,) for s in subs]
    return paths


TREE = completion_tree()
# The commands that run a command line of their own (KW_CMD_RAW).
RAW = (("exec",), ("run",))
PATHS = all_paths(TREE)
LEAVES = [p for p in PATHS if p not in TREE]


def test_completion_agrees_with_the_command_tables(tmpdir_short):
    """The completion offers exactly the commands the CLI's tables hold, group by group."""
    got = cli_tree(no_broker_env(tmpdir_short))
    assert got == TREE, "completion %r\nCLI tables %r" % (TREE, got)
    assert len(LEAVES) >= 40, LEAVES


def test_completion_knows_every_configuration_key(tmpdir_short):
    """Its fallback key list (used when `config list` fails) is the schema's."""
    cp = run_cli(["config", "list", "--json"], env=no_broker_env(tmpdir_short))
    keys = set(json.loads(cp.stdout))
    with open(COMPLETION) as f:
        text = f.read()
    static = set(re.search(r'_keywarden_static_keys="(.*?)"', text, re.S).group(1)
                 .replace("\\", " ").split())
    assert static == keys, (static - keys, keys - static)


def usage_line(text, path):
    want = "usage: keywarden %s" % " ".join(path)
    lines = [l for l in text.splitlines() if l == want or l.startswith(want + " ")]
    assert lines, "no %r line in:\n%s" % (want, text)
    return lines[0]


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_help_exits_0_with_the_usage(tmpdir_short, path):
    env = no_broker_env(tmpdir_short)
    for flag in ("--help", "-h"):
        cp = run_cli(list(path) + [flag], env=env, cwd=tmpdir_short)
        assert cp.returncode == 0, (path, flag, cp.stdout, cp.stderr)
        assert cp.stderr == "", cp.stderr
        line = usage_line(cp.stdout, path)
    # --help wins over whatever else is on the line (but not after "--").
    # exec and run take CMD's command line: options end at CMD, so a --help after it is CMD's.
    if path not in TREE and path not in RAW:
        cp = run_cli(list(path) + ["some-arg", "--bogus", "--help"], env=env, cwd=tmpdir_short)
        assert cp.returncode == 0 and usage_line(cp.stdout, path), cp
    # Every leaf that prints data says --json in its usage line; exec prints none.
    if path in LEAVES:
        assert ("[--json]" in line) == (path != ("exec",)), line


def required_words(usage):
    """The arguments a usage line demands (outside [...], before any '(' note)."""
    text = usage.split("  (")[0]
    words, depth = [], 0
    for w in text.split():
        if depth == 0 and not w.startswith("[") and w not in ("|", "..."):
            words.append(w)
        depth += w.count("[") - w.count("]")
    return words


def usage_of(path, env):
    return usage_line(help_of(path, env), path)


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_usage_errors_name_the_command_and_what_is_wrong(tmpdir_short, path):
    """An unknown option, and (where one is needed) a missing argument: two lines on
    stderr, `keywarden CMD: reason` then the usage line, exit 2, nothing on stdout."""
    env = no_broker_env(tmpdir_short)
    usage = usage_of(path, env)
    name = "keywarden " + " ".join(path)

    # In a directory of the test's own: a command that wrongly ran would write there.
    def usage_error(args, reason_re):
        cp = run_cli(list(path) + args, env=env, cwd=tmpdir_short)
        assert cp.returncode == 2, (args, cp.stdout, cp.stderr)
        assert cp.stdout == "", cp.stdout
        lines = cp.stderr.splitlines()
        assert len(lines) == 2, cp.stderr
        assert lines[0].startswith(name + ": "), lines
        assert re.match(reason_re, lines[0][len(name) + 2:]), lines[0]
        assert lines[1] == usage, (lines[1], usage)
        return lines[0]

    usage_error(["--no-such-option"], r"unknown option '--no-such-option'$")
    assert os.listdir(tmpdir_short) == [], "a usage error did something"
    demanded = [w for w in required_words(usage[len("usage: " + name):]) if w != name]
    if demanded:
        line = usage_error([], r"missing \S")
        missing = line.split(": missing ", 1)[1].split()[0].rstrip(",")
        assert missing in demanded, (missing, demanded)
        # With --json too, and then stdout has the error as JSON.
        # exec prints no data; run prints data only with --check.
        cp = run_cli(list(path) + ["--json"] * (path not in RAW), env=env, cwd=tmpdir_short)
        assert cp.returncode == 2, cp
        if path not in RAW:
            doc = json.loads(cp.stdout)
            assert doc["error"]["code"] == "usage", doc
            assert doc["error"]["message"].startswith("missing " + missing), doc


def test_group_and_top_level_usage_errors(tmpdir_short):
    env = no_broker_env(tmpdir_short)
    cp = run_cli(["key"], env=env)
    fails(cp, 2)
    assert cp.stderr.startswith("keywarden key: missing COMMAND\nusage: keywarden key COMMAND")
    cp = run_cli(["admin", "user", "frobnicate"], env=env)
    fails(cp, 2)
    assert cp.stderr.startswith("keywarden admin user: unknown command 'frobnicate'\n"), cp.stderr
    assert "\n  add USER" in cp.stderr, "the group's commands follow"
    cp = run_cli(["--json", "no-such-command"], env=env)
    assert cp.returncode == 2 and cp.stderr.startswith("keywarden: unknown command"), cp
    assert json.loads(cp.stdout) == {"error": {"code": "usage",
                                               "message": "unknown command 'no-such-command'"}}


# --------------------------------------------------------------------------
# --json on every command that prints data
# --------------------------------------------------------------------------

def one_json(cp, rc=0):
    """cp exited rc and printed exactly one JSON value (and a newline) on stdout."""
    assert cp.returncode == rc, "exit %d (want %d): %s\n%s%s" % (
        cp.returncode, rc, cp.args, cp.stdout, cp.stderr)
    assert cp.stdout.endswith("\n"), repr(cp.stdout)
    doc = json.loads(cp.stdout)     # raises on a second value or on text
    if rc != 0:
        assert isinstance(doc, dict) and set(doc["error"]) == {"code", "message"}, doc
        assert doc["error"]["message"] and cp.stderr.strip(), (doc, cp.stderr)
    return doc


def test_every_data_command_prints_json(id_broker, tmpdir_short):
    b = id_broker({"security": {"audit": {"autoArchive": True}}})
    root = lambda *a, **kw: run_as(b, "root", *a, **kw)  # noqa: E731

    doc = one_json(root("admin", "user", "add", "alice", "--role", "reviewer", "--json"))
    assert doc["user"] == "alice" and doc["otpauth_uri"].startswith("otpauth://"), doc
    one_json(root("admin", "user", "add", "bob", "--json"))
    assert "alice" in [u["user"] for u in one_json(root("admin", "user", "list", "--json"))["users"]]
    assert one_json(root("admin", "user", "show", "alice", "--json"))["roles"] == ["reviewer"]
    assert one_json(root("--json", "status"))["broker"]["reachable"] is True
    assert one_json(run_as(b, "alice", "status", "--json"))["user"] == "alice"

    # check: allowed, and a denial (exit 1) that is still one object.
    assert one_json(root("check", "read", "key/anthropic", "--user", "alice", "--json"))[
        "allowed"] is True
    doc = one_json(run_as(b, "alice", "check", "write", "key/anthropic", "--json"), rc=1)
    assert doc["allowed"] is False and doc["resource"] == "key/anthropic", doc
    assert doc["error"]["code"] == "denied", doc

    # Roles and grants.
    assert one_json(root("admin", "role", "create", "ops", "--permission", "read:key/ops-*",
                         "--json"))["role"] == "ops"
    assert "ops" in [r["role"] for r in one_json(root("admin", "role", "list", "--json"))["roles"]]
    assert one_json(root("admin", "role", "show", "ops", "--json"))["permissions"] == [
        "read:key/ops-*"]
    assert "ops" in one_json(root("admin", "role", "grant", "alice", "ops", "--json"))["roles"]
    assert "ops" not in one_json(root("admin", "role", "revoke", "alice", "ops", "--json"))["roles"]
    one_json(root("admin", "role", "delete", "ops", "--json"))

    # Keys: set and rotate (value on stdin) answer in JSON too.
    doc = one_json(root("key", "set", "anthropic", "--json", input="sk-ant-api03-" + "a" * 40))
    assert doc["version"] == 1 and "sk-ant" not in json.dumps(doc), doc
    doc = one_json(root("key", "rotate", "anthropic", "--json", input="sk-ant-api03-" + "b" * 40))
    assert doc["version"] == 2, doc
    assert one_json(root("key", "get", "anthropic", "--json"))["value"] == "sk-ant-api03-" + "b" * 40
    assert [k["name"] for k in one_json(root("key", "list", "--json"))["keys"]] == ["anthropic"]
    assert one_json(root("key", "verify", "anthropic", "--json"))["ok"] is True
    doc = one_json(root("key", "import", "openai", "--from", "env:KW_TEST_IMPORT", "--json",
                        env={"KW_TEST_IMPORT": "sk-test-" + "c" * 30}))
    assert doc["version"] == 1, doc
    assert one_json(root("key", "revoke", "anthropic", "--version", "1", "--json"))[
        "destroyed"] == [1]
    doc = one_json(root("key", "get", "nosuchkey", "--json"), rc=1)
    assert doc["error"]["code"] == "not_found", doc

    # Users: lock, unlock, a new factor, export, sessions, erase.
    assert one_json(root("admin", "user", "lock", "bob", "--expires", "1h", "--json"))["user"] == "bob"
    one_json(root("admin", "user", "unlock", "bob", "--json"))
    assert one_json(root("admin", "user", "totp-reset", "bob", "--json"))[
        "otpauth_uri"].startswith("otpauth://")
    assert one_json(root("admin", "user", "export", "alice", "--json"))["audit"]
    out = os.path.join(tmpdir_short, "alice.json")
    doc = one_json(root("admin", "user", "export", "alice", "--output", out, "--json"))
    assert doc["output"] == out and doc["audit_records"] > 0, doc
    assert isinstance(one_json(root("admin", "session", "list", "--json"))["sessions"], list)
    assert one_json(root("admin", "session", "revoke", "--all", "--json"))["revoked"] == 0
    one_json(root("admin", "user", "erase", "bob", "--yes", "--json"))
    one_json(root("admin", "user", "del", "alice", "--json"))

    # The audit trail; export --json is the summary of what it wrote.
    assert isinstance(one_json(root("admin", "audit", "query", "--limit", "5", "--json")), list)
    exported = os.path.join(tmpdir_short, "audit.jsonl")
    doc = one_json(root("admin", "audit", "export", "--format", "jsonl", "--output", exported,
                        "--json"))
    with open(exported) as f:
        lines = f.read().splitlines()
    assert doc["records"] == len(lines) > 0 and doc["format"] == "jsonl", doc
    assert doc["first_seq"] == json.loads(lines[0])["seq"], doc
    assert doc["last_seq"] == json.loads(lines[-1])["seq"], doc
    assert one_json(root("admin", "audit", "verify", "--json"))["ok"] is True
    assert "pruned" in one_json(root("admin", "audit", "prune", "--json"))
    assert one_json(root("admin", "audit", "pubkey", "--json"))["public_key"]
    doc = one_json(run_cli(["admin", "audit", "keygen", "--output",
                            os.path.join(tmpdir_short, "a.key"), "--json"], env=clean_env()))
    assert doc["public_key"] and doc["secret_key_file"].endswith("a.key"), doc
    assert one_json(root("admin", "incident", "list", "--json"))["incidents"] == []
    assert one_json(root("admin", "incident", "report", "INC-000001", "--json"), rc=1)[
        "error"]["code"] == "not_found"

    # Sessions of one's own: none here, and still JSON.
    assert one_json(root("logout", "--json")) == {"id": None, "revoked": False}
    one_json(root("totp", "enroll", "--json"), rc=1)
    # exec's stdout is its command's, even under a global --json, and so is its status.
    cp = root("--json", "exec", "--key", "openai=KW_K", "--", "sh", "-c",
              'test -n "$KW_K" && echo ran; exit 3')
    assert cp.returncode == 3 and cp.stdout == "ran\n", cp
    # No broker: one object, code unreachable.
    doc = one_json(run_cli(["key", "list", "--json"], env=no_broker_env(tmpdir_short)), rc=3)
    assert doc["error"]["code"] == "unreachable", doc


def test_config_commands_print_json(tmpdir_short):
    env = no_broker_env(tmpdir_short)
    path = os.path.join(tmpdir_short, "config.json")
    doc = one_json(run_cli(["--config", path, "config", "set", "security.session.timeout",
                            "1800", "--json"], env=env))
    assert doc == {"key": "security.session.timeout", "value": 1800, "file": path,
                   "enforced": True}, doc
    doc = one_json(run_cli(["--config", path, "config", "get", "security.session.timeout",
                            "--json"], env=env))
    assert doc["value"] == 1800 and doc["enforced"] is True, doc
    doc = one_json(run_cli(["--config", path, "config", "get", "security.nope", "--json"],
                           env=env), rc=2)
    assert doc["error"]["code"] == "config", doc
    assert one_json(run_cli(["--config", path, "config", "list", "--json"], env=env))[
        "security.session.timeout"]["set"] is True


# --------------------------------------------------------------------------
# Keys accepted but not enforced yet
# --------------------------------------------------------------------------

UNENFORCED_SET = {"security": {"compliance": {"soc2": {"enabled": True}},
                               "session": {"timeout": 1800}}}


def warnings_about(text):
    return [l for l in text.splitlines() if "accepted but not enforced" in l]


def test_check_config_names_set_unenforced_keys(broker_factory):
    b = broker_factory(UNENFORCED_SET, start=False)
    cp = run_broker_once(["--config", b.config_path, "--check-config"])
    assert cp.returncode == 0, cp.stderr
    warned = warnings_about(cp.stderr)
    assert warned == ["keywardend: warning: config: security.compliance.soc2.enabled " + SOC2], cp.stderr
    assert "1 key(s) it sets are accepted but not enforced" in cp.stdout, cp.stdout
    # Even when the configuration would have the broker log errors only.
    b.write_config({"security": {"compliance": {"soc2": {"enabled": True}},
                                 "audit": {"logLevel": "error"}}})
    cp = run_broker_once(["--config", b.config_path, "--check-config"])
    assert any("security.compliance.soc2.enabled" in l for l in warnings_about(cp.stderr)), \
        cp.stderr
    # Nothing set that is not enforced: no warning, the plain line.
    b.write_config({"security": {"session": {"timeout": 1800}}})
    cp = run_broker_once(["--config", b.config_path, "--check-config"])
    assert cp.returncode == 0 and warnings_about(cp.stderr) == [], cp.stderr
    assert cp.stdout.strip() == "%s: configuration is valid" % b.config_path


def test_start_warns_about_set_unenforced_keys(broker_factory):
    b = broker_factory({"security": {"compliance": {"soc2": {"enabled": True}},
                                     "session": {"timeout": 1800},
                                     "audit": {"enabled": True}}})
    warned = warnings_about(b.stderr())
    assert "keywardend: warning: config: security.compliance.soc2.enabled " + SOC2 in warned, warned
    assert any("security.audit.enabled is accepted but not enforced (the audit trail cannot "
               "be turned off)" in l for l in warned), warned
    # Set and enforced, or not set: not named.
    assert not any("security.session.timeout" in l or "security.sandbox" in l
                   for l in warned), warned
    assert len(warned) == 2, warned
    assert b.cli("status").returncode == 0


def test_config_set_warns_and_list_marks(tmpdir_short):
    env = no_broker_env(tmpdir_short)
    path = os.path.join(tmpdir_short, "config.json")
    cp = run_cli(["--config", path, "config", "set", "security.compliance.soc2.enabled", "true"],
                 env=env)
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr == "keywarden: config set: warning: security.compliance.soc2.enabled %s\n" % SOC2
    with open(path) as f:
        assert json.load(f)["security"]["compliance"]["soc2"]["enabled"] is True, "set all the same"
    cp = run_cli(["--config", path, "config", "set", "security.session.timeout", "900"], env=env)
    assert cp.returncode == 0 and cp.stderr == "", cp.stderr

    doc = one_json(run_cli(["--config", path, "config", "list", "--json"], env=env))
    assert doc["security.compliance.soc2.enabled"] == {"value": True, "set": True, "enforced": False,
                                        "warning": "security.compliance.soc2.enabled " + SOC2}, doc
    assert doc["security.session.timeout"] == {"value": 900, "set": True, "enforced": True}
    assert doc["security.sandbox.enabled"]["enforced"] is True, "keywarden run applies it"
    assert doc["security.sandbox.enabled"]["set"] is False
    text = run_cli(["--config", path, "config", "list"], env=env).stdout
    marked = {l.split()[0] for l in text.splitlines() if l.endswith("(accepted, not enforced)")}
    assert marked == {k for k, v in doc.items() if not v["enforced"]}, marked
    assert "security.compliance.soc2.enabled" in marked and \
        "security.session.timeout" not in marked
    assert "security.readOnly" not in marked, "enforced by the policy (hook claude)"


# Enforced by construction: the one choice the key allows is what keywarden does.
ONE_CHOICE = {"security.encryption.atRest.algorithm", "security.authentication.mfa.method"}
SOURCE_DIRS = ("broker", "cli", "client", "common", "keystore", "rbac", "policy", "pam_module",
               "proxy")


def sources():
    for d in SOURCE_DIRS:
        for base, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                path = os.path.join(base, f)
                # The schema lists every key; doctor only reports what a key is set to.
                if f.endswith((".c", ".h")) and not path.endswith("common/config_schema.c") \
                        and not os.path.basename(path).startswith(("doctor", "cmd_doctor")):
                    with open(path) as fh:
                        yield path, fh.read()


def test_enforced_flags_match_the_code(tmpdir_short):
    """A key is marked enforced exactly when some code reads it by name."""
    doc = one_json(run_cli(["config", "list", "--json"], env=no_broker_env(tmpdir_short)))
    code = [text for _, text in sources()]
    read = {k for k in doc if any('"%s"' % k in t for t in code)}
    enforced = {k for k, v in doc.items() if v["enforced"]}
    assert enforced - read == ONE_CHOICE, sorted(enforced - read)
    assert read - enforced == set(), "read by the code but marked not enforced: %s" % sorted(
        read - enforced)
    assert all(v["warning"].startswith(k + " is accepted but not enforced")
               for k, v in doc.items() if not v["enforced"])
    assert 0 < len(enforced) < len(doc)
