"""Benchmark of keras_reg's dropout family against its peers (issue 2 targets).

Forward + backward (the gradient of `y` with respect to the inputs for a fixed random `dy`),
NHWC float32, CPU, timed interleaved in one process (benchmarks/_harness.py); every figure is
a median over rounds of per-round ratios, and each time is also given as a multiple of its
memory-traffic bound (bytes that must move / measured copy bandwidth).

- InvertedDropout(0.1) vs keras.layers.Dropout(0.1) as a plain `tf.function` (target: >= 1.8x
  faster), and InvertedDropout under `jit_compile=True` vs its own graph time (target: <= 2x).
  Keras Dropout under XLA is timed once per shape outside the interleaving (it is far slower)
  for context, unless --quick.
- StochasticDepth(0.1) in training vs a hand-written `x + r * (mask / keep)` with a per-sample
  mask (graph, target <= 1.1x), vs a plain `x + r` under XLA (target <= 1.05x), and at
  inference vs `x + r` (target: the same cost, <= 1.05x; the two graphs are also compared op
  by op).

Every comparison is timed twice, in both candidate orders, and its ratio is the geometric mean
of the two medians of per-round ratios (the position in a round biases a candidate by a few
percent on a shared machine).

Usage: python benchmarks/bench_dropout.py [--quick] [--rounds N]
"""

import argparse
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import _harness  # noqa: E402
from keras_reg.layers import InvertedDropout, StochasticDepth  # noqa: E402

SHAPES = [(64, 32, 32, 64), (32, 16, 16, 256), (8, 56, 56, 128)]
RATE = 0.1


def _fwd_bwd(fn, jit, n_inputs=1):
    """tf.function returning (y, dy/dinputs...) for a fixed output gradient."""

    @tf.function(jit_compile=jit)
    def step(inputs, dy):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = fn(*inputs)
        return (y,) + tuple(tape.gradient(y, inputs, output_gradients=dy))

    return step


class _Timings:
    """Interleaved timings taken twice, in the given order and reversed.

    A candidate's position in a round biases it by a few percent on this machine (measured:
    two identical graphs differ by up to 1.25x in one order); each ratio is the geometric mean
    of the two orders' medians of per-round ratios, which cancels that bias.
    """

    def __init__(self, candidates, rounds, inner):
        half = max(1, rounds // 2)
        self.forward = _harness.interleaved(candidates, rounds=half, inner=inner)
        reverse = dict(reversed(list(candidates.items())))
        self.backward = _harness.interleaved(reverse, rounds=half, inner=inner)

    def ratio(self, numerator, denominator):
        return math.sqrt(
            _harness.median_ratio(self.forward, numerator, denominator)
            * _harness.median_ratio(self.backward, numerator, denominator)
        )

    def ms(self):
        """Milliseconds per call: the mean of the two orders' medians."""
        both = (self.forward, self.backward)
        return {k: 1e3 * sum(_harness.median(t, k) for t in both) / 2 for k in self.forward}


def _bound_ms(nbytes, bandwidth):
    return nbytes / bandwidth * 1e3


def _fmt(value, digits=2):
    return f"{value:.{digits}f}"


def bench_dropout_shape(shape, rounds, inner, bandwidth, keras_xla):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal(shape).astype("float32"))
    dy = tf.constant(rng.standard_normal(shape).astype("float32"))
    ours = InvertedDropout(RATE, seed=1)
    peer = keras.layers.Dropout(RATE, seed=1)
    steps = {
        "keras": _fwd_bwd(lambda a: peer(a, training=True), False),
        "ours": _fwd_bwd(lambda a: ours(a, training=True), False),
        "ours_xla": _fwd_bwd(lambda a: ours(a, training=True), True),
    }
    candidates = {name: (lambda s=s: s((x,), dy)) for name, s in steps.items()}
    timings = _Timings(candidates, rounds, inner)
    # x read, y written, dy read, dx written: 4 float32 tensors.
    bound = _bound_ms(4 * 4 * x.shape.num_elements(), bandwidth)
    speedup = timings.ratio("keras", "ours")
    xla_ratio = timings.ratio("ours_xla", "ours")
    ms = timings.ms()
    rows = [
        [
            "InvertedDropout graph: speed-up vs keras Dropout",
            str(shape),
            f"{_fmt(ms['ours'])} vs {_fmt(ms['keras'])}",
            _fmt(speedup) + "x",
            ">= 1.8x",
            "met" if speedup >= 1.8 else "NOT met",
            f"{_fmt(ms['ours'] / bound, 1)} / {_fmt(ms['keras'] / bound, 1)}",
        ],
        [
            "InvertedDropout XLA / own graph time",
            str(shape),
            f"{_fmt(ms['ours_xla'])} vs {_fmt(ms['ours'])}",
            _fmt(xla_ratio) + "x",
            "<= 2x",
            "met" if xla_ratio <= 2.0 else "NOT met",
            f"{_fmt(ms['ours_xla'] / bound, 1)}",
        ],
    ]
    if keras_xla:
        peer_xla = _fwd_bwd(lambda a: peer(a, training=True), True)
        t = _harness.interleaved({"k": lambda: peer_xla((x,), dy)}, rounds=2, inner=1, warmup=1)
        k_ms = _harness.median(t, "k") * 1e3
        rows.append(
            [
                "keras Dropout XLA (context) / ours XLA",
                str(shape),
                f"{_fmt(k_ms, 0)} vs {_fmt(ms['ours_xla'])}",
                _fmt(k_ms / ms["ours_xla"], 0) + "x",
                "-",
                "-",
                f"{_fmt(k_ms / bound, 0)}",
            ]
        )
    return rows, bound


def _hand_written(x, r):
    """Per-sample drop path written out: x + r * (mask / keep)."""
    keep = 1.0 - RATE
    mask = tf.floor(keep + tf.random.uniform([tf.shape(r)[0], 1, 1, 1]))
    return x + r * (mask / keep)


def _op_types(function, *args):
    """Sorted op types of a tf.function's graph for these arguments."""
    graph_def = function.get_concrete_function(*args).graph.as_graph_def()
    return sorted(node.op for node in graph_def.node)


def bench_stochastic_depth_shape(shape, rounds, inner, bandwidth):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal(shape).astype("float32"))
    r = tf.constant(rng.standard_normal(shape).astype("float32"))
    dy = tf.constant(rng.standard_normal(shape).astype("float32"))
    layer = StochasticDepth(RATE, seed=1)
    train = {
        "sd": _fwd_bwd(lambda a, b: layer([a, b], training=True), False, 2),
        "hand": _fwd_bwd(_hand_written, False, 2),
        "add": _fwd_bwd(lambda a, b: a + b, False, 2),
        "sd_xla": _fwd_bwd(lambda a, b: layer([a, b], training=True), True, 2),
        "add_xla": _fwd_bwd(lambda a, b: a + b, True, 2),
    }
    infer = {
        "sd_inf": tf.function(lambda a, b: layer([a, b], training=False)),
        "add_inf": tf.function(lambda a, b: a + b),
    }
    candidates = {name: (lambda s=s: s((x, r), dy)) for name, s in train.items()}
    timings = _Timings(candidates, rounds, inner)
    # Inference on its own (not right after the heavier training steps), more calls per round.
    infer_candidates = {name: (lambda s=s: s(x, r)) for name, s in infer.items()}
    infer_timings = _Timings(infer_candidates, rounds, 3 * inner)
    inference = infer_timings.ratio("sd_inf", "add_inf")
    same_graph = _op_types(infer["sd_inf"], x, r) == _op_types(infer["add_inf"], x, r)
    ms = {**timings.ms(), **infer_timings.ms()}
    n = x.shape.num_elements()
    # Training: x, r read, y written, dy read, d_residual written (d_shortcut is dy itself).
    train_bound = _bound_ms(5 * 4 * n, bandwidth)
    infer_bound = _bound_ms(3 * 4 * n, bandwidth)
    graph = timings.ratio("sd", "hand")
    xla = timings.ratio("sd_xla", "add_xla")
    plain = timings.ratio("sd", "add")
    return [
        [
            "StochasticDepth train graph / hand-written x + r*mask/keep",
            str(shape),
            f"{_fmt(ms['sd'])} vs {_fmt(ms['hand'])} (x + r: {_fmt(ms['add'])}, {_fmt(plain)}x)",
            _fmt(graph) + "x",
            "<= 1.1x",
            "met" if graph <= 1.1 else "NOT met",
            f"{_fmt(ms['sd'] / train_bound, 1)} / {_fmt(ms['hand'] / train_bound, 1)}",
        ],
        [
            "StochasticDepth train XLA / x + r XLA",
            str(shape),
            f"{_fmt(ms['sd_xla'])} vs {_fmt(ms['add_xla'])}",
            _fmt(xla) + "x",
            "<= 1.05x",
            "met" if xla <= 1.05 else "NOT met",
            f"{_fmt(ms['sd_xla'] / train_bound, 1)} / {_fmt(ms['add_xla'] / train_bound, 1)}",
        ],
        [
            "StochasticDepth inference / x + r",
            str(shape),
            f"{_fmt(ms['sd_inf'])} vs {_fmt(ms['add_inf'])}",
            _fmt(inference) + "x",
            "<= 1.05x",
            ("met" if inference <= 1.05 else "NOT met")
            + (" (graph identical to x + r)" if same_graph else " (graph differs from x + r)"),
            f"{_fmt(ms['sd_inf'] / infer_bound, 1)} / {_fmt(ms['add_inf'] / infer_bound, 1)}",
        ],
    ]


def main(argv=None):
    """Runs the benchmark; returns (and prints) a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, first shape only")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 25)
    inner = 1 if args.quick else 3
    shapes = SHAPES[:1] if args.quick else SHAPES
    bandwidth = _harness.memory_bandwidth()
    rows = []
    for shape in shapes:
        dropout_rows, _ = bench_dropout_shape(shape, rounds, inner, bandwidth, not args.quick)
        rows += dropout_rows
        rows += bench_stochastic_depth_shape(shape, rounds, inner, bandwidth)
    header = ["figure", "shape", "ms (median)", "ratio", "target", "status", "x bound"]
    table = _harness.markdown_table(header, rows)
    note = (
        f"\nfwd+bwd, float32, rate {RATE}, {rounds} interleaved rounds x {inner} calls "
        "(half in each candidate order); "
        f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; `x bound` = time / (bytes moved / bandwidth)."
    )
    print(table + note)
    return table + note


if __name__ == "__main__":
    main()
