"""The shared bad-input suite: every weighting estimator, WeightedEffect and the HTE learners against every case of
tests/bad_input_cases.py, each with its expected outcome: a ValueError/TypeError whose message names the problem,
or valid output (finite non-negative weights, index and rows kept, inputs untouched) with a warning where something
was changed or approximated, or without one. benchmarks/bad_inputs.py runs the same grid into
benchmarks/results/bad_inputs.md.

The second half holds focused tests of the fixes the suite led to.
"""

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from threadpoolctl import threadpool_limits

from balance import EntropyBalance, PropensityWeights, WeightedEffect
from balance._validation import CovariateDesign, check_full_rank
from balance.hte import FrontDoorDRLearner, TLearner

from .bad_input_cases import SPECS, base_data, build_cases, differs_from_base, run

CASES = {case.name: case for case in build_cases()}


@dataclass(frozen=True)
class Expect:
    kind: str  # "error" (ValueError/TypeError), "warning" (valid output + warning), "ok" (valid, silent), "n/a"
    match: str = ""  # regex the error message or the first warning must contain


def error(match):
    return Expect("error", match)


def warns(match):
    return Expect("warning", match)


OK, NA = Expect("ok"), Expect("n/a")

# What every estimator must do, per case ...
COLLINEAR = "covariates are perfectly collinear"
EXPECTED = {
    "base (clean data)": OK,
    "NaN in X": error("covariate 'x1' has 1 missing values; pass missing='indicator'"),
    "inf in X": error(r"X has missing or infinite values in column\(s\) \['x2'\]"),
    "NaN in treatment": error("treatment has 1 missing or infinite values"),
    "inf in treatment": error("treatment has 1 missing or infinite values"),
    "NaN in y": error("y has 1 missing or infinite values"),
    "inf in y": error("y has 1 missing or infinite values"),
    "NaN in sample_weight": error("sample_weight has 1 missing or infinite values"),
    "inf in sample_weight": error("sample_weight has 1 missing or infinite values"),
    "constant covariate": error(r"covariate\(s\) \['k'\] are constant"),
    "duplicated covariate": error(COLLINEAR + r".*\['x1_copy'\] are linear combinations"),
    "perfectly collinear columns": error(COLLINEAR + r".*\['x4'\] are linear combinations"),
    "perfect separation": OK,
    "treated group of size 1": OK,
    "treated group of size 2": OK,
    "treated value outside controls' range": OK,
    "covariate of size 1e12": OK,
    "covariate of size 1e-12": OK,
    "object column: numbers as strings": error("'x3' holds numbers stored as text"),
    "object column: free text": error("'note' is text with a different value in every row"),
    "one treatment level": error("treatment (has 1 distinct value|must have exactly two levels; got 1)"),
    # integer codes 0/1/2: categories or doses? the package asks instead of guessing
    "three treatment levels": error("(integer with 3 distinct values.*treatment_type=|treatment must have exactly "
                                    "two levels; got 3)"),
    "treatment shorter than X": error("treatment has 79 entries but X has 80 rows"),
    "treatment Series with another index": error("treatment is a Series whose index differs from X's index"),
    "y Series with another index": error("y is a Series whose index differs from X's index"),
    "boolean treatment": OK,
    "labels 'a'/'b' without treated=": error(r"treatment has levels \['a', 'b'\]; say which one is treated with "
                                             "treated=<level>"),
    "labels 'a'/'b' with treated='b'": OK,
    "non-default index": OK,
    "shuffled rows and index": OK,
    "duplicated index": OK,
    "X DataFrame, treatment and y ndarray": OK,
    "X ndarray, treatment and y Series": OK,
    "some zero sample_weight": OK,
    "all-zero sample_weight": error("sample_weight is zero for every unit"),
    "sample_weight zero for every control": error("the control group has 0 units with positive weight"),
    "negative sample_weight": error("sample_weight has 1 negative values"),
    "1 covariate": OK,
    "10,000 covariates": error(COLLINEAR + ": 10000 covariate columns .* only 80 units"),
    "X ndarray, y Series with another index than treatment's": error(
        r"y is a Series whose index differs from treatment's index; .*y.loc\[treatment.index\]"),
    "X ndarray, sample_weight Series with another index than treatment's": error(
        "sample_weight is a Series whose index differs from treatment's index"),
    "MultiIndex columns": error("X has MultiIndex columns .* flatten them first"),
    "complex covariate": error("covariate 'x3' holds complex numbers, whose imaginary part would be dropped"),
    "constant 0/1 outcome": OK,
    "mediator equal to the treatment": NA,
    "quasi-complete separation": OK,
    "near separation": OK,
}

# ... and where an estimator legitimately differs: (case, estimator-name regex or "group:<group>") -> expectation,
# the first match wins. Tilting methods (CBPS, IPT, entropy balancing) and StableWeights balance exactly, so a target
# outside the reweighted group's range is infeasible; propensity models and the learners bound extreme scores.
INFEASIBLE = "exact balance is infeasible: the target mean of"
BOUNDED_PS = "propensity predictions were outside .* and were clipped"
FLOORED_FD = "denominators were outside .* and were floored"
RANK_AIPW = "the outcome model's design is rank deficient"
CROSSFIT_ARMS = "each treatment arm needs at least 2 units for 2-fold cross-fitting; got 1 treated"
CROSSFITTED = r"(DR|IVWDR|R|U|Cov|IVWCov)Learner$"
# a separated propensity model is not converged (warned), so it has no sandwich variance
SEPARATED = "the treatment is separated by '{}'"
NO_SANDWICH = "vcov='asympt' needs solved estimating equations, but PropensityWeights did not converge"
EXTREME = "extreme weights of control"
OVERRIDES = {
    "NaN in y": [("group:weighter", NA)],
    "inf in y": [("group:weighter", NA)],
    "y Series with another index": [("group:weighter", NA)],
    "constant covariate": [("group:hte", OK)],  # the learners hand X to the user's models, which cope
    "duplicated covariate": [(r"EntropyBalance|WeightedEffect\(EntropyBalance", error(
        COLLINEAR + r" among the reweighted units: \['x1_copy'\]")), ("group:hte", OK)],
    "perfectly collinear columns": [(r"EntropyBalance|WeightedEffect\(EntropyBalance", error(
        COLLINEAR + r" among the reweighted units: \['x4'\]")), ("group:hte", OK)],
    "perfect separation": [
        ("PropensityWeights", warns(SEPARATED.format("s"))),
        (r"WeightedEffect\(PropensityWeights", error(NO_SANDWICH)),
        ("CBIPM-ATT#3", warns(EXTREME)),  # the QP leans on the few controls nearest the treated
        ("StableWeights-ATT", error("exact balance is infeasible: no non-negative weights")),
        ("StableWeights-ATE", error("balance within tols=0.02 is infeasible")),
        ("CBPS-ATE", warns(r"CBPS did not converge .* remaining imbalance")),
        (r"CBPS|InverseProbabilityTilting|EntropyBalance|WeightedEffect\(EntropyBalance",
         error(INFEASIBLE + " 's'")),
        (CROSSFITTED, warns(BOUNDED_PS)),
        ("FrontDoor(DR|R)Learner", warns(FLOORED_FD)),
    ],
    "treated group of size 1": [
        ("UniformTransformerWeights-ATE", error("the treated group has 1 unit; the uniform transformer fitted on it "
                                                "needs at least 2")),
        ("StableWeights-ATE", error("balance within tols=0.02 is infeasible")),
        ("InverseProbabilityTilting-ATE|EntropyBalance-ATE", error(INFEASIBLE + " 'x1'")),
        ("EntropyBalance-ATT#2", error("tols=0.05 is in standard deviations of the treated group, which are "
                                       "undefined with fewer than 2 units")),
        ("EnergyBalance-ATT|CBIPM-ATT#3", warns(EXTREME)),  # a few controls resemble the one treated unit
        (r"WeightedEffect.*aipw", error(RANK_AIPW)),
        # one treated unit: its mean is its outcome, with no variance to estimate (said, not silent)
        (r"WeightedEffect", warns("treated group has a single unit with positive weight")),
        (CROSSFITTED + "|FrontDoor(DR|R)Learner", error(CROSSFIT_ARMS)),
    ],
    "treated group of size 2": [
        ("StableWeights-ATE", error("balance within tols=0.02 is infeasible")),
        ("CBIPM-ATT#3", warns(EXTREME)),
        ("InverseProbabilityTilting-ATE|EntropyBalance-ATE", error(INFEASIBLE + " 'x1'")),
        (r"WeightedEffect.*aipw", error(RANK_AIPW)),
        (CROSSFITTED, warns(BOUNDED_PS)),
        ("FrontDoor(DR|R)Learner", warns(FLOORED_FD)),
    ],
    "treated value outside controls' range": [("FrontDoor(DR|R)Learner", warns(FLOORED_FD)),
                                              ("CBIPM-ATT#3", warns(EXTREME))],
    "labels 'a'/'b' without treated=": [("group:hte", error(
        r"treatment has levels \['a', 'b'\]; code it 0/1 or boolean .* no treated= parameter"))],
    "labels 'a'/'b' with treated='b'": [("group:hte", NA)],
    "shuffled rows and index": [("FrontDoor(DR|R)Learner", warns(FLOORED_FD))],  # other folds, one more extreme score
    "some zero sample_weight": [("UniformTransformerWeights", error(
        "sample_weight is not supported by UniformTransformerWeights"))],
    "10,000 covariates": [
        (r"EntropyBalance|WeightedEffect\(EntropyBalance", error(
            COLLINEAR + r" among the reweighted units: 10000 balance terms but only \d+ units")),
        ("FrontDoorRLearner", warns(r"predictions of b\(C\) were outside \[-1, 1\] and were bounded")),
        ("group:hte", OK),  # the user's (here regularised) models fit p > n
    ],
    "quasi-complete separation": [
        ("PropensityWeights", warns(SEPARATED.format("b"))),
        (r"WeightedEffect\(PropensityWeights-ATT", error(NO_SANDWICH)),
        (r"WeightedEffect\((PropensityWeights|CBIPM).*aipw", error(RANK_AIPW)),  # no control has b = 1
        ("StableWeights-ATT", error("exact balance is infeasible: no non-negative weights")),
        ("StableWeights-ATE", error("balance within tols=0.02 is infeasible")),
        ("CBPS-ATE", warns(r"CBPS did not converge .* remaining imbalance")),
        (r"CBPS|InverseProbabilityTilting|EntropyBalance|WeightedEffect\(EntropyBalance",
         error(INFEASIBLE + " 'b'")),
        ("FrontDoor(DR|R)Learner", warns(FLOORED_FD)),
    ],
    "near separation": [
        (r"PropensityWeights|WeightedEffect\(PropensityWeights|CBPS-ATE|EnergyBalance-ATT|CBIPM-ATT#3",
         warns(EXTREME)),
        ("StableWeights-ATT", error("exact balance is infeasible: no non-negative weights")),
        ("StableWeights-ATE", error("balance within tols=0.02 is infeasible")),
        ("EntropyBalance-ATE", warns(r"EntropyBalance did not converge .* remaining imbalance")),
        (r"CBPS|InverseProbabilityTilting|EntropyBalance|WeightedEffect\(EntropyBalance",
         error(INFEASIBLE + " 's'")),
        ("FrontDoor(DR|R)Learner", warns(FLOORED_FD)),
    ],
}
# the learners have no missing= parameter: their advice is to impute (it suggested missing='indicator')
OVERRIDES["NaN in X"] = [("group:hte", error("covariate 'x1' has 1 missing values; these learners take no missing= "
                                             "parameter: impute X first"))]
# the front-door formula needs both mediator values in each treatment arm (one treated unit has one of them), and
# the plug-in learner reports low mediator overlap where the DR learners report floored denominators
LOW_MEDIATOR_OVERLAP = r"fitted mediator distributions .* give a mediator value less than floor=0.05"
OVERRIDES["treated group of size 1"].insert(0, ("FrontDoor(DR|R|Plugin)Learner", error(
    "mediator: no unit has mediator = 1 with treatment = 1; the front-door formula needs both mediator values")))
OVERRIDES["treated value outside controls' range"].insert(0, ("FrontDoorPluginLearner", warns(LOW_MEDIATOR_OVERLAP)))
OVERRIDES["10,000 covariates"].insert(0, ("FrontDoorPluginLearner", warns(LOW_MEDIATOR_OVERLAP)))
OVERRIDES["X ndarray, y Series with another index than treatment's"] = [("group:weighter", NA)]
OVERRIDES["X ndarray, sample_weight Series with another index than treatment's"] = [("group:hte", NA)]
OVERRIDES["constant 0/1 outcome"] = [("group:weighter", NA), (r"WeightedEffect.*aipw", error(
    "y is 1 for every unit: a logistic outcome model .* cannot be fitted to a constant"))]
OVERRIDES["mediator equal to the treatment"] = [("FrontDoor", error(
    r"mediator: no unit has mediator = 1 with treatment = 0, .* \(the mediator equals the treatment\)"))]
for _name in ("NaN in sample_weight", "inf in sample_weight", "all-zero sample_weight",
              "sample_weight zero for every control", "negative sample_weight", "some zero sample_weight"):
    OVERRIDES.setdefault(_name, []).append(("group:hte", NA))  # their fit takes no sample_weight


def expected(spec, case_name):
    for selector, expect in OVERRIDES.get(case_name, []):
        if selector == f"group:{spec.group}" or (not selector.startswith("group:") and re.match(selector, spec.name)):
            return expect
    return EXPECTED[case_name]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # the machine is shared: BLAS and OpenMP threads spin-waiting under load made small fits 5x slower
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def base_results():
    cache = {}

    def get(spec):
        if spec.name not in cache:
            cache[spec.name] = run(spec, CASES["base (clean data)"], tolerate=spec.tolerate).result
        return cache[spec.name]

    return get


@pytest.mark.parametrize("case_name", list(CASES))
@pytest.mark.parametrize("spec", SPECS, ids=[spec.name for spec in SPECS])
def test_bad_input(spec, case_name, base_results):
    case = CASES[case_name]
    outcome = run(spec, case, tolerate=spec.tolerate)
    expect = expected(spec, case_name)
    assert outcome.kind == expect.kind, f"expected {expect.kind} ({expect.match}), got {outcome.short(400)}"
    if expect.kind == "error":
        assert issubclass(outcome.exception, (ValueError, TypeError))
        assert re.search(expect.match, outcome.message), outcome.message
    if expect.kind == "warning":
        assert re.search(expect.match, outcome.message), outcome.message
    # valid output on the same data passed another way, reordered or rescaled must match the clean fit
    # (tolerances, and why, at bad_input_cases.RTOL)
    assert differs_from_base(spec, case, outcome, base_results(spec)) is None


def test_every_case_has_an_expectation():
    assert set(EXPECTED) == set(CASES)
    assert set(OVERRIDES) <= set(CASES)


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
