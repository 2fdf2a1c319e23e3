r"""AAVAE vs VAE vs AE on the CIFAR-10 linear probe, same ResNet-18 (CIFAR stem) encoder and budget, plus
AAVAE's beta sweep (beta 0, 0.01, 0.1, 1).

    tf-avae-prepare-data cifar10          # once, needs network access
    python scripts/reproduce.py --config configs/aavae_vs_vae_cifar10.py --workdir runs/aavae_vs_vae_cifar10

Data come through tensorflow-datasets; when CIFAR-10 is not prepared the run stops before training with
DatasetNotAvailableError saying how to prepare it (exit status 2). The probe reads the ResNet's pooled
backbone features (eval feature "auto"). Gaussian likelihood with fixed scale 1, SimCLR augmentation
(`cifar10` preset), as the AAVAE authors.

Arguments: (none) a CPU budget: ResNet-18 of width 16 (head 512), 2000 steps of batch 64, Adam lr 2.5e-4,
seed 0; probes on all 50k train images, evaluation on 5000 test examples. Measured ~0.55 s per AAVAE step
on the shared 2-core CPU: ~20 min per run, ~2.5 h for the 6 runs with evaluation. `smoke`: a tiny ResNet
for 20 steps. `paper`: width 64 (head 2048), 3200 epochs of batch 256 (195 steps each) at lr 2.5e-4 (the
authors used a ResNet-50; ours is a ResNet-18).
"""

from tf_avae import reproduce_lib


def get_config(arg=None):
    config = reproduce_lib.aavae_vs_vae_experiment("cifar10", preset="cifar10", paper="AAVAE (CIFAR-10, ResNet-50)")
    config.title = "AAVAE vs VAE vs AE on the linear probe, beta sweep: CIFAR-10, ResNet-18"
    reproduce_lib.resnet_probe_setting(config, arg)
    config.budget.update({"num_steps": 2000, "batch_size": 64, "learning_rate": 2.5e-4, "steps_per_epoch": 500,
                          "seed": 0})
    config.eval_limit = 5000
    if arg == "paper":
        config.budget.update({"num_steps": 3200 * 195, "batch_size": 256, "steps_per_epoch": 195})
        config.eval_limit = None
    if arg == "smoke":
        reproduce_lib.smoke_experiment(config)
    return config
