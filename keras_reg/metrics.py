"""Calibrated cross-entropy: how good a classifier's probabilities are once its confidence is
corrected by one fitted temperature.

Temperature scaling (Guo et al., 2017) divides the logits by one temperature `T`; with
`z = log p` the scaled prediction is `softmax(β · z)`, `β = 1 / T`. The calibrated loss of a
model is its cross-entropy at the `β` fitted on the same predictions. It ranks models by their
predictions with the confidence corrected: label smoothing and Mixup make a model deliberately
under-confident, which the plain loss punishes although the ranking of the classes, and the
accuracy, may be better.

The `β` is fitted against Platt's smoothed targets (`smoothed_targets`: `1 − ε` on the label,
`ε / (k − 1)` on each other class, `ε = 1 / (n + 2)` for `n` rows) and the loss is reported
against the true targets at that `β`. Fitted against the true targets, a split the model
classifies perfectly has no finite best `β` (the loss keeps falling as the predictions are
sharpened), the fit ends at the sharpest `β` allowed and the loss at rounding level, so models
that all get such a split right would tie; with the smoothed fit the loss stays of the order of
the model's own errors in confidence, and a hedging model still scores worse than a sharp,
correct one.

- `calibrated_nll(probabilities, targets)`: the exact value, `(loss, β)`.
- `calibrated_losses(probabilities, targets)`: the per-row losses at the same `β`, to compare
  two models example by example.
- `CalibratedCrossEntropy()`: the same loss as a streaming Keras metric for
  `model.compile(metrics=[...])` (logged as `calibrated_loss`).
- `scaled_cross_entropy`, `smoothed_targets`, `one_hot_targets`: the NumPy pieces.

The NumPy functions work in float64, the metric keeps float64 state: a prediction right with
a margin of 100 nats costs e^-100, which float32 flushes to 0.
"""

import functools
import types

import keras
import numpy as np
from scipy.optimize import minimize_scalar

from keras_reg._validation import check_bool, check_float

__all__ = [
    "CalibratedCrossEntropy",
    "calibrated_nll",
    "calibrated_losses",
    "scaled_cross_entropy",
    "smoothed_targets",
    "one_hot_targets",
]


def one_hot_targets(targets, num_classes):
    """`targets` as float64 rows: integer labels `(n,)` or `(n, 1)` one-hot encoded, rows
    `(n, num_classes)` (one-hot or soft) returned as given.

    The NumPy counterpart of `keras_reg.data.one_hot` (a tensor function for tf.data), for
    predictions already gathered in arrays.

    Args:
        targets: integer labels `(n,)` / `(n, 1)`, or rows `(n, num_classes)`.
        num_classes: int, the number of classes.

    Returns:
        A float64 array `(n, num_classes)`.

    Example:

    >>> one_hot_targets(np.array([2, 0]), 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    t = np.asarray(targets)
    if t.ndim == 2 and t.shape[-1] == 1 and num_classes != 1:
        t = t[:, 0]
    if t.ndim == 1:
        return np.eye(num_classes)[t.astype(np.int64)]
    return t.astype(np.float64)


def scaled_cross_entropy(probabilities, targets, beta=1.0):
    """Per row, the cross-entropy of `softmax(beta · log p)` against `targets`, computed
    without cancellation.

    `Σ_c t_c (logsumexp(s) − s_c)` with `s = beta · log p` and `m = max s`:
    `logsumexp(s) − m = log1p(Σ over all but one maximum of e^(s_j − m))`, and `m − s_c >= 0`,
    so a prediction right with a wide margin costs e^-100, not rounding noise. Probabilities
    are clipped at 1e-12 before the logarithm.

    Args:
        probabilities: array `(n, k)`.
        targets: array `(n, k)` of one-hot (or soft) targets.
        beta: float, the inverse temperature.

    Returns:
        A float64 array `(n,)`.

    Example:

    >>> p = np.array([[0.8, 0.2]])
    >>> round(float(scaled_cross_entropy(p, np.array([[1.0, 0.0]]))[0]), 4)  # -log 0.8
    0.2231
    >>> round(float(scaled_cross_entropy(p, np.array([[1.0, 0.0]]), beta=2.0)[0]), 4)
    0.0606
    """
    z = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0))
    targets = np.asarray(targets, dtype=np.float64)
    rows = np.arange(len(z))
    top = z.argmax(axis=1)
    scaled = beta * z
    top_value = scaled[rows, top][:, None]
    rest = np.exp(scaled - top_value)
    rest[rows, top] = 0.0
    return (np.log1p(rest.sum(axis=1)) * targets.sum(axis=1)
            + (targets * (top_value - scaled)).sum(axis=1))


def _other_classes(t):
    """`(m − t) / (k − 1)` per row (`m` the row's mass): the target spread evenly over the
    classes other than the label. Smoothed targets are `(1 − ε) t + ε · _other_classes(t)`."""
    k = t.shape[-1]
    return (t.sum(axis=1, keepdims=True) - t) / max(k - 1, 1)


def smoothed_targets(targets):
    """Platt's targets for fitting a temperature: `t · (1 − ε) + (1 − t) · ε / (k − 1)`.

    `ε = 1 / (n + 2)` for `n` rows of `k` classes: the label smoothing of Platt's sigmoid fit,
    which keeps the fitted scale finite when the data are separated perfectly. For soft
    targets `1` is the row's sum.

    Args:
        targets: array `(n, k)` of one-hot (or soft) targets, `k >= 2`.

    Returns:
        A float64 array `(n, k)` whose rows still sum to their original sums.

    Example:

    >>> smoothed_targets(np.eye(2)[[0, 1]]).round(3).tolist()
    [[0.75, 0.25], [0.25, 0.75]]

    Reference:
        - Platt, 1999. Probabilistic Outputs for Support Vector Machines and Comparisons to
          Regularized Likelihood Methods (section 2.2, the targets of the sigmoid fit).
    """
    t = np.asarray(targets, dtype=np.float64)
    if t.ndim != 2 or t.shape[-1] < 2:
        raise ValueError("Invalid value for argument `targets`: expected rows (n, k) with "
                         f"k >= 2 classes. Received: targets with shape {t.shape}")
    eps = 1.0 / (len(t) + 2)
    return t * (1.0 - eps) + _other_classes(t) * eps


def _checked(probabilities, targets):
    p = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(targets)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError("Invalid value for argument `probabilities`: expected an array "
                         f"(n, classes) with n >= 1. Received: probabilities with shape "
                         f"{p.shape}")
    if len(t) != len(p) or t.ndim not in (1, 2) or (t.ndim == 2 and t.shape != p.shape):
        raise ValueError("Invalid value for argument `targets`: expected labels (n,) or "
                         f"one-hot rows {p.shape} matching the probabilities. Received: "
                         f"targets with shape {t.shape}")
    return p, one_hot_targets(t, p.shape[-1])


def calibrated_losses(probabilities, targets, smoothing=True, low=0.05, high=20.0):
    """Per-row cross-entropy after temperature scaling, and the fitted inverse temperature.

    `β` minimizes the mean cross-entropy of `softmax(β · log p)` over `[low, high]` against
    Platt's smoothed targets (`smoothed_targets`; against the targets as given with
    `smoothing=False`); the loss is convex in `β`, so SciPy's bounded scalar minimizer finds
    it. The returned losses are against the targets as given, at that `β`. Two models paired
    row by row, each with its own `β` by this rule, can be compared example by example.

    Args:
        probabilities: array `(n, k)` of predicted class probabilities.
        targets: array `(n, k)` of one-hot (or soft) targets, or `(n,)` integer labels.
        smoothing: bool, fit `β` against Platt's smoothed targets (default) or against the
            targets themselves.
        low: float > 0, the smallest `β` searched.
        high: float > low, the largest `β` searched.

    Returns:
        `(losses, beta)`: a float64 array `(n,)` and a float; `losses.mean()` is
        `calibrated_nll(...)[0]`.

    Example:

    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    >>> losses, beta = calibrated_losses(p, np.array([0, 1, 0]))
    >>> losses.shape, bool(np.all(losses > 0))
    ((3,), True)
    """
    p, t = _checked(probabilities, targets)
    smoothing = check_bool("smoothing", smoothing)
    low = check_float("low", low, 0.0, low_open=True)
    high = check_float("high", high, low, low_open=True)
    eps = 1.0 / (len(p) + 2) if smoothing else 0.0
    others = _other_classes(t)

    def fitted(beta):
        # (1 − ε)·CE(t) + ε·CE(others) is the cross-entropy against the smoothed targets
        loss = np.mean(scaled_cross_entropy(p, t, beta))
        if eps:
            loss = (1.0 - eps) * loss + eps * np.mean(scaled_cross_entropy(p, others, beta))
        return float(loss)

    best = minimize_scalar(fitted, bounds=(low, high), method="bounded",
                           options={"xatol": 1e-9})
    beta = float(best.x)
    return scaled_cross_entropy(p, t, beta), beta


def calibrated_nll(probabilities, targets, smoothing=True, low=0.05, high=20.0):
    """Mean cross-entropy of `probabilities` after temperature scaling, and the scale `β`.

    The mean of `calibrated_losses`: `β` fitted against Platt's smoothed targets (or the
    targets themselves with `smoothing=False`), the loss against the targets as given. With
    `smoothing=False` this is the smallest cross-entropy any temperature gives, and a split
    classified perfectly drives `β` to `high` and the loss towards 0; with smoothing the loss
    stays finite and positive and ranks sharp, correct models before hedging ones.

    Args:
        probabilities: array `(n, k)` of predicted class probabilities.
        targets: array `(n, k)` of one-hot (or soft) targets, or `(n,)` integer labels.
        smoothing: bool, fit `β` against Platt's smoothed targets (default).
        low: float > 0, the smallest `β` searched.
        high: float > low, the largest `β` searched.

    Returns:
        `(loss, beta)`, two floats.

    Example:

    >>> p = np.array([[0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
    >>> loss, beta = calibrated_nll(p, np.array([0, 1, 0]))
    >>> bool(beta > 1.0), bool(loss < -np.log([0.6, 0.7, 0.55]).mean())
    (True, True)

    Reference:
        - [Guo et al., 2017. On Calibration of Modern Neural Networks](
          https://arxiv.org/abs/1706.04599)
    """
    losses, beta = calibrated_losses(probabilities, targets, smoothing=smoothing, low=low,
                                     high=high)
    return float(np.mean(losses)), beta


# The `keras.ops` that `CalibratedCrossEntropy._refined` uses, on NumPy arrays.
_NUMPY_OPS = types.SimpleNamespace(
    **{name: getattr(np, name) for name in ("argmin", "clip", "exp", "logical_and", "matmul",
                                             "maximum", "minimum", "sum", "take", "where")},
    cast=np.asarray, convert_to_tensor=np.asarray,
    fori_loop=lambda lower, upper, body, value: functools.reduce(
        lambda v, i: body(i, v), range(lower, upper), value))


@keras.saving.register_keras_serializable(package="keras_reg")
class CalibratedCrossEntropy(keras.metrics.Metric):
    """The cross-entropy after temperature scaling, accumulated batch by batch.

    The streaming form of `calibrated_nll`, for `model.compile(metrics=[...])`: a model's
    own validation pass logs `val_calibrated_loss` without a second pass over the data. The
    state holds, at `num_betas` inverse temperatures `β` spaced geometrically over
    `[low, high]`, two summed losses: against the targets, and against the targets spread
    evenly over the other classes. Platt's smoothed targets are linear in the targets, so at
    `result()`, with `n` the (weighted) count, the smoothed loss at each `β` is
    `(1 − ε)·first + ε·second`, `ε = 1 / (n + 2)`. `β` is the minimum of the smoothed loss
    (of the first sum with `smoothing=False`), refined between the grid points by the
    quartic through the five points around the smallest (in `log β`, where the grid is
    uniform); the result is the loss against the targets there, interpolated through the same
    five points, and `temperature()` is `1 / β`. The grid step is 5 % with the default 121
    points.

    Args:
        low: float > 0, the smallest `β`.
        high: float > low, the largest `β`.
        num_betas: int >= 3, the number of grid points.
        epsilon: float > 0, the smallest probability whose logarithm is taken.
        smoothing: bool, choose `β` against Platt's smoothed targets (default).
        name: the metric's name (logged as `val_<name>` on validation).
        dtype: the dtype of the result.

    Example:

    >>> metric = CalibratedCrossEntropy()
    >>> p = np.array([[0.6, 0.4], [0.3, 0.7], [0.55, 0.45]], "float32")
    >>> metric.update_state(np.eye(2)[[0, 1, 0]], p)
    >>> exact, beta = calibrated_nll(p, np.array([0, 1, 0]))
    >>> abs(float(metric.result()) - exact) < 1e-5, abs(metric.temperature() - 1 / beta) < 0.01
    (True, True)
    """

    def __init__(self, low=0.05, high=20.0, num_betas=121, epsilon=1e-12, smoothing=True,
                 name="calibrated_loss", dtype="float64"):
        super().__init__(name=name, dtype=dtype)
        self.low = check_float("low", low, 0.0, low_open=True)
        self.high = check_float("high", high, self.low, low_open=True)
        if isinstance(num_betas, bool) or not isinstance(num_betas, int) or num_betas < 3:
            raise ValueError("Invalid value for argument `num_betas`: expected an int >= 3. "
                             f"Received: num_betas={num_betas!r}")
        self.num_betas = num_betas
        self.epsilon = check_float("epsilon", epsilon, 0.0, low_open=True)
        self.smoothing = check_bool("smoothing", smoothing)
        self._betas = np.geomspace(self.low, self.high, num_betas)
        # float64: a validation split the model gets entirely right has losses like e^-100
        # at the largest β, which float32 flushes to 0.
        self.sums = self.add_variable(shape=(num_betas,), initializer="zeros", name="sums",
                                      dtype="float64")
        self.other_sums = self.add_variable(shape=(num_betas,), initializer="zeros",
                                            name="other_sums", dtype="float64")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count",
                                       dtype="float64")
        # 1.0: accumulate; 0.0: ignore batches (`enabled(False)`). A variable, so a traced
        # training step follows it without a retrace.
        self._enabled = self.add_variable(shape=(), initializer="ones", name="enabled",
                                          dtype="float64")

    def enable(self, enabled=True):
        """Turns accumulation on or off without a retrace. `TrainingProtocol` turns it off
        for the training batches (it would cost about a third of a small model's step) and on
        for the validation pass, where the search reads `val_calibrated_loss`."""
        self._enabled.assign(1.0 if enabled else 0.0)

    def update_state(self, y_true, y_pred, sample_weight=None):
        keras.ops.cond(self._enabled > 0.0,
                       lambda: self._accumulate(y_true, y_pred, sample_weight), lambda: None)

    def _accumulate(self, y_true, y_pred, sample_weight):
        ops = keras.ops
        y_pred = ops.cast(y_pred, "float64")
        y_true = ops.cast(y_true, "float64")
        k = ops.shape(y_pred)[-1]
        if len(y_true.shape) == len(y_pred.shape) - 1:  # integer labels
            y_true = ops.one_hot(ops.cast(y_true, "int32"), k, dtype="float64")
        mass = ops.sum(y_true, axis=-1, keepdims=True)
        others = (mass - y_true) / ops.cast(ops.maximum(k - 1, 1), "float64")
        z = ops.log(ops.maximum(y_pred, self.epsilon))
        scaled = z[:, None, :] * ops.convert_to_tensor(self._betas, "float64")[None, :, None]
        # as in scaled_cross_entropy: logsumexp(s) − max s = log1p(the other terms)
        top = ops.one_hot(ops.argmax(z, axis=-1), k, dtype="float64")
        top_value = ops.max(scaled, axis=-1, keepdims=True)
        rest = ops.exp(scaled - top_value) * (1.0 - top[:, None, :])
        log_normalizer = ops.log1p(ops.sum(rest, axis=-1))  # (batch, β)
        margins = top_value - scaled  # (batch, β, k)

        def losses(targets):
            return (log_normalizer * ops.sum(targets, axis=-1)[:, None]
                    + ops.sum(targets[:, None, :] * margins, axis=-1))

        weight = ops.ones_like(mass) if sample_weight is None else ops.reshape(
            ops.cast(sample_weight, "float64"), (-1, 1))
        self.sums.assign_add(ops.sum(losses(y_true) * weight, axis=0))
        self.other_sums.assign_add(ops.sum(losses(others) * weight, axis=0))
        self.count.assign_add(ops.sum(weight))

    def _refined(self, ops=keras.ops, state=None):
        """`(loss, beta)`: `β` at the minimum of the fitted means, refined between the grid
        points by the polynomial through the five (three when `num_betas < 5`) points around
        the smallest one (at an end of the range, the end itself); the loss against the
        targets at that `β`, interpolated through the same points. Computed with `ops`:
        `keras.ops` on the variables, or `_NUMPY_OPS` on `state`, their values."""
        sums, other_sums, count = (self.sums, self.other_sums, self.count) if state is None \
            else state
        positive = ops.maximum(count, 1e-300)
        means = sums / positive
        fitted = means
        if self.smoothing:
            eps = 1.0 / (count + 2.0)
            fitted = (1.0 - eps) * means + eps * other_sums / positive
        r = 2 if self.num_betas >= 5 else 1
        nodes = np.arange(-r, r + 1, dtype=np.float64)
        # coefficients = inverse Vandermonde @ values: the polynomial through the points
        to_coefficients = ops.convert_to_tensor(
            np.linalg.inv(np.vander(nodes, increasing=True)), "float64")
        i = ops.argmin(fitted)
        j = ops.clip(i, r, self.num_betas - 1 - r)
        window = ops.cast(j, "int32") + ops.convert_to_tensor(nodes.astype(np.int32))

        def polynomial(values):
            return ops.matmul(to_coefficients, ops.take(values, window))

        degree = 2 * r
        powers = np.arange(degree + 1, dtype=np.float64)  # x ** powers: 1, x, x², ...
        a = polynomial(fitted)
        slope_terms = a[1:] * powers[1:]  # the derivatives' coefficients, lowest power first
        curvature_terms = a[2:] * (powers[2:] * powers[1:-1])
        start = ops.cast(i - j, "float64")

        def newton(_, x):  # on the derivative, kept within a step of the grid minimum
            monomials = x ** powers[:-1]
            slope = ops.sum(slope_terms * monomials)
            curvature = ops.sum(curvature_terms * monomials[:-1])
            step = ops.where(curvature > 0.0, slope / ops.where(curvature > 0.0, curvature, 1.0),
                             0.0)
            return ops.clip(x - step, start - 1.0, start + 1.0)

        # a loop (traced once inside a compiled step) rather than 8 unrolled copies of the ops
        x = ops.fori_loop(0, 8, newton, start)
        inside = ops.logical_and(i > 0, i < self.num_betas - 1)
        x = ops.where(inside, x, start)
        b = polynomial(means)
        loss = ops.where(inside, ops.sum(b * x ** powers), means[i])
        if not self.smoothing:  # the minimum itself: never above the smallest grid point
            loss = ops.minimum(loss, means[i])
        log_step = float(np.log(self.high / self.low) / (self.num_betas - 1))
        beta = self.low * ops.exp((ops.cast(j, "float64") + x) * log_step)
        return ops.maximum(loss, 0.0), beta

    def _eager_state(self):
        """The values of the state as NumPy arrays outside a traced function on TensorFlow
        (there a Python float64 computation is ~100× faster than ~300 eager ops), else None."""
        if keras.backend.backend() != "tensorflow":
            return None
        import tensorflow as tf

        if not tf.executing_eagerly():
            return None
        return [v.numpy() for v in (self.sums, self.other_sums, self.count, self._enabled)]

    def result(self):
        state = self._eager_state()
        if state is not None:
            loss = self._refined(_NUMPY_OPS, state[:3])[0] if state[3] > 0.0 else 0.0
            return keras.ops.convert_to_tensor(np.float64(loss), self.dtype)
        # `cond`: in the training steps, where accumulation is off, the refinement is skipped
        return keras.ops.cond(self._enabled > 0.0, lambda: self._refined()[0],
                              lambda: keras.ops.zeros((), "float64"))

    def temperature(self):
        """`1 / β` at the minimum of the accumulated fitted loss (a float)."""
        state = self._eager_state()
        if state is not None:
            return float(1.0 / self._refined(_NUMPY_OPS, state[:3])[1])
        return float(1.0 / keras.ops.convert_to_numpy(self._refined()[1]))

    def reset_state(self):
        self.sums.assign(keras.ops.zeros_like(self.sums))
        self.other_sums.assign(keras.ops.zeros_like(self.other_sums))
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high,
                "num_betas": self.num_betas, "epsilon": self.epsilon,
                "smoothing": self.smoothing}
