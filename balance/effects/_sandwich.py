"""Sandwich covariances of stacked estimating equations (M-estimation), with clusters.

For estimating functions ψ_i(θ) with Σ_i ψ_i(θ̂) = 0, the covariance of θ̂ is A⁻¹ B A⁻ᵀ with the bread
A = Σ_i ∂ψ_i/∂θᵀ and the meat B = Σ_i ψ_i ψ_iᵀ (HC0, no small-sample factor), or, with clusters g = 1..G,
B = G/(G − 1) Σ_g (Σ_{i∈g} ψ_i)(Σ_{i∈g} ψ_i)ᵀ (the factor of R's ``sandwich::vcovCL``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def meat_sums(psi, clusters=None):
    """The meat's sums over one block of rows: ``{"meat": Σ ψψᵀ}``, or with clusters ``{"cluster_sums": ...}``, a
    DataFrame of Σ_{i∈g} ψ_i indexed by cluster label (blocks of dask input add them label by label, so a cluster
    may span partitions)."""
    if clusters is None:
        return {"meat": psi.T @ psi}
    codes, uniques = pd.factorize(clusters)
    sums = np.zeros((len(uniques), psi.shape[1]))
    np.add.at(sums, codes, psi)
    return {"cluster_sums": pd.DataFrame(sums, index=uniques)}


def meat(sums):
    """B from :func:`meat_sums` (of one block, or added over blocks): Σ ψψᵀ, or the cluster-summed version with
    the G/(G − 1) factor."""
    if "meat" in sums:
        return sums["meat"]
    totals = sums["cluster_sums"].to_numpy()
    n_clusters = totals.shape[0]
    if n_clusters < 2:
        raise ValueError("cluster must have at least two distinct clusters.")
    return n_clusters / (n_clusters - 1) * (totals.T @ totals)


def sandwich_cov(psi, bread, clusters=None):
    """A⁻¹ B A⁻ᵀ for per-unit estimating functions ``psi`` (n, k) and bread ``bread`` = Σ ∂ψ_i/∂θᵀ (k, k)."""
    return cov_from_sums({"bread": bread, **meat_sums(psi, clusters)})


def cov_from_sums(sums):
    """A⁻¹ B A⁻ᵀ from the sums of :func:`stacked_sums` (the bread and the meat's sums)."""
    inv = np.linalg.inv(sums["bread"])
    return inv @ meat(sums) @ inv.T


def numerical_jacobian(func, theta, *, rel_step=1e-6):
    """Central-difference Jacobian of ``func`` at ``theta``: shape ``func(theta).shape + (k,)``."""
    theta = np.asarray(theta, dtype=float)
    cols = []
    for j in range(theta.size):
        h = rel_step * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        cols.append((np.asarray(func(up)) - np.asarray(func(down))) / (2.0 * h))
    return np.stack(cols, axis=-1)


def stacked_cov(outcome, clusters=None, parts=None):
    """Covariance of the outcome parameters, stacking the weight model's equations when ``parts`` is given.

    Parameters
    ----------
    outcome : OutcomeEquations
    clusters : array-like of shape (n_samples,), optional
    parts : balance.MParts, optional
        The weight model's equations. None treats the weights as known (HC0).

    Returns
    -------
    cov : ndarray (m, m)
        Covariance of the outcome parameters.
    jacobian_kind : str
        "analytic" or "numerical" (for the weight model's derivatives).
    """
    sums, kind = stacked_sums(outcome, clusters, parts)
    if parts is None:
        return cov_from_sums(sums), kind
    return stacked_cov_from_sums(sums, parts.params.size), kind


def stacked_sums(outcome, clusters=None, parts=None):
    """Block evaluator of the stacked sandwich: the bread Σ ∂ψ_i/∂θ and the meat's sums (:func:`meat_sums`) of
    the rows of ``outcome`` and ``parts`` (all the data in memory; one block of dask input, whose outcome equations
    are then evaluated at the estimates from all the data and whose MParts are the weight model's on that block).

    Returns the sums and whether the weight model's derivatives are "analytic" or "numerical"."""
    if parts is None:
        return {"bread": outcome.jacobian, **meat_sums(outcome.psi, clusters)}, "analytic"
    theta = parts.params
    analytic = parts.psi_jacobian is not None and parts.weights_jacobian is not None
    j_beta = parts.psi_jacobian(theta) if parts.psi_jacobian is not None else \
        numerical_jacobian(lambda t: parts.psi(t).sum(axis=0), theta)
    dw = parts.weights_jacobian(theta) if parts.weights_jacobian is not None else \
        numerical_jacobian(parts.weights, theta)
    weight_psi = parts.psi(theta)
    if not (np.all(np.isfinite(j_beta)) and np.all(np.isfinite(dw)) and np.all(np.isfinite(weight_psi))):
        # e.g. covariates of magnitude 1e200, whose squares overflow in the weight model's derivatives
        raise ValueError(_NOT_COMPUTABLE.format("the weight model's estimating equations or their derivatives are "
                                                "not finite"))
    k, m = theta.size, outcome.params.size
    bread = np.zeros((k + m, k + m))
    bread[:k, :k] = j_beta
    bread[k:, :k] = outcome.dpsi_dw.T @ dw
    bread[k:, k:] = outcome.jacobian
    psi = np.hstack([weight_psi, outcome.psi])
    return {"bread": bread, **meat_sums(psi, clusters)}, "analytic" if analytic else "numerical"


def stacked_cov_from_sums(sums, k):
    """The outcome parameters' block of A⁻¹ B A⁻ᵀ from :func:`stacked_sums` (``k`` weight-model parameters), or a
    ValueError when it cannot be computed."""
    m = sums["bread"].shape[0] - k
    try:
        cov = cov_from_sums(sums)[k:, k:]
    except np.linalg.LinAlgError:
        cov = np.full((m, m), np.nan)
    # e.g. covariates of magnitude 1e-200, whose squares underflow to 0: a singular bread, or one so badly
    # conditioned that the "covariance" has negative variances
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) < -1e-10 * np.abs(cov).max()):
        raise ValueError(_NOT_COMPUTABLE.format("the stacked bread is singular or numerically so"))
    return cov


_NOT_COMPUTABLE = ("vcov='asympt' cannot be computed: {} (covariates of extreme magnitude?); rescale the "
                   "covariates, or use vcov='bootstrap' or 'fwb'.")
