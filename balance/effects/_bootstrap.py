"""Bootstraps that re-estimate the weights in every replicate, run through joblib.

Each replicate draws its randomness from its own child of one ``numpy.random.SeedSequence``, so the replicates are
identical whatever ``n_jobs`` or joblib backend (e.g. ``joblib.parallel_backend("dask")`` on a dask cluster) runs them.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning


def replicate_draws(kind, rng, n, clusters):
    """Row indices (``kind="bootstrap"``) or unit weights (``kind="fwb"``) for one replicate.

    The ordinary bootstrap resamples rows (whole clusters when ``clusters`` is given); the fractional weighted
    bootstrap (Xu et al. 2020) draws Exp(1) weights per unit (per cluster), i.e. Dirichlet weights up to scale.
    """
    if clusters is None:
        return rng.integers(0, n, n) if kind == "bootstrap" else rng.exponential(1.0, n)
    codes, uniques = clusters
    if kind == "bootstrap":
        chosen = rng.integers(0, len(uniques), len(uniques))
        members = [np.flatnonzero(codes == c) for c in range(len(uniques))]
        return np.concatenate([members[c] for c in chosen])
    return rng.exponential(1.0, len(uniques))[codes]


def _run_chunk(problem, kind, seeds, clusters):
    rows, statuses, errors = [], [], []
    for seed in seeds:
        draw = replicate_draws(kind, np.random.default_rng(seed), problem.n_obs, clusters)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                values, converged = problem.replicate(kind, draw)
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

    ``problem.replicate(kind, draw)`` refits the weights and the outcome model on one replicate and returns the
    effect (log scale for ratios), mu1, mu0 and whether the weight solver converged. Raises a ValueError quoting
    the first failure when every replicate fails.
    """
    entropy = np.random.default_rng(random_state).integers(0, 2**63 - 1)
    seeds = np.random.SeedSequence(int(entropy)).spawn(n_bootstrap)
    if clusters is not None:
        clusters = pd.factorize(clusters)
    n_chunks = min(n_bootstrap, 50)
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
    for chunk_rows, chunk_statuses, chunk_errors in results:
        rows += chunk_rows
        statuses += chunk_statuses
        errors += chunk_errors
    counts = {s: statuses.count(s) for s in ("ok", "nonconverged", "failed")}
    if counts["failed"] == n_bootstrap:  # a systematic failure (e.g. a weighter without sampling weights for fwb)
        raise ValueError(f"every one of the {n_bootstrap} {kind} replicates failed; the first: {errors[0]}")
    return pd.DataFrame(np.vstack(rows), columns=problem.labels), counts
