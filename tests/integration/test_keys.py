"""API keys through the real broker and CLI (SPEC5): key set/get/list/rotate/
revoke/verify/import, exec, who may read what with sessions, and where a
key's value must never show up (audit rows, broker stderr, files under
dataDir, argv and environment of the broker and of the CLI).

Values go in on stdin, as the CLI demands.  Every test makes its own random
"canary" values (random_key), so finding one of them anywhere is a leak.
Users with sessions log in over a raw UserConn (TOTP from oathtool for the
broker's faked clock) and the CLI finds the token in its file cache
(KEYWARDEN_TOKEN_CACHE=file, $XDG_RUNTIME_DIR/keywarden/session-HEX).
"""
import hashlib
import http.server
import json
import os
import secrets
import signal
import string
import subprocess
import threading
import time

import pytest

from conftest import CLI_BIN, IO_TIMEOUT, SLOW, assert_ok, clean_env, wait_for
from users import (USERS, UserConn, as_json, denied_row, epoch, fails, id_broker, mfa_broker, ok,  # noqa: F401
                   run_as, table, totp)

B64URL = string.ascii_letters + string.digits + "-_"


def random_key(prefix="sk-ant-api03-", n=40):
    return prefix + "".join(secrets.choice(B64URL) for _ in range(n))


def key_cli(b, *args, input=None, env=None, user="root", timeout=None):
    """build/keywarden as user against b; value (if any) on stdin."""
    return run_as(b, user, *args, input=input, env=env, timeout=timeout,
                  drop=("KEYWARDEN_TOKEN_CACHE", "XDG_RUNTIME_DIR", "ANTHROPIC_API_KEY"))


def set_key(b, name, value, user="root", env=None):
    cp = key_cli(b, "key", "set", name, input=value + "\n", user=user, env=env)
    out = ok(cp)
    assert value not in out + cp.stderr
    return cp


def get_key(b, name, *extra, user="root", env=None):
    """`key get`: exactly the value and a newline, nothing on stderr."""
    cp = key_cli(b, "key", "get", name, *extra, user=user, env=env)
    out = ok(cp)
    assert cp.stderr == "", cp.stderr
    assert out.endswith("\n") and out.count("\n") == 1, repr(out)
    return out[:-1]


def keys_json(b):
    doc = as_json(key_cli(b, "key", "list", "--json"))
    assert isinstance(doc, dict) and isinstance(doc.get("keys"), list), doc
    return {k["name"]: k for k in doc["keys"]}


def sealed(b, name, version):
    return os.path.join(b.datadir, "keystore", name, "v%d.sealed" % version)


def every_file(root):
    for d, _, files in os.walk(root):
        for f in files:
            yield os.path.join(d, f)


def assert_nowhere(b, values, also=()):
    """None of values in any file under dataDir (WAL and -shm included), the
    audit rows, the broker's stderr or argv/environ, or the texts in also."""
    needles = [v.encode() for v in values]
    # A value's middle is as secret as the whole: look for 20-byte slices too.
    needles += [v.encode()[13:33] for v in values if len(v) >= 33]
    for path in every_file(b.datadir):
        with open(path, "rb") as f:
            data = f.read()
        for n in needles:
            assert n not in data, "%s holds a key value (%r...)" % (path, n[:16])
    for r in b.audit_rows():
        text = json.dumps(r)
        for v in values:
            assert v not in text and v[13:33] not in text, "audit row holds a value: %r" % r
    for proc, path in b.history:
        text = b.stderr(path)
        for v in values:
            assert v not in text, "broker stderr holds a value:\n%s" % text
    if b.running():
        for what in ("cmdline", "environ"):
            with open("/proc/%d/%s" % (b.pid, what), "rb") as f:
                data = f.read()
            for n in needles:
                assert n not in data, "the broker's %s holds a key value" % what
    for text in also:
        for v in values:
            assert v not in text


# --------------------------------------------------------------------------
# set, get, list
# --------------------------------------------------------------------------

def test_set_get_list(broker_factory):
    b = broker_factory()
    k1, k2, o1 = random_key(), random_key(), random_key("sk-proj-", 48)
    cp = set_key(b, "anthropic", k1)
    assert cp.stdout.strip() == "anthropic: version 1 is current", cp.stdout
    assert get_key(b, "anthropic") == k1
    set_key(b, "openai", o1)
    assert get_key(b, "openai") == o1

    doc = as_json(key_cli(b, "key", "get", "anthropic", "--json"))
    assert doc == {"name": "anthropic", "version": 1, "value": k1}, doc

    # The human listing: aligned columns, one row per key, sorted, no values.
    cp = key_cli(b, "key", "list")
    out = ok(cp)
    cols, rows = table(out, "NAME")
    assert cols == ["NAME", "CURRENT", "VERSIONS", "CREATED", "LAST-USED"], cols
    assert [r["NAME"] for r in rows] == ["anthropic", "openai"], rows
    assert rows[0]["CURRENT"] == "1" and rows[0]["VERSIONS"] == "1", rows
    assert k1 not in out and o1 not in out

    keys = keys_json(b)
    a = keys["anthropic"]
    assert a["current"] == 1, a
    assert [(v["version"], v["state"]) for v in a["versions"]] == [(1, "current")], a
    assert a["versions"][0]["grace_until"] is None, a
    epoch(a["created"])
    epoch(a["last_used"])     # the gets above used it
    assert "value" not in json.dumps(keys)

    # set again: a new current version, the old one gone at once (no grace).
    cp = set_key(b, "anthropic", k2)
    assert "version 2 is current" in cp.stdout, cp.stdout
    assert get_key(b, "anthropic") == k2
    fails(key_cli(b, "key", "get", "anthropic", "--version", "1"), 1, "no readable version 1")
    keys = keys_json(b)
    assert keys["anthropic"]["current"] == 2
    assert [v["version"] for v in keys["anthropic"]["versions"]] == [2], keys
    assert not os.path.exists(sealed(b, "anthropic", 1)), "set left the old version on disk"
    assert os.path.exists(sealed(b, "anthropic", 2))
    assert_nowhere(b, [k1, k2, o1])


def test_set_destroys_the_old_version_at_once(broker_factory):
    b = broker_factory()
    set_key(b, "anthropic", random_key())
    set_key(b, "anthropic", random_key())
    assert not os.path.exists(sealed(b, "anthropic", 1))


def test_get_errors_are_one_line(broker_factory):
    b = broker_factory()
    cp = key_cli(b, "key", "get", "anthropic")
    fails(cp, 1, "no key named anthropic")
    assert cp.stdout == "" and cp.stderr.count("\n") == 1, cp.stderr
    # An invalid name is a usage error, still one line.
    cp = key_cli(b, "key", "get", "../etc")
    assert cp.returncode == 2 and cp.stdout == "" and cp.stderr.count("\n") == 1, cp
    # No broker: exit 3 (unreachable), one line, nothing on stdout.
    cp = key_cli(b, "key", "get", "anthropic", env={"KEYWARDEN_SOCKET": b.sock + ".none"})
    assert cp.returncode == 3 and cp.stdout == "" and cp.stderr.count("\n") == 1, cp
    assert "unreachable" in cp.stderr


def test_value_sizes(broker_factory):
    b = broker_factory()
    big = "".join(secrets.choice(B64URL) for _ in range(8192))
    ok(key_cli(b, "key", "set", "big", input=big))
    assert get_key(b, "big") == big
    # Spaces and quotes inside are kept; only the line end is taken off.
    odd = 'a "quoted" value with spaces\tand a tab'
    set_key(b, "odd", odd)
    assert get_key(b, "odd") == odd
    fails(key_cli(b, "key", "set", "big", input=big + "x"), 2, "longer than 8192")
    fails(key_cli(b, "key", "set", "empty", input=""), 2, "no value read")
    fails(key_cli(b, "key", "set", "empty", input="\n"), 2, "no value read")
    assert "empty" not in keys_json(b)
    assert get_key(b, "big") == big


def test_max_value_with_newline(broker_factory):
    b = broker_factory()
    big = "".join(secrets.choice(B64URL) for _ in range(8192))
    ok(key_cli(b, "key", "set", "big", input=big + "\n"))


def test_value_on_argv_refused(broker_factory):
    b = broker_factory()
    k = random_key()
    for verb in ("set", "rotate"):
        cp = key_cli(b, "key", verb, "anthropic", k)
        fails(cp, 2, "refusing a key on the command line", "process list")
        assert k not in cp.stderr + cp.stdout
        assert cp.stderr.count("\n") == 1, cp.stderr
        # Refused before the broker heard of it.
        assert b.audit_rows("pid = ?", (cp.pid,)) == []
    assert keys_json(b) == {}
    assert not os.path.exists(os.path.join(b.datadir, "keystore", "anthropic"))
    fails(key_cli(b, "key", "get", "anthropic"), 1, "no key named")
    assert_nowhere(b, [k])


# --------------------------------------------------------------------------
# rotate, grace, revoke
# --------------------------------------------------------------------------

def test_rotate_grace_then_revoke(id_broker):
    b = id_broker({"api": {"rotationGrace": 60}}, clocked=True)
    k1, k2, k3 = random_key(), random_key(), random_key()
    set_key(b, "anthropic", k1)
    cp = key_cli(b, "key", "rotate", "anthropic", input=k2 + "\n")
    out = ok(cp)
    assert "version 2 is current; version 1 stays readable until" in out, out
    assert get_key(b, "anthropic") == k2
    assert get_key(b, "anthropic", "--version", "1") == k1
    assert get_key(b, "anthropic", "--version", "2") == k2

    a = keys_json(b)["anthropic"]
    assert a["current"] == 2, a
    states = {v["version"]: v for v in a["versions"]}
    assert states[1]["state"] == "grace" and states[2]["state"] == "current", a
    until = epoch(states[1]["grace_until"])
    assert abs(until - (b.clock.now() + 60)) <= 5, (until, b.clock.now())
    assert states[2]["grace_until"] is None
    _, rows = table(ok(key_cli(b, "key", "list")), "NAME")
    assert rows[0]["VERSIONS"] == "1(grace),2", rows

    # --json rotate answers previous and grace_until.
    doc = as_json(key_cli(b, "key", "rotate", "anthropic", "--json", input=k3))
    assert doc["name"] == "anthropic" and doc["version"] == 3 and doc["previous"] == 2, doc
    assert abs(epoch(doc["grace_until"]) - (b.clock.now() + 60)) <= 5, doc
    assert get_key(b, "anthropic", "--version", "1") == k1

    # The grace passes: versions 1 and 2 are destroyed at the next key op.
    b.clock.advance(61)
    fails(key_cli(b, "key", "get", "anthropic", "--version", "1"), 1, "no readable version 1")
    fails(key_cli(b, "key", "get", "anthropic", "--version", "2"), 1, "no readable version 2")
    assert not os.path.exists(sealed(b, "anthropic", 1))
    assert not os.path.exists(sealed(b, "anthropic", 2))
    a = keys_json(b)["anthropic"]
    assert [(v["version"], v["state"]) for v in a["versions"]] == [(3, "current")], a
    assert get_key(b, "anthropic") == k3

    # Revoke one version in grace, then the current one.
    k4 = random_key()
    ok(key_cli(b, "key", "rotate", "anthropic", input=k4))
    assert get_key(b, "anthropic", "--version", "3") == k3
    out = ok(key_cli(b, "key", "revoke", "anthropic", "--version", "3"))
    assert "destroyed version 3" in out, out
    fails(key_cli(b, "key", "get", "anthropic", "--version", "3"), 1)
    assert not os.path.exists(sealed(b, "anthropic", 3))
    assert get_key(b, "anthropic") == k4
    fails(key_cli(b, "key", "revoke", "anthropic", "--version", "3"), 1, "no version 3")

    # Revoking the current version leaves the key without one.
    k5 = random_key()
    ok(key_cli(b, "key", "rotate", "anthropic", input=k5))          # 5 current, 4 grace
    doc = as_json(key_cli(b, "key", "revoke", "anthropic", "--version", "5", "--json"))
    assert doc == {"name": "anthropic", "destroyed": [5]}, doc
    cp = key_cli(b, "key", "get", "anthropic")
    assert cp.returncode == 1 and cp.stdout == "", cp
    assert get_key(b, "anthropic", "--version", "4") == k4
    a = keys_json(b)["anthropic"]
    assert a["current"] is None, a
    assert [(v["version"], v["state"]) for v in a["versions"]] == [(4, "grace")], a

    # Revoke the whole key: every version destroyed, the key forgotten.
    doc = as_json(key_cli(b, "key", "revoke", "anthropic", "--json"))
    assert doc["destroyed"] == [4], doc
    assert "anthropic" not in keys_json(b)
    assert not os.path.exists(os.path.join(b.datadir, "keystore", "anthropic"))
    fails(key_cli(b, "key", "get", "anthropic"), 1, "no key named anthropic")
    fails(key_cli(b, "key", "revoke", "anthropic"), 1, "no key named anthropic")
    # And it can be set again from scratch.
    set_key(b, "anthropic", k1)
    assert get_key(b, "anthropic") == k1
    assert_nowhere(b, [k1, k2, k3, k4, k5])


def test_rotation_grace_zero(broker_factory):
    b = broker_factory({"api": {"rotationGrace": 0}})
    k1, k2 = random_key(), random_key()
    set_key(b, "anthropic", k1)
    doc = as_json(key_cli(b, "key", "rotate", "anthropic", "--json", input=k2))
    assert doc["previous"] == 1 and doc["grace_until"] is None, doc
    fails(key_cli(b, "key", "get", "anthropic", "--version", "1"), 1)
    assert get_key(b, "anthropic") == k2
    assert [v["version"] for v in keys_json(b)["anthropic"]["versions"]] == [2]
    assert not os.path.exists(sealed(b, "anthropic", 1))


# --------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------

def test_verify_format(broker_factory):
    b = broker_factory()
    set_key(b, "anthropic", random_key())
    out = ok(key_cli(b, "key", "verify", "anthropic"))
    assert out.startswith("anthropic: ok"), out
    doc = as_json(key_cli(b, "key", "verify", "anthropic", "--json"))
    assert doc["format"] == "anthropic" and doc["ok"] is True and doc["live"] is None, doc
    assert doc["name"] == "anthropic" and doc["version"] == 1, doc
    assert "value" not in doc

    set_key(b, "anthropic", "hello")
    cp = key_cli(b, "key", "verify", "anthropic")
    assert cp.returncode == 1 and "failed" in cp.stdout, cp
    doc = json.loads(key_cli(b, "key", "verify", "anthropic", "--json").stdout)
    assert doc["format"] == "unknown" and doc["ok"] is False, doc
    assert "hello" not in json.dumps(doc)

    # Starts like one, but too short / bad characters.
    for bad in ("sk-ant-short", "sk-ant-api03-" + "x" * 30 + "!"):
        set_key(b, "anthropic", bad)
        doc = json.loads(key_cli(b, "key", "verify", "anthropic", "--json").stdout)
        assert doc["format"] == "anthropic" and doc["ok"] is False, (bad, doc)
        assert "malformed" in doc["detail"], doc

    # Another name: the format is not known, so not held against it.
    set_key(b, "openai", "hello")
    doc = as_json(key_cli(b, "key", "verify", "openai", "--json"))
    assert doc["format"] == "unknown" and doc["ok"] is True, doc
    fails(key_cli(b, "key", "verify", "missing"), 1, "no key named missing")


class _VerifyHandler(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        key = self.headers.get("x-api-key")
        self.server.seen.append((self.command, self.path, key,
                                 self.headers.get("anthropic-version")))
        code = self.server.answers.get(key, 500)
        body = b'{"type":"error"}' if code != 200 else b'{"data":[]}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *a):
        pass


@pytest.fixture
def verify_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _VerifyHandler)
    srv.seen = []
    srv.answers = {}
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_verify_live(broker_factory, verify_server):
    url = "http://127.0.0.1:%d/v1/models" % verify_server.server_address[1]
    good, bad, broken = random_key(), random_key(), random_key()
    verify_server.answers = {good: 200, bad: 401}
    b = broker_factory({"api": {"verifyUrl": url},
                        "security": {"network": {"enforceHttps": False}}})
    set_key(b, "anthropic", good)
    doc = as_json(key_cli(b, "key", "verify", "anthropic", "--json"))
    assert doc["ok"] is True and doc["live"] is True and "200" in doc["detail"], doc
    assert verify_server.seen[-1][1] == "/v1/models", verify_server.seen
    assert verify_server.seen[-1][2] == good, "the key did not go in x-api-key"

    set_key(b, "anthropic", bad)
    cp = key_cli(b, "key", "verify", "anthropic")
    assert cp.returncode == 1 and "failed" in cp.stdout and "401" in cp.stdout, cp
    doc = json.loads(key_cli(b, "key", "verify", "anthropic", "--json").stdout)
    assert doc["ok"] is False and doc["live"] is False, doc

    # Neither accepted nor refused (500): no verdict on liveness, not ok.
    set_key(b, "anthropic", broken)
    doc = json.loads(key_cli(b, "key", "verify", "anthropic", "--json").stdout)
    assert doc["ok"] is False and doc["live"] is None, doc

    # A malformed key is not sent anywhere.
    n = len(verify_server.seen)
    set_key(b, "anthropic", "hello")
    doc = json.loads(key_cli(b, "key", "verify", "anthropic", "--json").stdout)
    assert doc["ok"] is False and len(verify_server.seen) == n, (doc, verify_server.seen)
    # Nor is another provider's key: api.verifyUrl is Anthropic's.
    set_key(b, "openai", "sk-proj-" + "q" * 40)
    doc = json.loads(key_cli(b, "key", "verify", "openai", "--json").stdout)
    assert doc["live"] is None and len(verify_server.seen) == n, (doc, verify_server.seen)
    assert_nowhere(b, [good, bad, broken])


def test_verify_live_refuses_plain_http_by_default(broker_factory, verify_server):
    url = "http://127.0.0.1:%d/v1/models" % verify_server.server_address[1]
    good = random_key()
    verify_server.answers = {good: 200}
    b = broker_factory({"api": {"verifyUrl": url}})
    set_key(b, "anthropic", good)
    doc = json.loads(key_cli(b, "key", "verify", "anthropic", "--json").stdout)
    assert doc["ok"] is False and doc["live"] is None, doc
    assert "https" in doc["detail"], doc
    assert verify_server.seen == [], "the key went over plain HTTP"


class _GatedVerifyHandler(_VerifyHandler):
    """Holds each request until the test opens the gate."""

    def _answer(self):
        self.server.arrived.set()
        self.server.gate.wait(IO_TIMEOUT * 3)
        super()._answer()

    do_GET = do_POST = _answer


@pytest.fixture
def gated_verify_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GatedVerifyHandler)
    srv.seen, srv.answers = [], {}
    srv.arrived, srv.gate = threading.Event(), threading.Event()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.gate.set()
    srv.shutdown()
    srv.server_close()


def _start_verify(b, name):
    argv = [CLI_BIN, "key", "verify", name, "--json"]
    e = clean_env({"KEYWARDEN_SOCKET": b.sock},
                  drop=("KEYWARDEN_TOKEN_CACHE", "XDG_RUNTIME_DIR", "ANTHROPIC_API_KEY"))
    return subprocess.Popen(argv, env=e, cwd="/", stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _verify_records(b):
    cp = key_cli(b, "admin", "audit", "query", "--json", "--action", "key.verify")
    assert cp.returncode == 0, cp
    return [r for r in json.loads(cp.stdout) if r["action"] == "key.verify"]


def test_verify_live_does_not_hold_up_other_clients(broker_factory, gated_verify_server):
    """The live check waits on the network off the event loop: while the
    provider sits on the request, every other client is answered."""
    srv = gated_verify_server
    url = "http://127.0.0.1:%d/v1/models" % srv.server_address[1]
    good = random_key()
    srv.answers = {good: 200}
    b = broker_factory({"api": {"verifyUrl": url},
                        "security": {"network": {"enforceHttps": False}}})
    set_key(b, "anthropic", good)
    proc = _start_verify(b, "anthropic")
    try:
        assert srv.arrived.wait(IO_TIMEOUT * 3), "the broker never asked api.verifyUrl"
        # The provider has the request and answers nothing until the gate opens:
        # a broker that waited for it on its loop could not answer these.
        ok(key_cli(b, "status", timeout=IO_TIMEOUT))
        ok(key_cli(b, "key", "list", timeout=IO_TIMEOUT))
        assert proc.poll() is None, "verify finished before the provider answered"
        srv.gate.set()
        out, err = proc.communicate(timeout=IO_TIMEOUT * 3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (out, err)
    doc = json.loads(out)
    assert doc["ok"] is True and doc["live"] is True and doc["version"] == 1, doc
    recs = _verify_records(b)
    assert recs and recs[-1]["result"] == "success", recs
    assert recs[-1]["metadata"].get("ok") is True, recs[-1]
    assert_nowhere(b, [good])


def test_verify_live_is_recorded_when_the_client_left(broker_factory, gated_verify_server):
    """A client that hangs up while its key is being checked loses the reply,
    not the record."""
    srv = gated_verify_server
    url = "http://127.0.0.1:%d/v1/models" % srv.server_address[1]
    bad = random_key()
    srv.answers = {bad: 401}
    b = broker_factory({"api": {"verifyUrl": url},
                        "security": {"network": {"enforceHttps": False}}})
    set_key(b, "anthropic", bad)
    before = len(_verify_records(b))
    proc = _start_verify(b, "anthropic")
    assert srv.arrived.wait(IO_TIMEOUT * 3), "the broker never asked api.verifyUrl"
    proc.kill()
    proc.communicate()
    srv.gate.set()
    # The next request's turn comes after the answer was recorded: a status
    # round trip is the readiness check, then the record must be there.
    deadline = time.monotonic() + IO_TIMEOUT * 3
    recs = _verify_records(b)
    while len(recs) == before and time.monotonic() < deadline:
        ok(key_cli(b, "status"))
        recs = _verify_records(b)
    assert len(recs) == before + 1, recs
    assert recs[-1]["metadata"].get("ok") is False, recs[-1]
    assert b.proc.poll() is None, "the broker died"


# --------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------

def test_import_sources(broker_factory):
    b = broker_factory()
    k_env, k_dot, k_other, k_cmd = (random_key() for _ in range(4))
    cp = key_cli(b, "key", "import", "anthropic", "--from", "env:MY_KEY",
                 env={"MY_KEY": k_env})
    out = ok(cp)
    assert "imported anthropic (version 1)" in out, out
    assert "unset MY_KEY" in cp.stderr, cp.stderr
    assert get_key(b, "anthropic") == k_env

    dotenv = os.path.join(b.root, "app.env")
    with open(dotenv, "w") as f:
        f.write("# comment\nFOO=bar\nexport ANTHROPIC_API_KEY=\"%s\"\nOTHER_KEY='%s'\n"
                % (k_dot, k_other))
    cp = key_cli(b, "key", "import", "a-dot", "--from", "dotenv:" + dotenv)
    ok(cp)
    assert dotenv in cp.stderr, cp.stderr
    assert get_key(b, "a-dot") == k_dot
    ok(key_cli(b, "key", "import", "a-other", "--from", "dotenv:%s:OTHER_KEY" % dotenv))
    assert get_key(b, "a-other") == k_other

    # The command's first line; the imported key is a new version.
    ok(key_cli(b, "key", "import", "anthropic", "--from",
               "command:printf '%s\\nsecond line\\n'" % k_cmd))
    assert get_key(b, "anthropic") == k_cmd
    assert keys_json(b)["anthropic"]["current"] == 2
    assert_nowhere(b, [k_env, k_dot, k_other, k_cmd])


def test_import_failures_store_nothing(broker_factory):
    b = broker_factory()
    dotenv = os.path.join(b.root, "app.env")
    with open(dotenv, "w") as f:
        f.write("FOO=bar\n")
    cases = [
        (["--from", "command:printf sk-ant-api03-aaaaaaaaaaaaaaaaaaaaaaaa; exit 3"],
         ["exit status 3", "nothing imported"]),
        (["--from", "command:true"], ["printed nothing", "nothing imported"]),
        (["--from", "command:kill -9 $$"], ["signal 9"]),
        (["--from", "env:NOT_SET_ANYWHERE"], ["NOT_SET_ANYWHERE is not set"]),
        (["--from", "dotenv:" + dotenv], ["no ANTHROPIC_API_KEY=... line"]),
        (["--from", "dotenv:" + dotenv + ":NOPE"], ["no NOPE=... line"]),
        (["--from", "dotenv:" + dotenv + ".missing"], ["No such file"]),
    ]
    for args, texts in cases:
        cp = key_cli(b, "key", "import", "anthropic", *args)
        fails(cp, 1, *texts)
        assert cp.stdout == "" and cp.stderr.count("\n") == 1, cp
        # Nothing reached the broker.
        assert b.audit_rows("pid = ?", (cp.pid,)) == [], args
    fails(key_cli(b, "key", "import", "anthropic", "--from", "ftp:x"), 2, "usage")
    fails(key_cli(b, "key", "import", "anthropic"), 2, "usage")
    assert keys_json(b) == {}


def _cli_config(b, timeout):
    """A config file for the CLI's own settings (api.commandTimeout)."""
    path = os.path.join(b.root, "cli-config.json")
    with open(path, "w") as f:
        json.dump({"broker": {"socket": b.sock}, "api": {"commandTimeout": timeout}}, f)
    os.chmod(path, 0o600)
    return path


def _import_timed(b, cmd, timeout):
    """Run `key import` with api.commandTimeout; (exit, seconds until the CLI
    exited, stderr).  Output goes to files, so a straggler the command left
    behind cannot hold the test up."""
    env = clean_env({"KEYWARDEN_SOCKET": b.sock, "KEYWARDEN_CONFIG": _cli_config(b, timeout)})
    errpath = os.path.join(b.root, "import.err")
    with open(errpath, "wb") as err, open(os.devnull, "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen([CLI_BIN, "key", "import", "slow", "--from", "command:" + cmd],
                                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        rc = proc.wait(timeout=30 * SLOW)
        took = time.monotonic() - t0
    with open(errpath) as f:
        return rc, took, f.read()


def test_import_command_timeout(broker_factory):
    b = broker_factory()
    rc, took, err = _import_timed(b, "sleep 6; printf sk-ant-api03-late", 1)
    assert rc == 1, err
    assert "did not finish within 1 s" in err and "api.commandTimeout" in err, err
    assert took < 4 * SLOW, "the CLI waited %.1fs for a command limited to 1s" % took
    assert keys_json(b) == {}


def test_import_command_timeout_kills_the_whole_command(broker_factory):
    b = broker_factory()
    arg = "7.%d" % (os.getpid() % 1000)
    rc, took, err = _import_timed(b, "sleep %s; printf sk-ant-api03-late" % arg, 1)
    assert rc == 1, err
    left = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if f.read() == b"sleep\0" + arg.encode() + b"\0":
                    left.append(int(pid))
        except (OSError, ValueError):
            pass
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "the timed-out command's sleep %s went on running" % arg


def test_import_command_timeout_is_at_least_the_setting(broker_factory):
    b = broker_factory()
    # 0.4 s of a 1 s budget: killed whenever the start was in the last 0.4 s of a second.
    for _ in range(6):
        rc, took, err = _import_timed(b, "sleep 0.4; printf sk-ant-api03-%s" % ("x" * 30), 1)
        assert rc == 0, "killed after %.2fs: %s" % (took, err)


# --------------------------------------------------------------------------
# exec
# --------------------------------------------------------------------------

def test_exec_puts_the_key_in_the_child_only(broker_factory):
    b = broker_factory()
    k, o = random_key(), random_key("sk-proj-", 40)
    set_key(b, "anthropic", k)
    set_key(b, "openai", o)
    assert "ANTHROPIC_API_KEY" not in os.environ
    cp = key_cli(b, "exec", "--key", "anthropic=ANTHROPIC_API_KEY", "--",
                 "sh", "-c", 'printf %s "$ANTHROPIC_API_KEY"')
    assert ok(cp) == k and cp.stderr == "", cp
    cp = key_cli(b, "exec", "--key", "anthropic=A", "--key", "openai=OPENAI_API_KEY", "--",
                 "sh", "-c", 'printf "%s|%s" "$A" "$OPENAI_API_KEY"')
    assert ok(cp) == "%s|%s" % (k, o)
    # The command's exit status is exec's; its options are its own.
    assert key_cli(b, "exec", "--key", "anthropic=A", "--", "sh", "-c", "exit 7").returncode == 7
    cp = key_cli(b, "exec", "--key", "anthropic=A", "--", "sh", "-c", 'printf %s "$1"', "sh",
                 "--key")
    assert ok(cp) == "--key"
    # A key that does not exist: the command never runs.
    marker = os.path.join(b.root, "ran")
    cp = key_cli(b, "exec", "--key", "anthropic=A", "--key", "missing=B", "--",
                 "touch", marker)
    fails(cp, 1, "no key named missing")
    assert not os.path.exists(marker)
    for bad in ("anthropic", "anthropic=", "anthropic=1X", "=X", "anthropic=A-B"):
        fails(key_cli(b, "exec", "--key", bad, "--", "true"), 2, "usage")
    fails(key_cli(b, "exec", "--key", "anthropic=A"), 2, "usage")
    assert "ANTHROPIC_API_KEY" not in os.environ
    assert_nowhere(b, [k, o])


def _children(pid):
    path = "/proc/%d/task/%d/children" % (pid, pid)
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def test_exec_value_not_in_argv_or_environ_of_cli_or_broker(broker_factory):
    b = broker_factory()
    k = random_key()
    set_key(b, "anthropic", k)
    env = clean_env({"KEYWARDEN_SOCKET": b.sock}, drop=("ANTHROPIC_API_KEY",))
    proc = subprocess.Popen([CLI_BIN, "exec", "--key", "anthropic=ANTHROPIC_API_KEY", "--",
                             "sleep", "60"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        kids = wait_for(lambda: _children(proc.pid), IO_TIMEOUT, what="exec's child")
        child = kids[0]
        wait_for(lambda: open("/proc/%d/cmdline" % child, "rb").read().startswith(b"sleep"),
                 IO_TIMEOUT, what="the child to exec sleep")
        needle = k.encode()
        for pid, who in ((proc.pid, "the keywarden CLI"), (b.pid, "the broker")):
            for what in ("cmdline", "environ"):
                with open("/proc/%d/%s" % (pid, what), "rb") as f:
                    assert needle not in f.read(), "%s's %s holds the key" % (who, what)
        with open("/proc/%d/cmdline" % child, "rb") as f:
            assert needle not in f.read()
        # The child's environment is where the key belongs.
        with open("/proc/%d/environ" % child, "rb") as f:
            assert b"ANTHROPIC_API_KEY=" + needle in f.read().split(b"\0")
        os.kill(child, signal.SIGTERM)
        out, err = proc.communicate(timeout=IO_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, err)
    assert k.encode() not in out + err
    assert_nowhere(b, [k])


# --------------------------------------------------------------------------
# Users with sessions
# --------------------------------------------------------------------------

ANTHRO_ROLE = {"security": {"authorization": {"rbac": {"roles": {
    "anthro-reader": {"permissions": ["read:key/anthropic*"]}}}}}}


def session_env(b, user):
    """Log user in (raw login, TOTP for the broker's clock) and put the token
    in the CLI's file cache; the environment that makes the CLI use it."""
    with UserConn(b, user) as c:
        res = assert_ok(c.call("login", {"code": totp(b.enrolled[user]["secret"],
                                                      b.clock.now())}))
    run = os.path.join(b.root, "xdg-" + user)
    cache = os.path.join(run, "keywarden")
    os.makedirs(cache, exist_ok=True)
    for d in (run, cache):
        os.chown(d, *USERS[user])
        os.chmod(d, 0o700)
    hexname = hashlib.sha256(b.sock.encode()).hexdigest()[:16]
    path = os.path.join(cache, "session-" + hexname)
    with open(path, "w") as f:
        f.write("%d\n%s\n" % (int(time.time()) + 600, res["session"]))
    os.chown(path, *USERS[user])
    os.chmod(path, 0o600)
    return {"KEYWARDEN_TOKEN_CACHE": "file", "XDG_RUNTIME_DIR": run}


def add_user(b, user, roles):
    with b.connect() as c:
        b.enrolled[user] = assert_ok(c.call("user.add", {"user": user, "roles": roles}))


def denied(b, cp, user, action, resource):
    fails(cp, 1, "denied")
    denied_row(b, cp, user, action, resource)


def test_reviewer_reads_but_cannot_write(mfa_broker):
    b = mfa_broker(ANTHRO_ROLE, users=("alice",), roles=("reviewer",))
    k, k2 = random_key(), random_key()
    set_key(b, "anthropic", k)
    env = session_env(b, "alice")
    assert get_key(b, "anthropic", user="alice", env=env) == k
    keys = as_json(key_cli(b, "key", "list", "--json", user="alice", env=env))["keys"]
    assert [x["name"] for x in keys] == ["anthropic"], keys
    cp = key_cli(b, "key", "set", "anthropic", input=k2, user="alice", env=env)
    denied(b, cp, "alice", "key.set", "key/anthropic")
    cp = key_cli(b, "key", "rotate", "anthropic", input=k2, user="alice", env=env)
    denied(b, cp, "alice", "key.rotate", "key/anthropic")
    cp = key_cli(b, "key", "revoke", "anthropic", user="alice", env=env)
    denied(b, cp, "alice", "key.revoke", "key/anthropic")
    cp = key_cli(b, "key", "import", "anthropic", "--from", "env:K", user="alice",
                 env=dict(env, K=k2))
    denied(b, cp, "alice", "key.set", "key/anthropic")
    assert get_key(b, "anthropic") == k
    assert keys_json(b)["anthropic"]["current"] == 1
    # A session user's reads are audited as that user.
    cp = key_cli(b, "key", "get", "anthropic", user="alice", env=env)
    rows = b.audit_rows("pid = ? AND action = 'key.get'", (cp.pid,))
    assert len(rows) == 1 and rows[0]["user"] == "alice" and rows[0]["result"] == "success"
    assert_nowhere(b, [k, k2])


def test_developer_writes_with_a_session(mfa_broker):
    b = mfa_broker(users=("alice",), roles=("developer",))
    k = random_key()
    env = session_env(b, "alice")
    set_key(b, "anthropic", k, user="alice", env=env)
    assert get_key(b, "anthropic") == k
    assert get_key(b, "anthropic", user="alice", env=env) == k


def test_custom_role_reads_matching_keys_only(mfa_broker):
    b = mfa_broker(ANTHRO_ROLE, users=("carol",), roles=("anthro-reader",))
    k, ks, o = random_key(), random_key(), random_key("sk-proj-", 40)
    set_key(b, "anthropic", k)
    set_key(b, "anthropic-staging", ks)
    set_key(b, "openai", o)
    env = session_env(b, "carol")
    assert get_key(b, "anthropic", user="carol", env=env) == k
    assert get_key(b, "anthropic-staging", user="carol", env=env) == ks
    cp = key_cli(b, "key", "get", "openai", user="carol", env=env)
    denied(b, cp, "carol", "key.get", "key/openai")
    assert o not in cp.stdout + cp.stderr and cp.stdout == ""
    # The listing is a read of "key", which key/anthropic* does not name.
    cp = key_cli(b, "key", "list", user="carol", env=env)
    denied(b, cp, "carol", "key.list", "key")
    cp = key_cli(b, "key", "set", "anthropic", input=o, user="carol", env=env)
    denied(b, cp, "carol", "key.set", "key/anthropic")
    # exec fetches with the same rights: the denied key stops the command.
    marker = os.path.join(b.root, "ran")
    cp = key_cli(b, "exec", "--key", "anthropic=A", "--key", "openai=B", "--", "touch", marker,
                 user="carol", env=env)
    fails(cp, 1, "denied")
    assert not os.path.exists(marker)
    cp = key_cli(b, "exec", "--key", "anthropic=A", "--", "sh", "-c", 'printf %s "$A"',
                 user="carol", env=env)
    assert ok(cp) == k
    assert_nowhere(b, [k, ks, o])


def test_without_a_session_get_fails_fast(mfa_broker):
    b = mfa_broker(users=("alice",), roles=("developer",))
    k = random_key()
    set_key(b, "anthropic", k)
    run = os.path.join(b.root, "xdg-empty")
    os.makedirs(run)
    os.chown(run, *USERS["alice"])
    os.chmod(run, 0o700)
    env = {"KEYWARDEN_TOKEN_CACHE": "file", "XDG_RUNTIME_DIR": run}
    t0 = time.monotonic()
    cp = key_cli(b, "key", "get", "anthropic", user="alice", env=env)
    took = time.monotonic() - t0
    assert cp.returncode == 1, cp
    assert cp.stdout == "", cp.stdout
    assert cp.stderr.count("\n") == 1, cp.stderr
    assert "keywarden login" in cp.stderr, cp.stderr
    assert k not in cp.stderr
    assert took < 5 * SLOW, took
    cp = key_cli(b, "exec", "--key", "anthropic=A", "--", "true", user="alice", env=env)
    fails(cp, 1, "keywarden login")


# --------------------------------------------------------------------------
# Audit
# --------------------------------------------------------------------------

def test_every_key_op_is_audited_without_its_value(id_broker, verify_server):
    url = "http://127.0.0.1:%d/v1/models" % verify_server.server_address[1]
    b = id_broker({"api": {"rotationGrace": 3600, "verifyUrl": url},
                   "security": {"network": {"enforceHttps": False}}})
    k1, k2, k3 = random_key(), random_key(), random_key()
    verify_server.answers = {k1: 200, k2: 200, k3: 401}
    ops = []

    def op(expect_version, *args, input=None, env=None):
        cp = key_cli(b, *args, input=input, env=env)
        ok(cp)
        ops.append((cp, args[1], expect_version))
        return cp

    op(1, "key", "set", "anthropic", input=k1)
    op(1, "key", "get", "anthropic")
    op(2, "key", "rotate", "anthropic", input=k2)
    op(1, "key", "get", "anthropic", "--version", "1")
    op(2, "key", "get", "anthropic", "--json")
    op(None, "key", "list")
    op(None, "key", "verify", "anthropic")
    op(3, "key", "import", "anthropic", "--from", "env:K", env={"K": k3})
    op(None, "key", "revoke", "anthropic", "--version", "1")
    op(None, "key", "revoke", "anthropic")
    actions = {"set": "key.set", "get": "key.get", "rotate": "key.rotate", "list": "key.list",
               "verify": "key.verify", "import": "key.set", "revoke": "key.revoke"}
    for cp, verb, version in ops:
        rows = [r for r in b.audit_rows("pid = ?", (cp.pid,)) if r["action"] != "hello"]
        assert len(rows) == 1, (cp.args, rows)
        r = rows[0]
        assert r["action"] == actions[verb] and r["result"] == "success", r
        assert r["user"] == "root" and r["uid"] == 0, r
        assert r["resource"] == ("key" if verb == "list" else "key/anthropic"), r
        m = json.loads(r["metadata"] or "{}")
        if version is not None:
            assert m.get("version") == version, (cp.args, r)
        if verb == "revoke":
            assert m.get("destroyed"), r
    # A refused read is audited too, with the reason and still no value.
    cp = key_cli(b, "key", "get", "anthropic")
    rows = b.audit_rows("pid = ? AND action = 'key.get'", (cp.pid,))
    assert len(rows) == 1 and rows[0]["result"] != "success", rows
    assert_nowhere(b, [k1, k2, k3])
    # Also after a restart (the WAL checkpointed into the main files).
    assert b.stop() == 0
    assert_nowhere(b, [k1, k2, k3])


def test_verify_and_revoke_rows_name_the_version(broker_factory):
    b = broker_factory()
    set_key(b, "anthropic", random_key())
    set_key(b, "anthropic", random_key())
    for args in (("verify", "anthropic"), ("revoke", "anthropic", "--version", "2")):
        cp = key_cli(b, "key", *args)
        ok(cp)
        r = b.audit_rows("pid = ? AND action = ?", (cp.pid, "key." + args[0]))[0]
        assert json.loads(r["metadata"]).get("version") == 2, r
