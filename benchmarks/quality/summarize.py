"""Prints a markdown table of benchmarks/quality/results.jsonl (one row per run).

    python benchmarks/quality/summarize.py
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    rows = []
    with open(os.path.join(HERE, "results.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    print("| data | protocol | reference | seed | params | test acc. | test loss | epochs run "
          "| s/epoch | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "data" not in r:
            continue
        print(f"| {r['data']} | {r['protocol']} | {r['reference']} | {r['seed']} | "
              f"{r['params']} | {r['test_accuracy']:.4f} | {r['test_loss']:.4f} | "
              f"{r['epochs_run']}/{r['epochs']} | {r['seconds'] / r['epochs_run']:.1f} | "
              f"{r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
