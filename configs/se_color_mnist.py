r"""Smooth encoder (SE): AVAE-style coupling to a PGD perturbation of x (ConvNet, colorMNIST).

    python scripts/train.py --config configs/se_color_mnist.py --workdir runs/se_color_mnist

Paper settings: eps' = 0.1 (or 0.2), 5 PGD steps, rho_SE = 0.95. Arguments: `smoke`, `paper`.
"""

from tf_avae import train_lib


def get_config(arg=None):
    config = train_lib.base_config()
    config.data.name = "color_mnist"
    config.network.architecture = "conv"
    config.model = {"name": "se", "epsilon": 0.1, "pgd_steps": 5, "rho": 0.95, "beta": 1.0, "norm": "inf"}
    config.train.learning_rate = 1e-3
    config.train.num_steps = 3000
    if arg == "paper":
        config.train.learning_rate = 1e-4
        config.train.num_steps = 100_000
        config.train.steps_per_epoch = 1000
    if arg == "smoke":
        train_lib.smoke(config)
        config.model.pgd_steps = 2
    return config
