"""Separation and extreme weights are reported, never silent (issue 15, item 1).

References used here: separation is known by construction (a covariate level seen in one group only, or a covariate
whose sign is the treatment), so the separated units and terms are known exactly; Kish's ESS is checked against
:func:`balance.effective_sample_size` (itself tested against WeightIt) and against its closed form.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import balance.weights._logistic as logistic
from balance import (CBIPM, CBPS, EntropyBalance, ExtremeWeightsWarning, InverseProbabilityTilting, PropensityWeights,
                     WeightedEffect, effective_sample_size)
from balance._cli import main
from balance.diagnostics._weights import MAX_SHARE, MIN_ESS, check_extreme_weights
from balance.weights._logistic import find_separation, fit_logistic

from .conftest import simulate
from .test_contract import IDS, WEIGHTERS


# ---------------------------------------------------------------------------------------------------------------
# data with known separation
# ---------------------------------------------------------------------------------------------------------------
def quasi_separated(n=300, seed=1):
    """Units with b = 1 are all treated; b = 0 has both groups: quasi-complete separation by 'b'."""
    rng = np.random.default_rng(seed)
    b = rng.binomial(1, 0.1, n)
    X = pd.DataFrame({"b": b.astype(float), "z": rng.normal(size=n)})
    a = np.where(b == 1, 1, rng.binomial(1, 0.4, n))
    return X, pd.Series(a, index=X.index)


def near_separated(n=200, seed=1):
    """Treatment almost determined by x (noise 0.05): the logistic MLE exists but weights are extreme."""
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.normal(size=n)
    a = (x + 0.05 * rng.normal(size=n) > 0).astype(int)
    y = x + z + a + rng.normal(size=n)
    return np.column_stack([x, z]), a, y


def test_near_separated_design_is_not_separated():
    # the near-separation tests below rely on the MLE existing (otherwise they would test separation instead)
    X, a, _ = near_separated()
    assert find_separation(X, a) is None


# ---------------------------------------------------------------------------------------------------------------
# separation in the logistic propensity fit
# ---------------------------------------------------------------------------------------------------------------
def test_quasi_separation_is_reported_by_propensity_weights():
    # the old code returned converged_=True with a coefficient of ~24 and scores 1e-10 from 1, without a word
    X, a = quasi_separated()
    n_b = int((X["b"] == 1).sum())
    with pytest.warns(ConvergenceWarning, match=rf"separated by 'b'.*: {n_b} units .*penalised classifier"):
        pw = PropensityWeights().fit(X, a)
    assert pw.converged_ is False
    assert pw.separation_ == ["b"]
    # exactly the b = 1 units have scores driven to 1 (the b = 0 units overlap)
    assert pw.n_separated_ == n_b


def test_complete_separation_names_the_separating_covariate_only():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"x": rng.normal(size=150), "z": rng.normal(size=150)})
    a = (X["x"] > 0).astype(int)
    with pytest.warns(ConvergenceWarning, match="separated by 'x'"):
        pw = PropensityWeights().fit(X, a)
    assert pw.separation_ == ["x"] and pw.n_separated_ == 150 and not pw.converged_


def test_separation_blocks_the_sandwich_variance():
    # the asympt variance needs solved estimating equations; a separated fit has none
    X, a = quasi_separated()
    y = np.random.default_rng(0).normal(size=len(a))
    with pytest.warns(ConvergenceWarning), pytest.raises(ValueError, match="did not converge"):
        WeightedEffect(PropensityWeights()).fit(X, a, y)


def test_no_separation_on_ordinary_data_and_no_linear_program(lalonde, monkeypatch):
    # lalonde: the test is not even run (no symptoms), so the fit costs what it did
    calls = []
    monkeypatch.setattr(logistic, "find_separation", lambda *args, **kw: calls.append(1))
    X = pd.get_dummies(lalonde[["age", "educ", "race", "married", "nodegree", "re74", "re75"]], drop_first=True,
                       dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pw = PropensityWeights(estimand="ATT").fit(X, lalonde["treat"])
    assert calls == [] and pw.separation_ == [] and pw.n_separated_ == 0 and pw.converged_


def test_strong_predictor_is_not_mistaken_for_separation(monkeypatch):
    # scores of 1e-11 from a strong but overlapping predictor: a finite MLE reached in a few quadratic steps, so the
    # linear program is not run (it would cost as much as the fit at large n)
    calls = []
    monkeypatch.setattr(logistic, "find_separation", lambda *args, **kw: calls.append(1))
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5000, 3))
    a = rng.binomial(1, 1 / (1 + np.exp(-6 * X[:, 0]))).astype(float)
    fit = fit_logistic(X, a, np.ones(len(a)))
    eta = fit.coef[0] + X @ fit.coef[1:]
    assert np.max(np.abs(eta)) > 20  # probabilities within 2e-9 of 0 or 1
    assert fit.converged and fit.separation is None and calls == []


@pytest.mark.parametrize("tol", [1e-4, 1e-8])
def test_separation_found_with_a_loose_tolerance(tol):
    # with tol=1e-4 the fit stops before any probability is within 1e-8 of 0 or 1; the large last step still
    # shows the linear (separated) convergence
    X, a = quasi_separated()
    fit = fit_logistic(X.to_numpy(), a.to_numpy().astype(float), np.ones(len(a)), tol=tol)
    assert not fit.converged and fit.separation.columns.tolist() == [0]
    assert fit.separation.units.sum() == int((X["b"] == 1).sum())


@pytest.mark.parametrize("seed", range(20))
def test_find_separation_matches_construction(seed):
    rng = np.random.default_rng(seed)
    n, p = 60, 3
    X = rng.normal(size=(n, p))
    direction = rng.normal(size=p)
    lin = X @ direction
    # separable by construction: the sign of a linear function (complete separation)
    sep = find_separation(X, (lin > 0).astype(int))
    assert sep is not None and sep.units.all()
    # overlapping by construction: both groups at every point of a (duplicated) design
    X2 = np.vstack([X, X])
    assert find_separation(X2, np.repeat([0, 1], n)) is None


def test_find_separation_ignores_units_with_zero_sample_weight():
    x = np.array([-2.0, -1.0, 0.5, 1.0, 2.0, 3.0])
    a = np.array([0, 0, 1, 1, 1, 0])  # the last unit breaks the separation at x > 0 ...
    assert find_separation(x[:, None], a) is None
    sep = find_separation(x[:, None], a, np.array([1, 1, 1, 1, 1, 0.0]))  # ... unless it has no weight
    assert sep is not None and sep.units.tolist() == [True, True, True, True, True, False]


def test_failed_step_halving_is_not_accepted(monkeypatch):
    # a likelihood that every step lowers: the old code took the step after 30 halvings and reported convergence
    # once the score happened to be small; now the step is rejected and the fit is reported as not converged
    X, a = simulate(np.random.default_rng(0), n=200, p=2)
    first = []

    def falling(eta, a_, sw):
        first.append(1)
        return 0.0 if len(first) == 1 else -1.0

    monkeypatch.setattr(logistic, "_log_likelihood", falling)
    fit = fit_logistic(X, a.astype(float), np.ones(len(a)))
    assert fit.stalled and not fit.converged and fit.n_iter == 0
    # the coefficients are still the starting values: the intercept-only MLE, slopes zero
    assert_allclose(fit.coef, [np.log(a.mean() / (1 - a.mean())), 0.0, 0.0], rtol=0, atol=1e-12)


def test_stalled_fit_warns_in_propensity_weights(monkeypatch):
    X, a = simulate(np.random.default_rng(0), n=200, p=2)
    monkeypatch.setattr(logistic, "_log_likelihood", lambda eta, a_, sw: -float(np.sum(np.abs(eta))))
    with pytest.warns(ConvergenceWarning, match="could not increase the likelihood"):
        pw = PropensityWeights().fit(X, a)
    assert not pw.converged_


# ---------------------------------------------------------------------------------------------------------------
# separation and near-separation in CBPS
# ---------------------------------------------------------------------------------------------------------------
def test_cbps_reports_separation():
    X, a = quasi_separated()
    with pytest.warns(ConvergenceWarning, match="separated by 'b'"):
        cb = CBPS().fit(X, a)
    assert cb.separation_ == ["b"] and cb.n_separated_ == int((X["b"] == 1).sum()) and not cb.converged_


def test_cbps_near_separation_warns_with_the_ess():
    # the old code converged silently to an ESS of 1.1 controls and 2.6 treated
    X, a, _ = near_separated()
    with pytest.warns(ExtremeWeightsWarning) as record:
        cb = CBPS().fit(X, a)
    assert cb.converged_ and cb.separation_ == []  # a finite solution that exists: not separation
    assert_allclose(cb.ess_, effective_sample_size(cb.weights_, a), rtol=1e-14)
    assert cb.ess_.max() < MIN_ESS
    ess = cb.ess_["control"]
    assert f"CBPS: extreme weights of control, treated (control: ESS {ess:.1f} of {np.sum(a == 0)} units" in \
        str(record[0].message)


def test_cbps_near_separation_warns_in_weighted_effect_once():
    X, a, y = near_separated()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = WeightedEffect(CBPS()).fit(X, a, y)
    extreme = [w for w in caught if issubclass(w.category, ExtremeWeightsWarning)]
    assert len(extreme) == 1, [str(w.message) for w in caught]
    assert str(extreme[0].message).startswith("WeightedEffect: extreme weights")
    assert "vcov='bootstrap'" in str(extreme[0].message)
    text, ess = str(fit.result_), fit.result_.ess
    assert f"ESS control {ess['control']:.1f}, treated {ess['treated']:.1f}" in text
    assert f"Note: extreme weights (control: ESS {ess['control']:.1f}" in text


# ---------------------------------------------------------------------------------------------------------------
# the shared extreme-weights check
# ---------------------------------------------------------------------------------------------------------------
def test_check_closed_forms_over_integer_group_codes():
    # three groups (codes 0..2): group 1 has one unit with weight m among k - 1 units of weight 1, so
    # ESS = (k - 1 + m)^2 / (k - 1 + m^2) and the share is m / (k - 1 + m)
    k, m = 40, 30.0
    codes = np.repeat([0, 1, 2], k)
    w = np.ones(3 * k)
    w[k] = m
    report = check_extreme_weights(w, codes, labels=["a", "b", "c"], warn=False)
    assert_allclose(report.ess.to_numpy(), [k, (k - 1 + m) ** 2 / (k - 1 + m**2), k], rtol=1e-14)
    assert_allclose(report.max_share["b"], m / (k - 1 + m), rtol=1e-14)
    assert report.flagged.tolist() == [False, True, False]
    with pytest.warns(ExtremeWeightsWarning, match=r"extreme weights of b \(.*b: ESS 5\.1 of 40 units, largest unit 43%"):
        check_extreme_weights(w, codes, labels=["a", "b", "c"], who="X")


def test_check_does_not_flag_small_groups_of_equal_weights():
    # three units per group: an ESS of 3 is the group's size, not extreme weighting
    assert not check_extreme_weights(np.ones(6), np.repeat([0, 1], 3), warn=False).extreme


def test_share_threshold_alone_flags():
    # ESS well above MIN_ESS but one unit holds more than MAX_SHARE of the group's weight
    w = np.r_[np.full(400, 1.0), 250.0, np.ones(50)]
    codes = np.r_[np.zeros(401, int), np.ones(50, int)]
    report = check_extreme_weights(w, codes, warn=False)
    assert report.ess["control"] > MIN_ESS and report.max_share["control"] > MAX_SHARE
    assert report.flagged.tolist() == [True, False]


@pytest.fixture(scope="module")
def ordinary():
    rng = np.random.default_rng(11)
    X, a = simulate(rng, n=300, p=3)
    return pd.DataFrame(X, columns=["x1", "x2", "x3"]), pd.Series(a)


def overlap_design(low_treated, high_controls):
    """Treated around x1 = 2.5, controls around 0, the given x1 values added to each group (a few controls among
    the treated, treated among the controls): balance is feasible, but only by leaning on those few units."""
    rng = np.random.default_rng(5)
    n1, n0 = 60, 140
    x1 = np.r_[rng.normal(2.5, 0.5, n1 - len(low_treated)), low_treated,
               rng.normal(0, 0.7, n0 - len(high_controls)), high_controls]
    X = pd.DataFrame({"x1": x1, "x2": rng.normal(size=n1 + n0)})
    return X, pd.Series(np.r_[np.ones(n1, int), np.zeros(n0, int)])


@pytest.fixture(scope="module")
def poor_overlap():
    # feasible for every estimand of every weighter
    return overlap_design([-1.0, -0.5, 0.0], [3.0, 3.5, 4.0])


def _fit_recording(weighter, X, a):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = clone(weighter).fit(X, a)
    return fitted, [str(w.message) for w in caught if issubclass(w.category, ExtremeWeightsWarning)]


@pytest.mark.parametrize("weighter", WEIGHTERS, ids=IDS)
def test_every_weighter_reports_its_weight_concentration(weighter, ordinary, poor_overlap):
    # ess_ and max_weight_share_ against their definitions; on ordinary data no warning; under poor overlap the
    # warning fires exactly when the numbers cross the documented thresholds, and names the weighter
    for X, a in (ordinary, poor_overlap):
        fitted, messages = _fit_recording(weighter, X, a)
        w, codes = np.asarray(fitted.weights_), a.to_numpy()
        assert_allclose(fitted.ess_, effective_sample_size(w, codes), rtol=1e-12)
        share = [w[codes == k].max() / w[codes == k].sum() for k in (0, 1)]
        assert_allclose(fitted.max_weight_share_.to_numpy(), share, rtol=1e-12)
        n = np.array([np.sum(w[codes == k] > 0) for k in (0, 1)])
        ess = fitted.ess_.to_numpy()
        expected = np.any(((ess < MIN_ESS) & (ess < n / 2)) | ((np.array(share) > MAX_SHARE) & (np.array(share) > 2 / n)))
        assert len(messages) == int(expected), messages
        if X is ordinary[0]:
            assert not messages
        elif messages:
            assert messages[0].startswith(f"{type(weighter).__name__}: extreme weights of")


@pytest.mark.parametrize("weighter", [PropensityWeights(estimand="ATT"), PropensityWeights(estimand="ATE"),
                                      CBPS(estimand="ATE"), EntropyBalance(estimand="ATT"),
                                      InverseProbabilityTilting(estimand="ATT"), CBIPM(estimand="ATT", solver="qp")],
                         ids=lambda w: f"{type(w).__name__}-{w.estimand}")
def test_poor_overlap_warns(weighter):
    # two controls among the treated carry the controls' weight; the old code said nothing
    fitted, messages = _fit_recording(weighter, *overlap_design([], [3.0, 3.5]))
    assert len(messages) == 1 and "control: ESS" in messages[0], messages
    assert fitted.ess_["control"] < MIN_ESS or fitted.max_weight_share_["control"] > MAX_SHARE


def test_cli_prints_the_warning_and_the_largest_share(tmp_path, capsys, ordinary):
    # one control with a survey weight of 3000: ATT weights e/(1 - e) times it carry most of the controls' weight
    X, a = ordinary
    frame = X.assign(treat=a, re78=np.random.default_rng(0).normal(size=len(a)), sw=1.0)
    frame.loc[frame.index[a.to_numpy() == 0][0], "sw"] = 3000.0
    frame.to_csv(tmp_path / "data.csv", index=False)
    assert main(["--data", str(tmp_path / "data.csv"), "--sample-weight", "sw"]) == 0
    out = capsys.readouterr().out
    assert "Warning: WeightedEffect: extreme weights" in out
    assert re.search(r"control: ESS [\d.]+ of 170 units, largest unit \d+% of the weight", out)
    assert "largest share" in out and "Effective sample size" in out


def test_multi_category_weights_are_judged_per_level():
    # three levels: the groups are the levels, named in ess_ and in the warning (the shared check over codes 0..K-1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    t = rng.choice(["a", "b", "c"], 300)
    sw = np.ones(300)
    sw[np.flatnonzero(t == "b")[0]] = 5000.0
    with pytest.warns(ExtremeWeightsWarning, match=r"extreme weights of b \(a: ESS [\d.]+ of \d+ units"):
        pw = PropensityWeights(treatment_type="multi-category").fit(X, t, sample_weight=sw)
    w = np.asarray(pw.weights_)
    assert list(pw.ess_.index) == ["a", "b", "c"]
    assert_allclose(pw.ess_.to_numpy(), [w[t == k].sum() ** 2 / np.sum(w[t == k] ** 2) for k in "abc"], rtol=1e-12)
