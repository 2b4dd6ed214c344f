"""Completing a DataFrame with missing covariates, once per imputation, with any scikit-learn imputer.

The imputer works on numbers: categorical columns enter as one indicator per level, the treatment and the outcome
as extra columns (so that the imputation model is congenial with the analysis, as mice's default). The completed
values are then mapped back to the column's own kind: a categorical value is the level whose indicator was imputed
highest, a boolean the nearer of False/True, and a numeric value the nearest value *observed* in that column, so that
a 0/1 column stays 0/1, a count stays a whole number and an income is never negative.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from .._validation import _categories, _column_kind, level_indicator

IMPUTE_WITH = ("treatment", "outcome")


def default_imputer():
    """scikit-learn's ``IterativeImputer(sample_posterior=True, max_iter=5)``: chained equations with Bayesian ridge
    regressions, each imputed value a draw from its posterior predictive distribution (needed for proper multiple
    imputation: the imputations must differ by the uncertainty about the missing values), after five rounds of the
    chain, as R's mice (``maxit = 5``)."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (registers IterativeImputer)
    from sklearn.impute import IterativeImputer

    return IterativeImputer(sample_posterior=True, max_iter=5)


def _numeric_block(series, kind):
    """(matrix, levels): the column as float columns with NaN where missing; a categorical as level indicators."""
    na = series.isna().to_numpy()
    if kind == "categorical":
        levels = _categories(series)
        dummies = np.column_stack([level_indicator(series, level) for level in levels])
        dummies[na] = np.nan
        return dummies, levels
    return series.to_numpy(dtype=float, na_value=np.nan)[:, None], None


def _extra_columns(values, name):
    """The treatment or outcome as imputation predictors: numbers as they are, labels as indicators."""
    series = pd.Series(np.asarray(values))
    if series.isna().any():
        raise ValueError(f"{name} has {int(series.isna().sum())} missing values; ImputedEffect imputes covariates "
                         f"only: drop those rows or impute {name} beforehand (e.g. with R's mice).")
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=float)[:, None]
    codes = pd.factorize(series, sort=True)[0]
    return np.eye(codes.max() + 1)[codes][:, 1:]


def _nearest_observed(imputed, observed):
    """Each imputed value moved to the nearest of the column's observed values (vectorised)."""
    support = np.unique(observed)
    right = np.clip(np.searchsorted(support, imputed), 1, len(support) - 1) if len(support) > 1 else \
        np.zeros(len(imputed), dtype=int)
    left = np.maximum(right - 1, 0)
    take_left = np.abs(imputed - support[left]) <= np.abs(support[right] - imputed)
    return np.where(take_left, support[left], support[right])


def impute_once(X, treatment, y, imputer, seed, impute_with=IMPUTE_WITH):
    """One completed copy of ``X`` (same index, columns and kinds), imputed by a clone of ``imputer``.

    Parameters
    ----------
    X : DataFrame
        Covariates with missing values (numeric, boolean or categorical columns).
    treatment, y : array-like of shape (n_samples,)
        Complete; used as predictors when named in ``impute_with``.
    imputer : transformer with ``fit_transform``
        Cloned; its ``random_state`` (if it has one) is set to ``seed``.
    seed : int
    impute_with : tuple of {"treatment", "outcome"}

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> X = pd.DataFrame({"x": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0], "g": ["a", "b", "a", None, "b", "a"]})
    >>> done = impute_once(X, [0, 1, 0, 1, 0, 1], [1.0, 2, 1, 3, 2, 4], default_imputer(), seed=0)
    >>> int(done.isna().sum().sum()), done.loc[2, "x"] in {1.0, 2.0, 4.0, 5.0, 6.0}, done.loc[3, "g"] in {"a", "b"}
    (0, True, True)
    """
    kinds = [_column_kind(X[c]) for c in X.columns]
    blocks = [_numeric_block(X[c], k) for c, k in zip(X.columns, kinds)]
    predictors = [_extra_columns(values, name) for name, values in (("treatment", treatment), ("outcome", y))
                  if name in impute_with]
    matrix = np.column_stack([b for b, _ in blocks] + predictors)
    fitted = clone(imputer)
    if "random_state" in fitted.get_params(deep=False):
        fitted.set_params(random_state=seed)
    completed = np.asarray(fitted.fit_transform(matrix), dtype=float)
    if completed.shape != matrix.shape or not np.all(np.isfinite(completed)):
        raise ValueError(f"the imputer {type(imputer).__name__} returned an array of shape {completed.shape} with "
                         f"{int(np.sum(~np.isfinite(completed)))} non-finite values; ImputedEffect needs every entry "
                         f"of its {matrix.shape} input filled (an imputer that drops an all-missing column, e.g. "
                         "IterativeImputer without keep_empty_features=True, cannot be used: drop that column).")
    out, start = X.copy(), 0
    for column, kind, (block, levels) in zip(X.columns, kinds, blocks):
        width = block.shape[1]
        na = X[column].isna().to_numpy()
        values = completed[na, start:start + width]
        start += width
        if not na.any():
            continue
        if kind == "categorical":
            out.loc[na, column] = np.asarray(levels, dtype=object)[np.argmax(values, axis=1)]
        elif kind == "bool":  # a nullable "boolean" column keeps its dtype
            out[column] = out[column].astype(object)
            out.loc[na, column] = values[:, 0] > 0.5
            out[column] = out[column].astype(X[column].dtype)
        else:
            out[column] = out[column].astype(float)
            out.loc[na, column] = _nearest_observed(values[:, 0], block[~na, 0])
    return out
