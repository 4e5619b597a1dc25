"""examples/custom_model.py: build_model(reg) reads the trial's values; the script runs alone."""

import importlib.util
import pathlib

import keras
import numpy as np
import pytest

from keras_reg.layers import GroupNorm, InvertedDropout, StochasticDepth
from keras_reg.regularizers import penalty
from keras_reg.tuning import Regularization

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "custom_model.py"


@pytest.fixture(scope="module")
def example():
    # Imported the way `keras-reg search --model examples/custom_model.py:build_model` does.
    spec = importlib.util.spec_from_file_location("custom_model", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layers(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def test_unregularized_model_has_no_regularization(example):
    model = example.build_model(Regularization.none(), width=8)
    assert model.output_shape == (None, example.NUM_CLASSES)
    assert model.input_shape == (None, *example.INPUT_SHAPE)
    assert model.losses == []
    assert _layers(model, InvertedDropout) == []
    assert _layers(model, (keras.layers.BatchNormalization, GroupNorm)) == []
    assert [layer.rate for layer in _layers(model, StochasticDepth)] == [0.0, 0.0]


def test_model_reads_l2_norm_drop_path_and_dropout(example):
    reg = Regularization(l2=1e-3, dropout=0.25, drop_path=0.2, norm="group")
    model = example.build_model(reg, input_shape=(6, 6, 3), num_classes=4, width=8, depth=3)
    assert model.output_shape == (None, 4)
    # Penalty = λ·Σw² over every kernel (biases are not regularized).
    kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == 1 + 2 * 3 + 1
    expected = 1e-3 * sum(float(np.sum(np.square(k.numpy()))) for k in kernels)
    np.testing.assert_allclose(float(penalty(model)), expected, rtol=1e-5)
    assert len(_layers(model, GroupNorm)) == 1 + 2 * 3
    np.testing.assert_allclose([float(layer.rate) for layer in _layers(model, StochasticDepth)],
                               reg.drop_path_rates(3), atol=1e-7)
    assert [float(layer.rate) for layer in _layers(model, InvertedDropout)] == [0.25]
    batch = example.build_model(Regularization(norm="batch"), width=8)
    assert len(_layers(batch, keras.layers.BatchNormalization)) == 5
    # Probabilities out: the search trains on one-hot targets with a softmax head.
    probs = model(np.random.default_rng(0).random((2, 6, 6, 3)).astype("float32"))
    np.testing.assert_allclose(np.sum(probs, axis=-1), 1.0, atol=1e-5)


@pytest.mark.slow  # one of the longest default tests; CI's slow step runs it
def test_runs_on_its_own_and_learns(example, capsys):
    # Group norm: batch norm's moving statistics lag far behind after a few dozen steps.
    results = example.main(["--epochs", "3", "--width", "16", "--depth", "1", "--norm", "group",
                            "--l2", "1e-5", "--dropout", "0.1", "--drop-path", "0.1"])
    out = capsys.readouterr().out
    assert "digits: l2=1.00e-05 dropout=0.1 drop_path=0.1 norm=group; after 3 epochs" in out
    assert len(results["train_loss"]) == 3
    assert results["train_loss"][-1] < results["train_loss"][0]
    assert results["test_accuracy"] > 0.3  # chance is 0.1


def test_reads_an_npz_and_builds_for_its_shape(example, tmp_path):
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    images = rng.integers(0, 256, (60, 5, 5), dtype=np.uint8)
    np.savez(tmp_path / "three.npz", x_train=images, y_train=labels)
    args = example.parse_args(["--data", str(tmp_path / "three.npz"), "--batch-size", "8"])
    train, test, info = example.load_data(args)
    assert (info.name, info.image_shape, info.num_classes) == ("three", (5, 5, 1), 3)
    x, y = next(iter(train))
    assert x.shape == (8, 5, 5, 1) and sum(len(b) for b, _ in test) == 12
    model = example.build_model(args.reg, info.image_shape, info.num_classes, width=4)
    assert model(x).shape == (8, 3)


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "-2"], "--epochs must be >= 1, got -2"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--train-size", "3"], "--train-size must be >= 10"),
    (["--dropout", "1.5"], "--dropout"),
    (["--drop-path", "-0.1"], "--drop-path"),
    (["--l2", "-1"], "--l2"),
    (["--norm", "layer"], "--norm"),
    (["--epochs", "two"], "--epochs"),
    (["--data", "/no/such/folder"], "--data: Cannot use the data in /no/such/folder"),
])
def test_bad_arguments_are_one_line_and_exit_2(example, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        example.parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and not any("Traceback" in line for line in err)
