"""WeightedEffect with a multi-category treatment (K >= 3 levels) against R WeightIt 1.5.1 (``lm_weightit`` on the
lalonde ``race`` treatment), a numerically differentiated full sandwich, identities and a simulation with known
potential-outcome means.

The weighters here are test-only: ``OracleWeights`` returns the weights WeightIt computed (so HC0 and point estimates
are checked without depending on the package's multi-category weighters), and ``MultinomialWeights`` is an
inverse-probability weighter with a multinomial logit fitted by Newton's method whose estimating equations
(``_m_parts``) are written out below, so that ``vcov="asympt"`` is checked against WeightIt's stacked sandwich.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning

from balance import (CBPS, BaseWeighter, EntropyBalance, InverseProbabilityTilting, MParts, PropensityWeights,
                     WeightedEffect)

from .conftest import SHARED

MULTI = SHARED / "oracle" / "weightit-multi-ate"
COVS = ["age", "educ", "married", "nodegree", "re74", "re75"]
LEVELS = ["black", "hispan", "white"]
CONTRASTS = ["hispan - black", "white - black", "white - hispan"]
ORACLE_MODELS = {"simple": "re78 ~ race", "interact": "gcomp: re78 ~ race * (covs)"}


# ---------------------------------------------------------------------------------------------------------------
# test-only weighters
# ---------------------------------------------------------------------------------------------------------------
class OracleWeights(BaseWeighter):
    """Returns the given weights (WeightIt's), after the usual input checks."""

    _supported_estimands = ("ATE",)
    _supported_treatment_types = ("binary", "multi-category")

    def __init__(self, weights=None, estimand="ATE"):
        self.weights = weights
        self.estimand = estimand

    def fit(self, X, treatment, sample_weight=None):
        data = self._validate_data(X, treatment, sample_weight)
        return self._set_weights(np.asarray(self.weights, dtype=float), data)


def _multinomial_pieces(design, beta, n_levels):
    """Probabilities (n, K) of a multinomial logit with the first level as reference, beta of shape (K-1, p)."""
    eta = np.column_stack([np.zeros(len(design)), design @ beta.reshape(n_levels - 1, -1).T])
    return softmax(eta, axis=1)


class MultinomialWeights(BaseWeighter):
    """ATE weights s/p_A(x) from a multinomial logit fitted by Newton's method (intercept added), with MParts.

    Score equations ψ_i = s_i (1{A_i=k} − p_k(x_i)) (1, x_i) for k = 1..K−1 (s the sampling weights); their
    Jacobian is minus the Fisher information; d w_i / d β_k = −w_i (1{A_i=k} − p_k(x_i)) (1, x_i).
    """

    _supported_estimands = ("ATE",)
    _supported_treatment_types = ("binary", "multi-category")

    def __init__(self, estimand="ATE"):
        self.estimand = estimand

    def _pieces(self, X, treatment, sample_weight):
        data = self._validate_data(X, treatment, sample_weight, reset=not hasattr(self, "coef_"))
        design = np.column_stack([np.ones(len(data.treatment.codes)), np.asarray(X, dtype=float)])
        return design, data.treatment.codes, data.treatment.n_levels, data.sample_weight, data

    def fit(self, X, treatment, sample_weight=None):
        for attr in ("coef_",):
            self.__dict__.pop(attr, None)
        design, codes, k, sw, data = self._pieces(X, treatment, sample_weight)
        scale = np.r_[1.0, np.abs(design[:, 1:]).max(axis=0)]  # Newton on scaled columns, coefficients scaled back
        beta = np.zeros((k - 1) * design.shape[1])
        score, jac = _score(design / scale, codes, k, sw), _score_jacobian(design / scale, k, sw)
        for _ in range(100):
            step = np.linalg.solve(jac(beta), score(beta).sum(axis=0))
            beta -= step
            if np.max(np.abs(step)) < 1e-13:
                break
        self.coef_ = (beta.reshape(k - 1, -1) / scale).ravel()
        probs = _multinomial_pieces(design, self.coef_, k)
        return self._set_weights(sw / probs[np.arange(len(codes)), codes], data)

    def _m_parts(self, X, treatment, sample_weight=None):
        design, codes, k, sw, _ = self._pieces(X, treatment, sample_weight)
        rows = np.arange(len(codes))

        def weights(theta):
            return sw / _multinomial_pieces(design, theta, k)[rows, codes]

        def weights_jacobian(theta):
            probs = _multinomial_pieces(design, theta, k)
            resid = (codes[:, None] == np.arange(1, k)) - probs[:, 1:]
            return -(weights(theta)[:, None, None] * resid[:, :, None] * design[:, None, :]).reshape(len(codes), -1)

        names = tuple(f"{j}:{c}" for j in range(1, k) for c in range(design.shape[1]))
        return MParts(params=self.coef_, names=names, psi=_score(design, codes, k, sw), weights=weights,
                      psi_jacobian=_score_jacobian(design, k, sw), weights_jacobian=weights_jacobian)


def _score(design, codes, k, sw):
    def psi(theta):
        probs = _multinomial_pieces(design, theta, k)
        resid = sw[:, None] * ((codes[:, None] == np.arange(1, k)) - probs[:, 1:])
        return (resid[:, :, None] * design[:, None, :]).reshape(len(codes), -1)
    return psi


def _score_jacobian(design, k, sw):
    def jacobian(theta):
        probs = _multinomial_pieces(design, theta, k)[:, 1:]
        # d(1{A=j} − p_j)/dη_l = −(p_j 1{j=l} − p_j p_l)
        cov = sw[:, None, None] * probs[:, :, None] * (np.eye(k - 1)[None] - probs[:, None, :])
        full = -np.einsum("ijl,ia,ib->jalb", cov, design, design)
        p = design.shape[1]
        return full.reshape((k - 1) * p, (k - 1) * p)
    return jacobian


# ---------------------------------------------------------------------------------------------------------------
# data and oracle
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def multi_oracle(lalonde):
    contrasts = pd.read_csv(MULTI / "contrasts.csv") if MULTI.exists() else pytest.skip("no multi-category oracle")
    return contrasts


def _oracle_weights(lalonde, method):
    w = pd.read_csv(MULTI / f"weights/ATE_{method}.csv", index_col="id")["weight"]
    return w.loc[lalonde.index].to_numpy()


def _ref(multi_oracle, method, model, vcov):
    rows = multi_oracle.query("case == @method and model == @ORACLE_MODELS[@model] and vcov == @vcov")
    return rows.set_index("contrast")[["estimate", "se"]]


def _check_against(fit, ref, estimate_rtol=1e-9):
    means = fit.potential_outcomes_.rename(index=lambda level: f"mean[{level}]")
    ours = pd.concat([means, fit.contrasts_[["estimate", "std_err"]]]).rename(columns={"std_err": "se"})
    ref = ref.loc[ours.index]
    # point estimates: the same weighted least squares on the same weights (exact algebra): 1e-9 relative to the
    # scale of the means (looser when the weights are refitted, see below); SEs: WeightIt 1.5.1 computes g-computation SEs by numerical differentiation
    # (marginaleffects), which agrees to about 1e-7 relative; the issue asks for 1e-5
    scale = ref["estimate"].abs().max()
    assert_allclose(ours["estimate"], ref["estimate"], rtol=0, atol=estimate_rtol * scale)
    assert_allclose(ours["se"], ref["se"], rtol=1e-5)


@pytest.mark.parametrize("method", ["glm", "cbps_just", "cbps_over", "ebal", "ipt", "energy", "optweight"])
@pytest.mark.parametrize("model", ["simple", "interact"])
def test_hc0_and_estimates_match_weightit(lalonde, multi_oracle, method, model):
    w = _oracle_weights(lalonde, method)
    fit = WeightedEffect(OracleWeights(w), model, "HC0", condition_on_covariates=True).fit(
        lalonde[COVS], lalonde["race"], lalonde["re78"])
    _check_against(fit, _ref(multi_oracle, f"ATE_{method}", model, "HC0"))
    assert list(fit.contrasts_.index) == CONTRASTS
    assert list(fit.potential_outcomes_.index) == LEVELS
    assert list(fit.contrasts_.columns) == ["estimate", "std_err", "conf_low", "conf_high", "p_value"]
    assert not fit.result_.accounts_for_weight_estimation


@pytest.mark.parametrize("model", ["simple", "interact"])
def test_asympt_stacking_a_multinomial_logit_matches_weightit(lalonde, multi_oracle, model):
    fit = WeightedEffect(MultinomialWeights(), model, "asympt", condition_on_covariates=True).fit(
        lalonde[COVS], lalonde["race"], lalonde["re78"])
    # the test's Newton fit solves the score equations to 2e-10; WeightIt's coefficients leave a score of 0.04 (in
    # units of re74, ~1e4): they agree to 1.4e-6 relative, the weights to 4e-7, so the estimates to 1e-6
    coef = pd.read_csv(MULTI / "glm_multinomial_coefficients.csv")["coef"].to_numpy()
    assert_allclose(fit.weighter_.coef_, coef, rtol=5e-6)
    _check_against(fit, _ref(multi_oracle, "ATE_glm", model, "asympt"), estimate_rtol=1e-6)
    assert fit.result_.accounts_for_weight_estimation and fit.result_.vcov_config["jacobian"] == "analytic"


# the package's own multi-category weighters, asympt stacking their estimating equations: glm (multinomial logit),
# ipt (one tilt per level), ebal (g-computation only: WeightIt treats ebal's balance targets, the full-sample means,
# as fixed, the package estimates them, so the simple model's asympt SEs differ by ~8%; with the covariates held
# fixed the g-computation SEs agree); cbps_just (the just-identified CBPS equations).
REAL_WEIGHTERS = {"glm": PropensityWeights, "cbps_just": CBPS, "ipt": InverseProbabilityTilting, "ebal": EntropyBalance}


# CBPS: estimates and HC0 agree with WeightIt, asympt SEs do not (6-36%). The package's multi-category CBPS
# equations are WeightIt 1.5.1's (weightit2cbps.multi: balance of the reference level against each other level),
# its analytic derivatives agree with central differences (1e-5), and its SEs are the sandwich of those equations
# (test_cbps_asympt_is_the_sandwich_of_weightits_own_cbps_equations), so the difference sits in what WeightIt
# 1.5.1 reports for multi-category CBPS; strict, so that a change on either side is noticed. Evidence on lalonde race
# (simple model, 2026-12-06, bootstrap 400 replicates re-estimating the weights, random_state=1): the package's
# asympt SEs are 8-15% below the bootstrap's (1138/1322, 771/835, 967/1141), the pattern of glm (15-17% below; glm
# matches WeightIt exactly) and IPT (9-23% below); WeightIt's are 4% below, 44% above and 10% below.
_CBPS_ASYMPT = pytest.mark.xfail(strict=True, reason="WeightIt 1.5.1's multi-category CBPS asympt SEs differ 6-36%")


@pytest.mark.parametrize("method, model, vcov", [
    (method, model, vcov) if not (method == "cbps_just" and vcov == "asympt")
    else pytest.param(method, model, vcov, marks=_CBPS_ASYMPT)
    for method, model in [("glm", "simple"), ("glm", "interact"), ("cbps_just", "simple"), ("cbps_just", "interact"),
                          ("ipt", "simple"), ("ipt", "interact"), ("ebal", "interact")]
    for vcov in ("asympt", "HC0")
])
def test_package_weighters_match_weightit(lalonde, multi_oracle, method, model, vcov):
    fit = WeightedEffect(REAL_WEIGHTERS[method]("ATE"), model, vcov, condition_on_covariates=True).fit(
        lalonde[COVS], lalonde["race"], lalonde["re78"])
    # weights agree with WeightIt's to their solvers' tolerances (glm 4e-7, see above; ipt, ebal 1e-10): the
    # estimates to 1e-6 of the means' scale, the SEs to the issue's 1e-5 (observed: 3e-7 glm, 1e-11 ipt, ebal)
    _check_against(fit, _ref(multi_oracle, f"ATE_{method}", model, vcov), estimate_rtol=1e-6)
    assert fit.result_.accounts_for_weight_estimation == (vcov == "asympt")


def test_ebal_simple_model_estimates_its_balance_targets(lalonde, multi_oracle):
    fit = WeightedEffect(EntropyBalance("ATE")).fit(lalonde[COVS], lalonde["race"], lalonde["re78"])
    ref = _ref(multi_oracle, "ATE_ebal", "simple", "asympt").loc[CONTRASTS]
    assert_allclose(fit.contrasts_["estimate"], ref["estimate"], rtol=1e-8)
    # WeightIt holds the targets fixed: a different (not comparable) SE; ours accounts for estimating them
    assert np.all(np.abs(fit.contrasts_["std_err"] / ref["se"] - 1) > 1e-3)


# ---------------------------------------------------------------------------------------------------------------
# the stacked sandwich against a numerically differentiated one, written independently
# ---------------------------------------------------------------------------------------------------------------
def _saturated_design(rng, n=900):
    """A categorical confounder s (4 levels) and a 3-level treatment whose probabilities depend on s."""
    s = rng.integers(0, 4, n)
    logits = np.column_stack([np.zeros(n), 0.4 * s - 0.5, 0.8 - 0.3 * s])
    a = np.array([rng.choice(3, p=p) for p in softmax(logits, axis=1)])
    x = rng.normal(size=n)
    y = 1.0 + s + 0.5 * x + np.array([0.0, 1.0, -2.0])[a] + 0.3 * a * x + rng.normal(size=n)
    dummies = (s[:, None] == np.arange(1, 4)).astype(float)
    return dummies, x, a, y


def _numerical_sandwich(stacked, theta):
    """A⁻¹ B A⁻ᵀ with A the central-difference derivative of Σ ψ_i (steps 1e-5 relative)."""
    k = theta.size
    bread = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        bread[:, j] = (stacked(up).sum(axis=0) - stacked(down).sum(axis=0)) / (2 * h)
    psi = stacked(theta)
    inv = np.linalg.inv(bread)
    return inv @ (psi.T @ psi) @ inv.T


@pytest.mark.parametrize("model", ["simple", "interact"])
def test_asympt_equals_a_numerically_differentiated_full_sandwich(rng, model):
    dummies, x, a, y = _saturated_design(rng)
    levels = np.array(["a", "b", "c"])[a]
    X = np.column_stack([dummies, x]) if model == "interact" else dummies
    weighter = MultinomialWeights()
    # the weight model sees only s (saturated: cell frequencies); the outcome model sees s and x
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    pipe = make_pipeline(ColumnTransformer([("s", "passthrough", [0, 1, 2])]), weighter)
    fit = WeightedEffect(pipe, model, "asympt", condition_on_covariates=False).fit(X, levels, y)
    beta = fit.weighter_[-1].coef_
    design_w = np.column_stack([np.ones(len(y)), dummies])
    n_beta, k = beta.size, 3
    onehot = (a[:, None] == np.arange(k)).astype(float)

    if model == "simple":
        def outcome(theta_o, w):
            return onehot * w[:, None] * (y[:, None] - theta_o)
        theta_o = fit.potential_outcomes_["estimate"].to_numpy()
    else:
        def d_of(codes):
            t = (codes[:, None] == np.arange(1, k)).astype(float)
            cov = np.column_stack([dummies, x])
            return np.column_stack([np.ones(len(y)), t, cov, t[:, [0]] * cov, t[:, [1]] * cov])
        design = d_of(a)
        q = design.shape[1]

        def outcome(theta_o, w):
            gamma, mu = theta_o[:q], theta_o[q:]
            reg = design * (w * (y - design @ gamma))[:, None]
            avg = np.column_stack([d_of(np.full(len(y), arm)) @ gamma - mu[arm] for arm in range(k)])
            return np.hstack([reg, avg])
        root = np.sqrt(fit.weighter_[-1].weights_)
        gamma = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)[0]
        theta_o = np.r_[gamma, fit.potential_outcomes_["estimate"].to_numpy()]

    def stacked(theta):
        b = theta[:n_beta]
        probs = _multinomial_pieces(design_w, b, k)
        score = (((a[:, None] == np.arange(1, k)) - probs[:, 1:])[:, :, None] * design_w[:, None, :]).reshape(len(y), -1)
        w = 1 / probs[np.arange(len(y)), a]
        return np.hstack([score, outcome(theta[n_beta:], w)])

    theta = np.r_[beta, theta_o]
    assert_allclose(stacked(theta).sum(axis=0), 0, atol=1e-6)  # the estimates solve the stacked equations
    cov = _numerical_sandwich(stacked, theta)[-k:, -k:]
    ours = fit.result_.vcov.loc[["mu[a]", "mu[b]", "mu[c]"], ["mu[a]", "mu[b]", "mu[c]"]].to_numpy()
    # central differences with 1e-5 steps on smooth equations: error ~1e-8 relative; 1e-6 leaves room
    assert_allclose(ours, cov, rtol=1e-6, atol=1e-6 * np.abs(cov).max())
    # and a contrast's variance is g'Vg
    g = np.array([-1.0, 1.0, 0.0])
    assert_allclose(fit.contrasts_.loc["b - a", "std_err"], np.sqrt(g @ cov @ g), rtol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# identities
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def glm_fit_data(lalonde):
    return lalonde[COVS], lalonde["race"], lalonde["re78"], _oracle_weights(lalonde, "glm")


def test_additive_contrasts_are_the_dummy_coefficients(glm_fit_data):
    X, race, y, w = glm_fit_data
    fit = WeightedEffect(OracleWeights(w), "additive", "HC0").fit(X, race, y)
    codes = race.cat.codes.to_numpy()
    design = np.column_stack([np.ones(len(y)), codes == 1, codes == 2, X.to_numpy(float)])
    root = np.sqrt(w)
    coef = np.linalg.lstsq(design * root[:, None], y.to_numpy() * root, rcond=None)[0]
    # a linear model without interactions: every predicted difference is the dummy coefficient (exact algebra)
    expected = [coef[1], coef[2], coef[2] - coef[1]]
    assert_allclose(fit.contrasts_["estimate"], expected, rtol=1e-8)
    assert isinstance(fit.estimate_, pd.Series) and list(fit.estimate_.index) == CONTRASTS


def test_aipw_with_saturated_models_is_the_cell_mean_standardisation(rng):
    dummies, _, a, _ = _saturated_design(rng)
    s = dummies @ np.arange(1, 4)
    y = 2 * s + np.array([0.0, 1.5, -1.0])[a] + rng.normal(size=len(a))
    levels = np.array(["a", "b", "c"])[a]
    aipw = WeightedEffect(MultinomialWeights(), "aipw", "HC0").fit(dummies, levels, y)
    gcomp = WeightedEffect(MultinomialWeights(), "interact", "HC0").fit(dummies, levels, y)
    # both models saturated in s: m_k(s) is the cell mean and the weights are constant within (level, s) cells, so
    # the residual term vanishes and both equal the standardisation Σ_s P(s) ȳ(k, s) (exact algebra)
    cells = pd.DataFrame({"s": s, "a": a, "y": y}).groupby(["a", "s"])["y"].mean()
    means = np.array([cells.loc[k].loc[s].mean() for k in range(3)])
    expected = [means[1] - means[0], means[2] - means[0], means[2] - means[1]]
    assert_allclose(aipw.contrasts_["estimate"], gcomp.contrasts_["estimate"], rtol=1e-10)
    assert_allclose(aipw.contrasts_["estimate"], expected, rtol=1e-10)


@pytest.mark.parametrize("scale", ["rr", "or"])
def test_ratio_scales_follow_the_delta_method(glm_fit_data, scale):
    X, race, y, w = glm_fit_data
    yb = (y > 0).astype(int)
    diff = WeightedEffect(MultinomialWeights()).fit(X, race, yb).result_
    ratio = WeightedEffect(MultinomialWeights(), scale=scale).fit(X, race, yb)
    mu = diff.estimate[["mu[black]", "mu[hispan]", "mu[white]"]].to_numpy()
    v = diff.vcov.iloc[3:, 3:].to_numpy()
    f, df = (np.log, lambda m: 1 / m) if scale == "rr" else (lambda m: np.log(m / (1 - m)), lambda m: 1 / (m * (1 - m)))
    for row, (hi, lo) in enumerate([(1, 0), (2, 0), (2, 1)]):
        g = np.zeros(3)
        g[hi], g[lo] = df(mu[hi]), -df(mu[lo])
        assert_allclose(np.log(ratio.estimate_.iloc[row]), f(mu[hi]) - f(mu[lo]), rtol=1e-10)
        assert_allclose(ratio.se_.iloc[row], np.sqrt(g @ v @ g), rtol=1e-10)
    label = "risk ratio" if scale == "rr" else "odds ratio"
    assert list(ratio.contrasts_.index) == [f"hispan / black ({label})", f"white / black ({label})",
                                            f"white / hispan ({label})"]


def test_one_unit_clusters_equal_the_unclustered_sandwich(glm_fit_data):
    X, race, y, _ = glm_fit_data
    plain = WeightedEffect(MultinomialWeights(), "interact").fit(X, race, y)
    clustered = WeightedEffect(MultinomialWeights(), "interact").fit(X, race, y, cluster=np.arange(len(y)))
    n = len(y)
    assert_allclose(clustered.se_, plain.se_ * np.sqrt(n / (n - 1)), rtol=1e-10)


def _three_level_design(rng, n):
    """Confounded three-level treatment with E[y_k] = 1 + (0, 1, −0.5)_k (E[x] = 0)."""
    x = rng.normal(size=(n, 2))
    logits = np.column_stack([np.zeros(n), 0.3 + 0.8 * x[:, 0], -0.2 - 0.6 * x[:, 0] + 0.5 * x[:, 1]])
    a = (rng.random(n)[:, None] > np.cumsum(softmax(logits, axis=1), axis=1)).sum(axis=1)
    y = 1 + np.array([0.0, 1.0, -0.5])[a] + 2 * x[:, 0] + x[:, 1] + rng.normal(size=n)
    return x, np.array(["l0", "l1", "l2"])[a], y, 1 + np.array([0.0, 1.0, -0.5])


@pytest.mark.parametrize("kind", ["bootstrap", "fwb"])
def test_bootstraps_agree_with_the_stacked_sandwich(rng, kind):
    x, levels, y, _ = _three_level_design(rng, 1500)
    asympt = WeightedEffect(MultinomialWeights()).fit(x, levels, y)
    boot = WeightedEffect(MultinomialWeights(), vcov=kind, n_bootstrap=400, random_state=7).fit(x, levels, y)
    assert list(boot.result_.draws.columns) == list(asympt.result_.estimate.index)
    assert boot.n_failed_ == 0
    assert_allclose(boot.estimate_, asympt.estimate_, rtol=1e-12)
    # the relative SE of a bootstrap SE at R = 400 is about 1/sqrt(2R) = 3.5%: 15% is four of them
    assert_allclose(boot.se_, asympt.se_, rtol=0.15)


def test_summary_shows_every_contrast_and_level(glm_fit_data):
    X, race, y, w = glm_fit_data
    fit = WeightedEffect(OracleWeights(w), vcov="HC0").fit(X, race, y)
    assert list(fit.summary().index) == CONTRASTS + ["mu[black]", "mu[hispan]", "mu[white]"]
    assert list(fit.result_.ess.index) == LEVELS
    text = str(fit.result_)
    assert "white - hispan" in text and "mu[white]" in text


def test_continuous_treatment_is_refused():
    class Continuous(OracleWeights):
        _supported_treatment_types = ("continuous",)
    X = np.arange(20.0).reshape(-1, 1)
    with pytest.raises(ValueError, match="WeightedEffect supports binary and multi-category treatments"):
        WeightedEffect(Continuous(np.ones(20)), vcov="HC0").fit(X, np.linspace(0, 1, 20), np.arange(20.0))


# ---------------------------------------------------------------------------------------------------------------
# simulation with known potential-outcome means
# ---------------------------------------------------------------------------------------------------------------
def test_contrasts_recover_known_potential_outcome_means(rng):
    x, levels, y, truth = _three_level_design(rng, 6000)
    codes = pd.Categorical(levels).codes
    naive = np.array([y[codes == k].mean() for k in range(3)])
    assert np.max(np.abs(naive - truth)) > 0.3  # the design is confounded
    diffs = np.array([truth[1] - truth[0], truth[2] - truth[0], truth[2] - truth[1]])
    for model in ("simple", "additive", "interact", "aipw"):
        fit = WeightedEffect(MultinomialWeights(), model).fit(x, levels, y)
        po = fit.potential_outcomes_
        # the population means (covariates random, the default): within 4 SEs
        assert np.all(np.abs(po["estimate"] - truth) < 4 * po["std_err"]), model
        assert np.all(np.abs(fit.contrasts_["estimate"] - diffs) < 4 * fit.contrasts_["std_err"]), model


@pytest.mark.parametrize("model", ["simple", "interact", "aipw"])
def test_att_averages_over_the_focal_level(glm_fit_data, model):
    X, race, y, _ = glm_fit_data
    fit = WeightedEffect(PropensityWeights("ATT", treated="hispan"), model).fit(X, race, y)
    # the focal level keeps weight 1 and (interact, aipw) its own regression, so its mean is its plain mean
    # (g-computation averages over the focal rows): exact algebra
    assert_allclose(fit.potential_outcomes_.loc["hispan", "estimate"], y[race == "hispan"].mean(), rtol=1e-10)
    assert list(fit.contrasts_.index) == CONTRASTS and fit.result_.estimand == "ATT"


def test_binary_contrasts_table_is_the_effect_row(lalonde):
    fit = WeightedEffect(PropensityWeights("ATT")).fit(lalonde[COVS + ["race"]], lalonde["treat"], lalonde["re78"])
    row = fit.contrasts_.loc["ATT"]
    summary = fit.summary().loc["ATT"]
    assert list(fit.contrasts_.index) == ["ATT"]
    assert row["estimate"] == fit.estimate_ and row["std_err"] == fit.se_ and row["p_value"] == fit.pvalue_
    assert (row["conf_low"], row["conf_high"]) == (summary["ci_lower"], summary["ci_upper"])


def test_a_level_with_one_unit_is_warned_about(lalonde):
    """A level with one unit: its mean is that unit's outcome and the simple model's SE of it is 0 by construction
    (found by the review: it was silent); WeightedEffect says so, naming the level."""
    race = lalonde["race"].astype(object).copy()
    race.iloc[0] = "other"
    with pytest.warns(UserWarning, match="level 'other' has a single unit with positive weight"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # its score is bounded: reported elsewhere
        fit = WeightedEffect(PropensityWeights(), vcov="HC0").fit(lalonde[COVS], race, lalonde["re78"])
    assert fit.potential_outcomes_.loc["other", "std_err"] == 0.0


def test_cbps_asympt_is_the_sandwich_of_weightits_own_cbps_equations(lalonde):
    """Independent reference for the multi-category CBPS asympt SEs (the WeightIt 1.5.1 oracle disagrees, see
    _CBPS_ASYMPT): the stacked system written here from WeightIt 1.5.1's weightit2cbps.multi, balance of the
    reference level against each other level, (1{A=ref}/p_ref - 1{A=k}/p_k) (1, X), with the simple model's
    1{A=a} w (y - mu_a), differentiated numerically (central differences, relative error ~1e-7, hence rtol 1e-4).
    The package agrees; WeightIt's reported SEs (1272, 1206, 1026) are not this sandwich."""
    X, race, y = lalonde[COVS], lalonde["race"], lalonde["re78"].to_numpy()
    fit = CBPS("ATE").fit(X, race)
    codes = pd.Categorical(race, categories=fit.treatment_levels_).codes
    design = np.column_stack([np.ones(len(X)), fit.design_.transform(X)[0]])
    k, q = len(fit.treatment_levels_), design.shape[1]

    def psi(theta):
        eta = np.column_stack([np.zeros(len(X)), design @ theta[:(k - 1) * q].reshape(k - 1, q).T])
        w = 1.0 / softmax(eta, axis=1)[np.arange(len(X)), codes]
        balance = [((codes == 0) * w - (codes == j) * w)[:, None] * design for j in range(1, k)]
        outcome = [((codes == a) * w * (y - theta[(k - 1) * q + a]))[:, None] for a in range(k)]
        return np.hstack(balance + outcome)

    theta = np.r_[np.column_stack([fit.intercept_, fit.coef_]).ravel(),
                  [np.average(y[codes == a], weights=fit.weights_[codes == a]) for a in range(k)]]
    steps = 1e-6 * np.maximum(1.0, np.abs(theta))
    jac = np.column_stack([(psi(theta + s * e).sum(0) - psi(theta - s * e).sum(0)) / (2 * s)
                           for s, e in zip(steps, np.eye(len(theta)))])
    inv = np.linalg.inv(jac)
    vcov = (inv @ psi(theta).T @ psi(theta) @ inv.T)[-k:, -k:]
    expected = [np.sqrt(vcov[a, a] + vcov[b, b] - 2 * vcov[a, b]) for a, b in [(1, 0), (2, 0), (2, 1)]]
    effect = WeightedEffect(CBPS("ATE"), "simple", "asympt").fit(X, race, lalonde["re78"])
    assert_allclose(effect.contrasts_["std_err"].to_numpy(), expected, rtol=1e-4)
