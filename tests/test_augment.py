"""Tests of tf_avae.augment against independent numpy references and statistics."""

import colorsys
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_avae import augment
from tf_avae.augment import GaussianNoiseAugment, RandomResizedCrop, SimCLRAugment, simclr_augment

LUMA = np.array([0.2989, 0.587, 0.114], np.float32)

# SimCLRAugment with every step off except the ones a test switches on.
NOTHING = dict(
    crop_scale=(1.0, 1.0),
    crop_ratio=(1.0, 1.0),
    flip=False,
    jitter_probability=0.0,
    grayscale_probability=0.0,
    blur_probability=0.0,
)


def _images(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _bilinear(image, ys, xs):
    """numpy bilinear sampling of ``image[H, W]`` at the grid ``ys x xs`` (pixel-centre units)."""
    h, w = image.shape
    y0 = np.clip(np.floor(ys).astype(int), 0, h - 1)
    x0 = np.clip(np.floor(xs).astype(int), 0, w - 1)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = image[y0][:, x0] * (1 - wx) + image[y0][:, x1] * wx
    bottom = image[y1][:, x0] * (1 - wx) + image[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def _recover_window(out, height, width):
    """From a crop of the gradient image (ch0 = row/(H-1), ch1 = col/(W-1)): sampled rows and cols."""
    ys = out[:, 0, 0] * (height - 1)
    xs = out[0, :, 1] * (width - 1)
    np.testing.assert_allclose(out[:, :, 0], np.repeat(out[:, :1, 0], out.shape[1], 1), atol=1e-6)
    np.testing.assert_allclose(out[:, :, 1], np.repeat(out[:1, :, 1], out.shape[0], 0), atol=1e-6)
    return ys, xs


def _gradient_images(batch, height, width, seed=0):
    rows = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None] / (height - 1), (height, width))
    cols = np.broadcast_to(np.arange(width, dtype=np.float32)[None, :] / (width - 1), (height, width))
    texture = _images((batch, height, width), seed)  # arbitrary, non-linear content
    return np.stack([np.broadcast_to(rows, texture.shape), np.broadcast_to(cols, texture.shape), texture], -1)


# ------------------------------------------------------------------ RandomResizedCrop
def test_full_scale_square_crop_is_the_identity():
    x = _images((4, 9, 9, 3))
    out = RandomResizedCrop(scale=(1, 1), ratio=(1, 1), seed=0)(x, training=True).numpy()
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(SimCLRAugment(**NOTHING, seed=0)(x, training=True).numpy(), x)


def test_crop_is_per_example_and_keeps_a_constant_image_constant():
    x = np.repeat(_images((1, 16, 16, 3)), 8, axis=0)
    out = RandomResizedCrop(seed=1)(x, training=True).numpy()
    distinct = {out[i].tobytes() for i in range(8)}
    assert len(distinct) == 8  # keras.layers.RandomCrop would give one crop for the whole batch
    const = np.full((8, 16, 16, 3), 0.37, np.float32)
    np.testing.assert_allclose(RandomResizedCrop(seed=1)(const, training=True).numpy(), 0.37, atol=1e-6)


@pytest.mark.parametrize("scale,ratio", [((0.08, 1.0), (3 / 4, 4 / 3)), ((0.3, 0.5), (0.5, 2.0))])
def test_crop_matches_numpy_bilinear_reference_for_the_recovered_box(scale, ratio):
    height, width, out_h, out_w = 20, 24, 15, 18
    x = _gradient_images(32, height, width)
    out = RandomResizedCrop(scale=scale, ratio=ratio, output_size=(out_h, out_w), seed=3)(x, training=True)
    out = out.numpy()
    assert out.shape == (32, out_h, out_w, 3)
    for i in range(32):
        ys, xs = _recover_window(out[i], height, width)
        # evenly spaced samples from the first to the last pixel of the window, inside the image
        np.testing.assert_allclose(np.diff(ys), np.diff(ys)[0], atol=1e-4)
        np.testing.assert_allclose(np.diff(xs), np.diff(xs)[0], atol=1e-4)
        assert ys[0] >= -1e-4 and ys[-1] <= height - 1 + 1e-4
        assert xs[0] >= -1e-4 and xs[-1] <= width - 1 + 1e-4
        box_h, box_w = ys[-1] - ys[0] + 1, xs[-1] - xs[0] + 1  # window size in pixels
        assert scale[0] - 1e-3 <= box_h * box_w / (height * width) <= scale[1] + 1e-3
        assert ratio[0] - 1e-3 <= box_w / box_h <= ratio[1] + 1e-3
        np.testing.assert_allclose(out[i, :, :, 2], _bilinear(x[i, :, :, 2], ys, xs), atol=2e-5)


def test_crop_falls_back_to_the_central_crop_when_no_candidate_fits():
    # ratio 2 at full area never fits a square image: torchvision's fallback is the widest
    # centred crop with the ratio clamped into range, here width W and height W / 2.
    x = _gradient_images(4, 16, 16)
    out = RandomResizedCrop(scale=(1, 1), ratio=(2, 2), seed=0)(x, training=True).numpy()
    for i in range(4):
        ys, xs = _recover_window(out[i], 16, 16)
        np.testing.assert_allclose([ys[0], ys[-1] - ys[0] + 1], [4.0, 8.0], atol=1e-4)
        np.testing.assert_allclose([xs[0], xs[-1] - xs[0] + 1], [0.0, 16.0], atol=1e-4)


# ------------------------------------------------------------------ shapes, range, seeds
LAYERS = {
    "crop": lambda seed: RandomResizedCrop(seed=seed),
    "crop_resize": lambda seed: RandomResizedCrop(output_size=12, seed=seed),
    "cifar10": lambda seed: simclr_augment("cifar10", seed=seed),
    "stl10": lambda seed: simclr_augment("stl10", seed=seed),
    "color_mnist": lambda seed: simclr_augment("color_mnist", seed=seed),
    "noise": lambda seed: GaussianNoiseAugment(0.2, clip=True, seed=seed),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_shape_dtype_range_seeds_and_inference_identity(name):
    x = _images((8, 20, 20, 3))
    x[0] = 0.0
    x[1] = 1.0  # extremes, where colour ops saturate
    out = LAYERS[name](5)(x, training=True)
    expected = (8, 12, 12, 3) if name == "crop_resize" else x.shape
    assert out.shape == expected and out.dtype == tf.float32
    out = out.numpy()
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(LAYERS[name](5)(x, training=True).numpy(), out)  # same seed, fresh layer
    assert not np.array_equal(LAYERS[name](6)(x, training=True).numpy(), out)  # another seed
    layer = LAYERS[name](5)
    first = layer(x, training=True).numpy()
    assert not np.array_equal(layer(x, training=True).numpy(), first)  # the state advances
    if name != "crop_resize":
        np.testing.assert_array_equal(layer(x, training=False).numpy(), x)


def test_mnist_preset_on_grey_images():
    x = _images((8, 28, 28, 1))
    out = simclr_augment("mnist", seed=0)(x, training=True).numpy()
    assert out.shape == x.shape and 0.0 <= out.min() and out.max() <= 1.0
    assert not np.array_equal(out, x)


def test_presets_follow_the_design_and_reject_unknown_datasets():
    cifar, stl = simclr_augment("cifar10"), simclr_augment("stl10")
    assert cifar.jitter_strength == (0.4, 0.4, 0.4, 0.1) and cifar.jitter_probability == 0.8
    assert cifar.grayscale_probability == 0.2 and cifar.blur_probability == 0.0 and cifar.flip
    assert stl.jitter_strength == (0.8, 0.8, 0.8, 0.2) and stl.blur_probability == 0.5
    assert stl.crop_scale == (0.08, 1.0)
    assert not simclr_augment("mnist").flip and not simclr_augment("color_mnist").flip
    with pytest.raises(ValueError, match="dataset.*cifar10.*imagenet"):
        simclr_augment("imagenet")


# ------------------------------------------------------------------ flip
def test_flip_mirrors_about_half_of_the_examples_exactly():
    x = _images((400, 6, 6, 3))
    out = SimCLRAugment(**{**NOTHING, "flip": True}, seed=2)(x, training=True).numpy()
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same ^ mirrored)
    assert abs(mirrored.mean() - 0.5) < 4 * np.sqrt(0.25 / 400)


# ------------------------------------------------------------------ colour jitter
def _np_hue(image, delta):
    flat = image.reshape(-1, 3).astype(np.float64)
    out = []
    for r, g, b in flat:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        out.append(colorsys.hsv_to_rgb((h + delta) % 1.0, s, v))
    return np.clip(np.array(out).reshape(image.shape), 0, 1)


def _np_jitter_op(image, op, factor):
    """torchvision.transforms.functional adjust_{brightness,contrast,saturation,hue}."""
    gray = (image @ LUMA.astype(np.float64))[..., None]
    if op == "b":
        return np.clip(factor * image, 0, 1)
    if op == "c":
        return np.clip(factor * image + (1 - factor) * gray.mean(), 0, 1)
    if op == "s":
        return np.clip(factor * image + (1 - factor) * gray, 0, 1)
    return _np_hue(image, factor)


def test_jitter_matches_torchvision_semantics_in_all_24_orders():
    strength = (0.5, 0.6, 0.7, 0.2)
    orders = list(itertools.product(range(6), range(4)))  # (order of b/c/s, position of hue)
    x = _images((len(orders), 5, 5, 3), seed=4)
    rng = np.random.default_rng(5)
    u = rng.random((len(orders), 6)).astype(np.float32)
    u[:, 4] = [(perm + 0.5) / 6 for perm, _ in orders]
    u[:, 5] = [(pos + 0.5) / 4 for _, pos in orders]
    out = augment._color_jitter(tf.constant(x), tf.constant(u), strength, tf.ones([len(orders)], tf.bool)).numpy()
    seen = set()
    for i, (perm, pos) in enumerate(orders):
        factors = {
            "b": 1 - strength[0] + 2 * strength[0] * u[i, 0],
            "c": 1 - strength[1] + 2 * strength[1] * u[i, 1],
            "s": 1 - strength[2] + 2 * strength[2] * u[i, 2],
            "h": -strength[3] + 2 * strength[3] * u[i, 3],
        }
        sequence = ["bcs"[k] for k in augment._BCS_PERMUTATIONS[perm]]
        sequence.insert(pos, "h")
        seen.add("".join(sequence))
        expected = x[i].astype(np.float64)
        for op in sequence:
            expected = _np_jitter_op(expected, op, factors[op])
        np.testing.assert_allclose(out[i], expected, atol=2e-5, err_msg="".join(sequence))
    assert len(seen) == 24


def test_jitter_factor_ranges_clamp_at_zero():
    # torchvision: brightness/contrast/saturation factors in [max(0, 1 - s), 1 + s]
    x = _images((300, 4, 4, 3), seed=6)
    out = SimCLRAugment(**{**NOTHING, "jitter_probability": 1.0, "jitter_strength": (1.5, 0, 0, 0)}, seed=0)(
        x, training=True
    ).numpy()
    np.testing.assert_array_less(-1e-7, out)  # a factor below 0 would have clipped everything to 0
    ratio = (out / x)[(out < 0.999) & (x > 1e-3)]  # unclipped pixels reveal the factor
    assert ratio.min() >= -1e-5 and ratio.max() <= 2.5 + 1e-4


def test_jitter_probability_zero_is_identity_and_one_changes_every_example():
    x = _images((64, 8, 8, 3), seed=7)
    never = SimCLRAugment(**{**NOTHING, "jitter_probability": 0.0}, seed=0)(x, training=True).numpy()
    np.testing.assert_array_equal(never, x)
    always = SimCLRAugment(**{**NOTHING, "jitter_probability": 1.0}, seed=0)(x, training=True).numpy()
    assert np.all(np.any(always != x, axis=(1, 2, 3)))
    half = SimCLRAugment(**{**NOTHING, "jitter_probability": 0.5}, seed=0)(x, training=True).numpy()
    untouched = np.all(half == x, axis=(1, 2, 3))  # untouched examples are bit-exact
    assert 0 < untouched.sum() < 64


def test_colour_ops_skip_grey_images():
    x = _images((16, 8, 8, 1), seed=8)
    hue_sat_gray = dict(NOTHING, jitter_probability=1.0, jitter_strength=(0, 0, 0.8, 0.3), grayscale_probability=1.0)
    np.testing.assert_array_equal(SimCLRAugment(**hue_sat_gray, seed=0)(x, training=True).numpy(), x)
    bright = dict(NOTHING, jitter_probability=1.0, jitter_strength=(0.5, 0, 0, 0))
    assert not np.array_equal(SimCLRAugment(**bright, seed=0)(x, training=True).numpy(), x)


# ------------------------------------------------------------------ grayscale
def test_grayscale_is_the_luma_in_every_channel():
    x = _images((16, 6, 6, 3), seed=9)
    out = SimCLRAugment(**{**NOTHING, "grayscale_probability": 1.0}, seed=0)(x, training=True).numpy()
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_allclose(out[..., 0], x @ LUMA, atol=1e-6)


def test_grayscale_fraction_is_binomial():
    p, n = 0.3, 3000
    x = _images((n, 3, 3, 3), seed=10)
    out = SimCLRAugment(**{**NOTHING, "grayscale_probability": p}, seed=11)(x, training=True).numpy()
    grey = np.all(out[..., 0] == out[..., 1], axis=(1, 2)) & np.all(out[..., 1] == out[..., 2], axis=(1, 2))
    np.testing.assert_array_equal(out[~grey], x[~grey])
    assert abs(grey.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)


# ------------------------------------------------------------------ blur
def test_blur_of_a_constant_is_constant_and_of_a_delta_is_a_normalised_gaussian():
    blur = dict(NOTHING, blur_probability=1.0, blur_kernel_size=9, blur_sigma=(0.5, 2.0))
    const = np.full((4, 21, 21, 3), 0.6, np.float32)
    np.testing.assert_allclose(SimCLRAugment(**blur, seed=0)(const, training=True).numpy(), 0.6, atol=1e-6)

    delta = np.zeros((8, 21, 21, 1), np.float32)
    delta[:, 10, 10] = 1.0
    out = SimCLRAugment(**blur, seed=1)(delta, training=True).numpy()[..., 0]
    offsets = np.arange(-4, 5)
    sigmas = []
    for k in out:
        np.testing.assert_allclose(k.sum(), 1.0, atol=1e-5)
        np.testing.assert_allclose(k, k[::-1], atol=1e-7)
        np.testing.assert_allclose(k, k[:, ::-1], atol=1e-7)
        np.testing.assert_allclose(k, k.T, atol=1e-7)
        sigma = np.sqrt(-1 / (2 * np.log(k[10, 11] / k[10, 10])))  # from the ratio of two taps
        g = np.exp(-(offsets**2) / (2 * sigma**2))
        g /= g.sum()
        reference = np.zeros((21, 21))
        reference[6:15, 6:15] = np.outer(g, g)  # 9x9 kernel, nothing beyond it
        np.testing.assert_allclose(k, reference, atol=1e-5)
        sigmas.append(sigma)
    assert 0.5 - 1e-3 <= min(sigmas) and max(sigmas) <= 2.0 + 1e-3 and np.ptp(sigmas) > 0.1  # per example


def test_blur_reflects_at_the_border_and_skips_unselected_examples():
    x = _images((64, 7, 7, 3), seed=12)
    out = SimCLRAugment(**{**NOTHING, "blur_probability": 0.5, "blur_kernel_size": 3}, seed=0)(
        x, training=True
    ).numpy()
    untouched = np.all(out == x, axis=(1, 2, 3))
    assert 0 < untouched.sum() < 64
    # a blurred example equals the separable 3-tap blur with reflect padding for some sigma
    i = int(np.flatnonzero(~untouched)[0])
    padded = np.pad(x[i], ((1, 1), (1, 1), (0, 0)), mode="reflect")
    centre_weight = np.linspace(0.3, 1.0, 2000)
    errors = []
    for c in centre_weight:
        g = np.array([(1 - c) / 2, c, (1 - c) / 2])
        rows = sum(g[t] * padded[t : t + 7] for t in range(3))
        ref = sum(g[t] * rows[:, t : t + 7] for t in range(3))
        errors.append(np.abs(ref - out[i]).max())
    assert min(errors) < 2e-4


# ------------------------------------------------------------------ noise
def test_gaussian_noise_statistics_clip_and_zero():
    x = np.full((16, 16, 16, 3), 0.5, np.float32)
    noisy = GaussianNoiseAugment(0.1, seed=0)(x, training=True).numpy() - 0.5
    assert abs(noisy.mean()) < 4 * 0.1 / np.sqrt(noisy.size)
    assert abs(noisy.std() - 0.1) < 0.005
    wide = GaussianNoiseAugment(1.0, seed=0)(x, training=True).numpy()
    assert wide.min() < 0 and wide.max() > 1  # unclipped by default
    clipped = GaussianNoiseAugment(1.0, clip=True, seed=0)(x, training=True).numpy()
    assert clipped.min() == 0.0 and clipped.max() == 1.0
    np.testing.assert_array_equal(GaussianNoiseAugment(0.0, seed=0)(x, training=True).numpy(), x)


@pytest.mark.parametrize("region", ["background", "foreground"])
def test_gaussian_noise_on_one_region_leaves_the_other_exactly_and_survives_serialisation(region):
    x = np.random.default_rng(0).uniform(0.2, 1.0, (8, 16, 16, 3)).astype(np.float32)
    x[:, :6] = 0.0  # the black background: six rows, every channel
    x[:, 8, :, 0] = 0.0  # black in one channel only: foreground
    black = np.broadcast_to(np.all(x == 0, axis=-1, keepdims=True), x.shape)
    noisy = GaussianNoiseAugment(0.3, region=region, seed=0)(x, training=True).numpy()
    noised = black if region == "background" else ~black
    np.testing.assert_array_equal(noisy[~noised], x[~noised])
    assert abs((noisy - x)[noised].std() - 0.3) < 0.01
    clone = GaussianNoiseAugment.from_config(GaussianNoiseAugment(0.3, region=region, seed=0).get_config())
    np.testing.assert_array_equal(clone(x, training=True).numpy(), noisy)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: RandomResizedCrop(scale=(0.5, 0.2)), ValueError, "scale"),
        (lambda: RandomResizedCrop(scale=(0.0, 1.0)), ValueError, "scale"),
        (lambda: RandomResizedCrop(scale=(0.5, 1.5)), ValueError, "scale"),
        (lambda: RandomResizedCrop(ratio=(2.0, 1.0)), ValueError, "ratio"),
        (lambda: RandomResizedCrop(ratio=(-1.0, 1.0)), ValueError, "ratio"),
        (lambda: RandomResizedCrop(output_size=0), ValueError, "output_size"),
        (lambda: RandomResizedCrop(seed=1.5), TypeError, "seed"),
        (lambda: SimCLRAugment(jitter_probability=1.2), ValueError, "jitter_probability"),
        (lambda: SimCLRAugment(grayscale_probability=-0.1), ValueError, "grayscale_probability"),
        (lambda: SimCLRAugment(blur_probability="half"), TypeError, "blur_probability"),
        (lambda: SimCLRAugment(jitter_strength=(0.4, -0.1, 0.4, 0.1)), ValueError, "contrast"),
        (lambda: SimCLRAugment(jitter_strength=(0.4, 0.4, 0.4, 0.7)), ValueError, "hue"),
        (lambda: SimCLRAugment(jitter_strength=(0.4, 0.4)), TypeError, "jitter_strength"),
        (lambda: SimCLRAugment(blur_kernel_size=4), ValueError, "blur_kernel_size"),
        (lambda: SimCLRAugment(blur_sigma=(0.0, 1.0)), ValueError, "blur_sigma"),
        (lambda: SimCLRAugment(flip="yes"), TypeError, "flip"),
        (lambda: GaussianNoiseAugment(-0.1), ValueError, "stddev"),
        (lambda: GaussianNoiseAugment(0.1, region="digit"), ValueError, "region"),
    ],
)
def test_constructor_arguments_are_validated(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_inputs_are_checked():
    with pytest.raises(TypeError, match="float"):
        SimCLRAugment()(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="rank 4"):
        RandomResizedCrop()(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        SimCLRAugment()(np.zeros((2, 8, 8, 4), np.float32))


# ------------------------------------------------------------------ serialisation
@pytest.mark.parametrize("name", ["crop_resize", "stl10", "noise"])
def test_config_round_trip_repeats_the_augmentation(name):
    x = _images((6, 20, 20, 3), seed=13)
    layer = LAYERS[name](21)
    restored = type(layer).from_config(layer.get_config())
    np.testing.assert_array_equal(restored(x, training=True).numpy(), layer(x, training=True).numpy())
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == layer.get_config()


# ------------------------------------------------------------------ graph contexts
def _op_types(concrete):
    graph_def = concrete.graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types |= {node.op for node in function.node_def}
    return types


def test_tf_function_is_loop_free_and_draws_fresh_randomness_each_step():
    layer = simclr_augment("stl10", seed=0)
    step = tf.function(lambda images: layer(images, training=True))
    x = tf.constant(_images((8, 24, 24, 3), seed=14))
    first, second = step(x).numpy(), step(x).numpy()
    assert first.shape == (8, 24, 24, 3) and 0 <= first.min() and first.max() <= 1
    assert not np.array_equal(first, second)
    types = _op_types(step.get_concrete_function(x))
    assert "CropAndResize" in types
    assert not types & {"While", "StatelessWhile", "For", "MapDefun"}  # no map_fn / per-example loop
    # CropAndResize has no XLA kernel, so Keras must not jit-compile a model holding these layers.
    assert not layer.supports_jit and not RandomResizedCrop().supports_jit


def test_in_tf_data_map_with_a_partial_last_batch():
    layer = simclr_augment("cifar10", seed=0)
    data = tf.data.Dataset.from_tensor_slices(_images((10, 32, 32, 3), seed=15)).batch(4)
    batches = [b.numpy() for b in data.map(lambda b: layer(b, training=True))]
    assert [b.shape for b in batches] == [(4, 32, 32, 3), (4, 32, 32, 3), (2, 32, 32, 3)]
    assert all(0 <= b.min() and b.max() <= 1 for b in batches)


def test_inside_a_keras_model():
    model = keras.Sequential([keras.Input((16, 16, 3)), SimCLRAugment(seed=0), keras.layers.Flatten()])
    x = _images((2, 16, 16, 3), seed=16)
    assert model(x, training=True).shape == (2, 768)
    np.testing.assert_array_equal(model(x, training=False).numpy(), x.reshape(2, -1))
    model.compile(loss="mse")
    assert model.jit_compile is False  # "auto" resolves to no XLA because of supports_jit


@pytest.fixture(scope="module")
def strategy(request):
    """The session's shared MirroredStrategy (conftest.py) if there is one, else our own."""
    try:
        return request.getfixturevalue("mirrored_strategy")
    except pytest.FixtureLookupError:
        devices = tf.config.list_logical_devices("CPU")
        assert len(devices) >= 2, "conftest.py should split the CPU into two logical devices"
        return tf.distribute.MirroredStrategy([d.name for d in devices[:2]])


@pytest.mark.parametrize("in_scope", [True, False])
def test_under_mirrored_strategy_each_replica_draws_its_own_augmentation(strategy, in_scope):
    assert strategy.num_replicas_in_sync == 2
    if in_scope:  # as a model's layers are made: the seed state becomes a MirroredVariable
        with strategy.scope():
            layer = simclr_augment("stl10", seed=3)
    else:
        layer = simclr_augment("stl10", seed=3)
    x = tf.constant(_images((6, 24, 24, 3), seed=17))
    values = strategy.experimental_distribute_values_from_function(lambda ctx: x)

    @tf.function
    def step(images):
        return strategy.run(lambda batch: layer(batch, training=True), args=(images,))

    first = [v.numpy() for v in strategy.experimental_local_results(step(values))]
    second = [v.numpy() for v in strategy.experimental_local_results(step(values))]
    for out in first + second:
        assert out.shape == (6, 24, 24, 3) and 0 <= out.min() and out.max() <= 1
    # same input on both replicas: different augmentations (the replica id is folded into the seed)
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], second[0])
