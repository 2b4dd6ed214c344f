"""Speed of MSMEffect on a long follow-up: 50,000 units × 15 time points, logistic weights and the asympt SE.

A WeightIt user reported waiting three days for ``weightitMSM`` at this size. Data: ``balance.msm.simulate_msm``
(each time point's treatment model conditions on the whole history: all earlier covariates and treatments, up to
29 columns at the 15th time point; 240 logistic coefficients in all). Timed: ``MSMWeights().fit`` alone, then
``MSMEffect(MSMWeights(), "additive", vcov="asympt").fit`` (weights, outcome model, the sandwich stacking every
time point's equations with the outcome's, and the 2^15 potential outcomes with SEs) and the always-vs-never
contrast. Each figure is the median of ``--reps`` runs after one warm-up.

Run: ``python benchmarks/msm_speed.py [--n 50000] [--times 15] [--reps 3]``; writes benchmarks/results/msm_speed.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))
from _machine import write_report  # noqa: E402

from balance.msm import MSMEffect, MSMWeights, simulate_msm  # noqa: E402


def _median_time(func, reps):
    func()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--times", type=int, default=15)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    data = simulate_msm(args.n, args.times, random_state=0)
    load_before = os.getloadavg()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weights = _median_time(lambda: MSMWeights().fit(data.X_list, data.treatments), args.reps)
        effect = _median_time(lambda: MSMEffect(MSMWeights(), "additive", vcov="asympt").fit(
            data.X_list, data.treatments, data.y).contrast("always", "never"), args.reps)
        fit = MSMEffect(MSMWeights(), "additive").fit(data.X_list, data.treatments, data.y)
    contrast = fit.contrast("always", "never")
    truth = data.truth.iloc[-1] - data.truth.iloc[0]
    n_params = sum(len(X.columns) + 1 for X in data.X_list)
    lines = [
        f"# MSMEffect speed: {args.n:,} units × {args.times} time points",
        "",
        f"`python benchmarks/msm_speed.py --n {args.n} --times {args.times} --reps {args.reps}`; median of "
        f"{args.reps} runs after a warm-up. {n_params} logistic coefficients over the time points.",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| MSMWeights().fit (15 logistic fits) | {weights:.2f} |",
        f"| MSMEffect(additive, asympt).fit + contrast | {effect:.2f} |",
        "",
        f"Always vs never treated: estimate {contrast.estimate:.3f} (SE {contrast.std_err:.3f}), truth {truth:.3f}.",
        f"Load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}.",
    ]
    write_report(HERE / "results" / "msm_speed.md", lines)


if __name__ == "__main__":
    main()
