"""StableWeights (optweight) against WeightIt 1.5.1, closed forms and the optimality conditions of the QP."""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

import balance.weights._qp as qp_module
import balance.weights._stable as stable_module
from balance import StableWeights, WeightedEffect, balance_table, smallest_feasible_tols

from .conftest import COVARIATES

pytest.importorskip("clarabel")
pytest.importorskip("osqp")

BALANCE_COLUMNS = ["smd_un", "vratio_un", "ks_un", "smd_adj", "vratio_adj", "ks_adj"]


@pytest.fixture(scope="module")
def lalonde_xt(lalonde):
    return lalonde[COVARIATES], lalonde["treat"]


@pytest.fixture(scope="module")
def overlap():
    """Good overlap: exact balance is reached with every weight positive (no floor binds)."""
    rng = np.random.default_rng(11)
    X = rng.uniform(-1, 1, size=(400, 3))  # bounded covariates and a weak selection: weights stay near 1
    a = rng.binomial(1, 1 / (1 + np.exp(0.3 - 0.3 * X[:, 0] + 0.2 * X[:, 1])))
    return pd.DataFrame(X, columns=["x0", "x1", "x2"]), pd.Series(a)


# ---------------------------------------------------------------------------------------------------------------
# against WeightIt 1.5.1 / optweight 1.0.0 / cobalt 4.6.1
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["clarabel", "osqp"])
def test_att_weights_match_weightit_optweight(lalonde_xt, oracle, solver):
    X, t = lalonde_xt
    expected = oracle("weights_ATT")["optweight"]
    sbw = StableWeights(estimand="ATT", min_weight=1e-8, solver=solver).fit(X, t)  # WeightIt's min.w = 1e-8
    assert sbw.converged_ and sbw.polished_ and sbw.n_clamped_ == 0
    # The optimum is unique (strictly convex) and both sides reach it exactly (osqp polished in R, our polish
    # here): observed agreement 4e-13 absolute; 1e-8 relative allows for the R run's printed-precision floor units.
    assert_allclose(sbw.weights_.loc[expected.index], expected, rtol=1e-8, atol=1e-10)


def test_default_floor_zero_differs_from_weightit_only_by_its_floor(lalonde_xt, oracle):
    X, t = lalonde_xt
    expected = oracle("weights_ATT")["optweight"]
    w = StableWeights().fit(X, t).weights_.loc[expected.index]
    # WeightIt's zeros are printed as 1e-8 (its floor): about 250 units sit there, and moving the floor from 1e-8
    # to 0 shifts the other control weights by at most ~250 * 1e-8 / 429 * O(1): observed 1.7e-7, bound 1e-6.
    assert_allclose(w, expected, rtol=0, atol=1e-6)
    assert np.all(w[expected <= 1e-8] == 0.0)


def test_balance_table_matches_cobalt_for_optweight(lalonde_xt, oracle):
    X, t = lalonde_xt
    ref = oracle("balance_binary_raw_ATT")
    ref = ref[ref["method"] == "optweight"].set_index("variable")
    table = balance_table(X, t, StableWeights(min_weight=1e-8).fit(X, t))
    assert list(table.index) == list(ref.index)
    # unadjusted columns: exact algebra (1e-10); adjusted SMDs are rounding noise of exact balance on both
    # sides (cobalt prints up to 1.3e-11): absolute 1e-9; adjusted variance ratio and KS follow the weights
    # (agreeing to 1e-11 relative): 1e-8 relative.
    assert_allclose(table[["smd_un", "vratio_un", "ks_un"]], ref[["smd_un", "vratio_un", "ks_un"]], rtol=1e-10)
    assert_allclose(table["smd_adj"], ref["smd_adj"], rtol=0, atol=1e-9)
    assert_allclose(table[["vratio_adj", "ks_adj"]], ref[["vratio_adj", "ks_adj"]], rtol=1e-8, atol=1e-12)


def test_weight_sums_follow_weightit_scale(lalonde_xt, oracle):
    X, t = lalonde_xt
    ref = oracle("weight_summary_ATT").set_index("method").loc["optweight"]
    w = StableWeights(min_weight=1e-8).fit(X, t).weights_
    # each group's weights sum to its size (WeightIt 1.5.1's rescaling); exact up to summation rounding
    assert_allclose([w[t == 1].sum(), w[t == 0].sum()], [ref["sum_w_treated"], ref["sum_w_control"]], rtol=1e-12)
    assert_allclose(w[t == 0].max(), ref["max_w_control"], rtol=1e-8)


@pytest.mark.parametrize("model, row", [("simple", "simple"), ("additive", "additive"), ("interact", "gcomp_interact")])
def test_effects_with_fixed_weights_match_weightit(lalonde, oracle, model, row):
    ref = oracle("effects_ATT").set_index(["method", "outcome_model"]).loc[("optweight", row)]
    kwargs = {"condition_on_covariates": True} if model == "interact" else {}  # WeightIt's g-computation
    fit = WeightedEffect(StableWeights(min_weight=1e-8), model, "HC0", **kwargs).fit(
        lalonde[COVARIATES], lalonde["treat"], lalonde["re78"])
    # weights agree to 4e-13 and the rest is exact algebra: 1e-8 relative (observed 1e-12)
    assert_allclose([fit.estimate_, fit.se_], [ref["estimate"], ref["se_hc0"]], rtol=1e-8)


def test_no_asymptotic_variance_points_to_the_bootstrap(lalonde):
    with pytest.raises(ValueError, match="no M-estimation form; use a bootstrap"):
        WeightedEffect(StableWeights(), "simple", "asympt").fit(lalonde[COVARIATES], lalonde["treat"], lalonde["re78"])


@pytest.mark.slow
def test_bootstrap_se_matches_weightit_within_monte_carlo_error(lalonde, oracle):
    ref = oracle("effects_ATT").set_index(["method", "outcome_model"]).loc[("optweight", "simple")]
    fit = WeightedEffect(StableWeights(), "simple", "bootstrap", n_bootstrap=999, random_state=5, n_jobs=2).fit(
        lalonde[COVARIATES], lalonde["treat"], lalonde["re78"])
    # WeightIt's SE used R = 200 (Monte Carlo SE ~5%), ours R = 999 (~2.2%): their difference has SE ~5.5%,
    # so 15% is a bound at about 2.7 SE
    assert_allclose(fit.se_, ref["se_bs"], rtol=0.15)


# ---------------------------------------------------------------------------------------------------------------
# the optimisation problem itself
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimand", ["ATT", "ATC", "ATE"])
def test_exact_balance_and_group_sums(lalonde_xt, estimand):
    X, t = lalonde_xt
    sbw = StableWeights(estimand=estimand).fit(X, t)
    table = balance_table(X, t, sbw)
    # exact balance: the polished KKT point satisfies the equality rows to rounding (observed 2e-15)
    assert table["smd_adj"].abs().max() < 1e-9
    assert_allclose(np.abs(sbw.smd_), 0, atol=1e-9)
    w = sbw.weights_
    assert_allclose([w[t == 1].sum(), w[t == 0].sum()], [(t == 1).sum(), (t == 0).sum()], rtol=1e-12)
    focal = {"ATT": 1, "ATC": 0}.get(estimand)
    if focal is not None:
        assert np.all(w[t == focal] == 1.0)


def test_closed_form_when_no_floor_binds(overlap):
    """min Σ(w−1)² s.t. Cw = b has w = 1 + C'(CC')⁻¹(b − C1) when every w stays positive."""
    X, t = overlap
    sbw = StableWeights(estimand="ATT").fit(X, t)
    Xc, Xt = X[t == 0].to_numpy(), X[t == 1].to_numpy()
    C = np.column_stack([np.ones(len(Xc)), Xc]).T
    b = np.concatenate([[len(Xc)], len(Xc) * Xt.mean(axis=0)])
    w = 1 + C.T @ np.linalg.solve(C @ C.T, b - C @ np.ones(len(Xc)))
    assert w.min() > 0  # the premise: the floor is slack
    # exact linear algebra on both sides: 1e-9 relative
    assert_allclose(sbw.weights_[t == 0], w, rtol=1e-9)


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_l2_solution_satisfies_kkt_with_floor(lalonde_xt, estimand):
    """Optimality with active floors: w_i = max(0, 1 + z_i'λ) for one multiplier vector λ per group."""
    X, t = lalonde_xt
    sbw = StableWeights(estimand=estimand).fit(X, t)
    Z = np.column_stack([np.ones(len(X)), pd.get_dummies(X, drop_first=True, dtype=float).to_numpy()])
    assert np.sum(sbw.weights_ == 0) > 10  # floors do bind here
    for g in ([0] if estimand == "ATT" else [0, 1]):
        w = sbw.weights_[t == g].to_numpy()
        Zg = Z[t.to_numpy() == g]
        pos = w > 0
        lam = np.linalg.lstsq(Zg[pos], w[pos] - 1, rcond=None)[0]
        # stationarity on the positive weights, and a non-negative floor multiplier on the zero ones
        assert_allclose(w[pos], 1 + Zg[pos] @ lam, rtol=1e-8)
        assert np.all(1 + Zg[~pos] @ lam <= 1e-8)


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_tolerances_bound_every_smd(lalonde_xt, estimand):
    X, t = lalonde_xt
    for tols in (0.1, {"re74": 0.2, "race": 0.05, "age": 0.0}):
        sbw = StableWeights(estimand=estimand, tols=tols).fit(X, t)
        smd = balance_table(X, t, sbw)["smd_adj"].abs()
        limit = pd.Series(sbw.tols_, index=sbw.terms_)
        assert np.all(smd <= limit + 1e-9)  # the polished point meets its bounds to 1e-9
        assert np.isclose(smd - limit, 0, atol=1e-9).any()  # and some bound binds: the test is not vacuous
    assert limit["race_black"] == limit["race_white"] == 0.05 and limit["educ"] == 0.0


def test_looser_tolerance_gives_less_dispersed_weights(lalonde_xt):
    X, t = lalonde_xt
    variances = [StableWeights(tols=tol).fit(X, t).weights_[t == 0].var() for tol in (0.0, 0.05, 0.2)]
    assert variances[0] > variances[1] > variances[2]


def test_solvers_agree(lalonde_xt):
    X, t = lalonde_xt
    a = StableWeights(estimand="ATE", tols=0.05, solver="clarabel").fit(X, t)
    b = StableWeights(estimand="ATE", tols=0.05, solver="osqp").fit(X, t)
    # both are polished to the same unique KKT point: 1e-8 relative
    assert_allclose(a.weights_, b.weights_, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_other_norms_balance_and_are_optimal_for_their_norm(lalonde_xt, norm):
    X, t = lalonde_xt
    sbw = StableWeights(norm=norm, tols=0.05).fit(X, t)
    l2 = StableWeights(norm="l2", tols=0.05).fit(X, t)
    assert sbw.converged_ and not sbw.polished_
    assert balance_table(X, t, sbw)["smd_adj"].abs().max() <= 0.05 + 1e-7  # interior point to its tolerance
    dev = {name: (est.weights_[t == 0] - 1).abs() for name, est in (("own", sbw), ("l2", l2))}
    measure = (lambda d: d.sum()) if norm == "l1" else (lambda d: d.max())
    # each solution minimises its own norm over the same feasible set, to solver tolerance
    assert measure(dev["own"]) <= measure(dev["l2"]) * (1 + 1e-6)
    if norm == "linf":
        assert measure(dev["own"]) < measure(dev["l2"]) * 0.9  # and clearly beats the L2 solution here


def test_min_weight_floor(lalonde_xt):
    X, t = lalonde_xt
    w = StableWeights(min_weight=0.1, tols=0.1).fit(X, t).weights_[t == 0]
    assert w.min() == pytest.approx(0.1, rel=1e-12) and (w == w.min()).sum() > 10


def test_moments_and_interactions_balance_the_expanded_terms(overlap):
    X, t = overlap
    sbw = StableWeights(estimand="ATE", moments=2, interactions=True).fit(X, t)
    assert sbw.terms_ == ["x0", "x1", "x2", "x0^2", "x1^2", "x2^2", "x0:x1", "x0:x2", "x1:x2"]
    expanded = X.assign(**{"x0^2": X.x0 ** 2, "x1^2": X.x1 ** 2, "x2^2": X.x2 ** 2,
                           "x0:x1": X.x0 * X.x1, "x0:x2": X.x0 * X.x2, "x1:x2": X.x1 * X.x2})
    # the terms built by hand are balanced exactly (to the polish's 1e-9)
    assert balance_table(expanded, t, sbw)["smd_adj"].abs().max() < 1e-9


# ---------------------------------------------------------------------------------------------------------------
# sampling weights
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_integer_sample_weights_equal_row_repetition(lalonde_xt, estimand):
    X, t = lalonde_xt
    k = np.random.default_rng(5).integers(1, 4, size=len(X))
    weighted = StableWeights(estimand=estimand).fit(X, t, sample_weight=k).weights_
    rep = np.repeat(np.arange(len(X)), k)
    Xr, tr = X.iloc[rep].reset_index(drop=True), t.iloc[rep].reset_index(drop=True)
    repeated = StableWeights(estimand=estimand).fit(Xr, tr).weights_
    summed = repeated.groupby(rep).sum().to_numpy()
    # Σ s(w − 1)² with s = k is the repeated problem; its unique optimum gives the copies equal weights
    assert_allclose(weighted.to_numpy(), summed, rtol=1e-7, atol=1e-10)


def test_zero_sample_weight_units_drop_out(lalonde_xt):
    X, t = lalonde_xt
    sw = np.ones(len(X))
    sw[::7] = 0.0
    with_zeros = StableWeights(tols=0.02).fit(X, t, sample_weight=sw).weights_
    without = StableWeights(tols=0.02).fit(X[sw > 0], t[sw > 0]).weights_
    assert np.all(with_zeros[sw == 0] == 0)
    assert_allclose(with_zeros[sw > 0], without, rtol=1e-8, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# infeasibility, convergence and clamping are reported
# ---------------------------------------------------------------------------------------------------------------
def test_infeasible_exact_balance_names_the_smallest_tolerance():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(2.0, 1.0, 40), rng.uniform(-1.0, 1.0, 60)])  # treated mean beyond controls' max
    t = np.r_[np.ones(40), np.zeros(60)].astype(int)
    X = x[:, None]
    # closed form: control means cover [min, max] of x_C, so the gap to the treated mean is the least imbalance
    expected = (x[:40].mean() - x[40:].max()) / x[:40].std(ddof=1)
    assert expected > 0
    with pytest.raises(ValueError, match=r"exact balance is infeasible.*smallest feasible common tolerance is"):
        StableWeights().fit(X, t)
    found = smallest_feasible_tols(X, t)
    assert found == pytest.approx(expected, rel=1e-7)  # an interior-point LP to its 1e-10 tolerance
    sbw = StableWeights(tols=1.001 * found).fit(X, t)
    assert abs(sbw.smd_[0]) <= 1.001 * found + 1e-9
    with pytest.raises(ValueError, match="is infeasible"):
        StableWeights(tols=0.99 * found).fit(X, t)


def test_non_convergence_warns_with_the_remaining_imbalance(lalonde_xt):
    X, t = lalonde_xt
    with pytest.warns(ConvergenceWarning, match=r"stopped with status .* largest imbalance beyond tols is"), \
            pytest.warns(ConvergenceWarning, match="below min_weight"):  # an early iterate also dips below 0
        sbw = StableWeights(norm="l1", max_iter=2).fit(X, t)  # no polish for the L1 norm
    assert not sbw.converged_ and sbw.n_iter_ == 2
    assert np.all(np.isfinite(sbw.weights_)) and np.all(sbw.weights_ >= 0)


def test_negative_solver_output_is_clamped_and_reported(lalonde_xt, monkeypatch):
    X, t = lalonde_xt
    real = stable_module.solve_qp

    def noisy(*args, **kwargs):
        result = real(*args, **kwargs)
        x = result.x.copy()
        x[:3] = [-1e-12, -1e-12, -1e-3]  # two round-off negatives and one material one
        return dataclasses.replace(result, x=x)

    monkeypatch.setattr(stable_module, "solve_qp", noisy)
    with pytest.warns(ConvergenceWarning, match="3 weights below min_weight"):
        sbw = StableWeights().fit(X, t)
    assert sbw.n_clamped_ == 3 and np.all(sbw.weights_ >= 0)

    def round_off(*args, **kwargs):
        result = real(*args, **kwargs)
        return dataclasses.replace(result, x=np.where(result.x == 0, -1e-13, result.x))

    monkeypatch.setattr(stable_module, "solve_qp", round_off)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # round-off below the floor is clamped without a warning
        sbw = StableWeights().fit(X, t)
    assert sbw.n_clamped_ > 100 and np.all(sbw.weights_ >= 0)


def test_deterministic_and_no_m_estimation_form(lalonde_xt):
    X, t = lalonde_xt
    a, b = StableWeights(tols=0.03).fit(X, t), StableWeights(tols=0.03).fit(X, t)
    assert_allclose(a.weights_, b.weights_, rtol=0, atol=0)
    with pytest.raises(NotImplementedError, match="bootstrap"):
        a._m_parts(X, t)


@pytest.mark.parametrize("params, exc, match", [
    ({"norm": "l3"}, ValueError, "norm='l3'"),
    ({"solver": "cvxpy"}, ValueError, "solver='cvxpy'"),
    ({"min_weight": 1.0}, ValueError, "min_weight=1.0"),
    ({"moments": 0}, ValueError, "moments=0"),
    ({"interactions": "yes"}, ValueError, "interactions='yes'"),
    ({"tols": -0.1}, ValueError, "tols=-0.1"),
    ({"tols": [0.1, 0.2]}, TypeError, "tols must be"),
    ({"tols": {"income": 0.1}}, ValueError, "'income', which is not a balanced term"),
    ({"tols": {"age": -1}}, ValueError, r"tols\['age'\]"),
    ({"solver_tol": 0}, ValueError, "solver_tol=0"),
    ({"max_iter": 0}, ValueError, "max_iter=0"),
    ({"estimand": "ATO"}, ValueError, r"estimand='ATO' is not supported here; choose one of \['ATE', 'ATT', 'ATC'\]"),
])
def test_bad_parameters_are_named(lalonde_xt, params, exc, match):
    X, t = lalonde_xt
    with pytest.raises(exc, match=match):
        StableWeights(**params).fit(X, t)


# ---------------------------------------------------------------------------------------------------------------
# the QP layer: polish and missing solvers
# ---------------------------------------------------------------------------------------------------------------
def _random_qp(seed, m=40, k=4):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.5, 2.0, m)
    q = rng.normal(size=m)
    G = rng.normal(size=(k, m))
    x_feasible = rng.uniform(0.0, 1.0, m)  # a point inside the bounds makes the problem feasible
    gx = G @ x_feasible
    l = np.r_[gx[0], gx[1:] - rng.uniform(0, 0.5, k - 1)]  # row 0 an equality, the others two-sided
    u = np.r_[gx[0], gx[1:] + rng.uniform(0, 0.5, k - 1)]
    return p, q, G, l, u, np.zeros(m)


@pytest.mark.parametrize("seed", range(5))
def test_polish_from_a_cold_start_reaches_the_qp_optimum(seed):
    p, q, G, l, u, lb = _random_qp(seed)
    side = np.where(l == u, 2, 0).astype(np.int8)
    x = qp_module.polish_diagonal_qp(p, q, G, l, u, lb, side, np.zeros(len(p), dtype=bool))
    ref = qp_module.solve_qp(sp.diags(p), q, G, l, u, lb, tol=1e-12)  # Clarabel alone, no polish
    assert x is not None and ref.converged
    # the interior point's answer to 1e-12 gap is within ~1e-6 of the vertex the polish returns exactly
    assert_allclose(x, ref.x, rtol=0, atol=1e-5)
    assert np.all(x >= lb) and np.all(G @ x >= l - 1e-9) and np.all(G @ x <= u + 1e-9)
    assert (x == 0).any()  # some bounds bind, so the active-set search was exercised


def test_missing_solver_says_how_to_install(lalonde_xt, monkeypatch):
    import sys

    X, t = lalonde_xt
    monkeypatch.setitem(sys.modules, "osqp", None)  # makes "import osqp" raise ImportError
    with pytest.raises(ImportError, match=r"a dependency of causal-balance: pip install"):
        StableWeights(solver="osqp").fit(X, t)


def test_a_term_constant_in_the_focal_group_is_balanced_exactly():
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"x": rng.normal(size=200), "dose": rng.uniform(0, 10, 200)})
    t = pd.Series((np.arange(200) < 60).astype(int))
    X.loc[t == 1, "dose"] = 5.0  # every treated unit has the same dose: its treated SD is 0
    sbw = StableWeights(tols=0.3).fit(X, t)
    limit = pd.Series(sbw.tols_, index=sbw.terms_)
    assert limit["dose"] == 0.0 and limit["x"] == 0.3
    control_dose = np.average(X.loc[t == 0, "dose"], weights=sbw.weights_[t == 0])
    assert control_dose == pytest.approx(5.0, rel=1e-9)  # an infinite SMD is avoided only by exact balance
