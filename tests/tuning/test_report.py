"""report.retrain: the baseline and the best values retrained under one protocol."""

import pytest

from keras_reg.data import load
from keras_reg.tuning import Regularization
from keras_reg.tuning.report import comparison_table, retrain

SPLITS = ("train[:96]", "train[80%:]", "test[:64]")


def _data():
    return load("digits", SPLITS, batch_size=32, seed=3)


def _runs(train, val, test):
    reg = Regularization(l2=1e-4, norm="batch")
    return retrain({"a": reg, "b": reg}, train, val, test, num_classes=10, epochs=2,
                   patience=None, seed=0, input_shape=(8, 8, 1))


def test_fresh_datasets_give_every_run_the_same_data_order():
    runs = _runs(lambda: _data()[0], lambda: _data()[1], _data()[2])
    a, b = runs["a"].history.history, runs["b"].history.history
    assert a["loss"] == b["loss"] and a["val_data_loss"] == b["val_data_loss"]
    assert runs["a"].metrics == runs["b"].metrics
    assert "| a |" in comparison_table(runs)


@pytest.mark.slow
def test_a_shared_shuffled_dataset_gives_the_second_run_other_epochs():
    # Why the CLI hands retrain dataset factories: the same reg and seed, other results.
    train, val, test = _data()
    runs = _runs(train, val, test)
    assert runs["a"].history.history["loss"] != pytest.approx(runs["b"].history.history["loss"],
                                                              rel=1e-9)
