"""k-fold cross-validation: the folds themselves, and a search whose trials are cross-validated."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.tuning._tiny import tiny_model
from keras_reg.tuning import RegularizationSpace, RegularizationTuner, SettingsMismatchError
from keras_reg.tuning.folds import Folds, check_folds, fold_of
from keras_reg.tuning.selection import SCORES

FAST = RegularizationSpace(l2=(0.0, 1e-3), dropout=(0.0, 0.3), drop_path="off",
                           mixup_alpha="off", cutmix_alpha="off", label_smoothing="off",
                           augment="off", input_noise="off", norm=None)


def _arrays(n=60, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4, 4, 1)).astype("float32")
    y = rng.integers(0, classes, n)
    return x, y


def _ds(x, y, batch=8):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


# --- the folds -----------------------------------------------------------------------------


def test_folds_are_stratified_and_balanced():
    x, y = _arrays(100, classes=4)
    fold = fold_of(x, y, 3, seed=1)
    sizes = np.bincount(fold, minlength=3)
    assert sizes.sum() == 100 and sizes.max() - sizes.min() <= 1
    for c in range(4):
        per_class = np.bincount(fold[y == c], minlength=3)
        assert per_class.max() - per_class.min() <= 1, (c, per_class)


def test_folds_do_not_depend_on_the_order_of_the_images():
    x, y = _arrays(50)
    fold = fold_of(x, y, 3, seed=7)
    perm = np.random.default_rng(3).permutation(50)
    np.testing.assert_array_equal(fold_of(x[perm], y[perm], 3, seed=7), fold[perm])


def test_the_seed_changes_the_folds_and_fixes_them():
    x, y = _arrays(60)
    a, b = fold_of(x, y, 3, seed=0), fold_of(x, y, 3, seed=1)
    np.testing.assert_array_equal(a, fold_of(x, y, 3, seed=0))
    assert (a != b).mean() > 0.3


@pytest.mark.parametrize("folds,error", [(1, ValueError), (0, ValueError), (2.0, TypeError),
                                         (True, TypeError), ("3", TypeError)])
def test_rejects_bad_fold_counts(folds, error):
    with pytest.raises(error, match="folds"):
        check_folds(folds)
    x, y = _arrays(10)
    with pytest.raises(error, match="folds"):
        fold_of(x, y, folds)


def test_rejects_more_folds_than_images():
    x, y = _arrays(4)
    with pytest.raises(ValueError, match="folds=5"):
        fold_of(x, y, 5)


def test_splits_pool_train_and_validation_and_hold_out_each_fold_once():
    x, y = _arrays(45)
    folds = Folds(_ds(x[:30], y[:30]), _ds(x[30:], y[30:]), 3, seed=0)
    assert len(folds) == 45 and folds.batch_size == 8
    seen = np.zeros(45, int)
    pooled = {folds.images[i].tobytes(): folds.labels[i] for i in range(45)}
    assert set(pooled) == {img.tobytes() for img in x}  # every image once, nothing else
    for j in range(3):
        train, validation = folds.split(j)
        assert folds.split(j)[0] is train  # built once
        held = folds.held_out(j)
        seen[held] += 1
        val_x = np.concatenate([b[0].numpy() for b in validation])
        val_y = np.concatenate([b[1].numpy() for b in validation])
        np.testing.assert_array_equal(val_x, folds.images[held])
        np.testing.assert_array_equal(val_y, folds.labels[held])
        batches = list(train)  # one pass: each pass is reshuffled
        fit_x = np.concatenate([b[0].numpy() for b in batches])
        fit_y = np.concatenate([b[1].numpy() for b in batches])
        assert len(fit_x) + len(held) == 45
        fit_keys = {img.tobytes() for img in fit_x}
        assert not fit_keys & {img.tobytes() for img in val_x}
        for img, label in zip(fit_x, fit_y):
            assert pooled[img.tobytes()] == label  # images keep their labels when shuffled
    np.testing.assert_array_equal(seen, 1)


def test_one_hot_labels_are_stratified_by_their_class():
    x, y = _arrays(30)
    onehot = np.eye(3, dtype="float32")[y]
    folds = Folds(_ds(x[:20], onehot[:20]), _ds(x[20:], onehot[20:]), 2, seed=0)
    np.testing.assert_array_equal(folds.labels, folds.targets.argmax(-1))
    assert folds.split(0)[1].element_spec[1].shape[-1] == 3


def test_folds_need_validation_and_plain_batches():
    x, y = _arrays(20)
    with pytest.raises(ValueError, match="validation_data"):
        Folds(_ds(x, y), None, 2)
    weighted = tf.data.Dataset.from_tensor_slices((x, y, np.ones(20, "float32"))).batch(4)
    with pytest.raises(ValueError, match="sample weights"):
        Folds(weighted, _ds(x, y), 2)
    with pytest.raises(ValueError, match="shapes"):
        Folds(_ds(x, y), _ds(x[:, :2], y), 2)


# --- a cross-validated search --------------------------------------------------------------


class _Curves(keras.callbacks.Callback):
    """Records every training run's objective curve (shared by the per-fold deep copies)."""

    runs = []

    def on_train_begin(self, logs=None):
        type(self).runs.append([])

    def on_epoch_end(self, epoch, logs=None):
        type(self).runs[-1].append(float(logs["val_data_loss"]))


@pytest.fixture(scope="module")
def crossvalidated(data, tmp_path_factory):
    _Curves.runs = []
    root = tmp_path_factory.mktemp("folds")
    tuner = RegularizationTuner(tiny_model, space=FAST, tuner="random", max_trials=2, seed=0,
                                references=("start",), probes=False, objective="val_loss",
                                steps_per_execution=1, folds=3, directory=str(root))
    tuner.search(data[0], validation_data=data[1], epochs=2, callbacks=[_Curves()])
    return tuner, list(_Curves.runs)


def test_each_trial_trains_one_model_per_fold_and_scores_the_mean(crossvalidated, data):
    tuner, runs = crossvalidated
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    assert [t.status for t in trials] == ["COMPLETED", "COMPLETED"]
    n_train = sum(int(b[0].shape[0]) for b in data[0])
    n_val = sum(int(b[0].shape[0]) for b in data[1])
    assert len(tuner._folds) == n_train + n_val
    # The reference runs in full over its 3 folds; the second trial may be stopped as
    # hopeless after a fold, which skips its other folds.
    assert len(runs) in (4, 6) and all(len(r) == 2 for r in runs)
    expected = np.mean([min(r) for r in runs[:3]])
    np.testing.assert_allclose(trials[0].score, expected, rtol=1e-6)
    directory = tuner.get_trial_dir(trials[0].trial_id)
    for name in ("checkpoint.weights.h5", "checkpoint.fold1.weights.h5",
                 "checkpoint.fold2.weights.h5"):
        assert os.path.exists(os.path.join(directory, name)), name
    scores = np.load(os.path.join(directory, SCORES))
    assert scores.shape == (len(tuner._folds),) and np.all(np.isfinite(scores))
    # The pooled scores: fold j's images scored by model j (the cross-entropy per image).
    np.testing.assert_allclose(scores.mean(), np.mean([min(r) for r in runs[:3]]), rtol=0.1)


def test_the_trial_model_is_fold_zeros(crossvalidated):
    tuner, _ = crossvalidated
    train, validation = tuner.fold_data(0)
    held = tuner._folds.held_out(0)
    model = tuner.get_best_models(1)[0]
    trial = tuner.result().best_trial
    path = tuner._weights_path(trial.trial_id, 0)
    reference = tiny_model(trial.regularization)
    reference.load_weights(path)
    images = tuner._folds.images[held]
    np.testing.assert_allclose(model.predict(images, verbose=0),
                               reference.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    assert sum(int(b[0].shape[0]) for b in validation) == len(held)


def test_fold_data_is_none_without_folds(tmp_path):
    tuner = RegularizationTuner(tiny_model, space=FAST, tuner="random", max_trials=1,
                                directory=str(tmp_path))
    assert tuner.folds is None and tuner.fold_data(0) is None


def test_folds_are_a_recorded_setting(crossvalidated):
    tuner, _ = crossvalidated
    with pytest.raises(SettingsMismatchError, match="folds: 3 -> 2"):
        RegularizationTuner(tiny_model, space=FAST, tuner="random", max_trials=2, seed=0,
                            references=("start",), probes=False, objective="val_loss",
                            steps_per_execution=1, folds=2, directory=tuner.directory)


def test_a_crossvalidated_search_needs_validation_data(data, tmp_path):
    tuner = RegularizationTuner(tiny_model, space=FAST, tuner="random", max_trials=1, folds=2,
                                directory=str(tmp_path))
    with pytest.raises(ValueError, match="validation_data"):
        tuner.search(data[0], epochs=1)


@pytest.mark.parametrize("folds", [1, 2.5])
def test_the_tuner_rejects_bad_folds(folds, tmp_path):
    with pytest.raises((ValueError, TypeError), match="folds"):
        RegularizationTuner(tiny_model, folds=folds, directory=str(tmp_path))


@pytest.mark.slow  # ~30 s: a Hyperband search of 2-fold trials
def test_hyperband_promotions_continue_each_folds_own_weights(data, tmp_path):
    tuner = RegularizationTuner(tiny_model, directory=str(tmp_path), tuner="hyperband",
                                max_epochs=3, space=FAST, seed=0, steps_per_execution=1,
                                references=("start",), probes=False, objective="val_loss",
                                folds=2)
    asked = []
    own = tuner._weights_path

    def weights_path(trial_id, fold=0):  # records which checkpoints the trials ask for
        asked.append((tuner.hypermodel.trial_id, trial_id, fold))  # (asking trial, ...)
        return own(trial_id, fold)

    tuner._weights_path = weights_path
    tuner.search(data[0], validation_data=data[1])
    trials = tuner.result().trials
    promoted = [t for t in trials if "tuner/trial_id" in t.values and t.status == "COMPLETED"]
    assert promoted, [t.values for t in trials]
    for record in promoted:
        past = record.values["tuner/trial_id"]
        # Each fold of the promoted trial started from the past trial's same fold.
        assert {(record.trial_id, past, 0), (record.trial_id, past, 1)} <= set(asked)
        for fold in (0, 1):
            # The past trial's fold checkpoints exist and were the starting points: a model
            # loaded from them differs between the folds (other data).
            assert os.path.exists(tuner._weights_path(past, fold))
        a, b = (tiny_model(record.regularization) for _ in range(2))
        a.load_weights(tuner._weights_path(past, 0))
        b.load_weights(tuner._weights_path(past, 1))
        assert not np.allclose(a.get_weights()[0], b.get_weights()[0])
        if os.path.exists(os.path.join(tuner.get_trial_dir(record.trial_id), SCORES)):
            scores = np.load(os.path.join(tuner.get_trial_dir(record.trial_id), SCORES))
            assert scores.shape == (len(tuner._folds),)


def test_a_trial_whose_process_died_continues_with_its_unfinished_folds(data, tmp_path):
    _Curves.runs = []
    kwargs = dict(space=FAST, tuner="random", max_trials=1, seed=0, references=("start",),
                  probes=False, objective="val_loss", steps_per_execution=1, folds=3,
                  directory=str(tmp_path))
    tuner = RegularizationTuner(tiny_model, **kwargs)
    tuner.search(data[0], validation_data=data[1], epochs=2, callbacks=[_Curves()])
    assert len(_Curves.runs) == 3
    (trial,) = tuner.oracle.trials.values()
    directory = tuner.get_trial_dir(trial.trial_id)
    records = [json.loads(open(os.path.join(directory, f"fold{j}.json")).read())
               for j in range(3)]
    scores = np.load(os.path.join(directory, SCORES))
    # As if the process had died during fold 1: folds 1 and 2 left no record.
    for j in (1, 2):
        os.remove(os.path.join(directory, f"fold{j}.json"))
    _Curves.runs = []
    results = tuner.run_trial(trial, *tuner.fold_data(0), epochs=2, callbacks=[_Curves()])
    assert len(_Curves.runs) == 2  # fold 0 was read back, not trained again
    assert results[0] == records[0]["metrics"]
    # Folds 1 and 2 trained again (the same seeds; the shuffle has moved on, so close only).
    assert [r["val_data_loss"] for r in results] == pytest.approx(
        [rec["metrics"]["val_data_loss"] for rec in records], rel=0.02)
    again = np.load(os.path.join(directory, SCORES))
    held = tuner._folds.held_out(0)
    np.testing.assert_array_equal(again[held], scores[held])  # fold 0's, read back
    assert np.all(np.isfinite(again)) and not np.array_equal(again, scores)
