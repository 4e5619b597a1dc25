"""Weight regularizers whose strength can change during `fit`, and tools for existing models.

`l1`, `l2`, `l1_l2` (classes `L1`, `L2`, `L1L2`) are Keras regularizers for
`kernel_regularizer=` whose strength is held in a variable, so a callback
(`keras_reg.callbacks.StrengthScheduler`) or an assignment (`reg.l2 = 1e-3`) changes it in an
already compiled `fit`.
`apply(model, kernel=...)` returns a copy of a Sequential or Functional model with regularizers
attached to its kernels (normalization and embedding layers skipped: `DEFAULT_SKIP`), and
`penalty(model)` is the total weight penalty a model currently adds to its loss.

L2 penalty versus weight decay. The penalty `λ·Σw²` adds `2λ·w` to every gradient. With plain
SGD at learning rate `lr` the update becomes `w ← w − lr·(g + 2λ·w)`, i.e. the weights shrink by
the factor `(1 − 2·lr·λ)` each step: L2 *is* weight decay with coefficient `2λ` there. With
adaptive optimizers (Adam, RMSprop) the `2λ·w` term is divided by the running gradient scale like
any gradient, so weights with large gradients are barely regularized; this is *not* the same as
decoupled weight decay (AdamW, `keras.optimizers.AdamW(weight_decay=...)`), which shrinks every
weight by `lr·wd` outside the adaptive scaling (Loshchilov & Hutter, 2019). Use these regularizers
when you want the penalty in the loss (to watch it with `callbacks.RegularizationLogger`, or to
schedule λ); use AdamW or `callbacks.WeightDecayScheduler` for decoupled decay.

Files: `l1_l2.py` (the regularizers and their factories), `apply.py` (rewriting a model),
`penalty.py`, and `_arguments.py` (a user's `kernel=` argument -> a regularizer, shared with
`keras_reg.blocks`). Imports go one way, `apply -> _arguments -> l1_l2`, so any of them can be
imported first.
"""

from keras_reg.regularizers.l1_l2 import L1, L1L2, L2, l1, l1_l2, l2
from keras_reg.regularizers.penalty import penalty
from keras_reg.regularizers.apply import DEFAULT_SKIP, apply

__all__ = ["L1", "L2", "L1L2", "l1", "l2", "l1_l2", "apply", "penalty", "DEFAULT_SKIP"]
