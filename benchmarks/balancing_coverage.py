"""Coverage of 95% intervals for entropy balancing, IPT and CBPS weights (WeightedEffect, "simple", asympt and HC0).

Known truth (make_synthetic): the individual effect is 1 + 0.5·x1, so the population ATE is 1 and the population ATT
is 1 + 0.5·E[e(X)·x1] / E[e(X)], computed from 4 million draws (Monte Carlo error ~1e-4, negligible against SEs of
~0.1). The "asympt" SEs stack the weight model's estimating equations (for entropy balancing with the balance
targets estimated, unlike WeightIt's ebal); "HC0" treats the weights as known.

A coverage estimate from R replications has standard error sqrt(0.95·0.05/R) = 0.97 points at R = 500.

Run: python benchmarks/balancing_coverage.py [R] [n]  ->  benchmarks/results/balancing_coverage_n{n}.md
"""

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# keep this folder off sys.path so no script here can shadow an installed package (a former coverage.py shadowed
# the ``coverage`` package that numba imports)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
_spec = importlib.util.spec_from_file_location("_machine", HERE / "_machine.py")
_machine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_machine)

from balance import CBPS, EntropyBalance, InverseProbabilityTilting, WeightedEffect  # noqa: E402
from balance.datasets import make_synthetic  # noqa: E402

Z = 1.959963984540054
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
METHODS = {
    "EntropyBalance ATT": lambda: EntropyBalance("ATT"),
    "EntropyBalance ATE": lambda: EntropyBalance("ATE"),
    "InverseProbabilityTilting ATE": lambda: InverseProbabilityTilting("ATE"),
    "CBPS ATT": lambda: CBPS("ATT"),
    "CBPS ATE": lambda: CBPS("ATE"),
}


def population_att(draws=4_000_000, seed=0):
    big = make_synthetic(draws, random_state=seed)
    return 1.0 + 0.5 * np.sum(big.propensity * big.X["x1"]) / np.sum(big.propensity)


def one_replication(seed):
    data = make_synthetic(N, random_state=seed)
    out = {}
    for name, make in METHODS.items():
        for vcov in ("asympt", "HC0"):
            fit = WeightedEffect(make(), "simple", vcov).fit(data.X, data.treatment, data.y)
            out[(name, vcov)] = (fit.estimate_, fit.se_)
    return out


def main(reps=500):
    truth = {"ATE": 1.0, "ATT": population_att()}
    start = time.perf_counter()
    results = [one_replication(10_000 + r) for r in range(reps)]
    elapsed = time.perf_counter() - start
    lines = [
        f"# Coverage of 95% intervals: WeightedEffect(weighter, 'simple', vcov) on make_synthetic(n={N})",
        "",
        _machine.machine_markdown(),
        f"- replications: {reps} (coverage SE about {100 * np.sqrt(0.95 * 0.05 / reps):.2f} points); "
        f"run time {elapsed:.0f} s",
        f"- population ATT {truth['ATT']:.4f} (4e6 draws), ATE 1",
        "",
        "| weighter | vcov | mean estimate | bias | sd of estimates | mean SE | coverage % |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in METHODS:
        target = truth[name[-3:]]
        for vcov in ("asympt", "HC0"):
            est = np.array([r[(name, vcov)][0] for r in results])
            se = np.array([r[(name, vcov)][1] for r in results])
            cover = np.mean(np.abs(est - target) <= Z * se) * 100
            lines.append(f"| {name} | {vcov} | {est.mean():.4f} | {est.mean() - target:+.4f} | {est.std(ddof=1):.4f} "
                         f"| {se.mean():.4f} | {cover:.1f} |")
    lines.append("")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"balancing_coverage_n{N}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
