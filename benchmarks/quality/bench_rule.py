"""Which selection rule hands over the better model: every trial of kept searches, on test.

`benchmarks/bench_search.py --keep-runs DIR` keeps each search's folder (`DIR/<set>_<seed>`:
the tuner's trials with their best-epoch checkpoints, and the run's `summary.json`). This
script reopens each search, scores every completed trial on the validation images
(`keras_reg.tuning.selection.image_scores`, as the search does) and measures it on the test
split (after the temperature scaling fitted on validation, as the report does). A search's
trial order does not depend on the selection rule, so one search per seed shows what every
`selection_margin` would have handed over: the table gives, per data set and margin, the
mean test error of the chosen trials and the paired test error ratio chosen / best reference
(the reference — none, start, recipe — with the lowest mean test error over the seeds; `none`,
outside the default space, is read from the run's summary.json), next to the test-set oracle
(the trial with the lowest test error) and "always the best labelled trial" (margin inf).

    python benchmarks/quality/bench_rule.py /work/runs --output benchmarks/quality/rule.md
    python benchmarks/quality/bench_rule.py --rows benchmarks/quality/rule.json   # re-table
"""

import argparse
import glob
import json
import math
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(HERE))

MARGINS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, math.inf)
FLAGS = {"digits200": ["--train-size", "200"], "digits": []}


def _data(set_name, seed, tmp):
    from keras_reg import cli

    flags = list(FLAGS.get(set_name, []))
    if set_name == "mnist1k":
        from bench_search import mnist_npz

        path = os.path.join(tmp, "mnist1k.npz")
        if not os.path.exists(path):
            mnist_npz(path)
        flags = ["--data", path]
    args = cli.build_parser().parse_args(["search", *flags, "--seed", str(seed)])
    return cli.load_data(args).make(seed)


def _space(recorded):
    """The searched space of a recorded config; searches recorded before ranges were written
    as dicts (a range then read back as a list) are matched against the default space."""
    from keras_reg.tuning import RegularizationSpace

    if any(isinstance(v, dict) for v in recorded.values()):
        return RegularizationSpace.from_config(recorded)
    default = RegularizationSpace()
    legacy = {k: [v["low"], v["high"]] if isinstance(v, dict) else v
              for k, v in default.get_config().items()}
    if json.loads(json.dumps(legacy)) != recorded:
        raise SystemExit(f"a search recorded in an old format with another space: {recorded}")
    return default


def _reopen(project):
    from keras_reg.tuning import RegularizationTuner
    from keras_reg.tuning import _settings

    rec = _settings.read(project)
    space = _space(rec["space"])
    rec["space"] = space.get_config()
    _settings.write(project, rec)  # the recorded form of this version
    return RegularizationTuner(
        None, space=space, tuner=rec["tuner"],
        objective=rec["objective"], max_trials=rec["max_trials"],
        directory=os.path.dirname(project), project_name=os.path.basename(project),
        seed=rec["seed"], references=rec["references"], probes=rec["probes"], settings=rec,
        patience=rec["patience"], learning_rate=rec["learning_rate"],
        steps_per_execution=rec["steps_per_execution"], batch_size=rec["batch_size"],
        folds=rec.get("folds"))


def evaluate_run(run_dir, tmp):
    """Rows `{trial, label, objective, test_error, test_loss, scores}` of one kept search."""
    import numpy as np

    from keras_reg.tuning.calibration import calibrate, read_batches
    from keras_reg.tuning.report import evaluate
    from keras_reg.tuning.folds import Folds
    from keras_reg.tuning.selection import SCORES, image_scores

    set_name, seed = os.path.basename(run_dir.rstrip("/")).rsplit("_", 1)
    seed = int(seed)
    tuner = _reopen(os.path.join(run_dir, "tuner", "search"))
    result = tuner.result()
    train, validation, test = _data(set_name, seed, tmp)
    if tuner.folds:
        # Cross-validated: the trial models are fold 0's (calibrated on its held-out fold);
        # the choice's scores are the pooled ones the search wrote (None: a trial stopped
        # as hopeless before its last fold).
        validation = Folds(train, validation, tuner.folds, seed=tuner.seed).split(0)[1]
    images, targets = read_batches(validation)
    num_classes = tuner.settings["num_classes"]
    rows = []
    for record in result.completed:
        model = tuner.load_model(tuner.oracle.get_trial(record.trial_id))
        if tuner.folds:
            path = os.path.join(tuner.get_trial_dir(record.trial_id), SCORES)
            scores = np.load(path) if os.path.exists(path) else None
        else:
            scores = image_scores(model.predict(images, batch_size=256, verbose=0), targets,
                                  result.objective)
        calibrated, _ = calibrate(model, validation)
        measured = evaluate(calibrated, test, num_classes)
        rows.append({"trial": record.number, "trial_id": record.trial_id,
                     "label": record.label, "objective": record.objective,
                     "test_error": 1.0 - measured["accuracy"], "test_loss": measured["loss"],
                     "scores": None if scores is None
                     else np.asarray(scores, np.float64).round(7).tolist()})
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    references = {name: 1.0 - summary["runs"][name]["mean"]["test_accuracy"]
                  for name in ("none", "start", "recipe") if name in summary["runs"]}
    return {"set": set_name, "seed": seed, "objective": result.objective,
            "references": references, "trials": rows}


def _chosen(run, margin):
    import numpy as np

    from keras_reg.tuning.result import TrialRecord
    from keras_reg.tuning.selection import choose

    trials = sorted(run["trials"], key=lambda t: (t["objective"], t["trial"]))
    if math.isinf(margin):
        labelled = [t for t in trials if t["label"]]
        return labelled[0] if labelled else trials[0]
    records = [TrialRecord(t["trial_id"], {}, objective=t["objective"], label=t["label"])
               for t in trials]
    scores = {t["trial_id"]: np.asarray(t["scores"]) for t in trials
              if t["scores"] is not None}
    record, _ = choose(records, scores, margin)
    return next(t for t in trials if t["trial_id"] == record.trial_id)


def _incumbent(run, margin, name="start"):
    """Variant: `name` (the user's own model) is kept unless another trial, in objective
    order, leads it by >= margin paired standard errors (labelled or not)."""
    import numpy as np

    from keras_reg.tuning.selection import paired_lead

    trials = sorted(run["trials"], key=lambda t: (t["objective"], t["trial"]))
    own = next((t for t in trials if t["label"] == name), None)
    if own is None or own["scores"] is None:
        return trials[0]
    for t in trials[:trials.index(own)]:
        if t["scores"] is not None and paired_lead(np.asarray(own["scores"]), np.asarray(t["scores"]))["z"] >= margin:
            return t
    return own


def _g(value, digits=3):
    return "-" if value is None else f"{value:.{digits}g}"


def _spread(values):
    if len(values) == 1:
        return _g(values[0])
    return (f"{_g(statistics.mean(values))} ± {_g(statistics.stdev(values))} "
            f"({_g(min(values))}..{_g(max(values))})")


def table(runs):
    """Markdown lines: per data set and rule, mean test error and the paired ratio."""
    lines = ["| data | seeds | rule | test error % | test loss | error ratio chosen / best "
             "reference | handed over |", "|---|---|---|---|---|---|---|"]
    for set_name in dict.fromkeys(r["set"] for r in runs):
        group = sorted((r for r in runs if r["set"] == set_name), key=lambda r: r["seed"])
        names = [n for n in ("none", "start", "recipe")
                 if all(n in r["references"] for r in group)]
        best_ref = min(names, key=lambda n: statistics.mean(r["references"][n] for r in group))
        for name in names:
            errors = [r["references"][name] for r in group]
            lines.append(f"| {set_name} | {len(group)} | reference `{name}` | "
                         f"{_g(100 * statistics.mean(errors))} | | | |")
        rules = [(f"margin {m:g}" if not math.isinf(m) else "always labelled",
                  lambda r, m=m: _chosen(r, m)) for m in MARGINS]
        rules += [(f"keep start unless z >= {m:g}", lambda r, m=m: _incumbent(r, m))
                  for m in (1.0, 2.0)]
        rules.append(("oracle (test)", lambda r: min(r["trials"],
                                                     key=lambda t: t["test_error"])))
        for rule, pick in rules:
            chosen = [pick(r) for r in group]
            ratios = [c["test_error"] / r["references"][best_ref]
                      for c, r in zip(chosen, group) if r["references"][best_ref] > 0]
            who = ", ".join(c["label"] or f"#{c['trial']}" for c in chosen)
            lines.append(
                f"| {set_name} | {len(group)} | {rule} | "
                f"{_g(100 * statistics.mean(c['test_error'] for c in chosen))} | "
                f"{_g(statistics.mean(c['test_loss'] for c in chosen))} | "
                f"{_spread(ratios) if ratios else '-'} (vs `{best_ref}`) | {who} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="kept run folders, or folders holding them")
    parser.add_argument("--rows", default=None, help="re-table the rows of an earlier run")
    parser.add_argument("--output", default=None, help="markdown file (rows beside, .json)")
    args = parser.parse_args()
    if args.rows:
        with open(args.rows) as f:
            runs = json.load(f)
    else:
        folders = []
        for path in args.runs:
            if os.path.isdir(os.path.join(path, "tuner")):
                folders.append(path)
            else:
                folders += sorted(p for p in glob.glob(os.path.join(path, "*_*"))
                                  if os.path.isdir(os.path.join(p, "tuner"))
                                  and os.path.exists(os.path.join(p, "summary.json")))
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            for folder in folders:
                runs.append(evaluate_run(folder, tmp))
                print(f"evaluated {folder}: {len(runs[-1]['trials'])} trials", flush=True)
    lines = ["# Which trial to hand over: selection rules on kept searches", "",
             "Every completed trial of each search, measured on the test split (calibrated on "
             "validation); a rule picks per seed from the validation figures only. `margin z`: "
             "a trial without a label is handed over only when it leads the best labelled "
             "trial (reference or probe) by >= z paired standard errors of the per-image "
             "validation scores (`selection_margin`) and by at least `selection.MIN_LEAD` per "
             "image; margin 0 is the best objective. The "
             "ratio is paired by seed against the reference with the lowest mean test error. "
             "`#n`: trial n, a searched point.", "", *table(runs), ""]
    text = "\n".join(lines)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        if not args.rows:
            with open(os.path.splitext(args.output)[0] + ".json", "w") as f:
                json.dump(runs, f)


if __name__ == "__main__":
    main()
