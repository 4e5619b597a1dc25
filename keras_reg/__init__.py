"""keras_reg: a regularization toolkit for Keras 3 on TensorFlow.

Sub-packages: `layers` (dropout, drop path, stochastic depth, DropBlock, group norm, weight noise),
`data` (Mixup/CutMix, Cutout, label smoothing, augmentation, data loading for tf.data),
`regularizers` (schedulable L1/L2 and `apply` for existing models), `callbacks`, `blocks`,
`tuning` (a KerasTuner search of the regularization strength) and `distribute`.

`import keras_reg` imports every sub-package, which registers every serializable keras_reg
class with Keras under the package name `keras_reg` (the layers, the regularizers, the data
transforms and the learning-rate schedule of the search), so that
`keras.models.load_model("best_model.keras")` finds them after `import keras_reg` alone. The
cost is small next to importing Keras itself, which every sub-package needs.

When `import keras_reg` is what first imports TensorFlow, the C++ start-up messages TensorFlow
writes to the process's standard error during that import (CUDA probing, CPU features, "All
log messages before absl::InitializeLog()"), which `TF_CPP_MIN_LOG_LEVEL` does not silence, are
discarded, so that `keras-reg` prints one line per user error. Set the environment variable
`KERAS_REG_TF_STARTUP_LOGS=1` to keep them. A Python exception raised by the import
is not affected (it is reported after standard error is restored).
"""

import contextlib as _contextlib
import os as _os
import sys as _sys

__version__ = "0.1.0"


@_contextlib.contextmanager
def _quiet_tensorflow_startup():
    """Sends file descriptor 2 to /dev/null while TensorFlow is first imported."""
    if "tensorflow" in _sys.modules or _os.environ.get("KERAS_REG_TF_STARTUP_LOGS") == "1":
        yield
        return
    _sys.stderr.flush()
    saved = _os.dup(2)
    devnull = _os.open(_os.devnull, _os.O_WRONLY)
    try:
        _os.dup2(devnull, 2)
        yield
    finally:
        _sys.stderr.flush()
        _os.dup2(saved, 2)
        _os.close(saved)
        _os.close(devnull)


with _quiet_tensorflow_startup():
    import tensorflow as _tensorflow  # noqa: F401

# Imported for their registration with `keras.saving` (see above) and as attributes.
from keras_reg import (  # noqa: E402,F401
    blocks,
    callbacks,
    data,
    distribute,
    layers,
    regularizers,
    tuning,
)

__all__ = ["layers", "data", "regularizers", "callbacks", "blocks", "tuning", "distribute",
           "__version__"]
