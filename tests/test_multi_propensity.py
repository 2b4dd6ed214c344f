"""PropensityWeights for a multi-category treatment: WeightIt's multinomial oracle, the weight formulas, an
independent MLE, a simulation with known truth, and the M-estimation parts."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from balance import PropensityWeights, WeightedEffect, weights_from_propensity
from balance.weights._multinomial import fit_multinomial

from .conftest import SHARED, _shared_file
from .test_propensity import _numerical_jacobian

MULTI = SHARED / "oracle" / "weightit-multi-ate"
RACE_COVARIATES = ["age", "educ", "married", "nodegree", "re74", "re75"]
LEVELS = ["black", "hispan", "white"]


def multi_oracle(name):
    frame = pd.read_csv(_shared_file(MULTI / name))
    return frame.set_index("id") if "id" in frame else frame


@pytest.fixture(scope="module")
def race(lalonde):
    """The oracle's problem: race (black the reference) on the other covariates."""
    return lalonde[RACE_COVARIATES], lalonde["race"]


@pytest.fixture(scope="module")
def ate_fit(race):
    return PropensityWeights().fit(*race)


def simulate_multi(rng, n=600, p=2):
    """A three-level multinomial-logit design with known coefficients (level "a" the reference)."""
    X = rng.normal(size=(n, p))
    coef = np.array([[0.3, 0.8, -0.4], [-0.2, -0.5, 0.6]])[:, : p + 1]
    proba = softmax(np.column_stack([np.zeros(n), np.column_stack([np.ones(n), X]) @ coef.T]), axis=1)
    codes = (rng.uniform(size=n)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)
    return X, np.array(["a", "b", "c"])[codes], proba


# ---------------------------------------------------------------------------------------------------------------
# the WeightIt oracle (lalonde, race, ATE)
# ---------------------------------------------------------------------------------------------------------------
# WeightIt's own softmax fit stops about 4e-7 (relative) short of the exact MLE, which ours reaches to rounding
# level (score below 1e-8 in SD units); the tolerances below are that gap with a margin of about 3.


def test_multinomial_coefficients_match_weightit(ate_fit):
    ref = multi_oracle("glm_multinomial_coefficients.csv")
    assert ref["equation"].unique().tolist() == ["log(p_hispan/p_black)", "log(p_white/p_black)"]
    ours = np.column_stack([ate_fit.intercept_, ate_fit.coef_])
    assert ate_fit.coef_.shape == (2, 6) and ate_fit.converged_
    assert ref["term"].tolist()[1:7] == ate_fit.terms_
    # the largest relative gap, 1.4e-6, is on the small re75 slope of the hispan equation (2e-5 per dollar)
    assert_allclose(ours.ravel(), ref["coef"], rtol=5e-6)


def test_generalised_propensity_scores_match_weightit(ate_fit):
    ref = multi_oracle("glm_generalized_ps.csv")
    assert ate_fit.ps_.index.equals(ref.index)
    assert ate_fit.ps_.columns.tolist() == LEVELS
    assert_allclose(ate_fit.ps_, ref[[f"p_{level}" for level in LEVELS]], rtol=1.5e-6)


def test_ate_weights_match_weightit(ate_fit):
    ref = multi_oracle("weights/ATE_glm.csv")
    assert ate_fit.weights_.index.equals(ref.index)
    # 1/p_A, not normalised (WeightIt's glm scale); the gap is the MLE's stopping point above (3.8e-7 observed)
    assert_allclose(ate_fit.weights_, ref["weight"], rtol=1.5e-6)


def test_multinomial_mle_matches_statsmodels(race):
    """An independent MLE (statsmodels MNLogit, same reference level) gives the same coefficients."""
    X, t = race
    ref = sm.MNLogit(pd.Categorical(t).codes, sm.add_constant(X)).fit(method="newton", tol=1e-14, disp=False)
    ours = PropensityWeights().fit(X, t)
    # both solve the score to rounding level; the re74/re75 columns (in dollars) make the problem ill-conditioned
    assert_allclose(np.column_stack([ours.intercept_, ours.coef_]), ref.params.to_numpy().T, rtol=1e-8)


def test_integer_sample_weights_equal_repeated_rows(rng):
    X, t, _ = simulate_multi(rng, n=300)
    sw = rng.integers(1, 4, len(t))
    weighted = PropensityWeights("ATO").fit(X, t, sample_weight=sw.astype(float))
    repeated = PropensityWeights("ATO").fit(np.repeat(X, sw, axis=0), np.repeat(t, sw))
    # identical likelihoods, so identical MLEs (both at rounding level)
    assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-9)
    assert_allclose(weighted.weights_, sw * repeated.weights_[np.cumsum(sw) - 1], rtol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# the weight formulas and their properties
# ---------------------------------------------------------------------------------------------------------------
def test_weight_formulas(race):
    X, t = race
    codes = pd.Categorical(t).codes
    att = PropensityWeights("ATT", treated="hispan").fit(X, t)
    p = att.ps_.to_numpy()
    own = p[np.arange(len(t)), codes]
    # ATT: the focal level gets 1, every other level p_focal / p_A (WeightIt's get_w_from_ps)
    assert_allclose(att.weights_, np.where(t == "hispan", 1.0, p[:, 1] / own), rtol=1e-14)
    assert np.all(att.weights_[t == "hispan"] == 1.0)
    # ATO: 1 / (p_A Σ_k 1/p_k) (Li & Li 2019)
    ato = PropensityWeights("ATO").fit(X, t)
    assert_allclose(ato.weights_, 1.0 / (own * (1.0 / p).sum(axis=1)), rtol=1e-14)
    # the formulas as a function, from the scores (a DataFrame's columns matched by name, in any order)
    for est, kw in [(att, {"treated": "hispan"}), (ato, {})]:
        shuffled = est.ps_[["white", "black", "hispan"]]
        assert_allclose(weights_from_propensity(shuffled, t, est.estimand, **kw), est.weights_, rtol=1e-14)


def test_mle_score_identity(ate_fit, race):
    """The multinomial score with an intercept: Σ_i p_ik (1, X_i) = Σ_{A_i = k} (1, X_i) for every level k."""
    X, t = race
    design = np.column_stack([np.ones(len(X)), X])
    for level in LEVELS:
        assert_allclose(ate_fit.ps_[level].to_numpy() @ design, design[(t == level).to_numpy()].sum(axis=0),
                        rtol=1e-10)


@pytest.mark.parametrize("estimand, focal", [("ATE", None), ("ATT", "white"), ("ATO", None)])
def test_invariant_to_the_order_of_the_labels(race, estimand, focal):
    """Another reference level reparametrises the same softmax model: the same scores and weights per unit."""
    X, t = race
    reordered = pd.Categorical(t.astype(str), categories=["white", "hispan", "black"])
    a = PropensityWeights(estimand, treated=focal).fit(X, t)
    b = PropensityWeights(estimand, treated=focal).fit(X, pd.Series(reordered, index=t.index))
    assert b.ps_.columns.tolist() == ["white", "hispan", "black"]
    assert_allclose(b.ps_[LEVELS], a.ps_, rtol=1e-9)
    assert_allclose(b.weights_, a.weights_, rtol=1e-9)


def test_classifier_model_gives_the_mle_scores(rng):
    """An unpenalised scikit-learn softmax fit has the same maximum; its class columns are mapped to the levels."""
    X, t, _ = simulate_multi(rng, n=800)
    ours = PropensityWeights("ATO").fit(X, t)
    clf = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000)
    theirs = PropensityWeights("ATO", model=clf).fit(X, t)
    # lbfgs stops at tol=1e-12 on the gradient, a few 1e-7 away from the maximum
    assert_allclose(theirs.ps_, ours.ps_, rtol=1e-5)
    assert_allclose(theirs.weights_, ours.weights_, rtol=1e-5)


def test_precomputed_scores(rng):
    X, t, proba = simulate_multi(rng, n=200)
    pw = PropensityWeights("ATT", model="precomputed", treated="c").fit(proba, t)
    assert_allclose(pw.weights_, weights_from_propensity(proba, t, "ATT", treated="c"), rtol=1e-15)
    with pytest.raises(ValueError, match="one column of generalised propensity scores per level"):
        PropensityWeights(model="precomputed").fit(proba[:, :2].copy(), t)


def test_clip_and_trim_are_reported(rng):
    X, t, _ = simulate_multi(rng, n=600, p=2)
    raw = PropensityWeights("ATE").fit(X, t).ps_
    expected = int(np.sum(((raw < 0.15) | (raw > 0.6)).any(axis=1)))
    assert expected > 0
    with pytest.warns(UserWarning, match=rf"{expected} units' generalised propensity scores were clipped"):
        clipped = PropensityWeights("ATE", clip=(0.15, 0.6)).fit(X, t)
    assert clipped.n_clipped_ == expected
    assert clipped.ps_.min() >= 0.15 and clipped.ps_.max() <= 0.6
    with pytest.warns(UserWarning, match="5 weights were trimmed"):
        trimmed = PropensityWeights("ATT", treated="b", trim=5).fit(X, t)
    untrimmed = PropensityWeights("ATT", treated="b").fit(X, t)
    assert trimmed.n_trimmed_ == 5
    assert np.all(trimmed.weights_[t == "b"] == 1.0)  # the focal level is left alone
    assert np.sum(trimmed.weights_ != untrimmed.weights_) == 5


def test_predict_weights_reproduces_fit(race):
    X, t = race
    pw = PropensityWeights("ATT", treated="black").fit(X, t)
    assert_allclose(pw.predict_weights(X, t), pw.weights_, rtol=1e-15)
    assert_allclose(pw.predict_proba(X), pw.ps_, rtol=1e-15)


def test_unsupported_estimands_and_missing_focal(race):
    X, t = race
    with pytest.raises(ValueError, match=r"estimand='ATC' is not supported by PropensityWeights for a multi-category"):
        PropensityWeights("ATC").fit(X, t)
    with pytest.raises(ValueError, match="needs the focal level: pass treated=<level>"):
        PropensityWeights("ATT").fit(X, t)


def test_non_convergence_is_reported(race):
    with pytest.warns(ConvergenceWarning, match="multinomial logistic propensity model stopped unconverged"):
        pw = PropensityWeights(max_iter=1).fit(*race)
    assert not pw.converged_ and pw.n_iter_ == 1


def test_fit_multinomial_without_covariates_gives_the_shares():
    codes = np.array([0, 0, 1, 2, 2, 2, 2])
    fit = fit_multinomial(np.zeros((7, 0)), codes, 3, np.ones(7))
    assert fit.converged and fit.n_iter == 0
    assert_allclose(fit.coef[:, 0], np.log([1 / 2, 4 / 2]), rtol=1e-15)


# ---------------------------------------------------------------------------------------------------------------
# simulation with known truth
# ---------------------------------------------------------------------------------------------------------------
def _target_mean(values, tilt):
    return float(np.sum(values * tilt) / np.sum(tilt))


@pytest.mark.parametrize("estimand, focal", [("ATE", None), ("ATT", "c"), ("ATO", None)])
def test_simulation_recovers_the_target_means(estimand, focal):
    """n = 5000 from a known multinomial logit: in every level, weighted means of a covariate and of the potential
    outcome recover the estimand's target means within 4 Monte-Carlo SEs.

    The targets E[h(X) f(X)] / E[h(X)] (h = 1, p_focal(X), 1/Σ_k 1/p_k(X)) are computed from the true scores on
    400,000 draws (their own error is ~0.003 SE); the SE of a weighted mean is its linearisation
    sqrt(Σ w²(y − ȳ_w)²)/Σ w, which ignores the (variance-reducing) estimation of the scores.
    """
    rng = np.random.default_rng(7)
    X, t, _ = simulate_multi(rng, n=5000, p=2)
    Xbig, _, proba_big = simulate_multi(np.random.default_rng(8), n=400_000, p=2)
    tilt = {"ATE": np.ones(len(Xbig)), "ATT": proba_big[:, 2],
            "ATO": 1.0 / (1.0 / proba_big).sum(axis=1)}[estimand]
    pw = PropensityWeights(estimand, treated=focal).fit(X, t)
    w = pw.weights_
    for k, level in enumerate("abc"):
        # potential outcome Y(k) = k + X1 + X1 X2 + noise (nonlinear in X, so not balanced by the model's terms)
        y = k + X[:, 0] + X[:, 0] * X[:, 1] + rng.normal(size=len(t))
        truth_y = _target_mean(k + Xbig[:, 0] + Xbig[:, 0] * Xbig[:, 1], tilt)
        for values, truth in [(X[:, 0], _target_mean(Xbig[:, 0], tilt)), (y, truth_y)]:
            m = t == level
            mean = np.average(values[m], weights=w[m])
            se = np.sqrt(np.sum(w[m] ** 2 * (values[m] - mean) ** 2)) / w[m].sum()
            assert abs(mean - truth) < 4 * se, (level, mean, truth, se)


# ---------------------------------------------------------------------------------------------------------------
# the M-estimation parts
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimand, focal, clip", [("ATE", None, None), ("ATT", "b", None), ("ATO", None, None),
                                                   ("ATE", None, (0.15, 0.9))])
def test_m_parts_are_consistent(rng, estimand, focal, clip):
    X, t, _ = simulate_multi(rng, n=400)
    sw = rng.uniform(0.5, 2, len(t))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the clip's report
        pw = PropensityWeights(estimand, treated=focal, clip=clip).fit(X, t, sample_weight=sw)
        parts = pw._m_parts(X, t, sample_weight=sw)
    theta = parts.params
    assert parts.names[:4] == ("b:(Intercept)", "b:x0", "b:x1", "c:(Intercept)") and len(parts.names) == 6
    # the score is solved at the estimates (to the MLE's tolerance, 1e-8 in SD units)
    assert_allclose(parts.psi(theta).sum(axis=0), 0, atol=1e-8)
    assert_allclose(parts.weights(theta), pw.weights_, rtol=1e-12)
    # analytic derivatives against central differences (error O(h^2) ~ 1e-10 relative to the entries' size)
    assert_allclose(parts.psi_jacobian(theta), _numerical_jacobian(lambda v: parts.psi(v).sum(axis=0), theta),
                    rtol=1e-6, atol=1e-6)
    assert_allclose(parts.weights_jacobian(theta), _numerical_jacobian(parts.weights, theta), rtol=1e-5, atol=1e-7)


def test_m_parts_on_lalonde_solve_the_score(ate_fit, race):
    parts = ate_fit._m_parts(*race)
    assert parts.names[0] == "hispan:(Intercept)" and parts.names[7] == "white:(Intercept)"
    # the score in dollars-scaled columns (re74 up to 35,000): zero relative to the size of its terms
    scale = np.abs(parts.psi(parts.params)).sum(axis=0)
    assert np.all(np.abs(parts.psi(parts.params).sum(axis=0)) < 1e-10 * scale)


def test_weights_from_propensity_refuses_bad_score_matrices():
    t = np.array(["a", "b", "c", "a"])
    ps = np.array([[0.5, 0.25, 0.25], [0.2, 0.4, 0.4], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])
    with pytest.raises(ValueError, match="must sum to one"):
        weights_from_propensity(ps * 0.9, t)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        weights_from_propensity(np.array([[1.0, 0.0, 0.0], *ps[1:]]), t)
    with pytest.raises(ValueError, match=r"no column for the treatment level\(s\) \['c'\]"):
        weights_from_propensity(pd.DataFrame(ps, columns=["a", "b", "x"]), t)
    with pytest.raises(ValueError, match="needs the focal level"):
        weights_from_propensity(ps, t, "ATT")
    with pytest.raises(ValueError, match=r"estimand='ATC' is not supported"):
        weights_from_propensity(ps, t, "ATC")
    with pytest.raises(ValueError, match="4 columns but the treatment has 3 levels"):
        weights_from_propensity(np.column_stack([ps, ps[:, :1]]) / 1.0, t)


def test_score_of_integer_coded_levels_equals_score_of_their_labels(race):
    """score() with integer level codes (treatment_type='multi-category' on the weighter) is the score of the same
    treatment given as labels: the codes 0, 1, 2 are the labels black, hispan, white relabelled, and the mean
    absolute SMD over the pairwise comparisons does not depend on the names (up to rounding, 1e-12). Before, score()
    validated the codes again without the weighter's treatment_type and raised (cross_val_score returned NaN)."""
    X, labels = race
    codes = pd.Series(pd.Categorical(labels, categories=LEVELS).codes.astype(int), index=labels.index)
    by_label = PropensityWeights().fit(X, labels).score(X, labels)
    by_code = PropensityWeights(treatment_type="multi-category").fit(X, codes).score(X, codes)
    assert by_code == pytest.approx(by_label, rel=1e-12, abs=0)


def test_precomputed_scores_frame_columns_matched_by_level_name(race):
    """A DataFrame of precomputed generalised scores whose columns are the level names in another order gives the
    weights of the fitted model (its ps_ as reference, 1e-15: the same numbers), as weights_from_propensity does;
    before, the columns were taken by position and the weights were silently those of permuted scores. Columns
    that name only some levels are refused."""
    X, t = race
    for estimand, treated in [("ATE", None), ("ATT", "hispan"), ("ATO", None)]:
        fitted = PropensityWeights(estimand, treated=treated).fit(X, t)
        shuffled = fitted.ps_[["white", "black", "hispan"]]
        pre = PropensityWeights(estimand, treated=treated, model="precomputed").fit(shuffled, t)
        assert_allclose(pre.weights_, fitted.weights_, rtol=1e-15)
        assert_allclose(pre.predict_weights(shuffled.iloc[:50], t.iloc[:50]), fitted.weights_.iloc[:50], rtol=1e-15)
        assert_allclose(weights_from_propensity(shuffled, t, estimand, treated=treated), fitted.weights_, rtol=1e-15)
    renamed = fitted.ps_.set_axis(["black", "hispan", "asian"], axis=1)
    with pytest.raises(ValueError, match="name the levels"):
        PropensityWeights(model="precomputed").fit(renamed, t)


def test_quasi_separation_of_a_level_is_not_converged_and_refuses_the_sandwich(race):
    """A covariate equal to one level's indicator drives that level's scores to 0/1: the multinomial logit has no
    finite maximum, so the fit is reported as not converged (it said converged_=True before, and asympt SEs came
    out as usual), and vcov='asympt' is refused."""
    X, labels = race
    X2 = X.assign(flag=(labels == "hispan").astype(float))
    with pytest.warns(ConvergenceWarning, match="multinomial logit is \\(quasi-\\)separated"):
        fit = PropensityWeights().fit(X2, labels)
    assert not fit.converged_ and fit.n_bounded_ > 0
    y = np.random.default_rng(0).normal(size=len(labels))
    with pytest.raises(ValueError, match="did not converge"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        WeightedEffect(PropensityWeights()).fit(X2, labels, y)


def test_treated_with_a_multi_category_ate_is_an_error(race):
    X, labels = race
    with pytest.raises(ValueError, match="names the focal level of an ATT, but estimand='ATE'"):
        PropensityWeights("ATE", treated="hispan").fit(X, labels)


def test_prediction_on_new_data_with_only_some_of_the_fitted_levels(race):
    """A fitted multinomial model predicts for any subset of its levels: the new treatment is coded against the
    fitted levels (it raised a misleading treatment_type error before; found by the review). The weights of the
    units kept equal those of the full-data prediction; a level the fit never saw is refused."""
    X, labels = race
    fit = PropensityWeights().fit(X, labels)
    kept = (labels != "hispan").to_numpy()
    subset = fit.predict_weights(X[kept], labels[kept])
    assert_allclose(np.asarray(subset), np.asarray(fit.weights_)[kept], rtol=1e-14, atol=0)
    other = labels.astype(object).where(labels != "hispan", "asian")
    with pytest.raises(ValueError, match=r"level\(s\) \['asian'\] not among the fitted levels"):
        fit.predict_weights(X, other)
