"""Plots of the weights themselves and of propensity-score overlap (after WeightIt's and cobalt's displays)."""

from __future__ import annotations

import numpy as np

from .._validation import as_1d, check_indexes_agree, check_treatment, check_weights
from ..diagnostics import effective_sample_size
from ..diagnostics._weights import resolve_weights
from ._common import GROUP_COLORS, get_axes, group_label
from ._groups import check_kind, draw_continuous


def _same_length(values, t, name):
    if values.shape[0] != t.a.shape[0]:
        raise ValueError(f"{name} has {values.shape[0]} entries but treatment has {t.a.shape[0]}.")


def weight_plot(weights, treatment, *, bins=30, treated=None, ax=None):
    """Histogram of the weights in each treatment group, with each group's effective sample size in the legend.

    Extreme or very unequal weights show as long right tails; the legend gives Kish's effective sample size
    (:func:`balance.effective_sample_size`) next to the group size, as WeightIt's ``summary.weightit()`` reports
    them together.

    Parameters
    ----------
    weights : array-like of shape (n_samples,) or fitted weighting estimator
        Non-negative analysis weights (a fitted estimator's ``weights_``).
    treatment : array-like of shape (n_samples,)
        Binary treatment: 0/1, boolean, or two levels with ``treated`` given.
    bins : int, default=30
        Number of histogram bins, shared by both groups (equal widths over the pooled range of the weights).
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean.
    ax : matplotlib Axes, default=None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on; the legend reads ``"<group>: ESS = <ess> of n = <n>"`` with the ESS to one decimal.

    Raises
    ------
    ValueError
        If ``weights`` has missing, infinite or negative values, a length other than ``treatment``'s, is zero for
        a whole group, or ``bins`` is not a positive integer.

    References
    ----------
    Kish, L. (1965). *Survey Sampling*. Wiley.

    Greifer, N. (2024). WeightIt: Weighting for Covariate Balance in Observational Studies. R package 1.5.1,
    ``summary.weightit()`` and its ``plot`` method.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from balance import PropensityWeights
    >>> from balance.datasets import load_lalonde
    >>> from balance.plot import weight_plot
    >>> data = load_lalonde()
    >>> pw = PropensityWeights(estimand="ATT").fit(data.X, data.treatment)
    >>> ax = weight_plot(pw, data.treatment)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['Control: ESS = 99.8 of n = 429', 'Treated: ESS = 185.0 of n = 185']
    >>> plt.close(ax.figure)
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer; got {bins!r}.")
    t = check_treatment(treatment, treated=treated, treatment_type="binary")
    w = resolve_weights(weights)[0]
    check_indexes_agree(treatment=treatment, weights=w)
    w = check_weights(w)
    _same_length(w, t, "weights")
    ess = effective_sample_size(w, t.a)  # also refuses a group whose weights are all zero

    ax = get_axes(ax)
    edges = np.histogram_bin_edges(w, bins=bins)
    for arm, group in ((0, "control"), (1, "treated")):
        label = f"{group_label(t, arm)}: ESS = {ess[group]:.1f} of n = {int(np.sum(t.a == arm))}"
        ax.hist(w[t.a == arm], bins=edges, color=GROUP_COLORS[arm], alpha=0.5, label=label)
    ax.set_xlabel("Weight")
    ax.set_ylabel("Number of units")
    ax.set_title("Distribution of weights")
    ax.legend()
    return ax


def _propensity(propensity):
    """A fitted estimator's ``ps_``, or the scores given; checked to lie in [0, 1]."""
    if hasattr(propensity, "ps_"):
        propensity = propensity.ps_
    elif hasattr(propensity, "fit"):
        raise TypeError(f"{type(propensity).__name__} has no fitted propensity scores (ps_); fit it first, or pass "
                        "the scores.")
    ps, ps_index = as_1d(propensity, "propensity")
    try:
        ps = ps.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("propensity must be numeric.") from exc
    if not np.all(np.isfinite(ps)) or np.any((ps < 0) | (ps > 1)):
        raise ValueError("propensity must hold finite scores between 0 and 1.")
    return ps, ps_index


def ps_overlap_plot(propensity, treatment, *, kind="hist", mirrored=True, treated=None, ax=None):
    """Propensity-score distributions of the two treatment groups, mirrored, to judge overlap (positivity).

    As cobalt's ``bal.plot(..., var.name = "prop.score", mirror = TRUE)``: the treated group's distribution above
    the axis, the control group's below it. Regions where one group has mass and the other none are where
    positivity fails and inverse-probability weights become extreme.

    Parameters
    ----------
    propensity : array-like of shape (n_samples,) or fitted estimator with ``ps_``
        Propensity scores P(treated | X) in [0, 1], e.g. a fitted :class:`balance.PropensityWeights`.
    treatment : array-like of shape (n_samples,)
        Binary treatment: 0/1, boolean, or two levels with ``treated`` given.
    kind : {"hist", "density", "ecdf"}, default="hist"
        Unweighted histogram (bins shared by the groups, density scale), Gaussian KDE or ECDF per group.
    mirrored : bool, default=True
        Draw the control group below the axis (histogram and density only).
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean.
    ax : matplotlib Axes, default=None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    Raises
    ------
    ValueError
        If the scores are missing, infinite or outside [0, 1], their number differs from the treatment's, or for an
        unknown ``kind``.
    TypeError
        If an unfitted estimator, or one without propensity scores, is given.

    References
    ----------
    Greifer, N. cobalt: Covariate Balance Tables and Plots. R package version 4.6.1, ``bal.plot()``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from balance import PropensityWeights
    >>> from balance.datasets import load_lalonde
    >>> from balance.plot import ps_overlap_plot
    >>> data = load_lalonde()
    >>> pw = PropensityWeights(estimand="ATT").fit(data.X, data.treatment)
    >>> ax = ps_overlap_plot(pw, data.treatment)
    >>> ax.get_xlabel()
    'Propensity score'
    >>> plt.close(ax.figure)
    """
    check_kind(kind, mirrored)
    ps, ps_index = _propensity(propensity)
    check_indexes_agree(propensity=ps_index, treatment=treatment)
    t = check_treatment(treatment, treated=treated, treatment_type="binary")
    _same_length(ps, t, "propensity")
    labels = {arm: group_label(t, arm) for arm in (0, 1)}
    ax = draw_continuous(ax, ps, t.a, np.ones(ps.shape[0]), labels, kind=kind, mirrored=mirrored, support=(0.0, 1.0))
    ax.set_xlabel("Propensity score")
    ax.set_title("Propensity score overlap")
    return ax
