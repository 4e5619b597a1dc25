"""Order-independent randomness for tf.data transforms (private).

A transform mapped over a dataset with `num_parallel_calls` runs on several batches at once, in
no fixed order, so a stateful generator shared by those calls hands its numbers out in a
different order on every run. The transforms of `keras_reg.data` therefore draw every random
number with stateless ops (`tf.random.stateless_*`, Philox counter-based) from a per-batch key
that depends only on things that do not change with the execution order:

- the transform's base `seed` (an integer, drawn once at construction when `seed=None`);
- a fingerprint of the batch's content (farmhash of a strided sub-sample of the pixels and of
  the labels: a cheap function of the data, not of when it arrives);
- optionally an integer stream position (`apply(dataset)` zips the dataset with
  `tf.data.Dataset.random`, which is per position and re-randomised each epoch).

Same seed and same batch give the same output whatever the parallelism; reshuffled data (the
default of `keras_reg.data.load` for training splits) gives new draws each epoch.
"""

import random as _py_random

import tensorflow as tf

# Sub-sample of at most this many rows / columns per image enters the fingerprint.
_FINGERPRINT_GRID = 16


def base_seed(seed):
    """The integer base seed of a transform: `seed` itself, or a fresh random one for None."""
    if seed is None:
        return _py_random.SystemRandom().randrange(0, 2**31 - 1)
    return int(seed)


def _fingerprint(tensor):
    """A scalar int64 farmhash fingerprint of a tensor's bytes (stable across platforms)."""
    flat = tf.reshape(tensor, [1, -1])
    return tf.bitcast(tf.fingerprint(flat), tf.int64)[0]


def image_fingerprint(images, channels_first=False):
    """Fingerprint of a strided sub-sample (about 16 x 16 pixels per image) of a rank-4 batch.

    The sample is taken in channels-last order, so a channels-first batch gets the same
    fingerprint (hence the same draws) as its channels-last transpose.
    """
    shape = tf.shape(images)
    spatial = (2, 3) if channels_first else (1, 2)
    strides = [1] * 4
    for axis in spatial:
        strides[axis] = tf.maximum(shape[axis] // _FINGERPRINT_GRID, 1)
    sample = tf.strided_slice(images, tf.zeros([4], tf.int32), shape, tf.stack(strides))
    if channels_first:
        sample = tf.transpose(sample, [0, 2, 3, 1])
    return _fingerprint(sample)


def mix_key(key, value):
    """A new [2] int64 Philox key from `key` and an int64 scalar `value` (order-sensitive)."""
    value = tf.cast(value, tf.int64)
    return tf.random.stateless_uniform(
        [2], seed=key + tf.stack([value, tf.constant(0x9E3779B97F4A7C15 - 2**64, tf.int64)]),
        minval=None, maxval=None, dtype=tf.int64,
    )


def batch_key(seed, fingerprints, position=None):
    """The per-batch [2] int64 key from the base seed, content fingerprints and a position."""
    key = tf.constant([seed, 0x2545F4914F6CDD1D], tf.int64)
    for value in fingerprints:
        key = mix_key(key, value)
    if position is not None:
        key = mix_key(key, position)
    return key


def split_key(key, count):
    """`count` independent [2] int64 keys derived from one key."""
    return tf.random.stateless_uniform(
        [count, 2], seed=key, minval=None, maxval=None, dtype=tf.int64
    )


def uniform_index(key, shape, limit):
    """Integers uniform in [0, limit) (limit an int32 tensor broadcastable to `shape`)."""
    u = tf.random.stateless_uniform(shape, seed=key, dtype=tf.float32)
    limit = tf.cast(limit, tf.float32)
    index = tf.cast(tf.floor(u * limit), tf.int32)
    return tf.minimum(index, tf.maximum(tf.cast(limit, tf.int32) - 1, 0))


def beta(key, shape, alpha):
    """Beta(alpha, alpha) samples as G1 / (G1 + G2) of two stateless gammas.

    Not XLA-compilable (TensorFlow has no XLA kernel for the gamma sampler): call it outside
    any `jit_compile` region. `alpha` must be > 0; when both gammas underflow to 0 (tiny alpha,
    where the distribution sits on {0, 1}) the larger one (ties: the first) takes weight 1.
    """
    keys = split_key(key, 2)
    g1 = tf.random.stateless_gamma(shape, seed=keys[0], alpha=alpha, dtype=tf.float32)
    g2 = tf.random.stateless_gamma(shape, seed=keys[1], alpha=alpha, dtype=tf.float32)
    total = g1 + g2
    safe = tf.where(total > 0, total, tf.ones_like(total))
    return tf.where(total > 0, g1 / safe, tf.cast(g1 >= g2, tf.float32))


def apply_with_positions(transform, dataset, seed, num_parallel_calls=None, deterministic=True):
    """Maps `transform(args, position)` over `dataset`, each element keyed by its position.

    Positions' keys come from `tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`:
    fixed per position for a given seed and epoch, different from one epoch to the next.
    """
    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    kwargs = {}
    if num_parallel_calls is not None:
        kwargs = {"num_parallel_calls": num_parallel_calls, "deterministic": deterministic}
    return tf.data.Dataset.zip((dataset, keys)).map(
        lambda element, position: transform((element,), position), **kwargs
    )
