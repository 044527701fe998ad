"""The keychain backend (api.keySource keychain) against a real Secret Service.

Each test gets a private D-Bus session with gnome-keyring in it, headless
(TESTING.md): a small shell wrapper, launched under dbus-run-session with
its own HOME and XDG_RUNTIME_DIR, unlocks the login keyring, writes the
session bus address to a file and stays up.  The broker, the CLI and
secret-tool then run in that session (DBUS_SESSION_BUS_ADDRESS).  The
interoperability contract is secret-tool's: items are found by
service + account, in either direction.
"""
import json
import os
import pwd
import signal
import subprocess
import time

import pytest

from conftest import IO_TIMEOUT, START_TIMEOUT, clean_env, run_broker_once
from users import ok

ACCOUNT = pwd.getpwuid(os.geteuid()).pw_name
SERVICE = "anthropic-api-key"
VALUE1 = "sk-ant-api03-keychainFirst_0123456789abcdefgh"
VALUE2 = "sk-ant-api03-keychainSecond_0123456789abcdefg"
VALUE3 = "sk-ant-api03-keychainThird_0123456789abcdefgh"

BUS_WRAPPER = """#!/bin/sh
# A headless Secret Service for one test: unlock gnome-keyring's login
# collection, publish the session bus address, and keep the session up.
set -e
eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets)"
printf '%s\\n' "$DBUS_SESSION_BUS_ADDRESS" > "$1.tmp"
mv "$1.tmp" "$1"
exec sleep 3600
"""


class Keyring:
    """A dbus-run-session with gnome-keyring; .env for processes inside it."""

    def __init__(self, root):
        self.root = root
        home = os.path.join(root, "home")
        xdg = os.path.join(root, "xdg")
        os.makedirs(home, mode=0o700)
        os.makedirs(xdg, mode=0o700)
        wrapper = os.path.join(root, "keyring-session.sh")
        with open(wrapper, "w") as f:
            f.write(BUS_WRAPPER)
        addr_file = os.path.join(root, "bus-address")
        self.log = open(os.path.join(root, "keyring-session.log"), "wb")
        self.proc = subprocess.Popen(
            ["dbus-run-session", "--", "sh", wrapper, addr_file],
            env={"PATH": "/usr/bin:/bin", "HOME": home, "XDG_RUNTIME_DIR": xdg},
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(addr_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with open(os.path.join(root, "keyring-session.log"), "rb") as f:
                    raise AssertionError("no Secret Service session:\n%s" % f.read().decode())
            time.sleep(0.02)
        with open(addr_file) as f:
            addr = f.read().strip()
        self.env = {"DBUS_SESSION_BUS_ADDRESS": addr, "HOME": home, "XDG_RUNTIME_DIR": xdg}

    def secret_tool(self, *args, input=None):
        cp = subprocess.run(["secret-tool"] + list(args), env=clean_env(self.env),
                            input=input.encode() if input is not None else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=IO_TIMEOUT * 3)
        return subprocess.CompletedProcess(cp.args, cp.returncode,
                                           cp.stdout.decode("utf-8", "replace"),
                                           cp.stderr.decode("utf-8", "replace"))

    def lookup(self, service=SERVICE):
        """The value secret-tool finds for (service, ACCOUNT), or None."""
        cp = self.secret_tool("lookup", "service", service, "account", ACCOUNT)
        return cp.stdout if cp.returncode == 0 else None

    def stop(self):
        if self.proc.poll() is None:
            # The whole session: dbus-daemon, gnome-keyring-daemon, the wrapper.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture
def keyring(tmpdir_short):
    k = Keyring(tmpdir_short)
    yield k
    k.stop()


KEYCHAIN = {
    "api": {"keySource": "keychain", "keychainService": SERVICE},
    "security": {"authentication": {"mfa": {"required": False}}},
}


@pytest.fixture
def kc_broker(broker_factory, keyring):
    b = broker_factory(KEYCHAIN, start=False)
    b.start(env=clean_env(keyring.env))
    b.keyring = keyring
    return b


def cli(b, *args, input=None):
    return b.cli(*args, input=input, env=b.keyring.env)


def get(b, name="anthropic", *more):
    return ok(cli(b, "key", "get", name, *more))


def test_set_is_found_by_secret_tool_and_secret_tool_store_is_read(kc_broker):
    b, kr = kc_broker, kc_broker.keyring
    ok(cli(b, "key", "set", "anthropic", input=VALUE1))
    assert kr.lookup() == VALUE1

    cp = kr.secret_tool("store", "--label=x", "service", SERVICE, "account", ACCOUNT,
                        input=VALUE2)
    assert cp.returncode == 0, cp.stderr
    assert get(b) == VALUE2 + "\n"
    # secret-tool replaced our item rather than adding a second one.
    search = kr.secret_tool("search", "--all", "service", SERVICE, "account", ACCOUNT)
    assert search.stdout.count("label = ") + search.stderr.count("label = ") == 1, search


def test_secret_tool_value_with_a_newline(kc_broker):
    # `echo KEY | secret-tool store ...` stores the newline with the key.
    b, kr = kc_broker, kc_broker.keyring
    ok(cli(b, "key", "set", "anthropic", input=VALUE1 + "\n"))
    assert kr.lookup() == VALUE1
    cp = kr.secret_tool("store", "--label=x", "service", SERVICE, "account", ACCOUNT,
                        input=VALUE2 + "\n")
    assert cp.returncode == 0, cp.stderr
    assert get(b) == VALUE2 + "\n"


def test_item_carries_only_service_and_account(kc_broker):
    b, kr = kc_broker, kc_broker.keyring
    ok(cli(b, "key", "set", "anthropic", input=VALUE1))
    ok(cli(b, "key", "set", "other", input=VALUE2))
    # Other names live under a service of their own; the default key is untouched.
    assert kr.lookup("keywarden:other") == VALUE2
    assert kr.lookup() == VALUE1
    cp = kr.secret_tool("search", "--all", "account", ACCOUNT)
    text = cp.stdout + cp.stderr
    assert "label = keywarden: anthropic" in text and "label = keywarden: other" in text, text
    attrs = sorted({line.split("=")[0].strip() for line in text.splitlines()
                    if line.startswith("attribute.")})
    # Attributes are not confidential: nothing but the lookup keys goes there.
    assert attrs == ["attribute.account", "attribute.service"], text


def test_versions_keychain_keeps_the_current_value_only(kc_broker):
    b, kr = kc_broker, kc_broker.keyring
    ok(cli(b, "key", "set", "anthropic", input=VALUE1))
    ok(cli(b, "key", "set", "anthropic", input=VALUE2))
    # set destroys the previous version at the next key operation; that must
    # not take the item, which now holds version 2.
    ok(cli(b, "key", "list"))
    assert get(b) == VALUE2 + "\n"
    assert kr.lookup() == VALUE2
    assert cli(b, "key", "get", "anthropic", "--version", "1").returncode != 0

    ok(cli(b, "key", "rotate", "anthropic", input=VALUE3))
    assert get(b) == VALUE3 + "\n"
    # The keychain no longer has version 2: rotation gave it no grace.
    cp = cli(b, "key", "get", "anthropic", "--version", "2")
    assert cp.returncode != 0 and VALUE2 not in cp.stdout + cp.stderr, cp
    assert get(b, "anthropic", "--version", "3") == VALUE3 + "\n"

    # Across a restart the backend still knows which version the item holds:
    # asking it to destroy another version leaves the item alone.
    assert b.stop() == 0
    b.start(env=clean_env(kr.env))
    cp = cli(b, "key", "revoke", "anthropic", "--version", "2")
    assert cp.returncode == 1 and "no version 2" in cp.stderr, cp
    ok(cli(b, "key", "list"))
    assert kr.lookup() == VALUE3
    assert get(b) == VALUE3 + "\n"

    ok(cli(b, "key", "revoke", "anthropic"))
    assert kr.lookup() is None
    assert cli(b, "key", "get", "anthropic").returncode != 0


def test_rotate_promises_no_grace_the_keychain_cannot_give(kc_broker):
    b, kr = kc_broker, kc_broker.keyring
    ok(cli(b, "key", "set", "anthropic", input=VALUE1))
    # JSON: no grace_until, and why not.
    res = json.loads(ok(cli(b, "key", "rotate", "anthropic", "--json", input=VALUE2)))
    assert res["version"] == 2 and res["previous"] == 1, res
    assert res["grace_until"] is None, res
    assert "keeps one value per key" in res["grace_unavailable"], res
    assert "version 1 was replaced and is no longer readable" in res["grace_unavailable"], res
    # In words: never "stays readable".
    out = ok(cli(b, "key", "rotate", "anthropic", input=VALUE3))
    assert "stays readable" not in out, out
    assert out.strip() == ("anthropic: version 3 is current; the keychain keeps one value per "
                           "key: version 2 was replaced and is no longer readable (no grace "
                           "period)"), out
    assert kr.lookup() == VALUE3
    # key list counts only what can be read: the current version.
    (key,) = json.loads(ok(cli(b, "key", "list", "--json")))["keys"]
    assert [v["version"] for v in key["versions"]] == [3], key
    assert key["versions"][0]["state"] == "current", key
    cp = cli(b, "key", "get", "anthropic", "--version", "2")
    assert cp.returncode == 1 and VALUE2 not in cp.stdout, cp
    # The record says the grace was not given.
    (rec,) = b.audit_rows("action = 'key.rotate' AND json_extract(metadata, '$.version') = 3")
    assert json.loads(rec["metadata"]).get("grace_unavailable") is True, rec


def test_values_stay_out_of_the_data_dir(kc_broker):
    b = kc_broker
    ok(cli(b, "key", "set", "anthropic", input=VALUE1))
    ok(cli(b, "key", "set", "other", input=VALUE2))
    assert b.stop() == 0
    for d, _, files in os.walk(b.datadir):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                data = fh.read()
            assert VALUE1.encode() not in data and VALUE2.encode() not in data, f
    for _, path in b.history:
        assert VALUE1 not in b.stderr(path) and VALUE2 not in b.stderr(path)


def test_no_secret_service_fails_start(broker_factory, tmpdir_short):
    b = broker_factory(KEYCHAIN, start=False)
    env = clean_env({"DBUS_SESSION_BUS_ADDRESS": "unix:path=%s/no-bus" % tmpdir_short})
    cp = run_broker_once(["--config", b.config_path], env=env)
    assert cp.returncode == 1, cp
    assert "Secret Service" in cp.stderr, cp.stderr
