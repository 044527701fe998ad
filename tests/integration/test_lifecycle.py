"""Starting, stopping, restarting and replacing the broker."""
import os
import signal
import socket
import stat

import pytest

from conftest import (IO_TIMEOUT, START_TIMEOUT, NotifySocket, assert_ok, clean_env,
                      file_mode)


def is_socket(path):
    return stat.S_ISSOCK(os.lstat(path).st_mode)


def test_ready_logged_and_socket_mode(broker):
    broker.wait_stderr("keywardend: listening on %s" % broker.sock)
    assert is_socket(broker.sock)
    # broker.socketMode defaults to "0666": callers are told apart by SO_PEERCRED.
    assert file_mode(broker.sock) == 0o666


def test_socket_mode_from_config(broker_factory):
    b = broker_factory({"broker": {"socketMode": "0600"}})
    assert file_mode(b.sock) == 0o600
    with b.connect() as c:
        assert_ok(c.call("status"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_0_and_removes_socket(broker, sig):
    with broker.connect() as c:
        assert_ok(c.call("status"))
    assert broker.stop(sig) == 0, broker.stderr()
    assert not os.path.lexists(broker.sock), "socket file left behind"


def test_sigterm_with_clients_connected(broker):
    idle = broker.connect()
    partial = broker.connect()
    partial.send_raw(b"\x00\x00\x01\x00{")
    try:
        assert broker.stop() == 0, broker.stderr()
    finally:
        idle.close()
        partial.close()
    assert not os.path.lexists(broker.sock)


def test_restart_same_socket(broker):
    with broker.connect() as c:
        assert_ok(c.call("status"))
    rows_before = len(broker.audit_rows())
    assert rows_before >= 2
    assert broker.stop() == 0
    broker.start()
    cp = broker.cli("status")
    assert cp.returncode == 0, cp.stderr
    # The audit trail of the first run is still there, and grows.
    rows = broker.audit_rows()
    assert len(rows) > rows_before
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_kill9_stale_socket_replaced(broker):
    broker.kill9()
    assert is_socket(broker.sock), "kill -9 cannot remove the socket"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with pytest.raises(ConnectionRefusedError):
        s.connect(broker.sock)
    s.close()
    broker.start()
    with broker.connect() as c:
        assert_ok(c.call("status"))
    assert broker.stop() == 0
    assert not os.path.lexists(broker.sock)


def test_second_broker_on_live_socket(broker_factory):
    first = broker_factory()
    ino = os.lstat(first.sock).st_ino
    second = broker_factory(root=first.root, name="second", start=False)
    second.start(wait=False)
    rc = second.wait_exit(START_TIMEOUT)
    assert rc == 1, (rc, second.stderr())
    assert "in use" in second.stderr(), second.stderr()
    # The first broker's socket was not stolen or unlinked.
    assert os.lstat(first.sock).st_ino == ino
    assert first.running()
    with first.connect() as c:
        assert_ok(c.call("status"))
    assert first.cli("status").returncode == 0


def test_regular_file_at_socket_path_kept(broker_factory):
    b = broker_factory(start=False)
    os.makedirs(os.path.dirname(b.sock), exist_ok=True)
    with open(b.sock, "w") as f:
        f.write("precious data\n")
    b.start(wait=False)
    rc = b.wait_exit(START_TIMEOUT)
    assert rc == 1, (rc, b.stderr())      # a runtime failure, not a config problem
    assert b.sock in b.stderr(), "the message names the path"
    assert os.path.isfile(b.sock) and not is_socket(b.sock)
    with open(b.sock) as f:
        assert f.read() == "precious data\n"


def test_directory_at_socket_path_kept(broker_factory):
    b = broker_factory(start=False)
    os.makedirs(b.sock)
    with open(os.path.join(b.sock, "inside"), "w") as f:
        f.write("x")
    b.start(wait=False)
    rc = b.wait_exit(START_TIMEOUT)
    assert rc != 0, b.stderr()
    assert os.path.isfile(os.path.join(b.sock, "inside"))


@pytest.mark.parametrize("where", ["path", "abstract"])
def test_sd_notify_ready(broker_factory, tmpdir_short, where):
    """READY=1 reaches a NOTIFY_SOCKET of the test's own, a path or an
    abstract name ('@...'), and the socket accepts by then."""
    if where == "path":
        path = os.path.join(tmpdir_short, "notify")
    else:
        path = "@keywarden-test-%s" % os.path.basename(tmpdir_short)
    n = NotifySocket(path)
    try:
        b = broker_factory(start=False)
        b.start(wait=False, env=clean_env({"NOTIFY_SOCKET": path}))
        assert n.wait_ready(b.proc, START_TIMEOUT), b.stderr()
        with b.connect() as c:
            assert_ok(c.call("status"))
    finally:
        n.close()


def test_no_dangling_clients_after_restart(broker):
    """A client of the old broker sees EOF, not a hang, when it stops."""
    c = broker.connect(timeout=IO_TIMEOUT)
    assert broker.stop() == 0
    try:
        replies, closed = c.read_until_eof()
    finally:
        c.close()
    assert closed
