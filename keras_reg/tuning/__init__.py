"""Search the regularization strength of a Keras classifier with KerasTuner.

`RegularizationSpace` declares what to search (L2 λ, dropout, drop-path, Mixup/CutMix α, label
smoothing ε, augmentation, input noise, normalization); `Regularization` is one trial's values
with builder helpers; `TrainingProtocol` is how every trial is trained;
`RegularizationHyperModel` is a trial on KerasTuner's `build` / `fit`; `RegularizationTuner` is
the search as a KerasTuner tuner and `search(...)` runs it in one call.
"""

import importlib as _importlib

# name -> module: imported when first used, so that `keras_reg.tuning.space` (no TensorFlow)
# can check a search space before Keras is imported (the command line's argument errors).
# Relative to this package: `.ensembles` is `keras_reg.ensembles`, `.models` `keras_reg.models`
# (re-exported here).
_NAMES = {
    "Regularization": "regularization",
    "RegularizationSpace": "space", "initial_points": "space", "probes": "space",
    "references": "space",
    "TrainingProtocol": "protocol",
    "SearchError": "result", "SearchResult": "result", "SettingsMismatchError": "result",
    "TrialRecord": "result",
    "RegularizationHyperModel": "hypermodel", "refit": "hypermodel", "train": "hypermodel",
    "TUNERS": "tuner", "RegularizationTuner": "tuner", "parse_objective": "tuner",
    "search": "tuner",
    "build_cnn": ".models", "build_conv1d": ".models", "build_mlp": ".models",
    "ensemble": ".ensembles",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(_importlib.import_module(f".{module}", __name__), name)
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
