"""Covariate balance tables for a binary treatment, reproducing R cobalt 4.6.1's ``bal.tab()``.

:func:`balance_table` reports, per covariate, the standardised mean difference (SMD; Austin & Stuart 2015), the
variance ratio and the Kolmogorov–Smirnov statistic, before and after weighting, with cobalt's conventions: the
SMD's standard deviation always comes from the unweighted sample, binary covariates show the raw difference in
proportions by default, variances use the n − 1 ("reliability weights") form.

References: Greifer, N. cobalt: Covariate Balance Tables and Plots, R package version 4.6.1; Austin, P. C. &
Stuart, E. A. (2015), Statistics in Medicine 34(28):3661–3679.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from scipy.stats import rankdata

from ._ovl import ovl
from .._dask import any_dask
from .._stats import normalise, pow2_scale, reliability_cov, reliability_var, scale_columns
from .._treatment import ESTIMANDS_BY_TYPE, check_estimand_for
from .._validation import (CovariateDesign, as_1d, check_estimand, check_indexes_agree, check_sample_weight,
                           check_treatment, check_weights)
from ._report import BalanceTable, add_thresholds, check_thresholds, ess_table
from ._terms import balance_terms
from ._weights import (check_groups_weighted, group_names, inherit, inherit_treatment_type, resolve_weights,
                       weight_groups)

STATS = ("smd", "vratio", "ks")  # the default statistics of a binary or multi-category treatment
GROUP_STATS = STATS + ("ovl",)  # all of them, in cobalt's column order
DISPLAY = ("means", "sds")
CONTINUOUS_STATS = ("corr", "spearman")  # a continuous treatment's statistics (cobalt's "cor" and "sp")
SD_DENOMS = ("treated", "control", "pooled", "all")
_DEFAULT_SD_DENOM = {"ATT": "treated", "ATC": "control"}  # every other estimand: "pooled"


# --------------------------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------------------------
def _check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {list(choices)}.")
    return value


def _check_stats(stats, kind):
    """The statistics to compute for a treatment of type ``kind``, in cobalt's column order; None: all of them."""
    allowed = CONTINUOUS_STATS if kind == "continuous" else GROUP_STATS
    if stats is None:
        return list(CONTINUOUS_STATS if kind == "continuous" else STATS)
    stats = (stats,) if isinstance(stats, str) else tuple(stats)
    for s in stats:
        if s not in allowed and s in GROUP_STATS + CONTINUOUS_STATS:
            what = ("compares treatment groups, which a continuous treatment has not" if kind == "continuous" else
                    "is a treatment-covariate correlation, for a continuous treatment")
            raise ValueError(f"stats={s!r} {what}; choose from {list(allowed)} for a {kind} treatment.")
        _check_choice(s, allowed, "stats")
    if not stats:
        raise ValueError(f"stats is empty; choose one or more of {list(allowed)}.")
    return [s for s in allowed if s in stats]  # cobalt's column order, whatever order was asked


def _check_distance(distance, n_samples, index):
    """Return ``(matrix, names)`` of the distance rows (e.g. a propensity score)."""
    if distance is None:
        return np.empty((n_samples, 0)), []
    if not isinstance(distance, dict):
        distance = {"prop.score": distance}
    columns = []
    for name, values in distance.items():
        arr, _ = as_1d(values, f"distance[{name!r}]")
        if arr.shape[0] != n_samples:
            raise ValueError(f"distance[{name!r}] has {arr.shape[0]} entries but X has {n_samples} rows.")
        check_indexes_agree(X=index, **{f"distance[{name!r}]": values})
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"distance[{name!r}] has missing or infinite values.")
        columns.append(arr)
    return np.column_stack(columns), [str(name) for name in distance]


# --------------------------------------------------------------------------------------------------------------
# covariates
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Columns:
    """The table's rows as matrix columns (binary ones coded 0/1), each sorted once for binary detection and KS.

    ``values`` holds every column divided by ``scale``, a power of two near its largest absolute value (1 for a
    binary column): an exact division after which no square can overflow or underflow, and which changes no
    scale-free statistic by a single bit.
    """

    values: np.ndarray  # (n_samples, n_rows), scaled
    order: np.ndarray  # (n_samples, n_rows): argsort of each column
    binary: np.ndarray  # (n_rows,) bool
    scale: np.ndarray  # (n_rows,)


def _build_columns(dist, covariates, level_flags):
    """Stack distances and covariates, flag binary covariates and recode two-valued ones to 0/1.

    A covariate is binary when it has exactly two distinct values or is a level indicator / boolean. The
    reference value of a two-valued column is 0 when present, else the smaller value (cobalt's ``binarize``), so
    0/1 columns are left as they are. Distances are never binary.
    """
    # column-major, one column at a time: besides the stacked columns (recoded and scaled in place) and their sort
    # orders (int32 below 2**31 rows), only one column's temporaries are alive, whatever the number of columns
    n, k = covariates.shape[0], dist.shape[1]
    p = k + covariates.shape[1]
    values = np.empty((n, p), order="F")
    values[:, :k], values[:, k:] = dist, covariates
    order = np.empty((n, p), dtype=np.int32 if n < 2**31 else np.int64, order="F")
    is_covariate = np.arange(p) >= k
    two_valued = np.zeros(p, dtype=bool)
    top = np.ones(p)  # largest |value| of each column, as recoded
    for j in range(p if n else 0):
        column = values[:, j]
        # tie order is irrelevant (the ECDFs are read only at the end of each run of ties), so no stable sort
        order[:, j] = np.argsort(column)
        smallest, largest = column[order[0, j]], column[order[-1, j]]
        two_valued[j] = (is_covariate[j] and smallest != largest and np.isfinite(smallest) and np.isfinite(largest)
                         and np.all((column == smallest) | (column == largest)))
        if two_valued[j]:
            reference = 0.0 if smallest == 0 or largest == 0 else smallest
            column[:] = column != reference
        else:
            top[j] = max(abs(smallest), abs(largest))
    scale = pow2_scale(top[None, :])
    values /= scale  # an exact division (powers of two)
    binary = two_valued | np.concatenate([np.zeros(k, dtype=bool), level_flags])
    return _Columns(values=values, order=order, binary=binary, scale=scale)


# --------------------------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Moments:
    """Weighted moments of every column over the units of positive weight: what the means, variances and SDs of a
    balance table are made from, whether the units are in memory (:func:`_row_moments`) or summed block by block
    (:mod:`._dask_balance`).

    ``spread`` is the weighted population variance :math:`\\sum v (x - \\bar x_v)^2` with :math:`v = w / \\sum w`,
    ``correction`` is :math:`1 - \\sum v^2` (0 when one unit carries all the weight), ``lo`` and ``hi`` the
    smallest and largest value.
    """

    mean: np.ndarray
    spread: np.ndarray
    correction: float
    lo: np.ndarray
    hi: np.ndarray


def _row_moments(rows, w):
    """:class:`Moments` of the columns of ``rows`` over the units with ``w > 0`` (the terms of
    :func:`balance._stats.reliability_var`)."""
    pos = w > 0
    rows, v = rows[pos], normalise(w[pos])
    mean = v @ rows
    return Moments(mean=mean, spread=v @ (rows - mean) ** 2, correction=1.0 - v @ v, lo=rows.min(axis=0),
                   hi=rows.max(axis=0))


def mean_var(m, binary):
    """Weighted mean and variance of every column from its :class:`Moments`.

    Continuous columns: cobalt's n − 1 ("reliability weights") variance ``spread / correction``
    (:func:`balance._stats.reliability_var`), NaN when one unit carries all the weight; binary columns: p (1 − p).
    A column that is constant within two or more units gets its exact value as mean and a variance of exactly 0,
    so that rounding in the weighted sums cannot turn 0/0 into a number.
    """
    constant = m.lo == m.hi
    mean = np.where(constant, m.lo, m.mean)
    spread = m.spread / m.correction if m.correction > 0 else np.full(mean.shape, np.nan)
    spread = np.where(constant & ~np.isnan(spread), 0.0, spread)
    return mean, np.where(binary, mean * (1.0 - mean), spread)


def _moments(matrix, w, binary):
    """Weighted mean and variance (:func:`mean_var`) of every column over the units with ``w > 0``."""
    return mean_var(_row_moments(matrix, w), binary)


def _ks_column(x, order, signed_w):
    """Largest |weighted ECDF_T − weighted ECDF_C|, read after the last unit of each run of tied values.

    The largest value is skipped: both ECDFs are 1 there, and the cumulative sum would only show rounding.
    """
    x_sorted = x[order]
    ends = x_sorted[1:] != x_sorted[:-1]
    gaps = np.abs(np.cumsum(signed_w[order])[:-1][ends])
    return float(gaps.max()) if gaps.size else 0.0


def _ks(cols, first, second, diff):
    """KS statistic of every row between two groups, each ``(mask, weights)``; a unit in both (cobalt's "All"
    group) contributes to both ECDFs."""
    signed = np.zeros(len(first[1]))
    signed[first[0]] += normalise(first[1][first[0]])
    signed[second[0]] -= normalise(second[1][second[0]])
    ks = np.abs(diff)  # for a binary column the KS statistic is the difference in proportions
    for j in np.flatnonzero(~cols.binary):
        ks[j] = _ks_column(cols.values[:, j], cols.order[:, j], signed)
    return ks


def _sd(moment, sd_denom, n_levels, focal):
    """The SMD's denominator from the sample-weighted units (``moment(group, "un")``, see
    :func:`group_statistics`): one level's SD (``"treated"``: the treated or focal level; ``"control"``), all
    units' (``"all"``), or the root mean of the K within-level variances (``"pooled"``, cobalt's rule for every
    pair of a multi-category treatment)."""
    if sd_denom == "all":
        return np.sqrt(moment(ALL, "un")[1])
    if sd_denom == "pooled":
        return np.sqrt(sum(moment(k, "un")[1] for k in range(n_levels)) / n_levels)
    return np.sqrt(moment(focal if sd_denom == "treated" else 0, "un")[1])


def _smd(diff, sd, standardise, scale):
    """Divide by ``sd`` where asked, else undo the column scaling; a zero SD gives 0 for a zero difference and
    ±inf otherwise."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scaled = np.where(diff == 0, 0.0, diff / sd)
        return np.where(standardise, scaled, diff * scale)


def _ovl(cols, first, second, diff):
    """cobalt's OVL statistic of every row between two groups, each ``(mask, weights)`` (:func:`._ovl.ovl` on the
    units of both groups, zero weights included as cobalt's densities include them); a binary row's is its
    absolute difference in proportions."""
    out = np.abs(diff)
    units = np.r_[np.flatnonzero(first[0]), np.flatnonzero(second[0])]
    in_first = np.arange(units.size) < np.count_nonzero(first[0])
    w = np.r_[first[1][first[0]], second[1][second[0]]]
    for j in np.flatnonzero(~cols.binary):
        out[j] = ovl(cols.values[units, j], in_first, w)
    return out


def _display(mean_and_var, binary, scale, display):
    """A group's weighted mean (``"means"``) and SD (``"sds"``; NaN for a binary row, as cobalt leaves them out)
    of every row, in the covariates' units, from its ``(mean, variance)`` of the scaled columns."""
    mean, var = mean_and_var
    out = {}
    if "means" in display:
        out["mean"] = mean * scale
    if "sds" in display:
        out["sd"] = np.where(binary, np.nan, np.sqrt(var) * scale)
    return out


def _correlations(cols, a, runs, stats, display):
    """cobalt's treatment–covariate correlations of every row (``{"corr_un": ..., "spearman_adj": ...}``) for a
    continuous treatment ``a``.

    Each is the weighted covariance (:func:`balance._stats.reliability_cov`) over the product of the two SDs of
    the unweighted sample (sampling weights only, ``runs["un"]``: the yardstick does not move with the weights, as
    for the SMD); a binary row's SD is sqrt(p (1 − p)). Spearman: the same on the average ranks of ``a`` and of
    every non-binary row (a binary row stays 0/1).
    """
    sw = runs["un"]
    pairs = {"corr": (cols.values, scale_columns(a[:, None])[0][:, 0])}
    if "spearman" in stats:
        pairs["spearman"] = (np.where(cols.binary, cols.values, rankdata(cols.values, axis=0)), rankdata(a))
    sds = {stat: (np.sqrt(_moments(x, sw, cols.binary)[1]), np.sqrt(reliability_var(y[:, None], sw)[0]))
           for stat, (x, y) in pairs.items()}
    out = {}
    everyone = np.ones(len(a), dtype=bool)
    for suffix, w in runs.items():
        for key, column in _display(_moments(cols.values, w, cols.binary), cols.binary, cols.scale,
                                    display).items():
            out[f"{key}_all_{suffix}"] = column
        for stat in stats:
            (x, y), (sd_x, sd_y) = pairs[stat], sds[stat]
            with np.errstate(divide="ignore", invalid="ignore"):
                corr = reliability_cov(x, y, w) / (sd_x * sd_y)
            # a row constant in the unweighted sample has no correlation; its covariance is rounding noise
            out[f"{stat}_{suffix}"] = np.where(sd_x == 0, 0.0, corr)
    return out


ALL = -1  # cobalt's "All" group (pairwise=False): every unit, with its sample weights only


def _comparisons(t, pairwise):
    """``{name: (first, second)}`` of group codes (or ALL), in cobalt's order; each row is first minus second.

    Binary: one comparison, treated minus control (name None). Multi-category: every pair of levels, "B vs. A" =
    B − A for A before B in level order (``pairwise``); each level against the full unadjusted sample, "All vs. A"
    = A − All (``pairwise=False``, no focal level); or the focal level against each other level, "F vs. A" = F − A
    (``pairwise=False`` with a focal level).
    """
    if t.kind == "binary":
        return {None: (1, 0)}
    levels = [str(level) for level in t.levels]
    if pairwise:
        return {f"{levels[j]} vs. {levels[i]}": (j, i) for i, j in combinations(range(len(levels)), 2)}
    if t.focal is None:
        return {f"All vs. {level}": (k, ALL) for k, level in enumerate(levels)}
    return {f"{levels[t.focal]} vs. {level}": (t.focal, k) for k, level in enumerate(levels) if k != t.focal}


def group_statistics(moment, distribution, t, suffixes, options, binary_rows, scale):
    """The display columns and statistics of every comparison: ``{comparison: {column name: values}}``.

    The one home of the formulas after the moments, for data in memory and for dask input alike.
    ``moment(g, suffix)`` is the ``(mean, variance)`` (:func:`mean_var`) of the scaled rows in group code ``g``
    (``ALL``: every unit with its sample weights) under the weights of ``suffix`` (``"un"``: sample weights,
    ``"adj"``: the weights); ``distribution(stat, g_1, g_2, suffix, diff)`` is the ``"ks"`` or ``"ovl"`` column of
    ``g_1`` against ``g_2`` (``diff``: their difference in means). The SD comes from the unweighted sample
    (sample weights only) for both the unadjusted and the adjusted SMD.
    """
    stats, sd_denom, binary, continuous, pairwise, display = options
    standardise = np.where(binary_rows, binary == "std", continuous == "std")
    sd = _sd(moment, sd_denom, max(t.n_levels, 2), 1 if t.kind == "binary" else t.focal)
    values = {}
    for name, (g_1, g_2) in _comparisons(t, pairwise).items():
        values[name] = {}
        for suffix in suffixes:
            for g in (g_2, g_1):  # cobalt's order: M.0 before M.1
                label = "All" if g == ALL else str(t.levels[g])
                for key, column in _display(moment(g, suffix), binary_rows, scale, display).items():
                    values[name][f"{key}_{label}_{suffix}"] = column
            (m_1, v_1), (m_2, v_2) = moment(g_1, suffix), moment(g_2, suffix)
            diff = m_1 - m_2
            if "smd" in stats:
                values[name][f"smd_{suffix}"] = _smd(diff, sd, standardise, scale)
            if "vratio" in stats:
                with np.errstate(divide="ignore", invalid="ignore"):
                    values[name][f"vratio_{suffix}"] = np.where(binary_rows, np.nan, v_1 / v_2)
            for stat in ("ks", "ovl"):
                if stat in stats:
                    values[name][f"{stat}_{suffix}"] = distribution(stat, g_1, g_2, suffix, diff)
    return values


def _block(dist, covariates, level_flags, t, codes, runs, options):
    """Binary flags and statistics (:func:`group_statistics`) of one block of rows computed over the same
    units."""
    stats, _, _, _, _, display = options
    cols = _build_columns(dist, covariates, level_flags)
    if t.kind == "continuous":
        return cols.binary, {None: _correlations(cols, codes, runs, stats, display)}
    everyone = np.ones(len(codes), dtype=bool)

    def group(g, suffix):
        """``(mask, weights)`` of group code ``g``; the "All" group is always the unadjusted full sample."""
        return (everyone, runs["un"]) if g == ALL else (codes == g, runs[suffix])

    @functools.cache
    def group_moment(g, suffix):
        mask, w = group(g, suffix)
        return _moments(cols.values[mask], w[mask], cols.binary)

    def moment(g, suffix):  # the "All" group is the same for every suffix: computed once
        return group_moment(g, "un" if g == ALL else suffix)

    def distribution(stat, g_1, g_2, suffix, diff):
        return (_ks if stat == "ks" else _ovl)(cols, group(g_1, suffix), group(g_2, suffix), diff)

    return cols.binary, group_statistics(moment, distribution, t, list(runs), options, cols.binary, cols.scale)


def _observed_block(column, level_flag, t, codes, runs, options):
    """:func:`_block` for one covariate with missing values, over the units where it is observed (cobalt).

    None for the statistics when a group has no observed unit of positive weight."""
    seen = ~np.isnan(column)
    runs = {suffix: w[seen] for suffix, w in runs.items()}
    groups = [codes[seen] == k for k in range(max(t.n_levels, 2))] if t.is_categorical else [slice(None)]
    if not all(np.any(w[group] > 0) for w in runs.values() for group in groups):
        binary = bool(level_flag[0]) or np.unique(column[seen]).size == 2
        return np.array([binary]), None
    return _block(np.empty((int(seen.sum()), 0)), column[seen, None], level_flag, t, codes[seen], runs, options)


def _warn_infinite(table):
    smd_cols = [c for c in table.columns if c.startswith("smd_")]
    bad = list(table.index[np.isinf(table[smd_cols].to_numpy(dtype=float)).any(axis=1)])
    if bad:
        warnings.warn(
            f"covariate(s) {bad} have a standard deviation of zero in the unweighted sample but differ between "
            "the groups, so their SMD is infinite; look at their raw difference (continuous='raw' or binary='raw').",
            RuntimeWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------------------------------------------
# public function
# --------------------------------------------------------------------------------------------------------------
def balance_table(
    X,
    treatment,
    weights=None,
    *,
    estimand=None,
    stats=None,
    binary="raw",
    continuous="std",
    sd_denom=None,
    sample_weight=None,
    distance=None,
    treated=None,
    missing=None,
    treatment_type=None,
    pairwise=None,
    abs=False,
    per_imputation=False,
    interactions=False,
    poly=1,
    display=(),
    thresholds=None,
    by=None,
):
    """Covariate balance between treatment groups, before and after weighting (cobalt's ``bal.tab``).

    A treatment history (``X`` a list of per-time covariate tables, ``treatment`` a DataFrame with one column per
    time point, ``weights`` the final weights or a fitted :class:`~balance.msm.MSMWeights`) gets one table per time
    point and the maximum across time points: see :func:`balance.msm.balance_table_msm`, which this calls.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        Covariates. Categorical (category, object or string) columns are split into one indicator per level,
        named ``<column>_<level>`` (e.g. ``race_black``), all levels shown; boolean columns become 0/1. A dask
        DataFrame (numeric, boolean and categorical columns with known categories) or dask array is summarised
        block by block (see Notes, **Dask input**); ``treatment``, ``weights`` and ``sample_weight`` must then be
        dask collections with its partitions.
    treatment : array-like of shape (n_samples,)
        Binary treatment: 0/1, boolean, or two levels with ``treated`` given; a multi-category one (three or
        more levels, see ``pairwise``); or a continuous one (a float dose: balance is then each covariate's
        correlation with it). A Series must carry X's index.
    weights : array-like of shape (n_samples,) or fitted weighting estimator, default=None
        Analysis weights (non-negative), **sampling weights included**, as every estimator's ``weights_`` of this
        package (so they equal cobalt's ``weights * s.weights``). A fitted weighting estimator (or a Pipeline
        ending in one) is replaced by its ``weights_``, and its settings are used: its estimand, its treated
        level (``treatment_levels_``) and its ``missing`` rule; an explicit argument that conflicts with one of
        them is an error. A Series must carry X's index. ``None`` gives the unadjusted columns only.
    estimand : {"ATE", "ATT", "ATC", "ATO", "ATM", "ATOS"}, default=None
        (Multi-category: "ATE", "ATT" with the focal level ``treated``, "ATO".)
        Selects the default ``sd_denom``. ``None`` means the fitted estimator's ``estimand`` if ``weights`` has
        one, else ``"ATE"``; a different explicit value is an error (it would change the SD behind the weights).
    stats : str or sequence of {"smd", "vratio", "ks"} or of {"corr", "spearman"}, default=None
        Statistics to report; columns always come in the order smd, vratio, ks (binary and multi-category
        treatments) or corr, spearman (a continuous treatment: the treatment–covariate Pearson and Spearman
        correlations). None: all of those for the treatment's type.
    binary : {"raw", "std"}, default="raw"
        ``"raw"``: binary covariates show the difference in proportions; ``"std"``: it is divided by the SD.
    continuous : {"std", "raw"}, default="std"
        ``"std"``: continuous covariates and distances show the SMD; ``"raw"``: the difference in means.
    sd_denom : {"treated", "control", "pooled", "all"}, default=None
        (Multi-category: "treated" is the focal level's SD, "pooled" the root mean of all K levels' variances, the
        same for every comparison as in cobalt; "control" does not apply. Continuous: only "all", the default.)
        Standard deviation in the SMD denominator, always computed on the unweighted sample (``sample_weight``
        only): ``"treated"`` the treated group's SD, ``"control"`` the control group's, ``"pooled"``
        :math:`\\sqrt{(s_T^2 + s_C^2)/2}`, ``"all"`` the SD of all units together. ``None`` picks by estimand:
        ``"treated"`` for the ATT, ``"control"`` for the ATC, ``"pooled"`` otherwise.
    sample_weight : array-like of shape (n_samples,), default=None
        Sampling weights (cobalt's ``s.weights``): the weights of the unadjusted columns and of the SD. They are
        **not** multiplied into ``weights``, which already include them (pass ``balancing * sample_weight`` when
        holding balancing weights that exclude them).
    distance : array-like of shape (n_samples,) or dict of str to array-like, default=None
        Distance measures shown first, of type ``"Distance"`` (an array-like is named ``"prop.score"``). They are
        summarised like continuous covariates but are not covariates. ``"prop.score"``: the propensity score
        (``ps_``) of the fitted weighter given as ``weights`` (binary treatments), the row cobalt adds for a
        weightit object.
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean; for a multi-category treatment the focal
        level (of an ATT). None: the fitted estimator's treated level when ``weights`` is one; a different
        explicit level is an error.
    missing : {"error", "indicator"}, default=None
        Missing covariate values: ``"error"`` raises; ``"indicator"`` adds a binary row ``<column>:<NA>`` per
        column with missing values (cobalt's ``var:<NA>`` rows, the proportion missing) and summarises every
        covariate over the units where it is observed (cobalt's ``na.rm = TRUE``; a categorical column's level
        shares are shares of those units). None: the fitted estimator's ``missing`` when ``weights`` is one, else
        ``"error"``; a different explicit rule is an error.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default=None
        As the weighters' parameter (an integer treatment with more than two values needs it). None: the fitted
        estimator's type when ``weights`` is one, else ``"auto"``.
    pairwise : bool, default=None
        Multi-category treatments only. True: every pair of levels, named "B vs. A" (B − A, A before B in level
        order); False: each level against the full unadjusted sample, "All vs. A" (A − All), or, when there is a
        focal level, the focal level against each other level, "F vs. A" (F − A). None: True without a focal
        level, False with one (cobalt's own default is True in both cases).
    abs, per_imputation : bool, default=False
        Multiply imputed data only (``X`` a list of completed data sets or a fitted :class:`~balance.ImputedEffect`,
        for which the table is :func:`balance.diagnostics.balance_across_imputations`'s summary over the
        imputations): summarise absolute statistics; return the per-imputation tables instead.
    interactions : bool, default=False
        Add the product of every pair of covariates from different variables (cobalt's ``int = TRUE``), named
        ``"a * b"``, with each categorical and binary variable split into one 0/1 column per level for them
        (``age * married_0``, ``age * married_1``, ``age * race_black``); missingness indicators are left out,
        products constant over the observed units dropped. A product of two 0/1 columns is a binary row.
    poly : int, default=1
        Add the powers 2..poly of every non-binary numeric covariate (cobalt's ``poly``), named with a
        superscript: ``age²``, ``age³``. Powers come before interactions.
    display : str or sequence of {"means", "sds"}, default=()
        Add each group's weighted mean (``mean_<level>_un``, ``mean_<level>_adj``) and SD (``sd_<level>_un``,
        ``sd_<level>_adj``; the n − 1 weighted SD, NaN for a binary row as cobalt leaves it blank) before each
        sample's statistics (cobalt's ``disp``); ``<level>`` is the treatment level (``0``/``1`` for a 0/1
        treatment), ``All`` for the full-sample group of ``pairwise=False``, and ``all`` for a continuous
        treatment (the whole sample).
    thresholds : dict of str to float, default=None
        Balance thresholds per statistic, e.g. ``{"smd": 0.1, "vratio": 2, "ks": 0.1}`` (``"corr"``,
        ``"spearman"`` for a continuous treatment; a statistic with a threshold is computed even if not in
        ``stats``). Adds a column ``<stat>_threshold`` after the judged column (adjusted, else unadjusted) saying
        "Balanced, <t" or "Not Balanced, >t" (``|smd|``, ``|corr|``, ``ks``, ``ovl`` against t;
        ``max(vratio, 1/vratio)`` against t ≥ 1), and the balance tally and the row with the largest imbalance
        as attributes (see Returns).
    by : str or array-like of shape (n_samples,), default=None
        Subgroups (a column of X, which then is not a covariate, or values per unit): one table per subgroup,
        computed within it exactly as a separate call (its own SDs), stacked under an extra first index level
        ``subgroup``; the attribute ``across_subgroups`` holds the largest imbalance of each row over the subgroups
        (cobalt's ``Balance.Across.Subclass``). The weights are not refitted within subgroups.

    Returns
    -------
    table : BalanceTable (a pandas.DataFrame)
        One row per distance and expanded covariate, in X's column order (distances first); for a multi-category
        treatment one such block per comparison, under a MultiIndex with levels ``comparison`` and ``variable``
        (cobalt's order; :func:`max_over_comparisons` gives the largest imbalance of each row). Column ``type`` is
        ``"Distance"``, ``"Binary"`` or ``"Contin."``; then ``smd_un``, ``vratio_un``, ``ks_un`` (those requested)
        and, when ``weights`` is given, ``smd_adj``, ``vratio_adj``, ``ks_adj``. The variance ratio of a binary
        row is NaN, as cobalt prints NA. A continuous treatment gives one row per distance and expanded covariate
        with ``corr_un``, ``spearman_un`` (and ``corr_adj``, ``spearman_adj``). ``stats="ovl"`` adds ``ovl_un``
        and ``ovl_adj``, cobalt's overlapping-coefficient statistic.

        The table prints as cobalt's ``print.bal.tab``: the rows, then per threshold the balance tally and the
        variable with the greatest imbalance, then the effective sample sizes. Its attributes are
        ``"thresholds"``, ``"tally"`` (per statistic a DataFrame: count of rows "Balanced, <t" and "Not
        Balanced, >t"), ``"max_imbalance"`` (per statistic the row with the largest imbalance, distances left
        out), ``"ess"`` (Kish's effective sample size per group, rows ``Unadjusted``/``Adjusted``) and with
        ``by`` ``"across_subgroups"``. Any operation on the table (selection, rounding) returns a plain
        DataFrame, so code that treats it as one is unaffected.

    Raises
    ------
    ValueError
        If ``weights`` has missing, infinite or negative values, the wrong length or a misaligned index; if
        ``weights`` or ``sample_weight`` is zero for every unit of a group; for an unknown option; when
        ``estimand``, ``treated`` or ``missing`` conflicts with the fitted estimator's; and for the problems
        :func:`balance._validation.check_treatment` and ``check_sample_weight`` report.
    TypeError
        If ``weights`` is an estimator that has not been fitted.

    Warns
    -----
    RuntimeWarning
        When a covariate's SD is zero but its groups differ, so that its SMD is ±inf; when a covariate is
        missing for every unit of positive weight in a group (its statistics are then NaN).

    Notes
    -----
    Conventions of cobalt 4.6.1 (``bal.tab`` for a binary treatment), reproduced to 1e-12 on the lalonde
    reference (up to the rounding-noise rule at the end of this list); each comparison of a multi-category
    treatment is such a binary table of its two groups, except that the SMD's SD is the same for every
    comparison (``sd_denom``) and the "All" group of ``pairwise=False`` is the full sample with its sampling weights
    only (reproduced to the same precision on the lalonde three-level reference, WeightIt 1.5.1 / cobalt 4.6.1):

    - **SMD** :math:`= (\\bar x_{w,T} - \\bar x_{w,C}) / s`, the difference of the weighted group means divided by
      an SD :math:`s` computed **without** the balancing weights (only ``sample_weight``), so that weighting
      cannot move the yardstick (Austin & Stuart 2015). Unadjusted columns use the same formula with
      ``sample_weight`` alone.
    - **Binary covariates** are the columns with exactly two distinct values, every categorical level indicator
      and boolean columns. A two-valued column is coded 1 for values other than its reference value (0 if
      present, else the smaller value), so 0/1 columns keep their meaning. By default (``binary="raw"``) they
      show the raw difference in proportions; ``binary="std"`` divides it by :math:`\\sqrt{p(1-p)}` per the
      chosen ``sd_denom``.
    - **Variances.** Continuous: the n − 1 ("reliability weights") form; with :math:`v = w / \\sum w`,
      :math:`s^2_w = \\sum v (x - \\bar x_w)^2 / (1 - \\sum v^2)`, the usual sample variance when the weights are
      equal. Binary: :math:`p(1-p)` with :math:`p` the (weighted) proportion.
    - **Variance ratio** :math:`s^2_T / s^2_C`, weighted in ``vratio_adj``; continuous rows and distances only.
    - **KS**: :math:`\\max_x |F_{w,T}(x) - F_{w,C}(x)|`, the weighted empirical CDFs of the two groups evaluated
      at every distinct pooled value (ties between or within groups are passed together); for a binary row it
      equals the absolute difference in proportions.
    - Multiplying one group's weights by a constant changes none of these statistics.

    **Overlapping coefficient** (``"ovl"``, Franklin et al. 2014): 1 − the area shared by the two groups' weighted
    densities, exactly as cobalt 4.6.1 computes it (reproduced to 1e-12 on the lalonde reference, every row):
    the column standardised on the whole sample, R's Gaussian ``density()`` of each group (bandwidth: cobalt's
    ``bw.nrd``, Scott's rule on the smaller group with ``bw.nrd0``'s fallbacks; 512 points, linear binning,
    FFT), linear interpolation, and R's adaptive quadrature of the minimum (a 1001-point midpoint rule where it
    fails); 1 when the groups do not overlap at all. A binary row's is its absolute difference in proportions.
    The quadrature is cobalt's, so its error is too: on heavy-tailed columns (squares and products of earnings)
    it reaches a few hundredths of the exact area under the same densities.

    **Rows as cobalt shows them.** A categorical column with two levels is one row, its second level (named
    ``<column>_<level>``, e.g. ``sex_Male``; cobalt's ``splitfactor(drop.first = "if2")``); three or more
    levels give one row each.

    One deliberate difference: cobalt leaves a mean difference below :math:`\\sqrt{\\epsilon_{mach}} \\approx 1.5
    \\times 10^{-8}` in absolute value unstandardised (its ``check_if_zero``). That cut-off is in the covariate's
    units, so it could leave a real difference of a finely measured covariate unstandardised; here the
    difference is always standardised. The two agree to within 1e-10 wherever cobalt's rule applies, because the
    differences concerned are rounding errors of exact balance (e.g. entropy balancing).

    Degenerate cases, never silent: a column constant within the units that define the SD has SD 0; its SMD is
    0 when the group means are equal (a constant covariate always gives 0, with the row kept) and ±inf with a
    RuntimeWarning otherwise. A variance ratio with a zero control variance is inf (NaN when both are 0); a
    group where one unit carries all the weight has an undefined (NaN) continuous variance, hence a NaN
    variance ratio.

    **Continuous treatment** (cobalt's ``bal.tab`` with ``stats = c("cor", "sp")``, reproduced to 1e-15 on
    WeightIt 1.5.1's lalonde example for six methods, up to R's rounding noise, below 2e-8, in correlations that
    exact balancing makes zero): the correlation of covariate :math:`x` with treatment
    :math:`A` is :math:`\\mathrm{cov}_w(x, A) / (s_x s_A)`, with the weighted covariance in the n − 1 form,
    :math:`\\sum v (x - \\bar x_v)(A - \\bar A_v) / (1 - \\sum v^2)`, and the SDs :math:`s_x, s_A` of the
    **unweighted** full sample (``sample_weight`` only; :math:`\\sqrt{p(1-p)}` for a binary row), so that the
    unadjusted correlation is Pearson's for a continuous row and the adjusted one is on the same yardstick.
    ``spearman_*`` is the same statistic on the average ranks of :math:`A` and of each non-binary row (ranked on
    the whole sample, or on the units where the row is observed); a binary row stays 0/1. Factors are split into
    one row per level, all shown. A row constant in the unweighted sample has correlation 0.

    **Missing values** (``missing="indicator"``): each statistic of a covariate uses the units where it is
    observed, with their weights (each group's weights renormalised over them), its SD as well; this is cobalt's
    ``na.rm = TRUE``. One difference: cobalt 4.6.1's KS statistic of a continuous covariate with missing values
    pairs the remaining values with the weights of the wrong units (``col_w_ks`` drops the NAs from the values but
    not from the weights), so its KS for such rows is not reproduced; here it is the KS of the observed values.

    **Dask input** (issue 18): the same table from two passes over the blocks, with memory flat in the number
    of rows. Per block and group the weighted moments (count, sums of the weights and their squares, the mean
    and the sum of squared deviations about it) are merged exactly in a tree (Chan, Golub & LeVeque 1983), so
    SMDs, variance ratios, means, SDs and effective sample sizes equal the in-memory ones to rounding. The KS
    statistic of a binary row is exact; that of a continuous row comes from weighted histograms on bins whose
    edges are quantiles of a mergeable sketch (2048 bins): the table shows the largest ECDF gap at the edges, a
    value the exact statistic attains, and the attribute ``ks_error`` how much larger the exact one can be (0 for a
    row with fewer distinct values than bins; stated in the printed report). Not available on dask input:
    missing covariate values, text columns (make them categorical), ``distance``, ``interactions``, ``poly``,
    ``by``, ``stats="ovl"`` and continuous treatments.

    **Floating point.** Every column is divided by a power of two near its largest absolute value before anything
    is squared (an exact operation), so covariates of magnitude 1e160 or 1e-200 give the same SMDs, variance
    ratios and KS statistics as covariates near 1, and ordinary columns the same bits as without it.

    References
    ----------
    Greifer, N. cobalt: Covariate Balance Tables and Plots. R package version 4.6.1, ``bal.tab()``,
    ``col_w_smd()``, ``col_w_vr()``, ``col_w_ks()``.

    Franklin, J. M., Rassen, J. A., Ackermann, D., Bartels, D. B. & Schneeweiss, S. (2014). Metrics for
    covariate balance in cohort studies of causal effects. *Statistics in Medicine*, 33(10), 1685–1699.

    Austin, P. C. & Stuart, E. A. (2015). Moving towards best practice when using inverse probability of
    treatment weighting (IPTW) using the propensity score to estimate causal treatment effects in observational
    studies. *Statistics in Medicine*, 34(28), 3661–3679.

    Examples
    --------
    >>> import pandas as pd
    >>> from balance.diagnostics import balance_table
    >>> X = pd.DataFrame({"age": [25, 32, 41, 29, 50, 38, 22],
    ...                   "group": ["a", "b", "a", "b", "b", "a", "a"]})
    >>> treat = [1, 1, 1, 0, 0, 0, 0]
    >>> w = [1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.5]
    >>> balance_table(X, treat, w, estimand="ATT").round(3)
                type  smd_un  vratio_un  ks_un  smd_adj  vratio_adj  ks_adj
    age      Contin.  -0.260       0.44  0.250    0.137       0.444   0.429
    group_b   Binary  -0.167        NaN  0.167    0.048         NaN   0.048

    A two-level factor is one row (its second level), as cobalt shows it. Powers, interactions, thresholds and
    the printed report:

    >>> X2 = X.assign(size=[1.0, 2.0, 2.5, 0.5, 1.5, 3.0, 2.0])
    >>> t2 = balance_table(X2, treat, w, estimand="ATT", stats="smd", poly=2, interactions=True,
    ...                    thresholds={"smd": 0.1})
    >>> t2.index[3:].tolist()
    ['age²', 'size²', 'age * group_a', 'age * group_b', 'age * size', 'group_a * size', 'group_b * size']
    >>> t2.tally["smd"]["count"].tolist()  # balanced, not balanced
    [5, 5]

    A multi-category treatment gives one block per comparison:

    >>> arm = ["x", "x", "y", "y", "z", "z", "z"]
    >>> table = balance_table(X[["age"]], arm, stats="smd")
    >>> table["smd_un"].round(3).to_dict()
    {('y vs. x', 'age'): 0.657, ('z vs. x', 'age'): 0.825, ('z vs. y', 'age'): 0.168}

    A continuous treatment gives its correlation with each covariate:

    >>> dose = [1.5, 0.4, 2.2, 0.9, 3.0, 1.1, 2.6]
    >>> balance_table(X, dose, w).round(3)
                type  corr_un  spearman_un  corr_adj  spearman_adj
    age      Contin.    0.347        0.214     0.033        -0.091
    group_b   Binary   -0.252       -0.312    -0.407        -0.455

    Dask input gives the same table (here two partitions of the first example's data):

    >>> import dask.dataframe as dd
    >>> data = dd.from_pandas(X.assign(group=X["group"].astype("category"), t=treat, w=w), npartitions=2)
    >>> balance_table(data[["age", "group"]], data["t"], data["w"], estimand="ATT").round(3)
                type  smd_un  vratio_un  ks_un  smd_adj  vratio_adj  ks_adj
    age      Contin.  -0.260       0.44  0.250    0.137       0.444   0.429
    group_b   Binary  -0.167        NaN  0.167    0.048         NaN   0.048
    """
    from ._imputed import balance_across_imputations, is_imputed  # here: that module builds on this function

    if (isinstance(X, list) and X and all(isinstance(x, (pd.DataFrame, np.ndarray)) and np.ndim(x) == 2 for x in X)
            and (isinstance(treatment, pd.DataFrame) or (isinstance(treatment, np.ndarray) and treatment.ndim == 2))):
        # a treatment history: per-time covariate tables and one treatment column per time point (a list of rows,
        # array-like X, has no 2-d elements; multiply imputed data has a one-dimensional treatment)
        from ..msm import balance_table_msm

        return balance_table_msm(X, treatment, weights, stats=stats, binary=binary, continuous=continuous,
                                 sample_weight=sample_weight)
    if is_imputed(X):
        return balance_across_imputations(
            X, treatment, weights, abs=abs, per_imputation=per_imputation, estimand=estimand, stats=stats,
            binary=binary, continuous=continuous, sd_denom=sd_denom, sample_weight=sample_weight, distance=distance,
            treated=treated, missing=missing, treatment_type=treatment_type, pairwise=pairwise)
    if abs or per_imputation:
        raise ValueError("abs= and per_imputation= apply to multiply imputed data (X a list of completed data sets "
                         "or a fitted ImputedEffect); leave them False for one data set.")
    _check_choice(binary, ("raw", "std"), "binary")
    _check_choice(continuous, ("raw", "std"), "continuous")
    display = _check_display(display)
    if not isinstance(interactions, (bool, np.bool_)):
        raise ValueError(f"interactions must be True or False; got {interactions!r}.")
    if isinstance(poly, bool) or not isinstance(poly, (int, np.integer)) or poly < 1:
        raise ValueError(f"poly must be a whole number of at least 1 (1: no powers); got {poly!r}.")
    fitted = resolve_weights(weights)
    if any_dask(X, treatment, fitted.weights, sample_weight, fitted.sample_weight):
        from ._dask_balance import dask_balance_table

        return dask_balance_table(X, treatment, fitted, estimand=estimand, stats=stats, binary=binary,
                                  continuous=continuous, sd_denom=sd_denom, sample_weight=sample_weight,
                                  distance=distance, treated=treated, missing=missing, treatment_type=treatment_type,
                                  pairwise=pairwise, interactions=interactions, poly=poly, display=display,
                                  thresholds=thresholds, by=by)
    if by is not None:
        return _balance_by(X, treatment, fitted, by, dict(
            estimand=estimand, stats=stats, binary=binary, continuous=continuous, sd_denom=sd_denom,
            sample_weight=sample_weight, distance=distance, treated=treated, missing=missing,
            treatment_type=treatment_type, pairwise=pairwise, interactions=interactions, poly=poly,
            display=display, thresholds=thresholds))
    design = CovariateDesign.from_data(X, missing=inherit("missing", missing, fitted.missing) or "error")
    covariates, cov_names = design.transform(X, drop_first=False, impute=False)
    n = covariates.shape[0]
    index = X.index if isinstance(X, pd.DataFrame) else None
    check_indexes_agree(X=index, treatment=treatment, weights=fitted.weights, sample_weight=sample_weight)
    t = check_treatment(treatment, treated=inherit("treated", treated, fitted.treated), n_samples=n, index=index,
                        treatment_type=inherit_treatment_type(treatment_type, fitted))
    stats, thresholds, sd_denom = check_table_options(t, fitted, estimand, stats, thresholds, sd_denom)
    # a continuous treatment has one group, the whole sample, for the weight checks
    (group_codes, groups), codes = (weight_groups(t) if t.kind == "continuous" else (t.a, group_names(t))), t.a
    if fitted.sample_weight is not None:  # the fitted weighter's sampling weights, as cobalt uses a weightit's
        if sample_weight is None:
            sample_weight = fitted.sample_weight
        elif not np.array_equal(np.asarray(sample_weight, dtype=float), np.asarray(fitted.sample_weight)):
            raise ValueError("sample_weight differs from the sampling weights the weighter was fitted with; drop "
                             "sample_weight= to use the weighter's, or refit the weighter with these.")
    sw = check_sample_weight(sample_weight, n, index=index)
    check_groups_weighted(sw, group_codes, "sample_weight", labels=groups)
    runs = {"un": sw}
    if fitted.weights is not None:
        runs["adj"] = check_weights(fitted.weights, n, index=t.index)
        check_groups_weighted(runs["adj"], group_codes, labels=groups)

    distance = _fitted_distance(distance, fitted, t)
    dist, dist_names = _check_distance(distance, n, t.index)
    covariates, cov_names, flags = balance_terms(covariates, cov_names, design.indicator_flags(drop_first=False),
                                                 design, interactions=interactions, poly=poly)
    names = dist_names + cov_names
    if len(set(names)) != len(names):
        raise ValueError(f"distance names {dist_names} clash with the covariate names {cov_names}; rename them.")
    options = (stats, sd_denom, binary, continuous, t.focal is None if pairwise is None else pairwise, display)
    incomplete = np.isnan(covariates).any(axis=0)
    complete = np.flatnonzero(~incomplete)
    binary_rows, blocks = _block(dist, covariates[:, complete], flags[complete], t, codes, runs, options)
    positions = np.r_[np.arange(len(dist_names)), len(dist_names) + complete]
    is_binary = np.zeros(len(names), dtype=bool)
    is_binary[positions] = binary_rows
    columns = {name: {key: np.full(len(names), np.nan) for key in values} for name, values in blocks.items()}
    for name, values in blocks.items():
        for key, column in values.items():
            columns[name][key][positions] = column
    unsummarised = []
    for j in np.flatnonzero(incomplete):  # statistics over the observed values only, as cobalt's na.rm = TRUE
        row = len(dist_names) + j
        binary_row, observed = _observed_block(covariates[:, j], flags[j:j + 1], t, codes, runs, options)
        is_binary[row] = binary_row[0]
        if observed is None:
            unsummarised.append(names[row])
            continue
        for name, values in observed.items():
            for key, column in values.items():
                columns[name][key][row] = column[0]
    if unsummarised:
        warnings.warn(f"covariate(s) {unsummarised} are missing for every unit of positive weight in a treatment "
                      "group, so their statistics are NaN; their <NA> rows show the missingness.", RuntimeWarning,
                      stacklevel=2)

    return assemble_table(names, len(dist_names), is_binary, columns, list(runs), stats, t, thresholds,
                          ess_table(runs, group_codes, [str(g) for g in groups]))


def assemble_table(names, n_distances, is_binary, columns, suffixes, stats, t, thresholds, ess, ks_error=None):
    """The :class:`BalanceTable` from the statistics' columns (``{comparison: {column name: values}}``, one value
    per row of ``names``, distances first): row types, comparisons in level order, thresholds and the report
    attributes."""
    types = ["Distance"] * n_distances + ["Binary" if b else "Contin." for b in is_binary[n_distances:]]
    tables = {name: pd.DataFrame({"type": types, **values}, index=pd.Index(names)) for name, values in columns.items()}
    if None in tables:  # one comparison (binary) or none (continuous): a plain table
        table = tables[None]
    else:  # the comparisons' display columns differ (each shows its two groups): put them in level order
        table = pd.concat(tables, names=["comparison", "variable"])
        table = table[_column_order(table.columns, suffixes, stats, ["All", *map(str, t.levels)])]
    if "smd" in stats:
        _warn_infinite(table)
    table, tally, largest = add_thresholds(table, thresholds)
    return BalanceTable.build(table, thresholds=thresholds, tally=tally, max_imbalance=largest, ess=ess,
                              ks_error=ks_error)


def check_table_options(t, fitted, estimand, stats, thresholds, sd_denom):
    """``(stats, thresholds, sd_denom)`` checked against the treatment ``t`` and the fitted weighter's estimand
    (``fitted``, a :class:`._weights.Resolved`): the statistics in cobalt's order (a threshold brings its
    statistic) and the SD denominator (by estimand when None)."""
    stats = _check_stats(stats, t.kind)
    thresholds = check_thresholds(thresholds, CONTINUOUS_STATS if t.kind == "continuous" else GROUP_STATS)
    stats = [s for s in (CONTINUOUS_STATS if t.kind == "continuous" else GROUP_STATS)
             if s in stats or s in thresholds]  # a threshold brings its statistic, as in cobalt
    estimand = inherit("estimand", None if estimand is None else check_estimand(estimand), fitted.estimand)
    estimand = check_estimand_for(estimand or "ATE", t, ESTIMANDS_BY_TYPE[t.kind], "balance_table")
    if sd_denom is None:
        sd_denom = "all" if t.kind == "continuous" else _DEFAULT_SD_DENOM.get(estimand, "pooled")
    _check_choice(sd_denom, {"binary": SD_DENOMS, "continuous": ("all",)}.get(t.kind, ("treated", "pooled", "all")),
                  "sd_denom")
    if sd_denom == "treated" and t.focal is None:
        raise ValueError("sd_denom='treated' with a multi-category treatment needs the focal level: pass "
                         "treated=<level>.")
    return stats, thresholds, sd_denom


def _column_order(columns, suffixes, stats, groups):
    """``columns`` in the table's order: per sample, each group's display columns, then the statistics."""
    order = ["type"]
    for suffix in suffixes:
        order += [f"{key}_{group}_{suffix}" for group in groups for key in ("mean", "sd")]
        order += [f"{stat}_{suffix}" for stat in stats]
    return [column for column in order if column in columns]


def _fitted_distance(distance, fitted, t):
    """``distance``, with ``"prop.score"`` replaced by the fitted weighter's propensity score (cobalt's
    ``prop.score`` row of a weightit); ``t`` (when known) must be binary."""
    if not (isinstance(distance, str) and distance == "prop.score"):
        return distance
    if fitted.ps is None or np.ndim(fitted.ps) != 1 or (t is not None and t.kind != "binary"):
        raise ValueError("distance='prop.score' needs weights that are a fitted propensity-score weighter of a "
                         "binary treatment (with ps_); pass the scores themselves as distance= otherwise.")
    return {"prop.score": fitted.ps}


def _check_display(display):
    display = (display,) if isinstance(display, str) else tuple(display or ())
    for item in display:
        _check_choice(item, DISPLAY, "display")
    return display


def _rows(values, mask):
    """``values`` (array-like, Series, dict of them or None) restricted to the rows of ``mask``."""
    if values is None:
        return None
    if isinstance(values, dict):
        return {key: _rows(v, mask) for key, v in values.items()}
    if isinstance(values, (pd.Series, pd.DataFrame)):
        return values.iloc[mask]
    return np.asarray(values)[mask]


def _balance_by(X, treatment, fitted, by, options):
    """One balance table per subgroup of ``by``, stacked under a MultiIndex level ``subgroup``, with the largest
    imbalance of each row over the subgroups as ``across_subgroups`` (cobalt's
    ``Balance.Across.Subclass``)."""
    n = len(X)
    if isinstance(by, str) and isinstance(X, pd.DataFrame) and by in X.columns:
        by_values, X = X[by], X.drop(columns=by)
    else:
        by_values, _ = as_1d(by, "by")
        if by_values.shape[0] != n:
            raise ValueError(f"by has {by_values.shape[0]} entries but X has {n} rows.")
        check_indexes_agree(X=X.index if isinstance(X, pd.DataFrame) else None, by=by)
    by_values = by_values.reset_index(drop=True) if isinstance(by_values, pd.Series) else pd.Series(by_values)
    if by_values.isna().any():
        raise ValueError("by has missing values; give every unit a subgroup (or drop those units).")
    if isinstance(by_values.dtype, pd.CategoricalDtype):
        levels = [level for level in by_values.cat.categories if (by_values == level).any()]
    else:
        levels = list(pd.unique(by_values))
        try:
            levels.sort()
        except TypeError:  # labels of mixed types: order them as text
            levels.sort(key=str)
    # the fitted weighter's settings, passed on explicitly with its weights restricted to each subgroup
    options["estimand"] = None if options["estimand"] is None else check_estimand(options["estimand"])
    settings = {name: inherit(name, options[name], getattr(fitted, name)) for name in ("estimand", "treated", "missing")}
    settings["treatment_type"] = inherit_treatment_type(options["treatment_type"], fitted)
    sample_weight = options["sample_weight"] if options["sample_weight"] is not None else fitted.sample_weight
    distance = options["distance"]
    if isinstance(distance, str) and distance == "prop.score":
        distance = _fitted_distance(distance, fitted, None)
    tables = {}
    for level in levels:
        mask = (by_values == level).to_numpy()
        X_level = X.iloc[mask] if isinstance(X, pd.DataFrame) else np.asarray(X)[mask]
        tables[level] = balance_table(
            X_level, _rows(treatment, mask), _rows(fitted.weights, mask),
            **{**options, **settings, "sample_weight": _rows(sample_weight, mask), "distance": _rows(distance, mask)})
    inner = list(tables.values())[0].index.names
    table = pd.concat({level: pd.DataFrame(table) for level, table in tables.items()},
                      names=["subgroup", *[name or "variable" for name in inner]])
    thresholds = tables[levels[0]].thresholds
    return BalanceTable.build(
        table, thresholds=thresholds,
        tally={stat: pd.concat({level: t.tally[stat]["count"] for level, t in tables.items()}, axis=1)
               for stat in thresholds},
        max_imbalance={stat: pd.concat({level: t.max_imbalance[stat] for level, t in tables.items()
                                        if stat in t.max_imbalance}, names=["subgroup", None]).reset_index(level=0)
                       for stat in thresholds},
        ess=pd.concat({level: t.ess for level, t in tables.items()}, names=["subgroup", None]),
        across_subgroups=_max_over(table.drop(columns=[c for c in table.columns if c.endswith("_threshold")]),
                                   [name for name in table.index.names if name != "subgroup"]))


def max_over_comparisons(table):
    """The largest imbalance of every row over the comparisons of a multi-category balance table (cobalt's
    "Balance summary across all treatment pairs").

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`balance_table` of a multi-category treatment (index levels ``comparison`` and ``variable``).

    Returns
    -------
    pandas.DataFrame
        One row per variable (in the table's order) with its ``type`` and, per statistic column of ``table``, the
        maximum over comparisons of ``|smd|``, of ``max(vratio, 1 / vratio)`` and of ``ks`` (NaN where every
        comparison is NaN, e.g. the variance ratio of a binary row).

    Examples
    --------
    >>> import pandas as pd
    >>> from balance.diagnostics import balance_table, max_over_comparisons
    >>> X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 2.0, 6.0, 1.0, 5.0, 3.0]})
    >>> arm = pd.Series(["a", "a", "a", "b", "b", "b", "c", "c", "c"])
    >>> max_over_comparisons(balance_table(X, arm, stats="smd"))
          type    smd_un
    x  Contin.  1.154701
    """
    if not isinstance(table.index, pd.MultiIndex) or list(table.index.names) != ["comparison", "variable"]:
        raise ValueError("table must be a balance_table of a multi-category treatment (index levels 'comparison' "
                         "and 'variable').")
    return _max_over(table, ["variable"])


def _max_over(table, keys):
    """Per distinct value of the index levels ``keys`` (in the table's order): its ``type`` and, per statistic
    column, the largest imbalance over the other index levels (``|smd|``, ``max(vratio, 1 / vratio)``, ``ks``,
    ``ovl``, ``|corr|``, ``|spearman|``)."""
    groups = [table.index.get_level_values(key) for key in keys]
    order = pd.unique(pd.MultiIndex.from_arrays(groups) if len(keys) > 1 else groups[0])
    out = {"type": table["type"].groupby(groups, sort=False).first()}
    for column in table.columns:
        stat = column.rsplit("_", 1)[0]
        if stat not in GROUP_STATS + CONTINUOUS_STATS:
            continue
        values = table[column].to_numpy(dtype=float)
        if stat == "vratio":
            with np.errstate(divide="ignore"):
                values = np.fmax(values, 1.0 / values)
        elif stat != "ks" and stat != "ovl":
            values = np.abs(values)
        out[column] = pd.Series(values, index=table.index).groupby(groups, sort=False).max()
    return pd.DataFrame(out).loc[order].rename_axis(None if len(keys) == 1 else keys)
