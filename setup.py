"""tf_avae: augmentation-augmented and autoencoding VAEs for robust representations (Keras 3 / TensorFlow)."""

import pathlib
import re

from setuptools import find_packages, setup

_HERE = pathlib.Path(__file__).parent
_VERSION = re.search(r'__version__ = "([^"]+)"', (_HERE / "tf_avae" / "__init__.py").read_text()).group(1)

setup(
    name="tf_avae",
    version=_VERSION,
    description="AAVAE, AVAE, smooth encoders and their evaluation (linear probes, PGD robustness) in Keras 3.",
    long_description=(_HERE / "README.md").read_text() if (_HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["tf_avae", "tf_avae.*"]),
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<4",
        "tensorflow-datasets>=4.9",
        "ml-collections>=1.0",
        "absl-py>=2.0",
        "numpy>=1.26",
        "scipy>=1.11",
        "scikit-learn>=1.4",
        "matplotlib>=3.8",
        "tensorboard>=2.21,<2.22",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3",
            "adversarial-robustness-toolbox>=1.20",
        ],
    },
    entry_points={
        "console_scripts": [
            "tf-avae-prepare-data=tf_avae.data.prepare:main",
        ],
    },
)
