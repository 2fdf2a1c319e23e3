r"""AVAE paper Figure 5 (left): adversarial accuracy of the AVAE against the coupling rho (colorMNIST, ConvNet).

    python scripts/reproduce.py --config configs/rho_sweep_color_mnist.py --workdir runs/rho_sweep_color_mnist
    python scripts/reproduce.py --config configs/rho_sweep_color_mnist.py:smoke --workdir /tmp/rho_smoke

Six AVAEs (delusion "sample", beta 1) with rho in {0.5, 0.8, 0.9, 0.95, 0.975, 0.99}, one shared budget,
each evaluated at radii 0 / 0.1 / 0.2 (40 PGD steps). results.md has a table accuracy-vs-rho and
plots/sweep.png the curves. Paper claim: adversarial accuracy rises as rho -> 1.

Arguments: (none) 5000 steps of batch 64, Adam lr 1e-3, seed 0, evaluation on 5000 test examples
(~45 min on the shared 2-core CPU: ~5.5 min training + ~1.5 min evaluation per run); `smoke` (CI, about a
minute); `paper` (100k steps at lr 1e-4, whole test set).
"""

from tf_avae import reproduce_lib

RHOS = (0.5, 0.8, 0.9, 0.95, 0.975, 0.99)


def get_config(arg=None):
    config = reproduce_lib.experiment_config("rho_sweep")
    config.title = "AVAE adversarial accuracy against rho (paper Figure 5, left), colorMNIST ConvNet"
    reproduce_lib.color_mnist_conv(config)
    for rho in RHOS:
        name = "rho_" + f"{rho:g}".replace("0.", "")
        reproduce_lib.add_run(config, name, f"AVAE rho={rho:g}",
                              {"name": "avae", "rho": rho, "beta": 1.0, "delusion": "sample"})
    config.report.update({
        "sections": ("sweep",),
        "plots": ("sweep", "robustness"),
        "tasks": ("digit", "colour"),
        "time_reference": "",
        "sweep_key": "model.rho",
        "sweep_label": "rho",
        "claims": ("adversarial accuracy rises as rho -> 1 (paper Figure 5, left).",),
    })
    return reproduce_lib.apply_argument(config, arg)
