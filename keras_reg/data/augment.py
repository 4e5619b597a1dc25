"""A label-preserving augmentation builder for tf.data, on Keras's preprocessing layers."""

import keras
import tensorflow as tf

from keras_reg._seeds import base_seed
from keras_reg._validation import check_choice, check_float, check_seed
from keras_reg.data import _random, _structure

_FLIPS = ("horizontal", "vertical", "horizontal_and_vertical")


class _KeyStream(keras.random.SeedGenerator):
    """A stateless stand-in for a SeedGenerator: the n-th `next()` is key n of one batch key.

    Keras's preprocessing layers accept a seed generator in `get_random_transformation`; this
    one holds no variable, so the draws depend only on the batch key (not on call order), and
    successive draws of one layer (e.g. the height and the width shift) are independent.
    """

    def __init__(self, key):  # noqa: D107 -- deliberately no state variable (no super call)
        self._key = key
        self._count = 0

    def next(self, ordered=True):
        self._count += 1
        return _random.mix_key(self._key, self._count)


@keras.saving.register_keras_serializable(package="keras_reg")
class Augment:
    """A label-preserving image augmentation for `tf.data`, returned by `augment(...)`.

    Applies, in this order and only those with a non-zero strength: flip, rotation, zoom,
    translation (Keras's `RandomFlip`, `RandomRotation`, `RandomZoom`, `RandomTranslation`),
    brightness and contrast (`RandomBrightness`, `RandomContrast`) and additive Gaussian noise
    `x + N(0, noise_stddev^2)` (the formula of Keras's `GaussianNoise`, drawn here with a
    stateless op). Labels pass through unchanged. The Keras layers do the image work; their
    random parameters are drawn from a per-batch Philox key given to the layers' own
    `get_random_transformation(..., seed=key)`, so, as for `MixupCutMix`, the same seed gives the
    same output also in a parallel map with `deterministic=True` (the layers' internal seed
    generators are stateful and would not). As the key is made of the seed and a hash of the
    batch, a plain `map` over data that is not reshuffled augments every epoch the same way;
    shuffle before batching or use `apply(dataset)` for new draws each epoch. Images are float
    in `value_range` (integer images are converted to float32).

    With every image operation off, Gaussian noise alone works on inputs of any rank (feature
    vectors `(batch, features)`, sequences `(batch, steps, channels)`); an image operation on
    inputs that are neither an image batch nor one image is a ValueError.

    See `augment` for the arguments.
    """

    def __init__(self, flip=False, rotation=0.0, zoom=0.0, translation=0.0, brightness=0.0,
                 contrast=0.0, noise_stddev=0.0, value_range=(0.0, 1.0), fill_mode="constant",
                 seed=None, data_format=None):
        if flip is True:
            flip = "horizontal"
        if flip not in (False, None):
            check_choice("flip", flip, (False,) + _FLIPS)
        self.flip = flip or False
        self.rotation = check_float("rotation", rotation, 0.0, 0.5)
        self.zoom = check_float("zoom", zoom, 0.0, 1.0, high_open=True)
        self.translation = check_float("translation", translation, 0.0, 1.0)
        self.brightness = check_float("brightness", brightness, 0.0, 1.0)
        self.contrast = check_float("contrast", contrast, 0.0, 1.0)
        self.noise_stddev = check_float("noise_stddev", noise_stddev, low=0.0)
        ok = isinstance(value_range, (tuple, list)) and len(value_range) == 2
        if not ok or not float(value_range[0]) < float(value_range[1]):
            raise ValueError(
                "Invalid value for argument `value_range`: expected a pair (low, high) with low "
                f"< high. Received: value_range={value_range!r}"
            )
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.fill_mode = check_choice("fill_mode", fill_mode,
                                      ("constant", "reflect", "wrap", "nearest"))
        self.seed = check_seed(seed)
        self.data_format = check_choice(
            "data_format", data_format or keras.config.image_data_format(),
            ("channels_last", "channels_first"),
        )
        self._base_seed = base_seed(self.seed)
        fmt = {"data_format": self.data_format}
        geo = {"fill_mode": self.fill_mode, "fill_value": self.value_range[0], **fmt}
        self._layers = []
        if self.flip:
            self._layers.append(keras.layers.RandomFlip(self.flip, **fmt))
        if self.rotation:
            self._layers.append(keras.layers.RandomRotation(self.rotation, **geo))
        if self.zoom:
            self._layers.append(keras.layers.RandomZoom(self.zoom, **geo))
        if self.translation:
            self._layers.append(
                keras.layers.RandomTranslation(self.translation, self.translation, **geo))
        if self.brightness:
            self._layers.append(keras.layers.RandomBrightness(
                self.brightness, value_range=self.value_range, **fmt))
        if self.contrast:
            self._layers.append(keras.layers.RandomContrast(
                self.contrast, value_range=self.value_range, **fmt))

    def _augment_images(self, images, key):
        stream = _KeyStream(key)
        for layer in self._layers:
            transformation = layer.get_random_transformation(images, training=True, seed=stream)
            images = layer.transform_images(images, transformation, training=True)
        if self.noise_stddev:
            images = images + self.noise_stddev * tf.random.stateless_normal(
                tf.shape(images), stream.next(), dtype=images.dtype)
        return images

    def _image_ops(self):
        names = ("flip", "rotation", "zoom", "translation", "brightness", "contrast")
        return [n for n in names if getattr(self, n)]

    def _transform(self, args, position=None):
        images, labels, repack = _structure.unpack(args, "augment", need_labels=False)
        images = tf.convert_to_tensor(images)
        single = bool(self._layers) and images.shape.rank == 3
        if single:
            images = images[None]
        if self._layers and images.shape.rank != 4:
            ops = self._image_ops()
            raise _structure.image_rank_error(
                "augment", ops[0], f"the image operations ({', '.join(ops)})", images,
                self.data_format, " and ".join(f"{n}={False if n == 'flip' else 0}" for n in ops) + " (noise_stddev "
                "works on any rank)")
        images = _structure.check_batch(images, "augment", low_rank=1)
        channels_first = self.data_format == "channels_first"
        if not images.dtype.is_floating:
            images = tf.cast(images, tf.float32)
        # Keyed by the images only: the same images get the same draws with or without labels.
        key = _random.batch_keys(images, None, self._base_seed, position, channels_first)
        out = self._augment_images(images, key)
        if single:
            out = out[0]
        return repack(out, labels)

    def __call__(self, *args):
        return self._transform(args)

    def apply(self, dataset, num_parallel_calls=None, deterministic=True):
        """`dataset.map(self)` with each element also keyed by its stream position."""
        return _random.apply_with_positions(self._transform, dataset, self._base_seed,
                                            num_parallel_calls, deterministic)

    def get_config(self):
        return {"flip": self.flip, "rotation": self.rotation, "zoom": self.zoom,
                "translation": self.translation, "brightness": self.brightness,
                "contrast": self.contrast, "noise_stddev": self.noise_stddev,
                "value_range": self.value_range, "fill_mode": self.fill_mode, "seed": self.seed,
                "data_format": self.data_format}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def augment(flip=False, rotation=0.0, zoom=0.0, translation=0.0, brightness=0.0, contrast=0.0,
            noise_stddev=0.0, value_range=(0.0, 1.0), fill_mode="constant", seed=None,
            data_format=None):
    """Builds a label-preserving augmentation for `dataset.map` on image batches.

    Each strength is 0 (off) by default. Flips are off too: a flipped digit or letter can change
    class (a 6 turned upside down reads 9); pass `flip="horizontal"` (or `True`) for photographs.

    Args:
        flip: False, True / `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"`.
        rotation: float in [0, 0.5], maximum rotation as a fraction of a full turn
            (0.05 = +-18 degrees), as `keras.layers.RandomRotation(factor)`.
        zoom: float in [0, 1), maximum zoom in or out as a fraction of the size.
        translation: float in [0, 1], maximum shift as a fraction of height and of width.
        brightness: float in [0, 1], maximum brightness shift as a fraction of `value_range`.
        contrast: float in [0, 1], contrast factor range `[1 - contrast, 1 + contrast]`.
        noise_stddev: float >= 0, standard deviation of additive Gaussian noise.
        value_range: `(low, high)` of the pixel values (digits: (0, 1); photos: (0, 255)).
        fill_mode: how geometric transforms fill new pixels (`"constant"` fills `low`).
        seed: None or int >= 0.
        data_format: `"channels_last"`, `"channels_first"` or None (Keras's default).

    Returns:
        An `Augment` callable for `dataset.map`: takes an image batch, `(images, labels, ...)`
        or a dict with `"images"`; returns the same structure, labels unchanged.

    Example:

    >>> from keras_reg.data import augment, load
    >>> ds = load("digits", "train[:32]", batch_size=16)
    >>> aug = augment(rotation=0.05, zoom=0.1, noise_stddev=0.02, seed=0)
    >>> images, labels = next(iter(ds.map(aug)))
    >>> images.shape, labels.dtype.name
    (TensorShape([16, 8, 8, 1]), 'int32')
    """
    return Augment(flip=flip, rotation=rotation, zoom=zoom, translation=translation,
                   brightness=brightness, contrast=contrast, noise_stddev=noise_stddev,
                   value_range=value_range, fill_mode=fill_mode, seed=seed,
                   data_format=data_format)
