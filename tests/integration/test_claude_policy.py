"""
The real Claude Code CLI, its tool calls decided by keywarden (issue 13, end
to end): `claude -p` runs as alice with HOME/.claude/settings.json holding
the apiKeyHelper (`keywarden key get anthropic`) and the PreToolUse hook
(`keywarden hook claude`), against anthropic_server.py playing a model that
calls one scripted tool per run.  Claude Code runs the hook, the hook asks
the broker (policy.check) as alice, and what Claude Code then does -- run
the tool, or send keywarden's reason back as the tool's result -- is seen
from outside: files on disk, every request body Claude Code sent to the
stand-in API, and the broker's audit trail.

Each refusal is also run once WITHOUT the hook in settings.json, same flags:
the tool then runs and the secret reaches the API.  So the hook's answer is
what blocks, not Claude Code's own permission rules.

ANTHROPIC_BASE_URL is http://127.0.0.1:PORT: that is Claude Code's own
traffic, which no policy sees; network.allowedHosts governs the tools'.
"""
import json
import os
import uuid

import pytest

from anthropic_server import AnthropicServer
from conftest import CLI_BIN, SANITIZE
from users import USERS, id_broker, ok, run_as_user  # noqa: F401
from test_claude_code import claude, claude_env  # noqa: F401
from test_hook_claude import agents, gen_key  # noqa: F401

KEY = "sk-ant-api03-" + "policyTestKey0123456789_-" * 4 + "abcdAA"
REPLY = "Done: the stand-in model has nothing more to do."
TOOLS = "Bash,Read,Write,WebFetch"
CLAUDE_TIMEOUT = 60 * (2 if SANITIZE else 1)

POLICY = {"security": {
    "deniedPaths": ["/etc", "~/.ssh"],
    "execution": {"allowedCommands": ["echo", "ls", "cat", "git"],
                  "deniedCommands": ["rm -rf"]},
    "network": {"allowedHosts": ["api.anthropic.com"]},
}}


def marker(what):
    return "kw-%s-%s-marker" % (what, uuid.uuid4().hex[:12])


class Run:
    """One claude -p run: its process, the stand-in it talked to, and the
    audit rows the broker wrote meanwhile."""

    def __init__(self, cp, srv, rows):
        self.cp, self.srv, self.rows = cp, srv, rows
        self.results = srv.tool_results()

    def why(self):
        return "claude exit %d\nstdout: %s\nstderr: %s\nrequests: %s" % (
            self.cp.returncode, self.cp.stdout, self.cp.stderr,
            json.dumps(self.srv.requests(), indent=1))

    def result(self):
        """The one tool_result Claude Code sent back for the scripted tool use."""
        uses = self.srv.tool_uses_sent()
        assert len(uses) == 1, self.why()
        mine = [t for t in self.results if t["tool_use_id"] == uses[0]["id"]]
        assert len(mine) == 1, self.why()
        return mine[0]

    def policy_rows(self):
        """alice's policy.check rows: a decision under the seed's action names
        (command_execute, file_read, ...), a refusal before one under its own."""
        return [r for r in self.rows if r["user"] == "alice" and r["action"] in (
            "policy.check", "command_execute", "file_read", "file_write", "api_call")]


class Claude:
    """alice's Claude Code: HOME with settings.json, a project, a session."""

    def __init__(self, b, alice, claude_bin):
        self.b, self.alice, self.bin = b, alice, claude_bin
        self.home, self.project = alice.home, alice.project
        self.settings = os.path.join(self.home, ".claude", "settings.json")
        os.makedirs(os.path.dirname(self.settings), mode=0o700)
        os.chown(os.path.dirname(self.settings), *USERS["alice"])
        self.id_rsa = os.path.join(self.home, ".ssh", "id_rsa")
        self.ssh_marker = marker("ssh")
        with open(self.id_rsa, "w") as f:
            f.write("-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n"
                    "-----END OPENSSH PRIVATE KEY-----\n" % self.ssh_marker)
        os.chown(self.id_rsa, *USERS["alice"])
        os.chmod(self.id_rsa, 0o600)

    def write_settings(self, hook, post=False):
        doc = {"apiKeyHelper": CLI_BIN + " key get anthropic"}
        mine = [{"matcher": "*", "hooks": [
            {"type": "command", "command": CLI_BIN + " hook claude", "timeout": 30}]}]
        if hook:
            doc["hooks"] = {"PreToolUse": mine}
        if post:
            doc.setdefault("hooks", {})["PostToolUse"] = mine
        with open(self.settings, "w") as f:
            json.dump(doc, f, indent=2)
        os.chown(self.settings, *USERS["alice"])

    def run(self, tool, tool_input, hook=True, on_tool_use=None, post=False):
        self.write_settings(hook, post)
        log = os.path.join(os.path.dirname(self.home), "api-%s.jsonl" % uuid.uuid4().hex[:8])
        srv = AnthropicServer(log, reply_text=REPLY, expect_key=KEY,
                              tool_uses=[{"name": tool, "input": tool_input}],
                              on_tool_use=on_tool_use).start()
        # claude_env's minimal environment (none of the caller's), and where
        # alice's CLI finds the broker and her session; the hook inherits it.
        env = claude_env(self.home, srv, {k: self.alice.env[k] for k in (
            "KEYWARDEN_SOCKET", "KEYWARDEN_TOKEN_CACHE", "XDG_RUNTIME_DIR")})
        last = max([r["seq"] for r in self.b.audit_rows()] or [0])
        try:
            cp = run_as_user("alice", [self.bin, "-p", "Do the task in this project.",
                                       "--allowedTools", TOOLS], env, cwd=self.project,
                             timeout=CLAUDE_TIMEOUT)
        finally:
            srv.stop()
        return Run(cp, srv, self.b.audit_rows("seq > ?", (last,)))


def make_kw(agents, claude, policy):
    b, ag = agents(policy)
    assert ok(b.cli("key", "set", "anthropic", input=KEY + "\n")).startswith(
        "anthropic: version 1 is current")
    alice = ag["alice"]
    alice.login()
    # alice's roles let her read the key: the helper works before any claude run.
    cp = run_as_user("alice", [CLI_BIN, "key", "get", "anthropic"], alice.env,
                     cwd=alice.project, timeout=30)
    assert cp.returncode == 0 and cp.stdout == KEY + "\n", cp
    return Claude(b, alice, claude)


@pytest.fixture
def kw(agents, claude):
    return make_kw(agents, claude, json.loads(json.dumps(POLICY)))


@pytest.fixture
def kw_redact(agents, claude):
    policy = json.loads(json.dumps(POLICY))
    policy["security"]["autoRedact"] = True
    # The PreToolUse hook would ask about a file holding a key (and -p takes
    # that as no): off, so that the output hook is what the test sees work.
    policy["security"]["detectSensitiveFiles"] = False
    return make_kw(agents, claude, policy)


def blocked(run, *reasons):
    """The hook refused the scripted tool: Claude Code sent keywarden's reason
    back as the tool's (error) result, and finished the turn."""
    assert run.cp.returncode == 0, run.why()
    res = run.result()
    assert res["is_error"], run.why()
    assert "keywarden: " in res["text"], run.why()
    for r in reasons:
        assert r in res["text"], (r, run.why())
    assert REPLY in run.cp.stdout, run.why()
    return res


def ran(run):
    """The scripted tool ran: its result is no refusal of keywarden's."""
    res = run.result()
    assert "keywarden" not in res["text"], run.why()
    return res


# --------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------

def test_cat_ssh_key_is_blocked_and_the_key_never_reaches_the_api(kw):
    cmd = {"command": "cat ~/.ssh/id_rsa", "description": "Show the SSH key"}
    run = kw.run("Bash", cmd)
    blocked(run, "denied", ".ssh")
    assert not run.srv.sent(kw.ssh_marker), "the key's text reached the API"
    rows = [r for r in run.policy_rows() if r["action"] == "command_execute"]
    assert [(r["result"], r["user"]) for r in rows] == [("denied", "alice")], run.rows
    meta = json.loads(rows[0]["metadata"])
    assert meta["rule"] == "security.deniedPaths: ~/.ssh", meta
    assert meta["tool"] == "Bash" and meta["command"] == "cat ~/.ssh/id_rsa", meta

    # The control: no hook, same flags -- Claude Code runs it and the key goes out.
    run = kw.run("Bash", cmd, hook=False)
    assert kw.ssh_marker in ran(run)["text"], run.why()
    assert run.srv.sent(kw.ssh_marker), run.why()
    assert run.policy_rows() == [], run.rows


def test_read_of_dotenv_is_blocked_and_its_text_never_sent(kw):
    secret = marker("env")
    env_file = os.path.join(kw.project, ".env")
    with open(env_file, "w") as f:
        f.write("DATABASE_PASSWORD=%s\n" % secret)
    os.chown(env_file, *USERS["alice"])
    run = kw.run("Read", {"file_path": env_file})
    blocked(run, "excluded pattern")
    assert not run.srv.sent(secret), "the .env's text reached the API"
    assert [(r["action"], r["result"]) for r in run.policy_rows()] == [
        ("file_read", "denied")], run.rows

    run = kw.run("Read", {"file_path": env_file}, hook=False)
    assert secret in ran(run)["text"] and run.srv.sent(secret), run.why()


def test_write_under_a_denied_path_is_blocked_and_nothing_is_written(kw):
    path = os.path.join(kw.home, ".ssh", "authorized_keys")
    planted = "ssh-ed25519 AAAA%s attacker\n" % marker("authkeys")
    run = kw.run("Write", {"file_path": path, "content": planted})
    blocked(run, "denied path", "~/.ssh")
    assert not os.path.exists(path), "the hook's refusal did not stop the Write"
    assert [(r["action"], r["result"]) for r in run.policy_rows()] == [
        ("file_write", "denied")], run.rows

    run = kw.run("Write", {"file_path": path, "content": planted}, hook=False)
    ran(run)
    with open(path) as f:
        assert f.read() == planted, run.why()


def test_curl_to_a_host_not_allowed_is_blocked(kw):
    cmd = {"command": "curl -sS --max-time 5 https://not-allowed.example/x"}
    run = kw.run("Bash", cmd)
    blocked(run, "not-allowed.example is not an allowed host")
    assert [(r["action"], r["result"]) for r in run.policy_rows()] == [
        ("command_execute", "denied")], run.rows

    # Without the hook curl runs (and fails to resolve the name: no network).
    run = kw.run("Bash", cmd, hook=False)
    assert "not-allowed.example" in ran(run)["text"], run.why()


def test_rm_rf_is_blocked_and_the_directory_stays(kw):
    build = os.path.join(kw.project, "build")
    os.makedirs(build)
    with open(os.path.join(build, "kept.o"), "w") as f:
        f.write("object\n")
    for p in (build, os.path.join(build, "kept.o")):
        os.chown(p, *USERS["alice"])
    run = kw.run("Bash", {"command": "rm -rf build"})
    blocked(run, "rm -rf")
    assert os.path.exists(os.path.join(build, "kept.o")), "rm -rf ran"
    assert [(r["action"], r["result"]) for r in run.policy_rows()] == [
        ("command_execute", "denied")], run.rows

    run = kw.run("Bash", {"command": "rm -rf build"}, hook=False)
    ran(run)
    assert not os.path.exists(build), run.why()


# --------------------------------------------------------------------------
# Allowed, then revoked
# --------------------------------------------------------------------------

def echo_to(mark):
    return {"command": "echo %s > out.txt && cat out.txt" % mark}


def test_allowed_command_runs_and_a_revoke_stops_the_next(kw):
    out = os.path.join(kw.project, "out.txt")
    first = marker("allowed")
    run = kw.run("Bash", echo_to(first))
    res = ran(run)
    assert first in res["text"] and not res["is_error"], run.why()
    with open(out) as f:
        assert f.read() == first + "\n"
    assert os.stat(out).st_uid == USERS["alice"][0]
    rows = run.policy_rows()
    assert [(r["action"], r["result"]) for r in rows] == [
        ("command_execute", "success")], run.rows
    meta = json.loads(rows[0]["metadata"])
    assert meta["decision"] == "allow" and meta["command"] == echo_to(first)["command"], meta
    assert REPLY in run.cp.stdout, run.why()

    # The administrator revokes alice's sessions while her agent runs: after
    # claude got its key (the apiKeyHelper ran at start) and just before the
    # model's tool use arrives.  The same command is then refused.
    second = marker("revoked")
    revoked = []

    def revoke(use):
        revoked.append(ok(kw.b.cli("admin", "session", "revoke", "--user", "alice")))

    run = kw.run("Bash", echo_to(second), on_tool_use=revoke)
    assert revoked == ["revoked 1 session(s)\n"], revoked
    res = blocked(run, "keywarden login")
    with open(out) as f:
        assert f.read() == first + "\n", "the command ran after the revoke"
    assert second not in res["text"], run.why()
    rows = [(r["action"], r["result"]) for r in run.policy_rows()]
    assert rows == [("policy.check", "denied")], run.rows
    # Claude Code asked for the key once, at start, while the session was good;
    # it holds it for the rest of the run, so the refusal still reached the API.
    gets = [r for r in run.rows if r["action"] == "key.get"]
    assert [r["result"] for r in gets] == ["success"], run.rows
    assert all(r["status"] == 200 for r in run.srv.messages()), run.why()


# --------------------------------------------------------------------------
# Redaction (issue 14)
# --------------------------------------------------------------------------

def test_a_key_in_a_tool_output_never_reaches_the_api(kw_redact):
    """PostToolUse with autoRedact: Claude Code sends the model the output with
    the key replaced, and the rest of it as it was."""
    kw = kw_redact
    key, rest = gen_key(), marker("notes")
    notes = os.path.join(kw.project, "notes.txt")
    with open(notes, "w") as f:
        f.write("%s\nANTHROPIC_API_KEY=%s\nthe end\n" % (rest, key))
    os.chown(notes, *USERS["alice"])
    cmd = {"command": "cat notes.txt", "description": "Show the notes"}
    run = kw.run("Bash", cmd, post=True)
    res = ran(run)
    assert rest in res["text"] and "[REDACTED:anthropic-api-key]" in res["text"], run.why()
    assert not run.srv.sent(key) and not run.srv.sent(key[20:44]), "the key reached the API"
    assert run.srv.sent(rest), run.why()
    rec = [r for r in run.rows if r["action"] == "policy.redact"]
    assert len(rec) == 1 and rec[0]["user"] == "alice", run.rows
    meta = json.loads(rec[0]["metadata"])
    assert meta["counts"] == {"anthropic-api-key": 1} and meta["tool"] == "Bash", meta
    assert key not in json.dumps(kw.b.audit_rows())

    # The control: the PreToolUse hook alone lets the output through, key and all.
    run = kw.run("Bash", cmd)
    assert key in ran(run)["text"] and run.srv.sent(key), run.why()
