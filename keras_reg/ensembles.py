"""`ensemble`: one Keras model that averages the predictions of several classifiers."""

import keras

from keras_reg._validation import fail


def ensemble(models, name="ensemble"):
    """A model whose output is the mean of `models`' outputs on the same input.

    With softmax members (the built-in models and most classifiers) the output is the mean of
    their class probabilities: the usual deep ensemble. It costs the sum of its members at
    inference (three members: three forward passes). The members are nested in the new model
    under the names `member_0`, `member_1`, ... (renamed in place), so it saves to `.keras`,
    loads and exports like any functional model.

    From a search: `ensemble(tuner.get_best_models(num_models=3))` averages the models of the
    trial handed over and of the next two on the objective (KerasTuner's own ranking), as
    `keras-reg search` writes `ensemble_model.keras`.

    Args:
        models: a list of at least two built `keras.Model`s with the same input shape and the
            same output shape.
        name: the name of the model returned.

    Returns:
        A functional `keras.Model`, not compiled.

    Example:

    >>> import numpy as np
    >>> def classifier():
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    >>> models = [classifier() for _ in range(3)]  # or tuner.get_best_models(num_models=3)
    >>> averaged = ensemble(models)
    >>> x = np.ones((2, 4), "float32")
    >>> mean = np.mean([m.predict(x, verbose=0) for m in models], axis=0)
    >>> bool(np.allclose(averaged.predict(x, verbose=0), mean, atol=1e-6))
    True
    >>> [layer.name for layer in averaged.layers[1:4]]
    ['member_0', 'member_1', 'member_2']
    """
    if not isinstance(models, (list, tuple)):
        fail("models", "a list of keras.Model", models, TypeError)
    models = list(models)
    if len(models) < 2:
        fail("models", "a list of at least two keras.Model", models)
    for i, model in enumerate(models):
        if not isinstance(model, keras.Model):
            fail(f"models[{i}]", "a keras.Model", model, TypeError)
        if not model.built or len(model.inputs or ()) != 1 or len(model.outputs or ()) != 1:
            fail(f"models[{i}]", "a built model with one input and one output", model)
    shapes = {(tuple(m.input_shape[1:]), tuple(m.output_shape[1:])) for m in models}
    if len(shapes) != 1:
        fail("models", "models of one input shape and one output shape",
             sorted(shapes, key=str))
    for i, model in enumerate(models):
        model.name = f"member_{i}"
    inputs = keras.Input(tuple(models[0].input_shape[1:]))
    outputs = keras.layers.Average(name="mean")([m(inputs) for m in models])
    return keras.Model(inputs, outputs, name=name)
