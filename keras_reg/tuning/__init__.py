"""Search the regularization strength of a Keras classifier with KerasTuner.

`RegularizationSpace` declares what to search (L2 λ, dropout, drop-path, Mixup/CutMix α, label
smoothing ε, augmentation, input noise, normalization); `Regularization` is one trial's values
with builder helpers; `TrainingProtocol` is how every trial is trained;
`RegularizationHyperModel` is a trial on KerasTuner's `build` / `fit`; `RegularizationTuner` is
the search as a KerasTuner tuner and `search(...)` runs it in one call.
"""

from keras_reg.tuning.regularization import Regularization
from keras_reg.tuning.space import RegularizationSpace, initial_points, probes, references
from keras_reg.tuning.protocol import TrainingProtocol
from keras_reg.tuning.result import SearchError, SearchResult, SettingsMismatchError, TrialRecord
from keras_reg.tuning.hypermodel import RegularizationHyperModel, train
from keras_reg.tuning.tuner import TUNERS, RegularizationTuner, parse_objective
from keras_reg.tuning.search import search
from keras_reg.tuning.models import build_cnn, build_conv1d, build_mlp

__all__ = [
    "Regularization",
    "RegularizationHyperModel",
    "RegularizationSpace",
    "RegularizationTuner",
    "SearchError",
    "SearchResult",
    "SettingsMismatchError",
    "TUNERS",
    "TrainingProtocol",
    "TrialRecord",
    "build_cnn",
    "build_conv1d",
    "build_mlp",
    "initial_points",
    "parse_objective",
    "probes",
    "references",
    "search",
    "train",
]
