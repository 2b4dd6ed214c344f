"""The balance conditions shared by the exact-balance weighters (CBPS, InverseProbabilityTilting,
EntropyBalance): parameter checks, the balance terms learned at fit and rebuilt for new data, the reachability
check of the target, the solver facts and coefficients stored after the group solves, refused overflowing
predictions, and the M-estimation parts of the logistic balance conditions.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from .._base import MParts
from .._validation import check_constant, check_full_rank
from ._moments import TermExpansion, check_moments
from ._tilt import check_target_inside, odds_weights, odds_weights_derivative


def check_solver_params(est):
    check_moments(est.moments, est.interactions)
    if not (isinstance(est.max_iter, numbers.Integral) and not isinstance(est.max_iter, bool) and est.max_iter >= 1):
        raise ValueError(f"max_iter={est.max_iter!r} must be a positive integer.")
    if not (isinstance(est.tol, numbers.Real) and est.tol > 0):
        raise ValueError(f"tol={est.tol!r} must be a positive number.")


def fit_terms(est, data, check=True):
    """Check the covariates (unless the caller does) and learn the balance terms; returns the term matrix and
    names."""
    if check:
        check_constant(data.X, data.names)
        check_full_rank(data.X, data.names)
    est._terms_expansion = TermExpansion.learn(data.X, data.names, est.design_, est.moments, est.interactions)
    return est._terms_expansion.transform(data.X, data.names)


def new_terms(est, X, treatment, sample_weight):
    """Validate data against the fitted design and build its balance-term matrix: ``(data, M)``."""
    check_is_fitted(est, "weights_")
    data = est._validate_data(X, treatment, sample_weight, reset=False)
    return data, est._terms_expansion.transform(data.X, data.names)[0]


def finite_prediction(weights, who):
    """Refuse predicted weights that overflow (new units far outside the data the model was fitted on)."""
    bad = ~np.isfinite(weights)
    if bad.any():
        raise ValueError(
            f"{who}.predict_weights: the weights of {int(bad.sum())} units overflow (logit beyond what exp() can "
            "represent): these units lie far outside the data the model was fitted on."
        )
    return weights


def check_reachable(M, sw, active, r, names, who):
    rows = active & (sw > 0)
    share = np.abs(sw * r)
    check_target_inside(M[rows].min(axis=0), M[rows].max(axis=0), share @ M / share.sum(), names, 0.0, who,
                        "Drop or coarsen that term, or use EntropyBalance(tols=...) for approximate balance.")


APPROXIMATE = "EntropyBalance(tols=...)"


def warn_not_converged(who, n_iter, max_iter, imbalance, tol, approximate=APPROXIMATE):
    warnings.warn(
        f"{who} did not converge in {n_iter} iterations (max_iter={max_iter}): the largest remaining imbalance is "
        f"{imbalance:.2e} SDs (> tol={tol}). Raise max_iter or loosen tol; if the solver stalled before max_iter, "
        "exact balance may be infeasible (a target near the edge of the reweighted group's covariates): use fewer "
        f"terms, or {approximate} for approximate balance.",
        ConvergenceWarning, stacklevel=3,
    )


def store_fits(est, fits, who, levels=None, n_levels=None, approximate=APPROXIMATE):
    """Record solver facts and coefficients of one (ATT/ATC) or two (ATE: control, treated) group solves.

    ``n_iter_`` is the largest iteration count over the solves (each is capped at ``max_iter``), so that
    ``n_iter_ == max_iter`` says a solve ran out of iterations. A multi-category treatment passes the level of each
    solve (``levels``) and the number of levels: the coefficients get one row per level, zero for the focal level
    of an ATT (whose weights are exp(0) = 1 times its base)."""
    est.converged_ = all(f.converged for f in fits)
    est.n_iter_ = max(f.n_iter for f in fits)
    est.imbalance_ = max(f.imbalance for f in fits)
    if not est.converged_:
        warn_not_converged(who, est.n_iter_, est.max_iter, est.imbalance_, est.tol, approximate)
    coef = np.array([f.coef for f in fits])
    if levels is not None:
        full = np.zeros((n_levels, coef.shape[1]))
        full[list(levels)] = coef
        est.intercept_, est.coef_ = full[:, 0].copy(), full[:, 1:].copy()
    elif len(fits) == 2:
        est.intercept_, est.coef_ = coef[:, 0].copy(), coef[:, 1:].copy()
    else:
        est.intercept_, est.coef_ = float(coef[0, 0]), coef[0, 1:].copy()


def logit_balance_parts(M, a, sw, estimand, params, names):
    """:class:`MParts` of the balance conditions ψ_i = s_i (2A_i − 1) w_i(η_i) (1, X_i), η = (1, X) β."""
    design = np.column_stack([np.ones(len(a)), M])
    sign = np.where(a == 1, 1.0, -1.0)

    def psi(theta):
        return design * (sw * sign * odds_weights(design @ theta, a, estimand))[:, None]

    def psi_jacobian(theta):
        slope = sign * odds_weights_derivative(design @ theta, a, estimand)
        return (design * (sw * slope)[:, None]).T @ design

    def weights(theta):
        return odds_weights(design @ theta, a, estimand) * sw

    def weights_jacobian(theta):
        return design * (odds_weights_derivative(design @ theta, a, estimand) * sw)[:, None]

    return MParts(params=params, names=names, psi=psi, weights=weights, psi_jacobian=psi_jacobian,
                  weights_jacobian=weights_jacobian)
