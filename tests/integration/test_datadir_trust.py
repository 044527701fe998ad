"""
What the broker reads from disk is trusted only when no one but root or the
broker's own user could have put it there (keywardend(8), FILES and
start-up refusals; the rule is common/fsutil.h's).

The attacker is alice (uid 2001 through nss_wrapper, users.py), a distinct
non-root user, and where she acts she acts as herself (setpriv): she makes
her directories and links in a sticky directory of root's inside the test's
own (as anyone may in /tmp), and she plants files in a data directory whose
mode was too loose while the broker was stopped -- which an administrator
then put right, leaving her files behind.  Her files carry the very bytes
the broker wrote (given to her through a readable copy), so only their
owner or their being a link can tell them apart: a broker that does not
look at those starts.

The broker runs as root under /tmp, as in every integration test: /tmp is
root's and sticky, and the rule accepts such a directory above the one in
use, not as the one in use.
"""
import json
import os
import shutil
import stat

import pytest

from conftest import clean_env
from users import USERS, id_broker, run_as_user  # noqa: F401 (fixture)
from test_keys import get_key, key_cli, random_key, set_key

EXIT_CONFIG = 2
ALICE = USERS["alice"][0]
# The audit trail also goes to a file in the data directory, so that file is planted too.
LOG_FILE = {"security": {"audit": {"logFile": "audit.jsonl"}}}


def alice(*argv):
    """Run argv as alice; it must succeed."""
    cp = run_as_user("alice", list(argv), clean_env())
    assert cp.returncode == 0, "as alice: %s\n%s%s" % (argv, cp.stdout, cp.stderr)
    return cp


def refused(b, *texts):
    """b's next start is refused: exit 2 before READY=1, stderr naming each of texts."""
    b.start(env=b.nss_env, wait=False)
    assert b.wait_ready(exit_ok=True) is False, "the broker started:\n" + b.stderr()
    rc = b.proc.wait()
    err = b.stderr()
    assert rc == EXIT_CONFIG, "exit %d (want %d):\n%s" % (rc, EXIT_CONFIG, err)
    for t in texts:
        assert t in err, "%r not in the broker's stderr:\n%s" % (t, err)
    return err


def starts(b):
    b.start(env=b.nss_env)
    return b


def pub(b):
    """A directory like /tmp in b's own: root's, 1777, where alice makes her things."""
    d = os.path.join(b.root, "pub")
    if not os.path.isdir(d):
        os.mkdir(d)
        os.chmod(d, 0o1777)
    return d


def set_paths(b, datadir=None, sock=None):
    """Point b's configuration at another data directory or socket."""
    if datadir:
        b.datadir = datadir
        b.audit_db = os.path.join(datadir, "audit.db")
        b.state_db = os.path.join(datadir, "state.db")
        b.config["broker"]["dataDir"] = datadir
    if sock:
        b.sock = sock
        b.config["broker"]["socket"] = sock
    b.write_config_text(json.dumps(b.config, indent=2) + "\n")


def key_file(b):
    """The local provider's key file, wherever this build keeps it."""
    new = os.path.join(b.datadir, "provider.key")
    return new if os.path.exists(new) else os.path.join(b.datadir, "keystore", "master.key")


def staged(b, data):
    """data in a file alice can read (root's, 0644), for her to copy."""
    path = os.path.join(pub(b), "staged-%d" % len(os.listdir(pub(b))))
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)
    return path


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def loosened(b, path):
    """Context: the directories from b's data directory down to path's are 0777 (still
    root's) for a while -- a mistake made while the broker was stopped -- then as before."""
    class Loose:
        def __enter__(self):
            self.modes = []
            d = os.path.dirname(path)
            while True:
                self.modes.append((d, stat.S_IMODE(os.stat(d).st_mode)))
                os.chmod(d, 0o777)
                if d == b.datadir or d == os.path.dirname(d):
                    break
                d = os.path.dirname(d)

        def __exit__(self, *exc):
            for d, mode in self.modes:
                os.chmod(d, mode)
    return Loose()


def plant_copy(b, path, data, mode):
    """alice replaces path with a file of her own holding data, mode as given."""
    src = staged(b, data)
    tmp = os.path.join(os.path.dirname(path), ".alice")
    with loosened(b, path):
        alice("sh", "-c", 'cp "$1" "$2" && chmod %o "$2" && mv -f "$2" "$3"' % mode,
              "sh", src, tmp, path)
    st = os.lstat(path)
    assert st.st_uid == ALICE and stat.S_ISREG(st.st_mode)


def plant_link(b, path, data, mode):
    """alice replaces path with a link of hers to her own copy of data."""
    own = os.path.join(pub(b), "alice-" + os.path.basename(path))
    src = staged(b, data)
    alice("sh", "-c", 'cp "$1" "$2" && chmod %o "$2"' % mode, "sh", src, own)
    tmp = os.path.join(os.path.dirname(path), ".alice")
    with loosened(b, path):
        alice("sh", "-c", 'ln -s "$1" "$2" && mv -f "$2" "$3"', "sh", own, tmp, path)
    st = os.lstat(path)
    assert st.st_uid == ALICE and stat.S_ISLNK(st.st_mode)
    return own


def stopped_broker(id_broker):
    """A broker that ran once (its files are made) and stopped cleanly."""
    b = id_broker(LOG_FILE)
    set_key(b, "anthropic", random_key())
    assert b.stop() == 0, b.stderr()
    return b


# --------------------------------------------------------------------------
# The data directory and the directories above it
# --------------------------------------------------------------------------

def test_datadir_of_another_user_is_refused(id_broker):
    """alice's own directory as dataDir: refused, and nothing is made in it."""
    b = id_broker(start_it=False)
    lib = os.path.join(pub(b), "lib")
    alice("mkdir", "-m", "700", lib)
    set_paths(b, datadir=lib)
    refused(b, lib + " is owned by", "uid %d" % ALICE, "broker.dataDir")
    assert os.listdir(lib) == [], "the broker wrote into alice's directory"


def test_datadir_through_a_link_of_another_user_is_refused(id_broker):
    """dataDir reached through alice's link, even to a directory of root's: refused."""
    b = id_broker(start_it=False)
    real = os.path.join(b.root, "real")
    os.mkdir(real, 0o700)
    lib = os.path.join(pub(b), "lib")
    alice("ln", "-s", real, lib)
    set_paths(b, datadir=lib)
    refused(b, lib + " is a symbolic link owned by", "uid %d" % ALICE)
    assert os.listdir(real) == []


@pytest.mark.parametrize("mode,group", [(0o770, "alice"), (0o707, None), (0o777, None),
                                        (0o1777, None)],
                         ids=["0770-group-alice", "0707", "0777", "1777-sticky"])
def test_datadir_writable_by_others_is_refused(id_broker, mode, group):
    """A data directory others can write -- sticky or not: refused, though root owns it
    and alice's state.db is an empty file the broker would have made a store of."""
    b = id_broker(start_it=False)
    os.mkdir(b.datadir)
    os.chmod(b.datadir, mode)
    if group:
        os.chown(b.datadir, 0, USERS[group][1])
    alice("touch", os.path.join(b.datadir, "state.db"))
    refused(b, b.datadir + " is writable by", "%04o" % mode, "chmod go-w")
    assert os.path.getsize(b.state_db) == 0, "the broker used alice's state.db"


@pytest.mark.parametrize("how", ["alice-owns", "others-write", "group-writes"])
def test_ancestor_alice_can_change_is_refused(id_broker, how):
    """A directory above dataDir that alice owns or may write: she could move dataDir
    away and put her own in its place.  Refused, naming that directory."""
    b = id_broker(start_it=False)
    mid = os.path.join(pub(b), "mid")
    if how == "alice-owns":
        alice("mkdir", "-m", "755", mid)
    else:
        os.mkdir(mid)
        os.chmod(mid, 0o777 if how == "others-write" else 0o775)
        if how == "group-writes":
            os.chown(mid, 0, USERS["alice"][1])
        alice("touch", os.path.join(mid, "alice-was-here"))
    lib = os.path.join(mid, "lib")
    os.mkdir(lib, 0o700)
    set_paths(b, datadir=lib)
    err = refused(b, mid + " is ")
    assert ("uid %d" % ALICE if how == "alice-owns" else "writable by") in err, err
    assert os.listdir(lib) == []


# --------------------------------------------------------------------------
# Files planted in a data directory of root's
# --------------------------------------------------------------------------

PLANTED = ["state.db", "audit.db", "broker-secret.wrapped", "keystore/datakey.wrapped",
           "KEYFILE", "audit.pub", "audit.jsonl"]


def planted_path(b, name):
    return key_file(b) if name == "KEYFILE" else os.path.join(b.datadir, name)


@pytest.mark.parametrize("name", PLANTED)
def test_file_of_another_user_is_refused(id_broker, name):
    """alice's copy of a file -- the same bytes, her own -- left in a data directory of
    root's: refused at start (exit 2), naming the file."""
    b = stopped_broker(id_broker)
    path = planted_path(b, name)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    plant_copy(b, path, read_bytes(path), mode)
    refused(b, path + ": ", "is owned by", "uid %d" % ALICE)


def test_wal_of_another_user_is_refused(id_broker):
    """A state.db-wal of alice's beside root's state.db (SQLite would replay it into
    the store): refused, naming it."""
    b = stopped_broker(id_broker)
    wal = b.state_db + "-wal"
    assert not os.path.exists(wal), "a clean stop leaves no WAL"
    plant_copy(b, wal, b"", 0o600)
    refused(b, wal + ": ", "uid %d" % ALICE)


def test_keystore_directory_of_another_user_is_refused(id_broker):
    """keystore/ swapped for alice's own directory, holding her copy of the wrapped data
    key: refused at start, naming keystore/."""
    b = stopped_broker(id_broker)
    ks = os.path.join(b.datadir, "keystore")
    files = [(staged(b, read_bytes(os.path.join(ks, n))), n) for n in sorted(os.listdir(ks))
             if os.path.isfile(os.path.join(ks, n))]
    with loosened(b, ks):
        alice("sh", "-c", 'mv "$1" "$1.old" && mkdir -m 700 "$1"', "sh", ks)
        for src, n in files:
            alice("sh", "-c", 'cp "$1" "$2" && chmod 600 "$2"', "sh", src, os.path.join(ks, n))
    assert os.stat(ks).st_uid == ALICE
    refused(b, ks + ": ", "is owned by", "uid %d" % ALICE)


@pytest.mark.parametrize("name", ["state.db", "audit.db", "KEYFILE", "broker-secret.wrapped"])
def test_link_in_place_of_a_file_is_refused(id_broker, name):
    """alice's link in place of a file, to her own copy of it: refused (exit 2), naming
    the file and saying it is a link; her copy is left as it was."""
    b = stopped_broker(id_broker)
    path = planted_path(b, name)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    own = plant_link(b, path, read_bytes(path), mode)
    before = os.stat(own)
    refused(b, path + ": ", "symbolic link")
    after = os.stat(own)
    assert (after.st_mode, after.st_mtime_ns, after.st_size) == \
        (before.st_mode, before.st_mtime_ns, before.st_size), "alice's file was changed"


def test_sealed_key_of_another_user_is_not_used(id_broker):
    """A sealed key file of alice's (the same bytes), or a key's directory replaced by a
    link of hers to her copy: `key get` fails without the value, and the broker names
    the file or the directory."""
    b = id_broker()
    k1, k2 = random_key(), random_key()
    set_key(b, "anthropic", k1)
    set_key(b, "openai", k2)
    sealed = os.path.join(b.datadir, "keystore", "anthropic", "v1.sealed")
    plant_copy(b, sealed, read_bytes(sealed), 0o600)
    cp = key_cli(b, "key", "get", "anthropic")
    assert cp.returncode != 0 and k1 not in cp.stdout + cp.stderr, cp
    err = b.stderr()
    assert sealed + ": " in err and "uid %d" % ALICE in err, err

    kdir = os.path.join(b.datadir, "keystore", "openai")
    own = os.path.join(pub(b), "alice-keydir")
    alice("mkdir", "-m", "700", own)
    alice("cp", staged(b, read_bytes(os.path.join(kdir, "v1.sealed"))),
          os.path.join(own, "v1.sealed"))
    with loosened(b, kdir):
        alice("sh", "-c", 'mv "$1" "$1.old" && ln -s "$2" "$1"', "sh", kdir, own)
    cp = key_cli(b, "key", "get", "openai")
    assert cp.returncode != 0 and k2 not in cp.stdout + cp.stderr, cp
    err = b.stderr()
    assert kdir + ": " in err and "symbolic link" in err, err


# --------------------------------------------------------------------------
# The socket's directory
# --------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["alice-owns", "alice-link", "others-write"])
def test_socket_directory_others_control_is_refused(id_broker, how):
    """The socket's directory alice owns, a link of hers (to a directory of root's), or
    one others may write: refused (exit 2), and no socket is made."""
    b = id_broker(start_it=False)
    real = os.path.join(b.root, "realrun")
    os.mkdir(real, 0o755)
    run = os.path.join(pub(b), "run")
    if how == "alice-owns":
        alice("mkdir", "-m", "755", run)
    elif how == "alice-link":
        alice("ln", "-s", real, run)
    else:
        run = os.path.join(b.root, "openrun")
        os.mkdir(run)
        os.chmod(run, 0o777)
        alice("touch", os.path.join(run, "alice-was-here"))
    set_paths(b, sock=os.path.join(run, "broker.sock"))
    err = refused(b, "broker.socket", run + " is ")
    if how != "others-write":
        assert "uid %d" % ALICE in err, err
    assert not os.path.lexists(os.path.join(real, "broker.sock"))
    assert not os.path.lexists(b.sock)


# --------------------------------------------------------------------------
# What a legitimate set-up looks like, and the key file's move
# --------------------------------------------------------------------------

def assert_broker_owned(datadir):
    for top, dirs, files in os.walk(datadir):
        for n in dirs + files:
            st = os.lstat(os.path.join(top, n))
            assert st.st_uid == 0 and not stat.S_ISLNK(st.st_mode), (top, n)
            assert not st.st_mode & 0o022, "%s/%s is mode %o" % (top, n, st.st_mode)


def test_legitimate_layout_starts(id_broker):
    """Root's 0700 data directory under root's directories and the sticky /tmp starts,
    again on what it made, and through a link of root's; the local provider's key file
    is beside keystore/, not in it."""
    b = id_broker(LOG_FILE)
    k = random_key()
    set_key(b, "anthropic", k)
    assert stat.S_IMODE(os.stat(b.datadir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(b.datadir, "keystore")).st_mode) == 0o700
    pk = os.path.join(b.datadir, "provider.key")
    assert stat.S_IMODE(os.stat(pk).st_mode) == 0o600 and os.path.getsize(pk) == 32
    assert not os.path.exists(os.path.join(b.datadir, "keystore", "master.key"))
    assert_broker_owned(b.datadir)
    assert b.stop() == 0

    link = os.path.join(b.root, "data")
    os.symlink(b.datadir, link)
    set_paths(b, datadir=link)
    starts(b)
    assert get_key(b, "anthropic") == k
    assert b.stop() == 0


def test_old_key_file_location_is_moved(id_broker):
    """keystore/master.key of earlier versions is moved to provider.key (the same bytes,
    the old name gone), and a key set before the move still reads the same."""
    b = id_broker()
    k = random_key()
    set_key(b, "anthropic", k)
    assert b.stop() == 0
    old = os.path.join(b.datadir, "keystore", "master.key")
    new = os.path.join(b.datadir, "provider.key")
    if os.path.exists(new):
        os.rename(new, old)             # the layout earlier versions left
    key = read_bytes(old)
    starts(b)
    assert get_key(b, "anthropic") == k
    assert read_bytes(new) == key and stat.S_IMODE(os.stat(new).st_mode) == 0o600
    assert not os.path.exists(old)
    assert "keystore/master.key moved to" in b.stderr(), b.stderr()
    assert b.stop() == 0

    # A move cut short (the same key under both names): the old name goes.
    shutil.copy2(new, old)
    starts(b)
    assert get_key(b, "anthropic") == k
    assert not os.path.exists(old) and read_bytes(new) == key
    assert b.stop() == 0

    # Two different keys: the broker cannot know which wraps the data key.
    with open(old, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(old, 0o600)
    refused(b, new, old, "different keys")
    assert read_bytes(new) == key and os.path.exists(old)
