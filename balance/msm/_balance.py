"""Balance of a treatment history's weights at every time point (cobalt's ``bal.tab`` for a ``weightitMSM``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..diagnostics import balance_table, max_over_comparisons
from ..diagnostics._weights import resolve_weights
from ._data import check_msm_data
from ._weights import _ess_by_time


@dataclass(frozen=True)
class MSMBalance:
    """Balance tables of a treatment history.

    Attributes
    ----------
    by_time : DataFrame
        One :func:`~balance.balance_table` per time point under a MultiIndex (time, variable): that time's
        treatment, its covariates ``X_list[t]`` and the final (product) weights. A multi-category time point shows
        the largest imbalance over its pairs of levels (:func:`~balance.diagnostics.max_over_comparisons`; SMDs
        then absolute).
    across_times : DataFrame
        Per variable, the largest imbalance over the time points where it appears (``|smd|``,
        ``max(vratio, 1/vratio)``, ``ks``) and ``times``, the time points it appears at (cobalt's
        "Balance summary across all time points").
    ess : DataFrame
        Kish's effective sample size per treatment group (columns) and time point (rows), unweighted ("un") and
        weighted ("adj"), as cobalt's per-time "Effective sample sizes".
    """

    by_time: pd.DataFrame
    across_times: pd.DataFrame
    ess: pd.DataFrame


def balance_table_msm(X_list, treatments, weights=None, *, stats=("smd", "vratio", "ks"), binary="raw",
                      continuous="std", sample_weight=None):
    """Covariate balance at every time point of a treatment history, and its maximum across time points.

    Parameters
    ----------
    X_list : list of DataFrame or array-like
        For each time point, the covariates whose balance is checked (those its treatment model used).
    treatments : DataFrame of shape (n_samples, n_times)
        One treatment column per time point, in time order.
    weights : array-like of shape (n_samples,) or fitted MSMWeights, default=None
        Final weights (sampling weights included); a fitted :class:`MSMWeights` gives its ``weights_`` (and its
        sampling weights). None: unadjusted columns only.
    stats, binary, continuous
        As :func:`balance.balance_table`, whose conventions every time point's table follows (the ATE's pooled SD).
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    MSMBalance

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from balance.msm import MSMWeights, balance_table_msm
    >>> rng = np.random.default_rng(0)
    >>> x0 = rng.normal(size=400); a1 = rng.binomial(1, 1 / (1 + np.exp(-x0)))
    >>> x1 = x0 + a1 + rng.normal(size=400); a2 = rng.binomial(1, 1 / (1 + np.exp(-x1)))
    >>> X_list = [pd.DataFrame({"x0": x0}), pd.DataFrame({"x0": x0, "a1": a1, "x1": x1})]
    >>> A = pd.DataFrame({"a1": a1, "a2": a2})
    >>> bal = balance_table_msm(X_list, A, MSMWeights().fit(X_list, A), stats="smd")
    >>> bal.by_time.index.tolist()
    [('a1', 'x0'), ('a2', 'x0'), ('a2', 'a1'), ('a2', 'x1')]
    >>> bal.across_times["times"].tolist()
    [['a1', 'a2'], ['a2'], ['a2']]
    """
    X_list, frame, times = check_msm_data(X_list, treatments)
    fitted = resolve_weights(weights)
    if fitted.sample_weight is not None and sample_weight is None:
        sample_weight = fitted.sample_weight
    w = None if fitted.weights is None else np.asarray(fitted.weights, dtype=float)
    tables = {}
    for t, name in enumerate(frame.columns):
        table = balance_table(X_list[t], frame[name], w, estimand="ATE", stats=stats, binary=binary,
                              continuous=continuous, sample_weight=sample_weight)
        # a multi-category time point: the largest imbalance over its pairs of levels (cobalt's summary row)
        tables[times[t]] = max_over_comparisons(table) if isinstance(table.index, pd.MultiIndex) else table
    by_time = pd.concat(tables, names=["time", "variable"])
    across = max_over_comparisons(by_time.rename_axis(["comparison", "variable"]))
    appears = by_time.index.to_frame(index=False).groupby("variable", sort=False)["time"].agg(list)
    across.insert(1, "times", appears.loc[across.index])
    sw = np.ones(len(frame)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    ess = {"un": _ess_by_time(sw, frame, times)}
    if w is not None:
        ess["adj"] = _ess_by_time(w, frame, times)
    return MSMBalance(by_time=by_time, across_times=across, ess=pd.concat(ess, axis=1))
