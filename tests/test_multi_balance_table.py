"""Balance diagnostics for a multi-category treatment (issue 16) against WeightIt 1.5.1 / cobalt 4.6.1.

Reference: ../shared/oracle/weightit-multi-ate (see its README): lalonde with race (black, hispan, white) as a
three-level treatment, ATE weights of seven WeightIt methods, cobalt's ``bal.tab(..., pairwise = TRUE / FALSE)``
tables, the maximum over pairs, the observations (ESS per level) and WeightIt's weight summary. The oracle's weights
files are the input, so these tests do not depend on the package's multi-category weighters.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from balance.diagnostics import balance_table, effective_sample_size, max_over_comparisons, weight_summary

from .conftest import SHARED, _shared_file

MULTI = SHARED / "oracle" / "weightit-multi-ate"
COVS = ["age", "educ", "married", "nodegree", "re74", "re75"]
LEVELS = ["black", "hispan", "white"]
STATS = {"smd_un": "Diff.Un", "smd_adj": "Diff.Adj", "vratio_un": "V.Ratio.Un", "vratio_adj": "V.Ratio.Adj",
         "ks_un": "KS.Un", "ks_adj": "KS.Adj"}
CASES = ["ATE_glm", "ATE_cbps_just", "ATE_cbps_over", "ATE_ebal", "ATE_ipt", "ATE_energy", "ATE_optweight"]
# cobalt reports a mean difference below sqrt(machine eps) = 1.49e-8 unstandardised (its check_if_zero); the package
# always standardises (see balance_table's Notes). Exact-balance methods (ebal, IPT, CBPS just-identified) put
# some adjusted differences there, so at those rows both numbers must be rounding noise, below 1e-7.
COBALT_ZERO = 1.5e-8


@pytest.fixture(scope="module")
def data(lalonde):
    race = pd.Series(pd.Categorical(lalonde["race"].astype(str), categories=LEVELS), index=lalonde.index)
    return lalonde[COVS], race


def _weights(case, index):
    frame = pd.read_csv(_shared_file(MULTI / "weights" / f"{case}.csv"), index_col="id")
    return frame.loc[index, "weight"]


def _compare(ours, ref, columns):
    """Every statistic to 1e-10 absolute (the oracle's 17 digits against the same formulas summed in another
    order), except cobalt's unstandardised near-zero differences (COBALT_ZERO)."""
    for col, ref_col in columns.items():
        mine, theirs = ours[col].to_numpy(float), ref[ref_col].to_numpy(float)
        noise = np.abs(theirs) < COBALT_ZERO if col.startswith("smd") else np.zeros(len(theirs), dtype=bool)
        assert_allclose(mine[~noise], theirs[~noise], rtol=0, atol=1e-10, err_msg=col)
        assert np.all(np.abs(mine[noise]) < 1e-7), col


@pytest.mark.parametrize("case", CASES)
def test_pair_tables_reproduce_cobalt(data, case):
    X, race = data
    ref = pd.read_csv(_shared_file(MULTI / "balance_pairs.csv"))
    w = _weights(case, X.index)
    for (binary, pairwise), expected in ref[ref["case"] == case].groupby(["binary", "pairwise"]):
        table = balance_table(X, race, w, binary=binary, pairwise=bool(pairwise))
        expected = expected.set_index(["comparison", "variable"])
        assert list(table.index.names) == ["comparison", "variable"]
        assert list(table.index) == list(expected.index)  # names, order and signs' labels as cobalt's
        assert list(table["type"]) == list(expected["Type"])
        _compare(table, expected, STATS)


@pytest.mark.parametrize("case", CASES)
def test_max_over_comparisons_reproduces_cobalt(data, case):
    X, race = data
    ref = pd.read_csv(_shared_file(MULTI / "balance_max_over_pairs.csv"))
    w = _weights(case, X.index)
    for binary, expected in ref[ref["case"] == case].groupby("binary"):
        summary = max_over_comparisons(balance_table(X, race, w, binary=binary))
        expected = expected.set_index("variable")
        assert list(summary.index) == list(expected.index) and list(summary["type"]) == list(expected["Type"])
        _compare(summary, expected, {k: "Max." + v for k, v in STATS.items()})


@pytest.mark.parametrize("case", CASES)
def test_ess_and_weight_summary_per_level_reproduce_weightit(data, case):
    X, race = data
    w = _weights(case, X.index)
    obs = pd.read_csv(_shared_file(MULTI / "balance_observations.csv"))
    obs = obs[obs["case"] == case].set_index("sample")
    ess = effective_sample_size(w, race)
    assert list(ess.index) == LEVELS
    # Kish's formula summed in another order: 1e-12 relative
    assert_allclose(ess.to_numpy(), obs.loc["Adjusted", LEVELS].to_numpy(float), rtol=1e-12)
    assert_allclose(effective_sample_size(np.ones(len(race)), race).to_numpy(),
                    obs.loc["Unadjusted", LEVELS].to_numpy(float), rtol=0, atol=0)
    ref = pd.read_csv(_shared_file(MULTI / "weight_summary.csv"))
    ref = ref[ref["case"] == case].set_index("level").loc[LEVELS]
    table = weight_summary(w, race).table
    assert list(table.columns) == LEVELS
    pairs = {"n": "n", "min": "min_w", "max": "max_w", "sum": "sum_w", "mean": "mean_w", "ess": "ess_weighted",
             "cv": "coef_of_var", "scaled_mad": "scaled_mad", "neg_entropy": "negative_entropy", "n_zeros": "n_zero"}
    for ours, theirs in pairs.items():
        assert_allclose(table.loc[ours].to_numpy(float), ref[theirs].to_numpy(float), rtol=1e-12, err_msg=ours)


# --------------------------------------------------------------------------------------------------------------
# the focal level (ATT), the SD rule and missing values, against hand computations
# --------------------------------------------------------------------------------------------------------------
def _rv(x, w):
    """cobalt's weighted variance, written out."""
    v = w / w.sum()
    return np.sum(v * (x - np.sum(v * x)) ** 2) / (1 - np.sum(v**2))


def test_att_compares_each_level_with_the_focal_one_on_its_sd(data):
    X, race = data
    w = _weights("ATE_glm", X.index).to_numpy()  # any weights: the table's arithmetic is what is checked
    table = balance_table(X, race, w, estimand="ATT", treated="hispan")
    assert list(table.index.get_level_values("comparison").unique()) == ["hispan vs. black", "hispan vs. white"]
    age, r = X["age"].to_numpy(float), race.to_numpy()
    sd_focal = np.sqrt(_rv(age[r == "hispan"], np.ones(np.sum(r == "hispan"))))
    for other in ("black", "white"):
        f, o = r == "hispan", r == other
        smd = (np.average(age[f], weights=w[f]) - np.average(age[o], weights=w[o])) / sd_focal
        vr = _rv(age[f], w[f]) / _rv(age[o], w[o])
        assert_allclose(table.loc[(f"hispan vs. {other}", "age"), ["smd_adj", "vratio_adj"]].to_numpy(float),
                        [smd, vr], rtol=1e-12)
    # all pairs on request, still on the focal SD
    pairs = balance_table(X, race, w, estimand="ATT", treated="hispan", pairwise=True)
    b, h = r == "black", r == "hispan"
    expected = (np.average(age[h], weights=w[h]) - np.average(age[b], weights=w[b])) / sd_focal
    assert_allclose(pairs.loc[("hispan vs. black", "age"), "smd_adj"], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="needs the focal level: pass treated=<level>"):
        balance_table(X, race, w, estimand="ATT")


def test_pooled_sd_is_the_mean_of_all_level_variances(data):
    X, race = data
    table = balance_table(X, race)
    educ, r = X["educ"].to_numpy(float), race.to_numpy()
    pooled = np.sqrt(np.mean([np.var(educ[r == lvl], ddof=1) for lvl in LEVELS]))  # all three, not the pair's
    expected = (educ[r == "white"].mean() - educ[r == "hispan"].mean()) / pooled
    assert_allclose(table.loc[("white vs. hispan", "educ"), "smd_un"], expected, rtol=1e-12)
    pair_only = np.sqrt((np.var(educ[r == "white"], ddof=1) + np.var(educ[r == "hispan"], ddof=1)) / 2)
    assert not np.isclose(expected, (educ[r == "white"].mean() - educ[r == "hispan"].mean()) / pair_only)


def test_missing_values_use_observed_units_per_comparison(lalonde_mis):
    X = lalonde_mis[["age", "re74"]]
    race = pd.Series(pd.Categorical(lalonde_mis["race"].astype(str), categories=LEVELS))
    table = balance_table(X, race, missing="indicator", pairwise=False)
    re74, r = lalonde_mis["re74"].to_numpy(float), race.to_numpy()
    seen = ~np.isnan(re74)
    x, r = re74[seen], r[seen]
    pooled = np.sqrt(np.mean([np.var(x[r == lvl], ddof=1) for lvl in LEVELS]))
    assert_allclose(table.loc[("All vs. white", "re74"), "smd_un"], (x[r == "white"].mean() - x.mean()) / pooled,
                    rtol=1e-12)
    assert_allclose(table.loc[("All vs. white", "re74:<NA>"), "smd_un"],
                    np.isnan(re74[race == "white"]).mean() - np.isnan(re74).mean(), rtol=1e-12)


def test_fitted_weighter_level_settings_and_binary_tables_unchanged(data):
    X, race = data

    class Fitted:  # what a fitted multi-category weighter carries
        weights_ = _weights("ATE_glm", X.index)
        estimand, treated, missing = "ATT", "white", "error"
        treatment_type_, treatment_levels_ = "multi-category", tuple(LEVELS)

    table = balance_table(X, race, Fitted())
    assert list(table.index.get_level_values("comparison").unique()) == ["white vs. black", "white vs. hispan"]
    with pytest.raises(ValueError, match=r"treated='black' conflicts with the fitted weighter's treated \('white'\)"):
        balance_table(X, race, Fitted(), treated="black")
    # a weight vector that is zero for a whole level is refused, naming the level
    w = Fitted.weights_.to_numpy().copy()
    w[race.to_numpy() == "hispan"] = 0.0
    with pytest.raises(ValueError, match="weights is zero for every 'hispan' unit"):
        balance_table(X, race, w)
    # a continuous treatment is no longer refused: it gets correlations (tests/test_balance_continuous.py)
    assert "corr_un" in balance_table(X, X["re75"] + 0.5, None).columns
