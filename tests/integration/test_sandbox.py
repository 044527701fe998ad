"""
`keywarden run` and `keywarden exec --sandbox` against the real broker, as
alice (uid 2001, never root: root hides what Landlock and namespaces do),
logged in with a TOTP code (issue 15).

First the broker's side: no broker, no session, a role without execute, the
record of a run, --check, a machine that falls short.  Then the confinement
itself: a Python child probes what the issue lists (a denied file and an
excluded .env by every route, writes under readOnly, a listener of the
parent's namespace, execve, ptrace, the keywarden socket, the environment).
Each probe is also run once WITHOUT `keywarden run`, as alice: there every
access succeeds, so a sandbox that did nothing fails these tests.
"""
import json
import os
import socket
import threading
import uuid

import pytest

from conftest import CLI_BIN
from conftest import assert_ok, deep_merge
from test_reload import reload
from users import USERS, UserConn, id_broker, run_as_user  # noqa: F401
from test_hook_claude import agents, gen_key  # noqa: F401

PY = "/usr/bin/python3"


def policy(**sandbox):
    """alice's project allowed; a private directory in it and ~/.ssh denied; .env excluded."""
    net = sandbox.pop("network", {"allowedHosts": [], "allowedDomains": []})
    read_only = sandbox.pop("readOnly", False)
    sb = {"enabled": False, "allowNetwork": False, "allowExec": True}
    sb.update(sandbox)
    return {"security": {
        "allowedPaths": ["~/project"],
        "deniedPaths": ["~/project/private", "~/.ssh"],
        "excludePatterns": ["**/.env"],
        "readOnly": read_only,
        "sandbox": sb,
        "network": net,
    }}


class Sandboxed:
    """alice with a project: a readable file, a denied one, a .env; a session."""

    def __init__(self, b, alice, bob=None):
        self.b, self.alice, self.bob = b, alice, bob
        self.project = alice.project
        self.secret = "kw-denied-%s" % uuid.uuid4().hex
        self.env_secret = "kw-dotenv-%s" % uuid.uuid4().hex
        self.sibling = "kw-sibling-%s" % uuid.uuid4().hex
        private = os.path.join(self.project, "private")
        os.makedirs(private, mode=0o700, exist_ok=True)
        os.makedirs(os.path.join(self.project, "sub"), mode=0o700, exist_ok=True)
        self.files = {
            os.path.join(private, "secret.txt"): self.secret,
            os.path.join(self.project, ".env"): "DB_PASSWORD=%s\n" % self.env_secret,
            os.path.join(self.project, "readme.txt"): self.sibling,
            os.path.join(self.project, "probe.py"): PROBE,
        }
        for path, text in self.files.items():
            with open(path, "w") as f:
                f.write(text)
        for base, dirs, files in os.walk(self.project):
            for n in [base] + [os.path.join(base, x) for x in dirs + files]:
                os.chown(n, *USERS["alice"])

    def env(self, extra=None, user="alice"):
        e = dict((self.alice if user == "alice" else self.bob).env)
        e.update(extra or {})
        return e

    def cli(self, *args, env=None, user="alice", timeout=60):
        return run_as_user(user, [CLI_BIN] + list(args), self.env(env, user), cwd=self.project,
                           timeout=timeout)

    def run(self, *args, env=None, user="alice"):
        return self.cli("run", *args, env=env, user=user)

    def probe(self, *what, via_run=True, run_args=(), env=None):
        """The probe's findings {test: "ok: ..." | "denied: ..."}, run confined or not."""
        argv = [PY, os.path.join(self.project, "probe.py")] + list(what)
        if via_run:
            cp = self.run(*run_args, "--", *argv, env=env)
        else:
            cp = run_as_user("alice", argv, self.env(env), cwd=self.project, timeout=60)
        assert cp.returncode == 0, "exit %d\nstdout: %s\nstderr: %s" % (
            cp.returncode, cp.stdout, cp.stderr)
        return json.loads(cp.stdout.strip().splitlines()[-1])

    def runs(self, pid):
        """The command_execute records written for the CLI process pid."""
        return self.b.audit_rows("pid = ? AND action = 'command_execute'", (pid,))

    def marker(self):
        return os.path.join(self.project, "ran-%s" % uuid.uuid4().hex[:8])


@pytest.fixture
def sb(agents):
    """make(policy) -> Sandboxed: alice (developer) logged in, bob (reviewer) too."""
    def make(pol=None, login=True):
        b, ag = agents(pol or policy(), users={"alice": ["developer"], "bob": ["reviewer"]})
        s = Sandboxed(b, ag["alice"], ag["bob"])
        if login:
            s.token = ag["alice"].login()["session"]
            ag["bob"].login()
        return s
    return make


# What the child tries.  Each probe prints one JSON object: "ok: ..." when
# the access worked, "denied: ..." with the error when it did not.
PROBE = r'''
import ctypes, json, os, signal, socket, subprocess, sys, time
here = os.getcwd()
secret = os.path.join(here, "private", "secret.txt")
dotenv = os.path.join(here, ".env")
out = {}

def attempt(name, fn):
    try:
        out[name] = "ok: %s" % (fn(),)
    except Exception as e:
        out[name] = "denied: %s: %s" % (type(e).__name__, e)

def read(path, **kw):
    fd = os.open(path, os.O_RDONLY, **kw)
    try:
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)

def via_symlink(target):
    link = os.path.join(here, "link-%d" % os.getpid())
    try:
        os.unlink(link)
    except OSError:
        pass
    os.symlink(target, link)
    try:
        return read(link)
    finally:
        os.unlink(link)

def via_hardlink(target):
    link = os.path.join(here, "hard-%d" % os.getpid())
    os.link(target, link)
    try:
        return read(link)
    finally:
        os.unlink(link)

def via_dirfd(rel):
    d = os.open(here, os.O_RDONLY | os.O_DIRECTORY)
    d2 = os.dup(d)
    try:
        return read(rel, dir_fd=d2)
    finally:
        os.close(d); os.close(d2)

def via_proc_fd(rel):
    d = os.open(here, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return read("/proc/self/fd/%d/%s" % (d, rel))
    finally:
        os.close(d)

def connect_tcp(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
    data = s.recv(64).decode()
    s.close()
    return data

def connect_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.close()
    return "connected"

def write(path):
    with open(path, "w") as f:
        f.write("x")
    return "written"

def ptrace_child():
    libc = ctypes.CDLL(None, use_errno=True)
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    try:
        r = libc.ptrace(16, pid, None, None)    # PTRACE_ATTACH
        if r != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return "attached"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

def ptrace_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.ptrace(16, os.getppid(), None, None)
    if r != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    libc.ptrace(17, os.getppid(), None, None)   # PTRACE_DETACH
    return "attached"

args = sys.argv[1:]
for a in args:
    if a == "files":
        attempt("secret-open", lambda: read(secret))
        attempt("secret-dotdot", lambda: read(os.path.join(here, "sub", "..", "private",
                                                           "secret.txt")))
        attempt("secret-symlink", lambda: via_symlink(secret))
        attempt("secret-hardlink", lambda: via_hardlink(secret))
        attempt("secret-dirfd", lambda: via_dirfd("private/secret.txt"))
        attempt("secret-procfd", lambda: via_proc_fd("private/secret.txt"))
        attempt("secret-list", lambda: ",".join(os.listdir(os.path.join(here, "private"))))
        attempt("env-open", lambda: read(dotenv))
        attempt("env-dotdot", lambda: read(os.path.join(here, "sub", "..", ".env")))
        attempt("env-symlink", lambda: via_symlink(dotenv))
        attempt("env-hardlink", lambda: via_hardlink(dotenv))
        attempt("env-dirfd", lambda: via_dirfd(".env"))
        attempt("env-procfd", lambda: via_proc_fd(".env"))
        attempt("sibling", lambda: read(os.path.join(here, "readme.txt")))
    elif a == "write":
        attempt("write", lambda: write(os.path.join(here, "new-%d.txt" % os.getpid())))
    elif a.startswith("tcp="):
        attempt("tcp", lambda: connect_tcp(a[4:]))
    elif a.startswith("unix="):
        attempt("unix", lambda: connect_unix(a[5:]))
    elif a == "exec":
        attempt("exec", lambda: subprocess.run(["/bin/echo", "exec-worked"], check=True,
                                               stdout=subprocess.PIPE).stdout.decode().strip())
    elif a == "ptrace":
        attempt("ptrace-child", ptrace_child)
        attempt("ptrace-parent", ptrace_parent)
    elif a == "env":
        out["env"] = sorted(os.environ)
        out["env-values"] = {k: os.environ[k] for k in os.environ if k.startswith("KWT_")}
print(json.dumps(out))
'''


def denied(found, *names):
    for n in names:
        assert found[n].startswith("denied: "), (n, found)


def worked(found, *names):
    for n in names:
        assert found[n].startswith("ok: "), (n, found)


class Listener:
    """A TCP listener on 127.0.0.1 of the test's (the parent's) namespace."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.sendall(b"hello-from-parent")
            c.close()

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------
# The broker's side
# --------------------------------------------------------------------------

def test_without_a_broker_nothing_runs(sb):
    s = sb()
    mark = s.marker()
    cp = s.run("--", "/usr/bin/touch", mark, env={"KEYWARDEN_SOCKET": s.project + "/no.sock"})
    assert cp.returncode == 3, (cp.returncode, cp.stderr)
    assert "refusing to run /usr/bin/touch unconfined" in cp.stderr, cp.stderr
    assert not os.path.exists(mark)
    cp = s.run("--check", "--json", env={"KEYWARDEN_SOCKET": s.project + "/no.sock"})
    assert cp.returncode == 3 and json.loads(cp.stdout)["error"]["code"] == "unreachable", cp


def test_without_a_session_nothing_runs(sb):
    s = sb(login=False)
    mark = s.marker()
    cp = s.run("--", "/usr/bin/touch", mark)
    assert cp.returncode == 1, (cp.returncode, cp.stderr)
    assert "keywarden login" in cp.stderr, cp.stderr
    assert not os.path.exists(mark)


def test_a_role_without_execute_is_refused_and_recorded(sb):
    s = sb()
    mark = s.marker()
    cp = s.run("--", "/usr/bin/touch", mark, user="bob")
    assert cp.returncode == 1, (cp.returncode, cp.stderr)
    assert "execute command/touch" in cp.stderr, cp.stderr
    assert not os.path.exists(mark)
    rows = s.runs(cp.pid)
    assert [(r["user"], r["result"], r["resource"]) for r in rows] == [
        ("bob", "denied", "command/touch")], rows
    meta = json.loads(rows[0]["metadata"])
    assert meta["decision"] == "deny" and meta["tool"] == "keywarden run", meta
    assert meta["command"] == "/usr/bin/touch " + mark and meta["reason"], meta


def test_begin_hands_out_the_policy_with_home_expanded(sb):
    s = sb(policy(enabled=True, allowExec=False))
    with UserConn(s.b, "alice") as c:
        r = c.call("sandbox.begin", {"argv0": "true", "command": "true", "profile": "default",
                                     "cwd": s.project}, session=s.token)
        bad = c.call("sandbox.begin", {"argv0": "a/b", "command": "x", "profile": "default",
                                       "cwd": s.project}, session=s.token)
    pol = assert_ok(r)["policy"]
    assert sorted(pol) == sorted(["enabled", "allowNetwork", "allowExec", "readOnly",
                                  "allowedPaths", "deniedPaths", "excludePatterns",
                                  "whitelistMode", "whitelist", "allowedHosts",
                                  "allowedDomains", "home", "profile"]), pol
    assert pol["enabled"] is True and pol["allowExec"] is False, pol
    assert pol["allowNetwork"] is False and pol["readOnly"] is False, pol
    assert pol["allowedPaths"] == [s.project], pol
    assert pol["deniedPaths"] == [os.path.join(s.project, "private"),
                                  os.path.join(s.alice.home, ".ssh")], pol
    assert pol["excludePatterns"] == ["**/.env"], pol
    assert pol["home"] == s.alice.home and pol["profile"] == "default", pol
    assert bad["ok"] is False and bad["error"]["code"] == "bad_request", bad
    # An allowed begin is not a record of its own: the run's report is.
    assert s.b.audit_rows("action = 'command_execute'") == []


def test_policy_is_reread_on_sighup(sb):
    s = sb()
    args = {"argv0": "true", "command": "true", "profile": "default", "cwd": s.project}

    def begin():
        with UserConn(s.b, "alice") as c:
            return assert_ok(c.call("sandbox.begin", args, session=s.token))["policy"]
    assert begin()["allowExec"] is True
    s.b.write_config(deep_merge(s.b.config, policy(allowExec=False, enabled=True)))
    reload(s.b)
    pol = begin()
    assert pol["allowExec"] is False and pol["enabled"] is True, pol


def test_a_run_passes_the_status_and_is_recorded_without_the_environment(sb):
    s = sb()
    value = "kwt-env-value-%s" % uuid.uuid4().hex
    word = "kwtpw%s" % uuid.uuid4().hex
    cp = s.run("--", "/bin/sh", "-c", "exit 7", "sh", "password=" + word,
               env={"KWT_PLAIN": value, "ANTHROPIC_API_KEY": gen_key()})
    assert cp.returncode == 7, (cp.returncode, cp.stderr)
    rows = s.runs(cp.pid)
    assert [(r["user"], r["result"], r["resource"]) for r in rows] == [
        ("alice", "success", "command/sh")], rows
    meta = json.loads(rows[0]["metadata"])
    assert meta["decision"] == "allow" and meta["result"] == "started", meta
    assert meta["profile"] == "default" and meta["level"].startswith("landlock-"), meta
    assert meta["command"].startswith("/bin/sh -c exit 7 sh password="), meta
    with open(s.b.audit_db, "rb") as f:
        db = f.read()
    assert value.encode() not in db, "an environment value reached audit.db"
    assert word.encode() not in db, "the command line was recorded unmasked"


def test_a_cwd_under_a_denied_path_is_refused_and_recorded(sb):
    s = sb()
    private = os.path.join(s.project, "private")
    mark = os.path.join(private, "ran")
    cp = run_as_user("alice", [CLI_BIN, "run", "--", "/usr/bin/touch", mark], s.env(),
                     cwd=private, timeout=60)
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert "keywarden: run: " in cp.stderr and "denied" in cp.stderr, cp.stderr
    assert not os.path.exists(mark)
    rows = s.runs(cp.pid)
    assert [json.loads(r["metadata"])["result"] for r in rows] == ["refused"], rows


def test_check_json_shape(sb):
    s = sb()
    cp = s.run("--check", "--json")
    assert cp.returncode == 0, (cp.returncode, cp.stderr)
    doc = json.loads(cp.stdout)
    assert set(doc) == {"caps", "plan"}, doc
    caps, plan = doc["caps"], doc["plan"]
    assert isinstance(caps["landlock_abi"], int) and caps["landlock_abi"] >= 1, caps
    assert caps["userns"] is True and caps["seccomp"] is True, caps
    for k in ("landlock_abi", "userns", "mountns", "netns", "landlock_net", "scoped", "seccomp",
              "net", "exec", "level", "grants", "hides", "missing"):
        assert k in plan, (k, plan)
    assert plan["net"] == "none" and plan["exec"] == "any", plan
    assert plan["missing"] == [], plan
    assert any(g["path"] == s.project for g in plan["grants"]), plan
    assert os.path.join(s.project, "private") in plan["hides"], plan
    human = s.run("--check")
    assert human.returncode == 0 and "level: " + plan["level"] in human.stdout, human
    # --check changes nothing: the claude profile's files are named, not made.
    made = [os.path.join(s.alice.home, n) for n in (".claude", ".claude.json")]
    assert not any(os.path.exists(p) for p in made), made
    cp = s.run("--check", "--profile", "claude")
    assert cp.returncode == 0, cp.stderr
    assert "would make " + made[0] in cp.stdout + cp.stderr, (cp.stdout, cp.stderr)
    assert not any(os.path.exists(p) for p in made), made


def test_require_a_higher_landlock_abi_refuses_and_is_recorded(sb):
    s = sb()
    abi = json.loads(s.run("--check", "--json").stdout)["caps"]["landlock_abi"]
    mark = s.marker()
    cp = s.run("--require", "landlock=99", "--", "/usr/bin/touch", mark)
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert "not confined enough" in cp.stderr and "99" in cp.stderr, cp.stderr
    assert str(abi) in cp.stderr, cp.stderr
    assert not os.path.exists(mark)
    rows = s.runs(cp.pid)
    assert len(rows) == 1, rows
    meta = json.loads(rows[0]["metadata"])
    assert meta["decision"] == "deny" and meta["result"] == "refused", meta
    assert any("99" in m for m in meta["missing"]), meta


def test_a_launch_that_fails_in_the_child_is_recorded(sb):
    """The child cannot listen twice on one port inside its network namespace:
    a loopback API stand-in on the relay's port makes the launch fail there,
    after the plan.  The command does not run, and the trail says why."""
    s = sb()
    mark = s.marker()
    cp = s.run("--profile", "claude", "--", "/usr/bin/touch", mark,
               env={"ANTHROPIC_BASE_URL": "http://127.0.0.1:3129"})
    assert cp.returncode != 0, (cp.returncode, cp.stderr)
    assert "not run" in cp.stderr and "3129" in cp.stderr, cp.stderr
    assert not os.path.exists(mark)
    rows = s.runs(cp.pid)
    assert rows, s.b.audit_rows()
    meta = json.loads(rows[-1]["metadata"])
    assert meta["decision"] == "deny" and meta["result"] == "refused", meta
    assert "3129" in meta["reason"], meta


def test_enabled_and_a_shortfall_refuses(sb):
    s = sb(policy(enabled=True))
    mark = s.marker()
    # Without user namespaces the denied directory inside the cwd cannot be hidden.
    cp = s.run("--without", "userns", "--", "/usr/bin/touch", mark)
    assert cp.returncode == 2, (cp.returncode, cp.stderr)
    assert "keywarden: run: not confined enough: " in cp.stderr, cp.stderr
    assert not os.path.exists(mark)
    # The same shortfall without enabled: noted, and the command runs.
    s2 = sb(policy(enabled=False))
    mark = s2.marker()
    cp = s2.run("--without", "userns", "--", "/usr/bin/touch", mark)
    assert cp.returncode == 0, (cp.returncode, cp.stderr)
    assert "note" in cp.stderr and os.path.exists(mark), cp.stderr


def test_usage_errors(sb):
    s = sb()
    for args, text in ((["--profile", "nosuch", "--", "true"], "default, claude"),
                       (["--require", "landlock=x", "--", "true"], "landlock=N"),
                       (["--json", "--", "true"], "--check"),
                       ([], "missing CMD")):
        cp = s.run(*args)
        assert cp.returncode == 2 and text in cp.stderr, (args, cp.stderr)
    assert s.run("--help").returncode == 0


# --------------------------------------------------------------------------
# Confinement (the real sandbox)
# --------------------------------------------------------------------------

def test_denied_and_excluded_files_are_unreadable_by_any_route(sb):
    s = sb()
    bare = s.probe("files", via_run=False)
    worked(bare, "secret-open", "secret-dotdot", "secret-symlink", "secret-dirfd",
           "secret-procfd", "env-open", "env-dirfd", "sibling")
    found = s.probe("files")
    text = json.dumps(found)
    assert s.secret not in text and s.env_secret not in text, found
    denied(found, "secret-open", "secret-dotdot", "secret-symlink", "secret-hardlink",
           "secret-dirfd", "secret-procfd", "env-open", "env-dotdot", "env-symlink",
           "env-hardlink", "env-dirfd", "env-procfd")
    assert found["sibling"] == "ok: " + s.sibling, found


def test_read_only_refuses_writes(sb):
    s = sb(policy(readOnly=True))
    worked(s.probe("write", via_run=False), "write")
    denied(s.probe("write"), "write")
    assert s.probe("files")["sibling"] == "ok: " + s.sibling


def test_network_follows_allow_network(sb):
    lis = Listener()
    try:
        s = sb()
        worked(s.probe("tcp=%d" % lis.port, via_run=False), "tcp")
        denied(s.probe("tcp=%d" % lis.port), "tcp")
        s2 = sb(policy(allowNetwork=True))
        assert s2.probe("tcp=%d" % lis.port)["tcp"] == "ok: hello-from-parent"
    finally:
        lis.close()


def test_exec_follows_allow_exec(sb):
    s = sb(policy(allowExec=False))
    assert s.probe("exec", via_run=False)["exec"] == "ok: exec-worked"
    denied(s.probe("exec"), "exec")
    s2 = sb()
    assert s2.probe("exec")["exec"] == "ok: exec-worked"


def test_no_ptrace_and_no_broker_socket(sb):
    s = sb()
    bare = s.probe("ptrace", "unix=" + s.b.sock, via_run=False)
    worked(bare, "ptrace-child", "unix")
    found = s.probe("ptrace", "unix=" + s.b.sock)
    denied(found, "ptrace-child", "ptrace-parent", "unix")


def test_the_environment_is_scrubbed_unless_handed_in(sb):
    s = sb()
    key = gen_key()
    found = s.probe("env", env={"ANTHROPIC_API_KEY": key, "KWT_TOKEN": "t-" + uuid.uuid4().hex,
                                "KWT_PLAIN": "plain"})
    assert "ANTHROPIC_API_KEY" not in found["env"] and "KWT_TOKEN" not in found["env"], found
    assert "KEYWARDEN_SOCKET" not in found["env"], found
    assert found["env-values"].get("KWT_PLAIN") == "plain", found
    assert "KEYWARDEN_SANDBOX" in found["env"], found
    # --env hands one in on purpose.
    found = s.probe("env", run_args=("--env", "KWT_TOKEN"), env={"KWT_TOKEN": "handed"})
    assert found["env-values"].get("KWT_TOKEN") == "handed", found


def test_exec_sandbox_hands_the_key_in_and_scrubs_the_callers(sb):
    s = sb()
    stored = gen_key()
    assert s.b.cli("key", "set", "anthropic", input=stored + "\n").returncode == 0
    mine = gen_key()
    probe = os.path.join(s.project, "probe.py")
    cp = s.cli("exec", "--sandbox", "--key", "anthropic=KWT_KEY", "--", PY, probe, "env",
               "files", env={"ANTHROPIC_API_KEY": mine})
    assert cp.returncode == 0, (cp.returncode, cp.stderr)
    found = json.loads(cp.stdout.strip().splitlines()[-1])
    assert found["env-values"].get("KWT_KEY") == stored, "the key was not handed in"
    assert "ANTHROPIC_API_KEY" not in found["env"], found
    denied(found, "secret-open", "env-open")
    rows = s.runs(cp.pid)
    assert [json.loads(r["metadata"])["decision"] for r in rows] == ["allow"], rows
    with open(s.b.audit_db, "rb") as f:
        assert stored.encode() not in f.read()


def test_a_profile_file_tightens_and_may_not_loosen(sb):
    s = sb()
    def profile(name, doc):
        path = os.path.join(s.project, name)
        with open(path, "w") as f:
            json.dump(doc, f)
        os.chown(path, *USERS["alice"])
        os.chmod(path, 0o600)
        return path
    tight = profile("tight.json", {"readOnly": True})
    worked(s.probe("write"), "write")
    found = s.probe("write", run_args=("--profile", tight))
    denied(found, "write")
    cp = s.run("--profile", tight, "--", "/bin/true")
    assert cp.returncode == 0, cp.stderr
    rows = s.runs(cp.pid)
    assert json.loads(rows[0]["metadata"])["profile"] == "file:tight.json", rows
    loose = profile("loose.json", {"allowNetwork": True})
    mark = s.marker()
    cp = s.run("--profile", loose, "--", "/usr/bin/touch", mark)
    assert cp.returncode != 0 and "loose.json" in cp.stderr, (cp.returncode, cp.stderr)
    assert not os.path.exists(mark)


class FakeBroker:
    """A broker that hands out a policy but cannot record the run (sandbox.report
    answers audit_unavailable): the run must then not happen (fail closed)."""

    def __init__(self, path, policy_doc):
        self.path, self.policy = path, policy_doc
        self.ops = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.listen(4)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def answer(self, req):
        """The reply to one request: the policy, then a report that cannot be recorded."""
        if req["op"] == "hello":
            return {"id": req["id"], "ok": True, "result": {"version": 1, "server": "fake"}}
        if req["op"] == "sandbox.begin":
            return {"id": req["id"], "ok": True, "result": {"policy": self.policy}}
        return {"id": req["id"], "ok": False, "error": {
            "code": "audit_unavailable",
            "message": "request refused: the audit store cannot record it"}}

    def conn(self, c):
        import struct
        with c:
            while True:
                head = c.recv(4, socket.MSG_WAITALL)
                if len(head) < 4:
                    return
                (n,) = struct.unpack(">I", head)
                req = json.loads(c.recv(n, socket.MSG_WAITALL))
                self.ops.append(req["op"])
                body = json.dumps(self.answer(req)).encode()
                c.sendall(struct.pack(">I", len(body)) + body)

    def close(self):
        self.sock.close()


def test_a_run_the_broker_cannot_record_does_not_happen(sb):
    s = sb()
    fake = FakeBroker(os.path.join(os.path.dirname(s.alice.home), "fake.sock"), {
        "enabled": False, "allowNetwork": False, "allowExec": True, "readOnly": False,
        "allowedPaths": [s.project], "deniedPaths": [], "excludePatterns": [],
        "whitelistMode": False, "whitelist": [], "allowedHosts": [], "allowedDomains": [],
        "home": s.alice.home, "profile": "default"})
    try:
        mark = s.marker()
        cp = s.run("--", "/usr/bin/touch", mark, env={"KEYWARDEN_SOCKET": fake.path})
    finally:
        fake.close()
    assert fake.ops == ["hello", "sandbox.begin", "sandbox.report"], fake.ops
    assert cp.returncode == 1, (cp.returncode, cp.stderr)
    assert "did not record the run" in cp.stderr and "stopped before it ran" in cp.stderr, \
        cp.stderr
    assert not os.path.exists(mark), "the command ran although its run was not recorded"
