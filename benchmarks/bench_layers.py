"""Layer benchmarks: GroupNorm and the dropout family against their Keras peers.

Runs `bench_group_norm` and `bench_dropout` (each also runnable alone) and prints both tables.

    python benchmarks/bench_layers.py            # full run
    python benchmarks/bench_layers.py --quick    # a short smoke run
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_dropout  # noqa: E402
import bench_group_norm  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    tables = [bench_group_norm.main(argv), bench_dropout.main(argv)]
    text = "\n\n".join(tables)
    print(text)
    return text


if __name__ == "__main__":
    main()
