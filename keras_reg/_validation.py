"""Argument checks shared by the whole package.

Every check raises at once with one sentence naming the argument, what was expected and the
value received, in the Keras style:
``Invalid value for argument `rate`: expected a float in [0, 1]. Received: rate=1.5``.
"""

import math
import numbers

# The largest float32: every float argument ends up in a float32 tensor or variable.
FLOAT32_MAX = 3.4028234663852886e38


def fail(name, expected, value, error=ValueError):
    """Raises `error` with the package's one-sentence message naming `name` and `value`."""
    raise error(
        f"Invalid value for argument `{name}`: expected {expected}. Received: {name}={value!r}"
    )


def check_float(name, value, low=None, high=None, low_open=False, high_open=False):
    """Returns `value` as a Python float after checking it is a real number in range.

    Args:
        name: the argument's name, used in the error message.
        value: what the user passed.
        low, high: bounds (None for unbounded).
        low_open, high_open: whether the bound itself is excluded.

    Raises:
        TypeError: `value` is not a real number (bools and strings included).
        ValueError: `value` is NaN, infinite where a bound forbids it, out of range, or beyond
            the float32 range.
    """
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    expected = f"a float in {interval}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # numpy scalars are numbers.Real; 0-d arrays and tensors are converted by float().
        try:
            if isinstance(value, (str, bytes, bool)) or value is None:
                raise TypeError
            value_f = float(value)
        except (TypeError, ValueError):
            fail(name, expected, value, TypeError)
    else:
        value_f = float(value)
    if math.isnan(value_f):
        fail(name, expected, value)
    if low is not None and (value_f < low or (low_open and value_f == low)):
        fail(name, expected, value)
    if high is not None and (value_f > high or (high_open and value_f == high)):
        fail(name, expected, value)
    if math.isinf(value_f) and (low is None or high is None):
        # Unbounded intervals still reject infinities: no strength or scale is infinite.
        fail(name, expected.replace("float", "finite float"), value)
    if abs(value_f) > FLOAT32_MAX:
        # Finite in float64 but not in float32, where it would be stored.
        fail(name, f"{expected} within the float32 range (|value| <= {FLOAT32_MAX:.8g})", value)
    return value_f


def check_rate(value, name="rate"):
    """A probability in [0, 1] (1 drops everything and gives zeros, never NaN)."""
    return check_float(name, value, 0.0, 1.0)


def check_int(name, value, low=None, high=None):
    """Returns `value` as an int after checking it is an integer (not a bool) in range."""
    expected = "an integer" + (f" >= {low}" if low is not None else "") + (
        f" <= {high}" if high is not None else ""
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(name, expected, value, TypeError)
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        fail(name, expected, value)
    return value


def check_choice(name, value, choices):
    """Checks `value` is one of `choices` (strings compared exactly)."""
    if value not in choices:
        fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_seed(value, name="seed"):
    """A seed is None or a non-negative integer."""
    if value is None:
        return None
    return check_int(name, value, low=0)


def check_bool(name, value):
    """`value` if it is a bool; else a TypeError naming `name` (1 and 0 are not bools)."""
    if not isinstance(value, bool):
        raise TypeError(
            f"Invalid value for argument `{name}`: expected a bool. Received: {name}={value!r}"
        )
    return value


def check_instance(name, value, cls, default=None):
    """`value` if it is a `cls` (None: `default()`, when given); else a TypeError naming `name`."""
    if value is None and default is not None:
        value = default()
    if not isinstance(value, cls):
        fail(name, f"a {cls.__name__}", value, TypeError)
    return value
