"""CATE learners with every default on IHDP-type and Nie–Wager data: are the doubly robust ones at least as good?

Hill's (2011) IHDP response surfaces (``make_ihdp_surface``: the 747 real children, new coefficients and noise per
draw; surface B is the "IHDP-100" benchmark's) and Nie & Wager's setups A–D (``make_hte_setup``, n = 1000, p = 10,
test MSE on 5,000 fresh points). Every learner with all defaults (``random_state`` set, nothing else): T, S,
DR, IVW-DR and R. Reported: mean PEHE (root mean squared error of τ̂(x); in-sample over the 747 children for IHDP,
as is customary there; on the test points for A–D) with its standard error over draws, and the error of ate().

Usage: python benchmarks/hte_ihdp.py [--reps 20] [--out benchmarks/results/hte_ihdp.md]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from _machine import machine_markdown
from hte_setups import markdown
from balance.hte import DRLearner, IVWDRLearner, RLearner, SLearner, TLearner, make_hte_setup, make_ihdp_surface

LEARNERS = {"T": TLearner, "S": SLearner, "DR": DRLearner, "IVW-DR": IVWDRLearner, "R": RLearner}


def draw(design, seed):
    """(train X, a, y, X to evaluate on, true τ there)."""
    if design.startswith("IHDP"):
        d = make_ihdp_surface(design[-1], random_state=seed)
        return d.X, d.treatment, d.y, d.X, d.tau
    train = make_hte_setup(design[-1], n=1000, random_state=seed)
    test = make_hte_setup(design[-1], n=5000, random_state=seed + 10**6)
    return train.X, train.treatment, train.y, test.X, test.tau


def one_draw(design, seed):
    X, a, y, X_eval, tau = draw(design, seed)
    rows = []
    for name, learner in LEARNERS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # clipping warnings are counted below
            est = learner(random_state=seed).fit(X, a, y)
        pehe = float(np.sqrt(np.mean((est.predict(X_eval) - tau) ** 2)))
        rows.append({"design": design, "draw": seed, "learner": name, "pehe": pehe,
                     "n_clipped": getattr(est, "n_clipped_", 0)})
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--designs", default="IHDP-B,IHDP-A,NW-A,NW-B,NW-C,NW-D")
    parser.add_argument("--out", default="benchmarks/results/hte_ihdp.md")
    args = parser.parse_args()
    designs, rows, start = args.designs.split(","), [], time.time()
    header = machine_markdown()
    for rep in range(args.reps):
        for design in designs:
            rows += one_draw(design, rep)
        raw = pd.DataFrame(rows)
        g = raw.groupby(["design", "learner"])["pehe"]
        cell = (g.mean().map("{:.3f}".format) + " ± " + (g.std(ddof=1) / np.sqrt(g.count())).map("{:.3f}".format))
        table = cell.unstack()[list(LEARNERS)].loc[designs]
        clipped = raw.groupby("design")["n_clipped"].max().loc[designs]
        table.insert(0, "draws", g.count().groupby("design").min().loc[designs])
        table["max propensities clipped"] = clipped
        lines = ["# CATE learners with all defaults: PEHE (mean ± SE over draws)", "", header, "",
                 f"Elapsed {time.time() - start:.0f} s. IHDP: in-sample PEHE over the 747 children (Hill 2011 "
                 "surfaces; B is IHDP-100's). NW: Nie & Wager setups, n = 1000, PEHE on 5,000 test points.", "",
                 markdown(table.reset_index()), ""]
        Path(args.out).write_text("\n".join(lines))
        raw.to_csv(Path(args.out).with_suffix(".csv"), index=False)
        print(f"draw {rep + 1} done, {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
