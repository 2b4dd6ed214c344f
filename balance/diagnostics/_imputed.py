"""Balance across multiply imputed data sets (cobalt's ``bal.tab`` of a ``mimids``/``wimids`` object)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._balance import balance_table

SUMMARIES = ("min", "mean", "max")


def is_imputed(X):
    """Whether ``X`` is multiply imputed data: a list of DataFrames (not a nested list of numbers, which is one
    array-like data set), or a fitted ImputedEffect."""
    if hasattr(X, "imputations_"):
        return True
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(isinstance(d, pd.DataFrame) for d in X)


def _per_imputation(value, m, name):
    """``value`` for each of the m imputations: a list of m entries is taken as one per imputation, anything else
    (None, one weight vector) is shared."""
    if isinstance(value, (list, tuple)):
        if len(value) != m:
            raise ValueError(f"{name} is a list of {len(value)} entries but there are {m} imputations; give one per "
                             "imputation, or one shared value.")
        return list(value)
    return [value] * m


def _from_fitted(fitted, treatment, weights, distance):
    """The data sets, treatment, weights and propensity scores of a fitted ImputedEffect."""
    if not hasattr(fitted, "fits_"):
        raise TypeError("X has no fitted imputations: fit the ImputedEffect first.")
    if weights is not None:
        raise ValueError("weights come from the fitted ImputedEffect; leave weights=None.")
    weighters = [fit.weighter_ for fit in fitted.fits_]
    if distance is None:  # cobalt shows each imputation's propensity score first
        scores = [getattr(w, "ps_", None) for w in weighters]
        if all(s is not None and np.ndim(s) == 1 for s in scores):
            distance = [np.asarray(s, dtype=float) for s in scores]
        elif getattr(fitted, "ps_", None) is not None:  # approach="across": the averaged scores
            distance = np.asarray(fitted.ps_, dtype=float)
    if treatment is None:
        treatment = fitted.treatment_
    return fitted.imputations_, treatment, weighters, distance


def balance_across_imputations(X, treatment=None, weights=None, *, abs=False, per_imputation=False, distance=None,
                               **options):
    """Covariate balance over multiply imputed data sets: each statistic's minimum, mean and maximum over them.

    Each completed data set gets its own :func:`balance_table` (with its own unweighted standard deviations, as
    cobalt does); the summary gives, per row and statistic, the minimum, mean and maximum over the imputations.

    Parameters
    ----------
    X : list of DataFrame, or fitted ImputedEffect
        The completed data sets (same rows and columns), or a fitted :class:`~balance.ImputedEffect`, whose
        completed data, treatment, fitted weighters and (binary) propensity scores are used; its scores are shown as
        the distance ``prop.score`` unless ``distance`` is given.
    treatment : array-like of shape (n_samples,), default=None
        The treatment (the same in every data set); None with a fitted ImputedEffect.
    weights : list or one of array-like / fitted weighting estimator, default=None
        One per imputation (a list), or one shared weight vector (the "across" approach); None: unadjusted only.
    abs : bool, default=False
        False: summaries of the signed statistics (cobalt's default). True: of |SMD|, max(VR, 1/VR) and KS.
    per_imputation : bool, default=False
        True returns the per-imputation tables instead, stacked under an outer index level ``imputation``
        (1..m).
    distance : list or one of array-like / dict, default=None
        As :func:`balance_table`'s, one per imputation (a list) or shared.
    **options
        Passed to every :func:`balance_table` (``estimand``, ``stats``, ``binary``, ``sd_denom``, ...).

    Returns
    -------
    DataFrame
        The per-imputation tables' index, a ``type`` column, then for each statistic column of
        :func:`balance_table` (``smd_un``, ..., ``ks_adj``) three columns ``<column>_min``, ``<column>_mean``,
        ``<column>_max``. The mean of variance ratios is geometric (so that 1/2 and 2 average to 1); every other
        mean is arithmetic. NaN where every imputation is NaN (a binary row's variance ratio); a NaN in any
        imputation gives NaN.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> t = rng.integers(0, 2, 50)
    >>> data = [pd.DataFrame({"x": rng.normal(size=50) + t}) for _ in range(3)]
    >>> table = balance_across_imputations(data, t, stats="smd")
    >>> list(table.columns)
    ['type', 'smd_un_min', 'smd_un_mean', 'smd_un_max']
    """
    if hasattr(X, "imputations_"):
        X, treatment, weights, distance = _from_fitted(X, treatment, weights, distance)
    if not is_imputed(X) or len(X) < 2:
        raise ValueError("X must be a list of at least 2 completed data sets (DataFrames), or a fitted "
                         "ImputedEffect.")
    if treatment is None:
        raise ValueError("treatment is required with a list of data sets.")
    m = len(X)
    weights, distance = _per_imputation(weights, m, "weights"), _per_imputation(distance, m, "distance")
    tables = [balance_table(data, treatment, w, distance=d, **options) for data, w, d in zip(X, weights, distance)]
    if per_imputation:
        return pd.concat(tables, keys=range(1, m + 1), names=["imputation"])
    return summarise_imputations(tables, abs=abs)


def summarise_imputations(tables, abs=False):
    """Min, mean (geometric for variance ratios) and max of each statistic over per-imputation balance tables."""
    first = tables[0]
    out = {"type": first["type"]}
    for column in first.columns.drop("type"):
        values = np.column_stack([t[column].reindex(first.index).to_numpy(dtype=float) for t in tables])
        ratio = column.startswith("vratio")
        if abs and ratio:
            with np.errstate(divide="ignore"):
                values = np.fmax(values, 1.0 / values)
        elif abs and column.startswith("smd"):
            values = np.abs(values)
        with np.errstate(divide="ignore", invalid="ignore"):  # log of a zero ratio is -inf, its mean 0: as it should
            out[f"{column}_min"] = values.min(axis=1)
            out[f"{column}_mean"] = np.exp(np.log(values).mean(axis=1)) if ratio else values.mean(axis=1)
            out[f"{column}_max"] = values.max(axis=1)
    return pd.DataFrame(out, index=first.index)
