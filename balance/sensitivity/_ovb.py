"""Omitted-variable bias of a regression estimate in the partial-R² parametrisation (Cinelli & Hazlett 2020).

An unobserved confounder Z changes the treatment coefficient of the regression of y on (treatment D, covariates X)
by |bias| = se · sqrt(dof) · sqrt(R²_{Y~Z|D,X} · R²_{D~Z|X} / (1 − R²_{D~Z|X})), where the two partial R² measure
the confounder's association with the outcome and with the treatment. From the regression's t statistic alone:

- the partial R² of the treatment with the outcome, R²_{Y~D|X} = t² / (t² + dof): a confounder explaining all the
  outcome's residual variance must explain at least this much of the treatment's to remove the estimate;
- the robustness value RV_q: the equal strength (both partial R²) of a confounder that reduces the estimate by
  100·q %; RV_{q,α} makes it no longer significant at level α;
- bounds from benchmarks: a confounder k_D times as strongly associated with the treatment and k_Y times with the
  outcome as an observed covariate X_j (Cinelli & Hazlett 2020, section 6).

The regression is the weighted one (as sensemakr runs on ``lm(..., weights = w)``), with its classical standard
error and dof = (units of positive weight) − (coefficients).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


def _plain(values):
    """A float for a scalar result, else the array."""
    values = np.asarray(values, dtype=float)
    return float(values) if values.ndim == 0 else values


def partial_r2(t_statistic, dof):
    """Partial R² of a regressor from its t statistic: t² / (t² + dof).

    Examples
    --------
    Cinelli & Hazlett (2020), Darfur: the treatment's t = 4.18445 on 783 degrees of freedom:

    >>> round(partial_r2(4.18445, 783), 4)
    0.0219
    """
    t2 = np.square(t_statistic)
    return _plain(t2 / (t2 + dof))


def robustness_value(t_statistic, dof, q=1.0, alpha=None):
    """Robustness value RV_q (``alpha=None``) or RV_{q,α} (Cinelli & Hazlett 2020, sections 4.2 and 5).

    RV_q = (sqrt(f_q⁴ + 4 f_q²) − f_q²) / 2 with f_q = q |t| / sqrt(dof). For RV_{q,α}, f_q is first reduced by the
    critical value f* = |t_{α/2, dof−1}| / sqrt(dof − 1) (0 when f_q ≤ f*); when f_q > 1/f* the bound on the
    treatment's partial R² does not bind and RV_{q,α} = (f_q² − f*²) / (1 + f_q²).

    Examples
    --------
    Darfur (Cinelli & Hazlett 2020, Table 1): RV_{q=1} = 13.9 %, RV_{q=1,α=0.05} = 7.6 %

    >>> round(robustness_value(4.18445, 783), 3), round(robustness_value(4.18445, 783, alpha=0.05), 3)
    (0.139, 0.076)
    """
    fq = q * np.abs(t_statistic) / np.sqrt(dof)
    if alpha is None:
        return _plain(0.5 * (np.sqrt(fq ** 4 + 4 * fq ** 2) - fq ** 2))
    f_crit = np.abs(stats.t.ppf(alpha / 2, dof - 1)) / np.sqrt(dof - 1)
    fqa = fq - f_crit
    binding = 0.5 * (np.sqrt(fqa ** 4 + 4 * fqa ** 2) - fqa ** 2)
    loose = (fq ** 2 - f_crit ** 2) / (1 + fq ** 2)
    return _plain(np.where(fqa < 0, 0.0, np.where(fq > 1 / f_crit, loose, binding)))


def bias(se, dof, r2dz_x, r2yz_dx):
    """|Bias| of the treatment coefficient due to a confounder of partial R² ``r2dz_x`` with the treatment and
    ``r2yz_dx`` with the outcome."""
    r2dz_x, r2yz_dx = np.asarray(r2dz_x, dtype=float), np.asarray(r2yz_dx, dtype=float)
    return se * np.sqrt(dof) * np.sqrt(r2yz_dx * r2dz_x / (1 - r2dz_x))


def adjusted_se(se, dof, r2dz_x, r2yz_dx):
    """The standard error the regression would have with the confounder included."""
    r2dz_x, r2yz_dx = np.asarray(r2dz_x, dtype=float), np.asarray(r2yz_dx, dtype=float)
    return se * np.sqrt((1 - r2yz_dx) / (1 - r2dz_x)) * np.sqrt(dof / (dof - 1))


def benchmark_bounds(r2dxj_x, r2yxj_dx, kd=1.0, ky=None):
    """Partial R² of a confounder k_D (k_Y) times as strong as a covariate X_j (Cinelli & Hazlett 2020, eq. 11–13).

    Parameters
    ----------
    r2dxj_x : float
        Partial R² of X_j with the treatment, given the other covariates.
    r2yxj_dx : float
        Partial R² of X_j with the outcome, given the treatment and the other covariates.
    kd, ky : float or array-like, default ky=kd

    Returns
    -------
    r2dz_x, r2yz_dx : ndarray
        The confounder's partial R² with the treatment and with the outcome (the latter capped at 1 with a
        warning, as sensemakr does).
    """
    kd = np.atleast_1d(np.asarray(kd, dtype=float))
    ky = kd if ky is None else np.broadcast_to(np.asarray(ky, dtype=float), kd.shape)
    if np.any(kd <= 0) or np.any(ky <= 0):
        raise ValueError(f"kd={kd.tolist()} and ky={np.asarray(ky).tolist()} must be positive.")
    r2dz_x = kd * r2dxj_x / (1 - r2dxj_x)
    r2zxj_xd = kd * r2dxj_x ** 2 / ((1 - kd * r2dxj_x) * (1 - r2dxj_x))
    if np.any(r2dz_x >= 1) or np.any(r2zxj_xd >= 1) or np.any(kd * r2dxj_x >= 1):
        raise ValueError(f"kd={kd.tolist()} is impossible for this covariate: a confounder that strong would explain "
                         "all of the treatment's residual variance. Use a smaller kd.")
    r2yz_dx = (np.sqrt(ky) + np.sqrt(r2zxj_xd)) ** 2 / (1 - r2zxj_xd) * r2yxj_dx / (1 - r2yxj_dx)
    if np.any(r2yz_dx > 1):
        warnings.warn("benchmark bound on the confounder's partial R² with the outcome exceeds 1 (capped at 1); "
                      "use a smaller kd or ky.", UserWarning, stacklevel=3)
    return r2dz_x, np.minimum(r2yz_dx, 1.0)


def _wls(design, y, weights):
    """Weighted least squares: coefficients and the residual sum of squares Σ w e²."""
    root = np.sqrt(weights)
    coef, *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
    resid = (y - design @ coef) * root
    return coef, resid @ resid


@dataclass(frozen=True)
class OmittedVariableBias:
    """Sensitivity of a regression's treatment coefficient to an omitted confounder (Cinelli & Hazlett 2020).

    Attributes
    ----------
    estimate, std_err : float
        The treatment coefficient and its classical (model-based) standard error.
    dof : int
        Residual degrees of freedom.
    t_statistic : float
    partial_r2 : float
        R²_{Y~D|X}, the treatment's partial R² with the outcome.
    rv_q, rv_qa : float
        Robustness values RV_q and RV_{q,α}.
    q, alpha : float
    bounds : DataFrame
        One row per benchmark (label "k× name"): ``r2dz_x``, ``r2yz_dx`` and the adjusted estimate, standard error,
        t statistic and interval (:meth:`adjusted`).
    """

    estimate: float
    std_err: float
    dof: int
    t_statistic: float
    partial_r2: float
    rv_q: float
    rv_qa: float
    q: float
    alpha: float
    bounds: pd.DataFrame

    def adjusted(self, r2dz_x, r2yz_dx):
        """The estimate, standard error, t statistic and (1 − α) interval with a confounder of the given
        strengths included (the bias taken towards zero, as sensemakr's ``reduce = TRUE``)."""
        r2dz_x, r2yz_dx = np.broadcast_arrays(np.asarray(r2dz_x, float), np.asarray(r2yz_dx, float))
        if np.any((r2dz_x < 0) | (r2dz_x >= 1) | (r2yz_dx < 0) | (r2yz_dx > 1)):
            raise ValueError("partial R² values must be in [0, 1) for the treatment and [0, 1] for the outcome.")
        est = np.sign(self.estimate) * (abs(self.estimate) - bias(self.std_err, self.dof, r2dz_x, r2yz_dx))
        se = adjusted_se(self.std_err, self.dof, r2dz_x, r2yz_dx)
        crit = stats.t.ppf(1 - self.alpha / 2, self.dof - 1)
        with np.errstate(divide="ignore", invalid="ignore"):  # a confounder explaining all of y: se 0, t ±inf
            return pd.DataFrame({"adjusted_estimate": est.ravel(), "adjusted_se": se.ravel(),
                                 "adjusted_t": (est / se).ravel(), "adjusted_lower": (est - crit * se).ravel(),
                                 "adjusted_upper": (est + crit * se).ravel()})

    def summary(self):
        """The headline numbers as a Series (sensemakr's minimal reporting)."""
        return pd.Series({"estimate": self.estimate, "std_err": self.std_err, "t_statistic": self.t_statistic,
                          "dof": self.dof, "partial_r2": self.partial_r2, f"rv_q{self.q:g}": self.rv_q,
                          f"rv_q{self.q:g}_alpha{self.alpha:g}": self.rv_qa}, name="omitted-variable bias")


def _benchmark_columns(name, names, groups):
    """Design columns of a benchmark: one design column, or every column of an original (e.g. factor) column."""
    if name in names:
        return [names.index(name)]
    if name in groups:
        return groups[name]
    raise ValueError(f"benchmark covariate {name!r} is neither a covariate nor a design column; choose from "
                     f"{sorted(set(names) | set(groups))}.")


def ovb_sensitivity(y, treatment, covariates, names=None, *, weights=None, benchmark_covariates=None, kd=1.0,
                    ky=None, q=1.0, alpha=0.05, groups=None, treatment_weights=None):
    """Omitted-variable-bias sensitivity of the weighted regression y ~ 1 + treatment + covariates.

    Parameters
    ----------
    y : array-like of shape (n,)
    treatment : array-like of shape (n,)
        Numeric (0/1) treatment.
    covariates : DataFrame or array-like of shape (n, p)
    names : list of str, default=None
        Column names (a DataFrame's columns, else x0, x1, ...).
    weights : array-like of shape (n,), default=None
        Regression weights; units of zero weight do not count towards the degrees of freedom.
    benchmark_covariates : str or list of str, default=None
        Covariates (design columns, or keys of ``groups``) to benchmark the confounder against.
    kd, ky : float or list of float, default=1, ky=kd
        The confounder is ``kd`` times as strongly associated with the treatment and ``ky`` times with the outcome
        as each benchmark covariate (partial R² ratios).
    q : float, default=1
        Fraction of the estimate to remove for the robustness value (1: to zero).
    alpha : float, default=0.05
    groups : dict of str to list of int, default=None
        Named groups of design columns (a factor's dummies), benchmarked together (group partial R²).
    treatment_weights : array-like of shape (n,), default=None
        Weights of the treatment regression that measures a benchmark's association with the treatment; None: the
        outcome regression's ``weights`` (sensemakr's convention). Pass ones to measure it before weighting: weights
        that balance the covariates remove their association with the treatment, so a benchmark measured after
        weighting says little about a confounder the weights did not balance.

    Returns
    -------
    OmittedVariableBias

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(500, 2)); d = (x[:, 0] + rng.normal(size=500) > 0).astype(float)
    >>> y = d + x @ [1.0, 0.5] + rng.normal(size=500)
    >>> res = ovb_sensitivity(y, d, x, benchmark_covariates="x1", kd=[1, 2])
    >>> res.bounds.index.tolist()
    ['1x x1', '2x x1']
    """
    covariates_df = covariates if isinstance(covariates, pd.DataFrame) else None
    matrix = np.asarray(covariates, dtype=float)
    matrix = matrix.reshape(len(matrix), -1)
    names = list(covariates_df.columns.astype(str)) if names is None and covariates_df is not None else names
    names = [f"x{j}" for j in range(matrix.shape[1])] if names is None else list(names)
    y, d = np.asarray(y, dtype=float), np.asarray(treatment, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    if not (len(y) == len(d) == len(w) == len(matrix)) or len(names) != matrix.shape[1]:
        raise ValueError("y, treatment, weights and covariates (and names) must have matching lengths.")
    if not (isinstance(q, numbers.Real) and q > 0) or not (isinstance(alpha, numbers.Real) and 0 < alpha < 1):
        raise ValueError(f"q={q!r} must be positive and alpha={alpha!r} in (0, 1).")
    wd = w if treatment_weights is None else np.asarray(treatment_weights, dtype=float)
    if len(wd) != len(w):
        raise ValueError("treatment_weights must have one entry per unit.")
    keep = w > 0
    y, d, w, wd, matrix = y[keep], d[keep], w[keep], wd[keep], matrix[keep]
    outcome_design = np.column_stack([np.ones(len(y)), d, matrix])
    dof = len(y) - outcome_design.shape[1]
    if dof < 2 or np.linalg.matrix_rank(outcome_design * np.sqrt(w)[:, None]) < outcome_design.shape[1]:
        raise ValueError("the regression of y on the treatment and covariates is rank deficient or has fewer than "
                         "two residual degrees of freedom; drop collinear covariates.")
    coef, rss = _wls(outcome_design, y, w)
    xtx_inv = np.linalg.inv((outcome_design * w[:, None]).T @ outcome_design)
    se = float(np.sqrt(rss / dof * xtx_inv[1, 1]))
    t_stat = float(coef[1] / se)

    bench = [benchmark_covariates] if isinstance(benchmark_covariates, str) else list(benchmark_covariates or [])
    rows = []
    treatment_design = np.column_stack([np.ones(len(y)), matrix])
    _, rss_d = _wls(treatment_design, d, wd)
    for name in bench:
        cols = _benchmark_columns(name, names, groups or {})
        # group partial R² = (RSS without the columns − RSS with them) / RSS without them, in both regressions
        _, rss_y_reduced = _wls(np.delete(outcome_design, [2 + j for j in cols], axis=1), y, w)
        _, rss_d_reduced = _wls(np.delete(treatment_design, [1 + j for j in cols], axis=1), d, wd)
        r2yxj_dx = (rss_y_reduced - rss) / rss_y_reduced
        r2dxj_x = (rss_d_reduced - rss_d) / rss_d_reduced
        r2dz, r2yz = benchmark_bounds(r2dxj_x, r2yxj_dx, kd, ky)
        kds = np.atleast_1d(kd)
        for k, (r2d, r2y) in enumerate(zip(r2dz, r2yz)):
            rows.append({"label": f"{kds[k]:g}x {name}", "r2dz_x": r2d, "r2yz_dx": r2y})
    result = OmittedVariableBias(
        estimate=float(coef[1]), std_err=se, dof=int(dof), t_statistic=t_stat, partial_r2=float(partial_r2(t_stat,
        dof)), rv_q=float(robustness_value(t_stat, dof, q)), rv_qa=float(robustness_value(t_stat, dof, q, alpha)),
        q=float(q), alpha=float(alpha), bounds=pd.DataFrame(columns=["r2dz_x", "r2yz_dx"]))
    if rows:
        table = pd.DataFrame(rows).set_index("label")
        table = pd.concat([table, result.adjusted(table["r2dz_x"], table["r2yz_dx"]).set_index(table.index)], axis=1)
        object.__setattr__(result, "bounds", table)
    return result


def effect_ovb(effect, benchmark_covariates=None, *, kd=1.0, ky=None, q=1.0, alpha=0.05,
               benchmark_treatment="unweighted"):
    """Omitted-variable bias of a fitted WeightedEffect with ``outcome_model="additive"`` (see
    :meth:`balance.WeightedEffect.ovb`)."""
    from sklearn.utils.validation import check_is_fitted

    from ..effects._weighted_effect import _final_step
    from ._msm import effect_design

    check_is_fitted(effect, "result_")
    problem = effect._problem
    if effect.outcome_model != "additive" or problem.family != "gaussian" or problem.n_levels != 2:
        raise ValueError("the omitted-variable-bias analysis (Cinelli & Hazlett 2020) is that of a linear regression "
                         "of the outcome on a binary treatment and the covariates: fit WeightedEffect with "
                         "outcome_model='additive' and a numeric outcome (family 'gaussian'); this effect has "
                         f"outcome_model={effect.outcome_model!r}, family {problem.family!r}, "
                         f"{problem.n_levels} treatment levels.")
    if effect.scale != "difference":
        raise ValueError(f"the omitted-variable-bias analysis is on the difference scale; scale={effect.scale!r}.")
    if benchmark_treatment not in ("unweighted", "weighted"):
        raise ValueError(f"benchmark_treatment={benchmark_treatment!r}; choose 'unweighted' or 'weighted'.")
    weights = np.asarray(_final_step(effect.weighter_).weights_, dtype=float)
    sw = problem.sample_weight
    # before weighting: the sampling weights only (units the analysis gave zero weight stay out)
    unweighted = np.where(weights > 0, 1.0 if sw is None else sw, 0.0)
    matrix, names, design = effect_design(effect)
    groups = {col: [names.index(f"{col}_{level}") for level in levels[1:]]
              for col, levels in zip(design.columns, design.categories) if levels is not None and len(levels) > 2}
    return ovb_sensitivity(problem.y * effect._y_unit, problem.a, matrix, names,
                           weights=weights, benchmark_covariates=benchmark_covariates, kd=kd, ky=ky, q=q,
                           alpha=alpha, groups=groups,
                           treatment_weights=unweighted if benchmark_treatment == "unweighted" else None)
