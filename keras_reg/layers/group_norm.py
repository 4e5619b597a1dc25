"""Group normalization: a faster, numerically careful drop-in for Keras's GroupNormalization."""

import numbers

import keras
from keras import ops

from keras_reg._validation import check_float, fail


def _check_groups(groups):
    # A ValueError for every invalid value, non-integers included, as keras.layers.
    # GroupNormalization raises (this layer is its drop-in).
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral):
        fail("groups", "a positive integer or -1 (instance norm)", groups)
    groups = int(groups)
    if groups < 1 and groups != -1:
        fail("groups", "a positive integer or -1 (instance norm)", groups)
    return groups


def _check_axis(axis):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        fail("axis", "an integer naming the channel axis (not the batch axis 0)", axis, TypeError)
    axis = int(axis)
    if axis == 0:
        fail("axis", "an integer naming the channel axis (not the batch axis 0)", axis)
    return axis


def _resolve(shape, groups, axis):
    """Checks `groups`/`axis` against a static shape; returns (axis >= 1, channels, groups)."""
    rank = len(shape)
    if rank < 2:
        raise ValueError(
            f"GroupNorm expects inputs of rank >= 2 (batch, ..., channels). Received shape {shape}."
        )
    if not -rank < axis < rank or axis == 0:
        fail("axis", f"a non-batch axis of the rank-{rank} input {tuple(shape)}", axis)
    axis = axis % rank
    channels = shape[axis]
    if channels is None:
        raise ValueError(
            f"The channel axis {axis} of the input must have a known size. Received shape {shape}."
        )
    if groups == -1:
        groups = channels
    if groups > channels or channels % groups:
        fail("groups", f"a divisor of the {channels} channels on axis {axis} (or -1)", groups)
    return axis, channels, groups


def _statistics_dtype(dtype):
    """Statistics are computed in float32 at least (float64 stays float64)."""
    return "float64" if keras.backend.standardize_dtype(dtype) == "float64" else "float32"


def _channel_view(x, axis):
    """How `x` is viewed for the statistics: (N, P, C, Q), P or Q dropped when absent.

    P is the product of the axes between the batch and the channel axis, Q of those after it
    (NHWC: (N, H*W, C); NCHW: (N, C, H*W)). Per-channel sums then reduce the spatial axes of
    a rank-3 (or 4) tensor, which TensorFlow does far faster than a reduction over the
    interleaved group axes of an (N, H*W, G, C/G) view.

    Returns the view's shape (dynamic sizes as tensors), its spatial axes, the keepdims shape
    of a per-sample, per-channel statistic, and the number S of spatial positions.
    """
    static = x.shape
    dynamic = ops.shape(x)

    def prod(dims):
        out = 1
        for i in dims:
            out = out * (static[i] if static[i] is not None else dynamic[i])
        return out

    channels = static[axis]
    before = list(range(1, axis))
    after = list(range(axis + 1, len(static)))
    shape, spatial, stat_shape, positions = [-1], [], [-1], 1
    if before:
        shape.append(prod(before))
        spatial.append(1)
        stat_shape.append(1)
        positions = positions * shape[-1]
    shape.append(channels)
    stat_shape.append(channels)
    if after:
        shape.append(prod(after))
        spatial.append(len(shape) - 1)
        stat_shape.append(1)
        positions = positions * shape[-1]
    return shape, spatial, stat_shape, positions


def _sum(x, axes):
    return ops.sum(x, axis=axes, keepdims=True) if axes else x


def group_norm(x, groups, gamma=None, beta=None, axis=-1, epsilon=1e-3):
    """Group normalization of `x` (pure function; see `GroupNorm`).

    The channels on `axis` are split into `groups` groups; every sample is normalized by the
    mean and variance of each group (over the group's channels and all other non-batch axes):
    `y = (x - mean) / sqrt(var + epsilon) * gamma + beta`.

    Args:
        x: tensor of rank >= 2, batch first.
        groups: number of groups, dividing the channel count; -1 for one group per channel.
        gamma: optional scale, shape `(channels,)`.
        beta: optional offset, shape `(channels,)`.
        axis: the channel axis (any axis but 0).
        epsilon: added to the variance.

    Returns:
        A tensor of the shape and dtype of `x` (statistics in float32 for float16/bfloat16).

    Example:

    >>> import numpy as np
    >>> x = np.arange(8, dtype="float32").reshape(1, 2, 4)  # 2 positions, 4 channels
    >>> y = group_norm(x, groups=2)  # channels {0, 1} hold 0, 1, 4, 5: mean 2.5, var 4.25
    >>> np.round(keras.ops.convert_to_numpy(y)[0], 3)
    array([[-1.213, -0.728, -1.213, -0.728],
           [ 0.728,  1.213,  0.728,  1.213]], dtype=float32)

    Reference:
        - [Wu & He, Group Normalization, 2018](https://arxiv.org/abs/1803.08494)
    """
    groups = _check_groups(groups)
    axis = _check_axis(axis)
    epsilon = check_float("epsilon", epsilon, low=0.0, low_open=True)
    x = ops.convert_to_tensor(x)
    if not keras.backend.is_float_dtype(x.dtype):
        x = ops.cast(x, "float32")
    axis, channels, groups = _resolve(tuple(x.shape), groups, axis)
    return _group_norm(x, groups, channels, gamma, beta, axis, epsilon)


def _group_norm(x, groups, channels, gamma, beta, axis, epsilon):
    dtype = _statistics_dtype(x.dtype)
    params = []
    if gamma is not None:
        params.append(ops.reshape(ops.cast(gamma, dtype), (1, groups, channels // groups)))
    if beta is not None:
        params.append(ops.reshape(ops.cast(beta, dtype), (1, groups, channels // groups)))
    view = _channel_view(x, axis)
    fn = _make_group_norm(
        ops.shape(x), view, channels, groups, epsilon, gamma is not None, beta is not None, dtype
    )
    return fn(x, *params)


# TensorFlow fast path: the backward pass (two per-channel reductions and the dx update, a
# handful of full-tensor passes in graph mode) runs as one XLA-compiled function, which fuses
# them into about two passes; the math is the same keras.ops code as the general path. Used
# only inside a traced function (graph mode), when the non-batch shape is static (XLA then
# compiles once per traced step and batch size) and large enough that the per-step saving
# outweighs a compile of about a second: small activations take the general path.
_COMPILE_BACKWARD = True
_COMPILE_BACKWARD_MIN_SIZE = 1 << 15  # elements per sample


def _maybe_compiled(fn, shape):
    static = all(isinstance(dim, int) for dim in shape[1:])
    if not (_COMPILE_BACKWARD and static and keras.backend.backend() == "tensorflow"):
        return fn
    size = 1
    for dim in shape[1:]:
        size *= dim
    import tensorflow as tf

    if size >= _COMPILE_BACKWARD_MIN_SIZE and not tf.executing_eagerly():
        return tf.function(fn, jit_compile=True, autograph=False)
    return fn


def _make_group_norm(out_shape, view, channels, groups, epsilon, has_gamma, has_beta, dtype):
    """The normalization with its hand-derived gradient, for one input configuration.

    Statistics (per sample; S positions, Cg channels per group, M = S * Cg):
    every channel c is shifted by its first value k_c, d = x - k_c, and its shifted sums
    s1 = sum(d), s2 = sum(d^2) give the channel mean and sum of squared deviations without the
    catastrophic cancellation of E[x^2] - E[x]^2 at large means; the channels of a group are
    then combined exactly (Chan et al.): var = (sum_c m2_c + S * sum_c (mean_c - mean)^2) / M.
    Forward: y = (d - mu_c) * inv * gamma + beta with mu_c = mean - k_c, inv = (var + eps)^-1/2.
    Backward, with xhat = (d - mu_c) * inv and per-channel sums of dy and dy * d:
    dx = inv * (gamma * dy - mean_g(gamma * dy) - xhat * mean_g(gamma * dy * xhat)),
    dgamma = sum(dy * xhat), dbeta = sum(dy).
    """
    shape, spatial, stat_shape, positions = view
    group_shape = (-1, groups, channels // groups)

    def grouped(t):  # (N, 1, C, 1) per-channel statistic -> (N, G, C/G)
        return ops.reshape(t, group_shape)

    def spread(t):  # (N, G, C/G) or (N, G, 1) -> broadcastable against the view
        return ops.reshape(t * ones, stat_shape)

    ones = ops.ones((1, 1, channels // groups), dtype=dtype)

    @ops.custom_gradient
    def forward(x, *params):
        gamma = params[0] if has_gamma else None
        beta = params[-1] if has_beta else None
        s = ops.cast(positions, dtype)
        m = s * (channels // groups)
        xv = ops.reshape(ops.cast(x, dtype), shape)
        first = tuple(slice(0, 1) if i in spatial else slice(None) for i in range(len(shape)))
        shift = xv[first]
        d = xv - shift
        k = grouped(shift)
        mean_d = grouped(_sum(d, spatial)) / s
        m2 = ops.maximum(grouped(_sum(ops.square(d), spatial)) - s * ops.square(mean_d), 0.0)
        # Channel means relative to the group's first shift, then the group mean.
        offset_c = (k - k[:, :, :1]) + mean_d
        offset_g = ops.mean(offset_c, axis=2, keepdims=True)
        var = (
            ops.sum(m2, axis=2, keepdims=True)
            + s * ops.sum(ops.square(offset_c - offset_g), axis=2, keepdims=True)
        ) / m
        inv = ops.rsqrt(var + epsilon)
        mu = offset_g - (k - k[:, :, :1])  # the group mean minus each channel's shift
        scale = inv * gamma if has_gamma else inv * ones
        bias = beta - mu * scale if has_beta else -mu * scale
        y = d * spread(scale) + spread(bias)
        y = ops.cast(ops.reshape(y, out_shape), x.dtype)

        def backward(upstream, d, scale, mu, inv, *gamma):
            gamma = gamma[0] if gamma else None
            dy = ops.reshape(ops.cast(upstream, dtype), shape)
            sum_dy = grouped(_sum(dy, spatial))
            sum_dy_xhat = (grouped(_sum(dy * d, spatial)) - mu * sum_dy) * inv
            g_dy = gamma * sum_dy if has_gamma else sum_dy
            g_dy_xhat = gamma * sum_dy_xhat if has_gamma else sum_dy_xhat
            s1 = ops.sum(g_dy, axis=2, keepdims=True)
            s2 = ops.sum(g_dy_xhat, axis=2, keepdims=True)
            p = -(inv * inv) * s2 / m
            q = -inv * s1 / m - mu * p
            dx = dy * spread(scale) + (d * spread(p) + spread(q))
            grads = [ops.cast(ops.reshape(dx, out_shape), x.dtype)]
            if has_gamma:
                grads.append(ops.sum(sum_dy_xhat, axis=0, keepdims=True))
            if has_beta:
                grads.append(ops.sum(sum_dy, axis=0, keepdims=True))
            return tuple(grads)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            extra = (gamma,) if has_gamma else ()
            fn = _maybe_compiled(backward, shape)
            grads = fn(upstream, d, scale, mu, inv, *extra)
            return tuple(grads) if len(grads) > 1 else grads[0]

        return y, grad

    return forward


@keras.saving.register_keras_serializable(package="keras_reg")
class GroupNorm(keras.layers.Layer):
    """Group normalization layer, a drop-in for `keras.layers.GroupNormalization`.

    The channels on `axis` are divided into `groups` groups and every sample is normalized by
    the mean and variance of each group, taken over the group's channels and all other
    non-batch axes: `y = (x - mean) / sqrt(var + epsilon) * gamma + beta`, with a learned
    per-channel `gamma` and `beta`. Unlike batch normalization it does not depend on the batch,
    so it behaves the same in training and inference and with batches of any size.
    `groups=1` is layer normalization over all non-batch axes; `groups=-1` (one group per
    channel) is instance normalization.

    Same arguments, defaults, weights (`gamma`, `beta`, shape `(channels,)`) and outputs as
    `keras.layers.GroupNormalization`, so weights transfer with `set_weights`. It is faster
    (a hand-derived gradient that reuses the forward statistics; on TensorFlow in graph mode
    the backward pass of large activations runs as one XLA-compiled function) and computes
    its statistics in float32 under mixed precision (float64 inputs in float64), shifted by a
    value of each channel so that inputs with a large mean (x ~ 1e3) keep their accuracy.

    Args:
        groups: number of groups; must divide the number of channels. -1 means one group
            per channel (instance normalization). Defaults to 32.
        axis: the channel axis, any axis but the batch axis 0 (e.g. 1 for channels-first).
            Defaults to -1.
        epsilon: small positive float added to the variance. Defaults to 1e-3.
        center: whether to add the offset `beta`. Defaults to True.
        scale: whether to multiply by `gamma`. Defaults to True.
        beta_initializer, gamma_initializer: initializers of the weights (zeros, ones).
        beta_regularizer, gamma_regularizer: optional regularizers of the weights.
        beta_constraint, gamma_constraint: optional constraints of the weights.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a tensor of rank >= 2, batch first.

    Returns:
        A tensor of the input's shape and dtype.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(5.0, 3.0, (2, 4, 4, 8)).astype("float32")
    >>> y = GroupNorm(groups=4)(x)
    >>> y.shape
    TensorShape([2, 4, 4, 8])
    >>> g = keras.ops.convert_to_numpy(y).reshape(2, 16, 4, 2)
    >>> bool(np.allclose(g.mean(axis=(1, 3)), 0.0, atol=1e-5))
    True

    Reference:
        - [Wu & He, Group Normalization, 2018](https://arxiv.org/abs/1803.08494)
    """

    def __init__(
        self,
        groups=32,
        axis=-1,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        groups = _check_groups(groups)
        axis = _check_axis(axis)
        epsilon = check_float("epsilon", epsilon, low=0.0, low_open=True)
        super().__init__(**kwargs)
        self.supports_masking = True
        self.autocast = False
        self.groups = groups
        self.axis = axis
        self.epsilon = epsilon
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_constraint = keras.constraints.get(beta_constraint)
        self.gamma_constraint = keras.constraints.get(gamma_constraint)

    def build(self, input_shape):
        axis, channels, groups = _resolve(tuple(input_shape), self.groups, self.axis)
        self._channels, self._groups = channels, groups
        self.input_spec = keras.layers.InputSpec(
            ndim=len(input_shape), axes={axis: channels}
        )
        self.gamma = None
        self.beta = None
        if self.scale:
            self.gamma = self.add_weight(
                shape=(channels,),
                name="gamma",
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
                autocast=False,
            )
        if self.center:
            self.beta = self.add_weight(
                shape=(channels,),
                name="beta",
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
                autocast=False,
            )

    def call(self, inputs):
        axis = self.axis % len(inputs.shape)
        outputs = _group_norm(
            inputs, self._groups, self._channels, self.gamma, self.beta, axis, self.epsilon
        )
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = {
            "groups": self.groups,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": keras.initializers.serialize(self.beta_initializer),
            "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
            "beta_regularizer": keras.regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": keras.regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": keras.constraints.serialize(self.beta_constraint),
            "gamma_constraint": keras.constraints.serialize(self.gamma_constraint),
        }
        return {**super().get_config(), **config}
