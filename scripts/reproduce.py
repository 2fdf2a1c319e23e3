r"""Reproduces an experiment of the papers: trains every run of a run table, evaluates each, writes a report.

    python scripts/reproduce.py --config configs/reproduce_color_mnist.py --workdir runs/reproduce_color_mnist
    python scripts/reproduce.py --config configs/reproduce_color_mnist.py:smoke --workdir /tmp/reproduce_smoke
    python scripts/reproduce.py --config configs/rho_sweep_color_mnist.py --workdir runs/rho_sweep
    python scripts/reproduce.py --config configs/eps_sweep_color_mnist.py --workdir runs/eps_sweep
    python scripts/reproduce.py --config configs/aavae_vs_vae_color_mnist.py --workdir runs/aavae_vs_vae

Each run trains in DIR/<run>/ (a scripts/train.py workdir) and is evaluated there (eval.json);
DIR/results.json, DIR/results.md and DIR/plots/ are rebuilt from what exists; progress goes to stdout
and DIR/reproduce.log. Rerunning the same command resumes: a finished training and an evaluation made
with the same settings are skipped (the log says so). Any value can be overridden, e.g.
`--config.eval_limit=1000`, `--config.budget.num_steps=2000`, `--config.runs.avae.model.rho=0.99`,
`--config.run_names=vae,avae`.

Exit status: 0 when every run is trained and evaluated, 1 when some run failed (the others are done and
reported), 2 when a dataset is missing (DatasetNotAvailableError, with the command that prepares it).
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from tf_avae import data, reproduce_lib

_CONFIG = config_flags.DEFINE_config_file("config", None, "An experiment config (configs/*.py[:smoke|paper]).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory of the experiment (one sub-workdir per run).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    config = _CONFIG.value
    try:
        results = reproduce_lib.run(config, _WORKDIR.value)
    except data.DatasetNotAvailableError as error:
        print(f"\nDatasetNotAvailableError: {error}", file=sys.stderr)
        print("Nothing was trained. Prepare the data, then rerun the same command.", file=sys.stderr)
        sys.exit(2)
    workdir = results["workdir"]
    print("", *reproduce_lib.output_lines(results), sep="\n")
    failed = [name for name, entry in results["runs"].items() if entry["status"] != "done"]
    if failed:
        print(f"runs not done: {failed} (see {workdir}/{reproduce_lib.LOG_FILE})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
