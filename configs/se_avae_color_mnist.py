r"""SE-AVAE: both auxiliary terms, the decoder's delusion (rho) and the PGD perturbation (rho_SE).

    python scripts/train.py --config configs/se_avae_color_mnist.py --workdir runs/se_avae_color_mnist

Arguments: `smoke`, `paper` (~100k steps at batch 64).
"""

from tf_avae import train_lib


def get_config(arg=None):
    config = train_lib.color_mnist_config(train_lib.paper_model("se_avae"), arg)
    if arg == "smoke":
        config.model.pgd_steps = 2
    return config
