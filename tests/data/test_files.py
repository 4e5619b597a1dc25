"""load_files / from_arrays: class folders and .npz files, hold-outs, reloads, clear errors."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_reg.data.files import ImageData, from_arrays, load_files

CLASSES = ("ant", "bee", "cow")

PER_CLASS = 10


def _write_folder(root, shape=(6, 7), mode="L", seed=0, per_class=PER_CLASS):
    """Class folders of random PNGs; returns {class: [pixel arrays in sorted file order]}."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        pixels[name] = []
        for i in range(per_class):
            full = shape + ((3,) if mode == "RGB" else ())
            array = rng.integers(0, 256, full, dtype=np.uint8)
            Image.fromarray(array, mode=None).save(root / name / f"{i:02d}.png")
            pixels[name].append(array)
    return pixels


@pytest.fixture(scope="module")
def gray_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("gray") / "pets"
    pixels = _write_folder(root)
    return root, pixels


@pytest.fixture(scope="module")
def gray_data(gray_folder):
    return load_files(gray_folder[0], seed=3)


def _all(ds):
    xs, ys = zip(*ds.as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys)


def _key(image):
    return image.tobytes()


def test_folder_pixels_labels_and_info(gray_folder, gray_data):
    root, pixels = gray_folder
    info = gray_data.info
    assert (info.name, info.num_classes, info.image_shape) == ("pets", 3, (6, 7, 1))
    assert info.class_names == CLASSES
    assert info.num_examples == {"train": 18, "validation": 6, "test": 6}
    # Every image read back equals PIL's pixels / 255 and carries its folder's label.
    reference = {_key((p / 255.0).astype(np.float32)[..., None]): label
                 for label, name in enumerate(CLASSES) for p in pixels[name]}
    seen = []
    for split in ("train", "validation", "test"):
        x, y = gray_data.arrays[split]
        assert x.dtype == np.float32 and y.dtype == np.int32
        for image, label in zip(x, y):
            assert reference[_key(image)] == label
            seen.append(_key(image))
    assert sorted(seen) == sorted(reference)  # disjoint splits covering every file
    # Stratified: 20 % of 10 per class = 2 per class in each hold-out.
    for split in ("validation", "test"):
        np.testing.assert_array_equal(np.bincount(gray_data.arrays[split][1]), [2, 2, 2])
    assert "test: a stratified 20% hold-out" in info.description
    assert "validation: a stratified 20% hold-out" in info.description


def test_datasets_are_batched_and_reload_in_the_same_order(gray_data):
    keras.utils.set_random_seed(0)
    train, validation, test = gray_data.datasets(batch_size=4)
    first_epoch, second_epoch = _all(train), _all(train)
    assert [len(y) for _, y in train] == [4, 4, 4, 4, 2]
    keras.utils.set_random_seed(0)
    again = gray_data.datasets(batch_size=4)[0]
    np.testing.assert_array_equal(_all(again)[0], first_epoch[0])
    np.testing.assert_array_equal(_all(again)[1], second_epoch[1])
    assert not np.array_equal(first_epoch[1], second_epoch[1])  # reshuffled every epoch
    np.testing.assert_array_equal(np.sort(first_epoch[1]), np.sort(gray_data.arrays["train"][1]))
    np.testing.assert_array_equal(_all(test)[1], gray_data.arrays["test"][1])  # fixed order
    np.testing.assert_array_equal(_all(validation)[0], gray_data.arrays["validation"][0])
    # Another shuffle seed orders the same training examples differently; the splits stay.
    keras.utils.set_random_seed(0)
    other_train, other_validation, _ = gray_data.datasets(batch_size=4, seed=7)
    other = _all(other_train)[1]
    assert not np.array_equal(other, first_epoch[1])
    np.testing.assert_array_equal(np.sort(other), np.sort(first_epoch[1]))
    np.testing.assert_array_equal(_all(other_validation)[1], gray_data.arrays["validation"][1])
    with pytest.raises(ValueError, match="seed"):
        gray_data.datasets(seed=-1)


def test_hold_outs_follow_the_seed(gray_folder, gray_data):
    same = load_files(gray_folder[0], seed=3)
    other = load_files(gray_folder[0], seed=4)
    np.testing.assert_array_equal(same.arrays["test"][0], gray_data.arrays["test"][0])
    assert not np.array_equal(other.arrays["test"][0], gray_data.arrays["test"][0])


def test_rgb_detected_and_mixed_sizes_need_image_size(tmp_path):
    root = tmp_path / "colour"
    pixels = _write_folder(root, shape=(4, 4), per_class=3)
    # One colour image makes the whole folder RGB (grayscale files are repeated on 3 channels).
    Image.fromarray(np.full((4, 4, 3), (255, 0, 0), np.uint8)).save(root / "ant" / "red.png")
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(root / "bee" / "big.png")
    with pytest.raises(ValueError, match=r"colour.*different sizes.*image_size"):
        load_files(root)
    data = load_files(root, image_size=(4, 4), validation_fraction=0.25, test_fraction=0.25)
    assert data.info.image_shape == (4, 4, 3)
    x = np.concatenate([data.arrays[s][0] for s in ("train", "validation", "test")])
    assert len(x) == 11
    red = [img for img in x if np.allclose(img[..., 0], 1) and np.allclose(img[..., 1:], 0)]
    assert len(red) == 1
    gray = (pixels["ant"][0] / 255.0).astype(np.float32)
    assert any(np.allclose(img, np.repeat(gray[..., None], 3, -1)) for img in x)


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (60, 5, 5), dtype=np.uint8)  # NHW grayscale
    y = np.repeat(np.arange(4), 15)
    x_test = rng.integers(0, 256, (8, 5, 5), dtype=np.uint8)
    return x, y, x_test, np.arange(8) % 4


def test_npz_with_test_split_uses_it_and_holds_out_validation(tmp_path, arrays):
    x, y, x_test, y_test = arrays
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x_test, y_test=y_test)
    data = load_files(path, seed=0)
    assert data.info.name == "mine" and data.info.image_shape == (5, 5, 1)
    assert data.info.num_examples == {"train": 48, "validation": 12, "test": 8}
    np.testing.assert_array_equal(data.arrays["test"][0][..., 0], x_test / np.float32(255))
    np.testing.assert_array_equal(data.arrays["test"][1], y_test)
    np.testing.assert_array_equal(np.bincount(data.arrays["validation"][1]), [3, 3, 3, 3])
    assert "test: given (the file's x_test, y_test)" in data.info.description
    assert "validation: a stratified 20% hold-out" in data.info.description
    # The same arrays through from_arrays give the same splits.
    same = from_arrays(x, y, x_test=x_test, y_test=y_test, seed=0)
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(same.arrays[split][0], data.arrays[split][0])


def test_npz_with_every_split_and_float_images(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.random((12, 3, 3, 3)).astype(np.float64)
    path = tmp_path / "all.npz"
    np.savez(path, x_train=x, y_train=np.arange(12) % 3, x_val=x[:4], y_val=[0, 1, 2, 0],
             x_test=x[4:7], y_test=np.array([1.0, 2.0, 0.0]))
    data = load_files(path)
    np.testing.assert_allclose(data.arrays["train"][0], x.astype(np.float32))  # kept as given
    assert data.info.num_examples == {"train": 12, "validation": 4, "test": 3}
    np.testing.assert_array_equal(data.arrays["test"][1], [1, 2, 0])
    assert "hold-out" not in data.info.description


def test_npz_rank3_arrays_are_sequences_only_when_asked(tmp_path):
    """(N, steps, channels) floats: sequences kept as float32 with `sequences=True` (no image
    scaling or channel axis); without it the same arrays are grayscale images (N, H, W, 1)."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (20, 10, 3)).astype(np.uint8)
    path = tmp_path / "seq.npz"
    np.savez(path, x_train=x, y_train=np.arange(20) % 2)
    data = load_files(path, seed=0, sequences=True)
    assert data.info.image_shape == (10, 3)
    splits = [data.arrays[split][0] for split in ("train", "validation", "test")]
    assert all(split.dtype == np.float32 for split in splits)
    np.testing.assert_array_equal(np.sort(np.concatenate(splits).ravel()),
                                  np.sort(x.astype(np.float32).ravel()))  # not divided by 255
    images = load_files(path, seed=0)
    assert images.info.image_shape == (10, 3, 1) and images.arrays["train"][0].max() <= 1.0
    np.savez(path, x_train=rng.random((6, 2, 2, 2, 2)), y_train=np.arange(6) % 2)
    with pytest.raises(ValueError, match="expected sequences"):
        load_files(path, sequences=True)


def test_train_size_is_a_stratified_subset(arrays):
    x, y, _, _ = arrays
    data = from_arrays(x, y, train_size=12)
    np.testing.assert_array_equal(np.bincount(data.arrays["train"][1]), [3, 3, 3, 3])
    assert "subset of 12 of the 36" in data.info.description
    with pytest.raises(ValueError, match="train_size"):
        from_arrays(x, y, train_size=37)


def test_image_size_resizes_arrays(arrays):
    x, y, _, _ = arrays
    data = from_arrays(x, y, image_size=(10, 10))
    assert data.info.image_shape == (10, 10, 1)
    assert isinstance(data, ImageData) and "ImageData('arrays'" in repr(data)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


GOOD_X = np.zeros((10, 4, 4), np.uint8)
GOOD_Y = np.arange(10) % 2


@pytest.mark.parametrize("arrays, problem", [
    (dict(x_train=GOOD_X), "missing key.*y_train"),
    (dict(images=GOOD_X, labels=GOOD_Y), "missing key.*x_train"),
    (dict(x_train=GOOD_X, y_train=GOOD_Y[:9]), "10 images but y_train has 9 labels"),
    (dict(x_train=GOOD_X.astype(float) + np.nan, y_train=GOOD_Y), "NaN"),
    (dict(x_train=np.zeros((10, 2, 4, 4, 1), np.uint8), y_train=GOOD_Y),
     r"shape \(10, 2, 4, 4, 1\)"),
    (dict(x_train=np.zeros((10, 4, 4, 2)), y_train=GOOD_Y), "channels"),
    (dict(x_train=GOOD_X.astype(np.int64), y_train=GOOD_Y), "dtype int64"),
    (dict(x_train=GOOD_X, y_train=GOOD_Y + 0.5), "non-integer labels"),
    (dict(x_train=GOOD_X, y_train=np.array(["a", "b"] * 5)), "expected integer"),
    (dict(x_train=GOOD_X, y_train=GOOD_Y - 1), "negative labels"),
    (dict(x_train=GOOD_X, y_train=np.zeros(10, int)), "single class"),
    (dict(x_train=GOOD_X, y_train=GOOD_Y, x_test=GOOD_X), "x_test is given without y_test"),
    (dict(x_train=GOOD_X, y_train=GOOD_Y, x_val=np.zeros((3, 5, 5)), y_val=[0, 1, 0]),
     "different shapes"),
    (dict(x_train=GOOD_X[:3], y_train=GOOD_Y[:3]), "too few"),
])
def test_bad_npz_is_one_value_error_naming_path_and_problem(tmp_path, arrays, problem):
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=problem) as info:
        load_files(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def _png(path, shape=(4, 4)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(shape, np.uint8)).save(path)


def _folder_case(root, case):
    if case == "empty":
        root.mkdir()
    elif case == "one class":
        for i in range(3):
            _png(root / "a" / f"{i}.png")
    elif case == "loose images":
        _png(root / "x.png")
    elif case == "only a text file":
        _png(root / "a" / "0.png")
        (root / "b").mkdir()
        (root / "b" / "notes.txt").write_text("hello")
    elif case == "corrupt image":
        for c in "ab":
            _png(root / c / "0.png")
        (root / "b" / "broken.png").write_bytes(b"not a png at all")
    elif case == "empty class":
        _png(root / "a" / "0.png")
        (root / "b").mkdir()
    return root


@pytest.mark.parametrize("case, problem", [
    ("missing", "no such file or folder"),
    ("empty", "the folder is empty"),
    ("one class", "single class folder"),
    ("loose images", "directly in the folder"),
    ("only a text file", "'b' holds no image"),
    ("corrupt image", "broken.png is not a readable image"),
    ("empty class", "'b' holds no image"),
])
def test_bad_folder_is_one_value_error_naming_path_and_problem(tmp_path, case, problem):
    root = _folder_case(tmp_path / "data", case)
    with pytest.raises(ValueError, match=problem) as info:
        load_files(root)
    assert str(root) in str(info.value) and "\n" not in str(info.value).strip()


def test_hidden_files_are_skipped(tmp_path):
    root = tmp_path / "data"
    for c in "ab":
        for i in range(5):
            _png(root / c / f"{i}.png")
    (root / "a" / ".DS_Store").write_bytes(b"\0\1")
    (root / ".cache").mkdir()
    data = load_files(root)
    assert data.info.class_names == ("a", "b") and sum(data.info.num_examples.values()) == 10


def test_non_image_files_are_skipped_and_named_in_one_line(tmp_path):
    """As `keras.utils.image_dataset_from_directory` does: a stray file is not an error."""
    root = tmp_path / "data"
    for c in "ab":
        for i in range(5):
            _png(root / c / f"{i}.png")
    (root / "b" / "notes.txt").write_text("hello")
    (root / "a" / "labels.csv").write_text("0,1")
    data = load_files(root)
    assert sum(data.info.num_examples.values()) == 10
    description = data.info.description
    assert "\n" not in description
    assert "skipped 2 non-image files" in description
    assert os.path.join("a", "labels.csv") in description
    assert os.path.join("b", "notes.txt") in description


def test_other_file_types_are_rejected(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2")
    with pytest.raises(ValueError, match="a folder of class sub-folders or a .npz"):
        load_files(path)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_files(broken)


@pytest.mark.parametrize("kwargs, name", [
    (dict(image_size=(0, 4)), "image_size"),
    (dict(image_size=8), "image_size"),
    (dict(validation_fraction=0.0), "validation_fraction"),
    (dict(test_fraction=1.2), "test_fraction"),
    (dict(validation_fraction=0.5, test_fraction=0.5), "validation_fraction"),
    (dict(train_size=1), "train_size"),
    (dict(seed=-1), "seed"),
])
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        from_arrays(GOOD_X, GOOD_Y, **kwargs)


def test_half_given_pair_and_bad_path_argument():
    with pytest.raises(ValueError, match="y_val"):
        from_arrays(GOOD_X, GOOD_Y, x_val=GOOD_X)
    with pytest.raises(ValueError, match="`path`"):
        load_files(None)
    with pytest.raises(ValueError, match="batch_size"):
        from_arrays(GOOD_X, GOOD_Y).datasets(batch_size=0)
