"""Objectives against closed forms, scipy and Monte-Carlo estimates on random inputs."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tf_avae import objectives

RNG = np.random.default_rng(0)


def test_gaussian_log_likelihood_matches_scipy_for_fixed_and_per_pixel_variance():
    x = RNG.random((4, 5, 5, 3)).astype(np.float32)
    mean = RNG.random((4, 5, 5, 3)).astype(np.float32)
    expected = stats.norm.logpdf(x, mean, np.sqrt(0.5)).reshape(4, -1).sum(1)
    got = objectives.gaussian_log_likelihood(x, mean, np.log(0.5))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    log_var = RNG.normal(size=(4, 5, 5, 3)).astype(np.float32)
    expected = stats.norm.logpdf(x, mean, np.exp(0.5 * log_var)).reshape(4, -1).sum(1)
    np.testing.assert_allclose(objectives.gaussian_log_likelihood(x, mean, log_var), expected, rtol=1e-5)


def test_bernoulli_log_likelihood_matches_numpy():
    x = (RNG.random((3, 4, 4, 1)) > 0.5).astype(np.float32)
    logits = RNG.normal(size=(3, 4, 4, 1)).astype(np.float32)
    p = 1 / (1 + np.exp(-logits))
    expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(1)
    np.testing.assert_allclose(objectives.bernoulli_log_likelihood(x, logits), expected, rtol=1e-5)


def test_kl_is_zero_for_standard_normal_and_matches_monte_carlo():
    zeros = tf.zeros((2, 8))
    np.testing.assert_allclose(objectives.gaussian_kl_to_standard_normal(zeros, zeros), 0.0, atol=1e-7)
    mean = RNG.normal(size=(3, 4))
    log_var = RNG.normal(scale=0.5, size=(3, 4))
    z = mean + np.exp(0.5 * log_var) * RNG.normal(size=(200_000, 3, 4))
    log_q = stats.norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(-1)
    log_p = stats.norm.logpdf(z).sum(-1)
    monte_carlo = (log_q - log_p).mean(0)
    got = objectives.gaussian_kl_to_standard_normal(mean.astype(np.float32), log_var.astype(np.float32))
    np.testing.assert_allclose(got, monte_carlo, atol=0.03)


def test_entropy_matches_scipy():
    log_var = RNG.normal(size=(5, 6)).astype(np.float32)
    expected = stats.norm.entropy(scale=np.exp(0.5 * log_var)).sum(-1)
    np.testing.assert_allclose(objectives.gaussian_entropy(log_var), expected, rtol=1e-5)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.975, -0.3])
def test_coupling_expectation_matches_monte_carlo(rho):
    dim, samples = 3, 400_000
    mean, mean_aux = RNG.normal(size=(2, dim)), RNG.normal(size=(2, dim))
    log_var, log_var_aux = RNG.normal(scale=0.3, size=(2, dim)) - 1, RNG.normal(scale=0.3, size=(2, dim)) - 1
    z = mean + np.exp(0.5 * log_var) * RNG.normal(size=(samples, 2, dim))
    z_aux = mean_aux + np.exp(0.5 * log_var_aux) * RNG.normal(size=(samples, 2, dim))
    log_density = stats.norm.logpdf(z_aux, rho * z, np.sqrt(1 - rho**2)).sum(-1)
    monte_carlo, stderr = log_density.mean(0), log_density.std(0) / np.sqrt(samples)
    got = objectives.expected_coupling_log_density(
        *(a.astype(np.float32) for a in (mean, log_var, mean_aux, log_var_aux)), rho
    )
    np.testing.assert_allclose(got, monte_carlo, atol=float(6 * stderr.max() + 1e-3))


def test_squared_wasserstein2_matches_quantile_integral():
    mean, mean_other = RNG.normal(size=(1, 2)), RNG.normal(size=(1, 2))
    log_var, log_var_other = RNG.normal(size=(1, 2)), RNG.normal(size=(1, 2))
    u = (np.arange(200_000) + 0.5) / 200_000  # W2^2 in 1-D is the L2 distance of the quantile functions
    per_dim = [
        np.mean((stats.norm.ppf(u, mean[0, d], np.exp(0.5 * log_var[0, d]))
                 - stats.norm.ppf(u, mean_other[0, d], np.exp(0.5 * log_var_other[0, d]))) ** 2)
        for d in range(2)
    ]
    got = objectives.squared_wasserstein2_diagonal_gaussians(mean, log_var, mean_other, log_var_other)
    np.testing.assert_allclose(got, [sum(per_dim)], rtol=1e-3)
