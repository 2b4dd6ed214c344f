"""Shared plumbing of the plots: the lazy matplotlib import, axes creation and input resolution.

matplotlib is an optional dependency (the extra ``causal-balance[plot]``), so it is imported only when a plot is
drawn; ``import balance`` and ``import balance.plot`` never import it.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_indexes_agree, check_treatment, check_weights
from ..diagnostics._weights import (check_groups_weighted, group_names, inherit, inherit_treatment_type,
                                   resolve_weights)

# one colour per group in every plot, so that a figure of several panels reads the same way throughout: a group's
# code k is drawn in matplotlib's k-th cycle colour ("C0" control and "C1" treated for a binary treatment)
GROUP_NAMES = {0: "Control", 1: "Treated"}


def group_color(arm):
    """Colour of the group with code ``arm``, the same in every plot."""
    return f"C{arm % 10}"


def pyplot():
    """Return ``matplotlib.pyplot``, or raise an ImportError saying how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            'balance.plot needs matplotlib; install it with pip install "causal-balance[plot]".'
        ) from exc
    return plt


def get_axes(ax):
    """``ax`` itself, or the axes of a new figure when ``ax`` is None."""
    if ax is None:
        _, ax = pyplot().subplots()
        return ax
    pyplot()
    if not hasattr(ax, "plot") or not hasattr(ax, "figure"):
        raise TypeError(f"ax must be a matplotlib Axes or None; got {type(ax).__name__}.")
    return ax


def group_label(t, arm):
    """Legend label of one arm, naming the original treatment level when it is not the 0/1 code itself.

    A multi-category treatment's groups are labelled by their levels.
    """
    level = t.levels[arm]
    if t.kind == "multi-category":
        return str(level)
    plain = isinstance(level, (bool, np.bool_)) or (not isinstance(level, str) and level == arm)
    return GROUP_NAMES[arm] if plain else f"{GROUP_NAMES[arm]} ({level})"


def group_labels(t):
    """Legend label of every group, by code."""
    return {arm: group_label(t, arm) for arm in range(t.n_levels)}


def plot_treatment(treatment, *, treated=None, treatment_type="auto", n_samples=None, index=None,
                   allow_continuous=False):
    """A validated binary or multi-category treatment (the plots draw one series per group); a continuous one too
    with ``allow_continuous`` (for the plots that draw it otherwise)."""
    t = check_treatment(treatment, treated=treated, treatment_type=treatment_type, n_samples=n_samples,
                        index=index)
    if t.kind == "continuous" and not allow_continuous:
        raise ValueError("the plots support binary and multi-category treatments; got a continuous treatment (a "
                         "treatment with a few integer levels is a category: pass treatment_type='multi-category').")
    return t


def treatment_and_weights(treatment, weights, n_samples, *, treated=None, treatment_type="auto", index=None,
                          allow_continuous=False):
    """Validated treatment and analysis weights (a fitted weighter's ``weights_``; None: all ones).

    Returns ``(t, w)`` with ``t`` a binary or multi-category :class:`balance._treatment.Treatment` (or continuous,
    with ``allow_continuous``) and ``w`` a float array on which every group (a continuous treatment: some unit) has
    some positive weight.
    """
    fitted = resolve_weights(weights)
    weights = fitted.weights
    t = plot_treatment(treatment, treated=inherit("treated", treated, fitted.treated),
                       treatment_type=inherit_treatment_type(treatment_type, fitted), n_samples=n_samples,
                       index=index, allow_continuous=allow_continuous)
    if weights is None:
        return t, np.ones(n_samples)
    check_indexes_agree(X=index, treatment=treatment, weights=weights)
    w = check_weights(weights, n_samples)
    if t.kind == "continuous":
        if not np.any(w > 0):
            raise ValueError("weights are zero for every unit.")
        return t, w
    check_groups_weighted(w, t.a, labels=group_names(t))
    return t, w


def get_panels(ax, n_panels):
    """One Axes per panel: those given in ``ax`` (a sequence of ``n_panels`` Axes) or a new row of panels."""
    if ax is None:
        _, axes = pyplot().subplots(1, n_panels, figsize=(4.0 * n_panels, 3.6), squeeze=False, layout="constrained")
        return axes[0]
    axes = np.ravel(np.asarray(ax, dtype=object))
    if axes.size != n_panels:
        raise ValueError(f"ax must be None or {n_panels} matplotlib Axes, one per treatment level; got {axes.size}.")
    for one in axes:
        get_axes(one)
    return axes
