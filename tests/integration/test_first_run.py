"""
A first run, done the way the README says, as a user who is not root
(issue 12): nothing installed in /etc, no pam_wrapper.

The system case: `make run`'s own script (contrib/run-dev.sh) starts the
broker as root in a directory of the test's own (its ./var); root registers
alice (`sudo keywarden --socket ...`: here root with --socket and no
keywarden variables, as sudo leaves them); alice computes the code from the
otpauth:// URI with oathtool and runs `keywarden login` with it on stdin.
Without /etc/pam.d/keywarden the CLI has the broker check the code itself.

The personal case: alice runs the broker herself on her own Secret Service
keychain (a headless gnome-keyring in her own D-Bus session), with the
configuration contrib/systemd/keywarden-user.service describes; she owns
that broker, so she registers herself, logs in, stores her key and runs the
real `claude -p`, whose apiKeyHelper reads the key from the keychain through
the broker.

Users come from nss_wrapper (users.py); the broker and the CLI run as them
through setpriv.  Tokens go to the file cache in a runtime directory of the
user's own, so no test leaves keys in a real keyring.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse

import pytest

from anthropic_server import AnthropicServer
from conftest import (BUILD, CLI_BIN, BROKER_BIN, HERE, IO_TIMEOUT, SANITIZE, START_TIMEOUT,
                      STOP_TIMEOUT, NotifySocket, assert_error, audit_rows, clean_env,
                      end_process, run_process, sanitizer_report)
from test_claude_code import KEY, REPLY, assert_key_sent, claude, make_home, run_claude  # noqa: F401
from test_keystore_keychain import BUS_WRAPPER
from users import USERS, UserConn, preload, setpriv, write_nss_files

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
RUN_DEV = os.path.join(REPO, "contrib", "run-dev.sh")
PAM_FILE = "/etc/pam.d/keywarden"
LOGIN_RE = re.compile(r"^logged in as (\S+); session ([0-9a-f]{32}) expires (\S+)$")
MAXTRIES = "Have exhausted maximum number of retries"
AUTH_ERR = "Authentication failure"
PAM_VARS = ("PAM_WRAPPER", "PAM_WRAPPER_SERVICE_DIR", "LD_PRELOAD")


@pytest.fixture(autouse=True)
def _nothing_in_etc():
    # The point of these tests: a login with nothing installed in /etc.
    assert not os.path.exists(PAM_FILE), (
        "%s exists on this machine: these tests show a login without it" % PAM_FILE)
    for tool in ("oathtool", "setpriv", "dbus-run-session", "gnome-keyring-daemon",
                 "secret-tool"):
        if not shutil.which(tool):
            pytest.fail("%s is not installed (make deps)" % tool, pytrace=False)


# --------------------------------------------------------------------------
# A broker run as a user, with its stdout and stderr kept
# --------------------------------------------------------------------------

class Daemon:
    """argv run as user in cwd, ready when it says READY=1 (sd_notify)."""

    def __init__(self, root, user, argv, env, cwd):
        self.root = root
        self.out_path = os.path.join(root, "daemon.out")
        self.notify = NotifySocket(os.path.join(root, "daemon.notify"))
        # The broker sends its datagram as user.
        os.chmod(self.notify.path, 0o666)
        env = dict(env, NOTIFY_SOCKET=self.notify.path)
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(setpriv(user, argv), env=env, cwd=cwd,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        ready = self.notify.wait_ready(self.proc, START_TIMEOUT)
        if not ready:
            self.stop()
            raise AssertionError("%s not ready (%s):\n%s" % (argv, ready, self.output()))

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        """End it; the problems found (a sanitizer report, an unclean exit)."""
        problems = []
        rc = end_process(self.proc, STOP_TIMEOUT)
        self.notify.close()
        if rc is None:
            problems.append("did not exit within %.0fs of SIGTERM" % STOP_TIMEOUT)
        elif SANITIZE and rc != 0:
            problems.append("exited %s on SIGTERM (want 0)" % rc)
        if sanitizer_report(self.output()):
            problems.append(self.output()[-8000:])
        return problems


def nss_env(root, extra=None):
    """The environment with the test users (nss_wrapper) and no PAM wrapper."""
    passwd, group = os.path.join(root, "passwd"), os.path.join(root, "group")
    if not os.path.exists(passwd):
        write_nss_files(root)
    env = clean_env(drop=PAM_VARS + ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"))
    env.update({"LD_PRELOAD": preload(), "NSS_WRAPPER_PASSWD": passwd,
                "NSS_WRAPPER_GROUP": group, "HOME": "/nonexistent"})
    env.update(extra or {})
    return env


def user_dir(root, name, user, mode=0o700):
    path = os.path.join(root, name)
    os.makedirs(path, mode=mode, exist_ok=True)
    os.chown(path, *USERS[user])
    os.chmod(path, mode)
    return path


class Shell:
    """One user's terminal: the exports the README gives, the CLI as that user."""

    def __init__(self, root, user, env):
        self.user = user
        run = user_dir(root, "xdg-" + user, user)
        # The token goes to a 0600 file under this runtime directory.
        self.env = nss_env(root, dict({"KEYWARDEN_TOKEN_CACHE": "file",
                                       "XDG_RUNTIME_DIR": run}, **env))

    def kw(self, *args, input=None):
        return run_process(setpriv(self.user, [CLI_BIN] + list(args)), env=self.env,
                           input=input, cwd="/")


def ok(cp):
    assert cp.returncode == 0, "exit %d: %s\nstdout: %s\nstderr: %s" % (
        cp.returncode, cp.args, cp.stdout, cp.stderr)
    return cp.stdout


def refused(cp, line, rc=1):
    """cp exited rc with exactly one line on stderr, line, and nothing on stdout."""
    assert cp.returncode == rc, "exit %d (want %d): %s\n%s%s" % (
        cp.returncode, rc, cp.args, cp.stdout, cp.stderr)
    assert cp.stdout == "" and cp.stderr.splitlines() == [line], (cp.stdout, cp.stderr)
    assert MAXTRIES not in cp.stderr and AUTH_ERR not in cp.stderr, cp.stderr


def secret_of(uri):
    """The base32 secret of an otpauth:// URI, as an authenticator app reads it."""
    u = urllib.parse.urlparse(uri)
    assert u.scheme == "otpauth" and u.netloc == "totp", uri
    return urllib.parse.parse_qs(u.query)["secret"][0]


def code_of(secret, steps=0):
    argv = ["oathtool", "--totp", "-b", secret]
    if steps:
        argv += ["-N", "now + %d seconds" % (30 * steps)]
    out = subprocess.run(argv, stdout=subprocess.PIPE, universal_newlines=True,
                         check=True, timeout=IO_TIMEOUT).stdout.strip()
    assert re.fullmatch(r"\d{6}", out), out
    return out


def logged_in(cp, user):
    """A login's one line: its session id."""
    ok(cp)
    lines = cp.stdout.splitlines()
    assert len(lines) == 1, cp.stdout
    m = LOGIN_RE.match(lines[0])
    assert m and m.group(1) == user, lines[0]
    # No PAM stack stood in between: no password prompt, no PAM words.
    assert "Password" not in cp.stderr and AUTH_ERR not in cp.stderr, cp.stderr
    return m.group(2)


# --------------------------------------------------------------------------
# make run, as root; alice logs in
# --------------------------------------------------------------------------

def start_make_run(root, user):
    """contrib/run-dev.sh (the body of `make run`) as user, in root (its ./var)."""
    os.chmod(root, 0o755)      # test users reach ./var/run/broker.sock
    if user != "root":
        os.chown(root, *USERS[user])
    d = Daemon(root, user, ["sh", RUN_DEV, BUILD], nss_env(root), cwd=root)
    var = os.path.join(root, "var")
    d.sock = os.path.join(var, "run", "broker.sock")
    d.audit_db = os.path.join(var, "lib", "audit.db")
    # export KEYWARDEN_SOCKET=... KEYWARDEN_CONFIG=... as the banner says.
    d.exports = {"KEYWARDEN_SOCKET": d.sock,
                 "KEYWARDEN_CONFIG": os.path.join(var, "config.json")}
    return d


@pytest.fixture
def make_run(tmpdir_short):
    """`make run` as root."""
    d = start_make_run(tmpdir_short, "root")
    yield d
    problems = d.stop()
    assert not problems, problems


def sudo_kw(d, *args, input=None):
    """`sudo build/keywarden --socket $KEYWARDEN_SOCKET ...`: sudo drops the exports."""
    env = nss_env(d.root)
    return run_process([CLI_BIN, "--socket", d.sock] + list(args), env=env, input=input)


def register(d, user, *roles):
    args = ["admin", "user", "add", user, "--json"]
    for r in roles:
        args += ["--role", r]
    cp = sudo_kw(d, *args)
    doc = json.loads(ok(cp))
    assert doc["otpauth_uri"].startswith("otpauth://totp/keywarden:%s?" % user), doc
    return secret_of(doc["otpauth_uri"])


def test_make_run_banner_gives_the_plain_commands(make_run):
    banner = make_run.output()
    assert "keywarden login" in banner and "admin user add USER --role developer" in banner, \
        banner
    for workaround in ("kwlogin", "pam_wrapper", "PAM_WRAPPER", "pam.d"):
        assert workaround not in banner, banner
    assert "owner   root" in banner, banner


def test_first_login_after_make_run(make_run):
    d = make_run
    alice = Shell(d.root, "alice", d.exports)

    # Not registered yet: told so in one line, and no code is asked for or sent.
    assert "not a keywarden user" in ok(alice.kw("status"))
    cp = alice.kw("login", input="123456\n")
    refused(cp, "keywarden: login: alice is not a keywarden user; an administrator adds "
            "you with keywarden admin user add alice")
    assert [r["action"] for r in audit_rows(d.audit_db, "pid = ?", (cp.pid,))] == ["account"]

    # Root registers her; her app reads the otpauth:// URI; she logs in with its code.
    secret = register(d, "alice", "developer")
    code = code_of(secret)
    cp = alice.kw("login", input=code + "\n")
    sid = logged_in(cp, "alice")
    rows = audit_rows(d.audit_db, "pid = ? AND action = 'login'", (cp.pid,))
    assert [(r["result"], r["uid"], r["resource"]) for r in rows] == \
        [("success", USERS["alice"][0], "user/alice")], rows

    # The session is hers, and works: status shows it, keys go in and out.
    assert sid in ok(alice.kw("status"))
    ok(alice.kw("key", "set", "anthropic", input=KEY + "\n"))
    assert ok(alice.kw("key", "get", "anthropic")) == KEY + "\n"
    # The code was used: the same one again is the broker's "wrong or already used"
    # (the same string, not a fresh code_of: a 30 s step may have begun since).
    refused(alice.kw("login", input=code + "\n"),
            "keywarden: login: wrong or already used code")
    assert ok(alice.kw("logout")).startswith("logged out; session %s ended" % sid)
    assert "log in first" in alice.kw("key", "get", "anthropic").stderr


def test_locked_user_reads_the_lock(make_run):
    d = make_run
    alice = Shell(d.root, "alice", d.exports)
    secret = register(d, "alice", "developer")

    ok(sudo_kw(d, "admin", "user", "lock", "alice", "--message", "see the helpdesk"))
    cp = alice.kw("login", input=code_of(secret) + "\n")
    refused(cp, "keywarden: login: account locked by an administrator: see the helpdesk")
    # A locked account is not asked for a code: none reached the broker.
    assert [r["action"] for r in audit_rows(d.audit_db, "pid = ?", (cp.pid,))] == ["account"]
    ok(sudo_kw(d, "admin", "user", "unlock", "alice"))

    # Three wrong codes (the default threshold) lock it; the third says so.
    bad = next(c for c in ("583920", "406172", "771045")
               if c not in {code_of(secret, s) for s in (-2, -1, 0, 1, 2)})
    for _ in range(2):
        refused(alice.kw("login", input=bad + "\n"),
                "keywarden: login: wrong or already used code")
    refused(alice.kw("login", input=bad + "\n"),
            "keywarden: login: wrong code; too many failures, the account is now locked")
    cp = alice.kw("login", input=code_of(secret) + "\n")
    assert cp.returncode == 1 and cp.stderr.startswith(
        "keywarden: login: account locked until 2"), cp.stderr
    assert MAXTRIES not in cp.stderr and len(cp.stderr.splitlines()) == 1, cp.stderr


def test_unregistered_user_is_told_whom_to_ask(make_run):
    d = make_run
    register(d, "alice", "developer")
    bob = Shell(d.root, "bob", d.exports)
    refused(bob.kw("login", input="123456\n"),
            "keywarden: login: bob is not a keywarden user; an administrator adds you "
            "with keywarden admin user add bob")
    # Someone else's name: only the broker's owners log in for another user.
    cp = bob.kw("login", "-u", "alice", input="123456\n")
    assert cp.returncode == 2 and "takes the PAM service keywarden" in cp.stderr, cp


def test_make_run_as_a_user_who_then_owns_it(tmpdir_short):
    # The usual case: a developer (alice) runs `make run` herself.
    d = start_make_run(tmpdir_short, "alice")
    try:
        banner = d.output()
        assert "owner   alice" in banner and "admin user add alice --role developer" in banner, \
            banner
        assert os.stat(d.sock).st_uid == USERS["alice"][0]
        alice = Shell(d.root, "alice", d.exports)
        # kw=build/keywarden: she administers her broker without sudo or a session ...
        doc = json.loads(ok(alice.kw("admin", "user", "add", "alice", "--role", "developer",
                                     "--json")))
        assert doc["created_by"] == "alice", doc
        ok(alice.kw("admin", "user", "add", "bob", "--role", "reviewer"))
        # ... and asks on behalf of others, by their roles; bob, who does not own
        # it, may neither (his keywarden does not even trust a socket of alice's:
        # the broker is asked directly).
        assert alice.kw("check", "write", "key/x", "--user", "bob").returncode == 1
        ok(alice.kw("check", "read", "key/x", "--user", "bob"))
        with UserConn(d, "bob") as c:
            assert_error(c.call("user.list"), "session_required")
            err = assert_error(c.call("account", {"user": "alice"}), "denied")
            assert err["message"] == "acting for another user needs root", err
        # Her own keys take a login, as the README walks through.
        assert "log in first" in alice.kw("key", "get", "anthropic").stderr
        logged_in(alice.kw("login", input=code_of(secret_of(doc["otpauth_uri"])) + "\n"),
                  "alice")
        ok(alice.kw("key", "set", "anthropic", input=KEY + "\n"))
        assert ok(alice.kw("key", "get", "anthropic")) == KEY + "\n"
    finally:
        problems = d.stop()
    assert not problems, problems


# --------------------------------------------------------------------------
# A personal broker: alice's own, on her own keychain, through to claude -p
# --------------------------------------------------------------------------

class Keychain:
    """alice's D-Bus session with an unlocked gnome-keyring (TESTING.md), run as alice."""

    def __init__(self, root, user, home, run):
        self.user = user
        wrapper = os.path.join(root, "keyring-session.sh")
        with open(wrapper, "w") as f:
            f.write(BUS_WRAPPER)
        os.chmod(wrapper, 0o644)
        addr = os.path.join(run, "bus-address")
        self.log = open(os.path.join(root, "keyring-session.log"), "wb")
        self.base = {"PATH": "/usr/bin:/bin", "HOME": home, "XDG_RUNTIME_DIR": run}
        # dbus-daemon wants its user in the password database: nss_wrapper's.
        nss = {"LD_PRELOAD": "libnss_wrapper.so",
               "NSS_WRAPPER_PASSWD": os.path.join(root, "passwd"),
               "NSS_WRAPPER_GROUP": os.path.join(root, "group")}
        self.proc = subprocess.Popen(setpriv(user, ["dbus-run-session", "--", "sh", wrapper,
                                                    addr]),
                                     env=dict(self.base, **nss), stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, start_new_session=True)
        end = time.monotonic() + START_TIMEOUT
        while not os.path.exists(addr):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                with open(self.log.name, "rb") as f:
                    raise AssertionError("no Secret Service session:\n%s" % f.read().decode())
            time.sleep(0.02)
        with open(addr) as f:
            self.env = dict(self.base, DBUS_SESSION_BUS_ADDRESS=f.read().strip())

    def lookup(self, service, account):
        cp = run_process(setpriv(self.user, ["secret-tool", "lookup", "service", service,
                                             "account", account]), env=self.env)
        return cp.stdout if cp.returncode == 0 else None

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture
def server(tmpdir_short):
    srv = AnthropicServer(os.path.join(tmpdir_short, "requests.jsonl"), reply_text=REPLY,
                          expect_key=KEY).start()
    yield srv
    srv.stop()


def test_personal_broker_from_nothing_to_claude(claude, server, tmpdir_short):
    root = tmpdir_short
    os.chmod(root, 0o755)
    write_nss_files(root)
    # alice's HOME with Claude Code's settings from contrib (apiKeyHelper), and her
    # runtime directory: everything below is hers.
    home, work = make_home(root, "alice")
    run = user_dir(root, "xdg-alice", "alice")
    keychain = Keychain(root, "alice", home, run)
    broker = None
    try:
        # ~/.config/keywarden/config.json as keywarden-user.service describes it.
        conf_dir = user_dir(home, ".config", "alice")
        conf_dir = user_dir(conf_dir, "keywarden", "alice")
        sock = os.path.join(run, "keywarden", "broker.sock")
        config = os.path.join(conf_dir, "config.json")
        with open(config, "w") as f:
            json.dump({"api": {"keySource": "keychain"},
                       "broker": {"socket": sock,
                                  "dataDir": os.path.join(home, ".local", "share", "keywarden"),
                                  "socketMode": "0600"}}, f)
        os.chown(config, *USERS["alice"])
        os.chmod(config, 0o600)
        # The unit's ExecStart, by hand, as alice in her D-Bus session.
        broker = Daemon(root, "alice", [BROKER_BIN, "--config", config],
                        nss_env(root, keychain.env), cwd=home)
        assert os.stat(sock).st_uid == USERS["alice"][0]

        alice = Shell(root, "alice", {"KEYWARDEN_SOCKET": sock})
        # She owns it: she registers herself, no root, no session yet.
        doc = json.loads(ok(alice.kw("admin", "user", "add", "alice", "--role", "developer",
                                     "--json")))
        assert doc["created_by"] == "alice", doc
        secret = secret_of(doc["otpauth_uri"])
        # Her own keys take a session, as anyone's do.
        assert "log in first" in alice.kw("key", "set", "anthropic", input=KEY).stderr
        logged_in(alice.kw("login", input=code_of(secret) + "\n"), "alice")
        assert ok(alice.kw("key", "set", "anthropic", input=KEY + "\n")).startswith(
            "anthropic: version 1 is current")
        # The key is in her keychain, where secret-tool finds it ...
        assert keychain.lookup("anthropic-api-key", "alice") == KEY
        # ... and claude -p gets it through apiKeyHelper = keywarden key get anthropic.
        cp = run_claude(claude, "alice", home, work, server,
                        {"KEYWARDEN_SOCKET": sock, "KEYWARDEN_TOKEN_CACHE": "file",
                         "XDG_RUNTIME_DIR": run})
        assert_key_sent(cp, server, 0)
        db = os.path.join(home, ".local", "share", "keywarden", "audit.db")
        gets = audit_rows(db, "action = 'key.get' AND result = 'success'")
        assert gets and all(r["user"] == "alice" for r in gets), gets
        # Administration as the owner is in the trail like root's.
        adds = audit_rows(db, "action = 'user.add'")
        assert [(r["user"], r["result"]) for r in adds] == [("alice", "success")], adds
    finally:
        problems = broker.stop() if broker else []
        keychain.stop()
    assert not problems, problems
