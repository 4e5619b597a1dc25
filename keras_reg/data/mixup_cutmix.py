"""Mixup and CutMix with switch probability, per-sample lambda and label smoothing, in tf.data."""

import functools

import keras
import tensorflow as tf

from keras_reg._seeds import base_seed
from keras_reg._validation import check_choice, check_float, check_int, check_rate, check_seed
from keras_reg._variables import float_setting, float_variable
from keras_reg.data import _boxes, _random, _structure
from keras_reg.data.label_smoothing import one_hot, smoothing_formula

_MODES = ("batch", "pair", "elem")


def _params(key, gammas, height, width, prob, switch_prob, mixup_alpha, cutmix_alpha,
            cutmix_minmax, correct_lam):
    """The per-draw parameters: lam (the weight of each sample's own label: 1 unmixed, 1 -
    pasted fraction for CutMix with `correct_lam`), the blend weight (1 for CutMix) and boxes.

    `gammas` `(n, 2, 2)` are Gamma(alpha) draws made outside XLA (no XLA kernel for the gamma
    sampler): `[..., 0]` with `mixup_alpha`, `[..., 1]` with `cutmix_alpha`; Beta(a, a) is
    G1 / (G1 + G2). Everything else is drawn here from Philox integers.
    """
    n = tf.shape(gammas)[0]
    keys = _random.split_key(key, 6)
    mix_on = mixup_alpha > 0.0
    cut_on = (cutmix_alpha > 0.0) | (cutmix_minmax is not None)
    apply = _random.uniform(keys[0], [n]) < prob
    switch = _random.uniform(keys[1], [n]) < switch_prob
    use_cut = tf.where(mix_on & cut_on, switch, tf.fill([n], cut_on))
    active = apply & (mix_on | cut_on)
    use_cut &= active
    g = tf.where(use_cut[:, None], gammas[:, :, 1], gammas[:, :, 0])
    total = g[:, 0] + g[:, 1]
    # Both gammas underflow to 0 only for tiny alpha, where Beta sits on {0, 1}.
    lam = tf.where(total > 0, g[:, 0] / tf.where(total > 0, total, 1.0),
                   tf.cast(g[:, 0] >= g[:, 1], tf.float32))

    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    if cutmix_minmax is None:
        ratio = tf.sqrt(1.0 - lam)
        cut_h = tf.cast(tf.floor(h * ratio), tf.int32)
        cut_w = tf.cast(tf.floor(w * ratio), tf.int32)
        # Box centre uniform over the image (timm's rand_bbox); the box is clipped at borders.
        y0 = _random.uniform_index(keys[2], [n], height) - cut_h // 2
        x0 = _random.uniform_index(keys[3], [n], width) - cut_w // 2
    else:
        lo, hi = cutmix_minmax
        # Side fractions uniform in [lo, hi) as in timm's rand_bbox_minmax; the box lies inside.
        h_lo, h_hi = (tf.cast(h * f, tf.int32) for f in (lo, hi))
        w_lo, w_hi = (tf.cast(w * f, tf.int32) for f in (lo, hi))
        cut_h = h_lo + _random.uniform_index(keys[4], [n], tf.maximum(h_hi - h_lo, 1))
        cut_w = w_lo + _random.uniform_index(keys[5], [n], tf.maximum(w_hi - w_lo, 1))
        y0 = _random.uniform_index(keys[2], [n], height - cut_h + 1)
        x0 = _random.uniform_index(keys[3], [n], width - cut_w + 1)
    y1 = tf.clip_by_value(y0 + cut_h, 0, height)
    x1 = tf.clip_by_value(x0 + cut_w, 0, width)
    y0 = tf.clip_by_value(y0, 0, height)
    x0 = tf.clip_by_value(x0, 0, width)
    zeros = tf.zeros_like(y0)
    y0, y1, x0, x1 = (tf.where(use_cut, v, zeros) for v in (y0, y1, x0, x1))
    pasted = tf.cast((y1 - y0) * (x1 - x0), tf.float32) / (h * w)
    if correct_lam or cutmix_minmax is not None:
        lam = tf.where(use_cut, 1.0 - pasted, lam)
    lam = tf.where(active, lam, tf.ones_like(lam))
    blend = tf.where(use_cut, tf.ones_like(lam), lam)
    return lam, blend, (y0, y1, x0, x1)


def _kernel(images, targets, key, gammas, prob, switch_prob, mixup_alpha, cutmix_alpha,
            label_smoothing, num_classes, mode, correct_lam, cutmix_minmax, channels_first, rank):
    """Everything after the gamma draws: parameters, boxes, pixels and targets (one function,
    XLA-compiled per input shape by `mixup_cutmix`; shapes are static inside it). Inputs of a
    rank other than 4 are mixed by Mixup only (the caller checks that CutMix is off). `rank`,
    a Python int, keeps one trace per rank (see `_random.batch_keys`)."""
    targets = smoothing_formula(targets, label_smoothing, num_classes)
    image = rank == 4
    if image:
        h_axis, w_axis = _boxes.spatial_axes(channels_first)
        batch, height, width = images.shape[0], images.shape[h_axis], images.shape[w_axis]
        if batch is None or height is None or width is None:  # plain (non-XLA) graph
            shape = tf.shape(images)
            batch, height, width = shape[0], shape[h_axis], shape[w_axis]
    else:
        batch = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
        height = width = 1
        cutmix_alpha, cutmix_minmax = tf.zeros_like(cutmix_alpha), None
    lam, blend, box = _params(key, gammas, height, width, prob, switch_prob, mixup_alpha,
                              cutmix_alpha, cutmix_minmax, correct_lam)
    use_cut = None
    if mode == "batch":
        use_cut = blend[0] == 1.0  # CutMix or unmixed (an empty box then): paste only
        lam, blend, *box = (tf.broadcast_to(v, [batch]) for v in (lam, blend) + box)
    elif mode == "pair":
        # Sample i and its partner batch-1-i share one draw (timm's "pair" mode).
        index = tf.minimum(tf.range(batch), batch - 1 - tf.range(batch))
        lam, blend, *box = (tf.gather(v, index) for v in (lam, blend) + box)
    if image:
        mixed = _boxes.mix(images, *box, blend, channels_first, use_cut)
    else:
        mixed = _boxes.blend(images, blend)
    lam = lam[:, None]
    return mixed, lam * targets + (1.0 - lam) * tf.reverse(targets, axis=[0])


_kernel_xla = tf.function(_kernel, jit_compile=True, reduce_retracing=True)
_kernel_plain = tf.function(_kernel, reduce_retracing=True)


def _check_cutmix_rank(images, cutmix_alpha, cutmix_minmax, name, data_format):
    """CutMix pastes image boxes: with it on, inputs must be rank-4 image batches."""
    if images.shape.rank == 4:
        return
    alpha = tf.get_static_value(cutmix_alpha) if tf.is_tensor(cutmix_alpha) else cutmix_alpha
    if cutmix_minmax is not None or alpha is None or float(alpha) > 0.0:
        argument = "cutmix_minmax" if cutmix_minmax is not None else "cutmix_alpha"
        raise _structure.image_rank_error(
            name, argument, "CutMix (cutmix_alpha > 0 or cutmix_minmax)", images, data_format,
            "cutmix_alpha=0 and cutmix_minmax=None (Mixup and label smoothing work on any rank)")


def _mix(images, targets, num_classes, keys, mixup_alpha, cutmix_alpha, cutmix_minmax, prob,
         switch_prob, mode, correct_lam, label_smoothing, channels_first, jit_compile):
    """The gamma draws (outside XLA) and the kernel, from the batch's two keys."""
    n = 1 if mode == "batch" else tf.shape(images)[0]
    alphas = tf.stack([tf.cast(mixup_alpha, tf.float32), tf.cast(cutmix_alpha, tf.float32)])
    # Gamma has no XLA kernel: drawn here, for both alphas (a disabled one draws with alpha 1).
    gammas = tf.random.stateless_gamma(
        tf.stack([n, 2, 2]), seed=keys[0], alpha=tf.where(alphas > 0, alphas, 1.0))
    kernel = _kernel_xla if jit_compile else _kernel_plain
    return kernel(
        images, targets, keys[1], gammas, tf.cast(prob, tf.float32),
        tf.cast(switch_prob, tf.float32), alphas[0], alphas[1],
        tf.cast(label_smoothing, tf.float32), int(num_classes), mode, correct_lam,
        None if cutmix_minmax is None else tuple(cutmix_minmax), channels_first,
        images.shape.rank,
    )


def mixup_cutmix(images, labels, num_classes, key, mixup_alpha=0.8, cutmix_alpha=1.0,
                 cutmix_minmax=None, prob=1.0, switch_prob=0.5, mode="batch", correct_lam=True,
                 label_smoothing=0.1, channels_first=False, jit_compile=True):
    """Mixes one batch; the pure function behind `MixupCutMix` (see its docstring).

    Args:
        images: a rank-4 image batch, or with CutMix off (`cutmix_alpha=0`, no
            `cutmix_minmax`) a batch of any rank >= 2 (any float or integer dtype; kept).
        labels: class indices `(batch,)` or one-hot `(batch, num_classes)`.
        num_classes: int >= 2.
        key: a `[2]` int64 tensor, the Philox key of this batch (e.g. `[seed, 0]`).
        mixup_alpha, cutmix_alpha, cutmix_minmax, prob, switch_prob, mode, correct_lam,
            label_smoothing: as in `MixupCutMix` (floats may be scalar tensors or variables).
        channels_first: whether images are `(batch, channels, height, width)`.
        jit_compile: run everything but the gamma draws as an XLA-compiled function.

    Returns:
        `(mixed_images, targets)`: images of the input dtype and float32 soft targets.

    Example:

    >>> import numpy as np
    >>> from keras_reg.data import mixup_cutmix
    >>> x = np.stack([np.zeros((4, 4, 1)), np.ones((4, 4, 1))]).astype("float32")
    >>> mixed, y = mixup_cutmix(x, [0, 1], 2, key=[1, 2], cutmix_alpha=0.0,
    ...                         label_smoothing=0.0)
    >>> bool(np.allclose(mixed[0].numpy(), y[0, 1].numpy()))  # pixel = weight of image 1
    True
    """
    images = _structure.check_batch(images, "mixup_cutmix")
    _check_cutmix_rank(images, cutmix_alpha, cutmix_minmax, "mixup_cutmix",
                       "channels_first" if channels_first else "channels_last")
    targets = one_hot(labels, num_classes)
    keys = _random.split_key(tf.cast(tf.convert_to_tensor(key), tf.int64), 2)
    return _mix(images, targets, num_classes, keys, mixup_alpha, cutmix_alpha, cutmix_minmax,
                prob, switch_prob, mode, correct_lam, label_smoothing, channels_first,
                jit_compile)


@keras.saving.register_keras_serializable(package="keras_reg")
class MixupCutMix:
    """Mixup and CutMix for `tf.data` batches, one object as in timm, with label smoothing.

    Each batch is paired with itself reversed (sample `i` with sample `batch - 1 - i`, as timm;
    the middle sample of an odd batch is its own partner and stays unchanged). With probability
    `prob` a batch (`mode="batch"`), a pair (`"pair"`) or a sample (`"elem"`) is mixed, either by

    - Mixup: `x = lam * x_i + (1 - lam) * x_j`, `lam ~ Beta(mixup_alpha, mixup_alpha)`, or
    - CutMix: a box of area about `(1 - lam) * H * W`, `lam ~ Beta(cutmix_alpha, cutmix_alpha)`,
      centred uniformly over the image and clipped at its borders, is pasted from `x_j`. With
      `correct_lam=True` the label weight is the area actually pasted, so every label weight is
      exact (Keras's CutMix takes it from the unclipped box). With `cutmix_minmax=(lo, hi)` the
      box sides are uniform fractions in `[lo, hi)` of the image sides instead (box inside).

    CutMix is chosen with probability `switch_prob` when both alphas are > 0; only one of them
    > 0 selects that one; both 0 (and no `cutmix_minmax`) leaves images unmixed. Targets are
    smoothed first, `y * (1 - eps) + eps / K`, then mixed with the same weights:
    `t = lam * y_i + (1 - lam) * y_j`. Output images keep their dtype (uint8 stays uint8, Mixup
    rounded); targets are float32 `(batch, num_classes)`, for `categorical_crossentropy`.

    `prob`, `mixup_alpha`, `cutmix_alpha` and `label_smoothing` are properties backed by
    `tf.Variable`s read at run time inside the dataset graph: a callback (e.g.
    `keras_reg.callbacks.MixupScheduler`) can change them during `fit` without rebuilding the
    pipeline (batches already prefetched keep the old values).

    Randomness is stateless and order-independent: each batch's draws come from a Philox key
    made of `seed` and a hash of the batch content, so the same seed gives the same output also
    under `map(..., num_parallel_calls=N, deterministic=True)`. Consequently **a plain `map`
    over data that is not reshuffled mixes every epoch the same way**; shuffle the data before
    batching (as `keras_reg.data.load` does for training splits) or use `apply(dataset)`, which
    also keys each batch by its position in a stream re-randomised every epoch (reproducibly).
    All work is vectorised (box masks built by broadcasting a row and a column mask; any batch
    size, odd or partial). The Gamma draws behind Beta(a, a) run outside XLA (TensorFlow has no
    XLA kernel for the gamma sampler), so the transform itself cannot be called inside a
    `tf.function(jit_compile=True)`; the rest is two XLA-compiled functions, compiled once per
    batch shape: the batch hash and keys before the Gamma draws, and the other draws (from
    Philox integers), boxes, pixels and targets after them. `jit_compile=False` runs the same
    functions as plain graphs with identical draws.

    Mixup and label smoothing work on batches of any rank >= 2: feature vectors
    `(batch, features)`, sequences `(batch, steps, channels)`, images. CutMix pastes image boxes
    and needs rank-4 image batches: with `cutmix_alpha > 0` or `cutmix_minmax`, a batch of
    another rank is a ValueError (for such a batch CutMix stays off, also if `cutmix_alpha` is
    changed later).

    A CutMix box has side `floor(H * sqrt(1 - lam))` x `floor(W * sqrt(1 - lam))` (timm's
    rand_bbox; timm rounds odd sides down to even), so its unclipped area never exceeds
    `(1 - lam)`; label weights of unclipped boxes therefore also differ slightly from `lam`
    when `correct_lam=False`, as in timm.

    Args:
        num_classes: int >= 2.
        mixup_alpha: float >= 0, Beta parameter of Mixup (0 disables Mixup).
        cutmix_alpha: float >= 0, Beta parameter of CutMix (0 disables it unless
            `cutmix_minmax` is given).
        cutmix_minmax: None or `(lo, hi)` with `0 < lo <= hi <= 1`: box side fractions.
        prob: float in [0, 1], probability to mix a batch / pair / sample.
        switch_prob: float in [0, 1], probability of CutMix instead of Mixup.
        mode: `"batch"`, `"pair"` or `"elem"`: granularity of the random parameters.
        correct_lam: bool, label weight from the actually pasted (clipped) area.
        label_smoothing: float in [0, 1], epsilon of the label smoothing.
        seed: None or int >= 0.
        data_format: `"channels_last"`, `"channels_first"` or None (Keras's image data format).
        jit_compile: bool, XLA-compile the per-batch work (default).

    Call arguments:
        `(images, labels)` (extra tuple entries such as sample weights pass through) or a dict
        with `"images"` and `"labels"`; labels sparse `(batch,)` / `(batch, 1)` or one-hot.
        `images` is an image batch, or with CutMix off any batch of rank >= 2.

    Returns:
        The same structure with mixed images (input dtype) and float32 soft targets
        `(batch, num_classes)` in place of the labels.

    Example:

    >>> import numpy as np
    >>> from keras_reg.data import MixupCutMix, load
    >>> ds = load("digits", "train[:64]", batch_size=32)
    >>> mix = MixupCutMix(num_classes=10, seed=0)
    >>> images, targets = next(iter(ds.map(mix)))
    >>> images.shape, targets.shape
    (TensorShape([32, 8, 8, 1]), TensorShape([32, 10]))
    >>> bool(np.allclose(targets.numpy().sum(axis=1), 1.0))
    True

    Reference:
        Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018.
        Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with
        Localizable Features", ICCV 2019.
    """

    # Settable strengths held in variables, read at run time inside the tf.data graph.
    prob = float_setting("prob", functools.partial(check_rate, name="prob"))
    mixup_alpha = float_setting(
        "mixup_alpha", functools.partial(check_float, "mixup_alpha", low=0.0))
    cutmix_alpha = float_setting(
        "cutmix_alpha", functools.partial(check_float, "cutmix_alpha", low=0.0))
    label_smoothing = float_setting(
        "label_smoothing", functools.partial(check_rate, name="label_smoothing"))

    def __init__(self, num_classes, mixup_alpha=0.8, cutmix_alpha=1.0, cutmix_minmax=None,
                 prob=1.0, switch_prob=0.5, mode="batch", correct_lam=True, label_smoothing=0.1,
                 seed=None, data_format=None, jit_compile=True):
        self.num_classes = check_int("num_classes", num_classes, low=2)
        mixup_alpha = check_float("mixup_alpha", mixup_alpha, low=0.0)
        cutmix_alpha = check_float("cutmix_alpha", cutmix_alpha, low=0.0)
        if cutmix_minmax is not None:
            ok = isinstance(cutmix_minmax, (tuple, list)) and len(cutmix_minmax) == 2
            try:
                lo, hi = (float(v) for v in cutmix_minmax) if ok else (None, None)
                ok = ok and 0.0 < lo <= hi <= 1.0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(
                    "Invalid value for argument `cutmix_minmax`: expected None or a pair "
                    f"(lo, hi) with 0 < lo <= hi <= 1. Received: cutmix_minmax={cutmix_minmax!r}"
                )
            cutmix_minmax = (lo, hi)
        self.cutmix_minmax = cutmix_minmax
        prob = check_rate(prob, name="prob")
        self.switch_prob = check_rate(switch_prob, name="switch_prob")
        self.mode = check_choice("mode", mode, _MODES)
        if not isinstance(correct_lam, bool):
            raise TypeError(
                f"Invalid value for argument `correct_lam`: expected a bool. "
                f"Received: correct_lam={correct_lam!r}"
            )
        self.correct_lam = correct_lam
        label_smoothing = check_rate(label_smoothing, name="label_smoothing")
        self.seed = check_seed(seed)
        self.data_format = check_choice(
            "data_format", data_format or keras.config.image_data_format(),
            ("channels_last", "channels_first"),
        )
        self.jit_compile = bool(jit_compile)
        self._base_seed = base_seed(self.seed)
        self.prob_variable = float_variable(prob, "prob")
        self.mixup_alpha_variable = float_variable(mixup_alpha, "mixup_alpha")
        self.cutmix_alpha_variable = float_variable(cutmix_alpha, "cutmix_alpha")
        self.label_smoothing_variable = float_variable(label_smoothing, "label_smoothing")

    def _transform(self, args, position=None):
        images, labels, repack = _structure.unpack(args, "MixupCutMix")
        images = _structure.check_batch(images, "MixupCutMix")
        channels_first = self.data_format == "channels_first"
        image = images.shape.rank == 4
        if not image:
            with tf.init_scope():  # the variable's value now, also while tf.data traces
                cutmix_alpha = float(self.cutmix_alpha_variable.numpy())
            _check_cutmix_rank(images, cutmix_alpha, self.cutmix_minmax, "MixupCutMix",
                               self.data_format)
        labels = tf.convert_to_tensor(labels)
        if (labels.shape.rank or 0) >= 1 and images.shape[0] is not None and (
                labels.shape[0] is not None and labels.shape[0] != images.shape[0]):
            raise ValueError(
                "Invalid value for argument `labels`: expected one label per image. Received: "
                f"labels.shape={labels.shape} for images.shape={images.shape}"
            )
        # Hash the canonical float32 one-hot targets, so sparse and one-hot labels of
        # the same batch get the same draws.
        targets = one_hot(labels, self.num_classes)
        keys = _random.batch_keys(images, targets, self._base_seed, position, channels_first,
                                  count=2, jit_compile=self.jit_compile)
        mixed, targets = _mix(
            images, targets, self.num_classes, keys,
            mixup_alpha=self.mixup_alpha_variable.value,
            cutmix_alpha=self.cutmix_alpha_variable.value if image else 0.0,
            cutmix_minmax=self.cutmix_minmax if image else None, prob=self.prob_variable.value,
            switch_prob=self.switch_prob, mode=self.mode, correct_lam=self.correct_lam,
            label_smoothing=self.label_smoothing_variable.value, channels_first=channels_first,
            jit_compile=self.jit_compile,
        )
        return repack(mixed, targets)

    def __call__(self, *args):
        return self._transform(args)

    def apply(self, dataset, num_parallel_calls=None, deterministic=True):
        """`dataset.map(self)` with each batch also keyed by its position in the stream.

        The positions' keys come from `tf.data.Dataset.random(seed, rerandomize_each_iteration=
        True)`, so an unshuffled dataset is mixed differently every epoch, yet reproducibly, and
        parallel maps stay deterministic.
        """
        return _random.apply_with_positions(self._transform, dataset, self._base_seed,
                                            num_parallel_calls, deterministic)

    def get_config(self):
        return {
            "num_classes": self.num_classes, "mixup_alpha": self.mixup_alpha,
            "cutmix_alpha": self.cutmix_alpha, "cutmix_minmax": self.cutmix_minmax,
            "prob": self.prob, "switch_prob": self.switch_prob, "mode": self.mode,
            "correct_lam": self.correct_lam, "label_smoothing": self.label_smoothing,
            "seed": self.seed, "data_format": self.data_format, "jit_compile": self.jit_compile,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"MixupCutMix({args})"
