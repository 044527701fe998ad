"""
pam_keywarden.so through the real PAM stack, and `keywarden login`.

The module is loaded by Linux-PAM as any service would load it, without
touching /etc: libpam_wrapper.so (PAM_WRAPPER=1) reads the services from a
directory of the test's own, naming the module by absolute path, and
pamtester drives the stages (answers on stdin).  libnss_wrapper.so lets the
module and the CLI resolve the test users (users.py).  Under KW_SANITIZE=1
the module is the ASan+UBSan build, so the sanitizer runtimes are preloaded
first.  Codes come from oathtool with the secret `admin user add --json`
printed; the broker is the real one, and its audit trail is checked for what
reached it.

$KEYWARDEN_SOCKET is set to a wrong path for every pamtester run: the module
must take the broker's socket from its socket= option only.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, CLI_BIN, IO_TIMEOUT, SANITIZE, clean_env, wait_for
from users import (USERS, as_json, id_broker, ok, run_as_user,  # noqa: F401 (id_broker is a fixture)
                   setpriv)

MODULE = os.path.join(BUILD, "pam_keywarden.so")
PAM_SM = {"pam_sm_authenticate", "pam_sm_setcred", "pam_sm_acct_mgmt",
          "pam_sm_open_session", "pam_sm_close_session"}

# pam_strerror(3) texts pamtester and the CLI print.
AUTH_ERR = "Authentication failure"
MAXTRIES = "Have exhausted maximum number of retries for service"
PERM_DENIED = "Permission denied"
USER_UNKNOWN = "User not known to the underlying authentication module"
AUTHINFO_UNAVAIL = "Authentication service cannot retrieve authentication info"

LOGIN_RE = re.compile(r"^logged in as (\S+); session ([0-9a-f]{32}) expires (\S+)$")


def gcc_lib(name):
    return subprocess.run(["gcc", "-print-file-name=" + name], stdout=subprocess.PIPE,
                          universal_newlines=True, check=True).stdout.strip()


def pam_preload():
    """The sanitizer runtimes must come before anything else in an ASan build."""
    libs = [gcc_lib("libasan.so"), gcc_lib("libubsan.so")] if SANITIZE else []
    return " ".join(libs + ["libpam_wrapper.so", "libnss_wrapper.so"])


@pytest.fixture(scope="module", autouse=True)
def _tools():
    for tool in ("pamtester", "oathtool", "setpriv", "keyctl"):
        if not shutil.which(tool):
            pytest.fail("%s is not installed (make deps)" % tool, pytrace=False)
    if not os.path.exists(MODULE):
        pytest.fail("%s is not built (make)" % MODULE, pytrace=False)


# --------------------------------------------------------------------------
# TOTP codes
# --------------------------------------------------------------------------

def totp(secret, steps=0):
    """The code of the current 30 s step, or of `steps` steps later."""
    argv = ["oathtool", "--totp", "-b", secret]
    if steps:
        argv += ["-N", "now + %d seconds" % (30 * steps)]
    out = subprocess.run(argv, stdout=subprocess.PIPE, universal_newlines=True,
                         check=True).stdout.strip()
    assert re.fullmatch(r"\d{6}", out), out
    return out


def wrong_code(secret):
    """A 6-digit code no step the broker's window may look at has."""
    near = {totp(secret, s) for s in (-2, -1, 0, 1, 2)}
    return next("%06d" % n for n in range(1000000) if "%06d" % n not in near)


# --------------------------------------------------------------------------
# The broker, its users and its PAM services
# --------------------------------------------------------------------------

def service_text(b, auth="", account="", session="", module=None):
    """A service using the module for all three stages, with per-stage options."""
    mod = module or MODULE
    sock = "socket=%s" % b.sock
    return "".join("%-8s required %s %s %s\n" % (kind, mod, sock, opts)
                   for kind, opts in (("auth", auth), ("account", account),
                                      ("session", session)))


def write_services(b, services):
    """b.root/pam.d with `other` (pam_deny) and services {name: text}."""
    d = os.path.join(b.root, "pam.d")
    os.makedirs(d, mode=0o755, exist_ok=True)
    os.chmod(d, 0o755)
    services = dict(services)
    services.setdefault("other", "".join("%-8s required pam_deny.so\n" % k for k in
                                         ("auth", "account", "password", "session")))
    for name, text in services.items():
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
    return d


def cache_desc(sock):
    """The token cache's key description for the broker at sock."""
    return "keywarden:session:" + hashlib.sha256(sock.encode()).hexdigest()[:16]


class PamBroker:
    """A broker under nss_wrapper (sessions required) with PAM services."""

    def __init__(self, b):
        self.b = b
        self.sock = b.sock
        self.enrolled = {}           # user -> add --json result
        self.cached_for = set()      # users whose token cache may hold a key
        self.pamdir = write_services(b, {"keywarden": service_text(b)})

    def add(self, user, *roles):
        args = ["admin", "user", "add", user, "--json"]
        for r in roles:
            args += ["--role", r]
        doc = as_json(self.b.cli(*args))
        assert doc["user"] == user, doc
        assert doc["otpauth_uri"].startswith("otpauth://totp/keywarden:%s?" % user), doc
        assert len(doc["recovery_codes"]) == 10, doc
        self.enrolled[user] = doc
        return doc

    def secret(self, user):
        return self.enrolled[user]["secret"]

    def recovery(self, user, i):
        return self.enrolled[user]["recovery_codes"][i]

    def env(self, extra=None):
        env = clean_env({
            "LD_PRELOAD": pam_preload(),
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": self.pamdir,
            "NSS_WRAPPER_PASSWD": os.path.join(self.b.root, "passwd"),
            "NSS_WRAPPER_GROUP": os.path.join(self.b.root, "group"),
            # Only socket= may name the broker inside PAM.
            "KEYWARDEN_SOCKET": "/nonexistent/keywarden-wrong.sock",
            "HOME": "/nonexistent",
        }, drop=("XDG_RUNTIME_DIR",))
        env.update(extra or {})
        return env

    def run(self, argv, as_user="root", input=None, env=None):
        if USERS[as_user][0] != 0:
            self.cached_for.add(as_user)
        return run_as_user(as_user, argv, env or self.env(), input=input)

    def pamtester(self, user, *ops, input=None, service="keywarden", as_user="root"):
        """pamtester SERVICE USER OPS...; its output is stdout + stderr."""
        self.cached_for.add(user)
        return self.run(["pamtester", service, user] + list(ops), as_user=as_user,
                        input=input)

    def login(self, user, code, *args, service_env=None):
        """`keywarden login` as user with the code on stdin."""
        env = self.env({"KEYWARDEN_SOCKET": self.sock})
        env.update(service_env or {})
        line = code + "\n" if code is not None else ""
        return self.run([CLI_BIN, "login"] + list(args), as_user=user, input=line, env=env)

    def cli_as(self, user, *args):
        """The CLI as user, finding its cached token (no PAM involved)."""
        env = clean_env({"KEYWARDEN_SOCKET": self.sock, "HOME": "/nonexistent",
                         "LD_PRELOAD": pam_preload(),
                         "NSS_WRAPPER_PASSWD": os.path.join(self.b.root, "passwd"),
                         "NSS_WRAPPER_GROUP": os.path.join(self.b.root, "group")},
                        drop=("XDG_RUNTIME_DIR",))
        return self.run([CLI_BIN] + [str(a) for a in args], as_user=user, env=env)

    def status_session(self, user):
        """The session `keywarden status --json` as user shows (None if none)."""
        doc = as_json(self.cli_as(user, "status", "--json"))
        assert doc["caller"]["user"] == user, doc
        return doc.get("session")

    def sessions(self, user):
        doc = as_json(self.b.cli("admin", "session", "list", "--user", user, "--json"))
        rows = doc["sessions"] if isinstance(doc, dict) else doc
        assert all(s["user"] == user for s in rows), rows
        return rows

    def audit(self, action, user=None):
        rows = self.b.audit_rows("action = ?", (action,))
        if user:
            rows = [r for r in rows if r["resource"] == "user/" + user]
        return rows

    def forget_caches(self):
        """Drop the keys this broker's tokens left in the test users' keyrings."""
        script = ('id=$(keyctl search @u user "$1" 2>/dev/null) || exit 0; '
                  'keyctl invalidate "$id" 2>/dev/null || keyctl unlink "$id" @u')
        for user in sorted(self.cached_for):
            argv = setpriv(user, ["sh", "-c", script, "sh", cache_desc(self.sock)])
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=IO_TIMEOUT)


@pytest.fixture
def pam_broker(id_broker):
    made = []

    def make(extra=None):
        pb = PamBroker(id_broker(extra, mfa_required=True))
        made.append(pb)
        return pb

    yield make
    for pb in made:
        pb.forget_caches()


def succeeded(cp, *texts):
    both = cp.stdout + cp.stderr
    assert cp.returncode == 0, "exit %d: %s\n%s" % (cp.returncode, cp.args, both)
    for t in texts:
        assert t in both, "%r not in the output of %s:\n%s" % (t, cp.args, both)
    return both


def failed(cp, *texts, rc=1):
    both = cp.stdout + cp.stderr
    assert cp.returncode == rc, "exit %d (want %d): %s\n%s" % (cp.returncode, rc, cp.args, both)
    for t in texts:
        assert t in both, "%r not in the output of %s:\n%s" % (t, cp.args, both)
    return both


def no_secrets_in_audit(pb, *secrets):
    for row in pb.b.audit_rows():
        text = json.dumps(row, default=str)
        assert "kw1_" not in text, row
        for s in secrets:
            assert s not in (row["metadata"] or ""), (s, row)


# --------------------------------------------------------------------------
# The module as a library
# --------------------------------------------------------------------------

def test_module_exports_only_pam_sm():
    out = subprocess.run(["nm", "-D", "--defined-only", MODULE], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert names == PAM_SM, sorted(names)


# --------------------------------------------------------------------------
# auth, account, session through pamtester
# --------------------------------------------------------------------------

def test_right_code_opens_a_session_the_user_then_has(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    code = totp(pb.secret("alice"))
    cp = pb.pamtester("alice", "authenticate", "acct_mgmt", "open_session", input=code + "\n")
    succeeded(cp, "successfully authenticated", "successfully opened a session")
    # pamtester ran as root; the token went to alice's own cache.
    ses = pb.status_session("alice")
    assert ses and re.fullmatch(r"[0-9a-f]{32}", ses["id"]), ses
    assert [s["id"] for s in pb.sessions("alice")] == [ses["id"]]
    rows = [r for r in pb.audit("login", "alice") if r["result"] == "success"]
    assert len(rows) == 1 and json.loads(rows[0]["metadata"])["session"] == ses["id"], rows
    no_secrets_in_audit(pb, code)
    # Root's own cache got nothing.
    assert pb.status_session("root") is None


def test_close_session_ends_the_session_and_forgets_the_token(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    cp = pb.pamtester("alice", "authenticate", "open_session", "close_session",
                      input=totp(pb.secret("alice")) + "\n")
    succeeded(cp, "session has successfully been closed")
    assert pb.sessions("alice") == []
    assert len(pb.audit("logout")) == 1
    assert pb.status_session("alice") is None


def test_authentication_without_a_session_stage_ends_its_session(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    cp = pb.pamtester("alice", "authenticate", input=totp(pb.secret("alice")) + "\n")
    succeeded(cp, "successfully authenticated")
    assert [r["result"] for r in pb.audit("login", "alice")] == ["success"]
    # Nobody can reach that token any more: it must not wait for its idle timeout.
    assert pb.sessions("alice") == []
    assert pb.status_session("alice") is None


def test_nosession_checks_the_code_and_opens_nothing(pam_broker):
    """As a second factor for sudo or sshd: the code counts, no session is made."""
    pb = pam_broker()
    pb.add("alice", "developer")
    write_services(pb.b, {"keywarden": service_text(pb.b, auth="nosession")})
    code = totp(pb.secret("alice"))
    succeeded(pb.pamtester("alice", "authenticate", input=code + "\n"),
              "successfully authenticated")
    rows = pb.audit("login", "alice")
    assert [r["result"] for r in rows] == ["success"], rows
    assert json.loads(rows[0]["metadata"])["session"] is None, rows
    assert pb.sessions("alice") == []
    # The code was spent all the same: a replay is refused.
    cp = pb.pamtester("alice", "authenticate", input=code + "\n")
    assert cp.returncode != 0, (cp.stdout, cp.stderr)
    no_secrets_in_audit(pb, code)


def test_wrong_code_is_refused(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    code = wrong_code(pb.secret("alice"))
    cp = pb.pamtester("alice", "authenticate", "open_session", input=code + "\n")
    out = failed(cp, AUTH_ERR)
    assert "successfully authenticated" not in out
    assert pb.sessions("alice") == []
    rows = pb.audit("login", "alice")
    assert [r["result"] for r in rows] == ["denied"], rows
    no_secrets_in_audit(pb, code)


def test_replayed_code_is_refused(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    code = totp(pb.secret("alice"))
    succeeded(pb.pamtester("alice", "authenticate", input=code + "\n"))
    failed(pb.pamtester("alice", "authenticate", input=code + "\n"), AUTH_ERR)
    assert [r["result"] for r in pb.audit("login", "alice")] == ["success", "denied"]
    # A recovery code still works, once.
    rc = pb.recovery("alice", 0)
    succeeded(pb.pamtester("alice", "authenticate", input=rc + "\n"))
    failed(pb.pamtester("alice", "authenticate", input=rc + "\n"), AUTH_ERR)


def test_locked_account_is_told_why_and_no_code_is_spent(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    ok(pb.b.cli("admin", "user", "lock", "alice", "--message", "see the helpdesk"))
    code = totp(pb.secret("alice"))
    out = failed(pb.pamtester("alice", "authenticate", input=code + "\n"), MAXTRIES)
    assert "locked" in out and "see the helpdesk" in out, out
    out = failed(pb.pamtester("alice", "acct_mgmt"), PERM_DENIED)
    assert "locked" in out and "see the helpdesk" in out, out
    # Through `keywarden login` the user reads the same reason, and not PAM's words for it.
    out = failed(pb.login("alice", code))
    assert "keywarden: login: account locked by an administrator: see the helpdesk" in out, out
    assert MAXTRIES not in out and out.count("\n") == 1, out
    assert pb.status_session("alice") is None
    # The locked attempts did not check (and so did not use up) the code.
    ok(pb.b.cli("admin", "user", "unlock", "alice"))
    succeeded(pb.pamtester("alice", "authenticate", "acct_mgmt", input=code + "\n"))


def test_failures_up_to_the_threshold_lock_the_account(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    bad = wrong_code(pb.secret("alice"))
    for _ in range(2):
        failed(pb.pamtester("alice", "authenticate", input=bad + "\n"), AUTH_ERR)
    out = failed(pb.pamtester("alice", "authenticate", input=bad + "\n"), MAXTRIES)
    assert "locked" in out, out
    # Now even the right code is not asked about.
    out = failed(pb.pamtester("alice", "authenticate",
                              input=totp(pb.secret("alice")) + "\n"), MAXTRIES)
    assert "locked" in out, out
    failed(pb.pamtester("alice", "acct_mgmt"), PERM_DENIED)


def test_login_names_the_lock_a_wrong_code_brings(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    bad = wrong_code(pb.secret("alice"))
    for _ in range(2):
        failed(pb.pamtester("alice", "authenticate", input=bad + "\n"), AUTH_ERR)
    # The third wrong code locks the account inside PAM's auth stage: the
    # module passes the broker's reason on, and the CLI ends with it.
    out = failed(pb.login("alice", bad))
    lines = out.strip().splitlines()
    assert lines == ["keywarden: login: wrong code; too many failures, the account is now "
                     "locked"], out
    # The next login is refused before a code is asked for, with the lock's end.
    out = failed(pb.login("alice", totp(pb.secret("alice"))))
    assert out.startswith("keywarden: login: account locked until 2") and MAXTRIES not in out, out


def test_login_runs_the_pam_service_it_is_given(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    write_services(pb.b, {"keywarden": service_text(pb.b),
                          "kwrole": service_text(pb.b, account="require_role=reviewer")})
    code = totp(pb.secret("alice"))
    # kwrole's account stage refuses alice (no reviewer role), after her code passed.
    failed(pb.login("alice", code, "--pam-service", "kwrole"), "account", PERM_DENIED)
    assert [r["result"] for r in pb.audit("login", "alice")] == ["success"]
    assert pb.status_session("alice") is None
    # A service that does not exist is a usage error, before any code is read.
    out = failed(pb.login("alice", totp(pb.secret("alice"), 1), "--pam-service", "kwnone"),
                 rc=2)
    assert "there is no PAM service kwnone" in out, out
    failed(pb.login("alice", code, "--pam-service", "../etc/x"), rc=2)
    assert len(pb.audit("login", "alice")) == 1


def test_login_without_a_service_file_asks_the_broker(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    # PAM's directory holds only "other" (pam_deny): PAM would refuse every login.
    os.unlink(os.path.join(pb.pamdir, "keywarden"))
    code = totp(pb.secret("alice"))
    sid, _ = login_line(pb.login("alice", code), "alice")
    assert pb.status_session("alice")["id"] == sid
    rows = [r for r in pb.audit("login", "alice") if r["result"] == "success"]
    assert len(rows) == 1 and rows[0]["uid"] == USERS["alice"][0], rows
    # The broker's own words for a wrong code; a replayed one is wrong too.
    out = failed(pb.login("alice", code))
    assert out.strip() == "keywarden: login: wrong or already used code", out
    # Root logging in for another user needs PAM's session stage to hand the token over.
    out = failed(pb.login("root", totp(pb.secret("alice"), 1), "-u", "alice"), rc=2)
    assert "takes the PAM service keywarden" in out, out


def test_require_role(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    pb.add("carol", "reviewer")
    write_services(pb.b, {"keywarden": service_text(pb.b),
                          "kwrole": service_text(pb.b, account="require_role=reviewer")})
    failed(pb.pamtester("alice", "acct_mgmt", service="kwrole"), PERM_DENIED)
    succeeded(pb.pamtester("carol", "acct_mgmt", service="kwrole"), "account management done")
    # Without the option the role does not matter.
    succeeded(pb.pamtester("alice", "acct_mgmt"), "account management done")
    # The whole login: carol passes, alice's code is right but her account is refused.
    succeeded(pb.pamtester("carol", "authenticate", "acct_mgmt", service="kwrole",
                           input=totp(pb.secret("carol")) + "\n"))
    failed(pb.pamtester("alice", "authenticate", "acct_mgmt", service="kwrole",
                        input=totp(pb.secret("alice")) + "\n"), PERM_DENIED)
    # keywarden login through such a service: refused, and no session is left behind.
    write_services(pb.b, {"keywarden": service_text(pb.b, account="require_role=reviewer")})
    failed(pb.login("alice", totp(pb.secret("alice"), 1)), "account", PERM_DENIED)
    assert [r["result"] for r in pb.audit("login", "alice")] == ["success", "success"]
    assert pb.sessions("alice") == [] and pb.status_session("alice") is None
    login_line(pb.login("carol", totp(pb.secret("carol"), 1)), "carol")


def test_unregistered_user_is_unknown(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    failed(pb.pamtester("bob", "authenticate", input="123456\n"), USER_UNKNOWN)
    failed(pb.pamtester("bob", "acct_mgmt"), USER_UNKNOWN)
    # keywarden login asks the broker first, and says it in one line, not in PAM's words.
    cp = pb.login("bob", "123456")
    out = failed(cp, "keywarden: login: bob is not a keywarden user; "
                 "an administrator adds you with keywarden admin user add bob")
    assert out.count("\n") == 1 and USER_UNKNOWN not in out, out
    assert [r["action"] for r in pb.b.audit_rows("pid = ?", (cp.pid,))] == ["hello", "account"]


# --------------------------------------------------------------------------
# trust checks: the code goes only to the broker
# --------------------------------------------------------------------------

def test_code_is_not_sent_to_an_untrusted_socket(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    code = totp(pb.secret("alice"))
    bob = USERS["bob"][0]
    link = os.path.join(pb.b.root, "link.sock")
    os.symlink(pb.sock, link)
    plain = os.path.join(pb.b.root, "plain.sock")
    with open(plain, "w"):
        pass
    write_services(pb.b, {
        "keywarden": service_text(pb.b),
        "kwbob": service_text(pb.b, auth="broker_uid=%d" % bob),
        "kwlink": service_text(pb.b).replace("socket=" + pb.sock, "socket=" + link),
        "kwplain": service_text(pb.b).replace("socket=" + pb.sock, "socket=" + plain),
    })
    # A socket file owned by another user than root.
    os.chown(pb.sock, bob, -1)
    try:
        failed(pb.pamtester("alice", "authenticate", input=code + "\n"), AUTH_ERR)
        # broker_uid=bob accepts bob's socket, but root answers on it.
        failed(pb.pamtester("alice", "authenticate", service="kwbob", input=code + "\n"),
               AUTH_ERR)
    finally:
        os.chown(pb.sock, 0, -1)
    # A symlink to the real socket, and a file that is no socket.
    failed(pb.pamtester("alice", "authenticate", service="kwlink", input=code + "\n"), AUTH_ERR)
    failed(pb.pamtester("alice", "authenticate", service="kwplain", input=code + "\n"), AUTH_ERR)
    assert pb.audit("login") == [], "a code reached the broker"
    # The code was never sent, so it still works on the trusted socket.
    succeeded(pb.pamtester("alice", "authenticate", input=code + "\n"))


# A stand-in "broker" that answers hello and refuses everything else,
# writing down each operation it receives.  It binds its socket as bind_uid
# and listens as listen_uid: SO_PEERCRED names the uid that called listen().
IMPOSTOR_SCRIPT = r"""
import json, os, socket, struct, sys
path, bind_uid, listen_uid, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
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
            out.write("op %s%s\n" % (req["op"], " with code" if "code" in req.get("args", {}) else ""))
            if req["op"] == "hello":
                rep = {"id": req["id"], "ok": True, "result": {"version": 1, "server": "impostor"}}
            else:
                rep = {"id": req["id"], "ok": False,
                       "error": {"code": "denied", "message": "impostor"}}
            body = json.dumps(rep).encode()
            c.sendall(struct.pack(">I", len(body)) + body)
    except (EOFError, ConnectionError):
        c.close()
"""


@pytest.fixture
def impostor():
    """start(path, bind_uid, listen_uid) -> the log of what the impostor received."""
    procs = []

    def start(path, bind_uid, listen_uid):
        log = path + ".log"
        p = subprocess.Popen(["/usr/bin/python3", "-c", IMPOSTOR_SCRIPT, path, str(bind_uid),
                              str(listen_uid), log], stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        procs.append(p)
        wait_for(lambda: os.path.exists(log) and "ready" in open(log).read() or p.poll(),
                 IO_TIMEOUT, what="the impostor to listen")
        assert p.poll() is None, p.stderr.read()
        return lambda: open(log).read().splitlines()[1:]

    yield start
    for p in procs:
        p.kill()
        p.wait()
        p.stderr.close()


def test_impostor_sockets(pam_broker, impostor):
    pb = pam_broker()
    pb.add("alice", "developer")
    bob = USERS["bob"][0]
    d = os.path.join(pb.b.root, "fake")
    os.makedirs(d, mode=0o755)
    os.chown(d, bob, bob)
    own = os.path.join(d, "bob.sock")          # bob's socket, bob answers
    lent = os.path.join(d, "root.sock")        # root's socket file, bob answers
    heard_own = impostor(own, bob, bob)
    heard_lent = impostor(lent, 0, bob)
    assert os.stat(own).st_uid == bob and os.stat(lent).st_uid == 0
    base = service_text(pb.b)
    write_services(pb.b, {
        "kwown": base.replace("socket=" + pb.sock, "socket=" + own),
        "kwlent": base.replace("socket=" + pb.sock, "socket=" + lent),
        "kwbob": service_text(pb.b, auth="broker_uid=%d" % bob).replace(
            "socket=" + pb.sock, "socket=" + own),
    })
    code = totp(pb.secret("alice"))
    # Owned by neither root nor the module's uid: not even connected to.
    failed(pb.pamtester("alice", "authenticate", service="kwown", input=code + "\n"), AUTH_ERR)
    assert heard_own() == []
    # Root's socket file, but bob answers on it: connected to, then nothing sent, not even hello.
    failed(pb.pamtester("alice", "authenticate", service="kwlent", input=code + "\n"), AUTH_ERR)
    assert heard_lent() == ["connect"], heard_lent()
    # broker_uid=bob says bob is the broker: then bob gets the code.
    failed(pb.pamtester("alice", "authenticate", service="kwbob", input=code + "\n"), AUTH_ERR)
    assert heard_own() == ["connect", "op hello", "op login with code"], heard_own()


def test_broker_unreachable(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    gone = os.path.join(pb.b.root, "run", "gone.sock")
    write_services(pb.b, {"keywarden": service_text(pb.b).replace("socket=" + pb.sock,
                                                                   "socket=" + gone)})
    failed(pb.pamtester("alice", "authenticate", input="123456\n"), AUTHINFO_UNAVAIL)
    failed(pb.pamtester("alice", "acct_mgmt"), AUTHINFO_UNAVAIL)
    out = failed(pb.login("alice", "123456"), rc=3)
    assert "keywarden: login:" in out, out


# --------------------------------------------------------------------------
# keywarden login
# --------------------------------------------------------------------------

def login_line(cp, user):
    succeeded(cp)
    lines = cp.stdout.strip().splitlines()
    assert len(lines) == 1, cp.stdout
    m = LOGIN_RE.match(lines[0])
    assert m and m.group(1) == user, lines[0]
    return m.group(2), m.group(3)


def test_login_as_distinct_users(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    pb.add("carol", "reviewer")
    ids = {}
    for user in ("alice", "carol"):
        code = totp(pb.secret(user))
        sid, expires = login_line(pb.login(user, code), user)
        ses = pb.status_session(user)
        assert ses and ses["id"] == sid and ses["expires"] == expires, (ses, sid, expires)
        assert [s["id"] for s in pb.sessions(user)] == [sid]
        ids[user] = sid
        no_secrets_in_audit(pb, code)
    assert ids["alice"] != ids["carol"]
    # The human status names the session too.
    out = ok(pb.cli_as("carol", "status"))
    assert ids["carol"] in out and ids["alice"] not in out, out
    # Each login was the user's own: the broker saw their uid.
    for user in ("alice", "carol"):
        rows = [r for r in pb.audit("login", user) if r["result"] == "success"]
        assert len(rows) == 1 and rows[0]["uid"] == USERS[user][0], rows


def test_login_failures(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    out = failed(pb.login("alice", wrong_code(pb.secret("alice"))), AUTH_ERR)
    assert "keywarden: login:" in out, out
    assert "logged in" not in out
    # No line on stdin: nothing to send.
    failed(pb.login("alice", None))
    assert [r["result"] for r in pb.audit("login", "alice")] == ["denied"]
    # Another user's name: only root may log in for someone else.
    failed(pb.login("alice", totp(pb.secret("alice")), "-u", "carol"))
    assert pb.status_session("alice") is None
    failed(pb.login("alice", "123456", "--bogus"), rc=2)


def test_login_with_a_recovery_code_and_json(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    cp = pb.login("alice", pb.recovery("alice", 3), "--json")
    doc = json.loads(succeeded(cp) and cp.stdout)
    assert doc["user"] == "alice" and re.fullmatch(r"[0-9a-f]{32}", doc["session"]["id"]), doc
    assert pb.status_session("alice")["id"] == doc["session"]["id"]
