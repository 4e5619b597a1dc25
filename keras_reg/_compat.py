"""The one place where keras_reg touches private names of Keras or KerasTuner.

Each use says why no public way exists and on which versions it was checked;
tests/test_compat.py has one test per use that fails when upstream changes it.
"""

import contextlib

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
