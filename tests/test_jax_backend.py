"""The layers' behaviour checks on the JAX backend (tests/_workers/jax_layer_checks.py).

The Keras backend is fixed when keras is first imported, and this pytest process runs
TensorFlow, so the checks run in a subprocess with KERAS_BACKEND=jax. The same script also runs
on TensorFlow here (in a process forked by tests/_workers/processes.py, whose Keras runs on
TensorFlow), which keeps it honest (backend-agnostic). Skipped with a reason when jax is
not installed (`pip install "keras_reg[jax]"` or `pip install "jax[cpu]"`).
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

from tests._workers import processes

SCRIPT = pathlib.Path(__file__).parent / "_workers" / "jax_layer_checks.py"
ROOT = pathlib.Path(__file__).parent.parent


def _run(backend, tmp_path, timeout=300):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               JAX_PLATFORMS="cpu")
    if backend == "jax":
        # JAX compiles every eager op for its shapes; without LLVM's optimisation passes the
        # checks take ~20 s of CPU instead of ~45 s. The checks compare values, not speed.
        flags = env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
        env["XLA_FLAGS"] = flags.strip()
    if backend == "tensorflow":  # the backend of the forked processes
        worker = processes.start(SCRIPT, env=env, output=tmp_path / "checks.log")
        try:
            worker.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the {backend} layer checks did not finish in {timeout} s")
        finally:
            worker.stop()
        return worker.returncode, worker.output()
    proc = subprocess.Popen([sys.executable, str(SCRIPT)], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the {backend} layer checks did not finish in {timeout} s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None
                    and not os.environ.get("KERAS_REG_REQUIRE_JAX"),
                    reason="jax is not installed (pip install 'jax[cpu]'); CI installs it and "
                    "sets KERAS_REG_REQUIRE_JAX=1")
def test_layers_on_jax_backend(tmp_path):
    code, out = _run("jax", tmp_path)
    assert code == 0, out[-6000:]
    assert "11/11 checks passed on jax" in out, out[-3000:]


@pytest.mark.slow
def test_same_checks_on_tensorflow_backend(tmp_path):
    code, out = _run("tensorflow", tmp_path)
    assert code == 0, out[-6000:]
    assert "11/11 checks passed on tensorflow" in out, out[-3000:]
