"""The command line's arguments: argparse and every check that needs no data and no TensorFlow.

Help, `--version` and every argument error answer before TensorFlow is imported: this module
imports neither TensorFlow nor Keras (nor anything of keras_reg that does).
"""

import argparse
import os

from keras_reg import _validation

DEFAULTS = dict(dataset="digits", tuner="bayesian", max_trials=10, epochs=30, batch_size=32,
                seed=0, out="keras_reg_out", objective="val_calibrated_loss", repeats=1,
                selection_margin=1.0, ensemble=3)
QUICK = dict(max_trials=3, epochs=2)

SPACE_HELP = """\
--space syntax: NAME=SPEC items, e.g. --space l2=1e-6:1e-2 dropout=0:0.5 norm=batch
  mixup_alpha=off. SPEC is a range low:high (log: or lin: prefix to choose the sampling), a
  fixed value, a comma list of choices (norm=batch,group,none), or off. Names: l2, dropout,
  drop_path, mixup_alpha, cutmix_alpha, label_smoothing, norm (and the space's other
  dimensions, see keras_reg.tuning.RegularizationSpace).

--model contract: --model module:function or path/to/file.py:function names a function
  build_model(reg) that receives a keras_reg.tuning.Regularization (reg.l2 via
  reg.kernel_regularizer(), reg.dropout, reg.drop_path_rates(depth), reg.norm, ...) and returns
  a keras.Model (compiled or not) taking the data's images and ending in one output per class
  (softmax; targets are one-hot). A builder that also declares parameters named input_shape
  and/or num_classes receives the data's values there. It is built once with the space's
  start values before the search, to check it.

Validation is held out from the training data; test is the dataset's own test split (or a
held-out part for --data without one). Everything is written under --out; rerunning the same
command resumes."""


class UserError(Exception):
    """A mistake of the user's, reported as one line (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(message)


def _checked(check, convert):
    """An argparse type: `check(convert(text))`, a `keras_reg._validation` check; its error
    becomes argparse's one line ("argument --epochs: expected an integer >= 1. Received: ...")."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = text  # the check rejects it as the wrong type, naming the text
        try:
            return check(value)
        except (TypeError, ValueError) as error:
            # argparse names the flag itself: keep the check's "expected ... Received: ..." part.
            raise argparse.ArgumentTypeError(str(error).split("`: ", 1)[-1]) from None
    return parse


def _at_least(flag, low):
    """An argparse type: an integer >= `low`."""
    return _checked(lambda value: _validation.check_int(flag, value, low=low), int)


def _positive(flag):
    return _at_least(flag, 1)


_seed = _checked(lambda value: _validation.check_seed(value, name="--seed"), int)
_margin = _checked(lambda value: _validation.check_float("--selection-margin", value, low=0.0),
                   float)


def _objective(text):
    name, _, direction = text.partition(":")
    if not name or (direction and direction not in ("min", "max")):
        raise argparse.ArgumentTypeError(
            f"expected NAME or NAME:min or NAME:max. Received: --objective={text!r}")
    return text


def _space_item(text):
    """`NAME=SPEC`, checked for its form; the names and values together by `check_search`
    (`RegularizationSpace.parse`, which imports no TensorFlow)."""
    name, sep, spec = text.partition("=")
    if not sep or not name.strip().isidentifier() or not spec.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME=SPEC items such as dropout=0:0.5 (see --help). Received: {text!r}")
    return text


def split_model_spec(spec):
    """`(target, function)` of `--model module:function` or `file.py:function`."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise UserError(f"--model expects module:function or path/to/file.py:function, got "
                        f"{spec!r}")
    return target, name


def is_file_target(target):
    return target.endswith(".py") or os.sep in target


def _existing(flag):
    """An argparse type: a path that exists."""
    def parse(text):
        if not os.path.exists(text):
            raise argparse.ArgumentTypeError(f"no such file or folder: {text!r}")
        return text
    return parse


def _version():
    from keras_reg import __version__

    return __version__


def build_parser():
    parser = _Parser(prog="keras-reg", description="Regularization toolkit for Keras 3.")
    parser.add_argument("--version", action="version", version=f"keras-reg {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="{search,preview}")
    s = sub.add_parser("search", help="search regularization strength; compare with references",
                       epilog=SPACE_HELP, formatter_class=_Formatter)
    data = s.add_mutually_exclusive_group()
    data.add_argument("--dataset", default=DEFAULTS["dataset"],
                      help="'digits' (embedded, no download) or a TensorFlow Datasets name")
    data.add_argument("--data", metavar="PATH", default=None, type=_existing("--data"),
                      help="your own data: a folder of class sub-folders of images, or an "
                           ".npz with x_train, y_train (optionally x_val, y_val, x_test, "
                           "y_test): images, feature vectors (N, features) or, with "
                           "--sequences, sequences")
    s.add_argument("--data-dir", metavar="DIR", default=None,
                   help="TensorFlow Datasets data directory for --dataset (default: TFDS's, "
                        "~/tensorflow_datasets or $TFDS_DATA_DIR): where it is downloaded, or "
                        "a folder where TFDS already prepared it, for machines offline")
    s.add_argument("--sequences", action="store_true",
                   help="read the rank-3 arrays of an --data .npz as sequences (N, steps, "
                        "channels) for a 1-D model, not as grayscale images (N, height, width); "
                        "rank-2 arrays are always feature vectors (N, features)")
    s.add_argument("--image-size", nargs=2, type=_positive("--image-size"), metavar=("H", "W"),
                   default=None, help="resize --data images to H x W")
    s.add_argument("--model", metavar="MODULE:FUNCTION", default=None,
                   help="your model builder (module:function or file.py:function); default: "
                        "the built-in CNN sized from the data")
    s.add_argument("--space", nargs="+", metavar="NAME=SPEC", default=None, type=_space_item,
                   help="override search dimensions (syntax below)")
    s.add_argument("--objective", type=_objective, default=DEFAULTS["objective"],
                   help="logged metric to optimize, NAME[:min|max]; default: the "
                        "validation loss after temperature scaling (val_loss is scored "
                        "without the weight penalty)")
    s.add_argument("--selection-margin", type=_margin, default=DEFAULTS["selection_margin"],
                   metavar="Z", help="hand over a searched trial only if it leads the best "
                   "reference or probe by at least Z paired standard errors on validation; "
                   "0: the best objective")
    s.add_argument("--tuner", default=DEFAULTS["tuner"],
                   choices=("bayesian", "random"), help="KerasTuner's oracle")
    s.add_argument("--max-trials", type=_positive("--max-trials"), default=None,
                   help=f"number of trials, the first 5 the references and probes (default: "
                        f"{DEFAULTS['max_trials']})")
    s.add_argument("--epochs", type=_positive("--epochs"), default=None,
                   help=f"epochs per trial (early stopping inside), and for the retrained models "
                        f"(default: {DEFAULTS['epochs']}); an epoch is at least 32 steps (small "
                        "data: several passes): with the built-in CNN on 2 CPU cores about 1 s "
                        "on 8x8 digits, 4-5 s on 28x28 images")
    s.add_argument("--quick", action="store_true",
                   help=f"a smoke run: {QUICK['max_trials']} trials of {QUICK['epochs']} epochs "
                        "(one to two minutes on digits, with the refits); --max-trials / "
                        "--epochs still apply")
    s.add_argument("--train-size", type=_positive("--train-size"), default=None,
                   help="train on N examples only (where overfitting shows)")
    s.add_argument("--batch-size", type=_positive("--batch-size"),
                   default=DEFAULTS["batch_size"], help="batch size")
    s.add_argument("--seed", type=_seed, default=DEFAULTS["seed"],
                   help="seed of the tuner, the models and the data order")
    s.add_argument("--repeats", type=_positive("--repeats"), default=DEFAULTS["repeats"],
                   help="retrain the best values and each reference under N seeds (seed, "
                        "seed+1, ...) and report the paired differences")
    s.add_argument("--no-refit", dest="refit", action="store_false",
                   help="keep the trials' models (trained on the training split only) instead "
                        "of training each reported model again on training + validation data")
    s.add_argument("--ensemble", type=_at_least("--ensemble", 0), default=DEFAULTS["ensemble"],
                   metavar="K", help="also write ensemble_model.keras, the mean prediction of "
                                     "the K best trials' models (K forward passes per "
                                     "prediction); 0 or 1: none")
    s.add_argument("--out", default=DEFAULTS["out"], help="folder for everything it writes")
    s.add_argument("--overwrite", action="store_true",
                   help="start over in --out instead of resuming")
    s.add_argument("--tensorboard", metavar="DIR", default=None,
                   help="write every trial's curves and hyperparameters for TensorBoard")
    talk = s.add_mutually_exclusive_group()
    talk.add_argument("--verbose", action="store_true",
                      help="also show the epochs inside each trial and the retraining")
    talk.add_argument("--quiet", action="store_true",
                      help="print nothing but errors and the final table")
    p = sub.add_parser("preview", help="a picture grid of MixupCutMix / Cutout / augment")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=_seed, default=0)
    return parser


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default where it has one; keeps the epilog's line breaks."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return f"{action.help} (default: {action.default})"


def check_out(out):
    """Fails early if `out` cannot be created or written; creates nothing."""
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--out {out!r} is a file, not a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to --out {out!r}: {parent!r} is not a writable folder")


def check_search(args):
    """The checks of `search`'s arguments that look at several flags or at the disk, before
    anything is imported or written."""
    check_out(args.out)
    if args.image_size is not None and args.data is None:
        raise UserError("--image-size applies to --data only (a TFDS dataset keeps its size)")
    if args.data_dir is not None and args.data is not None:
        raise UserError("--data-dir applies to --dataset only (--data reads your files)")
    if args.model is not None:
        target, _ = split_model_spec(args.model)
        if is_file_target(target) and not os.path.isfile(target):
            raise UserError(f"--model {args.model!r}: no file {target!r}")
    if args.space:
        from keras_reg.tuning.space import RegularizationSpace  # no TensorFlow

        try:
            RegularizationSpace.parse(args.space)
        except (ValueError, TypeError) as e:
            raise UserError(f"--space: {str(e).splitlines()[0]}") from None


def parse(argv):
    """`(parser, args)`: `argv` parsed and checked; `args.argv` is `argv` itself."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv)
    if args.command == "search":
        defaults = QUICK if args.quick else DEFAULTS
        for name in ("max_trials", "epochs"):
            if getattr(args, name) is None:
                setattr(args, name, defaults[name])
        check_search(args)
    return parser, args
