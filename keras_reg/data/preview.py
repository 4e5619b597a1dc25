"""A picture grid of what MixupCutMix, Cutout and augment do to real images."""

import os
import pathlib

import numpy as np
import tensorflow as tf

from keras_reg._validation import check_seed
from keras_reg.data.augment import augment
from keras_reg.data.cutout import Cutout
from keras_reg.data.loading import load
from keras_reg.data.mixup_cutmix import MixupCutMix

_PHOTO_SIZE = 128


def _photos():
    """scikit-learn's two bundled photographs, centre-cropped to squares and resized (uint8)."""
    from sklearn.datasets import load_sample_images

    out = []
    for image in load_sample_images().images:
        h, w = image.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        crop = image[top:top + side, left:left + side]
        resized = tf.image.resize(crop, (_PHOTO_SIZE, _PHOTO_SIZE), antialias=True)
        out.append(np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8))
    return np.stack(out), np.array([0, 1], np.int32), ("china", "flower")


def _digit_batch(count):
    """The first `count` test digits of distinct classes."""
    images, labels = (np.concatenate(a) for a in zip(
        *load("digits", "test", batch_size=512, shuffle=False).as_numpy_iterator()))
    index = [int(np.flatnonzero(labels == c)[0]) for c in range(count)]
    return images[index], labels[index], tuple(str(c) for c in range(10))


def _caption(weights, names):
    order = np.argsort(weights)[::-1]
    parts = [f"{names[i]} {weights[i]:.2f}" for i in order[:2] if weights[i] >= 0.005]
    return " + ".join(parts)


def _columns(images, labels, names, seed, photo):
    """(title, images, targets) for each column of the grid."""
    k = len(names)
    plain = np.eye(k, dtype=np.float32)[labels]
    # A handful of small images: the plain kernels (same draws as XLA, no compilation wait).
    mixup = MixupCutMix(k, mixup_alpha=1.0, cutmix_alpha=0.0, mode="elem",
                        label_smoothing=0.0, seed=seed, jit_compile=False)
    cutmix = MixupCutMix(k, mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem",
                         label_smoothing=0.0, seed=seed, jit_compile=False)
    smoothed = MixupCutMix(k, seed=seed + 1, jit_compile=False)  # defaults: switch, eps 0.1
    cutout = Cutout(0.4, seed=seed, jit_compile=False)
    aug = augment(flip=photo, rotation=0.05, zoom=0.15, translation=0.1, brightness=0.2,
                  contrast=0.2, value_range=(0, 255) if photo else (0, 1), seed=seed)
    augmented = aug(images)
    if photo:
        augmented = tf.cast(tf.clip_by_value(tf.round(augmented), 0, 255), tf.uint8)
    columns = [("original", images, plain)]
    for title, transform in (("Mixup", mixup), ("CutMix", cutmix),
                             ("MixupCutMix defaults", smoothed)):
        mixed, targets = transform(images, labels)
        columns.append((title, mixed.numpy(), targets.numpy()))
    columns.append(("Cutout", cutout(images).numpy(), plain))
    columns.append(("augment", np.asarray(augmented), plain))
    return columns


def make_preview(out, seed=0, dpi=100):
    """Writes a PNG grid: originals and their MixupCutMix / Cutout / augment versions.

    Rows are scikit-learn's two bundled photographs (uint8, 128x128 crops) and four digits of
    the embedded digits data; columns show the original, Mixup, CutMix, MixupCutMix with its
    default arguments (switch and label smoothing 0.1), Cutout (40 % squares) and augment
    (rotation, zoom, translation, brightness, contrast; flips for photos only). Under each image
    the label weights of its target are written (the two largest), so the exact pasted area of
    CutMix can be compared with the picture. Each batch is mixed with itself reversed.

    Args:
        out: path of the PNG file to write (its folder is created if needed).
        seed: int >= 0, the seed of every transform (same seed, same picture).
        dpi: resolution of the figure.

    Returns:
        The path written, as a string.

    Raises:
        ValueError: `out` is not a writable `.png` path.
    """
    seed = check_seed(seed)
    if seed is None:
        seed = 0
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        raise ValueError(f"Invalid value for argument `out`: expected a .png path. "
                         f"Received: out={out!r}")
    path = pathlib.Path(out)
    if path.is_dir():
        raise ValueError(f"Invalid value for argument `out`: expected the path of a .png file, "
                         f"not a folder (e.g. {str(path / 'preview.png')!r}). "
                         f"Received: out={str(out)!r}")
    if path.suffix.lower() != ".png":
        raise ValueError(f"Invalid value for argument `out`: expected a path ending in .png. "
                         f"Received: out={str(out)!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"Invalid value for argument `out`: cannot create its folder "
                         f"({error.strerror}). Received: out={str(out)!r}") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"Invalid value for argument `out`: the path is not writable. "
                         f"Received: out={str(out)!r}")

    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    groups = [(*_photos(), True), (*_digit_batch(4), False)]
    blocks = [_columns(images, labels, names, seed, photo)
              for images, labels, names, photo in groups]
    rows = sum(len(g[0]) for g in groups)
    cols = len(blocks[0])
    fig = Figure(figsize=(2.2 * cols, 2.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    row = 0
    for (images, _, names, photo), columns in zip(groups, blocks):
        for i in range(len(images)):
            for j, (title, pictures, targets) in enumerate(columns):
                ax = axes[row, j]
                picture = np.asarray(pictures[i])
                if photo:
                    ax.imshow(picture.astype(np.uint8))
                else:
                    ax.imshow(np.clip(picture[..., 0], 0, 1), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_xlabel(_caption(np.asarray(targets[i]), names), fontsize=8)
                if row == 0:
                    ax.set_title(title, fontsize=9)
            row += 1
    fig.suptitle(f"keras_reg.data preview (seed={seed}): label weights under each image")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=dpi, format="png")
    except OSError as error:
        raise ValueError(f"Invalid value for argument `out`: cannot write it "
                         f"({error.strerror}). Received: out={str(out)!r}") from None
    return str(path)


# `keras_reg.data.preview` is this function (exported under that name); the attribute keeps
# `keras_reg.data.preview.make_preview(...)` working whether the name resolves to the module
# or to the function.
make_preview.make_preview = make_preview
