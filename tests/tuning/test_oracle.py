"""The oracles' trust region: searched trials drawn near the incumbent, the radius doubling
when they do not improve and reset when they do, kept over a resume."""

import keras_tuner
import numpy as np
import pytest

from keras_reg.tuning.oracle import ORACLES, TRUST_RADIUS

START = {"a": 0.5, "b": 0.01, "c": 3, "f": 7}
OTHER = {"a": 0.9, "b": 0.001, "c": 5, "f": 7}
POINTS = [("start", START), ("other", OTHER)]


def _oracle(directory, kind, points=POINTS, hp=None):
    if hp is None:
        hp = keras_tuner.HyperParameters()
        hp.Float("a", 0.0, 1.0)
        hp.Float("b", 1e-4, 1e-1, sampling="log")
        hp.Choice("c", [1, 2, 3, 4, 5])
        hp.Fixed("f", 7)
    args = dict(objective=keras_tuner.Objective("score", "max"), max_trials=100, seed=1,
                hyperparameters=hp)
    if kind == "bayesian":
        args["num_initial_points"] = 3
    oracle = ORACLES[kind](**args)
    oracle._set_project_dir(str(directory), "p")
    oracle.configure(points, project_dir=directory / "p", margin=1.0)
    return oracle


def _end(oracle, trial, score=None):
    """Ends `trial` with `score`, or failed when `score` is None."""
    if score is not None:
        oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = "COMPLETED" if score is not None else "FAILED"
    oracle.end_trial(trial)


def _vector(oracle, values):
    return np.array([hp.value_to_prob(values[hp.name]) for hp in oracle._searched()])


def _assert_in_box(oracle, values, centre, radius):
    """`values` were drawn in the box: each float's position, and each choice's bucket."""
    assert values["f"] == 7
    for hp, x in zip(oracle._searched(), centre):
        lo, hi = max(x - radius, 0.0), min(x + radius, 1.0)
        if isinstance(hp, keras_tuner.engine.hyperparameters.Choice):
            assert values[hp.name] in {hp.prob_to_value(p) for p in np.linspace(lo, hi, 201)}
        else:
            assert lo - 1e-9 <= hp.value_to_prob(values[hp.name]) <= hi + 1e-9


@pytest.mark.parametrize("kind", ["random", "bayesian"])
def test_searched_trials_lie_in_the_box_around_the_incumbent(tmp_path, kind):
    oracle = _oracle(tmp_path, kind)
    assert oracle.trust_region() is None  # nothing completed
    first = oracle.create_trial("t")
    assert first.hyperparameters.values == START
    _end(oracle, first, 1.0)
    assert oracle.trust_region() is None  # a starting point is still to be issued
    _end(oracle, oracle.create_trial("t"), 0.5)
    incumbent, score = START, 1.0
    for _ in range(5):  # every searched trial improves: the box stays small, moves with it
        centre, radius = oracle.trust_region()
        assert radius == oracle.INITIAL_RADIUS
        np.testing.assert_allclose(centre, _vector(oracle, incumbent))
        if kind == "bayesian":  # the acquisition is optimized in the box
            np.testing.assert_allclose(oracle._get_hp_bounds(), np.stack(
                [np.clip(centre - radius, 0, 1), np.clip(centre + radius, 0, 1)], 1))
        trial = oracle.create_trial("t")
        assert trial.status == "RUNNING" and oracle.label_of(trial.hyperparameters.values) is None
        _assert_in_box(oracle, trial.hyperparameters.values, centre, radius)
        score += 1.0
        _end(oracle, trial, score)
        incumbent = trial.hyperparameters.values
    assert len(oracle.trials) == 7 and len({str(t.hyperparameters.values)
                                            for t in oracle.trials.values()}) == 7


@pytest.mark.parametrize("kind", ["random", "bayesian"])
def test_the_radius_doubles_without_improvement_and_resets_with_one(tmp_path, kind):
    oracle = _oracle(tmp_path, kind)
    _end(oracle, oracle.create_trial("t"), 1.0)
    _end(oracle, oracle.create_trial("t"), 0.5)
    start = _vector(oracle, START)
    for score, radius in ((0.2, 0.2), (None, 0.4)):  # a worse trial, a failed one
        trial = oracle.create_trial("t")
        _assert_in_box(oracle, trial.hyperparameters.values, start, radius / 2)
        _end(oracle, trial, score)
        centre, got = oracle.trust_region()
        np.testing.assert_allclose(centre, start)
        assert got == pytest.approx(radius)
    _end(oracle, oracle.create_trial("t"), 0.9)
    assert oracle.trust_region() is None  # radius 0.8: the whole space
    # Two trials issued against the same incumbent (1.0), as on two workers: one beats it,
    # then the other beats the old incumbent but not the new one: both reset the radius.
    first, second = oracle.create_trial("t1"), oracle.create_trial("t2")
    _end(oracle, first, 3.0)
    centre, radius = oracle.trust_region()
    np.testing.assert_allclose(centre, _vector(oracle, first.hyperparameters.values))
    assert radius == oracle.INITIAL_RADIUS
    _end(oracle, second, 2.0)
    centre, radius = oracle.trust_region()
    np.testing.assert_allclose(centre, _vector(oracle, first.hyperparameters.values))
    assert radius == oracle.INITIAL_RADIUS
    # a searched trial that ties the incumbent is no improvement
    _end(oracle, oracle.create_trial("t"), 3.0)
    assert oracle.trust_region()[1] == pytest.approx(0.2)


@pytest.mark.parametrize("kind", ["random", "bayesian"])
def test_a_trial_drawn_in_the_trust_region_says_so(tmp_path, kind):
    """Its values carry the radius (a distributed worker reads it there): such trials run in
    full, as the starting points do; the points and whole-space trials carry none."""
    oracle = _oracle(tmp_path, kind)
    for score in (1.0, 0.5):
        point = oracle.create_trial("t")
        assert TRUST_RADIUS not in point.hyperparameters.values
        _end(oracle, point, score)
    radii = []
    for _ in range(4):  # no improvement: 0.1, 0.2, 0.4, then the whole space
        trial = oracle.create_trial("t")
        radii.append(trial.hyperparameters.values.get(TRUST_RADIUS))
        assert oracle.label_of(trial.hyperparameters.values) is None
        _end(oracle, trial, 0.1)
    assert radii == [pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.4), None]


def test_a_trust_region_trial_is_no_duplicate_of_the_same_values(tmp_path):
    """The radius in the values does not hide a repeat from KerasTuner's duplicate check: on
    ten choices the random oracle never proposes the same values twice (start included)."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("c", list(range(1, 11)))
    oracle = _oracle(tmp_path, "random", points=[("start", {"c": 5})], hp=hp)
    proposed = []
    for score in [1.0] + [0.5] * 9:
        trial = oracle.create_trial("t")
        proposed.append(trial.hyperparameters.values["c"])
        _end(oracle, trial, score)
    assert sorted(proposed) == list(range(1, 11))
    assert any(TRUST_RADIUS in t.hyperparameters.values for t in oracle.trials.values())


@pytest.mark.parametrize("kind", ["random", "bayesian"])
def test_the_trust_region_survives_a_resume(tmp_path, kind):
    oracle = _oracle(tmp_path, kind)
    _end(oracle, oracle.create_trial("t"), 1.0)
    _end(oracle, oracle.create_trial("t"), 0.5)
    best = oracle.create_trial("t")
    _end(oracle, best, 2.0)
    _end(oracle, oracle.create_trial("t"), 0.1)  # radius 0.2 around `best`
    centre, radius = oracle.trust_region()
    assert radius == pytest.approx(0.2)
    state = oracle.get_state()
    assert sorted(state["keras_reg"]["incumbents"]) == ["002", "003"]
    resumed = _oracle(tmp_path, kind)
    resumed.reload()  # the trials from their files, then `set_state` from the saved state
    assert resumed.incumbents == oracle.incumbents
    got_centre, got_radius = resumed.trust_region()
    np.testing.assert_allclose(got_centre, centre)
    np.testing.assert_allclose(got_centre, _vector(resumed, best.hyperparameters.values))
    assert got_radius == radius
    for i in range(4):
        trial = resumed.create_trial(f"t{i}")
        _assert_in_box(resumed, trial.hyperparameters.values, centre, radius)


@pytest.mark.parametrize("kind", ["random", "bayesian"])
def test_from_radius_one_half_the_whole_space(tmp_path, kind):
    oracle = _oracle(tmp_path, kind)
    _end(oracle, oracle.create_trial("t"), 1.0)
    _end(oracle, oracle.create_trial("t"), 0.5)
    for _ in range(3):  # 0.2, 0.4, 0.8
        _end(oracle, oracle.create_trial("t"), 0.0)
    assert oracle.trust_region() is None
    if kind == "bayesian":
        np.testing.assert_array_equal(oracle._get_hp_bounds(), [[0, 1]] * 3)
    start = _vector(oracle, START)
    distances = [np.abs(_vector(oracle, oracle.create_trial(f"w{i}").hyperparameters.values)
                        - start).max() for i in range(12)]
    assert max(distances) > 0.4  # outside the last box (half-width 0.4)


def test_a_box_with_no_untried_values_falls_back_to_the_whole_space(tmp_path):
    hp = keras_tuner.HyperParameters()
    hp.Choice("c", [1, 2, 3, 4, 5])
    hp.Fixed("f", 7)
    oracle = _oracle(tmp_path, "random", points=[("start", {"c": 3, "f": 7})], hp=hp)
    _end(oracle, oracle.create_trial("t"), 1.0)
    assert oracle.trust_region()[1] == oracle.INITIAL_RADIUS  # the box holds only c=3
    trial = oracle.create_trial("t")
    assert trial.status == "RUNNING" and trial.hyperparameters.values["c"] != 3
