"""Levers on the search's time, measured: where an MNIST-sized epoch goes, cheaper CNNs, and
less early-stopping patience replayed on kept searches.

    python benchmarks/bench_levers.py epoch                # parts of one 28x28 epoch
    python benchmarks/bench_levers.py models               # training-step cost of CNN variants
    python benchmarks/bench_levers.py models --quality 0 1 # + test error on MNIST-1k seeds
    python benchmarks/bench_levers.py patience RUN [RUN ...]  # kept `--keep-runs` searches

`epoch`: with the `strong` probe's values on the built-in CNN (width 16, 28x28x1, 1,000
random images, batch 32), interleaved repeats of the epoch's 32 training steps, the precise
batch-norm pass (16 batches), validation of 500 images at batch 32 and 256, and the
augmentation + Mixup pipeline alone; medians.

`models`: the built-in CNN against a stride-2 first convolution (with its own stage count, or
three stages), widths 12 and 8 and no residual block in the first stage: the time of 32
training steps, interleaved; with `--quality SEEDS`, `start` and the `strong` probe trained as
trials are (`keras_reg.tuning.train`, 30 epochs) on each seed's MNIST-1k subsets
(`bench_search.py`'s), and their test errors (needs the `[bench]` extras).

`patience`: Keras's `EarlyStopping(patience, start_from_epoch)` replayed on each kept trial's
validation curve (`keras_reg.json`): a run's epochs up to a stop do not depend on the stop, so
the replay is exact up to the first trial whose best epoch it changes (a changed score changes
the oracle's later proposals).
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

VARIANTS = {  # name -> cnn() arguments
    "built-in": {},
    "stride-2 stem": {"stem_stride": 2},
    "stride-2 stem, 3 stages": {"stem_stride": 2, "stages": 3},
    "width 12": {"width": 12},
    "width 8": {"width": 8},
    "no first residual block": {"first_residual": False},
}


def cnn(reg, input_shape, num_classes, width=16, stem_stride=1, stages=None,
        first_residual=True):
    """`keras_reg.models.build_cnn` at a fixed width, with the variants' changes."""
    import keras

    from keras_reg import blocks
    from keras_reg.models import _classifier, _stages

    inputs = x = keras.Input(input_shape)
    stages = stages or _stages(min(input_shape[:2]) // stem_stride, 4)
    rates = reg.drop_path_rates(stages)
    for stage in range(stages):
        if stage:
            x = keras.layers.MaxPooling2D(2, padding="same")(x)
        filters = width * 2**stage
        x = blocks.conv_block(x, filters, norm=reg.norm, strides=1 if stage else stem_stride,
                              kernel_regularizer=reg.kernel_regularizer())
        if stage or first_residual:
            x = blocks.residual_block(x, filters, drop_path=rates[stage], norm=reg.norm,
                                      kernel_regularizer=reg.kernel_regularizer())
    x = keras.layers.GlobalAveragePooling2D()(x)
    return _classifier(inputs, x, reg, num_classes, "variant")


def _random_images(n, seed):
    import keras

    rng = np.random.default_rng(seed)
    return (rng.random((n, 28, 28, 1)).astype("float32"),
            keras.utils.to_categorical(rng.integers(0, 10, n), 10))


def _median(times):
    return f"{np.median(times):.3f} s ({min(times):.3f}–{max(times):.3f})"


def epoch(repeats):
    import tensorflow as tf

    from keras_reg.callbacks import PreciseBatchNorm
    from keras_reg.models import build_cnn
    from keras_reg.tuning import TrainingProtocol, probes
    from keras_reg.tuning.protocol import _pipeline

    reg = probes()["strong"]
    (x, y), (xv, yv) = _random_images(1000, 0), _random_images(500, 1)
    model = build_cnn(reg, (28, 28, 1), 10, num_examples=1000)
    TrainingProtocol().compile(model, 32, 30)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    stream = train.repeat()
    validation = {b: tf.data.Dataset.from_tensor_slices((xv, yv)).batch(b) for b in (32, 256)}
    precise = PreciseBatchNorm(train, num_batches=16)
    precise.set_model(model)
    pipeline = iter(_pipeline(reg, train.unbatch().map(lambda a, b: (a, tf.argmax(b)))
                              .batch(32).repeat(), None, 10, seed=0)[0])
    parts = {
        "32 training steps": lambda: model.fit(stream, steps_per_epoch=32, epochs=1, verbose=0),
        "precise batch norm (16 batches)": precise.on_test_begin,
        "validation, 500 images, batch 32": lambda: model.evaluate(validation[32], verbose=0),
        "validation, 500 images, batch 256": lambda: model.evaluate(validation[256], verbose=0),
        "augmentation + Mixup, 32 batches": lambda: [next(pipeline) for _ in range(32)],
    }
    for part in parts.values():  # traced and warm
        part()
    times = {name: [] for name in parts}
    for _ in range(repeats):
        for name, part in parts.items():
            start = time.perf_counter()
            part()
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(f"{name}: {_median(values)}")


def models(repeats, quality_seeds):
    from keras_reg.tuning import Regularization, TrainingProtocol

    reg = Regularization.recipe()
    x, y = _random_images(1024, 0)
    built = {}
    for name, kwargs in VARIANTS.items():
        model = cnn(reg, (28, 28, 1), 10, **kwargs)
        TrainingProtocol().compile(model, 32, 30)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        built[name] = model
    times = {name: [] for name in built}
    for _ in range(repeats):
        for name, model in built.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=32, epochs=1, verbose=0)
            times[name].append(time.perf_counter() - start)
    for name, model in built.items():
        print(f"{name}: {model.count_params():,} parameters, 32 training steps "
              f"{_median(times[name])}")
    if quality_seeds:
        _quality(quality_seeds)


def _quality(seeds):
    from bench_search import subset_npz

    from keras_reg.tuning import probes, train
    from keras_reg.tuning.space import RegularizationSpace

    points = {"start": RegularizationSpace().start(), "strong": probes()["strong"]}
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            arrays = np.load(subset_npz("mnist1k", seed, folder))
            split = {s: ((arrays[f"x_{s}"] / np.float32(255))[..., None], arrays[f"y_{s}"])
                     for s in ("train", "val", "test")}
            for label, reg in points.items():
                for name, kwargs in VARIANTS.items():
                    start = time.perf_counter()
                    model, _ = train(reg, split["train"], split["val"], epochs=30, seed=seed,
                                     build_model=lambda r, k=kwargs: cnn(r, (28, 28, 1), 10, **k))
                    seconds = time.perf_counter() - start
                    predicted = model.predict(split["test"][0], batch_size=512, verbose=0)
                    error = float(np.mean(np.argmax(predicted, 1) != split["test"][1]))
                    print(f"seed {seed}, {label}, {name}: test error {100 * error:.2f} %, "
                          f"{seconds:.0f} s", flush=True)


def _stop(curve, patience, start):
    """The last epoch (0-based) Keras's EarlyStopping runs on `curve` (lower is better)."""
    best, wait = np.inf, 0
    for e, value in enumerate(curve):
        if e < start:
            continue
        wait += 1
        if value < best:
            best, wait = value, 0
        elif wait >= patience and e > 0:
            return e
    return len(curve) - 1


def patience(runs, objective, rules):
    curves = []
    for run in runs:
        for path in sorted(glob.glob(os.path.join(run, "**", "trial_*", "keras_reg.json"),
                                     recursive=True)):
            with open(path) as f:
                history = json.load(f)["history"]
            if history.get(objective):
                curves.append(np.asarray(history[objective], np.float64))
    print(f"{len(curves)} trials, {sum(map(len, curves))} epochs")
    for wait, start in rules:
        ran, changed, worst = 0, 0, 0.0
        for curve in curves:
            stop = _stop(curve, wait, start)
            ran += stop + 1
            best = curve[: stop + 1].min()
            if best > curve.min():
                changed += 1
                worst = max(worst, best / curve.min() - 1)
        print(f"patience {wait} from epoch {start}: {ran / sum(map(len, curves)):.2f} of the "
              f"epochs; best epoch moved in {changed} trials (objective up to "
              f"{100 * worst:.0f} % worse)")


def _searches(runs, objective):
    """Per kept search: its trials in id order as `(values, curve, score)`."""
    out = []
    for run in runs:
        for search in sorted(glob.glob(os.path.join(run, "**", "oracle.json"), recursive=True)):
            trials = []
            for folder in sorted(glob.glob(os.path.join(os.path.dirname(search), "trial_*"))):
                try:
                    with open(os.path.join(folder, "trial.json")) as f:
                        trial = json.load(f)
                    with open(os.path.join(folder, "keras_reg.json")) as f:
                        curve = json.load(f)["history"].get(objective)
                except (OSError, ValueError):
                    continue
                if trial["status"] == "COMPLETED" and curve:
                    trials.append((trial["hyperparameters"]["values"],
                                   np.asarray(curve, np.float64), trial["score"]))
            out.append((search, trials))
    return out


def incumbent(runs, objective, rules):
    """A trust-region trial stopped at the first epoch >= `start` where its best so far is
    more than `slack` worse than its incumbent's best so far at the same epoch."""
    searches = _searches(runs, objective)
    total = sum(len(c) for _, trials in searches for _, c, _ in trials)
    region = [(trials, i) for _, trials in searches for i, (v, _, _) in enumerate(trials)
              if "tuner/trust_radius" in v]
    print(f"{len(searches)} searches, {len(region)} trust-region trials, {total} epochs")
    for slack, start in rules:
        saved, stopped, lost, members = 0, 0, [], 0
        for trials, i in region:
            top = sorted(t[2] for t in trials)[:3]  # the ensemble's members, all run in full
            done = trials[:i]
            best = min(range(len(done)), key=lambda k: done[k][2])  # the incumbent
            mine, theirs = trials[i][1], np.minimum.accumulate(done[best][1])
            for e in range(start, len(mine)):
                if mine[: e + 1].min() > (1 + slack) * theirs[min(e, len(theirs) - 1)]:
                    saved += len(mine) - e - 1
                    stopped += 1
                    if mine.min() < done[best][2]:  # in full it beat its incumbent
                        lost.append(f"{done[best][2] / mine.min() - 1:.1%}")
                    members += trials[i][2] <= top[-1]
                    break
        print(f"slack {slack:.0%} from epoch {start}: {stopped} stopped, "
              f"{saved / total:.1%} of the searches' epochs saved; stopped trials that in full "
              f"beat their incumbent: {len(lost)} (by {', '.join(lost) or '-'}), were among the "
              f"three best: {members}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("epoch").add_argument("--repeats", type=int, default=5)
    m = sub.add_parser("models")
    m.add_argument("--repeats", type=int, default=5)
    m.add_argument("--quality", type=int, nargs="*", default=[], metavar="SEED")
    p = sub.add_parser("patience")
    p.add_argument("runs", nargs="+")
    p.add_argument("--objective", default="val_calibrated_loss")
    i = sub.add_parser("incumbent")
    i.add_argument("runs", nargs="+")
    i.add_argument("--objective", default="val_calibrated_loss")
    args = parser.parse_args()
    if args.what == "epoch":
        epoch(args.repeats)
    elif args.what == "models":
        models(args.repeats, args.quality)
    elif args.what == "incumbent":
        incumbent(args.runs, args.objective,
                  [(0.0, 10), (0.1, 10), (0.2, 10), (0.0, 15), (0.1, 15), (0.2, 15)])
    else:
        patience(args.runs, args.objective,
                 [(7, 15), (5, 15), (4, 15), (3, 15), (5, 10), (3, 10)])


if __name__ == "__main__":
    main()
