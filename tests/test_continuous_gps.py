"""Continuous treatments in PropensityWeights (the generalised propensity score) and CBPS (the CBGPS): WeightIt
1.5.1's weights, ESS and outcome-model SEs on lalonde (treatment re75), the M-estimation parts by identities,
scale invariance, frequency weights, a simulation with known truth, the kernel density, and bad inputs."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.stats import norm
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

from balance import CBPS, ExtremeWeightsWarning, PropensityWeights, WeightedEffect
from balance.effects._outcome import OutcomeEquations
from balance.effects._sandwich import numerical_jacobian, stacked_cov
from balance.weights._gps import bw_nrd0, kernel_density

from .conftest import SHARED, _shared_file

CONTINUOUS = SHARED / "oracle" / "weightit-continuous"
COVARIATES = ["age", "educ", "race", "married", "nodegree", "re74"]


def continuous_oracle(name):
    frame = pd.read_csv(_shared_file(CONTINUOUS / name))
    return frame.set_index("id") if "id" in frame else frame


@pytest.fixture(scope="module")
def dose(lalonde):
    """WeightIt's documentation example: re75 on the other covariates."""
    return lalonde[COVARIATES], lalonde["re75"]


@pytest.fixture(scope="module")
def fits(dose):
    return {"glm": PropensityWeights().fit(*dose), "cbps": CBPS().fit(*dose)}


def simulate_dose(rng, n=2000, p=3, effect=2.0, strength=1.0):
    """A normal linear treatment model A = Xγ + ε and outcome y = effect·A + X·1 + noise (confounded), γ =
    strength·(0.8, ..., −0.4)."""
    X = rng.normal(size=(n, p))
    a = X @ (strength * np.linspace(0.8, -0.4, p)) + rng.normal(size=n)
    y = effect * a + X.sum(axis=1) + rng.normal(size=n)
    return X, a, y


def weighted_ls_equations(y, a, w):
    """The outcome model re78 ~ re75 weighted by w, as estimating equations (written here, independently of
    WeightedEffect, which refuses continuous treatments): ψ = w D (y − Dγ), D = (1, A)."""
    D = np.column_stack([np.ones(len(a)), a])
    gamma = np.linalg.solve((D * w[:, None]).T @ D, (D * w[:, None]).T @ y)
    r = y - D @ gamma
    return OutcomeEquations(params=gamma, names=["(Intercept)", "re75"], psi=D * (w * r)[:, None],
                            jacobian=-(D * w[:, None]).T @ D, dpsi_dw=D * r[:, None], mu_map=np.eye(2),
                            averaging=np.zeros(2, dtype=bool))


# ---------------------------------------------------------------------------------------------------------------
# the WeightIt oracle
# ---------------------------------------------------------------------------------------------------------------
# glm is closed-form algebra (least squares and normal densities): 1e-8 relative. The CBGPS is the root of the
# just-identified balance conditions; WeightIt solves them with rootSolve::multiroot (rtol = atol = 1e-10) before a
# BFGS polish, we with MINPACK's hybrid method to rounding level: 1e-8 relative is WeightIt's tolerance with a wide
# margin (the two agree to about 1e-14 on lalonde).
@pytest.mark.parametrize("method", ["glm", "cbps"])
def test_weights_match_weightit(fits, method):
    ref = continuous_oracle(f"weights/{method}.csv")
    ours = fits[method].weights_
    assert ours.index.equals(ref.index)
    assert_allclose(ours.to_numpy(), ref["weight"].to_numpy(), rtol=1e-8, atol=0)
    assert fits[method].converged_ and fits[method].treatment_type_ == "continuous"


@pytest.mark.parametrize("method", ["glm", "cbps"])
def test_weight_summary_and_ess_match_weightit(fits, method):
    ref = continuous_oracle("weight_summary.csv").set_index("case").loc[method]
    w = fits[method].weights_
    assert_allclose([w.min(), w.max(), w.sum(), fits[method].ess_["all"]],
                    ref[["min_w", "max_w", "sum_w", "ess_weighted"]].to_numpy(float), rtol=1e-8)


@pytest.mark.parametrize("method", ["glm", "cbps"])
def test_hc0_slope_matches_weightit(fits, lalonde, method):
    """HC0: the weighted least-squares sandwich with the weights fixed (1e-6 relative, the issue's tolerance)."""
    eq = weighted_ls_equations(lalonde["re78"].to_numpy(), lalonde["re75"].to_numpy(),
                               fits[method].weights_.to_numpy())
    ref = continuous_oracle("coefficients.csv").query("case == @method and vcov == 'HC0'").set_index("term")
    assert_allclose(eq.params, ref.loc[["(Intercept)", "re75"], "estimate"], rtol=1e-6)
    assert_allclose(np.sqrt(np.diag(stacked_cov(eq)[0])), ref.loc[["(Intercept)", "re75"], "se"], rtol=1e-6)


def test_asympt_slope_matches_weightit(fits, dose, lalonde):
    """asympt: the outcome equations stacked with the GPS model's MParts (WeightIt's M-estimation), 1e-6."""
    eq = weighted_ls_equations(lalonde["re78"].to_numpy(), lalonde["re75"].to_numpy(),
                               fits["glm"].weights_.to_numpy())
    cov, kind = stacked_cov(eq, None, fits["glm"]._m_parts(*dose))
    ref = continuous_oracle("coefficients.csv").query("case == 'glm' and vcov == 'asympt'").set_index("term")
    assert kind == "analytic"
    assert_allclose(np.sqrt(np.diag(cov)), ref.loc[["(Intercept)", "re75"], "se"], rtol=1e-6)
    # the covariance entries agree to 1.5e-6 (2e-6 allowed), while HC0 agrees to 2e-14: WeightIt differentiates the
    # weight model's equations by central differences (step 1e-8 |θ|, its parameters on the unscaled treatment:
    # mean 1.5e3, variance 1e7), ours are analytic (checked against differences in test_m_parts_identities).
    # Repeating WeightIt's computation in numpy in its own parametrisation gives our matrix to 6e-8 with steps of
    # 1e-6 |θ|, but moves by 2e-5 with its 1e-8 |θ|: the gap is of the size of that differencing error
    ref = continuous_oracle("vcov.csv").query("case == 'glm' and vcov == 'asympt'")
    ref = ref.pivot(index="row", columns="col", values="value").loc[["(Intercept)", "re75"], ["(Intercept)", "re75"]]
    assert_allclose(cov, ref.to_numpy(), rtol=2e-6)


def test_glm_coefficients_are_least_squares(fits, dose):
    """coef_ on the original scale equals an ordinary least-squares fit of A on the dummy-coded covariates."""
    X = pd.get_dummies(dose[0], columns=["race"], drop_first=True, dtype=float)
    X = X[["age", "educ", "race_hispan", "race_white", "married", "nodegree", "re74"]]
    ols = LinearRegression().fit(X, dose[1])
    assert_allclose(fits["glm"].coef_, ols.coef_, rtol=1e-9)
    assert_allclose(fits["glm"].intercept_, ols.intercept_, rtol=1e-9)
    resid = dose[1] - ols.predict(X)
    assert_allclose(fits["glm"].sigma_, np.sqrt(np.mean(resid**2)), rtol=1e-10)
    assert_allclose(fits["glm"].ps_, norm.pdf(resid, scale=np.sqrt(np.mean(resid**2))), rtol=1e-9)


def test_cbps_attributes_describe_its_normal_model(fits, dose):
    """ps_ is the normal density of A around intercept_ + X coef_ with SD sigma_, and the weights are the normal
    density ratio f(A; mean, sd) / ps_ (WeightIt's CBPS scale)."""
    X = pd.get_dummies(dose[0], columns=["race"], drop_first=True, dtype=float)
    X = X[["age", "educ", "race_hispan", "race_white", "married", "nodegree", "re74"]].to_numpy()
    cb, a = fits["cbps"], dose[1].to_numpy()
    fitted = cb.intercept_ + X @ cb.coef_
    assert_allclose(cb.ps_, norm.pdf(a, fitted, cb.sigma_), rtol=1e-9)
    assert_allclose(cb.treatment_mean_, a.mean(), rtol=1e-12)
    assert_allclose(cb.treatment_sd_, a.std(), rtol=1e-12)
    assert_allclose(cb.weights_, norm.pdf(a, a.mean(), a.std()) / cb.ps_, rtol=1e-9)
    assert_allclose(cb.sigma_, np.sqrt(np.mean((a - fitted) ** 2)), rtol=1e-10)


@pytest.mark.parametrize("options", [{"moments": 2}, {"interactions": True}])
def test_cbps_balances_higher_moments_and_interactions(options):
    """moments / interactions add terms to the balance conditions: the weighted treatment is uncorrelated with
    age² (or age·educ) as well."""
    X, a, _ = simulate_dose(np.random.default_rng(5), n=1000, strength=0.5)
    X = pd.DataFrame(X, columns=["age", "educ", "x3"])
    cb = CBPS(**options).fit(X, a)
    term = X["age"] ** 2 if "moments" in options else X["age"] * X["educ"]
    assert cb.converged_ and ("age^2" in cb.terms_ or "age:educ" in cb.terms_)
    v = cb.weights_ / cb.weights_.sum()
    cov = np.sum(v * (term - np.sum(v * term)) * (a - np.sum(v * a)))
    assert abs(cov / (term.std() * a.std())) < 1e-10


def test_cbps_weighted_treatment_uncorrelated_with_covariates(fits, dose):
    """The CBGPS balance conditions: cobalt's weighted covariance of A with every covariate (and every race level)
    is zero and the weighted mean of A is its mean (WeightIt's Corr.Adj for cbps is ~1e-12)."""
    X = pd.get_dummies(dose[0], columns=["race"], dtype=float).to_numpy(float)
    a = dose[1].to_numpy()
    v = fits["cbps"].weights_.to_numpy() / fits["cbps"].weights_.sum()
    cov = v @ ((X - v @ X) * (a - v @ a)[:, None])
    assert np.all(np.abs(cov / (X.std(axis=0) * a.std())) < 1e-10)
    assert_allclose(v @ a, a.mean(), rtol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# M-estimation parts: identities
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["glm", "cbps"])
def test_m_parts_identities(fits, dose, method):
    """The parts reproduce weights_, their estimating equations are zero at the fit, and the analytic Jacobians
    equal central differences (1e-6 relative: the differences' truncation error)."""
    parts = fits[method]._m_parts(*dose)
    theta = parts.params
    assert_allclose(parts.weights(theta), fits[method].weights_.to_numpy(), rtol=1e-12)
    scale = np.abs(parts.psi(theta)).sum(axis=0)
    assert np.all(np.abs(parts.psi(theta).sum(axis=0)) <= 1e-10 * scale)
    assert_allclose(parts.psi_jacobian(theta), numerical_jacobian(lambda t: parts.psi(t).sum(axis=0), theta),
                    rtol=1e-6, atol=1e-6 * np.abs(parts.psi_jacobian(theta)).max())
    dw = parts.weights_jacobian(theta)
    assert_allclose(dw, numerical_jacobian(parts.weights, theta), rtol=1e-6, atol=1e-6 * np.abs(dw).max())
    assert parts.names[:4] == ("Var(A)", "E(A)", "Var(A|X)", "(Intercept)")


@pytest.mark.parametrize("make", [PropensityWeights, CBPS])
def test_m_parts_identities_with_sample_weights(dose, rng, make):
    sw = rng.uniform(0.5, 2.0, size=len(dose[1]))
    est = make().fit(*dose, sample_weight=sw)
    parts = est._m_parts(*dose, sample_weight=sw)
    theta = parts.params
    assert_allclose(parts.weights(theta), est.weights_, rtol=1e-12)
    assert np.all(np.abs(parts.psi(theta).sum(axis=0)) <= 1e-10 * np.abs(parts.psi(theta)).sum(axis=0))
    jac = parts.psi_jacobian(theta)
    assert_allclose(jac, numerical_jacobian(lambda t: parts.psi(t).sum(axis=0), theta), rtol=1e-6,
                    atol=1e-6 * np.abs(jac).max())


def test_cbgps_without_exact_balance_is_reported_and_has_no_m_parts():
    """The CBGPS conditions need not have a root (here every root finder stops at an imbalance near 0.04 SDs): the
    fit is the least-squares minimiser of the conditions, as WeightIt's, but flagged, and refuses M-estimation."""
    X, a, _ = simulate_dose(np.random.default_rng(2), n=4000)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        cb = CBPS().fit(X, a)
    assert not cb.converged_ and 0.01 < cb.imbalance_ < 0.1
    with pytest.raises(ValueError, match="exact balance"):
        cb._m_parts(X, a)


def test_asympt_se_matches_the_sampling_sd_of_the_slope():
    """Known truth by simulation: over 200 samples (n = 2000) of a confounded normal linear design, the mean asympt
    SE of the GPS-weighted slope equals the slope's sampling SD (Monte Carlo error of an SD from 200 draws: 5%;
    15% allowed) and its 95% intervals cover (MC error 1.5%; 90-99% allowed), while HC0 (weights treated as known)
    is clearly conservative (about 1.6 times the SD here).

    The confounding is moderate on purpose: the normal GPS weight f(A)/f(A | X) has a finite k-th moment only for
    k < Var(A) / (Var(A) − Var(A | X)) (here 14). With heavier tails the slope's distribution is heavy-tailed and
    the sandwich understates its SD at these n: at strength 1 (k < 2.2) the mean asympt SE was 0.63 of the SD at
    n = 400; at strength 0.5 (k < 5.8) 0.77 at n = 2000, with 94% coverage."""
    slopes, se_asympt, se_hc0 = [], [], []
    for seed in range(200):
        X, a, y = simulate_dose(np.random.default_rng(1000 + seed), n=2000, strength=0.3)
        pw = PropensityWeights().fit(X, a)
        eq = weighted_ls_equations(y, a, pw.weights_)
        slopes.append(eq.params[1])
        se_asympt.append(np.sqrt(stacked_cov(eq, None, pw._m_parts(X, a))[0][1, 1]))
        se_hc0.append(np.sqrt(stacked_cov(eq)[0][1, 1]))
    slopes, se_asympt = np.array(slopes), np.array(se_asympt)
    sd = np.std(slopes, ddof=1)
    assert abs(np.mean(se_asympt) / sd - 1) < 0.15
    assert 0.90 <= np.mean(np.abs(slopes - 2.0) < 1.96 * se_asympt) <= 0.99
    assert np.mean(se_hc0) / sd > 1.3
    assert abs(np.mean(slopes) - 2.0) < 4 * sd / np.sqrt(200)


# ---------------------------------------------------------------------------------------------------------------
# invariances and frequency weights
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [PropensityWeights, CBPS, lambda: PropensityWeights(density="kernel")])
@pytest.mark.parametrize("scale, shift", [(1e200, 0.0), (1e-200, 0.0), (1.0, 1e6), (-3.0, 7.0)])
def test_weights_do_not_depend_on_treatment_units(dose, make, scale, shift):
    """A is standardised internally: any affine change of units (even 1e200) gives the same weights."""
    X, a = dose
    base = make().fit(X, a).weights_
    moved = make().fit(X, a * scale + shift).weights_
    assert_allclose(moved, base, rtol=1e-9)


@pytest.mark.parametrize("make", [PropensityWeights, CBPS])
def test_integer_sample_weights_equal_repeated_rows(dose, rng, make):
    """Sampling weights are frequency weights. (Not for density="kernel": as R's density, its bandwidth ignores
    the weights, so it differs between the two layouts.)"""
    X, a = dose
    sw = rng.integers(1, 4, size=len(a))
    rows = np.repeat(np.arange(len(a)), sw)
    weighted = make().fit(X, a, sample_weight=sw.astype(float)).weights_.to_numpy()
    repeated = make().fit(X.iloc[rows].reset_index(drop=True), a.iloc[rows].reset_index(drop=True)).weights_
    assert_allclose(np.repeat(weighted / sw, sw), repeated, rtol=1e-9)


def test_regressor_model_reproduces_least_squares(dose):
    """model=LinearRegression() is the default normal linear model computed another way."""
    default = PropensityWeights().fit(*dose)
    regressor = PropensityWeights(model=LinearRegression()).fit(*dose)
    assert_allclose(regressor.weights_, default.weights_, rtol=1e-8)
    assert_allclose(regressor.sigma_, default.sigma_, rtol=1e-10)
    with pytest.raises(NotImplementedError, match="bootstrap"):
        regressor._m_parts(*dose)


# ---------------------------------------------------------------------------------------------------------------
# simulations with known truth
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:CBPS did not converge")  # no exact root in some seeds; still near balance
@pytest.mark.parametrize("make", [PropensityWeights, CBPS, lambda: PropensityWeights(density="kernel"),
                                  lambda: PropensityWeights(model=Ridge(alpha=1.0))])
def test_weights_remove_confounding_of_a_dose(make):
    """y = 2A + ΣX + noise with A confounded by X: the unweighted slope of y on A is biased (2 + 0.6/1.84 ≈ 2.33), the
    GPS-weighted slope is 2 up to sampling error (n = 4000, 5 seeds: mean within 0.05, each within 0.2)."""
    slopes, naive = [], []
    for seed in range(5):
        X, a, y = simulate_dose(np.random.default_rng(seed), n=4000)
        w = make().fit(X, a).weights_
        D = np.column_stack([np.ones_like(a), a])
        slopes.append(np.linalg.lstsq(D * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0][1])
        naive.append(np.linalg.lstsq(D, y, rcond=None)[0][1])
    assert np.mean(naive) > 2.25
    assert abs(np.mean(slopes) - 2.0) < 0.05 and np.all(np.abs(np.array(slopes) - 2.0) < 0.2)


def test_kernel_density_matches_exact_evaluation(rng):
    """The binned FFT density equals the exact weighted Gaussian KDE with the same bandwidth (binning error
    O(spacing²) ≈ 1e-6 relative here; 1e-4 allowed), and the bandwidth is R's bw.nrd0."""
    x = np.concatenate([rng.normal(size=700), rng.exponential(size=300) + 2])
    w = rng.uniform(0.5, 2.0, size=1000)
    bw = bw_nrd0(x)
    q25, q75 = np.quantile(x, [0.25, 0.75])
    assert_allclose(bw, 0.9 * min(x.std(ddof=1), (q75 - q25) / 1.34) * 1000 ** -0.2, rtol=1e-14)
    exact = (w / w.sum()) @ norm.pdf((x[:, None] - x[None, :]) / bw) / bw
    assert_allclose(kernel_density(x, w), exact, rtol=1e-4)


def test_kernel_weights_close_to_normal_weights_for_normal_residuals(rng):
    """With normal residuals the kernel and normal densities estimate the same ratio (median relative gap <5%)."""
    X, a, _ = simulate_dose(rng, n=5000)
    normal = PropensityWeights().fit(X, a).weights_
    kernel = PropensityWeights(density="kernel").fit(X, a).weights_
    assert np.median(np.abs(kernel / normal - 1)) < 0.05


# ---------------------------------------------------------------------------------------------------------------
# reporting and bad inputs
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:CBPS did not converge")
def test_outlying_treatment_floors_density_and_is_reported(rng):
    X, a, _ = simulate_dose(rng, n=500)
    a[0] += 60.0  # 60 residual SDs: log φ = −1800 would overflow the weight
    for est in (PropensityWeights(), CBPS()):
        with pytest.warns(UserWarning, match="floored"):
            est.fit(X, a)
        assert est.n_clipped_ >= 1 and np.all(np.isfinite(est.weights_))


def test_extreme_weights_are_reported(rng):
    """One unit five residual SDs off its model's prediction but at the centre of A carries all the weight: the
    shared extreme-weights check warns for the whole sample (group "all") with advice for a continuous treatment."""
    x = rng.normal(size=200)
    a = 3 * x + rng.normal(size=200)
    x[0], a[0] = -5 / 3, 0.0
    with pytest.warns(ExtremeWeightsWarning, match=r"all: ESS 1\.0 of 200.*better treatment model"):
        pw = PropensityWeights().fit(x[:, None], a)
    assert pw.max_weight_share_["all"] > 0.99


def test_trim_is_reported(dose):
    with pytest.warns(UserWarning, match="trimmed"):
        pw = PropensityWeights(trim=0.95).fit(*dose)
    untrimmed = PropensityWeights().fit(*dose).weights_
    cap = np.quantile(untrimmed, 0.95, method="closest_observation")  # WeightIt's trim: R's type-3 quantile
    assert pw.n_trimmed_ == int(np.sum(untrimmed > cap)) > 0
    assert_allclose(pw.weights_, np.minimum(untrimmed, cap), rtol=1e-15)
    with pytest.raises(NotImplementedError, match="trim"):
        pw._m_parts(*dose)


def test_predict_weights_of_fitted_units_and_refit_forgets(dose, lalonde):
    pw = PropensityWeights().fit(*dose)
    assert_allclose(pw.predict_weights(*dose), pw.weights_, rtol=1e-14)
    cb = CBPS().fit(*dose)
    assert_allclose(cb.predict_weights(*dose), cb.weights_, rtol=1e-14)
    # a refit on a binary treatment forgets the continuous model's attributes
    pw.fit(lalonde[COVARIATES + ["re75"]], lalonde["treat"])
    assert not hasattr(pw, "sigma_") and pw.treatment_type_ == "binary"
    assert clone(PropensityWeights(density="kernel")).get_params()["density"] == "kernel"


@pytest.mark.parametrize("treatment, match", [
    (np.full(614, 3.0), "distinct value"),
    (np.r_[np.nan, np.ones(613)], "missing"),
])
def test_bad_treatments_are_refused(dose, treatment, match):
    for est in (PropensityWeights(treatment_type="continuous"), CBPS(treatment_type="continuous")):
        with pytest.raises(ValueError, match=match):
            est.fit(dose[0], treatment)


def test_two_valued_treatment_is_binary_as_in_weightit(dose):
    """WeightIt decides a two-valued treatment is binary whatever its values; the package does the same: 'auto'
    gives the binary model and treatment_type='continuous' is refused, naming the fix."""
    two = np.where(dose[1] > 0, 1.0, 0.0)
    assert PropensityWeights().fit(dose[0], two).treatment_type_ == "binary"
    with pytest.raises(ValueError, match="only two values"):
        PropensityWeights(treatment_type="continuous").fit(dose[0], two)


@pytest.mark.parametrize("est, error, match", [
    (PropensityWeights(clip=(0.01, 0.99)), ValueError, "clip"),
    (PropensityWeights(model="precomputed"), ValueError, "precomputed"),
    (PropensityWeights(model=LogisticRegression()), TypeError, "regressor"),
    (PropensityWeights(estimand="ATT"), ValueError, "estimand"),
    (PropensityWeights(density="epanechnikov"), ValueError, "density"),
    (CBPS(over=True), ValueError, "over=True"),
    (CBPS(estimand="ATT"), ValueError, "estimand"),
])
def test_bad_parameters_for_continuous_treatments(dose, est, error, match):
    with pytest.raises(error, match=match):
        est.fit(*dose)


def test_kernel_density_for_binary_treatment_is_refused(lalonde):
    with pytest.raises(ValueError, match="continuous treatments only"):
        PropensityWeights(density="kernel").fit(lalonde[COVARIATES], lalonde["treat"])
    with pytest.raises(TypeError, match="predict_proba"):
        PropensityWeights(model=LinearRegression()).fit(lalonde[COVARIATES], lalonde["treat"])


def test_treatment_determined_by_covariates_is_refused(rng):
    X = rng.normal(size=(100, 2))
    with pytest.raises(ValueError, match="residual variance 0"):
        PropensityWeights().fit(X, X @ [1.0, 2.0])


def test_no_probabilities_and_no_kernel_m_parts(dose):
    pw = PropensityWeights(density="kernel").fit(*dose)
    with pytest.raises(ValueError, match="no treatment probabilities"):
        pw.predict_proba(dose[0])
    with pytest.raises(NotImplementedError, match="kernel"):
        pw._m_parts(*dose)


def test_weighted_effect_refuses_continuous_treatments(dose, lalonde):
    """Effects of a dose belong to WeightedDoseResponse; WeightedEffect says so rather than coding A as groups."""
    with pytest.raises(ValueError, match="continuous"):
        WeightedEffect(PropensityWeights()).fit(dose[0], dose[1], lalonde["re78"])


def test_cbps_nonconvergence_is_reported(dose):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        cb = CBPS(max_iter=1, tol=1e-300).fit(*dose)
    assert not cb.converged_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert CBPS().fit(*dose).converged_
