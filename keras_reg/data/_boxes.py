"""Box masks and the XLA-compiled pixel kernels shared by MixupCutMix and Cutout (private).

Boxes are given per sample as half-open row and column ranges `[y0, y1) x [x0, x1)`; the mask of
a batch is built separably, a row mask `(batch, H)` and a column mask `(batch, W)` broadcast
against each other, never as a per-sample loop. The random parameters are drawn by the callers,
outside these functions, because TensorFlow has no XLA kernel for the gamma sampler.
"""

import tensorflow as tf


def spatial_axes(channels_first):
    return (2, 3) if channels_first else (1, 2)


def box_mask(shape, y0, y1, x0, x1, channels_first):
    """Boolean mask broadcastable to an image batch of `shape`: True inside each sample's box."""
    h_axis, w_axis = spatial_axes(channels_first)
    rows = tf.range(shape[h_axis])[None, :]
    cols = tf.range(shape[w_axis])[None, :]
    row_in = (rows >= y0[:, None]) & (rows < y1[:, None])  # (batch, H)
    col_in = (cols >= x0[:, None]) & (cols < x1[:, None])  # (batch, W)
    if channels_first:
        return row_in[:, None, :, None] & col_in[:, None, None, :]
    return row_in[:, :, None, None] & col_in[:, None, :, None]


def _blend(images, partner, lam):
    """lam * images + (1 - lam) * partner in the images' dtype (integers rounded, clipped)."""
    dtype = images.dtype
    lam = lam[:, None, None, None]
    if dtype == tf.float32 or dtype == tf.float64:
        lam = tf.cast(lam, dtype)
        return images * lam + partner * (1 - lam)
    mixed = tf.cast(images, tf.float32) * lam + tf.cast(partner, tf.float32) * (1.0 - lam)
    if dtype.is_integer:
        mixed = tf.clip_by_value(tf.round(mixed), dtype.min, dtype.max)
    return tf.cast(mixed, dtype)


def _mix(images, y0, y1, x0, x1, lam, channels_first):
    partner = tf.reverse(images, axis=[0])
    mask = box_mask(tf.shape(images), y0, y1, x0, x1, channels_first)
    return tf.where(mask, partner, _blend(images, partner, lam))


def _erase(images, y0, y1, x0, x1, fill, channels_first):
    mask = box_mask(tf.shape(images), y0, y1, x0, x1, channels_first)
    return tf.where(mask, tf.cast(fill, images.dtype), images)


# One fused pass over the pixels each; compiled per input shape (a partial last batch compiles
# once more). `reduce_retracing` keeps one trace across batch sizes.
_mix_xla = tf.function(_mix, jit_compile=True, reduce_retracing=True)
_erase_xla = tf.function(_erase, jit_compile=True, reduce_retracing=True)
_mix_plain = tf.function(_mix, reduce_retracing=True)
_erase_plain = tf.function(_erase, reduce_retracing=True)


def mix_pixels(images, y0, y1, x0, x1, lam, channels_first, jit_compile=True):
    """Pastes the reversed batch inside each box and blends it elsewhere with weight `lam`.

    A sample with an empty box and lam = 1 is returned unchanged (bit-exact).
    """
    fn = _mix_xla if jit_compile else _mix_plain
    return fn(images, y0, y1, x0, x1, lam, channels_first)


def erase_pixels(images, y0, y1, x0, x1, fill, channels_first, jit_compile=True):
    """Sets the pixels inside each sample's box to `fill` (cast to the images' dtype)."""
    fn = _erase_xla if jit_compile else _erase_plain
    return fn(images, y0, y1, x0, x1, fill, channels_first)
