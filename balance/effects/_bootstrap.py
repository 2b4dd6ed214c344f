"""Bootstraps that re-estimate the weights in every replicate, run through joblib.

Each replicate draws its randomness from its own child of one ``numpy.random.SeedSequence`` (the resampling draw, then
the seed of a randomised weighter), so the replicates are identical whatever ``n_jobs`` or joblib backend (e.g.
``joblib.parallel_backend("dask")`` on a dask cluster) runs them, and whatever the weighter's own ``random_state``.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from .._threads import blas_controller


def cluster_layout(labels):
    """Cluster membership laid out once for O(n) cluster draws.

    Returns ``(codes, order, starts, sizes)``: the cluster code of each row, the rows sorted by cluster (stable, so
    each cluster's rows stay in row order), where each cluster's rows start in ``order`` and how many it has.
    """
    codes = pd.factorize(labels)[0]
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return codes, np.argsort(codes, kind="stable"), starts, sizes


def replicate_draws(kind, rng, n, clusters):
    """Row indices (``kind="bootstrap"``) or unit weights (``kind="fwb"``) for one replicate.

    The ordinary bootstrap resamples rows (whole clusters when ``clusters``, a :func:`cluster_layout`, is given);
    the fractional weighted bootstrap (Xu et al. 2020) draws Exp(1) weights per unit (per cluster), i.e. Dirichlet
    weights up to scale. A cluster draw costs O(n): the chosen clusters' blocks of the sorted rows, concatenated.
    """
    if clusters is None:
        return rng.integers(0, n, n) if kind == "bootstrap" else rng.exponential(1.0, n)
    codes, order, starts, sizes = clusters
    if kind == "bootstrap":
        chosen = rng.integers(0, len(sizes), len(sizes))
        lengths = sizes[chosen]
        # position in ``order`` of every drawn row: each chosen block's start, then 0, 1, ... within the block
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return order[np.repeat(starts[chosen], lengths) + offsets]
    return rng.exponential(1.0, len(sizes))[codes]


def replicate_seed(rng):
    """The seed of a replicate's randomised weighter (its ``random_state``), drawn after the resampling draw so
    that the draws are those of a deterministic weighter (as scikit-learn's ensembles seed their members)."""
    return int(rng.integers(np.iinfo(np.int32).max))


def _run_chunk(problem, kind, seeds, clusters):
    rows, statuses, errors = [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        draw = replicate_draws(kind, rng, problem.n_obs, clusters)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                values, converged = problem.replicate(kind, draw, replicate_seed(rng))
                status = "ok" if converged else "nonconverged"
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                values, status = np.full(len(problem.labels), np.nan), "failed"
                errors.append(f"{type(exc).__name__}: {exc}")
        if status == "ok" and any(issubclass(w.category, ConvergenceWarning) for w in caught):
            status = "nonconverged"
        rows.append(values)
        statuses.append(status)
    return rows, statuses, errors


def run_bootstrap(problem, kind, n_bootstrap, random_state, clusters=None, n_jobs=None, verbose=0):
    """Run ``n_bootstrap`` replicates of ``problem`` and return (draws DataFrame, status counts).

    ``problem.replicate(kind, draw, seed)`` refits the weights (``seed`` seeding every ``random_state`` of the
    weighter, so that randomised weighters are reproducible too) and the outcome model on one replicate and returns
    the effect (log scale for ratios), mu1, mu0 and whether the weight solver converged. Raises a ValueError quoting
    the first failure when every replicate fails.
    """
    entropy = np.random.default_rng(random_state).integers(0, 2**63 - 1)
    seeds = np.random.SeedSequence(int(entropy)).spawn(n_bootstrap)
    if clusters is not None:
        clusters = cluster_layout(clusters)
    # each chunk sends the problem (the data) to a worker, which costs tens of milliseconds at n = 1e5: a few chunks
    # per worker balance the load; a progress bar gets 50 steps
    n_chunks = min(n_bootstrap, 50 if verbose else 4 * effective_n_jobs(n_jobs))
    chunks = [list(c) for c in np.array_split(np.array(seeds, dtype=object), n_chunks)]
    tasks = (delayed(_run_chunk)(problem, kind, chunk, clusters) for chunk in chunks)
    results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    if verbose and sys.stderr.isatty():
        try:
            from tqdm.auto import tqdm

            results = tqdm(results, total=n_chunks, desc=f"{kind} ({n_bootstrap} replicates)", unit="chunk")
        except ImportError:
            pass
    rows, statuses, errors = [], [], []
    # one BLAS thread for replicates run here (joblib's workers limit their own): the replicates' products are
    # small, and BLAS threads contending for the cores made a bootstrap of an additive outcome model at n = 3000
    # 7-25x slower on a busy machine (a sensitivity refit 2x)
    with blas_controller().limit(limits=1, user_api="blas"):
        for chunk_rows, chunk_statuses, chunk_errors in results:
            rows += chunk_rows
            statuses += chunk_statuses
            errors += chunk_errors
    counts = {s: statuses.count(s) for s in ("ok", "nonconverged", "failed")}
    if counts["failed"] == n_bootstrap:  # a systematic failure (e.g. a weighter without sampling weights for fwb)
        raise ValueError(f"every one of the {n_bootstrap} {kind} replicates failed; the first: {errors[0]}")
    return pd.DataFrame(np.vstack(rows), columns=problem.labels), counts


# a warm start needs fewer steps than the cold start of a plain refit: with a max_iter this small a plain refit might
# stop unconverged where the warm start does not, so such weighters are refitted in full
_FAST_MIN_ITER = 25


class PropensityReplicates:
    """Fast refits of a fitted default :class:`~balance.PropensityWeights` (binary logistic model) in row-bootstrap
    replicates: the weights of refitting a clone on the resampled rows, to the solver's tolerance, for a fraction
    of the cost.

    A resample is its units' counts: the logistic likelihood of the resampled rows is that of the distinct drawn
    units with frequency weights ``count × sample_weight``. Each replicate is fitted on those units of the design
    matrix validated and standardised once (no DataFrame copied, re-validated or re-encoded per replicate), from
    the full-sample coefficients (:class:`~balance.weights._logistic.LogisticReplicates`), to the weighter's
    ``tol``; ``coef_table_`` and the weight diagnostics of a fit are skipped. Each unit's weight is that of one of
    its copies.

    :meth:`__call__` returns None, and the caller must refit in full, whenever the fast path might not reproduce a
    refit: a resample whose design may be rank-deficient (e.g. a category not drawn: a refit drops or refuses that
    column), iterations that do not contract, or fitted probabilities within 1e-8 of 0 or 1 (a refit tests those
    for separation). :meth:`build` returns None for weighters it does not cover (another model or method, a
    pipeline, ``trim``, the ATOS, missing-value indicators, a non-binary treatment, ``max_iter`` < 25, a
    full-sample fit that did not converge, dask input).
    """

    def __init__(self, weighter, data):
        from ..weights._logistic import LogisticReplicates

        self.model = LogisticReplicates(data.X, data.a, data.sample_weight,
                                        np.concatenate([[weighter.intercept_], weighter.coef_]))
        # what a replicate needs besides the model (its weight formula is the unfitted weighter's): small to send to
        # joblib's workers
        self.weighter, self.data = clone(weighter), replace(data, X=None, index=None)

    @classmethod
    def build(cls, weighter, X, treatment, sample_weight=None):
        """The replicates of ``weighter`` (fitted on X, treatment, sample_weight), or None if not covered."""
        from .._dask import any_dask
        from ..weights._propensity import PropensityWeights

        covered = (type(weighter) is PropensityWeights and weighter.model is None and weighter.trim is None
                   and getattr(weighter, "treatment_type_", None) == "binary" and weighter._estimand() != "ATOS"
                   and weighter.max_iter >= _FAST_MIN_ITER and weighter.converged_
                   and not any(f is not None for f in weighter.design_.fills))
        if not covered or any_dask(X, treatment, sample_weight):
            return None
        return cls(weighter, weighter._validate_data(X, treatment, sample_weight, reset=False))

    def __call__(self, counts, n_rows=None):
        """``(rows, weights, ps)`` of a resample with ``counts[i]`` copies of unit i: the drawn units, the weight of
        one copy of each and its (clipped) propensity score; None when the replicate must be refitted in full.

        ``counts`` may be fractional (the fractional weighted bootstrap's unit weights, ``n_rows`` the number of
        units): the weights are then those of a unit with sample weight 1 × its own."""
        from ..weights._logistic import SYMPTOM_PROB

        est, data = self.weighter, self.data
        rows = np.flatnonzero(counts)
        sw = data.sample_weight[rows]
        fit = self.model.fit(rows, counts[rows] * sw, n_draws=counts.sum() if n_rows is None else n_rows,
                             tol=est.tol, max_iter=est.max_iter)
        if fit is None or np.any(np.minimum(fit[1], 1.0 - fit[1]) < SYMPTOM_PROB):
            return None
        replicate = replace(data, a=data.a[rows], sample_weight=sw)
        ps, weights, _ = est._weights(fit[1], replicate)
        return rows, weights, ps
