"""Bias and coverage of 95% intervals of MSMEffect: time-varying confounding affected by past treatment.

Design: ``balance.msm.simulate_msm`` (three time points; L_{t−1} confounds A_t and is itself affected by earlier
treatments; y linear in the treatments and the last covariate), so the additive marginal structural model is
correct and E[y(1,1,1)] − E[y(0,0,0)] = 3.784 exactly. Estimators: MSMWeights with logistic IPW (unstabilised and
stabilised), joint CBPS, IPT and entropy balancing per time point, each with vcov="asympt"; logistic IPW with
dropout depending on the time-varying covariate (``dropout=True``), with and without CensoringWeights (complete
cases); and the naive regressions of y on the treatments alone and on the treatments and covariates.

A coverage estimate from R replications has standard error sqrt(0.95·0.05/R) = 1.5 points at R = 200.

Run: python benchmarks/msm_coverage.py [R] [n]  ->  benchmarks/results/msm_coverage.md
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))
from _machine import write_report  # noqa: E402

from balance import CBPS, EntropyBalance, InverseProbabilityTilting  # noqa: E402
from balance.msm import CensoringWeights, MSMEffect, MSMWeights, simulate_msm  # noqa: E402

ESTIMATORS = {
    "IPW (glm)": lambda: MSMWeights(),
    "IPW (glm), stabilised": lambda: MSMWeights(stabilize=True),
    "CBPS, joint over time": lambda: MSMWeights(CBPS()),
    "IPT per time": lambda: MSMWeights(InverseProbabilityTilting(estimand="ATE")),
    "entropy balancing per time": lambda: MSMWeights(EntropyBalance(estimand="ATE")),
}


def _ols_sum(X, y):
    """Sum of the treatment coefficients of a least-squares fit (columns A_* of X)."""
    design = np.column_stack([np.ones(len(y)), X.to_numpy(dtype=float)])
    coef = np.linalg.lstsq(design, y, rcond=None)[0][1:]
    return float(coef[[c.startswith("A_") for c in X.columns]].sum())


def one_replication(n, seed):
    rows = {}
    data = simulate_msm(n, 3, random_state=seed)
    truth = data.truth["(1, 1, 1)"] - data.truth["(0, 0, 0)"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, make in ESTIMATORS.items():
            c = MSMEffect(make(), "additive").fit(data.X_list, data.treatments, data.y).contrast("always", "never")
            rows[name] = (c.estimate, c.std_err, c.ci_lower <= truth <= c.ci_upper)
        covariates = pd.concat([data.treatments, data.X_list[-1].drop(columns=["A_1", "A_2"])], axis=1)
        rows["naive: y ~ A"] = (_ols_sum(data.treatments, data.y), np.nan, np.nan)
        rows["naive: y ~ A + L"] = (_ols_sum(covariates, data.y), np.nan, np.nan)
        lost = simulate_msm(n, 3, dropout=True, random_state=seed)
        fit = MSMEffect(MSMWeights(censoring=CensoringWeights()), "additive").fit(
            lost.X_list, lost.treatments, lost.y, uncensored=lost.uncensored)
        c = fit.contrast("always", "never")
        rows["dropout: IPW x censoring weights"] = (c.estimate, c.std_err, c.ci_lower <= truth <= c.ci_upper)
        keep = lost.uncensored.iloc[:, -1].to_numpy() == 1
        c = MSMEffect(MSMWeights(), "additive").fit([X[keep] for X in lost.X_list], lost.treatments[keep],
                                                    lost.y[keep]).contrast("always", "never")
        rows["dropout: IPW, complete cases"] = (c.estimate, c.std_err, c.ci_lower <= truth <= c.ci_upper)
    return pd.DataFrame(rows, index=["estimate", "std_err", "covered"]).T, truth, keep.mean()


def main(reps=200, n=2000):
    start = time.perf_counter()
    runs = [one_replication(n, 19_000 + r) for r in range(reps)]
    truth = runs[0][1]
    est = np.stack([r[0]["estimate"].to_numpy(dtype=float) for r in runs])
    se = np.stack([r[0]["std_err"].to_numpy(dtype=float) for r in runs])
    cov = np.stack([r[0]["covered"].to_numpy(dtype=float) for r in runs])
    table = pd.DataFrame({
        "bias": est.mean(axis=0) - truth,
        "MC SE of bias": est.std(axis=0, ddof=1) / np.sqrt(reps),
        "SD of estimates": est.std(axis=0, ddof=1),
        "mean SE": se.mean(axis=0),
        "coverage (%)": 100 * cov.mean(axis=0),
    }, index=runs[0][0].index)
    lines = [
        "# MSMEffect: bias and coverage under time-varying confounding affected by past treatment",
        "",
        f"{reps} replications, n = {n}, 3 time points; `python benchmarks/msm_coverage.py {reps} {n}`. Estimand "
        f"E[y(1,1,1)] − E[y(0,0,0)] = {truth:.3f}; additive MSM, vcov='asympt'. Monte Carlo SE of a coverage near "
        f"95%: {100 * np.sqrt(0.95 * 0.05 / reps):.1f} points. With dropout, "
        f"{100 * np.mean([r[2] for r in runs]):.0f}% of units are observed to the end.",
        "",
        "| estimator | " + " | ".join(table.columns) + " |",
        "|---" * (len(table.columns) + 1) + "|",
        *[f"| {name} | " + " | ".join("" if np.isnan(v) else f"{v:+.4f}" if col == "bias" else f"{v:.4f}"
                                      if col != "coverage (%)" else f"{v:.1f}" for col, v in row.items()) + " |"
          for name, row in table.iterrows()],
        "",
        f"Run time {time.perf_counter() - start:.0f} s.",
    ]
    write_report(HERE / "results" / "msm_coverage.md", lines)


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:3]))
