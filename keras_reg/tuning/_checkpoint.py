"""Per-trial checkpoints of a search: the best epoch's weights, and a timed backup to resume."""

import os
import time

import keras
import numpy as np

BACKUP = "backup.npz"


class BestEpochWeights(keras.callbacks.Callback):
    """Writes the weights of the epoch with the best objective when training ends.

    The best epoch's weights are kept in memory (a copy per improvement) and written once, so
    a trial pays one file write instead of one per improving epoch. An interrupted trial
    loses them, as it restarts from its `TimedBackup`.

    Args:
        objective: a `keras_tuner.Objective`.
        filepath: a `.weights.h5` path (`model.save_weights`).
    """

    def __init__(self, objective, filepath):
        super().__init__()
        self.objective = objective
        self.filepath = filepath
        self.best = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.objective.has_value(logs):
            value = self.objective.get_value(logs)
            if self.best is not None and not self.objective.better_than(value, self.best):
                return
            self.best = value
        self.best_weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self.best_weights is None:
            return
        current = self.model.get_weights()
        self.model.set_weights(self.best_weights)
        self.model.save_weights(self.filepath)
        self.model.set_weights(current)


class TimedBackup(keras.callbacks.Callback):
    """Backs up weights, optimizer state and epoch at most every `interval` seconds.

    Written at epoch ends, atomically, to `directory/backup.npz`; removed when training ends
    normally. `restore(model)` loads a backup left by an interrupted run into a freshly built
    (compiled) model and returns the epoch to resume from, for `fit(initial_epoch=...)`.
    Short trials would spend a noticeable share of their time writing a checkpoint every epoch;
    long ones lose at most `interval` seconds of training when interrupted.

    Args:
        directory: the trial's backup folder.
        interval: seconds between backups (0: every epoch).
    """

    def __init__(self, directory, interval=20.0):
        super().__init__()
        self.directory = directory
        self.interval = float(interval)
        self._last = None

    @property
    def path(self):
        return os.path.join(self.directory, BACKUP)

    def restore(self, model):
        """Loads the backup into `model`; returns the epoch to resume from (0 without one)."""
        try:
            with np.load(self.path) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError):
            return 0
        weights = [arrays[f"w{i}"] for i in range(int(arrays["num_weights"]))]
        slots = [arrays[f"o{i}"] for i in range(int(arrays["num_slots"]))]
        model.set_weights(weights)
        optimizer = model.optimizer
        if optimizer is not None and slots:
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
            if len(optimizer.variables) == len(slots):
                for variable, value in zip(optimizer.variables, slots):
                    variable.assign(value)
        return int(arrays["epoch"])

    def on_train_begin(self, logs=None):
        self._last = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self._last < self.interval:
            return
        os.makedirs(self.directory, exist_ok=True)
        arrays = {f"w{i}": w for i, w in enumerate(self.model.get_weights())}
        slots = [] if self.model.optimizer is None else self.model.optimizer.variables
        arrays.update({f"o{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(slots)})
        tmp = os.path.join(self.directory, "backup.tmp.npz")
        np.savez(tmp, epoch=epoch + 1, num_weights=len(self.model.get_weights()),
                 num_slots=len(slots), **arrays)
        os.replace(tmp, self.path)
        self._last = time.monotonic()

    def on_train_end(self, logs=None):
        try:
            os.remove(self.path)
        except OSError:
            pass
