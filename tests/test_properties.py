"""Property-based tests (hypothesis): hostile arguments, shapes, ranks, dtypes and batch sizes.

For every layer and data transform, any argument / input combination gives either a correct
output (finite, right shape and dtype, and the layer's defining property: kept units scaled by
`1 / (1 - rate)`, whole samples dropped, the group-norm formula, label rows summing to 1, pixels
either kept or filled) or a ValueError / TypeError naming the offending argument — never
another exception, a NaN or a hang (each example has a deadline). Valid arguments never raise.

Example counts: the default run uses the `keras_reg-default` profile (10 per property); the `slow`
variants rerun the same properties under `keras_reg-slow`. Counts of examples run are printed at
the end of the module and, when `KERAS_REG_ROBUSTNESS_OUT` names a file, appended to it
(benchmarks/results/robustness.md).
"""

import collections
import datetime
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_reg import data as D
from keras_reg import layers as L
from keras_reg._validation import FLOAT32_MAX

settings.register_profile(
    "keras_reg-default", max_examples=10, deadline=datetime.timedelta(seconds=60),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True, database=None,
)
# 50 examples per property (5x the default run): the cost is an XLA compilation or a trace for
# most examples (a new shape or dtype), about 0.3 s each for Cutout; 150 made the slow step long.
# Derandomized like the default profile, so CI runs the same examples every time (a random
# profile once found InvertedDropout(scaling="test") at rate 1 - 1e-7 failing: the reference
# used the float64 rate while the layer holds float32; both fixed, see test_dropout).
settings.register_profile(
    "keras_reg-slow", max_examples=50, deadline=datetime.timedelta(seconds=60),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True, database=None,
)
DEFAULT = settings.get_profile("keras_reg-default")
SLOW = settings.get_profile("keras_reg-slow")

COUNTS = collections.Counter()
FLOATS = ("float16", "bfloat16", "float32", "float64")


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    lines = [f"| {name} | {count} |" for name, count in sorted(COUNTS.items())]
    total = sum(v for k, v in COUNTS.items() if " (" not in k)  # "(layer ran)": a subset
    text = "\n".join(["| property | examples run |", "| --- | --- |", *lines,
                      f"| **total** | **{total}** |"])
    print("\nhypothesis examples run:\n" + text)
    out = os.environ.get("KERAS_REG_ROBUSTNESS_OUT")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(text + "\n")


# ---- strategies --------------------------------------------------------------------------

def hostile_numbers():
    return st.one_of(
        st.floats(0.0, 1.0),
        st.sampled_from([0, 1, 0.0, 1.0, -0.0, 1e-12, 1 - 1e-7]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-3, 3),
        st.sampled_from(["0.5", None, True, [0.5]]),
    )


def seeds():
    return st.one_of(st.none(), st.integers(-3, 2**62), st.sampled_from(["1", 1.5, True]))


def is_rate(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and not math.isnan(value) and 0.0 <= value <= 1.0)


def is_float32(value):
    """A finite float that float32 can hold: what the float arguments accept."""
    return math.isfinite(value) and abs(value) <= FLOAT32_MAX


def is_seed(value):
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


@st.composite
def tensors(draw, min_rank=2, max_rank=5, batch=None):
    rank = draw(st.integers(min_rank, max_rank))
    n = draw(st.sampled_from([0, 1, 2, 3, 5])) if batch is None else batch
    shape = (n,) + tuple(draw(st.integers(1, 4)) for _ in range(rank - 1))
    dtype = draw(st.sampled_from(FLOATS))
    scale = draw(st.sampled_from([1e-3, 1.0, 100.0]))
    values = np.random.default_rng(draw(st.integers(0, 2**16))).normal(size=shape) * scale
    return tf.constant(values.astype(np.float32), dtype=dtype)


def _np(x):
    return np.asarray(tf.cast(x, tf.float32))


def _check_output(out, x, layer):
    assert tuple(out.shape) == tuple(x.shape)
    assert out.dtype == layer.compute_dtype, (out.dtype, layer.compute_dtype)
    assert np.all(np.isfinite(_np(out)))


def _tol(x):
    return {"float16": 2e-3, "bfloat16": 1e-2}.get(x.dtype.name, 1e-5)


def _build_or_reject(factory, valid, names):
    """Builds the object; invalid arguments must raise a clear error naming one of `names`."""
    try:
        obj = factory()
    except (ValueError, TypeError) as error:
        assert not valid, f"valid arguments rejected: {error}"
        assert any(f"`{n}`" in str(error) for n in names), str(error)
        return None
    assert valid, "invalid arguments accepted"
    return obj


# ---- layers ------------------------------------------------------------------------------

def _dropout_property(rate, seed, scaling, x, training):
    COUNTS["InvertedDropout"] += 1
    valid = is_rate(rate) and is_seed(seed) and scaling in ("train", "test")
    layer = _build_or_reject(lambda: L.InvertedDropout(rate, seed=seed, scaling=scaling),
                             valid, ("rate", "seed", "scaling"))
    if layer is None:
        return
    out = layer(x, training=training)
    _check_output(out, x, layer)
    got, ref = _np(out), _np(tf.cast(x, layer.compute_dtype))
    if not training:
        # the layer holds its rate in float32: 1 - rate is 1.19e-7, not 1e-7, at 1 - 1e-7
        want = ref if scaling == "train" else ref * (1 - float(np.float32(rate)))
        np.testing.assert_allclose(got, want, rtol=_tol(x), atol=1e-6)
    elif rate == 1:
        assert np.all(got == 0)
    else:
        factor = 1 / (1 - rate) if scaling == "train" else 1.0
        kept = got != 0
        np.testing.assert_allclose(got[kept], ref[kept] * factor, rtol=4 * _tol(x), atol=1e-5)


DROPOUT_ARGS = dict(rate=hostile_numbers(), seed=seeds(),
                    scaling=st.sampled_from(["train", "test", "TRAIN", None]),
                    x=tensors(), training=st.booleans())


@DEFAULT
@given(**DROPOUT_ARGS)
def test_inverted_dropout(rate, seed, scaling, x, training):
    _dropout_property(rate, seed, scaling, x, training)


@pytest.mark.slow
@SLOW
@given(**DROPOUT_ARGS)
def test_inverted_dropout_slow(rate, seed, scaling, x, training):
    _dropout_property(rate, seed, scaling, x, training)


def _drop_path_property(rate, seed, x, training, stochastic_depth, mode):
    name = f"StochasticDepth[{mode}]" if stochastic_depth else "DropPath"
    COUNTS[name] += 1
    valid = is_rate(rate) and is_seed(seed)
    if stochastic_depth:
        layer = _build_or_reject(lambda: L.StochasticDepth(rate, seed=seed, mode=mode),
                                 valid, ("rate", "seed"))
    else:
        layer = _build_or_reject(lambda: L.DropPath(rate, seed=seed), valid, ("rate", "seed"))
    if layer is None:
        return
    shortcut = tf.ones_like(x)
    out = layer([shortcut, x], training=training) if stochastic_depth else layer(
        x, training=training)
    _check_output(out, x, layer)
    got = _np(out) - (_np(tf.cast(shortcut, layer.compute_dtype)) if stochastic_depth else 0)
    ref = _np(tf.cast(x, layer.compute_dtype))
    batch_mode = stochastic_depth and mode == "batch"  # tensorflow-addons semantics
    if not training:
        want = ref * (1 - rate) if batch_mode else ref
        np.testing.assert_allclose(got, want, rtol=_tol(x), atol=1e-5)
        return
    factor = 0.0 if rate == 1 else (1.0 if batch_mode else 1 / (1 - rate))
    width = int(np.prod(got.shape[1:]))
    samples = got.reshape(len(got), width)
    refs = ref.reshape(len(ref), width)
    for i in range(len(samples)):  # each sample: entirely dropped, or entirely kept and scaled
        if np.all(samples[i] == 0):
            continue
        np.testing.assert_allclose(samples[i], refs[i] * factor, rtol=4 * _tol(x), atol=1e-4)
    if stochastic_depth and mode == "batch" and len(samples) > 1:
        dropped = [bool(np.all(s == 0)) and bool(np.any(r != 0)) for s, r in zip(samples, refs)]
        assert len(set(dropped)) == 1, "batch mode drops the whole batch or none"


DROP_PATH_ARGS = dict(rate=hostile_numbers(), seed=seeds(), x=tensors(), training=st.booleans(),
                      stochastic_depth=st.booleans(), mode=st.sampled_from(["row", "batch"]))


@DEFAULT
@given(**DROP_PATH_ARGS)
def test_drop_path_and_stochastic_depth(rate, seed, x, training, stochastic_depth, mode):
    _drop_path_property(rate, seed, x, training, stochastic_depth, mode)


@pytest.mark.slow
@SLOW
@given(**DROP_PATH_ARGS)
def test_drop_path_and_stochastic_depth_slow(rate, seed, x, training, stochastic_depth, mode):
    _drop_path_property(rate, seed, x, training, stochastic_depth, mode)



def _drop_block_property(rate, block_size, seed, data_format, x, training):
    COUNTS["DropBlock"] += 1
    valid = (is_rate(rate) and is_seed(seed) and isinstance(block_size, int)
             and not isinstance(block_size, bool) and block_size >= 1
             and data_format in (None, "channels_last", "channels_first"))
    layer = _build_or_reject(
        lambda: L.DropBlock(rate, block_size=block_size, seed=seed, data_format=data_format),
        valid, ("rate", "block_size", "seed", "data_format"))
    if layer is None:
        return
    try:
        out = layer(x, training=training)
    except ValueError as error:
        assert len(x.shape) != 4, f"valid input rejected: {error}"
        assert "`inputs`" in str(error), str(error)
        return
    assert len(x.shape) == 4, "an input of rank other than 4 accepted"
    COUNTS["DropBlock (layer ran)"] += 1
    _check_output(out, x, layer)
    got, ref = _np(out), _np(tf.cast(x, layer.compute_dtype))
    if not training:
        np.testing.assert_array_equal(got, ref)
        return
    if rate == 1:
        assert np.all(got == 0)
        return
    kept = (got != 0) | (ref == 0)
    if got.size and kept.any():  # every survivor scaled by the same count / kept
        np.testing.assert_allclose(got[kept], ref[kept] * got.size / kept.sum(),
                                   rtol=4 * _tol(x), atol=1e-5)


# Mostly valid arguments and rank-4 inputs (where the layer runs), hostile ones among them.
def _mostly(valid, hostile):
    return st.one_of(valid, valid, valid, hostile)  # one_of weighs its branches equally


DROP_BLOCK_ARGS = dict(rate=_mostly(st.floats(0.0, 1.0), hostile_numbers()),
                       block_size=_mostly(st.integers(1, 6),
                                          st.sampled_from([0, -1, 2.0, "3", True])),
                       seed=st.one_of(st.none(), st.integers(0, 2**31), seeds()),
                       data_format=st.sampled_from([None, "channels_last", "channels_first",
                                                    "NHWC"]),
                       x=st.one_of(tensors(min_rank=4, max_rank=4), tensors(min_rank=3,
                                                                           max_rank=5)),
                       training=st.booleans())


@DEFAULT
@given(**DROP_BLOCK_ARGS)
def test_drop_block(rate, block_size, seed, data_format, x, training):
    _drop_block_property(rate, block_size, seed, data_format, x, training)


@pytest.mark.slow
@SLOW
@given(**DROP_BLOCK_ARGS)
def test_drop_block_slow(rate, block_size, seed, data_format, x, training):
    _drop_block_property(rate, block_size, seed, data_format, x, training)


def _group_norm_reference(x, groups, axis):
    x = np.moveaxis(x.astype(np.float64), axis, -1)
    channels = x.shape[-1]
    g = channels if groups == -1 else groups
    grouped = x.reshape(x.shape[:-1] + (g, channels // g))
    axes = tuple(range(1, grouped.ndim - 2)) + (grouped.ndim - 1,)
    mean = grouped.mean(axis=axes, keepdims=True)
    var = grouped.var(axis=axes, keepdims=True)
    out = ((grouped - mean) / np.sqrt(var + 1e-3)).reshape(x.shape)
    return np.moveaxis(out, -1, axis)


def _group_norm_property(groups, axis, x, constant):
    COUNTS["GroupNorm"] += 1
    if constant:
        x = tf.ones_like(x) * 3.0
    rank = len(x.shape)
    layer = _build_or_reject(lambda: L.GroupNorm(groups=groups, axis=axis),
                             (isinstance(groups, int) and (groups >= 1 or groups == -1)
                              and isinstance(axis, int) and axis != 0), ("groups", "axis"))
    if layer is None:
        return
    channels = x.shape[axis % rank] if -rank <= axis < rank else None
    valid = (-rank < axis < rank and axis % rank != 0
             and (groups == -1 or (groups <= channels and channels % groups == 0)))
    try:
        out = layer(x)
    except (ValueError, TypeError) as error:
        assert not valid, f"valid input rejected: {error}"
        assert "`groups`" in str(error) or "`axis`" in str(error), str(error)
        return
    assert valid, "invalid groups / axis accepted"
    _check_output(out, x, layer)
    want = _group_norm_reference(_np(x), groups, axis % rank)
    np.testing.assert_allclose(_np(out), want, rtol=0, atol=50 * _tol(x))


GROUP_NORM_ARGS = dict(groups=st.one_of(st.integers(-3, 9), st.sampled_from([-1, 10**9, 2.0])),
                       axis=st.one_of(st.integers(-6, 5), st.sampled_from([-1, 1.0])),
                       x=tensors(), constant=st.booleans())


@DEFAULT
@given(**GROUP_NORM_ARGS)
def test_group_norm(groups, axis, x, constant):
    _group_norm_property(groups, axis, x, constant)


@pytest.mark.slow
@SLOW
@given(**GROUP_NORM_ARGS)
def test_group_norm_slow(groups, axis, x, constant):
    _group_norm_property(groups, axis, x, constant)


def test_group_norm_float64_input():  # once an InvalidArgumentError (float32 * float64)
    x = tf.random.stateless_normal((2, 3, 4), seed=[1, 1], dtype=tf.float64)
    out = L.GroupNorm(groups=2)(x)
    want = keras.layers.GroupNormalization(groups=2)(x)
    np.testing.assert_allclose(_np(out), _np(want), atol=1e-5)


def _weight_noise_property(stddev, seed, units, x, training):
    COUNTS["WeightNoise"] += 1
    valid = (isinstance(stddev, (int, float)) and not isinstance(stddev, bool)
             and is_float32(stddev) and stddev >= 0 and is_seed(seed))
    dense = keras.layers.Dense(units)
    layer = _build_or_reject(lambda: L.WeightNoise(dense, stddev, seed=seed), valid,
                             ("stddev", "seed"))
    if layer is None:
        return
    out = layer(x, training=training)
    assert tuple(out.shape) == tuple(x.shape[:-1]) + (units,)
    assert np.all(np.isfinite(_np(out)))
    if not training or stddev == 0:  # the clean kernel exactly
        np.testing.assert_allclose(_np(out), _np(dense(x)), rtol=_tol(x), atol=1e-4)


WEIGHT_NOISE_ARGS = dict(stddev=hostile_numbers(), seed=seeds(), units=st.integers(1, 4),
                         x=tensors(max_rank=3), training=st.booleans())


@DEFAULT
@given(**WEIGHT_NOISE_ARGS)
def test_weight_noise(stddev, seed, units, x, training):
    _weight_noise_property(stddev, seed, units, x, training)


@pytest.mark.slow
@SLOW
@given(**WEIGHT_NOISE_ARGS)
def test_weight_noise_slow(stddev, seed, units, x, training):
    _weight_noise_property(stddev, seed, units, x, training)


def _unknown_batch_property(which, rank, batch):
    COUNTS["unknown batch (tf.function)"] += 1
    layer = {
        "InvertedDropout": lambda: L.InvertedDropout(0.5, seed=1),
        "DropPath": lambda: L.DropPath(0.5, seed=1),
        "StochasticDepth": lambda: L.StochasticDepth(0.5, seed=1),
        "GroupNorm": lambda: L.GroupNorm(groups=2),
    }[which]()
    spec = tf.TensorSpec([None] + [4] * (rank - 1), tf.float32)

    @tf.function(input_signature=[spec], jit_compile=False)
    def f(x):
        if which == "StochasticDepth":
            return layer([x, x], training=True)
        return layer(x, training=True)

    x = tf.random.stateless_normal([batch] + [4] * (rank - 1), seed=[batch, rank])
    out = f(x)
    assert tuple(out.shape) == tuple(x.shape)
    assert np.all(np.isfinite(out.numpy()))


UNKNOWN_ARGS = dict(which=st.sampled_from(["InvertedDropout", "DropPath", "StochasticDepth",
                                           "GroupNorm"]),
                    rank=st.integers(2, 4), batch=st.sampled_from([0, 1, 2, 7]))


@settings(DEFAULT, max_examples=6)
@given(**UNKNOWN_ARGS)
def test_unknown_batch_in_tf_function(which, rank, batch):
    _unknown_batch_property(which, rank, batch)


@pytest.mark.slow
@settings(SLOW, max_examples=20)  # each example traces a tf.function; 48 combinations in all
@given(**UNKNOWN_ARGS)
def test_unknown_batch_in_tf_function_slow(which, rank, batch):
    _unknown_batch_property(which, rank, batch)


# ---- data transforms ---------------------------------------------------------------------

@st.composite
def image_batches(draw):
    n = draw(st.sampled_from([1, 2, 3, 6]))
    h, w, c = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.sampled_from([1, 3]))
    dtype = draw(st.sampled_from(["uint8", "float32", "float16"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == "uint8":
        images = rng.integers(0, 256, size=(n, h, w, c)).astype("uint8")
    else:
        images = rng.uniform(size=(n, h, w, c)).astype(dtype)
    return tf.constant(images)


def _mixup_property(num_classes, mixup_alpha, cutmix_alpha, prob, switch_prob, mode,
                    label_smoothing, images, one_hot_labels, bad_label):
    COUNTS["MixupCutMix"] += 1
    args = dict(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, prob=prob,
                switch_prob=switch_prob, mode=mode, label_smoothing=label_smoothing, seed=0)
    valid = (isinstance(num_classes, int) and num_classes >= 2
             and all(isinstance(v, float) and is_float32(v) and v >= 0
                     for v in (mixup_alpha, cutmix_alpha))
             and all(is_rate(v) for v in (prob, switch_prob, label_smoothing))
             and mode in ("batch", "pair", "elem"))
    mix = _build_or_reject(lambda: D.MixupCutMix(num_classes, **args), valid,
                           ("num_classes", "mixup_alpha", "cutmix_alpha", "prob",
                            "switch_prob", "mode", "label_smoothing"))
    if mix is None:
        return
    n = images.shape[0]
    labels = np.arange(n) % num_classes
    if bad_label:
        labels[0] = num_classes  # out of range
    labels = tf.constant(labels, tf.int32)
    if one_hot_labels and not bad_label:
        labels = tf.one_hot(labels, num_classes)
    try:
        out_images, targets = mix(images, labels)
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
        assert bad_label, f"valid batch rejected: {error}"
        assert "label" in str(error), str(error)
        return
    assert not bad_label, "an out-of-range label was accepted"
    assert out_images.dtype == images.dtype and out_images.shape == images.shape
    assert targets.dtype == tf.float32 and tuple(targets.shape) == (n, num_classes)
    t = targets.numpy()
    assert np.all(np.isfinite(t)) and np.all(t >= -1e-6) and np.all(t <= 1 + 1e-6)
    np.testing.assert_allclose(t.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(np.isfinite(_np(out_images)))
    lo, hi = float(_np(images).min()), float(_np(images).max())
    assert _np(out_images).min() >= lo - 1e-3 and _np(out_images).max() <= hi + 1e-3


MIXUP_ARGS = dict(
    num_classes=st.one_of(st.integers(2, 12), st.sampled_from([0, 1, 2.0])),
    mixup_alpha=st.one_of(st.floats(0, 3), st.sampled_from([-1.0, math.nan, math.inf])),
    cutmix_alpha=st.one_of(st.floats(0, 3), st.sampled_from([-0.5, math.inf])),
    prob=hostile_numbers(), switch_prob=st.floats(0, 1),
    mode=st.sampled_from(["batch", "pair", "elem", "sample"]),
    label_smoothing=st.one_of(st.floats(0, 1), st.sampled_from([-0.1, 1.5])),
    images=image_batches(), one_hot_labels=st.booleans(), bad_label=st.booleans(),
)


@DEFAULT
@given(**MIXUP_ARGS)
def test_mixup_cutmix(**kwargs):
    _mixup_property(**kwargs)


@pytest.mark.slow
@SLOW
@given(**MIXUP_ARGS)
def test_mixup_cutmix_slow(**kwargs):
    _mixup_property(**kwargs)


def _cutout_property(size, prob, fill, images):
    COUNTS["Cutout"] += 1
    valid_size = ((isinstance(size, int) and not isinstance(size, bool) and size >= 1)
                  or (isinstance(size, float) and 0 < size <= 1))
    valid = valid_size and is_rate(prob) and isinstance(fill, float) and is_float32(fill)
    cut = _build_or_reject(lambda: D.Cutout(size, prob=prob, fill=fill, seed=0), valid,
                           ("size", "prob", "fill"))
    if cut is None:
        return
    out = cut(images)
    assert out.dtype == images.dtype and out.shape == images.shape
    got, ref = _np(out), _np(images)
    fill_value = _np(tf.cast(tf.constant(fill), images.dtype)) if images.dtype != tf.uint8 else (
        np.float32(np.asarray(fill).astype(np.uint8)))
    changed = got != ref
    assert np.all(np.isfinite(got))
    assert np.all(got[changed] == fill_value)  # every pixel is kept or filled


CUTOUT_ARGS = dict(
    size=st.one_of(st.integers(-1, 12), st.floats(0, 1.5), st.sampled_from([True, "3"])),
    prob=hostile_numbers(), fill=st.sampled_from([0.0, 0.5, 1.0, math.nan]),
    images=image_batches(),
)


@DEFAULT
@given(**CUTOUT_ARGS)
def test_cutout(size, prob, fill, images):
    _cutout_property(size, prob, fill, images)


@pytest.mark.slow
@SLOW
@given(**CUTOUT_ARGS)
def test_cutout_slow(size, prob, fill, images):
    _cutout_property(size, prob, fill, images)


def _augment_property(rotation, zoom, translation, brightness, contrast, noise, images):
    COUNTS["augment"] += 1
    args = dict(rotation=rotation, zoom=zoom, translation=translation, brightness=brightness,
                contrast=contrast, noise_stddev=noise, seed=0)
    valid = (0 <= rotation <= 0.5 and 0 <= zoom < 1 and 0 <= translation <= 1
             and 0 <= brightness <= 1 and 0 <= contrast <= 1 and is_float32(noise)
             and noise >= 0)
    aug = _build_or_reject(lambda: D.augment(**args), valid, tuple(
        k if k != "noise" else "noise_stddev" for k in
        ("rotation", "zoom", "translation", "brightness", "contrast", "noise_stddev")))
    if aug is None:
        return
    out = aug(images)
    assert out.shape == images.shape
    assert out.dtype in (images.dtype, tf.float32)
    assert np.all(np.isfinite(_np(out)))


AUGMENT_ARGS = dict(
    rotation=st.floats(-0.1, 0.6), zoom=st.floats(-0.1, 1.0), translation=st.floats(0, 1.1),
    brightness=st.floats(0, 1), contrast=st.floats(0, 1.2),
    noise=st.one_of(st.floats(0, 0.5), st.sampled_from([-0.1, math.inf])),
    images=image_batches(),
)


@DEFAULT
@given(**AUGMENT_ARGS)
def test_augment(**kwargs):
    _augment_property(**kwargs)


@pytest.mark.slow
@SLOW
@given(**AUGMENT_ARGS)
def test_augment_slow(**kwargs):
    _augment_property(**kwargs)
