"""How long `keras-reg` takes to answer when there is nothing to train.

Each command runs in a fresh interpreter (`python -m keras_reg ...`), interleaved with the
peer every command pays for: the interpreter starting with `python -c pass`. The figure is the
median wall time over the rounds; the target is an answer within 2 s (help, version and every
argument error answer before TensorFlow is imported).

    python benchmarks/bench_cli.py                 # the working tree; writes results/cli.md
    python benchmarks/bench_cli.py --baseline DIR  # and, interleaved, another copy of the
                                                   # package, e.g. an older commit's:
    # mkdir /tmp/old && git archive 33a8637 keras_reg | tar -x -C /tmp/old
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_S = 2.0

COMMANDS = {
    "python -c pass (interpreter start)": ["-c", "pass"],
    "keras-reg --help": ["-m", "keras_reg", "--help"],
    "keras-reg --version": ["-m", "keras_reg", "--version"],
    "keras-reg search --help": ["-m", "keras_reg", "search", "--help"],
    "keras-reg search --epochs 0": ["-m", "keras_reg", "search", "--epochs", "0"],
    "keras-reg search --data missing/": ["-m", "keras_reg", "search", "--data",
                                         "no_such_folder_xyz/"],
    "keras-reg search --space dropout": ["-m", "keras_reg", "search", "--space", "dropout"],
    "keras-reg search --objective val_loss:up": ["-m", "keras_reg", "search", "--objective",
                                                 "val_loss:up"],
}


def run_once(args, source):
    """Wall seconds of one fresh `python ARGS` run in `source`, and its exit status."""
    env = dict(os.environ, PYTHONPATH=source)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=source, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, done.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline", default=None,
                        help="a folder holding another keras_reg package to time beside this "
                             "checkout's")
    parser.add_argument("--label", default="another copy of the package",
                        help="what the baseline is, for the results file")
    parser.add_argument("--write", default=os.path.join(ROOT, "benchmarks", "results", "cli.md"),
                        help="markdown file to write ('' to print only)")
    options = parser.parse_args()
    sources = {"this checkout": ROOT}
    if options.baseline:
        sources["baseline"] = os.path.abspath(options.baseline)
    for label, source in sources.items():
        located = subprocess.run(
            [sys.executable, "-c", "import keras_reg; print(keras_reg.__file__)"], cwd=source,
            env=dict(os.environ, PYTHONPATH=source), capture_output=True, text=True)
        print(f"{label}: {located.stdout.strip()}")
    times = {(label, name): [] for label in sources for name in COMMANDS}
    codes = {}
    for _ in range(options.rounds):  # interleaved: a busy moment slows every command alike
        for name, args in COMMANDS.items():
            for label, source in sources.items():
                seconds, codes[label, name] = run_once(args, source)
                times[label, name].append(seconds)
    start = "python -c pass (interpreter start)"
    base = statistics.median(times["this checkout", start])
    header = ["command", "exit", "median s", "min s", "max s", "target"]
    if options.baseline:
        header[2:2] = ["baseline median s", "baseline exit", "speed-up"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in COMMANDS:
        values = times["this checkout", name]
        median = statistics.median(values)
        target = "" if name == start else (
            f"≤ {TARGET_S:g} s " + ("met" if median <= TARGET_S else "MISSED"))
        row = [f"`{name}`", str(codes["this checkout", name]), f"{median:.2f}",
               f"{min(values):.2f}", f"{max(values):.2f}", target]
        if options.baseline:
            old = statistics.median(times["baseline", name])
            row[2:2] = [f"{old:.2f}", str(codes["baseline", name]),
                        "" if name == start else f"{old / median:.0f}x"]
        lines.append("| " + " | ".join(row) + " |")
    table = "\n".join(lines)
    print(table)
    if options.write:
        machine = (f"{platform.machine()}, {os.cpu_count()} logical CPUs, Python "
                   f"{platform.python_version()}; shared with other jobs, so absolute times "
                   "vary between runs")
        text = (f"# keras-reg command-line start-up\n\n"
                f"Command: `python benchmarks/bench_cli.py --rounds {options.rounds}"
                f"{' --baseline DIR' if options.baseline else ''}`"
                f"{f' (baseline: {options.label})' if options.baseline else ''}. Machine: {machine}. Each command in a "
                f"fresh process (`python -m keras_reg ...`), the commands interleaved, "
                f"{options.rounds} rounds; medians. Interpreter start alone: {base:.2f} s."
                f"\n\n"
                f"{table}\n")
        with open(options.write, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {options.write}")


if __name__ == "__main__":
    main()
