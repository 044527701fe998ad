"""`keywarden status`, the programs' --version/--help, and the handshake."""
import json
import os

from conftest import (VERSION, Client, assert_error, assert_ok, clean_env,
                      run_broker_once, run_cli)


def test_status_human(broker):
    cp = broker.cli("status")
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert broker.sock in out, out
    assert VERSION in out, out
    assert "root" in out, out
    assert str(cp.pid) in out, "caller pid %d not shown:\n%s" % (cp.pid, out)


def test_status_json(broker):
    cp = broker.cli("status", "--json")
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    b = doc["broker"]
    assert b["reachable"] is True
    assert b["socket"] == broker.sock
    assert b["version"] == VERSION
    assert b["protocol"] == 1
    c = doc["caller"]
    assert c["user"] == "root"
    assert c["uid"] == 0
    assert c["gid"] == 0
    # SO_PEERCRED names the CLI process itself: not the broker, not pytest.
    assert c["pid"] == cp.pid
    assert c["pid"] not in (broker.pid, os.getpid())


def test_status_socket_precedence(broker, tmpdir_short):
    bogus = os.path.join(tmpdir_short, "nothing.sock")
    # --socket beats $KEYWARDEN_SOCKET.
    cp = broker.cli("--socket", broker.sock, "status", "--json",
                    env={"KEYWARDEN_SOCKET": bogus})
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["broker"]["socket"] == broker.sock
    # $KEYWARDEN_SOCKET beats the config's broker.socket.
    cp = broker.cli("--config", broker.config_path, "status",
                    env={"KEYWARDEN_SOCKET": bogus})
    assert cp.returncode == 3, (cp.stdout, cp.stderr)
    assert bogus in cp.stderr
    # With neither, the config's broker.socket is used.
    cp = broker.cli("--config", broker.config_path, "status", "--json", use_socket=False)
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["broker"]["socket"] == broker.sock
    # ... also when the config comes from $KEYWARDEN_CONFIG.
    cp = broker.cli("status", "--json", use_socket=False,
                    env={"KEYWARDEN_CONFIG": broker.config_path})
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["broker"]["socket"] == broker.sock


def test_status_unreachable(tmpdir_short):
    path = os.path.join(tmpdir_short, "absent.sock")
    env = clean_env({"KEYWARDEN_SOCKET": path})
    cp = run_cli(["status"], env=env)
    assert cp.returncode == 3, (cp.stdout, cp.stderr)
    assert "keywarden: broker unreachable at %s: " % path in cp.stderr, cp.stderr
    # The reason follows the colon.
    line = [l for l in cp.stderr.splitlines() if "broker unreachable" in l][0]
    assert line.split("%s: " % path, 1)[1].strip(), line

    cp = run_cli(["status", "--json"], env=env)
    assert cp.returncode == 3, (cp.stdout, cp.stderr)
    assert "broker unreachable at %s" % path in cp.stderr
    doc = json.loads(cp.stdout)
    assert doc["broker"]["reachable"] is False


def test_status_unreachable_stale_socket(broker_factory):
    """A socket file nobody listens on is 'unreachable' too (exit 3)."""
    b = broker_factory()
    b.kill9()
    assert os.path.exists(b.sock)
    cp = b.cli("status")
    assert cp.returncode == 3, (cp.stdout, cp.stderr)
    assert "broker unreachable at %s: " % b.sock in cp.stderr


def test_versions():
    cp = run_broker_once(["--version"])
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "keywardend %s" % VERSION, cp.stdout
    cp = run_cli(["--version"], env=clean_env())
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "keywarden %s" % VERSION, cp.stdout


def test_help():
    cp = run_broker_once(["--help"])
    assert cp.returncode == 0, cp.stderr
    assert "--config" in cp.stdout, cp.stdout
    assert "--check-config" in cp.stdout, cp.stdout
    cp = run_cli(["--help"], env=clean_env())
    assert cp.returncode == 0, cp.stderr
    assert "status" in cp.stdout, cp.stdout
    assert "config" in cp.stdout, cp.stdout


def test_usage_errors_exit_2(tmpdir_short):
    env = clean_env({"KEYWARDEN_SOCKET": os.path.join(tmpdir_short, "x.sock")})
    cp = run_cli(["no-such-command"], env=env)
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    assert cp.stderr.strip()
    # The broker's exit code for a bad option is not specified: just not 0.
    cp = run_broker_once(["--no-such-option"])
    assert cp.returncode != 0, (cp.stdout, cp.stderr)


def test_hello_reply(broker):
    with Client(broker.sock) as c:
        r = c.hello(id=1)
        res = assert_ok(r, id=1)
        assert res["version"] == 1
        assert res["server"] == "keywarden %s" % VERSION


def test_status_op_raw(broker):
    with broker.connect() as c:
        res = assert_ok(c.call("status", id=9), id=9)
    assert res["version"] == VERSION
    assert res["protocol"] == 1
    assert res["socket"] == broker.sock
    assert res["caller"] == {"user": "root", "uid": 0, "gid": 0, "pid": os.getpid()}


def test_request_ids_echoed(broker):
    with Client(broker.sock) as c:
        assert_ok(c.hello(id=77), id=77)
        for rid in (0, 1, 42, 42, 123456789, 2 ** 31, 2 ** 32 + 5, 2 ** 53, 3):
            assert_ok(c.call("status", id=rid), id=rid)
        # Errors echo the id too when it could be read.
        assert_error(c.call("no_such_op", id=555), "unknown_op", id=555)
        assert_error(c.request({"id": 556, "op": "status", "args": 7}), "bad_request", id=556)
        # ... and carry null when it could not.
        c.send_raw(b"\x00\x00\x00\x05nope!")
        assert_error(c.recv_msg(), "bad_json", id=None)
        assert_error(c.request({"id": "12", "op": "status"}), "bad_request", id=None)
        assert_ok(c.call("status", id=8), id=8)


def test_op_before_hello(broker):
    with Client(broker.sock) as c:
        r = c.call("status", id=5)
        assert_error(r, "handshake_required", id=5)
        replies, closed = c.read_until_eof()
        assert closed and replies == [], replies
    # The broker still serves others.
    with broker.connect() as c:
        assert_ok(c.call("status"))


def test_unknown_op_before_hello(broker):
    with Client(broker.sock) as c:
        assert_error(c.call("frobnicate", id=6), "handshake_required", id=6)
        replies, closed = c.read_until_eof()
        assert closed and replies == [], replies


def test_wrong_version(broker):
    for version in (2, 0, 999):
        with Client(broker.sock) as c:
            r = c.hello(version=version, id=3)
            assert_error(r, "version_mismatch", id=3)
            replies, closed = c.read_until_eof()
            assert closed and replies == [], replies
    with broker.connect() as c:
        assert_ok(c.call("status"))
