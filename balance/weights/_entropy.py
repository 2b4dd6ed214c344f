"""Entropy balancing (Hainmueller 2012), exact or within tolerances, through its convex dual."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._base import BaseWeighter
from .._dask import any_dask
from .._dask_data import refuse_dask
from .._stats import binary_gap, group_sd
from .._validation import check_sample_weight
from ._balance_conditions import check_solver_params, fit_terms, new_terms, store_fits
from ._continuous import continuous_conditions, continuous_tilt_parts
from ._moments import TermExpansion
from ._standardize import Standardizer
from ._tilt import (GroupStats, TiltBlock, block_tilt_evaluator, check_enough_units, check_target_inside,
                    solve_standardised_tilt, solve_tilt, solve_tilt_l1, tilt_parts)

_INFEASIBLE_FIX = "Allow approximate balance with tols > 0 (in SDs), or drop or coarsen that term."
_INFEASIBLE_FIX_CONTINUOUS = "Drop or coarsen that term, or use StableWeights(tols=...) for approximate balance."


class EntropyBalance(BaseWeighter):
    """Entropy balancing weights (Hainmueller 2012).

    For each reweighted group, the weights closest to the base weights in Kullback–Leibler divergence whose
    weighted means of the balance terms equal the target's means exactly (``tols=0``) or to within ``tols``
    standard deviations. The solution has the form w_i = b_i exp(λ₀ + X_i λ) (b the base times sampling weights);
    λ solves the convex dual, by Newton's method with a line search for exact balance, and for ``tols > 0`` by
    L-BFGS-B on the L1-penalised dual followed by an exact Newton solve on its active constraints.

    - ATT: controls reweighted to the treated means (treated units keep their sampling weights).
    - ATC: treated units reweighted to the control means.
    - ATE: each group reweighted to the full-sample means (Källberg & Waernbaum 2023).

    A multi-category treatment (K ≥ 3 levels, WeightIt's ``ebal`` for them): the ATE reweights every level to the
    full-sample means (K independent one-group problems); the ATT reweights every level other than the focal level
    (``treated=``) to the focal level's means, the focal units keeping their sampling weights. No ATC.

    A continuous treatment A (WeightIt's ``ebal`` for it; ``estimand="ATE"``, the only one): the weights closest
    to the base weights whose weighted means of A and of every balance term equal their sample means and under
    which A is uncorrelated with every term (zero weighted covariance), scaled to sum to the sample's size.
    ``tols`` must be 0.

    For the ATT, entropy balancing is the just-identified :class:`CBPS` and :class:`InverseProbabilityTilting`
    (Zhao & Percival 2017): λ are the coefficients of a logistic propensity model and the weights equal theirs up
    to a constant.

    Parameters
    ----------
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        ATT and ATE only for a multi-category treatment; ATE only for a continuous one.
    moments : int, default=1
        Also balance the powers 2, ..., ``moments`` of non-binary covariates.
    interactions : bool, default=False
        Also balance all pairwise products of the covariates (model-matrix columns).
    tols : float or array-like of shape (n_terms,), default=0.0
        Allowed imbalance per term, in the units of cobalt's default SMD (as WeightIt): non-binary terms in SDs
        (the treated group's SD for the ATT, the control group's for the ATC, the root mean of the two group
        variances for the ATE, all unweighted but with sampling weights in cobalt's form, so those with integer
        sampling weights differ slightly from repeated rows), binary terms as raw proportions. For the
        ATE each group is held within ``tols / 2`` of the target, so the groups differ by at most ``tols``.
        Multi-category treatment: the focal level's SD for the ATT, for the ATE the root mean of the variances
        of all K levels (cobalt's multi-category SMD denominator).
        0 gives exact balance.
    base_weights : array-like of shape (n_samples,), default=None
        Base weights b of the divergence (the weights the solution stays closest to), one per row of the ``X``
        given to ``fit``; None means uniform. Unlike ``sample_weight`` they do not define the target.
    treated : scalar, default=None
        The treated level when the treatment is neither 0/1 nor boolean; the focal level of a multi-category ATT.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default="auto"
        What the treatment is; ``"auto"`` decides from the data (two values: binary; categorical or text with more
        levels: multi-category; float: continuous; integers with more than two values: an error asking for this
        parameter). See :mod:`balance._treatment`.
    tol : float, default=1e-8
        Convergence tolerance: the largest remaining violation of a balance constraint, in SDs of the term.
    max_iter : int, default=200
        Maximum number of Newton (L-BFGS-B for ``tols > 0``) iterations per group.
    missing : {"error", "indicator"}, default="error"
        Missing covariate values: ``"error"`` raises naming the column; ``"indicator"`` adds a missingness
        indicator ``<column>:<NA>`` per incomplete column and fills its missing values with the observed median
        (WeightIt's and cobalt's approach), so the missingness pattern is balanced too.

    Attributes
    ----------
    weights_ : Series or ndarray of shape (n_samples,)
        Analysis weights, sampling weights included. Scale (WeightIt 1.5.1): each group's weights sum to its size
        (the sum of its sampling weights); the units of the target group in an ATT/ATC keep their sampling weight.
        The scale of a group changes no balance statistic, ESS or weighted difference in means.
    coef_ : ndarray of shape (n_terms,), or (2, n_terms) for the ATE, or (n_levels, n_terms) for a multi-category
        treatment
        The dual solution λ on the original covariate scale: before rescaling, a reweighted unit's weight is
        b_i exp(intercept_ + X_i coef_), normalised so that the group's weights sum to the target's size. For the
        ATT this is the logistic CBPS/IPT coefficient vector. For the ATE row 0 is the control group, row 1 the
        treated group. Multi-category: one row per level in the order of ``treatment_levels_``, the focal level's
        row zero for the ATT (it is not reweighted).
        Continuous treatment: shape (1 + 2 n_terms,), the coefficients of the condition columns
        ``constraints_`` (the treatment, the terms, the products of the centred treatment with each centred term).
    intercept_ : float, or ndarray of shape (2,) for the ATE, or (n_levels,) for a multi-category treatment
    terms_ : list of str
        The balanced terms (see :class:`CBPS`).
    constraints_ : list of str
        Continuous treatment only: the condition columns, ``"treatment"``, the terms, and ``"treatment:<term>"``
        (the products whose zero weighted mean makes the weighted covariance zero).
    converged_ : bool
        Whether every group's solve met the constraints to ``tol``; otherwise a ConvergenceWarning states
        ``imbalance_``.
    n_iter_ : int
        Iterations of the longest group solve (for the ATE the larger over the two groups, each capped at
        ``max_iter``). With ``tols > 0``: L-BFGS-B iterations, plus the Newton iterations of the exact active-set
        solve when that solve is kept.
    imbalance_ : float
        Largest remaining constraint violation (in SDs) over the groups.
    treatment_levels_, n_features_in_, feature_names_in_
        As in :class:`PropensityWeights`.

    Raises
    ------
    ValueError
        When exact balance (or balance within ``tols``) is infeasible because a target mean lies outside the range
        of the reweighted group's values for some term; the message names the term and suggests ``tols > 0``.

    See Also
    --------
    CBPS, InverseProbabilityTilting

    Notes
    -----
    Estimating equations (``_m_parts``, exact balance only) are, per reweighted group g,
    ψ_i = s_i (1{i in target} − 1{A_i = g} b_i exp(z_i'λ_g)) z_i with z = (1, X): the balance targets enter as
    sample totals, so the M-estimation standard errors include their sampling variability. This is equivalent to
    stacking equations for the target means, and differs from WeightIt's ebal, which centres the covariates at the
    targets and then holds those means fixed (so its "asympt" SE for the ATT differs from CBPS's and IPT's although
    the weights agree). A multi-category treatment stacks one block per reweighted level, in level order (the focal
    level has none), named ``"<level>:<term>"``. A continuous treatment stacks the sample means of the treatment
    and the terms (parameters ``"mean:<name>"``) with the tilt equations written around them (see
    :func:`balance.weights._continuous.continuous_tilt_parts`); ``_m_parts(..., fixed_targets=True)`` gives
    WeightIt 1.5.1's form, which holds those means fixed and reproduces its "asympt" standard errors (smaller:
    on lalonde with ``re75`` the treatment, the slope's SE is 0.1195 against 0.1207). In simulation the fixed form
    undercovers the intercept of a weighted dose-response regression (88 % at n = 1,000 and 4,000) while the
    estimated form covers (``benchmarks/results/continuous_ebal_coverage.md``). With ``tols > 0`` the weights are not smooth in the data and there are no estimating
    equations: use a bootstrap.

    Cost: one pass over the data for the group statistics, then one pass over the reweighted group per Newton
    iteration (usually six or seven), done by a numba kernel for groups above 20,000 units; memory O(n p). See
    ``benchmarks/results/entropy_balance.md``.

    References
    ----------
    Hainmueller, J. (2012). Entropy balancing for causal effects. Political Analysis 20(1), 25–46.
    Zhao, Q., & Percival, D. (2017). Entropy balancing is doubly robust. Journal of Causal Inference 5(1).
    Källberg, D., & Waernbaum, I. (2023). Large sample properties of entropy balancing estimators of average
    causal effects. Econometrics and Statistics.
    Greifer, N. (2024). WeightIt: Weighting for Covariate Balance in Observational Studies. R package 1.5.1.

    Examples
    --------
    >>> import numpy as np
    >>> from balance import EntropyBalance
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> eb = EntropyBalance(estimand="ATT").fit(data.X, data.treatment)
    >>> control = data.treatment == 0
    >>> round(float(eb.weights_[control].sum()), 6)
    429.0
    >>> bool(np.isclose(np.average(data.X["age"][control], weights=eb.weights_[control]),
    ...                 data.X["age"][~control].mean()))
    True
    """

    _supported_estimands = ("ATT", "ATC", "ATE")
    _supported_treatment_types = ("binary", "multi-category", "continuous")
    _multi_category_estimands = ("ATE", "ATT")

    def __init__(self, estimand="ATT", *, moments=1, interactions=False, tols=0.0, base_weights=None, treated=None,
                 treatment_type="auto", tol=1e-8, max_iter=200, missing="error"):
        self.estimand = estimand
        self.moments = moments
        self.interactions = interactions
        self.tols = tols
        self.base_weights = base_weights
        self.treated = treated
        self.treatment_type = treatment_type
        self.tol = tol
        self.max_iter = max_iter
        self.missing = missing

    def fit(self, X, treatment, sample_weight=None):
        """Solve for the balancing weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        treatment : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Sampling weights: they define the targets (weighted means), enter the divergence like base weights,
            and multiply the weights.

        Returns
        -------
        self
        """
        check_solver_params(self)
        if any_dask(X, treatment, sample_weight):
            return self._fit_dask(X, treatment, sample_weight)
        data = self._validate_data(X, treatment, sample_weight)
        # constant terms are found from the one-pass group statistics below, collinear ones by the solver
        M, self.terms_ = fit_terms(self, data, check=False)
        tols = self._tols(len(self.terms_))
        if data.treatment.kind == "continuous":
            return self._fit_continuous(data, M, tols)
        a, sw = data.a, data.sample_weight
        base = sw * self._base(len(a), data.index)
        estimand = self._estimand()
        n_levels, target = data.treatment.n_levels, _target_level(data.treatment, estimand)
        stats = _GroupStats.compute(M, a, sw, n_levels)
        stats.check_not_constant(self.terms_)
        with np.errstate(invalid="ignore", divide="ignore"):  # a group SD from a single unit is 0/0: refused below
            allowed = tols * stats.tolerance_units(M, a, sw, target) if tols.any() else tols
        if not np.all(np.isfinite(allowed)):
            raise ValueError(f"tols={self.tols!r} is in standard deviations of the {_sd_group(data.treatment, target)}"
                             ", which are undefined with fewer than 2 units of positive weight; use tols=0 (exact "
                             "balance).")
        total, mean = stats.target(target)
        weights = sw.astype(float).copy()
        fits = []
        arms = _reweighted(n_levels, target)
        for arm in arms:
            rows = np.flatnonzero((a == arm) & (base > 0))
            lo, hi = stats.range(arm) if self.base_weights is None else (M[rows].min(axis=0), M[rows].max(axis=0))
            check_target_inside(lo, hi, mean, self.terms_, allowed, "EntropyBalance", _INFEASIBLE_FIX)
            if tols.any():
                fit = solve_tilt_l1(M[rows], base[rows], mean, allowed, names=self.terms_, tol=self.tol,
                                    max_iter=self.max_iter)
                fit = type(fit)(fit.coef + np.r_[np.log(total), np.zeros(len(mean))], fit.converged, fit.n_iter,
                                fit.imbalance)
            else:
                fit = solve_tilt(M, rows, base, 1.0, total * np.r_[1.0, mean], total, mean, stats.sd(arm),
                                 names=self.terms_, tol=self.tol, max_iter=self.max_iter)
            _tilt_group(weights, M, a, base, arm, fit.coef, stats.wsum[arm] / total)
            fits.append(fit)
        if data.treatment.kind == "binary":
            store_fits(self, fits, "EntropyBalance")
        else:
            store_fits(self, fits, "EntropyBalance", levels=arms, n_levels=n_levels)
        return self._set_weights(weights, data)

    def _fit_dask(self, X, treatment, sample_weight):
        """Exact entropy balancing of dask input (binary treatment, ``tols=0``): the dual solved by the in-memory
        Newton method with its sums reduced over the partitions (one pass per evaluation); ``weights_`` lazy."""
        if np.any(np.asarray(self.tols, dtype=float) > 0) or self.base_weights is not None or self.moments != 1 \
                or self.interactions:
            raise refuse_dask("EntropyBalance with tols, base_weights, moments or interactions",
                              "those need the data in memory; exact balance of the covariates' means (the defaults) "
                              "fits on dask")
        data, estimand = self._validate_dask_data(X, treatment, sample_weight)
        self._terms_expansion = TermExpansion((), (), ())
        target = _target_level(data.treatment, estimand)
        stats = _GroupStats.from_blocks(data)
        stats.check_not_constant(self.terms_)
        total, mean = stats.target(target)
        fits = []
        for arm in _reweighted(2, target):
            check_target_inside(*stats.range(arm), mean, self.terms_, 0.0, "EntropyBalance", _INFEASIBLE_FIX)
            check_enough_units(int(data.stats["n_pos"][arm]), self.terms_)
            std = Standardizer(mean, np.where(stats.sd(arm) > 0, stats.sd(arm), 1.0))

            fits.append(solve_standardised_tilt(block_tilt_evaluator(data, [arm], False, std), std, np.array([1.0]),
                                                stats.wsum[arm], total * np.r_[1.0, mean], total, names=self.terms_,
                                                tol=self.tol, max_iter=self.max_iter))
        store_fits(self, fits, "EntropyBalance")
        # each group is rescaled to its own size, as in memory (the constants the estimating equations use too)
        self._group_scales = {arm: stats.wsum[arm] / total for arm in _reweighted(2, target)}
        self._set_dask_outputs(data)
        return self

    def _block_weights(self, M, a, sw):
        """The weights of one block of dask input: the in-memory formula with the fitted scale constants."""
        weights = sw.astype(float).copy()
        for arm, coef, scale in self._dask_groups():
            _tilt_group(weights, M, a, sw, arm, coef, scale)
        return weights

    def _dask_groups(self):
        """(group, coefficients, scale) of every reweighted group of a binary fit on dask input."""
        coefs = np.column_stack([np.atleast_1d(self.intercept_), np.atleast_2d(self.coef_)])
        return [(arm, coef, self._group_scales[arm]) for arm, coef in zip(sorted(self._group_scales), coefs)]

    def _block_m_parts(self, M, a, sw):
        """The MParts of one block of dask input: the in-memory equations with the fitted scale constants."""
        return self._binary_parts(M, a, sw, sw, self._group_scales)

    def _fit_continuous(self, data, M, tols):
        """Weights under which the treatment's and the terms' means are unchanged and the treatment is uncorrelated
        with every term (WeightIt's ebal for a continuous treatment), scaled to sum to the sample's size."""
        if tols.any():
            raise ValueError(f"tols={self.tols!r}: approximate balance (tols > 0) is not available for a continuous "
                             "treatment; use tols=0 (exact balance) or StableWeights(tols=...).")
        a, sw = data.a, data.sample_weight
        base = sw * self._base(len(a), data.index)
        C, mean, self.constraints_ = continuous_conditions(a, M, sw, self.terms_)
        stats = _GroupStats.compute(C, np.zeros(len(a), dtype=np.int64), sw, 1)
        stats.check_not_constant(self.constraints_)
        total = float(stats.wsum[0])
        rows = np.flatnonzero(base > 0)
        lo, hi = (stats.range(0) if self.base_weights is None else (C[rows].min(axis=0), C[rows].max(axis=0)))
        check_target_inside(lo, hi, mean, self.constraints_, 0.0, "EntropyBalance", _INFEASIBLE_FIX_CONTINUOUS)
        fit = solve_tilt(C, rows, base, 1.0, total * np.r_[1.0, mean], total, mean, stats.sd(0),
                         names=self.constraints_, tol=self.tol, max_iter=self.max_iter)
        store_fits(self, [fit], "EntropyBalance", approximate="StableWeights(tols=...)")
        weights = np.zeros(len(a))
        weights[rows] = base[rows] * np.exp(fit.coef[0] + (C @ fit.coef[1:])[rows])
        return self._set_weights(weights, data)

    # -- parameters ---------------------------------------------------------------------------------------------
    def _tols(self, n_terms):
        tols = np.atleast_1d(np.asarray(self.tols, dtype=float)) if _is_numeric(self.tols) else None
        if tols is None or tols.ndim != 1 or tols.size not in (1, n_terms) or not np.all(np.isfinite(tols)) \
                or np.any(tols < 0):
            raise ValueError(f"tols={self.tols!r} must be a non-negative number or one per balance term "
                             f"({n_terms} terms: {self.terms_}).")
        return np.broadcast_to(tols, (n_terms,)).copy()

    def _base(self, n, index):
        if self.base_weights is None:
            return np.ones(n)
        try:
            return check_sample_weight(self.base_weights, n, index=index)
        except ValueError as exc:
            raise ValueError(f"base_weights: {exc}") from exc

    # -- M-estimation seam -------------------------------------------------------------------------------------
    def _m_parts(self, X, treatment, sample_weight=None, *, fixed_targets=False):
        check_is_fitted(self, "weights_")
        if np.any(np.asarray(self.tols, dtype=float) > 0):
            raise NotImplementedError(
                "entropy balancing with tols > 0 has no estimating equations (the weights are not smooth in the "
                "data): use a bootstrap variance."
            )
        data, M = new_terms(self, X, treatment, sample_weight)
        a, sw = data.a, data.sample_weight
        base = sw * self._base(len(a), data.index)
        if fixed_targets and data.treatment.kind != "continuous":
            raise ValueError("fixed_targets=True is WeightIt's form for a continuous treatment only.")
        if data.treatment.kind == "continuous":
            return continuous_tilt_parts(a, M, sw, base, self.intercept_, self.coef_, self.terms_,
                                         fixed_targets=fixed_targets)
        estimand = self._estimand()
        target = _target_level(data.treatment, estimand)
        levels = _reweighted(data.treatment.n_levels, target)
        # each group's final weights are its tilted weights times a constant (group size over target size), a
        # constant of the data that does not move with the parameters
        in_target = np.ones(len(a)) if target is None else (a == target).astype(float)
        scales = {g: sw[a == g].sum() / (sw * in_target).sum() for g in levels}
        if data.treatment.kind == "binary":
            return self._binary_parts(M, a, sw, base, scales)
        blocks = [TiltBlock(g, in_target, scale=scales[g]) for g in levels]
        params = np.concatenate([np.r_[self.intercept_[g], self.coef_[g]] for g in levels])
        names = tuple(f"{data.treatment.levels[g]}:{n}" for g in levels for n in ("(Intercept)", *self.terms_))
        return tilt_parts(M, a, sw, base, blocks, params, names)

    def _binary_parts(self, M, a, sw, base, scales):
        """MParts of a binary fit on the term matrix ``M``, the groups' scale constants given."""
        target = {"ATT": 1, "ATC": 0}.get(self._estimand())
        in_target = np.ones(len(a)) if target is None else (a == target).astype(float)
        blocks = [TiltBlock(g, in_target, scale=scales[g]) for g in sorted(scales)]
        names = ("(Intercept)", *self.terms_)
        if target is None:
            params = np.concatenate([self.intercept_[:1], self.coef_[0], self.intercept_[1:], self.coef_[1]])
            names = tuple(f"control:{n}" for n in names) + tuple(f"treated:{n}" for n in names)
        else:
            params = np.concatenate([[self.intercept_], self.coef_])
        return tilt_parts(M, a, sw, base, blocks, params, names)


def _tilt_group(weights, M, a, base, arm, coef, scale):
    """Set the weights of group ``arm`` in place: base exp(λ₀ + M λ) times the group's scale constant.

    The tilted weights sum to the target's size; the group is rescaled to its own size (WeightIt 1.5.1) by the data
    constant the estimating equations use too, so weights_ == MParts.weights(params)."""
    rows = np.flatnonzero((a == arm) & (base > 0))
    weights[a == arm] = 0.0
    eta = coef[0] + (M @ coef[1:])[rows]  # a product over all rows beats gathering the group's
    weights[rows] = base[rows] * np.exp(eta) * scale


def _is_numeric(value):
    try:
        np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (str, bool))


def _target_level(treatment, estimand):
    """The code of the level every other level is weighted to (ATT: treated / focal, ATC: control); None for the
    ATE, whose target is the full sample."""
    if estimand == "ATE":
        return None
    if treatment.kind == "multi-category":
        return treatment.focal
    return 1 if estimand == "ATT" else 0


def _reweighted(n_levels, target):
    """Codes of the levels that are reweighted: all for the ATE, all but the target level otherwise."""
    return [g for g in range(n_levels) if g != target]


def _sd_group(treatment, target):
    if treatment.kind == "binary":
        return "treated and control groups" if target is None else ("control group", "treated group")[target]
    return "treatment levels" if target is None else f"focal level {treatment.levels[target]!r}"


class _GroupStats(GroupStats):
    """:class:`~balance.weights._tilt.GroupStats` with entropy balancing's tolerance units."""

    def tolerance_units(self, M, a, sw, target):
        """Per-term unit of ``tols`` (WeightIt / cobalt): the SD of non-binary terms (the target group's, or for the
        ATE, ``target`` None, the root mean of the variances of all groups; cobalt's variance,
        :func:`balance._stats.group_sd`), the value gap of binary (two-valued) ones, so that their tolerance
        is a difference in proportions as in :func:`balance.balance_table`, however they are coded; halved for the
        ATE, where each group is held within the tolerance of the full-sample target. NaN for a group where one
        unit carries all the weight."""
        binary, gap = binary_gap(M)
        sd = group_sd(M, sw, a, target, len(self.wsum))
        if target is None:
            return np.where(binary, np.abs(gap) / 2.0, sd / 2.0)
        return np.where(binary, np.abs(gap), sd)

