"""Generic Keras-style checks shared by the layer tests (and any test of a keras_reg layer).

Each check builds what it needs, asserts against a reference (the layer's own config, the
model before saving, `model(x, training=False)`), and returns what it built so a test can
assert more. They are the equivalent of Keras's `testing.TestCase.run_layer_test`, split so a
test file pays only for the checks it needs:

- `check_config_round_trip(layer)`: `get_config` -> `from_config` -> same config, also through
  `keras.saving.serialize_keras_object` (the registered name).
- `check_symbolic_call(layer, input_shape)`: symbolic (`keras.Input`) output shape equals the
  eager output shape and `compute_output_shape`.
- `check_keras_file_round_trip(model, x, tmp_path)`: `.keras` save / `load_model(safe_mode=True)`,
  inference outputs equal.
- `check_export(model, x, tmp_path)`: `model.export()` SavedModel, reloaded with
  `tf.saved_model.load`, served twice: deterministic, equal to `model(x, training=False)`, and
  no random op anywhere in the serving graph (nested functions included).
- `check_jit_fit(model_fn, x, y)`: `compile(jit_compile=True)` and `fit` give the same weights
  as the same model fitted as a plain graph from the same start.
- `check_mixed_precision(layer_fn, x, policy)`: `mixed_float16` / `mixed_bfloat16`: compute dtype
  outputs, float32 variables, finite outputs in training and inference.
- `check_mirrored_fit(model_fn, x, y)`: `fit` under `tf.distribute.MirroredStrategy` over the two
  logical CPU devices that `tests/conftest.py` creates equals a single-device fit (rates at 0),
  then trains with the rates back on.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

# Op types that draw random numbers (stateful or stateless). Matched as substrings of the op
# type, so "StatelessRandomUniformV2", "RandomStandardNormal", "StatelessRandomGetKeyCounter"
# and friends are all caught.
RANDOM_OP_MARKERS = ("Random", "Multinomial", "RngReadAndSkip", "RngSkip", "Shuffle")


def check_config_round_trip(layer):
    """`get_config` / `from_config` and Keras (de)serialization keep the config unchanged.

    Returns:
        The layer rebuilt from its config.
    """
    config = layer.get_config()
    rebuilt = type(layer).from_config(config)
    assert rebuilt.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"].startswith("keras_reg>"), serialized["registered_name"]
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(layer)
    assert restored.get_config() == config
    return rebuilt


def check_symbolic_call(layer, input_shape, dtype="float32"):
    """Symbolic output shape == eager output shape == `compute_output_shape` (batch included).

    `input_shape` is the full shape with a concrete batch size (a list of shapes for layers
    called on a list).

    Returns:
        The eager output.
    """
    multi = isinstance(input_shape, list)
    shapes = input_shape if multi else [input_shape]
    symbolic = [keras.Input(batch_shape=tuple(s), dtype=dtype) for s in shapes]
    sym_out = layer(symbolic if multi else symbolic[0])
    rng = np.random.default_rng(0)
    eager = [rng.standard_normal(s).astype(dtype) for s in shapes]
    out = layer(eager if multi else eager[0])
    assert tuple(sym_out.shape) == tuple(out.shape)
    expected = layer.compute_output_shape([tuple(s) for s in shapes] if multi else tuple(shapes[0]))
    assert tuple(expected) == tuple(out.shape)
    return out


def check_keras_file_round_trip(model, x, tmp_path, atol=1e-6):
    """Saves `model` to a `.keras` file, reloads it with safe mode on, compares inference outputs.

    Returns:
        The reloaded model.
    """
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    got = keras.ops.convert_to_numpy(loaded(x, training=False))
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    return loaded


def _graph_op_types(graph_def):
    """All op types reachable from `graph_def`'s nodes through function-valued attributes."""
    library = {f.signature.name: f for f in graph_def.library.function}
    seen_functions = set()
    op_types = set()

    def visit(nodes):
        for node in nodes:
            op_types.add(node.op)
            # Calls such as StatefulPartitionedCall, If, While name their functions in attrs.
            if node.op in library:
                visit_function(node.op)
            for attr in node.attr.values():
                names = []
                if attr.HasField("func"):
                    names.append(attr.func.name)
                if attr.HasField("list"):
                    names.extend(f.name for f in attr.list.func)
                for name in names:
                    visit_function(name)

    def visit_function(name):
        if name in seen_functions or name not in library:
            return
        seen_functions.add(name)
        visit(library[name].node_def)

    visit(graph_def.node)
    return op_types


def random_op_types(concrete_function):
    """Random op types found in a concrete function's graph, nested functions included."""
    op_types = _graph_op_types(concrete_function.graph.as_graph_def())
    return sorted(t for t in op_types if any(m in t for m in RANDOM_OP_MARKERS))


def check_export(model, x, tmp_path, atol=1e-6):
    """`model.export()` serves deterministically, equals inference, and holds no random op.

    Returns:
        The reloaded SavedModel object.
    """
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    reloaded = tf.saved_model.load(path)
    x_t = tf.convert_to_tensor(x)
    first = reloaded.serve(x_t)
    second = reloaded.serve(x_t)
    first, second = np.asarray(first), np.asarray(second)
    np.testing.assert_array_equal(first, second)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(first, expected, rtol=0, atol=atol)
    serving = reloaded.signatures["serving_default"]
    found = random_op_types(serving)
    assert not found, f"exported serving graph holds random ops: {found}"
    return reloaded


def _final_loss(history):
    losses = history.history["loss"]
    assert losses, "fit ran no epoch"
    return losses[-1]


def _assert_same_weights(got, expected, what, rtol=1e-5, atol=1e-6):
    for a, b in zip(got.get_weights(), expected.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def _assert_trained(model, initial):
    changed = [not np.array_equal(a, b) for a, b in zip(model.get_weights(), initial)]
    assert any(changed), "fit did not change any weight"


def check_jit_fit(model_fn, x, y, loss="mse", epochs=1, batch_size=None, settings_off=None):
    """`compile(jit_compile=True)` + `fit` gives the weights of the same model fitted as a plain
    graph from the same start (same seeds: the random layers draw the same masks under XLA).

    For layers whose draws differ under XLA (Gaussian noise), `settings_off` (e.g.
    `{"stddev": 0.0}`) is set on every layer having those attributes for the comparison; they
    are then put back and the jit model fits once more (finite loss, weights moved).

    Returns:
        The trained model.
    """
    model = model_fn()
    reference = model_fn()
    initial = model.get_weights()
    reference.set_weights(initial)
    old = _set_settings(model, settings_off or {})
    _set_settings(reference, settings_off or {})
    batch_size = batch_size or len(x)
    for m, jit in ((model, True), (reference, False)):
        m.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss, jit_compile=jit)
        history = m.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0)
        assert math.isfinite(_final_loss(history))
    assert model.jit_compile is True and reference.jit_compile is False
    _assert_trained(model, initial)
    _assert_same_weights(model, reference, "jit_compile=True fit differs from the graph fit")
    _fit_again_with(model, old, x, y, batch_size)
    return model


def _fit_again_with(model, settings, x, y, batch_size):
    """Restores `settings` ({(layer, name): value}) and fits one more epoch: finite, moved."""
    if not settings:
        return
    for (layer, name), value in settings.items():
        setattr(layer, name, value)
    before = model.get_weights()
    history = model.fit(x, y, epochs=1, batch_size=batch_size, shuffle=False, verbose=0)
    assert math.isfinite(_final_loss(history))
    _assert_trained(model, before)


def check_mixed_precision(layer_fn, x, policy):
    """Runs `layer_fn()` under `policy` (conftest restores float32 afterwards).

    Checks: outputs are in the policy's compute dtype and finite in training and inference,
    every variable of the layer stays float32.

    Returns:
        (training output, inference output) as float32 NumPy arrays.
    """
    keras.mixed_precision.set_dtype_policy(policy)
    compute_dtype = keras.mixed_precision.dtype_policy().compute_dtype
    layer = layer_fn()
    outputs = []
    for training in (True, False):
        out = layer(x, training=training)
        assert keras.backend.standardize_dtype(out.dtype) == compute_dtype, (out.dtype, policy)
        out = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
        assert np.all(np.isfinite(out)), f"non-finite output under {policy}, training={training}"
        outputs.append(out)
    for variable in layer.weights:
        if variable.dtype not in ("int32", "int64"):
            assert variable.dtype == "float32", (variable.path, variable.dtype)
    return tuple(outputs)


def _set_settings(model, values):
    """Sets each `name: value` of `values` on every layer of `model` that has that setting
    (e.g. `rate` of the keras_reg rate layers); returns the old ones as {(layer, name): value}."""
    old = {}
    for layer in model.layers:
        for name, value in values.items():
            if hasattr(layer, f"{name}_variable") or hasattr(layer, f"_{name}_variable"):
                old[(layer, name)] = getattr(layer, name)
                setattr(layer, name, value)
    return old


def check_mirrored_fit(model_fn, x, y, loss="mse", epochs=1):
    """`fit` under a MirroredStrategy over two logical CPUs equals a single-device `fit`.

    The comparison runs with the random layers' rates at 0 (each replica of a seeded layer
    draws its own stream, so masks cannot match a single-device run); then the rates are put
    back and the mirrored model fits once more with dropping on (finite loss, weights moved).
    The global batch is the whole of `x` (give an even number of samples so both replicas
    get data); the model's variables are mirrored, so a check after `fit` can change them
    (e.g. a layer's `rate`) and fit again. Skips when the two logical devices could not be
    configured.

    Returns:
        The trained model.
    """
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(devices) < 2:
        pytest.skip("two logical CPU devices are not available")
    # ReductionToOneDevice: a second collective-all-reduce MirroredStrategy in one process
    # reuses the first one's collective keys and fails ("Shape mismatch in the collective
    # instance", TF 2.21), so every test creating its own strategy avoids collectives.
    strategy = tf.distribute.MirroredStrategy(
        devices[:2], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )
    with strategy.scope():
        model = model_fn()
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    reference = model_fn()
    reference.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    initial = model.get_weights()
    reference.set_weights(initial)
    rates = _set_settings(model, {"rate": 0.0})
    _set_settings(reference, {"rate": 0.0})
    for m in (model, reference):
        history = m.fit(x, y, epochs=epochs, batch_size=len(x), shuffle=False, verbose=0)
        assert math.isfinite(_final_loss(history))
    _assert_trained(model, initial)
    _assert_same_weights(model, reference, "mirrored fit differs from the single-device fit")
    _fit_again_with(model, rates, x, y, len(x))
    return model
