"""Exact (unpenalised) logistic regression by Newton's method, for propensity scores, with a separation test.

scikit-learn's ``LogisticRegression`` is L2-penalised by default, so it is not the maximum-likelihood propensity
model that WeightIt, Stata and every textbook use. This solver runs Newton–Raphson (IRLS) with step halving on
standardised columns until the score is numerically zero, then maps the coefficients back to the original scale.

Under (quasi-)complete separation no maximum exists: Newton's steps keep growing some fitted probabilities towards 0
or 1 and the score still falls below any tolerance, so a converged-looking fit can hide infinite coefficients. When
the fit shows the symptoms (no convergence, a last step that is still large, or fitted probabilities within
``1e-8`` of 0 or 1 after many iterations), :func:`find_separation` runs the linear-programming test of Konis (2007), the one R's
``detectseparation`` uses, and the fit is reported as not converged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import linprog
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning

from .._base import warn_units

# Symptoms that trigger the separation test. Along a separating direction Newton's method converges only linearly:
# each step adds about one unit to the separated units' linear predictor (so the last step is still large) until
# their probabilities are within the tolerance of 0 or 1 (which takes many steps). At a finite maximum the steps
# shrink quadratically (the last one below 1e-3 in standardised units, often far below) after a few iterations.
# Strong but non-separating predictors give probabilities near 0 or 1 in few iterations and do not trigger it.
SYMPTOM_PROB = 1e-8
SYMPTOM_STEP = 1e-3
SYMPTOM_ITER = 15
_HALVINGS = 30


@dataclass(frozen=True)
class Separation:
    """A separating direction found by :func:`find_separation`.

    Attributes
    ----------
    columns : ndarray of int
        Positions (in X, without the intercept) of the covariates that enter the separating direction: their
        maximum-likelihood coefficients are infinite.
    units : ndarray of bool, shape (n_samples,)
        Units strictly on one side of the separating hyperplane: their fitted probabilities tend to exactly 0 or 1.
    """

    columns: np.ndarray
    units: np.ndarray

from .._stats import column_std
from .._validation import well_conditioned
from ._standardize import Standardizer


@dataclass(frozen=True)
class LogisticFit:
    """Result of :func:`fit_logistic`; ``coef[0]`` is the intercept, the rest follow X's columns.

    ``converged`` is False when the iterations ran out, when a Newton step could not increase the likelihood even
    after 30 halvings (``stalled``), or when the data are separated (``separation`` is then set).
    """

    coef: np.ndarray
    converged: bool
    n_iter: int
    score_norm: float
    stalled: bool = False
    separation: Separation | None = None


def _log_likelihood(eta, a, sw):
    # log(1 + exp(eta)) computed stably
    return float(np.sum(sw * (a * eta - np.logaddexp(0.0, eta))))


def logistic_sums(Z, a, sw, beta):
    """Block evaluator of the logistic Newton step at ``beta``: sums over the rows of the block ``(Z, a, sw)``.

    ``Z`` is the standardised design ``[1, (X - center) / scale]``. Returns the log-likelihood, the score
    Σ sw (a − e) z, the information Σ sw e (1 − e) z zᵀ, and ``min_tail``, the smallest min(e, 1 − e) over units of
    positive weight (a symptom of separation). In memory the whole data are one block; on dask the sums of the
    partitions are added (:mod:`balance._blocks`).
    """
    eta = Z @ beta
    e = expit(eta)
    tail = np.minimum(e, 1.0 - e)[sw > 0]
    return {
        "loglik": _log_likelihood(eta, a, sw),
        "score": Z.T @ (sw * (a - e)),
        "info": (Z * (sw * e * (1.0 - e))[:, None]).T @ Z,
        "min_tail": float(tail.min()) if tail.size else np.inf,
    }


def standardised_logistic_sums(matrix, a, sw, std, beta):
    """:func:`logistic_sums` of one block of dask input (model matrix ``matrix``) on the solver's standardised
    design, ``std`` the :class:`~balance.weights._standardize.Standardizer` of all the data."""
    return logistic_sums(np.column_stack([np.ones(len(a)), (matrix - std.center) / std.scale]), a, sw, beta)


def fit_logistic(X, a, sample_weight, *, tol=1e-8, max_iter=100, detect_separation=True):
    """Maximum-likelihood logistic regression of ``a`` on ``[1, X]`` with frequency/sampling weights.

    Convergence: the sup-norm of the score on the standardised scale, ``max_j |sum_i w_i (a_i - e_i) z_ij|`` with
    the weights rescaled to mean 1, falls below ``tol``. Newton's quadratic convergence then puts the coefficients
    at machine precision (a criterion on the *mean* score, or R's relative deviance change of 1e-8, stops one Newton
    step earlier, about 1e-8 away from the maximum). A step that does not increase the likelihood after 30
    halvings is not taken: the fit stops there, not converged (``stalled``).

    With ``detect_separation`` (default), a fit showing the symptoms of separation is checked by
    :func:`find_separation`; a separated fit is returned with ``converged=False`` and its ``separation``.

    Returns
    -------
    LogisticFit
    """
    std = Standardizer.fit(X, np.average(X, axis=0, weights=sample_weight) if X.shape[1] else np.empty(0))
    # column_stack keeps X's memory order (Fortran from a DataFrame), which the BLAS sums below depend on
    Z = np.column_stack([np.ones(len(X)), (X - std.center) / std.scale])
    p1 = np.average(a, weights=sample_weight)
    fit, symptoms = newton_logistic(lambda beta: logistic_sums(Z, a, sample_weight, beta), Z.shape[1], p1,
                                    sample_weight.mean(), tol=tol, max_iter=max_iter)
    separation = find_separation(Z[:, 1:], a, sample_weight) if detect_separation and symptoms else None
    return LogisticFit(coef=std.to_original(fit.coef), converged=fit.converged and separation is None,
                       n_iter=fit.n_iter, score_norm=fit.score_norm, stalled=fit.stalled, separation=separation)


def newton_logistic(evaluate, n_coef, p1, mean_weight, *, tol=1e-8, max_iter=100):
    """Newton–Raphson with step halving on the standardised scale, the sums coming from ``evaluate``.

    ``evaluate(beta)`` returns :func:`logistic_sums` of all the data (one block in memory, summed over partitions
    on dask: one pass per evaluation). ``p1`` is the weighted share of treated units (the intercept's start),
    ``mean_weight`` the mean sampling weight (the score's scale in the convergence rule of :func:`fit_logistic`).

    Returns the fit on the standardised scale (``coef``; no separation test) and whether it shows the symptoms of
    separation.
    """
    beta = np.zeros(n_coef)
    beta[0] = np.log(p1 / (1.0 - p1))
    current = evaluate(beta)
    converged, stalled, score_norm, it, last_step = False, False, np.inf, 0, 0.0
    for it in range(1, max_iter + 1):
        score_norm = float(np.max(np.abs(current["score"])) / mean_weight)
        if score_norm < tol:
            converged, it = True, it - 1
            break
        try:
            step = np.linalg.solve(current["info"], current["score"])
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(current["info"], current["score"], rcond=None)[0]
        # Step halving keeps the likelihood increasing; a step that still lowers it after the last halving is
        # rejected (accepting it could move the fit anywhere) and the fit is reported as not converged.
        loglik = current["loglik"]
        for _ in range(_HALVINGS + 1):
            trial = evaluate(beta + step)
            if trial["loglik"] >= loglik - 1e-12 * abs(loglik):
                break
            step /= 2.0
        else:
            stalled, it = True, it - 1
            break
        beta, current = beta + step, trial
        last_step = float(np.max(np.abs(step)))
    else:
        score_norm = float(np.max(np.abs(current["score"])) / mean_weight)
        converged = score_norm < tol
    fit = LogisticFit(coef=beta, converged=converged, n_iter=it, score_norm=score_norm, stalled=stalled)
    return fit, _has_symptoms(current["min_tail"], converged, last_step, it)


# the pass at which LogisticReplicates replaces the full-sample information by the replicate's own: two chord steps
# bring the iterate within ~ρ² of the replicate's maximum (ρ the steps' contraction, ~0.05 at n = 1e5), where the
# refreshed information contracts the error ~1e3-fold per step instead of ~20-fold (7 passes to rounding, not 11)
_REFRESH = 2


class LogisticReplicates:
    """Refits of a fitted logistic model on frequency-weighted subsets of its units (bootstrap replicates).

    A replicate's maximum is within O(n^-1/2) of the full-sample one and its information matrix within
    O(n^-1/2) relative of the full-sample information, so simplified Newton iterations (the chord method: steps
    from the full-sample information, factorised once) started at the full-sample coefficients converge linearly at
    that rate ρ, each costing one pass over the design (no information matrix, no likelihood for step halving);
    after two steps the information is refreshed once, at the replicate's current iterate.
    They run while a step halves the score's sup-norm (on the standardised scale, the weights scaled to mean 1 over
    the resample), i.e. to the rounding floor, as Newton's last quadratic step takes :func:`fit_logistic` there:
    the coefficients then match a fit of the resampled rows to rounding, not merely to ``tol``, which the final
    score norm must be below. A replicate on which the iterations stop contracting above ``tol``, or whose design
    is rank-deficient, is left to :func:`fit_logistic` (``fit`` returns None).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        The model matrix without its intercept column.
    a : ndarray of shape (n,)
        0/1 outcome.
    sample_weight : ndarray of shape (n,)
    coef : ndarray of shape (p + 1,)
        The fitted coefficients on X (intercept first), e.g. ``fit_logistic(X, a, sample_weight).coef``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 2)); a = rng.binomial(1, 1 / (1 + np.exp(-X[:, 0])))
    >>> sw = np.ones(2000)
    >>> model = LogisticReplicates(X, a, sw, fit_logistic(X, a, sw).coef)
    >>> counts = np.bincount(rng.integers(0, 2000, 2000), minlength=2000)
    >>> rows = np.flatnonzero(counts)
    >>> coef, ps = model.fit(rows, counts[rows] * 1.0, n_draws=2000, tol=1e-8, max_iter=100)
    >>> draw = np.repeat(np.arange(2000), counts)  # the resampled rows, materialised
    >>> bool(np.allclose(coef, fit_logistic(X[draw], a[draw], sw[draw]).coef, rtol=0, atol=1e-10))
    True
    """

    def __init__(self, X, a, sample_weight, coef):
        self.std = Standardizer.fit(X, np.average(X, axis=0, weights=sample_weight) if X.shape[1] else np.empty(0))
        # (p + 1) x n, C-ordered: a replicate's units are gathered row by row, each contiguously
        self.design_t = np.ascontiguousarray(self.std.design(X).T)
        self.a, self.beta = np.asarray(a, dtype=float), self.std.to_standard(np.asarray(coef, dtype=float))
        self.factor = cho_factor(logistic_sums(self.design_t.T, self.a, sample_weight, self.beta)["info"])

    def fit(self, rows, weights, *, n_draws, tol, max_iter):
        """Coefficients (on X's scale) and fitted probabilities of the units ``rows`` with frequency weights
        ``weights`` (count × sampling weight; ``n_draws`` rows resampled in all); None when left to
        :func:`fit_logistic` (see the class notes)."""
        design_t, a = self.design_t[:, rows], self.a[rows]
        if not well_conditioned(np.linalg.eigvalsh(design_t @ design_t.T)):  # e.g. a category not drawn
            return None
        total = weights.sum() / n_draws
        beta, last, factor = self.beta, np.inf, self.factor
        weighted_a, e, residual = weights * a, np.empty(len(rows)), np.empty(len(rows))
        for it in range(max_iter + 1):
            # in place: a quarter of the time of each pass is spent allocating temporaries otherwise
            expit(np.dot(beta, design_t, out=e), out=e)
            np.subtract(weighted_a, np.multiply(weights, e, out=residual), out=residual)
            score = design_t @ residual
            score_norm = float(np.max(np.abs(score)) / total)
            if not score_norm < last / 2:  # no longer contracting: at the rounding floor, or diverging
                break
            if it == _REFRESH:
                try:
                    factor = cho_factor((design_t * (weights * e * (1.0 - e))) @ design_t.T)
                except np.linalg.LinAlgError:  # information not positive definite here: left to fit_logistic
                    return None
            beta, last = beta + cho_solve(factor, score), score_norm
        return (self.std.to_original(beta), e) if score_norm < tol else None


def fit_logistic_blocks(data, *, tol, max_iter):
    """The logistic MLE of dask input (a :class:`~balance._dask_data.DaskFitData`) by :func:`newton_logistic` with
    block-reduced sums (one pass per iteration): the fit, its coefficients on X's scale (intercept first), and
    whether it shows symptoms of separation."""
    std, stats = data.standardizer(), data.stats
    fit, symptoms = newton_logistic(
        lambda beta: data.blocks.reduce(data.per_block(standardised_logistic_sums, std, beta)), len(data.names) + 1,
        stats["sw_a"] / stats["sw_sum"], stats["sw_sum"] / data.n, tol=tol, max_iter=max_iter)
    return fit, std.to_original(fit.coef), symptoms


def warn_separation_untested(who, advice="", stacklevel=3):
    """The warning of a dask fit with symptoms of separation, which is then reported as not converged: the
    linear-programming test (:func:`find_separation`) needs all the rows in memory."""
    warnings.warn(f"{who}: the fit shows symptoms of separation (propensity scores within 1e-8 of 0 or 1, or a last "
                  "Newton step that is still large); the linear-programming test of separation needs the data in "
                  "memory and is not run on dask input, so the fit is reported as not converged. Test a sample in "
                  f"memory, or coarsen the covariates that predict the treatment perfectly{advice}.",
                  ConvergenceWarning, stacklevel=stacklevel + 1)


def _has_symptoms(min_tail, converged, last_step, n_iter):
    """Whether a fit may be separated: cheap checks that decide if the linear program is worth running.

    ``min_tail`` is the smallest min(e, 1 − e) over the units with positive weight."""
    if not converged or last_step > SYMPTOM_STEP:
        return True
    return n_iter >= SYMPTOM_ITER and min_tail < SYMPTOM_PROB


def find_separation(X, a, sample_weight=None):
    """Linear-programming test for (quasi-)complete separation of a binary ``a`` by an intercept and ``X``.

    The data are separated, and the logistic maximum-likelihood estimate does not exist, exactly when some
    direction b ≠ 0 has s_i x_i'b ≥ 0 for every unit, with s_i = 2 a_i − 1 (Albert & Anderson 1984). Following
    Konis (2007), the linear program maximises Σ_i s_i x_i'b under those constraints with b in [−1, 1]^p: its
    optimum is 0 exactly when no such direction exists. The columns are standardised first (the box then treats
    them alike) and an intercept is added; units with zero sample weight are left out.

    Parameters
    ----------
    X : ndarray of shape (n_samples, p)
        The model matrix without its intercept column.
    a : ndarray of shape (n_samples,)
        0/1 outcome.
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    Separation or None
        None when the data are not separated.

    References
    ----------
    Albert, A., & Anderson, J. A. (1984). On the existence of maximum likelihood estimates in logistic regression
    models. Biometrika 71, 1–10.
    Konis, K. (2007). Linear programming algorithms for detecting separated data in binary logistic regression
    models. DPhil thesis, University of Oxford.

    Examples
    --------
    >>> import numpy as np
    >>> from balance.weights._logistic import find_separation
    >>> x = np.array([-2.0, -1.0, 0.0, 0.0, 1.0, 2.0])
    >>> a = np.array([0, 0, 0, 1, 1, 1])
    >>> sep = find_separation(x[:, None], a)
    >>> sep.columns, sep.units.tolist()
    (array([0]), [True, True, False, False, True, True])
    >>> find_separation(x[:, None], np.array([0, 1, 0, 1, 0, 1])) is None
    True
    """
    keep = np.ones(len(a), dtype=bool) if sample_weight is None else np.asarray(sample_weight) > 0
    Z = X[keep] - X[keep].mean(axis=0)
    sd = column_std(Z)
    Z = np.column_stack([np.ones(len(Z)), Z / np.where(sd > 0, sd, 1.0)])
    signed = Z * (2.0 * a[keep] - 1.0)[:, None]
    found = _separating_direction(signed)
    if found is None:
        return None
    b, separated = found
    # one LP vertex may leave some separable units on its hyperplane; the sum of feasible directions is feasible,
    # so add directions that separate the remaining units until none does (then every unit whose probability goes
    # to 0 or 1 is marked)
    while not separated.all():
        more = _separating_direction(signed, objective=~separated)
        if more is None or not np.any(more[1] & ~separated):
            break
        b, separated = b + more[0], separated | more[1]
    columns = np.flatnonzero(np.abs(b[1:]) > 1e-9) + 1
    # the LP's vertex mixes in every column that enlarges the margins; name the single covariates that separate on
    # their own (with the intercept) when there are any, as they are what the user should drop or coarsen
    alone = [j for j in columns if _separating_direction(signed[:, [0, j]]) is not None]
    columns = np.asarray(alone if alone else columns, dtype=int) - 1
    units = np.zeros(len(a), dtype=bool)
    units[np.flatnonzero(keep)[separated]] = True
    return Separation(columns=columns, units=units)


def _separating_direction(signed, objective=None):
    """Solve Konis's LP on the rows s_i x_i; return (b, mask of strictly separated rows) or None.

    ``objective`` (a row mask) restricts the sum that is maximised; every row stays constrained."""
    # max sum_i s_i x_i'b  s.t.  s_i x_i'b >= 0,  -1 <= b <= 1
    rows = signed if objective is None else signed[objective]
    res = linprog(-rows.sum(axis=0), A_ub=-signed, b_ub=np.zeros(len(signed)), bounds=(-1.0, 1.0),
                  method="highs")
    if res.status != 0:
        return None
    margin = signed @ res.x
    # a genuine direction on the unit box separates units by O(1) margins; HiGHS' feasibility tolerance is 1e-7
    size = 1e-6 * max(1.0, float(np.max(np.abs(signed))))
    if not np.any(margin > size) or np.min(margin) < -size:
        return None
    return res.x, margin > size


def report_separation(est, separation, data, who, alternative=""):
    """Store ``separation_`` (term names) and ``n_separated_`` on ``est`` and warn when the data are separated.

    ``data`` is the validated fit data (its ``names`` label the columns the separation test saw, its ``index`` the
    units); ``alternative`` adds a method-specific remedy to the message.
    """
    names = list(getattr(est, "terms_", data.names))
    est.separation_ = [] if separation is None else [names[j] for j in separation.columns]
    est.n_separated_ = 0 if separation is None else int(separation.units.sum())
    if separation is None:
        return
    terms = ", ".join(repr(name) for name in est.separation_) or "the covariates jointly"
    warn_units(
        f"{who}: the treatment is separated by {terms} (with the intercept): {est.n_separated_} units have "
        "propensity scores driven to 0 or 1, the logistic coefficients of those terms are infinite, so the fit "
        "did not converge and positivity fails for those units. Drop or coarsen those covariates, restrict the "
        f"sample to where both groups occur, {alternative}or use a balancing method such as EntropyBalance",
        separation.units, data.index, category=ConvergenceWarning, stacklevel=4,
    )
