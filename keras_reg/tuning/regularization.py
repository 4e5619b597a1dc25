"""`Regularization`: the regularization values of one trial, with builder helpers."""

import numbers

from keras_reg._validation import check_choice, check_float, check_int, check_seed

NORMS = ("batch", "group", None)
FLIPS = ("horizontal", "vertical", "horizontal_and_vertical", None)

# name -> (lower bound, upper bound, upper bound open, log-scaled by default)
FLOATS = {
    "l2": (0.0, None, False, True),
    "dropout": (0.0, 1.0, True, False),
    "drop_path": (0.0, 1.0, True, False),
    "mixup_alpha": (0.0, None, False, False),
    "cutmix_alpha": (0.0, None, False, False),
    "label_smoothing": (0.0, 1.0, True, False),
    "augment": (0.0, 2.0, False, False),
    "input_noise": (0.0, None, False, False),
}
CHOICES = {"norm": NORMS, "flip": FLIPS}
NAMES = tuple(FLOATS) + tuple(CHOICES)
# What applies to image inputs only: the rest applies to any input.
IMAGE_ONLY = ("augment", "cutmix_alpha", "flip")


def check_value(name, value):
    """One value of dimension `name`, validated; 0, "off", "none" and None mean off."""
    if value is None or isinstance(value, str) and value.strip().lower() in ("off", "none"):
        value = None if name in CHOICES else 0.0
    if name in FLOATS:
        low, high, high_open, _ = FLOATS[name]
        return check_float(name, value, low, high, high_open=high_open)
    if name == "flip" and value is True:  # as keras_reg.data.augment(flip=True)
        value = "horizontal"
    if isinstance(value, numbers.Real) and value == 0:  # 0 or False
        value = None
    return check_choice(name, value, CHOICES[name])


def format_value(value):
    """A value with 3 significant digits (`1.00e-04`, `0.25`, `batch`, `none`)."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.2e}" if 0 < abs(value) < 1e-2 else f"{value:.3g}"
    return str(value)


class Regularization:
    """The regularization of one trial: strengths, normalization and augmentation.

    `search` hands one to `build_model(reg)` per trial and builds the training pipeline from
    the same values (`augmentation()`, `transform()`), so a model builder only reads `l2`,
    `dropout`, `drop_path` and `norm`, or uses `kernel_regularizer()` and
    `drop_path_rates(depth)`. Every value accepts 0, `"off"` or None for off.

    Args:
        l2: float >= 0, the L2 penalty `λ·Σw²` on kernels.
        dropout: float in [0, 1), the dropout rate before the classifier (and wherever the
            builder puts it).
        drop_path: float in [0, 1), the largest stochastic-depth rate.
        mixup_alpha: float >= 0, Mixup's Beta parameter (0 disables Mixup).
        cutmix_alpha: float >= 0, CutMix's Beta parameter (0 disables CutMix).
        label_smoothing: float in [0, 1), the ε of `y·(1-ε) + ε/K`.
        augment: float in [0, 2], the strength `s` of label-preserving augmentation: random
            shifts up to `0.15·s` of the side, rotations up to `0.05·s` of a turn and zoom up
            to `0.15·s` (`keras_reg.data.augment`).
        input_noise: float >= 0, the standard deviation of Gaussian noise added to the inputs.
        norm: `"batch"`, `"group"` or None.
        flip: the random flip that preserves the labels: None (for digits and text, whose
            class a flip changes), `"horizontal"` (or True), `"vertical"` or
            `"horizontal_and_vertical"`.

    Example:

    >>> reg = Regularization(l2=1e-4, dropout=0.25, mixup_alpha="off")
    >>> reg.dropout, reg.mixup_alpha, reg.norm
    (0.25, 0.0, None)
    >>> [round(r, 2) for r in Regularization(drop_path=0.2).drop_path_rates(3)]
    [0.0, 0.1, 0.2]
    >>> Regularization.none().transform(num_classes=10) is None
    True
    >>> Regularization.recipe().describe()
    'l2=1.00e-04 dropout=0.1 drop_path=0.1 augment=0.5 norm=batch'
    """

    def __init__(self, l2=0.0, dropout=0.0, drop_path=0.0, mixup_alpha=0.0, cutmix_alpha=0.0,
                 label_smoothing=0.0, augment=0.0, input_noise=0.0, norm=None, flip=None):
        values = (l2, dropout, drop_path, mixup_alpha, cutmix_alpha, label_smoothing, augment,
                  input_noise, norm, flip)
        for name, value in zip(NAMES, values):
            setattr(self, name, check_value(name, value))

    @classmethod
    def none(cls):
        """The unregularized baseline: everything off, no normalization."""
        return cls()

    @classmethod
    def recipe(cls, flip=None):
        """A fixed hand recipe for a small convolutional net on small image data, with the
        label-preserving `flip` of the data: batch norm, L2 1e-4, dropout 0.1, drop-path 0.1,
        augmentation 0.5; no Mixup, CutMix or label smoothing, whose deliberately
        under-confident predictions cost test log-loss on small data."""
        return cls(l2=1e-4, dropout=0.1, drop_path=0.1, augment=0.5, norm="batch", flip=flip)

    @classmethod
    def from_dict(cls, values):
        """A `Regularization` from a dict (unknown keys such as `tuner/epochs` are ignored)."""
        return cls(**{k: v for k, v in dict(values).items() if k in NAMES})

    def to_dict(self):
        return {name: getattr(self, name) for name in NAMES}

    get_config = to_dict
    from_config = from_dict

    def kernel_regularizer(self):
        """`keras_reg.regularizers.l2(self.l2)`, or None when `l2` is 0."""
        if self.l2 == 0.0:
            return None
        from keras_reg import regularizers

        return regularizers.l2(self.l2)

    def drop_path_rates(self, depth):
        """Per-block drop-path rates rising linearly from 0 to `drop_path` over `depth` blocks."""
        from keras_reg.layers import drop_path_rates

        return list(drop_path_rates(depth, self.drop_path))

    def augmentation(self, seed=None, image=True):
        """The label-preserving `keras_reg.data.Augment` of this trial for inputs in [0, 1]
        (when not `image`, the input noise alone), or None when nothing applies."""
        seed = check_seed(seed)
        reg = self.for_inputs(image)
        s = reg.augment
        if not (s or reg.input_noise or reg.flip):
            return None
        from keras_reg.data import augment

        return augment(flip=reg.flip or False, rotation=min(0.5, 0.05 * s),
                       zoom=min(0.9, 0.15 * s), translation=min(1.0, 0.15 * s),
                       noise_stddev=reg.input_noise, seed=seed)

    def for_inputs(self, image):
        """These values as they apply to inputs that are images or not: for other inputs the
        image-only values (`IMAGE_ONLY`: augmentation, CutMix, flips) are off."""
        if image:
            return self
        return Regularization(**{**self.to_dict(), **{n: None for n in IMAGE_ONLY}})

    def transform(self, num_classes, seed=None):
        """The `keras_reg.data.MixupCutMix` of this trial's alphas and ε for `num_classes`
        classes, or None when `mixup_alpha`, `cutmix_alpha` and `label_smoothing` are all 0."""
        num_classes = check_int("num_classes", num_classes, low=2)
        seed = check_seed(seed)
        if not (self.mixup_alpha or self.cutmix_alpha or self.label_smoothing):
            return None
        from keras_reg.data import MixupCutMix

        # Not XLA-compiled: each trial's pipeline is new, and compiling it costs more than the
        # batches of a small dataset gain.
        return MixupCutMix(num_classes, mixup_alpha=self.mixup_alpha,
                           cutmix_alpha=self.cutmix_alpha, label_smoothing=self.label_smoothing,
                           seed=seed, jit_compile=False)

    def __eq__(self, other):
        return isinstance(other, Regularization) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(tuple(self.to_dict().items()))

    def describe(self):
        """A short one-line description: `l2=1.00e-04 dropout=0.25 norm=batch` (off left out)."""
        parts = [f"{name}={format_value(value)}" for name, value in self.to_dict().items()
                 if value]
        return " ".join(parts) or "none"

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"Regularization({args})"
