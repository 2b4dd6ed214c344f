"""CATE learners with every default on IHDP-type and Nie–Wager data: are the doubly robust ones at least as good?

Hill's (2011) IHDP response surfaces (``make_ihdp_surface``: the 747 real children, new coefficients and noise per
draw; surface B is the "IHDP-100" benchmark's) and Nie & Wager's setups A–D (``make_hte_setup``, n = 1000, p = 10,
test MSE on 5,000 fresh points). Every learner with all defaults (``random_state`` set, nothing else): T, S, DR and
IVW-DR (R with ``--learners T,S,DR,IVW-DR,R``). Reported: mean PEHE (root mean squared error of τ̂(x); in-sample over
the 747 children for IHDP, as is customary there; on the test points for A–D) with its standard error over draws,
and the paired differences DR − T, DR − S, IVW-DR − T, IVW-DR − S (mean ± Monte Carlo SE over draws: the learners
see the same draw, so the SE of the mean difference is that of the per-draw differences).

The seeds start at ``--first-seed`` (2000: fresh; the defaults were chosen on seeds 1001–1003, and the earlier
table used 0–9). The DR and IVW-DR learners fit the same cross-fitted nuisances (same data, same seed, same models;
only the second-stage weights differ), so the second of them reuses the first's (``_shared_crossfit``; the first
draw checks that this gives exactly the predictions of an independent fit).

Usage: PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/hte_ihdp.py [--reps 20] [--designs IHDP-B,NW-A]
       [--out benchmarks/results/hte_ihdp.md]; ``--merge a.csv,b.csv`` writes the table of finished runs.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from _machine import machine_markdown
from hte_setups import markdown
import balance.hte._learners as learners_module
from balance.hte import DRLearner, IVWDRLearner, RLearner, SLearner, TLearner, make_hte_setup, make_ihdp_surface

LEARNERS = {"T": TLearner, "S": SLearner, "DR": DRLearner, "IVW-DR": IVWDRLearner, "R": RLearner}
PAIRS = [("DR", "T"), ("DR", "S"), ("IVW-DR", "T"), ("IVW-DR", "S")]
DESIGNS = "IHDP-B,IHDP-A,NW-A,NW-B,NW-C,NW-D"


def _shared_crossfit(crossfit):
    """``crossfit`` memoised on all its inputs (models with their seeds, data, folds): a repeat call returns a copy
    of the first result (the caller clips it in place)."""
    cache = {}

    def shared(*args):
        key = joblib.hash(args)
        if key not in cache:
            cache.clear()  # one draw at a time
            cache[key] = crossfit(*args)
        return copy.deepcopy(cache[key])

    return shared


def draw(design, seed):
    """(train X, a, y, X to evaluate on, true τ there)."""
    if design.startswith("IHDP"):
        d = make_ihdp_surface(design[-1], random_state=seed)
        return d.X, d.treatment, d.y, d.X, d.tau
    train = make_hte_setup(design[-1], n=1000, random_state=seed)
    test = make_hte_setup(design[-1], n=5000, random_state=seed + 10**6)
    return train.X, train.treatment, train.y, test.X, test.tau


def one_draw(design, seed, names, check=False):
    X, a, y, X_eval, tau = draw(design, seed)
    rows = []
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # clipping warnings are counted below
            est = LEARNERS[name](random_state=seed).fit(X, a, y)
        pred = est.predict(X_eval)
        if check and name == "IVW-DR":
            original = learners_module.crossfit_order2
            learners_module.crossfit_order2 = original.__wrapped__
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    alone = IVWDRLearner(random_state=seed).fit(X, a, y).predict(X_eval)
            finally:
                learners_module.crossfit_order2 = original
            if not np.array_equal(alone, pred):
                raise AssertionError("the shared cross-fit changed the IVW-DR learner's predictions")
        rows.append({"design": design, "draw": seed, "learner": name,
                     "pehe": float(np.sqrt(np.mean((pred - tau) ** 2))),
                     "n_clipped": getattr(est, "n_clipped_", 0), "outcome_form": getattr(est, "outcome_form_", "")})
    return rows


def _mean_se(values, fmt="{:.3f} ± {:.3f}"):
    return fmt.format(values.mean(), values.std(ddof=1) / np.sqrt(values.count()))


def tables(raw, designs):
    """The PEHE table (mean ± SE) and the paired-difference table (mean ± MC SE), both by design."""
    names = [n for n in LEARNERS if n in set(raw["learner"])]
    g = raw.groupby(["design", "learner"])["pehe"]
    pehe = g.apply(_mean_se).unstack()[names].loc[designs]
    pehe.insert(0, "draws", g.count().groupby("design").min().loc[designs])
    pehe["max propensities clipped"] = raw.groupby("design")["n_clipped"].max().loc[designs]
    forms = raw[raw["learner"] == "DR"].groupby("design")["outcome_form"]
    pehe["DR outcome form (single/separate)"] = forms.apply(
        lambda s: f"{(s == 'single').sum()}/{(s == 'separate').sum()}").reindex(designs)
    wide = raw.pivot_table(index=["design", "draw"], columns="learner", values="pehe")
    diffs = pd.DataFrame({f"{x} − {y}": (wide[x] - wide[y]).groupby("design").apply(
        lambda v: f"{v.mean():+.3f} ± {v.std(ddof=1) / np.sqrt(v.count()):.3f}")
        for x, y in PAIRS if x in wide and y in wide}).loc[designs]
    return pehe, diffs


def write(raw, designs, header, elapsed, out):
    pehe, diffs = tables(raw, designs)
    lines = ["# CATE learners with all defaults: PEHE (mean ± SE over draws)", "", header, "",
             (f"Elapsed {elapsed:.0f} s." if elapsed is not None else "Merged from finished runs (their machine facts "
              "and elapsed times are in their own tables).") + " IHDP: in-sample PEHE over the 747 children (Hill 2011 surfaces; B is "
             "IHDP-100's). NW: Nie & Wager setups, n = 1000, PEHE on 5,000 test points. Seeds from "
             f"{raw['draw'].min()} to {raw['draw'].max()}.", "", markdown(pehe.reset_index()), "",
             "Paired differences of PEHE (mean ± Monte Carlo SE over the draws; negative: the doubly robust learner "
             "is better):", "", markdown(diffs.reset_index()), ""]
    Path(out).write_text("\n".join(lines))
    raw.to_csv(Path(out).with_suffix(".csv"), index=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=2000)
    parser.add_argument("--designs", default=DESIGNS)
    parser.add_argument("--learners", default="T,S,DR,IVW-DR")
    parser.add_argument("--out", default="benchmarks/results/hte_ihdp.md")
    parser.add_argument("--merge", default=None, help="comma-separated CSVs of finished runs: write their table")
    args = parser.parse_args()
    designs, names = args.designs.split(","), args.learners.split(",")
    header = machine_markdown()
    if args.merge:
        raw = pd.concat([pd.read_csv(path) for path in args.merge.split(",")], ignore_index=True)
        write(raw, [d for d in designs if d in set(raw["design"])], header, None, args.out)
        return
    shared = _shared_crossfit(learners_module.crossfit_order2)
    shared.__wrapped__ = learners_module.crossfit_order2
    learners_module.crossfit_order2 = shared
    rows, start = [], time.time()
    for rep in range(args.reps):
        seed = args.first_seed + rep
        for design in designs:
            rows += one_draw(design, seed, names, check=rep == 0)
        write(pd.DataFrame(rows), designs, header, time.time() - start, args.out)
        print(f"draw {rep + 1} done, {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
