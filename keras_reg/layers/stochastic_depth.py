"""Stochastic depth: a residual addition whose branch is randomly dropped in training."""

import keras

from keras_reg._validation import check_bool, check_choice, check_rate, check_seed
from keras_reg.layers._rate import RateLayer, apply_mask, keep_one, scaled_mask
from keras_reg.layers.drop_path import sample_mask

_MODES = ("row", "batch")


def _is_shape(shape):
    return isinstance(shape, (tuple, list)) and all(
        d is None or isinstance(d, int) for d in shape
    )


def _check_pair(input_shape):
    """Checks `input_shape` is two equal (compatible) shapes; returns them."""
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 2
        or not all(_is_shape(s) for s in input_shape)
    ):
        raise ValueError(
            "Invalid value for argument `inputs`: expected a list of two tensors "
            "[shortcut, residual]. Received: inputs of shape "
            f"{input_shape!r}"
        )
    shortcut, residual = (tuple(s) for s in input_shape)
    compatible = len(shortcut) == len(residual) and all(
        a is None or b is None or a == b for a, b in zip(shortcut, residual)
    )
    if not compatible:
        raise ValueError(
            "Invalid value for argument `inputs`: the shortcut and the residual must have the "
            f"same shape. Received: inputs with shapes {shortcut!r} and {residual!r}"
        )
    return shortcut, residual


@keras.saving.register_keras_serializable(package="keras_reg")
class StochasticDepth(RateLayer):
    """Residual addition `shortcut + residual` whose residual branch is dropped in training.

    Called on `[shortcut, residual]`. With `mode="row"` (default, as timm and modern recipes)
    it returns `shortcut + drop_path(residual)`: each sample's branch is dropped with
    probability `rate`, survivors scaled by `1 / (1 - rate)` (when `scale_by_keep`), and it is
    exactly `shortcut + residual` at inference.

    With `mode="batch"` it reproduces tensorflow-addons' `StochasticDepth` and keras-cv's: one
    draw per call drops the branch for the whole batch, no scaling in training, and
    `shortcut + (1 - rate) * residual` at inference. `rate` is the drop probability:
    tensorflow-addons' `survival_probability=p` is `rate=1 - p`, keras-cv's `rate` is ours. In
    both modes `scale_by_keep=False` removes the `1 - rate` correction (train-time in "row",
    test-time in "batch").

    `rate` is held in a non-trainable float32 variable: assigning `layer.rate` (e.g. from a
    callback, or per block with `drop_path_rates`) takes effect in an already compiled `fit`
    without retracing.

    Args:
        rate: drop probability of the residual branch, in [0, 1].
        seed: int or None, seed of the layer's `keras.random.SeedGenerator`.
        scale_by_keep: whether to apply the `1 - rate` correction (default True).
        mode: `"row"` (per sample) or `"batch"` (whole batch, tensorflow-addons / keras-cv).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a list `[shortcut, residual]` of two tensors of the same shape.
        training: whether to drop (training) or run in inference mode.

    Returns:
        `shortcut + residual'`, of the inputs' shape and dtype (`residual'` the dropped, scaled
        or, in batch mode at inference, `(1 - rate)`-weighted branch).

    Example:

    >>> layer = StochasticDepth(0.2, mode="batch")
    >>> shortcut, residual = keras.ops.ones((1, 2)), keras.ops.ones((1, 2))
    >>> keras.ops.convert_to_numpy(layer([shortcut, residual])).tolist()
    [[1.7999999523162842, 1.7999999523162842]]

    Reference:
        Huang et al., 2016, [Deep Networks with Stochastic
        Depth](https://arxiv.org/abs/1603.09382).
    """

    def __init__(self, rate, seed=None, scale_by_keep=True, mode="row", **kwargs):
        check_rate(rate)
        check_seed(seed)
        check_bool("scale_by_keep", scale_by_keep)
        check_choice("mode", mode, _MODES)
        super().__init__(rate, seed=seed, **kwargs)
        self.scale_by_keep = scale_by_keep
        self.mode = mode

    def build(self, input_shape):
        _check_pair(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "Invalid value for argument `inputs`: expected a list of two tensors "
                f"[shortcut, residual]. Received: {type(inputs).__name__}"
                + (f" of length {len(inputs)}" if isinstance(inputs, (list, tuple)) else "")
            )
        shortcut, residual = inputs
        rate = self.rate_variable
        if self.mode == "row":
            if not training:
                return shortcut + residual
            mask = sample_mask(residual, rate, self.seed_generator, self.scale_by_keep)
            return shortcut + apply_mask(residual, mask)
        # mode == "batch": tensorflow-addons / keras-cv semantics.
        if not training:
            if not self.scale_by_keep:
                return shortcut + residual
            return shortcut + apply_mask(residual, 1.0 - rate)
        keep = scaled_mask((), rate, self.seed_generator, keep_one(rate))
        return shortcut + apply_mask(residual, keep)

    def compute_output_shape(self, input_shape):
        shortcut, _ = _check_pair(input_shape)
        return shortcut

    def get_config(self):
        return {
            **super().get_config(),
            "scale_by_keep": self.scale_by_keep,
            "mode": self.mode,
        }
