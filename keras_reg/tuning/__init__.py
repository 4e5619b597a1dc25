"""Search the regularization strength with KerasTuner.

`RegularizationSpace` declares what to search (L2 λ, dropout, drop-path, Mixup/CutMix α, label
smoothing ε, normalization); `Regularization` is one trial's values with builder helpers;
`RegularizationTuner` is the search shaped as a KerasTuner tuner (resumable, distributable,
references evaluated first) and `search(...)` runs it in one call, returning a `SearchResult`.
"""

from keras_reg.tuning.space import Regularization, RegularizationSpace, references
from keras_reg.tuning.protocol import TrainingProtocol, WarmupCosineDecay
from keras_reg.tuning.result import (SearchError, SearchResult, SettingsMismatchError,
                                     TrialRecord)
from keras_reg.tuning.hypermodel import RegularizationHyperModel, train
from keras_reg.tuning.tuner import TUNERS, RegularizationTuner, parse_objective
from keras_reg.tuning.search import search
from keras_reg.tuning.cnn import build_cnn
from keras_reg.tuning.calibration import CalibratedCrossEntropy, TemperatureScaling, calibrate

__all__ = [
    "CalibratedCrossEntropy",
    "Regularization",
    "RegularizationSpace",
    "RegularizationHyperModel",
    "RegularizationTuner",
    "SearchError",
    "SearchResult",
    "SettingsMismatchError",
    "TrialRecord",
    "TemperatureScaling",
    "TrainingProtocol",
    "WarmupCosineDecay",
    "TUNERS",
    "build_cnn",
    "calibrate",
    "parse_objective",
    "references",
    "search",
    "train",
]
