"""Which trial a search hands over: the best on validation, unless its lead over the best
labelled trial (a reference or a probe) is within the noise of the validation split."""

import math

import numpy as np

from keras_reg._validation import check_float
from keras_reg.metrics import calibrated_losses, one_hot_targets, scaled_cross_entropy

SCORED_OBJECTIVES = ("val_calibrated_loss", "val_data_loss", "val_loss", "val_accuracy")
# A lead below this (nats or errors per image) is no lead: models that classify a validation
# split perfectly differ by rounding, which can share one sign over every image.
MIN_LEAD = 1e-4


def image_scores(probabilities, targets, objective):
    """Per image, the quantity whose mean is `objective` (lower is better), or None.

    `val_calibrated_loss`: the cross-entropy after the temperature scaling fitted on these
    images; `val_data_loss` / `val_loss`: the cross-entropy; `val_accuracy`: the error, 1 or 0.
    `probabilities` are `(n, k)`, `targets` labels `(n,)` or one-hot rows `(n, k)`.

    Example:

    >>> p = np.array([[0.9, 0.1], [0.4, 0.6]])
    >>> image_scores(p, np.array([0, 0]), "val_accuracy").tolist()
    [0.0, 1.0]
    """
    if objective not in SCORED_OBJECTIVES:
        return None
    p = np.asarray(probabilities, dtype=np.float64)
    t = one_hot_targets(targets, p.shape[-1])
    if objective == "val_accuracy":
        return (p.argmax(axis=1) != t.argmax(axis=1)).astype(np.float64)
    if objective == "val_calibrated_loss":
        return calibrated_losses(p, t)[0]
    return scaled_cross_entropy(p, t, 1.0)


def paired_lead(anchor, candidate):
    """How far `candidate` is ahead of `anchor` (`image_scores` on the same images).

    Returns `{"lead", "standard_error", "z", "images"}`: the mean of `anchor - candidate` (> 0:
    the candidate is better), its standard error over images, their ratio (infinite for a lead
    without spread, NaN for none) and the number of images.

    Example:

    >>> lead = paired_lead(np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.0, 2.5]))
    >>> round(lead["lead"], 3), round(lead["z"], 2)
    (0.667, 4.0)
    """
    a, c = np.asarray(anchor, np.float64), np.asarray(candidate, np.float64)
    if a.shape != c.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("Invalid value for arguments `anchor`, `candidate`: expected two "
                         f"score arrays (n,) of the same n >= 2. Received shapes "
                         f"{a.shape} and {c.shape}")
    d = a - c
    lead = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    z = lead / se if se > 0 else math.copysign(math.inf, lead) if lead else math.nan
    return {"lead": lead, "standard_error": se, "z": z, "images": int(len(d))}


def check_margin(margin):
    """`margin` as a float >= 0 (standard errors), or a clear error."""
    return check_float("selection_margin", margin, low=0.0)


def choose(ranked, labels, scores, margin):
    """The trial to hand over, and why.

    The unlabelled trials ahead of the best labelled one (the anchor) on the objective are
    tried in order; the first whose lead on the anchor is at least `margin` paired standard
    errors and `MIN_LEAD` per image is chosen, else the anchor. With `margin == 0`, or without
    a labelled trial or its scores, the leader is chosen.

    Args:
        ranked: trial ids, best objective first (at least one).
        labels: `{trial_id: label or None}`.
        scores: `{trial_id: per-image scores}` (`image_scores`); trials may be missing.
        margin: float >= 0.

    Returns:
        `(trial_id, selection)`: the chosen trial, and a dict with `rule`, `margin`,
        `leader`, `chosen`, `anchor` (trial numbers, 1-based), `anchor_label` and `leads`:
        per unlabelled trial ahead of the anchor, its `paired_lead` figures.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> start = rng.uniform(0, 2, 50)
    >>> noisy = start - 0.01 + rng.normal(0, 0.5, 50)  # ahead on the mean, within the noise
    >>> choose(["1", "0"], {"0": "start", "1": None}, {"0": start, "1": noisy}, margin=1.0)[0]
    '0'
    """
    margin = check_margin(margin)
    number = lambda trial_id: int(trial_id) + 1  # noqa: E731
    leader = ranked[0]
    how = {"rule": "best objective", "margin": margin, "leader": number(leader),
           "chosen": number(leader), "anchor": None, "anchor_label": None, "leads": []}
    anchor = next((t for t in ranked if labels.get(t) is not None), None)
    if labels.get(leader) is not None or anchor is None or margin == 0:
        return leader, how
    if anchor not in scores:
        how["rule"] = "best objective (the labelled trial has no validation scores)"
        return leader, how
    how.update(rule=f"an unlabelled trial must lead the best labelled one by >= {margin:g} "
                    f"paired standard errors (and {MIN_LEAD:g} per image) on validation",
               anchor=number(anchor), anchor_label=labels[anchor])
    chosen = anchor
    for trial_id in ranked[:ranked.index(anchor)]:
        if trial_id not in scores:
            continue
        lead = paired_lead(scores[anchor], scores[trial_id])
        how["leads"].append({"trial": number(trial_id), **lead})
        if lead["z"] >= margin and lead["lead"] >= MIN_LEAD:
            chosen = trial_id
            break
    how["chosen"] = number(chosen)
    return chosen, how
