"""The script that wrote vignettes/11-treatments-over-time.ipynb (run from the repository root; outputs are not
stored, as for the other vignettes, which tests/test_vignettes.py executes). Edit the cells here and re-run it."""

from _notebook import write_notebook

CELLS = [
    ("md", """# Treatments over time: from long-format visits to "always versus never treated"

A cohort is followed over three visits. At each visit a clinician measures a biomarker `L` and then decides
whether to treat (`A` = 1) until the next visit; at the end of follow-up an outcome `y` is measured. Patients with
a higher biomarker are treated more often; treatment raises the biomarker at the next visit, and the biomarker
raises the outcome. So `L` is both a confounder of later treatment and on the causal path from earlier treatment
to the outcome.

That is the situation where the usual regression fails either way (Robins, Hernán & Brumback 2000):

* leaving `L` out leaves the treatment decisions confounded,
* putting `L` in blocks the part of the earlier treatments' effect that goes through `L`.

Marginal structural models answer "what would the mean outcome be had everyone followed treatment history
$(a_1, a_2, a_3)$?" by weighting every patient by the inverse probability of the treatment history they
actually had, given their history of biomarkers and treatments. This vignette goes from long-format data (one
row per patient and visit) to the effect of being always treated versus never treated:

1. reshape with `balance.msm.to_wide`,
2. fit per-visit treatment models and their product weights (`MSMWeights`), check the weights,
3. check balance at every visit with the final weights,
4. fit the marginal structural model (`MSMEffect`) and compare histories, with standard errors that account for
   estimating every visit's weights,
5. compare with the naive regressions, and with the true effect: the data are simulated
   (`balance.msm.simulate_msm`), so the truth is known exactly."""),
    ("code", """import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from balance import CBPS, balance_table
from balance.msm import MSMEffect, MSMWeights, simulate_msm, to_wide
from balance.plot import msm_love_plot, msm_weight_plot

pd.set_option("display.width", 120)
pd.set_option("display.precision", 3)

cohort = simulate_msm(3000, 3, random_state=2024)
long = cohort.long  # one row per patient and visit; y is recorded on the last visit
long.head(6)"""),
    ("md", """## From long to wide

Each visit's treatment decision may depend on everything known before it: the biomarker at this and earlier
visits and the earlier treatments. `to_wide` builds, for each visit, that history (columns `<name>_<visit>`), and
the treatments as one column per visit."""),
    ("code", """X_list, treatments = to_wide(long, id="id", time="time", treatment="A", covariates=["L"])
y = long.groupby("id")["y"].last()
for t, X in enumerate(X_list, start=1):
    print(f"visit {t}: treatment model conditions on {list(X.columns)}")
treatments.mean().rename("share treated")"""),
    ("md", """## Weights for the treatment history

`MSMWeights()` fits a logistic model at each visit (WeightIt's `weightitMSM(method = "glm")`) and multiplies the
per-visit inverse probability weights. `stabilize=True` multiplies by the probability of each visit's treatment
given the earlier treatments only (a model saturated in them), which keeps the weights near 1 on average without
changing what they estimate. Any weighting method of the package can be used per visit; `MSMWeights(CBPS())`
instead solves the covariate balance conditions of all visits jointly with the product weight (as WeightIt does)."""),
    ("code", """msm = MSMWeights(stabilize=True).fit(X_list, treatments)
print(msm.weights_.describe()[["mean", "min", "max"]])
msm.ess_  # Kish's effective sample size of the final weights, by treatment group at each visit"""),
    ("code", """axes = msm_weight_plot(msm, treatments)
plt.show()"""),
    ("md", """## Balance at every visit

At visit t the final weights should make the treated and untreated comparable on everything that visit's
treatment depended on. `balance_table` given the list of per-visit covariates returns one table per visit (cobalt's
`bal.tab` for a `weightitMSM`), the largest imbalance of each covariate across the visits, and the effective sample
sizes."""),
    ("code", """bal = balance_table(X_list, treatments, msm, stats=("smd", "ks"))
bal.across_times"""),
    ("code", """axes = msm_love_plot(X_list, treatments, msm)
plt.show()"""),
    ("md", """The biomarkers are balanced to within about 0.15 standard deviations at every visit (the unweighted
differences are around 0.8). The earlier *treatments* (`A_1` at visits 2 and 3) keep part of their imbalance: with
stabilised weights that is by design, as the numerator depends on them (R's cobalt shows the same on WeightIt's
stabilised weights). It does no harm, because the outcome model conditions on the whole treatment history; the
unstabilised weights (`MSMWeights()`) balance them too."""),
    ("md", """## The marginal structural model

`MSMEffect` fits a weighted regression of the outcome on the treatment history. `"saturated"` gives every history
its own mean; `"additive"` assumes each visit's treatment adds its own effect (fewer parameters; right here, as the
data were simulated with additive effects); `"cumulative"` uses the number of visits treated. `vcov="asympt"`
stacks the estimating equations of every visit's treatment model (and the stabilisation numerators) with the
outcome model's (WeightIt's M-estimation variance); `"bootstrap"` and `"fwb"` re-estimate everything per replicate."""),
    ("code", """fit = MSMEffect(MSMWeights(stabilize=True), outcome_model="saturated").fit(X_list, treatments, y)
fit.potential_outcomes_.assign(truth=cohort.truth)"""),
    ("code", """effect = fit.contrast("always", "never")  # the same as fit.contrast((1, 1, 1), (0, 0, 0))
effect"""),
    ("md", """The true effect of always versus never treated is 3.784 (each visit's treatment adds 1 directly, plus its
effect through the biomarker). Compare the two regressions that do not weight:"""),
    ("code", """def treatment_sum(columns):
    design = np.column_stack([np.ones(len(y)), columns])
    coef = np.linalg.lstsq(design, y.to_numpy(), rcond=None)[0]
    return coef[1:4].sum()

history = X_list[-1][["L_1", "L_2", "L_3"]]
pd.Series({
    "truth": cohort.truth["(1, 1, 1)"] - cohort.truth["(0, 0, 0)"],
    "MSM (stabilised IPW), saturated": effect["estimate"],
    "MSM, joint CBPS, additive": MSMEffect(MSMWeights(CBPS()), "additive").fit(X_list, treatments, y)
                                   .contrast("always", "never")["estimate"],
    "regression y ~ A (confounded)": treatment_sum(treatments),
    "regression y ~ A + L (blocks the effect through L)": treatment_sum(np.column_stack([treatments, history])),
}, name="always - never").round(3)"""),
    ("md", """## Summary

* `to_wide` turns long-format visits into the per-visit histories (`X_list`) and treatments the estimators take.
* `MSMWeights` multiplies per-visit weights from any weighter (stabilised with `stabilize=True`; CBPS jointly over
  the visits); `ess_`, `msm_weight_plot` and `balance_table(X_list, treatments, msm)` check them visit by visit.
* `MSMEffect` estimates the mean outcome of every treatment history and contrasts between histories (difference,
  risk ratio or odds ratio), with M-estimation, HC0 or bootstrap standard errors.
* Dropout that depends on the history is handled by `MSMWeights(censoring=CensoringWeights())` with
  `fit(..., uncensored=...)`: inverse probability of remaining uncensored, multiplied into the weights (see
  `simulate_msm(..., dropout=True)` and `benchmarks/results/msm_coverage.md`)."""),
]


if __name__ == "__main__":
    write_notebook(CELLS, "vignettes/11-treatments-over-time.ipynb")
