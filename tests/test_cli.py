"""`keras-reg` / `python -m keras_reg`: a tiny real search, its outputs, and user errors."""

import os
import subprocess
import sys

import pytest

from keras_reg.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, timeout=300, env=None):
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg", **(env or {}))
    return subprocess.run([sys.executable, "-m", "keras_reg", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=full_env)


def assert_user_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr  # one line, no traceback
    assert lines[0].startswith("keras-reg: error:")
    assert "Traceback" not in proc.stderr + proc.stdout
    for word in words:
        assert word in lines[0]


def tiny_search(out):
    return run_cli("search", "--max-trials", "1", "--epochs", "1", "--train-size", "40",
                   "--tuner", "random", "--out", str(out))


def test_tiny_search_writes_report_curves_and_models(tmp_path):
    out = tmp_path / "out"
    proc = tiny_search(out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.strip() == ""  # no TensorFlow chatter, no warnings
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("trial  1/1") for line in lines) == 1  # one progress line
    assert any(line.startswith("| baseline | none |") for line in lines)
    assert any(line.startswith("| best |") for line in lines)
    report = (out / "report.md").read_text()
    assert "| baseline | none |" in report and "## Trials" in report
    for name in ("curves_loss.png", "curves_accuracy.png", "best_model.keras"):
        data = (out / name).read_bytes()
        assert len(data) > 1000
    assert (out / "curves_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "best_model_savedmodel" / "saved_model.pb").exists()
    assert (out / "tuner" / "search" / "oracle.json").exists()


@pytest.mark.slow
def test_rerun_with_the_same_out_resumes(tmp_path):
    out = tmp_path / "out"
    assert tiny_search(out).returncode == 0
    again = tiny_search(out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not any(line.startswith("trial ") for line in again.stdout.splitlines())
    assert "1/1 trials completed" in again.stdout


@pytest.mark.parametrize("flag,value", [("--max-trials", "0"), ("--epochs", "-3"),
                                        ("--train-size", "many"), ("--seed", "-1")])
def test_bad_flag_values_exit_2_with_one_line(flag, value, tmp_path):
    proc = run_cli("search", flag, value, "--out", str(tmp_path))
    assert_user_error(proc, flag)


def test_unknown_tuner_exits_2():
    assert_user_error(run_cli("search", "--tuner", "grid"), "--tuner")


def test_unwritable_out_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_user_error(run_cli("search", "--out", str(blocker / "sub")), "--out")


def test_unknown_dataset_exits_2(tmp_path):
    proc = run_cli("search", "--dataset", "no_such_dataset_xyz", "--out", str(tmp_path))
    assert_user_error(proc, "no_such_dataset_xyz")


def test_train_size_larger_than_the_data_exits_2(tmp_path, capsys):
    code = main(["search", "--train-size", "100000", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--train-size" in err[0]


def test_preview_writes_a_png(tmp_path, capsys):
    out = tmp_path / "pics" / "preview.png"
    assert main(["preview", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in capsys.readouterr().out


def test_no_subcommand_prints_help():
    proc = run_cli()
    assert proc.returncode == 2 and "search" in proc.stdout
