"""Where a trial's time goes: the parts of each epoch of a search's training, per labelled value.

Trains the built-in CNN on the embedded digits (1,150 training, 287 validation images: 36 steps
per epoch) with `keras_reg.tuning.train`, the path every trial takes, once per labelled value
(references and probes), and times from Keras callbacks placed after the protocol's own:

- **train**: the epoch's optimizer steps (from the epoch's start to its last batch);
- **bn**: from the last batch to the validation's start: `PreciseBatchNorm` recomputing the
  batch-norm statistics (16 batches);
- **val**: the validation pass;
- **end**: from the validation's end to the next epoch (the epoch-end callbacks).

The first epoch also traces the model's train and test steps: it is given apart, the others as
the median over epochs. "before fit" is the time from the call to the start of `fit` (building,
compiling and the pipeline). The search's own callbacks (KerasTuner's best-epoch checkpoint,
the trial's backup) are not in this path.

    python benchmarks/bench_trial.py                  # 30 epochs, all five labelled values
    python benchmarks/bench_trial.py --epochs 6 --labels start strong
"""

import argparse
import statistics
import time

import keras


class _EpochParts(keras.callbacks.Callback):
    """Times the parts of each epoch (listed after the protocol's callbacks)."""

    def on_train_begin(self, logs=None):
        self.started, self.parts = time.perf_counter(), []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.batch = time.perf_counter()

    def on_test_begin(self, logs=None):
        self.test = time.perf_counter()

    def on_test_end(self, logs=None):
        self.tested = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.parts.append((self.batch - self.epoch, self.test - self.batch,
                           self.tested - self.test, now - self.tested))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--labels", nargs="+", default=None,
                        help="labelled values (default: the references and probes)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from keras_reg.data import load
    from keras_reg.tuning import initial_points, train
    from keras_reg.tuning.space import RegularizationSpace

    points = dict(initial_points(RegularizationSpace()))
    labels = args.labels or list(points)
    train_ds, val_ds = load("digits", ("train[:80%]", "train[80%:]"), batch_size=32,
                            seed=args.seed)
    print("| value | before fit s | first epoch: train / bn / val / end s | "
          "later epochs (median): train / bn / val / end s | epochs |")
    print("| --- | --- | --- | --- | --- |")
    for label in labels:
        parts = _EpochParts()
        start = time.perf_counter()
        _, history = train(points[label], train_ds, val_ds, epochs=args.epochs, seed=args.seed,
                           callbacks=[parts])
        first = " / ".join(f"{v:.2f}" for v in parts.parts[0])
        later = " / ".join(f"{statistics.median(p[i] for p in parts.parts[1:]):.2f}"
                           for i in range(4)) if len(parts.parts) > 1 else "-"
        print(f"| {label} | {parts.started - start:.2f} | {first} | {later} | "
              f"{len(history.epoch)} |", flush=True)


if __name__ == "__main__":
    main()
