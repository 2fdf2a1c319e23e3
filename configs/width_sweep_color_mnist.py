r"""Does the digit-robustness ceiling move with the ConvNet's width? (colorMNIST; not a paper experiment)

    python scripts/reproduce.py --config configs/width_sweep_color_mnist.py --workdir runs/width_sweep
    python scripts/reproduce.py --config configs/width_sweep_color_mnist.py:smoke --workdir /tmp/width_smoke

At eps 0.1 the two robust encoders here stop near 60% digit accuracy: the AVAE whose encoder input gets the
observation noise of its delusions (56.4%) and SE, trained against PGD itself (60.5%), where the paper reports 88.1
and 89.6. The latent dimension does not move that ceiling (configs/latent_sweep_color_mnist.py). This sweep moves
the network's width (the paper's ConvNet is not given in the text we have): the filters of both convolution stages
and the dense layer of encoder and decoder scale together, x0.5 / x1 / x2 of ours (filters 32, 64 and 256 dense
units), i.e. dense units 128 / 256 / 512, the swept value; x3 (768) and x4 (1024) run only when named in
`--config.run_names`. The paper's plain AVAE (Table 1's `avae`, no input noise) at each width, `avae_w05` ...
`avae_w4`, runs only when named too (the report's third, dash-dotted series).
Same two models as the latent sweep (the noise-fed AVAE with rho 0.975, delusion "sample", input noise N(0, 0.5); SE
with eps' 0.1, 5 steps, rho_SE 0.95), evaluated at radii 0 / 0.1 / 0.2 (40 PGD steps).

The x1 runs are Table 1's `noise_avae` and `se` (configs/reproduce_color_mnist.py): same training configs (the
network's default width is not spelled out, so finished run directories of that experiment can be copied in as
`noise_avae_w1` and `se_w1`).

Arguments: (none) 5000 steps of batch 64, Adam lr 1e-3, seed 0, evaluation on 5000 test examples (training plus
evaluation on one core of the shared 2-core CPU: x2 trained 3.6x (SE) to 5.6x (AVAE, beside two other jobs) as long
as x1); `smoke` (CI); `paper` (100k steps at lr 1e-4, whole test set).
"""

from tf_avae import reproduce_lib, train_lib

WIDTHS = reproduce_lib.CONV_WIDTHS  # suffix -> (multiplier, network kwargs)
# only when named (--config.run_names): x3 costs ~2x x2, x4 ~1.6x x3's step time
ONLY_WHEN_NAMED = ("w3", "w4")
DEFAULT_DENSE_UNITS = 256


def get_config(arg=None):
    config = reproduce_lib.experiment_config("width_sweep")
    config.title = "The noise-fed AVAE and SE against the ConvNet's width, colorMNIST"
    reproduce_lib.color_mnist_conv(config)
    # width suffix -> (multiplier, the runs' config overrides)
    widths = {suffix: (multiplier, {"network": {"kwargs": kwargs}} if kwargs else None)
              for suffix, (multiplier, kwargs) in WIDTHS.items()}
    pairs = [reproduce_lib.add_robust_pair(config, suffix, f"width x{multiplier:g}", overrides=overrides,
                                           default=suffix not in ONLY_WHEN_NAMED)
             for suffix, (multiplier, overrides) in widths.items()]
    noise_avaes, ses = zip(*pairs)
    # the paper's plain AVAE (Table 1's `avae`, no input noise) at each width, only when named: does capacity
    # alone make it robust?
    plain = tuple(f"avae_{suffix}" for suffix in widths)
    for name, (multiplier, overrides) in zip(plain, widths.values()):
        reproduce_lib.add_run(config, name, f"AVAE (as the paper writes it), width x{multiplier:g}",
                              train_lib.paper_model("avae"), overrides=overrides, default=False, curve=True,
                              note="Table 1's AVAE: no noise on its encoder's input")
    reproduce_lib.robust_pair_report(
        config, noise_avaes, ses, sweep_key="network.kwargs.dense_units",
        sweep_label="dense units (conv filters scale with them)", sweep_default=DEFAULT_DENSE_UNITS,
        sweep_extra_runs=plain, sweep_extra_label="AVAE (plain)", curve_runs=ses + plain,
        claim="(not a paper claim) whether the ~60% digit ceiling at eps 0.1 shared by the noise-fed AVAE and SE "
              "depends on the ConvNet's width.")
    return reproduce_lib.apply_argument(config, arg)
