"""WeightedEffect against R WeightIt 1.5.1, closed-form influence functions, identities and simulations."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from balance import PropensityWeights, WeightedEffect
from balance.weights import weights_from_propensity

from .conftest import COVARIATES

ORACLE_MODELS = {"simple": "simple", "additive": "additive", "interact": "gcomp_interact"}


@pytest.fixture(scope="module")
def glm_effects(oracle):
    return oracle("effects_ATT").query("method == 'glm'").set_index("outcome_model")


def _fit(lalonde, outcome_model="simple", vcov="asympt", **kwargs):
    return WeightedEffect(PropensityWeights(estimand="ATT"), outcome_model, vcov, **kwargs).fit(
        lalonde[COVARIATES], lalonde["treat"], lalonde["re78"])


# ---------------------------------------------------------------------------------------------------------------
# WeightIt oracle
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", sorted(ORACLE_MODELS))
@pytest.mark.parametrize("vcov, column", [("asympt", "se_asympt"), ("HC0", "se_hc0")])
def test_matches_weightit(lalonde, glm_effects, model, vcov, column):
    ref = glm_effects.loc[ORACLE_MODELS[model]]
    # WeightIt's g-computation (marginaleffects) holds the target sample's covariates fixed
    fit = _fit(lalonde, model, vcov, condition_on_covariates=True)
    # the estimate is exact algebra on weights converged to ~1e-9 (see test_propensity): 1e-7 relative
    assert_allclose(fit.estimate_, ref["estimate"], rtol=1e-7)
    assert_allclose(fit.se_, ref[column], rtol=1e-6)
    assert fit.vcov_type_ == vcov and fit.result_.accounts_for_weight_estimation == (vcov == "asympt")


def test_population_covariates_widen_the_gcomputation_se(lalonde, glm_effects):
    fixed = _fit(lalonde, "interact", condition_on_covariates=True)
    population = _fit(lalonde, "interact")
    assert population.estimate_ == fixed.estimate_
    assert population.se_ > fixed.se_
    # for the simple and additive (linear) models the option changes nothing: mu1 - mu0 does not depend on X
    for model in ("simple", "additive"):
        assert_allclose(_fit(lalonde, model).se_, _fit(lalonde, model, condition_on_covariates=True).se_, rtol=1e-12)


@pytest.mark.parametrize("model", ["simple", "additive"])
def test_bootstrap_matches_weightit_within_monte_carlo_error(lalonde, glm_effects, model):
    fit = _fit(lalonde, model, "bootstrap", n_bootstrap=999, random_state=11, n_jobs=2)
    # the SE of a bootstrap SE at R = 999 is about SE/sqrt(2R) = 2.2%; two independent runs differ by ~3%: 5% bound
    assert_allclose(fit.se_, glm_effects.loc[model, "se_bs"], rtol=0.05)
    assert fit.n_failed_ == 0 and fit.result_.draws.shape == (999, 3)


# ---------------------------------------------------------------------------------------------------------------
# closed forms (variance.md §3 and §5)
# ---------------------------------------------------------------------------------------------------------------
def _logistic_pieces(lalonde):
    X = pd.get_dummies(lalonde[COVARIATES], columns=["race"], drop_first=True, dtype=float)
    design = np.column_stack([np.ones(len(X)), X.to_numpy()])
    ps = PropensityWeights().fit(lalonde[COVARIATES], lalonde["treat"]).ps_.to_numpy()
    return design, ps, lalonde["treat"].to_numpy(), lalonde["re78"].to_numpy()


def test_ate_se_equals_lunceford_davidian_closed_form(lalonde):
    X, e, a, y = _logistic_pieces(lalonde)
    mu1 = np.sum(a * y / e) / np.sum(a / e)
    mu0 = np.sum((1 - a) * y / (1 - e)) / np.sum((1 - a) / (1 - e))
    n = len(y)
    # IF_i = I_i − Hᵀ E⁻¹ S_i with Hájek-normalised I (the normalising sums enter as the mean of 1/e over arms)
    i_term = n * (a * (y - mu1) / e / np.sum(a / e) - (1 - a) * (y - mu0) / (1 - e) / np.sum((1 - a) / (1 - e)))
    score = X * (a - e)[:, None]
    info = (X * (e * (1 - e))[:, None]).T @ X / n
    h = (X * (n * (a * (y - mu1) * (1 - e) / e / np.sum(a / e)
                   + (1 - a) * (y - mu0) * e / (1 - e) / np.sum((1 - a) / (1 - e))))[:, None]).mean(axis=0)
    influence = i_term - score @ np.linalg.solve(info, h)
    se = np.sqrt(np.sum(influence**2)) / n
    fit = WeightedEffect(PropensityWeights("ATE")).fit(lalonde[COVARIATES], lalonde["treat"], lalonde["re78"])
    assert_allclose(fit.estimate_, mu1 - mu0, rtol=1e-10)
    assert_allclose(fit.se_, se, rtol=1e-8)


def test_att_se_equals_reifeis_hudgens_closed_form(lalonde):
    X, e, a, y = _logistic_pieces(lalonde)
    r = e / (1 - e)
    mu1 = y[a == 1].mean()
    mu0 = np.sum((1 - a) * r * y) / np.sum((1 - a) * r)
    # q normalises the Hájek control mean (sum of control odds / n); variance.md §5 writes p = P(A = 1), its limit
    n, p, q = len(y), a.mean(), np.mean((1 - a) * r)
    score = X * (a - e)[:, None]
    info = (X * (e * (1 - e))[:, None]).T @ X / n
    h_t = (X * ((1 - a) * r * (y - mu0))[:, None]).mean(axis=0)
    influence = a * (y - mu1) / p - ((1 - a) * r * (y - mu0) + score @ np.linalg.solve(info, h_t)) / q
    se = np.sqrt(np.sum(influence**2)) / n
    fit = _fit(lalonde)
    assert_allclose(fit.se_, se, rtol=1e-8)
    assert_allclose(fit.se_, 798.154627084133, rtol=1e-6)  # and WeightIt's se_asympt, as above


# ---------------------------------------------------------------------------------------------------------------
# scales, clusters, identities
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def binary_outcome(lalonde):
    return (lalonde["re78"] > 0).astype(int)


@pytest.mark.parametrize("scale", ["rr", "or"])
def test_ratio_scales_follow_the_delta_method(lalonde, binary_outcome, scale):
    X, t = lalonde[COVARIATES], lalonde["treat"]
    diff = WeightedEffect(PropensityWeights("ATT")).fit(X, t, binary_outcome).result_
    ratio = WeightedEffect(PropensityWeights("ATT"), scale=scale).fit(X, t, binary_outcome)
    mu1, mu0 = diff.estimate["mu1"], diff.estimate["mu0"]
    v = diff.vcov.loc[["mu1", "mu0"], ["mu1", "mu0"]].to_numpy()
    grad = np.array([1 / mu1, -1 / mu0]) if scale == "rr" else np.array([1 / (mu1 * (1 - mu1)), -1 / (mu0 * (1 - mu0))])
    expected = mu1 / mu0 if scale == "rr" else (mu1 / (1 - mu1)) / (mu0 / (1 - mu0))
    assert_allclose(ratio.estimate_, expected, rtol=1e-12)
    assert_allclose(ratio.se_, np.sqrt(grad @ v @ grad), rtol=1e-10)
    ci = ratio.conf_int().iloc[0]
    assert_allclose(np.log([ci["lower"], ci["upper"]]), np.log(expected) + np.array([-1, 1]) * 1.959963984540054 * ratio.se_,
                    rtol=1e-10)


def test_one_unit_clusters_equal_the_unclustered_sandwich(lalonde):
    plain = _fit(lalonde, "additive")
    clustered = WeightedEffect(PropensityWeights("ATT"), "additive").fit(
        lalonde[COVARIATES], lalonde["treat"], lalonde["re78"], cluster=np.arange(len(lalonde)))
    n = len(lalonde)
    # G = n clusters of one: the meat is the unclustered one times the G/(G − 1) factor
    assert_allclose(clustered.se_, plain.se_ * np.sqrt(n / (n - 1)), rtol=1e-10)
    assert clustered.result_.vcov_config["clusters"] == n


def test_clusters_change_the_se(lalonde):
    groups = np.arange(len(lalonde)) // 6
    fit = WeightedEffect(PropensityWeights("ATT")).fit(lalonde[COVARIATES], lalonde["treat"], lalonde["re78"],
                                                       cluster=groups)
    assert fit.result_.vcov_config["clusters"] == len(np.unique(groups)) and "cluster-robust" in str(fit.result_)


def test_pipeline_weighter_treats_preprocessing_as_fixed(lalonde):
    numeric = ["age", "educ", "married", "nodegree", "re74", "re75"]
    prep = ColumnTransformer([("num", StandardScaler(), numeric), ("cat", OneHotEncoder(drop="first"), ["race"])])
    pipe = make_pipeline(prep, PropensityWeights(estimand="ATT"))
    fit = WeightedEffect(pipe).fit(lalonde[COVARIATES], lalonde["treat"], lalonde["re78"])
    # the same logistic model on rescaled columns: same weights, same stacked SE
    assert_allclose(fit.se_, 798.154627084133, rtol=1e-6)
    assert any("preprocessing" in note for note in fit.result_.notes)


def test_asympt_refused_without_estimating_equations(lalonde):
    gb = PropensityWeights("ATT", model=GradientBoostingClassifier(n_estimators=10, random_state=0))
    with pytest.raises(ValueError, match="vcov='asympt' is not available.*bootstrap"):
        WeightedEffect(gb).fit(lalonde[COVARIATES], lalonde["treat"], lalonde["re78"])
    hc0 = WeightedEffect(gb, vcov="HC0").fit(lalonde[COVARIATES], lalonde["treat"], lalonde["re78"])
    assert not hc0.result_.accounts_for_weight_estimation


def test_bootstrap_is_identical_across_n_jobs(lalonde):
    runs = [_fit(lalonde, "simple", kind, n_bootstrap=24, random_state=5, n_jobs=jobs).result_.draws
            for kind in ("bootstrap", "fwb") for jobs in (1, 2)]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    pd.testing.assert_frame_equal(runs[2], runs[3])
    assert not runs[0].equals(runs[2])


def test_failed_replicates_are_counted_and_reported():
    # 8 units, 2 treated: many resamples lose a group, and the weighter refuses them
    X = np.arange(8.0).reshape(-1, 1)
    t = np.array([1, 0, 0, 1, 0, 0, 0, 0])
    y = np.arange(8.0)
    with pytest.warns(UserWarning, match=r"\d+ of 60 bootstrap replicates failed"):
        fit = WeightedEffect(PropensityWeights("ATE"), vcov="bootstrap", n_bootstrap=60, random_state=0).fit(X, t, y)
    assert fit.n_failed_ > 0 and fit.result_.draws.isna().all(axis=1).sum() == fit.n_failed_


def test_percentile_and_normal_intervals(lalonde):
    fit = _fit(lalonde, "simple", "fwb", n_bootstrap=200, random_state=3)
    draws = fit.result_.draws
    pct = fit.conf_int(0.1)
    assert_allclose(pct.loc["ATT"], draws["ATT"].quantile([0.05, 0.95]).to_numpy(), rtol=1e-12)
    normal = fit.conf_int(0.1, method="normal")
    assert_allclose(normal.loc["ATT"], fit.estimate_ + np.array([-1, 1]) * 1.6448536269514722 * fit.se_, rtol=1e-10)
    assert_allclose(fit.se_, draws["ATT"].std(ddof=1), rtol=1e-12)


def test_summary_and_potential_outcomes(lalonde):
    fit = _fit(lalonde)
    table = fit.summary()
    assert list(table.columns) == ["estimate", "std_err", "statistic", "p_value", "ci_lower", "ci_upper"]
    assert list(table.index) == ["ATT", "mu1", "mu0"]
    # with ATT weights the treated mean is the plain treated mean
    assert_allclose(fit.potential_outcomes_.loc["mu1", "estimate"], lalonde.loc[lalonde.treat == 1, "re78"].mean(),
                    rtol=1e-12)
    assert_allclose(table.loc["ATT", "estimate"], table.loc["mu1", "estimate"] - table.loc["mu0", "estimate"], rtol=1e-12)
    text = str(fit.result_)
    assert "variance: asympt" in text and "ESS" in text


# ---------------------------------------------------------------------------------------------------------------
# AIPW: double robustness with known truth
# ---------------------------------------------------------------------------------------------------------------
def _dr_design(rng, n):
    x = rng.normal(size=(n, 2))
    e = 1 / (1 + np.exp(-(0.3 + 0.8 * x[:, 0] - 0.5 * x[:, 1])))
    a = rng.binomial(1, e)
    y = 1 + x[:, 0] + 0.5 * x[:, 1] ** 2 + a * 2.0 + rng.normal(size=n)  # ATE 2; linear model misses x1²
    return x, a, y


def test_aipw_is_consistent_with_a_wrong_outcome_model(rng):
    x, a, y = _dr_design(rng, 20000)
    fit = WeightedEffect(PropensityWeights("ATE"), "aipw").fit(x, a, y)
    # the propensity model is right, the linear outcome model is wrong: the estimate is still consistent
    assert abs(fit.estimate_ - 2.0) < 4 * fit.se_
    assert fit.se_ < 0.1


def test_aipw_is_consistent_with_a_wrong_propensity_model(rng):
    x, a, y = _dr_design(rng, 20000)
    covariates = np.column_stack([x, x[:, 1] ** 2])
    # the propensity model omits x0 (wrong), the outcome model is right (x1² included)
    weighter = make_pipeline(ColumnTransformer([("keep", "passthrough", [1, 2])]), PropensityWeights("ATE"))
    fit = WeightedEffect(weighter, "aipw").fit(covariates, a, y)
    simple = WeightedEffect(weighter, "simple").fit(covariates, a, y)
    assert abs(fit.estimate_ - 2.0) < 4 * fit.se_
    assert abs(simple.estimate_ - 2.0) > 10 * simple.se_  # the weighting alone is biased here


def test_aipw_with_a_saturated_outcome_model_is_the_regression_estimate(rng):
    # when the outcome model fits each arm exactly, the residual term vanishes: AIPW = g-computation
    x = rng.integers(0, 3, 300).astype(float)
    a = rng.binomial(1, 0.4 + 0.1 * x)
    y = 2 * x + 3 * a + a * x
    dummies = np.column_stack([x == 1, x == 2]).astype(float)
    aipw = WeightedEffect(PropensityWeights("ATE"), "aipw", "HC0").fit(dummies, a, y)
    gcomp = WeightedEffect(PropensityWeights("ATE"), "interact", "HC0").fit(dummies, a, y)
    assert_allclose(aipw.estimate_, gcomp.estimate_, rtol=1e-10)
    assert_allclose(aipw.estimate_, np.mean(3 + x), rtol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, y_change, match", [
    ({}, "nan", "y has 1 missing"),
    ({}, "text", "y must be numeric"),
    ({"scale": "rr"}, None, "needs a binary"),
    ({"family": "binomial", "outcome_model": "additive"}, None, "binary"),
    ({"outcome_model": "fancy"}, None, "outcome_model='fancy'"),
    ({"vcov": "jackknife"}, None, r"vcov='jackknife'; choose one of \['asympt', 'HC0', 'bootstrap', 'fwb'\]"),
])
def test_bad_outcome_and_options(lalonde, kwargs, y_change, match):
    y = lalonde["re78"].copy()
    if y_change == "nan":
        y.iloc[4] = np.nan
    elif y_change == "text":
        y = y.astype(str) + "$"
    with pytest.raises((ValueError, TypeError), match=match):
        WeightedEffect(PropensityWeights("ATT"), **kwargs).fit(lalonde[COVARIATES], lalonde["treat"], y)


def test_cluster_of_wrong_length(lalonde):
    with pytest.raises(ValueError, match="cluster has 10 entries but X has 614 rows"):
        WeightedEffect(PropensityWeights("ATT")).fit(lalonde[COVARIATES], lalonde["treat"], lalonde["re78"],
                                                     cluster=np.arange(10))


def test_sample_weights_equal_repeated_rows(lalonde):
    sw = np.random.default_rng(2).integers(1, 4, len(lalonde))
    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    weighted = WeightedEffect(PropensityWeights("ATT"), "interact").fit(X, t, y, sample_weight=sw)
    rows = np.repeat(np.arange(len(lalonde)), sw)
    repeated = WeightedEffect(PropensityWeights("ATT"), "interact").fit(X.iloc[rows], t.iloc[rows], y.iloc[rows])
    assert_allclose(weighted.estimate_, repeated.estimate_, rtol=1e-9)
    # sampling (survey) weights, as WeightIt's s.weights: each unit is one draw, so the SE is not that of the
    # repeated rows (which would pretend to have sum(sw) independent units)
    assert weighted.se_ > repeated.se_
    assert_allclose(weights_from_propensity(weighted.weighter_.ps_, t, "ATT") * sw, weighted.weighter_.weights_,
                    rtol=1e-12)


def test_bootstrap_on_a_dask_cluster_is_identical(lalonde):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_backend

    local = _fit(lalonde, "simple", "bootstrap", n_bootstrap=16, random_state=9).result_.draws
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster), parallel_backend("dask"):
        remote = _fit(lalonde, "simple", "bootstrap", n_bootstrap=16, random_state=9, n_jobs=2).result_.draws
    pd.testing.assert_frame_equal(local, remote)


@pytest.mark.parametrize("kind", ["bootstrap", "fwb"])
def test_cluster_bootstrap_with_singleton_clusters_is_the_unit_bootstrap(lalonde, kind):
    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    plain = WeightedEffect(PropensityWeights("ATT"), vcov=kind, n_bootstrap=12, random_state=4).fit(X, t, y)
    clustered = WeightedEffect(PropensityWeights("ATT"), vcov=kind, n_bootstrap=12, random_state=4).fit(
        X, t, y, cluster=np.arange(len(y)))
    pd.testing.assert_frame_equal(plain.result_.draws, clustered.result_.draws)


def test_cluster_bootstrap_resamples_whole_clusters(lalonde):
    # with 4 clusters, a replicate holds whole clusters: the number of distinct potential-outcome draws is small
    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    groups = np.arange(len(y)) % 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = WeightedEffect(PropensityWeights("ATT"), vcov="bootstrap", n_bootstrap=40, random_state=0).fit(
            X, t, y, cluster=groups)
    # 4 clusters resampled with replacement give at most C(7, 4) = 35 distinct multisets
    assert fit.result_.draws["mu1"].round(8).nunique() <= 35


def test_cluster_draw_is_the_chosen_clusters_rows_in_order():
    """The O(n) cluster draw against its definition: for each chosen cluster (in the order drawn), that cluster's
    rows in row order; the fwb gives each row its cluster's weight. Unequal sizes, string labels, unsorted rows."""
    from balance.effects._bootstrap import cluster_layout, replicate_draws

    labels = np.random.default_rng(0).choice(["a", "bb", "c", "d", "e"], size=57, p=[0.5, 0.2, 0.1, 0.1, 0.1])
    codes, uniques = pd.factorize(labels)
    layout = cluster_layout(labels)
    for seed in range(5):
        chosen = np.random.default_rng(seed).integers(0, len(uniques), len(uniques))
        expected = np.concatenate([np.flatnonzero(codes == c) for c in chosen])
        draw = replicate_draws("bootstrap", np.random.default_rng(seed), len(labels), layout)
        np.testing.assert_array_equal(draw, expected)
        unit = np.random.default_rng(seed).exponential(1.0, len(uniques))[codes]
        np.testing.assert_array_equal(replicate_draws("fwb", np.random.default_rng(seed), len(labels), layout), unit)


class _SeedRecorder(PropensityWeights):
    """PropensityWeights with a ``random_state`` whose every fit is recorded (joblib runs in-process here)."""

    seen = []

    def __init__(self, estimand="ATT", *, random_state=None):
        super().__init__(estimand)
        self.random_state = random_state

    def fit(self, X, treatment, sample_weight=None):
        type(self).seen.append(self.random_state)
        return super().fit(X, treatment, sample_weight)


@pytest.mark.parametrize("inner", [None, 7])
def test_each_replicate_seeds_the_weighter_from_the_bootstrap(lalonde, inner):
    """Every replicate gets its own seed (not None, not the weighter's one int), the same in every run."""
    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    runs = []
    for _ in range(2):
        _SeedRecorder.seen = []
        WeightedEffect(_SeedRecorder(random_state=inner), vcov="bootstrap", n_bootstrap=6, random_state=0).fit(X, t, y)
        runs.append(_SeedRecorder.seen[1:])  # the first fit is the estimate itself, with the weighter's own seed
    assert _SeedRecorder.seen[0] == inner
    assert runs[0] == runs[1] and len(set(runs[0])) == 6 and all(isinstance(s, int) for s in runs[0])


def test_bootstrap_of_a_randomised_weighter_is_reproducible(lalonde):
    """UniformTransformerWeights draws at random: with the bootstrap's random_state the draws repeat exactly, whether
    the weighter's own random_state is None or any int (each replicate's seed comes from the bootstrap)."""
    from balance import UniformTransformerWeights

    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    draws = [WeightedEffect(UniformTransformerWeights("ATT", random_state=inner), vcov="bootstrap", n_bootstrap=4,
                            random_state=3).fit(X, t, y).result_.draws for inner in (None, None, 1)]
    pd.testing.assert_frame_equal(draws[0], draws[1])
    pd.testing.assert_frame_equal(draws[0], draws[2])


@pytest.mark.parametrize("estimand", ["ATO", "ATM", "ATOS"])
def test_conditioning_on_covariates_is_refused_where_the_target_weights_are_the_weights(lalonde, estimand):
    """For these estimands the averaging weights are the analysis weights, random through the treatment as well:
    zeroing their equations would drop that variance too, so conditioning is refused (the simple model has no
    averaging equations and the bootstraps never condition, so both stay available)."""
    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    with pytest.raises(ValueError, match=f"condition_on_covariates=True is not available for the {estimand}"):
        WeightedEffect(PropensityWeights(estimand), "interact", condition_on_covariates=True).fit(X, t, y)
    WeightedEffect(PropensityWeights(estimand), "simple", condition_on_covariates=True).fit(X, t, y)


def test_no_progress_bar_when_not_a_terminal(lalonde, capsys):
    _fit(lalonde, "simple", "bootstrap", n_bootstrap=4, random_state=0, verbose=1)
    assert capsys.readouterr().err == ""


def test_asympt_refuses_unconverged_weights(lalonde):
    with pytest.warns(Warning):
        with pytest.raises(ValueError, match="did not converge; fix the weights' convergence or use vcov='bootstrap'"):
            WeightedEffect(PropensityWeights("ATT", max_iter=1)).fit(lalonde[COVARIATES], lalonde["treat"],
                                                                     lalonde["re78"])


def test_balance_table_reads_a_pipeline(lalonde):
    from balance import balance_table

    numeric = ["age", "educ", "married", "nodegree", "re74", "re75"]
    prep = ColumnTransformer([("num", StandardScaler(), numeric), ("cat", OneHotEncoder(drop="first"), ["race"])])
    pipe = make_pipeline(prep, PropensityWeights(estimand="ATT")).fit(lalonde[COVARIATES], lalonde["treat"])
    table = balance_table(lalonde[COVARIATES], lalonde["treat"], pipe)
    direct = balance_table(lalonde[COVARIATES], lalonde["treat"], pipe[-1].weights_, estimand="ATT")
    pd.testing.assert_frame_equal(table, direct)
