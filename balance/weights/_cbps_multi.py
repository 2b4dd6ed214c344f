"""Multinomial CBPS for a treatment with K ≥ 3 levels (Imai & Ratkovic 2014, §2.3), WeightIt's set-up.

The generalised propensity scores are the softmax of :mod:`~balance.weights._multinomial` (level 0 the reference),
and the estimand's weight is w_i = h_i / p_{A_i} (ATE h = 1, ATT h = p_focal, ATO h = 1/Σ_k 1/p_k). The
just-identified CBPS solves the (K − 1)(1 + p) balance conditions

    Σ_i s_i (1{A_i = 0} − 1{A_i = k}) w_i(β) (1, X_i) = 0,   k = 1..K−1,

so every level's weighted covariate totals equal the reference level's (hence, with the intercept, every level's
weights have the same sum: WeightIt's scale). The over-identified CBPS adds the multinomial score
s_i (1{A_i = k} − p_k) (1, X_i) and minimises ḡ' W ḡ, W the (generalised) inverse of the moments' covariance given
X at a first-step estimate (two-step GMM). WeightIt writes the same GMM with all K score blocks and all K(K − 1)/2
pairwise balance conditions and a generalised inverse; those extra conditions are linear combinations of the ones
here and the quadratic form is the same.

The first step is WeightIt 1.5.1's: the multinomial MLE scaled by the α in [0.8, 1.1] that minimises the norm of
the mean pairwise balance conditions on WeightIt's model matrix (an intercept and the standardised left singular
vectors of the covariates). WeightIt then tries to solve those conditions exactly (``rootSolve::multiroot``), but
with all pairs the system is not square, the attempt fails, and the weight matrix stays at the scaled MLE. Any
consistent first step gives a valid two-step GMM; this one reproduces WeightIt's weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from itertools import combinations

from scipy.optimize import minimize, minimize_scalar

from ._estimands import multi_weights, multi_weights_derivative
from ._multinomial import chain_to_coef, fit_multinomial, multinomial_information, multinomial_score, softmax_proba
from ._standardize import Standardizer


@dataclass(frozen=True)
class MultiCBPSFit:
    """Result of :func:`fit_multi_cbps`: ``coef`` (K − 1, 1 + p) on the original scale, intercepts first."""

    coef: np.ndarray
    converged: bool
    n_iter: int
    imbalance: float
    problems: str = ""  # over-identified: what kept the GMM solver from converging


def _contrasts(codes, n_levels, pairs=None):
    """c_ik = 1{A_i = a_k} − 1{A_i = b_k} for the level ``pairs`` (a_k, b_k), by default (0, k) for k = 1..K−1."""
    ind = np.zeros((codes.shape[0], n_levels))
    ind[np.arange(codes.shape[0]), codes] = 1.0
    if pairs is None:
        return ind[:, :1] - ind[:, 1:]
    first, second = np.array(pairs).T
    return ind[:, first] - ind[:, second]


def _by_level(per_level, design):
    """(n, K − 1) per-unit factors times the design: (n, (K − 1) q), level-major."""
    return (per_level[:, :, None] * design[:, None, :]).reshape(design.shape[0], -1)


def balance_base(design, codes, n_levels, sw, pairs=None):
    """The fixed factor s_i c_ik (1, X_i) of the balance conditions, shape (n, (K − 1) q) (one block per pair):
    computed once per fit, the conditions are then ψ_i = base_i w_i(β)."""
    return _by_level(_contrasts(codes, n_levels, pairs) * sw[:, None], design)


def balance_psi(base, proba, codes, estimand, focal):
    """Per-unit balance conditions s_i c_ik w_i (1, X_i), shape (n, (K − 1) q)."""
    return base * multi_weights(proba, codes, estimand, focal)[:, None]


def balance_sums(base, proba, codes, estimand, focal):
    """Σ_i of :func:`balance_psi` (one matrix-vector product)."""
    return multi_weights(proba, codes, estimand, focal) @ base


def balance_jacobian(base, design, proba, codes, estimand, focal):
    """Σ_i ∂ψ_i/∂β of :func:`balance_psi` (coefficients on ``design``), shape ((K − 1) q, (K − 1) q)."""
    return base.T @ chain_to_coef(design, proba, multi_weights_derivative(proba, codes, estimand, focal))


def fit_multi_cbps(M, codes, n_levels, sw, estimand, focal, *, over=False, tol=1e-8, max_iter=100):
    """Just- (or, with ``over``, over-) identified multinomial CBPS on the balance terms ``M`` (no intercept).

    Solved on standardised columns. The just-identified system by Newton's method with step halving on the squared
    norm of the conditions, started from the multinomial MLE, until the largest remaining imbalance (a difference
    in weighted totals over the reference level's weighted total, in SDs) is below ``tol``. The over-identified
    GMM by trust-region Newton, then Newton steps to rounding level; converged when the last step moves no
    standardised coefficient by ``tol`` or more.

    Returns
    -------
    MultiCBPSFit
    """
    std = Standardizer.fit(M, np.average(M, axis=0, weights=sw))
    Z = std.design(M)
    shape = (n_levels - 1, Z.shape[1])
    mle = fit_multinomial(M, codes, n_levels, sw, tol=tol, max_iter=max_iter)
    start = np.array([std.to_standard(row) for row in mle.coef])
    beta, converged, n_iter, imbalance = _solve_just(Z, codes, sw, estimand, focal, start, tol, max_iter)
    problems = ""
    if over:
        first = _first_step(M, Z, codes, sw, estimand, focal, start)
        beta, problems, n_iter, imbalance = _solve_over(Z, codes, sw, estimand, focal, first,
                                                        beta if converged else first, tol, max_iter)
        converged = not problems
    coef = np.array([std.to_original(row) for row in beta.reshape(shape)])
    return MultiCBPSFit(coef=coef, converged=converged, n_iter=n_iter, imbalance=imbalance, problems=problems)


def _solve_just(Z, codes, sw, estimand, focal, start, tol, max_iter):
    shape = start.shape
    reference = codes == 0
    base = balance_base(Z, codes, shape[0] + 1, sw)

    def conditions(beta):
        proba = softmax_proba(Z, beta.reshape(shape))
        g = balance_sums(base, proba, codes, estimand, focal)
        total = np.sum((sw * multi_weights(proba, codes, estimand, focal))[reference])
        return g, proba, float(np.max(np.abs(g)) / total)

    beta = start.ravel()
    g, proba, imbalance = conditions(beta)
    it = 0
    for it in range(1, max_iter + 1):
        if imbalance < tol:
            it -= 1
            break
        jac = balance_jacobian(base, Z, proba, codes, estimand, focal)
        try:
            step = np.linalg.solve(jac, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(jac, g, rcond=None)[0]
        # step halving on |g|² keeps Newton from overshooting far from the root
        for _ in range(40):
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                new = conditions(beta - step)
            if np.all(np.isfinite(new[0])) and new[0] @ new[0] < g @ g:
                break
            step = step / 2.0
        else:
            break  # no decrease representable: the solver stalled (reported as not converged)
        beta = beta - step
        g, proba, imbalance = new
    return beta, imbalance < tol, it, imbalance


def _first_step(M, Z, codes, sw, estimand, focal, mle):
    """WeightIt's first step: α · MLE, α ∈ [0.8, 1.1] minimising |mean pairwise balance conditions| on the model
    matrix [1, standardised left singular vectors of M] (see the module docstring)."""
    u = np.linalg.svd(M, full_matrices=False)[0]
    basis = np.column_stack([np.ones(len(M)), (u - u.mean(axis=0)) / u.std(axis=0, ddof=1)])
    n_levels = mle.shape[0] + 1
    base = balance_base(basis, codes, n_levels, sw, list(combinations(range(n_levels), 2)))

    def norm(alpha):
        proba = softmax_proba(Z, alpha * mle)
        return float(np.linalg.norm(balance_sums(base, proba, codes, estimand, focal) / len(M)))

    alpha = minimize_scalar(norm, bounds=(0.8, 1.1), method="bounded", options={"xatol": 1e-10}).x
    return alpha * mle


def _sigma(Z, proba, sw, estimand, focal):
    """Covariance of (score, balance conditions) given X, averaged over units (sampling weights used once).

    score_k, score_l: p_k (δ_kl − p_l) zz';  score_k, balance_l: −δ_kl h zz';
    balance_k, balance_l: h² (1/p_0 + δ_kl/p_k) zz',  h the estimand's tilt (see the module docstring).
    For the ATO, WeightIt 1.5.1 puts h (not h²) in the balance block; that convention is kept (it changes only the
    efficiency weighting of the conditions, not what they estimate).
    """
    km1, q = proba.shape[1] - 1, Z.shape[1]
    h = {"ATE": np.ones(len(Z)), "ATT": proba[:, focal] if focal is not None else None,
         "ATO": 1.0 / np.sum(1.0 / proba, axis=1)}[estimand]
    cross = np.kron(np.eye(km1), -(Z * (sw * h)[:, None]).T @ Z)
    h2, inv = sw * (h if estimand == "ATO" else h**2), 1.0 / proba
    blocks = np.empty((km1, km1, q, q))
    for k in range(km1):
        for j in range(km1):
            factor = h2 * (inv[:, 0] + (inv[:, k + 1] if k == j else 0.0))
            blocks[k, j] = (Z * factor[:, None]).T @ Z
    balance = blocks.transpose(0, 2, 1, 3).reshape(km1 * q, km1 * q)
    sigma = np.block([[multinomial_information(Z, proba, sw), cross], [cross.T, balance]])
    return sigma / sw.sum()


def _solve_over(Z, codes, sw, estimand, focal, first, start, tol, max_iter):
    n = len(codes)
    shape = first.shape
    indicators = np.zeros((n, shape[0] + 1))
    indicators[np.arange(n), codes] = 1.0
    base = balance_base(Z, codes, shape[0] + 1, sw)
    # as WeightIt's generalized_inverse: singular values below 1e-9 of the largest are dropped; the inverse is made
    # exactly symmetric so that 2 Gᵀ W ḡ is the gradient of ḡᵀ W ḡ
    weight = np.linalg.pinv(_sigma(Z, softmax_proba(Z, first), sw, estimand, focal), rcond=1e-9, hermitian=True)
    weight = (weight + weight.T) / 2.0

    def objective(beta):
        proba = softmax_proba(Z, beta.reshape(shape))
        g = np.concatenate([multinomial_score(Z, indicators, proba, sw).sum(axis=0),
                            balance_sums(base, proba, codes, estimand, focal)]) / n
        jac = np.vstack([-multinomial_information(Z, proba, sw),
                         balance_jacobian(base, Z, proba, codes, estimand, focal)]) / n
        wg = weight @ g
        return float(g @ wg), 2.0 * jac.T @ wg

    def hessian(beta, step=1e-7):
        # forward differences of the analytic gradient (error ~1e-7 relative, one gradient per coefficient): Newton's
        # direction needs no more, and the answer's precision is set by the analytic gradient
        grad = objective(beta)[1]
        hess = np.array([(objective(beta + step * e)[1] - grad) / step for e in np.eye(beta.size)])
        return (hess + hess.T) / 2.0

    beta, n_iter, size, problems = gmm_minimum(objective, hessian, start.ravel(), max_iter, tol)
    return beta, problems, n_iter, size


def gmm_minimum(objective, hessian, start, max_iter, tol):
    """Minimise a smooth GMM objective to rounding level: ``(beta, iterations, last Newton step size, problems)``.

    Trust-region Newton with the given Hessian (a well-kept scipy solver), then plain Newton steps: trust-exact stops
    once the objective's decrease is no longer representable (its status 2), and the Newton steps take the
    coefficients to rounding level (the step is insensitive to the gradient's rounding noise, which W amplifies as
    much as the Hessian), so the answer does not depend on where a looser optimiser happens to stop or on the data's
    row order. A Newton step that raises the objective beyond rounding is not taken (the objective is not convex:
    Newton can head for a saddle or a maximum from a point the optimiser left unfinished). ``problems`` says what
    kept it from converging ("" when the optimiser finished, every Newton step lowered the objective and the last
    was below ``tol``). ``objective`` returns the value and the gradient.
    """
    res = minimize(objective, start, jac=True, hess=hessian, method="trust-exact",
                   options={"maxiter": max_iter, "gtol": tol * 1e-4})
    beta, value, problems = res.x, objective(res.x)[0], []
    if res.status not in (0, 2):
        problems.append(f"the optimiser stopped: {str(res.message).rstrip('.')}")
    step = np.zeros_like(beta)
    for _ in range(5):
        step = np.linalg.lstsq(hessian(beta), objective(beta)[1], rcond=None)[0]
        trial_value = objective(beta - step)[0]
        if trial_value > value + 1e-10 * abs(value):
            problems.append(f"a Newton step would raise the objective from {value:.6g} to {trial_value:.6g} (not "
                            "taken)")
            break
        beta, value = beta - step, trial_value
        if np.max(np.abs(step)) < 1e-13 * max(1.0, np.max(np.abs(beta))):
            break
    size = float(np.max(np.abs(step)))
    if size >= tol:
        problems.append(f"a Newton step would still move the standardised coefficients by {size:.2e} > tol={tol}")
    return beta, int(res.nit), size, "; ".join(problems)
