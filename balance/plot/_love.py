"""Love plot: a balance statistic per covariate before and after weighting (cobalt's ``love.plot``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..diagnostics import balance_table, max_over_comparisons
from ..diagnostics._imputed import is_imputed
from ..diagnostics._weights import Resolved, inherit, inherit_treatment_type, resolve_weights
from .._validation import check_treatment
from ._common import get_axes

ORDERS = ("unadjusted", "adjusted", "alphabetical", "given", "data")  # "data": the earlier name of "given"
_XLABELS = {"smd": "Standardized Mean Difference", "vratio": "Variance Ratio", "ks": "Kolmogorov-Smirnov Statistic",
            "corr": "Treatment-Covariate Correlation", "spearman": "Treatment-Covariate Spearman Correlation"}
_MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")


def _default_stat(treatment, treatment_type, weightings):
    """cobalt's default statistic: the treatment-covariate correlation for a continuous treatment, else the SMD."""
    kinds = {resolve_weights(w, f"weights[{name!r}]").treatment_type for name, w in weightings.items()}
    kinds.add(treatment_type)
    if "continuous" in kinds:
        return "corr"
    if kinds - {None, "auto"}:
        return "smd"
    try:
        return "corr" if check_treatment(treatment).kind == "continuous" else "smd"
    except (TypeError, ValueError):  # e.g. unlabelled binary levels: balance_table reports it
        return "smd"


def _weightings(weights):
    """The weightings to compare, as an ordered dict name -> weights or fitted estimator."""
    if weights is None:
        return {}
    if isinstance(weights, dict):
        if not weights:
            raise ValueError("weights is an empty dict; give at least one name -> weights entry, or None.")
        if "Unadjusted" in weights:
            raise ValueError('"Unadjusted" is reserved for the unweighted sample; rename that weights entry.')
        return {str(name): w for name, w in weights.items()}
    return {"Adjusted": weights}


def _common_estimand(estimand, weightings):
    """One estimand for every table, so that all share the SMD's denominator and the unadjusted column."""
    if estimand is not None:
        return estimand
    fitted = {name: resolve_weights(w, f"weights[{name!r}]").estimand for name, w in weightings.items()}
    found = {e for e in fitted.values() if e is not None}
    if len(found) > 1:
        raise ValueError(f"the weightings were fitted for different estimands ({fitted}); pass estimand= so that "
                         "every SMD uses the same standard deviation.")
    return found.pop() if found else None


def _transform(values, stat, absolute):
    if not absolute:
        return values
    # cobalt's abs=TRUE: |SMD|; a variance ratio below one is shown as its inverse, so that 1/2 and 2 coincide
    if stat != "vratio":
        return np.abs(values)
    with np.errstate(divide="ignore"):  # a zero ratio folds to inf, as 1/0 should
        return np.maximum(values, 1.0 / values)


def _threshold_lines(threshold, stat, absolute):
    if threshold is None:
        return ()
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or not threshold > 0:
        raise ValueError(f"threshold must be a positive number or None; got {threshold!r}.")
    if absolute or stat == "ks":  # a KS statistic is never negative
        return (threshold,)
    return (1.0 / threshold, threshold) if stat == "vratio" else (-threshold, threshold)


def _statistic(table, column, stat, absolute, comparison):
    """One plotted series: the (transformed) column of a binary table, or of a multi-category table one
    comparison's rows or, by default, the largest value over the comparisons per covariate
    (:func:`balance.diagnostics.max_over_comparisons`, cobalt's balance summary across treatment pairs)."""
    if not isinstance(table.index, pd.MultiIndex):
        return pd.Series(_transform(table[column].to_numpy(dtype=float), stat, absolute), index=table.index)
    if comparison is None:
        return max_over_comparisons(table[["type", column]])[column]
    rows = table.xs(comparison, level="comparison")
    return pd.Series(_transform(rows[column].to_numpy(dtype=float), stat, absolute), index=rows.index)


def _comparisons(table):
    return list(table.index.get_level_values("comparison").unique()) if isinstance(table.index, pd.MultiIndex) \
        else []


def _tables_with(comparison, tables, first, tables_for):
    """The tables holding ``comparison``: the default ones, else those of ``pairwise=True`` or ``False``."""
    if not isinstance(first.index, pd.MultiIndex):
        raise ValueError(f"comparison={comparison!r} applies to a multi-category treatment; this treatment is "
                         "binary: leave comparison=None.")
    seen = []
    for pairwise in (None, True, False):  # balance_table's default table first
        if pairwise is not None:
            tables = tables_for(pairwise)
            first = next(iter(tables.values()))
        names = _comparisons(first)
        if comparison in names:
            return tables, first
        seen += [c for c in names if c not in seen]
    raise ValueError(f"comparison={comparison!r} is not in the balance table; choose one of {seen}.")


def _order(frame, order, labels):
    if order in ("given", "data"):
        return list(frame.index)
    if order == "alphabetical":
        return sorted(frame.index, key=lambda row: str(labels[row]))
    key = frame.iloc[:, 0] if order == "unadjusted" else frame.iloc[:, 1]
    return list(key.sort_values(ascending=False, kind="stable").index)  # largest imbalance on top


def _row_labels(rows, var_names):
    """Displayed label of every row: ``var_names[row]`` where given, else the row's own name."""
    if var_names is None:
        return {row: str(row) for row in rows}
    if not isinstance(var_names, dict):
        raise TypeError(f"var_names must be a dict of row name -> label; got {type(var_names).__name__}.")
    unknown = [name for name in var_names if name not in set(rows)]
    if unknown:
        raise ValueError(f"var_names names rows that are not in the plot: {unknown}; the rows are {list(rows)}.")
    return {row: str(var_names.get(row, row)) for row in rows}


def _series_styles(option, default, names, what):
    """One ``what`` (colour or marker) per series: ``option`` as a sequence in series order or a dict by name."""
    if option is None:
        return {name: default[k % len(default)] for k, name in enumerate(names)}
    if isinstance(option, dict):
        missing = [name for name in names if name not in option]
        if missing:
            raise ValueError(f"{what}s has no entry for the series {missing}; the series are {names}.")
        return {name: option[name] for name in names}
    if isinstance(option, str) or len(option) != len(names):
        raise ValueError(f"{what}s must give one {what} per series ({len(names)}: {names}), as a list in that "
                         f"order or a dict by name; got {option!r}.")
    return dict(zip(names, option))


def _fit_rows(ax, n_rows, created):
    """Keep a plot of ``n_rows`` rows readable: the legend outside the axes, so it covers no point; a figure we
    created grows with the rows; the row labels shrink to the row spacing, so no two overprint."""
    figure = ax.figure
    if created:  # about a quarter inch per row, never smaller than matplotlib's default figure
        figure.set_size_inches(figure.get_figwidth(), max(figure.get_figheight(), 1.2 + 0.22 * n_rows))
    ax.set_ylim(max(n_rows, 1) - 0.5, -0.5)  # first row on top, each row one unit tall
    ax.legend(title="Sample", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    if created:
        figure.tight_layout()
    # a label's box is up to 1.6 font sizes tall (DejaVu Sans with ascenders, descenders and underscores): cap the
    # font so that the boxes fit in their rows
    row_points = ax.get_window_extent().height / max(n_rows, 1) * 72.0 / figure.dpi
    for label in ax.get_yticklabels():
        label.set_fontsize(min(label.get_fontsize(), row_points / 1.7))


def love_plot(X, treatment, weights=None, *, estimand=None, threshold=0.1, abs=True, order="unadjusted",
              stat=None, var_names=None, colors=None, markers=None, comparison=None, sample_weight=None,
              treated=None, treatment_type=None, ax=None):
    """Plot a balance statistic for every covariate, unadjusted and after one or several weightings.

    After cobalt's ``love.plot()``: one row per covariate (categorical covariates one row per level), one marker
    series for the unweighted sample ("Unadjusted") and one per weighting, and a vertical line at the balance
    threshold. Every number comes from :func:`balance.balance_table`.

    A multi-category treatment has one balance statistic per comparison of two levels (and of each level against
    the full sample): by default each covariate shows the largest absolute value over the comparisons of
    :func:`balance.balance_table`'s default table (every pair of levels, or with a focal level the focal level
    against each other one; cobalt's summary across treatment pairs); ``comparison=`` shows one comparison
    instead, from either table.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features), list of DataFrame, or fitted ImputedEffect
        Covariates, as for :func:`balance.balance_table`. Multiply imputed data (a list of completed data sets with
        ``weights`` one per imputation, or a fitted :class:`~balance.ImputedEffect`, binary treatment): each
        statistic's mean over the imputations is marked and a line spans its minimum to its maximum
        (:func:`balance.diagnostics.balance_across_imputations`); ``comparison`` does not apply.
    treatment : array-like of shape (n_samples,)
        Binary treatment (0/1, boolean, or two levels with ``treated`` given) or multi-category treatment, as
        :func:`balance.balance_table` takes it.
    weights : array-like, fitted weighting estimator, dict of str to either, or None, default=None
        One weighting (labelled "Adjusted"), or several to compare side by side: a dict name -> weights or fitted
        estimator, one marker series per entry in the dict's order. None: the unadjusted series only.
    estimand : {"ATE", "ATT", "ATC", "ATO", "ATM", "ATOS"}, default=None
        Selects the SMD's standard deviation as in :func:`balance.balance_table`. None: the fitted estimators'
        common ``estimand`` (an error if they differ), else ``"ATE"``. One estimand serves every series, so the
        unadjusted series and the yardstick are shared.
    threshold : float or None, default=0.1
        Where to draw the balance threshold: at ``threshold``, or with ``abs=False`` at ±threshold (variance ratios:
        at 1/threshold and threshold); None draws none. For variance ratios cobalt's customary value is 2.
    abs : bool, default=True
        Plot absolute values; for variance ratios, max(r, 1/r) (cobalt's convention).
    order : {"unadjusted", "adjusted", "alphabetical", "given"}, default="unadjusted"
        Row order from top to bottom: decreasing (plotted) unadjusted statistic, decreasing statistic of the first
        weighting, alphabetical (by displayed label), or as given (the balance table's order, X's columns; also
        accepted under its earlier name "data").
    stat : {"smd", "vratio", "ks", "corr", "spearman"}, default=None
        The statistic plotted. Binary covariates show the raw difference in proportions under "smd" (cobalt's
        default) and have no variance ratio (their rows are left out of a "vratio" plot). A continuous treatment
        has the treatment-covariate Pearson ("corr") or Spearman ("spearman") correlations of
        :func:`balance.balance_table`. None: "corr" for a continuous treatment, else "smd" (cobalt's defaults; the
        default threshold 0.1 serves both).
    var_names : dict of str to str, default=None
        Display labels by row name (``{"re74": "Earnings 1974", "race_black": "Black"}``, cobalt's
        ``var.names``); rows not named keep their own name. Naming a row that is not plotted is an error.
    colors : list or dict of matplotlib colours, default=None
        One colour per series ("Unadjusted" first, then the weightings in order), or a dict by series name. None:
        matplotlib's colour cycle.
    markers : list or dict of matplotlib markers, default=None
        One marker per series, as ``colors``. None: circle, triangle, square, ...
    comparison : str, default=None
        Multi-category treatments only: the comparison to show, named as in :func:`balance.balance_table`'s
        ``comparison`` index level with ``pairwise=True`` (``"hispan vs. black"``) or ``pairwise=False``
        (``"All vs. black"``). None: the largest absolute value over the default table's comparisons (needs
        ``abs=True``).
    sample_weight : array-like of shape (n_samples,), default=None
        Sampling weights, as for :func:`balance.balance_table`.
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean; the focal level of a multi-category ATT. None:
        the fitted weighters' own.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default=None
        As for :func:`balance.balance_table`. None: the fitted weighters' type, else "auto".
    ax : matplotlib Axes, default=None
        Axes to draw on; None creates a new figure, about a quarter inch tall per row (at least matplotlib's
        default size), so that a table of 80 or more rows stays readable.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on: y tick labels are the covariates (or their ``var_names``) in ``order`` from top to
        bottom (the y axis is inverted, so row ``i`` sits at y = i); each series is one ``Line2D`` of markers
        labelled by its name. The legend sits outside the axes, to the right, so it never covers a point; the
        row labels' font shrinks to the row spacing (on a given ``ax`` too), so labels never overprint.

    Raises
    ------
    ValueError
        For an unknown ``order``, ``stat`` or ``comparison``, ``var_names`` naming rows not plotted, ``colors``
        or ``markers`` not one per series, ``order="adjusted"`` without weights, weightings
        fitted for different estimands without ``estimand``, ``comparison`` for a binary treatment, ``abs=False``
        for the maximum over comparisons, and everything :func:`balance.balance_table` refuses.

    See Also
    --------
    balance.balance_table : the numbers plotted.
    balance_plot : one covariate's distributions.

    References
    ----------
    Greifer, N. cobalt: Covariate Balance Tables and Plots. R package version 4.6.1, ``love.plot()``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from balance import EntropyBalance, PropensityWeights
    >>> from balance.datasets import load_lalonde
    >>> from balance.plot import love_plot
    >>> data = load_lalonde()
    >>> fits = {"logit": PropensityWeights(estimand="ATT").fit(data.X, data.treatment),
    ...         "ebal": EntropyBalance(estimand="ATT").fit(data.X, data.treatment)}
    >>> ax = love_plot(data.X, data.treatment, fits)
    >>> [t.get_text() for t in ax.get_yticklabels()][:3]
    ['re74', 'race_black', 'race_white']
    >>> plt.close(ax.figure)
    """
    if order not in ORDERS:
        raise ValueError(f"order={order!r} is not supported; choose one of {list(ORDERS)}.")
    if stat is not None and stat not in _XLABELS:
        raise ValueError(f"stat={stat!r} is not supported; choose one of {list(_XLABELS)}.")
    if is_imputed(X):
        from ._imputed import imputed_love_plot  # a module that builds on this one

        return imputed_love_plot(X, treatment, weights, estimand=estimand, threshold=threshold, abs=abs, order=order,
                                 stat=stat or "smd", sample_weight=sample_weight, treated=treated,
                                 treatment_type=treatment_type, ax=ax)
    weightings = _weightings(weights)
    stat = stat or _default_stat(treatment, treatment_type, weightings)
    if order == "adjusted" and not weightings:
        raise ValueError('order="adjusted" needs weights; use order="unadjusted" for the unweighted sample.')
    estimand = _common_estimand(estimand, weightings)
    thresholds = _threshold_lines(threshold, stat, abs)

    def table(w, pairwise=None):
        # the weights themselves, with the weighter's treated level, type and missing rule: the estimand is the
        # common one (a weighter fitted for another estimand is compared on the same SD, as documented)
        fitted = resolve_weights(w) if w is not None else Resolved(None)
        return balance_table(X, treatment, fitted.weights, estimand=estimand, stats=stat,
                             sample_weight=sample_weight, treated=inherit("treated", treated, fitted.treated),
                             missing=fitted.missing, treatment_type=inherit_treatment_type(treatment_type, fitted),
                             pairwise=pairwise)

    def tables_for(pairwise=None):
        return {name: table(w, pairwise) for name, w in weightings.items()} or {"Unadjusted": table(None, pairwise)}

    tables = tables_for()
    first = next(iter(tables.values()))
    if comparison is not None:
        tables, first = _tables_with(comparison, tables, first, tables_for)
    elif isinstance(first.index, pd.MultiIndex) and not abs:
        raise ValueError("the default love plot of a multi-category treatment shows the largest absolute value over "
                         "the comparisons; pass abs=True, or name one comparison with comparison=.")
    columns = {"Unadjusted": _statistic(first, f"{stat}_un", stat, abs, comparison)}
    columns.update({name: _statistic(t, f"{stat}_adj", stat, abs, comparison)
                    for name, t in tables.items() if name != "Unadjusted"})
    frame = pd.DataFrame(columns).dropna(how="all")  # binary rows under "vratio"
    labels = _row_labels(list(frame.index), var_names)
    rows = _order(frame, order, labels)
    names = list(frame.columns)
    marker_of = _series_styles(markers, _MARKERS, names, "marker")
    color_of = _series_styles(colors, [f"C{k}" for k in range(10)], names, "color")

    created = ax is None
    ax = get_axes(ax)
    y = np.arange(len(rows))
    for name, values in frame.loc[rows].items():
        ax.plot(values.to_numpy(), y, linestyle="none", marker=marker_of[name], color=color_of[name], label=name,
                gid=name)
    ax.axvline(1.0 if stat == "vratio" else 0.0, color="black", linewidth=0.8, gid="reference")
    for x in thresholds:
        ax.axvline(x, color="grey", linestyle="--", linewidth=1, gid="threshold")
    ax.set_yticks(y, [labels[row] for row in rows])
    ax.set_xlabel(("Absolute " if abs and stat in ("smd", "corr", "spearman") else "") + _XLABELS[stat])
    multi = isinstance(first.index, pd.MultiIndex)
    ax.set_title("Covariate Balance" + ("" if not multi else f": {comparison}" if comparison is not None
                                        else " (maximum over comparisons)"))
    _fit_rows(ax, len(rows), created)
    return ax
