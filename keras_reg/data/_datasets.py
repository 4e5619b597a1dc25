"""Batched `(inputs, labels)` datasets: made from arrays, described, counted, read back,
combined."""

import numpy as np
import tensorflow as tf

from keras_reg.data.label_smoothing import one_hot


def as_dataset(data, batch_size, shuffle, seed, name):
    """A batched `(inputs, labels)` dataset from a `tf.data.Dataset` or an `(x, y)` pair.

    Arrays are cached and, with `shuffle`, reshuffled every epoch from `seed`.
    """
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(
                f"Invalid value for argument `{name}`: expected (x, y) with as many labels as "
                f"inputs (at least one). Received: {len(x)} inputs and {len(y)} labels")
        ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size)
    raise TypeError(
        f"Invalid value for argument `{name}`: expected a tf.data.Dataset of (inputs, labels) "
        f"batches or a pair (x, y) of arrays. Received: {name}={type(data).__name__}")


def as_datasets(train, validation, batch_size, seed, validation_name="validation"):
    """`as_dataset` of `train` (shuffled) and of `validation` (not; None stays None)."""
    train = as_dataset(train, batch_size, True, seed, "train")
    if validation is not None:
        validation = as_dataset(validation, batch_size, False, seed, validation_name)
    return train, validation


def combined(train, validation, batch_size, seed, num_classes=None):
    """`train` and `validation` as one batched dataset, shuffled from `seed` every epoch (a
    refit's data: the validation examples mixed in, not appended)."""
    if train.element_spec != validation.element_spec:  # e.g. one-hot against sparse labels
        num_classes = max(count_classes(train) if num_classes is None else num_classes, 2)
        train, validation = (one_hot_batches(d, num_classes) for d in (train, validation))
    examples = train.concatenate(validation).unbatch()
    size = count_examples(train) + count_examples(validation)
    batches = examples.shuffle(min(size, 65536), seed=seed,
                               reshuffle_each_iteration=True).batch(batch_size)
    return batches.apply(tf.data.experimental.assert_cardinality(-(-size // batch_size)))


def count_classes(dataset):
    """The classes of batched `(inputs, labels)`: the width of one-hot labels, else the
    largest sparse label + 1 (one pass over them)."""
    labels = dataset.element_spec[1].shape
    if labels.rank == 2 and labels[-1] not in (None, 1):
        return int(labels[-1])
    top = dataset.map(lambda *b: tf.reduce_max(tf.cast(b[1], tf.int64)))
    return int(top.reduce(tf.constant(0, tf.int64), tf.maximum)) + 1


def count_batches(dataset):
    """The batches of a finite dataset (counted in one pass when its cardinality is unknown)."""
    n = int(dataset.cardinality())
    if n >= 0:
        return max(n, 1)
    return max(1, int(dataset.reduce(0, lambda count, _: count + 1)))


def count_examples(dataset):
    """The examples of a finite batched `(inputs, labels)` dataset (one pass)."""
    sizes = dataset.map(lambda *b: tf.shape(b[0], out_type=tf.int64)[0])
    return int(sizes.reduce(tf.constant(0, tf.int64), lambda a, b: a + b))


def read_arrays(data):
    """`(inputs, targets)` arrays of `(inputs, targets)` batches, read in one pass (a dataset
    reshuffled on each pass still pairs every input with its own target)."""
    batches = [(np.asarray(batch[0]), np.asarray(batch[1])) for batch in data.as_numpy_iterator()]
    if not batches:
        raise ValueError("Invalid value for argument `data`: the dataset yielded no batch.")
    inputs, targets = zip(*batches)
    return np.concatenate(inputs), np.concatenate(targets)


def one_hot_batches(data, num_classes):
    """`data` with one-hot (float32) targets; one-hot or soft targets pass unchanged."""
    def convert(x, y, *rest):
        if y.shape.rank == 2 and y.shape[-1] == num_classes:
            return (x, tf.cast(y, "float32"), *rest)
        return (x, one_hot(y, num_classes), *rest)

    return data.map(convert)


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
