"""The exact simplex-constrained MMD minimiser of :class:`balance.CBIPM` (``solver="qp"``), solved by Clarabel.

min_w  w'K w - 2 b'w  subject to  sum(w) = 1, w >= 0: a convex quadratic programme (K is a positive semi-definite
Gaussian kernel matrix). Clarabel (Goulart & Chen, 2024) is an interior-point solver for conic programmes and a
dependency of the package.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Interior-point tolerances tighter than Clarabel's defaults (1e-8): the weights are the product, not the objective.
_TOL = 1e-10


def solve_simplex_qp(K, b, max_iter=200):
    """Return ``(w, solved, n_iter)``: the minimiser of w'Kw - 2b'w over the probability simplex, by at most
    ``max_iter`` interior-point iterations."""
    import clarabel  # imported here: only this solver path needs it
    n = len(b)
    P = sp.triu(sp.csc_matrix(2.0 * K), format="csc")  # Clarabel reads the upper triangle of P in 1/2 w'Pw
    A = sp.vstack([sp.csc_matrix(np.ones((1, n))), -sp.identity(n, format="csc")], format="csc")
    rhs = np.concatenate([[1.0], np.zeros(n)])
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = _TOL
    settings.max_iter = int(max_iter)
    cones = [clarabel.ZeroConeT(1), clarabel.NonnegativeConeT(n)]
    solution = clarabel.DefaultSolver(P, -2.0 * b, A, rhs, cones, settings).solve()
    solved = solution.status == clarabel.SolverStatus.Solved
    w = np.clip(np.asarray(solution.x, dtype=np.float64), 0.0, None)  # interior-point iterates sit at +-1e-12
    total = w.sum()
    if not (np.all(np.isfinite(w)) and total > 0):
        return np.full(n, 1.0 / n), False, int(solution.iterations)
    return w / total, bool(solved), int(solution.iterations)
