"""T- and S-learners: CATE as a difference of outcome regressions (not pseudo-outcome regressions).

Both fit on the full data without cross-fitting (as Fisher's ``wpor::t_learner``); see Künzel et al. (2019).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from . import _data
from ._inference import _table


class _DifferenceLearner(BaseEstimator):
    """Shared fit of the T- and S-learners: validate, then ``_fit_models(matrix, a, y, model)``."""

    def __init__(self, outcome_model=None, random_state=None):
        self.outcome_model = outcome_model
        self.random_state = random_state

    def fit(self, X, treatment, y):
        """Fit clone(s) of ``outcome_model``. Returns self."""
        model = _data.default_regressor() if self.outcome_model is None else self.outcome_model
        _data.check_model(model, "outcome_model", "predict")
        matrix, a, y, _ = _data.validate(self, X, treatment, y)
        self._model = _data.seeded(model, _data.seed_from(self.random_state))
        self._fit_models(matrix, a, y, self._model)
        self._train = (matrix, a, y)
        return self

    def _predict_matrix(self, matrix):
        raise NotImplementedError

    def ate(self, alpha=0.05, n_bootstrap=200, random_state=None):
        """Average treatment effect: the plug-in mean of τ̂(xᵢ) over the training rows, with a bootstrap SE.

        The plug-in has no influence-function SE (the outcome models are not cross-fitted); the SE is the standard
        deviation over ``n_bootstrap`` refits on rows resampled with replacement (the outcome models refitted each
        time, so it costs ``n_bootstrap`` fits), the CI the normal one. For an ATE with an analytic SE use
        :class:`DRLearner` (cross-fitted AIPW).

        Parameters
        ----------
        alpha : float, default=0.05
        n_bootstrap : int, default=200
        random_state : int, RandomState or None, default=None
            Seeds the resampling.

        Returns
        -------
        DataFrame with one row "ATE": estimate, std_err, statistic, p_value, ci_lower, ci_upper.
        """
        check_is_fitted(self, "_train")
        _data.check_int(n_bootstrap, "n_bootstrap", 2)
        matrix, a, y = self._train
        estimate = float(np.mean(self._predict_matrix(matrix)))
        rng = np.random.default_rng(_data.seed_from(random_state))
        replicates = np.empty(n_bootstrap)
        for b in range(n_bootstrap):
            rows = rng.integers(len(a), size=len(a))
            while np.unique(a[rows]).size < 2:  # a replicate needs both arms to refit the models
                rows = rng.integers(len(a), size=len(a))
            fitted = clone(self)
            fitted._fit_models(matrix[rows], a[rows], y[rows], self._model)
            replicates[b] = np.mean(fitted._predict_matrix(matrix[rows]))
        return _table(estimate, np.std(replicates, ddof=1), ["ATE"], alpha)

    def predict(self, X):
        """Estimated CATE τ̂(x) for each row of X, shape (n_samples,)."""
        check_is_fitted(self, "_train")
        matrix, _ = self.design_.transform(X, drop_first=True)
        return self._predict_matrix(matrix)


class TLearner(_DifferenceLearner):
    """T-learner: one outcome model per arm, τ̂(x) = μ̂₁(x) − μ̂₀(x).

    Parameters
    ----------
    outcome_model : regressor, default=None
        Cloned once per arm; None: ``_data.default_regressor()``.
    random_state : int, RandomState or None, default=None
        Seeds the outcome model's ``random_state`` if it has one left at None.

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

    def _predict_matrix(self, matrix):
        """τ̂(x) = μ̂₁(x) − μ̂₀(x)."""
        return np.asarray(self.model1_.predict(matrix) - self.model0_.predict(matrix), dtype=float)


class SLearner(_DifferenceLearner):
    """S-learner: one model of Y on (X, A), τ̂(x) = f̂(x, 1) − f̂(x, 0).

    Parameters
    ----------
    outcome_model : regressor, default=None
        None: ``_data.default_regressor()``.
    random_state : int, RandomState or None, default=None
        Seeds the outcome model's ``random_state`` if it has one left at None.

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

    def _predict_matrix(self, matrix):
        """τ̂(x) = f̂(x, 1) − f̂(x, 0)."""
        ones = np.ones(len(matrix))
        return np.asarray(self.model_.predict(np.column_stack([matrix, ones]))
                          - self.model_.predict(np.column_stack([matrix, 0 * ones])), dtype=float)
