"""What to search (`RegularizationSpace`) and one trial's values (`Regularization`)."""

import numbers

from keras_reg._validation import check_choice, check_float, check_int, check_seed

NORMS = ("batch", "group", None)

# name -> (lower bound, upper bound, upper bound open, log-uniform range by default)
_FLOATS = {
    "l2": (0.0, None, False, True),
    "dropout": (0.0, 1.0, True, False),
    "drop_path": (0.0, 1.0, True, False),
    "mixup_alpha": (0.0, None, False, False),
    "cutmix_alpha": (0.0, None, False, False),
    "label_smoothing": (0.0, 1.0, True, False),
}
NAMES = tuple(_FLOATS) + ("norm",)


def _check_value(name, value):
    """One value of parameter `name`, validated (floats in range, norm a known type)."""
    if name == "norm":
        if isinstance(value, str) and value.lower() == "none":
            value = None
        return check_choice("norm", value, NORMS)
    low, high, high_open, _ = _FLOATS[name]
    return check_float(name, value, low, high, high_open=high_open)


class Regularization:
    """The regularization of one trial: strengths and normalization, with builder helpers.

    `search` hands one `Regularization` to `build_model(reg)` per trial, and builds the training
    pipeline from the same values, so a model builder only reads attributes:

    - `l2`: L2 penalty `λ·Σw²` on kernels (`reg.kernel_regularizer()`, None when 0).
    - `dropout`: dropout rate before the classifier (and wherever the builder puts it).
    - `drop_path`: the largest stochastic-depth rate; `reg.drop_path_rates(depth)` gives the
      linear decay rule over `depth` residual blocks.
    - `mixup_alpha`, `cutmix_alpha`, `label_smoothing`: the data side, applied by
      `reg.transform(num_classes)` (a `keras_reg.data.MixupCutMix`, None when all are 0).
    - `norm`: `"batch"`, `"group"` or None.

    `Regularization.none()` is the unregularized baseline: every strength 0 and no
    normalization layer.

    Args:
        l2: float >= 0.
        dropout: float in [0, 1).
        drop_path: float in [0, 1).
        mixup_alpha: float >= 0 (0 disables Mixup).
        cutmix_alpha: float >= 0 (0 disables CutMix).
        label_smoothing: float in [0, 1), the ε of `y·(1-ε) + ε/K`.
        norm: `"batch"`, `"group"` or None.

    Example:

    >>> reg = Regularization(l2=1e-4, dropout=0.25, mixup_alpha=0.2)
    >>> reg.dropout, reg.norm
    (0.25, None)
    >>> [round(r, 2) for r in Regularization(drop_path=0.2).drop_path_rates(3)]
    [0.0, 0.1, 0.2]
    >>> Regularization.none().transform(num_classes=10) is None
    True
    """

    def __init__(self, l2=0.0, dropout=0.0, drop_path=0.0, mixup_alpha=0.0, cutmix_alpha=0.0,
                 label_smoothing=0.0, norm=None):
        self.l2 = _check_value("l2", l2)
        self.dropout = _check_value("dropout", dropout)
        self.drop_path = _check_value("drop_path", drop_path)
        self.mixup_alpha = _check_value("mixup_alpha", mixup_alpha)
        self.cutmix_alpha = _check_value("cutmix_alpha", cutmix_alpha)
        self.label_smoothing = _check_value("label_smoothing", label_smoothing)
        self.norm = _check_value("norm", norm)

    @classmethod
    def none(cls):
        """The unregularized baseline: all strengths 0, no normalization."""
        return cls()

    baseline = none

    @classmethod
    def from_dict(cls, values):
        """A `Regularization` from a dict (unknown keys such as `tuner/epochs` are ignored)."""
        return cls(**{k: v for k, v in dict(values).items() if k in NAMES})

    def to_dict(self):
        return {name: getattr(self, name) for name in NAMES}

    get_config = to_dict
    from_config = from_dict

    @property
    def is_none(self):
        """True for the unregularized baseline."""
        return self == Regularization.none()

    def kernel_regularizer(self):
        """`keras_reg.regularizers.l2(self.l2)`, or None when `l2` is 0."""
        if self.l2 == 0.0:
            return None
        from keras_reg import regularizers

        return regularizers.l2(self.l2)

    def drop_path_rates(self, depth):
        """Per-block drop-path rates rising linearly from 0 to `drop_path` over `depth` blocks."""
        depth = check_int("depth", depth, low=1)
        from keras_reg.layers import drop_path_rates

        return list(drop_path_rates(depth, self.drop_path))

    def transform(self, num_classes, seed=None):
        """The batch transform of this trial: `MixupCutMix` with its alphas and ε, or None.

        Args:
            num_classes: int >= 2.
            seed: None or int >= 0, seed of the transform.

        Returns:
            A `keras_reg.data.MixupCutMix` for `dataset.batch(...).map(...)`, or None when
            `mixup_alpha`, `cutmix_alpha` and `label_smoothing` are all 0.
        """
        num_classes = check_int("num_classes", num_classes, low=2)
        seed = check_seed(seed)
        if not (self.mixup_alpha or self.cutmix_alpha or self.label_smoothing):
            return None
        from keras_reg.data import MixupCutMix

        return MixupCutMix(
            num_classes, mixup_alpha=self.mixup_alpha, cutmix_alpha=self.cutmix_alpha,
            label_smoothing=self.label_smoothing, seed=seed,
            # Not XLA-compiled: a trial's pipeline is new each time, and the compilation
            # costs seconds while the batches of a small dataset take milliseconds.
            jit_compile=False,
        )

    def __eq__(self, other):
        return isinstance(other, Regularization) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(tuple(self.to_dict().items()))

    def describe(self):
        """A short one-line description: `l2=1e-04 dropout=0.25 norm=batch` (zeros left out)."""
        parts = []
        for name, value in self.to_dict().items():
            if name == "norm":
                if value is not None:
                    parts.append(f"norm={value}")
            elif value:
                parts.append(f"{name}={_fmt(value)}")
        return " ".join(parts) or "none"

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"Regularization({args})"


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.2e}" if 0 < abs(value) < 1e-2 else f"{value:.3g}"
    return str(value)


class _Param:
    """One parameter of the space: a range, a list of choices, a fixed value, or disabled."""

    def __init__(self, name, spec, log):
        self.name = name
        self.kind, self.values = self._parse(name, spec, log)

    @staticmethod
    def _parse(name, spec, log):
        if spec is None or spec is False:
            return "off", None
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise ValueError(
                    f"Invalid value for argument `{name}`: expected a range (low, high), a list "
                    f"of choices, a number or None. Received: {name}={spec!r}"
                )
            low, high = (_check_value(name, v) for v in spec)
            if not low < high:
                raise ValueError(
                    f"Invalid value for argument `{name}`: expected a range (low, high) with "
                    f"low < high. Received: {name}={spec!r}"
                )
            if log and low <= 0.0:
                raise ValueError(
                    f"Invalid value for argument `{name}`: a log-uniform range needs low > 0 "
                    f"(to include 0, give a list of choices such as [0.0, 1e-4, 1e-3]). "
                    f"Received: {name}={spec!r}"
                )
            return "range", (low, high, log)
        if isinstance(spec, list):
            if not spec:
                raise ValueError(
                    f"Invalid value for argument `{name}`: expected a non-empty list of choices. "
                    f"Received: {name}={spec!r}"
                )
            values = [_check_value(name, v) for v in spec]
            if len(set(values)) != len(values):
                raise ValueError(
                    f"Invalid value for argument `{name}`: expected distinct choices. "
                    f"Received: {name}={spec!r}"
                )
            return "choice", values
        if name == "norm" or isinstance(spec, numbers.Real) and not isinstance(spec, bool):
            return "fixed", _check_value(name, spec)
        raise TypeError(
            f"Invalid value for argument `{name}`: expected a range (low, high), a list of "
            f"choices, a number or None. Received: {name}={spec!r}"
        )

    def declare(self, hp):
        """Registers this parameter in KerasTuner's `hp`; returns its value for this trial."""
        if self.kind == "off":
            return None
        if self.kind == "range":
            low, high, log = self.values
            return hp.Float(self.name, low, high, sampling="log" if log else "linear")
        if self.kind == "choice":
            if self.name == "norm":  # KerasTuner choices cannot hold None
                value = hp.Choice("norm", [_norm_key(v) for v in self.values])
                return None if value == "none" else value
            return hp.Choice(self.name, self.values)
        if self.name == "norm":
            value = hp.Fixed("norm", _norm_key(self.values))
            return None if value == "none" else value
        return hp.Fixed(self.name, self.values)

    def start(self):
        """The starting value: the low end of a range, the first choice, the fixed value."""
        if self.kind == "off":
            return None
        if self.kind == "range":
            return self.values[0]
        if self.kind == "choice":
            return self.values[0]
        return self.values

    def contains(self, value):
        if self.kind == "off":
            return value in (0.0, None)
        if self.kind == "range":
            low, high, _ = self.values
            return low * (1 - 1e-9) <= value <= high * (1 + 1e-9)
        if self.kind == "choice":
            return value in self.values
        return value == self.values

    def spec(self):
        if self.kind == "off":
            return None
        if self.kind == "range":
            return tuple(self.values[:2])
        if self.kind == "choice":
            return list(self.values)
        return self.values

    def __repr__(self):
        return repr(self.spec())


def _norm_key(value):
    return "none" if value is None else value


_MIXUP = (0.0, 0.1, 0.2, 0.4, 0.8)
_CUTMIX = (0.0, 0.2, 0.5, 1.0)
_SMOOTHING = (0.0, 0.05, 0.1, 0.2)
_NORMS = ("batch", "group", None)


class RegularizationSpace:
    """The regularization strengths a search explores, with sensible defaults.

    Each argument is one of:

    - a range `(low, high)`: a float searched uniformly (log-uniformly for `l2`),
    - a list of choices `[a, b, ...]`,
    - a single value: fixed for every trial,
    - `None`: disabled (0, or no normalization for `norm`).

    The defaults cover what helps a small convolutional net on small data: an L2 penalty
    λ ∈ [1e-6, 1e-2] (log-uniform), dropout ∈ [0, 0.5], drop-path ∈ [0, 0.3], Mixup α among
    0 (off), 0.1, 0.2, 0.4, 0.8, CutMix α among 0, 0.2, 0.5, 1, label smoothing ε among 0, 0.05,
    0.1, 0.2, and the normalization layer among batch norm, group norm and none. The data-side
    techniques are choices that include 0 so that a search can turn them off: on small images
    a little Mixup often helps while strong Mixup/CutMix raise the validation loss.

    Args:
        l2: L2 strength λ (a range is log-uniform, so its low end must be > 0; a list may
            hold 0).
        dropout: dropout rate, in [0, 1).
        drop_path: largest drop-path (stochastic depth) rate, in [0, 1).
        mixup_alpha: Beta parameter of Mixup, >= 0.
        cutmix_alpha: Beta parameter of CutMix, >= 0.
        label_smoothing: ε in [0, 1).
        norm: a list among `"batch"`, `"group"`, None; or one of them (fixed).

    Example:

    >>> space = RegularizationSpace(l2=[0.0, 1e-4], dropout=(0.0, 0.5), drop_path=None)
    >>> space.names
    ('l2', 'dropout', 'mixup_alpha', 'cutmix_alpha', 'label_smoothing', 'norm')
    >>> space.contains(Regularization(l2=1e-4, dropout=0.3))
    True
    >>> space.contains(Regularization(drop_path=0.1))
    False
    """

    def __init__(self, l2=(1e-6, 1e-2), dropout=(0.0, 0.5), drop_path=(0.0, 0.3),
                 mixup_alpha=_MIXUP, cutmix_alpha=_CUTMIX, label_smoothing=_SMOOTHING,
                 norm=_NORMS):
        # The default choices are tuples to stay immutable; a user's tuple is a range.
        norm, mixup_alpha, cutmix_alpha, label_smoothing = (
            list(v) if v is d else v for v, d in ((norm, _NORMS), (mixup_alpha, _MIXUP),
                                                   (cutmix_alpha, _CUTMIX),
                                                   (label_smoothing, _SMOOTHING)))
        specs = dict(l2=l2, dropout=dropout, drop_path=drop_path, mixup_alpha=mixup_alpha,
                     cutmix_alpha=cutmix_alpha, label_smoothing=label_smoothing, norm=norm)
        self._params = {
            name: _Param(name, spec, log=_FLOATS[name][3] if name in _FLOATS else False)
            for name, spec in specs.items()
        }

    @property
    def names(self):
        """Names of the parameters that are searched or fixed (not disabled)."""
        return tuple(n for n, p in self._params.items() if p.kind != "off")

    @property
    def searched(self):
        """Names of the parameters that vary between trials (ranges and choices)."""
        return tuple(n for n, p in self._params.items() if p.kind in ("range", "choice"))

    def declare(self, hp):
        """Registers the space in a `keras_tuner.HyperParameters`; returns the trial's values.

        Args:
            hp: a `keras_tuner.HyperParameters`.

        Returns:
            The `Regularization` holding the values `hp` gives this trial.
        """
        values = {}
        for name, param in self._params.items():
            value = param.declare(hp)
            if value is not None:
                values[name] = value
        return Regularization(**values)

    def start(self):
        """The space's starting point, the first trial of a random or Bayesian search.

        The low end of every range, the first of every list of choices: with the defaults,
        batch norm with next to no L2 and every other technique off, a strong anchor that the
        search then improves on.
        """
        values = {n: p.start() for n, p in self._params.items() if p.kind != "off"}
        return Regularization(**values)

    def hp_values(self, reg):
        """The KerasTuner values of `reg` for the searched and fixed parameters."""
        values = {}
        for name, param in self._params.items():
            if param.kind == "off":
                continue
            value = getattr(reg, name)
            values[name] = _norm_key(value) if name == "norm" else value
        return values

    def contains(self, reg):
        """Whether the `Regularization` `reg` lies in this space."""
        if not isinstance(reg, Regularization):
            raise TypeError(
                "Invalid value for argument `reg`: expected a Regularization. "
                f"Received: reg={reg!r}"
            )
        return all(p.contains(getattr(reg, n)) for n, p in self._params.items())

    def get_config(self):
        return {name: param.spec() for name, param in self._params.items()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"RegularizationSpace({args})"
