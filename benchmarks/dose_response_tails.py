"""The GPS sandwiches of the ADRF over many replications: are the spline's data-dependent knots or the heavy tails
of the GPS weights behind the undercoverage at the tail doses in dose_response_coverage.py?

Same designs as benchmarks/dose_response_coverage.py (R² = 1/3 and 1/5), normal GPS weights only, the cheap
variances only ("asympt" and HC0), but R = 1000 replications (Monte Carlo SE of a 95 % coverage 0.7 points per
dose, against 1.5 at R = 200). Beside WeightedDoseResponse's default basis (knots at the sample's quantiles and
range), HC0 on one fixed basis (the knots of a sample of 10^6): if the knots' sampling variability (ignored by
every SE, and by the bootstrap, which keeps the full sample's knots) caused the undercoverage, the fixed basis would
cover. Also the kurtosis of the estimates over the replications (3 for a normal sampling distribution) and a
robust SE ratio, median SE / (IQR / 1.349) of the estimates, that a few extreme replications cannot move.

Run: python benchmarks/dose_response_tails.py [R] -> benchmarks/results/dose_response_tails.md
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402
from dose_response_coverage import DESIGNS, DF, DOSES, TITLES, adrf, simulate  # noqa: E402

from balance import PropensityWeights, WeightedDoseResponse  # noqa: E402
from balance.effects._dose_response import dose_design, dose_equations  # noqa: E402
from balance.effects._sandwich import stacked_cov  # noqa: E402
from balance.effects._splines import NaturalSplineBasis  # noqa: E402


def one_replication(seed, design, fixed):
    X, a, y = simulate(1000, seed, design)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for vcov in ("asympt", "HC0"):
            fit = WeightedDoseResponse(PropensityWeights(), "spline", df=DF, vcov=vcov).fit(X, a, y)
            table = fit.predict(DOSES)
            rows.append(pd.DataFrame({"setting": f"GPS, {vcov} (sample knots)", "dose": DOSES,
                                      "estimate": table["estimate"].to_numpy(), "std_err": table["std_err"].to_numpy()}))
    eq = dose_equations(dose_design(a.to_numpy(), fixed), y, np.asarray(fit.weights_))
    D = dose_design(DOSES, fixed)
    se = np.sqrt(np.einsum("ij,jk,ik->i", D, stacked_cov(eq)[0], D))
    rows.append(pd.DataFrame({"setting": "GPS, HC0 (fixed knots)", "dose": DOSES, "estimate": D @ eq.params,
                              "std_err": se}))
    return pd.concat(rows)


def summarise(long):
    z = norm.ppf(0.975)
    long = long.assign(covered=np.abs(long["estimate"] - adrf(long["dose"])) <= z * long["std_err"])
    g = long.groupby(["setting", "dose"], sort=False)
    iqr = g["estimate"].quantile(0.75) - g["estimate"].quantile(0.25)
    out = {
        "coverage (%)": 100 * g["covered"].mean(),
        "mean SE / SD": g["std_err"].mean() / g["estimate"].std(ddof=1),
        "median SE / (IQR / 1.349)": g["std_err"].median() / (iqr / 1.349),
        "kurtosis of the estimates": g["estimate"].apply(lambda v: float(((v - v.mean()) ** 4).mean() / v.var(ddof=0) ** 2)),
    }
    return {k: v.unstack("dose").rename(columns=lambda d: f"a = {d:g}") for k, v in out.items()}


def main(reps=1000):
    start = time.perf_counter()
    lines = ["# GPS sandwiches of the ADRF over 1000 replications: knots or tails?", "",
             f"`python benchmarks/dose_response_tails.py {reps}`; n = 1000, {reps} replications (seeds 11000 on, the "
             "first 200 are those of dose_response_coverage.md). See the script's docstring.", ""]
    for design in DESIGNS:
        _, big, _ = simulate(1_000_000, 1, design)
        fixed = NaturalSplineBasis.from_data(big.to_numpy(), DF)
        long = pd.concat([one_replication(11_000 + r, design, fixed) for r in range(reps)], ignore_index=True)
        lines += [f"## {TITLES[design]}", ""]
        for name, table in summarise(long).items():
            if name == "coverage (%)":
                table["all doses"] = table.mean(axis=1)
            lines += [f"{name}:", "", "| setting | " + " | ".join(table.columns) + " |",
                      "|---" * (len(table.columns) + 1) + "|"]
            lines += [f"| {idx} | " + " | ".join(f"{v:.3g}" if name != "coverage (%)" else f"{v:.1f}" for v in row)
                      + " |" for idx, row in table.iterrows()]
            lines.append("")
    lines += [f"Run time {time.perf_counter() - start:.0f} s.", "", machine_markdown()]
    out = Path(__file__).resolve().parent / "results" / "dose_response_tails.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:2]))
