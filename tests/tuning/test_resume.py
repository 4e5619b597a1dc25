"""Resume after a real process kill (SIGKILL mid-trial), and bounded retries of crashing trials.

Each search runs in a process of its own (forked by tests/_workers/processes.py), killed or
crashing for real; the next process resumes from what the last one left in the directory.
"""

import glob
import json
import os
import signal
import textwrap
import time

import pytest

from tests._workers import processes

# Epochs of a "long" trial: a backup is written after each (about 0.2 s of CPU each), and the
# test kills the process right after the first one, so a trial has 14 epochs of margin.
LONG_EPOCHS = 15
SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras
    from keras_reg.data import load
    from keras_reg.tuning import RegularizationSpace, SearchError, search

    directory, mode = sys.argv[1], sys.argv[2]
    train, val = load("digits", ("train[:96]", "train[80%:]"), batch_size=32)
    space = RegularizationSpace(l2=(1e-5, 1e-3), dropout=(0.0, 0.3), drop_path="off",
                                mixup_alpha="off", cutmix_alpha="off", label_smoothing="off",
                                augment="off", input_noise="off", norm="off")

    def build(reg):  # small: a trial costs little more than its bookkeeping and its backups
        return keras.Sequential([
            keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dropout(reg.dropout),
            keras.layers.Dense(10, activation="softmax",
                               kernel_regularizer=reg.kernel_regularizer())])

    if mode == "crash":
        def build(reg):  # the process dies inside every trial, as on an out-of-memory kill
            os._exit(17)
    try:
        result = search(build, train, val, space=space, tuner="random", max_trials=3,
                        epochs=LONG_EPOCHS if mode == "long" else 1, patience=None, seed=0,
                        directory=directory, backup_interval=0, max_attempts=2,
                        progress=lambda rec, n, total: print("ended", rec.trial_id, flush=True))
    except SearchError as e:
        print("SearchError:", e, flush=True)
        sys.exit(3)
    print("done", [(t.trial_id, t.status) for t in result.trials], flush=True)
""").replace("LONG_EPOCHS", str(LONG_EPOCHS))


def _start(script, directory, mode, output):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return processes.start(script, [directory, mode], env=env, output=output)


def _records(directory):
    out = {}
    for path in glob.glob(os.path.join(directory, "search", "trial_*", "keras_reg_trial.json")):
        with open(path) as f:
            record = json.load(f)
        out[record["trial_id"]] = record
    return out


def _attempts(directory, trial_id):
    path = os.path.join(directory, "search", f"trial_{trial_id}", "keras_reg_attempts.json")
    with open(path) as f:
        return json.load(f)["attempts"]


def _kill_when(proc, condition, timeout=240):
    """SIGKILLs `proc` as soon as `condition()` holds; fails if it never does in time."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("the search ended before it could be killed:\n" + proc.output())
            if condition():
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return
            time.sleep(0.05)
        pytest.fail("the kill condition was never reached")
    finally:
        proc.stop()


def _backup_exists(directory, trial_id):
    return os.path.exists(os.path.join(directory, "search", f"trial_{trial_id}", "backup",
                                       "backup.npz"))


@pytest.mark.slow
def test_killed_search_resumes_without_rerunning_finished_trials(tmp_path):
    script = tmp_path / "search_script.py"
    script.write_text(SCRIPT)
    directory = tmp_path / "tuner"

    # 1. Kill inside the very first trial, after some epochs were backed up.
    _kill_when(_start(script, directory, "long", tmp_path / "run1.log"),
               lambda: _backup_exists(directory, "0"))
    assert _records(directory) == {}

    # 2. Resume: trial 0 continues from its backup; kill inside trial 1.
    _kill_when(_start(script, directory, "long", tmp_path / "run2.log"),
               lambda: "0" in _records(directory) and _backup_exists(directory, "1"))
    first = _records(directory)["0"]
    assert first["status"] == "COMPLETED"
    assert first["epochs"] < LONG_EPOCHS  # resumed from its last backup, not from epoch 0

    # 3. Resume to the end.
    proc = _start(script, directory, "long", tmp_path / "run3.log")
    try:
        proc.wait(timeout=400)
    finally:
        proc.stop()
    out = proc.output()
    assert proc.returncode == 0, out[-3000:]
    ended = [line.split()[1] for line in out.splitlines() if line.startswith("ended")]
    assert ended == ["1", "2"]  # trial 0 was not run again
    records = _records(directory)
    assert records["0"] == first  # kept as it was, values and objective
    assert records["1"]["epochs"] < LONG_EPOCHS and records["1"]["status"] == "COMPLETED"
    assert records["2"]["epochs"] == LONG_EPOCHS
    assert [_attempts(directory, t) for t in "012"] == [2, 2, 1]
    assert "done [('0', 'COMPLETED'), ('1', 'COMPLETED'), ('2', 'COMPLETED')]" in out


@pytest.mark.slow
def test_a_trial_that_always_kills_the_process_is_given_up(tmp_path):
    script = tmp_path / "search_script.py"
    script.write_text(SCRIPT)
    directory = tmp_path / "tuner"
    codes = []
    out = ""
    for run in range(8):  # bounded: the search must give the trials up well before this
        proc = _start(script, directory, "crash", tmp_path / f"run{run}.log")
        try:
            proc.wait(timeout=240)
        finally:
            proc.stop()
        out = proc.output()
        codes.append(proc.returncode)
        if proc.returncode != 17:
            break
    # each trial may be started max_attempts=2 times; then it is FAILED, never retried again
    assert codes[-1] == 3, (codes, out[-2000:])
    assert "No trial completed" in out and "started 2 times" in out
    assert len(codes) <= 7
    records = _records(directory)
    assert records and all(r["status"] == "FAILED" for r in records.values())
