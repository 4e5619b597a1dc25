"""TensorFlow's start-up messages, silenced in one place when keras_reg first imports it.

Importing TensorFlow writes C++ lines straight to the process's standard error (file
descriptor 2): CUDA probing on a machine without a GPU ("Could not find cuda drivers", "failed
call to cuInit"), CPU features, "All log messages before absl::InitializeLog() is called are
written to STDERR". `TF_CPP_MIN_LOG_LEVEL` does not reach all of them, so while TensorFlow is
first imported file descriptor 2 goes to /dev/null (`quiet_startup`, used by `import keras_reg`
too). The command line goes further (`import_tensorflow`): later C++ lines (XLA's "service.cc
... XLA service initialized", CUDA and cuDNN notices when the first model runs) are info and
warning logs, which `TF_CPP_MIN_LOG_LEVEL=2` silences (set unless the user set it), and
TensorFlow's and absl's Python loggers are set to errors only.

The environment variable `KERAS_REG_TF_STARTUP_LOGS=1` keeps every message. A Python exception
raised by the import is not affected (it is raised after standard error is restored).
"""

import contextlib
import os
import sys

KEEP_LOGS = "KERAS_REG_TF_STARTUP_LOGS"


def _keep():
    return os.environ.get(KEEP_LOGS) == "1"


@contextlib.contextmanager
def quiet_startup():
    """Discards what is written to file descriptor 2 while TensorFlow is first imported.

    A no-op when TensorFlow is already imported or `KERAS_REG_TF_STARTUP_LOGS=1`.
    """
    if "tensorflow" in sys.modules or _keep():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow(devices=False):
    """Imports TensorFlow with its start-up messages and later info and warning logs silenced
    (for the whole process: the command line's choice), and returns the module.

    Args:
        devices: also initialise the devices inside the silenced window (their start-up lines
            are written when the first tensor is made otherwise).
    """
    if not _keep():
        # Read by TensorFlow's C++ logging when it starts: info and warnings off.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_startup():
        import tensorflow as tf

        if devices:
            tf.config.list_logical_devices()
    if not _keep():
        tf.get_logger().setLevel("ERROR")  # e.g. retracing notices
        try:
            import absl.logging

            absl.logging.set_verbosity(absl.logging.ERROR)
        except ImportError:
            pass
    return tf
