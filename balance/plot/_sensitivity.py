"""Plots of sensitivity analyses: marginal-sensitivity bounds against Λ, and sensemakr's omitted-variable-bias
contours."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import get_axes

_BOUND_COLUMNS = ("bound_low", "bound_high", "ci_low", "ci_high")


def sensitivity_plot(table, *, breakdown=None, ax=None):
    """Plot the marginal-sensitivity bounds and their bootstrap interval against Λ.

    Parameters
    ----------
    table : DataFrame
        From :meth:`balance.WeightedEffect.sensitivity`: indexed by Λ, with ``bound_low``, ``bound_high``,
        ``ci_low`` and ``ci_high``.
    breakdown : float, default=None
        A breakdown Λ (:meth:`balance.WeightedEffect.breakdown_lambda`) to mark with a vertical line.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
        The bounds as a band with lines, the interval as dashed lines, the null (0, or 1 for ratios) dotted.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from balance.plot import sensitivity_plot
    >>> table = pd.DataFrame({"bound_low": [1.0, 0.2], "bound_high": [1.0, 1.8], "ci_low": [0.4, -0.5],
    ...                       "ci_high": [1.6, 2.5]}, index=pd.Index([1.0, 2.0], name="lambda"))
    >>> ax = sensitivity_plot(table, breakdown=1.6)
    >>> ax.get_xlabel()
    'Λ (bound on the propensity odds ratio)'
    """
    if not isinstance(table, pd.DataFrame) or any(c not in table.columns for c in _BOUND_COLUMNS):
        raise ValueError(f"table must be a DataFrame with columns {list(_BOUND_COLUMNS)} (from "
                         "WeightedEffect.sensitivity()).")
    ax = get_axes(ax)
    lam = table.index.to_numpy(dtype=float)
    ax.fill_between(lam, table["bound_low"], table["bound_high"], color="C0", alpha=0.3, label="bounds")
    ax.plot(lam, table["bound_low"], color="C0", marker="o")
    ax.plot(lam, table["bound_high"], color="C0", marker="o")
    ax.plot(lam, table["ci_low"], color="C0", linestyle="--", label=f"{1 - table.attrs.get('alpha', 0.05):.0%} "
            "bootstrap interval")
    ax.plot(lam, table["ci_high"], color="C0", linestyle="--")
    ax.axhline(table.attrs.get("null", 0.0), color="black", linestyle=":", linewidth=1)
    if breakdown is not None and np.isfinite(breakdown):
        ax.axvline(breakdown, color="C3", linewidth=1, label=f"breakdown Λ = {breakdown:.3g}")
    ax.set_xlabel("Λ (bound on the propensity odds ratio)")
    ax.set_ylabel("effect")
    ax.legend()
    return ax


def ovb_contour_plot(result, *, lim=None, n_grid=200, ax=None):
    """The contour plot of sensemakr: the adjusted estimate over the confounder's partial R² with the treatment
    (horizontal) and with the outcome (vertical), the level at zero in red, the benchmarks as red diamonds.

    Parameters
    ----------
    result : OmittedVariableBias
        From :meth:`balance.WeightedEffect.ovb` or :func:`balance.sensitivity.ovb_sensitivity`.
    lim : float, default=None
        Largest partial R² on both axes; None: 0.4 or beyond the benchmarks (at most 0.99).
    n_grid : int, default=200
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from balance.sensitivity import ovb_sensitivity
    >>> from balance.plot import ovb_contour_plot
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(300, 2)); d = (x[:, 0] + rng.normal(size=300) > 0).astype(float)
    >>> y = d + x @ [1.0, 0.5] + rng.normal(size=300)
    >>> ax = ovb_contour_plot(ovb_sensitivity(y, d, x, benchmark_covariates="x1", kd=[1, 2]))
    >>> ax.get_xlabel()
    'partial R² of the confounder with the treatment'
    """
    if not hasattr(result, "adjusted") or not hasattr(result, "bounds"):
        raise TypeError("result must be an OmittedVariableBias (from WeightedEffect.ovb or ovb_sensitivity).")
    bounds = result.bounds
    if lim is None:
        top = float(np.max(bounds[["r2dz_x", "r2yz_dx"]].to_numpy())) if len(bounds) else 0.0
        lim = min(max(0.4, 1.2 * top), 0.99)
    if not 0 < lim < 1:
        raise ValueError(f"lim={lim!r} must be in (0, 1).")
    ax = get_axes(ax)
    grid = np.linspace(0, lim, n_grid)
    r2d, r2y = np.meshgrid(grid, grid)
    z = result.adjusted(r2d, r2y)["adjusted_estimate"].to_numpy().reshape(r2d.shape)
    contours = ax.contour(r2d, r2y, z, levels=10, colors="grey", linewidths=0.8, linestyles="solid")
    ax.clabel(contours, fontsize=8)
    if z.min() < 0 < z.max():
        ax.contour(r2d, r2y, z, levels=[0.0], colors="C3", linestyles="--", linewidths=1.5)
    ax.plot([0], [0], marker="^", color="black", linestyle="none", clip_on=False)
    ax.set_title(f"adjusted estimate (unadjusted ▲ {result.estimate:.4g}; red dashed: 0)", fontsize=10)
    for label, row in bounds.iterrows():
        ax.plot([row["r2dz_x"]], [row["r2yz_dx"]], marker="D", color="C3", linestyle="none")
        ax.annotate(f"{label} ({row['adjusted_estimate']:.3g})", (row["r2dz_x"], row["r2yz_dx"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlim(0, lim)
    ax.set_ylim(0, lim)
    ax.set_xlabel("partial R² of the confounder with the treatment")
    ax.set_ylabel("partial R² of the confounder with the outcome")
    return ax
