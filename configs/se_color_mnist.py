r"""Smooth encoder (SE): AVAE-style coupling to a PGD perturbation of x (ConvNet, colorMNIST).

    python scripts/train.py --config configs/se_color_mnist.py --workdir runs/se_color_mnist

Paper settings: eps' = 0.1 (or 0.2), 5 PGD steps, rho_SE = 0.95. Arguments: `smoke`, `paper`.
"""

from tf_avae import train_lib


def get_config(arg=None):
    config = train_lib.color_mnist_config(train_lib.paper_model("se"), arg)
    if arg == "smoke":
        config.model.pgd_steps = 2
    return config
