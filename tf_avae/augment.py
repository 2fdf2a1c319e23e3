"""Image augmentations for AAVAE (SimCLR-style views) and the Gaussian-noise control.

All layers take float images ``[batch, height, width, channels]`` in [0, 1] and return the same
shape (``RandomResizedCrop`` may change height/width via ``output_size``) and dtype, still in [0, 1]
(``GaussianNoiseAugment`` only when ``clip=True``). With ``training=False`` every layer is the identity
(``RandomResizedCrop`` with an ``output_size`` other than the input's then resizes the whole image).

Every augmentation is computed on the whole batch with batched TensorFlow ops; per-example
randomness comes from per-example random numbers, never from a per-example Python loop,
``tf.map_fn`` or ``tf.vectorized_map``. An example that a step skips gets identity parameters
(factor 1, identity colour matrix, delta blur kernel) or a 0/1 arithmetic select, which return it
bit-exactly and are cheaper on CPU than broadcasting ``tf.where``. The horizontal flip costs nothing:
it is folded into the crop box (``crop_and_resize`` samples a box with ``x1 > x2`` right to left).

XLA: ``CropAndResize`` has no XLA kernel, so ``RandomResizedCrop`` and ``SimCLRAugment`` set
``supports_jit = False`` (as ``keras.layers.RandomCrop`` does); a model holding them then compiles
with ``jit_compile="auto"`` -> no XLA instead of failing.

Randomness
----------
Each layer owns one ``keras.random.SeedGenerator(seed)``. A call draws a single seed from it, folds
in the replica id (see below) and draws one ``[batch, k]`` block of uniforms with
``tf.random.stateless_uniform``; every random decision of that call (crop boxes, flip, jitter
factors and order, grayscale, blur) is a column of that block. So the same ``seed`` repeats the same
augmentations, and ``get_config``/``from_config`` reproduces them.

Why we fold in the replica id (``tf.distribute.MirroredStrategy``)
-----------------------------------------------------------------
A ``SeedGenerator`` keeps its state in a variable. A layer created under ``strategy.scope()`` (as
a model must be) gets a *MirroredVariable* state: one copy per replica, all with the same value,
all advanced identically. Random ops seeded from it therefore draw the *same* numbers on every
replica, so example ``i`` of replica 0 and example ``i`` of replica 1 receive the same crop box,
the same flip, the same jitter (measured on TF 2.21 / Keras 3.15 with ``keras.layers.RandomFlip``,
``RandomGrayscale``, ``RandomHue`` and ``Dropout``: outputs identical across the 2 replicas on every
step). Nothing fails; the augmentation is just silently correlated across replicas. Keras' layers
cannot be told otherwise (their ``seed`` argument must be an int or a ``SeedGenerator``, not a
tensor), so we draw the seed ourselves and fold ``replica_id_in_sync_group`` into it. Outside a
strategy the replica id is 0. This is also why the horizontal flip and the grayscale step are
written here (one line each) instead of wrapping ``keras.layers.RandomFlip``/``RandomGrayscale``.

Colour jitter (torchvision ``ColorJitter`` semantics, as used by SimCLR / AAVAE)
-------------------------------------------------------------------------------
Keras' ``RandomColorJitter`` is not the same transform: brightness is *additive*, saturation
multiplies the HSV S-channel with a ``f / (1 - f)`` factor mapping, the four ops always run in a
fixed order, and there is no per-example application probability. We implement torchvision's:
brightness ``clip(f x)``, contrast ``clip(f x + (1 - f) mean(gray(x)))``, saturation
``clip(f x + (1 - f) gray(x))`` with ``f ~ U[max(0, 1 - s), 1 + s]``, hue ``(h + d) mod 1`` in HSV
with ``d ~ U[-h, h]``, the four ops in a per-example uniformly random order. The three blend ops
share one code path (a blend towards 0, the mean grey or the grey image), so a random order costs
six cheap blend passes and a single RGB->HSV->RGB pass: the order of (brightness, contrast,
saturation) is one of 6 permutations and hue is inserted at one of 4 positions (6 x 4 = 24 = 4!).
Grey is ITU-R 601 luma ``0.2989 R + 0.587 G + 0.114 B`` (torchvision's and ``tf.image``'s weights).
On 1-channel images saturation, hue and grayscale are skipped (as in torchvision), brightness and
contrast still apply.

Gaussian blur: Keras' ``RandomGaussianBlur`` draws one (anisotropic) sigma per *batch*; SimCLR
draws an isotropic sigma per image. We blur per example with separable per-example kernels
expressed as two batched matmuls with ``[batch, n, n]`` banded matrices (reflect padding folded into
the matrices), kernel size 10% of the image height rounded up to odd (SimCLR) unless given.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tf_avae import rng, validation
from tf_avae.adversarial import REGIONS, region_mask

__all__ = [
    "RandomResizedCrop",
    "SimCLRAugment",
    "GaussianNoiseAugment",
    "simclr_augment",
    "SIMCLR_PRESETS",
]

# ITU-R 601-2 luma, as torchvision.transforms.functional.rgb_to_grayscale and tf.image.rgb_to_grayscale.
LUMA_WEIGHTS = (0.2989, 0.587, 0.114)

# Candidate boxes drawn per example by the random resized crop (torchvision tries 10 in a loop).
_CROP_ATTEMPTS = 10
_CROP_COLUMNS = 2 * _CROP_ATTEMPTS + 2

# The 6 orders of (brightness=0, contrast=1, saturation=2).
_BCS_PERMUTATIONS = np.array(
    [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]], dtype=np.int32
)


# --------------------------------------------------------------------------------------------
# Argument checks (run once, in constructors).
# --------------------------------------------------------------------------------------------
def _check_probability(name: str, value: Any) -> float:
    number = validation.check_non_negative(name, value)
    if number > 1:
        raise ValueError(f"{name} must be a probability in [0, 1]; got {value!r}.")
    return number


def _check_pair(name: str, value: Any) -> tuple[Any, Any]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{name} must be a pair (low, high) of numbers; got {value!r}.")
    return value[0], value[1]


def _check_scale(name: str, value: Any) -> tuple[float, float]:
    low, high = _check_pair(name, value)
    low = validation.check_positive(f"{name}[0]", low)
    high = validation.check_positive(f"{name}[1]", high)
    if not low <= high <= 1:
        raise ValueError(f"{name} must satisfy 0 < low <= high <= 1; got {tuple(value)!r}.")
    return low, high


def _check_ratio(name: str, value: Any) -> tuple[float, float]:
    low, high = _check_pair(name, value)
    low = validation.check_positive(f"{name}[0]", low)
    high = validation.check_positive(f"{name}[1]", high)
    if not low <= high:
        raise ValueError(f"{name} must satisfy 0 < low <= high; got {tuple(value)!r}.")
    return low, high


def _check_jitter(name: str, value: Any) -> tuple[float, float, float, float]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 4:
        raise TypeError(
            f"{name} must be 4 numbers (brightness, contrast, saturation, hue); got {value!r}."
        )
    parts = ("brightness", "contrast", "saturation", "hue")
    out = tuple(validation.check_non_negative(f"{name} {p}", v) for p, v in zip(parts, value))
    if out[3] > 0.5:
        raise ValueError(f"{name} hue must be in [0, 0.5] (a fraction of the colour circle); got {value[3]!r}.")
    return out  # type: ignore[return-value]


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer or None; got {seed!r} of type {type(seed).__name__}.")
    if seed < 0:
        raise ValueError(f"seed must be >= 0; got {seed!r}.")
    return int(seed)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def _check_output_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        size = validation.check_positive_int("output_size", value)
        return size, size
    height, width = _check_pair("output_size", value)
    return (
        validation.check_positive_int("output_size[0]", height),
        validation.check_positive_int("output_size[1]", width),
    )


def _check_kernel_size(value: Any) -> int | None:
    if value is None:
        return None
    size = validation.check_positive_int("blur_kernel_size", value)
    if size % 2 == 0:
        raise ValueError(f"blur_kernel_size must be odd (or None for 10% of the image height); got {value!r}.")
    return size


# --------------------------------------------------------------------------------------------
# Batched ops (pure functions of the images and of uniforms in [0, 1)).
# --------------------------------------------------------------------------------------------
def _check_images(images: tf.Tensor) -> None:
    shape = images.shape
    validation.check_tensor_image_spec(
        "images", shape, images.dtype, tuple(shape[1:]) if shape.rank is not None else ()
    )


def _replica_seed(seed_generator: keras.random.SeedGenerator) -> tf.Tensor:
    """One stateless seed for this call, distinct per replica (see the module docstring)."""
    base = seed_generator.next()
    base = tf.cast(tf.math.floormod(tf.cast(base, tf.int64), tf.int32.max - 1), tf.int32)
    context = tf.distribute.get_replica_context()
    replica_id = 0 if context is None else context.replica_id_in_sync_group
    return tf.random.experimental.stateless_fold_in(base, tf.cast(replica_id, tf.int32))


def _crop_boxes(u: tf.Tensor, height: tf.Tensor, width: tf.Tensor, scale, ratio) -> tf.Tensor:
    """Per-example crop boxes (normalised ``[y1, x1, y2, x2]`` for ``tf.image.crop_and_resize``).

    ``u`` is ``[batch, 2 * _CROP_ATTEMPTS + 2]`` uniforms. As torchvision's RandomResizedCrop:
    area fraction ~ U(scale), log aspect ratio (width / height) ~ U(log ratio); of
    ``_CROP_ATTEMPTS`` candidates per example the first that fits in the image wins; if none fits,
    the central crop of the whole image with its aspect ratio clamped into ``ratio``. Sizes are
    continuous (no rounding to whole pixels); the offset is uniform over the valid range.

    The box is in ``crop_and_resize``'s convention, where 0 and 1 are the centres of the first and
    last pixels: a window of ``h`` pixels starting at pixel ``top`` maps to
    ``[top, top + h - 1] / (height - 1)``, so the full window is exactly the identity resample.
    """
    n = _CROP_ATTEMPTS
    h_img = tf.cast(height, tf.float32)
    w_img = tf.cast(width, tf.float32)
    area = (scale[0] + (scale[1] - scale[0]) * u[:, :n]) * h_img * w_img
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = tf.exp(log_lo + (log_hi - log_lo) * u[:, n : 2 * n])
    w = tf.sqrt(area * aspect)
    h = tf.sqrt(area / aspect)
    valid = (w <= w_img) & (h <= h_img) & (w >= 1.0) & (h >= 1.0)
    first = tf.reduce_min(tf.where(valid, tf.range(n, dtype=tf.int32)[None, :], n), axis=1)
    found = first < n
    first = tf.minimum(first, n - 1)
    w = tf.gather(w, first, axis=1, batch_dims=1)
    h = tf.gather(h, first, axis=1, batch_dims=1)

    # Fallback (torchvision): whole image, cut to the nearest allowed aspect ratio, centred.
    in_ratio = w_img / h_img
    fallback_w = tf.where(in_ratio > ratio[1], h_img * ratio[1], w_img)
    fallback_h = tf.where(in_ratio < ratio[0], w_img / ratio[0], h_img)
    w = tf.where(found, w, tf.minimum(fallback_w, w_img))
    h = tf.where(found, h, tf.minimum(fallback_h, h_img))
    top = tf.where(found, u[:, 2 * n] * (h_img - h), (h_img - h) / 2.0)
    left = tf.where(found, u[:, 2 * n + 1] * (w_img - w), (w_img - w) / 2.0)

    y_den = tf.maximum(h_img - 1.0, 1.0)
    x_den = tf.maximum(w_img - 1.0, 1.0)
    return tf.stack([top / y_den, left / x_den, (top + h - 1.0) / y_den, (left + w - 1.0) / x_den], axis=1)


def _random_resized_crop(images: tf.Tensor, u: tf.Tensor, scale, ratio, output_size, flip=None) -> tf.Tensor:
    """One ``crop_and_resize`` call; examples where ``flip`` (``[batch]`` bool) come out mirrored."""
    shape = tf.shape(images)
    boxes = _crop_boxes(u, shape[1], shape[2], scale, ratio)
    if flip is not None:  # swap x1 and x2: sampled right to left
        boxes = tf.where(flip[:, None], tf.gather(boxes, [0, 3, 2, 1], axis=1), boxes)
    if output_size is None:
        crop_size = shape[1:3]
    else:
        crop_size = tf.constant(output_size, tf.int32)
    out = tf.image.crop_and_resize(
        tf.cast(images, tf.float32), boxes, tf.range(shape[0], dtype=tf.int32), crop_size, method="bilinear"
    )
    out = tf.clip_by_value(out, 0.0, 1.0)
    static = images.shape
    if output_size is None:
        out.set_shape(static)
    else:
        out.set_shape([static[0], output_size[0], output_size[1], static[3]])
    return out


def _gray(images: tf.Tensor) -> tf.Tensor:
    """Luma ``[..., 1]`` of RGB images (a 1-channel image is its own grey)."""
    if images.shape[-1] == 1:
        return images
    return tf.tensordot(images, tf.constant(LUMA_WEIGHTS, images.dtype), axes=1)[..., None]


def _per_example(mask: tf.Tensor) -> tf.Tensor:
    """``[batch]`` bool -> ``[batch, 1, 1, 1]`` float 0/1, for exact arithmetic selects."""
    return tf.cast(mask, tf.float32)[:, None, None, None]


def _blend_slot(images, op, active, factors, contrast_on: bool):
    """One step of the jitter: per example, op 0/1/2 = brightness/contrast/saturation.

    Each op is ``clip(f x + (1 - f) target)`` with target 0 (brightness), the mean grey of the
    image (contrast) or the grey image (saturation) -- per pixel an affine map of the colour, so the
    slot is one batched ``[H*W, C] x [C, C]`` matmul with a per-example matrix plus a per-example
    offset. Inactive examples get the identity matrix and offset 0, which returns ``x`` exactly.
    """
    channels = images.shape[-1]
    f = tf.gather(factors, op, axis=1, batch_dims=1)
    f = tf.where(active, f, 1.0)
    eye = tf.eye(channels, dtype=tf.float32)
    matrix = f[:, None, None] * eye
    if channels == 3:  # saturation: out_c = f x_c + (1 - f) sum_k w_k x_k
        luma = tf.constant(LUMA_WEIGHTS, tf.float32)[None, :, None] * tf.ones([1, 1, 3])
        saturation = tf.where(op == 2, 1.0 - f, 0.0)
        matrix = matrix + saturation[:, None, None] * luma
    if contrast_on:
        mean_gray = tf.reduce_mean(_gray(tf.reduce_mean(images, axis=[1, 2], keepdims=True)), axis=[1, 2, 3])
        offset = tf.where(op == 1, (1.0 - f) * mean_gray, 0.0)[:, None, None, None]
        out = tf.einsum("bhwk,bkc->bhwc", images, matrix) + offset
    else:
        out = tf.einsum("bhwk,bkc->bhwc", images, matrix)
    return tf.clip_by_value(out, 0.0, 1.0)


def _adjust_hue(images, delta):
    hsv = tf.image.rgb_to_hsv(images)
    hue = tf.math.floormod(hsv[..., 0] + delta[:, None, None], 1.0)
    rgb = tf.image.hsv_to_rgb(tf.stack([hue, hsv[..., 1], hsv[..., 2]], axis=-1))
    return tf.clip_by_value(rgb, 0.0, 1.0)


def _color_jitter(images, u, strength, apply):
    """torchvision ColorJitter per example in random order, on the examples where ``apply``.

    ``u`` is ``[batch, 6]`` uniforms (4 factors, the order of the blend ops, the position of hue).
    Examples where ``apply`` is False come back exactly unchanged.
    """
    brightness, contrast, saturation, hue = strength
    if images.shape[-1] == 1:  # no colour to change on grey images
        saturation, hue = 0.0, 0.0

    def factor(s, column):
        low = max(0.0, 1.0 - s)
        return low + ((1.0 + s) - low) * u[:, column]

    factors = tf.stack([factor(brightness, 0), factor(contrast, 1), factor(saturation, 2)], axis=1)
    order = tf.gather(tf.constant(_BCS_PERMUTATIONS), tf.minimum(tf.cast(u[:, 4] * 6, tf.int32), 5))
    slots = 3 if (brightness > 0 or contrast > 0 or saturation > 0) else 0
    contrast_on = contrast > 0
    if hue <= 0:
        for j in range(slots):
            images = _blend_slot(images, order[:, j], apply, factors, contrast_on)
        return images
    hue_position = tf.minimum(tf.cast(u[:, 5] * 4, tf.int32), 3)
    for j in range(slots):  # the blend ops that come before hue
        images = _blend_slot(images, order[:, j], apply & (hue_position > j), factors, contrast_on)
    shifted = _adjust_hue(images, -hue + 2.0 * hue * u[:, 3])
    images = images + _per_example(apply) * (shifted - images)  # exact for apply == False
    for j in range(slots):  # and those after it
        images = _blend_slot(images, order[:, j], apply & (hue_position <= j), factors, contrast_on)
    return images


def _reflect_matrices(n: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """``[batch, n, n]`` matrices ``M`` with ``(M v)_i = sum_t w_t v[reflect(i + t - r)]``.

    Reflection as ``tf.pad(mode="REFLECT")`` / OpenCV's BORDER_REFLECT_101.
    """
    k = weights.shape[1]
    r = k // 2
    index = tf.range(n)[None, :] + tf.range(-r, r + 1)[:, None]  # [k, n]
    index = tf.abs(index)
    index = tf.where(index > n - 1, 2 * (n - 1) - index, index)
    index = tf.clip_by_value(index, 0, n - 1)  # kernel wider than the image: clamp
    taps = tf.one_hot(index, n, dtype=weights.dtype)  # [k, n(out), n(in)]
    return tf.einsum("bt,tij->bij", weights, taps)


def _gaussian_blur(images, sigma, kernel_size, apply=None):
    """Separable Gaussian blur with a per-example ``sigma`` ([batch]), as two batched matmuls.

    Examples where ``apply`` is False get a delta kernel, i.e. identity matrices: exactly unchanged.
    """
    r = kernel_size // 2
    offsets = tf.range(-r, r + 1, dtype=tf.float32)
    weights = tf.exp(-tf.square(offsets)[None, :] / (2.0 * tf.square(sigma)[:, None]))
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    if apply is not None:
        weights = tf.where(apply[:, None], weights, tf.cast(tf.equal(offsets, 0.0), tf.float32)[None, :])
    shape = tf.shape(images)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    rows = _reflect_matrices(h, weights)  # [B, H, H]
    cols = _reflect_matrices(w, weights)  # [B, W, W]
    out = tf.matmul(rows, tf.reshape(images, [b, h, w * c]))  # blur along height
    out = tf.transpose(tf.reshape(out, [b, h, w, c]), [0, 2, 1, 3])  # [B, W, H, C]
    out = tf.matmul(cols, tf.reshape(out, [b, w, h * c]))  # blur along width
    out = tf.transpose(tf.reshape(out, [b, w, h, c]), [0, 2, 1, 3])
    out = tf.clip_by_value(out, 0.0, 1.0)
    out.set_shape(images.shape)
    return out


def default_blur_kernel_size(height: int) -> int:
    """SimCLR's blur kernel: 10% of the image height, made odd, at least 3."""
    size = int(0.1 * height)
    if size % 2 == 0:
        size += 1
    return max(size, 3)


# --------------------------------------------------------------------------------------------
# Layers.
# --------------------------------------------------------------------------------------------
class _RandomImageLayer(keras.layers.Layer):
    """Owns the seed generator; ``training=False`` is the identity."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = _check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def _uniform(self, batch_size, columns: int) -> tf.Tensor:
        return rng.stateless_uniform(tf.stack([batch_size, columns]), _replica_seed(self.seed_generator))

    def call(self, inputs, training=True):
        inputs = tf.convert_to_tensor(inputs)
        _check_images(inputs)
        if not training:
            return inputs
        dtype = inputs.dtype
        out = self._augment(tf.cast(inputs, tf.float32))
        return tf.cast(out, dtype)

    def _augment(self, images):  # pragma: no cover - abstract
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="tf_avae")
class RandomResizedCrop(_RandomImageLayer):
    """Per-example random resized crop (torchvision ``RandomResizedCrop``), bilinear.

    Args:
        scale: range of the crop's area as a fraction of the image area, ``0 < low <= high <= 1``.
        ratio: range of the crop's aspect ratio width/height, sampled log-uniformly.
        output_size: ``None`` (the input size), an int or ``(height, width)``.
        seed: int or None.

    One ``tf.image.crop_and_resize`` call with one box per example.
    """

    def __init__(self, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), output_size=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        # CropAndResize has no XLA kernel: tell Keras, so that `compile(jit_compile="auto")` of a
        # model holding this layer falls back to a plain graph instead of failing (as RandomCrop does).
        self.supports_jit = False
        self.scale = _check_scale("scale", scale)
        self.ratio = _check_ratio("ratio", ratio)
        self.output_size = _check_output_size(output_size)

    def _augment(self, images):
        u = self._uniform(tf.shape(images)[0], _CROP_COLUMNS)
        return _random_resized_crop(images, u, self.scale, self.ratio, self.output_size)

    def call(self, inputs, training=True):
        out = super().call(inputs, training=training)
        if not training and self.output_size is not None and tuple(out.shape[1:3]) != self.output_size:
            # Inference still has to produce the promised size: the whole image, resized (this is
            # the only case where training=False is not the identity).
            out = tf.cast(tf.image.resize(tf.cast(out, tf.float32), self.output_size), out.dtype)
        return out

    def compute_output_shape(self, input_shape):
        if self.output_size is None:
            return tuple(input_shape)
        return (input_shape[0], self.output_size[0], self.output_size[1], input_shape[3])

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "ratio": self.ratio,
            "output_size": self.output_size,
        }


@keras.saving.register_keras_serializable(package="tf_avae")
class SimCLRAugment(_RandomImageLayer):
    """SimCLR view: crop -> flip -> colour jitter (p) -> grayscale (p) -> Gaussian blur (p).

    Args:
        crop_scale, crop_ratio: of the random resized crop (output size = input size).
        flip: horizontal flip with probability 0.5.
        jitter_strength: (brightness, contrast, saturation, hue) as torchvision's ColorJitter;
            factors ~ U[max(0, 1 - s), 1 + s], hue shift ~ U[-h, h] with h <= 0.5.
        jitter_probability: per-example probability of applying the jitter.
        grayscale_probability: per-example probability of replacing RGB with its luma (3 channels kept).
        blur_probability: per-example probability of a Gaussian blur.
        blur_kernel_size: odd int, or None for 10% of the image height made odd (SimCLR).
        blur_sigma: (low, high), sigma ~ U[low, high] per example.
        seed: int or None.

    Images must have 1 or 3 channels; on 1-channel images only brightness and contrast act.
    """

    def __init__(
        self,
        crop_scale=(0.08, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        flip=True,
        jitter_strength=(0.4, 0.4, 0.4, 0.1),
        jitter_probability=0.8,
        grayscale_probability=0.2,
        blur_probability=0.0,
        blur_kernel_size=None,
        blur_sigma=(0.1, 2.0),
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.supports_jit = False  # CropAndResize has no XLA kernel (see RandomResizedCrop)
        self.crop_scale = _check_scale("crop_scale", crop_scale)
        self.crop_ratio = _check_ratio("crop_ratio", crop_ratio)
        self.flip = _check_bool("flip", flip)
        self.jitter_strength = _check_jitter("jitter_strength", jitter_strength)
        self.jitter_probability = _check_probability("jitter_probability", jitter_probability)
        self.grayscale_probability = _check_probability("grayscale_probability", grayscale_probability)
        self.blur_probability = _check_probability("blur_probability", blur_probability)
        self.blur_kernel_size = _check_kernel_size(blur_kernel_size)
        self.blur_sigma = _check_ratio("blur_sigma", blur_sigma)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels not in (1, 3):
            raise ValueError(
                f"SimCLRAugment needs images with 1 or 3 channels (grey or RGB); got input shape {tuple(input_shape)}."
            )
        if self.blur_probability > 0 and self.blur_kernel_size is None and input_shape[1] is None:
            raise ValueError(
                "SimCLRAugment with blur_kernel_size=None needs a known image height to size the blur kernel; "
                f"got input shape {tuple(input_shape)}. Pass blur_kernel_size explicitly."
            )
        super().build(input_shape)

    # Columns of the per-call uniform block.
    _FLIP = _CROP_COLUMNS
    _JITTER_APPLY = _FLIP + 1
    _JITTER = _JITTER_APPLY + 1  # 6 columns: 4 factors, order, hue position
    _GRAY = _JITTER + 6
    _BLUR_APPLY = _GRAY + 1
    _BLUR_SIGMA = _BLUR_APPLY + 1
    _COLUMNS = _BLUR_SIGMA + 1

    def _augment(self, images):
        u = self._uniform(tf.shape(images)[0], self._COLUMNS)

        def draw(column, probability):
            return u[:, column] < probability

        # The horizontal flip is folded into the crop: crop_and_resize samples a box with x1 > x2
        # right to left, i.e. returns the mirrored crop, at no extra cost.
        flip = draw(self._FLIP, 0.5) if self.flip else None
        images = _random_resized_crop(
            images, u[:, :_CROP_COLUMNS], self.crop_scale, self.crop_ratio, None, flip=flip
        )
        if self.jitter_probability > 0 and any(s > 0 for s in self.jitter_strength):
            images = _color_jitter(
                images,
                u[:, self._JITTER : self._JITTER + 6],
                self.jitter_strength,
                apply=draw(self._JITTER_APPLY, self.jitter_probability),
            )
        if self.grayscale_probability > 0 and images.shape[-1] == 3:
            # a x + b gray with (a, b) = (0, 1) or (1, 0): exact in both cases, cheaper than tf.where.
            to_gray = _per_example(draw(self._GRAY, self.grayscale_probability))
            images = (1.0 - to_gray) * images + to_gray * _gray(images)
        if self.blur_probability > 0:
            kernel = self.blur_kernel_size or default_blur_kernel_size(int(images.shape[1]))
            low, high = self.blur_sigma
            sigma = low + (high - low) * u[:, self._BLUR_SIGMA]
            images = _gaussian_blur(images, sigma, kernel, apply=draw(self._BLUR_APPLY, self.blur_probability))
        return images  # every step above keeps [0, 1] (each clips where it can leave it)

    def get_config(self):
        return {
            **super().get_config(),
            "crop_scale": self.crop_scale,
            "crop_ratio": self.crop_ratio,
            "flip": self.flip,
            "jitter_strength": self.jitter_strength,
            "jitter_probability": self.jitter_probability,
            "grayscale_probability": self.grayscale_probability,
            "blur_probability": self.blur_probability,
            "blur_kernel_size": self.blur_kernel_size,
            "blur_sigma": self.blur_sigma,
        }


@keras.saving.register_keras_serializable(package="tf_avae")
class GaussianNoiseAugment(_RandomImageLayer):
    """Adds i.i.d. ``N(0, stddev^2)`` noise to every pixel in training (the noise-augmentation control).

    Args:
        stddev: >= 0, in pixel units (images in [0, 1]).
        clip: clip the result to [0, 1]; by default the noisy images are left unclipped (the noise
            stays zero-mean, as the likelihood noise of AVAE's ``delusion="sample"``).
        region: ``"all"`` pixels, or only the ``"background"`` (pixels black in every channel) or the
            ``"foreground"`` (the others) of each image, as :func:`tf_avae.adversarial.region_mask` draws them.
        seed: int or None.
    """

    def __init__(self, stddev, clip=False, region="all", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stddev = validation.check_non_negative("stddev", stddev)
        self.clip = _check_bool("clip", clip)
        self.region = validation.check_choice("region", region, REGIONS)

    def _augment(self, images):
        if self.stddev == 0:
            return images
        noise = rng.stateless_normal(tf.shape(images), _replica_seed(self.seed_generator), stddev=self.stddev)
        mask = region_mask(images, self.region)
        out = images + (noise if mask is None else noise * mask)
        return tf.clip_by_value(out, 0.0, 1.0) if self.clip else out

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "clip": self.clip, "region": self.region}


# --------------------------------------------------------------------------------------------
# Presets.
# --------------------------------------------------------------------------------------------
SIMCLR_PRESETS: dict[str, dict[str, Any]] = {
    # AAVAE authors' CIFAR-10 pipeline (SimCLR): no blur on 32x32.
    "cifar10": dict(
        crop_scale=(0.08, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        flip=True,
        jitter_strength=(0.4, 0.4, 0.4, 0.1),
        jitter_probability=0.8,
        grayscale_probability=0.2,
        blur_probability=0.0,
    ),
    # AAVAE authors' STL-10 pipeline: stronger jitter, blur with p=0.5 (kernel 10% of 96 -> 9).
    "stl10": dict(
        crop_scale=(0.08, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        flip=True,
        jitter_strength=(0.8, 0.8, 0.8, 0.2),
        jitter_probability=0.8,
        grayscale_probability=0.2,
        blur_probability=0.5,
        blur_sigma=(0.1, 2.0),
    ),
    # Our choice for 28x28 ColorMNIST. Digits: crops keep >= half the area so the digit survives,
    # no flip (mirrored digits are other glyphs), no blur (a 3x3 kernel on 28x28 mostly erases strokes).
    # Colour is a label of the evaluation and AAVAE reconstructs the *original* x, so the colour
    # must stay recoverable from the view: no hue shift and no grayscale (the 7 colours are RGB
    # corners; a hue shift or grey would destroy the information), only brightness/contrast/saturation.
    "color_mnist": dict(
        crop_scale=(0.5, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        flip=False,
        jitter_strength=(0.4, 0.4, 0.4, 0.0),
        jitter_probability=0.8,
        grayscale_probability=0.0,
        blur_probability=0.0,
    ),
    # Our choice for 28x28x1 MNIST: same geometry; brightness/contrast only (grey images).
    "mnist": dict(
        crop_scale=(0.5, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        flip=False,
        jitter_strength=(0.4, 0.4, 0.0, 0.0),
        jitter_probability=0.8,
        grayscale_probability=0.0,
        blur_probability=0.0,
    ),
}


def simclr_augment(dataset: str, seed=None) -> SimCLRAugment:
    """``SimCLRAugment`` configured for ``dataset`` (one of ``SIMCLR_PRESETS``)."""
    validation.check_choice("dataset", dataset, SIMCLR_PRESETS)
    return SimCLRAugment(**SIMCLR_PRESETS[dataset], seed=seed)


if __name__ == "__main__":  # pragma: no cover - `python -m tf_avae.augment`: throughput, print only
    import time

    for preset, shape in [("cifar10", (256, 32, 32, 3)), ("stl10", (256, 96, 96, 3))]:
        layer = simclr_augment(preset, seed=0)
        step = tf.function(lambda images, layer=layer: layer(images, training=True))
        batch = tf.random.uniform(shape)
        for _ in range(3):
            step(batch).numpy()
        repeats = 20
        start = time.perf_counter()
        for _ in range(repeats):
            step(batch).numpy()
        seconds = (time.perf_counter() - start) / repeats
        print(f"SimCLRAugment[{preset}] {shape}: {shape[0] / seconds:,.0f} images/s ({seconds * 1e3:.1f} ms/batch)")
