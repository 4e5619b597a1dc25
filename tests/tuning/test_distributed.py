"""KerasTuner chief/worker mode on 127.0.0.1: one chief and two workers share one search.

The three are processes of their own (forked by tests/_workers/processes.py) talking gRPC over
127.0.0.1, each configured by the KERASTUNER_* environment variables.
"""

import os
import socket
import textwrap
import time

import pytest

from tests._workers import processes

SCRIPT = textwrap.dedent("""
    import os, sys
    import keras
    from keras_reg.data import load
    from keras_reg.tuning import RegularizationSpace, RegularizationTuner, TrainingProtocol

    def tiny_model(reg):
        return keras.Sequential([
            keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dropout(reg.dropout),
            keras.layers.Dense(10, activation="softmax",
                               kernel_regularizer=reg.kernel_regularizer())])

    train, val = load("digits", ("train[:64]", "train[80%:]"), batch_size=32)
    space = RegularizationSpace(l2=(0.0, 1e-3), dropout=(0.0, 0.3), drop_path="off",
                                mixup_alpha="off", cutmix_alpha="off", label_smoothing="off",
                                augment="off", input_noise="off", norm=["batch", None])
    ran = []
    tuner = RegularizationTuner(
        tiny_model, space=space, tuner="random", max_trials=5, directory=sys.argv[1], seed=0,
        references=("start", "none"), probes=False, settings={"dataset": "digits[:64]"},
        protocol=TrainingProtocol(min_steps_per_epoch=1, patience=None),
        progress=lambda record, total: ran.append(record.trial_id))
    tuner.search(train, validation_data=val, epochs=1)
    print("ran", len(ran), flush=True)
    if not tuner.is_worker:  # the chief gathers every trial
        result = tuner.result()
        print("trials", len(result.trials), "completed", len(result.completed), flush=True)
        print("labels", [t.label for t in result.trials], flush=True)
""")



def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_share_one_search(tmp_path):
    script = tmp_path / "search_script.py"
    script.write_text(SCRIPT)
    directory = tmp_path / "tuner"
    port = _free_port()
    procs = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERASTUNER_TUNER_ID=tuner_id,
                       KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port))
            procs[tuner_id] = processes.start(script, [directory], env=env,
                                              output=tmp_path / f"{tuner_id}.log")
            if tuner_id == "chief":
                time.sleep(3)  # let the chief open its oracle server first
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            codes = {t: p.poll() for t, p in procs.items()}
            if all(c is not None for c in codes.values()):
                break
            if any(c not in (None, 0) for c in codes.values()):
                break  # a process failed: the chief would wait for it forever
            time.sleep(0.5)
    finally:
        for proc in procs.values():
            proc.stop()
    text = {tuner_id: proc.output() for tuner_id, proc in procs.items()}
    for tuner_id, proc in procs.items():
        assert proc.returncode == 0, (tuner_id, text[tuner_id][-3000:])

    # the chief serves the oracle and runs no trial; each worker runs some, 5 in all
    ran = {t: int(text[t].split("ran ")[1].split()[0]) for t in procs}
    assert ran["chief"] == 0
    assert ran["tuner0"] + ran["tuner1"] == 5 and min(ran["tuner0"], ran["tuner1"]) >= 1
    assert "trials 5 completed 5" in text["chief"]
    assert "labels ['start', 'none', None, None, None]" in text["chief"]
