"""Running the command line in tests: in this process, or in a fresh one."""

import contextlib
import io
import os
import subprocess
import sys

import pytest

from keras_reg.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_main(*args):
    """`main(args)` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def run_cli(*args, timeout=300, tf_log_level="3"):
    """`python -m keras_reg ARGS` in a fresh interpreter (a `subprocess.CompletedProcess`);
    `tf_log_level=None`: TF_CPP_MIN_LOG_LEVEL unset, as for a user who never set it."""
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("KERAS_REG_TF_STARTUP_LOGS", None)
    if tf_log_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = tf_log_level
    return subprocess.run([sys.executable, "-m", "keras_reg", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def exit_code_and_output(*args):
    """For argparse's own actions (--help, --version), which exit."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code, out.getvalue()


def assert_user_error(code, err, *words):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # one line, no traceback
    assert lines[0].startswith("keras-reg: error:"), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
