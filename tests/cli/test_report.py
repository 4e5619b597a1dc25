"""report: references and best retrained under one protocol, paired by seed, rendered once."""

import json
import math

import keras
import numpy as np
import pytest

from keras_reg.cli import report
from keras_reg.data import load
from keras_reg.tuning import Regularization, TrainingProtocol

SPLITS = ("train[:96]", "train[80%:]", "test[:64]")


def _data(seed=3):
    return load("digits", SPLITS, batch_size=32, seed=seed)


def tiny_model(reg):
    """A fast stand-in for the built-in CNN (the report does not care which model it is)."""
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Flatten(),
        keras.layers.Dropout(reg.dropout),
        keras.layers.Dense(10, activation="softmax",
                           kernel_regularizer=reg.kernel_regularizer()),
    ])


TINY = TrainingProtocol(patience=None, min_steps_per_epoch=1)
PROTOCOL = dict(num_classes=10, epochs=1, protocol=TINY, build_model=tiny_model,
                calibrate=False)
REGS = {"none": Regularization.none(), "best": Regularization(dropout=0.3)}


@pytest.fixture(scope="module")
def comparison():
    return report.compare(REGS, _data, repeats=2, seed=5, **PROTOCOL)


def _numpy_metrics(model, test):
    """Test accuracy and cross-entropy computed with NumPy from the predictions."""
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in test])
    x, y = np.concatenate(xs), np.concatenate(ys)
    p = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    accuracy = np.mean(np.argmax(p, axis=1) == y)
    loss = -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0)))
    return accuracy, loss


def test_paired_differences_match_an_independent_computation(comparison):
    assert comparison.seeds == [5, 6]
    test = _data()[2]
    acc_diff, loss_diff, ratio = [], [], []
    for best, ref in zip(comparison.runs["best"], comparison.runs["none"]):
        assert best.seed == ref.seed
        (ab, lb), (ar, lr) = _numpy_metrics(best.model, test), _numpy_metrics(ref.model, test)
        acc_diff.append(ab - ar)
        loss_diff.append(lb - lr)
        ratio.append((1 - ab) / (1 - ar))
    d = comparison.differences("none")
    np.testing.assert_allclose(d["accuracy"]["values"], acc_diff, atol=1e-6)
    np.testing.assert_allclose(d["loss"]["values"], loss_diff, atol=1e-4)
    np.testing.assert_allclose(d["error_ratio"]["values"], ratio, rtol=1e-5)
    assert d["accuracy"]["mean"] == pytest.approx(np.mean(acc_diff), abs=1e-6)
    assert d["accuracy"]["std"] == pytest.approx(np.std(acc_diff, ddof=1), abs=1e-6)
    assert d["loss"]["min"] == pytest.approx(min(loss_diff), abs=1e-4)
    assert d["loss"]["max"] == pytest.approx(max(loss_diff), abs=1e-4)


@pytest.mark.slow  # 16 s; the pairing is also asserted per seed by the test above
def test_seeds_differ_and_runs_of_one_seed_share_the_data_order(comparison):
    none = comparison.runs["none"]
    assert none[0].history.history["loss"] != none[1].history.history["loss"]
    again = report.compare({"none": REGS["none"], "best": REGS["none"]}, _data, seed=5,
                           **PROTOCOL)
    assert again.same_as == "none"  # equal values are trained once
    assert again.runs["none"][0].history.history["loss"] == pytest.approx(
        none[0].history.history["loss"], rel=1e-6)


def test_best_reference_is_the_lowest_mean_test_error():
    c = _synthetic([0, 1])
    errors = {n: np.mean([r.metrics["test_error"] for r in c.runs[n]]) for n in c.references}
    assert c.best_reference == min(errors, key=errors.get) == "start"
    assert c.references == ["none", "start", "recipe"]


def _run(name, seed, accuracy, loss, reg=None):
    history = keras.callbacks.History()
    history.epoch, history.history = [0, 1, 2], {"loss": [1.0, 0.5, 0.25]}
    metrics = {"test_accuracy": accuracy, "test_loss": loss, "test_error": 1 - accuracy,
               "train_accuracy": 1.0, "train_loss": 0.01, "gap_accuracy": accuracy - 1.0,
               "gap_loss": loss - 0.01}
    return report.Run(name, reg or Regularization(), None, history, metrics, 12.345, seed=seed)


def _synthetic(seeds):
    figures = {"none": (0.80, 0.70), "start": (0.90, 0.40), "recipe": (0.85, 0.50),
               "best": (0.95, 0.20)}
    regs = {"none": Regularization(), "start": Regularization(norm="batch", l2=1e-6),
            "recipe": Regularization(l2=1e-4, dropout=0.2, norm="batch"),
            "best": Regularization(l2=3.14159e-4, dropout=0.123456, norm="group")}
    runs = {n: [_run(n, s, a - 0.01 * i, l + 0.01 * i * (n == "best"), regs[n])
                for i, s in enumerate(seeds)] for n, (a, l) in figures.items()}
    return report.Comparison(runs, seeds)


def test_headline_against_the_best_reference_with_spread():
    c = _synthetic([0, 1, 2])
    assert c.best_reference == "start"
    text = c.headline()
    # best error 0.05, 0.06, 0.07 against start's 0.10, 0.11, 0.12
    ratios = [0.05 / 0.10, 0.06 / 0.11, 0.07 / 0.12]
    assert f"test error ratio {np.mean(ratios):.3g}" in text
    assert "best vs start" in text and "3 paired seeds" in text
    assert f"std {np.std(ratios, ddof=1):.3g}" in text


def test_a_reference_without_test_errors_is_named_not_divided_by():
    seeds = [0, 1]
    regs = {"none": Regularization(), "start": Regularization(norm="batch"),
            "recipe": Regularization(l2=1e-4, norm="batch"),
            "best": Regularization(l2=1e-4, dropout=0.1, norm="batch")}
    accuracy = {"none": (0.98, 0.98), "start": (1.0, 0.99), "recipe": (0.99, 0.99),
                "best": (0.995, 0.995)}
    runs = {n: [_run(n, s, accuracy[n][i], 0.05, regs[n]) for i, s in enumerate(seeds)]
            for n in regs}
    c = report.Comparison(runs, seeds)
    assert c.best_reference == "start"  # mean error 0.005
    text = c.headline()
    # seed 0: start made no error (no ratio); seed 1: 0.005 / 0.01
    assert "test error ratio 0.5," in text
    assert "no error ratio on 1 of 2 seeds: start made no test error there; best's test " \
           "error 0.5 %" in text
    assert "nan" not in text


def test_a_single_run_says_so_and_has_no_spread():
    c = _synthetic([7])
    assert "single run" in c.headline()
    d = c.differences()
    assert d["accuracy"]["std"] is None and d["accuracy"]["min"] is None


def test_four_rows_three_significant_digits_and_gap_columns(tmp_path):
    c = _synthetic([0, 1])
    rep = report.Report(c, command="keras-reg search", data="digits: held-out validation",
                        settings={"epochs": 3})
    console = rep.console()
    header, rows = c.rows()
    assert [r[0] for r in rows] == ["none", "start", "recipe", "best"]
    assert "gap (test − train acc.)" in header and "gap (test − train loss)" in header
    assert rows[3][1] == "l2=3.14e-04 dropout=0.123 norm=group"
    assert rows[0][1] == "norm=none"
    assert rows[3][-1] == "12.3"  # seconds, 3 significant digits
    table = console.split("\n\n")[0].splitlines()
    for name in ("none", "start", "recipe", "best"):
        assert sum(line.startswith(name + " ") for line in table) == 1
    paths = rep.write(str(tmp_path), ["curves_loss.png"])
    md = (tmp_path / "report.md").read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    for name in ("report.md", "summary.json", "curves_loss.png"):
        assert f"- `{name}`" in md and name in summary["files"]
    assert sum(line.startswith(f"| {n} |") for line in md.splitlines()
               for n in ("none", "start", "recipe", "best")) == 4
    assert set(summary["runs"]) == {"none", "start", "recipe", "best"}
    assert set(summary["paired_differences"]) == {"none", "start", "recipe"}
    assert summary["best_reference"] == "start" and summary["repeats"] == 2
    assert len(paths) == 2
    assert "| best − start | 1 | +0.05 | -0.19 | 0.545 |" in md  # the per-seed pairs


def test_edge_warnings_follow_the_headline():
    line = "dropout=0.5 is the upper edge of the searched values [0, 0.5]: try --space ..."
    rep = report.Report(_synthetic([0]), warnings=[line])
    assert rep.console().splitlines()[-2:] == [_synthetic([0]).headline(), line]
    assert f"- {line}" in rep.markdown()


def _linear_softmax(kernel):
    """A model whose inputs are logits: softmax(x · kernel) (fixed weights)."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, use_bias=False),
                              keras.layers.Softmax()])
    model.layers[0].set_weights([np.asarray(kernel, "float32")])
    return model


@pytest.mark.parametrize("kind", ["sharper", "reshuffled"])
def test_validation_advantage_is_the_paired_per_image_difference(kind):
    """Each model predicts the same validation images (a reshuffled split is read once); the
    advantage is the mean per-image cross-entropy difference to the strongest reference.
    A uniformly sharper best model is ahead well beyond the noise (z ≈ 8); one that moves
    the predictions of single images both ways is not (z ≈ 0.75)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 4)).astype("float32")
    labels = logits.argmax(axis=1)
    labels[:30] = rng.integers(0, 4, 30)  # some wrong
    import tensorflow as tf

    validation = tf.data.Dataset.from_tensor_slices((logits, labels)).shuffle(
        200, seed=1, reshuffle_each_iteration=True).batch(32)
    best = (1.6 * np.eye(4) if kind == "sharper"
            else 1.1 * np.eye(4) + 0.3 * np.random.default_rng(1).normal(size=(4, 4)))
    kernels = {"none": 0.5 * np.eye(4), "start": np.eye(4), "recipe": 0.8 * np.eye(4),
               "best": best}
    runs = {n: [_run(n, 0, 0.9, 0.3)] for n in kernels}
    for n, k in kernels.items():
        runs[n][0].model = _linear_softmax(k)
    found = report.validation_advantage(report.Comparison(runs, [0]), validation, 4)

    def nll(kernel):  # independent: NumPy softmax
        z = logits.astype(np.float64) @ kernel.astype(np.float32).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        return -(z[np.arange(200), labels] - np.log(np.exp(z).sum(axis=1)))

    diffs = {n: nll(kernels[n]) - nll(best) for n in ("none", "start", "recipe")}
    ref = min(diffs, key=lambda n: diffs[n].mean())
    d = diffs[ref]
    assert found["reference"] == ref == "start" and found["images"] == 200
    assert found["advantage"] == pytest.approx(d.mean(), rel=1e-3, abs=1e-5)
    assert found["standard_error"] == pytest.approx(d.std(ddof=1) / np.sqrt(200), rel=1e-3)
    assert (found["z"] >= 2) == (kind == "sharper")
    line = report.advantage_line(found)
    assert "`start`" in line and ("within noise" in line) == (kind == "reshuffled")
    rep = report.Report(report.Comparison(runs, [0]), validation=found)
    assert line in rep.console() and f"- {line}" in rep.markdown()
    assert rep.summary()["validation_advantage"] == found


def test_an_advantage_of_rounding_size_is_noise_whatever_its_z():
    # every validation image right in both models: a lead of 1e-14 nats with z 1e3 says nothing
    found = {"reference": "start", "advantage": 1e-14, "standard_error": 1e-17, "z": 1e3,
             "images": 287}
    assert "within noise" in report.advantage_line(found)
    assert "within noise" not in report.advantage_line(dict(found, advantage=0.01, z=3.0))


def test_validation_advantage_is_none_when_best_is_a_reference():
    c = _synthetic([0])
    c.same_as = "start"
    assert report.validation_advantage(c, None, 10) is None


def test_fmt_and_describe():
    assert report.fmt(0.96612) == "0.966" and report.fmt(-0.012345, signed=True) == "-0.0123"
    assert report.fmt(123.456) == "123" and report.fmt(None) == "-"
    assert report.fmt(math.nan) == "-"
    assert report.describe(Regularization(l2=1e-6, norm="batch")) == "l2=1.00e-06 norm=batch"
    assert report.describe(Regularization()) == "norm=none"


def test_compare_rejects_bad_arguments():
    with pytest.raises(ValueError, match="repeats"):
        report.compare(REGS, _data, repeats=0, **PROTOCOL)
    with pytest.raises(ValueError, match="best"):
        report.compare({"none": Regularization()}, _data, **PROTOCOL)


@pytest.mark.slow
def test_a_shared_shuffled_dataset_gives_the_second_run_other_epochs():
    # Why the CLI hands retrain dataset factories: the same reg and seed, other results.
    train, val, test = _data()
    reg = Regularization(l2=1e-4)
    runs = report.retrain({"a": reg, "b": reg}, train, val, test, seed=0, **PROTOCOL)
    assert runs["a"].history.history["loss"] != pytest.approx(runs["b"].history.history["loss"],
                                                              rel=1e-9)


@pytest.fixture(scope="module")
def tiny_search(tmp_path_factory):
    """One finished 4-trial random search of the tiny model (shared)."""
    from keras_reg.tuning import RegularizationSpace, search

    space = RegularizationSpace(l2=(0.0, 1e-3), dropout=(0.0, 0.5), drop_path="off",
                                mixup_alpha="off", cutmix_alpha="off", label_smoothing="off",
                                augment="off", input_noise="off", norm="off")
    train, val, _ = _data()
    return search(tiny_model, train, val, space=space, tuner="random", max_trials=4,
                  epochs=3, directory=str(tmp_path_factory.mktemp("tiny_search")), seed=0,
                  protocol=TINY)


def test_from_trials_measures_the_trials_own_checkpoints(tiny_search):
    result = tiny_search
    chosen = report.reference_trials(result, ["start"])
    assert chosen is not None and chosen["start"].label == "start"
    assert chosen["best"].trial_id == result.best_trial.trial_id
    c = report.from_trials(result, chosen, _data, num_classes=10, seed=0, calibrate=False)
    assert list(c.runs) == ["start", "best"] and c.seeds == [0]
    test = _data()[2]
    for name, record in chosen.items():
        run = c.runs[name][0]
        # The model is the trial's best-epoch checkpoint: its test figures are recomputed
        # independently from its predictions, and its validation accuracy is the trial's.
        accuracy, loss = _numpy_metrics(run.model, test)
        assert run.metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
        assert run.metrics["test_loss"] == pytest.approx(loss, abs=1e-4)
        assert run.epochs == record.epochs == 3
        assert len(run.history.history["val_data_loss"]) == 3
        assert min(run.history.history[result.objective]) == pytest.approx(record.objective)
        assert run.reg == record.regularization
    if result.best_trial.label == "start":
        assert c.same_as == "start"
        assert c.runs["best"][0].metrics == c.runs["start"][0].metrics
    else:
        assert c.same_as is None
    # calibrated: the same accuracy, the loss of the temperature-scaled predictions; the
    # model stays the model as built (the temperature is a figure of the report)
    from keras_reg.layers import TemperatureScaling

    scaled = report.from_trials(result, chosen, _data, num_classes=10, seed=0, calibrate=True)
    assert scaled.calibrated and not c.calibrated
    for name in chosen:
        run, plain = scaled.runs[name][0], c.runs[name][0]
        assert not any(isinstance(layer, TemperatureScaling) for layer in run.model.layers)
        assert run.metrics["temperature"] > 0
        assert run.metrics["test_accuracy"] == plain.metrics["test_accuracy"]
        accuracy, loss = _numpy_metrics(report.scaled(run.model, run.metrics["temperature"]),
                                        test)
        assert run.metrics["test_loss"] == pytest.approx(loss, abs=1e-4)
    assert "temperature" in scaled.rows()[0] and "temperature" not in c.rows()[0]


def test_a_reference_outside_the_space_is_trained_beside_the_trials(tiny_search):
    result = tiny_search  # norm off: `none` equals `start`, so it is no trial
    chosen = report.reference_trials(result, ["start", "none"])
    assert set(chosen) == {"start", "best"}
    regs = {"none": Regularization.none(), "start": result.references["start"].regularization,
            "best": result.best_regularization}
    seen = []
    c = report.from_trials(result, chosen, _data, num_classes=10, seed=0, regs=regs,
                           progress=lambda run: seen.append(run.name), epochs=2,
                           protocol=TINY, build_model=tiny_model)
    assert list(c.runs) == ["none", "start", "best"]
    assert seen == ["start"] + ([] if c.same_as else ["best"]) + ["none"]
    assert c.runs["none"][0].epochs == 2  # trained here, under the protocol given
