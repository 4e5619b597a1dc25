"""KerasTuner chief/worker mode on 127.0.0.1: one chief and two workers of `keras-reg search`."""

import glob
import json
import os
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_share_one_search(tmp_path):
    out = tmp_path / "out"
    port = _free_port()
    command = [sys.executable, "-m", "keras_reg", "search", "--tuner", "random",
               "--max-trials", "6", "--epochs", "2", "--train-size", "64", "--out", str(out)]
    procs = {}
    logs = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg",
                       KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
                       KERASTUNER_ORACLE_PORT=str(port))
            logs[tuner_id] = open(tmp_path / f"{tuner_id}.log", "w+")
            procs[tuner_id] = subprocess.Popen(command, cwd=ROOT, env=env, text=True,
                                               stdout=logs[tuner_id],
                                               stderr=subprocess.STDOUT)
            if tuner_id == "chief":
                time.sleep(3)  # let the chief open its oracle server first
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            codes = {t: p.poll() for t, p in procs.items()}
            if all(c is not None for c in codes.values()):
                break
            if any(c not in (None, 0) for c in codes.values()):
                break  # a process failed: the chief would wait for it forever
            time.sleep(0.5)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    text = {}
    for tuner_id, log in logs.items():
        log.seek(0)
        text[tuner_id] = log.read()
        log.close()
    for tuner_id, proc in procs.items():
        assert proc.returncode == 0, (tuner_id, text[tuner_id][-3000:])

    records = []
    for path in glob.glob(str(out / "tuner" / "search" / "trial_*" / "keras_reg_trial.json")):
        with open(path) as f:
            records.append(json.load(f))
    assert len(records) == 6 and all(r["status"] == "COMPLETED" for r in records)
    by_worker = {r["tuner_id"] for r in records}
    assert by_worker == {"tuner0", "tuner1"}  # both workers ran trials, the chief none
    for worker in ("tuner0", "tuner1"):
        assert "ran" in text[worker] and "trial(s)" in text[worker]
    # the chief gathers every trial and writes the report
    assert "6/6 trials completed" in text["chief"]
    assert (out / "report.md").exists() and (out / "best_model.keras").exists()
