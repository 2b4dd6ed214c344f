"""What a balance table says beyond its numbers: cobalt's thresholds, balance tallies, the largest imbalance, the
effective sample sizes, and the printed form that puts them together (cobalt 4.6.1's ``print.bal.tab``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._stats import kish_ess

# per statistic: what cobalt's tally is "for" and what "the greatest" is called
_TITLES = {
    "smd": ("mean differences", "mean difference"),
    "vratio": ("variance ratios", "variance ratio"),
    "ks": ("KS statistics", "KS statistic"),
    "ovl": ("overlapping coefficients", "overlapping coefficient"),
    "corr": ("treatment correlations", "treatment correlation"),
    "spearman": ("treatment Spearman correlations", "treatment Spearman correlation"),
}
# statistics cobalt 4.6.1 also judges on a distance row (its printed prop.score row is judged for these only)
_JUDGED_ON_DISTANCE = ("smd", "vratio")


class BalanceTable(pd.DataFrame):
    """A balance table (a pandas DataFrame) that prints as cobalt does: the table, then the balance tallies and
    the variable with the greatest imbalance for each statistic with a threshold, then the effective sample sizes.

    Attributes beyond the rows: ``thresholds`` (dict, the thresholds used), ``tally`` (per statistic, a DataFrame
    of the number of rows balanced and not balanced), ``max_imbalance`` (per statistic, the row with the largest
    imbalance, distances excluded), ``ess`` (Kish's effective sample sizes per group, unadjusted and adjusted)
    and, with ``by=``, ``across_subgroups`` (the largest imbalance of each row over the subgroups; else None), and
    ``ks_error`` (dask input only, else None: per row and KS column, how far above the table's KS statistic, a
    lower bound read from binned ECDFs, the exact one can lie; 0 where it is exact).
    Any operation on the table (selecting columns, rounding, concatenating) gives a plain DataFrame without them,
    so they never travel into other objects (they are not ``DataFrame.attrs``, which pandas copies and compares).
    """

    _metadata = ["thresholds", "tally", "max_imbalance", "ess", "across_subgroups", "ks_error"]

    @property
    def _constructor(self):
        return pd.DataFrame  # derived frames are plain DataFrames: only the full table prints as a report

    @classmethod
    def build(cls, table, *, thresholds, tally, max_imbalance, ess, across_subgroups=None, ks_error=None):
        """The table with its report attributes."""
        out = cls(table)
        out.thresholds, out.tally, out.max_imbalance = thresholds, tally, max_imbalance
        out.ess, out.across_subgroups, out.ks_error = ess, across_subgroups, ks_error
        return out

    def __repr__(self):
        return format_balance(self)


def _label(value):
    return np.format_float_positional(float(value), trim="-")


def _verdicts(threshold):
    return f"Balanced, <{_label(threshold)}", f"Not Balanced, >{_label(threshold)}"


def _imbalance(stat, values):
    """The size of an imbalance: |x|, or max(x, 1/x) for a variance ratio."""
    values = np.asarray(values, dtype=float)
    if stat == "vratio":
        with np.errstate(divide="ignore"):
            return np.fmax(values, 1.0 / values)
    return np.abs(values)


def check_thresholds(thresholds, allowed):
    """Validate ``thresholds`` (a dict statistic → positive number) against the statistics of the treatment
    type; None gives {}."""
    if thresholds is None:
        return {}
    if not isinstance(thresholds, dict):
        raise TypeError(f"thresholds must be a dict such as {{'smd': 0.1}}; got {type(thresholds).__name__}.")
    for stat, value in thresholds.items():
        if stat not in allowed:
            raise ValueError(f"thresholds has the key {stat!r}; choose from {list(allowed)}.")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or value <= 0:
            raise ValueError(f"thresholds[{stat!r}] must be a positive number; got {value!r}.")
        if stat == "vratio" and value < 1:
            raise ValueError(f"thresholds['vratio'] is {value!r}; give it as a ratio of at least 1 (a variance "
                             "ratio r and 1/r are judged alike).")
    return dict(thresholds)


def add_thresholds(table, thresholds):
    """Add a ``<stat>_threshold`` column after each judged column (``<stat>_adj``, else ``<stat>_un``) and return
    ``(table, tally, max_imbalance)`` as cobalt: a row is "Balanced, <t" when its imbalance is below t; rows with
    a non-finite statistic get "" and are not counted; distances are judged only for mean differences and
    variance ratios (as cobalt 4.6.1 prints them) and never give the largest imbalance."""
    tally, largest = {}, {}
    distance = (table["type"] == "Distance").to_numpy()
    for stat, threshold in thresholds.items():
        column = f"{stat}_adj" if f"{stat}_adj" in table.columns else f"{stat}_un"
        size = _imbalance(stat, table[column])
        judged = np.isfinite(size) & (~distance | (stat in _JUDGED_ON_DISTANCE))
        yes, no = _verdicts(threshold)
        labels = np.where(~judged, "", np.where(size < threshold, yes, no))
        table.insert(table.columns.get_loc(column) + 1, f"{stat}_threshold", labels)
        tally[stat] = pd.DataFrame({"count": [int(np.sum(labels == yes)), int(np.sum(labels == no))]},
                                   index=[yes, no])
        candidates = np.flatnonzero(np.isfinite(size) & ~distance)
        if candidates.size:
            top = candidates[np.argmax(size[candidates])]
            largest[stat] = table.iloc[[top]][[column, f"{stat}_threshold"]].rename_axis(
                [name or "variable" for name in table.index.names]).reset_index()
    return table, tally, largest


def ess_table(weight_runs, codes, labels):
    """Kish's effective sample size per group (columns) of the unadjusted (sampling weights) and adjusted
    weights (rows ``Unadjusted``, ``Adjusted``), as cobalt's "Effective sample sizes"."""
    return ess_frame({suffix: [kish_ess(w[codes == k]) for k in range(len(labels))]
                      for suffix, w in weight_runs.items()}, labels)


def ess_frame(ess, labels):
    """:func:`ess_table`'s frame from ``{"un": [ESS per group], "adj": [...]}``."""
    names = {"un": "Unadjusted", "adj": "Adjusted"}
    return pd.DataFrame({label: [values[k] for values in ess.values()] for k, label in enumerate(labels)},
                        index=[names[s] for s in ess])


def format_balance(table):
    """The printed form of a :class:`BalanceTable`, laid out as cobalt's ``print.bal.tab``."""
    width = pd.get_option("display.width") or 80
    body = pd.DataFrame(table).to_string(na_rep=".", float_format=lambda v: f"{v:.4f}", line_width=width)
    lines = ["Balance Measures", body]
    for stat in table.thresholds:
        plural, single = _TITLES[stat]
        lines += ["", f"Balance tally for {plural}", table.tally[stat].to_string()]
        if stat in table.max_imbalance:
            lines += ["", f"Variable with the greatest {single}",
                      table.max_imbalance[stat].to_string(index=False, float_format=lambda v: f"{v:.4f}")]
    if table.across_subgroups is not None:
        lines += ["", "Balance across subgroups (largest imbalance of each row)",
                  table.across_subgroups.to_string(na_rep=".", float_format=lambda v: f"{v:.4f}", line_width=width)]
    if getattr(table, "ks_error", None) is not None:
        largest = float(np.nanmax(table.ks_error.to_numpy(dtype=float), initial=0.0))
        lines += ["", "KS statistics of continuous rows from binned ECDFs (dask input): each exact value lies in "
                  f"[ks, ks + ks_error]; largest ks_error {largest:.2g}" + (" (all exact)" if largest == 0 else "")]
    lines += ["", "Effective sample sizes", table.ess.to_string(float_format=lambda v: f"{v:.2f}")]
    return "\n".join(lines)
