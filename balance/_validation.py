"""Input checks shared by every estimator: treatment, sample weights, covariates, estimands.

Every check raises a ``ValueError`` (or ``TypeError``) whose message names the offending argument, so that a
user sees what to fix rather than a NaN further down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

ESTIMANDS = ("ATE", "ATT", "ATC", "ATO", "ATM", "ATOS")


def check_estimand(estimand, supported=ESTIMANDS):
    """Return ``estimand`` upper-cased, or raise a ValueError that lists the supported ones."""
    if not isinstance(estimand, str) or estimand.upper() not in supported:
        raise ValueError(f"estimand={estimand!r} is not supported here; choose one of {list(supported)}.")
    return estimand.upper()


# --------------------------------------------------------------------------------------------------------------
# treatment
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Treatment:
    """A binary treatment coded 0/1, with the original labels it came from.

    ``levels`` is ``(control_label, treated_label)``.
    """

    a: np.ndarray
    levels: tuple
    index: pd.Index | None


def as_1d(values, name):
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise ValueError(f"{name} must be one column; got a DataFrame with {values.shape[1]} columns.")
        values = values.iloc[:, 0]
    index = values.index if isinstance(values, pd.Series) else None
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}.")
    return arr, index


def _is_missing(arr):
    if arr.dtype.kind in "fc":
        return ~np.isfinite(arr)
    if arr.dtype.kind == "O":
        return pd.isna(arr) | np.array([isinstance(v, float) and np.isinf(v) for v in arr], dtype=bool)
    return np.zeros(arr.shape, dtype=bool)


def check_treatment(treatment, *, treated=None, n_samples=None, index=None, fix=None):
    """Validate a binary treatment and code it 0/1.

    Rule for which level is treated (the *focal* level of an ATT):

    1. ``treated`` given: that level is treated, the other one is the control.
    2. Boolean treatment: ``True`` is treated.
    3. Numeric treatment with levels exactly {0, 1}: 1 is treated.
    4. Anything else (strings, {1, 2}, ...): an error asking for ``treated=``; the package never guesses.

    Parameters
    ----------
    treatment : array-like of shape (n_samples,)
    treated : scalar, default=None
        The treated level.
    n_samples : int, default=None
        Expected length (the number of rows of X).
    index : pandas.Index, default=None
        Index of X; a Series treatment must carry the same index (in the same order).
    fix : str, default=None
        What the error for other labels tells the user to do; None: pass ``treated=<level>`` (for estimators
        without that parameter, say how to recode instead).

    Returns
    -------
    Treatment
    """
    arr, t_index = as_1d(treatment, "treatment")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(f"treatment has {arr.shape[0]} entries but X has {n_samples} rows.")
    if index is not None and t_index is not None and not t_index.equals(index):
        raise ValueError(
            "treatment is a Series whose index differs from X's index; align them first "
            "(e.g. treatment.loc[X.index]) or pass plain arrays."
        )
    missing = _is_missing(arr)
    if missing.any():
        raise ValueError(f"treatment has {int(missing.sum())} missing or infinite values; remove those rows first.")
    levels = pd.unique(arr)
    if len(levels) != 2:
        raise ValueError(
            f"treatment must have exactly two levels; got {len(levels)}: {sorted(map(str, levels))[:10]}."
        )
    if treated is not None:
        if treated not in set(levels.tolist()):
            raise ValueError(f"treated={treated!r} is not a level of treatment; the levels are {sorted(map(str, levels))}.")
        treated_level = treated
    elif arr.dtype.kind == "b":
        treated_level = True
    elif arr.dtype.kind in "iuf" and set(levels.tolist()) == {0, 1}:
        treated_level = 1
    else:
        fix = fix or ("say which one is treated with treated=<level> (only 0/1 and boolean treatments are coded "
                      "automatically)")
        raise ValueError(f"treatment has levels {sorted(map(str, levels))}; {fix}.")
    a = (arr == treated_level).astype(np.int8)
    control_level = next(v for v in levels.tolist() if v != treated_level)
    return Treatment(a=a, levels=(control_level, treated_level), index=t_index if index is None else index)


# --------------------------------------------------------------------------------------------------------------
# sample weights
# --------------------------------------------------------------------------------------------------------------
def check_weights(weights, n_samples=None, *, index=None, name="weights"):
    """Return non-negative finite weights as a float array; errors name the argument ``name``.

    Zero weights are allowed (the unit takes no part); missing, infinite or negative values, a length other than
    ``n_samples`` (when given) and a Series whose index differs from ``index`` raise.
    """
    w, w_index = as_1d(weights, name)
    if n_samples is not None and w.shape[0] != n_samples:
        raise ValueError(f"{name} has {w.shape[0]} entries but X has {n_samples} rows.")
    if index is not None and w_index is not None and not w_index.equals(index):
        raise ValueError(
            f"{name} is a Series whose index differs from X's index; align them first "
            f"(e.g. {name}.loc[X.index]) or pass a plain array."
        )
    w = _finite_float(w, name)
    if np.any(w < 0):
        raise ValueError(f"{name} has {int(np.sum(w < 0))} negative values; weights must be >= 0.")
    return w


def check_outcome(y, n_samples, *, index=None, name="y"):
    """Return a finite numeric outcome of length ``n_samples`` as float64; errors name the argument."""
    values, y_index = as_1d(y, name)
    if values.shape[0] != n_samples:
        raise ValueError(f"{name} has {values.shape[0]} entries but X has {n_samples} rows.")
    if index is not None and y_index is not None and not y_index.equals(index):
        raise ValueError(f"{name} is a Series whose index differs from X's index; align them first.")
    return _finite_float(values, name)


def _finite_float(values, name):
    """``values`` as float64; a TypeError if they are not numbers, a ValueError counting missing/infinite ones."""
    try:
        values = values.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric.") from exc
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} has {int(np.sum(~np.isfinite(values)))} missing or infinite values.")
    return values


def check_sample_weight(sample_weight, n_samples, *, index=None):
    """Return sampling (base) weights as a float array; ``None`` means all ones.

    Zero weights are allowed (the unit takes no part); negative, missing or infinite weights, and weights that are
    all zero, raise a ValueError.
    """
    if sample_weight is None:
        return np.ones(n_samples)
    sw = check_weights(sample_weight, n_samples, index=index, name="sample_weight")
    if not np.any(sw > 0):
        raise ValueError("sample_weight is zero for every unit.")
    return sw


# --------------------------------------------------------------------------------------------------------------
# covariates
# --------------------------------------------------------------------------------------------------------------
def _column_kind(series):
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_numeric_dtype(series) and not isinstance(series.dtype, pd.CategoricalDtype):
        return "numeric"
    if isinstance(series.dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
        _check_text_column(series)
        return "categorical"
    raise TypeError(f"covariate {series.name!r} has dtype {series.dtype}, which cannot be used as a covariate.")


def _check_text_column(series, min_rows=10):
    """Refuse text that is almost surely not a set of categories: numbers stored as text, or a distinct value in
    every row (an identifier or free text), either of which would silently become one dummy per value."""
    values = series.dropna()
    levels = values.unique()
    as_numbers = pd.to_numeric(pd.Series(levels, dtype=object), errors="coerce")
    if len(levels) and all(isinstance(v, str) for v in levels) and as_numbers.notna().all():
        raise TypeError(f"covariate {series.name!r} holds numbers stored as text; convert it with pd.to_numeric, or "
                        "to a pandas Categorical if its values are category codes.")
    if len(values) >= min_rows and len(levels) == len(values):
        raise ValueError(f"covariate {series.name!r} is text with a different value in every row (an identifier or "
                         "free text?); drop it, or group its values into categories (a pandas Categorical is kept "
                         "as given).")


def _categories(series):
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(series.dropna().unique())
        return [c for c in series.cat.categories if c in present]  # declared order, unused levels dropped
    return sorted(series.dropna().unique(), key=str)


MISSING_OPTIONS = ("error", "indicator")


@dataclass(frozen=True)
class CovariateDesign:
    """How raw covariates become numeric columns; learned once on the fitting data.

    Numeric columns pass through, booleans become 0/1, categorical (category, object or string) columns become one
    indicator per level named ``<column>_<level>``. For model fitting the first level is the reference and is
    dropped (``drop_first=True``, as R's treatment contrasts); diagnostics show every level.

    Missing values raise with ``missing="error"``. With ``missing="indicator"`` (WeightIt's and cobalt's approach)
    every column that has missing values in the fitting data gets a 0/1 indicator ``<column>:<NA>`` placed after it,
    and its missing entries are filled with the median of the observed values (numeric columns) or left out of every
    level's dummy (categorical columns).
    """

    columns: tuple
    kinds: tuple
    categories: tuple  # per column: tuple of levels for categorical columns, else None
    is_frame: bool
    missing: str = "error"
    fills: tuple = ()  # per column: None (no missing values in fit) or the fill value (nan for categoricals)

    @classmethod
    def from_data(cls, X, missing="error"):
        """Learn the design of ``X`` (a DataFrame, or an array-like of numbers)."""
        if missing not in MISSING_OPTIONS:
            raise ValueError(f"missing={missing!r}; choose one of {list(MISSING_OPTIONS)}.")
        if isinstance(X, pd.DataFrame):
            if X.shape[1] == 0:
                raise ValueError("X has no columns.")
            columns = tuple(str(c) for c in X.columns)
            if len(set(columns)) != len(columns):
                raise ValueError("X has duplicated column names.")
            frame = X
            kinds = tuple(_column_kind(X[c]) for c in X.columns)
            cats = tuple(tuple(_categories(X[c])) if k == "categorical" else None for c, k in zip(X.columns, kinds))
        else:
            arr = _as_2d_numeric(X)
            columns = tuple(f"x{j}" for j in range(arr.shape[1]))
            frame = pd.DataFrame(arr, columns=columns)
            kinds, cats = ("numeric",) * len(columns), (None,) * len(columns)
        fills = tuple(_fill_value(frame[c], k) if missing == "indicator" else None
                      for c, k in zip(frame.columns, kinds))
        return cls(columns, kinds, cats, isinstance(X, pd.DataFrame), missing, fills)

    def transform(self, X, *, drop_first=True, impute=True):
        """Return ``(matrix, names)``: a float64 array with one column per expanded covariate.

        ``impute=False`` leaves the missing entries NaN (a numeric value, or every level indicator of a categorical
        column) instead of filling them, for statistics over the observed values (balance tables, as cobalt); the
        ``<column>:<NA>`` indicators are there either way.
        """
        if not self.is_frame:
            arr = _as_2d_numeric(X)
            if arr.shape[1] != len(self.columns):
                raise ValueError(f"X has {arr.shape[1]} columns; the estimator was fitted with {len(self.columns)}.")
            if np.isinf(arr).any() or self.missing == "error":
                _check_finite(arr, self.columns, hint=self.missing == "error")
            if self.missing == "error":
                return arr, list(self.columns)
            X = pd.DataFrame(arr, columns=self.columns)
        elif not isinstance(X, pd.DataFrame):
            raise TypeError("the estimator was fitted on a DataFrame; pass a DataFrame with the same columns.")
        absent = [c for c in self.columns if c not in map(str, X.columns)]
        if absent:
            raise ValueError(f"X lacks the column(s) {absent} it was fitted with.")
        X = X.rename(columns=str)
        if all(kind == "numeric" for kind in self.kinds) and not any(f is not None for f in self.fills):
            # all-numeric frame without missing-value handling: one conversion instead of one per column
            arr = X[list(self.columns)].to_numpy(dtype=np.float64, na_value=np.nan)
            if not np.all(np.isfinite(arr)):
                self._raise_missing(X, arr)
            return arr, list(self.columns)
        blocks, names = [], []
        fills = self.fills or (None,) * len(self.columns)
        for col, kind, levels, fill in zip(self.columns, self.kinds, self.categories, fills):
            s = X[col]
            na = s.isna().to_numpy()
            if na.any() and fill is None:
                hint = ("; pass missing='indicator' to add missingness indicators (as WeightIt and cobalt do)"
                        if self.missing == "error" else ", but had none in the data the estimator was fitted on")
                raise ValueError(f"covariate {col!r} has {int(na.sum())} missing values{hint}.")
            if kind == "categorical":
                unknown = set(s[~na].unique()) - set(levels)
                if unknown:
                    raise ValueError(f"covariate {col!r} has level(s) {sorted(map(str, unknown))} not seen in fit.")
                for level in levels[1:] if drop_first else levels:
                    dummy = (s == level).to_numpy(dtype=np.float64)
                    blocks.append(dummy if impute else np.where(na, np.nan, dummy))
                    names.append(f"{col}_{level}")
            else:
                try:
                    values = s.to_numpy(dtype=np.float64, na_value=np.nan)
                except (TypeError, ValueError) as exc:
                    raise TypeError(f"covariate {col!r} cannot be converted to numbers.") from exc
                _check_finite(values[~na, None], [col])
                values = np.where(na, fill if impute and fill is not None else np.nan, values)
                blocks.append(values)
                names.append(col)
            if fill is not None:
                blocks.append(na.astype(np.float64))
                names.append(f"{col}:<NA>")
        return np.column_stack(blocks) if blocks else np.empty((len(X), 0)), names

    def _raise_missing(self, X, arr):
        """Name the first column with missing or infinite values, as the column-by-column path does."""
        j = int(np.flatnonzero(~np.all(np.isfinite(arr), axis=0))[0])
        n_missing = int(X[self.columns[j]].isna().sum())
        if n_missing:
            hint = ("; pass missing='indicator' to add missingness indicators (as WeightIt and cobalt do)"
                    if self.missing == "error" else ", but had none in the data the estimator was fitted on")
            raise ValueError(f"covariate {self.columns[j]!r} has {n_missing} missing values{hint}.")
        raise ValueError(f"X has missing or infinite values in column(s) {[self.columns[j]]}.")

    def indicator_flags(self, *, drop_first=True):
        """Per column of :meth:`transform`'s output: True for level dummies, booleans and missingness indicators."""
        return _indicator_flags(self, drop_first)


def _indicator_flags(design, drop_first):
    """Per expanded column of ``design``: True for level dummies, booleans and missingness indicators."""
    flags = []
    fills = design.fills or (None,) * len(design.columns)
    for kind, levels, fill in zip(design.kinds, design.categories, fills):
        if kind == "categorical":
            flags += [True] * (len(levels) - drop_first)
        else:
            flags.append(kind == "bool")
        if fill is not None:
            flags.append(True)
    return np.array(flags, dtype=bool)


def _fill_value(series, kind):
    """None when the column is complete; else the median of its observed values (nan for categoricals)."""
    if not series.isna().any():
        return None
    if series.isna().all():
        raise ValueError(f"covariate {series.name!r} is missing for every unit.")
    if kind == "categorical":
        return np.nan
    return float(np.median(series.dropna().to_numpy(dtype=np.float64)))


def _as_2d_numeric(X):
    if sp.issparse(X):
        raise TypeError("sparse X is not supported; pass a dense array (X.toarray()).")
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("X must be numeric, or a DataFrame (which may hold categorical columns).") from exc
    if arr.ndim == 1:
        raise ValueError("X must be two-dimensional; reshape a single covariate with X.reshape(-1, 1).")
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"X must be a 2-d array with at least one column; got shape {arr.shape}.")
    return arr


def _check_finite(arr, names, hint=False):
    bad = ~np.isfinite(arr)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        extra = " (for missing values, missing='indicator' adds missingness indicators)" if hint else ""
        raise ValueError(f"X has missing or infinite values in column(s) {cols}{extra}.")


def check_constant(matrix, names):
    """Raise if a column of the model matrix is constant (it carries no information and breaks the fit)."""
    if matrix.shape[0] == 0:
        return
    const = np.flatnonzero(np.ptp(matrix, axis=0) == 0)
    if const.size:
        raise ValueError(f"covariate(s) {[names[j] for j in const]} are constant; remove them.")


def check_full_rank(matrix, names):
    """Raise naming the columns that are linear combinations of the others (with an intercept)."""
    from scipy.linalg import qr

    n, k = matrix.shape
    if k + 1 > n:  # decided without the O(k^3) eigen-decomposition, which takes minutes at k = 10,000
        raise ValueError(f"covariates are perfectly collinear: {k} covariate columns (categorical ones expanded) "
                         f"and an intercept but only {n} units; use fewer covariates than units.")
    # Gram matrix of the scaled [1, X] without materialising the n x (k + 1) design; scaled before the products
    # so that covariates of magnitude 1e200 or 1e-200 neither overflow nor underflow
    scale = np.abs(matrix).max(axis=0)
    matrix = matrix / np.where(scale > 0, scale, 1.0)
    sums = matrix.sum(axis=0)
    gram = np.block([[np.array([[len(matrix)]], dtype=float), sums[None, :]], [sums[:, None], matrix.T @ matrix]])
    eig = np.linalg.eigvalsh(gram)
    if eig[0] > eig[-1] * 1e-12:  # well conditioned: full rank, no need for the O(n k^2) pivoted QR
        return
    design = np.column_stack([np.ones(len(matrix)), matrix])
    r, piv = qr(design, mode="r", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.sum(diag > diag[0] * max(design.shape) * np.finfo(float).eps * 10))
    if rank < design.shape[1]:
        dropped = sorted(int(j) - 1 for j in piv[rank:])
        cols = [names[j] if j >= 0 else "(intercept)" for j in dropped]
        raise ValueError(f"covariates are perfectly collinear: {cols} are linear combinations of the others.")


@dataclass(frozen=True)
class FitData:
    """Validated inputs of a weighting fit."""

    X: np.ndarray  # model matrix (reference-level coding), float64, no intercept
    names: list
    a: np.ndarray  # 0/1 treatment
    sample_weight: np.ndarray
    index: pd.Index | None  # X's index when X is a DataFrame
    treatment: Treatment


def validate_fit_data(design, X, treatment, sample_weight=None, *, treated=None, min_group_size=1):
    """Check X, treatment and sample weights together, returning a :class:`FitData`."""
    matrix, names = design.transform(X, drop_first=True)
    n = matrix.shape[0]
    index = X.index if isinstance(X, pd.DataFrame) else None
    t = check_treatment(treatment, treated=treated, n_samples=n, index=index)
    sw = check_sample_weight(sample_weight, n, index=index)
    for arm, label in ((1, "treated"), (0, "control")):
        size = int(np.sum((t.a == arm) & (sw > 0)))
        if size < min_group_size:
            raise ValueError(f"the {label} group has {size} units with positive weight; at least {min_group_size} needed.")
    return FitData(matrix, names, t.a, sw, index, t)
