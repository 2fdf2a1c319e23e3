r"""AVAE paper Figure 5 (right): AVAE vs SE (eps' = 0.1) evaluated at radii 0 ... 0.3 (colorMNIST, ConvNet).

    python scripts/reproduce.py --config configs/eps_sweep_color_mnist.py --workdir runs/eps_sweep_color_mnist
    python scripts/reproduce.py --config configs/eps_sweep_color_mnist.py:smoke --workdir /tmp/eps_smoke

Trains the AVAE (rho 0.975, delusion "sample") and the smooth encoder (PGD eps' 0.1, 5 steps, rho_SE
0.95) with one budget and evaluates both at radii 0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3 (40 PGD steps). Their
training configs equal those of the same runs in configs/reproduce_color_mnist.py (robustness curve included),
so finished run directories of that experiment can be copied in: only the evaluation then runs.
Paper claim: the AVAE degrades gracefully with eps while SE collapses beyond its training radius.

Only when named in `--config.run_names`: `noise_avae`, the AVAE whose encoder input gets the observation noise
N(0, 0.5) of its delusions (the AVAE that is robust here; docs/results.md, "When the AVAE is robust"), compared
with SE up to and beyond SE's training radius. Its training config is Table 1's `noise_avae`, so that run directory
can be copied in too.

Arguments: (none) 5000 steps of batch 64, Adam lr 1e-3, seed 0, evaluation on 5000 test examples
(~25 min on the shared 2-core CPU); `smoke` (CI, well under a minute of training); `paper` (100k steps at
lr 1e-4, whole test set).
"""

from tf_avae import reproduce_lib, train_lib


def get_config(arg=None):
    config = reproduce_lib.experiment_config("eps_sweep")
    config.title = "AVAE vs SE against the attack radius (paper Figure 5, right), colorMNIST ConvNet"
    reproduce_lib.color_mnist_conv(config)
    config.evaluation.radii = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
    avae = train_lib.paper_model("avae")
    reproduce_lib.add_run(config, "avae", "AVAE", avae, curve=True)
    reproduce_lib.add_run(config, "se", "SE (eps'=0.1, 5 steps)",
                          train_lib.paper_model("se"),
                          curve=True)
    reproduce_lib.add_run(config, "noise_avae", "AVAE + input noise N(0, 0.5)",
                          reproduce_lib.with_observation_noise(avae),
                          role="control", default=False,
                          note="encoder input x + N(0, v) noise, the noise of its delusions x~")
    config.report.update({
        "sections": ("radii", "comparisons", "table"),
        "plots": ("robustness",),
        "tasks": ("digit", "colour"),
        "time_reference": "avae",
        "comparisons": ({"run": "avae", "against": "se",
                         "question": "Is the AVAE more robust than SE (all radii; beyond SE's training radius 0.1 "
                                     "the paper says yes)?"},
                        {"run": "noise_avae", "against": "se", "radii": (0.05, 0.1),
                         "question": "Up to SE's training radius 0.1: is the AVAE fed its delusions' noise more "
                                     "robust than SE (in the paper the AVAE is about as robust at 0.1)?"},
                        {"run": "noise_avae", "against": "se", "radii": (0.15, 0.2, 0.25, 0.3),
                         "question": "Beyond SE's training radius: is the AVAE fed its delusions' noise more robust "
                                     "than SE (the paper says the AVAE is)?"}),
        "claims": ("the AVAE degrades gracefully with eps while SE collapses beyond its training radius eps'=0.1 "
                   "(paper Figure 5, right).",),
    })
    return reproduce_lib.apply_argument(config, arg)
