"""The settings a search directory was made with, and the JSON files of a search."""

import json
import os

from keras_reg.tuning.result import SettingsMismatchError

SETTINGS = "keras_reg_settings.json"


def canonical(value):
    """`value` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def read_json(path, default=None):
    """The JSON value in `path`, or `default` when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def write_json(path, value):
    """Writes `value` to `path` atomically (a reader never sees half a file)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(canonical(value), f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def check(project_dir, settings, free=()):
    """Compares `settings` with those recorded in `project_dir`; records the union; returns it.

    A setting recorded with another value raises `SettingsMismatchError`, except the names in
    `free` (recorded, allowed to change). Settings missing on either side are not compared.
    """
    path = os.path.join(project_dir, SETTINGS)
    new = canonical(settings)
    old = read_json(path)
    if old is not None:
        found = {name: (old[name], value) for name, value in new.items()
                 if name in old and old[name] != value and name not in free}
        if found:
            raise SettingsMismatchError(found, project_dir)
    merged = new if old is None else {**old, **new}
    write_json(path, merged)
    return merged
