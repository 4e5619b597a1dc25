"""Temperature scaling: a model's class probabilities calibrated on the validation split."""

import keras
import numpy as np

from keras_reg._validation import check_float
from keras_reg.tuning.protocol import calibrated_nll


@keras.saving.register_keras_serializable(package="keras_reg")
class TemperatureScaling(keras.layers.Layer):
    """Rescales predicted class probabilities by a temperature: `softmax(log(p) / T)`.

    Placed after a softmax output, it is the temperature scaling of the logits (Guo et al.,
    2017): `T > 1` softens over-confident predictions, `T < 1` sharpens the deliberately
    under-confident ones of label smoothing and Mixup. The order of the classes, hence the
    accuracy, does not change. The same in training and inference; no weights.

    Args:
        temperature: float > 0.
        epsilon: float > 0, the smallest probability whose logarithm is taken.

    Example:

    >>> layer = TemperatureScaling(2.0)
    >>> p = np.array([[0.8, 0.2]], "float32")
    >>> [round(float(v), 4) for v in keras.ops.convert_to_numpy(layer(p))[0]]
    [0.6667, 0.3333]

    Reference:
        - [Guo et al., 2017. On Calibration of Modern Neural Networks](
          https://arxiv.org/abs/1706.04599)
    """

    def __init__(self, temperature=1.0, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.temperature = check_float("temperature", temperature, 0.0, low_open=True)
        self.epsilon = check_float("epsilon", epsilon, 0.0, low_open=True)

    def call(self, probabilities):
        ops = keras.ops
        p = ops.cast(probabilities, "float32")
        return ops.softmax(ops.log(ops.maximum(p, self.epsilon)) / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature,
                "epsilon": self.epsilon}


def predictions(model, data):
    """`(probabilities, targets)` of `model` on `(images, targets)` batches, read together.

    Targets are returned as given (one-hot rows or integer labels). A dataset reshuffled on
    each pass still pairs every prediction with its own target.
    """
    probabilities, targets = [], []
    for batch in data.as_numpy_iterator():
        probabilities.append(np.asarray(model.predict_on_batch(batch[0]), dtype=np.float64))
        targets.append(np.asarray(batch[1]))
    return np.concatenate(probabilities), np.concatenate(targets)


def calibrate(model, validation):
    """`model` followed by the `TemperatureScaling` that fits `validation` best.

    The temperature minimizes the validation cross-entropy (`calibrated_nll`, the search's
    default objective), so the model a search hands over predicts with the confidence its
    score was measured with.

    Args:
        model: a Keras model with one softmax output.
        validation: `(images, labels)` batches; labels one-hot or integers.

    Returns:
        `(calibrated_model, temperature)`: the calibrated model shares `model`'s layers and
        is compiled for evaluation (categorical cross-entropy, accuracy).
    """
    probabilities, targets = predictions(model, validation)
    if targets.ndim == 2 and targets.shape[-1] == 1:
        targets = targets[:, 0]
    if targets.ndim == 1:
        targets = targets.astype(np.int64)
    _, beta = calibrated_nll(probabilities, targets)
    temperature = 1.0 / beta
    inputs = keras.Input(tuple(model.input_shape[1:]), name="images")
    outputs = TemperatureScaling(temperature, name="temperature_scaling")(model(inputs))
    calibrated = keras.Model(inputs, outputs, name=f"{model.name}_calibrated")
    calibrated.compile(loss=keras.losses.CategoricalCrossentropy(),
                       metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    return calibrated, temperature
