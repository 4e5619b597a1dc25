"""`TemperatureScaling`: class probabilities rescaled by one temperature, `softmax(log(p) / T)`."""

import keras
from keras import ops

from keras_reg._validation import check_float


def temperature_scaling(probabilities, temperature, epsilon=1e-12):
    """`softmax(log(max(p, epsilon)) / temperature)` over the last axis, computed in float32.

    Args:
        probabilities: tensor `(..., classes)` of class probabilities.
        temperature: float > 0.
        epsilon: float > 0, the smallest probability whose logarithm is taken.

    Returns:
        A float32 tensor of the shape of `probabilities`.

    Example:

    >>> p = keras.ops.convert_to_tensor([[0.8, 0.2]])
    >>> [round(float(v), 4) for v in keras.ops.convert_to_numpy(temperature_scaling(p, 0.5))[0]]
    [0.9412, 0.0588]
    """
    p = ops.cast(probabilities, "float32")
    return ops.softmax(ops.log(ops.maximum(p, epsilon)) / temperature, axis=-1)


@keras.saving.register_keras_serializable(package="keras_reg")
class TemperatureScaling(keras.layers.Layer):
    """Rescales predicted class probabilities by a temperature: `softmax(log(p) / T)`.

    Placed after a softmax output, it is the temperature scaling of the logits (Guo et al.,
    2017), since `softmax(log softmax(l) / T) = softmax(l / T)`: `T > 1` softens over-confident
    predictions, `T < 1` sharpens the deliberately under-confident ones of label smoothing and
    Mixup. The order of the classes, hence the accuracy, does not change. The same in training
    and inference; no weights. The math runs in float32 (under a mixed-precision policy the
    output is cast back to the compute dtype); `keras_reg.metrics.calibrated_nll` fits `T`.

    Args:
        temperature: float > 0.
        epsilon: float > 0, the smallest probability whose logarithm is taken.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor `(..., classes)` of class probabilities.

    Example:

    >>> layer = TemperatureScaling(2.0)
    >>> p = keras.ops.convert_to_tensor([[0.8, 0.2]])
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
        self.supports_masking = True

    def call(self, inputs):
        outputs = temperature_scaling(inputs, self.temperature, self.epsilon)
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature,
                "epsilon": self.epsilon}
