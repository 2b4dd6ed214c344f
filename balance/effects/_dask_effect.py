"""WeightedEffect on dask input: the outcome model and its sandwich variance from block sums (issue 18).

The in-memory equations (:mod:`balance.effects._outcome`, the weighter's MParts) are evaluated on every block at
estimates from all the data (their ``at=`` argument; the weighter's ``_block_m_parts``) and their sums are added
by a tree reduction (:mod:`balance._blocks`); no equation is written twice. Passes over the data, after the
weighter's own:

1. checks and sums: the outcome (finite; 0/1 for a binomial family or a ratio scale; its magnitude), the weights'
   concentration per group (ESS, largest share), missing cluster labels;
2. the outcome model, by Newton's method on the outcome equations themselves: each pass gives Σψ_o and Σ∂ψ_o/∂θ_o
   at the current θ_o; the equations are linear for "simple" and gaussian regressions, so two passes (the second a
   refinement) solve them; a logistic outcome model takes a few more;
3. the sandwich: the bread Σ∂ψ/∂θ and the meat Σψψᵀ of the stacked equations (per-cluster sums of ψ with
   ``cluster``, added label by label across partitions), for "asympt" with the weight model's equations stacked,
   for "HC0" the outcome's alone.

The standardisation of the covariates in the regression outcome models uses the centre and SD that the weighter's
fit already reduced (the same quantities as in memory). Pipelines are refused.

"fwb" refits the weights and the outcome model in every replicate with the sampling weights times Exp(1) draws
made inside each partition from the replicate's seed (:class:`DaskEffectProblem`): a replicate costs as many passes
as the fit itself, and no data move. The row bootstrap ("bootstrap") is refused (resampling rows moves the data).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .._blocks import DaskBlocks
from .._treatment import as_1d
from .._validation import well_conditioned
from ..diagnostics._weights import concentration_from_sums, concentration_sums
from ._contrasts import Contrasts
from ._outcome import OutcomeEquations, outcome_equations
from ._sandwich import cov_from_sums, stacked_cov_from_sums, stacked_sums
from ._vcov import VCOV_ESTIMATORS, check_magnitudes

_MAX_NEWTON = 50


@dataclass(frozen=True)
class _Evaluator:
    """What every block needs (small and picklable: it travels with the tasks)."""

    coder: object
    weighter: object
    model: str
    estimand: str
    family: str
    y_unit: float = 1.0
    constants: tuple | None = None
    conditional: bool = False

    def arrays(self, X, treatment, sample_weight, y, cluster, weights):
        matrix, a, sw = self.coder.arrays(X, treatment, sample_weight)
        values = np.asarray(as_1d(y, "y")[0])
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError("y must be numeric.") from exc
        clusters = None if cluster is None else as_1d(cluster, "cluster")[0]
        return matrix, a, sw, values / self.y_unit, clusters, np.asarray(weights, dtype=np.float64)

    def checks(self, *block):
        """Pass 1: outcome checks and the weights' concentration sums."""
        _, a, _, y, clusters, w = self.arrays(*block)
        finite = np.isfinite(y)
        return {"n": len(y), "n_nonfinite": int((~finite).sum()),
                "max_y": np.abs(y[finite]).max(initial=0.0), "min_y": y[finite].min(initial=np.inf),
                "max_value": y[finite].max(initial=-np.inf),
                "n_nonbinary": int(np.sum((y != 0) & (y != 1))),
                "n_na_cluster": 0 if clusters is None else int(pd.isna(clusters).sum()),
                **concentration_sums(w, a)}

    def equations(self, matrix, a, sw, y, w, params):
        return outcome_equations(self.model, y, a, w, sw, matrix if self.model != "simple" else None,
                                 estimand=self.estimand, family=self.family,
                                 at=params if self.model == "simple" else {"constants": self.constants,
                                                                           "params": params})

    def newton_sums(self, *block, params):
        """Pass 2: Σψ_o and Σ∂ψ_o/∂θ_o at ``params``."""
        matrix, a, sw, y, _, w = self.arrays(*block)
        eq = self.equations(matrix, a, sw, y, w, params)
        return {"psi": eq.psi.sum(axis=0), "jacobian": eq.jacobian}

    def sandwich_sums(self, *block, params, stacked):
        """Pass 3: the stacked (or the outcome's own) bread and meat sums."""
        matrix, a, sw, y, clusters, w = self.arrays(*block)
        eq = self.equations(matrix, a, sw, y, w, params)
        if self.conditional:
            eq = eq.conditional_on_covariates()
        parts = self.weighter._block_m_parts(matrix, a, sw) if stacked else None
        sums, kind = stacked_sums(eq, clusters, parts)
        return {**sums, "set_kind": frozenset([kind])}


def fit_dask(effect, X, treatment, y, sample_weight, cluster):
    """:meth:`WeightedEffect.fit <balance.WeightedEffect.fit>` on dask collections (see the module notes)."""
    from ._weighted_effect import (_EXTREME_ADVICE, _fit_weighter_reporting, _warn_single_unit_groups,
                                   outcome_unit_of)

    if effect.vcov == "bootstrap":
        raise ValueError("vcov='bootstrap' is not available for dask input (resampling rows moves the data); use "
                         "vcov='fwb' (Exp(1) weights drawn where the data are), 'asympt' or 'HC0'.")
    if effect.vcov == "fwb" and cluster is not None:
        raise ValueError("vcov='fwb' with cluster= is not available for dask input (one draw per cluster across "
                         "partitions); use vcov='asympt' or 'HC0' with cluster=.")
    if isinstance(effect.weighter, Pipeline):
        raise TypeError("a Pipeline weighter does not accept dask input; pass the weighting estimator itself.")
    weighter, weights = _fit_weighter_reporting(effect.weighter, X, treatment, sample_weight)
    data = getattr(weighter, "_dask_data", None)
    if data is None or not hasattr(weighter, "_block_m_parts"):
        raise TypeError(f"{type(weighter).__name__} has no dask path for WeightedEffect.")
    blocks = DaskBlocks(X=X, treatment=treatment, sample_weight=sample_weight, y=y, cluster=cluster,
                        weights=weights)
    estimand = str(weighter.estimand).upper()
    base = _Evaluator(data.coder, weighter._block_state(), effect.outcome_model, estimand, "gaussian")
    checks = blocks.reduce(base.checks)
    family = _check_outcome(effect, checks)
    y_unit = outcome_unit_of(checks["max_y"])
    constants = None
    if effect.outcome_model != "simple":
        constants = (data.stats["sum_x"] / data.n, data.standardizer().scale)
    evaluator = _Evaluator(data.coder, base.weighter, effect.outcome_model, estimand, family, y_unit, constants,
                           effect.condition_on_covariates)
    t = data.treatment
    extreme = concentration_from_sums(checks, who="WeightedEffect", advice=_EXTREME_ADVICE[effect.vcov],
                                      stacklevel=4)
    _warn_single_unit_groups(checks["n_pos"], t, stacklevel=4)
    params, template = _solve_outcome(blocks, evaluator, effect.outcome_model)
    contrasts = Contrasts(t.levels, effect.scale, estimand)
    eq = OutcomeEquations(params=params, names=template.names, psi=None, jacobian=None, dpsi_dw=None,
                          mu_map=template.mu_map, averaging=template.averaging)
    values = contrasts(eq.mu)[0]
    problem = DaskEffectProblem(effect.weighter, X, treatment, y, sample_weight, evaluator, contrasts)
    effect.weighter_ = weighter
    if effect.vcov == "fwb":
        vcov = VCOV_ESTIMATORS["fwb"].from_effect(effect, problem, eq, None)
    else:
        vcov = _sandwich(effect, blocks, evaluator, weighter, data, params, problem, eq, cluster)
    effect._problem, effect._y_unit = problem, y_unit
    for name in ("subgroup_effects_", "subgroup_differences_", "subgroup_test_", "subgroup_fits_"):
        effect.__dict__.pop(name, None)
    effect._store_result(vcov, vcov.cov, values, contrasts, extreme, y_unit, checks["n"], extreme.ess, weighter, t)
    return effect


def _sandwich(effect, blocks, evaluator, weighter, data, params, problem, eq, cluster):
    """The "asympt" or "HC0" covariance estimator with its outcome covariance from one pass of block sums."""
    stacked = effect.vcov == "asympt"
    if stacked and getattr(weighter, "converged_", True) is False:
        raise ValueError(f"vcov='asympt' needs solved estimating equations, but {type(weighter).__name__} did not "
                         "converge; fix the weights' convergence or use vcov='HC0'.")
    if stacked:
        check_magnitudes(data.stats["max_abs"], data.names)  # as in memory: squares that leave the float range
    sums = blocks.reduce(lambda *block: evaluator.sandwich_sums(*block, params=params, stacked=stacked))
    kind = "numerical" if "numerical" in sums.pop("set_kind") else "analytic"
    k = len(weighter._block_m_parts(np.zeros((0, len(data.names))), np.zeros(0, np.int8), np.zeros(0)).params)
    outcome_cov = stacked_cov_from_sums(sums, k) if stacked else cov_from_sums(sums)
    clusters = None if cluster is None else sums["cluster_sums"].index  # the labels: config counts them
    # the weight model's equations were stacked above (asympt), block by block
    return VCOV_ESTIMATORS[effect.vcov].from_effect(effect, problem, eq, clusters).use_outcome_cov(outcome_cov, kind)


class DaskEffectProblem:
    """The fitted problem of a dask effect, as the bootstraps see it (:func:`~balance.effects._bootstrap.run_bootstrap`).

    ``vcov="fwb"``: every replicate refits the weights and the outcome model with sampling weights times Exp(1)
    draws made inside each partition from the replicate's seed and the partition's number
    (``SeedSequence(seed, spawn_key=(number,))``), so no draw crosses the network and the replicates are
    reproducible. ``n_obs`` is 0: the bootstrap driver draws nothing in memory.
    """

    n_obs = 0

    def __init__(self, weighter, X, treatment, y, sample_weight, evaluator, contrasts):
        self.weighter, self.X, self.treatment, self.y = weighter, X, treatment, y
        self.sample_weight, self.evaluator, self.contrasts = sample_weight, evaluator, contrasts
        self.model = evaluator.model

    @property
    def labels(self):
        return self.contrasts.labels

    def draws(self, seed):
        """The replicate's sampling weights: ``sample_weight`` times Exp(1) draws, lazy, with X's partitions."""
        blocks = DaskBlocks(X=self.X, sample_weight=self.sample_weight)
        return blocks.per_row(_exp_draws, seed, name="sample_weight", numbered=True)

    def replicate(self, kind, draw, seed=None):
        from ._weighted_effect import _fit_weighter

        sample_weight = self.draws(seed)
        weighter, weights = _fit_weighter(self.weighter, self.X, self.treatment, sample_weight, seed)
        blocks = DaskBlocks(X=self.X, treatment=self.treatment, sample_weight=sample_weight, y=self.y, cluster=None,
                            weights=weights)
        evaluator = replace(self.evaluator, coder=weighter._dask_data.coder, weighter=weighter._block_state())
        params, template = _solve_outcome(blocks, evaluator, self.model)
        values, _ = self.contrasts(template.mu_map @ params)
        return values, bool(getattr(weighter, "converged_", True))


def _exp_draws(number, X, sample_weight, seed):
    """Exp(1) draws for the rows of partition ``number`` (from the replicate's seed), times the sampling weights."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(number,)))
    draws = rng.exponential(1.0, len(X))
    return draws if sample_weight is None else draws * np.asarray(as_1d(sample_weight, "sample_weight")[0], float)


def _check_outcome(effect, checks):
    """The in-memory checks of y, from the first pass's counts; returns the outcome family."""
    if checks["n_nonfinite"]:
        raise ValueError(f"y has {checks['n_nonfinite']} missing or infinite values.")
    if checks["n_na_cluster"]:
        raise ValueError("cluster has missing values.")
    binary = checks["n_nonbinary"] == 0
    if effect.scale != "difference" and not binary:
        raise ValueError(f"scale={effect.scale!r} needs a binary (0/1) outcome; y has other values.")
    if effect.family == "binomial" and not binary:
        raise ValueError("family='binomial' needs a binary (0/1) outcome.")
    family = effect.family if effect.family != "auto" else ("binomial" if binary else "gaussian")
    if family == "binomial" and effect.outcome_model != "simple" and checks["min_y"] == checks["max_value"]:
        raise ValueError(f"y is {checks['min_y']:g} for every unit: a logistic outcome model (family='binomial', the "
                         "choice for a 0/1 outcome) cannot be fitted to a constant; use outcome_model='simple' (the "
                         "effect is then 0), or check that y is the intended column.")
    return family


def _solve_outcome(blocks, evaluator, model):
    """The outcome parameters by Newton's method on the block sums of the outcome equations (module notes).

    Returns them and the equations' structure (names, ``mu_map``) from an empty block."""
    template = _template(evaluator)
    params = np.zeros(len(template.names))
    n_gamma = int(np.sum([name.startswith("gamma") for name in template.names]))
    for it in range(_MAX_NEWTON):
        sums = blocks.reduce(lambda *block: evaluator.newton_sums(*block, params=params))
        if it == 0 and n_gamma:
            _check_outcome_rank(-sums["jacobian"][:n_gamma, :n_gamma])
        try:
            step = np.linalg.solve(sums["jacobian"], sums["psi"])
        except np.linalg.LinAlgError as exc:
            raise ValueError("the outcome model's equations are singular (a treatment group with no weight, or a "
                             "covariate level absent from one treatment group?); use a simpler outcome model.") from exc
        params = params - step
        if it >= 1 and np.all(np.abs(step) <= 1e-12 * np.maximum(1.0, np.abs(params))):
            return params, template
    raise ValueError(f"the {evaluator.family} outcome model did not converge in {_MAX_NEWTON} Newton steps on dask "
                     "input (separation?); use a simpler outcome model.")


def _template(evaluator):
    """The outcome equations on an empty block: their names and maps (no data needed)."""
    k = 0 if evaluator.constants is None else len(evaluator.constants[0])
    at = np.zeros(2) if evaluator.model == "simple" else {"constants": evaluator.constants,
                                                          "params": np.zeros(2 * k + 8)}  # longer than θ_o
    empty = np.zeros(0)
    return outcome_equations(evaluator.model, empty, np.zeros(0, np.int8), empty, empty, np.zeros((0, k)),
                             estimand=evaluator.estimand, family=evaluator.family, at=at)


def _check_outcome_rank(gram):
    """The in-memory rank check of the outcome design, on Σ ω D Dᵀ (its smallest eigenvalue against the largest,
    as :func:`balance._validation.check_full_rank`)."""
    eig = np.linalg.eigvalsh(gram)
    if not well_conditioned(eig):
        rank = int(np.sum(eig > eig[-1] * 1e-12))
        raise ValueError(
            f"the outcome model's design is rank deficient ({rank} of {len(eig)} columns estimable), e.g. a "
            "covariate level absent from one treatment group; use a simpler outcome model."
        )
