"""Training interrupted mid-epoch and resumed with keras.callbacks.BackupAndRestore.

The run uses keras_reg regularizers (scheduled L2 strength), GroupNorm, MixupCutMix in tf.data
with MixupScheduler, and rate layers with RateScheduler. Interrupted in epoch 2 (by an exception
from a callback, or by SIGKILL in a subprocess, `slow`) and resumed in a fresh model, it
continues from the last epoch backup with the scheduled rates / strengths / mixing of that epoch
and ends with the weights of an uninterrupted run. The uninterrupted run is trained once per
module (in this process) and serves as the reference of both resume tests.

The keras_reg layers save their `keras.random.SeedGenerator` state with their weights (Keras
3.15 does not), so with active random layers the resumed run draws the masks of the
uninterrupted one and ends bit-identical to it. Keras limit, documented by the tests below:
- with `save_freq=<int>` the backup holds mid-epoch weights but the epoch restarts from its
  first batch (no batch skipping), so only `save_freq="epoch"` resumes exactly.
"""

import os
import signal

import keras
import numpy as np
import pytest

from keras_reg import callbacks, layers
from tests._workers import fault_worker, processes


class _Crash(Exception):
    pass


class _RaiseAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise _Crash(f"crash at epoch {self.epoch}, batch {batch}")


def _fit(backup, crash=None):
    model, ds, cbs, reg, mix = fault_worker.build()
    cbs = [keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)] + cbs
    if crash:
        cbs.append(_RaiseAt(*crash))
    history = model.fit(ds, epochs=fault_worker.EPOCHS, callbacks=cbs, verbose=0)
    return model, history, reg, mix


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The fault model trained without interruption (with a backup), in this process."""
    model, history, reg, _ = _fit(tmp_path_factory.mktemp("uninterrupted") / "backup")
    return {"weights": model.get_weights(), "loss": history.history["loss"],
            "l2": float(reg.l2), "iterations": int(model.optimizer.iterations.numpy())}


@pytest.mark.slow  # two runs of the fault model (and the reference); the resumes below are fast
def test_resume_after_exception_equals_uninterrupted_run(tmp_path, uninterrupted):
    with pytest.raises(_Crash):
        _fit(tmp_path / "backup", crash=(2, 1))
    keras.backend.clear_session()
    resumed, history, reg, mix = _fit(tmp_path / "backup")
    assert history.epoch == [2, 3, 4]  # resumed at the interrupted epoch
    np.testing.assert_allclose(history.history["loss"], uninterrupted["loss"][2:], rtol=1e-6)
    for got, want in zip(resumed.get_weights(), uninterrupted["weights"]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert float(reg.l2) == pytest.approx(0.01 / 5)  # schedule of the last epoch
    assert mix.prob == 0.0  # MixupScheduler: off from epoch 3
    assert int(resumed.optimizer.iterations.numpy()) == uninterrupted["iterations"]


def _rate_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,)),
        layers.InvertedDropout(0.4, seed=1, name="drop"),
        keras.layers.Dense(3),
        layers.DropPath(0.2, seed=2, name="path"),
    ])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _rates_run(backup, order, crash=None):
    model = _rate_model()
    x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
    y = np.zeros((32, 3), "float32")
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, model.get_layer("drop").rate, model.get_layer("path").rate))

    scheduler = callbacks.RateScheduler(lambda epoch, rate: rate * (epoch + 1) / 4,
                                        from_initial=True)
    backup_cb = keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)
    cbs = [backup_cb, scheduler] if order == "backup_first" else [scheduler, backup_cb]
    cbs.append(Record())
    if crash:
        cbs.append(_RaiseAt(*crash))
    model.fit(x, y, batch_size=8, epochs=4, callbacks=cbs, verbose=0)
    return seen


@pytest.mark.parametrize(
    "order", ["scheduler_first", pytest.param("backup_first", marks=pytest.mark.slow)]
)
def test_resume_restores_scheduled_rates(tmp_path, order):
    reference = _rates_run(tmp_path / "ref", order)
    with pytest.raises(_Crash):
        _rates_run(tmp_path / "backup", order, crash=(2, 1))
    resumed = _rates_run(tmp_path / "backup", order)
    assert [e for e, *_ in resumed] == [2, 3]
    for got, want in zip(resumed, reference[2:]):
        assert got == pytest.approx(want, rel=1e-6), (order, resumed, reference)


def test_resume_with_active_dropout_is_bit_exact(tmp_path):
    def run(backup, crash=None):
        model = _rate_model()
        x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
        cbs = [keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)]
        if crash:
            cbs.append(_RaiseAt(*crash))
        model.fit(x, np.ones((32, 3), "float32"), batch_size=8, epochs=3, callbacks=cbs,
                  verbose=0)
        return model.get_weights()

    reference = run(tmp_path / "ref")
    with pytest.raises(_Crash):
        run(tmp_path / "backup", crash=(2, 0))
    for got, want in zip(run(tmp_path / "backup"), reference):
        np.testing.assert_array_equal(got, want)


def _worker(tmp_path, backup, out, kill=None, timeout=240):
    """Runs tests/_workers/fault_worker.py in a process of its own; returns (code, output)."""
    args = [backup, out, *(kill or ())]
    worker = processes.start(fault_worker.__file__, args,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                             output=tmp_path / f"{out.stem}.log")
    try:
        worker.wait(timeout=timeout)
    finally:
        worker.stop()
    return worker.returncode, worker.output()[-2000:]


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path, uninterrupted):
    """A worker process SIGKILLs itself in epoch 2; a new process resumes from its backup and
    ends where the uninterrupted run (the fixture, trained in this process) ended."""
    code, err = _worker(tmp_path, tmp_path / "backup", tmp_path / "killed.npz", kill=(2, 1))
    assert code == -signal.SIGKILL, err
    assert not (tmp_path / "killed.npz").exists()
    assert (tmp_path / "backup").exists()  # the killed process left its epoch backup
    code, err = _worker(tmp_path, tmp_path / "backup", tmp_path / "resumed.npz")
    assert code == 0, err
    resumed = np.load(tmp_path / "resumed.npz")
    assert resumed["epochs"].tolist() == [2, 3, 4]
    np.testing.assert_allclose(resumed["loss"], uninterrupted["loss"][2:], rtol=1e-6)
    assert float(resumed["l2"]) == pytest.approx(uninterrupted["l2"])
    weights = [resumed[k] for k in sorted((k for k in resumed.files if k.startswith("arr_")),
                                          key=lambda k: int(k[4:]))]
    assert len(weights) == len(uninterrupted["weights"])
    for got, want in zip(weights, uninterrupted["weights"]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
