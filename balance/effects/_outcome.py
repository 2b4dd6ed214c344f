"""Estimating equations of the outcome part of a weighted effect estimator.

Every outcome model is written as per-unit estimating functions ψ_i(θ_o) that are zero in sum at the estimates, with
their analytic Jacobian. The weights w enter each ψ_i only through the unit's own weight w_i, so the derivative with
respect to the weight model's parameters β is the chain rule Σ_i (∂ψ_i/∂w_i)(∂w_i/∂β)ᵀ; :class:`OutcomeEquations`
stores ∂ψ_i/∂w_i for that.

Models (A treatment, w analysis weights, s sampling weights, v target-population weights, h the inverse link):

``simple``    ψ_μa = 1{A=a} w (y − μ_a)                                   (Hájek weighted means)
``additive``  ψ_γ = w D (y − h(Dᵀγ)), D = (1, A, X); ψ_μa = v (h(D_aᵀγ) − μ_a)   (weighted regression, g-computation)
``interact``  the same with D = (1, A, X, A·X)
``aipw``      ψ_γ = s D (y − h(Dᵀγ)) (D as interact, unweighted fit);
              ψ_νa = v (m_a − ν_a); ψ_δa = 1{A=a} w (y − m_a − δ_a); μ_a = ν_a + δ_a   (augmented weighting)

where D_a sets A = a and m_a = h(D_aᵀγ). The target population v is the estimand's: the treated for the ATT, the
controls for the ATC, everyone for the ATE, and the weighted sample itself (v = w) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .._stats import scale_columns
from ..weights._logistic import fit_logistic

OUTCOME_MODELS = ("simple", "additive", "interact", "aipw")


@dataclass(frozen=True)
class OutcomeEquations:
    """The fitted outcome part: parameters, per-unit estimating functions and their derivatives.

    Attributes
    ----------
    params : ndarray (m,)
    names : list of str
    psi : ndarray (n, m), per-unit estimating functions at ``params``
    jacobian : ndarray (m, m), Σ_i ∂ψ_i/∂θ_o
    dpsi_dw : ndarray (n, m), ∂ψ_i/∂w_i
    mu_map : ndarray (2, m), rows giving (μ0, μ1) as linear combinations of ``params``
    """

    params: np.ndarray
    names: list
    psi: np.ndarray
    jacobian: np.ndarray
    dpsi_dw: np.ndarray
    mu_map: np.ndarray

    @property
    def mu(self):
        """(μ0, μ1): the two weighted potential-outcome means."""
        return self.mu_map @ self.params


def target_weights(estimand, a, weights, sample_weight):
    """Weights v of the target population over which g-computation averages, and whether v is w itself."""
    if estimand == "ATT":
        return sample_weight * (a == 1), False
    if estimand == "ATC":
        return sample_weight * (a == 0), False
    if estimand == "ATE":
        return sample_weight, False
    return weights, True


def _design(a, covariates, interact):
    ones = np.ones((len(a), 1))
    a = np.asarray(a, dtype=float)[:, None]
    blocks = [ones, a, covariates] + ([a * covariates] if interact else [])
    return np.hstack(blocks)


def _standardise(covariates):
    """Centre and scale each column: the predictions m_a(X), hence μ and its variance, do not change (the design
    spans the same space), while a covariate of size 1e12 or 1e-12 no longer ruins the rank check, the least-squares
    fit and the Jacobian's conditioning. γ is on the standardised scale (it is not reported)."""
    centred = covariates - covariates.mean(axis=0)
    scaled, unit = scale_columns(centred)  # exact; no square of a covariate of magnitude 1e200 overflows
    scale = np.sqrt(np.mean(scaled ** 2, axis=0)) * unit
    return centred / np.where(scale > 0, scale, 1.0)


def _fit_regression(design, y, omega, family):
    """Weighted least squares or weighted logistic MLE; raises on a rank-deficient design."""
    keep = omega > 0
    rank = np.linalg.matrix_rank(design[keep] * np.sqrt(omega[keep])[:, None])
    if rank < design.shape[1]:
        raise ValueError(
            f"the outcome model's design is rank deficient ({rank} of {design.shape[1]} columns estimable), e.g. a "
            "covariate level absent from one treatment group; use a simpler outcome model."
        )
    if family == "binomial":
        fit = fit_logistic(design[:, 1:], y, omega, tol=1e-10, max_iter=100)
        if not fit.converged:
            raise ValueError("the logistic outcome model did not converge (separation?); use a simpler outcome model.")
        return fit.coef
    root = np.sqrt(omega)[:, None]
    return np.linalg.lstsq(design * root, y * root[:, 0], rcond=None)[0]


def _link(eta, family):
    """Inverse link and its derivative."""
    if family == "binomial":
        mean = expit(eta)
        return mean, mean * (1.0 - mean)
    return eta, np.ones_like(eta)


def simple_equations(y, a, weights):
    """Hájek means per arm: θ_o = (μ0, μ1)."""
    arms = np.column_stack([a == 0, a == 1]).astype(float)
    totals = (arms * weights[:, None]).sum(axis=0)
    mu = (arms * (weights * y)[:, None]).sum(axis=0) / totals
    resid = arms * (y[:, None] - mu)
    return OutcomeEquations(
        params=mu, names=["mu0", "mu1"], psi=resid * weights[:, None], jacobian=-np.diag(totals),
        dpsi_dw=resid, mu_map=np.eye(2),
    )


def regression_equations(y, a, weights, sample_weight, covariates, *, estimand, interact, augmented, family):
    """Regression (g-computation) and augmented equations: θ_o = (γ, μ0, μ1) or (γ, ν0, ν1, δ0, δ1)."""
    covariates = _standardise(covariates)
    design = _design(a, covariates, interact)
    omega = sample_weight if augmented else weights
    gamma = _fit_regression(design, y, omega, family)
    fitted, dfitted = _link(design @ gamma, family)
    resid = y - fitted
    v, v_is_w = target_weights(estimand, a, weights, sample_weight)
    n, q = design.shape

    preds, dpreds, designs = [], [], []
    for arm in (0, 1):
        d_arm = _design(np.full(n, arm), covariates, interact)
        m, dm = _link(d_arm @ gamma, family)
        preds.append(m), dpreds.append(dm), designs.append(d_arm)
    nu = np.array([np.sum(v * m) / np.sum(v) for m in preds])

    blocks, dblocks = [design * (omega * resid)[:, None]], [design * resid[:, None] * (not augmented)]
    jac_rows = [np.hstack([-(design * (omega * dfitted)[:, None]).T @ design, np.zeros((q, 2 + 2 * augmented))])]
    names = [f"gamma{j}" for j in range(q)] + ["nu0", "nu1"]
    for arm in (0, 1):
        blocks.append((v * (preds[arm] - nu[arm]))[:, None])
        dblocks.append(((preds[arm] - nu[arm]) * v_is_w)[:, None])
        row = np.zeros(q + 2 + 2 * augmented)
        row[:q] = (designs[arm] * (v * dpreds[arm])[:, None]).sum(axis=0)
        row[q + arm] = -v.sum()
        jac_rows.append(row[None, :])
    params = np.concatenate([gamma, nu])
    mu_map = np.zeros((2, q + 2 + 2 * augmented))
    mu_map[0, q], mu_map[1, q + 1] = 1.0, 1.0
    if augmented:
        names += ["delta0", "delta1"]
        deltas = []
        for arm in (0, 1):
            in_arm = (a == arm).astype(float)
            delta = np.sum(in_arm * weights * (y - preds[arm])) / np.sum(in_arm * weights)
            deltas.append(delta)
            r = in_arm * (y - preds[arm] - delta)
            blocks.append((weights * r)[:, None])
            dblocks.append(r[:, None])
            row = np.zeros(q + 4)
            row[:q] = -(designs[arm] * (in_arm * weights * dpreds[arm])[:, None]).sum(axis=0)
            row[q + 2 + arm] = -np.sum(in_arm * weights)
            jac_rows.append(row[None, :])
        params = np.concatenate([params, deltas])
        mu_map[0, q + 2], mu_map[1, q + 3] = 1.0, 1.0
    return OutcomeEquations(
        params=params, names=names, psi=np.hstack(blocks), jacobian=np.vstack(jac_rows),
        dpsi_dw=np.hstack(dblocks), mu_map=mu_map,
    )


def outcome_equations(model, y, a, weights, sample_weight, covariates, *, estimand, family):
    """Dispatch to the outcome model's equations."""
    if model == "simple":
        return simple_equations(y, a, weights)
    return regression_equations(
        y, a, weights, sample_weight, covariates, estimand=estimand, interact=model != "additive",
        augmented=model == "aipw", family=family,
    )
