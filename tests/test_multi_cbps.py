"""CBPS for a multi-category treatment: WeightIt's multinomial CBPS (just- and over-identified), exact-balance
identities, invariance to the order of the labels, a known-truth simulation and the M-estimation parts."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from balance import CBPS

from .test_multi_propensity import LEVELS, multi_oracle, race, simulate_multi  # noqa: F401 (fixture)
from .test_propensity import _numerical_jacobian


@pytest.fixture(scope="module")
def just(race):  # noqa: F811
    return CBPS().fit(*race)


def _weighted_means(X, t, w):
    """Weighted covariate means per level, shape (n_levels, n_features), levels in sorted order."""
    X, t = np.asarray(X, dtype=float), np.asarray(t)
    return np.array([np.average(X[t == level], axis=0, weights=w[t == level]) for level in np.unique(t)])


# ---------------------------------------------------------------------------------------------------------------
# the WeightIt oracle (lalonde, race, ATE)
# ---------------------------------------------------------------------------------------------------------------
def test_just_identified_weights_match_weightit(just):
    ref = multi_oracle("weights/ATE_cbps_just.csv")
    assert just.weights_.index.equals(ref.index) and just.converged_
    # both solve the balance conditions exactly (WeightIt's multiroot to 1e-10; ours to rounding): 6e-13 observed
    assert_allclose(just.weights_, ref["weight"], rtol=1e-9)


def test_over_identified_weights_match_weightit(race):  # noqa: F811
    ours = CBPS(over=True).fit(*race)
    ref = multi_oracle("weights/ATE_cbps_over.csv")
    assert ours.converged_
    # Same GMM problem and first step (α · MLE). WeightIt finds α with R's optimize() at its default tolerance
    # (1.2e-4; each 1e-4 in α moves the weights by about 1e-4) and stops BFGS at a relative change of 1e-10;
    # ours solves both to rounding level. 2.6e-5 observed.
    assert_allclose(ours.weights_, ref["weight"], rtol=1e-4)
    # the GMM estimate is not the exact-balance one (7% apart), so the test tells the two apart
    just = multi_oracle("weights/ATE_cbps_just.csv")["weight"]
    assert np.max(np.abs(ours.weights_ / just - 1)) > 0.05


# ---------------------------------------------------------------------------------------------------------------
# exact-balance identities
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimand, focal", [("ATE", None), ("ATT", "white"), ("ATO", None)])
def test_just_identified_balances_means_exactly(race, estimand, focal):  # noqa: F811
    X, t = race
    cb = CBPS(estimand, treated=focal).fit(X, t)
    w = cb.weights_.to_numpy()
    sums = np.bincount(pd.Categorical(t).codes, weights=w)
    # the intercept condition: every level's weights have the same sum (ATT: the focal level's size)
    assert_allclose(sums, sums[0], rtol=1e-10)
    means = _weighted_means(X, t, w)
    # the covariate conditions: identical weighted means in every level (to the solver's 1e-8 SD tolerance)
    assert_allclose((means - means[0]) / X.std().to_numpy(), 0, atol=1e-8)
    if estimand == "ATT":
        assert_allclose(sums[0], np.sum(t == "white"), rtol=1e-10)
        assert np.all(w[(t == "white").to_numpy()] == 1.0)
        assert_allclose(means[0], X[t == "white"].mean(), rtol=1e-9)
    # the weight formulas, from the fitted generalised scores
    p = cb.ps_.to_numpy()
    own = p[np.arange(len(t)), pd.Categorical(t).codes]
    expected = {"ATE": 1 / own, "ATT": p[:, 2] / own, "ATO": 1 / (own * (1 / p).sum(axis=1))}[estimand]
    assert_allclose(w, expected, rtol=1e-14)


@pytest.mark.parametrize("over", [False, True])
def test_invariant_to_the_order_of_the_labels(race, over):  # noqa: F811
    """A different reference level states the same conditions (and the same GMM problem) in other coordinates."""
    X, t = race
    reordered = pd.Series(pd.Categorical(t.astype(str), categories=["white", "hispan", "black"]), index=t.index)
    a = CBPS("ATT", treated="hispan", over=over).fit(X, t)
    b = CBPS("ATT", treated="hispan", over=over).fit(X, reordered)
    assert b.ps_.columns.tolist() == ["white", "hispan", "black"]
    # both solved to rounding level; the GMM's conditioning (Hessian eigenvalues 0.1 to 8) keeps the gap ~1e-10
    assert_allclose(b.weights_, a.weights_, rtol=1e-7)


def test_integer_sample_weights_equal_repeated_rows(rng):
    X, t, _ = simulate_multi(rng, n=300)
    sw = rng.integers(1, 4, len(t))
    weighted = CBPS().fit(X, t, sample_weight=sw.astype(float))
    repeated = CBPS().fit(np.repeat(X, sw, axis=0), np.repeat(t, sw))
    assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-8)


def test_predict_weights_reproduces_fit(just, race):  # noqa: F811
    assert_allclose(just.predict_weights(*race), just.weights_, rtol=1e-14)
    assert_allclose(just.predict_proba(race[0]), just.ps_, rtol=1e-14)


def test_refit_on_a_multi_category_treatment_forgets_binary_facts(race, lalonde):  # noqa: F811
    cb = CBPS().fit(lalonde[["age", "educ"]], lalonde["treat"])
    assert cb.separation_ == []
    cb.fit(*race)
    assert not hasattr(cb, "separation_") and cb.coef_.shape == (2, 6)


def test_unsupported_estimand_and_non_convergence(race):  # noqa: F811
    with pytest.raises(ValueError, match=r"estimand='ATC' is not supported by CBPS for a multi-category"):
        CBPS("ATC").fit(*race)
    with pytest.warns(ConvergenceWarning, match="CBPS did not converge in 1 iterations"):
        cb = CBPS(max_iter=1).fit(*race)
    assert not cb.converged_


# ---------------------------------------------------------------------------------------------------------------
# simulation with known truth
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimand, focal", [("ATE", None), ("ATT", "c")])
def test_simulation_recovers_the_target_means(estimand, focal):
    """n = 5000 from a known multinomial logit: weighted means of a covariate not in the model (X1²) and of the
    potential outcomes recover the targets within 4 Monte-Carlo SEs (targets from the true scores on 400,000
    draws; SE the linearisation of the weighted mean, as in test_multi_propensity)."""
    rng = np.random.default_rng(11)
    X, t, _ = simulate_multi(rng, n=5000, p=2)
    Xbig, _, proba_big = simulate_multi(np.random.default_rng(12), n=400_000, p=2)
    tilt = proba_big[:, 2] if estimand == "ATT" else np.ones(len(Xbig))
    w = CBPS(estimand, treated=focal).fit(X, t).weights_
    for k, level in enumerate("abc"):
        y = k + X[:, 0] + X[:, 0] * X[:, 1] + rng.normal(size=len(t))
        for values, big in [(X[:, 0] ** 2, Xbig[:, 0] ** 2), (y, k + Xbig[:, 0] + Xbig[:, 0] * Xbig[:, 1])]:
            truth = np.sum(big * tilt) / np.sum(tilt)
            m = t == level
            mean = np.average(values[m], weights=w[m])
            se = np.sqrt(np.sum(w[m] ** 2 * (values[m] - mean) ** 2)) / w[m].sum()
            assert abs(mean - truth) < 4 * se, (level, mean, truth, se)


# ---------------------------------------------------------------------------------------------------------------
# the M-estimation parts
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimand, focal", [("ATE", None), ("ATT", "a"), ("ATO", None)])
def test_m_parts_are_consistent(rng, estimand, focal):
    X, t, _ = simulate_multi(rng, n=400)
    sw = rng.uniform(0.5, 2, len(t))
    cb = CBPS(estimand, treated=focal).fit(X, t, sample_weight=sw)
    parts = cb._m_parts(X, t, sample_weight=sw)
    theta = parts.params
    assert parts.names == ("b:(Intercept)", "b:x0", "b:x1", "c:(Intercept)", "c:x0", "c:x1")
    # the balance conditions hold at the estimates (tolerance 1e-8 SDs times a weighted total of ~400)
    assert_allclose(parts.psi(theta).sum(axis=0), 0, atol=1e-5)
    assert_allclose(parts.weights(theta), cb.weights_, rtol=1e-12)
    # analytic derivatives against central differences (error O(h^2) ~ 1e-10 relative to the entries' size)
    assert_allclose(parts.psi_jacobian(theta), _numerical_jacobian(lambda v: parts.psi(v).sum(axis=0), theta),
                    rtol=1e-6, atol=1e-5)
    assert_allclose(parts.weights_jacobian(theta), _numerical_jacobian(parts.weights, theta), rtol=1e-5, atol=1e-7)


def test_m_parts_refused_for_the_over_identified(race):  # noqa: F811
    cb = CBPS(over=True).fit(*race)
    with pytest.raises(NotImplementedError, match="GMM estimator without an M-estimation form"):
        cb._m_parts(*race)
