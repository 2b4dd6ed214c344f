"""Weights by uniform transformer (Yu & Wang): accuracy on two designs and the speed of the kernel sum.

Run: ``python benchmarks/uniform_transformer.py [--reps 100] [--speed-only | --accuracy-only]``; writes
``benchmarks/results/uniform_transformer.md`` (accuracy) and ``benchmarks/results/uniform_transformer_speed.md``.
``--inference-reps R [--n-bootstrap B]`` runs only the standard-error check (plug-in SE and the bootstrap of
``WeightedEffect`` against the Monte Carlo sd), written to ``benchmarks/results/uniform_transformer_inference.md``.

Accuracy (ATT, bias and RMSE over replications, median time per fit):

- sanity design (defined here; the spec has no simulation design of the paper): d = 2, n = 1000,
  X ~ N(0, I_2), P(A = 1 | X) = expit(-0.3 + 0.8 x1 - 0.5 x2), Y = x1 + x2^2 + A (1 + 0.5 x1) + N(0, 1);
  truth = the sample ATT, mean of 1 + 0.5 x1 over the treated.
- Kang & Schafer (2007) via ``balance.datasets.make_kang_schafer`` (n = 1000, misspecified covariates x1..x4),
  truth ATT = 0.

Methods: WUNT kernel with the package defaults (Gaussian order 2, constant profile, h = n^(-1/d)); WUNT kernel with
the linear profile and a 4th-order Gaussian kernel; WUNT projection (degree 2) as the estimator returns it (negative
series weights set to zero) and with the signed series weights of the paper (computed from the same fit);
logistic-propensity odds weights (``PropensityWeights(estimand="ATT")``); the naive difference in means. For the
kernel versions the coverage of the 95 % interval from ``plugin_se`` is reported too.

Speed: the kernel weights at n0 = n1 = 50,000, d = 5 (target: under 30 s on 2 cores), median of 3 fits, with the
transformer / kernel-sum breakdown, and the compiled kernel against a NumPy implementation of the same sum on
n0 = n1 = 10,000 (ratio measured in the same run, as the machine is shared).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
# keep this folder off sys.path (no script here may shadow an installed package; a former coverage.py did) and
# import the shared machine facts through the repository root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE.parent)]

import numpy as np  # noqa: E402
from scipy.special import expit  # noqa: E402

from balance import PropensityWeights, UniformTransformer, UniformTransformerWeights  # noqa: E402
from balance.datasets import make_kang_schafer  # noqa: E402
from balance.weights._uniform import kernel_sums, projection_basis, projection_raw_weights  # noqa: E402
from benchmarks._machine import machine_markdown  # noqa: E402

RESULTS = HERE / "results" / "uniform_transformer.md"
SPEED_RESULTS = HERE / "results" / "uniform_transformer_speed.md"
INFERENCE_RESULTS = HERE / "results" / "uniform_transformer_inference.md"


def sanity_design(rng, n=1000):
    X = rng.normal(size=(n, 2))
    a = rng.binomial(1, expit(-0.3 + 0.8 * X[:, 0] - 0.5 * X[:, 1]))
    tau = 1 + 0.5 * X[:, 0]
    y = X[:, 0] + X[:, 1] ** 2 + a * tau + rng.normal(size=n)
    return X, a, y, float(tau[a == 1].mean())


def kang_schafer_design(rng, n=1000):
    data = make_kang_schafer(n, random_state=rng)
    return data.X.to_numpy(), data.treatment.to_numpy(), data.y.to_numpy(), 0.0


def weighted_difference(w, a, y):
    w = np.asarray(w, dtype=float)
    return np.average(y[a == 1], weights=w[a == 1]) - np.average(y[a == 0], weights=w[a == 0])


def signed_projection_att(fitted, a, y):
    """The paper's projection estimate, with the signed series weights (before the package sets negatives to 0)."""
    emb = fitted.arms_[0].embedding
    raw = projection_raw_weights(projection_basis(emb[a == 0], 2, False), projection_basis(emb[a == 1], 2, False))
    return y[a == 1].mean() - raw @ y[a == 0] / raw.sum()


METHODS = {
    "WUNT kernel (defaults)": lambda seed: UniformTransformerWeights(random_state=seed),
    "WUNT kernel (linear profile, order 4)": lambda seed: UniformTransformerWeights(
        profile="linear", kernel_order=4, random_state=seed),
    "WUNT projection (degree 2)": lambda seed: UniformTransformerWeights(method="projection", random_state=seed),
    "logistic PS odds": lambda seed: PropensityWeights(estimand="ATT"),
}


def run_design(design, reps, seed):
    rows = {name: {"est": [], "time": [], "cover": []} for name in [*METHODS, "WUNT projection, signed (paper)",
                                                                     "naive difference"]}
    rng = np.random.default_rng(seed)
    truths = []
    for rep in range(reps):
        X, a, y, truth = design(rng)
        truths.append(truth)
        for name, make in METHODS.items():
            est = make(rep)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # negative series / higher-order weights are counted, not printed
                est.fit(X, a)
            rows[name]["time"].append(time.perf_counter() - start)
            effect = weighted_difference(est.weights_, a, y)
            rows[name]["est"].append(effect)
            if name.startswith("WUNT kernel"):
                se = est.plugin_se(y)
                rows[name]["cover"].append(abs(effect - truth) <= 1.959964 * se)
            if name.startswith("WUNT projection"):
                rows["WUNT projection, signed (paper)"]["est"].append(signed_projection_att(est, a, y))
        rows["naive difference"]["est"].append(y[a == 1].mean() - y[a == 0].mean())
    truths = np.array(truths)
    lines = ["| method | bias | RMSE | sd | 95 % plug-in CI coverage | median time per fit (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        err = np.array(row["est"]) - truths
        cover = f"{np.mean(row['cover']):.2f}" if row["cover"] else ""
        timing = f"{np.median(row['time']):.4f}" if row["time"] else ""
        lines.append(f"| {name} | {err.mean():.3f} | {np.sqrt(np.mean(err ** 2)):.3f} | {err.std(ddof=1):.3f} | "
                     f"{cover} | {timing} |")
    return "\n".join(lines)


def inference(reps, n_bootstrap, seed=3):
    """Sanity design: plug-in SE and the bootstrap of WeightedEffect against the Monte Carlo sd of the estimate."""
    from balance import WeightedEffect

    rng = np.random.default_rng(seed)
    est, truth, plugin, boot = [], [], [], []
    for rep in range(reps):
        X, a, y, tau = sanity_design(rng)
        weighter = UniformTransformerWeights(profile="linear", kernel_order=4, random_state=rep)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = UniformTransformerWeights(**weighter.get_params()).fit(X, a)
            effect = WeightedEffect(weighter, vcov="bootstrap", n_bootstrap=n_bootstrap, random_state=rep).fit(X, a, y)
        est.append(weighted_difference(fitted.weights_, a, y))
        truth.append(tau)
        plugin.append(fitted.plugin_se(y))
        boot.append(float(effect.summary().loc["ATT", "std_err"]))
    err = np.array(est) - np.array(truth)
    plugin, boot = np.array(plugin), np.array(boot)
    lines = [f"WUNT kernel (linear profile, order 4); bootstrap: `WeightedEffect(vcov=\"bootstrap\", "
             f"n_bootstrap={n_bootstrap})`, which refits a clone of the weighter per replicate.", "",
             "| standard error | mean SE | Monte Carlo sd of the estimate | 95 % coverage (normal interval) |",
             "|---|---:|---:|---:|"]
    for name, se in (("plug-in (Hoeffding projection)", plugin), ("bootstrap", boot)):
        lines.append(f"| {name} | {se.mean():.3f} | {err.std(ddof=1):.3f} | "
                     f"{np.mean(np.abs(err) <= 1.959964 * se):.2f} |")
    return "\n".join(lines)


def numpy_kernel_sum(A, B, h, block=500):
    """The same Gaussian kernel sum in blocked NumPy (the peer of the compiled loop)."""
    out = np.empty(len(A))
    for start in range(0, len(A), block):
        diff = (A[start:start + block, None, :] - B[None, :, :]) / h
        out[start:start + block] = np.exp(-0.5 * np.einsum("ijk,ijk->ij", diff, diff)).sum(axis=1)
    return out / (np.sqrt(2 * np.pi) * h) ** A.shape[1]


def speed(n_per_group=50_000, d=5, repeats=3):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2 * n_per_group, d))
    a = np.r_[np.zeros(n_per_group), np.ones(n_per_group)].astype(int)
    UniformTransformerWeights(random_state=0).fit(X[:200], np.arange(200) % 2)  # compile (or load) the kernel first
    # CPU seconds (all threads) beside wall seconds: on a loaded machine the process gets a fraction of the cores,
    # and CPU time / 2 estimates the wall time on two idle cores
    lines = ["| configuration | median fit, wall (s) | runs, wall (s) | median fit, CPU (s) | transformer (s) | "
             "kernel sum (s) |", "|---|---:|---:|---:|---:|---:|"]
    for label, params in (("Gaussian order 2, constant profile (defaults)", {}),
                          ("Gaussian order 4, linear profile", dict(kernel_order=4, profile="linear")),
                          ("Epanechnikov, constant profile", dict(kernel="epanechnikov"))):
        runs, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = UniformTransformerWeights(random_state=0, **params).fit(X, a)
            runs.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        start = time.perf_counter()
        tr = UniformTransformer(profile=params.get("profile", "constant"), random_state=0).fit(X[a == 0], cover=X)
        emb = tr.transform(X)
        t_transformer = time.perf_counter() - start
        start = time.perf_counter()
        kernel_sums(emb[a == 0], emb[a == 1], np.ones((n_per_group, 1)), fitted.bandwidth_,
                    params.get("kernel", "gaussian"), params.get("kernel_order", 2))
        t_kernel = time.perf_counter() - start
        wall = ", ".join(f"{r:.2f}" for r in runs)
        lines.append(f"| {label} | {np.median(runs):.2f} | {wall} | {np.median(cpu):.2f} | "
                     f"{t_transformer:.2f} | {t_kernel:.2f} |")
    # peer: the same sum in NumPy on 10,000 x 10,000 pairs
    A, B = rng.random((10_000, d)), rng.random((10_000, d))
    start = time.perf_counter()
    ours = kernel_sums(A, B, np.ones((10_000, 1)), 0.1)[:, 0]
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    peer = numpy_kernel_sum(A, B, 0.1)
    t_peer = time.perf_counter() - start
    assert np.allclose(ours, peer, rtol=1e-10)
    import numba

    lines.append("")
    lines.append(f"numba {numba.__version__}, {numba.get_num_threads()} threads.")
    lines.append(f"Same Gaussian kernel sum, 10,000 x 10,000 pairs, d = {d}: compiled {t_ours:.2f} s, blocked NumPy "
                 f"{t_peer:.2f} s (ratio {t_peer / t_ours:.1f}x); results agree to rtol 1e-10.")
    return "\n".join(lines)


def _write(path, title, sections):
    header = [f"# {title}", "", "Produced by `benchmarks/uniform_transformer.py`.", "", "## Machine (at start)", "",
              machine_markdown(), ""]
    body = []
    for heading, make in sections:
        body += [f"## {heading}", "", make(), ""]
        print(body[-2], flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header + body + ["## Machine (at end)", "", machine_markdown(), ""]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--accuracy-only", action="store_true")
    parser.add_argument("--inference-reps", type=int, default=0,
                        help="replications of the SE check (plug-in and bootstrap); 0 skips it")
    parser.add_argument("--n-bootstrap", type=int, default=200)
    args = parser.parse_args()
    if args.inference_reps:
        _write(INFERENCE_RESULTS, "Weights by uniform transformer: standard errors", [
            (f"Sanity design (d = 2, n = 1000), {args.inference_reps} replications",
             lambda: inference(args.inference_reps, args.n_bootstrap)),
        ])
        return
    if not args.speed_only:
        _write(RESULTS, "Weights by uniform transformer: ATT accuracy", [
            (f"Sanity design (d = 2, n = 1000), {args.reps} replications",
             lambda: run_design(sanity_design, args.reps, 1)),
            (f"Kang-Schafer ATT (n = 1000, misspecified x1..x4), {args.reps} replications",
             lambda: run_design(kang_schafer_design, args.reps, 2)),
        ])
    if not args.accuracy_only:
        _write(SPEED_RESULTS, "Weights by uniform transformer: speed of the kernel weights", [
            ("Kernel weights at n0 = n1 = 50,000, d = 5 (target < 30 s on 2 cores)", speed),
        ])


if __name__ == "__main__":
    main()
