"""CBIPM's degenerate solutions and sampling-weight scale (issue 15, item 5).

A learning rate too large drove the weights of an arm onto one unit (Kish ESS 1, balance worse than unweighted)
while ``converged_`` stayed True; multiplying every sampling weight by 1e8 changed the weights, because the nonpara
gradient is per unit of sampling weight and Adam's eps swamped the scaled-down steps.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from balance import CBIPM
from balance.diagnostics import effective_sample_size
from balance.weights._cbipm import _degeneracy

from .bad_input_cases import base_data

X, T, _, _ = base_data()
SW = np.random.default_rng(3).uniform(0.5, 2.0, len(T))


def _fit(est, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # short runs: the plateau test may complain
        return est.fit(X, T, sample_weight=sample_weight)


@pytest.mark.parametrize("multiplier", [1e8, 1e-8])
@pytest.mark.parametrize("params", [{}, {"ipm": "sipm"}, {"ipm": "wass"}, {"estimand": "ATE"}, {"model": "linear"}],
                         ids=["mmd", "sipm", "wass", "ate", "linear"])
def test_weights_do_not_depend_on_the_scale_of_sample_weight(params, multiplier):
    # Reference: the same fit on the unscaled sampling weights (weights_ include them, hence the division). The
    # solver divides them by the smallest one, so the two runs differ only by the rounding of sw * multiplier / min,
    # amplified through 60 Adam steps: 1e-9 relative is far above that (1e-12 seen) and far below the old
    # differences (up to 10x for nonpara at 1e8).
    reference = np.asarray(_fit(CBIPM(n_epochs=60, random_state=0, **params), SW).weights_)
    scaled = np.asarray(_fit(CBIPM(n_epochs=60, random_state=0, **params), SW * multiplier).weights_) / multiplier
    assert_allclose(scaled, reference, rtol=1e-9, atol=0)


def test_qp_weights_do_not_depend_on_the_scale_of_sample_weight():
    # The interior-point solution is exact only to Clarabel's tolerance (1e-8): compare on the scale of the arm's
    # total weight. Near-zero weights move by far more, relatively, under a 1-ulp change of the input alone.
    reference = np.asarray(_fit(CBIPM(solver="qp"), SW).weights_)
    scaled = np.asarray(_fit(CBIPM(solver="qp"), SW * 1e8).weights_) / 1e8
    assert_allclose(scaled, reference, rtol=0, atol=1e-6 * reference.sum())


@pytest.mark.parametrize("params", [{"lr": 100.0}, {"model": "linear", "lr": 100.0}], ids=["nonpara", "linear"])
def test_a_collapsed_solution_is_not_converged(params):
    est = CBIPM(n_epochs=100, random_state=0, **params)
    with pytest.warns(ConvergenceWarning, match=r"degenerate solution \(control arm: Kish ESS 1\.\d\d of \d+ units"):
        est.fit(X, T)
    assert not est.converged_
    assert est.degenerate_ == ("control",)
    # an independent look at the returned weights: the controls' Kish ESS is that of one or two units
    assert effective_sample_size(est, T)["control"] < 2


def test_a_good_solution_is_not_flagged():
    est = CBIPM(n_epochs=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all: the defaults reach a spread, balancing solution
        est.fit(X, T)
    assert est.degenerate_ == ()
    assert effective_sample_size(est, T)["control"] > 10


def test_degeneracy_rules_in_closed_form():
    # one covariate, target mean 0, SD 1; equal base weights put the arm's mean at 0.6 (|SMD| 0.6)
    Z = np.array([[-1.0], [0.0], [0.4], [3.0]])
    base, target, sd = np.ones(4), np.zeros(1), np.ones(1)
    assert _degeneracy(np.full(4, 0.25), base, Z, target, sd) == ""  # the base weights themselves
    # 97 % on the unit at 3: ESS = 1 / sum(p^2) with p = (0.01, 0.01, 0.01, 0.97); mean 2.914 > 0.6 unweighted
    w = np.array([0.01, 0.01, 0.01, 0.97])
    text = _degeneracy(w, base, Z, target, sd)
    assert f"Kish ESS {1 / np.sum(w**2):.2f} of 4 units, largest weight share 97.0%" in text
    assert f"mean |SMD| {abs(w @ Z[:, 0]):.3f} after weighting against 0.600 unweighted" in text
    # balance worse than unweighted (0.0125) by less than 0.1: not flagged; by more: flagged
    Z = np.array([[-1.0], [0.0], [0.05], [1.0]])
    assert _degeneracy(np.array([0.2, 0.3, 0.2, 0.3]), base, Z, target, sd) == ""  # |mean| 0.11
    assert _degeneracy(np.array([0.1, 0.2, 0.2, 0.5]), base, Z, target, sd) == (
        "mean |SMD| 0.410 after weighting against 0.013 unweighted")
