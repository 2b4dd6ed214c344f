"""Cost of one cluster-bootstrap draw: 80,000 units in 40,000 pairs (issue 15).

The draw used to rebuild cluster membership by scanning all rows once per cluster in every replicate (O(n·G));
it now lays the rows out by cluster once and concatenates the chosen clusters' blocks (O(n) per draw). Both are
timed here on the same generator (the old one is kept below as the reference it replaced), their draws are checked
equal, and a whole WeightedEffect cluster bootstrap is timed with the new draw.

Run: python benchmarks/cluster_bootstrap_speed.py  ->  benchmarks/results/cluster_bootstrap_speed.md
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402

from balance import PropensityWeights, WeightedEffect  # noqa: E402
from balance.datasets import make_synthetic  # noqa: E402
from balance.effects._bootstrap import cluster_layout, replicate_draws  # noqa: E402


def old_draw(rng, codes, n_clusters):
    """The draw before issue 15: one scan of all rows per cluster, in every replicate."""
    chosen = rng.integers(0, n_clusters, n_clusters)
    members = [np.flatnonzero(codes == c) for c in range(n_clusters)]
    return np.concatenate([members[c] for c in chosen])


def best_of(fn, reps):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main():
    n = 80_000
    labels = np.repeat(np.arange(n // 2), 2)[np.random.default_rng(0).permutation(n)]  # pairs, rows shuffled
    codes, uniques = pd.factorize(labels)
    t_old, d_old = best_of(lambda: old_draw(np.random.default_rng(1), codes, len(uniques)), 2)
    t_layout, layout = best_of(lambda: cluster_layout(labels), 5)
    t_new, d_new = best_of(lambda: replicate_draws("bootstrap", np.random.default_rng(1), n, layout), 20)
    assert np.array_equal(d_old, d_new), "the O(n) draw must equal the draw it replaced"

    data = make_synthetic(n, random_state=0)
    reps = 20
    start = time.perf_counter()
    WeightedEffect(PropensityWeights("ATE"), vcov="bootstrap", n_bootstrap=reps, random_state=0, n_jobs=1).fit(
        data.X, data.treatment, data.y, cluster=labels)
    t_fit = time.perf_counter() - start

    lines = [
        "# Cluster bootstrap: cost of one draw (80,000 units in 40,000 pairs)", "",
        "Produced by `python benchmarks/cluster_bootstrap_speed.py`. Wall-clock seconds, best of several runs, one "
        "process (the machine is shared: see the load average).", "",
        machine_markdown(), "",
        "| step | seconds |", "|---|---|",
        f"| old draw (scan all rows per cluster, every replicate) | {t_old:.3f} |",
        f"| new: cluster layout (once per bootstrap) | {t_layout:.4f} |",
        f"| new: one draw | {t_new:.4f} |",
        f"| speed-up of a draw | {t_old / t_new:.0f}x |",
        f"| whole WeightedEffect(PropensityWeights('ATE'), vcov='bootstrap', n_bootstrap={reps}) with clusters, "
        f"n_jobs=1 | {t_fit:.2f} ({t_fit / reps:.3f} per replicate) |", "",
        "The new draw equals the old one exactly (same generator, same rows in the same order).",
    ]
    out = Path(__file__).resolve().parent / "results" / "cluster_bootstrap_speed.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
