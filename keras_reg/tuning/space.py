"""What to search (`RegularizationSpace`), the references a search compares with."""

import math
import numbers

from keras_reg._validation import check_instance, fail
from keras_reg.tuning.regularization import (CHOICES, FLOATS, IMAGE_ONLY, NAMES,
                                             Regularization, check_value)

_SAMPLINGS = {"log": True, "lin": False, "linear": False}


class _Choices(tuple):
    """A list of choices as a signature's default: immutable, shown and read as a list."""

    def __repr__(self):
        return repr(list(self))


def _log_grid(high, decades=4):
    """0 and a 1-2-5 log grid from `high`/10**decades to `high`: a log scale that holds 0."""
    floor = high * 10.0**-decades * (1 - 1e-9)
    grid = {float(f"{high * f * 10.0**-d:.3g}") for d in range(decades + 1) for f in (1, 0.5, 0.2)}
    return [0.0] + sorted(v for v in grid if v >= floor)


def _key(value):  # KerasTuner choices cannot hold None
    return "none" if value is None else value


def _from_key(value):
    return None if value == "none" else value


class _Param:
    """One dimension of the space: `kind` "off", "fixed", "choice" or "range", and `options`,
    the values a trial can take (None for a continuous range; a log range from 0, which
    KerasTuner's log `Float` cannot hold, is an ordered choice over `_log_grid`)."""

    def __init__(self, name, spec):
        self.name = name
        self.default_log = name in FLOATS and FLOATS[name][3]
        self.value = self.low = self.high = self.log = None
        self.kind = self._parse(spec)

    def _parse(self, spec):
        name = self.name
        if spec is None or spec is False or (isinstance(spec, str)
                                             and spec.strip().lower() == "off"):
            self.options = [check_value(name, None)]
            return "off"
        if isinstance(spec, dict):  # a range as `get_config` writes it (JSON keeps dicts)
            if set(spec) - {"low", "high", "sampling"} or not {"low", "high"} <= set(spec):
                fail(name, "a range {'low': ..., 'high': ...} (optionally 'sampling')", spec,
                     TypeError)
            spec = tuple(spec[key] for key in ("low", "high", "sampling") if key in spec)
        if isinstance(spec, _Choices):
            spec = list(spec)
        if isinstance(spec, tuple):
            if name in CHOICES or len(spec) not in (2, 3):
                fail(name, "a range (low, high) or (low, high, 'log'|'linear'), a list of "
                     "choices, a value or 'off'", spec)
            if len(spec) == 3 and spec[2] not in _SAMPLINGS:
                fail(name, "the sampling of a range to be 'log' or 'linear'", spec)
            self.log = _SAMPLINGS[spec[2]] if len(spec) == 3 else self.default_log
            self.low, self.high = (check_value(name, v) for v in spec[:2])
            if not self.low < self.high:
                fail(name, "a range (low, high) with low < high", spec)
            self.options = _log_grid(self.high) if self.log and self.low == 0.0 else None
            return "range"
        if isinstance(spec, list):
            if not spec:
                fail(name, "a non-empty list of choices", spec)
            self.options = [check_value(name, v) for v in spec]
            if len(set(self.options)) != len(self.options):
                fail(name, "distinct choices", spec)
            return "choice"
        if name in CHOICES or (isinstance(spec, (numbers.Real, str))
                               and not isinstance(spec, bool)):
            self.value = check_value(name, spec)
            self.options = [self.value]
            return "fixed"
        fail(name, "a range (low, high), a list of choices, a value or 'off'", spec, TypeError)

    def declare(self, hp):
        """Registers this dimension in KerasTuner's `hp`; returns its value for this trial."""
        if self.kind == "off":
            return None
        if self.kind == "fixed":
            return _from_key(hp.Fixed(self.name, _key(self.value)))
        if self.options is None:
            return hp.Float(self.name, self.low, self.high,
                            sampling="log" if self.log else "linear")
        return _from_key(hp.Choice(self.name, [_key(v) for v in self.options]))

    def start(self):
        """Off where it can be, else the low end or first choice; the first norm not None."""
        if self.kind in ("off", "fixed"):
            return self.value
        if self.kind == "range":
            return self.low
        if self.name == "norm":
            return next((v for v in self.options if v is not None), None)
        return next((v for v in self.options if not v), self.options[0])  # None or 0.0

    def lookup(self, value):
        """The declared value equal to `value` (floats to a relative 1e-6), else ValueError."""
        if self.options is None and self.low * (1 - 1e-9) <= value <= self.high * (1 + 1e-9):
            return min(max(value, self.low), self.high)
        for option in self.options or ():
            if option == value or (isinstance(option, float) and isinstance(value, float)
                                   and math.isclose(option, value, rel_tol=1e-6)):
                return option
        raise ValueError(f"Invalid value for argument `reg`: {self.name}={value!r} is not in "
                         f"the space ({self.name}={self.spec()!r})")

    def spec(self):
        """This dimension as `RegularizationSpace` takes it, JSON-safe (a range is a dict)."""
        if self.kind == "choice":
            return list(self.options)
        if self.kind != "range":
            return self.value
        spec = {"low": self.low, "high": self.high}
        if self.log != self.default_log:
            spec["sampling"] = "log" if self.log else "linear"
        return spec


class RegularizationSpace:
    """The regularization a search explores, with sensible defaults; every dimension can be off.

    Each argument is one of:

    - a range `(low, high)`: a float searched uniformly (`l2`: on a log scale). A log range
      from 0, such as the default `l2=(0, 1e-2)`, is searched over 0 and a 1-2-5 log grid from
      `high/10⁴` to `high` (0, 1e-6, 2e-6, 5e-6, 1e-5, ..., 1e-2). `(low, high, "log")` or
      `(low, high, "linear")` choose the scale; the dict `{"low": low, "high": high}`
      (optionally `"sampling"`) is the same range as `get_config` writes it.
    - a list of choices `[a, b, ...]`,
    - a single value: fixed for every trial,
    - `None`, `0` as a fixed value, or `"off"`: off (no normalization for `norm`, no flip).

    The defaults hold batch norm fixed (search it with `norm=["batch", "group", None]`) and
    flips off (`flip="horizontal"` where a mirrored image keeps its label).

    Args:
        l2, dropout, drop_path, mixup_alpha, cutmix_alpha, label_smoothing, augment,
            input_noise, norm, flip: the values of `Regularization`'s arguments of the same
            names to search, each as above.

    Example:

    >>> space = RegularizationSpace(l2=[0.0, 1e-4], dropout=(0.0, 0.5), drop_path="off")
    >>> space.contains(Regularization(l2=1e-4, dropout=0.3, norm="batch"))
    True
    >>> space.contains(Regularization(drop_path=0.1, norm="batch"))
    False
    >>> space.start().describe()
    'norm=batch'
    >>> RegularizationSpace.parse(["l2=log:1e-5:1e-3", "norm=none"]).get_config()["l2"]
    {'low': 1e-05, 'high': 0.001}
    """

    def __init__(self, l2=(0.0, 1e-2), dropout=(0.0, 0.5), drop_path=(0.0, 0.3),
                 mixup_alpha=_Choices((0.0, 0.1, 0.2, 0.4)),
                 cutmix_alpha=_Choices((0.0, 0.2, 0.5, 1.0)),
                 label_smoothing=_Choices((0.0, 0.05, 0.1)),
                 augment=_Choices((0.0, 0.25, 0.5, 1.0)),
                 input_noise=_Choices((0.0, 0.02, 0.05, 0.1)), norm="batch", flip=None):
        specs = (l2, dropout, drop_path, mixup_alpha, cutmix_alpha, label_smoothing, augment,
                 input_noise, norm, flip)
        self._params = {name: _Param(name, spec) for name, spec in zip(NAMES, specs)}

    @property
    def names(self):
        """Names of the dimensions that are searched or fixed (not off)."""
        return tuple(n for n, p in self._params.items() if p.kind != "off")

    @property
    def searched(self):
        """Names of the dimensions that vary between trials (ranges and choices)."""
        return tuple(n for n, p in self._params.items() if p.kind in ("range", "choice"))

    def declare(self, hp):
        """Declares the space in the `keras_tuner.HyperParameters` `hp`; returns the trial's
        `Regularization`."""
        return Regularization(**{name: p.declare(hp) for name, p in self._params.items()})

    def start(self):
        """The starting point: normalized and unregularized, what a Keras user typically has."""
        return Regularization(**{name: p.start() for name, p in self._params.items()})

    def hp_values(self, reg):
        """The hyperparameter values (as KerasTuner stores them) of `reg`, which must lie in
        the space (`contains`); dimensions that are off are left out."""
        return {name: _key(param.lookup(getattr(reg, name)))
                for name, param in self._params.items() if param.kind != "off"}

    def contains(self, reg):
        """Whether the `Regularization` `reg` lies in this space."""
        check_instance("reg", reg, Regularization)
        try:
            for name, param in self._params.items():
                param.lookup(getattr(reg, name))
        except ValueError:
            return False
        return True

    @classmethod
    def parse(cls, overrides, base=None):
        """A space from `NAME=SPEC` strings (the command line's `--space`) over `base`.

        `SPEC` is a range `low:high` (uniform, or log-uniform for `l2`; prefix `log:` or `lin:`
        to choose), a value (`0.1`, `batch`), a comma list of choices (`0,0.1,0.2`,
        `batch,group,none`) or `off`.

        Args:
            overrides: a list of `"NAME=SPEC"` strings, one whitespace-separated string of
                them, or a dict `{NAME: SPEC}`.
            base: None (`RegularizationSpace()`) or the `RegularizationSpace` to override.

        Returns:
            A `RegularizationSpace`; a malformed item is a ValueError naming it.

        Example:

        >>> space = RegularizationSpace.parse("l2=0:1e-2 dropout=0:0.5 norm=batch mixup_alpha=off")
        >>> space.get_config()["norm"], space.get_config()["mixup_alpha"]
        ('batch', None)
        """
        config = (base if base is not None else cls()).get_config()
        if isinstance(overrides, dict):
            items = [f"{k}={v}" for k, v in overrides.items()]
        elif isinstance(overrides, str):
            items = overrides.split()
        else:
            items = list(overrides or [])
        config.update(_parse_item(item) for item in items)
        try:
            return cls(**config)
        except (TypeError, ValueError) as e:  # a combination check, after every item parsed
            raise ValueError(f"Invalid --space items {' '.join(items)!r}: {e}") from None

    def for_inputs(self, image):
        """This space for inputs that are images or not: for other inputs the image-only
        dimensions (augmentation, CutMix, flips) are off."""
        if image:
            return self
        return RegularizationSpace(**{**self.get_config(), **{n: None for n in IMAGE_ONLY}})

    def get_config(self):
        """Every dimension's spec, JSON-safe: ranges as `{"low", "high"[, "sampling"]}`
        dicts (a tuple would come back from JSON as a list, a list of choices)."""
        return {name: param.spec() for name, param in self._params.items()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"RegularizationSpace({args})"


def _parse_item(item):
    """`"NAME=SPEC"` -> `(name, spec)` as `RegularizationSpace` takes it; ValueError naming it."""
    syntax = ("expected NAME=SPEC with NAME among " + ", ".join(NAMES) + " and SPEC a range "
              "low:high (optionally log:low:high or lin:low:high), a value, a comma list of "
              "choices, or off")

    def value(token):
        token = token.strip()
        if name in CHOICES or token.lower() in ("off", "none"):
            return token
        try:
            return float(token)
        except ValueError:
            raise ValueError(f"{token!r} is not a number; {syntax}") from None

    try:
        name, _, text = item.partition("=") if isinstance(item, str) else ("", "", "")
        name, text = name.strip().replace("-", "_"), text.strip()
        if name not in NAMES or not text or "=" in text:
            raise ValueError(syntax)
        if text.lower() == "off":
            spec = None
        elif ":" in text:
            parts = text.split(":")
            sampling = (parts.pop(0).lower(),) if parts[0].lower() in _SAMPLINGS else ()
            if len(parts) != 2 or name in CHOICES:
                raise ValueError(syntax)
            spec = tuple(value(p) for p in parts) + sampling
        elif "," in text:
            spec = [value(p) for p in text.split(",")]
        else:
            spec = value(text)
        _Param(name, spec)  # validates now, so the error names this item
    except (TypeError, ValueError) as e:
        raise ValueError(f"Invalid --space item {item!r}: {e}") from None
    return name, spec


def references(space=None, flip=None):
    """The references a search is compared with, retrained under the same protocol.

    Args:
        space: None (`RegularizationSpace()`) or a `RegularizationSpace`.
        flip: the label-preserving flip for the recipe; None takes the space's fixed `flip`.

    Returns:
        `{"none": Regularization.none(), "start": space.start(), "recipe":
        Regularization.recipe()}`; a reference may lie outside `space` (`space.contains`).

    Example:

    >>> refs = references()
    >>> {name: reg.describe() for name, reg in refs.items()}["start"]
    'norm=batch'
    """
    space = check_instance("space", space, RegularizationSpace, RegularizationSpace)
    start = space.start()
    return {"none": Regularization.none(), "start": start,
            "recipe": Regularization.recipe(flip=start.flip if flip is None else flip)}


def probes(space=None, flip=None):
    """Fixed recipes a search tries right after the references (docs/search.md).

    Args:
        space, flip: as for `references`.

    Returns:
        A dict `{label: Regularization}` (check `space.contains` before using one).
    """
    space = RegularizationSpace() if space is None else space
    flip = space.start().flip if flip is None else flip
    return {
        "strong": Regularization(l2=1e-4, dropout=0.3, drop_path=0.1, augment=1.0,
                                 mixup_alpha=0.2, norm="batch", flip=flip),
        "smooth": Regularization(l2=1e-4, dropout=0.1, drop_path=0.1, augment=0.25,
                                 label_smoothing=0.1, norm="batch", flip=flip),
        "augmented": Regularization(augment=1.0, norm="batch", flip=flip),
    }


REFERENCES = ("start", "none", "recipe")


def initial_points(space, labels=REFERENCES, with_probes=True, image=True):
    """The labelled starting points a search evaluates first: `[(label, Regularization)]`.

    The references in the order given, then the probes, as they apply to the inputs; points
    outside `space` or equal to an earlier one are left out.

    Args:
        space: a `RegularizationSpace`.
        labels: the references, among `"start"`, `"none"`, `"recipe"`.
        with_probes: also the probes.
        image: whether the inputs are images.

    Example:

    >>> [label for label, _ in initial_points(RegularizationSpace())]
    ['start', 'recipe', 'strong', 'smooth', 'augmented']
    """
    given = references(space)
    candidates = [(label, given[label]) for label in labels]
    candidates += list(probes(space).items()) if with_probes else []
    points = []
    for label, reg in candidates:
        reg = reg.for_inputs(image)
        if space.contains(reg) and reg not in [other for _, other in points]:
            points.append((label, reg))
    return points
