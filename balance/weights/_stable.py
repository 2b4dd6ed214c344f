"""Stable balancing weights: the least dispersed weights that balance covariate means within a tolerance.

Zubizarreta (2015)'s stable balancing weights, as WeightIt's ``method = "optweight"`` and the R package optweight
compute them: a convex quadratic program (a linear one for the L1 and L-infinity norms) solved by Clarabel or
OSQP through :mod:`balance.weights._qp`.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from .._base import BaseWeighter
from .._exceptions import InfeasibleBalanceError
from .._stats import binary_gap, group_sd, normalise, reliability_sd
from .._validation import check_constant, check_full_rank
from ._moments import TermExpansion, check_moments
from ._qp import DEFAULT_MAX_ITER, SOLVERS, solve_qp

NORMS = ("l2", "l1", "linf")
# Solver round-off below the floor is clamped silently up to this much (weights average 1 within a group);
# anything further below is a material violation and is warned about.
MATERIAL_NEGATIVE = 1e-6


class StableWeights(BaseWeighter):
    """Stable balancing weights: minimum-dispersion weights that balance covariate means (optweight).

    Among all non-negative weights that make the weighted covariate means of the groups equal to the target
    population's means, exactly or within ``tols`` standardised units, choose the weights closest to uniform:
    smallest variance (``norm="l2"``, Zubizarreta 2015), mean absolute deviation (``"l1"``) or largest deviation
    (``"linf"``). This is WeightIt's ``method = "optweight"`` (R package optweight).

    Parameters
    ----------
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        ATT: the treated keep weight 1 and the controls are weighted to the treated means; ATC the reverse; ATE:
        both groups are weighted to the full-sample means. A continuous treatment (ATE only; optweight's
        continuous form): the weights keep the sample means of the treatment and of every term and make each
        treatment-term correlation zero (within ``tols``, in correlation units; see Notes). A multi-category treatment (K ≥ 3 levels, WeightIt's
        ``optweight`` for them): ATE, every level weighted to the full-sample means (tols / 2 each); ATT, every
        level other than the focal level (``treated=``) weighted to the focal level's means; no ATC.
    tols : float or dict, default=0.0
        Balance tolerance, in the units of :func:`balance.balance_table`'s default SMD: standard deviations for
        continuous terms (the treated group's SD for the ATT, the controls' for the ATC, the pooled
        sqrt((s²_T + s²_C)/2) for the ATE (for a multi-category treatment the root mean of the variances of
        all K levels, cobalt's denominator), all without balancing weights) and raw differences in proportion for
        binary terms (two-valued columns, categorical levels). Every term then has ``|SMD| <= tols`` after
        weighting. For the ATE each group is held within ``tols / 2`` of the full-sample mean, so that their
        difference is within ``tols`` (optweight's rule). A dict maps term names (see ``terms_``) or a categorical
        column's name (all its levels) to a tolerance; terms not named are balanced exactly. 0 asks for exact
        balance, which may be infeasible (see :func:`smallest_feasible_tols`). A continuous term whose SD is 0
        is always balanced exactly (its SMD would otherwise be infinite).
    norm : {"l2", "l1", "linf"}, default="l2"
        Dispersion minimised, of the weights w relative to 1 (the within-group mean): ``"l2"`` Σ s(w − 1)², i.e.
        the variance of the weights; ``"l1"`` Σ s|w − 1|; ``"linf"`` max |w − 1|, per group. Only ``"l2"`` is
        strictly convex and so has a unique solution; the L1 and L-infinity solutions may not be unique.
    min_weight : float, default=0.0
        Floor on w, in units of the group's mean weight (optweight's ``min.w``; WeightIt uses 1e-8). Must lie in
        [0, 1).
    moments : int, default=1
        Also balance the powers 2..moments of every non-binary term.
    interactions : bool, default=False
        Also balance the pairwise products of the covariates (except two levels of the same categorical), named
        ``"a:b"``.
    treated : scalar, default=None
        The treated level, when the treatment is not 0/1 or boolean; the focal level of a multi-category ATT.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default="auto"
        What the treatment is; ``"auto"`` decides from the data (two values: binary; categorical or text with more
        levels: multi-category; float: continuous; integers with more than two values: an error asking for this
        parameter). See :mod:`balance._treatment`.
    solver : {"clarabel", "osqp"}, default="clarabel"
        QP solver (both are dependencies of the package). Clarabel, an interior-point
        method, is the default, chosen by measurement (benchmarks/results/stable_weights.md): it needs about 10
        iterations at any n, against hundreds to thousands for OSQP (ADMM, the solver WeightIt uses), and was
        4–10x faster at n = 1e4 and 1e5 (on a par at n = 1e3); OSQP with its default infeasibility tolerances declared a feasible
        n = 1e5 problem infeasible (they are tightened here), stalled at its iteration limit on lalonde with
        squares and interactions, where Clarabel certified infeasibility; after the polish both give the same
        weights, matching WeightIt's to 4e-13.
    solver_tol : float, default=1e-8
        Clarabel's gap and feasibility tolerances, or OSQP's ``eps_abs``/``eps_rel``. For ``norm="l2"`` the
        solver's point only has to reveal which constraints bind: the polish then returns the exact optimum
        (see Notes), identical from 1e-4 to 1e-10 in our runs, so this mostly trades speed for robustness.
    max_iter : int or None, default=None
        Solver iteration limit; None means 200 for Clarabel, 200,000 for OSQP.
    missing : {"error", "indicator"}, default="error"
        Missing covariate values: ``"error"`` raises naming the column; ``"indicator"`` adds a missingness
        indicator ``<column>:<NA>`` per incomplete column and fills its missing values with the observed median
        (WeightIt's and cobalt's approach), so the missingness pattern is balanced too.

    Attributes
    ----------
    weights_ : Series or ndarray of shape (n_samples,)
        Analysis weights s·w, sampling weights s included. Scale (WeightIt 1.5.1's for optweight): each group's
        weights sum to the group's size, Σ s over the group (its count without sampling weights); the focal group
        of an ATT/ATC keeps its sampling weights. The scale changes no balance statistic, ESS or weighted
        difference in means.
    terms_ : list of str
        The balanced terms: covariates with every level of a categorical, then powers, then interactions
        (constant ones dropped).
    tols_ : ndarray of shape (n_terms,)
        Tolerance of each term, in SMD units.
    smd_ : ndarray of shape (n_terms,), or (n_levels, n_terms) for a multi-category treatment
        Continuous treatment: the treatment-term correlation of each term after weighting, in the units of
        ``tols`` (see Notes).
        Mean difference (treated − control) of each term after weighting, in the units of ``tols``.
        Multi-category: per level (in the order of ``treatment_levels_``), its weighted mean minus the target's
        (the full sample's, or the focal level's), in the same units.
    solver_status_ : str
        The solver's own status word (e.g. Clarabel's ``"Solved"``, OSQP's ``"solved"``).
    converged_ : bool
        Whether the solver reached its tolerance or the polish verified the optimum; otherwise a ConvergenceWarning
        states the solver's KKT residual.
    n_iter_ : int
        Solver iterations, at most ``max_iter`` (a polished L2 solution is exact even when the solver stopped at
        its limit: ``converged_`` is then True).
    polished_ : bool
        Whether the L2 active-set polish found and verified the exact optimum.
    n_clamped_ : int
        Weights the solver returned below ``min_weight`` (round-off) and that were set to it; a
        ConvergenceWarning is raised when any was more than 1e-6 below.
    treatment_levels_, n_features_in_, feature_names_in_
        As in :class:`balance.PropensityWeights`.

    Raises
    ------
    ValueError
        When no weights satisfy the constraints (e.g. exact balance with a treated value outside the controls'
        range); the message gives the smallest feasible common tolerance.
    RuntimeError
        When the solver stops (e.g. at a tiny ``max_iter``) at a point where a whole group's weights are 0.

    Warns
    -----
    ConvergenceWarning
        When the solver stops short of its tolerance (stating its KKT residual and naming the term with the
        largest remaining excess imbalance) or returns weights materially below ``min_weight``.

    See Also
    --------
    smallest_feasible_tols : the smallest common tolerance for which the problem is feasible.
    balance.balance_table : balance before and after weighting.

    Notes
    -----
    For the ATT, with s the sampling weights, S_C = Σ_C s, μ the s-weighted treated means of the terms z and σ
    their scales (SDs, or the value gap of binary terms), the control weights solve

        minimise Σ_C s_i (w_i − 1)²  subject to  Σ_C s_i w_i = S_C,
        |Σ_C s_i w_i (z_ij − μ_j)| / (σ_j S_C) <= tols_j for every term j,  w_i >= min_weight,

    and the treated keep w = 1; ``weights_`` = s·w. The ATC swaps the groups; the ATE solves the same problem in
    each group with the full-sample means as targets and tols/2. Sampling weights enter as optweight 1.0.0
    does: the dispersion is s-weighted and the constraints use s·w. A unit of integer sampling weight k is then
    exactly k copies of it (the copies share one weight by symmetry and convexity), so the weights' variance is
    that of the population the sample stands for.

    A continuous treatment A (optweight 1.0.0's form, as WeightIt's ``optweight``): with ã and z̃ the treatment and
    the terms centred at their s-weighted means and divided by their SDs (n − 1 form; a two-valued term by its SD
    with divisor n, cobalt's sqrt(p(1 − p)) for a 0/1 column), the weights solve

        minimise Σ s_i (w_i − 1)²  subject to  Σ s_i w_i = S,  Σ s_i w_i ã_i = 0,  Σ s_i w_i z̃_ij = 0,
        |Σ s_i w_i ã_i z̃_ij| / (S (1 − 1/N)) <= tols_j for every term j,  w_i >= min_weight,

    S = Σ s, N the number of units: the means are kept exactly and the correlations are bounded (the
    (1 − 1/N) makes the bound the usual correlation at equal weights). With ``tols=0`` A is uncorrelated with
    every term. :func:`smallest_feasible_tols` relaxes the correlations only.

    Powers and products that are exact linear combinations of earlier terms are left out of the constraints
    (:class:`~balance.weights._moments.TermExpansion`): exact balance of the others implies theirs, but with
    ``tols > 0`` their imbalance is bounded only through the others. Tolerances use SDs computed with the
    sampling weights as reliability weights (cobalt's n − 1 form), so with ``tols > 0`` a unit of sampling
    weight k is k copies of it except for that correction in the SD.

    For ``norm="l2"`` the solver's point is polished: the constraints active there (read off the duals) give an
    equality-constrained QP whose KKT system is solved exactly, repeated as a primal-dual active-set method until
    every KKT condition holds to 1e-9 (``polished_``). Weights at the floor are then exactly ``min_weight`` and
    the answer does not depend on the row order. If the polish fails the solver's point is kept.

    Stable balancing weights are not the solution of smooth estimating equations, so the class has no
    M-estimation form (``_m_parts``); standard errors come from the HC0 sandwich with the weights held fixed, or
    from a bootstrap that refits the weights (WeightIt's defaults for optweight).

    References
    ----------
    Zubizarreta, J. R. (2015). Stable weights that balance covariates for estimation with incomplete outcome
    data. JASA 110(511), 910–922.
    Greifer, N. (2025). optweight: Optimization-Based Stable Balancing Weights. R package 1.0.0.
    Greifer, N. (2024). WeightIt: Weighting for Covariate Balance in Observational Studies. R package 1.5.1.

    Examples
    --------
    >>> from balance import StableWeights, balance_table
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> sbw = StableWeights(estimand="ATT").fit(data.X, data.treatment)
    >>> sbw.converged_, round(float(sbw.weights_[data.treatment == 0].sum()), 6)
    (True, 429.0)
    >>> bool(balance_table(data.X, data.treatment, sbw)["smd_adj"].abs().max() < 1e-8)
    True
    """

    _supported_estimands = ("ATE", "ATT", "ATC")
    _supported_treatment_types = ("binary", "multi-category", "continuous")
    _dask_refusal = "its quadratic programme is solved over all units at once"
    _multi_category_estimands = ("ATE", "ATT")

    def __init__(self, estimand="ATT", *, tols=0.0, norm="l2", min_weight=0.0, moments=1, interactions=False,
                 treated=None, treatment_type="auto", solver="clarabel", solver_tol=1e-8, max_iter=None,
                 missing="error"):
        self.estimand = estimand
        self.tols = tols
        self.norm = norm
        self.min_weight = min_weight
        self.moments = moments
        self.interactions = interactions
        self.treated = treated
        self.treatment_type = treatment_type
        self.solver = solver
        self.solver_tol = solver_tol
        self.max_iter = max_iter
        self.missing = missing

    def fit(self, X, treatment, sample_weight=None):
        """Solve for the weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        treatment : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Sampling (base) weights; see Notes for how they enter.

        Returns
        -------
        self
        """
        self._check_params()
        problem = _Problem.from_fit(self, X, treatment, sample_weight)
        self.terms_, self.tols_ = problem.names, problem.tols
        result = problem.solve(self.norm, self.min_weight, self.solver, self.solver_tol, self.max_iter)
        if result.infeasible:
            raise InfeasibleBalanceError(_infeasible_message(problem, self))
        if not np.all(np.isfinite(result.x)):
            raise RuntimeError(f"the {self.solver} solver failed ({result.status}) without a solution; try the other solver.")
        w, self.n_clamped_, lowest = problem.clamp(result.x[:problem.n_free], self.min_weight)
        empty = problem.empty_groups(w)
        if empty:  # an early iterate with a whole group at the floor 0: no weights can be formed (0 / 0)
            raise RuntimeError(
                f"StableWeights: the {self.solver} solver stopped with status {result.status!r} after {result.n_iter} "
                f"iterations at a point where every weight of the {problem.group_name(empty[0])} is at or "
                "below min_weight=0, so no weights can be formed; raise max_iter or try the other solver.")
        weights = problem.weights(w)
        self.smd_ = problem.smd(weights)
        self.solver_status_, self.converged_ = result.status, result.converged
        self.n_iter_, self.polished_ = result.n_iter, result.polished
        if lowest < self.min_weight - MATERIAL_NEGATIVE:
            warnings.warn(
                f"StableWeights: the solver returned {self.n_clamped_} weights below min_weight={self.min_weight} (lowest {lowest:.2e} "
                "in units of the group mean); they were set to min_weight, which loosens balance slightly.",
                ConvergenceWarning, stacklevel=2,
            )
        if not result.converged:
            excess = problem.excess(self.smd_)
            worst = int(np.argmax(excess))
            max_iter = DEFAULT_MAX_ITER[self.solver] if self.max_iter is None else self.max_iter
            warnings.warn(
                f"StableWeights: the {self.solver} solver stopped with status {result.status!r} after {result.n_iter} "
                f"iterations (max_iter={max_iter}) with KKT residual {result.residual:.2e} > solver_tol="
                f"{self.solver_tol}; the largest imbalance beyond tols is {max(excess[worst], 0.0):.2e} "
                f"{'correlation' if problem.data.treatment.kind == 'continuous' else 'SMD'} units on "
                f"{self.terms_[worst]!r}. Raise max_iter or solver_tol, or try the other solver.",
                ConvergenceWarning, stacklevel=2,
            )
        return self._set_weights(weights, problem.data)

    def _check_params(self):
        if self.norm not in NORMS:
            raise ValueError(f"norm={self.norm!r} is not supported; choose one of {list(NORMS)}.")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver={self.solver!r} is not supported; choose one of {list(SOLVERS)}.")
        if not (isinstance(self.min_weight, numbers.Real) and 0 <= self.min_weight < 1):
            raise ValueError(f"min_weight={self.min_weight!r} must be a number in [0, 1) (weights average 1 per group).")
        check_moments(self.moments, self.interactions)
        if not (isinstance(self.solver_tol, numbers.Real) and self.solver_tol > 0):
            raise ValueError(f"solver_tol={self.solver_tol!r} must be a positive number.")
        if self.max_iter is not None and not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError(f"max_iter={self.max_iter!r} must be None or a positive integer.")
        _check_tols_type(self.tols)


def smallest_feasible_tols(X, treatment, *, estimand="ATT", sample_weight=None, min_weight=0.0, moments=1,
                           interactions=False, treated=None, solver="clarabel"):
    """The smallest common tolerance ``tols`` for which :class:`StableWeights` has a solution.

    Solves the linear program "minimise t subject to |SMD_j| <= t for every term and the weights' constraints"
    (for the ATE, each group within t/2 of the target). Any ``tols`` above the returned value
    is feasible; at the value itself the problem is feasible only up to solver tolerance, so add a margin.

    Parameters
    ----------
    X, treatment, sample_weight
        As in :meth:`StableWeights.fit`.
    estimand, min_weight, moments, interactions, treated, solver
        As in :class:`StableWeights`.

    Returns
    -------
    float
        The smallest feasible tolerance, in the SMD units of ``tols`` (0 when exact balance is feasible, up to
        solver tolerance).

    Examples
    --------
    >>> from balance.weights import smallest_feasible_tols
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> smallest_feasible_tols(data.X, data.treatment) < 1e-8
    True
    """
    est = StableWeights(estimand=estimand, min_weight=min_weight, moments=moments, interactions=interactions,
                        treated=treated, solver=solver)
    est._check_params()
    return _Problem.from_fit(est, X, treatment, sample_weight).smallest_tols(min_weight, solver)[0]


# ---------------------------------------------------------------------------------------------------------------
# the optimisation problem
# ---------------------------------------------------------------------------------------------------------------
class _Problem:
    """Balance rows and bookkeeping for one fit: which units are free, their groups, the scaled constraints."""

    def __init__(self, data, names, tols, Z, center, scale, free_groups):
        self.data, self.names, self.tols = data, names, tols
        self.Z, self.center, self.scale = Z, center, scale
        a, s = data.a, data.sample_weight
        self.free = np.isin(a, free_groups) & (s > 0)
        self.n_free = int(self.free.sum())
        self.groups = list(free_groups)
        self.half = len(free_groups) == data.treatment.n_levels  # ATE: each group within tols / 2 of the target

    @classmethod
    def from_fit(cls, est, X, treatment, sample_weight):
        data = est._validate_data(X, treatment, sample_weight)
        check_constant(data.X, data.names)
        check_full_rank(data.X, data.names)
        full, full_names = est.design_.transform(X, drop_first=False)
        Z, names, origin = _expand_terms(full, full_names, _origins(est.design_), est.moments, est.interactions)
        tols = _resolve_tols(est.tols, names, origin, est.design_)
        if data.treatment.kind == "continuous":
            return _ContinuousProblem(data, names, tols, Z)
        estimand = est._estimand()
        a, s = data.a, data.sample_weight
        n_levels = data.treatment.n_levels
        if data.treatment.kind == "multi-category":  # the ATT's target is the focal level
            focal = data.treatment.focal if estimand == "ATT" else None
        else:
            focal = {"ATT": 1, "ATC": 0}.get(estimand)
        center = _weighted_mean(Z, s) if focal is None else _weighted_mean(Z[a == focal], s[a == focal])
        scale, zero_sd = _term_scales(Z, a, s, focal, n_levels)
        tols[zero_sd] = 0.0  # an SMD with a zero SD is infinite unless the means are equal
        free_groups = [g for g in range(n_levels) if g != focal]
        return cls(data, names, tols, Z, center, scale, free_groups)

    def empty_groups(self, w):
        """The reweighted groups whose weights ``w`` (of the free units) are all at most 0."""
        free_groups = self.data.a[self.free]
        return [g for g in self.groups if not np.any(w[free_groups == g] > 0)]

    def _free_codes(self):
        """Position in ``groups`` of each free unit's group."""
        return np.searchsorted(self.groups, self.data.a[self.free])

    def _fixed_rows(self, bound):
        """Rows :meth:`smallest_tols` never relaxes (the sums of the weights): NaN bounds, at value 1."""
        return np.isnan(bound)

    def group_name(self, g):
        if self.data.treatment.kind == "binary":
            return f"{('control', 'treated')[g]} group"
        return f"level {self.data.treatment.levels[g]!r}"

    def _balance_rows(self):
        """Dense rows G and their bound: per free group, the sum row (= 1) then one row per term (|.| <= bound)."""
        a, s = self.data.a[self.free], self.data.sample_weight[self.free]
        centred = (self.Z[self.free] - self.center) / self.scale
        rows, bound = [], []
        for g in self.groups:
            in_g = a == g
            share = np.where(in_g, s / s[in_g].sum(), 0.0)
            rows.append(share[None, :])
            rows.append(centred.T * share)
            bound.append(np.concatenate([[np.nan], self.tols / 2 if self.half else self.tols]))
        return np.vstack(rows), np.concatenate(bound)

    def solve(self, norm, min_weight, solver, tol, max_iter):
        G, bound = self._balance_rows()
        is_sum = np.isnan(bound)
        l, u = np.where(is_sum, 1.0, -bound), np.where(is_sum, 1.0, bound)
        m = self.n_free
        share = np.abs(G[is_sum]).sum(axis=0)  # s_i / S_g of each free unit
        lb_w = np.full(m, float(min_weight))
        if norm == "l2":
            return solve_qp(sp.diags(share), -share, G, l, u, lb_w, solver=solver, tol=tol, max_iter=max_iter,
                            polish=True)
        # L1: t_i >= |w_i - 1|, minimise Σ share_i t_i. L-infinity: t_g >= |w_i - 1| for i in group g, minimise Σ t_g.
        if norm == "l1":
            link = sp.identity(m, format="csr")
            q = np.concatenate([np.zeros(m), share])
        else:
            link = sp.csr_matrix((np.ones(m), (np.arange(m), self._free_codes())),
                                 shape=(m, len(self.groups)))
            q = np.concatenate([np.zeros(m), np.ones(len(self.groups))])
        n_aux = link.shape[1]
        eye = sp.identity(m, format="csr")
        rows = sp.vstack([sp.hstack([sp.csr_matrix(G), sp.csr_matrix((G.shape[0], n_aux))]),
                          sp.hstack([-eye, link]), sp.hstack([eye, link])]).tocsr()
        l_all = np.concatenate([l, np.full(m, -1.0), np.full(m, 1.0)])
        u_all = np.concatenate([u, np.full(2 * m, np.inf)])
        lb = np.concatenate([lb_w, np.full(n_aux, -np.inf)])
        P = sp.csc_matrix((m + n_aux, m + n_aux))
        return solve_qp(P, q, rows, l_all, u_all, lb, solver=solver, tol=tol, max_iter=max_iter)

    def smallest_tols(self, min_weight, solver):
        """LP: minimise t subject to |row_j w| <= t (t/2 for the ATE); returns (t, names of the binding terms)."""
        G, bound = self._balance_rows()
        is_sum = self._fixed_rows(bound)
        c = 0.5 if self.half else 1.0
        m, n_bal = self.n_free, int((~is_sum).sum())
        # sum rows (= 1), then row_j w - c t <= 0 and row_j w + c t >= 0
        rows = np.vstack([np.hstack([G[is_sum], np.zeros((int(is_sum.sum()), 1))]),
                          np.hstack([G[~is_sum], np.full((n_bal, 1), -c)]),
                          np.hstack([G[~is_sum], np.full((n_bal, 1), c)])])
        fixed = np.where(np.isnan(bound), 1.0, 0.0)[is_sum]  # sums 1, other fixed rows (continuous means) 0
        l = np.concatenate([fixed, np.full(n_bal, -np.inf), np.zeros(n_bal)])
        u = np.concatenate([fixed, np.zeros(n_bal), np.full(n_bal, np.inf)])
        lb = np.concatenate([np.full(m, float(min_weight)), [0.0]])
        q = np.zeros(m + 1)
        q[-1] = 1.0
        result = solve_qp(sp.csc_matrix((m + 1, m + 1)), q, rows, l, u, lb, solver=solver, tol=1e-10)
        if result.infeasible or not np.all(np.isfinite(result.x)):
            return np.nan, []
        t = float(result.x[-1])
        reached = np.abs(G[~is_sum] @ result.x[:m]) / c
        n_terms = len(self.names)
        binding = sorted({self.names[j % n_terms] for j in np.flatnonzero(reached >= t * (1 - 1e-6) - 1e-12)})
        return t, binding

    def clamp(self, w, min_weight):
        """Set weights below the floor to it; return (w, how many, the lowest value before clamping)."""
        low = w < min_weight
        lowest = float(w.min()) if w.size else float(min_weight)
        return np.where(low, min_weight, w), int(low.sum()), lowest

    def weights(self, w):
        """s·w for the free units, rescaled so each free group sums to Σ s exactly; s for the focal group."""
        s = self.data.sample_weight
        out = s.astype(np.float64).copy()
        out[self.free] = s[self.free] * w
        for g in self.groups:
            in_g = self.data.a == g
            out[in_g] *= s[in_g].sum() / out[in_g].sum()
        return out

    def smd(self, weights):
        """Binary: the mean difference treated − control in SMD units. Multi-category: per level (rows in level
        order) its mean minus the target's (the full sample's, or the focal level's), in SMD units."""
        a = self.data.a
        if self.data.treatment.kind == "multi-category":
            return np.stack([(_weighted_mean(self.Z[a == g], weights[a == g]) - self.center) / self.scale
                             for g in range(self.data.treatment.n_levels)])
        treated = _weighted_mean(self.Z[a == 1], weights[a == 1])
        control = _weighted_mean(self.Z[a == 0], weights[a == 0])
        return (treated - control) / self.scale

    def excess(self, smd):
        """Imbalance beyond the tolerance per term (what ``tols`` bounds: the binary difference, or each
        multi-category level's distance from the target, within tols / 2 for the ATE)."""
        if smd.ndim == 1:
            return np.abs(smd) - self.tols
        return np.abs(smd).max(axis=0) - (self.tols / 2 if self.half else self.tols)


class _ContinuousProblem(_Problem):
    """optweight's continuous form: one group (every unit with positive sampling weight) whose weights keep the
    means of the treatment and of every term (equality rows) and bound each treatment-term correlation by tols.

    Rows in correlation units as optweight 1.0.0: with ã, z̃ the treatment and the terms centred at their
    (sampling-weighted) means and divided by their SDs (n − 1 form; a two-valued term by its SD with divisor n,
    cobalt's sqrt(p(1 − p)) for a 0/1 column), the correlation row is Σ s w ã z̃ / (S (1 − 1/N)), S = Σ s w = Σ s
    and N the number of units.
    """

    def __init__(self, data, names, tols, Z):
        a, s = data.a, data.sample_weight
        self.data, self.names, self.tols, self.Z = data, names, tols, Z
        self.free = s > 0
        self.n_free = int(self.free.sum())
        self.groups, self.half = [0], False
        u = normalise(s)
        self.center = u @ Z
        self.treatment = (a - u @ a) / reliability_sd(a[:, None], s)[0]
        two_valued, _ = binary_gap(Z[self.free])
        population_sd = np.sqrt(np.maximum(u @ (Z - self.center) ** 2, 0.0))
        self.scale = np.where(two_valued, population_sd, reliability_sd(Z, s))
        self.n_units = int(self.free.sum())

    def empty_groups(self, w):
        return [] if np.any(w > 0) else [0]

    def _free_codes(self):
        return np.zeros(self.n_free, dtype=np.int64)

    def group_name(self, g):
        return "sample"

    def _fixed_rows(self, bound):
        n_terms = len(self.names)
        return np.isnan(bound) | (np.arange(len(bound)) < 2 + n_terms)  # the sum and the mean rows

    def _balance_rows(self):
        """The sum row (= 1), the mean rows of the treatment and the terms (= 0), the correlation rows (|.| <= tols)."""
        s = self.data.sample_weight[self.free]
        share = s / s.sum()
        z = (self.Z[self.free] - self.center) / self.scale
        a = self.treatment[self.free]
        corr = (z * (a * share / (1.0 - 1.0 / self.n_units))[:, None]).T
        G = np.vstack([share[None, :], (a * share)[None, :], z.T * share, corr])
        bound = np.concatenate([[np.nan], np.zeros(1 + len(self.names)), self.tols])
        return G, bound

    def weights(self, w):
        """s·w rescaled to sum to Σ s exactly (WeightIt's mean 1 without sampling weights)."""
        s = self.data.sample_weight
        out = np.zeros(len(s))
        out[self.free] = s[self.free] * w
        return out * (s.sum() / out.sum())

    def smd(self, weights):
        """The treatment-term correlations after weighting, in the units of ``tols`` (the rows above)."""
        share = weights / weights.sum()
        z = (self.Z - self.center) / self.scale
        return (z.T @ (self.treatment * share)) / (1.0 - 1.0 / self.n_units)

    def excess(self, smd):
        return np.abs(smd) - self.tols


def _infeasible_message(problem, est):
    t, binding = problem.smallest_tols(est.min_weight, est.solver)
    exact = "exact balance" if not np.any(problem.tols) else f"balance within tols={est.tols!r}"
    units = "correlation" if problem.data.treatment.kind == "continuous" else "SMD"
    hint = (f" The smallest feasible common tolerance is {t:.4g} {units} units (set tols above it, e.g. {1.01 * t:.4g});"
            f" the terms that need it include {binding[:10]}." if np.isfinite(t) else "")
    kind = problem.data.treatment.kind
    if kind == "continuous":
        return (f"{exact} is infeasible: no non-negative weights (min_weight={est.min_weight}) keep the means of the "
                f"treatment and the terms while making every treatment-term correlation zero{' within tols' if np.any(problem.tols) else ''}, "
                f"typically because a term is (nearly) a monotone function of the treatment.{hint} See "
                "balance.weights.smallest_feasible_tols.")
    groups = "control and treated groups" if kind == "binary" else "reweighted levels"
    return (f"{exact} is infeasible: no non-negative weights (min_weight={est.min_weight}) give the {groups} "
            f"the required means, typically because some target values lie outside the range of "
            f"the group being weighted.{hint} See balance.weights.smallest_feasible_tols.")


# ---------------------------------------------------------------------------------------------------------------
# terms: covariates, powers, interactions
# ---------------------------------------------------------------------------------------------------------------
def _origins(design):
    """Index of the original column behind each expanded (all-levels) column, missingness indicators included."""
    fills = design.fills or (None,) * len(design.columns)
    counts = [(len(levels) if kind == "categorical" else 1) + (fill is not None)
              for kind, levels, fill in zip(design.kinds, design.categories, fills)]
    return np.repeat(np.arange(len(counts)), counts)


def _expand_terms(full, names, origin, moments, interactions):
    """Covariates (all levels), then the powers and products of :class:`TermExpansion`; constant columns dropped.

    Products of two levels of one categorical are identically zero and products implied by earlier terms are
    left out by the expansion; an all-levels design is passed without its ``design`` so that each level is its
    own source there, and interactions get origin -1.
    """
    expansion = TermExpansion.learn(full, names, None, moments=moments, interactions=interactions)
    Z, out_names = expansion.transform(full, names)
    out_origin = np.concatenate([origin, [origin[j] for j, _ in expansion.powers],
                                 np.full(len(expansion.products), -1)]).astype(int)
    keep = np.ptp(Z, axis=0) > 0
    return Z[:, keep], [n for n, k in zip(out_names, keep) if k], out_origin[keep]


def _weighted_mean(Z, w):
    return w @ Z / w.sum()


def _term_scales(Z, a, s, focal, n_levels=2):
    """SMD denominators as balance_table: SD for continuous terms, the signed value gap for binary ones.

    The SD is the focal group's, or (``focal`` None, the ATE) the root mean of the variances of all ``n_levels``
    treatment levels (cobalt's denominator, for a multi-category treatment too).

    A binary term is coded by balance_table as 1 for values other than its reference (0 when present, else the
    smaller value), so its raw SMD is the mean difference divided by (other value − reference). A continuous
    term whose SD is 0 gets scale 1 and is flagged (the caller balances it exactly).

    Returns
    -------
    scale : ndarray of shape (n_terms,)
    zero_sd : ndarray of bool, shape (n_terms,)
    """
    # a group where one unit carries all the weight counts with variance 0
    sd = group_sd(Z, s, a, focal, n_levels, undefined=0.0)
    scale = np.where(sd > 0, sd, 1.0)
    two_valued, gap = binary_gap(Z)
    return np.where(two_valued, gap, scale), ~two_valued & ~(sd > 0)


def _check_tols_type(tols):
    if isinstance(tols, numbers.Real) and not isinstance(tols, bool):
        if not (np.isfinite(tols) and tols >= 0):
            raise ValueError(f"tols={tols!r} must be a non-negative number.")
        return
    if not hasattr(tols, "items"):
        raise TypeError(f"tols must be a non-negative number or a dict of term name to tolerance; got {type(tols).__name__}.")
    for key, value in tols.items():
        if not (isinstance(value, numbers.Real) and np.isfinite(value) and value >= 0):
            raise ValueError(f"tols[{key!r}]={value!r} must be a non-negative number.")


def _resolve_tols(tols, names, origin, design):
    """Per-term tolerances from a number or a dict of term / categorical-column names."""
    if not hasattr(tols, "items"):
        return np.full(len(names), float(tols))
    out = np.zeros(len(names))
    categorical = {col: i for i, (col, kind) in enumerate(zip(design.columns, design.kinds)) if kind == "categorical"}
    for key, value in tols.items():
        key = str(key)
        if key in names:
            out[names.index(key)] = value
        elif key in categorical:
            out[origin == categorical[key]] = value  # its levels and NA indicator (no powers; interactions: origin -1)
        else:
            raise ValueError(f"tols names {key!r}, which is not a balanced term or categorical column; the terms are {names}.")
    return out
