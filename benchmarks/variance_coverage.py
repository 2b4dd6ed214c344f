"""Coverage of 95% confidence intervals of WeightedEffect on make_synthetic, asympt vs HC0, ATE and ATT.

Known truth: in make_synthetic the individual effect is 1 + 0.5·x1 with x1 ~ N(0, 1), so the population ATE is 1 and
the population ATT is 1 + 0.5·E[x1 | treated] = 1 + 0.5·E[e(X)·x1] / E[e(X)], computed here from 4 million draws
(Monte Carlo error ~1e-4, negligible against SEs of ~0.1). Coverage is also reported against the sample effects
(mean of the individual effects over all units / the treated), for which the population SEs are conservative.

A coverage estimate from R replications has standard error sqrt(0.95·0.05/R) = 0.69 points at R = 1000.

Run: python benchmarks/variance_coverage.py [R]  ->  benchmarks/results/variance_coverage.md
"""

import sys
import time
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402

from balance import PropensityWeights, WeightedEffect  # noqa: E402
from balance.datasets import make_synthetic  # noqa: E402

Z = 1.959963984540054


def population_att(draws=4_000_000, seed=0):
    big = make_synthetic(draws, random_state=seed)
    return 1.0 + 0.5 * np.sum(big.propensity * big.X["x1"]) / np.sum(big.propensity)


def one_replication(n, seed):
    data = make_synthetic(n, random_state=seed)
    out = {}
    for estimand in ("ATE", "ATT"):
        for vcov in ("asympt", "HC0"):
            fit = WeightedEffect(PropensityWeights(estimand=estimand), "simple", vcov).fit(data.X, data.treatment, data.y)
            out[(estimand, vcov)] = (fit.estimate_, fit.se_)
    return out, data.true_ate, data.true_att


def main(reps=1000):
    truth = {"ATE": 1.0, "ATT": population_att()}
    lines = [
        "# Coverage of 95% intervals: WeightedEffect(PropensityWeights(estimand), 'simple', vcov) on make_synthetic",
        "",
        f"{reps} replications per n; population ATE = 1, population ATT = {truth['ATT']:.5f} (4e6 draws).",
        "Monte Carlo standard error of a coverage near 95%: "
        f"{100 * np.sqrt(0.95 * 0.05 / reps):.2f} points. Target band for asympt: 93%–97%.",
        "",
        "| n | estimand | vcov | coverage (population effect) | coverage (sample effect) | mean SE | SD of estimates | bias |",
        "|---|---|---|---|---|---|---|---|",
    ]
    start = time.perf_counter()
    for n in (1000, 5000):
        results = Parallel(n_jobs=2)(delayed(one_replication)(n, 10_000 * n + r) for r in range(reps))
        for estimand in ("ATE", "ATT"):
            sample_truth = np.array([res[1] if estimand == "ATE" else res[2] for res in results])
            for vcov in ("asympt", "HC0"):
                est = np.array([res[0][(estimand, vcov)][0] for res in results])
                se = np.array([res[0][(estimand, vcov)][1] for res in results])
                cover_pop = np.mean(np.abs(est - truth[estimand]) <= Z * se)
                cover_sample = np.mean(np.abs(est - sample_truth) <= Z * se)
                lines.append(f"| {n} | {estimand} | {vcov} | {100 * cover_pop:.1f}% | {100 * cover_sample:.1f}% | "
                             f"{se.mean():.4f} | {est.std(ddof=1):.4f} | {est.mean() - truth[estimand]:+.4f} |")
                print(lines[-1], flush=True)
    lines += ["", f"Total time: {time.perf_counter() - start:.0f} s on 2 processes.", "", "Machine:", machine_markdown(), ""]
    out = Path(__file__).resolve().parent / "results" / "variance_coverage.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
