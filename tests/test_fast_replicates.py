"""The fast refit of bootstrap replicates (balance.effects._bootstrap.PropensityReplicates, on
balance.weights._logistic.LogisticReplicates) against its reference: a clone of the weighter fitted on the
materialised resampled rows, as the plain bootstrap does.

Tolerances: both fits end at the rounding floor of the score (Newton's last, quadratic, step takes fit_logistic
there; the fast iterations run while they still halve the score), so they agree to ~1e-13 in practice, and each
guarantees a score sup-norm below tol = 1e-8, i.e. coefficients within ~1e-11 of the maximum. Weights and bounds are
compared to 1e-8 (relative), the issue's criterion, far below any statistical difference (a replicate's coefficients
move by ~1e-2 from the full-sample ones).
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from balance import EntropyBalance, PropensityWeights, WeightedEffect
from balance._validation import take_rows
from balance.datasets import make_synthetic
from balance.effects import _bootstrap
from balance.effects._bootstrap import PropensityReplicates
from balance.weights._logistic import LogisticReplicates, fit_logistic


@pytest.fixture(scope="module")
def data():
    d = make_synthetic(3000, random_state=4)
    X = d.X.copy()
    rng = np.random.default_rng(4)
    X["region"] = rng.choice(["north", "south", "east"], len(X), p=[0.5, 0.3, 0.2])  # object dtype: dummies
    X["flag"] = rng.random(len(X)) < 0.3  # boolean
    sw = rng.uniform(0.5, 2.0, len(X))
    return X, d.treatment, d.y, sw


def _plain_unit_weights(weighter, X, treatment, sw, draw):
    """Per-unit weight (of one copy) and propensity score from a clone fitted on the resampled rows."""
    fitted = clone(weighter).fit(take_rows(X, draw), take_rows(treatment, draw),
                                 sample_weight=None if sw is None else sw[draw])
    w, ps = np.zeros(len(X)), np.zeros(len(X))
    w[draw], ps[draw] = np.asarray(fitted.weights_), np.asarray(fitted.ps_)  # a unit's copies share one value
    return w, ps


@pytest.mark.filterwarnings("ignore:clip=")
@pytest.mark.parametrize("estimand, clip, weighted", [("ATE", None, False), ("ATT", None, True),
                                                      ("ATC", (0.1, 0.9), True), ("ATO", None, False)])
def test_replicate_weights_equal_a_refit_on_the_resampled_rows(data, estimand, clip, weighted):
    X, treatment, _, sw = data
    sw = sw if weighted else None
    weighter = PropensityWeights(estimand=estimand, clip=clip)
    fitted = clone(weighter).fit(X, treatment, sample_weight=sw)
    fast = PropensityReplicates.build(fitted, X, treatment, sw)
    assert fast is not None
    rng = np.random.default_rng(0)
    for _ in range(4):
        draw = rng.integers(0, len(X), len(X))
        counts = np.bincount(draw, minlength=len(X))
        rows, weights, ps = fast(counts)
        np.testing.assert_array_equal(rows, np.unique(draw))
        w_plain, ps_plain = _plain_unit_weights(weighter, X, treatment, sw, draw)
        np.testing.assert_allclose(weights, w_plain[rows], rtol=1e-8, atol=0)
        np.testing.assert_allclose(ps, ps_plain[rows], rtol=1e-8, atol=0)


def test_logistic_replicates_equal_fit_logistic_or_decline(data):
    # any resample, however far from the full sample (a few units drawn many times), is either fitted to the
    # tolerance of fit_logistic on the materialised rows or left to it (None): never a different answer
    X = data[0].drop(columns="region").to_numpy(dtype=float)
    a = np.asarray(data[1])
    sw = np.ones(len(X))
    model = LogisticReplicates(X, a, sw, fit_logistic(X, a, sw).coef)
    rng = np.random.default_rng(1)
    declined = 0
    for size in [len(X), len(X), 300, 60, 25]:
        draw = rng.choice(rng.choice(len(X), size, replace=False), len(X))
        counts = np.bincount(draw, minlength=len(X))
        rows = np.flatnonzero(counts)
        out = model.fit(rows, counts[rows].astype(float), n_draws=len(X), tol=1e-8, max_iter=100)
        reference = fit_logistic(X[draw], a[draw], sw[draw])
        if out is None:
            declined += 1
            continue
        assert reference.converged
        np.testing.assert_allclose(out[0], reference.coef, rtol=1e-8, atol=1e-10)
    assert declined < 5  # the ordinary resamples are fitted


def test_sensitivity_with_fast_refits_equals_plain_refits(data, monkeypatch):
    X, treatment, y, sw = data
    fit = WeightedEffect(PropensityWeights(estimand="ATE"), vcov="HC0").fit(X, treatment, y, sample_weight=sw)
    lambdas = [1, 1.5, 2]
    fast = fit.sensitivity(lambdas, n_bootstrap=30, random_state=5)
    again = fit.sensitivity(lambdas, n_bootstrap=30, random_state=5)
    pd.testing.assert_frame_equal(fast, again)  # reproducible with random_state
    calls = []

    def plain_only(*args):
        calls.append(1)
        return None

    monkeypatch.setattr(PropensityReplicates, "build", plain_only)
    plain = fit.sensitivity(lambdas, n_bootstrap=30, random_state=5)
    assert calls  # the plain refits did run
    pd.testing.assert_frame_equal(fast, plain, rtol=1e-8, atol=0)
    monkeypatch.undo()
    bd_fast = fit.breakdown_lambda(n_bootstrap=20, random_state=2, alpha=0.5)
    monkeypatch.setattr(PropensityReplicates, "build", plain_only)
    assert fit.breakdown_lambda(n_bootstrap=20, random_state=2, alpha=0.5) == pytest.approx(bd_fast, rel=1e-8)


def test_a_level_absent_from_a_resample_is_refitted_in_full(data):
    # a level held by two units: a resample without them has a zero dummy column; a plain refit drops the level
    # from its design (object dtype), so the fast path declines and the bootstrap refits that replicate in full
    X, treatment, y, _ = data
    X = X.copy()
    west = [int(np.flatnonzero(treatment == 1)[0]), int(np.flatnonzero(treatment == 0)[0])]  # not separated
    X.iloc[west, X.columns.get_loc("region")] = "west"
    fitted = PropensityWeights().fit(X, treatment)
    fast = PropensityReplicates.build(fitted, X, treatment)
    counts = np.ones(len(X), dtype=np.int64)
    counts[west] = 0
    counts[np.flatnonzero(counts)[:2]] = 2
    assert fast(counts) is None
    assert fast(np.ones(len(X), dtype=np.int64)) is not None


def test_near_separation_is_refitted_in_full():
    # propensity scores within 1e-8 of 0 or 1: a plain refit tests them for separation, so the fast path declines
    rng = np.random.default_rng(3)
    x = rng.normal(size=400)
    a = (x + rng.normal(scale=0.05, size=400) > 0).astype(int)
    X = pd.DataFrame({"x": x})
    fitted = PropensityWeights().fit(X, a)
    assert fitted.converged_
    fast = PropensityReplicates.build(fitted, X, a)
    assert fast(np.ones(400, dtype=np.int64)) is None


@pytest.mark.parametrize("weighter", [
    PropensityWeights(trim=0.99), PropensityWeights(estimand="ATOS"), PropensityWeights(max_iter=10),
    PropensityWeights(model=LogisticRegression()), make_pipeline(StandardScaler(), PropensityWeights()),
    EntropyBalance(),
])
def test_uncovered_weighters_are_refitted_in_full(data, weighter):
    X, treatment, _, _ = data
    X = X.drop(columns=["region", "flag"])
    fitted = clone(weighter).fit(X, treatment)
    assert PropensityReplicates.build(fitted, X, treatment) is None


def test_missing_value_indicators_are_refitted_in_full(data):
    # the fill values are learned from each resample, which the design validated once cannot reproduce
    X, treatment, _, _ = data
    X = X.drop(columns=["region", "flag"]).copy()
    X.iloc[:5, 0] = np.nan
    fitted = PropensityWeights(missing="indicator").fit(X, treatment)
    assert PropensityReplicates.build(fitted, X, treatment) is None
    assert _bootstrap._FAST_MIN_ITER <= PropensityWeights().max_iter  # the default is covered


@pytest.mark.parametrize("vcov, clustered", [("bootstrap", False), ("bootstrap", True), ("fwb", False)])
def test_effect_bootstrap_with_fast_refits_equals_plain_refits(data, monkeypatch, vcov, clustered):
    X, treatment, y, sw = data
    cluster = np.arange(len(X)) // 10 if clustered else None
    effect = WeightedEffect(PropensityWeights(estimand="ATT"), vcov=vcov, n_bootstrap=20,
                            random_state=7)
    fast = effect.fit(X, treatment, y, sample_weight=sw, cluster=cluster)
    assert fast._problem.fast is not None
    fast_draws = fast.result_.draws.copy()
    monkeypatch.setattr(PropensityReplicates, "build", lambda *args: None)
    plain = clone(effect).fit(X, treatment, y, sample_weight=sw, cluster=cluster)
    assert plain._problem.fast is None
    np.testing.assert_allclose(fast_draws, plain.result_.draws, rtol=1e-8, atol=0)
    assert plain.n_failed_ == fast.n_failed_ == 0


def test_an_unconverged_full_sample_fit_is_refitted_in_full(data):
    # a plain refit of a replicate would stop unconverged too (same max_iter, a cold start): not the fast path's
    # business to converge where it does not
    X, treatment, _, _ = data
    X = X.drop(columns=["region", "flag"])
    with pytest.warns(Warning, match="did not converge"):
        fitted = PropensityWeights(max_iter=25, tol=1e-300).fit(X, treatment)
    assert not fitted.converged_
    assert PropensityReplicates.build(fitted, X, treatment) is None
