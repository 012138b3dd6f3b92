"""The package's import graph is acyclic, and every module imports on its own.

A circle (e.g. the former train -> evaluate -> workdir -> train) makes a
module's behaviour depend on which module was imported first; a deferred
(function-level) import hides it until some call.  The graph below counts
imports inside functions too.
"""

import ast
import os
import re
import subprocess
import sys

import wsol_keras

PACKAGE_DIR = os.path.dirname(os.path.abspath(wsol_keras.__file__))
ROOT = os.path.dirname(PACKAGE_DIR)


def package_modules():
    """{dotted module name: file path} of every module under wsol_keras/."""
    mods = {}
    for folder, _, files in os.walk(PACKAGE_DIR):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                mods[name.removesuffix(".__init__")] = path
    return mods


def import_graph(mods):
    """module -> set of package modules it imports, anywhere in its code."""

    def resolve(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges = {m: set() for m in mods}
    for m, path in mods.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        package = m if path.endswith("__init__.py") else m.rpartition(".")[0]
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                # `from pkg import sub` imports the submodule when there is one.
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                    for a in node.names
                ]
            for t in targets:
                r = resolve(t)
                # A module's parent packages run before it anyway: not an edge.
                if r and r != m and not m.startswith(r + "."):
                    edges[m].add(r)
    return edges


def find_cycle(edges):
    state, stack = {}, []

    def visit(u):
        state[u] = "open"
        stack.append(u)
        for v in sorted(edges[u]):
            if state.get(v) == "open":
                return stack[stack.index(v) :] + [v]
            if v not in state:
                cycle = visit(v)
                if cycle:
                    return cycle
        stack.pop()
        state[u] = "done"
        return None

    for u in sorted(edges):
        if u not in state:
            cycle = visit(u)
            if cycle:
                return cycle
    return None


def test_graph_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_is_acyclic_including_function_level_imports():
    mods = package_modules()
    assert "wsol_keras.models.registry" in mods and "wsol_keras.training.trainer" in mods
    edges = import_graph(mods)
    assert "wsol_keras.models.registry" in edges["wsol_keras.training.workdir"]
    assert "wsol_keras.training.trainer" not in edges["wsol_keras.training.workdir"]
    cycle = find_cycle(edges)
    assert cycle is None, " -> ".join(cycle)


def test_every_module_imports_alone_in_a_fresh_interpreter():
    # One interpreter (TensorFlow loads once); before each module every
    # wsol_keras module is dropped from sys.modules, so each import starts
    # from nothing of the package.
    names = sorted(package_modules())
    code = (
        "import importlib, sys, traceback\n"
        f"failed = []\n"
        f"for name in {names!r}:\n"
        "    for m in [m for m in sys.modules if m == 'wsol_keras' or m.startswith('wsol_keras.')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed.append(name + ': ' + traceback.format_exc(limit=3))\n"
        "print('FAILED', len(failed))\n"
        "print('\\n'.join(failed))\n"
    )
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FAILED 0" in proc.stdout, proc.stdout[-4000:]


def test_training_names_no_method():
    # Method-specific phases come from wsol_keras.models.phases; the training
    # folder stays method-neutral (a new method never edits it).
    from wsol_keras.models.registry import METHODS

    training_dir = os.path.join(PACKAGE_DIR, "training")
    names = [n for n in METHODS if len(n) > 3] + ["slt", "SLT", "acol", "danet"]
    found = []
    for fname in sorted(os.listdir(training_dir)):
        if not fname.endswith(".py"):
            continue
        with open(os.path.join(training_dir, fname)) as f:
            for lineno, line in enumerate(f, 1):
                for name in names:
                    if re.search(rf"\b{name}\b", line):
                        found.append(f"training/{fname}:{lineno}: {name}")
    assert not found, found
