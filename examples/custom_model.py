"""Your own model in the regularization search: a small CNN that reads a trial's `reg`.

`build_model(reg)` is the contract of `keras-reg search --model FILE.py:build_model` and of
`keras_reg.tuning.search(build_model=...)`: it receives a `keras_reg.tuning.Regularization`
holding one trial's values and returns a Keras model (compiled or not; an uncompiled one is
compiled by the search) that takes the data's images and ends in a softmax over the classes.
The builder reads the *model-side* values:

- `reg.kernel_regularizer()`: the L2 penalty λ·Σw² on every kernel (None when λ = 0),
- `reg.norm`: `"batch"`, `"group"` or None — which normalization layer follows each conv,
- `reg.drop_path_rates(depth)`: the stochastic-depth rate of each residual block (linear rule),
- `reg.dropout`: the dropout rate before the classifier.

The *data-side* values (`reg.augment`, `reg.input_noise`, `reg.flip`, `reg.mixup_alpha`,
`reg.cutmix_alpha`, `reg.label_smoothing`) are applied by the search's training pipeline: a
builder does not read them.

`build_model` also declares parameters named `input_shape` and `num_classes`, so the search
passes the data's image shape and number of classes there: the same file serves the digits and
your `--data` (any image size, any number of classes) unchanged. `INPUT_SHAPE` and
`NUM_CLASSES` (the embedded 8x8 digits) are only the defaults of a call with `reg` alone:

    keras-reg search --model examples/custom_model.py:build_model --max-trials 4 --epochs 10
    keras-reg search --data my_images/ --model examples/custom_model.py:build_model

It also runs on its own, training one model with the values given on the command line, on the
digits or on your data (`--data` a folder of class sub-folders or a `.npz`):

    python examples/custom_model.py --epochs 2
    python examples/custom_model.py --l2 1e-4 --dropout 0.2 --drop-path 0.1 --norm group
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_reg.layers import GroupNorm, InvertedDropout, StochasticDepth  # noqa: E402
from keras_reg.tuning import Regularization  # noqa: E402

INPUT_SHAPE = (8, 8, 1)
NUM_CLASSES = 10


def _norm(x, norm, name):
    """The trial's normalization layer (or none) after a convolution."""
    if norm == "batch":
        return keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    if norm == "group":
        return GroupNorm(groups=min(8, x.shape[-1]), name=f"{name}_gn")(x)
    return x


def build_model(reg, input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES, width=32, depth=2):
    """A stem convolution, `depth` residual blocks with stochastic depth, a softmax head.

    Args:
        reg: a `keras_reg.tuning.Regularization` (the trial's values).
        input_shape: `(height, width, channels)` of the images.
        num_classes: the number of classes (outputs of the softmax).
        width: channels of the convolutions.
        depth: number of residual blocks.

    Returns:
        An uncompiled `keras.Model`.
    """
    regularizer = reg.kernel_regularizer()  # None when reg.l2 == 0
    conv = dict(padding="same", kernel_regularizer=regularizer,
                use_bias=reg.norm is None)  # a normalization layer has its own shift
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, 3, name="stem", **conv)(inputs)
    x = keras.layers.ReLU()(_norm(x, reg.norm, "stem"))
    for i, rate in enumerate(reg.drop_path_rates(depth)):
        name = f"block{i + 1}"
        r = keras.layers.Conv2D(width, 3, name=f"{name}_conv1", **conv)(x)
        r = keras.layers.ReLU()(_norm(r, reg.norm, f"{name}_1"))
        r = keras.layers.Conv2D(width, 3, name=f"{name}_conv2", **conv)(r)
        r = _norm(r, reg.norm, f"{name}_2")
        # shortcut + residual, the residual dropped per sample with probability `rate`.
        x = keras.layers.ReLU()(StochasticDepth(rate, name=f"{name}_drop_path")([x, r]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    if reg.dropout:
        x = InvertedDropout(reg.dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax",
                                 kernel_regularizer=regularizer, name="head")(x)
    return keras.Model(inputs, outputs, name="custom_cnn")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", default=None,
                        help="a folder of class sub-folders or a .npz (default: the digits)")
    parser.add_argument("--train-size", type=int, default=None,
                        help="train on this many examples (default: all)")
    parser.add_argument("--width", type=int, default=32, help="channels of the convolutions")
    parser.add_argument("--depth", type=int, default=2, help="number of residual blocks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--l2", type=float, default=0.0, help="L2 strength λ (default 0)")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout rate in [0, 1)")
    parser.add_argument("--drop-path", type=float, default=0.0,
                        help="largest stochastic-depth rate in [0, 1)")
    parser.add_argument("--norm", default="batch", choices=("batch", "group", "none"))
    args = parser.parse_args(argv)
    for flag, value, low in (("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 1),
                             ("--width", args.width, 1), ("--depth", args.depth, 1),
                             ("--seed", args.seed, 0)):
        if value < low:
            parser.error(f"{flag} must be >= {low}, got {value}")
    if args.train_size is not None and args.train_size < 10:
        parser.error(f"--train-size must be >= 10, got {args.train_size}")
    try:
        args.reg = Regularization(l2=args.l2, dropout=args.dropout, drop_path=args.drop_path,
                                  norm=None if args.norm == "none" else args.norm)
    except (ValueError, TypeError) as error:
        # "Invalid value for argument `drop_path`: ..." -> the flag's spelling.
        parser.error(str(error).replace("`drop_path`", "--drop-path")
                     .replace("`l2`", "--l2").replace("`dropout`", "--dropout"))
    if args.data is not None:
        from keras_reg.data.files import load_files

        try:
            args.files = load_files(args.data, train_size=args.train_size, seed=args.seed)
        except ValueError as error:
            parser.error(f"--data: {error}")
    return args


def load_data(args):
    """`(train, test, info)`: the digits, or the `--data` folder / `.npz`."""
    if args.data is None:
        from keras_reg.data import load

        train_split = "train" if args.train_size is None else f"train[:{args.train_size}]"
        (train, test), info = load("digits", (train_split, "test"), batch_size=args.batch_size,
                                   seed=args.seed, with_info=True)
        return train, test, info
    train, _, test = args.files.datasets(batch_size=args.batch_size)
    return train, test, args.files.info


def main(argv=None):
    """Trains `build_model(reg)` once; returns a dict of results (test accuracy, losses)."""
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    train, test, info = load_data(args)
    model = build_model(args.reg, tuple(info.image_shape), info.num_classes, args.width,
                        args.depth)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(train, epochs=args.epochs, verbose=0, shuffle=False)  # shuffled by load
    test_loss, test_accuracy = model.evaluate(test, verbose=0)
    losses = history.history["loss"]
    print(f"{info.name}: {args.reg.describe()}; after {args.epochs} epochs train loss "
          f"{losses[-1]:.4f}, test loss {test_loss:.4f}, test accuracy {test_accuracy:.4f} "
          f"(chance {1 / info.num_classes:.2f})")
    return {"train_loss": [float(v) for v in losses], "test_loss": float(test_loss),
            "test_accuracy": float(test_accuracy), "num_classes": info.num_classes,
            "params": int(np.sum([np.prod(w.shape) for w in model.trainable_weights]))}


if __name__ == "__main__":
    main()
