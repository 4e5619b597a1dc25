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
        # Upper bounds: the newest releases the suite (and keras_reg.distribute's
        # TESTED_KERAS_VERSIONS) was run on; raise them after running it on newer ones.
        "tensorflow>=2.16,<2.22",
        "keras>=3.3,<3.16",
        "keras-tuner>=1.4,<1.5",
        # KerasTuner imports tensorboard in every trial on the TF backend; without it every
        # trial fails silently.
        "tensorboard",
        "tensorflow-datasets",
        "scikit-learn",
        "scipy",
        "matplotlib",
        "numpy",
    ],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6"],
        "jax": ["jax[cpu]"],
    },
    entry_points={"console_scripts": ["keras-reg=keras_reg.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
