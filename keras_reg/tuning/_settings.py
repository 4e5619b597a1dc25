"""The settings a search directory was made with."""

import os

from keras_reg._json import canonical, read_json, write_json
from keras_reg.tuning.result import SettingsMismatchError

SETTINGS = "keras_reg_settings.json"


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
