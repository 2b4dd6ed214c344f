"""The script that wrote vignettes/08-continuous-treatment.ipynb (run from the repository root; outputs are not
stored, as for the other vignettes, which tests/test_vignettes.py executes). Edit the cells here and re-run it, or
edit the notebook and delete this script."""

from _notebook import write_notebook

CELLS = [
    ("md", """# A continuous treatment: earnings in 1975 and earnings in 1978 (lalonde)

Many treatments are not groups but amounts: a dose, hours of training, a price, an exposure level. With a
continuous treatment $A$ the question becomes a curve, the **average dose-response function** (ADRF)
$\\mu(a) = E[Y(a)]$: the average outcome had everyone received the amount $a$. Weighting answers it the same way
as for groups: weights that make the treatment independent of the confounders turn a regression of the outcome on
the treatment alone into an estimate of $\\mu(a)$.

This vignette follows WeightIt's documentation example for continuous treatments: in the `lalonde` data the
"treatment" is `re75`, earnings in 1975, and the outcome `re78`, earnings in 1978; age, education, race, marital
status, having no degree and earnings in 1974 (`re74`) are the confounders. It is an illustration of the method,
not a policy question (nobody can set a person's past earnings), and the data make it a hard one: 40 % of the
sample earned nothing in 1975. The steps:

1. look at how the treatment depends on the covariates (treatment–covariate correlations),
2. fit weights: a generalised propensity score and entropy balancing,
3. check balance (correlations after weighting, love plot, scatter plots) and the effective sample size,
4. estimate the dose-response: the slope of a line, then a natural spline curve with a pointwise band.

(The package's continuous-treatment numbers are checked against R's WeightIt and cobalt on this very example in
the test suite: weights, correlations, the slope and its standard errors.)"""),
    ("code", """import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from balance import (EntropyBalance, PropensityWeights, WeightedDoseResponse, balance_table,
                     effective_sample_size)
from balance.datasets import load_lalonde
from balance.plot import balance_plot, dose_response_plot, love_plot

pd.set_option("display.width", 120)
pd.set_option("display.precision", 3)

data = load_lalonde()
X = data.X.drop(columns="re75")  # the confounders
dose = data.X["re75"]            # the continuous treatment: earnings in 1975 (US$)
y = data.y                       # earnings in 1978 (US$)
dose.describe().round(0)"""),
    ("md", """A float treatment with more than two values is continuous (`treatment_type="continuous"` says so
explicitly, e.g. for integer doses). Balance for a continuous treatment is measured by the correlation of the
treatment with each covariate, which weighting should bring to zero (cobalt's convention: a weighted covariance
over the unweighted standard deviations, so that before and after share one yardstick; categorical covariates get
one row per level). `spearman_*` is the same on ranks."""),
    ("code", """balance_table(X, dose)"""),
    ("md", """1975 earnings are strongly correlated with 1974 earnings (0.55) and with being married (0.35), and
both of those also predict 1978 earnings, so the unweighted regression of `re78` on `re75` is confounded.

## Weights

* `PropensityWeights()` with a continuous treatment fits the **generalised propensity score**: a normal linear
  model of the treatment on the covariates, and the weight $f(A) / f(A \\mid X)$, the marginal density of the
  treatment over its conditional density (stabilised; WeightIt's `method = "glm"`, on its scale).
* `EntropyBalance(estimand="ATE")` finds the weights closest to uniform (minimum entropy) under which the means
  of the treatment and of every covariate are unchanged and the weighted covariance of the treatment with every
  covariate is exactly zero (WeightIt's `ebal`)."""),
    ("code", """fits = {
    "GPS": PropensityWeights().fit(X, dose),
    "ebal": EntropyBalance(estimand="ATE").fit(X, dose),
}
pd.DataFrame({name: balance_table(X, dose, fit)["corr_adj"] for name, fit in fits.items()}).round(3)"""),
    ("md", """Entropy balancing zeroes every correlation, by construction. The generalised propensity score does not:
`re74`'s correlation flips from 0.55 to −0.23 and race's flip sign and grow to ±0.16. Its treatment model is
wrong for these
data: a normal distribution around a linear predictor cannot produce 40 % exact zeros and a long right tail, so
the estimated densities, and the weights built from them, are off. The love plot shows the same, with cobalt's
threshold of 0.1 for correlations:"""),
    ("code", """ax = love_plot(X, dose, fits)
plt.show()"""),
    ("md", """Correlations summarise linear dependence. `balance_plot` shows the whole relationship between the
treatment and one covariate: a scatter (each point's area proportional to its weight) with the weighted
least-squares line; when the weights remove the dependence, the line lies on the dashed weighted mean."""),
    ("code", """fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
balance_plot(X, dose, "re74", ax=axes[0])
balance_plot(X, dose, "re74", fits["GPS"], ax=axes[1])
balance_plot(X, dose, "re74", fits["ebal"], ax=axes[2])
for ax, title in zip(axes, ["unweighted", "GPS", "ebal"]):
    ax.set_title(title)
fig.tight_layout()
plt.show()"""),
    ("md", """## What the weights cost

Kish's effective sample size says how many equally weighted units the weights are worth."""),
    ("code", """pd.DataFrame({name: [effective_sample_size(fit, dose).iloc[0], float(np.max(fit.weights_))]
              for name, fit in fits.items()}, index=["ESS", "largest weight"]).round(1)"""),
    ("md", """The GPS weights leave an effective 75 of 614 units, the largest weight is 57.5 (the mean weight is
1.5); entropy balancing keeps an effective 373 with no weight above 11.4. With better balance at a fraction of
the variance cost, entropy balancing is the weighting to use here; the
GPS is kept below for comparison.

## The dose-response: a line

`WeightedDoseResponse(weighter)` fits the weights and then a weighted regression of the outcome on the treatment
alone. `outcome_model="linear"` is WeightIt's `lm_weightit(re78 ~ re75)`: the slope is the average change in 1978
earnings per dollar of 1975 earnings. The default variance, `vcov="asympt"`, stacks the weight model's estimating
equations with the outcome model's (M-estimation), so the standard error accounts for estimating the weights;
`"HC0"` treats the weights as known and `"bootstrap"` re-estimates them on resampled rows."""),
    ("code", """rows = {}
for name, weighter in {"GPS": PropensityWeights(), "ebal": EntropyBalance(estimand="ATE")}.items():
    for vcov in ("asympt", "HC0", "bootstrap"):
        fit = WeightedDoseResponse(weighter, vcov=vcov, n_bootstrap=199, random_state=0).fit(X, dose, y)
        rows[(name, vcov)] = {"slope": fit.slope_, "std_err": fit.slope_se_}
pd.DataFrame(rows).T.round(3)"""),
    ("md", """Under entropy balancing each extra dollar earned in 1975 goes with about 17 cents more in 1978
(standard error 0.12 with the weights' estimation accounted for, and the bootstrap, which re-estimates the
weights, agrees; 0.15 treating them as known); the interval includes zero. The GPS gives a negative slope with a
standard error twice as large, and its bootstrap SE (0.33) is larger still than its sandwich SE: the marks of poor
balance and a few heavy units. (For entropy balancing the package's "asympt" estimates the balance targets, the
sample means,
as part of the model; WeightIt holds them fixed and reports 0.119, the simulation in
`benchmarks/results/dose_response_coverage.md` compares the two.) For GPS weights, prefer `vcov="HC0"` when the
treatment model explains much of the treatment (R² of 1/4 or more): the weights are then so heavy-tailed that every
standard error, the bootstrap's included, is noisy at moderate n; in that simulation (R² = 1/3, n = 1000) the GPS's
"asympt" intervals cover 92.8 %, the bootstrap's about as much, and HC0's, which treat the weights as known and
err on the safe side, 94.3 %.

## The dose-response: a curve

A line forces the answer into one number. `outcome_model="spline"` fits a natural cubic spline in the treatment
(R's `splines::ns`, same basis), with `df` degrees of freedom and interior knots at the treatment's quantiles by
default. Here the quantiles coincide: the lower third of `re75` is all zeros, so the default knots are refused
with an explanation."""),
    ("code", """try:
    WeightedDoseResponse(EntropyBalance(estimand="ATE"), outcome_model="spline", df=3).fit(X, dose, y)
except ValueError as error:
    print(error)"""),
    ("md", """Following the advice, the knots go at the terciles of the positive earnings."""),
    ("code", """knots = np.quantile(dose[dose > 0], [1 / 3, 2 / 3]).round(-2)
curve = WeightedDoseResponse(EntropyBalance(estimand="ATE"), outcome_model="spline", knots=knots).fit(X, dose, y)
print("knots:", knots)
curve.predict([0, 1000, 2500, 5000, 10000, 20000]).round(0)"""),
    ("md", """`predict` returns the ADRF at any doses with pointwise standard errors and 95 % limits.
`dose_response_plot` draws it over the observed range with its pointwise band and a rug of the observed doses
(beyond the last knot the spline is a straight line, and beyond about $10,000 the rug thins out: the curve there
rests on few people)."""),
    ("code", """ax = dose_response_plot(curve)
ax.set_xlabel("earnings in 1975 (US$)")
ax.set_ylabel("average earnings in 1978 (US$)")
plt.show()"""),
    ("md", """The curve is flat, between about $6,100 and $6,800, from no earnings up to about $5,000 in 1975, and
rises above that, to about $10,700 at $10,000: once the confounders are balanced, the 1978 earnings of those who
earned little in 1975 hardly differ from those who earned nothing, and the gain is concentrated among the higher
earners. Beyond $10,000 the band widens fast (at $20,000 the standard error is about $8,400): few people earned
that much, and the spline is a straight line there.

## Summary

* A float treatment with many values is continuous; `PropensityWeights` (the generalised propensity score),
  `EntropyBalance`, `CBPS`, `StableWeights` and `EnergyBalance` weight it.
* Balance is the treatment–covariate correlation: `balance_table` gives `corr_*` and `spearman_*`, `love_plot`
  draws them with a 0.1 threshold, `balance_plot` draws the treatment against a covariate.
* Check balance and the effective sample size before trusting a GPS: a wrong treatment model (here: a normal model
  for a treatment with 40 % zeros) gives poor balance and extreme weights.
* `WeightedDoseResponse` estimates the slope (`outcome_model="linear"`) or the whole curve (`"spline"`, with
  `predict` and `dose_response_plot`), with standard errors that account for estimating the weights."""),
]


if __name__ == "__main__":
    write_notebook(CELLS, "vignettes/08-continuous-treatment.ipynb")
