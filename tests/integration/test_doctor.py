"""
keywarden doctor (issue 12): the security guide's checklist, run by a user
on their own machine, through the real CLI against the real broker.

Every run is as alice (a real uid through nss_wrapper) with a HOME and a
project directory of the test's own, owned by alice: problems are planted
there (keys in the environment, a .env file, ~/.bashrc, shell history and
Claude Code's settings; open modes; a missing apiKeyHelper) and doctor must
name each one's file and line without ever printing a key.  --fix must
mend modes of alice's own files only, and move a key into keywarden only
once confirmed (--yes, stdin not being a terminal), leaving her files as
they were.  Sessions come from a raw login whose token the CLI finds in its
file cache (KEYWARDEN_TOKEN_CACHE=file).
"""
import hashlib
import json
import os
import pty
import secrets
import select
import shutil
import socket
import stat
import string
import subprocess
import tempfile
import time

import pytest

from conftest import CLI_BIN, IO_TIMEOUT, assert_ok, clean_env
from users import (USERS, UserConn, id_broker, mfa_broker, ok, rows_of,  # noqa: F401
                   run_as_user, setpriv, totp)

B64URL = string.ascii_letters + string.digits + "-_"
STATUSES = {"pass", "info", "skip", "warn", "fail"}
CHECKS = ["config", "api-key.environment", "api-key.dotenv", "api-key.shell",
          "api-key.history", "api-key.claude-settings", "permissions.claude",
          "permissions.keywarden", "broker", "user", "totp", "session", "audit",
          "audit.chain", "access-control", "roles", "claude.api-key-helper", "claude.hook",
          "sensitive-data", "sandbox", "api-proxy"]


def random_key():
    return "sk-ant-api03-" + "".join(secrets.choice(B64URL) for _ in range(48))


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class Machine:
    """alice's corner of the machine: root/home (HOME, 0700) with a project
    (a git repository) in it, a runtime directory, and a keywarden config."""

    def __init__(self, b, user="alice"):
        self.b = b
        self.user = user
        self.root = tempfile.mkdtemp(prefix="kwdoc", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.home = self.dir("home", 0o700)
        self.project = self.dir("home/proj", 0o755)
        self.dir("home/proj/.git", 0o755)
        self.run = self.dir("run", 0o700)
        self.config = self.put("home/.config/keywarden/config.json",
                               json.dumps({"broker": {"socket": b.sock}}) + "\n", 0o600)
        self.env = {"HOME": self.home, "XDG_RUNTIME_DIR": self.run,
                    "KEYWARDEN_CONFIG": self.config, "KEYWARDEN_TOKEN_CACHE": "file"}

    def path(self, rel):
        return os.path.join(self.root, rel)

    def dir(self, rel, m=0o700):
        p = self.path(rel)
        os.makedirs(p, exist_ok=True)
        os.chown(p, *USERS[self.user])
        os.chmod(p, m)
        return p

    def put(self, rel, text, m=0o600, owner=None):
        """Write root/rel (parents made, owned by the user), mode m."""
        p = self.path(rel)
        d = os.path.dirname(p)
        if not os.path.isdir(d):
            self.dir(os.path.relpath(d, self.root), 0o700)
        with open(p, "w") as f:
            f.write(text)
        os.chown(p, *USERS[owner or self.user])
        os.chmod(p, m)
        return p

    def login(self):
        """A session for the user, cached where the CLI looks (the file cache)."""
        b = self.b
        with UserConn(b, self.user) as c:
            res = assert_ok(c.call("login", {"code": totp(b.enrolled[self.user]["secret"],
                                                          b.clock.now())}))
        cache = self.dir("run/keywarden", 0o700)
        hexname = hashlib.sha256(b.sock.encode()).hexdigest()[:16]
        self.put(os.path.relpath(os.path.join(cache, "session-" + hexname), self.root),
                 "%d\n%s\n" % (int(time.time()) + 600, res["session"]), 0o600)

    def doctor_env(self, env=None):
        e = clean_env({"KEYWARDEN_SOCKET": self.b.sock},
                      drop=("ANTHROPIC_API_KEY", "HISTFILE"))
        e.update(self.env)
        e.update(env or {})
        return e

    def doctor(self, *args, env=None, cwd=None):
        return run_as_user(self.user, [CLI_BIN, "doctor"] + list(args), self.doctor_env(env),
                           cwd=cwd or self.project)

    def doctor_at_terminal(self, answer, *args):
        """doctor with a terminal for stdin, stdout and stderr: answers its
        question with answer; (exit status, everything it wrote)."""
        master, slave = pty.openpty()
        proc = subprocess.Popen(setpriv(self.user, [CLI_BIN, "doctor"] + list(args)),
                                stdin=slave, stdout=slave, stderr=slave,
                                env=self.doctor_env(), cwd=self.project, start_new_session=True)
        os.close(slave)
        out, asked = b"", False
        deadline = time.monotonic() + IO_TIMEOUT
        try:
            while True:
                left = deadline - time.monotonic()
                assert left > 0, "doctor at a terminal did not finish:\n%s" % out.decode()
                if not select.select([master], [], [], left)[0]:
                    continue
                try:
                    chunk = os.read(master, 4096)
                except OSError:         # EIO: the terminal's other side is closed
                    break
                if not chunk:
                    break
                out += chunk
                if not asked and b"[y/N] " in out:
                    os.write(master, answer.encode() + b"\n")
                    asked = True
            return proc.wait(timeout=IO_TIMEOUT), out.decode("utf-8", "replace")
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def machine():
    made = []

    def make(b, user="alice"):
        m = Machine(b, user)
        made.append(m)
        return m
    yield make
    for m in made:
        m.cleanup()


def report(cp):
    """doctor --json's array; checks the shape of every item.  When a check
    fails (exit 1) the array comes as {"result": [...], "error": {...}}, as
    every list result of a failing command does (keywarden(1), JSON OUTPUT)."""
    assert cp.returncode in (0, 1), "exit %d\n%s\n%s" % (cp.returncode, cp.stdout, cp.stderr)
    doc = json.loads(cp.stdout)
    if cp.returncode == 1:
        assert isinstance(doc, dict) and set(doc) == {"result", "error"}, doc
        assert doc["error"]["code"] in ("failed", "unreachable"), doc
        doc = doc["result"]
    assert isinstance(doc, list) and doc, doc
    for it in doc:
        assert {"check", "status", "detail", "fix"} <= set(it), it
        assert set(it) <= {"check", "status", "detail", "fix", "file", "line"}, it
        assert it["status"] in STATUSES, it
        assert isinstance(it["detail"], str) and it["detail"], it
        assert it["fix"] is None or (isinstance(it["fix"], str) and it["fix"]), it
        # Something to do wherever something is wrong.
        if it["status"] in ("warn", "fail"):
            assert it["fix"], it
    assert (cp.returncode == 1) == any(it["status"] == "fail" for it in doc), doc
    return doc


def items(doc, check, status=None):
    return [it for it in doc if it["check"] == check and (status is None or
                                                          it["status"] == status)]


def one(doc, check, status, file=None, line=None):
    """The one item of check with status (and file, line); fails naming what there is."""
    got = [it for it in items(doc, check, status)
           if (file is None or it.get("file") == file) and (line is None or
                                                            it.get("line") == line)]
    assert len(got) == 1, "want one %s %s %s:%s, have:\n%s" % (
        status, check, file, line, json.dumps(items(doc, check), indent=1))
    return got[0]


def no_values(values, *cps):
    for cp in cps:
        for v in values:
            # A key's middle is as secret as all of it.
            for needle in (v, v[13:33]):
                assert needle not in cp.stdout and needle not in cp.stderr, (
                    "a key's value in the output of %s:\n%s\n%s" % (cp.args, cp.stdout, cp.stderr))


def root_cli(b, *args, input=None):
    """The CLI as root (an administrator's side of the test), not as alice."""
    return run_as_user("root", [CLI_BIN] + list(args),
                       clean_env({"KEYWARDEN_SOCKET": b.sock}, drop=("ANTHROPIC_API_KEY",)),
                       input=input)


def helper_settings(name="anthropic", hook=True, matcher="*"):
    doc = {"apiKeyHelper": "%s key get %s" % (CLI_BIN, name)}
    if hook:
        doc["hooks"] = {"PreToolUse": [{"matcher": matcher, "hooks": [
            {"type": "command", "command": CLI_BIN + " hook claude", "timeout": 30}]}]}
    return json.dumps(doc, indent=2) + "\n"


# --------------------------------------------------------------------------

def test_planted_problems_are_found_by_file_and_line(mfa_broker, machine):
    """Every planted problem is an item naming its file and line; no value is shown."""
    b = mfa_broker(users=("alice",), roles=("developer",))
    m = machine(b)
    k_env, k_other, k_dot, k_rc, k_hist, k_zsh, k_set = (random_key() for _ in range(7))
    dotenv = m.put("home/proj/.env", "# settings\nDEBUG=1\nANTHROPIC_API_KEY=%s\n" % k_dot)
    bashrc = m.put("home/.bashrc", "alias ll='ls -l'\nexport ANTHROPIC_API_KEY=\"%s\"\n" % k_rc)
    hist = m.put("home/.bash_history", "ls\ncd proj\ngit status\nclaude --api-key %s\n" % k_hist)
    zhist = m.put("home/.zsh_history", ": 1700000000:0;export ANTHROPIC_API_KEY='%s'\n" % k_zsh)
    zshrc = m.put("home/.zshrc", "setopt autocd\nexport ANTHROPIC_API_KEY=$(op read op://x/y)\n")
    settings = m.put("home/.claude/settings.json",
                     json.dumps({"model": "opus", "apiKey": k_set}, indent=2) + "\n", 0o644)
    claude_dir = os.path.dirname(settings)
    os.chmod(claude_dir, 0o755)
    os.chmod(m.config, 0o644)
    env = {"ANTHROPIC_API_KEY": k_env, "MY_API_KEY": k_other}

    cp = m.doctor("--json", env=env)
    human = m.doctor(env=env)
    doc = report(cp)
    assert cp.returncode == 1 and human.returncode == 1
    no_values([k_env, k_other, k_dot, k_rc, k_hist, k_zsh, k_set], cp, human)

    # The environment: the variable Claude Code prefers, and another holding a key.
    env_items = items(doc, "api-key.environment")
    assert sorted(it["detail"].split()[0] for it in env_items) == \
        ["ANTHROPIC_API_KEY", "MY_API_KEY"], env_items
    assert all(it["status"] == "fail" and "unset" in it["fix"] for it in env_items), env_items
    # Files, each by path and line.
    it = one(doc, "api-key.dotenv", "fail", dotenv, 3)
    assert "ANTHROPIC_API_KEY" in it["detail"] and "dotenv:" + dotenv in it["fix"], it
    one(doc, "api-key.shell", "fail", bashrc, 2)
    # Fetched from a command: no key in the file, but in every shell's environment.
    it = one(doc, "api-key.shell", "warn", zshrc, 2)
    assert "exports ANTHROPIC_API_KEY" in it["detail"], it
    one(doc, "api-key.history", "fail", hist, 4)
    one(doc, "api-key.history", "fail", zhist, 1)
    it = one(doc, "api-key.claude-settings", "fail", settings, 3)
    assert "apiKey" in it["detail"], it
    # Modes: the 0755 ~/.claude, its 0644 settings, the 0644 keywarden config.
    it = one(doc, "permissions.claude", "fail", claude_dir)
    assert "0755" in it["detail"] and "chmod 700" in it["fix"], it
    one(doc, "permissions.claude", "fail", settings)
    it = one(doc, "permissions.keywarden", "fail", m.config)
    assert "0644" in it["detail"] and "chmod 600" in it["fix"], it
    # The broker's view: registered and enrolled, but no session.
    one(doc, "broker", "pass")
    one(doc, "user", "pass")
    one(doc, "totp", "pass")
    it = one(doc, "session", "warn")
    assert it["fix"] == "keywarden login", it
    # Claude Code is here (~/.claude) but not wired to keywarden.
    it = one(doc, "claude.api-key-helper", "fail")
    assert "apiKeyHelper" in it["fix"] and "keywarden key get anthropic" in it["fix"], it
    it = one(doc, "claude.hook", "warn")
    assert it["fix"] == "keywarden setup claude", it

    # The human report says the same: file and line on the item's line.
    for path, line in ((dotenv, 3), (bashrc, 2), (hist, 4), (zhist, 1), (settings, 3)):
        assert "%s line %d" % (path, line) in human.stdout, human.stdout
    for it in doc:
        assert "%-4s  %-24s %s" % (it["status"], it["check"], it["detail"]) in human.stdout, it
    # A non-admin's doctor asks nothing it would be refused.
    assert rows_of(b, cp, "result != 'success'") == []


def test_not_enrolled_is_a_failure(id_broker, machine):
    """A user without a TOTP secret cannot log in: doctor says so and who can fix it."""
    b = id_broker({"security": {"authentication": {"mfa": {"enabled": False}}}})
    with b.connect() as c:
        res = assert_ok(c.call("user.add", {"user": "alice", "roles": ["developer"]}))
    assert "secret" not in res
    m = machine(b)
    doc = report(m.doctor("--json"))
    it = one(doc, "totp", "fail")
    assert "no TOTP secret" in it["detail"], it
    assert it["fix"] == "ask an administrator: keywarden admin user totp-reset alice", it
    one(doc, "user", "pass")
    one(doc, "roles", "pass")


def test_unregistered_and_no_broker(id_broker, machine):
    """No registration is a failure; with no broker, what needs one is skipped."""
    b = id_broker()
    m = machine(b)
    doc = report(m.doctor("--json"))
    it = one(doc, "user", "fail")
    assert "alice is not a keywarden user" in it["detail"], it
    assert "admin user add alice" in it["fix"], it
    one(doc, "totp", "skip")

    b.stop()
    cp = m.doctor("--json")
    doc = report(cp)
    assert cp.returncode == 1
    one(doc, "broker", "fail")
    for check in ("user", "totp", "session", "audit.chain", "roles"):
        one(doc, check, "skip")
    # What needs no broker is still checked.
    one(doc, "api-key.dotenv", "pass")
    one(doc, "sensitive-data", "pass")


def clean_setup(b, m):
    """A machine that follows the checklist; the key keywarden holds."""
    key = random_key()
    ok(root_cli(b, "key", "set", "anthropic", input=key + "\n"))
    m.login()
    m.put("home/proj/.env", "DEBUG=1\nANTHROPIC_API_KEY=\n", 0o600)
    m.put("home/.bashrc", "export EDITOR=vi\n# ANTHROPIC_API_KEY=sk-ant-...\n", 0o600)
    m.put("home/.bash_history", "ls\nkeywarden login\n", 0o600)
    m.dir("home/.claude", 0o700)
    m.put("home/.claude/settings.json", helper_settings(), 0o600)
    # A project may hold a FIFO where a .env file would be: read, it would hang doctor.
    fifo = m.path("home/proj/.env.local")
    os.mkfifo(fifo, 0o644)
    os.chown(fifo, *USERS[m.user])
    return key


def test_clean_setup_passes(mfa_broker, machine):
    """A machine that follows the checklist: exit 0, no failure and no warning."""
    b = mfa_broker(users=("alice",), roles=("developer",))
    m = machine(b)
    key = clean_setup(b, m)
    cp = m.doctor("--json")
    doc = report(cp)
    assert cp.returncode == 0, json.dumps(doc, indent=1)
    bad = [it for it in doc if it["status"] in ("warn", "fail")]
    assert bad == [], json.dumps(bad, indent=1)
    # Every check is in the report.
    assert sorted({it["check"] for it in doc}) == sorted(CHECKS), doc
    assert "which keywarden holds" in one(doc, "claude.api-key-helper", "pass")["detail"]
    assert "for every tool" in one(doc, "claude.hook", "pass")["detail"]
    assert one(doc, "session", "pass")["detail"].startswith("logged in")
    assert one(doc, "roles", "pass")["detail"] == "alice holds developer"
    # Not an admin: the chain is left to them, with a note.
    assert "only administrators" in one(doc, "audit.chain", "skip")["detail"]
    assert "not enforced yet" in one(doc, "sensitive-data", "pass")["detail"]
    human = m.doctor()
    assert human.returncode == 0 and "0 failed" in human.stdout, human.stdout
    no_values([key], cp, human)
    assert rows_of(b, cp, "result != 'success'") == []


def test_admin_verifies_the_chain(mfa_broker, machine):
    """An admin with a session gets the audit chain verified."""
    b = mfa_broker(users=("alice",), roles=("admin",))
    m = machine(b)
    clean_setup(b, m)
    cp = m.doctor("--json")
    doc = report(cp)
    it = one(doc, "audit.chain", "pass")
    assert it["detail"].startswith("intact: ") and "signed by the broker" in it["detail"], it
    assert len(rows_of(b, cp, "action = 'audit.verify' AND result = 'success'")) == 1


def test_fix_mends_modes_and_imports_only_with_yes(mfa_broker, machine):
    """--fix: modes of alice's files become private (not root's file); the key
    goes into keywarden only with --yes, and her .env stays as it was."""
    b = mfa_broker(users=("alice",), roles=("developer",))
    m = machine(b)
    m.login()
    k = random_key()
    dotenv_text = "# local\nANTHROPIC_API_KEY=%s\n" % k
    dotenv = m.put("home/proj/.env", dotenv_text, 0o644)
    settings = m.put("home/.claude/settings.json", helper_settings(), 0o644)
    logs = m.dir("home/.claude/logs", 0o755)
    log = m.put("home/.claude/logs/audit.log", "{}\n", 0o664)
    hook = m.put("home/.claude/hook.sh", "#!/bin/sh\n", 0o755)
    theirs = m.put("home/.claude/root.log", "x\n", 0o644, owner="root")
    os.chmod(m.path("home/.claude"), 0o755)
    os.chmod(m.config, 0o644)

    # Without --yes, stdin not a terminal: modes fixed, the key left alone.
    cp = m.doctor("--fix", "--json")
    doc = report(cp)
    assert mode(m.path("home/.claude")) == 0o700
    assert mode(settings) == 0o600 and mode(log) == 0o600 and mode(logs) == 0o700
    assert mode(hook) == 0o700          # still runnable by its owner
    assert mode(m.config) == 0o600
    assert mode(theirs) == 0o644        # root's: not doctor's to change
    assert mode(dotenv) == 0o644        # the project's .env is not a config file
    assert "fixed: %s is now mode 0700 (was 0755)" % m.path("home/.claude") in cp.stderr
    assert "--yes" in cp.stderr, cp.stderr
    assert items(doc, "permissions.claude", "fail") == [], doc
    assert items(doc, "permissions.keywarden", "fail") == [], doc
    one(doc, "api-key.dotenv", "fail", dotenv, 2)
    it = one(doc, "claude.api-key-helper", "fail")
    assert "does not hold" in it["detail"], it
    assert json.loads(ok(root_cli(b, "key", "list", "--json")))["keys"] == []

    # With --yes: imported through key.set; the file stays, and doctor names it.
    cp = m.doctor("--fix", "--yes", "--json")
    doc = report(cp)
    assert cp.returncode == 1          # the plaintext copy is still there
    assert ok(root_cli(b, "key", "get", "anthropic")) == k + "\n"
    with open(dotenv) as f:
        assert f.read() == dotenv_text
    assert "imported the API key into keywarden as anthropic (version 1)" in cp.stderr
    assert "%s line 2" % dotenv in cp.stderr and "delete" in cp.stderr, cp.stderr
    it = one(doc, "api-key.dotenv", "fail", dotenv, 2)
    assert "now also in keywarden" in it["detail"], it
    assert it["fix"] == "it is in keywarden now (as anthropic, version 1): delete line 2 of %s" \
        % dotenv, it
    assert "which keywarden holds" in one(doc, "claude.api-key-helper", "pass")["detail"]
    no_values([k], cp)
    rows = rows_of(b, cp, "action = 'key.set'")
    assert len(rows) == 1 and rows[0]["user"] == "alice" and rows[0]["result"] == "success"


def test_fix_asks_at_a_terminal(mfa_broker, machine):
    """At a terminal --fix asks before importing: no imports nothing, yes imports."""
    b = mfa_broker(users=("alice",), roles=("developer",))
    m = machine(b)
    m.login()
    k = random_key()
    dotenv = m.put("home/proj/.env", "ANTHROPIC_API_KEY='%s'\n" % k)
    rc, out = m.doctor_at_terminal("n", "--fix")
    assert rc == 1 and "Import the API key found in %s line 1 into keywarden as anthropic?" \
        % dotenv in out, out
    assert "not imported" in out and k not in out, out
    assert json.loads(ok(root_cli(b, "key", "list", "--json")))["keys"] == []
    rc, out = m.doctor_at_terminal("y", "--fix")
    assert "imported the API key into keywarden as anthropic (version 1)" in out, out
    assert k not in out and k[13:33] not in out
    assert ok(root_cli(b, "key", "get", "anthropic")) == k + "\n"
    assert os.path.exists(dotenv)


def test_fix_imports_nothing_when_copies_differ(mfa_broker, machine):
    """Two different keys in plaintext: which is right is the user's call."""
    b = mfa_broker(users=("alice",), roles=("developer",))
    m = machine(b)
    m.login()
    k1, k2 = random_key(), random_key()
    m.put("home/proj/.env", "ANTHROPIC_API_KEY=%s\n" % k1)
    m.put("home/.bashrc", "export ANTHROPIC_API_KEY=%s\n" % k2)
    cp = m.doctor("--fix", "--yes")
    assert cp.returncode == 1
    assert "different API keys; not importing any" in cp.stderr, cp.stderr
    assert json.loads(ok(root_cli(b, "key", "list", "--json")))["keys"] == []
    no_values([k1, k2], cp)


def test_usage(id_broker, machine):
    b = id_broker()
    m = machine(b)
    for args in (("--yes",), ("extra",), ("--bogus",)):
        cp = m.doctor(*args)
        assert cp.returncode == 2 and "usage: keywarden doctor" in cp.stderr, cp
        assert cp.stdout == ""
    cp = m.doctor("--help")
    assert cp.returncode == 0 and cp.stdout.startswith("usage: keywarden doctor"), cp


# --------------------------------------------------------------------------
# sandbox: what the kernel offers, against what the policy asks
# --------------------------------------------------------------------------

def landlock_abi():
    """The Landlock ABI as this kernel reports it (0 when it has none)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    abi = libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint(1))
    return max(abi, 0)


def userns_as(user):
    """Whether user may make a user + mount + network namespace here."""
    return run_as_user(user, ["unshare", "-Urnm", "true"], clean_env()).returncode == 0


def sandbox_item(m, config):
    m.put(os.path.relpath(m.config, m.root), json.dumps(config) + "\n", 0o600)
    doc = report(m.doctor("--json"))
    its = items(doc, "sandbox")
    assert len(its) == 1, its
    return its[0]


def test_sandbox_reports_what_the_kernel_offers(id_broker, machine):
    b = id_broker()
    m = machine(b)
    abi, userns = landlock_abi(), userns_as("alice")
    base = {"broker": {"socket": b.sock}}
    it = sandbox_item(m, base)
    assert ("Landlock ABI %d," % abi) in it["detail"], (abi, it)
    assert ("user namespaces %s" % ("yes" if userns else "no")) in it["detail"], it
    # The defaults: no network, no exec, denied paths to hide, sandbox not required.
    can = abi >= 3 and (userns or abi >= 4)
    assert it["status"] == ("pass" if can and userns else "warn"), it
    assert "security.sandbox.enabled is false" in it["detail"], it

    # Required: the same machine either can (pass) or run refuses (fail, saying what to do).
    it = sandbox_item(m, dict(base, security={"sandbox": {"enabled": True}}))
    assert "security.sandbox.enabled is true" in it["detail"], it
    if can and userns:
        assert it["status"] == "pass", it
    else:
        assert it["status"] == "fail" and it["fix"] and "refuses" in it["detail"], it


def test_sandbox_human_output_names_the_abi(id_broker, machine):
    b = id_broker()
    m = machine(b)
    cp = m.doctor()
    line = [l for l in cp.stdout.splitlines() if l.split()[1:2] == ["sandbox"]]
    assert len(line) == 1, cp.stdout
    assert ("Landlock ABI %d," % landlock_abi()) in line[0], line


def test_api_proxy_checks(mfa_broker, machine):
    """The API proxy (issue 16): an apiKeyHelper asking for proxy tokens with the
    proxy off fails; with it on, nothing listening, a plain-HTTP upstream under
    enforceHttps and unverified certificates are each named; a listener passes."""
    b = mfa_broker(users=("alice",), roles=("developer",))
    m = machine(b)
    m.put("home/.claude/settings.json",
          json.dumps({"apiKeyHelper": CLI_BIN + " key get anthropic --proxy"}) + "\n")
    doc = report(m.doctor("--json"))
    it = one(doc, "api-proxy", "fail")
    assert "--proxy" in it["detail"] and "broker.apiProxy.enabled" in it["fix"], it

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    m.put("home/.config/keywarden/config.json", json.dumps({
        "broker": {"socket": b.sock, "apiProxy": {"enabled": True,
                                                 "listen": "127.0.0.1:%d" % port}},
        "api": {"baseUrl": "http://api.anthropic.com"},
        "security": {"network": {"verifyCertificates": False}}}) + "\n")
    try:
        doc = report(m.doctor("--json"))     # bound, not listening: refused
        one(doc, "api-proxy", "pass")
        assert "127.0.0.1:%d" % port in one(doc, "api-proxy.listen", "fail")["detail"]
        assert "enforceHttps" in one(doc, "api-proxy.upstream", "fail")["detail"]
        assert "verifyCertificates" in one(doc, "api-proxy.tls", "warn")["detail"]
        lsock.listen(4)
        doc = report(m.doctor("--json"))
        one(doc, "api-proxy.listen", "pass")
    finally:
        lsock.close()
