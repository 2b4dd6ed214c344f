"""The treatment model: one place decides what a treatment is, for every estimator and diagnostic.

A treatment is one of three types:

``binary``
    Two levels, coded 0/1 with 1 the treated (focal) level. Which label is treated follows one rule (see
    :func:`check_treatment`); the package never guesses between two arbitrary labels.
``multi-category``
    K ≥ 3 unordered levels, coded 0..K−1 in the user's order (a pandas Categorical's category order, else the sorted
    labels); the first level is the reference. ``treated=`` names the focal level of an ATT (every other level is
    weighted to the focal level's covariate distribution).
``continuous``
    A numeric dose or exposure; the values are kept as float64.

``treatment_type="auto"`` decides from the data: two distinct values → binary; a categorical, string, object or
boolean treatment with more than two levels → multi-category; a float treatment with more than two distinct values
→ continuous; an integer treatment with more than two distinct values is ambiguous (doses 1–4, or four
programmes?) and raises an error asking for ``treatment_type``.

Every estimator validates its treatment here and works on the resulting :class:`Treatment`, so that binary,
multi-category, continuous and (per time point) longitudinal treatments share one representation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TREATMENT_TYPES = ("auto", "binary", "multi-category", "continuous")

# Estimands each treatment type has a meaning for (a weighter may support fewer).
ESTIMANDS = ("ATE", "ATT", "ATC", "ATO", "ATM", "ATOS")
ESTIMANDS_BY_TYPE = {
    "binary": ESTIMANDS,
    "multi-category": ("ATE", "ATT", "ATO"),
    "continuous": ("ATE",),
}


@dataclass(frozen=True)
class Treatment:
    """A validated treatment.

    Attributes
    ----------
    kind : {"binary", "multi-category", "continuous"}
    codes : ndarray of shape (n_samples,)
        Binary: int8 0/1 (1 treated). Multi-category: int64 level codes 0..K−1 (positions in ``levels``).
        Continuous: the float64 values.
    levels : tuple
        Labels of the codes in order; binary ``(control_label, treated_label)``; continuous ``()``.
    focal : int or None
        Code of the focal level: the treated level of a binary treatment (1), the ``treated=`` level of a
        multi-category one (None when not given), None for a continuous treatment.
    index : pandas.Index or None
        The index the treatment is aligned with (X's when X is a DataFrame, else the treatment Series').
    """

    kind: str
    codes: np.ndarray
    levels: tuple
    focal: int | None
    index: pd.Index | None

    @property
    def a(self):
        """The coded treatment (0/1 for binary; level codes; continuous values): what the estimators work on."""
        return self.codes

    @property
    def n_levels(self):
        """Number of levels (0 for a continuous treatment)."""
        return len(self.levels)

    @property
    def is_categorical(self):
        return self.kind != "continuous"

    def indicators(self):
        """One-hot matrix of shape (n_samples, n_levels), float64 (categorical treatments only)."""
        if not self.is_categorical:
            raise ValueError("a continuous treatment has no level indicators.")
        out = np.zeros((self.codes.shape[0], self.n_levels))
        out[np.arange(self.codes.shape[0]), self.codes] = 1.0
        return out

    def counts(self, sample_weight=None):
        """Units (or sums of ``sample_weight``) per level, in level order."""
        return np.bincount(self.codes, weights=sample_weight, minlength=self.n_levels)


def as_1d(values, name):
    """``values`` as a 1-d ndarray and the pandas index it carried (None for arrays and lists); a polars or Arrow
    column or one-column table is read through :func:`balance._validation.as_pandas`."""
    from ._validation import as_pandas  # _validation imports this module

    values = as_pandas(values)
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


def _declared_order(treatment):
    """The categories of a pandas Categorical treatment in their declared order, else None."""
    if isinstance(treatment, pd.DataFrame) and treatment.shape[1] == 1:
        treatment = treatment.iloc[:, 0]
    if isinstance(treatment, (pd.Series, pd.Categorical, pd.CategoricalIndex)) and isinstance(
            treatment.dtype, pd.CategoricalDtype):
        return list(treatment.dtype.categories)
    return None


def _sorted_levels(levels):
    try:
        return sorted(levels)
    except TypeError:  # mixed types: order by their text
        return sorted(levels, key=str)


def _resolve_kind(arr, levels, treatment_type, is_categorical_dtype):
    """The treatment type: ``treatment_type`` checked against the data, or decided from it for "auto"."""
    n_levels = len(levels)
    shown = ", ".join(map(str, _sorted_levels(levels)[:10])) + (", ..." if n_levels > 10 else "")
    if treatment_type == "binary" and n_levels != 2:
        raise ValueError(f"treatment must have exactly two levels; got {n_levels}: {shown}.")
    if n_levels < 2:
        raise ValueError(f"treatment has {n_levels} distinct value(s) ({shown}); a treatment needs at least two "
                         "groups to compare.")
    numeric = arr.dtype.kind in "iuf" and not is_categorical_dtype
    if treatment_type == "auto":
        if n_levels == 2:
            return "binary"
        if arr.dtype.kind == "f" and not is_categorical_dtype:
            return "continuous"
        if arr.dtype.kind in "iu" and not is_categorical_dtype:
            raise ValueError(
                f"treatment is an integer with {n_levels} distinct values ({shown}); say whether these are "
                "categories or doses with treatment_type='multi-category' or treatment_type='continuous' "
                "(the package never guesses).")
        return "multi-category"
    if treatment_type == "multi-category" and n_levels == 2:
        raise ValueError(f"treatment_type='multi-category' but treatment has two levels ({shown}); "
                         "use treatment_type='binary' (or 'auto').")
    if treatment_type == "continuous":
        if not numeric or arr.dtype.kind == "b":
            raise ValueError(f"treatment_type='continuous' needs a numeric treatment; got dtype {arr.dtype}.")
        if n_levels == 2:
            raise ValueError(f"treatment_type='continuous' but treatment has only two values ({shown}); "
                             "use treatment_type='binary' (or 'auto').")
    return treatment_type


def check_treatment_type(treatment_type):
    """Return ``treatment_type`` or raise a ValueError listing the choices."""
    if treatment_type not in TREATMENT_TYPES:
        raise ValueError(f"treatment_type={treatment_type!r} is not supported; choose one of {list(TREATMENT_TYPES)}.")
    return treatment_type


def check_treatment(treatment, *, treated=None, treatment_type="auto", n_samples=None, index=None, fix=None,
                    levels=None):
    """Validate a treatment, decide its type and code it (see the module docstring).

    Binary treatments: which level is treated (the *focal* level of an ATT) follows one rule:

    1. ``treated`` given: that level is treated, the other one is the control.
    2. Boolean treatment: ``True`` is treated.
    3. Numeric treatment with levels exactly {0, 1}: 1 is treated.
    4. Anything else (strings, {1, 2}, ...): an error asking for ``treated=``; the package never guesses.

    Parameters
    ----------
    treatment : array-like of shape (n_samples,)
    treated : scalar, default=None
        The treated level (binary) or the focal level (multi-category ATT).
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default="auto"
    n_samples : int, default=None
        Expected length (the number of rows of X).
    index : pandas.Index, default=None
        Index of X; a Series treatment must carry the same index (in the same order).
    fix : str, default=None
        What the error for unlabelled binary levels tells the user to do; None: pass ``treated=<level>``.
    levels : sequence, default=None
        The levels of a fitted multi-category treatment: the treatment is coded against them (new data for a
        fitted model may hold only some of them; a level not among them is an error).

    Returns
    -------
    Treatment

    Examples
    --------
    >>> import pandas as pd
    >>> from balance._treatment import check_treatment
    >>> t = check_treatment(pd.Series(["b", "a", "c", "a"]))
    >>> t.kind, t.levels, t.codes.tolist()
    ('multi-category', ('a', 'b', 'c'), [1, 0, 2, 0])
    >>> check_treatment([0, 1, 1]).kind
    'binary'
    """
    from ._validation import as_pandas, check_indexes_agree  # _validation imports this module

    check_treatment_type(treatment_type)
    treatment = as_pandas(treatment)  # a polars categorical keeps its declared order
    declared = _declared_order(treatment)
    arr, t_index = as_1d(treatment, "treatment")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(f"treatment has {arr.shape[0]} entries but X has {n_samples} rows.")
    check_indexes_agree(X=index, treatment=treatment)
    if arr.dtype.kind == "c":
        raise TypeError("treatment is complex; pass real values.")
    missing = _is_missing(arr)
    if missing.any():
        raise ValueError(f"treatment has {int(missing.sum())} missing or infinite values; remove those rows first.")
    index = t_index if index is None else index
    if levels is not None:
        return _coded_against(arr, list(levels), treated, index)
    levels = pd.unique(arr)
    kind = _resolve_kind(arr, levels, treatment_type, declared is not None)
    if kind == "binary":
        return _binary(arr, levels, treated, index, fix)
    if kind == "continuous":
        if treated is not None:
            raise ValueError(f"treated={treated!r} has no meaning for a continuous treatment; leave it None.")
        return Treatment("continuous", arr.astype(np.float64), (), None, index)
    # declared categories without units are dropped: a level nobody received has no weights, balance or effect
    present = set(levels.tolist())
    ordered = [c for c in declared if c in present] if declared is not None else _sorted_levels(list(present))
    return _coded_against(arr, ordered, treated, index)


def _coded_against(arr, ordered, treated, index):
    """A multi-category Treatment with ``arr`` coded against the levels ``ordered``."""
    unknown = set(pd.unique(arr).tolist()) - set(ordered)
    if unknown:
        raise ValueError(f"treatment has level(s) {_sorted_levels(list(unknown))} not among the fitted levels "
                         f"{ordered}.")
    codes = pd.Categorical(arr, categories=ordered).codes.astype(np.int64)
    focal = None
    if treated is not None:
        if treated not in ordered:
            raise ValueError(f"treated={treated!r} is not a level of treatment; the levels are {ordered}.")
        focal = ordered.index(treated)
    return Treatment("multi-category", codes, tuple(ordered), focal, index)


def _binary(arr, levels, treated, index, fix):
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
    return Treatment("binary", a, (control_level, treated_level), 1, index)


def check_estimand_for(estimand, treatment, supported, who):
    """Upper-cased ``estimand`` if ``who`` supports it for this treatment's type, else a one-line ValueError.

    ``supported`` is the estimator's estimands for ``treatment.kind``. A multi-category ATT needs its focal level.
    """
    kind = treatment.kind
    if not isinstance(estimand, str) or estimand.upper() not in supported:
        raise ValueError(f"estimand={estimand!r} is not supported by {who} for a {kind} treatment; choose one of "
                         f"{list(supported)}.")
    estimand = estimand.upper()
    if kind == "multi-category" and estimand == "ATT" and treatment.focal is None:
        raise ValueError(f"estimand='ATT' with a multi-category treatment needs the focal level: pass "
                         f"treated=<level>, one of {list(treatment.levels)}.")
    if kind == "multi-category" and estimand != "ATT" and treatment.focal is not None:
        # WeightIt switches to the ATT here; the package never changes the estimand behind the user's back
        raise ValueError(f"treated={treatment.levels[treatment.focal]!r} names the focal level of an ATT, but "
                         f"estimand={estimand!r} has none with a multi-category treatment: pass estimand='ATT' to "
                         "weight every level to that level, or leave treated=None.")
    return estimand
