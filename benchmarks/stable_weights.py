"""Time StableWeights (ATT, exact balance) on make_synthetic(n), n = 1e3, 1e4, 1e5, with WeightIt's figures beside.

Run: ``python benchmarks/stable_weights.py`` (writes benchmarks/results/stable_weights.md). Each figure is the median
of several fits in this process after one warm-up fit. Both solvers run in the same process, so their ratio is
robust to the shared machine's load. WeightIt's timing file (../shared/oracle/weightit-timings.csv) has no
optweight rows; its only optweight timing is the lalonde ATT run in weight_summary_ATT.csv, shown beside ours.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402

from balance import StableWeights  # noqa: E402
from balance.datasets import load_lalonde, make_synthetic  # noqa: E402

HERE = Path(__file__).resolve().parent
ORACLE = HERE.parents[1] / "shared" / "oracle"
SIZES = (1_000, 10_000, 100_000)
REPS = {1_000: 7, 10_000: 5, 100_000: 3}


def time_fit(make, reps):
    make().fit(*ARGS)  # warm-up: imports, first-call overheads
    times, est = [], None
    for _ in range(reps):
        start = time.perf_counter()
        est = make().fit(*ARGS)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), est


def weightit_optweight_lalonde():
    path = ORACLE / "weightit-lalonde-att" / "weight_summary_ATT.csv"
    if not path.exists():
        return None
    with open(path) as fh:
        row = next(r for r in csv.DictReader(fh) if r["method"] == "optweight")
    return float(row["time_median_s"])


def main():
    global ARGS
    load_start = os.getloadavg()
    rows = []
    lalonde = load_lalonde()
    cases = [("lalonde", lalonde.X, lalonde.treatment)]
    for n in SIZES:
        data = make_synthetic(n, random_state=20261123)
        cases.append((n, data.X, data.treatment))
    for label, X, t in cases:
        ARGS = (X, t)
        reps = REPS.get(label, 7)
        clar, est_c = time_fit(lambda: StableWeights(estimand="ATT"), reps)
        osqp_t, est_o = time_fit(lambda: StableWeights(estimand="ATT", solver="osqp"), reps)
        agree = float(np.max(np.abs(np.asarray(est_c.weights_) - np.asarray(est_o.weights_))))
        rows.append((label, len(t), clar, est_c.n_iter_, est_c.polished_, osqp_t, est_o.n_iter_, est_o.solver_status_,
                     est_o.polished_, agree, float(np.max(np.abs(est_c.smd_)))))
        print(rows[-1], flush=True)
    write(rows, load_start)


def write(rows, load_start):
    wi = weightit_optweight_lalonde()
    lines = [
        "# StableWeights (ATT, exact mean balance) timings",
        "",
        machine_markdown(),
        f"- load average at the start: {' '.join(f'{v:.2f}' for v in load_start)} (the line above is at the end; "
        "a shared machine: compare the ratio column)",
        f"- clarabel: {version('clarabel')}, osqp: {version('osqp')}",
        "",
        "Median wall time of `StableWeights(estimand=\"ATT\").fit(X, treatment)` (validation, QP, polish) after a "
        "warm-up fit, on `make_synthetic(n, random_state=20261123)` (10 covariates). The same run times the OSQP "
        "backend, so the ratio is the robust figure on this shared machine. `max abs diff w` compares the two backends' "
        "weights (0 means bit-identical: both are polished from the same active set); `max abs SMD` is the clarabel "
        "fit's largest remaining imbalance. Default settings: `solver_tol=1e-8` (Clarabel gap/feasibility, OSQP "
        "eps_abs/eps_rel).",
        "",
        "| data | n | clarabel s | iters | polished | osqp s | iters | osqp status | polished | osqp / clarabel | max abs diff w | max abs SMD |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, n, c, ci, cp, o, oi, os_, op, agree, smd in rows:
        lines.append(f"| {label} | {n} | {c:.4f} | {ci} | {cp} | {o:.4f} | {oi} | {os_} | {op} | {o / c:.2f} | "
                     f"{agree:.1e} | {smd:.1e} |")
    lines += [
        "",
        "## WeightIt beside it",
        "",
        "`../shared/oracle/weightit-timings.csv` (columns n, method, estimand, reps, time_median_s, time_min_s, "
        "outcome_fit_time_s, outcome_vcov, peak_rss) has **no optweight rows** (methods glm, ebal, cbps, energy), "
        "so there is no WeightIt optweight figure at n = 1e3, 1e4, 1e5. The one WeightIt optweight timing is the "
        f"lalonde ATT run (`weight_summary_ATT.csv`, median of 5, R osqp on a 2-core AMD EPYC VM): "
        f"**{f'{wi:.3f}' if wi is not None else 'n/a'} s**, beside our lalonde row above (different machines: an "
        "indication, not a ratio).",
    ]
    out = HERE / "results" / "stable_weights.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
