"""Wall-clock time of one training step of VAE, AVAE, SE and SE-AVAE, relative to the VAE.

Every model gets the same ConvNet (fresh copies built from the same seed), the same batch of random
colorMNIST-shaped images (28x28x3 in [0, 1]) and Adam. Each model's compiled step is traced and warmed
up first (excluded); then the models take turns, `--repeats` times (the order rotates every repeat),
each timing `--steps_per_repeat` calls of `train_on_batch` (compiled `tf.function` step; the returned
logs are fetched, so every call waits for its step to finish). A model's step time is the median over
repeats of the per-step time; ratios divide by the VAE's median. Interleaving keeps a slow patch of a
shared machine from landing on one model only.

With `--profile` (the default) it also times, in the same rotation, the pieces that explain the SE's
cost: the PGD attack alone (`SmoothEncoder.adversarial_images`, `--pgd_steps` steps), one encoder
forward pass, and one encoder forward + backward pass w.r.t. its weights.

    python scripts/benchmark_step_time.py                       # writes benchmarks/step_time.json
    python scripts/benchmark_step_time.py --repeats 5 --output /tmp/t.json

Paper (Cemgil et al. 2020, Table 1, colorMNIST ConvNet): AVAE x1.5, SE(5 steps) x4, SE-AVAE x4.7.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 64, "Batch size of every step.")
flags.DEFINE_integer("latent_dim", 64, "Latent dimension (the reference code uses 64).")
flags.DEFINE_integer("pgd_steps", 5, "PGD steps of SE and SE-AVAE (the paper's SE uses 5).")
flags.DEFINE_float("epsilon", 0.1, "PGD radius (L-inf) of SE and SE-AVAE.")
flags.DEFINE_integer("warmup_steps", 3, "Untimed steps per model after tracing.")
flags.DEFINE_integer("repeats", 15, "Timed rounds; each model is timed once per round.")
flags.DEFINE_integer("steps_per_repeat", 5, "Steps per model per round.")
flags.DEFINE_boolean("profile", True, "Also time the attack alone and encoder passes.")
flags.DEFINE_integer("seed", 0, "Seed of the weights and the random batch.")
flags.DEFINE_string("output", "benchmarks/step_time.json", "Where to write the JSON results.")

IMAGE_SHAPE = (28, 28, 3)


def _build_models():
    import keras

    from tf_avae import models
    from tf_avae.networks import build_networks

    def networks():
        keras.utils.set_random_seed(FLAGS.seed)  # the same initial weights for every model
        return build_networks("conv", IMAGE_SHAPE, FLAGS.latent_dim)

    attack = dict(epsilon=FLAGS.epsilon, pgd_steps=FLAGS.pgd_steps)
    built = {
        "VAE": models.VAE(*networks(), beta=1.0, seed=1),
        "AVAE": models.AVAE(*networks(), rho=0.975, seed=1),
        f"SE({FLAGS.pgd_steps})": models.SmoothEncoder(*networks(), rho=0.95, seed=1, **attack),
        f"SE-AVAE({FLAGS.pgd_steps})": models.SEAVAE(*networks(), rho=0.975, se_rho=0.95, seed=1, **attack),
    }
    for model in built.values():
        model.compile(optimizer=keras.optimizers.Adam(1e-4))
    return built


def _step_runners(built, batch):
    """name -> zero-argument callable running one compiled step and waiting for its result."""
    runners = {}
    for name, model in built.items():
        model.make_train_function()
        runners[name] = lambda model=model: model.train_on_batch(batch, return_dict=True)
    return runners


def _profile_runners(built, batch):
    import tensorflow as tf

    se = next(model for name, model in built.items() if name.startswith("SE("))
    encoder = se.encoder
    step = tf.constant(0, tf.int64)

    @tf.function
    def attack(x):
        return se.adversarial_images(x, step)

    @tf.function
    def encoder_forward(x):
        return encoder(x, training=True)

    @tf.function
    def encoder_forward_backward(x):
        with tf.GradientTape() as tape:
            mean, log_variance = encoder(x, training=True)
            loss = tf.reduce_sum(mean) + tf.reduce_sum(log_variance)
        return tape.gradient(loss, encoder.trainable_variables)

    def run(fn):
        return lambda: tf.nest.map_structure(lambda t: t.numpy(), fn(batch))

    return {
        f"profile: SE attack alone ({FLAGS.pgd_steps} PGD steps)": run(attack),
        "profile: encoder forward": run(encoder_forward),
        "profile: encoder forward+backward (weights)": run(encoder_forward_backward),
    }


def _measure(runners):
    for run in runners.values():  # tracing + warm-up, not timed
        for _ in range(1 + FLAGS.warmup_steps):
            run()
    names = list(runners)
    samples = {name: [] for name in names}
    for repeat in range(FLAGS.repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            run = runners[name]
            start = time.perf_counter()
            for _ in range(FLAGS.steps_per_repeat):
                run()
            samples[name].append((time.perf_counter() - start) / FLAGS.steps_per_repeat)
    return samples


def _quartiles(values):
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], q[2]


def main(argv):
    del argv
    import keras
    import numpy as np
    import tensorflow as tf

    batch = np.random.default_rng(FLAGS.seed).random((FLAGS.batch_size, *IMAGE_SHAPE)).astype(np.float32)
    built = _build_models()
    runners = _step_runners(built, batch)
    model_names = list(runners)
    if FLAGS.profile:
        runners.update(_profile_runners(built, tf.constant(batch)))
    samples = _measure(runners)

    baseline = statistics.median(samples["VAE"])
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        low, high = _quartiles(values)
        rows.append({
            "name": name,
            "kind": "model step" if name in model_names else "profile",
            "median_ms": 1e3 * median,
            "q1_ms": 1e3 * low,
            "q3_ms": 1e3 * high,
            "ratio_to_vae": median / baseline,
            "samples_ms": [1e3 * v for v in values],
        })

    result = {
        "what": "seconds per compiled training step (train_on_batch), median over interleaved repeats",
        "config": {
            "batch_size": FLAGS.batch_size, "image_shape": list(IMAGE_SHAPE), "latent_dim": FLAGS.latent_dim,
            "network": "tf_avae conv (build_networks defaults: filters (32, 64), dense 256), Gaussian var 0.5",
            "optimizer": "Adam(1e-4)", "pgd_steps": FLAGS.pgd_steps, "epsilon": FLAGS.epsilon, "norm": "inf",
            "warmup_steps": FLAGS.warmup_steps, "repeats": FLAGS.repeats, "steps_per_repeat": FLAGS.steps_per_repeat,
            "data": "uniform random images in [0, 1), one fixed batch",
        },
        "environment": {
            "tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "results": rows,
    }
    output = Path(FLAGS.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\nStep time, batch {FLAGS.batch_size}, 28x28x3 ConvNet, median of {FLAGS.repeats} interleaved repeats "
          f"x {FLAGS.steps_per_repeat} steps (tf {tf.__version__}, {os.cpu_count()} CPUs)\n")
    print("| step | median ms | IQR ms | x VAE |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['name']} | {row['median_ms']:.1f} | {row['q1_ms']:.1f}-{row['q3_ms']:.1f} "
              f"| {row['ratio_to_vae']:.2f} |")
    print(f"\nwrote {output}")


if __name__ == "__main__":
    app.run(main)
