"""The residual digits example runs end to end with a tiny budget."""

import importlib.util
import os

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "residual_digits.py")


def _load_example():
    spec = importlib.util.spec_from_file_location("residual_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_residual_digits_trains_saves_exports_and_reloads(tmp_path, capsys):
    example = _load_example()
    results = example.main(["--epochs", "3", "--out", str(tmp_path), "--seed", "0"])
    assert "test accuracy" in capsys.readouterr().out
    # Ten classes: chance is 0.1.
    assert results["accuracy"] >= 0.6, results
    # The .keras reload and the SavedModel serve the in-memory model's predictions.
    assert results["reloaded_max_diff"] <= 1e-5, results
    assert results["exported_max_diff"] <= 1e-5, results
    assert results["reloaded_accuracy"] == results["accuracy"]
    assert results["exported_accuracy"] == results["accuracy"]
    assert os.path.isfile(tmp_path / "residual_digits.keras")
    assert os.path.isfile(tmp_path / "saved_model" / "saved_model.pb")
