"""`ValidationTemperature`: a `CalibratedCrossEntropy` on validation batches only."""

import keras

from keras_reg._validation import check_instance
from keras_reg.metrics import CalibratedCrossEntropy


class ValidationTemperature(keras.callbacks.Callback):
    """Runs a `CalibratedCrossEntropy` on validation batches only; logs `val_temperature`.

    The training targets are mixed and smoothed, so the metric is off for the training
    batches (`CalibratedCrossEntropy.enable`) and `calibrated_loss` is dropped from the
    training logs; `val_temperature` is the temperature of `val_calibrated_loss`.

    Args:
        metric: the `CalibratedCrossEntropy` the model was compiled with.

    Example:

    >>> import keras
    >>> from keras_reg.metrics import CalibratedCrossEntropy
    >>> calibrated = CalibratedCrossEntropy()
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> model.compile("adam", "categorical_crossentropy", metrics=[calibrated])
    >>> x, y = keras.random.normal((32, 4), seed=0), keras.ops.one_hot(keras.ops.arange(32) % 3, 3)
    >>> history = model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0,
    ...                     callbacks=[ValidationTemperature(calibrated)])
    >>> "calibrated_loss" in history.history, "val_temperature" in history.history
    (False, True)
    """

    def __init__(self, metric):
        super().__init__()
        self.metric = check_instance("metric", metric, CalibratedCrossEntropy)

    def on_train_begin(self, logs=None):  # and after each validation pass
        self.metric.enable(False)

    def on_test_begin(self, logs=None):  # and after training
        self.metric.enable(True)

    on_test_end = on_train_begin
    on_train_end = on_test_begin

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs.pop("calibrated_loss", None)
        if "val_calibrated_loss" in logs:
            self.metric.enable(True)  # its state holds the validation pass
            logs["val_temperature"] = self.metric.temperature()
            self.metric.enable(False)
