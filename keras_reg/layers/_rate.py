"""Private machinery shared by the rate-bearing layers (dropout, drop path, stochastic depth,
DropBlock).

- `RateLayer`: a Keras layer base holding the drop probability in a non-trainable float32
  variable, exposed as the `rate` property (validated setter) and `rate_variable`, so a callback
  can change it inside an already traced `fit` without retracing.
- `scaled_mask(shape, rate, seed, value)`: a float32 mask holding `value` where a unit is kept
  (probability `1 - rate`) and 0 where it is dropped.
- `masked(x, mask_shape, rate, seed, value)`: `(x * mask, mask)` for such a mask broadcast over
  `x`; in a TensorFlow graph it runs as one XLA-compiled kernel (random bits, threshold, mask
  and product fused: three fewer passes over memory than separate TensorFlow ops).
- `keep_scale(rate)`: `1 / (1 - rate)`, and 0 (not inf) at rate 1, so no 0/0 reaches a gradient;
  `keep_one(rate)`: 1, and 0 at rate 1. Passing one of them as `value` makes rate 1 give an
  all-zero mask (the 16-bit threshold alone would keep 1 unit in 2**16).

Random bits: on the TensorFlow backend the mask comes from 16-bit slices of Philox draws
(`tf.random.stateless_uniform(..., alg="philox")` with full-range uint32, bitcast to uint16):
half the random bits of a float32 uniform draw per element, and Philox also under XLA, where
TensorFlow's default algorithm is two to three orders of magnitude slower on CPU. A unit is kept
when its 16 bits are >= round(rate * 2**16), so the effective drop probability is within
2**-17 (7.6e-6) of `rate`. XLA's Philox gives the same bits as TensorFlow's kernel, so the
fused graph kernel and an eager call draw the same mask for the same seed. Other backends use
`keras.random.uniform` in float32 (JAX is exercised by tests/test_jax_backend.py).

Seeds follow the package's scheme (`keras_reg._seeds`): the layer's `SeedGenerator` stream, an
int for a fixed mask, or a seed tensor already drawn.
"""

import keras

from keras_reg._seeds import draw_seed
from keras_reg._validation import check_rate
from keras_reg._variables import float_setting, float_variable
from keras_reg.layers._seed_state import SeedStateMixin

_BITS = 16
_LEVELS = 2**_BITS


class RateLayer(SeedStateMixin, keras.layers.Layer):
    """Base layer with a schedulable drop probability `rate`.

    Subclasses call `super().__init__(rate, seed, **kwargs)`; the variable is created at
    construction (float32, non-trainable, never autocast under mixed precision) and the seed
    generator is `self.seed_generator`, whose state is saved with the weights (a model restored
    mid-training continues the same stream of masks).
    """

    rate = float_setting(
        "rate",
        check_rate,
        variable="_rate_variable",
        doc="The drop probability (a Python float read from `rate_variable`); settable, "
        "validated, used by an already traced `fit` from its next step.",
    )

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        rate = check_rate(rate)
        self.seed = seed
        self._rate_variable = float_variable(rate, "rate", layer=self)
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def rate_variable(self):
        """The non-trainable float32 variable holding the rate (read at run time)."""
        return self._rate_variable

    def get_config(self):
        """The base config with the current `rate` and the `seed`; subclasses add theirs."""
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def rate_tensor(rate):
    """`rate` (a float, tensor or variable) as a float32 tensor; Python numbers are validated.

    A variable is read into a tensor here (a `tf.Variable` passed through `cast` unchanged
    would be captured by the custom gradients of the layers' functions)."""
    if isinstance(rate, (int, float)):
        rate = check_rate(rate)
    elif isinstance(rate, keras.Variable):
        rate = rate.value
    elif hasattr(rate, "read_value"):  # a backend variable (tf.Variable)
        rate = rate.read_value()
    return keras.ops.cast(rate, "float32")


def keep_scale(rate):
    """`1 / (1 - rate)` as float32, and 0 at rate 1 (never inf or NaN)."""
    return keras.ops.divide_no_nan(1.0, 1.0 - rate)


def keep_one(rate):
    """1.0 as float32, and 0 at rate 1."""
    return keras.ops.cast(keras.ops.less(rate, 1.0), "float32")


def scaled_mask(shape, rate, seed, value):
    """Float32 tensor of `shape`: `value` where a unit is kept, 0 where it is dropped.

    Each unit is kept independently with probability `1 - rate` (within 2**-17 on TensorFlow).

    Args:
        shape: the mask shape (ints and/or scalar tensors).
        rate: float32 scalar tensor, the drop probability.
        seed: int, SeedGenerator or None.
        value: float32 scalar tensor, `keep_scale(rate)` or `keep_one(rate)` (0 at rate 1).
    """
    seed = draw_seed(seed)
    if keras.backend.backend() == "tensorflow":
        keep = _keep_mask_tf(shape, rate, seed)
    else:
        uniform = keras.random.uniform(shape, dtype="float32", seed=seed)
        keep = keras.ops.greater_equal(uniform, rate)
    # cast-and-multiply is one pass cheaper than a broadcasting select on TensorFlow CPU.
    return keras.ops.cast(keep, "float32") * value


def _keep_mask_tf(shape, rate, seed):
    import tensorflow as tf

    seed = _seed_int32(tf, seed)
    if all(isinstance(d, int) for d in shape):
        size = 1
        for d in shape:
            size *= d
    else:
        shape = tf.stack([tf.cast(d, tf.int32) for d in shape])
        size = tf.reduce_prod(shape)
    # Two 16-bit draws per 32-bit Philox word; bitcast and reshape move no data.
    words = tf.random.stateless_uniform(
        [(size + 1) // 2], seed=seed, dtype=tf.uint32, minval=None, maxval=None, alg="philox"
    )
    bits = tf.reshape(tf.bitcast(words, tf.uint16), [-1])
    if not isinstance(size, int) or size % 2:
        bits = bits[:size]
    threshold = tf.cast(tf.minimum(tf.round(rate * _LEVELS), _LEVELS - 1), tf.uint16)
    return tf.reshape(bits >= threshold, shape)


def mask_shape_of(x, mask_shape):
    """`mask_shape` with None entries (or all of it, when None) taken from `x`'s shape."""
    shape = keras.ops.shape(x)
    if mask_shape is None:
        return tuple(shape)
    return tuple(shape[i] if d is None else d for i, d in enumerate(mask_shape))


def apply_mask(x, mask):
    """`x * mask` (float32 mask, broadcast); half-precision `x` is multiplied in float32 and
    rounded once, so the scale 1/(1-rate) is not rounded to 8 or 11 bits first."""
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype in ("float16", "bfloat16"):
        return keras.ops.cast(keras.ops.cast(x, "float32") * mask, dtype)
    return x * keras.ops.cast(mask, dtype)


def masked(x, mask_shape, rate, seed, value):
    """`(apply_mask(x, mask), mask)` with `mask = scaled_mask(mask_shape_of(x, mask_shape), ...)`.

    Args:
        x: the input tensor.
        mask_shape: None (one draw per element) or a tuple as long as `x.shape` whose None
            entries are taken from `x` (others are 1 to broadcast, or the size of that axis).
        rate, value: float32 scalar tensors (see `scaled_mask`).
        seed: int, SeedGenerator or None.
    """
    seed = draw_seed(seed)
    if _use_fused_kernel():
        import tensorflow as tf

        if mask_shape is not None:
            mask_shape = tuple(mask_shape)
        return _fused_kernel()(x, _seed_int32(tf, seed), rate, value, mask_shape)
    mask = scaled_mask(mask_shape_of(x, mask_shape), rate, seed, value)
    return apply_mask(x, mask), mask


def _use_fused_kernel():
    """In a TensorFlow graph (tf.function, `fit`), not eagerly: eager calls would compile an
    XLA kernel per new shape."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.inside_function()


_fused = None


def _fused_kernel():
    global _fused
    if _fused is None:
        import tensorflow as tf

        @tf.function(jit_compile=True, autograph=False)
        def fused(x, seed, rate, value, mask_shape):
            keep = _keep_mask_tf(mask_shape_of(x, mask_shape), rate, seed)
            mask = tf.cast(keep, tf.float32) * value
            return apply_mask(x, mask), mask

        _fused = fused
    return _fused


def _seed_int32(tf, seed):
    if seed.dtype != tf.int32:
        # Stateless ops want an int32 seed under XLA (the Keras TF backend does the same).
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    return seed
