"""Time every weighter that supports a multi-category treatment: a 5-level treatment beside a binary one.

Design (one for both treatment types): n units, d = 10 standard-normal covariates; the treatment is drawn from a
multinomial logit with level k's linear predictor X @ b_k (b_0 = 0, the other b_k with entries N(0, 0.3^2)), with
K = 5 levels for the multi-category run and K = 2 for the binary run, from the same covariates. Every weighter fits
the ATE with its defaults otherwise. Each figure is the median of several fits after one warm-up fit, binary and
multi-category timed in the same process one after the other, so their ratio is robust to the shared machine's load
(recorded before and after). Methods too slow at n = 1e5 (EnergyBalance: time O(n^2) over all pairwise distances) are timed at a smaller
n, as the table says.

Run: ``python benchmarks/multi_category_speed.py [--n 100000] [--reps 3]``; writes
benchmarks/results/multi_category_speed.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
# keep this folder off sys.path: no script here may shadow an installed package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))
from _machine import machine_markdown  # noqa: E402

import balance  # noqa: E402

N_FEATURES = 10
N_LEVELS = 5
SEED = 20261206
# weighter name -> (constructor, largest n it is timed at: None = the run's n)
METHODS = {
    "PropensityWeights": (lambda: balance.PropensityWeights(estimand="ATE"), None),
    "EntropyBalance": (lambda: balance.EntropyBalance(estimand="ATE"), None),
    "InverseProbabilityTilting": (lambda: balance.InverseProbabilityTilting(estimand="ATE"), None),
    "StableWeights": (lambda: balance.StableWeights(estimand="ATE"), None),
    "CBPS": (lambda: balance.CBPS(estimand="ATE"), None),
    "EnergyBalance": (lambda: balance.EnergyBalance(estimand="ATE"), 10_000),
}


# measured apart from the timed runs (cProfile and a direct comparison, 2026-12-06, same machine, load ~10)
NOTES = [
    "", "## Notes", "",
    "- BLAS threads: on this 2-core machine shared by ~8 jobs, OpenBLAS's threaded matrix products spin-wait for "
    "a core: the multinomial information (balance/weights/_multinomial.py, (n x 44)' (n x 44) products at K = 5, "
    "q = 11) took 3.4 s a call at n = 20,000 with the default threads and 0.2 s with one (2026-12-06, load ~7). "
    "The fits are therefore timed with one BLAS thread (`--blas-threads`), which is also how a loaded server "
    "should run them (threadpoolctl, or OPENBLAS_NUM_THREADS=1).",
    "- An earlier run of this script (09:02 UTC, load ~9, default BLAS threads, before the multinomial information "
    "was rewritten as matrix products in 43f9da8) gave PropensityWeights 0.70 s binary / 16.3 s for 5 levels and "
    "CBPS 0.36 s / 23.2 s: the four-index einsum it used then took 2.45 s a call at n = 1e5.",
    "- EntropyBalance, InverseProbabilityTilting and StableWeights do one dual or one QP block per reweighted "
    "level, each on that level's units.",
]


def design(n, n_levels, seed=SEED):
    """Covariates (shared by both treatment types for a given n) and a treatment with ``n_levels`` levels."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.standard_normal((n, N_FEATURES)), columns=[f"x{j}" for j in range(N_FEATURES)])
    coefs = np.random.default_rng(seed + n_levels).normal(0.0, 0.3, (N_FEATURES, n_levels))
    coefs[:, 0] = 0.0
    eta = X.to_numpy() @ coefs
    p = np.exp(eta - eta.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    codes = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    labels = np.array([f"level{k}" for k in range(n_levels)])
    treatment = pd.Series(codes if n_levels == 2 else labels[codes], index=X.index, name="treatment")
    return X, treatment


def supports_multi(name):
    cls = getattr(balance, name)
    return "multi-category" in cls._supported_treatment_types


def time_fit(make, X, t, reps, warm_up):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extreme-weight or convergence notes are not what is timed here
        make().fit(*warm_up)  # warm-up on a small sample: imports, compilation, first-call overheads
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            make().fit(X, t)
            times.append(time.perf_counter() - start)
    return float(np.median(times)), float(min(times)), float(max(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads during the fits (default 1: see the notes on a loaded 2-core machine)")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        rows, skipped, loads = _run(args)
    _write(args, rows, skipped, loads)


def _run(args):
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    rows, skipped = [], []
    for name, (make, cap) in METHODS.items():
        if not supports_multi(name):
            skipped.append(name)
            continue
        n = args.n if cap is None else min(cap, args.n)
        binary, multi = design(n, 2), design(n, N_LEVELS)
        tb = time_fit(make, *binary, args.reps, design(1_000, 2))
        tm = time_fit(make, *multi, args.reps, design(1_000, N_LEVELS))
        rows.append((name, n, tb, tm))
        print(f"{name} n={n} (load {os.getloadavg()[0]:.1f}): binary {tb[0]:.3f}s, {N_LEVELS} levels {tm[0]:.3f}s",
              flush=True)
    load_after = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return rows, skipped, (load_before, load_after)


def _write(args, rows, skipped, loads):
    load_before, load_after = loads
    lines = [
        "# Multi-category weighting: speed", "",
        f"Script: `benchmarks/multi_category_speed.py` (n units, d = {N_FEATURES} standard-normal covariates, "
        f"treatment from a multinomial logit with {N_LEVELS} levels, or 2 for the binary column, on the same "
        "covariates; ATE; each weighter's defaults otherwise). Wall times in seconds: median of "
        f"{args.reps} fits after a warm-up fit at n = 1,000 (best / worst in brackets); binary and multi-category "
        "timed one after the other in one process, so the ratio is the robust figure on this shared machine.", "",
        "## Machine", "", machine_markdown(),
        f"- load average (1, 5, 15 min) before the runs: {load_before}; after: {load_after} "
        f"(2 cores shared with other jobs: absolute times are inflated when the load is above 2)",
        f"- causal-balance {balance.__version__}; BLAS threads during the fits: {args.blas_threads}", "",
        "## Times", "",
        f"| method | n | binary (s) | {N_LEVELS} levels (s) | ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, n, tb, tm in rows:
        lines.append(f"| {name} | {n:,} | {tb[0]:.3f} ({tb[1]:.3f} / {tb[2]:.3f}) | "
                     f"{tm[0]:.3f} ({tm[1]:.3f} / {tm[2]:.3f}) | {tm[0] / tb[0]:.1f}x |")
    lines.append("")
    capped = [name for name, n, _, _ in rows if n < args.n]
    if capped:
        lines.append(f"Timed at a smaller n: {', '.join(capped)} (EnergyBalance's time grows as n^2: it sums over all "
                     "pairwise distances, in tiles with O(n) memory; the binary fit at n = 1e5 is timed in "
                     "benchmarks/results/energy_balance.md).")
    if skipped:
        lines.append(f"Not yet supporting multi-category treatments when this ran (not timed): {', '.join(skipped)}.")
    lines += NOTES
    out = HERE / "results" / "multi_category_speed.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
