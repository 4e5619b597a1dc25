"""RegularizationTuner: a KerasTuner tuner with references first, settings, numbering, TensorBoard."""

import glob
import json
import os
import shutil

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from tests.tuning._tiny import tiny_model
from keras_reg.tuning import (Regularization, RegularizationSpace, RegularizationTuner,
                              SettingsMismatchError, parse_objective)
from keras_reg.tuning._checkpoint import TimedBackup
from keras_reg.tuning.space import references

# Every reference lies in this space (recipe: l2 1e-4, dropout 0.1, drop path 0.1, augment 0.5,
# batch norm); the model below ignores the norm, so trials stay fast.
SPACE = RegularizationSpace(l2=(0.0, 1e-3), dropout=(0.0, 0.3), drop_path=[0.0, 0.1],
                            mixup_alpha="off", cutmix_alpha="off", label_smoothing=[0.0, 0.1],
                            augment=[0.0, 0.5], input_noise="off", norm=["batch", None])


# The shared search: cheap trials (no data-side transforms), references start and none.
FAST = RegularizationSpace(l2=(0.0, 1e-3), dropout=(0.0, 0.3), drop_path="off",
                           mixup_alpha="off", cutmix_alpha="off", label_smoothing="off",
                           augment="off", input_noise="off", norm=["batch", None])
ARGS = dict(space=FAST, tuner="random", max_trials=3, seed=3, references=("start", "none"),
            settings={"data": "digits[:64]"}, steps_per_execution=1, objective="val_loss")


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """One finished 3-trial random search (2 references + 1 searched), shared by the tests."""
    root = tmp_path_factory.mktemp("tuner")
    seen = []
    tuner = RegularizationTuner(
        tiny_model, directory=str(root / "search"), tensorboard_dir=str(root / "tb"),
        progress=lambda record, n, total: seen.append((record.number, record.label, n, total)),
        **ARGS)
    tuner.search(data[0], validation_data=data[1], epochs=2)
    return tuner, tuner.result(), seen, root


def test_references_are_the_first_trials_in_order(finished):
    tuner, result, _, _ = finished
    refs = references(FAST)
    assert [t.label for t in result.trials] == ["start", "none", None]
    for record in result.trials[:2]:
        assert record.values == FAST.hp_values(refs[record.label])
        assert record.regularization == refs[record.label]
    assert FAST.contains(result.trials[2].regularization)
    assert result.trials[2].regularization not in refs.values()
    assert set(result.references) == {"start", "none"}
    assert result.references["none"] is result.trials[1]
    assert result.skipped_references == {}


def test_one_numbering_in_progress_records_and_table(finished):
    _, result, seen, _ = finished
    assert seen == [(1, "start", 1, 3), (2, "none", 2, 3), (3, None, 3, 3)]
    assert [t.number for t in result.trials] == [1, 2, 3]
    table = result.to_markdown()
    for n in range(1, 4):
        assert f"| {n}/3 |" in table
    assert "| none |" in table  # norm=none is shown, not left blank
    assert "trial 0" not in str(result)


def test_keras_tuner_api_agrees_with_the_result(finished, data):
    tuner, result, _, _ = finished
    done = [t for t in result.trials if t.status == "COMPLETED"]
    assert len(done) == 3
    best = result.best_trial  # the handed-over trial (test_selection: how it is chosen)
    assert result.selection["chosen"] == best.number
    assert result.selection["leader"] == min(done, key=lambda t: t.objective).number
    assert tuner.get_best_hyperparameters(1)[0].values == best.values
    assert len(tuner.get_best_hyperparameters(3)) == 3
    assert result.best_hyperparameters.values == best.values
    for record in done:
        assert record.objective == pytest.approx(tuner.oracle.get_trial(record.trial_id).score)
        assert record.epochs == 2 and 0 < record.fit_seconds <= record.seconds
    images = next(iter(data[1]))[0][:4]
    (model,) = tuner.get_best_models(1)
    probs = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        probs, keras.ops.convert_to_numpy(result.best_model(images, training=False)), atol=1e-6)


def test_best_model_holds_the_best_epochs_weights(finished, data):
    tuner, result, _, _ = finished
    model = result.best_model
    val = data[1].map(lambda x, y: (x, tf.one_hot(y, 10)))
    loss = model.evaluate(val, verbose=0, return_dict=True)["loss"]
    penalty = sum(float(keras.ops.sum(layer.losses[0])) for layer in model.layers if layer.losses)
    # the objective is the penalty-free validation loss of the best epoch
    assert loss - penalty == pytest.approx(result.best_trial.objective, rel=1e-4)


def test_results_summary_lists_the_best_trial(finished, capsys):
    tuner, result, _, _ = finished
    tuner.results_summary(num_trials=2)
    out = capsys.readouterr().out
    assert "Showing 2 best of 3 trials" in out and "val_data_loss (min)" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "/3 |" in line]
    leader = min(result.completed, key=lambda t: t.objective)  # the table: objective order
    assert len(rows) == 2 and rows[0].startswith(f"| {leader.number}/3 |")


def test_tensorboard_logs_every_trial_with_its_hyperparameters(finished):
    _, result, _, root = finished
    runs = sorted(os.listdir(root / "tb"))
    assert runs == ["trial_1", "trial_2", "trial_3"]
    for record in result.trials:
        run = root / "tb" / f"trial_{record.number}"
        assert glob.glob(str(run / "train" / "events.out.tfevents.*"))
        assert glob.glob(str(run / "validation" / "events.out.tfevents.*"))
        tags = set()
        for path in glob.glob(str(run / "events.out.tfevents.*")):
            for raw in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(raw.numpy())
                for value in event.summary.value:
                    tags.add(value.tag)
                    if value.tag == "_hparams_/session_start_info":
                        content = value.metadata.plugin_data.content
                        assert all(name.encode() in content for name in ("l2", "dropout", "norm"))
                        assert record.regularization.norm in (None, "batch")
                        assert (b"none" if record.regularization.norm is None
                                else b"batch") in content
        assert "_hparams_/session_start_info" in tags


def test_same_settings_resume_and_say_so(finished):
    tuner, _, _, root = finished
    again = RegularizationTuner(tiny_model, directory=str(root / "search"), **ARGS)
    assert again.resumed_trials == 3
    assert again.resume_message == "resuming: 3 of 3 trials done"
    assert [t.number for t in again.result().trials] == [1, 2, 3]
    bigger = RegularizationTuner(tiny_model, directory=str(root / "search"),
                                 **{**ARGS, "max_trials": 6})
    assert bigger.resume_message == "resuming: 3 of 6 trials done"  # a new budget resumes


def test_other_settings_raise_naming_each_difference(finished):
    _, _, _, root = finished
    with pytest.raises(SettingsMismatchError) as info:
        RegularizationTuner(tiny_model, directory=str(root / "search"),
                            **{**ARGS, "seed": 4, "settings": {"data": "digits[:128]"}})
    assert info.value.differences == {"seed": (3, 4), "data": ("digits[:64]", "digits[:128]")}
    message = str(info.value)
    assert "seed: 3 -> 4" in message and "overwrite=True" in message
    assert isinstance(info.value, ValueError)


def test_another_tuner_kind_in_the_directory_is_a_settings_error(finished):
    _, _, _, root = finished
    with pytest.raises(SettingsMismatchError, match="tuner: 'random' -> 'hyperband'"):
        RegularizationTuner(tiny_model, directory=str(root / "search"),
                            **{**ARGS, "tuner": "hyperband", "max_epochs": 2})


def test_a_search_recorded_under_another_epoch_length_is_not_resumed(finished, tmp_path):
    _, _, _, root = finished
    shutil.copytree(root / "search", tmp_path / "search")
    path = tmp_path / "search" / "search" / "keras_reg_settings.json"
    recorded = json.loads(path.read_text())
    assert recorded["min_steps_per_epoch"] == 32
    path.write_text(json.dumps({**recorded, "min_steps_per_epoch": 1}))
    with pytest.raises(SettingsMismatchError, match="min_steps_per_epoch: 1 -> 32"):
        RegularizationTuner(tiny_model, directory=str(tmp_path / "search"), **ARGS)


def test_other_epochs_raise_at_search(finished, data):
    _, _, _, root = finished
    tuner = RegularizationTuner(tiny_model, directory=str(root / "search"), **ARGS)
    with pytest.raises(SettingsMismatchError, match="epochs: 2 -> 3"):
        tuner.search(data[0], validation_data=data[1], epochs=3)


def test_overwrite_starts_over(finished, tmp_path):
    _, _, _, root = finished
    shutil.copytree(root / "search", tmp_path / "search")
    tuner = RegularizationTuner(tiny_model, directory=str(tmp_path / "search"), overwrite=True,
                                **{**ARGS, "tuner": "bayesian", "seed": 9})
    assert tuner.resumed_trials == 0 and tuner.resume_message is None
    assert not os.path.exists(tmp_path / "search" / "search" / "trial_0")


def _first_trials(tmp_path, n, **kwargs):
    """The first `n` trials an oracle hands out (created, not run)."""
    tuner = RegularizationTuner(tiny_model, directory=str(tmp_path), seed=0, **kwargs)
    trials = [tuner.oracle.create_trial(f"tuner{i}") for i in range(n)]
    return tuner, trials


@pytest.mark.parametrize("kind", ["random", "bayesian"])
def test_oracles_hand_out_the_references_first(tmp_path, kind):
    tuner, trials = _first_trials(tmp_path, 4, space=SPACE, tuner=kind, max_trials=5)
    refs = references(SPACE)
    for trial, label in zip(trials, ["start", "none", "recipe"]):
        assert trial.hyperparameters.values == SPACE.hp_values(refs[label])
        assert tuner.label_of(trial.hyperparameters.values) == label
    assert tuner.label_of(trials[3].hyperparameters.values) is None


def test_the_strong_probe_follows_the_references_where_the_space_holds_it(tmp_path):
    from keras_reg.tuning.space import probes

    space = RegularizationSpace()
    tuner, trials = _first_trials(tmp_path / "on", 6, space=space, tuner="bayesian",
                                  max_trials=8)
    found = probes(space)
    strong = found["strong"]
    assert (strong.dropout, strong.augment, strong.mixup_alpha) == (0.3, 1.0, 0.2)
    assert (found["smooth"].augment, found["smooth"].label_smoothing) == (0.25, 0.1)
    assert found["augmented"] == Regularization(augment=1.0, norm="batch")
    labels = [tuner.label_of(t.hyperparameters.values) for t in trials]
    # (`none` lies outside the default space, whose norm is batch norm)
    assert labels == ["start", "recipe", "strong", "smooth", "augmented", None]
    assert trials[2].hyperparameters.values == space.hp_values(strong)
    assert trials[4].hyperparameters.values == space.hp_values(found["augmented"])
    _, off = _first_trials(tmp_path / "off", 3, space=space, tuner="bayesian", max_trials=6,
                           probes=False)
    assert off[2].hyperparameters.values != space.hp_values(strong)
    # a space without Mixup cannot hold it: no probe, and nothing said (it is no reference)
    tuner, trials = _first_trials(tmp_path / "narrow", 4, space=SPACE, tuner="random",
                                  max_trials=5)
    assert "strong" not in tuner.reference_values and "strong" not in tuner.skipped_references


def test_hyperband_evaluates_the_references_in_its_first_bracket(tmp_path):
    # max_epochs=3, factor 3: the first bracket runs 3 candidates for 1 epoch, then 1 for 3
    tuner, trials = _first_trials(tmp_path, 3, space=SPACE, tuner="hyperband", max_epochs=3,
                                  max_trials=10)
    refs = references(SPACE)
    for trial, label in zip(trials, ["start", "none", "recipe"]):
        values = trial.hyperparameters.values
        assert values["tuner/round"] == 0 and values["tuner/epochs"] == 1
        assert {k: v for k, v in values.items() if not k.startswith("tuner/")} == (
            SPACE.hp_values(refs[label]))


def test_a_reference_outside_the_space_is_skipped_and_said(tmp_path):
    space = RegularizationSpace(norm="batch", drop_path="off")
    tuner = RegularizationTuner(tiny_model, space=space, tuner="random", max_trials=3,
                                directory=str(tmp_path), seed=0)
    assert set(tuner.skipped_references) == {"none", "recipe"}
    assert "outside the searched space" in tuner.skipped_references["none"]
    # the `augmented` probe (batch norm and augmentation alone) still lies in it
    assert list(tuner.reference_values) == ["start", "augmented"]
    trials = [tuner.oracle.create_trial(f"t{i}") for i in range(3)]
    assert [tuner.label_of(t.hyperparameters.values) for t in trials] == ["start", "augmented",
                                                                         None]


def test_references_can_be_turned_off(tmp_path):
    tuner = RegularizationTuner(tiny_model, space=SPACE, tuner="random", references=(),
                                directory=str(tmp_path), seed=0)
    assert tuner.reference_values == {} and tuner.skipped_references == {}


@pytest.mark.parametrize("objective, name, direction", [
    ("val_accuracy", "val_accuracy", "max"),
    ("val_accuracy:max", "val_accuracy", "max"),
    ("val_accuracy:min", "val_accuracy", "min"),
    ("val_loss", "val_data_loss", "min"),
    ("val_loss:min", "val_data_loss", "min"),
    ("val_auc", "val_auc", "max"),
    ("val_mse", "val_mse", "min"),
])
def test_objective_names_and_directions(objective, name, direction):
    parsed = parse_objective(objective)
    assert (parsed.name, parsed.direction) == (name, direction)


def test_a_keras_tuner_objective_is_kept():
    objective = keras_tuner.Objective("val_loss", "min")
    assert parse_objective(objective) is objective


@pytest.mark.parametrize("objective", ["val_loss:down", "val_loss:", ":max", "a:b:c"])
def test_rejects_objective_with_bad_direction(objective):
    with pytest.raises(ValueError, match="objective"):
        parse_objective(objective)


def test_rejects_objective_of_wrong_type():
    with pytest.raises(TypeError, match="objective"):
        parse_objective(3)


def test_rejects_unknown_reference(tmp_path):
    with pytest.raises(ValueError, match="references"):
        RegularizationTuner(directory=str(tmp_path), references=("start", "best"))


def test_hyperband_needs_max_epochs(tmp_path):
    with pytest.raises(ValueError, match="max_epochs"):
        RegularizationTuner(tuner="hyperband", directory=str(tmp_path))


def test_rejects_settings_that_are_not_a_dict(tmp_path):
    with pytest.raises(TypeError, match="settings"):
        RegularizationTuner(directory=str(tmp_path), settings=["data"])


def test_timed_backup_restores_weights_optimizer_state_and_epoch(tmp_path):
    def build():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(keras.optimizers.Adam(0.1), "mse")
        return model

    rng = np.random.default_rng(0)
    trained = build()
    trained.optimizer.build(trained.trainable_variables)
    for variable in trained.variables + trained.optimizer.variables:  # a state to restore
        variable.assign(rng.integers(1, 9, variable.shape).astype(variable.dtype))
    backup = TimedBackup(str(tmp_path / "backup"), interval=0)
    backup.set_model(trained)
    backup.on_train_begin()
    backup.on_epoch_end(4)
    fresh = build()
    assert TimedBackup(str(tmp_path / "backup")).restore(fresh) == 5
    for a, b in zip(fresh.variables + fresh.optimizer.variables,
                    trained.variables + trained.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    assert int(keras.ops.convert_to_numpy(fresh.optimizer.iterations)) > 0
    backup.on_train_end()
    assert TimedBackup(str(tmp_path / "backup")).restore(build()) == 0  # removed at the end


def test_timed_backup_waits_for_its_interval(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    backup = TimedBackup(str(tmp_path / "backup"), interval=3600)
    backup.set_model(model)
    backup.on_train_begin()
    backup.on_epoch_end(0)
    assert not os.path.exists(backup.path)


def test_regularization_reaches_the_model(finished):
    tuner, result, _, _ = finished
    record = result.trials[2]
    model = tuner.hypermodel.build(tuner.oracle.get_trial(record.trial_id).hyperparameters)
    (dropout,) = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropout.rate == pytest.approx(record.regularization.dropout)
    assert isinstance(record.regularization, Regularization)


@pytest.mark.slow
def test_hyperband_search_promotes_from_the_past_trials_weights(data, tmp_path):
    tuner = RegularizationTuner(tiny_model, directory=str(tmp_path), tuner="hyperband",
                                max_epochs=3, space=FAST, seed=0, steps_per_execution=1,
                                references=("start", "none"))
    tuner.search(data[0], validation_data=data[1])
    trials = tuner.result().trials
    assert [t.label for t in trials[:2]] == ["start", "none"]
    promoted = [t for t in trials if "tuner/trial_id" in t.values]
    assert promoted, [t.values for t in trials]
    for record in promoted:
        past = tuner.oracle.get_trial(record.values["tuner/trial_id"])
        assert record.values["tuner/initial_epoch"] == 1 and record.epochs == 2
        assert record.label == tuner.label_of(past.hyperparameters.values)
        assert record.status == "COMPLETED"


def test_best_epoch_weights_writes_the_best_epoch_once_at_the_end(tmp_path):
    from keras_reg.tuning._checkpoint import BestEpochWeights

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = str(tmp_path / "best.weights.h5")
    callback = BestEpochWeights(keras_tuner.Objective("val_loss", "min"), path)
    callback.set_model(model)
    snapshots = []
    for epoch, val_loss in enumerate([3.0, 1.0, 2.0]):
        model.set_weights([np.full(w.shape, epoch, "float32") for w in model.get_weights()])
        snapshots.append(model.get_weights())
        callback.on_epoch_end(epoch, {"val_loss": val_loss})
        assert not os.path.exists(path)
    callback.on_train_end()
    for a, b in zip(model.get_weights(), snapshots[2]):  # the model itself is left as it was
        np.testing.assert_array_equal(a, b)
    model.load_weights(path)
    for a, b in zip(model.get_weights(), snapshots[1]):  # epoch 1 had the lowest val_loss
        np.testing.assert_array_equal(a, b)


def test_a_distributed_worker_never_deletes_the_shared_directory(finished, tmp_path,
                                                                   monkeypatch):
    _, _, _, root = finished
    shutil.copytree(root / "search", tmp_path / "search")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")  # nothing listens: no trial is asked for
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner7")
    tuner = RegularizationTuner(tiny_model, directory=str(tmp_path / "search"), overwrite=True,
                                **ARGS)
    assert tuner.is_worker and tuner.resumed_trials == 0
    assert os.path.exists(tmp_path / "search" / "search" / "trial_0" / "keras_reg_trial.json")


@pytest.mark.parametrize("min_steps,steps", [(1, 2), (5, 6)])
def test_min_steps_per_epoch_sets_the_trials_epoch_and_is_recorded(data, tmp_path, min_steps,
                                                                   steps):
    # 64 digits at batch 32 are 2 batches: an epoch of at least 1 step is one pass (2
    # steps), of at least 5 steps three passes (6 steps).
    tuner = RegularizationTuner(tiny_model, directory=str(tmp_path), space=FAST,
                                tuner="random", max_trials=1, seed=0, references=("start",),
                                probes=False, steps_per_execution=1,
                                min_steps_per_epoch=min_steps)
    assert tuner.settings["min_steps_per_epoch"] == min_steps
    tuner.search(data[0], validation_data=data[1], epochs=1)
    assert tuner.hypermodel.protocol.min_steps_per_epoch == min_steps
    model = tuner.get_best_models(1)[0]
    assert int(model.optimizer.iterations) == steps


@pytest.mark.parametrize("value,error", [(0, ValueError), (2.5, TypeError)])
def test_rejects_bad_min_steps_per_epoch(value, error, tmp_path):
    with pytest.raises(error, match="min_steps_per_epoch"):
        RegularizationTuner(tiny_model, directory=str(tmp_path), min_steps_per_epoch=value)
