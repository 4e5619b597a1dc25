"""Order-independent randomness for tf.data transforms (private).

This is part 2 of the package's seed scheme (`keras_reg._seeds`). A transform mapped over a
dataset with `num_parallel_calls` runs on several batches at once, in no fixed order, so a
stateful generator shared by those calls hands its numbers out in a different order on every
run. The transforms of `keras_reg.data` therefore draw every random number with stateless ops
(`tf.random.stateless_*`, Philox counter-based) from a per-batch key that depends only on
things that do not change with the execution order:

- the transform's base `seed` (`keras_reg._seeds.base_seed`);
- a hash of the batch's content (about 16 pixel rows per image, and the labels): a cheap
  function of the data, not of when it arrives. It is built of integer multiply, xor, shift and
  sum (wrapping modulo 2**32), which XLA compiles, so a transform also runs inside a
  `tf.function(jit_compile=True)`;
- optionally an integer stream position (`apply(dataset)` zips the dataset with
  `tf.data.Dataset.random`, which is per position and re-randomised each epoch).

Same seed and same batch give the same output whatever the parallelism. A plain `map` over data
that is not reshuffled therefore sees the same batches, hence the same draws, every epoch;
reshuffled data (the default of `keras_reg.data.load` for training splits) or `apply(dataset)`
gives new draws each epoch.
"""

import tensorflow as tf

from keras_reg._seeds import splitmix64

# Sub-sample of at most this many rows per image enters the hash.
_HASH_ROWS = 16


def _as_int32(value):
    """A signed 32-bit constant from an unsigned one."""
    return value - (1 << 32) if value >= 1 << 31 else value


_GOLDEN = _as_int32(0x9E3779B1)
_M1 = _as_int32(0x85EBCA6B)
_M2 = _as_int32(0xC2B2AE35)
_SALTS = (_as_int32(0x68E31DA4), _as_int32(0xB5297A4D))


def _fmix32(h):
    """MurmurHash3's 32-bit finaliser on int32 (wrapping multiplies, logical shifts)."""
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.bitwise_and(tf.bitwise.right_shift(h, 16), 0xFFFF))
    h = h * _M1
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.bitwise_and(tf.bitwise.right_shift(h, 13), 0x7FFFF))
    h = h * _M2
    return tf.bitwise.bitwise_xor(h, tf.bitwise.bitwise_and(tf.bitwise.right_shift(h, 16), 0xFFFF))


def content_hash(tensor):
    """A 64-bit int64 scalar hash of a tensor's values and their positions (XLA-compilable).

    Floats are hashed by the bits of their float32 value, integers and bools by their int32
    value. Each element is mixed with its flat index, the mixed values are summed modulo 2**32
    (order-free, so XLA's and TensorFlow's reductions agree), twice with different salts.
    """
    x = tf.reshape(tensor, [-1])
    if x.dtype.is_floating:
        x = tf.bitcast(tf.cast(x, tf.float32), tf.int32)
    else:
        x = tf.cast(x, tf.int32)
    index = tf.range(tf.size(x, out_type=tf.int32), dtype=tf.int32) * _GOLDEN
    words = []
    for salt in _SALTS:
        mixed = _fmix32(tf.bitwise.bitwise_xor(x, _fmix32(index + salt)))
        words.append(_fmix32(tf.reduce_sum(mixed) + salt))
    high = tf.bitwise.left_shift(tf.cast(words[0], tf.int64), 32)
    low = tf.bitwise.bitwise_and(tf.cast(words[1], tf.int64), 0xFFFFFFFF)
    return tf.bitwise.bitwise_or(high, low)


def image_hash(images, channels_first=False):
    """`content_hash` of an evenly spaced grid of about 16×16 pixels of every image of a batch.

    The grid is taken with two `gather`s and put in channels-last order, so a channels-first
    batch gets the same hash (hence the same draws) as its channels-last transpose. Hashing a
    fixed-size grid rather than whole images keeps the cost per batch independent of the image
    size: the hash runs once per batch inside the `tf.data` map.
    """
    h_axis, w_axis = (2, 3) if channels_first else (1, 2)
    sample = images
    for axis in (h_axis, w_axis):
        size = images.shape[axis]
        if size is None:
            size = tf.shape(images)[axis]
            index = tf.range(0, size, tf.maximum(size // _HASH_ROWS, 1))
        else:
            index = list(range(0, size, max(size // _HASH_ROWS, 1)))
        sample = tf.gather(sample, index, axis=axis)
    if channels_first:
        sample = tf.transpose(sample, [0, 2, 3, 1])
    return content_hash(sample)


def batch_key(seed, hashes, position=None):
    """The per-batch [2] int64 Philox key: one or two content hashes XOR the mixed seed, plus
    the stream position on the second word. Philox itself mixes the key."""
    hashes = list(hashes) + [tf.constant(0, tf.int64)] * (2 - len(hashes))
    key = tf.bitwise.bitwise_xor(
        tf.stack(hashes), tf.constant([splitmix64(seed), splitmix64(seed + 1)], tf.int64))
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
