"""pam_keywarden.so under attack: what it logs, and whose credentials its
session stage uses.

The module's syslog lines are what pam_wrapper prints for pam_syslog() at
PAM_WRAPPER_DEBUGLEVEL=2 ("SYSLOG(5): ..." on stderr), so the tests read
exactly what the module hands to the system log.  The PAM stack, the broker
and the users are the real ones of test_pam.py.
"""
import os
import re

from test_pam import pam_broker, succeeded, totp, wrong_code  # noqa: F401
from users import USERS, id_broker, run_as_user  # noqa: F401

SYSLOG_RE = re.compile(r"SYSLOG\(\d+\): (.*)")


def logged(pb, user, *ops, as_user="root", input=None, extra_env=None, wrap=()):
    """Run pamtester; (the CompletedProcess, the module's syslog lines)."""
    env = pb.env(dict({"PAM_WRAPPER_DEBUGLEVEL": "2"}, **(extra_env or {})))
    if USERS[as_user][0] != 0:
        pb.cached_for.add(as_user)
    if user in USERS:
        pb.cached_for.add(user)
    cp = run_as_user(as_user, list(wrap) + ["pamtester", "keywarden", user] + list(ops), env,
                     input=input)
    lines = [m.group(1) for m in SYSLOG_RE.finditer(cp.stderr)]
    return cp, lines


# --------------------------------------------------------------------------
# names in the log: only once the broker said they are users
# --------------------------------------------------------------------------

# What a user may type at a login prompt's user field by mistake: their password.
PASSWORDS = ("S3cret!pass word", "hunter2-Passw0rd")


def test_names_the_broker_did_not_confirm_are_not_logged(pam_broker):
    pb = pam_broker()
    pb.add("alice", "developer")
    # Malformed (bad_request) and well-formed but unknown (not_found), as root.
    for pw in PASSWORDS:
        cp, lines = logged(pb, pw, "authenticate", input="123456\n")
        assert cp.returncode != 0, cp.stderr
        assert lines, "no syslog lines seen: %s" % cp.stderr
        assert not [l for l in lines if pw in l], lines
        cp, lines = logged(pb, pw, "acct_mgmt")
        assert cp.returncode != 0, cp.stderr
        assert lines and not [l for l in lines if pw in l], lines
    # A program not running as root asking for another name: the broker refuses
    # before it looks the name up, so the name is not confirmed either.
    pw = PASSWORDS[1]
    cp, lines = logged(pb, pw, "authenticate", as_user="bob", input="123456\n")
    assert cp.returncode != 0, cp.stderr
    assert lines and not [l for l in lines if pw in l], lines
    # None of them reached the audit trail's user column as a user either.
    assert all(r["user"] in ("root", "bob") for r in pb.b.audit_rows("action = 'login'"))

    # A real user's failure still names them.
    cp, lines = logged(pb, "alice", "authenticate",
                       input=wrong_code(pb.secret("alice")) + "\n")
    assert cp.returncode != 0, cp.stderr
    assert [l for l in lines if "authentication failure for alice" in l], lines


# --------------------------------------------------------------------------
# the session stage: the user's credentials, in a child, without root's groups
# --------------------------------------------------------------------------

GROUP = 2100      # a group of root's that no test user is in


def private_dir(pb, name, uid, gid, mode):
    d = os.path.join(pb.b.root, name)
    os.makedirs(d)
    os.chown(d, uid, gid)
    os.chmod(d, mode)
    return d


def test_session_stage_does_not_keep_roots_groups(pam_broker):
    """sshd's supplementary groups must not reach the work done as the user."""
    pb = pam_broker()
    pb.add("alice", "developer")
    uid, gid = USERS["alice"]
    # A runtime directory alice can write to only through root's group.
    grp = private_dir(pb, "xdg-group", 0, GROUP, 0o770)
    cp, lines = logged(pb, "alice", "authenticate", "open_session",
                       input=totp(pb.secret("alice")) + "\n",
                       extra_env={"KEYWARDEN_TOKEN_CACHE": "file", "XDG_RUNTIME_DIR": grp},
                       wrap=["setpriv", "--groups", str(GROUP)])
    succeeded(cp, "successfully opened a session")
    assert [l for l in lines if "session token of alice not cached" in l], lines
    assert os.listdir(grp) == [], "the token cache was written with root's group"
    # Her own directory: the file is hers, and private.
    own = private_dir(pb, "xdg-alice", uid, gid, 0o700)
    cp, lines = logged(pb, "alice", "authenticate", "open_session",
                       input=totp(pb.secret("alice"), 1) + "\n",
                       extra_env={"KEYWARDEN_TOKEN_CACHE": "file", "XDG_RUNTIME_DIR": own},
                       wrap=["setpriv", "--groups", str(GROUP)])
    succeeded(cp, "successfully opened a session")
    (name,) = os.listdir(os.path.join(own, "keywarden"))
    st = os.stat(os.path.join(own, "keywarden", name))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, gid, 0o600), st
    assert not [l for l in lines if "not cached" in l], lines


def test_session_stage_acts_as_the_user_in_a_child(pam_broker):
    """The process running PAM (sshd) never takes the user's uid itself: only a
    child it waits for does, so its other threads keep root's credentials."""
    pb = pam_broker()
    pb.add("alice", "developer")
    cp = pb.pamtester("alice", "authenticate", "open_session", "close_session",
                      input=totp(pb.secret("alice")) + "\n")
    succeeded(cp, "successfully opened a session", "session has successfully been closed")
    (login,) = pb.audit("login", "alice")
    (logout,) = pb.b.audit_rows("action = 'logout'")
    # auth asked as root, from pamtester itself ...
    assert (login["uid"], login["pid"]) == (0, cp.pid), login
    # ... close_session presented the token as alice, from another process.
    assert logout["uid"] == USERS["alice"][0] and logout["user"] == "alice", logout
    assert logout["pid"] != cp.pid, "pamtester itself switched to alice's uid"
    assert pb.sessions("alice") == []
