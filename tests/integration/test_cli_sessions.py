"""The CLI side of sessions and TOTP: enrollment output and its QR code, the
token cache the CLI reads, logout, status, admin session/lock commands.

Tokens are obtained with a raw login (users.UserConn) and put where SPEC4's
token cache says they live: the user's kernel keyring (key "user",
"keywarden:session:" + 16 hex digits of SHA-256(socket path), added with
keyctl as that user) or, with KEYWARDEN_TOKEN_CACHE=file, the file
$XDG_RUNTIME_DIR/keywarden/session-HEX ("EXPIRY\\nTOKEN\\n").  So these tests
also check the CLI against the cache's documented layout.  The QR code is
decoded with zbarimg, as a phone would read it.
"""
import hashlib
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import assert_error, assert_ok, IO_TIMEOUT, CLI_BIN
from users import (USERS, UserConn, as_json, cli_env, epoch, fails, id_broker, ok,  # noqa: F401
                   rows_of, run_as, run_as_user, setpriv, table, totp)

RECOVERY_RE = re.compile(r"^[a-z2-7]{5}-[a-z2-7]{5}$")
URI_RE = re.compile(r"^otpauth://totp/keywarden:(\w+)\?secret=([A-Z2-7]+)&issuer=keywarden"
                    r"&algorithm=SHA1&digits=6&period=30$")
QR_LINE = "\x1b[30;107m"
CHECK = ["check", "read", "key/demo"]


@pytest.fixture
def mb(id_broker):
    """A running broker with mfa required and a movable clock; alice (developer)
    enrolled by the CLI, b.secret[name] her TOTP secret."""
    b = id_broker({"security": {"session": {"timeout": 600, "reauthInterval": 7200}}},
                  mfa_required=True, clocked=True)
    b.secret = {}
    added = as_json(cli(b, "root", "admin", "user", "add", "alice", "--role", "developer",
                        "--json"))
    b.secret["alice"] = added["secret"]
    b.clock.align()
    return b


# The tests put a token where the cache is: none of the caller's may count.
NO_CACHE = ("KEYWARDEN_TOKEN_CACHE", "XDG_RUNTIME_DIR")


def cli(b, user, *args, env=None, tty=False, input=None):
    """build/keywarden as user against b, with extra environment."""
    if not tty:
        return run_as(b, user, *args, env=env, drop=NO_CACHE, input=input)
    # script(1) gives the command a terminal as stdout.
    cmd = " ".join("'%s'" % a for a in [CLI_BIN] + [str(a) for a in args])
    return run_as_user(user, ["script", "-qec", cmd, "/dev/null"],
                       cli_env(b, user, env, drop=NO_CACHE))


def cache_hex(b):
    return hashlib.sha256(b.sock.encode()).hexdigest()[:16]


def keyctl(user, *args, input=None):
    argv = setpriv(user, ["keyctl"] + [str(a) for a in args])
    return subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=IO_TIMEOUT)


def cached_key(b, user):
    """The id of user's cached token key for b, or None."""
    cp = keyctl(user, "search", "@u", "user", "keywarden:session:" + cache_hex(b))
    return cp.stdout.strip() if cp.returncode == 0 else None


def login(b, user="alice", secret=None):
    """A raw login as user with the code of the broker's current step; the result."""
    with UserConn(b, user) as c:
        res = assert_ok(c.call("login", {"code": totp(secret or b.secret[user],
                                                      b.clock.now())}))
    b.clock.advance(30)    # the next login needs a later step (replay protection)
    return res


def cache_in_keyring(b, user, token, timeout=600):
    cp = keyctl(user, "padd", "user", "keywarden:session:" + cache_hex(b), "@u", input=token)
    if cp.returncode != 0:
        pytest.skip("no usable kernel keyring here: %s" % cp.stderr.strip())
    assert keyctl(user, "timeout", cp.stdout.strip(), timeout).returncode == 0


def works_raw(b, user, token):
    with UserConn(b, user) as c:
        return c.call("check", {"action": "read", "resource": "key/demo"}, session=token)


def run_dir(b, user):
    """An XDG_RUNTIME_DIR for user (0700, theirs), under b's 0755 root."""
    d = os.path.join(b.root, "xdg-" + user)
    os.makedirs(d, exist_ok=True)
    os.chown(d, *USERS[user])
    os.chmod(d, 0o700)
    return d


def qr_text(out):
    """The URI a QR scanner reads from the half-block drawing in out."""
    lines = [l for l in out.replace("\r", "").split("\n") if QR_LINE in l]
    assert lines, "no QR code in:\n%s" % out
    grid = []
    for l in lines:
        assert l.startswith(QR_LINE) and l.endswith("\x1b[0m"), repr(l)
        body = re.sub(r"\x1b\[[0-9;]*m", "", l)
        assert set(body) <= set(" \u2580\u2584\u2588"), repr(body)
        grid.append([c in "\u2588\u2580" for c in body])
        grid.append([c in "\u2588\u2584" for c in body])
    width = len(grid[0])
    assert all(len(r) == width for r in grid)
    # A 4-module light quiet zone on every side.
    for r in grid[:4] + grid[-5:]:
        assert not any(r)
    assert not any(r[i] for r in grid for i in list(range(4)) + list(range(width - 4, width)))
    zbarimg = shutil.which("zbarimg")
    assert zbarimg, "zbarimg (zbar-tools) is needed to read the QR code; run contrib/deps.sh"
    scale = 4
    path = os.path.join("/tmp", "kw-qr-%d-%d.pbm" % (os.getpid(), time.monotonic_ns()))
    try:
        with open(path, "w") as f:
            f.write("P1\n%d %d\n" % (width * scale, len(grid) * scale))
            for r in grid:
                line = " ".join("1" if d else "0" for d in r for _ in range(scale))
                f.write((line + "\n") * scale)
        cp = subprocess.run([zbarimg, "-q", "--raw", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=IO_TIMEOUT)
    finally:
        os.unlink(path)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout.strip()


def check_enrollment_text(out, user):
    """Human enrollment output: URI, secret, 10 recovery codes, said to be shown once."""
    m = re.search(r"^otpauth URI +(\S+)$", out, re.M)
    assert m and URI_RE.match(m.group(1)), out
    uri = m.group(1)
    assert URI_RE.match(uri).group(1) == user, uri
    secret = URI_RE.match(uri).group(2)
    assert re.search(r"^secret +%s\b" % secret, out, re.M), out
    codes = re.findall(r"\b[a-z2-7]{5}-[a-z2-7]{5}\b", out)
    assert len(codes) == 10 and len(set(codes)) == 10, out
    assert "shown only this" in out, out
    return uri, secret, codes


# --------------------------------------------------------------------------
# Enrollment output
# --------------------------------------------------------------------------

def test_user_add_prints_enrollment_without_qr_into_a_pipe(mb):
    out = ok(cli(mb, "root", "admin", "user", "add", "bob"))
    assert re.search(r"^user +bob$", out, re.M), out
    uri, secret, codes = check_enrollment_text(out, "bob")
    assert "\x1b[" not in out, "terminal codes written into a pipe:\n%s" % out
    # The printed secret is the one the broker checks.
    with UserConn(mb, "bob") as c:
        assert_ok(c.call("login", {"code": totp(secret, mb.clock.now())}))


def test_qr_code_scans_to_the_uri(mb):
    # At a terminal the QR code comes by itself; into a pipe only with --qr.
    at_tty = cli(mb, "root", "admin", "user", "totp-reset", "alice", tty=True)
    ok(at_tty)
    uri, _, _ = check_enrollment_text(at_tty.stdout.replace("\r", ""), "alice")
    assert qr_text(at_tty.stdout) == uri

    piped = ok(cli(mb, "root", "admin", "user", "totp-reset", "alice", "--qr"))
    uri2, secret, _ = check_enrollment_text(piped, "alice")
    assert uri2 != uri, "totp-reset did not make a new secret"
    assert qr_text(piped) == uri2
    with UserConn(mb, "alice") as c:
        assert_ok(c.call("login", {"code": totp(secret, mb.clock.now())}))


def test_enrollment_json(mb):
    doc = as_json(cli(mb, "root", "admin", "user", "totp-reset", "alice", "--json"))
    assert set(doc) >= {"user", "otpauth_uri", "secret", "recovery_codes"}, doc
    assert doc["user"] == "alice"
    assert URI_RE.match(doc["otpauth_uri"]).group(2) == doc["secret"], doc
    assert len(doc["recovery_codes"]) == 10, doc
    assert all(RECOVERY_RE.match(c) for c in doc["recovery_codes"]), doc
    # user add --json: the user object and the enrollment in one.
    doc = as_json(cli(mb, "root", "--json", "admin", "user", "add", "carol"))
    assert doc["user"] == "carol" and doc["uid"] == USERS["carol"][0], doc
    assert URI_RE.match(doc["otpauth_uri"]).group(1) == "carol", doc


# --------------------------------------------------------------------------
# The token cache, status and logout
# --------------------------------------------------------------------------

def test_cached_token_is_used_and_logout_ends_it(mb):
    res = login(mb)
    fails(cli(mb, "alice", *CHECK), 1, "keywarden login")
    cache_in_keyring(mb, "alice", res["session"])

    assert ok(cli(mb, "alice", *CHECK)).strip() == "allowed"
    doc = as_json(cli(mb, "alice", "status", "--json"))
    assert doc["session"]["id"] == res["id"], doc
    assert doc["session"]["expires"] == res["expires"], doc
    out = ok(cli(mb, "alice", "status"))
    assert re.search(r"^session +%s$" % res["id"], out, re.M), out
    # Root's status shows no session: the token is alice's alone.
    assert as_json(cli(mb, "root", "status", "--json"))["session"] is None

    cp = cli(mb, "alice", "logout")
    assert res["id"] in ok(cp) and "ended" in cp.stdout, cp.stdout
    assert cached_key(mb, "alice") is None, "token still in the keyring after logout"
    assert assert_ok(mb.connect().call("session.list", {}))["sessions"] == []
    assert_error(works_raw(mb, "alice", res["session"]), "session_required")
    # Logging out again: nothing to do, still success.
    assert "not logged in" in ok(cli(mb, "alice", "logout"))
    assert as_json(cli(mb, "alice", "logout", "--json")) == {"id": None, "revoked": False}


def test_revoked_cached_token_says_log_in_and_logout_still_forgets(mb):
    res = login(mb)
    cache_in_keyring(mb, "alice", res["session"])
    out = ok(cli(mb, "root", "admin", "session", "revoke", res["id"]))
    assert out.strip() == "revoked 1 session(s)", out
    err = fails(cli(mb, "alice", *CHECK), 1, res["id"], "keywarden login")
    assert res["session"] not in err, "the token was printed"
    doc = as_json(cli(mb, "alice", "logout", "--json"))
    assert doc == {"id": res["id"], "revoked": False}, doc
    assert cached_key(mb, "alice") is None


def test_file_cache(mb):
    d = run_dir(mb, "alice")
    env = {"KEYWARDEN_TOKEN_CACHE": "file", "XDG_RUNTIME_DIR": d}
    res = login(mb)
    os.makedirs(os.path.join(d, "keywarden"), mode=0o700)
    os.chown(os.path.join(d, "keywarden"), *USERS["alice"])
    path = os.path.join(d, "keywarden", "session-" + cache_hex(mb))

    def put(expiry, mode=0o600):
        with open(path, "w") as f:
            f.write("%d\n%s\n" % (expiry, res["session"]))
        os.chown(path, *USERS["alice"])
        os.chmod(path, mode)

    # A file others could read is not trusted.
    put(time.time() + 600, 0o644)
    fails(cli(mb, "alice", *CHECK, env=env), 1, "token cache")
    put(time.time() + 600)
    assert ok(cli(mb, "alice", *CHECK, env=env)).strip() == "allowed"
    # Expired by its own stamp: not used, and removed.
    put(time.time() - 5)
    fails(cli(mb, "alice", *CHECK, env=env), 1, "keywarden login")
    assert not os.path.exists(path)
    put(0)     # 0: no expiry of its own
    assert res["id"] in ok(cli(mb, "alice", "logout", env=env))
    assert not os.path.exists(path)
    assert_error(works_raw(mb, "alice", res["session"]), "session_required")
    # An unknown setting is reported, and the command goes on without a token.
    fails(cli(mb, "alice", *CHECK, env={"KEYWARDEN_TOKEN_CACHE": "env"}), 1,
          "KEYWARDEN_TOKEN_CACHE must be keyring or file")


def test_totp_enroll_replaces_the_secret_and_the_session(mb):
    fails(cli(mb, "alice", "totp", "enroll"), 1, "keywarden login")
    res = login(mb)
    cache_in_keyring(mb, "alice", res["session"])
    # The token alone is not enough: a current code goes with it (stdin, no terminal).
    fails(cli(mb, "alice", "totp", "enroll"), 2, "no code read")
    doc = as_json(cli(mb, "alice", "totp", "enroll", "--json",
                      input=totp(mb.secret["alice"], mb.clock.now()) + "\n"))
    assert doc["user"] == "alice" and doc["secret"] != mb.secret["alice"], doc
    assert len(doc["recovery_codes"]) == 10, doc
    # The session opened with the old factor has ended, and its token is gone here.
    assert cached_key(mb, "alice") is None
    assert_error(works_raw(mb, "alice", res["session"]), "session_required")
    login(mb, secret=doc["secret"])


# --------------------------------------------------------------------------
# admin session list / revoke
# --------------------------------------------------------------------------

def test_admin_session_list_and_revoke(mb):
    mb.secret["bob"] = as_json(cli(mb, "root", "admin", "user", "add", "bob", "--role",
                                   "developer", "--json"))["secret"]
    a1, a2, b1 = login(mb), login(mb), login(mb, "bob")

    cols, rows = table(ok(cli(mb, "root", "admin", "session", "list")), "ID")
    assert cols == ["ID", "USER", "CREATED", "LAST-USED", "EXPIRES"], cols
    assert sorted((r["ID"], r["USER"]) for r in rows) == sorted(
        [(a1["id"], "alice"), (a2["id"], "alice"), (b1["id"], "bob")]), rows
    # idle timeout 600 < reauthInterval 7200: the idle expiry comes first.
    assert all(r["EXPIRES"].endswith("(idle)") for r in rows), rows
    doc = as_json(cli(mb, "root", "admin", "session", "list", "--user", "bob", "--json"))
    assert [s["id"] for s in doc["sessions"]] == [b1["id"]], doc
    assert set(doc["sessions"][0]) >= {"id", "user", "created", "last_used", "expires",
                                       "idle_expires"}, doc

    for bad in ([], [a1["id"], "--all"], ["--user", "bob", "--all"], [a1["id"], a2["id"]]):
        cp = cli(mb, "root", "admin", "session", "revoke", *bad)
        fails(cp, 2, "usage")
        assert rows_of(mb, cp) == [], "a usage error reached the broker"
    assert ok(cli(mb, "root", "admin", "session", "revoke", a1["id"])).strip() == \
        "revoked 1 session(s)"
    assert_error(works_raw(mb, "alice", a1["session"]), "session_required")
    assert_ok(works_raw(mb, "alice", a2["session"]))
    doc = as_json(cli(mb, "root", "admin", "session", "revoke", "--user", "alice", "--json"))
    assert doc == {"revoked": 1}, doc
    assert_ok(works_raw(mb, "bob", b1["session"]))
    assert ok(cli(mb, "root", "admin", "session", "revoke", "--all")).strip() == \
        "revoked 1 session(s)"
    assert_error(works_raw(mb, "bob", b1["session"]), "session_required")
    # Not an admin: refused by the broker.
    fails(cli(mb, "alice", "admin", "session", "list"), 1)


# --------------------------------------------------------------------------
# admin user lock / unlock
# --------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "2x", "0", "0h", "-5", "1.5h", "h", "10 s", "5sm",
                                 "99999999999999999999", "9999999999999999d"])
def test_lock_duration_refused(mb, bad):
    cp = cli(mb, "root", "admin", "user", "lock", "alice", "--expires", bad)
    fails(cp, 2, "is not a duration")
    assert rows_of(mb, cp) == [], "a bad duration reached the broker"


def test_lock_and_unlock(mb):
    res = login(mb)
    now = mb.clock.now()
    doc = as_json(cli(mb, "root", "admin", "user", "lock", "alice", "--message", "see ops",
                      "--expires", "2h", "--json"))
    assert doc["user"] == "alice" and doc["locked"] is True, doc
    assert doc["sessions_ended"] == 1, doc
    assert abs(epoch(doc["until"]) - (now + 7200)) <= 5, (doc, now)
    assert_error(works_raw(mb, "alice", res["session"]), "session_required")
    with UserConn(mb, "alice") as c:
        err = assert_error(c.call("login", {"code": totp(mb.secret["alice"], mb.clock.now())}),
                           "locked")
        assert "see ops" in err["message"], err
    assert ok(cli(mb, "root", "admin", "user", "unlock", "alice")).strip() == "unlocked alice"
    out = ok(cli(mb, "root", "admin", "user", "lock", "alice"))
    assert out.startswith("locked alice until an administrator unlocks it"), out
    for spec, secs in (("90", 90), ("90s", 90), ("3m", 180), ("1d", 86400)):
        doc = as_json(cli(mb, "root", "admin", "user", "unlock", "alice", "--json"))
        assert doc["user"] == "alice" and doc["locked"] is False, doc
        now = mb.clock.now()
        doc = as_json(cli(mb, "root", "admin", "user", "lock", "alice", "--expires", spec,
                          "--json"))
        assert abs(epoch(doc["until"]) - (now + secs)) <= 5, (spec, doc, now)
