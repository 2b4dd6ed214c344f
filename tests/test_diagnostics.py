"""Tests of balance.diagnostics against R cobalt 4.6.1 / WeightIt 1.5.1 and against closed forms.

The reference numbers are in ../shared/oracle/weightit-lalonde-att (see its README): cobalt's
``bal.tab(W, stats = c("m", "v", "ks"), un = TRUE)`` on the lalonde data, ATT, for eight WeightIt methods.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats as sps

from balance.diagnostics import WeightSummary, balance_table, effective_sample_size, weight_summary

from .conftest import COVARIATES, ORACLE, SHARED

DATA = SHARED / "data" / "lalonde_matchit614.csv"
STAT_COLUMNS = ["smd_un", "vratio_un", "ks_un", "smd_adj", "vratio_adj", "ks_adj"]

pytestmark = pytest.mark.skipif(not (ORACLE.exists() and DATA.exists()), reason="reference files not available")


# --------------------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lalonde():
    return pd.read_csv(DATA, index_col="id")


@pytest.fixture(scope="module")
def X(lalonde):
    return lalonde[COVARIATES]


@pytest.fixture(scope="module")
def treat(lalonde):
    return lalonde["treat"]


@pytest.fixture(scope="module")
def oracle_weights():
    return pd.read_csv(ORACLE / "weights_ATT.csv", index_col="id")


@pytest.fixture(scope="module")
def oracle_ps():
    return pd.read_csv(ORACLE / "ps_ATT.csv", index_col="id")


@pytest.fixture(scope="module")
def oracle_summary():
    return pd.read_csv(ORACLE / "weight_summary_ATT.csv", index_col="method")


def _oracle_balance(kind, method):
    ref = pd.read_csv(ORACLE / f"balance_binary_{kind}_ATT.csv")
    return ref[ref["method"] == method].set_index("variable")


def _table_for(method, kind, X, treat, oracle_weights, oracle_ps):
    distance = {"prop.score": oracle_ps[method]} if method in oracle_ps.columns else None
    return balance_table(X, treat, weights=oracle_weights[method], estimand="ATT", binary=kind, distance=distance)


@pytest.fixture()
def rng():
    return np.random.default_rng(20240611)


# --------------------------------------------------------------------------------------------------------------
# cobalt reference
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["raw", "std"])
@pytest.mark.parametrize("method", ["glm", "cbps_just"])
def test_reproduces_cobalt_exactly(method, kind, X, treat, oracle_weights, oracle_ps):
    ref = _oracle_balance(kind, method)
    table = _table_for(method, kind, X, treat, oracle_weights, oracle_ps)
    # rows: prop.score first, then the covariates in X's order with every race level
    assert list(table.index) == list(ref.index)
    assert_array_equal(table["type"], ref["type"])
    assert list(table.columns) == ["type", *STAT_COLUMNS]
    ours, theirs = table[STAT_COLUMNS].to_numpy(float), ref[STAT_COLUMNS].to_numpy(float)
    assert_array_equal(np.isnan(ours), np.isnan(theirs))  # NA exactly where cobalt prints NA
    # same algebra as cobalt, so only rounding differs: 1e-12 absolute
    assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["raw", "std"])
@pytest.mark.parametrize("method", ["glm", "cbps_just", "cbps_over", "ebal", "ipt", "energy", "optweight", "gbm"])
def test_reproduces_cobalt_every_method(method, kind, X, treat, oracle_weights, oracle_ps):
    ref = _oracle_balance(kind, method).loc[lambda r: r.index.isin(["prop.score", *X.columns, "race_black",
                                                                   "race_hispan", "race_white"])]
    table = _table_for(method, kind, X, treat, oracle_weights, oracle_ps).loc[ref.index]
    assert_array_equal(table["type"], ref["type"])
    ours, theirs = table[STAT_COLUMNS].to_numpy(float), ref[STAT_COLUMNS].to_numpy(float)
    assert_array_equal(np.isnan(ours), np.isnan(theirs))
    # cobalt leaves a mean difference below sqrt(eps) unstandardised (check_if_zero); for exactly balancing
    # methods (ebal, optweight) that is rounding noise in dollars (re74, re75), so there both are numerical zeros
    numerical_zero = np.abs(theirs) < np.sqrt(np.finfo(float).eps)
    close = np.isclose(ours, theirs, rtol=0, atol=1e-12, equal_nan=True)
    assert np.all(close | (numerical_zero & (np.abs(ours) < 1e-10)))
    assert np.all(close[:, [1, 2, 4, 5]])  # variance ratios and KS: no such rule, 1e-12 everywhere


# --------------------------------------------------------------------------------------------------------------
# closed forms, computed independently with pandas / scipy
# --------------------------------------------------------------------------------------------------------------
def _dummies(X):
    return pd.get_dummies(X, columns=["race"], dtype=float)[
        ["age", "educ", "race_black", "race_hispan", "race_white", "married", "nodegree", "re74", "re75"]
    ]


@pytest.mark.parametrize(
    ("estimand", "sd_denom", "denominator"),
    [
        ("ATT", None, lambda t, c, a: t.std()),
        ("ATC", None, lambda t, c, a: c.std()),
        ("ATE", None, lambda t, c, a: np.sqrt((t.var() + c.var()) / 2)),
        ("ATE", "all", lambda t, c, a: a.std()),
        ("ATT", "control", lambda t, c, a: c.std()),
    ],
)
def test_unweighted_columns_equal_pandas(estimand, sd_denom, denominator, X, treat):
    table = balance_table(X, treat, estimand=estimand, sd_denom=sd_denom)
    assert list(table.columns) == ["type", "smd_un", "vratio_un", "ks_un"]
    D = _dummies(X)
    t, c = D[treat == 1], D[treat == 0]
    for col in ["age", "educ", "re74", "re75"]:
        smd = (t[col].mean() - c[col].mean()) / denominator(t[col], c[col], D[col])
        assert table.loc[col, "smd_un"] == pytest.approx(smd, rel=1e-12, abs=1e-14)
        assert table.loc[col, "vratio_un"] == pytest.approx(t[col].var() / c[col].var(), rel=1e-12)
        # scipy's two-sample KS statistic handles ties by evaluating both ECDFs at each distinct value
        assert table.loc[col, "ks_un"] == pytest.approx(sps.ks_2samp(t[col], c[col]).statistic, rel=1e-12)
    for col in ["race_black", "race_hispan", "race_white", "married", "nodegree"]:
        diff = t[col].mean() - c[col].mean()
        assert table.loc[col, "type"] == "Binary"
        assert table.loc[col, "smd_un"] == pytest.approx(diff, rel=1e-12)
        assert table.loc[col, "ks_un"] == pytest.approx(abs(diff), rel=1e-12)
        assert np.isnan(table.loc[col, "vratio_un"])


def _weighted_ecdf_gap(x, a, w):
    """Brute-force weighted KS: both ECDFs at every pooled value, O(n^2)."""
    grid = np.unique(x)
    F1 = (w[a == 1][:, None] * (x[a == 1][:, None] <= grid)).sum(0) / w[a == 1].sum()
    F0 = (w[a == 0][:, None] * (x[a == 0][:, None] <= grid)).sum(0) / w[a == 0].sum()
    return np.abs(F1 - F0).max()


def _reliability_var(x, w):
    v = w / w.sum()
    m = v @ x
    return v @ (x - m) ** 2 / (1 - v @ v)


def test_weighted_columns_closed_form(X, treat, oracle_weights):
    w = oracle_weights["gbm"].to_numpy()
    a = treat.to_numpy()
    table = balance_table(X, treat, w, estimand="ATT", binary="std")
    D = _dummies(X)
    for col in D.columns:
        x = D[col].to_numpy()
        m1, m0 = np.average(x[a == 1], weights=w[a == 1]), np.average(x[a == 0], weights=w[a == 0])
        binary = col.startswith("race") or col in ("married", "nodegree")
        sd_t = np.sqrt(x[a == 1].mean() * (1 - x[a == 1].mean())) if binary else x[a == 1].std(ddof=1)
        assert table.loc[col, "smd_adj"] == pytest.approx((m1 - m0) / sd_t, rel=1e-10)
        # educ has many ties: this checks that the ECDFs are read only after a whole run of tied values
        assert table.loc[col, "ks_adj"] == pytest.approx(_weighted_ecdf_gap(x, a, w), rel=1e-10)
        if not binary:
            ratio = _reliability_var(x[a == 1], w[a == 1]) / _reliability_var(x[a == 0], w[a == 0])
            assert table.loc[col, "vratio_adj"] == pytest.approx(ratio, rel=1e-10)


def test_sample_weight_integer_equals_repetition_for_means_and_ks(X, treat, oracle_weights, rng):
    sw = rng.integers(1, 4, size=len(X))
    w = oracle_weights["glm"].to_numpy()
    by_weight = balance_table(X, treat, w * sw, estimand="ATT", continuous="raw", stats=("smd", "ks"),
                              sample_weight=sw)
    rep = np.repeat(np.arange(len(X)), sw)
    by_rows = balance_table(X.iloc[rep].reset_index(drop=True), treat.to_numpy()[rep], w[rep], estimand="ATT",
                            continuous="raw", stats=("smd", "ks"))
    # differences in means and ECDFs treat an integer weight as repeated rows (the SD does not: n - 1 form)
    assert_allclose(by_weight[["smd_un", "ks_un", "smd_adj", "ks_adj"]],
                    by_rows[["smd_un", "ks_un", "smd_adj", "ks_adj"]], rtol=1e-12, atol=1e-12)


def test_sample_weight_sets_the_sd(X, treat, rng):
    sw = rng.uniform(0.5, 2.0, size=len(X))
    table = balance_table(X, treat, estimand="ATT", sample_weight=sw)
    x, a = X["age"].to_numpy(float), treat.to_numpy()
    diff = np.average(x[a == 1], weights=sw[a == 1]) - np.average(x[a == 0], weights=sw[a == 0])
    assert table.loc["age", "smd_un"] == pytest.approx(diff / np.sqrt(_reliability_var(x[a == 1], sw[a == 1])),
                                                      rel=1e-12)


def test_sample_weight_is_not_multiplied_into_weights(X, treat, oracle_weights, rng):
    # weights are analysis weights that already include the sampling weights (as every estimator's weights_)
    sw = rng.uniform(0.5, 2.0, size=len(X))
    w = oracle_weights["glm"].to_numpy() * sw
    with_sw = balance_table(X, treat, w, estimand="ATT", sample_weight=sw)
    without = balance_table(X, treat, w, estimand="ATT")
    assert_allclose(with_sw[["vratio_adj", "ks_adj"]], without[["vratio_adj", "ks_adj"]], rtol=1e-12, atol=1e-15)
    x, a = X["age"].to_numpy(float), treat.to_numpy()
    diff = np.average(x[a == 1], weights=w[a == 1]) - np.average(x[a == 0], weights=w[a == 0])
    sd = np.sqrt(_reliability_var(x[a == 1], sw[a == 1]))  # the SD uses the sampling weights only
    assert with_sw.loc["age", "smd_adj"] == pytest.approx(diff / sd, rel=1e-12)


def test_fitted_propensity_weights_reproduce_cobalt(X, treat):
    from balance.weights import PropensityWeights

    est = PropensityWeights(estimand="ATT").fit(X, treat)
    table = balance_table(X, treat, est, distance=est.ps_)  # estimand taken from the estimator
    ref = _oracle_balance("raw", "glm")
    assert list(table.index) == list(ref.index)
    # the logistic MLE agrees with R's glm to its convergence tolerance (weights within ~2e-8)
    assert_allclose(table[STAT_COLUMNS].to_numpy(float), ref[STAT_COLUMNS].to_numpy(float), rtol=0, atol=1e-7)


# --------------------------------------------------------------------------------------------------------------
# options and input forms
# --------------------------------------------------------------------------------------------------------------
def test_stats_subset_distance_forms_and_numpy_input(X, treat, oracle_weights, oracle_ps):
    w, ps = oracle_weights["glm"], oracle_ps["glm"]
    full = balance_table(X, treat, w, estimand="ATT", distance={"prop.score": ps})
    as_array = balance_table(X, treat, w.to_numpy(), estimand="ATT", distance=ps.to_numpy())
    pd.testing.assert_frame_equal(full, as_array)
    only = balance_table(X, treat, w, estimand="ATT", stats=["ks", "smd"])
    assert list(only.columns) == ["type", "smd_un", "ks_un", "smd_adj", "ks_adj"]
    assert_allclose(only[["smd_adj", "ks_adj"]], full.loc[only.index, ["smd_adj", "ks_adj"]], rtol=0, atol=0)
    numeric = X[["age", "educ", "re74"]]
    plain = balance_table(numeric.to_numpy(), treat.to_numpy(), w.to_numpy(), estimand="ATT")
    assert list(plain.index) == ["x0", "x1", "x2"]
    # same numbers; only the summation blocking of a narrower matrix differs
    assert_allclose(plain.iloc[:, 1:].to_numpy(float),
                    full.loc[["age", "educ", "re74"]].iloc[:, 1:].to_numpy(float), rtol=0, atol=1e-13)


def test_fitted_estimator_supplies_weights_and_estimand(X, treat, oracle_weights):
    class Fitted:
        weights_ = oracle_weights["glm"].to_numpy()
        estimand = "ATT"

    expected = balance_table(X, treat, oracle_weights["glm"], estimand="ATT")
    pd.testing.assert_frame_equal(balance_table(X, treat, Fitted()), expected)
    # the same explicit estimand is accepted; a different one is an error (issue 15, item 3): it would change
    # the SMD's standard deviation behind the user's back
    pd.testing.assert_frame_equal(balance_table(X, treat, Fitted(), estimand="att"), expected)
    with pytest.raises(ValueError, match=r"estimand='ATE' conflicts with the fitted weighter's estimand \('ATT'\)"):
        balance_table(X, treat, Fitted(), estimand="ATE")


def test_binary_detection_and_recoding():
    X = pd.DataFrame({"sex": [1, 2, 2, 1, 2, 1], "flag": [True, False, True, True, False, False],
                      "neg": [-1.0, 0.0, -1.0, 0.0, 0.0, -1.0], "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]})
    treat = np.array([1, 1, 1, 0, 0, 0])
    table = balance_table(X, treat, estimand="ATE")
    assert list(table["type"]) == ["Binary", "Binary", "Binary", "Contin."]
    # sex {1, 2}: reference is the smaller value, so the row is the proportion with sex == 2
    assert table.loc["sex", "smd_un"] == pytest.approx(2 / 3 - 1 / 3, rel=1e-14)
    assert table.loc["flag", "smd_un"] == pytest.approx(2 / 3 - 1 / 3, rel=1e-14)
    # neg {-1, 0}: 0 is present, so it is the reference and the row is the proportion at -1
    assert table.loc["neg", "smd_un"] == pytest.approx(2 / 3 - 1 / 3, rel=1e-14)


def test_string_treatment_with_treated_level(X, treat, oracle_weights):
    labels = np.where(treat == 1, "nsw", "psid")
    expected = balance_table(X, treat, oracle_weights["glm"], estimand="ATT")
    pd.testing.assert_frame_equal(
        balance_table(X, labels, oracle_weights["glm"].to_numpy(), estimand="ATT", treated="nsw"), expected)


# --------------------------------------------------------------------------------------------------------------
# degenerate covariates
# --------------------------------------------------------------------------------------------------------------
def test_constant_covariate_row_kept_with_zero_smd():
    X = pd.DataFrame({"const": [0.1] * 6, "x": [1.0, 3.0, 2.0, 5.0, 4.0, 6.0]})
    treat = [1, 1, 1, 0, 0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 warning, no infinite-SMD warning
        table = balance_table(X, treat, [1.0, 2.0, 3.0, 0.7, 1.3, 2.9])
    assert table.loc["const", "smd_un"] == 0.0 and table.loc["const", "smd_adj"] == 0.0
    assert table.loc["const", "ks_un"] == 0.0 and table.loc["const", "ks_adj"] == 0.0
    assert np.isnan(table.loc["const", "vratio_un"]) and np.isnan(table.loc["const", "vratio_adj"])


def test_zero_sd_with_a_real_difference_is_infinite_and_warns():
    X = pd.DataFrame({"z": [2.0, 2.0, 2.0, 1.0, 3.0, 5.0]})
    with pytest.warns(RuntimeWarning, match="'z'"):
        table = balance_table(X, [1, 1, 1, 0, 0, 0], estimand="ATT")  # SD of the treated group is 0
    assert table.loc["z", "smd_un"] == -np.inf
    assert table.loc["z", "vratio_un"] == 0.0


# --------------------------------------------------------------------------------------------------------------
# effective sample size and weight summary
# --------------------------------------------------------------------------------------------------------------
def test_ess_equal_weights_is_group_size(treat):
    ess = effective_sample_size(np.full(len(treat), 3.7), treat)
    assert list(ess.index) == ["control", "treated"]
    assert_allclose(ess, [(treat == 0).sum(), (treat == 1).sum()], rtol=1e-12)
    assert effective_sample_size(np.full(10, 0.2)) == pytest.approx(10, rel=1e-12)


@pytest.mark.parametrize("method", ["glm", "cbps_just", "cbps_over", "ebal", "ipt", "energy", "optweight", "gbm"])
def test_weight_summary_matches_weightit(method, treat, oracle_weights, oracle_summary):
    ref = oracle_summary.loc[method]
    w = oracle_weights[method]
    ess = effective_sample_size(w, treat)
    # exact algebra; only the summation order differs from R
    assert_allclose(ess, [ref["ess_control"], ref["ess_treated"]], rtol=1e-10)
    summary = weight_summary(w, treat)
    assert isinstance(summary, WeightSummary)
    table = summary.table
    assert_allclose(table.loc["ess"], [ref["ess_control"], ref["ess_treated"]], rtol=1e-10)
    # WeightIt's CV uses the n - 1 standard deviation (R's sd()); the n form is 0.12 % off here
    assert_allclose(table.loc["cv"], [ref["cv_control"], ref["cv_treated"]], rtol=1e-10, atol=1e-15)
    for stat in ("min", "max", "sum"):
        assert_allclose(table.loc[stat], [ref[f"{stat}_w_control"], ref[f"{stat}_w_treated"]], rtol=1e-10)
    assert table.loc["n_zeros"].sum() == ref["n_zero"]


def test_weight_summary_closed_forms_and_top(treat, oracle_weights):
    w = oracle_weights["gbm"]
    summary = weight_summary(w, treat, n_top=3)
    control = w[treat == 0].to_numpy()
    mean = control.mean()
    assert summary.table.loc["scaled_mad", "control"] == pytest.approx(np.mean(np.abs(control - mean)) / mean,
                                                                       rel=1e-12)
    v = control / mean  # all positive here
    assert summary.table.loc["neg_entropy", "control"] == pytest.approx(np.mean(v * np.log(v)), rel=1e-12)
    assert summary.table.loc["neg_entropy", "treated"] == 0.0
    pd.testing.assert_series_equal(summary.top["control"], w[treat == 0].nlargest(3), check_names=False)
    assert list(summary.top["treated"].index) == list(w.index[treat == 1][:3])  # ties keep row order
    text = str(summary)
    assert "largest control weights" in text and summary.top["control"].index[0] in text


def test_weight_summary_zero_weights_and_range():
    summary = weight_summary([1.0, 1.0, 0.0, 0.5, 2.0, 0.0], [1, 1, 0, 0, 0, 0])
    assert summary.table.loc["n_zeros", "control"] == 2
    assert summary.table.loc["min", "control"] == 0.5  # the range is over the non-zero weights, as WeightIt's


# --------------------------------------------------------------------------------------------------------------
# invariances
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arm", [0, 1])
def test_scaling_one_group_changes_nothing(arm, X, treat, oracle_weights, oracle_ps):
    w = oracle_weights["ebal"].to_numpy()
    scaled = np.where(treat.to_numpy() == arm, 7.0 * w, w)
    ps = oracle_ps["glm"]
    before = balance_table(X, treat, w, estimand="ATT", distance=ps)
    after = balance_table(X, treat, scaled, estimand="ATT", distance=ps)
    assert_allclose(after[STAT_COLUMNS].to_numpy(float), before[STAT_COLUMNS].to_numpy(float), rtol=0, atol=1e-12)
    assert_allclose(effective_sample_size(scaled, treat), effective_sample_size(w, treat), rtol=1e-12)


def test_row_order_does_not_matter(X, treat, oracle_weights, rng):
    perm = rng.permutation(len(X))
    w = oracle_weights["glm"]
    before = balance_table(X, treat, w, estimand="ATT")
    after = balance_table(X.iloc[perm], treat.iloc[perm], w.iloc[perm], estimand="ATT")
    assert_allclose(after[STAT_COLUMNS].to_numpy(float), before[STAT_COLUMNS].to_numpy(float), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------------------
def _bad_weights(treat, kind):
    w = np.ones(len(treat))
    if kind == "nan":
        w[3] = np.nan
    elif kind == "inf":
        w[3] = np.inf
    elif kind == "negative":
        w[3] = -0.5
    elif kind == "length":
        w = w[:-1]
    elif kind == "index":
        w = pd.Series(w, index=treat.index[::-1])
    elif kind == "zero_group":
        w[treat.to_numpy() == 0] = 0.0
    return w


BAD = [
    ("nan", "weights has 1 missing"),
    ("inf", "weights has 1 missing or infinite"),
    ("negative", "weights has 1 negative"),
    ("length", "weights has 613 entries"),
    ("index", "weights is a Series whose index differs"),
    ("zero_group", "weights is zero for every control unit"),
]


@pytest.mark.parametrize(("kind", "message"), BAD)
def test_bad_weights_balance_table(kind, message, X, treat):
    with pytest.raises(ValueError, match=message):
        balance_table(X, treat, _bad_weights(treat, kind))


@pytest.mark.parametrize(("kind", "message"), BAD)
def test_bad_weights_ess_and_summary(kind, message, treat):
    with pytest.raises(ValueError, match=message):
        effective_sample_size(_bad_weights(treat, kind), treat)
    with pytest.raises(ValueError, match=message):
        weight_summary(_bad_weights(treat, kind), treat)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stats": ("smd", "mean")}, "stats='mean'"),
        ({"stats": ()}, "stats is empty"),
        ({"binary": "standardized"}, "binary="),
        ({"continuous": "z"}, "continuous="),
        ({"sd_denom": "weighted"}, "sd_denom="),
        ({"estimand": "ATX"}, "estimand="),
        ({"distance": np.ones(5)}, r"distance\['prop.score'\] has 5 entries"),
        ({"distance": {"ps": np.full(614, np.nan)}}, r"distance\['ps'\] has missing"),
        ({"distance": {"age": np.ones(614)}}, "clash"),
        ({"sample_weight": np.zeros(614)}, "sample_weight"),
    ],
)
def test_bad_options(kwargs, message, X, treat):
    with pytest.raises(ValueError, match=message):
        balance_table(X, treat, **kwargs)


def test_sample_weight_zero_for_a_group(X, treat):
    sw = (treat == 0).astype(float)
    with pytest.raises(ValueError, match="sample_weight is zero for every treated unit"):
        balance_table(X, treat, sample_weight=sw)


def test_bad_n_top(treat):
    with pytest.raises(ValueError, match="n_top"):
        weight_summary(np.ones(len(treat)), treat, n_top=-1)


def test_ess_without_treatment_rejects_all_zero_weights():
    with pytest.raises(ValueError, match="weights is zero for every unit"):
        effective_sample_size(np.zeros(3))


def test_ess_and_summary_accept_a_fitted_estimator(treat, oracle_weights):
    class Fitted:
        weights_ = oracle_weights["ebal"]

    assert_allclose(effective_sample_size(Fitted(), treat), effective_sample_size(oracle_weights["ebal"], treat),
                    rtol=0, atol=0)
    assert effective_sample_size(Fitted()) == pytest.approx(effective_sample_size(oracle_weights["ebal"].to_numpy()))
    pd.testing.assert_frame_equal(weight_summary(Fitted(), treat).table,
                                  weight_summary(oracle_weights["ebal"], treat).table)
