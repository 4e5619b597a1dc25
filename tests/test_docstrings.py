"""Runs the `>>>` examples of every docstring in the package (STYLE.md: examples are executed)."""

import doctest
import importlib
import pkgutil

import pytest

import keras_reg


def _modules():
    names = ["keras_reg"]
    for info in pkgutil.walk_packages(keras_reg.__path__, prefix="keras_reg."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
        report=True,
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
