"""PropensityWeights against R WeightIt 1.5.1, closed forms and identities."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from balance import PropensityWeights, trim_weights, weights_from_propensity
from balance.weights._estimands import crump_alpha

from .conftest import COVARIATES, simulate


# ---------------------------------------------------------------------------------------------------------------
# the WeightIt oracle (lalonde, ATT)
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def att_fit(lalonde):
    return PropensityWeights(estimand="ATT").fit(lalonde[COVARIATES], lalonde["treat"])


def test_att_propensity_scores_match_weightit(att_fit, oracle):
    # R's glm stops at a relative deviance change of 1e-8, so its scores are converged to about 1e-9; 1e-8 absolute
    # is the bound for a fully converged MLE.
    ref = oracle("ps_ATT")["glm"]
    assert att_fit.ps_.index.equals(ref.index)
    assert_allclose(att_fit.ps_, ref, rtol=0, atol=1e-8)


def test_att_weights_match_weightit(att_fit, oracle):
    ref = oracle("weights_ATT")["glm"]
    assert_allclose(att_fit.weights_.loc[ref.index], ref, rtol=1e-7, atol=0)


def test_att_coefficients_match_weightit(att_fit, oracle):
    ref = oracle("ps_model_coefficients_ATT").query("method == 'glm'").set_index("term")["coef"]
    ours = pd.Series(np.r_[att_fit.intercept_, att_fit.coef_], index=["(Intercept)", *att_fit.terms_])
    # R names the dummies racehispan / racewhite; ours race_hispan / race_white
    ours.index = [name.replace("race_", "race") for name in ours.index]
    assert_allclose(ours.loc[ref.index], ref, rtol=1e-6)
    assert att_fit.converged_


def test_logistic_mle_matches_statsmodels(lalonde):
    """An independent MLE (statsmodels Logit) gives the same coefficients, with sampling weights too."""
    X = pd.get_dummies(lalonde[COVARIATES], columns=["race"], drop_first=True, dtype=float)
    sw = np.random.default_rng(1).integers(1, 4, len(X)).astype(float)
    ref = sm.GLM(lalonde["treat"], sm.add_constant(X), family=sm.families.Binomial(), freq_weights=sw).fit(tol=1e-14)
    pw = PropensityWeights().fit(lalonde[COVARIATES], lalonde["treat"], sample_weight=sw)
    ours = pd.Series(np.r_[pw.intercept_, pw.coef_], index=["const", *pw.terms_])
    assert_allclose(ours.loc[ref.params.index], ref.params, rtol=1e-7)


# ---------------------------------------------------------------------------------------------------------------
# estimands: every weight equals its formula
# ---------------------------------------------------------------------------------------------------------------
FORMULAS = {
    "ATE": (lambda e: 1 / e, lambda e: 1 / (1 - e)),
    "ATT": (lambda e: np.ones_like(e), lambda e: e / (1 - e)),
    "ATC": (lambda e: (1 - e) / e, lambda e: np.ones_like(e)),
    "ATO": (lambda e: 1 - e, lambda e: e),
    "ATM": (lambda e: np.minimum(e, 1 - e) / e, lambda e: np.minimum(e, 1 - e) / (1 - e)),
}


@pytest.mark.parametrize("estimand", sorted(FORMULAS))
def test_estimand_weights_follow_formula(lalonde, estimand):
    pw = PropensityWeights(estimand=estimand).fit(lalonde[COVARIATES], lalonde["treat"])
    e, a = pw.ps_.to_numpy(), lalonde["treat"].to_numpy()
    treated, control = FORMULAS[estimand]
    expected = np.where(a == 1, treated(e), control(e))
    assert_allclose(pw.weights_, expected, rtol=1e-12)
    assert_allclose(weights_from_propensity(e, a, estimand), expected, rtol=1e-12)


def test_atos_threshold_solves_crumps_equation(lalonde):
    pw = PropensityWeights(estimand="ATOS").fit(lalonde[COVARIATES], lalonde["treat"])
    e, a, alpha = pw.ps_.to_numpy(), lalonde["treat"].to_numpy(), pw.atos_alpha_
    g, gamma = 1 / (e * (1 - e)), 1 / (alpha * (1 - alpha))
    # Crump et al. (2009): 1/(α(1−α)) = 2 E[g | g <= 1/(α(1−α))], an exact fixed point of the sample step function
    assert 0 < alpha < 0.5
    assert_allclose(gamma, 2 * g[g <= gamma * (1 + 1e-12)].mean(), rtol=1e-10)
    inside = (e >= alpha) & (e <= 1 - alpha)
    assert_allclose(pw.weights_, inside * np.where(a == 1, 1 / e, 1 / (1 - e)), rtol=1e-12)


def test_atos_alpha_is_zero_with_good_overlap():
    e = np.full(50, 0.5)
    assert crump_alpha(e) == 0.0


def test_overlap_weights_balance_model_covariates_exactly(lalonde):
    # Li, Morgan & Zaslavsky (2018): with a logistic MLE including an intercept, ATO weights give exactly equal
    # weighted means of every model covariate (the logistic score equations); limited by the MLE's convergence.
    pw = PropensityWeights(estimand="ATO").fit(lalonde[COVARIATES], lalonde["treat"])
    X = pd.get_dummies(lalonde[COVARIATES], columns=["race"], dtype=float)
    a, w = lalonde["treat"] == 1, pw.weights_
    diff = X[a].mul(w[a], axis=0).sum() / w[a].sum() - X[~a].mul(w[~a], axis=0).sum() / w[~a].sum()
    assert_allclose(diff / X.std(), 0, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# sample weights, clipping, trimming, extreme scores, convergence
# ---------------------------------------------------------------------------------------------------------------
def test_integer_sample_weight_equals_repeated_rows(rng):
    X, a = simulate(rng)
    sw = rng.integers(0, 4, len(a))
    pw = PropensityWeights("ATT").fit(X, a, sample_weight=sw)
    rep = PropensityWeights("ATT").fit(np.repeat(X, sw, axis=0), np.repeat(a, sw))
    assert_allclose(pw.coef_, rep.coef_, rtol=1e-9)
    # weights_ include the sampling weights, so each repeated row carries weights_ / sw
    assert_allclose(pw.weights_, sw * weights_from_propensity(pw.ps_, a, "ATT"), rtol=1e-12)
    assert_allclose(np.repeat(pw.weights_ / np.where(sw > 0, sw, 1), sw), rep.weights_, rtol=1e-9)


def test_clip_is_counted_and_warned(lalonde):
    with pytest.warns(UserWarning, match=r"clip=\(0.05, 0.95\): \d+ propensity scores were clipped"):
        pw = PropensityWeights("ATE", clip=(0.05, 0.95)).fit(lalonde[COVARIATES], lalonde["treat"])
    raw = PropensityWeights("ATE").fit(lalonde[COVARIATES], lalonde["treat"]).ps_
    assert pw.n_clipped_ == int(((raw < 0.05) | (raw > 0.95)).sum()) > 0
    assert_allclose(pw.ps_, raw.clip(0.05, 0.95), rtol=1e-12)


def test_no_clip_or_trim_by_default(lalonde):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pw = PropensityWeights("ATE").fit(lalonde[COVARIATES], lalonde["treat"])
    assert (pw.n_clipped_, pw.n_trimmed_, pw.n_bounded_) == (0, 0, 0)


def test_trim_follows_weightit_rules():
    w = np.arange(1.0, 11.0)
    a = np.zeros(10, dtype=int)
    # R: quantile(1:10, 0.9, type = 3) is 9, so the single weight 10 becomes 9
    trimmed, touched = trim_weights(w, a, 0.9)
    assert_allclose(trimmed, [1, 2, 3, 4, 5, 6, 7, 8, 9, 9])
    assert touched.sum() == 1
    # at = 3: the three largest are set to the fourth largest (WeightIt's documentation)
    assert_allclose(trim_weights(w, a, 3)[0], [1, 2, 3, 4, 5, 6, 7, 7, 7, 7])
    assert_allclose(trim_weights(w, a, 3, lower=True)[0], [4, 4, 4, 4, 5, 6, 7, 7, 7, 7])
    # the focal group is left alone and not counted in the quantile
    a2 = np.r_[np.ones(5, dtype=int), np.zeros(5, dtype=int)]
    assert_allclose(trim_weights(w, a2, 1, focal=1)[0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 9])


def test_trim_is_counted_and_warned(lalonde):
    # R's type-3 quantile at p = 0.95 of the 429 control weights is the order statistic x_(k) with
    # k = floor(429 * 0.95 - 0.5) + 1 = 408 (np - 1/2 is not an integer), so 429 - 408 = 21 weights lie above it.
    with pytest.warns(UserWarning, match="trim=0.95: 21 weights were trimmed"):
        pw = PropensityWeights("ATT", trim=0.95).fit(lalonde[COVARIATES], lalonde["treat"])
    assert pw.n_trimmed_ == 21
    assert (pw.weights_[lalonde["treat"] == 1] == 1).all()


def test_perfect_separation_warns_and_stays_finite(rng):
    x = np.r_[rng.uniform(-2, -0.1, 30), rng.uniform(0.1, 2, 30)]
    a = (x > 0).astype(int)
    X = np.column_stack([x, rng.normal(size=60)])
    with pytest.warns(UserWarning, match=r"numerically 0 or 1 .*\(units: "):
        pw = PropensityWeights("ATE").fit(X, a)
    assert np.all(np.isfinite(pw.weights_)) and pw.n_bounded_ > 0


def test_precomputed_scores_of_exactly_zero_warn_and_stay_finite():
    ps = np.array([0.0, 0.3, 0.6, 1.0, 0.5, 0.4])
    a = np.array([1, 0, 1, 0, 1, 0])
    with pytest.warns(UserWarning, match=r"units: 0, 3"):
        pw = PropensityWeights("ATE", model="precomputed").fit(ps.reshape(-1, 1), a)
    assert np.all(np.isfinite(pw.weights_)) and pw.n_bounded_ == 2


def test_non_convergence_warns(lalonde):
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations"):
        pw = PropensityWeights("ATT", max_iter=1).fit(lalonde[COVARIATES], lalonde["treat"])
    assert not pw.converged_ and pw.n_iter_ == 1


# ---------------------------------------------------------------------------------------------------------------
# other propensity sources
# ---------------------------------------------------------------------------------------------------------------
def test_classifier_model_matches_unpenalised_logistic(lalonde):
    X = lalonde[["age", "educ", "married", "nodegree"]]
    ours = PropensityWeights("ATT").fit(X, lalonde["treat"])
    sk = PropensityWeights("ATT", model=LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000)).fit(X, lalonde["treat"])
    # lbfgs stops at its own tolerance: agreement to 1e-5 shows the wiring (classes, columns) is right
    assert_allclose(sk.ps_, ours.ps_, atol=1e-5)
    assert sk.estimator_ is not sk.model


def test_classifier_predict_weights_reproduces_fit(lalonde):
    pw = PropensityWeights("ATE", model=GradientBoostingClassifier(n_estimators=20, random_state=0))
    pw.fit(lalonde[COVARIATES], lalonde["treat"])
    assert_allclose(pw.predict_weights(lalonde[COVARIATES], lalonde["treat"]), pw.weights_, rtol=1e-12)


def test_precomputed_reproduces_model_weights(lalonde):
    fitted = PropensityWeights("ATO").fit(lalonde[COVARIATES], lalonde["treat"])
    pre = PropensityWeights("ATO", model="precomputed").fit(fitted.ps_.to_frame("ps"), lalonde["treat"])
    assert_allclose(pre.weights_, fitted.weights_, rtol=1e-14)


def test_predict_weights_on_new_rows(lalonde):
    train, test = lalonde.iloc[::2], lalonde.iloc[1::2]
    pw = PropensityWeights("ATT").fit(train[COVARIATES], train["treat"])
    w = pw.predict_weights(test[COVARIATES], test["treat"])
    e = pw.predict_proba(test[COVARIATES])
    assert w.index.equals(test.index)
    assert_allclose(w, np.where(test["treat"] == 1, 1, e / (1 - e)), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# the M-estimation seam
# ---------------------------------------------------------------------------------------------------------------
def _numerical_jacobian(f, theta, step=1e-6):
    """Central differences with a relative step: an independent check of the analytic derivatives."""
    cols = []
    for j in range(theta.size):
        h = step * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        cols.append((f(up) - f(down)) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("estimand", ["ATE", "ATT", "ATC", "ATO", "ATM", "ATOS"])
def test_m_parts_are_consistent(rng, estimand):
    X, a = simulate(rng, n=300)
    sw = rng.uniform(0.5, 2, len(a))
    pw = PropensityWeights(estimand).fit(X, a, sample_weight=sw)
    parts = pw._m_parts(X, a, sample_weight=sw)
    theta = parts.params
    assert parts.names == ("(Intercept)", "x0", "x1", "x2")
    # the estimating equations are solved at the estimates (to the MLE's tolerance)
    assert_allclose(parts.psi(theta).sum(axis=0), 0, atol=1e-8)
    assert_allclose(parts.weights(theta), pw.weights_, rtol=1e-12)
    # analytic derivatives agree with finite differences (error O(h^2) ~ 1e-10 relative to the entries' size)
    assert_allclose(parts.psi_jacobian(theta), _numerical_jacobian(lambda t: parts.psi(t).sum(axis=0), theta),
                    rtol=1e-6, atol=1e-6)
    assert_allclose(parts.weights_jacobian(theta), _numerical_jacobian(parts.weights, theta), rtol=1e-5, atol=1e-7)


def test_m_parts_refused_where_no_estimating_equations(lalonde):
    X, t = lalonde[COVARIATES], lalonde["treat"]
    with pytest.warns(UserWarning):
        trimmed = PropensityWeights("ATT", trim=0.99).fit(X, t)
    with pytest.raises(NotImplementedError, match="bootstrap"):
        trimmed._m_parts(X, t)
    gb = PropensityWeights("ATT", model=GradientBoostingClassifier(n_estimators=5)).fit(X, t)
    with pytest.raises(NotImplementedError, match="bootstrap"):
        gb._m_parts(X, t)
