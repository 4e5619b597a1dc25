"""Distributed training that works where `model.fit` does not (TensorFlow only).

`model.fit` under `tf.distribute.MultiWorkerMirroredStrategy` fails in Keras 3.15: before its first
step it reduces a per-replica batch of the data to build the model, and later reduces scalar
logs along `axis=0`.
`fit` here is a `strategy.run` training loop with the same contract as `model.fit` for the common
case: the model is built and compiled under `strategy.scope()` as usual; its optimizer, loss,
metrics and `model.losses` (regularization penalties) are used as compiled; Keras callbacks run
with epoch and batch logs; a `keras.callbacks.History` is returned. It works with the default
strategy, `MirroredStrategy` and `MultiWorkerMirroredStrategy`.

Loss scaling: each replica contributes `sum(per-example loss) / global_batch` plus
`sum(model.losses) / num_replicas`, so the all-reduced gradient is the gradient of the mean loss
over the *global* batch plus the penalty — also for a last batch split unevenly across replicas.

Per-replica randomness: a `keras.random.SeedGenerator` built under a strategy holds one mirrored
state, so every replica draws the *same* dropout / drop-path mask (Keras 3.15 behaviour, also for
`keras.layers.Dropout`). With `replica_seeds=True` (the default) `fit` offsets the seed of
every generator in the model by the replica id for the duration of each step
(`seed + replica_id * REPLICA_SEED_STRIDE`; the counter is untouched), so masks differ across
replicas, stay reproducible for a fixed seed, and the stored state stays mirrored (checkpoints
and restores are unaffected). Replica 0 draws exactly what a single-device run draws.

Batch transforms in tf.data (e.g. `keras_reg.data.MixupCutMix`) applied to the global batch
before distribution pick partners across the whole global batch. With
`distribute_datasets_from_function`, fold `input_context.input_pipeline_id` into the transform's
seed so that workers mix differently (`worker_seed`).
"""

import warnings

import keras
import tensorflow as tf

from keras_reg import _compat
from keras_reg._seeds import SEED_STRIDE, offset_seed
from keras_reg._validation import check_seed

__all__ = [
    "fit",
    "TESTED_KERAS_VERSIONS",
    "REPLICA_SEED_STRIDE",
    "check_keras_version",
    "worker_seed",
]

# `fit` relies on Keras's symbolic build (to create every variable under the strategy scope
# before the first step, see `keras_reg._compat`) and on the TF trainer's loss scaling; both
# are tested on these Keras minor versions (tests/test_distribute.py, tests/test_multiworker.py).
TESTED_KERAS_VERSIONS = ("3.15",)

# Seed offset per replica id: the package's one replica/worker stride (`keras_reg._seeds`).
REPLICA_SEED_STRIDE = SEED_STRIDE

_warned_versions = set()


def check_keras_version(version=None):
    """Warns once if the installed Keras minor version is not one `fit` was tested on.

    Args:
        version: a version string to check; defaults to `keras.__version__`.

    Returns:
        True if the version is a tested one.

    Example:

    >>> check_keras_version("3.15.1")
    True
    """
    version = keras.__version__ if version is None else version
    minor = ".".join(str(version).split(".")[:2])
    if minor in TESTED_KERAS_VERSIONS:
        return True
    if minor not in _warned_versions:
        _warned_versions.add(minor)
        warnings.warn(
            f"keras_reg.distribute.fit is tested on Keras {', '.join(TESTED_KERAS_VERSIONS)}; "
            f"Keras {version} is installed. Check the losses against a single-device run.",
            stacklevel=3,
        )
    return False


def worker_seed(seed, input_context):
    """A per-input-pipeline seed for `distribute_datasets_from_function` pipelines.

    Args:
        seed: the user's seed (a non-negative integer).
        input_context: the `tf.distribute.InputContext` passed to the dataset function.

    Returns:
        `seed + input_pipeline_id * REPLICA_SEED_STRIDE`, so every worker's transforms draw
        differently and reproducibly.

    Example:

    >>> worker_seed(7, tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1))
    1000010
    """
    seed = check_seed(seed)
    if seed is None:
        raise ValueError(
            "Invalid value for argument `seed`: expected a non-negative integer. Received: seed=None"
        )
    return offset_seed(seed, input_context.input_pipeline_id)


def _unpack(data):
    if isinstance(data, (list, tuple)):
        if len(data) == 2:
            return data[0], data[1], None
        if len(data) == 3:
            return tuple(data)
        if len(data) == 1:
            return data[0], None, None
    return data, None, None


def _batch_size(x):
    first = tf.nest.flatten(x)[0]
    return tf.cast(tf.shape(first)[0], "float32")


def _seed_states(model):
    """The state variables of every SeedGenerator reachable from the model."""
    seen, states = set(), []
    for layer in [model, *_compat.flatten_layers(model)]:
        for generator in _compat.seed_generators(layer):
            if id(generator) not in seen:
                seen.add(id(generator))
                states.append(generator.state)
    return states


def _shift_seeds(states, sign):
    """In replica context: moves each seed by +/- replica_id * stride (counter untouched)."""
    replica_id = tf.distribute.get_replica_context().replica_id_in_sync_group
    for state in states:
        offset = tf.cast(replica_id, state.dtype) * REPLICA_SEED_STRIDE * sign
        state.assign(state + tf.stack([offset, tf.zeros_like(offset)]))


def _metric_results(model):
    logs = {}
    for metric in model.metrics:
        if metric.name == "loss":
            continue  # the loss is tracked by `fit` over the global batch
        result = metric.result()
        if isinstance(result, dict):
            logs.update(result)
        else:
            logs[metric.name] = result
    return logs


def _check_model(model, strategy):
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Invalid value for argument `model`: expected a keras.Model. Received: model={model!r}"
        )
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ValueError(
            "Invalid value for argument `model`: call `model.compile(optimizer=..., loss=...)` "
            "under `strategy.scope()` before `keras_reg.distribute.fit`."
        )
    own = model.distribute_strategy  # the current strategy when the model was made outside any
    if own is not strategy and own is not tf.distribute.get_strategy():
        raise ValueError(
            "Invalid value for argument `strategy`: the model was created under another "
            f"strategy ({type(own).__name__}); create it under `strategy.scope()`. "
            f"Received: strategy={strategy!r}"
        )
    for variable in model.variables:
        if not strategy.extended.variable_created_in_scope(variable.value):
            raise ValueError(
                "Invalid value for argument `model`: its variables were not created under "
                f"`strategy.scope()` of {type(strategy).__name__}; build and compile the model "
                "inside `with strategy.scope():`."
            )


def _distribute(strategy, data, name):
    if isinstance(data, tf.data.Dataset):
        return data.element_spec, strategy.experimental_distribute_dataset(data)
    if callable(data):
        spec = data(tf.distribute.InputContext()).element_spec
        return spec, strategy.distribute_datasets_from_function(data)
    raise TypeError(
        f"Invalid value for argument `{name}`: expected a batched tf.data.Dataset of "
        f"(x, y[, sample_weight]) or a function input_context -> Dataset. Received: {name}={data!r}"
    )


class _Loop:
    """The traced train and test steps of one `fit` call."""

    def __init__(self, model, strategy, replica_seeds):
        self.model = model
        self.strategy = strategy
        self.replicas = strategy.num_replicas_in_sync
        self.states = _seed_states(model) if replica_seeds and self.replicas > 1 else []
        self.train = tf.function(self._train, reduce_retracing=True)
        self.test = tf.function(self._test, reduce_retracing=True)

    def _loss(self, x, y, y_pred, sample_weight, training):
        """This replica's share of the global-batch mean loss plus penalty / replicas."""
        model = self.model
        ctx = tf.distribute.get_replica_context()
        n_local = _batch_size(x)
        n_global = ctx.all_reduce(tf.distribute.ReduceOp.SUM, n_local)
        # Keras scales both parts by 1 / replicas: (local mean + penalty) / replicas.
        total = tf.cast(
            model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                               training=training),
            "float32",
        )
        penalty = tf.zeros((), "float32")
        for loss in model.losses:
            penalty += tf.cast(tf.reduce_sum(loss), "float32")
        penalty = penalty / self.replicas
        data_part = (total - penalty) * (self.replicas * n_local / tf.maximum(n_global, 1.0))
        return data_part + penalty, n_global

    def _train_replica(self, data):
        model = self.model
        x, y, sample_weight = _unpack(data)
        if self.states:
            _shift_seeds(self.states, 1)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss, n_global = self._loss(x, y, y_pred, sample_weight, training=True)
            scaled = model.optimizer.scale_loss(loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        model.optimizer.apply_gradients(zip(gradients, variables))
        if self.states:
            _shift_seeds(self.states, -1)
        model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return loss, n_global

    def _test_replica(self, data):
        x, y, sample_weight = _unpack(data)
        y_pred = self.model(x, training=False)
        loss, n_global = self._loss(x, y, y_pred, sample_weight, training=False)
        self.model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return loss, n_global

    def _reduce(self, outputs):
        loss, n_global = outputs
        loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        n_global = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, n_global, axis=None)
        return loss, n_global, _metric_results(self.model)

    def _train(self, data):
        return self._reduce(self.strategy.run(self._train_replica, args=(data,)))

    def _test(self, data):
        return self._reduce(self.strategy.run(self._test_replica, args=(data,)))


def _run_epoch(step, iterator, steps, callbacks, mode):
    """Runs `steps` batches (or until the data ends); returns the epoch logs."""
    total, count, logs, batch = 0.0, 0.0, {}, 0
    while steps is None or batch < steps:
        optional = iterator.get_next_as_optional()
        if not optional.has_value():
            if steps is not None:
                warnings.warn(
                    f"The {mode} data ran out after {batch} of {steps} steps; "
                    "use `dataset.repeat()` or fewer steps.",
                    stacklevel=3,
                )
            break
        getattr(callbacks, f"on_{mode}_batch_begin")(batch)
        loss, n, metrics = step(optional.get_value())
        n = float(n)
        total += float(loss) * n
        count += n
        logs = {"loss": total / max(count, 1.0)}
        logs.update({k: float(v) for k, v in metrics.items()})
        getattr(callbacks, f"on_{mode}_batch_end")(batch, logs)
        batch += 1
        if mode == "train" and callbacks.model.stop_training:
            break
    return logs


def fit(
    model,
    x,
    epochs=1,
    *,
    strategy=None,
    callbacks=None,
    validation_data=None,
    steps_per_epoch=None,
    validation_steps=None,
    initial_epoch=0,
    verbose="auto",
    replica_seeds=True,
):
    """Trains a compiled model with a `strategy.run` loop; a `model.fit` for any strategy.

    Args:
        model: a compiled `keras.Model` whose variables were created under `strategy.scope()`
            (or not yet created: `fit` builds it under the scope from the data's spec).
        x: a batched `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)` with the *global*
            batch size, split across replicas by `experimental_distribute_dataset`; or a
            function `input_context -> Dataset` (per-replica batches, for per-worker sharding)
            given to `distribute_datasets_from_function`.
        epochs: the epoch to stop before, as in `model.fit`.
        strategy: a `tf.distribute.Strategy`; defaults to the model's (or the current) strategy.
        callbacks: Keras callbacks; `on_epoch_*`, `on_train_batch_*`, `on_test_batch_*` and
            `on_train_*` are called with logs as in `model.fit`.
        validation_data: a dataset or dataset function like `x`, evaluated after each epoch;
            its results appear as `val_<name>` in the logs.
        steps_per_epoch: batches per epoch; `None` runs each epoch until the data ends (the
            iterator is then recreated every epoch, otherwise it continues across epochs).
        validation_steps: batches of validation data per evaluation (`None`: all).
        initial_epoch: the epoch to start from (`BackupAndRestore` may move it).
        verbose: 0 (silent), 1 (progress bar), 2 (one line per epoch) or `"auto"` (1).
        replica_seeds: offset every SeedGenerator by the replica id inside a step, so random
            layers draw different masks on different replicas (see the module docstring).

    Returns:
        A `keras.callbacks.History`.

    Example:

    >>> strategy = tf.distribute.get_strategy()
    >>> with strategy.scope():
    ...     model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    ...     model.compile(optimizer="sgd", loss="mse")
    >>> data = tf.data.Dataset.from_tensor_slices((tf.ones((8, 3)), tf.ones((8, 1)))).batch(4)
    >>> history = fit(model, data, epochs=2, strategy=strategy, verbose=0)
    >>> sorted(history.history)
    ['loss']
    """
    check_keras_version()
    strategy = strategy if strategy is not None else model.distribute_strategy
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(
            "Invalid value for argument `strategy`: expected a tf.distribute.Strategy or None. "
            f"Received: strategy={strategy!r}"
        )
    for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"Invalid value for argument `{name}`: expected an integer >= 0. "
                f"Received: {name}={value!r}"
            )
    for name, value in (("steps_per_epoch", steps_per_epoch),
                        ("validation_steps", validation_steps)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ValueError(
                f"Invalid value for argument `{name}`: expected None or an integer >= 1. "
                f"Received: {name}={value!r}"
            )
    _check_model(model, strategy)
    spec, train_data = _distribute(strategy, x, "x")
    val_data = None
    if validation_data is not None:
        _, val_data = _distribute(strategy, validation_data, "validation_data")
    with strategy.scope():
        _compat.symbolic_build(model, spec)
    _check_model(model, strategy)

    verbose = 1 if verbose == "auto" else verbose
    if not isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = keras.callbacks.CallbackList(
            callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose,
            epochs=epochs, steps=steps_per_epoch, model=model,
        )
    loop = _Loop(model, strategy, replica_seeds)
    model.stop_training = False
    callbacks.on_train_begin()
    start = _compat.take_initial_epoch(model, initial_epoch)
    iterator = iter(train_data) if steps_per_epoch is not None else None
    epoch_logs = {}
    for epoch in range(start, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        epoch_iterator = iterator if iterator is not None else iter(train_data)
        epoch_logs = dict(_run_epoch(loop.train, epoch_iterator, steps_per_epoch, callbacks,
                                     "train"))
        if val_data is not None:
            model.reset_metrics()
            callbacks.on_test_begin()
            val_logs = _run_epoch(loop.test, iter(val_data), validation_steps, callbacks, "test")
            callbacks.on_test_end(val_logs)
            epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
        callbacks.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    callbacks.on_train_end(logs=epoch_logs)
    return model.history
