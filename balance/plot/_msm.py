"""Plots of a treatment history by time point: the love plot and the weight distribution of each time point."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..diagnostics._weights import resolve_weights
from ..msm._data import check_msm_data
from ._common import get_panels
from ._love import love_plot
from ._weights import weight_plot


def _final_weights(weights):
    fitted = resolve_weights(weights)
    return None if fitted.weights is None else np.asarray(fitted.weights, dtype=float)


def msm_love_plot(X_list, treatments, weights=None, *, stat="smd", threshold=0.1, order="unadjusted", ax=None):
    """A love plot per time point: that time's covariates and treatment, the final (product) weights.

    As cobalt's ``love.plot`` of a ``weightitMSM`` (one panel per time point); each panel is
    :func:`balance.plot.love_plot`, its numbers those of :func:`balance.msm.balance_table_msm`.

    Parameters
    ----------
    X_list : list of DataFrame or array-like
        Each time point's covariates.
    treatments : DataFrame of shape (n_samples, n_times)
    weights : array-like or fitted MSMWeights, default=None
    stat, threshold, order
        As :func:`balance.plot.love_plot`.
    ax : sequence of matplotlib Axes, default=None
        One per time point; None creates a row of panels.

    Returns
    -------
    ndarray of Axes, one per time point (titled by the treatment column).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from balance.msm import MSMWeights, simulate_msm
    >>> from balance.plot import msm_love_plot
    >>> data = simulate_msm(400, 2, random_state=0)
    >>> axes = msm_love_plot(data.X_list, data.treatments, MSMWeights().fit(data.X_list, data.treatments))
    >>> [a.get_title() for a in axes]
    ['Covariate Balance: A_1', 'Covariate Balance: A_2']
    >>> plt.close(axes[0].figure)
    """
    X_list, frame, times = check_msm_data(X_list, treatments)
    w = _final_weights(weights)
    axes = get_panels(ax, len(times))
    for t, panel in enumerate(axes):
        love_plot(X_list[t], frame.iloc[:, t], w, estimand="ATE", stat=stat, threshold=threshold, order=order,
                  ax=panel)
        panel.set_title(f"Covariate Balance: {times[t]}")
    return axes


def msm_weight_plot(weights, treatments, *, bins=30, ax=None):
    """Histograms of the final weights in each treatment group of every time point, with their ESS.

    Parameters
    ----------
    weights : array-like or fitted MSMWeights
    treatments : DataFrame of shape (n_samples, n_times)
    bins : int, default=30
    ax : sequence of matplotlib Axes, default=None
        One per time point; None creates a row of panels.

    Returns
    -------
    ndarray of Axes, one per time point, each :func:`balance.plot.weight_plot` of that time's treatment.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from balance.msm import MSMWeights, simulate_msm
    >>> from balance.plot import msm_weight_plot
    >>> data = simulate_msm(400, 2, random_state=0)
    >>> axes = msm_weight_plot(MSMWeights().fit(data.X_list, data.treatments), data.treatments)
    >>> axes[1].get_title()
    'Weights at A_2'
    >>> plt.close(axes[0].figure)
    """
    w = _final_weights(weights)
    if not isinstance(treatments, pd.DataFrame):
        raise TypeError("treatments must be a DataFrame with one treatment column per time point.")
    times = [str(c) for c in treatments.columns]
    axes = get_panels(ax, len(times))
    for t, panel in enumerate(axes):
        weight_plot(w, treatments.iloc[:, t].to_numpy(), bins=bins, ax=panel)
        panel.set_title(f"Weights at {times[t]}")
    return axes
