"""
`keywarden run`'s broker relay (issue 15): inside the sandbox the broker's
socket is out of reach (seccomp refuses AF_UNIX sockets, the socket is
mounted over, KEYWARDEN_SOCKET is scrubbed), so the hook Claude Code runs
(`keywarden hook claude`) and its apiKeyHelper (`keywarden key get NAME`)
reach the broker through a relay the parent serves on loopback TCP, which
passes only the hook's ops and key.get for the names given with
--relay-key, after a token only the child was handed.

As alice (uid 2001), against the real broker, both with a network namespace
(the relay listens on 127.0.0.1:3129 inside it) and without one
(--without userns: a port on the host's loopback, reachable through
Landlock's TCP rule).  The control for each: --no-relay, where the hook
fails closed as it did before the relay.
"""
import json
import os
import socket
import uuid

import pytest

from anthropic_server import AnthropicServer

from conftest import CLI_BIN, SANITIZE
from conftest import assert_ok  # noqa: F401
from users import USERS, id_broker, ok, run_as_user  # noqa: F401
from test_hook_claude import agents, gen_key  # noqa: F401
from test_sandbox import PY, FakeBroker, policy, sb  # noqa: F401
from test_claude_code import claude, claude_env  # noqa: F401
from test_sandbox_claude import CLAUDE_TIMEOUT, REPLY, the_result, why

REFUSED = ("keywarden run: the sandbox's relay passes only policy checks "
           "(and keys named with --relay-key)")
NETS = [pytest.param((), id="netns"), pytest.param(("--without", "userns"), id="no-netns")]


def relay_policy():
    """test_sandbox's policy, with echo and cat among the allowed commands."""
    pol = policy()
    pol["security"]["execution"] = {"allowedCommands": ["echo", "cat", "ls"]}
    return pol


def inside(*argv):
    """argv to run inside the sandbox.  Under ASan, LeakSanitizer cannot stop
    the world there (it needs ptrace, which the sandbox refuses), so leak
    checks are off for the confined keywarden; the relay's side keeps them."""
    if SANITIZE:
        return ["/usr/bin/env", "ASAN_OPTIONS=detect_leaks=0"] + list(argv)
    return list(argv)


def last_line(cp):
    lines = cp.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def hook(s, tool, tool_input, run_args):
    if "--no-relay" in run_args:
        # keywarden itself is not readable inside then (but as CMD): no wrapper,
        # and no leak checks for this run at all (there is no relay to check).
        env = {"ASAN_OPTIONS": "detect_leaks=0"} if SANITIZE else None
        return s.alice.hook(tool, tool_input, env=env,
                            wrap=[CLI_BIN, "run"] + list(run_args) + ["--"])
    wrap = [CLI_BIN, "run"] + list(run_args) + ["--"] + inside()
    return s.alice.hook(tool, tool_input, wrap=wrap)


def hook_rows(s, command):
    rows = s.b.audit_rows("user = 'alice' AND action = 'command_execute'")
    return [r for r in rows if json.loads(r["metadata"] or "{}").get("command") == command
            and json.loads(r["metadata"] or "{}").get("tool") == "Bash"]


@pytest.mark.parametrize("net", NETS)
def test_the_hook_inside_run_is_answered_by_the_broker(sb, net):
    s = sb(relay_policy())
    cp = hook(s, "Bash", {"command": "echo hi"}, ("--relay",) + net)
    assert cp.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (
        cp.returncode, cp.stdout, cp.stderr)
    hso = json.loads(cp.stdout)["hookSpecificOutput"]
    assert hso["permissionDecision"] == "allow", hso
    rows = hook_rows(s, "echo hi")
    assert len(rows) == 1 and rows[0]["uid"] == USERS["alice"][0], rows

    cp = hook(s, "Bash", {"command": "cat ~/.ssh/id_rsa"}, ("--relay",) + net)
    assert cp.returncode == 2, cp.stderr
    assert "denied" in last_line(cp) and ".ssh" in last_line(cp), cp.stderr
    assert "not reachable" not in cp.stderr, cp.stderr
    assert [r["result"] for r in hook_rows(s, "cat ~/.ssh/id_rsa")] == ["denied"]

    # The control: without the relay the hook cannot reach the broker and fails closed.
    cp = hook(s, "Bash", {"command": "echo hi"}, ("--no-relay",) + net)
    assert cp.returncode == 2, cp.stdout
    assert "not reachable" in last_line(cp) and "denied" in last_line(cp), cp.stderr
    assert len(hook_rows(s, "echo hi")) == 1


def test_the_claude_profile_has_the_relay_and_no_relay_takes_it_away(sb):
    s = sb()
    cp = s.run("--profile", "claude", "--check", "--json", "--", "true")
    assert json.loads(cp.stdout)["plan"]["relay"] is True, cp.stdout
    cp = s.run("--profile", "claude", "--no-relay", "--check", "--json", "--", "true")
    assert json.loads(cp.stdout)["plan"]["relay"] is False, cp.stdout
    cp = s.run("--check", "--json", "--", "true")
    assert json.loads(cp.stdout)["plan"]["relay"] is False, cp.stdout
    cp = s.run("--no-relay", "--relay-key", "anthropic", "--", "true")
    assert cp.returncode == 2 and "--relay-key needs the relay" in cp.stderr, cp.stderr
    cp = s.run("--relay-key", "-x", "--", "true")
    assert cp.returncode == 2 and "not a key name" in cp.stderr, cp.stderr
    cp = s.cli("exec", "--key", "anthropic=K", "--relay-key", "anthropic", "--", "true")
    assert cp.returncode == 2 and "go with --sandbox" in cp.stderr, cp.stderr


@pytest.mark.parametrize("net", NETS)
def test_key_get_passes_only_for_relay_keys(sb, net):
    s = sb()
    key, other = gen_key(), gen_key()
    assert ok(s.b.cli("key", "set", "anthropic", input=key + "\n")).startswith("anthropic:")
    assert ok(s.b.cli("key", "set", "other", input=other + "\n")).startswith("other:")
    get = ["--"] + inside(CLI_BIN, "key", "get")

    cp = s.run("--relay", *net, *get, "anthropic")
    assert cp.returncode == 1 and REFUSED in cp.stderr, cp.stderr
    assert key not in cp.stdout
    cp = s.run("--relay-key", "anthropic", *net, *get, "anthropic")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == key
    cp = s.run("--relay-key", "anthropic", *net, *get, "other")
    assert cp.returncode == 1 and REFUSED in cp.stderr, cp.stderr
    assert other not in cp.stdout
    # The control: the same key get outside the sandbox works for alice.
    cp = run_as_user("alice", [CLI_BIN, "key", "get", "other"], s.env(), cwd=s.project,
                     timeout=30)
    assert cp.returncode == 0 and cp.stdout.strip() == other, cp.stderr


# A child that speaks to the relay itself: without the token, with a wrong
# one, too slowly, with frames that are not the protocol, and with ops the
# relay does not pass.  Prints one JSON object of findings.
RAW = r'''
import json, os, socket, struct, sys
host, port, token = os.environ["KEYWARDEN_RELAY"].split(":")
port = int(port)
out = {"keys": sorted(k for k in os.environ if "KEY" in k or "TOKEN" in k)}

def conn(line=None):
    c = socket.create_connection((host, port), timeout=20)
    if line is not None:
        c.sendall(line)
    return c

def frame(obj):
    b = json.dumps(obj).encode()
    return struct.pack(">I", len(b)) + b

def read_reply(c):
    head = b""
    while len(head) < 4:
        got = c.recv(4 - len(head))
        if not got:
            return None
        head += got
    n = struct.unpack(">I", head)[0]
    body = b""
    while len(body) < n:
        got = c.recv(n - len(body))
        if not got:
            return None
        body += got
    return json.loads(body)

def closed(c):
    """What the relay does next: "closed", or what it sent."""
    try:
        got = c.recv(65536)
    except ConnectionResetError:
        return "closed"
    return "closed" if got == b"" else "sent %r" % got[:80]

good = ("KWRELAY %s\n" % token).encode()
hello = frame({"id": 1, "op": "hello", "args": {"version": 1}})

c = conn(); c.sendall(hello); out["no_token"] = closed(c)
wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
c = conn(("KWRELAY %s\n" % wrong).encode() + hello); out["wrong_token"] = closed(c)
c = conn(b"KWRELAY \n" + hello); out["empty_token"] = closed(c)
c = conn(); out["silent"] = closed(c)

c = conn(good + hello)
out["hello"] = read_reply(c)
c.sendall(frame({"id": 2, "op": "key.list", "args": {}, "session": "kw1_forged"}))
out["key.list"] = read_reply(c)
c.sendall(frame({"id": 3, "op": "user.add", "args": {"user": "mallory", "roles": ["admin"]}}))
out["user.add"] = read_reply(c)
c.sendall(frame({"id": 4, "op": "status"}))
out["status"] = read_reply(c)
c.sendall(b"\x00\x00\x00\x05{bad}")
out["bad_json"] = closed(c)

c = conn(good)
c.sendall(struct.pack(">I", 16 * 1024 * 1024))
out["too_large"] = closed(c)

c = conn(good + frame({"id": 7, "op": "status"}))
out["still_serving"] = read_reply(c)
print(json.dumps(out))
'''


@pytest.mark.parametrize("net", NETS)
def test_the_relay_refuses_what_is_not_the_hooks(sb, net):
    s = sb()
    path = os.path.join(s.project, "raw.py")
    with open(path, "w") as f:
        f.write(RAW)
    os.chown(path, *USERS["alice"])
    cp = s.run("--relay", *net, "--", PY, path)
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout.strip().splitlines()[-1])
    assert out["keys"] == ["KEYWARDEN_RELAY", "KEYWARDEN_SANDBOX"], out
    for k in ("no_token", "wrong_token", "empty_token", "silent", "bad_json", "too_large"):
        assert out[k] == "closed", (k, out)
    assert out["hello"]["ok"] is True and out["hello"]["result"]["version"] == 1, out
    for k in ("key.list", "user.add"):
        assert out[k]["ok"] is False, out
        assert out[k]["error"] == {"code": "denied", "message": REFUSED}, out
    assert out["status"]["ok"] is True and out["status"]["id"] == 4, out
    assert out["still_serving"]["ok"] is True and out["still_serving"]["id"] == 7, out
    rows = s.b.audit_rows("action = 'user_create' OR resource LIKE '%mallory%'")
    assert rows == [], rows


# --------------------------------------------------------------------------
# The real Claude Code, set up by `keywarden setup claude` (apiKeyHelper and
# hooks), under `keywarden run --relay-key anthropic`: both layers at once.
# --------------------------------------------------------------------------

CLAUDE_POLICY = {"security": {
    "allowedPaths": ["~/project"],
    "deniedPaths": ["/root", "~/.ssh"],
    "sandbox": {"enabled": True, "allowNetwork": False, "allowExec": True},
    "network": {"allowedHosts": ["api.anthropic.com"], "allowedDomains": ["anthropic.com"]},
    "execution": {"allowedCommands": ["echo", "cat", "ls"]},
}}


def test_claude_with_setup_settings_works_under_run(agents, claude):  # noqa: F811
    b, ag = agents(json.loads(json.dumps(CLAUDE_POLICY)))
    alice = ag["alice"]
    key = gen_key()
    assert ok(b.cli("key", "set", "anthropic", input=key + "\n")).startswith("anthropic:")
    alice.login()
    home = alice.home
    denied_file = os.path.join(home, ".ssh", "id_rsa")
    marker = "kw-relay-claude-%s" % uuid.uuid4().hex
    with open(denied_file, "w") as f:
        f.write("-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n" % marker)
    os.chown(denied_file, *USERS["alice"])
    os.chmod(denied_file, 0o600)
    base = dict(alice.env, HOME=home, KEYWARDEN_CONFIG=os.path.join(home, "no-config.json"))
    cp = run_as_user("alice", [CLI_BIN, "setup", "claude"], base, cwd=home, timeout=30)
    assert cp.returncode == 0, (cp.stdout, cp.stderr)
    with open(os.path.join(home, ".claude", "settings.json")) as f:
        settings = json.load(f)
    assert settings["apiKeyHelper"].endswith(" key get anthropic"), settings
    assert "PreToolUse" in settings["hooks"], settings

    def run(command, relay=("--relay-key", "anthropic")):
        log = os.path.join(os.path.dirname(home), "api-%s.jsonl" % uuid.uuid4().hex[:8])
        srv = AnthropicServer(log, reply_text=REPLY, expect_key=key, tool_uses=[
            {"name": "Bash", "input": {"command": command, "description": "a step"}}]).start()
        extra = {k: alice.env[k] for k in (
            "KEYWARDEN_SOCKET", "KEYWARDEN_TOKEN_CACHE", "XDG_RUNTIME_DIR")}
        extra["KEYWARDEN_CONFIG"] = base["KEYWARDEN_CONFIG"]
        if SANITIZE:
            extra["ASAN_OPTIONS"] = "detect_leaks=0"     # see inside()
        argv = [CLI_BIN, "run"] + list(relay) + ["--", claude, "-p",
                                                 "Do the task in this project.",
                                                 "--allowedTools", "Bash"]
        try:
            cp = run_as_user("alice", argv, claude_env(home, srv, extra), cwd=alice.project,
                             timeout=CLAUDE_TIMEOUT)
        finally:
            srv.stop()
        return cp, srv

    # An allowed command runs; the key came through the helper and the relay.
    cp, srv = run("echo allowed-%s" % marker[-12:])
    assert cp.returncode == 0, why(cp, srv)
    reqs = srv.messages()
    assert reqs and all(r["x-api-key"] == key and r["status"] == 200 for r in reqs), why(cp, srv)
    assert "allowed-%s" % marker[-12:] in the_result(cp, srv)["text"], why(cp, srv)
    assert REPLY in cp.stdout, why(cp, srv)
    assert b.audit_rows("action = 'key.get' AND user = 'alice' AND result = 'success'")
    checks = [json.loads(r["metadata"]) for r in b.audit_rows(
        "user = 'alice' AND action = 'command_execute'")]
    assert any(m.get("tool") == "Bash" and m.get("decision") == "allow" for m in checks), checks

    # A command reading a denied file is refused by the hook, with the policy's reason.
    cp, srv = run("cat " + denied_file)
    assert cp.returncode == 0, why(cp, srv)
    res = the_result(cp, srv)
    print("hook-refused tool_result: %r" % res["text"][:300])
    assert ".ssh" in res["text"] and "denied" in res["text"], why(cp, srv)
    assert "not reachable" not in res["text"], why(cp, srv)
    assert not srv.sent(marker), "the denied file's text reached the API"

    # The control: without the relay the helper cannot fetch the key, so no
    # request carries it (the stand-in answers 401).
    cp, srv = run("echo nothing", relay=("--no-relay",))
    assert not any(r["x-api-key"] == key for r in srv.messages()), why(cp, srv)


# --------------------------------------------------------------------------
# What reaches the broker: a stand-in that records each request.
# --------------------------------------------------------------------------

class RecordingBroker(FakeBroker):
    """Records every request; records runs; allows every tool call."""

    def __init__(self, path, policy_doc):
        self.requests = []
        super().__init__(path, policy_doc)

    def answer(self, req):
        self.requests.append(req)
        result = {"hello": {"version": 1, "server": "fake"},
                  "sandbox.begin": {"policy": self.policy},
                  "policy.check": {"decision": "allow", "reason": "fine"}}.get(req["op"], {})
        return {"id": req["id"], "ok": True, "result": result}


FORGE = r'''
import json, os, socket, struct
host, port, token = os.environ["KEYWARDEN_RELAY"].split(":")
c = socket.create_connection((host, int(port)), timeout=20)
def frame(obj):
    b = json.dumps(obj).encode()
    return struct.pack(">I", len(b)) + b
c.sendall(("KWRELAY %s\n" % token).encode() + frame({"id": 9, "op": "status",
          "session": "kw1_forged_by_the_agent"}))
head = c.recv(4, socket.MSG_WAITALL)
print(c.recv(struct.unpack(">I", head)[0], socket.MSG_WAITALL).decode())
# A policy.check claiming a level of its own: the relay writes the run's.
c.sendall(frame({"id": 10, "op": "policy.check", "args": {"tool": "Bash", "cwd": "/",
          "input": {"command": "true"}, "sandboxed": "forged-level"}}))
head = c.recv(4, socket.MSG_WAITALL)
c.recv(struct.unpack(">I", head)[0], socket.MSG_WAITALL)
'''


def test_the_hook_says_it_is_sandboxed_and_a_forged_session_stays_inside(sb):
    s = sb()
    fake = RecordingBroker(os.path.join(os.path.dirname(s.alice.home), "rec.sock"), {
        "enabled": False, "allowNetwork": False, "allowExec": True, "readOnly": False,
        "allowedPaths": [s.project], "deniedPaths": [], "excludePatterns": [],
        "whitelistMode": False, "whitelist": [], "allowedHosts": [], "allowedDomains": [],
        "home": s.alice.home, "profile": "default"})
    forge = os.path.join(s.project, "forge.py")
    with open(forge, "w") as f:
        f.write(FORGE)
    os.chown(forge, *USERS["alice"])
    env = {"KEYWARDEN_SOCKET": fake.path}
    try:
        confined = s.alice.hook("Bash", {"command": "echo hi"}, env=env,
                                wrap=[CLI_BIN, "run", "--relay", "--"] + inside())
        outside = s.alice.hook("Bash", {"command": "echo hi"}, env=env)
        forged = s.run("--relay", "--", PY, forge, env=env)
    finally:
        fake.close()
    assert confined.returncode == 0 and outside.returncode == 0, (confined.stderr,
                                                                  outside.stderr)
    checks = [r["args"] for r in fake.requests if r["op"] == "policy.check"]
    assert len(checks) == 3, fake.requests
    # The agent's own claim is replaced by the run's level.
    assert checks[2]["sandboxed"] == checks[0]["sandboxed"] != "forged-level", checks
    assert checks[0]["sandboxed"].startswith("landlock-"), checks[0]
    assert "seccomp" in checks[0]["sandboxed"], checks[0]
    assert checks[1].get("sandboxed") is None, checks[1]     # absent or null outside
    assert forged.returncode == 0 and json.loads(forged.stdout)["ok"] is True, forged.stderr
    assert [r for r in fake.requests if r["op"] == "status"], fake.ops
    assert not any("kw1_forged" in json.dumps(r) for r in fake.requests), fake.requests
