"""Backend-agnostic behaviour checks of keras_reg.layers, run on the JAX backend.

Run as `KERAS_BACKEND=jax python tests/_workers/jax_layer_checks.py` (tests/test_jax_backend.py
does this in a subprocess: the backend is fixed when keras is first imported). Every check
compares against a NumPy formula or the Keras peer layer; prints one line per check and exits
non-zero if any fails.
"""

import os
import sys
import tempfile
import traceback

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_reg import layers as L  # noqa: E402

assert keras.backend.backend() == os.environ["KERAS_BACKEND"], keras.backend.backend()
RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 5, 5, 8)).astype("float32")
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


@check
def inverted_dropout_train_scaling():
    for rate in (0.0, 0.3, 1.0):
        out = _np(L.InvertedDropout(rate, seed=1)(X, training=True))
        kept = out != 0
        factor = 0.0 if rate == 1 else 1 / (1 - rate)
        np.testing.assert_allclose(out[kept], X[kept] * factor, rtol=1e-5)
        if 0 < rate < 1:
            assert abs(1 - kept.mean() - rate) < 0.03, kept.mean()
        assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(_np(L.InvertedDropout(0.3)(X, training=False)), X)


@check
def inverted_dropout_test_scaling_and_noise_shape():
    layer = L.InvertedDropout(0.25, scaling="test", noise_shape=(None, 1, 1, 8), seed=2)
    out = _np(layer(X, training=True))
    kept = out != 0
    np.testing.assert_allclose(out[kept], X[kept], rtol=1e-6)
    # spatial: one draw per (sample, channel), broadcast over H, W
    assert np.all(kept == kept[:, :1, :1, :])
    np.testing.assert_allclose(_np(layer(X, training=False)), X * 0.75, rtol=1e-6)


@check
def drop_path_per_sample():
    out = _np(L.DropPath(0.5, seed=3)(X, training=True)).reshape(64, -1)
    flat = X.reshape(64, -1)
    dropped = np.all(out == 0, axis=1)
    assert 10 < dropped.sum() < 54, dropped.sum()
    np.testing.assert_allclose(out[~dropped], flat[~dropped] * 2.0, rtol=1e-5)


@check
def stochastic_depth_modes():
    shortcut = np.ones_like(X)
    row = _np(L.StochasticDepth(0.5, seed=4)([shortcut, X], training=True)) - 1.0
    per_sample = np.all(row.reshape(64, -1) == 0, axis=1)
    assert 0 < per_sample.sum() < 64
    batch = L.StochasticDepth(0.5, seed=4, mode="batch")
    out = _np(batch([shortcut, X], training=True)) - 1.0
    assert np.allclose(out, 0, atol=1e-6) or np.allclose(out, X, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(batch([shortcut, X], training=False)), 1.0 + 0.5 * X,
                               rtol=1e-5)


@check
def group_norm_equals_keras():
    for groups in (1, 2, 4, -1):
        ours = L.GroupNorm(groups=groups)
        keras_groups = 8 if groups == -1 else groups
        peer = keras.layers.GroupNormalization(groups=keras_groups)
        np.testing.assert_allclose(_np(ours(X)), _np(peer(X)), atol=2e-5)


@check
def weight_noise_inference_is_clean():
    dense = keras.layers.Dense(4)
    layer = L.WeightNoise(dense, 0.1, seed=5)
    x = X.reshape(64, -1)
    np.testing.assert_allclose(_np(layer(x, training=False)), _np(dense(x)), rtol=1e-6)
    noisy = _np(layer(x, training=True))
    assert not np.allclose(noisy, _np(dense(x)))
    assert np.all(np.isfinite(noisy))


@check
def same_seed_same_masks_and_jit():
    a = _np(L.DropPath(0.5, seed=7)(X, training=True))
    b = _np(L.DropPath(0.5, seed=7)(X, training=True))
    np.testing.assert_array_equal(a, b)
    layer = L.InvertedDropout(0.5, seed=8)
    layer.build(X.shape)

    def step(state, x):
        return layer.stateless_call([], state, x, training=True)

    if keras.backend.backend() == "jax":
        import jax

        step = jax.jit(step)
    state = [v.value for v in layer.non_trainable_variables]
    out1, _ = step(state, X)
    out2, _ = step(state, X)
    np.testing.assert_array_equal(_np(out1), _np(out2))


@check
def rate_change_without_retrace():
    layer = L.InvertedDropout(0.0, seed=9)
    model = keras.Sequential([keras.Input((8,)), layer])
    model.compile(loss="mse", jit_compile=True)
    x = np.ones((256, 8), "float32")
    first = _np(model.predict_on_batch(x))
    np.testing.assert_array_equal(first, x)
    layer.rate = 0.5
    assert layer.rate == 0.5


@check
def fit_and_save_round_trip():
    inputs = keras.Input((5, 5, 8))
    x = L.InvertedDropout(0.2, seed=1)(inputs)
    x = L.GroupNorm(groups=2)(x)
    y = L.DropPath(0.1, seed=2)(x)
    x = L.StochasticDepth(0.1, seed=3)([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = L.WeightNoise(keras.layers.Dense(3), 0.05, seed=4)(x)
    model = keras.Model(inputs, out)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
    history = model.fit(X, RNG.integers(0, 3, size=64), epochs=2, batch_size=16, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(loaded.predict_on_batch(X)), _np(model.predict_on_batch(X)),
                               rtol=1e-5, atol=1e-6)


@check
def pure_functions_take_int_seeds():
    a = _np(L.drop_path(X, 0.5, seed=2, training=True))
    b = _np(L.drop_path(X, 0.5, seed=2, training=True))
    np.testing.assert_array_equal(a, b)
    per_sample = a.reshape(len(a), -1)
    assert all(np.all(r == 0) or np.allclose(r, 2 * X[i].ravel()) for i, r in enumerate(per_sample))
    out = _np(L.inverted_dropout(X, 0.25, seed=3, training=True))
    kept = out != 0
    np.testing.assert_allclose(out[kept], X[kept] / 0.75, rtol=1e-6)


@check
def drop_block_squares_and_scale():
    x = np.ones((16, 12, 12, 4), "float32")
    out = _np(L.DropBlock(0.2, block_size=3, seed=5)(x, training=True))
    kept = out != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(out[kept], x.size / kept.sum(), rtol=1e-5)  # count / kept
    np.testing.assert_array_equal(_np(L.DropBlock(0.2, block_size=3)(x, training=False)), x)


def main():
    failures = 0
    for fn in CHECKS:
        try:
            fn()
            print(f"PASS {fn.__name__}")
        except Exception:  # report every check, then fail
            failures += 1
            print(f"FAIL {fn.__name__}\n{traceback.format_exc()}")
    print(f"{len(CHECKS) - failures}/{len(CHECKS)} checks passed on {keras.backend.backend()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
