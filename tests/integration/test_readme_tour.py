"""
The README's tour ("## What works now" through "### The audit trail"),
typed as it is written, by a user who is not root, with nothing in /etc
(issue 12).

`make run`'s own script (contrib/run-dev.sh) starts the broker as alice in
a directory of the test's own, as the README says ("It runs as you, so you
own it"); build/ there is the build directory.  Each step below is a line of
the README: the test first checks that the line appears in the README
verbatim, so that the test breaks when the README changes, then runs it
with /bin/sh as alice (a `sudo` line as root, without the sudo), feeding
what a person would type (the TOTP code from oathtool, a key at the
prompt), and checks its exit status and the part of its output that the
README's `# ...` comment shows (which must itself appear in the README).

The tour stops where the trail's upkeep begins (retention, archives, sealed
details, incidents), and leaves out "A broker of your own", which
test_first_run.py walks on a keychain; test_readme_tour_lines_all_run
fails when a command line of the tour is not a step here.  The same steps
run on a broker started as root with the README's kw="sudo ...", whose $kw
lines run as root.

`make run`'s banner, as alice and as root, is checked against the README
too: each command it suggests must be one the README gives.
"""
import json
import os
import re
import shutil

import pytest

from conftest import BUILD, audit_rows, run_process
from test_claude_code import KEY
from test_first_run import (PAM_FILE, code_of, nss_env, secret_of, start_make_run, user_dir)
from users import USERS, setpriv

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "..", "README.md")
OTPAUTH_RE = re.compile(r"otpauth://totp/\S+")

KEY2 = "sk-ant-api03-" + "D" * 80 + "AA"       # in ~/project/.env
KEY3 = "sk-ant-api03-" + "E" * 80 + "AA"       # in the environment
KEY4 = "sk-ant-api03-" + "F" * 80 + "AA"       # what `op read` prints
KEY5 = "sk-ant-api03-" + "G" * 80 + "AA"       # ~/new-anthropic.key
OPENAI = "sk-proj-" + "H" * 48


def readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


# The tour ends where the trail's upkeep begins (retention, archives, sealed
# details, incidents: tests of their own shift clocks and fill the trail).
TOUR_END = "Records older than `security.audit.retention`"
OWN_BROKER = "### A broker of your own"


def tour_text():
    """From "## What works now" to TOUR_END, in "### The audit trail"."""
    text = readme()
    start = text.index("## What works now")
    return text[start:text.index(TOUR_END, start)]


def as_alice(s):
    """The README writes for "you"; the test's user is alice."""
    return re.sub(r"\byou\b", "alice", s)


class Step:
    """One README line: run as typed, with its exit status and documented output."""

    def __init__(self, cmd, rc=0, out=None, err=None, input=None, after=None, json=False,
                 value=None, has=None):
        # out, err: documented in the README; value: the exact stdout (a key);
        # has: in stdout, where the README shows no output.
        self.cmd, self.rc, self.out, self.err, self.value = cmd, rc, out, err, value
        self.has = has
        self.input, self.after, self.json = input, after, json

    def __repr__(self):
        return self.cmd


class Tour:
    def __init__(self, d, root):
        self.d, self.root = d, root
        self.home = user_dir(root, "home", "alice")
        self.secret = None
        self.logins = 0
        bin_dir = user_dir(root, "bin", "alice", 0o755)
        # `op read op://...` (1Password's CLI) prints the key, as the real one would.
        with open(os.path.join(bin_dir, "op"), "w") as f:
            f.write("#!/bin/sh\n[ \"$1 $2\" = 'read op://Private/Anthropic/credential' ] "
                    "|| exit 1\necho %s\n" % KEY4)
        os.chmod(os.path.join(bin_dir, "op"), 0o755)
        os.makedirs(os.path.join(self.home, "project"))
        with open(os.path.join(self.home, "project", ".env"), "w") as f:
            f.write("ANTHROPIC_API_KEY=%s\nexport OPENAI_API_KEY='%s'\n" % (KEY2, OPENAI))
        with open(os.path.join(self.home, "new-anthropic.key"), "w") as f:
            f.write(KEY5 + "\n")
        with open(os.path.join(root, "app.py"), "w") as f:
            f.write("import os\nk = os.environ.get('ANTHROPIC_API_KEY', '')\n"
                    "print('app sees a key of %d characters' % len(k))\n")
        for dirpath, dirs, files in os.walk(self.home):
            for n in dirs + files:
                os.chown(os.path.join(dirpath, n), *USERS["alice"])
        # build/keywarden, as typed in the checkout `make run` ran in.
        os.symlink(os.path.abspath(BUILD), os.path.join(root, "build"))
        self.env = nss_env(root, {
            "USER": "alice", "LOGNAME": "alice", "HOME": self.home,
            "PATH": bin_dir + ":/usr/bin:/bin", "ANTHROPIC_API_KEY": KEY3,
            "KEYWARDEN_TOKEN_CACHE": "file",
            "XDG_RUNTIME_DIR": user_dir(root, "xdg-alice", "alice")})

    def sudo(self, cmd):
        return cmd.startswith("sudo ") or (
            cmd.startswith("$kw ") and self.env.get("kw", "").startswith("sudo "))

    def argv(self, cmd):
        """sh -c cmd as alice; a `sudo ...` line as root, without the sudo."""
        if not self.sudo(cmd):
            return setpriv("alice", ["sh", "-c", cmd])
        return ["sh", "-c", cmd[5:] if cmd.startswith("sudo ") else cmd]

    def env_for(self, cmd):
        """Under sudo: alice's shell expanded the line; sudo drops KEYWARDEN_*."""
        if not self.sudo(cmd):
            return self.env
        env = {k: v for k, v in self.env.items() if not k.startswith("KEYWARDEN_")}
        kw = self.env.get("kw", "")
        if kw.startswith("sudo "):
            env["kw"] = kw[5:].replace("$KEYWARDEN_SOCKET", self.env["KEYWARDEN_SOCKET"])
        return env

    def code(self):
        # A code works once: the next login takes the next 30-second step's.
        self.logins += 1
        return code_of(self.secret, self.logins - 1) + "\n"

    def run(self, step, text):
        assert step.cmd in text, "not in the README's tour as typed: %s" % step.cmd
        # The README shows output as "# ..." comment lines.
        shown = re.sub(r"(?m)^# ?", "", text)
        for frag in (step.out, step.err):
            assert frag is None or frag in text or frag in shown, "output not documented in the README: %s" % frag
        inp = step.input(self) if callable(step.input) else step.input
        cp = run_process(self.argv(step.cmd), env=self.env_for(step.cmd), cwd=self.root,
                         input=inp)
        where = "%s\nexit %d (want %d)\nstdout: %s\nstderr: %s" % (
            step.cmd, cp.returncode, step.rc, cp.stdout, cp.stderr)
        assert cp.returncode == step.rc, where
        if step.out is not None:
            assert as_alice(step.out) in cp.stdout, where
        if step.err is not None:
            assert as_alice(step.err) in cp.stderr, where
        if step.has is not None:
            assert step.has in cp.stdout, where
        if step.value is not None:
            assert cp.stdout == step.value + "\n", where
        if step.json:
            json.loads(cp.stdout)
        if step.after:
            step.after(self, cp)
        return cp


def enrolled(tour, cp):
    tour.secret = secret_of(OTPAUTH_RE.search(cp.stdout).group(0))
    tour.logins = 0


def pubkey_is_the_file(tour, cp):
    """`# the public key, also in var/lib/audit.pub`"""
    with open(os.path.join(tour.root, "var", "lib", "audit.pub")) as f:
        assert f.read().strip() == cp.stdout.strip(), cp.stdout


def exports(tour, line, text):
    """The README's export line, evaluated by sh in the checkout."""
    assert line in text, line
    cp = run_process(setpriv("alice", ["sh", "-c", line + '; printf "%s\\n%s\\n" '
                                       '"$KEYWARDEN_SOCKET" "$KEYWARDEN_CONFIG"']),
                     env=tour.env, cwd=tour.root)
    sock, config = cp.stdout.splitlines()
    assert sock == tour.d.sock, (sock, tour.d.sock)
    tour.env.update(KEYWARDEN_SOCKET=sock, KEYWARDEN_CONFIG=config)


LOGIN = Step("build/keywarden login", input=Tour.code, out="logged in as you; session ")

# The tour in the order it is run: the README's, except that the checks it
# gives "then" (after "the next section logs you in") follow the login.
TOUR = [
    Step("build/keywarden status", out="user      not a keywarden user"),
    Step("build/keywarden status --json", json=True),
    Step("build/keywarden config get security.session.timeout", out="3600"),
    Step("build/keywarden config set api.verifyUrl https://api.anthropic.com/v1/models"),
    Step("build/keywarden config set security.sensitivePatterns '[\"password\",\"token\"]'"),
    Step("build/keywarden config list", out="security.session.timeout"),
    Step("build/keywarden config list --json", json=True),
    Step("build/keywarden config set security.compliance.soc2.enabled true",
         err="keywarden: config set: warning: security.compliance.soc2.enabled is accepted "
             "but not enforced"),
    Step("build/keywarden config list | grep 'not enforced'", out="not enforced"),
    Step("build/keywardend --check-config --config var/config.json", err="soc2.enabled"),
    Step("build/keywarden key get", rc=2,
         err="keywarden key get: missing NAME\nusage: keywarden key get NAME [--version N]"),
    # Users and roles, as the broker's owner: kw=build/keywarden.
    Step("$kw admin user add $USER --role reviewer", after=enrolled, out="otpauth://"),
    Step("$kw admin role create deploy --permission 'read:key/prod-*' "
         "--permission 'execute:key/prod-*'"),
    Step("$kw admin role grant $USER deploy"),
    Step("build/keywarden status", out="you (roles: deploy, reviewer)"),
    Step("build/keywarden check execute key/prod-db", rc=1, err="log in first"),
    Step("$kw admin user list", out="deploy, reviewer"),
    Step("$kw admin role list", out="deploy     cli      1      read:key/prod-*, "
         "execute:key/prod-*"),
    Step("$kw admin role show deploy --json", json=True),
    Step("$kw check write key/prod-db --user bob", rc=1, err="denied: bob is not a keywarden user"),
    # Logging in with a TOTP code.
    Step("$kw admin user totp-reset $USER", after=enrolled, out="otpauth://"),
    LOGIN,
    Step("build/keywarden status", out="user      you (roles: deploy, reviewer)"),
    Step("build/keywarden check execute key/prod-db"),
    Step("build/keywarden check execute key/staging-db", rc=1,
         err="denied: no role of you"),
    Step("build/keywarden check --json read key/prod-db/replica", json=True),
    Step("build/keywarden logout", out="logged out; session "),
    Step("build/keywarden check execute key/prod-db", rc=1, err="log in first"),
    Step("$kw admin session list"),
    Step("$kw admin session revoke --user $USER"),
    Step("$kw admin user lock $USER --message 'see the helpdesk' --expires 2h"),
    Step("$kw admin user list --locked", out="see the helpdesk"),
    Step("$kw admin user unlock $USER"),
    # API keys.
    Step("$kw admin role grant $USER developer"),
    LOGIN,
    Step("build/keywarden key set anthropic", input=KEY + "\n"),
    Step("build/keywarden key set anthropic sk-ant-oops", rc=2,
         err="keywarden: key set: refusing a key on the command line"),
    Step("build/keywarden key get anthropic", value=KEY),
    Step("build/keywarden key list", out="NAME       CURRENT  VERSIONS  CREATED"),
    Step("build/keywarden key verify anthropic",
         out="anthropic: ok (looks like an Anthropic key)"),
    Step("build/keywarden key import anthropic --from dotenv:$HOME/project/.env",
         out="imported anthropic (version 2) from dotenv:", err="now remove the old copy from"),
    Step("build/keywarden key import openai --from dotenv:$HOME/project/.env:OPENAI_API_KEY"),
    Step("build/keywarden key import anthropic --from env:ANTHROPIC_API_KEY"),
    Step("build/keywarden key import anthropic --from "
         "'command:op read op://Private/Anthropic/credential'"),
    Step("build/keywarden key rotate anthropic < ~/new-anthropic.key",
         out="anthropic: version 5 is current; version 4 stays readable until "),
    Step("build/keywarden key get anthropic --version 4", value=KEY4),
    Step("build/keywarden key get anthropic", value=KEY5),
    Step("build/keywarden key revoke anthropic --version 4"),
    Step("build/keywarden exec --key anthropic=ANTHROPIC_API_KEY -- python3 app.py",
         value="app sees a key of %d characters" % len(KEY5)),
    # The audit trail.
    Step("$kw admin audit verify", out="audit trail intact: "),
    Step("$kw admin audit pubkey", after=pubkey_is_the_file),
    Step("$kw admin audit query --since 1h --result denied", has="denied"),
    Step("$kw admin audit query --user $USER --action 'key.*' --since 2026-11-01",
         has="key.get"),
    Step("$kw admin audit export --format jsonl --since 7d --output audit-week.jsonl"),
    Step("sqlite3 var/lib/audit.db 'SELECT seq, ts, user, action, resource, result "
         "FROM audit_named'", has="|alice|login|user/alice|success"),
]


@pytest.fixture
def alice_make_run(tmpdir_short):
    assert not os.path.exists(PAM_FILE), "%s exists: the tour is without it" % PAM_FILE
    for tool in ("oathtool", "setpriv", "sqlite3"):
        if not shutil.which(tool):
            pytest.fail("%s is not installed (make deps)" % tool, pytrace=False)
    d = start_make_run(tmpdir_short, "alice")
    yield d
    problems = d.stop()
    assert not problems, problems


def test_readme_tour_as_typed(alice_make_run):
    d = alice_make_run
    text = tour_text()
    tour = Tour(d, d.root)
    exports(tour, "export KEYWARDEN_SOCKET=$PWD/var/run/broker.sock "
            "KEYWARDEN_CONFIG=$PWD/var/config.json", text)
    # kw=build/keywarden: the owner of the `make run` broker administers it.
    assert "\nkw=build/keywarden " in text
    tour.env["kw"] = "build/keywarden"
    for step in TOUR:
        tour.run(step, text)

    # What the steps left behind is what the README says it is.
    with open(os.path.join(d.root, "audit-week.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert records and all("hash" in r for r in records)
    with open(os.path.join(d.root, "audit-week.jsonl")) as f:
        exported = f.read()
    for value in (KEY, KEY2, KEY3, KEY4, KEY5, OPENAI):
        assert value not in exported, "a key's value in the audit trail"


def test_readme_tour_lines_all_run():
    """Every command line of the tour's blocks is a step of the tour test."""
    text = tour_text()
    # A broker of your own runs on a keychain: test_first_run.py walks it.
    own = text.index(OWN_BROKER)
    text = text[:own] + text[text.index("\n### ", own + 1):]
    steps = {s.cmd for s in TOUR}
    missing = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            cmd = line.split("  #")[0].strip()
            if not cmd or cmd.startswith("#"):
                continue
            # The export and kw= lines the tour test evaluates itself.
            if cmd.startswith(("export KEYWARDEN_SOCKET=", "kw=build/keywarden")):
                continue
            if cmd not in steps:
                missing.append(cmd)
    assert not missing, "README tour lines the tour test does not run: %s" % missing


@pytest.mark.parametrize("owner", ["alice", "root"])
def test_make_run_banner_agrees_with_readme(tmpdir_short, owner):
    """Each command `make run` suggests is one the README gives."""
    d = start_make_run(tmpdir_short, owner)
    try:
        banner = d.output()
    finally:
        problems = d.stop()
    assert not problems, problems
    text = readme()
    lines = banner.split("try:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    cmds = []
    for line in lines:
        cmd = line.split("  #")[0].strip()
        if not cmd or cmd.endswith(":"):
            continue
        # As typed in the checkout: build/, var/ ($PWD/var in the export), $USER.
        cmd = cmd.replace(os.path.join(d.root, "var"), "var").replace(BUILD, "build")
        cmd = re.sub(r"add (alice|USER) ", "add $USER ", cmd)
        cmds.append(cmd.replace("=var/", "=$PWD/var/"))
    assert len(cmds) == 7 and any("audit_named" in c for c in cmds), banner
    for cmd in cmds:
        assert cmd in text, "make run suggests what the README does not: %s" % cmd


# The same tour on a broker started as root (`sudo make run`): the README's
# kw="sudo build/keywarden --socket $KEYWARDEN_SOCKET", whose lines run as
# root; alice's own lines as alice.  The configuration steps are left out:
# the file is root's.
SUDO_KW = 'kw="sudo build/keywarden --socket $KEYWARDEN_SOCKET"'
ROOT_TOUR = [s for s in TOUR if not s.cmd.startswith(
    ("build/keywarden config", "build/keywardend", "sqlite3", "build/keywarden key import",
     "build/keywarden key rotate", "build/keywarden key get anthropic --version",
     "build/keywarden key revoke", "build/keywarden exec")) and s.value != KEY5]


@pytest.fixture
def root_make_run(tmpdir_short):
    assert not os.path.exists(PAM_FILE), "%s exists: the tour is without it" % PAM_FILE
    d = start_make_run(tmpdir_short, "root")
    yield d
    problems = d.stop()
    assert not problems, problems


def test_readme_tour_on_a_root_broker_with_sudo(root_make_run):
    d = root_make_run
    text = tour_text()
    tour = Tour(d, d.root)
    exports(tour, "export KEYWARDEN_SOCKET=$PWD/var/run/broker.sock "
            "KEYWARDEN_CONFIG=$PWD/var/config.json", text)
    assert "# a broker started as root: " + SUDO_KW in text
    tour.env["kw"] = SUDO_KW[4:-1]
    for step in ROOT_TOUR:
        tour.run(step, text)
    # The administration was root's, the logins and keys alice's.
    rows = audit_rows(d.audit_db, "action = 'user.add'")
    assert [(r["uid"], r["resource"]) for r in rows] == [(0, "user/alice")], rows
    rows = audit_rows(d.audit_db, "action = 'login' AND result = 'success'")
    assert {r["uid"] for r in rows} == {USERS["alice"][0]}, rows
