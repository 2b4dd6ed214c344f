"""Entropy balancing against R WeightIt 1.5.1, the primal problem it solves, and identities."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from balance import CBPS, EntropyBalance, InverseProbabilityTilting, WeightedEffect

from .conftest import COVARIATES, simulate
from .test_cbps import ORACLE_MODELS, check_against_weightit, check_effects, check_m_parts


# ---------------------------------------------------------------------------------------------------------------
# WeightIt oracle (lalonde, ATT)
# ---------------------------------------------------------------------------------------------------------------
def test_att_matches_weightit(lalonde, oracle):
    eb = EntropyBalance("ATT").fit(lalonde[COVARIATES], lalonde["treat"])
    assert eb.converged_
    # the same exact-balance solution on WeightIt 1.5.1's scale (each group sums to its size): 1e-8 relative
    check_against_weightit(eb, "ebal", lalonde, oracle, rtol=1e-8)
    t = lalonde["treat"]
    assert_allclose([eb.weights_[t == 1].sum(), eb.weights_[t == 0].sum()], [185, 429], rtol=1e-10)
    # the dual solution is the logistic CBPS/IPT coefficient vector (Zhao & Percival 2017)
    ref = oracle("ps_model_coefficients_ATT").query("method == 'ipt'")["coef"].to_numpy()
    assert_allclose(np.r_[eb.intercept_, eb.coef_], ref, rtol=1e-8)


def test_att_effects_match_weightit(lalonde, oracle):
    # estimates and weights-fixed (HC0) SEs are WeightIt's; HC0 of the additive model depends on the group scale,
    # so this also checks that the scale is WeightIt 1.5.1's
    check_effects(EntropyBalance("ATT"), "ebal", lalonde, oracle, vcovs=(("HC0", "se_hc0"),))


def test_att_asymptotic_se_accounts_for_the_targets(lalonde, oracle):
    # oracle README 5: WeightIt's ebal holds the treated means fixed; here they are estimated, which gives CBPS's
    # and IPT's SE (their weights are the same up to scale) and not WeightIt's smaller ebal value
    ref = oracle("effects_ATT").set_index(["method", "outcome_model"])
    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    for model, label in ORACLE_MODELS.items():
        fit = WeightedEffect(EntropyBalance("ATT"), model, "asympt", condition_on_covariates=True).fit(X, t, y)
        assert_allclose(fit.se_, ref.loc[("cbps_just", label), "se_asympt"], rtol=1e-6)
        if model != "interact":  # there WeightIt's two values agree (the weights drop out of the g-computation)
            assert abs(fit.se_ / ref.loc[("ebal", label), "se_asympt"] - 1) > 0.005


def test_att_weights_of_ebal_ipt_cbps_are_proportional(lalonde, oracle):
    # oracle README convention 2: for the ATT the three methods give identical weights up to a constant
    X, t = lalonde[COVARIATES], lalonde["treat"]
    control = (t == 0).to_numpy()
    fits = [EntropyBalance("ATT"), InverseProbabilityTilting("ATT"), CBPS("ATT")]
    weights = [f.fit(X, t).weights_.to_numpy()[control] for f in fits]
    for w in weights[1:]:
        ratio = w / weights[0]
        assert_allclose(ratio, ratio.mean(), rtol=1e-10)
    assert_allclose(weights[1] / weights[0], 185 / 429, rtol=1e-10)
    ref = oracle("weights_ATT")
    assert_allclose(ref["ipt"][control] / ref["ebal"][control], 185 / 429, rtol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# exact balance, scale, terms
# ---------------------------------------------------------------------------------------------------------------
def _terms(eb, X):
    M, names = eb.design_.transform(X)
    return eb._terms_expansion.transform(M, names)[0]


def _mixed(rng, n=400):
    X, a = simulate(rng, n=n)
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    frame["b"] = (rng.random(n) < 0.4 + 0.2 * a).astype(float)
    frame["g"] = pd.Categorical(rng.choice(["u", "v", "w"], n))
    return frame, a


@pytest.mark.parametrize("estimand", ["ATT", "ATC", "ATE"])
def test_moments_and_interactions_are_balanced_exactly(rng, estimand):
    X, a = _mixed(rng, n=600)
    sw = rng.uniform(0.5, 2, len(a))
    eb = EntropyBalance(estimand, moments=2, interactions=True).fit(X, a, sample_weight=sw)
    assert eb.converged_
    M, w = _terms(eb, X), eb.weights_.to_numpy()
    target = {"ATT": a == 1, "ATC": a == 0, "ATE": np.ones(len(a), bool)}[estimand]
    goal = np.average(M[target], axis=0, weights=sw[target])
    scale = M.std(axis=0)
    for group in (0, 1):
        rows = a == group
        if estimand != "ATE" and np.array_equal(rows, target):
            assert_allclose(w[rows], sw[rows], rtol=1e-15)  # the target group keeps its sampling weights
            continue
        assert_allclose((np.average(M[rows], axis=0, weights=w[rows]) - goal) / scale, 0, atol=1e-9)
        assert_allclose(w[rows].sum(), sw[rows].sum(), rtol=1e-9)  # each group sums to its size


def test_terms_leave_out_what_is_implied(rng):
    X, a = _mixed(rng)
    X["c"] = X["b"] * (rng.random(len(a)) < 0.5)  # c = 1 only where b = 1, so b:c = c
    eb = EntropyBalance("ATT", moments=2, interactions=True).fit(X, a)
    assert "x0^2" in eb.terms_ and "b^2" not in eb.terms_  # the square of a binary column is itself
    assert "g_v:g_w" not in eb.terms_  # two levels of one factor never meet
    assert "b:c" not in eb.terms_ and "x0:b" in eb.terms_ and "x0:x1" in eb.terms_
    assert len(eb.coef_) == len(eb.terms_)



@pytest.mark.parametrize("moments", [1, 2, 3])
def test_term_selection_is_the_greedy_rank_increase(rng, moments):
    """The in-order elimination keeps exactly the candidates that raise the rank of (intercept, base, terms kept
    before them), checked by numpy's SVD rank on the raw columns: an independent reference, exact here because
    the designs' dependencies are exact (b:c = c, collinear sums) and the independent terms far from dependent."""
    from balance.weights._moments import TermExpansion

    X, a = _mixed(rng)
    X["c"] = X["b"] * (rng.random(len(a)) < 0.5)
    X["s"] = X["x0"] + X["x1"]  # its products with x0 and x1 are sums of products kept before them
    eb = EntropyBalance("ATT", moments=moments, interactions=True)
    data = eb._validate_data(X, a)
    chosen = TermExpansion.learn(data.X, data.names, None, moments, True)  # design None: every pair a candidate
    M = np.column_stack([np.ones(len(a)), data.X])
    expected = []
    for j, k in [(j, k) for j in range(data.X.shape[1]) if not np.all(np.isin(data.X[:, j], (0, 1)))
                 for k in range(2, moments + 1)]:
        col = data.X[:, j] ** k
        if np.linalg.matrix_rank(np.column_stack([M, col])) > np.linalg.matrix_rank(M):
            M = np.column_stack([M, col])
            expected.append(f"{data.names[j]}^{k}")
    for i in range(data.X.shape[1]):
        for j in range(i + 1, data.X.shape[1]):
            col = data.X[:, i] * data.X[:, j]
            if np.std(col) > 0 and np.linalg.matrix_rank(np.column_stack([M, col])) > np.linalg.matrix_rank(M):
                M = np.column_stack([M, col])
                expected.append(f"{data.names[i]}:{data.names[j]}")
    assert list(chosen.names) == expected


# ---------------------------------------------------------------------------------------------------------------
# inexact balance (tols > 0) against the primal problem
# ---------------------------------------------------------------------------------------------------------------
def _check_kkt(X, w, goal, tols):
    """Certificate of optimality for min KL(w || uniform) s.t. sum w = 1, |X'w - goal| <= tols (convex, so the KKT
    conditions suffice): log w is affine in x with slopes λ, λ_j = 0 where the constraint is slack, λ_j <= 0 where
    the mean sits at goal + tol and λ_j >= 0 where it sits at goal - tol (λ = minus the multipliers)."""
    w = w / w.sum()
    design = np.column_stack([np.ones(len(X)), X])
    coef, *_ = np.linalg.lstsq(design, np.log(w), rcond=None)
    assert_allclose(design @ coef, np.log(w), atol=1e-9)  # exponential-family form, no residual
    lam = coef[1:] * X.std(axis=0)
    gap = X.T @ w - goal
    assert np.all(np.abs(gap) <= tols * (1 + 1e-9))
    upper, lower = np.isclose(gap, tols, rtol=1e-9), np.isclose(gap, -tols, rtol=1e-9)
    assert np.all(lam[upper] <= 1e-9) and np.all(lam[lower] >= -1e-9)
    assert_allclose(lam[~upper & ~lower], 0, atol=1e-9)
    assert upper.any() or lower.any()  # the tolerance binds somewhere (otherwise tols would be moot)


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_tols_solution_is_the_primal_optimum(rng, estimand):
    X, a = simulate(rng, n=200)
    eb = EntropyBalance(estimand, tols=0.1).fit(X, a)
    assert eb.converged_
    w = np.asarray(eb.weights_)
    # tolerance unit: the treated SD (ATT) or the root mean group variance, halved per group (ATE)
    sd = X[a == 1].std(axis=0, ddof=1) if estimand == "ATT" else \
        np.sqrt((X[a == 1].var(axis=0, ddof=1) + X[a == 0].var(axis=0, ddof=1)) / 2) / 2
    target = a == 1 if estimand == "ATT" else np.ones(len(a), bool)
    for group in ([0] if estimand == "ATT" else [0, 1]):
        rows = a == group
        _check_kkt(X[rows], w[rows], X[target].mean(axis=0), 0.1 * sd)


def test_tols_per_term_and_reported_balance(lalonde):
    X, t = lalonde[COVARIATES], lalonde["treat"]
    tols = np.array([0.0, 0.05, 0.0, 0.02, 0.1, 0.0, 0.2, 0.0])
    eb = EntropyBalance("ATT", tols=tols).fit(X, t)
    M, w, a = _terms(eb, X), eb.weights_.to_numpy(), t.to_numpy()
    binary = np.all((M == 0) | (M == 1), axis=0)
    unit = np.where(binary, 1.0, M[a == 1].std(axis=0, ddof=1))
    gap = np.average(M[a == 0], axis=0, weights=w[a == 0]) - M[a == 1].mean(axis=0)
    assert np.all(np.abs(gap) <= tols * unit + 1e-9 * M.std(axis=0))
    with pytest.raises(ValueError, match="one per balance term"):
        EntropyBalance("ATT", tols=[0.1, 0.2]).fit(X, t)
    with pytest.raises(ValueError, match="non-negative"):
        EntropyBalance("ATT", tols=-0.1).fit(X, t)


# ---------------------------------------------------------------------------------------------------------------
# infeasibility, base weights, sampling weights, convergence
# ---------------------------------------------------------------------------------------------------------------
def test_infeasible_exact_balance_suggests_tols(rng):
    X = rng.normal(size=(100, 2))
    a = (np.arange(100) < 40).astype(int)
    X[a == 0, 0] = np.clip(X[a == 0, 0], -3, 0.2)  # controls' x0 stays below 0.2 ...
    X[a == 1, 0] = np.abs(X[a == 1, 0]) + 0.3  # ... every treated x0 is above it
    with pytest.raises(ValueError, match=r"'x0' \(target .*tols > 0"):
        EntropyBalance("ATT").fit(X, a)
    gap = X[a == 1, 0].mean() - X[a == 0, 0].max()
    eb = EntropyBalance("ATT", tols=[1.5 * gap / X[a == 1, 0].std(ddof=1), 0.0]).fit(X, a)
    assert eb.converged_


def test_base_weights_that_already_balance_are_kept(rng):
    X, a = simulate(rng)
    first = EntropyBalance("ATT").fit(X, a)
    again = EntropyBalance("ATT", base_weights=first.weights_).fit(X, a)
    assert_allclose(again.weights_, first.weights_, rtol=1e-9)
    assert_allclose(again.coef_, 0, atol=1e-9)
    with pytest.raises(ValueError, match="base_weights: sample_weight has 10 entries"):
        EntropyBalance(base_weights=np.ones(10)).fit(X, a)


def test_integer_sample_weight_equals_repeated_rows(rng):
    X, a = simulate(rng)
    sw = rng.integers(0, 4, len(a))
    # (exact balance only: the SD unit of tols follows cobalt's weighted variance, whose n - 1 correction is
    # not that of repeated rows)
    eb = EntropyBalance("ATE").fit(X, a, sample_weight=sw)
    rep = EntropyBalance("ATE").fit(np.repeat(X, sw, axis=0), np.repeat(a, sw))
    assert_allclose(np.repeat(eb.weights_ / np.where(sw > 0, sw, 1), sw), rep.weights_, rtol=1e-9)


def test_non_convergence_warns_with_the_remaining_imbalance(lalonde):
    with pytest.warns(ConvergenceWarning, match=r"largest remaining imbalance is [0-9.e+-]+ SDs"):
        eb = EntropyBalance("ATE", max_iter=1).fit(lalonde[COVARIATES], lalonde["treat"])
    assert not eb.converged_ and np.all(np.isfinite(eb.weights_))


# ---------------------------------------------------------------------------------------------------------------
# the M-estimation seam
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimand", ["ATT", "ATC", "ATE"])
def test_m_parts_are_consistent(rng, estimand):
    X, a = simulate(rng, n=300)
    sw = rng.uniform(0.5, 2, len(a))
    base = rng.uniform(0.5, 2, len(a))
    eb = EntropyBalance(estimand, base_weights=base).fit(X, a, sample_weight=sw)
    parts = eb._m_parts(X, a, sample_weight=sw)
    check_m_parts(parts, eb.weights_)


def test_m_parts_refused_with_tols(rng):
    X, a = simulate(rng)
    eb = EntropyBalance(tols=0.1).fit(X, a)
    with pytest.raises(NotImplementedError, match="bootstrap"):
        eb._m_parts(X, a)


# ---------------------------------------------------------------------------------------------------------------
# known truth: linear potential outcomes (make_synthetic)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("weighter", [EntropyBalance("ATT"), EntropyBalance("ATE"), InverseProbabilityTilting("ATE")],
                         ids=["ebal-ATT", "ebal-ATE", "ipt-ATE"])
def test_exact_balance_recovers_the_sample_effect_up_to_noise(weighter):
    from balance.datasets import make_synthetic

    data = make_synthetic(3000, random_state=5)
    a, y = data.treatment.to_numpy(), data.y.to_numpy()
    w = np.asarray(weighter.fit(data.X, data.treatment).weights_)
    estimate = np.average(y[a == 1], weights=w[a == 1]) - np.average(y[a == 0], weights=w[a == 0])
    truth = data.true_att if weighter.estimand == "ATT" else data.true_ate
    # both potential outcomes are linear in X and the weights balance X exactly towards the target, so the error
    # is the weighted mean of the N(0, 1) noise in each arm: 4 of its SDs bound it (Zhao & Percival 2017)
    noise_sd = np.sqrt(sum(np.sum(w[a == g] ** 2) / np.sum(w[a == g]) ** 2 for g in (0, 1)))
    assert abs(estimate - truth) < 4 * noise_sd
