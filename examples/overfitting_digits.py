"""Overfitting and its cures on a few hundred handwritten digits.

One small residual CNN (keras_reg.blocks) is trained on a few hundred 8x8 digits — few enough to
overfit — once without regularization and once with each technique: L2 (keras_reg.regularizers),
dropout, drop path (stochastic depth), MixupCutMix, label smoothing, all of them together, and
decoupled weight decay with AdamW (the optimizer route: `weight_decay` shrinks every weight by
`lr·wd` outside Adam's scaling, unlike an L2 penalty). The same initial weights and data order are
used for every run.

It prints a table of the *clean* cross-entropy and accuracy on the training set and the test set
at the end (the training targets of Mixup and label smoothing are soft, and an L2 loss contains
the penalty, so the table re-evaluates everything on one-hot targets without penalty), the gap
test − train, and saves `learning_curves.png`: train vs test loss per epoch for each technique —
the picture in which overfitting (the curves part) and its cure (they stay together) are seen.

    python examples/overfitting_digits.py --train-size 300 --epochs 60 --out overfitting_out
"""

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_reg import callbacks, regularizers  # noqa: E402
from keras_reg.blocks import conv_block, residual_block  # noqa: E402
from keras_reg.data import MixupCutMix, load, smooth_labels  # noqa: E402
from keras_reg.layers import InvertedDropout, drop_path_rates  # noqa: E402

NUM_CLASSES = 10
DIGITS_TRAIN_SIZE = 1437  # examples in keras_reg.data.load("digits", "train")

# technique -> what it switches on. Strengths are common defaults, not tuned
# (`keras-reg search` tunes them).
TECHNIQUES = {
    "none": {},
    "l2": {"l2": 1e-3},
    "dropout": {"dropout": 0.3},
    "drop_path": {"drop_path": 0.3},
    "mixup_cutmix": {"mix": True},
    "label_smoothing": {"smoothing": 0.1},
    "all": {"l2": 1e-3, "dropout": 0.3, "drop_path": 0.3, "mix": True, "smoothing": 0.1},
    "adamw": {"adamw": 0.3},
}


def build_model(width=32, l2=None, dropout=0.0, drop_path=0.0):
    """Conv block, two residual blocks (drop path rising linearly), pooling, dense head.

    GroupNorm, not BatchNorm: with ten steps per epoch BatchNorm's moving statistics lag for
    tens of epochs, and the inference-mode learning curves would show that lag instead of
    overfitting. GroupNorm has no moving statistics.
    """
    kernel_regularizer = regularizers.l2(l2) if l2 else None
    rates = drop_path_rates(2, drop_path) if drop_path else [0.0, 0.0]
    inputs = keras.Input((8, 8, 1))
    common = dict(norm="group", groups=8, kernel_regularizer=kernel_regularizer)
    x = conv_block(inputs, width, name="stem", **common)
    x = residual_block(x, width, drop_path=rates[0], dropout=dropout, name="res1", **common)
    x = residual_block(x, 2 * width, strides=2, drop_path=rates[1], dropout=dropout,
                       name="res2", **common)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = InvertedDropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, kernel_regularizer=kernel_regularizer,
                                 name="head")(x)
    return keras.Model(inputs, outputs, name="digits_resnet")


def _arrays(dataset):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(xs), np.concatenate(ys)


def _clean_scores(model, x, y):
    """Cross-entropy (no penalty, one-hot targets) and accuracy of the model at inference."""
    logits = model(x, training=False)
    ce = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
    accuracy = np.mean(np.argmax(keras.ops.convert_to_numpy(logits), axis=-1) == y)
    return float(np.mean(keras.ops.convert_to_numpy(ce))), float(accuracy)


class CleanCurves(keras.callbacks.Callback):
    """Records clean train / test loss and accuracy after every epoch (the learning curves)."""

    def __init__(self, train, test):
        super().__init__()
        self.train, self.test = train, test
        self.curves = {"train_loss": [], "test_loss": [], "train_acc": [], "test_acc": []}

    def on_epoch_end(self, epoch, logs=None):
        for split, (x, y) in (("train", self.train), ("test", self.test)):
            loss, acc = _clean_scores(self.model, x, y)
            self.curves[f"{split}_loss"].append(loss)
            self.curves[f"{split}_acc"].append(acc)


def train_one(name, options, train_ds, train_arrays, test_arrays, epochs, seed, width):
    keras.utils.set_random_seed(seed)
    model = build_model(width, options.get("l2"), options.get("dropout", 0.0),
                        options.get("drop_path", 0.0))
    to_one_hot = lambda x, y: (x, tf.one_hot(y, NUM_CLASSES))  # noqa: E731
    dataset = train_ds
    extra = []
    if options.get("mix"):
        # 8x8 images: the pixel work is tiny, XLA compilation would cost more than it saves.
        mix = MixupCutMix(NUM_CLASSES, mixup_alpha=0.2, cutmix_alpha=1.0, label_smoothing=0.0,
                          seed=seed, jit_compile=False)
        dataset = dataset.map(mix)
        # Train the last fifth of the epochs on clean data, as timm's mixup_off_epoch.
        extra.append(callbacks.MixupScheduler(mix, off_epoch=max(1, int(0.8 * epochs))))
    else:
        dataset = dataset.map(to_one_hot)
    if options.get("smoothing"):
        eps = options["smoothing"]
        dataset = dataset.map(lambda x, y: (x, smooth_labels(y, NUM_CLASSES, eps)))
    if options.get("adamw"):
        optimizer = keras.optimizers.AdamW(1e-3, weight_decay=options["adamw"])
        # Decoupled decay on kernels only: not on biases and normalization parameters.
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    else:
        optimizer = keras.optimizers.Adam(1e-3)
    model.compile(optimizer, keras.losses.CategoricalCrossentropy(from_logits=True))
    curves = CleanCurves(train_arrays, test_arrays)
    logger = callbacks.RegularizationLogger()
    start = time.perf_counter()
    history = model.fit(dataset.prefetch(2), epochs=epochs, verbose=0,
                        callbacks=[logger, *extra, curves])
    seconds = time.perf_counter() - start
    c = curves.curves
    return {
        "technique": name,
        "train_acc": c["train_acc"][-1],
        "test_acc": c["test_acc"][-1],
        "train_loss": c["train_loss"][-1],
        "test_loss": c["test_loss"][-1],
        "gap": c["test_loss"][-1] - c["train_loss"][-1],
        "best_test_loss": min(c["test_loss"]),
        "reg_loss": history.history["reg_loss"][-1],
        "seconds": seconds,
        "curves": c,
    }


def format_table(rows):
    header = ("| technique | train acc | test acc | train loss | test loss | gap (test − train) "
              "| best test loss | penalty |")
    lines = [header, "|" + "---|" * 8]
    for r in rows:
        penalty = f"{r['reg_loss']:.4f}" if r["reg_loss"] else "-"
        lines.append(
            f"| {r['technique']} | {r['train_acc']:.3f} | {r['test_acc']:.3f} | "
            f"{r['train_loss']:.4f} | {r['test_loss']:.4f} | {r['gap']:.4f} | "
            f"{r['best_test_loss']:.4f} | {penalty} |"
        )
    return "\n".join(lines)


def plot_curves(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 4
    nrows = -(-len(rows) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.2 * nrows), sharey=True,
                             squeeze=False)
    for ax, r in zip(axes.flat, rows):
        epochs = np.arange(1, len(r["curves"]["train_loss"]) + 1)
        ax.plot(epochs, r["curves"]["train_loss"], label="train")
        ax.plot(epochs, r["curves"]["test_loss"], label="test", linestyle="--")
        ax.set_title(f"{r['technique']} (gap {r['gap']:.3f})")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(rows):]:
        ax.axis("off")
    axes[0][0].set_ylabel("cross-entropy (clean)")
    axes[0][0].legend()
    fig.suptitle("Train vs test loss on a few hundred digits: overfitting and its cures")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-size", type=int, default=300,
                        help="number of training digits (default 300)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=32, help="channels of the first block")
    parser.add_argument("--techniques", default=",".join(TECHNIQUES),
                        help="comma-separated subset of: " + ", ".join(TECHNIQUES))
    parser.add_argument("--out", default="overfitting_digits_out",
                        help="directory for learning_curves.png, results.md, results.json")
    args = parser.parse_args(argv)
    if not 10 <= args.train_size <= DIGITS_TRAIN_SIZE:
        parser.error(f"--train-size must be between 10 and {DIGITS_TRAIN_SIZE} (the digits "
                     f"training split), got {args.train_size}")
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.width < 8 or args.width % 8:
        # Group norm with 8 groups needs a channel count divisible by 8.
        parser.error(f"--width must be a positive multiple of 8, got {args.width}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out must be a folder, but {args.out} is a file")
    unknown = [t for t in args.techniques.split(",") if t not in TECHNIQUES]
    if unknown:
        parser.error(f"unknown technique(s) {', '.join(unknown)}; choose from "
                     + ", ".join(TECHNIQUES))
    return args


def main(argv=None):
    """Runs the comparison; returns the table rows (dicts, learning curves included)."""
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_ds, test_ds = load("digits", (f"train[:{args.train_size}]", "test"),
                             batch_size=args.batch_size, seed=args.seed)
    train_arrays = _arrays(load("digits", f"train[:{args.train_size}]", batch_size=256,
                                shuffle=False))
    test_arrays = _arrays(test_ds)
    rows = []
    for name in args.techniques.split(","):
        row = train_one(name, TECHNIQUES[name], train_ds, train_arrays, test_arrays,
                        args.epochs, args.seed, args.width)
        rows.append(row)
        print(f"{name:>16}: test acc {row['test_acc']:.3f}, gap {row['gap']:.4f} "
              f"({row['seconds']:.1f} s)", flush=True)
    table = format_table(rows)
    command = "python examples/overfitting_digits.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print()
    print(f"{len(train_arrays[1])} training digits, {len(test_arrays[1])} test digits, "
          f"{args.epochs} epochs, seed {args.seed}")
    print(table)
    plot_curves(rows, out / "learning_curves.png")
    (out / "results.md").write_text(f"`{command.strip()}`\n\n{table}\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print(f"\nSaved {out / 'learning_curves.png'} and {out / 'results.md'}")
    return rows


if __name__ == "__main__":
    main()
