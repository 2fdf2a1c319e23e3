r"""AVAE-SS: post-train the encoder of a trained VAE on its decoder's own samples (no data read).

    python scripts/train.py --config configs/vae_color_mnist.py --workdir runs/vae_color_mnist
    python scripts/train.py --config configs/avae_ss_color_mnist.py --workdir runs/avae_ss_color_mnist \
        --config.model.vae_workdir=runs/vae_color_mnist

`model.vae_workdir` names the workdir of the trained VAE (its config decides the networks; the
networks here must match it). Arguments: `smoke`, `paper`.
"""

from ml_collections import config_dict

from tf_avae import train_lib


def get_config(arg=None):
    config = train_lib.base_config()
    config.data.name = "color_mnist"  # only for the image shape and the evaluation: no data is read
    config.network.architecture = "conv"
    config.model = {"name": "avae_ss", "vae_workdir": config_dict.placeholder(str), "rho": 0.975,
                    "delusion": "sample", "batch_size": 64}
    config.train.learning_rate = 1e-3
    config.train.num_steps = 2000
    if arg == "paper":
        config.train.learning_rate = 1e-4
        config.train.num_steps = 50_000
        config.train.steps_per_epoch = 1000
    if arg == "smoke":
        train_lib.smoke(config)
        config.model.batch_size = config.train.batch_size
    return config
