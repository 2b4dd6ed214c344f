"""Defaults and average effects of the CATE learners: ate() of the U/R-learners, the T/S-learners' ate() and seeds,
nested seeds, and Hill's IHDP response surfaces."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from balance.hte import (DRLearner, IVWDRLearner, RLearner, SLearner, TLearner, ULearner, make_hte_setup,
                         make_ihdp_surface)
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
    # The symptom: the old default (boosting) put 165 of 747 IHDP propensities outside [0.01, 0.99]. Only
    # the propensity model is left at its default: linear outcome and final models keep the test quick.
    d = make_ihdp_surface("B", random_state=0)
    est = DRLearner(cv=5, outcome_model=LinearRegression(), final_model=LinearRegression(), random_state=0)
    est.fit(d.X, d.treatment, d.y)
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


# -- the doubly robust learners' default second stage and outcome form ---------------------------------------------
def _linear_effect_data(n, seed, slope=1.0):
    """Y = X₀ + A(1 + slope·X₁) + ε, A ~ Bernoulli(expit(X₀)): τ(x) = 1 + slope·x₁, confounded by X₀."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    a = rng.binomial(1, 1 / (1 + np.exp(-X[:, 0])))
    return X, a, X[:, 0] + a * (1 + slope * X[:, 1]) + rng.normal(size=n)


@pytest.mark.parametrize("learner", [DRLearner, IVWDRLearner])
def test_default_final_stage_is_the_fold_plugin_plus_a_ridge_fit_of_the_correction(learner):
    from sklearn.linear_model import RidgeCV

    X, a, y = _linear_effect_data(400, 0)
    est = learner(outcome_form="separate", cv=3, random_state=0, **LIN).fit(X, a, y)
    assert est.final_target_ == "correction" and est.outcome_form_ == "separate"
    # Independent reference: refit each training part's arm regressions by least squares, the pseudo-outcome from
    # the textbook AIPW formula, and the standardised RidgeCV of φ − (μ̂₁ − μ̂₀) with the learner's weights.
    mu1, mu0, plugin_new = np.empty(len(a)), np.empty(len(a)), np.zeros(5)
    X_new = np.random.default_rng(1).normal(size=(5, 3))
    for k in range(3):
        out = est.folds_ != k
        f1 = LinearRegression().fit(X[out & (a == 1)], y[out & (a == 1)])
        f0 = LinearRegression().fit(X[out & (a == 0)], y[out & (a == 0)])
        mu1[~out], mu0[~out] = f1.predict(X[~out]), f0.predict(X[~out])
        plugin_new += (f1.predict(X_new) - f0.predict(X_new)) / 3
    pi = est.nuisances_["pi"]
    phi = mu1 - mu0 + a * (y - mu1) / pi - (1 - a) * (y - mu0) / (1 - pi)
    w = pi * (1 - pi) if learner is IVWDRLearner else np.ones(len(a))
    mean, sd = X.mean(0), X.std(0)
    ridge = RidgeCV(alphas=np.logspace(-2, 7, 40)).fit((X - mean) / sd, phi - (mu1 - mu0), sample_weight=w)
    # least squares and a ridge solve on the same data: agreement to rounding (1e-8)
    assert_allclose(est.pseudo_outcome_, phi, rtol=1e-8, atol=1e-8)
    assert_allclose(est.predict(X_new), plugin_new + ridge.predict((X_new - mean) / sd), rtol=1e-8, atol=1e-8)
    # the intercept is not penalised: the (weighted) mean of the fitted correction is that of φ − plug-in, so the
    # in-sample mean of plug-in + correction is the mean pseudo-outcome (for DR, the AIPW ATE of ate())
    fitted = est.final_model_.predict(X)
    assert_allclose(np.average(fitted, weights=w), np.average(phi - (mu1 - mu0), weights=w), rtol=1e-10)
    if learner is DRLearner:
        assert_allclose(np.mean(mu1 - mu0 + fitted), est.ate()["estimate"].iloc[0], rtol=1e-10)


def test_default_final_stage_stays_doubly_robust_with_a_useless_outcome_model():
    # The plug-in of an outcome model predicting 0 is 0; the correction is then the whole AIPW pseudo-outcome,
    # unbiased for τ(x) = 1 + x₁ given the right propensity model (Y's noise makes the ridge's fit noisy: n = 6000,
    # the coefficients' SE is about 0.06, so 0.25 is 4 SEs).
    from sklearn.dummy import DummyRegressor

    X, a, y = _linear_effect_data(6000, 2)
    est = DRLearner(LogisticRegression(), DummyRegressor(strategy="constant", constant=0.0), cv=3,
                    random_state=0).fit(X, a, y)
    assert est.outcome_form_ == "single"  # a given outcome model keeps the single form unless asked
    tau = est.predict(np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]))
    assert_allclose(tau, [1.0, 2.0, 0.0], atol=0.25)


def test_auto_outcome_form_takes_separate_arm_models_only_when_clearly_better():
    # With τ(x) = 1 + 2x₁ a linear model of Y on (X, A) misses the interaction: the arm models are far better out of
    # fold. With a constant effect both forms are right and the single model (fewer parameters) is kept.
    for slope, expected in ((2.0, "separate"), (0.0, "single")):
        X, a, y = _linear_effect_data(600, 3, slope)
        est = DRLearner(outcome_form="auto", cv=3, random_state=0, **LIN).fit(X, a, y)
        assert est.outcome_form_ == expected
        single = DRLearner(outcome_form="single", cv=3, random_state=0, **LIN).fit(X, a, y)
        separate = DRLearner(outcome_form="separate", cv=3, random_state=0, **LIN).fit(X, a, y)
        errors = {}
        for name, fit in (("single", single), ("separate", separate)):
            observed = np.where(a == 1, fit.nuisances_["mu1"], fit.nuisances_["mu0"])
            errors[name] = (y - observed) ** 2
            assert_allclose(est.outcome_loss_[name], errors[name].mean(), rtol=1e-12)  # same fits, same mean
        gain = errors["single"] - errors["separate"]
        assert_allclose(est.outcome_loss_["z"], gain.mean() / (gain.std(ddof=1) / np.sqrt(len(gain))), rtol=1e-10)
        assert (est.outcome_loss_["z"] > 2) == (expected == "separate")
        chosen = separate if expected == "separate" else single
        assert_array_equal(est.nuisances_["mu1"], chosen.nuisances_["mu1"])


def test_default_outcome_form_adapts_only_with_the_default_outcome_model():
    X, a, y = _linear_effect_data(300, 4)
    given = DRLearner(cv=3, random_state=0, **LIN).fit(X, a, y)
    assert given.outcome_form_ == "single" and set(given.outcome_loss_) == {"single"}
    assert DRLearner()._outcome_form() == "auto"
    # a learner without outcome models of the arms has no form; one with a given final model regresses φ itself
    r = RLearner(final_model=LinearRegression(), cv=3, random_state=0, **LIN).fit(X, a, y)
    assert r.outcome_form_ is None and r.final_target_ == "pseudo_outcome"
    plain = DRLearner(final_model=LinearRegression(), cv=3, random_state=0, **LIN).fit(X, a, y)
    assert plain.final_target_ == "pseudo_outcome"
    assert_allclose(plain.predict(X), plain.final_model_.predict(X), rtol=0)


def test_default_final_stage_at_higher_order_averages_the_one_fold_outcome_models():
    # order 3: each outcome model is fitted on one fold; predict's plug-in averages the three of them
    X, a, y = _linear_effect_data(300, 5)
    est = DRLearner(cf_order=3, random_state=0, **LIN).fit(X, a, y)
    assert len(est.outcome_models_) == 3 and len(est.pseudo_outcome_) == 2 * len(a)
    XA = np.column_stack([X, a])
    plugin = np.mean([LinearRegression().fit(XA[est.folds_ == f], y[est.folds_ == f]).coef_[-1] for f in range(3)])
    # a linear model of Y on (X, A) has plug-in effect = its coefficient of A everywhere (least squares: 1e-8)
    assert_allclose(est.predict(X[:4]) - est.final_model_.predict(X[:4]), plugin, rtol=1e-8)


def test_auto_outcome_form_with_identical_forms_keeps_the_single_model_without_warnings():
    from sklearn.dummy import DummyRegressor

    X, a, y = _linear_effect_data(200, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 in the z statistic
        est = DRLearner(LogisticRegression(), DummyRegressor(strategy="constant", constant=0.0), cv=3,
                        outcome_form="auto", random_state=0).fit(X, a, y)
    assert est.outcome_form_ == "single" and est.outcome_loss_["z"] == 0.0  # both forms predict 0 everywhere


def test_clipping_most_propensities_warns_that_the_groups_barely_overlap():
    """A covariate that decides the treatment: nearly every π̂ is clipped, and the warning says what that means
    (extrapolated effects), with the count in n_clipped_ and the share in the message."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    X = pd.DataFrame({"x": x, "z": rng.normal(size=300)})
    a = (x > 0).astype(int)
    with pytest.warns(UserWarning, match=r"were clipped \(clip=0.01; \d+% of 300\)\. So many that the groups barely"):
        fit = DRLearner(random_state=0).fit(X, a, 1.3 * a + x + rng.normal(size=300))
    assert fit.n_clipped_ > 30
