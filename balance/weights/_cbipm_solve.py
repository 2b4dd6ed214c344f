"""The balancing problems of :class:`balance.CBIPM`: set-up, random initialisation, and the calls into the kernels.

Imported by ``CBIPM.fit`` only, so that numba loads when a fit needs it and not at ``import balance``.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .._kernels import _ipm
from .._threads import numba_max_threads, numba_threads

# Below this many unit-discriminator pairs per pass (n x K, n x hidden, or kernel entries for MMD) a pass takes
# under 0.1 ms and threads cost more than they save (much more on a busy machine): n_jobs=None runs those on one thread.
_PARALLEL_WORK = 50_000
# The MMD objective keeps the arm's kernel matrix (8 n_arm^2 bytes); refuse beyond 4 GB rather than swap or crash.
_MMD_MEMORY = 4e9
# Adam's converged_: the objective's mean over the last tenth of the epochs moved by less than this fraction of the
# first epoch's objective. Measured at the default 1000 epochs on lalonde and Kang-Schafer (n = 1000), ATT and ATE:
# at most 4.0e-4 (MMD), 4.2e-3 (SIPM), 3.1e-6 (WASS); at 50 epochs mostly above 1e-2.
PLATEAU_RTOL = 1e-2
PLATEAU_MIN_WINDOW = 5  # epochs per window at least: single Adam steps are too noisy to show a plateau


@dataclass
class ProblemResult:
    """One solved balancing problem: the weighted arm's rows (in the canonical order) and its simplex weights."""

    name: str
    rows: np.ndarray
    w: np.ndarray
    history: np.ndarray | None
    value: float
    converged: bool
    n_iter: int
    coef: np.ndarray | None = None
    left: float = np.nan  # what converged compares with its tolerance: plateau change (Adam), Frank-Wolfe gap (QP)
    threads: int = 1  # numba threads the problem ran on


def solve_problems(est, Z, a, sw, rng):
    """Solve the ATT problem (controls to treated) or the two ATE problems (each arm to the pooled sample)."""
    positive = sw > 0
    if est._estimand() == "ATT":
        specs = [("control", positive & (a == 0), positive & (a == 1))]
    else:
        specs = [("treated", positive & (a == 1), positive), ("control", positive & (a == 0), positive)]
    results = []
    for name, arm, target in specs:
        rows, trows = np.flatnonzero(arm), np.flatnonzero(target)
        alpha = sw[rows].sum() / sw[trows].sum() if (est._estimand() == "ATE" and est.model == "linear") else 0.0
        problem = _Problem(Z[trows], sw[trows] / sw[trows].sum(), Z[rows], sw[rows], alpha, est, rng)
        results.append(problem.solve(name, rows))
    return results


class _Problem:
    """One arm (Xc, base weights) balanced towards a target sample (Xt, probabilities pt)."""

    def __init__(self, Xt, pt, Xc, base, alpha, est, rng):
        self.Xt, self.pt = np.ascontiguousarray(Xt), pt
        self.Xc, self.base = np.ascontiguousarray(Xc), base
        self.alpha, self.est, self.rng = float(alpha), est, rng
        self.d = Xc.shape[1]

    # -- shared pieces ----------------------------------------------------------------------------------------
    def _weight_state(self):
        """Initial weight parameters (equal logits, or PyTorch's default init of a d -> 1 linear layer)."""
        if self.est.model == "nonpara":
            params = np.ones(len(self.base))
        else:
            bound = 1 / np.sqrt(self.d)
            params = self.rng.uniform(-bound, bound, self.d)
        return params, np.zeros_like(params), np.zeros_like(params), np.empty(len(self.base)), np.empty(len(self.base))

    def _run(self, step):
        """Call ``step(start, stop)`` over all epochs, in blocks behind a progress bar when verbose."""
        n_epochs = self.est.n_epochs
        bar = _progress_bar(self.est.verbose, n_epochs, f"CBIPM {self.est.ipm}")
        if bar is None:
            step(0, n_epochs)
            return
        block = max(1, n_epochs // 100)
        with bar:
            for start in range(0, n_epochs, block):
                stop = min(start + block, n_epochs)
                step(start, stop)
                bar.update(stop - start)

    def _result(self, name, rows, w, hist, value, coef):
        converged, change = plateau(hist)
        return ProblemResult(name, rows, w.copy(), hist, float(value), converged, self.est.n_epochs, coef, change)

    def solve(self, name, rows):
        est, n = self.est, len(self.Xt) + len(self.Xc)
        work = {"mmd": n * len(self.Xc), "sipm": n * est.n_sigmoids, "wass": n * est.hidden}[est.ipm]
        with _threads(est.n_jobs, work) as count:
            if est.ipm == "mmd":
                result = self._solve_mmd(name, rows)
            else:
                result = self._solve_sipm(name, rows) if est.ipm == "sipm" else self._solve_wass(name, rows)
        result.threads = count
        return result

    # -- MMD --------------------------------------------------------------------------------------------------
    def _solve_mmd(self, name, rows):
        n_arm = len(self.Xc)
        if 8.0 * n_arm * n_arm > _MMD_MEMORY:
            raise ValueError(f"ipm='mmd' stores the {n_arm} x {n_arm} kernel matrix of the weighted arm "
                             f"({8e-9 * n_arm * n_arm:.0f} GB); use ipm='sipm' or 'wass' (O(n) memory) for samples "
                             "this large.")
        inv = 1.0 / (2.0 * np.atleast_1d(np.asarray(self.est.bandwidth, dtype=np.float64)) ** 2)
        K = _ipm.gaussian_gram(self.Xc, self.Xc, inv)
        b = _ipm.gaussian_gram_dot(self.Xc, self.Xt, self.pt, inv)
        c = float(self.pt @ _ipm.gaussian_gram_dot(self.Xt, self.Xt, self.pt, inv))
        if self.est.solver == "qp":
            from ._qp import solve_simplex_qp

            w, ok, n_iter = solve_simplex_qp(K, b, max_iter=self.est.n_epochs)
            value, grad = _ipm.mmd_objective_grad(K, b, c, w)
            gap = float(grad @ w - grad.min())  # Frank-Wolfe gap on the simplex: >= MMD^2(w) - its minimum
            return ProblemResult(name, rows, w, None, float(value), ok, n_iter, left=gap)
        params, m, v, w, s = self._weight_state()
        model = _ipm.MODEL_CODES[self.est.model]
        hist = np.empty(self.est.n_epochs)
        self._run(lambda start, stop: _ipm.mmd_epochs(
            K, b, c, params, m, v, model, self.Xc, self.base, self.alpha, float(self.est.lr), start, stop, hist, w, s))
        value, _ = _ipm.mmd_objective_grad(K, b, c, w)
        return self._result(name, rows, w, hist, value, self._coef(params))

    # -- SIPM -------------------------------------------------------------------------------------------------
    def _solve_sipm(self, name, rows):
        est, d, K = self.est, self.d, self.est.n_sigmoids
        params, m, v, w, s = self._weight_state()
        bound = 1 / np.sqrt(d)  # PyTorch's default init of a d -> K linear layer
        theta = self.rng.uniform(-bound, bound, (d, K))
        bias = self.rng.uniform(-bound, bound, K)
        XT = _ipm.padded_transpose(np.vstack([self.Xt, self.Xc]))
        theta = _ipm.padded_rows(theta, XT.shape[0])
        lo, hi, seg = _ipm.chunk_bounds(len(self.Xt), len(self.Xc))
        sig = np.empty((K, len(self.Xc)))
        t_cache, cache_ok = np.empty((K, XT.shape[0] + 2)), np.zeros(1, dtype=np.int64)
        moments = [np.zeros_like(p) for p in (theta, theta, bias, bias)]
        hist = np.empty(est.n_epochs)
        model = _ipm.MODEL_CODES[est.model]
        self._run(lambda start, stop: _ipm.sipm_epochs(
            XT, self.Xc, len(self.Xt), self.pt, self.base, self.alpha, model, params, m, v, theta, bias, *moments,
            sig, t_cache, cache_ok, lo, hi, seg, int(est.adv_steps), float(est.adv_lr), float(est.lr), start,
            stop, hist, w, s))
        return self._result(name, rows, w, hist, hist[-1], self._coef(params))

    # -- WASS -------------------------------------------------------------------------------------------------
    def _solve_wass(self, name, rows):
        est, d, H = self.est, self.d, self.est.hidden
        params, m, v, w, s = self._weight_state()
        b_in, b_out = 1 / np.sqrt(d), 1 / np.sqrt(H)  # PyTorch's default init of d -> H -> 1
        W = self.rng.uniform(-b_in, b_in, (d, H))
        cb = self.rng.uniform(-b_in, b_in, H)
        vv = self.rng.uniform(-b_out, b_out, H)
        eo = self.rng.uniform(-b_out, b_out, 1)
        shape = (est.n_epochs, est.adv_steps, est.wass_gp_points)
        gp_ic = self.rng.choice(len(self.Xc), size=shape, p=self.base / self.base.sum())
        gp_it = self.rng.choice(len(self.Xt), size=shape, p=self.pt)
        gp_a = self.rng.random(shape)
        XT = _ipm.padded_transpose(np.vstack([self.Xt, self.Xc]))
        W = _ipm.padded_rows(W, XT.shape[0])
        moments = [np.zeros_like(p) for p in (W, W, cb, cb, vv, vv, eo, eo)]
        lo, hi, seg = _ipm.chunk_bounds(len(self.Xt), len(self.Xc))
        t_cache, cache_ok = np.empty((H, XT.shape[0] + 2)), np.zeros(1, dtype=np.int64)
        phi = np.empty((H, len(self.Xc)))  # the arm's hidden-layer outputs at each weight step
        hist = np.empty(est.n_epochs)
        model = _ipm.MODEL_CODES[est.model]
        clip = float(est.wass_clip) if est.wass_clip is not None else 0.0
        self._run(lambda start, stop: _ipm.wass_epochs(
            XT, self.Xc, len(self.Xt), self.pt, self.base, self.alpha, model, params, m, v, W, cb, vv, eo, *moments,
            gp_ic, gp_it, gp_a, float(est.wass_slope), clip, float(est.wass_gp), t_cache, cache_ok, phi, lo, hi, seg,
            int(est.adv_steps), float(est.adv_lr), float(est.lr), start, stop, hist, w, s))
        return self._result(name, rows, w, hist, hist[-1], self._coef(params))

    def _coef(self, params):
        return params.copy() if self.est.model == "linear" else None


def plateau(hist, rtol=PLATEAU_RTOL):
    """Adam's ``(converged, change)``: ``change`` is how far the objective's mean over the last tenth of the epochs
    moved from its mean over the tenth before, as a fraction of the first epoch's objective; converged when below
    ``rtol``.

    Means over windows smooth the oscillation of the adversarial objectives (SIPM, WASS), and the first epoch's
    objective (the imbalance the path started from) is the scale because the objective itself tends to 0, where a
    change relative to the current value says nothing. Windows hold at least 5 epochs (single steps are noise), so
    fewer than 10 epochs cannot show a plateau: (False, nan).
    """
    window = max(PLATEAU_MIN_WINDOW, len(hist) // 10)
    if len(hist) < 2 * window:
        return False, np.nan
    change = abs(hist[-window:].mean() - hist[-2 * window:-window].mean()) / max(abs(hist[0]), np.finfo(float).tiny)
    return bool(change < rtol), float(change)


@contextmanager
def _threads(n_jobs, work):
    """numba's thread count for one problem, yielded and restored on exit: ``n_jobs`` threads (-1 all, -2 all but
    one, ...), or with None all of numba's current threads from ``work`` pairs per pass on and one thread below. A
    request outside 1..numba's maximum is brought into that range with a warning."""
    import numba

    if n_jobs is None:
        count = numba.get_num_threads() if work >= _PARALLEL_WORK else 1
    else:
        top = numba_max_threads()
        wanted = n_jobs if n_jobs > 0 else top + 1 + n_jobs
        count = min(max(wanted, 1), top)
        if count != wanted:
            warnings.warn(f"CBIPM: n_jobs={n_jobs} asks for {wanted} threads; numba has {top} (NUMBA_NUM_THREADS), "
                          f"so {count} are used.", UserWarning, stacklevel=6)
    with numba_threads(count):
        yield count


def _progress_bar(verbose, total, desc):
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the bar is a convenience (extra "progress"): run without it
        return None
    return tqdm(total=total, desc=desc, unit="epoch")
