"""Drop path: per-sample dropout of a whole residual branch, and the linear rate rule."""

import keras

from keras_reg._validation import check_bool, check_int, check_rate, check_seed
from keras_reg.layers._rate import (
    RateLayer,
    apply_mask,
    keep_one,
    keep_scale,
    rate_tensor,
    scaled_mask,
)


def sample_mask(x, rate, seed, scale_by_keep=True):
    """Float32 per-sample mask of shape `(batch, 1, ..., 1)` for `x` (rank kept for broadcast).

    Holds `1 / (1 - rate)` (or 1 without `scale_by_keep`) for kept samples, 0 for dropped ones.
    """
    rate = rate_tensor(rate)
    shape = (keras.ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
    value = keep_scale(rate) if scale_by_keep else keep_one(rate)
    return scaled_mask(shape, rate, seed, value)


def drop_path(x, rate, seed=None, training=False, scale_by_keep=True):
    """Zeroes whole samples of `x` with probability `rate` (drop path / stochastic depth).

    One Bernoulli draw per sample (the mask has shape `(batch, 1, ..., 1)`), survivors scaled
    by `1 / (1 - rate)` when `scale_by_keep`, so `E[output] = x`. The identity at inference.
    Apply it to the residual branch of a block: `shortcut + drop_path(residual, rate)`.
    Rate 1 gives zeros (never NaN).

    Args:
        x: input tensor, batch first, rank >= 1.
        rate: drop probability in [0, 1] (a float, or a float32 scalar tensor / variable).
        seed: int, `keras.random.SeedGenerator` or None.
        training: whether to drop (True) or run in inference mode.
        scale_by_keep: whether survivors are scaled by `1 / (1 - rate)`.

    Returns:
        A tensor of the shape and dtype of `x`.

    Example:

    >>> x = keras.ops.ones((4, 3))
    >>> y = keras.ops.convert_to_numpy(drop_path(x, 0.5, seed=3, training=True))
    >>> all(row.tolist() in ([0.0] * 3, [2.0] * 3) for row in y)
    True

    Reference:
        Huang et al., 2016, [Deep Networks with Stochastic
        Depth](https://arxiv.org/abs/1603.09382).
    """
    scale_by_keep = check_bool("scale_by_keep", scale_by_keep)
    x = keras.ops.convert_to_tensor(x)
    if not training:
        return x
    return apply_mask(x, sample_mask(x, rate, seed, scale_by_keep))


def drop_path_rates(depth, max_rate, min_rate=0.0):
    """Per-block drop-path rates rising linearly with depth (the stochastic-depth rule).

    Block `i` of `depth` (0-based) gets `min_rate + (max_rate - min_rate) * i / (depth - 1)`:
    the first block `min_rate`, the last `max_rate`. With `depth=1` the single block gets
    `max_rate` (the rate of the deepest block). `max_rate < min_rate` is allowed (falling rates).

    Args:
        depth: number of residual blocks, an integer >= 1.
        max_rate: rate of the last block, in [0, 1].
        min_rate: rate of the first block, in [0, 1].

    Returns:
        A list of `depth` Python floats.

    Example:

    >>> drop_path_rates(5, 0.2)
    [0.0, 0.05, 0.1, 0.15, 0.2]

    Reference:
        Huang et al., 2016, [Deep Networks with Stochastic
        Depth](https://arxiv.org/abs/1603.09382), linear decay rule.
    """
    depth = check_int("depth", depth, low=1)
    max_rate = check_rate(max_rate, name="max_rate")
    min_rate = check_rate(min_rate, name="min_rate")
    if depth == 1:
        return [max_rate]
    step = (max_rate - min_rate) / (depth - 1)
    rates = [min_rate + step * i for i in range(depth)]
    rates[-1] = max_rate
    # Round away float noise such as 0.15000000000000002; rates stay within [0, 1].
    return [min(1.0, max(0.0, round(r, 12))) for r in rates]


@keras.saving.register_keras_serializable(package="keras_reg")
class DropPath(RateLayer):
    """Drop path on one residual branch: whole samples zeroed with probability `rate`.

    In training each sample of the batch is zeroed with probability `rate` (one draw per
    sample, broadcast over its other axes) and survivors are scaled by `1 / (1 - rate)` when
    `scale_by_keep` (the timm convention); the identity at inference. Unlike dropout, which
    drops single units, drop path removes the branch's whole contribution for a sample, so the
    block reduces to its shortcut: use it on the residual branch before the addition (or use
    `StochasticDepth`, which also does the addition).

    `rate` is held in a non-trainable float32 variable: assigning `layer.rate` (e.g. from a
    callback) takes effect in an already compiled `fit` without retracing.

    Args:
        rate: drop probability in [0, 1]. 1 gives zeros.
        seed: int or None, seed of the layer's `keras.random.SeedGenerator`.
        scale_by_keep: whether survivors are scaled by `1 / (1 - rate)` (default True).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a tensor of rank >= 1, batch first.
        training: whether to drop samples (training) or run in inference mode.

    Returns:
        A tensor of the input's shape and dtype.

    Example:

    >>> layer = DropPath(0.5, seed=0)
    >>> x = keras.ops.ones((2, 3))
    >>> keras.ops.convert_to_numpy(layer(x)).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]

    Reference:
        Huang et al., 2016, [Deep Networks with Stochastic
        Depth](https://arxiv.org/abs/1603.09382); Larsson et al., 2016,
        [FractalNet](https://arxiv.org/abs/1605.07648).
    """

    def __init__(self, rate, seed=None, scale_by_keep=True, **kwargs):
        check_rate(rate)
        check_seed(seed)
        check_bool("scale_by_keep", scale_by_keep)
        super().__init__(rate, seed=seed, **kwargs)
        self.scale_by_keep = scale_by_keep
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(
                "Invalid value for argument `inputs`: expected a tensor with a batch axis. "
                f"Received: inputs of shape {tuple(input_shape)!r}"
            )
        self.built = True

    def call(self, inputs, training=None):
        return drop_path(
            inputs,
            self.rate_variable,
            seed=self.seed_generator,
            training=bool(training),
            scale_by_keep=self.scale_by_keep,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "scale_by_keep": self.scale_by_keep,
        }
