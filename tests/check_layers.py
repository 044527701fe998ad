#!/usr/bin/env python3
"""Layering check: dependencies between folders point one way.

Reads every #include "..." of the product's C files (paths are written from
the top of the tree, so each include names its folder) and fails, naming
the include, on:

  * a circle of modules (foo.c and foo.h are one module: batch.c includes
    monitor.h and monitor.c includes batch.h), through any path;
  * an include a folder's layer may not make (an "upward" include), per
    LAYERS below;
  * a circle between feature folders of the broker (accounts -> login ->
    accounts), even when no single file closes it.

A file of a broker feature folder (broker/accounts, broker/login, ...) is a
*plug-in* file when it is a request handler (op_*.c) or includes
broker/dispatch/: it sits above the dispatcher.  The feature's other files
are *services* the dispatcher and other features may use; they must not
reach up into dispatch/ or core/.

Usage: tests/check_layers.py [ROOT]   (exit 0 clean, 1 violations)
       tests/check_layers.py --self-test  (the check fails on planted mistakes)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "--self-test"
                       else os.path.join(HERE, ".."))
SOURCE_DIRS = ["common", "rbac", "policy", "sandbox", "client", "keystore", "broker", "cli", "pam_module",
               "proxy"]
FEATURES = ["accounts", "login", "keys", "audit", "alerts", "policy", "apiproxy"]

LOW = {"common", "client", "rbac", "policy", "policy/shell", "policy/detect", "keystore",
       "keystore/backends", "keystore/providers", "keystore/cipher"}
# layer -> the layers its files may include (besides their own folder).
LAYERS = {
    "common": set(),
    "rbac": {"common"},
    "policy/shell": {"common"},
    "policy/detect": {"common"},
    "policy": {"common", "policy/shell", "policy/detect"},
    # The kernel sandbox (keywarden run): the policy's matchers and detector.
    "sandbox": {"common", "policy", "policy/detect"},
    "client": {"common"},
    "keystore/cipher": {"common"},
    "keystore/providers": {"common", "keystore/cipher"},
    "keystore/backends": {"common", "keystore/cipher", "keystore/providers"},
    "keystore": {"common", "keystore/cipher", "keystore/providers", "keystore/backends"},
    "broker/store": {"common", "client", "rbac"},
    "service": LOW | {"broker/store", "service"},
    "broker/dispatch": LOW | {"broker/store", "service"},
    "plugin": LOW | {"broker/store", "service", "broker/dispatch", "plugin"},
    "broker/core": {"common", "client", "broker/dispatch"},
    "broker": None,		# broker/main.c wires everything together
    "cli": {"common", "client", "rbac", "policy", "policy/shell", "policy/detect", "sandbox"},
    "pam_module": {"common", "client"},
    # The API proxy's process (keywarden-proxy): talks to the broker as a client.
    "proxy": {"common", "client", "policy"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def product_files():
    for top in SOURCE_DIRS:
        for d, _, names in os.walk(os.path.join(ROOT, top)):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, n), ROOT)


def folder(path):
    return os.path.dirname(path)


def feature_of(path):
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "broker" and parts[1] in FEATURES:
        return parts[1]
    return None


def main():
    files = sorted(product_files())
    includes = {}
    for f in files:
        with open(os.path.join(ROOT, f), encoding="utf-8") as fh:
            includes[f] = [i for i in INCLUDE.findall(fh.read())
                           if os.path.exists(os.path.join(ROOT, i))]
    problems = []

    # foo.c and foo.h are one module (an internal header belongs to the module
    # it serves): a module is a plug-in when any of its files is one.
    def module(path):
        return re.sub(r"_internal$", "", os.path.splitext(path)[0])

    def plugin_file(path):
        return os.path.basename(path).startswith("op_") or any(
            i.startswith("broker/dispatch/") for i in includes.get(path, []))

    plugins = {module(f) for f in files if feature_of(f) and plugin_file(f)}
    # A module that includes a plug-in is one too: iterate to a fixed point.
    changed = True
    while changed:
        changed = False
        for f in files:
            if feature_of(f) and module(f) not in plugins and any(
                    feature_of(i) and module(i) in plugins for i in includes[f]):
                plugins.add(module(f))
                changed = True

    def layer(path):
        if feature_of(path):
            return "plugin" if module(path) in plugins else "service"
        return folder(path)

    layers = {f: layer(f) for f in files}

    for f in files:
        mine = layers[f]
        allowed = LAYERS.get(mine, set())
        for i in includes[f]:
            if folder(i) == folder(f) and not feature_of(f):
                continue
            theirs = layers.get(i, folder(i))
            if allowed is None or theirs == mine and feature_of(f) == feature_of(i):
                continue
            if theirs not in allowed:
                problems.append("%s (%s) includes %s (%s): upward or sideways include"
                                % (f, mine, i, theirs))

    # Circles of modules: batch.c including monitor.h while monitor.c includes
    # batch.h is a circle too.
    deps = {}
    for f in files:
        for i in includes[f]:
            if module(i) != module(f):
                deps.setdefault(module(f), {}).setdefault(module(i), (f, i))
    state = {}

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for n, why in sorted(deps.get(m, {}).items()):
            if state.get(n) == 1:
                cyc = stack[stack.index(n):] + [n]
                problems.append("include circle: %s (%s includes %s)"
                                % (" -> ".join(cyc), why[0], why[1]))
            elif not state.get(n):
                visit(n, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(deps):
        if not state.get(m):
            visit(m, [])

    # Circles between feature folders, through their service files.
    edges = {}
    for f in files:
        if layers[f] != "service":
            continue
        for i in includes[f]:
            if layers.get(i) == "service" and feature_of(i) != feature_of(f):
                edges.setdefault(feature_of(f), {}).setdefault(feature_of(i), (f, i))
    seen = {}

    def fvisit(n, stack):
        seen[n] = 1
        stack.append(n)
        for m, why in sorted(edges.get(n, {}).items()):
            if seen.get(m) == 1:
                cyc = stack[stack.index(m):] + [m]
                problems.append("feature circle: %s (%s includes %s)"
                                % (" -> ".join(cyc), why[0], why[1]))
            elif not seen.get(m):
                fvisit(m, stack)
        stack.pop()
        seen[n] = 2

    for n in sorted(edges):
        if not seen.get(n):
            fvisit(n, [])

    for p in problems:
        print("layers: " + p, file=sys.stderr)
    n_inc = sum(len(v) for v in includes.values())
    if problems:
        print("layers: %d problem(s) in %d includes of %d files" % (len(problems), n_inc,
              len(files)), file=sys.stderr)
        return 1
    print("layers: %d includes of %d files point one way" % (n_inc, len(files)), flush=True)
    return 0


# Mistakes the check must catch: (file, include planted after its first include).
PLANTED = [
    ("broker/store/state.c", "broker/core/daemon.h"),          # upward
    ("broker/core/loop.c", "broker/keys/keys.h"),              # core knows a feature
    ("common/config.c", "rbac/rbac.h"),                         # common reaches up
    ("broker/dispatch/batch.c", "broker/dispatch/dispatch.h"),  # a circle
    ("broker/login/sessions.h", "broker/alerts/monitor.h"),     # service -> plug-in
]


def self_test():
    """Run the check on copies of the tree, clean and with each mistake."""
    failures = 0
    with tempfile.TemporaryDirectory(prefix="kw-layers.") as tmp:
        for top in SOURCE_DIRS:
            shutil.copytree(os.path.join(ROOT, top), os.path.join(tmp, top),
                            ignore=shutil.ignore_patterns("*.o", "*.d"))
        clean = subprocess.run([sys.executable, __file__, tmp], capture_output=True, text=True)
        if clean.returncode != 0:
            print("layers self-test: the clean tree fails:\n" + clean.stderr, file=sys.stderr)
            return 1
        for path, planted in PLANTED:
            full = os.path.join(tmp, path)
            with open(full, encoding="utf-8") as fh:
                text = fh.read()
            first = INCLUDE.search(text)
            bad = text[:first.end()] + '\n#include "%s"' % planted + text[first.end():]
            with open(full, "w", encoding="utf-8") as fh:
                fh.write(bad)
            cp = subprocess.run([sys.executable, __file__, tmp], capture_output=True, text=True)
            with open(full, "w", encoding="utf-8") as fh:
                fh.write(text)
            if cp.returncode != 1 or (planted not in cp.stderr and path not in cp.stderr):
                print("layers self-test: %s including %s went unnoticed" % (path, planted),
                      file=sys.stderr)
                failures += 1
    if failures:
        return 1
    print("layers self-test: %d planted mistakes caught" % len(PLANTED))
    return 0


if __name__ == "__main__":
    sys.exit(self_test() if sys.argv[1:] == ["--self-test"] else main())
