"""Baseline against best: retraining under one protocol, test metrics, curves and report.md."""

import time

import keras

from keras_reg.data import one_hot
from keras_reg.regularizers import penalty
from keras_reg.tuning.hypermodel import train as train_model


class Run:
    """One retrained model and its figures (test and clean-train metrics, history, time)."""

    def __init__(self, name, reg, model, history, metrics, seconds):
        self.name = name
        self.reg = reg
        self.model = model
        self.history = history
        self.metrics = metrics
        self.seconds = seconds

    @property
    def epochs(self):
        return len(self.history.epoch)


def evaluate(model, data, num_classes):
    """`{"loss", "accuracy"}` of `model` on `(images, labels)` batches, one-hot targets.

    `loss` is the data loss of the predictions: Keras's evaluated loss minus the weight penalty
    (which is a property of the weights, not of the data, and would make an L2-regularized
    model's test loss look worse than its predictions are).
    """
    ds = data.map(lambda x, y, *r: (x, one_hot(y, num_classes)))
    values = model.evaluate(ds, verbose=0, return_dict=True)
    loss = float(values["loss"]) - float(penalty(model))
    return {"loss": loss, "accuracy": float(values["accuracy"])}


def retrain(regs, train, validation, test, *, num_classes, epochs, patience, seed=None,
            build_model=None, input_shape=None, objective="val_data_loss", direction="min",
            learning_rate=2e-3, steps_per_execution=8):
    """Trains each `name -> Regularization` of `regs` from scratch under the same protocol.

    Same data, epochs, early stopping on `objective` (best weights restored), seed and
    optimizer for every entry, so the baseline and the best searched values are compared on
    equal terms. The gap is measured on the clean (unmixed) training data.

    `train` and `validation` are datasets or functions returning one. Pass functions that build
    the datasets anew (e.g. `lambda: load(...)`) for an identical data order in every run: a
    dataset shuffled with a seed gives each new iteration the next order of its sequence, so
    a dataset object shared by the runs (and by the search before them) gives each run other
    epochs.

    Returns:
        A dict `name -> Run`.
    """
    runs = {}
    for name, reg in regs.items():
        start = time.perf_counter()
        if seed is not None:  # tf.data's seeded shuffle also depends on the global seed
            keras.utils.set_random_seed(seed)
        model, history = train_model(
            reg, _fresh(train), _fresh(validation), build_model=build_model,
            input_shape=input_shape,
            num_classes=num_classes, epochs=epochs, patience=patience, objective=objective,
            direction=direction, seed=seed, learning_rate=learning_rate,
            steps_per_execution=steps_per_execution,
        )
        seconds = time.perf_counter() - start
        test_m = evaluate(model, _fresh(test), num_classes)
        train_m = evaluate(model, _fresh(train), num_classes)
        metrics = {
            "test_accuracy": test_m["accuracy"], "test_loss": test_m["loss"],
            "train_accuracy": train_m["accuracy"], "train_loss": train_m["loss"],
            "gap_accuracy": train_m["accuracy"] - test_m["accuracy"],
            "gap_loss": test_m["loss"] - train_m["loss"],
        }
        runs[name] = Run(name, reg, model, history, metrics, seconds)
    return runs


def _fresh(data):
    return data() if callable(data) else data


def comparison_table(runs):
    """A markdown table: one row per run (test accuracy and loss, train/test gap, epochs)."""
    rows = [
        "| model | regularization | test accuracy | test loss | train accuracy | "
        "gap (train - test acc.) | epochs |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs.values():
        m = run.metrics
        rows.append(
            f"| {run.name} | {run.reg.describe()} | {m['test_accuracy']:.4f} | "
            f"{m['test_loss']:.4f} | {m['train_accuracy']:.4f} | {m['gap_accuracy']:+.4f} | "
            f"{run.epochs} |"
        )
    return "\n".join(rows)


def plot_curves(runs, path, metric="loss"):
    """Writes a PNG of train vs validation `metric` per epoch for every run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for color, run in zip(colors, runs.values()):
        h = run.history.history
        if metric not in h:
            continue
        epochs = [e + 1 for e in range(len(h[metric]))]
        ax.plot(epochs, h[metric], color=color, linestyle="--",
                label=f"{run.name}: train" + (" (mixed targets)" if _mixes(run.reg) else ""))
        if f"val_{metric}" in h:
            ax.plot(epochs, h[f"val_{metric}"], color=color, label=f"{run.name}: validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    if metric == "loss":
        ax.set_yscale("log")
    ax.set_title(f"{metric}: train vs validation, with and without regularization")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _mixes(reg):
    return bool(reg.mixup_alpha or reg.cutmix_alpha or reg.label_smoothing)
