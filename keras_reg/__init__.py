"""keras_reg: a regularization toolkit for Keras 3 on TensorFlow.

Sub-packages: `layers` (dropout, drop path, stochastic depth, DropBlock, group norm, weight noise),
`data` (Mixup/CutMix, Cutout, label smoothing, augmentation, data loading for tf.data),
`regularizers` (schedulable L1/L2 and `apply` for existing models), `callbacks`, `blocks`,
`tuning` (a KerasTuner search of the regularization strength) and `distribute`.

`import keras_reg` registers every serializable keras_reg class with Keras (the layers, the
regularizers and the data transforms, under the package name `keras_reg`), so that
`keras.models.load_model("model.keras")` finds them: the modules defining them are imported
here. They import nothing Keras itself does not already import. `tuning` (which imports
KerasTuner) and `distribute` are imported on first use.
"""

import importlib

__version__ = "0.1.0"

# Imported for their registration with `keras.saving` (see the module docstring).
from keras_reg import blocks, callbacks, data, layers, regularizers  # noqa: E402,F401

_LAZY = ("tuning", "distribute")

__all__ = ["layers", "data", "regularizers", "callbacks", "blocks", "tuning", "distribute",
           "__version__"]


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"keras_reg.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'keras_reg' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
