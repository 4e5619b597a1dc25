"""Label smoothing and one-hot targets for sparse or one-hot labels."""

import numpy as np
import tensorflow as tf

from keras_reg._validation import check_int, check_rate


def _is_sparse(labels, num_classes):
    """Whether `labels` holds class indices (rank 1, or rank 2 with a last axis of 1)."""
    rank = labels.shape.rank
    if rank is None:
        raise ValueError(
            "Invalid value for argument `labels`: expected a tensor of known rank (class indices "
            "of shape (batch,) or one-hot of shape (batch, num_classes)). Received: unknown rank"
        )
    if rank <= 1:
        return True
    # (batch, 1) holds indices; (batch, K) is one-hot, whatever its dtype.
    return labels.shape[-1] == 1 or (labels.dtype.is_integer and labels.shape[-1] is None)


def _check_range(indices, num_classes):
    """Class indices must lie in [0, num_classes): a ValueError eagerly, an assertion in graphs."""
    if tf.executing_eagerly():
        values = np.asarray(indices)
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            bad = values[(values < 0) | (values >= num_classes)].ravel()[0]
            raise ValueError(
                f"Invalid value for argument `labels`: expected class indices in "
                f"[0, {num_classes}) for num_classes={num_classes}. Received: a label {bad}"
            )
        return indices
    check = tf.debugging.Assert(
        tf.reduce_all((indices >= 0) & (indices < num_classes)),
        [f"Invalid value for argument `labels`: expected class indices in [0, {num_classes}) "
         f"for num_classes={num_classes}. Received labels:", indices],
        summarize=16,
    )
    with tf.control_dependencies([check]):
        return tf.identity(indices)


def one_hot(labels, num_classes):
    """Float32 one-hot targets from class indices; one-hot or soft labels pass through.

    Sparse labels (integers, or shape `(batch,)`, or `(batch, 1)`) become `(batch, num_classes)`
    float32 one-hot rows; labels that already have `num_classes` columns are cast to float32.
    Indices outside `[0, num_classes)` raise a ValueError (eagerly) or fail an assertion naming
    `labels` (inside a `tf.data` graph), instead of silently giving a zero row.

    Args:
        labels: class indices or one-hot / soft labels.
        num_classes: int >= 2, the number of classes.

    Returns:
        A float32 tensor of shape `labels.shape[:1] + (num_classes,)`.

    Example:

    >>> one_hot([2, 0], num_classes=3).numpy()
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    labels = tf.convert_to_tensor(labels)
    if _is_sparse(labels, num_classes):
        if labels.shape.rank == 2:
            labels = labels[:, 0]
        if labels.shape.rank != 1 and labels.shape.rank != 0:
            raise ValueError(
                "Invalid value for argument `labels`: expected class indices of shape (batch,) "
                f"or one-hot labels of shape (batch, {num_classes}). Received: "
                f"labels.shape={labels.shape}"
            )
        if not labels.dtype.is_integer:
            labels = tf.cast(tf.round(labels), tf.int32)
        labels = _check_range(tf.cast(labels, tf.int32), num_classes)
        return tf.one_hot(labels, num_classes, dtype=tf.float32)
    if labels.shape[-1] != num_classes:
        raise ValueError(
            f"Invalid value for argument `labels`: expected one-hot labels with num_classes="
            f"{num_classes} columns or class indices. Received: labels.shape={labels.shape}"
        )
    return tf.cast(labels, tf.float32)


def smooth_labels(labels, num_classes, epsilon):
    """Label smoothing: `y * (1 - epsilon) + epsilon / num_classes`.

    The target of the true class becomes `1 - epsilon + epsilon / K` and every other class gets
    `epsilon / K` (K = `num_classes`), so the targets still sum to 1 and the network is never
    asked for an infinite logit. This is the formula of Szegedy et al. and of Keras's
    `CategoricalCrossentropy(label_smoothing=...)` (whose off-value is also `epsilon / K`).
    Sparse and one-hot labels give the same result.

    Args:
        labels: class indices `(batch,)` or one-hot / soft labels `(batch, num_classes)`.
        num_classes: int >= 2.
        epsilon: float in [0, 1]; 0 returns the plain one-hot targets.

    Returns:
        Float32 targets of shape `(batch, num_classes)`.

    Example:

    >>> smooth_labels([1], num_classes=4, epsilon=0.1).numpy().round(3)
    array([[0.025, 0.925, 0.025, 0.025]], dtype=float32)

    Reference:
        Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", 2016.
    """
    epsilon = check_rate(epsilon, name="epsilon")
    targets = one_hot(labels, num_classes)
    return targets * (1.0 - epsilon) + epsilon / num_classes


def smoothing_formula(targets, epsilon, num_classes):
    """`targets·(1-ε) + ε/K` with `epsilon` a validated float or tensor (no checks here).

    The formula of `smooth_labels`, shared with `MixupCutMix`, which holds ε in a variable.
    """
    return targets * (1.0 - epsilon) + epsilon / float(num_classes)
