"""Input checks shared by the longitudinal (marginal structural model) estimators, and the long-to-wide helper.

A treatment observed at T time points is a DataFrame with one column per time point, in time order; ``X_list`` holds,
for each time point, the covariates its treatment model conditions on (baseline and earlier covariates and earlier
treatments). Rows are units, aligned across every element.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._treatment import check_treatment
from .._validation import check_indexes_agree


def check_msm_data(X_list, treatments):
    """Validate ``(X_list, treatments)``; return them with the treatments as a DataFrame and the time names.

    Raises a ValueError naming the element and the fix when ``X_list`` is not a list with one covariate table per
    treatment column, when the row counts differ or when pandas indexes disagree.
    """
    if isinstance(X_list, (pd.DataFrame, np.ndarray)) or not isinstance(X_list, (list, tuple)):
        raise TypeError("X_list must be a list with one covariate table per time point (the history the treatment at "
                        f"that time depends on); got {type(X_list).__name__}. For long-format data use "
                        "balance.msm.to_wide.")
    if isinstance(treatments, pd.DataFrame):
        frame = treatments
    else:
        values = np.asarray(treatments)
        if values.ndim != 2:
            raise ValueError("treatments must be a DataFrame (or 2-d array) with one column per time point, in time "
                             f"order; got an array of shape {values.shape}.")
        frame = pd.DataFrame(values, columns=[f"A_{t + 1}" for t in range(values.shape[1])])
    n_times = frame.shape[1]
    if n_times < 1:
        raise ValueError("treatments has no columns; pass one column per time point.")
    if len(X_list) != n_times:
        raise ValueError(f"X_list has {len(X_list)} covariate tables but treatments has {n_times} time points "
                         f"({list(frame.columns)}); pass one table per time point, in time order.")
    n = frame.shape[0]
    for t, X in enumerate(X_list):
        if len(X) != n:
            raise ValueError(f"X_list[{t}] has {len(X)} rows but treatments has {n}; every element holds the same "
                             "units in the same order.")
    index = check_indexes_agree(treatments=treatments if isinstance(treatments, pd.DataFrame) else None,
                                **{f"X_list[{t}]": X for t, X in enumerate(X_list)})
    if index is not None and not isinstance(treatments, pd.DataFrame):
        frame.index = index
    return list(X_list), frame, [str(c) for c in frame.columns]


def binary_histories(treatments):
    """The 0/1 codes (n, T) of binary treatments at every time point (1 = treated, check_treatment's rule)."""
    codes = []
    for name in treatments.columns:
        t = check_treatment(treatments[name])
        if t.kind != "binary":
            raise ValueError(f"treatment {name!r} is {t.kind}; treatment histories need a binary treatment (0/1 or "
                             "boolean) at every time point.")
        codes.append(t.codes)
    return np.column_stack(codes).astype(np.int64)


def history_label(history):
    """The name of a treatment history, e.g. ``"(1, 0, 1)"``."""
    return "(" + ", ".join(str(int(a)) for a in history) + ")"


def to_wide(df, *, id, time, treatment, covariates, baseline=()):
    """Turn long-format panel data (one row per unit and time point) into ``(X_list, treatments)``.

    The covariates of time point t's treatment model are its history: the baseline covariates, every time-varying
    covariate up to and including time t (measured before that time's treatment) and the treatments before t,
    named ``<column>_<time>`` as in WeightIt's wide data.

    Parameters
    ----------
    df : DataFrame
        Long data: one row per unit and time point.
    id, time, treatment : str
        Columns holding the unit identifier, the time point (sortable) and the treatment.
    covariates : sequence of str
        Time-varying covariates, measured at each time point before its treatment.
    baseline : sequence of str, default=()
        Covariates fixed at baseline (their first value per unit is used).

    Returns
    -------
    X_list : list of DataFrame
        One per time point, indexed by unit.
    treatments : DataFrame
        One column ``<treatment>_<time>`` per time point, indexed by unit.

    Raises
    ------
    ValueError
        When a column is missing, a unit has two rows at one time point, or a unit misses a time point (panels must
        be balanced; censored units need :class:`~balance.msm.CensoringWeights` on the complete panel).

    Examples
    --------
    >>> import pandas as pd
    >>> long = pd.DataFrame({"id": [1, 1, 2, 2], "t": [1, 2, 1, 2], "a": [0, 1, 1, 1],
    ...                      "x": [0.5, 0.7, 1.2, 0.1], "age": [40, 40, 55, 55]})
    >>> X_list, A = to_wide(long, id="id", time="t", treatment="a", covariates=["x"], baseline=["age"])
    >>> list(X_list[1].columns), list(A.columns)
    (['age', 'x_1', 'a_1', 'x_2'], ['a_1', 'a_2'])
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a long-format DataFrame; got {type(df).__name__}.")
    covariates, baseline = list(covariates), list(baseline)
    absent = [c for c in [id, time, treatment, *covariates, *baseline] if c not in df.columns]
    if absent:
        raise ValueError(f"columns {absent} are not in df (columns: {list(df.columns)}).")
    duplicated = df.duplicated([id, time])
    if duplicated.any():
        raise ValueError(f"{int(duplicated.sum())} rows repeat a (unit, time) pair already seen; keep one row per "
                         f"unit and time point (first repeat: {df.loc[duplicated, [id, time]].iloc[0].tolist()}).")
    times = np.sort(df[time].unique())
    wide = df.pivot(index=id, columns=time, values=[treatment, *covariates])
    counts = df.groupby(id)[time].nunique()
    if (counts < len(times)).any():
        missing_units = counts.index[counts < len(times)].tolist()
        raise ValueError(f"{len(missing_units)} units miss some of the {len(times)} time points (e.g. "
                         f"{missing_units[:5]}); the wide layout needs a balanced panel: keep complete units, or "
                         "model dropout with balance.msm.CensoringWeights.")
    base = df.sort_values(time).groupby(id)[baseline].first() if baseline else pd.DataFrame(index=wide.index)
    treatments = pd.DataFrame({f"{treatment}_{s}": wide[(treatment, s)] for s in times})
    X_list, history = [], base.copy()
    for s in times:
        for c in covariates:
            history[f"{c}_{s}"] = wide[(c, s)]
        X_list.append(history.copy())
        history[f"{treatment}_{s}"] = wide[(treatment, s)]
    return X_list, treatments
