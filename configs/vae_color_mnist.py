r"""Plain VAE (ConvNet) on colorMNIST: the baseline of the AVAE paper's Table 1.

    python scripts/train.py --config configs/vae_color_mnist.py --workdir runs/vae_color_mnist

Arguments: `smoke` (sub-minute), `paper` (~100k steps at batch 64); default: a small CPU budget.
"""

from tf_avae import train_lib


def get_config(arg=None):
    config = train_lib.base_config()
    config.data.name = "color_mnist"
    config.network.architecture = "conv"
    config.network.latent_dim = 64
    config.model = {"name": "vae", "beta": 1.0}
    config.train.batch_size = 64
    config.train.learning_rate = 1e-3
    config.train.num_steps = 3000
    config.train.steps_per_epoch = 500
    if arg == "paper":
        config.train.learning_rate = 1e-4
        config.train.num_steps = 100_000
        config.train.steps_per_epoch = 1000
    if arg == "smoke":
        train_lib.smoke(config)
    return config
