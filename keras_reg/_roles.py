"""The one place that decides a layer's or a weight's role, by `isinstance` on Keras classes.

Used by `keras_reg.regularizers.apply` (which kernels get a regularizer, which layers are
skipped), `keras_reg.callbacks.WeightDecayScheduler` (which weights are decayed) and
`keras_reg.callbacks.PreciseBatchNorm`. Wrapper layers (`keras.layers.Wrapper` subclasses such
as `SpectralNormalization`, `TimeDistributed`, `keras_reg.layers.WeightNoise`, and
`Bidirectional`) take no role of their own: their inner layers do. `SpectralNormalization`
normalizes a *kernel*, not activations, so it is a wrapper here, not a normalization layer.
"""

import keras

from keras_reg._compat import flatten_layers
from keras_reg.layers import GroupNorm

# Layers that normalize activations: all their parameters (gamma, beta) are "normalization".
NORMALIZATION_CLASSES = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.UnitNormalization,
    keras.layers.RMSNormalization,
    keras.layers.Normalization,
    GroupNorm,
)
EMBEDDING_CLASSES = (keras.layers.Embedding,)
ROLES = ("normalization", "embedding")


def is_normalization(layer):
    """True for layers normalizing activations (BatchNorm, LayerNorm, GroupNorm, RMSNorm, ...)."""
    return isinstance(layer, NORMALIZATION_CLASSES)


def is_embedding(layer):
    """True for embedding layers (`keras.layers.Embedding` and subclasses)."""
    return isinstance(layer, EMBEDDING_CLASSES)


def has_role(layer, role):
    """Whether `layer` has `role`, one of `ROLES`."""
    return is_normalization(layer) if role == "normalization" else is_embedding(layer)


def wrapped_layers(layer):
    """The layers a wrapper holds, as `{config key: layer}` (empty for other layers)."""
    if isinstance(layer, keras.layers.Bidirectional):
        return {"layer": layer.forward_layer, "backward_layer": layer.backward_layer}
    if isinstance(layer, keras.layers.Wrapper):
        return {"layer": layer.layer}
    return {}


def walk_layers(model):
    """Every layer inside `model` (nested models, wrapped layers, sub-layers), without `model`."""
    return flatten_layers(model)


def role_layers(model, role):
    """The layers inside `model` (and `model` itself) that have `role`."""
    return [layer for layer in [model, *walk_layers(model)] if has_role(layer, role)]


def bias_variables(model):
    """The bias variables of every layer inside `model`: each layer's `bias` attribute, and
    the recurrent cells' `bias` (reached as sub-layers)."""
    found, seen = [], set()
    for layer in [model, *walk_layers(model)]:
        bias = getattr(layer, "bias", None)
        if isinstance(bias, keras.Variable) and id(bias) not in seen:
            seen.add(id(bias))
            found.append(bias)
    return found


def has_batch_norm(model):
    """Whether `model` (nested models included) has a BatchNormalization layer."""
    return any(isinstance(layer, keras.layers.BatchNormalization)
               for layer in walk_layers(model))
