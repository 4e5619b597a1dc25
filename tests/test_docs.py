"""The defaults README.md states are the code's: a change of a default fails here until the
README follows.

Two places are read: the defaults table of the Tuning section (`| `setting` | `value` |`
rows), compared with `search`'s and `RegularizationTuner`'s signatures, `SELECTION_MARGIN`,
`TrainingProtocol().get_config()`, `RegularizationSpace().get_config()` and the command line's
`DEFAULTS`; and every inline signature of a public keras_reg name in the prose
(`` `GroupNorm(groups=32)` ``), whose literal `name=value` defaults are compared with
`inspect.signature`.
"""

import ast
import inspect
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

_ROW = re.compile(r"^\| `(\w+)` \| (.+) \|$")
_ASSIGNMENT = re.compile(r"`(\w+)=([^`]+)`")
_CALL = re.compile(r"`(\w+)\(([^`]*)\)`")


def readme_prose():
    """README.md without its fenced blocks."""
    return re.sub(r"^```.*?^```$", "", README.read_text("utf-8"), flags=re.S | re.M)


def stated_defaults():
    """`{setting: value}` of the defaults table; the protocol's and the space's rows are
    dicts of their `name=value` items."""
    table = {}
    for line in README.read_text("utf-8").splitlines():
        match = _ROW.match(line.strip())
        if not match:
            continue
        name, cell = match.groups()
        items = _ASSIGNMENT.findall(cell)
        if items:
            table[name] = {key: ast.literal_eval(value) for key, value in items}
        else:
            table[name] = ast.literal_eval(cell.strip().strip("`"))
    return table


def _as_readme(config_value):
    """A `get_config` value as the README writes it: ranges as `(low, high)`."""
    if isinstance(config_value, dict):
        return (config_value["low"], config_value["high"])
    return config_value


def test_the_defaults_table_is_the_code():
    from keras_reg.cli import DEFAULTS
    from keras_reg.tuning import RegularizationSpace, RegularizationTuner, TrainingProtocol, search
    from keras_reg.tuning import tuner as tuner_module

    stated = stated_defaults()
    search_args = inspect.signature(search).parameters
    tuner_args = inspect.signature(RegularizationTuner).parameters
    for name in ("tuner", "objective", "max_trials", "epochs"):
        assert stated[name] == search_args[name].default, name
        assert stated[name] == DEFAULTS[name], f"the command line's {name}"
        if name in tuner_args:
            assert stated[name] == tuner_args[name].default, f"RegularizationTuner's {name}"
    assert stated["selection_margin"] == tuner_args["selection_margin"].default
    assert stated["selection_margin"] == tuner_module.SELECTION_MARGIN
    assert stated["selection_margin"] == DEFAULTS["selection_margin"]

    protocol = TrainingProtocol().get_config()
    assert stated["TrainingProtocol"], "no TrainingProtocol row"
    for key, value in stated["TrainingProtocol"].items():
        assert protocol[key] == value, f"TrainingProtocol {key}: code {protocol[key]!r}"
    assert stated["TrainingProtocol"]["batch_size"] == DEFAULTS["batch_size"]

    space = {key: _as_readme(value) for key, value in RegularizationSpace().get_config().items()}
    assert stated["RegularizationSpace"] == space  # every dimension, none left out


def test_the_readme_states_the_minimum_epoch_length_in_force():
    from keras_reg.tuning.protocol import MIN_STEPS_PER_EPOCH

    prose = " ".join(readme_prose().split())
    assert f"an epoch is at least {MIN_STEPS_PER_EPOCH} steps" in prose
    assert f"min_steps_per_epoch={MIN_STEPS_PER_EPOCH}" in prose


def _public_names():
    import keras_reg

    names = {}
    for package in sorted(set(keras_reg.__all__) - {"__version__"}):
        module = getattr(keras_reg, package)
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if callable(value):
                names.setdefault(name, value)
    return names


def inline_signatures():
    """`(name, key, value)` for every literal `key=value` of an inline call of a keras_reg
    name in the README's prose."""
    public = _public_names()
    found = []
    for name, arguments in _CALL.findall(readme_prose()):
        if name not in public:
            continue
        for part in re.split(r",\s*", arguments):
            key, sep, text = part.partition("=")
            if not sep:
                continue
            try:
                value = ast.literal_eval(text.strip())
            except (ValueError, SyntaxError):
                continue  # `"row"|"batch"`: choices, not a default
            if value is Ellipsis:
                continue  # `kernel=...`: an argument shown without a value
            found.append((name, key.strip(), value))
    return public, found


def test_every_inline_signature_default_is_the_code():
    public, found = inline_signatures()
    assert len(found) >= 10, found
    for name, key, value in found:
        parameters = inspect.signature(public[name]).parameters
        assert key in parameters, f"README: {name}({key}=...) is no argument of {name}"
        default = parameters[key].default
        if default is inspect.Parameter.empty:
            continue  # a required argument shown with an example value
        assert default == value, f"README: {name}({key}={value!r}); the code: {default!r}"


@pytest.mark.parametrize("path", ["docs/search.md", "BENCHMARKS.md"])
def test_the_readme_links_exist(path):
    assert (ROOT / path).is_file()
    assert f"]({path})" in README.read_text("utf-8")
