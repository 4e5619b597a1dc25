"""A training run with BackupAndRestore and keras_reg regularization, for the fault tests.

Usage: python fault_worker.py BACKUP_DIR OUT.npz [KILL_EPOCH KILL_BATCH]
With KILL_*, the process SIGKILLs itself at that batch (a crash: no cleanup, no exception).
Without, it trains to the end (resuming from BACKUP_DIR if a backup is there) and saves the
final weights and the per-epoch logs to OUT.npz. `build()` is shared with tests/test_faults.py.
"""

import os
import signal
import sys

EPOCHS = 5


def dataset(mix):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(48, 6, 6, 2)).astype("float32")
    labels = rng.integers(0, 4, size=(48,)).astype("int32")
    # MixupCutMix draws from a key of its seed and the batch content: the same draws in a
    # resumed process (no stream position to lose).
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8).map(mix)


def build():
    """A deterministic model and pipeline using keras_reg regularizers, layers and callbacks."""
    import keras

    from keras_reg import callbacks, data, layers, regularizers

    keras.utils.set_random_seed(0)
    reg = regularizers.l2(0.01)
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", kernel_regularizer=reg)(inputs)
    x = layers.GroupNorm(groups=2)(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, kernel_regularizer=reg)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    mix = data.MixupCutMix(4, seed=1)
    cbs = [
        callbacks.StrengthScheduler(lambda epoch: 0.01 / (1 + epoch)),
        callbacks.MixupScheduler(mix, off_epoch=3),
    ]
    return model, dataset(mix), cbs, reg, mix


class KillAt:
    """Builds a callback that SIGKILLs the process at (epoch, batch)."""

    def __new__(cls, epoch, batch):
        import keras

        class _Kill(keras.callbacks.Callback):
            def on_epoch_begin(self, e, logs=None):
                self.epoch = e

            def on_train_batch_begin(self, b, logs=None):
                if self.epoch == epoch and b == batch:
                    os.kill(os.getpid(), signal.SIGKILL)

        return _Kill()


def main(argv):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    backup, out = argv[1], argv[2]
    model, ds, cbs, reg, _ = build()
    cbs = [keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False)] + cbs
    if len(argv) > 3:
        cbs.append(KillAt(int(argv[3]), int(argv[4])))
    history = model.fit(ds, epochs=EPOCHS, callbacks=cbs, verbose=0)
    np.savez(out, *model.get_weights(), epochs=np.array(history.epoch),
             loss=np.array(history.history["loss"]), l2=np.array(float(reg.l2)))


if __name__ == "__main__":
    main(sys.argv)
