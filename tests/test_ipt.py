"""Inverse probability tilting against R WeightIt 1.5.1, Graham et al.'s moment conditions and identities."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from balance import CBPS, InverseProbabilityTilting, WeightedEffect

from .conftest import COVARIATES, simulate
from .test_cbps import check_against_weightit, check_effects, check_m_parts


def test_att_matches_weightit(lalonde, oracle):
    ipt = InverseProbabilityTilting("ATT").fit(lalonde[COVARIATES], lalonde["treat"])
    assert ipt.converged_
    # both solve the tilting conditions to rounding level (WeightIt's residual is 7e-14): 1e-8 relative
    check_against_weightit(ipt, "ipt", lalonde, oracle, rtol=1e-8)


def test_att_effects_match_weightit(lalonde, oracle):
    check_effects(InverseProbabilityTilting("ATT"), "ipt", lalonde, oracle)


def test_att_and_atc_equal_just_identified_cbps(lalonde):
    # the ATT/ATC tilting conditions are the just-identified CBPS conditions (WeightIt's docs say the same)
    X, t = lalonde[COVARIATES], lalonde["treat"]
    for estimand in ("ATT", "ATC"):
        ipt = InverseProbabilityTilting(estimand).fit(X, t)
        cb = CBPS(estimand).fit(X, t)
        assert_allclose(ipt.weights_, cb.weights_, rtol=1e-10)
        assert_allclose(ipt.coef_, cb.coef_, rtol=1e-10)


def _dummies(X):
    return pd.get_dummies(X, dtype=float)


def test_ate_each_group_reproduces_the_full_sample(lalonde):
    # Graham, Pinto & Egel (2012): each group's tilted weights reproduce the full-sample means (every level of
    # race, not only the modelled ones) and sum to n
    X, t = lalonde[COVARIATES], lalonde["treat"]
    ipt = InverseProbabilityTilting("ATE").fit(X, t)
    D, w = _dummies(X), ipt.weights_
    for group in (t == 1, t == 0):
        means = D[group].mul(w[group], axis=0).sum() / w[group].sum()
        assert_allclose((means - D.mean()) / D.std(), 0, atol=1e-10)
        assert_allclose(w[group].sum(), len(t), rtol=1e-10)
    assert ipt.coef_.shape == (2, len(ipt.terms_)) and ipt.intercept_.shape == (2,)


def test_ate_models_are_the_att_and_atc_conditions(lalonde):
    # the control model solves the ATT condition (control odds reproduce the treated totals), the treated model
    # the ATC condition, so the ATE weights are 1 + those odds
    X, t = lalonde[COVARIATES], lalonde["treat"]
    ate = InverseProbabilityTilting("ATE").fit(X, t)
    att = InverseProbabilityTilting("ATT").fit(X, t)
    atc = InverseProbabilityTilting("ATC").fit(X, t)
    assert_allclose(ate.coef_[0], att.coef_, rtol=1e-10)
    assert_allclose(ate.coef_[1], atc.coef_, rtol=1e-10)
    assert_allclose(ate.weights_, np.where(t == 1, atc.weights_, att.weights_) + 1, rtol=1e-10)
    e = ate.ps_.to_numpy()
    assert_allclose(ate.weights_, np.where(t == 1, 1 / e, 1 / (1 - e)), rtol=1e-10)


def test_ate_outcome_models_coincide(lalonde):
    # conventions.md §6.3: with each group at the full-sample means, simple, additive and g-computation agree
    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    estimates = [WeightedEffect(InverseProbabilityTilting("ATE"), model, "HC0").fit(X, t, y).estimate_
                 for model in ("simple", "additive", "interact")]
    assert_allclose(estimates, estimates[0], rtol=1e-8)


def test_predict_weights_on_new_rows(rng):
    X, a = simulate(rng, n=400)
    ipt = InverseProbabilityTilting("ATE").fit(X[::2], a[::2])
    assert ipt.converged_
    assert_allclose(ipt.predict_weights(X[::2], a[::2]), ipt.weights_, rtol=1e-12)
    test, t = X[1::2], a[1::2]
    eta = np.where(t == 1, ipt.intercept_[1] + test @ ipt.coef_[1], ipt.intercept_[0] + test @ ipt.coef_[0])
    e = 1 / (1 + np.exp(-eta))
    assert_allclose(ipt.predict_weights(test, t), np.where(t == 1, 1 / e, 1 / (1 - e)), rtol=1e-10)


def test_overflowing_predictions_are_refused(rng):
    X, a = simulate(rng, n=400)
    ipt = InverseProbabilityTilting("ATT").fit(X, a)
    far = np.tile(np.sign(ipt.coef_) * 1e4, (4, 1))  # control logits far beyond what exp() can represent
    with pytest.raises(ValueError, match="weights of 3 units overflow"):
        ipt.predict_weights(far, np.array([1, 0, 0, 0]))


def test_integer_sample_weight_equals_repeated_rows(rng):
    X, a = simulate(rng)
    sw = rng.integers(0, 4, len(a))
    ipt = InverseProbabilityTilting("ATE").fit(X, a, sample_weight=sw)
    rep = InverseProbabilityTilting("ATE").fit(np.repeat(X, sw, axis=0), np.repeat(a, sw))
    assert_allclose(ipt.coef_, rep.coef_, rtol=1e-8)
    assert_allclose(np.repeat(ipt.weights_ / np.where(sw > 0, sw, 1), sw), rep.weights_, rtol=1e-8)


def test_non_convergence_warns(lalonde):
    with pytest.warns(ConvergenceWarning, match="largest remaining imbalance"):
        ipt = InverseProbabilityTilting("ATE", max_iter=1).fit(lalonde[COVARIATES], lalonde["treat"])
    assert not ipt.converged_ and np.all(np.isfinite(ipt.weights_))


def test_unreachable_target_is_a_clear_error(rng):
    X = rng.normal(size=(80, 2))
    a = (np.arange(80) < 30).astype(int)
    X[a == 0, 1] = np.abs(X[a == 0, 1])  # the controls' x1 never goes below 0 ...
    X[a == 1, 1] = -np.abs(X[a == 1, 1]) - 0.1  # ... and the treated are all below: no tilt reaches the mean
    with pytest.raises(ValueError, match=r"infeasible.*'x1'"):
        InverseProbabilityTilting("ATE").fit(X, a)


@pytest.mark.parametrize("estimand", ["ATE", "ATT", "ATC"])
def test_m_parts_are_consistent(rng, estimand):
    X, a = simulate(rng, n=300)
    sw = rng.uniform(0.5, 2, len(a))
    ipt = InverseProbabilityTilting(estimand).fit(X, a, sample_weight=sw)
    parts = ipt._m_parts(X, a, sample_weight=sw)
    if estimand == "ATE":
        assert parts.names[0] == "control:(Intercept)" and parts.names[4] == "treated:(Intercept)"
    check_m_parts(parts, ipt.weights_)
