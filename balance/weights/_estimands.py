"""Weights from a propensity score: the ATE weight times the estimand's tilting function.

For a binary treatment with propensity score e = P(A = 1 | X), Li, Morgan & Zaslavsky (2018) write every estimand
as a tilting function h(e): treated units get h/e, controls h/(1 − e), and the target is E[h τ(X)] / E[h].

=========  ======================  ====================  ======================
estimand   h(e)                    treated weight        control weight
=========  ======================  ====================  ======================
ATE        1                       1/e                   1/(1 − e)
ATT        e                       1                     e/(1 − e)
ATC        1 − e                   (1 − e)/e             1
ATO        e(1 − e)                1 − e                 e
ATM        min(e, 1 − e)           min(e, 1 − e)/e       min(e, 1 − e)/(1 − e)
ATOS       1{α ≤ e ≤ 1 − α}        1{...}/e              1{...}/(1 − e)
=========  ======================  ====================  ======================

These are WeightIt's ``get_w_from_ps`` formulas, unnormalised (WeightIt 1.5.1's ``glm`` scale).

Multi-category treatments (levels 0..K−1, generalised propensity scores p_k = P(A = k | X), p_A the score of the
level received; :func:`multi_weights`):

=========  ===================================================================
estimand   weight of a unit at level A
=========  ===================================================================
ATE        1/p_A
ATT        p_f/p_A with f the focal level (so the focal level gets 1)
ATO        1/(p_A Σ_k 1/p_k)  (generalised overlap weights, Li & Li 2019)
=========  ===================================================================

References
----------
Li, F., Morgan, K. L., & Zaslavsky, A. M. (2018). Balancing covariates via propensity score weighting. JASA 113,
390–400.
Crump, R. K., Hotz, V. J., Imbens, G. W., & Mitnik, O. A. (2009). Dealing with limited overlap in estimation of
average treatment effects. Biometrika 96, 187–199.
Li, F., & Li, F. (2019). Propensity score weighting for causal inference with multiple treatments. Annals of
Applied Statistics 13, 2389–2415.
"""

from __future__ import annotations

import numpy as np

from .._treatment import ESTIMANDS_BY_TYPE
from .._validation import check_estimand, check_treatment


def tilting(e, estimand, alpha=0.0):
    """The tilting function h(e) of ``estimand`` (see the module table)."""
    if estimand == "ATE":
        return np.ones_like(e)
    if estimand == "ATT":
        return e
    if estimand == "ATC":
        return 1.0 - e
    if estimand == "ATO":
        return e * (1.0 - e)
    if estimand == "ATM":
        return np.minimum(e, 1.0 - e)
    if estimand == "ATOS":
        return ((e >= alpha) & (e <= 1.0 - alpha)).astype(float)
    raise ValueError(f"unknown estimand {estimand!r}")


def tilting_derivative(e, estimand, alpha=0.0):
    """dh/de, used for the derivative of the weights in the M-estimation seam (zero where h is flat)."""
    if estimand in ("ATE", "ATOS"):
        return np.zeros_like(e)
    if estimand == "ATT":
        return np.ones_like(e)
    if estimand == "ATC":
        return -np.ones_like(e)
    if estimand == "ATO":
        return 1.0 - 2.0 * e
    if estimand == "ATM":
        return np.where(e < 0.5, 1.0, -1.0)
    raise ValueError(f"unknown estimand {estimand!r}")


def arm_weights(e, a, estimand, alpha=0.0):
    """Unit weights h(e)/e for treated (a = 1) and h(e)/(1 − e) for controls (a = 0)."""
    h = tilting(e, estimand, alpha)
    return np.where(a == 1, h / e, h / (1.0 - e))


def arm_weights_derivative(e, a, estimand, alpha=0.0):
    """dw/de of :func:`arm_weights`: h'/e − h/e² (treated) and h'/(1 − e) + h/(1 − e)² (controls)."""
    h = tilting(e, estimand, alpha)
    dh = tilting_derivative(e, estimand, alpha)
    return np.where(a == 1, dh / e - h / e**2, dh / (1.0 - e) + h / (1.0 - e) ** 2)


# -- multi-category treatments -----------------------------------------------------------------------------------
MULTI_ESTIMANDS = ESTIMANDS_BY_TYPE["multi-category"]


def multi_weights(proba, codes, estimand, focal=None):
    """Unit weights from generalised propensity scores ``proba`` (n, K) and level ``codes`` (see the module
    table); ``focal`` is the focal level's code (ATT only)."""
    rows = np.arange(proba.shape[0])
    p_own = proba[rows, codes]
    if estimand == "ATE":
        return 1.0 / p_own
    if estimand == "ATT":
        return proba[:, focal] / p_own
    if estimand == "ATO":
        return 1.0 / (p_own * np.sum(1.0 / proba, axis=1))
    raise ValueError(f"estimand {estimand!r} has no multi-category weights; choose one of {list(MULTI_ESTIMANDS)}.")


def multi_weights_derivative(proba, codes, estimand, focal=None):
    """∂w_i/∂p_ij of :func:`multi_weights`, shape (n, K) (the scores taken as free, not summing to one).

    ATE −δ_jA/p_A²; ATT δ_jf/p_A − δ_jA p_f/p_A²; ATO −δ_jA/(p_A² S) + 1/(p_A S² p_j²) with S = Σ_k 1/p_k.
    """
    n = proba.shape[0]
    rows = np.arange(n)
    p_own = proba[rows, codes]
    out = np.zeros_like(proba)
    if estimand == "ATE":
        out[rows, codes] = -1.0 / p_own**2
    elif estimand == "ATT":
        out[rows, codes] = -proba[:, focal] / p_own**2
        out[:, focal] += 1.0 / p_own
    elif estimand == "ATO":
        total = np.sum(1.0 / proba, axis=1)
        out = 1.0 / (p_own * total**2)[:, None] / proba**2
        out[rows, codes] -= 1.0 / (p_own**2 * total)
    else:
        raise ValueError(f"estimand {estimand!r} has no multi-category weights; choose one of "
                         f"{list(MULTI_ESTIMANDS)}.")
    return out


def crump_alpha(e, sample_weight=None):
    """The optimal-subset threshold α of Crump et al. (2009) for the ATOS.

    With g = 1/(e(1 − e)): α = 0 when max g ≤ 2 E[g]; otherwise γ solves γ = 2 E[g | g ≤ γ] and
    α = 1/2 − sqrt(1/4 − 1/γ). The solution is found exactly over the sorted g (the right-hand side is a step
    function of γ).
    """
    e = np.asarray(e, dtype=float)
    sw = np.ones_like(e) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    # units with zero sampling weight take no part (their g would otherwise move the max and the brackets)
    e, sw = e[sw > 0], sw[sw > 0]
    g = 1.0 / (e * (1.0 - e))
    if g.max() <= 2.0 * np.average(g, weights=sw):
        return 0.0
    order = np.argsort(g)
    gamma, rhs = _first_fixed_point(g[order], sw[order])
    return _alpha(rhs[-1] if gamma is None else gamma)


def _alpha(gamma):
    return float(0.5 - np.sqrt(max(0.25 - 1.0 / gamma, 0.0)))


def _first_fixed_point(g_sorted, w_sorted, below=(0.0, 0.0), upper_end=np.inf):
    """The smallest fixed point γ = 2 E[g | g ≤ γ] at or after the units ``g_sorted`` (ascending), or None; and the
    right-hand sides. ``below`` holds (Σw, Σwg) of the units below these (dask input searches an interval of g
    whose upper end, exclusive, is ``upper_end``)."""
    # rhs[k] = 2 * weighted mean of the k+1 smallest g; γ = rhs[k] is the fixed point when it falls in
    # [g_(k), g_(k+1)): then {g ≤ γ} is exactly the k+1 smallest units.
    rhs = 2.0 * (below[1] + np.cumsum(w_sorted * g_sorted)) / (below[0] + np.cumsum(w_sorted))
    upper = np.append(g_sorted[1:], upper_end)
    fixed = np.flatnonzero((rhs >= g_sorted) & (rhs < upper))
    return (rhs[fixed[0]] if fixed.size else None), rhs


_CRUMP_GRID = 1024  # thresholds per pass of the dask search
_CRUMP_COLLECT = 200_000  # units of an interval gathered in memory to finish the search exactly


def crump_alpha_blocks(blocks, tail_scores):
    """:func:`crump_alpha` of dask input, exactly: ``tail_scores(*block)`` gives the bounded scores and sampling
    weights of a block's units of positive weight.

    One pass decides whether α = 0. Otherwise the smallest fixed point γ = 2 E[g | g ≤ γ] (g = 1/(e(1 − e))) is
    searched over intervals of g: a pass gives, at 1024 thresholds c_j, the sums Σw and Σwg of the units with
    g ≤ c_j, hence F(c) = 2 E[g | g ≤ c]. F is a non-decreasing step function, so (c_j, c_{j+1}] can hold a fixed
    point only if F(c_j) ≤ c_{j+1} and F(c_{j+1}) > c_j; the first such interval is refined by another pass, or,
    once it holds few units (or cannot be split further), its units' g (ties summed) are gathered and searched as in
    memory. Later intervals are searched when an earlier one holds no fixed point.
    """
    def over_g(func):
        def evaluate(*block):
            e, w = tail_scores(*block)
            return func(1.0 / (e * (1.0 - e)), w)
        return lambda: blocks.reduce(evaluate)

    total = over_g(lambda g, w: {"w": w.sum(), "wg": w @ g, "max_g": g.max(initial=-np.inf)})()
    top = total["max_g"]
    if top <= 2.0 * total["wg"] / total["w"]:
        return 0.0
    gamma = _search_interval(over_g, 0.0, float(top), (0.0, 0.0), depth=0)
    return _alpha(gamma if gamma is not None else 2.0 * total["wg"] / total["w"])


def _search_interval(over_g, lo, hi, below, depth):
    """The smallest fixed point in (lo, hi] (``below``: Σw, Σwg of the units with g ≤ lo), or None."""
    grid = np.unique(np.concatenate([[lo], np.geomspace(max(lo, 1.0), hi, _CRUMP_GRID), [hi]]))

    def cumulative(g, w):
        order = np.argsort(g)
        idx = np.searchsorted(g[order], grid, side="right")
        return {"n": idx, "w": np.concatenate([[0.0], np.cumsum(w[order])])[idx],
                "wg": np.concatenate([[0.0], np.cumsum((w * g)[order])])[idx]}

    sums = over_g(cumulative)()
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(sums["w"] > 0, 2.0 * sums["wg"] / sums["w"], 0.0)
    for j in range(len(grid) - 1):
        a, b = grid[j], grid[j + 1]
        if not (f[j] <= b and f[j + 1] > a):
            continue
        count = sums["n"][j + 1] - sums["n"][j]
        base = (sums["w"][j], sums["wg"][j])
        if count == 0:
            if a < f[j] <= b:
                return f[j]
            continue
        if count <= _CRUMP_COLLECT or depth >= 6 or np.nextafter(a, np.inf) >= b:
            gamma = _solve_gathered(over_g, a, b, base)
        else:
            gamma = _search_interval(over_g, a, b, base, depth + 1)
        if gamma is not None:
            return gamma
    return None


def _solve_gathered(over_g, lo, hi, below):
    """Gather the units with g in (lo, hi] (ties summed) and search them as :func:`crump_alpha` does."""
    def gather(g, w):
        inside = (g > lo) & (g <= hi)
        values, inverse = np.unique(g[inside], return_inverse=True)
        return {"cat_g": values, "cat_w": np.bincount(inverse, weights=w[inside], minlength=len(values))}

    got = over_g(gather)()
    values, inverse = np.unique(got["cat_g"], return_inverse=True)
    weights = np.bincount(inverse, weights=got["cat_w"], minlength=len(values))
    if below[0] > 0:  # a fixed point between lo and the first unit of the interval
        gamma = 2.0 * below[1] / below[0]
        if lo < gamma < (values[0] if len(values) else np.inf) and gamma <= hi:
            return gamma
    if not len(values):
        return None
    return _first_fixed_point(values, weights, below, np.nextafter(hi, np.inf))[0]


def weights_from_propensity(propensity, treatment, estimand="ATE", *, treated=None):
    """Weights for an estimand from given propensity scores (the ATE weight times the tilting function).

    Parameters
    ----------
    propensity : array-like of shape (n_samples,) or (n_samples, n_levels)
        Binary treatment: P(treated | X) for every unit, strictly between 0 and 1. Multi-category treatment: the
        generalised propensity scores P(A = k | X), one column per level, each row summing to one; a DataFrame's
        columns are matched to the levels by name, an array's columns are taken in level order (the categories'
        order of a pandas Categorical, else the sorted labels).
    treatment : array-like of shape (n_samples,)
        Binary treatment (0/1, boolean, or two labels with ``treated`` naming the treated one), or a multi-category
        treatment when ``propensity`` has three or more columns.
    estimand : {"ATE", "ATT", "ATC", "ATO", "ATM", "ATOS"}, default="ATE"
        Multi-category treatments: "ATE", "ATT" (focal level ``treated``) or "ATO".
    treated : scalar, default=None
        The treated level when the treatment is not 0/1 or boolean; the focal level of a multi-category ATT.

    Returns
    -------
    ndarray of shape (n_samples,)
        Unnormalised weights, on WeightIt's ``glm`` scale (ATT: treated 1, controls e/(1 − e); multi-category: see
        the module table).

    Notes
    -----
    For the ATOS, α is chosen by Crump et al.'s rule on these scores (:func:`crump_alpha`) and units outside
    [α, 1 − α] get weight 0.

    Examples
    --------
    >>> import numpy as np
    >>> from balance import weights_from_propensity
    >>> weights_from_propensity(np.array([0.2, 0.5, 0.8]), np.array([1, 0, 0]), "ATT")
    array([1., 1., 4.])
    >>> ps = np.array([[0.5, 0.25, 0.25], [0.2, 0.4, 0.4], [0.1, 0.1, 0.8]])
    >>> weights_from_propensity(ps, np.array(["a", "b", "c"]), "ATT", treated="a")
    array([1.   , 0.5  , 0.125])
    """
    if np.ndim(propensity) == 2 and np.shape(propensity)[1] > 2:
        return _multi_weights_from_propensity(propensity, treatment, estimand, treated)
    estimand = check_estimand(estimand)
    e = np.asarray(propensity, dtype=float).ravel()
    a = check_treatment(treatment, treated=treated, n_samples=e.shape[0], treatment_type="binary").a
    if not np.all((e > 0) & (e < 1)):
        raise ValueError("propensity scores must lie strictly between 0 and 1.")
    alpha = crump_alpha(e) if estimand == "ATOS" else 0.0
    return arm_weights(e, a, estimand, alpha)


def _multi_weights_from_propensity(propensity, treatment, estimand, treated):
    estimand = check_estimand(estimand, MULTI_ESTIMANDS)
    t = check_treatment(treatment, treated=treated, n_samples=np.shape(propensity)[0],
                        treatment_type="multi-category")
    if estimand == "ATT" and t.focal is None:
        raise ValueError(f"estimand='ATT' with a multi-category treatment needs the focal level: pass "
                         f"treated=<level>, one of {list(t.levels)}.")
    if hasattr(propensity, "columns"):
        missing = [level for level in t.levels if level not in propensity.columns]
        if missing:
            raise ValueError(f"propensity has no column for the treatment level(s) {missing}; its columns must be "
                             f"the levels {list(t.levels)}.")
        propensity = propensity[list(t.levels)]
    proba = np.asarray(propensity, dtype=float)
    if proba.shape[1] != t.n_levels:
        raise ValueError(f"propensity has {proba.shape[1]} columns but the treatment has {t.n_levels} levels "
                         f"{list(t.levels)}; pass one column per level.")
    if not np.all((proba > 0) & (proba < 1)):
        raise ValueError("generalised propensity scores must lie strictly between 0 and 1.")
    if not np.allclose(proba.sum(axis=1), 1.0, rtol=0.0, atol=1e-6):
        raise ValueError("each row of the generalised propensity scores must sum to one (the probabilities of all "
                         "levels); pass P(A = k | X) for every level k.")
    return multi_weights(proba, t.codes, estimand, t.focal)
