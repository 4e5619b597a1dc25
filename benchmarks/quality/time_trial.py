"""Where a trial's time goes: build + trace, steady epochs, precise-BN updates, evaluation.

    python benchmarks/quality/time_trial.py --data mnist1k --widths 16 32 --epochs 3

For each width of the built-in CNN (norm="batch", no other regularization) it times: building
and compiling the model, the first epoch (which traces the training step), the following
epochs (median), one `PreciseBatchNorm.update` and one evaluation on the validation split.
Prints one JSON line per width and appends it to benchmarks/quality/results.jsonl.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_protocol import load_data  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="mnist1k")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    import keras

    from keras_reg.callbacks import PreciseBatchNorm
    from keras_reg.data import one_hot
    from keras_reg.tuning import Regularization
    from keras_reg.tuning.cnn import build_cnn
    from keras_reg.tuning.protocol import TrainingProtocol

    train, val, _ = load_data(args.data)
    train_1h = train.map(lambda x, y: (x, one_hot(y, 10))).cache()
    val_1h = val.map(lambda x, y: (x, one_hot(y, 10))).cache()
    shape = tuple(train.element_spec[0].shape[1:])
    for width in args.widths:
        keras.backend.clear_session()
        t0 = time.perf_counter()
        model = build_cnn(Regularization(norm="batch"), shape, 10, width=width)
        TrainingProtocol(steps_per_execution=8).compile(model)
        build = time.perf_counter() - t0
        epochs = []
        for _ in range(args.epochs):
            t0 = time.perf_counter()
            model.fit(train_1h, epochs=1, verbose=0)
            epochs.append(time.perf_counter() - t0)
        precise = PreciseBatchNorm(train, num_batches=32)
        precise_times = []
        for _ in range(2):
            t0 = time.perf_counter()
            precise.update(model)
            precise_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.evaluate(val_1h, verbose=0)
        evaluate = time.perf_counter() - t0
        row = {"timing": args.data, "width": width, "params": int(model.count_params()),
               "build_s": round(build, 2), "first_epoch_s": round(epochs[0], 2),
               "epoch_s": round(float(np.median(epochs[1:] or epochs)), 2),
               "precise_bn_s": [round(t, 2) for t in precise_times],
               "evaluate_s": round(evaluate, 2)}
        with open(os.path.join(HERE, "results.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
