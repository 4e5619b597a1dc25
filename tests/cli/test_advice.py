"""The advice lines of a search's report."""

import keras

from keras_reg.cli._advice import edge_warnings, unused_values
from keras_reg.tuning import Regularization, RegularizationSpace


def test_edge_warnings_flag_values_at_a_searched_edge():
    space = RegularizationSpace(l2=(0.0, 1e-2), dropout=(0.0, 0.5), drop_path=(0.05, 0.3),
                                mixup_alpha=[0.0, 0.4], label_smoothing=0.1)
    assert edge_warnings(space, Regularization(l2=1e-4, dropout=0.2, drop_path=0.1)) == []
    # 0 is "off", not an edge; a fixed value is not searched
    assert edge_warnings(space, Regularization(drop_path=0.1, label_smoothing=0.1)) == []
    warnings = edge_warnings(space, Regularization(l2=1e-2, dropout=0.5, drop_path=0.05,
                                                  mixup_alpha=0.4))
    assert [w.split("=")[0] for w in warnings] == ["l2", "dropout", "drop_path", "mixup_alpha"]
    assert all("\n" not in w for w in warnings)
    assert "--space l2=0:0.1" in warnings[0]
    assert "--space dropout=0:0.9" in warnings[1]  # below the open bound 1
    assert "--space drop_path=0:0.3" in warnings[2]
    assert "--space mixup_alpha=0:0.8" in warnings[3]


def test_values_the_model_has_no_layer_for_are_named():
    from keras_reg.layers import InvertedDropout

    reg = Regularization(l2=1e-4, dropout=0.2, drop_path=0.1, norm="batch")
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    lines = unused_values(plain, reg)
    assert [line.split("=")[0] for line in lines] == ["drop_path", "dropout", "l2", "norm"]
    used = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(8, kernel_regularizer=reg.kernel_regularizer()),
        keras.layers.BatchNormalization(), InvertedDropout(0.2),
        keras.layers.Dense(3, activation="softmax")])
    assert [line.split("=")[0] for line in unused_values(used, reg)] == ["drop_path"]
    assert unused_values(used, Regularization()) == []  # nothing on, nothing named
