r"""Merges the results.json of several workdirs of one experiment into one report (results.json, results.md, plots).

    python scripts/merge_results.py --inputs runs/width_sweep/results.json,runs/width_sweep_b/results.json \
        --workdir runs/width_sweep_merged

For runs of one experiment trained apart (other workdirs, machines or sittings), or a committed report
(`results/*.json`) plus runs trained later: the inputs must share the experiment, budget, evaluation settings
and report layout, and hold different runs. Time ratios, comparisons and sweep trends are recomputed over all
runs. The output workdir gets results.json, results.md and plots/; a results.json there that
`scripts/reproduce.py` wrote (not a merge) is never overwritten.

Exit status: 0 on success, 2 when an input is missing, unreadable or does not fit the others.
"""

import pathlib
import sys

from absl import app, flags

from tf_avae import reproduce_lib

_INPUTS = flags.DEFINE_list("inputs", None, "Two or more results.json files (comma separated).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the merged results.json, results.md and plots/ go.")
_PLOTS = flags.DEFINE_boolean("plots", True, "Draw the report's plots.")
flags.mark_flags_as_required(["inputs", "workdir"])


def merge(inputs, workdir, plots=True, log=print) -> dict:
    """Loads, checks and merges `inputs` into `workdir`; ValueError (nothing written) on any problem."""
    workdir = pathlib.Path(workdir)
    existing = workdir / reproduce_lib.RESULTS_JSON
    if existing.exists():
        try:
            merged_before = reproduce_lib.MERGED_FROM in reproduce_lib.load_results_file(existing)
        except ValueError:
            merged_before = False
        if not merged_before:
            raise ValueError(f"--workdir {str(workdir)!r} already holds a results.json that is not a merge (a "
                             "reproduce.py report, or something else): choose another --workdir.")
    parts = [reproduce_lib.load_results_file(path) for path in inputs]
    results = reproduce_lib.merge_results(parts, workdir, sources=[str(path) for path in inputs])
    workdir.mkdir(parents=True, exist_ok=True)
    return reproduce_lib.write_results(results, workdir, log=log, plots=plots)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        results = merge(_INPUTS.value, _WORKDIR.value, plots=_PLOTS.value)
    except ValueError as error:
        print(f"merge_results: {error}", file=sys.stderr)
        sys.exit(2)
    workdir = pathlib.Path(_WORKDIR.value)
    print(f"{len(results['runs'])} runs: {', '.join(results['run_order'])}")
    print(f"{reproduce_lib.RESULTS_JSON}: {workdir / reproduce_lib.RESULTS_JSON}")
    print(f"{reproduce_lib.RESULTS_MD}:   {workdir / reproduce_lib.RESULTS_MD}")
    for name, path in results["plots"].items():
        print(f"plot {name}: {workdir / path}")


if __name__ == "__main__":
    app.run(main)
