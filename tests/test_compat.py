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
