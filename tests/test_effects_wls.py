"""Weighted least squares with HC0 against WeightIt 1.5.1's ``se_hc0`` on lalonde."""

import numpy as np
import pandas as pd
from numpy.testing import assert_allclose

from balance.effects import weighted_least_squares

from .conftest import COVARIATES


def test_hc0_matches_weightit_simple_and_additive(lalonde, oracle):
    w = oracle("weights_ATT")["glm"].loc[lalonde.index].to_numpy()
    effects = oracle("effects_ATT").query("method == 'glm'").set_index("outcome_model")
    a, y = lalonde["treat"].to_numpy(float), lalonde["re78"].to_numpy()
    ones = np.ones(len(a))
    coef, cov = weighted_least_squares(np.column_stack([ones, a]), y, w)
    # exact algebra on the same weights: 1e-10 relative
    assert_allclose(coef[1], effects.loc["simple", "estimate"], rtol=1e-10)
    assert_allclose(np.sqrt(cov[1, 1]), effects.loc["simple", "se_hc0"], rtol=1e-10)
    X = pd.get_dummies(lalonde[COVARIATES], columns=["race"], drop_first=True, dtype=float).to_numpy()
    coef, cov = weighted_least_squares(np.column_stack([ones, a, X]), y, w)
    assert_allclose(coef[1], effects.loc["additive", "estimate"], rtol=1e-10)
    assert_allclose(np.sqrt(cov[1, 1]), effects.loc["additive", "se_hc0"], rtol=1e-10)


def test_simple_coefficient_is_the_hajek_difference(rng):
    a = rng.integers(0, 2, 100)
    y, w = rng.normal(size=100), rng.uniform(0.1, 3, 100)
    coef, _ = weighted_least_squares(np.column_stack([np.ones(100), a]), y, w)
    hajek = np.average(y[a == 1], weights=w[a == 1]) - np.average(y[a == 0], weights=w[a == 0])
    assert_allclose(coef[1], hajek, rtol=1e-12)
