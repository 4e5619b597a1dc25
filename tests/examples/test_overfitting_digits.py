"""Runs examples/overfitting_digits.py with a tiny budget and checks its table and picture."""

import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "overfitting_digits.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("overfitting_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_run_writes_table_and_learning_curves(tmp_path, capsys):
    example = _load_example()
    argv = ["--train-size", "64", "--epochs", "2", "--width", "8",
            "--techniques", "none,all,adamw", "--out", str(tmp_path)]
    rows = example.main(argv)
    out = capsys.readouterr().out

    assert [r["technique"] for r in rows] == ["none", "all", "adamw"]
    for r in rows:
        assert 0.0 <= r["train_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0
        assert r["gap"] == pytest.approx(r["test_loss"] - r["train_loss"])
        assert len(r["curves"]["train_loss"]) == len(r["curves"]["test_loss"]) == 2
        assert r["best_test_loss"] == pytest.approx(min(r["curves"]["test_loss"]))
    # Only the run with L2 has a penalty; "all" has one, the others none.
    assert rows[0]["reg_loss"] == 0.0 and rows[2]["reg_loss"] == 0.0 and rows[1]["reg_loss"] > 0

    assert "| technique | train acc | test acc |" in out
    assert "64 training digits, 360 test digits, 2 epochs" in out
    table = (tmp_path / "results.md").read_text()
    assert "--train-size 64" in table
    for r in rows:
        assert f"| {r['technique']} | {r['train_acc']:.3f} | {r['test_acc']:.3f} |" in table

    import matplotlib.image

    picture = matplotlib.image.imread(tmp_path / "learning_curves.png")
    assert picture.ndim == 3 and picture.shape[0] > 100 and picture.shape[1] > 300
    assert np.std(picture[..., :3]) > 0.01  # not a blank image


def test_unknown_technique_is_a_one_line_error(capsys):
    example = _load_example()
    with pytest.raises(SystemExit) as info:
        example.parse_args(["--techniques", "none,magic"])
    assert info.value.code == 2
    assert "unknown technique(s) magic" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--train-size", "3"], "--train-size must be between 10 and 1437 (the digits training split), got 3"),
    (["--train-size", "5000"], "--train-size must be between 10 and 1437 (the digits training split), got 5000"),
    (["--epochs", "-2"], "--epochs must be >= 1, got -2"),
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--width", "12"], "--width must be a positive multiple of 8, got 12"),
    (["--width", "0"], "--width must be a positive multiple of 8, got 0"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, message):
    example = _load_example()
    with pytest.raises(SystemExit) as info:
        example.parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_digits_train_size_matches_the_data():
    from keras_reg.data import load

    example = _load_example()
    _, info = load("digits", "train", with_info=True)
    assert example.DIGITS_TRAIN_SIZE == info.num_examples["train"]
