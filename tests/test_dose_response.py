"""WeightedDoseResponse (continuous treatments) against R WeightIt 1.5.1, R's ``splines::ns``, an independently built
spline basis and closed forms.

References
----------
* ``weightit-continuous/``: ``lm_weightit(re78 ~ re75)`` on lalonde with each method's weights (coefficients and their
  HC0 covariance), and for the normal GPS (``method = "glm"``) the stacked "asympt" covariance.
* R's ``lm(weight ~ ns(height, df = 5), data = women)``, whose coefficients R prints in its documentation example
  (7 significant digits): they depend on the exact basis ``ns`` builds, so they pin the parametrisation.
* The natural cubic spline's truncated-power basis (Hastie, Tibshirani & Friedman, ESL eq. 5.4–5.5), written here:
  the fitted ADRF and its HC0 standard errors do not depend on how the spline space is parametrised.

The weighters are test-only: ``OracleWeights`` returns WeightIt's weights (so the outcome model is checked apart from
the package's continuous weighters), and ``NormalGPS`` is WeightIt's normal-model generalised propensity score with
its estimating equations (``_m_parts``) written out below.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from balance import (CBPS, BaseWeighter, EntropyBalance, MParts, PropensityWeights, StableWeights,
                     WeightedDoseResponse, WeightedEffect)
from balance.effects._splines import NaturalSplineBasis

from .conftest import SHARED

CONT = SHARED / "oracle" / "weightit-continuous"
METHODS = ["glm", "cbps", "ebal", "energy", "npcbps", "optweight"]
COVS = ["age", "educ", "race", "married", "nodegree", "re74"]


# ---------------------------------------------------------------------------------------------------------------
# test-only weighters
# ---------------------------------------------------------------------------------------------------------------
class OracleWeights(BaseWeighter):
    """Returns the given weights after the usual input checks (continuous treatments)."""

    _supported_treatment_types = ("continuous",)

    def __init__(self, weights=None):
        self.weights = weights

    def fit(self, X, treatment, sample_weight=None):
        data = self._validate_data(X, treatment, sample_weight)
        return self._set_weights(np.asarray(self.weights, dtype=float), data)


class NormalGPS(BaseWeighter):
    """WeightIt's ``method = "glm"`` for a continuous treatment: OLS of A on (1, X); w = s φ(z_num) / φ(z_den) with
    z_num = (A − μ)/τ, z_den = (A − Xβ)/σ, σ² and τ² the (sampling-weighted) mean squares.

    Estimating equations θ = (β, σ², μ, τ²): s X (A − Xβ), s((A − Xβ)² − σ²), s(A − μ), s((A − μ)² − τ²), with the
    analytic Jacobians; log w = r²/(2σ²) − (A − μ)²/(2τ²).
    """

    _supported_treatment_types = ("continuous",)

    def fit(self, X, treatment, sample_weight=None):
        data = self._validate_data(X, treatment, sample_weight)
        self.params_ = self._solve(data)
        return self._set_weights(self._weights(self.params_, data), data)

    @staticmethod
    def _design(data):
        return np.column_stack([np.ones(len(data.a)), data.X])

    def _solve(self, data):
        D, a, s = self._design(data), data.a, data.sample_weight
        beta = np.linalg.lstsq(D * np.sqrt(s)[:, None], a * np.sqrt(s), rcond=None)[0]
        mu = np.average(a, weights=s)
        return np.concatenate([beta, [np.average((a - D @ beta) ** 2, weights=s), mu,
                                      np.average((a - mu) ** 2, weights=s)]])

    def _weights(self, theta, data):
        D, a = self._design(data), data.a
        k = D.shape[1]
        beta, s2, mu, t2 = theta[:k], theta[k], theta[k + 1], theta[k + 2]
        return data.sample_weight * np.exp((a - D @ beta) ** 2 / (2 * s2) - (a - mu) ** 2 / (2 * t2))

    def _m_parts(self, X, treatment, sample_weight=None):
        data = self._validate_data(X, treatment, sample_weight, reset=False)
        D, a, s = self._design(data), data.a, data.sample_weight
        k = D.shape[1]

        def psi(theta):
            beta, s2, mu, t2 = theta[:k], theta[k], theta[k + 1], theta[k + 2]
            r = a - D @ beta
            return np.column_stack([D * (s * r)[:, None], s * (r ** 2 - s2), s * (a - mu), s * ((a - mu) ** 2 - t2)])

        def psi_jacobian(theta):
            beta, mu = theta[:k], theta[k + 1]
            jac = np.zeros((k + 3, k + 3))
            jac[:k, :k] = -(D * s[:, None]).T @ D
            jac[k, :k], jac[k, k] = -2 * (s * (a - D @ beta)) @ D, -s.sum()
            jac[k + 1, k + 1] = -s.sum()
            jac[k + 2, k + 1], jac[k + 2, k + 2] = -2 * np.sum(s * (a - mu)), -s.sum()
            return jac

        def weights_jacobian(theta):
            beta, s2, mu, t2 = theta[:k], theta[k], theta[k + 1], theta[k + 2]
            r = a - D @ beta
            dlog = np.column_stack([-D * (r / s2)[:, None], -r ** 2 / (2 * s2 ** 2), (a - mu) / t2,
                                    (a - mu) ** 2 / (2 * t2 ** 2)])
            return self._weights(theta, data)[:, None] * dlog

        return MParts(self.params_, tuple(f"theta{j}" for j in range(k + 3)), psi,
                      lambda theta: self._weights(theta, data), psi_jacobian, weights_jacobian)


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lalonde_cont(request):
    from .conftest import _shared_file

    df = pd.read_csv(_shared_file(SHARED / "data" / "lalonde_matchit614.csv"), index_col="id")
    df["race"] = pd.Categorical(df["race"], categories=["black", "hispan", "white"])
    return df[COVS], df["re75"], df["re78"]


def _oracle(method, vcov="HC0"):
    coefs = pd.read_csv(CONT / "coefficients.csv")
    coefs = coefs[(coefs.case == method) & (coefs.vcov == vcov)].set_index("term")
    cov = pd.read_csv(CONT / "vcov.csv")
    cov = cov[(cov.case == method) & (cov.vcov == vcov)].pivot(index="row", columns="col", values="value")
    return coefs, cov.loc[coefs.index, coefs.index]


def _oracle_weights(method, index):
    frame = pd.read_csv(CONT / "weights" / f"{method}.csv", index_col="id")
    return frame.loc[index, "weight"].to_numpy()


def _simulate(n=400, seed=3):
    """A confounded continuous treatment with a nonlinear outcome: A = Xb + e, y = sin(A) + Xc + noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    a = X @ np.array([0.5, -0.3, 0.2]) + rng.normal(size=n)
    y = np.sin(a) + X @ np.array([1.0, 0.5, -0.5]) + rng.normal(size=n)
    return pd.DataFrame(X, columns=["x1", "x2", "x3"]), pd.Series(a, name="dose"), y


# ---------------------------------------------------------------------------------------------------------------
# linear model: WeightIt's lm_weightit(re78 ~ re75)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_linear_hc0_matches_weightit(lalonde_cont, method):
    """Coefficients and the full HC0 covariance with each method's WeightIt weights held fixed; 1e-6 relative (the
    oracle carries 17 digits; the fit is closed-form weighted least squares, so agreement is to round-off)."""
    X, dose, y = lalonde_cont
    fit = WeightedDoseResponse(OracleWeights(_oracle_weights(method, X.index)), vcov="HC0").fit(X, dose, y)
    coefs, cov = _oracle(method)
    assert list(fit.coef_.index) == ["(Intercept)", "re75"]
    assert_allclose(fit.coef_.to_numpy(), coefs["estimate"].to_numpy(), rtol=1e-6)
    assert_allclose(fit.vcov_.to_numpy(), cov.to_numpy(), rtol=1e-6)
    assert_allclose([fit.slope_, fit.slope_se_], coefs.loc["re75", ["estimate", "se"]].to_numpy(), rtol=1e-6)


def test_linear_asympt_gps_matches_weightit(lalonde_cont):
    """The stacked M-estimation covariance of the normal GPS against WeightIt's vcov = "asympt": SEs to 1e-6 relative,
    the covariance to 2e-6. The weight model stacks the mean and variance of the numerator density too, as WeightIt
    1.5.1's Mparts do (without them the slope's SE is 1 % off). The variances differ from WeightIt's by 1.5e-6
    (SEs 7.5e-7); emulating WeightIt's finite-difference Jacobians (``.gradient``, step 1e-8·|θ|) instead of the
    analytic ones here moves them by only 3e-8, so the cause is elsewhere in R's arithmetic, not a convention."""
    X, dose, y = lalonde_cont
    gps = NormalGPS().fit(X, dose)
    assert_allclose(np.asarray(gps.weights_), _oracle_weights("glm", X.index), rtol=1e-10)
    fit = WeightedDoseResponse(NormalGPS(), vcov="asympt").fit(X, dose, y)
    coefs, cov = _oracle("glm", "asympt")
    assert_allclose(fit.coef_.to_numpy(), coefs["estimate"].to_numpy(), rtol=1e-10)
    assert_allclose(fit.vcov_.to_numpy(), cov.to_numpy(), rtol=2e-6)
    assert_allclose(np.sqrt(np.diag(fit.vcov_)), coefs["se"].to_numpy(), rtol=1e-6)
    assert_allclose(fit.slope_se_, coefs.loc["re75", "se"], rtol=1e-6)
    assert "weight-model Jacobian: analytic" in fit.vcov_notes_


def test_predict_linear_is_the_line(lalonde_cont):
    """ADRF of the linear model: γ₀ + γ₁d, SE sqrt(gᵀVg) with g = (1, d), normal limits ± z·SE."""
    X, dose, y = lalonde_cont
    fit = WeightedDoseResponse(OracleWeights(_oracle_weights("ebal", X.index)), vcov="HC0").fit(X, dose, y)
    doses = np.array([0.0, 1000.0, 5000.0])
    table = fit.predict(doses)
    g = np.column_stack([np.ones(3), doses])
    assert_allclose(table["estimate"], g @ fit.coef_.to_numpy(), rtol=1e-12)
    assert_allclose(table["std_err"], np.sqrt(np.diag(g @ fit.vcov_.to_numpy() @ g.T)), rtol=1e-12)
    assert_allclose(table["conf_high"] - table["estimate"], 1.959963984540054 * table["std_err"], rtol=1e-12)
    assert list(table.columns) == ["estimate", "std_err", "conf_low", "conf_high"]
    assert_array_equal(table.index, doses)


# ---------------------------------------------------------------------------------------------------------------
# spline model
# ---------------------------------------------------------------------------------------------------------------
def test_spline_basis_reproduces_r_ns():
    """R's ``lm(weight ~ ns(height, df = 5), data = women)`` prints (Intercept) 114.74466 and the ns coefficients
    15.94736, 25.16949, 33.25822, 50.78938, 45.03633: least squares on our basis gives them to R's printed
    digits (atol 6e-6, half a unit in the last printed place plus round-off)."""
    height = np.arange(58.0, 73.0)
    weight = np.array([115, 117, 120, 123, 126, 129, 132, 135, 139, 142, 146, 150, 154, 159, 164.0])
    basis = NaturalSplineBasis.from_data(height, df=5)
    design = np.column_stack([np.ones(15), basis.transform(height)])
    coef = np.linalg.lstsq(design, weight, rcond=None)[0]
    assert_allclose(coef, [114.74466, 15.94736, 25.16949, 33.25822, 50.78938, 45.03633], rtol=0, atol=6e-6)
    assert_allclose(basis.knots, [60.8, 63.6, 66.4, 69.2])  # quantiles 1/5..4/5 of 58..72, R's type 7


def _truncated_power_basis(x, knots):
    """ESL (5.4)–(5.5): 1, x, d_k − d_{K−1} with d_k = ((x − ξ_k)³₊ − (x − ξ_K)³₊)/(ξ_K − ξ_k), ξ the K knots
    (boundary ones included); a natural cubic spline basis with intercept, linear beyond the boundary knots."""
    x = np.asarray(x, dtype=float)[:, None]
    xi = np.asarray(knots, dtype=float)
    cube = np.clip(x - xi, 0, None) ** 3
    d = (cube[:, :-1] - cube[:, -1:]) / (xi[-1] - xi[:-1])
    return np.column_stack([np.ones(len(x)), x, d[:, :-1] - d[:, -1:]])


def _hc0(design, y, w):
    """Weighted least squares with the HC0 sandwich, written out for this test."""
    bread = np.linalg.inv(design.T @ (design * w[:, None]))
    coef = bread @ design.T @ (w * y)
    scores = design * (w * (y - design @ coef))[:, None]
    return coef, bread @ scores.T @ scores @ bread


@pytest.mark.parametrize("df", [1, 3, 5])
def test_spline_adrf_does_not_depend_on_the_basis(df):
    """The spline ADRF and its HC0 standard errors equal those of the same WLS on the truncated-power basis with the
    same knots (interior at the quantiles, boundary at the range), at doses inside and beyond the range (both
    bases are linear there); 1e-8 relative (two well-conditioned least-squares solves)."""
    X, dose, y = _simulate()
    weights = NormalGPS().fit(X, dose).weights_
    fit = WeightedDoseResponse(OracleWeights(weights), outcome_model="spline", df=df, vcov="HC0").fit(X, dose, y)
    knots = np.concatenate([[dose.min()], np.quantile(dose, np.arange(1, df) / df), [dose.max()]])
    coef, cov = _hc0(_truncated_power_basis(dose, knots), y, np.asarray(weights))
    doses = np.linspace(dose.min() - 1, dose.max() + 1, 25)
    other = _truncated_power_basis(doses, knots)
    with pytest.warns(UserWarning, match="6 dose.*outside the observed treatment range.*extrapolation"):
        table = fit.predict(doses)
    assert_allclose(table["estimate"], other @ coef, rtol=1e-8)
    assert_allclose(table["std_err"], np.sqrt(np.einsum("ij,jk,ik->i", other, cov, other)), rtol=1e-8)
    assert len(fit.coef_) == df + 1 and fit.coef_.index[1] == "ns(dose)1"


def test_spline_df1_is_the_linear_model():
    """ns with one degree of freedom spans (1, A): the same ADRF and SEs as the linear model (1e-8)."""
    X, dose, y = _simulate()
    line = WeightedDoseResponse(NormalGPS()).fit(X, dose, y)
    spline = WeightedDoseResponse(NormalGPS(), outcome_model="spline", df=1).fit(X, dose, y)
    doses = [-2.0, 0.0, 1.5]
    assert_allclose(spline.predict(doses).to_numpy(), line.predict(doses).to_numpy(), rtol=1e-8)


def test_spline_asympt_matches_numerical_sandwich():
    """asympt for the spline: the stacked sandwich recomputed here from the equations of both models with
    central-difference derivatives (1e-5: the numerical Jacobian's error)."""
    X, dose, y = _simulate(n=300, seed=5)
    fit = WeightedDoseResponse(NormalGPS(), outcome_model="spline", df=3).fit(X, dose, y)
    gps = NormalGPS().fit(X, dose)
    parts = gps._m_parts(X, dose)
    knots = np.concatenate([[dose.min()], np.quantile(dose, [1 / 3, 2 / 3]), [dose.max()]])
    design = _truncated_power_basis(dose, knots)
    gamma = _hc0(design, y, np.asarray(gps.weights_))[0]
    k = parts.params.size

    def psi(theta):
        w = parts.weights(theta[:k])
        return np.column_stack([parts.psi(theta[:k]), design * (w * (y - design @ theta[k:]))[:, None]])

    theta = np.concatenate([parts.params, gamma])
    h = 1e-6 * np.maximum(1, np.abs(theta))
    bread = np.column_stack([(psi(theta + h[j] * np.eye(theta.size)[j]).sum(0)
                              - psi(theta - h[j] * np.eye(theta.size)[j]).sum(0)) / (2 * h[j])
                             for j in range(theta.size)])
    inv = np.linalg.inv(bread)
    scores = psi(theta)
    cov = (inv @ scores.T @ scores @ inv.T)[k:, k:]
    doses = np.linspace(-2, 2, 9)
    other = _truncated_power_basis(doses, knots)
    assert_allclose(fit.predict(doses)["std_err"], np.sqrt(np.einsum("ij,jk,ik->i", other, cov, other)), rtol=1e-5)


def test_spline_tied_knots_are_refused(lalonde_cont):
    """re75 is 0 for 40 % of lalonde: its 1/3 quantile is the boundary knot; a clear error, and knots= fixes it."""
    X, dose, y = lalonde_cont
    weighter = OracleWeights(_oracle_weights("ebal", X.index))
    with pytest.raises(ValueError, match="not strictly increasing.*knots="):
        WeightedDoseResponse(weighter, outcome_model="spline", vcov="HC0").fit(X, dose, y)
    fit = WeightedDoseResponse(weighter, outcome_model="spline", knots=[1000.0, 5000.0], vcov="HC0").fit(X, dose, y)
    assert_allclose(fit.basis_.knots, [1000.0, 5000.0])
    assert len(fit.coef_) == 4


# ---------------------------------------------------------------------------------------------------------------
# bootstraps
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bootstrap", "fwb"])
def test_bootstrap_reproducible_and_close_to_asympt(kind):
    """Same random_state, same replicates; a different one, different replicates. With 200 replicates the
    bootstrap SE of the slope estimates the asympt one within 25 % (its own relative Monte Carlo error is about
    1/sqrt(2·200) = 5 %)."""
    X, dose, y = _simulate()
    make = lambda seed: WeightedDoseResponse(NormalGPS(), vcov=kind, n_bootstrap=200, random_state=seed)
    first, again, other = make(1).fit(X, dose, y), make(1).fit(X, dose, y), make(2).fit(X, dose, y)
    assert_array_equal(first.draws_.to_numpy(), again.draws_.to_numpy())
    assert not np.array_equal(first.draws_.to_numpy(), other.draws_.to_numpy())
    asympt = WeightedDoseResponse(NormalGPS()).fit(X, dose, y)
    assert first.slope_se_ == pytest.approx(asympt.slope_se_, rel=0.25)
    assert first.n_failed_ == 0
    table = first.predict([0.0, 1.0])  # percentile limits from the replicated curves
    curves = first.draws_.to_numpy() @ np.array([[1.0, 0.0], [1.0, 1.0]]).T
    assert_allclose(table["conf_low"], np.quantile(curves, 0.025, axis=0))
    normal = first.predict([0.0, 1.0], method="normal")
    assert_allclose(normal["conf_low"], normal["estimate"] - 1.959963984540054 * normal["std_err"])


# ---------------------------------------------------------------------------------------------------------------
# refusals and conventions
# ---------------------------------------------------------------------------------------------------------------
def test_refusals(lalonde_cont):
    X, dose, y = lalonde_cont
    fixed = OracleWeights(np.ones(len(y)))
    with pytest.raises(ValueError, match="asympt.*not available.*OracleWeights"):
        WeightedDoseResponse(fixed).fit(X, dose, y)
    with pytest.raises(ValueError, match="outcome_model='cubic'"):
        WeightedDoseResponse(fixed, outcome_model="cubic").fit(X, dose, y)
    with pytest.raises(ValueError, match="df=0"):
        WeightedDoseResponse(fixed, outcome_model="spline", df=0).fit(X, dose, y)
    with pytest.raises(ValueError, match="alpha"):
        WeightedDoseResponse(fixed, alpha=1.5).fit(X, dose, y)
    binary = (dose > 0).astype(int)
    with pytest.raises(ValueError, match="needs a continuous treatment.*WeightedEffect"):
        WeightedDoseResponse(PropensityWeights(), vcov="HC0").fit(X, binary, y)
    with pytest.raises(ValueError, match="continuous treatment.*WeightedDoseResponse"):
        WeightedEffect(fixed, vcov="HC0").fit(X, dose, y)
    fit = WeightedDoseResponse(fixed, vcov="HC0").fit(X, dose, y)
    with pytest.raises(ValueError, match="doses"):
        fit.predict([[1.0, 2.0]])


def test_sklearn_conventions(lalonde_cont):
    """Parameters stored untouched, clone-able, no fitted state before fit; predict leaves the fit unchanged."""
    X, dose, y = lalonde_cont
    model = WeightedDoseResponse(OracleWeights(np.ones(len(y))), outcome_model="spline", knots=[500.0, 3000.0],
                                 vcov="HC0", alpha=0.1)
    assert clone(model).get_params()["knots"] == [500.0, 3000.0]
    assert not hasattr(model, "coef_")
    model.fit(X, dose, y)
    before = model.coef_.copy()
    model.predict([0.0, 100.0])
    pd.testing.assert_series_equal(model.coef_, before)
    assert model.weights_.index.equals(X.index)
    assert not hasattr(model.set_params(outcome_model="linear").fit(X, dose, y).set_params(outcome_model="spline")
                       .fit(X, dose, y), "slope_")
    assert model.ess_ == pytest.approx(len(y))


def test_bad_inputs_name_the_input(lalonde_cont):
    """Errors name the input and the problem; nothing is fitted."""
    X, dose, y = lalonde_cont
    model = WeightedDoseResponse(OracleWeights(np.ones(len(y))), vcov="HC0")
    bad = y.copy()
    bad.iloc[3] = np.nan
    with pytest.raises(ValueError, match="y has 1 missing"):
        model.fit(X, dose, bad)
    with pytest.raises(ValueError, match="y has 10 entries but X has 614 rows"):
        model.fit(X, dose, y.iloc[:10].to_numpy())
    with pytest.raises(ValueError, match="index"):
        model.fit(X, dose, y.iloc[::-1])
    assert not hasattr(model, "coef_")


def test_extreme_weights_are_reported(lalonde_cont):
    """One unit carrying most of the weight: one ExtremeWeightsWarning from WeightedDoseResponse, noted in
    vcov_notes_."""
    from balance import ExtremeWeightsWarning

    X, dose, y = lalonde_cont
    weights = np.ones(len(y))
    weights[0] = 5000.0
    with pytest.warns(ExtremeWeightsWarning, match="WeightedDoseResponse"):
        fit = WeightedDoseResponse(OracleWeights(weights), vcov="HC0").fit(X, dose, y)
    assert any("extreme weights" in note for note in fit.vcov_notes_)


def test_sampling_weights_equal_duplicated_rows():
    """Integer sampling weights k_i give the same weights and ADRF as repeating row i k_i times (1e-10)."""
    X, dose, y = _simulate(n=200, seed=8)
    k = np.random.default_rng(1).integers(1, 4, size=len(y))
    weighted = WeightedDoseResponse(NormalGPS(), "spline", df=3, vcov="HC0").fit(X, dose, y, sample_weight=k)
    rows = np.repeat(np.arange(len(y)), k)
    repeated = WeightedDoseResponse(NormalGPS(), "spline", df=3, knots=weighted.basis_.knots, vcov="HC0").fit(
        X.iloc[rows].reset_index(drop=True), dose.iloc[rows].reset_index(drop=True), y[rows])
    assert_allclose(weighted.coef_.to_numpy(), repeated.coef_.to_numpy(), rtol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# the package's continuous weighters
# ---------------------------------------------------------------------------------------------------------------
class FixedTargetEntropy(EntropyBalance):
    """EntropyBalance whose M-estimation parts hold the balance targets (the sample means) fixed, as WeightIt 1.5.1's
    ebal "asympt" does (the package's default estimates them)."""

    def _m_parts(self, X, treatment, sample_weight=None):
        return super()._m_parts(X, treatment, sample_weight, fixed_targets=True)


CONTINUOUS_WEIGHTERS = all("continuous" in cls._supported_treatment_types
                           for cls in (PropensityWeights, CBPS, EntropyBalance, StableWeights))
needs_weighters = pytest.mark.skipif(not CONTINUOUS_WEIGHTERS, reason="the continuous weighters (c-gps, c-balw) are "
                                     "not merged yet")


@needs_weighters
@pytest.mark.parametrize("method, weighter, vcov, rtol", [
    # the normal GPS: see test_linear_asympt_gps_matches_weightit for the 7.5e-7 in the SEs
    ("glm", lambda: PropensityWeights(), "asympt", 1e-6),
    ("glm", lambda: PropensityWeights(), "HC0", 1e-8),
    ("cbps", lambda: CBPS(), "HC0", 1e-8),
    ("ebal", lambda: FixedTargetEntropy(estimand="ATE"), "asympt", 1e-6),
    ("ebal", lambda: EntropyBalance(estimand="ATE"), "HC0", 1e-6),
    ("optweight", lambda: StableWeights(estimand="ATE"), "HC0", 1e-6),
])
def test_package_weighters_match_weightit(lalonde_cont, method, weighter, vcov, rtol):
    """The slope of re78 ~ re75 and its SE with the package's own weights against WeightIt's; rtol as the weights
    agree (the GPS and CBPS to 1e-13, ebal to 1e-8 and optweight to 1e-12, the solvers' tolerances), SEs 1e-6."""
    X, dose, y = lalonde_cont
    fit = WeightedDoseResponse(weighter(), vcov=vcov).fit(X, dose, y)
    coefs, cov = _oracle(method, vcov)
    assert_allclose(fit.coef_.to_numpy(), coefs["estimate"].to_numpy(), rtol=rtol)
    assert_allclose(np.sqrt(np.diag(fit.vcov_)), coefs["se"].to_numpy(), rtol=max(rtol, 1e-6))


@needs_weighters
def test_ebal_asympt_estimated_targets_exceeds_fixed(lalonde_cont):
    """The package's default entropy-balancing "asympt" estimates the balance targets (the covariate means), which
    adds their sampling variance: its slope SE (0.1207) is above WeightIt's fixed-target one (0.1195) and close to
    the bootstrap's, which re-estimates everything (within 20 % at 199 replicates, whose Monte Carlo error is 5 %)."""
    X, dose, y = lalonde_cont
    estimated = WeightedDoseResponse(EntropyBalance(estimand="ATE")).fit(X, dose, y).slope_se_
    fixed = WeightedDoseResponse(FixedTargetEntropy(estimand="ATE")).fit(X, dose, y).slope_se_
    boot = WeightedDoseResponse(EntropyBalance(estimand="ATE"), vcov="bootstrap", n_bootstrap=199,
                                random_state=0).fit(X, dose, y).slope_se_
    assert estimated > fixed
    assert boot == pytest.approx(estimated, rel=0.2)


@pytest.mark.parametrize("y_scale, dose_scale", [(1e-200, 1.0), (1e200, 1.0), (1.0, 1e200), (1.0, 1e-200)])
def test_extreme_magnitudes_are_refused_not_silently_wrong(y_scale, dose_scale):
    # y·1e-200 gave slope_se_ exactly 0 (the squared scores underflowed) and a dose of 1e200 a misleading
    # rank-deficiency error: both are now refused with the fix
    from balance import EntropyBalance, WeightedDoseResponse
    from balance.datasets import load_lalonde

    data = load_lalonde()
    X, dose = data.X.drop(columns="re75"), data.X["re75"] * dose_scale
    with pytest.raises(ValueError, match="rescale it"):
        WeightedDoseResponse(EntropyBalance(estimand="ATE"), vcov="HC0").fit(X, dose, data.y * y_scale)


def test_asympt_refuses_a_method_without_estimating_equations_before_its_convergence():
    """An unconverged EnergyBalance fit: the advice is that it has no M-estimation form (fixing its convergence
    would not make "asympt" available), not to fix the convergence."""
    from balance import EnergyBalance

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    dose = X["a"] + rng.normal(size=200)
    with pytest.warns(Warning), pytest.raises(ValueError, match="not available: EnergyBalance has no M-estimation"):
        WeightedDoseResponse(EnergyBalance(estimand="ATE", max_iter=3)).fit(X, dose, dose + X["b"])
