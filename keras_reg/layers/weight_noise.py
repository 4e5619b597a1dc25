"""Weight noise: train a Dense or convolution layer with Gaussian noise added to its kernel."""

import functools

import keras
from keras import ops

from keras_reg._validation import check_float, check_seed
from keras_reg._variables import float_setting, float_variable
from keras_reg.layers._seed_state import SeedStateMixin

# Layer types whose weights named below are perturbed. The wrapped layer's own `__call__` does
# the computation (with the noisy kernel substituted through `keras.StatelessScope`), so every
# option of these layers (strides, padding, dilation, groups, data_format, bias, activation)
# behaves exactly as in the layer itself.
_KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")


def _supported_types():
    L = keras.layers
    return (
        L.Dense,
        L.Conv1D,
        L.Conv2D,
        L.Conv3D,
        L.DepthwiseConv1D,
        L.DepthwiseConv2D,
        L.SeparableConv1D,
        L.SeparableConv2D,
    )


def _check_layer(layer):
    types = _supported_types()
    # Exact types (or user subclasses of them); the transposed convolutions are not subclasses.
    if not isinstance(layer, types):
        names = ", ".join(t.__name__ for t in types)
        raise TypeError(
            f"Invalid value for argument `layer`: expected an instance of one of {names}. "
            f"Received: layer={layer!r}"
        )
    if getattr(layer, "quantization_mode", None) is not None or (
        layer.dtype_policy.quantization_mode is not None
    ):
        raise ValueError(
            "Invalid value for argument `layer`: expected a layer that is not quantized. "
            f"Received: layer={layer!r} (quantization_mode="
            f"{layer.dtype_policy.quantization_mode!r})"
        )
    if getattr(layer, "lora_enabled", False):
        raise ValueError(
            "Invalid value for argument `layer`: expected a layer without LoRA enabled. "
            f"Received: layer={layer!r}"
        )
    return layer


@keras.saving.register_keras_serializable(package="keras_reg")
class WeightNoise(SeedStateMixin, keras.layers.Wrapper):
    """Adds Gaussian noise to the kernel of a Dense or convolution layer during training.

    In training the wrapped layer computes its output with `kernel + N(0, stddev^2)` — fresh
    noise at every call, drawn in float32 — while the gradient updates the clean kernel (the
    noise is additive, so the gradient with respect to the kernel is the gradient at the
    noisy kernel). At inference the wrapped layer runs unchanged with its clean kernel, so the
    output is exactly the layer's own and an exported model holds no random op. The bias is
    not perturbed. This is noise injection (Bishop, 1995; An, 1996) applied to the weights:
    to second order the expected loss gains `stddev^2 / 2 * trace(H)` (H the Hessian of the
    loss in the kernel), a preference for flat minima. `keras.layers.GaussianNoise`, by
    contrast, perturbs activations.

    Supported layers: `Dense`, `Conv1D`, `Conv2D`, `Conv3D`, `DepthwiseConv1D`,
    `DepthwiseConv2D` and `SeparableConv1D/2D` (both their kernels are perturbed).

    `stddev` is held in a non-trainable float32 variable (`stddev_variable`); assigning
    `layer.stddev = value` takes effect in an already traced or compiled `fit`.

    Args:
        layer: the `Dense` or convolution layer to wrap.
        stddev: standard deviation of the noise, a float >= 0 (0 disables it).
        seed: optional integer seed of the noise.
        **kwargs: base layer keyword arguments (`name`, ...). The dtype policy defaults to
            the wrapped layer's.

    Call arguments:
        inputs: the input of the wrapped layer.
        training: whether the noise is added. Defaults to False (the Keras learning phase).

    Returns:
        The wrapped layer's output: computed with the noisy kernel in training, the clean one
        otherwise.

    Example:

    >>> import numpy as np
    >>> dense = keras.layers.Dense(3, use_bias=False, kernel_initializer="ones")
    >>> noisy = WeightNoise(dense, stddev=0.1, seed=0)
    >>> x = np.eye(2, dtype="float32")
    >>> np.asarray(noisy(x, training=False)).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    >>> bool(np.any(np.asarray(noisy(x, training=True)) != 1.0))
    True

    Reference:
        - [Graves, Practical Variational Inference for Neural Networks, 2011](
          https://papers.nips.cc/paper/4329)
        - [An, The Effects of Adding Noise During Backpropagation Training, 1996](
          https://doi.org/10.1162/neco.1996.8.3.643)
        - [Bishop, Training with Noise is Equivalent to Tikhonov Regularization, 1995](
          https://doi.org/10.1162/neco.1995.7.1.108)
    """

    stddev = float_setting(
        "stddev",
        functools.partial(check_float, "stddev", low=0.0),
        doc="The noise standard deviation (a Python float); settable during training.",
    )

    def __init__(self, layer, stddev, seed=None, **kwargs):
        layer = _check_layer(layer)
        stddev = check_float("stddev", stddev, low=0.0)
        seed = check_seed(seed)
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        # Variables are read in float32 and the noise is added in float32; the wrapped
        # layer's own call casts the noisy kernel to its compute dtype.
        self.autocast = False
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.stddev_variable = float_variable(stddev, "stddev", layer=self)

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.built = True

    def _noisy_kernels(self):
        """Float32 `kernel + noise` for each kernel of the wrapped layer, keyed by variable."""
        stddev = ops.cast(self.stddev_variable, "float32")
        mapping = []
        for variable in self.layer.weights:
            value = variable.value
            if variable.name in _KERNEL_NAMES:
                noise = keras.random.normal(
                    variable.shape, dtype="float32", seed=self.seed_generator
                )
                value = ops.cast(
                    ops.cast(value, "float32") + noise * stddev, variable.dtype
                )
            mapping.append((variable, value))
        return mapping

    def call(self, inputs, training=False):
        if not training:
            return self.layer(inputs)
        # Every weight of the wrapped layer is mapped (clean values read here, so an outer
        # stateless scope, as in a JAX trainer, still provides them).
        with keras.StatelessScope(self._noisy_kernels(), collect_losses=True) as scope:
            outputs = self.layer(inputs)
        for loss in scope.losses:
            self.add_loss(loss)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = {"stddev": self.stddev, "seed": self.seed}
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # keras.layers.Wrapper.from_config pops "layer" from the caller's dict; work on a copy.
        return super().from_config(dict(config), custom_objects=custom_objects)
