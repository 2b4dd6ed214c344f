"""Kang-Schafer simulation for CBIPM (Kong et al., ICML 2023, the design of the authors' data_generation_KS.R).

Design: balance.datasets.make_kang_schafer (Z ~ N(0, I_4), the original logistic propensity in Z, outcome
210 + 27.4 Z1 + 13.7 (Z2 + Z3 + Z4) + N(0, 1), observed X = Kang-Schafer's nonlinear transforms). The treatment has
no effect, so the true ATT is 0: bias = mean estimate, RMSE = sqrt(mean estimate^2) (as the authors' scripts).

Estimators of the ATT, each plain (weighted difference in means) and OLS-augmented as in the authors' code:
m0 = OLS of y on standardised X fitted on the controls, estimate = mean_treated(y - m0) - sum_controls w (y - m0)
(computed here; the package's WeightedEffect(outcome_model="aipw") is the general form). Columns: the six CBIPM
variants {nonpara, linear} x {MMD, SIPM, WASS} at the paper's defaults, the exact QP-MMD, logistic odds weights
(PropensityWeights, unpenalised MLE), and entropy / energy balancing when balance provides them.

Usage: python benchmarks/cbipm_kang_schafer.py --reps 200 --n 200 1000
Writes benchmarks/results/cbipm_kang_schafer.md (and a CSV of the per-replication estimates). Replications can be
run in blocks (``--start 50 --reps 50``): each run adds its rows to the CSV (a replication's rows are replaced if
it is run again) and the table summarises every row there. Each row records the commit it was computed with.
"""

import argparse
import importlib.util
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

HERE = Path(__file__).resolve().parent
# keep this folder off sys.path: no script here may shadow an installed package (a former coverage.py did)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
_spec = importlib.util.spec_from_file_location("_machine", HERE / "_machine.py")
_machine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_machine)
machine_markdown = _machine.machine_markdown

import balance  # noqa: E402
from balance import CBIPM, PropensityWeights  # noqa: E402
from balance.datasets import make_kang_schafer  # noqa: E402


def estimators(seed):
    ests = {f"CBIPM-{model}-{ipm}": CBIPM(ipm=ipm, model=model, random_state=seed)
            for model in ("nonpara", "linear") for ipm in ("mmd", "sipm", "wass")}
    ests["QP-MMD"] = CBIPM(solver="qp")
    ests["logistic odds"] = PropensityWeights(estimand="ATT")
    if hasattr(balance, "EntropyBalance"):
        ests["entropy"] = balance.EntropyBalance(estimand="ATT")
    if hasattr(balance, "EnergyBalance"):
        ests["energy"] = balance.EnergyBalance(estimand="ATT")
    return ests


def att_estimates(w, t, y, resid):
    """Plain and OLS-augmented weighted differences in means (controls' weights normalised to one)."""
    wc = w[t == 0] / w[t == 0].sum()
    plain = y[t == 1].mean() - wc @ y[t == 0]
    augmented = resid[t == 1].mean() - wc @ resid[t == 0]
    return plain, augmented


def one_replication(n, rep):
    warnings.simplefilter("ignore")
    data = make_kang_schafer(n, random_state=10_000 * n + rep)
    X, t, y = data.X.to_numpy(), data.treatment.to_numpy(), data.y.to_numpy()
    Z = (X - X.mean(0)) / X.std(0)
    design = np.column_stack([np.ones(n), Z])
    beta = np.linalg.lstsq(design[t == 0], y[t == 0], rcond=None)[0]
    resid = y - design @ beta
    rows = []
    for name, est in estimators(rep).items():
        start = time.perf_counter()
        try:
            w = np.asarray(est.fit(data.X, data.treatment).weights_)
            plain, aug = att_estimates(w, t, y, resid)
        except Exception as exc:  # a failed fit is recorded, not hidden
            plain = aug = np.nan
            print(f"n={n} rep={rep} {name}: {type(exc).__name__}: {exc}", flush=True)
        rows.append((n, rep, name, plain, aug, time.perf_counter() - start))
    return rows


def markdown_table(frame):
    """A DataFrame as a markdown table (no tabulate dependency)."""
    frame = frame.reset_index()
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * frame.shape[1]]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--start", type=int, default=0, help="index of the first replication of this block")
    parser.add_argument("--n", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tag", default="", help="suffix of the output files (runs per n can be kept apart)")
    args = parser.parse_args()
    started = time.time()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    rows = []
    reps = range(args.start, args.start + args.reps)
    for n in args.n:
        out = Parallel(n_jobs=args.jobs)(delayed(one_replication)(n, rep) for rep in reps)
        rows += [r + (commit,) for chunk in out for r in chunk]
        print(f"n={n}: replications {reps.start}-{reps.stop - 1} done after {time.time() - started:.0f}s", flush=True)
    frame = pd.DataFrame(rows, columns=["n", "rep", "estimator", "plain", "ols_aug", "seconds", "commit"])
    results = Path(__file__).resolve().parent / "results"
    csv = results / f"cbipm_kang_schafer{args.tag}.csv"
    if csv.exists():  # earlier blocks: keep their rows unless this run recomputed the same replication
        frame = pd.concat([pd.read_csv(csv), frame]).drop_duplicates(["n", "rep", "estimator"], keep="last")
    frame = frame.sort_values(["n", "rep"], kind="stable")
    frame.to_csv(csv, index=False)
    summary = frame.groupby(["n", "estimator"], sort=False).agg(
        bias=("plain", "mean"), rmse=("plain", lambda e: np.sqrt(np.mean(e ** 2))),
        bias_ols=("ols_aug", "mean"), rmse_ols=("ols_aug", lambda e: np.sqrt(np.mean(e ** 2))),
        failed=("plain", lambda e: int(e.isna().sum())), seconds=("seconds", "median"),
        replications=("rep", "nunique"),
    ).round(3)
    commits = ", ".join(sorted(frame["commit"].astype(str).unique()))
    text = "\n".join([
        "# CBIPM on the Kang-Schafer design (ATT, true effect 0)", "",
        "Script: `benchmarks/cbipm_kang_schafer.py`, run in blocks of replications (this block: "
        + " ".join(sys.argv[1:]) + f"); replications per n in the table's last column, computed at commit(s) {commits}; "
        "bias = mean estimate, RMSE = sqrt(mean estimate^2); `_ols` = OLS-augmented (controls-only OLS of y on "
        "standardised X, residuals weighted). CBIPM at the paper's defaults (1000 epochs). seconds = median fit time "
        "(2 parallel jobs on a shared machine, niced below the other engineers' test runs: the times include waiting).",
        "", "## Machine (this block)", "", machine_markdown(),
        f"- wall time of this block: {time.time() - started:.0f} s", "",
        "## Results", "", markdown_table(summary), "",
    ])
    (results / f"cbipm_kang_schafer{args.tag}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
