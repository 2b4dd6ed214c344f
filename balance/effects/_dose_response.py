"""WeightedDoseResponse: the average dose-response function of a continuous treatment from weighted data.

Weights that make a continuous treatment A independent of the covariates (a generalised propensity score, entropy
balancing, ...) turn a weighted regression of the outcome on A alone into an estimate of the average dose-response
function (ADRF) μ(a) = E[Y(a)]. The outcome model is linear, μ(a) = γ₀ + γ₁a, or a natural cubic spline in a (R's
``splines::ns``). Its estimating equations ψ_i = w_i D(A_i) (y_i − D(A_i)ᵀγ) are stacked with the weight model's
for the "asympt" variance, through the same covariance classes as :class:`~balance.WeightedEffect`.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._validation import check_indexes_agree, check_outcome, check_sample_weight, check_treatment, take_rows
from ..diagnostics import effective_sample_size
from ..diagnostics._weights import check_extreme_weights, weight_groups
from ._outcome import OutcomeEquations, _fit_regression
from ._splines import NaturalSplineBasis
from ._vcov import VCOV_ESTIMATORS, VCOV_TYPES, FixedWeightsSandwich, StackedSandwich, _final_step
from ._weighted_effect import _EXTREME_ADVICE, _as_input, _fit_weighter, _fit_weighter_reporting, _outcome_unit

DOSE_MODELS = ("linear", "spline")


def dose_design(doses, basis=None):
    """The outcome model's design at ``doses``: (1, dose), or (1, ns(dose)) with the fitted spline ``basis``."""
    doses = np.asarray(doses, dtype=float)
    columns = doses[:, None] if basis is None else basis.transform(doses)
    return np.column_stack([np.ones(len(doses)), columns])


def dose_equations(design, y, weights):
    """Weighted least squares of y on ``design`` as estimating equations: θ = γ, ψ_i = w_i D_i (y_i − D_iᵀγ)."""
    gamma = _fit_regression(design, y, weights, "gaussian")
    resid = y - design @ gamma
    m = design.shape[1]
    return OutcomeEquations(
        params=gamma, names=[f"gamma{j}" for j in range(m)], psi=design * (weights * resid)[:, None],
        jacobian=-(design * weights[:, None]).T @ design, dpsi_dw=design * resid[:, None], mu_map=np.eye(m),
        averaging=np.zeros(m, dtype=bool),
    )


@dataclass
class _DoseProblem:
    """Everything a bootstrap replicate needs to re-estimate the weights and the outcome model (picklable).

    The spline's knots stay those of the full sample in every replicate, so that every replicate estimates the
    coefficients of one and the same basis.
    """

    weighter: object
    X: object
    treatment: object
    y: np.ndarray
    sample_weight: np.ndarray | None
    a: np.ndarray
    basis: NaturalSplineBasis | None
    labels: list
    model: str

    @property
    def n_obs(self):
        return len(self.y)

    def equations(self, weights, rows=slice(None)):
        return dose_equations(dose_design(self.a[rows], self.basis), self.y[rows], weights)

    def contrasts(self, params):
        """The reported quantities are the coefficients themselves (the identity map and its Jacobian)."""
        return params, np.eye(params.size)

    def replicate(self, kind, draw, seed=None):
        if kind == "bootstrap":
            sw = None if self.sample_weight is None else self.sample_weight[draw]
            fitted, weights = _fit_weighter(self.weighter, take_rows(self.X, draw), take_rows(self.treatment, draw), sw,
                                             seed)
            eq = self.equations(weights, rows=draw)
        else:
            sw = draw if self.sample_weight is None else self.sample_weight * draw
            fitted, weights = _fit_weighter(self.weighter, self.X, self.treatment, sw, seed)
            eq = self.equations(weights)
        return eq.params, bool(getattr(_final_step(fitted), "converged_", True))


class WeightedDoseResponse(BaseEstimator):
    """Average dose-response function of a continuous treatment, with standard errors that account for the weights.

    Fits a clone of ``weighter`` (a weighting estimator fitted on a continuous treatment, or a Pipeline ending in
    one), then a weighted least-squares regression of the outcome on the treatment alone: a line, or a natural cubic
    spline. Since the model has the treatment alone, its prediction at a dose is the estimated average dose-response
    function (ADRF) there.

    Parameters
    ----------
    weighter : weighting estimator or Pipeline
        E.g. ``PropensityWeights()`` (the generalised propensity score) or ``EntropyBalance()``, fitted here on the
        continuous treatment.
    outcome_model : {"linear", "spline"}, default="linear"
        "linear": y on (1, A), WeightIt's ``lm_weightit(y ~ A)``; the slope is the average change in the outcome
        per unit of the treatment. "spline": y on (1, ns(A, df)), a natural cubic spline with ``df`` degrees of
        freedom, interior knots at the quantiles of A and boundary knots at its range (R's ``splines::ns``, same
        basis and so the same coefficients); linear beyond the range.
    df : int, default=3
        Degrees of freedom of the spline (ignored for "linear" or when ``knots`` is given).
    knots : array-like, default=None
        Interior knots of the spline (``df`` is then ``len(knots) + 1``); for treatments with many tied values
        (e.g. many zeros), whose quantiles coincide.
    vcov : {"asympt", "HC0", "bootstrap", "fwb"}, default="asympt"
        As :class:`~balance.WeightedEffect`: "asympt" stacks the weight model's estimating equations (needs a
        weighter with ``_m_parts``); "HC0" treats the weights as known; "bootstrap" resamples rows and "fwb" draws
        Exp(1) sampling weights, re-estimating the weights in every replicate.
    n_bootstrap : int, default=999
    alpha : float, default=0.05
        1 − the confidence level of :meth:`predict`'s intervals.
    random_state : int, Generator or None, default=None
        Seeds the bootstraps (the replicates do not depend on ``n_jobs``).
    n_jobs : int, default=None
        Parallel jobs for the bootstraps (joblib).

    Attributes
    ----------
    weighter_ : estimator
        The fitted clone of ``weighter``.
    weights_ : Series or ndarray
        Its weights (a Series on X's index when X is a DataFrame).
    coef_ : Series
        The outcome model's coefficients: "(Intercept)" and the treatment's name, or "(Intercept)" and
        "ns(<name>)1", ..., "ns(<name>)<df>".
    vcov_ : DataFrame
        Their covariance.
    vcov_type_ : str
    vcov_notes_ : list of str
        How the covariance was obtained.
    slope_, slope_se_ : float
        The slope and its standard error (``outcome_model="linear"`` only).
    basis_ : NaturalSplineBasis or None
        The spline's knots (``knots``, ``boundary``); None for "linear".
    doses_ : ndarray of shape (n_samples,)
        The treatment values seen in fit (the dose-response plot's rug and default grid).
    treatment_name_ : str
        The treatment's name (a Series' name, else "treatment").
    draws_ : DataFrame or None
        The bootstrap replicates of ``coef_`` (NaN rows for failed ones); None for the sandwiches.
    ess_ : float
        Kish's effective sample size of the weights.
    n_failed_, n_nonconverged_ : int
        Bootstrap replicates that failed (excluded) or whose weights did not converge (kept).

    Notes
    -----
    Which variance covers. With normal GPS weights f(A) / f(A | X) the weights' k-th moment is finite only when the
    treatment model's R² < 1/k: a variance when R² < 1/2, a fourth moment when R² < 1/4. Every standard
    error is an average of squared weighted scores, so for R² ≥ 1/4 the standard error is itself heavy-tailed and
    the estimates are too at the doses in the treatment's tails: at moderate n all three intervals then
    under-cover there. In ``benchmarks/results/dose_response_coverage.md`` (R² = 1/3, n = 1000, spline ADRF at five
    doses) the GPS's "asympt" covers 91.7 % over 200 replications (92.8 % over 1000, ``dose_response_tails.md``),
    the bootstrap 92.6 % (percentile; 200) and "HC0" 93.7 % (94.3 % over 1000); with R² = 1/5, "asympt" 93.5 % and
    "HC0" 95.1 % over 1000. "HC0" treats the weights as known, which for the GPS errs on the safe side (estimating
    the treatment model reduces the variance; its SEs are the larger here): for GPS weights from a treatment model
    with a high R² (check ``ess_``), prefer ``vcov="HC0"``. Entropy balancing's weights are not a density ratio: its
    "asympt" (balance targets estimated) covers 93.6 % in both designs.

    Examples
    --------
    Balance weights that make ``re75`` independent of the other covariates (entropy balancing matches their means
    and sets their covariances with the treatment to zero), then the dose-response of ``re78`` on ``re75``:

    >>> from balance import EntropyBalance, WeightedDoseResponse
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> X, dose = data.X.drop(columns="re75"), data.X["re75"]
    >>> fit = WeightedDoseResponse(EntropyBalance(estimand="ATE"), vcov="HC0").fit(X, dose, data.y)
    >>> round(fit.slope_, 3), round(fit.slope_se_, 3)
    (0.172, 0.152)
    """

    def __init__(self, weighter, outcome_model="linear", df=3, knots=None, vcov="asympt", *, n_bootstrap=999,
                 alpha=0.05, random_state=None, n_jobs=None):
        self.weighter = weighter
        self.outcome_model = outcome_model
        self.df = df
        self.knots = knots
        self.vcov = vcov
        self.n_bootstrap = n_bootstrap
        self.alpha = alpha
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_params(self):
        if self.outcome_model not in DOSE_MODELS:
            raise ValueError(f"outcome_model={self.outcome_model!r}; choose one of {list(DOSE_MODELS)}.")
        if self.vcov not in VCOV_TYPES:
            raise ValueError(f"vcov={self.vcov!r}; choose one of {list(VCOV_TYPES)}.")
        if not (isinstance(self.df, numbers.Integral) and self.df >= 1):
            raise ValueError(f"df={self.df!r} must be an integer >= 1 (the spline's degrees of freedom).")
        if not (isinstance(self.n_bootstrap, numbers.Integral) and self.n_bootstrap >= 2):
            raise ValueError(f"n_bootstrap={self.n_bootstrap!r} must be an integer >= 2.")
        _check_alpha(self.alpha)

    def fit(self, X, treatment, y, sample_weight=None):
        """Estimate the weights, the outcome model and its covariance.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        treatment : array-like of shape (n_samples,)
            The continuous treatment (dose).
        y : array-like of shape (n_samples,)
            Numeric outcome.
        sample_weight : array-like of shape (n_samples,), default=None
            Sampling weights, passed to the weighter (whose weights include them).

        Returns
        -------
        self
        """
        self._check_params()
        n, index = len(X), (X.index if isinstance(X, pd.DataFrame) else None)
        check_indexes_agree(X=index, treatment=treatment, y=y, sample_weight=sample_weight)
        y = check_outcome(y, n, index=index)  # before the (possibly slow) weight fit
        weighter, weights = _fit_weighter_reporting(self.weighter, X, treatment, sample_weight)
        final = _final_step(weighter)
        kind = getattr(final, "treatment_type_", "binary")
        if kind != "continuous":
            raise ValueError(f"WeightedDoseResponse needs a continuous treatment; {type(final).__name__} was fitted on "
                             f"a {kind} treatment. Use WeightedEffect for binary and multi-category treatments.")
        t = check_treatment(treatment, treatment_type="continuous", n_samples=n, index=index)
        _check_magnitudes(y, t.a)
        extreme = check_extreme_weights(weights, *weight_groups(t), who="WeightedDoseResponse",
                                        advice=_EXTREME_ADVICE[self.vcov], stacklevel=3)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, n, index=index)
        basis = None
        if self.outcome_model == "spline":
            basis = NaturalSplineBasis.from_data(t.a, self.df, self.knots)
        name = str(getattr(treatment, "name", None) or "treatment")
        labels = ["(Intercept)"] + ([name] if basis is None else [f"ns({name}){k}" for k in range(1, basis.df + 1)])
        problem = _DoseProblem(weighter=self.weighter, X=X, treatment=_as_input(treatment), y=y, sample_weight=sw,
                               a=t.a, basis=basis, labels=labels, model=self.outcome_model)
        eq = problem.equations(weights)
        estimator = self._covariance(problem, eq, weighter)
        cov = estimator.cov  # computed before any fitted attribute is set: a refused variance leaves none behind
        self.weighter_, self.weights_ = weighter, final.weights_
        self.basis_, self.doses_, self.treatment_name_ = basis, t.a, name
        self.coef_ = pd.Series(eq.params, index=labels, name="coef")
        self.vcov_ = pd.DataFrame(cov, index=labels, columns=labels)
        self.vcov_type_ = self.vcov
        self.vcov_notes_ = list(estimator.notes) + ([f"extreme weights ({extreme.describe()})"]
                                                    if extreme.extreme else [])
        self.draws_ = estimator.draws
        self.n_failed_, self.n_nonconverged_ = estimator.n_failed, estimator.n_nonconverged
        self.ess_ = float(effective_sample_size(weights))
        if basis is None:
            self.slope_ = float(eq.params[1])
            self.slope_se_ = float(np.sqrt(cov[1, 1]))
        elif hasattr(self, "slope_"):  # a refit with the spline: no slope to report
            del self.slope_, self.slope_se_
        return self

    def _covariance(self, problem, equations, weighter):
        """The covariance estimator of ``VCOV_ESTIMATORS`` named by ``vcov``, on the dose-response problem."""
        cls = VCOV_ESTIMATORS[self.vcov]
        if cls is StackedSandwich:
            return cls(problem, equations, weighter=weighter)
        if cls is FixedWeightsSandwich:
            return cls(problem, equations)
        return cls(problem, equations, n_bootstrap=self.n_bootstrap, random_state=self.random_state,
                   n_jobs=self.n_jobs)

    def predict(self, doses, alpha=None, method=None):
        """The average dose-response function at ``doses`` with pointwise standard errors and confidence limits.

        Parameters
        ----------
        doses : array-like of shape (n_doses,)
        alpha : float, default=None
            1 − confidence level; None uses the estimator's ``alpha``.
        method : {"normal", "percentile"}, default=None
            "normal": estimate ± z·std_err; "percentile": the bootstrap replicates' quantiles of the curve at each
            dose. None: percentile with a bootstrap variance, else normal (as WeightedEffect).

        Returns
        -------
        DataFrame
            Indexed by dose, columns estimate, std_err, conf_low, conf_high.

        Warns
        -----
        UserWarning
            When a dose lies outside the range of the treatment seen in fit (an extrapolation).
        """
        check_is_fitted(self, "coef_")
        alpha = _check_alpha(self.alpha if alpha is None else alpha)
        doses = np.atleast_1d(np.asarray(doses, dtype=float))
        if doses.ndim != 1 or not np.all(np.isfinite(doses)):
            raise ValueError("doses must be a one-dimensional array of finite numbers.")
        low, high = self.doses_.min(), self.doses_.max()
        outside = (doses < low) | (doses > high)
        if outside.any():
            warnings.warn(f"WeightedDoseResponse.predict: {int(outside.sum())} dose(s) lie outside the observed "
                          f"treatment range [{low:g}, {high:g}]; the curve there is an extrapolation of the "
                          f"{self.outcome_model} model (a spline continues linearly), not supported by data.",
                          UserWarning, stacklevel=2)
        design = dose_design(doses, self.basis_)
        estimate = design @ self.coef_.to_numpy()
        std_err = np.sqrt(np.einsum("ij,jk,ik->i", design, self.vcov_.to_numpy(), design))
        method = method or ("percentile" if self.draws_ is not None else "normal")
        if method == "percentile":
            if self.draws_ is None:
                raise ValueError("percentile intervals need bootstrap replicates (vcov='bootstrap' or 'fwb').")
            curves = self.draws_.dropna().to_numpy() @ design.T
            low, high = np.quantile(curves, [alpha / 2, 1 - alpha / 2], axis=0)
        elif method == "normal":
            z = norm.ppf(1 - alpha / 2)
            low, high = estimate - z * std_err, estimate + z * std_err
        else:
            raise ValueError(f"method={method!r} must be 'normal' or 'percentile'.")
        return pd.DataFrame({"estimate": estimate, "std_err": std_err, "conf_low": low, "conf_high": high},
                            index=pd.Index(doses, name="dose"))


def _check_alpha(alpha):
    if not (isinstance(alpha, numbers.Real) and 0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r} must be a number in (0, 1).")
    return float(alpha)


def _check_magnitudes(y, dose):
    """Refuse an outcome or dose beyond 2^±100 in magnitude: the outcome model's squares and products of scores
    would overflow or underflow (an outcome of 1e-200 gave a standard error of exactly 0). The weights themselves
    are computed on a standardised scale and are not affected."""
    for name, values in (("y", y), ("treatment", dose)):
        if _outcome_unit(values) != 1.0:
            raise ValueError(f"{name} has magnitude {np.max(np.abs(values)):.3g}, beyond the range (2^±100) in which "
                             "the outcome model's sandwich stays finite and exact; rescale it (e.g. to thousands or "
                             "millionths) and rescale the coefficients back.")
