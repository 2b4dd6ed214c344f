"""CATE accuracy of weighted pseudo-outcome learners on setups A–F (Fisher 2024, Fig. "main-comparison").

For each setup, n and replication: draw a training sample and 10,000 fresh test points, cross-fit the nuisances
once (π̂, m̂ = E[Y | X], single μ̂ = E[Y | X, A], and separate arm models μ̂₁, μ̂₀) with HistGradientBoosting, then
fit the final HistGradientBoosting model for DR, IVW-DR, U, R, Cov, IVW-Cov, DR-AX (DR with π̂²/κ̂² weights) and DR /
IVW-DR with separate outcome models on the same nuisances (the code path of PseudoOutcomeLearner), plus the
T-learner. Reported: mean test MSE of τ̂ with a 95% normal CI over replications.

Sized for a shared 2-core machine: CV folds (default 3, the paper used 10) and no hyper-parameter tuning (the paper
tuned LightGBM on a 25-point grid); the boosting models stop early on a 20% validation split instead.
Covariates are pre-binned to 255 training quantiles (what HistGradientBoosting does itself when unweighted).

Usage: python benchmarks/hte_setups.py [--reps 50] [--cv 3] [--out benchmarks/results/hte_setups]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.preprocessing import KBinsDiscretizer

from balance.hte import TLearner, make_hte_setup
from balance.hte._crossfit import NuisanceSpec, clip_propensities, crossfit_order2
from balance.hte._pseudo import pseudo_outcome, pseudo_weights

METHODS = {"DR": ("dr", "none"), "IVW-DR": ("dr", "ivw"), "U": ("u", "none"), "R": ("u", "r"),
           "Cov": ("cov", "none"), "IVW-Cov": ("cov", "ivw"), "DR-AX": ("dr", "dr_ax")}
SEPARATE = {"DR-sep": "none", "IVW-DR-sep": "ivw"}  # DR with one outcome model per arm
SETUPS, SIZES, N_TEST = "ABCDEF", (500, 1000), 10_000


def boost(kind):
    common = dict(learning_rate=0.2, max_iter=100, max_leaf_nodes=8, min_samples_leaf=20, early_stopping=True,
                  validation_fraction=0.2, n_iter_no_change=5, random_state=0)
    return HistGradientBoostingClassifier(**common) if kind == "clf" else HistGradientBoostingRegressor(**common)


def one_replication(setup, n, seed, cv):
    train = make_hte_setup(setup, n=n, random_state=seed)
    test = make_hte_setup(setup, n=N_TEST, random_state=seed + 1)
    # Quantile bins learned once on the training covariates (as HistGradientBoosting does internally without
    # weights): given sample_weight, scikit-learn 1.9 recomputes weighted quantiles one at a time, which dominated
    # the run time; with at most 255 distinct values per column the boosting models skip that step.
    binner = KBinsDiscretizer(n_bins=255, encode="ordinal", strategy="quantile").fit(train.X)
    train.X, test.X = binner.transform(train.X), binner.transform(test.X)
    spec = NuisanceSpec(boost("clf"), boost("reg"), True, True, True, "single")
    a, y = train.treatment.astype(np.int64), train.y
    cf = clip_propensities(crossfit_order2(spec, train.X, a, y, cv, seed), 0.01)
    nuis = dict(pi=cf.pi, kappa=cf.kappa, m=cf.m, mu1=cf.mu1, mu0=cf.mu0)
    mse = {}
    for name, (pseudo, weighting) in METHODS.items():
        phi = pseudo_outcome(pseudo, y, a, **nuis)
        w = None if weighting == "none" else pseudo_weights(weighting, a, cf.pi, cf.kappa)
        model = clone(boost("reg")).fit(train.X, phi, sample_weight=w)
        mse[name] = float(np.mean((model.predict(test.X) - test.tau) ** 2))
    sep = crossfit_order2(NuisanceSpec(None, boost("reg"), False, False, True, "separate"), train.X, a, y, cv, seed)
    for name, weighting in SEPARATE.items():
        phi = pseudo_outcome("dr", y, a, pi=cf.pi, kappa=cf.kappa, mu1=sep.mu1, mu0=sep.mu0)
        w = None if weighting == "none" else pseudo_weights(weighting, a, cf.pi, cf.kappa)
        model = clone(boost("reg")).fit(train.X, phi, sample_weight=w)
        mse[name] = float(np.mean((model.predict(test.X) - test.tau) ** 2))
    t = TLearner(boost("reg")).fit(train.X, a, y)
    mse["T"] = float(np.mean((t.predict(test.X) - test.tau) ** 2))
    return mse


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return (f"nproc {os.cpu_count()}, CPU {cpu}, load average at start: {subprocess.getoutput('uptime')}, "
            f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, scikit-learn {sklearn.__version__}, "
            f"numpy {np.__version__}")


def summarise(raw):
    g = raw.groupby(["setup", "n", "method"])["mse"]
    out = pd.DataFrame({"mean": g.mean(), "se": g.std(ddof=1) / np.sqrt(g.count()), "reps": g.count()})
    out["ci_lower"], out["ci_upper"] = out["mean"] - 1.96 * out["se"], out["mean"] + 1.96 * out["se"]
    return out.reset_index()


def markdown(frame):
    """A DataFrame as a GitHub table (no tabulate dependency)."""
    cells = [list(map(str, frame.columns))] + [[str(v) for v in row] for row in frame.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(r) + " |" for r in cells[:1]] + ["|" + "---|" * frame.shape[1]]
                     + ["| " + " | ".join(r) + " |" for r in cells[1:]])


def write_table(raw, header, path):
    s = summarise(raw)
    s["cell"] = s.apply(lambda r: f"{r['mean']:.3f} [{r.ci_lower:.3f}, {r.ci_upper:.3f}]", axis=1)
    wide = s.pivot(index=["setup", "n"], columns="method", values="cell")[[*METHODS, *SEPARATE, "T"]]
    reps = s.groupby(["setup", "n"])["reps"].min()
    wide.insert(0, "reps", reps)
    lines = ["# CATE test MSE on setups A–F (mean [95% CI] over replications)", "", header, "",
             markdown(wide.reset_index()), ""]
    path.with_suffix(".md").write_text("\n".join(lines))
    raw.to_csv(path.with_suffix(".csv"), index=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--setups", default=SETUPS)
    parser.add_argument("--out", default="benchmarks/results/hte_setups")
    args = parser.parse_args()
    header = (f"Machine: {machine()}.\n\nDesign: n_test = {N_TEST}, p = 10, σ = 1, cv = {args.cv} folds (paper: 10), "
              f"clip 0.01, single outcome model unless '-sep', HistGradientBoosting (lr 0.2, 8 leaves, early stopping after 5 rounds on a 20% split; covariates pre-binned into 255 quantile bins) for every "
              f"nuisance and final model, no tuning (paper: 25-point grid).")
    rows, start = [], time.time()
    for rep in range(args.reps):  # replications outermost, so a partial run covers every cell
        for setup in args.setups:
            for n in SIZES:
                seed = 1000 * rep + 10 * SIZES.index(n) + SETUPS.index(setup) * 100_000
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mse = one_replication(setup, n, seed, args.cv)
                rows += [{"setup": setup, "n": n, "rep": rep, "method": k, "mse": v} for k, v in mse.items()]
        raw = pd.DataFrame(rows)
        write_table(raw, header + f"\n\nElapsed: {time.time() - start:.0f} s for {rep + 1} replications.",
                    Path(args.out))
        print(f"rep {rep + 1} done, {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
