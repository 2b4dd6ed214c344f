"""Balance of a continuous treatment: treatment–covariate correlations (cobalt's ``bal.tab`` with ``stats =
c("cor", "sp")``) and the whole-sample weight summary, against WeightIt 1.5.1 / cobalt 4.6.1.

The reference is ../shared/oracle/weightit-continuous/ (see its README): ``weightit(re75 ~ age + educ + race +
married + nodegree + re74, data = lalonde, method = M)`` for six methods; the oracle weights are the fixed input,
so these tests check the balance statistics alone, not the weighting methods.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats as sps

from balance.diagnostics import balance_table, effective_sample_size, weight_summary

from .conftest import SHARED

CONTINUOUS = SHARED / "oracle" / "weightit-continuous"
METHODS = ["glm", "cbps", "ebal", "energy", "npcbps", "optweight"]
COVS = ["age", "educ", "race", "married", "nodegree", "re74"]
COLUMNS = {"corr_un": "Corr.Un", "corr_adj": "Corr.Adj", "spearman_un": "S.Corr.Un", "spearman_adj": "S.Corr.Adj"}

pytestmark = pytest.mark.skipif(not CONTINUOUS.exists(), reason="reference files not available")


@pytest.fixture(scope="module")
def reference():
    return pd.read_csv(CONTINUOUS / "balance.csv")


def _weights(method):
    return pd.read_csv(CONTINUOUS / "weights" / f"{method}.csv", index_col="id")["weight"]


@pytest.mark.parametrize("method", METHODS)
def test_correlations_match_cobalt(lalonde, reference, method):
    """Every row, type and correlation of cobalt's table, to 1e-8 absolute (the statistics are exact algebra on
    the same weights; both sides agree to 1e-15 wherever the value is not a rounding residue).

    The one exception: entropy balancing makes every adjusted Pearson correlation zero by construction, and R's
    values there are rounding residues of its own computation, up to 1.03e-8; ours must be zero to 1e-9 and R's
    below 2e-8.
    """
    table = balance_table(lalonde[COVS], lalonde["re75"], _weights(method))
    ref = reference[reference["case"] == method].set_index("variable")
    assert list(table.index) == list(ref.index)  # race split into all three levels, as cobalt shows it
    assert list(table["type"]) == list(ref["Type"])
    assert list(table.columns) == ["type", "corr_un", "spearman_un", "corr_adj", "spearman_adj"]
    for ours, theirs in COLUMNS.items():
        if method == "ebal" and ours == "corr_adj":
            assert np.abs(table[ours]).max() < 1e-9
            assert np.abs(ref[theirs]).max() < 2e-8
            continue
        assert_allclose(table[ours], ref[theirs], rtol=0, atol=1e-8, err_msg=f"{method} {ours}")


def test_unadjusted_correlations_are_pearson_and_spearman(lalonde):
    """Independent reference: without weights a continuous row's ``corr_un`` is Pearson's r (numpy) and its
    ``spearman_un`` Spearman's rho (scipy), to rounding (1e-12); a binary row's uses sqrt(p(1 - p)) (the n
    form) over the n - 1 covariance, so it is Pearson's r times sqrt(n / (n - 1))."""
    a = lalonde["re75"]
    table = balance_table(lalonde[COVS], a)
    assert list(table.columns) == ["type", "corr_un", "spearman_un"]
    n = len(a)
    for col in ["age", "educ", "re74"]:
        assert_allclose(table.loc[col, "corr_un"], np.corrcoef(lalonde[col], a)[0, 1], rtol=1e-12)
        assert_allclose(table.loc[col, "spearman_un"], sps.spearmanr(lalonde[col], a).statistic, rtol=1e-12)
    for col in ["married", "nodegree"]:
        assert_allclose(table.loc[col, "corr_un"], np.corrcoef(lalonde[col], a)[0, 1] * np.sqrt(n / (n - 1)),
                        rtol=1e-12)


def test_uniform_and_rescaled_weights(lalonde):
    """Equal weights reproduce the unadjusted columns; multiplying the weights, the treatment or a covariate by a
    constant (here of magnitude 1e200) changes no correlation (they are scale-free; 1e-12)."""
    X, a, w = lalonde[COVS], lalonde["re75"], _weights("glm")
    base = balance_table(X, a, w)
    uniform = balance_table(X, a, np.ones(len(a)))
    assert_allclose(uniform["corr_adj"], uniform["corr_un"], rtol=1e-12, atol=1e-15)
    assert_allclose(uniform["spearman_adj"], uniform["spearman_un"], rtol=1e-12, atol=1e-15)
    X_big = X.assign(re74=X["re74"] * 1e200)
    scaled = balance_table(X_big, a * 1e-200, w * 1e150)
    assert_allclose(scaled.drop(columns="type"), base.drop(columns="type"), rtol=1e-12, atol=1e-15)


def test_missing_values_use_the_observed_units(lalonde):
    """With missing="indicator" a covariate with missing values is summarised over the units where it is
    observed (cobalt's na.rm = TRUE): the same numbers as a table of those units alone (its SDs too)."""
    X, a, w = lalonde[COVS].copy(), lalonde["re75"], _weights("glm")
    X.loc[X.index[::7], "educ"] = np.nan
    table = balance_table(X, a, w, missing="indicator")
    seen = X["educ"].notna()
    alone = balance_table(X.loc[seen, ["educ"]], a[seen], w[seen])
    assert_allclose(table.loc["educ"].drop("type").astype(float), alone.loc["educ"].drop("type").astype(float),
                    rtol=1e-12)
    assert table.loc["educ:<NA>", "type"] == "Binary"


def test_constant_covariate_has_zero_correlation(lalonde):
    X = lalonde[["age"]].assign(const=3.0)
    table = balance_table(X, lalonde["re75"], _weights("glm"))
    assert_array_equal(table.loc["const", ["corr_un", "spearman_un", "corr_adj", "spearman_adj"]], 0.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"stats": "smd"}, "compares treatment groups"),
    ({"stats": ("corr", "ovl")}, "stats='ovl'"),
    ({"sd_denom": "pooled"}, "sd_denom='pooled'"),
    ({"estimand": "ATT"}, "estimand='ATT'"),
])
def test_continuous_refuses_group_options(lalonde, kwargs, message):
    with pytest.raises(ValueError, match=message):
        balance_table(lalonde[COVS], lalonde["re75"], _weights("glm"), **kwargs)


def test_group_statistics_refused_for_binary(lalonde):
    with pytest.raises(ValueError, match="continuous treatment"):
        balance_table(lalonde[COVS], lalonde["treat"], stats="corr")


@pytest.mark.parametrize("method", METHODS)
def test_weight_summary_whole_sample(lalonde, method):
    """A continuous treatment's weights are summarised over the whole sample (one column, ``all``), as
    WeightIt's summary(); statistics of the same numbers, 1e-12 relative."""
    ref = pd.read_csv(CONTINUOUS / "weight_summary.csv", index_col="case").loc[method]
    w = _weights(method)
    table = weight_summary(w, lalonde["re75"]).table
    assert list(table.columns) == ["all"]
    col = table["all"]
    for ours, theirs in [("n", "n"), ("min", "min_w"), ("max", "max_w"), ("sum", "sum_w"), ("mean", "mean_w"),
                         ("cv", "coef_of_var"), ("scaled_mad", "scaled_mad"), ("neg_entropy", "negative_entropy"),
                         ("n_zeros", "n_zero"), ("ess", "ess_weighted")]:
        assert_allclose(col[ours], float(ref[theirs]), rtol=1e-12, err_msg=ours)
    ess = effective_sample_size(w, lalonde["re75"])
    assert list(ess.index) == ["all"]
    assert_allclose(ess["all"], float(ref["ess_weighted"]), rtol=1e-12)
