"""Propensity-score weights: inverse probability weights and their tilted versions (ATT, ATO, ...), and the
generalised propensity score of a continuous treatment."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from .._base import BaseWeighter, MParts, warn_units
from .._dask import any_dask
from .._dask_data import refuse_dask
from ..diagnostics._weights import concentration_sums
from .._validation import check_constant, check_full_rank
from ._gps import DENSITIES, GPSData, gps_parts, kernel_log_weights, normal_log_weights, warn_floored
from ._estimands import (arm_weights, arm_weights_derivative, crump_alpha, crump_alpha_blocks, multi_weights,
                         multi_weights_derivative)
from ._logistic import fit_logistic, fit_logistic_blocks, report_separation, warn_separation_untested
from ._multinomial import (chain_to_coef, fit_multinomial, multinomial_information, multinomial_score,
                           softmax_proba)
from ._trim import trim_weights

# Propensity scores closer than this to 0 or 1 are bounded to it (and reported) so that weights stay finite.
PS_BOUND = 1e-12


class PropensityWeights(BaseWeighter):
    """Inverse-probability weights from a propensity score, for six estimands (three for multi-category treatments).

    The propensity score e(X) = P(treated | X) comes from an exact logistic maximum-likelihood fit (the default,
    as R's ``glm`` and WeightIt's ``method = "glm"``), from any scikit-learn classifier with ``predict_proba``, or
    from scores the user already has (``model="precomputed"``). The weights are the ATE weight times the estimand's
    tilting function (Li, Morgan & Zaslavsky 2018); see :func:`balance.weights_from_propensity`.

    A continuous treatment (a dose) gets the generalised propensity score (Hirano & Imbens 2004; Robins, Hernán &
    Brumback 2000): the weight is the stabilised density ratio f(A) / f(A | X), with f(A | X) from a normal linear
    model of A on the covariates (least squares, WeightIt's ``method = "glm"``), or from any scikit-learn regressor
    for the conditional mean, and f(A) the marginal density; both densities are normal or kernel density estimates
    of the standardised values (``density``). See Notes for the exact scale.

    A multi-category treatment (K ≥ 3 levels) gets generalised propensity scores p_k(X) = P(A = k | X) from an
    exact multinomial logistic maximum-likelihood fit (WeightIt's own softmax fit, the first level the reference)
    or a classifier, and the weights 1/p_A (ATE), p_f/p_A with f the focal level ``treated`` (ATT: every level
    weighted to the focal level's covariate distribution) or 1/(p_A Σ_k 1/p_k) (ATO, generalised overlap weights,
    Li & Li 2019).

    Parameters
    ----------
    estimand : {"ATE", "ATT", "ATC", "ATO", "ATM", "ATOS"}, default="ATE"
        Target population. ATO = overlap weights, ATM = matching weights, ATOS = Crump et al.'s optimal subset
        (units with e outside [α, 1 − α] get weight 0; α is reported as ``atos_alpha_``). Multi-category
        treatments: "ATE", "ATT" (with ``treated`` the focal level) or "ATO". Continuous treatments: "ATE".
    model : None, scikit-learn classifier or regressor, or "precomputed", default=None
        None: exact logistic MLE (multinomial for a multi-category treatment; Newton–Raphson until the score is
        below ``tol``; this is not scikit-learn's penalised ``LogisticRegression``). A classifier: a clone is fitted
        to (X, treatment codes) and its ``predict_proba`` gives the scores. ``"precomputed"``: ``X`` holds the
        propensity scores themselves (one column; multi-category: one column per level, a DataFrame's columns
        matched to the levels by name, an array's in level order). Continuous treatments: None is the normal
        linear model (weighted least squares of A on the covariates); a regressor (with ``predict``, not a
        classifier) is fitted to (X, A) (with ``sample_weight`` when given) and gives the conditional mean;
        "precomputed" is not available.
    treated : scalar, default=None
        Which treatment level is treated. Needed only when the treatment is neither 0/1 nor boolean (then 1 or True
        is treated); the package never guesses between two labels. Multi-category treatments: the focal level of
        the ATT.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default="auto"
        What the treatment is; ``"auto"`` decides from the data (two values: binary; categorical or text with more
        levels: multi-category; float: continuous; integers with more than two values: an error asking for this
        parameter). See :mod:`balance._treatment`.
    density : {"normal", "kernel"}, default="normal"
        Continuous treatments only: the density of the standardised treatment (numerator) and of the standardised
        residuals A − m(X) (denominator). "normal": the standard normal density (WeightIt's default); "kernel": a
        weighted Gaussian kernel density estimate with R's ``bw.nrd0`` bandwidth (WeightIt's
        ``density = "kernel"``, computed the same binned way as R's ``density``), for residuals that are not
        normal.
    clip : tuple (lo, hi) or None, default=None
        Bound the propensity scores to [lo, hi] before weighting (multi-category: every generalised score, without
        renormalising). Off by default; the number of units clipped (any of their scores) is stored in
        ``n_clipped_`` and a warning says how many.
    trim : float, int or None, default=None
        Winsorise the weights after computing them, as WeightIt's ``trim()``: a float in [0.5, 1) is the quantile
        above which weights are set to that quantile; an integer k sets the k largest weights to the next largest.
        The focal group (treated for the ATT, controls for the ATC, the focal level of a multi-category ATT) is left
        alone. Reported in ``n_trimmed_`` and by a warning.
    trim_lower : bool, default=False
        Trim the lower tail too (at 1 − ``trim``, or the k smallest weights).
    tol : float, default=1e-8
        Convergence tolerance of the logistic MLE on the score (see :func:`~balance.weights._logistic.fit_logistic`).
    max_iter : int, default=100
        Maximum number of Newton iterations.
    missing : {"error", "indicator"}, default="error"
        Missing covariate values: ``"error"`` raises naming the column; ``"indicator"`` adds a missingness
        indicator ``<column>:<NA>`` per incomplete column and fills its missing values with the observed median
        (WeightIt's and cobalt's approach), so the propensity model uses the missingness pattern.

    Attributes
    ----------
    weights_ : Series or ndarray of shape (n_samples,)
        Analysis weights, sampling weights included. Scale: WeightIt's ``glm`` (unnormalised; ATT: treated 1,
        controls e/(1 − e); ATE: 1/e and 1/(1 − e)). Multiplying one group's weights by a constant changes no
        balance statistic, ESS or weighted difference in means.
    ps_ : Series or ndarray of shape (n_samples,); DataFrame or ndarray of shape (n_samples, n_levels)
        Propensity scores used (after ``clip`` and the numerical bound below). Multi-category treatments: the
        generalised propensity scores, one column per level (named by the levels when X is a DataFrame).
        Continuous treatments: the generalised propensity score, the conditional density f(A | X) at the observed
        treatment, in units of 1/A.
    coef_ : ndarray of shape (n_terms,) or (n_levels - 1, n_terms)
        Logistic coefficients on the original covariate scale, one per entry of ``terms_`` (default model only);
        continuous treatments: the least-squares coefficients of A on the covariates (A's units).
        Multi-category: row k − 1 holds the coefficients of log(p_k / p_0), k = 1..K−1, the reference (first)
        level's row omitted.
    intercept_ : float or ndarray of shape (n_levels - 1,)
        Logistic intercept(s) (default model only).
    coef_table_ : DataFrame
        The propensity model's coefficients as R's ``summary(glm)`` shows them (default model only): one row per
        parameter (``"(Intercept)"`` and ``terms_``; multi-category ``"<level>:<term>"`` for each non-reference
        level), columns ``estimate``, ``std_err`` (model-based: the inverse Fisher information, sampling weights
        as case weights like ``glm(weights=)``), ``statistic`` (z) and ``p_value`` (two-sided normal). These SEs
        describe the propensity model alone; the effect's SEs account for it through ``vcov="asympt"``. A
        separated or singular fit has infinite SEs.
    terms_ : list of str
        Names of the model matrix columns (categoricals in reference-level coding, e.g. ``race_hispan``).
    converged_ : bool
        Whether the logistic MLE converged: the score norm fell below ``tol`` (default model only; otherwise a
        ConvergenceWarning names the score norm reached). A classifier ``model`` reports its own convergence (e.g.
        scikit-learn's ConvergenceWarning, passed through); precomputed scores involve no solver.
    n_iter_ : int
        Newton iterations used, at most ``max_iter`` (default model only).
    separation_ : list of str
        The terms (of ``terms_``) whose maximum-likelihood coefficients are infinite because they (with the
        intercept) separate treated from controls, found by a linear-programming test (Konis 2007) when the fit
        shows symptoms of separation; empty when the data are not separated. A separated fit has
        ``converged_=False`` and a ConvergenceWarning names the terms (default model only).
    n_separated_ : int
        Units whose propensity score the separation drives to exactly 0 or 1 (0 without separation).
    estimator_ : classifier
        The fitted clone of ``model`` (classifier models only).
    atos_alpha_ : float
        Crump et al.'s threshold (ATOS only).
    n_clipped_, n_trimmed_, n_bounded_ : int
        Units whose score was clipped, whose weight was trimmed, and whose score was numerically 0 or 1 and was
        bounded to [1e-12, 1 − 1e-12] so that weights stay finite (perfect separation; always warned).
        Continuous treatments: ``n_clipped_`` counts the units whose conditional density of the standardised
        residual was floored at exp(−50) (a residual beyond about ten residual SDs; warned), ``n_bounded_`` is 0.
    sigma_ : float
        Continuous treatments: the residual SD of the treatment model (divisor Σ sample_weight, in A's units).
    treatment_mean_, treatment_sd_ : float
        Continuous treatments: the (sampling-weighted) mean and SD (divisor Σ sample_weight) of A: the normal
        numerator density.
    treatment_levels_ : tuple
        (control level, treated level); multi-category: the levels in code order (the first is the reference).
    treatment_type_ : {"binary", "multi-category", "continuous"}
    n_features_in_, feature_names_in_ : int, ndarray
        As in scikit-learn.

    See Also
    --------
    balance.weights_from_propensity : the weight formulas as a function.
    balance.balance_table : balance before and after weighting.

    Notes
    -----
    Estimating equations (the M-estimation seam, ``_m_parts``) are available for the default logistic model
    without ``trim``: the logistic score s_i = w_i (A_i − e_i) (1, X_i) and the weights as functions of the
    coefficients, with analytic derivatives. ``clip`` and the ATOS indicator are treated as fixed maps (their
    derivative is zero where they bind), as is Crump's α. Multi-category: the multinomial score
    s_i (1{A_i = k} − p_k) (1, X_i), k = 1..K−1, with parameters ordered level by level (names
    ``"<level>:<term>"``).

    Continuous treatments follow WeightIt 1.5.1's ``glm`` scale exactly: with z = A standardised by its mean
    and SD and r = A − m(X) standardised by the residual SD (both SDs with divisor n, or Σ sample_weight), the
    weight is φ(z) / φ(r), the density ratio f(A) / f(A | X) times the constant sqrt(Var(A | X) / Var(A)); the
    marginal numerator is the stabilisation. Everything is computed on a standardised scale, so the weights do not
    depend on the treatment's units. The M-estimation parts (normal density, default model, no ``trim``) have
    parameters θ = (Var(A), E(A), Var(A|X), β) on that standardised scale (the treatment and the covariates
    centred and scaled by fixed constants, an exact reparametrisation that leaves sandwich variances unchanged)
    and the estimating equations s((z − μ)² − τ²), s(z − μ), s((z − Dβ)² − σ²) and s D (z − Dβ), D = (1, X), with
    analytic derivatives; with sampling weights s every equation is weighted as a whole (s_i ψ_i(θ), as in the
    package's other weight models), where WeightIt multiplies only the squares by s in the variance equations
    (same estimates, a slightly different sandwich). A kernel density or a regressor has no
    M-estimation form (use a bootstrap).

    Under the normal model the weight's k-th moment is finite only for k < Var(A) / (Var(A) − Var(A | X)): the
    weights have a finite variance only when the treatment model's R² is below 1/2. As R² approaches 1/2 a few
    units carry much of the weight (watch ``ess_``) and sandwich standard errors understate the sampling
    variability in moderate samples (by about a third at R² = 0.46, n = 400, in tests/test_continuous_gps.py).

    Dask input (``X`` a dask DataFrame or array, ``treatment`` and ``sample_weight`` with its partitions; binary
    treatments, the default logistic model, every estimand, ``clip``, no ``trim``): the model is fitted by Newton's
    method with its sums reduced over the partitions, one pass over the data per iteration, to the in-memory
    coefficients, iterations and counts; ``weights_`` and ``ps_`` are lazy dask Series (arrays) with X's
    partitions. See :mod:`balance._blocks`. The separation test needs the data in memory: a fit with its symptoms
    is reported as not converged.

    WeightIt's multinomial fit stops about 4e-7 (relative) short of the exact maximum on lalonde; this one solves
    the score to rounding level, so weights agree with WeightIt's to about that.

    References
    ----------
    Rosenbaum, P. R., & Rubin, D. B. (1983). The central role of the propensity score in observational studies for
    causal effects. Biometrika 70, 41–55.
    Li, F., Morgan, K. L., & Zaslavsky, A. M. (2018). Balancing covariates via propensity score weighting. JASA 113,
    390–400.
    Li, F., & Li, F. (2019). Propensity score weighting for causal inference with multiple treatments. Annals of
    Applied Statistics 13, 2389–2415.
    Hirano, K., & Imbens, G. W. (2004). The propensity score with continuous treatments. In Applied Bayesian
    Modeling and Causal Inference from Incomplete-Data Perspectives, 73–84.
    Robins, J. M., Hernán, M. A., & Brumback, B. (2000). Marginal structural models and causal inference in
    epidemiology. Epidemiology 11, 550–560.
    Greifer, N. (2024). WeightIt: Weighting for Covariate Balance in Observational Studies. R package 1.5.1.

    Examples
    --------
    >>> from balance import PropensityWeights
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> pw = PropensityWeights(estimand="ATT").fit(data.X, data.treatment)
    >>> round(float(pw.weights_[data.treatment == 0].sum()), 3)
    186.999

    A three-level treatment (race), every level weighted to the covariate distribution of the hispanic units:

    >>> X = data.X.drop(columns="race")
    >>> pw = PropensityWeights(estimand="ATT", treated="hispan").fit(X, data.X["race"])
    >>> pw.ps_.columns.tolist(), pw.coef_.shape
    (['black', 'hispan', 'white'], (2, 6))
    >>> pw.weights_[data.X["race"] == "hispan"].unique()  # the focal level keeps weight 1
    array([1.])

    A continuous treatment (1975 earnings, WeightIt's documentation example):

    >>> X = data.X.drop(columns="re75")
    >>> pw = PropensityWeights().fit(X, data.X["re75"])
    >>> pw.treatment_type_, round(float(pw.weights_.sum()), 4)
    ('continuous', 939.1315)
    """

    _supported_treatment_types = ("binary", "multi-category", "continuous")

    def __init__(self, estimand="ATE", *, model=None, treated=None, treatment_type="auto", density="normal",
                 clip=None, trim=None, trim_lower=False, tol=1e-8, max_iter=100, missing="error"):
        self.estimand = estimand
        self.model = model
        self.treated = treated
        self.treatment_type = treatment_type
        self.density = density
        self.clip = clip
        self.trim = trim
        self.trim_lower = trim_lower
        self.tol = tol
        self.max_iter = max_iter
        self.missing = missing

    # -- fitting ----------------------------------------------------------------------------------------------
    def fit(self, X, treatment, sample_weight=None):
        """Fit the propensity model and compute the weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Covariates (numeric, boolean or categorical columns), or the propensity scores when
            ``model="precomputed"``.
        treatment : array-like of shape (n_samples,)
            Binary, multi-category or continuous treatment.
        sample_weight : array-like of shape (n_samples,), default=None
            Sampling (base) weights: they weight the propensity model and multiply the resulting weights.

        Returns
        -------
        self
        """
        self._check_params()
        if any_dask(X, treatment, sample_weight):
            return self._fit_dask(X, treatment, sample_weight)
        data = self._validate_data(X, treatment, sample_weight)
        self._forget()
        self.terms_ = list(data.names)
        self._check_kind_params(data.treatment.kind)
        if data.treatment.kind == "continuous":
            return self._fit_continuous(data)
        multi = data.treatment.kind == "multi-category"
        if self.model is None:
            check_constant(data.X, data.names)
            check_full_rank(data.X, data.names)
            if multi:
                fit = fit_multinomial(data.X, data.a, data.treatment.n_levels, data.sample_weight, tol=self.tol,
                                      max_iter=self.max_iter)
                self.intercept_, self.coef_ = fit.coef[:, 0].copy(), fit.coef[:, 1:].copy()
            else:
                fit = fit_logistic(data.X, data.a, data.sample_weight, tol=self.tol, max_iter=self.max_iter)
                self.intercept_, self.coef_ = float(fit.coef[0]), fit.coef[1:]
            self.converged_, self.n_iter_ = fit.converged, fit.n_iter
            if not multi:
                report_separation(self, fit.separation, data, "PropensityWeights", "use a penalised classifier "
                                  "(model=LogisticRegression()), ")
            if getattr(fit, "separation", None) is None and not fit.converged:
                self._warn_unconverged(fit, "multinomial logistic" if multi else "logistic")
        elif self.model != "precomputed":
            self.estimator_ = clone(self.model).fit(data.X, data.a, sample_weight=data.sample_weight) \
                if sample_weight is not None else clone(self.model).fit(data.X, data.a)
        raw_ps = self._raw_propensity(data)
        if self._estimand() == "ATOS":
            self.atos_alpha_ = crump_alpha(np.clip(raw_ps, PS_BOUND, 1 - PS_BOUND), data.sample_weight)
        ps, weights, counts = self._weights(raw_ps, data)
        self.n_clipped_, self.n_bounded_, self.n_trimmed_ = counts
        if multi and self.model is None and self.n_bounded_ and self.converged_:
            # a multinomial logit whose scores reach 0 or 1 has no finite maximum (quasi-separation; the binary fit
            # tests for it exactly): its "converged" coefficients are a point on a diverging path, not an MLE
            self.converged_ = False
            warnings.warn(
                f"PropensityWeights: {self.n_bounded_} units have generalised propensity scores numerically 0 or 1, "
                "so the multinomial logit is (quasi-)separated: its coefficients diverge and the fit is not a "
                "maximum (converged_=False; vcov='asympt' is refused). Drop or coarsen the covariates that "
                "determine a level, use a penalised classifier (model=LogisticRegression()), or a balancing method.",
                ConvergenceWarning, stacklevel=2,
            )
        if multi and data.index is not None:
            self.ps_ = pd.DataFrame(ps, index=data.index, columns=pd.Index(data.treatment.levels))
        else:
            self.ps_ = self._wrap(ps, data)
        if self.model is None:
            self.coef_table_ = coef_table(self._model_parts(data))
        return self._set_weights(weights, data)

    def predict_weights(self, X, treatment, sample_weight=None):
        """Weights for new units from the fitted propensity model.

        ``clip`` and the fitted ATOS threshold are applied as in ``fit``; ``trim`` is re-applied to the new sample
        (its thresholds are quantiles of that sample, as in a bootstrap replicate). Continuous treatments: the
        fitted conditional mean, residual SD and marginal mean and SD give the normal densities; with
        ``density="kernel"`` the kernel densities are those of the new sample's standardised values.

        Returns
        -------
        Series or ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "weights_")
        data = self._validate_data(X, treatment, sample_weight, reset=False)
        if data.treatment.kind == "continuous":
            return self._wrap(self._continuous_weights(data)[1], data)
        _, weights, _ = self._weights(self._raw_propensity(data), data)  # counted and warned, not stored
        return self._wrap(weights, data)

    def predict_proba(self, X):
        """Propensity scores P(treated | X) from the fitted model (before ``clip``), shape (n_samples,).

        Multi-category treatments: the generalised propensity scores, shape (n_samples, n_levels), columns in
        level order."""
        check_is_fitted(self, "weights_")
        if self.treatment_type_ == "continuous":
            raise ValueError("predict_proba: a continuous treatment has no treatment probabilities; ps_ holds the "
                             "generalised propensity score (a density) of the fitted units, predict_weights gives "
                             "weights for new units.")
        matrix, _ = self.design_.transform(X)
        return self._scores_from_matrix(matrix)

    # -- dask input ---------------------------------------------------------------------------------------------
    def _fit_dask(self, X, treatment, sample_weight):
        """Fit on dask collections: the logistic model by block-reduced Newton (one pass per iteration), the weights
        a lazy dask Series (array) with X's partitions. See :mod:`balance._blocks`."""
        if self.model is not None:
            raise refuse_dask("PropensityWeights with a model", "a scikit-learn model or precomputed scores need the "
                              "data in memory; the default logistic model fits on dask exactly")
        if self.trim is not None:
            raise refuse_dask("PropensityWeights with trim", "trimming needs quantiles of all the weights")
        self._forget()
        data, estimand = self._validate_dask_data(X, treatment, sample_weight)
        fit, coef, symptoms = fit_logistic_blocks(data, tol=self.tol, max_iter=self.max_iter)
        self.intercept_, self.coef_ = float(coef[0]), coef[1:]
        self.converged_, self.n_iter_ = fit.converged and not symptoms, fit.n_iter
        self.separation_, self.n_separated_ = [], 0
        if symptoms:
            warn_separation_untested("PropensityWeights", ", or use EntropyBalance", stacklevel=3)
        elif not fit.converged:
            self._warn_unconverged(fit, "logistic", stacklevel=4)
        if estimand == "ATOS":
            self.atos_alpha_ = crump_alpha_blocks(data.blocks, data.per_block(self._block_state()._tail_scores))
        self.n_trimmed_ = 0
        sums = self._set_dask_outputs(data)
        self.n_clipped_, self.n_bounded_ = int(sums["n_clipped"]), int(sums["n_bounded"])
        self._warn_clipped(self.n_clipped_, self.n_bounded_, "propensity scores", stacklevel=3)
        theta = np.concatenate([[self.intercept_], self.coef_])
        self.coef_table_ = coef_table(MParts(params=theta, names=("(Intercept)", *self.terms_), psi=None,
                                             weights=None, psi_jacobian=lambda t: sums["jacobian"]))
        return self

    def _block_ps(self, matrix, a, sw):
        """The propensity scores of one block of dask input, as in memory."""
        return self._score_weights(self._scores_from_matrix(matrix), a, sw)[0]

    def _block_weights(self, matrix, a, sw):
        """The weights of one block of dask input, as in memory."""
        return self._score_weights(self._scores_from_matrix(matrix), a, sw)[1]

    def _block_sums(self, matrix, a, sw):
        """Per block: the counts of clipped and bounded scores, the sums of the extreme-weights report and the
        score's Jacobian (for the model-based coefficient table)."""
        _, weights, clipped, bounded = self._score_weights(self._scores_from_matrix(matrix), a, sw)
        theta = np.concatenate([[self.intercept_], self.coef_])
        return {"n_clipped": int(clipped.sum()), "n_bounded": int(bounded.sum()), **concentration_sums(weights, a),
                "jacobian": self._binary_parts(matrix, a, sw).psi_jacobian(theta)}

    def _tail_scores(self, matrix, a, sw):
        """Per block: the bounded propensity scores of the units with positive sampling weight, and those weights
        (Crump's α is a function of them)."""
        e = np.clip(self._scores_from_matrix(matrix), PS_BOUND, 1 - PS_BOUND)
        return e[sw > 0], sw[sw > 0]

    def _block_m_parts(self, matrix, a, sw):
        """The MParts of one block of (dask) data: the in-memory code on that block."""
        return self._binary_parts(matrix, a, sw)

    # -- internals ---------------------------------------------------------------------------------------------
    def _forget(self):
        """A refit forgets what the previous model kind set."""
        for attr in ("coef_", "intercept_", "coef_table_", "converged_", "n_iter_", "estimator_", "atos_alpha_",
                     "separation_", "n_separated_", "sigma_", "treatment_mean_", "treatment_sd_", "_gps"):
            self.__dict__.pop(attr, None)

    def _warn_unconverged(self, fit, kind, stacklevel=3):
        cause = (f"a Newton step could not increase the likelihood after {fit.n_iter} iterations"
                 if getattr(fit, "stalled", False)
                 else f"it did not converge in {fit.n_iter} iterations (max_iter={self.max_iter})")
        warnings.warn(
            f"PropensityWeights: the {kind} propensity model stopped unconverged: {cause}; score norm "
            f"{fit.score_norm:.2e} > tol={self.tol}. Raise max_iter, loosen tol, or simplify the model.",
            ConvergenceWarning, stacklevel=stacklevel,
        )

    def _check_params(self):
        if (self.model is not None and not (isinstance(self.model, str) and self.model == "precomputed")
                and not hasattr(self.model, "predict_proba") and not hasattr(self.model, "predict")):
            raise TypeError(f"model must be None, 'precomputed', a classifier with predict_proba or (continuous "
                            f"treatments) a regressor with predict; got {self.model!r}.")
        if not (isinstance(self.density, str) and self.density in DENSITIES):
            raise ValueError(f"density={self.density!r} is not supported; choose one of {list(DENSITIES)}.")
        if self.clip is not None:
            pair = np.asarray(self.clip, dtype=object)
            if pair.shape != (2,) or not all(isinstance(v, numbers.Real) for v in pair) or not 0 <= pair[0] < pair[1] <= 1:
                raise ValueError(f"clip={self.clip!r} must be a pair (lo, hi) with 0 <= lo < hi <= 1, e.g. "
                                 "clip=(0.05, 0.95) to bound the propensity scores to [0.05, 0.95].")
        if self.trim is not None and not isinstance(self.trim, numbers.Real):
            raise ValueError(f"trim={self.trim!r} must be a quantile in [0.5, 1), a count, or None.")
        if not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError(f"max_iter={self.max_iter!r} must be a positive integer.")

    def _check_kind_params(self, kind):
        """The parameters that depend on the treatment's type, checked once the type is known."""
        precomputed = isinstance(self.model, str) and self.model == "precomputed"
        if kind != "continuous":
            if self.density != "normal":
                raise ValueError(f"density={self.density!r} applies to continuous treatments only; this treatment is "
                                 f"{kind}: leave density='normal'.")
            if self.model is not None and not precomputed and not hasattr(self.model, "predict_proba"):
                raise TypeError(f"model must be a classifier with predict_proba for a {kind} treatment; got "
                                f"{self.model!r}.")
            return
        if precomputed:
            raise ValueError("model='precomputed' is not available for a continuous treatment: pass None (normal "
                             "linear model) or a scikit-learn regressor for the conditional mean of the treatment.")
        if self.model is not None and (is_classifier(self.model) or not hasattr(self.model, "predict")):
            raise TypeError(f"a continuous treatment needs a regressor (with predict) for its conditional mean; got "
                            f"{self.model!r}.")
        if self.clip is not None:
            raise ValueError(f"clip={self.clip!r} bounds propensity scores (probabilities) and has no meaning for a "
                             "continuous treatment: use trim= to winsorise large weights.")

    # -- continuous treatments ---------------------------------------------------------------------------------
    def _fit_continuous(self, data):
        """Fit the conditional-mean model and compute the GPS weights (see the class Notes)."""
        gps = GPSData.build(data.a, data.X, data.sample_weight)
        tau2, mu = gps.marginal()
        if self.model is None:
            check_constant(data.X, data.names)
            check_full_rank(data.X, data.names)
            beta, _, sigma2 = gps.ols()
            self.intercept_, self.coef_ = gps.to_original(beta)
            self.converged_ = True  # least squares is solved directly
        else:
            self.estimator_ = clone(self.model).fit(data.X, data.a, sample_weight=data.sample_weight) \
                if self.sample_weight_ is not None else clone(self.model).fit(data.X, data.a)
            fitted = gps.standardise(self.estimator_.predict(data.X))
            beta, sigma2 = None, float(np.average((gps.z - fitted) ** 2, weights=data.sample_weight))
        if not sigma2 > 1e-16 * tau2:  # residual SD below 1e-8 of the treatment's: A is a function of X
            raise ValueError("the treatment model fits the treatment exactly (residual variance 0), so f(A | X) is "
                             "degenerate: the covariates determine the treatment; drop the covariate(s) that do, or "
                             "use a less flexible model.")
        a_scale = gps.treatment_scale.scale[0]
        self.treatment_mean_ = float(gps.treatment_scale.center[0] + a_scale * mu)
        self.treatment_sd_ = float(a_scale * np.sqrt(tau2))
        self.sigma_ = float(a_scale * np.sqrt(sigma2))
        self._gps = {"scales": gps.scales, "marginal": (tau2, mu), "sigma2": sigma2, "beta": beta}
        log_density, weights, counts = self._continuous_weights(data, gps)
        self.n_clipped_, self.n_bounded_, self.n_trimmed_ = counts
        self.ps_ = self._wrap(np.exp(log_density - np.log(self.sigma_)), data)
        return self._set_weights(weights, data)

    def _continuous_weights(self, data, gps=None):
        """Log conditional density of the standardised residual, weights, and the counts (floored, 0, trimmed)."""
        state = self._gps
        gps = gps if gps is not None else GPSData.build(data.a, data.X, data.sample_weight, state["scales"])
        tau2, mu = state["marginal"]
        fitted = gps.design @ state["beta"] if self.model is None else gps.standardise(self.estimator_.predict(data.X))
        if self.density == "normal":
            log_ratio, log_den, floored = normal_log_weights(gps.z, mu, tau2, fitted, state["sigma2"])
        else:
            log_ratio, log_den, floored = kernel_log_weights((gps.z - mu) / np.sqrt(tau2),
                                                             (gps.z - fitted) / np.sqrt(state["sigma2"]),
                                                             data.sample_weight)
        warn_floored(floored, data.index, "PropensityWeights")
        weights, n_trimmed = self._trim(np.exp(log_ratio) * data.sample_weight, np.zeros(len(data.a), dtype=int),
                                        None)
        return log_den, weights, (int(floored.sum()), 0, n_trimmed)

    def _scores_from_matrix(self, matrix):
        if self.treatment_type_ == "multi-category":
            return self._multi_scores_from_matrix(matrix)
        if self.model is None:
            return expit(self.intercept_ + matrix @ self.coef_)
        if self.model == "precomputed":
            if matrix.shape[1] != 1:
                raise ValueError(f"with model='precomputed', X must be one column of propensity scores; got {matrix.shape[1]}.")
            ps = matrix[:, 0]
            if np.any((ps < 0) | (ps > 1)):
                raise ValueError("precomputed propensity scores must lie in [0, 1].")
            return ps
        proba = self.estimator_.predict_proba(matrix)
        classes = list(self.estimator_.classes_)
        return proba[:, classes.index(1)]

    def _multi_scores_from_matrix(self, matrix):
        """Generalised propensity scores, shape (n, K), columns in level order."""
        n_levels = len(self.treatment_levels_)
        if self.model is None:
            return softmax_proba(np.column_stack([np.ones(matrix.shape[0]), matrix]),
                                 np.column_stack([self.intercept_, self.coef_]))
        if self.model == "precomputed":
            if matrix.shape[1] != n_levels:
                raise ValueError(f"with model='precomputed' and a multi-category treatment, X must hold one column of "
                                 f"generalised propensity scores per level ({n_levels}, in the order "
                                 f"{list(self.treatment_levels_)}); got {matrix.shape[1]}.")
            matrix = matrix[:, self._precomputed_level_columns()]
            if np.any((matrix < 0) | (matrix > 1)) or not np.allclose(matrix.sum(axis=1), 1.0, rtol=0, atol=1e-6):
                raise ValueError("precomputed generalised propensity scores must lie in [0, 1] and sum to one in "
                                 "each row.")
            return matrix
        proba = self.estimator_.predict_proba(matrix)
        classes = list(self.estimator_.classes_)
        return proba[:, [classes.index(code) for code in range(n_levels)]]

    def _precomputed_level_columns(self):
        """Positions of the levels among the columns of precomputed generalised scores: a DataFrame's columns are
        matched to the levels by name (as ``weights_from_propensity`` does), others are taken in level order."""
        levels = [str(level) for level in self.treatment_levels_]
        names = [str(name) for name in getattr(self, "feature_names_in_", ())]
        if not set(names) & set(levels):
            return list(range(len(levels)))
        if sorted(names) != sorted(levels):
            raise ValueError(f"with model='precomputed', the columns of X {names} must name the levels {levels} "
                             "(in any order), or pass an array with the columns in level order.")
        return [names.index(level) for level in levels]

    def _raw_propensity(self, data):
        return self._scores_from_matrix(data.X)

    def _weights(self, raw_ps, data):
        """Clip, bound, weight and trim, warning about every unit touched.

        Returns the scores, the weights and the counts (clipped, bounded, trimmed); ``fit`` stores the counts,
        ``predict_weights`` only warns (prediction never changes fitted state).
        """
        ps, weights, clipped, extreme = self._score_weights(raw_ps, data.a, data.sample_weight, data.treatment.focal)
        n_clipped, n_bounded = int(clipped.sum()), int(extreme.sum())
        what = "units' generalised propensity scores" if ps.ndim == 2 else "propensity scores"
        self._warn_clipped(n_clipped, n_bounded, what, stacklevel=3, bounded=extreme, index=data.index)
        weights, n_trimmed = self._trim(weights, data.a, self._focal(data))
        return ps, weights, (n_clipped, n_bounded, n_trimmed)

    def _warn_clipped(self, n_clipped, n_bounded, what, *, stacklevel, bounded=None, index=None):
        """Warn how many scores ``clip`` clipped and how many were bounded away from 0 and 1 (naming the bounded
        units when their mask ``bounded`` is known: in memory, not on dask). ``stacklevel``: the caller's."""
        if n_clipped:
            warnings.warn(f"clip={self.clip}: {n_clipped} {what} were clipped.", UserWarning,
                          stacklevel=stacklevel + 1)
        if n_bounded:
            message = (f"{n_bounded} propensity scores are numerically 0 or 1 (perfect separation or a degenerate "
                       "model); they were bounded to [1e-12, 1 - 1e-12] to keep weights finite, but those weights are "
                       "extreme. Consider clip=, a different estimand (ATO) or a simpler model")
            if bounded is None:
                warnings.warn(message + ".", UserWarning, stacklevel=stacklevel + 1)
            else:
                warn_units(message, bounded, index, stacklevel=stacklevel + 2)

    def _score_weights(self, raw_ps, a, sw, focal=None):
        """Clip and bound the scores and weight them (no trim, no warnings): the scores, the weights and the per-unit
        flags of clipped and bounded scores. One block of dask data, or all the data in memory."""
        ps = raw_ps
        clipped = np.zeros(len(a), dtype=bool)
        if self.clip is not None:
            ps = np.clip(raw_ps, *self.clip)
            clipped = _per_unit(ps != raw_ps)
        extreme = _per_unit((ps < PS_BOUND) | (ps > 1 - PS_BOUND))
        ps = np.clip(ps, PS_BOUND, 1 - PS_BOUND)
        if ps.ndim == 2:
            weights = multi_weights(ps, a, self._estimand(), focal) * sw
        else:
            weights = arm_weights(ps, a, self._estimand(), getattr(self, "atos_alpha_", 0.0)) * sw
        return ps, weights, clipped, extreme

    def _trim(self, weights, groups, focal):
        """Apply ``trim`` (if set), warning how many weights it changed: the weights and that count."""
        if self.trim is None:
            return weights, 0
        weights, touched = trim_weights(weights, groups, self.trim, lower=self.trim_lower, focal=focal)
        n_trimmed = int(touched.sum())
        if n_trimmed:
            warnings.warn(f"trim={self.trim}: {n_trimmed} weights were trimmed.", UserWarning, stacklevel=4)
        return weights, n_trimmed

    def _focal(self, data):
        if data.treatment.kind == "multi-category":
            return data.treatment.focal if self._estimand() == "ATT" else None
        return {"ATT": 1, "ATC": 0}.get(self._estimand())

    # -- M-estimation seam -------------------------------------------------------------------------------------
    def _m_parts(self, X, treatment, sample_weight=None):
        check_is_fitted(self, "weights_")
        if self.model is not None:
            raise NotImplementedError(
                "M-estimation needs the default model (logistic; least squares for a continuous treatment); with a "
                "classifier, a regressor or precomputed scores the weights' estimating equations are unknown: use a "
                "bootstrap variance."
            )
        if self.trim is not None:
            raise NotImplementedError("trimmed weights have no M-estimation form: use a bootstrap variance.")
        data = self._validate_data(X, treatment, sample_weight, reset=False)
        if data.treatment.kind == "continuous":
            return self._continuous_m_parts(data)
        return self._model_parts(data)

    def _model_parts(self, data):
        """MParts of the default logistic (or multinomial) model on validated data."""
        if data.treatment.kind == "multi-category":
            return self._multi_m_parts(data)
        return self._binary_parts(data.X, data.a, data.sample_weight)

    def _binary_parts(self, matrix, a, sw):
        """MParts of the binary logistic model on the model matrix ``matrix`` (no intercept column)."""
        design = np.column_stack([np.ones(len(a)), matrix])
        alpha = getattr(self, "atos_alpha_", 0.0)
        lo, hi = self.clip if self.clip is not None else (0.0, 1.0)
        lo, hi = max(lo, PS_BOUND), min(hi, 1 - PS_BOUND)

        def propensity(theta):
            return expit(design @ theta)

        def psi(theta):
            return design * (sw * (a - propensity(theta)))[:, None]

        def psi_jacobian(theta):
            e = propensity(theta)
            return -(design * (sw * e * (1 - e))[:, None]).T @ design

        def weights(theta):
            return arm_weights(np.clip(propensity(theta), lo, hi), a, self._estimand(), alpha) * sw

        def weights_jacobian(theta):
            e = propensity(theta)
            inside = (e >= lo) & (e <= hi)  # the clip's derivative is zero where it binds
            de = arm_weights_derivative(np.clip(e, lo, hi), a, self._estimand(), alpha) * e * (1 - e) * inside
            return design * (de * sw)[:, None]

        return MParts(
            params=np.concatenate([[self.intercept_], self.coef_]),
            names=("(Intercept)", *self.terms_),
            psi=psi, weights=weights, psi_jacobian=psi_jacobian, weights_jacobian=weights_jacobian,
        )

    def _continuous_m_parts(self, data):
        """MParts of the normal linear GPS: θ = (Var(A), E(A), Var(A|X), β) on the standardised scale."""
        if self.density != "normal":
            raise NotImplementedError("a kernel density has no M-estimation form here: use a bootstrap variance.")
        state = self._gps
        gps = GPSData.build(data.a, data.X, data.sample_weight, state["scales"])
        theta = np.concatenate([state["marginal"], [state["sigma2"]], state["beta"]])
        return gps_parts(gps, theta, ("(Intercept)", *self.terms_), balance=False)

    def _multi_m_parts(self, data):
        """MParts of the multinomial logit: θ = the (K − 1) × (1 + p) coefficients, level by level."""
        design = np.column_stack([np.ones(len(data.a)), data.X])
        codes, sw, focal = data.a, data.sample_weight, data.treatment.focal
        estimand = self._estimand()
        levels = data.treatment.levels
        indicators = data.treatment.indicators()
        lo, hi = self.clip if self.clip is not None else (0.0, 1.0)
        lo, hi = max(lo, PS_BOUND), min(hi, 1 - PS_BOUND)
        shape = (len(levels) - 1, design.shape[1])

        def proba(theta):
            return softmax_proba(design, theta.reshape(shape))

        def psi(theta):
            return multinomial_score(design, indicators, proba(theta), sw)

        def psi_jacobian(theta):
            return -multinomial_information(design, proba(theta), sw)

        def weights(theta):
            return multi_weights(np.clip(proba(theta), lo, hi), codes, estimand, focal) * sw

        def weights_jacobian(theta):
            p = proba(theta)
            inside = (p >= lo) & (p <= hi)  # the clip's derivative is zero where it binds
            dw_dp = multi_weights_derivative(np.clip(p, lo, hi), codes, estimand, focal) * inside
            return chain_to_coef(design, p, dw_dp) * sw[:, None]

        terms = ("(Intercept)", *self.terms_)
        return MParts(
            params=np.column_stack([self.intercept_, self.coef_]).ravel(),
            names=tuple(f"{level}:{term}" for level in levels[1:] for term in terms),
            psi=psi, weights=weights, psi_jacobian=psi_jacobian, weights_jacobian=weights_jacobian,
        )


def coef_table(parts):
    """Coefficients, model-based SEs (inverse of minus the score's Jacobian), z and p-values from MParts."""
    information = -parts.psi_jacobian(parts.params)
    try:
        variance = np.diag(np.linalg.inv(information))
    except np.linalg.LinAlgError:  # a singular information matrix: some coefficient is not identified
        variance = np.full(len(parts.params), np.inf)
    # a separated fit's information is numerically singular and can give negative "variances": not identified
    std_err = np.where(variance > 0, np.sqrt(np.abs(variance)), np.inf)
    statistic = parts.params / std_err
    return pd.DataFrame({"estimate": parts.params, "std_err": std_err, "statistic": statistic,
                         "p_value": 2 * norm.sf(np.abs(statistic))}, index=pd.Index(parts.names, name="term"))


def _per_unit(flags):
    """Per-unit flags from per-score flags (a multi-category unit counts once when any of its scores does)."""
    return flags.any(axis=1) if flags.ndim == 2 else flags
