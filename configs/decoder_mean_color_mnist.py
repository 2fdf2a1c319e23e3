r"""Table 1's VAE and AVAEs with a linear decoder mean in place of the sigmoid (colorMNIST; not a paper experiment)

    python scripts/reproduce.py --config configs/decoder_mean_color_mnist.py --workdir runs/decoder_mean
    python scripts/reproduce.py --config configs/decoder_mean_color_mnist.py:smoke --workdir /tmp/decoder_mean_smoke

Table 1's runs (configs/reproduce_color_mnist.py) use the AVAE reference code's Gaussian decoder, whose mean is a
sigmoid. At twice the ConvNet's width and Adam lr 1e-3 that setting collapses in its first epoch (a constant
encoder, code spread ~3e-4 per dimension): the VAE and the noise-augmented VAE as well as the plain AVAE, while a VAE
with a linear mean (the AAVAE authors' decoder) trains there. This experiment trains the same models with the linear
mean, everything else as in Table 1:
  vae_linear          VAE
  avae_linear         the paper's AVAE (rho 0.975, delusion "sample"), with its robustness curve
  noise_avae_linear   the AVAE whose encoder input gets the observation noise N(0, 0.5) (Table 1's `noise_avae`)
  vae_linear_w2, avae_linear_w2   the VAE and the AVAE at twice the width (filters 64 / 128, 512 dense units, the
                      width sweep's x2), only when named in --config.run_names
  avae_linear_w3      the AVAE at three times the width (filters 96 / 192, 768 dense units), only when named
  vae_sigmoid_w2, noise_vae_sigmoid_w2   controls, only when named: the VAE and Table 1's noise-augmented VAE at x2
                      with the sigmoid mean (Table 1's decoder)
Does the decoder's output activation change the AVAE's robustness, and does the collapse at x2 go away?

Arguments: (none) 5000 steps of batch 64, Adam lr 1e-3, seed 0, evaluation on 5000 test examples, as Table 1
(training on one core of the 2-core CPU: ~4.5 min per x1 AVAE, 13.5 min at x2, 25.5 min at x3; evaluation 1.5-4
min per run); `smoke` (CI); `paper` (100k steps at lr 1e-4, whole test set).
"""

from tf_avae import reproduce_lib, train_lib

_, X2 = reproduce_lib.CONV_WIDTHS["w2"]  # the width sweep's x2 and x3
_, X3 = reproduce_lib.CONV_WIDTHS["w3"]


def get_config(arg=None):
    config = reproduce_lib.experiment_config("decoder_mean")
    config.title = "Table 1's VAE and AVAEs with a linear decoder mean, colorMNIST ConvNet"
    reproduce_lib.color_mnist_conv(config)
    config.base.network.kwargs.mean_activation = "linear"
    add = reproduce_lib.add_run
    vae, avae = {"name": "vae", "beta": 1.0}, train_lib.paper_model("avae")
    add(config, "vae_linear", "VAE, linear mean", vae, paper="VAE")
    add(config, "avae_linear", "AVAE, linear mean", avae, curve=True, paper="AVAE")
    add(config, "noise_avae_linear", "AVAE + input noise (sd sqrt(0.5)), linear mean",
        reproduce_lib.with_observation_noise(avae), role="control",
        note="encoder input x + N(0, v) noise, the noise of its delusions x~")
    x2, x2_sigmoid = ({"network": {"kwargs": {**X2, **mean}}} for mean in ({}, {"mean_activation": "sigmoid"}))
    add(config, "vae_linear_w2", "VAE, linear mean, width x2", vae, overrides=x2, default=False)
    add(config, "avae_linear_w2", "AVAE, linear mean, width x2", avae, overrides=x2, curve=True, default=False)
    add(config, "avae_linear_w3", "AVAE, linear mean, width x3", avae, overrides={"network": {"kwargs": X3}},
        curve=True, default=False)
    add(config, "vae_sigmoid_w2", "VAE, sigmoid mean, width x2", vae, overrides=x2_sigmoid, role="control",
        default=False, note="Table 1's decoder at x2 width")
    add(config, "noise_vae_sigmoid_w2", "VAE + input noise (sd sqrt(0.5)), sigmoid mean, width x2",
        reproduce_lib.with_observation_noise({"name": "aavae", "beta": 1.0}), overrides=x2_sigmoid,
        role="control", default=False, note="Table 1's noise_vae at x2 width")
    reproduce_lib.table1_report(
        config, time_reference="vae_linear", curve_runs=("avae_linear", "avae_linear_w2", "avae_linear_w3"),
        comparisons=(
            {"run": "avae_linear", "against": "vae_linear",
             "question": "With a linear decoder mean, is the AVAE more robust than the VAE?"},
            {"run": "noise_avae_linear", "against": "avae_linear",
             "question": "With a linear decoder mean, does the input noise add robustness to the AVAE?"},
            {"run": "avae_linear_w2", "against": "vae_linear_w2",
             "question": "At x2 width with a linear decoder mean, is the AVAE more robust than the VAE?"},
        ),
        claim="(not a paper claim) whether the decoder mean's activation (sigmoid in Table 1) moves the AVAE's "
              "robustness, and whether the collapse at x2 width and lr 1e-3 is the sigmoid's.")
    return reproduce_lib.apply_argument(config, arg)
