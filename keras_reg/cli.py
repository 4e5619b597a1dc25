"""`keras-reg` (also `python -m keras_reg`): search regularization strength, preview transforms.

User errors (bad flag values, unknown dataset, bad data, a broken --model, stale --out) print
one line to stderr and exit with status 2; a search in which no trial completed exits with 1.
"""

import argparse
import importlib
import importlib.util
import os
import shlex
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULTS = dict(dataset="digits", tuner="bayesian", max_trials=10, epochs=30, batch_size=32,
                seed=0, out="keras_reg_out", objective="val_calibrated_loss", repeats=1,
                selection_margin=1.0)

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


def _at_least(name, low):
    """An argparse type: an integer >= `low`, or a one-line error naming `name`."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            what = "a positive integer" if low == 1 else f"an integer >= {low}"
            raise argparse.ArgumentTypeError(f"{name} expects {what}, got {text!r}")
        return value
    return parse


def _positive(name):
    return _at_least(name, 1)


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed expects a non-negative integer, got {text!r}")
    return value


def _objective(text):
    name, _, direction = text.partition(":")
    if not name or (direction and direction not in ("min", "max")):
        raise argparse.ArgumentTypeError(
            f"--objective expects NAME or NAME:min or NAME:max, got {text!r}")
    return text


def _margin(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"--selection-margin expects a number >= 0, got {text!r}")
    return value


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
    data.add_argument("--data", metavar="PATH", default=None,
                      help="your own images: a folder of class sub-folders or an .npz with "
                           "x_train, y_train (optionally x_val, y_val, x_test, y_test)")
    s.add_argument("--image-size", nargs=2, type=_positive("--image-size"), metavar=("H", "W"),
                   default=None, help="resize --data images to H x W")
    s.add_argument("--model", metavar="MODULE:FUNCTION", default=None,
                   help="your model builder (module:function or file.py:function); default: "
                        "the built-in CNN sized from the data")
    s.add_argument("--space", nargs="+", metavar="NAME=SPEC", default=None,
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
                   choices=("hyperband", "bayesian", "random"), help="KerasTuner's tuner")
    s.add_argument("--max-trials", type=_positive("--max-trials"),
                   default=DEFAULTS["max_trials"], help="number of trials")
    s.add_argument("--epochs", type=_positive("--epochs"), default=DEFAULTS["epochs"],
                   help="epochs per trial (early stopping inside), and for the retrained models; "
                        "an epoch is at least 32 steps (small data: several passes)")
    s.add_argument("--train-size", type=_positive("--train-size"), default=None,
                   help="train on N examples only (where overfitting shows)")
    s.add_argument("--folds", type=_at_least("--folds", 2), default=None, metavar="K",
                   help="k-fold cross-validation of every trial over the training and "
                        "validation data pooled; K times the trial cost. The trial models "
                        "and the report use fold 0's split. Off by default: on 200 digits it "
                        "chose no better than one validation split (BENCHMARKS.md)")
    s.add_argument("--batch-size", type=_positive("--batch-size"),
                   default=DEFAULTS["batch_size"], help="batch size")
    s.add_argument("--seed", type=_seed, default=DEFAULTS["seed"],
                   help="seed of the tuner, the models and the data order")
    s.add_argument("--repeats", type=_positive("--repeats"), default=DEFAULTS["repeats"],
                   help="retrain the best values and each reference under N seeds (seed, "
                        "seed+1, ...) and report the paired differences")
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


def _check_out(out):
    """Fails early if `out` cannot be created or written; creates nothing."""
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--out {out!r} is a file, not a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to --out {out!r}: {parent!r} is not a writable folder")


def _quiet_tensorflow():
    """Imports TensorFlow with its start-up chatter (C++ logs written to fd 2) silenced."""
    import warnings

    warnings.filterwarnings("ignore")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_logical_devices()  # device initialisation logs too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().setLevel("ERROR")  # retracing notices of the retrained models
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class Data:
    """The data of a run: `make(seed)` gives new `(train, validation, test)` datasets."""

    def __init__(self, make, info, description, name):
        self.make, self.info, self.description, self.name = make, info, description, name


def load_data(args):
    """The data of `--dataset` or `--data`, checked before anything is written."""
    if args.image_size is not None and args.data is None:
        raise UserError("--image-size applies to --data only (a TFDS dataset keeps its size)")
    if args.data is not None:
        from keras_reg.data.files import load_files

        try:
            files = load_files(args.data, image_size=args.image_size,
                               train_size=args.train_size, seed=args.seed)
        except (ValueError, TypeError, OSError) as e:
            raise UserError(f"--data: {_first_line(e)}") from None
        info = files.info
        n = info.num_examples
        description = (f"{info.name} {tuple(info.image_shape)}, {info.num_classes} classes: "
                       f"{n['train']} training, {n['validation']} validation, {n['test']} test "
                       f"examples; {getattr(info, 'description', '')}").rstrip("; ")
        return Data(lambda seed: files.datasets(args.batch_size), info, description, args.data)
    from keras_reg.data import load

    try:
        _, info = load(args.dataset, "test", batch_size=args.batch_size, with_info=True)
    except Exception as e:  # unknown dataset, missing split, no network for TFDS ...
        raise UserError(f"cannot load --dataset {args.dataset!r}: {_first_line(e)}") from None
    total = info.num_examples["train"]
    n_val = max(1, int(round(total * 0.2)))
    n_fit = total - n_val
    if args.train_size is not None:
        if args.train_size > n_fit:
            raise UserError(
                f"--train-size {args.train_size} is larger than the {n_fit} training examples "
                f"of {args.dataset} (the last 20 % of its train split is kept for validation)")
        n_fit = args.train_size
    splits = (f"train[:{n_fit}]", f"train[{total - n_val}:]", "test")

    def make(seed):
        return load(args.dataset, splits, batch_size=args.batch_size, seed=seed)

    description = (
        f"{info.name} {tuple(info.image_shape)}, {info.num_classes} classes: {n_fit} training "
        f"examples (the first {n_fit} of the train split), {n_val} validation (the last 20 % "
        f"of the train split, held out; the search's objective is measured on it), "
        f"{info.num_examples['test']} test (the dataset's own test split, never seen by the "
        "search)")
    return Data(make, info, description, args.dataset)


def load_builder(spec, reg, info):
    """The `build_model` of `--model module:function` or `file.py:function`, checked by building
    it once with `reg`."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise UserError(f"--model expects module:function or path/to/file.py:function, got "
                        f"{spec!r}")
    try:
        if target.endswith(".py") or os.sep in target:
            if not os.path.isfile(target):
                raise UserError(f"--model {spec!r}: no file {target!r}")
            module_spec = importlib.util.spec_from_file_location(
                f"_keras_reg_user_model_{abs(hash(os.path.abspath(target)))}", target)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:  # as `python -m` would find a module here
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(target)
    except UserError:
        raise
    except Exception as e:  # an error inside the user's module, or a missing module
        raise UserError(f"--model {spec!r}: cannot import {target!r}: "
                        f"{type(e).__name__}: {_first_line(e)}") from None
    if not hasattr(module, name):
        raise UserError(f"--model {spec!r}: {target!r} has no function {name!r}")
    builder = getattr(module, name)
    if not callable(builder):
        raise UserError(f"--model {spec!r}: {name!r} is a {type(builder).__name__}, not a "
                        "function")
    import keras

    from keras_reg.tuning.hypermodel import call_builder

    try:
        model = call_builder(builder, reg, info.image_shape, info.num_classes)
    except Exception as e:
        raise UserError(f"--model {spec!r}: {name}(reg) failed: {type(e).__name__}: "
                        f"{_first_line(e)}") from None
    if not isinstance(model, keras.Model):
        raise UserError(f"--model {spec!r}: {name}(reg) returned a {type(model).__name__}, "
                        "expected a keras.Model")
    try:
        output = tuple(model.compute_output_shape((None, *info.image_shape)))
    except Exception as e:
        raise UserError(f"--model {spec!r}: the model does not take images of shape "
                        f"{tuple(info.image_shape)}: {_first_line(e)}") from None
    if output[-1:] != (info.num_classes,):
        raise UserError(f"--model {spec!r}: the model's output has shape {output}, expected "
                        f"(None, {info.num_classes}): one output per class")
    keras.backend.clear_session()
    return builder


def make_space(items):
    from keras_reg.tuning import RegularizationSpace

    if not items:
        return RegularizationSpace()
    try:
        return RegularizationSpace.parse(items)
    except (ValueError, TypeError) as e:
        raise UserError(f"--space: {_first_line(e)}") from None


def references(space):
    """`{"none", "start", "recipe"}`: the references retrained beside the best values."""
    from keras_reg.tuning.space import references as make_references

    return dict(make_references(space))


def settings(args):
    """What a rerun in the same --out must share with the first run to resume, beyond what the
    tuner records itself (space, tuner, objective, epochs, seed, max_trials)."""
    return {
        "data": os.path.abspath(args.data) if args.data else None,
        "dataset": None if args.data else args.dataset, "image_size": args.image_size,
        "model_spec": args.model, "train_size": args.train_size,
        "batch_size": args.batch_size, "folds": args.folds,
        # The tuner learns the epochs only when its search starts; given here too, a rerun
        # with other --epochs and another --tuner names both in one line.
        "epochs": args.epochs,
    }


FLAGS = {"data": "--data", "dataset": "--dataset", "image_size": "--image-size",
         "model": "--model", "model_spec": "--model", "patience": "--epochs (patience)",
         "input_shape": "--image-size (image shape)", "num_classes": "--data (classes)",
         "space": "--space", "objective": "--objective", "tuner": "--tuner",
         "max_trials": "--max-trials", "epochs": "--epochs", "train_size": "--train-size",
         "batch_size": "--batch-size", "seed": "--seed", "folds": "--folds"}


def _mismatch_line(error, out):
    named = []
    for key, (old, new) in error.differences.items():
        if isinstance(old, dict) and isinstance(new, dict):  # the space: only what differs
            named += [f"{FLAGS.get(key, key)} {k}: {_show(old.get(k))} → {_show(new.get(k))}"
                      for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        else:
            named.append(f"{FLAGS.get(key, key)} {_show(old)} → {_show(new)}")
    named = "; ".join(named)
    return (f"--out {out!r} holds a search with other settings ({named}); rerun with "
            "--overwrite to start over, or choose another --out")


def _show(value):
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _progress_line(record, n, total):
    from keras_reg.tuning.report import describe, fmt

    n = getattr(record, "number", None) or n
    label = getattr(record, "label", None)
    if record.status == "COMPLETED" and record.objective is not None:
        result = fmt(record.objective)
    else:
        result = record.status + (f" ({record.message})" if record.message else "")
    return (f"trial {n}/{total}" + (f" [{label}]" if label else "") + f"  "
            f"{describe(record.regularization)}  objective {result}  {record.epochs} epochs  "
            f"{fmt(record.seconds)} s")


def _is_worker():
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in tuner_id


def run_search(args):
    _check_out(args.out)
    created = not os.path.exists(args.out)
    _quiet_tensorflow()
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    from keras_reg.tuning import SearchError, SettingsMismatchError, search

    space = make_space(args.space)
    _check_recorded_settings(args, space)
    data = load_data(args)
    info = data.info
    builder = None
    if args.model is not None:
        builder = load_builder(args.model, space.start(), info)
    verbose = 2 if args.verbose else 0
    command = "keras-reg " + " ".join(shlex.quote(a) for a in args.argv)
    say(f"keras-reg search: {data.description}")
    say(f"tuner {args.tuner}, {args.max_trials} trials x <= {args.epochs} epochs; writing to "
        f"{args.out}")
    start = time.perf_counter()
    train, val, _ = data.make(args.seed)
    options = dict(settings=settings(args), tensorboard_dir=args.tensorboard,
                   on_resume=lambda done, total: say(f"resuming: {done} of {total} trials done"))
    try:
        result = search(
            builder, train=train, validation=val, space=space, tuner=args.tuner,
            objective=args.objective, max_trials=args.max_trials, epochs=args.epochs,
            directory=os.path.join(args.out, "tuner"), project_name="search",
            overwrite=args.overwrite, seed=args.seed, num_classes=info.num_classes,
            verbose=verbose, batch_size=args.batch_size, selection_margin=args.selection_margin,
            folds=args.folds,
            progress=None if args.quiet else (lambda r, n, t: say(_progress_line(r, n, t))),
            **options)
    except SearchError as e:
        _discard(args.out, created)
        print(f"keras-reg: error: {_first_line(e)}", file=sys.stderr)
        return 1
    except SettingsMismatchError as e:
        raise UserError(_mismatch_line(e, args.out)) from None
    except (ValueError, TypeError) as e:
        _discard(args.out, created)
        raise UserError(_first_line(e)) from None
    search_seconds = time.perf_counter() - start
    if _is_worker():
        say(f"worker {os.environ['KERASTUNER_TUNER_ID']}: ran {len(result.trials)} trial(s)")
        return 0
    return _finish(args, data, space, builder, result, command, search_seconds, start, say,
                   verbose)


def _check_recorded_settings(args, space):
    """Names a settings mismatch with the search in --out before anything is printed or
    loaded (the tuner checks every setting again when it opens the directory)."""
    if args.overwrite:
        return
    from keras_reg.tuning import SettingsMismatchError, _settings

    project = os.path.join(args.out, "tuner", "search")
    differences, _, _ = _settings.differences(
        project, {**settings(args), "tuner": args.tuner, "seed": args.seed,
                  "space": space.get_config()}, free=("max_trials",))
    if differences:
        raise UserError(_mismatch_line(SettingsMismatchError(differences, project), args.out))


def _discard(out, created):
    """Removes an --out this run created when nothing useful was written into it."""
    if created and os.path.isdir(out):
        from keras_reg.tuning.result import read_record

        project = os.path.join(out, "tuner", "search")
        trials = [os.path.join(project, d) for d in (os.listdir(project)
                                                     if os.path.isdir(project) else [])]
        if not any(read_record(t) for t in trials):
            shutil.rmtree(out, ignore_errors=True)


def _finish(args, data, space, builder, result, command, search_seconds, start, say, verbose):
    from keras_reg.tuning import report

    best = result.best_regularization
    say(f"search done in {report.fmt(search_seconds)} s: {len(result.completed)} of "
        f"{len(result.trials)} trials completed; handed over trial {result.best_trial.number} "
        f"({result.objective} {report.fmt(result.best_trial.objective)}): "
        f"{report.describe(best)}")
    regs = dict(references(space), best=best)
    if args.folds:
        # The trial models were trained on fold 0's split: so are the references and repeats
        # of the report (the test split stays the data's own).
        fold_train, fold_validation = result.tuner.fold_data(0)
        make = data.make
        data = Data(lambda seed: (fold_train, fold_validation, make(seed)[2]), data.info,
                    f"{data.description}; {args.folds}-fold cross-validation over training "
                    f"and validation pooled, the models trained on fold 0's split",
                    data.name)
    shown = lambda run: say(f"  {run.name} (seed {run.seed}): test accuracy "  # noqa: E731
                            f"{report.fmt(run.metrics['test_accuracy'])}, loss "
                            f"{report.fmt(run.metrics['test_loss'])}")
    protocol = dict(num_classes=data.info.num_classes, epochs=args.epochs,
                    objective=result.objective, direction=result.direction,
                    patience=max(5, args.epochs // 4), build_model=builder,
                    input_shape=tuple(data.info.image_shape), verbose=verbose,
                    calibrate=True)
    # With one seed the trials already trained the references and the best values.
    chosen = args.repeats == 1 and report.reference_trials(result, list(references(space)))
    if chosen:
        trained = [n for n in regs if n not in chosen]
        say("test figures of the references' trials and of the best trial (each trained "
            "from scratch under the same protocol in the search)"
            + (f"; training {', '.join(trained)} (outside the searched space)" if trained
               else "") + "...")
        comparison = report.from_trials(result, chosen, data.make, seed=args.seed, regs=regs,
                                        progress=shown, **protocol)
    else:
        say(f"retraining {', '.join(regs)} from scratch under the same protocol"
            + (f", {args.repeats} seeds" if args.repeats > 1 else "") + "...")
        comparison = report.compare(regs, data.make, repeats=args.repeats, seed=args.seed,
                                    progress=shown, **protocol)
    first = {name: runs[0] for name, runs in comparison.runs.items()}
    out = args.out
    files = []
    for metric in ("loss", "accuracy"):
        report.plot_curves(first, os.path.join(out, f"curves_{metric}.png"), metric)
        files.append(f"curves_{metric}.png")
    first["best"].model.save(os.path.join(out, "best_model.keras"))
    first["best"].model.export(os.path.join(out, "best_model_savedmodel"), verbose=False)
    files += ["best_model.keras", "best_model_savedmodel/", "tuner/search/"]
    warnings = list(space.edge_warnings(best))
    rep = report.Report(comparison, result, command=command, data=data.description,
                        settings=dict(settings(args), space=space.get_config(),
                                      tuner=args.tuner, objective=args.objective,
                                      epochs=args.epochs, max_trials=args.max_trials,
                                      seed=args.seed, repeats=args.repeats,
                                      selection_margin=args.selection_margin),
                        timings={"search": search_seconds,
                                 "total": time.perf_counter() - start},
                        warnings=warnings,
                        validation=report.validation_advantage(
                            comparison, data.make(args.seed)[1], data.info.num_classes))
    rep.write(out, files)
    print()
    print(rep.console(), flush=True)
    say("wrote " + ", ".join(os.path.join(out, f) for f in ["report.md", "summary.json"]
                             + files))
    return 0


def run_preview(args):
    _quiet_tensorflow()
    from keras_reg.data.preview import make_preview

    try:
        make_preview(args.out, seed=args.seed)
    except (ValueError, TypeError, OSError) as e:
        raise UserError(f"--out: {_first_line(e)}") from None
    print(f"wrote {args.out}")
    return 0


def main(argv=None):
    parser = build_parser()
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == "search":
            return run_search(args)
        return run_preview(args)
    except UserError as e:
        print(f"keras-reg: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keras-reg: interrupted (rerun the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
