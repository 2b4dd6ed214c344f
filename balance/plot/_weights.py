"""Plots of the weights themselves and of propensity-score overlap (after WeightIt's and cobalt's displays)."""

from __future__ import annotations

import numpy as np

import pandas as pd

from .._validation import as_1d, check_indexes_agree, check_weights
from ..diagnostics import effective_sample_size
from ..diagnostics._weights import (check_groups_weighted, group_names, inherit, inherit_treatment_type,
                                   resolve_weights)
from ._common import get_axes, get_panels, group_color, group_label, group_labels, plot_treatment
from ._groups import check_kind, check_mirrored, draw_continuous


def _same_length(values, t, name):
    if values.shape[0] != t.a.shape[0]:
        raise ValueError(f"{name} has {values.shape[0]} entries but treatment has {t.a.shape[0]}.")


def weight_plot(weights, treatment, *, bins=30, treated=None, treatment_type="auto", ax=None):
    """Histogram of the weights in each treatment group, with each group's effective sample size in the legend.

    Extreme or very unequal weights show as long right tails; the legend gives Kish's effective sample size
    (:func:`balance.effective_sample_size`) next to the group size, as WeightIt's ``summary.weightit()`` reports
    them together. A binary treatment's two groups share one Axes; a multi-category treatment gets one panel per
    level (on bins shared by every panel).

    Parameters
    ----------
    weights : array-like of shape (n_samples,) or fitted weighting estimator
        Non-negative analysis weights (a fitted estimator's ``weights_``).
    treatment : array-like of shape (n_samples,)
        Binary treatment (0/1, boolean, or two levels with ``treated`` given) or multi-category treatment.
    bins : int, default=30
        Number of histogram bins, shared by all groups (equal widths over the pooled range of the weights).
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean.
    treatment_type : {"auto", "binary", "multi-category"}, default="auto"
        As for the weighting estimators: "auto" decides from the data (an integer treatment with more than two
        values needs ``"multi-category"``).
    ax : matplotlib Axes, sequence of Axes, or None, default=None
        Axes to draw on (a multi-category treatment: one per level, in level order); None creates a new figure.

    Returns
    -------
    ax : matplotlib Axes, or ndarray of Axes of shape (n_levels,) for a multi-category treatment
        The axes drawn on; the legend reads ``"<group>: ESS = <ess> of n = <n>"`` with the ESS to one decimal (a
        multi-category group is named by its level).

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
    fitted = resolve_weights(weights)
    t = plot_treatment(treatment, treated=inherit("treated", treated, fitted.treated),
                       treatment_type=inherit_treatment_type(treatment_type, fitted))
    check_indexes_agree(treatment=treatment, weights=fitted.weights)
    w = check_weights(fitted.weights)
    _same_length(w, t, "weights")
    edges = np.histogram_bin_edges(w, bins=bins)
    if t.kind == "multi-category":
        return _weight_panels(w, t, edges, ax)
    ess = effective_sample_size(w, t.a)  # also refuses a group whose weights are all zero

    ax = get_axes(ax)
    for arm, group in ((0, "control"), (1, "treated")):
        label = f"{group_label(t, arm)}: ESS = {ess[group]:.1f} of n = {int(np.sum(t.a == arm))}"
        ax.hist(w[t.a == arm], bins=edges, color=group_color(arm), alpha=0.5, label=label)
    ax.set_xlabel("Weight")
    ax.set_ylabel("Number of units")
    ax.set_title("Distribution of weights")
    ax.legend()
    return ax


def _weight_panels(w, t, edges, ax):
    """One histogram panel per level of a multi-category treatment, its ESS in the legend."""
    check_groups_weighted(w, t.a, labels=group_names(t))
    ess = effective_sample_size(w, t.a, treatment_type=t.kind)  # Kish's ESS per level, in code order
    axes = get_panels(ax, t.n_levels)
    for arm, (level, panel) in enumerate(zip(t.levels, axes)):
        label = f"{level}: ESS = {ess.iloc[arm]:.1f} of n = {int(np.sum(t.a == arm))}"
        panel.hist(w[t.a == arm], bins=edges, color=group_color(arm), alpha=0.5, label=label)
        panel.set_xlabel("Weight")
        panel.set_title(f"Weights: {level}")
        panel.legend()
    axes[0].set_ylabel("Number of units")
    axes[0].figure.suptitle("Distribution of weights")
    return axes


def _fitted_scores(propensity):
    """A fitted estimator's ``ps_``, or the scores given."""
    if hasattr(propensity, "ps_"):
        return propensity.ps_
    if hasattr(propensity, "fit"):
        raise TypeError(f"{type(propensity).__name__} has no fitted propensity scores (ps_); fit it first, or pass "
                        "the scores.")
    return propensity


def _check_scores(ps):
    try:
        ps = ps.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("propensity must be numeric.") from exc
    if not np.all(np.isfinite(ps)) or np.any((ps < 0) | (ps > 1)):
        raise ValueError("propensity must hold finite scores between 0 and 1.")
    return ps


def _propensity(propensity):
    """A fitted estimator's ``ps_``, or the scores given; checked to lie in [0, 1]."""
    ps, ps_index = as_1d(_fitted_scores(propensity), "propensity")
    return _check_scores(ps), ps_index


def _generalised_propensity(propensity, t):
    """The (n, K) generalised propensity scores, columns in level order (a DataFrame's columns matched by name)."""
    scores = _fitted_scores(propensity)
    index = scores.index if isinstance(scores, (pd.DataFrame, pd.Series)) else None
    if isinstance(scores, pd.DataFrame) and set(scores.columns) == set(t.levels):
        scores = scores[list(t.levels)]
    ps = np.asarray(scores)
    if ps.ndim != 2 or ps.shape[1] != t.n_levels:
        raise ValueError(f"propensity must hold one column per treatment level ({t.n_levels}: {list(t.levels)}), "
                         f"e.g. a fitted multi-category PropensityWeights' ps_; got shape {ps.shape}.")
    return _check_scores(ps), index


def ps_overlap_plot(propensity, treatment, *, kind="hist", mirrored=None, treated=None, treatment_type="auto",
                    ax=None):
    """Propensity-score distributions of the treatment groups, to judge overlap (positivity).

    As cobalt's ``bal.plot(..., var.name = "prop.score", mirror = TRUE)``: the treated group's distribution above
    the axis, the control group's below it. Regions where one group has mass and the other none are where
    positivity fails and inverse-probability weights become extreme.

    A multi-category treatment has one generalised propensity score per level, :math:`e_k(x) = P(T = k \\mid x)`,
    and one panel per level: panel :math:`k` shows :math:`e_k` in every treatment group (overlaid, not
    mirrored). Units of other groups with :math:`e_k` near zero, where level :math:`k`'s units are absent, have no
    comparable units in level :math:`k`.

    Parameters
    ----------
    propensity : array-like of shape (n_samples,) or (n_samples, n_levels), or fitted estimator with ``ps_``
        Propensity scores P(treated | X) in [0, 1], e.g. a fitted :class:`balance.PropensityWeights`; for a
        multi-category treatment one column per level (a DataFrame's columns named by the levels are matched by
        name, other columns are taken in level order).
    treatment : array-like of shape (n_samples,)
        Binary treatment (0/1, boolean, or two levels with ``treated`` given) or multi-category treatment.
    kind : {"hist", "density", "ecdf"}, default="hist"
        Unweighted histogram (bins shared by the groups, density scale), Gaussian KDE or ECDF per group.
    mirrored : bool or None, default=None
        Draw the control group below the axis (binary treatments, histogram and density only). None: True for a
        binary treatment, False for a multi-category one.
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean.
    treatment_type : {"auto", "binary", "multi-category"}, default="auto"
        As for the weighting estimators: "auto" decides from the data (an integer treatment with more than two
        values needs ``"multi-category"``).
    ax : matplotlib Axes, sequence of Axes, or None, default=None
        Axes to draw on (a multi-category treatment: one per level, in level order); None creates a new figure.

    Returns
    -------
    ax : matplotlib Axes, or ndarray of Axes of shape (n_levels,) for a multi-category treatment
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
    t = plot_treatment(treatment, treated=treated, treatment_type=treatment_type)
    mirrored = t.kind == "binary" if mirrored is None else mirrored
    check_kind(kind, mirrored)
    check_mirrored(mirrored, t)
    if t.kind == "multi-category":
        return _overlap_panels(propensity, treatment, t, kind, ax)
    ps, ps_index = _propensity(propensity)
    check_indexes_agree(propensity=ps_index, treatment=treatment)
    _same_length(ps, t, "propensity")
    ax = draw_continuous(ax, ps, t.a, np.ones(ps.shape[0]), group_labels(t), kind=kind, mirrored=mirrored,
                         support=(0.0, 1.0))
    ax.set_xlabel("Propensity score")
    ax.set_title("Propensity score overlap")
    return ax


def _overlap_panels(propensity, treatment, t, kind, ax):
    """Panel k: the generalised propensity score of level k in every treatment group."""
    ps, ps_index = _generalised_propensity(propensity, t)
    check_indexes_agree(propensity=ps_index, treatment=treatment)
    _same_length(ps, t, "propensity")
    labels = group_labels(t)
    ones = np.ones(ps.shape[0])
    axes = get_panels(ax, t.n_levels)
    for k, (level, panel) in enumerate(zip(t.levels, axes)):
        draw_continuous(panel, ps[:, k], t.a, ones, labels, kind=kind, mirrored=False, support=(0.0, 1.0))
        panel.set_xlabel(f"P(treatment = {level} | X)")
        panel.set_title(f"Propensity of {level}")
    axes[0].figure.suptitle("Generalised propensity score overlap")
    return axes
