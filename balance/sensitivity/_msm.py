"""The marginal sensitivity model for weighting estimators (Tan 2006; Zhao, Small & Bhattacharya 2019).

Under the model, the true propensity odds of each unit (given its covariates and an unmeasured confounder) differ
from the fitted ones by a factor of at most Λ ≥ 1. Each unit's weight then lies in a known interval: writing the
fitted weight as w = c + v, with c the part that does not depend on the propensity odds and v the part proportional
to them (or to their inverse), the true weight is c + v z with z ∈ [1/Λ, Λ]:

=========  ==========================  ==========================
estimand   treated                     controls
=========  ==========================  ==========================
ATE        c = w e, v = w (1 − e)      c = w (1 − e), v = w e
ATT        c = w, v = 0                c = 0, v = w
ATC        c = 0, v = w                c = w, v = 0
=========  ==========================  ==========================

(e the fitted propensity score; for inverse-probability weights 1/e = 1 + (1 − e)/e, so c = 1 and v = (1 − e)/e.)
The Hájek estimate of each arm's mean, Σ w y / Σ w, is a linear-fractional function of the weights, and its
extremes over the box of weights are attained with the weights at one end of their interval below a threshold in y
and at the other above it (Zhao, Small & Bhattacharya 2019, Proposition 4): sorting y once and scanning every
threshold with cumulative sums gives the sharp bounds in O(n log n). The two arms' weights vary independently, so
the effect's bounds combine the arms' extremes (the largest treated mean with the smallest control mean, ...).

Dorn & Guo (2022) sharpen these bounds: a true propensity must also satisfy E[A / e(X, U) | X] = 1, which the
box ignores. With ``method="quantile"`` the weights must keep the fitted weights' totals of an intercept and the
covariates in each arm; the extremes are then linear programmes (solved by scipy's HiGHS), whose optimum puts each
unit at the top of its interval above a v-weighted linear quantile regression of y at level Λ/(1 + Λ) and at the
bottom below it: their quantile-balancing bounds, with the finite-sample balance solved exactly.

A percentile bootstrap (rows resampled, the weights re-estimated in every replicate as Zhao, Small & Bhattacharya
do) gives the interval [Q_{α/2}(lower bounds), Q_{1−α/2}(upper bounds)]; the quantiles are order statistics
(numpy's "lower" and "higher" methods), so that the breakdown Λ (the smallest Λ at which the interval contains the
null) is exact: each replicate's bounds are monotone in Λ, so the interval contains the null exactly when enough
replicates' own crossing points are below Λ.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import brentq


ESTIMANDS = ("ATE", "ATT", "ATC")
_NULL = {"difference": 0.0, "rr": 1.0, "or": 1.0}
# the largest Λ searched for a breakdown point: beyond it the bounds have long reached the outcome's range
LAMBDA_MAX = 1e8


def hajek_bounds(y, lower, upper):
    """Sharp bounds of the weighted mean Σ w y / Σ w over all weights with ``lower ≤ w ≤ upper``.

    Parameters
    ----------
    y, lower, upper : ndarray of shape (n,)
        Outcomes and non-negative weight limits with a positive total ``lower``.

    Returns
    -------
    low, high : float

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0.0, 1.0])
    >>> low, high = hajek_bounds(y, np.array([1.0, 1.0]), np.array([3.0, 3.0]))  # weights 1 and 3 either way
    >>> round(low, 12), round(high, 12)
    (0.25, 0.75)
    """
    y, lower, upper = (np.asarray(v, dtype=float) for v in (y, lower, upper))
    if not (y.shape == lower.shape == upper.shape and y.ndim == 1):
        raise ValueError("y, lower and upper must be 1-d arrays of one length.")
    if np.any(lower < 0) or np.any(upper < lower) or not lower.sum() > 0:
        raise ValueError("weight limits must satisfy 0 <= lower <= upper with a positive total lower limit.")
    # the box [lower, upper] is [c + v/Λ, c + vΛ] at Λ = 2 with v = (upper − lower)/1.5, c = lower − v/2
    v = (upper - lower) / 1.5
    order = np.argsort(y, kind="stable")
    low, high = _ArmBounds(y[order], (lower - v / 2)[order], v[order])([2.0])
    return float(low[0]), float(high[0])


def weight_parts(weights, a, estimand, ps=None):
    """Split fitted weights into the part c that Λ leaves alone and the part v it scales (see the module notes).

    ``ps`` (the fitted probability of treatment) is needed for the ATE only.
    """
    weights = np.asarray(weights, dtype=float)
    treated = np.asarray(a) == 1
    if estimand == "ATE":
        if ps is None:
            raise ValueError("the marginal sensitivity model of the ATE needs the fitted propensity scores (ps_) to "
                             "split each weight into 1 + odds; this weighter has none. Use a propensity-score "
                             "weighter (PropensityWeights, CBPS, InverseProbabilityTilting), or the ATT or ATC.")
        ps = np.asarray(ps, dtype=float)
        own = np.where(treated, ps, 1 - ps)  # the probability of the treatment received
        return weights * own, weights * (1 - own)
    varies = ~treated if estimand == "ATT" else treated
    return np.where(varies, 0.0, weights), np.where(varies, weights, 0.0)


def check_lambdas(lambdas):
    """Λ values as a float array; each must be a finite number ≥ 1."""
    values = np.atleast_1d(np.asarray(lambdas, dtype=float)) if not isinstance(lambdas, str) else None
    if values is None or values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or values.min() < 1:
        raise ValueError(f"lambdas={lambdas!r} must be one or more finite numbers >= 1 (Λ = 1: no unmeasured "
                         "confounding; Λ = 2: the true propensity odds may be half or twice the fitted ones).")
    return values


def _contrast(mu1, mu0, scale):
    """The effect on its natural scale from the two arms' means (increasing in mu1, decreasing in mu0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if scale == "difference":
            return mu1 - mu0
        if scale == "rr":
            return mu1 / mu0
        return (mu1 / (1 - mu1)) / (mu0 / (1 - mu0))


class _ArmBounds:
    """One arm's Hájek bounds at any Λ, from two cumulative sums over its units sorted by outcome.

    With weights c + v/Λ below the threshold j and c + vΛ from j on (the upper bound; the reverse for the lower),
    the sums split into the fixed totals of c and c·y and the cumulative sums of v and v·y:
    num(j) = Σ c y + Σ_{<j} v y / Λ + Λ Σ_{≥j} v y, den(j) likewise without y. Moving unit j across the threshold
    moves the mean towards y_j, so the mean m(j) rises while y_j < m(j) and falls after (y is sorted): the extreme is
    at the first j with y_j ≥ m(j), found by a binary search over j for all Λ at once (O(log n) per Λ).
    """

    def __init__(self, y, c, v):
        self.y = y
        # (c * y).sum(), not c @ y: a BLAS dot product spawns threads, 100x slower on a loaded machine
        self.c_total, self.cy_total = c.sum(), (c * y).sum()
        self.v_cum, self.vy_cum = np.zeros(len(y) + 1), np.zeros(len(y) + 1)
        np.cumsum(v, out=self.v_cum[1:])
        np.cumsum(v * y, out=self.vy_cum[1:])

    def _mean(self, j, below, above):
        """m(j) with the units below j multiplied by ``below`` and the others by ``above`` (arrays over Λ)."""
        below_v, below_vy = self.v_cum[j], self.vy_cum[j]
        above_v, above_vy = self.v_cum[-1] - below_v, self.vy_cum[-1] - below_vy
        return ((self.cy_total + below_vy * below + above_vy * above)
                / (self.c_total + below_v * below + above_v * above))

    def _extreme(self, below, above):
        lo = np.zeros(below.shape, dtype=np.int64)
        hi = np.full(below.shape, len(self.y), dtype=np.int64)
        while np.any(lo < hi):
            mid = (lo + hi) // 2
            rising = (lo < hi) & (self.y[np.minimum(mid, len(self.y) - 1)] < self._mean(mid, below, above))
            lo, hi = np.where(rising, mid + 1, lo), np.where(rising | (lo >= hi), hi, mid)
        return self._mean(lo, below, above)

    def __call__(self, lambdas):
        lam = np.asarray(lambdas, dtype=float)
        return self._extreme(lam, 1 / lam), self._extreme(1 / lam, lam)


class _BalancedArmBounds:
    """One arm's bounds with Dorn & Guo's (2022) balancing constraints, by linear programming (scipy's HiGHS).

    The true weights must also reproduce the fitted weights' totals of every column of ``phi`` (an intercept and
    the covariates): Σ w φ = Σ ŵ φ, which a true propensity satisfies in expectation (E[A/e(X, U) | X] = 1 for the
    treated arm) and the bounds of Zhao, Small & Bhattacharya ignore. With the intercept Σ w = Σ ŵ, so the Hájek
    mean is linear in w. The optimum puts each unit at the top of its interval above a linear quantile regression
    of y on φ at level Λ/(1 + Λ) (weighted by v), at the bottom below it: Dorn & Guo's quantile-balancing bound.
    """

    def __init__(self, y, c, v, phi):
        keep = (c > 0) | (v > 0)  # units absent from a bootstrap replicate carry no weight
        self.y, self.c, self.v, phi = y[keep], c[keep], v[keep], phi[keep]
        self.phi = phi[:, _independent_columns(phi)]
        self.target = self.phi.T @ (self.c + self.v)
        self.total = (self.c + self.v).sum()

    def _solve(self, lam, sign):
        from scipy.optimize import linprog

        bounds = np.column_stack([self.c + self.v / lam, self.c + self.v * lam])
        res = linprog(-sign * self.y, A_eq=self.phi.T, b_eq=self.target, bounds=bounds, method="highs")
        if res.status != 0:
            raise ArithmeticError(f"the quantile-balancing linear programme failed at Λ = {lam:g}: {res.message}")
        return float(res.x @ self.y / self.total)

    def __call__(self, lambdas):
        lambdas = np.asarray(lambdas, dtype=float)
        if not np.any(self.v > 0):  # the estimand leaves this arm's weights alone
            mean = float((self.c * self.y).sum() / self.c.sum())
            return np.full(len(lambdas), mean), np.full(len(lambdas), mean)
        return (np.array([self._solve(lam, -1.0) for lam in lambdas]),
                np.array([self._solve(lam, 1.0) for lam in lambdas]))


def _independent_columns(phi):
    """Indices of a maximal set of linearly independent columns of ``phi`` (pivoted QR; a covariate constant
    within an arm, e.g. a dummy, is dependent on the intercept there)."""
    from scipy.linalg import qr

    if phi.shape[1] == 0:
        return []
    _, r, pivots = qr(phi, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.sum(diag > diag[0] * max(phi.shape) * np.finfo(float).eps)) if diag.size and diag[0] > 0 else 0
    return np.sort(pivots[:rank])


class _Layout:
    """Each arm's units sorted by outcome, computed once and shared by every bootstrap replicate."""

    def __init__(self, y, a):
        order = np.argsort(y, kind="stable")
        a = np.asarray(a)[order]
        self.arms = [order[a == k] for k in (0, 1)]
        self.y = [np.asarray(y, dtype=float)[rows] for rows in self.arms]


class EffectBounds:
    """Sharp bounds of a Hájek effect under the marginal sensitivity model, at any Λ.

    Parameters
    ----------
    y : ndarray of shape (n,)
    a : ndarray of shape (n,)
        0/1 treatment codes (1 treated).
    c, v : ndarray of shape (n,)
        Weight parts from :func:`weight_parts`.
    scale : {"difference", "rr", "or"}, default="difference"
    layout : _Layout, default=None
        The arms sorted by outcome, when already known (the bootstrap sorts once and reuses it).
    phi : ndarray of shape (n, p), default=None
        An intercept and the covariates: Dorn & Guo's (2022) quantile-balancing bounds (linear programmes), sharper
        than the default bounds of Zhao, Small & Bhattacharya (2019).
    """

    def __init__(self, y, a, c, v, scale="difference", layout=None, phi=None):
        if phi is None:
            layout = _Layout(y, a) if layout is None else layout
            self.arms = [_ArmBounds(y_arm, c[rows], v[rows]) for y_arm, rows in zip(layout.y, layout.arms)]
        else:
            y, a = np.asarray(y, dtype=float), np.asarray(a)
            self.arms = [_BalancedArmBounds(y[a == k], c[a == k], v[a == k], phi[a == k]) for k in (0, 1)]
        self.scale = scale
        self.null = _NULL[scale]

    @classmethod
    def resampled(cls, layout, sorted_parts, counts, scale):
        """The bounds on a resample given by each unit's ``counts``, with ``sorted_parts`` the fitted (c, v) of each
        arm in the layout's order (one gather of the counts per arm instead of two of the weights)."""
        self = cls.__new__(cls)
        self.arms = []
        for y_arm, rows, (c, v) in zip(layout.y, layout.arms, sorted_parts):
            k = counts[rows]
            self.arms.append(_ArmBounds(y_arm, c * k, v * k))
        self.scale, self.null = scale, _NULL[scale]
        return self

    def __call__(self, lambdas):
        """(low, high) arrays of the effect's bounds, one entry per Λ."""
        (mu0_low, mu0_high), (mu1_low, mu1_high) = (arm(lambdas) for arm in self.arms)
        return _contrast(mu1_low, mu0_high, self.scale), _contrast(mu1_high, mu0_low, self.scale)

    def crossing(self, side):
        """The smallest Λ at which the lower (``side=0``) or upper (``side=1``) bound reaches the null; inf when it
        does not by Λ = 1e8. Exact up to brentq's tolerance on log Λ (1e-12)."""
        sign = 1.0 if side == 0 else -1.0  # the lower bound falls with Λ, the upper one rises

        def gap(log_lam):
            return sign * (self([np.exp(log_lam)])[side][0] - self.null)

        if gap(0.0) <= 0:
            return 1.0
        top = np.log(LAMBDA_MAX)
        if not gap(top) <= 0:
            return np.inf
        return float(np.exp(brentq(gap, 0.0, top, xtol=1e-12, rtol=4 * np.finfo(float).eps)))


def msm_bounds(y, a, weights, lambdas, *, estimand="ATE", ps=None, scale="difference", covariates=None):
    """Sharp bounds of the Hájek (weighted difference in means) effect under the marginal sensitivity model.

    Parameters
    ----------
    y : array-like of shape (n,)
    a : array-like of shape (n,)
        0/1 treatment (1 treated).
    weights : array-like of shape (n,)
        The fitted weights (sampling weights included).
    lambdas : float or sequence of float
        Sensitivity parameters Λ ≥ 1.
    estimand : {"ATE", "ATT", "ATC"}, default="ATE"
    ps : array-like of shape (n,), default=None
        Fitted probability of treatment; needed for the ATE.
    scale : {"difference", "rr", "or"}, default="difference"
    covariates : array-like of shape (n, p), default=None
        Given: Dorn & Guo's (2022) sharper quantile-balancing bounds, the weights also constrained to keep the
        fitted weights' totals of an intercept and these covariates in each arm (a linear programme per arm and Λ).

    Returns
    -------
    DataFrame indexed by Λ with columns ``bound_low`` and ``bound_high``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ps = rng.uniform(0.2, 0.8, 200); a = rng.binomial(1, ps); y = a + rng.normal(size=200)
    >>> w = np.where(a == 1, 1 / ps, 1 / (1 - ps))
    >>> b = msm_bounds(y, a, w, [1, 2], ps=ps)
    >>> bool(np.isclose(b.loc[1.0, "bound_low"], np.average(y[a == 1], weights=w[a == 1])
    ...                                     - np.average(y[a == 0], weights=w[a == 0])))
    True
    >>> bool(b.loc[2.0, "bound_low"] < b.loc[1.0, "bound_low"] < b.loc[2.0, "bound_high"])
    True
    """
    lambdas = check_lambdas(lambdas)
    if estimand not in ESTIMANDS:
        raise ValueError(f"estimand={estimand!r}: the marginal sensitivity model bounds the {list(ESTIMANDS)}.")
    if scale not in _NULL:
        raise ValueError(f"scale={scale!r}; choose one of {list(_NULL)}.")
    y, a, weights = _check_arrays(y, a, weights, ps)
    c, v = weight_parts(weights, a, estimand, ps)
    phi = None if covariates is None else _with_intercept(covariates)
    low, high = EffectBounds(y, a, c, v, scale, phi=phi)(lambdas)
    return pd.DataFrame({"bound_low": low, "bound_high": high}, index=pd.Index(lambdas, name="lambda"))


def _check_arrays(y, a, weights, ps):
    """y, a and weights as arrays of one length: y finite, a 0/1 with both groups, weights finite and >= 0, ps (when
    given) strictly inside (0, 1)."""
    y, a, weights = (np.asarray(v, dtype=float).ravel() for v in (y, a, weights))
    if not len(y) == len(a) == len(weights) or (ps is not None and np.size(ps) != len(y)):
        raise ValueError("y, a, weights (and ps) must have one entry per unit.")
    if not np.all(np.isfinite(y)):
        raise ValueError("y has missing or infinite values.")
    if not (np.all((a == 0) | (a == 1)) and 0 < a.sum() < len(a)):
        raise ValueError("a must be a 0/1 treatment (1 treated) with both groups present.")
    if not (np.all(np.isfinite(weights)) and np.all(weights >= 0)):
        raise ValueError("weights must be finite and non-negative.")
    if ps is not None and not np.all((np.asarray(ps) > 0) & (np.asarray(ps) < 1)):
        raise ValueError("ps must lie strictly between 0 and 1.")
    return y, a.astype(np.int64), weights


def _with_intercept(covariates):
    """An intercept and the covariates, centred and scaled (the linear programmes' constraints well conditioned)."""
    matrix = np.asarray(covariates, dtype=float)
    matrix = matrix.reshape(len(matrix), -1)
    scale = matrix.std(axis=0)
    matrix = (matrix - matrix.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    return np.column_stack([np.ones(len(matrix)), matrix])


METHODS = ("zsb", "quantile")


# -- the bootstrap on a fitted WeightedEffect -----------------------------------------------------------------------
class _SensitivityProblem:
    """One bootstrap replicate of the bounds (the interface of ``balance.effects._bootstrap.run_bootstrap``):
    resample rows, re-estimate the weights (``refit``) or keep the fitted ones, and return the bounds at every Λ,
    then (``crossings``) each bound's crossing point."""

    def __init__(self, effect_problem, y, weights, ps, lambdas, scale, refit, crossings, phi=None, fast=None):
        self.effect_problem, self.y, self.weights, self.ps = effect_problem, y, weights, ps
        self.lambdas, self.scale, self.refit, self.crossings, self.phi = lambdas, scale, refit, crossings, phi
        self.fast = fast  # PropensityReplicates of the fitted weighter, when it covers it
        self.layout = _Layout(y, effect_problem.a)
        c, v = weight_parts(weights, effect_problem.a, effect_problem.estimand, ps)
        self.sorted_parts = [(c[rows], v[rows]) for rows in self.layout.arms]
        self.labels = ([f"low{k}" for k in range(len(lambdas))] + [f"high{k}" for k in range(len(lambdas))]
                       + (["cross_low", "cross_high"] if crossings else []))

    @property
    def n_obs(self):
        return len(self.y)

    def replicate(self, kind, draw, seed=None):
        p = self.effect_problem
        if np.bincount(p.a[draw], minlength=2).min() == 0:
            raise ValueError("a treatment group is absent from the replicate.")
        counts = np.bincount(draw, minlength=self.n_obs)
        converged = True
        # a unit drawn several times enters once with its copies' weights summed: the bounds depend on the weights
        # only through their sums at each outcome value, so this is exact, and the sort of y is done once
        if self.refit:
            fast = None if self.fast is None else self.fast(counts)
            if fast is None:
                c, v, converged = self._refit_parts(draw, seed)
            else:
                rows, weights, ps = fast
                c, v = np.zeros(self.n_obs), np.zeros(self.n_obs)
                for total, part in zip((c, v), weight_parts(weights, p.a[rows], p.estimand, ps)):
                    total[rows] = counts[rows] * part
        elif self.phi is not None:
            ps = None if self.ps is None else self.ps[draw]
            c, v = (np.bincount(draw, weights=part, minlength=self.n_obs)
                    for part in weight_parts(self.weights[draw], p.a[draw], p.estimand, ps))
        else:
            bounds = EffectBounds.resampled(self.layout, self.sorted_parts, counts.astype(float), self.scale)
        if self.refit or self.phi is not None:
            bounds = EffectBounds(self.y, p.a, c, v, self.scale, layout=self.layout, phi=self.phi)
        low, high = bounds(self.lambdas)
        values = [low, high] + ([[bounds.crossing(0), bounds.crossing(1)]] if self.crossings else [])
        return np.concatenate(values), converged

    def _refit_parts(self, draw, seed):
        """Each unit's summed (c, v) over its copies with the weights refitted on the resampled rows (a clone of
        the weighter fitted on them), and whether the refit converged."""
        from .._validation import take_rows
        from ..effects._weighted_effect import _fit_weighter, _final_step

        p = self.effect_problem
        sw = None if p.sample_weight is None else p.sample_weight[draw]
        fitted, weights = _fit_weighter(p.weighter, take_rows(p.X, draw), take_rows(p.treatment, draw), sw, seed)
        final = _final_step(fitted)
        ps = np.asarray(final.ps_, dtype=float) if p.estimand == "ATE" else None
        c, v = (np.bincount(draw, weights=part, minlength=self.n_obs)
                for part in weight_parts(weights, p.a[draw], p.estimand, ps))
        return c, v, bool(getattr(final, "converged_", True))


def _effect_inputs(effect):
    """(problem, y, weights, ps) of a fitted WeightedEffect, after checking it is a case the model covers."""
    from sklearn.utils.validation import check_is_fitted

    from ..effects._weighted_effect import _final_step

    check_is_fitted(effect, "result_")
    problem = effect._problem
    if problem.n_levels != 2:
        raise ValueError("the marginal sensitivity model is implemented for binary treatments only.")
    if problem.estimand not in ESTIMANDS:
        raise ValueError(f"the marginal sensitivity model bounds the ATE, ATT and ATC; this effect is the "
                         f"{problem.estimand}, whose target population moves with the weights.")
    if effect.outcome_model != "simple":
        raise ValueError(f"the marginal sensitivity bounds are those of the Hájek estimator (outcome_model="
                         f"'simple'); this effect uses outcome_model={effect.outcome_model!r}. Fit WeightedEffect "
                         "with outcome_model='simple' for them.")
    final = _final_step(effect.weighter_)
    weights = np.asarray(final.weights_, dtype=float)
    ps = getattr(final, "ps_", None) if problem.estimand == "ATE" else None
    ps = None if ps is None else np.asarray(ps, dtype=float)
    weight_parts(weights, problem.a, problem.estimand, ps)  # refuses an ATE without propensity scores, up front
    return problem, problem.y * effect._y_unit, weights, ps


def _check_alpha(alpha):
    if not (isinstance(alpha, numbers.Real) and 0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r} must be in (0, 1).")


def _effect_phi(effect, method):
    """The quantile-balancing constraints' matrix of a fitted effect (None for the default bounds)."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}; choose 'zsb' (Zhao, Small & Bhattacharya 2019) or 'quantile' (Dorn & "
                         "Guo 2022).")
    if method == "zsb":
        return None
    return _with_intercept(effect_design(effect)[0])


def effect_design(effect):
    """(matrix, names, design) of the covariates of a fitted WeightedEffect, coded as its weighter codes them."""
    from .._validation import CovariateDesign
    from ..effects._weighted_effect import _final_step

    problem = effect._problem
    design = CovariateDesign.from_data(problem.X, missing=getattr(_final_step(effect.weighter_), "missing", "error"))
    matrix, names = design.transform(problem.X, drop_first=True)
    return matrix, names, design


def _run(effect, lambdas, alpha, n_bootstrap, random_state, n_jobs, refit, crossings, method="zsb"):
    """Point bounds and bootstrap replicates for a fitted effect."""
    from ..effects._bootstrap import PropensityReplicates, run_bootstrap

    lambdas = check_lambdas(lambdas)
    _check_alpha(alpha)
    problem, y, weights, ps = _effect_inputs(effect)
    n_bootstrap = effect.n_bootstrap if n_bootstrap is None else n_bootstrap
    if not (isinstance(n_bootstrap, numbers.Integral) and n_bootstrap >= 2):
        raise ValueError(f"n_bootstrap={n_bootstrap!r} must be an integer >= 2.")
    phi = _effect_phi(effect, method)
    bounds = EffectBounds(y, problem.a, *weight_parts(weights, problem.a, problem.estimand, ps), effect.scale,
                          phi=phi)
    fast = None
    if refit:  # the effect's own bootstrap may have built it already
        fast = problem.fast
        if fast is None:
            fast = PropensityReplicates.build(effect.weighter_, problem.X, problem.treatment, problem.sample_weight)
    boot = _SensitivityProblem(problem, y, weights, ps, lambdas, effect.scale, refit, crossings, phi, fast)
    draws, counts = run_bootstrap(boot, "bootstrap", n_bootstrap, effect.random_state if random_state is None
                                  else random_state, n_jobs=effect.n_jobs if n_jobs is None else n_jobs)
    if counts["failed"] or counts["nonconverged"]:
        warnings.warn(f"sensitivity bootstrap: {counts['failed']} of {n_bootstrap} replicates failed (excluded) "
                      f"and {counts['nonconverged']} did not converge (kept).", UserWarning, stacklevel=4)
    return lambdas, bounds, draws.dropna().to_numpy(), counts


def sensitivity_table(effect, lambdas=(1, 1.25, 1.5, 2, 3), *, alpha=0.05, n_bootstrap=None, random_state=None,
                      n_jobs=None, refit=True, method="zsb"):
    """Bounds and percentile-bootstrap interval of a fitted WeightedEffect at each Λ (see
    :meth:`balance.WeightedEffect.sensitivity`)."""
    lambdas, bounds, draws, counts = _run(effect, lambdas, alpha, n_bootstrap, random_state, n_jobs, refit, False,
                                          method)
    m = len(lambdas)
    low, high = bounds(lambdas)
    table = pd.DataFrame({
        "bound_low": low, "bound_high": high,
        "ci_low": np.quantile(draws[:, :m], alpha / 2, axis=0, method="lower"),
        "ci_high": np.quantile(draws[:, m:2 * m], 1 - alpha / 2, axis=0, method="higher"),
    }, index=pd.Index(lambdas, name="lambda"))
    table.attrs.update(alpha=alpha, n_bootstrap=len(draws) + counts["failed"], n_failed=counts["failed"],
                       refit=refit, null=bounds.null, estimand=effect._problem.estimand, method=method)
    return table


def breakdown(effect, *, alpha=0.05, ci=True, n_bootstrap=None, random_state=None, n_jobs=None, refit=True,
              method="zsb"):
    """The smallest Λ at which the interval (``ci=True``) or the bounds (``ci=False``) reach the null (see
    :meth:`balance.WeightedEffect.breakdown_lambda`)."""
    if not ci:
        _check_alpha(alpha)
        problem, y, weights, ps = _effect_inputs(effect)
        bounds = EffectBounds(y, problem.a, *weight_parts(weights, problem.a, problem.estimand, ps), effect.scale,
                              phi=_effect_phi(effect, method))
        return max(bounds.crossing(0), bounds.crossing(1))
    _, _, draws, _ = _run(effect, [1.0], alpha, n_bootstrap, random_state, n_jobs, refit, True, method)
    b = len(draws)
    # the interval at Λ is [k_low-th smallest lower bound, k_high-th smallest upper bound] (0-based order
    # statistics, numpy's "lower"/"higher" quantiles); it reaches the null once k_low + 1 replicates' lower bounds
    # and b − k_high replicates' upper bounds have, i.e. at those order statistics of the crossing points
    k_low = int(np.floor(alpha / 2 * (b - 1)))
    k_high = int(np.ceil((1 - alpha / 2) * (b - 1)))
    cross_low = np.sort(draws[:, -2])[k_low]
    cross_high = np.sort(draws[:, -1])[b - k_high - 1]
    return float(max(cross_low, cross_high))
