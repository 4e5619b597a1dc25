"""keras_reg: a regularization toolkit for Keras 3 on TensorFlow.

Sub-packages: `layers` (dropout, drop path, stochastic depth, DropBlock, group norm, weight noise),
`data` (Mixup/CutMix, Cutout, label smoothing, augmentation, data loading for tf.data),
`regularizers` (schedulable L1/L2 and `apply` for existing models), `callbacks`, `blocks`,
`models` (small regularized classifiers built from the blocks), `metrics`, `tuning` (a KerasTuner
search of the regularization strength) and `distribute`.

`import keras_reg` imports neither TensorFlow nor Keras: the sub-packages are imported when
first used (`keras_reg.layers`, `from keras_reg import layers`), so that `keras_reg.__version__`
and the command line's help and argument errors answer at once.

Model files still need nothing but `import keras_reg`: as soon as Keras is imported (before or
after keras_reg) every sub-package is imported too, which registers every serializable keras_reg
class with Keras under the package name `keras_reg` (the layers, the regularizers, the data
transforms and the learning-rate schedule of the search), so that
`keras.models.load_model("best_model.keras")` finds them. Importing one sub-package by its
dotted name before Keras (`import keras_reg.layers` as the first import) registers the classes
that sub-package imports; `from keras_reg import layers` registers them all.

When keras_reg is what first imports TensorFlow, the C++ start-up messages TensorFlow writes to
standard error during that import are discarded (see `keras_reg._tf_logging`); set the
environment variable `KERAS_REG_TF_STARTUP_LOGS=1` to keep them.
"""

import importlib as _importlib
import importlib.abc as _importlib_abc
import importlib.util as _importlib_util
import sys as _sys

__version__ = "0.1.0"

_SUBPACKAGES = ("layers", "data", "regularizers", "callbacks", "blocks", "models", "metrics",
                "tuning", "distribute")

__all__ = [*_SUBPACKAGES, "__version__"]


def _import(name):
    """Imports `keras_reg.<name>` (TensorFlow's start-up messages silenced)."""
    from keras_reg import _tf_logging

    with _tf_logging.quiet_startup():
        return _importlib.import_module(f"{__name__}.{name}")


def _any_importing():
    """Whether a keras_reg module is being imported right now (further up this call stack)."""
    # Without this check, `import keras_reg.layers` as the first import would import the other
    # sub-packages while keras_reg.layers is half made (tests/test_package.py, "dotted").
    from keras_reg._compat import module_initializing

    return any(module_initializing(module) for name, module in list(_sys.modules.items())
               if name.startswith(f"{__name__}.") and module is not None)


def _register():
    """Imports every sub-package (registering their classes with Keras), unless one of them is
    being imported now, in which case that import's own imports are what gets registered."""
    if _any_importing():
        return
    for name in _SUBPACKAGES:
        _import(name)


def __getattr__(name):
    if name in _SUBPACKAGES:
        module = _import(name)
        _register()
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))


class _RegisterAfterKeras(_importlib_abc.MetaPathFinder, _importlib_abc.Loader):
    """Imports the sub-packages right after Keras itself is imported, wherever that happens.

    A finder placed first on `sys.meta_path` for the one name `keras`: it lets the other finders
    find Keras, runs Keras's own loader (TensorFlow's start-up messages silenced), then
    registers keras_reg's classes, and removes itself.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        _sys.meta_path.remove(self)
        spec = _importlib_util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        self.loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        from keras_reg import _tf_logging

        module.__spec__.loader = module.__loader__ = self.loader
        with _tf_logging.quiet_startup():
            self.loader.exec_module(module)
        _register()


if "keras" in _sys.modules:
    _register()
else:
    _sys.meta_path.insert(0, _RegisterAfterKeras())
