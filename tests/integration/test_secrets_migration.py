"""
The broker secret under the keystore's master-key provider
(broker/login/secrets.c): the 32 bytes the TOTP-seed, recovery-code and
session-token keys come from are kept only as dataDir/broker-secret.wrapped,
the provider's blob, and an old data directory's plaintext master.key is
moved under the provider with its bytes unchanged.

How the old store is made.  Brokers up to commit e25986c kept the secret
as dataDir/master.key (32 bytes, 0600) and had no broker-secret.wrapped;
nothing else in the store differs but where the local provider's key file
is (state.db with the seeds sealed under the TOTP subkey and the keyed
hashes of recovery codes and session tokens is what this broker writes
too).  So each upgrade test makes a real store with this broker -- a user
enrolled through user.add, logged in with TOTP and with a recovery code, a
live session -- stops it, and turns the data directory back into the old
shape: the secret is unwrapped here in Python (the local provider's blob
is AES-256-GCM under provider.key, see keystore/providers/local.c) and
written as master.key, the wrapped file is removed, and provider.key goes
back to where those brokers kept it, keystore/master.key (its move has
tests in test_datadir_trust.py).  The next start is then an upgrade.
Building the e25986c broker inside the test would be more literal, but it
needs the git history and a second build of the tree in every `make
check`; instead, with KW_OLD_BUILD set to such a build (git archive
e25986c | tar -x -C DIR; make -C DIR), the upgrade tests make the old
store with that broker and run the same assertions.

The pkcs11 (SoftHSM2) and aws-kms (kms_server.py) providers cannot be
unwrapped from Python, so their upgrade tests make the old store under
local, as above, and start the new broker under the other provider (the
store holds no API keys, so its keystore/ directory is dropped with the
local key file).  Their other tests start under the provider, log in,
restart and log in again.  That the broker uses the very secret on disk is
checked from outside too: a session token's hash in state.db is BLAKE2b
keyed with the secret's session subkey, recomputed here.
"""
import base64
import hashlib
import json
import os
import shutil
import sqlite3

import pytest

import conftest
from conftest import assert_error, assert_ok, file_mode, short_tmpdir
from kms_server import _gcm
from test_keystore_awskms import AKID, ARN, PROXY_VARS, SECRET, Kms
from test_keystore_keychain import Keyring
from test_keystore_providers import Hsm
from users import (TOKEN_RE, TOTP_STEP, UserConn, id_broker, start,  # noqa: F401 (fixture)
                   start_clocked, totp)

WRAPPED = "broker-secret.wrapped"
LEGACY = "master.key"
LOCAL_AD = b"keywarden data key"
CHECK = {"action": "read", "resource": "key/demo"}
OLD_BUILD = os.environ.get("KW_OLD_BUILD")
EXIT_RUNTIME = 1


# --------------------------------------------------------------------------
# Files and keys
# --------------------------------------------------------------------------

def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def unwrap_local(datadir):
    """The broker secret, from the local provider's blob: "LOC1" | IV | ciphertext | tag."""
    kek = read_bytes(os.path.join(datadir, "provider.key"))
    blob = read_bytes(os.path.join(datadir, WRAPPED))
    assert len(kek) == 32 and blob[:4] == b"LOC1" and len(blob) == 4 + 12 + 32 + 16
    secret = _gcm(False, kek, blob[4:16], LOCAL_AD, blob[16:48], blob[48:])
    assert secret is not None and len(secret) == 32, "the wrapped file does not open"
    return secret


def subkey(secret, n):
    """libsodium's crypto_kdf_derive_from_key(32, n, "kwbroker", secret)."""
    return hashlib.blake2b(b"", digest_size=32, key=secret,
                           salt=n.to_bytes(8, "little") + bytes(8),
                           person=b"kwbroker" + bytes(8)).digest()


def token_hash(secret, token):
    """What state.db keeps of a session token: BLAKE2b of its secret part,
    keyed with the session subkey (3) of the broker secret."""
    m = TOKEN_RE.match(token)
    assert m, token
    return m.group(1), hashlib.blake2b(m.group(2).encode(), digest_size=32,
                                       key=subkey(secret, 3)).digest()


def stored_hash(b, session_id):
    con = sqlite3.connect("file:%s?mode=ro" % b.state_db, uri=True, timeout=10)
    try:
        row = con.execute("SELECT secret_hash FROM sessions WHERE id = ?",
                          (session_id,)).fetchone()
    finally:
        con.close()
    assert row, "no session %s in state.db" % session_id
    return bytes(row[0])


def assert_secret_is(b, secret, token):
    """The broker's session hashes are keyed by this secret's subkey."""
    sid, want = token_hash(secret, token)
    assert stored_hash(b, sid) == want


def data_files(b):
    for top, _, names in os.walk(b.datadir):
        for n in names:
            yield os.path.join(top, n)


def assert_not_on_disk(b, secret):
    for path in data_files(b):
        assert secret not in read_bytes(path), "%s holds the broker secret in the clear" % path


def assert_no_file_holds_the_secret_of(b, token):
    """For a secret the test cannot know (an HSM's): no 32 bytes of any file
    under dataDir are a secret whose session subkey gives the token's hash."""
    sid = TOKEN_RE.match(token).group(1)
    have = stored_hash(b, sid)
    for path in data_files(b):
        data = read_bytes(path)
        for i in range(0, max(0, len(data) - 31)):
            assert token_hash(data[i:i + 32], token)[1] != have, (
                "%s holds the broker secret at offset %d" % (path, i))


def assert_quiet(b, *secrets):
    """No broker run printed a secret: raw, hex, base64 or base32."""
    forms = []
    for s in secrets:
        if isinstance(s, bytes):
            forms += [s.hex(), base64.b64encode(s).decode(), base64.b32encode(s).decode()]
        else:
            forms.append(s)
    for _, path in b.history:
        text = b.stderr(path)
        for f in forms:
            assert f not in text, "keywardend's stderr (%s) holds a secret" % path


# --------------------------------------------------------------------------
# The broker, a user, logins
# --------------------------------------------------------------------------

def new_broker(id_broker, extra=None, env=None, start_now=True):
    """A broker under nss_wrapper and a movable clock (started by
    start_clocked), with MFA required."""
    b = id_broker(extra, start_it=False, mfa_required=True)
    for k in PROXY_VARS:
        b.nss_env.pop(k, None)
    b.nss_env.update(env or {})
    return start_clocked(b) if start_now else b


def restart(b):
    assert b.stop() == 0
    start(b)


def enroll(b, user="alice"):
    with b.connect() as c:
        return assert_ok(c.call("user.add", {"user": user, "roles": ["developer"]}))


def login(b, code, user="alice"):
    with UserConn(b, user) as conn:
        return conn.call("login", {"code": code})


def logged_in(b, code, user="alice"):
    res = assert_ok(login(b, code, user))
    assert TOKEN_RE.match(res["session"]), res
    return res["session"]


def next_code(b, secret):
    """A TOTP code of a step no login used yet."""
    b.clock.advance(TOTP_STEP)
    return totp(secret, b.clock.now())


def session_works(b, token, user="alice"):
    with UserConn(b, user) as conn:
        assert assert_ok(conn.call("check", CHECK, session=token))["allowed"] is True


class OldStore:
    """What a user had before the upgrade: the authenticator's secret,
    recovery codes (the first one spent), a live session, the broker secret."""

    def __init__(self, enrolled, token):
        self.totp = enrolled["secret"]
        self.codes = enrolled["recovery_codes"]
        self.token = token
        self.secret = None


def make_old_store(b, monkeypatch):
    """Start b (not started yet), enroll alice, log in with TOTP and with a
    recovery code, stop, and leave the data directory as the e25986c broker
    did (see the docstring)."""
    if OLD_BUILD:
        monkeypatch.setattr(conftest, "BROKER_BIN", os.path.join(OLD_BUILD, "keywardend"))
    start_clocked(b)
    b.clock.align()
    enrolled = enroll(b)
    old = OldStore(enrolled, logged_in(b, totp(enrolled["secret"], b.clock.now())))
    logged_in(b, old.codes[0])
    session_works(b, old.token)
    assert b.stop() == 0
    legacy = os.path.join(b.datadir, LEGACY)
    wrapped = os.path.join(b.datadir, WRAPPED)
    if OLD_BUILD:
        monkeypatch.undo()
        assert not os.path.exists(wrapped)
        old.secret = read_bytes(legacy)
    else:
        old.secret = unwrap_local(b.datadir)
        write_private(legacy, old.secret)
        os.unlink(wrapped)
        # The local provider's key file was keystore/master.key then.
        os.rename(os.path.join(b.datadir, "provider.key"),
                  os.path.join(b.datadir, "keystore", "master.key"))
    assert len(old.secret) == 32 and file_mode(legacy) == 0o600
    assert_secret_is(b, old.secret, old.token)
    return old


def assert_everything_works(b, old):
    """After the upgrade: the session, TOTP with the same authenticator, an
    unused recovery code; the spent one stays spent."""
    session_works(b, old.token)
    session_works(b, logged_in(b, next_code(b, old.totp)))
    session_works(b, logged_in(b, old.codes[1]))
    assert_error(login(b, old.codes[0]), "denied")


def assert_upgraded(b, old):
    assert not os.path.exists(os.path.join(b.datadir, LEGACY)), "master.key was left"
    assert file_mode(os.path.join(b.datadir, WRAPPED)) == 0o600
    assert_secret_is(b, old.secret, old.token)
    assert_not_on_disk(b, old.secret)


# --------------------------------------------------------------------------
# Upgrade under the local provider
# --------------------------------------------------------------------------

def test_old_store_keeps_working_after_the_upgrade(id_broker, monkeypatch):
    b = new_broker(id_broker, start_now=False)
    old = make_old_store(b, monkeypatch)

    start(b)
    assert_upgraded(b, old)
    # The same 32 bytes, now wrapped by the local provider.
    assert unwrap_local(b.datadir) == old.secret
    log = b.stderr()
    assert "master.key: the broker secret is now wrapped by the local provider" in log, log
    assert_everything_works(b, old)

    # The next start unwraps the same file and rewrites nothing.
    blob = read_bytes(os.path.join(b.datadir, WRAPPED))
    restart(b)
    assert read_bytes(os.path.join(b.datadir, WRAPPED)) == blob
    assert "now wrapped" not in b.stderr()
    session_works(b, old.token)
    session_works(b, logged_in(b, next_code(b, old.totp)))
    assert_quiet(b, old.secret, old.totp, *old.codes)


@pytest.mark.parametrize("left", ["whole", "overwritten", "cut"])
def test_upgrade_cut_short_is_finished(id_broker, monkeypatch, left):
    """A crash after the wrapped file was written leaves master.key beside it
    (whole, or partly overwritten on its way out): the wrapped file is used
    and master.key removed."""
    b = new_broker(id_broker, start_now=False)
    old = make_old_store(b, monkeypatch)
    start(b)
    assert b.stop() == 0
    legacy = os.path.join(b.datadir, LEGACY)
    write_private(legacy, {"whole": old.secret, "overwritten": bytes(32),
                           "cut": bytes(7)}[left])

    start(b)
    assert not os.path.exists(legacy)
    assert "master.key: removed" in b.stderr(), b.stderr()
    assert unwrap_local(b.datadir) == old.secret
    assert_everything_works(b, old)


# --------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------

def test_old_store_without_its_master_key_is_refused(id_broker, monkeypatch):
    b = new_broker(id_broker, start_now=False)
    old = make_old_store(b, monkeypatch)
    legacy = os.path.join(b.datadir, LEGACY)
    os.rename(legacy, legacy + ".away")

    b.start(env=b.nss_env, wait=False)
    assert b.wait_exit() == EXIT_RUNTIME
    err = b.stderr()
    assert WRAPPED + " is missing" in err and "no master.key" in err, err
    assert "restore it from a backup" in err, err
    # No new secret was made in its place.
    assert not os.path.exists(os.path.join(b.datadir, WRAPPED))
    assert not os.path.exists(legacy)

    os.rename(legacy + ".away", legacy)
    start(b)
    assert_upgraded(b, old)
    assert_everything_works(b, old)


def test_unreadable_master_key_is_refused_and_kept(id_broker, monkeypatch):
    b = new_broker(id_broker, start_now=False)
    old = make_old_store(b, monkeypatch)
    legacy = os.path.join(b.datadir, LEGACY)
    os.chmod(legacy, 0o644)

    b.start(env=b.nss_env, wait=False)
    assert b.wait_exit() == EXIT_RUNTIME
    assert "master.key: must be a 32-byte file of mode 0600" in b.stderr(), b.stderr()
    assert read_bytes(legacy) == old.secret
    assert not os.path.exists(os.path.join(b.datadir, WRAPPED))

    os.chmod(legacy, 0o600)
    start(b)
    assert_upgraded(b, old)
    assert_everything_works(b, old)
    assert_quiet(b, old.secret)


def test_secret_that_does_not_unwrap_is_refused(id_broker, tmpdir_short):
    b = new_broker(id_broker)
    enrolled = enroll(b)
    b.clock.align()
    token = logged_in(b, totp(enrolled["secret"], b.clock.now()))
    assert b.stop() == 0
    path = os.path.join(b.datadir, WRAPPED)
    blob = read_bytes(path)
    secret = unwrap_local(b.datadir)

    # Changed on disk.
    bad = bytearray(blob)
    bad[30] ^= 0x01
    write_private(path, bytes(bad))
    b.start(env=b.nss_env, wait=False)
    assert b.wait_exit() == EXIT_RUNTIME
    err = b.stderr()
    assert "%s: the local provider could not unwrap the broker secret" % path in err, err
    assert "restore the file from a backup" in err, err
    assert read_bytes(path) == bytes(bad), "the file was replaced"
    assert not os.path.exists(os.path.join(b.datadir, LEGACY))

    # Another provider than the one that wrapped it.
    write_private(path, blob)
    passphrase = os.path.join(tmpdir_short, "passphrase")
    write_private(passphrase, b"not the provider that wrapped it\n")
    b.write_config({"security": {"encryption": {"atRest": {
        "keySource": "passphrase", "passphraseFile": passphrase}}}})
    b.start(env=b.nss_env, wait=False)
    assert b.wait_exit() == EXIT_RUNTIME
    err = b.stderr()
    assert "%s: the passphrase provider could not unwrap the broker secret" % path in err, err
    assert read_bytes(path) == blob

    # Back to the provider that wrapped it: the session still opens.
    b.write_config()
    start(b)
    session_works(b, token)
    session_works(b, logged_in(b, next_code(b, enrolled["secret"])))
    assert_quiet(b, secret, enrolled["secret"])


# --------------------------------------------------------------------------
# pkcs11 (SoftHSM2)
# --------------------------------------------------------------------------

@pytest.fixture
def hsm():
    root = short_tmpdir()
    os.chmod(root, 0o700)
    try:
        yield Hsm(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def pkcs11_config(hsm):
    return {"security": {"encryption": {"atRest": {"keySource": "pkcs11",
                                                   "kmsKeyId": hsm.uri()}}}}


def assert_hsm_blob(b):
    blob = read_bytes(os.path.join(b.datadir, WRAPPED))
    assert blob[:4] == b"P11G" and len(blob) == 4 + 12 + 32 + 16, blob[:4]
    # The HSM holds the master key: no key file anywhere.
    assert not os.path.exists(os.path.join(b.datadir, LEGACY))
    assert not os.path.exists(os.path.join(b.datadir, "provider.key"))
    assert not os.path.exists(os.path.join(b.datadir, "keystore", "master.key"))
    return blob


def test_pkcs11_protects_the_broker_secret(id_broker, hsm):
    env = {"SOFTHSM2_CONF": hsm.conf}
    b = new_broker(id_broker, pkcs11_config(hsm), env)
    enrolled = enroll(b)
    b.clock.align()
    token = logged_in(b, totp(enrolled["secret"], b.clock.now()))
    blob = assert_hsm_blob(b)

    restart(b)
    assert read_bytes(os.path.join(b.datadir, WRAPPED)) == blob
    session_works(b, token)
    session_works(b, logged_in(b, next_code(b, enrolled["secret"])))
    session_works(b, logged_in(b, enrolled["recovery_codes"][0]))
    # No 32 bytes of any file are the secret behind the session's hash.
    assert_no_file_holds_the_secret_of(b, token)
    assert_quiet(b, enrolled["secret"])


def test_pkcs11_upgrade(id_broker, hsm, monkeypatch):
    b = new_broker(id_broker, start_now=False)
    old = make_old_store(b, monkeypatch)
    shutil.rmtree(os.path.join(b.datadir, "keystore"))
    b.write_config(pkcs11_config(hsm))
    b.nss_env["SOFTHSM2_CONF"] = hsm.conf

    start(b)
    assert "master.key: the broker secret is now wrapped by the pkcs11 provider" in b.stderr()
    blob = assert_hsm_blob(b)
    assert_upgraded(b, old)
    assert_everything_works(b, old)
    restart(b)
    assert read_bytes(os.path.join(b.datadir, WRAPPED)) == blob
    session_works(b, old.token)
    assert_quiet(b, old.secret, old.totp)


def test_pkcs11_with_the_keychain_backend(id_broker, hsm, tmpdir_short):
    """api.keySource keychain uses no provider for API keys; the broker secret
    is still under the one security.encryption.atRest.keySource names."""
    keyring = Keyring(tmpdir_short)
    try:
        extra = pkcs11_config(hsm)
        extra["api"] = {"keySource": "keychain"}
        b = new_broker(id_broker, extra, dict(keyring.env, SOFTHSM2_CONF=hsm.conf))
        enrolled = enroll(b)
        b.clock.align()
        token = logged_in(b, totp(enrolled["secret"], b.clock.now()))
        assert_hsm_blob(b)
        restart(b)
        session_works(b, token)
        session_works(b, logged_in(b, next_code(b, enrolled["secret"])))
        assert not os.path.exists(os.path.join(b.datadir, "keystore", "datakey.wrapped"))
    finally:
        keyring.stop()


# --------------------------------------------------------------------------
# aws-kms (kms_server.py)
# --------------------------------------------------------------------------

@pytest.fixture
def kms(tmpdir_short):
    k = Kms(tmpdir_short)
    yield k
    k.stop()


def kms_config(kms):
    return {"security": {"encryption": {"atRest": {"keySource": "aws-kms", "kmsKeyId": ARN,
                                                   "endpoint": kms.url}}}}


AWS_ENV = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET}


def signed_ok(rec):
    assert rec["status"] == 200 and rec["signature_ok"] is True, rec
    return json.loads(rec["body"]), json.loads(rec["reply"])


def test_kms_protects_the_broker_secret(id_broker, kms):
    b = new_broker(id_broker, kms_config(kms), AWS_ENV)
    # The broker secret's GenerateDataKey, then the keystore's.
    assert kms.ops() == ["GenerateDataKey", "GenerateDataKey"]
    _, reply = signed_ok(kms.records()[0])
    secret = base64.b64decode(reply["Plaintext"])
    blob = read_bytes(os.path.join(b.datadir, WRAPPED))
    assert blob == base64.b64decode(reply["CiphertextBlob"])

    enrolled = enroll(b)
    b.clock.align()
    token = logged_in(b, totp(enrolled["secret"], b.clock.now()))
    # The secret KMS handed out is the one the broker keys its hashes with,
    # and it is nowhere on disk.
    assert_secret_is(b, secret, token)
    assert_not_on_disk(b, secret)

    restart(b)
    assert kms.ops()[2:] == ["Decrypt", "Decrypt"]
    body, _ = signed_ok(kms.records()[2])
    assert body == {"CiphertextBlob": base64.b64encode(blob).decode(), "KeyId": ARN}
    session_works(b, token)
    session_works(b, logged_in(b, next_code(b, enrolled["secret"])))
    assert_quiet(b, secret, enrolled["secret"], SECRET)


def test_kms_upgrade(id_broker, kms, monkeypatch):
    b = new_broker(id_broker, start_now=False)
    old = make_old_store(b, monkeypatch)
    shutil.rmtree(os.path.join(b.datadir, "keystore"))
    b.write_config(kms_config(kms))
    b.nss_env.update(AWS_ENV)

    start(b)
    # Encrypt of the old bytes, a Decrypt to check the blob before master.key
    # goes, then the keystore's new data key.
    assert kms.ops() == ["Encrypt", "Decrypt", "GenerateDataKey"]
    body, reply = signed_ok(kms.records()[0])
    assert body == {"KeyId": ARN, "Plaintext": base64.b64encode(old.secret).decode()}
    blob = read_bytes(os.path.join(b.datadir, WRAPPED))
    assert blob == base64.b64decode(reply["CiphertextBlob"])
    assert_upgraded(b, old)
    assert_everything_works(b, old)

    restart(b)
    assert kms.ops()[3:] == ["Decrypt", "Decrypt"]
    session_works(b, old.token)
    assert_quiet(b, old.secret, old.totp, SECRET)


def test_kms_refusing_to_wrap_leaves_master_key(id_broker, kms, monkeypatch):
    b = new_broker(id_broker, start_now=False)
    old = make_old_store(b, monkeypatch)
    shutil.rmtree(os.path.join(b.datadir, "keystore"))
    b.write_config(kms_config(kms))
    b.nss_env.update(AWS_ENV, AWS_SECRET_ACCESS_KEY="not" + SECRET)

    b.start(env=b.nss_env, wait=False)
    assert b.wait_exit() == EXIT_RUNTIME
    err = b.stderr()
    assert "InvalidSignatureException" in err, err
    assert "master.key: the aws-kms provider could not wrap the broker secret" in err, err
    assert "the file is left as it was" in err, err
    assert read_bytes(os.path.join(b.datadir, LEGACY)) == old.secret
    assert not os.path.exists(os.path.join(b.datadir, WRAPPED))
    assert_quiet(b, old.secret, SECRET)

    b.nss_env.update(AWS_ENV)
    start(b)
    assert_upgraded(b, old)
    assert_everything_works(b, old)
