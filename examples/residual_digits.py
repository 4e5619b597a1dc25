"""A small residual CNN on the 8x8 digits, regularized with every keras_reg layer.

The network: a stem convolution with weight noise, three residual blocks whose branches are
dropped per sample by `StochasticDepth` at rates rising linearly with depth
(`drop_path_rates`), `GroupNorm` after every convolution (batch-size independent), and
`InvertedDropout` before a weight-noised classifier. It is trained with `model.fit`, saved to a
`.keras` file, exported as a TF SavedModel, and both are reloaded and checked against the
in-memory model's predictions on the test set.

    python examples/residual_digits.py --epochs 30 --out residual_digits_out --seed 0
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from keras_reg.layers import (  # noqa: E402
    GroupNorm,
    InvertedDropout,
    StochasticDepth,
    WeightNoise,
    drop_path_rates,
)


def digits(seed=0):
    """(x_train, y_train), (x_test, y_test): 8x8x1 float32 images in [0, 1], int labels."""
    data = load_digits()
    x = (data.images / 16.0).astype("float32")[..., None]
    y = data.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=seed
    )
    return (x_train, y_train), (x_test, y_test)


def build_model(width=32, depth=3, max_drop_path=0.2, dropout=0.2, weight_noise=0.02, seed=0):
    """The residual CNN; every random layer gets its own seed derived from `seed`."""
    inputs = keras.Input((8, 8, 1))
    x = WeightNoise(keras.layers.Conv2D(width, 3, padding="same"), weight_noise, seed=seed)(inputs)
    x = keras.layers.ReLU()(GroupNorm(groups=8)(x))
    for i, rate in enumerate(drop_path_rates(depth, max_drop_path)):
        r = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        r = keras.layers.ReLU()(GroupNorm(groups=8)(r))
        r = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(r)
        r = GroupNorm(groups=8)(r)
        x = StochasticDepth(rate, seed=seed + 1 + i)([x, r])
        x = keras.layers.ReLU()(x)
        if i == 0:
            x = keras.layers.MaxPooling2D()(x)  # 8x8 -> 4x4
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = InvertedDropout(dropout, seed=seed + 100)(x)
    outputs = WeightNoise(
        keras.layers.Dense(10, activation="softmax"), weight_noise, seed=seed + 101
    )(x)
    return keras.Model(inputs, outputs, name="residual_digits")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    parser.add_argument("--out", default="residual_digits_out", help="folder for the saved models")
    parser.add_argument("--seed", type=int, default=0, help="seed of data split, init and noise")
    parser.add_argument("--width", type=int, default=32,
                        help="channels of the convolutions, a multiple of 8 (default 32)")
    parser.add_argument("--depth", type=int, default=3, help="residual blocks (default 3)")
    args = parser.parse_args(argv)
    if args.width < 8 or args.width % 8:
        # Group norm with 8 groups needs a channel count divisible by 8.
        parser.error(f"--width must be a positive multiple of 8, got {args.width}")
    if args.depth < 1:
        parser.error(f"--depth must be >= 1, got {args.depth}")
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out must be a folder, but {args.out} is a file")
    return args


def main(argv=None):
    args = parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = digits(args.seed)

    model = build_model(width=args.width, depth=args.depth, seed=args.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, verbose=0)
    probs = keras.ops.convert_to_numpy(model(x_test, training=False))
    accuracy = float(np.mean(probs.argmax(-1) == y_test))

    keras_path = os.path.join(args.out, "residual_digits.keras")
    model.save(keras_path)
    reloaded = keras.saving.load_model(keras_path, safe_mode=True)
    reloaded_probs = keras.ops.convert_to_numpy(reloaded(x_test, training=False))

    export_path = os.path.join(args.out, "saved_model")
    model.export(export_path, verbose=False)
    exported = tf.saved_model.load(export_path)  # keep a reference: it owns the variables
    served = exported.serve(tf.constant(x_test)).numpy()

    results = {
        "accuracy": accuracy,
        "reloaded_accuracy": float(np.mean(reloaded_probs.argmax(-1) == y_test)),
        "exported_accuracy": float(np.mean(served.argmax(-1) == y_test)),
        "reloaded_max_diff": float(np.abs(reloaded_probs - probs).max()),
        "exported_max_diff": float(np.abs(served - probs).max()),
        "keras_path": keras_path,
        "export_path": export_path,
    }
    print(
        f"test accuracy {accuracy:.4f} (chance 0.1) after {args.epochs} epochs; "
        f".keras reload {results['reloaded_accuracy']:.4f} "
        f"(max diff {results['reloaded_max_diff']:.1e}), "
        f"SavedModel {results['exported_accuracy']:.4f} "
        f"(max diff {results['exported_max_diff']:.1e}); saved under {args.out}"
    )
    return results


if __name__ == "__main__":
    main()
