"""The script that wrote vignettes/07-multi-category.ipynb (run from the repository root; outputs are not stored,
as for the other vignettes, which tests/test_vignettes.py executes). Edit the cells here and re-run it, or edit the
notebook and delete this script."""

from _notebook import write_notebook

CELLS = [
    ("md", """# Three treatment levels: quitting, cutting down or continuing to smoke (NHEFS)

Hernán & Robins (*Causal Inference: What If*, chapter 12) estimate the effect of quitting smoking between 1971 and
1982 on weight gain with the NHEFS follow-up data. Quitting is compared with everything else, which lumps together
the smokers who kept smoking as much as before and those who cut down. A natural follow-up question has three
treatment levels:

* **continued**: still smoking in 1982, at least as many cigarettes a day as in 1971 (the reference level),
* **reduced**: still smoking, but fewer cigarettes a day,
* **quit**: stopped smoking (the book's `qsmk = 1`).

Is cutting down enough to put on weight, or does the weight gain come with quitting only? This vignette walks
through the analysis with `causal-balance`:

1. build the three-level treatment and look at the unweighted groups,
2. fit multi-category weights (a multinomial propensity model; entropy balancing),
3. check overlap of the generalised propensity scores and the balance before and after weighting, for every pair
   of levels and against the full sample,
4. look at the effective sample size per level,
5. estimate each level's mean weight change and the pairwise contrasts with M-estimation standard errors.

**Why this design makes sense.** The covariates are the book's confounders, all measured at the 1971 baseline,
before the smoking behaviour they may influence: sex, race, age, education, cigarettes per day, years of
smoking, exercise, physical activity and weight in 1971. Each of the three behaviours is a realistic choice for
every smoker in the cohort, so positivity is plausible (we check it below), and the ATE, "average weight change
had every smoker done X", is a meaningful question for each level. The reduced/continued split uses the change in
cigarettes per day between 1971 and 1982, which is measured over the same period as the outcome, just as the
book's quitting indicator is; the usual caveats of that design (timing within the period, self-reported smoking)
apply to all three levels alike. (The package's multi-category numbers are checked against R's WeightIt and cobalt
on lalonde's three-level `race` in the test suite.)"""),
    ("code", """import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from balance import EntropyBalance, PropensityWeights, WeightedEffect, balance_table, effective_sample_size
from balance.datasets import load_nhefs
from balance.plot import balance_plot, love_plot, ps_overlap_plot, weight_plot

pd.set_option("display.width", 120)
pd.set_option("display.precision", 3)

data = load_nhefs()  # the book's 1,566 complete cases
X, y = data.X, data.y  # confounders; weight change 1971-1982 (kg)
frame = data.frame.loc[X.index]
level = np.select([frame["qsmk"] == 1, frame["smkintensity82_71"] < 0], ["quit", "reduced"], "continued")
# a Categorical fixes the level order; its first level is the reference of every comparison
smoking = pd.Series(pd.Categorical(level, categories=["continued", "reduced", "quit"]), index=X.index,
                    name="smoking")
pd.DataFrame({"n": smoking.value_counts(sort=False),
              "mean weight change (kg)": y.groupby(smoking, observed=True).mean()})"""),
    ("md", """Unweighted, the quitters gained about 2.4 kg more than those who continued, and those who cut down about
0.6 kg *less*. But the groups differ before any smoking change: the next table is the unweighted balance of every
pair of levels (standardised mean differences; binary covariates and each level of a categorical covariate show
the raw difference in proportions, as cobalt does)."""),
    ("code", """before = balance_table(X, smoking)
before["smd_un"].unstack("comparison").round(3)"""),
    ("md", """Quitters were older (46 against 42 years on average), had smoked for more years and were more often men
than those who continued; those who cut down were older too and much heavier smokers in 1971 (about 25 cigarettes a
day against 19.5). Age, smoking history and sex also predict weight change, so the raw comparison is confounded.

## Weights for three levels

For the ATE every level is weighted to look like the full sample.

* `PropensityWeights(estimand="ATE")` fits a multinomial logistic regression for the generalised propensity score
  $e_k(x) = P(T = k \\mid x)$ and weights each unit by $1 / e_{T_i}(x_i)$ (WeightIt's `glm` for a multi-category
  treatment).
* `EntropyBalance(estimand="ATE")` finds, within each level, the weights closest to uniform whose weighted
  covariate means equal the full sample's means exactly.

The treatment type is decided from the data (a categorical with three levels is multi-category); pass
`treatment_type="multi-category"` for integer codes."""),
    ("code", """fits = {
    "multinomial": PropensityWeights(estimand="ATE").fit(X, smoking),
    "ebal": EntropyBalance(estimand="ATE").fit(X, smoking),
}
fits["multinomial"].ps_.head()"""),
    ("md", """`ps_` holds one generalised propensity score per level (the rows sum to one). Overlap means that every unit
has a non-negligible probability of every level: the plot has one panel per level, showing that level's score in
each of the three groups."""),
    ("code", """axes = ps_overlap_plot(fits["multinomial"], smoking)
plt.show()
print("smallest score of each level:", fits["multinomial"].ps_.min().round(3).to_dict())
print("largest weight:", round(float(fits["multinomial"].weights_.max()), 1))"""),
    ("md", """The three groups' distributions overlap in every panel: no group sits where another has no units. The
smallest score is about 0.04, so the largest weight is about 20, large but not extreme in a sample of 1,566 (the
effective sample sizes below say what it costs).

## Balance after weighting

The weighted balance table has the same layout as before, with the adjusted columns. First every pair of levels,
then each level against the full sample, the target population of the ATE (the comparisons `"All vs. <level>"`,
cobalt's `pairwise = FALSE`)."""),
    ("code", """after = balance_table(X, smoking, fits["multinomial"])
after["smd_adj"].unstack("comparison").round(3)"""),
    ("code", """against_all = balance_table(X, smoking, fits["multinomial"], pairwise=False)
against_all["smd_adj"].unstack("comparison").round(3)"""),
    ("md", """A love plot summarises the table: for each covariate the largest absolute SMD over the three pairs
(cobalt's default for several levels), before and after each weighting. `comparison=` shows a single pair."""),
    ("code", """fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
love_plot(X, smoking, fits, ax=left)
love_plot(X, smoking, fits, comparison="quit vs. continued", ax=right)
fig.tight_layout()
plt.show()"""),
    ("md", """The multinomial weights bring every pair below 0.1; entropy balancing matches every level's means to the
full sample's exactly, so all its mean differences are zero. Means are not the whole distribution:
`balance_plot` draws one covariate's weighted distribution in every level."""),
    ("code", """fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
balance_plot(X, smoking, "smokeintensity", kind="ecdf", ax=left)
balance_plot(X, smoking, "smokeintensity", fits["multinomial"], kind="ecdf", ax=right)
fig.tight_layout()
plt.show()"""),
    ("md", """Unweighted (left), those who cut down smoked clearly more cigarettes a day in 1971; weighted (right), the
three distributions nearly coincide, not only their means."""),
    ("md", """## Effective sample size per level

Weighting costs precision. Kish's effective sample size per level says how many equally weighted units each
level's weights are worth; `weight_plot` draws the weights of each level with it."""),
    ("code", """pd.DataFrame({"n": smoking.value_counts(sort=False)}
             | {name: effective_sample_size(fit, smoking) for name, fit in fits.items()}).round(1)"""),
    ("md", """The weights cost most in the smallest group furthest from the full sample: those who cut down keep an
effective 298 of their 384 units under the multinomial weights (310 under entropy balancing); the other two levels
lose less than a fifth. The histograms show no extreme weights."""),
    ("code", """axes = weight_plot(fits["multinomial"], smoking)
plt.show()"""),
    ("md", """## Effects

`WeightedEffect` estimates each level's mean potential outcome (the weighted mean weight change had every smoker
done that) and every pairwise contrast. The default variance, `vcov="asympt"`, stacks the multinomial model's
estimating equations with the outcome model's (M-estimation), so the standard errors account for estimating the
weights, as WeightIt's do."""),
    ("code", """effect = WeightedEffect(PropensityWeights(estimand="ATE")).fit(X, smoking, y)
effect.potential_outcomes_"""),
    ("code", """effect.contrasts_"""),
    ("md", """Quitting increases weight change by about 3.3 kg compared with continuing (95% CI roughly 2.3 to 4.4 kg),
close to the book's estimate for quitting against not quitting. Cutting down makes no detectable difference
against continuing (about −0.1 kg, with an interval from about −1.2 to 0.9 kg). Entropy balancing and an outcome
model that adjusts for the covariates again (`outcome_model="additive"`, doubly robust-style) tell the same
story:"""),
    ("code", """pd.DataFrame({
    "multinomial": effect.contrasts_["estimate"],
    "ebal": WeightedEffect(EntropyBalance(estimand="ATE")).fit(X, smoking, y).contrasts_["estimate"],
    "multinomial + additive": WeightedEffect(PropensityWeights(estimand="ATE"), outcome_model="additive")
    .fit(X, smoking, y).contrasts_["estimate"],
}).round(2)"""),
    ("md", """### The effect among those who quit (ATT with a focal level)

`treated=` names a focal level: `estimand="ATT"` then weights the other two levels to the quitters' covariate
distribution, and the contrasts describe the smokers who actually quit."""),
    ("code", """att = WeightedEffect(PropensityWeights(estimand="ATT", treated="quit")).fit(X, smoking, y)
att.contrasts_"""),
    ("md", """## Summary

* A categorical treatment with three or more levels is multi-category; every weighter that supports it
  (`PropensityWeights`, `EntropyBalance`, `InverseProbabilityTilting`, `StableWeights`, ...) takes it unchanged.
* `balance_table` reports every pair of levels (and each level against the full sample with `pairwise=False`);
  `love_plot` shows the largest imbalance over the pairs, or one pair with `comparison=`.
* `ps_overlap_plot` and `weight_plot` draw one panel per level; `effective_sample_size` gives one ESS per level.
* `WeightedEffect` gives each level's potential-outcome mean (`potential_outcomes_`) and all pairwise contrasts
  (`contrasts_`), with M-estimation standard errors."""),
]


if __name__ == "__main__":
    write_notebook(CELLS, "vignettes/07-multi-category.ipynb")
