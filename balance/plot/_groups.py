"""Drawing one variable's weighted distribution per treatment group: KDE, histogram, ECDF or level proportions.

Groups are the codes 0..K-1 of a binary (control 0, treated 1) or multi-category treatment, each in its own colour.

Shared by :func:`balance.plot.balance_plot` (a covariate) and :func:`balance.plot.ps_overlap_plot` (the propensity
score). In every drawing each group's weights are normalised to sum to one, so the two groups are comparable
whatever the weight scale (as cobalt's ``bal.plot``).
"""

from __future__ import annotations

import numpy as np

from ._common import get_axes, group_color

KINDS = ("density", "hist", "ecdf")
_GRID_SIZE = 512


def check_kind(kind, mirrored):
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not supported; choose one of {list(KINDS)}.")
    if mirrored and kind == "ecdf":
        raise ValueError("mirrored=True applies to kind='density' or 'hist', not to an ECDF.")


def check_mirrored(mirrored, t):
    """A mirrored plot has two sides: refuse it for a multi-category treatment."""
    if mirrored and t.kind != "binary":
        raise ValueError(f"mirrored=True needs two groups; the treatment has {t.n_levels} levels: pass "
                         "mirrored=False.")


def weighted_ecdf(x, w):
    """Distinct values of ``x`` and the weighted ECDF at each, sum(w[x <= v]) / sum(w)."""
    order = np.argsort(x, kind="stable")
    xs, cum = x[order], np.cumsum(w[order]) / w.sum()
    last_of_run = np.append(xs[1:] != xs[:-1], True)  # ties are passed together: read the ECDF after the last one
    return xs[last_of_run], cum[last_of_run]


def _kde(x, w, grid, label):
    from scipy.stats import gaussian_kde

    keep = w > 0
    if np.unique(x[keep]).size < 2:
        raise ValueError(f"the {label} group has fewer than two distinct values with positive weight, so no "
                         "density can be estimated; use kind='hist' or kind='ecdf'.")
    return gaussian_kde(x[keep], weights=w[keep])(grid)


def _curves(x, a, w, kind, support, names):
    """Per arm (a key of ``names``, the group names used in messages), what to draw: (grid, density),
    (heights, edges) or (x values, ECDF).

    Computed before anything is drawn, so that an error leaves no half-drawn figure behind.
    """
    lo, hi = float(x.min()), float(x.max())
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    grid = np.linspace(max(lo - pad, support[0]), min(hi + pad, support[1]), _GRID_SIZE)
    # one set of bins for both groups, from the pooled values
    edges = np.histogram_bin_edges(x, bins="auto") if kind == "hist" else None
    curves = {}
    for arm, label in names.items():
        xa, wa = x[a == arm], w[a == arm]
        if kind == "density":
            curves[arm] = grid, _kde(xa, wa, grid, label)
        elif kind == "hist":
            curves[arm] = np.histogram(xa, bins=edges, weights=wa / wa.sum(), density=True)
        else:
            values, cdf = weighted_ecdf(xa, wa)
            # start at 0 at the group's smallest value and run to the pooled maximum, so both curves end at 1
            curves[arm] = np.r_[values[0], values, hi], np.r_[0.0, cdf, 1.0]
    return curves


def draw_continuous(ax, x, a, w, labels, *, kind, mirrored, support=(-np.inf, np.inf)):
    """Draw ``x``'s distribution per group (``a`` the group codes, weights ``w``, ``labels`` the legend label of
    every code) on ``ax`` (None: a new figure); return it.

    With ``mirrored`` (two groups) the control group is drawn below zero. ``support`` bounds the density grid (a
    propensity score's density is not drawn outside [0, 1]).
    """
    names = {0: "control", 1: "treated"} if len(labels) == 2 else {arm: repr(label) for arm, label in labels.items()}
    curves = _curves(x, a, w, kind, support, names)
    ax = get_axes(ax)
    for arm in labels:
        sign = -1.0 if mirrored and arm == 0 else 1.0
        first, second = curves[arm]
        style = {"color": group_color(arm), "label": labels[arm]}
        if kind == "density":
            ax.fill_between(first, sign * second, alpha=0.4, **style)
        elif kind == "hist":
            ax.stairs(sign * first, second, fill=True, alpha=0.4, **style)
        else:
            ax.step(first, second, where="post", **style)
    if mirrored:
        from matplotlib.ticker import FuncFormatter

        ax.axhline(0.0, color="black", linewidth=0.8)
        # heights below the axis are the control group's, positive quantities: label them without the sign
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):g}"))
    ax.set_ylabel({"density": "Density", "hist": "Density", "ecdf": "Cumulative proportion"}[kind])
    ax.legend()
    return ax


def draw_levels(ax, indicators, level_names, a, w, labels):
    """Weighted proportion of each level per group, as side-by-side bars, on ``ax`` (None: a new figure).

    The groups share each level's slot of width 0.8 (two groups: bars of width 0.4 at -0.2 and +0.2). Many levels
    stay legible (:func:`_fit_levels`).
    """
    created = ax is None
    ax = get_axes(ax)
    positions = np.arange(len(level_names))
    width = 0.8 / len(labels)
    for arm in labels:
        offset = (arm - (len(labels) - 1) / 2) * width
        wa = w[a == arm]
        props = wa @ indicators[a == arm] / wa.sum()
        ax.bar(positions + offset, props, width=width, color=group_color(arm), alpha=0.7, label=labels[arm])
    ax.set_xticks(positions, [str(v) for v in level_names])
    ax.set_ylabel("Proportion")
    ax.legend()
    _fit_levels(ax, [str(v) for v in level_names], created)
    return ax


def _fit_levels(ax, names, created):
    """Level labels that never overprint: a figure we created widens with the levels (a third of an inch each);
    labels too long to sit side by side turn vertical, and their font shrinks to the slot width."""
    figure = ax.figure
    if created:
        figure.set_size_inches(max(figure.get_figwidth(), 1.5 + 0.33 * len(names)), figure.get_figheight())
    slot_points = ax.get_window_extent().width / max(len(names), 1) * 72.0 / figure.dpi
    font = ax.get_xticklabels()[0].get_fontsize() if names else 10.0
    # a character is at most about 0.7 font sizes wide; a vertical label needs its height (up to 1.6 font sizes)
    if max(map(len, names), default=0) * 0.7 * font > slot_points:
        for label in ax.get_xticklabels():
            label.set_rotation(90)
            label.set_fontsize(min(font, slot_points / 1.7))
        if created:
            figure.tight_layout()
