"""Unpacking and repacking dataset elements: (images, labels, ...) tuples or dicts (private)."""

import tensorflow as tf


def unpack(args, name, need_labels=True):
    """Returns (images, labels, repack) for `transform(images, labels, ...)` or `transform(dict)`.

    `repack(images, labels)` rebuilds an element of the same structure (extra tuple entries such
    as sample weights, and extra dict keys, pass through unchanged).
    """
    if len(args) == 1 and isinstance(args[0], dict):
        data = dict(args[0])
        if "images" not in data or (need_labels and "labels" not in data):
            raise ValueError(
                f"{name} expects a dict with keys 'images' and 'labels'. Received keys: "
                f"{sorted(data)}"
            )

        def repack_dict(images, labels):
            out = dict(data)
            out["images"] = images
            if labels is not None:
                out["labels"] = labels
            return out

        return data["images"], data.get("labels"), repack_dict
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    if len(args) == 1 and not need_labels:
        return args[0], None, lambda images, labels: images
    if len(args) < 2:
        raise ValueError(
            f"{name} expects `(images, labels)` batches (map it after `dataset.batch(...)`) or a "
            f"dict with 'images' and 'labels'. Received {len(args)} component(s)."
        )
    rest = tuple(args[2:])
    return args[0], args[1], lambda images, labels: (images, labels) + rest


def check_images(images, name, data_format):
    """Converts to a tensor and checks for a rank-4 batch; returns (images, channels_first)."""
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        layout = ("(batch, channels, height, width)" if data_format == "channels_first"
                  else "(batch, height, width, channels)")
        raise ValueError(
            f"Invalid value for argument `images`: {name} expects a batch of images of rank 4 "
            f"{layout}; map it after `dataset.batch(...)`. Received: images.shape={images.shape}"
        )
    if not (images.dtype.is_floating or images.dtype.is_integer):
        raise TypeError(
            f"Invalid value for argument `images`: expected a float or integer tensor. "
            f"Received: images.dtype={images.dtype.name}"
        )
    return images, data_format == "channels_first"
