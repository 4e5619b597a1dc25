"""RegularizationSpace and Regularization: values, helpers, KerasTuner declaration, validation."""

import keras_tuner
import numpy as np
import pytest

from keras_reg import regularizers
from keras_reg.data import MixupCutMix
from keras_reg.tuning import Regularization, RegularizationSpace


def test_none_is_the_unregularized_baseline():
    reg = Regularization.none()
    assert reg.to_dict() == {"l2": 0.0, "dropout": 0.0, "drop_path": 0.0, "mixup_alpha": 0.0,
                             "cutmix_alpha": 0.0, "label_smoothing": 0.0, "norm": None}
    assert reg.is_none and reg.kernel_regularizer() is None
    assert reg.transform(10) is None
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
                                norm=["batch", None])
    hp = keras_tuner.HyperParameters()
    reg = space.declare(hp)
    by_name = {p.name: p for p in hp.space}
    assert set(by_name) == {"l2", "dropout", "mixup_alpha", "label_smoothing", "norm"}
    assert by_name["l2"].sampling == "log"
    assert list(by_name["norm"].values) == ["batch", "none"]
    assert reg.mixup_alpha == 0.2 and reg.drop_path == 0.0 and reg.cutmix_alpha == 0.0
    assert space.searched == ("l2", "dropout", "label_smoothing", "norm")
    assert space.contains(reg)
    assert not space.contains(Regularization(l2=0.5))
    assert RegularizationSpace.from_config(space.get_config()).get_config() == space.get_config()


def test_default_space_is_valid_and_searches_every_technique():
    space = RegularizationSpace()
    assert space.searched == ("l2", "dropout", "drop_path", "mixup_alpha", "cutmix_alpha",
                              "label_smoothing", "norm")
    assert space.contains(Regularization(l2=1e-6))  # the low end: practically no L2
    assert not space.contains(Regularization.none())  # a log range excludes 0


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


def test_space_rejects_log_range_from_zero():
    with pytest.raises(ValueError, match="l2"):
        RegularizationSpace(l2=(0.0, 1e-3))


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


def test_start_is_the_low_end_and_first_choices():
    space = RegularizationSpace(l2=(1e-5, 1e-2), dropout=[0.1, 0.3], drop_path=None,
                                mixup_alpha=0.2, norm=["group", None])
    start = space.start()
    assert start.to_dict() == {"l2": 1e-5, "dropout": 0.1, "drop_path": 0.0, "mixup_alpha": 0.2,
                               "cutmix_alpha": 0.0, "label_smoothing": 0.0, "norm": "group"}
    assert space.contains(start)
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    hp.values.update(space.hp_values(Regularization(l2=1e-3, dropout=0.3, mixup_alpha=0.2)))
    assert space.declare(hp) == Regularization(l2=1e-3, dropout=0.3, mixup_alpha=0.2)
