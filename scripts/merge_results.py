r"""Merges the results.json of several workdirs of one experiment into one report (results.json, results.md, plots).

    python scripts/merge_results.py --inputs runs/width_sweep/results.json,runs/width_sweep_b/results.json \
        --workdir runs/width_sweep_merged

For runs of one experiment trained apart (other workdirs, machines or sittings), or a committed report
(`results/*.json`) plus runs trained later: the inputs must share the experiment, budget and evaluation
settings, and hold different runs. The report layout is the newest input's (a config that gained runs since the
older inputs were written lays them out too), as long as it places every run the older layouts placed. Time
ratios, comparisons and sweep trends are recomputed over all runs. The output workdir gets results.json, results.md and plots/; a results.json there that
`scripts/reproduce.py` wrote (not a merge) is never overwritten.

Exit status: 0 on success, 2 when an input is missing, unreadable or does not fit the others.
"""

import sys

from absl import app, flags

from tf_avae import reproduce_lib

_INPUTS = flags.DEFINE_list("inputs", None, "Two or more results.json files (comma separated).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the merged results.json, results.md and plots/ go.")
_PLOTS = flags.DEFINE_boolean("plots", True, "Draw the report's plots.")
flags.mark_flags_as_required(["inputs", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        results = reproduce_lib.merge_files(_INPUTS.value, _WORKDIR.value, plots=_PLOTS.value, log=print)
    except ValueError as error:
        print(f"merge_results: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"{len(results['runs'])} runs: {', '.join(results['run_order'])}")
    print(*reproduce_lib.output_lines(results), sep="\n")


if __name__ == "__main__":
    app.run(main)
