r"""Trains a model described by a config file; rerunning the same command resumes the run.

    python scripts/train.py --config configs/avae_color_mnist.py --workdir runs/avae_color_mnist
    python scripts/train.py --config configs/avae_color_mnist.py:smoke --workdir /tmp/smoke \
        --config.model.rho=0.99

Checkpoints go to <workdir>/checkpoints every `train.checkpoint_every_steps` steps (default: once per
epoch); after an interruption, the same command continues from the newest complete one
(`--noresume` starts again from step 0). With TF_CONFIG naming several workers, run the same command
on every machine: MultiWorkerMirroredStrategy is used and only the chief writes into the workdir.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from tf_avae import train_lib

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py[:arg]).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the config, logs, checkpoints and model.")
_RESUME = flags.DEFINE_boolean("resume", True, "Continue from the newest complete checkpoint in the workdir.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    model = train_lib.train(_CONFIG.value, _WORKDIR.value, resume=_RESUME.value)
    workdir = _WORKDIR.value
    role = train_lib.worker_role(model.distribute_strategy)
    print(f"\nTrained {type(model).__name__} for {int(model.optimizer.iterations.numpy())} steps.")
    print(f"  weights sha256: {train_lib.weights_fingerprint(model)}")
    if not role.is_chief:
        print(f"  worker {role.task_type}:{role.task_id} is not the chief: it wrote nothing into {workdir}.")
        return
    print(f"  model:       {workdir}/{train_lib.MODEL_FILE}")
    print(f"  config:      {workdir}/{train_lib.CONFIG_FILE}")
    print(f"  history:     {workdir}/{train_lib.HISTORY_FILE}")
    print(f"  checkpoints: {workdir}/{train_lib.CHECKPOINT_DIR}")
    print(f"  TensorBoard: tensorboard --logdir {workdir}/{train_lib.TENSORBOARD_DIR}")


if __name__ == "__main__":
    app.run(main)
