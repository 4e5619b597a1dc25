"""Exact references for the data tests: constant images whose value encodes their index."""

import numpy as np


def constant_batch(batch, height, width, channels=1, dtype="float32", channels_first=False):
    """Image i is filled with value i + 1 (uint8: 10 * i + 5, distinct for batch <= 25)."""
    if np.dtype(dtype) == np.uint8:
        values = (10 * np.arange(batch) + 5).astype(np.float64)
    else:
        values = np.arange(1, batch + 1, dtype=np.float64)
    shape = (batch, channels, height, width) if channels_first else (batch, height, width, channels)
    images = np.broadcast_to(values[:, None, None, None], shape).astype(dtype)
    return images, values


def unsmooth(targets, epsilon, num_classes):
    """Inverts label smoothing applied before mixing (the mixing weights are linear)."""
    return (np.asarray(targets, np.float64) - epsilon / num_classes) / (1.0 - epsilon)


def explain(out, targets, values, labels, epsilon=0.0, channels_first=False, atol=1e-5,
            uint8=False):
    """Checks every output pixel against the soft labels; returns per-sample records.

    Sample i is mixed with j = batch - 1 - i. Either all pixels are v_i or v_j, the v_j pixels
    form exactly one rectangle and their fraction equals the partner's label weight (CutMix), or
    every pixel equals w_i * v_i + w_j * v_j (Mixup). Returns a list of
    (kind, own_weight, box) with kind in {"none", "cutmix", "mixup"}.
    """
    out = np.asarray(out).astype(np.float64)
    if channels_first:
        out = np.moveaxis(out, 1, -1)
    num_classes = np.asarray(targets).shape[1]
    weights = unsmooth(targets, epsilon, num_classes)
    batch = out.shape[0]
    records = []
    for i in range(batch):
        j = batch - 1 - i
        np.testing.assert_allclose(weights[i].sum(), 1.0, atol=1e-5)
        if i == j or labels[i] == labels[j]:
            np.testing.assert_array_equal(out[i], values[i])
            records.append(("none", 1.0, None))
            continue
        w_i, w_j = weights[i, labels[i]], weights[i, labels[j]]
        np.testing.assert_allclose(w_i + w_j, 1.0, atol=1e-5)
        pasted = out[i] == values[j]
        own = out[i] == values[i]
        if (pasted | own).all():
            rows = pasted.any(axis=(1, 2))
            cols = pasted.any(axis=(0, 2))
            rect = rows[:, None, None] & cols[None, :, None] & np.ones_like(pasted)
            np.testing.assert_array_equal(pasted, rect, err_msg=f"sample {i}: not one rectangle")
            np.testing.assert_allclose(pasted.mean(), w_j, atol=1e-6,
                                       err_msg=f"sample {i}: pasted fraction != label weight")
            box = None
            if pasted.any():
                r, c = np.flatnonzero(rows), np.flatnonzero(cols)
                box = (r[0], r[-1] + 1, c[0], c[-1] + 1)
            records.append(("cutmix" if pasted.any() else "none", w_i, box))
        else:
            expected = w_i * values[i] + w_j * values[j]
            if uint8:
                np.testing.assert_allclose(out[i], np.round(expected), atol=1.0)
            else:
                np.testing.assert_allclose(out[i], expected, atol=atol, rtol=1e-6)
            records.append(("mixup", w_i, None))
    return records
