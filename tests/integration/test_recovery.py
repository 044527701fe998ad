"""Lost key material is refused loudly instead of replaced quietly: a broker
that made a new broker secret or data key would lock every user out or turn
every stored API key into an integrity error."""
import os

from conftest import Client, assert_error


def test_missing_broker_secret_with_enrolled_users_is_refused(broker_factory):
    b = broker_factory()
    cp = b.cli("admin", "user", "add", "root", "--json")
    assert cp.returncode == 0, cp.stderr
    assert b.stop() == 0
    key = os.path.join(b.datadir, "broker-secret.wrapped")
    os.rename(key, key + ".away")
    b.start(wait=False)
    assert b.wait_exit() == 1
    assert "broker-secret.wrapped is missing" in b.stderr() and "restore it" in b.stderr()
    assert not os.path.exists(key), "a new broker secret was made"
    assert not os.path.exists(os.path.join(b.datadir, "master.key"))
    # Put back, the broker starts and the user's factor still opens.
    os.rename(key + ".away", key)
    b.start()
    assert b.cli("status").returncode == 0


def test_missing_data_key_with_stored_keys_is_refused(broker_factory):
    b = broker_factory()
    cp = b.cli("key", "set", "anthropic", input="sk-ant-api03-" + "x" * 40 + "\n")
    assert cp.returncode == 0, cp.stderr
    assert b.stop() == 0
    dk = os.path.join(b.datadir, "keystore", "datakey.wrapped")
    os.rename(dk, dk + ".away")
    b.start(wait=False)
    assert b.wait_exit() == 1
    assert "datakey.wrapped is missing" in b.stderr()
    assert not os.path.exists(dk), "a new data key was made"
    os.rename(dk + ".away", dk)
    b.start()
    cp = b.cli("key", "get", "anthropic")
    assert cp.returncode == 0 and cp.stdout == "sk-ant-api03-" + "x" * 40 + "\n"


def test_session_revoke_checks_its_arguments(broker):
    with broker.connect() as c:
        for args in ({"id": "../../zz"}, {"id": "ABCDEF"}, {"user": "a b"}, {"user": "-qq"}):
            r = c.call("session.revoke", args)
            assert_error(r, "invalid_argument")
            # The bad value is not echoed into the message (or the audit record).
            assert list(args.values())[0] not in r["error"]["message"], r
