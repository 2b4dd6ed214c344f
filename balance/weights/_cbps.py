"""Covariate balancing propensity score (CBPS) weights, just- and over-identified (Imai & Ratkovic 2014), and the
covariate balancing generalised propensity score of a continuous treatment (Fong, Hazlett & Imai 2018)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from .._base import BaseWeighter, MParts
from .._dask import any_dask
from .._dask_data import refuse_dask
from ._balance_conditions import (check_reachable, check_solver_params, finite_prediction, fit_terms,
                                  logit_balance_parts, new_terms, warn_not_converged)
from ._cbps_multi import balance_base, balance_jacobian, balance_psi, fit_multi_cbps, gmm_minimum
from ._estimands import multi_weights, multi_weights_derivative
from ._gps import GPSData, fit_cbgps, gps_parts, normal_log_weights, warn_floored
from ._logistic import (SYMPTOM_PROB, find_separation, fit_logistic, fit_logistic_blocks, report_separation,
                        warn_separation_untested)
from ._moments import TermExpansion
from ._multinomial import chain_to_coef, softmax_proba
from ._standardize import Standardizer
from ._tilt import (GroupStats, balance_sides, odds_weights, odds_weights_derivative, solve_balance,
                    solve_balance_blocks)


class CBPS(BaseWeighter):
    """Covariate balancing propensity score weights (Imai & Ratkovic 2014).

    A logistic propensity model e(X) = expit(β₀ + Xβ) whose coefficients are chosen so that the estimand's weights
    balance the covariates exactly, instead of maximising the likelihood. The just-identified version (default)
    solves the balance conditions

    .. math:: \\sum_i s_i (2A_i - 1)\\, w_i(\\beta)\\, (1, X_i) = 0,

    with w the estimand's weight (ATT: treated 1, controls e/(1 − e); ATC: treated (1 − e)/e, controls 1; ATE:
    1/e and 1/(1 − e); ATO: 1 − e and e) and s the sampling weights. For the ATT, ATC and ATE these conditions are
    the gradient of a strictly convex function, so the root is unique and Newton's method with a line search finds
    it; for the ATO (logit link) they are the logistic score, so ATO CBPS equals the maximum-likelihood fit. As
    WeightIt (``method = "cbps"``), the weighted treated and control covariate *totals* agree, so the weighted
    means of the two groups are equal; for the ATE they are not the full-sample means (use
    :class:`InverseProbabilityTilting` or :class:`EntropyBalance` for that).

    ``over=True`` gives the over-identified CBPS: two-step GMM on the logistic score and the balance conditions
    together, with the weight matrix the inverse of their expected covariance evaluated at the just-identified fit,
    started from that fit (WeightIt 1.5.1's set-up, which differs from the R package CBPS). When that exact-balance
    fit does not converge (e.g. exact balance is infeasible), the logistic MLE takes its place, with a warning.

    A multi-category treatment (K ≥ 3 levels) gets the multinomial CBPS (Imai & Ratkovic 2014, §2.3): a softmax
    model for the generalised propensity scores p_k(X) (first level the reference) whose coefficients make every
    level's weighted covariate totals equal the reference level's, with the weights 1/p_A (ATE), p_f/p_A (ATT, f the
    focal level ``treated``) or 1/(p_A Σ_k 1/p_k) (ATO). As WeightIt, every level's weights then have the same sum.
    ``over=True`` adds the multinomial score (two-step GMM, WeightIt 1.5.1's first step; see
    :mod:`balance.weights._cbps_multi`).

    A continuous treatment gets the just-identified covariate balancing generalised propensity score (CBGPS; Fong,
    Hazlett & Imai 2018) as WeightIt 1.5.1 computes it: a normal linear model A | X ~ N(β₀ + Xβ, σ²) and the
    marginal A ~ N(μ, τ²), the weight f(A; μ, τ²) / f(A | X; β, σ²), with (μ, τ², σ²) the sampling-weighted mean,
    variance and residual variance (divisor Σs) and β chosen so that the weighted treatment is uncorrelated with
    every balanced term and keeps its mean:

    .. math:: \\sum_i s_i w_i (A_i - \\mu) (1, X_i) = 0.

    (WeightIt estimates μ and τ² alongside, as here; Fong et al. fix them at their sample values, which gives the
    same estimates.) The conditions have no convex objective; they are solved from the least-squares start by
    MINPACK's hybrid Powell method with the analytic Jacobian. They need not have a root (the normal density ratio
    is dominated by the units with the largest residuals): then the weights minimise the squared imbalance, as
    WeightIt's (which says nothing), ``converged_`` is False and a ConvergenceWarning gives the remaining
    imbalance. Estimand "ATE" only; ``over=True`` is not available.

    Parameters
    ----------
    estimand : {"ATE", "ATT", "ATC", "ATO"}, default="ATE"
        Multi-category treatments: "ATE", "ATT" (``treated`` the focal level) or "ATO". Continuous: "ATE".
    over : bool, default=False
        Over-identified GMM instead of exact balance. Ignored for the ATO of a binary treatment, where the balance
        conditions are the logistic score and both versions coincide.
    moments : int, default=1
        Also balance the powers 2, ..., ``moments`` of non-binary covariates.
    interactions : bool, default=False
        Also balance all pairwise products of the covariates (model-matrix columns).
    treated : scalar, default=None
        The treated level when the treatment is neither 0/1 nor boolean; the focal level of a multi-category ATT.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default="auto"
        What the treatment is; ``"auto"`` decides from the data (two values: binary; categorical or text with more
        levels: multi-category; float: continuous; integers with more than two values: an error asking for this
        parameter). See :mod:`balance._treatment`.
    tol : float, default=1e-8
        Convergence tolerance: the largest remaining imbalance of a balance condition, in standard deviations of
        the covariate (the sup-norm of the standardised estimating equations over their total).
    max_iter : int, default=100
        Maximum number of Newton (or, with ``over=True``, trust-region Newton) iterations.
    missing : {"error", "indicator"}, default="error"
        Missing covariate values: ``"error"`` raises naming the column; ``"indicator"`` adds a missingness
        indicator ``<column>:<NA>`` per incomplete column and fills its missing values with the observed median
        (WeightIt's and cobalt's approach), so the missingness pattern is balanced too.

    Attributes
    ----------
    weights_ : Series or ndarray of shape (n_samples,)
        Analysis weights, sampling weights included, on WeightIt's scale: the glm formulas with CBPS's own
        propensity score, unnormalised (ATT: treated 1, controls e/(1 − e), whose total is then exactly the number
        treated; ATE: 1/e and 1/(1 − e), the two groups having equal totals). The scale of one group changes no
        balance statistic, ESS or weighted difference in means. Continuous treatments: the normal density ratio
        f(A) / f(A | X) itself (WeightIt's CBPS scale, unnormalised; the conditional density is floored at
        exp(−50) in units of the standardised treatment, as WeightIt does, counted in ``n_clipped_`` and warned).
    ps_ : Series or ndarray of shape (n_samples,); DataFrame or ndarray of shape (n_samples, n_levels)
        Propensity scores; multi-category: the generalised propensity scores, one column per level; continuous:
        the generalised propensity score f(A | X) at the observed treatment (a density, in units of 1/A).
    coef_ : ndarray of shape (n_terms,) or (n_levels - 1, n_terms)
        Logistic coefficients on the original covariate scale, one per entry of ``terms_``; multi-category: row
        k − 1 for log(p_k / p_0), the reference level's row omitted. Continuous: the coefficients of the
        conditional mean of A (A's units).
    intercept_ : float or ndarray of shape (n_levels - 1,)
    sigma_, treatment_mean_, treatment_sd_ : float
        Continuous treatments: the residual SD of the GPS model and the mean and SD of A (divisor Σ
        sample_weight, A's units).
    n_clipped_ : int
        Continuous treatments: units whose conditional density was floored (see ``weights_``).
    terms_ : list of str
        The balanced terms: model-matrix columns (categoricals in reference-level coding), then powers
        (``"age^2"``) and products (``"age:educ"``); terms implied by earlier ones are left out.
    converged_ : bool
        Whether ``imbalance_`` fell below ``tol`` (with ``over=True``, also whether the GMM minimum is unique: not
        under quasi-separation); otherwise a ConvergenceWarning states it.
    n_iter_ : int
        Newton (trust-region Newton with ``over=True``) iterations, at most ``max_iter``; fewer without convergence
        when the line search stalls (no decrease representable, typically infeasible exact balance). Continuous
        treatments: evaluations of the balance conditions (at most 100 ``max_iter`` (1 + number of terms)).
    imbalance_ : float
        Just-identified: the remaining imbalance (in SDs) at the solution. Over-identified: the largest change of a
        (standardised) coefficient that one more Newton step on the GMM objective would make.
    separation_ : list of str
        When a propensity score reaches 0 or 1 (within 1e-8), the terms that separate treated from controls found
        by a linear-programming test (Konis 2007); then ``converged_`` is False and a ConvergenceWarning names them.
        Empty otherwise.
    n_separated_ : int
        Units whose propensity score the separation drives to 0 or 1 (0 without separation).
    n_bounded_ : int
        Over-identified: units whose first-step propensity score lies within 1e-12 of 0 or 1, bounded there in the
        GMM weight matrix (warned); 0 otherwise (and for multi-category treatments).
    treatment_levels_, n_features_in_, feature_names_in_
        As in :class:`PropensityWeights`.

    See Also
    --------
    InverseProbabilityTilting, EntropyBalance : for the ATT the three give identical weights up to scale.

    Notes
    -----
    Estimating equations (``_m_parts``, for M-estimation standard errors) are those of the just-identified
    version: ψ_i(β) = s_i (2A_i − 1) w_i(β) (1, X_i), with analytic derivatives; continuous: θ = (τ², μ, σ², β)
    on the standardised scale of :class:`PropensityWeights` with the balance conditions s w (z − μ) D in place of
    the least-squares score (WeightIt 1.5.1 offers no M-estimation for the CBGPS; these just-identified equations
    are tested by identities); multi-category:
    ψ_ik(β) = s_i (1{A_i = 0} − 1{A_i = k}) w_i(β) (1, X_i), k = 1..K−1, parameters level by level (names
    ``"<level>:<term>"``). The over-identified version has none (it is a GMM estimator with more conditions than
    parameters); use an HC0 or bootstrap variance.

    The over-identified estimate depends on the optimiser only through its tolerance: this implementation solves
    the two-step GMM problem to rounding level (trust-region Newton with the exact Hessian, then Newton steps),
    while WeightIt 1.5.1 stops BFGS at a relative change of 1e-10 of the square-rooted objective; on lalonde the
    two agree to about 1e-5 in the weights (the R package CBPS, whose GMM is set up differently, differs more).
    With sampling weights the GMM weight matrix uses them once (frequency-weight form, so integer weights equal
    repeated rows), where WeightIt uses their squares; without sampling weights the two coincide.

    References
    ----------
    Imai, K., & Ratkovic, M. (2014). Covariate balancing propensity score. JRSS B 76(1), 243–263.
    Greifer, N. (2024). WeightIt: Weighting for Covariate Balance in Observational Studies. R package 1.5.1.

    Examples
    --------
    >>> from balance import CBPS
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> cb = CBPS(estimand="ATT").fit(data.X, data.treatment)
    >>> round(float(cb.weights_[data.treatment == 0].sum()), 6)  # exactly the number treated
    185.0

    A three-level treatment: every level's weights have the same sum and the same weighted covariate means.

    >>> race = data.X["race"]
    >>> cb = CBPS().fit(data.X.drop(columns="race"), race)
    >>> cb.weights_.groupby(race, observed=True).sum().round(3).tolist()
    [616.406, 616.406, 616.406]

    A continuous treatment (1975 earnings): the weighted treatment is uncorrelated with every covariate.

    >>> import numpy as np
    >>> X = data.X.drop(columns="re75")
    >>> cb = CBPS().fit(X, data.X["re75"])
    >>> w, dose = cb.weights_, data.X["re75"]
    >>> centred = dose - np.average(dose)
    >>> bool(abs(np.sum(w * centred * X["age"])) / np.sum(w * centred.abs() * X["age"]) < 1e-10)
    True
    """

    _supported_estimands = ("ATE", "ATT", "ATC", "ATO")
    _supported_treatment_types = ("binary", "multi-category", "continuous")

    def __init__(self, estimand="ATE", *, over=False, moments=1, interactions=False, treated=None,
                 treatment_type="auto", tol=1e-8, max_iter=100, missing="error"):
        self.estimand = estimand
        self.over = over
        self.moments = moments
        self.interactions = interactions
        self.treated = treated
        self.treatment_type = treatment_type
        self.tol = tol
        self.max_iter = max_iter
        self.missing = missing

    # -- fitting ----------------------------------------------------------------------------------------------
    def fit(self, X, treatment, sample_weight=None):
        """Estimate the CBPS coefficients and the weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        treatment : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Sampling weights: they weight the balance conditions and multiply the weights.

        Returns
        -------
        self
        """
        check_solver_params(self)
        if any_dask(X, treatment, sample_weight):
            return self._fit_dask(X, treatment, sample_weight)
        data = self._validate_data(X, treatment, sample_weight)
        M, self.terms_ = fit_terms(self, data)
        for attr in ("sigma_", "treatment_mean_", "treatment_sd_", "n_clipped_", "_gps"):
            self.__dict__.pop(attr, None)  # continuous-only facts a previous fit may have left
        if data.treatment.kind == "continuous":
            return self._fit_continuous(data, M)
        if data.treatment.kind == "multi-category":
            return self._fit_multi(data, M)
        a, sw = data.a, data.sample_weight
        estimand = self._estimand()
        if estimand == "ATO":
            fit = fit_logistic(M, a, sw, tol=self.tol, max_iter=self.max_iter)
            coef, converged, n_iter, imbalance = fit.coef, fit.converged, fit.n_iter, fit.score_norm
        else:
            active, s, r = balance_sides(a, estimand)
            if estimand != "ATE":
                check_reachable(M, sw, active, r, self.terms_, "CBPS")
            fit = solve_balance(M, sw, active, s, r, names=self.terms_, tol=self.tol, max_iter=self.max_iter)
            coef, converged, n_iter, imbalance = fit.coef, fit.converged, fit.n_iter, fit.imbalance
        over = self.over and estimand != "ATO"
        if not converged and over:
            # no exact-balance solution to start from (typically infeasible): the GMM weight matrix, undefined at the
            # stalled solve, is taken at the logistic MLE instead, the other consistent first step
            warnings.warn(f"CBPS(over=True): the exact-balance first step did not converge (remaining imbalance "
                          f"{imbalance:.2e} SDs); the GMM starts from the logistic MLE and takes its weight matrix "
                          "there.", UserWarning, stacklevel=2)
            coef = fit_logistic(M, a, sw, tol=self.tol, max_iter=self.max_iter).coef
        elif not converged:
            warn_not_converged("CBPS", n_iter, self.max_iter, imbalance, self.tol)
        self.n_bounded_ = 0
        if over:
            # the GMM weight matrix bounds first-step propensities to [1e-12, 1 - 1e-12]: count and report them
            self.n_bounded_ = int(np.sum(np.abs(coef[0] + M @ coef[1:]) > _LOGIT_BOUND))
            if self.n_bounded_:
                warnings.warn(
                    f"CBPS(over=True): {self.n_bounded_} units have first-step propensity scores within 1e-12 of 0 or "
                    "1 (near separation); the GMM weight matrix bounds them to [1e-12, 1 - 1e-12]. This changes only "
                    "the efficiency weighting of the moment conditions, not the weights' formula.", UserWarning,
                    stacklevel=2,
                )
            coef, problems, n_iter, imbalance, flatness = _over_identified(M, a, sw, estimand, coef, self.max_iter,
                                                                           self.tol)
            converged = not problems
            if problems:  # the Hessian's flatness below says something only at a minimum
                warnings.warn(
                    f"CBPS(over=True): the GMM solver did not converge in {n_iter} iterations (max_iter={self.max_iter}): "
                    f"{problems}; raise max_iter or loosen tol.", ConvergenceWarning, stacklevel=2,
                )
            elif flatness < _FLAT:
                converged = False
                warnings.warn(
                    f"CBPS(over=True): the GMM objective is flat along some direction at its minimum (Hessian "
                    f"eigenvalue ratio {flatness:.1e}), so the estimate is not unique and the weights depend on the "
                    "solver's path: typically quasi-separation (covariate patterns seen in one group only). Use the "
                    "just-identified CBPS, or fewer or coarser covariates.", ConvergenceWarning, stacklevel=2,
                )
        self.intercept_, self.coef_ = float(coef[0]), coef[1:]
        ps = self._block_ps(M, a, sw)
        e = ps[sw > 0]
        # a score at 0 or 1 is the symptom; the linear program decides whether the data are separated
        separation = find_separation(M, a, sw) if np.any(np.minimum(e, 1 - e) < SYMPTOM_PROB) else None
        report_separation(self, separation, data, "CBPS")
        converged = converged and separation is None
        self.converged_, self.n_iter_, self.imbalance_ = bool(converged), int(n_iter), float(imbalance)
        self.ps_ = self._wrap(ps, data)
        return self._set_weights(self._block_weights(M, a, sw), data)

    def _fit_dask(self, X, treatment, sample_weight):
        """The just-identified binary CBPS of dask input: the in-memory Newton solvers (the balance conditions' dual,
        the logistic MLE for the ATO) with their sums reduced over the partitions."""
        if self.over or self.moments != 1 or self.interactions:
            raise refuse_dask("CBPS with over, moments or interactions", "the over-identified GMM and the extra "
                              "terms need the data in memory; the just-identified CBPS fits on dask")
        data, estimand = self._validate_dask_data(X, treatment, sample_weight)
        for attr in ("sigma_", "treatment_mean_", "treatment_sd_", "n_clipped_", "_gps"):
            self.__dict__.pop(attr, None)
        self._terms_expansion = TermExpansion((), (), ())
        if estimand == "ATO":
            fit, coef, _ = fit_logistic_blocks(data, tol=self.tol, max_iter=self.max_iter)
            converged, n_iter, imbalance = fit.converged, fit.n_iter, fit.score_norm
        else:
            stats = GroupStats.from_blocks(data)
            fit = solve_balance_blocks(data, stats, estimand, names=self.terms_, tol=self.tol,
                                       max_iter=self.max_iter, check=estimand != "ATE")
            coef, converged, n_iter, imbalance = fit.coef, fit.converged, fit.n_iter, fit.imbalance
        if not converged:
            warn_not_converged("CBPS", n_iter, self.max_iter, imbalance, self.tol)
        self.intercept_, self.coef_ = float(coef[0]), coef[1:]
        self.n_bounded_, self.separation_, self.n_separated_ = 0, [], 0
        sums = self._set_dask_outputs(data)
        if sums["min_tail"] < SYMPTOM_PROB:  # the in-memory symptom; its linear-programming test needs all rows
            converged = False
            warn_separation_untested("CBPS", stacklevel=3)
        self.converged_, self.n_iter_, self.imbalance_ = bool(converged), int(n_iter), float(imbalance)
        return self

    def _block_sums(self, M, a, sw):
        """Per block: the weights' concentration sums and the smallest min(e, 1 − e) over units of positive
        sampling weight (the symptom of separation)."""
        e = self._block_ps(M, a, sw)[sw > 0]
        return {**super()._block_sums(M, a, sw), "min_tail": np.minimum(e, 1 - e).min(initial=np.inf)}

    def _block_ps(self, M, a, sw):
        """Propensity scores of one block (all the data in memory)."""
        return expit(self.intercept_ + M @ self.coef_)

    def _block_weights(self, M, a, sw):
        """Weights of one block (all the data in memory)."""
        return odds_weights(self.intercept_ + M @ self.coef_, a, self._estimand()) * sw

    def _block_m_parts(self, M, a, sw):
        """The MParts of one block of dask input: the in-memory balance conditions on that block."""
        return logit_balance_parts(M, a, sw, self._estimand(), np.concatenate([[self.intercept_], self.coef_]),
                                   ("(Intercept)", *self.terms_))

    def predict_weights(self, X, treatment, sample_weight=None):
        """Weights for new units from the fitted propensity model (same formulas and scale as ``weights_``).

        Returns
        -------
        Series or ndarray of shape (n_samples,)
        """
        data, M = new_terms(self, X, treatment, sample_weight)
        if data.treatment.kind == "continuous":
            return self._wrap(self._continuous_weights(data, M)[0], data)
        if data.treatment.kind == "multi-category":
            weights = multi_weights(self._multi_proba(M), data.a, self._estimand(), data.treatment.focal)
            return self._wrap(finite_prediction(weights * data.sample_weight, "CBPS"), data)
        eta = self.intercept_ + M @ self.coef_
        weights = odds_weights(eta, data.a, self._estimand()) * data.sample_weight
        return self._wrap(finite_prediction(weights, "CBPS"), data)

    def predict_proba(self, X):
        """Propensity scores P(treated | X) from the fitted model, shape (n_samples,); multi-category: the
        generalised propensity scores, shape (n_samples, n_levels), columns in level order."""
        check_is_fitted(self, "weights_")
        if self.treatment_type_ == "continuous":
            raise ValueError("predict_proba: a continuous treatment has no treatment probabilities; ps_ holds the "
                             "generalised propensity score (a density) of the fitted units, predict_weights gives "
                             "weights for new units.")
        matrix, names = self.design_.transform(X)
        M, _ = self._terms_expansion.transform(matrix, names)
        if self.treatment_type_ == "multi-category":
            return self._multi_proba(M)
        return expit(self.intercept_ + M @ self.coef_)

    # -- continuous treatments ---------------------------------------------------------------------------------
    def _fit_continuous(self, data, M):
        if self.over:
            raise ValueError("over=True is not available for a continuous treatment (WeightIt's over-identified "
                             "CBGPS has no M-estimation form and a different GMM set-up from the CBPS package's): "
                             "use the just-identified CBGPS (over=False).")
        gps = GPSData.build(data.a, M, data.sample_weight)
        fit = fit_cbgps(gps, tol=self.tol, max_iter=self.max_iter)
        if not fit.converged:
            warnings.warn(
                f"CBPS did not converge for this continuous treatment: the CBGPS balance conditions have no exact root "
                f"that the solver could find (largest remaining imbalance {fit.imbalance:.2e} SDs > tol={self.tol} "
                f"after {fit.n_iter} evaluations), so the weights minimise the imbalance (as WeightIt's do) without "
                "balancing exactly; converged_=False and vcov='asympt' is refused. Check balance_table, or use "
                "PropensityWeights or a balancing method (EntropyBalance) instead.", ConvergenceWarning, stacklevel=3)
        tau2, mu, sigma2 = fit.theta[:3]
        a_scale = gps.treatment_scale.scale[0]
        self.intercept_, self.coef_ = gps.to_original(fit.theta[3:])
        self.treatment_mean_ = float(gps.treatment_scale.center[0] + a_scale * mu)
        self.treatment_sd_ = float(a_scale * np.sqrt(tau2))
        self.sigma_ = float(a_scale * np.sqrt(sigma2))
        self.converged_, self.n_iter_, self.imbalance_ = fit.converged, fit.n_iter, fit.imbalance
        self.n_bounded_ = 0
        for attr in ("separation_", "n_separated_"):  # binary-only facts a previous fit may have left
            self.__dict__.pop(attr, None)
        self._gps = {"scales": gps.scales, "theta": fit.theta}
        weights, log_density, floored = self._continuous_weights(data, M, gps)
        warn_floored(floored, data.index, "CBPS", stacklevel=4)
        self.n_clipped_ = int(floored.sum())
        self.ps_ = self._wrap(np.exp(log_density) / a_scale, data)
        return self._set_weights(weights, data)

    def _continuous_weights(self, data, M, gps=None):
        """Weights, the conditional log density of z (floored) and which units were floored."""
        gps = gps if gps is not None else GPSData.build(data.a, M, data.sample_weight, self._gps["scales"])
        theta = self._gps["theta"]
        fitted = gps.design @ theta[3:]
        log_ratio, log_density, floored = normal_log_weights(gps.z, theta[1], theta[0], fitted, theta[2],
                                                             with_scale=True)
        return data.sample_weight * np.exp(log_ratio), log_density, floored

    # -- multi-category treatments -----------------------------------------------------------------------------
    def _fit_multi(self, data, M):
        estimand = self._estimand()
        fit = fit_multi_cbps(M, data.a, data.treatment.n_levels, data.sample_weight, estimand, data.treatment.focal,
                             over=self.over, tol=self.tol, max_iter=self.max_iter)
        if not fit.converged and self.over:
            warnings.warn(
                f"CBPS(over=True): the GMM solver did not converge in {fit.n_iter} iterations (max_iter="
                f"{self.max_iter}): {fit.problems}; raise max_iter or loosen tol.", ConvergenceWarning, stacklevel=3,
            )
        elif not fit.converged:
            warn_not_converged("CBPS", fit.n_iter, self.max_iter, fit.imbalance, self.tol)
        self.intercept_, self.coef_ = fit.coef[:, 0].copy(), fit.coef[:, 1:].copy()
        self.converged_, self.n_iter_, self.imbalance_ = bool(fit.converged), int(fit.n_iter), float(fit.imbalance)
        self.n_bounded_ = 0
        for attr in ("separation_", "n_separated_"):  # binary-only facts a previous fit may have left
            self.__dict__.pop(attr, None)
        proba = self._multi_proba(M)
        self.ps_ = (pd.DataFrame(proba, index=data.index, columns=pd.Index(data.treatment.levels))
                    if data.index is not None else proba)
        weights = multi_weights(proba, data.a, estimand, data.treatment.focal) * data.sample_weight
        return self._set_weights(weights, data)

    def _multi_proba(self, M):
        return softmax_proba(np.column_stack([np.ones(M.shape[0]), M]), np.column_stack([self.intercept_, self.coef_]))

    # -- M-estimation seam -------------------------------------------------------------------------------------
    def _m_parts(self, X, treatment, sample_weight=None):
        multi = getattr(self, "treatment_type_", None) == "multi-category"
        if self.over and (self._estimand() != "ATO" or multi):
            raise NotImplementedError(
                "the over-identified CBPS is a GMM estimator without an M-estimation form: use an HC0 or bootstrap "
                "variance (WeightIt refuses vcov = 'asympt' here too)."
            )
        data, M = new_terms(self, X, treatment, sample_weight)
        if data.treatment.kind == "continuous":
            if not self.converged_:
                raise ValueError(
                    f"CBPS did not reach exact balance (remaining imbalance {self.imbalance_:.2e}), so its balance "
                    "conditions are not zero at the estimate and the M-estimation sandwich does not apply: use a "
                    "bootstrap variance (or PropensityWeights, whose least-squares equations always have a root)."
                )
            gps = GPSData.build(data.a, M, data.sample_weight, self._gps["scales"])
            return gps_parts(gps, self._gps["theta"], ("(Intercept)", *self.terms_), balance=True)
        if data.treatment.kind == "multi-category":
            return multi_balance_parts(M, data, self._estimand(), self.intercept_, self.coef_, self.terms_)
        return self._block_m_parts(M, data.a, data.sample_weight)


def multi_balance_parts(M, data, estimand, intercept, coef, terms):
    """:class:`MParts` of the multinomial balance conditions ψ_ik = s_i (1{A_i = 0} − 1{A_i = k}) w_i (1, X_i),
    θ the (K − 1) × (1 + p) softmax coefficients, level by level."""
    design = np.column_stack([np.ones(len(data.a)), M])
    codes, sw, focal = data.a, data.sample_weight, data.treatment.focal
    shape = coef.shape[0], coef.shape[1] + 1
    base = balance_base(design, codes, data.treatment.n_levels, sw)

    def proba(theta):
        return softmax_proba(design, theta.reshape(shape))

    def weights_jacobian(theta):
        p = proba(theta)
        return chain_to_coef(design, p, multi_weights_derivative(p, codes, estimand, focal)) * sw[:, None]

    return MParts(
        params=np.column_stack([intercept, coef]).ravel(),
        names=tuple(f"{level}:{term}" for level in data.treatment.levels[1:] for term in ("(Intercept)", *terms)),
        psi=lambda theta: balance_psi(base, proba(theta), codes, estimand, focal),
        weights=lambda theta: multi_weights(proba(theta), codes, estimand, focal) * sw,
        psi_jacobian=lambda theta: balance_jacobian(base, design, proba(theta), codes, estimand, focal),
        weights_jacobian=weights_jacobian,
    )


# ----------------------------------------------------------------------------------------------------------------
# over-identified CBPS: two-step GMM (WeightIt's set-up)
# ----------------------------------------------------------------------------------------------------------------
_LOGIT_BOUND = float(np.log((1 - 1e-12) / 1e-12))
# Smallest ratio of the GMM Hessian's eigenvalues (standardised coefficients) at which the minimum counts as unique:
# 0.05-0.3 on lalonde and on simulated designs, below 1e-8 under quasi-separation, where the minimum is a valley.
_FLAT = 1e-8


def _balance_variance(eta, estimand):
    """h² / (e(1 − e)) of the GMM weight matrix through the logit, finite where e rounds to 0 or 1 (there the
    ratio of probabilities is 0/0): ATT e/(1 − e), ATC (1 − e)/e, ATE 1/(e(1 − e)).

    e is bounded to [1e-12, 1 − 1e-12] here (PropensityWeights' numerical bound): a converged exact-balance fit
    near separation can put logits in the thousands, where these ratios overflow and Σ has no inverse. The weight
    matrix only sets the GMM estimate's efficiency, not what it estimates.
    """
    eta = np.clip(eta, -_LOGIT_BOUND, _LOGIT_BOUND)
    if estimand == "ATT":
        return np.exp(eta)
    if estimand == "ATC":
        return np.exp(-eta)
    return 2.0 + np.exp(eta) + np.exp(-eta)


def _over_identified(M, a, sw, estimand, start, max_iter, tol):
    """Minimise ḡ(β)' W ḡ(β), ḡ the mean of (logistic score, balance conditions), W = Σ(β_just)⁻¹.

    Σ is the covariance of the two sets of conditions averaged over the treatment (WeightIt's ``Sigma``): with
    e the propensity score and h the estimand's tilting, the score block is sw e(1 − e) zz', the cross block
    sw h zz' (h = 1, e, 1 − e for ATE, ATT, ATC) and the balance block sw h² / (e(1 − e)) zz'.
    Solved on standardised covariates by a trust-region Newton method with the analytic gradient 2 Gᵀ W ḡ and
    Hessian. Returns the coefficients, what kept it from converging ("" when the optimiser finished, every Newton
    step lowered the objective and the last was below ``tol``), the iterations, the last Newton step, and the ratio
    of the smallest to the largest Hessian eigenvalue at the solution (near 0: not a unique minimum).
    """
    std = Standardizer.fit(M, np.average(M, axis=0, weights=sw))
    Z = std.design(M)
    n = len(a)
    sign = np.where(a == 1, 1.0, -1.0)

    def moments(beta):
        eta = Z @ beta
        e = expit(eta)
        g = np.concatenate([Z.T @ (sw * (a - e)), Z.T @ (sw * sign * odds_weights(eta, a, estimand))]) / n
        return eta, e, g

    def tilt(e):
        return {"ATE": np.ones_like(e), "ATT": e, "ATC": 1.0 - e}[estimand]

    eta0 = Z @ std.to_standard(start)
    e0 = expit(eta0)
    h = tilt(e0)
    # sampling weights enter once (frequency-weight form), so that integer weights equal repeated rows;
    # WeightIt uses their squares (a survey-variance form), which differs only when sample weights are given
    blocks = [[(Z * (sw * e0 * (1 - e0))[:, None]).T @ Z, (Z * (sw * h)[:, None]).T @ Z],
              [None, (Z * (sw * _balance_variance(eta0, estimand))[:, None]).T @ Z]]
    blocks[1][0] = blocks[0][1].T
    # Σ is close to singular when propensities are small (the score and the balance conditions then nearly
    # coincide): as WeightIt's generalized_inverse (MASS::ginv), singular values below 1e-8 of the largest are
    # dropped, instead of inverting rounding noise; the inverse is made exactly symmetric, so that the analytic
    # gradient 2 Gᵀ W ḡ is that of ḡᵀ W ḡ
    weight = np.linalg.pinv(np.block(blocks) / sw.sum(), rcond=1e-8, hermitian=True)
    weight = (weight + weight.T) / 2.0

    def objective(beta):
        eta, e, g = moments(beta)
        jac = np.vstack([
            -(Z * (sw * e * (1 - e))[:, None]).T @ Z,
            (Z * (sw * sign * odds_weights_derivative(eta, a, estimand))[:, None]).T @ Z,
        ]) / n
        wg = weight @ g
        return float(g @ wg), 2.0 * jac.T @ wg

    def hessian(beta):
        # 2 (Gᵀ W G + Σ_k (W ḡ)_k ∇²ḡ_k): the second derivatives of the score are −s e(1 − e)(1 − 2e) zz', those
        # of the balance conditions s (2A − 1) w''(η) zz' with w'' = |w'| for the exponential weights
        eta, e, g = moments(beta)
        jac = np.vstack([
            -(Z * (sw * e * (1 - e))[:, None]).T @ Z,
            (Z * (sw * sign * odds_weights_derivative(eta, a, estimand))[:, None]).T @ Z,
        ]) / n
        wg = weight @ g
        k = Z.shape[1]
        curvature = (-sw * e * (1 - e) * (1 - 2 * e) * (Z @ wg[:k])
                     + sw * sign * np.abs(odds_weights_derivative(eta, a, estimand)) * (Z @ wg[k:]))
        return 2.0 * (jac.T @ weight @ jac + (Z * (curvature / n)[:, None]).T @ Z)

    # trust-region Newton with the exact Hessian, then guarded Newton steps: the solution at rounding level
    beta, n_iter, step, problems = gmm_minimum(objective, hessian, std.to_standard(start), max_iter, tol)
    eigenvalues = np.linalg.eigvalsh(hessian(beta))
    flatness = float(max(eigenvalues[0], 0.0) / eigenvalues[-1]) if eigenvalues[-1] > 0 else 0.0
    return std.to_original(beta), problems, n_iter, step, flatness
