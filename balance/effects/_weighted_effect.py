"""WeightedEffect: an effect estimate from any weighting estimator, with a standard error that can be trusted."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .._stats import pow2_scale
from .._validation import CovariateDesign, as_1d, check_outcome, check_sample_weight, check_treatment
from ..diagnostics import effective_sample_size
from ._bootstrap import run_bootstrap
from ._outcome import OUTCOME_MODELS, outcome_equations
from ._results import SCALE_LABELS, EffectResults
from ._sandwich import stacked_cov

VCOV_TYPES = {
    "asympt": "M-estimation sandwich stacking the weight model's estimating equations (accounts for estimating "
              "the weights)",
    "HC0": "robust sandwich with the weights treated as known (no small-sample correction)",
    "bootstrap": "bootstrap resampling rows and re-estimating the weights in every replicate",
    "fwb": "fractional weighted bootstrap (Exp(1) unit weights as sampling weights), re-estimating the weights",
}


def _final_step(weighter):
    return weighter[-1] if isinstance(weighter, Pipeline) else weighter


def _fit_weighter(weighter, X, treatment, sample_weight):
    """Fit a clone of ``weighter`` (an estimator or a Pipeline ending in one); return it and its weights."""
    fitted = clone(weighter)
    if sample_weight is None:
        fitted.fit(X, treatment)
    elif isinstance(fitted, Pipeline):
        fitted.fit(X, treatment, **{f"{fitted.steps[-1][0]}__sample_weight": sample_weight})
    else:
        fitted.fit(X, treatment, sample_weight=sample_weight)
    final = _final_step(fitted)
    if not hasattr(final, "weights_"):
        raise TypeError(f"{type(final).__name__} has no weights_ after fit: weighter must be a weighting estimator.")
    return fitted, np.asarray(final.weights_, dtype=float)


@dataclass
class _EffectProblem:
    """Everything a replicate needs to re-estimate the weights and the effect (picklable for joblib)."""

    weighter: object
    X: object
    treatment: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    covariates: np.ndarray | None
    a: np.ndarray
    model: str
    estimand: str
    family: str
    scale: str
    labels: list

    @property
    def n_obs(self):
        return len(self.y)

    def contrast(self, mu):
        """(effect on the inference scale, mu1, mu0) and the gradient of the effect with respect to (mu0, mu1)."""
        mu0, mu1 = mu
        if self.scale == "difference":
            return np.array([mu1 - mu0, mu1, mu0]), np.array([-1.0, 1.0])
        if min(mu0, mu1) <= 0 or (self.scale == "or" and max(mu0, mu1) >= 1):
            raise ValueError(f"a {SCALE_LABELS[self.scale]} needs potential-outcome means strictly inside (0, 1); "
                             f"got mu0={mu0:.4g}, mu1={mu1:.4g}.")
        if self.scale == "rr":
            return np.array([np.log(mu1 / mu0), mu1, mu0]), np.array([-1 / mu0, 1 / mu1])
        return np.array([logit(mu1) - logit(mu0), mu1, mu0]), np.array([-1 / (mu0 * (1 - mu0)), 1 / (mu1 * (1 - mu1))])

    def equations(self, weights, sample_weight, rows=slice(None)):
        """The outcome model's equations on (a resample ``rows`` of) the data, given the weights."""
        sw = np.ones(len(weights)) if sample_weight is None else sample_weight
        covariates = None if self.covariates is None else self.covariates[rows]
        return outcome_equations(
            self.model, self.y[rows], self.a[rows], weights, sw, covariates, estimand=self.estimand, family=self.family,
        )

    def replicate(self, kind, draw):
        if kind == "bootstrap":
            X = self.X.iloc[draw] if isinstance(self.X, pd.DataFrame) else self.X[draw]
            sw = None if self.sample_weight is None else self.sample_weight[draw]
            fitted, weights = _fit_weighter(self.weighter, X, self.treatment[draw], sw)
            eq = self.equations(weights, sw, rows=draw)
        else:
            sw = draw if self.sample_weight is None else self.sample_weight * draw
            fitted, weights = _fit_weighter(self.weighter, self.X, self.treatment, sw)
            eq = self.equations(weights, sw)
        values, _ = self.contrast(eq.mu)
        return values, bool(getattr(_final_step(fitted), "converged_", True))


class WeightedEffect(BaseEstimator):
    """Treatment effect from weighted data, with standard errors that account for estimating the weights.

    Fits a clone of ``weighter`` (any weighting estimator of this package, or a scikit-learn ``Pipeline`` ending in
    one), then an outcome model on the weighted data, and reports the effect, both potential-outcome means, their
    standard errors and confidence intervals.

    Parameters
    ----------
    weighter : weighting estimator or Pipeline
        E.g. ``PropensityWeights(estimand="ATT")``. The estimand is the weighter's.
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
        do (a smaller SE, for the effect in this sample's target population).
    n_bootstrap : int, default=999
        Replicates for the bootstraps.
    n_jobs : int, default=None
        Parallel jobs for the bootstraps (joblib; use ``joblib.parallel_backend("dask")`` for a dask cluster).
    random_state : int, Generator or None, default=None
        Seeds the bootstraps; results do not depend on ``n_jobs`` or the backend.
    verbose : int, default=0
        1 shows a progress bar for bootstraps (needs tqdm, on a terminal).

    Attributes
    ----------
    weighter_ : estimator
        The fitted clone of ``weighter``.
    result_ : EffectResults
        Immutable results: estimate, covariance, intervals, summary.
    estimate_ : float
        The effect (a ratio on its natural scale).
    se_ : float
        Its standard error (of the log ratio for ratio scales).
    pvalue_ : float
    vcov_type_ : str
    potential_outcomes_ : DataFrame
        Rows mu1 and mu0 with estimate and std_err.
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
        n, index = len(X), (X.index if isinstance(X, pd.DataFrame) else None)
        y = self._check_outcome(y, n, index)  # before the (possibly slow) weight fit
        clusters = self._check_cluster(cluster, n, index)
        self.weighter_, weights = _fit_weighter(self.weighter, X, treatment, sample_weight)
        final = _final_step(self.weighter_)
        t = check_treatment(treatment, treated=getattr(final, "treated", None), n_samples=n, index=index)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, n, index=index)
        family = self.family if self.family != "auto" else ("binomial" if _is_binary(y) else "gaussian")
        covariates = None
        if self.outcome_model != "simple":
            # the outcome model handles missing covariates as the weighter does (indicators + median fill, or error)
            design = CovariateDesign.from_data(X, missing=getattr(final, "missing", "error"))
            covariates = design.transform(X, drop_first=True)[0]
        estimand = str(getattr(final, "estimand", "ATE")).upper()
        labels = [estimand if self.scale == "difference" else f"{estimand} ({SCALE_LABELS[self.scale]})", "mu1", "mu0"]
        # y in units of a power of two near its largest |value| (an exact division): the sandwich's products of
        # scores cannot overflow or underflow; estimates, SEs and replicates are multiplied back below
        y_unit = pow2_scale(y, axis=None)
        problem = _EffectProblem(
            weighter=self.weighter, X=X, treatment=np.asarray(as_1d(treatment, "treatment")[0]), y=y / y_unit,
            sample_weight=sw, covariates=covariates, a=t.a, model=self.outcome_model, estimand=estimand,
            family=family, scale=self.scale, labels=labels,
        )
        eq = problem.equations(weights, sw)
        values, grad = problem.contrast(eq.mu)
        vcov, config, draws, notes = self._variance(problem, eq, grad, X, treatment, sample_weight, clusters)
        # back to y's units (a log ratio has none); a variance beyond the float range is inf, its SE is not
        unit = np.array([y_unit if self.scale == "difference" else 1.0, y_unit, y_unit])
        std_err = np.sqrt(np.diag(vcov)) * unit
        with np.errstate(over="ignore", under="ignore"):
            vcov = vcov * unit[:, None] * unit[None, :]
        natural = values * unit
        if self.scale != "difference":
            natural[0] = np.exp(values[0])
        self.result_ = EffectResults(
            estimand=estimand, scale=self.scale, estimate=pd.Series(natural, index=labels, name="estimate"),
            vcov=pd.DataFrame(vcov, index=labels, columns=labels), vcov_type=self.vcov, vcov_config=config,
            n_obs=n, ess=effective_sample_size(weights, t.a), outcome_model=self.outcome_model,
            method=type(final).__name__, accounts_for_weight_estimation=self.vcov != "HC0",
            draws=None if draws is None else draws * unit, notes=tuple(notes),
            std_err=pd.Series(std_err, index=labels, name="std_err"),
        )
        summary = self.result_.summary()
        self.estimate_ = float(natural[0])
        self.se_ = float(summary["std_err"].iloc[0])
        self.pvalue_ = float(summary["p_value"].iloc[0])
        self.vcov_type_ = self.vcov
        self.potential_outcomes_ = summary.loc[["mu1", "mu0"], ["estimate", "std_err"]]
        return self

    # -- input checks -----------------------------------------------------------------------------------------
    def _check_outcome(self, y, n, index):
        values = check_outcome(y, n, index=index)
        if self.scale != "difference" and not _is_binary(values):
            raise ValueError(f"scale={self.scale!r} needs a binary (0/1) outcome; y has other values.")
        if self.family == "binomial" and not _is_binary(values):
            raise ValueError("family='binomial' needs a binary (0/1) outcome.")
        return values

    @staticmethod
    def _check_cluster(cluster, n, index):
        if cluster is None:
            return None
        values, c_index = as_1d(cluster, "cluster")
        if len(values) != n:
            raise ValueError(f"cluster has {len(values)} entries but X has {n} rows.")
        if index is not None and c_index is not None and not c_index.equals(index):
            raise ValueError("cluster is a Series whose index differs from X's index; align them first.")
        if pd.isna(values).any():
            raise ValueError("cluster has missing values.")
        return values

    # -- variance ---------------------------------------------------------------------------------------------
    def _variance(self, problem, eq, grad, X, treatment, sample_weight, clusters):
        """Covariance of (effect, mu1, mu0), its configuration, bootstrap draws and notes."""
        config = {"description": VCOV_TYPES[self.vcov], "clusters": None if clusters is None else
                  int(pd.Series(clusters).nunique())}
        notes = [f"variance: {VCOV_TYPES[self.vcov]}" + (" (cluster-robust)" if clusters is not None else "")]
        # rows of (effect, mu1, mu0) as linear maps of (mu0, mu1)
        jac = np.array([grad, [0.0, 1.0], [1.0, 0.0]])
        self.n_failed_ = self.n_nonconverged_ = 0
        if self.vcov in ("asympt", "HC0"):
            parts = self._m_parts(X, treatment, sample_weight) if self.vcov == "asympt" else None
            if parts is not None and not np.allclose(parts.weights(parts.params), np.asarray(_final_step(self.weighter_).weights_), rtol=1e-8, atol=0):
                raise RuntimeError("the weighter's estimating equations do not reproduce its weights; please report this bug.")
            if self.condition_on_covariates:
                eq = _without_target_rows(eq)
            cov_o, kind = stacked_cov(eq, clusters, parts)
            mu_cov = eq.mu_map @ cov_o @ eq.mu_map.T
            config["jacobian"] = kind
            if parts is not None:
                notes.append(f"weight-model Jacobian: {kind}")
                if isinstance(self.weighter_, Pipeline):
                    notes.append("the fitted preprocessing steps of the pipeline are treated as fixed")
            if self.outcome_model in ("interact", "aipw", "additive"):
                notes.append("covariates of the target population " + ("held fixed (WeightIt's convention)"
                             if self.condition_on_covariates else "treated as random (population effect)"))
            return jac @ mu_cov @ jac.T, config, None, notes
        draws, counts = run_bootstrap(problem, self.vcov, self.n_bootstrap, self.random_state, clusters,
                                      self.n_jobs, self.verbose)
        self.n_failed_, self.n_nonconverged_ = counts["failed"], counts["nonconverged"]
        config.update(n_bootstrap=self.n_bootstrap, **{f"n_{k}": v for k, v in counts.items()})
        if counts["failed"] or counts["nonconverged"]:
            message = (f"{counts['failed']} of {self.n_bootstrap} bootstrap replicates failed (excluded) and "
                       f"{counts['nonconverged']} did not converge (kept)")
            warnings.warn(message + ".", UserWarning, stacklevel=3)
            notes.append(message)
        if self.n_bootstrap - counts["failed"] < 2:
            raise ValueError("fewer than two bootstrap replicates succeeded; no variance can be computed.")
        return np.cov(draws.dropna().to_numpy(), rowvar=False), config, draws, notes

    def _m_parts(self, X, treatment, sample_weight):
        final = _final_step(self.weighter_)
        Xt = self.weighter_[:-1].transform(X) if isinstance(self.weighter_, Pipeline) else X
        if getattr(final, "converged_", True) is False:
            raise ValueError(f"vcov='asympt' needs solved estimating equations, but {type(final).__name__} did not "
                             "converge; fix the weights' convergence or use vcov='bootstrap'.")
        reason = f"{type(final).__name__} provides no estimating equations"
        _check_magnitudes(final, Xt)
        if hasattr(final, "_m_parts"):
            try:
                return final._m_parts(Xt, treatment, sample_weight)
            except NotImplementedError as exc:
                reason = str(exc)
        raise ValueError(f"vcov='asympt' is not available: {reason.rstrip('.')}. Use vcov='bootstrap' or 'fwb' (re-estimating the "
                         "weights), or 'HC0' (weights treated as known).")

    # -- convenience ------------------------------------------------------------------------------------------
    def conf_int(self, alpha=0.05, method=None):
        """Confidence intervals of the effect and both potential-outcome means (see EffectResults.conf_int)."""
        check_is_fitted(self, "result_")
        return self.result_.conf_int(alpha, method)

    def summary(self, alpha=0.05):
        """A tidy DataFrame: estimate, std_err, statistic, p_value, ci_lower, ci_upper per quantity."""
        check_is_fitted(self, "result_")
        return self.result_.summary(alpha)


def _check_magnitudes(weighter, X):
    """Refuse M-estimation when a covariate's square leaves the float range (magnitudes beyond 1e±150): the weight
    model's derivatives hold such squares, and an underflow to 0 gives a finite but wrong standard error."""
    design = getattr(weighter, "design_", None)
    if design is None:
        return
    matrix, names = design.transform(X, drop_first=True)
    top = np.abs(matrix).max(axis=0) if matrix.shape[0] else np.zeros(len(names))
    extreme = (top > 1e150) | ((top > 0) & (top < 1e-150))
    if extreme.any():
        raise ValueError(f"vcov='asympt' cannot be computed: covariate(s) {[n for n, e in zip(names, extreme) if e]} "
                         "have magnitudes beyond 1e150 or below 1e-150, whose squares in the weight model's "
                         "derivatives leave the floating-point range; rescale them, or use vcov='bootstrap' or 'fwb'.")


def _is_binary(y):
    """All values are 0 or 1 (vectorised: a Python set of a million floats costs a second)."""
    return bool(np.all((y == 0) | (y == 1)))


def _without_target_rows(eq):
    """Condition on the target population's covariates: its averaging equations leave the meat."""
    psi = eq.psi.copy()
    for j, name in enumerate(eq.names):
        if name.startswith("nu"):
            psi[:, j] = 0.0
    return type(eq)(params=eq.params, names=eq.names, psi=psi, jacobian=eq.jacobian, dpsi_dw=eq.dpsi_dw,
                    mu_map=eq.mu_map)
