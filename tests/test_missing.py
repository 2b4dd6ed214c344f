"""missing="indicator": missingness indicators plus median fill, checked on cobalt's lalonde_mis."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

from balance import (
    CBIPM,
    CBPS,
    EnergyBalance,
    EntropyBalance,
    InverseProbabilityTilting,
    PropensityWeights,
    StableWeights,
    UniformTransformerWeights,
    WeightedEffect,
    balance_table,
)

COVS = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]


def test_missing_values_error_by_default_and_say_what_to_do(lalonde_mis):
    with pytest.raises(ValueError, match=r"covariate 'married' has 20 missing values; pass missing='indicator'"):
        PropensityWeights("ATT").fit(lalonde_mis[COVS], lalonde_mis["treat"])


def test_indicator_model_equals_hand_built_design(lalonde_mis):
    # the counts stated in ../shared/data/README.md: married 20, re74 40, re75 39 missing
    assert lalonde_mis[COVS].isna().sum().to_dict() == {"age": 0, "educ": 0, "race": 0, "married": 20, "nodegree": 0,
                                                        "re74": 40, "re75": 39}
    pw = PropensityWeights("ATT", missing="indicator").fit(lalonde_mis[COVS], lalonde_mis["treat"])
    hand = pd.get_dummies(lalonde_mis[COVS], columns=["race"], drop_first=True, dtype=float)
    for col in ("married", "re74", "re75"):
        hand[f"{col}:<NA>"] = hand[col].isna().astype(float)
        hand[col] = hand[col].fillna(hand[col].median())
    ref = sm.Logit(lalonde_mis["treat"], sm.add_constant(hand)).fit(disp=0, tol=1e-12, maxiter=100)
    assert "married:<NA>" in pw.terms_ and pw.terms_.index("married:<NA>") == pw.terms_.index("married") + 1
    ours = pd.Series(np.r_[pw.intercept_, pw.coef_], index=["const", *pw.terms_])
    # two independent MLEs of the same model: 1e-6 relative
    assert_allclose(ours.loc[ref.params.index], ref.params, rtol=1e-6)


def test_balance_table_has_na_rows(lalonde_mis):
    pw = PropensityWeights("ATT", missing="indicator").fit(lalonde_mis[COVS], lalonde_mis["treat"])
    table = balance_table(lalonde_mis[COVS], lalonde_mis["treat"], pw)  # missing taken from the estimator
    assert table.loc["married:<NA>", "type"] == "Binary"
    na = lalonde_mis["re74"].isna()
    t = lalonde_mis["treat"] == 1
    assert_allclose(table.loc["re74:<NA>", "smd_un"], na[t].mean() - na[~t].mean(), rtol=1e-12)
    w = pw.weights_
    adj = np.average(na[t], weights=w[t]) - np.average(na[~t], weights=w[~t])
    assert_allclose(table.loc["re74:<NA>", "smd_adj"], adj, rtol=1e-10)
    with pytest.raises(ValueError, match="missing='indicator'"):
        balance_table(lalonde_mis[COVS], lalonde_mis["treat"])


def test_new_missingness_at_prediction_is_refused(lalonde_mis):
    complete = lalonde_mis.dropna()
    pw = PropensityWeights("ATT", missing="indicator").fit(complete[COVS], complete["treat"])
    with pytest.raises(ValueError, match="had none in the data the estimator was fitted on"):
        pw.predict_weights(lalonde_mis[COVS], lalonde_mis["treat"])


def test_effect_with_missing_covariates_runs_with_m_estimation(lalonde_mis):
    fit = WeightedEffect(PropensityWeights("ATT", missing="indicator"), "additive").fit(
        lalonde_mis[COVS], lalonde_mis["treat"], lalonde_mis["re78"])
    assert np.isfinite(fit.se_) and fit.result_.vcov_config["jacobian"] == "analytic"


def test_numpy_input_with_nan_and_indicator(rng):
    X = rng.normal(size=(300, 2))
    a = rng.binomial(1, 0.4, 300)
    X[::10, 1] = np.nan
    pw = PropensityWeights(missing="indicator").fit(X, a)
    assert pw.terms_ == ["x0", "x1", "x1:<NA>"] and np.all(np.isfinite(pw.weights_))


# ---------------------------------------------------------------------------------------------------------------
# every weighting estimator on lalonde_mis
# ---------------------------------------------------------------------------------------------------------------
NA_TERMS = ["married:<NA>", "re74:<NA>", "re75:<NA>"]
MAKERS = {
    "PropensityWeights": lambda missing, estimand="ATT": PropensityWeights(estimand, missing=missing),
    "CBPS": lambda missing, estimand="ATT": CBPS(estimand, missing=missing),
    "InverseProbabilityTilting": lambda missing, estimand="ATT": InverseProbabilityTilting(estimand, missing=missing),
    "EntropyBalance": lambda missing, estimand="ATT": EntropyBalance(estimand, missing=missing),
    "StableWeights": lambda missing, estimand="ATT": StableWeights(estimand, tols=0.0, missing=missing),
    "EnergyBalance": lambda missing, estimand="ATT": EnergyBalance(estimand, missing=missing),
    "CBIPM": lambda missing, estimand="ATT": CBIPM(estimand, n_epochs=20, missing=missing),
    "UniformTransformerWeights": lambda missing, estimand="ATT": UniformTransformerWeights(
        estimand, random_state=0, missing=missing),
}
# methods whose weights balance the model-matrix means exactly (to the solver's tolerance tol, in SDs of the term,
# so a 0/1 indicator's raw difference is below tol as well)
EXACT = ["CBPS", "InverseProbabilityTilting", "EntropyBalance", "StableWeights"]


def _model_columns(est):
    """The model-matrix columns a fitted estimator worked on."""
    if hasattr(est, "terms_"):
        return list(est.terms_)
    if isinstance(est, CBIPM):  # standardised columns, one scale per model-matrix column
        return len(est.mean_)
    return est.arms_[0].embedding.shape[1]  # UniformTransformerWeights: the transformed model matrix


@pytest.mark.filterwarnings("ignore:CBIPM. the .* objective had not levelled off")  # few epochs, on purpose
@pytest.mark.parametrize("name", list(MAKERS))
def test_every_weighter_fits_lalonde_mis_with_indicators(lalonde_mis, name):
    est = MAKERS[name]("indicator").fit(lalonde_mis[COVS], lalonde_mis["treat"])
    w = np.asarray(est.weights_)
    assert np.all(np.isfinite(w)) and np.all(w >= 0)
    columns = _model_columns(est)
    if isinstance(columns, list):  # the methods that report their balanced terms: each indicator after its column
        for term in NA_TERMS:
            assert columns.index(term) == columns.index(term.split(":")[0]) + 1, columns
    else:  # lalonde_mis's model matrix: 8 columns (race in reference coding) and the 3 indicators
        assert columns == 11
    table = balance_table(lalonde_mis[COVS], lalonde_mis["treat"], est)
    assert set(NA_TERMS) <= set(table.index) and np.all(np.isfinite(table["smd_adj"]))


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
@pytest.mark.parametrize("name", EXACT)
def test_exact_balance_methods_balance_the_missingness_indicators(lalonde_mis, name, estimand):
    est = MAKERS[name]("indicator", estimand).fit(lalonde_mis[COVS], lalonde_mis["treat"])
    w = np.asarray(est.weights_)
    t = lalonde_mis["treat"].to_numpy() == 1
    tol = getattr(est, "tol", None) or est.solver_tol  # the solver's tolerance on the imbalance, in SDs
    for term in NA_TERMS:
        na = lalonde_mis[term.split(":")[0]].isna().to_numpy()
        # weighted share missing, treated minus controls, computed here from the weights (independently of
        # balance_table); the unweighted difference is far from 0 for re74 (0.034), so the test can fail
        diff = np.average(na[t], weights=w[t]) - np.average(na[~t], weights=w[~t])
        assert abs(diff) <= tol, (term, diff)
    table = balance_table(lalonde_mis[COVS], lalonde_mis["treat"], est)
    assert_allclose(table.loc[NA_TERMS, "smd_adj"], 0.0, atol=tol)  # binary rows: raw differences in proportion
    # the median-filled columns are balanced too (the fill is part of the balanced term)
    assert_allclose(table.loc[["re74", "re75"], "smd_adj"], 0.0, atol=tol)


@pytest.mark.parametrize("name", list(MAKERS))
def test_missing_error_names_the_column_and_suggests_indicators(lalonde_mis, name):
    with pytest.raises(ValueError, match=r"covariate 'married' has 20 missing values; pass missing='indicator'"):
        MAKERS[name]("error").fit(lalonde_mis[COVS], lalonde_mis["treat"])


@pytest.mark.filterwarnings("ignore:CBIPM. the .* objective had not levelled off")  # few epochs, on purpose
@pytest.mark.parametrize("est", [
    PropensityWeights("ATT", missing="indicator"), CBPS("ATT", missing="indicator"),
    InverseProbabilityTilting("ATT", missing="indicator"),
    CBIPM("ATE", model="linear", n_epochs=20, random_state=0, missing="indicator"),
], ids=lambda e: type(e).__name__)
def test_prediction_refuses_missing_values_in_a_column_complete_at_fit(lalonde_mis, est):
    X, t = lalonde_mis[COVS], lalonde_mis["treat"]
    est.fit(X, t)  # married, re74, re75 incomplete; age complete
    new = X.copy()
    new.iloc[:3, new.columns.get_loc("age")] = np.nan
    with pytest.raises(ValueError, match=r"covariate 'age' has 3 missing values, but had none in the data the "
                                         r"estimator was fitted on"):
        est.predict_weights(new, t)
    # a column with missing values at fit time accepts them later (indicator 1, the fit's median)
    assert np.all(np.isfinite(est.predict_weights(X.iloc[::2], t.iloc[::2])))
