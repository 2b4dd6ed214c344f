"""Covariance estimators of a weighted effect: small classes built from the fitted problem, exposing ``cov``.

Each class turns the fitted outcome equations (and, for the stacked sandwich, the weight model's equations; for the
bootstraps, the problem to refit) into the covariance of the reported quantities (contrasts on the inference scale,
then the potential-outcome means; see :mod:`balance.effects._contrasts`). ``VCOV_ESTIMATORS`` maps WeightIt's names
to the classes; :class:`~balance.WeightedEffect` looks its ``vcov`` up there (the layout of linearmodels'
``covariance`` modules).

========== ================================= ==========================================
name       class                             weights
========== ================================= ==========================================
asympt     :class:`StackedSandwich`          estimated: the weight model's equations stacked
HC0        :class:`FixedWeightsSandwich`     treated as known
bootstrap  :class:`RowBootstrap`             re-estimated on resampled rows (clusters)
fwb        :class:`FractionalBootstrap`      re-estimated with Exp(1) unit weights
========== ================================= ==========================================
"""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ._bootstrap import run_bootstrap
from ._sandwich import stacked_cov


class FixedWeightsSandwich:
    """HC0 sandwich of the outcome equations, the weights treated as known (WeightIt's ``vcov = "HC0"``).

    Parameters
    ----------
    problem : _EffectProblem
        The fitted problem; its ``contrasts`` map the potential-outcome means to the reported rows.
    equations : OutcomeEquations
        The outcome model's equations at the estimates.
    clusters : array-like of shape (n_samples,), default=None
        Cluster labels: the meat sums within clusters, times G/(G − 1).
    condition_on_covariates : bool, default=False
        Hold the target population's covariates fixed (the averaging equations leave the meat).
    """

    name = "HC0"
    description = "robust sandwich with the weights treated as known (no small-sample correction)"
    accounts_for_weight_estimation = False
    draws = None

    def __init__(self, problem, equations, *, clusters=None, condition_on_covariates=False):
        self.problem = problem
        self.equations = equations
        self.clusters = clusters
        self.condition_on_covariates = condition_on_covariates
        self.n_failed = self.n_nonconverged = 0
        self._given_outcome_cov = None

    def use_outcome_cov(self, cov, kind):
        """Take the outcome parameters' covariance (and the kind of weight-model Jacobian behind it) computed
        elsewhere, e.g. from block sums of dask input, instead of from the equations in memory; returns self."""
        self._given_outcome_cov = (cov, kind)
        return self

    @classmethod
    def from_effect(cls, effect, problem, equations, clusters):
        """Build from a :class:`~balance.WeightedEffect` being fitted (reads its options)."""
        return cls(problem, equations, clusters=clusters, condition_on_covariates=effect.condition_on_covariates)

    @property
    def parts(self):
        """The weight model's equations stacked with the outcome's (None: weights fixed)."""
        return None

    @cached_property
    def _outcome_cov(self):
        if self._given_outcome_cov is not None:
            return self._given_outcome_cov
        eq = self.equations.conditional_on_covariates() if self.condition_on_covariates else self.equations
        return stacked_cov(eq, self.clusters, self.parts)

    @cached_property
    def cov(self):
        """Covariance of the reported quantities: J M V Mᵀ Jᵀ, V the outcome parameters' covariance, M the map to the
        potential-outcome means, J the contrasts' Jacobian."""
        mu_map = self.equations.mu_map
        mu_cov = mu_map @ self._outcome_cov[0] @ mu_map.T
        jac = self.problem.contrasts(self.equations.mu)[1]
        return jac @ mu_cov @ jac.T

    @property
    def config(self):
        config = _base_config(self)
        config["jacobian"] = self._outcome_cov[1]
        return config

    @property
    def notes(self):
        notes = [_variance_note(self)]
        if self.accounts_for_weight_estimation:
            notes.append(f"weight-model Jacobian: {self._outcome_cov[1]}")
            if isinstance(self.weighter, Pipeline):
                notes.append("the fitted preprocessing steps of the pipeline are treated as fixed")
        if self.problem.model in ("interact", "aipw", "additive"):
            notes.append("covariates of the target population " + ("held fixed (WeightIt's convention)"
                         if self.condition_on_covariates else "treated as random (population effect)"))
        return notes

    def __str__(self):
        return f"{type(self).__name__} ({self.name}): {self.description}"


class StackedSandwich(FixedWeightsSandwich):
    """M-estimation sandwich stacking the weight model's estimating equations with the outcome's (``"asympt"``).

    Parameters
    ----------
    problem, equations, clusters, condition_on_covariates
        As :class:`FixedWeightsSandwich`.
    weighter : fitted weighting estimator or Pipeline
        Provides ``_m_parts`` (its :class:`~balance.MParts`); with a Pipeline the fitted preprocessing is fixed.
    """

    name = "asympt"
    description = ("M-estimation sandwich stacking the weight model's estimating equations (accounts for estimating "
                   "the weights)")
    accounts_for_weight_estimation = True

    def __init__(self, problem, equations, *, weighter, clusters=None, condition_on_covariates=False):
        super().__init__(problem, equations, clusters=clusters, condition_on_covariates=condition_on_covariates)
        self.weighter = weighter

    @classmethod
    def from_effect(cls, effect, problem, equations, clusters):
        return cls(problem, equations, weighter=effect.weighter_, clusters=clusters,
                   condition_on_covariates=effect.condition_on_covariates)

    @cached_property
    def parts(self):
        parts = _m_parts(self.weighter, self.problem)
        final = _final_step(self.weighter)
        if not np.allclose(parts.weights(parts.params), np.asarray(final.weights_), rtol=1e-8, atol=0):
            raise RuntimeError("the weighter's estimating equations do not reproduce its weights; please report "
                               "this bug.")
        return parts


class RowBootstrap:
    """Bootstrap resampling rows (whole clusters), re-estimating the weights in every replicate.

    Parameters
    ----------
    problem : _EffectProblem
        Refitted in every replicate (``problem.replicate``).
    equations : OutcomeEquations
        Unused (the estimates come from the full-sample fit); accepted for a uniform constructor.
    clusters : array-like of shape (n_samples,), default=None
    n_bootstrap : int, default=999
    random_state : int, Generator or None, default=None
    n_jobs : int, default=None
    verbose : int, default=0

    Attributes
    ----------
    draws : DataFrame of shape (n_bootstrap, n_rows)
        The replicates, NaN rows for failed ones.
    n_failed, n_nonconverged : int
    """

    name = "bootstrap"
    description = "bootstrap resampling rows and re-estimating the weights in every replicate"
    accounts_for_weight_estimation = True

    def __init__(self, problem, equations=None, *, clusters=None, n_bootstrap=999, random_state=None, n_jobs=None,
                 verbose=0):
        self.problem = problem
        self.clusters = clusters
        self.n_bootstrap = n_bootstrap
        self.draws, counts = run_bootstrap(problem, self.name, n_bootstrap, random_state, clusters, n_jobs, verbose)
        self.counts = counts
        self.n_failed, self.n_nonconverged = counts["failed"], counts["nonconverged"]
        if self.n_failed or self.n_nonconverged:
            warnings.warn(self._failure_message + ".", UserWarning, stacklevel=4)
        if n_bootstrap - self.n_failed < 2:
            raise ValueError("fewer than two bootstrap replicates succeeded; no variance can be computed.")

    @classmethod
    def from_effect(cls, effect, problem, equations, clusters):
        return cls(problem, equations, clusters=clusters, n_bootstrap=effect.n_bootstrap,
                   random_state=effect.random_state, n_jobs=effect.n_jobs, verbose=effect.verbose)

    @property
    def _failure_message(self):
        return (f"{self.n_failed} of {self.n_bootstrap} bootstrap replicates failed (excluded) and "
                f"{self.n_nonconverged} did not converge (kept)")

    @cached_property
    def cov(self):
        """The replicates' covariance (divisor R − 1), failed replicates excluded."""
        return np.cov(self.draws.dropna().to_numpy(), rowvar=False)

    @property
    def config(self):
        config = _base_config(self)
        config.update(n_bootstrap=self.n_bootstrap, **{f"n_{k}": v for k, v in self.counts.items()})
        return config

    @property
    def notes(self):
        notes = [_variance_note(self)]
        if self.n_failed or self.n_nonconverged:
            notes.append(self._failure_message)
        return notes

    def __str__(self):
        return f"{type(self).__name__} ({self.name}, {self.n_bootstrap} replicates): {self.description}"


class FractionalBootstrap(RowBootstrap):
    """Fractional weighted bootstrap (Xu et al. 2020): Exp(1) unit (cluster) weights passed as sampling weights,
    the weights re-estimated in every replicate; for weighters that accept ``sample_weight``."""

    name = "fwb"
    description = "fractional weighted bootstrap (Exp(1) unit weights as sampling weights), re-estimating the weights"


VCOV_ESTIMATORS = {cls.name: cls for cls in (StackedSandwich, FixedWeightsSandwich, RowBootstrap, FractionalBootstrap)}
VCOV_TYPES = {name: cls.description for name, cls in VCOV_ESTIMATORS.items()}


def _base_config(vcov):
    return {"description": vcov.description,
            "clusters": None if vcov.clusters is None else int(pd.Series(vcov.clusters).nunique())}


def _variance_note(vcov):
    return f"variance: {vcov.description}" + (" (cluster-robust)" if vcov.clusters is not None else "")


def _final_step(weighter):
    return weighter[-1] if isinstance(weighter, Pipeline) else weighter


def _m_parts(weighter, problem):
    """The fitted weighter's MParts on the problem's data, or a ValueError saying why there are none."""
    final = _final_step(weighter)
    X = weighter[:-1].transform(problem.X) if isinstance(weighter, Pipeline) else problem.X
    reason, parts = f"{type(final).__name__} provides no estimating equations", None
    _check_magnitudes(final, X)
    if hasattr(final, "_m_parts"):
        try:
            parts = final._m_parts(X, problem.treatment, problem.sample_weight)
        except NotImplementedError as exc:
            reason = str(exc)
    if parts is None:  # refused as such before any advice on convergence, which could not help
        raise ValueError(f"vcov='asympt' is not available: {reason.rstrip('.')}. Use vcov='bootstrap' or 'fwb' "
                         "(re-estimating the weights), or 'HC0' (weights treated as known).")
    if getattr(final, "converged_", True) is False:
        raise ValueError(f"vcov='asympt' needs solved estimating equations, but {type(final).__name__} did not "
                         "converge; fix the weights' convergence or use vcov='bootstrap'.")
    return parts


def _check_magnitudes(weighter, X):
    """Refuse M-estimation when a covariate's square leaves the float range (magnitudes beyond 1e±150): the weight
    model's derivatives hold such squares, and an underflow to 0 gives a finite but wrong standard error."""
    design = getattr(weighter, "design_", None)
    if design is None:
        return
    matrix, names = design.transform(X, drop_first=True)
    check_magnitudes(np.abs(matrix).max(axis=0) if matrix.shape[0] else np.zeros(len(names)), names)


def check_magnitudes(top, names):
    """The rule of :func:`_check_magnitudes` from each column's largest magnitude ``top`` (in memory from the design
    matrix, on dask from the per-block maxima)."""
    extreme = (top > 1e150) | ((top > 0) & (top < 1e-150))
    if extreme.any():
        raise ValueError(f"vcov='asympt' cannot be computed: covariate(s) {[n for n, e in zip(names, extreme) if e]} "
                         "have magnitudes beyond 1e150 or below 1e-150, whose squares in the weight model's "
                         "derivatives leave the floating-point range; rescale them, or use vcov='bootstrap' or 'fwb'.")
