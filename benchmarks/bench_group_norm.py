"""GroupNorm against keras.layers.GroupNormalization: forward + backward time and accuracy.

For each NHWC float32 shape, both layers (same weights, groups=32) compute the output and the
gradients with respect to the input, gamma and beta, as a plain `tf.function` (graph mode,
what `fit` uses on a CPU) and with `jit_compile=True` (XLA). Candidates run interleaved in one
process; the speed-up is the median over rounds of the per-round time ratio, so a shared,
noisy machine slows both alike. Every time is also given as a multiple of its memory-traffic
bound: the bytes a fused fwd+bwd must move (read x, write y, read dy and x, write dx) divided
by the measured copy bandwidth.

Accuracy: the largest difference from Keras (output and input gradient) on N(0.5, 2^2) data,
and the largest output error of both layers against a float64 NumPy reference on N(1000, 1).

    python benchmarks/bench_group_norm.py            # full run (a few minutes)
    python benchmarks/bench_group_norm.py --quick    # a short smoke run
"""

import argparse
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import _harness  # noqa: E402

tf.get_logger().setLevel("ERROR")  # one tf.function per layer and mode is intended
from keras_reg.layers import GroupNorm  # noqa: E402

SHAPES = [(64, 32, 32, 64), (32, 16, 16, 256), (8, 56, 56, 128)]
QUICK_SHAPES = [(16, 16, 16, 64), (8, 8, 8, 256)]
GROUPS = 32
TARGETS = {"graph": (2.0, 1.5, 2.5), "xla": (1.2, None, 1.5)}  # geo-mean, per-shape min, stretch


def _layers(shape, seed=0):
    keras_layer = keras.layers.GroupNormalization(groups=GROUPS)
    ours = GroupNorm(groups=GROUPS)
    keras_layer.build(shape)
    ours.build(shape)
    rng = np.random.default_rng(seed)
    weights = [rng.normal(1.0, 0.3, w.shape).astype("float32") for w in keras_layer.weights]
    keras_layer.set_weights(weights)
    ours.set_weights(weights)
    return {"keras": keras_layer, "keras_reg": ours}


def _step(layer, x, dy, jit):
    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return [y] + tape.gradient(y, [x] + layer.trainable_weights, output_gradients=dy)

    return step


def _numpy_reference(x, gamma, beta, epsilon=1e-3):
    g = x.astype(np.float64).reshape(x.shape[0], -1, GROUPS, x.shape[-1] // GROUPS)
    y = (g - g.mean(axis=(1, 3), keepdims=True)) / np.sqrt(g.var(axis=(1, 3), keepdims=True) + epsilon)
    return y.reshape(x.shape) * gamma + beta


def _accuracy(shape, layers):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(0.5, 2.0, shape).astype("float32"))
    dy = tf.constant(rng.normal(size=shape).astype("float32"))
    out = {name: _step(layer, x, dy, False)() for name, layer in layers.items()}
    diff_y = float(np.abs(out["keras"][0] - out["keras_reg"][0]).max())
    diff_dx = float(np.abs(out["keras"][1] - out["keras_reg"][1]).max())
    big = rng.normal(1000.0, 1.0, shape).astype("float32")
    gamma, beta = layers["keras"].get_weights()
    exact = _numpy_reference(big, gamma, beta)
    err = {name: float(np.abs(np.asarray(layer(big)) - exact).max()) for name, layer in layers.items()}
    return diff_y, diff_dx, err


def bench_shape(shape, rounds, inner, bandwidth):
    layers = _layers(shape)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(0.5, 2.0, shape).astype("float32"))
    dy = tf.constant(rng.normal(size=shape).astype("float32"))
    bound = 5 * math.prod(shape) * 4 / bandwidth
    rows = {}
    for mode, jit in (("graph", False), ("xla", True)):
        steps = {name: _step(layer, x, dy, jit) for name, layer in layers.items()}
        times = _harness.interleaved(steps, rounds=rounds, inner=inner)
        rows[mode] = {
            "keras": _harness.median(times, "keras"),
            "ours": _harness.median(times, "keras_reg"),
            "speedup": _harness.median_ratio(times, "keras", "keras_reg"),
        }
    return rows, bound, _accuracy(shape, layers)


def _verdict(value, target, stretch=None):
    if value >= (stretch or math.inf):
        return f"met (stretch {stretch}x met)"
    return "met" if value >= target else "NOT met"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per mode")
    args = parser.parse_args(argv)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    rounds = args.rounds or (3 if args.quick else 21)
    inner = 1 if args.quick else 3
    bandwidth = _harness.memory_bandwidth()

    header = [
        "shape (NHWC)", "mode", "Keras ms (x bound)", "keras_reg ms (x bound)", "speed-up",
        "output: max diff vs Keras", "input grad: max diff vs Keras",
        "output error at N(1000, 1): Keras / keras_reg",
    ]
    table, speedups = [], {"graph": [], "xla": []}
    for shape in shapes:
        rows, bound, (diff_y, diff_dx, err) = bench_shape(shape, rounds, inner, bandwidth)
        for mode, r in rows.items():
            speedups[mode].append(r["speedup"])
            table.append([
                str(shape), mode,
                f"{r['keras'] * 1e3:.1f} ({r['keras'] / bound:.1f}x)",
                f"{r['ours'] * 1e3:.1f} ({r['ours'] / bound:.1f}x)",
                f"{r['speedup']:.2f}x",
                f"{diff_y:.1e}", f"{diff_dx:.1e}",
                f"{err['keras']:.1e} / {err['keras_reg']:.1e}",
            ])
    summary = []
    for mode, values in speedups.items():
        geo = math.exp(sum(math.log(v) for v in values) / len(values))
        target, floor, stretch = TARGETS[mode]
        verdict = _verdict(geo, target, stretch)
        if floor is not None and min(values) < floor:
            verdict = f"NOT met (a shape below {floor}x)"
        if args.quick:
            verdict = "not judged (--quick: the targets apply to the full shapes)"
        floor_text = f", none below {floor}x" if floor else ""
        summary.append(
            f"- {mode}: geometric-mean speed-up {geo:.2f}x (min {min(values):.2f}x); "
            f"target >= {target}x{floor_text}, stretch {stretch}x: {verdict}"
        )
    text = "\n".join(
        [
            f"GroupNorm vs keras.layers.GroupNormalization, fwd+bwd, float32, groups={GROUPS}; "
            f"{rounds} interleaved rounds, medians; copy bandwidth {bandwidth / 1e9:.1f} GB/s; "
            "accuracy targets: within 2e-5 of Keras, error <= 4e-4 at N(1000, 1).",
            "",
            _harness.markdown_table(header, table),
            "",
            *summary,
        ]
    )
    print(text)
    return text


if __name__ == "__main__":
    main()
