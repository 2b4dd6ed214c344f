"""Fitting the second-stage (effect) model with case weights, including a tuned one (GridSearchCV and friends).

A search object is tuned by the **weighted** mean squared error of the pseudo-outcome, the metric of Fisher's
``wpor`` (``R/tunefit.R``), unless it names its own ``scoring`` (which is then weighted too): the case weights reach
both the candidate fits and the scorer through scikit-learn's metadata routing, switched on only inside this fit. When higher-order cross-fitting made several copies of a row, the
search's integer ``cv`` becomes ``GroupKFold`` on the row, so copies of one unit never sit on both sides of a split.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
from sklearn import config_context
from sklearn.metrics import get_scorer, make_scorer
from sklearn.model_selection import GroupKFold
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import has_fit_parameter


def weighted_mse(y_true, y_pred, sample_weight=None):
    """Σ w (y − ŷ)² / Σ w."""
    return float(np.average((np.asarray(y_true) - np.asarray(y_pred)) ** 2, weights=sample_weight))


def _inner(model):
    """The estimator that finally receives the weights (a search's estimator, a pipeline's last step)."""
    if isinstance(model, BaseSearchCV):
        model = model.estimator
    if isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def check_final_model(model, weighted):
    """Raise a TypeError when weights are needed but the final model cannot take ``sample_weight``."""
    if not (hasattr(model, "fit") and hasattr(model, "predict")):
        raise TypeError(f"final_model must be a scikit-learn regressor with fit and predict; got {model!r}.")
    if weighted and not has_fit_parameter(_inner(model), "sample_weight"):
        raise TypeError(
            f"final_model {type(_inner(model)).__name__} does not accept sample_weight in fit, which weighted "
            "pseudo-outcome regression needs; use a regressor that does (e.g. HistGradientBoostingRegressor, "
            "RandomForestRegressor, Ridge) or weighting='none'."
        )


def fit_final(model, X, phi, w, groups, weighted):
    """Fit ``model`` (already a clone) to (X, φ) with case weights ``w``; tune it if it is a search object."""
    if isinstance(model, BaseSearchCV):
        return _fit_search(model, X, phi, w if weighted else None, groups)
    if not weighted:
        return model.fit(X, phi)
    if isinstance(model, Pipeline):
        return model.fit(X, phi, **{f"{model.steps[-1][0]}__sample_weight": w})
    return model.fit(X, phi, sample_weight=w)


def _fit_search(search, X, phi, w, groups):
    grouped = len(np.unique(groups)) < len(groups)
    with config_context(enable_metadata_routing=True):
        if w is not None:
            _inner(search).set_fit_request(sample_weight=True)
        if search.scoring is None:
            scorer = make_scorer(weighted_mse, greater_is_better=False)
            search.set_params(scoring=scorer.set_score_request(sample_weight=True))
        elif w is not None and (isinstance(search.scoring, str) or hasattr(search.scoring, "set_score_request")):
            # The user's metric, weighted too (a copy: the scorer object may be shared).
            scorer = copy.deepcopy(get_scorer(search.scoring))
            search.set_params(scoring=scorer.set_score_request(sample_weight=True))
        params = {} if w is None else {"sample_weight": w}
        if grouped and (search.cv is None or isinstance(search.cv, numbers.Integral)):
            search.set_params(cv=GroupKFold(n_splits=search.cv or 5))
            params["groups"] = groups
        return search.fit(X, phi, **params)
