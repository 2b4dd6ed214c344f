"""ImputedEffect: a weighted effect under missing covariates, by multiple imputation and Rubin's rules."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from .._base import BaseWeighter
from .._validation import CovariateDesign
from ..weights import weights_from_propensity
from ._imputation import IMPUTE_WITH, default_imputer, impute_once
from ._pooling import POOLED_COLUMNS, rubin_pool
from ._vcov import _final_step
from ._weighted_effect import WeightedEffect, _fit_weighter

APPROACHES = ("within", "across")


class _GivenWeights(BaseWeighter):
    """Fixed weights for the rows of the data it is fitted on (the "across" approach's one weight vector)."""

    def __init__(self, weights=None, estimand="ATE", treated=None, treatment_type="auto"):
        self.weights = weights
        self.estimand = estimand
        self.treated = treated
        self.treatment_type = treatment_type

    def fit(self, X, treatment, sample_weight=None):
        data = self._validate_data(X, treatment, sample_weight)
        return self._set_weights(np.asarray(self.weights, dtype=float), data)


def _recorded(function, *args):
    """Run ``function(*args)``; return its result and the warnings it raised (joblib workers lose them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args)
    return result, [(w.category, str(w.message)) for w in caught]


def _complete(X, treatment, y, imputer, seed, impute_with):
    return X if imputer is None else impute_once(X, treatment, y, imputer, seed, impute_with)


def _within_task(effect, X, treatment, y, fit_params, imputer, seeds, impute_with):
    data = _complete(X, treatment, y, imputer, seeds[0], impute_with)
    fitted = clone(effect)
    if fitted.random_state is None:  # a bootstrap variance is then reproducible too
        fitted.set_params(random_state=seeds[1])
    return fitted.fit(data, treatment, y, **fit_params), data


def _propensity_task(weighter, X, treatment, y, fit_params, imputer, seeds, impute_with):
    data = _complete(X, treatment, y, imputer, seeds[0], impute_with)
    fitted, _ = _fit_weighter(weighter, data, treatment, fit_params.get("sample_weight"))
    ps = getattr(_final_step(fitted), "ps_", None)
    if ps is None or np.ndim(ps) != 1:
        raise ValueError(f"approach='across' averages binary propensity scores; {type(_final_step(fitted)).__name__} "
                         "has no one-column ps_ (use PropensityWeights, CBPS or another propensity-score weighter on "
                         "a binary treatment, or approach='within').")
    return np.asarray(ps, dtype=float), data


class ImputedEffect(BaseEstimator):
    """A weighted effect with missing covariates: multiple imputation, weighting in each completed data set, and
    the estimates pooled by Rubin's rules.

    Parameters
    ----------
    effect : WeightedEffect
        The analysis of one completed data set (its weighter, outcome model and ``vcov``); cloned per imputation.
        Each imputation's standard error is this estimator's own (asympt, HC0 or a bootstrap).
    imputer : transformer with ``fit_transform``, default=None
        Completes ``X`` when it is one DataFrame with missing values; cloned per imputation, its ``random_state``
        set from this estimator's. None: ``IterativeImputer(sample_posterior=True, max_iter=5)`` (scikit-learn's
        chained equations, each value drawn from its posterior predictive; five rounds as mice's default). See Notes
        for categorical columns.
    n_imputations : int, default=5
        Number of imputations m when ``X`` is imputed here (a list of completed data sets sets m itself).
    approach : {"within", "across"}, default="within"
        "within": weights and effect estimated in each completed data set, then pooled (recommended; Leyrat et al.
        2019). "across" (Mitra & Reiter 2016): the propensity scores are averaged over the imputations into one
        weight vector, which every completed data set then uses; needs a propensity-score weighter, a binary
        treatment and ``effect.vcov="HC0"``. **Its standard error ignores the variance due to imputation in the
        weights** (they are treated as known; only the outcome analysis is pooled), so it is too small when the
        imputations disagree.
    random_state : int, Generator or None, default=None
        Seeds the imputations (and an inner bootstrap whose ``random_state`` is None): imputation k gets its own
        child of one ``numpy.random.SeedSequence``, so the results do not depend on ``n_jobs``.
    n_jobs : int, default=None
        Imputations run in parallel (joblib).
    impute_with : tuple of {"treatment", "outcome"}, default=("treatment", "outcome")
        Which of the treatment and outcome enter the imputation model as predictors (both by default, as mice does:
        leaving the outcome out biases the effect towards zero). ``()`` imputes from the covariates alone.

    Attributes
    ----------
    pooled_ : DataFrame
        One row per quantity the inner estimator reports (the effect, or every pairwise contrast of a multi-category
        treatment, then the potential-outcome means), columns estimate, std_err, df, conf_low, conf_high, p_value,
        riv, lambda, fmi (see :func:`rubin_pool`). Ratio scales are pooled on the log scale: estimate and interval
        shown as ratios, std_err that of the log ratio.
    contrasts_ : DataFrame
        The rows of ``pooled_`` that are effects (as :class:`WeightedEffect`'s ``contrasts_``, same first columns).
    estimate_, se_, pvalue_ : float or Series
        The pooled effect, its SE and p-value (a Series over the contrasts of a multi-category treatment).
    fits_ : list of WeightedEffect
        The fitted estimator of each imputation.
    imputations_ : list of DataFrame
        The completed data sets (those given, or those made here).
    treatment_ : array-like
        The treatment as given (with ``imputations_``, what :func:`balance.balance_table` needs for the balance
        across imputations).
    estimates_, variances_ : DataFrame
        Per imputation (rows) and quantity (columns): the estimate (log scale for ratios) and its squared SE.
    dfcom_ : int
        Complete-data degrees of freedom n − p (p the outcome model's parameters), used by the Barnard–Rubin df.
    ps_, weights_ : ndarray of shape (n_samples,)
        "across" only: the averaged propensity scores and the one weight vector.

    Notes
    -----
    Imputation (``X`` one DataFrame): the imputer sees every covariate (a categorical column as one 0/1 column per
    level), the treatment and the outcome. Its output is mapped back to each column's kind: a categorical value is
    the level whose indicator it imputed highest, a boolean is True above 0.5, a numeric value the nearest value
    observed in its column (so that binary columns stay 0/1, counts whole, incomes non-negative). Imputing
    categorical columns by indicators is an approximation to mice's logistic/polytomous models; give completed data
    sets made elsewhere (a list) for those.

    Pooling: Rubin's rules with the Barnard & Rubin (1999) degrees of freedom, dfcom = n − p as mice takes from a
    linear model (p = number of levels for ``outcome_model="simple"``, plus the covariate coefficients for the
    regression models). Warnings of the imputations' fits are passed on once, naming the imputations.

    References
    ----------
    Rubin, D. B. (1987). Multiple Imputation for Nonresponse in Surveys. Wiley.
    Mitra, R., & Reiter, J. P. (2016). A comparison of two methods of estimating propensity scores after multiple
    imputation. Statistical Methods in Medical Research 25, 188–204.
    Leyrat, C. et al. (2019). Propensity score analysis with partially observed covariates: how should multiple
    imputation be used? Statistical Methods in Medical Research 28, 3–19.

    Examples
    --------
    >>> import numpy as np
    >>> from balance import ImputedEffect, PropensityWeights, WeightedEffect
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> X = data.X.copy()
    >>> X.loc[X.index[::10], "re74"] = np.nan          # 10 % of re74 missing
    >>> mi = ImputedEffect(WeightedEffect(PropensityWeights(estimand="ATT")), random_state=0)
    >>> mi = mi.fit(X, data.treatment, data.y)
    >>> list(mi.pooled_.index), len(mi.fits_)
    (['ATT', 'mu1', 'mu0'], 5)
    >>> bool(abs(mi.estimate_ - 1214) < 200)
    True
    """

    def __init__(self, effect, imputer=None, n_imputations=5, approach="within", random_state=None, n_jobs=None, *,
                 impute_with=IMPUTE_WITH):
        self.effect = effect
        self.imputer = imputer
        self.n_imputations = n_imputations
        self.approach = approach
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.impute_with = impute_with

    def _check_params(self):
        if not isinstance(self.effect, WeightedEffect):
            raise TypeError(f"effect must be a WeightedEffect; got {type(self.effect).__name__}.")
        if self.approach not in APPROACHES:
            raise ValueError(f"approach={self.approach!r}; choose one of {list(APPROACHES)}.")
        if self.approach == "across" and self.effect.vcov != "HC0":
            raise ValueError(f"approach='across' uses one weight vector averaged over the imputations, which has no "
                             f"estimating equations or refittable model: effect.vcov={self.effect.vcov!r} cannot be "
                             "computed; use WeightedEffect(..., vcov='HC0') (weights treated as known) or "
                             "approach='within'.")
        if isinstance(self.n_imputations, bool) or not (isinstance(self.n_imputations, numbers.Integral)
                                                        and self.n_imputations >= 2):
            raise ValueError(f"n_imputations={self.n_imputations!r} must be an integer >= 2.")
        unknown = set(self.impute_with) - set(IMPUTE_WITH) if isinstance(self.impute_with, (tuple, list)) else None
        if unknown is None or unknown:
            raise ValueError(f"impute_with={self.impute_with!r} must be a tuple of 'treatment' and/or 'outcome' "
                             "(() for the covariates alone).")

    def _datasets(self, X):
        """(list of data sets, whether to impute them): a list of completed DataFrames, or one with missing values."""
        if isinstance(X, (list, tuple)):
            if len(X) < 2 or not all(isinstance(d, pd.DataFrame) for d in X):
                raise ValueError("X as a list must hold at least 2 completed DataFrames (one per imputation).")
            first = X[0]
            for k, d in enumerate(X):
                if not (d.index.equals(first.index) and list(d.columns) == list(first.columns)):
                    raise ValueError(f"X[{k}] differs from X[0] in its index or columns; every completed data set "
                                     "must hold the same rows and columns.")
                if d.isna().to_numpy().any():
                    raise ValueError(f"X[{k}] has missing values; a list must hold completed data sets (or pass one "
                                     "DataFrame with missing values to impute it here).")
            return list(X), False
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a DataFrame with missing values or a list of completed DataFrames.")
        if not X.isna().to_numpy().any():
            raise ValueError("X has no missing values: there is nothing to impute; use the WeightedEffect itself.")
        return [X] * self.n_imputations, True

    def fit(self, X, treatment, y, **fit_params):
        """Impute (if needed), fit the effect in every completed data set and pool.

        Parameters
        ----------
        X : DataFrame or list of DataFrame
            One DataFrame with missing covariate values (imputed ``n_imputations`` times by ``imputer``), or the
            completed data sets (e.g. from R's mice), all with the same rows and columns.
        treatment, y : array-like of shape (n_samples,)
            Complete (only covariates are imputed).
        **fit_params
            Passed to every ``effect.fit`` (``sample_weight``, ``cluster``).

        Returns
        -------
        self
        """
        self._check_params()
        datasets, impute = self._datasets(X)
        imputer = (self.imputer if self.imputer is not None else default_imputer()) if impute else None
        entropy = int(np.random.default_rng(self.random_state).integers(0, 2**63 - 1))
        seeds = [tuple(int(s) >> 1 for s in child.generate_state(2))
                 for child in np.random.SeedSequence(entropy).spawn(len(datasets))]
        if self.approach == "within":
            task, first = _within_task, self.effect
        else:
            task, first = _propensity_task, self.effect.weighter
        outputs = Parallel(n_jobs=self.n_jobs)(
            delayed(_recorded)(task, first, d, treatment, y, fit_params, imputer, s, tuple(self.impute_with))
            for d, s in zip(datasets, seeds))
        _repeat_warnings([caught for _, caught in outputs])
        if self.approach == "within":
            self.fits_ = [fitted for (fitted, _), _ in outputs]
        else:
            self.ps_ = np.mean([ps for (ps, _), _ in outputs], axis=0)
            self.weights_, self.fits_ = self._fit_across([data for (_, data), _ in outputs], treatment, y, fit_params,
                                                          seeds)
        self.imputations_ = [data for (_, data), _ in outputs]
        self.treatment_ = treatment
        self._pool()
        return self

    def _fit_across(self, datasets, treatment, y, fit_params, seeds):
        """One weight vector from the averaged scores (the weighter's own rules: clip, trim, estimand), then the
        outcome analysis of every completed data set with it."""
        weighter = clone(_final_step(self.effect.weighter))
        sw = fit_params.get("sample_weight")
        if "model" in weighter.get_params(deep=False):  # the weighter's own rules: clip, trim, sampling weights
            ps = pd.DataFrame({"ps": self.ps_})
            weights = _fit_weighter(weighter.set_params(model="precomputed"), ps, np.asarray(treatment), sw)[1]
        else:
            weights = weights_from_propensity(self.ps_, np.asarray(treatment), weighter.estimand,
                                              treated=getattr(weighter, "treated", None))
            weights = weights if sw is None else weights * np.asarray(sw, dtype=float)
        given = _GivenWeights(weights, estimand=weighter.estimand, treated=getattr(weighter, "treated", None))
        effect = clone(self.effect).set_params(weighter=given)
        outputs = [_recorded(_within_task, effect, d, treatment, y, fit_params, None, s, ())
                   for d, s in zip(datasets, seeds)]
        _repeat_warnings([caught for _, caught in outputs])
        return weights, [fitted for (fitted, _), _ in outputs]

    def _pool(self):
        results = [fit.result_ for fit in self.fits_]
        first = results[0]
        rows = pd.RangeIndex(1, len(results) + 1, name="imputation")
        self.estimates_ = pd.DataFrame([r._inference_scale(r.estimate) for r in results]).set_axis(rows)  # log ratios
        self.variances_ = pd.DataFrame([r.se ** 2 for r in results]).set_axis(rows)
        self.dfcom_ = first.n_obs - self._n_params()
        pooled = rubin_pool(self.estimates_, self.variances_, dfcom=self.dfcom_)[list(POOLED_COLUMNS)]
        if first.scale != "difference":
            rows = pooled.index[:first.n_contrasts]
            pooled.loc[rows, ["estimate", "conf_low", "conf_high"]] = \
                np.exp(pooled.loc[rows, ["estimate", "conf_low", "conf_high"]])
        self.pooled_ = pooled
        self.contrasts_ = contrasts = pooled.iloc[:first.n_contrasts]
        if first.n_contrasts == 1:
            self.estimate_, self.se_, self.pvalue_ = (float(contrasts[c].iloc[0])
                                                      for c in ("estimate", "std_err", "p_value"))
        else:
            self.estimate_, self.se_, self.pvalue_ = (contrasts[c] for c in ("estimate", "std_err", "p_value"))

    def _n_params(self):
        """Parameters of the complete-data outcome model: one mean per level, plus the covariate coefficients (per
        level for the interacted and AIPW models)."""
        fit = self.fits_[0]
        n_levels = len(fit.potential_outcomes_)
        if fit.outcome_model == "simple":
            return n_levels
        data = self.imputations_[0]
        n_covariates = CovariateDesign.from_data(data).transform(data, drop_first=True)[0].shape[1]
        return n_levels + (n_covariates if fit.outcome_model == "additive" else n_levels * n_covariates)

    def summary(self):
        """The pooled table (``pooled_``)."""
        check_is_fitted(self, "pooled_")
        return self.pooled_


def _repeat_warnings(caught_per_imputation):
    """Pass on the imputations' warnings, each distinct one once, naming the imputations that raised it."""
    where = {}
    for k, caught in enumerate(caught_per_imputation, start=1):
        for category, message in caught:
            where.setdefault((category, message), []).append(k)
    for (category, message), imputations in where.items():
        warnings.warn(f"imputation(s) {', '.join(map(str, imputations))}: {message}", category, stacklevel=3)
