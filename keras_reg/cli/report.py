"""Best values against the references: retraining under one protocol, paired by seed, and the
one renderer of the console table, `report.md` and `summary.json`."""

import json
import math
import os
import statistics
import time

import keras
import numpy as np

from keras_reg.data import one_hot
from keras_reg.data._datasets import read_arrays
from keras_reg.ensembles import ensemble
from keras_reg.layers import TemperatureScaling
from keras_reg.metrics import calibrated_nll, one_hot_targets
from keras_reg.regularizers import penalty
from keras_reg.tuning import refit as refit_model
from keras_reg.tuning import train as train_model
from keras_reg.cli._advice import selection_line
from keras_reg.tuning.selection import MIN_LEAD

REFERENCES = ("none", "start", "recipe")
REFERENCE_MEANING = {
    "none": "no normalization, no regularization",
    "start": "normalized, unregularized (what a Keras user typically already has)",
    "recipe": "a fixed hand recipe (`Regularization.recipe()`)",
    "best": "the best values of the search",
}


FILES = {
    "report.md": "this report",
    "summary.json": "the same figures, machine-readable (with each trial, its model's test "
                    "error, and the best model's temperature)",
    "curves_calibrated_loss.png": "the search's objective, the validation cross-entropy "
                                  "after temperature scaling, per epoch of each run (lower is "
                                  "better; the table's test loss is the same measure on test)",
    "curves_accuracy.png": "accuracy per epoch of each run, validation (solid) and training "
                           "(dashed; on mixed targets where the run mixes)",
    "best_model.keras": "the model handed over, as `build_model` made it, trained on the "
                        "training and validation data (unless --no-refit; load it after "
                        "`import keras_reg`)",
    "best_model_savedmodel/": "the same model as a TF SavedModel (serves without keras_reg)",
    "ensemble_model.keras": "the mean prediction of the best trials' models (--ensemble K; each "
                            "refit like best_model.keras unless --no-refit), its temperature "
                            "in `summary.json`",
    "tuner/search/": "KerasTuner's state: rerun the same command to resume",
}


def fmt(value, signed=False):
    """A number with 3 significant digits (`"0.966"`, `"+0.0123"`, `"1e-06"`); `-` for None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:+.3g}" if signed else f"{value:.3g}"


def describe(reg):
    """`l2=1.00e-04 dropout=0.25 norm=none`: `reg.describe()`, which names norm only when on,
    with `norm=none` said too (a report row shows the normalization either way)."""
    text = reg.describe()
    if reg.norm is not None:
        return text
    return "norm=none" if text == "none" else f"{text} norm=none"


def fit_temperature(model, validation):
    """The temperature `T` that calibrates `model`'s probabilities on `validation` (the
    cross-entropy after scaling, fitted against Platt's smoothed targets: `calibrated_nll`)."""
    x, t = read_arrays(validation)
    p = model.predict(x, batch_size=256, verbose=0)
    return 1.0 / calibrated_nll(p, one_hot_targets(t, p.shape[-1]))[1]


def scaled(model, temperature):
    """`model` followed by `TemperatureScaling(temperature)`, compiled for evaluation (the
    model as a user who applies the report's temperature would use it)."""
    inputs = keras.Input(tuple(model.input_shape[1:]))
    outputs = TemperatureScaling(temperature)(model(inputs))
    wrapped = keras.Model(inputs, outputs)
    wrapped.compile(loss=keras.losses.CategoricalCrossentropy(),
                    metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    return wrapped


class Run:
    """One trained model (the user's model as built: calibration is its `temperature`) and
    its figures (test and clean-train metrics, history, time)."""

    def __init__(self, name, reg, model, history, metrics, seconds, seed=None, trial=None):
        self.name = name
        self.reg = reg
        self.model = model
        self.history = history
        self.metrics = metrics
        self.seconds = seconds
        self.seed = seed
        self.trial = trial  # a refit run: the `Run` whose values and epochs it trained again

    @property
    def epochs(self):
        return len(self.history.epoch)

    def best_epoch(self, objective, direction):
        """The epoch (1-based) of the best `objective` in the history: the model kept."""
        curve = self.history.history.get(objective) or []
        if not curve:
            return self.epochs
        pick = min if direction == "min" else max
        return 1 + curve.index(pick(curve))

    def renamed(self, name):
        """The same run (model, figures) under another name: best values equal to a reference."""
        return Run(name, self.reg, self.model, self.history, self.metrics, self.seconds,
                   seed=self.seed, trial=self.trial)


def evaluate(model, data, num_classes):
    """`{"loss", "accuracy"}` of `model` on `(images, labels)` batches, one-hot targets.

    `loss` is the data loss of the predictions: Keras's evaluated loss minus the weight penalty
    (which is a property of the weights, not of the data, and would make an L2-regularized
    model's test loss look worse than its predictions are).
    """
    ds = data.map(lambda x, y, *r: (x, one_hot(y, num_classes)))
    values = model.evaluate(ds, verbose=0, return_dict=True)
    loss = float(values["loss"]) - float(penalty(model))
    return {"loss": loss, "accuracy": float(values["accuracy"])}


def retrain(regs, train, validation, test, *, num_classes, epochs, protocol, seed=None,
            build_model=None, objective="val_calibrated_loss", verbose=0, progress=None,
            calibrate=True):
    """Trains each `name -> Regularization` of `regs` from scratch under `protocol`.

    Same data, protocol, seed and epochs for every entry (`keras_reg.tuning.train`, the path
    of the search's trials), so references and best values are compared on equal terms. The
    gap is test minus training on the clean training data. With `calibrate`, each model is
    measured after the temperature scaling fitted on validation (`metrics["temperature"]`).

    `train`, `validation` and `test` are datasets or functions returning one (new datasets per
    run give every run the same data order).

    Returns:
        A dict `name -> Run`.
    """
    runs = {}
    for name, reg in regs.items():
        start = time.perf_counter()
        if seed is not None:  # tf.data's seeded shuffle also depends on the global seed
            keras.utils.set_random_seed(seed)
        model, history = train_model(
            reg, _fresh(train), _fresh(validation), protocol=protocol, build_model=build_model,
            epochs=epochs, objective=objective, seed=seed, num_classes=num_classes,
            verbose=verbose)
        seconds = time.perf_counter() - start
        runs[name] = Run(name, reg, model, history,
                         measure(model, train, test, num_classes, validation, calibrate),
                         seconds, seed=seed)
        if progress is not None:
            progress(runs[name])
    return runs


def refit_comparison(comparison, data, *, objective, direction, num_classes, epochs, protocol,
                     build_model=None, verbose=0, progress=None, **unused):
    """Every run of `comparison` trained again on training + validation data (`refit`).

    Each run's values are trained from scratch on both splits together for the epochs its
    own run chose (its best epoch on `objective`), under the same protocol and seed, so the
    references and the best values get the same treatment. A refit model is measured after
    its run's temperature (fitted on validation before validation became training data).

    Returns:
        A `Comparison` of refit runs, each with `.trial`: the run it trained again.
    """
    runs = {name: [] for name in comparison.runs}
    for i, s in enumerate(comparison.seeds):
        train, validation, test = data(s)
        for name, seed_runs in comparison.runs.items():
            run = seed_runs[i]
            if name == "best" and comparison.same_as:
                runs[name].append(runs[comparison.same_as][i].renamed("best"))
                continue
            start = time.perf_counter()
            if s is not None:
                keras.utils.set_random_seed(s)
            model, history = refit_model(
                run.reg, train, validation, epochs=epochs,
                best_epoch=min(epochs, run.best_epoch(objective, direction)),
                protocol=protocol, build_model=build_model, seed=s, num_classes=num_classes,
                verbose=verbose)
            metrics = measure(model, train, test, num_classes,
                              temperature=run.metrics.get("temperature"))
            runs[name].append(Run(name, run.reg, model, history, metrics,
                                  time.perf_counter() - start, seed=s, trial=run))
            if progress is not None:
                progress(runs[name][-1])
    return Comparison(runs, comparison.seeds, same_as=comparison.same_as)


def _fresh(data):
    return data() if callable(data) else data


def spread(values):
    """`{"mean", "std", "min", "max", "n", "values"}` of a list; a single value has no spread
    (std, min and max None)."""
    values = [float(v) for v in values]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None, "min": None, "max": None, "n": len(values),
                "values": values}
    several = len(finite) > 1
    return {
        "mean": statistics.fmean(finite),
        "std": statistics.stdev(finite) if several else None,
        "min": min(finite) if several else None, "max": max(finite) if several else None,
        "n": len(values), "values": values,
    }


def paired(best_runs, reference_runs):
    """Per-seed paired differences of `best` against one reference.

    Args:
        best_runs, reference_runs: lists of `Run`, one per seed, in the same seed order.

    Returns:
        A dict of lists, one entry per seed: `accuracy` (best − reference test accuracy),
        `loss` (best − reference test loss) and `error_ratio` (best test error / reference test
        error; NaN where the reference made no error).
    """
    out = {"accuracy": [], "loss": [], "error_ratio": []}
    for b, r in zip(best_runs, reference_runs):
        if b.seed != r.seed:
            raise ValueError(f"unpaired runs: seed {b.seed} against seed {r.seed}")
        bm, rm = b.metrics, r.metrics
        out["accuracy"].append(bm["test_accuracy"] - rm["test_accuracy"])
        out["loss"].append(bm["test_loss"] - rm["test_loss"])
        ref_error = 1.0 - rm["test_accuracy"]
        out["error_ratio"].append(
            (1.0 - bm["test_accuracy"]) / ref_error if ref_error > 0 else float("nan"))
    return out


class Comparison:
    """The references and the best values, each retrained under every seed of the comparison.

    Attributes:
        runs: dict name -> list of `Run` (one per seed, seeds in order).
        seeds: the seeds, `seed, seed + 1, ...`.
        same_as: the reference whose values the best values equal (not retrained), or None.
    """

    def __init__(self, runs, seeds, same_as=None):
        self.runs = runs
        self.seeds = list(seeds)
        self.same_as = same_as

    @property
    def references(self):
        return [name for name in self.runs if name != "best"]

    def mean(self, name, metric):
        return statistics.fmean(run.metrics[metric] for run in self.runs[name])

    @property
    def best_reference(self):
        """The reference with the lowest mean test error (ties: the earlier one)."""
        return min(self.references, key=lambda n: (self.mean(n, "test_error"),
                                                   self.references.index(n)))

    def differences(self, reference=None):
        """Paired differences of best against `reference` (default: the best reference), each
        with its spread over seeds (see `paired` and `spread`)."""
        reference = reference or self.best_reference
        return {k: spread(v) for k, v in paired(self.runs["best"], self.runs[reference]).items()}

    def headline(self):
        """One sentence: best against the best reference, with its spread over seeds."""
        ref = self.best_reference
        d = self.differences(ref)
        acc, loss, ratio = d["accuracy"], d["loss"], d["error_ratio"]
        text = (f"best vs {ref} (the reference with the lowest test error): test error ratio "
                f"{fmt(ratio['mean'])}, "
                f"accuracy {fmt(acc['mean'], True)}, loss {fmt(loss['mean'], True)}")
        if self.same_as:
            text = f"the best values are the {self.same_as} reference's; " + text
        # `paired` leaves the ratio undefined (NaN) where the reference made no test error
        errorless = [1.0 - b.metrics["test_accuracy"]
                     for b, v in zip(self.runs["best"], ratio["values"]) if not math.isfinite(v)]
        if errorless:
            text += (f" (no error ratio on {len(errorless)} of {len(self.seeds)} seeds: {ref} "
                     f"made no test error there; best's test error "
                     f"{fmt(100 * statistics.fmean(errorless))} %)")
        if len(self.seeds) == 1:
            return text + f" (a single run, seed {self.seeds[0]}: no spread; use --repeats N)"
        return (text + f" (mean of {len(self.seeds)} paired seeds {self.seeds[0]}.."
                f"{self.seeds[-1]}; std {fmt(ratio['std'])} / {fmt(acc['std'])} / "
                f"{fmt(loss['std'])}; error ratio min {fmt(ratio['min'])} max "
                f"{fmt(ratio['max'])}, accuracy min {fmt(acc['min'], True)} max "
                f"{fmt(acc['max'], True)})")

    def rows(self):
        """One row per run name: mean figures over seeds, and paired differences to the best
        reference (for `best`)."""
        scaled = self.calibrated
        header = ["run", "regularization", "test acc.", "test loss"] + (
            ["temperature"] if scaled else []) + [
            "train acc.", "gap (test − train acc.)", "gap (test − train loss)", "epochs",
            "seconds"]
        rows = []
        for name, runs in self.runs.items():
            m = lambda k: self.mean(name, k)  # noqa: E731
            rows.append([name, describe(runs[0].reg), fmt(m("test_accuracy")),
                         fmt(m("test_loss"))] + ([fmt(m("temperature"))] if scaled else [])
                        + [fmt(m("train_accuracy")), fmt(m("gap_accuracy"), True),
                           fmt(m("gap_loss"), True),
                           fmt(statistics.fmean(r.epochs for r in runs)),
                           fmt(statistics.fmean(r.seconds for r in runs))])
        return header, rows

    @property
    def calibrated(self):
        """True when every model was followed by a temperature fitted on validation."""
        return all("temperature" in r.metrics for runs in self.runs.values() for r in runs)

    @property
    def refitted(self):
        """True when every run is a refit (trained on training + validation data)."""
        return all(r.trial is not None for runs in self.runs.values() for r in runs)

    def before_refit(self):
        """The `Comparison` of the runs the refit runs trained again (None if not refit)."""
        if not self.refitted:
            return None
        return Comparison({n: [r.trial for r in runs] for n, runs in self.runs.items()},
                          self.seeds, same_as=self.same_as)

    def to_dict(self):
        ref = self.best_reference
        out = {
            "seeds": self.seeds,
            "repeats": len(self.seeds),
            "refit": self.refitted,
            "best_reference": ref,
            "best_is_reference": self.same_as,
            "runs": {name: {"regularization": runs[0].reg.to_dict(),
                            "per_seed": [dict(r.metrics, seed=r.seed, epochs=r.epochs,
                                              seconds=r.seconds) for r in runs],
                            "mean": {k: self.mean(name, k) for k in runs[0].metrics}}
                     for name, runs in self.runs.items()},
            "paired_differences": {name: self.differences(name) for name in self.references},
        }
        before = self.before_refit()
        if before is not None:  # the trials' own models: trained on the training split
            for name, entry in out["runs"].items():
                entry["before_refit"] = {k: before.mean(name, k)
                                         for k in before.runs[name][0].metrics}
            out["before_refit"] = {"best_reference": before.best_reference,
                                   "paired_differences": {n: before.differences(n)
                                                          for n in before.references}}
        return out


def compare(regs, data, *, repeats=1, seed=0, progress=None, **protocol):
    """Retrains every `name -> Regularization` of `regs` under `repeats` seeds, paired.

    For each seed `seed, seed + 1, ..., seed + repeats - 1`, every entry is trained from scratch
    (`retrain`) on freshly made datasets, so within one seed all entries see the same data
    order and the same initial draws; comparisons are made seed by seed (paired differences).

    Args:
        regs: dict name -> `Regularization`, the references and `"best"`.
        data: `data(seed) -> (train, validation, test)`, new datasets at each call.
        repeats: int >= 1, the number of seeds.
        seed: the first seed.
        progress: None or `progress(run)` after each retrained model.
        **protocol: the training protocol, passed to `retrain` (`num_classes`, `epochs`,
            `patience`, `build_model`, `input_shape`, `verbose`, ...).

    Returns:
        A `Comparison`.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError("Invalid value for argument `repeats`: expected an int >= 1. "
                         f"Received: repeats={repeats!r}")
    if "best" not in regs:
        raise ValueError("Invalid value for argument `regs`: expected a 'best' entry. "
                         f"Received: regs={sorted(regs)}")
    seeds = [seed + i for i in range(repeats)]
    # Best values equal to a reference's are not trained twice: the same values, seed and data
    # give the same model.
    same = next((n for n, r in regs.items() if n != "best" and r == regs["best"]), None)
    todo = {n: r for n, r in regs.items() if not (n == "best" and same)}
    runs = {name: [] for name in regs}
    for s in seeds:
        made = lambda i, s=s: lambda: data(s)[i]  # noqa: E731
        for name, run in retrain(todo, made(0), made(1), made(2), seed=s, progress=progress,
                                 **protocol).items():
            runs[name].append(run)
            if name == same:
                runs["best"].append(run.renamed("best"))
    return Comparison(runs, seeds, same_as=same)


class TrialHistory:
    """A `keras.callbacks.History` look-alike of a trial's recorded curves."""

    def __init__(self, history):
        self.history = {k: list(v) for k, v in history.items()}
        self.epoch = list(range(max((len(v) for v in self.history.values()), default=0)))


def measure(model, train, test, num_classes, validation=None, calibrate=True,
            temperature=None):
    """The figures of a `Run`: test and clean-train accuracy and data loss, and their gaps;
    with `calibrate`, after the temperature scaling fitted on `validation` (or `temperature`
    when given: a refit model has no held-out data left to fit one)."""
    extra = {}
    if temperature is not None:
        extra["temperature"] = float(temperature)
    elif calibrate and validation is not None:
        extra["temperature"] = fit_temperature(model, _fresh(validation))
    if "temperature" in extra:
        model = scaled(model, extra["temperature"])
    test_m = evaluate(model, _fresh(test), num_classes)
    train_m = evaluate(model, _fresh(train), num_classes)
    return {**extra,
        "test_accuracy": test_m["accuracy"], "test_loss": test_m["loss"],
        "test_error": 1.0 - test_m["accuracy"],
        "train_accuracy": train_m["accuracy"], "train_loss": train_m["loss"],
        "gap_accuracy": test_m["accuracy"] - train_m["accuracy"],
        "gap_loss": test_m["loss"] - train_m["loss"],
    }


def reference_trials(result, names):
    """`{name: TrialRecord}` of the references in `names` the search ran, and of `"best"`.

    None when the trials do not each train from scratch for the full epochs (Hyperband's
    rounds): the comparison then needs retraining (`compare`). A reference without a completed
    trial (outside the searched space) is left out: `from_trials` trains it.
    """
    refs = result.references
    return {**{name: refs[name] for name in names if name in refs}, "best": result.best_trial}


def from_trials(result, chosen, data, *, num_classes, seed, regs=None, progress=None,
                calibrate=True, **protocol):
    """The comparison of a single seed read from the search's own trials.

    Under the Bayesian and random tuners every trial trains a configuration from scratch under
    the protocol `retrain` uses, and the references are trials: the trial of each reference
    and the best trial are the runs of the seed, their best-epoch checkpoints the models (the
    best one is the model the search hands over). Each model is measured on the test split and
    the clean training data, as `retrain` does. The runs are paired by seed, not by data
    order (the trials share one shuffled dataset). A reference of `regs` the search did not
    run (outside its space) is trained here under the same protocol.

    Args:
        result: the `SearchResult` (with its tuner).
        chosen: `reference_trials(result, names)`.
        data: `data(seed) -> (train, validation, test)`.
        num_classes: int.
        seed: the search's seed.
        regs: None or `{name: Regularization}` of every reference to report (those missing
            from `chosen` are trained).
        progress: None or `progress(run)` after each run.
        calibrate: follow each model by the temperature scaling fitted on the validation
            split (as `retrain(calibrate=True)`).
        **protocol: `retrain`'s protocol arguments, for the references trained here.

    Returns:
        A `Comparison` of one seed.
    """
    tuner = result.tuner
    best_id = chosen["best"].trial_id
    same = next((n for n, r in chosen.items() if n != "best" and r.trial_id == best_id), None)
    train, validation, test = data(seed)
    runs = {}
    for name, record in chosen.items():
        if name == "best" and same:
            continue
        model = tuner.load_model(tuner.oracle.get_trial(record.trial_id))
        metrics = measure(model, train, test, num_classes, validation, calibrate)
        run = Run(name, record.regularization, model, TrialHistory(record.history), metrics,
                  record.seconds, seed=seed)
        runs[name] = [run]
        if progress is not None:
            progress(run)
    missing = {n: r for n, r in (regs or {}).items() if n != "best" and n not in chosen}
    if missing:
        made = lambda i: lambda: data(seed)[i]  # noqa: E731
        for name, run in retrain(missing, made(0), made(1), made(2), num_classes=num_classes,
                                 seed=seed, progress=progress, calibrate=calibrate,
                                 **protocol).items():
            runs[name] = [run]
    if same:
        runs["best"] = [runs[same][0].renamed("best")]
    names = [n for n in (regs or chosen) if n != "best" and n in runs]
    return Comparison({n: runs[n] for n in (*names, "best")}, [seed], same_as=same)


def trial_test_errors(result, test, num_classes):
    """`[{"trial", "label", "test_error"}]`: the test error of every completed trial's own model
    (trained on the training split). The search never looks at it; its minimum is what a
    choice made on the test split would have got (the oracle), beside which the choice made
    on validation is judged."""
    out = []
    for record in result.completed:
        model = result.tuner.load_model(result.tuner.oracle.get_trial(record.trial_id))
        error = 1.0 - evaluate(model, _fresh(test), num_classes)["accuracy"]
        out.append({"trial": record.number, "label": record.label, "test_error": error})
    return out


def _predict_seconds(model, x, repeats=3):
    """The median wall time of `model.predict(x)` (after one untimed call)."""
    model.predict(x[:256], batch_size=256, verbose=0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(x, batch_size=256, verbose=0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ensemble_run(result, num_models, data, num_classes, comparison, refit=None):
    """The ensemble of the `num_models` best trials (`get_best_trials`: the trial handed over
    first), measured like the report's runs, and its cost at inference.

    Its temperature is fitted on validation for the mean of the trials' own models. With
    `refit` (the comparison's rows were refit) each member is then trained again on training +
    validation data for its trial's best epoch, as the rows were (the refit best model is
    reused), and the ensemble of those models is measured after that temperature.

    Args:
        result: the `SearchResult`.
        num_models: int >= 2.
        data: `(train, validation, test)`.
        num_classes: int.
        comparison: the report's final `Comparison` (its ratios are taken against it).
        refit: None, or `refit`'s arguments `epochs`, `protocol`, `build_model`, `seed`,
            `verbose`.

    Returns:
        `(model, figures)`: the ensemble and a dict: its trials, test figures, the test error
        of the trials' own models' ensemble (`test_error_before_refit`), its test error over
        the best reference's and over `best`'s, its parameters and prediction time over those
        of one model, and the seconds its refits took.
    """
    tuner = result.tuner
    trials = tuner.oracle.get_best_trials(num_models)
    records = {r.trial_id: r for r in result.trials}
    members = [tuner.load_model(t) for t in trials]
    train, validation, test = data
    single = members[0]
    model = ensemble(members)
    metrics = measure(model, train, test, num_classes, validation)
    before, start = metrics["test_error"], time.perf_counter()
    if refit is not None:
        best = comparison.runs["best"][0].model
        members = [best] + [refit_model(records[t.trial_id].regularization, train, validation,
                                        best_epoch=min(refit["epochs"],
                                                       records[t.trial_id].best_epoch),
                                        num_classes=num_classes, **refit)[0]
                            for t in trials[1:]]
        single = best
        model = ensemble(members)
        metrics = measure(model, train, test, num_classes,
                          temperature=metrics["temperature"])
    x = read_arrays(_fresh(test))[0]
    final = lambda name: comparison.runs[name][0].metrics["test_error"]  # noqa: E731
    ratio = lambda a, b: a / b if b else None  # noqa: E731
    reference = comparison.best_reference
    return model, {
        "trials": [records[t.trial_id].number for t in trials], **metrics,
        "refit": refit is not None, "test_error_before_refit": before,
        "refit_seconds": time.perf_counter() - start if refit is not None else None,
        "best_reference": reference,
        "error_ratio_reference": ratio(metrics["test_error"], final(reference)),
        "error_ratio_best": ratio(metrics["test_error"], final("best")),
        "params_ratio": model.count_params() / single.count_params(),
        "predict_ratio": _predict_seconds(model, x) / _predict_seconds(single, x),
    }


def ensemble_line(found):
    """The report's sentence on the ensemble."""
    refit = ", each refit" if found.get("refit") else ""
    return (f"ensemble of trials {', '.join(map(str, found['trials']))} (ensemble_model.keras"
            f"{refit}): test accuracy {fmt(found['test_accuracy'])}, loss "
            f"{fmt(found['test_loss'])}; test error ratio {fmt(found['error_ratio_reference'])} "
            f"over {found['best_reference']}, {fmt(found['error_ratio_best'])} over best; at "
            f"inference {fmt(found['params_ratio'])}x the parameters and "
            f"{fmt(found['predict_ratio'])}x the prediction time of one model")


def validation_advantage(comparison, validation, num_classes):
    """How far the best model is ahead of the references on validation, against the noise.

    The models of the comparison's first seed (calibrated ones when the report calibrates)
    predict the same validation images once; per image, the cross-entropy of a reference minus
    that of the best model. Its mean is the best model's advantage, and the standard error of
    that mean (over images) says how much of it one validation split can show. Reported
    against the reference that is strongest there (smallest advantage): the one the search
    would otherwise have picked. An advantage within two standard errors means the choice of
    the best values is not supported by the validation data, and the test difference may be
    noise as well.

    Args:
        comparison: a `Comparison` (best and references).
        validation: the validation `(images, labels)` batches.
        num_classes: int.

    Returns:
        None when the best values are a reference's, else a dict with `reference`,
        `advantage` (mean cross-entropy difference per image, > 0: best is better),
        `standard_error`, `z` (advantage / standard error) and `images`.
    """
    if comparison.same_as or not comparison.references:
        return None
    x, t = read_arrays(validation)  # one pass: every model predicts the same order
    t = one_hot_targets(t, num_classes)

    def losses(name):
        run = comparison.runs[name][0]
        model = run.model
        if "temperature" in run.metrics:
            model = scaled(model, run.metrics["temperature"])
        p = np.asarray(model.predict(x, batch_size=256, verbose=0), np.float64)
        return -(t * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1)

    best = losses("best")
    found = []
    for name in comparison.references:
        d = losses(name) - best
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
        found.append({"reference": name, "advantage": float(d.mean()), "standard_error": se,
                      "z": float(d.mean()) / se if se > 0 else float("nan"),
                      "images": int(len(d))})
    return min(found, key=lambda f: f["advantage"])


def advantage_line(found):
    """The report's sentence on `validation_advantage`."""
    text = (f"on validation the best values beat `{found['reference']}` (the reference "
            f"closest to them on validation) by {fmt(found['advantage'])} cross-entropy per "
            f"image, paired "
            f"standard error {fmt(found['standard_error'])} over {found['images']} images "
            f"(z {fmt(found['z'])})")
    if not found["z"] >= 2.0 or found["advantage"] < MIN_LEAD:
        text += (": within noise — the validation data does not support the choice, and the "
                 "test difference may be noise as well")
    return text


def text_table(header, rows):
    """A plain-text table with aligned columns (for the console)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join([line(header), line("-" * w for w in widths)] + [line(r) for r in rows])


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def trials_rows(result):
    """The trials as `trial n/N` rows (1-based, in the order they ran), values 3 digits."""
    trials = list(result.trials)
    total = max(len(trials), getattr(result, "max_trials", 0) or 0)
    header = ["trial", "reference", "values", result.objective, "epochs", "seconds", "status"]
    rows = []
    for index, t in enumerate(trials, start=1):
        number = getattr(t, "number", None) or index
        rows.append([f"{number}/{total}", getattr(t, "label", None) or "",
                     describe(t.regularization), fmt(t.objective), str(t.epochs),
                     fmt(t.seconds), t.status])
    return header, rows


def comparison_table(runs):
    """A markdown table of a `retrain` result (one run per name)."""
    return markdown_table(*Comparison({k: [v] for k, v in runs.items()}, [None]).rows())


class Report:
    """Everything a search run reports, rendered in one place.

    Args:
        comparison: the `Comparison` of references and best values.
        result: the `SearchResult`, or None.
        command: the command line that made it (a string).
        data: a one-line description of the data: its name, sizes and what the validation and
            test splits are (held-out part of the training data, the given test split, ...).
        settings: dict of the settings (recorded in summary.json).
        timings: dict of wall times in seconds (`search`, `total`, ...).
        warnings: lines to show after the table (values at the edge of a searched range).
        validation: None or the `validation_advantage` dict (its sentence is shown after the
            headline; the dict is in summary.json).
        trial_test: None or `trial_test_errors` (in summary.json).
        ensemble: None or the figures of `ensemble_run`.
    """

    def __init__(self, comparison, result=None, command="", data="", settings=None,
                 timings=None, warnings=(), validation=None, trial_test=None, ensemble=None):
        self.comparison = comparison
        self.result = result
        self.command = command
        self.data = data
        self.settings = dict(settings or {})
        self.timings = dict(timings or {})
        self.warnings = list(warnings)
        self.validation = validation
        self.trial_test = trial_test
        self.ensemble = ensemble

    def _notes(self):
        chosen = selection_line(getattr(self.result, "selection", None))
        return (([chosen] if chosen else [])
                + ([advantage_line(self.validation)] if self.validation else [])
                + ([ensemble_line(self.ensemble)] if self.ensemble else [])
                + self.warnings)

    def console(self):
        """The table and headline printed at the end of a run: a narrow table (the gaps and
        train figures are in report.md), then each run's values."""
        header, rows = self.comparison.rows()
        keep = [i for i, h in enumerate(header) if h in (
            "run", "test acc.", "test loss", "temperature", "epochs", "seconds")]
        narrow = text_table([header[i] for i in keep], [[r[i] for i in keep] for r in rows])
        values = [f"  {r[0]}: {r[1]}" for r in rows]
        lines = [narrow, "", "values:", *values, "", self.comparison.headline()]
        if self.comparison.refitted:
            lines.append("(each model trained again on training + validation data for its "
                         "trial's best epoch: --no-refit keeps the trials' models)")
        return "\n".join(lines + self._notes())

    def summary(self, files=()):
        result = self.result
        out = {"command": self.command, "data": self.data, "settings": self.settings,
               "timings": self.timings, "headline": self.comparison.headline(),
               "warnings": self.warnings, "validation_advantage": self.validation,
               "ensemble": self.ensemble, "files": list(files)}
        if result is not None:
            trials = list(result.trials)
            seconds = sum(t.seconds for t in trials)
            fit = sum(t.fit_seconds for t in trials)
            out.update(
                objective=result.objective, trials=len(trials),
                completed=len(result.completed),
                best_trial=(trials.index(result.best_trial) + 1) if result.best_trial in trials
                else None,
                best_objective=result.best_trial.objective,
                best_values=result.best_regularization.to_dict(),
                best_temperature=self.comparison.runs["best"][0].metrics.get("temperature"),
                trial_records=[t.to_dict() for t in trials],
                trial_overhead=(seconds - fit) / seconds if seconds else None,
                selection=getattr(result, "selection", None),
                trial_test=self.trial_test,
            )
        out.update(self.comparison.to_dict())
        return out

    def markdown(self, files=()):
        c = self.comparison
        seeds = (f"seed {c.seeds[0]} (a single run: no spread)" if len(c.seeds) == 1
                 else f"seeds {', '.join(map(str, c.seeds))} (paired: every run of one seed "
                 "sees the same data order and initial draws)")
        refit = ("Every row's values were then trained again from scratch on the training "
                 "and validation splits together (refit), for the epochs of its run's best "
                 "epoch, and measured after that run's temperature: these are the rows below "
                 "and `best_model.keras`; the runs before the refit (trained on the training "
                 "split only) are in the second table. " if c.refitted else "")
        text = [
            "# keras-reg search report", "",
            f"Command: `{self.command}`", "",
            f"Data: {self.data}", "",
            "## Best against the references", "",
            "Every row is trained from scratch under the same protocol (epochs, early stopping "
            "with the best weights restored, optimizer), " + seeds + ". " + refit +
            "Test figures on the "
            "test split; losses are the cross-entropy of the predictions (the weight penalty is "
            "not counted); the gap is test minus training, on the clean training data. "
            + ("Each model is followed by the temperature scaling fitted on the validation "
               "split (column `temperature`; the accuracy does not change, the losses are "
               "those of the scaled predictions; `best_model.keras` is the model as built, its "
               "temperature is in `summary.json`). "
               if c.calibrated else "") +
            "References: " + "; ".join(f"`{n}` = {REFERENCE_MEANING.get(n, n)}"
                                       for n in c.runs) + ".", "",
            markdown_table(*c.rows()), "",
            "**" + c.headline() + "**", "",
        ]
        before = c.before_refit()
        if before is not None:
            text += ["Before the refit (the trials' models, trained on the training split; "
                     "early stopping on validation):", "", markdown_table(*before.rows()), "",
                     before.headline(), ""]
        if len(c.seeds) > 1:
            text += ["Paired differences (best − reference) per seed:", ""]
            header = ["pair", "seed", "test acc. diff.", "test loss diff.", "test error ratio"]
            rows = []
            for ref in c.references:
                p = paired(c.runs["best"], c.runs[ref])
                rows += [[f"best − {ref}", str(s), fmt(a, True), fmt(l, True), fmt(r)]
                         for s, a, l, r in zip(c.seeds, p["accuracy"], p["loss"],
                                               p["error_ratio"])]
            text += [markdown_table(header, rows), ""]
        notes = self._notes()
        text += [f"- {w}" for w in notes] + ([""] if notes else [])
        if self.result is not None:
            r = self.result
            text += ["## Trials", "",
                     f"{len(r.completed)} of {len(r.trials)} trials completed; objective "
                     f"`{r.objective}` ({r.direction}); best: {describe(r.best_regularization)}"
                     + (f" in {fmt(self.timings['search'])} s" if "search" in self.timings
                        else "") + ".", "",
                     markdown_table(*trials_rows(r)), ""]
            text += [f"Trial {t.number} {t.status.lower()}: {t.message}" for t in r.trials
                     if t.message] + [""]
            outside = [n for n in c.references if n not in r.references]
            text += [f"`{n}` lies outside the searched space, so it was trained beside the "
                     "search, under the same protocol." for n in outside]
            text += [f"Note: {line}." for line in r.notes] + [""]
        text += ["## Files", ""] + [f"- `{p}`" + (f": {FILES[p]}" if p in FILES else "")
                                    for p in files]
        return "\n".join(text) + "\n"

    def write(self, out, files=()):
        """Writes `report.md` and `summary.json` into `out`; returns their paths.

        `files` are the other files of the run (paths relative to `out`); the list written in
        both files includes `report.md` and `summary.json` themselves.
        """
        names = ["report.md", "summary.json"] + [f for f in files
                                                 if f not in ("report.md", "summary.json")]
        md, js = os.path.join(out, "report.md"), os.path.join(out, "summary.json")
        with open(md, "w", encoding="utf-8") as f:
            f.write(self.markdown(names))
        with open(js, "w", encoding="utf-8") as f:
            json.dump(self.summary(names), f, indent=1, default=str)
        return [md, js]


def plot_curves(runs, path, metric="loss"):
    """Writes a PNG of train vs validation `metric` per epoch for every run (dict name -> Run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    trained = False
    for color, run in zip(colors, runs.values()):
        h = run.history.history
        curve = h.get(f"val_{metric}")
        if curve is None:
            continue
        epochs = [e + 1 for e in range(len(curve))]
        ax.plot(epochs, curve, color=color, label=f"{run.name}: validation")
        if metric in h:  # the training figure (on mixed targets where the run mixes)
            trained = True
            ax.plot(epochs, h[metric][:len(epochs)], color=color, linestyle="--",
                    label=f"{run.name}: train" + (" (mixed targets)" if _mixes(run.reg) else ""))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    if "loss" in metric:
        ax.set_yscale("log")
    ax.set_title(f"{metric}: {'train vs validation' if trained else 'validation'} per epoch, "
                 "references and best")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _mixes(reg):
    return bool(getattr(reg, "mixup_alpha", 0) or getattr(reg, "cutmix_alpha", 0)
                or getattr(reg, "label_smoothing", 0))
