"""Turns a user's regularizer argument into a regularizer: shared by `regularizers.apply` and
`keras_reg.blocks`."""

import numbers

import keras

from keras_reg._validation import check_float
from keras_reg.regularizers.l1_l2 import L1, L1L2, L2


def as_regularizer(value, name):
    """Converts a `kernel=` / `bias=` / `kernel_regularizer=` argument to a regularizer.

    Accepts None, a regularizer (any callable), a float (-> schedulable `keras_reg` `L2`), a
    string (`"l1"`, `"l2"`, `"l1_l2"` give the schedulable keras_reg versions with Keras's
    default strengths; other identifiers go to `keras.regularizers.get`) or a config dict.
    Errors name the argument `name`.
    """
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
