"""The one place where keras_reg touches private names of Keras or KerasTuner.

Each use says why no public way exists and on which versions it was checked;
tests/test_compat.py has one test per use that fails when upstream changes it.
"""

import contextlib

# --- H0: a module whose code is running --------------------------------------------------------
# `import keras_reg` is lazy and imports every sub-package once Keras is imported (so that model
# files find the registered classes); it must not do so while one of its own modules is half
# made (`import keras_reg.layers` as the first import). importlib marks a module whose code is
# running with `module.__spec__._initializing` and offers no public way to ask. Checked on
# CPython 3.10-3.12; a module without the mark reads as imported.


def module_initializing(module):
    """Whether `module`'s code is running now (it is being imported further up the stack)."""
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


# --- H3b: the file of a trial's best epoch -----------------------------------------------------
# KerasTuner's `SaveBestEpoch` writes a trial's best-epoch weights to the path
# `Tuner._get_checkpoint_fname(trial_id)` gives (what its own `load_model` reads); the search
# reads them back into the trial's model once, at the trial's end, to score its best epoch
# image by image. No public accessor exists. Checked on KerasTuner 1.4.8.


def best_epoch_weights(tuner, trial_id):
    """The path of the best-epoch weights KerasTuner saved for `trial_id`."""
    return tuner._get_checkpoint_fname(trial_id)


# --- H3c: the folder of the trial a hypermodel's fit runs for --------------------------------
# KerasTuner hands `HyperModel.fit` the trial's callbacks, among them its `SaveBestEpoch`, whose
# `filepath` lies in the trial's folder; the hypermodel backs the trial up there
# (`keras.callbacks.BackupAndRestore`), so that a trial interrupted under any KerasTuner tuner
# resumes from its last epoch. The class lives in a private module and the trial has no public
# accessor inside `fit`. Checked on KerasTuner 1.4.8.


def trial_folder(callbacks):
    """The folder of the KerasTuner trial these callbacks belong to, or None outside one."""
    import os

    from keras_tuner.src.engine.tuner_utils import SaveBestEpoch

    saver = next((c for c in callbacks if isinstance(c, SaveBestEpoch)), None)
    return None if saver is None else os.path.dirname(saver.filepath)


# --- H3d: a trial's backup every few epochs ----------------------------------------------------
# `keras.callbacks.BackupAndRestore` saves the model and optimizer after every epoch (or every
# `save_freq` batches, then resuming the epoch in progress from its start with weights from its
# end). A save costs ~0.1 s, a seventh of a small trial's epoch; saving after every `every`-th
# epoch keeps Keras's saving and restoring (`_save_model`, `_current_epoch`, the epoch a
# resumed fit starts from) and loses at most `every - 1` epochs to a kill. Checked on Keras 3.15.1.


def epoch_backup(backup_dir, every):
    """A `keras.callbacks.BackupAndRestore` that saves after every `every`-th epoch."""
    import keras

    class EpochBackup(keras.callbacks.BackupAndRestore):
        def on_epoch_end(self, epoch, logs=None):
            self._current_epoch = epoch + 1
            self._last_batch_seen = 0
            if self._current_epoch % every == 0:
                self._save_model()

    return EpochBackup(backup_dir)


# --- H3a: KerasTuner's per-trial traceback printout ------------------------------------------
# KerasTuner prints the full traceback of every failed trial to stderr when its module-level
# `keras_tuner.src.config.DEBUG` is true (the default), inside `BaseTuner.search` between
# `on_trial_begin` and `on_trial_end`, with no public switch. A quiet search keeps the
# failure in the trial's record (`Trial.message`) and turns the printout off for the duration
# of the search only. Checked on KerasTuner 1.4.8 (Keras 3.15.1, TF 2.21).


@contextlib.contextmanager
def kerastuner_tracebacks(enabled):
    """Sets KerasTuner's traceback printout for failed trials inside the block, then restores it."""
    from keras_tuner.src import config as kt_config

    previous = kt_config.DEBUG
    kt_config.DEBUG = bool(enabled)
    try:
        yield
    finally:
        kt_config.DEBUG = previous


# --- H2: walking every layer of a model --------------------------------------------------------
# Keras has no public recursive walk: `Model.layers` lists only the direct children and misses
# layers held by layers (a `Wrapper`'s inner layer, an RNN's cell, a custom layer's
# sub-layers). `Layer._flatten_layers(include_self, recursive)` is what Keras itself uses to
# collect `Layer.weights`. Checked on TF 2.21 / Keras 3.15.1.


def flatten_layers(layer):
    """Every layer nested in `layer` (itself excluded): sub-models, wrapped and sub-layers."""
    return list(layer._flatten_layers(include_self=False, recursive=True))


# --- H1: the backend's seed dtype ----------------------------------------------------------------
# An integer seed given to the layers' pure functions becomes a `[seed, 0]` seed tensor. JAX
# wants it in the dtype of its key data (uint32), which Keras keeps in the private
# `keras.src.backend.random_seed_dtype()` (the dtype of `SeedGenerator.state`, public only
# through a generator instance). Checked on TF 2.21 / Keras 3.15.1 (TF: int64, JAX: uint32).


def random_seed_dtype():
    """The dtype of the current backend's seed tensors (Keras's own `random_seed_dtype`)."""
    from keras.src.backend import random_seed_dtype as keras_random_seed_dtype

    return keras_random_seed_dtype()


# --- H2: keras_reg.distribute.fit, a training loop outside `model.fit` ---------------------------
# `model.fit` creates, before its first step, every variable the step needs (layers, optimizer
# slots, compiled metrics and losses) with `Trainer._symbolic_build(data_batch=spec)`; a loop
# of our own must do the same under the strategy scope, from the data's spec only (no batch is
# consumed, no metric state touched). `model.build(shape)` covers the layers alone. Checked on
# TF 2.21 / Keras 3.15.1.


def symbolic_build(model, data_batch):
    """Creates all variables of a compiled model (layers, optimizer, metrics) from a spec."""
    model._symbolic_build(data_batch=data_batch)


# `keras.callbacks.BackupAndRestore` tells `fit` where to resume by setting
# `model._initial_epoch` in `on_train_begin` (read, then cleared, by Keras's TF trainer); no
# public channel exists. Checked on TF 2.21 / Keras 3.15.1.


def take_initial_epoch(model, default):
    """The epoch a restoring callback asked to resume from (else `default`); clears the request."""
    requested = getattr(model, "_initial_epoch", None)
    model._initial_epoch = None
    return requested if requested is not None else default


# Every `keras.random.SeedGenerator` a layer creates is listed in `Layer._seed_generators`
# (Keras uses it to make `seed_generator_state` variables non-trainable); there is no public
# list of a layer's generators. Checked on TF 2.21 / Keras 3.15.1.


def seed_generators(layer):
    """The `keras.random.SeedGenerator`s created by `layer` itself (not its sub-layers)."""
    return list(getattr(layer, "_seed_generators", []))
