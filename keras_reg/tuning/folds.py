"""k-fold cross-validation of a search's trials: train and validation pooled, then split k ways.

With a few hundred labelled images the validation split is the noisiest part of a search:
each trial is scored on one small set by one training run. `Folds` pools the training and
validation images and splits them into `k` stratified folds; a trial then trains `k` models,
model `j` on every fold but `j` and validated on fold `j`, and is scored on every labelled
image once (by the model that did not train on it). The folds do not depend on the order in
which the data arrive, so a resumed search pairs the same images.
"""

import hashlib

import numpy as np
import tensorflow as tf

from keras_reg._validation import check_int
from keras_reg.tuning.calibration import read_batches


def check_folds(folds):
    """`None` (no cross-validation) or the number of folds, an int >= 2."""
    if folds is None:
        return None
    return check_int("folds", folds, low=2)


def _labels_of(targets):
    t = np.asarray(targets)
    if t.ndim == 2 and t.shape[-1] > 1:
        return t.argmax(axis=-1)
    return t.reshape(len(t)).astype(np.int64)


def fold_of(images, labels, folds, seed=None):
    """The fold (0..folds-1) of each image: stratified by label, sizes within one of each other.

    The images are first put in a canonical order (by label, then by a hash of their bytes),
    so the assignment depends on the data and the seed only, not on the order they came in.

    Args:
        images: array `(n, ...)`.
        labels: integer labels `(n,)`.
        folds: int >= 2, at most `n`.
        seed: None or int: the shuffle inside each class.

    Returns:
        An int64 array `(n,)`.

    Example:

    >>> x = np.arange(12, dtype="float32").reshape(12, 1)
    >>> y = np.array([0] * 6 + [1] * 6)
    >>> f = fold_of(x, y, 3, seed=0)
    >>> np.bincount(f).tolist(), [np.bincount(f[y == c]).tolist() for c in (0, 1)]
    ([4, 4, 4], [[2, 2, 2], [2, 2, 2]])
    """
    folds = check_int("folds", folds, low=2)
    labels = np.asarray(labels).astype(np.int64)
    n = len(labels)
    if folds > n:
        raise ValueError(f"Invalid value for argument `folds`: at most one fold per image "
                         f"({n} images). Received: folds={folds}")
    images = np.ascontiguousarray(images)
    digests = [hashlib.blake2b(images[i].tobytes(), digest_size=8).hexdigest() for i in range(n)]
    canonical = np.array(sorted(range(n), key=lambda i: (labels[i], digests[i])), np.int64)
    rng = np.random.default_rng(seed)
    # Class by class (shuffled inside each), dealt round-robin: stratified, sizes balanced.
    order = np.concatenate([members[rng.permutation(len(members))] for members in
                            (canonical[labels[canonical] == c] for c in np.unique(labels))])
    out = np.empty(n, np.int64)
    out[order] = np.arange(n) % folds
    return out


class Folds:
    """The `k` cross-validation splits of `train` + `validation` (see the module docstring).

    Args:
        train, validation: batched `(images, labels)` datasets (read once, into memory).
        folds: int >= 2.
        batch_size: None (the size of `train`'s first batch) or int >= 1.
        seed: None or int: the folds' assignment and the training batches' shuffle.

    Example:

    >>> x = np.random.default_rng(0).random((30, 4, 4, 1)).astype("float32")
    >>> y = np.arange(30) % 3
    >>> train = tf.data.Dataset.from_tensor_slices((x[:20], y[:20])).batch(8)
    >>> val = tf.data.Dataset.from_tensor_slices((x[20:], y[20:])).batch(8)
    >>> folds = Folds(train, val, 3, seed=0)
    >>> fit, held_out = folds.split(0)
    >>> len(folds), len(folds.held_out(0)), sum(int(b[0].shape[0]) for b in fit)
    (30, 10, 20)
    """

    def __init__(self, train, validation, folds, batch_size=None, seed=None):
        self.folds = check_int("folds", folds, low=2)
        if validation is None:
            raise ValueError(
                "Invalid value for argument `validation_data`: cross-validation (`folds`) "
                "pools the training and the validation images. Received: validation_data=None")
        for name, data in (("train", train), ("validation_data", validation)):
            spec = getattr(data, "element_spec", None)
            if not isinstance(spec, tuple) or len(spec) != 2:
                raise ValueError(
                    f"Invalid value for argument `{name}`: cross-validation (`folds`) needs "
                    f"batches of (images, labels), without sample weights. Received "
                    f"element_spec={spec}")
        if batch_size is None:
            batch_size = int(next(iter(train))[0].shape[0])
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.seed = seed
        x_train, y_train = read_batches(train)
        x_val, y_val = read_batches(validation)
        if x_train.shape[1:] != x_val.shape[1:] or y_train.shape[1:] != y_val.shape[1:]:
            raise ValueError(
                "Invalid value for argument `validation_data`: its images and labels must have "
                f"the shapes of `train`'s. Received {x_val.shape[1:]} / {y_val.shape[1:]} "
                f"against {x_train.shape[1:]} / {y_train.shape[1:]}")
        self.images = np.concatenate([x_train, x_val])
        self.targets = np.concatenate([y_train, y_val])
        self.labels = _labels_of(self.targets)
        self.fold = fold_of(self.images, self.labels, self.folds, seed)
        # Canonical order: the pooled per-image scores of every trial line up.
        order = np.lexsort((np.arange(len(self.fold)), self.fold))
        self.images, self.targets = self.images[order], self.targets[order]
        self.labels, self.fold = self.labels[order], self.fold[order]
        self._splits = {}

    def __len__(self):
        return len(self.labels)

    def held_out(self, j):
        """Indices (into the pooled images) of fold `j`, the validation images of split `j`."""
        return np.flatnonzero(self.fold == j)

    def split(self, j):
        """`(train, validation)` datasets of split `j`: every fold but `j`, and fold `j`.

        The same dataset objects on every call (the training batches reshuffled each pass).
        """
        j = check_int("j", j, low=0, high=self.folds - 1)
        if j not in self._splits:
            fit = np.flatnonzero(self.fold != j)
            held = self.held_out(j)
            train = tf.data.Dataset.from_tensor_slices(
                (self.images[fit], self.targets[fit])).cache()
            train = train.shuffle(len(fit), seed=self.seed, reshuffle_each_iteration=True)
            validation = tf.data.Dataset.from_tensor_slices(
                (self.images[held], self.targets[held])).cache()
            self._splits[j] = (train.batch(self.batch_size),
                               validation.batch(self.batch_size))
        return self._splits[j]


__all__ = ["Folds", "check_folds", "fold_of"]
