"""
Progress on a terminal, nothing when piped (issue 12).

`key import --from command:CMD` redraws "waiting for CMD... Ns" on stderr
while the command runs, `key verify` shows "checking NAME..." while the
broker checks the key, `admin audit verify` "verifying the audit trail...";
each line is cleared at the end.  They are drawn only when stderr is a
terminal (whatever stdout is, --json included), never into a pipe or a
file.  The terminal is a tmux pane; pipe-pane keeps the bytes it received,
so a line that was drawn and then cleared is still seen.
"""
import json
import os
import shutil

import pytest

from conftest import BUILD, IO_TIMEOUT, clean_env, run_process, wait_for
from test_cli_hardening import Tmux

CLI = os.path.join(BUILD, "keywarden")
KEY = "sk-ant-api03-" + "P" * 80 + "AA"
SLOW_CMD = "sleep 2; echo %s" % KEY
# The command as the line shows it: its first 48 characters.
WAITING = "waiting for %s... " % SLOW_CMD[:48]


class RootPane(Tmux):
    """Tmux's pane with root's shell, whose prompt is "#" (dash ignores PS1 there)."""

    def __init__(self, directory, env):
        self.sock = os.path.join(directory, "tmux.sock")
        self.marks = 0
        self.tmux("new-session", "-d", "-x", "200", "-y", "50", "/bin/sh",
                  env=dict(env, TERM="xterm"))
        self.shell_pid = int(self.tmux("display-message", "-p", "#{pane_pid}").strip())
        wait_for(lambda: "#" in self.screen(), IO_TIMEOUT, what="the shell's prompt")


@pytest.fixture
def pane(broker_factory):
    """A root shell in a tmux pane against a broker; its raw output in pane.log."""
    if not shutil.which("tmux"):
        pytest.fail("tmux is not installed (contrib/deps.sh)", pytrace=False)
    b = broker_factory()
    env = clean_env({"KEYWARDEN_SOCKET": b.sock, "HOME": "/nonexistent"})
    t = RootPane(b.root, env)
    t.broker, t.env = b, env
    t.log = os.path.join(b.root, "pane.log")
    t.tmux("pipe-pane", "-o", "cat >> %s" % t.log)
    yield t
    t.kill()


def raw(t):
    with open(t.log, "rb") as f:
        return f.read().decode("utf-8", "replace")


def test_import_from_a_slow_command_shows_waiting_on_a_terminal(pane):
    t = pane
    t.type("%s key import slow --from 'command:%s'" % (CLI, SLOW_CMD))
    # Redrawn while the command runs: the seconds count up.
    t.wait_text(WAITING + "1s")
    # Nothing typed ahead: the terminal's echo of it would move the line.
    t.wait_text("the key is now also in keywarden")
    assert "imported slow (version 1)" in t.screen(), t.screen()
    # Cleared at the end: the line the key's report took is not left behind.
    assert "waiting for" not in t.screen(), t.screen()
    log = raw(t)
    assert "\r\033[K%s0s\r\033[K%s1s\r\033[K" % (WAITING, WAITING) in log, log


def test_import_with_stderr_piped_writes_only_its_output(pane):
    t = pane
    cp = run_process([CLI, "key", "import", "slow", "--from", "command:" + SLOW_CMD],
                     env=t.env)
    assert cp.returncode == 0, cp
    assert cp.stdout.startswith("imported slow (version 1) from command:sleep 2") \
        and cp.stdout.count("\n") == 1, cp.stdout
    assert cp.stderr == "the source stays where it was; the key is now also in keywarden\n", \
        cp.stderr
    # In the pane: stdout at the terminal, stderr into a file: nothing drawn there.
    err = os.path.join(t.broker.root, "import.err")
    out = t.run("%s key import slow --from 'command:%s' 2>%s" % (CLI, SLOW_CMD, err))
    assert "imported slow (version 2)" in out, out
    with open(err) as f:
        assert f.read() == "the source stays where it was; the key is now also in keywarden\n"
    assert "waiting for" not in raw(t), raw(t)


def test_progress_goes_to_a_terminal_stderr_even_with_json(pane):
    t = pane
    path = os.path.join(t.broker.root, "import.json")
    # stdout into a file, stderr the terminal: progress drawn, stdout one JSON value.
    t.run("%s key import slow --json --from 'command:%s' >%s" % (CLI, SLOW_CMD, path))
    with open(path) as f:
        doc = json.load(f)
    assert isinstance(doc, dict) and "error" not in doc, doc
    assert WAITING + "1s" in raw(t), raw(t)


def test_verify_commands_show_what_they_wait_for(pane):
    t = pane
    ok = t.run("printf '%s\\n' | %s key set anthropic" % (KEY, CLI))
    assert "version 1" in ok, ok
    out = t.run("%s key verify anthropic" % CLI)
    assert "anthropic: ok" in out, out
    out = t.run("%s admin audit verify" % CLI)
    assert "audit trail intact" in out, out
    log = raw(t)
    assert "\r\033[Kchecking anthropic...\r\033[K" in log, log
    assert "\r\033[Kverifying the audit trail...\r\033[K" in log, log
    # Neither is left on the screen.
    screen = t.screen()
    assert "checking" not in screen and "verifying" not in screen, screen

    # Piped, the same commands write their output and nothing else.
    for argv, want in (([CLI, "key", "verify", "anthropic"], "anthropic: ok"),
                       ([CLI, "admin", "audit", "verify"], "audit trail intact")):
        cp = run_process(argv, env=t.env)
        assert cp.returncode == 0 and want in cp.stdout, cp
        assert cp.stderr == "", cp.stderr
        cp = run_process(argv + ["--json"], env=t.env)
        assert cp.returncode == 0 and cp.stderr == "", cp
        json.loads(cp.stdout)

