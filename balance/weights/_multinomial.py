"""Exact (unpenalised) multinomial logistic regression by Newton's method, for generalised propensity scores.

The model for a treatment with levels 0..K−1 (level 0 the reference) is the softmax

    P(A = k | X) = exp(η_k) / Σ_j exp(η_j),   η_0 = 0,   η_k = (1, X) β_k  (k = 1..K−1),

WeightIt's own multinomial fit (``method = "glm"``, ``multi.method = "weightit"``). As
:func:`~balance.weights._logistic.fit_logistic` for the binary logit, Newton–Raphson with step halving runs on
standardised columns until the score is numerically zero, and the coefficients are mapped back to the original
scale. The helpers below (probabilities, score, information, and the chain rule from dw/dp to dw/dβ) are shared
with the M-estimation parts and the multi-category CBPS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp, softmax

from ._standardize import Standardizer


@dataclass(frozen=True)
class MultinomialFit:
    """Result of :func:`fit_multinomial`.

    ``coef`` has shape (K − 1, 1 + n_features): row k − 1 is (intercept, slopes) of log(p_k / p_0), the reference
    level's row (all zeros) omitted."""

    coef: np.ndarray
    converged: bool
    n_iter: int
    score_norm: float


def softmax_proba(design, coef):
    """Generalised propensity scores, shape (n, K), from ``design`` (n, q) and ``coef`` (K − 1, q)."""
    eta = np.column_stack([np.zeros(design.shape[0]), design @ coef.T])
    return softmax(eta, axis=1)


def multinomial_score(design, y, proba, sw):
    """Per-unit scores s_i (1{A_i = k} − p_ik) z_i for k = 1..K−1, shape (n, (K − 1) q), level-major."""
    resid = (y[:, 1:] - proba[:, 1:]) * sw[:, None]
    return (resid[:, :, None] * design[:, None, :]).reshape(design.shape[0], -1)


def multinomial_information(design, proba, sw):
    """Σ_i s_i p_ik (δ_kl − p_il) z_i z_i' for k, l = 1..K−1: minus the Hessian of the log-likelihood, shape
    ((K − 1) q, (K − 1) q), level-major as :func:`multinomial_score`."""
    # Σ_i s_i (diag(p_i) − p_i p_i') ⊗ z_i z_i': block-diagonal Z' diag(s p_k) Z minus U' diag(s) U with
    # U_i = p_i ⊗ z_i, as matrix products (BLAS) rather than a four-index einsum
    p = proba[:, 1:]
    km1, q = p.shape[1], design.shape[1]
    outer = (p[:, :, None] * design[:, None, :]).reshape(design.shape[0], -1)
    info = -(outer * sw[:, None]).T @ outer
    for k in range(km1):
        info[k * q:(k + 1) * q, k * q:(k + 1) * q] += (design * (sw * p[:, k])[:, None]).T @ design
    return info


def chain_to_coef(design, proba, d_dp):
    """Per-unit derivatives with respect to the coefficients from those with respect to the scores.

    ``d_dp`` (n, K) holds ∂f_i/∂p_ij of a per-unit quantity f_i(p_i); the result (n, (K − 1) q), level-major, is
    ∂f_i/∂β_k = z_i Σ_j ∂f_i/∂p_ij p_ij (δ_jk − p_ik) (softmax derivative, reference level fixed at 0).
    """
    inner = (d_dp * proba).sum(axis=1)
    per_level = proba[:, 1:] * (d_dp[:, 1:] - inner[:, None])  # (n, K - 1)
    return (per_level[:, :, None] * design[:, None, :]).reshape(design.shape[0], -1)


def _log_likelihood(eta, codes, sw):
    full = np.column_stack([np.zeros(eta.shape[0]), eta])
    return float(np.sum(sw * (full[np.arange(len(codes)), codes] - logsumexp(full, axis=1))))


def fit_multinomial(X, codes, n_levels, sample_weight, *, tol=1e-8, max_iter=100):
    """Maximum-likelihood multinomial logit of level ``codes`` (0..K−1, 0 the reference) on ``[1, X]``.

    Convergence: the sup-norm of the score on the standardised scale, over the total sampling weight divided by n
    (the weights rescaled to mean 1), falls below ``tol``, the rule of
    :func:`~balance.weights._logistic.fit_logistic`. Newton's quadratic convergence then puts the coefficients at
    machine precision; WeightIt's fit stops earlier (about 4e-7 from the maximum on lalonde).

    Returns
    -------
    MultinomialFit

    Examples
    --------
    >>> import numpy as np
    >>> from balance.weights._multinomial import fit_multinomial
    >>> fit = fit_multinomial(np.zeros((6, 0)), np.array([0, 1, 1, 2, 2, 2]), 3, np.ones(6))
    >>> np.round(np.exp(fit.coef[:, 0]), 6)  # without covariates: the odds p_k / p_0
    array([2., 3.])
    """
    n = X.shape[0]
    std = Standardizer.fit(X, np.average(X, axis=0, weights=sample_weight) if X.shape[1] else np.empty(0))
    # column_stack keeps X's memory order (Fortran from a DataFrame), which the BLAS sums below depend on
    Z = np.column_stack([np.ones(len(X)), (X - std.center) / std.scale])
    q, km1 = Z.shape[1], n_levels - 1
    y = np.zeros((n, n_levels))
    y[np.arange(n), codes] = 1.0
    total = sample_weight.mean()

    shares = sample_weight @ y
    beta = np.zeros((km1, q))
    beta[:, 0] = np.log(shares[1:] / shares[0])  # the intercept-only maximum
    loglik = _log_likelihood(Z @ beta.T, codes, sample_weight)
    converged, score_norm, it = False, np.inf, 0
    for it in range(1, max_iter + 1):
        proba = softmax_proba(Z, beta)
        score = multinomial_score(Z, y, proba, sample_weight).sum(axis=0)
        score_norm = float(np.max(np.abs(score)) / total)
        if score_norm < tol:
            converged, it = True, it - 1
            break
        info = multinomial_information(Z, proba, sample_weight)
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, score, rcond=None)[0]
        step = step.reshape(km1, q)
        # step halving keeps the likelihood increasing (it can stall under separation, where no maximum exists)
        for _ in range(30):
            new_loglik = _log_likelihood(Z @ (beta + step).T, codes, sample_weight)
            if new_loglik >= loglik - 1e-12 * abs(loglik):
                break
            step /= 2.0
        beta, loglik = beta + step, new_loglik
    else:
        proba = softmax_proba(Z, beta)
        score_norm = float(np.max(np.abs(multinomial_score(Z, y, proba, sample_weight).sum(axis=0))) / total)
        converged = score_norm < tol

    coef = std.to_original(beta)
    return MultinomialFit(coef=coef, converged=converged, n_iter=it, score_norm=score_norm)
