"""Your own images as batched tf.data: a folder of class sub-folders, a `.npz`, or arrays."""

import os
import pathlib

import numpy as np
import tensorflow as tf

from keras_reg._validation import check_float, check_int, check_seed
from keras_reg.data.loading import DatasetInfo

# The file types `keras.utils.image_dataset_from_directory` reads (it skips any other file).
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
_SPLITS = ("train", "validation", "test")


class ImageData:
    """An image classification dataset held in memory, split into train / validation / test.

    Made by `load_files` (a folder or a `.npz`) or `from_arrays` (NumPy arrays). Images are
    float32 NHWC: uint8 pixels are divided by 255 (the range `keras_reg.data.load` gives every
    dataset), float pixels are kept as given; labels are int32 class indices. `datasets()` builds
    new tf.data pipelines on every call, so two calls under the same global seed
    (`keras.utils.set_random_seed`) yield their batches in the same order: a model retrained on
    freshly built datasets sees exactly the data the first one saw.

    Attributes:
        info: a `DatasetInfo` (`name`, `num_classes`, `image_shape`, `num_examples` per split,
            `class_names`, and `description`: how the validation and test splits were made).
        arrays: dict split -> `(images, labels)` NumPy arrays, for `"train"`, `"validation"`,
            `"test"`.
        seed: the seed of the hold-outs and of the training shuffle.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> data = from_arrays(rng.integers(0, 256, (100, 8, 8), dtype=np.uint8),
    ...                    np.arange(100) % 4)
    >>> data.info.num_examples, data.info.image_shape, data.info.num_classes
    ({'train': 60, 'validation': 20, 'test': 20}, (8, 8, 1), 4)
    >>> train, validation, test = data.datasets(batch_size=16)
    >>> images, labels = next(iter(train))
    >>> images.shape, images.dtype.name, labels.dtype.name
    (TensorShape([16, 8, 8, 1]), 'float32', 'int32')
    """

    def __init__(self, arrays, info, seed):
        self.arrays = arrays
        self.info = info
        self.seed = seed

    def datasets(self, batch_size=32, seed=None):
        """New `(train, validation, test)` tf.data datasets of `(images, labels)` batches.

        The training dataset is shuffled (reshuffled every epoch); validation and test keep a
        fixed order. The last batch may be smaller. The splits themselves never change: `seed`
        only orders the training batches.

        Args:
            batch_size: int >= 1.
            seed: None (use `self.seed`) or int >= 0, the seed of the training shuffle.

        Returns:
            A tuple of three `tf.data.Dataset`.
        """
        batch_size = check_int("batch_size", batch_size, low=1)
        seed = self.seed if seed is None else check_seed(seed)
        out = []
        for split in _SPLITS:
            images, labels = self.arrays[split]
            ds = tf.data.Dataset.from_tensor_slices((images, labels))
            if split == "train":
                ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
            out.append(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))
        return tuple(out)

    def __repr__(self):
        info = self.info
        return (f"ImageData({info.name!r}, image_shape={info.image_shape}, "
                f"num_classes={info.num_classes}, num_examples={info.num_examples})")


def _bad(source, problem):
    return ValueError(f"Cannot use the data in {source}: {problem}.")


def _check_image_size(image_size):
    if image_size is None:
        return None
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                   for v in image_size)):
        raise ValueError("Invalid value for argument `image_size`: expected None or (height, "
                         f"width), two integers >= 1. Received: image_size={image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _check_fractions(validation_fraction, test_fraction):
    validation_fraction = check_float("validation_fraction", validation_fraction, 0.0, 1.0,
                                      low_open=True, high_open=True)
    test_fraction = check_float("test_fraction", test_fraction, 0.0, 1.0, low_open=True,
                                high_open=True)
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            "Invalid value for arguments `validation_fraction` and `test_fraction`: expected a "
            "sum below 1 (something must be left for training). Received: "
            f"validation_fraction={validation_fraction}, test_fraction={test_fraction}")
    return validation_fraction, test_fraction


def _stratified_take(labels, count, rng):
    """(rest, taken): `count` indices drawn per class in proportion to its size (sorted)."""
    classes, sizes = np.unique(labels, return_counts=True)
    exact = sizes * count / len(labels)
    quota = np.floor(exact).astype(int)
    # Largest remainders get the indices left over, so the quotas add up to `count`.
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: count - quota.sum()]] += 1
    taken = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    taken = np.sort(np.concatenate(taken))
    return np.setdiff1d(np.arange(len(labels)), taken), taken


def _inputs(source, split, x, image_size, sequences):
    """Checks one split's inputs: feature vectors `(N, features)` and, with `sequences`,
    sequences `(N, steps, channels)` as float32; else images (`_images`)."""
    if x.ndim == 2 or (sequences and x.ndim == 3):
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise _bad(source, f"x_{split} has dtype {x.dtype}; expected numbers")
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise _bad(source, f"x_{split} contains NaN or infinite values")
        return x
    if sequences:
        raise _bad(source, f"x_{split} has shape {x.shape}; expected sequences as "
                           "(N, steps, channels) or feature vectors as (N, features)")
    return _images(source, split, x, image_size)


def _images(source, split, images, image_size):
    """Checks one split's images and returns them as float32 NHWC (uint8 / 255)."""
    if images.ndim == 3:
        images = images[..., None]  # NHW grayscale
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise _bad(source, f"x_{split} has shape {images.shape}; expected images as "
                           "(N, height, width) or (N, height, width, channels) with 1, 3 or 4 "
                           "channels")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    elif np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float32)
        if not np.all(np.isfinite(images)):
            raise _bad(source, f"x_{split} contains NaN or infinite pixels")
    else:
        raise _bad(source, f"x_{split} has dtype {images.dtype}; expected uint8 (0..255) or "
                           "float pixels")
    if image_size is not None and images.shape[1:3] != image_size:
        images = tf.image.resize(images, image_size, antialias=True).numpy()
    return images


def _labels(source, split, labels, count):
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise _bad(source, f"y_{split} has shape {labels.shape}; expected one integer class "
                           "index per image")
    if len(labels) != count:
        raise _bad(source, f"x_{split} has {count} images but y_{split} has {len(labels)} "
                           "labels")
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise _bad(source, f"y_{split} holds non-integer labels; expected integer class "
                               "indices 0, 1, ...")
    elif not np.issubdtype(labels.dtype, np.integer):
        raise _bad(source, f"y_{split} has dtype {labels.dtype}; expected integer class indices")
    if len(labels) and labels.min() < 0:
        raise _bad(source, f"y_{split} holds negative labels; expected class indices 0, 1, ...")
    return labels.astype(np.int32)


def _assemble(source, name, given, image_size, train_size, validation_fraction,
              test_fraction, seed, class_names=None, origin="the file's", notes=(),
              sequences=False):
    """Validates the given splits, makes the missing hold-outs, returns an `ImageData`
    (`notes`: sentences added to its description)."""
    arrays = {}
    for split, (x, y) in given.items():
        x, y = np.asarray(x), np.asarray(y)
        images = _inputs(source, split, x, image_size, sequences)
        if len(images) == 0:
            raise _bad(source, f"x_{split} is empty")
        arrays[split] = (images, _labels(source, split, y, len(images)))
    shapes = {split: x.shape[1:] for split, (x, _) in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise _bad(source, "the splits hold images of different shapes "
                           f"({', '.join(f'{s}: {v}' for s, v in shapes.items())}); pass "
                           "image_size=(height, width) to resize them")
    if len(np.unique(arrays["train"][1])) < 2:
        raise _bad(source, "the training data holds a single class; a classifier needs at "
                           "least two")
    rng = np.random.default_rng(seed)
    descriptions = []
    for split, fraction in (("test", test_fraction), ("validation", validation_fraction)):
        if split in arrays:
            key = "val" if split == "validation" else split
            descriptions.append(f"{split}: given ({origin} x_{key}, y_{key})")
            continue
        x, y = arrays["train"]
        # The fraction is of all the training data given, also for the second hold-out.
        total = len(given["train"][1])
        count = int(round(fraction * total))
        if count < 1 or count >= len(y):
            raise _bad(source, f"{len(given['train'][1])} training examples are too few to "
                               f"hold out {fraction:.0%} for {split}")
        rest, taken = _stratified_take(y, count, rng)
        arrays[split] = (x[taken], y[taken])
        arrays["train"] = (x[rest], y[rest])
        descriptions.append(f"{split}: a stratified {fraction:.0%} hold-out of the training "
                            f"data ({count} examples, seed {seed})")
    if len(np.unique(arrays["train"][1])) < 2:
        raise _bad(source, f"{len(given['train'][1])} training examples are too few: after the "
                           "validation and test hold-outs a single class is left for training")
    if train_size is not None:
        x, y = arrays["train"]
        if train_size > len(y):
            raise ValueError(
                f"Invalid value for argument `train_size`: expected at most the {len(y)} "
                f"training examples left in {source} after the hold-outs. "
                f"Received: train_size={train_size}")
        if train_size < len(y):
            _, taken = _stratified_take(y, train_size, rng)
            arrays["train"] = (x[taken], y[taken])
            descriptions.append(f"train: a stratified subset of {train_size} of the {len(y)} "
                                f"training examples (seed {seed})")
        if len(np.unique(arrays["train"][1])) < 2:
            raise ValueError(f"Invalid value for argument `train_size`: {train_size} training "
                             f"examples hold a single class. Received: train_size={train_size}")
    num_classes = int(max(int(y.max()) for _, y in arrays.values())) + 1
    if class_names is None:
        class_names = tuple(str(i) for i in range(num_classes))
    info = DatasetInfo(
        name=name, num_classes=num_classes, image_shape=tuple(int(d) for d in shapes["train"]),
        num_examples={split: len(arrays[split][1]) for split in _SPLITS},
        class_names=tuple(class_names), description="; ".join([*descriptions, *notes]),
    )
    return ImageData({split: arrays[split] for split in _SPLITS}, info, seed)


def _check_common(image_size, train_size, validation_fraction, test_fraction, seed):
    image_size = _check_image_size(image_size)
    if train_size is not None:
        train_size = check_int("train_size", train_size, low=2)
    validation_fraction, test_fraction = _check_fractions(validation_fraction, test_fraction)
    seed = check_seed(seed)
    return image_size, train_size, validation_fraction, test_fraction, 0 if seed is None else seed


def from_arrays(x_train, y_train, x_val=None, y_val=None, x_test=None, y_test=None,
                image_size=None, train_size=None, validation_fraction=0.2, test_fraction=0.2,
                seed=0, name="arrays"):
    """Your NumPy images and labels as an `ImageData` (train / validation / test datasets).

    Images are NHWC (or NHW for grayscale, a channel axis is added), uint8 in 0..255 (divided by
    255) or float (kept as given); labels are integer class indices (`num_classes` = the
    largest label + 1). A split that is not given is held out of the training data: the test
    split first (`test_fraction` of the training examples), then the validation split
    (`validation_fraction`), each stratified (every class keeps its share) and drawn with
    `seed`. `info.description` says which splits were given and which were held out.

    Args:
        x_train, y_train: the training images and labels (required).
        x_val, y_val: validation images and labels, or None to hold them out.
        x_test, y_test: test images and labels, or None to hold them out.
        image_size: None or `(height, width)`: resize every image (bilinear, antialiased).
        train_size: None or int >= 2: train on a stratified subset of that many examples.
        validation_fraction, test_fraction: floats in (0, 1) with a sum below 1.
        seed: int >= 0, the seed of the hold-outs, the subset and the training shuffle.
        name: the dataset's name in `info`.

    Returns:
        An `ImageData`; `.datasets(batch_size)` gives `(train, validation, test)`.

    Raises:
        ValueError: bad arrays (one sentence naming the problem) or arguments.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((50, 6, 6, 3))
    >>> data = from_arrays(x, np.arange(50) % 2, x_test=x[:10], y_test=np.arange(10) % 2)
    >>> data.info.num_examples
    {'train': 40, 'validation': 10, 'test': 10}
    >>> print(data.info.description)
    test: given (the arrays' x_test, y_test); validation: a stratified 20% hold-out of the training data (10 examples, seed 0)
    """
    image_size, train_size, validation_fraction, test_fraction, seed = _check_common(
        image_size, train_size, validation_fraction, test_fraction, seed)
    given = {"train": (x_train, y_train)}
    for split, x, y, key in (("validation", x_val, y_val, "val"), ("test", x_test, y_test, "test")):
        if (x is None) != (y is None):
            missing = f"y_{key}" if y is None else f"x_{key}"
            raise ValueError(f"Invalid value for argument `{missing}`: x_{key} and y_{key} come "
                             f"together; give both or neither. Received: {missing}=None")
        if x is not None:
            given[split] = (x, y)
    return _assemble(f"arrays {name!r}", name, given, image_size, train_size,
                     validation_fraction, test_fraction, seed, origin="the arrays'")


def _read_npz(path, image_size, train_size, validation_fraction, test_fraction, seed,
              sequences=False):
    source = str(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            contents = {key: npz[key] for key in npz.files}
    except Exception as error:  # noqa: BLE001 -- any unreadable file is the same user error
        raise _bad(source, f"not a readable .npz file ({type(error).__name__}: {error})") from None
    if "x_train" not in contents or "y_train" not in contents:
        missing = [k for k in ("x_train", "y_train") if k not in contents]
        raise _bad(source, f"missing key(s) {', '.join(missing)}; expected x_train, y_train and "
                           f"optionally x_val, y_val and x_test, y_test (found: "
                           f"{', '.join(sorted(contents)) or 'nothing'})")
    given = {"train": (contents["x_train"], contents["y_train"])}
    for split, key in (("validation", "val"), ("test", "test")):
        pair = [k for k in (f"x_{key}", f"y_{key}") if k in contents]
        if len(pair) == 1:
            other = f"y_{key}" if pair[0].startswith("x") else f"x_{key}"
            raise _bad(source, f"{pair[0]} is given without {other}; give both or neither")
        if pair:
            given[split] = (contents[f"x_{key}"], contents[f"y_{key}"])
    return _assemble(source, path.stem, given, image_size, train_size, validation_fraction,
                     test_fraction, seed, sequences=sequences)


def _skipped_note(skipped, shown=3):
    """One line naming the non-image files skipped: "skipped 2 non-image files (a.txt, b.csv)"."""
    names = ", ".join(str(p) for p in skipped[:shown]) + (", ..." if len(skipped) > shown else "")
    return f"skipped {len(skipped)} non-image file{'s' if len(skipped) > 1 else ''} ({names})"


def _scan_folder(path, image_size):
    """Checks a folder of class sub-folders; returns (class names, color mode, image size,
    the non-image files skipped as paths relative to `path`)."""
    from PIL import Image, UnidentifiedImageError

    source = str(path)
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        loose = [p.name for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        if loose:
            raise _bad(source, f"the images ({loose[0]}, ...) lie directly in the folder; "
                               "expected one sub-folder per class holding that class's images")
        raise _bad(source, "the folder is empty; expected one sub-folder per class holding that "
                           "class's images")
    if len(classes) < 2:
        raise _bad(source, f"a single class folder ({classes[0]}); a classifier needs at least "
                           "two")
    sizes, modes, skipped = {}, set(), []
    for name in classes:
        count = 0
        for root, dirs, files in os.walk(path / name):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in sorted(files):
                if file.startswith("."):
                    continue
                file_path = pathlib.Path(root) / file
                if file_path.suffix.lower() not in IMAGE_SUFFIXES:
                    skipped.append(file_path.relative_to(path))  # as Keras skips them
                    continue
                try:
                    with Image.open(file_path) as image:
                        size, mode = (image.height, image.width), image.mode
                        image.verify()
                except (UnidentifiedImageError, OSError, SyntaxError) as error:
                    raise _bad(source, f"{file_path} is not a readable image ({error})") from None
                sizes.setdefault(size, file_path)
                modes.add(mode)
                count += 1
        if count == 0:
            raise _bad(source, f"the class folder {name!r} holds no image (images are "
                               f"{', '.join(IMAGE_SUFFIXES)} files)")
    if len(sizes) > 1 and image_size is None:
        (a, path_a), (b, path_b) = list(sizes.items())[:2]
        raise _bad(source, f"images of different sizes ({path_a.name}: {a[0]}x{a[1]}, "
                           f"{path_b.name}: {b[0]}x{b[1]}); pass image_size=(height, width) "
                           "(--image-size H W) to resize them")
    color_mode = "grayscale" if modes <= set(_GRAYSCALE_MODES) else "rgb"
    return classes, color_mode, image_size or next(iter(sizes)), skipped


def _read_folder(path, image_size, train_size, validation_fraction, test_fraction, seed):
    classes, color_mode, size, skipped = _scan_folder(path, image_size)
    import keras

    # Keras decodes and resizes; shuffle=False keeps its file order (class by class, sorted).
    dataset = keras.utils.image_dataset_from_directory(
        str(path), labels="inferred", label_mode="int", class_names=classes,
        color_mode=color_mode, batch_size=256, image_size=size, shuffle=False,
        data_format="channels_last", verbose=False,
    )
    try:
        batches = list(dataset.as_numpy_iterator())
    except tf.errors.OpError as error:
        problem = str(error.message).strip().splitlines()[0]
        raise _bad(str(path), f"an image could not be decoded ({problem})") from None
    images = np.concatenate([x for x, _ in batches]).astype(np.float32) / 255.0
    labels = np.concatenate([y for _, y in batches]).astype(np.int32)
    # Already scaled to [0, 1]: `_assemble` keeps float pixels as they are.
    return _assemble(str(path), path.name, {"train": (images, labels)}, None, train_size,
                     validation_fraction, test_fraction, seed, class_names=classes,
                     origin="the folder's", notes=[_skipped_note(skipped)] if skipped else [])


def load_files(path, image_size=None, train_size=None, validation_fraction=0.2,
               test_fraction=0.2, seed=0, sequences=False):
    """Reads your own data: a folder of class sub-folders of images, or a `.npz` file.

    A folder follows `keras.utils.image_dataset_from_directory`'s convention (which decodes
    it): one sub-folder per class, named after it (classes are numbered in sorted order),
    holding `.png`, `.jpg`, `.jpeg`, `.bmp` or `.gif` images (sub-folders inside a class folder
    are read too; hidden files and files of other types are skipped, as Keras skips them, and
    `info.description` names them). Grayscale or RGB is detected from the files (RGB
    if any image has colour). Without `image_size` every image must have the same size.

    A `.npz` holds `x_train`, `y_train` and optionally `x_val`, `y_val` and `x_test`, `y_test`
    (as written by `np.savez(path, x_train=..., ...)`): see `from_arrays` for image arrays.
    Arrays of rank 2 are feature vectors `(N, features)`; arrays of rank 3 are grayscale images
    `(N, height, width)` unless `sequences` is True: then they are sequences `(N, steps,
    channels)`. Feature vectors and sequences are used as given (float32).

    Validation and test splits the data does not give are stratified, seeded hold-outs of the
    training data (`test_fraction` first, then `validation_fraction`, both of the training
    examples given); `info.description` says which. Everything is checked before anything is
    returned: bad data is one `ValueError` naming the path and the problem. Nothing is written.

    Args:
        path: a folder or a `.npz` file.
        image_size: None or `(height, width)`: resize every image to it.
        train_size: None or int >= 2: train on a stratified subset of that many examples.
        validation_fraction, test_fraction: floats in (0, 1) with a sum below 1.
        seed: int >= 0, the seed of the hold-outs, the subset and the training shuffle.
        sequences: read rank-3 arrays of a `.npz` as sequences, not grayscale images.

    Returns:
        An `ImageData`: `.info` and `.datasets(batch_size)` -> `(train, validation, test)`.

    Example:

    >>> import numpy as np, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "mine.npz")
    >>> x = np.random.default_rng(0).integers(0, 256, (40, 5, 5), dtype=np.uint8)
    >>> np.savez(path, x_train=x, y_train=np.arange(40) % 2)
    >>> data = load_files(path)
    >>> data.info.name, data.info.image_shape, data.info.num_examples
    ('mine', (5, 5, 1), {'train': 24, 'validation': 8, 'test': 8})
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError("Invalid value for argument `path`: expected a folder of class "
                         f"sub-folders or a .npz file. Received: path={path!r}")
    image_size, train_size, validation_fraction, test_fraction, seed = _check_common(
        image_size, train_size, validation_fraction, test_fraction, seed)
    path = pathlib.Path(path)
    if not path.exists():
        raise _bad(str(path), "no such file or folder")
    if path.is_dir():
        return _read_folder(path, image_size, train_size, validation_fraction, test_fraction,
                            seed)
    if path.suffix.lower() != ".npz":
        raise _bad(str(path), "expected a folder of class sub-folders or a .npz file")
    return _read_npz(path, image_size, train_size, validation_fraction, test_fraction, seed,
                     sequences=bool(sequences))
