"""
Distinct Unix users for the identity tests, without touching /etc.

The broker runs under nss_wrapper (LD_PRELOAD=libnss_wrapper.so with
NSS_WRAPPER_PASSWD/NSS_WRAPPER_GROUP naming files of the test's own), so
getpwuid/getpwnam inside it see the users below.  Clients run as those
users with `setpriv --reuid UID --regid GID --clear-groups`; the broker
names them from SO_PEERCRED like any other caller.  The test directory
is made 0755 so they can reach the socket (the socket itself is 0666).
"""
import calendar
import json
import os
import re
import subprocess
import time

import pytest

from conftest import (deep_merge, CLI_BIN, IO_TIMEOUT, SANITIZE, assert_ok, clean_env,
                      end_process, run_process)

# name -> (uid, gid); every user has a group of its own.
USERS = {
    "root": (0, 0),
    "alice": (2001, 2001),
    "bob": (2002, 2002),
    "carol": (2003, 2003),
    "dave": (2004, 2004),
}

RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
USER_FIELDS = {"user", "uid", "roles", "created", "created_by"}
ROLE_FIELDS = {"role", "source", "permissions", "users"}
BUILTIN_ROLES = {
    "developer": ["read", "write", "execute"],
    "reviewer": ["read"],
    "admin": ["*"],
}


def preload():
    """LD_PRELOAD for the broker: ASan's runtime must come first in an ASan build."""
    if SANITIZE:
        out = subprocess.run(["gcc", "-print-file-name=libasan.so"], stdout=subprocess.PIPE,
                             universal_newlines=True, check=True).stdout.strip()
        return "%s libnss_wrapper.so" % out
    return "libnss_wrapper.so"


def write_nss_files(directory):
    """passwd and group files listing USERS; returns their paths."""
    passwd = os.path.join(directory, "passwd")
    group = os.path.join(directory, "group")
    with open(passwd, "w") as f:
        for name, (uid, gid) in USERS.items():
            home = "/root" if uid == 0 else "/nonexistent"
            f.write("%s:x:%d:%d:%s:%s:/bin/sh\n" % (name, uid, gid, name, home))
    with open(group, "w") as f:
        for name, (uid, gid) in USERS.items():
            f.write("%s:x:%d:\n" % (name, gid))
    os.chmod(passwd, 0o644)
    os.chmod(group, 0o644)
    return passwd, group


def prepare(b):
    """Make b's directory reachable by the test users and give b an nss env."""
    passwd, group = write_nss_files(b.root)
    os.chmod(b.root, 0o755)
    run = os.path.dirname(b.sock)
    os.makedirs(run, mode=0o755, exist_ok=True)
    os.chmod(run, 0o755)
    b.nss_env = clean_env({"LD_PRELOAD": preload(), "NSS_WRAPPER_PASSWD": passwd,
                           "NSS_WRAPPER_GROUP": group})
    return b


def start(b):
    b.start(env=b.nss_env)
    # Every directory on the socket's path must be searchable by others.
    d = os.path.dirname(b.sock)
    while d not in ("/", ""):
        mode = os.stat(d).st_mode
        assert mode & 0o001, "%s is mode %o: test users cannot reach the socket" % (d, mode)
        d = os.path.dirname(d)
    return b


# The identity tests decide rights without logging in: sessions optional.
# (Sessions and their requirement have their own tests, with the default.)
NO_MFA_REQUIRED = {"security": {"authentication": {"mfa": {"required": False}}}}


@pytest.fixture
def id_broker(broker_factory):
    """make(extra=None, start_it=True, mfa_required=False, clocked=False) -> a
    Broker under nss_wrapper; clocked: started under libfaketime (start_clocked)."""
    def make(extra=None, start_it=True, mfa_required=False, clocked=False):
        if not mfa_required:
            extra = deep_merge(NO_MFA_REQUIRED, extra or {})
        b = prepare(broker_factory(extra, start=False))
        if clocked:
            start_clocked(b)
        elif start_it:
            start(b)
        return b
    return make


def setpriv(user, argv):
    """argv to run as USERS[user]: under setpriv, unless the user is root."""
    uid, gid = USERS[user]
    if uid == 0:
        return list(argv)
    return ["setpriv", "--reuid", str(uid), "--regid", str(gid), "--clear-groups"] + list(argv)


def run_as_user(user, argv, env, cwd="/", input=None, timeout=None):
    """Run argv as USERS[user] to completion (conftest.run_process).  .pid is
    argv's own pid: setpriv execs it, so it is the pid a broker sees."""
    return run_process(setpriv(user, argv), env=env, input=input, timeout=timeout, cwd=cwd)


def cli_env(b, user, env=None, drop=()):
    """The CLI's environment as user against broker b: the caller's without
    keywarden's variables and drop, a HOME of nobody's for others, env on top."""
    e = clean_env({"KEYWARDEN_SOCKET": b.sock}, drop=drop)
    if USERS[user][0] != 0:
        e["HOME"] = "/nonexistent"
    e.update(env or {})
    return e


def run_as(b, user, *args, input=None, env=None, drop=(), timeout=None):
    """Run build/keywarden as USERS[user] against broker b (cli_env).

    The CompletedProcess has .pid: the CLI's own pid, which is the pid the
    broker sees and records in the audit log.
    """
    return run_as_user(user, [CLI_BIN] + list(args), cli_env(b, user, env, drop),
                       input=input, timeout=timeout)


def ok(cp):
    """cp succeeded; returns its stdout."""
    assert cp.returncode == 0, "exit %d: %s\nstdout: %s\nstderr: %s" % (
        cp.returncode, cp.args, cp.stdout, cp.stderr)
    return cp.stdout


def fails(cp, rc, *texts):
    """cp exited rc and its output (stderr or stdout) contains every text."""
    both = cp.stderr + cp.stdout
    assert cp.returncode == rc, "exit %d (want %d): %s\nstdout: %s\nstderr: %s" % (
        cp.returncode, rc, cp.args, cp.stdout, cp.stderr)
    for t in texts:
        assert t in both, "%r not in the output of %s:\n%s" % (t, cp.args, both)
    return both


def as_json(cp):
    ok(cp)
    try:
        return json.loads(cp.stdout)
    except ValueError:
        raise AssertionError("not JSON from %s:\n%s" % (cp.args, cp.stdout))


def listing(doc, key):
    """The list of a `list --json` answer: the result object {key: [...]} or the bare list."""
    if isinstance(doc, dict):
        assert key in doc, doc
        doc = doc[key]
    assert isinstance(doc, list), doc
    return doc


def check_user_object(u, name, roles, created_by="root"):
    assert isinstance(u, dict), u
    assert USER_FIELDS <= set(u), "user object lacks %s: %r" % (USER_FIELDS - set(u), u)
    assert u["user"] == name, u
    assert u["uid"] == USERS[name][0], u
    assert isinstance(u["roles"], list), u
    assert sorted(u["roles"]) == sorted(roles), u
    assert isinstance(u["created"], str) and RFC3339_RE.match(u["created"]), u
    assert u["created_by"] == created_by, u


def check_role_object(r, name, source, permissions=None, users=None):
    assert isinstance(r, dict), r
    assert ROLE_FIELDS <= set(r), "role object lacks %s: %r" % (ROLE_FIELDS - set(r), r)
    assert r["role"] == name, r
    assert r["source"] == source, r
    assert isinstance(r["permissions"], list), r
    assert isinstance(r["users"], list), r
    if permissions is not None:
        assert sorted(r["permissions"]) == sorted(permissions), r
    if users is not None:
        assert sorted(r["users"]) == sorted(users), r


def meta(row):
    m = json.loads(row["metadata"] or "{}")
    assert isinstance(m, dict), row
    return m


def rows_of(b, cp, where="1", params=()):
    """Audit rows written for the CLI process of cp."""
    return b.audit_rows("pid = ? AND (%s)" % where, (cp.pid,) + tuple(params))


def denied_row(b, cp, user, action, resource):
    """The one 'denied' audit row of cp's process; checks who, what and why."""
    rows = rows_of(b, cp, "result = 'denied'")
    assert len(rows) == 1, "want one denied row for %s, got %r" % (cp.args, rows)
    r = rows[0]
    assert r["uid"] == USERS[user][0], r
    assert r["user"] == user, r
    assert r["action"] == action, r
    assert r["resource"] == resource, r
    m = meta(r)
    assert m.get("error") == "denied", r
    assert isinstance(m.get("reason"), str) and m["reason"].strip(), r
    return m


def denied_as(b, user, action, resource, *args):
    """`keywarden ARGS` as user fails (exit 1, "denied") with one audited
    refusal of action on resource; that row's metadata (denied_row)."""
    cp = run_as(b, user, *args)
    fails(cp, 1, "denied")
    return denied_row(b, cp, user, action, resource)


def change_row(b, cp, action, resource, user="root"):
    """The one successful audit row of `action` written for cp's process."""
    rows = rows_of(b, cp, "action = ?", (action,))
    assert len(rows) == 1, "want one %s row for %s, got %r" % (action, cp.args, rows)
    r = rows[0]
    assert r["result"] == "success", r
    assert r["user"] == user, r
    assert r["uid"] == USERS[user][0], r
    assert r["resource"] == resource, r
    return meta(r)


RELAY_SCRIPT = r"""
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[2]))
s.connect(sys.argv[1])
def recv(n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise SystemExit("broker closed the connection")
        buf += c
    return buf
for line in sys.stdin:
    body = line.strip().encode()
    s.sendall(struct.pack(">I", len(body)) + body)
    (n,) = struct.unpack(">I", recv(4))
    sys.stdout.write(recv(n).decode() + "\n")
    sys.stdout.flush()
"""


class UserConn:
    """One protocol connection to b made by a process running as user.

    A small Python relay runs under setpriv: each request written to its
    stdin goes out as one frame, and the reply comes back as one line.  The
    connection stays open between requests, so tests can change grants while
    a client is connected.
    """

    def __init__(self, b, user, hello=True):
        argv = setpriv(user, ["/usr/bin/python3", "-c", RELAY_SCRIPT, b.sock, str(IO_TIMEOUT)])
        self.proc = subprocess.Popen(argv, env=clean_env(), cwd="/", stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     universal_newlines=True)
        self.pid = self.proc.pid
        self.next_id = 1
        if hello:
            r = self.call("hello", {"version": 1})
            assert r["ok"] is True, r

    def call(self, op, args=None, session=None):
        msg = {"id": self.next_id, "op": op}
        self.next_id += 1
        if args is not None:
            msg["args"] = args
        if session is not None:
            msg["session"] = session
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        # The relay's socket timeout bounds this read: it exits on a timeout.
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise AssertionError("no reply to %r: %s" % (msg, self.proc.stderr.read()))
        return json.loads(line)

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        end_process(self.proc, IO_TIMEOUT, sig=None)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_as(b, user, requests):
    """Send requests ([{"op", "args"}]) after hello over one connection as user; the replies."""
    with UserConn(b, user) as c:
        return [c.call(r["op"], r.get("args")) for r in requests]


def table(text, header_first):
    """Parse an aligned table: (columns, rows of {column: cell}).

    The header row starts with header_first; a column starts where its header
    word starts, and every line must have a cell beginning exactly there (the
    character before is a space and the one at the offset is not).
    """
    lines = [l.rstrip() for l in text.splitlines() if l.strip()]
    assert lines, "empty listing"
    head = lines[0]
    assert head.startswith(header_first), "header %r does not start with %s" % (
        head, header_first)
    cols = [(m.group(0), m.start()) for m in re.finditer(r"\S+", head)]
    rows = []
    for line in lines[1:]:
        assert "{" not in line, "JSON in the human listing: %r" % line
        row = {}
        for i, (name, off) in enumerate(cols):
            assert len(line) > off, "line too short for column %s at %d:\n%s\n%s" % (
                name, off, head, line)
            assert line[off] != " " and (off == 0 or line[off - 1] == " "), (
                "column %s does not start at offset %d on every line:\n%s\n%s"
                % (name, off, head, line))
            end = cols[i + 1][1] if i + 1 < len(cols) else len(line)
            row[name] = line[off:end].strip()
        rows.append(row)
    return [c for c, _ in cols], rows


# --------------------------------------------------------------------------
# TOTP logins under a movable broker clock (test_sessions.py, test_lockout.py)
# --------------------------------------------------------------------------

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
TOTP_STEP = 30
TOKEN_RE = re.compile(r"^kw1_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


class Clock:
    """The broker's real-time clock under libfaketime: real time + offset.

    The offset (whole seconds) is the content of FAKETIME_TIMESTAMP_FILE,
    which libfaketime re-reads on every time call (FAKETIME_NO_CACHE=1), so
    rewriting it moves a running broker's clock.  The monotonic clock stays
    real, so the broker's client timeouts do not jump with it.
    """

    def __init__(self, directory):
        self.path = os.path.join(directory, "faketime.rc")
        self.offset = 0
        self.set(0)

    def env(self):
        return {"FAKETIME_TIMESTAMP_FILE": self.path, "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1"}

    def set(self, offset):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+d\n" % offset)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)
        self.offset = offset

    def advance(self, seconds):
        self.set(self.offset + seconds)

    def now(self):
        """The broker's time now (Unix seconds)."""
        return time.time() + self.offset

    def align(self, past=2):
        """Move forward to `past` seconds into the next TOTP step, so that a
        test has most of a step before "now" turns into another code."""
        real = time.time()
        target = (int(real + self.offset) // TOTP_STEP + 1) * TOTP_STEP + past
        self.set(int(target - real) + 1)


def start_clocked(b):
    """Start prepared broker b under libfaketime (after ASan's runtime, before
    nss_wrapper); b.clock moves its clock."""
    b.clock = Clock(b.root)
    libs = preload().split()
    libs.insert(len(libs) - 1, FAKETIME_LIB)
    b.nss_env = dict(b.nss_env, LD_PRELOAD=" ".join(libs), **b.clock.env())
    return start(b)


@pytest.fixture
def mfa_broker(id_broker):
    """make(extra=None, users=("alice",), roles=("developer",)) -> a running
    Broker with mfa.required (the default) and a movable clock (b.clock);
    b.enrolled[name] is user.add's answer (secret, recovery_codes, ...)."""
    def make(extra=None, users=("alice",), roles=("developer",)):
        b = id_broker(extra, mfa_required=True, clocked=True)
        b.enrolled = {}
        with b.connect() as c:
            for name in users:
                res = assert_ok(c.call("user.add", {"user": name, "roles": list(roles)}))
                assert re.match(r"^[A-Z2-7]{32}$", res["secret"]), res
                b.enrolled[name] = res
        return b
    return make


def session_of(reply):
    """A successful login's result; checks the token: kw1_<the session id>_<secret>."""
    res = assert_ok(reply)
    m = TOKEN_RE.match(res.get("session") or "")
    assert m, "token not kw1_<32 hex>_<43 base64url>: %r" % (res,)
    assert m.group(1) == res["id"], res
    return res


def epoch(text):
    """Unix seconds of an RFC 3339 UTC time."""
    assert isinstance(text, str) and RFC3339_RE.match(text) and text.endswith("Z"), text
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))


def totp(secret, at):
    """The TOTP code of base32 secret for Unix time at (oathtool)."""
    cp = subprocess.run(["oathtool", "--totp", "-b", "-N", "@%d" % int(at), secret],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, timeout=IO_TIMEOUT)
    assert cp.returncode == 0, cp.stderr
    code = cp.stdout.strip()
    assert re.match(r"^\d{6}$", code), code
    return code


def wrong_code(secret, at):
    """Six digits that are no code of secret within three steps of at."""
    near = {totp(secret, at + k * TOTP_STEP) for k in range(-3, 4)}
    return next(c for c in ("583920", "406172", "771045", "239864") if c not in near)
