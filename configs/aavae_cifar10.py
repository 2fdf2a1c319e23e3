r"""AAVAE on CIFAR-10 with a ResNet-18 (CIFAR stem) encoder and SimCLR augmentation, KL removed.

    tf-avae-prepare-data cifar10          # once, needs network access
    python scripts/train.py --config configs/aavae_cifar10.py --workdir runs/aavae_cifar10

Arguments: `smoke` (sub-minute, narrow network), `paper` (the authors' budget: 3200 epochs of
batch 256 with lr 2.5e-4; a GPU job). The default is a narrow network and a short run that a
CPU finishes. The probe reads the pooled backbone features (`encoder.features`).
"""

from tf_avae import train_lib
from tf_avae.validation import check_choice


def get_config(arg=None):
    check_choice("config argument (configs/<name>.py:<argument>)", arg, train_lib.CONFIG_ARGUMENTS)
    config = train_lib.base_config()
    config.data.name = "cifar10"
    config.network.architecture = "resnet"
    config.network.latent_dim = 128
    config.network.observation_variance = 1.0  # Gaussian likelihood with fixed scale 1, as the authors
    # The authors' decoder mean is linear: a sigmoid mean saturates when no KL term bounds the codes.
    config.network.kwargs = {"width": 16, "head_units": 512, "mean_activation": "linear"}
    config.model = {"name": "aavae", "beta": 0.0, "augmentation": {"name": "simclr", "preset": "cifar10"}}
    config.train.batch_size = 128
    config.train.learning_rate = 2.5e-4
    config.train.num_steps = 5000
    config.train.steps_per_epoch = 390
    if arg == "paper":
        config.network.kwargs.update({"width": 64, "head_units": 2048})
        config.train.batch_size = 256
        config.train.num_steps = 3200 * 195
        config.train.steps_per_epoch = 195
    if arg == "smoke":
        train_lib.smoke(config)
        config.network.kwargs.update({"width": 4, "blocks_per_stage": (1, 1, 1, 1), "head_units": 16})
    return config
