"""preview writes a PNG grid; bad paths are a ValueError naming `out`."""

import matplotlib.image
import pytest

from keras_reg.data import preview


def test_preview_writes_a_png(tmp_path):
    path = preview(tmp_path / "sub" / "grid.png", seed=1)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    picture = matplotlib.image.imread(path)
    assert picture.shape[0] > 600 and picture.shape[1] > 600


def test_non_png_or_directory_path_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="out"):
        preview(tmp_path / "grid.jpg")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ValueError, match="out"):
        preview(tmp_path / "d.png")


def test_unwritable_path_is_rejected(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="out"):
        preview(blocker / "grid.png")  # a file where a folder should be
