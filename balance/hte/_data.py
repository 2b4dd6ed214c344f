"""Input checks shared by the heterogeneous-effect learners."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state

from .._validation import CovariateDesign, as_1d, check_indexes_agree, check_treatment
from .._validation import check_outcome as _check_outcome


def check_outcome(y, n, name="y", index=None):
    """A finite float outcome of length n, on X's index when it is a Series (the package's shared check)."""
    return _check_outcome(y, n, name=name, index=index)


# the learners have no treated= parameter, so the shared check's advice for other labels does not apply
TREATMENT_FIX = ("code it 0/1 or boolean (e.g. compare it with == to the level that means 1); only those are coded "
                 "automatically, and these learners take no treated= parameter")


# the learners have no missing= parameter: the design's advice to pass missing='indicator' does not apply
MISSING_FIX = ("these learners take no missing= parameter: impute X first (e.g. sklearn.impute.SimpleImputer("
               "add_indicator=True).fit_transform(X)) or drop the incomplete rows")


def validate(estimator, X, treatment, y=None, *, treated=None, mediator=None):
    """Learn the covariate design on X and check treatment and outcome; set the scikit-learn fitted metadata.

    ``mediator`` is only compared with the other inputs' pandas index here (the front-door learners check it).
    Returns ``(matrix, a, y, index)`` with ``a`` coded 0/1.
    """
    design = CovariateDesign.from_data(X, missing_fix=MISSING_FIX)
    matrix, _ = design.transform(X, drop_first=True)
    index = getattr(X, "index", None) if design.is_frame else None
    check_indexes_agree(X=index, treatment=treatment, mediator=mediator, y=y)
    t = check_treatment(treatment, treated=treated, n_samples=matrix.shape[0], index=index, fix=TREATMENT_FIX,
                        treatment_type="binary")
    estimator.design_ = design
    estimator.n_features_in_ = len(design.columns)
    if design.is_frame:
        estimator.feature_names_in_ = np.asarray(design.columns, dtype=object)
    else:
        estimator.__dict__.pop("feature_names_in_", None)
    estimator.treatment_levels_ = t.levels
    y = None if y is None else check_outcome(y, matrix.shape[0], index=index)
    return matrix, t.a.astype(np.int64), y, index


def check_choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {list(options)}.")


def check_int(value, name, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")


def check_n_jobs(value):
    """None or a non-zero integer (joblib's convention: -1 is all processors)."""
    if value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool) or value == 0):
        raise ValueError(f"n_jobs must be None or a non-zero integer; got {value!r}.")


def check_probability_bound(value, name):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 < value < 0.5:
        raise ValueError(f"{name} must be a number in (0, 0.5); got {value!r}.")


def bound_probabilities(values, bound):
    """``values`` bounded to [bound, 1 − bound], and how many entries that moved (every bound is reported)."""
    outside = (values < bound) | (values > 1 - bound)
    return np.clip(values, bound, 1 - bound), int(np.sum(outside))


def check_model(model, name, method):
    if not (hasattr(model, "fit") and hasattr(model, method)):
        raise TypeError(f"{name} must be a scikit-learn estimator with fit and {method}; got {model!r}.")


def seed_from(random_state):
    """An integer seed drawn from ``random_state`` (None, int or RandomState), for the fold splitters."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def default_classifier():
    """``HistGradientBoostingClassifier()``, imported here so that ``import balance`` stays fast."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier()


def default_regressor():
    """``HistGradientBoostingRegressor()``, imported lazily as :func:`default_classifier`."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor()
