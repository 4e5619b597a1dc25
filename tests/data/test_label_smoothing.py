"""smooth_labels and one_hot against the formula y * (1 - eps) + eps / K."""

import numpy as np
import pytest

from keras_reg.data import one_hot, smooth_labels


def test_formula_for_sparse_column_and_one_hot_labels():
    labels = np.array([0, 3, 2, 3])
    expected = np.eye(5)[labels] * (1 - 0.2) + 0.2 / 5
    for given in (labels, labels[:, None], np.eye(5, dtype="int64")[labels],
                  np.eye(5, dtype="float32")[labels]):
        out = smooth_labels(given, 5, 0.2).numpy()
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, atol=1e-7)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)


def test_zero_epsilon_is_one_hot_and_soft_labels_are_smoothed_linearly():
    np.testing.assert_array_equal(smooth_labels([1, 0], 3, 0.0), np.eye(3)[[1, 0]])
    soft = np.array([[0.7, 0.3, 0.0]], "float32")
    np.testing.assert_allclose(smooth_labels(soft, 3, 0.3), soft * 0.7 + 0.1, atol=1e-7)
    np.testing.assert_array_equal(one_hot(np.array([2.0]), 3), [[0, 0, 1]])


def test_epsilon_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="epsilon"):
        smooth_labels([0], 3, 1.5)


def test_num_classes_below_two_is_rejected():
    with pytest.raises(ValueError, match="num_classes"):
        smooth_labels([0], 1, 0.1)


def test_label_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="labels"):
        one_hot([0, 5], 5)


def test_one_hot_of_the_wrong_width_is_rejected():
    with pytest.raises(ValueError, match="labels"):
        one_hot(np.eye(4, dtype="float32"), 5)
