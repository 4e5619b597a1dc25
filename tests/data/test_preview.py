"""preview writes a PNG grid; bad paths are a ValueError naming `out`."""

import os

import matplotlib.image
import numpy as np
import pytest

from keras_reg.data import preview


def test_preview_writes_a_png(tmp_path):
    path = preview(tmp_path / "sub" / "grid.png", seed=1, dpi=50)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    picture = matplotlib.image.imread(path)
    assert picture.shape[0] > 300 and picture.shape[1] > 300  # 13.2 x 14.4 inches at 50 dpi
    assert np.std(picture[..., :3]) > 0.05  # not a blank figure


def test_non_png_path_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="`out`: expected a path ending in .png"):
        preview(tmp_path / "grid.jpg")
    assert not (tmp_path / "grid.jpg").exists()


@pytest.mark.parametrize("name", ["somedir", "d.png"])
def test_existing_directory_is_rejected_with_a_file_name_suggestion(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    with pytest.raises(ValueError, match="not a folder") as info:
        preview(folder)
    assert str(folder / "preview.png") in str(info.value)
    assert os.listdir(folder) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root may write into a read-only folder")
def test_read_only_folder_is_rejected(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="not writable"):
            preview(folder / "grid.png")
    finally:
        folder.chmod(0o755)


def test_unwritable_path_is_rejected(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="out"):
        preview(blocker / "grid.png")  # a file where a folder should be
