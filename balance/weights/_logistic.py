"""Exact (unpenalised) logistic regression by Newton's method, for propensity scores.

scikit-learn's ``LogisticRegression`` is L2-penalised by default, so it is not the maximum-likelihood propensity
model that WeightIt, Stata and every textbook use. This solver runs Newton–Raphson (IRLS) with step halving on
standardised columns until the score is numerically zero, then maps the coefficients back to the original scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .._stats import column_std


@dataclass(frozen=True)
class LogisticFit:
    """Result of :func:`fit_logistic`; ``coef[0]`` is the intercept, the rest follow X's columns."""

    coef: np.ndarray
    converged: bool
    n_iter: int
    score_norm: float


def _log_likelihood(eta, a, sw):
    # log(1 + exp(eta)) computed stably
    return float(np.sum(sw * (a * eta - np.logaddexp(0.0, eta))))


def fit_logistic(X, a, sample_weight, *, tol=1e-8, max_iter=100):
    """Maximum-likelihood logistic regression of ``a`` on ``[1, X]`` with frequency/sampling weights.

    Convergence: the sup-norm of the score on the standardised scale, ``max_j |sum_i w_i (a_i - e_i) z_ij|`` with
    the weights rescaled to mean 1, falls below ``tol``. Newton's quadratic convergence then puts the coefficients
    at machine precision (a criterion on the *mean* score, or R's relative deviance change of 1e-8, stops one Newton
    step earlier, about 1e-8 away from the maximum).

    Returns
    -------
    LogisticFit
    """
    center = np.average(X, axis=0, weights=sample_weight) if X.shape[1] else np.empty(0)
    scale = column_std(X) if X.shape[1] else np.empty(0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = np.column_stack([np.ones(len(X)), (X - center) / scale])
    total = sample_weight.mean()

    p1 = np.average(a, weights=sample_weight)
    beta = np.zeros(Z.shape[1])
    beta[0] = np.log(p1 / (1.0 - p1))
    eta = Z @ beta
    loglik = _log_likelihood(eta, a, sample_weight)
    converged, score_norm, it = False, np.inf, 0
    for it in range(1, max_iter + 1):
        e = expit(eta)
        score = Z.T @ (sample_weight * (a - e))
        score_norm = float(np.max(np.abs(score)) / total)
        if score_norm < tol:
            converged, it = True, it - 1
            break
        info = (Z * (sample_weight * e * (1.0 - e))[:, None]).T @ Z
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, score, rcond=None)[0]
        # Step halving keeps the likelihood increasing (it can stall under separation, where no maximum exists).
        for _ in range(30):
            new_eta = Z @ (beta + step)
            new_loglik = _log_likelihood(new_eta, a, sample_weight)
            if new_loglik >= loglik - 1e-12 * abs(loglik):
                break
            step /= 2.0
        beta, eta, loglik = beta + step, new_eta, new_loglik
    else:
        e = expit(eta)
        score_norm = float(np.max(np.abs(Z.T @ (sample_weight * (a - e)))) / total)
        converged = score_norm < tol

    slopes = beta[1:] / scale
    coef = np.concatenate([[beta[0] - slopes @ center], slopes])
    return LogisticFit(coef=coef, converged=converged, n_iter=it, score_norm=score_norm)
