"""DropBlock: structured dropout of contiguous square blocks of a feature map."""

import keras

from keras_reg._validation import check_bool, check_choice, check_int, check_rate, check_seed
from keras_reg.layers._rate import RateLayer, apply_mask, keep_one, rate_tensor, scaled_mask

_DATA_FORMATS = ("channels_last", "channels_first")


def _check_data_format(data_format):
    """`data_format`, or `keras.config.image_data_format()` when None."""
    if data_format is None:
        return keras.config.image_data_format()
    return check_choice("data_format", data_format, _DATA_FORMATS)


def _check_rank(shape, data_format):
    if len(shape) != 4:
        layout = "(batch, height, width, channels)"
        if data_format == "channels_first":
            layout = "(batch, channels, height, width)"
        raise ValueError(
            f"Invalid value for argument `inputs`: expected a rank-4 tensor {layout} "
            f"(data_format={data_format!r}). Received: inputs of shape {tuple(shape)!r}"
        )


def _minimum(*values):
    """`min` of ints, a tensor when one of them is a (dynamic) dimension tensor."""
    if all(isinstance(v, int) for v in values):
        return min(values)
    result = values[0]
    for v in values[1:]:
        result = keras.ops.minimum(result, v)
    return result


def _float(value):
    """A dimension (int or scalar tensor) as a float (a Python float for ints)."""
    return float(value) if isinstance(value, int) else keras.ops.cast(value, "float32")


def _seed_rate(rate, height, width, block):
    """The paper's gamma: `rate / b**2 * (H * W) / ((H - b + 1) * (W - b + 1))`."""
    rows, cols = height - block + 1, width - block + 1
    ratio = (_float(height) / _float(rows)) * (_float(width) / _float(cols))
    return rate * ratio / (_float(block) * _float(block))


def _dilate(corners, block, height, width):
    """NHWC `(batch, height, width, channels)`: > 0 where a block from a drawn corner lies.

    `corners` is `(batch, height - block + 1, width - block + 1, channels)`, 1 at the top-left
    corner of a dropped block (one entry per position where a whole block fits). With a static
    block this is a `block x block` max-pool of the corners padded by `block - 1` zeros, done
    separably (a column pass, then a row pass: `2 * block` comparisons per unit, not
    `block**2`). When the map's size is known only at run time (so is the clipped block), the
    same cover is counted with prefix sums, which take a block size held in a tensor.
    """
    if all(isinstance(v, int) for v in (block, height, width)):
        pad = block - 1
        dilated = keras.ops.pad(corners, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
        for window in ((block, 1), (1, block)):
            dilated = keras.ops.max_pool(dilated, window, 1, "valid", "channels_last")
        return dilated
    return _cover(_cover(corners, 1, height, block), 2, width, block)


def _cover(corners, axis, size, block):
    """Along `axis`: the number of drawn corners covering each of `size` positions.

    A corner at `i` covers `i, ..., i + block - 1`, so position `r` counts the corners
    `max(0, r - block + 1) ... min(r, size - block)`: a difference of two prefix sums.
    """
    pad = [(0, 0)] * len(corners.shape)
    pad[axis] = (1, 0)
    prefix = keras.ops.pad(keras.ops.cumsum(corners, axis=axis), pad)
    position = keras.ops.arange(size, dtype="int32")
    last = keras.ops.minimum(position, size - block) + 1
    first = keras.ops.maximum(position - block + 1, 0)
    return keras.ops.take(prefix, last, axis=axis) - keras.ops.take(prefix, first, axis=axis)


def block_mask(x, rate, block_size, seed, data_format="channels_last", scale_by_keep=True):
    """Float32 DropBlock mask of `x`'s shape: 0 on dropped blocks, the scale on kept units.

    The scale is `count / kept` over the whole tensor with `scale_by_keep` (0 when nothing is
    kept), else 1; the mask is all zero at rate 1.
    """
    rate = rate_tensor(rate)
    shape = tuple(keras.ops.shape(x))
    if data_format == "channels_first":
        batch, channels, height, width = shape
    else:
        batch, height, width, channels = shape
    block = _minimum(block_size, height, width)
    gamma = _seed_rate(rate, height, width, block)
    # Drawn and dilated in NHWC for both formats, so a seed drops the same blocks in either.
    corner_shape = (batch, height - block + 1, width - block + 1, channels)
    corners = 1.0 - scaled_mask(corner_shape, gamma, seed, 1.0)
    kept = keras.ops.cast(keras.ops.equal(_dilate(corners, block, height, width), 0.0), "float32")
    if data_format == "channels_first":
        kept = keras.ops.transpose(kept, (0, 3, 1, 2))
    value = keep_one(rate)
    if scale_by_keep:
        count = _float(batch) * _float(height) * _float(width) * _float(channels)
        value = value * keras.ops.divide_no_nan(count, keras.ops.sum(kept))
    return kept * value


def drop_block(
    x, rate, block_size, seed=None, training=False, data_format=None, scale_by_keep=True
):
    """Zeroes contiguous `b x b` blocks of a feature map (DropBlock), per sample and channel.

    In training, block corners are drawn independently per sample and channel with probability
    `gamma = rate / b**2 * (H * W) / ((H - b + 1) * (W - b + 1))` at the `(H - b + 1) x
    (W - b + 1)` positions where a whole block fits inside the map, and every unit of a drawn
    block is zeroed (blocks may overlap). `b = min(block_size, H, W)`, so a map smaller than
    the block loses whole rows or columns, or itself entirely (timm clips `b` but not the
    denominator, which then is 0 or negative). A unit covered by `n` positions is dropped with
    probability `1 - (1 - gamma)**n`; the `n` sum to `b**2 (H - b + 1)(W - b + 1)`, so `rate`
    is the dropped fraction to first order in `gamma`, and overlaps put the exact fraction
    below it as `gamma` grows (0.26 for rate 0.3 with `b=3` on 32 x 32 maps, 0.095 for rate
    0.1), as in timm and keras-cv. With `scale_by_keep` the kept units are multiplied by
    `count / kept` over the whole tensor (the per-replica batch under `tf.distribute`), as
    timm and keras-cv do, so the mean of a constant input is kept. Rate 1 gives zeros (never
    NaN): `gamma` is below 1 there, so the mask is zeroed outright. The identity at inference.

    On TensorFlow `gamma` is resolved to 2**-16 (the 16-bit masks of the other rate layers).

    Args:
        x: a rank-4 tensor, `(batch, height, width, channels)` or, with
            `data_format="channels_first"`, `(batch, channels, height, width)`.
        rate: drop probability in [0, 1] (a float, or a float32 scalar tensor / variable).
        block_size: side of the square blocks, an integer >= 1 (clipped to the map's sides).
        seed: int, `keras.random.SeedGenerator` or None.
        training: whether to drop (True) or run in inference mode.
        data_format: `"channels_last"`, `"channels_first"`, or None for
            `keras.config.image_data_format()`.
        scale_by_keep: whether kept units are scaled by `count / kept`.

    Returns:
        A tensor of the shape and dtype of `x`.

    Example:

    >>> x = keras.ops.ones((1, 8, 8, 1))
    >>> y = keras.ops.convert_to_numpy(drop_block(x, 0.3, 3, seed=1, training=True))
    >>> round(float(y.mean()), 5)  # survivors are scaled by count / kept
    1.0
    >>> len(set(y.ravel().tolist()))  # zeros and the one scale
    2

    Reference:
        Ghiasi, Lin & Le, 2018, [DropBlock: A regularization method for convolutional
        networks](https://arxiv.org/abs/1810.12890).
    """
    block_size = check_int("block_size", block_size, low=1)
    data_format = _check_data_format(data_format)
    scale_by_keep = check_bool("scale_by_keep", scale_by_keep)
    x = keras.ops.convert_to_tensor(x)
    _check_rank(x.shape, data_format)
    if not training:
        return x
    return apply_mask(x, block_mask(x, rate, block_size, seed, data_format, scale_by_keep))


@keras.saving.register_keras_serializable(package="keras_reg")
class DropBlock(RateLayer):
    """DropBlock: structured dropout of contiguous square blocks of a feature map.

    Dropout zeroes single units, which the neighbouring, correlated activations of a
    convolutional map largely make up for; `SpatialDropout2D` (Keras dropout with
    `noise_shape=(batch, 1, 1, channels)`) drops whole channels. DropBlock sits between them:
    in training it zeroes `b x b` squares, drawn per sample and channel, so a region's
    information is removed. Block positions are drawn with probability
    `gamma = rate / b**2 * (H * W) / ((H - b + 1) * (W - b + 1))` where a whole block fits
    (`b = min(block_size, H, W)`); overlapping blocks make the dropped fraction fall below
    `rate` as it grows (see `drop_block`). Kept units are scaled by `count / kept` over the
    batch (with `scale_by_keep`), so `block_size=1` is dropout with a batch-wide rescaling.
    The identity at inference.

    `rate` is held in a non-trainable float32 variable: assigning `layer.rate` (e.g. from
    `keras_reg.callbacks.RateScheduler`; the paper raises it linearly from 0) takes effect in an
    already compiled `fit` without retracing.

    Args:
        rate: drop probability in [0, 1] (0.1, keep_prob 0.9, in the paper's ResNet-50). 1 gives
            zeros.
        block_size: side of the dropped squares, an integer >= 1 (default 7, the paper's value
            for ResNet-50 groups 3 and 4); clipped to the feature map's height and width.
        seed: int or None, seed of the layer's `keras.random.SeedGenerator`.
        data_format: `"channels_last"` (NHWC), `"channels_first"` (NCHW), or None for
            `keras.config.image_data_format()`.
        scale_by_keep: whether kept units are scaled by `count / kept` (default True).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a rank-4 tensor laid out as `data_format` says.
        training: whether to drop blocks (training) or run in inference mode.

    Returns:
        A tensor of the input's shape and dtype.

    Example:

    >>> layer = DropBlock(0.1, block_size=3, seed=0)
    >>> x = keras.ops.ones((2, 8, 8, 4))
    >>> bool(keras.ops.all(layer(x, training=False) == x))  # the identity at inference
    True
    >>> y = keras.ops.convert_to_numpy(layer(x, training=True))
    >>> y.shape, round(float(y.mean()), 5)
    ((2, 8, 8, 4), 1.0)

    Reference:
        Ghiasi, Lin & Le, 2018, [DropBlock: A regularization method for convolutional
        networks](https://arxiv.org/abs/1810.12890).
    """

    def __init__(
        self, rate, block_size=7, seed=None, data_format=None, scale_by_keep=True, **kwargs
    ):
        # Validate every argument before building anything.
        check_rate(rate)
        block_size = check_int("block_size", block_size, low=1)
        check_seed(seed)
        data_format = _check_data_format(data_format)
        check_bool("scale_by_keep", scale_by_keep)
        super().__init__(rate, seed=seed, **kwargs)
        self.block_size = block_size
        self.data_format = data_format
        self.scale_by_keep = scale_by_keep
        self.supports_masking = True

    def build(self, input_shape):
        _check_rank(input_shape, self.data_format)
        self.built = True

    def call(self, inputs, training=None):
        return drop_block(
            inputs,
            self.rate_variable,
            self.block_size,
            seed=self.seed_generator,
            training=bool(training),
            data_format=self.data_format,
            scale_by_keep=self.scale_by_keep,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "block_size": self.block_size,
            "data_format": self.data_format,
            "scale_by_keep": self.scale_by_keep,
        }
