"""Schedulable L1 / L2 weight penalties, `apply` for existing models, and `penalty`.

The penalties follow Keras's convention exactly: `l2(λ)` adds `λ·Σw²` to the loss (no 1/2 in
front, unlike the lecture notes' `λ/2m·‖w‖²`), `l1(λ)` adds `λ·Σ|w|`. Only the storage of λ
differs from `keras.regularizers.L2`: Keras keeps λ as a Python float, which is baked into the
traced training step, so changing it during `fit` has no effect (keras-team/keras #8413, #4813).
Here λ lives in a non-trainable float32 variable that the traced step *reads*, so
`reg.l2 = 1e-3` (or `keras_reg.callbacks.StrengthScheduler`) takes effect at the next step of an
already compiled `fit`, without retracing.

L2 penalty versus weight decay. The penalty `λ·Σw²` adds `2λ·w` to every gradient. With plain
SGD at learning rate `lr` the update becomes `w ← w − lr·(g + 2λ·w)`, i.e. the weights shrink by
the factor `(1 − 2·lr·λ)` each step: L2 *is* weight decay with coefficient `2λ` there. With
adaptive optimizers (Adam, RMSprop) the `2λ·w` term is divided by the running gradient scale like
any gradient, so weights with large gradients are barely regularized; this is *not* the same as
decoupled weight decay (AdamW, `keras.optimizers.AdamW(weight_decay=...)`), which shrinks every
weight by `lr·wd` outside the adaptive scaling (Loshchilov & Hutter, 2019). Use these regularizers
when you want the penalty in the loss (to watch it with `callbacks.RegularizationLogger`, or to
schedule λ); use AdamW or `callbacks.WeightDecayScheduler` for decoupled decay.
"""

import numbers

import keras
from keras import ops

from keras_reg._validation import check_float

__all__ = ["L1", "L2", "L1L2", "l1", "l2", "l1_l2", "apply", "penalty"]


def _check_strength(name, value):
    return check_float(name, value, low=0.0)


def _strength_variable(value, name):
    """A non-trainable float32 scalar variable created outside any traced function.

    `tf.init_scope` lifts the creation out of a `tf.function` being traced (a regularizer may be
    deserialized inside one), while an enclosing `tf.distribute` strategy scope still applies, so
    a regularizer built under `strategy.scope()` holds a mirrored variable.
    """
    scope = _init_scope()
    with scope:
        return keras.Variable(
            value, dtype="float32", trainable=False, autocast=False, name=name
        )


def _init_scope():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.init_scope()
    import contextlib

    return contextlib.nullcontext()


class _StrengthRegularizer(keras.regularizers.Regularizer):
    """Base class: one variable per strength component named in `_COMPONENTS`."""

    _COMPONENTS = ()

    def __init__(self, **strengths):
        values = {name: _check_strength(name, strengths[name]) for name in self._COMPONENTS}
        self._strengths = {name: _strength_variable(v, name) for name, v in values.items()}

    def _get(self, name):
        return float(ops.convert_to_numpy(self._strengths[name]))

    def _set(self, name, value):
        self._strengths[name].assign(_check_strength(name, value))

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
    """The `name` strength of a `_StrengthRegularizer` as a validated, settable float."""

    def get(self):
        return self._get(name)

    def set_(self, value):
        self._set(name, value)

    return property(get, set_, doc=f"The current `{name}` strength (float); settable, validated.")


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
    See the module docstring for L2 versus decoupled weight decay (AdamW).

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
    """Returns an `L1` regularizer (`l1·Σ|w|`) with a schedulable strength."""
    return L1(l1=l1)


def l2(l2=0.01):
    """Returns an `L2` regularizer (`l2·Σw²`, the Keras convention) with a schedulable strength.

    `l2(λ)` adds `2λ·w` to the gradient: weight decay with coefficient `2λ` under SGD, but not
    AdamW's decoupled decay under Adam (see the module docstring).

    Example:

    >>> from keras_reg import regularizers
    >>> regularizers.l2(1e-4)
    L2(l2=0.0001)
    """
    return L2(l2=l2)


def l1_l2(l1=0.0, l2=0.0):
    """Returns an `L1L2` regularizer (`l1·Σ|w| + l2·Σw²`) with schedulable strengths."""
    return L1L2(l1=l1, l2=l2)


# --------------------------------------------------------------------------------------------
# apply / penalty

# Config keys of Keras layers holding a regularizer for a kernel-like weight.
_KERNEL_KEYS = (
    "kernel_regularizer",
    "depthwise_regularizer",
    "pointwise_regularizer",
    "recurrent_regularizer",
)
_EMBEDDING_KEYS = ("embeddings_regularizer",)
_BIAS_KEYS = ("bias_regularizer",)
# Config keys of wrapper layers (TimeDistributed, Bidirectional, WeightNoise) holding a layer.
_WRAPPED_KEYS = ("layer", "backward_layer")
_ROLES = ("normalization", "embedding")
DEFAULT_SKIP = ("normalization", "embedding")


def _is_normalization(layer):
    known = (
        keras.layers.BatchNormalization,
        keras.layers.LayerNormalization,
        keras.layers.GroupNormalization,
        keras.layers.UnitNormalization,
        keras.layers.Normalization,
    )
    if isinstance(layer, known):
        return True
    name = type(layer).__name__
    # keras_reg.layers.GroupNorm, RMSNormalization and user norms follow this naming.
    return name.endswith("Normalization") or name.endswith("Norm")


def _is_embedding(layer):
    return isinstance(layer, keras.layers.Embedding) or type(layer).__name__.endswith(
        "Embedding"
    )


def _as_regularizer(value, name):
    """Converts `kernel=` / `bias=` arguments: regularizer, float (-> l2), string, dict."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(
            f"Invalid value for argument `{name}`: expected a regularizer, a float (L2 "
            f"strength) or a string identifier. Received: {name}={value!r}"
        )
    if isinstance(value, numbers.Real):
        return L2(check_float(name, value, low=0.0))
    if isinstance(value, str):
        own = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(l1=0.01, l2=0.01)}
        if value in own:
            return own[value]()
        try:
            return keras.regularizers.get(value)
        except (ValueError, TypeError):
            raise ValueError(
                f"Invalid value for argument `{name}`: unknown regularizer identifier. "
                f"Received: {name}={value!r}"
            ) from None
    if isinstance(value, dict):
        return keras.regularizers.get(value)
    if callable(value):
        return value
    raise TypeError(
        f"Invalid value for argument `{name}`: expected a regularizer, a float (L2 strength) "
        f"or a string identifier. Received: {name}={value!r}"
    )


def _skip_predicate(skip):
    if skip is None:
        skip = ()
    if isinstance(skip, (str, type)) or callable(skip):
        skip = (skip,)
    checks = []
    for item in skip:
        if isinstance(item, str):
            if item not in _ROLES:
                raise ValueError(
                    "Invalid value for argument `skip`: expected role names among "
                    f"{_ROLES}, layer classes or predicates layer -> bool. Received: "
                    f"skip={skip!r}"
                )
            checks.append(_is_normalization if item == "normalization" else _is_embedding)
        elif isinstance(item, type):
            checks.append(lambda layer, cls=item: isinstance(layer, cls))
        elif callable(item):
            checks.append(item)
        else:
            raise TypeError(
                "Invalid value for argument `skip`: expected role names, layer classes or "
                f"predicates layer -> bool. Received: skip={skip!r}"
            )
    return lambda layer: any(check(layer) for check in checks)


def _edit_config(layer, config, kernel, bias, skipped):
    """Sets the regularizer keys of one layer's config; recurses into wrapped layers."""
    if skipped(layer):
        return config
    config = dict(config)
    if kernel is not None:
        for key in _KERNEL_KEYS + _EMBEDDING_KEYS:
            if key in config:
                config[key] = kernel
    if bias is not None:
        for key in _BIAS_KEYS:
            if key in config:
                config[key] = bias
    for key in _WRAPPED_KEYS:
        inner = getattr(layer, key, None)
        if key == "layer" and not isinstance(inner, keras.layers.Layer):
            inner = getattr(layer, "forward_layer", None)  # Bidirectional
        sub = config.get(key)
        if isinstance(inner, keras.layers.Layer) and isinstance(sub, dict) and "config" in sub:
            sub = dict(sub)
            sub["config"] = _edit_config(inner, sub["config"], kernel, bias, skipped)
            config[key] = sub
    return config


def apply(model, kernel=None, bias=None, skip=DEFAULT_SKIP):
    """Returns a copy of `model` with regularizers attached to its kernels (and biases).

    The model is rebuilt from its config with `keras.models.clone_model` (recursively, so nested
    Sequential / Functional sub-models and shared layers keep their structure), with each
    layer's regularizer arguments edited, then the weights are copied: the returned model has
    the same weights and gives bit-identical outputs. Kernels are every `kernel_regularizer`,
    `depthwise_regularizer`, `pointwise_regularizer` and `recurrent_regularizer` (and
    `embeddings_regularizer` of embedding layers that are not skipped); wrapped layers
    (`TimeDistributed`, `Bidirectional`, `keras_reg.layers.WeightNoise`) are reached too.
    Normalization layers (BatchNorm, LayerNorm, GroupNorm, keras_reg GroupNorm, ...) and
    embeddings are skipped by default, and biases are left alone unless `bias` is given.
    An argument left `None` keeps whatever regularizer the layers already had.

    The same regularizer object is given to every layer, so they share one strength variable:
    setting `reg.l2` (or a `StrengthScheduler`) changes the penalty of the whole model at once.
    After a `.keras` save/load each layer holds its own copy.

    The returned model is not compiled (as with `clone_model`): compile it before `fit`.

    Args:
        model: a built Sequential or Functional `keras.Model`.
        kernel: regularizer for the kernels: a regularizer object, a float (-> `l2(value)`), or
            a string (`"l1"`, `"l2"`, `"l1_l2"` give the schedulable keras_reg versions with
            Keras's default strengths; other Keras identifiers are passed to
            `keras.regularizers.get`). None leaves kernels as they are.
        bias: the same for the biases (`bias_regularizer`).
        skip: layers left untouched: role names `"normalization"`, `"embedding"`, layer
            classes, or predicates `layer -> bool`. Defaults to normalization and embedding.

    Returns:
        A new, uncompiled `keras.Model`.

    Example:

    >>> import numpy as np
    >>> from keras_reg import regularizers
    >>> inputs = keras.Input((4,))
    >>> hidden = keras.layers.BatchNormalization()(keras.layers.Dense(8)(inputs))
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    >>> reg = regularizers.l2(1e-3)
    >>> regularized = regularizers.apply(model, kernel=reg)
    >>> x = np.ones((3, 4), "float32")
    >>> bool(np.array_equal(model.predict(x, verbose=0), regularized.predict(x, verbose=0)))
    True
    >>> len(regularized.losses)  # two Dense kernels, BatchNorm untouched
    2
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Invalid value for argument `model`: expected a Sequential or Functional "
            f"keras.Model. Received: model={model!r}"
        )
    if not isinstance(model, keras.Sequential) and not _is_functional(model):
        raise ValueError(
            "Invalid value for argument `model`: `apply` rebuilds a model from its config and "
            "needs a Sequential or Functional model; for a subclassed model pass "
            "`kernel_regularizer=` to its layers. Received: "
            f"model={type(model).__name__}"
        )
    kernel = _as_regularizer(kernel, "kernel")
    bias = _as_regularizer(bias, "bias")
    skipped = _skip_predicate(skip)

    def clone_layer(layer):
        config = _edit_config(layer, layer.get_config(), kernel, bias, skipped)
        return layer.__class__.from_config(config)

    new_model = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    if model.built:
        if not new_model.built:
            new_model.build(model.input_shape)
        new_model.set_weights(model.get_weights())
    return new_model


def _is_functional(model):
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def penalty(model):
    """The current total weight penalty of `model` (or a layer): a float32 scalar tensor.

    The sum of `regularizer(w)` over the trainable weights that carry a regularizer — the part
    of `model.losses` that the weight regularizers contribute (any regularizer, not only
    keras_reg's). Activity regularization and `add_loss` terms are not included. Like Keras,
    only trainable weights count (a frozen layer's penalty is not in the loss).

    Example:

    >>> from keras_reg import regularizers
    >>> layer = keras.layers.Dense(2, kernel_initializer="ones",
    ...                            kernel_regularizer=regularizers.l2(0.5))
    >>> layer.build((None, 3))
    >>> float(regularizers.penalty(layer))  # 0.5 * 6 ones
    3.0
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            "Invalid value for argument `model`: expected a keras Model or Layer. "
            f"Received: model={model!r}"
        )
    terms = []
    for variable in model.trainable_weights:
        regularizer = getattr(variable, "regularizer", None)
        if regularizer is not None:
            terms.append(ops.cast(ops.sum(regularizer(variable)), "float32"))
    if not terms:
        return ops.zeros((), dtype="float32")
    return ops.sum(ops.stack(terms))

