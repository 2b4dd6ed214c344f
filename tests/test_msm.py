"""Treatments over time (balance.msm) against R WeightIt 1.5.1 / cobalt 4.6.1 (``weightitMSM`` on ``msmdata``,
../shared/oracle/weightit-msm/), defining identities and simulations with a known effect of the treatment history.

Tolerances: weights, propensities and balance statistics 1e-8 (relative for weights, absolute for statistics of
order 1): R's glm stops its IRLS at a relative deviance change of 1e-8, which moves the fitted scores by ~1e-9;
outcome-model coefficients, SEs and risks 1e-6 as the issue asks (observed agreement ~1e-8).
"""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from balance import CBPS, EntropyBalance, InverseProbabilityTilting, PropensityWeights
from balance.diagnostics import balance_table
from balance.effects._sandwich import numerical_jacobian
from balance.msm import CensoringWeights, MSMEffect, MSMWeights, balance_table_msm, simulate_msm, to_wide

from .conftest import SHARED, _shared_file

MSM = SHARED / "oracle" / "weightit-msm"
CASES = {"glm_unstab": False, "glm_stab": True}
FORMULAS = {"saturated": "Y_B ~ A_1 * A_2 * A_3", "additive": "Y_B ~ A_1 + A_2 + A_3"}


@pytest.fixture(scope="module")
def msmdata():
    d = pd.read_csv(_shared_file(MSM / "msmdata.csv"))
    X_list = [d[["X1_0", "X2_0"]], d[["X1_1", "X2_1", "A_1", "X1_0", "X2_0"]],
              d[["X1_2", "X2_2", "A_2", "X1_1", "X2_1", "A_1", "X1_0", "X2_0"]]]
    return X_list, d[["A_1", "A_2", "A_3"]], d["Y_B"]


@pytest.fixture(scope="module")
def fitted(msmdata):
    X_list, A, _ = msmdata
    return {case: MSMWeights(stabilize=stab).fit(X_list, A) for case, stab in CASES.items()}


def _read(name):
    return pd.read_csv(MSM / name)


# ---------------------------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_weights_match_weightit(fitted, case):
    msm, ref = fitted[case], _read(f"weights/{case}.csv")
    assert_allclose(msm.weights_, ref["weight"], rtol=1e-8)
    for t in range(3):
        assert_allclose(msm.time_weights_.iloc[:, t], ref[f"w_time{t + 1}"], rtol=1e-8)
        assert_allclose(msm.propensities_.iloc[:, t], ref[f"ps_time{t + 1}"], rtol=1e-8)
        if CASES[case]:
            assert_allclose(msm.numerators_.iloc[:, t], ref[f"num_time{t + 1}"], rtol=1e-8)


def test_treatment_models_match_weightit(fitted, msmdata):
    """WeightIt 1.5.1 reports each time point's logit with its non-binary covariates centred and scaled (SD, n − 1)
    and binary ones as they are: our coefficients mapped to that scale must agree."""
    X_list = msmdata[0]
    ref = _read("treatment_model_coefficients.csv")
    ref = ref[(ref.case == "glm_unstab") & ref.model.str.startswith("denominator")]
    for t, est in enumerate(fitted["glm_unstab"].estimators_):
        rows = ref[ref.time == t + 1].set_index("term")
        X = X_list[t][est.terms_]
        scaled = X.nunique() > 2
        coef = pd.Series(est.coef_, index=est.terms_)
        mine = coef.where(~scaled, coef * X.std())
        intercept = est.intercept_ + float((coef * X.mean())[scaled].sum())
        assert_allclose(pd.concat([pd.Series({"(Intercept)": intercept}), mine]).loc[rows.index], rows.estimate,
                        rtol=1e-7, atol=1e-9)


def test_ess_by_time_matches_cobalt(fitted, msmdata):
    X_list, A, _ = msmdata
    ref = _read("balance_observations.csv")
    for case, msm in fitted.items():
        bal = balance_table_msm(X_list, A, msm)
        for row, key in (("Unadjusted", "un"), ("Adjusted", "adj")):
            r = ref[(ref.case == case) & (ref.row == row)]
            assert_allclose(bal.ess[(key, "control")], r.Control, rtol=1e-8)
            assert_allclose(bal.ess[(key, "treated")], r.Treated, rtol=1e-8)
        assert_allclose(msm.ess_.to_numpy(), bal.ess["adj"].to_numpy())


@pytest.mark.parametrize("case", CASES)
def test_m_parts_are_consistent(fitted, msmdata, case):
    """The stacked equations solve to zero at the estimates, reproduce the weights, and their analytic derivatives
    agree with central differences (to 1e-5 relative: the step error of the differences)."""
    X_list, A, _ = msmdata
    msm = fitted[case]
    parts = msm._m_parts(X_list, A)
    theta = parts.params
    assert np.abs(parts.psi(theta).sum(axis=0)).max() < 1e-7
    assert_allclose(parts.weights(theta), msm.weights_, rtol=1e-12)
    jac = parts.psi_jacobian(theta)
    assert_allclose(jac, numerical_jacobian(lambda t: parts.psi(t).sum(axis=0), theta), rtol=1e-5,
                    atol=1e-5 * np.abs(jac).max())
    dw = parts.weights_jacobian(theta)
    assert_allclose(dw, numerical_jacobian(parts.weights, theta), rtol=1e-5, atol=1e-5 * np.abs(dw).max())


# ---------------------------------------------------------------------------------------------------------------
# balance
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_balance_by_time_matches_cobalt(fitted, msmdata, case):
    X_list, A, _ = msmdata
    bal = balance_table_msm(X_list, A, fitted[case])
    ref = _read("balance_by_time.csv")
    ref = ref[ref.case == case]
    assert list(bal.by_time.index) == list(zip(ref.treat, ref.variable))
    assert list(bal.by_time["type"]) == list(ref.Type)
    for theirs, ours in {"Diff": "smd", "V.Ratio": "vratio", "KS": "ks"}.items():
        for suffix in ("un", "adj"):
            assert_allclose(bal.by_time[f"{ours}_{suffix}"], ref[f"{theirs}.{suffix.capitalize()}"], atol=1e-8)
    across = _read("balance_across_times.csv")
    across = across[across.case == case].set_index("variable")
    mine = bal.across_times.loc[across.index]
    for theirs, ours in {"Diff": "smd", "V.Ratio": "vratio", "KS": "ks"}.items():
        for suffix in ("un", "adj"):
            assert_allclose(mine[f"{ours}_{suffix}"], across[f"Max.{theirs}.{suffix.capitalize()}"], atol=1e-8)
    assert [", ".join(t[2:] for t in times) for times in mine["times"]] == list(across.Times.astype(str))
    # balance_table given a list of per-time covariates dispatches here
    via_public = balance_table(X_list, A, fitted[case])
    pd.testing.assert_frame_equal(via_public.by_time, bal.by_time)


# ---------------------------------------------------------------------------------------------------------------
# outcome models
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("model", FORMULAS)
@pytest.mark.parametrize("vcov", ["asympt", "HC0"])
def test_outcome_model_matches_weightit(msmdata, case, model, vcov):
    X_list, A, y = msmdata
    fit = MSMEffect(MSMWeights(stabilize=CASES[case]), model, vcov=vcov).fit(X_list, A, y)
    coef = _read("coefficients.csv")
    coef = coef[(coef.case == case) & (coef.model == FORMULAS[model]) & (coef.vcov == vcov)].set_index("term")
    assert list(fit.coef_.index) == list(coef.index)
    assert_allclose(fit.coef_, coef.estimate, rtol=1e-6, atol=1e-6)
    assert_allclose(np.sqrt(np.diag(fit.coef_cov_)), coef.se, rtol=1e-6)
    vc = _read("vcov.csv")
    vc = vc[(vc.case == case) & (vc.model == FORMULAS[model]) & (vc.vcov == vcov)]
    ref_cov = vc.pivot(index="row", columns="col", values="value").loc[coef.index, coef.index]
    assert_allclose(fit.coef_cov_, ref_cov, rtol=1e-6, atol=1e-9)
    risks = _read("risks.csv")
    risks = risks[(risks.case == case) & (risks.model == model) & (risks.vcov == vcov)]
    names = ["risk(" + ",".join(map(str, h)) + ")" for h in itertools.product([0, 1], repeat=3)]
    r = risks.set_index("quantity").loc[names]
    assert_allclose(fit.potential_outcomes_["estimate"], r.estimate, rtol=1e-6)
    assert_allclose(fit.potential_outcomes_["std_err"], r.se, rtol=1e-6)
    rd = risks.set_index("quantity").loc["RD (1,1,1) - (0,0,0)"]
    c = fit.contrast((1, 1, 1), "(0, 0, 0)")
    assert_allclose([c.estimate, c.std_err], [rd.estimate, rd.se], rtol=1e-6)
    assert_allclose(fit.contrast("always", "never"), c)


def test_saturated_risks_are_weighted_means(msmdata, fitted):
    """With no covariates in the outcome model the saturated model's risks are the weighted outcome means of each
    history (the identity the oracle README states)."""
    X_list, A, y = msmdata
    fit = MSMEffect(MSMWeights(), "saturated", vcov="HC0").fit(X_list, A, y)
    w = fitted["glm_unstab"].weights_.to_numpy()
    label = A.astype(str).agg(", ".join, axis=1).map(lambda s: f"({s})")
    means = (y * w).groupby(label).sum() / pd.Series(w, index=y.index).groupby(label).sum()
    assert_allclose(fit.potential_outcomes_["estimate"], means.loc[fit.potential_outcomes_.index], rtol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# other weighters: defining identities
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("weighter", [EntropyBalance(estimand="ATE"), InverseProbabilityTilting(estimand="ATE")],
                         ids=["entropy", "ipt"])
def test_per_time_balancing_weights_balance_each_time_point_exactly(msmdata, weighter):
    """Entropy balancing and IPT fitted per time point (WeightIt's MSM entropy balancing and IPT): each time
    point's factor balances that time's covariates exactly (means of both groups equal, to solver tolerance)."""
    X_list, A, _ = msmdata
    msm = MSMWeights(weighter).fit(X_list, A)
    for t, name in enumerate(A.columns):
        table = balance_table(X_list[t], A[name], msm.time_weights_[name], stats="smd", continuous="raw")
        assert np.abs(table["smd_adj"]).max() < 1e-8
    assert_allclose(msm.weights_, msm.time_weights_.prod(axis=1), rtol=1e-12)


def test_joint_cbps_balances_every_time_point_with_the_product_weight(msmdata):
    """MSMWeights(CBPS()) solves Σ W (2A_t − 1)(1, X_t) = 0 at every t with W the final (product) weight: equal
    weighted group totals and means at every time point (the defining conditions, WeightIt's weightitMSM cbps),
    which per-time CBPS weights do not satisfy."""
    X_list, A, _ = msmdata
    msm = MSMWeights(CBPS()).fit(X_list, A)
    assert msm.converged_ and msm.joint_
    w = msm.weights_
    for t, name in enumerate(A.columns):
        table = balance_table(X_list[t], A[name], w, stats="smd", continuous="raw")
        assert np.abs(table["smd_adj"]).max() < 1e-8
        assert abs(w[A[name] == 1].sum() / w[A[name] == 0].sum() - 1) < 1e-10
    per_time = MSMWeights(PropensityWeights()).fit(X_list, A)
    table = balance_table(X_list[2], A["A_3"], per_time.weights_, stats="smd", continuous="raw")
    assert np.abs(table["smd_adj"]).max() > 1e-3
    parts = msm._m_parts(X_list, A)
    theta = parts.params
    assert_allclose(parts.weights(theta), w, rtol=1e-12)
    jac = parts.psi_jacobian(theta)
    assert_allclose(jac, numerical_jacobian(lambda t: parts.psi(t).sum(axis=0), theta), rtol=1e-5,
                    atol=1e-5 * np.abs(jac).max())
    dw = parts.weights_jacobian(theta)
    assert_allclose(dw, numerical_jacobian(parts.weights, theta), rtol=1e-5, atol=1e-5 * np.abs(dw).max())


def test_stabilisation_does_not_change_the_saturated_model(msmdata):
    """The numerator depends on the history only, which the saturated model absorbs: coefficients and asympt SEs
    are those of the unstabilised weights (as in the oracle, where both agree to 1e-13), here for joint CBPS."""
    X_list, A, y = msmdata
    fits = [MSMEffect(MSMWeights(CBPS(), stabilize=s), "saturated").fit(X_list, A, y) for s in (False, True)]
    assert_allclose(fits[0].coef_, fits[1].coef_, rtol=1e-9)
    assert_allclose(fits[0].coef_cov_, fits[1].coef_cov_, rtol=1e-7)


# ---------------------------------------------------------------------------------------------------------------
# simulations with a known effect of the treatment history
# ---------------------------------------------------------------------------------------------------------------
def test_simulation_recovers_the_effect_where_naive_regression_is_biased():
    """simulate_msm: time-varying confounding affected by past treatment (truth 3.784 exactly). Over 8 samples of
    n = 3000 the mean IPW estimate is within 3 Monte Carlo SEs of the truth, while regressing y on the treatments
    and covariates is off by more than 0.25 (it blocks the effect through L); the asympt SE is within 35% of the
    SD across samples (loose: 8 samples; benchmarks/msm_coverage.py has 200)."""
    estimates, ses, naive = [], [], []
    for seed in range(8):
        data = simulate_msm(3000, 3, random_state=seed)
        truth = data.truth["(1, 1, 1)"] - data.truth["(0, 0, 0)"]
        c = MSMEffect(MSMWeights(stabilize=True), "additive").fit(data.X_list, data.treatments, data.y)
        c = c.contrast("always", "never")
        estimates.append(c.estimate)
        ses.append(c.std_err)
        design = np.column_stack([np.ones(3000), data.treatments, data.X_list[-1][["L_0", "L_1", "L_2"]]])
        naive.append(np.linalg.lstsq(design, data.y, rcond=None)[0][1:4].sum())
    assert truth == pytest.approx(3.784)
    sd = np.std(estimates, ddof=1)
    assert abs(np.mean(estimates) - truth) < 3 * sd / np.sqrt(8)
    assert abs(np.mean(naive) - truth) > 0.25
    assert 0.65 < np.mean(ses) / sd < 1.35


def test_censoring_weights_remove_dropout_bias():
    """Dropout depends on the time-varying covariate (which raises the outcome): the complete-case estimate of the
    never-treated mean E[y(0,0,0)] = 1 is biased down; with censoring weights the bias is within 3 Monte Carlo
    SEs of 0 (10 samples of n = 4000)."""
    weighted, complete = [], []
    for seed in range(10):
        data = simulate_msm(4000, 3, dropout=True, random_state=100 + seed)
        fit = MSMEffect(MSMWeights(censoring=CensoringWeights()), "saturated").fit(
            data.X_list, data.treatments, data.y, uncensored=data.uncensored)
        weighted.append(fit.potential_outcomes_["estimate"].to_numpy())
        keep = data.uncensored.iloc[:, -1].to_numpy() == 1
        cc = MSMEffect(MSMWeights(), "saturated").fit([X[keep] for X in data.X_list], data.treatments[keep],
                                                      data.y[keep])
        complete.append(cc.potential_outcomes_["estimate"].to_numpy())
    truth = data.truth.to_numpy()
    weighted, complete = np.array(weighted), np.array(complete)
    mc_se = weighted.std(axis=0, ddof=1) / np.sqrt(len(weighted))
    assert np.all(np.abs(weighted.mean(axis=0) - truth) < 3 * mc_se + 0.02)
    assert np.abs(complete.mean(axis=0) - truth).max() > 0.15


def test_censoring_weights_parts_and_zero_weights():
    data = simulate_msm(1500, 3, dropout=True, random_state=5)
    msm = MSMWeights(censoring=CensoringWeights()).fit(data.X_list, data.treatments, uncensored=data.uncensored)
    dropped = data.uncensored.iloc[:, -1].to_numpy() == 0
    assert dropped.any() and np.all(msm.weights_[dropped] == 0) and np.all(msm.weights_[~dropped] > 0)
    parts = msm._m_parts(data.X_list, data.treatments)
    theta = parts.params
    assert np.abs(parts.psi(theta).sum(axis=0)).max() < 1e-6
    assert_allclose(parts.weights(theta), msm.weights_, rtol=1e-12)
    dw = parts.weights_jacobian(theta)
    assert_allclose(dw, numerical_jacobian(parts.weights, theta), rtol=1e-5, atol=1e-5 * np.abs(dw).max())


# ---------------------------------------------------------------------------------------------------------------
# long format, bootstraps, inputs
# ---------------------------------------------------------------------------------------------------------------
def test_to_wide_rebuilds_the_histories():
    data = simulate_msm(300, 3, random_state=2)
    X_list, A = to_wide(data.long, id="id", time="time", treatment="A", covariates=["L"])
    assert list(A.columns) == ["A_1", "A_2", "A_3"]
    assert list(X_list[2].columns) == ["L_1", "A_1", "L_2", "A_2", "L_3"]
    assert_allclose(A.to_numpy(), data.treatments.to_numpy())
    assert_allclose(X_list[2][["L_1", "L_2", "L_3"]].to_numpy(), data.X_list[2][["L_0", "L_1", "L_2"]].to_numpy())
    with pytest.raises(ValueError, match="repeat a"):
        to_wide(pd.concat([data.long, data.long.iloc[:1]]), id="id", time="time", treatment="A", covariates=["L"])
    with pytest.raises(ValueError, match="balanced panel"):
        to_wide(data.long.iloc[1:], id="id", time="time", treatment="A", covariates=["L"])


@pytest.mark.parametrize("vcov", ["bootstrap", "fwb"])
def test_bootstraps_agree_with_asympt(vcov):
    """The bootstraps re-estimate every time point's model; their SE of always − never agrees with the stacked
    sandwich to 25% (200 replicates: the SE of an SE estimate is about 5%, plus the two methods' differences)."""
    data = simulate_msm(1500, 2, random_state=4)
    asympt = MSMEffect(MSMWeights(), "saturated").fit(data.X_list, data.treatments, data.y)
    boot = MSMEffect(MSMWeights(), "saturated", vcov=vcov, n_bootstrap=200, random_state=0).fit(
        data.X_list, data.treatments, data.y)
    a, b = asympt.contrast("always", "never"), boot.contrast("always", "never")
    assert a.estimate == b.estimate
    assert abs(b.std_err / a.std_err - 1) < 0.25
    assert boot.draws_.shape == (200, 4)


def test_bad_inputs_are_named(msmdata):
    X_list, A, y = msmdata
    with pytest.raises(ValueError, match="X_list has 2 covariate tables but treatments has 3"):
        MSMWeights().fit(X_list[:2], A)
    with pytest.raises(TypeError, match="X_list must be a list"):
        MSMWeights().fit(X_list[0], A)
    with pytest.raises(ValueError, match="estimand='ATE'"):
        MSMWeights(PropensityWeights(estimand="ATT")).fit(X_list, A)
    with pytest.raises(ValueError, match="X_list\\[1\\] has 10 rows"):
        MSMWeights().fit([X_list[0], X_list[1].iloc[:10], X_list[2]], A)
    with pytest.raises(ValueError, match="uncensored"):
        MSMWeights().fit(X_list, A, uncensored=np.ones(A.shape))
    with pytest.raises(ValueError, match="returns|back to 1"):
        MSMWeights(censoring=CensoringWeights()).fit(X_list, A, uncensored=np.tile([0, 1, 1], (len(A), 1)))
    with pytest.raises(ValueError, match="over=True and censoring are not available"):
        MSMWeights(CBPS(over=True)).fit(X_list, A)
    # balance_table's dispatch takes only lists of 2-d tables: a list of rows is still array-like covariates
    assert balance_table([[1.0], [2.0], [3.0], [4.0]], [0, 1, 0, 1], stats="smd").shape == (1, 2)
    fit = MSMEffect(outcome_model="additive", vcov="HC0").fit(X_list, A, y)
    with pytest.raises(ValueError, match="history \\(1, 1\\) must give 0 or 1 for each of the 3"):
        fit.contrast((1, 1), (0, 0, 0))
    with pytest.raises(ValueError, match="outcome_model='saturated' has 2\\^11"):
        MSMEffect().fit([X_list[0]] * 11, pd.concat([A["A_1"]] * 11, axis=1, keys=range(11)), y)


def test_plots_by_time_show_the_balance_and_weights(fitted, msmdata):
    """Each love-plot panel shows that time's |SMD| with the final weights (balance_table_msm's numbers) and each
    weight panel the final weights of that time's groups."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from balance.plot import msm_love_plot, msm_weight_plot

    X_list, A, _ = msmdata
    msm = fitted["glm_unstab"]
    table = balance_table_msm(X_list, A, msm, stats="smd").by_time
    axes = msm_love_plot(X_list, A, msm)
    for panel, name in zip(axes, A.columns):
        labels = [t.get_text() for t in panel.get_yticklabels()]
        adjusted = next(line for line in panel.get_lines() if line.get_gid() == "Adjusted")
        assert_allclose(adjusted.get_xdata(), np.abs(table.loc[name, "smd_adj"].loc[labels]))
    plt.close(axes[0].figure)
    axes = msm_weight_plot(msm, A)
    assert [panel.get_title() for panel in axes] == ["Weights at A_1", "Weights at A_2", "Weights at A_3"]
    counts = sum(patch.get_height() for patch in axes[2].patches)
    assert counts == len(A)
    plt.close(axes[0].figure)


@pytest.mark.parametrize("stabilize", [False, True])
def test_integer_sampling_weights_equal_replicated_units(msmdata, stabilize):
    """Sampling weights count once in the product: integer sampling weights give the weights (per copy) and the
    estimates of the data with each unit repeated that many times (frequency-weight identity, to solver
    tolerance 1e-7)."""
    X_list, A, y = msmdata
    rows = np.arange(1500)
    sw = np.random.default_rng(0).integers(1, 4, size=len(rows))
    repeat = np.repeat(rows, sw)
    pick = [X.iloc[rows].reset_index(drop=True) for X in X_list]
    weighted = MSMEffect(MSMWeights(stabilize=stabilize), "additive", vcov="HC0").fit(
        pick, A.iloc[rows].reset_index(drop=True), y.iloc[rows].reset_index(drop=True), sample_weight=sw)
    copies = MSMEffect(MSMWeights(stabilize=stabilize), "additive", vcov="HC0").fit(
        [X.iloc[repeat].reset_index(drop=True) for X in X_list], A.iloc[repeat].reset_index(drop=True),
        y.iloc[repeat].reset_index(drop=True))
    assert_allclose(weighted.msm_weighter_.weights_.to_numpy() / sw,
                    copies.msm_weighter_.weights_.to_numpy()[np.r_[0, np.cumsum(sw)[:-1]]], rtol=1e-7)
    assert_allclose(weighted.coef_, copies.coef_, rtol=1e-7)


def test_cumulative_model_is_weighted_least_squares_on_the_count(msmdata, fitted):
    """outcome_model="cumulative" with family="gaussian": the coefficients are the weighted least-squares fit of y on
    (1, number of time points treated) with the final weights (closed form), and μ_h = γ0 + γ1 Σh."""
    X_list, A, y = msmdata
    fit = MSMEffect(MSMWeights(), "cumulative", family="gaussian", vcov="HC0").fit(X_list, A, y)
    w = fitted["glm_unstab"].weights_.to_numpy()
    design = np.column_stack([np.ones(len(y)), A.sum(axis=1)])
    root = np.sqrt(w)[:, None]
    gamma = np.linalg.lstsq(design * root, y.to_numpy() * root[:, 0], rcond=None)[0]
    assert_allclose(fit.coef_, gamma, rtol=1e-10)
    counts = np.array([sum(map(int, h.strip("()").split(", "))) for h in fit.potential_outcomes_.index])
    assert_allclose(fit.potential_outcomes_["estimate"], gamma[0] + gamma[1] * counts, rtol=1e-10)


@pytest.mark.parametrize("scale", ["rr", "or"])
def test_ratio_contrasts_use_the_delta_method_on_the_log_scale(msmdata, scale):
    """A ratio's estimate is the ratio of the potential outcomes (odds for "or"); its std_err is that of the log
    ratio, sqrt(gᵀVg) with g its gradient in the coefficients, here by central differences (1e-6)."""
    X_list, A, y = msmdata
    fit = MSMEffect(MSMWeights(), "saturated").fit(X_list, A, y)
    mu = fit.potential_outcomes_["estimate"]
    c = fit.contrast((1, 1, 1), (0, 0, 0), scale=scale)
    a, b = mu["(1, 1, 1)"], mu["(0, 0, 0)"]
    assert c.estimate == pytest.approx(a / b if scale == "rr" else (a / (1 - a)) / (b / (1 - b)), rel=1e-12)

    def log_ratio(gamma):
        eta = np.array([gamma[0], gamma.sum()])  # (0,0,0): intercept only; (1,1,1): every term
        p = 1 / (1 + np.exp(-eta))
        return np.log(p[1] / p[0]) if scale == "rr" else np.log(p[1] / (1 - p[1])) - np.log(p[0] / (1 - p[0]))

    grad = numerical_jacobian(log_ratio, fit.coef_.to_numpy())
    assert c.std_err == pytest.approx(np.sqrt(grad @ fit.coef_cov_.to_numpy() @ grad), rel=1e-6)
    assert c.ci_lower == pytest.approx(np.exp(np.log(c.estimate) - 1.959963984540054 * c.std_err), rel=1e-9)


def test_additive_numerator(msmdata):
    """numerator="additive": with one earlier treatment the additive logit is saturated, so the second time point's
    numerator is WeightIt's (oracle, 1e-8); the saturated MSM does not depend on the numerator (coefficients and
    asympt covariance equal those of unstabilised weights to 1e-9, the stacked equations absorbing it)."""
    X_list, A, y = msmdata
    msm = MSMWeights(stabilize=True, numerator="additive").fit(X_list, A)
    ref = _read("weights/glm_stab.csv")
    assert_allclose(msm.numerators_["A_2"], ref["num_time2"], rtol=1e-8)
    assert np.abs(msm.numerators_["A_3"] - ref["num_time3"]).max() > 1e-3  # A_3 ~ A_1 + A_2 is not saturated
    fits = [MSMEffect(MSMWeights(**kw), "saturated").fit(X_list, A, y)
            for kw in ({}, {"stabilize": True, "numerator": "additive"})]
    assert_allclose(fits[1].coef_, fits[0].coef_, rtol=1e-9)
    assert_allclose(fits[1].coef_cov_, fits[0].coef_cov_, rtol=1e-9, atol=1e-15)


def test_multi_category_time_point(msmdata):
    """A three-level treatment at the second time point (the treated split at random in two): the multinomial
    propensity model fits it, the stacked equations reproduce the final weights and solve to zero, the numerators
    are level shares, and the balance table shows the largest imbalance over its pairs of levels."""
    X_list, A, _ = msmdata
    A = A.copy()
    split = np.random.default_rng(1).random(len(A)) < 0.5
    A["A_2"] = pd.Categorical(np.where(A["A_2"] == 1, np.where(split, "a", "b"), "none"))
    X_list = [X_list[0], X_list[1], X_list[2].assign(A_2=A["A_2"])]
    msm = MSMWeights(stabilize=True).fit(X_list, A)
    assert list(msm.ess_.columns) == ["control", "treated", "a", "b", "none"]
    parts = msm._m_parts(X_list, A)
    assert np.abs(parts.psi(parts.params).sum(axis=0)).max() < 1e-7
    assert_allclose(parts.weights(parts.params), msm.weights_, rtol=1e-12)
    shares = A["A_2"].groupby(A["A_1"]).value_counts(normalize=True)
    expected = [shares[(a1, a2)] for a1, a2 in zip(A["A_1"], A["A_2"])]
    assert_allclose(msm.numerators_["A_2"], expected, rtol=1e-12)
    bal = balance_table_msm(X_list, A, msm, stats="smd")
    assert bal.by_time.index.nlevels == 2 and (bal.by_time.loc["A_2", "smd_un"] >= 0).all()
