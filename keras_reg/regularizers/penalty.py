"""`penalty`: the current total weight penalty of a model, whatever regularizers it carries."""

import keras
from keras import ops

__all__ = ["penalty"]


def penalty(model):
    """The current total weight penalty of `model` (or a layer): a float32 scalar tensor.

    The sum of `regularizer(w)` over the trainable weights that carry a regularizer — the part
    of `model.losses` that the weight regularizers contribute (any regularizer, not only
    keras_reg's). Activity regularization and `add_loss` terms are not included. Like Keras,
    only trainable weights count (a frozen layer's penalty is not in the loss).

    Args:
        model: a Keras model or layer.

    Returns:
        A float32 scalar tensor (0 when no weight carries a regularizer).

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
