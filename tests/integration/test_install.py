"""
`make install` and `make uninstall` (contrib/install.sh), as the README's
system install uses them.

Staged installs (DESTDIR) run as a non-root user when the suite runs as root,
as a packager's would: what they install, with which modes, and that
uninstall takes away exactly that and nothing an administrator edited.  The
modes checked are the ones the README's table documents.

The live test installs into the real system (PREFIX=/usr/local, DESTDIR
empty) and logs in through the installed PAM service with the real libpam:
pamtester as root, then the README's `keywarden login` as a user.  That
proves the service file finds the module where make install put it.  The
installed broker runs on a temporary configuration; the PAM service names no
socket, so the module and the CLI look for the default
/run/keywarden/broker.sock: the broker and its clients run in a private mount
namespace where /run is a directory of the test's own, so nothing of the
machine's /run is touched.  It needs root, and skips (saying why) on a
machine where keywarden is already installed; it uninstalls in a finally
block, removes by hand whatever uninstall left, and fails if there was any.
"""
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import (BUILD, IO_TIMEOUT, SANITIZE, START_TIMEOUT, NotifySocket, audit_rows,
                      clean_env, end_process, run_process, sanitizer_report, short_tmpdir)
from users import USERS, preload, setpriv, write_nss_files

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
README = os.path.join(REPO, "README.md")

PREFIX = "/usr/local"
MANIFEST = PREFIX + "/lib/keywarden/install-manifest"
LOGIN_RE = re.compile(r"^logged in as (\S+); session ([0-9a-f]{32}) expires (\S+)$")
# Where the README's table (written for Debian on amd64) puts what depends on the machine.
README_PAMDIR = "/lib/x86_64-linux-gnu/security"
README_COMPDIR = "/usr/share/bash-completion/completions"

# What the staged installs run as: a packager, not root.
PACKAGER = "alice" if os.geteuid() == 0 else None


def command_out(argv):
    cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                        universal_newlines=True)
    return cp.stdout.strip() if cp.returncode == 0 else ""


def pam_moduledir():
    """The directory holding pam_unix.so: where this machine's libpam finds
    modules named without a path."""
    pc = command_out(["pkg-config", "--variable=libdir", "pam"])
    ma = command_out(["gcc", "-print-multiarch"])
    for d in ([pc + "/security"] if pc else []) + (
            ["/lib/%s/security" % ma, "/usr/lib/%s/security" % ma] if ma else []) + [
            "/lib64/security", "/usr/lib64/security", "/lib/security", "/usr/lib/security"]:
        if os.path.exists(os.path.join(d, "pam_unix.so")):
            return d
    pytest.fail("no pam_unix.so on this machine: cannot tell where libpam loads modules from")


def completions_dir():
    return (command_out(["pkg-config", "--variable=completionsdir", "bash-completion"])
            or README_COMPDIR)


def documented_layout():
    """{path: mode} and {link: target} from the README's table of what make
    install puts where, with this machine's PAM and completion directories."""
    with open(README) as f:
        text = f.read()
    start = text.index("| installed file | mode |")
    rows = text[start:text.index("\n\n", start)].splitlines()[2:]
    files, links = {}, {}
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        path = cells[0].strip("`")
        path = path.replace(README_PAMDIR, pam_moduledir())
        path = path.replace(README_COMPDIR, completions_dir())
        if cells[1].startswith("link"):
            links[path] = cells[1].split("`")[1]
        else:
            assert re.fullmatch(r"0[0-7]{3}", cells[1]), row
            files[path] = int(cells[1], 8)
    assert len(files) >= 10 and links, "the README's install table is missing: %r" % rows
    return files, links


def make_env():
    """This process's environment without what a calling make passed down
    (MAKEFLAGS would hand the sub-make a jobserver it cannot reach)."""
    return clean_env(drop=("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR", "PREFIX",
                           "PAMDIR", "SBINDIR", "SYSCONFDIR", "LIBDIR", "BINDIR"))


def make(target, *assignments, as_user=None):
    """make -C REPO TARGET on this build, as_user (a USERS name) or this process."""
    argv = ["make", "--no-print-directory", "-C", REPO, "BUILD=" + BUILD,
            "SANITIZE=" + ("1" if SANITIZE else "0"), target] + list(assignments)
    env = make_env()
    if as_user:
        env["HOME"] = "/nonexistent"
        argv = setpriv(as_user, argv)
    return run_process(argv, env=env, cwd="/", timeout=300)


def made(cp):
    assert cp.returncode == 0, "exit %d: %s\nstdout: %s\nstderr: %s" % (
        cp.returncode, cp.args, cp.stdout, cp.stderr)
    return cp.stdout + cp.stderr


def tree(root):
    """{path under root: ("dir"|"file"|"link", mode or link target)}."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            rel = "/" + os.path.relpath(p, root)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode))
    return out


def ancestors(path):
    out = []
    d = os.path.dirname(path)
    while d not in ("/", ""):
        out.append(d)
        d = os.path.dirname(d)
    return out


def read_manifest(path):
    """[(type, value, path)] of a manifest file."""
    with open(path) as f:
        lines = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    entries = [tuple(l.split("\t")) for l in lines]
    assert all(len(e) == 3 and e[0] in ("dir", "file", "link") for e in entries), lines
    return entries


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def directives(text):
    """The non-comment lines of a PAM service, split into words."""
    return [l.split() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]


def read(path):
    with open(path) as f:
        return f.read()


def staging_dir():
    """An empty DESTDIR the packager owns."""
    d = short_tmpdir()
    if PACKAGER:
        uid, gid = USERS[PACKAGER]
        os.chown(d, uid, gid)
    return d


@pytest.fixture
def destdir():
    d = staging_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def _built():
    """The staged installs run as a user who cannot write the build: build it first."""
    made(make("all"))


# --------------------------------------------------------------------------
# Staged installs
# --------------------------------------------------------------------------

def test_staged_install_puts_each_documented_file_and_uninstall_leaves_nothing(destdir):
    files, links = documented_layout()
    out = made(make("install", "DESTDIR=" + destdir, as_user=PACKAGER))
    got = tree(destdir)
    want_dirs = {a for p in list(files) + list(links) for a in ancestors(p)}
    assert {p for p, (kind, _) in got.items() if kind == "file"} == set(files), out
    assert {p: v for p, (k, v) in got.items() if k == "link"} == links
    assert {p for p, (kind, _) in got.items() if kind == "dir"} == want_dirs
    for p, mode in files.items():
        assert got[p][1] == mode, "%s is %o, the README says %o" % (p, got[p][1], mode)
    for d in want_dirs:
        assert got[d][1] == 0o755, "%s is %o" % (d, got[d][1])
    if PACKAGER:
        assert all(os.lstat(destdir + p).st_uid == USERS[PACKAGER][0] for p in got)
    # The manifest lists every file with the digest of what was written,
    # every link with its target, and each directory install created.
    entries = read_manifest(destdir + MANIFEST)
    listed = {p: (t, v) for t, v, p in entries}
    assert set(listed) == set(got) - {MANIFEST}, sorted(set(listed) ^ (set(got) - {MANIFEST}))
    for p, (kind, value) in listed.items():
        if kind == "file":
            assert value == sha256(destdir + p), p
        elif kind == "link":
            assert value == links[p], p
        else:
            assert got[p][0] == "dir", p
    # The header names the library's new place.
    assert read(destdir + PREFIX + "/include/keywarden.h").count("<keywarden/errors.h>") == 1
    pc = read(destdir + PREFIX + "/lib/pkgconfig/keywarden.pc")
    assert "prefix=/usr/local" in pc and "@" not in pc, pc

    out = made(make("uninstall", "DESTDIR=" + destdir, as_user=PACKAGER))
    assert os.listdir(destdir) == [], (tree(destdir), out)
    assert "kept" not in out, out


def test_default_pamdir_is_where_libpam_loads_modules_and_the_service_names_it_bare(destdir):
    moddir = pam_moduledir()
    out = made(make("install", "DESTDIR=" + destdir, as_user=PACKAGER))
    assert os.path.isfile(destdir + moddir + "/pam_keywarden.so"), out
    assert "loads pam_keywarden.so from %s" % moddir in out, out
    lines = directives(read(destdir + "/etc/pam.d/keywarden"))
    assert [l[0] for l in lines] == ["auth", "account", "session"], lines
    assert all(l[2] == "pam_keywarden.so" for l in lines), lines
    made(make("uninstall", "DESTDIR=" + destdir, as_user=PACKAGER))
    assert os.listdir(destdir) == []


def test_other_directories_are_named_in_the_pam_service_and_the_units(destdir):
    opt = "/opt/kwtest"
    assigns = ["PREFIX=/opt/kw", "PAMDIR=%s/security" % opt, "SBINDIR=%s/sbin" % opt,
               "SYSCONFDIR=/opt/kw/etc"]
    out = made(make("install", "DESTDIR=" + destdir, *assigns, as_user=PACKAGER))
    module = "%s/security/pam_keywarden.so" % opt
    assert os.path.isfile(destdir + module), out
    assert "loads %s" % module in out, out
    # Not where libpam looks by itself: every stage names the module by its path.
    lines = directives(read(destdir + "/opt/kw/etc/pam.d/keywarden"))
    assert [(l[0], l[2]) for l in lines] == [(k, module) for k in ("auth", "account",
                                                                     "session")], lines
    system = read(destdir + "/opt/kw/lib/systemd/system/keywarden.service")
    assert ("ExecStart=%s/sbin/keywardend --config /opt/kw/etc/keywarden/config.json" % opt
            in system.splitlines()), system
    user = read(destdir + "/opt/kw/lib/systemd/user/keywarden.service")
    assert ("ExecStart=%s/sbin/keywardend --config %%h/.config/keywarden/config.json" % opt
            in user.splitlines()), user
    assert "/usr/local/sbin" not in system + user
    assert "prefix=/opt/kw" in read(destdir + "/opt/kw/lib/pkgconfig/keywarden.pc")
    made(make("uninstall", "DESTDIR=" + destdir, *assigns, as_user=PACKAGER))
    assert os.listdir(destdir) == []


def test_a_second_install_keeps_an_edited_pam_service(destdir):
    service = destdir + "/etc/pam.d/keywarden"
    made(make("install", "DESTDIR=" + destdir, as_user=PACKAGER))
    shipped = read(service)
    first = sorted(read_manifest(destdir + MANIFEST))
    # Unchanged: a second install is the same install.
    out = made(make("install", "DESTDIR=" + destdir, as_user=PACKAGER))
    assert not os.path.exists(service + ".new"), out
    assert sorted(read_manifest(destdir + MANIFEST)) == first
    # Edited: the admin's file stays, the new one goes beside it, and make says so.
    edited = "auth requisite pam_unix.so\n" + shipped
    with open(service, "w") as f:
        f.write(edited)
    out = made(make("install", "DESTDIR=" + destdir, as_user=PACKAGER))
    assert read(service) == edited
    assert read(service + ".new") == shipped
    assert "kept /etc/pam.d/keywarden" in out and "/etc/pam.d/keywarden.new" in out, out
    # Uninstall takes everything else, .new included, and says what it kept.
    out = made(make("uninstall", "DESTDIR=" + destdir, as_user=PACKAGER))
    assert "kept /etc/pam.d/keywarden: it changed" in out, out
    assert tree(destdir) == {"/etc": ("dir", 0o755), "/etc/pam.d": ("dir", 0o755),
                             "/etc/pam.d/keywarden": ("file", 0o644)}, out
    assert read(service) == edited


def test_a_service_file_that_was_there_before_is_not_taken_over(destdir):
    service = destdir + "/etc/pam.d/keywarden"
    mine = "auth required pam_permit.so\n"
    os.makedirs(os.path.dirname(service))
    with open(service, "w") as f:
        f.write(mine)
    if PACKAGER:
        for p in (destdir + "/etc", destdir + "/etc/pam.d", service):
            os.chown(p, *USERS[PACKAGER])
    before = tree(destdir)
    out = made(make("install", "DESTDIR=" + destdir, as_user=PACKAGER))
    assert read(service) == mine
    assert directives(read(service + ".new"))[0][2] == "pam_keywarden.so", out
    assert "kept /etc/pam.d/keywarden" in out, out
    assert "/etc/pam.d/keywarden" not in [p for _, _, p in read_manifest(destdir + MANIFEST)]
    made(make("uninstall", "DESTDIR=" + destdir, as_user=PACKAGER))
    assert tree(destdir) == before
    assert read(service) == mine


def test_uninstall_without_a_manifest_fails_and_removes_nothing(destdir):
    planted = destdir + PREFIX + "/bin/keywarden"
    os.makedirs(os.path.dirname(planted))
    with open(planted, "w") as f:
        f.write("#!/bin/sh\n")
    if PACKAGER:
        for p in [destdir + a for a in ancestors(PREFIX + "/bin/keywarden")] + [planted]:
            os.chown(p, *USERS[PACKAGER])
    before = tree(destdir)
    cp = make("uninstall", "DESTDIR=" + destdir, as_user=PACKAGER)
    assert cp.returncode != 0, cp.stdout
    assert "no install manifest at %s%s" % (destdir, MANIFEST) in cp.stderr, cp.stderr
    assert tree(destdir) == before


# --------------------------------------------------------------------------
# The real system
# --------------------------------------------------------------------------

def live_paths():
    """Every path make install adds with the defaults, links included."""
    files, links = documented_layout()
    return sorted(set(files) | set(links))


def lexists_all(paths):
    return {p: os.path.lexists(p) for p in paths}


class LiveBroker:
    """The installed keywardend in a mount namespace of its own, where /run is
    root/run; its clients join that namespace through nsenter."""

    def __init__(self, root):
        self.root = root
        self.run = os.path.join(root, "run")
        os.makedirs(os.path.join(self.run, "keywarden"), mode=0o755)
        os.chmod(self.run, 0o755)
        os.chmod(os.path.join(self.run, "keywarden"), 0o755)
        self.sock_outside = os.path.join(self.run, "keywarden", "broker.sock")
        self.datadir = os.path.join(root, "lib")
        self.config = os.path.join(root, "config.json")
        with open(self.config, "w") as f:
            json.dump({"broker": {"socket": "/run/keywarden/broker.sock",
                                  "dataDir": self.datadir}}, f)
        os.chmod(self.config, 0o600)
        passwd, group = write_nss_files(root)
        self.nss = {"NSS_WRAPPER_PASSWD": passwd, "NSS_WRAPPER_GROUP": group}
        self.stderr_path = os.path.join(root, "broker.stderr")
        self.notify = NotifySocket(os.path.join(root, "notify"))
        self.proc = None

    def start(self, sbindir):
        env = clean_env(dict(self.nss, LD_PRELOAD=preload(), NOTIFY_SOCKET=self.notify.path))
        argv = ["unshare", "--mount", "--propagation", "private", "--",
                "/bin/sh", "-c", 'mount --bind "$0" /run && exec "$@"', self.run,
                sbindir + "/keywardend", "--config", self.config]
        with open(self.stderr_path, "wb") as errf:
            self.proc = subprocess.Popen(argv, env=env, cwd="/", stdin=subprocess.DEVNULL,
                                         stdout=errf, stderr=errf)
        ready = self.notify.wait_ready(self.proc, START_TIMEOUT)
        assert ready, "installed keywardend not ready (%s):\n%s" % (ready, self.stderr())

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def inside(self, user, argv, input=None, env=None):
        """argv as user inside the broker's namespace, with the real libpam and
        the test users (nss_wrapper); the sanitizer runtimes first in an ASan build."""
        libs = []
        if SANITIZE:
            libs = [command_out(["gcc", "-print-file-name=" + l])
                    for l in ("libasan.so", "libubsan.so")]
        e = clean_env(dict(self.nss, LD_PRELOAD=" ".join(libs + ["libnss_wrapper.so"]),
                           HOME="/nonexistent"), drop=("XDG_RUNTIME_DIR",))
        e.update(env or {})
        return run_process(["nsenter", "--mount=/proc/%d/ns/mnt" % self.proc.pid, "--"]
                           + setpriv(user, argv), env=e, input=input, cwd="/")

    def stop(self):
        if self.proc is None:
            return None
        rc = end_process(self.proc, IO_TIMEOUT)
        self.notify.close()
        return rc


def tidy_live(paths, existed):
    """Remove whatever of paths (and their parents) did not exist before the
    test and still does; the list of what had to be removed."""
    left = [p for p in paths if os.path.lexists(p) and not existed[p]]
    for p in left:
        if not os.path.isdir(p) or os.path.islink(p):
            os.unlink(p)
    dirs = sorted({d for p in paths for d in [p] + ancestors(p)
                   if d in existed and not existed[d] and os.path.isdir(d)
                   and not os.path.islink(d)}, key=lambda d: -d.count("/"))
    for d in dirs:
        try:
            os.rmdir(d)
            left.append(d)
        except OSError:
            pass
    if left:
        subprocess.run(["ldconfig"], check=False)
    return left


def ldconfig_lists_libkeywarden():
    return PREFIX + "/lib/libkeywarden.so.0" in command_out(["ldconfig", "-p"])


@pytest.mark.skipif(os.geteuid() != 0, reason="installs into /usr/local, /etc/pam.d and the "
                    "PAM module directory and runs the installed broker: needs root (CI runs "
                    "it as root)")
def test_live_install_logs_in_through_the_installed_pam_service():
    for tool in ("pamtester", "oathtool", "unshare", "nsenter", "setpriv", "ldconfig"):
        if not shutil.which(tool):
            pytest.fail("%s is not installed (make deps)" % tool, pytrace=False)
    # One live install at a time on this machine (other worktrees run this
    # test too): the lock is on /usr/local itself, so it leaves no file.
    lock = os.open(PREFIX, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        paths = live_paths()
        present = [p for p in paths + [MANIFEST, "/etc/keywarden"] if os.path.lexists(p)]
        if present:
            pytest.skip("keywarden is already installed here (%s exists): this test would "
                        "replace it and then remove it" % present[0])
        watched = sorted(set(paths + [MANIFEST] + [a for p in paths for a in ancestors(p)]))
        existed = lexists_all(watched)
        live_install_and_login(paths, existed)
    finally:
        os.close(lock)


def live_install_and_login(paths, existed):
    root = short_tmpdir()
    os.chmod(root, 0o755)
    broker = None
    manifest = []
    try:
        out = made(make("install", "PREFIX=" + PREFIX, "DESTDIR="))
        manifest = read_manifest(MANIFEST)
        assert {p for t, _, p in manifest if t != "dir"} == set(paths) - {MANIFEST}, out
        files, links = documented_layout()
        for p, mode in files.items():
            assert stat.S_IMODE(os.lstat(p).st_mode) == mode, p
        for p, target in links.items():
            assert os.readlink(p) == target, p
        assert ldconfig_lists_libkeywarden(), "make install did not run ldconfig:\n" + out
        moddir = pam_moduledir()
        assert directives(read("/etc/pam.d/keywarden"))[0][2] == "pam_keywarden.so"
        assert os.path.isfile(moddir + "/pam_keywarden.so")
        if shutil.which("systemd-analyze"):
            # The unit's ExecStart is the installed broker (verify checks it is executable).
            cp = run_process(["systemd-analyze", "verify", "--man=no",
                              PREFIX + "/lib/systemd/system/keywarden.service"])
            assert cp.returncode == 0, cp.stdout + cp.stderr

        broker = LiveBroker(root)
        broker.start(PREFIX + "/sbin")
        cp = run_process([PREFIX + "/bin/keywarden", "--socket", broker.sock_outside, "admin",
                          "user", "add", "alice", "--role", "developer", "--json"],
                         env=clean_env(dict(broker.nss, LD_PRELOAD=preload())))
        assert cp.returncode == 0, cp.stdout + cp.stderr
        enrolled = json.loads(cp.stdout)

        # sshd's way: root runs the service for alice, with the code from her app.
        code = command_out(["oathtool", "--totp", "-b", enrolled["secret"]])
        cp = broker.inside("root", ["pamtester", "keywarden", "alice", "authenticate",
                                    "acct_mgmt", "open_session", "close_session"],
                           input=code + "\n")
        both = cp.stdout + cp.stderr
        assert cp.returncode == 0, both
        for text in ("successfully authenticated", "account management done",
                     "successfully opened a session", "session has successfully been closed"):
            assert text in both, both
        rows = audit_rows(os.path.join(broker.datadir, "audit.db"), "action = 'login'")
        assert [(r["result"], r["resource"]) for r in rows] == [("success", "user/alice")], rows

        # The README's way: alice logs in herself (here with a recovery code).
        cp = broker.inside("alice", [PREFIX + "/bin/keywarden", "login"],
                           input=enrolled["recovery_codes"][0] + "\n")
        assert cp.returncode == 0, cp.stdout + cp.stderr
        m = LOGIN_RE.match(cp.stdout.strip())
        assert m and m.group(1) == "alice", cp.stdout
        cp = broker.inside("alice", [PREFIX + "/bin/keywarden", "status", "--json"])
        assert cp.returncode == 0, cp.stderr
        assert json.loads(cp.stdout)["session"]["id"] == m.group(2), cp.stdout
        cp = broker.inside("alice", [PREFIX + "/bin/keywarden", "logout"])
        assert cp.returncode == 0, cp.stderr
    finally:
        problems = []
        if broker is not None:
            rc = broker.stop()
            if rc != 0 or sanitizer_report(broker.stderr()):
                problems.append("installed broker exited %s:\n%s" % (rc, broker.stderr()))
        cp = make("uninstall", "PREFIX=" + PREFIX, "DESTDIR=")
        if cp.returncode != 0:
            problems.append("make uninstall failed:\n%s%s" % (cp.stdout, cp.stderr))
        if "kept" in cp.stdout + cp.stderr:
            problems.append("make uninstall kept files:\n" + cp.stderr)
        watched = sorted(set(existed) | {p for _, _, p in manifest})
        for p in watched:
            existed.setdefault(p, False)
        left = tidy_live(watched, existed)
        if left:
            problems.append("make uninstall left %s (removed by the test)" % left)
        if ldconfig_lists_libkeywarden():
            problems.append("ld.so.cache still lists libkeywarden after make uninstall")
        shutil.rmtree(root, ignore_errors=True)
    assert not problems, "\n".join(problems)
    assert lexists_all(existed) == existed
    assert not os.path.lexists("/etc/pam.d/keywarden")
    assert not os.path.lexists(MANIFEST)
