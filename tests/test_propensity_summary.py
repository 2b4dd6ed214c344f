"""The propensity model's coefficient table (R's summary(glm)): coefficients against WeightIt 1.5.1's oracle, SEs,
z statistics and p-values against statsmodels' independent maximum-likelihood fits."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from balance import PropensityWeights
from balance.datasets import load_lalonde

sm = pytest.importorskip("statsmodels.api")


@pytest.fixture(scope="module")
def data():
    return load_lalonde()


def _design(X):
    """[1, X] with categoricals in reference-level coding, named and ordered as PropensityWeights' terms (a
    categorical's indicators where the column was)."""
    parts = [pd.Series(1.0, index=X.index, name="(Intercept)")]
    for name, column in X.items():
        if isinstance(column.dtype, pd.CategoricalDtype):
            parts.append(pd.get_dummies(column, prefix=name, drop_first=True, dtype=float))
        else:
            parts.append(column.astype(float))
    return pd.concat(parts, axis=1)


def test_binary_table_matches_statsmodels_logit(data):
    table = PropensityWeights(estimand="ATT").fit(data.X, data.treatment).coef_table_
    design = _design(data.X)
    ref = sm.Logit(data.treatment.to_numpy(dtype=float), design).fit(method="newton", tol=1e-12, disp=0)
    assert list(table.index) == list(design.columns)
    assert list(table.columns) == ["estimate", "std_err", "statistic", "p_value"]
    # two exact MLEs of the same likelihood, and the same inverse information: 1e-6 relative (statsmodels stops
    # at its own tolerance)
    assert_allclose(table["estimate"], ref.params.to_numpy(), rtol=1e-6)
    assert_allclose(table["std_err"], ref.bse.to_numpy(), rtol=1e-6)
    assert_allclose(table["statistic"], ref.tvalues.to_numpy(), rtol=1e-6)
    assert_allclose(table["p_value"], ref.pvalues.to_numpy(), rtol=1e-6)


def test_binary_coefficients_match_weightit_glm(lalonde, oracle):
    ref = oracle("ps_model_coefficients_ATT")
    ref = ref[ref["method"] == "glm"].set_index("term")["coef"]
    ref.index = [{"racehispan": "race_hispan", "racewhite": "race_white"}.get(t, t) for t in ref.index]
    X = lalonde.drop(columns=["treat", "re78"])
    table = PropensityWeights(estimand="ATT").fit(X, lalonde["treat"]).coef_table_
    assert list(table.index) == list(ref.index)
    # R's glm stops on a relative deviance change of 1e-8, about 1e-8 short of the exact maximum: 1e-6 relative
    assert_allclose(table["estimate"], ref.to_numpy(), rtol=1e-6)


def test_sampling_weights_enter_as_case_weights(data):
    sw = np.random.default_rng(4).uniform(0.5, 2.0, size=len(data.treatment))
    table = PropensityWeights().fit(data.X, data.treatment, sample_weight=sw).coef_table_
    design = _design(data.X)
    ref = sm.GLM(data.treatment.to_numpy(dtype=float), design, family=sm.families.Binomial(),
                 freq_weights=sw).fit(tol=1e-12)
    assert_allclose(table["estimate"], ref.params.to_numpy(), rtol=1e-6)  # as above
    assert_allclose(table["std_err"], ref.bse.to_numpy(), rtol=1e-6)


def test_multinomial_table_matches_statsmodels_mnlogit(data):
    X = data.X.drop(columns="race").assign(treat=data.treatment.to_numpy())
    race = data.X["race"]
    table = PropensityWeights().fit(X, race).coef_table_
    design = _design(X)
    codes = race.cat.codes.to_numpy()
    ref = sm.MNLogit(codes, design).fit(method="newton", tol=1e-12, maxiter=200, disp=0)
    levels = list(race.cat.categories)
    names = [f"{level}:{term}" for level in levels[1:] for term in design.columns]
    assert list(table.index) == names
    # statsmodels' params: one column per non-reference level; ravel level by level
    assert_allclose(table["estimate"], ref.params.to_numpy().T.ravel(), rtol=1e-6)  # as above
    assert_allclose(table["std_err"], ref.bse.to_numpy().T.ravel(), rtol=1e-6)


def test_only_the_default_model_has_a_table(data):
    from sklearn.linear_model import LogisticRegression

    pw = PropensityWeights(estimand="ATT").fit(data.X, data.treatment)
    assert hasattr(pw, "coef_table_")
    pw.set_params(model=LogisticRegression(max_iter=1000)).fit(data.X, data.treatment)
    assert not hasattr(pw, "coef_table_")  # a refit with a classifier forgets the previous model's table
