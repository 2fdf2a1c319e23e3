r"""AAVAE vs VAE vs AE on the linear probe, same ConvNet encoder and budget, plus AAVAE's beta sweep (colorMNIST).

    python scripts/reproduce.py --config configs/aavae_vs_vae_color_mnist.py --workdir runs/aavae_vs_vae_color_mnist
    python scripts/reproduce.py --config configs/aavae_vs_vae_color_mnist.py:smoke --workdir /tmp/aavae_smoke

Runs offline (real MNIST from the local cache). Runs: AE, VAE (beta 1), AAVAE (beta 0, the paper's "KL
removed") and AAVAE with beta 0.01 / 0.1 / 1; the AAVAE augmentation is the `color_mnist` SimCLR preset
(crops >= half the area, brightness/contrast/saturation jitter, no hue or grey so the colour label
survives). Every decoder has a linear mean (the AAVAE authors'; a sigmoid mean stalls the AE and the beta-0 AAVAE
at the mean image). Probe feature: the posterior mean (ConvNet). Evaluation: clean linear-probe accuracy (digit,
colour), MSE, classifier FID.

Arguments: (none) 5000 steps of batch 64, Adam lr 1e-3, seed 0 (~40 min for the 6 runs on the shared 2-core
CPU); `smoke` (CI); `paper` (100k steps at lr 1e-4).
"""

from tf_avae import reproduce_lib


def get_config(arg=None):
    config = reproduce_lib.aavae_vs_vae_experiment("color_mnist", preset="color_mnist")
    config.title = "AAVAE vs VAE vs AE on the linear probe, beta sweep: colorMNIST, ConvNet"
    reproduce_lib.color_mnist_conv(config, eval_limit=None)
    config.report.tasks = ("digit", "colour")
    return reproduce_lib.apply_argument(config, arg, paper_eval_limit=False)
