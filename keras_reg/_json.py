"""JSON files: written atomically, read back with a default when missing or unreadable."""

import json
import os


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
