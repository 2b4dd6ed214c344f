"""Time to choose the balance terms with ``interactions=True`` (issue 15): one in-order elimination instead of a
least-squares solve per candidate column.

``TermExpansion.learn`` keeps each power and pairwise product that is not a linear combination of the terms before
it. It used to run one ``lstsq`` on the kept columns' correlation matrix per candidate (O(k^4) for k columns); it
now eliminates the kept columns once, in order (O(k^3)). Both are timed here on the same designs (the old selection
is kept below as the reference it replaced) and their selections are checked identical: on lalonde with
``moments`` 1-3, and on simulated designs with p continuous, binary and 3-level covariates.

Run: python benchmarks/interaction_selection_speed.py  ->  benchmarks/results/interaction_selection_speed.md
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402

import balance.weights._moments as moments_module  # noqa: E402
from balance._validation import CovariateDesign  # noqa: E402
from balance.datasets import load_lalonde  # noqa: E402

NEW = moments_module._independent_columns


def old_independent_columns(M, n_base):
    """The selection before issue 15: one least-squares solve per candidate column."""
    if n_base + 1 >= len(M):
        return list(range(n_base))
    gram, usable = moments_module.correlation_matrix(M)
    keep = list(range(n_base))
    for j in range(n_base, M.shape[1]):
        if not usable[j]:
            continue
        g = gram[keep, j]
        residual = gram[j, j] - g @ np.linalg.lstsq(gram[np.ix_(keep, keep)], g, rcond=None)[0]
        if residual > 1e-10:
            keep.append(j)
    return keep


def learn(selector, X, names, design, moments):
    moments_module._independent_columns = selector
    try:
        start = time.perf_counter()
        terms = moments_module.TermExpansion.learn(X, names, design, moments, True)
        return terms, time.perf_counter() - start
    finally:
        moments_module._independent_columns = NEW


def simulated(n, p, rng):
    """p covariates: a third continuous, a third binary, a third with 3 levels coded as two indicators."""
    cols, names = [], []
    for j in range(p):
        if j % 3 == 0:
            cols.append(rng.normal(size=n)), names.append(f"x{j}")
        elif j % 3 == 1:
            cols.append((rng.random(n) < 0.4).astype(float)), names.append(f"b{j}")
        else:
            level = rng.integers(0, 3, n)
            cols += [(level == 1).astype(float), (level == 2).astype(float)]
            names += [f"c{j}_1", f"c{j}_2"]
    return np.column_stack(cols), names


def main():
    rows = []
    data = load_lalonde()
    design = CovariateDesign.from_data(data.X)
    X, names = design.transform(data.X)
    for moments in (1, 2, 3):
        old, t_old = learn(old_independent_columns, X, names, design, moments)
        new, t_new = learn(NEW, X, names, design, moments)
        assert old == new, f"lalonde moments={moments}: the selections differ"
        rows.append(("lalonde (n = 614)", X.shape[1], moments, len(old.names), t_old, t_new))
    rng = np.random.default_rng(0)
    for p in (10, 20, 30):
        Xs, names_s = simulated(2000, p, rng)
        old, t_old = learn(old_independent_columns, Xs, names_s, None, 2)
        new, t_new = learn(NEW, Xs, names_s, None, 2)
        assert old == new, f"p={p}: the selections differ"
        rows.append((f"simulated p = {p} (n = 2000)", Xs.shape[1], 2, len(old.names), t_old, t_new))
    lines = [
        "# Choosing interaction terms: one elimination instead of a solve per candidate", "",
        "Produced by `python benchmarks/interaction_selection_speed.py`: wall-clock seconds of "
        "`TermExpansion.learn(..., interactions=True)`, one process (the machine is shared: see the load average). "
        "Every row's old and new selections are identical (checked by the script).", "",
        machine_markdown(), "",
        "| data | model-matrix columns | moments | extra terms kept | old (s) | new (s) | speed-up |",
        "|---|---|---|---|---|---|---|",
    ] + [f"| {d} | {k} | {m} | {kept} | {to:.3f} | {tn:.3f} | {to / tn:.0f}x |" for d, k, m, kept, to, tn in rows]
    out = Path(__file__).resolve().parent / "results" / "interaction_selection_speed.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
