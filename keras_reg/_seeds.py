"""The seed scheme of keras_reg: how every random draw of the package is derived from a seed.

A user seed is None or a non-negative integer. From it:

1. **Layers** (dropout, drop path, stochastic depth, DropBlock, weight noise) hold one
   `keras.random.SeedGenerator(seed)` each; every training call draws the next seed tensor of
   that stream (`draw_seed`) and gives it to a stateless sampler, so a traced `fit` produces a
   new mask each step and the same seed gives the same sequence of masks in eager, graph and
   XLA execution. The generator's state is saved with the weights (`layers/_seed_state.py`).
   The layers' pure functions also take an int (`[seed, 0]`, a fixed mask), a generator, or a
   seed tensor already drawn.
2. **tf.data transforms** (`MixupCutMix`, `Cutout`, `augment`) run in parallel maps where the
   order of the calls is not fixed, so they hold no stream: each batch's draws come from a
   stateless Philox key made of the transform's base seed (`base_seed`: the integer itself, or
   one drawn once at construction for None), a hash of the batch content
   (`keras_reg.data._random`, built of XLA-supported integer ops) and, through
   `apply(dataset)`, the batch's position in the stream re-randomised each epoch.
3. **Replicas and workers** get `offset_seed(seed, index)`: the seed moved by
   `index * SEED_STRIDE`, so each draws differently and reproducibly.

`splitmix64` spreads small integer seeds (0, 1, 2, ...) over 64 bits before they are combined
with other words, so neighbouring seeds give unrelated keys.
"""

import random

import keras

from keras_reg._compat import random_seed_dtype

# Seed offset per replica / worker index: odd, below 2**31 so it survives an int32 cast.
SEED_STRIDE = 1_000_003

_default_generator = None


def base_seed(seed):
    """The integer base seed of a stateless transform: `seed`, or a fresh one for None."""
    if seed is None:
        return random.SystemRandom().randrange(0, 2**31 - 1)
    return int(seed)


def offset_seed(seed, index):
    """The seed of replica or worker `index`: `seed + index * SEED_STRIDE`."""
    return seed + index * SEED_STRIDE


def splitmix64(value):
    """A well-mixed signed 64-bit integer from a Python int (the SplitMix64 finaliser)."""
    z = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z ^= z >> 31
    return z - (1 << 64) if z >= 1 << 63 else z


def draw_seed(seed):
    """A seed tensor for a stateless sampler.

    Args:
        seed: a `keras.random.SeedGenerator` (its next seed), an int (`[seed, 0]`, the same
            draw every call), None (the next seed of a module-level generator) or a seed tensor
            already drawn (returned as is).

    Returns:
        A `[2]` integer seed tensor.
    """
    global _default_generator
    if keras.ops.is_tensor(seed):
        return seed
    if isinstance(seed, keras.random.SeedGenerator):
        return seed.next()
    if seed is None:
        if _default_generator is None:
            _default_generator = keras.random.SeedGenerator()
        return _default_generator.next()
    if isinstance(seed, int) and not isinstance(seed, bool):
        return keras.ops.convert_to_tensor([seed, 0], dtype=int_seed_dtype())
    raise TypeError(
        "Invalid value for argument `seed`: expected None, an int or a "
        f"keras.random.SeedGenerator. Received: seed={seed!r}"
    )


def int_seed_dtype():
    """The dtype of a seed tensor made from an int: int32 on TensorFlow (its stateless ops and
    XLA take int32 seeds), else the backend's own seed dtype (JAX wants uint32 key data)."""
    if keras.backend.backend() == "tensorflow":
        return "int32"
    return random_seed_dtype()
