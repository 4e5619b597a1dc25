"""`StrengthScheduler`: schedules the strength of keras_reg regularizers during `fit`."""

import warnings

import keras
from keras import ops

from keras_reg.callbacks._base import CopyableCallback, as_schedule, call_schedule

class StrengthScheduler(CopyableCallback):
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

    Reference:
        - [Krogh & Hertz, 1992. A Simple Weight Decay Can Improve Generalization](
          https://papers.nips.cc/paper/563-a-simple-weight-decay-can-improve-generalization)
    """

    _SHARED = ("target",)
    _RUNTIME = ("_scheduled",)

    def __init__(self, schedule, model=None, component=None, from_initial=False):
        super().__init__()
        self.schedule = as_schedule(schedule)
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
            value = call_schedule(self.schedule, epoch, current, 0.0, None, "strength")
            setattr(regularizer, name, value)
            values.setdefault(name, []).append(value)
        self.strengths = {name: sum(v) / len(v) for name, v in values.items()}

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            for name, value in self.strengths.items():
                logs[f"{name}_strength"] = value
