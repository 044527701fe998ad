"""
The passphrase and pkcs11 master-key providers through the real broker.

security.encryption.atRest.keySource chooses who wraps the keystore's data
key (SPEC5).  Each test runs keywardend with the file backend under one
provider, stores a key with `keywarden key set` (value on stdin, as root)
and reads it back with `keywarden key get`; a restart must unwrap the same
data key (keystore/datakey.wrapped unchanged) and give the same value.

The HSM is SoftHSM2 with a private token directory (SOFTHSM2_CONF in the
test's own directory), made with softhsm2-util and pkcs11-tool as in
TESTING.md; the broker reaches it through /usr/lib/softhsm/libsofthsm2.so
named in the kmsKeyId pkcs11: URI, with the PIN in a pin-source file.
"""
import os
import secrets
import shutil
import subprocess

import pytest

from conftest import clean_env, file_mode, short_tmpdir

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "keywarden"
USER_PIN = "1234"
SO_PIN = "12345678"
# Exit statuses of keywardend (broker/main.c).
EXIT_RUNTIME = 1
EXIT_CONFIG = 2


def new_value():
    """An Anthropic-shaped key no file can hold by chance."""
    return "sk-ant-api03-" + secrets.token_urlsafe(48)


def write_secret_file(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def run_tool(argv, env):
    cp = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        universal_newlines=True, timeout=60)
    assert cp.returncode == 0, "%s failed (%d):\n%s%s" % (argv[0], cp.returncode, cp.stdout,
                                                        cp.stderr)
    return cp


class Hsm:
    """A SoftHSM2 token "keywarden" with an AES-256 key "kek" (id 01)."""

    def __init__(self, root):
        self.root = root
        self.tokens = os.path.join(root, "tokens")
        self.conf = os.path.join(root, "softhsm2.conf")
        self.pin_file = os.path.join(root, "hsm.pin")
        os.makedirs(self.tokens, mode=0o700)
        with open(self.conf, "w") as f:
            f.write("directories.tokendir = %s\nobjectstore.backend = file\n"
                    "log.level = ERROR\n" % self.tokens)
        self.env = clean_env({"SOFTHSM2_CONF": self.conf})
        run_tool(["softhsm2-util", "--init-token", "--free", "--label", TOKEN,
                  "--so-pin", SO_PIN, "--pin", USER_PIN], self.env)
        run_tool(["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label", TOKEN,
                  "--login", "--pin", USER_PIN, "--keygen", "--key-type", "AES:32",
                  "--label", "kek", "--id", "01"], self.env)
        write_secret_file(self.pin_file, USER_PIN + "\n")

    def uri(self, obj="object=kek;type=secret"):
        return ("pkcs11:token=%s;%s?module-path=%s&pin-source=file:%s"
                % (TOKEN, obj, SOFTHSM_MODULE, self.pin_file))


@pytest.fixture
def hsm():
    root = short_tmpdir()
    os.chmod(root, 0o700)
    try:
        yield Hsm(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def at_rest(**members):
    return {"security": {"encryption": {"atRest": members}}}


def pkcs11_config(hsm, **extra):
    return at_rest(keySource="pkcs11", kmsKeyId=hsm.uri(**extra))


def passphrase_config(path):
    return at_rest(keySource="passphrase", passphraseFile=path)


def wrapped_path(b):
    return os.path.join(b.datadir, "keystore", "datakey.wrapped")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def key_set(b, name, value):
    cp = b.cli("key", "set", name, input=value + "\n")
    assert cp.returncode == 0, "key set: %d\n%s%s" % (cp.returncode, cp.stdout, cp.stderr)
    assert value not in cp.stdout + cp.stderr
    return cp


def key_get(b, name):
    cp = b.cli("key", "get", name)
    assert cp.returncode == 0, "key get: %d\n%s%s" % (cp.returncode, cp.stdout, cp.stderr)
    return cp.stdout


def assert_nowhere_in_plaintext(b, *needles):
    """No file under dataDir, and no stderr of any broker run, holds a needle."""
    encoded = [n.encode() for n in needles]
    seen = 0
    for top, _, files in os.walk(b.datadir):
        for name in files:
            path = os.path.join(top, name)
            data = read_bytes(path)
            seen += 1
            for n in encoded:
                assert n not in data, "%s holds a secret in plaintext" % path
    assert seen > 0, "nothing under %s" % b.datadir
    for _, path in b.history:
        text = b.stderr(path)
        for n in needles:
            assert n not in text, "keywardend's stderr (%s) holds a secret" % path


def round_trip_and_restart(b, env, magic, blob_len):
    """set + get, restart, get again; the wrapped data key is made once and reused."""
    value = new_value()
    key_set(b, "anthropic", value)
    assert key_get(b, "anthropic") == value + "\n"

    blob = read_bytes(wrapped_path(b))
    assert blob[:4] == magic, blob[:4]
    assert len(blob) == blob_len
    assert file_mode(wrapped_path(b)) == 0o600
    # The provider holds the master key: no key file of its own on disk.
    assert not os.path.exists(os.path.join(b.datadir, "provider.key"))
    assert not os.path.exists(os.path.join(b.datadir, "keystore", "master.key"))

    assert b.stop() == 0
    b.start(env=env)
    assert key_get(b, "anthropic") == value + "\n"
    assert read_bytes(wrapped_path(b)) == blob, "the data key was made again at restart"

    # A second key under the same data key, read after one more restart.
    other = new_value()
    key_set(b, "other", other)
    assert b.stop() == 0
    b.start(env=env)
    assert key_get(b, "other") == other + "\n"
    assert key_get(b, "anthropic") == value + "\n"
    return value, other


# ---- passphrase ---------------------------------------------------------------

def test_passphrase_round_trip_and_restart(broker_factory, tmpdir_short):
    passphrase = "tr0ub4dor & " + secrets.token_hex(16)
    path = os.path.join(tmpdir_short, "passphrase")
    write_secret_file(path, passphrase + "\n")
    env = clean_env()
    b = broker_factory(passphrase_config(path), start=False)
    b.start(env=env)

    values = round_trip_and_restart(b, env, b"PWH1", 4 + 16 + 24 + 32 + 16)
    assert b.stop() == 0
    assert_nowhere_in_plaintext(b, passphrase, *values)


def test_passphrase_from_systemd_credential(broker_factory, tmpdir_short):
    creds = os.path.join(tmpdir_short, "creds")
    os.mkdir(creds, 0o700)
    write_secret_file(os.path.join(creds, "keywarden-passphrase"), "from a credential", 0o400)
    env = clean_env({"CREDENTIALS_DIRECTORY": creds})
    b = broker_factory(at_rest(keySource="passphrase"), start=False)
    b.start(env=env)
    value = new_value()
    key_set(b, "anthropic", value)
    assert b.stop() == 0
    b.start(env=env)
    assert key_get(b, "anthropic") == value + "\n"


def test_passphrase_wrong_refused_at_start(broker_factory, tmpdir_short):
    path = os.path.join(tmpdir_short, "passphrase")
    write_secret_file(path, "the right one\n")
    env = clean_env()
    b = broker_factory(passphrase_config(path), start=False)
    b.start(env=env)
    value = new_value()
    key_set(b, "anthropic", value)
    assert b.stop() == 0
    blob = read_bytes(wrapped_path(b))

    write_secret_file(path, "the wrong one\n")
    b.start(env=env, wait=False)
    assert b.wait_exit() == EXIT_RUNTIME
    assert "wrong passphrase or damaged data key" in b.stderr()
    assert "the wrong one" not in b.stderr() and "the right one" not in b.stderr()
    # Nothing was remade or destroyed: the right passphrase still opens it.
    assert read_bytes(wrapped_path(b)) == blob
    write_secret_file(path, "the right one\n")
    b.start(env=env)
    assert key_get(b, "anthropic") == value + "\n"


@pytest.mark.parametrize("mode, content, expect", [
    (0o640, "readable by the group\n", "chmod 600"),
    (0o604, "readable by others\n", "chmod 600"),
    (0o600, "\n", "empty"),
])
def test_passphrase_file_refused(broker_factory, tmpdir_short, mode, content, expect):
    path = os.path.join(tmpdir_short, "passphrase")
    write_secret_file(path, content, mode)
    b = broker_factory(passphrase_config(path), start=False)
    b.start(env=clean_env(), wait=False)
    assert b.wait_exit() == EXIT_CONFIG
    assert expect in b.stderr()
    assert not os.path.exists(wrapped_path(b))


# ---- pkcs11 -------------------------------------------------------------------

def test_pkcs11_round_trip_and_restart(broker_factory, hsm):
    b = broker_factory(pkcs11_config(hsm), start=False)
    b.start(env=hsm.env)

    values = round_trip_and_restart(b, hsm.env, b"P11G", 4 + 12 + 32 + 16)
    assert b.stop() == 0
    assert_nowhere_in_plaintext(b, *values)


def test_pkcs11_wrong_pin_refused_at_start(broker_factory, hsm):
    b = broker_factory(pkcs11_config(hsm), start=False)
    b.start(env=hsm.env)
    value = new_value()
    key_set(b, "anthropic", value)
    assert b.stop() == 0
    blob = read_bytes(wrapped_path(b))

    write_secret_file(hsm.pin_file, "9999\n")
    b.start(env=hsm.env, wait=False)
    assert b.wait_exit() == EXIT_RUNTIME
    assert "HSM login failed (CKR_PIN_INCORRECT)" in b.stderr()
    assert read_bytes(wrapped_path(b)) == blob

    write_secret_file(hsm.pin_file, USER_PIN + "\n")
    b.start(env=hsm.env)
    assert key_get(b, "anthropic") == value + "\n"


def test_pkcs11_wrong_pin_on_first_start(broker_factory, hsm):
    write_secret_file(hsm.pin_file, "0000")
    b = broker_factory(pkcs11_config(hsm), start=False)
    b.start(env=hsm.env, wait=False)
    assert b.wait_exit() == EXIT_RUNTIME
    assert "HSM login failed (CKR_PIN_INCORRECT)" in b.stderr()
    assert not os.path.exists(wrapped_path(b))


def test_pkcs11_missing_key_refused_at_start(broker_factory, hsm):
    b = broker_factory(pkcs11_config(hsm, obj="object=nokey;type=secret"), start=False)
    b.start(env=hsm.env, wait=False)
    assert b.wait_exit() == EXIT_CONFIG
    assert "no secret key in the HSM token matches" in b.stderr()


def test_pkcs11_tampered_data_key_refused(broker_factory, hsm):
    b = broker_factory(pkcs11_config(hsm), start=False)
    b.start(env=hsm.env)
    value = new_value()
    key_set(b, "anthropic", value)
    assert b.stop() == 0

    path = wrapped_path(b)
    blob = read_bytes(path)
    bad = bytearray(blob)
    bad[-1] ^= 0x01
    with open(path, "wb") as f:
        f.write(bytes(bad))
    b.start(env=hsm.env, wait=False)
    assert b.wait_exit() == EXIT_RUNTIME
    assert "HSM refused to unwrap the data key (CKR_" in b.stderr()
    assert value not in b.stderr()

    with open(path, "wb") as f:
        f.write(blob)
    b.start(env=hsm.env)
    assert key_get(b, "anthropic") == value + "\n"
