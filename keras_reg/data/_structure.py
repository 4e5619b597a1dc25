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


def _check_dtype(values, what):
    if not (values.dtype.is_floating or values.dtype.is_integer):
        raise TypeError(
            f"Invalid value for argument `{what}`: expected a float or integer tensor. "
            f"Received: {what}.dtype={values.dtype.name}"
        )


def _layout(data_format):
    return ("(batch, channels, height, width)" if data_format == "channels_first"
            else "(batch, height, width, channels)")


def check_images(images, name, data_format):
    """Converts to a tensor and checks for a rank-4 batch; returns (images, channels_first)."""
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(
            f"Invalid value for argument `images`: {name} expects a batch of images of rank 4 "
            f"{_layout(data_format)}; map it after `dataset.batch(...)`. Received: "
            f"images.shape={images.shape}"
        )
    _check_dtype(images, "images")
    return images, data_format == "channels_first"


def check_batch(inputs, name, low_rank=2):
    """Converts to a tensor and checks for a batch of any rank >= `low_rank` (features
    `(batch, features)`, sequences `(batch, steps, channels)`, images...)."""
    inputs = tf.convert_to_tensor(inputs)
    if inputs.shape.rank is None or inputs.shape.rank < low_rank:
        raise ValueError(
            f"Invalid value for argument `images`: {name} expects a batch of rank >= {low_rank} "
            f"(examples on the first axis); map it after `dataset.batch(...)`. Received: "
            f"images.shape={inputs.shape}"
        )
    _check_dtype(inputs, "images")
    return inputs


def image_rank_error(name, argument, why, inputs, data_format, fix):
    """The ValueError for an image operation (`why`, switched on by `argument`) asked of inputs
    that are not a batch of images; `fix` says which setting mixes or augments any rank."""
    return ValueError(
        f"Invalid value for argument `{argument}`: {why} needs a batch of images of rank 4 "
        f"{_layout(data_format)}, but {name} received inputs of rank {inputs.shape.rank} "
        f"(shape {tuple(inputs.shape)}); map it after `dataset.batch(...)` if these are single "
        f"images, or set {fix} for features and sequences."
    )
