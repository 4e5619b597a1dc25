"""The residual digits example runs end to end with a tiny budget."""

import importlib.util
import os

import pytest

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "residual_digits.py")


def _load_example():
    spec = importlib.util.spec_from_file_location("residual_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_saved_and_exported(results, tmp_path):
    # The .keras reload and the SavedModel serve the in-memory model's predictions.
    assert results["reloaded_max_diff"] <= 1e-5, results
    assert results["exported_max_diff"] <= 1e-5, results
    assert results["reloaded_accuracy"] == results["accuracy"]
    assert results["exported_accuracy"] == results["accuracy"]
    assert os.path.isfile(tmp_path / "residual_digits.keras")
    assert os.path.isfile(tmp_path / "saved_model" / "saved_model.pb")


@pytest.mark.slow
def test_residual_digits_trains_saves_exports_and_reloads(tmp_path, capsys):
    example = _load_example()
    results = example.main(["--epochs", "3", "--out", str(tmp_path), "--seed", "0"])
    assert "test accuracy" in capsys.readouterr().out
    # Ten classes: chance is 0.1.
    assert results["accuracy"] >= 0.6, results
    _check_saved_and_exported(results, tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "-2"], "--epochs must be >= 1, got -2"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--epochs", "x"], "--epochs"),
    (["--width", "12"], "--width must be a positive multiple of 8, got 12"),
    (["--depth", "0"], "--depth must be >= 1, got 0"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, message):
    example = _load_example()
    with pytest.raises(SystemExit) as info:
        example.parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_out_that_is_a_file_is_rejected(tmp_path, capsys):
    example = _load_example()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as info:
        example.parse_args(["--out", str(blocker)])
    assert info.value.code == 2 and "is a file" in capsys.readouterr().err
    assert blocker.read_text() == "x"
