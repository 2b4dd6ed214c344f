"""Pseudo-outcomes and weights of weighted pseudo-outcome regression (WPOR), as plain array functions.

Every CATE learner here minimises Σ_i W_i (φ̂_i − f(X_i))², with φ̂ a pseudo-outcome whose conditional mean is
τ(X) and W a weight built from the same cross-fitted nuisances (Fisher 2024, arXiv:2307.09700; formulas of the
``wpor`` R package, ``R/pseudo_fun.R`` and ``R/weight_fun.R``). π̂ = P(A = 1 | X), κ̂ = P(A = 0 | X), m̂ = E[Y | X],
μ̂_a = E[Y | X, A = a].
"""

from __future__ import annotations

import numpy as np

PSEUDO_OUTCOMES = ("dr", "u", "cov", "ipw", "plugin")
WEIGHTINGS = ("none", "ivw", "r", "u_x", "dr_ax")


def pseudo_outcome(kind, y, a, pi=None, kappa=None, m=None, mu1=None, mu0=None):
    """Pseudo-outcome φ̂ of each row (or row copy).

    ``"dr"``: (A/π̂)(Y − μ̂₁) − ((1 − A)/κ̂)(Y − μ̂₀) + μ̂₁ − μ̂₀ (AIPW; unbiased if π̂ or μ̂ is right).
    ``"u"``: (Y − m̂)/(A − π̂) (Robinson's ratio; needs both right). ``"cov"``: (Y − m̂)(A − π̂)/(π̂κ̂) (needs π̂ right,
    any m̂). ``"ipw"``: Y(A − π̂)/(π̂κ̂), the Cov pseudo-outcome with m̂ ≡ 0. ``"plugin"``: μ̂₁ − μ̂₀.
    """
    if kind == "dr":
        return a / pi * (y - mu1) - (1 - a) / kappa * (y - mu0) + mu1 - mu0
    if kind == "u":
        return (y - m) / (a - pi)
    if kind == "cov":
        return (y - m) * (a - pi) / (pi * kappa)
    if kind == "ipw":
        return y * (a - pi) / (pi * kappa)
    if kind == "plugin":
        return mu1 - mu0
    raise ValueError(f"pseudo_outcome={kind!r} is not one of {list(PSEUDO_OUTCOMES)}.")


def pseudo_weights(kind, a, pi=None, kappa=None):
    """Second-stage weights W of each row (or copy).

    ``"none"``: 1. ``"ivw"``: π̂κ̂, the inverse of Var(φ_DR | X)/σ² (wpor's ``weight_DR_X``, the overlap weight).
    ``"r"``: (A − π̂)², the inverse of Var(φ_U | A, X)/σ² (``weight_U_AX``; U with these weights is the R-learner).
    ``"u_x"``: (π̂κ̂)²/(π̂³ + κ̂³), the inverse of Var(φ_U | X)/σ² (``weight_U_X``). ``"dr_ax"``: π̂² if A = 1 and κ̂²
    if A = 0, the inverse of Var(φ_DR | A, X)/σ² (``weight_DR_AX``).
    """
    if kind == "none":
        return np.ones(len(a))
    if kind == "ivw":
        return pi * kappa
    if kind == "r":
        return (a - pi) ** 2
    if kind == "u_x":
        return (pi * kappa) ** 2 / (pi ** 3 + kappa ** 3)
    if kind == "dr_ax":
        return np.where(a == 1, pi ** 2, kappa ** 2)
    raise ValueError(f"weighting={kind!r} is not one of {list(WEIGHTINGS)}.")


def needed_nuisances(pseudo, weighting):
    """(need π̂, need m̂, need μ̂) for a pseudo-outcome/weight pair."""
    need_pi = pseudo != "plugin" or weighting != "none"
    return need_pi, pseudo in ("u", "cov"), pseudo in ("dr", "plugin")
