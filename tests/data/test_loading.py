"""load: the embedded digits split, TFDS slicing syntax, info, the TFDS path (offline)."""

import socket
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_reg.data import load



def _arrays(ds):
    xs, ys = zip(*ds.as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys)


def test_digits_split_sizes_types_range_and_stratification():
    (train, test), info = load("digits", ("train", "test"), batch_size=500, with_info=True)
    x_train, y_train = _arrays(train)
    x_test, y_test = _arrays(test)
    assert (len(y_train), len(y_test)) == (1437, 360)
    assert x_train.shape[1:] == (8, 8, 1) and x_train.dtype == np.float32
    assert y_train.dtype == np.int32 and x_test.min() >= 0 and x_test.max() <= 1.0
    assert set(np.unique(y_test)) == set(range(10))
    np.testing.assert_allclose(np.bincount(y_test) / 360, np.bincount(y_train) / 1437, atol=0.01)
    assert (info.name, info.num_classes, info.image_shape) == ("digits", 10, (8, 8, 1))
    assert info.num_examples["train"] == 1437 and info.num_examples["test"] == 360


def test_split_is_deterministic_and_shuffle_follows_the_seed():
    a = _arrays(load("digits", "train", shuffle=False, batch_size=2000))[1]
    b = _arrays(load("digits", "train", shuffle=False, batch_size=2000))[1]
    np.testing.assert_array_equal(a, b)
    s0 = load("digits", "train", seed=0, batch_size=2000)  # shuffled by default (train)
    first, second = _arrays(s0)[1], _arrays(s0)[1]
    np.testing.assert_array_equal(first, _arrays(load("digits", "train", seed=0,
                                                        batch_size=2000))[1])
    assert not np.array_equal(first, second)  # reshuffled each epoch
    assert not np.array_equal(first, a)
    np.testing.assert_array_equal(np.sort(first), np.sort(a))
    assert not np.array_equal(first, _arrays(load("digits", "train", seed=1,
                                                    batch_size=2000))[1])
    t1 = _arrays(load("digits", "test", batch_size=2000))[1]  # test: not shuffled
    np.testing.assert_array_equal(t1, _arrays(load("digits", "test", batch_size=2000))[1])


def test_tfds_slicing_syntax():
    full_x, full_y = _arrays(load("digits", "train", shuffle=False, batch_size=2000))
    cases = {"train[:200]": slice(0, 200), "train[80%:]": slice(1150, None),
             "train[-10:]": slice(-10, None), "train[10%:20%]": slice(144, 287)}
    datasets, info = load("digits", tuple(cases), shuffle=False, batch_size=2000,
                          with_info=True)
    for (split, index), ds in zip(cases.items(), datasets):
        x, y = _arrays(ds)
        np.testing.assert_array_equal(y, full_y[index])
        np.testing.assert_array_equal(x, full_x[index])
        assert info.num_examples[split] == len(y)
    assert len(_arrays(load("digits", "train+test", batch_size=2000))[1]) == 1797
    assert len(_arrays(load("digits", "all", batch_size=2000))[1]) == 1797
    batches = [len(y) for _, y in load("digits", "test[:70]", batch_size=32)]
    assert batches == [32, 32, 6]


class _Connection:
    def close(self):
        pass


def test_tfds_path_offline_with_mock_data(tmp_path, monkeypatch):
    # mock_data replaces the download and the reading; the dataset is not prepared in
    # tmp_path, so load() first asks whether the download host answers: say it does.
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: _Connection())
    with tfds.testing.mock_data(num_examples=12, data_dir=str(tmp_path)):
        (train, test), info = load("mnist", ("train", "test[:5]"), batch_size=8,
                                   with_info=True, data_dir=str(tmp_path))
        x, y = _arrays(train)
        assert x.shape == (12, 28, 28, 1) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.dtype == np.int32 and y.max() < 10
        # mock_data yields num_examples for every split (slices are passed to TFDS, not mocked).
        assert _arrays(test)[0].shape[1:] == (28, 28, 1)
    assert (info.name, info.num_classes, info.image_shape) == ("mnist", 10, (28, 28, 1))


def test_unknown_dataset_name_is_a_clear_error():
    with pytest.raises(ValueError, match="no_such_dataset_xyz"):
        load("no_such_dataset_xyz")


def test_unknown_digits_split_is_rejected():
    with pytest.raises(ValueError, match="validation"):
        load("digits", "validation")


def test_batch_size_below_one_is_rejected():
    with pytest.raises(ValueError, match="batch_size"):
        load("digits", batch_size=0)


@pytest.mark.parametrize("name, shape", [
    ("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1)), ("cifar10", (32, 32, 3)),
])
def test_real_tfds_builders_load_offline(tmp_path, name, shape):
    # No mocks: the installed TFDS builders, their metadata and the modules they import while
    # preparing (code_path needs the `importlib_resources` dependency).
    builder = tfds.builder(name, data_dir=str(tmp_path))
    info = builder.info
    image_key, label_key = info.supervised_keys
    assert tuple(info.features[image_key].shape) == shape
    assert info.features[label_key].num_classes == 10
    assert builder.code_path.name == f"{name}.py" or builder.code_path.exists()
    assert not builder.is_prepared()


def test_not_downloaded_without_network_fails_fast_in_one_line(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    # The test machine may be online: take the network away, as on an offline machine.
    monkeypatch.setattr(socket, "create_connection", no_network)
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        load("mnist", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 20  # not minutes of download retries
    message = str(info.value)
    assert "\n" not in message
    assert "dataset 'mnist' is not downloaded in " + str(tmp_path) in message
    assert "no network" in message
