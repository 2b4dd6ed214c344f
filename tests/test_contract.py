"""The scikit-learn estimator contract and the bad-input rules, for every weighting estimator."""

import numbers
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, StratifiedKFold, check_cv
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from balance import (
    CBIPM,
    CBPS,
    EnergyBalance,
    EntropyBalance,
    InverseProbabilityTilting,
    PropensityWeights,
    StableWeights,
    UniformTransformerWeights,
    balance_table,
)

from .conftest import COVARIATES

# One entry per weighting estimator: later methods add themselves here and inherit every test in this file.
WEIGHTERS = [
    PropensityWeights(estimand="ATT"),
    PropensityWeights(estimand="ATE"),
    PropensityWeights(estimand="ATO"),
    UniformTransformerWeights(estimand="ATT", random_state=0),
    UniformTransformerWeights(estimand="ATE", marginal=True, profile="linear", random_state=0),
    StableWeights(estimand="ATT"),
    StableWeights(estimand="ATE", tols=0.02),
    CBPS(estimand="ATT"),
    CBPS(estimand="ATE"),
    CBPS(estimand="ATT", over=True),
    InverseProbabilityTilting(estimand="ATE"),
    InverseProbabilityTilting(estimand="ATT"),
    EntropyBalance(estimand="ATT"),
    EntropyBalance(estimand="ATE", moments=2),
    EntropyBalance(estimand="ATT", tols=0.05),
    EnergyBalance(estimand="ATT"),
    EnergyBalance(estimand="ATE"),
    CBIPM(estimand="ATT", n_epochs=20),
    CBIPM(estimand="ATE", model="linear", n_epochs=20, random_state=0),
    CBIPM(estimand="ATT", ipm="sipm", n_epochs=20, n_sigmoids=10, random_state=0),
    CBIPM(estimand="ATE", ipm="wass", n_epochs=20, hidden=10, random_state=0),
    CBIPM(estimand="ATT", solver="qp"),
]
IDS = [f"{type(w).__name__}-{w.estimand}" for w in WEIGHTERS]


@pytest.fixture(params=WEIGHTERS, ids=IDS)
def weighter(request):
    return clone(request.param)


@pytest.fixture(scope="module")
def small():
    """A 200-row mixed-type frame with a non-default, shuffled index."""
    rng = np.random.default_rng(7)
    n = 200
    X = pd.DataFrame({
        "age": rng.normal(40, 10, n),
        "income": rng.lognormal(10, 1, n),
        "smoker": rng.random(n) < 0.3,
        "region": pd.Categorical(rng.choice(["north", "south", "west"], n)),
        "job": rng.choice(["a", "b"], n).astype(object),
    }, index=pd.Index(rng.permutation(np.arange(1000, 1000 + n)), name="pid"))
    logit = -0.5 + 0.03 * (X["age"] - 40) + 0.8 * X["smoker"] - 0.5 * (X["region"] == "west")
    t = pd.Series(rng.binomial(1, 1 / (1 + np.exp(-logit))), index=X.index, name="t")
    return X, t


# ---------------------------------------------------------------------------------------------------------------
# contract
# ---------------------------------------------------------------------------------------------------------------
def test_init_stores_parameters_untouched(weighter):
    params = weighter.get_params()
    assert clone(weighter).get_params() == params
    weighter.set_params(estimand="ATC")
    assert weighter.get_params()["estimand"] == "ATC"


def test_fit_returns_self_and_weights_follow_the_index(weighter, small):
    X, t = small
    assert weighter.fit(X, t) is weighter
    assert isinstance(weighter.weights_, pd.Series) and weighter.weights_.index.equals(X.index)
    assert np.all(np.isfinite(weighter.weights_)) and np.all(weighter.weights_ >= 0)
    assert list(weighter.feature_names_in_) == list(X.columns) and weighter.n_features_in_ == 5


def test_numpy_input_gives_ndarray_and_same_numbers(weighter, small):
    X, t = small
    numeric = X[["age", "income"]]
    w_frame = clone(weighter).fit(numeric, t).weights_
    w_array = clone(weighter).fit(numeric.to_numpy(), t.to_numpy()).weights_
    assert isinstance(w_array, np.ndarray)
    assert_allclose(w_array, w_frame.to_numpy(), rtol=1e-12)


def test_refit_forgets_and_inputs_are_not_mutated(weighter, small):
    X, t = small
    X_copy, t_copy = X.copy(), t.copy()
    first = clone(weighter).fit(X, t).weights_
    weighter.fit(X.iloc[:100], t.iloc[:100])
    weighter.fit(X, t)
    assert_allclose(weighter.weights_, first, rtol=1e-12)
    pd.testing.assert_frame_equal(X, X_copy)
    pd.testing.assert_series_equal(t, t_copy)


def test_row_order_does_not_matter(weighter, small):
    X, t = small
    perm = np.random.default_rng(3).permutation(len(X))
    w = clone(weighter).fit(X, t).weights_
    w_perm = clone(weighter).fit(X.iloc[perm], t.iloc[perm]).weights_
    assert_allclose(w_perm.loc[w.index], w, rtol=1e-9)


def test_treatment_coding_rules(weighter, small):
    X, t = small
    w = clone(weighter).fit(X, t).weights_
    assert_allclose(clone(weighter).fit(X, t.astype(bool)).weights_, w, rtol=1e-12)
    labels = t.map({1: "drug", 0: "placebo"})
    with pytest.raises(ValueError, match="treated=<level>"):
        clone(weighter).fit(X, labels)
    labelled = clone(weighter).set_params(treated="drug").fit(X, labels)
    assert_allclose(labelled.weights_, w, rtol=1e-12)
    assert labelled.treatment_levels_ == ("placebo", "drug")


def test_categorical_columns_are_expanded_with_named_dummies(small):
    X, t = small
    pw = PropensityWeights().fit(X, t)
    assert pw.terms_ == ["age", "income", "smoker", "region_south", "region_west", "job_b"]
    table = balance_table(X, t, pw)
    # a factor with three or more levels shows every level; one with two levels is one row, its second level
    # (as cobalt shows it: tests/test_balance_cobalt_extras.py)
    assert list(table.index) == ["age", "income", "smoker", "region_north", "region_south", "region_west",
                                 "job_b"]


def test_score_is_minus_mean_absolute_smd(weighter, lalonde):
    X, t = lalonde[COVARIATES], lalonde["treat"]
    weighter.fit(X, t)
    table = balance_table(X, t, weighter.weights_, estimand=weighter.estimand)
    assert_allclose(weighter.score(X, t), -table["smd_adj"].abs().mean(), rtol=1e-12)


def _fitted_state(est):
    """The fitted attributes as comparable values (arrays and Series as bytes, scalars as they are)."""
    state = {}
    for key, value in vars(est).items():
        if isinstance(value, (pd.Series, pd.DataFrame)):
            value = value.to_numpy()
        state[key] = value.tobytes() if isinstance(value, np.ndarray) and value.dtype != object else value
    return state


@pytest.mark.parametrize("est", [
    *[w for w in WEIGHTERS if hasattr(w, "predict_weights")],
    # clip and trim bind on a different number of units in the half sample than in the fit, so their counts
    # (n_clipped_, n_trimmed_) would change if prediction wrote them
    PropensityWeights(estimand="ATE", clip=(0.1, 0.9), trim=0.9),
    PropensityWeights(estimand="ATT", trim=0.9),
], ids=lambda w: f"{type(w).__name__}-{w.estimand}-clip{getattr(w, 'clip', None)}-trim{getattr(w, 'trim', None)}")
def test_predict_weights_and_score_leave_the_fit_alone(est, lalonde):
    """scikit-learn's rule: predict and score never change fitted state."""
    X, t = lalonde[COVARIATES], lalonde["treat"]
    est = clone(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, t)
        before = _fitted_state(est)
        est.predict_weights(X.iloc[::2], t.iloc[::2])
        est.score(X.iloc[1::2], t.iloc[1::2])
    after = _fitted_state(est)
    assert after.keys() == before.keys()
    for key in before:  # values or bytes compared by value; other objects (design_, estimator_) by identity
        same = after[key] is before[key] or (isinstance(before[key], (bytes, numbers.Number, str, tuple, list))
                                             and after[key] == before[key])
        assert same, key


def test_gridsearch_tunes_by_balance_with_stratified_folds(lalonde):
    X, t = lalonde[COVARIATES], lalonde["treat"]
    pw = PropensityWeights(estimand="ATT")
    # the default cv of a "classifier" is stratified by the target, i.e. by treatment: both groups in every fold
    assert is_classifier(pw) and isinstance(check_cv(5, t, classifier=is_classifier(pw)), StratifiedKFold)
    # shuffled folds: lalonde is sorted (treated first), and contiguous folds hold covariates constant in a group
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(pw, {"trim": [None, 0.9]}, cv=cv)
    with pytest.warns(UserWarning, match="trimmed"):
        search.fit(X, t)
    # the winner is the setting whose out-of-fold balance is best: check it against the recorded fold scores
    scores = search.cv_results_["mean_test_score"]
    assert search.best_index_ == int(np.argmax(scores))
    assert np.all(scores <= 0)
    # recompute one fold score by hand
    train, test = next(cv.split(X, t))
    fold = clone(pw).fit(X.iloc[train], t.iloc[train])
    table = balance_table(X.iloc[test], t.iloc[test], fold.predict_weights(X.iloc[test], t.iloc[test]), estimand="ATT")
    assert_allclose(search.cv_results_["split0_test_score"][0], -table["smd_adj"].abs().mean(), rtol=1e-12)


def test_last_step_of_a_pipeline(lalonde):
    X, t = lalonde[COVARIATES], lalonde["treat"]
    numeric = ["age", "educ", "married", "nodegree", "re74", "re75"]
    prep = ColumnTransformer([("num", StandardScaler(), numeric),
                              ("cat", OneHotEncoder(drop="first"), ["race"])])
    pipe = make_pipeline(prep, PropensityWeights(estimand="ATT")).fit(X, t)
    direct = PropensityWeights(estimand="ATT").fit(X, t)
    # an affine rescaling and the same dummy coding span the same model space: identical MLE propensity scores
    assert_allclose(pipe[-1].weights_, direct.weights_.to_numpy(), rtol=1e-8)
    assert np.isfinite(pipe.score(X, t))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, {"propensityweights__estimand": ["ATT", "ATO"]}, cv=cv).fit(X, t)
    assert search.best_params_["propensityweights__estimand"] in ("ATT", "ATO")


# ---------------------------------------------------------------------------------------------------------------
# bad input: the data cases (missing values, treatment coding, index alignment, sample weights, collinearity...)
# run in tests/test_bad_inputs.py over every estimator of WEIGHTERS; the parameter checks stay here
# ---------------------------------------------------------------------------------------------------------------
def test_unsupported_estimand_names_the_supported_ones(small):
    X, t = small
    with pytest.raises(ValueError, match=r"estimand='ATX' is not supported here; choose one of \['ATE', 'ATT'"):
        PropensityWeights(estimand="ATX").fit(X, t)


def test_bad_parameters_are_named(small):
    X, t = small
    with pytest.raises(ValueError, match="clip="):
        PropensityWeights(clip=(0.9, 0.1)).fit(X, t)
    with pytest.raises(ValueError, match="trim="):
        PropensityWeights(trim="top").fit(X, t)
    with pytest.raises(TypeError, match="predict_proba"):
        PropensityWeights(model=StandardScaler()).fit(X, t)


def test_predict_weights_refuses_unseen_levels_and_columns(small):
    X, t = small
    pw = PropensityWeights().fit(X, t)
    with pytest.raises(ValueError, match="lacks the column"):
        pw.predict_weights(X.drop(columns="age"), t)
    odd = X.copy()
    odd["job"] = "c"
    with pytest.raises(ValueError, match="not seen in fit"):
        pw.predict_weights(odd, t)


def test_pickle_round_trip_keeps_the_fit(weighter, small):
    import pickle

    X, t = small
    weighter.fit(X, t)
    restored = pickle.loads(pickle.dumps(weighter))
    assert_allclose(restored.weights_, weighter.weights_, rtol=0)
    if hasattr(weighter, "predict_weights"):
        assert_allclose(restored.predict_weights(X, t), weighter.weights_, rtol=1e-12)


def test_sparse_input_is_refused_clearly(weighter):
    import scipy.sparse as sp

    with pytest.raises(TypeError, match="sparse X is not supported"):
        weighter.fit(sp.random(20, 3, density=0.5, format="csr", random_state=0), np.arange(20) % 2)
