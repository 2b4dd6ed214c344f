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
