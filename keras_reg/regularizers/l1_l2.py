"""Schedulable L1 / L2 weight penalties: `L1`, `L2`, `L1L2` and their factories.

The penalties follow Keras's convention exactly: `l2(λ)` adds `λ·Σw²` to the loss (no 1/2 in
front, unlike the `λ/(2m)·‖w‖²` of many textbooks), `l1(λ)` adds `λ·Σ|w|`. Only the storage of λ
differs from `keras.regularizers.L2`: Keras keeps λ as a Python float, which is baked into the
traced training step, so changing it during `fit` has no effect.
Here λ lives in a non-trainable float32 variable that the traced step *reads*, so
`reg.l2 = 1e-3` (or `keras_reg.callbacks.StrengthScheduler`) takes effect at the next step of an
already compiled `fit`, without retracing.
See `keras_reg.regularizers` for L2 versus decoupled weight decay (AdamW).
"""

import functools

import keras
from keras import ops

from keras_reg._validation import check_float
from keras_reg._variables import float_setting, float_variable, read_float

__all__ = ["L1", "L2", "L1L2", "l1", "l2", "l1_l2"]


def _check_strength(name, value):
    return check_float(name, value, low=0.0)


class _StrengthRegularizer(keras.regularizers.Regularizer):
    """Base class: one variable per strength component named in `_COMPONENTS`.

    Each strength is a `keras_reg._variables.float_variable` (created outside any traced
    function, under the active strategy scope, so a regularizer made under `strategy.scope()`
    holds a mirrored variable).
    """

    _COMPONENTS = ()

    def __init__(self, **strengths):
        values = {name: _check_strength(name, strengths[name]) for name in self._COMPONENTS}
        self._strengths = {name: float_variable(v, name) for name, v in values.items()}

    def _get(self, name):
        return read_float(self._strengths[name])

    @property
    def strengths(self):
        """Dict component name (`"l1"`, `"l2"`) -> the variable holding that strength."""
        return dict(self._strengths)

    def get_config(self):
        return {name: self._get(name) for name in self._COMPONENTS}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __deepcopy__(self, memo):
        # A copy is an independent regularizer: its own variable, the current strength.
        return self.__class__.from_config(self.get_config())

    def __repr__(self):
        args = ", ".join(f"{name}={self._get(name):g}" for name in self._COMPONENTS)
        return f"{self.__class__.__name__}({args})"


def _strength_property(name):
    """The `name` strength as a validated, settable float (the one `float_setting` mechanism)."""
    return float_setting(
        name,
        functools.partial(_check_strength, name),
        variable=lambda self: self._strengths[name],
        doc=f"The current `{name}` strength (float); settable, validated.",
    )


def _variable_property(name):
    return property(lambda self: self._strengths[name],
                    doc=f"The non-trainable float32 variable holding the `{name}` strength.")


def _l1_term(variable, x):
    return ops.cast(variable, x.dtype) * ops.sum(ops.absolute(x))


def _l2_term(variable, x):
    return ops.cast(variable, x.dtype) * ops.sum(ops.square(x))


@keras.saving.register_keras_serializable(package="keras_reg")
class L2(_StrengthRegularizer):
    """L2 penalty `l2·Σw²` whose strength can change during `fit`.

    Numerically the same as `keras.regularizers.L2(l2)` (no 1/2 factor); the strength is held in
    a non-trainable variable read by the traced step, so assigning `reg.l2` takes effect in an
    already compiled `fit`. One object passed to several layers shares one strength.
    See `keras_reg.regularizers` for L2 versus decoupled weight decay (AdamW).

    Args:
        l2: float >= 0, the strength λ.

    Example:

    >>> from keras_reg import regularizers
    >>> reg = regularizers.l2(0.01)
    >>> round(float(reg(keras.ops.ones((2, 2)))), 6)  # 0.01 * 4
    0.04
    >>> reg.l2 = 0.1
    >>> round(float(reg(keras.ops.ones((2, 2)))), 6)
    0.4
    >>> layer = keras.layers.Dense(3, kernel_regularizer=reg)

    Reference:
        - [Krogh & Hertz, 1992. A Simple Weight Decay Can Improve Generalization](
          https://papers.nips.cc/paper/563-a-simple-weight-decay-can-improve-generalization)
    """

    _COMPONENTS = ("l2",)

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    l2 = _strength_property("l2")
    l2_variable = _variable_property("l2")

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        return _l2_term(self._strengths["l2"], x)


@keras.saving.register_keras_serializable(package="keras_reg")
class L1(_StrengthRegularizer):
    """L1 penalty `l1·Σ|w|` whose strength can change during `fit`.

    Numerically the same as `keras.regularizers.L1(l1)`; the strength is a variable (see `L2`).

    Args:
        l1: float >= 0, the strength λ.

    Example:

    >>> from keras_reg import regularizers
    >>> reg = regularizers.l1(0.5)
    >>> float(reg(keras.ops.convert_to_tensor([[-1.0, 2.0]])))
    1.5
    """

    _COMPONENTS = ("l1",)

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    l1 = _strength_property("l1")
    l1_variable = _variable_property("l1")

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        return _l1_term(self._strengths["l1"], x)


@keras.saving.register_keras_serializable(package="keras_reg")
class L1L2(_StrengthRegularizer):
    """Penalty `l1·Σ|w| + l2·Σw²` with both strengths in variables.

    Numerically the same as `keras.regularizers.L1L2(l1, l2)`. Both terms are always computed
    (a zero strength contributes an exact 0), so either can be scheduled up from zero.

    Args:
        l1: float >= 0.
        l2: float >= 0.

    Example:

    >>> from keras_reg import regularizers
    >>> reg = regularizers.l1_l2(l1=0.5, l2=0.25)
    >>> float(reg(keras.ops.convert_to_tensor([[-1.0, 2.0]])))  # 0.5*3 + 0.25*5
    2.75
    """

    _COMPONENTS = ("l1", "l2")

    def __init__(self, l1=0.0, l2=0.0):
        super().__init__(l1=l1, l2=l2)

    l1 = _strength_property("l1")
    l2 = _strength_property("l2")
    l1_variable = _variable_property("l1")
    l2_variable = _variable_property("l2")

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        return _l1_term(self._strengths["l1"], x) + _l2_term(self._strengths["l2"], x)


def l1(l1=0.01):
    """Returns an `L1` regularizer (`l1·Σ|w|`) with a schedulable strength.

    Args:
        l1: float >= 0, the strength.

    Returns:
        A `keras_reg.regularizers.L1`.

    Example:

    >>> from keras_reg import regularizers
    >>> regularizers.l1(1e-3)
    L1(l1=0.001)
    """
    return L1(l1=l1)


def l2(l2=0.01):
    """Returns an `L2` regularizer (`l2·Σw²`, the Keras convention) with a schedulable strength.

    `l2(λ)` adds `2λ·w` to the gradient: weight decay with coefficient `2λ` under SGD, but not
    AdamW's decoupled decay under Adam (see `keras_reg.regularizers`).

    Args:
        l2: float >= 0, the strength λ.

    Returns:
        A `keras_reg.regularizers.L2`.

    Example:

    >>> from keras_reg import regularizers
    >>> regularizers.l2(1e-4)
    L2(l2=0.0001)
    """
    return L2(l2=l2)


def l1_l2(l1=0.0, l2=0.0):
    """Returns an `L1L2` regularizer (`l1·Σ|w| + l2·Σw²`) with schedulable strengths.

    Args:
        l1: float >= 0.
        l2: float >= 0.

    Returns:
        A `keras_reg.regularizers.L1L2`.

    Example:

    >>> from keras_reg import regularizers
    >>> regularizers.l1_l2(l1=1e-3, l2=1e-2)
    L1L2(l1=0.001, l2=0.01)
    """
    return L1L2(l1=l1, l2=l2)
