"""`RegularizationLogger`: splits the loss into the data loss and the weight penalty."""

import keras

from keras_reg.callbacks._base import CopyableCallback
from keras_reg.regularizers import penalty


def _penalty_function(model):
    """`penalty(model)` as a compiled function on TensorFlow (one cheap call per batch)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda: penalty(model))
    return lambda: penalty(model)


class RegularizationLogger(CopyableCallback):
    """Adds `reg_loss` and `data_loss` (= loss − reg_loss) to the epoch logs, train and validation.

    The training `loss` Keras reports is the batch-size-weighted mean over the epoch of
    `data loss + penalty`, each batch's penalty computed from the weights *before* that batch's
    update. This callback reproduces that average exactly: it evaluates the weight penalty
    (`keras_reg.regularizers.penalty`) at the beginning of every training batch and averages it
    with the same batch-size weights Keras uses for the loss, so `data_loss + reg_loss == loss`
    and `data_loss` is the mean data term of the epoch (with `steps_per_execution=k` the penalty
    is sampled once per k steps). The validation penalty is constant during evaluation and is
    read at the end of the epoch: `val_reg_loss`, `val_data_loss = val_loss − val_reg_loss`.
    `reg_loss` covers weight regularizers (any, not only keras_reg's); activity regularization
    and `add_loss` terms stay in `data_loss`.

    The keys are written in `on_epoch_end`, before `History` and the progress bar read them; put
    this callback before `TensorBoard` / `CSVLogger` / `EarlyStopping` in the callbacks list.

    Example:

    >>> import numpy as np
    >>> from keras_reg.callbacks import RegularizationLogger
    >>> model = keras.Sequential([keras.Input((3,)),
    ...                           keras.layers.Dense(1, kernel_regularizer="l2")])
    >>> model.compile("sgd", "mse")
    >>> history = model.fit(np.ones((8, 3)), np.zeros((8, 1)), epochs=1, verbose=0,
    ...                     callbacks=[RegularizationLogger()])
    >>> sorted(k for k in history.history if k.endswith("_loss"))
    ['data_loss', 'reg_loss']

    Reference:
        - [Goodfellow, Bengio & Courville, 2016. Deep Learning, section 7.1 (parameter norm
          penalties)](https://www.deeplearningbook.org/contents/regularization.html)
    """

    _RUNTIME = ("_penalty", "_counter")

    def __init__(self):
        super().__init__()
        self._penalty = None
        self._counter = None

    def on_train_begin(self, logs=None):
        self._penalty = _penalty_function(self.model)
        tracker = next((m for m in self.model.metrics if m.name == "loss"), None)
        self._counter = getattr(tracker, "count", None)

    def _count(self):
        if self._counter is None:
            return None
        return float(keras.ops.convert_to_numpy(self._counter))

    def on_epoch_begin(self, epoch, logs=None):
        self._weighted_sum = 0.0
        self._weight = 0.0
        self._batch_penalty = None

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_penalty = float(self._penalty())
        self._count_before = self._count()

    def on_train_batch_end(self, batch, logs=None):
        if self._batch_penalty is None:
            return
        after = self._count()
        if after is not None and self._count_before is not None and after > self._count_before:
            weight = after - self._count_before
        else:
            weight = 1.0
        self._weighted_sum += weight * self._batch_penalty
        self._weight += weight

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        current = float(self._penalty()) if self._penalty is not None else 0.0
        if "loss" in logs:
            reg = self._weighted_sum / self._weight if self._weight else current
            logs["reg_loss"] = reg
            logs["data_loss"] = float(logs["loss"]) - reg
        if "val_loss" in logs:
            logs["val_reg_loss"] = current
            logs["val_data_loss"] = float(logs["val_loss"]) - current
