"""
Fixtures for keywarden's integration tests.

Every test runs the real broker ($KW_BUILD/keywardend) in a private
temporary directory and talks to it with the real CLI ($KW_BUILD/keywarden)
or with the small protocol client below (raw frames over the Unix socket).
A broker is ready when it says so the way it tells systemd: READY=1 on the
datagram socket in $NOTIFY_SOCKET, which each start gets in its directory
(the socket accepts before the start is in the audit trail).

Environment:
  KW_BUILD     absolute path of the build directory (default: ../../build)
  KW_SANITIZE  1 when the binaries are the ASan+UBSan build: the broker must
               then exit 0 on SIGTERM and leave no sanitizer report.
"""
import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import stat
import struct
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(os.environ.get("KW_BUILD") or os.path.join(HERE, "..", "..", "build"))
SANITIZE = os.environ.get("KW_SANITIZE", "0") == "1"
BROKER_BIN = os.path.join(BUILD, "keywardend")
CLI_BIN = os.path.join(BUILD, "keywarden")
VERSION = "0.1.0"
FRAME_MAX = 65536

# Sanitized binaries start and run several times slower.
SLOW = 3.0 if SANITIZE else 1.0
START_TIMEOUT = 15.0 * SLOW
STOP_TIMEOUT = 15.0 * SLOW
IO_TIMEOUT = 10.0 * SLOW

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

# Error codes that answer a message the broker could not use.
MALFORMED_CODES = ("bad_json", "bad_request", "frame_too_large", "bad_frame")


def sanitizer_report(text):
    """The first sanitizer marker found in text, or None."""
    for mark in SANITIZER_MARKS:
        if mark in text:
            return mark
    return None


def deep_merge(base, extra):
    """base with extra laid over it, recursively for objects (new dict)."""
    out = dict(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def wait_for(predicate, timeout, interval=0.02, what="condition"):
    """Poll predicate() until it is truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def clean_env(extra=None, drop=()):
    """os.environ without keywarden's own variables, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KEYWARDEN_SOCKET", "KEYWARDEN_CONFIG", "NOTIFY_SOCKET")}
    env.update(extra or {})
    for k in drop:
        env.pop(k, None)
    return env


def run_process(argv, env=None, input=None, timeout=None, cwd=None):
    """Run argv to completion: a CompletedProcess with text output and .pid.
    Fails when it runs past timeout (IO_TIMEOUT * 3) or reports a sanitizer error."""
    argv = [str(a) for a in argv]
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.Popen(argv, env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timeout = timeout or IO_TIMEOUT * 3
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("%s did not finish in %ds\nstdout: %s\nstderr: %s" % (
            argv, timeout, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")))
    cp = subprocess.CompletedProcess(argv, proc.returncode, out.decode("utf-8", "replace"),
                                     err.decode("utf-8", "replace"))
    cp.pid = proc.pid
    mark = sanitizer_report(cp.stdout + cp.stderr)
    assert mark is None, "%s from %s:\n%s%s" % (mark, argv, cp.stdout, cp.stderr)
    return cp


def run_cli(args, env=None, input=None, timeout=None, cwd=None):
    """Run the real CLI as this process's user (run_process)."""
    return run_process([CLI_BIN] + list(args), env=env, input=input, timeout=timeout, cwd=cwd)


def run_broker_once(args, env=None, timeout=None, cwd=None):
    """Run keywardend to completion (for --version, --check-config, bad configs)."""
    return run_process([BROKER_BIN] + list(args), env=env or clean_env(),
                       timeout=timeout or START_TIMEOUT, cwd=cwd)


def end_process(proc, timeout, sig=signal.SIGTERM):
    """Send proc sig if it still runs (None: it is ending by itself), wait up to
    timeout seconds, then SIGKILL it.  Its exit status; None if it was killed."""
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def db_rows(db, sql, params=()):
    """The rows of sql on the SQLite file db (sqlite3.Row: by index or by name),
    read over a read-only connection of its own, beside a running broker."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        con.row_factory = sqlite3.Row
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------
# Protocol client
# --------------------------------------------------------------------------

class ProtocolError(Exception):
    pass


def frame(body):
    """A frame: 4-byte big-endian length + body (bytes or a JSON-able object)."""
    if not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
    return struct.pack(">I", len(body)) + bytes(body)


def connect_unix(path, timeout=None):
    """A connected stream socket with a bounded connect, then timeout for I/O."""
    timeout = IO_TIMEOUT if timeout is None else timeout
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # A blocking connect on a Unix socket waits for a full backlog to
        # drain; SO_SNDTIMEO bounds that wait.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                     struct.pack("ll", int(timeout), int((timeout % 1) * 1e6)))
        s.connect(path)
        s.settimeout(timeout)
    except BaseException:
        s.close()
        raise
    return s


class Client:
    """Framing: 4-byte big-endian length + JSON body."""

    def __init__(self, path, timeout=None):
        self.path = path
        self.timeout = IO_TIMEOUT if timeout is None else timeout
        self.sock = connect_unix(path, self.timeout)
        self.next_id = 1

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_msg(self, obj):
        self.send_raw(frame(obj))

    def _recv_exact(self, n, deadline):
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out reading from broker")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return buf
            buf += chunk
        return buf

    def recv_frame(self, timeout=None):
        """The next body; None on EOF at a frame boundary; raises on a timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        hdr = self._recv_exact(4, deadline)
        if not hdr:
            return None
        if len(hdr) < 4:
            raise ProtocolError("EOF inside a reply header")
        (n,) = struct.unpack(">I", hdr)
        if n == 0 or n > FRAME_MAX:
            raise ProtocolError("broker sent a frame of length %d" % n)
        body = self._recv_exact(n, deadline)
        if len(body) < n:
            raise ProtocolError("EOF inside a reply body")
        return body

    def recv_msg(self, timeout=None):
        """The next reply as a dict (None on EOF); checks the reply's shape."""
        body = self.recv_frame(timeout)
        if body is None:
            return None
        msg = json.loads(body.decode("utf-8"))
        check_reply_shape(msg)
        return msg

    def request(self, obj, timeout=None):
        self.send_msg(obj)
        reply = self.recv_msg(timeout)
        if reply is None:
            raise ProtocolError("broker closed the connection instead of replying to %r" % (obj,))
        return reply

    def _id(self, id):
        if id is None:
            id = self.next_id
        self.next_id = max(self.next_id, id if isinstance(id, int) else 0) + 1
        return id

    def hello(self, version=1, id=None):
        return self.request({"id": self._id(id), "op": "hello", "args": {"version": version}})

    def call(self, op, args=None, id=None):
        msg = {"id": self._id(id), "op": op}
        if args is not None:
            msg["args"] = args
        return self.request(msg)

    def read_until_eof(self, timeout=None):
        """Read replies until the broker closes.  (replies, closed): closed is
        False when the deadline passed with the connection still open."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        replies = []
        while True:
            try:
                msg = self.recv_msg(timeout=max(0.0, deadline - time.monotonic()))
            except socket.timeout:
                return replies, False
            if msg is None:
                return replies, True
            replies.append(msg)


def check_reply_shape(msg):
    """Every reply is {"id", "ok", "result"} or {"id", "ok", "error":{code,message}}."""
    assert isinstance(msg, dict), msg
    assert "id" in msg and (msg["id"] is None or isinstance(msg["id"], int)), msg
    assert msg.get("ok") in (True, False), msg
    if msg["ok"]:
        assert isinstance(msg.get("result"), dict), msg
    else:
        err = msg.get("error")
        assert isinstance(err, dict), msg
        assert isinstance(err.get("code"), str) and err["code"], msg
        assert isinstance(err.get("message"), str), msg
        assert "\n" not in err["message"], msg


def assert_ok(reply, id=None):
    assert reply["ok"] is True, reply
    if id is not None:
        assert reply["id"] == id, reply
    return reply["result"]


def assert_error(reply, code, id="any"):
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == code, reply
    if id != "any":
        assert reply["id"] == id, reply
    return reply["error"]


# --------------------------------------------------------------------------
# The broker
# --------------------------------------------------------------------------

def short_tmpdir():
    """A temporary directory with a short name: sun_path holds 107 bytes."""
    return tempfile.mkdtemp(prefix="kw", dir="/tmp")


class NotifySocket:
    """The service manager's end of sd_notify: a datagram socket bound at path,
    for keywardend to find in $NOTIFY_SOCKET ('@name': the abstract namespace)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.bind("\0" + path[1:] if path.startswith("@") else path)
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        self.sock.close()
        if not self.path.startswith("@"):
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def recv(self):
        """The next datagram's assignments as a dict (it must be waiting)."""
        msg = self.sock.recv(4096, socket.MSG_DONTWAIT).decode("utf-8", "replace")
        return dict(line.partition("=")[::2] for line in msg.split("\n") if line)

    def wait_ready(self, proc, timeout):
        """True when a datagram says READY=1, False when proc exits first, None
        when timeout seconds pass with neither."""
        deadline = time.monotonic() + timeout
        pidfd = os.pidfd_open(proc.pid)
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                readable, _, _ = select.select([self.sock, pidfd], [], [], left)
                if self.sock in readable:
                    if self.recv().get("READY") == "1":
                        return True
                elif pidfd in readable:
                    return False
        finally:
            os.close(pidfd)


SEED_LOG_ACTIONS = ["file_read", "file_write", "file_delete", "command_execute", "api_call"]


class Broker:
    """One keywardend in its own directory: config.json, run/, lib/."""

    def __init__(self, root, extra=None, name="broker"):
        self.root = root
        self.name = name
        self.sock = os.path.join(root, "run", "broker.sock")
        self.datadir = os.path.join(root, "lib")
        self.audit_db = os.path.join(self.datadir, "audit.db")
        self.state_db = os.path.join(self.datadir, "state.db")
        self.config_path = os.path.join(root, "config.json")
        self.proc = None
        self.runs = 0
        self.stderr_path = None
        self.history = []        # (proc, stderr_path) of every start
        self.notify = None       # NotifySocket of the last start
        self.config = None
        self.write_config(extra)

    # -- configuration ----------------------------------------------------
    def base_config(self):
        # The tests count every answer, so the ordinary actions are recorded too
        # (the default logActions leaves hello and status out).
        return {"broker": {"socket": self.sock, "dataDir": self.datadir},
                "security": {"audit": {"logActions": SEED_LOG_ACTIONS + ["hello", "status"]}}}

    def write_config(self, extra=None, mode=0o600):
        self.config = deep_merge(self.base_config(), extra or {})
        self.write_config_text(json.dumps(self.config, indent=2) + "\n", mode)

    def write_config_text(self, text, mode=0o600):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, self.config_path)

    # -- process ----------------------------------------------------------
    def start(self, wait=True, args=None, env=None, umask=None, use_config_flag=True):
        """Start keywardend; with wait, return once it has said READY=1.

        Each start listens on a datagram socket of its own in the broker's
        directory (NOTIFY_SOCKET), unless env names one: a test that listens
        itself gets the datagrams, and then cannot wait here.
        """
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.runs += 1
        self.stderr_path = os.path.join(self.root, "%s.%d.stderr" % (self.name, self.runs))
        env = dict(env or clean_env())
        self._close_notify()
        if "NOTIFY_SOCKET" not in env:
            self.notify = NotifySocket(os.path.join(self.root, "%s.%d.notify"
                                                    % (self.name, self.runs)))
            env["NOTIFY_SOCKET"] = self.notify.path
        argv = [BROKER_BIN]
        if use_config_flag:
            argv += ["--config", self.config_path]
        argv += list(args or [])
        errf = open(self.stderr_path, "wb")
        preexec = (lambda: os.umask(umask)) if umask is not None else None
        try:
            self.proc = subprocess.Popen(argv, env=env, cwd=self.root,
                                         stdin=subprocess.DEVNULL, stdout=errf,
                                         stderr=errf, preexec_fn=preexec)
        finally:
            errf.close()
        self.history.append((self.proc, self.stderr_path))
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT, exit_ok=False):
        """True once the broker has said READY=1 (its socket accepts and its
        start is in the audit trail).  If it exits first: fails with its
        stderr, or with exit_ok returns False."""
        assert self.notify is not None, "NOTIFY_SOCKET was the test's own: wait on it there"
        ready = self.notify.wait_ready(self.proc, timeout)
        if ready:
            return True
        if ready is None:
            raise AssertionError("keywardend sent no READY=1 to %s within %.0fs:\n%s"
                                 % (self.notify.path, timeout, self.stderr()))
        rc = self.proc.wait()
        if exit_ok:
            return False
        raise AssertionError("keywardend exited with %d before it was ready:\n%s"
                             % (rc, self.stderr()))

    def _close_notify(self):
        if self.notify is not None:
            self.notify.close()
            self.notify = None

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """The exit status; fails if the broker is still running after timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("keywardend still running after %.0fs:\n%s"
                                 % (timeout, self.stderr()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Send sig (SIGTERM), wait, and return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT)

    def stderr(self, path=None):
        path = path or self.stderr_path
        if not path or not os.path.exists(path):
            return ""
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_stderr(self, text, timeout=START_TIMEOUT):
        """Poll the captured stderr until it contains text."""
        return wait_for(lambda: text in self.stderr(), timeout,
                        what="%r on keywardend's stderr" % text)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.proc.pid)

    # -- clients ----------------------------------------------------------
    def cli(self, *args, input=None, env=None, use_socket=True, timeout=None):
        """Run build/keywarden with KEYWARDEN_SOCKET set to this broker."""
        e = clean_env({"KEYWARDEN_SOCKET": self.sock} if use_socket else None)
        e.update(env or {})
        return run_cli(args, env=e, input=input, timeout=timeout)

    def connect(self, hello=True, timeout=None):
        c = Client(self.sock, timeout)
        if hello:
            r = c.hello()
            assert r["ok"] is True, r
        return c

    def audit_rows(self, where="1", params=()):
        return audit_rows(self.audit_db, where, params)

    # -- teardown ---------------------------------------------------------
    def teardown(self):
        """Kill what still runs; under sanitizers, SIGTERM must give 0."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            rc = end_process(self.proc, STOP_TIMEOUT)
            if rc is None:
                problems.append("keywardend did not exit within %.0fs of SIGTERM"
                                % STOP_TIMEOUT)
            if SANITIZE and rc != 0:
                problems.append("keywardend exited %s on SIGTERM (want 0)" % rc)
        for proc, path in self.history:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            text = self.stderr(path)
            mark = sanitizer_report(text)
            if mark:
                problems.append("%s in %s:\n%s" % (mark, path, text[-8000:]))
        self._close_notify()
        return problems


def audit_rows(db, where="1", params=()):
    """audit records as dicts, oldest first, names resolved (the audit_named view)."""
    rows = db_rows(db, "SELECT * FROM audit_named WHERE %s ORDER BY seq" % where, params)
    # Hashes are blobs: shown as hex, so rows serialise as JSON.
    return [{k: (v.hex() if isinstance(v, bytes) else v) for k, v in dict(r).items()}
            for r in rows]


@pytest.fixture(scope="session", autouse=True)
def _binaries():
    for b in (BROKER_BIN, CLI_BIN):
        if not os.access(b, os.X_OK):
            pytest.fail("%s is not built (set KW_BUILD, run make)" % b, pytrace=False)


@pytest.fixture
def tmpdir_short():
    d = short_tmpdir()
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def broker_factory():
    """make(extra=None, start=True, name=...) -> Broker in its own directory."""
    made = []
    dirs = []

    def make(extra=None, start=True, root=None, name="broker", **start_kw):
        if root is None:
            root = short_tmpdir()
            os.chmod(root, 0o700)
            dirs.append(root)
        b = Broker(root, extra, name=name)
        made.append(b)
        if start:
            b.start(**start_kw)
        return b

    yield make
    problems = []
    for b in made:
        problems += b.teardown()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    assert not problems, "\n".join(problems)


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


def file_mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)
