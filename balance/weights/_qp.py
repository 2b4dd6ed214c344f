"""Convex quadratic programs for balancing weights: one neutral problem form, two solvers, an active-set polish.

A problem is ``minimise ½ x'Px + q'x  subject to  l <= G x <= u,  x >= lb`` with a dense constraint matrix G
(a few balance rows, each over all units) and per-variable lower bounds (``-inf`` for auxiliary variables).
:func:`solve_qp` hands it to Clarabel (interior point; Goulart & Chen 2024) or OSQP (ADMM; Stellato et al. 2020)
and, when P is diagonal and positive (the L2 norm of the weights), polishes the answer: the active constraints
read off the solver's duals define an equality-constrained QP whose KKT system is a small k x k solve, repeated
as a primal-dual active-set method until the KKT conditions hold to rounding. An interior-point method stops
strictly inside the bounds (weights that should be 0 come out as 1e-10, and weights near the bound are off by
up to 1e-5 at n = 1e4); the polish returns the exact vertex, so zero weights are exactly at the floor and the
solution does not depend on the row order of the data.

Both solvers are imported here only, inside the functions, so ``import balance`` does not need them.

References: Goulart, P. J. & Chen, Y. (2024). Clarabel: An interior-point solver for conic programs with
quadratic objectives. arXiv:2405.12762. Stellato, B., Banjac, G., Goulart, P., Bemporad, A. & Boyd, S. (2020).
OSQP: an operator splitting solver for quadratic programs. Math. Prog. Comp. 12, 637–672.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

SOLVERS = ("clarabel", "osqp")
DEFAULT_MAX_ITER = {"clarabel": 200, "osqp": 200_000}  # osqp: WeightIt's / optweight's setting
# A constraint counts as active when its dual exceeds its slack (complementarity makes one of the two ~0).
# KKT conditions of a polished point are accepted to these tolerances (weights average 1, rows are in SMD units).
PRIMAL_TOL = 1e-9
DUAL_TOL = 1e-9
POLISH_ROUNDS = 30
SIMPLEX_TOL = 1e-10  # solve_simplex_qp's Clarabel tolerances


@dataclass(frozen=True)
class QPResult:
    """What a solve returns: the point, the solver's own status word, and what it means."""

    x: np.ndarray
    status: str
    converged: bool
    infeasible: bool
    n_iter: int
    polished: bool
    residual: float  # the solver's largest KKT residual (primal, dual, gap), to compare with its tolerance


def import_solver(solver):
    """Import a solver module, or raise an ImportError that says how to install it."""
    try:
        return importlib.import_module(solver)
    except ImportError as exc:
        raise ImportError(
            f"solver={solver!r} needs the '{solver}' package, a dependency of causal-balance: pip install {solver}."
        ) from exc


def solve_qp(P, q, G, l, u, lb, *, solver="clarabel", tol=1e-8, max_iter=None, polish=False):
    """Solve ``min ½ x'Px + q'x  s.t.  l <= Gx <= u, x >= lb``.

    Parameters
    ----------
    P : sparse matrix of shape (m, m)
        Positive semi-definite (may be all zero: a linear program).
    q : ndarray of shape (m,)
    G : ndarray or sparse matrix of shape (k, m)
        Constraint rows; ``l == u`` marks an equality. Dense rows (balance) or sparse ones (norm linearisation).
    l, u : ndarray of shape (k,)
        Row bounds, ``-inf`` / ``inf`` allowed.
    lb : ndarray of shape (m,)
        Lower bounds of the variables, ``-inf`` for none.
    solver : {"clarabel", "osqp"}
    tol : float
        Clarabel's gap and feasibility tolerances, or OSQP's ``eps_abs`` and ``eps_rel``.
    max_iter : int or None
        None: 200 (Clarabel) or 200,000 (OSQP).
    polish : bool
        Run the active-set polish (P must be diagonal with a positive diagonal).

    Returns
    -------
    QPResult
    """
    max_iter = DEFAULT_MAX_ITER[solver] if max_iter is None else max_iter
    run = _solve_clarabel if solver == "clarabel" else _solve_osqp
    x, status, converged, infeasible, n_iter, row_side, bound_active, residual = run(
        sp.csc_matrix(P), q, sp.csr_matrix(G), l, u, lb, tol, max_iter)
    polished = False
    if polish and not infeasible and np.all(np.isfinite(x)):
        dense = G.toarray() if sp.issparse(G) else np.asarray(G)
        better = polish_diagonal_qp(P.diagonal(), q, dense, l, u, lb, row_side, bound_active)
        if better is not None:
            x, polished, converged = better, True, True
    return QPResult(x=x, status=status, converged=converged, infeasible=infeasible, n_iter=n_iter, polished=polished,
                    residual=residual)


def solve_simplex_qp(K, b, max_iter=200):
    """Return ``(w, solved, n_iter)``: the minimiser of w'Kw - 2b'w over the probability simplex (sum(w) = 1,
    w >= 0; K positive semi-definite), by at most ``max_iter`` Clarabel iterations (CBIPM's ``solver="qp"``).

    The tolerances are tighter than Clarabel's defaults (1e-8) because the weights are the product, not the
    objective. Interior-point iterates sit at ±1e-12 around 0, so the weights are clipped at 0 and renormalised;
    a failed solve gives equal weights and ``solved`` False.

    Examples
    --------
    >>> import numpy as np
    >>> w, solved, _ = solve_simplex_qp(np.eye(2), np.array([0.75, 0.25]))  # optimum: w = b
    >>> np.round(w, 8).tolist(), solved
    ([0.75, 0.25], True)
    """
    n = len(b)
    res = solve_qp(sp.csc_matrix(2.0 * K), -2.0 * b, np.ones((1, n)), np.ones(1), np.ones(1), np.zeros(n),
                   solver="clarabel", tol=SIMPLEX_TOL, max_iter=max_iter)
    x = np.asarray(res.x, dtype=np.float64)
    w = np.clip(x, 0.0, None)
    total = w.sum()
    if not (np.all(np.isfinite(w)) and total > 0):
        return np.full(n, 1.0 / n), False, res.n_iter
    # only round-off is clipped: a negative weight beyond it means the solve failed, which the caller reports
    return w / total, res.converged and bool(x.min() >= -1e-8 * total), res.n_iter


# ---------------------------------------------------------------------------------------------------------------
# solvers
# ---------------------------------------------------------------------------------------------------------------
def _bound_rows(lb):
    """The finite lower bounds as identity rows (sparse), and which variables have one."""
    has_lb = np.isfinite(lb)
    cols = np.flatnonzero(has_lb)
    rows = sp.csr_matrix((np.ones(cols.size), (np.arange(cols.size), cols)), shape=(cols.size, len(lb)))
    return has_lb, rows


def _solve_clarabel(P, q, G, l, u, lb, tol, max_iter):
    """Clarabel's form is ``Ax + s = b, s in K``: equalities in a zero cone, one-sided rows in the non-negative cone."""
    clarabel = import_solver("clarabel")
    eq = np.isfinite(l) & (l == u)
    up = ~eq & np.isfinite(u)
    lo = ~eq & np.isfinite(l)
    has_lb, bound_rows = _bound_rows(lb)
    A = sp.vstack([G[eq], G[up], -G[lo], -bound_rows], format="csc")
    b = np.concatenate([u[eq], u[up], -l[lo], -lb[has_lb]])
    cones = [clarabel.ZeroConeT(int(eq.sum())), clarabel.NonnegativeConeT(int(up.sum() + lo.sum() + has_lb.sum()))]
    if not eq.any():
        cones = cones[1:]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.max_iter = int(max_iter)
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = float(tol)
    sol = clarabel.DefaultSolver(sp.triu(P).tocsc(), q, A, b, cones, settings).solve()
    status = str(sol.status)
    x, z, s = np.asarray(sol.x), np.asarray(sol.z), np.asarray(sol.s)
    # row sides (+1 upper active, -1 lower active, 0 inactive, 2 equality) and active bounds, from the duals
    n_eq, n_up, n_lo = int(eq.sum()), int(up.sum()), int(lo.sum())
    active = z > s
    row_side = np.zeros(len(l), dtype=np.int8)
    row_side[eq] = 2
    row_side[np.flatnonzero(up)[active[n_eq:n_eq + n_up]]] = 1
    row_side[np.flatnonzero(lo)[active[n_eq + n_up:n_eq + n_up + n_lo]]] = -1
    bound_active = np.zeros(len(lb), dtype=bool)
    bound_active[np.flatnonzero(has_lb)[active[n_eq + n_up + n_lo:]]] = True
    converged = status == "Solved"
    infeasible = status in ("PrimalInfeasible", "AlmostPrimalInfeasible")
    # Clarabel stops when both feasibility residuals and the absolute or the relative duality gap are below tol
    gap = abs(sol.obj_val - sol.obj_val_dual)
    gap = min(gap, gap / max(1.0, min(abs(sol.obj_val), abs(sol.obj_val_dual))))
    residual = float(max(sol.r_prim, sol.r_dual, gap))
    return x, status, converged, infeasible, int(sol.iterations), row_side, bound_active, residual


def _solve_osqp(P, q, G, l, u, lb, tol, max_iter):
    """OSQP's form is ``l <= Ax <= u``; the variable bounds are identity rows."""
    osqp = import_solver("osqp")
    has_lb, bound_rows = _bound_rows(lb)
    A = sp.vstack([G, bound_rows], format="csc")
    lower = np.concatenate([l, lb[has_lb]])
    upper = np.concatenate([u, np.full(int(has_lb.sum()), np.inf)])
    model = osqp.OSQP()
    # Tight infeasibility tolerances: with the defaults OSQP declared a feasible n = 1e5 problem infeasible.
    model.setup(sp.triu(P).tocsc(), q, A, lower, upper, verbose=False, eps_abs=tol, eps_rel=tol,
                eps_prim_inf=1e-12, eps_dual_inf=1e-12, max_iter=int(max_iter), polishing=True)
    res = model.solve(raise_error=False)  # a failed solve is reported through the status, as with Clarabel
    status = str(res.info.status)
    x = np.asarray(res.x, dtype=float) if res.x is not None else np.full(len(lb), np.nan)
    y = np.asarray(res.y, dtype=float) if res.y is not None else np.zeros(len(lower))
    ax = A @ x
    k = len(l)
    # OSQP's dual is positive where the upper bound binds and negative where the lower one does
    slack_up, slack_lo = np.maximum(upper[:k] - ax[:k], 0), np.maximum(ax[:k] - lower[:k], 0)
    row_side = np.where(y[:k] > slack_up, 1, np.where(-y[:k] > slack_lo, -1, 0)).astype(np.int8)
    row_side[np.isfinite(l) & (l == u)] = 2
    bound_active = np.zeros(len(lb), dtype=bool)
    bound_active[has_lb] = -y[k:] > np.maximum(ax[k:] - lower[k:], 0)
    converged = status == "solved"
    infeasible = "primal infeasible" in status
    residual = float(max(res.info.prim_res, res.info.dual_res))  # OSQP stops when both are below eps_abs (+ eps_rel)
    return x, status, converged, infeasible, int(res.info.iter), row_side, bound_active, residual


# ---------------------------------------------------------------------------------------------------------------
# polish
# ---------------------------------------------------------------------------------------------------------------
def polish_diagonal_qp(p, q, G, l, u, lb, row_side, bound_active):
    """Exact solution of ``min ½ Σ p x² + q'x  s.t.  l <= Gx <= u, x >= lb`` from a guess of the active set.

    With the active bounds B (x_B = lb_B) and active rows E (G_E x = b_E), stationarity gives
    x_F = -(q_F + G_{E,F}' y) / p_F and y solves the k x k system (G_{E,F} D⁻¹ G_{E,F}') y = rhs. Wrong guesses
    (a free x below its bound, a bound with a negative multiplier, a violated row, an active row whose multiplier
    has the wrong sign) are moved across and the solve repeated (a primal-dual active-set method).

    Returns
    -------
    ndarray or None
        The KKT point, or None when no active set passed the checks in ``POLISH_ROUNDS`` rounds.
    """
    side, bound = row_side.copy(), bound_active & np.isfinite(lb)
    for _ in range(POLISH_ROUNDS):
        rows = np.flatnonzero(side != 0)
        target = np.where(side[rows] == -1, l[rows], u[rows])
        free = ~bound
        Ge = G[rows]
        scaled = Ge[:, free] / p[free]
        lhs = scaled @ Ge[:, free].T
        rhs = -(scaled @ q[free]) - target + Ge[:, bound] @ lb[bound]
        y = np.linalg.lstsq(lhs, rhs, rcond=None)[0] if rows.size else np.zeros(0)
        grad = q + Ge.T @ y  # p x + grad - nu = 0
        x = np.where(bound, lb, -grad / p)
        nu = np.where(bound, p * lb + grad, 0.0)
        gx = G @ x
        scale = max(1.0, np.abs(y).max(initial=0.0), np.abs(nu).max(initial=0.0))
        low_x = free & (x < lb - PRIMAL_TOL)
        neg_nu = bound & (nu < -DUAL_TOL * scale)
        over = (side == 0) & (gx > u + PRIMAL_TOL)
        under = (side == 0) & (gx < l - PRIMAL_TOL)
        wrong = np.zeros(len(side), dtype=bool)
        wrong[rows] = ((side[rows] == 1) & (y < -DUAL_TOL * scale)) | ((side[rows] == -1) & (y > DUAL_TOL * scale))
        residual = np.abs(gx[rows] - target).max(initial=0.0)
        if not (low_x.any() or neg_nu.any() or over.any() or under.any() or wrong.any()) and residual < PRIMAL_TOL:
            return x
        bound = (bound | low_x) & ~neg_nu
        side = np.where(over, 1, np.where(under, -1, np.where(wrong, 0, side))).astype(np.int8)
    return None
