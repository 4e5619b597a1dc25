"""What the search is worth: baseline vs best searched model on held-out digits, and its cost.

Runs `keras-reg search` (a fresh process per run, default budget, `--quiet`) for several seeds
and training-set sizes, reads each run's `summary.json`, and writes
`benchmarks/results/search.md`: mean ± standard deviation over seeds of the baseline's and the
best model's test accuracy and loss, the search and total wall time and the trial overhead
(share of trial time spent outside `fit`), each beside its target (issue 5).

    python benchmarks/bench_search.py                        # seeds 0 1 2, sizes 200 and full
    python benchmarks/bench_search.py --seeds 0 --sizes 200  # quicker
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


def run_once(size, seed, out, extra):
    command = [sys.executable, "-m", "keras_reg", "search", "--seed", str(seed), "--quiet",
               "--out", out, *extra]
    if size != "full":
        command += ["--train-size", str(size)]
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


def mean_sd(values, fmt="{:.4f}"):
    if len(values) == 1:
        return fmt.format(values[0])
    spread = fmt.replace("+", "").format(statistics.stdev(values))
    return f"{fmt.format(statistics.mean(values))} ± {spread}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sizes", nargs="+", default=["200", "full"])
    parser.add_argument("--full-seeds", type=int, nargs="+", default=None,
                        help="seeds for the full training set (default: --seeds)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="more keras-reg search flags (e.g. --tuner random)")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "search.md"))
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            seeds = args.full_seeds if size == "full" and args.full_seeds else args.seeds
            for seed in seeds:
                out = os.path.join(tmp, f"{size}_{seed}")
                s = run_once(size, seed, out, args.extra)
                results.setdefault(size, []).append(s)
                b, r = s["runs"]["baseline"], s["runs"]["best"]
                print(f"size {size} seed {seed}: baseline {b['test_accuracy']:.4f} / "
                      f"{b['test_loss']:.4f}, best {r['test_accuracy']:.4f} / "
                      f"{r['test_loss']:.4f}, total {s['wall_seconds']:.0f}s, trial overhead "
                      f"{100 * s['trial_overhead']:.1f}%, best {s['best_values']}", flush=True)

    lines = [
        "# keras-reg search: baseline vs best searched model (digits)",
        "",
        f"Command: `python benchmarks/bench_search.py {' '.join(sys.argv[1:])}`".rstrip() + "",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}; shared with other jobs while it ran (wall times are "
        "upper bounds).",
        "",
        "Each run is one `keras-reg search` process with the default budget (tuner, trials, "
        "epochs of `keras_reg/cli.py`), then the unregularized baseline and the best values "
        "retrained from scratch under the same protocol (same epochs, early stopping on the "
        "validation data loss with best weights restored, same seed, freshly loaded data: the "
        "same data order for both), evaluated on the held-out test split (360 digits); losses "
        "are the cross-entropy of the predictions (no weight penalty). Validation: the last "
        "20 % of the train split (287 digits).",
        "",
        "| train size | seeds | baseline test acc. | best test acc. | baseline test loss | "
        "best test loss | acc. gain (points) | loss ratio best/baseline | search s | total s | "
        "trial overhead |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, runs in results.items():
        ba = [r["runs"]["baseline"]["test_accuracy"] for r in runs]
        ra = [r["runs"]["best"]["test_accuracy"] for r in runs]
        bl = [r["runs"]["baseline"]["test_loss"] for r in runs]
        rl = [r["runs"]["best"]["test_loss"] for r in runs]
        gain = [100 * (y - x) for x, y in zip(ba, ra)]
        ratio = [y / x for x, y in zip(bl, rl)]
        lines.append(
            f"| {size} | {len(runs)} | {mean_sd(ba)} | {mean_sd(ra)} | {mean_sd(bl)} | "
            f"{mean_sd(rl)} | {mean_sd(gain, '{:+.2f}')} | {mean_sd(ratio, '{:.3f}')} | "
            f"{mean_sd([r['search_seconds'] for r in runs], '{:.0f}')} | "
            f"{mean_sd([r['wall_seconds'] for r in runs], '{:.0f}')} | "
            f"{mean_sd([100 * r['trial_overhead'] for r in runs], '{:.1f}')} % |"
        )
    lines += [
        "",
        "Targets (issue 5): at 200 training digits, best test accuracy >= baseline + 2.5 points "
        "and best test loss <= 0.6 x baseline's (mean of 3 seeds); the default `keras-reg "
        "search` (full train split) <= 600 s on this 2-core CPU; trial overhead <= 10 %.",
        "",
        "Best values per run:",
        "",
    ]
    for size, runs in results.items():
        for r in runs:
            values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in r["best_values"].items())
            lines.append(f"- size {size}, seed {r['args']['seed']}: {values}")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
