"""`load`: the embedded digits data, or any TensorFlow Datasets name, as batched tf.data."""

import dataclasses
import functools
import pathlib
import re
import socket
import threading

import numpy as np
import tensorflow as tf

from keras_reg._validation import check_int, check_seed

_DIGITS_SPLITS = ("train", "test")
_SLICE = re.compile(r"^(?P<name>[A-Za-z_][\w\-]*)(\[(?P<start>-?\d+%?)?:(?P<stop>-?\d+%?)?\])?$")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What `load(..., with_info=True)` knows about a dataset.

    Attributes:
        name: the dataset's name.
        num_classes: number of label classes.
        image_shape: `(height, width, channels)` of one image.
        num_examples: dict split -> number of examples, for the base splits and every split
            string that was asked for (slices included).
        class_names: the label names (may be empty).
        description: how the splits were made, when it is not the dataset's own split (e.g.
            "validation: a stratified 20% hold-out of the training data ..."); may be empty.
    """

    name: str
    num_classes: int
    image_shape: tuple
    num_examples: dict
    class_names: tuple = ()
    description: str = ""


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    """scikit-learn's 1,797 8x8 digits, split 80/20 (stratified, fixed) into train and test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[..., None]
    labels = data.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=0
    )
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


def _boundary(text, size):
    """An absolute index from an int or a percent boundary (TFDS's 'closest' rounding)."""
    if text is None:
        return None
    if text.endswith("%"):
        return int(round(int(text[:-1]) * size / 100.0))
    return int(text)


def _split_indices(split, sizes):
    """Resolves a TFDS-style split string (`train`, `train[:200]`, `train[80%:]`, `a+b`,
    `all`) into a list of (base split, index array)."""
    parts = []
    for piece in split.split("+"):
        piece = piece.strip()
        match = _SLICE.match(piece)
        name = match.group("name") if match else None
        if name == "all" and match.group(2) is None:
            parts += [(base, np.arange(sizes[base])) for base in sizes]
            continue
        if match is None or name not in sizes:
            raise ValueError(
                f"Invalid value for argument `split`: expected one of {sorted(sizes)} (or 'all'), "
                "optionally sliced as 'train[:200]' or 'train[80%:]' and joined with '+'. "
                f"Received: split={split!r}"
            )
        size = sizes[name]
        start, stop = _boundary(match.group("start"), size), _boundary(match.group("stop"), size)
        parts.append((name, np.arange(size)[slice(start, stop)]))
    return parts


def _digits(split):
    arrays = _digits_arrays()
    sizes = {name: len(arrays[name][1]) for name in _DIGITS_SPLITS}
    xs, ys = [], []
    for base, index in _split_indices(split, sizes):
        xs.append(arrays[base][0][index])
        ys.append(arrays[base][1][index])
    return np.concatenate(xs), np.concatenate(ys)


def _digits_info(splits):
    counts = {name: len(_digits_arrays()[name][1]) for name in _DIGITS_SPLITS}
    counts.update({split: len(_digits(split)[1]) for split in splits})
    return DatasetInfo("digits", 10, (8, 8, 1), counts, tuple(str(i) for i in range(10)))


def _to_float(images, labels):
    if images.dtype == tf.uint8:
        images = tf.cast(images, tf.float32) / 255.0
    else:
        images = tf.cast(images, tf.float32)
    return images, tf.cast(labels, tf.int32)


def _online(host="storage.googleapis.com", timeout=3.0):
    """Whether `host` (where TFDS downloads from) answers within `timeout` seconds.

    The probe runs in a daemon thread so that a hanging name lookup cannot hold the caller
    longer than `timeout`.
    """
    answer = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(answer and answer[0])


def _tfds_root(builder):
    """The TFDS data directory holding `builder` (its data_dir without name/config/version)."""
    path = pathlib.Path(builder.data_dir)
    parts = path.parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == builder.name:
            return str(pathlib.Path(*parts[:i]))
    return str(path)


def _tfds(name, splits, data_dir, shuffle_files):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(
            f"Invalid value for argument `name`: unknown dataset {name!r}; it is neither "
            "'digits' nor a TensorFlow Datasets name (see tfds.list_builders())."
        ) from None
    if not builder.is_prepared():
        # Without this check TFDS retries its downloads for minutes before failing.
        if not _online():
            raise ValueError(
                f"dataset {name!r} is not downloaded in {_tfds_root(builder)} and there is no "
                "network: connect once to download it, or point data_dir= (or the TFDS_DATA_DIR "
                "environment variable) to a folder where TFDS already prepared it."
            )
        builder.download_and_prepare()
    datasets = builder.as_dataset(split=list(splits), as_supervised=True,
                                  shuffle_files=shuffle_files)
    info = builder.info
    image_key, label_key = info.supervised_keys
    label = info.features[label_key]
    counts = {key: split.num_examples for key, split in info.splits.items()}
    for split in splits:
        try:
            counts[split] = info.splits[split].num_examples
        except Exception:  # noqa: BLE001 -- a count we cannot compute is simply left out
            pass
    ds_info = DatasetInfo(
        name, int(label.num_classes), tuple(info.features[image_key].shape), counts,
        tuple(getattr(label, "names", ()) or ()),
    )
    return datasets, ds_info


def load(name="digits", split="train", batch_size=32, shuffle=None, seed=0, with_info=False,
         data_dir=None):
    """Loads an image classification dataset as batched `(images, labels)` tf.data pipelines.

    `"digits"` is the embedded default: scikit-learn's bundled 1,797 handwritten digits (no
    download), 8x8x1 float32 images in [0, 1] (pixel / 16) and int32 labels 0..9, split once and
    for all (stratified, fixed seed) into `"train"` (1,437) and `"test"` (360). Any other name is
    loaded with `tensorflow_datasets` (`as_supervised=True`); its images are converted to float32
    in [0, 1] (uint8 / 255) so that a model sees the same range for every dataset, and its
    labels to int32. A TFDS dataset that is not prepared in `data_dir` is downloaded once; with
    no network that is a `ValueError` at once, naming the dataset and the folder. For both,
    `split` takes TFDS's syntax: a name, a slice `"train[:200]"`,
    `"train[80%:]"`, several joined with `+`, or `"all"`.

    Args:
        name: `"digits"` or a TensorFlow Datasets name (e.g. `"mnist"`, `"cifar10"`).
        split: a split string or a tuple of them (then a tuple of datasets is returned).
        batch_size: int >= 1 (the last batch may be smaller).
        shuffle: shuffle the examples (reshuffled every epoch); default True for splits starting
            with `"train"`, False otherwise.
        seed: None or int >= 0, the shuffle seed: with the same TensorFlow global seed
            (`keras.utils.set_random_seed`), the same seed gives a new dataset the same order
            of epochs.
        with_info: also return a `DatasetInfo` (`.name`, `.num_classes`, `.image_shape`,
            `.num_examples`).
        data_dir: TFDS data directory (default: TFDS's, `~/tensorflow_datasets` or
            `$TFDS_DATA_DIR`; ignored for digits).

    Returns:
        A `tf.data.Dataset`, or a tuple of them for a tuple `split`; with `with_info=True`,
        `(datasets, info)`.

    Example:

    >>> from keras_reg.data import load
    >>> (train, test), info = load("digits", ("train", "test"), batch_size=64, with_info=True)
    >>> info.num_classes, info.image_shape, info.num_examples["test"]
    (10, (8, 8, 1), 360)
    >>> images, labels = next(iter(train))
    >>> images.shape, images.dtype.name, labels.dtype.name
    (TensorShape([64, 8, 8, 1]), 'float32', 'int32')
    """
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"Invalid value for argument `name`: expected a dataset name. Received: name={name!r}"
        )
    single = isinstance(split, str)
    splits = (split,) if single else tuple(split) if isinstance(split, (tuple, list)) else None
    if not splits or not all(isinstance(s, str) and s for s in splits):
        raise ValueError(
            "Invalid value for argument `split`: expected a split name such as 'train' or a tuple "
            f"of them. Received: split={split!r}"
        )
    batch_size = check_int("batch_size", batch_size, low=1)
    seed = check_seed(seed)
    if shuffle is not None and not isinstance(shuffle, bool):
        raise TypeError(
            f"Invalid value for argument `shuffle`: expected None or a bool. "
            f"Received: shuffle={shuffle!r}"
        )

    def shuffled(split_name):
        return split_name.startswith("train") if shuffle is None else shuffle

    if name == "digits":
        arrays = [_digits(s) for s in splits]  # validates every split first
        raw = [tf.data.Dataset.from_tensor_slices(a) for a in arrays]
        info = _digits_info(splits) if with_info else None
        sizes = [len(a[1]) for a in arrays]
    else:
        raw, info = _tfds(name, splits, data_dir, any(shuffled(s) for s in splits))
        sizes = [None] * len(raw)
    out = []
    for split_name, ds, size in zip(splits, raw, sizes):
        if shuffled(split_name):
            buffer = size if size is not None else 10_000
            ds = ds.shuffle(max(buffer, 1), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
        if name != "digits":
            ds = ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
        out.append(ds.prefetch(tf.data.AUTOTUNE))
    result = out[0] if single else tuple(out)
    return (result, info) if with_info else result
