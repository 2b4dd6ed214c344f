"""Rubin's rules: pooling estimates over multiply imputed data sets, with the Barnard–Rubin degrees of freedom."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

POOLED_COLUMNS = ("estimate", "std_err", "df", "conf_low", "conf_high", "p_value", "riv", "lambda", "fmi")


def rubin_pool(estimates, variances, dfcom=np.inf, alpha=0.05):
    """Pool per-imputation estimates and their variances by Rubin's rules (as R's ``mice::pool``).

    Parameters
    ----------
    estimates : DataFrame or array-like of shape (m, q)
        One row per imputation, one column per quantity (a 1-d array is one quantity).
    variances : DataFrame or array-like of shape (m, q)
        Each estimate's squared standard error, from its own imputation's fit.
    dfcom : float, default=inf
        Degrees of freedom of the complete-data analysis (n − p for a linear model); ``inf`` gives Rubin's (1987)
        large-sample degrees of freedom.
    alpha : float, default=0.05
        1 − confidence level of ``conf_low`` / ``conf_high``.

    Returns
    -------
    DataFrame
        One row per quantity: ``estimate`` (Q̄, the mean of the estimates), ``std_err`` (√T), ``df`` (Barnard–Rubin),
        ``conf_low``, ``conf_high`` (Q̄ ± t_{df, 1−α/2} √T), ``p_value`` (two-sided t test of 0), ``riv`` (relative
        increase in variance r), ``lambda`` (λ, the share of T due to the imputations), ``fmi`` (fraction of missing
        information); plus ``ubar``, ``b`` and ``t`` (the within, between and total variances).

    Notes
    -----
    With m imputations, Ū the mean of the variances, B the variance of the estimates (divisor m − 1):
    T = Ū + (1 + 1/m) B, r = (1 + 1/m) B / Ū, λ = (1 + 1/m) B / T. Barnard & Rubin (1999):
    ν_old = (m − 1) / λ², ν_obs = (ν_com + 1) / (ν_com + 3) · ν_com · (1 − λ), ν = ν_old ν_obs / (ν_old + ν_obs),
    with λ floored at 1e-4 inside ν_old (so that B = 0 gives a finite ν); ν = ν_old when ν_com is infinite.
    fmi = (r + 2 / (ν + 3)) / (r + 1). These are mice 3.15's formulas (``pool``, ``barnard.rubin``).

    References
    ----------
    Rubin, D. B. (1987). Multiple Imputation for Nonresponse in Surveys. Wiley.
    Barnard, J., & Rubin, D. B. (1999). Small-sample degrees of freedom with multiple imputation. Biometrika 86,
    948–955.

    Examples
    --------
    >>> out = rubin_pool([1.0, 1.2, 0.9, 1.1, 1.3], [0.04] * 5, dfcom=100)
    >>> out[["estimate", "std_err", "df"]].round(4)
       estimate  std_err       df
    0       1.1   0.2646  15.6826
    """
    names = estimates.columns if isinstance(estimates, pd.DataFrame) else None
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    if q.ndim == 1:
        q, u = q[:, None], u[:, None]
    if q.shape != u.shape:
        raise ValueError(f"estimates {q.shape} and variances {u.shape} must have the same shape.")
    m = q.shape[0]
    if m < 2:
        raise ValueError(f"Rubin's rules need at least 2 imputations; got {m}.")
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(u)) and np.all(u >= 0)):
        raise ValueError("estimates and variances must be finite, and variances non-negative.")
    if not dfcom > 0:
        raise ValueError(f"dfcom={dfcom!r} must be positive (n − p of the complete-data analysis, or inf).")
    qbar, ubar, b = q.mean(axis=0), u.mean(axis=0), q.var(axis=0, ddof=1)
    total = ubar + (1 + 1 / m) * b
    with np.errstate(divide="ignore", invalid="ignore"):
        riv = (1 + 1 / m) * b / ubar
        lam = (1 + 1 / m) * b / total
    df = _barnard_rubin(m, lam, dfcom)
    se = np.sqrt(total)
    crit = student_t.ppf(1 - alpha / 2, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = 2 * student_t.sf(np.abs(qbar / se), df)
    return pd.DataFrame({
        "estimate": qbar, "std_err": se, "df": df, "conf_low": qbar - crit * se, "conf_high": qbar + crit * se,
        "p_value": p_value, "riv": riv, "lambda": lam, "fmi": (riv + 2 / (df + 3)) / (riv + 1),
        "ubar": ubar, "b": b, "t": total,
    }, index=names)


def _barnard_rubin(m, lam, dfcom):
    """Barnard–Rubin degrees of freedom (λ floored at 1e-4 in ν_old, as mice does)."""
    df_old = (m - 1) / np.maximum(lam, 1e-4) ** 2
    if np.isinf(dfcom):
        return df_old
    df_obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    return df_old * df_obs / (df_old + df_obs)
