r"""AVAE (ConvNet) on colorMNIST: the README's main job.

    python scripts/train.py --config configs/avae_color_mnist.py --workdir runs/avae_color_mnist

Arguments after a colon: `smoke` (a sub-minute run for tests and CI) or `paper` (the paper's
budget: ~100k steps at batch 64, lr 1e-4). The default is a small CPU budget (3,000 steps, lr 1e-3;
a few minutes on 2 cores). Any value can be overridden, e.g. `--config.model.rho=0.99
--config.model.delusion=mean`.
"""

from tf_avae import train_lib


def get_config(arg=None):
    return train_lib.color_mnist_config(train_lib.paper_model("avae"), arg)
