"""Speed: IVWDRLearner against econml's DRLearner, same HistGradientBoosting models and folds, in one run.

n = 100,000, p = 10 (setup A), cv = 5, default HistGradientBoostingClassifier/Regressor for the propensity, the
outcome (one model of Y on (X, A) in both) and the final model; econml gets our fold split as its ``cv`` (a list of
(train, test) index pairs). Configurations, all timed in the same process, alternately (the order rotates from one
repeat to the next), medians over repeats; the machine is shared, so the per-repeat ratio ours/econml is the figure:

- default threads: no thread limit (HistGradientBoosting uses all cores through OpenMP); ours with n_jobs=None and
  with n_jobs=2 (folds' nuisance fits on two threads, one OpenMP thread each), econml's default.
- 1 thread: both with OpenMP and BLAS limited to one thread (threadpoolctl, what OMP_NUM_THREADS=1 does for these
  models); also with a binned final model in both, make_pipeline(KBinsDiscretizer(255, ordinal, quantile), HGB).

Then a CPU-time breakdown per stage (one thread, each model class instrumented), and the final fit alone with and
without the π̂κ̂ weights: given sample_weight, scikit-learn computes HistGradientBoosting's bin edges as weighted
quantiles, one at a time.

Usage (no OMP_NUM_THREADS in the environment): python benchmarks/hte_speed.py [--n 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import sys
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import sklearn
import threadpoolctl
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import KBinsDiscretizer

from balance.hte import IVWDRLearner, make_hte_setup
from balance.hte._crossfit import _folds
from balance.hte._data import seed_from

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine_markdown  # noqa: E402

Config = collections.namedtuple("Config", "name who n_jobs one_thread binned")
CONFIGS = [
    Config("default threads: ours, n_jobs=None", "ours", None, False, False),
    Config("default threads: ours, n_jobs=2", "ours", 2, False, False),
    Config("default threads: econml", "econml", None, False, False),
    Config("1 thread: ours", "ours", None, True, False),
    Config("1 thread: econml", "econml", None, True, False),
    Config("1 thread, binned final: ours", "ours", None, True, True),
    Config("1 thread, binned final: econml", "econml", None, True, True),
]
RATIOS = [  # (label, ours, econml)
    ("default threads, n_jobs=None", 0, 2), ("default threads, n_jobs=2", 1, 2), ("1 thread", 3, 4),
    ("1 thread, binned final", 5, 6),
]
SEED = 0


def final_model(binned, cls=HistGradientBoostingRegressor):
    """The final regressor; ``binned`` puts unweighted quantile binning in front (see PseudoOutcomeLearner Notes)."""
    if not binned:
        return cls()
    return make_pipeline(KBinsDiscretizer(n_bins=255, encode="ordinal", strategy="quantile"), cls())


def fit(cfg, d, econml_cv, models=(HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                                   HistGradientBoostingRegressor)):
    prop, out, fin = models
    if cfg.who == "ours":
        est = IVWDRLearner(prop(), out(), final_model(cfg.binned, fin), cv=len(econml_cv), random_state=SEED,
                           n_jobs=cfg.n_jobs)
        return est.fit(d.X, d.treatment, d.y)
    from econml.dr import DRLearner  # imported once in main() before any timing

    est = DRLearner(model_propensity=prop(), model_regression=out(), model_final=final_model(cfg.binned, fin),
                    cv=econml_cv, random_state=SEED)
    return est.fit(d.y, d.treatment, X=d.X)


def timed(cfg, d, econml_cv):
    """(wall s, process CPU s) of one fit."""
    limit = threadpoolctl.threadpool_limits(1) if cfg.one_thread else contextlib.nullcontext()
    with limit:
        wall, cpu = time.perf_counter(), time.process_time()
        fit(cfg, d, econml_cv)
        return time.perf_counter() - wall, time.process_time() - cpu


# -- stage breakdown: model classes that add their CPU time to a table --------------------------------------------
STAGES = collections.defaultdict(float)


def _clocked(stage, method):
    @functools.wraps(method)  # keeps the signature: the learners check that fit takes sample_weight
    def wrapper(self, *args, **kwargs):
        start = time.process_time()
        try:
            return method(self, *args, **kwargs)
        finally:
            STAGES[stage] += time.process_time() - start
    return wrapper


def _instrumented(base, role):
    methods = {"fit": _clocked(f"{role} fit", base.fit)}
    for name in ("predict", "predict_proba"):
        if hasattr(base, name):
            methods[name] = _clocked(f"{role} predict", getattr(base, name))
    return type(f"Clocked{role.title()}", (base,), methods)


CLOCKED = (_instrumented(HistGradientBoostingClassifier, "propensity"),
           _instrumented(HistGradientBoostingRegressor, "outcome"),
           _instrumented(HistGradientBoostingRegressor, "final"))
STAGE_NAMES = ["propensity fit", "propensity predict", "outcome fit", "outcome predict", "final fit",
               "final predict"]


def stage_profile(who, d, econml_cv):
    """CPU seconds per stage of one single-threaded fit; 'other' is everything outside the models."""
    STAGES.clear()
    with threadpoolctl.threadpool_limits(1):
        start = time.process_time()
        fit(Config("profile", who, None, True, False), d, econml_cv, CLOCKED)
        total = time.process_time() - start
    return {**{s: STAGES.get(s, 0.0) for s in STAGE_NAMES}, "other": total - sum(STAGES.values()), "total": total}


def final_fit_alone(d):
    """CPU seconds of our final stage alone: weighted, unweighted, binned pipeline with the weights."""
    est = IVWDRLearner(cv=5, random_state=SEED).fit(d.X, d.treatment, d.y)
    phi, w = np.asarray(est.pseudo_outcome_), np.asarray(est.weights_)
    fits = {"weighted": lambda: HistGradientBoostingRegressor().fit(d.X, phi, sample_weight=w),
            "unweighted": lambda: HistGradientBoostingRegressor().fit(d.X, phi),
            "binned, weighted": lambda: final_model(True).fit(d.X, phi,
                                                              histgradientboostingregressor__sample_weight=w)}
    out = {}
    with threadpoolctl.threadpool_limits(1):
        for name, run in fits.items():
            start = time.process_time()
            run()
            out[name] = time.process_time() - start
    return out


def load():
    return os.getloadavg()[0]


def report(args, header, versions, walls, cpus, loads, profiles, final_alone):
    walls, cpus = np.array(walls), np.array(cpus)
    lines = [
        "# IVWDRLearner vs econml DRLearner: fit time", "", "Machine:", header, "", versions, "",
        f"n = {args.n}, p = 10 (setup A), cv = {args.cv} with the same folds in both (ours, passed to econml as "
        "cv=[(train, test), ...]); default HistGradientBoosting models (propensity, outcome on (X, A), final); "
        f"{args.repeats} repeats, each running every configuration once, the order rotating by one per repeat. "
        "'1 thread': OpenMP and BLAS limited to one thread with threadpoolctl inside the process (as "
        "OMP_NUM_THREADS=1 would); 'default threads': no limit (OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}). 'binned final': the final model of both is "
        "make_pipeline(KBinsDiscretizer(255, ordinal, quantile), HistGradientBoostingRegressor()). Times are wall "
        "seconds (what the target is about); 1-minute load average before and after each repeat.", "",
        "## Wall time per repeat (s)", "",
        "| repeat | load before | load after | " + " | ".join(c.name for c in CONFIGS) + " |",
        "|---|---|---|" + "---|" * len(CONFIGS),
        *[f"| {r + 1} | {lb:.2f} | {la:.2f} | " + " | ".join(f"{t:.1f}" for t in walls[r]) + " |"
          for r, (lb, la) in enumerate(loads)],
        "", "## Ratio ours / econml (wall time, same repeat)", "",
        "| configuration | " + " | ".join(f"repeat {r + 1}" for r in range(len(walls))) + " | median | "
        "median time ours (s) | median time econml (s) |",
        "|---|" + "---|" * (len(walls) + 3),
    ]
    for label, i, j in RATIOS:
        ratio = walls[:, i] / walls[:, j]
        lines.append(f"| {label} | " + " | ".join(f"{q:.2f}" for q in ratio) +
                     f" | **{np.median(ratio):.2f}** | {np.median(walls[:, i]):.1f} | {np.median(walls[:, j]):.1f} |")
    lines += ["", "Process CPU time, median over repeats (s; with threads it adds up all threads): " +
              "; ".join(f"{c.name} {np.median(cpus[:, k]):.1f}" for k, c in enumerate(CONFIGS)) + ".", "",
              "## Breakdown: CPU time per stage, one thread (s)", "",
              "Each model class is instrumented (its fit and predict/predict_proba add their CPU time to a stage); "
              "'other' is everything outside the models (validation, folds, copies, pseudo-outcomes, econml's "
              "bookkeeping).", "",
              "| stage | ours | econml |", "|---|---|---|",
              *[f"| {s} | {profiles['ours'][s]:.2f} | {profiles['econml'][s]:.2f} |"
                for s in [*STAGE_NAMES, "other", "total"]],
              "", f"Our final stage alone, one thread, n = {args.n} (CPU s): HistGradientBoostingRegressor with the "
              f"π̂κ̂ weights {final_alone['weighted']:.2f}, without weights {final_alone['unweighted']:.2f}, binned "
              f"pipeline with the weights {final_alone['binned, weighted']:.2f}. Given sample_weight, scikit-learn "
              "computes each of the 255 bin edges of each feature as a separate weighted quantile (a sort per "
              "edge); econml's DR final stage is unweighted and does not pay this.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/hte_speed.md")
    args = parser.parse_args()
    import econml
    import econml.dr  # noqa: F401  (import cost kept out of the timing)

    d = make_hte_setup("A", n=args.n, p=10, random_state=0)
    folds = _folds(d.treatment.astype(np.int64), args.cv, seed_from(SEED))  # the split IVWDRLearner makes
    econml_cv = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(args.cv)]
    header = machine_markdown()
    versions = (f"econml {econml.__version__}, joblib {joblib.__version__}, threadpoolctl "
                f"{threadpoolctl.__version__}, cpu_count (joblib) {joblib.cpu_count()}.")
    walls, cpus, loads = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fit(CONFIGS[0], d, econml_cv)
        assert np.array_equal(ours.folds_, folds), "econml must get our folds"
        for rep in range(args.repeats):
            before = load()
            order = [(k + rep) % len(CONFIGS) for k in range(len(CONFIGS))]
            wall, cpu = [0.0] * len(CONFIGS), [0.0] * len(CONFIGS)
            for k in order:
                wall[k], cpu[k] = timed(CONFIGS[k], d, econml_cv)
            walls.append(wall), cpus.append(cpu), loads.append((before, load()))
            print(f"repeat {rep + 1}: load {before:.2f} -> {load():.2f}; " +
                  "; ".join(f"{c.name} {t:.1f}" for c, t in zip(CONFIGS, wall)), flush=True)
        profiles = {who: stage_profile(who, d, econml_cv) for who in ("ours", "econml")}
        final_alone = final_fit_alone(d)
    text = report(args, header, versions, walls, cpus, loads, profiles, final_alone)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
