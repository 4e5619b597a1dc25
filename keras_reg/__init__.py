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
"""

__version__ = "0.1.0"

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
