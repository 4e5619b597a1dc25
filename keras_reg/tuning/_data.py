"""The search's side of the data: what the data are, and a trial's training pipeline."""

import keras
import tensorflow as tf

from keras_reg._roles import walk_layers
from keras_reg.data._datasets import count_classes, one_hot_batches

KINDS = {1: "features", 2: "sequences", 3: "images"}


def data_spec(train, num_classes=None):
    """`(input_shape, num_classes)` of a batched `(inputs, labels)` dataset."""
    spec = train.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError("Invalid value for argument `train`: expected batches of (inputs, "
                         f"labels). Received element_spec={spec}")
    input_shape = tuple(spec[0].shape[1:])
    if not input_shape or any(d is None for d in input_shape) or len(input_shape) > 3:
        raise ValueError(
            "Invalid value for argument `train`: expected inputs of a fixed shape: feature "
            "vectors (features,), sequences (steps, channels) or images (height, width, "
            f"channels). Received input shape {spec[0].shape}")
    if num_classes is None:
        num_classes = count_classes(train)
    return input_shape, max(int(num_classes), 2)


def input_kind(input_shape):
    """`"features"`, `"sequences"` or `"images"` for one example's shape."""
    return KINDS[len(tuple(input_shape))]


def pipeline(reg, train, validation, num_classes, seed=None):
    """`(train, validation)` of one run: `train` through the trial's augmentation (image
    transforms on images only; input noise on any input) and Mixup/CutMix or one-hot targets;
    `validation` with one-hot targets."""
    image = len(train.element_spec[0].shape) == 4
    augmentation = reg.augmentation(seed=seed, image=image)
    transform = reg.transform(num_classes, seed=seed)
    if augmentation is not None:
        train = augmentation.apply(train, num_parallel_calls=tf.data.AUTOTUNE)
    if transform is None:
        train = one_hot_batches(train, num_classes)
    else:
        train = transform.apply(train, num_parallel_calls=tf.data.AUTOTUNE)
    train = train.prefetch(tf.data.AUTOTUNE)
    if validation is not None:
        validation = one_hot_batches(validation, num_classes)
    return train, validation


def has_batch_norm(model):
    return any(isinstance(layer, keras.layers.BatchNormalization)
               for layer in walk_layers(model))
