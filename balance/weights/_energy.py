"""Energy balancing weights (Huling & Mak 2024), as WeightIt's ``method = "energy"``, exact or scalable.

The weights minimise the energy distance between the weighted group(s) and the target sample, a convex quadratic
program on the probability simplex. Notation: x is the vector of weight masses of the reweighted units (each
group's masses sum to 1), D the matrix of Euclidean distances between units on scaled covariates, and

    F(x) = x'Qx + 2 b'x + const + (penalty / 2) sum_i h_i x_i^2,

whose first three terms are the energy distance reported as ``energy_distance_``:

* ATT (ATC): Q = -D_cc over the controls (treated), b = D_ct p_t with p_t the target group's base distribution,
  const = -p_t'D_tt p_t; this is E(x, p_t) = 2 x'D_ct p_t - x'D_cc x - p_t'D_tt p_t.
* ATE: x = (x_0, x_1) on both groups, u the full sample's base distribution, b = D u, const = -2 u'D u and
  F = E(x_0, u) + E(x_1, u) (+ E(x_0, x_1) when ``improved``), so Q = -D on same-group blocks (-2D when improved)
  and 0 (+D when improved) on the cross blocks.
* A multi-category treatment with K levels (WeightIt's multi-category form): the ATE sums E(x_g, u) over the
  levels and, when ``improved``, E(x_g, x_h) over every pair, so Q = -K D on same-level blocks and +D across,
  const = -K u'D u; the ATT (focal level f) sums E(x_g, p_f) over the other levels, Q = -D on same-level blocks,
  const = -(K - 1) p_f'D p_f. K = 2 is the binary problem.

Two solvers: OSQP on the dense QP with WeightIt's settings (exact to its tolerance; O(m^2) memory), and an
accelerated projected gradient (APG) method whose only use of D is the product D @ V, done by the numba kernels
of :mod:`balance._kernels._energy`, from a float32 copy of the block (its upper triangle for a continuous treatment)
when it fits ``memory_limit`` and recomputed on the fly otherwise.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._base import BaseWeighter
from .._stats import normalise, reliability_sd
from .._threads import numba_threads
from .._validation import check_constant, check_full_rank

SOLVERS = ("auto", "osqp", "apg")
AUTO_OSQP_MAX = 1500  # "auto" uses OSQP up to this many weights to solve: its dense KKT system grows as m^3
OSQP_SETTINGS = {"eps_abs": 1e-8, "eps_rel": 1e-6, "adaptive_rho_interval": 10, "polishing": True}  # WeightIt 1.5.1 (its polish = TRUE)
DEFAULT_MAX_ITER = {"osqp": 50_000, "apg": 2_000}
# Weights below min_weight by less than this (relative to a mean weight of 1) are solver round-off: clamped and
# counted silently; larger violations are also warned about.
ROUNDOFF = 1e-6
DEFAULT_PART = 4096  # units per part when the full block does not fit memory_limit
_WINDOW = 10  # APG stops when F fell by less than tol * F over this many iterations
# APG's converged_ needs its Frank–Wolfe duality gap to put the penalised objective F within a factor 2 of its
# minimum (gap <= F / 2, so F* >= F / 2). The gap is loose: at tol=1e-4 it is 6-33 % of F on lalonde and
# Kang-Schafer (n = 3000) while the true excess is 0.02-0.1 %, so a tighter certificate would flag healthy fits;
# this one catches a solver that stalled far from the minimum (gap 1.4-1.6 F at tol=0.1 on lalonde).
GAP_RATIO = 0.5
# When the gap does not certify a stop, APG goes on from where it stopped with a tenfold tighter stall tolerance, down
# to this multiple of tol (seen at n = 32,768, continuous: tol = 1e-4 stalls uncertified).
TIGHTEN_MAX = 1e-2
# Products with fewer distance pairs run on one thread: waking the thread pool costs more than it saves, a lot more
# on a busy machine (measured: 2.6 ms instead of 0.1 ms per product of a 429 x 429 block).
PARALLEL_MIN_PAIRS = 4_000_000


@dataclass
class _Problem:
    """The QP in mass coordinates: see the module docstring. ``free`` indexes the reweighted units."""

    Xs: np.ndarray  # scaled covariates of the units with positive sample weight, (n_active, p)
    free: np.ndarray  # indices into Xs of the reweighted units
    group: np.ndarray  # 0/1 group of each reweighted unit (its simplex)
    mass: np.ndarray  # base mass s_i / S_g of each reweighted unit (the unweighted solution)
    h: np.ndarray  # penalty multipliers
    b: np.ndarray
    const: float
    same: float  # coefficient of the same-group product in Qx
    cross: float  # coefficient of the cross-group product in Qx (ATE only)
    focal: int | None = None  # code of the target group of an ATT/ATC (None: the ATE)
    n_levels: int = 2  # treatment levels (groups 0..n_levels-1)
    dcov: tuple | None = None  # continuous treatment: (scaled treatment, mx, ma, (gx, ga, ca, cx)); see _continuous


class EnergyBalance(BaseWeighter):
    """Energy balancing weights (Huling & Mak 2024): the weights that minimise an energy distance.

    The energy distance between two distributions is zero exactly when they are equal, so energy balancing targets
    the whole joint covariate distribution, not chosen moments. Distances are Euclidean on covariates scaled to unit
    (sampling-weighted) standard deviation, categorical covariates expanded to one indicator per level: WeightIt's
    default ``dist.mat = "scaled_euclidean"``.

    - ATT: the controls are reweighted so that their distribution is closest to the treated one (treated units
      keep their sampling weights). ATC: the reverse.
    - ATE: each group is reweighted towards the full sample; ``improved`` (the default, as WeightIt) also
      minimises the energy distance between the two weighted groups.

    A multi-category treatment (K ≥ 3 levels, WeightIt's ``energy`` for them): the ATE reweights every level
    towards the full sample and, when ``improved``, also minimises the energy distance between every pair of
    weighted levels; the ATT reweights every level other than the focal level (``treated=``) towards it, the focal
    units keeping their sampling weights. No ATC.

    A continuous treatment A (``estimand="ATE"``, the only one; WeightIt's ``energy`` for it, Huling, Greifer & Chen
    2023, with ``dimension.adj = TRUE``): the weights minimise the weighted distance covariance between A and the
    covariates plus the energy distances of the weighted A and covariate distributions from the sample's
    (weights c_A = 1 / (1 + sqrt(p)) and 1 − c_A for p covariate columns), plus the penalty. A is scaled by its SD
    like the covariates. Every unit is reweighted; the weights sum to the sample's size. See Notes.

    Parameters
    ----------
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        ATE and ATT only for a multi-category treatment.
    penalty : float, default=1e-4
        WeightIt's ``lambda``: adds ``penalty / 2`` times the sum of squared weight masses (for sampling weights
        s, mass_i^2 * mean(s) / s_i; see Notes), which makes the solution unique and favours even weights. The
        default is essentially 0.
    improved : bool, default=True
        For the ATE, also balance the treated group against the control group (Huling & Mak's improved weights);
        for a multi-category treatment, every pair of levels. Not used for a continuous treatment.
    min_weight : float, default=0.0
        Lower bound on each weight relative to the group's mean weight (WeightIt's ``min.w`` on its scale; WeightIt
        uses 1e-8, which prints zeros as 1e-8). Must lie in [0, 1).
    solver : {"auto", "osqp", "apg"}, default="auto"
        ``"osqp"``: the dense QP by OSQP with WeightIt's settings (``eps_abs=1e-8, eps_rel=1e-6,
        adaptive_rho_interval=10, polish=True``; ``eps_rel=1e-8`` for a continuous treatment, as WeightIt); needs O(m^2) memory for m weights and time that grows about as
        m^3. ``"apg"``: accelerated projected gradient on the simplex (FISTA with backtracking and adaptive restart)
        using only products with the distance matrix; O(m) memory when the matrix does not fit ``memory_limit``.
        ``"auto"``: OSQP up to 1500 weights to solve, APG above, and APG when OSQP does not converge (OSQP assumes
        a convex QP, but the energy objective is convex only on the simplices, and OSQP can diverge on small
        designs).
    tol : float, default=1e-4
        APG only: stop when the objective fell by less than ``tol`` times its value over the last 10 iterations
        (on the n = 10,000 benchmark: energy distance within 0.1 % of the minimum; 1e-5 gives 0.01 % in twice the
        iterations). When the duality gap does not certify such a stop (see ``converged_``), APG goes on from it
        with ``tol / 10`` and then ``tol / 100`` before reporting status ``"stalled"``.
    max_iter : int or None, default=None
        Iteration limit; None means 50000 for OSQP (WeightIt's) and 2000 for APG.
    memory_limit : float, default=1024
        APG only: the distance block is stored in float32 when it takes at most this many MiB; otherwise distances
        are recomputed in every iteration (slower, O(m) memory).
    partition_size : int or None, default=None
        APG only, for large samples: split the units at random into parts of at most this many weights to solve
        (each group dealt evenly, the target group alike), solve each part against its own share of the target and
        average the parts' solutions by base mass. None: no parts when the distance block of the weights to solve
        fits ``memory_limit``, else parts of 4096. Not available for a continuous treatment (its matrix is
        recomputed in every product when it does not fit ``memory_limit``). The energy distance reported is always that of the averaged
        weights on the full sample (it is above the full problem's minimum; see the benchmark).
    random_state : int, RandomState instance or None, default=None
        Seeds the random partition (used only with parts).
    treated : scalar, default=None
        The treated level when the treatment is neither 0/1 nor boolean; the focal level of a multi-category ATT.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default="auto"
        What the treatment is; ``"auto"`` decides from the data (two values: binary; categorical or text with more
        levels: multi-category; float: continuous; integers with more than two values: an error asking for this
        parameter). See :mod:`balance._treatment`.
    missing : {"error", "indicator"}, default="error"
        Missing covariate values: ``"error"`` raises naming the column; ``"indicator"`` adds a missingness
        indicator ``<column>:<NA>`` per incomplete column and fills its missing values with the observed median
        (WeightIt's and cobalt's approach), so the missingness pattern is balanced too.

    Attributes
    ----------
    weights_ : Series or ndarray of shape (n_samples,)
        Analysis weights, sampling weights included. Scale (WeightIt 1.5.1): each group's weights sum to its size
        (the sum of its sampling weights); units of the target group of an ATT/ATC keep their sampling weight. The
        scale of a group changes no balance statistic, ESS or weighted difference in means.
    energy_distance_ : float
        The energy distance attained (the objective without the penalty; for the ATE the sum of the two or three
        distances above, for a multi-category treatment the sum of its K, K(K + 1)/2 or K − 1 distances),
        computed exactly in float64 at the returned weights. Continuous treatment: the objective without the
        penalty, distance covariance plus the two weighted energy distances (WeightIt's objective times n²).
    initial_energy_distance_ : float
        The same at the base (unadjusted) weights.
    duality_gap_ : float
        Frank–Wolfe gap of the returned weights: an upper bound on how far the penalised objective is above its
        minimum (usually a loose one). NaN with parts (it needs the full gradient, another pass over all pairs).
    solver_ : str
        The solver whose solution is returned, ``"osqp"`` or ``"apg"``.
    status_ : str
        The solver's status: OSQP's own word, or ``"converged"`` / ``"max_iter"`` / ``"stalled"`` for APG.
    converged_ : bool
        Whether the solver met its tolerance (every part, with parts); otherwise a ConvergenceWarning states OSQP's
        residual or APG's remaining relative decrease of the objective. For APG without parts it also needs the
        duality gap to certify the penalised objective within a factor 2 of its minimum (gap at most half the
        objective; status ``"stalled"`` otherwise): the stopping rule alone cannot tell a stall from a minimum.
    n_iter_ : int
        Solver iterations, at most ``max_iter`` (with parts: the largest over the parts).
    n_partitions_ : int
        Number of parts the APG problem was split into (1: the full problem).
    n_clamped_ : int
        Weights the solver returned below ``min_weight`` (round-off of OSQP's tolerance) and that were set to it.
    terms_ : list of str
        The covariate columns the distance uses (categoricals with one indicator per level).
    scale_ : ndarray of shape (n_terms,)
        The standard deviation each column was divided by.
    treatment_levels_, n_features_in_, feature_names_in_
        As in the other weighting estimators.

    See Also
    --------
    balance.EntropyBalance : exact balance of chosen moments.

    Notes
    -----
    WeightIt's QP is reproduced exactly without sampling weights (``tests/test_energy.py`` compares against WeightIt
    1.5.1 on lalonde). With sampling weights s, each group's base distribution is s_i / sum(s) within the group,
    the ATE target is the sampling-weighted full sample s_i / sum(s) (WeightIt weights each group by its row count
    instead), the column SDs are sampling-weighted, and the penalty on unit i is scaled by mean(s_g) / s_i so that a
    unit of sampling weight 2 is penalised like two units of weight 1 (up to the mean, which keeps the penalty
    invariant to rescaling s). Integer sampling weights then solve the same problem as repeated rows (with
    ``penalty=0`` exactly; the reported ``energy_distance_`` differs by the constant factor that the column SDs'
    n - 1 makes, as rows are counted differently).

    A continuous treatment, with u = s / Σs, D_X and D_A the distances among the scaled covariates and treatment
    values, and x the weight masses (Σ x = 1), minimises

        x'(X̃ ∘ Ã)x + c_A E_A(x) + c_X E_X(x) + penalty Σ_i (s̄ / s_i) x_i²,
        X̃ = D_X − m_X 1' − 1 m_X' + u'm_X, m_X = D_X u (likewise Ã),  E(x) = 2u'Dx − x'Dx − u'Du,

    a QP on the simplex that is convex there (X̃ ∘ Ã is positive semi-definite, −D conditionally so). It is
    WeightIt 1.5.1's problem without sampling weights (``tests/test_continuous_balancing.py``: its weights to
    7e-10). With sampling weights the double centring and the SDs are sampling-weighted and the penalty is per unit
    as for binary treatments (WeightIt centres without them), so integer sampling weights act as repeated rows up
    to the SDs' n − 1. APG needs only products with the symmetric matrix X̃ ∘ Ã − c_A D_A − c_X D_X, from a float32
    copy of its upper triangle when the n × n array fits ``memory_limit`` (4 n² bytes: n = 16,384 at the default),
    each stored entry read once per product for both triangles; or recomputed from the covariates in every product
    (O(n) memory, O(n² p) time per product): at n = 10,000 about 180 products of 5·10⁷ stored entries, some 8 s of
    CPU (see ``benchmarks/results/continuous_weights.md``). The objective is flat near its minimum (the penalty is
    tiny), so APG's weights can differ visibly from OSQP's at the same objective to 1e-3.

    Energy balancing has no estimating equations, so there is no M-estimation variance (``_m_parts`` raises); use
    HC0 standard errors (weights treated as fixed, WeightIt's default for this method) or a bootstrap that refits
    the weights.

    References
    ----------
    Huling, J. D., & Mak, S. (2024). Energy balancing of covariate distributions. Journal of Causal Inference
    12(1). doi:10.1515/jci-2022-0029.
    Székely, G. J., & Rizzo, M. L. (2013). Energy statistics: A class of statistics based on distances. Journal of
    Statistical Planning and Inference 143, 1249–1272.
    Beck, A., & Teboulle, M. (2009). A fast iterative shrinkage-thresholding algorithm for linear inverse problems.
    SIAM Journal on Imaging Sciences 2, 183–202. O'Donoghue, B., & Candès, E. (2015). Adaptive restart for
    accelerated gradient schemes. Foundations of Computational Mathematics 15, 715–732.
    Stellato, B., Banjac, G., Goulart, P., Bemporad, A., & Boyd, S. (2020). OSQP: an operator splitting solver for
    quadratic programs. Mathematical Programming Computation 12, 637–672.
    Greifer, N. (2024). WeightIt: Weighting for Covariate Balance in Observational Studies. R package 1.5.1.

    Examples
    --------
    >>> from balance import EnergyBalance
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> eb = EnergyBalance(estimand="ATT").fit(data.X, data.treatment)
    >>> eb.solver_, round(float(eb.weights_[data.treatment == 0].sum()), 6)
    ('osqp', 429.0)
    >>> bool(eb.energy_distance_ < 0.1 * eb.initial_energy_distance_)
    True
    """

    _supported_estimands = ("ATT", "ATC", "ATE")
    _supported_treatment_types = ("binary", "multi-category", "continuous")
    _dask_refusal = "energy distances sum over all pairs of units"
    _multi_category_estimands = ("ATE", "ATT")

    def __init__(self, estimand="ATT", *, penalty=1e-4, improved=True, min_weight=0.0, solver="auto", tol=1e-4,
                 max_iter=None, memory_limit=1024, partition_size=None, random_state=None, treated=None,
                 treatment_type="auto", missing="error"):
        self.estimand = estimand
        self.penalty = penalty
        self.improved = improved
        self.min_weight = min_weight
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.memory_limit = memory_limit
        self.partition_size = partition_size
        self.random_state = random_state
        self.treated = treated
        self.treatment_type = treatment_type
        self.missing = missing

    # -- fitting ----------------------------------------------------------------------------------------------
    def fit(self, X, treatment, sample_weight=None):
        """Solve for the energy balancing weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Covariates (numeric, boolean or categorical columns).
        treatment : array-like of shape (n_samples,)
            Binary or multi-category treatment.
        sample_weight : array-like of shape (n_samples,), default=None
            Sampling (base) weights: they define each group's base distribution and the target, and multiply the
            resulting weights. Units with weight 0 take no part and get weight 0.

        Returns
        -------
        self
        """
        self._check_params()
        data = self._validate_data(X, treatment, sample_weight)
        check_constant(data.X, data.names)
        check_full_rank(data.X, data.names)
        matrix, names = self.design_.transform(X, drop_first=False)
        # Units with sampling weight 0 take no part. The others are put in a canonical order (lexicographic in the
        # covariates) before anything is summed, so that the weights do not depend, to the last digit, on row order.
        active = np.flatnonzero(data.sample_weight > 0)
        keys = np.column_stack([matrix[active], data.a[active], data.sample_weight[active]])
        active = active[np.lexsort(keys.T[::-1])]
        a, sw = data.a[active], data.sample_weight[active]
        Xs, self.terms_, self.scale_ = _scaled_covariates(matrix[active], names, sw)
        solver = self.solver
        continuous = data.treatment.kind == "continuous"
        focal, n_levels = _target_group(data.treatment, self._estimand()), data.treatment.n_levels
        n_free = int(np.sum(a != focal)) if focal is not None else len(a)
        if solver == "auto":
            solver = "osqp" if n_free <= AUTO_OSQP_MAX else "apg"
        max_iter = DEFAULT_MAX_ITER[solver] if self.max_iter is None else self.max_iter
        n_parts = self._n_parts(n_free) if solver == "apg" and not continuous else 1
        ops = _Operators(Xs, self.memory_limit if n_parts == 1 else 0.0)
        if continuous and self.partition_size is not None:
            raise ValueError(f"partition_size={self.partition_size!r}: parts are not available for a continuous "
                             "treatment; leave it None (the matrix is recomputed when it does not fit memory_limit).")
        if continuous:
            prob = _build_continuous(ops, a / reliability_sd(a[:, None], sw)[0], sw, len(self.terms_))
            a, n_levels = np.zeros(len(a), dtype=np.int64), 1  # one group: every unit is reweighted
        else:
            prob = _build_problem(ops, a, sw, focal, self.improved, n_levels)
        self.n_clamped_ = 0  # APG's projection is exact: no weight falls below min_weight
        # ``left`` is what the stopping rule compares with its tolerance: OSQP's largest residual, APG's relative
        # decrease of the objective over its last iterations
        if solver == "osqp":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                x, status, n_iter, converged, left = self._solve_osqp(prob, max_iter)
            if not converged and self.solver == "auto":
                # -D is positive semi-definite only on the simplices, not on the whole space OSQP works in, and OSQP
                # can diverge (seen at n = 95, one skewed covariate, a whole group driven to 0) or return no finite
                # solution at all; APG stays on them
                solver, max_iter = "apg", DEFAULT_MAX_ITER["apg"] if self.max_iter is None else self.max_iter
                self.n_clamped_ = 0
            elif x is None:
                raise RuntimeError(f"OSQP returned no solution (status {status!r}); try solver='apg'.")
            else:
                for w in caught:
                    warnings.warn(w.message, w.category, stacklevel=2)
        if solver == "apg" and n_parts == 1:
            x, n_iter, converged, left = self._solve_apg(prob, ops, max_iter, prob.mass, self.tol)
        elif solver == "apg":
            x, n_iter, converged, left = self._solve_parts(Xs, a, sw, prob, n_parts, max_iter)
        # one exact pass over the distances gives the energy distance before and after weighting; with parts, the
        # full gradient (for the gap) is skipped, which halves that pass
        (self.initial_energy_distance_, self.energy_distance_), qx = _energies(
            prob, np.column_stack([prob.mass, x]), ops, gradient=n_parts == 1)
        self.duality_gap_ = _fw_gap(prob, x, qx[:, 1], self.penalty, self.min_weight) if qx is not None else np.nan
        tol = self.tol
        while (solver == "apg" and converged and not self._certified(prob, x) and n_iter < max_iter
               and tol > self.tol * TIGHTEN_MAX):
            # APG stopped on a stall of its objective that the duality gap does not certify (a flat objective at
            # large n can stall before its minimum): go on from there with a tenfold tighter stall tolerance
            tol /= 10
            x, more, converged, left = self._solve_apg(prob, ops, max_iter - n_iter, x, tol)
            n_iter += more
            (self.energy_distance_,), qx = _energies(prob, x[:, None], ops)
            self.duality_gap_ = _fw_gap(prob, x, qx[:, 0], self.penalty, self.min_weight)
        if solver == "apg":
            status = "converged" if converged else "max_iter"
        if solver == "apg" and converged and not self._certified(prob, x):
            # convergence is judged by the certificate, the duality gap, not by the stall alone
            converged, status = False, "stalled"
            left = (f"its duality gap {self.duality_gap_:.2e} does not certify the objective within a factor "
                    f"{1 / (1 - GAP_RATIO):g} of its minimum, although it fell by less than tol={tol:g} (relative) "
                    f"over its last (up to {_WINDOW}) iterations")
        self.solver_, self.status_, self.n_iter_, self.converged_ = solver, status, n_iter, converged
        self.n_partitions_ = n_parts
        if not converged:
            if status != "stalled":
                left = (f"its objective still fell by {left:.2e} (relative) over its last (up to {_WINDOW}) "
                        f"iterations > tol={self.tol}" if solver == "apg" else
                        f"residual {left:.2e} > eps_abs={_osqp_settings(prob)['eps_abs']}")
            warnings.warn(
                f"EnergyBalance: the {solver} solver stopped with status {status!r} after {n_iter} iterations "
                f"(max_iter={max_iter}): {left} (energy distance {self.energy_distance_:.4g}); "
                + {"stalled": "tighten tol.", "max_iter": "raise max_iter or loosen tol."}.get(
                    status, "raise max_iter, or use solver='apg'."), ConvergenceWarning,
                stacklevel=2,
            )
        weights = np.zeros(len(data.a))
        act_w = sw.copy()  # the target group of an ATT/ATC keeps its sampling weights
        totals = np.array([sw[a == g].sum() for g in range(n_levels)])
        act_w[prob.free] = x * totals[prob.group]
        weights[active] = act_w
        return self._set_weights(weights, data)

    # -- internals ---------------------------------------------------------------------------------------------
    def _certified(self, prob, x):
        """Whether the duality gap puts the penalised objective within a factor 2 of its minimum (NaN with parts:
        no certificate, judged by the stopping rule alone)."""
        return not self.duality_gap_ > GAP_RATIO * _penalised(prob, x, self.penalty, self.energy_distance_)

    def _check_params(self):
        if self.solver not in SOLVERS:
            raise ValueError(f"solver={self.solver!r} is not supported; choose one of {list(SOLVERS)}.")
        for name in ("penalty", "tol", "memory_limit"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
                raise ValueError(f"{name}={value!r} must be a finite number >= 0.")
        if not isinstance(self.min_weight, numbers.Real) or not 0 <= self.min_weight < 1:
            raise ValueError(f"min_weight={self.min_weight!r} must lie in [0, 1) (weights relative to a group mean of 1).")
        if self.max_iter is not None and not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError(f"max_iter={self.max_iter!r} must be a positive integer or None.")
        if self.partition_size is not None and not (isinstance(self.partition_size, numbers.Integral)
                                                    and self.partition_size >= 2):
            raise ValueError(f"partition_size={self.partition_size!r} must be an integer >= 2 or None.")
        if not isinstance(self.improved, (bool, np.bool_)):
            raise ValueError(f"improved={self.improved!r} must be True or False.")

    def _solve_osqp(self, prob, max_iter):
        """WeightIt's QP in relative weights w = x / mass, solved by OSQP."""
        import osqp
        import scipy.sparse as sp

        from scipy.spatial.distance import cdist

        m = prob.mass
        Xf = prob.Xs[prob.free]
        if prob.dcov is not None:
            Q = _dcov_dense(cdist(Xf, Xf), *prob.dcov)
        else:
            same_group = prob.group[:, None] == prob.group[None, :]
            Q = cdist(Xf, Xf) * np.where(same_group, prob.same, prob.cross)
        P = (2 * Q + np.diag(self.penalty * prob.h)) * np.outer(m, m)
        groups = np.unique(prob.group)
        A = sp.vstack([sp.identity(len(m), format="csc"),
                       sp.csc_matrix(np.stack([np.where(prob.group == g, m, 0.0) for g in groups]))], format="csc")
        lower = np.r_[np.full(len(m), self.min_weight), np.ones(len(groups))]
        upper = np.r_[np.full(len(m), np.inf), np.ones(len(groups))]
        solver = osqp.OSQP()
        solver.setup(sp.triu(sp.csc_matrix(P), format="csc"), 2 * m * prob.b, A, lower, upper, verbose=False,
                     max_iter=max_iter, **_osqp_settings(prob))
        result = solver.solve(raise_error=False)
        status = str(result.info.status)
        w = np.asarray(result.x, dtype=np.float64)
        if not np.all(np.isfinite(w)):  # no solution: "auto" falls back to APG, "osqp" raises
            return None, status, int(result.info.iter), False, np.inf
        below = w < self.min_weight
        self.n_clamped_ = int(below.sum())
        if below.any() and float(np.max(self.min_weight - w)) > ROUNDOFF:
            warnings.warn(f"EnergyBalance: {self.n_clamped_} weights came out below min_weight by up to "
                          f"{float(np.max(self.min_weight - w)):.2e} and were set to min_weight.", UserWarning, stacklevel=3)
        w = np.maximum(w, self.min_weight)
        residual = float(max(result.info.prim_res, result.info.dual_res))
        return w * m, status, int(result.info.iter), status == "solved", residual

    def _solve_apg(self, prob, ops, max_iter, x0, tol):
        res = apg(lambda x: _qmv(prob, x, ops), prob.b, self.penalty * prob.h, self.min_weight * prob.mass,
                  prob.group, x0, prob.const, tol=tol, max_iter=max_iter)
        return res.x, res.n_iter, res.converged, res.decrease

    def _n_parts(self, n_free):
        if self.partition_size is None:
            fits = 4.0 * n_free**2 <= self.memory_limit * 2**20
            return 1 if fits else -(-n_free // DEFAULT_PART)
        return max(1, -(-n_free // self.partition_size))

    def _solve_parts(self, Xs, a, sw, prob, n_parts, max_iter):
        """Solve on random parts (each group dealt evenly) and average the parts' solutions by base mass.

        Each part balances its own units against its own share of the target, so the parts' errors are nearly
        independent and largely cancel in the average: the energy distance of the average is close to the full
        problem's minimum (within 1.5x of it with 8 parts in the benchmarks), at 1/K of the work and 1/K^2 of the
        memory of the full problem.
        """
        rng = check_random_state(self.random_state)
        part = np.empty(len(a), dtype=np.int64)
        for g in range(prob.n_levels):
            idx = np.flatnonzero(a == g)
            part[rng.permutation(idx)] = np.arange(len(idx)) % n_parts
        x_all = np.zeros(len(a))
        n_iter, converged, decrease = 0, True, 0.0
        for k in range(n_parts):
            units = np.flatnonzero(part == k)
            sub_ops = _Operators(Xs[units], self.memory_limit)
            sub = _build_problem(sub_ops, a[units], sw[units], prob.focal, self.improved, prob.n_levels)
            x_k, it, conv, dec = self._solve_apg(sub, sub_ops, max_iter, sub.mass, self.tol)
            share = np.array([sw[units][a[units] == g].sum() / sw[a == g].sum() for g in range(prob.n_levels)])
            x_all[units[sub.free]] = x_k * share[sub.group]
            n_iter, converged, decrease = max(n_iter, it), converged and conv, max(decrease, dec)
        return x_all[prob.free], n_iter, converged, decrease


# ----------------------------------------------------------------------------------------------------------------
# problem set-up
# ----------------------------------------------------------------------------------------------------------------
def _scaled_covariates(matrix, names, sw):
    """Covariates divided by their sampling-weighted SD (WeightIt's ``"scaled_euclidean"``).

    Columns that are constant (possible for an indicator per level, or among the units with positive sampling
    weight) carry no distance and are dropped, as WeightIt's ``transform_covariates`` does.
    """
    sd = reliability_sd(matrix, sw)  # cobalt's / WeightIt's n - 1 ("reliability weights") form
    keep = sd > 0
    if not keep.any():
        raise ValueError("every covariate is constant among the units with positive sample_weight.")
    centred = (matrix - normalise(sw) @ matrix)[:, keep]
    return np.ascontiguousarray(centred / sd[keep]), [n for n, k in zip(names, keep) if k], sd[keep]


class _Operators:
    """Products with blocks of the distance matrix of the rows of ``Xs``, via the numba kernels."""

    def __init__(self, Xs, memory_limit_mib):
        from .._kernels import _energy as kernels

        self.kernels = kernels
        self.Xt = np.ascontiguousarray(Xs.T)
        self.memory_limit = memory_limit_mib * 2**20
        self._square = None  # (points, float32 block or None) of the reweighted units, set by square()

    @staticmethod
    def _run(kernel, pairs, *args):
        if pairs >= PARALLEL_MIN_PAIRS:
            return kernel(*args)
        with numba_threads(1):
            return kernel(*args)

    def exact(self, rows, cols, V):
        """``D[rows][:, cols] @ V`` for index arrays rows, cols and V of shape (len(cols), k), in float64."""
        Vt = np.ascontiguousarray(np.reshape(V, (len(cols), -1)).T, dtype=np.float64)
        return self._run(self.kernels.distance_matvec, len(rows) * len(cols),
                         np.ascontiguousarray(self.Xt[:, rows]), np.ascontiguousarray(self.Xt[:, cols]), Vt)

    def quadform(self, rows, V):
        """``V' D[rows][:, rows] V`` in float64, visiting each pair once."""
        Vt = np.ascontiguousarray(np.reshape(V, (len(rows), -1)).T, dtype=np.float64)
        return self._run(self.kernels.distance_quadform, len(rows) ** 2 // 2, np.ascontiguousarray(self.Xt[:, rows]), Vt)

    def dcov(self, V, dcov, *, exact=False):
        """``K @ V`` for the continuous problem's matrix K over all points (:func:`~balance._kernels._energy.dcov_matvec`),
        from its float32 upper triangle when the block fits the memory limit (built once), else recomputed;
        ``exact``: float64, recomputed."""
        Vt = np.ascontiguousarray(V.T, dtype=np.float64)
        n = self.Xt.shape[1]
        if self._square is None and not exact:
            fits = 4.0 * n ** 2 <= self.memory_limit
            self._square = (None, self._run(self.kernels.dcov_block32, n ** 2, self.Xt, *dcov) if fits else None)
        block = None if exact else self._square[1]
        if block is not None:
            return self._run(self.kernels.symmetric_matvec, n ** 2, block, Vt)
        return self._run(self.kernels.dcov_matvec, n ** 2, self.Xt, *dcov, Vt)

    def square(self, rows, V):
        """``D[rows][:, rows] @ V`` from the float32 block when it fits the memory limit (built once)."""
        if self._square is None:
            points = np.ascontiguousarray(self.Xt[:, rows])
            fits = 4.0 * len(rows) ** 2 <= self.memory_limit
            block = self._run(self.kernels.distance_block32, len(rows) ** 2, points, points) if fits else None
            self._square = (points, block)
        points, block = self._square
        Vt = np.ascontiguousarray(V.T, dtype=np.float64)
        if block is not None:
            return self._run(self.kernels.block_matvec, len(rows) ** 2, block, Vt)
        return self._run(self.kernels.distance_matvec, len(rows) ** 2, points, points, Vt)


def _target_group(treatment, estimand):
    """Code of the group the others are weighted to: treated (ATT) / control (ATC) / the focal level of a
    multi-category ATT; None for the ATE."""
    if treatment.kind == "multi-category":
        return treatment.focal if estimand == "ATT" else None
    return {"ATT": 1, "ATC": 0}.get(estimand)


def _build_problem(ops, a, sw, focal, improved, n_levels=2):
    """The QP of the module docstring for K = ``n_levels`` groups.

    ATT (``focal`` given): every other group g against the focal group, F = sum_g E(x_g, p_focal), so Q = -D
    on same-group blocks and 0 across groups, const = -(K - 1) p'D p. ATE: every group against the full sample,
    F = sum_g E(x_g, u) (+ sum over pairs g < h of E(x_g, x_h) when ``improved``, WeightIt's multi-category form):
    each group takes part in K - 1 pairs, so Q = -K D on same-group blocks and +D across (-D and 0 without
    ``improved``), const = -K u'D u. K = 2 is the binary problem.
    """
    sizes = np.array([sw[a == g].sum() for g in range(n_levels)])
    mass_all = sw / sizes[a] if n_levels > 2 else sw / np.where(a == 1, sizes[1], sizes[0])
    mean_s = np.array([sw[a == g].mean() for g in range(n_levels)])
    if focal is not None:
        free, target = np.flatnonzero(a != focal), np.flatnonzero(a == focal)
        pt = mass_all[target]
        b = ops.exact(free, target, pt)[:, 0]
        const = -(n_levels - 1) * float(ops.quadform(target, pt)[0, 0])
        same, cross = -1.0, 0.0
    else:
        free = np.arange(len(a))
        u = sw / sw.sum()
        b = ops.exact(free, free, u)[:, 0]
        const = -float(n_levels) * float(u @ b)
        same, cross = (-float(n_levels), 1.0) if improved else (-1.0, 0.0)
    group = a[free].astype(np.int64)
    h = mean_s[group] / sw[free]
    return _Problem(ops.Xt.T, free, group, mass_all[free], h, b, const, same, cross, focal, n_levels)


def _build_continuous(ops, a, sw, n_covariates):
    """The continuous-treatment QP (Huling, Greifer & Chen 2023, as WeightIt 1.5.1) in mass coordinates.

    With u = s / Σs the base distribution, D_X and D_A the distances among the scaled covariates and among the
    scaled treatment values ``a``, m_X = D_X u, g_X = u'm_X (likewise m_A, g_A), the objective is

        F(x) = x'(X̃ ∘ Ã)x + c_A E_A(x) + c_X E_X(x) + λ Σ_i (s̄ / s_i) x_i²,
        X̃ = D_X − m_X 1' − 1 m_X' + g_X (likewise Ã),  E(x) = 2u'Dx − x'Dx − u'Du,

    the weighted distance covariance of treatment and covariates (centred at the base distribution) plus the
    energy distances of the weighted treatment and covariate distributions from the sample's, with
    ``dimension.adj``: c_A = 1 / (1 + sqrt(p)), c_X = 1 − c_A for p covariate columns. So Q = X̃ ∘ Ã − c_A D_A
    − c_X D_X, b = c_A m_A + c_X m_X and const = −c_A g_A − c_X g_X; without sampling weights F is WeightIt's
    objective times n². The penalty λ Σ w_i² / n² on WeightIt's weights w = n x is written per unit as
    λ (s̄ / s_i) x_i² so that integer sampling weights act as repeated rows (the binary method's convention).
    """
    n = len(a)
    u = sw / sw.sum()
    free = np.arange(n)
    mx = ops.exact(free, free, u)[:, 0]
    ma = _abs_diff_matvec(a, u)
    gx, ga = float(u @ mx), float(u @ ma)
    ca = 1.0 / (1.0 + np.sqrt(n_covariates))
    cx = 1.0 - ca
    a = np.ascontiguousarray(a, dtype=np.float64)
    return _Problem(ops.Xt.T, free, np.zeros(n, dtype=np.int64), u, 2.0 * sw.mean() / sw, ca * ma + cx * mx,
                    -ca * ga - cx * gx, 0.0, 0.0, None, 1, (a, mx, ma, (gx, ga, ca, cx)))


def _abs_diff_matvec(a, u):
    """Σ_j u_j |a_i − a_j| for every i, in O(n log n) by sorting (ties contribute 0 either way)."""
    order = np.argsort(a, kind="stable")
    v, w = a[order], u[order]
    below_w, below_vw = np.cumsum(w), np.cumsum(w * v)
    out = np.empty(len(a))
    out[order] = v * below_w - below_vw + (below_vw[-1] - below_vw) - v * (below_w[-1] - below_w)
    return out


def _dcov_dense(dx, a, mx, ma, consts):
    """The continuous problem's Q (:func:`_build_continuous`) as a dense float64 matrix, from the distances dx."""
    gx, ga, ca, cx = consts
    da = np.abs(a[:, None] - a[None, :])
    return (dx - mx[:, None] - mx[None, :] + gx) * (da - ma[:, None] - ma[None, :] + ga) - ca * da - cx * dx


def _osqp_settings(prob):
    """WeightIt 1.5.1's OSQP settings: eps_rel 1e-6 for binary and multi-category treatments, 1e-8 (its ``eps``)
    for a continuous one."""
    return OSQP_SETTINGS if prob.dcov is None else {**OSQP_SETTINGS, "eps_rel": 1e-8}


def _group_columns(prob, xm):
    """x split into one set of columns per group of the reweighted units (zeros elsewhere), and each unit's set."""
    groups = np.unique(prob.group)
    own = np.searchsorted(groups, prob.group)
    V = np.hstack([np.where((own == j)[:, None], xm, 0.0) for j in range(len(groups))])
    return V, own, len(groups)


def _qmv(prob, x, ops, *, exact=False):
    """Q @ x for x of shape (m,) or (m, c): one pass over the distances of the reweighted units."""
    xm = x.reshape(len(prob.free), -1)
    if prob.dcov is not None:
        return ops.dcov(xm, prob.dcov, exact=exact).reshape(x.shape)
    if prob.n_levels > 2:  # K groups: D x_g per group g gives the same-group product and, summed, the cross one
        V, own, n_groups = _group_columns(prob, xm)
        Y = (ops.exact(prob.free, prob.free, V) if exact else ops.square(prob.free, V)).reshape(len(xm), n_groups, -1)
        same = Y[np.arange(len(xm)), own]
        return (prob.same * same + prob.cross * (Y.sum(axis=1) - same)).reshape(x.shape)
    if prob.cross == 0.0 and len(np.unique(prob.group)) == 1:
        V = xm
    else:  # one set of columns per group: D x_0 and D x_1 give the same-group and cross-group products
        in1 = (prob.group == 1)[:, None]
        V = np.hstack([np.where(in1, 0.0, xm), np.where(in1, xm, 0.0)])
    Y = ops.exact(prob.free, prob.free, V) if exact else ops.square(prob.free, V)
    if Y.shape[1] == xm.shape[1]:
        return (prob.same * Y).reshape(x.shape)
    c = xm.shape[1]
    in1 = (prob.group == 1)[:, None]
    same = np.where(in1, Y[:, c:], Y[:, :c])
    cross = np.where(in1, Y[:, :c], Y[:, c:])
    return (prob.same * same + prob.cross * cross).reshape(x.shape)


def _energies(prob, xs, ops, *, gradient=True):
    """Energy distances (objective without penalty) at the columns of xs, exactly in float64; also Q @ xs.

    Without ``gradient`` only the quadratic forms are computed, each pair visited once (half the work), and
    None is returned for Q @ xs.
    """
    if gradient or prob.dcov is not None:
        qx = _qmv(prob, xs, ops, exact=True)
        quad = np.sum(xs * qx, axis=0)
    else:
        qx, c = None, xs.shape[1]
        if prob.n_levels > 2:
            V, _, n_groups = _group_columns(prob, xs)
            G = ops.quadform(prob.free, V).reshape(n_groups, c, n_groups, c)
            blocks = np.einsum("gihj->ghij", G)
            pairs = np.diagonal(blocks, axis1=2, axis2=3)  # (g, h, column): x_g' D x_h for each column of xs
            same = np.trace(pairs, axis1=0, axis2=1)
            quad = prob.same * same + prob.cross * (pairs.sum(axis=(0, 1)) - same)
        elif prob.cross == 0.0 and len(np.unique(prob.group)) == 1:
            quad = prob.same * np.diag(ops.quadform(prob.free, xs))
        else:
            in1 = (prob.group == 1)[:, None]
            G = ops.quadform(prob.free, np.hstack([np.where(in1, 0.0, xs), np.where(in1, xs, 0.0)]))
            diag = np.diag(G)
            quad = prob.same * (diag[:c] + diag[c:]) + 2 * prob.cross * np.diag(G[:c, c:])
    values = quad + 2 * prob.b @ xs + prob.const
    return np.maximum(values, 0.0), qx


def _penalised(prob, x, penalty, energy):
    """The penalised objective APG minimises, from the energy distance at x: energy + penalty Σ h x² / 2."""
    return energy + 0.5 * penalty * float(np.sum(prob.h * x * x))


def _fw_gap(prob, x, qx, penalty, min_weight):
    """Frank–Wolfe gap g'(x - s) of the penalised objective, s the best vertex of the feasible set."""
    grad = 2 * qx + 2 * prob.b + penalty * prob.h * x
    lower = min_weight * prob.mass
    gap = float(grad @ (x - lower))
    for g in np.unique(prob.group):
        in_g = prob.group == g
        gap -= (1 - lower[in_g].sum()) * float(grad[in_g].min())
    return max(gap, 0.0)


# ----------------------------------------------------------------------------------------------------------------
# accelerated projected gradient on a product of simplices
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _APGResult:
    x: np.ndarray
    n_iter: int
    converged: bool
    decrease: float  # relative decrease of F over the last _WINDOW accepted iterations (fewer if fewer ran)


def _project(y, lower, group):
    """Euclidean projection of y onto {x >= lower, sum of x over each group = 1} (sort-based; Duchi et al. 2008)."""
    x = np.empty_like(y)
    for g in np.unique(group):
        in_g = np.flatnonzero(group == g)
        z, radius = y[in_g] - lower[in_g], 1.0 - lower[in_g].sum()
        srt = np.sort(z)[::-1]
        cums = np.cumsum(srt) - radius
        rho = np.flatnonzero(srt * np.arange(1, len(z) + 1) > cums)[-1]
        x[in_g] = np.maximum(z - cums[rho] / (rho + 1), 0.0) + lower[in_g]
    return x


def apg(qmv, b, h, lower, group, x0, const, *, tol, max_iter):
    """Minimise F(x) = x'Qx + 2b'x + const + sum(h x^2) / 2 over {x >= lower, per-group sums 1} by FISTA.

    Q enters only through ``qmv(x) = Q @ x``, called once per iteration: the momentum point is a linear
    combination of the last two iterates, so its product is too. The step 1/L starts from a Rayleigh quotient of
    Q and doubles whenever the quadratic upper bound fails (each failure costs one product); momentum restarts
    when F increases (O'Donoghue & Candès 2015), which keeps F monotone. Stops when F fell by less than
    ``tol * F`` over the last few iterations.
    """
    def objective(z, qz):
        return float(z @ qz + 2 * b @ z + 0.5 * np.sum(h * z * z)) + const

    x, qx = x0, qmv(x0)
    fx = objective(x, qx)
    direction = _project(x - (qx + b), lower, group) - x  # a feasible direction for the first curvature estimate
    if np.any(direction):
        lip = 2 * abs(float(direction @ qmv(direction))) / float(direction @ direction) + float(np.max(h))
    else:
        lip = 1.0
    x_prev, qx_prev, t, history = x, qx, 1.0, [fx]
    for it in range(1, max_iter + 1):
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        beta = (t - 1) / t_next
        y, qy = x + beta * (x - x_prev), qx + beta * (qx - qx_prev)
        fy = objective(y, qy)
        grad = 2 * qy + 2 * b + h * y
        while True:
            x_new = _project(y - grad / lip, lower, group)
            q_new = qmv(x_new)
            f_new, step = objective(x_new, q_new), x_new - y
            if f_new <= fy + grad @ step + 0.5 * lip * (step @ step) + 1e-12 * abs(fy):
                break
            lip *= 2
        if f_new > fx:  # restart the momentum from x; the next step is a plain projected gradient step
            if beta == 0.0:  # even a plain step does not descend: F is at its minimum to rounding
                return _APGResult(x, it, True, 0.0)
            x_prev, qx_prev, t = x, qx, 1.0
            continue
        x_prev, qx_prev, x, qx, fx, t = x, qx, x_new, q_new, f_new, t_next
        history.append(fx)
        if len(history) > _WINDOW and history[-_WINDOW - 1] - fx <= tol * max(fx, 0.0):
            return _APGResult(x, it, True, _relative_decrease(history))
    return _APGResult(x, max_iter, False, _relative_decrease(history))


def _relative_decrease(history):
    """(F before the last _WINDOW accepted steps − F now) / F now: the quantity APG's stopping rule bounds by tol."""
    before = history[max(0, len(history) - 1 - _WINDOW)]
    return float((before - history[-1]) / max(history[-1], np.finfo(float).tiny))
