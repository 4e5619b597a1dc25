"""Fixtures shared by the tuning tests."""

import pytest

from keras_reg.data import load


@pytest.fixture(scope="module")
def data():
    """64 training digits and the last 20 % of the train split, batches of 32."""
    return load("digits", ("train[:64]", "train[80%:]"), batch_size=32)
