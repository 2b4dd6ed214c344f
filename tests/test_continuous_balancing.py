"""Balancing weights for a continuous treatment: entropy balancing, stable balancing weights (optweight) and energy
balancing (distance covariance), against WeightIt 1.5.1 and by their defining identities.

References: the oracle ``weightit-continuous`` (lalonde, treatment ``re75``, covariates age, educ, race, married,
nodegree, re74; see ``shared/oracle/README.md``): the 614 weights, their ESS, and the slope of ``re78 ~ re75``
with its HC0 and "asympt" SEs; the defining identities (weighted means of the treatment and the covariates
unchanged, zero weighted treatment-covariate covariances); invariance to the treatment's scale; a closed-form
objective for energy balancing.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from balance import EnergyBalance, EntropyBalance, ExtremeWeightsWarning, StableWeights
from balance.effects._outcome import OutcomeEquations
from balance.effects._sandwich import stacked_cov

from .conftest import SHARED, _shared_file
from .test_cbps import check_m_parts

CONT = SHARED / "oracle" / "weightit-continuous"
COVS = ["age", "educ", "race", "married", "nodegree", "re74"]


@pytest.fixture(scope="module")
def problem(lalonde):
    """The oracle's problem: re75 on the other covariates."""
    return lalonde[COVS], lalonde["re75"]


def _oracle_weights(lalonde, method):
    ref = pd.read_csv(_shared_file(CONT / "weights" / f"{method}.csv"), index_col="id")
    assert ref.index.equals(lalonde.index)
    assert_allclose(ref["re75"], lalonde["re75"])
    return ref["weight"].to_numpy()


def _oracle_table(name):
    return pd.read_csv(_shared_file(CONT / name))


def _ess(w):
    return w.sum() ** 2 / (w ** 2).sum()


def _design(X):
    """Model matrix of X with every level of a categorical (the balance identities hold for all levels)."""
    return pd.get_dummies(X, columns=[c for c in X if isinstance(X[c].dtype, pd.CategoricalDtype)],
                          dtype=float).to_numpy(dtype=float)


def _weighted_cov(w, a, Z):
    """Σ w (a − ā_w)(z − z̄_w) / Σ w per column: the covariance every continuous method sets to (about) 0."""
    w = np.asarray(w) / np.sum(w)
    return ((a - w @ a) * w) @ (Z - w @ Z)


def _wls_equations(y, a, w):
    """Outcome equations of the weighted least squares y ~ 1 + a (closed form), for the stacked sandwich."""
    D = np.column_stack([np.ones(len(a)), a])
    beta = np.linalg.solve((D * w[:, None]).T @ D, (D * w[:, None]).T @ y)
    r = y - D @ beta
    return OutcomeEquations(params=beta, names=["(Intercept)", "a"], psi=D * (w * r)[:, None],
                            jacobian=-(D * w[:, None]).T @ D, dpsi_dw=D * r[:, None], mu_map=np.eye(2),
                            averaging=np.zeros(2, dtype=bool))


def _slope_ref(method, vcov):
    ref = _oracle_table("coefficients.csv").query("case == @method and vcov == @vcov").set_index("term")
    return ref.loc["re75"]


def _simulate(rng, n=400, p=3):
    X = rng.normal(size=(n, p))
    a = X @ np.linspace(0.6, -0.3, p) + rng.normal(size=n)
    return X, a


# ---------------------------------------------------------------------------------------------------------------
# entropy balancing
# ---------------------------------------------------------------------------------------------------------------
def test_ebal_matches_weightit(lalonde, problem):
    X, a = problem
    eb = EntropyBalance("ATE").fit(X, a)
    ref = _oracle_weights(lalonde, "ebal")
    # the dual's solution is exact up to the solvers' tolerances (ours 1e-8 SDs of imbalance, WeightIt's BFGS
    # reltol 1e-10): observed 6e-9 relative
    assert_allclose(eb.weights_, ref, rtol=1e-8)
    assert eb.converged_ and eb.imbalance_ < 1e-8
    assert eb.weights_.index.equals(X.index)
    summary = _oracle_table("weight_summary.csv").set_index("case").loc["ebal"]
    assert_allclose(_ess(eb.weights_.to_numpy()), summary["ess_weighted"], rtol=1e-8)
    assert_allclose(eb.weights_.sum(), summary["sum_w"], rtol=1e-10)  # WeightIt's scale: mean 1
    assert eb.ess_["all"] == pytest.approx(summary["ess_weighted"], rel=1e-8)
    assert eb.constraints_[:2] == ["treatment", "age"] and eb.constraints_[-1] == "treatment:re74"


def test_ebal_slope_and_ses_match_weightit(lalonde, problem):
    """HC0 with the weights fixed is WeightIt's; its "asympt" holds the balance targets (sample means) fixed,
    which ``fixed_targets=True`` reproduces; the package's default also estimates them (a larger SE here)."""
    X, a = problem
    eb = EntropyBalance("ATE").fit(X, a)
    eq = _wls_equations(lalonde["re78"].to_numpy(), a.to_numpy(), eb.weights_.to_numpy())
    assert_allclose(eq.params[1], _slope_ref("ebal", "HC0")["estimate"], rtol=1e-7)
    # 1e-6: the weights agree to 6e-9, the sandwich is exact algebra on them
    assert_allclose(np.sqrt(stacked_cov(eq)[0][1, 1]), _slope_ref("ebal", "HC0")["se"], rtol=1e-6)
    fixed = np.sqrt(stacked_cov(eq, None, eb._m_parts(X, a, fixed_targets=True))[0][1, 1])
    assert_allclose(fixed, _slope_ref("ebal", "asympt")["se"], rtol=1e-6)
    estimated = np.sqrt(stacked_cov(eq, None, eb._m_parts(X, a))[0][1, 1])
    assert estimated > fixed * 1.005  # not WeightIt's number: the targets' sampling variability is included


def test_ebal_defining_identities(rng):
    X, a = _simulate(rng)
    sw = rng.uniform(0.5, 2, len(a))
    eb = EntropyBalance("ATE", moments=2, interactions=True).fit(X, a, sample_weight=sw)
    w = eb.weights_
    terms = np.column_stack([X, X ** 2, X[:, 0] * X[:, 1], X[:, 0] * X[:, 2], X[:, 1] * X[:, 2]])
    u = sw / sw.sum()
    # means unchanged, covariances zero (relative to the unweighted covariance's scale), sum = sampling total
    assert_allclose(w @ terms / w.sum(), u @ terms, atol=1e-9)
    assert_allclose(w @ a / w.sum(), u @ a, atol=1e-9)
    assert_allclose(_weighted_cov(w, a, terms), 0, atol=1e-9)
    assert_allclose(w.sum(), sw.sum(), rtol=1e-10)
    assert len(eb.constraints_) == 1 + 2 * 9


def test_ebal_scale_invariance(problem):
    """The treatment times 1e8 (and the covariates' scales) change no weight: everything is standardised."""
    X, a = problem
    w = EntropyBalance("ATE").fit(X, a).weights_
    assert_allclose(EntropyBalance("ATE").fit(X, a * 1e8).weights_, w, rtol=1e-8)
    assert_allclose(EntropyBalance("ATE").fit(X, a * 1e-8 + 3).weights_, w, rtol=1e-8)


@pytest.mark.parametrize("fixed_targets", [False, True])
def test_ebal_m_parts_are_consistent(rng, fixed_targets):
    X, a = _simulate(rng, n=300)
    sw = rng.uniform(0.5, 2, len(a))
    eb = EntropyBalance("ATE").fit(X, a, sample_weight=sw)
    parts = eb._m_parts(X, a, sample_weight=sw, fixed_targets=fixed_targets)
    n_mean = 0 if fixed_targets else 4
    assert parts.names[n_mean:n_mean + 2] == ("(Intercept)", "treatment")
    check_m_parts(parts, eb.weights_)


@pytest.mark.parametrize("cls", [EntropyBalance, StableWeights, EnergyBalance])
def test_estimand_other_than_ate_is_refused(problem, cls):
    X, a = problem
    with pytest.raises(ValueError, match=f"estimand='ATT' is not supported by {cls.__name__} for a continuous"):
        cls("ATT").fit(X, a)


def test_ebal_refusals(problem):
    X, a = problem
    with pytest.raises(ValueError, match="tols > 0.*not available for a continuous treatment"):
        EntropyBalance("ATE", tols=0.1).fit(X, a)
    with pytest.raises(ValueError, match="distinct value"):
        EntropyBalance("ATE", treatment_type="continuous").fit(X, np.full(len(a), 2.5))


def test_ebal_infeasible_is_reported(rng):
    """x = 1{A > mean A} makes (A − Ā)(x − x̄) positive for every unit: no positive weights give it mean 0, and the
    error says which condition and what to do."""
    X, a = _simulate(rng, n=200)
    X = np.column_stack([X, (a > a.mean()).astype(float)])
    with pytest.raises(ValueError, match=r"infeasible.*'treatment:x3'.*StableWeights\(tols=...\)"):
        EntropyBalance("ATE").fit(X, a)


# ---------------------------------------------------------------------------------------------------------------
# stable balancing weights (optweight)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["clarabel", "osqp"])
def test_stable_matches_weightit(lalonde, problem, solver):
    X, a = problem
    sw = StableWeights("ATE", min_weight=1e-8, solver=solver).fit(X, a)
    ref = _oracle_weights(lalonde, "optweight")
    # both answers are polished KKT points of the same strictly convex QP (observed 7e-13 relative); 1e-9 leaves
    # room for the KKT tolerance (1e-9) of the polish
    assert_allclose(sw.weights_, ref, rtol=1e-9, atol=1e-12)
    assert sw.converged_ and sw.polished_ and sw.n_clamped_ >= 0
    summary = _oracle_table("weight_summary.csv").set_index("case").loc["optweight"]
    assert_allclose(_ess(sw.weights_.to_numpy()), summary["ess_weighted"], rtol=1e-9)
    assert_allclose(sw.weights_.sum(), 614.0, rtol=1e-12)
    eq = _wls_equations(lalonde["re78"].to_numpy(), a.to_numpy(), sw.weights_.to_numpy())
    assert_allclose(eq.params[1], _slope_ref("optweight", "HC0")["estimate"], rtol=1e-8)
    assert_allclose(np.sqrt(stacked_cov(eq)[0][1, 1]), _slope_ref("optweight", "HC0")["se"], rtol=1e-8)


def test_stable_defining_identities(rng):
    X, a = _simulate(rng)
    sw = rng.uniform(0.5, 2, len(a))
    fit = StableWeights("ATE").fit(X, a, sample_weight=sw)
    w, u = fit.weights_, sw / sw.sum()
    assert_allclose(w @ X / w.sum(), u @ X, atol=1e-9)
    assert_allclose(w @ a / w.sum(), u @ a, atol=1e-9)
    assert_allclose(_weighted_cov(w, a, X), 0, atol=1e-9)
    assert_allclose(fit.smd_, 0, atol=1e-9)
    assert_allclose(w.sum(), sw.sum(), rtol=1e-12)


def test_stable_tolerances_are_correlations(rng):
    """With tols the correlations (optweight's rows, recomputed here from the weights) stay within tols, the
    binding ones at it, and the weights are closer to uniform than with exact balance."""
    X, a = _simulate(rng)
    exact = StableWeights("ATE").fit(X, a)
    fit = StableWeights("ATE", tols=0.05).fit(X, a)
    w = fit.weights_ / fit.weights_.mean()
    z = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    at = (a - a.mean()) / a.std(ddof=1)
    corr = (w * at) @ z / len(a) / (1 - 1 / len(a))
    assert_allclose(fit.smd_, corr, atol=1e-12)
    assert np.all(np.abs(corr) <= 0.05 + 1e-9) and np.isclose(np.abs(corr).max(), 0.05, atol=1e-9)
    assert_allclose(w @ a / w.sum(), a.mean(), atol=1e-9)  # means stay exact
    assert np.var(w) < np.var(exact.weights_)


def test_stable_scale_invariance(problem):
    X, a = problem
    w = StableWeights("ATE").fit(X, a).weights_
    assert_allclose(StableWeights("ATE").fit(X, a * 1e8).weights_, w, rtol=1e-9, atol=1e-12)


def test_stable_infeasible_is_reported_with_the_smallest_tolerance(rng):
    from balance.weights import smallest_feasible_tols

    X, a = _simulate(rng, n=200)
    X = np.column_stack([X, (a > a.mean()).astype(float)])  # (A − Ā)(x − x̄) > 0 for every unit
    with pytest.raises(ValueError, match=r"infeasible.*correlation zero.*smallest feasible common tolerance is "
                                         r"\S+ correlation units"):
        StableWeights("ATE").fit(X, a)
    t = smallest_feasible_tols(X, a, estimand="ATE")
    assert 0 < t < 1
    with pytest.warns(ExtremeWeightsWarning, match="extreme weights of all"):  # at the edge of feasibility
        fit = StableWeights("ATE", tols=1.01 * t).fit(X, a)
    assert np.abs(fit.smd_).max() <= 1.01 * t + 1e-9
    with pytest.raises(ValueError, match="infeasible"):
        StableWeights("ATE", tols=0.9 * t).fit(X, a)


# ---------------------------------------------------------------------------------------------------------------
# energy balancing (distance covariance)
# ---------------------------------------------------------------------------------------------------------------
def _dcov_objective(X, a, w):
    """WeightIt 1.5.1's continuous energy objective, written from its definition (Huling, Greifer & Chen 2023)
    with dense matrices: the weighted distance covariance of the scaled covariates and treatment (distance matrices
    double-centred at the sample) plus the dimension-adjusted energy distances of the weighted treatment and
    covariate distributions from the sample's; no penalty. ``w`` has mean 1."""
    from scipy.spatial.distance import cdist

    Z = _design(X)
    Z = Z[:, Z.std(axis=0) > 0]
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0, ddof=1)
    DX = cdist(Z, Z)
    at = np.asarray(a, dtype=float) / np.std(a, ddof=1)
    DA = np.abs(at[:, None] - at[None, :])
    n = len(at)
    x, u = np.asarray(w) / n, np.full(n, 1.0 / n)

    def centred(D):
        return D - D.mean(axis=0)[None, :] - D.mean(axis=1)[:, None] + D.mean()

    def energy(D):
        return 2 * u @ D @ x - x @ D @ x - u @ D @ u

    ca = 1 / (1 + np.sqrt(Z.shape[1]))
    return x @ (centred(DX) * centred(DA)) @ x + ca * energy(DA) + (1 - ca) * energy(DX)


def test_energy_matches_weightit(lalonde, problem):
    X, a = problem
    en = EnergyBalance("ATE", min_weight=1e-8).fit(X, a)
    ref = _oracle_weights(lalonde, "energy")
    # OSQP with WeightIt's continuous settings (eps_abs = eps_rel = 1e-8, polish): the README's claim is agreement to
    # the solver's tolerance, about 1e-6 on weights of mean 1 (observed 7e-10)
    assert_allclose(en.weights_, ref, atol=1e-6)
    assert en.solver_ == "osqp" and en.converged_ and en.status_ == "solved"
    summary = _oracle_table("weight_summary.csv").set_index("case").loc["energy"]
    assert_allclose(_ess(en.weights_.to_numpy()), summary["ess_weighted"], rtol=1e-6)
    eq = _wls_equations(lalonde["re78"].to_numpy(), a.to_numpy(), en.weights_.to_numpy())
    assert_allclose(eq.params[1], _slope_ref("energy", "HC0")["estimate"], rtol=1e-6)
    assert_allclose(np.sqrt(stacked_cov(eq)[0][1, 1]), _slope_ref("energy", "HC0")["se"], rtol=1e-6)
    # the objective reported is the definition's, at our weights and at equal weights (exact algebra: 1e-10)
    assert_allclose(en.energy_distance_, _dcov_objective(X, a, en.weights_), rtol=1e-10)
    assert_allclose(en.initial_energy_distance_, _dcov_objective(X, a, np.ones(len(a))), rtol=1e-10)
    assert en.energy_distance_ < 0.1 * en.initial_energy_distance_
    # WeightIt's weights are no better: ours are its minimiser to the solver's tolerance
    assert en.energy_distance_ <= _dcov_objective(X, a, ref) * (1 + 1e-6)


def test_energy_apg_is_matrix_free_and_reaches_the_minimum(rng):
    """The APG solver, from the stored float32 matrix or recomputing it each product (memory_limit=0), reaches the
    objective of the exact OSQP solution to its stopping tolerance."""
    X, a = _simulate(rng, n=500)
    exact = EnergyBalance("ATE").fit(X, a)
    assert exact.solver_ == "osqp" and exact.converged_
    stored = EnergyBalance("ATE", solver="apg", tol=1e-6).fit(X, a)
    recomputed = EnergyBalance("ATE", solver="apg", tol=1e-6, memory_limit=0).fit(X, a)
    for fit in (stored, recomputed):
        assert fit.solver_ == "apg" and fit.converged_
        # the penalised objectives (penalty 1e-4 adds ~2e-7 here) agree to 1e-3 relative at tol 1e-6
        assert fit.energy_distance_ == pytest.approx(exact.energy_distance_, rel=1e-3)
        assert fit.duality_gap_ < 0.5 * fit.energy_distance_
    assert_allclose(recomputed.weights_, stored.weights_, atol=1e-3)  # float32 storage only perturbs the path


def test_energy_scale_invariance_and_sample_weights(problem, rng):
    X, a = problem
    w = EnergyBalance("ATE").fit(X, a).weights_
    # treatment times 1e8: the same problem up to rounding, solved by OSQP to its tolerance
    assert_allclose(EnergyBalance("ATE").fit(X, a * 1e8).weights_, w, atol=1e-5)
    # integer sampling weights act as repeated rows, up to the covariates' and the treatment's SDs, whose n − 1
    # counts rows differently (a 0.3 % change of scale here, which moves the objective by about as much)
    Xs, at = _simulate(rng, n=120)
    k = rng.integers(1, 3, len(at))
    rep = np.repeat(np.arange(len(at)), k)
    weighted = EnergyBalance("ATE", penalty=0.0, solver="apg", tol=1e-9, max_iter=20000).fit(Xs, at, sample_weight=k)
    repeated = EnergyBalance("ATE", penalty=0.0, solver="apg", tol=1e-9, max_iter=20000).fit(Xs[rep], at[rep])
    assert weighted.energy_distance_ == pytest.approx(repeated.energy_distance_, rel=1e-2)
    agg = np.bincount(rep, weights=repeated.weights_)
    assert_allclose(weighted.weights_, agg, atol=0.05 * agg.max())


def test_energy_refusals(problem):
    X, a = problem
    with pytest.raises(ValueError, match="parts are not available for a continuous treatment"):
        EnergyBalance("ATE", partition_size=100).fit(X, a)


# ---------------------------------------------------------------------------------------------------------------
# reporting: convergence, solver status, extreme weights
# ---------------------------------------------------------------------------------------------------------------
def test_non_convergence_is_reported(rng):
    from sklearn.exceptions import ConvergenceWarning

    X, a = _simulate(rng, n=300)
    with pytest.warns(ConvergenceWarning, match="EntropyBalance did not converge in 1 iterations"):
        eb = EntropyBalance("ATE", max_iter=1).fit(X, a)
    assert not eb.converged_ and eb.imbalance_ > 1e-8
    with pytest.warns(ConvergenceWarning, match="the apg solver stopped with status 'max_iter' after 2 iterations"):
        en = EnergyBalance("ATE", solver="apg", max_iter=2).fit(X, a)
    assert not en.converged_ and en.status_ == "max_iter"
    with pytest.warns(ConvergenceWarning, match="osqp solver stopped .* correlation units on"):
        sw = StableWeights("ATE", solver="osqp", max_iter=20, norm="l1").fit(X, a)
    assert not sw.converged_ and sw.solver_status_ == "maximum iterations reached"


def test_extreme_weights_are_reported():
    """A treatment almost determined by a covariate: near the edge of feasibility a few units carry the weight,
    and both the stalled solve and the shared extreme-weights check (the whole sample, a continuous treatment's one
    group) say so."""
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(20261123)
    X = rng.normal(size=(300, 3))
    a = X[:, 0] + 0.03 * rng.normal(size=300)
    with pytest.warns(ExtremeWeightsWarning, match="EntropyBalance: extreme weights of all"), \
            pytest.warns(ConvergenceWarning, match=r"did not converge.*StableWeights\(tols=...\) for approximate"):
        eb = EntropyBalance("ATE").fit(X, a)
    assert not eb.converged_ and eb.ess_["all"] < 10


@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_stable_other_norms_keep_the_identities(rng, norm):
    X, a = _simulate(rng)
    fit = StableWeights("ATE", norm=norm).fit(X, a)
    w = fit.weights_
    assert fit.converged_
    assert_allclose(w @ a / w.sum(), a.mean(), atol=1e-8)
    assert_allclose(w @ X / w.sum(), X.mean(axis=0), atol=1e-8)
    assert_allclose(_weighted_cov(w, a, X), 0, atol=1e-8)
