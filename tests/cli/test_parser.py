"""keras_reg.cli._parser: help, --version and argument errors, answered without TensorFlow."""

import json
import subprocess
import sys
import textwrap

import pytest

import keras_reg
from keras_reg.cli import DEFAULTS
from keras_reg.cli._search import rerun_command
from keras_reg.tuning.protocol import MIN_STEPS_PER_EPOCH
from keras_reg.tuning.tuner import SELECTION_MARGIN
from tests.cli._run import ROOT, assert_user_error, exit_code_and_output, run_main

# What a fresh interpreter has imported after `import keras_reg.cli` and after each command that
# answers without work: none of TensorFlow, Keras, KerasTuner or TFDS.
_IMPORTS = textwrap.dedent("""
    import contextlib, io, json, sys
    HEAVY = ("tensorflow", "keras", "keras_tuner", "tensorflow_datasets", "jax")

    def heavy():
        return sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)

    import keras_reg
    found = {"import keras_reg": heavy(), "version": keras_reg.__version__}
    import keras_reg.cli
    found["import keras_reg.cli"] = heavy()
    for argv in (["--help"], ["--version"], ["search", "--help"], ["search", "--epochs", "0"],
                 ["search", "--data", "no_such_folder_xyz"], ["search", "--space", "dropout"],
                 ["search", "--objective", "val_loss:up"]):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                code = keras_reg.cli.main(argv)
            except SystemExit as stop:
                code = stop.code
        found[" ".join(argv)] = [code, heavy()]
    print(json.dumps(found))
""")


def test_parsing_imports_no_tensorflow_or_keras():
    done = subprocess.run([sys.executable, "-c", _IMPORTS], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found.pop("version") == keras_reg.__version__
    assert found.pop("import keras_reg") == []
    assert found.pop("import keras_reg.cli") == []
    for argv, (code, imported) in found.items():
        assert code == (0 if argv.endswith(("--help", "--version")) else 2), argv
        assert imported == [], (argv, imported)


def test_version():
    code, stdout = exit_code_and_output("--version")
    assert code == 0 and stdout.strip() == f"keras-reg {keras_reg.__version__}"


def test_help_documents_defaults_space_syntax_and_model_contract():
    code, stdout = exit_code_and_output("search", "--help")
    assert code == 0
    stdout = " ".join(stdout.split())  # argparse wraps lines at the terminal width
    for text in ("(default: 10)", "(default: bayesian)", "(default: keras_reg_out)",
                 "--space syntax", "low:high", "off", "build_model(reg)", "keras.Model",
                 "--repeats", "--tensorboard", "--overwrite", "--image-size",
                 "--selection-margin Z", "(default: 1.0)", "--data-dir DIR"):
        assert text in stdout, text
    assert DEFAULTS["selection_margin"] == SELECTION_MARGIN  # the CLI's default is the API's
    # The help names the protocol's minimum epoch length as a literal (no TensorFlow import).
    assert f"an epoch is at least {MIN_STEPS_PER_EPOCH} steps" in stdout


@pytest.mark.parametrize("flag,value", [("--max-trials", "0"), ("--epochs", "-3"),
                                        ("--epochs", "0"),
                                        ("--train-size", "many"), ("--seed", "-1"),
                                        ("--repeats", "0"), ("--objective", "val_loss:up"),
                                        ("--objective", ":max"),
                                        ("--tuner", "grid"), ("--selection-margin", "-1"),
                                        ("--selection-margin", "inf"),
                                        ("--selection-margin", "nan"),
                                        ("--selection-margin", "z"), ("--space", "dropout"),
                                        ("--space", "=0:1"), ("--space", "dropout="),
                                        ("--ensemble", "-1"), ("--ensemble", "two"),
                                        ("--data", "no_such_folder_xyz")])
def test_bad_flag_values_exit_2_with_one_line(flag, value, tmp_path):
    code, _, err = run_main("search", flag, value, "--out", tmp_path / "out")
    assert_user_error(code, err, flag, value.strip("="))
    assert not (tmp_path / "out").exists()


def test_flags_that_need_another_flag_or_a_file(tmp_path):
    code, _, err = run_main("search", "--image-size", 8, 8, "--out", tmp_path / "o")
    assert_user_error(code, err, "--image-size", "--data")
    code, _, err = run_main("search", "--data", tmp_path, "--data-dir", tmp_path,
                            "--out", tmp_path / "o")
    assert_user_error(code, err, "--data-dir", "--dataset")
    code, _, err = run_main("search", "--model", tmp_path / "none.py:f", "--out", tmp_path / "o")
    assert_user_error(code, err, "--model", "no file")
    code, _, err = run_main("search", "--model", "no_colon", "--out", tmp_path / "o")
    assert_user_error(code, err, "--model", "module:function")
    assert not (tmp_path / "o").exists()


def test_unwritable_out_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run_main("search", "--out", blocker / "sub")
    assert_user_error(code, err, "--out")
    code, _, err = run_main("search", "--out", blocker)
    assert_user_error(code, err, "--out")


def test_no_subcommand_prints_help():
    code, stdout, _ = run_main()
    assert code == 2 and "search" in stdout


def test_the_rerun_command_has_no_overwrite():
    assert rerun_command(["search", "--overwrite", "--out", "my out", "--epochs", "3"]) == \
        "keras-reg search --out 'my out' --epochs 3"
    assert rerun_command(["search", "--overw", "--seed", "1"]) == "keras-reg search --seed 1"
    assert rerun_command(["search", "--out", "o"]) == "keras-reg search --out o"


def test_quick_is_a_small_budget_that_explicit_flags_override():
    from keras_reg.cli._parser import DEFAULTS, QUICK, parse

    _, args = parse(["search", "--quick", "--out", "/tmp/keras_reg_quick_test"])
    assert (args.max_trials, args.epochs) == (QUICK["max_trials"], QUICK["epochs"])
    _, args = parse(["search", "--quick", "--epochs", "5", "--out", "/tmp/keras_reg_quick_test"])
    assert (args.max_trials, args.epochs) == (QUICK["max_trials"], 5)
    _, args = parse(["search", "--out", "/tmp/keras_reg_quick_test"])
    assert (args.max_trials, args.epochs) == (DEFAULTS["max_trials"], DEFAULTS["epochs"])


def test_refit_is_the_default_and_no_refit_turns_it_off():
    from keras_reg.cli._parser import parse

    _, args = parse(["search", "--out", "/tmp/keras_reg_refit_test"])
    assert args.refit is True
    _, args = parse(["search", "--no-refit", "--out", "/tmp/keras_reg_refit_test"])
    assert args.refit is False


def test_ensemble_of_three_is_the_default_and_zero_turns_it_off():
    from keras_reg.cli._parser import parse

    _, args = parse(["search", "--out", "/tmp/keras_reg_ensemble_test"])
    assert args.ensemble == 3
    _, args = parse(["search", "--ensemble", "0", "--out", "/tmp/keras_reg_ensemble_test"])
    assert args.ensemble == 0
