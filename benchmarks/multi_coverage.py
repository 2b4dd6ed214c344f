"""Coverage of 95% intervals of WeightedEffect with a three-level treatment (multinomial PropensityWeights, ATE).

Known truth: x ~ N(0, I_2); P(A = k | x) a multinomial logit in x (confounded through x0, x1); y = 1 + τ_A + 2 x0 + x1
+ ε with τ = (0, 1, −0.5), so the population potential-outcome means are exactly 1 + τ (E[x] = 0) and the pairwise
contrasts τ_j − τ_i. Outcome models "simple", "interact" and "aipw"; vcov "asympt" (covariates of the target random,
the default: intervals for the population means) and "HC0" (weights treated as known: too wide for IPW, as the
theory says, since estimating the propensity score reduces the variance of the ATE).

A coverage estimate from R replications has standard error sqrt(0.95·0.05/R) = 1.5 points at R = 200.

Run: python benchmarks/multi_coverage.py [R] [n]  ->  benchmarks/results/multi_coverage_n<n>.md
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402

from balance import PropensityWeights, WeightedEffect  # noqa: E402

EFFECTS = np.array([0.0, 1.0, -0.5])
LEVELS = np.array(["l0", "l1", "l2"])
TRUTH = pd.Series(np.r_[EFFECTS[1] - EFFECTS[0], EFFECTS[2] - EFFECTS[0], EFFECTS[2] - EFFECTS[1], 1 + EFFECTS],
                  index=["l1 - l0", "l2 - l0", "l2 - l1", "mu[l0]", "mu[l1]", "mu[l2]"])


def simulate(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    logits = np.column_stack([np.zeros(n), 0.3 + 0.8 * x[:, 0], -0.2 - 0.6 * x[:, 0] + 0.5 * x[:, 1]])
    a = (rng.random(n)[:, None] > np.cumsum(softmax(logits, axis=1), axis=1)).sum(axis=1)
    y = 1 + EFFECTS[a] + 2 * x[:, 0] + x[:, 1] + rng.normal(size=n)
    return x, LEVELS[a], y


def one_replication(n, seed):
    """Per (model, vcov): whether each interval covers the truth, the estimates and the SEs."""
    x, a, y = simulate(n, seed)
    covered, estimates, ses = {}, {}, {}
    for model in ("simple", "interact", "aipw"):
        for vcov in ("asympt", "HC0"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                summary = WeightedEffect(PropensityWeights("ATE"), model, vcov).fit(x, a, y).summary()
            key = f"{model}, {vcov}"
            covered[key] = (summary["ci_lower"] <= TRUTH) & (TRUTH <= summary["ci_upper"])
            estimates[key], ses[key] = summary["estimate"], summary["std_err"]
    return (pd.DataFrame(covered).T.astype(float), pd.DataFrame(estimates).T, pd.DataFrame(ses).T)


def main(reps=200, n=1000):
    start = time.perf_counter()
    runs = [one_replication(n, 7_000 + r) for r in range(reps)]
    coverage = 100 * sum(r[0] for r in runs) / reps
    estimates = np.stack([r[1].to_numpy() for r in runs])
    ratio = pd.DataFrame(np.mean([r[2].to_numpy() for r in runs], axis=0) / estimates.std(axis=0, ddof=1),
                         index=coverage.index, columns=coverage.columns)
    bias = pd.DataFrame(estimates.mean(axis=0) - TRUTH.to_numpy(), index=coverage.index, columns=coverage.columns)
    lines = [
        "# Coverage of 95% intervals, three-level treatment (multinomial PropensityWeights, ATE)",
        "",
        f"{reps} replications, n = {n}; `python benchmarks/multi_coverage.py {reps} {n}`. Monte Carlo standard error "
        f"of a coverage near 95%: {100 * np.sqrt(0.95 * 0.05 / reps):.1f} points. Truth: means 1 + (0, 1, −0.5).",
        "",
        "Coverage (%):",
        "",
        *_markdown_table(coverage, "{:.1f}"),
        "",
        "Mean SE / SD of the estimates over the replications (1 = the SE is right on average):",
        "",
        *_markdown_table(ratio, "{:.3f}"),
        "",
        "Bias (mean estimate − truth):",
        "",
        *_markdown_table(bias, "{:+.4f}"),
        "",
        f"Run time {time.perf_counter() - start:.0f} s.",
        "",
        machine_markdown(),
    ]
    out = Path(__file__).resolve().parent / "results" / f"multi_coverage_n{n}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _markdown_table(frame, fmt):
    """Rows 'model, vcov', columns the quantities (no tabulate dependency)."""
    lines = ["| model, vcov | " + " | ".join(frame.columns) + " |", "|---" * (len(frame.columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(fmt.format(v) for v in row) + " |" for name, row in frame.iterrows()]
    return lines


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:3]))
