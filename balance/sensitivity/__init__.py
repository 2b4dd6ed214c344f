"""Sensitivity of effect estimates to unmeasured confounding.

Three tools, at three levels of assumption, each also a method of a fitted :class:`balance.WeightedEffect`:

- :func:`evalue` (``effect.evalue()``): E-values (VanderWeele & Ding 2017), the strength on the risk-ratio scale that
  an unmeasured confounder would need with both treatment and outcome to explain the estimate (or its confidence
  interval) away.
- :func:`msm_bounds` (``effect.sensitivity()``, ``effect.breakdown_lambda()``): the marginal sensitivity model for
  weighting estimators (Tan 2006; Zhao, Small & Bhattacharya 2019): sharp bounds of the Hájek estimate when the true
  propensity odds differ from the fitted ones by a factor of at most Λ, with a percentile-bootstrap interval, and
  the Λ at which the interval first contains the null.
- :func:`ovb_sensitivity` (``effect.ovb()``): omitted-variable bias of the outcome regression (Cinelli & Hazlett
  2020): partial R² of the treatment, robustness values, and bounds on a confounder as strong as an observed
  covariate.

Plots: :func:`balance.plot.sensitivity_plot` (bounds against Λ) and :func:`balance.plot.ovb_contour_plot`.

Examples
--------
>>> from balance import PropensityWeights, WeightedEffect
>>> from balance.datasets import load_lalonde
>>> data = load_lalonde()
>>> fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(data.X, data.treatment, data.y)
>>> fit.evalue().round(3).tolist()  # a standardised difference of 1214 / SD(re78): explained away by RR 1.59
[1.589, 1.0]
>>> table = fit.sensitivity([1, 1.5], n_bootstrap=99, random_state=0)
>>> bool(abs(table.loc[1.0, "bound_low"] - fit.estimate_) < 1e-9)  # Λ = 1: no hidden confounding
True
>>> round(fit.breakdown_lambda(ci=False), 3)  # the bounds reach 0 once the odds may be off by a factor 1.257
1.257
>>> additive = WeightedEffect(PropensityWeights(estimand="ATT"), outcome_model="additive")
>>> ovb = additive.fit(data.X, data.treatment, data.y).ovb("married", kd=[1, 2])
>>> round(ovb.rv_q, 3), ovb.bounds.index.tolist()
(0.087, ['1x married', '2x married'])

References
----------
VanderWeele, T. J., & Ding, P. (2017). Sensitivity analysis in observational research: introducing the E-value.
Annals of Internal Medicine 167, 268–274.
Tan, Z. (2006). A distributional approach for causal inference using propensity scores. JASA 101, 1619–1637.
Zhao, Q., Small, D. S., & Bhattacharya, B. B. (2019). Sensitivity analysis for inverse probability weighting
estimators via the percentile bootstrap. JRSS B 81, 735–761.
Cinelli, C., & Hazlett, C. (2020). Making sense of sensitivity: extending omitted variable bias. JRSS B 82, 39–67.
"""

from ._evalue import evalue, evalue_rr
from ._msm import hajek_bounds, msm_bounds
from ._ovb import (OmittedVariableBias, adjusted_se, benchmark_bounds, bias, ovb_sensitivity, partial_r2,
                   robustness_value)

__all__ = ["OmittedVariableBias", "adjusted_se", "benchmark_bounds", "bias", "evalue", "evalue_rr", "hajek_bounds",
           "msm_bounds", "ovb_sensitivity", "partial_r2", "robustness_value"]
