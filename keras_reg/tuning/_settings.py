"""The settings a search directory was made with."""

import os

from keras_reg._json import canonical, read_json, write_json
from keras_reg.tuning.result import SettingsMismatchError

SETTINGS = "keras_reg_settings.json"


def differences(project_dir, settings, free=()):
    """`{name: (recorded, given)}` of the `settings` recorded in `project_dir` with another
    value, except the names in `free`; settings missing on either side are not compared."""
    old = read_json(os.path.join(project_dir, SETTINGS)) or {}
    return {name: (old[name], value) for name, value in canonical(settings).items()
            if name in old and old[name] != value and name not in free}


def check(project_dir, settings, free=()):
    """Compares `settings` with those recorded in `project_dir`; records the union; returns it.

    A setting recorded with another value raises `SettingsMismatchError`, except the names in
    `free` (recorded, allowed to change).
    """
    found = differences(project_dir, settings, free)
    if found:
        raise SettingsMismatchError(found, project_dir)
    path = os.path.join(project_dir, SETTINGS)
    merged = {**(read_json(path) or {}), **canonical(settings)}
    write_json(path, merged)
    return merged
