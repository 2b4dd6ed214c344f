"""Time EnergyBalance (ATT) on WeightIt's synthetic timing data, with the energy distance each solver attains.

Run: ``python benchmarks/energy_balance.py [--quick | --only N]`` (writes benchmarks/results/energy_balance.md;
``--only N`` re-runs the rows of sample size N and keeps the other rows of the previous run's JSON). Every fit runs
in a fresh Python process, so its peak memory is that process's high-water mark (``ru_maxrss``, which includes the
interpreter, numpy and the data: about 150 MB before any fit); one small warm-up fit loads the cached numba kernels
before the clock starts. Stage times come from timers wrapped around the estimator's distance products. WeightIt's
figures are from ../shared/oracle/weightit-timings.csv (one fresh single-threaded R process per run, same machine
type). The machine is shared: the load average is recorded before and after each run.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
# keep this folder off sys.path: no script here may shadow an installed package (a former coverage.py did)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
DATA = HERE.parents[1] / "shared" / "data" / "synthetic"
TIMINGS = HERE.parents[1] / "shared" / "oracle" / "weightit-timings.csv"

# (label, n, parameters, repetitions)
RUNS = [
    ("osqp", 2000, {"solver": "osqp"}, 3),
    ("apg", 2000, {"solver": "apg"}, 3),
    ("osqp", 5000, {"solver": "osqp"}, 1),
    ("apg", 5000, {"solver": "apg"}, 3),
    ("auto (apg, full)", 10_000, {}, 3),
    ("apg reference (tol 1e-9)", 10_000, {"solver": "apg", "tol": 1e-9, "max_iter": 20_000}, 1),
    ("apg, 2 parts", 10_000, {"solver": "apg", "partition_size": 4096, "random_state": 0}, 1),
    ("apg, 8 parts", 10_000, {"solver": "apg", "partition_size": 1024, "random_state": 0}, 1),
    ("auto (apg, parts)", 100_000, {"random_state": 0}, 1),
]
QUICK = [run for run in RUNS if run[1] <= 10_000 and run[3] > 1]


# --------------------------------------------------------------------------------------------------------------
# worker: one fit in this process
# --------------------------------------------------------------------------------------------------------------
def worker(n, params):
    import resource

    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(HERE.parent))
    from balance import EnergyBalance
    from balance.weights import _energy

    frame = pd.read_csv(DATA / f"synth_n{n}.csv.gz")
    X, t = frame[[f"x{j}" for j in range(1, 11)]], frame["treat"]
    with warnings.catch_warnings():  # warm-up on 300 rows with the same settings: imports, kernels from the cache
        warnings.simplefilter("ignore")
        EnergyBalance(**{**params, "max_iter": 3}).fit(X.iloc[:300], t.iloc[:300])
    clock = {"exact_s": 0.0, "exact_pairs": 0.0, "square_s": 0.0, "square_calls": 0}
    exact, square, quadform = _energy._Operators.exact, _energy._Operators.square, _energy._Operators.quadform

    def timed_exact(self, rows, cols, V):
        start = time.perf_counter()
        out = exact(self, rows, cols, V)
        clock["exact_s"] += time.perf_counter() - start
        clock["exact_pairs"] += float(len(rows)) * len(cols)
        return out

    def timed_quadform(self, rows, V):  # each pair once: counted as half a product
        start = time.perf_counter()
        out = quadform(self, rows, V)
        clock["exact_s"] += time.perf_counter() - start
        clock["exact_pairs"] += float(len(rows)) ** 2 / 2
        return out

    def timed_square(self, rows, V):
        start = time.perf_counter()
        out = square(self, rows, V)
        clock["square_s"] += time.perf_counter() - start
        clock["square_calls"] += 1
        return out

    _energy._Operators.exact, _energy._Operators.square = timed_exact, timed_square
    _energy._Operators.quadform = timed_quadform
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    fit = EnergyBalance(**params).fit(X, t)
    seconds = time.perf_counter() - start
    a = t.to_numpy()
    result = {
        "n": n, "n_controls": int(np.sum(a == 0)), "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "energy_distance": fit.energy_distance_, "initial_energy_distance": fit.initial_energy_distance_,
        "solver": fit.solver_, "status": fit.status_, "converged": bool(fit.converged_), "n_iter": int(fit.n_iter_),
        "n_partitions": int(getattr(fit, "n_partitions_", 1)), "duality_gap": fit.duality_gap_,
        "load_before": load_before, "load_after": os.getloadavg()[0], **clock,
    }
    print(json.dumps(result))


def kernel_rates():
    """Pairs per second of each kernel on a 4096 x 4096 block (p = 10), median of 5, in a fresh process."""
    import numpy as np

    sys.path.insert(0, str(HERE.parent))
    from balance._kernels._energy import block_matvec, distance_block32, distance_matvec

    pts = np.ascontiguousarray(np.random.default_rng(0).normal(size=(10, 4096)))
    V = np.ones((1, 4096))
    block = distance_block32(pts, pts)
    block_matvec(block, V), distance_matvec(pts, pts, V)
    rates = {}
    for name, call in (("distance_matvec (matrix-free, float64)", lambda: distance_matvec(pts, pts, V)),
                       ("distance_block32 (build the float32 block)", lambda: distance_block32(pts, pts)),
                       ("block_matvec (product with the stored block)", lambda: block_matvec(block, V))):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        rates[name] = 4096**2 / sorted(times)[2]
    print(json.dumps(rates))


def run_worker(args):
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------
def weightit_energy():
    with open(TIMINGS) as fh:
        return {int(r["n"]): (float(r["time_median_s"]), r["peak_rss"]) for r in csv.DictReader(fh)
                if r["method"] == "energy" and r["estimand"] == "ATT"}


def median_run(label, n, params, reps):
    runs = [run_worker(["--worker", str(n), json.dumps(params)]) for _ in range(reps)]
    runs.sort(key=lambda r: r["seconds"])
    best = dict(runs[len(runs) // 2])
    best["label"], best["reps"], best["peak_rss_mb"] = label, reps, max(r["peak_rss_mb"] for r in runs)
    best["loads"] = [round(r["load_before"], 1) for r in runs]
    return best


def main(quick, only=None):
    sys.path.append(str(HERE))
    from _machine import machine_markdown

    header = machine_markdown()
    rates = run_worker(["--rates"])
    runs = QUICK if quick else [run for run in RUNS if only is None or run[1] == only]
    previous = HERE / "results" / "energy_balance.json"
    kept = [r for r in json.loads(previous.read_text())["runs"] if r["n"] != only] if only and previous.exists() else []
    results = []
    for label, n, params, reps in runs:
        print(f"{label} n={n} ...", flush=True)
        try:
            results.append(median_run(label, n, params, reps))
        except subprocess.CalledProcessError as exc:
            results.append({"label": label, "n": n, "failed": exc.stderr.strip().splitlines()[-1]})
    order = {(label, n): i for i, (label, n, _, _) in enumerate(RUNS)}
    results = sorted(kept + results, key=lambda r: order.get((r["label"], r["n"]), len(order)))
    if kept:
        header += f"\n- rows other than n = {only}: from the previous run (see its load column)"
    write(header, rates, results, weightit_energy())


def write(header, rates, results, weightit):
    ref = {r["n"]: r["energy_distance"] for r in results
           if "failed" not in r and (r["solver"] == "osqp" or "reference" in r["label"])}
    lines = [
        "# EnergyBalance (ATT) speed, memory and attained energy distance", "",
        "Produced by `python benchmarks/energy_balance.py`. Each row: a fresh process per fit (median over `reps` fits;",
        "peak memory is the largest `ru_maxrss` of those processes, interpreter and data included). `ED` is the energy",
        "distance between weighted controls and treated on scaled covariates, computed exactly at the returned weights;",
        "`ED / ref` divides by the exact minimum where one was computed (OSQP, or APG run to tol 1e-9 at n = 10,000).",
        "WeightIt 1.5.1 (osqp, dense n x n distance matrix) on the same files: its median time and peak RSS.", "",
        header, "",
        "| n | controls | run | reps | time (s) | peak RSS (MB) | ED | ED / ref | ED unweighted | iters | parts | status | load at start | WeightIt time (s) | WeightIt peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        wt = weightit.get(r["n"], ("-", "-"))
        if "failed" in r:
            lines.append(f"| {r['n']} | | {r['label']} | | failed: {r['failed']} | | | | | | | | | {wt[0]} | {wt[1]} |")
            continue
        ratio = f"{r['energy_distance'] / ref[r['n']]:.4f}" if r["n"] in ref else "-"
        lines.append(
            f"| {r['n']} | {r['n_controls']} | {r['label']} | {r['reps']} | {r['seconds']:.2f} | {r['peak_rss_mb']:.0f} "
            f"| {r['energy_distance']:.4e} | {ratio} | {r['initial_energy_distance']:.4e} | {r['n_iter']} "
            f"| {r['n_partitions']} | {r['status']} | {r['loads']} | {wt[0]} | {wt[1]} |")
    lines += ["", "## Stages (median run of each row)", "",
              "| n | run | exact float64 products (s) | their pairs (1e9) | solver products (s) | solver product calls | rest (s) |",
              "|---|---|---|---|---|---|---|"]
    for r in results:
        if "failed" in r:
            continue
        rest = r["seconds"] - r["exact_s"] - r["square_s"]
        lines.append(f"| {r['n']} | {r['label']} | {r['exact_s']:.2f} | {r['exact_pairs'] / 1e9:.2f} | {r['square_s']:.2f} "
                     f"| {r['square_calls']} | {rest:.2f} |")
    lines += ["", "## Kernel rates (4096 x 4096 block, p = 10, median of 5, this run)", "",
              "| kernel | pairs per second (1e9) |", "|---|---|"]
    lines += [f"| {name} | {rate / 1e9:.3f} |" for name, rate in rates.items()]
    (HERE / "results" / "energy_balance.md").write_text("\n".join(lines) + "\n")
    (HERE / "results" / "energy_balance.json").write_text(json.dumps({"rates": rates, "runs": results}, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(int(sys.argv[2]), json.loads(sys.argv[3]))
    elif sys.argv[1:2] == ["--rates"]:
        kernel_rates()
    else:
        main(quick="--quick" in sys.argv,
             only=int(sys.argv[sys.argv.index("--only") + 1]) if "--only" in sys.argv else None)
