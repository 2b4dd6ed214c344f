"""Multiple imputation with weighting: coverage of ImputedEffect's pooled 95% interval, and the bias of the
alternatives, with covariates missing at random and a known effect.

Known truth: x1, x2 ~ N(0, 1) with correlation 0.5, x3 ~ Bernoulli(0.4); P(A = 1 | x) = logistic(−0.3 + 0.7 x1
− 0.5 x2 + 0.5 x3); y = 1 + τ A + x1 + x2 + x3 + ε, ε ~ N(0, 1), τ = 1 for everyone, so the ATE (the estimand here)
is 1. Missing at random (on fully observed variables): x1 is missing with probability
logistic(−1.2 + 0.8 (y − 2) / 2 + 0.5 A) (more often for large outcomes), x2 with probability
logistic(−1.5 + 1.0 x3). Since x1's missingness depends on the outcome, dropping incomplete rows (complete-case
analysis) selects on y and is biased.

Analyses (all PropensityWeights(estimand="ATE") with outcome_model="simple", vcov="asympt"):
- full data (before deleting values): the benchmark of what the data could give;
- complete cases: rows with missing values dropped;
- missingness indicators: PropensityWeights(missing="indicator") (median fill + indicators; biased in general);
- multiple imputation: ImputedEffect with the package's default imputer
  (IterativeImputer(sample_posterior=True, max_iter=5), treatment and outcome in the imputation model), m = 5
  imputations, Rubin's rules with Barnard–Rubin df.

A coverage estimate from R replications has Monte Carlo standard error sqrt(0.95 · 0.05 / R).

Run: python benchmarks/mi_coverage.py [R] [n] [n_jobs]  ->  benchmarks/results/mi_coverage.md
"""

import multiprocessing
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402

from balance import ImputedEffect, PropensityWeights, WeightedEffect  # noqa: E402

TAU = 1.0
M = 5


def simulate(n, seed):
    """(complete X, X with missing values, treatment, outcome)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    x1, x2 = z[:, 0], 0.5 * z[:, 0] + np.sqrt(0.75) * z[:, 1]
    x3 = (rng.random(n) < 0.4).astype(float)
    a = (rng.random(n) < expit(-0.3 + 0.7 * x1 - 0.5 * x2 + 0.5 * x3)).astype(int)
    y = 1 + TAU * a + x1 + x2 + x3 + rng.normal(size=n)
    full = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3})
    missing = full.copy()
    missing.loc[rng.random(n) < expit(-1.2 + 0.8 * (y - 2) / 2 + 0.5 * a), "x1"] = np.nan
    missing.loc[rng.random(n) < expit(-1.5 + 1.0 * x3), "x2"] = np.nan
    return full, missing, pd.Series(a), pd.Series(y)


def one_replication(n, seed):
    full, missing, a, y = simulate(n, seed)
    effect = WeightedEffect(PropensityWeights(estimand="ATE"))
    complete = missing.notna().all(axis=1)
    fits = {
        "full data": lambda: effect.fit(full, a, y),
        "complete cases": lambda: effect.fit(missing[complete], a[complete], y[complete]),
        "missingness indicators": lambda: WeightedEffect(PropensityWeights(estimand="ATE", missing="indicator"))
        .fit(missing, a, y),
        "multiple imputation": lambda: ImputedEffect(effect, n_imputations=M, random_state=seed).fit(missing, a, y),
    }
    out = {}
    for name, fit in fits.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = fit().contrasts_.iloc[0][["estimate", "std_err", "conf_low", "conf_high"]].to_numpy()
    return pd.DataFrame(out, index=["estimate", "se", "lower", "upper"]).T, float(missing.isna().mean().mean())


def _replication(args):
    return one_replication(*args)


def main(reps=200, n=500, n_jobs=2):
    start = time.perf_counter()
    runs = []
    # forked workers share this script's functions; imap keeps the order: the same table for any n_jobs
    with multiprocessing.get_context("fork").Pool(n_jobs) as pool:
        for run in pool.imap(_replication, [(n, 21_000 + r) for r in range(reps)]):
            runs.append(run)
            if len(runs) % 20 == 0 or len(runs) == reps:  # the table so far: a long run interrupted still reports
                report(runs, reps, n, n_jobs, time.perf_counter() - start)


def report(runs, reps, n, n_jobs, seconds):
    done = len(runs)
    est = np.stack([r[0]["estimate"].to_numpy() for r in runs])
    se = np.stack([r[0]["se"].to_numpy() for r in runs])
    covered = np.stack([((r[0]["lower"] <= TAU) & (TAU <= r[0]["upper"])).to_numpy() for r in runs])
    table = pd.DataFrame({
        "bias": est.mean(axis=0) - TAU,
        "MC SE of bias": est.std(axis=0, ddof=1) / np.sqrt(done),
        "SD of estimates": est.std(axis=0, ddof=1),
        "mean SE": se.mean(axis=0),
        "coverage %": 100 * covered.mean(axis=0),
    }, index=runs[0][0].index)
    status = "" if done == reps else f" (interrupted: {done} of the {reps} requested)"
    lines = [
        "# Multiple imputation with weighting: coverage and bias (covariates missing at random)",
        "",
        f"{done} replications{status}, n = {n}, m = {M} imputations; "
        f"`python benchmarks/mi_coverage.py {reps} {n} {n_jobs}` (design in the script's docstring). Truth: ATE = 1. "
        f"On average {100 * np.mean([r[1] for r in runs]):.0f} % of the covariate values are missing "
        "(x1 depending on the outcome, x2 on x3).",
        "",
        f"Monte Carlo standard error of a coverage near 95 %: {100 * np.sqrt(0.95 * 0.05 / done):.1f} points; of a "
        "bias: the column given.",
        "",
        "| analysis | bias | MC SE of bias | SD of estimates | mean SE | coverage % |",
        "|---|---|---|---|---|---|",
        *(f"| {name} | {row['bias']:+.4f} | {row['MC SE of bias']:.4f} | {row['SD of estimates']:.4f} | "
          f"{row['mean SE']:.4f} | {row['coverage %']:.1f} |" for name, row in table.iterrows()),
        "",
        f"Run time {seconds:.0f} s ({n_jobs} worker processes).",
        "",
        machine_markdown(),
    ]
    out = Path(__file__).resolve().parent / "results" / "mi_coverage.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:4]))
