"""
The real Claude Code through the API proxy (issue 16): Claude Code never
holds the key.

alice (uid 2001, logged in with a TOTP code, her session in the CLI's file
cache) runs the real `claude -p` (test_claude_code.py installs it) two ways:

  - `keywarden exec --proxy -- claude -p ...`: exec puts the proxy's URL in
    ANTHROPIC_BASE_URL and a proxy token in ANTHROPIC_AUTH_TOKEN, and takes
    ANTHROPIC_API_KEY out (the caller's environment holds a decoy key there);
  - settings written by `keywarden setup claude --proxy`: apiKeyHelper
    `keywarden key get anthropic --proxy` and env.ANTHROPIC_BASE_URL.

The broker spawns the real keywarden-proxy (apiproxy_support.py), which
forwards to the stand-in Messages API (anthropic_server.py) over TLS 1.3 with
a CA made by openssl in the test.  What is checked from outside:

  - the stand-in receives the real key, and no keywarden token;
  - the key is nowhere in Claude Code's processes' environments
    (/proc/PID/environ, read while claude runs) or arguments, in what its
    Bash tool sees (an `env` tool call, whose output comes back to the API),
    or in the apiKeyHelper's output;
  - streaming: the stand-in answers with server-sent events and Claude Code
    prints the text; through the proxy the first event arrives while the
    stand-in still holds the rest;
  - `admin session revoke` and `admin user lock` between two API calls of
    one claude run: the next call is refused and Claude Code's output shows
    keywarden's reason;
  - every call is an api_call audit record with model and tokens, and
    `keywarden admin usage` sums them.

CLAUDE_CODE_MAX_RETRIES=0: a refused call is not retried for a minute.
Claude Code's hooks are left out of the written settings (test_claude_policy.py
tests them): this is about the key.
"""
import http.client
import json
import os
import threading
import uuid

import pytest

from anthropic_server import AnthropicServer
from apiproxy_support import (KEY, MODEL, REPLY, apiproxy, message_body,  # noqa: F401
                              tls_ca, upstream)
from conftest import CLI_BIN, SANITIZE, wait_for
from test_claude_code import claude, claude_env  # noqa: F401
from users import USERS, id_broker, run_as_user  # noqa: F401

CLAUDE_TIMEOUT = 60 * (2 if SANITIZE else 1)
DECOY = "sk-ant-api03-" + "decoyKeyInTheCallersEnv_" * 4 + "AA"
TOOLS = "Bash"


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def claude_processes(claude_bin):
    """{pid: (argv, environ)} of the processes of uid alice running Claude Code
    (its node, and what it starts with "claude" on the command line)."""
    found = {}
    real = os.path.realpath(claude_bin)
    keywarden = os.path.realpath(CLI_BIN)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/status" % pid) as f:
                uid = next(int(l.split()[1]) for l in f if l.startswith("Uid:"))
            if uid != USERS["alice"][0]:
                continue
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
            exe = os.path.realpath("/proc/%s/exe" % pid)
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = dict(e.decode("utf-8", "replace").partition("=")[::2]
                           for e in f.read().split(b"\0") if e)
        except (OSError, StopIteration):
            continue
        # keywarden exec itself, whose caller's environment held the decoy
        # key, is not Claude Code: what it starts is.
        if exe == keywarden:
            continue
        if any("claude" in a for a in argv) or "claude" in exe or exe == real:
            found[int(pid)] = (argv, env)
    return found


class Watch:
    """Read Claude Code's processes while it waits for the API: the stand-in
    calls snap() just before it sends its scripted tool use."""

    def __init__(self, claude_bin):
        self.bin = claude_bin
        self.seen = {}
        self.lock = threading.Lock()
        self.then = []          # extra actions, run after the snapshot

    def snap(self, use):
        procs = claude_processes(self.bin)
        with self.lock:
            self.seen.update(procs)
        for action in self.then:
            action()


def make_home(kw, settings=None):
    """alice's HOME for claude: .claude/settings.json (given, or empty), a project."""
    home = os.path.join(kw.alice.home, "claude-" + uuid.uuid4().hex[:6])
    work = os.path.join(home, "project")
    for d in (home, os.path.join(home, ".claude"), work):
        os.makedirs(d, mode=0o700, exist_ok=True)
        os.chown(d, *USERS["alice"])
    path = os.path.join(home, ".claude", "settings.json")
    with open(path, "w") as f:
        json.dump(settings or {}, f)
    os.chown(path, *USERS["alice"])
    return home, work


def alice_env(kw, home, extra=None):
    """claude_env's minimal environment with alice's broker and session cache,
    and no ANTHROPIC_BASE_URL of the test's (exec or the settings set it)."""
    env = claude_env(home, kw.server, {k: kw.alice.env[k] for k in (
        "KEYWARDEN_SOCKET", "KEYWARDEN_TOKEN_CACHE", "XDG_RUNTIME_DIR")})
    env.pop("ANTHROPIC_BASE_URL")
    env.update(extra or {})
    return env


def run_exec_proxy(kw, claude_bin, home, work, prompt="hello", tools=False):
    argv = [CLI_BIN, "exec", "--proxy", "--", claude_bin, "-p", prompt]
    if tools:
        argv += ["--allowedTools", TOOLS]
    env = alice_env(kw, home, {"ANTHROPIC_API_KEY": DECOY})
    return run_as_user("alice", argv, env, cwd=work, timeout=CLAUDE_TIMEOUT)


def assert_real_key_upstream(srv, since=0):
    reqs = srv.messages()[since:]
    assert reqs, "no request reached the stand-in"
    for r in reqs:
        assert r["x-api-key"] == KEY, r
        assert r["tls"] == "TLSv1.3", r
        # The token stays with the proxy (the env dump a tool sends back may show it).
        headers = json.dumps({k: r[k] for k in ("x-api-key", "authorization")})
        assert "kwp1_" not in headers and DECOY not in json.dumps(r), r
    return reqs


def no_key_in(procs):
    assert procs, "no Claude Code process was seen while it ran"
    for pid, (argv, env) in procs.items():
        assert KEY not in " ".join(argv), (pid, argv)
        assert all(KEY not in v for v in env.values()), "the key is in pid %d's environment" % pid
        assert "ANTHROPIC_API_KEY" not in env, (pid, "ANTHROPIC_API_KEY left in")
        assert DECOY not in json.dumps(env), (pid, "the decoy key left in")


@pytest.fixture
def scripted(tls_ca, tmpdir_short):
    """make(tool_uses, on_tool_use) -> a stand-in over TLS 1.3 playing a model
    that calls tools; stopped at the end."""
    made = []

    def make(tool_uses=(), on_tool_use=None, **kw):
        srv = AnthropicServer(os.path.join(tmpdir_short, "api-%d.jsonl" % len(made)),
                              reply_text=REPLY, expect_key=KEY, tls=tls_ca.server,
                              tool_uses=list(tool_uses), on_tool_use=on_tool_use,
                              **kw).start()
        made.append(srv)
        return srv
    yield make
    for s in made:
        s.stop()


ENV_DUMP = {"name": "Bash", "input": {"command": "env", "description": "show the environment"}}


# --------------------------------------------------------------------------
# exec --proxy
# --------------------------------------------------------------------------

def test_exec_proxy_runs_claude_without_the_key(claude, apiproxy, scripted):
    watch = Watch(claude)
    srv = scripted([ENV_DUMP], on_tool_use=watch.snap)
    kw = apiproxy(server=srv)
    home, work = make_home(kw)
    cp = run_exec_proxy(kw, claude, home, work, "Show me the environment.", tools=True)
    assert cp.returncode == 0, "claude exit %d\n%s\n%s" % (cp.returncode, cp.stdout, cp.stderr)
    assert REPLY in cp.stdout, cp.stdout

    # The stand-in got the real key on every call; Claude Code sent the token.
    reqs = assert_real_key_upstream(srv)
    assert len(reqs) >= 2 and all(r["stream"] for r in reqs), reqs
    # Claude Code's processes, read while it waited for the API: the proxy's
    # URL and a token, no key, no ANTHROPIC_API_KEY (the decoy was removed).
    no_key_in(watch.seen)
    envs = [env for _, env in watch.seen.values() if "ANTHROPIC_AUTH_TOKEN" in env]
    assert envs, watch.seen
    for env in envs:
        assert env["ANTHROPIC_AUTH_TOKEN"].startswith("kwp1_"), env
        assert env["ANTHROPIC_BASE_URL"] == kw.url, env
    # What its Bash tool saw, sent back to the API: the token at most, never the key.
    results = srv.tool_results()
    assert results and "ANTHROPIC_BASE_URL=" + kw.url in results[0]["text"], results
    assert KEY not in results[0]["text"] and DECOY not in results[0]["text"]
    assert not srv.sent(KEY), "the key was in a request body Claude Code sent"

    # The audit trail: one api_call per call, with the model and the tokens.
    rows = kw.api_calls()
    assert len(rows) == len(reqs), rows
    for r in rows:
        m = json.loads(r["metadata"])
        assert r["user"] == "alice" and r["result"] == "success", r
        assert r["resource"] == "key/anthropic" and m["key"] == "anthropic", r
        assert m["model"] and m["input_tokens"] == 12 and m["output_tokens"] >= 1, m
        assert m["status"] == 200, m
    assert KEY not in json.dumps(kw.b.audit_rows())


def test_streaming_passes_through_as_it_comes(apiproxy, scripted):
    """The first events reach the client while the stand-in holds the rest."""
    hold = threading.Event()
    srv = scripted(stream_pause=hold)
    kw = apiproxy(server=srv)
    token = kw.proxy_token()["token"]
    conn = http.client.HTTPConnection("127.0.0.1", kw.port, timeout=30)
    try:
        conn.request("POST", "/v1/messages?beta=true", json.dumps(message_body(stream=True)),
                     {"content-type": "application/json", "x-api-key": token,
                      "anthropic-version": "2023-06-01"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        assert resp.getheader("content-type").startswith("text/event-stream")
        got = b""
        while b"text_delta" not in got:
            chunk = resp.read1(65536)
            assert chunk, "the stream ended before the first text delta: %r" % got
            got += chunk
        assert srv.paused.is_set() and not hold.is_set()
        assert b"message_stop" not in got, "the whole reply came before the stand-in sent it"
        hold.set()
        rest = resp.read()
        assert b"message_stop" in rest, rest
    finally:
        hold.set()
        conn.close()
    rows = wait_for(lambda: kw.api_calls(), 10, what="the call's api_call record")
    assert json.loads(rows[-1]["metadata"])["output_tokens"] >= 1, rows


# --------------------------------------------------------------------------
# setup claude --proxy: the apiKeyHelper prints a token
# --------------------------------------------------------------------------

def test_setup_claude_proxy_settings_run_claude_without_the_key(claude, apiproxy, scripted):
    watch = Watch(claude)
    srv = scripted([ENV_DUMP], on_tool_use=watch.snap)
    kw = apiproxy(server=srv)
    home, work = make_home(kw)
    # alice's keywarden configuration says where the proxy listens.
    conf = os.path.join(home, "keywarden.json")
    with open(conf, "w") as f:
        json.dump({"broker": {"socket": kw.b.sock, "apiProxy": {
            "enabled": True, "listen": "127.0.0.1:%d" % kw.port}}}, f)
    os.chown(conf, *USERS["alice"])
    os.chmod(conf, 0o600)
    env = alice_env(kw, home, {"KEYWARDEN_CONFIG": conf})
    cp = run_as_user("alice", [CLI_BIN, "setup", "claude", "--proxy"], env, cwd=work)
    assert cp.returncode == 0, cp
    settings_path = os.path.join(home, ".claude", "settings.json")
    with open(settings_path) as f:
        settings = json.load(f)
    helper = os.path.realpath(CLI_BIN) + " key get anthropic --proxy"
    assert settings["apiKeyHelper"] == helper, settings
    assert settings["env"]["ANTHROPIC_BASE_URL"] == kw.url, settings
    # The hooks have their own tests (test_claude_policy.py).
    settings.pop("hooks")
    with open(settings_path, "w") as f:
        json.dump(settings, f)

    # The helper's output: a token, one line, not the key.
    cp = run_as_user("alice", helper.split(), env, cwd=work)
    assert cp.returncode == 0 and cp.stdout.startswith("kwp1_"), cp
    assert KEY not in cp.stdout + cp.stderr and cp.stdout.count("\n") == 1

    cp = run_as_user("alice", [claude, "-p", "Show me the environment.", "--allowedTools",
                               TOOLS], env, cwd=work, timeout=CLAUDE_TIMEOUT)
    assert cp.returncode == 0, "claude exit %d\n%s\n%s" % (cp.returncode, cp.stdout, cp.stderr)
    assert REPLY in cp.stdout, cp.stdout
    assert_real_key_upstream(srv)
    no_key_in(watch.seen)
    results = srv.tool_results()
    assert results and "ANTHROPIC_BASE_URL=" + kw.url in results[0]["text"], results
    assert KEY not in results[0]["text"]
    assert not srv.sent(KEY)
    assert os.path.exists(settings_path) and KEY not in open(settings_path).read()


# --------------------------------------------------------------------------
# Revoke and lock stop the very next call
# --------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["revoke", "lock"])
def test_revoke_or_lock_stops_the_next_call(claude, apiproxy, scripted, how):
    """Between the first API call of a claude run (answered with a tool use)
    and the second (the tool's result), the administrator acts; the second
    call is refused by the proxy and Claude Code shows keywarden's reason."""
    acted = []
    kw_box = []

    def act(use):
        b = kw_box[0].b
        if how == "revoke":
            cp = b.cli("admin", "session", "revoke", "--user", "alice")
        else:
            cp = b.cli("admin", "user", "lock", "alice", "--message", "incident 7")
        acted.append(cp)

    srv = scripted([{"name": "Bash", "input": {"command": "echo hi", "description": "x"}}],
                   on_tool_use=act)
    kw = apiproxy(server=srv)
    kw_box.append(kw)
    home, work = make_home(kw)
    cp = run_exec_proxy(kw, claude, home, work, "Say hi with the tool.", tools=True)
    assert acted and acted[0].returncode == 0, acted
    assert REPLY not in cp.stdout, "claude got an answer after the %s" % how
    out = cp.stdout + cp.stderr
    assert "keywarden" in out, "Claude Code does not show keywarden's reason:\n%s" % out
    # The refusal in the Messages API's shape: Claude Code prints its message.
    if how == "lock":
        assert "403" in out and "locked" in out and "incident 7" in out, out
    else:
        assert "401" in out and "run keywarden login" in out, out
    # Exactly the one call before the act reached the stand-in.
    assert len(srv.messages()) == 1, srv.messages()
    rows = kw.api_calls()
    assert [r["result"] for r in rows] == ["success", "denied"], rows
    assert json.loads(rows[-1]["metadata"]).get("error") in (
        "expired", "locked", "denied", "session_required"), rows[-1]


# --------------------------------------------------------------------------
# Usage: the audit trail and admin usage
# --------------------------------------------------------------------------

def test_admin_usage_sums_the_calls(apiproxy):
    kw = apiproxy()
    token = kw.proxy_token()["token"]
    for stream in (False, True, False):
        status, _, text = kw.call(token, message_body(stream=stream))
        assert status == 200, text
    rows = wait_for(lambda: len(kw.api_calls()) == 3 and kw.api_calls(), 10,
                    what="three api_call records")
    assert all(json.loads(r["metadata"])["model"] == MODEL for r in rows), rows

    doc = json.loads(kw.b.cli("admin", "usage", "--json").stdout)
    mine = [r for r in doc["rows"] if r["user"] == "alice" and r["model"] == MODEL]
    assert len(mine) == 1, doc
    assert mine[0]["calls"] == 3 and mine[0]["input_tokens"] == 36, mine
    assert mine[0]["output_tokens"] >= 3 and mine[0]["errors"] == 0, mine
    cp = kw.b.cli("admin", "usage", "--since", "1h")
    assert cp.returncode == 0, cp
    lines = cp.stdout.splitlines()
    assert lines[0].split() == ["USER", "MODEL", "CALLS", "INPUT-TOKENS", "OUTPUT-TOKENS",
                                "ERRORS"], lines
    assert any(l.split()[:4] == ["alice", MODEL, "3", "36"] for l in lines[1:]), lines
    # Not an administrator: refused.
    cp = kw.as_alice("admin", "usage")
    assert cp.returncode == 1 and "denied" in cp.stderr, cp
