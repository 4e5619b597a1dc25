"""Order-independent randomness for tf.data transforms (private).

A transform mapped over a dataset with `num_parallel_calls` runs on several batches at once, in
no fixed order, so a stateful generator shared by those calls hands its numbers out in a
different order on every run. The transforms of `keras_reg.data` therefore draw every random
number with stateless ops (`tf.random.stateless_*`, Philox counter-based) from a per-batch key
that depends only on things that do not change with the execution order:

- the transform's base `seed` (an integer, drawn once at construction when `seed=None`);
- a fingerprint of the batch's content (farmhash of about 16 pixel rows per image and of the
  labels: a cheap function of the data, not of when it arrives);
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
    """The `(1, 8)` uint8 farmhash fingerprint of a tensor's bytes (stable across platforms)."""
    return tf.fingerprint(tf.reshape(tensor, [1, -1]))


def image_fingerprint(images, channels_first=False):
    """Fingerprint of about 16 evenly spaced full pixel rows of every image of a rank-4 batch.

    Rows are taken with one `gather` (strided slices of uint8 tensors are slow in TensorFlow)
    and put in channels-last order, so a channels-first batch gets the same fingerprint (hence
    the same draws) as its channels-last transpose.
    """
    h_axis = 2 if channels_first else 1
    height = images.shape[h_axis]
    if height is None:
        height = tf.shape(images)[h_axis]
        rows = tf.range(0, height, tf.maximum(height // _FINGERPRINT_GRID, 1))
    else:
        rows = list(range(0, height, max(height // _FINGERPRINT_GRID, 1)))
    sample = tf.gather(images, rows, axis=h_axis)
    if channels_first:
        sample = tf.transpose(sample, [0, 2, 3, 1])
    return _fingerprint(sample)


def _splitmix64(value):
    """A well-mixed signed 64-bit integer from a Python int (SplitMix64 finaliser)."""
    z = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z ^= z >> 31
    return z - (1 << 64) if z >= 1 << 63 else z


def batch_key(seed, fingerprints, position=None):
    """The per-batch [2] int64 Philox key: the two fingerprints' 64-bit words XOR the mixed
    seed, plus the stream position on the second word. Philox itself mixes the key; three small
    ops per batch."""
    if len(fingerprints) == 1:
        fingerprints = [fingerprints[0], tf.zeros([1, 8], tf.uint8)]
    words = tf.bitcast(tf.concat(fingerprints, axis=0), tf.int64)  # (2,)
    key = tf.bitwise.bitwise_xor(
        words, tf.constant([_splitmix64(seed), _splitmix64(seed + 1)], tf.int64))
    if position is not None:
        key = key + tf.stack([tf.constant(0, tf.int64), tf.cast(position, tf.int64)])
    return key


def mix_key(key, value):
    """A new [2] int64 Philox key from `key` and an integer `value`."""
    return tf.random.stateless_uniform(
        [2], seed=key + tf.stack([tf.cast(value, tf.int64), tf.constant(0, tf.int64)]),
        minval=None, maxval=None, dtype=tf.int64, alg="philox",
    )


def split_key(key, count):
    """`count` independent [2] int64 keys derived from one key."""
    return tf.random.stateless_uniform(
        [count, 2], seed=key, minval=None, maxval=None, dtype=tf.int64, alg="philox"
    )


def uniform(key, shape):
    """Floats uniform in [0, 1) on a 2**-24 grid, from Philox integers.

    Built from `stateless_uniform`'s full-range integers, whose bits are the same with and
    without XLA (its float path is not), so `jit_compile` does not change any draw.
    """
    bits = tf.random.stateless_uniform(shape, seed=key, minval=None, maxval=None,
                                       dtype=tf.int32, alg="philox")
    return tf.cast(tf.bitwise.bitwise_and(bits, 0xFFFFFF), tf.float32) * (2.0 ** -24)


def uniform_index(key, shape, limit):
    """Integers uniform in [0, limit) (limit an int32 tensor broadcastable to `shape`)."""
    limit = tf.cast(limit, tf.int32)
    index = tf.cast(tf.floor(uniform(key, shape) * tf.cast(limit, tf.float32)), tf.int32)
    return tf.minimum(index, tf.maximum(limit - 1, 0))


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
