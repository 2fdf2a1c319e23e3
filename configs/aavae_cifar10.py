r"""AAVAE on CIFAR-10 with a ResNet-18 (CIFAR stem) encoder and SimCLR augmentation, KL removed.

    tf-avae-prepare-data cifar10          # once, needs network access
    python scripts/train.py --config configs/aavae_cifar10.py --workdir runs/aavae_cifar10

Arguments: `smoke` (sub-minute, narrow network), `paper` (the authors' budget: 3200 epochs of
batch 256 with lr 2.5e-4; a GPU job). The default is a narrow network and a short run that a
CPU finishes. The probe reads the pooled backbone features (`encoder.features`).
"""

from tf_avae import reproduce_lib, train_lib


def get_config(arg=None):
    train_lib.check_config_argument(arg)
    config = train_lib.base_config()
    config.data.name = "cifar10"
    reproduce_lib.resnet_network(config.network, arg)  # widths by argument; the authors' fixed scale 1
    # The authors' decoder mean is linear: a sigmoid mean saturates when no KL term bounds the codes.
    config.network.kwargs.mean_activation = "linear"
    config.model = {"name": "aavae", "beta": 0.0, "augmentation": {"name": "simclr", "preset": "cifar10"}}
    config.train.batch_size = 128
    config.train.learning_rate = 2.5e-4
    config.train.num_steps = 5000
    config.train.steps_per_epoch = 390
    if arg == "paper":
        config.train.batch_size = 256
        config.train.num_steps = 3200 * 195
        config.train.steps_per_epoch = 195
    if arg == "smoke":
        train_lib.smoke(config)
    return config
