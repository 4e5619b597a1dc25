"""`RateScheduler`: schedules the rate of keras_reg dropout-like layers during `fit`."""

import warnings

from keras_reg._roles import walk_layers
from keras_reg.callbacks._base import CopyableCallback, as_schedule, call_schedule

def _has_rate(layer):
    return hasattr(layer, "rate_variable") and hasattr(type(layer), "rate")


class RateScheduler(CopyableCallback):
    """Sets the `rate` of InvertedDropout / DropPath / StochasticDepth / DropBlock layers per epoch.

    At the start of every epoch each layer's rate becomes `schedule(epoch, rate)`. The rates are
    non-trainable variables read by the traced step, so the new rate is used from the next step
    on without retracing. With `layers=None` the layers are found in the model being trained,
    nested models and sub-layers included (each rate variable once). Keras's own `Dropout`
    holds a Python float baked into the step and cannot be scheduled: use
    `keras_reg.layers.InvertedDropout`. The mean rate is logged as `rate`.

    Args:
        schedule: `schedule(epoch, rate) -> float` in [0, 1] (or `schedule(epoch)`). `rate` is
            the layer's current rate, or its rate at the start of training when `from_initial`.
        layers: explicit list of rate layers, or None to find them in the model.
        from_initial: pass each layer's rate at the start of training instead of its current
            rate, so that per-layer rates (e.g. `drop_path_rates`) can be warmed up:
            `lambda epoch, rate: rate * min(1.0, epoch / 5)`.
        verbose: 1 prints the new mean rate each epoch.

    Example:

    >>> from keras_reg.callbacks import RateScheduler
    >>> warmup = RateScheduler(lambda epoch, rate: rate * min(1.0, (epoch + 1) / 5),
    ...                        from_initial=True)

    Reference:
        - [Huang et al., 2016. Deep Networks with Stochastic Depth](
          https://arxiv.org/abs/1603.09382)
        - [Morerio et al., 2017. Curriculum Dropout](https://arxiv.org/abs/1703.06229)
    """

    _SHARED = ("_explicit_layers",)
    _RUNTIME = ("_layers",)

    def __init__(self, schedule, layers=None, from_initial=False, verbose=0):
        super().__init__()
        self.schedule = as_schedule(schedule)
        if layers is not None:
            layers = list(layers) if isinstance(layers, (list, tuple)) else [layers]
            bad = [layer for layer in layers if not _has_rate(layer)]
            if bad:
                raise TypeError(
                    "Invalid value for argument `layers`: expected keras_reg rate layers "
                    "(InvertedDropout, DropPath, StochasticDepth, DropBlock) whose rate is a "
                    "variable. "
                    f"Received: layers={bad!r}"
                )
        self._explicit_layers = layers
        self.from_initial = bool(from_initial)
        self.verbose = verbose
        self._initial = {}
        self._layers = None
        self.rate = None

    def _find_layers(self):
        if self._explicit_layers is not None:
            return self._explicit_layers
        found, seen = [], set()
        for layer in walk_layers(self.model):
            if _has_rate(layer) and id(layer.rate_variable) not in seen:
                seen.add(id(layer.rate_variable))
                found.append(layer)
        return found

    def set_model(self, model):
        # `fit` attaches the model to every callback before any `on_train_begin`, so the rates
        # recorded here are the model's own even when a `BackupAndRestore` listed first then
        # restores scheduled rates in its `on_train_begin`.
        super().set_model(model)
        self._record_initial()

    def on_train_begin(self, logs=None):
        if not self._layers:  # found by `set_model`, which `fit` calls first
            warnings.warn(
                "RateScheduler found no keras_reg rate layers (InvertedDropout, DropPath, "
                "StochasticDepth, DropBlock) in the model; it does nothing.",
                stacklevel=2,
            )

    def _record_initial(self):
        self._layers = self._find_layers()
        for layer in self._layers:
            self._initial.setdefault(id(layer.rate_variable), layer.rate)

    def on_epoch_begin(self, epoch, logs=None):
        if not self._layers:
            return
        rates = []
        for layer in self._layers:
            base = self._initial[id(layer.rate_variable)] if self.from_initial else layer.rate
            rate = call_schedule(self.schedule, epoch, base, 0.0, 1.0, "rate")
            layer.rate = rate
            rates.append(rate)
        self.rate = sum(rates) / len(rates)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: RateScheduler sets the mean rate to {self.rate:.4g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.rate is not None:
            logs["rate"] = self.rate
