"""Shared plumbing of the plots: the lazy matplotlib import, axes creation and input resolution.

matplotlib is an optional dependency (the extra ``causal-balance[plot]``), so it is imported only when a plot is
drawn; ``import balance`` and ``import balance.plot`` never import it.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_indexes_agree, check_treatment, check_weights
from ..diagnostics._weights import check_groups_weighted, resolve_weights

# one colour per group in every plot, so that a figure of several panels reads the same way throughout
GROUP_COLORS = {0: "C0", 1: "C1"}
GROUP_NAMES = {0: "Control", 1: "Treated"}


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
    """Legend label of one arm, naming the original treatment level when it is not the 0/1 code itself."""
    level = t.levels[arm]
    plain = isinstance(level, (bool, np.bool_)) or (not isinstance(level, str) and level == arm)
    return GROUP_NAMES[arm] if plain else f"{GROUP_NAMES[arm]} ({level})"


def treatment_and_weights(treatment, weights, n_samples, *, treated=None, index=None):
    """Validated treatment and analysis weights (a fitted weighter's ``weights_``; None: all ones).

    Returns ``(t, w)`` with ``t`` a :class:`balance._validation.Treatment` and ``w`` a float array on which
    every group has some positive weight.
    """
    t = check_treatment(treatment, treated=treated, n_samples=n_samples, index=index, treatment_type="binary")
    weights, _ = resolve_weights(weights)
    if weights is None:
        return t, np.ones(n_samples)
    check_indexes_agree(X=index, treatment=treatment, weights=weights)
    w = check_weights(weights, n_samples)
    check_groups_weighted(w, t.a)
    return t, w
