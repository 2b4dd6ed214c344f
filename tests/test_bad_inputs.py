"""The shared bad-input suite: every weighting estimator, WeightedEffect and the HTE learners against every case of
tests/bad_input_cases.py, each with its expected outcome (a clear error, a warning with valid output, or valid
output). benchmarks/bad_inputs.py runs the same grid into benchmarks/results/bad_inputs.md.

The second half holds focused tests of the fixes the suite led to.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from balance import EntropyBalance, PropensityWeights, WeightedEffect
from balance._validation import CovariateDesign, check_full_rank
from balance.hte import FrontDoorDRLearner, TLearner

from .bad_input_cases import base_data


# ---------------------------------------------------------------------------------------------------------------
# focused tests of the fixes
# ---------------------------------------------------------------------------------------------------------------
def test_more_covariates_than_units_is_refused_before_any_decomposition():
    # 10,000 columns: the eigen-decomposition of the 10,001-square Gram matrix took minutes; the count decides it
    matrix = np.random.default_rng(0).normal(size=(50, 10_000))
    with pytest.raises(ValueError, match="10000 covariate columns .* only 50 units"):
        check_full_rank(matrix, [f"x{j}" for j in range(10_000)])
    # exactly enough units (k + 1 = n) is not refused by the count: random columns are then of full rank
    check_full_rank(matrix[:, :49], [f"x{j}" for j in range(49)])


def test_text_columns_that_are_not_categories_are_refused():
    n = 30
    frame = pd.DataFrame({"x": np.arange(n, dtype=float)})
    with pytest.raises(TypeError, match="'code' holds numbers stored as text; convert it with pd.to_numeric"):
        CovariateDesign.from_data(frame.assign(code=[str(i % 4 + 0.5) for i in range(n)]))
    with pytest.raises(ValueError, match="'note' is text with a different value in every row"):
        CovariateDesign.from_data(frame.assign(note=[f"note {i}" for i in range(n)]))
    # categories stay categories: repeated words, or numeric codes declared as a Categorical
    words = CovariateDesign.from_data(frame.assign(g=["a", "b", "c"] * 10))
    codes = CovariateDesign.from_data(frame.assign(g=pd.Categorical([str(i % 3) for i in range(n)])))
    assert words.kinds == codes.kinds == ("numeric", "categorical")


def test_entropy_balance_feasibility_check_is_scale_free():
    # the reference is the same fit at unit scale: exact balance is affine-equivariant, so the weights agree to
    # rounding (the old absolute floor of 1e-12 called every target of a 1e-12-sized covariate infeasible)
    X, t, _, _ = base_data()
    eb = EntropyBalance(estimand="ATE", moments=2)
    w = eb.fit(X, t).weights_
    tiny = EntropyBalance(estimand="ATE", moments=2).fit(X * 1e-12, t).weights_
    assert_allclose(tiny, w, rtol=1e-9, atol=0)  # Newton solves on standardised terms: rounding-level agreement


def test_entropy_tols_need_two_units_to_define_an_sd():
    X, t, _, _ = base_data()
    one = np.zeros(len(t), dtype=int)
    one[np.flatnonzero(t)[0]] = 1
    with pytest.raises(ValueError, match=r"tols=0.05 is in standard deviations of the treated group, which are "
                                         "undefined with fewer than 2 units"):
        EntropyBalance(estimand="ATT", tols=0.05).fit(X, one)


@pytest.mark.parametrize("scale", [1e12, 1e-12])
def test_aipw_effect_does_not_depend_on_covariate_scale(scale):
    # a rescaled covariate spans the same outcome model: the effect and its SE must agree with the unit-scale fit
    # (they drifted by up to 5e-6 relative before the outcome design was standardised)
    X, t, y, _ = base_data()
    fits = [WeightedEffect(PropensityWeights(estimand="ATE"), "aipw").fit(data, t, y)
            for data in (X, X.assign(x1=X["x1"] * scale))]
    assert_allclose([fits[1].estimate_, fits[1].se_], [fits[0].estimate_, fits[0].se_], rtol=1e-10, atol=0)


def test_hte_learners_say_how_to_code_labels_and_check_the_index():
    X, t, y, z = base_data()
    with pytest.raises(ValueError, match="code it 0/1 or boolean .* no treated= parameter"):
        TLearner().fit(X, t.map({0: "a", 1: "b"}), y)
    with pytest.raises(ValueError, match="y is a Series whose index differs from X's index"):
        TLearner().fit(X, t, y.set_axis(y.index + 1))
    with pytest.raises(ValueError, match="mediator is a Series whose index differs from X's index"):
        FrontDoorDRLearner().fit(X, t, pd.Series(z, index=X.index + 1), y)
