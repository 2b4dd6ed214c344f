"""One covariate's distribution per treatment group, before or after weighting (cobalt's ``bal.plot``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import CovariateDesign
from ._common import get_axes, group_labels, treatment_and_weights
from ._groups import check_kind, check_mirrored, draw_continuous, draw_levels


def _select(design, matrix, names, covariate):
    """Return ``(values, levels)``: the covariate's column, or its level indicators and level names.

    ``covariate`` is a column of X (for an array, ``"x0"``, ``"x1"``... or an integer position) or one expanded
    level indicator such as ``"race_black"`` (as :func:`balance.balance_table` names its rows).
    """
    if isinstance(covariate, (int, np.integer)) and not isinstance(covariate, bool):
        if not 0 <= covariate < len(design.columns):
            raise ValueError(f"covariate={covariate} is out of range; X has {len(design.columns)} columns.")
        covariate = design.columns[covariate]
    if not isinstance(covariate, str):
        raise TypeError(f"covariate must be a column name or position; got {type(covariate).__name__}.")
    if covariate in design.columns:
        j = design.columns.index(covariate)
        if design.kinds[j] == "categorical":
            levels = design.categories[j]
            cols = [names.index(f"{covariate}_{level}") for level in levels]
            return matrix[:, cols], list(levels), covariate
        values = matrix[:, names.index(covariate)]
    elif covariate in names:
        values = matrix[:, names.index(covariate)]
    else:
        raise ValueError(f"covariate {covariate!r} is not a column of X; the columns are {list(design.columns)}.")
    distinct = np.unique(values)
    if distinct.size <= 2:  # a binary covariate is shown as the proportion of each value, as cobalt does
        return (values[:, None] == distinct).astype(np.float64), [_level_name(v) for v in distinct], covariate
    return values, None, covariate


def _level_name(value):
    return str(int(value)) if float(value).is_integer() else str(value)


def balance_plot(X, treatment, covariate, weights=None, *, kind="density", mirrored=False, treated=None,
                 treatment_type="auto", ax=None):
    """Plot one covariate's distribution in each treatment group, unweighted or weighted.

    The distributional counterpart of a balance table, after cobalt's ``bal.plot()``: continuous covariates as a
    weighted kernel density, a weighted histogram or a weighted empirical CDF per group; categorical and binary
    covariates as the weighted proportion of each level per group (bars). A multi-category treatment draws every
    level, labelled by its name.

    A continuous treatment (cobalt's ``bal.plot`` for one): for a continuous covariate, a scatter of the treatment
    (vertical) against the covariate, each point's area proportional to its weight, with the weighted
    least-squares line of the treatment on the covariate and a dashed line at the treatment's weighted mean (when
    the weights make the two uncorrelated, the fitted line lies on the dashed one); for a binary or categorical
    covariate, the treatment's weighted distribution (``kind``) within each of its levels.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        Covariates, as for :func:`balance.balance_table`.
    treatment : array-like of shape (n_samples,)
        Binary treatment (0/1, boolean, or two levels with ``treated`` given), multi-category or continuous
        treatment.
    covariate : str or int
        A column of X (for an array, ``"x0"``, ``"x1"``, ... or an integer position), or one level indicator
        named as in :func:`balance.balance_table` (e.g. ``"race_black"``).
    weights : array-like of shape (n_samples,) or fitted weighting estimator, default=None
        Analysis weights (a fitted estimator's ``weights_``); None plots the unweighted distributions.
    kind : {"density", "hist", "ecdf"}, default="density"
        For continuous covariates: a weighted Gaussian KDE (:class:`scipy.stats.gaussian_kde`, Scott's
        bandwidth), a weighted histogram on bins shared by both groups (density scale), or the weighted ECDF
        :math:`F_w(x) = \\sum_{i: x_i \\le x} w_i / \\sum_i w_i`. Ignored for categorical and binary covariates.
    mirrored : bool, default=False
        Draw the control group below the horizontal axis (binary treatments, ``kind="density"`` or ``"hist"``
        only; level bars are never mirrored).
    treated : scalar, default=None
        The treated level, when ``treatment`` is not 0/1 or boolean (ignored for a multi-category treatment,
        whose every level is drawn).
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default="auto"
        As for the weighting estimators: "auto" decides from the data (an integer treatment with more than two
        values needs ``"multi-category"`` or ``"continuous"``).
    ax : matplotlib Axes, default=None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on. Each group's weights are normalised to sum to one.

    Raises
    ------
    ValueError
        If ``covariate`` is not a column of X, for an unknown ``kind``, ``mirrored`` with an ECDF or with more than
        two treatment groups, a density for a group with fewer than two distinct values, and for the weight and
        treatment problems :func:`balance.balance_table` reports.

    See Also
    --------
    love_plot : standardised mean differences of every covariate.

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
    >>> from balance.plot import balance_plot
    >>> data = load_lalonde()
    >>> pw = PropensityWeights(estimand="ATT").fit(data.X, data.treatment)
    >>> ax = balance_plot(data.X, data.treatment, "age", pw, kind="ecdf")
    >>> ax.get_xlabel()
    'age'
    >>> plt.close(ax.figure)
    """
    check_kind(kind, mirrored)
    design = CovariateDesign.from_data(X)
    matrix, names = design.transform(X, drop_first=False)
    index = X.index if isinstance(X, pd.DataFrame) else None
    t, w = treatment_and_weights(treatment, weights, matrix.shape[0], treated=treated, treatment_type=treatment_type,
                                 index=index, allow_continuous=True)
    check_mirrored(mirrored, t)
    values, levels, name = _select(design, matrix, names, covariate)
    if t.kind == "continuous":
        ax = _draw_continuous_treatment(ax, values, levels, t.a, w, kind, getattr(treatment, "name", None))
        if levels is None:
            ax.set_xlabel(name)
        ax.set_title(f"Treatment and {name!r} ({'weighted' if weights is not None else 'unweighted'})")
        return ax
    labels = group_labels(t)

    if levels is None:
        ax = draw_continuous(ax, values, t.a, w, labels, kind=kind, mirrored=mirrored)
    else:
        ax = draw_levels(ax, values, levels, t.a, w, labels)
    ax.set_xlabel(name)
    ax.set_title(f"Distributional balance for {name!r} ({'weighted' if weights is not None else 'unweighted'})")
    return ax


def _draw_continuous_treatment(ax, values, levels, a, w, kind, treatment_name):
    """A continuous treatment against one covariate: a weighted scatter with the weighted least-squares line, or,
    for a covariate with levels, the treatment's weighted distribution per level."""
    treatment_name = str(treatment_name or "treatment")
    if levels is not None:  # indicators of the levels: the treatment's distribution within each level
        codes = np.argmax(values, axis=1)
        present = {k: str(level) for k, level in enumerate(levels) if np.any(w[codes == k] > 0)}
        ax = draw_continuous(ax, a, codes, w, present, kind=kind, mirrored=False)
        ax.set_xlabel(treatment_name)
        return ax
    ax = get_axes(ax)
    keep = w > 0
    sizes = 20.0 * w[keep] / w[keep].mean()
    ax.scatter(values[keep], a[keep], s=sizes, alpha=0.4, color="C0", edgecolors="none", gid="units")
    slope, intercept = np.polyfit(values, a, 1, w=np.sqrt(w))  # polyfit weights the residuals, not their squares
    grid = np.array([values.min(), values.max()])
    ax.plot(grid, intercept + slope * grid, color="C1", label="weighted linear fit", gid="fit")
    ax.axhline(np.average(a, weights=w), color="grey", linestyle="--", linewidth=1, label="weighted mean",
               gid="mean")
    ax.set_ylabel(treatment_name)
    ax.legend()
    return ax
