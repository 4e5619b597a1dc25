"""Order-independent randomness for tf.data transforms (private).

This is part 2 of the package's seed scheme (`keras_reg._seeds`). A transform mapped over a
dataset with `num_parallel_calls` runs on several batches at once, in no fixed order, so a
stateful generator shared by those calls hands its numbers out in a different order on every
run. The transforms of `keras_reg.data` therefore draw every random number with stateless ops
(`tf.random.stateless_*`, Philox counter-based) from a per-batch key that depends only on
things that do not change with the execution order:

- the transform's base `seed` (`keras_reg._seeds.base_seed`);
- a hash of the batch's content (an evenly spaced grid of about 16x16 pixels per image, or
  about 1,024 values per example of another rank, and the labels): a cheap function of the
  data, not of when it arrives. Each example's sampled values are scrambled, multiplied by
  odd per-position constants and summed (modulo 2**32); the per-example sums are then mixed
  with their batch index into two 32-bit words. Integer multiply, xor, shift and sum only, so
  XLA and TensorFlow give the same bits, and the transforms compute the hash inside their
  XLA-compiled kernel (one fused pass, and a transform also runs inside a
  `tf.function(jit_compile=True)`);
- optionally an integer stream position (`apply(dataset)` zips the dataset with
  `tf.data.Dataset.random`, which is per position and re-randomised each epoch).

Same seed and same batch give the same output whatever the parallelism. A plain `map` over data
that is not reshuffled therefore sees the same batches, hence the same draws, every epoch;
reshuffled data (the default of `keras_reg.data.load` for training splits) or `apply(dataset)`
gives new draws each epoch.
"""

import tensorflow as tf

from keras_reg._seeds import splitmix64

# Sampled per example: a grid of about this many rows and columns of an image (all channels),
# or about _SAMPLE evenly spaced values of an example of another rank.
_GRID = 16
_SAMPLE = 1024


def _as_int32(value):
    """A signed 32-bit constant from an unsigned one."""
    return value - (1 << 32) if value >= 1 << 31 else value


_GOLDEN = _as_int32(0x9E3779B1)
_M1 = _as_int32(0x85EBCA6B)
_M2 = _as_int32(0xC2B2AE35)
_SALTS = (_as_int32(0x68E31DA4), _as_int32(0xB5297A4D))


def _shift(h, bits):
    """Logical right shift of int32 values (TensorFlow's right_shift is arithmetic)."""
    return tf.bitwise.bitwise_and(tf.bitwise.right_shift(h, bits), (1 << (32 - bits)) - 1)


def _fmix32(h):
    """MurmurHash3's 32-bit finaliser on int32 (wrapping multiplies, logical shifts)."""
    h = tf.bitwise.bitwise_xor(h, _shift(h, 16)) * _M1
    h = tf.bitwise.bitwise_xor(h, _shift(h, 13)) * _M2
    return tf.bitwise.bitwise_xor(h, _shift(h, 16))


def _bits(x):
    """int32 words of a tensor: floats by the bits of their float32 value, else the value."""
    if x.dtype.is_floating:
        return tf.bitcast(tf.cast(x, tf.float32), tf.int32)
    return tf.cast(x, tf.int32)


def _size(x, axis):
    size = x.shape[axis]
    return tf.shape(x)[axis] if size is None else size


def _spaced(size, count):
    """About `count` evenly spaced indices in [0, size) (a list when `size` is static)."""
    if isinstance(size, int):
        return list(range(0, size, max(size // count, 1)))
    return tf.range(0, size, tf.maximum(size // count, 1))


def _sample(x, channels_first):
    """(batch, n) int32 words of a fixed-size sample of every example of a batch.

    A rank-4 image batch gives its grid of about 16x16 pixels (two `gather`s, which are faster
    than strided slices in TensorFlow), in channels-last order, so a channels-first batch samples
    the same values as its channels-last transpose. Any other rank gives about 1,024 evenly
    spaced values of each flattened example. The cost per batch does not grow with the image or
    example size.
    """
    if x.shape.rank == 4:
        for axis in (2, 3) if channels_first else (1, 2):
            x = tf.gather(x, _spaced(_size(x, axis), _GRID), axis=axis)
        if channels_first:
            x = tf.transpose(x, [0, 2, 3, 1])
    x = tf.reshape(_bits(x), [tf.shape(x)[0], -1])
    if x.shape.rank is not None and x.shape[1] is not None and x.shape[1] <= _SAMPLE:
        return x
    return tf.gather(x, _spaced(_size(x, 1), _SAMPLE), axis=1)


def _example_sums(words, salt):
    """(batch,) int32: per example, the sum of its scrambled words times odd per-position
    constants. A change of one word always changes the sum (an odd constant is invertible
    modulo 2**32)."""
    count = _size(words, 1)
    position = tf.range(count, dtype=tf.int32) * _GOLDEN + salt
    constants = tf.bitwise.bitwise_or(_fmix32(position), 1)
    words = tf.bitwise.bitwise_xor(words, _shift(words, 15))
    return tf.reduce_sum(words * constants, axis=1)


def batch_hash(inputs, targets=None, channels_first=False):
    """A 64-bit int64 scalar hash of a batch (XLA-compilable, the same bits with and without XLA).

    Every example contributes a fixed-size sample of its values (`_sample`) and, if given, its
    target row; the per-example sums are mixed with the example's index in the batch and summed
    (order-free, so XLA's and TensorFlow's reductions agree), with two salts for two words.
    """
    sums = _example_sums(_sample(inputs, channels_first), _SALTS[0])
    if targets is not None:
        targets = tf.reshape(_bits(targets), [tf.shape(targets)[0], -1])
        sums += _example_sums(targets, _SALTS[1])
    index = tf.range(tf.shape(sums)[0], dtype=tf.int32) * _GOLDEN
    words = [_fmix32(tf.reduce_sum(_fmix32(tf.bitwise.bitwise_xor(sums, _fmix32(index + salt))))
                     + salt) for salt in _SALTS]
    high = tf.bitwise.left_shift(tf.cast(words[0], tf.int64), 32)
    low = tf.bitwise.bitwise_and(tf.cast(words[1], tf.int64), 0xFFFFFFFF)
    return tf.bitwise.bitwise_or(high, low)


def seed_words(seed):
    """The [2] int64 words of an integer base seed that enter every batch key."""
    return tf.constant([splitmix64(seed), splitmix64(seed + 1)], tf.int64)


def batch_key(words, batch_hash_value, position=None):
    """The per-batch [2] int64 Philox key: the hash XOR the first seed word, and the second seed
    word plus the stream position (0 without one). Philox itself mixes the key."""
    position = tf.constant(0, tf.int64) if position is None else tf.cast(position, tf.int64)
    return tf.stack([tf.bitwise.bitwise_xor(batch_hash_value, words[0]), words[1] + position])


def _batch_keys(inputs, targets, words, position, channels_first, count, rank):
    del rank  # only a cache key of the traced functions (see `batch_keys`)
    key = batch_key(words, batch_hash(inputs, targets, channels_first), position)
    return key if count is None else split_key(key, count)


_batch_keys_xla = tf.function(_batch_keys, jit_compile=True, reduce_retracing=True)
_batch_keys_plain = tf.function(_batch_keys, reduce_retracing=True)


def batch_keys(inputs, targets, seed, position, channels_first, count=None, jit_compile=True):
    """The key of a batch (`count` keys split from it if given) from its hash, the base `seed`
    and the stream `position` (None: 0), as one XLA-compiled function (one fused pass) or the
    same ops in a plain graph. The rank is passed as a Python value so that each rank keeps its
    own trace: `reduce_retracing` could otherwise relax a rank-2 and a rank-4 call into one
    trace of unknown rank, which samples images as flat examples."""
    fn = _batch_keys_xla if jit_compile else _batch_keys_plain
    position = tf.constant(0, tf.int64) if position is None else tf.cast(position, tf.int64)
    return fn(inputs, targets, seed_words(seed), position, channels_first, count,
              inputs.shape.rank)


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
