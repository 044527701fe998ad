"""
A broker with its API proxy, for the API proxy's end-to-end tests (issue 16).

The pieces are the real ones: keywardend started the way users.py starts it
(nss_wrapper users, a movable clock), with `broker.apiProxy.enabled` true so
it spawns the real keywarden-proxy on a free loopback port; the stand-in
Messages API (anthropic_server.py) over real TLS with a CA made by openssl
in the test (tls_ca.py) and named in `security.network.caFile`; alice
enrolled with the developer role, logged in with an oathtool code and her
session in the CLI's file cache; the key `anthropic` set by root.

    from apiproxy_support import KEY, apiproxy, tls_ca, upstream  # fixtures
    kw = apiproxy()              # or apiproxy(extra={...}, env={...}, start=False)
    kw.b                         # the Broker (b.sock, b.audit_rows(), b.cli())
    kw.url                       # http://127.0.0.1:PORT, where the proxy listens
    kw.alice                     # test_hook_claude.Agent: .env, .home, .login()
    kw.as_alice("key", "get", "anthropic", "--proxy")   # the CLI as alice
    kw.call(token, body=None)    # one POST /v1/messages through the proxy

Fixtures: tls_ca (a tls_ca.TestCA), upstream (the stand-in over TLS 1.3,
expecting KEY), apiproxy (the factory above; its default upstream is
`upstream`).
"""
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from anthropic_server import AnthropicServer
from conftest import CLI_BIN, IO_TIMEOUT, assert_ok, deep_merge
from tls_ca import TestCA
from users import USERS, UserConn, id_broker, run_as_user, start_clocked  # noqa: F401
from test_hook_claude import Agent

# A fake key of the real format: what the stand-in expects and the proxy adds.
KEY = "sk-ant-api03-" + "proxyTestKey0123456789_-" * 4 + "abcdefghAA"
REPLY = "Hello through the keywarden API proxy."
MODEL = "claude-sonnet-4-5"
PROXY_BIN = os.path.join(os.path.dirname(CLI_BIN), "keywarden-proxy")


def free_port():
    """A loopback TCP port nothing listens on just now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def proxy_config(base_url, ca_pem, port, extra=None):
    """The broker's configuration for a proxy on port forwarding to base_url."""
    doc = {
        "broker": {"apiProxy": {"enabled": True, "listen": "127.0.0.1:%d" % port}},
        "api": {"baseUrl": base_url},
        "security": {"network": {"caFile": ca_pem,
                                 "allowedHosts": ["127.0.0.1", "localhost",
                                                  "api.anthropic.com"]}},
    }
    return deep_merge(doc, extra or {})


def message_body(stream=False, model=MODEL, text="hello"):
    return {"model": model, "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": text}]}


class Setup:
    """One broker with its proxy, alice, and the upstream it forwards to."""

    def __init__(self, b, port, server, alice):
        self.b, self.port, self.server, self.alice = b, port, server, alice
        self.url = "http://127.0.0.1:%d" % port

    def as_alice(self, *args, env=None, input=None, timeout=30):
        """build/keywarden ARGS as alice, with her session cache."""
        return run_as_user("alice", [CLI_BIN] + list(args), dict(self.alice.env, **(env or {})),
                           cwd=self.alice.home, input=input, timeout=timeout)

    def proxy_token(self, name="anthropic"):
        """key.proxy_token's result for alice's cached session, asked over the
        protocol as alice (token, expires, base_url)."""
        with open(self._cache_file()) as f:
            session = f.read().split("\n")[1]
        with UserConn(self.b, "alice") as c:
            return assert_ok(c.call("key.proxy_token", {"name": name}, session=session))

    def start_refused(self):
        """Start the (configured, stopped) broker expecting it to refuse:
        its stderr, once it has exited without saying READY=1."""
        self.b.start(env=self.b.nss_env, wait=False)
        assert self.b.wait_ready(exit_ok=True) is False, \
            "keywardend started:\n%s" % self.b.stderr()
        return self.b.stderr()

    def _cache_file(self):
        d = os.path.join(self.alice.run_dir, "keywarden")
        names = [n for n in os.listdir(d) if n.startswith("session-")]
        assert len(names) == 1, names
        return os.path.join(d, names[0])

    def call(self, token, body=None, header="x-api-key", path="/v1/messages?beta=true",
             timeout=None):
        """POST body (JSON) through the proxy with token: (status, headers, text)."""
        data = json.dumps(body if body is not None else message_body()).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST")
        req.add_header("content-type", "application/json")
        req.add_header("anthropic-version", "2023-06-01")
        if token is not None:
            if header == "x-api-key":
                req.add_header("x-api-key", token)
            else:
                req.add_header("authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=timeout or IO_TIMEOUT * 3) as r:
                return r.status, dict(r.headers), r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            if e.code == 502 and "timed out" in text and not self.server.stall_first:
                # Not expected of any test: what the upstream was doing.
                import connect_proxy
                sys.stderr.write("upstream timed out:\n%s\n%s\n%s\n" % (
                    self.server.diagnose(), "\n".join(connect_proxy.EVENTS[-30:]),
                    self.proxy_threads()))
            return e.code, dict(e.headers), text

    def proxy_threads(self):
        """The broker's keywarden-proxy child: each thread's state and wchan."""
        out = []
        for name in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % name) as f:
                    stat = f.read()
                if "(keywarden-prox" not in stat or \
                        int(stat[stat.rindex(")") + 2:].split()[1]) != self.b.proc.pid:
                    continue
                for t in os.listdir("/proc/%s/task" % name):
                    with open("/proc/%s/task/%s/stat" % (name, t)) as f:
                        st = f.read()
                    with open("/proc/%s/task/%s/wchan" % (name, t)) as f:
                        wchan = f.read()
                    out.append("proxy %s task %s: %s %s" % (name, t, st[st.rindex(")") + 2:][:1], wchan))
                with open("/proc/%s/maps" % name) as f:
                    out.append("faketime loaded: %s" % ("faketime" in f.read()))
                try:
                    out.append(subprocess.run(
                        ["gdb", "-batch", "-p", name, "-ex", "thread apply all bt"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        universal_newlines=True, timeout=60).stdout[-12000:])
                except (OSError, subprocess.SubprocessError) as e:
                    out.append("gdb: %s" % e)
            except (OSError, ValueError):
                continue
        return "\n".join(out)

    def api_calls(self):
        """The broker's api_call audit rows of calls through the proxy, oldest
        first: those naming a key (the hook's api_call rows name a host)."""
        return [r for r in self.b.audit_rows("action = 'api_call'")
                if "key" in json.loads(r["metadata"] or "{}")]


@pytest.fixture
def tls_ca(tmpdir_short):
    os.chmod(tmpdir_short, 0o755)
    return TestCA(tmpdir_short)


@pytest.fixture
def upstream(tls_ca, tmpdir_short):
    """The stand-in Messages API over TLS (1.3: Python's default maximum)."""
    srv = AnthropicServer(os.path.join(tmpdir_short, "upstream.jsonl"), reply_text=REPLY,
                          expect_key=KEY, tls=tls_ca.server).start()
    yield srv
    srv.stop()


@pytest.fixture
def apiproxy(id_broker, tmpdir_short, tls_ca, upstream):
    """make(extra=None, server=upstream, base_url=None, env=None, start=True,
    login=True, set_key=True, roles=("developer",)) -> Setup.

    env is added to the broker's environment (e.g. PROXY_USER/PROXY_PASS).
    With start=False the broker is configured, not started (kw.b.start(...)
    then, e.g. wait=False to see it refuse)."""
    def make(extra=None, server=None, base_url=None, env=None, start=True, login=True,
             set_key=True, roles=("developer",)):
        server = server or upstream
        port = free_port()
        conf = proxy_config(base_url or server.url, tls_ca.ca_pem, port, extra)
        b = id_broker(conf, mfa_required=True, start_it=False)
        os.chmod(tmpdir_short, 0o755)
        home = os.path.join(tmpdir_short, "home-alice")
        with open(b.nss_env["NSS_WRAPPER_PASSWD"], "w") as f:
            for name, (uid, gid) in USERS.items():
                h = home if name == "alice" else ("/root" if uid == 0 else "/nonexistent")
                f.write("%s:x:%d:%d:%s:%s:/bin/sh\n" % (name, uid, gid, name, h))
        b.nss_env.update(env or {})
        alice = None
        if start:
            start_clocked(b)
            with b.connect() as c:
                b.enrolled = {"alice": assert_ok(c.call("user.add", {
                    "user": "alice", "roles": list(roles)}))}
            alice = Agent(b, tmpdir_short, "alice")
            if set_key:
                cp = b.cli("key", "set", "anthropic", input=KEY + "\n")
                assert cp.returncode == 0, cp
            if login:
                alice.login()
        return Setup(b, port, server, alice)
    return make
