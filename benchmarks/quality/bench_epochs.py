"""How long small data must train: references and probes at several epoch budgets.

    python benchmarks/quality/bench_epochs.py --epochs 30 90 --seeds 0 1 2 3 4 \\
        --names recipe strong smooth --min-steps 1
    python benchmarks/quality/bench_epochs.py --rows benchmarks/quality/epochs_digits200.jsonl

Trains each named configuration (`keras_reg.tuning.space.references()` and `probes()`) from
scratch with `keras_reg.tuning.train` on 200 digits (`train[:200]`, validation `train[80%:]`,
the 360 test digits), under the search's protocol (objective `val_calibrated_loss`, patience
`max(5, epochs // 4)`, Adam 4e-3 with warm-up and cosine decay, precise batch norm) with
`TrainingProtocol(min_steps_per_epoch=--min-steps)`: 1 makes an epoch one pass over the 7
batches (the protocol before session 18), 32 the protocol's default. Appends one JSON line per
run to `--output` and prints the table of mean test errors per configuration and budget.
"""

import argparse
import collections
import json
import os
import statistics
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(args):
    from keras_reg.data import load
    from keras_reg.tuning import TrainingProtocol, train
    from keras_reg.tuning.report import evaluate
    from keras_reg.tuning.space import probes, references

    regs = {**references(), **probes()}
    unknown = sorted(set(args.names) - set(regs))
    if unknown:
        raise SystemExit(f"unknown --names {unknown}; expected among {sorted(regs)}")
    with open(args.output, "a") as out:
        for seed in args.seeds:
            tr, va, te = load("digits", ("train[:200]", "train[80%:]", "test"), batch_size=32,
                              seed=seed)
            for epochs in args.epochs:
                for name in args.names:
                    protocol = TrainingProtocol(
                        patience=max(5, epochs // 4), objective="val_calibrated_loss",
                        steps_per_execution=8, min_steps_per_epoch=args.min_steps)
                    start = time.perf_counter()
                    model, history = train(regs[name], tr, va, epochs=epochs, seed=seed,
                                           protocol=protocol)
                    test = evaluate(model, te, 10)
                    row = dict(seed=seed, epochs=epochs, min_steps=args.min_steps, name=name,
                               test_error=1.0 - test["accuracy"],
                               val_objective=min(history.history["val_calibrated_loss"]),
                               epochs_run=len(history.epoch),
                               seconds=round(time.perf_counter() - start, 1))
                    print(row, flush=True)
                    out.write(json.dumps(row) + "\n")
                    out.flush()


def table(paths):
    runs = collections.defaultdict(dict)
    for path in paths:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                runs[(r["name"], r["epochs"], r["min_steps"])][r["seed"]] = r
    print("| configuration | epochs | min steps / epoch | seeds | test error % (mean) | "
          "per seed | seconds (median) |")
    print("|---|---|---|---|---|---|---|")
    for (name, epochs, steps), by_seed in sorted(runs.items()):
        errors = [by_seed[s]["test_error"] for s in sorted(by_seed)]
        print(f"| {name} | {epochs} | {steps} | {len(errors)} | "
              f"{100 * statistics.mean(errors):.2f} | "
              f"{', '.join(f'{100 * e:.1f}' for e in errors)} | "
              f"{statistics.median(r['seconds'] for r in by_seed.values()):.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[30, 90])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--names", nargs="+", default=["recipe", "strong", "smooth"])
    parser.add_argument("--min-steps", type=int, default=1)
    parser.add_argument("--output", default=os.path.join(HERE, "epochs_digits200.jsonl"))
    parser.add_argument("--rows", nargs="+", help="only print the table of these files")
    args = parser.parse_args()
    if args.rows:
        table(args.rows)
        return
    run(args)
    table([args.output])


if __name__ == "__main__":
    main()
