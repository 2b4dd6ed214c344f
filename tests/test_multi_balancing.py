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
from scipy.spatial.distance import cdist

from balance import (CBIPM, EnergyBalance, EntropyBalance, InverseProbabilityTilting, StableWeights,
                     UniformTransformerWeights, WeightedEffect)
from balance.datasets import load_lalonde

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
        assert ref.index.equals(load_lalonde().X.index)  # the packaged copy has the same rows in the same order
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


@pytest.mark.parametrize("method", [EntropyBalance, InverseProbabilityTilting, StableWeights, EnergyBalance])
@pytest.mark.parametrize("focal", [None, "b"])
def test_known_truth(rng, method, focal):
    """Each level's weighted mean outcome against its known conditional truth alpha_g + beta_g' xbar_target.

    Outcomes are linear in X with level-specific slopes, so any weights that balance the level's covariate means to
    the target's make the weighted mean equal alpha_g + beta_g' (target mean of X) plus a weighted mean of the
    noise, whose SD is sigma sqrt(sum w^2) / sum w: the estimates must lie within 4 of those SDs (a failure has
    probability below 1e-4 per level when the weights are right; a wrong target moves them by many SDs). Energy
    balancing balances the means only approximately (its remaining bias was below 0.35 of those SDs in trial runs,
    which the bound absorbs) and runs on 600 units to stay fast (the ATE's QP has one weight per unit).
    """
    weighter = method("ATE" if focal is None else "ATT", treated=focal)
    X, treatment, codes, alpha, beta = _simulate(rng, n=600 if method is EnergyBalance else 1500)
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


def test_ipt_m_parts_give_weightits_asymptotic_se(lalonde):
    # the stacked estimating equations (IPT's per-level tilts with the outcome model's) give WeightIt's
    # vcov = "asympt" for lm_weightit(re78 ~ race): the same equations (ours with the opposite sign, which the
    # sandwich does not see) at the same estimates; 1e-6 relative leaves room for R's root-finding tolerance only
    ref = pd.read_csv(_shared_file(MULTI / "coefficients.csv"))
    ref = ref.query("case == 'ATE_ipt' and model == 're78 ~ race' and vcov == 'asympt'").set_index("term")
    fit = WeightedEffect(InverseProbabilityTilting("ATE"), "simple", "asympt").fit(lalonde[COVS], lalonde["race"],
                                                                                   lalonde["re78"])
    for level in ("hispan", "white"):
        contrast = f"{level} - black"
        assert_allclose(fit.estimate_[contrast], ref.loc[f"race{level}", "estimate"], rtol=1e-8)
        assert_allclose(fit.se_[contrast], ref.loc[f"race{level}", "se"], rtol=1e-6)


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


# ---------------------------------------------------------------------------------------------------------------
# EnergyBalance
# ---------------------------------------------------------------------------------------------------------------
def _scaled(X):
    """Covariates as WeightIt's energy method sees them (no categorical here): unit-SD columns."""
    Z = np.asarray(X, dtype=float)
    return (Z - Z.mean(axis=0)) / Z.std(axis=0, ddof=1)


def _energy(D, p, q):
    return 2 * p @ D @ q - p @ D @ p - q @ D @ q


def multi_energy(D, codes, w, focal=None):
    """WeightIt's multi-category objective without its penalty, written out: ATE, every level's weighted
    distribution against the full sample plus every pair of levels ("improved"); ATT, every other level against
    the focal level."""
    p = [np.where(codes == g, w, 0.0) / w[codes == g].sum() for g in range(codes.max() + 1)]
    if focal is not None:
        return sum(_energy(D, p[g], p[focal]) for g in range(len(p)) if g != focal)
    u = np.full(len(codes), 1 / len(codes))
    return sum(_energy(D, pg, u) for pg in p) + sum(_energy(D, p[g], p[h]) for g in range(len(p))
                                                      for h in range(g + 1, len(p)))


@pytest.fixture(scope="module")
def energy_ate(lalonde):
    return EnergyBalance("ATE", min_weight=1e-8, solver="osqp").fit(lalonde[COVS], lalonde["race"])


def test_energy_ate_matches_weightit(lalonde, multi_weights, energy_ate):
    fit, race = energy_ate, lalonde["race"]
    codes = race.cat.codes.to_numpy()
    assert fit.solver_ == "osqp" and fit.converged_
    ref = multi_weights("energy").to_numpy()
    D = cdist(_scaled(lalonde[COVS]), _scaled(lalonde[COVS]))
    ours = fit.weights_.to_numpy()
    # the attribute is the objective written out independently (the problem WeightIt builds)
    assert_allclose(fit.energy_distance_, multi_energy(D, codes, ours), rtol=1e-9)
    # the same minimum as WeightIt's weights (the floor 1e-8 printed for zeros): at the optimum the objective is flat
    # to first order, so OSQP's tolerances (eps_abs 1e-8, eps_rel 1e-6) move it by far less than 1e-6 (seen: 4e-10)
    assert_allclose(fit.energy_distance_, multi_energy(D, codes, np.where(ref <= 1e-8, 0.0, ref)), rtol=1e-6)
    # the weights: only the penalty lambda = 1e-4 on the squared masses (~1/n_g) makes the minimum strict, so a
    # change of 1e-11 in the objective (both solves stop there) moves single weights by up to ~0.1; seen 0.011.
    # 0.02 absolute (weights average 1 per level) is the agreement two OSQP solves give here
    assert_allclose(ours, ref, rtol=0, atol=0.02)
    assert_allclose(_level_sums(fit.weights_, race), [243, 72, 299], rtol=1e-12)
    # balance they give agrees much better than single weights: weighted means per level within 2e-3 SDs
    sd = lalonde[COVS].std().to_numpy()
    for g in range(3):
        in_g = codes == g
        assert_allclose(_weighted_means(lalonde[COVS], ours, in_g) / sd, _weighted_means(lalonde[COVS], ref, in_g) / sd,
                        rtol=0, atol=2e-3)


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_energy_apg_reaches_the_osqp_minimum(lalonde, estimand):
    X, race = lalonde[COVS], lalonde["race"]
    focal = "hispan" if estimand == "ATT" else None
    exact = EnergyBalance(estimand, treated=focal, solver="osqp").fit(X, race)
    apg = EnergyBalance(estimand, treated=focal, solver="apg", tol=1e-10, max_iter=20000).fit(X, race)
    assert exact.converged_ and apg.converged_
    # the same convex minimum reached by two different algorithms: energy distances to 1e-6 relative (the objective
    # is flat at its minimum), and both certify it by their Frank-Wolfe gaps
    assert_allclose(apg.energy_distance_, exact.energy_distance_, rtol=1e-6)
    assert exact.duality_gap_ < 1e-5 and apg.duality_gap_ < 1e-4


def test_energy_att_focal_identities(lalonde):
    X, race = lalonde[COVS], lalonde["race"]
    fit = EnergyBalance("ATT", treated="hispan").fit(X, race)
    codes = race.cat.codes.to_numpy()
    w = fit.weights_.to_numpy()
    assert_allclose(w[codes == 1], 1.0, rtol=0, atol=0)
    assert_allclose(_level_sums(fit.weights_, race), [243, 72, 299], rtol=1e-12)
    D = cdist(_scaled(X), _scaled(X))
    assert_allclose(fit.energy_distance_, multi_energy(D, codes, w, focal=1), rtol=1e-9)
    assert fit.energy_distance_ < 0.1 * fit.initial_energy_distance_
    # relabelling the levels in another order: the same problem, so the same minimum (weights only to the solver's
    # tolerance: the minimum is nearly flat, see test_energy_ate_matches_weightit)
    reordered = pd.Series(pd.Categorical(race.astype(str), categories=["white", "hispan", "black"]), index=race.index)
    again = EnergyBalance("ATT", treated="hispan").fit(X, reordered)
    assert_allclose(again.energy_distance_, fit.energy_distance_, rtol=1e-6)
    assert_allclose(again.weights_, fit.weights_, rtol=0, atol=0.02)


@pytest.mark.parametrize("estimand", ["ATE", "ATT"])
def test_energy_partitioned_multi_category(lalonde, estimand):
    X, race = lalonde[COVS], lalonde["race"]
    focal = "black" if estimand == "ATT" else None
    exact = EnergyBalance(estimand, treated=focal).fit(X, race)
    parts = EnergyBalance(estimand, treated=focal, solver="apg", partition_size=310, random_state=0).fit(X, race)
    assert parts.n_partitions_ > 1 and parts.converged_
    codes = race.cat.codes.to_numpy()
    D = cdist(_scaled(X), _scaled(X))
    # the attribute is the full-sample objective of the averaged weights, computed once per pair
    assert_allclose(parts.energy_distance_, multi_energy(D, codes, parts.weights_.to_numpy(),
                                                         focal=0 if focal else None), rtol=1e-9)
    assert_allclose(_level_sums(parts.weights_, race), [243, 72, 299], rtol=1e-10)
    # above the minimum but near it (the parts' errors largely cancel in the average; 2 is a loose bound)
    assert exact.energy_distance_ * (1 - 1e-6) <= parts.energy_distance_ < 2 * exact.energy_distance_


# ---------------------------------------------------------------------------------------------------------------
# binary-only methods
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", [CBIPM, UniformTransformerWeights])
@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_binary_only_methods_refuse_in_one_line(lalonde, method, estimand):
    with pytest.raises(ValueError, match=rf"^{method.__name__} supports binary treatments only; got a multi-category "
                                         r"treatment with 3 levels\.$"):
        method(estimand, treated="white").fit(lalonde[COVS], lalonde["race"])


# ---------------------------------------------------------------------------------------------------------------
# sampling weights
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", [EntropyBalance, InverseProbabilityTilting, StableWeights])
@pytest.mark.parametrize("focal", [None, "c"])
def test_integer_sampling_weights_equal_repeated_rows(rng, method, focal):
    # a unit of sampling weight k is k copies of it: the same balance conditions (and, for optweight, the same
    # s-weighted dispersion), so each copy's weight equals the weighted unit's weight / k, to solver rounding
    X, treatment, _, _, _ = _simulate(rng, n=300)
    sw = rng.integers(1, 4, len(X)).astype(float)
    make = lambda: method("ATE" if focal is None else "ATT", treated=focal)  # noqa: E731
    weighted = np.asarray(make().fit(X, treatment, sample_weight=sw).weights_)
    rows = np.repeat(np.arange(len(X)), sw.astype(int))
    repeated = np.asarray(make().fit(X.iloc[rows].reset_index(drop=True), treatment[rows]).weights_)
    first = np.r_[0, np.cumsum(sw.astype(int))[:-1]]
    assert_allclose(repeated[first], weighted / sw, rtol=1e-8)
