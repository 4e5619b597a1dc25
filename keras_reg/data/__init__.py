"""Regularization on the data side, for `tf.data` pipelines.

`MixupCutMix` (Mixup / CutMix with switch probability, per-sample lambda, exact label weights
and label smoothing), `Cutout`, `smooth_labels` / `one_hot`, `augment` (label-preserving
augmentation built on Keras's preprocessing layers), `load` (the embedded digits data or any
TensorFlow Datasets name), `load_files` / `from_arrays` (your own images: a folder of class
sub-folders, an `.npz` or arrays, with stratified hold-outs) and `preview` (a picture grid of what the transforms do).

Every transform is seeded and stateless: each batch's random draws come from a Philox key made
of the seed and a hash of the batch, so the same seed gives the same output, also in a
parallel `map` with `deterministic=True`; `transform.apply(dataset, num_parallel_calls=...)`
also keys batches by position (new draws every epoch for data that is not reshuffled).
"""

from keras_reg.data.augment import Augment, augment
from keras_reg.data.cutout import Cutout
from keras_reg.data.files import ImageData, from_arrays, load_files
from keras_reg.data.label_smoothing import one_hot, smooth_labels
from keras_reg.data.loading import DatasetInfo, load
from keras_reg.data.mixup_cutmix import MixupCutMix, mixup_cutmix
from keras_reg.data.preview import make_preview

preview = make_preview

__all__ = [
    "MixupCutMix",
    "mixup_cutmix",
    "Cutout",
    "smooth_labels",
    "one_hot",
    "augment",
    "Augment",
    "load",
    "DatasetInfo",
    "ImageData",
    "from_arrays",
    "load_files",
    "preview",
    "make_preview",
]
