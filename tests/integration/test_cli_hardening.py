"""The CLI as an attacker's target: whom it talks to, what it prints, what it
leaves behind.

  * trust: the CLI (and libkeywarden) sends a token or a key only to a
    broker whose socket and answering process belong to root or to the
    caller (or to broker.uid from a trusted config), as pam_keywarden does;
  * terminal escapes: text from the broker or from files reaches the
    terminal with its control characters escaped;
  * core dumps and the terminal: the CLI is not dumpable and has no core
    limit from its first line, and a hidden prompt killed by a signal leaves
    the terminal echoing again.

Users are distinct Unix users under setpriv (users.py); the stand-in
"brokers" below are small Python servers run as one of them.
"""
import base64
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess

import pytest

from conftest import BUILD, IO_TIMEOUT, SANITIZE, clean_env, wait_for
from test_pam import gcc_lib
from users import USERS, fails, id_broker, ok, run_as, run_as_user, setpriv  # noqa: F401

# A stand-in broker: binds its socket as bind_uid, listens as listen_uid
# (SO_PEERCRED names the uid that called listen()), answers hello, refuses
# everything else with `message`, and writes down what it received.
FAKE_SCRIPT = r"""
import json, os, socket, struct, sys
path, bind_uid, listen_uid, log, message = sys.argv[1:6]
bind_uid, listen_uid = int(bind_uid), int(listen_uid)
def drop(uid):
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
out = open(log, "a", buffering=1)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if bind_uid:
    drop(bind_uid)
s.bind(path)
os.chmod(path, 0o666)
if listen_uid != bind_uid:
    drop(listen_uid)
s.listen(8)
out.write("ready\n")
def recv(c, n):
    buf = b""
    while len(buf) < n:
        chunk = c.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf
while True:
    c, _ = s.accept()
    out.write("connect\n")
    try:
        while True:
            (n,) = struct.unpack(">I", recv(c, 4))
            req = json.loads(recv(c, n))
            args = req.get("args") or {}
            out.write("op %s%s%s\n" % (req["op"], " +session" if "session" in req else "",
                                       " +value" if "value" in args else ""))
            if req["op"] == "hello":
                rep = {"id": req["id"], "ok": True, "result": {"version": 1, "server": "fake"}}
            elif req["op"] == "status":
                rep = {"id": req["id"], "ok": True, "result": {
                    "version": message, "protocol": 1, "user": message, "roles": [message],
                    "caller": {"user": message, "uid": 1, "gid": 1, "pid": 1},
                    "session_error": message}}
            else:
                rep = {"id": req["id"], "ok": False,
                       "error": {"code": "denied", "message": message}}
            body = json.dumps(rep).encode()
            c.sendall(struct.pack(">I", len(body)) + body)
    except (EOFError, ConnectionError):
        c.close()
"""


@pytest.fixture
def fake_broker():
    """start(path, bind_uid, listen_uid, message="fake") -> heard(): what the stand-in
    received after it started listening (one line per connection or request)."""
    procs = []

    def start(path, bind_uid, listen_uid, message="fake"):
        log = path + ".log"
        p = subprocess.Popen(["/usr/bin/python3", "-c", FAKE_SCRIPT, path, str(bind_uid),
                              str(listen_uid), log, message], stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        procs.append(p)
        wait_for(lambda: p.poll() is not None or (os.path.exists(log) and
                                                  "ready" in open(log).read()),
                 IO_TIMEOUT, what="the stand-in broker to listen")
        assert p.poll() is None, p.stderr.read()
        return lambda: open(log).read().splitlines()[1:]

    yield start
    for p in procs:
        p.kill()
        p.wait()
        p.stderr.close()


def owned_dir(parent, name, user, mode=0o755):
    d = os.path.join(parent, name)
    os.makedirs(d, exist_ok=True)
    os.chown(d, *USERS[user])
    os.chmod(d, mode)
    return d


def cached_token_env(b, user, sock, token):
    """An environment whose file token cache holds token for sock, as user's."""
    run = owned_dir(b.root, "xdg-" + user, user, 0o700)
    cache = owned_dir(run, "keywarden", user, 0o700)
    path = os.path.join(cache, "session-" +
                        hashlib.sha256(os.path.realpath(sock).encode()).hexdigest()[:16])
    with open(path, "w") as f:
        f.write("0\n%s\n" % token)
    os.chown(path, *USERS[user])
    os.chmod(path, 0o600)
    return {"KEYWARDEN_SOCKET": sock, "KEYWARDEN_TOKEN_CACHE": "file", "XDG_RUNTIME_DIR": run}


TOKEN = "kw1_" + "0" * 32 + "_" + "A" * 43
LIBKW_SCRIPT = r"""
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
c = ctypes.c_void_p()
print(lib.kw_client_connect(sys.argv[2].encode(), ctypes.byref(c)))
"""


# --------------------------------------------------------------------------
# trust: whom the CLI and libkeywarden talk to
# --------------------------------------------------------------------------

def test_cli_sends_nothing_to_another_users_socket(id_broker, fake_broker):
    b = id_broker(start_it=False)
    alice = USERS["alice"][0]
    d = owned_dir(b.root, "fake", "alice")
    own = os.path.join(d, "alice.sock")       # alice's socket, alice answers
    lent = os.path.join(d, "root.sock")       # root's socket file, alice answers
    heard_own = fake_broker(own, alice, alice)
    heard_lent = fake_broker(lent, 0, alice)
    assert os.stat(own).st_uid == alice and os.stat(lent).st_uid == 0

    for sock, heard, why in ((own, heard_own, "owned by uid %d" % alice),
                             (lent, heard_lent, "runs as uid %d" % alice)):
        env = cached_token_env(b, "bob", sock, TOKEN)
        fails(run_as(b, "bob", "key", "get", "demo", env=env), 1, "not trusted", why)
        fails(run_as(b, "bob", "key", "set", "demo", env=env, input="sk-ant-api03-secret\n"),
              1, "not trusted")
        fails(run_as(b, "bob", "status", env=env), 1, "not trusted")
    # Neither the token nor the key left bob's process; alice's own socket was not
    # even connected to, and the lent one heard no request at all.
    assert heard_own() == [], heard_own()
    assert heard_lent() and set(heard_lent()) == {"connect"}, heard_lent()

    # libkeywarden refuses the same way: KW_ERR_DENIED (-13) before any request.
    lib = os.path.join(BUILD, "libkeywarden.so")
    env = clean_env()
    if SANITIZE:
        # An ASan library in a program that is not: its runtimes first, and no
        # leak report about Python's own allocations.
        env.update(LD_PRELOAD=" ".join(gcc_lib(n) for n in ("libasan.so", "libubsan.so")),
                   ASAN_OPTIONS="detect_leaks=0")
    for sock in (own, lent):
        cp = run_as_user("bob", ["/usr/bin/python3", "-c", LIBKW_SCRIPT, lib, sock], env)
        assert ok(cp).strip() == "-13", cp.stdout
    assert heard_own() == [], heard_own()


def test_cli_talks_to_its_own_and_to_a_configured_broker(id_broker, fake_broker):
    b = id_broker(start_it=False)
    bob, alice = USERS["bob"][0], USERS["alice"][0]
    mine = os.path.join(owned_dir(b.root, "bobs", "bob"), "bob.sock")
    theirs = os.path.join(owned_dir(b.root, "alices", "alice"), "alice.sock")
    heard_mine = fake_broker(mine, bob, bob)
    heard_theirs = fake_broker(theirs, alice, alice)
    # A broker bob runs himself is his to trust (a personal broker).
    fails(run_as(b, "bob", "key", "get", "demo", env=cached_token_env(b, "bob", mine, TOKEN)),
          1, "fake")
    assert heard_mine() == ["connect", "op hello", "op key.get +session"], heard_mine()
    # broker.uid in a config bob may trust (root's, not writable by others) names alice.
    conf = os.path.join(b.root, "bob-config.json")
    with open(conf, "w") as f:
        json.dump({"broker": {"uid": alice}}, f)
    os.chmod(conf, 0o644)
    env = dict(cached_token_env(b, "bob", theirs, TOKEN), KEYWARDEN_CONFIG=conf)
    fails(run_as(b, "bob", "key", "get", "demo", env=env), 1, "fake")
    assert heard_theirs() == ["connect", "op hello", "op key.get +session"], heard_theirs()
    # ... and then root is still trusted, bob himself no longer.
    fails(run_as(b, "bob", "key", "get", "demo",
                 env=dict(cached_token_env(b, "bob", mine, TOKEN), KEYWARDEN_CONFIG=conf)),
          1, "not trusted")
    assert heard_mine() == ["connect", "op hello", "op key.get +session"], heard_mine()


# --------------------------------------------------------------------------
# a terminal for the CLI: tmux, with a shell of the test user in its pane
# --------------------------------------------------------------------------

class Tmux:
    """A private tmux server whose one pane runs `sh` as user (setpriv)."""

    def __init__(self, directory, user, env):
        self.sock = os.path.join(directory, "tmux.sock")
        self.marks = 0
        env = dict(env, TERM="xterm")
        shell = " ".join(setpriv(user, ["/bin/sh"]))
        self.tmux("new-session", "-d", "-x", "200", "-y", "50", shell, env=env)
        self.shell_pid = int(self.tmux("display-message", "-p", "#{pane_pid}").strip())
        wait_for(lambda: "$" in self.screen(), IO_TIMEOUT, what="the shell's prompt")

    def tmux(self, *args, env=None):
        cp = subprocess.run(["tmux", "-S", self.sock, "-f", "/dev/null"] + list(args),
                            env=env or clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True,
                            timeout=IO_TIMEOUT)
        assert cp.returncode == 0, (args, cp.stderr)
        return cp.stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200")

    def type(self, text, enter=True):
        self.tmux("send-keys", "-l", text)
        if enter:
            self.tmux("send-keys", "Enter")

    def key(self, name):
        self.tmux("send-keys", name)

    def wait_text(self, text):
        return wait_for(lambda: text in self.screen(), IO_TIMEOUT,
                        what="%r in the pane:\n%s" % (text, self.screen()))

    def child(self):
        """The pid of the shell's one child (the command it runs)."""
        path = "/proc/%d/task/%d/children" % (self.shell_pid, self.shell_pid)
        kids = wait_for(lambda: open(path).read().split(), IO_TIMEOUT, what="a child")
        assert len(kids) == 1, kids
        return int(kids[0])

    def run(self, command):
        """Run command in the shell and return its output (after the shell is back)."""
        self.marks += 1
        mark = "done-%d" % (1000 + self.marks)
        before = self.screen()
        # The mark is computed, so it shows only once the shell ran the line.
        self.type("%s; echo done-$((1000 + %d))" % (command, self.marks))
        out = wait_for(lambda: mark in self.screen()[len(before) - 200:] and self.screen(),
                       IO_TIMEOUT, what=mark)
        return out[:out.rindex(mark)]

    def kill(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=IO_TIMEOUT)


@pytest.fixture
def tmux(id_broker):
    made = []
    b = id_broker(start_it=False)

    def make(user):
        if not shutil.which("tmux"):
            pytest.fail("tmux is not installed (contrib/deps.sh)", pytrace=False)
        t = Tmux(b.root, user, clean_env({"KEYWARDEN_SOCKET": b.sock, "HOME": "/nonexistent"}))
        made.append(t)
        return t

    yield make
    for t in made:
        t.kill()


def echo_is_on(t):
    out = t.run("stty -a")
    flags = out[out.rindex("speed"):].split()
    assert "echo" in flags or "-echo" in flags, out
    return "echo" in flags and "-echo" not in flags


def waiting_key_set(t):
    """`keywarden key set demo` at its hidden prompt in t; its pid."""
    assert echo_is_on(t)
    t.type("%s key set demo" % os.path.join(BUILD, "keywarden"))
    t.wait_text("key value (not echoed): ")
    return t.child()


def test_cli_is_not_dumpable_and_has_no_core_limit(tmux):
    t = tmux("bob")
    pid = waiting_key_set(t)
    # Non-dumpable: the kernel gives the files of /proc/PID to root, and bob, its
    # own user, can no longer read its memory or environment.
    for name in ("status", "coredump_filter", "environ", "mem"):
        st = os.stat("/proc/%d/%s" % (pid, name))
        assert (st.st_uid, st.st_gid) == (0, 0), "keywarden is dumpable: %s %r" % (name, st)
    cp = run_as_user("bob", ["cat", "/proc/%d/environ" % pid], clean_env())
    assert cp.returncode != 0 and not cp.stdout, cp
    with open("/proc/%d/limits" % pid) as f:
        core = [l.split() for l in f if l.startswith("Max core file size")]
    assert core and core[0][4:6] == ["0", "0"], core
    t.key("C-c")


@pytest.mark.parametrize("how", ["SIGINT from the terminal", "SIGTERM"])
def test_signal_at_a_hidden_prompt_leaves_echo_on(tmux, how):
    t = tmux("bob")
    pid = waiting_key_set(t)
    if how == "SIGTERM":
        os.kill(pid, signal.SIGTERM)
    else:
        t.key("C-c")
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), IO_TIMEOUT, what="keywarden to end")
    assert echo_is_on(t), "the terminal was left without echo"


# --------------------------------------------------------------------------
# terminal escapes: foreign text is shown escaped
# --------------------------------------------------------------------------

# Clear the screen, retitle the window, a C1 CSI (U+009B), a bell.
EVIL = "evil\x1b[2J\x1b]0;owned\x07\u009b31mred\x7f"
# What a terminal must never receive raw: C0 but newline, DEL, C1 (as UTF-8), non-UTF-8.
RAW = (set(range(0x20)) - {0x0a}) | {0x7f}


def raw_controls(data):
    """The terminal-active bytes and C1 characters in data (bytes), as a list."""
    found = [hex(b) for b in data if b in RAW]
    text = data.decode("utf-8", "replace")
    found += ["U+%04X" % ord(c) for c in text if 0x80 <= ord(c) <= 0x9f or c == "\ufffd"]
    return found


def run_bytes(argv, env, input=None):
    """argv to completion: (returncode, stdout + stderr as bytes)."""
    cp = subprocess.run(argv, env=env, input=input, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=IO_TIMEOUT * 3)
    return cp.returncode, cp.stdout + cp.stderr


def test_archive_text_is_printed_escaped(tmpdir_short):
    cli = os.path.join(BUILD, "keywarden")
    lines = [b'{"seq": 1, "x": \x1b]0;owned\x07\x1b[2J}\n',        # invalid token near ESC
             b'{"seq": 1, "x": "\x1b[2J\x1b]0;owned\x07"}\n',      # control character in a string
             b'{"seq": 1, "x": "\xc2\x9b31m\xff\x1b[2J',             # C1, not UTF-8, cut short
             ]
    for i, line in enumerate(lines):
        path = os.path.join(tmpdir_short, "evil\x1b[2J-%d.jsonl.gz" % i)
        with gzip.open(path, "wb") as f:
            f.write(line)
        # Any well-formed key will do: the archive breaks before its manifest.
        pin = ["--pubkey", base64.b64encode(b"k" * 32).decode()]
        for args in ([], ["--json"]):
            rc, out = run_bytes([cli, "admin", "audit", "verify", "--archive", path] + pin + args,
                                clean_env())
            assert rc == 1, out
            assert b"broken" in out or b'"ok": false' in out, out
            assert raw_controls(out) == [], (line, out)
            if not args:
                assert b"\\x1b" in out, out


def test_broker_text_is_printed_escaped(id_broker, fake_broker):
    b = id_broker(start_it=False)
    bob = USERS["bob"][0]
    sock = os.path.join(owned_dir(b.root, "bobs", "bob"), "bob.sock")
    fake_broker(sock, bob, bob, message=EVIL)
    env = clean_env({"KEYWARDEN_SOCKET": sock, "HOME": "/nonexistent"})
    cli = os.path.join(BUILD, "keywarden")
    for args, rc in ((["key", "get", "demo"], 1), (["check", "read", "key/demo"], 1),
                     (["status"], 0), (["status", "--json"], 0)):
        got, out = run_bytes(setpriv("bob", [cli] + args), env)
        assert got == rc, (args, out)
        assert raw_controls(out) == [], (args, out)
        assert b"evil" in out, (args, out)
        if "--json" in args:
            doc = json.loads(out)
            assert doc["user"] == EVIL, doc        # the same text, escaped as JSON
        else:
            assert b"evil\\x1b[2J\\x1b]0;owned\\x07\\xc2\\x9b31mred\\x7f" in out, (args, out)
