"""Box masks and the XLA-compiled pixel kernels shared by MixupCutMix and Cutout (private).

Boxes are given per sample as half-open row and column ranges `[y0, y1) x [x0, x1)`; the mask of
a batch is built separably, a row mask `(batch, H)` and a column mask `(batch, W)` broadcast
against each other, never as a per-sample loop. The random parameters are drawn by the callers,
outside these functions, because TensorFlow has no XLA kernel for the gamma sampler.
"""

import tensorflow as tf


def spatial_axes(channels_first):
    return (2, 3) if channels_first else (1, 2)


def _as_rows_and_columns(images, channels_first):
    """A free reshape of the batch to (batch, rows, columns) with the box separable in it.

    Channels-last `(B, H, W, C)` becomes `(B, H, W*C)` (column index // C is the pixel column);
    channels-first `(B, C, H, W)` becomes `(B, C*H, W)` (row index % H is the pixel row). The
    long contiguous last axis vectorises well.
    """
    # Chosen over selecting with a (B, H, W, 1) mask broadcast over the short channel axis,
    # which XLA on CPU runs several times slower (bench: benchmarks/, BENCHMARKS.md).
    shape = tf.shape(images)
    if channels_first:
        channels, height, width = shape[1], shape[2], shape[3]
        flat = tf.reshape(images, [shape[0], channels * height, width])
        rows = tf.range(channels * height) % height
        cols = tf.range(width)
    else:
        height, width, channels = shape[1], shape[2], shape[3]
        flat = tf.reshape(images, [shape[0], height, width * channels])
        rows = tf.range(height)
        cols = tf.range(width * channels) // channels
    return flat, rows, cols, shape


def box_mask(rows, cols, y0, y1, x0, x1):
    """(batch, rows, columns) boolean mask, True inside each sample's box: a row mask and a
    column mask broadcast against each other (separable, no per-sample loop)."""
    row_in = (rows[None, :] >= y0[:, None]) & (rows[None, :] < y1[:, None])
    col_in = (cols[None, :] >= x0[:, None]) & (cols[None, :] < x1[:, None])
    return row_in[:, :, None] & col_in[:, None, :]


def _blend(images, partner, lam):
    """lam * images + (1 - lam) * partner in the images' dtype (integers rounded, clipped)."""
    dtype = images.dtype
    lam = lam[:, None, None]
    if dtype == tf.float32 or dtype == tf.float64:
        lam = tf.cast(lam, dtype)
        return images * lam + partner * (1 - lam)
    mixed = tf.cast(images, tf.float32) * lam + tf.cast(partner, tf.float32) * (1.0 - lam)
    if dtype.is_integer:
        mixed = tf.clip_by_value(tf.round(mixed), dtype.min, dtype.max)
    return tf.cast(mixed, dtype)


def mix(images, y0, y1, x0, x1, lam, channels_first, use_cut=None):
    """Pastes the reversed batch inside each box and blends it elsewhere with weight `lam`.

    A sample with an empty box and lam = 1 is returned unchanged (bit-exact). `use_cut`, a
    scalar bool given when one draw decides for the whole batch, runs only the work of that
    draw: the box paste (CutMix: lam is 1 outside the box) or the blend (Mixup or unmixed: the
    boxes are empty), each one pass over the pixels instead of both.
    """
    flat, rows, cols, shape = _as_rows_and_columns(images, channels_first)
    partner = tf.reverse(flat, axis=[0])

    def paste():
        return tf.where(box_mask(rows, cols, y0, y1, x0, x1), partner, flat)

    def blend_all():
        return _blend(flat, partner, lam)

    if use_cut is None:
        mixed = tf.where(box_mask(rows, cols, y0, y1, x0, x1), partner, blend_all())
    else:
        mixed = tf.cond(use_cut, paste, blend_all)
    return tf.reshape(mixed, shape)


def erase(images, y0, y1, x0, x1, fill, channels_first):
    """Sets the pixels inside each sample's box to `fill` (cast to the images' dtype)."""
    flat, rows, cols, shape = _as_rows_and_columns(images, channels_first)
    mask = box_mask(rows, cols, y0, y1, x0, x1)
    return tf.reshape(tf.where(mask, tf.cast(fill, images.dtype), flat), shape)


def blend(inputs, lam):
    """Each example blended with its partner of the reversed batch, `lam * x_i + (1 - lam) *
    x_j`, for inputs of any rank >= 2 (features, sequences, images); dtype kept."""
    shape = tf.shape(inputs)
    flat = tf.reshape(inputs, [shape[0], 1, -1])
    return tf.reshape(_blend(flat, tf.reverse(flat, axis=[0]), lam), shape)
