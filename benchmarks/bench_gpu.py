"""On a GPU: does the Mixup/CutMix pipeline keep ResNet-50 fed, and what does a search trial cost?

Two measurements, each only where TensorFlow sees a GPU (otherwise the script prints "no GPU"
and exits 0):

1. ResNet-50 (`keras.applications.ResNet50`, weights=None, 1,000 classes) trained at batch 256
   on 224×224×3 uint8 images from a `tf.data` pipeline with `keras_reg.data.MixupCutMix`
   (`num_parallel_calls=AUTOTUNE`), against the same model fed by the pipeline without the
   transform and by a constant batch in memory (the accelerator's own speed). Images per
   second of each, median of `--repeats` timed windows of `--steps` steps after a warm-up; the
   pipeline keeps up when its rate is within a few per cent of the in-memory one.
2. One trial of the default search (`keras_reg.tuning.search`, the built-in CNN, 30 epochs) on
   1,000 MNIST-sized random images: its wall time and its time in epochs.

    python benchmarks/bench_gpu.py                  # both, results printed as markdown
    python benchmarks/bench_gpu.py --steps 20 --repeats 3
"""

import argparse
import os
import platform
import statistics
import tempfile
import time


def gpus():
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def _images(batch, size, classes, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8),
            rng.integers(0, classes, batch).astype("int32"))


def pipeline_rates(batch=256, size=224, steps=30, repeats=5, classes=1000):
    """Images per second of ResNet-50 training fed three ways (median over windows)."""
    import keras
    import tensorflow as tf

    from keras_reg.data import MixupCutMix

    x, y = _images(batch, size, classes)
    base = tf.data.Dataset.from_tensors((x, y)).repeat()
    mix = MixupCutMix(classes, seed=0)
    feeds = {
        "in memory (constant batch)": None,
        "tf.data, no transform": base.map(
            lambda a, b: (tf.cast(a, "float32"), tf.one_hot(b, classes))).prefetch(
            tf.data.AUTOTUNE),
        "tf.data + MixupCutMix": mix.apply(base, num_parallel_calls=tf.data.AUTOTUNE).map(
            lambda a, b: (tf.cast(a, "float32"), b)).prefetch(tf.data.AUTOTUNE),
    }
    model = keras.applications.ResNet50(weights=None, classes=classes)
    model.compile("sgd", "categorical_crossentropy", jit_compile=False)
    rates = {}
    for name, feed in feeds.items():
        if feed is None:
            xf = tf.constant(x.astype("float32"))
            yf = tf.one_hot(y, classes)
            feed = tf.data.Dataset.from_tensors((xf, yf)).repeat()
        model.fit(feed, steps_per_epoch=3, epochs=1, verbose=0)  # warm-up and tracing
        windows = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.fit(feed, steps_per_epoch=steps, epochs=1, verbose=0)
            windows.append(batch * steps / (time.perf_counter() - start))
        rates[name] = statistics.median(windows)
    return rates


def trial_time(epochs=30, examples=1000):
    """Wall seconds of one default-protocol trial of the built-in CNN on 28×28 images."""
    import numpy as np

    from keras_reg.tuning import search

    rng = np.random.default_rng(0)
    x = rng.random((examples, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, examples)
    xv, yv = x[: examples // 2], y[: examples // 2]
    start = time.perf_counter()
    result = search(None, (x, y), (xv, yv), max_trials=1, epochs=epochs, seed=0,
                    directory=tempfile.mkdtemp(), references=("start",), probes=False)
    record = result.trials[0]
    return time.perf_counter() - start, record.fit_seconds, record.epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    found = gpus()
    if not found:
        print("no GPU: nothing measured (TensorFlow sees no GPU on this machine)")
        return 0
    import tensorflow as tf

    details = tf.config.experimental.get_device_details(found[0])
    print(f"# GPU benchmark\n\nMachine: {details.get('device_name', 'GPU')}, "
          f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, TensorFlow "
          f"{tf.__version__}.\n\nCommand: `python benchmarks/bench_gpu.py --steps {args.steps} "
          f"--repeats {args.repeats}`\n")
    rates = pipeline_rates(args.batch, steps=args.steps, repeats=args.repeats)
    print(f"ResNet-50 training, batch {args.batch}, 224x224x3 (images/s, median of "
          f"{args.repeats} windows of {args.steps} steps):\n\n| feed | images/s |\n|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} |")
    wall, fit, epochs = trial_time(args.epochs)
    print(f"\nOne default trial (built-in CNN, 1,000 28x28 images, up to {args.epochs} epochs): "
          f"{wall:.1f} s wall, {fit:.1f} s in {epochs} epochs.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
