"""Worker processes for the multi-process tests, forked from a server that imported keras_reg.

Each test worker used to be a fresh `python script.py ...`, and every one paid TensorFlow's
import (about 12 s of CPU on the CI machine) before doing a second of work. Here the scripts run
in processes forked by one `multiprocessing` forkserver per test process, which imported
TensorFlow, Keras, KerasTuner and every keras_reg sub-package once (`PRELOAD`) and never ran a
TensorFlow op: no
runtime, no device, no thread pool exists before the fork, so every child initialises TensorFlow
from scratch (logical devices, TF_CONFIG, the gRPC server of a MultiWorkerMirroredStrategy) like
a new interpreter would. What a child gets from the server is only the imported modules.

The children are real OS processes with their own pids: they run on 127.0.0.1, write files,
exit with their own exit codes and can be SIGKILLed. `start(script, args)` runs the script as
`__main__` with `sys.argv = [script, *args]`, the given environment and working directory, and
its standard output and error in one file; the returned `Worker` has the part of the
`subprocess.Popen` interface the tests use (`pid`, `poll`, `wait`, `kill`, `send_signal`,
`returncode`) plus `output()`.

Scripts that need another Keras backend (tests/_workers/jax_layer_checks.py on JAX) cannot be
forked from this server and still start with `subprocess`.

There is one forkserver per pytest process that starts workers (under `pytest -n 2`, per
pytest-xdist worker that runs such a test).
"""

import atexit
import multiprocessing
import os
import pathlib
import runpy
import signal
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
# Imported once by the server before it forks. `import keras_reg` alone imports no TensorFlow
# (its sub-packages are lazy), so Keras is imported after it: keras_reg's import hook then
# imports every sub-package (registering their classes) with TensorFlow's start-up messages
# silenced; keras_reg.tuning.tuner brings KerasTuner. Preloading only "keras_reg" (as this list
# did once keras_reg became lazy) left every child importing TensorFlow itself, ~10 s of CPU
# each; `_main` now checks that the preload took place. The forkserver ignores a failing
# preload import silently.
PRELOAD = ["numpy", "keras_reg", "keras", "keras_reg.tuning.tuner"]
# What a child must find already imported (else the preload failed and the child would pay
# for the imports itself).
PRELOADED = ("tensorflow", "keras", "keras_tuner", "keras_reg.layers", "keras_reg.tuning.tuner")
_CONTEXT = []


def _context():
    if not _CONTEXT:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        _CONTEXT.append(context)
    return _CONTEXT[0]


def _main(script, args, env, cwd, output):
    """The child: `python script *args` with this environment, cwd and output file."""
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    missing = [name for name in PRELOADED if name not in sys.modules]
    if missing:  # in the child's output, which the tests print when it fails
        raise RuntimeError(f"the forkserver did not preload {missing} (PRELOAD = {PRELOAD}); "
                           "the child would import them itself")
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        # A normal interpreter runs the exit handlers; the forkserver child ends in os._exit.
        atexit._run_exitfuncs()


class Worker:
    """A running script (see `start`); a subset of `subprocess.Popen`."""

    def __init__(self, script, args, env, cwd, output):
        self.args = [str(script), *map(str, args)]
        self.output_path = pathlib.Path(output)
        self._process = _context().Process(
            target=_main, args=(self.args[0], self.args[1:], dict(env), str(cwd), str(output)),
            name=pathlib.Path(script).name,
        )
        self._process.start()
        self.pid = self._process.pid

    @property
    def returncode(self):
        """The exit code; -N after signal N; None while running."""
        return self._process.exitcode

    def poll(self):
        return self._process.exitcode

    def wait(self, timeout=None):
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self._process.exitcode

    def send_signal(self, sig):
        if self._process.exitcode is None:
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def output(self):
        """Everything the script wrote to its standard output and error so far."""
        try:
            return self.output_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        """Kills the process if it still runs and waits for it (for `finally` blocks)."""
        if self.poll() is None:
            self.kill()
            self.wait(timeout=30)


def start(script, args=(), *, env=None, cwd=ROOT, output=None):
    """Starts `script` with `args` in a forked worker process; returns its `Worker`.

    env: the complete environment of the child (default: this process's).
    output: the file that receives its standard output and error (default: a new temporary
    file).
    """
    if output is None:
        handle, output = tempfile.mkstemp(prefix=pathlib.Path(script).stem + "_", suffix=".log")
        os.close(handle)
    return Worker(script, args, os.environ if env is None else env, cwd, output)
