"""Tests of `keras_reg._compat`: each one fails when the private upstream name it covers changes."""

import keras

from keras_reg import _compat


def test_flatten_layers_reaches_nested_wrapped_and_cell_layers():
    inner = keras.layers.Dense(2)
    rnn = keras.layers.SimpleRNN(3)
    nested = keras.Sequential([keras.Input((5, 4)), keras.layers.TimeDistributed(inner)])
    model = keras.Sequential([keras.Input((5, 4)), nested, rnn])
    found = _compat.flatten_layers(model)
    assert nested in found and inner in found and rnn in found and rnn.cell in found
    assert model not in found


def test_kerastuner_tracebacks_switches_the_debug_flag_base_tuner_reads():
    import inspect

    from keras_tuner.src import config as kt_config
    from keras_tuner.src.engine import base_tuner

    # BaseTuner prints a failed trial's traceback only when this flag is true.
    assert "config_module.DEBUG" in inspect.getsource(base_tuner.BaseTuner)
    assert base_tuner.config_module is kt_config
    before = kt_config.DEBUG
    with _compat.kerastuner_tracebacks(False):
        assert kt_config.DEBUG is False
        with _compat.kerastuner_tracebacks(True):
            assert kt_config.DEBUG is True
        assert kt_config.DEBUG is False
    assert kt_config.DEBUG == before


def test_random_seed_dtype_is_the_seed_generator_state_dtype():
    # The public observable of the private function: the dtype of a SeedGenerator's state.
    generator = keras.random.SeedGenerator(0)
    assert _compat.random_seed_dtype() == keras.backend.standardize_dtype(generator.state.dtype)


def test_symbolic_build_creates_layer_optimizer_and_metric_variables():
    import tensorflow as tf

    model = keras.Sequential([keras.layers.Dense(2)])  # no Input: nothing built yet
    model.compile(keras.optimizers.Adam(), "mse", metrics=["mae"])
    spec = (tf.TensorSpec((None, 3), "float32"), tf.TensorSpec((None, 2), "float32"))
    _compat.symbolic_build(model, spec)
    assert model.built and model.layers[0].kernel.shape == (3, 2)
    assert model.optimizer.built and len(model.optimizer.variables) > 2  # slots created
    assert any(m.variables for m in model.metrics)


def test_take_initial_epoch_reads_what_backup_and_restore_sets(tmp_path):
    import inspect

    import numpy as np

    from keras.src.backend.tensorflow import trainer

    assert "self.model._initial_epoch = epoch" in inspect.getsource(
        keras.callbacks.BackupAndRestore
    )
    assert "self._initial_epoch" in inspect.getsource(trainer.TensorFlowTrainer.fit)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), save_freq="epoch")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0, callbacks=[backup])
    # A finished run deletes its backup; write one at epoch 1 and restore it.
    backup.set_model(model)
    backup.on_epoch_end(0)
    backup.on_train_begin()
    assert _compat.take_initial_epoch(model, 0) == 1
    assert _compat.take_initial_epoch(model, 5) == 5  # cleared: the default again


def test_seed_generators_lists_the_layers_own_generators():
    dropout = keras.layers.Dropout(0.5, seed=1)
    assert _compat.seed_generators(dropout) == [dropout.seed_generator]
    assert _compat.seed_generators(keras.layers.Dense(2)) == []


def test_module_initializing_reads_importlibs_mark(tmp_path, monkeypatch):
    import importlib
    import sys

    from keras_reg._compat import module_initializing

    # a module that records, while its own code runs, what module_initializing says of it
    (tmp_path / "keras_reg_probe_mod.py").write_text(
        "import sys\nfrom keras_reg._compat import module_initializing\n"
        "DURING = module_initializing(sys.modules[__name__])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("keras_reg_probe_mod")
    try:
        assert module.DURING is True
        assert module_initializing(module) is False
    finally:
        sys.modules.pop("keras_reg_probe_mod", None)


def test_best_epoch_weights_is_where_kerastuner_saves_and_loads(tmp_path):
    import inspect

    import keras_tuner

    from keras_reg._compat import best_epoch_weights

    tuner = keras_tuner.RandomSearch(lambda hp: None, objective="val_loss", max_trials=1,
                                     directory=str(tmp_path), project_name="p")
    path = best_epoch_weights(tuner, "0")
    assert path.startswith(tuner.get_trial_dir("0")) and path.endswith(".weights.h5")
    # the same method names the file SaveBestEpoch writes and load_model reads
    assert "_get_checkpoint_fname" in inspect.getsource(keras_tuner.Tuner.run_trial)
    assert "_get_checkpoint_fname" in inspect.getsource(keras_tuner.Tuner.load_model)


def test_trial_folder_is_read_from_kerastuners_best_epoch_saver(tmp_path):
    import os

    import keras
    import keras_tuner

    from keras_reg._compat import trial_folder

    seen = []

    class Probe(keras_tuner.HyperModel):
        def build(self, hp):
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            model.compile("sgd", "mse")
            return model

        def fit(self, hp, model, *args, callbacks=None, **kwargs):
            seen.append(trial_folder(callbacks))
            return model.fit(*args, callbacks=callbacks, **kwargs)

    import numpy as np

    tuner = keras_tuner.RandomSearch(Probe(), objective="loss", max_trials=1,
                                     directory=str(tmp_path), project_name="p")
    tuner.search(np.ones((4, 2)), np.ones((4, 1)), epochs=1, verbose=0)
    trial_id = next(iter(tuner.oracle.trials))
    assert seen == [tuner.get_trial_dir(trial_id)] and os.path.isdir(seen[0])
    assert trial_folder([keras.callbacks.History()]) is None
