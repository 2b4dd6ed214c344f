"""Time of the bootstrap that re-estimates propensity-score weights: 999 replicates at n = 10,000 on 2 cores.

Target (issue 4): under 10 s. Median of several runs of
``WeightedEffect(PropensityWeights("ATE"), vcov="bootstrap", n_bootstrap=999, n_jobs=2)`` on make_synthetic(10_000),
with the single-replicate cost broken down by stage.

Run: python benchmarks/bootstrap_speed.py  ->  benchmarks/results/bootstrap_speed.md
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402

from balance import PropensityWeights, WeightedEffect  # noqa: E402
from balance.datasets import make_synthetic  # noqa: E402


def run(data, n_jobs, reps=999):
    """Wall-clock seconds, CPU seconds of this process (meaningful for n_jobs=1 only) and the fit."""
    start, cpu = time.perf_counter(), time.process_time()
    fit = WeightedEffect(PropensityWeights(estimand="ATE"), vcov="bootstrap", n_bootstrap=reps, random_state=1,
                         n_jobs=n_jobs).fit(data.X, data.treatment, data.y)
    return time.perf_counter() - start, time.process_time() - cpu, fit


def stage_breakdown(data, reps=100):
    """Mean CPU milliseconds per replicate of each stage, single process (CPU time: robust to the machine's load)."""
    rng = np.random.default_rng(0)
    X, t, y = data.X, data.treatment.to_numpy(), data.y.to_numpy()
    n = len(y)
    stages = {"resample rows": 0.0, "fit weights": 0.0, "effect": 0.0}
    for _ in range(reps):
        t0 = time.process_time()
        idx = rng.integers(0, n, n)
        Xb, tb, yb = X.iloc[idx], t[idx], y[idx]
        t1 = time.process_time()
        w = PropensityWeights(estimand="ATE").fit(Xb, tb).weights_.to_numpy()
        t2 = time.process_time()
        np.average(yb[tb == 1], weights=w[tb == 1]) - np.average(yb[tb == 0], weights=w[tb == 0])
        t3 = time.process_time()
        stages["resample rows"] += t1 - t0
        stages["fit weights"] += t2 - t1
        stages["effect"] += t3 - t2
    return {k: 1000 * v / reps for k, v in stages.items()}


def main():
    data = make_synthetic(10_000, random_state=10_000)
    run(data, 2, reps=20)  # warm-up: worker processes, imports
    runs = {jobs: [run(data, jobs) for _ in range(3)] for jobs in (1, 2)}
    times = {jobs: [r[0] for r in values] for jobs, values in runs.items()}
    cpu_serial = statistics.median(r[1] for r in runs[1])
    fit = runs[2][0][2]
    breakdown = stage_breakdown(data)
    lines = [
        "# Bootstrap of PS weights: 999 replicates at n = 10,000 (make_synthetic, ATE, simple outcome model)",
        "",
        "| n_jobs | median time (s) | runs (s) |",
        "|---|---|---|",
    ]
    for jobs, values in times.items():
        lines.append(f"| {jobs} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    lines += ["", f"CPU time of the serial run: {cpu_serial:.2f} s ({1000 * cpu_serial / 999:.1f} ms per replicate); on two "
              f"otherwise idle cores the parallel run needs about half of it ({cpu_serial / 2:.1f} s) plus process start-up.",
              "", f"Bootstrap SE {fit.se_:.5f} (asympt SE for comparison: "
              f"{WeightedEffect(PropensityWeights(estimand='ATE')).fit(data.X, data.treatment, data.y).se_:.5f}); "
              f"failed replicates {fit.n_failed_}, non-converged {fit.n_nonconverged_}.", "",
              "Single-process CPU cost per replicate (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in breakdown.items()),
              "", "Machine:", machine_markdown(), ""]
    out = Path(__file__).resolve().parent / "results" / "bootstrap_speed.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
