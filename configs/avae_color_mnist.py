r"""AVAE (ConvNet) on colorMNIST: the README's main job.

    python scripts/train.py --config configs/avae_color_mnist.py --workdir runs/avae_color_mnist

Arguments after a colon: `smoke` (a sub-minute run for tests and CI) or `paper` (the paper's
budget: ~100k steps at batch 64). The default is a small CPU budget (about 5 minutes on 2 cores).
Any value can be overridden, e.g. `--config.model.rho=0.99 --config.model.delusion=mean`.
"""

from tf_avae import train_lib


def get_config(arg=None):
    config = train_lib.base_config()
    config.data.name = "color_mnist"
    config.network.architecture = "conv"
    config.network.latent_dim = 64
    config.model = {"name": "avae", "rho": 0.975, "beta": 1.0, "delusion": "sample"}
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
