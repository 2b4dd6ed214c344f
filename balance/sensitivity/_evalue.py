"""E-values (VanderWeele & Ding 2017): how strong an unmeasured confounder would have to be to explain an effect away.

The E-value of a risk ratio RR (taken ≥ 1, inverting a protective one) is RR + sqrt(RR (RR − 1)): the smallest risk
ratio that a confounder would need with both the treatment and the outcome, conditional on the measured covariates,
to move the true effect to the null. Other measures are first converted to the risk-ratio scale (VanderWeele & Ding
2017, Table 2):

- odds ratio, rare outcome (< 15 %): RR ≈ OR; common outcome: RR ≈ sqrt(OR);
- hazard ratio, rare outcome: RR ≈ HR; common outcome: RR ≈ (1 − 0.5^sqrt(HR)) / (1 − 0.5^sqrt(1/HR));
- difference in means: RR ≈ exp(0.91 d), d the standardised difference (the difference divided by the outcome's
  standard deviation).

The E-value of the confidence interval is that of the limit closer to the null, and 1 when the interval contains
the null.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

MEASURES = ("RR", "OR", "HR", "MD")


def _to_risk_ratio(value, measure, rare, sd):
    """One estimate or confidence limit on the approximate risk-ratio scale."""
    if measure == "RR" or (measure in ("OR", "HR") and rare):
        return value
    if measure == "OR":
        return np.sqrt(value)
    if measure == "HR":
        return (1 - 0.5 ** np.sqrt(value)) / (1 - 0.5 ** np.sqrt(1 / value))
    return np.exp(0.91 * value / sd)


def evalue_rr(rr):
    """The E-value of a risk ratio (the point itself, without the rule for confidence limits).

    Examples
    --------
    VanderWeele & Ding's (2017) breastfeeding example, RR 3.9:

    >>> round(evalue_rr(3.9), 2)
    7.26
    >>> evalue_rr(1.0), round(evalue_rr(0.5), 4) == round(evalue_rr(2.0), 4)
    (1.0, True)
    """
    rr = float(rr)
    if not rr > 0 or not np.isfinite(rr):
        raise ValueError(f"a risk ratio must be positive and finite; got {rr!r}.")
    rr = max(rr, 1 / rr)
    return float(rr + np.sqrt(rr * (rr - 1)))


def evalue(estimate, lower=None, upper=None, *, measure="RR", rare=None, sd=None, true=None):
    """E-values of an estimate and of its confidence interval (VanderWeele & Ding 2017).

    Parameters
    ----------
    estimate : float
        The effect on the scale of ``measure``.
    lower, upper : float, default=None
        Confidence limits on the same scale; without them the ``ci`` E-value is NaN.
    measure : {"RR", "OR", "HR", "MD"}, default="RR"
        Risk ratio, odds ratio, hazard ratio, or difference in means ("MD", converted through the standardised
        difference estimate / ``sd``).
    rare : bool, default=None
        For "OR" and "HR": whether the outcome is rare (under 15 % at the end of follow-up), in which case the ratio
        approximates the risk ratio; required for those measures.
    sd : float, default=None
        For "MD": the outcome's standard deviation (VanderWeele & Ding suggest the residual SD given treatment and
        covariates; the marginal SD is a conservative choice). Required for "MD".
    true : float, default=None
        The true effect to which the confounder would have to shift the estimate, on the scale of ``measure``; None
        is the null (1 for ratios, 0 for "MD").

    Returns
    -------
    Series
        ``estimate`` (the point estimate's E-value) and ``ci`` (that of the limit closer to ``true``; 1 when the
        interval contains it), with the estimate and limits on the risk-ratio scale in ``attrs["rr"]``.

    Examples
    --------
    VanderWeele & Ding (2017): breastfeeding and respiratory death, RR 3.9 (95 % CI 1.8 to 8.7):

    >>> evalue(3.9, 1.8, 8.7).round(2).tolist()
    [7.26, 3.0]

    A protective odds ratio with a common outcome (the EValue R package's example of ``evalues.OR``):

    >>> evalue(0.86, 0.75, 0.99, measure="OR", rare=False).round(3).tolist()
    [1.369, 1.076]
    """
    measure = str(measure).upper()
    if measure not in MEASURES:
        raise ValueError(f"measure={measure!r}; choose one of {list(MEASURES)}.")
    if measure in ("OR", "HR") and rare is None:
        raise ValueError(f"measure={measure!r} needs rare=True (outcome under 15 %: the ratio approximates the risk "
                         "ratio) or rare=False (common outcome: the square-root conversion).")
    if measure == "MD" and not (isinstance(sd, numbers.Real) and np.isfinite(sd) and sd > 0):
        raise ValueError(f"measure='MD' needs sd, the outcome's standard deviation (a positive number); got {sd!r}.")
    values = {"estimate": estimate, "lower": lower, "upper": upper}
    for name, value in values.items():
        if value is not None and not (isinstance(value, numbers.Real) and np.isfinite(value)):
            raise ValueError(f"{name}={value!r} must be a finite number or None.")
        if value is not None and measure != "MD" and value <= 0:
            raise ValueError(f"{name}={value!r}: a {measure} must be positive.")
    if lower is not None and upper is not None and not lower <= estimate <= upper:
        raise ValueError(f"the interval ({lower}, {upper}) must contain the estimate {estimate}.")
    rr = {k: np.nan if v is None else float(_to_risk_ratio(v, measure, rare, sd)) for k, v in values.items()}
    null = 1.0 if true is None else float(_to_risk_ratio(true, measure, rare, sd))
    if not null > 0:
        raise ValueError(f"true={true!r} must be positive for a {measure}.")
    point = evalue_rr(rr["estimate"] / null)
    if rr["lower"] <= null <= rr["upper"]:
        ci = 1.0
    elif rr["estimate"] > null:
        ci = evalue_rr(rr["lower"] / null) if lower is not None else np.nan
    else:
        ci = evalue_rr(rr["upper"] / null) if upper is not None else np.nan
    out = pd.Series({"estimate": point, "ci": ci}, name="E-value")
    out.attrs["rr"] = rr
    return out


def effect_evalue(effect, *, rare=None, sd=None, alpha=0.05):
    """E-values of a fitted WeightedEffect's effect and confidence interval (see
    :meth:`balance.WeightedEffect.evalue`)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(effect, "result_")
    result = effect.result_
    y = effect._problem.y * effect._y_unit
    binary_outcome = bool(np.all((y == 0) | (y == 1)))
    if result.scale == "rr":
        measure = "RR"
    elif result.scale == "or":
        measure = "OR"
        if rare is None:  # VanderWeele & Ding's rule: rare when the outcome occurs in under 15 % of either arm
            rare = bool(effect.potential_outcomes_["estimate"].max() < 0.15)
    elif binary_outcome:
        raise ValueError("E-values of a risk difference need the risk-ratio scale: fit WeightedEffect with "
                         "scale='rr' (or 'or') for a 0/1 outcome.")
    else:
        measure = "MD"
        if sd is None:  # the marginal SD: VanderWeele & Ding's conservative choice (a smaller standardised effect)
            sd = float(np.std(y, ddof=1))
    ci = result.conf_int(alpha)
    rows = {}
    for label in result.estimate.index[:result.n_contrasts]:
        rows[label] = evalue(float(result.estimate[label]), float(ci.loc[label, "lower"]),
                             float(ci.loc[label, "upper"]), measure=measure, rare=rare, sd=sd)
    if result.n_contrasts == 1:
        return next(iter(rows.values()))
    return pd.DataFrame(rows).T
