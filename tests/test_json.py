"""_json: JSON files written atomically and read back with a default."""

from keras_reg._json import canonical, read_json, write_json


def test_written_values_read_back_canonical_and_missing_or_broken_files_give_the_default(
        tmp_path):
    path = tmp_path / "a" / "b.json"
    write_json(str(path), {"t": (1, 2), "n": None})
    assert read_json(str(path)) == canonical({"t": (1, 2), "n": None}) == {"t": [1, 2], "n": None}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]  # no temporary file left
    path.write_text("{half")
    assert read_json(str(path), {}) == {} and read_json(str(tmp_path / "none.json")) is None
