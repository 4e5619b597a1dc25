"""Resume after a real process kill (SIGKILL mid-trial), and bounded retries of crashing trials.

Each search runs in a process of its own (forked by tests/_workers/processes.py), killed or
crashing for real; the next process resumes from what the last one left in the directory:
KerasTuner's trial.json files and oracle state, and the trial's Keras `BackupAndRestore` files
under `trial_<id>/backup/`.
"""

import json
import os
import signal
import textwrap
import time

import pytest

from keras_reg.tuning.hypermodel import BACKUP_EVERY
from tests._workers import processes

# Epochs of a "long" trial: a backup is written after every BACKUP_EVERY-th (each well under
# a second of CPU), and the test kills the process right after the first backup, so a trial has
# 10 epochs of margin.
LONG_EPOCHS = 15
SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras
    from keras_reg.data import load
    from keras_reg.tuning import (RegularizationSpace, SearchError, TrainingProtocol,
                                  search)

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
        result = search(build, train, val, space=space, tuner="random",
                        max_trials=3 if mode == "long" else 2,
                        epochs=LONG_EPOCHS if mode == "long" else 1, seed=0,
                        protocol=TrainingProtocol(min_steps_per_epoch=1, patience=None),
                        directory=directory, references=("start",), probes=False,
                        progress=lambda record, total: print("ended", record.trial_id,
                                                             flush=True))
    except SearchError as e:
        print("SearchError:", e, flush=True)
        sys.exit(3)
    print("done", [(t.trial_id, t.status, t.epochs) for t in result.trials], flush=True)
""").replace("LONG_EPOCHS", str(LONG_EPOCHS))


def _start(script, directory, mode, output):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return processes.start(script, [directory, mode], env=env, output=output)


def _trial_dir(directory, trial_id):
    return os.path.join(directory, "search", f"trial_{trial_id}")


def _status(directory, trial_id):
    """The trial's status in KerasTuner's trial.json (None before it exists)."""
    try:
        with open(os.path.join(_trial_dir(directory, trial_id), "trial.json")) as f:
            return json.load(f)["status"]
    except (OSError, ValueError):
        return None


def _trial(directory, trial_id):
    """KerasTuner's trial.json and the epochs of the trial's last run (keras_reg.json)."""
    with open(os.path.join(_trial_dir(directory, trial_id), "trial.json")) as f:
        trial = json.load(f)
    with open(os.path.join(_trial_dir(directory, trial_id), "keras_reg.json")) as f:
        epochs = len(json.load(f)["history"]["loss"])
    return {"status": trial["status"], "score": trial["score"],
            "values": trial["hyperparameters"]["values"], "epochs": epochs}


def _backed_up(directory, trial_id):
    """Whether Keras's BackupAndRestore holds an epoch of the trial (it writes the weights,
    then the metadata naming the epoch)."""
    backup = os.path.join(_trial_dir(directory, trial_id), "backup")
    return all(os.path.exists(os.path.join(backup, name))
               for name in ("latest.weights.h5", "training_metadata.json"))


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


@pytest.mark.slow
def test_killed_search_resumes_without_rerunning_finished_trials(tmp_path):
    script = tmp_path / "search_script.py"
    script.write_text(SCRIPT)
    directory = str(tmp_path / "tuner")

    # 1. Kill inside the very first trial, after some epochs were backed up.
    _kill_when(_start(script, directory, "long", tmp_path / "run1.log"),
               lambda: _backed_up(directory, "0"))
    assert _status(directory, "0") == "RUNNING"

    # 2. Resume: trial 0 continues from its backup; kill inside trial 1.
    _kill_when(_start(script, directory, "long", tmp_path / "run2.log"),
               lambda: _status(directory, "0") == "COMPLETED" and _backed_up(directory, "1"))
    first = _trial(directory, "0")
    assert 0 < first["epochs"] < LONG_EPOCHS  # resumed from its last backup, not from epoch 0
    assert (LONG_EPOCHS - first["epochs"]) % BACKUP_EVERY == 0  # backups every BACKUP_EVERY
    assert not os.path.exists(os.path.join(_trial_dir(directory, "0"), "backup",
                                           "training_metadata.json"))  # removed at its end

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
    assert _trial(directory, "0") == first  # kept as it was, values and objective
    second, third = _trial(directory, "1"), _trial(directory, "2")
    assert 0 < second["epochs"] < LONG_EPOCHS and second["status"] == "COMPLETED"
    assert (LONG_EPOCHS - second["epochs"]) % BACKUP_EVERY == 0
    assert third["epochs"] == LONG_EPOCHS and third["status"] == "COMPLETED"
    assert (f"done [('0', 'COMPLETED', {first['epochs']}), "
            f"('1', 'COMPLETED', {second['epochs']}), "
            f"('2', 'COMPLETED', {LONG_EPOCHS})]") in out


@pytest.mark.slow
def test_a_trial_that_always_kills_the_process_is_given_up(tmp_path):
    # 2 trials, each killing its process: each is started 3 times, then failed when the next
    # process opens the search, which moves on to the next trial; 6 killed runs, then one
    # that fails the last trial and ends with SearchError
    script = tmp_path / "search_script.py"
    script.write_text(SCRIPT)
    directory = str(tmp_path / "tuner")
    codes = []
    out = ""
    for run in range(10):  # bounded: the search must give the trials up well before this
        proc = _start(script, directory, "crash", tmp_path / f"run{run}.log")
        try:
            proc.wait(timeout=240)
        finally:
            proc.stop()
        out = proc.output()
        codes.append(proc.returncode)
        if proc.returncode != 17:
            break
    assert codes == [17] * 6 + [3], (codes, out[-2000:])
    assert "No trial completed" in out
    assert "trial 1 was started 3 times and never ended" in out
    assert [_status(directory, t) for t in "01"] == ["FAILED", "FAILED"]
