"""The datasets helpers: arrays to batched datasets, counts, reading back, train + validation."""

import numpy as np
import pytest
import tensorflow as tf

from keras_reg.data import load, one_hot
from keras_reg.data._datasets import (as_dataset, combined, count_batches, count_classes,
                                      count_examples, one_hot_batches, read_arrays)


@pytest.fixture(scope="module")
def data():
    """64 training digits and the last 20 % of the train split, batches of 32."""
    return load("digits", ("train[:64]", "train[80%:]"), batch_size=32)


def test_arrays_become_batches_reshuffled_each_epoch_and_counted():
    x, y = np.arange(10, dtype="float32")[:, None], np.arange(10) % 3
    ds = as_dataset((x, y), 4, shuffle=True, seed=0, name="train")
    first, second = (read_arrays(ds) for _ in range(2))
    assert count_batches(ds) == 3 and count_examples(ds) == 10 and count_classes(ds) == 3
    assert sorted(first[0][:, 0]) == list(range(10)) and first[0].tolist() != second[0].tolist()
    assert np.array_equal(first[0][:, 0] % 3, first[1])  # inputs keep their own labels
    assert count_batches(ds.filter(lambda *b: True)) == 3  # unknown cardinality: counted
    assert as_dataset(ds, 4, True, 0, "train") is ds


def test_bad_data_are_named():
    with pytest.raises(ValueError, match="`validation`.*3 inputs and 2 labels"):
        as_dataset((np.zeros(3), np.zeros(2)), 4, False, 0, "validation")
    with pytest.raises(TypeError, match="`train`"):
        as_dataset([1, 2, 3], 4, False, 0, "train")
    with pytest.raises(ValueError, match="no batch"):
        read_arrays(tf.data.Dataset.range(0).batch(2))


def test_one_hot_batches_convert_sparse_labels_and_keep_one_hot_ones():
    ds = as_dataset((np.zeros((6, 2), "float32"), np.arange(6) % 4), 4, False, 0, "train")
    dense = ds.map(lambda x, y: (x, one_hot(y, 10)))
    assert np.array_equal(read_arrays(one_hot_batches(ds, 10))[1], np.eye(10)[np.arange(6) % 4])
    assert np.array_equal(read_arrays(one_hot_batches(dense, 10))[1], read_arrays(dense)[1])
    assert count_classes(dense) == 10


def test_combined_data_hold_every_example_once_per_epoch_reshuffled(data):
    train_ds, val_ds = data
    both = combined(train_ds, val_ds, 32, seed=0)
    n = count_examples(train_ds) + count_examples(val_ds)
    assert int(both.cardinality()) == -(-n // 32)

    def fingerprints(ds):  # one number per example: its pixel sum, with its label
        return sorted((round(float(x.sum()), 4), int(y)) for xb, yb in ds.as_numpy_iterator()
                      for x, y in zip(xb, yb))

    expected = sorted(fingerprints(train_ds) + fingerprints(val_ds))
    first = [int(y) for _, yb in both.as_numpy_iterator() for y in yb]
    second = [int(y) for _, yb in both.as_numpy_iterator() for y in yb]
    assert fingerprints(both) == expected  # each example exactly once per epoch
    assert first != second  # reshuffled each epoch, validation mixed in (not appended)
    assert sorted(first) == sorted(second)


def test_combined_data_with_one_hot_and_sparse_labels_become_one_hot(data):
    train_ds, val_ds = data
    one_hot_train = train_ds.map(lambda x, y: (x, one_hot(y, 10)))
    both = combined(one_hot_train, val_ds, 32, seed=0, num_classes=10)
    labels = np.concatenate([y for _, y in both.as_numpy_iterator()])
    assert labels.shape[1] == 10 and np.allclose(labels.sum(axis=1), 1.0)
    counted = combined(val_ds, one_hot_train, 32, seed=0)  # the classes read from the labels
    assert counted.element_spec[1].shape[-1] == 10
