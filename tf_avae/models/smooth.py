"""Smooth encoder (SE) and SE-AVAE: the encoder must encode an adversarial perturbation of x like x.

SE (Cemgil et al. 2020, section 2 of DESIGN.md) replaces the AVAE's delusion x~ = decoder(z) by the
PGD perturbation of x, within radius `epsilon`, that moves the encoding furthest from that of x:

    loss = -E_q[log p(x|z)] + beta KL(q(z|x) || N(0, I)) - E[log p_rho(z'|z)] - H[q(z'|x~)].

SE-AVAE adds both auxiliary terms (delusion and adversarial) to one loss.

Decisions
---------
* **One attack.** x~ comes from `tf_avae.adversarial.pgd_attack` with
  `encoding_distance_objective` (squared 2-Wasserstein distance between q(z|x) and q(z|x~)), the same
  PGD code the robustness evaluation uses. The attack calls the encoder in inference mode
  (`training=False`: batch statistics are not updated and examples do not interact), starts at a
  uniform random point of the ball (the objective's gradient vanishes at x itself) and keeps pixels
  in [0, 1].
* **x~ is a constant of the gradient step.** `pgd_attack` returns its result under
  `tf.stop_gradient` and `adversarial_images` wraps it once more, so the encoder receives gradient
  only through its two encodings in the coupling and entropy terms, never through the attack.
* **Randomness.** The random start is seeded by `rng.step_seed(seed, step, rng.ATTACK_STREAM)`:
  a step repeats exactly from the model seed and the step counter. `pgd_attack` draws the noise of
  its own (per-replica) batch, so under a strategy with R > 1 replicas we fold the replica id into
  the seed; otherwise every replica would start its slice from the same noise. A distributed SE
  step therefore equals a single-device step in distribution, not bit for bit (unlike VAE/AVAE,
  whose noise `tf_avae.rng` slices from the global batch).
* **Step size** defaults to `2.5 * epsilon / pgd_steps` (Madry et al.), as in the evaluation.
* **No duplicated loss code.** The adversarial auxiliary term lives in one place,
  `AdversarialSmoothing.adversarial_terms`; SE and SE-AVAE only add it (SE-AVAE also adds the AVAE
  delusion term via `tf_avae.models.avae.delusion_images`) to the base's `elbo_terms`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_avae import adversarial, rng
from tf_avae.adversarial import _normalise_norm
from tf_avae.models.avae import DELUSIONS, delusion_images
from tf_avae.models.base import RepresentationModel, check_beta, check_rho
from tf_avae.validation import check_choice, check_non_negative, check_positive, check_positive_int


class AdversarialSmoothing(RepresentationModel):
    """Shared part of SE and SE-AVAE: the attack's hyper-parameters and the adversarial term.

    Not a model on its own (it has no `compute_loss_terms`).
    """

    def __init__(self, encoder, decoder, epsilon: float = 0.1, pgd_steps: int = 5, step_size: float | None = None,
                 norm="inf", seed: int = 0, **kwargs):
        # Checked before anything is built, so bad input fails at construction with its name.
        epsilon = check_non_negative("epsilon", epsilon)
        pgd_steps = check_positive_int("pgd_steps", pgd_steps)
        norm = _normalise_norm(norm)
        if step_size is not None:
            step_size = check_positive("step_size", step_size)
        super().__init__(encoder, decoder, seed=seed, **kwargs)
        self.epsilon = epsilon
        self.pgd_steps = pgd_steps
        self.step_size = step_size
        self.norm = norm
        if step_size is not None:
            self._attack_step_size = step_size
        elif epsilon > 0:
            self._attack_step_size = adversarial.default_step_size(epsilon, pgd_steps)
        else:
            self._attack_step_size = 1.0  # unused: a zero radius returns x unchanged

    def _attack_seed(self, step):
        seed = rng.step_seed(self.seed, step, rng.ATTACK_STREAM)
        context = tf.distribute.get_replica_context()
        if context is not None and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(context.replica_id_in_sync_group, tf.int32))
        return seed

    def adversarial_images(self, images, step):
        """x~: the PGD perturbation of `images` (radius `epsilon`, pixels in [0, 1]), as a constant."""
        objective = adversarial.encoding_distance_objective(lambda x: self.encoder(x, training=False), images)
        perturbed = adversarial.pgd_attack(
            objective,
            images,
            epsilon=self.epsilon,
            step_size=self._attack_step_size,
            num_steps=self.pgd_steps,
            norm=self.norm,
            random_start=True,
            seed=self._attack_seed(step),
            clip_min=0.0,
            clip_max=1.0,
        )
        return tf.stop_gradient(perturbed)

    def adversarial_terms(self, images, state, rho, step, training):
        """Per-example (-E[log p_rho(z'|z)], H[q(z'|x~)]) for the adversarial x~ of `images`.

        `state` is the second output of `elbo_terms` (the encoding of `images`).
        """
        auxiliary = self.adversarial_images(images, step)
        return self.coupling_terms(state["mean"], state["log_variance"], auxiliary, rho, training)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "pgd_steps": self.pgd_steps,
                "step_size": self.step_size, "norm": self.norm}


@keras.saving.register_keras_serializable(package="tf_avae")
class SmoothEncoder(AdversarialSmoothing):
    """SE: loss = VAE loss - E[log p_rho(z'|z)] - H[q(z'|x~)], x~ = PGD perturbation of x (a constant)."""

    loss_term_names = ("reconstruction", "kl", "adversarial_coupling", "adversarial_entropy")

    def __init__(self, encoder, decoder, epsilon: float = 0.1, pgd_steps: int = 5, step_size: float | None = None,
                 norm="inf", rho: float = 0.95, beta: float = 1.0, seed: int = 0, **kwargs):
        rho = check_rho(rho)
        beta = check_beta(beta)
        super().__init__(encoder, decoder, epsilon=epsilon, pgd_steps=pgd_steps, step_size=step_size, norm=norm,
                         seed=seed, **kwargs)
        self.rho = rho
        self.beta = beta
        self._finish_build()

    def compute_loss_terms(self, images, step, training):
        terms, state = self.elbo_terms(images, images, step, training, self.beta)
        coupling, entropy = self.adversarial_terms(images, state, self.rho, step, training)
        terms["adversarial_coupling"] = coupling
        terms["adversarial_entropy"] = entropy
        terms["loss"] = terms["loss"] + coupling - entropy
        return terms

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "beta": self.beta}


@keras.saving.register_keras_serializable(package="tf_avae")
class SEAVAE(AdversarialSmoothing):
    """SE-AVAE: VAE loss + the AVAE delusion term (coupling `rho`) + the SE adversarial term (`se_rho`)."""

    loss_term_names = ("reconstruction", "kl", "delusion_coupling", "delusion_entropy",
                       "adversarial_coupling", "adversarial_entropy")

    def __init__(self, encoder, decoder, rho: float = 0.975, se_rho: float = 0.95, epsilon: float = 0.1,
                 pgd_steps: int = 5, step_size: float | None = None, norm="inf", beta: float = 1.0,
                 delusion: str = "sample", seed: int = 0, **kwargs):
        rho = check_rho(rho)
        se_rho = check_rho(se_rho, "se_rho")
        beta = check_beta(beta)
        delusion = check_choice("delusion", delusion, DELUSIONS)
        super().__init__(encoder, decoder, epsilon=epsilon, pgd_steps=pgd_steps, step_size=step_size, norm=norm,
                         seed=seed, **kwargs)
        self.rho = rho
        self.se_rho = se_rho
        self.beta = beta
        self.delusion = delusion
        self._finish_build()

    def compute_loss_terms(self, images, step, training):
        terms, state = self.elbo_terms(images, images, step, training, self.beta)
        deluded = delusion_images(self, state["raw"], step, self.delusion)
        delusion_coupling, delusion_entropy = self.coupling_terms(
            state["mean"], state["log_variance"], deluded, self.rho, training)
        adversarial_coupling, adversarial_entropy = self.adversarial_terms(images, state, self.se_rho, step, training)
        terms["delusion_coupling"] = delusion_coupling
        terms["delusion_entropy"] = delusion_entropy
        terms["adversarial_coupling"] = adversarial_coupling
        terms["adversarial_entropy"] = adversarial_entropy
        terms["loss"] = (terms["loss"] + delusion_coupling - delusion_entropy
                         + adversarial_coupling - adversarial_entropy)
        return terms

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "se_rho": self.se_rho, "beta": self.beta,
                "delusion": self.delusion}
