"""Training-protocol options measured before any is adopted: weight averaging, Keras's own
augmentation policies and test-time augmentation.

Each option is measured on fixed values (the `recipe` reference: batch norm, L2 1e-4, dropout
0.1, drop-path 0.1, augmentation 0.5) with the built-in CNN, trained by `keras_reg.tuning.train`
under one `TrainingProtocol` (no early stopping, so every variant trains its 30 epochs and is
measured at its last weights), on a different training subset per seed:

- `base`: the protocol as it is;
- `ema`: Adam with `use_ema=True` (Keras's exponential moving average of the weights, momentum
  0.99: the trained model is the average; batch-norm statistics recomputed for it);
- `randaugment` / `augmix`: the recipe's augmentation replaced by Keras's `RandAugment(num_ops=2,
  factor=0.5)` / `AugMix()` (value range [0, 1]) in front of the model, active in training only;
- `tta`: the `base` models, each test image predicted as the mean of its own prediction and
  those of its four one-pixel shifts.

The ensemble of a search's best trials, the option adopted, is measured by `bench_search.py`
(its `ensemble` column) on the searches themselves.

Test error and test loss (after the temperature scaling fitted on validation), mean over seeds,
and the paired ratio variant / base.

    python benchmarks/bench_protocol.py --sets digits200 --seeds 0 1 2 3 4
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
VARIANTS = ("base", "ema", "randaugment", "augmix", "tta")


def subsets(name, seed):
    """`((x, y) train, validation, test)` arrays: `bench_search.py`'s subsets of the seed."""
    import tempfile

    from bench_search import subset_npz

    with tempfile.TemporaryDirectory() as tmp:
        with np.load(subset_npz(name, seed, tmp)) as f:
            return tuple((f[f"x_{k}"], f[f"y_{k}"]) for k in ("train", "val", "test"))


def _batches(arrays, shuffle, seed):
    import tensorflow as tf

    x, y = arrays
    if x.dtype == np.uint8:
        x = x.astype("float32") / 255.0
    if x.ndim == 3:
        x = x[..., None]
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int64"))).cache()
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(32)


def train_variant(variant, data, seed, epochs):
    """The trained model of `variant` (all but `tta`, which predicts with `base`'s)."""
    import keras

    from keras_reg.callbacks import PreciseBatchNorm
    from keras_reg.tuning import Regularization, TrainingProtocol, train
    from keras_reg.data._datasets import one_hot_batches
    from keras_reg.models import build_default

    protocol = TrainingProtocol(patience=None)
    train_ds, val_ds = _batches(data[0], True, seed), _batches(data[1], False, seed)
    reg = Regularization.recipe()
    n = len(data[0][1])
    layer = None
    if variant in ("randaugment", "augmix"):
        reg = Regularization.from_dict({**reg.to_dict(), "augment": 0.0})
        layer = (keras.layers.RandAugment(value_range=(0, 1), num_ops=2, factor=0.5, seed=seed)
                 if variant == "randaugment" else keras.layers.AugMix(value_range=(0, 1),
                                                                      seed=seed))

    def build_model(reg, input_shape, num_classes):
        model = build_default(reg, input_shape, num_classes, num_examples=n)
        if layer is not None:
            inputs = keras.Input(input_shape)
            model = keras.Model(inputs, model(layer(inputs)))
        if variant == "ema":  # the protocol's schedule, with Keras's weight averaging
            protocol.compile(model, protocol.steps_per_epoch(train_ds), epochs)
            model.compile(optimizer=keras.optimizers.Adam(model.optimizer._learning_rate,
                                                          use_ema=True, ema_momentum=0.99),
                          loss=keras.losses.CategoricalCrossentropy())
        return model

    model, _ = train(reg, train_ds, val_ds, protocol=protocol, build_model=build_model,
                     epochs=epochs, seed=seed)
    if variant == "ema":  # batch-norm statistics of the averaged weights
        num_classes = model.output_shape[-1]
        PreciseBatchNorm(one_hot_batches(train_ds, num_classes), num_batches=16).update(model)
    return model


def shifted_predictions(model, x):
    """Mean prediction over `x` and its four one-pixel shifts (zero padded)."""
    p = model.predict(x, batch_size=256, verbose=0)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        p = p + model.predict(padded[:, dy:dy + h, dx:dx + w], batch_size=256, verbose=0)
    return p / 5.0


def scores(p_val, y_val, p_test, y_test):
    """`{"error", "loss"}` on test after the temperature fitted on validation."""
    from keras_reg.metrics import calibrated_nll, one_hot_targets

    k = p_test.shape[-1]
    beta = calibrated_nll(p_val, one_hot_targets(y_val, k))[1]
    logits = beta * np.log(np.clip(p_test, 1e-12, 1.0))
    logits -= logits.max(axis=1, keepdims=True)
    q = np.exp(logits)
    q /= q.sum(axis=1, keepdims=True)
    loss = float(-np.mean(np.log(np.clip(q[np.arange(len(y_test)), y_test], 1e-12, 1.0))))
    return {"error": float(np.mean(p_test.argmax(axis=1) != y_test)), "loss": loss}


def run_set(name, seeds, variants, epochs):
    rows = {v: [] for v in variants}
    for seed in seeds:
        data = subsets(name, seed)
        x_val, y_val = (np.asarray(a) for a in data[1])
        x_test, y_test = (np.asarray(a) for a in data[2])
        prep = lambda x: (x.astype("float32") / 255.0 if x.dtype == np.uint8  # noqa: E731
                          else x).reshape((len(x),) + tuple(x.shape[1:3]) + (-1,))
        x_val, x_test = prep(x_val), prep(x_test)
        base = None
        for variant in variants:
            start = time.perf_counter()
            if variant == "tta":
                base = base or train_variant("base", data, seed, epochs)
                found = scores(shifted_predictions(base, x_val), y_val,
                               shifted_predictions(base, x_test), y_test)
            else:
                model = train_variant(variant, data, seed, epochs)
                base = model if variant == "base" else base
                found = scores(model.predict(x_val, verbose=0), y_val,
                               model.predict(x_test, verbose=0), y_test)
            found.update(seed=seed, seconds=time.perf_counter() - start)
            rows[variant].append(found)
            print(f"{name} seed {seed} {variant}: {found}", flush=True)
    return rows


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return (f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g} "
            f"({min(values):.3g}..{max(values):.3g})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["digits200"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--output", default=os.path.join(HERE, "results", "protocol.md"))
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    lines = ["# Protocol options at fixed values (the recipe), before adoption", "",
             f"Command: `python benchmarks/bench_protocol.py {' '.join(sys.argv[1:])}`", ""]
    if args.variants:
        lines += ["| data | variant | seeds | test error | test loss | error ratio / base | "
                  "loss ratio / base | seconds |", "|---|---|---|---|---|---|---|---|"]
        for name in args.sets:
            rows = run_set(name, args.seeds, args.variants, args.epochs)
            base = rows.get("base")
            for variant, found in rows.items():
                ratio = lambda k: [f[k] / b[k] if b[k] else None  # noqa: E731
                                   for f, b in zip(found, base)] if base else []
                lines.append(f"| {name} | {variant} | {len(found)} | "
                             f"{spread([f['error'] for f in found])} | "
                             f"{spread([f['loss'] for f in found])} | {spread(ratio('error'))} | "
                             f"{spread(ratio('loss'))} | "
                             f"{spread([f['seconds'] for f in found])} |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
