"""augment: label-preserving, shapes and dtypes kept, each transform as its Keras layer does."""

import numpy as np
import pytest
import tensorflow as tf

from keras_reg.data import augment


def test_all_off_by_default_is_the_identity_and_labels_pass_through():
    images = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    out, labels = augment(seed=0)(images, np.arange(4))
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(labels, np.arange(4))


def test_shapes_dtypes_and_labels_preserved_for_tuples_and_dicts():
    images = np.random.default_rng(1).random((6, 12, 12, 3)).astype("float32")
    aug = augment(flip=True, rotation=0.05, zoom=0.1, translation=0.1, brightness=0.1,
                  contrast=0.1, noise_stddev=0.01, seed=1)
    out, labels = aug(images, np.arange(6))
    assert out.shape == images.shape and out.dtype == tf.float32
    np.testing.assert_array_equal(labels, np.arange(6))
    result = aug({"images": images, "labels": np.arange(6)})
    np.testing.assert_array_equal(result["images"], out)
    assert aug(images[0]).shape == (12, 12, 3)
    assert aug(images.astype("uint8")).dtype == tf.float32


def test_noise_has_the_requested_standard_deviation():
    images = np.full((8, 64, 64, 1), 0.5, "float32")
    out = augment(noise_stddev=0.1, seed=2)(images).numpy() - 0.5
    assert abs(out.mean()) < 0.002
    assert abs(out.std() - 0.1) < 0.002


@pytest.mark.parametrize("shape", [(64, 300), (16, 50, 24), (2000,)])
def test_noise_alone_works_on_any_rank(shape):
    # Feature vectors, sequences, and even one unbatched feature vector.
    x = np.random.default_rng(4).normal(size=shape).astype("float32")
    aug = augment(noise_stddev=0.1, seed=4)
    out, labels = aug(x, np.arange(shape[0]))
    noise = out.numpy() - x
    assert out.shape == shape
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.1) < 0.005
    np.testing.assert_array_equal(labels, np.arange(shape[0]))
    np.testing.assert_array_equal(aug(x), out)  # labels or not: the same draws
    if len(shape) > 1:
        ds = tf.data.Dataset.from_tensor_slices(x).batch(shape[0] // 4)
        sequential = np.concatenate(list(ds.map(aug).as_numpy_iterator()))
        parallel = np.concatenate(list(ds.map(aug, num_parallel_calls=4,
                                              deterministic=True).as_numpy_iterator()))
        np.testing.assert_array_equal(sequential, parallel)
        np.testing.assert_allclose(sequential.std(), np.sqrt(x.var() + 0.01), rtol=0.05)


def test_image_operations_on_a_non_image_rank_are_a_clear_error():
    with pytest.raises(ValueError, match="`rotation`.*rotation, zoom.*rank 2.*noise_stddev"):
        augment(rotation=0.1, zoom=0.1, noise_stddev=0.1)(np.zeros((4, 8), "float32"))
    with pytest.raises(ValueError, match="`flip`.*rank 5"):
        augment(flip=True)(np.zeros((2, 4, 4, 4, 1), "float32"))


def test_flip_gives_the_image_or_its_mirror_and_brightness_a_constant_shift():
    images = np.random.default_rng(3).uniform(0.3, 0.7, (32, 6, 6, 1)).astype("float32")
    out = augment(flip="horizontal", seed=3)(images).numpy()
    mirrored = [np.array_equal(o, x[:, ::-1]) for o, x in zip(out, images)]
    same = [np.array_equal(o, x) for o, x in zip(out, images)]
    assert all(m or s for m, s in zip(mirrored, same)) and 5 < sum(mirrored) < 27
    shifted = augment(brightness=0.2, seed=3)(images).numpy() - images
    spread = shifted.max(axis=(1, 2, 3)) - shifted.min(axis=(1, 2, 3))
    assert spread.max() < 1e-5 and np.abs(shifted).max() <= 0.2 + 1e-6
    assert np.abs(shifted).max() > 0.05


def test_translation_draws_height_and_width_shifts_independently():
    images = np.zeros((32, 21, 21, 1), "float32")
    images[:, 10, 10] = 1.0
    out = augment(translation=0.2, seed=4)(images).numpy()[..., 0]
    dy, dx = [], []
    for o in out:
        if o.max() > 0.2:  # bilinear resampling spreads a fractional shift
            y, x = np.unravel_index(np.argmax(o), o.shape)
            dy.append(y - 10)
            dx.append(x - 10)
    assert len(dy) > 24
    assert np.abs(np.array(dy)).max() <= 5 and np.abs(np.array(dx)).max() <= 5
    assert not np.array_equal(dy, dx)  # Keras alone, given one seed tensor, would tie them


@pytest.mark.slow  # ~5 s; the default run checks parallel .apply in test_determinism
def test_parallel_map_reproduces_sequential_and_seeds_differ():
    images = np.random.default_rng(5).random((32, 10, 10, 1)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((images, np.arange(32))).batch(8)

    def run(aug, **kwargs):
        return np.concatenate([x for x, _ in ds.map(aug, **kwargs).as_numpy_iterator()])

    aug = augment(rotation=0.1, zoom=0.1, noise_stddev=0.05, seed=5)
    seq = run(aug)
    np.testing.assert_array_equal(seq, run(aug, num_parallel_calls=4, deterministic=True))
    assert not np.array_equal(seq, run(augment(rotation=0.1, zoom=0.1, noise_stddev=0.05,
                                               seed=6)))


def test_rotation_above_half_a_turn_is_rejected():
    with pytest.raises(ValueError, match="rotation"):
        augment(rotation=0.8)


def test_unknown_flip_is_rejected():
    with pytest.raises(ValueError, match="flip"):
        augment(flip="diagonal")


def test_negative_noise_is_rejected():
    with pytest.raises(ValueError, match="noise_stddev"):
        augment(noise_stddev=-0.1)


def test_bad_value_range_is_rejected():
    with pytest.raises(ValueError, match="value_range"):
        augment(brightness=0.1, value_range=(1, 0))
