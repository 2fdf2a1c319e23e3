"""Checks applied where input enters the package.

Every check raises ``ValueError`` (or ``TypeError`` for a wrong type) with a message
that names the argument, the value received and what was expected. They run once
at a boundary (a constructor, a dataset builder, ``fit``), never inside a train step.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np


def check_open_interval(name: str, value: Any, low: float, high: float) -> float:
    """Returns ``float(value)`` if ``low < value < high``; raises otherwise."""
    number = _as_finite_number(name, value)
    if not low < number < high:
        raise ValueError(f"{name} must lie in the open interval ({low}, {high}); got {value!r}.")
    return number


def check_non_negative(name: str, value: Any) -> float:
    number = _as_finite_number(name, value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}.")
    return number


def check_positive(name: str, value: Any) -> float:
    number = _as_finite_number(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be > 0; got {value!r}.")
    return number


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= 1; got {value!r} of type {type(value).__name__}.")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}.")
    return value


def check_image_shape(name: str, shape: Sequence[int]) -> tuple[int, int, int]:
    """An image shape is (height, width, channels), all positive integers."""
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence (height, width, channels) of integers; got {shape!r}.") from None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{name} must be (height, width, channels) with positive sizes; got {shape!r}.")
    return shape


def check_image_array(name: str, images: Any, image_shape: Sequence[int] | None = None,
                      value_range: tuple[float, float] | None = (0.0, 1.0)) -> np.ndarray:
    """Validates a user-supplied batch of images once, where it enters.

    Expects a float array of rank 4 ``[N, H, W, C]`` with finite values in `value_range` (by default [0, 1];
    ``None`` for any finite value, e.g. images plus observation noise). Returns it as a float32 numpy array.
    """
    expected = "finite" if value_range is None else f"finite and in [{value_range[0]:g}, {value_range[1]:g}]"
    array = np.asarray(images)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(
            f"{name} must be a floating-point array of images in [0, 1]; got dtype {array.dtype}. "
            "Convert integer pixels with `images.astype('float32') / 255`."
        )
    if array.ndim != 4:
        raise ValueError(f"{name} must have rank 4 [batch, height, width, channels]; got shape {array.shape}.")
    if image_shape is not None and tuple(array.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"{name} must have images of shape {tuple(image_shape)} (height, width, channels); "
            f"got {tuple(array.shape[1:])}."
        )
    if array.size:
        if not np.all(np.isfinite(array)):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise ValueError(f"{name} contains {bad} NaN or infinite values; images must be {expected}.")
        low, high = float(array.min()), float(array.max())
        if value_range is not None and (low < value_range[0] or high > value_range[1]):
            raise ValueError(f"{name} must have values in [{value_range[0]:g}, {value_range[1]:g}]; "
                             f"got values in [{low:g}, {high:g}].")
    return array.astype(np.float32, copy=False)


def check_tensor_image_spec(name: str, shape: Sequence[Any], dtype: Any, image_shape: Sequence[int]) -> None:
    """Static check of a (possibly symbolic) batch: rank, per-image size and dtype.

    Runs while a step is traced, so it costs nothing per step.
    """
    dims = list(shape)
    dtype_name = getattr(dtype, "name", str(dtype))
    if "float" not in dtype_name:
        raise TypeError(
            f"{name} must be float images in [0, 1] (float32); got dtype {dtype_name}. "
            "Convert integer pixels with `images.astype('float32') / 255`."
        )
    if len(dims) != 4:
        raise ValueError(f"{name} must have rank 4 [batch, height, width, channels]; got shape {tuple(dims)}.")
    got = tuple(None if d is None else int(d) for d in dims[1:])
    if any(d is not None and d != e for d, e in zip(got, image_shape)):
        raise ValueError(
            f"{name} must have images of shape {tuple(image_shape)} (height, width, channels) for this network; "
            f"got {got}."
        )


def check_finite(name: str, value: Any) -> float:
    """Returns ``float(value)`` for a finite real number of either sign; raises otherwise."""
    return _as_finite_number(name, value)


def _as_finite_number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number; got {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {value!r} of type {type(value).__name__}.") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite; got {value!r}.")
    return number
