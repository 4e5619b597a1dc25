"""`PreciseBatchNorm`: exact population statistics for BatchNormalization before evaluation."""

import warnings

import keras
import numpy as np

from keras_reg._validation import check_int
from keras_reg.callbacks._base import CopyableCallback


def _batch_norm_layers(model):
    """The trainable `BatchNormalization` layers of `model` (nested ones included), each once.

    A frozen BatchNormalization (`trainable=False`) runs in inference mode even when called
    with `training=True` (the Keras fine-tuning convention), so its statistics are left alone.
    """
    from keras_reg._roles import walk_layers

    found, seen = [], set()
    for layer in [model, *walk_layers(model)]:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
            if id(layer) not in seen:
                seen.add(id(layer))
                found.append(layer)
    return found


class PreciseBatchNorm(CopyableCallback):
    """Recomputes BatchNormalization statistics exactly before every evaluation ("precise BN").

    A `BatchNormalization` layer normalizes with the statistics of the current batch in
    training and with its moving averages (`moving_mean`, `moving_variance`) at inference. The
    exponential moving average mixes statistics of weights from many past steps and is a poor
    estimate of the population statistics of the *current* weights, especially with a small
    momentum or after large updates; evaluation then sees a model that was never trained.
    Precise BN replaces the moving averages by the population statistics of the current
    weights, computed on `num_batches` batches of training data: for every BatchNormalization
    layer of the model (nested models included) the forward pass is run in training mode on
    each batch, collecting the per-batch mean `μ_b` and (biased) variance `σ²_b` of the layer's
    input over its reduction axes; with `n_b` the size of batch `b`:

        mean = Σ n_b·μ_b / Σ n_b
        variance = Σ n_b·(σ²_b + μ_b²) / Σ n_b − mean²

    i.e. exactly the mean and variance of all the layer's inputs over those batches (the
    batch-size-weighted average of the per-batch means and second moments; the plain average
    when the batches have the same size). Each layer's
    inputs come from the earlier layers in training mode, as during training.

    Only the moving statistics change: trainable weights, the optimizer's state and every
    other variable (random-generator states, layers that update variables in training such as
    `SpectralNormalization`) are restored after the passes. During `fit` the recomputation runs
    in `on_test_begin` (before each validation; also in a standalone `evaluate` given this
    callback) and, with `at_train_end`, at the end of training, so the final model carries
    precise statistics; it is skipped when the weights did not change since the last one.
    Frozen BatchNormalization layers (`trainable=False`) are left as they are. The passes run
    on the model's `__call__` outside any distribution strategy's replica context.

    Args:
        data: a `tf.data.Dataset` of training batches, `(x, y)`, `(x, y, sample_weight)` or
            `x`; use the training pipeline without Mixup / augmentation if the model is
            evaluated on clean data. Iterated anew at every recomputation.
        num_batches: the number of batches used (fewer if the data ends first).
        at_train_end: also recompute at the end of `fit`.
        verbose: 1 prints a line at each recomputation.

    Example:

    >>> import numpy as np
    >>> import tensorflow as tf
    >>> from keras_reg.callbacks import PreciseBatchNorm
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, (64, 4)).astype("float32")
    >>> data = tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(16)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    >>> model.compile("sgd", "mse")
    >>> precise = PreciseBatchNorm(data, num_batches=4)
    >>> _ = model.fit(data, epochs=1, verbose=0, callbacks=[precise])
    >>> bn = model.layers[0]
    >>> bool(np.allclose(bn.moving_mean.numpy(), x.mean(0), atol=1e-5))
    True
    >>> bool(np.allclose(bn.moving_variance.numpy(), x.var(0), atol=1e-4))
    True

    Reference:
        - [Wu & Johnson, 2021. Rethinking "Batch" in BatchNorm](https://arxiv.org/abs/2105.07576)
        - [Ioffe & Szegedy, 2015. Batch Normalization](https://arxiv.org/abs/1502.03167)
    """

    _SHARED = ("data",)
    _RUNTIME = ("_last_step", "_forward", "_forward_model")

    def __init__(self, data, num_batches=200, at_train_end=True, verbose=0):
        super().__init__()
        import tensorflow as tf

        if not isinstance(data, tf.data.Dataset):
            raise TypeError(
                "Invalid value for argument `data`: expected a batched tf.data.Dataset of "
                f"(x, y) or x batches. Received: data={data!r}"
            )
        self.data = data
        self.num_batches = check_int("num_batches", num_batches, low=1)
        if not isinstance(at_train_end, bool):
            raise TypeError(
                "Invalid value for argument `at_train_end`: expected a bool. "
                f"Received: at_train_end={at_train_end!r}"
            )
        self.at_train_end = at_train_end
        self.verbose = verbose
        self._last_step = None
        self._forward = None
        self._forward_model = None

    def _step(self):
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        return None if iterations is None else int(keras.ops.convert_to_numpy(iterations))

    def on_train_begin(self, logs=None):
        self._last_step = None

    def on_test_begin(self, logs=None):
        self._maybe_update()

    def on_train_end(self, logs=None):
        if self.at_train_end:
            self._maybe_update()

    def _maybe_update(self):
        step = self._step()
        if step is not None and step == self._last_step:
            return  # the weights did not change since the last recomputation
        self.update(self.model)
        self._last_step = step

    def update(self, model):
        """Recomputes the statistics of `model`'s BatchNormalization layers now.

        Args:
            model: the Keras model (or layer) whose BatchNormalization layers are updated.

        Returns:
            The number of batches used.
        """
        layers = _batch_norm_layers(model)
        if not layers:
            warnings.warn(
                "PreciseBatchNorm found no trainable BatchNormalization layer in the model; "
                "it does nothing.",
                stacklevel=2,
            )
            return 0
        stats = {id(layer): (layer.moving_mean, layer.moving_variance) for layer in layers}
        stat_ids = {id(v) for pair in stats.values() for v in pair}
        others = [v for v in model.variables if id(v) not in stat_ids]
        saved_values = [keras.ops.copy(v.value) for v in others]
        saved_momentum = [layer.momentum for layer in layers]
        sums = [None] * len(layers)
        count = 0
        try:
            # Momentum 0: each training-mode call leaves exactly the batch statistics in the
            # moving variables. `momentum` is read when the call is traced, so the traced
            # forward pass (kept for the next update of the same model) always runs with it.
            for layer in layers:
                layer.momentum = 0.0
            if self._forward_model is not model:
                self._forward, self._forward_model = _forward_function(model, layers), model
            forward = self._forward
            for batch in self.data.take(self.num_batches):
                x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
                batch_stats = forward(x)
                n = float(keras.tree.flatten(x)[0].shape[0])
                for i in range(len(layers)):
                    mean, var = (np.asarray(keras.ops.convert_to_numpy(t), "float64")
                                 for t in batch_stats[i])
                    moments = np.stack([n * mean, n * (var + mean * mean), np.full_like(mean, n)])
                    sums[i] = moments if sums[i] is None else sums[i] + moments
                count += 1
        finally:
            for layer, momentum in zip(layers, saved_momentum):
                layer.momentum = momentum
            for variable, value in zip(others, saved_values):
                variable.assign(value)
        if count == 0:
            raise ValueError(
                "Invalid value for argument `data`: the dataset yielded no batch. "
                f"Received: data={self.data!r}"
            )
        for layer, total in zip(layers, sums):
            mean = total[0] / total[2]
            variance = np.maximum(total[1] / total[2] - mean * mean, 0.0)
            layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
            layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
        if self.verbose:
            print(
                f"\nPreciseBatchNorm: statistics of {len(layers)} BatchNormalization layers "
                f"recomputed on {count} batches."
            )
        return count


def _forward_function(model, layers):
    """`model(x, training=True)`, then the `(moving_mean, moving_variance)` of each of `layers`
    (one compiled call per batch on TensorFlow, traced after the momentum change)."""

    def forward(x):
        model(x, training=True)
        return [(layer.moving_mean.value, layer.moving_variance.value) for layer in layers]

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(forward, reduce_retracing=True)
    return forward
