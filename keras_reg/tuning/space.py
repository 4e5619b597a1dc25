"""What to search (`RegularizationSpace`), the references a search compares with."""

import math
import numbers

from keras_reg.tuning.regularization import (CHOICES, FLOATS, IMAGE_ONLY, NAMES,
                                             Regularization, check_value, format_value)

_SAMPLINGS = {"log": True, "lin": False, "linear": False}


def _log_grid(high, decades=4):
    """0 and a 1-2-5 log grid from `high`/10**decades to `high`: a log scale that holds 0."""
    values = []
    for decade in range(decades + 1):
        for factor in (1.0, 0.5, 0.2):
            value = float(f"{high * factor * 10.0**-decade:.3g}")
            if value >= high * 10.0**-decades * (1 - 1e-9):
                values.append(value)
    return [0.0] + sorted(set(values))


class _Param:
    """One parameter of the space: a range, a list of choices, a fixed value, or off."""

    def __init__(self, name, spec):
        self.name = name
        self.default_log = FLOATS[name][3] if name in FLOATS else False
        self.kind, self.values = self._parse(name, spec)

    def _fail(self, spec, expected, error=ValueError):
        raise error(f"Invalid value for argument `{self.name}`: expected {expected}. "
                    f"Received: {self.name}={spec!r}")

    def _parse(self, name, spec):
        if spec is None or spec is False or (isinstance(spec, str)
                                             and spec.strip().lower() == "off"):
            return "off", None
        if isinstance(spec, dict):  # a range as `get_config` writes it (JSON keeps dicts)
            if set(spec) - {"low", "high", "sampling"} or not {"low", "high"} <= set(spec):
                self._fail(spec, "a range {'low': ..., 'high': ...} (optionally 'sampling')",
                           TypeError)
            spec = (spec["low"], spec["high"]) + ((spec["sampling"],) if "sampling" in spec
                                                  else ())
        if isinstance(spec, tuple):
            if name in CHOICES or len(spec) not in (2, 3):
                self._fail(spec, "a range (low, high) or (low, high, 'log'|'linear'), a list of "
                           "choices, a value or 'off'")
            log = self.default_log
            if len(spec) == 3:
                if spec[2] not in _SAMPLINGS:
                    self._fail(spec, "the sampling of a range to be 'log' or 'linear'")
                log = _SAMPLINGS[spec[2]]
            low, high = (check_value(name, v) for v in spec[:2])
            if not low < high:
                self._fail(spec, "a range (low, high) with low < high")
            if log and low == 0.0:
                # KerasTuner's log-scaled Float cannot hold 0: an ordered choice over 0 and a
                # 1-2-5 log grid (the Bayesian tuner treats ordered choices as one axis).
                return "grid", (high, _log_grid(high))
            return "range", (low, high, log)
        if isinstance(spec, list):
            if not spec:
                self._fail(spec, "a non-empty list of choices")
            values = [check_value(name, v) for v in spec]
            if len(set(values)) != len(values):
                self._fail(spec, "distinct choices")
            return "choice", values
        if name in CHOICES or isinstance(spec, (numbers.Real, str)) and not isinstance(spec,
                                                                                      bool):
            return "fixed", check_value(name, spec)
        self._fail(spec, "a range (low, high), a list of choices, a value or 'off'", TypeError)

    def declare(self, hp):
        """Registers this parameter in KerasTuner's `hp`; returns its value for this trial."""
        if self.kind == "off":
            return None
        if self.kind == "range":
            low, high, log = self.values
            return hp.Float(self.name, low, high, sampling="log" if log else "linear")
        if self.kind == "grid":
            return hp.Choice(self.name, self.values[1], ordered=True)
        if self.kind == "choice":
            if self.name in CHOICES:  # KerasTuner choices cannot hold None
                return _from_key(hp.Choice(self.name, [_key(v) for v in self.values]))
            return hp.Choice(self.name, self.values)
        if self.name in CHOICES:
            return _from_key(hp.Fixed(self.name, _key(self.values)))
        return hp.Fixed(self.name, self.values)

    @property
    def options(self):
        """Every value of a grid or choice (None for ranges)."""
        if self.kind == "grid":
            return self.values[1]
        if self.kind == "choice":
            return self.values
        return None

    def start(self):
        """Off where this parameter can be off, else the low end or first choice; a norm on."""
        if self.kind == "off":
            return None
        if self.kind == "fixed":
            return self.values
        if self.name == "norm":
            return next((v for v in self.values if v is not None), None)
        if self.kind == "range":
            return self.values[0]
        options = self.options
        return None if None in options else (0.0 if 0.0 in options else options[0])

    def lookup(self, value):
        """The declared value equal to `value` (float tolerance), or raises KeyError."""
        if self.kind == "off":
            if value in (0.0, None):
                return None
            raise KeyError(value)
        if self.kind == "range":
            low, high, _ = self.values
            if low * (1 - 1e-9) <= value <= high * (1 + 1e-9):
                return min(max(value, low), high)
            raise KeyError(value)
        options = self.options if self.kind != "fixed" else [self.values]
        for option in options:
            if option == value or (isinstance(option, float) and isinstance(value, float)
                                   and math.isclose(option, value, rel_tol=1e-6)):
                return option
        raise KeyError(value)

    def contains(self, value):
        try:
            self.lookup(value)
        except KeyError:
            return False
        return True

    def bounds(self):
        """`(low, high)` of a searched numeric parameter, else None."""
        if self.name in CHOICES or self.kind in ("off", "fixed"):
            return None
        if self.kind == "range":
            return self.values[:2]
        return min(self.options), max(self.options)

    def spec(self):
        if self.kind == "off":
            return None
        if self.kind == "range":
            low, high, log = self.values
            return {"low": low, "high": high} if log == self.default_log else {
                "low": low, "high": high, "sampling": "log" if log else "linear"}
        if self.kind == "grid":  # a log range from 0
            return {"low": 0.0, "high": self.values[0]} if self.default_log else {
                "low": 0.0, "high": self.values[0], "sampling": "log"}
        if self.kind == "choice":
            return list(self.values)
        return self.values


def _key(value):
    return "none" if value is None else value


def _from_key(value):
    return None if value == "none" else value


_DEFAULTS = {
    "l2": (0.0, 1e-2),
    "dropout": (0.0, 0.5),
    "drop_path": (0.0, 0.3),
    "mixup_alpha": (0.0, 0.1, 0.2, 0.4),
    "cutmix_alpha": (0.0, 0.2, 0.5, 1.0),
    "label_smoothing": (0.0, 0.05, 0.1),
    "augment": (0.0, 0.25, 0.5, 1.0),
    "input_noise": (0.0, 0.02, 0.05, 0.1),
    "norm": "batch",
    "flip": None,
}
_CHOICE_DEFAULTS = tuple(n for n, v in _DEFAULTS.items() if isinstance(v, tuple)
                         and (len(v) > 2 or n in CHOICES))


class RegularizationSpace:
    """The regularization a search explores, with sensible defaults; every dimension can be off.

    Each argument is one of:

    - a range `(low, high)`: a float searched uniformly (`l2`: on a log scale). A log range
      from 0, such as the default `l2=(0, 1e-2)`, is searched over 0 and a 1-2-5 log grid from
      `high/10⁴` to `high` (0, 1e-6, 2e-6, 5e-6, 1e-5, ..., 1e-2): KerasTuner's log-scaled
      `Float` cannot hold 0, and an ordered choice is one axis for the Bayesian tuner.
      `(low, high, "log")` or `(low, high, "linear")` choose the scale; the dict
      `{"low": low, "high": high}` (optionally `"sampling"`) is the same range as
      `get_config` writes it, so that a config survives a JSON round trip.
    - a list of choices `[a, b, ...]`,
    - a single value: fixed for every trial,
    - `None`, `0` as a fixed value, or `"off"`: off (no normalization for `norm`, no flip).

    The defaults cover what helps a small convolutional net on small data: L2 λ in
    `(0, 1e-2)`, dropout in [0, 0.5], drop-path in [0, 0.3], Mixup α among 0, 0.1, 0.2, 0.4,
    CutMix α among 0, 0.2, 0.5, 1, label smoothing ε among 0, 0.05, 0.1, augmentation
    strength among 0, 0.25, 0.5, 1 (`Regularization.augment`), input noise among 0, 0.02,
    0.05, 0.1, batch norm (fixed: the normalized model most users have; search it with
    `norm=["batch", "group", None]` — in ten trials, trials without batch norm mostly learn
    too slowly to compete and are stopped) and no flips (say `flip="horizontal"` where a
    mirrored image keeps its label).

    `RegularizationSpace.parse(["l2=0:1e-2", "norm=batch"])` builds a space from the command
    line's `--space` items; `space.start()` is the normalized, unregularized starting point;
    `space.edge_warnings(reg)` flags values at the edge of a searched range.

    Args:
        l2: L2 strength λ.
        dropout: dropout rate, in [0, 1).
        drop_path: largest drop-path (stochastic depth) rate, in [0, 1).
        mixup_alpha: Beta parameter of Mixup, >= 0.
        cutmix_alpha: Beta parameter of CutMix, >= 0.
        label_smoothing: ε in [0, 1).
        augment: augmentation strength in [0, 2] (see `Regularization`).
        input_noise: standard deviation of Gaussian input noise, >= 0.
        norm: a list among `"batch"`, `"group"`, None; or one of them (fixed).
        flip: None (no flips), `"horizontal"`, `"vertical"`, `"horizontal_and_vertical"`, or
            a list of them to search.

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

    def __init__(self, l2=_DEFAULTS["l2"], dropout=_DEFAULTS["dropout"],
                 drop_path=_DEFAULTS["drop_path"], mixup_alpha=_DEFAULTS["mixup_alpha"],
                 cutmix_alpha=_DEFAULTS["cutmix_alpha"],
                 label_smoothing=_DEFAULTS["label_smoothing"], augment=_DEFAULTS["augment"],
                 input_noise=_DEFAULTS["input_noise"], norm=_DEFAULTS["norm"],
                 flip=_DEFAULTS["flip"]):
        specs = dict(l2=l2, dropout=dropout, drop_path=drop_path, mixup_alpha=mixup_alpha,
                     cutmix_alpha=cutmix_alpha, label_smoothing=label_smoothing, augment=augment,
                     input_noise=input_noise, norm=norm, flip=flip)
        for name in _CHOICE_DEFAULTS:  # default choices are tuples only to stay immutable
            if specs[name] is _DEFAULTS[name]:
                specs[name] = list(specs[name])
        self._params = {name: _Param(name, specs[name]) for name in NAMES}

    @property
    def names(self):
        """Names of the parameters that are searched or fixed (not off)."""
        return tuple(n for n, p in self._params.items() if p.kind != "off")

    @property
    def searched(self):
        """Names of the parameters that vary between trials (ranges and choices)."""
        return tuple(n for n, p in self._params.items() if p.kind in ("range", "grid", "choice"))

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
        """The starting point: normalized and unregularized.

        Every strength at 0 (off) where the space allows it, else the low end of its range or
        its first choice; the first normalization among the choices that is not None; the
        fixed values as given. What a Keras user typically already has.
        """
        values = {n: p.start() for n, p in self._params.items()}
        return Regularization(**{n: v for n, v in values.items() if v is not None})

    def hp_values(self, reg):
        """The hyperparameter values (as KerasTuner stores them) of `reg`, which must lie in
        the space (`contains`); parameters that are off are left out."""
        values = {}
        for name, param in self._params.items():
            if param.kind == "off":
                continue
            try:
                value = param.lookup(getattr(reg, name))
            except KeyError:
                raise ValueError(
                    f"Invalid value for argument `reg`: {name}={getattr(reg, name)!r} is not in "
                    f"the space ({name}={param.spec()!r})"
                ) from None
            values[name] = _key(value) if name in CHOICES else value
        return values

    def contains(self, reg):
        """Whether the `Regularization` `reg` lies in this space."""
        if not isinstance(reg, Regularization):
            raise TypeError(
                "Invalid value for argument `reg`: expected a Regularization. "
                f"Received: reg={reg!r}"
            )
        return all(p.contains(getattr(reg, n)) for n, p in self._params.items())

    def edge_warnings(self, reg):
        """One-line warnings for values of `reg` at the edge of a searched range.

        A best value at the top of its range (or at a low end above 0) suggests the best lies
        beyond it: each warning names the value and suggests a wider `--space` item.

        Args:
            reg: a `Regularization` (typically the best of a search).

        Returns:
            A list of strings, empty when no searched value is at an edge.
        """
        warnings = []
        for name, param in self._params.items():
            bounds = param.bounds()
            if bounds is None:
                continue
            low, high = bounds
            value = getattr(reg, name)
            upper = FLOATS[name][1]
            if math.isclose(value, high, rel_tol=1e-6) and (upper is None or high < upper):
                wider = high * 10 if param.default_log else high * 2
                if upper is not None:
                    wider = min(wider, 0.9 * upper if FLOATS[name][2] else upper)
                what = "largest choice" if param.kind == "choice" else "upper edge"
                warnings.append(
                    f"{name}={format_value(value)} is the {what} of the searched values "
                    f"[{format_value(low)}, {format_value(high)}]: the best may lie beyond; "
                    f"try a wider range, e.g. --space {name}={_num(low)}:{_num(wider)}")
            elif low > 0 and math.isclose(value, low, rel_tol=1e-6):
                lower = low / 10 if param.default_log else 0
                warnings.append(
                    f"{name}={format_value(value)} is the lower edge of the searched values "
                    f"[{format_value(low)}, {format_value(high)}]: the best may lie below; "
                    f"try a wider range, e.g. --space {name}={_num(lower)}:{_num(high)}")
        return warnings

    @classmethod
    def parse(cls, overrides, base=None):
        """A space from `NAME=SPEC` strings (the command line's `--space`), over defaults.

        `SPEC` is one of: a range `low:high` (uniform, or log-uniform for `l2`; prefix `log:` or
        `lin:` to choose), a single value (`0.1`, `batch`), a comma list of choices
        (`0,0.1,0.2` or `batch,group,none`), or `off`. Unnamed parameters keep the values of
        `base` (default: `RegularizationSpace()`).

        Args:
            overrides: a list of `"NAME=SPEC"` strings, one whitespace-separated string of
                them, or a dict `{NAME: SPEC}`.
            base: None or the `RegularizationSpace` to override.

        Returns:
            A `RegularizationSpace`.

        Raises:
            ValueError: an item is malformed or out of range; the message names the item.

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
        for item in items:
            config.update([_parse_item(item)])
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


def _num(value):
    return f"{value:g}"


def _parse_item(item):
    """`"NAME=SPEC"` -> `(name, spec)` as `RegularizationSpace` takes it; ValueError naming it."""
    syntax = ("expected NAME=SPEC with NAME among " + ", ".join(NAMES) + " and SPEC a range "
              "low:high (optionally log:low:high or lin:low:high), a value, a comma list of "
              "choices, or off")
    if not isinstance(item, str) or item.count("=") != 1:
        raise ValueError(f"Invalid --space item {item!r}: {syntax}")
    name, text = (part.strip() for part in item.split("="))
    name = name.replace("-", "_")
    if name not in NAMES or not text:
        raise ValueError(f"Invalid --space item {item!r}: {syntax}")

    def value(token):
        token = token.strip()
        if name in CHOICES or token.lower() in ("off", "none"):
            return token
        try:
            return float(token)
        except ValueError:
            raise ValueError(f"Invalid --space item {item!r}: {token!r} is not a number; "
                             f"{syntax}") from None

    try:
        if text.lower() == "off":
            spec = None
        elif ":" in text:
            parts = text.split(":")
            sampling = None
            if parts[0].lower() in _SAMPLINGS:
                sampling = "log" if _SAMPLINGS[parts.pop(0).lower()] else "linear"
            if len(parts) != 2 or name in CHOICES:
                raise ValueError(f"Invalid --space item {item!r}: {syntax}")
            spec = tuple(value(p) for p in parts) + ((sampling,) if sampling else ())
        elif "," in text:
            spec = [value(p) for p in text.split(",")]
        else:
            spec = value(text)
        _Param(name, spec)  # validates now, so the error names this item
    except (TypeError, ValueError) as e:
        message = str(e)
        if message.startswith("Invalid --space item"):
            raise
        raise ValueError(f"Invalid --space item {item!r}: {message}") from None
    return name, spec


def references(space=None, flip=None):
    """The references a search is compared with, retrained under the same protocol.

    - `"none"`: `Regularization.none()`: no normalization, no regularization.
    - `"start"`: `space.start()`: normalized and unregularized, what a Keras user typically
      already has.
    - `"recipe"`: `Regularization.recipe()`, a fixed hand recipe.

    Args:
        space: None (`RegularizationSpace()`) or a `RegularizationSpace`.
        flip: the label-preserving flip for the recipe; None takes the space's fixed `flip`.

    Returns:
        A dict `{"none": Regularization, "start": Regularization, "recipe": Regularization}`.
        A reference may lie outside `space` (check with `space.contains`).

    Example:

    >>> refs = references()
    >>> {name: reg.describe() for name, reg in refs.items()}["start"]
    'norm=batch'
    """
    space = RegularizationSpace() if space is None else space
    if not isinstance(space, RegularizationSpace):
        raise TypeError("Invalid value for argument `space`: expected a RegularizationSpace. "
                        f"Received: space={space!r}")
    start = space.start()
    if flip is None:
        flip = start.flip
    return {"none": Regularization.none(), "start": start,
            "recipe": Regularization.recipe(flip=flip)}


def probes(space=None, flip=None):
    """Starting points a search tries right after the references (when the space holds them).

    The references sit at the weak end of the space (`none`, `start`) or just above it
    (`recipe`); a search of ten trials whose other first points are random rarely lands where
    several regularizers are strong at once, and random combinations of eight strengths are
    rarely better than a sensible recipe. A few fixed recipes around the reference one give
    the search (and the choice of the trial handed over, which prefers labelled trials) the
    directions that help small image data most:

    - `"strong"`: batch norm, L2 λ = 1e-4, dropout 0.3, drop-path 0.1, augmentation strength
      1 and Mixup α = 0.2 (a stronger `Regularization.recipe()` with Mixup, in the spirit of
      the recipes that train image models on little data);
    - `"smooth"`: the recipe with lighter augmentation (0.25) and label smoothing ε = 0.1;
    - `"augmented"`: batch norm and augmentation strength 1 alone.

    Args:
        space: None (`RegularizationSpace()`) or a `RegularizationSpace`.
        flip: the label-preserving flip; None takes the space's fixed `flip`.

    Returns:
        A dict `{label: Regularization}` (check `space.contains` before using one).
    """
    space = RegularizationSpace() if space is None else space
    if flip is None:
        flip = space.start().flip
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

    The references (`references()`) in the order given, then the probes (`probes()`), each
    as it applies to the inputs (`Regularization.for_inputs`); points outside `space` or equal
    to an earlier one are left out.

    Args:
        space: a `RegularizationSpace`.
        labels: the references, among `"start"`, `"none"`, `"recipe"`.
        with_probes: also the probes.
        image: whether the inputs are images.

    Returns:
        A list of `(label, Regularization)`.

    Example:

    >>> [label for label, _ in initial_points(RegularizationSpace())]
    ['start', 'recipe', 'strong', 'smooth', 'augmented']
    """
    given = references(space)
    candidates = [(label, given[label]) for label in labels]
    if with_probes:
        candidates += list(probes(space).items())
    points = []
    for label, reg in candidates:
        reg = reg.for_inputs(image)
        if space.contains(reg) and all(reg != other for _, other in points):
            points.append((label, reg))
    return points

