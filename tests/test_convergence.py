"""Solver convergence across the package (issue 10, item 5).

Every iterative solver exposes ``converged_`` and ``n_iter_``. Forced to stop early (``max_iter=1``, a few epochs),
it warns with a ConvergenceWarning whose message names the estimator, the iteration count and the quantity its
stopping rule compares with the tolerance (remaining imbalance, score norm, KKT residual, ...), a number parsed here
and checked to exceed that tolerance, and suggests what to raise; the weights stay finite. The same estimator run
to its default limits converges without a warning. Nuisance models of balance.hte are scikit-learn's: their own
ConvergenceWarnings must reach the user; bootstrap replicates that do not converge are counted.
"""

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDRegressor

from balance import (CBIPM, CBPS, EnergyBalance, EntropyBalance, InverseProbabilityTilting, PropensityWeights,
                     StableWeights)
from balance.effects import WeightedEffect
from balance.hte import FrontDoorDRLearner, PseudoOutcomeLearner, TLearner, make_front_door, make_hte_setup
from balance.weights._cbipm_solve import PLATEAU_RTOL

NUMBER = r"([0-9.]+(?:e[+-]?[0-9]+)?)"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 3))
    a = rng.binomial(1, expit(X @ np.array([0.8, 0.2, -0.5]) - 0.3))
    return X, a


@dataclass(frozen=True)
class Case:
    """A solver path: the estimator stopped at ``cap`` and its default (converging) twin.

    ``left`` is the regular expression of the number the warning states; ``tol`` the tolerance it must exceed.
    ``patch`` maps (module, attribute) to a value set for both fits, to reach a code path (the numba kernel, no
    polish) on small data.
    """

    stopped: object
    solved: object
    cap: int
    left: str
    tol: float
    patch: dict = field(default_factory=dict)


NEWTON = 1e-8  # the default tol of the Newton solvers
IMBALANCE = rf"largest remaining imbalance is {NUMBER} SDs"
KKT = rf"KKT residual {NUMBER} > solver_tol"
NO_POLISH = {("balance.weights._qp", "POLISH_ROUNDS"): 0}

CASES = {
    "PropensityWeights-newton": Case(PropensityWeights("ATE", max_iter=1), PropensityWeights("ATE"), 1,
                                     rf"score norm {NUMBER}", NEWTON),
    "CBPS-ATT": Case(CBPS("ATT", max_iter=1), CBPS("ATT"), 1, IMBALANCE, NEWTON),
    "CBPS-ATE": Case(CBPS("ATE", max_iter=1), CBPS("ATE"), 1, IMBALANCE, NEWTON),
    "CBPS-ATO-logistic": Case(CBPS("ATO", max_iter=1), CBPS("ATO"), 1, IMBALANCE, NEWTON),
    # the GMM step converges quadratically and is finished by Newton steps: only a tolerance below rounding stops it
    "CBPS-over-GMM": Case(CBPS("ATT", over=True, tol=1e-300, max_iter=3), CBPS("ATT", over=True), 3,
                          rf"standardised coefficients by {NUMBER}", 1e-300),
    "IPT-ATT": Case(InverseProbabilityTilting("ATT", max_iter=1), InverseProbabilityTilting("ATT"), 1, IMBALANCE,
                    NEWTON),
    "IPT-ATE-two-models": Case(InverseProbabilityTilting("ATE", max_iter=1), InverseProbabilityTilting("ATE"), 1,
                               IMBALANCE, NEWTON),
    "EntropyBalance-ATT": Case(EntropyBalance("ATT", max_iter=1), EntropyBalance("ATT"), 1, IMBALANCE, NEWTON),
    "EntropyBalance-ATE": Case(EntropyBalance("ATE", max_iter=1), EntropyBalance("ATE"), 1, IMBALANCE, NEWTON),
    "EntropyBalance-numba-kernel": Case(EntropyBalance("ATT", max_iter=1), EntropyBalance("ATT"), 1, IMBALANCE,
                                        NEWTON, {("balance.weights._tilt", "_KERNEL_ROWS"): 0}),
    "EntropyBalance-tols-LBFGS": Case(EntropyBalance("ATT", tols=0.05, max_iter=1), EntropyBalance("ATT", tols=0.05),
                                      1, IMBALANCE, NEWTON),
    "StableWeights-l2-clarabel-no-polish": Case(StableWeights(max_iter=2), StableWeights(), 2, KKT, 1e-8, NO_POLISH),
    "StableWeights-l2-osqp-no-polish": Case(StableWeights(solver="osqp", max_iter=50), StableWeights(solver="osqp"),
                                            50, KKT, 1e-8, NO_POLISH),
    "StableWeights-l1-clarabel": Case(StableWeights(norm="l1", max_iter=2), StableWeights(norm="l1"), 2, KKT, 1e-8),
    # ADMM is slow on linear programmes: OSQP needs 24,000 iterations at solver_tol=1e-5 here, more than the
    # default 200,000 at the default 1e-8 (which therefore warns)
    "StableWeights-linf-osqp": Case(StableWeights(norm="linf", solver="osqp", max_iter=50),
                                    StableWeights(norm="linf", solver="osqp", solver_tol=1e-5), 50, KKT, 1e-8),
    "EnergyBalance-osqp": Case(EnergyBalance(solver="osqp", max_iter=1), EnergyBalance(solver="osqp"), 1,
                               rf"residual {NUMBER} > eps_abs", 1e-8),
    "EnergyBalance-apg": Case(EnergyBalance(solver="apg", max_iter=5), EnergyBalance(solver="apg"), 5,
                              rf"fell by {NUMBER}", 1e-4),
    "EnergyBalance-apg-parts": Case(EnergyBalance(solver="apg", partition_size=50, max_iter=5, random_state=0),
                                    EnergyBalance(solver="apg", partition_size=50, random_state=0), 5,
                                    rf"fell by {NUMBER}", 1e-4),
    "CBIPM-mmd-adam": Case(CBIPM(n_epochs=20), CBIPM(), 20, rf"moved by {NUMBER}", PLATEAU_RTOL),
    "CBIPM-mmd-linear-ATE": Case(CBIPM("ATE", model="linear", n_epochs=20, random_state=0),
                                 CBIPM("ATE", model="linear", random_state=0), 20, rf"moved by {NUMBER}",
                                 PLATEAU_RTOL),
    "CBIPM-sipm-adam": Case(CBIPM(ipm="sipm", n_epochs=20, n_sigmoids=10, random_state=0),
                            CBIPM(ipm="sipm", n_sigmoids=10, random_state=0), 20, rf"moved by {NUMBER}",
                            PLATEAU_RTOL),
    "CBIPM-wass-adam": Case(CBIPM(ipm="wass", n_epochs=20, hidden=10, random_state=0),
                            CBIPM(ipm="wass", hidden=10, random_state=0), 20, rf"moved by {NUMBER}", PLATEAU_RTOL),
    "CBIPM-qp-clarabel": Case(CBIPM(solver="qp", n_epochs=2), CBIPM(solver="qp"), 2, rf"is {NUMBER} > 1e-10",
                              1e-10),
}


def _patch(monkeypatch, case):
    for (module, name), value in case.patch.items():
        monkeypatch.setattr(f"{module}.{name}", value)


def _fit(est, X, a):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, a)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("name", list(CASES))
def test_forced_non_convergence_is_reported(name, data, monkeypatch):
    case = CASES[name]
    _patch(monkeypatch, case)
    est = case.stopped
    caught = _fit(est, *data)
    messages = [str(w.message) for w in caught if re.search(case.left, str(w.message))]
    assert messages, f"no ConvergenceWarning stating the remaining quantity; got {[str(w.message) for w in caught]}"
    message = messages[0]
    assert type(est).__name__ in message
    assert int(re.search(r"(\d+) (?:iterations|epochs)", message).group(1)) == case.cap
    assert re.search(r"raise (?:max_iter|n_epochs)", message, flags=re.IGNORECASE)
    left = float(re.search(case.left, message).group(1))
    assert np.isfinite(left) and left > case.tol
    assert est.converged_ is False or est.converged_ == np.False_
    assert est.n_iter_ == case.cap
    assert np.all(np.isfinite(est.weights_)) and np.all(np.asarray(est.weights_) >= 0)


@pytest.mark.parametrize("name", list(CASES))
def test_default_limits_converge_silently(name, data, monkeypatch):
    case = CASES[name]
    _patch(monkeypatch, case)
    est = case.solved
    assert _fit(est, *data) == []
    assert bool(est.converged_) is True
    assert isinstance(est.n_iter_, (int, np.integer)) and 1 <= est.n_iter_
    assert np.all(np.isfinite(est.weights_))


def test_polish_certifies_an_l2_solution_the_solver_left_unfinished(data):
    # The active-set polish solves the KKT system exactly from the constraints active at Clarabel's first iterate:
    # converged_ is then True (no warning) although the solver stopped at its limit, and the weights are the
    # optimum's (the full solve's, to the polish's KKT tolerance 1e-9).
    X, a = data
    early = StableWeights(max_iter=1)
    assert _fit(early, X, a) == []
    assert early.converged_ and early.polished_ and early.n_iter_ == 1
    full = StableWeights().fit(X, a)
    np.testing.assert_allclose(early.weights_, full.weights_, rtol=0, atol=1e-8)


def test_stable_weights_refuses_an_iterate_with_an_empty_group(data):
    # OSQP's first iterate for the L-infinity problem puts every control weight at the floor 0: no weights can be
    # formed from it (a group total of 0), which used to come out as NaN.
    with pytest.raises(RuntimeError, match="every weight of the control group is at or below min_weight=0"):
        StableWeights(norm="linf", solver="osqp", max_iter=1).fit(*data)


def test_cbipm_too_few_epochs_to_judge(data):
    with pytest.warns(ConvergenceWarning, match="3 epochs are too few to show whether the mmd objective"):
        est = CBIPM(n_epochs=3).fit(*data)
    assert not est.converged_ and est.n_iter_ == 3 and np.all(np.isfinite(est.weights_))


# ---------------------------------------------------------------------------------------------------------------
# scikit-learn nuisance models in balance.hte: their warnings reach the user
# ---------------------------------------------------------------------------------------------------------------
def _hte_fit(which, unconverged):
    """Fit an HTE learner whose nuisance model is stopped after one iteration (or runs to its default limit)."""
    logistic = LogisticRegression(max_iter=1) if unconverged else LogisticRegression()
    if which == "FrontDoorDRLearner":
        fd = make_front_door(n=300, d=3, random_state=0)
        return FrontDoorDRLearner(logistic, LogisticRegression(), LinearRegression(), final_model=LinearRegression(),
                                  cv=2, random_state=0).fit(fd.C, fd.treatment, fd.mediator, fd.y)
    d = make_hte_setup("A", n=300, p=5, random_state=0)
    if which == "TLearner":
        regressor = SGDRegressor(max_iter=1, random_state=0) if unconverged else LinearRegression()
        return TLearner(regressor).fit(d.X, d.treatment, d.y)
    return PseudoOutcomeLearner(propensity_model=logistic, outcome_model=LinearRegression(),
                                final_model=LinearRegression(), cv=2, random_state=0).fit(d.X, d.treatment, d.y)


@pytest.mark.filterwarnings("ignore:.*denominators were outside:UserWarning")
@pytest.mark.parametrize("which", ["PseudoOutcomeLearner", "TLearner", "FrontDoorDRLearner"])
def test_hte_nuisance_convergence_warnings_pass_through(which):
    with pytest.warns(ConvergenceWarning):
        _hte_fit(which, unconverged=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        _hte_fit(which, unconverged=False)


# ---------------------------------------------------------------------------------------------------------------
# balance.effects: bootstrap replicates whose weights did not converge are counted
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def outcome(data):
    X, a = data
    return X[:, 0] + a + np.random.default_rng(3).normal(size=len(a))


@pytest.mark.parametrize("kind", ["bootstrap", "fwb"])
@pytest.mark.parametrize("weighter", [
    PropensityWeights("ATT", max_iter=1),  # our Newton solver: converged_ False
    PropensityWeights("ATT", model=LogisticRegression(max_iter=1)),  # scikit-learn's: a ConvergenceWarning only
], ids=["converged_-False", "sklearn-warning"])
def test_bootstrap_counts_non_converged_replicates(data, outcome, kind, weighter):
    X, a = data
    with pytest.warns(ConvergenceWarning), pytest.warns(UserWarning, match="5 did not converge"):
        fit = WeightedEffect(weighter, vcov=kind, n_bootstrap=5, random_state=0).fit(X, a, outcome)
    assert fit.n_nonconverged_ == 5 and fit.n_failed_ == 0
    assert np.isfinite(fit.estimate_) and np.isfinite(fit.se_)


@pytest.mark.parametrize("kind", ["bootstrap", "fwb"])
def test_bootstrap_of_converging_weights_counts_none(data, outcome, kind):
    X, a = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = WeightedEffect(PropensityWeights("ATT"), vcov=kind, n_bootstrap=5, random_state=0).fit(X, a, outcome)
    assert fit.n_nonconverged_ == 0 and fit.n_failed_ == 0
