"""RegularizationSpace and Regularization: values, helpers, KerasTuner declaration, validation."""

import json

import keras_tuner
import numpy as np
import pytest

from keras_reg import regularizers
from keras_reg.data import Augment, MixupCutMix
from keras_reg.tuning import Regularization, RegularizationSpace
from keras_reg.tuning.space import NAMES, initial_points, references


def test_none_is_the_unregularized_baseline():
    reg = Regularization.none()
    assert reg.to_dict() == {"l2": 0.0, "dropout": 0.0, "drop_path": 0.0, "mixup_alpha": 0.0,
                             "cutmix_alpha": 0.0, "label_smoothing": 0.0, "augment": 0.0,
                             "input_noise": 0.0, "norm": None, "flip": None}
    assert reg == Regularization() and reg.kernel_regularizer() is None
    assert reg.transform(10) is None and reg.augmentation() is None
    assert reg.describe() == "none"


def test_kernel_regularizer_is_keras_reg_l2_with_the_strength():
    r = Regularization(l2=3e-4).kernel_regularizer()
    assert isinstance(r, type(regularizers.l2(1.0)))
    w = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(float(r(w)), 3e-4 * float((w**2).sum()), rtol=1e-6)


def test_drop_path_rates_follow_the_linear_rule():
    np.testing.assert_allclose(Regularization(drop_path=0.3).drop_path_rates(4),
                               [0.0, 0.1, 0.2, 0.3], atol=1e-7)


def test_transform_carries_the_trial_values():
    t = Regularization(mixup_alpha=0.4, cutmix_alpha=0.0, label_smoothing=0.1).transform(7,
                                                                                          seed=3)
    assert isinstance(t, MixupCutMix)
    assert t.num_classes == 7 and t.seed == 3
    assert t.mixup_alpha == pytest.approx(0.4) and t.cutmix_alpha == 0.0
    assert t.label_smoothing == pytest.approx(0.1)
    # label smoothing alone still needs the transform (soft targets)
    assert Regularization(label_smoothing=0.05).transform(10) is not None


def test_round_trip_and_equality():
    reg = Regularization(l2=1e-5, dropout=0.2, norm="group")
    assert Regularization.from_dict({**reg.to_dict(), "tuner/epochs": 3}) == reg
    assert Regularization(norm="none").norm is None


def test_space_declares_ranges_choices_fixed_and_disabled():
    space = RegularizationSpace(l2=(1e-5, 1e-2), dropout=[0.0, 0.25], drop_path=None,
                                mixup_alpha=0.2, cutmix_alpha=None, label_smoothing=(0.0, 0.1),
                                augment="off", input_noise=0, norm=["batch", None])
    hp = keras_tuner.HyperParameters()
    reg = space.declare(hp)
    by_name = {p.name: p for p in hp.space}
    assert set(by_name) == {"l2", "dropout", "mixup_alpha", "label_smoothing", "input_noise",
                            "norm"}
    assert by_name["l2"].sampling == "log"
    assert list(by_name["norm"].values) == ["batch", "none"]
    assert reg.mixup_alpha == 0.2 and reg.drop_path == 0.0 and reg.cutmix_alpha == 0.0
    assert reg.augment == 0.0 and reg.input_noise == 0.0 and by_name["input_noise"].value == 0
    assert space.searched == ("l2", "dropout", "label_smoothing", "norm")
    assert space.contains(reg)
    assert not space.contains(Regularization(l2=0.5))
    assert RegularizationSpace.from_config(space.get_config()).get_config() == space.get_config()


@pytest.mark.parametrize("space", [
    RegularizationSpace(),
    RegularizationSpace(l2=(1e-5, 1e-3, "linear"), dropout=[0.0, 0.5], drop_path=(0.0, 0.2),
                        norm=["batch", None], flip="horizontal"),
    RegularizationSpace(dropout=(0.0, 0.4, "log")),  # a log grid from 0 on a linear dimension
])
def test_a_config_survives_a_json_round_trip(space):
    # the tuner records the space as JSON: ranges must not come back as lists of choices
    again = RegularizationSpace.from_config(json.loads(json.dumps(space.get_config())))
    assert again.get_config() == space.get_config()
    recipe = Regularization.recipe()
    assert again.contains(recipe) == space.contains(recipe)
    hp_a, hp_b = keras_tuner.HyperParameters(), keras_tuner.HyperParameters()
    space.declare(hp_a)
    again.declare(hp_b)
    assert [p.get_config() for p in hp_a.space] == [p.get_config() for p in hp_b.space]


@pytest.mark.parametrize("spec", [{"low": 0.0}, {"low": 0.0, "high": 0.1, "step": 2}])
def test_a_malformed_range_dict_is_refused(spec):
    with pytest.raises(TypeError, match="dropout"):
        RegularizationSpace(dropout=spec)


def test_default_space_is_valid_and_searches_every_technique():
    space = RegularizationSpace()
    assert space.searched == ("l2", "dropout", "drop_path", "mixup_alpha", "cutmix_alpha",
                              "label_smoothing", "augment", "input_noise")
    assert space.get_config()["norm"] == "batch"  # fixed by default; searchable on request
    assert space.contains(Regularization(l2=1e-6, norm="batch"))
    assert space.contains(Regularization(l2=1e-2, norm="batch"))
    # every dimension can be off: the normalized, unregularized start lies in the default
    # space, and with the norm searched the unnormalized baseline too
    assert space.contains(Regularization(norm="batch"))
    assert space.start() != Regularization.none()
    assert not space.contains(Regularization.none())
    assert RegularizationSpace(norm=["batch", "group", None]).contains(Regularization.none())
    assert space.contains(Regularization.recipe())
    assert not space.contains(Regularization(flip="horizontal"))  # flips only when asked


# One test per validation error, each naming its argument.

def test_rejects_dropout_of_one():
    with pytest.raises(ValueError, match="dropout"):
        Regularization(dropout=1.0)


def test_rejects_negative_l2():
    with pytest.raises(ValueError, match="l2"):
        Regularization(l2=-1e-4)


def test_rejects_nan_mixup_alpha():
    with pytest.raises(ValueError, match="mixup_alpha"):
        Regularization(mixup_alpha=float("nan"))


def test_rejects_unknown_norm():
    with pytest.raises(ValueError, match="norm"):
        Regularization(norm="instance")


def test_rejects_string_strength():
    with pytest.raises(TypeError, match="label_smoothing"):
        Regularization(label_smoothing="0.1")


def test_space_rejects_reversed_range():
    with pytest.raises(ValueError, match="dropout"):
        RegularizationSpace(dropout=(0.5, 0.1))


def test_log_range_from_zero_is_zero_and_a_log_grid():
    space = RegularizationSpace(l2=(0.0, 1e-3))
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    l2 = {p.name: p for p in hp.space}["l2"]
    # 0, then 1-2-5 per decade over four decades below the top
    expected = [0.0] + [m * 10.0**e for e in range(-7, -3) for m in (1, 2, 5)] + [1e-3]
    np.testing.assert_allclose(list(l2.values), expected, rtol=1e-12)
    assert l2.ordered
    assert space.get_config()["l2"] == {"low": 0.0, "high": 1e-3}
    assert space.contains(Regularization(l2=0.0, norm="batch"))
    assert space.contains(Regularization(l2=2e-5, norm="batch"))
    assert not space.contains(Regularization(l2=3e-5, norm="batch"))  # between grid points


def test_linear_range_from_zero_keeps_a_float():
    hp = keras_tuner.HyperParameters()
    RegularizationSpace(l2=(0.0, 1e-3, "linear")).declare(hp)
    l2 = {p.name: p for p in hp.space}["l2"]
    assert isinstance(l2, keras_tuner.engine.hyperparameters.Float)
    assert (l2.min_value, l2.max_value, l2.sampling) == (0.0, 1e-3, "linear")


def test_space_rejects_unknown_sampling():
    with pytest.raises(ValueError, match="l2"):
        RegularizationSpace(l2=(1e-5, 1e-3, "cubic"))


def test_space_rejects_out_of_range_choice():
    with pytest.raises(ValueError, match="drop_path"):
        RegularizationSpace(drop_path=[0.0, 1.5])


def test_space_rejects_empty_choices():
    with pytest.raises(ValueError, match="cutmix_alpha"):
        RegularizationSpace(cutmix_alpha=[])


def test_space_rejects_duplicate_choices():
    with pytest.raises(ValueError, match="label_smoothing"):
        RegularizationSpace(label_smoothing=[0.1, 0.1])


def test_space_rejects_three_element_range():
    with pytest.raises(ValueError, match="mixup_alpha"):
        RegularizationSpace(mixup_alpha=(0.0, 0.5, 1.0))


def test_space_rejects_unknown_norm_choice():
    with pytest.raises(ValueError, match="norm"):
        RegularizationSpace(norm=["batch", "layer2"])


def test_space_rejects_dict_spec():
    with pytest.raises(TypeError, match="l2"):
        RegularizationSpace(l2={"low": 1e-5})


def test_contains_rejects_non_regularization():
    with pytest.raises(TypeError, match="reg"):
        RegularizationSpace().contains({"l2": 0.0})


def test_transform_rejects_one_class():
    with pytest.raises(ValueError, match="num_classes"):
        Regularization(mixup_alpha=0.2).transform(1)


def test_drop_path_rates_rejects_zero_depth():
    with pytest.raises(ValueError, match="depth"):
        Regularization(drop_path=0.1).drop_path_rates(0)


def test_start_is_off_where_possible_else_the_low_end_and_first_choices():
    space = RegularizationSpace(l2=(1e-5, 1e-2), dropout=[0.1, 0.3], drop_path=None,
                                mixup_alpha=0.2, cutmix_alpha=[0.0, 1.0], augment=(0.0, 1.0),
                                norm=[None, "group"])
    start = space.start()
    assert start.to_dict() == {"l2": 1e-5, "dropout": 0.1, "drop_path": 0.0, "mixup_alpha": 0.2,
                               "cutmix_alpha": 0.0, "label_smoothing": 0.0, "augment": 0.0,
                               "input_noise": 0.0, "norm": "group", "flip": None}
    assert space.contains(start)
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    hp.values.update(space.hp_values(Regularization(l2=1e-3, dropout=0.3, mixup_alpha=0.2)))
    assert space.declare(hp) == Regularization(l2=1e-3, dropout=0.3, mixup_alpha=0.2)


# Off values, augmentation, references, the --space syntax, edge warnings.

@pytest.mark.parametrize("off", [0, 0.0, "off", "OFF", None])
def test_every_value_accepts_off(off):
    reg = Regularization(**{name: off for name in NAMES})
    assert reg == Regularization.none()
    space = RegularizationSpace(**{name: off for name in NAMES})
    assert space.start() == Regularization.none()
    assert space.searched == ()


def test_augmentation_scales_shift_rotation_zoom_and_adds_noise():
    aug = Regularization(augment=0.5, input_noise=0.05).augmentation(seed=4)
    assert isinstance(aug, Augment) and aug.seed == 4 and aug.flip is False
    assert (aug.translation, aug.rotation, aug.zoom) == pytest.approx((0.075, 0.025, 0.075))
    assert aug.noise_stddev == pytest.approx(0.05)
    assert Regularization(flip="horizontal").augmentation().flip == "horizontal"
    assert Regularization(flip=True).flip == "horizontal"
    with pytest.raises(ValueError, match="flip"):
        Regularization(flip="diagonal")


def test_recipe_is_fixed_and_regularizes():
    recipe = Regularization.recipe()
    assert recipe == Regularization(l2=1e-4, dropout=0.1, drop_path=0.1, augment=0.5,
                                    norm="batch")
    assert Regularization.recipe(flip="horizontal").flip == "horizontal"


def test_references_are_none_start_and_recipe():
    space = RegularizationSpace(norm=["group", "batch", None], flip="horizontal")
    refs = references(space)
    assert list(refs) == ["none", "start", "recipe"]
    assert refs["none"] == Regularization.none()
    assert refs["start"] == Regularization(norm="group", flip="horizontal")
    assert refs["recipe"] == Regularization.recipe(flip="horizontal")
    assert references()["start"] == Regularization(norm="batch")
    with pytest.raises(TypeError, match="space"):
        references({"l2": 0})


def test_parse_overrides_the_defaults_item_by_item():
    space = RegularizationSpace.parse(
        ["l2=0:1e-2", "dropout=lin:0:0.5", "drop_path=log:0.01:0.3", "norm=batch",
         "mixup_alpha=off", "cutmix_alpha=0,0.5", "label_smoothing=0.1", "norm=group,none",
         "flip=horizontal"])
    expected = RegularizationSpace(l2=(0.0, 1e-2), dropout=(0.0, 0.5),
                                   drop_path=(0.01, 0.3, "log"), mixup_alpha=None,
                                   cutmix_alpha=[0.0, 0.5], label_smoothing=0.1,
                                   norm=["group", None], flip="horizontal")
    assert space.get_config() == expected.get_config()
    assert space.get_config()["augment"] == RegularizationSpace().get_config()["augment"]
    # a string of items and a dict say the same
    assert (RegularizationSpace.parse("dropout=0:0.3 norm=none").get_config()
            == RegularizationSpace.parse({"dropout": "0:0.3", "norm": "none"}).get_config())


@pytest.mark.parametrize("item", ["l2", "l2=", "weight_decay=1e-4", "l2=abc", "dropout=0:2",
                                  "dropout=0:0.2:0.4", "l2=cubic:1e-5:1e-3", "norm=instance",
                                  "norm=batch:group", "dropout=0.3:0.1", "mixup_alpha=0,0"])
def test_parse_errors_name_the_item(item):
    with pytest.raises(ValueError, match="Invalid --space item") as info:
        RegularizationSpace.parse(["norm=batch", item])
    assert repr(item) in str(info.value)


def test_inputs_that_are_not_images_turn_the_image_only_values_off():
    reg = Regularization(l2=1e-4, augment=0.5, cutmix_alpha=0.2, flip="horizontal",
                         mixup_alpha=0.2, input_noise=0.05, norm="batch")
    assert reg.for_inputs(True) == reg
    assert reg.for_inputs(False) == Regularization(l2=1e-4, mixup_alpha=0.2, input_noise=0.05,
                                                   norm="batch")
    # the augmentation of a feature vector is its input noise alone
    aug = reg.augmentation(seed=0, image=False)
    assert aug.noise_stddev == pytest.approx(0.05)
    assert (aug.translation, aug.rotation, aug.zoom, aug.flip) == (0.0, 0.0, 0.0, False)
    assert Regularization(augment=1.0).augmentation(image=False) is None
    space = RegularizationSpace(flip=["horizontal", None])
    assert space.for_inputs(True) is space
    narrowed = space.for_inputs(False).get_config()
    assert (narrowed["augment"], narrowed["cutmix_alpha"], narrowed["flip"]) == (None,) * 3
    assert {k: v for k, v in narrowed.items() if k not in ("augment", "cutmix_alpha", "flip")
            } == {k: v for k, v in space.get_config().items()
                  if k not in ("augment", "cutmix_alpha", "flip")}


def test_starting_points_for_images_and_for_other_inputs():
    space = RegularizationSpace()
    points = initial_points(space)
    assert [label for label, _ in points] == ["start", "recipe", "strong", "smooth",
                                              "augmented"]
    # without images: every point loses its augmentation; `augmented` becomes `start` and is
    # left out, the others keep their other values
    narrowed = space.for_inputs(False)
    others = dict(initial_points(narrowed, image=False))
    assert list(others) == ["start", "recipe", "strong", "smooth"]
    assert others["recipe"] == Regularization.recipe().for_inputs(False)
    assert all(narrowed.contains(reg) for reg in others.values())
    assert initial_points(space, labels=(), with_probes=False) == []
