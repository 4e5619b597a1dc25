"""Callbacks that change regularization strength during `fit` (re-exported by `callbacks`).

Every value they change is a variable read by the traced training step (layer rates, regularizer
strengths, the MixupCutMix probability, the weight-decay coefficient), so a change takes effect
at the next step of an already compiled `fit` — also with `jit_compile=True` and under
`tf.distribute` strategies — without retracing.
"""

import copy
import inspect
import math
import numbers
import warnings

import keras
from keras import ops

from keras_reg._validation import check_int


# ------------------------------------------------------------------ shared helpers


class _Callback(keras.callbacks.Callback):
    """Deep-copyable callback base (KerasTuner deep-copies the callbacks of every trial).

    The copy never copies the model it was attached to (`_model`) nor the run-time state
    listed in `_RUNTIME`; objects listed in `_SHARED` (a tf.data transform, explicit layers)
    are shared, because the copy must act on the very objects the user's pipeline holds.
    """

    _SHARED = ()
    _RUNTIME = ()

    def __deepcopy__(self, memo):
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key == "_model" or key in self._RUNTIME:
                value = None
            elif key not in self._SHARED:
                value = copy.deepcopy(value, memo)
            new.__dict__[key] = value
        return new


def _walk_layers(model):
    """All layers inside `model`, nested models and layers' sub-layers included."""
    if hasattr(model, "_flatten_layers"):
        return list(model._flatten_layers(include_self=False, recursive=True))
    found, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        found.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return found


def _check_schedule(schedule):
    if isinstance(schedule, numbers.Real) and not isinstance(schedule, bool):
        value = float(schedule)
        return lambda epoch, current: value
    if not callable(schedule):
        raise TypeError(
            "Invalid value for argument `schedule`: expected a callable "
            f"schedule(epoch, value) -> float. Received: schedule={schedule!r}"
        )
    try:
        params = inspect.signature(schedule).parameters.values()
        positional = [
            p
            for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
        takes_two = len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)
    except (TypeError, ValueError):
        takes_two = True
    if takes_two:
        return schedule
    return lambda epoch, current: schedule(epoch)


def _call_schedule(schedule, epoch, current, low, high, what):
    value = schedule(epoch, current)
    try:
        value_f = float(value)
    except (TypeError, ValueError):
        value_f = math.nan
    if math.isnan(value_f) or math.isinf(value_f) or value_f < low or (
        high is not None and value_f > high
    ):
        interval = f"[{low:g}, {high:g}]" if high is not None else f"[{low:g}, inf)"
        raise ValueError(
            f"Invalid value returned by `schedule` at epoch {epoch}: expected a {what} in "
            f"{interval}. Received: {value!r}"
        )
    return value_f


# ------------------------------------------------------------------ RateScheduler


def _has_rate(layer):
    return hasattr(layer, "rate_variable") and hasattr(type(layer), "rate")


class RateScheduler(_Callback):
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
    """

    _SHARED = ("_explicit_layers",)
    _RUNTIME = ("_layers",)

    def __init__(self, schedule, layers=None, from_initial=False, verbose=0):
        super().__init__()
        self.schedule = _check_schedule(schedule)
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
        for layer in _walk_layers(self.model):
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
            rate = _call_schedule(self.schedule, epoch, base, 0.0, 1.0, "rate")
            layer.rate = rate
            rates.append(rate)
        self.rate = sum(rates) / len(rates)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: RateScheduler sets the mean rate to {self.rate:.4g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.rate is not None:
            logs["rate"] = self.rate


# ------------------------------------------------------------------ MixupScheduler


class MixupScheduler(_Callback):
    """Turns a `keras_reg.data.MixupCutMix` off from `off_epoch` on (timm's `mixup_off_epoch`).

    The last epochs then train on clean (but still label-smoothed, if set) data. Each epoch the
    transform's `prob` — a variable read by the tf.data pipeline at run time — is set to 0 from
    `off_epoch` on and to the original probability before it; the original is recorded at the
    first `on_train_begin`, so a second `fit` (or a resumed one with `initial_epoch`) mixes again
    where it should. The copy made by `copy.deepcopy` (KerasTuner) controls the same transform.
    Logs `mixup_prob`. A batch already prefetched when the epoch begins keeps its mixing.

    Args:
        transform: the `MixupCutMix` instance used in the training pipeline (anything with a
            settable `prob`).
        off_epoch: the first epoch (0-based, as in `fit`'s logs) trained without mixing.

    Example:

    >>> from keras_reg.callbacks import MixupScheduler
    >>> from keras_reg.data import MixupCutMix
    >>> mix = MixupCutMix(num_classes=10)
    >>> callback = MixupScheduler(mix, off_epoch=25)
    """

    _SHARED = ("transform",)

    def __init__(self, transform, off_epoch):
        super().__init__()
        if not hasattr(transform, "prob"):
            raise TypeError(
                "Invalid value for argument `transform`: expected a keras_reg.data.MixupCutMix "
                f"(an object with a settable `prob`). Received: transform={transform!r}"
            )
        self.transform = transform
        self.off_epoch = check_int("off_epoch", off_epoch, low=0)
        self._original = None

    def on_train_begin(self, logs=None):
        if self._original is None:
            self._original = float(self.transform.prob)

    def on_epoch_begin(self, epoch, logs=None):
        self.transform.prob = 0.0 if epoch >= self.off_epoch else self._original

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["mixup_prob"] = float(self.transform.prob)


# ------------------------------------------------------------------ StrengthScheduler


class StrengthScheduler(_Callback):
    """Sets the strength of the keras_reg regularizers of a model each epoch.

    At the start of every epoch each scheduled strength becomes `schedule(epoch, strength)`:
    warm-up, decay, or any curve. Works on the `keras_reg.regularizers` `L1`, `L2` and `L1L2`
    objects attached to the model's trainable weights (each object once: one object shared by
    many layers is one strength). For `L1L2` each component is scheduled separately; by default
    only the components that are non-zero at the start of training (both if both are zero) —
    `component="l1"` or `"l2"` restricts scheduling to one. Logs the mean `l1_strength` /
    `l2_strength` of the scheduled regularizers.

    Args:
        schedule: `schedule(epoch, strength) -> float >= 0` (or `schedule(epoch)`).
        model: the model whose regularizers are scheduled; None: the model being trained.
        component: None, `"l1"` or `"l2"`.
        from_initial: pass the strength at the start of training instead of the current one.

    Example:

    >>> from keras_reg.callbacks import StrengthScheduler
    >>> warmup = StrengthScheduler(lambda epoch, l2: l2 * min(1.0, (epoch + 1) / 3),
    ...                            from_initial=True)
    """

    _SHARED = ("target",)
    _RUNTIME = ("_scheduled",)

    def __init__(self, schedule, model=None, component=None, from_initial=False):
        super().__init__()
        self.schedule = _check_schedule(schedule)
        if model is not None and not isinstance(model, keras.layers.Layer):
            raise TypeError(
                f"Invalid value for argument `model`: expected a keras Model or None. "
                f"Received: model={model!r}"
            )
        if component not in (None, "l1", "l2"):
            raise ValueError(
                "Invalid value for argument `component`: expected None, 'l1' or 'l2'. "
                f"Received: component={component!r}"
            )
        self.target = model
        self.component = component
        self.from_initial = bool(from_initial)
        self._initial = {}
        self._scheduled = None
        self.strengths = {}

    def on_train_begin(self, logs=None):
        target = self.target if self.target is not None else self.model
        scheduled, seen = [], set()
        for variable in target.trainable_weights:
            regularizer = getattr(variable, "regularizer", None)
            strengths = getattr(regularizer, "strengths", None)
            if not isinstance(strengths, dict) or id(regularizer) in seen:
                continue
            seen.add(id(regularizer))
            names = [n for n in strengths if self.component in (None, n)]
            if self.component is None and len(names) > 1:
                nonzero = [n for n in names if float(ops.convert_to_numpy(strengths[n])) != 0.0]
                names = nonzero or names
            for name in names:
                key = (id(regularizer), name)
                self._initial.setdefault(key, float(ops.convert_to_numpy(strengths[name])))
                scheduled.append((regularizer, name, key))
        if not scheduled:
            warnings.warn(
                "StrengthScheduler found no keras_reg regularizers in the model; it does "
                "nothing. Attach them with keras_reg.regularizers.l2(...) or "
                "keras_reg.regularizers.apply(model, ...).",
                stacklevel=2,
            )
        self._scheduled = scheduled

    def on_epoch_begin(self, epoch, logs=None):
        values = {}
        for regularizer, name, key in self._scheduled or ():
            current = self._initial[key] if self.from_initial else getattr(regularizer, name)
            value = _call_schedule(self.schedule, epoch, current, 0.0, None, "strength")
            setattr(regularizer, name, value)
            values.setdefault(name, []).append(value)
        self.strengths = {name: sum(v) / len(v) for name, v in values.items()}

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            for name, value in self.strengths.items():
                logs[f"{name}_strength"] = value


# ------------------------------------------------------------------ WeightDecayScheduler

_EXCLUDE_ROLES = ("bias", "normalization", "embedding")


class _DecoupledDecay(keras.constraints.Constraint):
    """`w ← w·(1 − lr·wd)` then the variable's own constraint; applied by the optimizer."""

    def __init__(self, coefficient, optimizer, inner=None):
        self.coefficient = coefficient
        self.optimizer = optimizer
        self.inner = inner

    def __call__(self, w):
        lr = ops.cast(self.optimizer.learning_rate, w.dtype)
        decayed = w - w * (lr * ops.cast(self.coefficient, w.dtype))
        return self.inner(decayed) if self.inner is not None else decayed

    def get_config(self):  # never serialized: removed at the end of training
        return {}


class WeightDecayScheduler(_Callback):
    """Decoupled weight decay whose coefficient follows a schedule.

    After every optimizer step each decayed weight becomes `w ← w − lr·wd(epoch)·w`, where `lr`
    is the optimizer's learning rate at that step (its schedule included) and
    `wd(epoch) = schedule(epoch, previous_wd)` is set at the start of each epoch — AdamW's
    decoupled decay (Loshchilov & Hutter, 2019), with any optimizer and a coefficient that may
    change during training (Keras optimizers accept only a constant `weight_decay`). It differs
    from an L2 penalty under adaptive optimizers; see `keras_reg.regularizers`.

    The decay runs inside the compiled training step: during `fit` the callback installs a
    Keras variable constraint on each decayed weight (composed with any constraint the weight
    already has), which the optimizer applies after its update — so it works with
    `jit_compile=True`, `steps_per_execution > 1` and `tf.distribute` strategies. The constraints
    are removed at the end of `fit` (the train function is rebuilt at its start and end; a
    layer's `kernel_constraint` config is never touched, so checkpoints are unaffected). Do not
    combine it with an optimizer `weight_decay`, which would decay twice. Logs `weight_decay`.

    Args:
        schedule: `schedule(epoch, weight_decay) -> float >= 0` (or `schedule(epoch)`), or a
            constant. `weight_decay` is the previous epoch's value (0.0 at the first epoch).
        exclude: what is not decayed: role names `"bias"` (every layer's `bias` variable and
            any variable named like a bias), `"normalization"` (all parameters of normalization
            layers, keras_reg GroupNorm included), `"embedding"`; layers (all their weights),
            variables, or predicates `variable -> bool`. Default: biases and normalization.

    Example:

    >>> from keras_reg.callbacks import WeightDecayScheduler
    >>> cosine = WeightDecayScheduler(
    ...     lambda epoch: 0.05 * 0.5 * (1 + math.cos(math.pi * epoch / 30)))
    """

    _SHARED = ("exclude",)
    _RUNTIME = ("_coefficient", "_saved")

    def __init__(self, schedule, exclude=("bias", "normalization")):
        super().__init__()
        self.schedule = _check_schedule(schedule)
        exclude = () if exclude is None else exclude
        if isinstance(exclude, str) or not isinstance(exclude, (list, tuple, set)):
            exclude = (exclude,)
        for item in exclude:
            if isinstance(item, str) and item not in _EXCLUDE_ROLES:
                raise ValueError(
                    f"Invalid value for argument `exclude`: expected role names among "
                    f"{_EXCLUDE_ROLES}, layers, variables or predicates. Received: "
                    f"exclude={exclude!r}"
                )
            if not isinstance(item, (str, keras.layers.Layer, keras.Variable)) and not callable(
                item
            ):
                raise TypeError(
                    "Invalid value for argument `exclude`: expected role names, layers, "
                    f"variables or predicates. Received: exclude={exclude!r}"
                )
        self.exclude = tuple(exclude)
        self.weight_decay = 0.0
        self._coefficient = None
        self._saved = None

    def _excluded_ids(self, model):
        from keras_reg.regularizers import _is_embedding, _is_normalization

        excluded = set()
        roles = {item for item in self.exclude if isinstance(item, str)}
        for layer in _walk_layers(model):
            if ("normalization" in roles and _is_normalization(layer)) or (
                "embedding" in roles and _is_embedding(layer)
            ):
                excluded.update(id(v) for v in layer.trainable_weights)
            if "bias" in roles:
                bias = getattr(layer, "bias", None)
                if isinstance(bias, keras.Variable):
                    excluded.add(id(bias))
        for variable in model.trainable_weights:
            if "bias" in roles and "bias" in variable.name.split("/")[-1]:
                excluded.add(id(variable))
        for item in self.exclude:
            if isinstance(item, keras.layers.Layer):
                excluded.update(id(v) for v in item.trainable_weights)
            elif isinstance(item, keras.Variable):
                excluded.add(id(item))
            elif callable(item):
                excluded.update(id(v) for v in model.trainable_weights if item(v))
        return excluded

    def decayed_variables(self, model=None):
        """The trainable variables of `model` (default: the trained one) that are decayed."""
        model = model if model is not None else self.model
        excluded = self._excluded_ids(model)
        return [v for v in model.trainable_weights if id(v) not in excluded]

    def on_train_begin(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("WeightDecayScheduler needs a compiled model (an optimizer).")
        strategy = getattr(self.model, "distribute_strategy", None)
        scope = strategy.scope() if strategy is not None else _null()
        with scope:
            self._coefficient = keras.Variable(
                0.0, dtype="float32", trainable=False, autocast=False, name="weight_decay"
            )
        self._saved = []
        for variable in self.decayed_variables():
            self._saved.append((variable, variable.constraint))
            variable.constraint = _DecoupledDecay(
                self._coefficient, optimizer, inner=variable.constraint
            )
        self.model.make_train_function(force=True)

    def on_epoch_begin(self, epoch, logs=None):
        self.weight_decay = _call_schedule(
            self.schedule, epoch, self.weight_decay, 0.0, None, "weight decay"
        )
        self._coefficient.assign(self.weight_decay)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["weight_decay"] = self.weight_decay

    def on_train_end(self, logs=None):
        for variable, constraint in self._saved or ():
            variable.constraint = constraint
        self._saved = None
        self._coefficient = None
        self.model.make_train_function(force=True)


def _null():
    import contextlib

    return contextlib.nullcontext()
