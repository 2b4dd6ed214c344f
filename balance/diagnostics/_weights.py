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

from .._validation import check_indexes_agree, check_treatment, check_weights

GROUPS = ("control", "treated")


# --------------------------------------------------------------------------------------------------------------
# weight checks (shared with _balance.py)
# --------------------------------------------------------------------------------------------------------------
def resolve_weights(weights, name="weights"):
    """Return ``(weights, estimand)``: a fitted estimator's ``weights_`` and ``estimand``, or ``(weights, None)``.

    An estimator (or a Pipeline ending in one) that is not fitted raises a TypeError saying so.
    """
    given = weights
    if isinstance(weights, Pipeline):  # a pipeline ending in a weighting estimator: read its last step
        weights = weights[-1]
    if hasattr(weights, "weights_"):
        return weights.weights_, getattr(weights, "estimand", None)
    if hasattr(weights, "fit"):
        raise TypeError(f"{name} is an unfitted {type(given).__name__}; fit it first, or pass its weights.")
    return weights, None


def check_groups_weighted(w, a, name="weights", labels=None):
    """Raise a ValueError if every unit of one treatment group has weight zero (its means are then undefined).

    ``labels`` names the groups by code (default: control and treated).
    """
    for arm, label in enumerate(GROUPS if labels is None else labels):
        if not np.any(w[a == arm] > 0):
            raise ValueError(f"{name} is zero for every {label} unit; that group cannot be summarised.")


def _labels(*series_indexes, n):
    """Row labels: the first pandas index available, else positions 0..n-1."""
    for idx in series_indexes:
        if idx is not None:
            return idx
    return pd.RangeIndex(n)


# --------------------------------------------------------------------------------------------------------------
# effective sample size
# --------------------------------------------------------------------------------------------------------------
def _kish(w):
    return float(w.sum() ** 2 / np.sum(w**2))


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
    if labels is None:
        labels = list(GROUPS) if n_groups == 2 else [str(k) for k in range(n_groups)]
    ess, n_positive, share = [], [], []
    for k in range(n_groups):
        wk = w[codes == k]
        total = wk.sum()
        ess.append(_kish(wk) if total > 0 else 0.0)
        n_positive.append(int(np.sum(wk > 0)))
        share.append(wk.max() / total if total > 0 else np.nan)
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


def effective_sample_size(weights, treatment=None, *, treated=None):
    """Kish's effective sample size of a weight vector, per treatment group.

    Parameters
    ----------
    weights : array-like of shape (n_samples,) or fitted weighting estimator
        Non-negative analysis weights, sampling weights included (as every estimator's ``weights_``; WeightIt's
        ``ESS()`` of ``weights * s.weights``). An object with a ``weights_`` attribute (a fitted weighting
        estimator) is replaced by its ``weights_``.
    treatment : array-like of shape (n_samples,), default=None
        Binary treatment, coded as in :func:`balance._validation.check_treatment` (0/1, boolean, or any two levels
        with ``treated`` given). ``None`` pools all units.
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean.

    Returns
    -------
    ess : pandas.Series or float
        With a treatment, a Series indexed ``["control", "treated"]``; without one, a single float.

    Raises
    ------
    ValueError
        If ``weights`` has missing, infinite or negative values, the wrong length, an index that differs from
        ``treatment``'s, or is zero for a whole group.

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
    if treatment is None:
        w = check_weights(resolve_weights(weights)[0])
        if not np.any(w > 0):
            raise ValueError("weights is zero for every unit.")
        return _kish(w)
    w, a, _ = _weights_by_group(weights, treatment, treated)
    return pd.Series([_kish(w[a == 0]), _kish(w[a == 1])], index=list(GROUPS))


def _weights_by_group(weights, treatment, treated):
    """Validate weights against a treatment: return ``(w, a, labels)`` with ``a`` coded 0/1."""
    weights, _ = resolve_weights(weights)
    check_indexes_agree(treatment=treatment, weights=weights)
    t = check_treatment(treatment, treated=treated, treatment_type="binary")
    w_index = weights.index if isinstance(weights, pd.Series) else None
    w = check_weights(weights, t.a.shape[0])
    check_groups_weighted(w, t.a)
    return w, t.a, _labels(t.index, w_index, n=t.a.shape[0])


# --------------------------------------------------------------------------------------------------------------
# weight summary
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightSummary:
    """Result of :func:`weight_summary`.

    Attributes
    ----------
    table : pandas.DataFrame
        One column per group (``control``, ``treated``); rows ``n``, ``min``, ``max``, ``sum``, ``mean``, ``cv``,
        ``scaled_mad``, ``neg_entropy``, ``n_zeros``, ``ess``.
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
    mean = w.mean()
    positive = w[w > 0]
    scaled = positive / positive.mean()
    return {
        "n": float(w.size),
        "min": positive.min(),
        "max": positive.max(),
        "sum": w.sum(),
        "mean": mean,
        "cv": w.std(ddof=1) / mean if w.size > 1 else np.nan,
        "scaled_mad": np.mean(np.abs(w - mean)) / mean,
        "neg_entropy": np.mean(scaled * np.log(scaled)),
        "n_zeros": float(np.sum(w == 0)),
        "ess": _kish(w),
    }


def weight_summary(weights, treatment, *, treated=None, n_top=5):
    """Summarise weights per treatment group, as R WeightIt's ``summary()`` does.

    Parameters
    ----------
    weights : array-like of shape (n_samples,) or fitted weighting estimator
        Non-negative analysis weights, sampling weights included (as every estimator's ``weights_``, and as
        WeightIt summarises ``weights * s.weights``), or an object with a ``weights_`` attribute. A Series gives
        the row labels of the largest weights.
    treatment : array-like of shape (n_samples,)
        Binary treatment (0/1, boolean, or two levels with ``treated`` given). A Series must carry the same index
        as a Series ``weights``.
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean.
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

    ``cv``, ``scaled_mad``, ``neg_entropy`` and ``ess`` do not depend on the scale of a group's weights; ``min``,
    ``max``, ``sum`` and ``mean`` do.

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
    w, a, labels = _weights_by_group(weights, treatment, treated)
    table = pd.DataFrame({g: _group_stats(w[a == arm]) for arm, g in enumerate(GROUPS)})
    top = {}
    for arm, group in enumerate(GROUPS):
        group_w = pd.Series(w[a == arm], index=labels[a == arm])
        # stable sort so that ties keep the row order, as R's order() does
        top[group] = group_w.iloc[np.argsort(-group_w.to_numpy(), kind="stable")[:n_top]]
    return WeightSummary(table=table, top=top)
