"""Progress reporting for long evaluations: one line per stage, a Keras progress bar within a stage."""

from __future__ import annotations

import sys
import time

import keras

__all__ = ["Progress"]


class Progress:
    """``with progress.stage("attack digit", total=N) as advance: ... advance(n)``.

    Disabled (``enabled=False``) it prints nothing; ``advance`` is then a no-op. A stage opened with
    ``key=`` adds its wall-clock seconds to ``progress.times[key]`` (enabled or not).
    """

    def __init__(self, enabled: bool = True, prefix: str = "[tf_avae.evaluation]"):
        self.enabled = bool(enabled)
        self.prefix = prefix
        self.times: dict[str, float] = {}

    def stage(self, name: str, total: int | None = None, key: str | None = None) -> "_Stage":
        return _Stage(self, name, total, key)

    def message(self, text: str) -> None:
        if self.enabled:
            print(f"{self.prefix} {text}", file=sys.stdout, flush=True)


class _Stage:
    def __init__(self, progress: Progress, name: str, total: int | None, key: str | None):
        self.progress = progress
        self.key = key
        self.name = name
        self.total = total
        self.bar = None
        self.done = 0
        self.seconds = 0.0

    def __enter__(self):
        self.start = time.perf_counter()
        self.progress.message(f"{self.name} ...")
        if self.progress.enabled and self.total:
            self.bar = keras.utils.Progbar(self.total, unit_name="example")
        return self.advance

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(self.done)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        if self.key is not None:
            self.progress.times[self.key] = self.progress.times.get(self.key, 0.0) + self.seconds
        if exc[0] is None:
            self.progress.message(f"{self.name}: {self.seconds:.1f}s")
        return False
