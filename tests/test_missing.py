"""missing="indicator": missingness indicators plus median fill, checked on cobalt's lalonde_mis."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

from balance import PropensityWeights, WeightedEffect, balance_table

from .conftest import SHARED, _shared_file

COVS = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]


@pytest.fixture(scope="module")
def lalonde_mis():
    df = pd.read_csv(_shared_file(SHARED / "data" / "lalonde_mis_cobalt614.csv"))
    df["race"] = pd.Categorical(df["race"], categories=["black", "hispan", "white"])
    return df


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
