"""Subgroup weighting (WeightIt's by=): separate weight models per subgroup, effects per subgroup, differences."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit
from sklearn.base import clone

from balance import CBPS, EntropyBalance, PropensityWeights, SubgroupWeights, WeightedEffect
from balance.datasets import load_lalonde


@pytest.fixture(scope="module")
def lalonde():
    return load_lalonde()


@pytest.mark.parametrize("weighter", [PropensityWeights(estimand="ATT"), CBPS(estimand="ATE"),
                                      EntropyBalance(estimand="ATT")])
def test_weights_are_the_separate_fits_per_subgroup(lalonde, weighter):
    X, t = lalonde.X, lalonde.treatment
    sub = SubgroupWeights(weighter, by="married").fit(X, t)
    for level in (0, 1):
        rows = X["married"] == level
        alone = clone(weighter).fit(X.loc[rows].drop(columns="married"), t[rows])
        assert_allclose(sub.weights_[rows], alone.weights_, rtol=1e-12)  # the same fit, bit for bit up to order
        assert_allclose(sub.ess_.loc[level].to_numpy(), alone.ess_.to_numpy(), rtol=1e-12)
    assert sub.weights_.index.equals(X.index)
    assert sub.converged_ and list(sub.treatment_levels_) == [0, 1]


def test_subgroup_effects_equal_separate_effect_fits(lalonde):
    X, t, y = lalonde.X, lalonde.treatment, lalonde.y
    fit = WeightedEffect(SubgroupWeights(PropensityWeights(estimand="ATT"), by="married"), vcov="asympt").fit(X, t, y)
    for level in (0, 1):
        rows = X["married"] == level
        alone = WeightedEffect(PropensityWeights(estimand="ATT")).fit(X.loc[rows].drop(columns="married"), t[rows],
                                                                      y[rows])
        assert_allclose(fit.subgroup_effects_.loc[(level, "ATT"), ["estimate", "std_err"]].to_numpy(float),
                        [alone.estimate_, alone.se_], rtol=1e-12)
    ses = fit.subgroup_effects_["std_err"].to_numpy()
    diff = fit.subgroup_differences_.loc[("ATT", "1 - 0")]
    assert_allclose(diff["estimate"], np.diff(fit.subgroup_effects_["estimate"].to_numpy())[0], rtol=1e-12)
    assert_allclose(diff["std_err"], np.hypot(*ses), rtol=1e-12)  # independent subgroups
    # two subgroups: the Wald chi-square on 1 df is the squared z of the difference
    assert_allclose(fit.subgroup_test_.loc["ATT", "statistic"], (diff["estimate"] / diff["std_err"]) ** 2,
                    rtol=1e-10)


def test_stacked_sandwich_equals_one_model_saturated_in_the_subgroup(lalonde):
    # Independent reference for the block-diagonal stacking: one logistic model with every covariate interacted
    # with the subgroup has the same maximum-likelihood propensities as separate fits, hence the same ATT weights,
    # and its (already tested) M-estimation SE of the pooled effect must equal SubgroupWeights' stacked one.
    X, t, y = lalonde.X, lalonde.treatment, lalonde.y
    design = pd.get_dummies(X.drop(columns="married"), columns=["race"], drop_first=True, dtype=float)
    m = X["married"].to_numpy(float)
    interacted = pd.concat([design.mul(1 - m, axis=0).add_suffix("_unmarried"),
                            design.mul(m, axis=0).add_suffix("_married"),
                            pd.Series(m, index=X.index, name="married")], axis=1)
    # the pooled intercept + "married" column reproduce the two subgroup intercepts
    one = WeightedEffect(PropensityWeights(estimand="ATT", tol=1e-12)).fit(interacted, t, y)
    sub = WeightedEffect(SubgroupWeights(PropensityWeights(estimand="ATT", tol=1e-12), by="married")).fit(X, t, y)
    assert_allclose(sub.weighter_.weights_, one.weighter_.weights_, rtol=1e-8)  # MLE tolerance
    assert_allclose(sub.estimate_, one.estimate_, rtol=1e-8)
    assert_allclose(sub.se_, one.se_, rtol=1e-6)  # two Newton solutions stopping at 1e-12 gradients


def test_subgroup_labels_given_directly_and_categorical_order(lalonde):
    X, t = lalonde.X.drop(columns="married"), lalonde.treatment
    band = pd.Series(pd.Categorical(np.where(lalonde.X["age"] < 25, "young", "older"),
                                    categories=["young", "older"]), index=X.index, name="band")
    sub = SubgroupWeights(PropensityWeights(estimand="ATT"), by=band).fit(X, t)
    assert sub.subgroups_.tolist() == ["young", "older"]
    with pytest.raises(ValueError, match="index"):
        SubgroupWeights(PropensityWeights(), by=band.set_axis(band.index[::-1])).fit(X, t)


@pytest.mark.parametrize("by, message", [
    ("height", "names no column of X"),
    (np.zeros(614), "single subgroup"),
    (np.r_[np.zeros(613), np.nan], "missing value"),
])
def test_bad_subgroups_are_refused(lalonde, by, message):
    with pytest.raises(ValueError, match=message):
        SubgroupWeights(PropensityWeights(), by=by).fit(lalonde.X, lalonde.treatment)


def test_a_subgroup_without_both_treatment_groups_is_refused(lalonde):
    by = np.where(lalonde.treatment.to_numpy() == 1, "a", np.where(np.arange(614) % 2 == 0, "a", "b"))
    with pytest.raises(ValueError, match="subgroup 'b' of by has a single treatment value"):
        SubgroupWeights(PropensityWeights(), by=by).fit(lalonde.X, lalonde.treatment)


def test_clusters_spanning_subgroups_are_refused(lalonde):
    X, t, y = lalonde.X, lalonde.treatment, lalonde.y
    cluster = np.arange(614) % 20  # every cluster has married and unmarried units
    with pytest.raises(ValueError, match="contain units of several subgroups"):
        WeightedEffect(SubgroupWeights(PropensityWeights(), by="married"), vcov="HC0").fit(X, t, y, cluster=cluster)


def test_clone_and_params():
    sub = SubgroupWeights(PropensityWeights(estimand="ATT"), by="married")
    assert clone(sub).get_params()["weighter__estimand"] == "ATT"
    assert sub.estimand == "ATT"


def test_coverage_of_subgroup_effects_and_their_difference_by_simulation():
    # Known truth: the effect is 1 in subgroup 0 and 2 in subgroup 1 (difference 1), confounded treatment.
    rng = np.random.default_rng(2024)
    hits = {"0": 0, "1": 0, "diff": 0}
    reps = 150
    for _ in range(reps):
        n = 800
        g = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 2))
        a = rng.binomial(1, expit(0.5 * x[:, 0] - 0.5 * x[:, 1] + 0.3 * g))
        y = x @ [1.0, -1.0] + a * (1 + g) + rng.normal(size=n)
        X = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "g": g})
        fit = WeightedEffect(SubgroupWeights(PropensityWeights(estimand="ATE"), by="g")).fit(X, a, y)
        eff = fit.subgroup_effects_
        hits["0"] += eff.loc[(0, "ATE"), "conf_low"] <= 1 <= eff.loc[(0, "ATE"), "conf_high"]
        hits["1"] += eff.loc[(1, "ATE"), "conf_low"] <= 2 <= eff.loc[(1, "ATE"), "conf_high"]
        d = fit.subgroup_differences_.loc[("ATE", "1 - 0")]
        hits["diff"] += d["conf_low"] <= 1 <= d["conf_high"]
    # 150 replicates: a 95 % interval's coverage has Monte Carlo SD 1.8 %; [0.89, 0.99] is about ±3.3 SD
    for key, count in hits.items():
        assert 0.89 <= count / reps <= 0.99, (key, count / reps)
