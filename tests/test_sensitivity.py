"""Sensitivity analyses for unmeasured confounding (balance.sensitivity), each against an independent reference:

- E-values: VanderWeele & Ding's (2017) worked example and the closed forms of their Table 2, written out here.
- Marginal sensitivity model: the sorting algorithm against scipy's linprog on the Charnes–Cooper transformation of
  the linear-fractional programme, with the weight boxes built from the propensity scores as Zhao, Small &
  Bhattacharya (2019) state them (not through weight_parts); the breakdown Λ against the sensitivity table itself.
- Omitted-variable bias: Cinelli & Hazlett's (2020) published Darfur numbers, PySensemakr's formulas (a test-only
  dependency, skipped when missing) and statsmodels' WLS for the regression.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from balance import EntropyBalance, PropensityWeights, WeightedEffect
from balance.datasets import load_lalonde
from balance.sensitivity import (benchmark_bounds, evalue, evalue_rr, hajek_bounds, msm_bounds, ovb_sensitivity,
                                 partial_r2, robustness_value)
from balance.sensitivity._msm import EffectBounds


# -- E-values --------------------------------------------------------------------------------------------------
def _closed_form(rr):
    rr = max(rr, 1 / rr)
    return rr + np.sqrt(rr * (rr - 1))


def test_evalue_vanderweele_ding_breastfeeding_example():
    # VanderWeele & Ding (2017), Annals of Internal Medicine: RR 3.9 (1.8, 8.7) -> E-values 7.2 and 3.0; the CI's
    # is exactly 3 (1.8 + sqrt(1.8 * 0.8) = 1.8 + 1.2), the estimate's 7.26 (published rounded down to 7.2)
    out = evalue(3.9, 1.8, 8.7)
    assert out["ci"] == pytest.approx(3.0, abs=1e-12)
    assert out["estimate"] == pytest.approx(3.9 + np.sqrt(3.9 * 2.9), abs=1e-12)
    assert round(out["estimate"], 2) == 7.26


@pytest.mark.parametrize("est, lo, hi, measure, rare, rr", [
    (0.80, 0.71, 0.91, "RR", None, lambda v: v),                 # protective: the upper limit is nearer the null
    (0.86, 0.75, 0.99, "OR", False, np.sqrt),                     # EValue's evalues.OR example, common outcome
    (2.5, 1.4, 4.1, "OR", True, lambda v: v),                     # rare outcome: OR ~ RR
    (0.56, 0.46, 0.69, "HR", False,                               # EValue's evalues.HR example, common outcome
     lambda v: (1 - 0.5 ** np.sqrt(v)) / (1 - 0.5 ** np.sqrt(1 / v))),
    (1.9, 1.2, 3.0, "HR", True, lambda v: v),
])
def test_evalue_table2_conversions(est, lo, hi, measure, rare, rr):
    # Table 2 of VanderWeele & Ding (2017), written out independently of the module; exact up to rounding
    out = evalue(est, lo, hi, measure=measure, rare=rare)
    assert out["estimate"] == pytest.approx(_closed_form(rr(est)), rel=1e-13)
    limit = lo if est > 1 else hi
    assert out["ci"] == pytest.approx(_closed_form(rr(limit)), rel=1e-13)


def test_evalue_published_or_example_rounded():
    # EValue's documented output of evalues.OR(0.86, 0.75, 0.99, rare = FALSE): E-values 1.37 (point), 1.08 (CI)
    assert evalue(0.86, 0.75, 0.99, measure="OR", rare=False).round(2).tolist() == [1.37, 1.08]


def test_evalue_mean_difference_via_standardised_difference():
    # RR ~ exp(0.91 d), d = difference / sd; the CI limit nearer the null converted the same way
    out = evalue(5.0, 1.0, 9.0, measure="MD", sd=10.0)
    assert out["estimate"] == pytest.approx(_closed_form(np.exp(0.91 * 0.5)), rel=1e-13)
    assert out["ci"] == pytest.approx(_closed_form(np.exp(0.91 * 0.1)), rel=1e-13)
    negative = evalue(-5.0, -9.0, -1.0, measure="MD", sd=10.0)
    assert negative.tolist() == pytest.approx(out.tolist(), rel=1e-13)  # symmetric in the sign


def test_evalue_null_in_interval_true_value_and_no_interval():
    assert evalue(1.3, 0.9, 1.8)["ci"] == 1.0
    assert evalue(1.0)["estimate"] == 1.0
    assert np.isnan(evalue(2.0)["ci"])
    # shifting to a true RR of 1.5: the E-value of 3 / 1.5 = 2
    assert evalue(3.0, 2.0, 4.5, true=1.5)["estimate"] == pytest.approx(_closed_form(2.0), rel=1e-13)
    assert evalue_rr(0.25) == pytest.approx(_closed_form(4.0), rel=1e-13)


@pytest.mark.parametrize("kwargs, match", [
    (dict(estimate=2.0, measure="OR"), "rare=True"),
    (dict(estimate=2.0, measure="MD"), "needs sd"),
    (dict(estimate=-2.0), "must be positive"),
    (dict(estimate=2.0, lower=2.5, upper=3.0), "must contain the estimate"),
    (dict(estimate=2.0, measure="RD"), "choose one of"),
])
def test_evalue_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        evalue(**kwargs)


@pytest.fixture(scope="module")
def lalonde():
    return load_lalonde()


def test_effect_evalue_uses_the_effect_and_its_interval(lalonde):
    fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(lalonde.X, lalonde.treatment, lalonde.y)
    ci = fit.conf_int().iloc[0]
    expected = evalue(fit.estimate_, ci["lower"], ci["upper"], measure="MD", sd=float(np.std(lalonde.y, ddof=1)))
    pd.testing.assert_series_equal(fit.evalue(), expected)
    binary = (np.asarray(lalonde.y) > 0).astype(float)
    rr = WeightedEffect(PropensityWeights(estimand="ATT"), scale="rr").fit(lalonde.X, lalonde.treatment, binary)
    ci = rr.conf_int().iloc[0]
    assert rr.evalue().tolist() == evalue(rr.estimate_, ci["lower"], ci["upper"]).tolist()
    with pytest.raises(ValueError, match="scale='rr'"):
        WeightedEffect(PropensityWeights()).fit(lalonde.X, lalonde.treatment, binary).evalue()


# -- marginal sensitivity model ------------------------------------------------------------------------------------
def _lp_bounds(y, lower, upper):
    """min and max of Σ w y / Σ w over lower ≤ w ≤ upper by linprog after Charnes–Cooper: z = w t, t = 1/Σw, so
    the objective is yᵀz subject to Σ z = 1 and lower t ≤ z ≤ upper t, t ≥ 0."""
    n = len(y)
    a_ub = np.block([[np.eye(n), -upper[:, None]], [-np.eye(n), lower[:, None]]])
    a_eq = np.append(np.ones(n), 0.0)[None, :]
    opts = dict(primal_feasibility_tolerance=1e-10, dual_feasibility_tolerance=1e-10)
    out = []
    for sign in (1.0, -1.0):
        res = linprog(sign * np.append(y, 0.0), A_ub=a_ub, b_ub=np.zeros(2 * n), A_eq=a_eq, b_eq=[1.0],
                      bounds=[(0, None)] * (n + 1), method="highs", options=opts)
        assert res.status == 0
        out.append(sign * res.fun)
    return tuple(out)


@pytest.mark.parametrize("seed", range(5))
def test_hajek_bounds_equal_linear_programme(seed):
    rng = np.random.default_rng(seed)
    n = 60
    y = np.round(rng.normal(size=n), 1)  # ties included
    lower = rng.uniform(0.1, 2.0, n) * (rng.uniform(size=n) > 0.1)  # some zero lower limits
    upper = lower + rng.exponential(2.0, n)
    # tolerance 1e-8: the LP is solved to feasibility 1e-10; the sorting result is exact up to round-off
    np.testing.assert_allclose(hajek_bounds(y, lower, upper), _lp_bounds(y, lower, upper), atol=1e-8)


def _boxes(ps, a, estimand, lam):
    """Weight limits of Zhao, Small & Bhattacharya (2019), from the propensity scores: the true inverse propensity
    1/e of a treated unit lies in [1 + (1/ê − 1)/Λ, 1 + Λ(1/ê − 1)] (the odds off by at most Λ), and so on."""
    odds_t = (1 - ps) / ps  # 1/e − 1 for the treated
    odds_c = ps / (1 - ps)  # 1/(1 − e) − 1 for the controls
    if estimand == "ATE":
        lo = np.where(a == 1, 1 + odds_t / lam, 1 + odds_c / lam)
        hi = np.where(a == 1, 1 + odds_t * lam, 1 + odds_c * lam)
    elif estimand == "ATT":  # treated weight 1, controls the odds e/(1 − e)
        lo = np.where(a == 1, 1.0, odds_c / lam)
        hi = np.where(a == 1, 1.0, odds_c * lam)
    else:  # ATC: controls 1, treated (1 − e)/e
        lo = np.where(a == 1, odds_t / lam, 1.0)
        hi = np.where(a == 1, odds_t * lam, 1.0)
    return lo, hi


@pytest.mark.parametrize("estimand", ["ATE", "ATT", "ATC"])
@pytest.mark.parametrize("seed", range(3))
def test_msm_effect_bounds_equal_linear_programme(estimand, seed):
    rng = np.random.default_rng(100 + seed)
    n = 80
    ps = rng.uniform(0.1, 0.9, n)
    a = rng.binomial(1, ps)
    y = 2 * a + rng.normal(size=n)
    w = {"ATE": np.where(a == 1, 1 / ps, 1 / (1 - ps)), "ATT": np.where(a == 1, 1.0, ps / (1 - ps)),
         "ATC": np.where(a == 1, (1 - ps) / ps, 1.0)}[estimand]
    lambdas = [1.0, 1.3, 2.0, 5.0]
    table = msm_bounds(y, a, w, lambdas, estimand=estimand, ps=ps)
    for lam in lambdas:
        lo, hi = _boxes(ps, a, estimand, lam)
        t, c = a == 1, a == 0
        mu1 = _lp_bounds(y[t], lo[t], hi[t])
        mu0 = _lp_bounds(y[c], lo[c], hi[c])
        np.testing.assert_allclose(table.loc[lam].to_numpy(), [mu1[0] - mu0[1], mu1[1] - mu0[0]], atol=1e-8)


def _lp_balanced_bounds(y, lower, upper, phi, target):
    """Brute force for Dorn & Guo's bounds: min and max of Σ w y / Σ w over lower ≤ w ≤ upper with Σ w = Σ ŵ and
    Σ w x = Σ ŵ x for every covariate x, by linprog after Charnes–Cooper (z = w t, t = 1/Σ w): Σ z = 1,
    Σ z x = t Σ ŵ x / ... written as Σ z x − t·target_x = 0, and Σ z (1) − t·target_1 = 0 for the total."""
    n = len(y)
    a_ub = np.block([[np.eye(n), -upper[:, None]], [-np.eye(n), lower[:, None]]])
    a_eq = np.vstack([np.append(np.ones(n), 0.0),  # Σ z = 1
                      np.column_stack([phi.T, -target[:, None]])])  # Σ z φ_j = t Σ ŵ φ_j (intercept included)
    b_eq = np.concatenate([[1.0], np.zeros(len(target))])
    opts = dict(primal_feasibility_tolerance=1e-10, dual_feasibility_tolerance=1e-10)
    out = []
    for sign in (1.0, -1.0):
        res = linprog(sign * np.append(y, 0.0), A_ub=a_ub, b_ub=np.zeros(2 * n), A_eq=a_eq, b_eq=b_eq,
                      bounds=[(0, None)] * (n + 1), method="highs", options=opts)
        assert res.status == 0
        out.append(sign * res.fun)
    return tuple(out)


@pytest.mark.parametrize("estimand", ["ATE", "ATT", "ATC"])
def test_quantile_balancing_bounds_equal_linear_programme(estimand):
    rng = np.random.default_rng(11)
    n = 120
    x = np.column_stack([rng.normal(size=n), rng.binomial(1, 0.4, n)])
    ps = 1 / (1 + np.exp(-(0.6 * x[:, 0] - 0.5 * x[:, 1])))
    a = rng.binomial(1, ps)
    y = a + x[:, 0] + x[:, 0] ** 2 * 0.5 + rng.normal(size=n)
    w = {"ATE": np.where(a == 1, 1 / ps, 1 / (1 - ps)), "ATT": np.where(a == 1, 1.0, ps / (1 - ps)),
         "ATC": np.where(a == 1, (1 - ps) / ps, 1.0)}[estimand]
    lambdas = [1.0, 1.5, 3.0]
    table = msm_bounds(y, a, w, lambdas, estimand=estimand, ps=ps, covariates=x)
    plain = msm_bounds(y, a, w, lambdas, estimand=estimand, ps=ps)
    phi = np.column_stack([np.ones(n), x])
    for lam in lambdas:
        lo, hi = _boxes(ps, a, estimand, lam)
        arms = []
        for k in (1, 0):
            m = a == k
            if np.allclose(lo[m], hi[m]):  # an arm the estimand leaves alone: its weighted mean
                mean = np.average(y[m], weights=w[m])
                arms.append((mean, mean))
            else:
                arms.append(_lp_balanced_bounds(y[m], lo[m], hi[m], phi[m], phi[m].T @ w[m]))
        (mu1_lo, mu1_hi), (mu0_lo, mu0_hi) = arms
        # 1e-8: two HiGHS solutions of differently posed programmes (brute force at feasibility 1e-10; they agree
        # to about 1e-15 here)
        np.testing.assert_allclose(table.loc[lam].to_numpy(), [mu1_lo - mu0_hi, mu1_hi - mu0_lo], atol=1e-8)
    # sharper than the bounds without the balancing constraints, equal at Λ = 1
    assert np.all(table["bound_low"] >= plain["bound_low"] - 1e-9)
    assert np.all(table["bound_high"] <= plain["bound_high"] + 1e-9)
    assert table.loc[3.0, "bound_high"] - table.loc[3.0, "bound_low"] < plain.loc[3.0, "bound_high"] - plain.loc[
        3.0, "bound_low"]


def test_quantile_balancing_on_an_effect(lalonde):
    fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(lalonde.X, lalonde.treatment, lalonde.y)
    table = fit.sensitivity([1, 1.5], n_bootstrap=5, random_state=0, refit=False, method="quantile")
    plain = fit.sensitivity([1, 1.5], n_bootstrap=5, random_state=0, refit=False)
    np.testing.assert_allclose(table.loc[1.0, ["bound_low", "bound_high"]], fit.estimate_, rtol=1e-9)
    assert plain.loc[1.5, "bound_low"] < table.loc[1.5, "bound_low"] < table.loc[1.5, "bound_high"] < plain.loc[
        1.5, "bound_high"]
    with pytest.raises(ValueError, match="method="):
        fit.sensitivity(method="dg")


def test_msm_bounds_aggregated_duplicates_equal_expanded_rows():
    # the bootstrap enters a unit drawn k times once with its copies' weights summed: the same bounds
    rng = np.random.default_rng(7)
    n = 200
    ps = rng.uniform(0.2, 0.8, n)
    a = rng.binomial(1, ps)
    y = rng.normal(size=n)
    w = np.where(a == 1, 1 / ps, 1 / (1 - ps))
    c, v = w * np.where(a == 1, ps, 1 - ps), w * np.where(a == 1, 1 - ps, ps)
    draw = rng.integers(0, n, n)
    expanded = EffectBounds(y[draw], a[draw], c[draw], v[draw])([1.0, 1.7, 3.0])
    counts = np.bincount(draw, minlength=n)
    aggregated = EffectBounds(y, a, c * counts, v * counts)([1.0, 1.7, 3.0])
    np.testing.assert_allclose(aggregated, expanded, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("estimand", ["ATE", "ATT", "ATC"])
def test_sensitivity_at_lambda_one_is_the_estimate_and_bounds_nest(lalonde, estimand):
    fit = WeightedEffect(PropensityWeights(estimand=estimand)).fit(lalonde.X, lalonde.treatment, lalonde.y)
    table = fit.sensitivity([1, 1.2, 1.5, 2, 3], n_bootstrap=20, random_state=1, refit=False)
    assert list(table.columns) == ["bound_low", "bound_high", "ci_low", "ci_high"]
    # Λ = 1: both bounds are the Hájek estimate itself (to round-off of the cumulative sums)
    np.testing.assert_allclose(table.loc[1.0, ["bound_low", "bound_high"]], fit.estimate_, rtol=1e-10)
    assert np.all(np.diff(table["bound_low"]) < 0) and np.all(np.diff(table["bound_high"]) > 0)
    assert np.all(table["ci_low"] <= table["bound_low"]) and np.all(table["ci_high"] >= table["bound_high"])


def test_sensitivity_bootstrap_is_reproducible(lalonde):
    fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(lalonde.X, lalonde.treatment, lalonde.y)
    first = fit.sensitivity([1, 2], n_bootstrap=30, random_state=5)
    pd.testing.assert_frame_equal(first, fit.sensitivity([1, 2], n_bootstrap=30, random_state=5))
    assert not first.equals(fit.sensitivity([1, 2], n_bootstrap=30, random_state=6))


@pytest.mark.parametrize("refit", [False, True])
def test_breakdown_lambda_is_where_the_interval_first_contains_zero(lalonde, refit):
    # the reference is the sensitivity table itself, from the same replicates (same random_state)
    fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(lalonde.X, lalonde.treatment, lalonde.y)
    kwargs = dict(n_bootstrap=40, random_state=3, refit=refit, alpha=0.5)  # alpha 0.5: a breakdown above 1
    star = fit.breakdown_lambda(**kwargs)
    assert 1 < star < 2
    table = fit.sensitivity([star * (1 - 1e-7), star * (1 + 1e-7)], **kwargs)
    below, above = table.iloc[0], table.iloc[1]
    assert not below["ci_low"] <= 0 <= below["ci_high"]
    assert above["ci_low"] <= 0 <= above["ci_high"]


def test_breakdown_of_the_bounds(lalonde):
    fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(lalonde.X, lalonde.treatment, lalonde.y)
    star = fit.breakdown_lambda(ci=False)
    y, a = np.asarray(lalonde.y, float), np.asarray(lalonde.treatment)
    w = np.asarray(fit.weighter_.weights_)
    lows = msm_bounds(y, a, w, [star * (1 - 1e-9), star * (1 + 1e-9)], estimand="ATT")["bound_low"]
    assert lows.iloc[0] > 0 > lows.iloc[1]
    # an effect whose interval contains zero from the start breaks down at 1
    ate = WeightedEffect(PropensityWeights()).fit(lalonde.X, lalonde.treatment, lalonde.y)
    assert ate.breakdown_lambda(n_bootstrap=20, random_state=0, refit=False) == 1.0


def test_sensitivity_refusals(lalonde):
    X, t, y = lalonde.X, lalonde.treatment, lalonde.y
    with pytest.raises(ValueError, match="outcome_model='simple'"):
        WeightedEffect(PropensityWeights(), outcome_model="additive").fit(X, t, y).sensitivity()
    with pytest.raises(ValueError, match="propensity scores"):
        WeightedEffect(EntropyBalance(estimand="ATE"), vcov="HC0").fit(X, t, y).sensitivity(n_bootstrap=2)
    fit = WeightedEffect(PropensityWeights(estimand="ATO")).fit(X, t, y)
    with pytest.raises(ValueError, match="ATO"):
        fit.sensitivity()
    fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(X, t, y)
    for bad in ([0.5], [], [np.inf], "2"):
        with pytest.raises(ValueError, match="lambdas"):
            fit.sensitivity(bad)
    with pytest.raises(ValueError, match="multi-category|binary"):
        WeightedEffect(PropensityWeights()).fit(X.drop(columns="race"), X["race"], y).sensitivity()


@pytest.mark.parametrize("kwargs, match", [
    (dict(y=[1.0, np.nan, 2.0]), "y has missing"),
    (dict(a=[0, 2, 1]), "0/1 treatment"),
    (dict(a=[1, 1, 1]), "both groups"),
    (dict(weights=[1.0, -1.0, 1.0]), "non-negative"),
    (dict(ps=[0.5, 1.0, 0.5]), "strictly between"),
    (dict(y=[1.0, 2.0]), "one entry per unit"),
    (dict(scale="log"), "scale="),
    (dict(estimand="ATO"), "estimand="),
])
def test_msm_bounds_bad_inputs(kwargs, match):
    args = dict(y=[1.0, 2.0, 3.0], a=[0, 1, 1], weights=[1.0, 2.0, 2.0], lambdas=[1, 2], ps=[0.5, 0.5, 0.5])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        msm_bounds(**args)


def test_sensitivity_att_with_balancing_weights(lalonde):
    # ATT/ATC need no propensity scores: the controls' weights are the (scale-free) odds
    fit = WeightedEffect(EntropyBalance(estimand="ATT"), vcov="HC0").fit(lalonde.X, lalonde.treatment, lalonde.y)
    table = fit.sensitivity([1, 1.5], n_bootstrap=5, random_state=0, refit=False)
    assert table.loc[1.0, "bound_low"] == pytest.approx(fit.estimate_, rel=1e-10)


# -- omitted-variable bias ---------------------------------------------------------------------------------------
def test_ovb_formulas_reproduce_cinelli_hazlett_darfur():
    # Cinelli & Hazlett (2020), Darfur: t = 4.18445 on 783 dof; R²_{Y~D|X} = 2.19 %, RV = 13.9 %, RV_α = 7.6 %.
    # Female benchmark (their section 6): t = -9.789 in the outcome, -2.680 in the treatment regression; the
    # bounds 1x female: R²_{D~Z|X} = 0.9 %, R²_{Y~Z|D,X} = 12.5 % (sensemakr's printed 0.0092 and 0.1246)
    assert partial_r2(4.18445, 783) == pytest.approx(0.02187, abs=1e-5)
    assert robustness_value(4.18445, 783) == pytest.approx(0.1388, abs=1e-4)
    assert robustness_value(4.18445, 783, alpha=0.05) == pytest.approx(0.0763, abs=1e-4)
    r2dz, r2yz = benchmark_bounds(partial_r2(-2.680, 783), partial_r2(-9.789, 783), kd=[1, 2, 3])
    np.testing.assert_allclose(r2dz, [0.0092, 0.0183, 0.0275], atol=1e-4)
    np.testing.assert_allclose(r2yz, [0.1246, 0.2493, 0.3741], atol=1e-3)


def test_ovb_formulas_equal_pysensemakr():
    smkr = pytest.importorskip("sensemakr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t, dof in [(4.18445, 783), (2.1, 50), (-3.5, 300), (12.0, 100)]:  # 12/sqrt(100) > 1/f*: no-bind case
            for q, alpha in [(1, 0.05), (0.5, 0.1)]:
                ref = float(smkr.robustness_value(t_statistic=t, dof=dof, q=q, alpha=alpha).iloc[0])
                assert robustness_value(t, dof, q, alpha) == pytest.approx(ref, rel=1e-12)
        ref = smkr.ovb_partial_r2_bound(r2dxj_x=0.03, r2yxj_dx=0.1, kd=[1, 2, 3], ky=[1, 1.5, 4])
        ours = benchmark_bounds(0.03, 0.1, kd=[1, 2, 3], ky=[1, 1.5, 4])
        np.testing.assert_allclose(ours, [ref["r2dz_x"], ref["r2yz_dx"]], rtol=1e-12)
        est = smkr.adjusted_estimate(estimate=0.0973, se=0.0232, dof=783, r2dz_x=ref["r2dz_x"],
                                     r2yz_dx=ref["r2yz_dx"])
        se = smkr.adjusted_se(se=0.0232, dof=783, r2dz_x=ref["r2dz_x"], r2yz_dx=ref["r2yz_dx"])
    from balance.sensitivity import OmittedVariableBias
    res = OmittedVariableBias(0.0973, 0.0232, 783, 0.0973 / 0.0232, 0, 0, 0, 1, 0.05, pd.DataFrame())
    adj = res.adjusted(ref["r2dz_x"], ref["r2yz_dx"])
    np.testing.assert_allclose(adj["adjusted_estimate"], np.asarray(est), rtol=1e-12)
    np.testing.assert_allclose(adj["adjusted_se"], np.asarray(se), rtol=1e-12)


def test_ovb_weighted_regression_equals_statsmodels_and_the_effect(lalonde):
    sm = pytest.importorskip("statsmodels.api")
    fit = WeightedEffect(PropensityWeights(estimand="ATT"), outcome_model="additive").fit(
        lalonde.X, lalonde.treatment, lalonde.y)
    res = fit.ovb(["married", "age"], kd=[1, 2], benchmark_treatment="weighted")  # sensemakr's convention
    # the regression coefficient is the g-computation effect of the additive model (no interactions)
    assert res.estimate == pytest.approx(fit.estimate_, rel=1e-8)
    X = pd.get_dummies(lalonde.X, columns=["race"], drop_first=True, dtype=float)
    w = np.asarray(fit.weighter_.weights_)
    d = np.asarray(lalonde.treatment, float)
    outcome = sm.WLS(np.asarray(lalonde.y, float), sm.add_constant(np.column_stack([d, X])), weights=w).fit()
    assert res.std_err == pytest.approx(outcome.bse[1], rel=1e-9)
    assert res.t_statistic == pytest.approx(outcome.tvalues[1], rel=1e-9)
    assert res.dof == int(outcome.df_resid)
    treatment = sm.WLS(d, sm.add_constant(X.to_numpy()), weights=w).fit()
    j = list(X.columns).index("married")
    r2y = partial_r2(outcome.tvalues[2 + j], outcome.df_resid)
    r2d = partial_r2(treatment.tvalues[1 + j], treatment.df_resid)
    r2dz, r2yz = benchmark_bounds(r2d, r2y, kd=[1, 2])
    np.testing.assert_allclose(res.bounds.loc[["1x married", "2x married"], "r2dz_x"], r2dz, rtol=1e-8)
    np.testing.assert_allclose(res.bounds.loc[["1x married", "2x married"], "r2yz_dx"], r2yz, rtol=1e-8)
    # the default measures the benchmark's association with the treatment before weighting (unweighted OLS)
    default = fit.ovb("married", kd=[1, 2])
    unweighted = sm.OLS(d, sm.add_constant(X.to_numpy())).fit()
    r2d = partial_r2(unweighted.tvalues[1 + j], unweighted.df_resid)
    np.testing.assert_allclose(default.bounds[["r2dz_x", "r2yz_dx"]].to_numpy().T,
                               benchmark_bounds(r2d, r2y, kd=[1, 2]), rtol=1e-8)
    assert default.bounds["r2dz_x"].iloc[0] > 10 * res.bounds["r2dz_x"].iloc[0]  # the weights balanced married


def test_ovb_factor_benchmark_is_the_group_partial_r2():
    # a factor benchmarked as a whole: the group partial R² (RSS ratio) equals F·k / (F·k + dof) of the F test
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    n = 400
    g = rng.integers(0, 3, n)
    x = rng.normal(size=n)
    d = (0.5 * x + 0.4 * g + rng.normal(size=n) > 0.5).astype(float)
    y = d + x + 0.7 * g + rng.normal(size=n)
    dummies = np.column_stack([g == 1, g == 2]).astype(float)
    cov = np.column_stack([x, dummies])
    res = ovb_sensitivity(y, d, cov, ["x", "g_1", "g_2"], benchmark_covariates="g", groups={"g": [1, 2]})
    full = sm.OLS(y, sm.add_constant(np.column_stack([d, cov]))).fit()
    f = full.f_test(np.eye(5)[[3, 4]]).fvalue
    r2y = float(np.squeeze(f)) * 2 / (float(np.squeeze(f)) * 2 + full.df_resid)
    tfull = sm.OLS(d, sm.add_constant(cov)).fit()
    ft = float(np.squeeze(tfull.f_test(np.eye(4)[[2, 3]]).fvalue))
    r2d = ft * 2 / (ft * 2 + tfull.df_resid)
    np.testing.assert_allclose(res.bounds.iloc[0][["r2dz_x", "r2yz_dx"]], np.ravel(benchmark_bounds(r2d, r2y)),
                               rtol=1e-9)


def test_ovb_refusals(lalonde):
    X, t, y = lalonde.X, lalonde.treatment, lalonde.y
    with pytest.raises(ValueError, match="outcome_model='additive'"):
        WeightedEffect(PropensityWeights()).fit(X, t, y).ovb()
    fit = WeightedEffect(PropensityWeights(), outcome_model="additive").fit(X, t, y)
    with pytest.raises(ValueError, match="neither a covariate"):
        fit.ovb("income")
    with pytest.raises(ValueError, match="impossible"):
        benchmark_bounds(0.4, 0.1, kd=3)


# -- plots -----------------------------------------------------------------------------------------------------
def test_sensitivity_plots_draw(lalonde):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from balance.plot import ovb_contour_plot, sensitivity_plot

    fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(lalonde.X, lalonde.treatment, lalonde.y)
    table = fit.sensitivity([1, 1.5, 2], n_bootstrap=10, random_state=0, refit=False)
    ax = sensitivity_plot(table, breakdown=1.3)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), table["bound_low"])
    additive = WeightedEffect(PropensityWeights(estimand="ATT"), outcome_model="additive")
    res = additive.fit(lalonde.X, lalonde.treatment, lalonde.y).ovb("married", kd=[1, 2])
    ax = ovb_contour_plot(res)
    diamonds = [line for line in ax.lines if line.get_marker() == "D"]
    assert len(diamonds) == 2
    with pytest.raises(ValueError, match="bound_low"):
        sensitivity_plot(table.drop(columns="ci_low"))
    plt.close("all")


@pytest.mark.parametrize("name", ["sensitivity_plot", "ovb_contour_plot"])
def test_plot_docstring_parameters_match_signature(name):
    # the rule tests/test_plot.py applies to the other plots: every parameter documented, in order
    import inspect
    import re

    import balance.plot

    function = getattr(balance.plot, name)
    doc = function.__doc__.split("Parameters\n    ----------\n")[1].split("\n    Returns\n")[0]
    documented = [n for line in re.findall(r"^    (\w[\w, ]*) :", doc, flags=re.M) for n in line.split(", ")]
    assert documented == list(inspect.signature(function).parameters)


def test_effect_evalue_multi_category_one_row_per_contrast(lalonde):
    X, y = lalonde.X.drop(columns="race"), lalonde.y
    fit = WeightedEffect(PropensityWeights()).fit(X, lalonde.X["race"], y)
    table = fit.evalue()
    ci = fit.conf_int()
    sd = float(np.std(y, ddof=1))
    for label in fit.contrasts_.index:
        expected = evalue(fit.contrasts_.loc[label, "estimate"], ci.loc[label, "lower"], ci.loc[label, "upper"],
                          measure="MD", sd=sd)
        assert table.loc[label].tolist() == expected.tolist()


def test_msm_ratio_scale_combines_the_arms_extremes():
    # a risk ratio's bounds: the largest treated risk over the smallest control risk, and the reverse
    rng = np.random.default_rng(5)
    n = 300
    ps = rng.uniform(0.2, 0.8, n)
    a = rng.binomial(1, ps)
    y = rng.binomial(1, 0.3 + 0.2 * a).astype(float)
    w = np.where(a == 1, 1 / ps, 1 / (1 - ps))
    lam = 1.8
    lo, hi = _boxes(ps, a, "ATE", lam)
    mu1 = hajek_bounds(y[a == 1], lo[a == 1], hi[a == 1])
    mu0 = hajek_bounds(y[a == 0], lo[a == 0], hi[a == 0])
    rr = msm_bounds(y, a, w, [lam], ps=ps, scale="rr").iloc[0]
    np.testing.assert_allclose(rr.to_numpy(), [mu1[0] / mu0[1], mu1[1] / mu0[0]], rtol=1e-12)
    odds = msm_bounds(y, a, w, [lam], ps=ps, scale="or").iloc[0]

    def o(m):
        return m / (1 - m)

    np.testing.assert_allclose(odds.to_numpy(), [o(mu1[0]) / o(mu0[1]), o(mu1[1]) / o(mu0[0])], rtol=1e-12)
