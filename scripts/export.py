r"""Exports a trained workdir's encoder as a SavedModel in TF Serving's layout.

    python scripts/export.py --workdir runs/avae_color_mnist
    python scripts/export.py --workdir runs/avae_color_mnist --name avae --version 3 --export_dir saved_models

Writes `<export_dir>/<name>/<version>/` (default name `<model>_<dataset>` from the workdir's config,
default version: the highest existing one + 1) with the signatures `serving_default`
(images -> mean, log_variance), `decode` (latents -> images) and `reconstruct` (images -> images),
and `assets/card.json` (the workdir's eval.json, the resolved config, the package version).
The version appears only when complete: a failed export leaves nothing behind.
"""

import sys

from absl import app, flags, logging

from tf_avae import export

_WORKDIR = flags.DEFINE_string("workdir", None, "A training workdir (holds config.json and model.keras).")
_NAME = flags.DEFINE_string("name", None, "Served model name; default <model>_<dataset> from the config.")
_VERSION = flags.DEFINE_integer("version", None, "Version number (an integer >= 0 that does not exist yet); "
                                "default: highest existing + 1.", lower_bound=0)
_EXPORT_DIR = flags.DEFINE_string("export_dir", export.DEFAULT_EXPORT_DIR, "Base directory of exported models.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    try:
        path = export.export_workdir(_WORKDIR.value, name=_NAME.value, version=_VERSION.value,
                                     export_dir=_EXPORT_DIR.value)
    except (export.ExportError, FileNotFoundError) as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    card = export.read_card(path)
    print(f"Exported {card['model']} ({_WORKDIR.value}) to {path}")
    print(f"  signatures: serving_default (images -> mean, log_variance), decode (latents -> images), "
          f"reconstruct (images -> images)")
    print(f"  card:       {path}/assets/card.json (evaluation: {'yes' if card['evaluation'] else 'none'})")
    print(f"  serve:      model base path {path.parent.resolve()} (TF Serving serves the highest version)")
    return 0


if __name__ == "__main__":
    app.run(main)
