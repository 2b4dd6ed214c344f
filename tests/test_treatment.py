"""The treatment model: one rule decides the type, the levels, their order and the focal level."""

import numpy as np
import pandas as pd
import pytest

from balance import CBIPM, PropensityWeights
from balance._treatment import ESTIMANDS_BY_TYPE, check_estimand_for, check_treatment
from balance.datasets import load_lalonde


@pytest.mark.parametrize("values, treated, kind", [
    ([0, 1, 1, 0], None, "binary"),
    ([True, False, True], None, "binary"),
    (["a", "b", "a"], "b", "binary"),
    ([0.5, 1.5, 0.5], 1.5, "binary"),  # two distinct values are binary whatever their dtype
    (["a", "b", "c", "a"], None, "multi-category"),
    (pd.Categorical([1, 2, 3, 1]), None, "multi-category"),  # integer codes declared as categories
    ([0.1, 2.5, 3.0, 0.1], None, "continuous"),
])
def test_auto_decides_the_type_from_the_data(values, treated, kind):
    t = check_treatment(pd.Series(values), treated=treated)
    assert t.kind == kind


def test_integer_treatment_with_more_than_two_values_is_ambiguous():
    with pytest.raises(ValueError, match=r"integer with 3 distinct values.*treatment_type='multi-category'"):
        check_treatment(np.array([1, 2, 3, 1]))
    assert check_treatment(np.array([1, 2, 3, 1]), treatment_type="multi-category").levels == (1, 2, 3)
    assert check_treatment(np.array([1, 2, 3, 1]), treatment_type="continuous").codes.dtype == np.float64


def test_levels_keep_the_categorical_order_else_sorted_and_the_first_is_the_reference():
    declared = pd.Series(pd.Categorical(["x", "y", "z", "x"], categories=["z", "unused", "y", "x"]))
    t = check_treatment(declared)
    assert t.levels == ("z", "y", "x")  # declared order, a category without units dropped
    assert t.codes.tolist() == [2, 1, 0, 2]
    t = check_treatment(["white", "black", "hispan", "black"])
    assert t.levels == ("black", "hispan", "white")
    np.testing.assert_array_equal(t.indicators().argmax(axis=1), t.codes)
    np.testing.assert_array_equal(t.counts(), [2, 1, 1])


def test_focal_level_is_the_treated_argument():
    t = check_treatment(["b", "a", "c"], treated="c")
    assert t.focal == 2
    with pytest.raises(ValueError, match="treated='d' is not a level"):
        check_treatment(["b", "a", "c"], treated="d")
    with pytest.raises(ValueError, match="no meaning for a continuous treatment"):
        check_treatment([0.1, 0.2, 0.3], treated=0.1)


def test_binary_coding_is_unchanged():
    t = check_treatment(pd.Series(["ctl", "trt", "trt"]), treated="trt")
    assert (t.kind, t.levels, t.focal, t.codes.dtype) == ("binary", ("ctl", "trt"), 1, np.int8)
    np.testing.assert_array_equal(t.a, [0, 1, 1])
    with pytest.raises(ValueError, match="say which one is treated with treated=<level>"):
        check_treatment(["a", "b"])


@pytest.mark.parametrize("values, treatment_type, match", [
    (["a", "b", "c"], "binary", "exactly two levels; got 3"),
    (["a", "b"], "multi-category", "use treatment_type='binary'"),
    (["a", "b", "c"], "continuous", "needs a numeric treatment"),
    ([1.0, 2.0], "continuous", "only two values"),
    ([1.0, 1.0], "auto", "1 distinct value"),
    ([1.0, 2.0], "ordinal", "treatment_type='ordinal' is not supported"),
])
def test_an_explicit_type_that_does_not_fit_the_data_is_an_error(values, treatment_type, match):
    with pytest.raises(ValueError, match=match):
        check_treatment(values, treatment_type=treatment_type)


def test_estimands_per_type_and_the_focal_level_of_a_multi_category_att():
    multi = check_treatment(["a", "b", "c"])
    assert check_estimand_for("ate", multi, ESTIMANDS_BY_TYPE["multi-category"], "X") == "ATE"
    with pytest.raises(ValueError, match="ATC.*not supported by X for a multi-category treatment"):
        check_estimand_for("ATC", multi, ESTIMANDS_BY_TYPE["multi-category"], "X")
    with pytest.raises(ValueError, match="needs the focal level: pass treated=<level>"):
        check_estimand_for("ATT", multi, ESTIMANDS_BY_TYPE["multi-category"], "X")


def test_a_weighter_refuses_a_treatment_type_it_does_not_support_in_one_line():
    data = load_lalonde()
    X = data.X.drop(columns="race")
    with pytest.raises(ValueError, match=r"^CBIPM supports binary treatments only; got a multi-category treatment "
                                         r"with 3 levels\.$"):
        CBIPM().fit(X, data.X["race"])
    with pytest.raises(ValueError, match="integer with 3 distinct values"):
        PropensityWeights().fit(X, data.X["race"].cat.codes.astype(int))
