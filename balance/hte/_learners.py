"""Weighted pseudo-outcome regression (WPOR) for the CATE, and its named presets (R, DR, IVW-DR, U).

Fisher (2024) shows that many CATE learners regress a pseudo-outcome φ̂ on X with weights W, and that the weights,
more than the pseudo-outcome, drive accuracy: inverse-variance weights π̂(1 − π̂) stabilise the DR-learner, and the
R-learner (Nie & Wager 2021) is the U-learner weighted by (A − π̂)². Cross-fitting follows Fisher's ``wpor``.

References
----------
Fisher, A. J. (2024). Inverse-variance weighting for estimation of heterogeneous treatment effects. ICML, PMLR 235,
13706–13733 (arXiv:2307.09700).
Nie, X., & Wager, S. (2021). Quasi-oracle estimation of heterogeneous treatment effects. Biometrika 108, 299–319.
Kennedy, E. H. (2023). Towards optimal doubly robust estimation of heterogeneous causal effects. EJS 17, 3008–3049.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from .._validation import check_indexes_agree
from . import _data
from ._crossfit import NuisanceSpec, clip_propensities, crossfit_higher, crossfit_order2, plugin_effect
from ._inference import linear_projection, per_row, weighted_average_effect
from ._pseudo import PSEUDO_OUTCOMES, WEIGHTINGS, needed_nuisances, pseudo_outcome, pseudo_weights
from ._tuning import check_final_model, fit_final


class PseudoOutcomeLearner(BaseEstimator):
    """CATE by weighted regression of a cross-fitted pseudo-outcome on the covariates.

    τ̂ = argmin_f Σ W_i (φ̂_i − f(X_i))², fitted by ``final_model`` with ``sample_weight=W``. The nuisances
    (propensity π̂, outcome models) are cross-fitted; any scikit-learn classifier and regressors can be used.

    Parameters
    ----------
    pseudo_outcome : {"dr", "u", "cov", "ipw", "plugin"}, default="dr"
        φ̂: AIPW ("dr"), Robinson's ratio (Y − m̂)/(A − π̂) ("u"), covariance-based (Y − m̂)(A − π̂)/(π̂κ̂) ("cov"),
        Horvitz–Thompson Y(A − π̂)/(π̂κ̂) ("ipw"), or μ̂₁ − μ̂₀ ("plugin").
    weighting : {"none", "ivw", "r", "u_x", "dr_ax"}, default="ivw"
        W: 1; π̂κ̂ (inverse variance of the DR pseudo-outcome given X, = overlap weights); (A − π̂)² (inverse variance
        of the U pseudo-outcome given A, X: U + "r" is the R-learner); (π̂κ̂)²/(π̂³ + κ̂³) (U given X); π̂² or κ̂² by
        arm (DR given A, X).
    propensity_model : classifier with predict_proba, default=None
        Model of P(A = 1 | X); None: a standardised logistic regression with its L2 penalty chosen by 5-fold
        cross-validated log-loss (``_data.default_classifier()``; a flexible classifier overfits the propensity of
        small samples and the inverse-propensity terms then swamp the pseudo-outcome).
    outcome_model : regressor, default=None
        Model of E[Y | X] ("u", "cov") or E[Y | X, A] ("dr", "plugin"); None: ``_data.default_regressor()``.
    final_model : regressor, default=None
        Second-stage model; must accept ``sample_weight`` unless ``weighting="none"``. A ``GridSearchCV`` (or other
        search) is tuned by the weighted MSE of the pseudo-outcome (its own ``scoring`` is kept if set).
        None with ``pseudo_outcome="dr"``: τ̂(x) = μ̂₁(x) − μ̂₀(x) + ĝ(x), the plug-in averaged over the
        cross-fitting parts' outcome models plus ĝ, a (W-weighted) ridge regression of the correction
        φ̂ − (μ̂₁ − μ̂₀) on the standardised covariates, its penalty chosen by leave-one-out error
        (``_data.default_correction_regressor()``). This is still a regression of the AIPW pseudo-outcome (on
        the offset μ̂₁ − μ̂₀ plus a linear function): E[φ | X] = τ(X) whichever of π̂ and μ̂ is right, so ĝ
        corrects a biased plug-in, and the ridge shrinks the noisy correction to its mean when the plug-in is
        good. Why: the boosted regression of φ̂ itself (the former default) fitted the pseudo-outcome's noise and
        lost to the T- or S-learner on every IHDP and Nie–Wager design but one (PEHE 2.65 against the T-learner's
        1.68 on IHDP surface B); the figures of this default are in benchmarks/results/hte_ihdp.md. None with
        other pseudo-outcomes: ``HistGradientBoostingRegressor(early_stopping=True)`` (stops on a held-out 10 %:
        pseudo-outcomes are noisy).
    cv : int, default=10
        Number of folds of order-2 cross-fitting.
    cf_order : {2, 3, 4}, default=2
        2: v-fold cross-fitting (κ̂ = 1 − π̂). 3 and 4: split into that many folds, each model fitted on one fold;
        each row gets one copy per assignment of the other folds to (π̂, outcome) (2 copies) or (π̂, κ̂, outcome)
        (6 copies, κ̂ from a separate propensity fit). All copies enter the second stage.
    clip : float, default=0.01
        Propensities (π̂ and κ̂) are bounded to [clip, 1 − clip]; the count is ``n_clipped_`` and is warned about.
    outcome_form : {"single", "separate", "auto"} or None, default=None
        For μ̂_a: one model of Y on (X, A) evaluated at A = 1 and 0 (S-style), or one model per arm (T-style).
        "auto" fits both and keeps the arm models only when their out-of-fold squared error of the observed
        outcome is smaller than the single model's by more than 2 standard errors of the paired difference
        (``outcome_loss_``): the single model shrinks towards a homogeneous effect, which wins unless the arms'
        surfaces clearly differ (IHDP surface B: μ₀ exponential, μ₁ linear). None: "auto" with the default
        outcome model, "single" with a given one.
    random_state : int, RandomState or None, default=None
        Seeds the fold split, and every nested model's ``random_state`` left at None (each model gets its own seed
        derived from this one; a ``random_state`` set on a model is kept).
    n_jobs : int or None, default=None
        Number of threads fitting the nuisance models of the folds at the same time (one job per fold and
        nuisance model; the final model is one fit). None means 1 unless in a ``joblib.parallel_config`` context;
        -1 means all processors. With more than one worker, each worker's OpenMP and BLAS thread pools are limited
        to cpu_count // n_jobs threads (threadpoolctl), so that, e.g., HistGradientBoosting's own threads do not
        oversubscribe the cores. The folds, the fits and their order of assembly do not depend on ``n_jobs``, so the
        results are identical for any value when the models' fits are deterministic (e.g. a fixed ``random_state``:
        HistGradientBoosting draws its early-stopping split at random otherwise) and do not depend on their number
        of threads.

    Attributes
    ----------
    final_model_ : regressor
        The fitted clone of ``final_model`` (by default for "dr", the model of the correction ĝ); ``predict``
        uses it.
    final_target_ : {"pseudo_outcome", "correction"}
        What the final model was fitted to: φ̂, or φ̂ − (μ̂₁ − μ̂₀) with ``predict`` adding the plug-in back.
    outcome_form_ : {"single", "separate"} or None
        The form of μ̂ₐ used (None when the pseudo-outcome needs no μ̂ₐ).
    outcome_loss_ : dict
        Out-of-fold mean squared error of Y given the observed arm, per form fitted, and with "auto" the z
        statistic of the separate models' gain ("z").
    outcome_models_ : list
        The fitted outcome model(s) of each cross-fitting part (a model of Y on (X, A), or a (μ̂₁, μ̂₀) pair):
        the plug-in of ``predict``.
    pseudo_outcome_, weights_ : Series or ndarray of shape (n_copies,)
        φ̂ and W per row copy (n_copies = n_samples at order 2, 2n at order 3, 6n at order 4). Series on X's index
        (repeated for copies) when X was a DataFrame.
    rows_ : ndarray of shape (n_copies,)
        Row position of each copy.
    nuisances_ : dict of str to ndarray of shape (n_copies,)
        Out-of-fold nuisance predictions used: "pi", "kappa" (after clipping), "m", "mu1", "mu0" as needed.
    folds_ : ndarray of shape (n_samples,)
        Cross-fitting fold of each row.
    n_clipped_ : int
        Number of propensity predictions moved by ``clip`` (per copy; κ̂ counted separately at order 4).
    treatment_levels_, n_features_in_, feature_names_in_
        As for the weighting estimators.

    See Also
    --------
    RLearner, DRLearner, IVWDRLearner, ULearner : the named presets.

    Notes
    -----
    Intercept-only final model (``DummyRegressor``) with "dr" + "ivw" gives the augmented overlap-weighted (ATO)
    ratio; :meth:`ato` adds to it the correction that makes it orthogonal to the estimated overlap weights. U + "r"
    with a linear final model gives the R-loss coefficients (Fisher 2024).

    Given ``sample_weight``, scikit-learn's ``HistGradientBoostingRegressor`` (1.9) computes its bin edges as
    weighted quantiles, one quantile at a time; on large samples that step can cost more than the boosting itself.
    ``make_pipeline(KBinsDiscretizer(255, encode="ordinal", strategy="quantile"), _data.default_regressor())``
    bins without weights (what the regressor does when unweighted); the weights reach the last step.

    References
    ----------
    Fisher, A. J. (2024). Inverse-variance weighting for estimation of heterogeneous treatment effects. ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> from balance.hte import PseudoOutcomeLearner, make_hte_setup
    >>> d = make_hte_setup("A", n=1000, random_state=0)
    >>> est = PseudoOutcomeLearner(propensity_model=LogisticRegression(), outcome_model=LinearRegression(),
    ...                            final_model=LinearRegression(), cv=5, random_state=0).fit(d.X, d.treatment, d.y)
    >>> est.predict(d.X).shape
    (1000,)
    """

    def __init__(self, pseudo_outcome="dr", weighting="ivw", propensity_model=None, outcome_model=None,
                 final_model=None, cv=10, cf_order=2, clip=0.01, outcome_form=None, random_state=None,
                 n_jobs=None):
        self.pseudo_outcome = pseudo_outcome
        self.weighting = weighting
        self.propensity_model = propensity_model
        self.outcome_model = outcome_model
        self.final_model = final_model
        self.cv = cv
        self.cf_order = cf_order
        self.clip = clip
        self.outcome_form = outcome_form
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _models(self):
        prop = _data.default_classifier() if self.propensity_model is None else self.propensity_model
        outcome = _data.default_regressor() if self.outcome_model is None else self.outcome_model
        if self.final_model is not None:
            final = self.final_model
        elif self._corrects_plugin():
            final = _data.default_correction_regressor()
        else:
            final = _data.default_final_regressor()
        return prop, outcome, final

    def _corrects_plugin(self):
        """Whether the final stage regresses the correction φ̂ − (μ̂₁ − μ̂₀) and predict adds the plug-in back:
        the default final model of the AIPW pseudo-outcome."""
        return self.final_model is None and self.pseudo_outcome == "dr"

    def _outcome_form(self):
        if self.outcome_form is not None:
            return self.outcome_form
        return "auto" if self.outcome_model is None else "single"

    def _check_params(self):
        _data.check_choice(self.pseudo_outcome, "pseudo_outcome", PSEUDO_OUTCOMES)
        _data.check_choice(self.weighting, "weighting", WEIGHTINGS)
        if self.outcome_form is not None:
            _data.check_choice(self.outcome_form, "outcome_form", ("single", "separate", "auto"))
        _data.check_int(self.cv, "cv", 2)
        if self.cf_order not in (2, 3, 4) or isinstance(self.cf_order, bool):
            raise ValueError(f"cf_order must be 2, 3 or 4; got {self.cf_order!r}.")
        _data.check_probability_bound(self.clip, "clip")
        _data.check_n_jobs(self.n_jobs)
        prop, outcome, final = self._models()
        _data.check_model(prop, "propensity_model", "predict_proba")
        _data.check_model(outcome, "outcome_model", "predict")
        check_final_model(final, self.weighting != "none")
        return prop, outcome, final

    def fit(self, X, treatment, y):
        """Cross-fit the nuisances, build the pseudo-outcomes and weights, and fit the final model.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        treatment : array-like of shape (n_samples,)
            Binary treatment (0/1 or boolean).
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        prop, outcome, final = self._check_params()
        matrix, a, y, index = _data.validate(self, X, treatment, y)
        need_pi, need_m, need_mu = needed_nuisances(self.pseudo_outcome, self.weighting)
        seed = _data.seed_from(self.random_state)
        prop, outcome, final = (_data.seeded(model, [seed, k]) for k, model in enumerate((prop, outcome, final)))
        spec = NuisanceSpec(prop, outcome, need_pi, need_m, need_mu, self._outcome_form())
        if self.cf_order == 2:
            cf = crossfit_order2(spec, matrix, a, y, self.cv, seed, self.n_jobs)
        else:
            cf = crossfit_higher(spec, matrix, a, y, self.cf_order, seed, self.n_jobs)
        cf = clip_propensities(cf, self.clip)
        self.n_clipped_ = cf.n_clipped
        if cf.n_clipped:
            size = cf.pi.size + (cf.kappa.size if cf.separate_kappa else 0)  # what n_clipped counts over
            poor = (" So many that the groups barely overlap: the effects there are extrapolated, whatever the "
                    "standard errors say; check the overlap of the propensity scores first."
                    ) if cf.n_clipped > 0.1 * size else ""
            warnings.warn(f"{cf.n_clipped} propensity predictions were outside [{self.clip}, {1 - self.clip}] and "
                          f"were clipped (clip={self.clip}; {cf.n_clipped / size:.0%} of {size}).{poor}", UserWarning,
                          stacklevel=2)
        rows = cf.rows
        nuis = {k: getattr(cf, k) for k in ("pi", "kappa", "m", "mu1", "mu0") if getattr(cf, k) is not None}
        phi = pseudo_outcome(self.pseudo_outcome, y[rows], a[rows], **nuis)
        w = pseudo_weights(self.weighting, a[rows], nuis.get("pi"), nuis.get("kappa"))
        self.outcome_form_, self.outcome_loss_, self.outcome_models_ = cf.outcome_form, cf.outcome_loss, \
            cf.outcome_models
        self.final_target_ = "correction" if self._corrects_plugin() else "pseudo_outcome"
        target = phi - (cf.mu1 - cf.mu0) if self.final_target_ == "correction" else phi
        self.final_model_ = fit_final(clone(final), matrix[rows], target, w, rows, self.weighting != "none")
        # τ̂ at the training rows: ate() of the U/R pseudo-outcome augments it into an AIPW signal
        self._tau_rows = self._predict_matrix(matrix[rows]) if self.pseudo_outcome == "u" else None
        self.rows_, self.folds_, self.nuisances_ = rows, cf.folds, nuis
        self._n_rows, self._index, self._treatment = len(a), index, a
        self.pseudo_outcome_ = self._wrap(phi, "pseudo_outcome")
        self.weights_ = self._wrap(w, "weights")
        return self

    def _wrap(self, values, name):
        if self._index is None:
            return values
        return pd.Series(values, index=self._index[self.rows_], name=name)

    def predict(self, X):
        """Estimated CATE τ̂(x) for each row of X, shape (n_samples,)."""
        check_is_fitted(self, "final_model_")
        matrix, _ = self.design_.transform(X, drop_first=True)
        return self._predict_matrix(matrix)

    def _predict_matrix(self, matrix):
        tau = np.asarray(self.final_model_.predict(matrix), dtype=float)
        if self.final_target_ == "correction":  # plus the average of the cross-fitting parts' plug-ins
            tau = tau + np.mean([plugin_effect(self.outcome_form_, models, matrix)
                                 for models in self.outcome_models_], axis=0)
        return tau

    # -- summaries -------------------------------------------------------------------------------------------
    def _row_values(self, h):
        """Per-row (h-weighted average pseudo-outcome, average h) over a row's copies."""
        phi = np.asarray(self.pseudo_outcome_, dtype=float)
        mean_h = per_row(h, self.rows_, self._n_rows)
        return per_row(h * phi, self.rows_, self._n_rows) / mean_h, mean_h

    def _check_summary(self):
        check_is_fitted(self, "final_model_")
        if self.pseudo_outcome == "plugin":
            raise ValueError("the plug-in pseudo-outcome μ̂₁ − μ̂₀ has no influence-function standard error; "
                             "use pseudo_outcome='dr'.")

    def ate(self, alpha=0.05):
        """Average treatment effect with an influence-function SE and CI.

        With "dr" this is the cross-fitted AIPW estimator: the mean pseudo-outcome. Robinson's ratio of the "u"
        pseudo-outcome (U- and R-learner) is not a usable signal for an average (its variance is unbounded as
        A − π̂ nears 0), so for "u" the nuisances are recombined into the AIPW signal they imply,
        μ̂ₐ = m̂ + (a − π̂)τ̂:  φ = τ̂ + (A − π̂)(Y − m̂ − (A − π̂)τ̂)/(π̂κ̂). Its mean is consistent whenever π̂ is
        (E[(A − π)(Y − m)| X] = π(1 − π)τ(X) for any m); m̂ and the final model's τ̂ (fitted in-sample, not
        cross-fitted) only affect its variance. "cov" and "ipw" average their own pseudo-outcome (valid when π̂ is
        right). Returns a one-row DataFrame (estimate, std_err, statistic, p_value, ci_lower, ci_upper).
        """
        self._check_summary()
        phi = np.asarray(self.pseudo_outcome_, dtype=float)
        if self.pseudo_outcome == "u":
            a = np.asarray(self._treatment, dtype=float)[self.rows_]
            resid_a = a - self.nuisances_["pi"]
            tau = self._tau_rows
            phi = tau + resid_a ** 2 * (phi - tau) / (self.nuisances_["pi"] * self.nuisances_["kappa"])
        ones = np.ones(len(self.rows_))
        phi_row = per_row(phi, self.rows_, self._n_rows)
        return weighted_average_effect(phi_row, per_row(ones, self.rows_, self._n_rows), "ATE", alpha)

    def ato(self, alpha=0.05):
        """Overlap-weighted average effect (weights π̂κ̂) with an influence-function SE and CI.

        With "dr" this is the augmented overlap-weighted estimator Σ π̂κ̂ φ̂ / Σ π̂κ̂ (Li, Morgan & Zaslavsky 2018)
        plus the one-step correction Σ (κ̂ − π̂)(A − π̂)(τ̂ − θ̂)/Σ π̂κ̂, τ̂ = μ̂₁ − μ̂₀, which makes it orthogonal to
        the estimated overlap weights; its SE comes from the efficient influence function, which includes the
        variance of estimating those weights (module notes of ``balance.hte._inference``). With other pseudo-outcomes
        it is the plain ratio, and its SE treats the nuisances (the overlap weights too) as known. Same table as
        :meth:`ate`.
        """
        self._check_summary()
        if "pi" not in self.nuisances_:
            raise ValueError("ato needs the propensity score, which this learner did not fit.")
        nuis = self.nuisances_
        phi, h = self._row_values(nuis["pi"] * nuis["kappa"])
        correction = None
        if self.pseudo_outcome == "dr":
            a = np.asarray(self._treatment, dtype=float)[self.rows_]
            g = (nuis["kappa"] - nuis["pi"]) * (a - nuis["pi"])
            correction = (per_row(g, self.rows_, self._n_rows),
                          per_row(g * (nuis["mu1"] - nuis["mu0"]), self.rows_, self._n_rows))
        return weighted_average_effect(phi, h, "ATO", alpha, correction)

    def best_linear_projection(self, X_subset, alpha=0.05):
        """Best linear projection of the CATE on [1, X_subset], with HC0 robust SEs.

        Weighted least squares of the pseudo-outcome on the columns of ``X_subset`` (rows in the order of the data
        given to ``fit``), with the learner's weights: with ``weighting="none"`` and "dr" this is grf's
        ``best_linear_projection``; with "ivw" it is the overlap-weighted projection.

        Returns
        -------
        DataFrame with one row per coefficient ("intercept" first).
        """
        self._check_summary()
        check_indexes_agree(X=self._index, X_subset=X_subset)
        Z = X_subset.to_numpy(dtype=float) if isinstance(X_subset, pd.DataFrame) else np.asarray(X_subset, float)
        Z = Z.reshape(len(Z), -1)
        if Z.shape[0] != self._n_rows:
            raise ValueError(f"X_subset has {Z.shape[0]} rows; the learner was fitted on {self._n_rows}.")
        if not np.all(np.isfinite(Z)):
            raise ValueError("X_subset has missing or infinite values.")
        names = [str(c) for c in X_subset.columns] if isinstance(X_subset, pd.DataFrame) else \
            [f"x{j}" for j in range(Z.shape[1])]
        phi, w = self._row_values(np.asarray(self.weights_, dtype=float))
        return linear_projection(phi, w, Z, names, alpha)


def _preset(name, pseudo, weighting, doc):
    """A PseudoOutcomeLearner subclass with the pseudo-outcome and weights fixed (not constructor parameters)."""

    def __init__(self, propensity_model=None, outcome_model=None, final_model=None, cv=10, cf_order=2, clip=0.01,
                 outcome_form=None, random_state=None, n_jobs=None):
        PseudoOutcomeLearner.__init__(self, pseudo, weighting, propensity_model, outcome_model, final_model, cv,
                                      cf_order, clip, outcome_form, random_state, n_jobs)

    return type(name, (PseudoOutcomeLearner,), {
        "__init__": __init__, "__doc__": doc,
        "__module__": __name__,
    })


_PRESET_DOC = """{title}

    :class:`PseudoOutcomeLearner` with ``pseudo_outcome="{pseudo}"`` and ``weighting="{weighting}"``{extra}. Parameters
    and attributes are those of :class:`PseudoOutcomeLearner` without these two.{defaults}

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> from balance.hte import {name}, make_hte_setup
    >>> d = make_hte_setup("B", n=500, random_state=1)
    >>> est = {name}(propensity_model=LogisticRegression(), outcome_model=LinearRegression(),
    ...          final_model=LinearRegression(), cv=5, random_state=0).fit(d.X, d.treatment, d.y)
    >>> est.predict(d.X[:3]).shape
    (3,)
    """

# the defaults of the two DR presets and what they were shown to do (benchmarks/hte_ihdp.py, fresh seeds 2000-2019)
_DR_DEFAULTS = """

    With every default (the cross-validated penalised logistic propensity; boosted outcome models, one model of Y on
    (X, A) unless separate arm models are clearly better out of fold; the cross-fitted plug-in μ̂₁ − μ̂₀ plus a
    ridge-shrunk regression of the AIPW correction φ̂ − (μ̂₁ − μ̂₀) as the final stage) it is at least as accurate as
    the T- and S-learners with theirs on Hill's (2011) IHDP surfaces and Nie & Wager's setups A–D. Over 20 fresh
    draws per design, the DR-learner's PEHE was 1.32 against 1.33 (T) and 2.70 (S) on IHDP surface B (level with
    T: paired difference −0.007 ± 0.032), 1.02 against 1.89 and 1.15 on surface A, and below both on setups A–D by
    at least 4.8 Monte Carlo SEs of the paired difference; the IVW-DR-learner's within 0.02 of it
    (benchmarks/results/hte_ihdp.md)."""

RLearner = _preset("RLearner", "u", "r", _PRESET_DOC.format(
    title="R-learner (Nie & Wager 2021) as weighted U-learning.", name="RLearner", pseudo="u", weighting="r",
    extra=": minimising Σ[(Y − m̂) − (A − π̂)τ(X)]² is the (A − π̂)²-weighted regression of (Y − m̂)/(A − π̂)",
    defaults=""))
DRLearner = _preset("DRLearner", "dr", "none", _PRESET_DOC.format(
    title="DR-learner (Kennedy 2023): unweighted regression of the AIPW pseudo-outcome.", name="DRLearner",
    pseudo="dr", weighting="none", extra="", defaults=_DR_DEFAULTS))
IVWDRLearner = _preset("IVWDRLearner", "dr", "ivw", _PRESET_DOC.format(
    title="Inverse-variance-weighted DR-learner (Fisher 2024).", name="IVWDRLearner", pseudo="dr", weighting="ivw",
    extra=": the AIPW pseudo-outcome weighted by π̂(1 − π̂)", defaults=_DR_DEFAULTS))
CovLearner = _preset("CovLearner", "cov", "none", _PRESET_DOC.format(
    title="Covariance-based learner: regression of (Y − m̂)(A − π̂)/(π̂κ̂), unbiased for any m̂ when π̂ is right.",
    name="CovLearner", pseudo="cov", weighting="none", extra="", defaults=""))
IVWCovLearner = _preset("IVWCovLearner", "cov", "ivw", _PRESET_DOC.format(
    title="Inverse-variance-weighted covariance-based learner (Fisher 2024).", name="IVWCovLearner", pseudo="cov",
    weighting="ivw", extra=": locally, Σ(A − π̂)(Y − m̂)/Σπ̂κ̂, the R-learner's numerator over its expected denominator",
    defaults=""))
ULearner = _preset("ULearner", "u", "none", _PRESET_DOC.format(
    title="U-learner: unweighted regression of Robinson's ratio (Y − m̂)/(A − π̂).", name="ULearner", pseudo="u",
    weighting="none", extra=" (unstable when π̂ is near 0 or 1; the R-learner weights it)", defaults=""))
