r"""Times the AVAE authors' JAX/Haiku reference on this machine, so `scripts/benchmark.py` can compare `model.fit` with
it like for like (the issue's reference figures, 8,868 / 7,142 img/s, were measured on another machine).

This script does not import tf_avae and runs in its own environment: the reference wants JAX, Haiku, optax, dill,
TensorFlow and tfds, and `numpy<2` (its decoder calls `np.product`). It drives the reference's own program: its
`train_main.main` with the flags of its `run.sh` (latent 64, rho 0.975; default batch 64, observation variance 0.5,
lr 1e-4, a test batch every 1000 steps), its `train.train` loop, its encoder, decoder and ELBOs and its colorMNIST
colouring. Only the source of MNIST differs: `tfds.load('mnist')` needs the network, so the reference's
`ColorMnistDataIterator` reads the 28 x 28 digits from tf_avae's local cache (`tf-avae-prepare-data mnist`) through
the same batch-and-repeat `tf.data` pipeline, with its own `__next__` (the colouring) unchanged. Two shims for
today's JAX: the checkpointer's `jax.tree_map` / `jax.host_id` aliases, and `vae_elbo`'s `in_axes=[0]` for a
two-argument function (an error since JAX checks the list's length; read as 0, as `avae_elbo`'s [0, 0]).

Timing: the loop saves a checkpoint every 1000 steps, and saving fetches the parameters (`jax.device_get`), so each
1000-step interval between two saves is finished work. The median interval gives images/s; each includes the
loop's test batch and checkpoint, as the reference's loop does.

Set up once (a checkout of https://github.com/google-deepmind/deepmind-research holds `avae/`):

  python -m venv ~/avae_ref && ~/avae_ref/bin/pip install "jax[cpu]" dm-haiku optax dill "numpy<2" \
      tensorflow-cpu tensorflow-datasets absl-py
  ~/avae_ref/bin/python scripts/jax_reference.py --reference_dir=PATH/deepmind-research --output=ref.json

`scripts/benchmark.py --reference_python=~/avae_ref/bin/python --reference_dir=...` runs it before and after its
`fit` section.

`--update_step_repeats=N` also times the reference's update step alone on one cached batch (its ELBOs, MLP and
`optax` Adam, rebuilt as `train.py` builds `update_step`; the loop's data, test batches and saves left out), two ways,
in N interleaved repeats: one jitted call per step with a key from `hk.PRNGSequence` (as its loop dispatches), and
`SCAN_STEPS` steps inside one jitted `lax.scan` with keys split on the device (as `model.fit` with
`steps_per_execution` runs several steps per call). The second is the step's own cost, with no per-step dispatch.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

from absl import app, flags

flags.DEFINE_string("reference_dir", None, "A directory holding the reference's `avae` package.", required=True)
flags.DEFINE_string("mnist_npz", os.path.expanduser("~/.cache/tf_avae/mnist.npz"),
                    "tf_avae's MNIST cache (written by `tf-avae-prepare-data mnist`).")
flags.DEFINE_list("models", ["vae", "avae"], "The reference's --model values to time.")
flags.DEFINE_integer("intervals", 5, "Timed 1000-step intervals per model (after one untimed interval).")
flags.DEFINE_integer("update_step_repeats", 0, "If > 0: also time the bare update step, per-step dispatch and "
                     "inside one lax.scan, in this many interleaved repeats (see the module docstring).")
flags.DEFINE_string("output", None, "Write the figures here as JSON.")
FLAGS = flags.FLAGS

STEPS_PER_INTERVAL = 1000  # the reference's --checkpoint_every default
RUN_SH_FLAGS = {"latent_dim": 64, "rho": 0.975}  # run.sh's flags that differ from train_main's defaults
SCAN_STEPS = 100  # update steps per jitted lax.scan call (as steps_per_execution=100)
SCAN_CALLS = 5  # lax.scan calls per timed sample; the dispatched kind runs as many steps, one call each


def _mnist_batches(path: str, subset: str, batch_size: int):
    """The reference's MnistDataIterator pipeline (map to float32 in [0, 1], batch with drop_remainder, repeat),
    over the local cache's digits ([N, 28, 28, 1], as tfds's 'image') in place of `tfds.load('mnist')`."""
    import numpy as np
    import tensorflow as tf

    with np.load(path, allow_pickle=False) as cache:
        split = "train" if subset == "train" else "test"
        images, labels = cache[f"x_{split}"][..., None], cache[f"y_{split}"].astype(np.int64)
    dataset = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    dataset = dataset.map(lambda x: {"data": tf.cast(x["image"], tf.float32) / 255.0, "label": x["label"]})
    return iter(dataset.batch(batch_size, drop_remainder=True).repeat().as_numpy_iterator())


def patch_reference() -> list:
    """Adapts the reference, once per process, and returns the list its checkpoint saves append their times to."""
    import jax

    # jax >= 0.6 dropped these two aliases that the reference's checkpointer uses.
    if not hasattr(jax, "tree_map"):
        jax.tree_map = jax.tree.map
    if not hasattr(jax, "host_id"):
        jax.host_id = jax.process_index
    from avae import checkpointer, data_iterators, vae

    class VmapOneEntryList:
        """`vae_elbo` maps the KL over two arguments with `in_axes=[0]`; JAX now rejects a list shorter than the
        arguments (`avae_elbo` passes [0, 0]). This reads [0] as 0, which maps every argument over axis 0."""

        def __getattr__(self, name):
            return getattr(jax, name)

        @staticmethod
        def vmap(fun, in_axes=0, *args, **kwargs):
            if isinstance(in_axes, list) and len(in_axes) == 1:
                in_axes = in_axes[0]
            return jax.vmap(fun, in_axes, *args, **kwargs)

    class LocalColorMnist(data_iterators.ColorMnistDataIterator):
        def __init__(self, subset: str, batch_size: int):  # pylint: disable=super-init-not-called
            self._iterator = _mnist_batches(FLAGS.mnist_npz, subset, batch_size)
            self._batch_size = batch_size

    saves = []
    save = checkpointer.Checkpointer.save_checkpoint

    def timed_save(self, *args, **kwargs):
        save(self, *args, **kwargs)
        saves.append((time.perf_counter(), time.process_time()))

    vae.jax = VmapOneEntryList()
    data_iterators.ColorMnistDataIterator = LocalColorMnist
    checkpointer.Checkpointer.save_checkpoint = timed_save
    return saves


def time_model(model: str, intervals: int, saves: list) -> dict:
    from avae import train_main

    saves.clear()
    with tempfile.TemporaryDirectory() as directory:
        # saves at steps 0, 1000, ..., (intervals + 1) * 1000: the interval after the compiling step 0 is untimed
        iterations = (intervals + 1) * STEPS_PER_INTERVAL + 1
        # the reference's flags (defined on import, after this script's were parsed) take their defaults
        for name, value in {**RUN_SH_FLAGS, "model": train_main.Model[model], "iterations": iterations,
                            "checkpoint_dir": directory + "/"}.items():
            setattr(FLAGS, name, value)
        train_main.main(None)
    walls = [b[0] - a[0] for a, b in zip(saves[1:], saves[2:])]
    cpus = [b[1] - a[1] for a, b in zip(saves[1:], saves[2:])]
    batch = FLAGS.train_batch_size
    return {"model": model, "images_per_s": batch * STEPS_PER_INTERVAL / statistics.median(walls),
            "best_images_per_s": batch * STEPS_PER_INTERVAL / min(walls),
            "median_ms_per_step": 1000 * statistics.median(walls) / STEPS_PER_INTERVAL,
            "cpu_ms_per_step": 1000 * statistics.median(cpus) / STEPS_PER_INTERVAL,
            "intervals_s": walls, "steps_per_interval": STEPS_PER_INTERVAL, "batch_size": batch}


def time_update_steps(models: list, repeats: int) -> list:
    """The reference's update step alone on one cached batch: ms per step dispatched one jitted call at a time
    (keys from hk.PRNGSequence, as its loop) and inside one jitted lax.scan of SCAN_STEPS steps, models interleaved."""
    import haiku as hk
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from avae import decoders, encoders, vae

    batch = np.random.default_rng(0).random((64, 28, 28, 3)).astype(np.float32)  # run.sh: batch 64, colorMNIST
    keys = hk.PRNGSequence(0)
    steps = {}
    for model in models:
        def elbo(data, model=model):  # train_main.main's encoder, decoder and VAE with run.sh's flags
            v = vae.VAE(encoders.ColorMnistMLPEncoder(RUN_SH_FLAGS["latent_dim"]), decoders.ColorMnistMLPDecoder(0.5),
                        RUN_SH_FLAGS["rho"])
            return (v.vae_elbo if model == "vae" else v.avae_elbo)(data, hk.next_rng_key())

        transformed = hk.transform(elbo)
        # train.train's optimizer, loss and update step (learning rate 1e-4)
        opt_init, opt_update = optax.chain(optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8), optax.scale(-1e-4))

        def update(params, key, data, opt_state, transformed=transformed, opt_update=opt_update):
            grads = jax.grad(lambda p: -jnp.mean(transformed.apply(p, key, data).elbo))(params)
            updates, opt_state = opt_update(grads, opt_state)
            return optax.apply_updates(params, updates), opt_state

        def scanned(params, key, data, opt_state, update=update):
            def body(carry, step_key):
                return update(carry[0], step_key, data, carry[1]), None
            return jax.lax.scan(body, (params, opt_state), jax.random.split(key, SCAN_STEPS))[0]

        params = transformed.init(next(keys), batch)
        state = (params, opt_init(params))
        steps[model] = {"dispatch": jax.jit(update), "scan": jax.jit(scanned), "state": state}
        for kind in ("dispatch", "scan"):  # compile, untimed
            steps[model]["state"] = steps[model][kind](state[0], next(keys), batch, state[1])
    steps_per_call = {"dispatch": 1, "scan": SCAN_STEPS}
    samples = {(model, kind): [] for model in models for kind in steps_per_call}
    for _ in range(repeats):
        for model in models:
            for kind, per_call in steps_per_call.items():
                params, opt_state = steps[model]["state"]
                start = time.perf_counter()
                for _ in range(SCAN_CALLS * SCAN_STEPS // per_call):
                    params, opt_state = steps[model][kind](params, next(keys), batch, opt_state)
                jax.block_until_ready(params)
                samples[(model, kind)].append(1000 * (time.perf_counter() - start) / (SCAN_CALLS * SCAN_STEPS))
                steps[model]["state"] = (params, opt_state)
    rows = []
    for (model, kind), ms in samples.items():
        median = statistics.median(ms)
        rows.append({"model": model, "kind": kind, "median_ms_per_step": median,
                     "images_per_s": len(batch) * 1000 / median, "ms_per_step": ms,
                     "steps_per_call": steps_per_call[kind], "batch_size": len(batch)})
    return rows


def main(_):
    import jax

    sys.path.insert(0, os.path.abspath(FLAGS.reference_dir))
    saves = patch_reference()
    rows = [time_model(model, FLAGS.intervals, saves) for model in FLAGS.models]
    result = {"what": "the AVAE authors' JAX/Haiku reference (train_main.py, run.sh flags), MNIST from the local cache",
              "jax": jax.__version__, "load_1m": os.getloadavg()[0], "rows": rows}
    for row in rows:
        print(f"reference {row['model']}: {row['images_per_s']:,.0f} img/s (median of {len(row['intervals_s'])} x "
              f"{STEPS_PER_INTERVAL} steps; best {row['best_images_per_s']:,.0f}), {row['median_ms_per_step']:.2f} ms "
              f"per step, CPU {row['cpu_ms_per_step']:.2f} ms")
    if FLAGS.update_step_repeats > 0:
        result["update_step"] = time_update_steps(FLAGS.models, FLAGS.update_step_repeats)
        medians = {(r["model"], r["kind"]): r["median_ms_per_step"] for r in result["update_step"]}
        for row in result["update_step"]:
            ratio = (f", AVAE / VAE {row['median_ms_per_step'] / medians[('vae', row['kind'])]:.2f}"
                     if row["model"] != "vae" and ("vae", row["kind"]) in medians else "")
            print(f"reference {row['model']} update step ({row['kind']}, {row['steps_per_call']} per call): "
                  f"{row['median_ms_per_step']:.2f} ms per step ({row['images_per_s']:,.0f} img/s){ratio}")
    if FLAGS.output:
        with open(FLAGS.output + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
        os.replace(FLAGS.output + ".tmp", FLAGS.output)


if __name__ == "__main__":
    app.run(main)
