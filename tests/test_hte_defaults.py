"""Defaults and average effects of the CATE learners: ate() of the U/R-learners, the T/S-learners' ate() and seeds,
nested seeds, and Hill's IHDP response surfaces."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from balance.hte import DRLearner, RLearner, SLearner, TLearner, ULearner, make_hte_setup, make_ihdp_surface
from balance.hte._data import seeded

LIN = dict(propensity_model=LogisticRegression(), outcome_model=LinearRegression())


@pytest.fixture(scope="module")
def setup_c():
    # τ(x) = 1 for everyone, confounded treatment (e(X) = expit(−(X₂ + X₃)))
    return make_hte_setup("C", n=3000, p=4, random_state=11)


@pytest.mark.parametrize("learner", [RLearner, ULearner])
def test_u_pseudo_outcome_ate_is_the_aipw_of_its_own_nuisances(setup_c, learner):
    d = setup_c
    est = learner(final_model=LinearRegression(), cv=4, random_state=0, **LIN).fit(d.X, d.treatment, d.y)
    # Independent algebra from y itself (ate() recovers Y − m̂ from the stored ratio): μ̂ₐ = m̂ + (a − π̂)τ̂ and the
    # textbook AIPW signal μ̂₁ − μ̂₀ + A(Y − μ̂₁)/π̂ − (1 − A)(Y − μ̂₀)/(1 − π̂).
    pi, m = est.nuisances_["pi"], est.nuisances_["m"]
    tau = est.final_model_.predict(d.X)
    mu1, mu0 = m + (1 - pi) * tau, m - pi * tau
    a, y = d.treatment, d.y
    phi = mu1 - mu0 + a * (y - mu1) / pi - (1 - a) * (y - mu0) / (1 - pi)
    table = est.ate()
    assert_allclose(table["estimate"].iloc[0], phi.mean(), rtol=1e-10)  # rounding only
    assert_allclose(table["std_err"].iloc[0], phi.std(ddof=1) / np.sqrt(len(phi)), rtol=1e-10)
    # and it is an estimate of the true ATE (1), within 4 SEs (a fixed draw; the SE is about 0.04)
    assert abs(table["estimate"].iloc[0] - 1) < 4 * table["std_err"].iloc[0]


def test_r_learner_ate_is_consistent_for_any_outcome_model_when_the_propensity_is_right(setup_c):
    # E[(A − π)(Y − m)|X] = π(1 − π)τ(X) for any m: a useless outcome model (predicting 0) still gives the ATE
    from sklearn.dummy import DummyRegressor

    d = setup_c
    est = RLearner(propensity_model=LogisticRegression(), outcome_model=DummyRegressor(strategy="constant",
                   constant=0.0), final_model=LinearRegression(), cv=4, random_state=0).fit(d.X, d.treatment, d.y)
    table = est.ate()
    assert abs(table["estimate"].iloc[0] - 1) < 4 * table["std_err"].iloc[0]


@pytest.mark.parametrize("learner", [TLearner, SLearner])
def test_difference_learner_ate_and_bootstrap(setup_c, learner):
    d = setup_c
    est = learner(LinearRegression()).fit(d.X, d.treatment, d.y)
    table = est.ate(n_bootstrap=60, random_state=1)
    assert_allclose(table["estimate"].iloc[0], est.predict(d.X).mean(), rtol=1e-12)
    assert table.equals(est.ate(n_bootstrap=60, random_state=1))  # reproducible
    # Reference for the SE: the cross-fitted AIPW SE on the same data; with correct linear outcome models the
    # plug-in is about as efficient, so the bootstrap SE (Monte Carlo error ~ 1/sqrt(2·60) ≈ 9 %) lies within 35 %.
    dr = DRLearner(final_model=LinearRegression(), cv=4, random_state=0, **LIN).fit(d.X, d.treatment, d.y).ate()
    assert 0.65 < table["std_err"].iloc[0] / dr["std_err"].iloc[0] < 1.35
    assert abs(table["estimate"].iloc[0] - 1) < 4 * table["std_err"].iloc[0]
    with pytest.raises(ValueError, match="n_bootstrap"):
        est.ate(n_bootstrap=1)


@pytest.mark.parametrize("learner", [TLearner, SLearner])
def test_difference_learners_seed_their_outcome_models(setup_c, learner):
    d = setup_c
    model = HistGradientBoostingRegressor(early_stopping=True, max_iter=30)  # random validation split
    fits = [learner(model, random_state=s).fit(d.X, d.treatment, d.y).predict(d.X[:50]) for s in (3, 3, 4)]
    assert_array_equal(fits[0], fits[1])
    assert not np.array_equal(fits[0], fits[2])


def test_seeded_fills_only_unset_random_states():
    pipe = make_pipeline(StandardScaler(), RandomForestRegressor(random_state=7))
    assert seeded(pipe, 0).get_params()["randomforestregressor__random_state"] == 7
    forest = seeded(RandomForestRegressor(), 0)
    assert isinstance(forest.random_state, int)
    assert forest.random_state == seeded(RandomForestRegressor(), 0).random_state
    assert seeded(LinearRegression(), 0).get_params() == LinearRegression().get_params()


def test_default_propensity_model_does_not_overfit_ihdp():
    # The symptom: the old default (boosting) put 165 of 747 IHDP propensities outside [0.01, 0.99].
    d = make_ihdp_surface("B", random_state=0)
    est = DRLearner(cv=5, random_state=0).fit(d.X, d.treatment, d.y)
    assert est.n_clipped_ == 0


def test_ihdp_surfaces_follow_hill():
    b = make_ihdp_surface("B", random_state=5)
    assert b.X.shape == (747, 25)
    assert_allclose(b.tau[b.treatment.to_numpy() == 1].mean(), 4.0, rtol=1e-12)  # ω is chosen for CATT = 4
    a = make_ihdp_surface("A", random_state=5)
    assert_allclose(a.tau, 4.0)  # surface A: constant effect
    observed = np.where(b.treatment == 1, b.mu1, b.mu0)
    assert abs(np.mean(b.y - observed)) < 4 / np.sqrt(747)  # noise N(0, 1) around the observed arm's mean
    with pytest.raises(ValueError, match="surface"):
        make_ihdp_surface("C")
