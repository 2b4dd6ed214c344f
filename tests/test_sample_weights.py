"""Sampling weights end to end: weight fits, diagnostics, effects, standard errors, bootstraps and the CLI.

Two properties are checked for every weighting estimator that accepts ``sample_weight``:

* an integer sampling weight k equals k duplicated rows, wherever the method's objective treats its units as
  exchangeable draws (the weights of the copies then sum to the weighted unit's weight, and are equal where the
  solution is unique);
* a sampling weight of 0 equals dropping the unit.

Where duplication does not hold, the reason is stated and checked: either the method's tuning constants are defined
per row (the n − 1 of a standard deviation, a penalty scaled to be invariant to rescaling the sampling weights) and
the equivalence holds again after converting them, or the method cannot take sampling weights at all.

Sampling weights are not frequency weights: the estimates with sampling weights equal those on duplicated rows, but
their standard errors need not (the sandwich's meat has s_i² where duplicated rows give s_i), and the Kish effective
sample size of sampling-weighted data is that of the product weights (WeightIt's ``ESS(w * s.weights)``).
"""

import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from balance import (
    CBIPM,
    CBPS,
    EnergyBalance,
    EntropyBalance,
    InverseProbabilityTilting,
    PropensityWeights,
    StableWeights,
    UniformTransformerWeights,
    WeightedEffect,
    balance_table,
    effective_sample_size,
    weight_summary,
)
from balance._cli import main

from .conftest import COVARIATES, SHARED, _shared_file


def _toy(seed=3, n=70, binary=True):
    """Small confounded data: three normal covariates (and a 0/1 one), treatment about 40 %."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(1, 4)})
    if binary:
        X["b"] = (rng.random(n) < 0.4).astype(float)
    t = rng.binomial(1, expit(0.6 * X["x1"] - 0.4 * X["x2"] - 0.3))
    return X, t, rng


def _duplicate(X, t, counts):
    rows = np.repeat(np.arange(len(t)), counts)
    return X.iloc[rows].reset_index(drop=True), t[rows], rows


@contextmanager
def _must_converge(est):
    """Warnings are errors (so comparisons are at the solver's tolerance), except CBIPM's stationarity warning:
    CBIPM runs a fixed number of epochs, and both fits run the same iterates whether or not they levelled off."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if isinstance(est, CBIPM):
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
        yield


def _fit(est, X, t, sample_weight=None):
    fitted = clone(est)
    fitted.fit(X, t) if sample_weight is None else fitted.fit(X, t, sample_weight=sample_weight)
    return np.asarray(fitted.weights_, dtype=float), fitted


# ---------------------------------------------------------------------------------------------------------------
# weight fits: integer sampling weight k == k duplicated rows
# ---------------------------------------------------------------------------------------------------------------
# (estimator, relative tolerance on the weights, whether the copies' weights are unique and hence equal)
DUPLICATION = {
    # weighted logistic MLE = MLE on repeated rows; Newton to machine precision
    "PropensityWeights-ATE": (PropensityWeights("ATE"), 1e-9, True),
    "PropensityWeights-ATT": (PropensityWeights("ATT"), 1e-9, True),
    "PropensityWeights-ATO": (PropensityWeights("ATO"), 1e-9, True),
    # ATOS: Crump's threshold is a weighted fixed point (E[g | g <= gamma] with sampling weights)
    "PropensityWeights-ATOS": (PropensityWeights("ATOS"), 1e-9, True),
    # balance conditions sum s_i psi_i(beta): a root of the same equations; Newton, tol 1e-8 on the imbalance
    "CBPS-ATT": (CBPS("ATT"), 1e-8, True),
    "CBPS-ATE": (CBPS("ATE"), 1e-8, True),
    # two-step GMM whose weight matrix uses s once (frequency form): the same moments and weight matrix
    "CBPS-ATE-over": (CBPS("ATE", over=True), 1e-7, True),
    "InverseProbabilityTilting-ATT": (InverseProbabilityTilting("ATT"), 1e-8, True),
    "InverseProbabilityTilting-ATE": (InverseProbabilityTilting("ATE"), 1e-8, True),
    # entropy divergence sum s_i w_i log w_i: copies of a unit share one weight at the (unique) optimum
    "EntropyBalance-ATT-moments2": (EntropyBalance("ATT", moments=2), 1e-8, True),
    "EntropyBalance-ATE": (EntropyBalance("ATE"), 1e-8, True),
    # exact balance (tols=0): dispersion sum s_i (w_i - 1)^2 is strictly convex, the polish solves the KKT exactly
    "StableWeights-ATT": (StableWeights("ATT"), 1e-8, True),
    "StableWeights-ATE": (StableWeights("ATE"), 1e-8, True),
    # the energy distance depends on the distribution only; without the penalty the split of a unit's mass over
    # its copies is not identified (only their sum), OSQP polished to about 1e-11 of the largest weight
    "EnergyBalance-ATT-penalty0": (EnergyBalance("ATT", penalty=0.0), 1e-9, False),
    "EnergyBalance-ATE-penalty0": (EnergyBalance("ATE", penalty=0.0), 1e-9, False),
    # CBIPM processes units in a canonical (sorted) order, so copies are adjacent; the per-unit logit gradient is
    # taken per unit of sampling weight, and random draws by probability land on the same unit (inverse-CDF
    # draws over adjacent copies): the same iterates up to summation order
    "CBIPM-mmd-nonpara": (CBIPM("ATT", n_epochs=50), 1e-8, True),
    "CBIPM-mmd-linear-ATE": (CBIPM("ATE", model="linear", n_epochs=50, random_state=0), 1e-8, True),
    "CBIPM-sipm": (CBIPM("ATT", ipm="sipm", n_epochs=30, n_sigmoids=10, random_state=0), 1e-8, True),
    "CBIPM-wass-ATE": (CBIPM("ATE", ipm="wass", n_epochs=20, hidden=10, random_state=0), 1e-8, True),
}
# Not in the list, and why:
# * EnergyBalance with penalty > 0, StableWeights / EntropyBalance with tols > 0: constants defined per row; see
#   test_per_row_constants_convert_and_then_duplication_holds.
# * StableWeights(norm="l1" / "linf"): the solution need not be unique (linear programme), so two fits of the
#   same problem may differ.
# * PropensityWeights(trim=...): the trimming quantile is taken over rows (WeightIt's trim() does the same), so a
#   row of weight 2 is one row, not two.
# * UniformTransformerWeights: refuses sample_weight (test_uniform_transformer_refuses_sampling_weights).
# * CBIPM(solver="qp"): duplication holds for the problem, but its weights are only weakly identified (a nearly flat
#   MMD at the default bandwidth); compared by the minimum reached (test_cbipm_qp_duplication_same_minimum).


def _balanced_toy():
    """Data on which every method above converges (IPT for the ATE needs each arm not too small)."""
    X, t, rng = _toy(seed=11, n=80)
    return X, t, rng.integers(1, 4, len(t))


@pytest.mark.parametrize("name", list(DUPLICATION))
def test_integer_sample_weight_equals_duplicated_rows(name):
    est, rtol, unique = DUPLICATION[name]
    X, t, counts = _balanced_toy()
    Xd, td, rows = _duplicate(X, t, counts)
    with _must_converge(est):
        weighted, _ = _fit(est, X, t, counts.astype(float))
        repeated, _ = _fit(est, Xd, td)
    scale = weighted.max()
    # the copies' weights sum to the weighted unit's weight (both include the sampling weight)
    assert_allclose(np.bincount(rows, weights=repeated, minlength=len(t)), weighted, rtol=0, atol=rtol * scale)
    if unique:  # and, the solution being unique, each copy has the same share
        assert_allclose(repeated, (weighted / counts)[rows], rtol=0, atol=rtol * scale)


def test_cbipm_qp_duplication_same_minimum():
    # The exact MMD minimiser over the simplex: copies at one point make the kernel matrix singular, so only the
    # distribution (the copies' sum) is identified, and with the default bandwidth 10 on standardised data the
    # objective is so flat that Clarabel's tolerance leaves the weights determined to ~2e-5 only (measured). The
    # minimum reached is the comparison that the solver's tolerance controls.
    X, t, counts = _balanced_toy()
    Xd, td, rows = _duplicate(X, t, counts)
    weighted, a = _fit(CBIPM("ATT", solver="qp"), X, t, counts.astype(float))
    repeated, b = _fit(CBIPM("ATT", solver="qp"), Xd, td)
    assert a.converged_ and b.converged_
    assert_allclose(a.ipm_, b.ipm_, rtol=1e-5)
    assert_allclose(np.bincount(rows, weights=repeated), weighted, rtol=0, atol=1e-4 * weighted.max())


def test_per_row_constants_convert_and_then_duplication_holds():
    """Energy penalty and balance tolerances are defined per row; converted, duplication holds again.

    With N rows after duplication and counts k: a sampling-weighted SD uses cobalt's n − 1 form
    sum s (x − m)² / (S (1 − sum s² / S²)), the repeated rows sum k (x − m)² / (N − 1), so every column's variance
    differs by the same factor r = N (N − 1) / (N² − sum k²). EnergyBalance divides distances by such SDs and
    scales unit i's penalty by mean(s_g) / s_i (invariance to rescaling s); StableWeights and EntropyBalance
    measure ``tols`` in SDs of the treated group (ATT).
    """
    X, t, rng = _toy(seed=3, n=70, binary=False)
    counts = rng.integers(1, 4, len(t))
    Xd, td, rows = _duplicate(X, t, counts)

    def r(k):
        return k.sum() * (k.sum() - 1) / (k.sum() ** 2 - np.sum(k**2))

    penalty = 0.5
    energy_dup = penalty * np.sqrt(r(counts)) * counts[t == 0].mean()
    treated_sd_ratio = np.sqrt(r(counts[t == 1]))
    pairs = [
        (EnergyBalance("ATT", penalty=penalty), EnergyBalance("ATT", penalty=energy_dup), 1e-9),
        (StableWeights("ATT", tols=0.1), StableWeights("ATT", tols=0.1 * treated_sd_ratio), 1e-9),
        (EntropyBalance("ATT", tols=0.1), EntropyBalance("ATT", tols=0.1 * treated_sd_ratio), 1e-8),
    ]
    for weighted_est, repeated_est, rtol in pairs:
        weighted, _ = _fit(weighted_est, X, t, counts.astype(float))
        repeated, _ = _fit(repeated_est, Xd, td)
        naive, _ = _fit(weighted_est, Xd, td)  # same constants on the rows: materially different
        assert np.max(np.abs(naive - (weighted / counts)[rows])) > 1e3 * rtol * weighted.max()
        # the penalty (and the tolerance's slack) makes the solution unique: copies share a unit's weight equally
        assert_allclose(repeated, (weighted / counts)[rows], rtol=0, atol=rtol * weighted.max())


def test_uniform_transformer_refuses_sampling_weights():
    # Excluded by design: the uniform transformer is an equal-count partition of the reference group's rows, and
    # the bandwidth n^(-1/d) counts rows, so k copies of a point are not "a point of weight k" (nor would a
    # weighted partition be the paper's estimator). Bootstraps resample rows instead (vcov="bootstrap").
    X, t, _ = _toy()
    with pytest.raises(ValueError, match="sample_weight is not supported by UniformTransformerWeights"):
        UniformTransformerWeights(random_state=0).fit(X, t, sample_weight=np.ones(len(t)))


@pytest.mark.parametrize("est", [PropensityWeights("ATT", missing="indicator"),
                                 EntropyBalance("ATE", missing="indicator")], ids=lambda e: type(e).__name__)
def test_duplication_with_missing_indicators(est):
    # missing="indicator" fills with the unweighted median of the observed values (WeightIt's replace_na_with), so
    # repeated rows move the fill value. For methods that model or balance the linear span of (1, filled column,
    # indicator) the fill value does not matter (filled = observed * (1 - indicator) + fill * indicator), and
    # duplication still holds; distance-based methods (energy, CBIPM, the uniform transformer) see the fill value.
    lalonde_mis = pd.read_csv(_shared_file(SHARED / "data" / "lalonde_mis_cobalt614.csv"))
    X, t = lalonde_mis[COVARIATES], lalonde_mis["treat"].to_numpy()
    counts = np.random.default_rng(9).integers(1, 4, len(t))
    counts[:40] = 3  # the first rows hold missing re74/re75 values: make the repeated rows' medians move
    Xd, td, rows = _duplicate(X, t, counts)
    assert Xd["re74"].median() != X["re74"].median()
    weighted, _ = _fit(est, X, t, counts.astype(float))
    repeated, _ = _fit(est, Xd, td)
    assert_allclose(repeated, (weighted / counts)[rows], rtol=0, atol=1e-8 * weighted.max())


# ---------------------------------------------------------------------------------------------------------------
# a sampling weight of 0 == dropping the unit
# ---------------------------------------------------------------------------------------------------------------
ZERO = {name: spec for name, spec in DUPLICATION.items()}
ZERO["EnergyBalance-ATT"] = (EnergyBalance("ATT"), 1e-9, True)  # with the default penalty too
ZERO["StableWeights-ATE-tols"] = (StableWeights("ATE", tols=0.1), 1e-8, True)
ZERO["EntropyBalance-ATT-tols"] = (EntropyBalance("ATT", tols=0.05), 1e-7, True)


@pytest.mark.parametrize("name", list(ZERO))
def test_zero_sample_weight_equals_dropping_the_unit(name):
    est, rtol, _ = ZERO[name]
    X, t, rng = _toy(seed=11, n=80)
    sw = rng.uniform(0.5, 2.0, len(t))
    dropped = np.zeros(len(t), dtype=bool)
    dropped[[0, 5, 17, 40, 41]] = True
    sw[dropped] = 0.0
    with _must_converge(est):
        weighted, _ = _fit(est, X, t, sw)
        subset, _ = _fit(est, X[~dropped], t[~dropped], sw[~dropped])
    assert np.all(weighted[dropped] == 0)
    assert_allclose(weighted[~dropped], subset, rtol=0, atol=rtol * subset.max())


def test_atos_threshold_ignores_units_of_zero_sampling_weight():
    # a unit far outside the others (propensity near 0) with sampling weight 0 used to set Crump's threshold
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    t = rng.binomial(1, expit(0.3 * X[:, 0]))
    X[0, 0] = 12.0
    sw = np.ones(200)
    sw[0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the extreme unit's propensity is bounded (warned), its weight is 0 anyway
        weighted = PropensityWeights("ATOS").fit(X, t, sample_weight=sw)
    subset = PropensityWeights("ATOS").fit(X[1:], t[1:])
    assert subset.atos_alpha_ == 0.0  # Crump's rule: max g <= 2 E[g] among the units that take part
    assert weighted.atos_alpha_ == subset.atos_alpha_


# ---------------------------------------------------------------------------------------------------------------
# hypothesis: duplication for the two cheapest methods, on random data and random counts (0 drops a row)
# ---------------------------------------------------------------------------------------------------------------
@st.composite
def _counted_data(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(30, 60))
    p = draw(st.integers(1, 3))
    counts = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    t = rng.binomial(1, expit(0.5 * X[:, 0]))
    return X, t, counts


def _assert_duplication(est, X, t, counts, rtol):
    rows = np.repeat(np.arange(len(t)), counts)
    outcomes = []
    for args in ((X, t, counts.astype(float)), (X[rows], t[rows], None)):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                outcomes.append(_fit(est, *args)[0])
            outcomes[-1] = (outcomes[-1], any("converge" in str(w.message) for w in caught))
        except ValueError as exc:  # e.g. a group without units, or a target outside the other group's range
            outcomes.append(exc)
    weighted, repeated = outcomes
    if isinstance(weighted, ValueError) or isinstance(repeated, ValueError):
        # the same data: an error for one must be an error for the other
        assert isinstance(weighted, ValueError) and isinstance(repeated, ValueError), (weighted, repeated)
        event("both refused the data")
        return
    (weighted, w_warned), (repeated, r_warned) = weighted, repeated
    assert w_warned == r_warned
    if w_warned:  # both stopped short (near-separation or near-infeasibility): nothing exact to compare
        event("both stopped short")
        return
    event("weights compared")
    assert np.all(weighted[counts == 0] == 0)
    assert_allclose(repeated, (weighted / np.where(counts > 0, counts, 1))[rows], rtol=0,
                    atol=rtol * weighted.max())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_counted_data(), st.sampled_from(["ATE", "ATT", "ATO"]))
def test_property_propensity_weights_duplication(data, estimand):
    X, t, counts = data
    _assert_duplication(PropensityWeights(estimand), X, t, counts, 1e-8)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_counted_data(), st.sampled_from(["ATE", "ATT"]))
def test_property_entropy_balance_duplication(data, estimand):
    X, t, counts = data
    _assert_duplication(EntropyBalance(estimand), X, t, counts, 1e-7)


# ---------------------------------------------------------------------------------------------------------------
# diagnostics
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lalonde_sw(lalonde):
    counts = np.random.default_rng(7).integers(1, 4, len(lalonde))
    return lalonde, counts


def _reliability_factor(k, v=None):
    """var with sampling weights k / var of the repeated rows, cobalt's n − 1 form in both (see the module notes).

    With analysis weights ``v`` per unit (each copy of unit i carrying v_i / k_i): (1 − Σ_copies u²) / (1 − Σ_i u_i²)
    with u the weights normalised to sum 1.
    """
    v = k.astype(float) if v is None else v
    u = v / v.sum()
    return (1.0 - np.sum(u**2 / k)) / (1.0 - np.sum(u**2))


def test_balance_table_with_sample_weights_versus_duplicated_rows(lalonde_sw):
    lalonde, counts = lalonde_sw
    X, t = lalonde[COVARIATES], lalonde["treat"].to_numpy()
    rows = np.repeat(np.arange(len(t)), counts)
    est = PropensityWeights("ATT").fit(X, t, sample_weight=counts)
    rep = PropensityWeights("ATT").fit(X.iloc[rows], t[rows])
    tab = balance_table(X, t, est, sample_weight=counts)
    dup = balance_table(X.iloc[rows], t[rows], rep)
    binary = tab["type"] == "Binary"
    # means, proportions and ECDFs treat an integer sampling weight as repeated rows (exact algebra)
    assert_allclose(tab.loc[binary, ["smd_un", "smd_adj"]], dup.loc[binary, ["smd_un", "smd_adj"]], rtol=1e-9,
                    atol=1e-13)
    assert_allclose(tab[["ks_un", "ks_adj"]], dup[["ks_un", "ks_adj"]], rtol=1e-9, atol=1e-13)
    # the SD (cobalt: col.w.v of the treated group with s.weights, n - 1 "reliability weights" form) is the
    # sampling-weighted one, which differs from the repeated rows' sample SD by sqrt(r), r the factor above
    r_treated = _reliability_factor(counts[t == 1])
    cont = ~binary
    assert_allclose(tab.loc[cont, "smd_un"] * np.sqrt(r_treated), dup.loc[cont, "smd_un"], rtol=1e-9)
    assert_allclose(tab.loc[cont, "smd_adj"] * np.sqrt(r_treated), dup.loc[cont, "smd_adj"], rtol=1e-9)
    # variance ratios: each group's variance carries its own factor (weighted: from its analysis weights)
    r_control = _reliability_factor(counts[t == 0])
    assert_allclose(tab.loc[cont, "vratio_un"] * r_control / r_treated, dup.loc[cont, "vratio_un"], rtol=1e-9)
    w = np.asarray(est.weights_)
    r_adj = _reliability_factor(counts[t == 1], w[t == 1]) / _reliability_factor(counts[t == 0], w[t == 0])
    assert_allclose(tab.loc[cont, "vratio_adj"] / r_adj, dup.loc[cont, "vratio_adj"], rtol=1e-9)


def test_effective_sample_size_and_weight_summary_use_the_product_weights(lalonde_sw):
    # WeightIt (summary.weightit, ESS.R): ESS(w * s.weights) per group, unweighted row ESS(s.weights); Kish's
    # design effect of unequal weighting. Not the repeated rows' ESS: sampling weights are not frequency weights.
    lalonde, counts = lalonde_sw
    X, t = lalonde[COVARIATES], lalonde["treat"].to_numpy()
    est = PropensityWeights("ATT").fit(X, t, sample_weight=counts)
    w = np.asarray(est.weights_)  # includes the sampling weights
    ess = effective_sample_size(est, t)
    for arm, group in enumerate(("control", "treated")):
        g = t == arm
        assert_allclose(ess[group], w[g].sum() ** 2 / np.sum(w[g] ** 2), rtol=1e-12)
        # before weighting: Kish's n / (1 + cv^2) of the sampling weights (population cv)
        k = counts[g]
        assert_allclose(effective_sample_size(counts, t)[group], g.sum() / (1 + np.var(k) / np.mean(k) ** 2),
                        rtol=1e-12)
        # repeated rows would count sum(k) independent units: more than the sampling-weighted ESS here
        repeated = np.repeat(w[g] / k, k)
        assert repeated.sum() ** 2 / np.sum(repeated**2) > ess[group]
    summary = weight_summary(est, t).table
    # the summary describes the product weights (WeightIt: object$weights * s.weights): totals are the
    # population totals of the repeated rows, and n counts the sample's units
    rows = np.repeat(np.arange(len(t)), counts)
    rep = PropensityWeights("ATT").fit(X.iloc[rows], t[rows])
    rep_summary = weight_summary(rep, t[rows]).table
    assert_allclose(summary.loc["sum"], rep_summary.loc["sum"], rtol=1e-9)
    assert_allclose(summary.loc["n"], [np.sum(t == 0), np.sum(t == 1)], rtol=0)
    assert_allclose(summary.loc["ess"], ess[["control", "treated"]], rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# effects and standard errors
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["simple", "additive", "interact", "aipw"])
@pytest.mark.parametrize("weighter", [PropensityWeights("ATE"), CBPS("ATT"), EntropyBalance("ATT")],
                         ids=lambda w: f"{type(w).__name__}-{w.estimand}")
def test_effect_estimate_with_sample_weights_equals_duplicated_rows(lalonde_sw, weighter, model):
    lalonde, counts = lalonde_sw
    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    rows = np.repeat(np.arange(len(t)), counts)
    weighted = WeightedEffect(weighter, model, "HC0").fit(X, t, y, sample_weight=counts)
    repeated = WeightedEffect(weighter, model, "HC0").fit(X.iloc[rows], t.iloc[rows], y.iloc[rows])
    # weights equal to the solvers' tolerance (1e-8 on the imbalance), effects then to about the same
    assert_allclose(weighted.result_.estimate, repeated.result_.estimate, rtol=1e-7)


def _wls_design(lalonde, with_covariates):
    design = pd.DataFrame({"const": 1.0, "treat": lalonde["treat"].astype(float)}, index=lalonde.index)
    if with_covariates:
        covs = pd.get_dummies(lalonde[COVARIATES], columns=["race"], drop_first=True, dtype=float)
        design = design.join(covs)
    return design


@pytest.mark.parametrize("model", ["simple", "additive"])
def test_hc0_with_sampling_weights_equals_statsmodels_wls(lalonde, model):
    # Reference: statsmodels WLS with the analysis weights (sampling weights included) and cov_type="HC0", the
    # sandwich (X'WX)^-1 X'W diag(e^2) W X (X'WX)^-1 of variance.md §9.2. For a linear additive model the
    # g-computation effect is the treatment coefficient itself, whatever population it is averaged over.
    sw = np.random.default_rng(5).uniform(0.2, 3.0, len(lalonde))
    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    fit = WeightedEffect(PropensityWeights("ATT"), model, "HC0").fit(X, t, y, sample_weight=sw)
    ref = sm.WLS(y, _wls_design(lalonde, model == "additive"), weights=np.asarray(fit.weighter_.weights_)).fit(
        cov_type="HC0")
    assert_allclose(fit.estimate_, ref.params["treat"], rtol=1e-9)  # two least-squares solves
    assert_allclose(fit.se_, ref.bse["treat"], rtol=1e-8)


def _closed_form_se(Z, a, y, s, estimand, meat):
    """Hájek IPW with a logistic PS and sampling weights s: SE from the influence functions of variance.md §3/§5.

    Estimating equations (each multiplied by s_i): ψ_μ1 = s A w1 (y − μ1), ψ_μ0 = s (1 − A) w0 (y − μ0),
    S = s (A − e) z. With D_a = Σ s 1{A=a} w_a, H_a = Σ s 1{A=a} (y − μ_a) ∂w_a/∂β and E = Σ s e (1 − e) z zᵀ:
    IF_i = [ψ_μ1,i + H1ᵀ E⁻¹ S_i] / D1 − [ψ_μ0,i + H0ᵀ E⁻¹ S_i] / D0.
    ``meat="sampling"``: V = Σ IF² (independent rows carrying known weights: s² in the meat, as in survey
    M-estimation). ``meat="frequency"``: each row stands for s identical independent units, V = Σ IF² / s.
    """
    design = np.column_stack([np.ones(len(a)), Z])
    beta = sm.GLM(a, design, family=sm.families.Binomial(), freq_weights=s).fit(tol=1e-13).params
    e = expit(design @ beta)
    if estimand == "ATE":
        w1, w0 = 1 / e, 1 / (1 - e)
        dw1, dw0 = -((1 - e) / e)[:, None] * design, (e / (1 - e))[:, None] * design
    else:  # ATT
        w1, w0 = np.ones_like(e), e / (1 - e)
        dw1, dw0 = np.zeros_like(design), w0[:, None] * design
    E = (design * (s * e * (1 - e))[:, None]).T @ design
    S = design * (s * (a - e))[:, None]
    influence = 0.0
    for arm, w, dw, sign in ((1, w1, dw1, 1.0), (0, w0, dw0, -1.0)):
        in_arm = s * (a == arm)
        mu = np.sum(in_arm * w * y) / np.sum(in_arm * w)
        psi = in_arm * w * (y - mu)
        H = (in_arm * (y - mu)) @ dw
        influence = influence + sign * (psi + S @ np.linalg.solve(E, H)) / np.sum(in_arm * w)
    return float(np.sqrt(np.sum(influence**2 / (s if meat == "frequency" else 1.0))))


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_asympt_se_with_sampling_weights_equals_the_closed_form(lalonde_sw, estimand):
    lalonde, counts = lalonde_sw
    X, t, y = lalonde[COVARIATES], lalonde["treat"], lalonde["re78"]
    Z = pd.get_dummies(X, columns=["race"], drop_first=True, dtype=float).to_numpy()
    a, yv = t.to_numpy(), y.to_numpy()
    weighted = WeightedEffect(PropensityWeights(estimand)).fit(X, t, y, sample_weight=counts)
    rows = np.repeat(np.arange(len(t)), counts)
    repeated = WeightedEffect(PropensityWeights(estimand)).fit(X.iloc[rows], t.iloc[rows], y.iloc[rows])
    # same estimate; different SEs, each the closed form with its own meat. Tolerance 1e-6: statsmodels' IRLS
    # (deviance tolerance 1e-13) against our Newton, the SE depending smoothly on the coefficients.
    assert_allclose(weighted.estimate_, repeated.estimate_, rtol=1e-9)
    assert_allclose(weighted.se_, _closed_form_se(Z, a, yv, counts.astype(float), estimand, "sampling"), rtol=1e-6)
    assert_allclose(repeated.se_, _closed_form_se(Z, a, yv, counts.astype(float), estimand, "frequency"), rtol=1e-6)
    assert not np.isclose(weighted.se_, repeated.se_, rtol=1e-3)  # sampling weights are not frequency weights


@pytest.mark.parametrize("kind", ["bootstrap", "fwb"])
def test_a_zero_sampling_weight_unit_never_affects_the_bootstrap(lalonde, kind):
    # Each replicate resamples rows with their sampling weights (bootstrap) or multiplies them by Exp(1) draws
    # (fwb), so a unit of weight 0 stays at weight 0 in every replicate: changing its data changes nothing.
    X, t, y = lalonde[COVARIATES].copy(), lalonde["treat"], lalonde["re78"].copy()
    sw = np.random.default_rng(2).uniform(0.5, 2.0, len(t))
    zero = np.zeros(len(t), dtype=bool)
    zero[::31] = True
    sw[zero] = 0.0
    effect = WeightedEffect(PropensityWeights("ATT"), "additive", kind, n_bootstrap=40, random_state=4)
    base = clone(effect).fit(X, t, y, sample_weight=sw)
    X.loc[zero, "age"], X.loc[zero, "re74"], y[zero] = 60.0, 3e4, 1e7
    changed = clone(effect).fit(X, t, y, sample_weight=sw)
    assert base.n_failed_ == changed.n_failed_
    # identical replicate draws; only the rounding of sums that now hold other (zero-weighted) values differs
    assert_allclose(changed.result_.draws, base.result_.draws, rtol=1e-9)
    assert_allclose(changed.se_, base.se_, rtol=1e-9)


def test_fwb_with_a_weighter_that_refuses_sampling_weights_says_why():
    # the fractional weighted bootstrap passes Exp(1) draws as sample_weight; a weighter without sampling weights
    # fails in every replicate, and the error quotes its reason instead of only counting failures
    X, t, _ = _toy()
    y = X["x1"] + t
    effect = WeightedEffect(UniformTransformerWeights(random_state=0), vcov="fwb", n_bootstrap=5, random_state=0)
    with pytest.raises(ValueError, match="every one of the 5 fwb replicates failed; the first: ValueError: "
                                         "sample_weight is not supported by UniformTransformerWeights"):
        effect.fit(X, t, y)


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------
def test_cli_sample_weight_column(tmp_path, capsys):
    frame = pd.read_csv(_shared_file(SHARED / "data" / "lalonde_matchit614.csv"), index_col="id")
    frame["race"] = pd.Categorical(frame["race"], categories=["black", "hispan", "white"])
    frame["sw"] = np.random.default_rng(8).uniform(0.5, 2.0, len(frame)).round(3)
    path = tmp_path / "data.csv"
    frame.to_csv(path)
    assert main(["--data", str(path), "--sample-weight", "sw"]) == 0
    out = capsys.readouterr().out
    covs = [c for c in frame.columns if c not in ("treat", "re78", "sw")]  # the weight column is no covariate
    ref = WeightedEffect(PropensityWeights("ATT")).fit(frame[covs], frame["treat"], frame["re78"],
                                                      sample_weight=frame["sw"])
    assert f"estimate {ref.estimate_:.4f}   std. error {ref.se_:.4f}" in out
    assert "Weights include the sampling weights: column 'sw'" in out
    assert "\nsw " not in out  # the weight column is no balance row
    before = effective_sample_size(frame["sw"], frame["treat"])  # WeightIt's unweighted ESS(s.weights)
    assert f"{before['control']:.1f}" in out
    frame.loc[frame.index[0], "sw"] = -1.0
    frame.to_csv(path)
    assert main(["--data", str(path), "--sample-weight", "sw"]) == 2
    assert "sample_weight has 1 negative values" in capsys.readouterr().err
    assert main(["--data", str(path), "--sample-weight", "nope"]) == 2
    assert "--sample-weight: column(s) ['nope'] not in the data" in capsys.readouterr().err
