"""A NumPy reference of the random bits behind TensorFlow's stateless Philox ops (test helper).

Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) with
TensorFlow's seed scrambling for stateless ops: the key starts at (0x3ec8f720, 0x02461e29), the
counter holds the two 64-bit seed words; one Philox block of that gives the key (words 0, 1)
and the high half of the counter (words 2, 3) actually used. Written from the algorithm, so a
mask test compares the layers against bits it did not compute with TensorFlow.
"""

import numpy as np

_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK = 0xFFFFFFFF


def _block(counter, key):
    c = list(counter)
    k0, k1 = key
    for round_ in range(10):
        p0 = _M0 * c[0]
        p1 = _M1 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k0) & _MASK, p1 & _MASK,
             ((p0 >> 32) ^ c[3] ^ k1) & _MASK, p0 & _MASK]
        if round_ < 9:
            k0, k1 = (k0 + _W0) & _MASK, (k1 + _W1) & _MASK
    return c


def _blocks(counter, key, count):
    """`count` consecutive blocks (vectorised in NumPy uint64) from a 128-bit counter."""
    c128 = sum(int(w) << (32 * i) for i, w in enumerate(counter)) + np.arange(count, dtype=object)
    c = [np.array([(int(v) >> (32 * i)) & _MASK for v in c128], dtype=np.uint64) for i in range(4)]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    mask = np.uint64(_MASK)
    for round_ in range(10):
        p0 = np.uint64(_M0) * c[0]
        p1 = np.uint64(_M1) * c[2]
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ k0) & mask, p1 & mask,
             ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & mask, p0 & mask]
        if round_ < 9:
            k0, k1 = (k0 + np.uint64(_W0)) & mask, (k1 + np.uint64(_W1)) & mask
    return np.stack(c, axis=1).astype(np.uint32).reshape(-1)


def stateless_uint32(seed, count):
    """The first `count` words of `tf.random.stateless_uniform(..., seed, dtype=tf.uint32,
    minval=None, maxval=None, alg="philox")`, for a pair of int seeds."""
    seed0, seed1 = (int(s) & 0xFFFFFFFFFFFFFFFF for s in seed)
    counter = [seed0 & _MASK, seed0 >> 32, seed1 & _MASK, seed1 >> 32]
    mix = _block(counter, (0x3EC8F720, 0x02461E29))
    return _blocks([0, 0, mix[2], mix[3]], (mix[0], mix[1]), (count + 3) // 4)[:count]
