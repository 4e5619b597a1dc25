"""A model builder small enough that a search trial costs little more than its bookkeeping."""

import keras


def tiny_model(reg):
    """A linear classifier of 8x8 digits with the trial's dropout and L2 (ignores the norm)."""
    return keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dropout(reg.dropout),
        keras.layers.Dense(10, activation="softmax", kernel_regularizer=reg.kernel_regularizer()),
    ])
