"""How long `keras-reg` takes to answer when there is nothing to train.

Each command runs in a fresh interpreter (`python -m keras_reg ...`), interleaved with the
peer every command pays for: the interpreter starting with `python -c pass`. The figure is the
median wall time over the rounds; the target is an answer within 2 s (help, version and every
argument error answer before TensorFlow is imported).

    python benchmarks/bench_cli.py                 # the working tree; writes results/cli.md
    python benchmarks/bench_cli.py --source DIR    # another copy of the package (e.g. an
                                                   # older commit: git archive HEAD keras_reg)
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
    parser.add_argument("--source", default=ROOT,
                        help="folder holding the keras_reg package to time (default: this "
                             "checkout)")
    parser.add_argument("--write", default=os.path.join(ROOT, "benchmarks", "results", "cli.md"),
                        help="markdown file to write ('' to print only)")
    options = parser.parse_args()
    source = os.path.abspath(options.source)
    located = subprocess.run([sys.executable, "-c", "import keras_reg; print(keras_reg.__file__)"],
                             cwd=source, env=dict(os.environ, PYTHONPATH=source),
                             capture_output=True, text=True).stdout.strip()
    print(f"timing {located}")
    times = {name: [] for name in COMMANDS}
    codes = {}
    for _ in range(options.rounds):  # interleaved: a busy moment slows every command alike
        for name, args in COMMANDS.items():
            seconds, codes[name] = run_once(args, source)
            times[name].append(seconds)
    base = statistics.median(times["python -c pass (interpreter start)"])
    lines = ["| command | exit | median s | min s | max s | vs interpreter start | target |",
             "|---|---|---|---|---|---|---|"]
    for name, values in times.items():
        median = statistics.median(values)
        target = "" if name.startswith("python") else (
            f"≤ {TARGET_S:g} s " + ("met" if median <= TARGET_S else "MISSED"))
        lines.append(f"| `{name}` | {codes[name]} | {median:.2f} | {min(values):.2f} | "
                     f"{max(values):.2f} | {median / base:.1f}x | {target} |")
    table = "\n".join(lines)
    print(table)
    if options.write:
        machine = (f"{platform.machine()}, {os.cpu_count()} logical CPUs, Python "
                   f"{platform.python_version()}; shared with other jobs, so absolute times "
                   "vary between runs")
        text = (f"# keras-reg command-line start-up\n\n"
                f"Command: `python benchmarks/bench_cli.py --rounds {options.rounds}`. "
                f"Machine: {machine}. Each command in a fresh process (`python -m keras_reg "
                f"...`), the commands interleaved, {options.rounds} rounds; medians.\n\n"
                f"{table}\n")
        with open(options.write, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {options.write}")


if __name__ == "__main__":
    main()
