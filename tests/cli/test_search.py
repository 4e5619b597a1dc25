"""`keras-reg` / `python -m keras_reg`: one tiny finished run, its outputs, resume, user errors."""

import json
import os
import pathlib
import re
import shlex
import textwrap

import numpy as np
import pytest

from tests.cli._run import assert_user_error, run_cli, run_main

TINY_MODEL = """
import keras

def build_model(reg):
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Flatten(),
        keras.layers.Dropout(reg.dropout),
        keras.layers.Dense(10, activation="softmax", kernel_regularizer=reg.kernel_regularizer()),
    ])

not_a_function = 3

def returns_a_string(reg):
    return "model"

def three_classes(reg):
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")])

def raises(reg):
    raise RuntimeError("boom")
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny_model.py"
    path.write_text(textwrap.dedent(TINY_MODEL))
    return path


def tiny_args(model_file, out, *extra):
    return ("search", "--model", f"{model_file}:build_model", "--max-trials", 2, "--epochs", 1,
            "--train-size", 40, "--tuner", "random", "--seed", 0, "--out", out, *extra)


@pytest.fixture(scope="module")
def tiny_run(model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    code, stdout, stderr = run_main(*tiny_args(model_file, out, "--overwrite"))
    assert code == 0, stderr[-3000:]
    return out, stdout


def test_progress_lines_number_trials_once_from_one(tiny_run):
    _, stdout = tiny_run
    trial_lines = [line for line in stdout.splitlines() if line.startswith("trial ")]
    assert [line.split()[1] for line in trial_lines] == ["1/2", "2/2"]
    assert all("norm=" in line for line in trial_lines)


def test_values_are_printed_with_three_significant_digits(tiny_run):
    out, stdout = tiny_run
    table = stdout[stdout.index("\nrun "):]
    report_md = (out / "report.md").read_text()
    for text in (table, report_md[report_md.index("## Best"):report_md.index("## Files")],
                 *[line for line in stdout.splitlines() if line.startswith("trial ")]):
        for number in re.findall(r"(?<![\w./-])[-+]?\d+\.\d+(?:e[-+]?\d+)?", text):
            digits = re.sub(r"e.*|[-+.]", "", number).lstrip("0")
            assert len(digits) <= 3, (number, text)


def test_summary_has_four_runs_and_paired_differences(tiny_run):
    out, _ = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["runs"]) == ["none", "start", "recipe", "best"]
    assert set(summary["paired_differences"]) == {"none", "start", "recipe"}
    assert summary["repeats"] == 1 and summary["seeds"] == [0]
    best = summary["runs"]["best"]["mean"]
    ref = summary["runs"][summary["best_reference"]]["mean"]
    diff = summary["paired_differences"][summary["best_reference"]]
    assert diff["accuracy"]["mean"] == pytest.approx(best["test_accuracy"] - ref["test_accuracy"])
    assert diff["accuracy"]["std"] is None  # a single run has no spread
    assert "single run" in summary["headline"]
    found = summary["validation_advantage"]  # None only when best is a reference
    assert found is None or ({"reference", "advantage", "standard_error", "z", "images"}
                             <= set(found) and found["images"] > 0)
    assert summary["trials"] == 2 and summary["settings"]["model_spec"].endswith(":build_model")
    selection = summary["selection"]
    assert selection["margin"] == summary["settings"]["selection_margin"] == 1.0
    assert selection["chosen"] == summary["best_trial"]


def test_the_report_refits_every_row_and_shows_the_trials_models_too(tiny_run):
    out, stdout = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["refit"] is True and summary["settings"]["refit"] is True
    records = {r["trial"]: r for r in summary["trial_records"]}
    for name, run in summary["runs"].items():
        before = run["before_refit"]  # the trial's model, trained on the training split
        assert set(before) == set(run["mean"])
        # the same temperature (fitted on validation before the refit trained on it)
        assert run["mean"]["temperature"] == pytest.approx(before["temperature"])
    best = records[summary["best_trial"]]
    assert summary["runs"]["best"]["per_seed"][0]["epochs"] == best["best_epoch"]
    assert set(summary["before_refit"]["paired_differences"]) == {"none", "start", "recipe"}
    report = (out / "report.md").read_text()
    assert "trained again from scratch on the training and validation splits" in report
    assert "Before the refit" in report and report.count("| best |") == 2
    assert "--no-refit keeps the trials' models" in stdout
    # every completed trial's own model on test: the trials of the references are the rows'
    # models before the refit
    tested = {t["trial"]: t for t in summary["trial_test"]}
    assert set(tested) == {n for n, r in records.items() if r["status"] == "COMPLETED"}
    for t in tested.values():
        if t["label"] in summary["runs"]:
            assert t["test_error"] == pytest.approx(
                summary["runs"][t["label"]]["before_refit"]["test_error"], abs=1e-6)


def test_the_ensemble_of_the_best_trials_is_written_measured_and_priced(tiny_run):
    import keras

    out, stdout = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    found = summary["ensemble"]
    completed = {r["trial"] for r in summary["trial_records"] if r["status"] == "COMPLETED"}
    # --ensemble 3 with two completed trials: both, the one handed over first
    assert found["trials"][0] == summary["best_trial"] and set(found["trials"]) == completed
    assert found["error_ratio_best"] == pytest.approx(
        found["test_error"] / summary["runs"]["best"]["mean"]["test_error"])
    reference = found["best_reference"]
    assert found["error_ratio_reference"] == pytest.approx(
        found["test_error"] / summary["runs"][reference]["mean"]["test_error"])
    assert found["params_ratio"] == pytest.approx(2.0) and found["predict_ratio"] > 0
    assert found["temperature"] > 0 and "ensemble_model.keras" in summary["files"]
    assert "ensemble of trials" in stdout and "ensemble of trials" in (out / "report.md").read_text()
    model = keras.models.load_model(out / "ensemble_model.keras")
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype="float32")
    members = [model.get_layer(f"member_{i}") for i in range(2)]
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)
    # refit like the rows: the first member is best_model.keras, the others refit too
    assert found["refit"] is True and 0 <= found["test_error_before_refit"] <= 1
    best = keras.models.load_model(out / "best_model.keras")
    np.testing.assert_allclose(members[0].predict(x, verbose=0), best.predict(x, verbose=0),
                               atol=1e-6)


def test_report_lists_every_file_and_they_exist(tiny_run):
    out, stdout = tiny_run
    report = (out / "report.md").read_text()
    files = re.findall(r"^- `([^`]+)`(?:: .*)?$", report, flags=re.M)
    assert {"report.md", "summary.json", "best_model.keras", "curves_accuracy.png"} <= set(files)
    assert any(re.fullmatch(r"curves_\w*loss\.png", name) for name in files), files
    for name in files:
        assert (out / name).exists(), name
    assert "| 1/2 |" in report and "| 2/2 |" in report
    assert "validation" in report and "held out" in report  # what validation / test are
    assert (out / "best_model_savedmodel" / "saved_model.pb").exists()
    assert (out / "curves_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "- `curves_accuracy.png`: accuracy per epoch" in report  # says what it shows


def test_the_reports_command_reruns_without_overwrite(tiny_run, model_file):
    """The command shown to rerun (resume) the search: --overwrite would start it over."""
    out, _ = tiny_run
    command = re.search(r"^Command: `(.*)`$", (out / "report.md").read_text(), re.M).group(1)
    summary = json.loads((out / "summary.json").read_text())
    assert "--overwrite" not in command and summary["command"] == command
    assert command == "keras-reg " + " ".join(shlex.quote(str(a))
                                              for a in tiny_args(model_file, out))


def test_best_model_loads_after_import_keras_reg(tiny_run):
    import warnings

    import keras
    import numpy as np

    from keras_reg.layers import TemperatureScaling

    out, _ = tiny_run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.models.load_model(out / "best_model.keras")
    assert [str(w.message) for w in caught] == []  # no optimizer-variable mismatch
    assert model.output_shape == (None, 10)
    # the model as built: no calibration wrapper; its temperature is in summary.json
    assert not any(isinstance(layer, TemperatureScaling) for layer in model.layers)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_temperature"] > 0
    probabilities = model.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_rerun_with_the_same_settings_resumes_and_says_so(tiny_run, model_file, monkeypatch):
    out, _ = tiny_run

    def stop(*args, **kwargs):  # the search is what resumes; skip the retraining after it
        raise KeyboardInterrupt

    monkeypatch.setattr("keras_reg.cli.report.compare", stop)
    monkeypatch.setattr("keras_reg.cli.report.from_trials", stop)
    code, stdout, stderr = run_main(*tiny_args(model_file, out))
    assert code == 130, stderr[-3000:]
    assert "resuming: 2 of 2 trials done" in stdout
    assert not any(line.startswith("trial ") for line in stdout.splitlines())  # none re-run


def test_rerun_with_other_settings_names_them_and_exits_2(tiny_run, model_file):
    out, _ = tiny_run
    args = list(tiny_args(model_file, out))
    args[args.index("--epochs") + 1] = 2
    code, stdout, err = run_main(*args)
    assert_user_error(code, err, "--epochs", "1 → 2", "--overwrite", str(out))
    assert stdout == ""  # named before the header: nothing was started


def test_rerun_with_another_tuner_and_epochs_names_both_at_once(tiny_run, model_file):
    out, _ = tiny_run
    args = list(tiny_args(model_file, out))
    args[args.index("--epochs") + 1] = 2
    old_tuner = args[args.index("--tuner") + 1] if "--tuner" in args else "bayesian"
    new_tuner = "random" if old_tuner != "random" else "bayesian"
    if "--tuner" in args:
        args[args.index("--tuner") + 1] = new_tuner
    else:
        args += ["--tuner", new_tuner]
    code, _, err = run_main(*args)
    assert_user_error(code, err, "--epochs", "1 → 2", f"--tuner {old_tuner} → {new_tuner}")


@pytest.mark.parametrize("function,words", [
    ("nothing_here", ["has no function", "nothing_here"]),
    ("not_a_function", ["not a function"]),
    ("returns_a_string", ["returns_a_string(reg)", "keras.Model"]),
    ("three_classes", ["(None, 10)", "one output per class"]),
    ("raises", ["RuntimeError", "boom"]),
])
def test_a_broken_model_is_one_line_and_leaves_no_out(function, words, model_file, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_main("search", "--model", f"{model_file}:{function}", "--out", out)
    assert_user_error(code, err, "--model", *words)
    assert not out.exists()


def test_a_model_module_that_does_not_import_is_one_line(tmp_path):
    bad = tmp_path / "bad_model.py"
    bad.write_text("import no_such_module_xyz\n")
    code, _, err = run_main("search", "--model", f"{bad}:build_model", "--out", tmp_path / "o")
    assert_user_error(code, err, "--model", "no_such_module_xyz")
    code, _, err = run_main("search", "--model", "no_such_pkg_xyz:f", "--out", tmp_path / "o")
    assert_user_error(code, err, "--model", "no_such_pkg_xyz")
    assert not (tmp_path / "o").exists()


def test_data_errors_are_one_line(tmp_path):
    code, _, err = run_main("search", "--train-size", 100000, "--out", tmp_path / "o")
    assert_user_error(code, err, "--train-size")
    assert not (tmp_path / "o").exists()


def test_a_bad_space_item_is_one_line(tmp_path):
    code, _, err = run_main("search", "--space", "dropout=2:3", "--out", tmp_path / "o")
    assert_user_error(code, err, "--space", "dropout")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # a fresh interpreter importing TensorFlow: ~15 s
def test_a_user_error_in_a_real_process_is_one_line(tmp_path):
    """The whole standard error of a real process that imported TensorFlow: its C++ start-up
    messages are silenced (keras_reg._tf_logging), so the user sees exactly one line."""
    proc = run_cli("search", "--train-size", 100000, "--out", tmp_path / "o")
    assert_user_error(proc.returncode, proc.stderr, "--train-size")
    assert "Traceback" not in proc.stdout and not (tmp_path / "o").exists()


def test_an_offline_tfds_dataset_names_the_data_dir_flag(tmp_path, monkeypatch):
    """Not downloaded in --data-dir and no network: the one line names the flag to use."""
    monkeypatch.setattr("keras_reg.data.loading._online", lambda *a, **k: False)
    code, _, err = run_main("search", "--dataset", "mnist", "--data-dir", tmp_path / "tfds",
                            "--out", tmp_path / "o")
    assert_user_error(code, err, "--dataset 'mnist'", "no network", str(tmp_path / "tfds"),
                      "--data-dir DIR")
    assert "data_dir=" not in err and not (tmp_path / "o").exists()


def test_unknown_dataset_exits_2(tmp_path):
    code, _, err = run_main("search", "--dataset", "no_such_dataset_xyz", "--out", tmp_path / "o")
    assert_user_error(code, err, "--dataset", "no_such_dataset_xyz")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_preview_writes_a_png(tmp_path):
    out = tmp_path / "pics" / "preview.png"
    code, stdout, _ = run_main("preview", "--out", out)
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(out) in stdout


def test_preview_into_a_folder_is_one_line(tmp_path):
    code, _, err = run_main("preview", "--out", tmp_path)
    assert_user_error(code, err, "--out")


def test_the_example_model_adapts_to_the_data_classes_and_image_size():
    """`--model examples/custom_model.py:build_model` on 3-class 12x12 RGB data: the builder
    receives the data's input shape and number of classes (its defaults are digits')."""
    import types

    from keras_reg import cli
    from keras_reg.tuning import Regularization

    example = str(pathlib.Path(__file__).resolve().parents[2] / "examples" / "custom_model.py")
    info = types.SimpleNamespace(image_shape=(12, 12, 3), num_classes=3)
    builder = cli.load_builder(f"{example}:build_model", Regularization(norm="batch"), info)
    from keras_reg.tuning.hypermodel import call_builder

    model = call_builder(builder, Regularization(), (12, 12, 3), 3)
    assert tuple(model.output_shape) == (None, 3)
    assert tuple(model.input_shape) == (None, 12, 12, 3)
    # Its docstring says so, and does not ask the user to edit the defaults for their data.
    doc = " ".join(pathlib.Path(example).read_text().split('"""')[1].split())
    assert "passes the data's image shape and number of classes" in doc
    assert "change `INPUT_SHAPE`" not in doc


def _write_user_pngs(root):
    """Class folders of three classes of 8x8 grayscale PNGs (a bright quadrant per class,
    noise elsewhere)."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for label in range(3):
        for _ in range(14):
            image = rng.integers(0, 60, (8, 8), dtype=np.uint8)
            image[(label // 2) * 4:(label // 2) * 4 + 4, (label % 2) * 4:(label % 2) * 4 + 4] += 180
            images.append(image)
            labels.append(label)
    from PIL import Image

    path = root / "pngs"
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = path / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{i:03d}.png")
    return path


@pytest.mark.slow  # ~30 s: the data loaders, the example model and the report are covered apart
def test_own_data_own_model_and_space_override_finish_with_the_report(tmp_path):
    """A new user's run: `--data` (class folders of PNGs; .npz files are loaded by the same
    code, tests/data/test_files.py), `--model` the example file, a `--space` override; the
    report compares four refit rows on the data's 3 classes."""
    data = _write_user_pngs(tmp_path)
    example = pathlib.Path(__file__).resolve().parents[2] / "examples" / "custom_model.py"
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        "search", "--data", data, "--model", f"{example}:build_model", "--space",
        "dropout=0:0.3", "mixup_alpha=off", "--max-trials", 1, "--epochs", 1,
        "--batch-size", 8, "--seed", 0, "--ensemble", 0, "--out", out)
    assert code == 0, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["runs"]) == ["none", "start", "recipe", "best"]
    assert summary["refit"] is True and "before_refit" in summary["runs"]["best"]
    assert summary["settings"]["data"] == os.path.abspath(data)
    report = (out / "report.md").read_text()
    assert "3 classes" in report or "3 classes" in stdout
    import keras

    model = keras.models.load_model(out / "best_model.keras")
    assert model.output_shape == (None, 3) and model.input_shape == (None, 8, 8, 1)


@pytest.mark.slow  # a fresh interpreter, TensorFlow and a three-trial search: ~40 s
def test_a_feature_vector_search_in_a_real_process_finishes_with_nothing_on_stderr(tmp_path):
    """Tabular data from an .npz with the built-in MLP, run as a user runs it: a fresh
    interpreter with TF_CPP_MIN_LOG_LEVEL unset. TensorFlow's start-up lines (CUDA probing, CPU
    features) and its later info lines (XLA's service.cc) stay off standard error. (Sequences
    take the same path: `--sequences` loading is tested in tests/data/test_files.py, the
    conv1d search in tests/tuning/test_search.py.)"""
    import json

    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=StandardScaler().fit_transform(x).astype("float32"), y_train=y)
    out = tmp_path / "out"
    # 3 trials: start, recipe and strong (Mixup); image-only values are off for these inputs.
    # The refit and the ensemble are the same code for every input (covered by tiny_run).
    proc = run_cli("search", "--data", path, "--max-trials", "3", "--epochs", "1",
                   "--train-size", "200", "--out", out, "--no-refit", "--ensemble", "0",
                   tf_log_level=None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    assert "trial 3/3" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    records = summary["trial_records"]
    assert len(records) == 3 and all(r["status"] == "COMPLETED" for r in records), records
    # image-only dimensions are off for these inputs; Mixup (a probe) ran
    assert all(not r["values"].get(n) for r in records for n in ("augment", "cutmix_alpha"))
    assert any(r["values"].get("mixup_alpha") for r in records)
    assert summary["runs"]["best"]["mean"]["test_accuracy"] > 0.75  # chance: 0.63
    # --no-refit: the trials' own models are reported and handed over
    assert summary["refit"] is False and "before_refit" not in summary["runs"]["best"]
