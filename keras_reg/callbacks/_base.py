"""What the keras_reg callbacks share: a deep-copyable base class and the schedule protocol."""

import copy
import inspect
import math
import numbers

import keras


class CopyableCallback(keras.callbacks.Callback):
    """Deep-copyable callback base (KerasTuner deep-copies the callbacks of every trial).

    The copy never copies the model it was attached to (`self.model`, found by identity, so
    no private attribute of `keras.callbacks.Callback` is read) nor the run-time state listed
    in `_RUNTIME`; objects listed in `_SHARED` (a tf.data transform, explicit layers, a
    dataset, an explicit target model) are shared, because the copy must act on the very
    objects the user's pipeline holds. The copy is then detached with the public
    `Callback.set_model(None)`.
    """

    _SHARED = ()
    _RUNTIME = ()

    def __deepcopy__(self, memo):
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        model = self.model
        for key, value in self.__dict__.items():
            if key in self._SHARED:
                pass
            elif key in self._RUNTIME or (model is not None and value is model):
                value = None
            else:
                value = copy.deepcopy(value, memo)
            new.__dict__[key] = value
        # the base class's own hook: subclasses' `set_model` overrides find layers on a model
        keras.callbacks.Callback.set_model(new, None)
        return new


def as_schedule(schedule):
    """Normalizes `schedule` to a callable `schedule(epoch, current) -> value`.

    Accepts a constant, `schedule(epoch)` or `schedule(epoch, current)`.
    """
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


def call_schedule(schedule, epoch, current, low, high, what):
    """Calls a normalized schedule and checks its value lies in `[low, high]` (high None: inf)."""
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
