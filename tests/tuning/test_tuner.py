"""RegularizationTuner: starting points first, trials as records, the handed-over model,
settings and resume, TensorBoard, argument errors."""

import os

import keras
import keras_tuner
import numpy as np
import pytest

from keras_reg.tuning import (Regularization, RegularizationSpace, RegularizationTuner,
                              SearchError, SettingsMismatchError,
                              parse_objective)
from keras_reg.tuning.oracle import TRUST_RADIUS
from keras_reg.tuning.space import probes, references
from tests.tuning._tiny import PROTOCOL, SPACE, tiny_model
from tests.tuning.conftest import ARGS, EPOCHS


# ------------------------------------------------------------------------------ a search

def test_the_references_are_the_first_trials_in_order(finished):
    result = finished.result
    refs = references(SPACE)
    assert [t.label for t in result.trials] == ["start", "none", None]
    assert [t.number for t in result.trials] == [1, 2, 3]
    for record in result.trials[:2]:
        assert record.values == SPACE.hp_values(refs[record.label])
        assert record.regularization == refs[record.label]
    searched = result.trials[2]
    assert SPACE.contains(searched.regularization)
    assert searched.regularization not in refs.values()
    assert set(result.references) == {"start", "none"}
    assert result.references["none"] is result.trials[1]
    assert result.searched == [searched]
    assert finished.tuner.starting_points == [("start", refs["start"]), ("none", refs["none"])]


def test_labelled_trials_and_trials_near_the_incumbent_run_in_full(finished):
    """The median rule may stop only whole-space trials: the starting points and the trials
    drawn in the trust region around the incumbent are judged on full runs."""
    import types

    protected = finished.tuner.hypermodel.protected
    start, _, searched = finished.result.trials
    assert searched.values[TRUST_RADIUS] == pytest.approx(0.1)  # after the points: radius 0.1
    assert protected(types.SimpleNamespace(values=start.values))
    assert protected(types.SimpleNamespace(values=searched.values))
    anywhere = {k: v for k, v in searched.values.items() if k != TRUST_RADIUS}
    assert not protected(types.SimpleNamespace(values=anywhere))


def test_every_trial_runs_its_epochs_and_reports_progress(finished):
    assert finished.seen == [(1, "start", 3), (2, "none", 3), (3, None, 3)]
    for record in finished.result.trials:
        assert record.status == "COMPLETED" and record.message == ""
        assert record.epochs == EPOCHS
        for key in ("loss", "val_loss", "val_data_loss", "val_calibrated_loss",
                    "val_temperature", "val_accuracy"):
            assert len(record.history[key]) == EPOCHS, key
        # KerasTuner's score: the best epoch's objective
        assert record.objective == pytest.approx(min(record.history["val_calibrated_loss"]))
        assert 0 < record.fit_seconds <= record.seconds


def test_the_trials_values_reach_the_model(finished):
    record = finished.result.trials[2]
    hp = finished.tuner.oracle.get_trial(record.trial_id).hyperparameters
    model = finished.tuner.hypermodel.build(hp)
    (dropout,) = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropout.rate == pytest.approx(record.regularization.dropout)
    dense = model.layers[-1]
    kernel = dense.kernel.numpy()
    expected = record.regularization.l2 * float(np.sum(kernel**2))
    got = 0.0 if dense.kernel_regularizer is None else float(dense.kernel_regularizer(kernel))
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-12)


def test_the_handed_over_trial_comes_first_in_kerastuners_answers(finished, data):
    tuner, result = finished.tuner, finished.result
    best = result.best_trial
    assert tuner.get_best_hyperparameters(1)[0].values == best.values
    assert result.best_hyperparameters.values == best.values
    assert result.best_regularization == best.regularization
    assert len(tuner.get_best_hyperparameters(3)) == 3
    images = next(iter(data[1]))[0]
    (model,) = tuner.get_best_models(1)
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (len(images), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result.best_model.predict(images, verbose=0), probabilities,
                               atol=1e-6)


def test_results_summary_and_the_table(finished, capsys):
    finished.tuner.results_summary(2)
    out = capsys.readouterr().out
    assert "Objective: val_calibrated_loss (min)" in out
    assert out.count("/3 |") == 2  # the two best trials
    result = finished.result
    table = result.to_markdown()
    assert "(handed over)" in table and table.count("/3 |") == 3
    for record in result.trials:
        assert f"| {record.number}/3 | {record.label or ''} |" in table
    assert str(result).startswith("Search: 3/3 trials completed; handed over trial "
                                  f"{result.best_trial.number}")


def test_tensorboard_logs_each_trial(finished):
    logged = sorted(os.listdir(finished.tensorboard))
    assert logged == [t.trial_id for t in finished.result.trials]
    for trial_id in logged:
        files = [f for _, _, names in os.walk(os.path.join(finished.tensorboard, trial_id))
                 for f in names]
        assert any(f.startswith("events.out.tfevents") for f in files)


# ------------------------------------------------------------------------------ resume

def test_same_settings_resume_without_rerunning_finished_trials(finished, data, tmp_path):
    directory = finished.copy(tmp_path)
    ran = []

    def tuner(**changes):
        return RegularizationTuner(
            tiny_model, directory=directory,
            progress=lambda record, total: ran.append((record.number, record.label, total)),
            **{**ARGS, **changes})

    again = tuner()
    assert again.resumed_trials == 3
    again.search(data[0], validation_data=data[1], epochs=EPOCHS)
    assert ran == []  # nothing run again
    before = {t.number: (t.values, t.objective, t.label) for t in finished.result.trials}
    assert {t.number: (t.values, t.objective, t.label)
            for t in again.result().trials} == before
    # a larger budget resumes too, and runs only the new trial
    bigger = tuner(max_trials=4)
    bigger.search(data[0], validation_data=data[1], epochs=EPOCHS)
    assert ran == [(4, None, 4)]
    trials = bigger.result().trials
    assert len(trials) == 4 and trials[3].status == "COMPLETED"
    assert {t.number: (t.values, t.objective, t.label) for t in trials[:3]} == before


@pytest.mark.parametrize("changes, name, shown", [
    ({"seed": 4}, "seed", "seed: 3 -> 4"),
    ({"tuner": "bayesian"}, "tuner", "tuner: 'random' -> 'bayesian'"),
    ({"protocol": PROTOCOL.replace(learning_rate=1e-3)}, "protocol", "protocol: "),
    ({"space": RegularizationSpace(l2=(0.0, 1e-2))}, "space", "space: "),
    ({"references": ("start",)}, "references", "references: "),
    ({"settings": {"dataset": "mnist"}}, None, None),  # a new setting of the caller's: kept
])
def test_other_settings_raise_naming_the_setting(finished, changes, name, shown, tmp_path):
    directory = finished.copy(tmp_path)
    if name is None:
        RegularizationTuner(tiny_model, directory=directory, **{**ARGS, **changes})
        with pytest.raises(SettingsMismatchError, match="dataset: 'mnist' -> 'cifar10'"):
            RegularizationTuner(tiny_model, directory=directory,
                                **{**ARGS, "settings": {"dataset": "cifar10"}})
        return
    with pytest.raises(SettingsMismatchError) as info:
        RegularizationTuner(tiny_model, directory=directory, **{**ARGS, **changes})
    assert set(info.value.differences) == {name}
    message = str(info.value)
    assert shown in message and "overwrite=True" in message
    assert isinstance(info.value, ValueError)


def test_other_epochs_or_data_raise_at_search(finished, data, tmp_path):
    directory = finished.copy(tmp_path)
    tuner = RegularizationTuner(tiny_model, directory=directory, **ARGS)
    with pytest.raises(SettingsMismatchError, match='"epochs": 2.*"epochs": 3'):
        tuner.search(data[0], validation_data=data[1], epochs=3)
    half = data[0].take(1)  # 32 digits instead of 64
    with pytest.raises(SettingsMismatchError, match="num_examples"):
        tuner.search(half, validation_data=data[1], epochs=EPOCHS)


def test_overwrite_starts_over(finished, tmp_path):
    directory = finished.copy(tmp_path)
    tuner = RegularizationTuner(tiny_model, directory=directory, overwrite=True,
                                **{**ARGS, "tuner": "bayesian", "seed": 9})
    assert tuner.resumed_trials == 0
    with pytest.raises(SearchError, match=r"0 trial\(s\) ran"):
        tuner.result()


def test_a_distributed_worker_never_deletes_the_shared_directory(finished, tmp_path,
                                                                   monkeypatch):
    directory = finished.copy(tmp_path)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")  # nothing listens: no trial is asked for
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner7")
    tuner = RegularizationTuner(tiny_model, directory=directory, overwrite=True, **ARGS)
    assert tuner.is_worker and tuner.resumed_trials == 0
    assert os.path.exists(os.path.join(directory, "search", "trial_0", "trial.json"))


# ------------------------------------------------------------------------------ the oracle

def _first_trials(directory, n, **kwargs):
    """The values of the first `n` trials the oracle hands out (created, not run)."""
    tuner = RegularizationTuner(tiny_model, directory=str(directory), seed=0, **kwargs)
    trials = [tuner.oracle.create_trial(f"tuner{i}") for i in range(n)]
    return tuner, [t.hyperparameters.values for t in trials]


@pytest.mark.parametrize("kind", ["random", "bayesian"])
def test_the_oracle_hands_out_references_then_probes_then_its_own(tmp_path, kind):
    space = RegularizationSpace()
    tuner, values = _first_trials(tmp_path, 6, space=space, tuner=kind, max_trials=8)
    # `none` lies outside the default space (batch norm is fixed)
    expected = [("start", references(space)["start"]), ("recipe", Regularization.recipe())]
    expected += list(probes(space).items())
    assert [label for label, _ in tuner.starting_points] == [
        "start", "recipe", "strong", "smooth", "augmented"]
    assert tuner.starting_points == expected
    assert values[:5] == [space.hp_values(reg) for _, reg in expected]
    assert values[5] not in values[:5]


def test_without_probes_or_references_the_oracle_searches_at_once(tmp_path):
    space = RegularizationSpace()
    tuner, values = _first_trials(tmp_path / "refs", 3, space=space, tuner="random",
                                  max_trials=5, probes=False)
    assert [label for label, _ in tuner.starting_points] == ["start", "recipe"]
    assert values[:2] == [space.hp_values(reg) for _, reg in tuner.starting_points]
    tuner, values = _first_trials(tmp_path / "none", 2, space=space, tuner="random",
                                  max_trials=5, probes=False, references=())
    assert tuner.starting_points == []
    assert space.hp_values(space.start()) not in values


def test_a_seed_fixes_the_trials(tmp_path):
    runs = [_first_trials(tmp_path / name, 3, space=SPACE, tuner="random", max_trials=3,
                          references=())[1] for name in "ab"]
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[0][1]


def test_oracle_seed_is_never_false_and_one_to_one():
    from keras_reg.tuning.tuner import oracle_seed

    assert oracle_seed(None) is None
    assert oracle_seed(0) == 1  # KerasTuner would replace a seed of 0 by a random one
    seeds = [oracle_seed(s) for s in (0, 1, 2, 10_000, 2**31, 2**32 - 2)]
    assert len(set(seeds)) == len(seeds) and all(1 <= s <= 2**32 - 1 for s in seeds)


# ------------------------------------------------------------------------------ arguments

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


@pytest.mark.parametrize("kwargs, error, name", [
    ({"tuner": "hyperband"}, ValueError, "tuner"),
    ({"max_trials": 0}, ValueError, "max_trials"),
    ({"max_trials": True}, ValueError, "max_trials"),
    ({"seed": -1}, ValueError, "seed"),
    ({"space": {"l2": 1e-4}}, TypeError, "space"),
    ({"protocol": {"learning_rate": 1e-3}}, TypeError, "protocol"),
    ({"build_model": "cnn"}, TypeError, "build_model"),
    ({"references": ("start", "best")}, ValueError, "references"),
    ({"references": ("start", "start")}, ValueError, "references"),
    ({"settings": ["data"]}, TypeError, "settings"),
    ({"selection_margin": -0.5}, ValueError, "selection_margin"),
    ({"objective": "val_loss:down"}, ValueError, "objective"),
])
def test_bad_arguments_name_themselves(tmp_path, kwargs, error, name):
    with pytest.raises(error, match=name):
        RegularizationTuner(directory=str(tmp_path), **kwargs)


def test_bad_search_arguments_name_themselves(tmp_path, data):
    tuner = RegularizationTuner(tiny_model, directory=str(tmp_path), **ARGS)

    class NoCopies(keras.callbacks.Callback):
        def __deepcopy__(self, memo):
            raise TypeError("no copies")

    with pytest.raises(ValueError, match="train"):
        tuner.search(None)
    with pytest.raises(ValueError, match="epochs"):
        tuner.search(data[0], validation_data=data[1], epochs=0)
    with pytest.raises(TypeError, match="callbacks"):
        tuner.search(data[0], validation_data=data[1], epochs=1, callbacks=[NoCopies()])
    with pytest.raises(TypeError, match="validation_data"):
        tuner.search(data[0], validation_data="val.npz", epochs=1)
