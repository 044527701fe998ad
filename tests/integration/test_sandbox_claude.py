"""
The real Claude Code under `keywarden run` (issue 15): `claude -p` runs as
alice confined by the kernel, with keywarden's hook NOT configured (plain
settings, no apiKeyHelper: the key is handed in, by `keywarden run --env
ANTHROPIC_API_KEY` or `keywarden exec --sandbox --key
anthropic=ANTHROPIC_API_KEY`, and no relay), against anthropic_server.py scripted to make Claude Code
read a file under deniedPaths.  The kernel refuses the read: the stand-in
receives a tool_result that is an error (permission denied), and the file's
text never reaches the API.  The control runs the same script without the
sandbox, same key, same flags: Claude Code reads the file and its text goes
out.  So the sandbox is what blocks, not Claude Code nor keywarden's hook.

The claude profile is chosen by itself (the command is claude): it grants
~/.claude, ~/.claude.json and the install tree, and forwards the loopback
port of ANTHROPIC_BASE_URL into the sandbox's network namespace.
"""
import json
import os
import re
import uuid

import pytest

from anthropic_server import AnthropicServer
from conftest import CLI_BIN, SANITIZE
from users import USERS, id_broker, ok, run_as_user  # noqa: F401
from test_claude_code import claude, claude_env  # noqa: F401
from test_hook_claude import agents, gen_key  # noqa: F401

REPLY = "Done: the stand-in model has nothing more to do."
CLAUDE_TIMEOUT = 90 * (2 if SANITIZE else 1)
KERNEL_REFUSAL = re.compile(r"EACCES|permission denied|operation not permitted|EPERM", re.I)

POLICY = {"security": {
    "allowedPaths": ["~/project"],
    "deniedPaths": ["/root", "~/.ssh"],
    "sandbox": {"enabled": True, "allowNetwork": False, "allowExec": True},
    "network": {"allowedHosts": ["api.anthropic.com"], "allowedDomains": ["anthropic.com"]},
}}


class Setup:
    def __init__(self, b, alice, claude_bin, key):
        self.b, self.alice, self.bin, self.key = b, alice, claude_bin, key
        self.home, self.project = alice.home, alice.project
        self.claude_dir = os.path.join(self.home, ".claude")
        os.makedirs(self.claude_dir, mode=0o700, exist_ok=True)
        # Plain settings: no hook of keywarden's, no apiKeyHelper.
        with open(os.path.join(self.claude_dir, "settings.json"), "w") as f:
            json.dump({}, f)
        self.marker = "kw-sandbox-claude-%s" % uuid.uuid4().hex
        self.denied = os.path.join(self.home, ".ssh", "id_rsa")
        with open(self.denied, "w") as f:
            f.write("-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n"
                    "-----END OPENSSH PRIVATE KEY-----\n" % self.marker)
        for base, dirs, files in os.walk(self.home):
            for n in [base] + [os.path.join(base, x) for x in dirs + files]:
                os.chown(n, *USERS["alice"])
        os.chmod(self.denied, 0o600)

    def run(self, tool, tool_input, sandboxed):
        log = os.path.join(os.path.dirname(self.home), "api-%s.jsonl" % uuid.uuid4().hex[:8])
        srv = AnthropicServer(log, reply_text=REPLY, expect_key=self.key,
                              tool_uses=[{"name": tool, "input": tool_input}]).start()
        extra = {k: self.alice.env[k] for k in (
            "KEYWARDEN_SOCKET", "KEYWARDEN_TOKEN_CACHE", "XDG_RUNTIME_DIR")}
        claude_argv = [self.bin, "-p", "Do the task in this project.", "--allowedTools", tool]
        if sandboxed == "exec":
            argv = [CLI_BIN, "exec", "--sandbox", "--key", "anthropic=ANTHROPIC_API_KEY",
                    "--"] + claude_argv
        elif sandboxed == "run":
            # The key from the caller's environment, handed in on purpose (the
            # scrub takes ANTHROPIC_API_KEY otherwise); no relay, no hook.
            extra["ANTHROPIC_API_KEY"] = self.key
            argv = [CLI_BIN, "run", "--no-relay", "--env", "ANTHROPIC_API_KEY",
                    "--"] + claude_argv
        else:
            extra["ANTHROPIC_API_KEY"] = self.key
            argv = claude_argv
        try:
            cp = run_as_user("alice", argv, claude_env(self.home, srv, extra),
                             cwd=self.project, timeout=CLAUDE_TIMEOUT)
        finally:
            srv.stop()
        return cp, srv


def why(cp, srv):
    return "exit %d\nstdout: %s\nstderr: %s\nrequests: %s" % (
        cp.returncode, cp.stdout, cp.stderr, json.dumps(srv.requests(), indent=1)[-6000:])


def the_result(cp, srv):
    uses = srv.tool_uses_sent()
    assert len(uses) == 1, why(cp, srv)
    mine = [t for t in srv.tool_results() if t["tool_use_id"] == uses[0]["id"]]
    assert len(mine) == 1, why(cp, srv)
    return mine[0]


@pytest.fixture
def setup(agents, claude):
    b, ag = agents(json.loads(json.dumps(POLICY)))
    key = gen_key()
    assert ok(b.cli("key", "set", "anthropic", input=key + "\n")).startswith(
        "anthropic: version 1 is current")
    ag["alice"].login()
    return Setup(b, ag["alice"], claude, key)


@pytest.mark.parametrize("launcher", ["run", "exec"])
@pytest.mark.parametrize("tool,make_input", [
    ("Read", lambda s: {"file_path": s.denied}),
    ("Bash", lambda s: {"command": "cat " + s.denied, "description": "Show the key"}),
])
def test_claude_under_keywarden_run_cannot_read_a_denied_file(setup, tool, make_input, launcher):
    cp, srv = setup.run(tool, make_input(setup), sandboxed=launcher)
    assert cp.returncode == 0, why(cp, srv)
    res = the_result(cp, srv)
    assert res["is_error"] or KERNEL_REFUSAL.search(res["text"]), why(cp, srv)
    assert KERNEL_REFUSAL.search(res["text"]), why(cp, srv)
    print("sandboxed %s tool_result: %r" % (tool, res["text"][:300]))
    assert "keywarden" not in res["text"], "the hook is not configured: " + res["text"]
    assert not srv.sent(setup.marker), "the denied file's text reached the API"
    assert REPLY in cp.stdout, why(cp, srv)
    runs = setup.b.audit_rows("action = 'command_execute' AND user = 'alice'")
    assert [(json.loads(r["metadata"])["profile"], r["resource"]) for r in runs] == [
        ("claude", "command/claude")], runs

    # The control: the same script without the sandbox reads the file.
    cp, srv = setup.run(tool, make_input(setup), sandboxed=False)
    assert cp.returncode == 0, why(cp, srv)
    assert setup.marker in the_result(cp, srv)["text"], why(cp, srv)
    assert srv.sent(setup.marker), why(cp, srv)
