"""Loading `.keras` files whose keras_reg layer configs were tampered with.

A model using every keras_reg layer is saved once; each test edits `config.json` inside the zip
(bad values, unknown keys, code injection) and loads it with `safe_mode=True`: the load must
fail with a ValueError/TypeError that names the offending argument, and no injected code runs
(a marker file the injected code would create stays absent).
"""

import json
import math
import zipfile

import keras
import pytest

from keras_reg import layers as L


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    keras.backend.clear_session()
    inp = keras.Input((8, 8, 4))
    x = L.InvertedDropout(0.2, seed=1, name="drop")(inp)
    x = L.GroupNorm(groups=2, name="gn")(x)
    y = L.WeightNoise(keras.layers.Conv2D(4, 3, padding="same"), 0.1, seed=2, name="wn")(x)
    y = L.DropPath(0.1, seed=3, name="dp")(y)
    y = L.StochasticDepth(0.1, seed=4, name="sd")([x, y])
    out = L.DropBlock(0.1, block_size=3, seed=5, name="db")(y)
    path = tmp_path_factory.mktemp("tampered") / "model.keras"
    keras.Model(inp, out).save(path)
    return path


def _tamper(src, dst, name, edit):
    """Copies the .keras zip `src` to `dst`, applying `edit(config)` to layer `name`'s config."""
    with zipfile.ZipFile(src) as zin:
        config = json.loads(zin.read("config.json"))
        for layer in config["config"]["layers"]:
            if layer["name"] == name:
                edit(layer["config"])
                break
        else:
            raise AssertionError(f"no layer {name}")
        with zipfile.ZipFile(dst, "w") as zout:
            for item in zin.namelist():
                data = json.dumps(config) if item == "config.json" else zin.read(item)
                zout.writestr(item, data)
    return dst


def _load(path):
    return keras.saving.load_model(path, safe_mode=True)


def test_untampered_file_loads(saved):
    model = _load(saved)
    assert model.get_layer("drop").rate == pytest.approx(0.2)
    assert model.get_layer("gn").groups == 2


@pytest.mark.parametrize(
    "layer, key, value, match",
    [
        ("drop", "rate", -0.5, "rate"),
        ("drop", "rate", 1.5, "rate"),
        ("drop", "rate", math.nan, "rate"),
        ("drop", "rate", "0.5", "rate"),
        ("drop", "scaling", "sometimes", "scaling"),
        ("drop", "seed", -3, "seed"),
        ("dp", "rate", 7.0, "rate"),
        ("dp", "scale_by_keep", "yes", "scale_by_keep"),
        ("sd", "rate", -1e-9, "rate"),
        ("sd", "mode", "column", "mode"),
        ("gn", "groups", 3, "groups"),  # 4 channels are not divisible into 3 groups
        ("gn", "groups", 10**9, "groups"),
        ("gn", "groups", 0, "groups"),
        ("gn", "epsilon", -1.0, "epsilon"),
        ("gn", "axis", 17, "axis"),
        ("wn", "stddev", -0.1, "stddev"),
        ("wn", "stddev", math.inf, "stddev"),
        ("db", "rate", -0.1, "rate"),
        ("db", "block_size", 0, "block_size"),
        ("db", "block_size", 2.5, "block_size"),
        ("db", "data_format", "NHWC", "data_format"),
    ],
)
def test_bad_value_is_a_clear_error(saved, tmp_path, layer, key, value, match):
    path = _tamper(saved, tmp_path / "bad.keras", layer, lambda c: c.__setitem__(key, value))
    # Keras wraps the layer's error (with the whole model config) in a TypeError whose text
    # ends with the layer's own sentence: match that sentence, not the config dump.
    with pytest.raises((ValueError, TypeError), match=rf"Invalid value for argument `{match}`"):
        _load(path)


@pytest.mark.parametrize("layer", ["drop", "dp", "sd", "gn", "wn", "db"])
def test_unknown_key_is_a_clear_error(saved, tmp_path, layer):
    path = _tamper(saved, tmp_path / "unknown.keras", layer,
                   lambda c: c.__setitem__("evil_argument", 1))
    with pytest.raises((ValueError, TypeError), match=r"Unrecognized keyword arguments passed to \w+: \{'evil_argument'"):
        _load(path)


def _lambda_config(marker):
    """The serialized config of a Lambda layer whose function would create `marker`."""
    target = str(marker)
    layer = keras.layers.Lambda(lambda t: (open(target, "w").close(), t)[1])
    return keras.saving.serialize_keras_object(layer)


def _injections(marker):
    lam = _lambda_config(marker)
    fn = lam["config"]["function"]  # {"class_name": "__lambda__", ...}
    return {
        # the wrapped layer of WeightNoise replaced by a Lambda layer
        "wn_layer_lambda": ("wn", lambda c: c.__setitem__("layer", lam)),
        # a lambda function as GroupNorm's regularizer / initializer
        "gn_regularizer_lambda": ("gn", lambda c: c.__setitem__("gamma_regularizer", fn)),
        "gn_initializer_lambda": ("gn", lambda c: c.__setitem__("gamma_initializer", fn)),
        # an arbitrary module function (os.system) as an initializer
        "gn_initializer_os_system": ("gn", lambda c: c.__setitem__(
            "gamma_initializer",
            {"module": "os", "class_name": "function", "config": "system",
             "registered_name": "system"})),
        # a Lambda smuggled in as the rate of a dropout layer
        "drop_rate_lambda": ("drop", lambda c: c.__setitem__("rate", lam)),
    }


@pytest.mark.parametrize("case", sorted(_injections("unused")))
def test_code_injection_is_refused_and_runs_nothing(saved, tmp_path, case):
    marker = tmp_path / "pwned"
    layer, edit = _injections(marker)[case]
    path = _tamper(saved, tmp_path / "inject.keras", layer, edit)
    with pytest.raises(
        (ValueError, TypeError),
        match="disallowed by default|Could not interpret|Invalid value for argument `rate`",
    ):
        _load(path)
    assert not marker.exists()
