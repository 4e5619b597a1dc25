"""tf.data throughput of keras_reg.data against Keras's MixUp / CutMix / RandomErasing.

Every candidate is the same cached, repeated, prefetched pipeline of ready-made batches with one
transform mapped on it (`map` without parallelism, so the figure is the transform's own cost);
candidates are timed interleaved in one process (benchmarks/_harness.py), the median over
rounds is reported as images/s and as extra milliseconds per batch over the bare pipeline.
Labels are one-hot float32 for every candidate (Keras's layers reject integer labels).
Below the transforms, the options measured for keying a batch (the key alone): tf.fingerprint,
the batch hash in a plain graph and XLA-compiled, the Gamma draws, and `.apply` (position key).

    python benchmarks/bench_data.py [--quick]
"""

import argparse
import os
import platform
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _harness import interleaved, markdown_table  # noqa: E402
from keras_reg.data import Cutout, MixupCutMix, _random  # noqa: E402

NUM_CLASSES = 10

CONFIGS = (
    # name, image shape, dtype, batch size, batches per timing (quick run: a quarter)
    ("32x32x3 float32, batch 128", (32, 32, 3), "float32", 128, 160),
    ("224x224x3 uint8, batch 64", (224, 224, 3), "uint8", 64, 24),
)


def _batches(shape, dtype, batch, count=4, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        images = rng.integers(0, 256, (count * batch, *shape), dtype=np.uint8)
    else:
        images = rng.random((count * batch, *shape), dtype=np.float32)
    labels = np.eye(NUM_CLASSES, dtype=np.float32)[rng.integers(0, NUM_CLASSES, count * batch)]
    return images, labels


def _keras_dict(layer):
    def fn(images, labels):
        out = layer({"images": images, "labels": labels})
        return out["images"], out["labels"]
    return fn


def _candidates(shape, dtype, batch, with_erasing):
    """name -> the per-batch map function (None: the bare pipeline)."""
    mixup, cutmix = keras.layers.MixUp(seed=0), keras.layers.CutMix(seed=0)
    chained_mix, chained_cut = keras.layers.MixUp(seed=1), keras.layers.CutMix(seed=1)
    ours = MixupCutMix(NUM_CLASSES, seed=0)

    def chained(images, labels):
        return _keras_dict(chained_cut)(*_keras_dict(chained_mix)(images, labels))

    cands = {
        "bare pipeline": None,
        "keras MixUp": _keras_dict(mixup),
        "keras CutMix": _keras_dict(cutmix),
        "keras MixUp -> CutMix": chained,
        "keras_reg MixupCutMix": ours,
    }
    if with_erasing:
        side = shape[0] // 2
        erasing = keras.layers.RandomErasing(factor=1.0, scale=(0.25, 0.25), fill_value=0.0,
                                             value_range=(0, 255) if dtype == "uint8" else (0, 1),
                                             seed=0)
        cands["keras RandomErasing"] = lambda x, y: (erasing(x, training=True), y)
        cands["keras_reg Cutout"] = Cutout(side, seed=0)
    return cands


def _iterator(images, labels, batch, fn, apply=False):
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch).cache().repeat()
    if apply:
        ds = fn.apply(ds)
    elif fn is not None:
        ds = ds.map(fn)
    return iter(ds.prefetch(2))


def _touch(x, y, word):
    """(x, y) made to depend on a scalar, so the scalar is computed in the pipeline."""
    return x, y + tf.cast(tf.cast(word, tf.int32) * 0, y.dtype)


def _option_candidates(shape):
    """The ways to key a batch that were measured (key alone, MixupCutMix's own cost aside)."""
    grid = [list(range(0, size, max(size // 16, 1))) for size in shape[:2]]

    def fingerprint(x, y):  # farmhash of the same pixel grid: a TF op without an XLA kernel
        sample = tf.gather(tf.gather(x, grid[0], axis=1), grid[1], axis=2)
        return _touch(x, y, tf.fingerprint(tf.reshape(sample, [1, -1]))[0, 0])

    def hash_with(jit_compile):
        def fn(x, y):
            return _touch(x, y, _random.batch_keys(x, y, 0, None, False,
                                                   jit_compile=jit_compile)[0])
        return fn

    def gamma(x, y):  # the Gamma draws behind Beta(a, a): what an XLA Beta sampler could save
        g = tf.random.stateless_gamma([1, 2, 2], seed=tf.constant([1, 2], tf.int64),
                                      alpha=tf.constant([0.8, 1.0]))
        return x, y + tf.reduce_sum(g) * 0

    return {"key: tf.fingerprint of the grid (graph only)": fingerprint,
            "key: batch hash, plain graph": hash_with(False),
            "key: batch hash, XLA (used)": hash_with(True),
            "Gamma draws alone (outside XLA)": gamma}


def _label_weight_error(layer_fn, size=32, batch=64):
    """Max |partner's label weight - fraction of pixels pasted from the partner| over a batch
    of constant images (image i filled with i + 1, label i): 0 when label weights are exact."""
    images = np.broadcast_to(np.arange(1, batch + 1, dtype=np.float32)[:, None, None, None],
                             (batch, size, size, 3)).copy()
    labels = np.eye(batch, dtype=np.float32)
    worst = 0.0
    for _ in range(5):
        out, targets = layer_fn(tf.constant(images), tf.constant(labels))
        out, targets = np.asarray(out)[..., 0], np.asarray(targets)
        for i in range(batch):
            foreign = out[i] != i + 1
            if not foreign.any():
                continue
            j = int(round(float(out[i][foreign][0]))) - 1
            if not np.isin(out[i], [i + 1, j + 1]).all():
                continue  # a Mixup sample
            worst = max(worst, abs(float(targets[i, j]) - float(foreign.mean())))
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 11
    lines = ["# keras_reg.data benchmark", "",
             f"Command: `python benchmarks/bench_data.py{' --quick' if args.quick else ''}`. "
             f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, TF {tf.__version__}, "
             f"Keras {keras.__version__}; shared and noisy (other jobs run beside it), so compare "
             "ratios within a table rather than absolute figures. Medians over "
             f"{rounds} interleaved rounds; each timing pulls many batches through a prefetch "
             "buffer of 2.", ""]
    summary = {}
    for title, shape, dtype, batch, steps in CONFIGS:
        steps = max(steps // 4, 4) if args.quick else steps
        images, labels = _batches(shape, dtype, batch)
        cands = _candidates(shape, dtype, batch, with_erasing=True)
        iters = {name: _iterator(images, labels, batch, fn) for name, fn in cands.items()}

        def puller(it):
            def pull():
                for _ in range(steps):
                    out = next(it)
                return out[0]
            return pull

        iters["keras_reg MixupCutMix .apply (content + position key)"] = _iterator(
            images, labels, batch, MixupCutMix(NUM_CLASSES, seed=0), apply=True)
        for name, fn in _option_candidates(shape).items():
            iters[name] = _iterator(images, labels, batch, fn)
        times = interleaved({n: puller(it) for n, it in iters.items()}, rounds=rounds,
                            inner=1, warmup=2)
        per_batch = {n: statistics.median(t) / steps for n, t in times.items()}
        bare = per_batch["bare pipeline"]
        rows = []
        for name, seconds in per_batch.items():
            extra = "" if name == "bare pipeline" else f"{(seconds - bare) * 1e3:+.2f}"
            rows.append([name, f"{batch / seconds:,.0f}", f"{seconds * 1e3:.2f}", extra])
        summary[title] = per_batch
        lines += [f"## {title}", "", markdown_table(
            ["pipeline", "images/s", "ms per batch", "extra ms vs bare"], rows), ""]

    small, large = (summary[c[0]] for c in CONFIGS)
    ours_large = 64 / large["keras_reg MixupCutMix"]
    extra_small = (small["keras_reg MixupCutMix"] - small["bare pipeline"]) * 1e3
    ratios = {t: summary[t]["keras RandomErasing"] / summary[t]["keras_reg Cutout"]
              for t in summary}
    ours_fn = MixupCutMix(64, mixup_alpha=0.0, label_smoothing=0.0, mode="elem", seed=0)
    keras_cut = keras.layers.CutMix(seed=0)
    err_ours = _label_weight_error(ours_fn)
    err_keras = _label_weight_error(_keras_dict(keras_cut))
    lines += ["## Targets", "", markdown_table(["target", "measured", "met"], [
        ["MixupCutMix >= 8,000 img/s at 224x224x3 uint8 b64 (stretch 12k)",
         f"{ours_large:,.0f} img/s", "yes" if ours_large >= 8000 else "no"],
        ["MixupCutMix <= 0.6 ms extra per batch at 32x32x3 float b128",
         f"{extra_small:+.2f} ms", "yes" if extra_small <= 0.6 else "no"],
        *[[f"Cutout >= 5x RandomErasing throughput ({t})", f"{r:.1f}x",
           "yes" if r >= 5 else "no"] for t, r in ratios.items()],
        ["label weights exact (max |weight - pasted fraction|, CutMix, 32x32)",
         f"keras_reg {err_ours:.2g}, Keras CutMix {err_keras:.3f}",
         "yes" if err_ours < 1e-6 else "no"],
    ]), ""]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
