"""
What the keywarden command loads when it starts (issue 17).

Claude Code starts `keywarden hook claude` before every tool call and
`keywarden key get` for its API key, so the executable links only what
every command needs (jansson, libsodium, libkeyutils, libc); PCRE2,
libseccomp, PAM, libqrencode, zlib and libm are loaded by cli/lazy_libs.c's
stubs when a command first calls them.  These tests hold that line -- a
library added to the CLI's link would silently come back to every start --
and check that the stubs reach the real functions: the detection engine
(PCRE2 with JIT, and libm's log2 for entropy) finds and redacts secrets.
A command not marked lean (redact) loads all six by dlopen before it runs;
a lean one that needs none (--version here) loads none.  hook claude's
PostToolUse, which loads PCRE2 on first use, is test_hook_claude.py's.
No timing here: make bench measures.
"""
import os
import re
import subprocess

from conftest import CLI_BIN, SANITIZE, clean_env, run_process

# Besides libc and the loader; a sanitized build adds its runtimes.
LINKED = {"libjansson", "libsodium", "libkeyutils"}
RUNTIMES = {"libc", "ld-linux-x86-64", "libasan", "libubsan"}
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
# A high-entropy value behind a key name: found by the entropy rule (log2).
GENERIC = "api_secret = \"q8Zr4LmW2vXe9TnB7cYp3KdH6sJf1GaU\"\n"
# The sanitizer runtimes need libm themselves: there it is loaded at start.
RARE = ("libpcre2-8", "libseccomp", "libpam", "libqrencode", "libz") + (() if SANITIZE else ("libm",))


def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                         check=True).stdout
    return {re.sub(r"\.so.*$", "", m) for m in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)}


def test_the_cli_links_only_what_every_command_needs():
    libs = needed(CLI_BIN)
    assert LINKED <= libs, libs
    assert libs - LINKED - RUNTIMES == set(), \
        "the CLI links more than every command needs: %s (load it in cli/lazy_libs.c)" % \
        sorted(libs - LINKED - RUNTIMES)


def test_detection_runs_through_the_lazily_loaded_libraries(tmp_path):
    f = tmp_path / "leak.env"
    f.write_text("AWS_ACCESS_KEY_ID=%s\n%s" % (AWS_KEY, GENERIC))
    env = clean_env({"LD_DEBUG": "files", "LD_DEBUG_OUTPUT": str(tmp_path / "ld")})
    r = run_process([CLI_BIN, "redact", str(f)], env=env)
    assert r.returncode == 0, r.stderr
    assert AWS_KEY not in r.stdout and "[REDACTED:aws-access-key-id]" in r.stdout, r.stdout
    assert "[REDACTED:generic-secret]" in r.stdout, r.stdout
    log = "".join(open(tmp_path / p).read() for p in os.listdir(tmp_path) if p.startswith("ld."))
    # Loaded by dlopen from the CLI ("dynamically loaded by"), not at start-up.
    for lib in RARE:
        assert re.search(r"file=%s\.so\.\d+ \[0\];\s+dynamically loaded by" % re.escape(lib),
                         log), (lib, log[-2000:])
    s = run_process([CLI_BIN, "scan", str(f)], env=clean_env())
    assert s.returncode == 1 and "aws-access-key-id" in s.stdout, s.stdout + s.stderr


def test_a_command_without_the_rare_libraries_does_not_load_them(tmp_path):
    env = clean_env({"LD_DEBUG": "files", "LD_DEBUG_OUTPUT": str(tmp_path / "ld")})
    r = run_process([CLI_BIN, "--version"], env=env)
    assert r.returncode == 0, r.stderr
    log = "".join(open(tmp_path / p).read() for p in os.listdir(tmp_path) if p.startswith("ld."))
    for lib in RARE:
        assert "file=%s.so" % lib not in log, lib
