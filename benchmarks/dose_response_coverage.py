"""Coverage of the 95% pointwise intervals of WeightedDoseResponse's ADRF (continuous treatment, known truth).

Design: x ~ N(0, I_3); A = x·b + N(0, 1) (confounded: A is correlated with every covariate);
y = m(A) + x·(1, 0.5, −0.5) + N(0, 1) with the nonlinear m(a) = 2 / (1 + exp(−2a)). Since E[x] = 0 the average
dose-response function is exactly μ(a) = m(a). Two treatment models (``--design``):

- "r2_third" (the first design): b = (0.5, −0.4, 0.3), so Var(x·b) = 0.5 and the treatment model's R² is 1/3;
- "r2_fifth": b = (0.5, −0.4, 0.3)/√2, Var(x·b) = 0.25, R² = 1/5.

Why two: with a normal treatment model the GPS weights w = f(A)/f(A | X) have E[w^k] < ∞ only when
s²/σ² < k/(k − 1) (s² the marginal and σ² the conditional variance of A, s²/σ² = 1/(1 − R²)): a finite variance
needs R² < 1/2, a finite fourth moment R² < 1/4. The sandwich variance is an average of squared weighted scores, so
its own variance involves the fourth moment: at R² = 1/3 the sandwich is consistent but its sampling distribution is
heavy-tailed (it is usually too small, now and then much too large), at R² = 1/5 the usual theory holds. Entropy
balancing weights are not a density ratio and do not have this problem in the same way.

The outcome model is a natural cubic spline with 5 degrees of freedom (R's ns()), whose best approximation of m is
within 0.014 of it at the doses below (with 4 degrees of freedom the approximation error reaches 0.045, a bias that
does not shrink with n and lowers coverage at larger n); intervals at the doses −1.5, −0.75, 0, 0.75, 1.5 (the
central 78 % of A in the first design, 82 % in the second). Weights: the normal GPS (PropensityWeights, the correct
treatment model here) and entropy balancing (EntropyBalance: means of A and x kept, covariances of A with x zero).
Variances: "asympt" (stacked M-estimation; for entropy balancing also with WeightIt's fixed balance targets),
"HC0" (weights as known) and the row bootstrap ("bootstrap", weights re-estimated in every replicate): its
percentile intervals and, from the same replicates, normal intervals with the bootstrap SE.

A coverage from R replications has Monte Carlo standard error sqrt(0.95·0.05/R) (1.5 points at R = 200). The
bootstrap costs n_bootstrap weight fits per replication; with ``--boot-reps`` it runs in the first replications only.
The per-replication estimates and SEs are written beside the table (``.csv``) for re-analysis.

Run: python benchmarks/dose_response_coverage.py [--design r2_third] [--reps 200] [--n 1000] [--n-bootstrap 199]
     [--boot-reps R] [--resume]
     -> benchmarks/results/dose_response_coverage[_r2_fifth][_n<n>].md and .csv
"""

import argparse
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
#: The treatment model's coefficients per design (R² = Var(x·b) / (Var(x·b) + 1)).
DESIGNS = {
    "r2_third": np.array([0.5, -0.4, 0.3]),
    "r2_fifth": np.array([0.5, -0.4, 0.3]) / np.sqrt(2.0),
}
TITLES = {"r2_third": "treatment model R² = 1/3", "r2_fifth": "treatment model R² = 1/5"}


def adrf(a):
    return 2.0 / (1.0 + np.exp(-2.0 * np.asarray(a)))


def simulate(n, seed, design="r2_third"):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    a = x @ DESIGNS[design] + rng.normal(size=n)
    y = adrf(a) + x @ np.array([1.0, 0.5, -0.5]) + rng.normal(size=n)
    return pd.DataFrame(x, columns=["x0", "x1", "x2"]), pd.Series(a, name="dose"), y


class FixedTargetEntropy(EntropyBalance):
    """EntropyBalance whose "asympt" holds the balance targets (the sample means) fixed: WeightIt 1.5.1's form."""

    def _m_parts(self, X, treatment, sample_weight=None):
        return super()._m_parts(X, treatment, sample_weight, fixed_targets=True)


def settings(n_bootstrap):
    """(label, weighter, vcov, extra parameters) of every fit."""
    gps, ebal = PropensityWeights(), EntropyBalance(estimand="ATE")
    boot = {"n_bootstrap": n_bootstrap, "n_jobs": 1}
    return [
        ("GPS, asympt", gps, "asympt", {}),
        ("GPS, HC0", gps, "HC0", {}),
        ("GPS, bootstrap", gps, "bootstrap", boot),
        ("ebal, asympt (targets estimated)", ebal, "asympt", {}),
        ("ebal, asympt (targets fixed, WeightIt)", FixedTargetEntropy(estimand="ATE"), "asympt", {}),
        ("ebal, HC0", ebal, "HC0", {}),
        ("ebal, bootstrap", ebal, "bootstrap", boot),
    ]


def one_replication(n, seed, n_bootstrap, design):
    """Long table: per setting and dose, the interval's limits, the estimate and the SE."""
    X, a, y = simulate(n, seed, design)
    rows = []
    for label, weighter, vcov, extra in settings(n_bootstrap):
        if vcov == "bootstrap" and n_bootstrap == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = WeightedDoseResponse(weighter, "spline", df=DF, vcov=vcov, random_state=seed, **extra).fit(X, a, y)
        methods = [("percentile", " (percentile)"), ("normal", " (normal, bootstrap SE)")] if vcov == "bootstrap" \
            else [("normal", "")]
        for method, suffix in methods:
            table = fit.predict(DOSES, method=method).reset_index()
            rows.append(table.assign(setting=label + suffix, seed=seed))
    return pd.concat(rows, ignore_index=True)


def summarise(long):
    """Coverage (%), mean SE / SD of the estimates, CV of the SE over the replications, bias; settings × doses."""
    long = long.assign(truth=adrf(long["dose"]))
    long["covered"] = (long["conf_low"] <= long["truth"]) & (long["truth"] <= long["conf_high"])
    order = list(dict.fromkeys(long["setting"]))
    grouped = long.groupby(["setting", "dose"], sort=False)
    wide = lambda s: s.unstack("dose").reindex(order).rename(columns=lambda d: f"a = {d:g}")  # noqa: E731
    coverage = wide(100 * grouped["covered"].mean())
    coverage["all doses"] = coverage.mean(axis=1)
    coverage["replications"] = long.groupby("setting", sort=False)["seed"].nunique().reindex(order)
    return {
        "coverage": coverage,
        "se_ratio": wide(grouped["std_err"].mean() / grouped["estimate"].std(ddof=1)),
        "se_cv": wide(grouped["std_err"].std(ddof=1) / grouped["std_err"].mean()),
        "bias": wide(grouped["estimate"].mean() - grouped["truth"].mean()),
    }


def main(design="r2_third", reps=200, n=1000, n_bootstrap=199, boot_reps=None, resume=False):
    boot_reps = reps if boot_reps is None else boot_reps
    stem = "dose_response_coverage" + ("" if design == "r2_third" else f"_{design}") + ("" if n == 1000 else f"_n{n}")
    out = Path(__file__).resolve().parent / "results" / stem
    start = time.perf_counter()
    # --resume: the replications already in the .csv (same seeds, so the same data) are kept, not recomputed
    done = pd.read_csv(out.with_suffix(".csv")) if resume and out.with_suffix(".csv").exists() else None
    seeds_done = set() if done is None else set(done["seed"])
    new = [one_replication(n, 11_000 + r, n_bootstrap if r < boot_reps else 0, design)
           for r in range(reps) if 11_000 + r not in seeds_done]
    long = pd.concat(([] if done is None else [done[done["seed"] < 11_000 + reps]]) + new, ignore_index=True)
    tables = summarise(long)
    command = (f"python benchmarks/dose_response_coverage.py --design {design} --reps {reps} --n {n} "
               f"--n-bootstrap {n_bootstrap} --boot-reps {boot_reps}" + (" --resume" if resume else ""))
    lines = [
        f"# Coverage of 95% pointwise ADRF intervals, continuous treatment ({TITLES[design]}; WeightedDoseResponse, "
        "spline df = 5)",
        "",
        f"{reps} replications ({boot_reps} with the bootstrap, {n_bootstrap} bootstrap replicates), n = {n}; "
        f"`{command}`. Truth μ(a) = 2 / (1 + exp(−2a)); the design and the reason for two designs are in the "
        f"script's docstring. Monte Carlo standard error of a coverage near 95%: "
        f"{100 * np.sqrt(0.95 * 0.05 / reps):.1f} points per dose at {reps} replications (the doses' coverages are "
        "correlated within a replication). Per-replication numbers: the `.csv` beside this file.",
        "",
        "Coverage (%):",
        "",
        *_markdown_table(tables["coverage"].astype(object), "{:.1f}"),
        "",
        "Mean SE / SD of the estimates over the replications (1 = the SE is right on average):",
        "",
        *_markdown_table(tables["se_ratio"], "{:.3f}"),
        "",
        "Coefficient of variation of the SE over the replications (how much the SE itself varies):",
        "",
        *_markdown_table(tables["se_cv"], "{:.3f}"),
        "",
        "Bias (mean estimate − truth):",
        "",
        *_markdown_table(tables["bias"], "{:+.4f}"),
        "",
        f"Run time {time.perf_counter() - start:.0f} s" + (f" ({len(new)} replications computed, "
                                                          f"{len(seeds_done)} read from the .csv)." if resume else "."),
        "",
        machine_markdown(),
    ]
    long.to_csv(out.with_suffix(".csv"), index=False, float_format="%.6g")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _markdown_table(frame, fmt):
    lines = ["| weights, vcov | " + " | ".join(frame.columns) + " |", "|---" * (len(frame.columns) + 1) + "|"]
    cell = lambda v: str(v) if isinstance(v, (int, np.integer)) else fmt.format(v)  # noqa: E731
    lines += [f"| {name} | " + " | ".join(cell(v) for v in row) + " |" for name, row in frame.iterrows()]
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", choices=sorted(DESIGNS), default="r2_third")
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--n-bootstrap", type=int, default=199)
    parser.add_argument("--boot-reps", type=int, default=None)
    parser.add_argument("--resume", action="store_true", help="keep the replications already in the .csv")
    args = parser.parse_args()
    main(args.design, args.reps, args.n, args.n_bootstrap, args.boot_reps, args.resume)
