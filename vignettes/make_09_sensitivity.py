"""The script that wrote vignettes/09-sensitivity.ipynb (run from the repository root; outputs are not stored, as for
the other vignettes, which tests/test_vignettes.py executes). Edit the cells here and re-run it, or edit the notebook
and delete this script."""

from _notebook import write_notebook

CELLS = [
    ("md", """# How wrong could it be? Sensitivity to unmeasured confounding (lalonde)

Every weighting estimate rests on *no unmeasured confounding*: given the covariates we weighted on, treatment is as
good as random. No data can check that. A sensitivity analysis asks the next best question: **how strong would an
unmeasured confounder have to be to change the conclusion?** `causal-balance` answers it in three ways, each a
method of a fitted `WeightedEffect`:

| tool | method | the confounder's strength is measured as | needs |
|---|---|---|---|
| E-value (VanderWeele & Ding 2017) | `effect.evalue()` | a risk ratio with both treatment and outcome | any effect |
| marginal sensitivity model (Tan 2006; Zhao, Small & Bhattacharya 2019) | `effect.sensitivity()`, `effect.breakdown_lambda()` | Λ: how far the true propensity odds may be from the fitted ones | `outcome_model="simple"` |
| omitted-variable bias (Cinelli & Hazlett 2020) | `effect.ovb()` | partial R² with treatment and with outcome, benchmarked on observed covariates | `outcome_model="additive"` |

We use the National Supported Work data (lalonde): the effect on 1978 earnings (`re78`) of a job-training programme,
for those who took part (the ATT), with propensity-score weights."""),
    ("code", """import matplotlib.pyplot as plt
import pandas as pd

from balance import PropensityWeights, WeightedEffect
from balance.datasets import load_lalonde
from balance.plot import ovb_contour_plot, sensitivity_plot

pd.set_option("display.width", 120)
pd.set_option("display.precision", 3)

data = load_lalonde()
effect = WeightedEffect(PropensityWeights(estimand="ATT"), random_state=0).fit(data.X, data.treatment, data.y)
effect.summary()"""),
    ("md", """The weighted estimate is about \\$1,200 a year, with a 95 % interval from about −\\$350 to \\$2,800: already
compatible with no effect. The sensitivity analyses say how much hidden confounding it would take to move the
estimate itself (and its interval) to zero.

## 1. E-value

For an effect on earnings (a difference in means), the E-value converts the standardised difference
d = estimate / SD(re78) to an approximate risk ratio exp(0.91 d) and asks how strong a confounder must be, on the
risk-ratio scale, to explain that away. The SD is the outcome's marginal one (VanderWeele & Ding's conservative
choice; pass `sd=` for another)."""),
    ("code", """effect.evalue()"""),
    ("md", """**Reading.** An unmeasured confounder associated with both programme participation and earnings by a risk
ratio of about 1.6 each (beyond the measured covariates) could explain the estimate away; the interval's E-value is
1, because the interval contains zero already: no confounding at all is needed to make it compatible with no
effect. A risk ratio of 1.6 is not a strong association: the estimate is fragile. E-values are easy to report, but
they ignore how the estimate was obtained; the next two tools use it.

## 2. The marginal sensitivity model

Suppose each participant's true odds of taking part (given the covariates *and* the unmeasured confounder) may be up
to Λ times larger or smaller than the fitted propensity odds. For the ATT this moves the controls' weights
(e/(1 − e)) within a factor Λ; `sensitivity` finds the sharp bounds of the weighted estimate over all such weights,
for each Λ, and a percentile-bootstrap interval that re-estimates the propensity model in every replicate."""),
    ("code", """table = effect.sensitivity(lambdas=[1, 1.1, 1.25, 1.5, 2], n_bootstrap=199, random_state=0)
table"""),
    ("code", """bounds_breakdown = effect.breakdown_lambda(ci=False)  # where the bounds themselves reach zero
ci_breakdown = effect.breakdown_lambda(n_bootstrap=199, random_state=0)  # where the interval does
print(f"bounds reach 0 at Λ = {bounds_breakdown:.3f}; the interval contains 0 from Λ = {ci_breakdown:.3f}")
ax = sensitivity_plot(table, breakdown=bounds_breakdown)
ax.set_ylabel("ATT on re78 (US$)")
plt.show()"""),
    ("md", """**Reading.** At Λ = 1 the bounds are the estimate. Already at Λ ≈ 1.26 (the fitted odds off by about a
quarter) the bounds reach zero: a confounder that shifts the odds of participation by 26 % could produce the whole
estimate. The interval contains zero from Λ = 1 on, as the ordinary interval did. Λ has a concrete meaning for
weighting: compare it with how much the fitted odds move when you drop one important covariate from the propensity
model.

## 3. Omitted-variable bias of the outcome regression

With `outcome_model="additive"` the effect is the treatment coefficient of a weighted regression of earnings on the
treatment and the covariates. Cinelli & Hazlett's analysis reads its t statistic as the strength a confounder would
need, in partial R²: the share of the treatment's (and the outcome's) residual variance it would explain."""),
    ("code", """additive = WeightedEffect(PropensityWeights(estimand="ATT"), outcome_model="additive")
additive.fit(data.X, data.treatment, data.y)
ovb = additive.ovb(["re74", "educ", "race"], kd=1)
ovb.summary()"""),
    ("code", """ovb.bounds[["r2dz_x", "r2yz_dx", "adjusted_estimate", "adjusted_lower", "adjusted_upper"]]"""),
    ("code", """ax = ovb_contour_plot(ovb)
plt.show()"""),
    ("md", """**Reading.**

* `partial_r2`: the treatment explains 0.8 % of the residual variance of earnings. A confounder that explained *all*
  of the remaining earnings variance would need to explain at least 0.8 % of the treatment's to remove the estimate.
* `rv_q1` (robustness value, about 8.7 %): a confounder explaining 8.7 % of the residual variance of both
  treatment and earnings would bring the estimate to zero; `rv_q1_alpha0.05` (about 1 %): one explaining 1 % of each
  makes it no longer significant at 5 %.
* Benchmarks: a confounder as strongly related to participation as 1974 earnings or education are (measured before
  weighting, `benchmark_treatment="unweighted"`, the default) and as strongly to 1978 earnings as they are (given the
  weights) would move the estimate only a little. One as strongly related to participation as race, though (race
  explains about 40 % of the variance of participation in this sample), would bring it to about zero. The contour
  plot places the unadjusted estimate at the origin and the benchmarks as red diamonds; the red dashed line is where
  the estimate would be zero.

## Putting them together

All three say the same thing at different levels of detail: the training effect of about \\$1,200 is not robust.
Weak confounding (a risk ratio of 1.6, propensity odds off by 26 %, or a confounder explaining 9 % of both
participation and earnings) could explain it away. The weighting estimate's interval includes zero already; the
regression's classical interval does not, but a confounder explaining 1 % of each would change that (and note that
sensemakr's analysis uses the regression's model-based standard error, smaller here than the weighting estimate's
sandwich standard error). Report the E-value as a
headline, the marginal-sensitivity bounds when the analysis is a weighting estimator, and the omitted-variable-bias
analysis with benchmarks when an outcome regression is part of it: the benchmarks are what turn an abstract strength
into a judgement ("could an omitted variable be three times as important as prior earnings?").

References: VanderWeele & Ding (2017), *Annals of Internal Medicine* 167:268–274; Tan (2006), *JASA* 101:1619–1637;
Zhao, Small & Bhattacharya (2019), *JRSS B* 81:735–761; Cinelli & Hazlett (2020), *JRSS B* 82:39–67."""),
]


if __name__ == "__main__":
    write_notebook(CELLS, "vignettes/09-sensitivity.ipynb")
