"""`WeightDecayScheduler`: decoupled weight decay with a scheduled coefficient."""

import keras
from keras import ops

from keras_reg import _roles
from keras_reg._variables import float_variable
from keras_reg.callbacks._base import CopyableCallback, as_schedule, call_schedule

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


class WeightDecayScheduler(CopyableCallback):
    """Decoupled weight decay whose coefficient follows a schedule.

    After every optimizer step each decayed weight becomes `w ← w − lr·wd(epoch)·w`, where `lr`
    is the optimizer's learning rate at that step (its schedule included) and
    `wd(epoch) = schedule(epoch, previous_wd)` is set at the start of each epoch — AdamW's
    decoupled decay (Loshchilov & Hutter, 2019), with any optimizer and a coefficient that may
    change during training (Keras optimizers accept only a constant `weight_decay`). It differs
    from an L2 penalty under adaptive optimizers; see `keras_reg.regularizers`.

    The decay runs inside the compiled training step: when `fit` attaches the callback, it
    installs a Keras variable constraint on each decayed weight (composed with any constraint
    the weight already has), which the optimizer applies after its update — so it works with
    `jit_compile=True`, `steps_per_execution > 1` and `tf.distribute` strategies. The
    coefficient is a variable read by the traced step: changing it each epoch never retraces,
    and the first `fit` traces its train function once, with the decay in it. At the end of
    `fit` the coefficient is set to 0 (the traced step then leaves weights exactly as they are)
    and the weights get their own constraints back; a layer's `kernel_constraint` config is never
    touched, so checkpoints are unaffected. A later `fit` with this callback reuses its train
    function; another train function (e.g. from a `fit` without it) is rebuilt once.

    The optimizer's own `weight_decay` is a constant in its config and its exclusion list is
    matched by variable names, so it cannot follow a schedule; do not combine both, which would
    decay twice. Logs `weight_decay`.

    Args:
        schedule: `schedule(epoch, weight_decay) -> float >= 0` (or `schedule(epoch)`), or a
            constant. `weight_decay` is the previous epoch's value (0.0 at the first epoch).
        exclude: what is not decayed: role names `"bias"` (every layer's `bias` variable and
            any variable named like a bias), `"normalization"` (all parameters of normalization
            layers, keras_reg GroupNorm included), `"embedding"`; layers (all their weights),
            variables, or predicates `variable -> bool`. Default: biases and normalization.

    Example:

    >>> import math
    >>> from keras_reg.callbacks import WeightDecayScheduler
    >>> cosine = WeightDecayScheduler(
    ...     lambda epoch: 0.05 * 0.5 * (1 + math.cos(math.pi * epoch / 30)))

    Reference:
        - [Loshchilov & Hutter, 2019. Decoupled Weight Decay Regularization](
          https://arxiv.org/abs/1711.05101)
    """

    _SHARED = ("exclude",)
    _RUNTIME = ("_coefficient", "_saved", "_owner", "_traced", "_rebuild", "_training")

    def __init__(self, schedule, exclude=("bias", "normalization")):
        super().__init__()
        self.schedule = as_schedule(schedule)
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
        self._owner = None
        self._traced = None
        self._rebuild = False
        self._training = False

    def _excluded_ids(self, model):
        excluded = set()
        roles = {item for item in self.exclude if isinstance(item, str)}
        for role in roles & set(_roles.ROLES):
            for layer in _roles.role_layers(model, role):
                excluded.update(id(v) for v in layer.trainable_weights)
        if "bias" in roles:
            excluded.update(id(v) for v in _roles.bias_variables(model))
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
        """The trainable variables of `model` that are decayed.

        Args:
            model: a Keras model or layer; default: the model being trained.

        Returns:
            A list of variables: every trainable variable not excluded by `exclude`.
        """
        model = model if model is not None else self.model
        excluded = self._excluded_ids(model)
        return [v for v in model.trainable_weights if id(v) not in excluded]

    def set_model(self, model):
        # `fit` attaches the callbacks before it makes its train function: installing the
        # constraints here lets the first trace include them, with no forced retrace.
        super().set_model(model)
        if getattr(model, "built", False) and getattr(model, "optimizer", None) is not None:
            self._install()

    def _install(self):
        """Installs the decay constraints (once per fit) and the coefficient (once per model)."""
        model = self.model
        if self._saved is not None:
            return
        if self._coefficient is None or self._owner is not model:
            strategy = getattr(model, "distribute_strategy", None)
            self._coefficient = float_variable(0.0, "weight_decay", strategy=strategy)
            self._owner, self._traced = model, None
        self._saved = []
        for variable in self.decayed_variables(model):
            self._saved.append((variable, variable.constraint))
            variable.constraint = _DecoupledDecay(
                self._coefficient, model.optimizer, inner=variable.constraint
            )
        # A train function traced before the install (an earlier `fit`) lacks the decay, unless
        # it is the one this callback traced with the same coefficient in an earlier `fit`.
        existing = getattr(model, "train_function", None)
        self._rebuild = existing is not None and existing is not self._traced

    def on_train_begin(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("WeightDecayScheduler needs a compiled model (an optimizer).")
        self._install()
        if self._rebuild:
            self.model.make_train_function(force=True)
            self._rebuild = False
        self._traced = self.model.train_function
        self._training = True

    def on_test_end(self, logs=None):
        if not self._training:  # a standalone `evaluate` attached the callback
            self._uninstall()

    def on_predict_end(self, logs=None):
        if not self._training:
            self._uninstall()

    def on_epoch_begin(self, epoch, logs=None):
        self.weight_decay = call_schedule(
            self.schedule, epoch, self.weight_decay, 0.0, None, "weight decay"
        )
        self._coefficient.assign(self.weight_decay)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["weight_decay"] = self.weight_decay

    def on_train_end(self, logs=None):
        self._training = False
        self._uninstall()

    def _uninstall(self):
        # The traced step keeps applying `w − lr·0·w = w` (exact) until it is rebuilt; the
        # variables get their own constraints back, so configs and checkpoints are unaffected.
        if self._coefficient is not None:
            self._coefficient.assign(0.0)
        for variable, constraint in self._saved or ():
            variable.constraint = constraint
        self._saved = None
