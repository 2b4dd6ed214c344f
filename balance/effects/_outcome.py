"""Estimating equations of the outcome part of a weighted effect estimator.

Every outcome model is written as per-unit estimating functions ψ_i(θ_o) that are zero in sum at the estimates, with
their analytic Jacobian. The weights w enter each ψ_i only through the unit's own weight w_i, so the derivative with
respect to the weight model's parameters β is the chain rule Σ_i (∂ψ_i/∂w_i)(∂w_i/∂β)ᵀ; :class:`OutcomeEquations`
stores ∂ψ_i/∂w_i for that.

Models (A treatment with levels a = 0..K−1, w analysis weights, s sampling weights, v target-population weights, h the
inverse link):

``simple``    ψ_μa = 1{A=a} w (y − μ_a)                                   (Hájek weighted means)
``additive``  ψ_γ = w D (y − h(Dᵀγ)), D = (1, T, X); ψ_μa = v (h(D_aᵀγ) − μ_a)   (weighted regression, g-computation)
``interact``  the same with D = (1, T, X, T⊗X)
``aipw``      ψ_γ = s D (y − h(Dᵀγ)) (D as interact, unweighted fit);
              ψ_νa = v (m_a − ν_a); ψ_δa = 1{A=a} w (y − m_a − δ_a); μ_a = ν_a + δ_a   (augmented weighting)

where T = (1{A=1}, ..., 1{A=K−1}) are the treatment dummies (T = A for a binary treatment), D_a sets A = a and
m_a = h(D_aᵀγ). The target population v is the estimand's: the focal (treated) level for the ATT, the controls for
the ATC, everyone for the ATE, and the weighted sample itself (v = w) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    mu_map : ndarray (K, m), rows giving (μ_0, ..., μ_{K−1}) as linear combinations of ``params``
    averaging : ndarray of bool (m,)
        The equations that average predictions over the target population's covariates (ψ_νa); conditioning on
        those covariates removes them from the meat.
    """

    params: np.ndarray
    names: list
    psi: np.ndarray
    jacobian: np.ndarray
    dpsi_dw: np.ndarray
    mu_map: np.ndarray
    averaging: np.ndarray

    @property
    def mu(self):
        """(μ_0, ..., μ_{K−1}): the weighted potential-outcome means, one per treatment level."""
        return self.mu_map @ self.params

    def conditional_on_covariates(self):
        """The same equations with the target population's covariates held fixed (the averaging rows leave the
        meat): WeightIt's and marginaleffects' convention."""
        return replace(self, psi=np.where(self.averaging, 0.0, self.psi))


def target_weights(estimand, a, weights, sample_weight, focal=1):
    """Weights v of the target population over which g-computation averages, and whether v is w itself.

    ``focal`` is the code of the ATT's focal level (1, the treated, for a binary treatment).
    """
    if estimand == "ATT":
        return sample_weight * (a == focal), False
    if estimand == "ATC":
        return sample_weight * (a == 0), False
    if estimand == "ATE":
        return sample_weight, False
    return weights, True


def _dummies(a, n_levels):
    """Treatment columns of the design: A itself for a binary treatment, else 1{A=k} for k = 1..K−1."""
    if n_levels == 2:
        return np.asarray(a, dtype=float)[:, None]
    return (np.asarray(a)[:, None] == np.arange(1, n_levels)).astype(float)


def _design(a, covariates, interact, n_levels=2):
    ones = np.ones((len(a), 1))
    t = _dummies(a, n_levels)
    blocks = [ones, t, covariates]
    if interact:
        blocks += [t[:, [k]] * covariates for k in range(t.shape[1])]
    return np.hstack(blocks)


def _standardise(covariates, constants=None):
    """Centre and scale each column: the predictions m_a(X), hence μ and its variance, do not change (the design
    spans the same space), while a covariate of size 1e12 or 1e-12 no longer ruins the rank check, the least-squares
    fit and the Jacobian's conditioning. γ is on the standardised scale (it is not reported).

    ``constants`` (centre, scale) come from all the data when ``covariates`` is one block of dask input."""
    if constants is not None:
        center, scale = constants
        return (covariates - center) / np.where(scale > 0, scale, 1.0)
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
        fit = fit_logistic(design[:, 1:], y, omega, tol=1e-10, max_iter=100, detect_separation=False)
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


def simple_equations(y, a, weights, n_levels=2, at=None):
    """Hájek means per level: θ_o = (μ_0, ..., μ_{K−1}).

    ``at`` (the means, from all the data) evaluates the equations on one block of dask input; the block's
    ``jacobian`` is then its share of the sum."""
    arms = np.column_stack([a == k for k in range(n_levels)]).astype(float)
    totals = (arms * weights[:, None]).sum(axis=0)
    mu = (arms * (weights * y)[:, None]).sum(axis=0) / totals if at is None else at
    resid = arms * (y[:, None] - mu)
    return OutcomeEquations(
        params=mu, names=[f"mu{k}" for k in range(n_levels)], psi=resid * weights[:, None],
        jacobian=-np.diag(totals), dpsi_dw=resid, mu_map=np.eye(n_levels), averaging=np.zeros(n_levels, dtype=bool),
    )


def regression_equations(y, a, weights, sample_weight, covariates, *, estimand, interact, augmented, family,
                         n_levels=2, focal=1, at=None):
    """Regression (g-computation) and augmented equations: θ_o = (γ, ν_0..ν_{K−1}) or (γ, ν_0..ν_{K−1},
    δ_0..δ_{K−1}).

    ``at`` evaluates the equations on one block of dask input at estimates from all the data: a dict with the
    standardisation ``constants`` (centre, scale) and ``params`` (γ, ν[, δ]); the block's ``jacobian`` is then its
    share of the sum."""
    covariates = _standardise(covariates, None if at is None else at["constants"])
    design = _design(a, covariates, interact, n_levels)
    omega = sample_weight if augmented else weights
    q = design.shape[1]
    gamma = _fit_regression(design, y, omega, family) if at is None else at["params"][:q]
    fitted, dfitted = _link(design @ gamma, family)
    resid = y - fitted
    v, v_is_w = target_weights(estimand, a, weights, sample_weight, focal)
    n = design.shape[0]
    levels = range(n_levels)
    m = q + n_levels * (1 + augmented)

    preds, dpreds, designs = [], [], []
    for arm in levels:
        d_arm = _design(np.full(n, arm), covariates, interact, n_levels)
        pred, dpred = _link(d_arm @ gamma, family)
        preds.append(pred), dpreds.append(dpred), designs.append(d_arm)
    nu = np.array([np.sum(v * pred) / np.sum(v) for pred in preds]) if at is None else \
        at["params"][q:q + n_levels]

    blocks, dblocks = [design * (omega * resid)[:, None]], [design * resid[:, None] * (not augmented)]
    jac_rows = [np.hstack([-(design * (omega * dfitted)[:, None]).T @ design, np.zeros((q, m - q))])]
    names = [f"gamma{j}" for j in range(q)] + [f"nu{k}" for k in levels]
    for arm in levels:
        blocks.append((v * (preds[arm] - nu[arm]))[:, None])
        dblocks.append(((preds[arm] - nu[arm]) * v_is_w)[:, None])
        row = np.zeros(m)
        row[:q] = (designs[arm] * (v * dpreds[arm])[:, None]).sum(axis=0)
        row[q + arm] = -v.sum()
        jac_rows.append(row[None, :])
    params = np.concatenate([gamma, nu])
    mu_map = np.zeros((n_levels, m))
    mu_map[np.arange(n_levels), q + np.arange(n_levels)] = 1.0
    averaging = np.zeros(m, dtype=bool)
    averaging[q:q + n_levels] = True
    if augmented:
        names += [f"delta{k}" for k in levels]
        deltas = []
        for arm in levels:
            in_arm = (a == arm).astype(float)
            delta = np.sum(in_arm * weights * (y - preds[arm])) / np.sum(in_arm * weights) if at is None else \
                at["params"][q + n_levels + arm]
            deltas.append(delta)
            r = in_arm * (y - preds[arm] - delta)
            blocks.append((weights * r)[:, None])
            dblocks.append(r[:, None])
            row = np.zeros(m)
            row[:q] = -(designs[arm] * (in_arm * weights * dpreds[arm])[:, None]).sum(axis=0)
            row[q + n_levels + arm] = -np.sum(in_arm * weights)
            jac_rows.append(row[None, :])
        params = np.concatenate([params, deltas])
        mu_map[np.arange(n_levels), q + n_levels + np.arange(n_levels)] = 1.0
    return OutcomeEquations(
        params=params, names=names, psi=np.hstack(blocks), jacobian=np.vstack(jac_rows),
        dpsi_dw=np.hstack(dblocks), mu_map=mu_map, averaging=averaging,
    )


def outcome_equations(model, y, a, weights, sample_weight, covariates, *, estimand, family, n_levels=2, focal=1,
                      at=None):
    """Dispatch to the outcome model's equations (``a`` coded 0..n_levels−1; ``focal`` the ATT's focal level;
    ``at``: the estimates from all the data, for one block of dask input)."""
    if model == "simple":
        return simple_equations(y, a, weights, n_levels, at)
    return regression_equations(
        y, a, weights, sample_weight, covariates, estimand=estimand, interact=model != "additive",
        augmented=model == "aipw", family=family, n_levels=n_levels, focal=focal, at=at,
    )
