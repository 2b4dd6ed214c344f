"""Time EntropyBalance (ATT, exact mean balance) on make_synthetic(n), n = 1e4, 1e5, 1e6, beside empirical-calibration.

Run: ``python benchmarks/entropy_balance.py`` (writes benchmarks/results/entropy_balance.md). Needs the benchmark-only
peer ``empirical-calibration`` (``pip install empirical-calibration``; not a dependency of the package).

Both solve the same problem (entropy balancing of the controls to the treated means of the 10 covariates) on the
same data in the same process, alternating run by run, so their ratio is robust to the shared machine's load; each
figure is the median of several runs after one warm-up run. Timed from the same inputs a user holds: the DataFrame
and treatment Series. Ours: ``EntropyBalance("ATT").fit(X, treatment)`` (validation, group statistics, Newton
solve, weights). Theirs: converting to arrays, splitting the groups and ``calibrate(..., objective=ENTROPY)``.
We also time our fit on a plain ndarray (what the call costs without pandas' per-column overhead). WeightIt's
figures (R, another machine) come from ../shared/oracle/weightit-timings.csv.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# keep this folder off sys.path so no script here can shadow an installed package (a former coverage.py shadowed
# the ``coverage`` package that numba imports)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
_spec = importlib.util.spec_from_file_location("_machine", HERE / "_machine.py")
_machine = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_machine)
machine_markdown = _machine.machine_markdown

from balance import EntropyBalance  # noqa: E402
from balance.datasets import make_synthetic  # noqa: E402

TIMINGS = HERE.parents[1] / "shared" / "oracle" / "weightit-timings.csv"
SIZES = (10_000, 100_000, 1_000_000)
REPS = {10_000: 25, 100_000: 9, 1_000_000: 5}


def ours(X, t):
    return np.asarray(EntropyBalance("ATT").fit(X, t).weights_)


def theirs(X, t):
    import empirical_calibration as ec

    values, a = X.to_numpy(dtype=float), t.to_numpy()
    weights, success = ec.calibrate(values[a == 0], values[a == 1], objective=ec.Objective.ENTROPY)
    return weights, success


def timed(func, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    out = func(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def run_size(n):
    data = make_synthetic(n, random_state=20261123)
    X, t = data.X, data.treatment
    Xn, tn = X.to_numpy(dtype=float), t.to_numpy()
    funcs = {"ours": (ours, X, t), "ours_ndarray": (ours, Xn, tn), "ec": (theirs, X, t)}
    for func, *args in funcs.values():  # warm-up: imports, numba cache load, first-call overheads
        func(*args)
    times = {name: [] for name in funcs}
    for _ in range(REPS[n]):
        for name, (func, *args) in funcs.items():  # alternate, so both meet the same load
            wall, cpu, out = timed(func, *args)
            times[name].append((wall, cpu))
            if name == "ours":
                w_ours = out
            elif name == "ec":
                (w_ec, success) = out
    control = tn == 0
    w_c = w_ours[control] / w_ours[control].sum()
    smd = np.abs(w_c @ Xn[control] - Xn[tn == 1].mean(axis=0)) / Xn[tn == 1].std(axis=0, ddof=1)
    med = {name: np.median(np.array(v), axis=0) for name, v in times.items()}
    return {
        "n": n, "ours_wall": med["ours"][0], "ours_cpu": med["ours"][1], "nd_wall": med["ours_ndarray"][0],
        "nd_cpu": med["ours_ndarray"][1], "ec_wall": med["ec"][0], "ec_cpu": med["ec"][1], "ec_success": success,
        "agree": float(np.max(np.abs(w_ec / w_c - 1))), "smd": float(smd.max()), "reps": REPS[n],
        "ratios": [e[0] / o[0] for o, e in zip(times["ours"], times["ec"])],
    }


def weightit_rows():
    if not TIMINGS.exists():
        return {}
    with open(TIMINGS) as fh:
        return {int(r["n"]): float(r["time_median_s"]) for r in csv.DictReader(fh)
                if r["method"] == "ebal" and r["estimand"] == "ATT"}


def main():
    load_start = os.getloadavg()
    rows = []
    for n in SIZES:
        rows.append(run_size(n))
        print({k: v for k, v in rows[-1].items() if k != "ratios"}, flush=True)
    write(rows, load_start)


def write(rows, load_start):
    wi = weightit_rows()
    lines = [
        "# EntropyBalance (ATT, exact mean balance) timings",
        "",
        machine_markdown(),
        f"- load average at the start: {' '.join(f'{v:.2f}' for v in load_start)} (the line above is at the end; "
        "a shared 2-core machine: compare the ratio column, measured run by run)",
        f"- empirical-calibration: {version('empirical-calibration')}, numba: {version('numba')}",
        "",
        "Median over `reps` runs (after a warm-up) on `make_synthetic(n, random_state=20261123)` (10 covariates, about "
        "35 % treated). `ours` = `EntropyBalance(\"ATT\").fit(X, treatment)` from the DataFrame; `ours (ndarray)` the "
        "same fit on `X.to_numpy()`; `e-c` = empirical-calibration's `calibrate(controls, treated, "
        "objective=ENTROPY)` including the conversion to arrays and the group split. Wall and CPU (process) seconds. "
        "`e-c / ours` is the median of the per-run wall-time ratios. `max rel diff w` compares the two packages' "
        "normalised control weights (e-c solves to its own tolerance); `max abs SMD` is our largest remaining "
        "standardised imbalance (treated SD).",
        "",
        "| n | reps | ours wall s | ours CPU s | ours (ndarray) wall s | e-c wall s | e-c CPU s | e-c / ours | "
        "e-c success | max rel diff w | max abs SMD | WeightIt ebal s (R, other machine) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w = wi.get(r["n"])
        lines.append(
            f"| {r['n']:,} | {r['reps']} | {r['ours_wall']:.4f} | {r['ours_cpu']:.4f} | {r['nd_wall']:.4f} | "
            f"{r['ec_wall']:.4f} | {r['ec_cpu']:.4f} | {np.median(r['ratios']):.2f} | {r['ec_success']} | "
            f"{r['agree']:.1e} | {r['smd']:.1e} | {'%.3f' % w if w is not None else 'not timed'} |"
        )
    lines += [
        "",
        "WeightIt 1.5.1's ebal (`weightit-timings.csv`: one fresh single-threaded R process per run, 2-core AMD "
        "EPYC VM, median of 5 runs at n <= 1e4 and of 3 at 1e5; no run at 1e6) is shown for scale only: another "
        "machine, and R's timing includes its formula processing.",
        "",
    ]
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "entropy_balance.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
