"""search(): the one-call wrapper over RegularizationTuner: result, failures, resume, seeds."""

import json
import math
import os
import shutil

import keras
import numpy as np
import pytest

from keras_reg.data import MixupCutMix
from keras_reg.tuning.selection import MIN_LEAD
from tests.tuning._tiny import tiny_model
from keras_reg.tuning import (Regularization, RegularizationSpace, RegularizationTuner,
                              SearchError, SearchResult, SettingsMismatchError, search)

# Cheap trials: data-side transforms off, only L2 and dropout searched (the references `none`
# and `recipe` lie outside: norm is fixed to batch norm, which the tiny model ignores).
SPACE = RegularizationSpace(l2=(1e-5, 1e-3), dropout=(0.0, 0.3), drop_path="off",
                            mixup_alpha="off", cutmix_alpha="off", label_smoothing="off",
                            augment="off", input_noise="off", norm="batch")


@pytest.fixture(scope="module")
def tiny(data, tmp_path_factory):
    train, val = data
    directory = tmp_path_factory.mktemp("search")
    seen = []
    result = search(tiny_model, train=train, validation=val, space=SPACE, tuner="random",
                    max_trials=2, epochs=2, directory=str(directory), seed=1,
                    steps_per_execution=1, objective="val_loss",
                    progress=lambda rec, n, total: seen.append((rec.trial_id, n, total)))
    return result, seen, directory


def test_result_holds_every_trial_with_finite_objectives_equal_to_the_oracle(tiny):
    result, _, _ = tiny
    assert isinstance(result, SearchResult)
    assert isinstance(result.tuner, RegularizationTuner)
    assert [t.trial_id for t in result.trials] == ["0", "1"]
    assert [t.label for t in result.trials] == ["start", None]
    assert set(result.skipped_references) == {"none", "recipe"}
    oracle = result.tuner.oracle
    for record in result.trials:
        assert record.status == "COMPLETED"
        assert math.isfinite(record.objective)
        assert record.objective == pytest.approx(oracle.get_trial(record.trial_id).score)
        assert record.epochs == 2 and 0 < record.fit_seconds <= record.seconds
        assert SPACE.contains(record.regularization)
    best = min(result.trials, key=lambda t: t.objective)
    assert result.selection["leader"] == best.number
    if result.best_trial.trial_id != best.trial_id:
        # the selection kept `start`: trial 2's lead was within the validation noise
        assert (result.best_trial.label, best.label) == ("start", None)
        assert result.selection["chosen"] == result.selection["anchor"] == 1
        lead = result.selection["leads"][0]
        assert lead["z"] < result.selection["margin"] or lead["lead"] < MIN_LEAD
    hps = {t.trial_id: t.hyperparameters.values for t in oracle.trials.values()}
    assert result.best_hyperparameters.values == hps[result.best_trial.trial_id]
    assert SPACE.contains(result.best_regularization)


def test_best_model_predicts_probabilities(tiny, data):
    result, _, _ = tiny
    images, _ = next(iter(data[1]))
    probs = keras.ops.convert_to_numpy(result.best_model(images[:4], training=False))
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_progress_called_once_per_trial_and_records_written(tiny):
    result, seen, directory = tiny
    assert seen == [("0", 1, 2), ("1", 2, 2)]
    with open(os.path.join(directory, "search", "trial_0", "keras_reg_trial.json")) as f:
        record = json.load(f)
    assert record["status"] == "COMPLETED" and record["tuner_id"] == "tuner0"
    assert record["label"] == "start"
    assert "trial" in str(result) and "val_data_loss" in result.to_markdown()


def test_table_prints_values_with_three_significant_digits(tiny):
    result, _, _ = tiny
    table = result.to_markdown()
    for record in result.trials:
        reg = record.regularization
        assert f"| {reg.dropout:.3g} |" in table
        assert f"{record.number}/2" in table
    assert "| batch |" in table
    assert "Reference `none` not evaluated" in table


def test_the_default_objective_is_the_calibrated_validation_loss(tmp_path):
    import inspect

    from keras_reg.cli import DEFAULTS

    tuner = RegularizationTuner(tiny_model, space=SPACE, directory=str(tmp_path))
    assert (tuner.objective.name, tuner.objective.direction) == ("val_calibrated_loss", "min")
    assert inspect.signature(search).parameters["objective"].default == "val_calibrated_loss"
    assert DEFAULTS["objective"] == "val_calibrated_loss"


def test_val_loss_objective_is_scored_without_the_weight_penalty(tiny):
    result, _, _ = tiny
    assert result.objective == "val_data_loss"
    for record in result.trials:
        metrics = result.tuner.oracle.get_trial(record.trial_id).metrics
        # KerasTuner keeps the metrics of the trial's best epoch
        (val_loss,) = [o.value[0] for o in metrics.get_history("val_loss")]
        (data_loss,) = [o.value[0] for o in metrics.get_history("val_data_loss")]
        # l2 in (1e-5, 1e-3) on the kernel: a positive penalty, far below the loss itself
        assert 0 < val_loss - data_loss < 0.5 * val_loss
        assert record.objective == pytest.approx(data_loss)


def test_no_completed_trial_raises_with_the_first_failure(data, tmp_path):
    train, val = data

    def broken(reg):
        raise RuntimeError("broken builder for the test")

    with pytest.raises(SearchError, match="broken builder for the test"):
        search(broken, train, val, space=SPACE, tuner="random", max_trials=1, epochs=1,
               directory=str(tmp_path), seed=0, max_retries_per_trial=0)


def test_resume_keeps_finished_trials(tiny, data, tmp_path):
    _, _, directory = tiny
    shutil.copytree(directory, tmp_path / "copy")
    train, val = data
    args = dict(train=train, validation=val, space=SPACE, tuner="random", epochs=2,
                directory=str(tmp_path / "copy"), seed=1, steps_per_execution=1,
                objective="val_loss")
    resumed, ran = [], []
    third = search(tiny_model, max_trials=3, on_resume=lambda *a: resumed.append(a),
                   progress=lambda rec, n, total: ran.append((rec.trial_id, n, total)), **args)
    assert resumed == [(2, 3)]
    assert ran == [("2", 3, 3)]  # trials 1 and 2 were not run again
    first = tiny[0]
    for old, new in zip(first.trials, third.trials):
        assert (new.values, new.objective, new.label) == (old.values, old.objective, old.label)
    with open(tmp_path / "copy" / "search" / "trial_0" / "keras_reg_attempts.json") as f:
        assert json.load(f) == {"attempts": 1, "ended": 1}
    # a finished search resumed again runs nothing
    ran.clear()
    again = search(tiny_model, max_trials=3,
                   progress=lambda rec, n, total: ran.append(rec.trial_id), **args)
    assert ran == [] and len(again.trials) == 3 and again.resumed_trials == 3
    with pytest.raises(SettingsMismatchError, match="epochs: 2 -> 1"):
        search(tiny_model, max_trials=3, **{**args, "epochs": 1})


@pytest.mark.slow
def test_each_trial_rebuilds_the_pipeline_from_its_values(data, tmp_path):
    space = RegularizationSpace(l2="off", dropout="off", drop_path="off", mixup_alpha=(0.2, 0.6),
                                cutmix_alpha="off", label_smoothing=(0.0, 0.1), augment="off",
                                input_noise="off", norm="batch")
    result = search(tiny_model, data[0], data[1], space=space, tuner="random", max_trials=2,
                    epochs=1, directory=str(tmp_path), seed=1, steps_per_execution=1)
    transforms = result.tuner.hypermodel.transforms
    alphas = set()
    for record in result.trials:
        t = transforms[record.trial_id]
        assert isinstance(t, MixupCutMix)
        assert t.mixup_alpha == pytest.approx(record.values["mixup_alpha"])
        assert t.label_smoothing == pytest.approx(record.values["label_smoothing"], abs=1e-7)
        alphas.add(round(t.mixup_alpha, 6))
    assert len(alphas) == 2  # two trials, two different pipelines


def test_arrays_become_batched_datasets():
    from keras_reg.tuning.hypermodel import as_dataset

    x = np.arange(40 * 4, dtype="float32").reshape(40, 2, 2, 1)
    y = np.arange(40) % 3
    ds = as_dataset((x, y), batch_size=16, shuffle=False, seed=0, name="train")
    batches = list(ds.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [16, 16, 8]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    shuffled = as_dataset((x, y), batch_size=40, shuffle=True, seed=0, name="train")
    (images, labels), = list(shuffled.as_numpy_iterator())
    assert sorted(labels.tolist()) == sorted(y.tolist())
    np.testing.assert_array_equal(images[:, 0, 0, 0] // 4 % 3, labels)  # pairs kept together
    with pytest.raises(ValueError, match="train"):
        as_dataset((x, y[:3]), batch_size=16, shuffle=False, seed=0, name="train")
    with pytest.raises(TypeError, match="validation"):
        as_dataset("x.npz", batch_size=16, shuffle=False, seed=0, name="validation")


@pytest.mark.slow
def test_arrays_and_user_model(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 40).astype("int32")
    built = []

    def build(reg):
        built.append(reg)
        return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                 keras.layers.Dense(3, activation="softmax",
                                                    kernel_regularizer=reg.kernel_regularizer())])

    result = search(build, (x, y), (x[:16], y[:16]), space=RegularizationSpace(
        l2=[1e-4, 1e-3], dropout="off", drop_path="off", mixup_alpha="off", cutmix_alpha="off",
        label_smoothing="off", augment="off", input_noise="off", norm="off"),
        tuner="bayesian", max_trials=1, epochs=1, directory=str(tmp_path), seed=0,
        steps_per_execution=1)
    assert result.trials[0].status == "COMPLETED"
    assert all(isinstance(r, Regularization) and r.l2 in (1e-4, 1e-3) for r in built)


def test_rejects_unknown_tuner(data):
    with pytest.raises(ValueError, match="tuner"):
        search(train=data[0], tuner="grid")


def test_rejects_zero_max_trials(data):
    with pytest.raises(ValueError, match="max_trials"):
        search(train=data[0], max_trials=0)


def test_rejects_zero_epochs(data):
    with pytest.raises(ValueError, match="epochs"):
        search(train=data[0], epochs=0)


def test_rejects_non_copyable_callbacks(data):
    class Unpicklable(keras.callbacks.Callback):
        def __deepcopy__(self, memo):
            raise TypeError("no copies")

    with pytest.raises(TypeError, match="callbacks"):
        search(train=data[0], callbacks=[Unpicklable()])


def test_rejects_space_of_wrong_type(data):
    with pytest.raises(TypeError, match="space"):
        search(train=data[0], space={"l2": 1e-4})


def test_rejects_missing_train():
    with pytest.raises(ValueError, match="train"):
        search()


def test_oracle_seed_is_never_false_and_one_to_one():
    from keras_reg.tuning.tuner import oracle_seed

    assert oracle_seed(None) is None
    assert oracle_seed(0) == 1  # KerasTuner would replace a seed of 0 by a random one
    seeds = [oracle_seed(s) for s in (0, 1, 2, 10_000, 2**31, 2**32 - 2)]
    assert len(set(seeds)) == len(seeds) and all(1 <= s <= 2**32 - 1 for s in seeds)


def test_seed_zero_fixes_the_trials(tmp_path):
    def first_trials(name):
        tuner = RegularizationTuner(tiny_model, space=SPACE, tuner="random", max_trials=3,
                                    directory=str(tmp_path / name), seed=0, references=())
        return [tuner.oracle.create_trial(f"t{i}").hyperparameters.values for i in range(3)]

    runs = [first_trials("a"), first_trials("b")]
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[0][1]


def test_validation_data_loss_is_the_loss_of_the_predictions():
    from keras_reg import regularizers
    from keras_reg.tuning.hypermodel import ValidationDataLoss

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        1, kernel_regularizer=regularizers.l2(1.0), kernel_initializer="ones")])
    model.compile("sgd", "mse")
    history = model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=32, verbose=0,
                        callbacks=[ValidationDataLoss()])
    mse = float(np.mean((model.predict(x, verbose=0) - y) ** 2))
    assert history.history["val_data_loss"][0] == pytest.approx(mse, rel=1e-5)
    assert history.history["val_loss"][0] > mse + 1.0  # the penalty (~4 at the start)


def test_report_losses_leave_out_the_weight_penalty():
    from keras_reg import regularizers
    from keras_reg.tuning.report import evaluate

    images = np.random.default_rng(1).random((16, 8, 8, 1)).astype("float32")
    labels = np.arange(16) % 10
    ds = tf_data(images, labels)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(
        10, activation="softmax", kernel_regularizer=regularizers.l2(10.0))])
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    probs = model.predict(images, verbose=0)
    cross_entropy = float(np.mean(-np.log(probs[np.arange(16), labels])))
    assert float(regularizers.penalty(model)) > 1.0
    assert evaluate(model, ds, 10)["loss"] == pytest.approx(cross_entropy, rel=1e-5)


def tf_data(images, labels):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
