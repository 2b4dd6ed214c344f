"""cobalt-grade balance tables: interactions, powers, group means and SDs, the overlapping coefficient, the
propensity-score row, thresholds with their tally and largest imbalance, the printed form, two-level factors as
one row, and balance within subgroups (``by=``).

The reference is ../shared/oracle/cobalt-extras/ (see its README): cobalt 4.6.1's ``bal.tab(W, stats = c("m",
"v", "ks", "ovl"), un = TRUE, int = TRUE, poly = 2, disp = c("means", "sds"), thresholds = c(m = 0.1, v = 2, ks =
0.1))`` for WeightIt 1.5.1's glm ATT weights on lalonde. The oracle weights and propensity scores are the fixed
input, so these tests check the table alone.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from balance import PropensityWeights
from balance.diagnostics import balance_table, max_over_comparisons
from balance.diagnostics._ovl import ovl

from .conftest import COVARIATES, ORACLE, SHARED

EXTRAS = SHARED / "oracle" / "cobalt-extras"
NUMERIC = {  # ours: cobalt's
    "mean_0_un": "M.0.Un", "sd_0_un": "SD.0.Un", "mean_1_un": "M.1.Un", "sd_1_un": "SD.1.Un", "smd_un": "Diff.Un",
    "vratio_un": "V.Ratio.Un", "ks_un": "KS.Un", "ovl_un": "OVL.Un", "mean_0_adj": "M.0.Adj", "sd_0_adj": "SD.0.Adj",
    "mean_1_adj": "M.1.Adj", "sd_1_adj": "SD.1.Adj", "smd_adj": "Diff.Adj", "vratio_adj": "V.Ratio.Adj",
    "ks_adj": "KS.Adj", "ovl_adj": "OVL.Adj",
}
LABELS = {"smd_threshold": "M.Threshold", "vratio_threshold": "V.Threshold", "ks_threshold": "KS.Threshold"}
THRESHOLDS = {"smd": 0.1, "vratio": 2, "ks": 0.1}

pytestmark = pytest.mark.skipif(not EXTRAS.exists(), reason="reference files not available")


@pytest.fixture(scope="module")
def reference():
    ref = pd.read_csv(EXTRAS / "lalonde_att_glm_int_poly.csv", index_col="variable", dtype=str)
    ref = ref.apply(lambda column: column.str.strip())  # R pads quoted numbers with spaces
    numeric = ref.columns.difference(["Type", *LABELS.values()])
    ref[numeric] = ref[numeric].apply(pd.to_numeric, errors="coerce")  # "NA" -> NaN
    return ref


@pytest.fixture(scope="module")
def printed():
    return (EXTRAS / "lalonde_att_glm_int_poly_printed.txt").read_text()


@pytest.fixture(scope="module")
def glm_weights():
    return pd.read_csv(ORACLE / "weights_ATT.csv", index_col="id")["glm"]


@pytest.fixture(scope="module")
def table(lalonde, glm_weights):
    ps = pd.read_csv(ORACLE / "ps_ATT.csv", index_col="id")["glm"]
    return balance_table(lalonde[COVARIATES], lalonde["treat"], glm_weights, estimand="ATT",
                         stats=("smd", "vratio", "ks", "ovl"), interactions=True, poly=2, display=("means", "sds"),
                         thresholds=THRESHOLDS, distance=ps)


def test_every_row_and_column_matches_cobalt(table, reference):
    """Rows (names exactly as cobalt's, in its order), types, every statistic and every threshold label.

    Tolerance 1e-8 relative (observed: 2e-12): exact algebra on the same weights. That includes OVL: its
    density estimate, bandwidth rule and quadrature are cobalt's own (observed 1e-12 here), so the comparison
    is at the same tolerance; the quadrature's own error (up to 0.04 on the squared earnings) is shared.
    """
    assert list(table.index) == list(reference.index)
    assert list(table["type"]) == list(reference["Type"])
    assert list(table.columns) == ["type", *list(NUMERIC)[:8], *list(NUMERIC)[8:13], "smd_threshold",
                                   "vratio_adj", "vratio_threshold", "ks_adj", "ks_threshold", "ovl_adj"]
    for ours, theirs in NUMERIC.items():
        assert_allclose(table[ours].to_numpy(dtype=float), reference[theirs].to_numpy(dtype=float), rtol=1e-8,
                        atol=1e-12, err_msg=ours)  # NaN (cobalt's NA: SDs and variance ratios of binary rows) too
    for ours, theirs in LABELS.items():
        assert list(table[ours]) == list(reference[theirs].fillna("")), ours


def test_tally_and_largest_imbalance_match_cobalt(table, printed):
    tally = pd.read_csv(EXTRAS / "lalonde_att_glm_tally_m.csv")["value"].astype(int).tolist()
    assert table.tally["smd"]["count"].tolist() == tally
    assert list(table.tally["smd"].index) == ["Balanced, <0.1", "Not Balanced, >0.1"]
    top = pd.read_csv(EXTRAS / "lalonde_att_glm_max_imbalance_m.csv")
    ours = table.max_imbalance["smd"]
    assert ours["variable"].tolist() == top["Variable"].tolist()
    assert_allclose(ours["smd_adj"], top["Diff.Adj"], rtol=1e-8)
    assert ours["smd_threshold"].tolist() == top["M.Threshold"].tolist()
    # the variance-ratio and KS tallies and largest imbalances, read from cobalt's printed text
    for stat, label in (("vratio", "2"), ("ks", "0.1")):
        counts = [int(c) for c in re.findall(rf"^(?:Not )?Balanced, [<>]{re.escape(label)} +(\d+)$",
                                             printed.split(f"Balance tally for {'variance ratios' if stat == 'vratio' else 'KS statistics'}")[1],
                                             flags=re.M)[:2]]
        assert table.tally[stat]["count"].tolist() == counts
    assert table.max_imbalance["vratio"]["variable"].item() == "race_white * re74"
    assert round(table.max_imbalance["vratio"]["vratio_adj"].item(), 4) == 0.2356
    assert table.max_imbalance["ks"]["variable"].item() == "age"
    assert round(table.max_imbalance["ks"]["ks_adj"].item(), 4) == 0.3078


def test_effective_sample_sizes_match_cobalt_and_weightit(table):
    """Kish's ESS per group, unadjusted (the group sizes) and adjusted, vs WeightIt's summary (1e-10)."""
    ess = table.ess
    assert list(ess.index) == ["Unadjusted", "Adjusted"] and list(ess.columns) == ["control", "treated"]
    assert ess.loc["Unadjusted"].tolist() == [429.0, 185.0]
    summary = pd.read_csv(ORACLE / "weight_summary_ATT.csv", index_col="method").loc["glm"]
    assert_allclose(ess.loc["Adjusted", "control"], float(summary["ess_control"]), rtol=1e-10)
    assert round(ess.loc["Adjusted", "control"], 2) == 99.82  # cobalt's printed value
    assert ess.loc["Adjusted", "treated"] == pytest.approx(185.0, rel=1e-12)


def test_printed_form_reads_like_cobalt(table, printed):
    text = str(table)
    for heading in ("Balance Measures", "Balance tally for mean differences",
                    "Variable with the greatest mean difference", "Balance tally for variance ratios",
                    "Variable with the greatest variance ratio", "Balance tally for KS statistics",
                    "Variable with the greatest KS statistic", "Effective sample sizes"):
        assert heading in text
    assert text.index("Balance Measures") < text.index("Balance tally") < text.index("Effective sample sizes")
    # the table's first block lists cobalt's rows in cobalt's order, NA shown as "." as cobalt does
    cobalt_rows = [line.split("  ")[0].strip() for line in printed.splitlines()[2:66]]
    our_rows = [line.split("  ")[0].strip() for line in text.splitlines()[2:66]]
    assert our_rows == cobalt_rows
    assert " . " in text.splitlines()[5] + " "  # race_black's SD is blank in cobalt: "."
    assert re.search(r"Adjusted +99\.82 +185\.00", text)
    # derived frames are plain DataFrames and print as such
    assert type(table.round(3)) is pd.DataFrame and "Balance Measures" not in str(table[["smd_adj"]])
    # a column concatenates with others as any Series does (nothing travels in DataFrame.attrs)
    both = pd.concat({"a": table["smd_adj"], "b": table["smd_un"]}, axis=1)
    assert both.attrs == {} and list(both.columns) == ["a", "b"]


def test_prop_score_row_from_a_fitted_weighter(lalonde, reference):
    """distance="prop.score" takes the fitted weighter's ps_; our logistic fit agrees with WeightIt's glm to
    about 1e-9, so the row agrees with cobalt's to 1e-6."""
    pw = PropensityWeights(estimand="ATT").fit(lalonde[COVARIATES], lalonde["treat"])
    table = balance_table(lalonde[COVARIATES], lalonde["treat"], pw, distance="prop.score",
                          stats=("smd", "vratio", "ks", "ovl"), display=("means", "sds"))
    assert table.index[0] == "prop.score" and table["type"].iloc[0] == "Distance"
    for ours, theirs in NUMERIC.items():
        assert_allclose(table.loc["prop.score", ours], reference.loc["prop.score", theirs], rtol=1e-6, err_msg=ours)
    with pytest.raises(ValueError, match="distance='prop.score' needs"):
        balance_table(lalonde[COVARIATES], lalonde["treat"], pw.weights_, distance="prop.score")


def test_poly_names_and_values(lalonde):
    X = lalonde[["age", "educ", "married"]]
    table = balance_table(X, lalonde["treat"], poly=3, stats="smd")
    assert list(table.index) == ["age", "educ", "married", "age²", "educ²", "age³", "educ³"]
    direct = balance_table(pd.DataFrame({"c": lalonde["age"].astype(float) ** 3}), lalonde["treat"], stats="smd")
    assert table.loc["age³", "smd_un"] == pytest.approx(direct.loc["c", "smd_un"], rel=1e-12)


def test_ovl_closed_forms():
    """Perfect separation gives 1; identical groups give 0 up to the density estimate (same values, so the two
    weighted densities coincide exactly: 1e-12); a binary row's OVL is its difference in proportions."""
    x = np.arange(20.0)
    assert ovl(x, x < 10, np.ones(20)) == 1.0
    same = np.r_[x, x]
    assert ovl(same, np.arange(40) < 20, np.ones(40)) == pytest.approx(0.0, abs=1e-12)
    X = pd.DataFrame({"b": [0, 1, 1, 0, 1, 0, 0, 1], "x": [1.0, 2.5, 3.1, 0.2, 5.0, 2.2, 1.7, 4.4]})
    table = balance_table(X, [1, 1, 1, 1, 0, 0, 0, 0], stats=("smd", "ovl"))
    assert table.loc["b", "ovl_un"] == pytest.approx(abs(table.loc["b", "smd_un"]), rel=1e-15)


def _sex_data(lalonde, kind):
    rng = np.random.default_rng(0)
    sex = pd.Series(rng.choice(["Female", "Male"], size=len(lalonde)), index=lalonde.index)
    if kind == "categorical":
        sex = pd.Categorical(sex, categories=["Female", "Male"])
    return lalonde[["age", "race"]].assign(sex=sex)


@pytest.mark.parametrize("kind", ["categorical", "string"])
def test_two_level_factor_is_one_row(lalonde, glm_weights, kind):
    """A two-level factor is one row, its second level ``sex_Male`` (cobalt's splitfactor(drop.first = "if2")),
    with the same numbers as the 0/1 indicator of that level; race (three levels) stays split; with
    interactions both levels enter the products, as cobalt splits every factor there."""
    X = _sex_data(lalonde, kind)
    table = balance_table(X, lalonde["treat"], glm_weights, estimand="ATT")
    assert list(table.index) == ["age", "race_black", "race_hispan", "race_white", "sex_Male"]
    indicator = X[["age"]].assign(male=(X["sex"] == "Male").astype(int))
    direct = balance_table(indicator, lalonde["treat"], glm_weights, estimand="ATT")
    assert_allclose(table.loc["sex_Male"].drop("type").astype(float),
                    direct.loc["male"].drop("type").astype(float), rtol=1e-12)  # the same sums, rounding apart
    assert table.loc["sex_Male", "type"] == "Binary"
    products = balance_table(X, lalonde["treat"], glm_weights, estimand="ATT", interactions=True).index
    assert {"age * sex_Female", "age * sex_Male", "race_black * sex_Female"} <= set(products)
    assert not any("race_black * race_" in name for name in products)


def test_by_gives_one_table_per_subgroup_and_the_maximum(lalonde, glm_weights):
    """Each subgroup's block equals a separate call on that subgroup (identity, exact), and the summary is the
    largest |SMD| / variance-ratio imbalance / KS of each row over the subgroups."""
    X, t = lalonde[COVARIATES], lalonde["treat"]
    table = balance_table(X, t, glm_weights, estimand="ATT", by="married", thresholds={"smd": 0.1})
    assert table.index.names == ["subgroup", "variable"]
    assert list(table.index.get_level_values("subgroup").unique()) == [0, 1]
    for level in (0, 1):
        rows = (X["married"] == level).to_numpy()
        alone = balance_table(X[rows].drop(columns="married"), t[rows], glm_weights[rows], estimand="ATT",
                              thresholds={"smd": 0.1})
        pd.testing.assert_frame_equal(pd.DataFrame(table.loc[level]), pd.DataFrame(alone).rename_axis("variable"))
    across = table.across_subgroups
    smd = table["smd_adj"].abs().groupby(level="variable", sort=False).max()
    assert_allclose(across["smd_adj"], smd.loc[across.index], rtol=0)
    assert "smd_threshold" not in across.columns
    # each subgroup's tally and largest imbalance, side by side
    tally = table.tally["smd"]
    assert list(tally.columns) == [0, 1]
    assert tally.sum().tolist() == [len(table.loc[0]), len(table.loc[1])]
    assert table.max_imbalance["smd"]["subgroup"].tolist() == [0, 1]
    assert "Balance tally for mean differences" in str(table)
    # a Series works as well, and a fitted weighter's settings carry over
    pw = PropensityWeights(estimand="ATT").fit(X, t)
    by_series = balance_table(X, t, pw, by=X["nodegree"].map({0: "degree", 1: "none"}))
    assert list(by_series.index.get_level_values("subgroup").unique()) == ["degree", "none"]
    assert "nodegree" in by_series.index.get_level_values("variable")  # a Series leaves X's columns alone
    assert "Balance across subgroups" in str(by_series)


def test_continuous_display_and_thresholds(lalonde):
    w = pd.read_csv(SHARED / "oracle" / "weightit-continuous" / "weights" / "glm.csv", index_col="id")["weight"]
    X = lalonde[["age", "educ", "married"]]
    table = balance_table(X, lalonde["re75"], w, display="means", thresholds={"corr": 0.1})
    assert_allclose(table.loc["age", "mean_all_un"], lalonde["age"].mean(), rtol=1e-14)
    assert_allclose(table.loc["age", "mean_all_adj"], np.average(lalonde["age"], weights=w), rtol=1e-12)
    expected = np.where(table["corr_adj"].abs() < 0.1, "Balanced, <0.1", "Not Balanced, >0.1")
    assert list(table["corr_threshold"]) == list(expected)
    assert sum(table.tally["corr"]["count"]) == 3
    assert list(table.ess.columns) == ["all"]


def test_multi_category_keeps_working_with_extras(lalonde):
    table = balance_table(lalonde[["age", "educ", "married"]], lalonde["race"], stats=("smd", "ovl"),
                          thresholds={"smd": 0.1})
    assert set(table.columns) >= {"smd_un", "ovl_un", "smd_threshold"}
    summary = max_over_comparisons(table.drop(columns="smd_threshold"))
    assert list(summary.columns) == ["type", "smd_un", "ovl_un"]
    # display: each comparison shows its two groups' means, columns in level order; means are the groups' own
    shown = balance_table(lalonde[["age"]], lalonde["race"], display="means", stats="smd")
    assert list(shown.columns) == ["type", "mean_black_un", "mean_hispan_un", "mean_white_un", "smd_un"]
    means = lalonde.groupby("race", observed=True)["age"].mean()
    assert_allclose(shown.loc[("white vs. black", "age"), ["mean_black_un", "mean_white_un"]].astype(float),
                    means[["black", "white"]], rtol=1e-14)
    assert np.isnan(shown.loc[("white vs. black", "age"), "mean_hispan_un"])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"thresholds": {"smd": -1}}, ValueError, "must be a positive number"),
    ({"thresholds": {"vratio": 0.5}}, ValueError, "ratio of at least 1"),
    ({"thresholds": {"corr": 0.1}}, ValueError, "thresholds has the key 'corr'"),
    ({"thresholds": [0.1]}, TypeError, "must be a dict"),
    ({"display": "medians"}, ValueError, "display='medians'"),
    ({"poly": 0}, ValueError, "poly must be a whole number"),
    ({"interactions": "yes"}, ValueError, "interactions must be True or False"),
    ({"by": [0, 1]}, ValueError, "by has 2 entries"),
])
def test_bad_extras_are_refused(lalonde, kwargs, error, message):
    with pytest.raises(error, match=message):
        balance_table(lalonde[["age", "educ"]], lalonde["treat"], **kwargs)
