"""Balancing weights for a multi-category treatment (K >= 3 levels): entropy balancing, inverse probability tilting,
stable balancing weights (optweight) and energy balancing, against WeightIt 1.5.1 and by identities.

References: the oracle ``weightit-multi-ate`` (lalonde, treatment ``race``, black the reference level, covariates
age, educ, married, nodegree, re74, re75; see ``shared/oracle/README.md``), exact balance of the target moments,
invariance to the order of the labels, and a simulation with a known (sample) truth.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from balance import EntropyBalance, InverseProbabilityTilting, StableWeights

from .conftest import SHARED, _shared_file
from .test_cbps import check_m_parts

MULTI = SHARED / "oracle" / "weightit-multi-ate"
COVS = ["age", "educ", "married", "nodegree", "re74", "re75"]
LEVELS = ["black", "hispan", "white"]


@pytest.fixture(scope="module")
def multi_weights(lalonde):
    """WeightIt's ATE weights of one method, checked to be in the row order (and with the race) of ``lalonde``."""

    def read(method):
        ref = pd.read_csv(_shared_file(MULTI / "weights" / f"ATE_{method}.csv"), index_col="id")
        assert ref.index.equals(lalonde.index)
        assert (ref["race"] == lalonde["race"].astype(str)).all()
        return ref["weight"]

    return read


def _level_sums(weights, race):
    return weights.groupby(race, observed=True).sum().loc[LEVELS].to_numpy()


def _weighted_means(X, weights, mask):
    return np.average(np.asarray(X, dtype=float)[mask], axis=0, weights=np.asarray(weights)[mask])


def _simulate(rng, n=1500, p=3, levels=("a", "b", "c")):
    """Multinomial-logit assignment to three levels; outcomes linear in X with level-specific coefficients."""
    X = rng.normal(size=(n, p))
    eta = np.column_stack([np.zeros(n), 0.4 + X @ np.linspace(0.6, -0.3, p), -0.2 + X @ np.linspace(-0.4, 0.5, p)])
    prob = np.exp(eta - eta.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    codes = (rng.random(n)[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)
    treatment = pd.Categorical(np.asarray(levels)[codes], categories=list(levels))
    alpha = np.array([1.0, 2.5, -0.5])
    beta = np.array([[1.0, -1.0, 0.5], [2.0, 0.0, -1.0], [0.5, 1.5, 1.0]])[:, :p]
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(p)]), treatment, codes, alpha, beta


@pytest.mark.parametrize("method", [EntropyBalance, InverseProbabilityTilting, StableWeights])
@pytest.mark.parametrize("focal", [None, "b"])
def test_known_truth(rng, method, focal):
    """Each level's weighted mean outcome against its known conditional truth alpha_g + beta_g' xbar_target.

    Outcomes are linear in X with level-specific slopes, so any weights that balance the level's covariate means to
    the target's make the weighted mean equal alpha_g + beta_g' (target mean of X) plus a weighted mean of the
    noise, whose SD is sigma sqrt(sum w^2) / sum w: the estimates must lie within 4 of those SDs (a failure has
    probability below 1e-4 per level when the weights are right; a wrong target moves them by many SDs).
    """
    weighter = method("ATE" if focal is None else "ATT", treated=focal)
    X, treatment, codes, alpha, beta = _simulate(rng)
    sigma = 1.0
    y_all = alpha + X.to_numpy() @ beta.T + sigma * rng.normal(size=(len(codes), 3))
    y = y_all[np.arange(len(codes)), codes]
    w = np.asarray(weighter.fit(X, treatment).weights_)
    target = np.ones(len(codes), bool) if focal is None else codes == list(treatment.categories).index(focal)
    xbar = X.to_numpy()[target].mean(axis=0)
    for g in range(3):
        in_g = codes == g
        estimate = np.average(y[in_g], weights=w[in_g])
        se = sigma * np.sqrt(np.sum(w[in_g] ** 2)) / w[in_g].sum()
        assert abs(estimate - (alpha[g] + beta[g] @ xbar)) < 4 * se


def check_focal_identities(make, lalonde, exact=True):
    """ATT with a focal level: the focal units keep weight 1; every other level sums to its own size and (exact
    methods) reproduces the focal level's covariate means to rounding; relabelling the levels in another order
    gives the same weights."""
    X, race = lalonde[COVS], lalonde["race"]
    fit = make("hispan").fit(X, race)
    w = fit.weights_
    focal = (race == "hispan").to_numpy()
    assert_allclose(w[focal], 1.0, rtol=0, atol=0)
    target = X[focal].mean().to_numpy()
    for level in ("black", "white"):
        in_g = (race == level).to_numpy()
        if exact:
            # differences in SDs of each covariate: rounding of an exact solve (Newton to the last digit)
            assert_allclose((_weighted_means(X, w, in_g) - target) / X.std().to_numpy(), 0, atol=1e-9)
    # the same weights whatever the order of the levels (a different reference level and level codes)
    reordered = pd.Categorical(race.astype(str), categories=["white", "hispan", "black"])
    again = make("hispan").fit(X, pd.Series(reordered, index=race.index)).weights_
    assert_allclose(again, w, rtol=1e-9, atol=1e-12)
    return fit


# ---------------------------------------------------------------------------------------------------------------
# EntropyBalance
# ---------------------------------------------------------------------------------------------------------------
def test_ebal_ate_matches_weightit(lalonde, multi_weights):
    eb = EntropyBalance("ATE").fit(lalonde[COVS], lalonde["race"])
    assert eb.converged_ and eb.coef_.shape == (3, 6)
    # both solve the same exact-balance dual; WeightIt's optimiser stops at a relative tolerance near 1e-10 (seen:
    # 1.4e-10), ours runs Newton to rounding, so 1e-8 relative leaves room for R's stopping point only
    assert_allclose(eb.weights_, multi_weights("ebal"), rtol=1e-8, atol=0)
    # WeightIt's scale: each level sums to its own size
    assert_allclose(_level_sums(eb.weights_, lalonde["race"]), [243, 72, 299], rtol=1e-12)


def test_ebal_att_focal_identities(lalonde):
    eb = check_focal_identities(lambda focal: EntropyBalance("ATT", treated=focal), lalonde)
    race = lalonde["race"]
    assert_allclose(_level_sums(eb.weights_, race), [243, 72, 299], rtol=1e-12)
    # the focal level is not reweighted: its row of coefficients is zero (weights exp(0) = 1)
    assert np.all(eb.coef_[1] == 0) and eb.intercept_[1] == 0


def test_ebal_tolerances_bound_each_level(rng):
    # ATE with tols: each level within tols / 2 of the full-sample mean in units of sqrt(mean of the K level
    # variances) (cobalt's multi-category SMD denominator), so every pair within tols
    X, treatment, codes, _, _ = _simulate(rng, n=600)
    eb = EntropyBalance("ATE", tols=0.05).fit(X, treatment)
    Z = X.to_numpy()
    sd = np.sqrt(np.mean([Z[codes == g].var(axis=0, ddof=1) for g in range(3)], axis=0))
    for g in range(3):
        gap = np.abs(_weighted_means(Z, eb.weights_, codes == g) - Z.mean(axis=0)) / sd
        assert np.all(gap <= 0.025 + 1e-8) and gap.max() > 0.02  # the bound binds (not exact balance)


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_ebal_m_parts(rng, estimand):
    X, treatment, _, _, _ = _simulate(rng, n=400)
    sw = rng.uniform(0.5, 2, len(X))
    eb = EntropyBalance(estimand, treated="c" if estimand == "ATT" else None).fit(X, treatment, sample_weight=sw)
    parts = eb._m_parts(X, treatment, sample_weight=sw)
    levels = ["a", "b", "c"] if estimand == "ATE" else ["a", "b"]
    assert parts.names == tuple(f"{g}:{n}" for g in levels for n in ("(Intercept)", "x0", "x1", "x2"))
    check_m_parts(parts, eb.weights_)


def test_ebal_refuses_atc_for_multi_category(lalonde):
    with pytest.raises(ValueError, match=r"estimand='ATC' is not supported by EntropyBalance for a multi-category "
                                         r"treatment; choose one of \['ATE', 'ATT'\]"):
        EntropyBalance("ATC").fit(lalonde[COVS], lalonde["race"])


# ---------------------------------------------------------------------------------------------------------------
# InverseProbabilityTilting
# ---------------------------------------------------------------------------------------------------------------
def test_ipt_ate_matches_weightit(lalonde, multi_weights):
    fit = InverseProbabilityTilting("ATE").fit(lalonde[COVS], lalonde["race"])
    assert fit.converged_ and fit.coef_.shape == (3, 6)
    # WeightIt solves each level's conditions with rootSolve::multiroot (rtol = atol = 1e-10 on the mean
    # estimating equations; its level sums are off n by up to 2e-11 relative), ours by Newton to rounding: 1e-8
    assert_allclose(fit.weights_, multi_weights("ipt"), rtol=1e-8, atol=0)
    # WeightIt's scale: 1/p, each level summing to n (the conditions' intercept row), to rounding
    assert_allclose(_level_sums(fit.weights_, lalonde["race"]), 614, rtol=1e-12)
    # the fitted models reproduce the weights on the same data
    assert_allclose(fit.predict_weights(lalonde[COVS], lalonde["race"]), fit.weights_, rtol=1e-14)


def test_ipt_att_focal_identities_and_equivalence_to_ebal(lalonde):
    fit = check_focal_identities(lambda focal: InverseProbabilityTilting("ATT", treated=focal), lalonde)
    race = lalonde["race"]
    # WeightIt's ATT scale: each reweighted level sums to the focal level's size (p/(1 - p) reproduces its totals)
    assert_allclose(_level_sums(fit.weights_, race), 72, rtol=1e-12)
    # the same conditions as entropy balancing (Zhao & Percival 2017): equal weights up to each level's constant
    eb = EntropyBalance("ATT", treated="hispan").fit(lalonde[COVS], race).weights_
    for level, size in (("black", 243), ("white", 299)):
        in_g = (race == level).to_numpy()
        assert_allclose(fit.weights_[in_g] / eb[in_g], 72 / size, rtol=1e-9)


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_ipt_m_parts(rng, estimand):
    X, treatment, _, _, _ = _simulate(rng, n=400)
    sw = rng.uniform(0.5, 2, len(X))
    fit = InverseProbabilityTilting(estimand, treated="a" if estimand == "ATT" else None)
    fit.fit(X, treatment, sample_weight=sw)
    assert not hasattr(fit, "ps_")  # one model per level: no single propensity score
    parts = fit._m_parts(X, treatment, sample_weight=sw)
    levels = ["a", "b", "c"] if estimand == "ATE" else ["b", "c"]
    assert parts.names == tuple(f"{g}:{n}" for g in levels for n in ("(Intercept)", "x0", "x1", "x2"))
    check_m_parts(parts, fit.weights_)


# ---------------------------------------------------------------------------------------------------------------
# StableWeights (WeightIt's optweight)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["clarabel", "osqp"])
def test_stable_ate_matches_weightit(lalonde, multi_weights, solver):
    fit = StableWeights("ATE", min_weight=1e-8, solver=solver).fit(lalonde[COVS], lalonde["race"])
    assert fit.converged_ and fit.polished_
    # oracle settings: tols 0, L2, min.w 1e-8. Both answers are the exact optimum of a strictly convex QP (WeightIt
    # polishes OSQP's point, we solve the active set's KKT system), seen equal to 2e-14 absolute: 1e-10 relative
    # plus 1e-12 absolute for the weights at the 1e-8 floor
    assert_allclose(fit.weights_, multi_weights("optweight"), rtol=1e-10, atol=1e-12)
    assert_allclose(_level_sums(fit.weights_, lalonde["race"]), [243, 72, 299], rtol=1e-12)
    # smd_: each level's mean minus the full-sample mean, in SMD units: zero (exact balance)
    assert fit.smd_.shape == (3, 6) and np.abs(fit.smd_).max() < 1e-12


def test_stable_att_focal_identities(lalonde):
    fit = check_focal_identities(lambda focal: StableWeights("ATT", treated=focal), lalonde)
    assert_allclose(_level_sums(fit.weights_, lalonde["race"]), [243, 72, 299], rtol=1e-12)


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_stable_tolerances_bound_each_level(rng, estimand):
    # each reweighted level within tols (tols / 2 for the ATE) of the target, in units of the focal level's SD
    # (ATT) or sqrt(mean of the K level variances) (ATE), computed here independently of the class
    X, treatment, codes, _, _ = _simulate(rng, n=600)
    fit = StableWeights(estimand, tols=0.1, treated="c" if estimand == "ATT" else None).fit(X, treatment)
    Z = X.to_numpy()
    if estimand == "ATE":
        target, bound = Z.mean(axis=0), 0.05
        sd = np.sqrt(np.mean([Z[codes == g].var(axis=0, ddof=1) for g in range(3)], axis=0))
    else:
        target, bound, sd = Z[codes == 2].mean(axis=0), 0.1, Z[codes == 2].std(axis=0, ddof=1)
    gaps = np.stack([(_weighted_means(Z, fit.weights_, codes == g) - target) / sd for g in range(3)])
    assert_allclose(fit.smd_, gaps, atol=1e-12)
    # the solver's feasibility tolerance (1e-8) on top of the bound; the bound binds somewhere
    assert np.abs(gaps).max() <= bound + 1e-8 and np.abs(gaps).max() > bound - 1e-6
