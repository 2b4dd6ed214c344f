"""Covariate balance tables for a binary treatment, reproducing R cobalt 4.6.1's ``bal.tab()``.

:func:`balance_table` reports, per covariate, the standardised mean difference (SMD; Austin & Stuart 2015), the
variance ratio and the Kolmogorov–Smirnov statistic, before and after weighting, with cobalt's conventions: the
SMD's standard deviation always comes from the unweighted sample, binary covariates show the raw difference in
proportions by default, variances use the n − 1 ("reliability weights") form.

References: Greifer, N. cobalt: Covariate Balance Tables and Plots, R package version 4.6.1; Austin, P. C. &
Stuart, E. A. (2015), Statistics in Medicine 34(28):3661–3679.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._validation import (CovariateDesign, as_1d, check_estimand, check_indexes_agree, check_sample_weight,
                           check_treatment, check_weights)
from ._weights import check_groups_weighted, resolve_weights

STATS = ("smd", "vratio", "ks")
SD_DENOMS = ("treated", "control", "pooled", "all")
_DEFAULT_SD_DENOM = {"ATT": "treated", "ATC": "control"}  # every other estimand: "pooled"


# --------------------------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------------------------
def _check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {list(choices)}.")
    return value


def _check_stats(stats):
    stats = (stats,) if isinstance(stats, str) else tuple(stats)
    for s in stats:
        _check_choice(s, STATS, "stats")
    if not stats:
        raise ValueError(f"stats is empty; choose one or more of {list(STATS)}.")
    return [s for s in STATS if s in stats]  # cobalt's column order, whatever order was asked


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
    """The table's rows as matrix columns (binary ones coded 0/1), each sorted once for binary detection and KS."""

    values: np.ndarray  # (n_samples, n_rows)
    order: np.ndarray  # (n_samples, n_rows): argsort of each column
    binary: np.ndarray  # (n_rows,) bool


def _build_columns(dist, covariates, level_flags):
    """Stack distances and covariates, flag binary covariates and recode two-valued ones to 0/1.

    A covariate is binary when it has exactly two distinct values or is a level indicator / boolean. The
    reference value of a two-valued column is 0 when present, else the smaller value (cobalt's ``binarize``), so
    0/1 columns are left as they are. Distances are never binary.
    """
    # column-major: every later step works a column at a time
    raw = np.asfortranarray(np.column_stack([dist, covariates]))
    # tie order is irrelevant (the ECDFs are read only at the end of each run of ties), so no stable sort
    order = np.argsort(raw, axis=0)
    ordered = np.take_along_axis(raw, order, axis=0)
    n_distinct = 1 + np.count_nonzero(np.diff(ordered, axis=0), axis=0)
    is_covariate = np.arange(raw.shape[1]) >= dist.shape[1]
    two_valued = is_covariate & (n_distinct == 2)
    reference = np.where((raw == 0).any(axis=0), 0.0, ordered[0])
    values = np.where(two_valued, (raw != reference).astype(np.float64), raw)
    binary = two_valued | np.concatenate([np.zeros(dist.shape[1], dtype=bool), level_flags])
    return _Columns(values=values, order=order, binary=binary)


# --------------------------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------------------------
def _moments(matrix, w, binary):
    """Weighted mean and variance of every column over the units with ``w > 0``.

    Continuous columns: n − 1 ("reliability weights") variance sum(v (x − m)^2) / (1 − sum(v^2)) with
    v = w / sum(w); binary columns: p (1 − p). A column that is constant within the units gets its exact value
    as mean and a variance of exactly 0, so that rounding in the weighted sums cannot turn 0/0 into a number.
    """
    pos = w > 0
    rows, v = matrix[pos], w[pos] / w[pos].sum()
    constant = rows.min(axis=0) == rows.max(axis=0)
    mean = np.where(constant, rows[0], v @ rows)
    correction = 1.0 - v @ v  # 0 when one unit carries all the weight: the variance is then undefined
    spread = v @ (rows - mean) ** 2 / correction if correction > 0 else np.full(mean.shape, np.nan)
    var = np.where(binary, mean * (1.0 - mean), spread)
    return mean, np.where(constant, 0.0, var)


def _ks_column(x, order, signed_w):
    """Largest |weighted ECDF_T − weighted ECDF_C|, read after the last unit of each run of tied values.

    The largest value is skipped: both ECDFs are 1 there, and the cumulative sum would only show rounding.
    """
    x_sorted = x[order]
    ends = x_sorted[1:] != x_sorted[:-1]
    gaps = np.abs(np.cumsum(signed_w[order])[:-1][ends])
    return float(gaps.max()) if gaps.size else 0.0


def _ks(cols, a, w, diff):
    signed = np.where(a == 1, w / w[a == 1].sum(), -w / w[a == 0].sum())
    ks = np.abs(diff)  # for a binary column the KS statistic is the difference in proportions
    for j in np.flatnonzero(~cols.binary):
        ks[j] = _ks_column(cols.values[:, j], cols.order[:, j], signed)
    return ks


def _sd_denominator(sd_denom, var_t, var_c, var_all):
    if sd_denom == "treated":
        return np.sqrt(var_t)
    if sd_denom == "control":
        return np.sqrt(var_c)
    if sd_denom == "pooled":
        return np.sqrt((var_t + var_c) / 2.0)
    return np.sqrt(var_all)


def _smd(diff, sd, standardise):
    """Divide by ``sd`` where asked; a zero SD gives 0 for a zero difference and ±inf otherwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(diff == 0, 0.0, diff / sd)
    return np.where(standardise, scaled, diff)


def _stats(cols, a, w, stats, sd, standardise):
    """The requested statistics for one weighting, keyed ``smd``, ``vratio``, ``ks``."""
    m_t, v_t = _moments(cols.values[a == 1], w[a == 1], cols.binary)
    m_c, v_c = _moments(cols.values[a == 0], w[a == 0], cols.binary)
    diff = m_t - m_c
    out = {}
    if "smd" in stats:
        out["smd"] = _smd(diff, sd, standardise)
    if "vratio" in stats:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["vratio"] = np.where(cols.binary, np.nan, v_t / v_c)
    if "ks" in stats:
        out["ks"] = _ks(cols, a, w, diff)
    return out


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
    stats=STATS,
    binary="raw",
    continuous="std",
    sd_denom=None,
    sample_weight=None,
    distance=None,
    treated=None,
    missing=None,
):
    """Covariate balance between treated and control units, before and after weighting (cobalt's ``bal.tab``).

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        Covariates. Categorical (category, object or string) columns are split into one indicator per level,
        named ``<column>_<level>`` (e.g. ``race_black``), all levels shown; boolean columns become 0/1.
    treatment : array-like of shape (n_samples,)
        Binary treatment: 0/1, boolean, or two levels with ``treated`` given. A Series must carry X's index.
    weights : array-like of shape (n_samples,) or fitted weighting estimator, default=None
        Analysis weights (non-negative), **sampling weights included**, as every estimator's ``weights_`` of this
        package (so they equal cobalt's ``weights * s.weights``). Any object with a ``weights_`` attribute (a
        fitted weighting estimator) is replaced by its ``weights_``, and its ``estimand`` attribute is used when
        ``estimand`` is None. A Series must carry X's index. ``None`` gives the unadjusted columns only.
    estimand : {"ATE", "ATT", "ATC", "ATO", "ATM", "ATOS"}, default=None
        Selects the default ``sd_denom``. ``None`` means the fitted estimator's ``estimand`` if ``weights`` has
        one, else ``"ATE"``. An explicit value always wins.
    stats : str or sequence of {"smd", "vratio", "ks"}, default=("smd", "vratio", "ks")
        Statistics to report; columns always come in the order smd, vratio, ks.
    binary : {"raw", "std"}, default="raw"
        ``"raw"``: binary covariates show the difference in proportions; ``"std"``: it is divided by the SD.
    continuous : {"std", "raw"}, default="std"
        ``"std"``: continuous covariates and distances show the SMD; ``"raw"``: the difference in means.
    sd_denom : {"treated", "control", "pooled", "all"}, default=None
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
        summarised like continuous covariates but are not covariates.
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean.
    missing : {"error", "indicator"}, default=None
        Missing covariate values: ``"error"`` raises; ``"indicator"`` adds a binary row ``<column>:<NA>`` per
        column with missing values (cobalt's ``var:<NA>`` rows) and summarises the observed values after median
        filling, as the weighting estimators model them. None: the fitted estimator's ``missing`` when ``weights``
        is one, else ``"error"``.

    Returns
    -------
    table : pandas.DataFrame
        One row per distance and expanded covariate, in X's column order (distances first). Column ``type`` is
        ``"Distance"``, ``"Binary"`` or ``"Contin."``; then ``smd_un``, ``vratio_un``, ``ks_un`` (those requested)
        and, when ``weights`` is given, ``smd_adj``, ``vratio_adj``, ``ks_adj``. The variance ratio of a binary
        row is NaN, as cobalt prints NA.

    Raises
    ------
    ValueError
        If ``weights`` has missing, infinite or negative values, the wrong length or a misaligned index; if
        ``weights`` or ``sample_weight`` is zero for every unit of a group; for an unknown option; and for
        the problems :func:`balance._validation.check_treatment` and ``check_sample_weight`` report.

    Warns
    -----
    RuntimeWarning
        When a covariate's SD is zero but its groups differ, so that its SMD is ±inf.

    Notes
    -----
    Conventions of cobalt 4.6.1 (``bal.tab`` for a binary treatment), reproduced to 1e-12 on the lalonde
    reference (up to the rounding-noise rule at the end of this list):

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

    One deliberate difference: cobalt leaves a mean difference below :math:`\\sqrt{\\epsilon_{mach}} \\approx 1.5
    \\times 10^{-8}` in absolute value unstandardised (its ``check_if_zero``). That cut-off is in the covariate's
    units, so it could leave a real difference of a finely measured covariate unstandardised; here the
    difference is always standardised. The two agree to within 1e-10 wherever cobalt's rule applies, because the
    differences concerned are rounding errors of exact balance (e.g. entropy balancing).

    Degenerate cases, never silent: a column constant within the units that define the SD has SD 0; its SMD is
    0 when the group means are equal (a constant covariate always gives 0, with the row kept) and ±inf with a
    RuntimeWarning otherwise. A variance ratio with a zero control variance is inf (NaN when both are 0); a
    group where one unit carries all the weight has an undefined (NaN) continuous variance.

    References
    ----------
    Greifer, N. cobalt: Covariate Balance Tables and Plots. R package version 4.6.1, ``bal.tab()``,
    ``col_w_smd()``, ``col_w_vr()``, ``col_w_ks()``.

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
    group_a   Binary   0.167        NaN  0.167   -0.048         NaN   0.048
    group_b   Binary  -0.167        NaN  0.167    0.048         NaN   0.048
    """
    stats = _check_stats(stats)
    _check_choice(binary, ("raw", "std"), "binary")
    _check_choice(continuous, ("raw", "std"), "continuous")
    weights_arg = weights
    weights, fitted_estimand = resolve_weights(weights)
    estimand = check_estimand(estimand if estimand is not None else (fitted_estimand or "ATE"))
    if sd_denom is None:
        sd_denom = _DEFAULT_SD_DENOM.get(estimand, "pooled")
    _check_choice(sd_denom, SD_DENOMS, "sd_denom")

    if missing is None:
        missing = getattr(weights_arg, "missing", "error")
    design = CovariateDesign.from_data(X, missing=missing)
    covariates, cov_names = design.transform(X, drop_first=False)
    n = covariates.shape[0]
    index = X.index if isinstance(X, pd.DataFrame) else None
    check_indexes_agree(X=index, treatment=treatment, weights=weights, sample_weight=sample_weight)
    t = check_treatment(treatment, treated=treated, n_samples=n, index=index, treatment_type="binary")
    a = t.a
    sw = check_sample_weight(sample_weight, n, index=index)
    check_groups_weighted(sw, a, "sample_weight")

    dist, dist_names = _check_distance(distance, n, t.index)
    names = dist_names + cov_names
    if len(set(names)) != len(names):
        raise ValueError(f"distance names {dist_names} clash with the covariate names {cov_names}; rename them.")
    cols = _build_columns(dist, covariates, design.indicator_flags(drop_first=False))
    types = ["Distance"] * len(dist_names) + ["Binary" if b else "Contin." for b in cols.binary[len(dist_names):]]
    standardise = np.where(cols.binary, binary == "std", continuous == "std")

    # the SD comes from the unweighted sample (sample weights only), for both the unadjusted and adjusted SMD
    _, var_t = _moments(cols.values[a == 1], sw[a == 1], cols.binary)
    _, var_c = _moments(cols.values[a == 0], sw[a == 0], cols.binary)
    _, var_all = _moments(cols.values, sw, cols.binary)
    sd = _sd_denominator(sd_denom, var_t, var_c, var_all)

    table = pd.DataFrame({"type": types}, index=pd.Index(names))
    runs = {"un": sw}
    if weights is not None:
        w = check_weights(weights, n, index=t.index)
        check_groups_weighted(w, a)
        runs["adj"] = w
    for suffix, run_w in runs.items():
        for stat, values in _stats(cols, a, run_w, stats, sd, standardise).items():
            table[f"{stat}_{suffix}"] = values
    if "smd" in stats:
        _warn_infinite(table)
    return table
