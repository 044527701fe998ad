"""
The real Claude Code CLI as keywarden's client (issue 5, "The real client").

Claude Code is installed from npm (`npm install @anthropic-ai/claude-code`)
once, into $KW_CACHE/claude-code (default $KW_BUILD), and run as `claude -p`
with HOME set to a directory of the test's own whose .claude/settings.json is
contrib/claude-code/settings.json: apiKeyHelper = `/usr/local/bin/keywarden
key get anthropic` (here, like its hook, with the CLI under test's path).  ANTHROPIC_BASE_URL points it
at anthropic_server.py on 127.0.0.1, a stand-in for the Messages API that
records the x-api-key and Authorization headers of every request.

This needs the npm registry.  When the install fails the test FAILS (it does
not skip): the real client is part of what `make check` must show.

CLAUDE_CODE_MAX_RETRIES=0: a 401 is otherwise retried with back-off for about
a minute before claude gives up.  Claude Code calls the apiKeyHelper afresh
in every process, so each `claude -p` below asks the broker.
"""
import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest

from anthropic_server import AnthropicServer
from conftest import BUILD, CLI_BIN, HERE, SANITIZE, assert_ok
from users import (USERS, UserConn, id_broker, mfa_broker, ok, run_as_user,  # noqa: F401
                   totp)

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CONTRIB_SETTINGS = os.path.join(REPO, "contrib", "claude-code", "settings.json")
# One install serves every build (plain, ASan): $KW_CACHE, else beside the build.
CLAUDE_DIR = os.path.join(os.environ.get("KW_CACHE") or BUILD, "claude-code")
CLAUDE_PKG = "@anthropic-ai/claude-code"
INSTALL_TIMEOUT = 600
CLAUDE_TIMEOUT = 60 * (2 if SANITIZE else 1)

# A fake key of the real format (sk-ant-api03- and 100 URL-safe characters).
KEY = "sk-ant-api03-" + "kwTestKey0123456789_-" * 4 + "abcdefghijklmnAA"
REPLY = "Hello from the stand-in Messages API, served through keywarden."
HELPER_CMD = "keywarden key get anthropic"
CONTRIB_KEYWARDEN = "/usr/local/bin/keywarden"   # the sample's path (keywarden setup claude)


# --------------------------------------------------------------------------
# Claude Code from npm, once per build directory
# --------------------------------------------------------------------------

def claude_version(binary):
    try:
        cp = subprocess.run([binary, "--version"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return cp.stdout.strip() if cp.returncode == 0 and "Claude Code" in cp.stdout else None


@pytest.fixture(scope="session")
def claude():
    """The path of the claude executable under $KW_BUILD/claude-code."""
    binary = os.path.join(CLAUDE_DIR, "node_modules", ".bin", "claude")
    if os.path.exists(binary) and claude_version(binary):
        return binary
    npm = shutil.which("npm")
    if not npm:
        pytest.fail("npm is not installed: the Claude Code test installs %s from the npm "
                    "registry (install nodejs/npm)" % CLAUDE_PKG, pytrace=False)
    os.makedirs(CLAUDE_DIR, mode=0o755, exist_ok=True)
    try:
        cp = subprocess.run([npm, "install", "--prefix", CLAUDE_DIR, "--no-audit", "--no-fund",
                             CLAUDE_PKG], cwd=CLAUDE_DIR, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=INSTALL_TIMEOUT,
                            # Other users (the session case runs claude as alice) read it.
                            preexec_fn=lambda: os.umask(0o022))
        out, rc = cp.stdout, cp.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.output or ""), "timeout after %ds" % INSTALL_TIMEOUT
    version = claude_version(binary) if rc == 0 else None
    if not version:
        pytest.fail("could not install %s from the npm registry into %s (npm: %s); this test "
                    "needs the real Claude Code CLI.  npm said:\n%s"
                    % (CLAUDE_PKG, CLAUDE_DIR, rc, out[-4000:]), pytrace=False)
    return binary


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def helper_command():
    """contrib's settings and apiKeyHelper, with the CLI under test for its keywarden."""
    with open(CONTRIB_SETTINGS) as f:
        text = f.read()
    settings = json.loads(text.replace(CONTRIB_KEYWARDEN + " ", CLI_BIN + " "))
    assert settings.get("apiKeyHelper") == CLI_BIN + " " + HELPER_CMD[len("keywarden "):], \
        settings
    return settings, settings["apiKeyHelper"]


def make_home(parent, user):
    """HOME for claude: .claude/settings.json from contrib, owned by user.  Its hooks
    are left out: these tests are about the apiKeyHelper (the hooks' own tests are
    test_claude_policy.py, which the hooks would otherwise pre-empt here: with no
    session, UserPromptSubmit holds the prompt back before the helper runs)."""
    settings, cmd = helper_command()
    settings = {k: v for k, v in settings.items() if k != "hooks"}
    home = os.path.join(parent, "home-" + user)
    work = os.path.join(parent, "work-" + user)
    os.makedirs(os.path.join(home, ".claude"), mode=0o700)
    os.makedirs(work, mode=0o700)
    with open(os.path.join(home, ".claude", "settings.json"), "w") as f:
        json.dump(dict(settings, apiKeyHelper=cmd), f, indent=2)
    uid, gid = USERS[user]
    for root, dirs, files in os.walk(home):
        for name in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.chown(name, uid, gid)
    os.chown(work, uid, gid)
    return home, work


def claude_env(home, server, extra=None):
    """A minimal environment: no API key or Claude settings of the caller's."""
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
           "ANTHROPIC_BASE_URL": server.url,
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
           "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_MAX_RETRIES": "0"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(extra or {})
    return env


def run_claude(claude_bin, user, home, work, server, extra=None, prompt="hello"):
    return run_as_user(user, [claude_bin, "-p", prompt], claude_env(home, server, extra),
                       cwd=work, timeout=CLAUDE_TIMEOUT)


def messages(server, since=0):
    reqs = server.messages()[since:]
    assert all(r["path"].startswith("/v1/messages") for r in reqs), reqs
    return reqs


def sent_key(req):
    """The key a request carried: x-api-key or a Bearer token ('' for none)."""
    auth = (req.get("authorization") or "").strip()
    bearer = auth[len("Bearer"):].strip() if auth.startswith("Bearer") else auth
    return (req.get("x-api-key") or "") or bearer


def assert_key_sent(cp, server, since):
    reqs = messages(server, since)
    assert reqs, "claude sent no Messages API request:\nstdout: %s\nstderr: %s" % (
        cp.stdout, cp.stderr)
    for r in reqs:
        assert r["x-api-key"] == KEY, r
        assert r["authorization"] == "Bearer " + KEY, r
        assert r["status"] == 200, r
        assert r["stream"] is True, r
        assert "beta=true" in r["path"], r
    assert cp.returncode == 0, "claude exit %d\nstdout: %s\nstderr: %s" % (
        cp.returncode, cp.stdout, cp.stderr)
    assert REPLY in cp.stdout, "claude did not print the server's text:\n%s\n%s" % (
        cp.stdout, cp.stderr)


def files_holding(top, needle):
    found = []
    for root, dirs, files in os.walk(top):
        for n in files:
            p = os.path.join(root, n)
            try:
                with open(p, "rb") as f:
                    if needle.encode() in f.read():
                        found.append(p)
            except OSError:
                pass
    return found


def cache_token_file(b, user, run_dir, token):
    """Put token where the CLI's file cache looks for it (client/session_cache.c):
    $XDG_RUNTIME_DIR/keywarden/session-HEX, "EXPIRY\\nTOKEN\\n", 0600 in 0700."""
    hexname = hashlib.sha256(os.path.realpath(b.sock).encode()).hexdigest()[:16]
    d = os.path.join(run_dir, "keywarden")
    os.makedirs(d, mode=0o700, exist_ok=True)
    path = os.path.join(d, "session-" + hexname)
    with open(path, "w") as f:
        f.write("%d\n%s\n" % (int(time.time()) + 600, token))
    for p, mode in ((d, 0o700), (path, 0o600)):
        os.chown(p, *USERS[user])
        os.chmod(p, mode)
    return path


@pytest.fixture
def server(tmpdir_short):
    srv = AnthropicServer(os.path.join(tmpdir_short, "requests.jsonl"), reply_text=REPLY,
                          expect_key=KEY).start()
    yield srv
    srv.stop()


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

def test_contrib_settings_wire_keywarden():
    """The sample is what `keywarden setup claude` writes (test_setup_claude.py checks
    that): the helper, the PreToolUse hook, deny rules."""
    with open(CONTRIB_SETTINGS) as f:
        doc = json.load(f)
    assert doc["apiKeyHelper"] == CONTRIB_KEYWARDEN + " key get anthropic", doc
    assert doc["hooks"]["PreToolUse"][0]["hooks"][0]["command"] == \
        CONTRIB_KEYWARDEN + " hook claude", doc
    assert "Read(~/.ssh/**)" in doc["permissions"]["deny"], doc


def test_claude_gets_the_key_from_the_broker(claude, broker, server, tmpdir_short):
    assert ok(broker.cli("key", "set", "anthropic", input=KEY + "\n")).startswith(
        "anthropic: version 1 is current")
    home, work = make_home(tmpdir_short, "root")
    env = {"KEYWARDEN_SOCKET": broker.sock}

    cp = run_claude(claude, "root", home, work, server, env)
    assert_key_sent(cp, server, 0)
    # The key reached claude through the helper's stdout only: nothing claude
    # wrote under HOME holds it, nor does the broker's data directory.
    assert files_holding(home, KEY) == []
    assert files_holding(broker.datadir, KEY) == []
    gets = broker.audit_rows("action = 'key.get'")
    assert gets and all(r["result"] == "success" and r["resource"] == "key/anthropic"
                        for r in gets), gets
    assert all(KEY not in json.dumps(r) for r in broker.audit_rows()), "key in the audit log"


def test_session_gates_the_key_and_revoke_ends_it(claude, mfa_broker, server, tmpdir_short):
    b = mfa_broker()
    assert ok(b.cli("key", "set", "anthropic", input=KEY + "\n")).startswith(
        "anthropic: version 1 is current")
    os.chmod(tmpdir_short, 0o755)      # alice reaches her HOME and run dir below it
    home, work = make_home(tmpdir_short, "alice")
    run_dir = os.path.join(tmpdir_short, "xdg-alice")
    os.makedirs(run_dir, mode=0o700)
    os.chown(run_dir, *USERS["alice"])
    env = {"KEYWARDEN_SOCKET": b.sock, "KEYWARDEN_TOKEN_CACHE": "file",
           "XDG_RUNTIME_DIR": run_dir}
    helper = [CLI_BIN, "key", "get", "anthropic"]

    # No session yet: the helper refuses, and claude sends no key.
    cp = run_as_user("alice", helper, claude_env(home, server, env), cwd=work, timeout=30)
    assert cp.returncode != 0 and cp.stdout == "", cp
    n = len(server.messages())
    cp = run_claude(claude, "alice", home, work, server, env)
    assert_no_key(cp, server, n)

    # A session (a raw login with a TOTP code), cached where the CLI looks.
    with UserConn(b, "alice") as c:
        res = assert_ok(c.call("login", {"code": totp(b.enrolled["alice"]["secret"],
                                                      b.clock.now())}))
    cache_token_file(b, "alice", run_dir, res["session"])
    cp = run_as_user("alice", helper, claude_env(home, server, env), cwd=work, timeout=30)
    assert cp.returncode == 0 and cp.stdout == KEY + "\n", cp
    n = len(server.messages())
    cp = run_claude(claude, "alice", home, work, server, env)
    assert_key_sent(cp, server, n)
    rows = b.audit_rows("action = 'key.get' AND user = 'alice' AND result = 'success'")
    assert len(rows) == 2, rows       # the helper run above, then claude's
    assert files_holding(home, KEY) == []

    # The administrator ends alice's sessions: the next run gets no key.
    assert ok(b.cli("admin", "session", "revoke", "--user", "alice")).strip() == \
        "revoked 1 session(s)"
    n = len(server.messages())
    cp = run_claude(claude, "alice", home, work, server, env)
    assert_no_key(cp, server, n)
    rows = b.audit_rows("action = 'key.get' AND user = 'alice' AND result = 'success'")
    assert len(rows) == 2, "a key.get succeeded after the revoke: %r" % rows
    assert all(KEY not in json.dumps(r) for r in b.audit_rows()), "key in the audit log"
    assert files_holding(b.datadir, KEY) == []

    # The helper's contract (SPEC5, CLI): on failure, ONE line on stderr --
    # Claude Code shows it to the user as the reason -- with the revoked
    # token still in the cache, as claude's helper run above met it.
    cache_token_file(b, "alice", run_dir, res["session"])
    cp = run_as_user("alice", helper, claude_env(home, server, env), cwd=work, timeout=30)
    assert cp.returncode != 0 and cp.stdout == "", cp
    assert "keywarden login" in cp.stderr, cp.stderr
    assert len(cp.stderr.splitlines()) == 1, (
        "keywarden key get (the apiKeyHelper) must fail with one line on stderr, "
        "got:\n%s" % cp.stderr)


def assert_no_key(cp, server, since):
    """claude ran, its apiKeyHelper failed, and no request carried a key.

    Claude Code 2.1 still sends the request, with an empty x-api-key and a
    bare "Authorization: Bearer", and the stand-in answers 401."""
    reqs = messages(server, since)
    for r in reqs:
        assert sent_key(r) == "", "a request carried a key: %r" % r
        assert r["status"] == 401, r
    assert cp.returncode != 0, "claude succeeded without a key:\n%s\n%s" % (cp.stdout, cp.stderr)
    assert REPLY not in cp.stdout, cp.stdout
    # Claude Code reports the helper's failure with the helper's one line.
    assert "apiKeyHelper failed" in cp.stderr and "keywarden: key get:" in cp.stderr, (
        "stdout: %s\nstderr: %s" % (cp.stdout, cp.stderr))
    assert "keywarden login" in cp.stderr, cp.stderr
    assert "Invalid API key" in cp.stdout + cp.stderr, (cp.stdout, cp.stderr)
