"""MSMEffect: the effect of a treatment history from a weighted outcome model (a marginal structural model)."""

from __future__ import annotations

import itertools
import numbers

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._validation import check_indexes_agree, check_outcome, check_sample_weight, take_rows
from ..effects._contrasts import _contrast
from ..effects._outcome import OutcomeEquations, _fit_regression, _link
from ..effects._results import SCALE_LABELS
from ..effects._vcov import VCOV_ESTIMATORS, VCOV_TYPES
from ..effects._weighted_effect import _fit_weighter, _fit_weighter_reporting, _is_binary
from ._censoring import check_uncensored
from ._data import binary_histories, check_msm_data, history_label
from ._weights import MSMWeights

OUTCOME_MODELS = ("saturated", "additive", "cumulative")
MAX_SATURATED_TIMES = 10  # 2^10 coefficients; beyond that the saturated model is neither estimable nor readable


def history_design(histories, model, names):
    """The marginal structural model's design of treatment histories (rows of 0/1), with its column names.

    "saturated": an intercept, the treatments and all their products (R's ``A_1 * A_2 * A_3`` order: main effects,
    then two-way products, ...); "additive": an intercept and the treatments; "cumulative": an intercept and the
    number of time points treated.
    """
    histories = np.asarray(histories, dtype=float)
    columns, labels = [np.ones(len(histories))], ["(Intercept)"]
    if model == "cumulative":
        return np.column_stack(columns + [histories.sum(axis=1)]), labels + ["cumulative"]
    orders = range(1, histories.shape[1] + 1) if model == "saturated" else [1]
    for order in orders:
        for subset in itertools.combinations(range(histories.shape[1]), order):
            columns.append(histories[:, list(subset)].prod(axis=1))
            labels.append(":".join(names[j] for j in subset))
    return np.column_stack(columns), labels


def glm_equations(design, y, weights, family):
    """Estimating equations of a weighted GLM (identity or logit link): ψ_i = w_i D_i (y_i − h(D_iᵀγ))."""
    gamma = _fit_regression(design, y, weights, family)
    fitted, dfitted = _link(design @ gamma, family)
    resid = y - fitted
    m = design.shape[1]
    return OutcomeEquations(
        params=gamma, names=[f"gamma{j}" for j in range(m)], psi=design * (weights * resid)[:, None],
        jacobian=-(design * (weights * dfitted)[:, None]).T @ design, dpsi_dw=design * resid[:, None],
        mu_map=np.zeros((0, m)), averaging=np.zeros(m, dtype=bool),
    )


class _MSMProblem:
    """What a bootstrap replicate refits: the history weights and the outcome model (picklable)."""

    def __init__(self, weighter, X_list, treatment, y, sample_weight, histories, model, family, grid, names,
                 uncensored=None):
        self.weighter, self.X, self.treatment, self.y = weighter, X_list, treatment, y
        self.uncensored = uncensored
        self.sample_weight, self.histories, self.outcome_model, self.family = sample_weight, histories, model, family
        self.model = "msm"  # what the covariance classes' notes read (no covariates to average over)
        self.grid, self.names = grid, names
        self.labels = [history_label(h) for h in grid]

    @property
    def n_obs(self):
        return len(self.y)

    def equations(self, weights, rows=slice(None)):
        design = history_design(self.histories[rows], self.outcome_model, self.names)[0]
        return glm_equations(design, self.y[rows], weights, self.family)

    def potential_outcomes(self, gamma):
        """μ_h = h(D_hᵀγ) for every history h of the grid, and their Jacobian in γ."""
        design = history_design(self.grid, self.outcome_model, self.names)[0]
        mean, dmean = _link(design @ gamma, self.family)
        return mean, design * dmean[:, None]

    def replicate(self, kind, draw, seed=None):
        if kind == "bootstrap":
            sw = None if self.sample_weight is None else self.sample_weight[draw]
            X_list = [take_rows(X, draw) for X in self.X]
            fit_params = {} if self.uncensored is None else {"uncensored": self.uncensored[draw]}
            fitted, weights = _fit_weighter(self.weighter, X_list, self.treatment.iloc[draw], sw, seed, **fit_params)
            eq = self.equations(weights, rows=draw)
        else:
            sw = draw if self.sample_weight is None else self.sample_weight * draw
            fit_params = {} if self.uncensored is None else {"uncensored": self.uncensored}
            fitted, weights = _fit_weighter(self.weighter, self.X, self.treatment, sw, seed, **fit_params)
            eq = self.equations(weights)
        return self.potential_outcomes(eq.params)[0], bool(getattr(fitted, "converged_", True))


class MSMEffect(BaseEstimator):
    """The effect of a treatment history: a weighted outcome model of the treatments (a marginal structural model).

    Fits a clone of ``msm_weighter`` (an :class:`MSMWeights`), then regresses the outcome on the treatment history
    with those weights (WeightIt's ``glm_weightit(Y ~ A_1 * A_2 * A_3, weightit = W)``), and gives the potential
    outcome of every treatment history and contrasts between histories.

    Parameters
    ----------
    msm_weighter : MSMWeights, default=None
        None means ``MSMWeights()`` (logistic inverse probability weights at every time point).
    outcome_model : {"saturated", "additive", "cumulative"}, default="saturated"
        The outcome's model of the treatment history h = (a_1, ..., a_T): "saturated" a coefficient for every
        history (all products of the treatments; up to 10 time points), "additive" an intercept and one per time
        point, "cumulative" an intercept and the number of time points treated.
    family : {"auto", "gaussian", "binomial"}, default="auto"
        Identity link (least squares) or logit link; "auto" uses the logit for a 0/1 outcome.
    vcov : {"asympt", "HC0", "bootstrap", "fwb"}, default="asympt"
        "asympt" stacks every time point's weight model (and the numerators) with the outcome model's equations;
        "HC0" treats the weights as known; the bootstraps resample (or reweight) units and refit everything.
    n_bootstrap : int, default=999
    n_jobs : int, default=None
    random_state : int, Generator or None, default=None
        Seeds the bootstraps.

    Attributes
    ----------
    msm_weighter_ : MSMWeights
        The fitted clone.
    coef_ : Series
        The outcome model's coefficients (named as R's: ``(Intercept)``, ``A_1``, ``A_1:A_2``, ...).
    coef_cov_ : DataFrame or None
        Their covariance (asympt, HC0); None with the bootstraps, whose replicates are ``draws_``.
    potential_outcomes_ : DataFrame
        One row per treatment history (2^T rows, named like ``"(1, 0, 1)"``, histories in lexicographic order) with
        ``estimate`` and ``std_err``: h(D_hᵀγ), the expected outcome had everyone followed history h.
    vcov_ : covariance estimator
        The resolved covariance object (``notes``, ``config``).
    draws_ : DataFrame or None
        The bootstraps' replicates of the potential outcomes.

    Notes
    -----
    The outcome equations are ψ_i = w_i D(h_i) (y_i − h(D(h_i)ᵀγ)) with D the history design; with ``"asympt"``
    they are stacked with the weight model's (:meth:`MSMWeights._m_parts`), Var = A⁻¹ B A⁻ᵀ (WeightIt's
    ``vcov = "asympt"``). Potential outcomes and contrasts get delta-method SEs; ratio contrasts are computed on the
    log scale.

    References
    ----------
    Robins, J. M., Hernán, M. Á., & Brumback, B. (2000). Marginal structural models and causal inference in
    epidemiology. Epidemiology 11, 550–560.

    Examples
    --------
    >>> from balance.msm import MSMEffect, MSMWeights, simulate_msm
    >>> data = simulate_msm(4000, 3, random_state=0)  # E[y(1,1,1)] - E[y(0,0,0)] = 3.784
    >>> fit = MSMEffect(MSMWeights(stabilize=True), "additive").fit(data.X_list, data.treatments, data.y)
    >>> list(fit.potential_outcomes_.index)[:3]
    ['(0, 0, 0)', '(0, 0, 1)', '(0, 1, 0)']
    >>> fit.contrast("always", "never").round(2).to_dict()
    {'estimate': 3.89, 'std_err': 0.11, 'ci_lower': 3.67, 'ci_upper': 4.11}
    """

    def __init__(self, msm_weighter=None, outcome_model="saturated", *, family="auto", vcov="asympt",
                 n_bootstrap=999, n_jobs=None, random_state=None):
        self.msm_weighter = msm_weighter
        self.outcome_model = outcome_model
        self.family = family
        self.vcov = vcov
        self.n_bootstrap = n_bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _check_params(self, n_times):
        if self.outcome_model not in OUTCOME_MODELS:
            raise ValueError(f"outcome_model={self.outcome_model!r}; choose one of {list(OUTCOME_MODELS)}.")
        if self.vcov not in VCOV_TYPES:
            raise ValueError(f"vcov={self.vcov!r}; choose one of {list(VCOV_TYPES)}.")
        if self.family not in ("auto", "gaussian", "binomial"):
            raise ValueError(f"family={self.family!r}; choose 'auto', 'gaussian' or 'binomial'.")
        if not (isinstance(self.n_bootstrap, numbers.Integral) and self.n_bootstrap >= 2):
            raise ValueError(f"n_bootstrap={self.n_bootstrap!r} must be an integer >= 2.")
        if self.outcome_model == "saturated" and n_times > MAX_SATURATED_TIMES:
            raise ValueError(f"outcome_model='saturated' has 2^{n_times} coefficients for {n_times} time points; "
                             f"use 'additive' or 'cumulative' beyond {MAX_SATURATED_TIMES} time points.")
        weighter = MSMWeights() if self.msm_weighter is None else self.msm_weighter
        if not isinstance(weighter, MSMWeights):
            raise TypeError(f"msm_weighter must be an MSMWeights; got {type(weighter).__name__} (wrap a per-time "
                            "weighter: MSMWeights(weighter)).")
        return weighter

    def fit(self, X_list, treatments, y, sample_weight=None, cluster=None, uncensored=None):
        """Fit the history weights, the outcome model and its covariance.

        Parameters
        ----------
        X_list : list of DataFrame or array-like
            For each time point, the covariates its treatment model conditions on.
        treatments : DataFrame of shape (n_samples, n_times)
            Binary treatments, one column per time point in time order.
        y : array-like of shape (n_samples,)
            The end-of-follow-up outcome.
        sample_weight : array-like of shape (n_samples,), default=None
        cluster : array-like of shape (n_samples,), default=None
            Cluster labels for cluster-robust variances and the cluster bootstrap.
        uncensored : DataFrame or array-like of shape (n_samples, n_times), default=None
            For ``MSMWeights(censoring=CensoringWeights())``: 1 while a unit is still observed at the end of
            interval t. ``y`` of units that dropped out is ignored (it may be NaN).

        Returns
        -------
        self
        """
        X_list, frame, times = check_msm_data(X_list, treatments)
        weighter = self._check_params(len(times))
        n = frame.shape[0]
        check_indexes_agree(treatments=frame, y=y, sample_weight=sample_weight, cluster=cluster)
        if uncensored is not None:
            # the outcome of a unit that dropped out is unknown (weight 0): it may be missing
            observed = check_uncensored(uncensored, frame.index, n, len(times))
            y = np.where(observed[:, -1] == 1, np.asarray(y, dtype=float), 0.0)
            fit_params = {"uncensored": observed}
        else:
            observed, fit_params = None, {}
        y = check_outcome(y, n, index=frame.index)
        histories = binary_histories(frame)
        clusters = None if cluster is None else np.asarray(cluster)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, n, index=frame.index)
        family = self.family if self.family != "auto" else ("binomial" if _is_binary(y) else "gaussian")
        self.msm_weighter_, weights = _fit_weighter_reporting(weighter, X_list, frame, sw, **fit_params)
        grid = np.array(list(itertools.product([0, 1], repeat=len(times))))
        problem = _MSMProblem(weighter, X_list, frame, y, sw, histories, self.outcome_model, family, grid, times,
                              observed)
        eq = problem.equations(weights)
        mu, jac = problem.potential_outcomes(eq.params)
        names = history_design(grid[:1], self.outcome_model, times)[1]
        if self.vcov in ("asympt", "HC0"):
            vcov = VCOV_ESTIMATORS[self.vcov](problem, eq, clusters=clusters, **(
                {"weighter": self.msm_weighter_} if self.vcov == "asympt" else {}))
            coef_cov = vcov._outcome_cov[0]
            mu_se = np.sqrt(np.einsum("ij,jk,ik->i", jac, coef_cov, jac))
            self.draws_ = None
        else:
            vcov = VCOV_ESTIMATORS[self.vcov](problem, eq, clusters=clusters, n_bootstrap=self.n_bootstrap,
                                              random_state=self.random_state, n_jobs=self.n_jobs)
            coef_cov = None
            self.draws_ = vcov.draws
            mu_se = self.draws_.std(ddof=1).to_numpy()
        self.vcov_, self.family_, self.times_ = vcov, family, times
        self._jac = jac  # d mu_h / d gamma, for the contrasts' delta method
        self.coef_ = pd.Series(eq.params, index=names, name="estimate")
        self.coef_cov_ = None if coef_cov is None else pd.DataFrame(coef_cov, index=names, columns=names)
        self.potential_outcomes_ = pd.DataFrame({"estimate": mu, "std_err": mu_se}, index=problem.labels)
        return self

    def contrast(self, history_a, history_b, *, scale="difference", alpha=0.05):
        """Compare the potential outcomes of two treatment histories.

        Parameters
        ----------
        history_a, history_b : tuple of 0/1 or str
            Histories such as ``(1, 1, 1)`` or ``"(1, 1, 1)"``; "always" and "never" are all ones and all zeros.
        scale : {"difference", "rr", "or"}, default="difference"
            μ_a − μ_b, the risk ratio μ_a / μ_b or the odds ratio (ratios: 0/1 outcomes; estimated on the log scale).
        alpha : float, default=0.05

        Returns
        -------
        Series
            ``estimate`` (a ratio on its natural scale), ``std_err`` (of the log ratio for ratios), ``ci_lower``,
            ``ci_upper`` (normal intervals; exponentiated for ratios).
        """
        check_is_fitted(self, "potential_outcomes_")
        if scale not in SCALE_LABELS:
            raise ValueError(f"scale={scale!r}; choose one of {list(SCALE_LABELS)}.")
        hi, lo = self._history_row(history_a), self._history_row(history_b)
        mu = self.potential_outcomes_["estimate"].to_numpy()
        value, d_hi, d_lo = _contrast(mu[hi], mu[lo], scale)
        if self.draws_ is None:
            grad = d_hi * self._jac[hi] + d_lo * self._jac[lo]
            std_err = float(np.sqrt(grad @ self.coef_cov_.to_numpy() @ grad))
        else:
            draws = self.draws_.to_numpy()
            std_err = float(np.nanstd(_contrast(draws[:, hi], draws[:, lo], scale)[0], ddof=1))
        z = norm.ppf(1 - alpha / 2)
        bounds = np.array([value - z * std_err, value + z * std_err])
        transform = np.exp if scale != "difference" else (lambda v: v)
        label = f"{self.potential_outcomes_.index[hi]} vs {self.potential_outcomes_.index[lo]}"
        return pd.Series({"estimate": float(transform(value)), "std_err": std_err,
                          "ci_lower": float(transform(bounds[0])), "ci_upper": float(transform(bounds[1]))},
                         name=label)

    def _history_row(self, history):
        n_times = len(self.times_)
        if isinstance(history, str) and history in ("always", "never"):
            history = (int(history == "always"),) * n_times
        if isinstance(history, str):
            history = tuple(int(v) for v in history.strip("() ").split(",") if v.strip())
        history = tuple(np.asarray(history).ravel().tolist())
        if len(history) != n_times or not set(history) <= {0, 1}:
            raise ValueError(f"history {history!r} must give 0 or 1 for each of the {n_times} time points "
                             f"{self.times_}, e.g. {(1,) * n_times}.")
        return int(np.dot(history, 2 ** np.arange(n_times)[::-1]))
