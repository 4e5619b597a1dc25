"""Search the regularization strength with KerasTuner.

`RegularizationSpace` declares what to search (L2 λ, dropout, drop-path, Mixup/CutMix α, label
smoothing ε, normalization); `Regularization` is one trial's values with builder helpers;
`search(...)` runs a resumable, distributable KerasTuner search whose trials rebuild both the
model and the training pipeline from their values, and returns a `SearchResult`.
"""

from keras_reg.tuning.space import Regularization, RegularizationSpace
from keras_reg.tuning.result import SearchError, SearchResult, TrialRecord
from keras_reg.tuning.hypermodel import RegularizationHyperModel, train
from keras_reg.tuning.search import TUNERS, search
from keras_reg.tuning._model import build_cnn

__all__ = [
    "Regularization",
    "RegularizationSpace",
    "RegularizationHyperModel",
    "SearchError",
    "SearchResult",
    "TrialRecord",
    "TUNERS",
    "build_cnn",
    "search",
    "train",
]
