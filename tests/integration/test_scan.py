"""
keywarden scan and keywarden setup git, through the real CLI, as alice (a real
uid under setpriv) in a tree of hers: root would hide unreadable files.

Every key-shaped string is generated here at run time (the repository holds
no real or key-shaped literal); each test checks that no value it planted
appears in anything keywarden printed.  The SARIF log is validated against
the OASIS SARIF 2.1.0 schema (tests/integration/data, with its license note).
Git tests run a real repository: `setup git` installs the pre-commit hook,
and `git commit` itself runs it.
"""
import json
import os
import secrets
import shutil
import stat
import string
import tempfile

import pytest

from conftest import CLI_BIN, clean_env
from users import USERS, run_as_user

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "data", "sarif-schema-2.1.0.json")
SELF = os.path.realpath(CLI_BIN)
ALNUM = string.ascii_letters + string.digits


def rand(n, alphabet=ALNUM):
    return "".join(secrets.choice(alphabet) for _ in range(n))


# Generators for the built-in rules' shapes (policy/detect/rules.c).
def anthropic_key():
    return "sk-ant-" + "api03-" + rand(93, ALNUM + "_-") + "AA"


def aws_key_id():
    return "AKIA" + rand(16, string.ascii_uppercase + "234567")


def github_token():
    return "ghp" + "_" + rand(36)


def pem_key():
    body = "\n".join(rand(64, ALNUM + "+/") for _ in range(4))
    kind = "RSA " + "PRIVATE KEY"
    return "-----BEGIN %s-----\n%s\n-----END %s-----" % (kind, body, kind)


def password():
    return "Q" + rand(23) + "7z"


class Tree:
    """A directory of alice's (under a 0755 root), a config of hers, and what was planted."""

    def __init__(self, config=None):
        self.root = tempfile.mkdtemp(prefix="kwscan", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.dir = os.path.join(self.root, "work")
        os.mkdir(self.dir)
        self.config = os.path.join(self.root, "keywarden.json")
        self.values = []
        if config is not None:
            self.write_config(config)

    def write_config(self, config):
        with open(self.config, "w") as f:
            json.dump(config, f)
        os.chmod(self.config, 0o644)

    def put(self, rel, text, mode=0o644):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        os.chmod(path, mode)
        return path

    def plant(self, value):
        self.values.append(value)
        return value

    def give(self):
        for base, dirs, files in os.walk(self.root):
            for n in dirs + files:
                os.lchown(os.path.join(base, n), *USERS["alice"])
        os.chown(self.root, *USERS["alice"])

    def env(self, extra=None):
        e = clean_env({"HOME": self.root, "KEYWARDEN_CONFIG": self.config,
                       "GIT_AUTHOR_NAME": "alice", "GIT_AUTHOR_EMAIL": "alice@example.org",
                       "GIT_COMMITTER_NAME": "alice",
                       "GIT_COMMITTER_EMAIL": "alice@example.org"},
                      drop=("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"))
        e.update(extra or {})
        return e

    def run(self, *argv, cwd=None, env=None):
        self.give()
        return run_as_user("alice", list(argv), self.env(env), cwd=cwd or self.dir)

    def scan(self, *args, cwd=None):
        cp = self.run(CLI_BIN, "scan", *args, cwd=cwd)
        self.assert_no_value(cp)
        return cp

    def assert_no_value(self, cp):
        out = cp.stdout + cp.stderr
        for v in self.values:
            for piece in v.split("\n"):
                if len(piece) >= 16:
                    assert piece not in out, "a planted value in the output of %s" % cp.args

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def tree():
    t = Tree()
    yield t
    t.cleanup()


def json_of(cp, rc):
    assert cp.returncode == rc, (cp.returncode, cp.stdout, cp.stderr)
    return json.loads(cp.stdout)


def human(cp):
    return sorted(cp.stdout.splitlines())


def plant_tree(t):
    """The planted tree: {(file, line, byte column, code-point column, rule)} expected."""
    ak, aws, gh, pem, pw = (t.plant(anthropic_key()), t.plant(aws_key_id()),
                            t.plant(github_token()), t.plant(pem_key()), t.plant(password()))
    env_tok, keep, nonascii = t.plant(github_token()), t.plant(aws_key_id()), t.plant(github_token())
    t.put("src/app.py", "import os\n\nclient = Client(api_key='%s')\n" % ak)
    t.put("src/deep/config.yaml", "region: eu-west-1\n  aws_access_key_id: %s\n" % aws)
    t.put("src/gh.sh", "#!/bin/sh\nexport GH=%s\n" % gh)
    t.put("keys/deploy.pem", "# deploy\n%s\n" % pem)
    t.put("settings.ini", "[db]\npassword = %s\n" % pw)
    t.put(".env", "GITHUB_TOKEN=%s\n" % env_tok)
    # Two bytes, one code point, before the token: SARIF's column is one less.
    t.put("src/intl.txt", "\u00e9t\u00e9 = %s\n" % nonascii)
    # Left out: .gitignore'd (a directory, a glob, nested), .git, binary, links.
    t.put(".gitignore", "build/\n*.log\n!keep.log\n# a comment\n")
    t.put("build/out.py", "k = '%s'\n" % t.plant(anthropic_key()))
    t.put("debug.log", "token %s\n" % t.plant(github_token()))
    t.put("keep.log", "%s\n" % keep)
    t.put("src/.gitignore", "generated.py\n")
    t.put("src/generated.py", "K = '%s'\n" % t.plant(github_token()))
    t.put(".git/config", "url = https://%s@example.org/x\n" % t.plant(github_token()))
    t.put("blob.bin", b"\x7fELF\x00\x01" + t.plant(github_token()).encode())
    outside = os.path.join(t.root, "outside.txt")
    with open(outside, "w") as f:
        f.write(t.plant(github_token()) + "\n")
    os.symlink(outside, os.path.join(t.dir, "src", "link.txt"))
    # An inline allow on the line itself.
    t.put("src/test_fixture.py", "FAKE = '%s'  # keywarden:allow\n" % t.plant(github_token()))
    return {
        ("src/app.py", 3, 26, 26, "anthropic-api-key"),
        ("src/deep/config.yaml", 2, 22, 22, "aws-access-key-id"),
        ("src/gh.sh", 2, 11, 11, "github-token"),
        ("keys/deploy.pem", 2, 1, 1, "private-key"),
        ("settings.ini", 2, 12, 12, "generic-secret"),
        (".env", 1, 14, 14, "github-token"),
        ("src/intl.txt", 1, 9, 7, "github-token"),
        ("keep.log", 1, 1, 1, "aws-access-key-id"),
    }


def lines_for(expected, level="error"):
    return {(f, l, c, r) for f, l, c, _, r in expected}


def parse_human(cp, level="error"):
    """{(file, line, column, rule)} from `FILE:LINE:COL: LEVEL: RULE PREVIEW` lines."""
    out = set()
    for line in cp.stdout.splitlines():
        where, lvl, rest = line.split(": ", 2)
        f, l, c = where.rsplit(":", 2)
        assert lvl == level, line
        rule, preview = rest.split(" ", 1)
        assert "\u2026(" in preview and len(preview.split("\u2026")[0]) <= 4, line
        out.add((f, int(l), int(c), rule))
    return out


# --------------------------------------------------------------------------
# Walking a tree
# --------------------------------------------------------------------------

def test_finds_each_planted_secret_where_it_is(tree):
    expected = plant_tree(tree)
    cp = tree.scan(".")
    assert cp.returncode == 1, (cp.stdout, cp.stderr)
    assert parse_human(cp) == lines_for(expected), cp.stdout
    assert "8 secrets found" in cp.stderr, cp.stderr
    # The same without a PATH (the current directory) and from above, with a prefix.
    assert parse_human(tree.scan()) == lines_for(expected)
    above = tree.scan("work", cwd=tree.root)
    assert parse_human(above) == {("work/" + f, l, c, r) for f, l, c, r in lines_for(expected)}
    # A file named on the command line is read even when .gitignore ignores it.
    cp = tree.scan("build/out.py")
    assert parse_human(cp) == {("build/out.py", 1, 6, "anthropic-api-key")}, cp.stdout


def test_json_report(tree):
    expected = plant_tree(tree)
    doc = json_of(tree.scan("--json"), 1)
    assert set(doc) == {"findings", "new", "files", "bytes", "skipped", "level", "error"}, doc
    assert doc["error"]["code"] == "secrets_found", doc
    assert doc["new"] == len(expected) == len(doc["findings"]) and doc["level"] == "error"
    for f in doc["findings"]:
        assert set(f) == {"file", "line", "column", "rule", "preview", "hash", "level", "known"}
        assert len(f["hash"]) == 64 and int(f["hash"], 16) >= 0 and f["known"] is False
    assert {(f["file"], f["line"], f["column"], f["rule"]) for f in doc["findings"]} == \
        lines_for(expected)
    skipped = {s["file"]: s["reason"] for s in doc["skipped"]}
    assert skipped["blob.bin"] == "binary", skipped
    assert skipped["src/link.txt"].startswith("symbolic link"), skipped
    # Ignored and .git files are not even listed; they were never read.
    for f in ("build/out.py", "debug.log", "src/generated.py", ".git/config"):
        assert f not in skipped
    # The files read: the eight, the fixture allowed inline, and the two .gitignore files.
    assert doc["files"] == 11, doc


def test_excludes_are_scanned_unless_asked(tree):
    plant_tree(tree)
    cp = tree.scan("--respect-excludes", "--json")
    doc = json_of(cp, 1)
    files = {f["file"] for f in doc["findings"]}
    assert ".env" not in files and "keys/deploy.pem" not in files, files
    reasons = {s["file"]: s["reason"] for s in doc["skipped"]}
    assert reasons[".env"] == reasons["keys/deploy.pem"] == "excluded (security.excludePatterns)"


def test_allowlisted_paths_and_clean_trees(tree):
    tree.put("fixtures/fake_keys.py", "K = '%s'\n" % tree.plant(github_token()))
    tree.put("lib/ok.py", "x = 1\n")
    tree.write_config({"security": {"secrets": {"allowlist": {"paths": ["fixtures/**"]}}}})
    doc = json_of(tree.scan("--json"), 0)
    assert doc["findings"] == [] and doc["new"] == 0 and "error" not in doc, doc
    assert {"file": "fixtures/fake_keys.py",
            "reason": "allowlisted (security.secrets.allowlist.paths)"} in doc["skipped"]
    cp = tree.scan()
    assert (cp.returncode, cp.stdout, cp.stderr) == (0, "", "")


def test_large_files_are_skipped_and_said(tree):
    tree.put("big.txt", "x" * 2048 + "\n" + tree.plant(github_token()) + "\n")
    cp = tree.scan("--max-size", "1k")
    assert cp.returncode == 0 and cp.stdout == "", cp
    assert "skipped big.txt: larger than 1024 bytes" in cp.stderr, cp.stderr
    assert tree.scan("--max-size", "0").returncode == 1


def test_unreadable_file_is_reported(tree):
    tree.put("secret-ish.txt", "x\n", mode=0o000)
    cp = tree.scan()
    assert cp.returncode == 0, cp
    assert "skipped secret-ish.txt: unreadable: Permission denied" in cp.stderr, cp.stderr


def test_usage_and_configuration_errors_exit_2(tree):
    for args, text in ((["no/such/dir"], "no/such/dir: No such file"),
                       (["--max-size", "lots"], "--max-size 'lots'"),
                       (["--json", "--sarif"], "two formats"),
                       (["--update-baseline"], "needs --baseline")):
        cp = tree.scan(*args)
        assert cp.returncode == 2 and text in cp.stderr, (args, cp.stderr)
    tree.write_config({"security": {"secrets": {"rules": [{"id": "x", "regex": "(unclosed"}]}}})
    cp = tree.scan()
    assert cp.returncode == 2 and "security.secrets.rules[0]" in cp.stderr, cp.stderr


# --------------------------------------------------------------------------
# SARIF
# --------------------------------------------------------------------------

def test_sarif_validates_and_locates(tree):
    jsonschema = pytest.importorskip("jsonschema")
    expected = plant_tree(tree)
    cp = tree.scan("--sarif")
    assert cp.returncode == 1, cp.stderr
    log = json.loads(cp.stdout)
    with open(SCHEMA) as f:
        schema = json.load(f)
    jsonschema.Draft4Validator(schema).validate(log)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    run = log["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == "file://%s/" % tree.dir
    rules = run["tool"]["driver"]["rules"]
    assert {"anthropic-api-key", "private-key", "generic-secret"} <= {r["id"] for r in rules}
    got = set()
    for r in run["results"]:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"] and r["level"] == "error"
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        reg = loc["region"]
        got.add((loc["artifactLocation"]["uri"], reg["startLine"], reg["startColumn"],
                 r["ruleId"]))
        if r["ruleId"] == "private-key":
            assert reg["endLine"] == reg["startLine"] + 5, reg
        assert len(r["partialFingerprints"]["keywardenSecretHash/v1"]) == 64
    assert got == {(f, l, cp_col, rule) for f, l, _, cp_col, rule in expected}, got
    # The same hashes as --json.
    doc = json_of(tree.scan("--json"), 1)
    assert {f["hash"] for f in doc["findings"]} == {
        r["partialFingerprints"]["keywardenSecretHash/v1"] for r in run["results"]}
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any(n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "blob.bin"
               for n in notes)


def test_severity_decides_the_exit(tree):
    plant_tree(tree)
    tree.write_config({"security": {"codeReview": {"severity": "warning"}}})
    cp = tree.scan()
    assert cp.returncode == 0 and parse_human(cp, "warning"), cp
    tree.write_config({"security": {"codeReview": {"severity": "info"}}})
    log = json.loads(tree.scan("--sarif").stdout)
    assert {r["level"] for r in log["runs"][0]["results"]} == {"note"}
    # The review rule not listed, or code review off: reported as notes, exit 0.
    tree.write_config({"security": {"codeReview": {"rules": ["no-eval"]}}})
    cp = tree.scan()
    assert cp.returncode == 0 and parse_human(cp, "note"), cp
    tree.write_config({"security": {"codeReview": {"enabled": False}}})
    assert tree.scan().returncode == 0


# --------------------------------------------------------------------------
# Baseline
# --------------------------------------------------------------------------

def test_baseline_accepts_known_findings_only(tree):
    expected = plant_tree(tree)
    base = os.path.join(tree.root, "baseline.json")
    cp = tree.scan("--baseline", base, "--update-baseline")
    assert cp.returncode == 0 and "8 findings (8 new)" in cp.stdout, cp
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o644
    with open(base) as f:
        text = f.read()
    for v in tree.values:
        assert v.split("\n")[0] not in text
    assert len(json.loads(text)["findings"]) == len(expected)
    cp = tree.scan("--baseline", base)
    assert (cp.returncode, cp.stdout) == (0, ""), cp
    doc = json_of(tree.scan("--baseline", base, "--json"), 0)
    assert doc["new"] == 0 and all(f["known"] for f in doc["findings"]), doc
    # Moving a known finding to another line keeps it known; a new one fails.
    tree.put("src/app.py", "\n\n\n" + open(os.path.join(tree.dir, "src/app.py")).read())
    assert tree.scan("--baseline", base).returncode == 0
    tree.put("src/new.py", "T = '%s'\n" % tree.plant(github_token()))
    cp = tree.scan("--baseline", base)
    assert cp.returncode == 1 and parse_human(cp) == {("src/new.py", 1, 6, "github-token")}
    assert "besides those in the baseline" in cp.stderr
    log = json.loads(tree.scan("--baseline", base, "--sarif").stdout)
    states = [r["baselineState"] for r in log["runs"][0]["results"]]
    assert sorted(states) == ["new"] + ["unchanged"] * 8, states
    # A baseline that is not one is a configuration error.
    with open(base, "w") as f:
        f.write("[1, 2]")
    cp = tree.scan("--baseline", base)
    assert cp.returncode == 2 and "not a keywarden baseline" in cp.stderr, cp.stderr


def test_baseline_inside_the_tree_is_not_scanned(tree):
    tree.put("a.py", "K = '%s'\n" % tree.plant(github_token()))
    cp = tree.scan("--baseline", ".keywarden-baseline.json", "--update-baseline", "--json")
    assert json_of(cp, 0) == {"baseline": ".keywarden-baseline.json", "findings": 1, "new": 1}
    doc = json_of(tree.scan("--baseline", ".keywarden-baseline.json", "--json"), 0)
    assert doc["files"] == 1, doc


# --------------------------------------------------------------------------
# git: --staged and the pre-commit hook
# --------------------------------------------------------------------------

def git(t, *args):
    cp = t.run("git", *args)
    assert cp.returncode == 0, (args, cp.stdout, cp.stderr)
    return cp.stdout


@pytest.fixture
def repo(tree):
    git(tree, "init", "-q", ".")
    git(tree, "config", "commit.gpgsign", "false")
    tree.put("README", "hello\n")
    git(tree, "add", "README")
    git(tree, "commit", "-q", "-m", "first")
    return tree


def test_staged_scans_the_index_not_the_work_tree(repo):
    key = repo.plant(github_token())
    repo.put("sub/a.py", "K = '%s'\n" % key)
    git(repo, "add", "sub/a.py")
    # The work tree is clean now; the index still holds the key.
    repo.put("sub/a.py", "K = None\n")
    cp = repo.scan("--staged")
    assert cp.returncode == 1 and parse_human(cp) == {("sub/a.py", 1, 6, "github-token")}
    # From a subdirectory too, reported from the top of the repository.
    cp = repo.scan("--staged", cwd=os.path.join(repo.dir, "sub"))
    assert parse_human(cp) == {("sub/a.py", 1, 6, "github-token")}, cp
    log = json.loads(repo.scan("--staged", "--sarif").stdout)
    assert log["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == "file://%s/" % repo.dir
    # A pathspec that leaves it out.
    assert repo.scan("--staged", "README").returncode == 0
    # Staged clean, work tree dirty: nothing to say.
    git(repo, "add", "sub/a.py")
    repo.put("sub/a.py", "K = '%s'\n" % key)
    cp = repo.scan("--staged")
    assert (cp.returncode, cp.stdout) == (0, ""), cp


def test_staged_outside_a_repository_exits_2(tree):
    cp = tree.scan("--staged")
    assert cp.returncode == 2 and "not in a git work tree" in cp.stderr, cp.stderr


def test_setup_git_hook_blocks_a_commit_with_a_key(repo):
    cp = repo.run(CLI_BIN, "setup", "git")
    hook = os.path.join(repo.dir, ".git", "hooks", "pre-commit")
    assert cp.returncode == 0 and "wrote %s" % hook in cp.stdout, cp
    st = os.stat(hook)
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == USERS["alice"][0]
    with open(hook) as f:
        assert SELF + " scan --staged" in f.read()
    cp = repo.run(CLI_BIN, "setup", "git", "--json")
    assert json.loads(cp.stdout)["changed"] is False, cp.stdout

    key = repo.plant(aws_key_id())
    repo.put("deploy.cfg", "id = %s\n" % key)
    git(repo, "add", "deploy.cfg")
    cp = repo.run("git", "commit", "-q", "-m", "add deploy config")
    repo.assert_no_value(cp)
    # git gives a hook's stdout to stderr.
    assert cp.returncode != 0 and "deploy.cfg:1:6: error: aws-access-key-id" in cp.stderr, cp
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
    assert key not in git(repo, "log", "-p", "--all")

    # Take it out: the commit goes through.
    repo.put("deploy.cfg", "id = ${AWS_ACCESS_KEY_ID}\n")
    git(repo, "add", "deploy.cfg")
    cp = repo.run("git", "commit", "-q", "-m", "add deploy config")
    assert cp.returncode == 0, cp
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "2"

    # Accepted in the repository's baseline: the hook passes it.
    repo.put("fixture.txt", "%s\n" % key)
    git(repo, "add", "fixture.txt")
    cp = repo.scan("--staged", "--baseline", ".keywarden-baseline.json", "--update-baseline")
    assert cp.returncode == 0, cp
    git(repo, "add", ".keywarden-baseline.json")
    cp = repo.run("git", "commit", "-q", "-m", "fixture")
    assert cp.returncode == 0, cp


def test_setup_git_keeps_another_hook(repo):
    hook = repo.put(".git/hooks/pre-commit", "#!/bin/sh\nexit 0\n", mode=0o755)
    cp = repo.run(CLI_BIN, "setup", "git", "--dry-run")
    assert cp.returncode == 1 and "--force replaces it" in cp.stderr, cp
    cp = repo.run(CLI_BIN, "setup", "git")
    assert cp.returncode == 1
    with open(hook) as f:
        assert f.read() == "#!/bin/sh\nexit 0\n"
    cp = repo.run(CLI_BIN, "setup", "git", "--force", "--dry-run")
    assert cp.returncode == 0 and "would move" in cp.stdout, cp
    with open(hook) as f:
        assert f.read() == "#!/bin/sh\nexit 0\n", "a dry run wrote"
    doc = json.loads(repo.run(CLI_BIN, "setup", "git", "--force", "--json").stdout)
    assert doc == {"hook": hook, "changed": True, "written": True, "dry_run": False,
                   "backup": hook + ".keywarden-backup"}, doc
    with open(hook + ".keywarden-backup") as f:
        assert f.read() == "#!/bin/sh\nexit 0\n"
    with open(hook) as f:
        assert "keywarden pre-commit hook" in f.read()


def test_setup_git_outside_a_repository(tree):
    cp = tree.run(CLI_BIN, "setup", "git")
    assert cp.returncode == 1 and "not in a git repository" in cp.stderr, cp
