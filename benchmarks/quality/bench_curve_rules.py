"""Would another reading of each trial's validation curve choose better? Offline, on kept runs.

KerasTuner scores a trial by its best epoch (the minimum of the objective's curve), which on
a few hundred validation images is partly the luck of one epoch. This script re-chooses, per
kept search, the trial with the lowest value of other readings of the same curve (the mean of
the 3 or 5 epochs ending at each epoch, the last epoch, the mean of the last five, the
validation error...), among every completed trial and among the labelled ones, and reports
the test error ratio of the chosen trial's model (its best-epoch checkpoint, as handed over)
against a reference, paired by seed. The curves are the `curves.json` each trial writes; the
test errors are `bench_rule.py`'s rows.

    python benchmarks/quality/bench_rule.py DIR/digits200_* --output rule.md   # rows: rule.json
    python benchmarks/quality/bench_curve_rules.py rule.json DIR --output curve_rules.md
"""

import argparse
import json
import os

import numpy as np


def moving_mean(values, k):
    v = np.asarray(values, float)
    return np.array([v[max(0, i - k + 1):i + 1].mean() for i in range(len(v))])


RULES = {
    "best epoch (KerasTuner, the search's)": lambda c: min(c["val_calibrated_loss"]),
    "best 3-epoch mean": lambda c: moving_mean(c["val_calibrated_loss"], 3).min(),
    "best 5-epoch mean": lambda c: moving_mean(c["val_calibrated_loss"], 5).min(),
    "last epoch": lambda c: c["val_calibrated_loss"][-1],
    "mean of the last 5 epochs": lambda c: float(np.mean(c["val_calibrated_loss"][-5:])),
    "best validation accuracy, then loss": lambda c: min(
        zip([-a for a in c["val_accuracy"]], c["val_calibrated_loss"])),
    "best 3-epoch mean validation error": lambda c: moving_mean(
        [1 - a for a in c["val_accuracy"]], 3).min(),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", help="bench_rule.py's rows (.json)")
    parser.add_argument("runs", help="the folder holding the kept runs <set>_<seed>")
    parser.add_argument("--reference", default="recipe")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    with open(args.rows) as f:
        rows = json.load(f)
    chosen = {rule: ([], []) for rule in RULES}
    for run in rows:
        base = run["references"][args.reference]
        project = os.path.join(args.runs, f"{run['set']}_{run['seed']}", "tuner", "search")
        trials = []
        for t in run["trials"]:
            with open(os.path.join(project, f"trial_{t['trial_id']}", "curves.json")) as f:
                trials.append((t, json.load(f)))
        for rule, read in RULES.items():
            for pool, out in ((trials, chosen[rule][0]),
                              ([x for x in trials if x[0]["label"]], chosen[rule][1])):
                pick = min(pool, key=lambda x: read(x[1]))[0]
                out.append((pick["test_error"] / base, pick["label"] or f"#{pick['trial']}"))
    seeds = [run["seed"] for run in rows]
    lines = [f"# Readings of the validation curve: which trial each would hand over",
             "", f"Rows: `{os.path.basename(args.rows)}`; seeds {seeds}; test error ratio "
             f"chosen / `{args.reference}` (mean ± std over seeds), margin 0 (the lowest value "
             "wins).", "",
             "| reading | every trial | chosen | labelled trials only | chosen |",
             "|---|---|---|---|---|"]
    for rule, (every, labelled) in chosen.items():
        cells = []
        for picks in (every, labelled):
            r = [x for x, _ in picks]
            cells += [f"{np.mean(r):.3f} ± {np.std(r, ddof=1):.2f}",
                      ", ".join(p for _, p in picks)]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
