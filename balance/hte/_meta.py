"""T- and S-learners: CATE as a difference of outcome regressions (not pseudo-outcome regressions).

Both fit on the full data without cross-fitting (as Fisher's ``wpor::t_learner``); see Künzel et al. (2019).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from . import _data


class _DifferenceLearner(BaseEstimator):
    """Shared fit of the T- and S-learners: validate, then ``_fit_models(matrix, a, y, model)``."""

    def __init__(self, outcome_model=None):
        self.outcome_model = outcome_model

    def fit(self, X, treatment, y):
        """Fit clone(s) of ``outcome_model``. Returns self."""
        model = _data.default_regressor() if self.outcome_model is None else self.outcome_model
        _data.check_model(model, "outcome_model", "predict")
        matrix, a, y, _ = _data.validate(self, X, treatment, y)
        self._fit_models(matrix, a, y, model)
        return self


class TLearner(_DifferenceLearner):
    """T-learner: one outcome model per arm, τ̂(x) = μ̂₁(x) − μ̂₀(x).

    Parameters
    ----------
    outcome_model : regressor, default=None
        Cloned once per arm; None: ``_data.default_regressor()``.

    Attributes
    ----------
    model1_, model0_ : regressor
        Fitted clones on the treated and on the controls.

    References
    ----------
    Künzel, S. R., Sekhon, J. S., Bickel, P. J., & Yu, B. (2019). Metalearners for estimating heterogeneous
    treatment effects using machine learning. PNAS 116, 4156–4165.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> from balance.hte import TLearner, make_hte_setup
    >>> d = make_hte_setup("C", n=500, random_state=0)
    >>> TLearner(LinearRegression()).fit(d.X, d.treatment, d.y).predict(d.X[:2]).shape
    (2,)
    """

    def _fit_models(self, matrix, a, y, model):
        self.model1_ = clone(model).fit(matrix[a == 1], y[a == 1])
        self.model0_ = clone(model).fit(matrix[a == 0], y[a == 0])

    def predict(self, X):
        """τ̂(x) = μ̂₁(x) − μ̂₀(x), shape (n_samples,)."""
        check_is_fitted(self, "model1_")
        matrix, _ = self.design_.transform(X, drop_first=True)
        return np.asarray(self.model1_.predict(matrix) - self.model0_.predict(matrix), dtype=float)


class SLearner(_DifferenceLearner):
    """S-learner: one model of Y on (X, A), τ̂(x) = f̂(x, 1) − f̂(x, 0).

    Parameters
    ----------
    outcome_model : regressor, default=None
        None: ``_data.default_regressor()``.

    Attributes
    ----------
    model_ : regressor
        Fitted clone, trained on [X, A] (treatment as the last column).

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> from balance.hte import SLearner, make_hte_setup
    >>> d = make_hte_setup("C", n=500, random_state=0)
    >>> SLearner(LinearRegression()).fit(d.X, d.treatment, d.y).predict(d.X[:2]).shape
    (2,)
    """

    def _fit_models(self, matrix, a, y, model):
        self.model_ = clone(model).fit(np.column_stack([matrix, a]), y)

    def predict(self, X):
        """τ̂(x) = f̂(x, 1) − f̂(x, 0), shape (n_samples,)."""
        check_is_fitted(self, "model_")
        matrix, _ = self.design_.transform(X, drop_first=True)
        ones = np.ones(len(matrix))
        return np.asarray(self.model_.predict(np.column_stack([matrix, ones]))
                          - self.model_.predict(np.column_stack([matrix, 0 * ones])), dtype=float)
