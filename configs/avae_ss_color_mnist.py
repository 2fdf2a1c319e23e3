r"""AVAE-SS: post-train the encoder of a trained VAE on its decoder's own samples (no data read).

    python scripts/train.py --config configs/vae_color_mnist.py --workdir runs/vae_color_mnist
    python scripts/train.py --config configs/avae_ss_color_mnist.py --workdir runs/avae_ss_color_mnist \
        --config.model.vae_workdir=runs/vae_color_mnist

`model.vae_workdir` names the workdir of the trained VAE (its networks are copied; the `network`
values here only describe them). colorMNIST is named for the image shape and for evaluation only:
training reads no data. Arguments: `smoke`, `paper`; default: 2,000 steps.
"""

from ml_collections import config_dict

from tf_avae import train_lib


def get_config(arg=None):
    config = train_lib.color_mnist_config(
        {"name": "avae_ss", "vae_workdir": config_dict.placeholder(str), "rho": 0.975, "delusion": "sample",
         "batch_size": 64}, arg, num_steps=2000)
    if arg == "smoke":
        config.model.batch_size = config.train.batch_size
    return config
