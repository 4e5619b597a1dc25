"""Test configuration shared by the whole suite.

TensorFlow must see its logical devices configured before it starts, so the CPU is split into
two logical devices here, in `pytest_configure` (before any test module is imported), for the
MirroredStrategy tests. The pytest-xdist controller of `pytest -n 2` runs no test and does not
import TensorFlow at all (about 12 s of CPU on a 2-core machine).
"""

import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


def _xdist_controller(config):
    """True in the process that hands tests to pytest-xdist workers (and runs none itself)."""
    if hasattr(config, "workerinput") or config.getoption("collectonly"):
        return False  # a worker, or a controller that collects itself
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


@contextlib.contextmanager
def _quiet_fd2():
    """Discards what C++ code writes to file descriptor 2: TensorFlow's start-up messages on a
    machine without a GPU ("Could not find cuda drivers", "failed call to cuInit"), which
    pytest's capture hid when this module imported TensorFlow but not in pytest_configure."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def pytest_configure(config):
    if _xdist_controller(config):
        return
    with _quiet_fd2():
        import keras  # noqa: F401
        import tensorflow as tf

        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0],
                [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
            )
        except RuntimeError:  # already initialised (e.g. by a plugin); 2-device tests skip
            pass


def logical_cpus():
    """Names of the logical CPU devices available to the tests."""
    import tensorflow as tf

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
        import tensorflow as tf

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
    import keras

    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")
    keras.backend.clear_session(free_memory=False)
