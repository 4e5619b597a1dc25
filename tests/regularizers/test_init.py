"""keras_reg.regularizers as a package: its public names, and modules that import one another in
one direction only (any of them can be imported first)."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

from keras_reg import regularizers

PACKAGE = pathlib.Path(regularizers.__file__).parent
ROOT = PACKAGE.parents[1]


def test_public_names():
    assert sorted(regularizers.__all__) == sorted(
        ["L1", "L2", "L1L2", "l1", "l2", "l1_l2", "apply", "penalty", "DEFAULT_SKIP"])
    for name in ("L1", "L2", "L1L2", "l1", "l2", "l1_l2"):
        assert getattr(regularizers, name).__module__ == "keras_reg.regularizers.l1_l2"
    assert callable(regularizers.apply) and callable(regularizers.penalty)
    assert regularizers.DEFAULT_SKIP == ("normalization", "embedding")


def _imports(path):
    """The keras_reg modules `path` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("keras_reg")}


def test_the_modules_import_one_another_without_a_circle():
    modules = {f"keras_reg.regularizers.{p.stem}": p for p in PACKAGE.glob("*.py")
               if p.stem != "__init__"}
    graph = {name: _imports(path) & set(modules) for name, path in modules.items()}
    order = []  # a topological order exists iff there is no circle
    while graph:
        ready = sorted(name for name, needs in graph.items() if not needs - set(order))
        assert ready, f"import circle among {sorted(graph)}: {graph}"
        order.extend(ready)
        for name in ready:
            del graph[name]
    # and none of them reaches back into the package's namespace
    for path in modules.values():
        assert "keras_reg.regularizers" not in _imports(path), path.name


@pytest.mark.slow  # a fresh interpreter per module, each importing TensorFlow
@pytest.mark.parametrize("module", ["_arguments", "apply", "l1_l2", "penalty"])
def test_each_module_can_be_imported_first(module):
    code = (f"import keras_reg.regularizers.{module}; from keras_reg import regularizers; "
            "regularizers.apply; regularizers.l1_l2(0.1)")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
