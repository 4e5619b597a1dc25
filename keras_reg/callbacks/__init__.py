"""Callbacks that make regularization visible and schedule it during `fit`.

`RegularizationLogger` splits the loss into the data loss and the penalty, `GeneralizationGap`
logs validation minus training loss and accuracy and can stop on a growing gap,
`PreciseBatchNorm` gives BatchNormalization exact population statistics before evaluation,
`HopelessTrialStopping` stops a run worse than the median of earlier runs (searches),
`ValidationTemperature` logs the temperature of a calibrated validation loss, and
the schedulers change rates, strengths, mixing and weight decay during training:
`RateScheduler`, `MixupScheduler`, `StrengthScheduler`, `WeightDecayScheduler`.

Callbacks that add keys to the epoch logs (`reg_loss`, `gap`, `rate`, ...) write them in
`on_epoch_end`; Keras's `History` and progress bar run after every user callback, so they show
them. Put these callbacks *before* `TensorBoard`, `CSVLogger`, `EarlyStopping` or
`ModelCheckpoint` in the `callbacks` list when those should see the new keys.

All callbacks are deep-copyable (KerasTuner copies the callbacks of every trial): the copy
shares the objects it acts on (a MixupCutMix transform, explicit layers, a dataset) and none of
the run state.
"""

from keras_reg.callbacks.generalization_gap import GeneralizationGap
from keras_reg.callbacks.median_stopping import HopelessTrialStopping
from keras_reg.callbacks.mixup_scheduler import MixupScheduler
from keras_reg.callbacks.precise_batch_norm import PreciseBatchNorm
from keras_reg.callbacks.rate_scheduler import RateScheduler
from keras_reg.callbacks.regularization_logger import RegularizationLogger
from keras_reg.callbacks.strength_scheduler import StrengthScheduler
from keras_reg.callbacks.validation_temperature import ValidationTemperature
from keras_reg.callbacks.weight_decay_scheduler import WeightDecayScheduler

__all__ = [
    "RegularizationLogger",
    "GeneralizationGap",
    "HopelessTrialStopping",
    "PreciseBatchNorm",
    "RateScheduler",
    "MixupScheduler",
    "StrengthScheduler",
    "WeightDecayScheduler",
    "ValidationTemperature",
]
