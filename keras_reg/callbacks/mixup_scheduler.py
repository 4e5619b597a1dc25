"""`MixupScheduler`: turns Mixup / CutMix off for the last epochs of training."""

from keras_reg._validation import check_int
from keras_reg.callbacks._base import CopyableCallback

class MixupScheduler(CopyableCallback):
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

    Reference:
        - [Zhang et al., 2018. mixup: Beyond Empirical Risk Minimization](
          https://arxiv.org/abs/1710.09412)
        - [Yun et al., 2019. CutMix](https://arxiv.org/abs/1905.04899)
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
