"""Coverage of the 95% pointwise intervals of WeightedDoseResponse's ADRF (continuous treatment, known truth).

Design: x ~ N(0, I_3); A = x·(0.5, −0.4, 0.3) + N(0, 1) (confounded: A is correlated with every covariate);
y = m(A) + x·(1, 0.5, −0.5) + N(0, 1) with the nonlinear m(a) = 2 / (1 + exp(−2a)). Since E[x] = 0 the average
dose-response function is exactly μ(a) = m(a). The outcome model is a natural cubic spline with 5 degrees of freedom
(R's ns()), whose best approximation of m is within 0.014 of it at the doses below (with 4 degrees of freedom the
approximation error reaches 0.045, a bias that does not shrink with n and lowers coverage at larger n); intervals
at the doses −1.5, −0.75, 0, 0.75, 1.5 (the central 87 % of A). Weights: the normal GPS
(PropensityWeights, the correct treatment model here) and entropy balancing (EntropyBalance: means of A and x kept,
covariances of A with x zero). Variances: "asympt" (stacked M-estimation; for entropy balancing also with WeightIt's
fixed balance targets), "HC0" (weights as known) and the row bootstrap (percentile intervals).

A coverage from R replications has Monte Carlo standard error sqrt(0.95·0.05/R) (1.5 points at R = 200). The
bootstrap costs n_bootstrap weight fits per replication, so it runs in the first R_boot replications only.

Run: python benchmarks/dose_response_coverage.py [R] [n] [n_bootstrap] [R_boot]
     -> benchmarks/results/dose_response_coverage.md (n = 1000; other n: dose_response_coverage_n<n>.md)
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402

from balance import EntropyBalance, PropensityWeights, WeightedDoseResponse  # noqa: E402

DOSES = np.array([-1.5, -0.75, 0.0, 0.75, 1.5])
DF = 5


def adrf(a):
    return 2.0 / (1.0 + np.exp(-2.0 * np.asarray(a)))


def simulate(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    a = x @ np.array([0.5, -0.4, 0.3]) + rng.normal(size=n)
    y = adrf(a) + x @ np.array([1.0, 0.5, -0.5]) + rng.normal(size=n)
    return pd.DataFrame(x, columns=["x0", "x1", "x2"]), pd.Series(a, name="dose"), y


class FixedTargetEntropy(EntropyBalance):
    """EntropyBalance whose "asympt" holds the balance targets (the sample means) fixed: WeightIt 1.5.1's form."""

    def _m_parts(self, X, treatment, sample_weight=None):
        return super()._m_parts(X, treatment, sample_weight, fixed_targets=True)


def settings(n_bootstrap):
    """(label, weighter, vcov, extra parameters) of every interval computed."""
    gps, ebal = PropensityWeights(), EntropyBalance(estimand="ATE")
    boot = {"n_bootstrap": n_bootstrap}
    return [
        ("GPS, asympt", gps, "asympt", {}),
        ("GPS, HC0", gps, "HC0", {}),
        ("GPS, bootstrap", gps, "bootstrap", boot),
        ("ebal, asympt (targets estimated)", ebal, "asympt", {}),
        ("ebal, asympt (targets fixed, WeightIt)", FixedTargetEntropy(estimand="ATE"), "asympt", {}),
        ("ebal, HC0", ebal, "HC0", {}),
        ("ebal, bootstrap", ebal, "bootstrap", boot),
    ]


def one_replication(n, seed, n_bootstrap):
    """Per setting: whether each dose's interval covers μ(dose), the estimates and the SEs."""
    X, a, y = simulate(n, seed)
    truth = adrf(DOSES)
    covered, estimates, ses = {}, {}, {}
    for label, weighter, vcov, extra in settings(n_bootstrap):
        if vcov == "bootstrap" and n_bootstrap == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = WeightedDoseResponse(weighter, "spline", df=DF, vcov=vcov, random_state=seed, **extra).fit(X, a, y)
        table = fit.predict(DOSES)
        covered[label] = (table["conf_low"].to_numpy() <= truth) & (truth <= table["conf_high"].to_numpy())
        estimates[label], ses[label] = table["estimate"].to_numpy(), table["std_err"].to_numpy()
    frame = lambda d: pd.DataFrame(d, index=[f"a = {v:g}" for v in DOSES]).T  # noqa: E731
    return frame(covered).astype(float), frame(estimates), frame(ses)


def main(reps=200, n=1000, n_bootstrap=199, boot_reps=None):
    boot_reps = reps if boot_reps is None else boot_reps
    start = time.perf_counter()
    runs = [one_replication(n, 11_000 + r, n_bootstrap if r < boot_reps else 0) for r in range(reps)]
    covered, estimates, ses = (pd.concat([r[k] for r in runs], keys=range(reps)) for k in range(3))
    by_setting = lambda frame: frame.groupby(level=1, sort=False)  # noqa: E731
    coverage = 100 * by_setting(covered).mean()
    coverage["all doses"] = coverage.mean(axis=1)
    coverage["replications"] = by_setting(covered).size()
    ratio = by_setting(ses).mean() / by_setting(estimates).std(ddof=1)
    bias = by_setting(estimates).mean() - adrf(DOSES)
    lines = [
        "# Coverage of 95% pointwise ADRF intervals, continuous treatment (WeightedDoseResponse, spline df = 5)",
        "",
        f"{reps} replications ({boot_reps} with the bootstrap, {n_bootstrap} bootstrap replicates, percentile "
        f"intervals), n = {n}; `python benchmarks/dose_response_coverage.py {reps} {n} {n_bootstrap} {boot_reps}`. "
        f"Truth μ(a) = 2 / (1 + exp(−2a)). Monte Carlo standard error of a coverage near 95%: "
        f"{100 * np.sqrt(0.95 * 0.05 / reps):.1f} points per dose at {reps} replications, "
        f"{100 * np.sqrt(0.95 * 0.05 / max(boot_reps, 1)):.1f} at {boot_reps} (the doses' coverages are correlated "
        "within a replication).",
        "",
        "Coverage (%):",
        "",
        *_markdown_table(coverage.astype(object), "{:.1f}"),
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
    out = Path(__file__).resolve().parent / "results" / ("dose_response_coverage.md" if n == 1000 else
                                                          f"dose_response_coverage_n{n}.md")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _markdown_table(frame, fmt):
    lines = ["| weights, vcov | " + " | ".join(frame.columns) + " |", "|---" * (len(frame.columns) + 1) + "|"]
    cell = lambda v: str(v) if isinstance(v, (int, np.integer)) else fmt.format(v)  # noqa: E731
    lines += [f"| {name} | " + " | ".join(cell(v) for v in row) + " |" for name, row in frame.iterrows()]
    return lines


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:5]))
