"""search(): the one-call search end to end on feature vectors and on sequences with the
built-in models, failed trials, and its argument errors."""

import traceback

import numpy as np
import pytest

from keras_reg.tuning import (RegularizationSpace, SearchError, SearchResult, TrainingProtocol,
                              TrialRecord, search)
from tests.tuning._tiny import PROTOCOL, SPACE, tiny_model

NOTE = "the inputs are not images: augmentation, CutMix and flips are off"


def _accuracy(model, x, y):
    return float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == y))


def _split(x, y, seed=0, share=0.25):
    """A stratified split: (train, validation) pairs."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), bool)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        val[members[:int(round(share * len(members)))]] = True
    return (x[~val], y[~val]), (x[val], y[val])


# ------------------------------------------------------------------------------ tabular

@pytest.fixture(scope="module")
def breast_cancer():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    (x_train, y_train), (x_val, y_val) = _split(x.astype("float32"), y)
    low, high = x_train.min(axis=0), x_train.max(axis=0)
    scale = lambda a: ((a - low) / (high - low)).astype("float32")  # noqa: E731 [0, 1]
    return (scale(x_train), y_train), (scale(x_val), y_val)


@pytest.mark.slow  # about 50 s on 2 busy cores (Mixup and noise pipelines, the calibrated metric)
def test_a_tabular_search_with_the_built_in_mlp(breast_cancer, tmp_path, capsys):
    # 30 features, 2 classes, arrays in; the default space's image-only dimensions (augment,
    # CutMix) turned off with a note; Mixup and input noise fixed on for every trial
    train, validation = breast_cancer
    space = RegularizationSpace(l2="off", dropout=[0.0, 0.2], drop_path="off",
                                mixup_alpha=0.2, label_smoothing="off", input_noise=0.05,
                                norm="off")
    seen = []
    result = search(None, train, validation, space=space, tuner="random", max_trials=2,
                    epochs=2, seed=0, protocol=PROTOCOL, directory=str(tmp_path),
                    references=("start",), probes=False,
                    progress=lambda record, total: seen.append(record.status))
    assert isinstance(result, SearchResult)
    assert NOTE in result.notes and f"keras_reg: {NOTE}" in capsys.readouterr().out
    assert f"Note: {NOTE}" in str(result)
    assert seen == ["COMPLETED", "COMPLETED"]
    assert [t.label for t in result.trials] == ["start", None]
    for record in result.trials:
        assert record.status == "COMPLETED" and record.epochs == 2, record.message
        reg = record.regularization
        assert (reg.mixup_alpha, reg.input_noise) == (0.2, 0.05)
        assert (reg.augment, reg.cutmix_alpha, reg.flip) == (0.0, 0.0, None)
    model = result.best_model
    assert model.name == "keras_reg_mlp"
    x_val, y_val = validation
    assert model.predict(x_val[:5], verbose=0).shape == (5, 2)
    majority = max(np.mean(y_val), 1 - np.mean(y_val))  # 0.63
    assert _accuracy(model, x_val, y_val) > majority + 0.15


# ------------------------------------------------------------------------------ sequences

def noisy_sines(n, steps=32, frequencies=(1, 3, 6), seed=0):
    """Sequences `(steps, 1)`: a sine of one of `frequencies` cycles (the class) at a random
    phase, plus Gaussian noise of stddev 0.5."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(frequencies)
    t = np.arange(steps) / steps
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x = np.sin(2 * np.pi * np.asarray(frequencies)[y][:, None] * t + phase)
    x += 0.5 * rng.normal(size=x.shape)
    return x[..., None].astype("float32"), y


@pytest.mark.slow  # about 30 s on 2 cores: 2 trials of 4 epochs of 32 steps
def test_a_sequence_search_with_the_built_in_conv1d(tmp_path):
    train, validation = noisy_sines(96, seed=0), noisy_sines(60, seed=1)
    space = RegularizationSpace(l2=(0.0, 1e-3), dropout=[0.0, 0.2], drop_path="off",
                                mixup_alpha="off", label_smoothing="off", input_noise=[0.0, 0.1])
    result = search(None, train, validation, space=space, tuner="bayesian", max_trials=2,
                    epochs=4, seed=0, directory=str(tmp_path), references=("start",),
                    probes=False, protocol=TrainingProtocol(patience=None))
    assert NOTE in result.notes
    assert [t.status for t in result.trials] == ["COMPLETED", "COMPLETED"]
    model = result.best_model
    assert model.name == "keras_reg_conv1d" and model.input_shape == (None, 32, 1)
    assert model.predict(validation[0][:4], verbose=0).shape == (4, 3)
    assert _accuracy(model, *validation) > 1 / 3 + 0.2


# ------------------------------------------------------------------------------ failures

# dropout 0 (the `start` reference) or 0.2 (the searched trial, the only other value)
ONE_CHOICE = RegularizationSpace(l2="off", dropout=[0.0, 0.2], drop_path="off",
                                 mixup_alpha="off", cutmix_alpha="off", label_smoothing="off",
                                 augment="off", input_noise="off", norm="off")


def test_a_failed_trial_says_why_in_its_record_and_the_table(data, tmp_path):
    from tests.tuning._tiny import tiny_model

    def build(reg):
        if reg.dropout:
            raise ValueError("dropout is not supported here")
        return tiny_model(reg)

    result = search(build, data[0], data[1], space=ONE_CHOICE, tuner="random", max_trials=2,
                    epochs=1, seed=0, protocol=PROTOCOL, directory=str(tmp_path),
                    references=("start",), probes=False)
    ok, failed = result.trials
    assert (ok.status, ok.message) == ("COMPLETED", "")
    assert failed.status == "FAILED" and failed.objective is None
    assert failed.regularization.dropout == 0.2
    assert failed.message == "ValueError: dropout is not supported here"
    assert result.best_trial is ok and result.searched == []
    table = result.to_markdown()
    assert "| 2/2 |  | dropout=0.2 | FAILED |" in table
    assert "Trial 2 failed: ValueError: dropout is not supported here" in table


def test_a_multi_line_error_is_recorded_by_its_first_line():
    # Keras's errors run over several lines ("Exception encountered when calling ...",
    # then the arguments): the record keeps the line that names the error
    try:
        raise ValueError("dropout is not supported here\n\nArguments received:\n  reg=...")
    except ValueError:
        message = traceback.format_exc()
    record = TrialRecord("1", {"dropout": 0.2}, status="FAILED", message=message)
    assert record.message == "ValueError: dropout is not supported here"


def test_no_completed_trial_raises_with_the_first_failure(data, tmp_path):
    def broken(reg):
        raise RuntimeError("broken builder for the test")

    with pytest.raises(SearchError, match="First failure \\(trial 1\\): RuntimeError: broken "
                                          "builder for the test"):
        search(broken, data[0], data[1], space=SPACE, tuner="random", max_trials=1, epochs=1,
               directory=str(tmp_path / "one"), seed=0)
    # a search of 5 trials stops after 3 consecutive failures (KerasTuner's limit)
    with pytest.raises(SearchError, match=r"\(3 trial\(s\) ran"):
        search(broken, data[0], data[1], space=SPACE, tuner="random", max_trials=5, epochs=1,
               directory=str(tmp_path / "five"), seed=0)


# ------------------------------------------------------------------------------ arguments

@pytest.mark.parametrize("kwargs, error, name", [
    ({"tuner": "grid"}, ValueError, "tuner"),
    ({"max_trials": 0}, ValueError, "max_trials"),
    ({"epochs": 0}, ValueError, "epochs"),
    ({"space": {"l2": 1e-4}}, TypeError, "space"),
    ({"validation": ([0.0], [0, 1])}, ValueError, "validation"),
])
def test_bad_arguments_name_themselves(data, tmp_path, kwargs, error, name):
    with pytest.raises(error, match=name):
        search(**{"train": data[0], "validation": data[1], "directory": str(tmp_path),
                  **kwargs})


def test_rejects_missing_train():
    with pytest.raises(ValueError, match="train"):
        search()


# ------------------------------------------------------------------------------ refit

@pytest.mark.parametrize("refit", [True, False])
def test_refit_hands_over_the_values_trained_on_train_and_validation(data, tmp_path, refit):
    result = search(tiny_model, data[0], data[1], space=SPACE, tuner="random", max_trials=2,
                    epochs=3, seed=0, protocol=PROTOCOL, references=("start",),
                    directory=str(tmp_path), refit=refit)
    assert result.refitted is refit
    trial_model = result.tuner.get_best_models(1)[0]  # KerasTuner's best-epoch checkpoint
    same = all(np.array_equal(a, b) for a, b in zip(result.best_model.get_weights(),
                                                    trial_model.get_weights()))
    assert same is not refit
    x_val, y_val = (np.concatenate(a) for a in zip(*data[1].as_numpy_iterator()))
    if refit:  # trained on the validation digits too: it fits them better than the trial did
        assert _accuracy(result.best_model, x_val, y_val) > _accuracy(trial_model, x_val, y_val)
        assert 1 <= result.best_trial.best_epoch <= 3


def test_refit_needs_the_validation_data(data, tmp_path):
    with pytest.raises(ValueError, match="validation"):
        search(tiny_model, data[0], None, space=SPACE, directory=str(tmp_path))
    with pytest.raises(TypeError, match="refit"):
        search(tiny_model, data[0], data[1], space=SPACE, directory=str(tmp_path), refit=1)
