"""Float settings held in variables: the one mechanism behind every schedulable number.

A setting that a callback may change during `fit` (a dropout rate, a noise level, a penalty
strength, a Mixup probability) must be read by the traced step at run time, so it lives in a
non-trainable float32 scalar variable rather than in a Python float baked into the graph.
Every such setting is made of two pieces defined here:

- `float_variable(value, name, layer=None, strategy=None)` creates the variable: through
  `layer.add_weight` when it belongs to a layer (tracked, saved with the weights, mirrored by
  the layer's strategy), otherwise as a `keras.Variable` created outside any `tf.function`
  being traced (`tf.init_scope`), under `strategy.scope()` when a strategy is given and under
  whatever strategy scope is active otherwise. Never autocast: it stays float32 under mixed
  precision.
- `float_setting(name, check, variable=...)` is a property on the owning class: reading it
  gives the current Python float, assigning it validates the value with `check` (which raises a
  ValueError/TypeError naming the argument) and assigns the variable in place, so an already
  traced or compiled function sees the new value at its next run.

Usage::

    class Noise(keras.layers.Layer):
        stddev = float_setting("stddev", functools.partial(check_float, "stddev", low=0.0))

        def __init__(self, stddev):
            super().__init__()
            self.stddev_variable = float_variable(stddev, "stddev", layer=self)
"""

import contextlib

import keras


def float_variable(value, name, layer=None, strategy=None):
    """A non-trainable float32 scalar variable holding `value` (validated by the caller).

    Args:
        value: the initial value, a Python float.
        name: the variable name.
        layer: the `keras.layers.Layer` owning the variable, or None. With a layer the variable
            is one of its weights (`layer.non_trainable_weights`, saved with the model).
        strategy: a `tf.distribute.Strategy` under whose scope to create the variable, or None
            for the current scope.

    Returns:
        The variable (a `keras.Variable`).
    """
    if layer is not None:
        return layer.add_weight(
            name=name,
            shape=(),
            dtype="float32",
            initializer=keras.initializers.Constant(value),
            trainable=False,
            autocast=False,
        )
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope, _outside_traced_functions():
        return keras.Variable(value, dtype="float32", trainable=False, autocast=False, name=name)


def _outside_traced_functions():
    """`tf.init_scope()` on TensorFlow (lifts creation out of a function being traced, keeps the
    distribution strategy); nothing on other backends, whose variables are not graph-bound."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.init_scope()
    return contextlib.nullcontext()


def read_float(variable):
    """The current value of a scalar variable as a Python float."""
    return float(keras.ops.convert_to_numpy(variable))


def float_setting(name, check, variable=None, doc=None):
    """A property exposing a float setting held in a variable attribute of the instance.

    Args:
        name: the setting's name (used in the default docstring).
        check: a callable `value -> float` that validates a new value and raises a ValueError or
            TypeError naming the argument when it is invalid.
        variable: the name of the instance attribute holding the variable; defaults to
            `f"{name}_variable"`. A callable `instance -> variable` is accepted as well (for
            variables kept in a dict).
        doc: the property's docstring.

    Returns:
        A `property` whose getter returns the current float and whose setter assigns the
        checked value to the variable.
    """
    if variable is None:
        variable = f"{name}_variable"
    if callable(variable):
        get_variable = variable
    else:
        attribute = variable

        def get_variable(instance):
            return getattr(instance, attribute)

    def getter(self):
        return read_float(get_variable(self))

    def setter(self, value):
        get_variable(self).assign(check(value))

    if doc is None:
        doc = (
            f"The current `{name}` (a Python float). Assigning validates the value and updates "
            "the variable in place, so a traced or compiled step uses it at its next run."
        )
    return property(getter, setter, doc=doc)
