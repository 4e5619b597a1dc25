"""Fixtures shared by the tuning tests: the digits, and one finished search they all read."""

import shutil

import keras
import pytest

from keras_reg.data import load
from keras_reg.tuning import RegularizationTuner
from tests.tuning._tiny import PROTOCOL, SPACE, tiny_model

# The shared search: 3 trials of 2 epochs, the references `start` and `none` then one searched.
ARGS = dict(space=SPACE, tuner="random", max_trials=3, seed=3, references=("start", "none"),
            protocol=PROTOCOL)
EPOCHS = 2


@pytest.fixture(scope="session")
def data():
    """64 training digits and the last 20 % of the train split, batches of 32."""
    return load("digits", ("train[:64]", "train[80%:]"), batch_size=32)


class Finished:
    """A finished search: its tuner, result, the progress calls, its directory and logs."""

    def __init__(self, tuner, seen, directory, tensorboard):
        self.tuner, self.seen = tuner, seen
        self.directory, self.tensorboard = directory, tensorboard

    @property
    def result(self):
        return self.tuner.result()

    def copy(self, to):
        """A copy of the search directory under `to` (to resume it without touching this one)."""
        shutil.copytree(self.directory, to / "search")
        return str(to / "search")


@pytest.fixture(scope="session")
def finished(data, tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    seen = []
    tuner = RegularizationTuner(
        tiny_model, directory=str(root / "search"),
        progress=lambda record, total: seen.append((record.number, record.label, total)),
        **ARGS)
    tuner.search(data[0], validation_data=data[1], epochs=EPOCHS,
                 callbacks=[keras.callbacks.TensorBoard(str(root / "tb"))])
    return Finished(tuner, seen, str(root / "search"), str(root / "tb"))
