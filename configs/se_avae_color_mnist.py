r"""SE-AVAE: both auxiliary terms, the decoder's delusion (rho) and the PGD perturbation (rho_SE).

    python scripts/train.py --config configs/se_avae_color_mnist.py --workdir runs/se_avae_color_mnist

Arguments: `smoke`, `paper` (~100k steps at batch 64).
"""

from tf_avae import train_lib


def get_config(arg=None):
    config = train_lib.base_config()
    config.data.name = "color_mnist"
    config.network.architecture = "conv"
    config.model = {"name": "se_avae", "rho": 0.975, "se_rho": 0.95, "epsilon": 0.1, "pgd_steps": 5,
                    "beta": 1.0, "delusion": "sample"}
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
