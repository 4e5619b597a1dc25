"""Dropout with train-time ("inverted") or test-time ("standard") scaling."""

import keras

from keras_reg._validation import check_choice, check_rate, check_seed
from keras_reg._seeds import draw_seed
from keras_reg.layers._rate import (
    RateLayer,
    apply_mask,
    keep_one,
    keep_scale,
    masked,
    rate_tensor,
)

_SCALINGS = ("train", "test")


def _check_noise_shape_fits(input_shape, noise_shape):
    """One entry per axis, each None, 1 or the axis size: the mask must broadcast."""
    if noise_shape is None:
        return
    input_shape = tuple(input_shape)
    fits = len(noise_shape) == len(input_shape) and all(
        d is None or d == 1 or n is None or d == n for d, n in zip(noise_shape, input_shape)
    )
    if not fits:
        raise ValueError(
            "Invalid value for argument `noise_shape`: expected one entry per input axis, each "
            "None, 1 or the size of that axis. Received: "
            f"noise_shape={tuple(noise_shape)!r} for an input of shape {input_shape!r}"
        )


def _dropout(x, noise_shape, rate, seed, value):
    """`x * mask` whose gradient `dy * mask` reuses the forward mask (nothing recomputed)."""
    # Variables (seed state, rate) are read out here: a custom gradient must not touch them.
    seed = draw_seed(seed)

    @keras.ops.custom_gradient
    def apply(x):
        y, mask = masked(x, noise_shape, rate, seed, value)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return apply_mask(upstream, mask)

        return y, grad

    return apply(x)


def inverted_dropout(x, rate, noise_shape=None, seed=None, training=False, scaling="train"):
    """Drops units of `x` with probability `rate`, with train- or test-time scaling.

    With `scaling="train"` (inverted dropout, as `keras.layers.Dropout`) kept units are
    multiplied by `1 / (1 - rate)` in training and the function is the identity at inference.
    With `scaling="test"` (the original "standard" dropout) nothing is scaled in training and
    the output is `x * (1 - rate)` at inference. Either way the expected training output equals
    the inference output. Rate 1 gives zeros (never NaN).

    Args:
        x: input tensor.
        rate: drop probability in [0, 1] (a float, or a float32 scalar tensor / variable).
        noise_shape: shape of the mask broadcast over `x` (None entries are taken from `x`),
            e.g. `(batch, 1, 1, channels)` drops whole feature maps (spatial dropout).
        seed: int, `keras.random.SeedGenerator` or None.
        training: whether to drop (True) or run in inference mode.
        scaling: `"train"` or `"test"`, where the `1 - rate` correction is applied.

    Returns:
        A tensor of the shape and dtype of `x`.

    Reference:
        Srivastava et al., 2014, [Dropout: A Simple Way to Prevent Neural Networks from
        Overfitting](https://jmlr.org/papers/v15/srivastava14a.html).

    Example:

    >>> x = keras.ops.ones((2, 4))
    >>> keras.ops.convert_to_numpy(inverted_dropout(x, 0.5, training=False)).tolist()
    [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
    >>> y = keras.ops.convert_to_numpy(inverted_dropout(x, 0.5, seed=1, training=True))
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    """
    check_choice("scaling", scaling, _SCALINGS)
    rate = rate_tensor(rate)
    x = keras.ops.convert_to_tensor(x)
    if not training:
        if scaling == "train":
            return x
        # In float32, then one rounding: a 16-bit `1 - rate` near 1 would be subnormal.
        wide = "float64" if x.dtype == "float64" else "float32"
        return keras.ops.cast(keras.ops.cast(x, wide) * keras.ops.cast(1.0 - rate, wide),
                              x.dtype)
    _check_noise_shape_fits(x.shape, noise_shape)
    value = keep_scale(rate) if scaling == "train" else keep_one(rate)
    return _dropout(x, noise_shape, rate, seed, value)


def _check_noise_shape(noise_shape):
    if noise_shape is None:
        return None
    try:
        entries = tuple(noise_shape)
    except TypeError:
        entries = None
    if (
        isinstance(noise_shape, str)
        or entries is None
        or not all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            for d in entries
        )
    ):
        raise ValueError(
            "Invalid value for argument `noise_shape`: expected a tuple of positive integers "
            f"or None. Received: noise_shape={noise_shape!r}"
        )
    return entries


@keras.saving.register_keras_serializable(package="keras_reg")
class InvertedDropout(RateLayer):
    """Dropout with train-time ("inverted") or test-time ("standard") scaling.

    In training each unit is zeroed with probability `rate`. `scaling="train"` multiplies the
    kept units by `1 / (1 - rate)` and is the identity at inference: the same results as
    `keras.layers.Dropout` (same distribution of masks). `scaling="test"` is the dropout of the original paper: kept
    units are not scaled in training and the output is `x * (1 - rate)` at inference. Both keep
    the expected output equal to the inference output.

    `rate` is held in a non-trainable float32 variable: assigning `layer.rate = 0.2` (e.g. from
    a callback) takes effect in an already compiled `fit` without retracing.

    Args:
        rate: drop probability in [0, 1]. 1 gives zeros.
        noise_shape: shape of the mask broadcast over the input (None entries taken from the
            input), e.g. `(None, 1, 1, None)` drops whole feature maps of NHWC images.
        seed: int or None, seed of the layer's `keras.random.SeedGenerator`.
        scaling: `"train"` (inverted dropout, default) or `"test"` (standard dropout).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a tensor of any rank.
        training: whether to drop units (training) or run in inference mode.

    Returns:
        A tensor of the input's shape and dtype.

    Example:

    >>> layer = InvertedDropout(0.25, scaling="test", seed=0)
    >>> x = keras.ops.ones((1, 4))
    >>> keras.ops.convert_to_numpy(layer(x, training=False)).tolist()
    [[0.75, 0.75, 0.75, 0.75]]

    Reference:
        Srivastava et al., 2014, [Dropout: A Simple Way to Prevent Neural Networks from
        Overfitting](https://jmlr.org/papers/v15/srivastava14a.html).
    """

    def __init__(self, rate, noise_shape=None, seed=None, scaling="train", **kwargs):
        # Validate every argument before building anything.
        check_rate(rate)
        check_seed(seed)
        check_choice("scaling", scaling, _SCALINGS)
        noise_shape = _check_noise_shape(noise_shape)
        super().__init__(rate, seed=seed, **kwargs)
        self.noise_shape = noise_shape
        self.scaling = scaling
        self.supports_masking = True

    def build(self, input_shape):
        _check_noise_shape_fits(input_shape, self.noise_shape)
        self.built = True

    def call(self, inputs, training=None):
        return inverted_dropout(
            inputs,
            self.rate_variable,
            noise_shape=self.noise_shape,
            seed=self.seed_generator,
            training=bool(training),
            scaling=self.scaling,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "noise_shape": self.noise_shape,
            "scaling": self.scaling,
        }
