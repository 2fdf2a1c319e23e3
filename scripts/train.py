r"""Trains a model described by a config file.

    python scripts/train.py --config configs/avae_color_mnist.py --workdir runs/avae_color_mnist
    python scripts/train.py --config configs/avae_color_mnist.py:smoke --workdir /tmp/smoke \
        --config.model.rho=0.99
"""

from absl import app, flags, logging
from ml_collections import config_flags

from tf_avae import train_lib

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py[:arg]).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the config, logs, checkpoints and model.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    model = train_lib.train(_CONFIG.value, _WORKDIR.value)
    workdir = _WORKDIR.value
    print(f"\nTrained {type(model).__name__} for {int(model.optimizer.iterations.numpy())} steps.")
    print(f"  model:       {workdir}/{train_lib.MODEL_FILE}")
    print(f"  config:      {workdir}/{train_lib.CONFIG_FILE}")
    print(f"  history:     {workdir}/{train_lib.HISTORY_FILE}")
    print(f"  TensorBoard: tensorboard --logdir {workdir}/{train_lib.TENSORBOARD_DIR}")


if __name__ == "__main__":
    app.run(main)
