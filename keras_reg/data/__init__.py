"""Regularization on the data side, for `tf.data` pipelines.

`MixupCutMix` (Mixup / CutMix with switch probability, per-sample lambda, exact label weights
and label smoothing), `Cutout`, `smooth_labels` / `one_hot`, `augment` (label-preserving
augmentation built on Keras's preprocessing layers), `load` (the embedded digits data or any
TensorFlow Datasets name) and `preview` (a picture grid of what the transforms do).

Every transform is seeded and stateless: the same seed gives the same output, also in a
parallel `map` with `deterministic=True`.
"""

from keras_reg.data.label_smoothing import one_hot, smooth_labels
from keras_reg.data.mixup_cutmix import MixupCutMix, mixup_cutmix

__all__ = ["MixupCutMix", "mixup_cutmix", "one_hot", "smooth_labels"]
