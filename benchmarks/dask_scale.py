"""Weighting beyond one machine's memory: 1e8 rows × 20 covariates on a dask cluster of 2 workers × 4 GB.

Data: generated per block from a seed (``make_block(seed, i)``: 20 covariates — 16 normal, 4 binary — a logistic
treatment and a linear outcome with a true ATT of 1), so no process ever holds more than a few blocks and every pass
over the data regenerates them (as reading parquet from disk would re-read them). Timed, on
``LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="4GB", processes=True)``:

1. ``WeightedEffect(PropensityWeights(estimand="ATT"), "simple", vcov="asympt").fit`` (logistic Newton by block
   sums, the weights, the outcome equations and the stacked sandwich from block sums);
2. ``EntropyBalance(estimand="ATT").fit`` (the dual's Newton by block sums);
3. ``balance_table`` of the entropy-balancing weights (mergeable per-block moments).

Recorded: wall time of each step, the peak resident memory of every process (the workers, the scheduler and this
client: ``ru_maxrss``; a fresh cluster per n), and the passes over the data (each worker counts the blocks it
generates; passes = blocks generated / blocks). At n = 1e7 the same run also times the in-memory path (the data as
one DataFrame, in a process of its own so that the client never holds data) and the dask path on the same data
persisted in the workers' memory, for the time per row.

Run: ``python benchmarks/dask_scale.py --n 1e7 1e8 [--block 1e6]``; writes benchmarks/results/dask_scale.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))
from _machine import write_report  # noqa: E402

from balance import EntropyBalance, PropensityWeights, WeightedEffect, balance_table  # noqa: E402

N_NORMAL, N_BINARY = 16, 4
COLUMNS = [f"x{j}" for j in range(N_NORMAL + N_BINARY)]
BETA = np.linspace(-0.3, 0.3, N_NORMAL + N_BINARY)  # treatment model: moderate overlap
GAMMA = np.linspace(1.0, -1.0, N_NORMAL + N_BINARY)  # outcome model


def make_block(seed, block, size):
    """Block ``block`` of the data: a DataFrame with the covariates, the treatment ``a`` and the outcome ``y``.

    Counts itself on the dask worker that runs it (the passes over the data)."""
    try:
        from distributed import get_worker

        worker = get_worker()
        worker.blocks_made = getattr(worker, "blocks_made", 0) + 1
    except (ImportError, ValueError):  # not on a worker (the in-memory reference)
        pass
    rng = np.random.default_rng([seed, block])
    p = N_NORMAL + N_BINARY
    values = np.empty((p + 2, size))  # one row per column: the DataFrame below wraps it without a copy
    values[:N_NORMAL] = rng.standard_normal((N_NORMAL, size))
    values[N_NORMAL:p] = rng.random((N_BINARY, size)) < 0.4
    x = values[:p].T
    values[p] = rng.random(size) < 1.0 / (1.0 + np.exp(-(x @ BETA - 0.5)))
    values[p + 1] = x @ GAMMA + values[p] + rng.standard_normal(size)
    return pd.DataFrame(values.T, columns=[*COLUMNS, "a", "y"], copy=False)


def dask_data(n, block, seed=0):
    import dask.dataframe as dd

    sizes = block_sizes(n, block)
    meta = make_block(seed, 0, 0)
    frame = dd.from_map(lambda args: make_block(seed, *args), list(enumerate(sizes)), meta=meta,
                        enforce_metadata=False)
    return frame, len(sizes)


def peak_memory_mb(client):
    """Peak resident memory (MB) of every process: the workers, the scheduler and this client."""
    def rss(dask_worker=None):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux

    peaks = {f"worker {i}": v for i, v in enumerate(client.run(rss).values())}
    peaks["scheduler"] = client.run_on_scheduler(lambda dask_scheduler=None: rss())
    peaks["client"] = rss()
    return peaks


def blocks_made(client):
    return sum(client.run(lambda dask_worker: getattr(dask_worker, "blocks_made", 0)).values())


def reset_counts(client):
    def reset(dask_worker):
        dask_worker.blocks_made = 0

    client.run(reset)


def run_steps(frame, client, n_blocks, progress=print):
    """Time the three steps on a dask frame; returns rows of (step, seconds, passes, results). ``progress`` is
    called with the rows so far after each step (a long run leaves its figures behind if it is stopped)."""
    X, a, y = frame[COLUMNS], frame["a"], frame["y"]
    rows = []

    def step(name, func):
        reset_counts(client)
        start = time.perf_counter()
        value = func()
        seconds = time.perf_counter() - start
        passes = blocks_made(client) / n_blocks
        rows.append((name, seconds, passes))
        progress(rows)
        return value

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        effect = step("WeightedEffect(PropensityWeights ATT, asympt)",
                      lambda: WeightedEffect(PropensityWeights(estimand="ATT"), "simple", vcov="asympt").fit(X, a, y))
        ebal = step("EntropyBalance ATT", lambda: EntropyBalance(estimand="ATT").fit(X, a))
        table = step("balance_table (ebal weights)", lambda: balance_table(X, a, ebal.weights_, estimand="ATT"))
    return rows, effect, ebal, table


def in_memory_job(n, block):
    """The in-memory reference in its own process (so that the client's memory is the client's): the data as one
    DataFrame, the three steps timed; returns (rows, estimate, SE, peak resident MB of that process)."""
    frame = pd.concat([make_block(0, i, s) for i, s in enumerate(block_sizes(n, block))], ignore_index=True)
    rows, effect = in_memory_steps(frame)
    return rows, effect.estimate_, effect.se_, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def block_sizes(n, block):
    return [block] * (n // block) + ([n % block] if n % block else [])


def in_memory_steps(frame):
    X, a, y = frame[COLUMNS], frame["a"], frame["y"]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        effect = WeightedEffect(PropensityWeights(estimand="ATT"), "simple", vcov="asympt").fit(X, a, y)
        rows.append(("WeightedEffect(PropensityWeights ATT, asympt)", time.perf_counter() - start))
        start = time.perf_counter()
        ebal = EntropyBalance(estimand="ATT").fit(X, a)
        rows.append(("EntropyBalance ATT", time.perf_counter() - start))
        start = time.perf_counter()
        balance_table(X, a, ebal.weights_, estimand="ATT")
        rows.append(("balance_table (ebal weights)", time.perf_counter() - start))
    return rows, effect


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=float, nargs="+", default=[1e7, 1e8])
    parser.add_argument("--block", type=float, default=1e6)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    block = int(args.block)
    lines = ["# Weighting on dask: 20 covariates, 2 workers × 4 GB (`benchmarks/dask_scale.py`)", "",
             f"Blocks of {block:,} rows generated per block from a seed (each pass regenerates them).", ""]
    path = HERE / "results" / "dask_scale.md"
    for n in (int(v) for v in args.n):
        # a fresh cluster per n: every process's peak memory is that of this n
        with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="4GB", processes=True) as cluster, \
                Client(cluster) as client:
            frame, n_blocks = dask_data(n, block)
            head = [f"## n = {n:,} ({n_blocks} blocks, generated per pass)", "",
                    "| step | wall (s) | passes over the data | µs per row |", "|---|---|---|---|"]

            def table(rows):
                return head + [f"| {name} | {s:.1f} | {p:.0f} | {1e6 * s / n:.2f} |" for name, s, p in rows]

            def progress(rows):  # the report so far, rewritten after every step
                write_report(path, lines + table(rows) + ["", f"(n = {n:,} in progress: "
                                                           f"{len(rows)} of 3 steps done)"])

            rows, effect, _, _ = run_steps(frame, client, n_blocks, progress)
            peaks = peak_memory_mb(client)
            lines += table(rows)
            lines += ["", f"ATT {effect.estimate_:.4f} (SE {effect.se_:.5f}; truth 1).", "",
                      "Peak resident memory (MB; workers: this n's cluster; client, with the scheduler in its process: "
                      "since the run started): "
                      + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items() if k != "scheduler"), ""]
            write_report(path, lines)
            if n <= 2e7:  # the same run: in-memory path and dask on persisted data, time per row
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    memory_rows, estimate, se, memory_peak = pool.submit(in_memory_job, n, block).result()
                persisted = client.persist(frame)
                persisted_rows, persisted_effect, _, _ = run_steps(persisted, client, n_blocks, lambda rows: None)
                lines += ["In memory (one process, the data as numpy/pandas; its peak resident memory "
                          f"{memory_peak:.0f} MB) vs dask on the same data persisted in the workers (µs per row, "
                          "ratio):", "", "| step | in memory | dask (persisted) | ratio |", "|---|---|---|---|"]
                for (name, s_mem), (_, s_dask, _) in zip(memory_rows, persisted_rows):
                    lines.append(f"| {name} | {1e6 * s_mem / n:.2f} | {1e6 * s_dask / n:.2f} | "
                                 f"{s_dask / s_mem:.2f} |")
                lines += ["", f"Estimates agree: in memory {estimate:.10f} (SE {se:.10f}), dask "
                          f"{persisted_effect.estimate_:.10f} (SE {persisted_effect.se_:.10f}).", ""]
                del persisted
                write_report(path, lines)


if __name__ == "__main__":
    main()
