"""Covariate balancing by integral probability metric (CBIPM; Kong, Park, Jung, Lee & Kim, ICML 2023)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._base import BaseWeighter
from .._stats import kish_ess, scale_columns
from .._validation import check_constant, check_full_rank

_IPMS = ("mmd", "sipm", "wass")
_MODELS = ("nonpara", "linear")
_SOLVERS = ("adam", "qp")


class CBIPM(BaseWeighter):
    """Covariate balancing weights that minimise an integral probability metric (Kong et al., ICML 2023).

    The weights of one arm are a softmax (strictly positive, summing to one) chosen so that the weighted arm looks
    like the target sample under an integral probability metric (IPM), sup over a discriminator class F of the
    difference in means: for the ATT the controls are weighted towards the treated; for the ATE each arm is weighted
    towards the pooled sample (two independent problems, treated arm first). Three classes F: the unit ball of a
    Gaussian-kernel RKHS (``ipm="mmd"``, closed form), sigmoids x -> sigmoid(theta'x + b) (``"sipm"``, K
    discriminators ascended in parallel) and a one-hidden-layer LeakyReLU network with clipping and a gradient
    penalty approximating the 1-Lipschitz class (``"wass"``). Each problem runs the authors' fixed-length alternating
    scheme: ``adv_steps`` Adam ascent steps of the discriminator, then one Adam descent step of the weights, for
    ``n_epochs`` epochs, returning the last iterate. Covariates are standardised on the pooled sample first.

    Binary treatments only (a multi-category one is refused in one line): the theory carries over (K or K − 1
    independent one-arm problems), but no reference implementation exists to test such an extension against.

    Parameters
    ----------
    estimand : {"ATT", "ATE"}, default="ATT"
        ATT: controls are weighted to the treated, treated units keep their sampling weight. ATE: each arm is
        weighted to the pooled sample.
    ipm : {"mmd", "sipm", "wass"}, default="mmd"
        Discriminator class.
    model : {"nonpara", "linear"}, default="nonpara"
        Weight parametrisation: one free logit per unit (initialised equal, i.e. uniform weights), or the softmax of
        X beta (no intercept; the odds weights of a logistic propensity model). For the ATE the linear model is
        w = 1/n + (1 - n_g/n) softmax(X beta) in an arm of n_g units (normalised inverse propensity weights).
    n_epochs : int, default=1000
        Weight updates (outer iterations). With ``solver="qp"``: the interior-point iteration limit.
    lr : float, default=0.03
        Adam learning rate of the weight parameters.
    adv_steps : int, default=5
        Discriminator ascent steps per epoch (SIPM and WASS).
    adv_lr : float, default=0.3
        Adam learning rate of the discriminators.
    n_sigmoids : int, default=100
        SIPM: number of parallel sigmoid discriminators (the weights descend the largest squared gap).
    hidden : int, default=100
        WASS: width of the hidden layer.
    bandwidth : float or sequence of float, default=10.0
        MMD: Gaussian kernel exp(-|x - y|^2 / (2 bandwidth^2)) on standardised covariates; a sequence averages
        MMD^2 over the bandwidths (the authors' multi-bandwidth mode used (1, 3, 10)).
    wass_slope : float, default=0.1
        WASS: negative slope of the LeakyReLU.
    wass_clip : float or None, default=0.1
        WASS: after each ascent step the weight matrices (not the biases) are clamped to [-wass_clip, wass_clip].
        None switches clipping off.
    wass_gp : float, default=0.3
        WASS: gradient-penalty coefficient tau of tau/R sum_r (|grad f(xhat_r)| - 1)^2 on R interpolates between
        random arm and target points, drawn afresh at each ascent step. 0 switches the penalty off.
    wass_gp_points : int, default=100
        WASS: number R of interpolates.
    solver : {"adam", "qp"}, default="adam"
        "adam": the paper's softmax-Adam path. "qp" (MMD with ``model="nonpara"`` only): the exact minimiser of
        MMD^2 over the simplex, a convex quadratic programme solved by Clarabel. The two differ; see Notes.
    standardize : bool, default=True
        Standardise covariates on the pooled sample (mean 0, population s.d. 1, sampling weights included).
    treated : scalar, default=None
        Which treatment level is treated, when the treatment is neither 0/1 nor boolean.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default="auto"
        What the treatment is; ``"auto"`` decides from the data (two values: binary; categorical or text with more
        levels: multi-category; float: continuous; integers with more than two values: an error asking for this
        parameter). See :mod:`balance._treatment`.
    n_jobs : int, default=None
        Threads of the numba kernels (SIPM: the sigmoids in parallel; WASS: the hidden units; MMD: the kernel
        matrix). None: all of numba's threads (the cores, unless ``NUMBA_NUM_THREADS`` or ``numba.set_num_threads``
        says otherwise) for problems of at least 50,000 unit-discriminator pairs (n x n_sigmoids, n x hidden), one
        thread below, where threads cost more than they save. An integer: that many threads (-1 all, -2 all but
        one). Results do not depend on it. On a machine already busy, ``n_jobs=1`` avoids waiting for threads that
        other processes hold up.
    random_state : None, int, numpy Generator or RandomState, default=None
        Seeds the discriminator initialisation, the linear model's initial coefficients and the gradient-penalty
        draws (all drawn in Python and handed to the kernels): a fixed value makes every fit reproducible.
    verbose : int, default=0
        1: a progress bar over epochs (needs tqdm, the extra ``causal-balance[progress]``; silently skipped without
        it).
    missing : {"error", "indicator"}, default="error"
        Missing covariate values: ``"error"`` raises naming the column; ``"indicator"`` adds a missingness
        indicator ``<column>:<NA>`` per incomplete column and fills its missing values with the observed median
        (WeightIt's and cobalt's approach), so the missingness pattern is balanced too.

    Attributes
    ----------
    weights_ : Series or ndarray of shape (n_samples,)
        Analysis weights, sampling weights included. Scale: ATT, treated units keep their sampling weight and the
        controls sum to the treated total (n_1 without sampling weights, as WeightIt's ATT weights); ATE, each arm
        sums to the sample total n. The scale never changes balance, ESS or a weighted difference in means.
    ipm_history_ : DataFrame of shape (n_epochs, n_problems) or None
        Objective per epoch, one column per balancing problem named by the weighted arm ("control" for the ATT;
        "treated", "control" for the ATE): MMD^2 at the weights entering the epoch; for SIPM max_k D_k^2 and for
        WASS D^2, the squared mean gap the weights descend after that epoch's ascent steps. None for
        ``solver="qp"``.
    ipm_ : ndarray of shape (n_problems,)
        MMD^2 at the returned weights (MMD) or the last recorded objective (SIPM, WASS).
    n_threads_ : ndarray of shape (n_problems,)
        Threads each problem's kernels ran on (see ``n_jobs``; a request beyond numba's thread count is reduced to
        it, with a warning).
    converged_ : bool
        Adam: whether the path has levelled off, in every problem: the objective's mean over the last tenth of the
        epochs moved by less than 1 % of the first epoch's objective from its mean over the tenth before (window
        means, because the adversarial objectives of SIPM and WASS oscillate; the first epoch's value as the scale,
        because the objective tends to 0). The method is a fixed-length procedure whose last iterate is the
        estimator (its early stopping acts as a regulariser, see Notes), so this does not ask for the minimum of
        the IPM: it says that more epochs would no longer move the weights much. At the default 1000 epochs the
        change was below 0.5 % for all three IPMs on lalonde and Kang–Schafer (n = 1000), ATT and ATE (but 4 % in
        SIPM's control problem for the ATE with only 10 sigmoids on 200 units); with too few epochs a
        ConvergenceWarning states the change and suggests raising ``n_epochs``. QP: whether Clarabel reported an
        optimal solution; otherwise a ConvergenceWarning states the Frank–Wolfe gap of the returned weights.
        Adam: also False when a problem's solution is degenerate (see ``degenerate_``).
    degenerate_ : tuple of str
        Adam only (empty for QP): the problems (named as in ``ipm_history_``) whose weights collapsed (Kish effective sample size below 2,
        or one unit holding more than half the arm's weight) or balance clearly worse than the sampling weights
        alone (mean |SMD| of the standardised covariates more than 0.1 above the unweighted one); empty when none did. A
        learning rate too large drives Adam to a vertex of the simplex, where the objective stops moving and the
        plateau test alone would call the path converged. A ConvergenceWarning gives the numbers.
    n_iter_ : int
        Epochs run (Adam, always ``n_epochs``) or the largest number of interior-point iterations over the problems
        (QP, at most ``n_epochs``).
    coef_ : ndarray of shape (n_features,) or (2, n_features)
        ``model="linear"`` only: beta on the standardised covariates (ATE: one row per arm, treated first).
    mean_, scale_ : ndarray of shape (n_features,)
        Pooled standardisation of the model-matrix columns.
    treatment_levels_, n_features_in_, feature_names_in_
        As for every weighter.

    See Also
    --------
    balance.PropensityWeights : logistic propensity weights, with an M-estimation variance.

    Notes
    -----
    ATT problem: min over w in the simplex of d_F(P_1n, sum_j w_j delta_{X_j}) with P_1n the (sampling-weighted)
    treated empirical measure; the code minimises the square of the mean gap. MMD^2(w) = w'K_cc w - 2 w'K_ct p +
    p'K_tt p is a convex quadratic on the simplex. The softmax-Adam path from uniform weights does not reach its
    minimum in 1000 steps: it stops at a larger MMD^2 with far more evenly spread weights (larger effective sample
    size), i.e. the fixed-length path acts as an implicit regulariser towards uniform weights, while the exact
    optimum (``solver="qp"``) concentrates weight on fewer units. The two give different estimates and a different
    bias-variance trade-off; "adam" is the paper's method.

    SIPM: the discriminators ascend the sum of their squared gaps, the weights descend the largest one (the authors'
    multi-start approximation of the supremum). WASS: ascent on D^2 minus the gradient penalty, clipping after every
    step; the weights descend D^2. Analytic gradients and PyTorch's Adam (beta = (0.9, 0.999), eps = 1e-8) run in
    numba kernels (:mod:`balance._kernels._ipm`), in float64 (the authors' code runs in float32).

    Memory: MMD keeps the weighted arm's n_g x n_g kernel matrix (refused beyond 4 GB, about 22,000 units); SIPM
    and WASS need O(n) memory (plus n_g x K stored sigmoid values for SIPM) and suit large samples.

    Sampling weights weight the target measure, the standardisation, the gradient-penalty draws and the softmax's
    base measure. They are divided by the smallest positive one, so that their scale does not matter; the nonpara
    logit gradient is then taken per unit of scaled sampling weight, so integer sampling weights (the smallest 1)
    act as repeated rows. Units are processed in a canonical order (sorted by their covariates), so results do not
    depend on row order.

    There are no estimating equations (no M-estimation form): effect standard errors treat the weights as fixed
    (HC0) or re-solve them in a bootstrap. The augmented estimator of the paper (weights applied to outcome-model
    residuals) is ``WeightedEffect(..., outcome_model="aipw")``.

    References
    ----------
    Kong, I., Park, Y., Jung, J., Lee, K., & Kim, Y. (2023). Covariate balancing using the integral probability
    metric for causal inference. ICML 2023, PMLR 202. arXiv:2305.13715. Code: github.com/ggong369/CBIPM.
    Kim, D., Kim, K., Kong, I., Ohn, I., & Kim, Y. (2022). Learning fair representation with a parametric integral
    probability metric. ICML 2022. arXiv:2202.02943.

    Examples
    --------
    >>> import numpy as np
    >>> from balance import CBIPM, balance_table
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3))
    >>> t = rng.binomial(1, 1 / (1 + np.exp(-X[:, 0])))
    >>> cb = CBIPM(n_epochs=300).fit(X, t)
    >>> bool(np.isclose(cb.weights_[t == 0].sum(), t.sum()))
    True
    >>> table = balance_table(X, t, cb.weights_, estimand="ATT")
    >>> bool(table["smd_adj"].abs().max() < table["smd_un"].abs().max())
    True
    """

    _supported_estimands = ("ATT", "ATE")
    _dask_refusal = "integral probability metrics sum over all pairs of units"

    def __init__(self, estimand="ATT", *, ipm="mmd", model="nonpara", n_epochs=1000, lr=0.03, adv_steps=5,
                 adv_lr=0.3, n_sigmoids=100, hidden=100, bandwidth=10.0, wass_slope=0.1, wass_clip=0.1, wass_gp=0.3,
                 wass_gp_points=100, solver="adam", standardize=True, treated=None, treatment_type="auto",
                 n_jobs=None, random_state=None, verbose=0, missing="error"):
        self.estimand = estimand
        self.ipm = ipm
        self.model = model
        self.n_epochs = n_epochs
        self.lr = lr
        self.adv_steps = adv_steps
        self.adv_lr = adv_lr
        self.n_sigmoids = n_sigmoids
        self.hidden = hidden
        self.bandwidth = bandwidth
        self.wass_slope = wass_slope
        self.wass_clip = wass_clip
        self.wass_gp = wass_gp
        self.wass_gp_points = wass_gp_points
        self.solver = solver
        self.standardize = standardize
        self.treated = treated
        self.treatment_type = treatment_type
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.missing = missing

    # -- fitting ----------------------------------------------------------------------------------------------
    def fit(self, X, treatment, sample_weight=None):
        """Solve for the balancing weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Covariates (numeric, boolean or categorical columns).
        treatment : array-like of shape (n_samples,)
            Binary treatment.
        sample_weight : array-like of shape (n_samples,), default=None
            Sampling (base) weights; units with weight 0 take no part and get weight 0.

        Returns
        -------
        self
        """
        from ._cbipm_solve import solve_problems

        self._check_params()
        data = self._validate_data(X, treatment, sample_weight)
        check_constant(data.X, data.names)
        check_full_rank(data.X, data.names)
        self.__dict__.pop("coef_", None)
        sw = data.sample_weight
        # The solver sees the sampling weights divided by the smallest positive one, so that the fit does not depend
        # on their scale: the nonpara gradient is taken per unit of sampling weight, and Adam's eps (1e-8) swamped
        # the steps of weights multiplied by 1e8. The smallest weight counts as one unit, which leaves unit weights
        # bitwise as they are and keeps integer (frequency) weights equal to repeated rows.
        sw_fit = sw / sw[sw > 0].min()
        # canonical order: sorting by content (and computing everything, the scaling included, on the sorted
        # C-ordered copy) makes every sum, and every random draw by position, free of row order and memory layout
        order = np.lexsort(np.vstack([sw_fit, data.a, data.X.T]))
        X_sorted, a, sw_sorted = np.ascontiguousarray(data.X[order]), data.a[order], sw_fit[order]
        self.mean_, self.scale_ = _pooled_scaling(X_sorted, sw_sorted, self.standardize)
        Z = (X_sorted - self.mean_) / self.scale_
        results = solve_problems(self, Z, a, sw_sorted, _generator(self.random_state))
        weights = np.zeros(len(sw))
        total = sw.sum()
        for res in results:
            scale = sw[data.a == 1].sum() if self._estimand() == "ATT" else total
            weights[order[res.rows]] = res.w * scale
        if self._estimand() == "ATT":
            weights[data.a == 1] = sw[data.a == 1]
        self._store_results(results)
        self._check_degenerate(results, Z, a, sw_sorted)
        return self._set_weights(weights, data)

    def _check_degenerate(self, results, Z, a, sw):
        """Flag solutions that collapsed onto a unit or two, or balance worse than no weighting (``degenerate_``).

        A learning rate too large for the problem can drive Adam to a vertex of the simplex, where the IPM's
        gradient gives no way back and the objective stops moving, so the plateau test alone would call it
        converged. Such a solution is not an estimate: ``converged_`` is set to False and a ConvergenceWarning
        gives the numbers. The QP's exact minimiser is what it is, concentrated or not (extreme weights are reported
        for every method by the base class), so only the Adam path is checked.
        """
        self.degenerate_ = ()
        if self.solver == "qp":
            return
        positive = sw > 0
        sd = np.sqrt(np.average((Z - np.average(Z, axis=0, weights=sw)) ** 2, axis=0, weights=sw))
        sd[sd == 0] = 1.0
        target = positive & (a == 1) if self._estimand() == "ATT" else positive
        target_mean = np.average(Z[target], axis=0, weights=sw[target])
        found = {res.name: _degeneracy(res.w, sw[res.rows], Z[res.rows], target_mean, sd) for res in results}
        found = {name: text for name, text in found.items() if text}
        self.degenerate_ = tuple(found)
        if found:
            self.converged_ = False
            details = "; ".join(f"{name} arm: {text}" for name, text in found.items())
            warnings.warn(f"CBIPM returned a degenerate solution ({details}); lower lr (now {self.lr}): a step this "
                          "large drove the weights to a vertex of the simplex.", ConvergenceWarning, stacklevel=3)

    def _store_results(self, results):
        names = [res.name for res in results]
        if self.solver == "adam":
            self.ipm_history_ = pd.DataFrame({res.name: res.history for res in results})
            self.ipm_history_.index.name = "epoch"
        else:
            self.ipm_history_ = None
        self.ipm_ = np.array([res.value for res in results])
        self.converged_ = all(res.converged for res in results)
        self.n_iter_ = max(res.n_iter for res in results)
        self.n_threads_ = np.array([res.threads for res in results])
        if self.model == "linear":
            self.coef_ = results[0].coef if len(results) == 1 else np.vstack([res.coef for res in results])
        if not self.converged_:
            _warn_not_converged(self, max(res.left for res in results if not res.converged))

    def _linear_model(self):
        return self.model == "linear"

    @available_if(_linear_model)
    def predict_weights(self, X, treatment, sample_weight=None):
        """Weights for new units from the fitted linear weight model (``model="linear"`` only).

        Each arm's softmax is normalised over the new sample and scaled as ``weights_``.

        Returns
        -------
        Series or ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "weights_")
        data = self._validate_data(X, treatment, sample_weight, reset=False)
        Z = (data.X - self.mean_) / self.scale_
        sw, a = data.sample_weight, data.a
        coef = np.atleast_2d(self.coef_)
        weights = np.zeros(len(a))
        if self._estimand() == "ATT":
            arms, scale = [0], sw[a == 1].sum()
            weights[a == 1] = sw[a == 1]
        else:
            arms, scale = [1, 0], sw.sum()
        for beta, arm in zip(coef, arms):
            rows = a == arm
            alpha = sw[rows].sum() / sw.sum() if self._estimand() == "ATE" else 0.0
            eta = Z[rows] @ beta
            s = sw[rows] * np.exp(eta - eta.max())
            weights[rows] = scale * (alpha * sw[rows] / sw[rows].sum() + (1 - alpha) * s / s.sum())
        return self._wrap(weights, data)

    # -- checks ------------------------------------------------------------------------------------------------
    def _check_params(self):
        for name, options in (("ipm", _IPMS), ("model", _MODELS), ("solver", _SOLVERS)):
            if getattr(self, name) not in options:
                raise ValueError(f"{name}={getattr(self, name)!r} is not supported; choose one of {list(options)}.")
        if self.solver == "qp" and (self.ipm != "mmd" or self.model != "nonpara"):
            raise ValueError("solver='qp' solves the MMD problem over the simplex: it needs ipm='mmd' and "
                             f"model='nonpara' (got ipm={self.ipm!r}, model={self.model!r}).")
        for name, minimum in (("n_epochs", 1), ("adv_steps", 0), ("n_sigmoids", 1), ("hidden", 1),
                              ("wass_gp_points", 1), ("verbose", 0)):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum):
                raise ValueError(f"{name}={value!r} must be an integer >= {minimum}.")
        if self.n_jobs is not None and not (isinstance(self.n_jobs, numbers.Integral)
                                            and not isinstance(self.n_jobs, bool) and self.n_jobs != 0):
            raise ValueError(f"n_jobs={self.n_jobs!r} must be None or a non-zero integer (-1: all threads).")
        for name in ("lr", "adv_lr"):
            if not (isinstance(getattr(self, name), numbers.Real) and getattr(self, name) > 0):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a positive number.")
        if not (isinstance(self.wass_gp, numbers.Real) and self.wass_gp >= 0):
            raise ValueError(f"wass_gp={self.wass_gp!r} must be a number >= 0 (0 switches the penalty off).")
        if self.wass_clip is not None and not (isinstance(self.wass_clip, numbers.Real) and self.wass_clip > 0):
            raise ValueError(f"wass_clip={self.wass_clip!r} must be a positive number or None (no clipping).")
        if not (isinstance(self.wass_slope, numbers.Real) and 0 <= self.wass_slope < 1):
            raise ValueError(f"wass_slope={self.wass_slope!r} must lie in [0, 1).")
        bandwidths = np.atleast_1d(np.asarray(self.bandwidth, dtype=object))
        if bandwidths.ndim != 1 or bandwidths.size == 0 or not all(
                isinstance(b, numbers.Real) and np.isfinite(b) and b > 0 for b in bandwidths):
            raise ValueError(f"bandwidth={self.bandwidth!r} must be a positive number or a non-empty list of them.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None and self.ipm != "mmd"
        return tags


def _warn_not_converged(est, left):
    if est.solver == "qp":
        message = (f"CBIPM(solver='qp'): Clarabel did not reach an optimal solution in {est.n_iter_} iterations "
                   f"(limit n_epochs={est.n_epochs}): the Frank-Wolfe gap of its last iterate, projected on the "
                   f"simplex, is {left:.2e} > 1e-10; raise n_epochs.")
    elif np.isfinite(left):
        message = (f"CBIPM: the {est.ipm} objective had not levelled off after {est.n_iter_} epochs: its mean over "
                   f"the last tenth of the epochs still moved by {left:.2e} of the first epoch's value (> 1e-2); "
                   "raise n_epochs (or lr) unless stopping early is intended.")
    else:
        message = (f"CBIPM: {est.n_iter_} epochs are too few to show whether the {est.ipm} objective has levelled off "
                   "(two windows of at least 5 epochs are compared); raise n_epochs.")
    warnings.warn(message, ConvergenceWarning, stacklevel=4)


# A problem's solution is degenerate when its weights collapsed, to a Kish effective sample size below
# COLLAPSE_ESS (in an arm of more than COLLAPSE_ESS units) or one unit holding more than COLLAPSE_SHARE of the weight,
# or when it balances clearly worse than the sampling weights alone: a mean |SMD| more than WORSE_SMD (cobalt's usual
# threshold for imbalance) above the unweighted one. The margin keeps a short or hard fit that ends a little worse
# than it started (0.199 against 0.191 under quasi-complete separation after 20 epochs) from being called degenerate.
COLLAPSE_ESS, COLLAPSE_SHARE, WORSE_SMD = 2.0, 0.5, 0.1


def _degeneracy(w, base, Z, target_mean, sd):
    """What makes simplex weights ``w`` of one arm degenerate (see COLLAPSE_ESS), as text; "" when nothing does."""
    ess, share = kish_ess(w), w.max() / w.sum()
    problems = []
    if len(w) > COLLAPSE_ESS and (ess < COLLAPSE_ESS or share > COLLAPSE_SHARE):
        problems.append(f"Kish ESS {ess:.2f} of {len(w)} units, largest weight share {share:.1%}")
    smd = [np.mean(np.abs(np.average(Z, axis=0, weights=v) - target_mean) / sd) for v in (base, w)]
    if smd[1] > smd[0] + WORSE_SMD:
        problems.append(f"mean |SMD| {smd[1]:.3f} after weighting against {smd[0]:.3f} unweighted")
    return ", ".join(problems)


def _pooled_scaling(X, sw, standardize):
    """Sampling-weighted pooled mean and population s.d. of each column (identity when not standardising)."""
    if not standardize:
        return np.zeros(X.shape[1]), np.ones(X.shape[1])
    Xs, col_scale = scale_columns(X)  # exact: no square of a column of magnitude 1e200 or 1e-200 overflows
    mean = np.average(Xs, axis=0, weights=sw)
    scale = np.sqrt(np.average((Xs - mean) ** 2, axis=0, weights=sw)) * col_scale
    scale[scale == 0] = 1.0  # constant among the units with positive sampling weight: nothing to scale
    return mean * col_scale, scale


def _generator(random_state):
    """A numpy Generator from None, an int, a Generator or a legacy RandomState."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)
