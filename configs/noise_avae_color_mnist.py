r"""AVAE whose data path sees the delusion's noise (ConvNet, colorMNIST): the AVAE that is robust here.

    python scripts/train.py --config configs/noise_avae_color_mnist.py --workdir runs/noise_avae_color_mnist

The encoder's input x gets the likelihood's observation noise N(0, v) in training (`model.augmentation`, as
AAVAE's), so the data it encodes look like the decoder's samples x~ ~ p(x|z) that the delusion term trains it on.
The plain AVAE (`configs/avae_color_mnist.py`) encodes clean x and noisy x~; here it was not robust, this one was
(docs/results.md, "When the AVAE is robust"). The noise's stddev is sqrt(v) at the default v = 0.5: override both
together, e.g. `--config.network.observation_variance=0.2 --config.model.augmentation.stddev=0.4472`.

Arguments after a colon: `smoke` or `paper`, as in every training config (configs/avae_color_mnist.py).
"""

import math

from tf_avae import train_lib


def get_config(arg=None):
    variance = train_lib.base_config().network.observation_variance
    return train_lib.color_mnist_config(
        train_lib.paper_model("avae", augmentation={"name": "gaussian_noise", "stddev": math.sqrt(variance)}), arg)
