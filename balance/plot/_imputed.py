"""Love plot of multiply imputed data: each statistic's mean over the imputations, with its range (min to max)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..diagnostics import balance_across_imputations
from ._common import get_axes
from ._love import _MARKERS, _XLABELS, _order, _threshold_lines


def imputed_love_plot(X, treatment, weights, *, estimand, threshold, abs, order, stat, sample_weight, treated,
                      treatment_type, ax):
    """:func:`balance.plot.love_plot` for a list of completed data sets or a fitted ImputedEffect (cobalt's love
    plot of ``mimids``/``wimids``): a marker at each statistic's mean over the imputations (geometric for variance
    ratios) and a line from its minimum to its maximum; absolute values by default as in every love plot."""
    table = balance_across_imputations(X, treatment, weights, abs=abs, stats=stat, estimand=estimand,
                                       sample_weight=sample_weight, treated=treated, treatment_type=treatment_type)
    if isinstance(table.index, pd.MultiIndex):
        raise ValueError("the love plot of multiply imputed data supports binary treatments; plot a balance_table "
                         "of each imputation (per_imputation=True) for a multi-category one.")
    samples = {"Unadjusted": "un"} | ({"Adjusted": "adj"} if f"{stat}_adj_mean" in table else {})
    means = pd.DataFrame({name: table[f"{stat}_{key}_mean"] for name, key in samples.items()}).dropna(how="all")
    rows = _order(means, order)
    ax = get_axes(ax)
    y = np.arange(len(rows))
    for k, (name, key) in enumerate(samples.items()):
        low, high = table.loc[rows, f"{stat}_{key}_min"], table.loc[rows, f"{stat}_{key}_max"]
        colour = f"C{k}"
        ax.hlines(y, low, high, color=colour, linewidth=1.5, gid=f"{name} range")
        ax.plot(means.loc[rows, name].to_numpy(), y, linestyle="none", marker=_MARKERS[k], color=colour, label=name,
                gid=name)
    ax.axvline(1.0 if stat == "vratio" else 0.0, color="black", linewidth=0.8, gid="reference")
    for x in _threshold_lines(threshold, stat, abs):
        ax.axvline(x, color="grey", linestyle="--", linewidth=1, gid="threshold")
    ax.set_yticks(y, rows)
    ax.invert_yaxis()
    ax.set_xlabel(("Absolute " if abs and stat == "smd" else "") + _XLABELS[stat])
    ax.set_title("Covariate Balance Across Imputations (mean, min to max)")
    ax.legend(title="Sample")
    return ax
