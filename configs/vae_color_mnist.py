r"""Plain VAE (ConvNet) on colorMNIST: the baseline of the AVAE paper's Table 1.

    python scripts/train.py --config configs/vae_color_mnist.py --workdir runs/vae_color_mnist

Arguments: `smoke` (sub-minute), `paper` (~100k steps at batch 64); default: 3,000 steps.
"""

from tf_avae import train_lib


def get_config(arg=None):
    return train_lib.color_mnist_config({"name": "vae", "beta": 1.0}, arg)
