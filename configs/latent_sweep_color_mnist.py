r"""Does the digit-robustness ceiling move with the latent dimension? (colorMNIST, ConvNet; not a paper experiment)

    python scripts/reproduce.py --config configs/latent_sweep_color_mnist.py --workdir runs/latent_sweep
    python scripts/reproduce.py --config configs/latent_sweep_color_mnist.py:smoke --workdir /tmp/latent_smoke

At eps 0.1 the two robust encoders here stop near 60% digit accuracy: the AVAE whose encoder input gets the
observation noise of its delusions (56.4%) and SE, trained against PGD itself (60.5%), where the paper reports 88.1
and 89.6. A ceiling shared by adversarial training points at the setting both share: the ConvNet, its latent
dimension D (64, the reference code's; the paper does not give it for its ConvNet), the linear probe on mu. This
sweep moves D: the noise-fed AVAE (rho 0.975, delusion "sample", input noise N(0, 0.5)) and SE (eps' 0.1, 5 steps,
rho_SE 0.95) at D in {16, 32, 64, 128}, each evaluated at radii 0 / 0.1 / 0.2 (40 PGD steps). results.md has the
accuracy-vs-D table (SE as the second series) and plots/sweep.png the curves.

The D = 64 runs have the training configs of Table 1's `noise_avae` and `se` (configs/reproduce_color_mnist.py),
so finished run directories of that experiment can be copied in as `noise_avae_d64` and `se_d64`.

Arguments: (none) 5000 steps of batch 64, Adam lr 1e-3, seed 0, evaluation on 5000 test examples (training plus
evaluation on one core of the shared 2-core CPU: ~11 min per noise-fed AVAE, 15-22 min per SE, longer at larger D);
`smoke` (CI); `paper` (100k steps at lr 1e-4, whole test set).
"""

from tf_avae import reproduce_lib

LATENT_DIMS = (16, 32, 64, 128)


def get_config(arg=None):
    config = reproduce_lib.experiment_config("latent_sweep")
    config.title = "The noise-fed AVAE and SE against the latent dimension, colorMNIST ConvNet"
    reproduce_lib.color_mnist_conv(config)
    pairs = [reproduce_lib.add_robust_pair(config, f"d{dim}", f"D={dim}", overrides={"network": {"latent_dim": dim}})
             for dim in LATENT_DIMS]
    noise_avaes, ses = zip(*pairs)
    reproduce_lib.robust_pair_report(
        config, noise_avaes, ses, sweep_key="network.latent_dim", sweep_label="latent dimension D",
        claim="(not a paper claim) whether the ~60% digit ceiling at eps 0.1 shared by the noise-fed AVAE and SE "
              "depends on the latent dimension.")
    return reproduce_lib.apply_argument(config, arg)
