"""Summaries of a weight vector: Kish's effective sample size and WeightIt's weight summary.

The effective sample size is Kish's (1965) ``(sum w)^2 / sum w^2``; the weight summary reproduces the statistics
that R WeightIt's ``summary.weightit()`` prints (Greifer, WeightIt 1.5.1), with the formulas stated in
:func:`weight_summary`.

The weight checks shared with :func:`balance.diagnostics.balance_table` also live here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .._dask import any_dask
from .._stats import kish_ess, pow2_scale
from .._validation import check_indexes_agree, check_treatment, check_weights

GROUPS = ("control", "treated")


# --------------------------------------------------------------------------------------------------------------
# weight checks (shared with _balance.py)
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resolved:
    """What :func:`resolve_weights` found: the weights and the settings of the weighter that made them (None:
    not known, the weights were given as numbers)."""

    weights: object
    estimand: str | None = None
    treated: object = None  # the fitted treated (binary) or focal (multi-category) level
    missing: str | None = None
    treatment_type: str | None = None
    sample_weight: object = None  # the sampling weights the weighter was fitted with (None: none given)
    ps: object = None  # the weighter's propensity scores (``ps_``), if it has them


def resolve_weights(weights, name="weights"):
    """Return a :class:`Resolved`: a fitted weighter's ``weights_`` with its estimand, treated level and missing
    rule, or the weights given.

    A Pipeline is read through its last step. An estimator (or a Pipeline ending in one) that is not fitted raises
    a TypeError saying so.
    """
    given = weights
    if isinstance(weights, Pipeline):  # a pipeline ending in a weighting estimator: read its last step
        weights = weights[-1]
    if hasattr(weights, "weights_"):
        kind = getattr(weights, "treatment_type_", None)
        levels = getattr(weights, "treatment_levels_", None)
        binary = levels is not None and kind in (None, "binary")
        treated = levels[-1] if binary else getattr(weights, "treated", None)
        estimand = getattr(weights, "estimand", None)
        return Resolved(weights.weights_, None if estimand is None else str(estimand).upper(), treated,
                        getattr(weights, "missing", None), kind, getattr(weights, "sample_weight_", None),
                        getattr(weights, "ps_", None))
    if hasattr(weights, "fit"):
        raise TypeError(f"{name} is an unfitted {type(given).__name__}; fit it first, or pass its weights.")
    return Resolved(weights)


def inherit(name, explicit, fitted):
    """The setting to use: the explicit argument, else the fitted weighter's; an error when they differ."""
    if explicit is None:
        return fitted
    if fitted is not None and not (explicit is fitted or bool(np.all(explicit == fitted))):
        raise ValueError(f"{name}={explicit!r} conflicts with the fitted weighter's {name} ({fitted!r}); drop "
                         f"{name}= to use the weighter's, or refit the weighter with {name}={explicit!r}.")
    return explicit


def group_names(t):
    """Names of a treatment's groups in code order: ``control``/``treated`` for a binary treatment, else the
    level labels."""
    return list(GROUPS) if t.kind == "binary" else list(t.levels)


def inherit_treatment_type(treatment_type, fitted):
    """The treatment type to validate with: the explicit one ("auto" counts as not given), else the fitted
    weighter's (a :class:`Resolved`), else "auto"."""
    explicit = None if treatment_type in (None, "auto") else treatment_type
    return inherit("treatment_type", explicit, fitted.treatment_type) or "auto"


def check_groups_weighted(w, a, name="weights", labels=GROUPS):
    """Raise a ValueError if every unit of one treatment group (codes 0..len(labels)-1) has weight zero (its means
    are then undefined)."""
    for arm, label in enumerate(labels):
        if not np.any(w[a == arm] > 0):
            what = label if tuple(labels) == GROUPS else f"{label!r}"
            raise ValueError(f"{name} is zero for every {what} unit; that group cannot be summarised.")


def _labels(*series_indexes, n):
    """Row labels: the first pandas index available, else positions 0..n-1."""
    for idx in series_indexes:
        if idx is not None:
            return idx
    return pd.RangeIndex(n)


# --------------------------------------------------------------------------------------------------------------
# effective sample size
# --------------------------------------------------------------------------------------------------------------
# Extreme weights: a group is flagged when its Kish ESS falls below MIN_ESS (and below half its units with positive
# weight, so that a small group of equal weights is not flagged), or when one unit carries more than MAX_SHARE of
# the group's total weight (and more than twice an equal share). Calibrated by benchmarks/extreme_weights.py: with
# these thresholds the warning fired in every replicate where the bootstrap SE exceeded the M-estimation (asympt)
# SE by more than 2x, and in few of the others.
MIN_ESS = 5.0
MAX_SHARE = 0.3


class ExtremeWeightsWarning(UserWarning):
    """A few units carry most of a treatment group's weight: estimates are fragile and sandwich SEs can be too
    small (compare a bootstrap variance)."""


@dataclass(frozen=True)
class WeightConcentration:
    """Per treatment group: Kish's ESS, units with positive weight, and the largest unit's share of the weight.

    Made by :func:`check_extreme_weights`; ``flagged`` marks the groups whose weights are extreme.
    """

    ess: pd.Series
    n_positive: pd.Series
    max_share: pd.Series
    flagged: pd.Series

    @property
    def extreme(self):
        """Whether any group is flagged."""
        return bool(self.flagged.any())

    def describe(self):
        """The numbers of every group, e.g. ``"control: ESS 1.9 of 120 units, largest unit 64% of the weight"``."""
        return "; ".join(f"{g}: ESS {self.ess[g]:.1f} of {int(self.n_positive[g])} units, largest unit "
                         f"{100 * self.max_share[g]:.0f}% of the weight" for g in self.ess.index)


def weight_groups(treatment):
    """``(codes, labels)`` over which :func:`check_extreme_weights` judges a validated treatment's weights: the
    two groups of a binary treatment (``control``, ``treated``), the levels of a multi-category one, and the whole
    sample (``all``) for a continuous one."""
    if treatment.kind == "continuous":
        return np.zeros(len(treatment.codes), dtype=int), ["all"]
    labels = list(GROUPS) if treatment.kind == "binary" else [str(level) for level in treatment.levels]
    return treatment.codes, labels


def check_extreme_weights(weights, codes, labels=None, *, who=None, advice="", warn=True, stacklevel=3):
    """Measure how concentrated each group's weights are and warn (:class:`ExtremeWeightsWarning`) if extreme.

    Shared by every weighting estimator (``BaseWeighter._set_weights``), :class:`~balance.WeightedEffect` and the
    command line, so that all report the same numbers with the same thresholds.

    Parameters
    ----------
    weights : ndarray of shape (n_samples,)
        Non-negative analysis weights.
    codes : ndarray of int, shape (n_samples,)
        Treatment group codes 0..K-1 (0/1 for a binary treatment).
    labels : sequence of str, default=None
        One name per group code; ``("control", "treated")`` for two groups, else the codes.
    who : str, default=None
        Prefix of the warning (the estimator's name).
    advice : str, default=""
        Appended to the warning.
    warn : bool, default=True
        Emit the warning when a group is flagged.

    Returns
    -------
    WeightConcentration

    Examples
    --------
    >>> import numpy as np
    >>> from balance.diagnostics._weights import check_extreme_weights
    >>> codes = np.repeat([0, 1], 50)
    >>> w = np.ones(100)
    >>> check_extreme_weights(w, codes).extreme
    False
    >>> w[0] = 200.0  # one control carries 80% of the controls' weight
    >>> report = check_extreme_weights(w, codes, warn=False)
    >>> report.flagged.tolist(), round(float(report.ess["control"]), 2)
    ([True, False], 1.55)
    """
    w = np.asarray(weights, dtype=float)
    codes = np.asarray(codes)
    n_groups = int(codes.max()) + 1 if codes.size else 0
    ess, n_positive, share = [], [], []
    for k in range(n_groups):
        wk = w[codes == k]
        total = wk.sum()
        ess.append(kish_ess(wk) if total > 0 else 0.0)
        n_positive.append(int(np.sum(wk > 0)))
        share.append(wk.max() / total if total > 0 else np.nan)
    return _concentration_report(ess, n_positive, share, labels, who, advice, warn, stacklevel + 1)


def concentration_sums(weights, codes, n_groups=2):
    """Per-block sums behind :func:`concentration_from_sums` (a block evaluator, see :mod:`balance._blocks`): per
    group the sums of the weights and of their squares divided by a power of two near the group's largest weight in
    the block (``cat_``: one row per block, merged exactly in :func:`concentration_from_sums`, so that no square
    overflows or underflows, as :func:`balance._stats.kish_ess` in memory), the largest weight and the number of
    positive weights."""
    scale, s1, s2 = np.zeros(n_groups), np.zeros(n_groups), np.zeros(n_groups)
    for k in range(n_groups):
        wk = weights[codes == k]
        if np.any(wk != 0):  # else scale 0: a block without the group's weights does not set the common scale
            scale[k] = pow2_scale(wk, axis=None)
            scaled = wk / scale[k]
            s1[k], s2[k] = scaled.sum(), scaled @ scaled
    return {"cat_scale": scale[None], "cat_s1": s1[None], "cat_s2": s2[None],
            "max_w": np.array([weights[codes == k].max(initial=0.0) for k in range(n_groups)]),
            "n_pos": np.bincount(codes[weights > 0], minlength=n_groups)}


def concentration_from_sums(sums, labels=None, *, who=None, advice="", warn=True, stacklevel=3):
    """:func:`check_extreme_weights` from the per-group sums of :func:`concentration_sums` (dask input)."""
    scale = sums["cat_scale"].max(axis=0)  # per group; each block's sums rescaled to it exactly (powers of two)
    scale = np.where(scale > 0, scale, 1.0)
    factor = sums["cat_scale"] / scale
    total, square = (sums["cat_s1"] * factor).sum(axis=0), (sums["cat_s2"] * factor**2).sum(axis=0)
    positive = total > 0
    ess = np.where(positive, total ** 2 / np.where(positive, square, 1.0), 0.0)
    share = np.where(positive, sums["max_w"] / scale / np.where(positive, total, 1.0), np.nan)
    return _concentration_report(list(ess), list(sums["n_pos"]), list(share), labels, who, advice, warn,
                                 stacklevel + 1)


def _concentration_report(ess, n_positive, share, labels, who, advice, warn, stacklevel):
    if labels is None:
        labels = list(GROUPS) if len(ess) == 2 else [str(k) for k in range(len(ess))]
    ess, n_positive, share = (pd.Series(v, index=list(labels), dtype=float) for v in (ess, n_positive, share))
    flagged = ((ess < MIN_ESS) & (ess < n_positive / 2)) | ((share > MAX_SHARE) & (share > 2 / n_positive))
    report = WeightConcentration(ess=ess, n_positive=n_positive, max_share=share, flagged=flagged | (ess == 0))
    if warn and report.extreme:
        prefix = f"{who}: " if who else ""
        warnings.warn(
            f"{prefix}extreme weights of {', '.join(ess.index[report.flagged])} ({report.describe()}): a few units "
            "carry most of the weight, so estimates rest on them and sandwich (asympt, HC0) standard errors can be "
            f"far too small. {advice}".rstrip(), ExtremeWeightsWarning, stacklevel=stacklevel,
        )
    return report


def effective_sample_size(weights, treatment=None, *, treated=None, treatment_type=None):
    """Kish's effective sample size of a weight vector, per treatment group.

    Parameters
    ----------
    weights : array-like of shape (n_samples,) or fitted weighting estimator
        Non-negative analysis weights, sampling weights included (as every estimator's ``weights_``; WeightIt's
        ``ESS()`` of ``weights * s.weights``). A fitted weighting estimator (or a Pipeline ending in one) is
        replaced by its ``weights_``, and its treated level is used. Dask weights (with a dask ``treatment`` of
        the same partitions, or none) are summed block by block in one pass, with memory flat in the number of rows.
    treatment : array-like of shape (n_samples,), default=None
        Binary treatment, coded as in :func:`balance._treatment.check_treatment` (0/1, boolean, or any two levels
        with ``treated`` given), a multi-category one (one ESS per level), or a continuous one (one ESS, of the
        whole sample, labelled ``all``). ``None`` pools all units.
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean. None: the fitted estimator's treated level
        when ``weights`` is one; a different explicit level is an error.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default=None
        As the weighters' parameter (needed for integer codes of more than two levels). None: the fitted
        estimator's type when ``weights`` is one, else "auto".

    Returns
    -------
    ess : pandas.Series or float
        With a treatment, a Series indexed ``["control", "treated"]`` (binary), by the levels (multi-category) or
        ``["all"]`` (continuous); without one, a single float.

    Raises
    ------
    ValueError
        If ``weights`` has missing, infinite or negative values, the wrong length, an index that differs from
        ``treatment``'s, or is zero for a whole group; if ``treated`` conflicts with the fitted estimator's.
    TypeError
        If ``weights`` is an estimator that has not been fitted.

    Notes
    -----
    Kish (1965):

    .. math:: \\mathrm{ESS} = (\\textstyle\\sum_i w_i)^2 / \\sum_i w_i^2,

    computed within each group. It equals the group size for equal weights and does not change when a group's
    weights are multiplied by a constant, so it does not depend on the weight scale of the method (see the
    package conventions). This is the ``ESS()`` of R WeightIt and the "Effective sample sizes" of cobalt.

    References
    ----------
    Kish, L. (1965). *Survey Sampling*. New York: Wiley.

    Examples
    --------
    >>> from balance.diagnostics import effective_sample_size
    >>> effective_sample_size([1, 1, 1, 1, 2, 2], [1, 1, 0, 0, 0, 0])
    control    3.6
    treated    2.0
    dtype: float64
    >>> effective_sample_size([1, 1, 2, 2])
    3.6
    """
    if any_dask(resolve_weights(weights).weights, treatment):
        from ._dask_balance import dask_effective_sample_size

        return dask_effective_sample_size(weights, treatment, treated, treatment_type)
    if treatment is None:
        w = check_weights(resolve_weights(weights).weights)
        if not np.any(w > 0):
            raise ValueError("weights is zero for every unit.")
        return kish_ess(w)
    w, a, groups, _ = _weights_by_group(weights, treatment, treated, treatment_type)
    return pd.Series([kish_ess(w[a == k]) for k in range(len(groups))], index=groups)


def _weights_by_group(weights, treatment, treated, treatment_type):
    """Validate weights against a treatment: return ``(w, a, groups, labels)`` with ``a`` the group codes,
    ``groups`` their names (a continuous treatment has one group, ``all``) and ``labels`` the row labels."""
    fitted = resolve_weights(weights)
    weights = fitted.weights
    check_indexes_agree(treatment=treatment, weights=weights)
    t = check_treatment(treatment, treated=inherit("treated", treated, fitted.treated),
                        treatment_type=inherit_treatment_type(treatment_type, fitted))
    w_index = weights.index if isinstance(weights, pd.Series) else None
    w = check_weights(weights, t.a.shape[0])
    a, groups = (t.a, group_names(t)) if t.is_categorical else weight_groups(t)  # continuous: one group, "all"
    check_groups_weighted(w, a, labels=groups)
    return w, a, groups, _labels(t.index, w_index, n=t.a.shape[0])


# --------------------------------------------------------------------------------------------------------------
# weight summary
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightSummary:
    """Result of :func:`weight_summary`.

    Attributes
    ----------
    table : pandas.DataFrame
        One column per group (``control``, ``treated``, or the levels of a multi-category treatment); rows ``n``,
        ``min``, ``max``, ``sum``, ``mean``, ``cv``, ``scaled_mad``, ``neg_entropy``, ``n_zeros``, ``ess``.
    top : dict of str to pandas.Series
        Per group, the largest weights (largest first), indexed by row label.

    Examples
    --------
    >>> from balance import PropensityWeights, weight_summary
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> pw = PropensityWeights(estimand="ATT").fit(data.X, data.treatment)
    >>> summary = weight_summary(pw.weights_, data.treatment)
    >>> round(float(summary.table.loc["ess", "control"]), 2)
    99.82
    """

    table: pd.DataFrame
    top: dict

    def __str__(self):
        lines = ["Weight summary", "", self.table.to_string(float_format=lambda v: f"{v:.4g}"), ""]
        for group, top in self.top.items():
            pairs = ", ".join(f"{label}: {value:.4g}" for label, value in top.items())
            lines.append(f"largest {group} weights: {pairs}")
        return "\n".join(lines)


def _group_stats(w):
    ws = w / pow2_scale(w, axis=None)  # an exact rescaling: the scale-free statistics cannot overflow
    mean, mean_s = w.mean(), ws.mean()
    positive = ws[ws > 0]
    scaled = positive / positive.mean()
    return {
        "n": float(w.size),
        "min": w[w > 0].min(),
        "max": w.max(),
        "sum": w.sum(),
        "mean": mean,
        "cv": ws.std(ddof=1) / mean_s if w.size > 1 else np.nan,
        "scaled_mad": np.mean(np.abs(ws - mean_s)) / mean_s,
        "neg_entropy": np.mean(scaled * np.log(scaled)),
        "n_zeros": float(np.sum(w == 0)),
        "ess": kish_ess(w),
    }


def weight_summary(weights, treatment, *, treated=None, treatment_type=None, n_top=5):
    """Summarise weights per treatment group, as R WeightIt's ``summary()`` does.

    Parameters
    ----------
    weights : array-like of shape (n_samples,) or fitted weighting estimator
        Non-negative analysis weights, sampling weights included (as every estimator's ``weights_``, and as
        WeightIt summarises ``weights * s.weights``), or a fitted weighting estimator (its ``weights_`` and its
        treated level are used). A Series gives the row labels of the largest weights. Dask weights and
        treatment (same partitions) are summarised block by block in two passes (the deviations need the means),
        with memory flat in the number of rows; the largest weights keep their labels.
    treatment : array-like of shape (n_samples,)
        Binary treatment (0/1, boolean, or two levels with ``treated`` given), a multi-category one (one
        column per level) or a continuous one (one column, ``all``: the whole sample, as WeightIt summarises a
        continuous treatment's weights). A Series must carry the same index as a Series ``weights``.
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean. None: the fitted estimator's treated level
        when ``weights`` is one; a different explicit level is an error.
    treatment_type : {"auto", "binary", "multi-category"}, default=None
        As in :func:`effective_sample_size`.
    n_top : int, default=5
        How many of the largest weights to list per group.

    Returns
    -------
    WeightSummary
        ``table``: a DataFrame with columns ``control`` and ``treated`` and the rows below; ``top``: per group the
        ``n_top`` largest weights, largest first, indexed by row label (the Series index of ``treatment`` or
        ``weights``, else the row position). ``str()`` gives a printable report.

    Raises
    ------
    ValueError
        If ``weights`` has missing, infinite or negative values, the wrong length, a misaligned index, or is zero
        for a whole group.

    Notes
    -----
    For the weights :math:`w_1, \\dots, w_n` of one group, with mean :math:`\\bar w`:

    - ``n``: the group size; ``sum``, ``mean``: of all the group's weights;
    - ``min``, ``max``: over the **non-zero** weights (as WeightIt's weight range; zeros are counted in
      ``n_zeros``, which counts weights exactly equal to 0);
    - ``cv``, coefficient of variation: :math:`s / \\bar w` with the sample standard deviation
      :math:`s = \\sqrt{\\sum_i (w_i - \\bar w)^2 / (n - 1)}` (the **n − 1** form; it reproduces WeightIt 1.5.1's
      values to 1e-14 on the lalonde reference, while the n form is 0.12 % off); NaN for a group of one unit;
    - ``scaled_mad``, scaled mean absolute deviation: :math:`\\frac{1}{n}\\sum_i |w_i - \\bar w| / \\bar w`;
    - ``neg_entropy``, negative entropy: over the :math:`m` positive weights, with
      :math:`v_i = w_i / \\bar w_{+}` (:math:`\\bar w_{+}` their mean),
      :math:`\\frac{1}{m}\\sum_i v_i \\log v_i`; 0 for equal weights, larger for more uneven weights;
    - ``ess``: Kish's effective sample size :math:`(\\sum w)^2 / \\sum w^2`.

    ``cv``, ``scaled_mad``, ``neg_entropy`` and ``ess`` do not depend on the scale of a group's weights (they are
    computed on the weights divided by a power of two near their maximum, so weights of 1e200 or 1e-200 give the
    same values as weights near 1); ``min``, ``max``, ``sum`` and ``mean`` do.

    References
    ----------
    Greifer, N. WeightIt: Weighting for Covariate Balance in Observational Studies. R package version 1.5.1,
    ``summary.weightit()``.

    Kish, L. (1965). *Survey Sampling*. New York: Wiley.

    Examples
    --------
    >>> from balance.diagnostics import weight_summary
    >>> s = weight_summary([1.0, 1.0, 0.5, 1.5, 2.0, 0.0], [1, 1, 0, 0, 0, 0], n_top=2)
    >>> s.table.loc[["sum", "min", "cv", "n_zeros", "ess"]].round(4)
             control  treated
    sum       4.0000      2.0
    min       0.5000      1.0
    cv        0.9129      0.0
    n_zeros   1.0000      0.0
    ess       2.4615      2.0
    >>> s.top["control"]
    4    2.0
    3    1.5
    dtype: float64
    """
    if not (isinstance(n_top, (int, np.integer)) and n_top >= 0):
        raise ValueError(f"n_top must be a non-negative integer; got {n_top!r}.")
    if any_dask(resolve_weights(weights).weights, treatment):
        from ._dask_balance import dask_weight_summary

        return dask_weight_summary(weights, treatment, treated, treatment_type, n_top)
    w, a, groups, labels = _weights_by_group(weights, treatment, treated, treatment_type)
    table = pd.DataFrame({g: _group_stats(w[a == arm]) for arm, g in enumerate(groups)})
    top = {}
    for arm, group in enumerate(groups):
        group_w = pd.Series(w[a == arm], index=labels[a == arm])
        # stable sort so that ties keep the row order, as R's order() does
        top[group] = group_w.iloc[np.argsort(-group_w.to_numpy(), kind="stable")[:n_top]]
    return WeightSummary(table=table, top=top)
