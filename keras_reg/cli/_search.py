"""The work of `keras-reg search` and `keras-reg preview`: the data, the search, the report.

Runs after the arguments are parsed and checked (`keras_reg.cli._parser`). TensorFlow and
keras_reg.tuning are imported inside the functions, when the work starts, so that importing
this module costs nothing.
"""

import importlib
import importlib.util
import os
import shlex
import shutil
import sys
import time
import warnings

from keras_reg import _tf_logging
from keras_reg.cli._parser import UserError, is_file_target, split_model_spec


def _quiet_tensorflow():
    """Imports TensorFlow silenced; the command line also hides Python warnings."""
    warnings.filterwarnings("ignore")
    _tf_logging.import_tensorflow(devices=True)


def rerun_command(argv):
    """The command that reruns (resumes) this search: `argv` without `--overwrite`."""
    def overwrite(arg):  # argparse also takes a unique prefix: --ov, --overw, ...
        return len(arg) >= 4 and "--overwrite".startswith(arg)

    return "keras-reg " + " ".join(shlex.quote(a) for a in argv if not overwrite(a))


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class Data:
    """The data of a run: `make(seed)` gives new `(train, validation, test)` datasets."""

    def __init__(self, make, info, description, name):
        self.make, self.info, self.description, self.name = make, info, description, name


def load_data(args):
    """The data of `--dataset` or `--data`, checked before anything is written."""
    if args.data is not None:
        from keras_reg.data.files import load_files

        try:
            files = load_files(args.data, image_size=args.image_size,
                               train_size=args.train_size, seed=args.seed,
                               sequences=args.sequences)
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
        _, info = load(args.dataset, "test", batch_size=args.batch_size, with_info=True,
                       data_dir=args.data_dir)
    except Exception as e:  # unknown dataset, missing split, no network for TFDS ...
        # The library's words for the data directory are its argument's; here, the flag's.
        line = _first_line(e).replace("point data_dir=", "point --data-dir DIR")
        raise UserError(f"cannot load --dataset {args.dataset!r}: {line}") from None
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
        return load(args.dataset, splits, batch_size=args.batch_size, seed=seed,
                    data_dir=args.data_dir)

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
    target, name = split_model_spec(spec)
    try:
        if is_file_target(target):
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
    except TypeError as e:
        if "returning a keras.Model" not in str(e):
            raise UserError(f"--model {spec!r}: {name}(reg) failed: {type(e).__name__}: "
                            f"{_first_line(e)}") from None
        raise UserError(f"--model {spec!r}: {name}(reg) does not return a keras.Model") from None
    except Exception as e:
        raise UserError(f"--model {spec!r}: {name}(reg) failed: {type(e).__name__}: "
                        f"{_first_line(e)}") from None
    if not isinstance(model, keras.Model):
        raise UserError(f"--model {spec!r}: {name}(reg) returned a {type(model).__name__}, "
                        "expected a keras.Model")
    try:
        output = tuple(model.compute_output_shape((None, *info.image_shape)))
    except Exception as e:
        raise UserError(f"--model {spec!r}: the model does not take inputs of shape "
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
        "model_spec": args.model, "train_size": args.train_size, "sequences": args.sequences,
        "batch_size": args.batch_size,
        # The tuner learns the epochs only when its search starts; given here too, a rerun
        # with other --epochs and another --tuner names both in one line.
        "epochs": args.epochs,
    }


FLAGS = {"data": "--data", "dataset": "--dataset", "image_size": "--image-size",
         "model": "--model", "model_spec": "--model", "patience": "--epochs (patience)",
         "input_shape": "--image-size (image shape)", "num_classes": "--data (classes)",
         "space": "--space", "objective": "--objective", "tuner": "--tuner",
         "max_trials": "--max-trials", "epochs": "--epochs", "train_size": "--train-size",
         "batch_size": "--batch-size", "seed": "--seed", "protocol": "--batch-size",
         "data_spec": "--data (shape, classes, size)"}


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


def _progress_line(record, total):
    from keras_reg.cli.report import describe, fmt

    n, label = record.number, record.label
    if record.status == "COMPLETED" and record.objective is not None:
        result = fmt(record.objective)
    else:
        result = record.status + (f" ({record.message})" if record.message else "")
    return (f"trial {n}/{total}" + (f" [{label}]" if label else "") + f"  "
            f"{describe(record.regularization)}  objective {result}  {record.epochs} epochs  "
            f"{fmt(record.seconds)} s")


def run_search(args):
    created = not os.path.exists(args.out)
    _quiet_tensorflow()
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    from keras_reg.tuning import (RegularizationTuner, SearchError, SettingsMismatchError,
                                  TrainingProtocol)

    space = make_space(args.space)
    _check_recorded_settings(args, space)
    data = load_data(args)
    info = data.info
    builder = None
    if args.model is not None:
        builder = load_builder(args.model, space.start(), info)
    verbose = 2 if args.verbose else 0
    command = rerun_command(args.argv)
    say(f"keras-reg search: {data.description}")
    say(f"tuner {args.tuner}, {args.max_trials} trials x <= {args.epochs} epochs; writing to "
        f"{args.out}")
    start = time.perf_counter()
    train, val, _ = data.make(args.seed)
    protocol = TrainingProtocol(batch_size=args.batch_size)
    try:
        tuner = RegularizationTuner(
            builder, space=space, tuner=args.tuner, objective=args.objective,
            max_trials=args.max_trials, protocol=protocol, seed=args.seed,
            selection_margin=args.selection_margin, settings=settings(args),
            progress=None if args.quiet else (lambda r, total: say(_progress_line(r, total))),
            directory=os.path.join(args.out, "tuner"), project_name="search",
            overwrite=args.overwrite)
        if tuner.resumed_trials:
            say(f"resuming: {tuner.resumed_trials} of {args.max_trials} trials done")
        import keras

        callbacks = ([] if args.tensorboard is None
                     else [keras.callbacks.TensorBoard(args.tensorboard)])
        tuner.search(train, validation_data=val, epochs=args.epochs, callbacks=callbacks,
                     verbose=verbose)
        result = tuner.result()
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
    if tuner.is_worker:
        say(f"worker {os.environ['KERASTUNER_TUNER_ID']}: ran {len(result.trials)} trial(s)")
        return 0
    return _finish(args, data, space, builder, result, command, search_seconds, start, say,
                   verbose, protocol)


def _check_recorded_settings(args, space):
    """Names a settings mismatch with the search in --out before anything is printed or
    loaded (the tuner checks every setting again when it opens the directory)."""
    if args.overwrite:
        return
    from keras_reg.tuning import SettingsMismatchError, _settings

    project = os.path.join(args.out, "tuner", "search")
    differences = _settings.differences(project, {**settings(args), "tuner": args.tuner,
                                                  "seed": args.seed, "space": space.get_config()})
    if differences:
        raise UserError(_mismatch_line(SettingsMismatchError(differences, project), args.out))


def _discard(out, created):
    """Removes an --out this run created when nothing useful was written into it."""
    if created and os.path.isdir(out):
        from keras_reg.tuning.oracle import TRIAL_FILE

        project = os.path.join(out, "tuner", "search")
        trials = [os.path.join(project, d, TRIAL_FILE) for d in (
            os.listdir(project) if os.path.isdir(project) else [])]
        if not any(os.path.exists(t) for t in trials):
            shutil.rmtree(out, ignore_errors=True)


def _finish(args, data, space, builder, result, command, search_seconds, start, say, verbose,
            protocol):
    from keras_reg.cli import _advice, report

    best = result.best_regularization
    say(f"search done in {report.fmt(search_seconds)} s: {len(result.completed)} of "
        f"{len(result.trials)} trials completed; handed over trial {result.best_trial.number} "
        f"({result.objective} {report.fmt(result.best_trial.objective)}): "
        f"{report.describe(best)}")
    regs = dict(references(space), best=best)
    shown = lambda run: say(f"  {run.name} (seed {run.seed}): test accuracy "  # noqa: E731
                            f"{report.fmt(run.metrics['test_accuracy'])}, loss "
                            f"{report.fmt(run.metrics['test_loss'])}")
    protocol = dict(num_classes=data.info.num_classes, epochs=args.epochs, protocol=protocol,
                    objective=args.objective, build_model=builder, verbose=verbose)
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
    validation = report.validation_advantage(comparison, data.make(args.seed)[1],
                                             data.info.num_classes)
    trial_test = report.trial_test_errors(result, data.make(args.seed)[2],
                                          data.info.num_classes)
    first = {name: runs[0] for name, runs in comparison.runs.items()}  # the trials' curves
    if args.refit:
        say("refit: training each row's values again on training + validation data for its "
            "best epoch (--no-refit skips this)...")
        comparison = report.refit_comparison(
            comparison, data.make, direction=result.direction, progress=shown,
            **dict(protocol, objective=result.objective))
    final = comparison.runs["best"][0]
    out = args.out
    files = []
    for metric in (result.objective.removeprefix("val_"), "accuracy"):
        report.plot_curves(first, os.path.join(out, f"curves_{metric}.png"), metric)
        files.append(f"curves_{metric}.png")
    final.model.save(os.path.join(out, "best_model.keras"))
    final.model.export(os.path.join(out, "best_model_savedmodel"), verbose=False)
    files += ["best_model.keras", "best_model_savedmodel/", "tuner/search/"]
    ensemble = None
    if args.ensemble >= 2 and len(result.completed) >= 2:
        k = min(args.ensemble, len(result.completed))
        say(f"ensemble of the {k} best trials' models"
            + (" (refitting the other members)..." if args.refit else "..."))
        refit = args.refit and dict(epochs=args.epochs, protocol=protocol["protocol"],
                                    build_model=builder, seed=args.seed, verbose=verbose)
        model, ensemble = report.ensemble_run(result, k, data.make(args.seed),
                                              data.info.num_classes, comparison,
                                              refit=refit or None)
        model.save(os.path.join(out, "ensemble_model.keras"))
        files.append("ensemble_model.keras")
    warnings = _advice.edge_warnings(space, best) + _advice.unused_values(final.model, best)
    rep = report.Report(comparison, result, command=command, data=data.description,
                        settings=dict(settings(args), space=space.get_config(),
                                      tuner=args.tuner, objective=args.objective,
                                      epochs=args.epochs, max_trials=args.max_trials,
                                      seed=args.seed, repeats=args.repeats, refit=args.refit,
                                      ensemble=args.ensemble,
                                      selection_margin=args.selection_margin),
                        timings={"search": search_seconds,
                                 "total": time.perf_counter() - start},
                        warnings=warnings, validation=validation, trial_test=trial_test,
                        ensemble=ensemble)
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
