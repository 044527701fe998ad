"""Configuration: what the broker refuses, and `keywarden config`."""
import json
import os

import pytest

from conftest import (START_TIMEOUT, assert_ok, clean_env, file_mode, run_broker_once,
                      run_cli)


def broker_rejects(b, key=None, rc=2):
    """Start b's broker and expect it to exit rc without listening."""
    b.start(wait=False)
    got = b.wait_exit(START_TIMEOUT)
    err = b.stderr()
    assert got == rc, (got, err)
    assert not os.path.lexists(b.sock), "refused config but created the socket"
    if key:
        assert key in err, err
    assert err.startswith("keywardend: ") or "\nkeywardend: " in err, err
    return err


BAD_VALUES = [
    ({"security": {"session": {"timeout": "abc"}}}, "security.session.timeout"),
    ({"security": {"session": {"timeout": -5}}}, "security.session.timeout"),
    ({"security": {"session": {"timeout": 1.5}}}, "security.session.timeout"),
    ({"security": {"session": {"timeout": True}}}, "security.session.timeout"),
    ({"api": {"keySource": "floppy"}}, "api.keySource"),
    ({"api": {"keySource": 3}}, "api.keySource"),
    ({"security": {"sensitivePatterns": "password"}}, "security.sensitivePatterns"),
    ({"security": {"sensitivePatterns": ["a", 1]}}, "security.sensitivePatterns"),
    ({"security": {"readOnly": "yes"}}, "security.readOnly"),
    ({"broker": {"clientTimeout": "x"}}, "broker.clientTimeout"),
    ({"broker": {"clientTimeout": 0}}, "broker.clientTimeout"),
    ({"broker": {"maxClients": -1}}, "broker.maxClients"),
    ({"api": {"proxy": {"port": 70000}}}, "api.proxy.port"),
]


@pytest.mark.parametrize("extra,key", BAD_VALUES, ids=[k for _, k in BAD_VALUES])
def test_bad_value_exit_2(broker_factory, extra, key):
    b = broker_factory(extra, start=False)
    err = broker_rejects(b, key)
    assert b.config_path in err, err
    # --check-config says the same without starting.
    cp = run_broker_once(["--config", b.config_path, "--check-config"])
    assert cp.returncode == 2, cp
    assert key in cp.stderr, cp.stderr


def test_wrong_type_message(broker_factory):
    b = broker_factory({"security": {"session": {"timeout": "abc"}}}, start=False)
    err = broker_rejects(b)
    assert "keywardend: config: %s: security.session.timeout: expected a number of seconds" \
        % b.config_path in err, err


@pytest.mark.parametrize("text", ['{"security": {', "", "[1, 2]", '{"broker": }', "nope",
                                  '{"a": 1} {"b": 2}'])
def test_unparsable_exit_2(broker_factory, text):
    b = broker_factory(start=False)
    b.write_config_text(text)
    err = broker_rejects(b)
    assert b.config_path in err, err
    cp = run_broker_once(["--config", b.config_path, "--check-config"])
    assert cp.returncode == 2, cp


@pytest.mark.parametrize("mode", [0o666, 0o622, 0o620, 0o602])
def test_writable_config_refused(broker_factory, mode):
    b = broker_factory(start=False)
    os.chmod(b.config_path, mode)
    err = broker_rejects(b)
    assert b.config_path in err, err
    assert any(w in err.lower() for w in ("writable", "permission", "mode", "insecure")), err


def test_config_owned_by_other_user_refused(broker_factory):
    b = broker_factory(start=False)
    os.chown(b.config_path, 65534, 65534)
    assert file_mode(b.config_path) == 0o600
    err = broker_rejects(b)
    assert b.config_path in err, err
    assert any(w in err.lower() for w in ("owner", "owned", "uid", "user")), err


def test_config_owned_by_root_group_other_ok(broker_factory):
    """Owned by root with another group, not group-writable: accepted."""
    b = broker_factory(start=False)
    os.chown(b.config_path, 0, 65534)
    os.chmod(b.config_path, 0o640)
    b.start()
    with b.connect() as c:
        assert_ok(c.call("status"))


def test_unknown_key_warns_and_runs(broker_factory):
    b = broker_factory({"security": {"bogusSetting": 1, "session": {"colour": "red"}},
                        "nosuchsection": {"x": 1}})
    err = b.wait_stderr("security.bogusSetting")
    assert "security.session.colour" in b.stderr()
    assert "nosuchsection" in b.stderr()
    with b.connect() as c:
        assert_ok(c.call("status"))
    assert b.cli("status").returncode == 0
    assert err


def test_keywarden_config_env(broker_factory):
    """Without --config the broker reads $KEYWARDEN_CONFIG."""
    b = broker_factory(start=False)
    b.start(use_config_flag=False, env=clean_env({"KEYWARDEN_CONFIG": b.config_path}))
    cp = b.cli("status", "--json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["broker"]["socket"] == b.sock


def test_check_config(broker_factory):
    b = broker_factory({"security": {"session": {"timeout": 1800}}}, start=False)
    cp = run_broker_once(["--config", b.config_path, "--check-config"])
    assert cp.returncode == 0, cp.stderr
    assert not os.path.lexists(b.sock), "--check-config must not start a broker"
    assert not os.path.exists(os.path.join(b.datadir, "audit.db"))
    b.write_config({"api": {"keySource": "floppy"}})
    cp = run_broker_once(["--config", b.config_path, "--check-config"])
    assert cp.returncode == 2
    assert "api.keySource" in cp.stderr


# --------------------------------------------------------------------------
# keywarden config get/set/list
# --------------------------------------------------------------------------

@pytest.fixture
def cfgdir(tmpdir_short):
    d = os.path.join(tmpdir_short, "etc")
    os.makedirs(d, mode=0o700)
    return d


def kwcfg(path, *args, input=None):
    return run_cli(["--config", path, "config"] + list(args),
                   env=clean_env({"KEYWARDEN_SOCKET": "/nonexistent/kw.sock"}), input=input)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def dig(doc, dotted):
    for part in dotted.split("."):
        doc = doc[part]
    return doc


def lookup(doc, key):
    """A key's value in `config list/get --json` output, whichever layout it
    uses: flat {"a.b": v}, nested {"a": {"b": v}}, [{"key": "a.b", "value": v}],
    entries of {"value": v, ...}, or one wrapping object."""
    if isinstance(doc, list):
        for e in doc:
            if isinstance(e, dict) and key in (e.get("key"), e.get("path"), e.get("name")):
                return e.get("value")
        raise KeyError(key)
    if isinstance(doc, dict):
        if key in (doc.get("key"), doc.get("path"), doc.get("name")) and "value" in doc:
            return doc["value"]
        if key in doc:
            v = doc[key]
            if isinstance(v, dict) and "value" in v:
                return v["value"]
            return v
        try:
            return dig(doc, key)
        except (KeyError, TypeError):
            pass
        for wrap in ("config", "keys", "settings", "entries", "values"):
            if wrap in doc:
                return lookup(doc[wrap], key)
    raise KeyError(key)


def seed_file(cfgdir, doc=None):
    path = os.path.join(cfgdir, "config.json")
    with open(path, "w") as f:
        json.dump(doc if doc is not None else {"broker": {"socket": "/tmp/kw-x.sock"}}, f)
    os.chmod(path, 0o600)
    return path


def test_config_set_get(cfgdir):
    path = seed_file(cfgdir)
    cp = kwcfg(path, "set", "security.session.timeout", "1800")
    assert cp.returncode == 0, cp.stderr
    cp = kwcfg(path, "get", "security.session.timeout")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "1800"
    cp = kwcfg(path, "get", "security.session.timeout", "--json")
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    assert doc == 1800 or lookup(doc, "security.session.timeout") == 1800 \
        or (isinstance(doc, dict) and doc.get("value") == 1800), doc
    data = read_json(path)
    assert data["security"]["session"]["timeout"] == 1800
    assert data["broker"]["socket"] == "/tmp/kw-x.sock", "other keys kept"
    assert file_mode(path) == 0o600
    assert sorted(os.listdir(cfgdir)) == ["config.json"], "temporary files left"
    # The broker accepts what the CLI wrote.
    cp = run_broker_once(["--config", path, "--check-config"])
    assert cp.returncode == 0, cp.stderr


def test_config_set_keeps_0600_after_many_writes(cfgdir):
    path = seed_file(cfgdir)
    for v in (10, 20, 30):
        assert kwcfg(path, "set", "security.session.timeout", str(v)).returncode == 0
        assert file_mode(path) == 0o600
    assert read_json(path)["security"]["session"]["timeout"] == 30


def test_config_set_creates_file(tmpdir_short):
    path = os.path.join(tmpdir_short, "new", "sub", "config.json")
    cp = kwcfg(path, "set", "security.session.maxSessions", "3")
    assert cp.returncode == 0, cp.stderr
    assert file_mode(path) == 0o600
    assert read_json(path)["security"]["session"]["maxSessions"] == 3
    assert kwcfg(path, "get", "security.session.maxSessions").stdout.strip() == "3"


def test_config_set_json_array(cfgdir):
    path = seed_file(cfgdir)
    cp = kwcfg(path, "set", "security.sensitivePatterns", '["a","b"]')
    assert cp.returncode == 0, cp.stderr
    assert read_json(path)["security"]["sensitivePatterns"] == ["a", "b"]
    cp = kwcfg(path, "get", "security.sensitivePatterns", "--json")
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    assert doc == ["a", "b"] or lookup(doc, "security.sensitivePatterns") == ["a", "b"], doc


def test_config_set_plain_string(cfgdir):
    path = seed_file(cfgdir)
    cp = kwcfg(path, "set", "api.keySource", "keychain")
    assert cp.returncode == 0, cp.stderr
    assert read_json(path)["api"]["keySource"] == "keychain"
    assert kwcfg(path, "get", "api.keySource").stdout.strip() == "keychain"
    # A JSON string is accepted too.
    cp = kwcfg(path, "set", "api.keySource", '"file"')
    assert cp.returncode == 0, cp.stderr
    assert read_json(path)["api"]["keySource"] == "file"
    # Booleans are JSON.
    cp = kwcfg(path, "set", "security.readOnly", "true")
    assert cp.returncode == 0, cp.stderr
    assert read_json(path)["security"]["readOnly"] is True


BAD_SETS = [
    ("security.session.timeout", "abc"),
    ("security.session.timeout", "-1"),
    ("security.session.timeout", "1.5"),
    ("api.keySource", "floppy"),
    ("security.sensitivePatterns", "[1,2]"),
    ("security.readOnly", "maybe"),
    ("security.noSuchKey", "1"),
    ("nosuch", "1"),
    ("security.session", "{}"),
]


@pytest.mark.parametrize("key,value", BAD_SETS, ids=["%s=%s" % kv for kv in BAD_SETS])
def test_config_set_invalid_leaves_file(cfgdir, key, value):
    path = seed_file(cfgdir, {"broker": {"socket": "/tmp/kw-x.sock"},
                              "security": {"session": {"timeout": 900}}})
    before = read_bytes(path)
    st = os.stat(path)
    cp = kwcfg(path, "set", key, value)
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    assert key in cp.stderr, cp.stderr
    assert read_bytes(path) == before
    assert os.stat(path).st_ino == st.st_ino
    assert sorted(os.listdir(cfgdir)) == ["config.json"]


@pytest.mark.parametrize("key", ["security.noSuchKey", "nosuch"])
def test_config_get_unknown_key(cfgdir, key):
    path = seed_file(cfgdir)
    cp = kwcfg(path, "get", key)
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    assert key in cp.stderr


def test_config_list_defaults(cfgdir):
    path = seed_file(cfgdir, {})
    cp = kwcfg(path, "list", "--json")
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    assert lookup(doc, "security.session.timeout") == 3600
    assert lookup(doc, "security.session.maxSessions") == 5
    assert lookup(doc, "security.audit.retention") == 90
    assert lookup(doc, "api.keySource") == "file"
    cp = kwcfg(path, "list")
    assert cp.returncode == 0, cp.stderr
    assert "security.session.timeout" in cp.stdout
    assert "3600" in cp.stdout
    # Values set in the file show in the list.
    assert kwcfg(path, "set", "security.session.timeout", "1234").returncode == 0
    doc = json.loads(kwcfg(path, "list", "--json").stdout)
    assert lookup(doc, "security.session.timeout") == 1234


def test_config_get_default_of_missing_file(tmpdir_short):
    path = os.path.join(tmpdir_short, "absent.json")
    cp = kwcfg(path, "get", "security.session.timeout")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "3600"
    assert not os.path.exists(path), "get must not create the file"


SECRETS = ["security.audit.encryptionKey", "api.proxy.auth.password"]


@pytest.mark.parametrize("key", SECRETS)
def test_secret_not_taken_from_argv(cfgdir, key):
    """Secrets never go through argv (DESIGN.md): refused, file unchanged."""
    path = seed_file(cfgdir)
    before = read_bytes(path)
    cp = kwcfg(path, "set", key, "Zq8-very-secret-Value-4711")
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    assert key in cp.stderr
    assert "Zq8-very-secret-Value-4711" not in cp.stderr
    assert read_bytes(path) == before


@pytest.mark.parametrize("key", SECRETS)
def test_secret_keys_masked(cfgdir, key):
    path = seed_file(cfgdir)
    secret = "Zq8-very-secret-Value-4711"
    cp = kwcfg(path, "set", key, input=secret + "\n")
    assert cp.returncode == 0, cp.stderr
    assert secret not in cp.stdout + cp.stderr
    assert dig(read_json(path), key) == secret, "the value is stored, without the newline"
    assert file_mode(path) == 0o600
    for args in (["get", key], ["get", key, "--json"], ["list"], ["list", "--json"]):
        cp = kwcfg(path, *args)
        assert cp.returncode == 0, (args, cp.stderr)
        assert secret not in cp.stdout + cp.stderr, args
        assert secret[:8] not in cp.stdout, args
    cp = kwcfg(path, "get", key)
    assert cp.stdout.strip(), "a set secret shows as masked, not as nothing"
    cp = kwcfg(path, "list")
    assert key in cp.stdout


@pytest.mark.parametrize("key", SECRETS)
def test_secret_written_to_file_masked(cfgdir, key):
    """A secret put in the file by hand is masked as well."""
    secret = "Hand-written-Secret-9931"
    doc = {}
    parts = key.split(".")
    cur = doc
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = secret
    path = seed_file(cfgdir, doc)
    for args in (["get", key], ["get", key, "--json"], ["list"], ["list", "--json"]):
        cp = kwcfg(path, *args)
        assert cp.returncode == 0, (args, cp.stderr)
        assert secret not in cp.stdout + cp.stderr, args


@pytest.mark.parametrize("key", SECRETS)
def test_secret_env_reference_from_argv(cfgdir, key):
    """A ${VAR} reference is not a secret: accepted from argv and stored as is."""
    path = seed_file(cfgdir)
    cp = kwcfg(path, "set", key, "${KW_TEST_SECRET}")
    assert cp.returncode == 0, cp.stderr
    assert dig(read_json(path), key) == "${KW_TEST_SECRET}"


def test_set_refuses_what_the_broker_would_refuse_and_keeps_the_file(tmpdir_short):
    """A regex that does not compile, or a path entry the policy cannot read, is refused
    by config set as the broker would refuse it at start; the file stays as it was."""
    path = os.path.join(tmpdir_short, "config.json")
    cp = kwcfg(path, "set", "security.filters.patterns",
               '[{"name": "x", "regex": "(a", "replacement": "[X]"}]')
    assert cp.returncode == 2 and "security.filters.patterns[0].regex" in cp.stderr, cp.stderr
    assert not os.path.exists(path), "a refused set left a file behind"
    assert kwcfg(path, "set", "security.session.timeout", "600").returncode == 0
    before = read_bytes(path)
    for key, value, named in [
            ("security.deniedPaths", '["etc"]', "security.deniedPaths"),
            ("security.secrets.rules", '[{"id": "mine", "regex": "[", "keywords": ["k"]}]',
             "security.secrets.rules[0].regex")]:
        cp = kwcfg(path, "set", key, value)
        assert cp.returncode == 2 and named in cp.stderr, (key, cp.stderr)
        assert read_bytes(path) == before, key
