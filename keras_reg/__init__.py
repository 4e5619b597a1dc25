"""keras_reg: a regularization toolkit for Keras 3 on TensorFlow.

Sub-packages: `layers` (dropout, drop path, stochastic depth, DropBlock, group norm, weight noise),
`data` (Mixup/CutMix, Cutout, label smoothing, augmentation, data loading for tf.data),
`regularizers` (schedulable L1/L2 and `apply` for existing models), `callbacks`, `blocks`,
`tuning` (a KerasTuner search of the regularization strength) and `distribute`.

Sub-packages are imported on first use, so `import keras_reg` stays cheap.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "layers",
    "data",
    "regularizers",
    "callbacks",
    "blocks",
    "tuning",
    "distribute",
)

__all__ = list(_SUBMODULES) + ["__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"keras_reg.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'keras_reg' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
