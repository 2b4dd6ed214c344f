"""Tuning a weighter when some settings fail on some folds: failures rank last with one warning (balance.tune),
a weighter's score of an infeasible sample is -inf, and what the balance score of a method without
predict_weights means (the settings refitted on the scored sample)."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

from balance import (EntropyBalance, InfeasibleBalanceError, PropensityWeights, TuningFailureWarning,
                     balance_table, tune)


@pytest.fixture(scope="module")
def outlier_data():
    """Controls' x uniform on [0, 1]; treated x uniform on [0.1, 0.5] plus one treated unit at x = 5.5. Entropy
    balancing for the ATT needs each target mean inside the controls' range. With three folds (100 treated to
    train, 50 to score), the treated means of x and x² stay below 0.8 on every sample, that of x³ exceeds 1 on
    every sample holding the outlier (5.5³/100 = 1.66): moments=3 is infeasible on every fold (twice in training,
    once when scored), moments 1 and 2 never (moments=2 is hard: on some folds it stops short with a
    ConvergenceWarning, which the search passes on)."""
    rng = np.random.default_rng(7)
    n0, n1 = 450, 150
    x = np.concatenate([rng.uniform(0, 1, n0), rng.uniform(0.1, 0.5, n1 - 1), [5.5]])
    a = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    X = pd.DataFrame({"x": x, "z": rng.normal(size=n0 + n1)})
    return X, pd.Series(a)


FOLDS = StratifiedKFold(3, shuffle=True, random_state=0)
GRID = {"moments": [1, 2, 3]}


def test_score_of_an_infeasible_sample_is_minus_infinity(outlier_data):
    X, a = outlier_data
    with pytest.raises(InfeasibleBalanceError, match="exact balance is infeasible"):
        EntropyBalance(moments=3).fit(X, a)
    assert issubclass(InfeasibleBalanceError, ValueError)  # code catching ValueError keeps working
    fitted = EntropyBalance(moments=1).fit(X, a)
    assert fitted.set_params(moments=3).score(X, a) == -np.inf


def test_plain_grid_search_ranks_the_failing_setting_last(outlier_data):
    X, a = outlier_data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = GridSearchCV(EntropyBalance(), GRID, cv=FOLDS).fit(X, a)
    assert search.best_params_["moments"] in (1, 2)
    assert search.cv_results_["rank_test_score"][2] == 3
    # a failed score no longer raises inside scikit-learn (no "Scoring failed" traceback per fold)
    assert not [w for w in caught if str(w.message).startswith("Scoring failed")]


def test_tune_gives_one_warning_with_counts_and_reasons(outlier_data):
    X, a = outlier_data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = tune(GridSearchCV(EntropyBalance(), GRID, cv=FOLDS), X, a)
    failures = [w for w in caught if issubclass(w.category, TuningFailureWarning)]
    assert len(failures) == 1
    assert not [w for w in caught if issubclass(w.category, FitFailedWarning) or "Traceback" in str(w.message)]
    # every other kind of warning once: no numpy note about the spread of -inf scores
    kinds = [w.category for w in caught]
    assert len(kinds) == len(set(kinds)) and RuntimeWarning not in kinds
    text = str(failures[0].message)
    # moments=3 fails on all three folds (trained on the outlier twice, scored on it once); 3 settings x 3 folds
    assert text.startswith("3 of 9 fits failed (scored -inf, ranked last): {'moments': 3} failed on 3 of 3 folds.")
    assert "2 x InfeasibleBalanceError: EntropyBalance: exact balance is infeasible" in text
    assert "1 x the setting cannot weight the test fold" in text
    assert search.best_params_["moments"] in (1, 2)
    assert np.all(search.cv_results_["split0_test_score"][2] == -np.inf)
    assert search.cv_results_["rank_test_score"][2] == 3
    assert search.error_score == -np.inf


def test_tune_raises_when_every_setting_fails_somewhere(outlier_data):
    X, a = outlier_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=re.escape("every setting failed on at least one fold")) as info:
            tune(GridSearchCV(EntropyBalance(), {"moments": [3, 4]}, cv=FOLDS), X, a)
    assert "exact balance is infeasible" in str(info.value)


def test_tune_without_failures_is_the_plain_search(outlier_data):
    X, a = outlier_data
    grid = {"moments": [1, 2]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuned = tune(GridSearchCV(EntropyBalance(), grid, cv=FOLDS), X, a)
    assert not [w for w in caught if issubclass(w.category, TuningFailureWarning)]
    plain = GridSearchCV(EntropyBalance(), grid, cv=FOLDS).fit(X, a)
    assert tuned.best_params_ == plain.best_params_
    assert_allclose(tuned.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"], rtol=0, atol=0)


def test_tune_refuses_what_is_not_a_search():
    with pytest.raises(TypeError, match="search must be a scikit-learn search"):
        tune(EntropyBalance(), np.zeros((4, 1)), [0, 1, 0, 1])


# ------------------------------------------------------------------------------------------------------------
# what the balance score means
# ------------------------------------------------------------------------------------------------------------
def _minus_mean_abs_smd(X, a, weights, estimand):
    return -float(np.mean(np.abs(balance_table(X, a, weights, estimand=estimand)["smd_adj"])))


def test_score_without_predict_weights_refits_the_settings_on_the_scored_sample(lalonde):
    X, a = lalonde.drop(columns=["treat", "re78"]), lalonde["treat"]
    train, test = next(KFold(2, shuffle=True, random_state=3).split(X))
    Xa, aa, Xb, ab = X.iloc[train], a.iloc[train], X.iloc[test], a.iloc[test]
    ebal = EntropyBalance(tols=0.1)
    # the settings' balance on the scored sample itself: a fresh fit there, whatever the estimator learned before
    expected = _minus_mean_abs_smd(Xb, ab, ebal.fit(Xb, ab).weights_, "ATT")
    assert ebal.fit(Xa, aa).score(Xb, ab) == expected
    assert EntropyBalance(tols=0.1).fit(X, a).score(Xb, ab) == expected
    # approximate balance (tols) scores below exact balance, which reaches about 0 wherever feasible
    exact = EntropyBalance().fit(Xa, aa).score(Xb, ab)
    assert -1e-8 < exact <= 0 and expected < exact


def test_score_with_predict_weights_uses_the_fitted_model(lalonde):
    X, a = lalonde.drop(columns=["treat", "re78"]), lalonde["treat"]
    train, test = next(KFold(2, shuffle=True, random_state=3).split(X))
    pw = PropensityWeights(estimand="ATT").fit(X.iloc[train], a.iloc[train])
    weights = pw.predict_weights(X.iloc[test], a.iloc[test])
    assert pw.score(X.iloc[test], a.iloc[test]) == _minus_mean_abs_smd(X.iloc[test], a.iloc[test], weights, "ATT")
    # out-of-fold balance differs from the balance of a model fitted on the scored sample
    own = PropensityWeights(estimand="ATT").fit(X.iloc[test], a.iloc[test]).weights_
    assert pw.score(X.iloc[test], a.iloc[test]) != _minus_mean_abs_smd(X.iloc[test], a.iloc[test], own, "ATT")
