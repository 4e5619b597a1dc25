"""Worker of a MultiWorkerMirroredStrategy run on 127.0.0.1 (started by tests/test_multiworker.py).

Usage: python mwms_worker.py MODE[,MODE...] INDEX PORT0,PORT1 OUT.json
Runs the modes one after the other in this process, with one strategy:
"keras_fit" (plain `model.fit`, broken upstream: keras-team/keras#20585),
"reg_fit" (keras_reg.distribute.fit), "masks" (the dropout masks each replica draws through
keras_reg.distribute.fit) and "every_layer" (every keras_reg layer + MixupCutMix via
distribute.fit) are cluster modes: the process is worker INDEX of the TF_CONFIG cluster on the
two ports. "single" (no strategy: the reference of reg_fit) and "every_layer_mirrored" (the
every_layer run in one process on 2 logical CPUs: its reference) are reference modes: no
cluster, the ports are ignored. A process runs modes of one kind only.
Writes a JSON object {mode: result} after every mode; a result holds the per-epoch losses and
the final weights, or the error.
"""

import json
import os
import sys

modes = sys.argv[1].split(",")
index, ports, out = int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]
REFERENCE_MODES = {"single", "every_layer_mirrored"}
reference = set(modes) <= REFERENCE_MODES
if not reference and set(modes) & REFERENCE_MODES:
    sys.exit(f"cluster and reference modes in one process: {modes}")
if not reference:
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if reference:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategies = {
        "single": tf.distribute.get_strategy(),
        "every_layer_mirrored": tf.distribute.MirroredStrategy(
            ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()),
    }
else:
    cluster = tf.distribute.MultiWorkerMirroredStrategy()
    strategies = dict.fromkeys(modes, cluster)

import keras  # noqa: E402

from keras_reg import distribute  # noqa: E402

GLOBAL_BATCH = 8
rng = np.random.default_rng(0)
X = rng.normal(size=(40, 6)).astype("float32")
Y = rng.integers(0, 3, size=(40,)).astype("int32")


def dataset():
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def build():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu",
                               kernel_regularizer=keras.regularizers.l2(0.01)),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def build_every_layer():
    from keras_reg import layers as L

    keras.utils.set_random_seed(2)
    inputs = keras.Input((8, 8, 1))
    x = L.WeightNoise(keras.layers.Conv2D(4, 3, padding="same"), 0.05, seed=1)(inputs)
    x = L.GroupNorm(groups=2)(x)
    x = keras.layers.Activation("relu")(x)
    y = L.DropPath(0.2, seed=2)(keras.layers.Conv2D(4, 3, padding="same")(x))
    x = L.StochasticDepth(0.2, seed=3)([x, y])
    x = L.StochasticDepth(0.3, seed=4, mode="batch")([x, x])
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = L.InvertedDropout(0.3, seed=5)(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    return model


def mixed_digits():
    from keras_reg import data as D

    ds = D.load("digits", "train[:64]", batch_size=16, shuffle=False)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.map(D.MixupCutMix(10, seed=0)).with_options(options)


def run(mode, strategy):
    result = {"mode": mode, "index": index}
    try:
        with strategy.scope():
            model = build()
        if mode.startswith("every_layer"):
            with strategy.scope():
                model = build_every_layer()
            history = distribute.fit(model, mixed_digits(), epochs=2, strategy=strategy,
                                     verbose=0)
            result["loss"] = [float(v) for v in history.history["loss"]]
            result["weights"] = [w.tolist() for w in model.get_weights()]
            history = None
        elif mode == "keras_fit":
            history = model.fit(dataset(), epochs=2, verbose=0)
        elif mode == "masks":
            with strategy.scope():
                model = keras.Sequential([keras.Input((64,)), keras.layers.Dropout(0.5, seed=3)])
                model.compile(optimizer="sgd", loss="mse")
            # What each replica's dropout layer draws inside a distribute.fit step, gathered.
            drop = model.layers[-1]
            loop = distribute._Loop(model, strategy, replica_seeds=True)

            @tf.function
            def masks():
                def replica():
                    distribute._shift_seeds(loop.states, 1)
                    out = drop(tf.ones((1, 64)), training=True)
                    distribute._shift_seeds(loop.states, -1)
                    ctx = tf.distribute.get_replica_context()
                    return ctx.all_gather(out, axis=0)
                return strategy.run(replica)

            gathered = strategy.experimental_local_results(masks())[0]
            result["masks"] = np.asarray(gathered).tolist()
            history = None
        else:
            history = distribute.fit(model, dataset(), epochs=2, strategy=strategy, verbose=0)
        if history is not None:
            result["loss"] = [float(v) for v in history.history["loss"]]
            result["accuracy"] = [float(v) for v in history.history["accuracy"]]
            result["weights"] = [w.tolist() for w in model.get_weights()]
        result["ok"] = True
    except Exception as error:  # reported to the test, which decides
        result["ok"] = False
        result["error"] = f"{type(error).__name__}: {str(error)[:2000]}"
    return result


results = {}
for mode in modes:
    results[mode] = run(mode, strategies[mode])
    with open(out + ".part", "w") as f:
        json.dump(results, f)
    os.replace(out + ".part", out)
