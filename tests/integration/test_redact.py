"""
`keywarden redact` through the real CLI, run as alice (an unprivileged user),
and the broker refusing a pattern that does not compile.

Every token is generated here at run time in its provider's public shape; no
real key is in the repository.  No matched value may appear in any output
but as its replacement: each test checks stdout and stderr for them.
"""
import json
import os
import random
import shutil
import stat
import string
import subprocess
import threading
import time

import pytest

from conftest import (BROKER_BIN, CLI_BIN, SANITIZE, clean_env, run_broker_once,
                      short_tmpdir)
from users import USERS, run_as_user, setpriv

USER = "alice"
ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as alice")


def rand(alphabet, n, rng=random.Random(14)):
    return "".join(rng.choice(alphabet) for _ in range(n))


def anthropic_key():
    return "sk-ant-api03-" + rand(B64URL, 93) + "AA"


def github_token():
    return "ghp_" + rand(ALNUM, 36)


@pytest.fixture
def home():
    """A directory of alice's (reachable by her), with an empty config file of hers."""
    root = short_tmpdir()
    os.chmod(root, 0o755)
    d = os.path.join(root, "home")
    os.mkdir(d, 0o700)
    uid, gid = USERS[USER]
    os.chown(d, uid, gid)
    yield d
    shutil.rmtree(root, ignore_errors=True)


def put(path, text, mode=0o600):
    uid, gid = USERS[USER]
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    os.chown(path, uid, gid)


def config(home, doc):
    path = os.path.join(home, "config.json")
    put(path, json.dumps(doc))
    return path


def redact(home, *args, input=None, cfg=None, timeout=None):
    cfg = cfg or config(home, {})
    env = clean_env({"HOME": home})
    return run_as_user(USER, [CLI_BIN, "--config", cfg, "redact"] + list(args), env, cwd=home,
                       input=input, timeout=timeout)


def no_secret_in(cp, *secrets):
    for s in secrets:
        assert s not in cp.stdout and s not in cp.stderr, "a matched value was printed"


def test_stdin_to_stdout(home):
    key, gh = anthropic_key(), github_token()
    text = "user bob@example.com sent %s\nand %s, ssn 123-45-6789\nplain line\n" % (key, gh)
    cp = redact(home, input=text)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == ("user [EMAIL] sent [REDACTED:anthropic-api-key]\n"
                         "and [REDACTED:github-token], ssn [SSN]\nplain line\n")
    assert cp.stderr == ""
    no_secret_in(cp, key, gh)


def test_files_to_stdout_and_json_on_stderr(home):
    key = anthropic_key()
    a, b = os.path.join(home, "a.log"), os.path.join(home, "b.log")
    put(a, "one %s\n" % key)
    put(b, "two bob@example.com carol@example.com\n")
    cp = redact(home, "--json", a, b)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == "one [REDACTED:anthropic-api-key]\ntwo [EMAIL] [EMAIL]\n"
    report = json.loads(cp.stderr)
    assert report == {"counts": {"anthropic-api-key": 1, "email": 2},
                      "files": [{"file": a, "counts": {"anthropic-api-key": 1}},
                                {"file": b, "counts": {"email": 2}}]}
    no_secret_in(cp, key)
    with open(a) as f:
        assert key in f.read(), "without --in-place the file is left alone"


def test_in_place_keeps_mode_and_replaces_atomically(home):
    key = anthropic_key()
    path, clean = os.path.join(home, "app.env"), os.path.join(home, "clean.txt")
    put(path, "A=1\nANTHROPIC_API_KEY=%s\nB=bob@example.com\n" % key, mode=0o640)
    put(clean, "nothing here\n", mode=0o604)
    before, before_clean = os.stat(path), os.stat(clean)
    cp = redact(home, "--in-place", "--json", path, clean)
    assert cp.returncode == 0, cp.stderr
    report = json.loads(cp.stdout)
    assert report["counts"] == {"anthropic-api-key": 1, "email": 1}
    assert report["files"][1] == {"file": clean, "counts": {}}
    no_secret_in(cp, key)
    with open(path) as f:
        assert f.read() == "A=1\nANTHROPIC_API_KEY=[REDACTED:anthropic-api-key]\nB=[EMAIL]\n"
    after = os.stat(path)
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert (after.st_uid, after.st_gid) == USERS[USER]
    # A new file renamed over the old one (readers see one or the other, never a mix).
    assert after.st_ino != before.st_ino
    assert sorted(os.listdir(home)) == ["app.env", "clean.txt", "config.json"], \
        "no temporary file left"
    # A file without findings is not rewritten.
    after_clean = os.stat(clean)
    assert (after_clean.st_ino, after_clean.st_mtime_ns) == (before_clean.st_ino,
                                                             before_clean.st_mtime_ns)


def test_in_place_refuses_a_link_and_stdin(home):
    target = os.path.join(home, "t.txt")
    put(target, "bob@example.com\n")
    link = os.path.join(home, "l.txt")
    os.symlink(target, link)
    cp = redact(home, "--in-place", link)
    assert cp.returncode != 0 and "symbolic link" in cp.stderr, cp.stderr
    cp = redact(home, "--in-place")
    assert cp.returncode == 2 and "--in-place needs FILE" in cp.stderr
    cp = redact(home, "--in-place", "-")
    assert cp.returncode == 2


def test_modes_partial_and_hmac(home):
    key, other = anthropic_key(), anthropic_key()
    cp = redact(home, "--mode", "partial", input="k=%s\n" % key)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == "k=" + "*" * (len(key) - 4) + key[-4:] + "\n"

    keyfile = os.path.join(home, "hmac.key")
    put(keyfile, rand(ALNUM, 32), mode=0o600)
    text = "%s %s %s\n" % (key, other, key)
    cp = redact(home, "--mode", "hmac", "--key-file", keyfile, input=text)
    assert cp.returncode == 0, cp.stderr
    t1, t2, t3 = cp.stdout.split()
    assert t1 == t3 and t1 != t2 and t1.startswith("[anthropic-api-key:")
    no_secret_in(cp, key, other)
    # The same key file, the same token, run after run.
    assert redact(home, "--mode", "hmac", "--key-file", keyfile, input=text).stdout == cp.stdout

    cp = redact(home, "--mode", "hmac", input=text)
    assert cp.returncode == 2 and "--key-file" in cp.stderr
    os.chmod(keyfile, 0o644)
    cp = redact(home, "--mode", "hmac", "--key-file", keyfile, input=text)
    assert cp.returncode == 2 and "chmod 600" in cp.stderr, cp.stderr
    no_secret_in(cp, key, other)


BAD_FILTERS = {"security": {"filters": {"patterns": [
    {"name": "email", "regex": "[a-z]+@[a-z]+\\.com", "replacement": "[EMAIL]"},
    {"name": "broken", "regex": "(unclosed", "replacement": "[X]"}]}}}


def test_bad_regex_in_the_config(home):
    cfg = config(home, BAD_FILTERS)
    cp = redact(home, cfg=cfg, input="x\n")
    assert cp.returncode == 2
    assert "security.filters.patterns[1].regex: missing closing parenthesis" in cp.stderr
    cfg = config(home, {"security": {"secrets": {"rules": [{"id": "x", "regex": "a{2,1}"}]}}})
    cp = redact(home, cfg=cfg, input="x\n")
    assert cp.returncode == 2 and "security.secrets.rules[0].regex" in cp.stderr, cp.stderr


def test_configured_rules_and_allowlist(home):
    cfg = config(home, {"security": {"secrets": {
        "rules": [{"id": "acme-token", "regex": "acme_[a-z0-9]{16}", "keywords": ["acme_"]}],
        "allowlist": {"regexes": ["^noreply@"]}}}})
    token = "acme_" + rand(string.ascii_lowercase + string.digits, 16)
    cp = redact(home, cfg=cfg, input="%s noreply@example.com bob@example.com\n"
                "ok bob@example.com # keywarden:allow\n" % token)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == ("[REDACTED:acme-token] noreply@example.com [EMAIL]\n"
                         "ok bob@example.com # keywarden:allow\n")


def test_broker_refuses_a_bad_filter(broker_factory):
    b = broker_factory(extra=BAD_FILTERS, start=False)
    want = "security.filters.patterns[1].regex: missing closing parenthesis at offset 9"
    cp = run_broker_once(["--config", b.config_path, "--check-config"])
    assert cp.returncode == 2 and want in cp.stderr, cp.stderr
    b.start(wait=False)
    assert b.wait_exit() == 2
    assert want in b.stderr(), b.stderr()
    assert not os.path.exists(b.sock)


# A 2 GB stream in flat memory (the plain build; sanitizers keep freed memory
# in quarantine, so an ASan build checks a smaller stream for errors only).
STREAM_BYTES = (256 << 20) if SANITIZE else (2 << 30)
MAX_HWM_KB = (512 << 10) if SANITIZE else (64 << 10)


def hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_two_gigabytes_in_flat_memory(home):
    cfg = config(home, {})
    key = anthropic_key()
    line = "2024-05-01T12:00:00Z INFO req=%08d user=bob@example.com took 12ms\n"
    block = "".join(line % i for i in range(8000)) + "token leak %s here\n" % key
    block = block.encode()
    one = redact(home, cfg=cfg, input=block)
    assert one.returncode == 0, one.stderr
    want_block = one.stdout.encode()
    assert key.encode() not in want_block
    n_blocks = STREAM_BYTES // len(block)

    env = clean_env({"HOME": home})
    proc = subprocess.Popen(setpriv(USER, [CLI_BIN, "--config", cfg, "redact", "--json"]),
                            env=env, cwd=home, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = {"bytes": 0, "ok": True, "err": b""}

    def reader():
        # Every output block must be the redacted block: compare as it streams.
        pending = b""
        while True:
            chunk = proc.stdout.read(1 << 20)
            if not chunk:
                break
            got["bytes"] += len(chunk)
            pending += chunk
            while len(pending) >= len(want_block):
                if pending[:len(want_block)] != want_block:
                    got["ok"] = False
                pending = pending[len(want_block):]
        if pending:
            got["ok"] = False

    def err_reader():
        got["err"] = proc.stderr.read()

    threads = [threading.Thread(target=reader), threading.Thread(target=err_reader)]
    for t in threads:
        t.start()
    start = time.monotonic()
    peak = 0
    try:
        for i in range(n_blocks):
            proc.stdin.write(block)
            if i % 512 == 0:
                peak = max(peak, hwm_kb(proc.pid))
        proc.stdin.flush()
        peak = max(peak, hwm_kb(proc.pid))
        proc.stdin.close()
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for t in threads:
            t.join()
    elapsed = time.monotonic() - start
    assert rc == 0, got["err"]
    assert got["ok"] and got["bytes"] == n_blocks * len(want_block)
    report = json.loads(got["err"])
    assert report["counts"] == {"email": 8000 * n_blocks, "anthropic-api-key": n_blocks}
    assert peak < MAX_HWM_KB, "peak RSS %d KiB for %d MiB" % (peak, STREAM_BYTES >> 20)
    print("redact: %d MiB in %.1f s (%.0f MiB/s), peak RSS %d KiB" % (
        STREAM_BYTES >> 20, elapsed, (STREAM_BYTES >> 20) / elapsed, peak))
