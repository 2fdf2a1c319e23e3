r"""Where must the AVAE's delusion noise be centred? Table 1's AVAE with x~'s centre moved (colorMNIST; a diagnosis,
not a paper experiment)

    python scripts/reproduce.py --config configs/delusion_centre_color_mnist.py --workdir runs/delusion_centre
    python scripts/reproduce.py --config configs/delusion_centre_color_mnist.py:smoke --workdir /tmp/centre_smoke

The paper's AVAE couples the code of a training image x to the code of x~ = g(z) + noise, z ~ q(z|x) (eq. 10): noise
around the decoder's output, which lies about as far from x (median L2 4.6-4.8 at x1) as the corners of the L-inf
ball of radius 0.1 (4.85). Each run keeps Table 1's AVAE and moves only the centre of the same noise draw to
x + s * d (`AVAE(delusion_offset=..., offset_scale=s)`, `tf_avae.models.avae.moved_delusion_images`):
  vae                  VAE (the time reference and the non-robust baseline)
  avae                 the paper's AVAE: d = g(z) - x, s = 1
  avae_at_data         s = 0: the noise centred at x itself (SE's coupling term with Gaussian noise in place of PGD,
                       at rho 0.975)
  avae_half            d = g(z) - x, s = 0.5: halfway
  avae_random          d = a random direction with the length of g(z) - x, s = 1: as far from x, another direction
  avae_shuffled        d = the next example's g(z) - x in the batch, s = 1: a decoder-like residual, not x's own
  avae_quarter, avae_random_x2, avae_fixed, avae_dimmed, avae_orthogonal, avae_ink, avae_signed, avae_scrambled,
  avae_scattered, avae_shifted, avae_shifted_1, avae_shifted_2, avae_shifted_3, avae_shifted_5, avae_shifted_8
                       only when named in --config.run_names: s = 0.25; the random direction at twice the distance;
                       one random direction drawn once (the same for every image and step) with the length of
                       g(z) - x; -x (x's ink darkened) with that length; g(z) - x less its component along x,
                       scaled back to its length; a random direction (new each step) on x's ink, the pixels and
                       channels where x > 0, with that length; g(z) - x times a random sign per example and step;
                       g(z) - x with its entries moved by one fixed permutation (the same for every image and step);
                       g(z) - x with its pixels so moved, each pixel's channels together;
                       g(z) - x moved 4 pixels down and right; moved 1, 2, 3, 5 or 8 pixels
Is it the distance of the decoder's output from x, or its direction, that leaves x unprotected? And if the
direction: is it only that x's own residual is predictable (avae_fixed: as predictable, a single direction, but
unrelated to x), or that it darkens x's own ink (avae_dimmed: a function of x, but not the decoder's error)? And
if x's dimming undoes the protection: does x's residual without its part along x (avae_orthogonal) still undo it,
and does an offset that only lies where x's ink is (avae_ink: random, not a function of x's values) undo it? Is it
x's residual's direction, or that the noise's centre is, on average, a deterministic function of x other than x
plus a constant (avae_signed: x's own residual with a random sign, so centred at x on average)? And is it any
deterministic function of x, or one along x's own content (avae_scrambled: x's residual with its pixels scrambled
by one fixed permutation, a function of x as close to it for similar images as x's residual, but laid out elsewhere)?
And must it lie on x's strokes, or is a stroke-like offset beside them enough (avae_shifted: x's residual moved 4
pixels), and how does the protection grow with the shift (avae_shifted_1, _2, _8)? Does its dip at 4 pixels follow
the encoder's stride, two stride-2 convolutions, so that 4 pixels is one cell of its 7x7 grid (avae_shifted_3, _5)?
Is it the layout of the strokes or of the colour channels that the scrambled residual loses (avae_scattered: its
pixels scrambled, each pixel's channels kept together)?

Arguments: (none) 5000 steps of batch 64, Adam lr 1e-3, seed 0, evaluation on 5000 test examples, as Table 1
(~4.5 min of training per run on the first 2-core machine, 14-18 min on later ones, one core per run; evaluation
~1.5-4 min); `smoke` (CI); `paper` (100k steps at lr 1e-4, whole test set). On the MLP 4 x 200 (no stride grid;
results/delusion_centre_mlp_5k.md): add `--config.base.network.architecture=mlp` (results.md's Network line
names it; a `--config.title` may too).
"""

from tf_avae import reproduce_lib, train_lib

# avae_shifted_<n>: x's residual moved n pixels down and right, beside avae_shifted's 4.
SHIFT_CURVE = (1, 2, 3, 5, 8)


def get_config(arg=None):
    config = reproduce_lib.experiment_config("delusion_centre")
    config.title = "Table 1's AVAE with the centre of its delusion noise moved, colorMNIST ConvNet"
    reproduce_lib.color_mnist_conv(config)
    add = reproduce_lib.add_run

    add(config, "vae", "VAE", {"name": "vae", "beta": 1.0}, paper="VAE")
    add(config, "avae", "AVAE: noise at g(z) (eq. 10)", train_lib.paper_model("avae"), curve=True, paper="AVAE")
    # The moved centres, each a control: (run, delusion_offset, offset_scale, runs unasked, label, note).
    for name, offset, scale, default, label, note in (
        ("avae_at_data", "decoder", 0.0, True,
         "AVAE, noise at x",
         "x~ = x + noise: the centre moved onto the training image"),
        ("avae_half", "decoder", 0.5, True,
         "AVAE, noise at x + (g(z) - x) / 2",
         "halfway between x and the decoder's output"),
        ("avae_random", "random", 1.0, True,
         "AVAE, noise at x + a random direction as long as g(z) - x",
         "as far from x as g(z), in a random direction"),
        ("avae_shuffled", "shuffled", 1.0, True,
         "AVAE, noise at x + another image's g(z) - x",
         "the next example's decoder residual: decoder-like, not x's own"),
        ("avae_quarter", "decoder", 0.25, False,
         "AVAE, noise at x + (g(z) - x) / 4",
         "a quarter of the way to the decoder's output"),
        ("avae_random_x2", "random", 2.0, False,
         "AVAE, noise at x + a random direction twice as long as g(z) - x",
         "twice as far as g(z), in a random direction"),
        ("avae_fixed", "fixed", 1.0, False,
         "AVAE, noise at x + one fixed direction as long as g(z) - x",
         "the same direction for every image and step: predictable, not x's own"),
        ("avae_dimmed", "dimmed", 1.0, False,
         "AVAE, noise at x - x scaled to the length of g(z) - x",
         "x's ink darkened by as much as g(z) differs from x: a function of x"),
        ("avae_orthogonal", "orthogonal", 1.0, False,
         "AVAE, noise at x + (g(z) - x) less its part along x, as long as g(z) - x",
         "x's own residual without the dimming: the decoder's error, not along x"),
        ("avae_ink", "ink", 1.0, False,
         "AVAE, noise at x + a random direction on x's ink, as long as g(z) - x",
         "random, new each step, on the pixels and channels where x > 0: where x's residual lies, not x's own"),
        ("avae_signed", "signed", 1.0, False,
         "AVAE, noise at x +/- (g(z) - x), a random sign per example and step",
         "x's own residual, flipped at random: on average the noise is centred at x"),
        ("avae_scrambled", "scrambled", 1.0, False,
         "AVAE, noise at x + g(z) - x with its entries moved by one fixed permutation",
         "a deterministic function of x, with x's residual's values, not along x's content"),
        ("avae_scattered", "scattered", 1.0, False,
         "AVAE, noise at x + g(z) - x with its pixels moved by one fixed permutation, each keeping its channels",
         "x's residual's per-pixel colours, not the shape of its strokes: scrambled, but not across channels"),
        ("avae_shifted", "shifted", 1.0, False,
         "AVAE, noise at x + g(z) - x moved 4 pixels down and right",
         "x's residual, stroke-like and a function of x, laid beside x's strokes instead of on them"),
    ):
        add(config, name, label, train_lib.paper_model("avae", delusion_offset=offset, offset_scale=scale),
            role="control", default=default, note=note)
    for pixels in SHIFT_CURVE:  # avae_shifted's residual moved by other distances (avae_shifted: 4 pixels)
        add(config, f"avae_shifted_{pixels}", f"AVAE, noise at x + g(z) - x moved {pixels} pixel(s) down and right",
            train_lib.paper_model("avae", delusion_offset="shifted", offset_scale=1.0, offset_shift=pixels),
            role="control", default=False,
            note=f"x's residual moved {pixels} pixel(s): avae_shifted at another distance")
    reproduce_lib.table1_report(
        config, time_reference="vae", curve_runs=("avae",),
        comparisons=(
            {"run": "avae_at_data", "against": "avae",
             "question": "Does centring the delusion noise at x instead of g(z) make the AVAE robust?"},
            {"run": "avae_random", "against": "avae",
             "question": "At g(z)'s distance from x but in a random direction, is the AVAE robust?"},
            {"run": "avae_shuffled", "against": "avae",
             "question": "With another image's decoder residual, is the AVAE robust?"},
            {"run": "avae_fixed", "against": "avae_random",
             "question": "With one fixed direction in place of a new random one each step, is the AVAE as robust?"},
            {"run": "avae_dimmed", "against": "avae",
             "question": "Offset along -x (x darkened) instead of x's own residual, is the AVAE robust?"},
            {"run": "avae_orthogonal", "against": "avae",
             "question": "With x's own residual less its part along x, is the AVAE robust?"},
            {"run": "avae_ink", "against": "avae_random",
             "question": "With the random direction kept on x's ink, is the AVAE as robust?"},
            {"run": "avae_signed", "against": "avae",
             "question": "With x's own residual at a random sign, centred at x on average, is the AVAE robust?"},
            {"run": "avae_scrambled", "against": "avae",
             "question": "With x's own residual scrambled by one fixed permutation, is the AVAE robust?"},
            {"run": "avae_scattered", "against": "avae_scrambled",
             "question": "With x's residual's pixels scrambled but each pixel's channels kept together, is the AVAE "
                         "as robust as with every entry scrambled?"},
            {"run": "avae_shifted", "against": "avae",
             "question": "With x's own residual moved 4 pixels, is the AVAE robust?"},
            *({"run": f"avae_shifted_{pixels}", "against": "avae",
               "question": f"With x's own residual moved {pixels} pixel(s), is the AVAE robust?"}
              for pixels in SHIFT_CURVE),
            {"run": "avae_half", "against": "avae",
             "question": "Halfway to g(z), is the AVAE robust?"},
            {"run": "avae", "against": "vae", "question": "Is the AVAE more robust than the VAE?"},
        ),
        claim="(not a paper claim) whether the AVAE's delusions leave x unprotected because of how far their centre "
              "g(z) lies from x or because of the direction g(z) - x.")
    return reproduce_lib.apply_argument(config, arg)
