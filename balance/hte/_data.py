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
    """The default propensity model: standardised, L2-penalised logistic regression with the penalty chosen by
    5-fold cross-validated log-loss (``LogisticRegressionCV``).

    A flexible classifier overfits the propensity on small samples: with default ``HistGradientBoostingClassifier``
    on IHDP (747 children, 139 treated) 165 of 747 out-of-fold propensities fell outside [0.01, 0.99], and the
    inverse-propensity terms of the DR, IVW-DR and R pseudo-outcomes swamped the signal
    (benchmarks/results/hte_ihdp.md). The doubly robust pseudo-outcome needs the propensity to be well calibrated
    more than flexible; the penalised logit is, and pass any classifier to override it. Imported lazily so that
    ``import balance`` stays fast.
    """
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # scikit-learn 1.9 warns unless the 1.10 defaults are chosen explicitly; older versions lack the parameters
    future = ({"l1_ratios": (0.0,), "use_legacy_attributes": False}
              if "use_legacy_attributes" in LogisticRegressionCV().get_params() else {})
    return make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=10, cv=5, scoring="neg_log_loss", max_iter=1000,
                                                                **future))


def default_regressor():
    """``HistGradientBoostingRegressor()``, imported lazily as :func:`default_classifier`."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor()


def default_final_regressor():
    """The default second-stage model: ``HistGradientBoostingRegressor(early_stopping=True)``.

    Pseudo-outcomes are far noisier than outcomes; stopping on a held-out 10 % (scikit-learn only does so by
    default above 10,000 rows) keeps the boosting from fitting that noise on small samples.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(early_stopping=True)


def default_correction_regressor():
    """The default second stage of the AIPW pseudo-outcome: a standardised ridge regression of the correction
    φ̂ − (μ̂₁ − μ̂₀), its penalty chosen by (weighted) leave-one-out error over 10⁻² … 10⁷ (``RidgeCV``).

    The correction is mostly noise when the outcome models are good (its conditional mean is the plug-in's bias),
    so the ridge shrinks it towards its (weighted) mean, which is kept unpenalised: the (weighted) average of
    τ̂ = μ̂₁ − μ̂₀ + ĝ over the sample is the mean pseudo-outcome, the AIPW (overlap-weighted) effect.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 7, 40)))


def seeded(model, seed):
    """A clone of ``model`` whose unset ``random_state`` parameters (its own and its nested estimators') are drawn
    from ``seed``, so that a learner's ``random_state`` makes every randomised nuisance fit reproducible.
    Parameters set by the user are kept."""
    from sklearn.base import clone

    model = clone(model)
    rng = np.random.default_rng(seed)
    params = model.get_params(deep=True)
    fixed = {name: int(rng.integers(np.iinfo(np.int32).max)) for name in sorted(params)
             if (name == "random_state" or name.endswith("__random_state")) and params[name] is None}
    return model.set_params(**fixed) if fixed else model
