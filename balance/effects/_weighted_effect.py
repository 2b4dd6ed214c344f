"""WeightedEffect: an effect estimate from any weighting estimator, with a standard error that can be trusted."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .._dask import any_dask, is_dask_collection
from .._stats import pow2_scale
from .._validation import (CovariateDesign, as_1d, check_indexes_agree, check_outcome, check_sample_weight,
                           check_treatment, take_rows)
from ..diagnostics import effective_sample_size
from ..diagnostics._weights import ExtremeWeightsWarning, check_extreme_weights, group_names, weight_groups
from ._bootstrap import PropensityReplicates
from ._contrasts import Contrasts
from ._outcome import OUTCOME_MODELS, outcome_equations
from ._results import SCALE_LABELS, EffectResults
from ._vcov import VCOV_ESTIMATORS, VCOV_TYPES, _final_step


def _fit_weighter(weighter, X, treatment, sample_weight, seed=None, **fit_params):
    """Fit a clone of ``weighter`` (an estimator or a Pipeline ending in one); return it and its weights.

    ``fit_params`` go to the weighter's ``fit`` (e.g. ``uncensored`` of :class:`~balance.msm.MSMWeights`).

    ``seed`` (an int, for a bootstrap replicate) replaces every ``random_state`` of the clone, nested ones included
    (a pipeline step, a classifier ``model``), each by its own int derived from it: each replicate then has its own
    reproducible randomness, whether the weighter's own ``random_state`` was None or one fixed int.
    """
    fitted = clone(weighter)
    if seed is not None:
        keys = sorted(key for key in fitted.get_params(deep=True)
                      if key == "random_state" or key.endswith("__random_state"))
        states = np.random.SeedSequence(seed).generate_state(len(keys)) if keys else []
        fitted.set_params(**{key: int(state) >> 1 for key, state in zip(keys, states)})
    if sample_weight is None:
        fitted.fit(X, treatment, **fit_params)
    elif isinstance(fitted, Pipeline):
        fitted.fit(X, treatment, **{f"{fitted.steps[-1][0]}__sample_weight": sample_weight})
    else:
        fitted.fit(X, treatment, sample_weight=sample_weight, **fit_params)
    final = _final_step(fitted)
    if not hasattr(final, "weights_"):
        raise TypeError(f"{type(final).__name__} has no weights_ after fit: weighter must be a weighting estimator.")
    if is_dask_collection(final.weights_):  # lazy: the dask path reads them block by block
        return fitted, final.weights_
    return fitted, np.asarray(final.weights_, dtype=float)


def _fit_weighter_reporting(weighter, X, treatment, sample_weight, **fit_params):
    """:func:`_fit_weighter`, passing on the weighter's warnings except its ExtremeWeightsWarning, which
    WeightedEffect repeats once with advice on the variance."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = _fit_weighter(weighter, X, treatment, sample_weight, **fit_params)
    for w in caught:
        if not issubclass(w.category, ExtremeWeightsWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return fitted


# what WeightedEffect adds to the extreme-weights warning, by variance type
_EXTREME_ADVICE = {
    "asympt": "Compare vcov='bootstrap' (in simulation, weights this extreme were where the bootstrap SE exceeded "
              "the asympt SE by more than 2x).",
    "HC0": "Compare vcov='bootstrap', which also re-estimates the weights.",
    "bootstrap": "The bootstrap re-estimates the weights, but the estimate rests on those few units.",
    "fwb": "The bootstrap re-estimates the weights, but the estimate rests on those few units.",
}


def _warn_single_unit_groups(sizes, t, stacklevel=3):
    """Warn about the treatment groups with fewer than two units of positive weight (``sizes``: units of positive
    weight per group; None for a continuous treatment)."""
    if sizes is None:
        return
    names = [f"{name} group" if t.kind == "binary" else f"level {name!r}" for name in group_names(t)]
    single = [names[k] for k in np.flatnonzero(np.asarray(sizes) < 2)]
    if single:
        warnings.warn(
            f"WeightedEffect: {', '.join(single)} has a single unit with positive weight, so its potential-"
            "outcome mean is that unit's outcome and no variance can be estimated from it: the standard errors "
            "of that mean (0 for outcome_model='simple') and of its contrasts leave its outcome variance out. "
            "Pool or drop the level, or read those SEs as lower bounds.", UserWarning, stacklevel=stacklevel)


@dataclass
class _EffectProblem:
    """Everything a replicate needs to re-estimate the weights and the effect (picklable for joblib)."""

    weighter: object
    X: object
    treatment: object
    y: np.ndarray
    sample_weight: np.ndarray | None
    covariates: np.ndarray | None
    a: np.ndarray
    model: str
    estimand: str
    family: str
    contrasts: Contrasts
    focal: int = 1
    fast: object = None  # PropensityReplicates of the fitted weighter (bootstrap replicates), when it covers it

    @property
    def n_obs(self):
        return len(self.y)

    @property
    def n_levels(self):
        return len(self.contrasts.levels)

    @property
    def labels(self):
        return self.contrasts.labels

    def equations(self, weights, sample_weight, rows=slice(None)):
        """The outcome model's equations on (a resample ``rows`` of) the data, given the weights."""
        sw = np.ones(len(weights)) if sample_weight is None else sample_weight
        covariates = None if self.covariates is None else self.covariates[rows]
        return outcome_equations(
            self.model, self.y[rows], self.a[rows], weights, sw, covariates, estimand=self.estimand, family=self.family,
            n_levels=self.n_levels, focal=self.focal,
        )

    def replicate(self, kind, draw, seed=None):
        if kind == "bootstrap":
            if np.bincount(self.a[draw], minlength=self.n_levels).min() == 0:
                raise ValueError("a treatment level is absent from the replicate.")
            sw = None if self.sample_weight is None else self.sample_weight[draw]
            weights = self._fast_weights(np.bincount(draw, minlength=self.n_obs), len(draw))
            if weights is not None:
                weights, converged = weights[draw], True
            else:
                weights, converged = self._refit(take_rows(self.X, draw), take_rows(self.treatment, draw), sw, seed)
            eq = self.equations(weights, sw, rows=draw)
        else:
            sw = draw if self.sample_weight is None else self.sample_weight * draw
            weights = self._fast_weights(draw, len(draw))
            if weights is not None:
                weights, converged = weights * draw, True  # the fast weights are those of one unit of draw
            else:
                weights, converged = self._refit(self.X, self.treatment, sw, seed)
            eq = self.equations(weights, sw)
        values, _ = self.contrasts(eq.mu)
        return values, converged

    def _refit(self, X, treatment, sample_weight, seed):
        fitted, weights = _fit_weighter(self.weighter, X, treatment, sample_weight, seed)
        return weights, bool(getattr(_final_step(fitted), "converged_", True))

    def _fast_weights(self, counts, n_rows):
        """Each unit's weight (of one copy) from the fast replicate refit (``fast``), or None: refit in full."""
        out = None if self.fast is None else self.fast(counts, n_rows)
        if out is None:
            return None
        weights = np.zeros(self.n_obs)
        weights[out[0]] = out[1]
        return weights


class WeightedEffect(BaseEstimator):
    """Treatment effect from weighted data, with standard errors that account for estimating the weights.

    Fits a clone of ``weighter`` (any weighting estimator of this package, or a scikit-learn ``Pipeline`` ending in
    one), then an outcome model on the weighted data, and reports the effect, both potential-outcome means, their
    standard errors and confidence intervals.

    Parameters
    ----------
    weighter : weighting estimator or Pipeline
        E.g. ``PropensityWeights(estimand="ATT")``. The estimand is the weighter's, and so is the treatment's type:
        binary, or multi-category (K ≥ 3 levels) when the weighter was fitted on one (``treatment_type_``). A
        multi-category treatment gets one potential-outcome mean per level and every pairwise contrast.
    outcome_model : {"simple", "additive", "interact", "aipw"}, default="simple"
        "simple": Hájek weighted means per arm (the weighted difference in means, equal to weighted least squares
        of y on (1, A)). "additive": weighted regression of y on treatment and covariates, then g-computation.
        "interact": the same with treatment × covariate interactions (g-computation over the estimand's target
        population: the treated for the ATT, the controls for the ATC, everyone for the ATE, the weighted sample
        for the ATO/ATM/ATOS). "aipw": augmented weighting (doubly robust): an unweighted interacted outcome model
        m_a(X), μ_a = mean over the target of m_a(X) + weighted mean over arm a of (y − m_a(X)).
    vcov : {"asympt", "HC0", "bootstrap", "fwb"}, default="asympt"
        "asympt": the sandwich of the stacked estimating equations of the weight model and the outcome model
        (WeightIt's ``vcov = "asympt"``); needs a weighter with estimating equations (``_m_parts``) and raises
        otherwise. "HC0": weights treated as known. "bootstrap": rows resampled (clusters when ``cluster`` is
        given), weights re-estimated in every replicate. "fwb": fractional weighted bootstrap (Exp(1) weights
        passed as ``sample_weight``), for weighters that accept sampling weights.
    scale : {"difference", "rr", "or"}, default="difference"
        Risk ratio and odds ratio need a binary (0/1) outcome; they are estimated on the log scale.
    family : {"auto", "gaussian", "binomial"}, default="auto"
        Outcome regression family for "additive", "interact" and "aipw": "auto" uses logistic regression for a 0/1
        outcome and least squares otherwise.
    condition_on_covariates : bool, default=False
        For g-computation and AIPW: False (default) includes the sampling variability of the covariates over which
        predictions are averaged (a population effect); True conditions on them, as WeightIt and marginaleffects
        do (a smaller SE, for the effect in this sample's target population). Refused (ValueError) for the ATO,
        ATM and ATOS with the sandwich variances: their target population is the weighted sample, whose weights
        depend on the treatment, and conditioning would drop that variance too.
    n_bootstrap : int, default=999
        Replicates for the bootstraps.
    n_jobs : int, default=None
        Parallel jobs for the bootstraps (joblib; use ``joblib.parallel_backend("dask")`` for a dask cluster).
    random_state : int, Generator or None, default=None
        Seeds the bootstraps; results do not depend on ``n_jobs`` or the backend. In every replicate the weighter's
        own ``random_state`` (and any nested one, e.g. a classifier's) is replaced by a seed drawn from the
        replicate's generator, so the bootstrap of a randomised weighter (CBIPM, UniformTransformerWeights) is
        reproducible whatever its ``random_state``, and its replicates do not share one inner seed.
    verbose : int, default=0
        1 shows a progress bar for bootstraps (needs tqdm, on a terminal).

    Attributes
    ----------
    weighter_ : estimator
        The fitted clone of ``weighter``.
    result_ : EffectResults
        Immutable results: estimate, covariance, intervals, summary.
    estimate_ : float or Series
        The effect (a ratio on its natural scale); for a multi-category treatment a Series indexed by contrast.
    se_ : float or Series
        Its standard error (of the log ratio for ratio scales).
    pvalue_ : float or Series
    vcov_ : covariance estimator
        The resolved covariance object (``balance.effects._vcov.VCOV_ESTIMATORS[vcov]``), with ``cov``, ``config``
        and ``notes``.
    vcov_type_ : str
    potential_outcomes_ : DataFrame
        Rows mu1 and mu0 (binary) or one row per treatment level (multi-category, indexed by the level labels),
        with estimate and std_err.
    contrasts_ : DataFrame
        One row per contrast: the effect (binary), or every pair of levels in cobalt's order ("hispan - black",
        "white - black", "white - hispan"; a ratio scale writes "hispan / black (risk ratio)"), with columns
        estimate, std_err, conf_low, conf_high, p_value (normal intervals at 95 %, percentile with a bootstrap).
    subgroup_effects_, subgroup_differences_, subgroup_test_, subgroup_fits_
        Only with a :class:`~balance.weights.SubgroupWeights` weighter: the effect in every subgroup (indexed by
        subgroup and contrast, the columns of ``contrasts_``), the differences between subgroups (a ratio scale's
        on the log scale), the Wald test that the effects are equal in all subgroups, and the per-subgroup fits.
        The subgroups share no units, so their stacked estimating equations are block-diagonal and each subgroup's
        effect and SE are those of a separate fit (module notes of ``balance.effects._subgroups``).
    n_failed_, n_nonconverged_ : int
        Bootstrap replicates that failed (excluded) or whose weight solver did not converge (kept, reported): the
        refitted weighter's ``converged_`` is False, or a ConvergenceWarning was raised while refitting it (e.g. by
        a scikit-learn propensity classifier). The replicates' own warnings are not repeated; one warning gives
        both counts.

    Notes
    -----
    With ``vcov="asympt"`` the estimating equations are θ = (β, θ_o): the weight model's ψ_β (from the weighter's
    ``_m_parts``) and the outcome model's ψ_o (``balance.effects._outcome``), and Var(θ̂) = A⁻¹ B A⁻ᵀ with
    A = Σ ∂ψ_i/∂θ and B = Σ ψ_i ψ_iᵀ (cluster sums times G/(G − 1) with ``cluster``). The outcome parts' Jacobian
    is analytic; the weight model's is analytic when the weighter provides it and numerical (central differences)
    otherwise; ``result_.vcov_config["jacobian"]`` says which. With a Pipeline the fitted preprocessing is treated
    as fixed. Effects use the Hájek (self-normalised) form.

    A multi-category treatment with levels 0..K−1 (the first the reference) has outcome equations with one mean per
    level; "additive" and "interact" regress on the K − 1 level dummies (and their products with the covariates)
    and average predictions with the treatment set to each level over the estimand's target (everyone for the ATE,
    the focal level for the ATT, the weighted sample for the ATO). Contrasts and their covariance follow from the
    means' by the delta method (sqrt(gᵀVg) for a difference).

    Extreme weights (a group's Kish ESS below 5, or one unit carrying over 30% of its group's weight; see
    :class:`~balance.ExtremeWeightsWarning`) are warned about once, with the numbers and advice on the variance
    (the weighter's own warning is not repeated), and noted in ``result_.notes``. In simulation
    (``benchmarks/results/extreme_weights.md``) it fired in nearly every replicate where the bootstrap SE exceeded
    the asympt SE by more than 2x.

    Dask input (``X`` a dask DataFrame or array, ``treatment``, ``y``, ``sample_weight`` and ``cluster`` with its
    partitions; binary treatments; weighters PropensityWeights, EntropyBalance, InverseProbabilityTilting and the
    just-identified CBPS): the same estimates and standard errors, from sums over the partitions
    (:mod:`balance.effects._dask_effect`); every outcome model, vcov "asympt", "HC0" and "fwb" (Exp(1) draws made
    inside each partition); the row bootstrap is refused.

    References
    ----------
    Lunceford, J. K., & Davidian, M. (2004). Stratification and weighting via the propensity score in estimation of
    causal treatment effects. Statistics in Medicine 23, 2937–2960.
    Reifeis, B. K., & Hudgens, M. G. (2022). On variance of the treatment effect in the treated when estimated by
    inverse probability weighting. American Journal of Epidemiology 191, 1092–1097.
    Greifer, N. (2024). WeightIt: Weighting for Covariate Balance in Observational Studies. R package.

    Examples
    --------
    >>> from balance import PropensityWeights, WeightedEffect
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(data.X, data.treatment, data.y)
    >>> round(fit.estimate_, 2), round(fit.se_, 2)
    (1214.07, 798.15)

    A three-level treatment (``race``): every pairwise contrast, WeightIt's ``lm_weightit(re78 ~ race)`` numbers

    >>> multi = WeightedEffect(PropensityWeights()).fit(data.X.drop(columns="race"), data.X["race"], data.y)
    >>> multi.contrasts_[["estimate", "std_err"]].round(1)
                    estimate  std_err
    hispan - black    -285.9   1657.0
    white - black     -219.3   1412.4
    white - hispan      66.6    976.1
    """

    def __init__(self, weighter, outcome_model="simple", vcov="asympt", *, scale="difference", family="auto",
                 condition_on_covariates=False, n_bootstrap=999, n_jobs=None, random_state=None, verbose=0):
        self.weighter = weighter
        self.outcome_model = outcome_model
        self.vcov = vcov
        self.scale = scale
        self.family = family
        self.condition_on_covariates = condition_on_covariates
        self.n_bootstrap = n_bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        if self.outcome_model not in OUTCOME_MODELS:
            raise ValueError(f"outcome_model={self.outcome_model!r}; choose one of {list(OUTCOME_MODELS)}.")
        if self.vcov not in VCOV_TYPES:
            raise ValueError(f"vcov={self.vcov!r}; choose one of {list(VCOV_TYPES)}.")
        if self.scale not in SCALE_LABELS:
            raise ValueError(f"scale={self.scale!r}; choose one of {list(SCALE_LABELS)}.")
        if self.family not in ("auto", "gaussian", "binomial"):
            raise ValueError(f"family={self.family!r}; choose 'auto', 'gaussian' or 'binomial'.")
        if not (isinstance(self.n_bootstrap, numbers.Integral) and self.n_bootstrap >= 2):
            raise ValueError(f"n_bootstrap={self.n_bootstrap!r} must be an integer >= 2.")

    def fit(self, X, treatment, y, sample_weight=None, cluster=None):
        """Estimate the weights, the outcome model and the effect's variance.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        treatment : array-like of shape (n_samples,)
        y : array-like of shape (n_samples,)
            Numeric outcome; 0/1 for ``scale="rr"`` or ``"or"``.
        sample_weight : array-like of shape (n_samples,), default=None
            Sampling weights, passed to the weighter (whose weights include them) and used in the outcome model.
        cluster : array-like of shape (n_samples,), default=None
            Cluster labels for cluster-robust variances and the cluster bootstrap.

        Returns
        -------
        self
        """
        self._check_params()
        self._check_conditioning()
        if any_dask(X, treatment, y, sample_weight, cluster):
            from ._dask_effect import fit_dask

            return fit_dask(self, X, treatment, y, sample_weight, cluster)
        n, index = len(X), (X.index if isinstance(X, pd.DataFrame) else None)
        check_indexes_agree(X=index, treatment=treatment, y=y, sample_weight=sample_weight, cluster=cluster)
        y = self._check_outcome(y, n, index)  # before the (possibly slow) weight fit
        clusters = self._check_cluster(cluster, n, index)
        self.weighter_, weights = _fit_weighter_reporting(self.weighter, X, treatment, sample_weight)
        final = _final_step(self.weighter_)
        t = self._check_treatment(final, treatment, n, index)
        extreme = check_extreme_weights(weights, *weight_groups(t), who="WeightedEffect",
                                        advice=_EXTREME_ADVICE[self.vcov], stacklevel=3)
        _warn_single_unit_groups(np.bincount(t.codes[weights > 0], minlength=t.n_levels) if t.is_categorical
                                 else None, t)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, n, index=index)
        family = self.family if self.family != "auto" else ("binomial" if _is_binary(y) else "gaussian")
        if family == "binomial" and self.outcome_model != "simple" and np.ptp(y) == 0:
            raise ValueError(f"y is {y[0]:g} for every unit: a logistic outcome model (family='binomial', the choice "
                             "for a 0/1 outcome) cannot be fitted to a constant; use outcome_model='simple' (the "
                             "effect is then 0), or check that y is the intended column.")
        covariates = None
        if self.outcome_model != "simple":
            # the outcome model handles missing covariates as the weighter does (indicators + median fill, or error)
            design = CovariateDesign.from_data(X, missing=getattr(final, "missing", "error"))
            covariates = design.transform(X, drop_first=True)[0]
        estimand = str(getattr(final, "estimand", "ATE")).upper()
        contrasts = Contrasts(t.levels, self.scale, estimand)
        y_unit = _outcome_unit(y)
        problem = _EffectProblem(
            weighter=self.weighter, X=X, treatment=_as_input(treatment), y=y / y_unit, sample_weight=sw,
            covariates=covariates, a=t.a, model=self.outcome_model, estimand=estimand, family=family,
            contrasts=contrasts, focal=1 if t.focal is None else t.focal,
        )
        if self.vcov in ("bootstrap", "fwb"):
            problem.fast = PropensityReplicates.build(self.weighter_, X, treatment, sw)
        eq = problem.equations(weights, sw)
        values = contrasts(eq.mu)[0]
        self._problem, self._y_unit = problem, y_unit  # the data the sensitivity analyses (balance.sensitivity) use
        vcov = VCOV_ESTIMATORS[self.vcov].from_effect(self, problem, eq, clusters)
        cov = vcov.cov  # computed here, so that a refused variance leaves no fitted attributes behind
        self._store_result(vcov, cov, values, contrasts, extreme, y_unit, n, _ess(weights, t), final, t)
        self._fit_subgroups(final, X, treatment, y, sample_weight, cluster)
        return self

    def _store_result(self, vcov, cov, values, contrasts, extreme, y_unit, n, ess, final, t):
        """The fitted attributes from the covariance estimator and the reported values (both input paths)."""
        self.vcov_, self.n_failed_, self.n_nonconverged_ = vcov, vcov.n_failed, vcov.n_nonconverged
        labels = contrasts.labels
        notes = list(self.vcov_.notes)
        if extreme.extreme:
            notes.append(f"extreme weights ({extreme.describe()})")
        # back to y's units (a log ratio has none); a variance beyond the float range is inf, its SE is not
        unit = np.where((np.arange(len(labels)) < contrasts.n_contrasts) & (self.scale != "difference"), 1.0, y_unit)
        std_err = np.sqrt(np.diag(cov)) * unit
        with np.errstate(over="ignore", under="ignore"):
            cov = cov * unit[:, None] * unit[None, :]
        natural = values * unit
        if self.scale != "difference":
            natural[:contrasts.n_contrasts] = np.exp(values[:contrasts.n_contrasts])
        config = self.vcov_.config if y_unit == 1.0 else {**self.vcov_.config, "outcome_unit": y_unit}
        self.result_ = EffectResults(
            estimand=contrasts.estimand, scale=self.scale, estimate=pd.Series(natural, index=labels, name="estimate"),
            vcov=pd.DataFrame(cov, index=labels, columns=labels), vcov_type=self.vcov,
            vcov_config=config, n_obs=n, ess=ess, outcome_model=self.outcome_model,
            method=type(final).__name__, accounts_for_weight_estimation=self.vcov_.accounts_for_weight_estimation,
            draws=None if self.vcov_.draws is None else self.vcov_.draws * unit, notes=tuple(notes),
            n_contrasts=contrasts.n_contrasts, std_err=pd.Series(std_err, index=labels, name="std_err"),
        )
        self._set_shortcuts(contrasts, t)

    def _fit_subgroups(self, final, X, treatment, y, sample_weight, cluster):
        """With SubgroupWeights: the effect within every subgroup, their differences and the test of equality."""
        from ..weights._subgroup import SubgroupWeights
        from ._subgroups import subgroup_effects

        for name in ("subgroup_effects_", "subgroup_differences_", "subgroup_test_", "subgroup_fits_"):
            self.__dict__.pop(name, None)
        if isinstance(final, SubgroupWeights):
            (self.subgroup_effects_, self.subgroup_differences_, self.subgroup_test_,
             self.subgroup_fits_) = subgroup_effects(self, final, X, treatment, y, sample_weight, cluster)

    def _set_shortcuts(self, contrasts, t):
        summary = self.result_.summary()
        rows = summary.iloc[:contrasts.n_contrasts]
        self.contrasts_ = pd.DataFrame({
            "estimate": rows["estimate"], "std_err": rows["std_err"], "conf_low": rows["ci_lower"],
            "conf_high": rows["ci_upper"], "p_value": rows["p_value"],
        })
        means = summary.loc[contrasts.mean_labels, ["estimate", "std_err"]]
        if contrasts.binary:
            self.estimate_ = float(summary["estimate"].iloc[0])
            self.se_ = float(summary["std_err"].iloc[0])
            self.pvalue_ = float(summary["p_value"].iloc[0])
            self.potential_outcomes_ = means
        else:
            self.estimate_, self.se_, self.pvalue_ = (rows[c].rename(None) for c in ("estimate", "std_err", "p_value"))
            self.potential_outcomes_ = means.set_axis(pd.Index(t.levels, name="level"))
        self.vcov_type_ = self.vcov

    # -- input checks -----------------------------------------------------------------------------------------
    def _check_conditioning(self):
        """Refuse conditioning on covariates where the target population's weights are the analysis weights."""
        estimand = str(getattr(_final_step(self.weighter), "estimand", "ATE")).upper()
        if (self.condition_on_covariates and self.outcome_model != "simple" and self.vcov in ("asympt", "HC0")
                and estimand not in ("ATE", "ATT", "ATC")):
            raise ValueError(
                f"condition_on_covariates=True is not available for the {estimand}: its target population is the "
                "weighted sample itself, whose weights depend on the treatment as well as the covariates, so "
                "conditioning would also drop the treatment's share of the variance (too small a standard error). "
                "Use condition_on_covariates=False (the population effect) or a bootstrap variance."
            )

    def _check_outcome(self, y, n, index):
        values = check_outcome(y, n, index=index)
        if self.scale != "difference" and not _is_binary(values):
            raise ValueError(f"scale={self.scale!r} needs a binary (0/1) outcome; y has other values.")
        if self.family == "binomial" and not _is_binary(values):
            raise ValueError("family='binomial' needs a binary (0/1) outcome.")
        return values

    @staticmethod
    def _check_treatment(final, treatment, n, index):
        """The treatment coded as the fitted weighter saw it (binary unless the weighter says otherwise)."""
        kind = getattr(final, "treatment_type_", "binary")
        if kind not in ("binary", "multi-category"):
            advice = " Use WeightedDoseResponse for a continuous treatment." if kind == "continuous" else ""
            raise ValueError(f"WeightedEffect supports binary and multi-category treatments; {type(final).__name__} "
                             f"was fitted on a {kind} treatment.{advice}")
        return check_treatment(treatment, treated=getattr(final, "treated", None), n_samples=n, index=index,
                               treatment_type=kind)

    @staticmethod
    def _check_cluster(cluster, n, index):
        if cluster is None:
            return None
        values, _ = as_1d(cluster, "cluster")
        if len(values) != n:
            raise ValueError(f"cluster has {len(values)} entries but X has {n} rows.")
        check_indexes_agree(X=index, cluster=cluster)
        if pd.isna(values).any():
            raise ValueError("cluster has missing values.")
        return values

    # -- convenience ------------------------------------------------------------------------------------------
    def conf_int(self, alpha=0.05, method=None):
        """Confidence intervals of the effect and both potential-outcome means (see EffectResults.conf_int)."""
        check_is_fitted(self, "result_")
        return self.result_.conf_int(alpha, method)

    def summary(self, alpha=0.05):
        """A tidy DataFrame: estimate, std_err, statistic, p_value, ci_lower, ci_upper per quantity.

        Printed (an :class:`~balance.effects._results.EffectSummary`), it shows every column at pandas' default width
        and the notes (the variance; ratio scales: the SE of the log ratio); frames derived from it are plain."""
        check_is_fitted(self, "result_")
        return self.result_.summary(alpha)

    # -- sensitivity to unmeasured confounding (balance.sensitivity) -------------------------------------------
    def evalue(self, *, rare=None, sd=None, alpha=0.05):
        """E-values of the effect and of its (1 − alpha) confidence interval (VanderWeele & Ding 2017).

        Risk ratios are used as they are, odds ratios converted (``rare``: None decides by whether both potential-
        outcome means are under 15 %), differences in means through the standardised difference estimate / ``sd``
        (None: the outcome's marginal standard deviation, the conservative choice). A 0/1 outcome on the difference
        scale is refused: refit with ``scale="rr"``. See :func:`balance.sensitivity.evalue`.

        Returns
        -------
        Series with ``estimate`` and ``ci`` (a DataFrame, one row per contrast, for a multi-category treatment).
        Examples: :mod:`balance.sensitivity`.
        """
        from ..sensitivity._evalue import effect_evalue

        return effect_evalue(self, rare=rare, sd=sd, alpha=alpha)

    def sensitivity(self, lambdas=(1, 1.25, 1.5, 2, 3), *, alpha=0.05, n_bootstrap=None, random_state=None,
                    n_jobs=None, refit=True, method="zsb"):
        """Bounds of the effect under the marginal sensitivity model (Tan 2006; Zhao, Small & Bhattacharya 2019).

        For each Λ, the sharp bounds of the Hájek estimate when every unit's true propensity odds may be up to Λ
        times larger or smaller than the fitted ones, and the percentile-bootstrap interval [Q_{α/2} of the
        replicates' lower bounds, Q_{1−α/2} of their upper bounds] (order statistics). Λ = 1 gives the estimate.
        Binary treatments, ``outcome_model="simple"``, the ATE (needs propensity scores ``ps_``), ATT or ATC. The
        bootstrap resamples rows (a ``cluster`` given to ``fit`` is not used here).

        Parameters
        ----------
        lambdas : sequence of float >= 1, default=(1, 1.25, 1.5, 2, 3)
        alpha : float, default=0.05
        n_bootstrap, random_state, n_jobs : default=None
            None: this effect's own settings. The same ``random_state`` gives the same replicates.
        refit : bool, default=True
            Re-estimate the weights in every replicate (as Zhao, Small & Bhattacharya do); False keeps each unit's
            fitted weight (faster, ignores the weights' estimation). The default logistic ``PropensityWeights``
            is refitted fast (count weights on the design validated once, started from the full-sample fit: about
            20 ms per replicate at n = 100,000), to the solver's tolerance of a refit on the resampled rows.
        method : {"zsb", "quantile"}, default="zsb"
            "zsb": the bounds of Zhao, Small & Bhattacharya (sorting, O(n log n)). "quantile": Dorn & Guo's (2022)
            sharper quantile-balancing bounds, where the weights must also keep the fitted weights' totals of the
            covariates in each arm (linear programmes by scipy's HiGHS, one per arm, side and Λ: much slower).

        Returns
        -------
        DataFrame indexed by ``lambda`` with ``bound_low``, ``bound_high``, ``ci_low``, ``ci_high``. Examples:
        :mod:`balance.sensitivity`.
        """
        from ..sensitivity._msm import sensitivity_table

        return sensitivity_table(self, lambdas, alpha=alpha, n_bootstrap=n_bootstrap, random_state=random_state,
                                 n_jobs=n_jobs, refit=refit, method=method)

    def breakdown_lambda(self, *, alpha=0.05, ci=True, n_bootstrap=None, random_state=None, n_jobs=None,
                         refit=True, method="zsb"):
        """The smallest Λ at which the sensitivity interval (``ci=True``; the bounds themselves with ``ci=False``)
        contains the null (0, or 1 for a ratio): how much hidden confounding the conclusion withstands. 1 when the
        interval contains the null already; inf when no Λ up to 1e8 makes it. Exact for the bootstrap replicates
        drawn (the same ones as :meth:`sensitivity` with the same ``random_state``). Parameters as
        :meth:`sensitivity`."""
        from ..sensitivity._msm import breakdown

        return breakdown(self, alpha=alpha, ci=ci, n_bootstrap=n_bootstrap, random_state=random_state,
                         n_jobs=n_jobs, refit=refit, method=method)

    def ovb(self, benchmark_covariates=None, *, kd=1.0, ky=None, q=1.0, alpha=0.05, benchmark_treatment="unweighted"):
        """Omitted-variable bias of the weighted outcome regression (Cinelli & Hazlett 2020), for
        ``outcome_model="additive"`` with a numeric outcome and a binary treatment.

        Uses the regression's classical standard error (as sensemakr does), not this effect's ``se_``. Benchmarks
        name covariates (a DataFrame column, a factor as a whole, or one dummy such as ``"race_white"``).
        ``benchmark_treatment="unweighted"`` (default) measures a benchmark's association with the treatment before
        weighting: the weights balance the observed covariates, which removes their association with the
        treatment in the weighted regression (sensemakr's convention, ``"weighted"``, then gives benchmarks of
        almost no strength), whereas an unobserved confounder keeps its association. The outcome side is measured
        in the weighted regression either way. See :func:`balance.sensitivity.ovb_sensitivity`.

        Returns
        -------
        OmittedVariableBias
        """
        from ..sensitivity._ovb import effect_ovb

        return effect_ovb(self, benchmark_covariates, kd=kd, ky=ky, q=q, alpha=alpha,
                          benchmark_treatment=benchmark_treatment)


def _outcome_unit(y):
    """1, or for an outcome of magnitude beyond 2^±100 a power of two near its largest |value|: y is divided by it
    (exactly) so that the sandwich's products of scores neither overflow nor underflow (an outcome of 1e200 gave NaN
    standard errors); ``vcov_`` then holds the covariance in those units (``result_.vcov_config["outcome_unit"]``).
    Ordinary outcomes are left as they are, bit for bit."""
    return outcome_unit_of(np.max(np.abs(y)) if y.size else 0.0)


def outcome_unit_of(top):
    """:func:`_outcome_unit` of an outcome whose largest |value| is ``top``."""
    return float(pow2_scale(np.array([top]), axis=None)) if top > 2.0**100 or 0 < top < 2.0**-100 else 1.0


def _is_binary(y):
    """All values are 0 or 1 (vectorised: a Python set of a million floats costs a second)."""
    return bool(np.all((y == 0) | (y == 1)))


def _as_input(treatment):
    """The treatment as the weighter is refitted on it: pandas objects kept (categories, index), else an ndarray."""
    if isinstance(treatment, (pd.Series, pd.DataFrame)):
        return treatment
    return np.asarray(as_1d(treatment, "treatment")[0])


def _ess(weights, t):
    """Kish effective sample size per treatment group (control/treated, or per level)."""
    if t.n_levels == 2:
        return effective_sample_size(weights, t.a)
    return pd.Series([effective_sample_size(weights[t.a == k]) for k in range(t.n_levels)],
                     index=[str(level) for level in t.levels])
