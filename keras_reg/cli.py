"""`keras-reg` (also `python -m keras_reg`): search regularization strength, preview transforms.

    keras-reg search [--dataset digits] [--tuner bayesian] [--max-trials 10] [--epochs 30]
                     [--train-size N] [--batch-size 32] [--seed 0] [--out keras_reg_out]
    keras-reg preview --out preview.png

User errors (unknown dataset, bad flag values, unwritable --out) print one line to stderr and
exit with status 2; a search in which no trial completed exits with status 1.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULTS = dict(dataset="digits", tuner="bayesian", max_trials=10, epochs=30, batch_size=32,
                seed=0, out="keras_reg_out")


class UserError(Exception):
    """A mistake of the user's, reported as one line (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(message)


def _positive(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} expects a positive integer, got {text!r}")
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} expects a positive integer, got {text!r}")
        return value
    return parse


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed expects a non-negative integer, got {text!r}")
    return value


def build_parser():
    parser = _Parser(prog="keras-reg", description="Regularization toolkit for Keras 3.")
    sub = parser.add_subparsers(dest="command", metavar="{search,preview}")
    s = sub.add_parser("search", help="search regularization strength; compare with a baseline",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--dataset", default=DEFAULTS["dataset"],
                   help="'digits' (embedded, no download) or a TensorFlow Datasets name")
    s.add_argument("--tuner", default=DEFAULTS["tuner"], choices=("hyperband", "bayesian",
                                                                  "random"),
                   help="KerasTuner's tuner")
    s.add_argument("--max-trials", type=_positive("--max-trials"),
                   default=DEFAULTS["max_trials"], help="number of trials")
    s.add_argument("--epochs", type=_positive("--epochs"), default=DEFAULTS["epochs"],
                   help="epochs per trial (early stopping inside), and for the final models")
    s.add_argument("--train-size", type=_positive("--train-size"), default=None,
                   help="train on the first N examples only (where overfitting shows)")
    s.add_argument("--batch-size", type=_positive("--batch-size"),
                   default=DEFAULTS["batch_size"], help="batch size")
    s.add_argument("--seed", type=_seed, default=DEFAULTS["seed"],
                   help="seed of the tuner, the models and the data order")
    s.add_argument("--out", default=DEFAULTS["out"], help="folder for everything it writes")
    s.add_argument("--quiet", action="store_true", help="no line per trial")
    p = sub.add_parser("preview", help="a picture grid of MixupCutMix / Cutout / augment")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=_seed, default=0)
    return parser


def _check_out(out):
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".keras_reg_write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise UserError(f"cannot write to --out {out!r}: {e.strerror or e}") from None


def _quiet_tensorflow():
    """Imports TensorFlow with its start-up chatter (C++ logs written to fd 2) silenced."""
    import warnings

    warnings.filterwarnings("ignore")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_logical_devices()  # device initialisation logs too
        tf.get_logger().setLevel("ERROR")  # retracing notices of the final evaluations
        try:
            import absl.logging

            absl.logging.set_verbosity(absl.logging.ERROR)
        except ImportError:
            pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _splits(args, info_train):
    """Train / validation split strings: validation is the last 20 % of the train split."""
    n_val = max(1, int(round(info_train * 0.2)))
    n_fit = info_train - n_val
    if args.train_size is not None:
        if args.train_size > n_fit:
            raise UserError(
                f"--train-size {args.train_size} is larger than the {n_fit} training examples "
                f"of {args.dataset} (the last 20 % of its train split is kept for validation)"
            )
        n_fit = args.train_size
    return f"train[:{n_fit}]", f"train[{info_train - n_val}:]", n_fit, n_val


def _load(args):
    from keras_reg.data import load

    try:
        _, info = load(args.dataset, "test", batch_size=args.batch_size, with_info=True)
        train_split, val_split, n_fit, n_val = _splits(args, info.num_examples["train"])
        train, val, test = load(args.dataset, (train_split, val_split, "test"),
                                batch_size=args.batch_size, seed=args.seed)
    except UserError:
        raise
    except Exception as e:  # unknown dataset, missing split, no network for TFDS ...
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load dataset {args.dataset!r}: {message}") from None
    return train, val, test, info, n_fit, n_val


def _progress(record, n, total):
    values = record.regularization.describe()
    if record.status == "COMPLETED" and record.objective is not None:
        result = f"{record.objective:.4f}"
    else:
        result = f"{record.status}" + (f" ({record.message})" if record.message else "")
    print(f"trial {n:>2}/{total}  {values:<80s}  val_data_loss {result}  "
          f"{record.epochs:>3d} epochs  {record.seconds:6.1f}s", flush=True)


def _is_worker():
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in tuner_id


def _is_chief():
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" in os.environ.get(
        "KERASTUNER_TUNER_ID", "")


def run_search(args):
    _check_out(args.out)
    _quiet_tensorflow()
    from keras_reg.tuning import SearchError, search
    from keras_reg.tuning import report

    train, val, test, info, n_fit, n_val = _load(args)
    print(f"keras-reg search: {info.name} {tuple(info.image_shape)}, {info.num_classes} classes; "
          f"{n_fit} train / {n_val} validation / {info.num_examples['test']} test; tuner "
          f"{args.tuner}, {args.max_trials} trials x <= {args.epochs} epochs; writing to "
          f"{args.out}", flush=True)
    start = time.perf_counter()
    patience = max(5, args.epochs // 4)
    try:
        result = search(
            train=train, validation=val, tuner=args.tuner, max_trials=args.max_trials,
            epochs=args.epochs, directory=os.path.join(args.out, "tuner"), project_name="search",
            overwrite=False, seed=args.seed, num_classes=info.num_classes, patience=patience,
            progress=None if args.quiet else _progress,
        )
    except SearchError as e:
        print(f"keras-reg: error: {e}", file=sys.stderr)
        return 1
    search_seconds = time.perf_counter() - start
    if _is_worker():
        print(f"worker {os.environ['KERASTUNER_TUNER_ID']}: ran {len(result.trials)} trial(s)")
        return 0
    best = result.best_regularization
    print(f"search done in {search_seconds:.0f}s: {len(result.completed)}/{len(result.trials)} "
          f"trials completed; best {result.objective} {result.best_trial.objective:.4f} with "
          f"{best.describe()}", flush=True)
    print("retraining the unregularized baseline and the best values from scratch "
          "(same epochs, early stopping and seed)...", flush=True)
    from keras_reg.tuning import Regularization

    def reload(index):  # a fresh dataset per run: the same shuffle order for both models
        return lambda: _load(args)[index]

    runs = report.retrain(
        {"baseline": Regularization.none(), "best": best}, reload(0), reload(1), test,
        num_classes=info.num_classes, epochs=args.epochs, patience=patience, seed=args.seed,
        input_shape=tuple(info.image_shape),
    )
    written = _write_outputs(args, result, runs, info, n_fit, n_val, search_seconds)
    written.append(_write_summary(args, result, runs, search_seconds,
                                  time.perf_counter() - start))
    print()
    print(report.comparison_table(runs))
    print()
    print("best values: " + ", ".join(f"{k}={v}" for k, v in best.to_dict().items()))
    print(f"total time {time.perf_counter() - start:.0f}s; wrote:")
    for path in written:
        print(f"  {path}")
    return 0


def _write_outputs(args, result, runs, info, n_fit, n_val, search_seconds):
    from keras_reg.tuning import report

    out = args.out
    written = [os.path.join(out, "tuner", "search")]
    for metric in ("loss", "accuracy"):
        written.append(report.plot_curves(runs, os.path.join(out, f"curves_{metric}.png"),
                                          metric))
    best_model = runs["best"].model
    keras_path = os.path.join(out, "best_model.keras")
    best_model.save(keras_path)
    saved = os.path.join(out, "best_model_savedmodel")
    best_model.export(saved, verbose=False)
    written += [keras_path, saved]
    md = os.path.join(out, "report.md")
    best = runs["best"].reg
    text = [
        f"# keras-reg search: {info.name}",
        "",
        f"Command: `keras-reg search --dataset {args.dataset} --tuner {args.tuner} "
        f"--max-trials {args.max_trials} --epochs {args.epochs} --batch-size {args.batch_size} "
        f"--seed {args.seed}" + (f" --train-size {args.train_size}" if args.train_size else "")
        + "`",
        "",
        f"Data: {n_fit} training, {n_val} validation (held out from the train split; the "
        f"objective, {result.objective}), {info.num_examples['test']} test examples. Search: "
        f"{len(result.completed)}/{len(result.trials)} trials completed in "
        f"{search_seconds:.0f}s.",
        "",
        "## Baseline vs best (held-out test split)",
        "",
        "Both models are trained from scratch with the same protocol (epochs, early stopping on "
        "the validation data loss with the best weights restored, seed, optimizer); losses are "
        "the cross-entropy of the predictions (the weight penalty is not counted); the gap is "
        "train minus test accuracy on the clean training data.",
        "",
        report.comparison_table(runs),
        "",
        "Best values: " + ", ".join(f"`{k}={v}`" for k, v in best.to_dict().items()),
        "",
        "## Trials",
        "",
        result.to_markdown(),
        "",
        "## Files",
        "",
    ] + [f"- `{os.path.relpath(p, out)}`" for p in written]
    with open(md, "w") as f:
        f.write("\n".join(text) + "\n")
    return [md] + written


def _write_summary(args, result, runs, search_seconds, total_seconds):
    """summary.json: the figures of report.md, machine-readable."""
    import json

    trial_seconds = sum(t.seconds for t in result.trials)
    fit_seconds = sum(t.fit_seconds for t in result.trials)
    summary = {
        "args": {k: v for k, v in vars(args).items() if k != "command"},
        "search_seconds": search_seconds,
        "total_seconds": total_seconds,
        "trials": len(result.trials),
        "completed": len(result.completed),
        "trial_overhead": (trial_seconds - fit_seconds) / trial_seconds if trial_seconds else None,
        "best_values": result.best_regularization.to_dict(),
        "objective": result.objective,
        "best_objective": result.best_trial.objective,
        "runs": {name: dict(run.metrics, epochs=run.epochs) for name, run in runs.items()},
    }
    path = os.path.join(args.out, "summary.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    return path


def run_preview(args):
    _quiet_tensorflow()
    folder = os.path.dirname(os.path.abspath(args.out))
    _check_out(folder)
    from keras_reg.data.preview import make_preview

    make_preview(args.out, seed=args.seed)
    print(f"wrote {args.out}")
    return 0


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
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
