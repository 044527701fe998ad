"""
keywarden setup claude: Claude Code's settings wired to keywarden (apiKeyHelper,
the PreToolUse hook, permissions.deny mirrors of the policy), merged into what
is there, through the real CLI.

Runs are as alice (a real uid under setpriv) with a HOME of the test's own that
she owns, and a keywarden config of hers (KEYWARDEN_CONFIG): root would hide
mode and ownership mistakes.  The cases root is for (--system, rewriting a
user's file under sudo) say so.  The last test has the real Claude Code CLI
(test_claude_code.py installs it) read the file written here and fetch its key
through the apiKeyHelper it names.
"""
import json
import os
import shutil
import stat
import tempfile

import pytest

from conftest import CLI_BIN, clean_env
from users import USERS, id_broker, ok, run_as, run_as_user  # noqa: F401
from test_claude_code import (KEY, claude, claude_env, messages, run_claude,  # noqa: F401
                              server, REPLY)

SELF = os.path.realpath(CLI_BIN)
HELPER = SELF + " key get anthropic"
HOOK = SELF + " hook claude"
HOOK_ENTRY = {"matcher": "*", "hooks": [{"type": "command", "command": HOOK, "timeout": 30}]}
# The default deniedPaths and excludePatterns (common/config_schema.c), as rules.
DEFAULT_DENY = [
    "Read(//etc/**)", "Edit(//etc/**)", "Read(//root/**)", "Edit(//root/**)",
    "Read(~/.ssh/**)", "Edit(~/.ssh/**)",
    "Read(//**/.env)", "Edit(//**/.env)", "Read(//**/.env.*)", "Edit(//**/.env.*)",
    "Read(//**/secrets.json)", "Edit(//**/secrets.json)",
    "Read(//**/credentials.json)", "Edit(//**/credentials.json)",
    "Read(//**/*.key)", "Edit(//**/*.key)", "Read(//**/*.pem)", "Edit(//**/*.pem)",
    "Read(//**/id_rsa*)", "Edit(//**/id_rsa*)",
]
# PreToolUse decides tool calls, PostToolUse redacts their output, UserPromptSubmit
# stops a prompt holding a secret: the same command answers each.
PROMPT_ENTRY = {"hooks": HOOK_ENTRY["hooks"]}
EXPECTED_HOOKS = {"PreToolUse": [HOOK_ENTRY], "PostToolUse": [HOOK_ENTRY],
                  "UserPromptSubmit": [PROMPT_ENTRY]}
HOOK_ADDED = ["hook %s: added %s" % (e, HOOK)
              for e in ("PreToolUse", "PostToolUse", "UserPromptSubmit")]
EXPECTED_FRESH = {"apiKeyHelper": HELPER, "hooks": EXPECTED_HOOKS,
                  "permissions": {"deny": DEFAULT_DENY}}


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def owner(path):
    st = os.lstat(path)
    return (st.st_uid, st.st_gid)


class Home:
    """A user's HOME (0700, theirs) under a 0755 directory, and their config."""

    def __init__(self, user="alice", config=None):
        self.user = user
        self.root = tempfile.mkdtemp(prefix="kwsetup", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.home = self.mkdir("home", 0o700)
        self.config = os.path.join(self.home, "keywarden.json")
        if config is not None:
            self.put(self.config, json.dumps(config))
        self.claude_dir = os.path.join(self.home, ".claude")
        self.settings = os.path.join(self.claude_dir, "settings.json")
        self.backup = self.settings + ".keywarden-backup"

    def mkdir(self, rel, m):
        p = os.path.join(self.root, rel)
        os.makedirs(p, exist_ok=True)
        os.chown(p, *USERS[self.user])
        os.chmod(p, m)
        return p

    def put(self, path, text, m=0o600):
        """Write path (its missing parents made hers, 0700)."""
        d = os.path.dirname(path)
        if not os.path.isdir(d):
            os.makedirs(d)
            os.chown(d, *USERS[self.user])
            os.chmod(d, 0o700)
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, *USERS[self.user])
        os.chmod(path, m)
        return path

    def env(self, extra=None):
        e = clean_env({"HOME": self.home, "KEYWARDEN_CONFIG": self.config},
                      drop=("CLAUDE_CONFIG_DIR",))
        e.update(extra or {})
        return e

    def setup(self, *args, user=None, env=None):
        return run_as_user(user or self.user, [CLI_BIN, "setup", "claude"] + list(args),
                           self.env(env), cwd=self.home)

    def read(self, path=None):
        with open(path or self.settings) as f:
            return json.load(f)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def home():
    h = Home()
    yield h
    h.cleanup()


def lines(cp):
    assert cp.returncode == 0, (cp.returncode, cp.stdout, cp.stderr)
    assert cp.stderr == "", cp.stderr
    return cp.stdout.splitlines()


def as_json(cp, rc=0):
    assert cp.returncode == rc, (cp.returncode, cp.stdout, cp.stderr)
    return json.loads(cp.stdout)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


# --------------------------------------------------------------------------
# A fresh user, and merging
# --------------------------------------------------------------------------

def test_fresh_user_gets_the_file_and_a_private_directory(home):
    assert not os.path.exists(home.claude_dir)
    out = lines(home.setup())
    assert mode(home.claude_dir) == 0o700 and owner(home.claude_dir) == USERS["alice"]
    assert mode(home.settings) == 0o600 and owner(home.settings) == USERS["alice"]
    assert home.read() == EXPECTED_FRESH
    assert out[0] == "apiKeyHelper: set to " + HELPER, out
    assert out[1:4] == HOOK_ADDED, out
    assert out[4:-1] == ["permissions.deny: added " + r for r in DEFAULT_DENY], out
    assert out[-1] == "wrote " + home.settings, out
    # Nothing was there: no backup, and no temporary file left behind.
    assert sorted(os.listdir(home.claude_dir)) == ["settings.json"]
    assert read_bytes(home.settings).endswith(b"}\n")


def test_merge_keeps_what_is_there(home):
    before = {
        "$schema": "https://json.schemastore.org/claude-code-settings.json",
        "model": "opus",
        "env": {"FOO": "1"},
        "apiKeyHelper": "echo sk-ant-api03-NOT-A-REAL-KEY",
        "hooks": {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": "/usr/bin/logger x"}]},
                {"matcher": "*", "hooks": [{"type": "command",
                                            "command": "/opt/old/bin/keywarden hook claude",
                                            "timeout": 30}]},
            ],
            "PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "fmt"}]}],
        },
        "permissions": {"allow": ["Bash(ls)"],
                        "deny": ["Bash(curl *)", "Read(//etc/**)", "Read(./secret.txt)"]},
    }
    text = json.dumps(before, indent=4)
    home.put(home.settings, text, m=0o640)

    out = lines(home.setup())
    after = home.read()
    # Unrelated keys as they were, in their order.
    assert list(after) == list(before), list(after)
    for k in ("$schema", "model", "env"):
        assert after[k] == before[k], k
    # The user's PostToolUse hook stays first; keywarden's joins it.
    assert after["hooks"]["PostToolUse"] == before["hooks"]["PostToolUse"] + [HOOK_ENTRY]
    assert after["permissions"]["allow"] == ["Bash(ls)"]
    # The helper is ours; the old one is not shown (it may hold a key).
    assert after["apiKeyHelper"] == HELPER
    assert "sk-ant" not in cp_text(out)
    assert ("apiKeyHelper: was another command (not shown: it may hold a key), now " +
            HELPER) in out, out
    # The other hook stays; the stale keywarden hook now runs this keywarden: no second entry.
    pre = after["hooks"]["PreToolUse"]
    assert pre[0] == before["hooks"]["PreToolUse"][0]
    assert pre[1] == HOOK_ENTRY and len(pre) == 2, pre
    assert "hook PreToolUse: was /opt/old/bin/keywarden hook claude, now " + HOOK in out, out
    # The user's deny rules first, as they were; ours after, each once.
    deny = after["permissions"]["deny"]
    assert deny[:3] == before["permissions"]["deny"], deny
    assert sorted(deny[3:]) == sorted(r for r in DEFAULT_DENY if r != "Read(//etc/**)"), deny
    assert "permissions.deny: added Read(//etc/**)" not in out
    # The file keeps its mode and owner; the old one is the backup, 0600.
    assert mode(home.settings) == 0o640 and owner(home.settings) == USERS["alice"]
    assert read_bytes(home.backup) == text.encode()
    assert mode(home.backup) == 0o600 and owner(home.backup) == USERS["alice"]
    assert out[-2:] == ["backup: " + home.backup, "wrote " + home.settings], out
    assert sorted(os.listdir(home.claude_dir)) == ["settings.json",
                                                    "settings.json.keywarden-backup"]


def cp_text(out):
    return "\n".join(out)


def test_a_keywarden_helper_of_another_path_is_shown_and_replaced(home):
    home.put(home.settings, json.dumps({"apiKeyHelper": "/usr/bin/keywarden key get work",
                                        "hooks": EXPECTED_HOOKS}))
    out = lines(home.setup("--key", "work"))
    assert out[0] == "apiKeyHelper: was /usr/bin/keywarden key get work, now %s key get work" % (
        SELF,), out
    assert not any(l.startswith("hook ") for l in out), out
    assert home.read()["hooks"] == EXPECTED_HOOKS


def test_second_run_changes_nothing(home):
    home.put(home.settings, json.dumps({"model": "opus"}))
    lines(home.setup())
    data, backup = read_bytes(home.settings), read_bytes(home.backup)
    st, bst = os.stat(home.settings), os.stat(home.backup)

    out = lines(home.setup())
    assert out == [home.settings + " is up to date"], out
    assert read_bytes(home.settings) == data and read_bytes(home.backup) == backup
    st2, bst2 = os.stat(home.settings), os.stat(home.backup)
    assert (st2.st_ino, st2.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), "file rewritten"
    assert (bst2.st_ino, bst2.st_mtime_ns) == (bst.st_ino, bst.st_mtime_ns), "backup rewritten"
    doc = as_json(home.setup("--json"))
    assert doc == {"file": home.settings, "changes": [], "written": False, "dry_run": False,
                   "backup": None}, doc


# --------------------------------------------------------------------------
# Files that cannot be merged into
# --------------------------------------------------------------------------

@pytest.mark.parametrize("text,problem", [
    ('{"model": "opus",', "is not valid JSON (line 1"),
    ("[1, 2]", "the top level is an array, not an object"),
    ('{"model": "a", "model": "b"}', "is not valid JSON"),
    ('{"hooks": []}', "hooks is an array, not an object"),
    ('{"hooks": {"PreToolUse": {"matcher": "*"}}}', "hooks.PreToolUse is an object, not an array"),
    ('{"hooks": {"PreToolUse": ["x"]}}', "hooks.PreToolUse[0] is a string, not an object"),
    ('{"hooks": {"PreToolUse": [{"hooks": {}}]}}',
     "hooks.PreToolUse[0].hooks is an object, not an array"),
    ('{"permissions": ["Read"]}', "permissions is an array, not an object"),
    ('{"permissions": {"deny": "Read(//etc/**)"}}', "permissions.deny is a string, not an array"),
    ('{"apiKeyHelper": 7}', "apiKeyHelper is a number, not a string"),
    ('{"env": ["A=1"]}', "env is an array, not an object"),
], ids=["syntax", "array", "duplicate", "hooks", "pretooluse", "entry", "entry-hooks",
        "permissions", "deny", "helper", "env"])
def test_a_file_that_cannot_be_merged_is_refused_untouched(home, text, problem):
    home.put(home.settings, text)
    for extra in ((), ("--dry-run",)):
        cp = home.setup(*extra)
        assert cp.returncode == 2, (cp.returncode, cp.stdout, cp.stderr)
        assert cp.stdout == "", cp.stdout
        err = cp.stderr.splitlines()
        assert len(err) == 1 and err[0].startswith(
            "keywarden: setup claude: %s" % home.settings), cp.stderr
        assert problem in err[0] and "nothing was changed" in err[0], err
        assert read_bytes(home.settings) == text.encode()
        assert os.listdir(home.claude_dir) == ["settings.json"], "a backup or a temp file"
    doc = as_json(home.setup("--json"), rc=2)
    assert doc["error"]["code"] == "config" and problem in doc["error"]["message"], doc


def test_a_write_that_fails_is_status_1_and_leaves_the_file(home):
    text = json.dumps({"model": "opus"})
    home.put(home.settings, text)
    os.chmod(home.claude_dir, 0o500)        # alice may read, not write, her directory
    cp = home.setup()
    assert cp.returncode == 1, (cp.returncode, cp.stdout, cp.stderr)
    assert cp.stderr.startswith("keywarden: setup claude: cannot write "), cp.stderr
    assert read_bytes(home.settings) == text.encode()
    assert os.listdir(home.claude_dir) == ["settings.json"]


# --------------------------------------------------------------------------
# --dry-run and --json
# --------------------------------------------------------------------------

def test_dry_run_says_the_same_and_writes_nothing(home):
    out = lines(home.setup("--dry-run"))
    assert not os.path.exists(home.claude_dir), "--dry-run made the directory"
    assert out[0] == "apiKeyHelper: would be set to " + HELPER, out
    assert out[1:4] == [l.replace(": added", ": would add") for l in HOOK_ADDED], out
    assert out[4:-1] == ["permissions.deny: would add " + r for r in DEFAULT_DENY], out
    assert out[-1] == "would write " + home.settings, out

    # On an existing file: the same changes a real run then makes, in JSON too.
    text = json.dumps({"apiKeyHelper": "/opt/kw/keywarden key get anthropic",
                       "permissions": {"deny": ["Read(//etc/**)"]}})
    home.put(home.settings, text)
    dry = as_json(home.setup("--dry-run", "--json"))
    assert read_bytes(home.settings) == text.encode()
    assert os.listdir(home.claude_dir) == ["settings.json"]
    assert dry["dry_run"] is True and dry["written"] is False and dry["backup"] is None, dry
    human = lines(home.setup("--dry-run"))
    assert human[0] == "apiKeyHelper: is /opt/kw/keywarden key get anthropic, would be " + HELPER
    real = as_json(home.setup("--json"))
    assert real["changes"] == dry["changes"], (real, dry)
    assert real["written"] is True and real["dry_run"] is False, real
    assert real["backup"] == home.backup and read_bytes(home.backup) == text.encode()


def test_json_shape(home):
    doc = as_json(home.setup("--json"))
    assert set(doc) == {"file", "changes", "written", "dry_run", "backup"}, doc
    assert doc["file"] == home.settings and doc["written"] is True and doc["backup"] is None
    assert doc["changes"][0] == {"setting": "apiKeyHelper", "action": "set", "value": HELPER}
    assert doc["changes"][1:4] == [{"setting": "hooks." + e, "action": "added", "value": HOOK}
                                   for e in ("PreToolUse", "PostToolUse", "UserPromptSubmit")]
    assert doc["changes"][4:] == [{"setting": "permissions.deny", "action": "added", "value": r}
                                  for r in DEFAULT_DENY]
    # --json before the command means the same.
    cp = run_as_user("alice", [CLI_BIN, "--json", "setup", "claude", "--dry-run"], home.env(),
                     cwd=home.home)
    assert as_json(cp)["changes"] == []


# --------------------------------------------------------------------------
# The mirrors follow the configuration
# --------------------------------------------------------------------------

def test_mirrors_follow_the_config():
    h = Home(config={"security": {
        "deniedPaths": ["/srv/secret", "~/.aws", "/srv/trailing/", "./local", "/home/*/.gnupg"],
        "excludePatterns": ["**/.env", "*.p12", "/var/lib/*.db", "config/prod.yaml",
                            "**/.env"]}})
    try:
        lines(h.setup())
        deny = h.read()["permissions"]["deny"]
        assert deny == [
            "Read(//srv/secret/**)", "Edit(//srv/secret/**)",
            "Read(~/.aws/**)", "Edit(~/.aws/**)",
            "Read(//srv/trailing/**)", "Edit(//srv/trailing/**)",
            "Read(./local/**)", "Edit(./local/**)",
            "Read(//home/*/.gnupg)", "Edit(//home/*/.gnupg)",
            "Read(//**/.env)", "Edit(//**/.env)",
            "Read(//**/*.p12)", "Edit(//**/*.p12)",
            "Read(//var/lib/*.db)", "Edit(//var/lib/*.db)",
            "Read(//config/prod.yaml)", "Edit(//config/prod.yaml)",
        ], deny
        # Empty lists: no permissions key at all.
        h2 = Home(config={"security": {"deniedPaths": [], "excludePatterns": []}})
        try:
            lines(h2.setup())
            assert "permissions" not in h2.read(), h2.read()
        finally:
            h2.cleanup()
    finally:
        h.cleanup()


def test_an_unreadable_config_is_a_configuration_error(home):
    home.put(home.config, "{not json")
    cp = home.setup()
    assert cp.returncode == 2 and cp.stderr.startswith("keywarden: setup claude: "), cp
    assert not os.path.exists(home.claude_dir)


# --------------------------------------------------------------------------
# Where the file is
# --------------------------------------------------------------------------

def test_claude_config_dir_is_respected(home):
    cc = os.path.join(home.home, "cc")
    lines(home.setup(env={"CLAUDE_CONFIG_DIR": cc}))
    assert not os.path.exists(home.claude_dir)
    assert mode(cc) == 0o700 and owner(cc) == USERS["alice"]
    with open(os.path.join(cc, "settings.json")) as f:
        assert json.load(f) == EXPECTED_FRESH


def test_system_is_refused_to_alice(home):
    cp = home.setup("--system")
    assert cp.returncode == 1, (cp.returncode, cp.stdout, cp.stderr)
    assert cp.stdout == ""
    assert cp.stderr.startswith("keywarden: setup claude: --system writes Claude Code's "
                                "managed settings in /etc/claude-code/managed-settings.d, "
                                "which only root may change"), cp.stderr
    assert "--managed-dir" in cp.stderr
    assert not os.path.exists("/etc/claude-code/managed-settings.d/keywarden.json")


def test_system_with_managed_dir_as_root(home):
    """root, staging the managed file: a directory 0755 and a file 0644 everyone can read."""
    d = os.path.join(home.root, "stage", "etc", "claude-code", "managed-settings.d")
    out = lines(home.setup("--system", "--managed-dir", d, user="root"))
    path = os.path.join(d, "keywarden.json")
    assert out[-1] == "wrote " + path, out
    assert mode(d) == 0o755 and mode(os.path.dirname(d)) == 0o755
    assert mode(path) == 0o644 and owner(path) == (0, 0)
    assert home.read(path) == EXPECTED_FRESH
    # alice (every user's Claude Code) reads it.
    cp = run_as_user("alice", ["cat", path], clean_env(), cwd="/")
    assert cp.returncode == 0 and json.loads(cp.stdout) == EXPECTED_FRESH, cp
    # Only with --system.
    cp = home.setup("--managed-dir", d, user="root")
    assert cp.returncode == 2 and "--managed-dir goes with --system" in cp.stderr, cp


def test_root_writing_a_users_settings_keeps_them_hers(home):
    """Under sudo HOME may stay the user's: what root makes or rewrites there stays hers."""
    lines(home.setup(user="root"))
    assert owner(home.claude_dir) == USERS["alice"] and mode(home.claude_dir) == 0o700
    assert owner(home.settings) == USERS["alice"] and mode(home.settings) == 0o600
    home.put(home.settings, json.dumps({"model": "opus"}), m=0o644)
    lines(home.setup(user="root"))
    assert owner(home.settings) == USERS["alice"] and mode(home.settings) == 0o644
    assert owner(home.backup) == USERS["alice"] and mode(home.backup) == 0o600


def test_a_linked_settings_file_is_updated_where_it_leads(home):
    target = home.put(os.path.join(home.home, "dotfiles", "claude.json"),
                      json.dumps({"model": "opus"}))
    os.makedirs(home.claude_dir)
    os.chown(home.claude_dir, *USERS["alice"])
    os.symlink(target, home.settings)
    out = lines(home.setup())
    assert out[-1] == "wrote %s (through its link, to %s)" % (home.settings, target), out
    assert os.path.islink(home.settings) and os.readlink(home.settings) == target
    assert home.read(target)["model"] == "opus" and home.read(target)["apiKeyHelper"] == HELPER
    assert os.path.exists(target + ".keywarden-backup")


# --------------------------------------------------------------------------
# The real Claude Code reads what was written
# --------------------------------------------------------------------------

def test_claude_code_uses_the_written_settings(claude, id_broker, server):  # noqa: F811
    """alice's settings from `setup claude` alone: claude runs the apiKeyHelper
    they name, which asks the broker for the key, and sends that key."""
    b = id_broker()
    ok(run_as(b, "root", "admin", "user", "add", "alice", "--role", "developer"))
    assert ok(run_as(b, "root", "key", "set", "anthropic", input=KEY + "\n")).startswith(
        "anthropic: version 1 is current")
    h = Home()
    try:
        work = h.mkdir("home/work", 0o700)
        env = {"KEYWARDEN_SOCKET": b.sock}
        lines(h.setup(env=env))
        assert h.read()["apiKeyHelper"] == HELPER
        cp = run_claude(claude, "alice", h.home, work, server,
                        dict(env, KEYWARDEN_CONFIG=h.config))
        reqs = messages(server)
        assert reqs, "claude sent no request:\n%s\n%s" % (cp.stdout, cp.stderr)
        for r in reqs:
            assert r["x-api-key"] == KEY and r["status"] == 200, r
        assert cp.returncode == 0 and REPLY in cp.stdout, (cp.stdout, cp.stderr)
        rows = b.audit_rows("action = 'key.get' AND user = 'alice' AND result = 'success'")
        assert rows, "the key did not come from the broker"
        # Claude Code did not report the settings file as invalid.
        assert "settings" not in cp.stderr.lower(), cp.stderr
    finally:
        h.cleanup()


def test_contrib_sample_is_what_setup_writes(home):
    """contrib/claude-code/settings.json: setup's file for the default configuration,
    with keywarden installed as /usr/local/bin/keywarden."""
    sample = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "claude-code",
                          "settings.json")
    lines(home.setup())
    with open(sample) as f:
        want = f.read().replace("/usr/local/bin/keywarden ", SELF + " ")
    assert read_bytes(home.settings).decode() == want


# --------------------------------------------------------------------------
# --sandbox: Claude Code's own sandbox settings agree with keywarden's
# --------------------------------------------------------------------------

SANDBOX_ON = {"security": {
    "sandbox": {"enabled": True, "allowNetwork": True, "allowExec": False},
    "network": {"allowedHosts": ["api.anthropic.com"], "allowedDomains": ["example.org"]},
}}


def sandbox_home(config):
    return Home(config=config)


def test_sandbox_block_is_written_from_the_config():
    h = sandbox_home(SANDBOX_ON)
    try:
        out = lines(h.setup("--sandbox"))
        sb = h.read()["sandbox"]
        assert sb == {"enabled": True, "allowUnsandboxedCommands": False,
                      "network": {"allowAllUnixSockets": False,
                                  "allowedDomains": ["api.anthropic.com", "example.org",
                                                     "*.example.org"]}}, sb
        # The network is allowed: WebFetch is not denied.
        assert "WebFetch" not in h.read()["permissions"]["deny"]
        assert "sandbox.enabled: set to true" in out, out
        assert "sandbox.network.allowedDomains: added *.example.org" in out, out
        # A key with no Claude Code equivalent is named, not pretended.
        assert any(l.startswith("not mirrored: security.sandbox.allowExec: ") for l in out), out
        # Without --sandbox nothing of it is written (the fresh file has no "sandbox").
        h2 = sandbox_home(SANDBOX_ON)
        try:
            lines(h2.setup())
            assert "sandbox" not in h2.read()
        finally:
            h2.cleanup()
    finally:
        h.cleanup()


def test_sandbox_without_network_denies_webfetch_and_lists_no_domain():
    h = sandbox_home({"security": {"sandbox": {"enabled": True, "allowNetwork": False}}})
    try:
        doc = as_json(h.setup("--sandbox", "--json"))
        data = h.read()
        assert "WebFetch" in data["permissions"]["deny"]
        assert "allowedDomains" not in data["sandbox"]["network"], data["sandbox"]
        assert {"setting": "permissions.deny", "action": "added", "value": "WebFetch"} \
            in doc["changes"], doc
        assert [n["setting"] for n in doc["not_mirrored"]] == ["security.sandbox.allowExec"]
    finally:
        h.cleanup()


def test_sandbox_merge_keeps_the_users_and_is_idempotent():
    h = sandbox_home(SANDBOX_ON)
    try:
        before = {"model": "opus", "sandbox": {
            "enabled": False, "excludedCommands": ["git"], "autoAllowBashIfSandboxed": False,
            "network": {"allowedDomains": ["github.com"], "allowAllUnixSockets": True,
                        "allowLocalBinding": True}}}
        h.put(h.settings, json.dumps(before))
        out = lines(h.setup("--sandbox"))
        sb = h.read()["sandbox"]
        assert sb["excludedCommands"] == ["git"] and sb["autoAllowBashIfSandboxed"] is False
        assert sb["network"]["allowLocalBinding"] is True
        assert sb["network"]["allowedDomains"] == ["github.com", "api.anthropic.com",
                                                   "example.org", "*.example.org"], sb
        # Moved the strict way, and shown with what was there.
        assert sb["enabled"] is True and sb["network"]["allowAllUnixSockets"] is False
        assert "sandbox.enabled: was false, now true" in out, out
        assert "sandbox.network.allowAllUnixSockets: was true, now false" in out, out
        assert json.loads(read_bytes(h.backup)) == before

        data = read_bytes(h.settings)
        again = lines(h.setup("--sandbox"))
        assert again[-1] == h.settings + " is up to date", again
        assert read_bytes(h.settings) == data
    finally:
        h.cleanup()


def test_sandbox_dry_run_writes_nothing():
    h = sandbox_home(SANDBOX_ON)
    try:
        text = json.dumps({"sandbox": {"excludedCommands": ["git"]}})
        h.put(h.settings, text)
        out = lines(h.setup("--sandbox", "--dry-run"))
        assert "sandbox.enabled: would be set to true" in out, out
        assert out[-1] == "would write " + h.settings, out
        assert read_bytes(h.settings) == text.encode()
        assert os.listdir(h.claude_dir) == ["settings.json"]
        dry = as_json(h.setup("--sandbox", "--dry-run", "--json"))
        assert dry["written"] is False and read_bytes(h.settings) == text.encode()
        real = as_json(h.setup("--sandbox", "--json"))
        assert real["changes"] == dry["changes"] and real["written"] is True
    finally:
        h.cleanup()


def test_sandbox_off_in_the_config_leaves_claude_codes_switch():
    h = sandbox_home({"security": {"sandbox": {"enabled": False}}})
    try:
        h.put(h.settings, json.dumps({"sandbox": {"enabled": True}}))
        doc = as_json(h.setup("--sandbox", "--json"))
        assert h.read()["sandbox"]["enabled"] is True      # never loosened
        assert "security.sandbox.enabled" in [n["setting"] for n in doc["not_mirrored"]]
        assert not any(c["setting"] == "sandbox.enabled" for c in doc["changes"]), doc
    finally:
        h.cleanup()


@pytest.mark.parametrize("text,problem", [
    ('{"sandbox": true}', "sandbox is a boolean, not an object"),
    ('{"sandbox": {"enabled": "yes"}}', "sandbox.enabled is a string, not a boolean"),
    ('{"sandbox": {"network": []}}', "sandbox.network is an array, not an object"),
    ('{"sandbox": {"network": {"allowedDomains": "x.org"}}}',
     "sandbox.network.allowedDomains is a string, not an array"),
], ids=["sandbox", "enabled", "network", "domains"])
def test_sandbox_that_cannot_be_merged_is_refused_untouched(text, problem):
    h = sandbox_home(SANDBOX_ON)
    try:
        h.put(h.settings, text)
        doc = as_json(h.setup("--sandbox", "--json"), rc=2)
        assert doc["error"]["code"] == "config" and problem in doc["error"]["message"], doc
        assert read_bytes(h.settings) == text.encode()
        # Without --sandbox the block is not read, so not refused.
        as_json(h.setup("--json"))
    finally:
        h.cleanup()


def test_claude_code_accepts_the_sandbox_settings(claude, id_broker, server):  # noqa: F811
    """The settings `setup claude --sandbox` writes for a policy that requires
    the sandbox: the real Claude Code reads them without complaint and still
    starts where its own sandbox cannot (no bubblewrap here, and none can
    nest inside `keywarden run`): keywarden's kernel sandbox is the gate."""
    b = id_broker()
    ok(run_as(b, "root", "admin", "user", "add", "alice", "--role", "developer"))
    ok(run_as(b, "root", "key", "set", "anthropic", input=KEY + "\n"))
    h = Home(config={"security": {"sandbox": {"enabled": True}}})
    try:
        work = h.mkdir("home/work", 0o700)
        env = {"KEYWARDEN_SOCKET": b.sock}
        lines(h.setup("--sandbox", env=env))
        assert h.read()["sandbox"]["enabled"] is True
        cp = run_claude(claude, "alice", h.home, work, server,
                        dict(env, KEYWARDEN_CONFIG=h.config))
        assert cp.returncode == 0 and REPLY in cp.stdout, (cp.stdout, cp.stderr)
        assert "settings" not in cp.stderr.lower(), cp.stderr
    finally:
        h.cleanup()


# --------------------------------------------------------------------------
# --proxy: Claude Code talks to the API proxy and never holds the key
# --------------------------------------------------------------------------

PROXY_ON = {"broker": {"apiProxy": {"enabled": True, "listen": "127.0.0.1:18788"}}}
PROXY_HELPER = HELPER + " --proxy"
PROXY_URL = "http://127.0.0.1:18788"


def test_proxy_sets_the_helper_and_base_url_and_drops_keys():
    h = Home(config=PROXY_ON)
    try:
        secret = "sk-ant-api03-" + "settingsKeyNotShown_" * 4
        h.put(h.settings, json.dumps({"model": "opus", "env": {
            "FOO": "1", "ANTHROPIC_API_KEY": secret, "ANTHROPIC_AUTH_TOKEN": "tok-" + secret}}))
        cp = h.setup("--proxy")
        out = lines(cp)
        assert secret not in cp.stdout + cp.stderr, "a key in setup's output"
        doc = h.read()
        assert doc["apiKeyHelper"] == PROXY_HELPER, doc
        assert doc["env"] == {"FOO": "1", "ANTHROPIC_BASE_URL": PROXY_URL}, doc
        assert doc["model"] == "opus" and doc["hooks"] == EXPECTED_HOOKS, doc
        assert out[0] == "apiKeyHelper: set to " + PROXY_HELPER, out
        assert "env.ANTHROPIC_API_KEY: removed (value not shown)" in out, out
        assert "env.ANTHROPIC_AUTH_TOKEN: removed (value not shown)" in out, out
        assert "env.ANTHROPIC_BASE_URL: set to " + PROXY_URL in out, out
        # The old file, key and all, stays only in the private backup.
        assert mode(h.backup) == 0o600 and secret in read_bytes(h.backup).decode()
        assert secret not in read_bytes(h.settings).decode()

        # Idempotent, and --json names each change without a value it removed.
        assert lines(h.setup("--proxy")) == [h.settings + " is up to date"]
        # Back without --proxy: the real key's helper, and no base URL naming the proxy.
        doc = as_json(h.setup("--json"))
        assert {"setting": "env.ANTHROPIC_BASE_URL", "action": "removed",
                "value": PROXY_URL} in doc["changes"], doc
        assert h.read()["apiKeyHelper"] == HELPER and h.read()["env"] == {"FOO": "1"}
        # A base URL of the user's own (not the proxy's) is left alone.
        mine = dict(h.read(), env={"ANTHROPIC_BASE_URL": "https://gateway.example"})
        h.put(h.settings, json.dumps(mine))
        assert lines(h.setup()) == [h.settings + " is up to date"]
        # --proxy replaces it and shows what it was (a URL is no secret).
        out = lines(h.setup("--proxy", "--dry-run"))
        assert ("env.ANTHROPIC_BASE_URL: is https://gateway.example, would be " + PROXY_URL
                in out), out
        assert h.read() == mine, "--dry-run wrote"
    finally:
        h.cleanup()


def test_proxy_base_url_follows_listen_and_warns_when_off():
    h = Home(config={"broker": {"apiProxy": {"enabled": False, "listen": "[::1]:9000"}}})
    try:
        cp = h.setup("--proxy", "--key", "work")
        assert cp.returncode == 0, cp
        assert "broker.apiProxy.enabled is false" in cp.stderr, cp.stderr
        assert len(cp.stderr.splitlines()) == 1, cp.stderr
        doc = h.read()
        assert doc["apiKeyHelper"] == SELF + " key get work --proxy", doc
        assert doc["env"] == {"ANTHROPIC_BASE_URL": "http://[::1]:9000"}, doc
    finally:
        h.cleanup()


def test_contrib_proxy_sample_is_what_setup_writes():
    """contrib/claude-code/settings-proxy.json: setup claude --proxy's file with the
    proxy on at its default address, keywarden installed as /usr/local/bin/keywarden."""
    h = Home(config={"broker": {"apiProxy": {"enabled": True}}})
    try:
        sample = os.path.join(os.path.dirname(__file__), "..", "..", "contrib",
                              "claude-code", "settings-proxy.json")
        lines(h.setup("--proxy"))
        with open(sample) as f:
            want = f.read().replace("/usr/local/bin/keywarden ", SELF + " ")
        assert read_bytes(h.settings).decode() == want
    finally:
        h.cleanup()
