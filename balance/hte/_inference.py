"""Summaries of a fitted pseudo-outcome learner: average effects and the best linear projection, with SEs.

Both work from the per-row pseudo-outcomes (copies of a row under cross-fitting of order 3 or 4 are averaged
first, so a row is one independent unit).

* Weighted average effect: θ̂ = Σ_i H_i φ̄_i / Σ_i H_i, with H ≡ 1 for the ATE and H = π̂κ̂ for the ATO (overlap
  weights; Li, Morgan & Zaslavsky 2018). Influence function H_i(φ̄_i − θ̂)/mean(H); SE = its sd/√n. With the DR
  pseudo-outcome and H ≡ 1 this is the cross-fitted AIPW estimator, whose influence function is exactly this when
  the nuisances converge fast enough (Chernozhukov et al. 2018); for other pseudo-outcomes the SE treats the
  nuisances as known.
* The overlap weights H = h(e) = e(1 − e) are themselves estimated, and the ratio above is not orthogonal to that
  estimate: its first-order error is E[h'(e)(ê − e)(τ − θ)]/E[h], which a flexible π̂ leaves above 1/√n. With the DR
  pseudo-outcome the ATO is therefore the one-step (orthogonalised) estimator θ̂ = θ̂_ratio + Σ G_i(τ̂_i − θ̂_ratio)/Σ H_i,
  G = h'(π̂)(A − π̂) with h' = κ̂ − π̂ and τ̂ = μ̂₁ − μ̂₀, whose influence function is the efficient one,
  [H_i(φ̄_i − θ) + G_i(τ̂_i − θ)]/E[H] (Hirano, Imbens & Ridder 2003; Mao, Li & Greene 2019): the term G_i(τ_i − θ) is
  the share of the variance that comes from estimating the overlap weights.
* Best linear projection (Semenova & Chernozhukov 2021; grf's ``best_linear_projection``): least squares of φ̄ on
  [1, X_subset] with the learner's weights, HC0 sandwich covariance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..effects._wls import weighted_least_squares


def per_row(values, rows, n):
    """Average the copies of each row (rows maps copies to rows)."""
    counts = np.bincount(rows, minlength=n)
    return np.bincount(rows, weights=values, minlength=n) / counts


def _table(estimate, se, names, alpha):
    z = stats.norm.ppf(1 - alpha / 2)
    estimate, se = np.atleast_1d(estimate), np.atleast_1d(se)
    stat = estimate / se
    return pd.DataFrame(
        {"estimate": estimate, "std_err": se, "statistic": stat, "p_value": 2 * stats.norm.sf(np.abs(stat)),
         "ci_lower": estimate - z * se, "ci_upper": estimate + z * se},
        index=pd.Index(names, name="contrast"),
    )


def weighted_average_effect(phi, h, name, alpha, correction=None):
    """θ̂ = Σ h φ / Σ h with its influence-function SE, as a one-row summary table.

    ``correction=(g, g_tau)`` (per row: G_i and G_i τ̂_i) makes it the one-step estimator orthogonal to estimated
    weights h(e): θ̂ + Σ (G τ̂ − G θ̂)/Σ h, with the term G_i(τ̂_i − θ) in the influence function.
    """
    theta = np.sum(h * phi) / np.sum(h)
    extra = np.zeros_like(phi)
    if correction is not None:
        g, g_tau = correction
        theta = theta + np.sum(g_tau - g * theta) / np.sum(h)
        extra = g_tau - g * theta
    influence = (h * (phi - theta) + extra) / np.mean(h)
    se = np.std(influence, ddof=1) / np.sqrt(len(phi))
    return _table(theta, se, [name], alpha)


def linear_projection(phi, w, Z, names, alpha):
    """Weighted least squares of φ on [1, Z] with HC0 covariance, as a summary table (one row per coefficient)."""
    design = np.column_stack([np.ones(len(phi)), Z])
    coef, cov = weighted_least_squares(design, phi, w)
    return _table(coef, np.sqrt(np.diag(cov)), ["intercept", *names], alpha)
