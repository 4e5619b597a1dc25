"""Cutout: erase one random square per image."""

import numbers

import keras
import tensorflow as tf

from keras_reg._seeds import base_seed
from keras_reg._validation import check_choice, check_float, check_rate, check_seed
from keras_reg.data import _boxes, _random, _structure


def _kernel(images, seed_words, position, size, prob, fill, channels_first):
    """Hashes the batch, draws each image's square from the batch key and erases it (one
    XLA-compiled function: a single fused pass for the hash, one for the pixels)."""
    key = _random.batch_key(seed_words, _random.batch_hash(images, None, channels_first),
                            position)
    h_axis, w_axis = _boxes.spatial_axes(channels_first)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[h_axis], shape[w_axis]
    if isinstance(size, int):
        side = tf.constant(size, tf.int32)
    else:
        side = tf.cast(tf.round(size * tf.cast(tf.minimum(height, width), tf.float32)), tf.int32)
    keys = _random.split_key(key, 3)
    erase = _random.uniform(keys[0], [batch]) < prob
    # Centre uniform over the whole image (the Cutout paper); the square is clipped at borders.
    y0 = _random.uniform_index(keys[1], [batch], height) - side // 2
    x0 = _random.uniform_index(keys[2], [batch], width) - side // 2
    y1 = tf.where(erase, tf.clip_by_value(y0 + side, 0, height), 0)
    x1 = tf.where(erase, tf.clip_by_value(x0 + side, 0, width), 0)
    y0 = tf.where(erase, tf.clip_by_value(y0, 0, height), 0)
    x0 = tf.where(erase, tf.clip_by_value(x0, 0, width), 0)
    return _boxes.erase(images, y0, y1, x0, x1, fill, channels_first)


_kernel_xla = tf.function(_kernel, jit_compile=True, reduce_retracing=True)
_kernel_plain = tf.function(_kernel, reduce_retracing=True)


@keras.saving.register_keras_serializable(package="keras_reg")
class Cutout:
    """Erases one random square per image (Cutout), labels untouched.

    Each image is erased with probability `prob` (every image when `prob=1`, unlike Keras's
    `RandomErasing`, whose `factor` is a per-batch chance). The square has side `size` pixels
    (an int), or `round(size * min(H, W))` pixels for a float `size` in (0, 1]. Its centre is
    uniform over the whole image, as in the Cutout paper, so squares near a border are clipped
    and erase less: the expected erased area is below `size**2`. Erased pixels are set to
    `fill` (cast to the images' dtype, so uint8 stays uint8). The box mask is built by
    broadcasting a row and a column mask; the batch hash, the draws and the pixels are one
    XLA-compiled function.

    Randomness is stateless and order-independent as in `MixupCutMix` (Philox key from `seed`
    and a hash of the batch content), so parallel maps with `deterministic=True` reproduce
    sequential ones, and the transform also runs inside `tf.function(jit_compile=True)`. As for
    `MixupCutMix`, a plain `map` over data that is not reshuffled erases the same squares every
    epoch; shuffle before batching or use `apply(dataset)` for new squares each epoch.

    Args:
        size: int >= 1 (pixels) or float in (0, 1] (fraction of the shorter side).
        prob: float in [0, 1], probability that an image is erased.
        fill: float, the value written into the square.
        seed: None or int >= 0.
        data_format: `"channels_last"`, `"channels_first"` or None (Keras's default).
        jit_compile: bool, XLA-compile the per-batch work (default; the plain graph makes the
            same draws).

    Call arguments:
        an image batch `(batch, H, W, C)` or one image, alone, in an `(images, labels, ...)`
        tuple or in a dict with `"images"`.

    Returns:
        The same structure with the images erased (same shape and dtype); labels untouched.

    Example:

    >>> import numpy as np
    >>> from keras_reg.data import Cutout
    >>> images = np.ones((2, 8, 8, 1), "float32")
    >>> out = Cutout(size=4, seed=0)(images)
    >>> [int((out[i] == 0).numpy().sum()) <= 16 for i in range(2)]
    [True, True]

    Reference:
        DeVries & Taylor, "Improved Regularization of Convolutional Neural Networks with
        Cutout", 2017.
    """

    def __init__(self, size, prob=1.0, fill=0.0, seed=None, data_format=None, jit_compile=True):
        if isinstance(size, numbers.Integral) and not isinstance(size, bool):
            if size < 1:
                raise ValueError(
                    "Invalid value for argument `size`: expected an int >= 1 (pixels) or a float "
                    f"in (0, 1] (fraction of the side). Received: size={size!r}"
                )
            size = int(size)
        elif isinstance(size, numbers.Real) and not isinstance(size, bool):
            size = check_float("size", size, 0.0, 1.0, low_open=True)
        else:
            raise TypeError(
                "Invalid value for argument `size`: expected an int >= 1 (pixels) or a float in "
                f"(0, 1] (fraction of the side). Received: size={size!r}"
            )
        self.size = size
        self.prob = check_rate(prob, name="prob")
        self.fill = check_float("fill", fill)
        self.seed = check_seed(seed)
        self.data_format = check_choice(
            "data_format", data_format or keras.config.image_data_format(),
            ("channels_last", "channels_first"),
        )
        self.jit_compile = bool(jit_compile)
        self._base_seed = base_seed(self.seed)

    def _transform(self, args, position=None):
        images, labels, repack = _structure.unpack(args, "Cutout", need_labels=False)
        images = tf.convert_to_tensor(images)
        single = images.shape.rank == 3
        if single:
            images = images[None]
        images, channels_first = _structure.check_images(images, "Cutout", self.data_format)
        # Keyed by the images only: the same images get the same draws with or without labels.
        kernel = _kernel_xla if self.jit_compile else _kernel_plain
        out = kernel(images, _random.seed_words(self._base_seed),
                     tf.constant(0, tf.int64) if position is None else position, self.size,
                     tf.constant(self.prob, tf.float32), tf.constant(self.fill, tf.float32),
                     channels_first)
        if single:
            out = out[0]
        return repack(out, labels)

    def __call__(self, *args):
        return self._transform(args)

    def apply(self, dataset, num_parallel_calls=None, deterministic=True):
        """`dataset.map(self)` with each element also keyed by its stream position (see
        `MixupCutMix.apply`)."""
        return _random.apply_with_positions(self._transform, dataset, self._base_seed,
                                            num_parallel_calls, deterministic)

    def get_config(self):
        return {"size": self.size, "prob": self.prob, "fill": self.fill, "seed": self.seed,
                "data_format": self.data_format, "jit_compile": self.jit_compile}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
