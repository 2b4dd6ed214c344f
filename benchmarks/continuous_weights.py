"""Time every weighter that supports a continuous treatment, at n = 1e3, 1e4, 1e5.

Design: n units, d = 10 standard-normal covariates, treatment A = X b + N(0, 1) with b ~ N(0, 0.3^2) entries (fixed
seed). Every weighter fits the ATE (the only estimand of a continuous treatment) with its defaults otherwise. Each
figure is the median of ``--reps`` fits after a warm-up fit at n = 1,000 (imports, numba compilation), with one
BLAS thread (see benchmarks/results/multi_category_speed.md on BLAS threads on this shared 2-core machine). Beside
the wall time, the CPU time of the process (all its threads): on this machine, shared by several jobs, the wall
time of a fit that uses both cores is inflated by the load, its CPU time much less so.

EnergyBalance's time grows as n^2 (every product sums over all pairs): it is timed at n = 1e3 and 1e4, and with
``--energy-large`` once more at the largest n whose float32 matrix fits in 4 GB (memory_limit = 4096 MiB:
n = 32,768), with its peak traced memory. Weighters that do not support a continuous treatment on this branch are
listed as not timed (the lead re-runs after merging).

Run: ``python benchmarks/continuous_weights.py [--reps 3] [--energy-large]``; writes
benchmarks/results/continuous_weights.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
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
SEED = 20261206
SIZES = (1_000, 10_000, 100_000)
ENERGY_4GB = int(np.sqrt(4096 * 2**20 / 4))  # float32 entries of an n x n matrix in 4 GiB
# weighter name -> (constructor, largest n it is timed at)
METHODS = {
    "PropensityWeights": (lambda: balance.PropensityWeights(estimand="ATE"), 100_000),
    "CBPS": (lambda: balance.CBPS(estimand="ATE"), 100_000),
    "EntropyBalance": (lambda: balance.EntropyBalance(estimand="ATE"), 100_000),
    "StableWeights": (lambda: balance.StableWeights(estimand="ATE"), 100_000),
    "EnergyBalance": (lambda: balance.EnergyBalance(estimand="ATE"), 10_000),
}


def design(n, seed=SEED):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.standard_normal((n, N_FEATURES)), columns=[f"x{j}" for j in range(N_FEATURES)])
    b = np.random.default_rng(seed + 1).normal(0.0, 0.3, N_FEATURES)
    a = pd.Series(X.to_numpy() @ b + rng.standard_normal(n), index=X.index, name="dose")
    return X, a


def supports_continuous(name):
    return "continuous" in getattr(balance, name)._supported_treatment_types


def time_fit(make, X, a, reps):
    """(median, best, worst wall time, median CPU time, the last fit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extreme-weight or convergence notes are not what is timed here
        times, cpu, fit = [], [], None
        for _ in range(reps):
            start, start_cpu = time.perf_counter(), time.process_time()
            fit = make().fit(X, a)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return float(np.median(times)), float(min(times)), float(max(times)), float(np.median(cpu)), fit


def _status(fit):
    iters = f", {fit.solver_} {fit.n_iter_} iterations" if hasattr(fit, "n_iter_") and hasattr(fit, "solver_") else ""
    for attr in ("status_", "solver_status_"):
        if hasattr(fit, attr):
            return f"{getattr(fit, attr)}, converged {fit.converged_}{iters}"
    return f"converged {getattr(fit, 'converged_', '-')}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--energy-large", action="store_true",
                        help=f"also time EnergyBalance once at n = {ENERGY_4GB:,} (its float32 matrix in 4 GB)")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        rows, skipped, loads = _run(args)
    _write(args, rows, skipped, loads)


def _run(args):
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    rows, skipped = [], []
    for name, (make, cap) in METHODS.items():
        if not supports_continuous(name):
            skipped.append(name)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make().fit(*design(1_000, SEED + 7))  # warm-up
        for n in [s for s in SIZES if s <= cap]:
            t = time_fit(make, *design(n), args.reps)
            rows.append((name, n, args.reps, t, _status(t[4]), "-", f"{os.getloadavg()[0]:.1f}"))
            print(f"{name} n={n:,} (load {os.getloadavg()[0]:.1f}): {t[0]:.3f}s (CPU {t[3]:.3f}s) {_status(t[4])}",
                  flush=True)
    if args.energy_large and supports_continuous("EnergyBalance"):
        tracemalloc.start()
        t = time_fit(lambda: balance.EnergyBalance(estimand="ATE", memory_limit=4096), *design(ENERGY_4GB), 1)
        peak = tracemalloc.get_traced_memory()[1] / 2**30
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        print(f"peak resident memory of the process so far: {rss:.2f} GiB", flush=True)
        rows.append(("EnergyBalance (memory_limit=4096)", ENERGY_4GB, 1, t, _status(t[4]), f"{peak:.2f} GiB",
                     f"{os.getloadavg()[0]:.1f}"))
        print(f"EnergyBalance n={ENERGY_4GB:,}: {t[0]:.1f}s (CPU {t[3]:.1f}s), peak {peak:.2f} GiB", flush=True)
        rows[-1] = (*rows[-1][:5], f"{peak:.2f} GiB allocated, {rss:.2f} GiB resident", rows[-1][6])
    load_after = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return rows, skipped, (load_before, load_after)


def _write(args, rows, skipped, loads):
    load_before, load_after = loads
    lines = [
        "# Continuous-treatment weighting: speed", "",
        f"Script: `benchmarks/continuous_weights.py` (n units, d = {N_FEATURES} standard-normal covariates, treatment "
        "A = X b + N(0, 1); ATE; each weighter's defaults otherwise). Wall times in seconds: median of the fits "
        "(best / worst in brackets) after a warm-up fit at n = 1,000, one BLAS thread; CPU time: the median of the "
        "process's CPU time over the fits (all threads; numba's kernels use both cores).", "",
        "## Machine", "", machine_markdown(),
        f"- load average (1, 5, 15 min) before the runs: {load_before}; after: {load_after} "
        "(2 cores shared with other jobs: absolute times are inflated when the load is above 2)",
        f"- causal-balance {balance.__version__}", "",
        "## Times", "",
        "| method | n | fits | wall time (s) | CPU time (s) | solver status | peak traced memory | load (1 min) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, n, reps, t, status, peak, load in rows:
        lines.append(f"| {name} | {n:,} | {reps} | {t[0]:.3f} ({t[1]:.3f} / {t[2]:.3f}) | {t[3]:.3f} | {status} | {peak} "
                     f"| {load} |")
    lines += [
        "",
        f"EnergyBalance is timed up to n = 10,000 with its defaults (memory_limit 1024 MiB: the float32 matrix of "
        f"the continuous problem, 4 n² bytes, is stored up to n = 16,384 and recomputed in every product above). "
        f"The largest n whose matrix fits in 4 GB is {ENERGY_4GB:,} (memory_limit=4096)"
        + ("; its row above is one fit." if args.energy_large else
           "; not timed in this run (pass --energy-large: about 10x the n = 10,000 time)."),
    ]
    if skipped:
        lines.append(f"Not supporting a continuous treatment on this branch when this ran (not timed): "
                     f"{', '.join(skipped)}.")
    out = HERE / "results" / "continuous_weights.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
