r"""AAVAE vs VAE vs AE on the STL-10 linear probe (pre-training on the 100k `unlabelled` split; probes on
`train`, evaluation on `test`), same ResNet-18 encoder and budget, plus AAVAE's beta sweep (0, 0.01, 0.1, 1).

    tf-avae-prepare-data stl10            # once, needs network access
    python scripts/reproduce.py --config configs/aavae_vs_vae_stl10.py --workdir runs/aavae_vs_vae_stl10

Data come through tensorflow-datasets; when STL-10 is not prepared the run stops before training with
DatasetNotAvailableError saying how to prepare it (exit status 2). Probe feature: the pooled ResNet
backbone. SimCLR augmentation with the `stl10` preset (stronger jitter, blur p=0.5).

Arguments: (none) a CPU budget: ResNet-18 of width 16 (head 512) on 96x96 images, 500 steps of batch 32,
Adam lr 2.5e-4, seed 0; probes on the 5000 labelled train images, evaluation on 2000 test examples.
Measured ~2.3 s per AAVAE step on the shared 2-core CPU: ~20 min per run, ~2.5 h for the 6 runs with
evaluation. (Width 8 is not offered: a width-8 ResNet at 96x96 crashed TensorFlow on this machine.)
`smoke`: a tiny ResNet for 20 steps. `paper`: width 64 (head 2048), 3200 epochs of batch 256 over the
100k unlabelled images (390 steps each) at lr 2.5e-4 (the authors' CIFAR recipe; DESIGN.md gives no
STL-10 reference number).
"""

from tf_avae import reproduce_lib


def get_config(arg=None):
    config = reproduce_lib.aavae_vs_vae_experiment("stl10", preset="stl10")
    config.title = "AAVAE vs VAE vs AE on the linear probe, beta sweep: STL-10, ResNet-18"
    config.base.data.train_split = "unlabelled"
    config.base.data.eval_split = "test"
    reproduce_lib.resnet_probe_setting(config, arg)
    config.budget.update({"num_steps": 500, "batch_size": 32, "learning_rate": 2.5e-4, "steps_per_epoch": 250,
                          "seed": 0})
    config.eval_limit = 2000
    if arg == "paper":
        config.budget.update({"num_steps": 3200 * 390, "batch_size": 256, "steps_per_epoch": 390})
        config.eval_limit = None
    if arg == "smoke":
        reproduce_lib.smoke_experiment(config)
    return config
