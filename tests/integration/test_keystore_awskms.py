"""The aws-kms master-key provider against a KMS stand-in of our own.

kms_server.py speaks KMS's JSON protocol on 127.0.0.1 and checks every
request's SigV4 signature for real (the canonical request recomputed with
the secret key), so these tests exercise the broker's real libcurl client:
GenerateDataKey at the first start, Decrypt of datakey.wrapped at the next,
the credentials from the environment, and the refusals at start-up (region
pinning, missing credentials, a bad ARN, a refusing KMS).

The same provider wraps the broker's own secret (broker-secret.wrapped), and
the broker opens that first: each start makes one call for it, then one for
the keystore's data key.
"""
import base64
import json
import os
import re
import subprocess

import pytest

from conftest import START_TIMEOUT, clean_env, end_process, run_broker_once

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "kms_server.py")
ARN = "arn:aws:kms:us-east-1:111122223333:key/TEST"
AKID = "AKIDEXAMPLE0TEST"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLE//session+token=="
VALUE = "sk-ant-api03-" + "kmsTestValue_0123456789-abcdefghijkl"
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY", "no_proxy", "NO_PROXY")
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=%s/(\d{8})/us-east-1/kms/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$" % AKID)


class Kms:
    """One kms_server.py: .port, .url, .records() (one dict per request)."""

    def __init__(self, root, token=""):
        self.record = os.path.join(root, "kms-requests.jsonl")
        argv = ["/usr/bin/python3", SERVER, "--record", self.record, "--access-key", AKID,
                "--secret-key", SECRET, "--key-id", ARN,
                "--aes-key-file", os.path.join(root, "kms-aes.key")]
        if token:
            argv += ["--session-token", token]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, universal_newlines=True)
        line = self.proc.stdout.readline()
        assert line.strip().isdigit(), "kms_server.py did not start: %r %s" % (
            line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.port = int(line)
        self.url = "http://127.0.0.1:%d" % self.port

    def records(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            return [json.loads(line) for line in f if line.strip()]

    def ops(self):
        return [r["op"] for r in self.records()]

    def stop(self):
        end_process(self.proc, 10)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def kms_factory(tmpdir_short):
    made = []

    def make(token=""):
        k = Kms(tmpdir_short, token)
        made.append(k)
        return k
    yield make
    for k in made:
        k.stop()


@pytest.fixture
def kms(kms_factory):
    return kms_factory()


def kms_config(url, key_id=ARN, **residency):
    cfg = {
        "api": {"keySource": "file"},
        "security": {
            "authentication": {"mfa": {"required": False}},
            "encryption": {"atRest": {"keySource": "aws-kms", "kmsKeyId": key_id,
                                      "endpoint": url}},
        },
    }
    if residency:
        cfg["security"]["compliance"] = {"dataResidency": residency}
    return cfg


def aws_env(akid=AKID, secret=SECRET, token=None):
    extra = {}
    if akid is not None:
        extra["AWS_ACCESS_KEY_ID"] = akid
    if secret is not None:
        extra["AWS_SECRET_ACCESS_KEY"] = secret
    if token is not None:
        extra["AWS_SESSION_TOKEN"] = token
    drop = PROXY_VARS + tuple(v for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                          "AWS_SESSION_TOKEN") if v not in extra)
    return clean_env(extra, drop=drop)


def check_signed(rec, token=None):
    """A request the stand-in accepted, with a well-formed SigV4 header set."""
    assert rec["status"] == 200, rec
    assert rec["signature_ok"] is True, rec
    h = rec["headers"]
    m = AUTH_RE.match(h["authorization"])
    assert m, "Authorization not SigV4 for %s in us-east-1/kms: %r" % (AKID, h["authorization"])
    assert re.match(r"^\d{8}T\d{6}Z$", h["x-amz-date"]) and h["x-amz-date"][:8] == m.group(1), h
    signed = m.group(2).split(";")
    for name in ("content-type", "host", "x-amz-date", "x-amz-target"):
        assert name in signed, "%s not signed: %r" % (name, signed)
    assert h["content-type"] == "application/x-amz-json-1.1", h
    assert rec["method"] == "POST" and rec["path"] == "/", rec
    if token:
        assert h.get("x-amz-security-token") == token, h
        assert "x-amz-security-token" in signed, signed
    else:
        assert "x-amz-security-token" not in h, h
    # The secret key is never sent, only used to sign.
    assert SECRET not in json.dumps(rec), rec
    return json.loads(rec["body"])


def set_key(b, name, value):
    cp = b.cli("key", "set", name, input=value)
    assert cp.returncode == 0, cp.stderr
    return cp


def get_key(b, name):
    cp = b.cli("key", "get", name)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def keystore_bytes(b, sub="keystore"):
    """Every file under dataDir/keystore (or dataDir/sub), concatenated."""
    out = b""
    for d, _, files in os.walk(os.path.join(b.datadir, sub)):
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                out += fh.read()
    return out


def data_dir_bytes(b):
    """Every file under dataDir, concatenated."""
    return keystore_bytes(b, "")


def test_data_key_from_kms_and_back_after_restart(broker_factory, kms):
    # The key is in the pinned region: start-up goes ahead.
    b = broker_factory(kms_config(kms.url, region="us-east-1", enforceRegion=True),
                       start=False)
    b.start(env=aws_env())
    # The broker secret's, then the data key's.
    assert kms.ops() == ["GenerateDataKey", "GenerateDataKey"]
    secret_gen, gen = kms.records()
    assert check_signed(secret_gen) == {"KeyId": ARN, "KeySpec": "AES_256"}
    assert check_signed(gen) == {"KeyId": ARN, "KeySpec": "AES_256"}

    set_key(b, "anthropic", VALUE)
    assert get_key(b, "anthropic") == VALUE + "\n"
    # Key operations use the data key in memory: no KMS call per key.
    assert kms.ops() == ["GenerateDataKey", "GenerateDataKey"]

    wrapped_path = os.path.join(b.datadir, "keystore", "datakey.wrapped")
    with open(wrapped_path, "rb") as f:
        wrapped = f.read()
    assert os.stat(wrapped_path).st_mode & 0o777 == 0o600
    # What the broker keeps is the CiphertextBlob; the DEK and the value are nowhere on disk.
    reply = json.loads(gen["reply"])
    assert wrapped == base64.b64decode(reply["CiphertextBlob"])
    dek = base64.b64decode(reply["Plaintext"])
    on_disk = keystore_bytes(b)
    assert dek not in on_disk and VALUE.encode() not in on_disk
    # Likewise the broker secret: only its CiphertextBlob is kept.
    secret_reply = json.loads(secret_gen["reply"])
    with open(os.path.join(b.datadir, "broker-secret.wrapped"), "rb") as f:
        secret_wrapped = f.read()
    assert secret_wrapped == base64.b64decode(secret_reply["CiphertextBlob"])
    assert base64.b64decode(secret_reply["Plaintext"]) not in data_dir_bytes(b)

    assert b.stop() == 0
    b.start(env=aws_env())
    assert kms.ops() == ["GenerateDataKey", "GenerateDataKey", "Decrypt", "Decrypt"]
    recs = kms.records()
    assert check_signed(recs[2]) == {
        "CiphertextBlob": base64.b64encode(secret_wrapped).decode(), "KeyId": ARN}
    dec = check_signed(recs[3])
    assert dec == {"CiphertextBlob": base64.b64encode(wrapped).decode(), "KeyId": ARN}
    assert get_key(b, "anthropic") == VALUE + "\n"
    assert kms.ops() == ["GenerateDataKey", "GenerateDataKey", "Decrypt", "Decrypt"]

    # Neither the value, the data key, the broker secret nor the secret key shows in
    # the broker's output.
    for text in (b.stderr(p) for _, p in b.history):
        assert VALUE not in text and SECRET not in text
        assert reply["Plaintext"] not in text and secret_reply["Plaintext"] not in text


def test_session_token_is_sent_and_signed(broker_factory, kms_factory):
    kms = kms_factory(token=TOKEN)
    b = broker_factory(kms_config(kms.url), start=False)
    b.start(env=aws_env(token=TOKEN))
    set_key(b, "anthropic", VALUE)
    assert b.stop() == 0
    b.start(env=aws_env(token=TOKEN))
    assert get_key(b, "anthropic") == VALUE + "\n"
    recs = kms.records()
    assert [r["op"] for r in recs] == ["GenerateDataKey", "GenerateDataKey", "Decrypt",
                                       "Decrypt"]
    for r in recs:
        check_signed(r, token=TOKEN)


def start_fails(b, env, rc):
    """Start b's broker to completion; it must exit rc.  Returns its stderr."""
    cp = run_broker_once(["--config", b.config_path], env=env, timeout=START_TIMEOUT)
    assert cp.returncode == rc, "exit %d (want %d):\n%s" % (cp.returncode, rc, cp.stderr)
    assert not os.path.exists(b.sock)
    return cp.stderr


def test_key_outside_the_pinned_region_is_refused(broker_factory, kms):
    b = broker_factory(kms_config(kms.url, region="eu-west-1", enforceRegion=True),
                       start=False)
    err = start_fails(b, aws_env(), 2)
    assert ("security.encryption.atRest.kmsKeyId: key is in us-east-1, but "
            "security.compliance.dataResidency.region is eu-west-1") in err, err
    assert kms.records() == []


def test_region_not_enforced_allows_another_region(broker_factory, kms):
    b = broker_factory(kms_config(kms.url, region="eu-west-1", enforceRegion=False),
                       start=False)
    b.start(env=aws_env())
    assert kms.ops() == ["GenerateDataKey", "GenerateDataKey"]


@pytest.mark.parametrize("missing", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_missing_credentials(broker_factory, kms, missing):
    b = broker_factory(kms_config(kms.url), start=False)
    env = aws_env(akid=None if missing == "AWS_ACCESS_KEY_ID" else AKID,
                  secret=None if missing == "AWS_SECRET_ACCESS_KEY" else SECRET)
    err = start_fails(b, env, 2)
    assert missing in err, err
    assert SECRET not in err
    assert kms.records() == []


@pytest.mark.parametrize("key_id", [
    "",
    "not-an-arn",
    "arn:aws:kms:us-east-1:111122223333:TEST",
    "arn:aws:kms:us-east-1:1111:key/TEST",
    "arn:aws:s3:us-east-1:111122223333:key/TEST",
    "arn:aws:kms::111122223333:key/TEST",
    "arn:aws:kms:us-east-1:111122223333:key/",
    "pkcs11:token=keywarden;object=kek",
])
def test_key_id_must_be_a_kms_arn(broker_factory, kms, key_id):
    b = broker_factory(kms_config(kms.url, key_id=key_id), start=False)
    err = start_fails(b, aws_env(), 2)
    assert "security.encryption.atRest.kmsKeyId" in err, err
    assert kms.records() == []


def test_alias_arn_is_accepted(broker_factory, kms_factory):
    alias = "arn:aws:kms:us-east-1:111122223333:alias/keywarden-test"
    kms = kms_factory()
    # The stand-in knows only key/TEST: it refuses the alias by name, which
    # shows the ARN got through parsing and was sent as the KeyId.
    b = broker_factory(kms_config(kms.url, key_id=alias), start=False)
    err = start_fails(b, aws_env(), 1)
    assert "NotFoundException" in err, err
    assert json.loads(kms.records()[0]["body"])["KeyId"] == alias


def test_plain_http_only_to_this_machine(broker_factory, kms):
    b = broker_factory(kms_config("http://kms.example.com/"), start=False)
    err = start_fails(b, aws_env(), 2)
    assert "security.encryption.atRest.endpoint" in err, err


def test_wrong_secret_is_refused_by_kms(broker_factory, kms):
    b = broker_factory(kms_config(kms.url), start=False)
    err = start_fails(b, aws_env(secret="not" + SECRET), 1)
    assert "InvalidSignatureException" in err, err
    assert SECRET not in err
    (rec,) = kms.records()
    assert rec["status"] == 400 and rec["signature_ok"] is False, rec
    assert not os.path.exists(os.path.join(b.datadir, "keystore", "datakey.wrapped"))
    assert not os.path.exists(os.path.join(b.datadir, "broker-secret.wrapped"))


def test_changed_wrapped_key_is_refused(broker_factory, kms):
    b = broker_factory(kms_config(kms.url), start=False)
    b.start(env=aws_env())
    set_key(b, "anthropic", VALUE)
    assert b.stop() == 0
    path = os.path.join(b.datadir, "keystore", "datakey.wrapped")
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    blob[-1] ^= 1
    with open(path, "wb") as f:
        f.write(blob)
    err = start_fails(b, aws_env(), 1)
    assert "InvalidCiphertextException" in err, err
    # The broker secret still opened; the data key did not.
    assert kms.ops() == ["GenerateDataKey", "GenerateDataKey", "Decrypt", "Decrypt"]


def test_unreachable_kms_fails_start(broker_factory, kms):
    port = kms.port
    kms.stop()
    b = broker_factory(kms_config("http://127.0.0.1:%d" % port), start=False)
    err = start_fails(b, aws_env(), 1)
    assert "aws-kms: GenerateDataKey" in err, err
