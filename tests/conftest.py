"""Test configuration shared by the whole suite.

TensorFlow must see its logical devices configured before it starts, so the CPU is split into
two logical devices here, at import time, for the MirroredStrategy tests.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0],
        [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
    )
except RuntimeError:  # already initialised (e.g. by a plugin); tests needing 2 devices skip
    pass


def logical_cpus():
    """Names of the logical CPU devices available to the tests."""
    return [d.name for d in tf.config.list_logical_devices("CPU")]


_MIRRORED = []


@pytest.fixture
def mirrored_strategy():
    """One `MirroredStrategy` over the two logical CPUs, shared by the whole session.

    Skips when the two devices could not be configured. Reduction to one device avoids
    collectives: a second collective all-reduce `MirroredStrategy` over the same devices in one
    process reuses the collective keys of the first and fails with "Shape mismatch in the
    collective instance" (TF 2.21, `model.fit` too).
    """
    cpus = logical_cpus()
    if len(cpus) < 2:
        pytest.skip("needs the 2 logical CPUs configured by tests/conftest.py")
    if not _MIRRORED:
        _MIRRORED.append(
            tf.distribute.MirroredStrategy(
                cpus[:2], cross_device_ops=tf.distribute.ReductionToOneDevice()
            )
        )
    return _MIRRORED[0]


@pytest.fixture(autouse=True)
def _reset_policy():
    """Every test starts and ends with the float32 policy and a fresh Keras session.

    `free_memory=False`: the session state (layer names, graph) is reset, but the full
    `gc.collect()` of a large heap (about a second per test on a loaded machine) is left to
    Python's own collector.
    """
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")
    keras.backend.clear_session(free_memory=False)
