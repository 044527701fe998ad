"""
The golden policy corpus (tests/policy/corpus.jsonl) through the real CLI:
`keywarden policy test` against tests/policy/config.json, run as alice (an
unprivileged user: root reads every file and hides what a user's policy
check does with one it may not read) in a fixture home built here, laid out
as the corpus header says.

Every case must come out as the corpus expects.  The corpus must stay large
and two-sided (many refusals, many everyday commands allowed), and it must
be able to fail: with the command deny-list emptied, some cases mismatch.
"""
import json
import os

import pytest

from conftest import CLI_BIN, clean_env
from users import USERS, run_as_user

HERE = os.path.dirname(os.path.abspath(__file__))
POLICY_DIR = os.path.join(HERE, "..", "policy")
CONFIG = os.path.join(POLICY_DIR, "config.json")
CORPUS = os.path.join(POLICY_DIR, "corpus.jsonl")
USER = "alice"

MIN_CASES = 300
MIN_DENY = 100
MIN_ALLOW = 100

# path under HOME -> content (None: a directory).
FILES = {
    ".ssh": None,
    ".ssh/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n"
                   "-----END OPENSSH PRIVATE KEY-----\n",
    ".ssh/authorized_keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAtest alice@example\n",
    ".aws": None,
    ".aws/credentials": "[default]\naws_access_key_id = AKIAEXAMPLE\n",
    "project": None,
    "project/src": None,
    "project/src/main.c": "int main(void) { return 0; }\n",
    "project/README.md": "# project\n",
    "project/script.py": "print('hello')\n",
    "project/notes": None,
    "project/notes/todo.txt": "write tests\n",
    "project/.env": "API_KEY=not-a-real-key\n",
    "project/server.key": "not a key\n",
    "project/deploy.pem": "not a certificate\n",
    "project/credentials.json": "{}\n",
    "project/certs": None,
    "project/certs/server.pem": "not a certificate\n",
    "project/config": None,
    "project/config/secrets.json": "{}\n",
    "project/my_password.txt": "hunter2\n",
    "project/api_token.txt": "none\n",
    "project/db_secret.yaml": "none\n",
    "project/config.ini": "[db]\npassword = x\n",
}
LINKS = {"project/innocent": "../.ssh", "project/escape": "/etc"}


def build_fixture(root):
    """HOME with the corpus fixture, owned by USER; returns HOME."""
    home = os.path.join(root, "home")
    os.makedirs(home)
    for rel, content in FILES.items():
        path = os.path.join(home, rel)
        if content is None:
            os.makedirs(path, exist_ok=True)
        else:
            with open(path, "w") as f:
                f.write(content)
    for rel, target in LINKS.items():
        os.symlink(target, os.path.join(home, rel))
    uid, gid = USERS[USER]
    for d, dirs, files in os.walk(home):
        for name in [d] + [os.path.join(d, x) for x in dirs + files]:
            os.lchown(name, uid, gid)
    os.chmod(os.path.join(home, ".ssh"), 0o700)
    os.chmod(os.path.join(home, ".ssh", "id_rsa"), 0o600)
    # The user must reach its home: every directory above it searchable.
    d = root
    while d not in ("/", ""):
        os.chmod(d, os.stat(d).st_mode | 0o011)
        d = os.path.dirname(d)
    return home


def cases():
    """The corpus cases (parsed), for the counts."""
    with open(CORPUS) as f:
        lines = [l for l in f if l.strip() and not l.lstrip().startswith("#")]
    return [json.loads(l) for l in lines]


def run_corpus(tmp_path, config):
    home = build_fixture(str(tmp_path))
    env = clean_env({"HOME": home})
    cp = run_as_user(USER, [CLI_BIN, "--config", config, "--json", "policy", "test", "--cwd",
                            os.path.join(home, "project"), CORPUS], env, cwd=home)
    assert cp.returncode in (0, 1), "exit %d:\nstdout: %s\nstderr: %s" % (
        cp.returncode, cp.stdout, cp.stderr)
    try:
        report = json.loads(cp.stdout)
    except ValueError:
        raise AssertionError("not JSON: %s\nstderr: %s" % (cp.stdout, cp.stderr))
    return cp, report


def describe(report):
    """Each mismatch on a line: where, the case, what was expected and why it was not."""
    with open(CORPUS) as f:
        lines = f.read().split("\n")
    out = []
    for m in report["failed"]:
        got = m["got"] or {}
        out.append("%s:%d: %s\n    expected %s, got %s (%s: %s)" % (
            os.path.basename(m["file"]), m["line"], lines[m["line"] - 1], m["expect"],
            got.get("decision"), got.get("rule"), got.get("reason")))
    return "\n".join(out)


@pytest.fixture(scope="module")
def readable():
    """The corpus and its config readable by USER (the checkout may be private)."""
    for path in (CONFIG, CORPUS):
        d = os.path.dirname(os.path.abspath(path))
        assert os.stat(path).st_mode & 0o004, "%s is not readable by others" % path
        assert os.stat(d).st_mode & 0o001, "%s is not searchable by others" % d


def test_the_corpus_is_large_and_two_sided():
    cs = cases()
    verdicts = [c["expect"] for c in cs]
    assert len(cs) >= MIN_CASES, "only %d cases" % len(cs)
    assert verdicts.count("deny") >= MIN_DENY, verdicts.count("deny")
    assert verdicts.count("allow") >= MIN_ALLOW, verdicts.count("allow")
    assert set(verdicts) <= {"allow", "ask", "deny"}, set(verdicts)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the corpus as alice")
def test_every_case_is_decided_as_the_corpus_expects(tmp_path, readable):
    cp, report = run_corpus(tmp_path, CONFIG)
    assert report["cases"] == len(cases()), report["cases"]
    assert report["mismatches"] == 0, "%d of %d cases mismatch:\n%s" % (
        report["mismatches"], report["cases"], describe(report))
    assert cp.returncode == 0, cp.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the corpus as alice")
def test_the_corpus_can_fail(tmp_path, readable):
    """With the command deny-list emptied, the corpus must notice."""
    with open(CONFIG) as f:
        config = json.load(f)
    config["security"]["execution"]["deniedCommands"] = []
    mutated = tmp_path / "config.json"
    mutated.write_text(json.dumps(config))
    os.chmod(str(mutated), 0o644)
    cp, report = run_corpus(tmp_path / "fixture", str(mutated))
    assert report["mismatches"] > 0, "the corpus passes with no deniedCommands"
    assert cp.returncode == 1, cp.stdout
    # The misses are deny-list cases (rm -rf, sudo, ...) now asked about or allowed.
    assert all(m["expect"] == "deny" for m in report["failed"]), describe(report)
