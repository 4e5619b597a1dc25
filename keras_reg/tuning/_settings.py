"""The settings a search directory was made with, recorded beside KerasTuner's own state."""

import json
import os

from keras_reg.tuning.result import SettingsMismatchError

SETTINGS = "keras_reg_settings.json"


def _canonical(value):
    """`value` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def read(project_dir):
    """The recorded settings (a dict) of `project_dir`, or None when none are recorded."""
    try:
        with open(os.path.join(project_dir, SETTINGS)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write(project_dir, settings):
    os.makedirs(project_dir, exist_ok=True)
    path = os.path.join(project_dir, SETTINGS)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(_canonical(settings), f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def differences(project_dir, settings, free=()):
    """`{name: (recorded, given)}` for the settings recorded in `project_dir` with another
    value, except the names in `free`; settings missing on either side are not compared.
    Also returns the recorded settings (None when none are) and `settings` as recorded."""
    new = _canonical(settings)
    old = read(project_dir)
    if old is None:
        return {}, None, new
    found = {name: (old[name], value) for name, value in new.items()
             if name in old and old[name] != value and name not in free}
    return found, old, new


def check(project_dir, settings, free=()):
    """Compares `settings` with the recorded ones; records the union; returns it.

    A setting recorded with another value raises `SettingsMismatchError`, except the names in
    `free` (recorded, allowed to change). Settings missing on either side are not compared.
    """
    found, old, new = differences(project_dir, settings, free)
    if found:
        raise SettingsMismatchError(found, project_dir)
    merged = new if old is None else {**old, **new}
    write(project_dir, merged)
    return merged
