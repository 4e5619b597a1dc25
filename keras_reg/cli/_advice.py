"""The lines of advice a search's report adds: how the trial handed over was chosen, values at
an edge of their searched range, values the model had no layer for."""

import math

import keras

from keras_reg.tuning.regularization import FLOATS, format_value
from keras_reg.tuning.selection import MIN_LEAD


def edge_warnings(space, reg):
    """One-line warnings for the values of `reg` at an edge of a range `space` searched (the
    top, or a low end above 0: the best may lie beyond), each suggesting a wider `--space`."""
    warnings = []
    for name, spec in space.get_config().items():
        if name not in FLOATS or name not in space.searched:
            continue
        if isinstance(spec, dict):
            (low, high), what_top = (spec["low"], spec["high"]), "upper edge"
        else:
            (low, high), what_top = (min(spec), max(spec)), "largest choice"
        value = getattr(reg, name)
        _, upper, upper_open, log = FLOATS[name]
        if math.isclose(value, high, rel_tol=1e-6) and (upper is None or high < upper):
            wider = high * 10 if log else high * 2
            if upper is not None:
                wider = min(wider, 0.9 * upper if upper_open else upper)
            what, where, suggested = what_top, "beyond", (low, wider)
        elif low > 0 and math.isclose(value, low, rel_tol=1e-6):
            what, where, suggested = "lower edge", "below", (low / 10 if log else 0, high)
        else:
            continue
        warnings.append(
            f"{name}={format_value(value)} is the {what} of the searched values "
            f"[{format_value(low)}, {format_value(high)}]: the best may lie {where}; try a "
            f"wider range, e.g. --space {name}={suggested[0]:g}:{suggested[1]:g}")
    return warnings


def unused_values(model, reg):
    """Lines naming the model-side values of `reg` that `model` has no layer for (a searched
    `drop_path` for a model without residual branches, ...): they had no effect."""
    from keras_reg._roles import walk_layers
    from keras_reg.layers import DropPath, GroupNorm, InvertedDropout, StochasticDepth

    layers = list(walk_layers(model))
    has = {
        "drop_path": any(isinstance(x, (DropPath, StochasticDepth)) for x in layers),
        "dropout": any(isinstance(x, (keras.layers.Dropout, InvertedDropout)) for x in layers),
        "l2": any(getattr(x, "kernel_regularizer", None) is not None for x in layers),
        "norm": any(isinstance(x, (keras.layers.BatchNormalization, GroupNorm,
                                   keras.layers.GroupNormalization,
                                   keras.layers.LayerNormalization)) for x in layers),
    }
    values = reg.to_dict()
    return [f"{name}={format_value(values[name])} had no effect: the model has no layer that "
            f"uses it" for name, used in has.items() if values[name] and not used]


def selection_line(selection):
    """The report's sentence on how the handed-over trial was chosen, or None when it is the
    validation leader without a contest."""
    if not selection or selection.get("anchor") is None:
        return None
    leads = selection["leads"]
    if selection["chosen"] == selection["anchor"]:
        shown = "; ".join(f"trial {d['trial']} by z {d['z']:.2f}" for d in leads)
        return (f"handed over `{selection['anchor_label']}` (trial {selection['anchor']}): "
                f"the trials ahead of it on the objective led by less than "
                f"{selection['margin']:g} paired standard errors (or {MIN_LEAD:g} per image) on "
                f"validation ({shown}) — within the noise of the validation split")
    last = leads[-1]
    return (f"handed over trial {selection['chosen']}: it leads `{selection['anchor_label']}` "
            f"(trial {selection['anchor']}) on validation by z {last['z']:.2f} "
            f">= {selection['margin']:g} paired standard errors")
