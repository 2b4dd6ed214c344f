"""WeightedEffect(PropensityWeights("ATE"), vcov="asympt") against statsmodels' TreatmentEffect.ipw().

Both stack the logistic propensity model with the IPW (Hájek) estimating equations, so estimate and standard error
must agree; statsmodels solves the joint GMM by Nelder–Mead from the two-step solution, we use the closed M-estimation
sandwich. Side by side in one run, medians of several runs, on make_synthetic(n).

Run: python benchmarks/statsmodels_ipw.py  ->  benchmarks/results/statsmodels_ipw.md
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import statsmodels.api as sm
from statsmodels.treatment.treatment_effects import TreatmentEffect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402

from balance import PropensityWeights, WeightedEffect  # noqa: E402
from balance.datasets import make_synthetic  # noqa: E402


def ours(X, t, y):
    fit = WeightedEffect(PropensityWeights(estimand="ATE"), vcov="asympt").fit(X, t, y)
    return fit.estimate_, fit.se_


def statsmodels_ipw(X, t, y):
    exog = sm.add_constant(X.to_numpy(dtype=float))
    select = sm.Logit(t.to_numpy(), exog).fit(disp=0)  # the propensity model is part of the timed work
    res = TreatmentEffect(sm.OLS(y.to_numpy(), np.ones((len(y), 1))), t.to_numpy(), results_select=select).ipw()
    return float(res.effect[0]), float(res.sd[0])


def timed(func, *args, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = func(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main():
    rows = []
    for n, repeats in ((100_000, 3), (1_000_000, 3)):
        data = make_synthetic(n, random_state=n)
        X, t, y = data.X, data.treatment, data.y
        ours(X.iloc[:1000], t.iloc[:1000], y.iloc[:1000])  # warm-up
        t_ours, (est, se) = timed(ours, X, t, y, repeats=repeats)
        t_sm, (est_sm, se_sm) = timed(statsmodels_ipw, X, t, y, repeats=1 if n >= 1_000_000 else repeats)
        rows.append((n, est, est_sm, se, se_sm, t_ours, t_sm))
        print(rows[-1], flush=True)
    lines = [
        "# WeightedEffect(PropensityWeights('ATE'), vcov='asympt') vs statsmodels TreatmentEffect.ipw()",
        "",
        "Data: balance.datasets.make_synthetic(n, random_state=n) (the WeightIt timing DGP, 10 covariates).",
        "Times: median wall-clock seconds (ours over 3 runs; statsmodels over 3 runs at 1e5, 1 run at 1e6).",
        "",
        "| n | estimate (ours) | estimate (statsmodels) | rel. diff | SE (ours) | SE (statsmodels) | rel. diff | time ours (s) | time statsmodels (s) | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, est, est_sm, se, se_sm, t_ours, t_sm in rows:
        lines.append(f"| {n:,} | {est:.10g} | {est_sm:.10g} | {abs(est / est_sm - 1):.1e} | {se:.10g} | {se_sm:.10g} "
                     f"| {abs(se / se_sm - 1):.1e} | {t_ours:.3f} | {t_sm:.2f} | {t_sm / t_ours:.0f}x |")
    lines += ["", "Machine:", machine_markdown(), ""]
    out = Path(__file__).resolve().parent / "results" / "statsmodels_ipw.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
