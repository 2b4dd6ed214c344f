"""Inverse probability tilting (Graham, Pinto & Egel 2012)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .._base import BaseWeighter, MParts
from .._dask import any_dask
from .._dask_data import refuse_dask
from ._balance_conditions import (check_reachable, check_solver_params, finite_prediction, fit_terms,
                                  logit_balance_parts, new_terms, store_fits)
from ._moments import TermExpansion
from ._tilt import (GroupStats, TiltBlock, balance_sides, odds_weights, solve_balance, solve_balance_blocks,
                    tilt_parts)


class InverseProbabilityTilting(BaseWeighter):
    """Inverse probability tilting weights (Graham, Pinto & Egel 2012).

    Logistic propensity models whose coefficients are chosen so that each reweighted group's weighted covariate
    means equal those of the target population exactly (the method of moments instead of maximum likelihood):

    - ATT: one model; the controls' weights e/(1 − e) reproduce the treated totals,
      Σ_controls s e/(1 − e) (1, X) = Σ_treated s (1, X).
    - ATC: the mirror image; the treated weights (1 − e)/e reproduce the control totals.
    - ATE: one model per group (Graham et al.'s tilting): the treated weights 1/e₁ and the control weights
      1/(1 − e₀) each reproduce the full-sample totals, so each group's weighted means equal the full-sample means
      (and each group's weights sum to n).

    A multi-category treatment (K ≥ 3 levels, WeightIt's ``ipt`` for them) has one logistic model per reweighted
    level: for the ATE, level g's weights 1/p_g (p_g the model's probability of level g against all others)
    reproduce the full-sample totals, so every level sums to n; for the ATT, level g's weights p/(1 − p) (p the
    probability of the focal level against g, fitted on the two levels' units) reproduce the focal level's totals,
    the focal units keeping weight 1. No ATC.

    Every set of conditions is the gradient of a strictly convex function (a sum of exponentials of the logit
    minus a linear term), solved by Newton's method with a line search. For the ATT (and the ATC) IPT coincides
    with the just-identified :class:`CBPS` and with :class:`EntropyBalance` (WeightIt's ``method = "ipt"``
    behaves the same).

    Parameters
    ----------
    estimand : {"ATE", "ATT", "ATC"}, default="ATE"
        ATE and ATT only for a multi-category treatment.
    moments : int, default=1
        Also balance the powers 2, ..., ``moments`` of non-binary covariates.
    interactions : bool, default=False
        Also balance all pairwise products of the covariates.
    treated : scalar, default=None
        The treated level when the treatment is neither 0/1 nor boolean; the focal level of a multi-category ATT.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default="auto"
        What the treatment is; ``"auto"`` decides from the data (two values: binary; categorical or text with more
        levels: multi-category; float: continuous; integers with more than two values: an error asking for this
        parameter). See :mod:`balance._treatment`.
    tol : float, default=1e-8
        Convergence tolerance on the largest remaining imbalance, in standard deviations.
    max_iter : int, default=100
        Maximum number of Newton iterations (per model).
    missing : {"error", "indicator"}, default="error"
        Missing covariate values: ``"error"`` raises naming the column; ``"indicator"`` adds a missingness
        indicator ``<column>:<NA>`` per incomplete column and fills its missing values with the observed median
        (WeightIt's and cobalt's approach), so the missingness pattern is balanced too.

    Attributes
    ----------
    weights_ : Series or ndarray of shape (n_samples,)
        Analysis weights, sampling weights included, on WeightIt's scale: ATT treated 1 and controls e/(1 − e)
        (summing to the number treated); ATC treated (1 − e)/e, controls 1; ATE treated 1/e₁, controls 1/(1 − e₀)
        (each group summing to n). The scale of a group changes no balance statistic, ESS or weighted difference
        in means.
    ps_ : Series or ndarray of shape (n_samples,)
        Propensity scores; for the ATE, e₁ for treated units and e₀ for controls (the score each unit's weight
        comes from). Binary treatments only (a multi-category fit has one model per level).
    coef_ : ndarray of shape (n_terms,), or (2, n_terms) for the ATE, or (n_levels, n_terms) for a multi-category
        treatment
        Logistic coefficients on the original covariate scale; for the ATE row 0 is the control-group model (e₀)
        and row 1 the treated-group model (e₁). Multi-category: one row per level in the order of
        ``treatment_levels_``; the focal level's row is zero for the ATT (its weights are exp(0) = 1).
    intercept_ : float, or ndarray of shape (2,) for the ATE, or (n_levels,) for a multi-category treatment
    terms_ : list of str
        The balanced terms (see :class:`CBPS`).
    converged_ : bool
        Whether every model converged (``imbalance_`` below ``tol``); otherwise a ConvergenceWarning states
        ``imbalance_``.
    n_iter_ : int
        Newton iterations of the longest solve (for the ATE the larger over the two models, each capped at
        ``max_iter``).
    imbalance_ : float
        Largest remaining imbalance (in SDs) over the models.
    treatment_levels_, n_features_in_, feature_names_in_
        As in :class:`PropensityWeights`.

    See Also
    --------
    CBPS, EntropyBalance

    Notes
    -----
    Estimating equations (``_m_parts``) are the balance conditions above with analytic derivatives; for the ATE
    the two models are stacked (control model first, WeightIt's order). The balance targets (treated totals for
    the ATT, full-sample totals for the ATE) enter as sample sums, so their sampling variability is part of the
    M-estimation standard errors. A multi-category treatment stacks one block per reweighted level in level order,
    named ``"<level>:<term>"`` (see ``_multi_parts``).

    References
    ----------
    Graham, B. S., De Xavier Pinto, C. C., & Egel, D. (2012). Inverse probability tilting for moment condition
    models with missing data. Review of Economic Studies 79(3), 1053–1079.
    Sant'Anna, P. H. C., & Zhao, J. (2020). Doubly robust difference-in-differences estimators. Journal of
    Econometrics 219(1), 101–122 (the ATT version).
    Greifer, N. (2024). WeightIt: Weighting for Covariate Balance in Observational Studies. R package 1.5.1.

    Examples
    --------
    >>> import numpy as np
    >>> from balance import InverseProbabilityTilting
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> ipt = InverseProbabilityTilting(estimand="ATE").fit(data.X, data.treatment)
    >>> treated = data.treatment == 1
    >>> x = data.X["age"]
    >>> bool(np.isclose(np.average(x[treated], weights=ipt.weights_[treated]), x.mean()))
    True
    """

    _supported_estimands = ("ATE", "ATT", "ATC")
    _supported_treatment_types = ("binary", "multi-category")
    _multi_category_estimands = ("ATE", "ATT")

    def __init__(self, estimand="ATE", *, moments=1, interactions=False, treated=None, treatment_type="auto",
                 tol=1e-8, max_iter=100, missing="error"):
        self.estimand = estimand
        self.moments = moments
        self.interactions = interactions
        self.treated = treated
        self.treatment_type = treatment_type
        self.tol = tol
        self.max_iter = max_iter
        self.missing = missing

    def fit(self, X, treatment, sample_weight=None):
        """Solve the tilting conditions and compute the weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        treatment : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Sampling weights: they weight the conditions (and targets) and multiply the weights.

        Returns
        -------
        self
        """
        check_solver_params(self)
        if any_dask(X, treatment, sample_weight):
            return self._fit_dask(X, treatment, sample_weight)
        data = self._validate_data(X, treatment, sample_weight)
        M, self.terms_ = fit_terms(self, data)
        if data.treatment.kind == "multi-category":
            return self._fit_multi(M, data)
        a, sw = data.a, data.sample_weight
        estimand = self._estimand()
        # the ATE's control model is the ATT's condition, its treated model the ATC's
        sides = ("ATT", "ATC") if estimand == "ATE" else (estimand,)
        fits = []
        for side in sides:
            active, s, r = balance_sides(a, side)
            check_reachable(M, sw, active, r, self.terms_, "InverseProbabilityTilting")
            fits.append(solve_balance(M, sw, active, s, r, names=self.terms_, tol=self.tol,
                                      max_iter=self.max_iter))
        store_fits(self, fits, "InverseProbabilityTilting")
        self.ps_ = self._wrap(self._block_ps(M, a, sw), data)
        return self._set_weights(self._block_weights(M, a, sw), data)

    def _fit_dask(self, X, treatment, sample_weight):
        """The binary tilts of dask input: the in-memory dual Newton with its sums reduced over the partitions."""
        if self.moments != 1 or self.interactions:
            raise refuse_dask("InverseProbabilityTilting with moments or interactions",
                              "those terms are chosen on the data in memory; the covariates' means balance on dask")
        data, estimand = self._validate_dask_data(X, treatment, sample_weight)
        self._terms_expansion = TermExpansion((), (), ())
        stats = GroupStats.from_blocks(data)
        fits = [solve_balance_blocks(data, stats, side, names=self.terms_, tol=self.tol, max_iter=self.max_iter,
                                     who="InverseProbabilityTilting")
                for side in (("ATT", "ATC") if estimand == "ATE" else (estimand,))]
        store_fits(self, fits, "InverseProbabilityTilting")
        self._set_dask_outputs(data)
        return self

    def _block_ps(self, M, a, sw):
        """Propensity scores of one block (all the data in memory)."""
        return expit(self._eta(M, a))

    def _block_weights(self, M, a, sw):
        """Weights of one block (all the data in memory)."""
        return odds_weights(self._eta(M, a), a, self._estimand()) * sw

    def _block_m_parts(self, M, a, sw):
        """The MParts of one block of dask input: the in-memory equations on that block."""
        return self._binary_parts(M, a, sw)

    def _fit_multi(self, M, data):
        """One binary tilt per reweighted level: the ATE's level g against the full sample (1/p_g reproduces the
        full-sample totals, the binary ATE's treated model with g as treated), the ATT's level g against the focal
        level (p/(1 − p) reproduces the focal totals, the binary ATT on the two levels' units)."""
        a, sw, focal = data.a, data.sample_weight, data.treatment.focal
        estimand = self._estimand()
        levels = [g for g in range(data.treatment.n_levels) if estimand == "ATE" or g != focal]
        fits = []
        for g in levels:
            if estimand == "ATE":
                active, s, r = balance_sides(a == g, "ATC")
                sw_g = sw
            else:
                active, s, r = balance_sides(a == focal, "ATT")
                sw_g = np.where((a == g) | (a == focal), sw, 0.0)
            check_reachable(M, sw_g, active, r, self.terms_, "InverseProbabilityTilting")
            fits.append(solve_balance(M, sw_g, active, s, r, names=self.terms_, tol=self.tol,
                                      max_iter=self.max_iter))
        store_fits(self, fits, "InverseProbabilityTilting", levels=levels, n_levels=data.treatment.n_levels)
        if hasattr(self, "ps_"):  # binary only: a multi-category fit has one model per level, not one score
            del self.ps_
        return self._set_weights(_multi_weights(self._eta(M, a), estimand) * sw, data)

    def predict_weights(self, X, treatment, sample_weight=None):
        """Weights for new units from the fitted models (same formulas and scale as ``weights_``).

        Returns
        -------
        Series or ndarray of shape (n_samples,)
        """
        data, M = new_terms(self, X, treatment, sample_weight)
        eta, estimand = self._eta(M, data.a), self._estimand()
        if data.treatment.kind == "multi-category":
            weights = _multi_weights(eta, estimand) * data.sample_weight
        else:
            weights = odds_weights(eta, data.a, estimand) * data.sample_weight
        return self._wrap(finite_prediction(weights, "InverseProbabilityTilting"), data)

    def _eta(self, M, a):
        """The logit each unit's weight comes from (for the ATE: the treated model for treated units; for a
        multi-category treatment, the model of the unit's level)."""
        if np.ndim(self.intercept_) == 0:
            return self.intercept_ + M @ self.coef_
        if self.treatment_type_ == "multi-category":
            return self.intercept_[a] + np.einsum("ij,ij->i", M, self.coef_[a])
        return np.where(a == 1, self.intercept_[1] + M @ self.coef_[1], self.intercept_[0] + M @ self.coef_[0])

    # -- M-estimation seam -------------------------------------------------------------------------------------
    def _m_parts(self, X, treatment, sample_weight=None):
        data, M = new_terms(self, X, treatment, sample_weight)
        if data.treatment.kind == "multi-category":
            return _multi_parts(M, data, self._estimand(), self.intercept_, self.coef_, ("(Intercept)", *self.terms_))
        return self._binary_parts(M, data.a, data.sample_weight)

    def _binary_parts(self, M, a, sw):
        names = ("(Intercept)", *self.terms_)
        estimand = self._estimand()
        if estimand != "ATE":
            return logit_balance_parts(M, a, sw, estimand, np.concatenate([[self.intercept_], self.coef_]), names)
        params = np.concatenate([self.intercept_[:1], self.coef_[0], self.intercept_[1:], self.coef_[1]])
        names = tuple(f"control:{n}" for n in names) + tuple(f"treated:{n}" for n in names)
        return _ate_parts(M, a, sw, params, names)


def _ate_parts(M, a, sw, params, names):
    """Stacked tilting conditions of the ATE: ψ₀ = s((1 − A)/(1 − e₀) − 1) z and ψ₁ = s(A/e₁ − 1) z."""
    design = np.column_stack([np.ones(len(a)), M])
    k = design.shape[1]
    treated = a == 1

    def split(theta):
        return design @ theta[:k], design @ theta[k:]

    def odds(theta):
        eta0, eta1 = split(theta)
        with np.errstate(over="ignore"):
            return np.exp(np.where(treated, 0.0, eta0)) * ~treated, np.exp(-np.where(treated, eta1, 0.0)) * treated

    def psi(theta):
        odds0, odds1 = odds(theta)
        return np.hstack([design * (sw * ((1 - a) * (1 + odds0) - 1))[:, None],
                          design * (sw * (a * (1 + odds1) - 1))[:, None]])

    def psi_jacobian(theta):
        odds0, odds1 = odds(theta)
        jac = np.zeros((2 * k, 2 * k))
        jac[:k, :k] = (design * (sw * odds0)[:, None]).T @ design
        jac[k:, k:] = -(design * (sw * odds1)[:, None]).T @ design
        return jac

    def weights(theta):
        odds0, odds1 = odds(theta)
        return (1.0 + odds0 + odds1) * sw

    def weights_jacobian(theta):
        odds0, odds1 = odds(theta)
        return np.hstack([design * (sw * odds0)[:, None], -design * (sw * odds1)[:, None]])

    return MParts(params=params, names=names, psi=psi, weights=weights, psi_jacobian=psi_jacobian,
                  weights_jacobian=weights_jacobian)


def _multi_weights(eta, estimand):
    """Multi-category IPT weights from the logit of each unit's level model: 1/p = 1 + exp(−η) for the ATE,
    p/(1 − p) = exp(η) for the ATT (the focal level's η is 0 and its units keep weight 1)."""
    with np.errstate(over="ignore"):
        return 1.0 + np.exp(-eta) if estimand == "ATE" else np.exp(eta)


def _multi_parts(M, data, estimand, intercept, coef, names):
    """Stacked tilts, one block per reweighted level g (see :func:`~balance.weights._tilt.tilt_parts`):
    ATE ψ_g = s(1{A ≠ g} − 1{A = g} exp(−η_g)) z (WeightIt's s(1{A = g}/p_g − 1) z with the opposite sign),
    ATT ψ_g = s(1{A = focal} − 1{A = g} exp(η_g)) z (WeightIt's, restricted to the two levels)."""
    a, sw, focal = data.a, data.sample_weight, data.treatment.focal
    if estimand == "ATE":
        levels = list(range(data.treatment.n_levels))
        blocks = [TiltBlock(g, (a != g).astype(float), sign=-1.0, offset=1.0) for g in levels]
    else:
        levels = [g for g in range(data.treatment.n_levels) if g != focal]
        blocks = [TiltBlock(g, (a == focal).astype(float)) for g in levels]
    params = np.concatenate([np.r_[intercept[g], coef[g]] for g in levels])
    names = tuple(f"{data.treatment.levels[g]}:{n}" for g in levels for n in names)
    return tilt_parts(M, a, sw, sw, blocks, params, names)
