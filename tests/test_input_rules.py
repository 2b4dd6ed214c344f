"""Rules every entry point applies to its inputs: pandas indexes must agree (never paired by position), estimands in
any case, and the clear errors of issue 15's crash list. Each test failed on the code before its fix."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression

from balance import PropensityWeights, WeightedEffect
from balance._validation import check_indexes_agree
from balance.diagnostics import balance_table
from balance.hte import DRLearner, FrontDoorPluginLearner, TLearner

from .bad_input_cases import base_data
from .test_contract import IDS, WEIGHTERS

X, T, Y, Z = base_data()
XA = X.to_numpy()
ONES = pd.Series(np.ones(len(X)))


def _reversed_index(values):
    return values.set_axis(values.index[::-1])


# ---------------------------------------------------------------------------------------------------------------
# indexes
# ---------------------------------------------------------------------------------------------------------------
def test_check_indexes_agree_rule():
    s = pd.Series([1.0, 2.0, 3.0], index=[7, 8, 9])
    assert check_indexes_agree(X=np.ones((3, 1)), treatment=[0, 1, 0], y=None) is None  # nothing carries an index
    assert check_indexes_agree(X=None, treatment=s, y=s.to_numpy()).equals(s.index)
    with pytest.raises(ValueError, match=r"y is a Series whose index differs from treatment's index.*"
                                         r"y.loc\[treatment.index\].*reset_index\(drop=True\).*to_numpy\(\)"):
        check_indexes_agree(X=None, treatment=s, y=s.set_axis([9, 8, 7]))
    # the same labels in another order are another pairing: refused as well
    with pytest.raises(ValueError, match="w is a Series whose index differs from X's index"):
        check_indexes_agree(X=pd.DataFrame({"a": [1, 2, 3]}, index=[7, 8, 9]), w=s.sort_index(ascending=False))


# With X an ndarray, pandas inputs used to be paired by position whatever their index (X a DataFrame was checked).
MISMATCHED = {
    "weighter sample_weight": (lambda: PropensityWeights().fit(XA, T, sample_weight=_reversed_index(ONES)),
                               "sample_weight is a Series whose index differs from treatment's"),
    "WeightedEffect y": (lambda: WeightedEffect(PropensityWeights()).fit(XA, T, _reversed_index(Y)),
                         "y is a Series whose index differs from treatment's"),
    "WeightedEffect cluster": (lambda: WeightedEffect(PropensityWeights()).fit(
        XA, T, Y, cluster=_reversed_index(pd.Series(np.arange(len(X)) // 4))),
        "cluster is a Series whose index differs from treatment's"),
    "WeightedEffect sample_weight": (lambda: WeightedEffect(PropensityWeights()).fit(
        XA, T.to_numpy(), Y, sample_weight=_reversed_index(ONES)), "sample_weight is a Series whose index differs "
                                                                   "from y's"),
    "balance_table sample_weight": (lambda: balance_table(XA, T, None, sample_weight=_reversed_index(ONES)),
                                    "sample_weight is a Series whose index differs from treatment's"),
    "TLearner y": (lambda: TLearner(LinearRegression()).fit(XA, T, _reversed_index(Y)),
                   "y is a Series whose index differs from treatment's"),
    "front-door mediator": (lambda: FrontDoorPluginLearner(LogisticRegression(), LogisticRegression(),
                                                           LinearRegression()).fit(XA, T, _reversed_index(
                                                               pd.Series(Z)), Y),
                            "mediator is a Series whose index differs from treatment's"),
    "best_linear_projection": (lambda: DRLearner(LogisticRegression(), LinearRegression(), LinearRegression(), cv=2,
                                                 random_state=0).fit(X, T, Y).best_linear_projection(
        X[["x1"]].iloc[::-1]), "X_subset is a DataFrame whose index differs from X's index"),
}


@pytest.mark.parametrize("name", list(MISMATCHED))
def test_inputs_with_disagreeing_indexes_are_refused(name):
    call, message = MISMATCHED[name]
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------------------------------------------
# estimands
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("proto", WEIGHTERS, ids=IDS)
def test_estimand_in_any_case_gives_the_same_weights(proto):
    # one rule for every weighter: the estimand is stored as given and normalised in fit. PropensityWeights refused
    # "att"; EnergyBalance and CBIPM accepted it and silently fitted another estimand (ATE-like weights).
    lower = clone(proto).set_params(estimand=proto.estimand.lower())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short CBIPM runs warn about training length, in either case
        upper = clone(proto).fit(X, T)
        lower.fit(X, T)
    assert lower.estimand == proto.estimand.lower()  # the parameter is untouched (scikit-learn's rule)
    assert_array_equal(np.asarray(lower.weights_), np.asarray(upper.weights_))  # the same computation: bitwise


# ---------------------------------------------------------------------------------------------------------------
# crashes and unclear errors (each raised a KeyError, LinAlgError, TypeError or a misleading message before)
# ---------------------------------------------------------------------------------------------------------------
def _one_hot_pipeline():
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encoder = make_column_transformer((OneHotEncoder(sparse_output=False), ["g"]), remainder="passthrough")
    return make_pipeline(encoder, PropensityWeights())


def _multiindex_columns():
    return X.set_axis(pd.MultiIndex.from_tuples([("a", "x1"), ("a", "x2"), ("b", "x3")]), axis=1)


def _unfitted_pipeline():
    from sklearn.pipeline import make_pipeline

    return make_pipeline(PropensityWeights())


def _with_nan(frame):
    out = frame.copy()
    out.iloc[3, 0] = np.nan
    return out


CRASHES = {
    "MultiIndex columns": (lambda: PropensityWeights().fit(_multiindex_columns(), T), ValueError,
                           r"X has MultiIndex columns .* flatten them first"),
    "constant 0/1 outcome, aipw": (lambda: WeightedEffect(PropensityWeights(), "aipw").fit(X, T, np.ones(len(X))),
                                   ValueError, "y is 1 for every unit: a logistic outcome model .* outcome_model="
                                               "'simple'"),
    "clip=0.05": (lambda: PropensityWeights(clip=0.05).fit(X, T), ValueError,
                  r"clip=0.05 must be a pair \(lo, hi\) .* e.g. clip=\(0.05, 0.95\)"),
    "unfitted Pipeline to balance_table": (lambda: balance_table(X, T, _unfitted_pipeline()), TypeError,
                                           "weights is an unfitted Pipeline; fit it first, or pass its weights"),
    "one-hot without drop": (lambda: _one_hot_pipeline().fit(X.assign(g=["u", "v", "w", "u"] * 20), T), ValueError,
                             r"perfectly collinear: .* OneHotEncoder\(drop='first'\)"),
    "missing X in an HTE learner": (lambda: TLearner(LinearRegression()).fit(_with_nan(X), T, Y), ValueError,
                                    "these learners take no missing= parameter: impute X first"),
    "complex array X": (lambda: PropensityWeights().fit(XA + 1j, T), TypeError,
                        "X holds complex numbers, whose imaginary parts would be dropped"),
    "complex DataFrame column": (lambda: PropensityWeights().fit(X.assign(x1=X["x1"] + 1j), T), TypeError,
                                 "covariate 'x1' holds complex numbers"),
}


@pytest.mark.parametrize("name", list(CRASHES))
def test_crash_list_errors_name_input_problem_and_fix(name):
    call, kind, message = CRASHES[name]
    with pytest.raises(kind, match=message):
        call()


def test_hte_learners_do_not_suggest_a_missing_parameter():
    with pytest.raises(ValueError) as info:
        TLearner(LinearRegression()).fit(_with_nan(X), T, Y)
    assert "missing='indicator'" not in str(info.value)


def test_nullable_string_column_with_na_under_indicator():
    # pd.NA in a "string" column made the level dummies NaN (LinAlgError); a missing value is in no level's dummy,
    # as for an object column: the weights must equal those of the same data stored as object
    g = pd.array(["u", "v", "w", "u"] * 20, dtype="string")
    g[3] = pd.NA
    w_string = PropensityWeights(missing="indicator").fit(X.assign(g=g), T).weights_
    w_object = PropensityWeights(missing="indicator").fit(X.assign(g=g.astype(object)), T).weights_
    assert_array_equal(w_string, w_object)


def test_bootstrap_takes_list_inputs_as_asympt_does():
    rows, t, y = XA.tolist(), T.tolist(), Y.tolist()
    listed = WeightedEffect(PropensityWeights(), vcov="bootstrap", n_bootstrap=20, random_state=0).fit(rows, t, y)
    arrays = WeightedEffect(PropensityWeights(), vcov="bootstrap", n_bootstrap=20, random_state=0).fit(XA, T, Y)
    # the same data as arrays and the same seed: the same resamples, so the same SE to rounding
    assert listed.se_ == pytest.approx(arrays.se_, rel=1e-12)


def test_cli_data_pointing_at_a_directory(tmp_path, capsys):
    from balance._cli import main

    assert main(["--data", str(tmp_path)]) == 2  # a usage error, not a traceback with exit code 1
    assert "--data: cannot read" in capsys.readouterr().err


def test_trim_weights_validates_its_inputs():
    from balance import trim_weights

    a = np.r_[np.zeros(5, dtype=int), np.ones(5, dtype=int)]
    w = np.arange(1.0, 11.0)
    with pytest.raises(ValueError, match="weights has 1 missing or infinite values"):
        trim_weights(np.r_[np.nan, w[1:]], a, 0.9)
    with pytest.raises(ValueError, match="weights has 1 negative values"):
        trim_weights(np.r_[-1.0, w[1:]], a, 0.9)
    with pytest.raises(ValueError, match="a has 10 entries but weights has 9"):
        trim_weights(w[:-1], a, 0.9)
    with pytest.raises(ValueError, match="a must be the treatment coded 0/1"):
        trim_weights(w, a - 1, 0.9)  # negative codes
    with pytest.raises(ValueError, match="a must be the treatment coded 0/1"):
        trim_weights(w, a + 0.5, 0.9)  # not codes at all
    with pytest.raises(ValueError, match="a is a Series whose index differs from weights's index"):
        trim_weights(pd.Series(w, index=np.arange(10)[::-1]), pd.Series(a), 0.9)


# ---------------------------------------------------------------------------------------------------------------
# front-door positivity (issue 15, item 7)
# ---------------------------------------------------------------------------------------------------------------
def _front_door_learners():
    from balance.hte import FrontDoorDRLearner

    return [FrontDoorPluginLearner(LogisticRegression(), LogisticRegression(), LinearRegression()),
            FrontDoorDRLearner(LogisticRegression(), LogisticRegression(), LinearRegression(), LinearRegression(),
                               cv=2, random_state=0)]


@pytest.mark.parametrize("learner", _front_door_learners(), ids=lambda est: type(est).__name__)
def test_front_door_refuses_a_mediator_equal_to_the_treatment(learner):
    # the plug-in returned CATEs without a word: m(1, 0, c) and m(0, 1, c) were pure extrapolation
    with pytest.raises(ValueError, match=r"mediator: no unit has mediator = 1 with treatment = 0, mediator = 0 with "
                                         r"treatment = 1 \(the mediator equals the treatment\)"):
        learner.fit(X, T, T, Y)
    with pytest.raises(ValueError, match=r"the mediator is the treatment's negation"):
        learner.fit(X, T, 1 - T, Y)


def test_front_door_plugin_reports_low_mediator_overlap():
    from balance.hte import make_front_door

    fd = make_front_door(n=1000, random_state=0)
    z = np.asarray(fd.treatment).copy()
    z[:6] = 1 - z[:6]  # all four (treatment, mediator) pairs occur, but the mediator almost equals the treatment
    learner = FrontDoorPluginLearner(LogisticRegression(), LogisticRegression(), LinearRegression())
    with pytest.warns(UserWarning, match=r"of the 2000 fitted mediator distributions .* less than floor=0.05"):
        learner.fit(fd.C, fd.treatment, z, fd.y)
    # independent count: the fitted mediator model's q(1 | x, c) at both x, outside [0.05, 0.95]
    q_model = learner.models_[1]
    C = np.asarray(fd.C, dtype=float)
    q1 = np.column_stack([q_model.predict_proba(np.column_stack([np.full(len(C), xv), C]))[:, 1] for xv in (0, 1)])
    assert learner.n_low_overlap_ == int(np.sum((q1 < 0.05) | (q1 > 0.95)))
    assert learner.n_low_overlap_ > 1900  # nearly every unit, at both treatment values


def test_cate_plot_refuses_series_on_other_indexes():
    pytest.importorskip("matplotlib")
    x = pd.Series(np.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="cate is a Series whose index differs from x's index"):
        from balance.plot import cate_plot

        cate_plot(x, pd.Series(1 + x.to_numpy(), index=x.index[::-1]))
