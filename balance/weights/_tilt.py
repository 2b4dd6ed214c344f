"""The convex duals behind CBPS, inverse probability tilting and entropy balancing, and Newton's method for them.

For a binary treatment, the just-identified CBPS (Imai & Ratkovic 2014), inverse probability tilting (Graham,
Pinto & Egel 2012) and entropy balancing (Hainmueller 2012) all solve balance conditions of the form

    sum_i [c_i exp(s_i eta_i) s_i - r_i] z_i = 0,    eta_i = z_i' beta,  z_i = (1, x_i),

with c_i >= 0 and s_i = +1 or -1 per unit and r_i the unit's share of the balance target. These are the
first-order conditions of the strictly convex function

    F(beta) = sum_i c_i exp(s_i eta_i) - beta' sum_i r_i z_i,

so the root is unique when it exists and Newton's method with a backtracking line search finds it from any
starting point. Examples: the ATT control weights e/(1 - e) = exp(eta) balancing the treated totals (c = sampling
weight on controls, s = +1, r = sampling weight on the treated), and the ATE CBPS condition
sum (A/e - (1 - A)/(1 - e)) z = 0 (c = sampling weight on every unit, s = -1 for treated units, +1 for controls).
When the target lies outside the convex hull of the reweighted units' covariates, F is unbounded below and no
exact solution exists: :func:`check_target_inside` catches the plainest cases (a target mean outside a covariate's
range) before solving.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logsumexp

from .._exceptions import InfeasibleBalanceError
from .._stats import column_std, pow2_scale, scale_columns
from .._validation import check_constant_range
from ._standardize import Standardizer

# Armijo constant of the line search, and the relative slack that lets a Newton step through when the decrease of
# F is below its rounding error (at the optimum F changes by ~|grad|^2, far below eps * |F|).
_ARMIJO = 1e-4
_F_SLACK = 1e-13
_REUSE_HESSIAN = 1e-4  # imbalance (SDs) below which the last Hessian is kept
# Largest standardised coefficient (logit change per SD) a Newton step may reach. When the target lies outside the
# convex hull of the reweighted units jointly (though inside every term's range) F decreases without bound along a
# ray; unbounded, the coefficients grow until rounding in the original-scale logit overflows the weights to inf.
# No solvable problem comes near it, and the stalled solve is reported as not converged.
_BETA_MAX = 1e4
# Above this many units the sums come from the numba kernel (one pass, no stored design); below it numpy's BLAS on
# a stored standardised design is faster (measured: 0.12 ms against 0.34 ms per pass at 6,500 units, 11 ms against
# 3.8 ms at 65,000).
_KERNEL_ROWS = 20_000


@dataclass(frozen=True)
class DualFit:
    """Result of a dual solve; ``coef[0]`` is the intercept, on the original covariate scale."""

    coef: np.ndarray
    converged: bool
    n_iter: int
    imbalance: float  # sup-norm of the standardised gradient over the target total (about a max |SMD|)


def dense_evaluator(Z, c, s):
    """The sums Newton's method needs, from a stored standardised design ``Z`` (numpy; small problems)."""

    def evaluate(beta, want_hess=True):
        # an overflow gives inf (and inf * 0 = nan in the sums): the line search rejects such a point
        with np.errstate(over="ignore", invalid="ignore"):
            t = c * np.exp(s * (Z @ beta))
            return float(np.sum(t)), Z.T @ (s * t), (Z * t[:, None]).T @ Z if want_hess else None

    return evaluate


def kernel_evaluator(X, rows, c, s, center, scale):
    """The same sums from one group's standardised covariates, gathered once and then read by a numba kernel
    (one pass per call)."""
    from .._kernels._tilt import standardize_rows, tilt_pass

    rows = np.ascontiguousarray(rows, dtype=np.int64)
    zt = standardize_rows(np.ascontiguousarray(X, dtype=np.float64), rows, np.asarray(center, dtype=np.float64),
                          1.0 / np.asarray(scale, dtype=np.float64))
    c_rows = np.ascontiguousarray(np.asarray(c, dtype=np.float64)[rows])
    s_rows = np.ascontiguousarray(np.broadcast_to(np.asarray(s, dtype=np.float64), np.shape(c))[rows])  # s: scalar ok

    def evaluate(beta, want_hess=True):
        total, grad, hess = tilt_pass(zt, c_rows, s_rows, np.ascontiguousarray(beta, dtype=np.float64), want_hess)
        return total, grad, hess if want_hess else None

    return evaluate


def newton_exp_dual(evaluate, target, total, beta, *, tol=1e-8, max_iter=100, first=None):
    """Minimise F(beta) = sum_i c_i exp(s_i z_i' beta) - beta' target by Newton's method with line search.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(beta) -> (sum t, sum s t z, sum t z z')`` with t_i = c_i exp(s_i z_i' beta) (see
        :func:`dense_evaluator`, :func:`kernel_evaluator`).
    target : ndarray of shape (k,)
        The balance target totals sum_i r_i z_i on the standardised scale.
    total : float
        The size of the target (sum_i |r_i|), which turns the gradient into a mean difference in SD units.
    beta : ndarray of shape (k,)
        Starting point (standardised scale).
    tol : float
        Stop when max_j |grad_j| / total < tol (then one more Newton step, see below).
    first : tuple, default=None
        ``evaluate(beta)`` when the caller has it already.

    Returns
    -------
    beta : ndarray of shape (k,)
    converged : bool
    n_iter : int
    imbalance : float
        max_j |grad_j| / total at ``beta``.
    """
    beta = np.asarray(beta, dtype=float).copy()
    bound = max(_BETA_MAX, float(np.max(np.abs(beta))))
    total_t, g, hess = evaluate(beta) if first is None else first
    value = total_t - beta @ target
    it, imbalance, reached = 0, np.inf, False
    for it in range(max_iter + 1):
        grad = g - target
        imbalance = float(np.max(np.abs(grad)) / total)
        if it == max_iter or (imbalance < tol and (reached or imbalance < tol * 1e-6)):
            break
        # once below tol, one more Newton step: quadratic convergence takes the imbalance to rounding level, so
        # the weights do not depend on where the tolerance happened to cut
        reached = imbalance < tol
        try:
            step = -np.linalg.solve(hess, grad)  # positive definite unless terms are collinear among the units
        except np.linalg.LinAlgError:
            step = -np.linalg.lstsq(hess, grad, rcond=None)[0]
        slope = float(grad @ step)
        accepted = False
        # near the solution the Hessian barely changes: reuse it (a chord step) and evaluate the gradient only,
        # a quarter of the work; the convergence stays superlinear
        fresh = imbalance > _REUSE_HESSIAN
        for _ in range(60):
            new = evaluate(beta + step, fresh)
            new_value = new[0] - (beta + step) @ target
            if (np.isfinite(new_value) and new_value <= value + _ARMIJO * slope + _F_SLACK * abs(value)
                    and np.max(np.abs(beta + step)) <= bound):
                accepted = True
                break
            step /= 2.0
        if not accepted:  # no decrease representable in floating point: the solver has stalled
            break
        beta, value = beta + step, new_value
        total_t, g = new[0], new[1]
        hess = new[2] if fresh else hess
    return beta, imbalance < tol, it, imbalance


def dependent_columns(gram, tol=1e-10):
    """Columns (after the first, the intercept) of a Gram matrix that are linear combinations of earlier ones."""
    d = np.sqrt(np.diag(gram))
    if np.all(d > 0):
        try:  # the usual case, full rank: one Cholesky factor of the scaled Gram matrix says so
            factor = np.linalg.cholesky(gram / np.outer(d, d))
            if np.all(np.diag(factor) ** 2 > tol):
                return []
        except np.linalg.LinAlgError:
            pass
    keep, dependent = [0], []
    for j in range(1, gram.shape[0]):
        g = gram[keep, j]
        residual = gram[j, j] - g @ np.linalg.lstsq(gram[np.ix_(keep, keep)], g, rcond=None)[0]
        (keep if residual > tol * gram[j, j] else dependent).append(j)
    return dependent


def check_enough_units(n_units, names):
    """Raise when there are more balance terms (plus the normalisation) than reweighted units.

    The terms are then necessarily collinear among the units; deciding it before the (k + 1)^2 Hessian is formed
    keeps 10,000 covariates an instant error instead of minutes of linear algebra.
    """
    if len(names) + 1 > n_units:
        raise ValueError(f"covariates are perfectly collinear among the reweighted units: {len(names)} balance terms "
                         f"but only {n_units} units; use fewer covariates (or moments) than units.")


def solve_tilt(X, rows, c, s, target, total, center, scale, *, names, tol, max_iter, start=None):
    """Solve one set of exact balance conditions, with coefficients on the original scale.

    ``rows`` index the units of ``X`` with c > 0 (``c`` and ``s`` are per row of ``X``); ``target`` is the vector
    of target totals ``sum_i r_i (1, x_i)`` on the original scale and ``total`` its size (for the convergence
    criterion). Columns are centred at ``center`` (the target means, where there is one) and divided by ``scale``
    inside the kernel (conditioning); ``start`` is on the original scale.

    Raises
    ------
    ValueError
        When the balance terms are perfectly collinear among the units in ``rows`` (the Newton system is
        singular), naming the dependent terms.

    Returns
    -------
    DualFit
    """
    check_enough_units(len(rows), names)
    std = Standardizer(np.asarray(center, dtype=float), np.where(scale > 0, scale, 1.0))
    if len(rows) > _KERNEL_ROWS:
        evaluate = kernel_evaluator(X, rows, c, s, std.center, std.scale)
    else:
        s_rows = np.broadcast_to(np.asarray(s, dtype=float), np.shape(c))[rows]
        evaluate = dense_evaluator(std.design(X[rows]), np.asarray(c, dtype=float)[rows], s_rows)
    sign = np.unique(np.broadcast_to(np.asarray(s, dtype=float), np.shape(c))[rows])
    return solve_standardised_tilt(evaluate, std, sign, np.sum(c[rows]) if sign.size == 1 else None, target, total,
                                   names=names, tol=tol, max_iter=max_iter, start=start)


def solve_standardised_tilt(evaluate, std, sign, c_sum, target, total, *, names, tol, max_iter, start=None):
    """:func:`solve_tilt` given the sums' evaluator on the standardised scale (the whole data in memory, or the sum
    over the blocks of dask input): ``sign`` the distinct values of s, ``c_sum`` the sum of c over the rows."""
    target_std = np.concatenate([[target[0]], (target[1:] - target[0] * std.center) / std.scale])
    if start is None:
        beta = np.zeros(len(std.center) + 1)
        if sign.size == 1:  # every unit on one side: the intercept that matches the target's total
            beta[0] = sign[0] * np.log(sign[0] * target[0] / c_sum)
    else:
        beta = std.to_standard(np.asarray(start, dtype=float))
    first = evaluate(beta)
    dependent = dependent_columns(first[2])
    if dependent:
        raise ValueError(f"covariates are perfectly collinear among the reweighted units: "
                         f"{[names[j - 1] for j in dependent]} are linear combinations of the others.")
    beta, converged, n_iter, imbalance = newton_exp_dual(evaluate, target_std, total, beta, tol=tol,
                                                         max_iter=max_iter, first=first)
    return DualFit(std.to_original(beta), converged, n_iter, imbalance)


def solve_tilt_l1(X_rows, c, target_mean, tols, *, names, tol, max_iter):
    """Entropy balancing with inexact balance: |weighted mean_j - target_j| <= tols_j for every column.

    The dual of min KL(w || c) subject to sum w = 1 and the box constraints is the L1-penalised log-sum-exp

        min_lambda  log sum_i c_i exp(x~_i' lambda) + sum_j tols~_j |lambda_j|,   x~ = (x - target) / scale,

    solved by L-BFGS-B over lambda = lambda+ - lambda-, lambda+/- >= 0 (smooth and convex). The signs of that
    solution give the active constraints; Newton's method then solves them as equalities (each active mean sits
    exactly at target -/+ tols), and the result is kept when it satisfies every optimality condition, which puts
    the weights at machine precision rather than at L-BFGS-B's tolerance.

    Returns
    -------
    DualFit
        Coefficients on the original scale with the weights c exp(intercept + x' slopes) summing to one;
        ``imbalance`` is the largest excess of |mean - target| over tols in scaled units (0 when all hold).
    """
    check_enough_units(X_rows.shape[0], names)
    scale = Standardizer.fit(X_rows, target_mean).scale
    Xs = (X_rows - target_mean) / scale
    design = np.column_stack([np.ones(len(Xs)), Xs])
    dependent = dependent_columns(design.T @ design)
    if dependent:
        raise ValueError(f"covariates are perfectly collinear among the reweighted units: "
                         f"{[names[j - 1] for j in dependent]} are linear combinations of the others.")
    tol_s = np.asarray(tols, dtype=float) / scale
    log_c = np.log(c)
    p = Xs.shape[1]

    def fun(v):
        lam = v[:p] - v[p:]
        eta = log_c + Xs @ lam
        top = eta.max()
        w = np.exp(eta - top)
        norm = w.sum()
        g = Xs.T @ (w / norm)
        value = top + np.log(norm) + tol_s @ (v[:p] + v[p:])
        return value, np.concatenate([g + tol_s, -g + tol_s])

    # bounded as Newton's coefficients (_BETA_MAX): infeasible tolerances would send lambda to infinity
    res = minimize(fun, np.zeros(2 * p), jac=True, method="L-BFGS-B", bounds=[(0, _BETA_MAX)] * (2 * p),
                   options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 30})
    lam = res.x[:p] - res.x[p:]
    n_iter = int(res.nit)
    sign = np.sign(np.where(np.abs(lam) > 1e-10 * max(1.0, np.abs(lam).max()), lam, 0.0))
    active = np.flatnonzero(sign)
    if active.size:
        # exact solve on the active set: weighted mean of x~_j equal to -tols~_j * sign_j
        shifted = -tol_s[active] * sign[active]
        start = np.zeros(active.size + 1)
        start[0] = -np.log(np.sum(c))
        beta, _, it, _ = newton_exp_dual(
            dense_evaluator(np.column_stack([np.ones(len(Xs)), Xs[:, active]]), c, 1.0),
            np.concatenate([[1.0], shifted]), 1.0, start, tol=tol, max_iter=max_iter,
        )
        candidate = np.zeros(p)
        candidate[active] = beta[1:]
        if np.all(np.sign(candidate[active]) == sign[active]) and _excess(Xs, log_c, candidate, tol_s) < tol:
            lam, n_iter = candidate, n_iter + it
    excess = _excess(Xs, log_c, lam, tol_s)
    slopes = lam / scale
    intercept = -logsumexp(log_c + Xs @ lam) - slopes @ target_mean
    return DualFit(np.concatenate([[intercept], slopes]), bool(excess < tol), n_iter, excess)


def _excess(Xs, log_c, lam, tol_s):
    eta = log_c + Xs @ lam
    w = np.exp(eta - eta.max())
    return float(np.max(np.maximum(np.abs(Xs.T @ (w / w.sum())) - tol_s, 0.0)))


def check_target_inside(lo, hi, target_mean, names, slack, who, fix):
    """Raise when a target mean lies outside (or on the edge of) the range [lo, hi] of the reweighted units' values.

    No positive weights can then reach it exactly, so the dual diverges. ``slack`` (per column) is the allowed
    imbalance (0 for exact balance).
    """
    slack = np.broadcast_to(np.asarray(slack, dtype=float), target_mean.shape)
    # relative to the column's own scale (an absolute floor called every target of a 1e-12-sized covariate
    # infeasible), plus rounding of values of that magnitude
    spread = (hi - lo) * 1e-12 + 4 * np.finfo(float).eps * np.maximum(np.abs(hi), np.abs(lo))
    bad = (target_mean - slack >= hi - spread) | (target_mean + slack <= lo + spread)
    if bad.any():
        j = np.flatnonzero(bad)
        details = ", ".join(f"{names[i]!r} (target {target_mean[i]:.6g}, range [{lo[i]:.6g}, {hi[i]:.6g}])"
                            for i in j[:10])
        raise InfeasibleBalanceError(
            f"{who}: exact balance is infeasible: the target mean of {details} lies on or outside the range of the "
            f"reweighted units' values, so no positive weights can reach it. {fix}"
        )


# ----------------------------------------------------------------------------------------------------------------
# weights as functions of a logit eta, for the single-model methods (CBPS, IPT for the ATT/ATC)
# ----------------------------------------------------------------------------------------------------------------
def odds_weights(eta, a, estimand):
    """WeightIt's weight formulas written through the logit eta = log(e / (1 - e)), exact for large |eta|.

    ATT: treated 1, controls exp(eta); ATC: treated exp(-eta), controls 1; ATE: treated 1 + exp(-eta), controls
    1 + exp(eta); ATO: treated 1 - e, controls e.
    """
    treated = a == 1
    with np.errstate(over="ignore"):
        if estimand == "ATT":
            return np.where(treated, 1.0, np.exp(np.where(treated, 0.0, eta)))
        if estimand == "ATC":
            return np.where(treated, np.exp(-np.where(treated, eta, 0.0)), 1.0)
        if estimand == "ATE":
            return 1.0 + np.exp(np.where(treated, -eta, eta))
    e = expit(eta)
    return np.where(treated, 1.0 - e, e)


def odds_weights_derivative(eta, a, estimand):
    """d w / d eta of :func:`odds_weights`."""
    treated = a == 1
    with np.errstate(over="ignore"):
        if estimand == "ATT":
            return np.where(treated, 0.0, np.exp(np.where(treated, 0.0, eta)))
        if estimand == "ATC":
            return np.where(treated, -np.exp(-np.where(treated, eta, 0.0)), 0.0)
        if estimand == "ATE":
            return np.where(treated, -1.0, 1.0) * np.exp(np.where(treated, -eta, eta))
    e = expit(eta)
    return np.where(treated, -1.0, 1.0) * e * (1.0 - e)


def balance_sides(a, estimand):
    """Per-unit (c-indicator, sign s, target-share sign) of the just-identified balance conditions.

    The conditions sum_i sw_i (2 A_i - 1) w_i(eta) z_i = 0 of CBPS (and of IPT for the ATT/ATC) are written in
    the dual form sum_i c_i s_i exp(s_i eta_i) z_i = sum_i r_i z_i: controls carry exp(eta) (s = +1) when they are
    reweighted (ATT, ATE), treated units exp(-eta) (s = -1) when they are (ATC, ATE), and r collects the constant
    parts (the units kept at weight 1 on the other side).
    """
    treated = a == 1
    reweight_controls = estimand in ("ATT", "ATE")
    reweight_treated = estimand in ("ATC", "ATE")
    active = np.where(treated, reweight_treated, reweight_controls)
    s = np.where(treated, -1.0, 1.0)
    r = np.where(treated, 1.0 if reweight_controls else 0.0, -1.0 if reweight_treated else 0.0)
    return active, s, r


def solve_balance(X, sw, active, s, r, *, names, tol, max_iter, start=None):
    """Solve sum_i sw_i [active_i s_i exp(s_i eta_i) - r_i] z_i = 0 for the logit coefficients.

    Returns
    -------
    DualFit
    """
    rows = np.flatnonzero(active & (sw > 0))
    share = sw * r
    total = float(np.sum(np.abs(share)))
    target = np.concatenate([[share.sum()], share @ X])
    center = (np.abs(share) @ X) / total
    return solve_tilt(X, rows, sw, s, target, total, center, column_std(X), names=names, tol=tol,
                      max_iter=max_iter, start=start)


def tilt_sums(M, a, sw, groups, signed, std, beta, want_hess):
    """Block evaluator of the dual's sums over a block's units of positive sampling weight in ``groups``: c = sw,
    s = −1 for treated units when ``signed`` (the balance conditions of CBPS and IPT), else 1 (entropy balancing's
    one-group tilts). Summed over the partitions of dask input; a large block is read once by the numba kernel
    :func:`~balance._kernels._tilt.tilt_pass_rows` (no standardised copy of its design), a small one as in
    :func:`solve_tilt`."""
    from .._kernels._tilt import tilt_pass_rows

    in_groups = a == groups[0] if len(groups) == 1 else np.isin(a, groups)
    rows = np.flatnonzero(in_groups & (sw > 0))
    s = np.where(a == 1, -1.0, 1.0) if signed else np.ones(len(a))
    if len(rows) > _KERNEL_ROWS:
        total, grad, hess = tilt_pass_rows(M, rows, std.center, 1.0 / std.scale, np.asarray(sw, dtype=np.float64), s,
                                           np.ascontiguousarray(beta, dtype=np.float64), want_hess)
    else:
        total, grad, hess = dense_evaluator(std.design(M[rows]), sw[rows], s[rows])(beta, want_hess)
    k = M.shape[1] + 1
    return {"total": total, "grad": grad, "hess": hess if want_hess else np.zeros((k, k))}


def block_tilt_evaluator(data, groups, signed, std):
    """:func:`tilt_sums` reduced over the blocks of dask input (:class:`~balance._dask_data.DaskFitData`), in the
    form :func:`newton_exp_dual` calls: one pass per evaluation."""
    def evaluate(beta, want_hess=True):
        sums = data.blocks.reduce(data.per_block(tilt_sums, tuple(groups), signed, std, beta, want_hess))
        return float(sums["total"]), sums["grad"], sums["hess"] if want_hess else None

    return evaluate


def solve_balance_blocks(data, stats, side, *, names, tol, max_iter, check=True, who="CBPS"):
    """:func:`solve_balance` of dask input (binary): the targets from the groups' sums (``stats``, see
    :meth:`GroupStats.from_blocks`), the scale the SD of the data's standardiser, the sums by reduction."""
    active, s, r = balance_sides(np.array([0, 1]), side)  # per group: control, treated
    total = float(np.abs(r) @ stats.wsum)
    target = np.concatenate([[r @ stats.wsum], r @ (stats.mean * stats.wsum[:, None])])
    center = (np.abs(r) @ (stats.mean * stats.wsum[:, None])) / total
    groups = [int(g) for g in np.flatnonzero(active)]
    if check:
        lo = np.min([stats.lo[g] for g in groups], axis=0)
        hi = np.max([stats.hi[g] for g in groups], axis=0)
        check_target_inside(lo, hi, center, names, 0.0, who,
                            "Drop or coarsen that term, or use EntropyBalance(tols=...) for approximate balance.")
    check_enough_units(int(sum(data.stats["n_pos"][g] for g in groups)), names)
    scale = data.standardizer().scale
    std = Standardizer(center, np.where(scale > 0, scale, 1.0))
    sign = np.unique(s[active])
    c_sum = float(stats.wsum[groups[0]]) if len(groups) == 1 else None
    return solve_standardised_tilt(block_tilt_evaluator(data, groups, True, std), std, sign, c_sum, target, total,
                                   names=names, tol=tol, max_iter=max_iter)


@dataclass(frozen=True)
class GroupStats:
    """Per-group (codes 0..K-1) weighted totals, means, sums of squared deviations and ranges of the balance terms,
    over the units with positive sampling weight.

    In memory from one pass (numba kernel) on the terms divided by ``scale`` (powers of two,
    :func:`balance._stats.scale_columns`): an exact division that keeps the squared deviations ``m2`` (in those
    scaled units) from overflowing or underflowing. On dask input (:meth:`from_blocks`) by reductions."""

    wsum: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    scale: np.ndarray

    @classmethod
    def compute(cls, M, a, sw, n_groups=2):
        from .._kernels._tilt import group_moments

        Ms, scale = scale_columns(M)
        wsum, _, mean, m2, lo, hi = group_moments(np.ascontiguousarray(Ms), a.astype(np.int64),
                                                  np.ascontiguousarray(sw), n_groups)
        return cls(wsum, mean * scale, m2, lo * scale, hi * scale, scale)

    @classmethod
    def from_blocks(cls, data):
        """The same statistics of dask input (binary), in one pass: each block's by the in-memory kernel, merged
        over the blocks by Chan, Golub & LeVeque's (1983) parallel rule (no sums of squares of raw values)."""
        scale = pow2_scale(data.stats["max_abs"][None, :])  # one exact scaling for every block, as in memory
        parts = data.blocks.reduce(data.per_block(_group_moments_block, scale))
        wsum, mean, m2 = parts["cat_wsum"][0], parts["cat_mean"][0], parts["cat_m2"][0]
        for w_b, mean_b, m2_b in zip(parts["cat_wsum"][1:], parts["cat_mean"][1:], parts["cat_m2"][1:]):
            total = wsum + w_b
            share = np.divide(w_b, total, out=np.zeros_like(total), where=total > 0)[:, None]
            delta = mean_b - mean
            m2 = m2 + m2_b + delta**2 * (wsum * share[:, 0])[:, None]
            mean, wsum = mean + delta * share, total
        return cls(wsum, mean * scale, m2, parts["min_lo"] * scale, parts["max_hi"] * scale, scale)

    def check_not_constant(self, names):
        check_constant_range(self.lo.min(axis=0), self.hi.max(axis=0), names)

    def target(self, group):
        """Size and means of the target population: group ``group`` (the treated for the ATT, the controls for the
        ATC, the focal level), or everyone (None, the ATE)."""
        if group is None:
            total = self.wsum.sum()
            return float(total), (self.wsum @ self.mean) / total
        return float(self.wsum[group]), self.mean[group].copy()

    def range(self, group):
        return self.lo[group], self.hi[group]

    def sd(self, group):
        return np.sqrt(self.m2[group] / self.wsum[group]) * self.scale


def _group_moments_block(M, a, sw, scale):
    """One block's per-group (0, 1) moments of ``M / scale`` by the in-memory kernel, with a leading block axis
    (concatenated over the blocks, merged by :meth:`GroupStats.from_blocks`)."""
    from .._kernels._tilt import group_moments

    scaled = np.empty(M.shape)  # C order, as the kernel reads rows
    np.divide(M, scale, out=scaled)
    wsum, _, mean, m2, lo, hi = group_moments(scaled, a.astype(np.int64),
                                              np.ascontiguousarray(sw, dtype=np.float64), 2)
    return {"cat_wsum": wsum[None], "cat_mean": mean[None], "cat_m2": m2[None], "min_lo": lo, "max_hi": hi}


# ----------------------------------------------------------------------------------------------------------------
# estimating equations of stacked one-group tilts (entropy balancing; IPT for a multi-category treatment)
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TiltBlock:
    """One reweighted group of stacked estimating equations (see :func:`tilt_parts`).

    ``level``: the group's code; ``target``: per-unit share r of the balance target (a 0/1 indicator);
    ``sign``: s of exp(s z'theta); ``scale``: the constant the tilted weights are multiplied by;
    ``offset``: a multiple of the sampling weight added to the weight (1 for IPT's 1/p = 1 + exp(-eta)).
    """

    level: int
    target: np.ndarray
    sign: float = 1.0
    scale: float = 1.0
    offset: float = 0.0


def tilt_parts(M, a, sw, base, blocks, params, names):
    """:class:`~balance._base.MParts` of stacked tilts, one parameter block per reweighted group g:

    ψ_g = (s r_g − t_g) z,  t_g = 1{A = g} b exp(sign_g z'θ_g),  z = (1, M),

    s the sampling weights, b the base weights (b = s without base weights); a unit of group g weighs
    scale_g t_g + offset_g s, any other unit s. The blocks are independent, so the Jacobian of Σψ is block
    diagonal, −sign_g Σ t_g z z' per block.
    """
    from .._base import MParts

    design = np.column_stack([np.ones(len(a)), M])
    k = design.shape[1]

    def tilted(theta, b, block):
        in_g = a == block.level
        with np.errstate(over="ignore"):
            return np.where(in_g, base * np.exp(block.sign * np.where(in_g, design @ theta[b * k:(b + 1) * k], 0.0)),
                            0.0)

    def psi(theta):
        return np.hstack([design * (sw * block.target - tilted(theta, b, block))[:, None]
                          for b, block in enumerate(blocks)])

    def psi_jacobian(theta):
        jac = np.zeros((len(blocks) * k, len(blocks) * k))
        for b, block in enumerate(blocks):
            jac[b * k:(b + 1) * k, b * k:(b + 1) * k] = -block.sign * (
                design * tilted(theta, b, block)[:, None]).T @ design
        return jac

    def weights(theta):
        w = sw.astype(float).copy()
        for b, block in enumerate(blocks):
            w = np.where(a == block.level, block.scale * tilted(theta, b, block) + block.offset * sw, w)
        return w

    def weights_jacobian(theta):
        return np.hstack([design * (block.scale * block.sign * tilted(theta, b, block))[:, None]
                          for b, block in enumerate(blocks)])

    return MParts(params=params, names=names, psi=psi, weights=weights, psi_jacobian=psi_jacobian,
                  weights_jacobian=weights_jacobian)
