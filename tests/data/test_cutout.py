"""Cutout: exactly one clipped square per image, filled with `fill`; labels untouched.

Behavioural tests use the plain-graph kernel (`jit_compile=False`, the same draws as the default
XLA kernel, checked by `test_xla_and_plain_kernels_agree`) to spare XLA compilations.
"""

import functools

import numpy as np
import pytest
import tensorflow as tf

from keras_reg.data import Cutout as _Cutout

Cutout = functools.partial(_Cutout, jit_compile=False)


def _square(erased):
    """(y0, y1, x0, x1) of the erased pixels after checking they form one rectangle."""
    rows, cols = erased.any(axis=1), erased.any(axis=0)
    np.testing.assert_array_equal(erased, rows[:, None] & cols[None, :])
    r, c = np.flatnonzero(rows), np.flatnonzero(cols)
    return r[0], r[-1] + 1, c[0], c[-1] + 1


def test_one_clipped_square_per_image_with_the_fill_value():
    images = np.random.default_rng(0).uniform(1, 2, (200, 12, 12, 3)).astype("float32")
    labels = np.arange(200)
    out, out_labels = Cutout(5, fill=-1.0, seed=0)(images, labels)
    out = out.numpy()
    np.testing.assert_array_equal(out_labels, labels)
    clipped = 0
    for i in range(200):
        erased = out[i] == -1.0
        assert (erased == erased[..., :1]).all()  # all channels
        np.testing.assert_array_equal(out[i][~erased], images[i][~erased])
        y0, y1, x0, x1 = _square(erased[..., 0])  # every image erased (prob=1)
        inner = y0 > 0 and x0 > 0 and y1 < 12 and x1 < 12
        if inner:
            assert (y1 - y0, x1 - x0) == (5, 5)
        else:
            clipped += 1
            assert y1 - y0 <= 5 and x1 - x0 <= 5
    assert clipped > 20  # centre uniform over the image: many squares reach a border


def test_float_size_is_a_fraction_of_the_shorter_side_uint8_kept():
    images = np.full((20, 20, 30, 1), 200, np.uint8)
    out = Cutout(0.25, fill=7, seed=1)(images).numpy()
    assert out.dtype == np.uint8
    sides = []
    for i in range(20):
        y0, y1, x0, x1 = _square(out[i, ..., 0] == 7)
        sides.append(max(y1 - y0, x1 - x0))
    assert max(sides) == 5  # round(0.25 * 20)


def test_prob_is_the_chance_each_image_is_erased():
    images = np.ones((1000, 8, 8, 1), "float32")
    out = Cutout(3, prob=0.3, seed=2)(images).numpy()
    erased = (out == 0).any(axis=(1, 2, 3))
    assert abs(erased.mean() - 0.3) < 3 * np.sqrt(0.3 * 0.7 / 1000)


def test_dict_single_image_channels_first_and_parallel_map():
    images = np.random.default_rng(1).random((16, 10, 10, 2)).astype("float32")
    c = Cutout(4, seed=3)
    ref = c(images).numpy()
    out = c({"images": images, "labels": np.arange(16)})
    np.testing.assert_array_equal(out["images"], ref)
    np.testing.assert_array_equal(out["labels"], np.arange(16))
    first = Cutout(4, seed=3, data_format="channels_first")(np.moveaxis(images, -1, 1))
    np.testing.assert_array_equal(np.moveaxis(first.numpy(), 1, -1), ref)
    assert Cutout(4, seed=3)(images[0]).shape == (10, 10, 2)
    ds = tf.data.Dataset.from_tensor_slices(images).batch(4)
    seq = np.concatenate(list(ds.map(c).as_numpy_iterator()))
    par = np.concatenate(list(ds.map(c, num_parallel_calls=4, deterministic=True)
                              .as_numpy_iterator()))
    np.testing.assert_array_equal(seq, par)


def test_xla_and_plain_kernels_agree():
    images = (np.random.default_rng(3).random((8, 9, 11, 3)) * 255).astype("uint8")
    for kwargs in ({"size": 4}, {"size": 0.5, "data_format": "channels_first"}):
        a = _Cutout(seed=5, fill=3, **kwargs)(images).numpy()
        b = Cutout(seed=5, fill=3, **kwargs)(images).numpy()
        np.testing.assert_array_equal(a, b)


def test_config_round_trip():
    c = Cutout(0.5, prob=0.7, fill=0.5, seed=4)
    clone = _Cutout.from_config(c.get_config())
    images = np.random.default_rng(2).random((4, 8, 8, 1)).astype("float32")
    np.testing.assert_array_equal(c(images), clone(images))


def test_size_below_one_pixel_is_rejected():
    with pytest.raises(ValueError, match="size"):
        Cutout(0)


def test_size_fraction_above_one_is_rejected():
    with pytest.raises(ValueError, match="size"):
        Cutout(1.5)


def test_prob_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="prob"):
        Cutout(4, prob=-0.5)


def test_non_image_rank_is_rejected():
    with pytest.raises(ValueError, match="rank 4"):
        Cutout(4)(np.zeros((8, 8), "float32"))
