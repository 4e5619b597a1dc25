"""A model builder, a space and a protocol small enough that a search trial costs little more
than its bookkeeping."""

import keras

from keras_reg.tuning import RegularizationSpace, TrainingProtocol


def tiny_model(reg):
    """A linear classifier of 8x8 digits with the trial's dropout and L2 (ignores the norm)."""
    return keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dropout(reg.dropout),
        keras.layers.Dense(10, activation="softmax", kernel_regularizer=reg.kernel_regularizer()),
    ])


# Only L2 and dropout searched; the data-side transforms off. Both references `start` (batch
# norm, nothing else) and `none` (no norm) lie in it, `recipe` and the probes do not (they
# augment); `tiny_model` ignores the norm, so every trial is as cheap as the next.
SPACE = RegularizationSpace(l2=(0.0, 1e-3), dropout=(0.0, 0.3), drop_path="off",
                            mixup_alpha="off", cutmix_alpha="off", label_smoothing="off",
                            augment="off", input_noise="off", norm=["batch", None])

# One pass per epoch, no early stopping: a trial runs exactly its epochs.
PROTOCOL = TrainingProtocol(min_steps_per_epoch=1, patience=None)
