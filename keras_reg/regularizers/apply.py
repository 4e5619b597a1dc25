"""`apply`: attaches regularizers to the kernels of an existing model, which is rebuilt with the
same weights."""

import keras

from keras_reg import _roles
from keras_reg.regularizers._arguments import as_regularizer

# Config keys of Keras layers holding a regularizer for a kernel-like weight.
_KERNEL_KEYS = (
    "kernel_regularizer",
    "depthwise_regularizer",
    "pointwise_regularizer",
    "recurrent_regularizer",
)
_EMBEDDING_KEYS = ("embeddings_regularizer",)
_BIAS_KEYS = ("bias_regularizer",)
# The roles `apply` leaves alone unless told otherwise.
DEFAULT_SKIP = ("normalization", "embedding")

__all__ = ["apply", "DEFAULT_SKIP"]


def _skip_predicate(skip):
    if skip is None:
        skip = ()
    if isinstance(skip, (str, type)) or callable(skip):
        skip = (skip,)
    checks = []
    for item in skip:
        if isinstance(item, str):
            if item not in _roles.ROLES:
                raise ValueError(
                    "Invalid value for argument `skip`: expected role names among "
                    f"{_roles.ROLES}, layer classes or predicates layer -> bool. Received: "
                    f"skip={skip!r}"
                )
            checks.append(lambda layer, role=item: _roles.has_role(layer, role))
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
    for key, inner in _roles.wrapped_layers(layer).items():
        sub = config.get(key)
        if isinstance(inner, keras.layers.Layer) and isinstance(sub, dict) and "config" in sub:
            sub = dict(sub)
            sub["config"] = _edit_config(inner, sub["config"], kernel, bias, skipped)
            config[key] = sub
    return config


def is_functional(model):
    """True for a Functional model (built from `keras.Input` tensors), by its public config.

    A Functional model's `get_config()` lists its `layers`, `input_layers` and `output_layers`;
    a subclassed model's does not (or cannot be built at all).
    """
    if not isinstance(model, keras.Model) or isinstance(model, keras.Sequential):
        return False
    try:
        config = model.get_config()
    except (NotImplementedError, TypeError):
        return False
    return isinstance(config, dict) and {"layers", "input_layers", "output_layers"} <= set(config)


def apply(model, kernel=None, bias=None, skip=DEFAULT_SKIP):
    """Returns a copy of `model` with regularizers attached to its kernels (and biases).

    The model is rebuilt from its config with `keras.models.clone_model` (recursively, so nested
    Sequential / Functional sub-models and shared layers keep their structure), with each
    layer's regularizer arguments edited, then the weights are copied: the returned model has
    the same weights and gives bit-identical outputs. Kernels are every `kernel_regularizer`,
    `depthwise_regularizer`, `pointwise_regularizer` and `recurrent_regularizer` (and
    `embeddings_regularizer` of embedding layers that are not skipped); the layers inside
    wrappers (`SpectralNormalization`, `TimeDistributed`, `Bidirectional`,
    `keras_reg.layers.WeightNoise`) are reached too. Normalization layers (BatchNorm, LayerNorm,
    GroupNorm, RMSNorm, keras_reg GroupNorm, ... — decided by class, so `SpectralNormalization`,
    which normalizes a kernel, is not one) and embeddings are skipped by default, and biases are
    left alone unless `bias` is given.
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
    if not isinstance(model, keras.Sequential) and not is_functional(model):
        raise ValueError(
            "Invalid value for argument `model`: `apply` rebuilds a model from its config and "
            "needs a Sequential or Functional model; for a subclassed model pass "
            "`kernel_regularizer=` to its layers. Received: "
            f"model={type(model).__name__}"
        )
    kernel = as_regularizer(kernel, "kernel")
    bias = as_regularizer(bias, "bias")
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
