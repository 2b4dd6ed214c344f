"""Input checks shared by every estimator: treatment, sample weights, covariates, estimands.

Every check raises a ``ValueError`` (or ``TypeError``) whose message names the offending argument, so that a
user sees what to fix rather than a NaN further down.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._dask import is_dask_collection
from ._treatment import ESTIMANDS, Treatment, as_1d, check_treatment  # noqa: F401 (re-exported)

def as_pandas(data):
    """``data`` as pandas when it is another library's table or column; anything else unchanged.

    The one place where foreign inputs become pandas, so that every check after it sees a DataFrame or Series:
    objects exporting the Arrow PyCapsule interface (``__arrow_c_stream__`` / ``__arrow_c_array__``: polars
    DataFrames and Series, pyarrow Tables, RecordBatches, Arrays and ChunkedArrays, DuckDB results, ...) and
    DataFrames supporting the interchange protocol (``__dataframe__``). A table becomes a DataFrame (columns and
    their names kept, string and categorical columns included, a fresh RangeIndex), a column a Series.

    Examples
    --------
    >>> import numpy as np
    >>> as_pandas(np.arange(3)) is not None  # arrays, lists and pandas objects pass through
    True
    """
    if isinstance(data, (pd.DataFrame, pd.Series, pd.Index, np.ndarray, list, tuple)) or sp.issparse(data):
        return data
    if is_dask_collection(data):  # the estimators that take dask input dispatch before any in-memory check
        raise TypeError(f"an input is a dask {type(data).__name__}, but this function needs the data in memory: "
                        "compute it (.compute()) or a sample of it; the estimators that fit on dask are listed in "
                        "docs/dask.md.")
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        return _from_arrow(data)
    if hasattr(data, "__dataframe__"):
        with warnings.catch_warnings():  # pandas deprecates its reader, not the user's table: nothing to act on
            warnings.filterwarnings("ignore", message="The Dataframe Interchange Protocol is deprecated")
            return pd.api.interchange.from_dataframe(data)
    return data


def _from_arrow(data):
    if not hasattr(pd.DataFrame, "from_arrow"):  # pandas < 3: the producer's own conversion
        if hasattr(data, "to_pandas"):
            return data.to_pandas()
        raise TypeError(f"reading a {type(data).__name__} needs pandas >= 3.0 (DataFrame.from_arrow); upgrade pandas "
                        "or pass a pandas DataFrame.")
    try:
        return pd.DataFrame.from_arrow(data)
    except ValueError:  # not a table (Arrow's schema is not a struct): a single column
        return pd.Series.from_arrow(data)


def level_indicator(series, level):
    """1.0 where ``series`` equals ``level``, else 0.0; a missing value is in no level (pandas' nullable dtypes
    compare <NA> to <NA>; fillna first, since pyarrow-backed booleans refuse a float na_value in to_numpy)."""
    return (series == level).fillna(False).to_numpy(dtype=np.float64)


def take_rows(values, rows):
    """Rows of a DataFrame, Series or array-like by position (pandas objects keep their index; a polars or Arrow
    table becomes a DataFrame first, see :func:`as_pandas`)."""
    values = as_pandas(values)
    return values.iloc[rows] if isinstance(values, (pd.DataFrame, pd.Series)) else np.asarray(values)[rows]


def check_estimand(estimand, supported=ESTIMANDS):
    """Return ``estimand`` upper-cased, or raise a ValueError that lists the supported ones."""
    if not isinstance(estimand, str) or estimand.upper() not in supported:
        raise ValueError(f"estimand={estimand!r} is not supported here; choose one of {list(supported)}.")
    return estimand.upper()


# --------------------------------------------------------------------------------------------------------------
# pandas indexes
# --------------------------------------------------------------------------------------------------------------
def check_indexes_agree(**inputs):
    """Return the pandas index the inputs share, or None when none carries one; raise if two of them differ.

    The package pairs per-unit inputs by position, so pandas inputs (a DataFrame, a Series, or a bare
    ``pandas.Index`` standing for one) must carry the same index in the same order; pairing a Series with another
    index by position would silently mismatch units. Inputs of another type (arrays, lists, None) carry no index and
    are not compared. Inputs of different lengths are left to the callers' length checks, whose messages say so.

    Parameters
    ----------
    **inputs
        The inputs by the name the user knows them by (``X=X, treatment=treatment, ...``); the first one with an
        index is the reference the others are compared with.

    Returns
    -------
    pandas.Index or None

    Examples
    --------
    >>> import pandas as pd
    >>> check_indexes_agree(X=[[1.0], [2.0]], treatment=pd.Series([0, 1], index=[5, 6]), y=[1.0, 2.0])
    Index([5, 6], dtype='int64')
    >>> check_indexes_agree(treatment=pd.Series([0, 1]), y=pd.Series([1.0, 2.0], index=[1, 0]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: y is a Series whose index differs from treatment's index; ...
    """
    ref_name, ref = None, None
    for name, values in inputs.items():
        index = values if isinstance(values, pd.Index) else getattr(values, "index", None)
        if not isinstance(index, pd.Index):
            continue
        if ref is None:
            ref_name, ref = name, index
        elif len(index) == len(ref) and not index.equals(ref):
            kind = "DataFrame" if isinstance(values, pd.DataFrame) else "Series"
            raise ValueError(
                f"{name} is a {kind} whose index differs from {ref_name}'s index; pandas inputs are matched by "
                f"index, never paired by position: align them first ({name}.loc[{ref_name}.index]), or drop both "
                "indexes (.reset_index(drop=True)) or pass plain arrays (.to_numpy()) if the rows already match."
            )
    return ref


# --------------------------------------------------------------------------------------------------------------
# sample weights
# --------------------------------------------------------------------------------------------------------------
def check_weights(weights, n_samples=None, *, index=None, name="weights"):
    """Return non-negative finite weights as a float array; errors name the argument ``name``.

    Zero weights are allowed (the unit takes no part); missing, infinite or negative values, a length other than
    ``n_samples`` (when given) and a Series whose index differs from ``index`` raise.
    """
    w, _ = as_1d(weights, name)
    if n_samples is not None and w.shape[0] != n_samples:
        raise ValueError(f"{name} has {w.shape[0]} entries but X has {n_samples} rows.")
    check_indexes_agree(X=index, **{name: weights})
    w = _finite_float(w, name)
    if np.any(w < 0):
        raise ValueError(f"{name} has {int(np.sum(w < 0))} negative values; weights must be >= 0.")
    return w


def check_outcome(y, n_samples, *, index=None, name="y"):
    """Return a finite numeric outcome of length ``n_samples`` as float64; errors name the argument."""
    values, _ = as_1d(y, name)
    if values.shape[0] != n_samples:
        raise ValueError(f"{name} has {values.shape[0]} entries but X has {n_samples} rows.")
    check_indexes_agree(X=index, **{name: y})
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
    if pd.api.types.is_complex_dtype(series):
        raise TypeError(f"covariate {series.name!r} holds complex numbers, whose imaginary part would be dropped; "
                        "pass its real and imaginary parts (or modulus and angle) as separate real columns.")
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
    missing_fix: str | None = None  # what errors about missing values advise; None: missing='indicator'

    @classmethod
    def from_data(cls, X, missing="error", missing_fix=None):
        """Learn the design of ``X`` (a DataFrame, or an array-like of numbers).

        ``missing_fix`` replaces the advice of errors about missing values (for estimators without ``missing=``).
        """
        if missing not in MISSING_OPTIONS:
            raise ValueError(f"missing={missing!r}; choose one of {list(MISSING_OPTIONS)}.")
        X = as_pandas(X)
        if isinstance(X, pd.DataFrame):
            _check_flat_columns(X)
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
        return cls(columns, kinds, cats, isinstance(X, pd.DataFrame), missing, fills, missing_fix)

    def transform(self, X, *, drop_first=True, impute=True):
        """Return ``(matrix, names)``: a float64 array with one column per expanded covariate.

        ``impute=False`` leaves the missing entries NaN (a numeric value, or every level indicator of a categorical
        column) instead of filling them, for statistics over the observed values (balance tables, as cobalt); the
        ``<column>:<NA>`` indicators are there either way.
        """
        X = as_pandas(X)
        if not self.is_frame:
            arr = _as_2d_numeric(X)
            if arr.shape[1] != len(self.columns):
                raise ValueError(f"X has {arr.shape[1]} columns; the estimator was fitted with {len(self.columns)}.")
            if np.isinf(arr).any() or self.missing == "error":
                _check_finite(arr, self.columns, hint=self._missing_hint() if self.missing == "error" else "")
            if self.missing == "error":
                return arr, list(self.columns)
            X = pd.DataFrame(arr, columns=self.columns)
        elif not isinstance(X, pd.DataFrame):
            raise TypeError("the estimator was fitted on a DataFrame; pass a DataFrame with the same columns.")
        _check_flat_columns(X)
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
                raise ValueError(f"covariate {col!r} has {int(na.sum())} missing values{self._missing_hint()}.")
            if kind == "categorical":
                unknown = set(s[~na].unique()) - set(levels)
                if unknown:
                    raise ValueError(f"covariate {col!r} has level(s) {sorted(map(str, unknown))} not seen in fit.")
                for level in levels[1:] if drop_first else levels:
                    dummy = level_indicator(s, level)
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
            raise ValueError(f"covariate {self.columns[j]!r} has {n_missing} missing values{self._missing_hint()}.")
        raise ValueError(f"X has missing or infinite values in column(s) {[self.columns[j]]}.")

    def _missing_hint(self):
        if self.missing != "error":
            return ", but had none in the data the estimator was fitted on"
        return "; " + (self.missing_fix or "pass missing='indicator' to add missingness indicators (as WeightIt and "
                                           "cobalt do)")

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


def _check_flat_columns(X):
    if isinstance(X.columns, pd.MultiIndex):
        raise ValueError(f"X has MultiIndex columns ({X.columns.nlevels} levels), which cannot name covariates; "
                         "flatten them first, e.g. X.columns = ['_'.join(map(str, c)) for c in X.columns].")


def _as_2d_numeric(X):
    if sp.issparse(X):
        raise TypeError("sparse X is not supported; pass a dense array (X.toarray()).")
    if np.iscomplexobj(X):
        raise TypeError("X holds complex numbers, whose imaginary parts would be dropped; pass real and imaginary "
                        "parts (or modulus and angle) as separate real columns.")
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("X must be numeric, or a DataFrame (which may hold categorical columns).") from exc
    if arr.ndim == 1:
        raise ValueError("X must be two-dimensional; reshape a single covariate with X.reshape(-1, 1).")
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"X must be a 2-d array with at least one column; got shape {arr.shape}.")
    return arr


def _check_finite(arr, names, hint=""):
    bad = ~np.isfinite(arr)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        extra = f" (for missing values{hint})" if hint else ""
        raise ValueError(f"X has missing or infinite values in column(s) {cols}{extra}.")


def check_constant(matrix, names):
    """Raise if a column of the model matrix is constant (it carries no information and breaks the fit)."""
    if matrix.shape[0] == 0:
        return
    check_constant_range(matrix.min(axis=0), matrix.max(axis=0), names)


def check_constant_range(lo, hi, names):
    """:func:`check_constant` from each column's smallest and largest value (e.g. reduced over dask blocks)."""
    const = np.flatnonzero(np.asarray(lo) == np.asarray(hi))
    if const.size:
        raise ValueError(f"covariate(s) {[names[j] for j in const]} are constant; remove them.")


def check_more_units_than_columns(k, n):
    """Raise when ``k`` covariate columns and an intercept cannot be estimated from ``n`` units."""
    if k + 1 > n:  # decided without the O(k^3) eigen-decomposition, which takes minutes at k = 10,000
        raise ValueError(f"covariates are perfectly collinear: {k} covariate columns (categorical ones expanded) "
                         f"and an intercept but only {n} units; use fewer covariates than units.")


def well_conditioned(eigenvalues):
    """Whether the ascending eigenvalues of a Gram matrix (of columns scaled to at most 1) certify full rank: the
    smallest above 1e-12 of the largest. Otherwise the matrix is, or may be, rank deficient."""
    return bool(eigenvalues[0] > eigenvalues[-1] * 1e-12)


def check_full_rank(matrix, names):
    """Raise naming the columns that are linear combinations of the others (with an intercept)."""
    from scipy.linalg import qr

    n, k = matrix.shape
    check_more_units_than_columns(k, n)
    # Gram matrix of the scaled [1, X] without materialising the n x (k + 1) design; scaled before the products
    # so that covariates of magnitude 1e200 or 1e-200 neither overflow nor underflow
    scale = np.abs(matrix).max(axis=0)
    matrix = matrix / np.where(scale > 0, scale, 1.0)
    sums = matrix.sum(axis=0)
    gram = np.block([[np.array([[len(matrix)]], dtype=float), sums[None, :]], [sums[:, None], matrix.T @ matrix]])
    if well_conditioned(np.linalg.eigvalsh(gram)):  # full rank: no need for the O(n k^2) pivoted QR
        return
    design = np.column_stack([np.ones(len(matrix)), matrix])
    r, piv = qr(design, mode="r", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.sum(diag > diag[0] * max(design.shape) * np.finfo(float).eps * 10))
    if rank < design.shape[1]:
        dropped = sorted(int(j) - 1 for j in piv[rank:])
        cols = [names[j] if j >= 0 else "(intercept)" for j in dropped]
        fix = "remove them"
        if any(j >= 0 and np.isin(matrix[:, j], (0.0, 1.0)).all() for j in dropped):  # indicators: likely one-hot
            fix += (", or, if they are one-hot indicators, keep all but one level of each variable (the dropped level "
                    "is the reference): OneHotEncoder(drop='first') in a Pipeline, pd.get_dummies(..., drop_first=True), "
                    "or pass the variable as a categorical DataFrame column, which is encoded that way")
        raise ValueError(f"covariates are perfectly collinear: {cols} are linear combinations of the others; {fix}.")


@dataclass(frozen=True)
class FitData:
    """Validated inputs of a weighting fit."""

    X: np.ndarray  # model matrix (reference-level coding), float64, no intercept
    names: list
    a: np.ndarray  # the coded treatment: 0/1 (binary), level codes (multi-category), values (continuous)
    sample_weight: np.ndarray
    index: pd.Index | None  # X's index when X is a DataFrame
    treatment: Treatment


def validate_fit_data(design, X, treatment, sample_weight=None, *, treated=None, treatment_type="auto",
                      min_group_size=1, levels=None):
    """Check X, treatment and sample weights together, returning a :class:`FitData`."""
    X = as_pandas(X)
    matrix, names = design.transform(X, drop_first=True)
    n = matrix.shape[0]
    index = X.index if isinstance(X, pd.DataFrame) else None
    check_indexes_agree(X=index, treatment=treatment, sample_weight=sample_weight)
    t = check_treatment(treatment, treated=treated, treatment_type=treatment_type, n_samples=n, index=index,
                        levels=levels)
    sw = check_sample_weight(sample_weight, n, index=index)
    if levels is None:  # new data for a fitted model (levels given) may lack some levels
        check_group_sizes(t, sw, min_group_size)
    return FitData(matrix, names, t.a, sw, index, t)


def check_group_sizes(treatment, sample_weight, min_group_size=1, *, sizes=None):
    """Raise if a treatment group (binary or multi-category) has fewer than ``min_group_size`` units with positive
    sampling weight (counted here, or given per group code as ``sizes``, e.g. reduced over dask blocks)."""
    if not treatment.is_categorical:
        return
    if sizes is None:
        sizes = np.bincount(treatment.codes[sample_weight > 0], minlength=treatment.n_levels)
    if treatment.kind == "binary":
        labels = ("control group", "treated group")
    else:
        labels = tuple(f"treatment level {level!r}" for level in treatment.levels)
    for code in (1, 0) if treatment.kind == "binary" else range(treatment.n_levels):
        if sizes[code] < min_group_size:
            raise ValueError(f"the {labels[code]} has {int(sizes[code])} units with positive weight; at least "
                             f"{min_group_size} needed.")
