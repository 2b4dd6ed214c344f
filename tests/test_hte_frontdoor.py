"""Front-door learners (Jung 2025): the pseudo-outcome's double robustness with exact nuisances, learners, checks."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import expit
from sklearn.linear_model import LinearRegression, LogisticRegression

from balance.hte import FrontDoorDRLearner, FrontDoorPluginLearner, FrontDoorRLearner, make_front_door
from balance.hte._frontdoor import fd_dr_pseudo_outcome, fd_plugin

NODES, WEIGHTS = np.polynomial.hermite_e.hermegauss(60)
WEIGHTS = WEIGHTS / WEIGHTS.sum()  # expectations over U ~ N(0, 1), exact for smooth integrands to ~1e-12


def true_nuisances(fd):
    """e(1 | c), q(1 | x, c), m(z, x, c) of the design, by Gauss–Hermite quadrature over the hidden U."""
    k = fd.coef
    lin = k["x_scale"] * (k["x_intercept"] + fd.C @ k["x_c"])[:, None] + k["x_scale"] * k["x_u"] * NODES[None, :]
    px = expit(lin)  # P(X = 1 | C, U = node)
    e1 = px @ WEIGHTS
    u_given = {1: (px * NODES) @ WEIGHTS / e1, 0: ((1 - px) * NODES) @ WEIGHTS / (1 - e1)}  # E[U | X = x, C]
    q1 = np.column_stack([expit(k["z_scale"] * (k["z_intercept"] + fd.C @ k["z_c"] + k["z_x"] * x)) for x in (0, 1)])
    m = np.empty((len(fd.y), 2, 2))
    for z in (0, 1):
        for x in (0, 1):
            m[:, z, x] = fd.C @ k["y_c"] + k["y_z"] * z + k["y_u"] * u_given[x]
    return e1, q1, m


def test_plugin_with_true_nuisances_is_the_effect():
    fd = make_front_door(n=500, random_state=0)
    e1, q1, m = true_nuisances(fd)
    assert_allclose(fd_plugin(e1, q1, m, clip=1e-12)[0], fd.tau, rtol=1e-10, atol=1e-12)  # exact identity (Eq. 49)


@pytest.mark.parametrize("wrong,biased", [(None, False), ("m_e", False), ("q", False), ("q_m", True)])
def test_pseudo_outcome_is_doubly_robust(wrong, biased):
    errors = []
    for seed in range(10):
        fd = make_front_door(n=2000, random_state=seed)
        e1, q1, m = true_nuisances(fd)
        if wrong in ("m_e", "q_m"):
            m = m + 1.0 + 0.5 * fd.C[:, :1, None]  # an outcome model off by a covariate-dependent shift
        if wrong == "m_e":
            e1 = np.full_like(e1, 0.5)
        if wrong in ("q", "q_m"):
            q1 = expit(np.log(q1 / (1 - q1)) + 0.8)
        psi, _, _ = fd_dr_pseudo_outcome(fd.y, fd.treatment, fd.mediator, e1, q1, m, e1, q1, floor=1e-3)
        errors.append(psi - fd.tau)
    err = np.concatenate(errors)
    z = abs(err.mean()) / (err.std() / np.sqrt(err.size))
    # E[ψ | C] = τ(C) when q, or (m, e), is right (Lemma 2): zero mean error within 4 Monte Carlo SEs; with q and m
    # both wrong the bias is detected.
    assert (z > 4) if biased else (z < 4)


@pytest.mark.filterwarnings("ignore:.*were floored")
def test_learners_recover_average_effect():
    fd = make_front_door(n=2000, random_state=3)
    lin = dict(propensity_model=LogisticRegression(), mediator_model=LogisticRegression(),
               outcome_model=LinearRegression())
    dr = FrontDoorDRLearner(final_model=LinearRegression(), random_state=0, **lin)
    dr.fit(fd.C, fd.treatment, fd.mediator, fd.y)
    se = dr.pseudo_outcome_.std() / np.sqrt(len(fd.y))  # about 0.05 at this n
    # q is correctly specified (logistic), so ψ is unbiased: the mean of the fitted τ̂ (the mean of ψ, since the
    # final model is least squares with an intercept) is within 4 SEs of the mean true effect.
    assert abs(dr.predict(fd.C).mean() - fd.tau.mean()) < 4 * se
    r = FrontDoorRLearner(stage_model=LinearRegression(), final_model=LinearRegression(), random_state=0, **lin)
    assert abs(r.fit(fd.C, fd.treatment, fd.mediator, fd.y).predict(fd.C).mean() - fd.tau.mean()) < 4 * se
    # The plug-in with the correct mediator model tracks the heterogeneity (τ depends on q only).
    pi = FrontDoorPluginLearner(**lin).fit(fd.C, fd.treatment, fd.mediator, fd.y).predict(fd.C)
    assert np.corrcoef(pi, fd.tau)[0, 1] > 0.9


def test_floor_counted_and_warned():
    fd = make_front_door(n=600, random_state=1)
    est = FrontDoorDRLearner(LogisticRegression(), LogisticRegression(), LinearRegression(),
                             final_model=LinearRegression(), floor=0.3, random_state=0)
    with pytest.warns(UserWarning, match="floored"):
        est.fit(fd.C, fd.treatment, fd.mediator, fd.y)
    x, z, idx = fd.treatment, fd.mediator, np.arange(600)
    e_obs = np.where(x == 1, est.nuisances_["e1"], 1 - est.nuisances_["e1"])
    q_obs = np.where(z == 1, est.nuisances_["q1"][idx, x], 1 - est.nuisances_["q1"][idx, x])
    expected = np.sum((e_obs < 0.3) | (e_obs > 0.7)) + np.sum((q_obs < 0.3) | (q_obs > 0.7))
    assert est.n_floored_ == expected > 0
    r = FrontDoorRLearner(LogisticRegression(), LogisticRegression(), LinearRegression(), LinearRegression(),
                          LinearRegression(), floor=0.3, random_state=0)
    with pytest.warns(UserWarning, match="floored"):
        r.fit(fd.C, fd.treatment, fd.mediator, fd.y)
    assert r.nuisances_["e_x"].min() >= 0.3 and r.n_floored_ > 0


def test_bad_inputs():
    fd = make_front_door(n=200, random_state=2)
    est = FrontDoorDRLearner(LogisticRegression(), LogisticRegression(), LinearRegression(), LinearRegression())
    with pytest.raises(ValueError, match="mediator"):
        est.fit(fd.C, fd.treatment, fd.mediator + np.arange(200) % 3, fd.y)
    with pytest.raises(ValueError, match="floor"):
        est.set_params(floor=0.5).fit(fd.C, fd.treatment, fd.mediator, fd.y)
    with pytest.raises(ValueError, match="final_stage"):
        FrontDoorRLearner(final_stage="x").fit(fd.C, fd.treatment, fd.mediator, fd.y)
    with pytest.raises(ValueError, match="mediator_logit"):
        make_front_door(n=10, overlap=2, mediator_logit="x")


def test_b_predictions_outside_minus_one_one_are_counted_and_warned():
    from sklearn.dummy import DummyRegressor

    fd = make_front_door(n=400, random_state=2)
    # a stage model that predicts b(C) = 3 everywhere: every prediction is bounded to 1, and said so
    r = FrontDoorRLearner(LogisticRegression(), LogisticRegression(), LinearRegression(),
                          DummyRegressor(strategy="constant", constant=3.0), LinearRegression(),
                          final_stage="regress", random_state=0)
    with pytest.warns(UserWarning, match="400 predictions of b\\(C\\) were outside \\[-1, 1\\]"):
        r.fit(fd.C, fd.treatment, fd.mediator, fd.y)
    assert r.n_b_bounded_ == 400


def test_numerator_clipping_is_counted_and_warned():
    """clip bounds the numerator probabilities e1 and q1: never silently (count = entries outside the bounds)."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from balance.hte import FrontDoorDRLearner, FrontDoorPluginLearner, make_front_door

    fd = make_front_door(n=600, random_state=1)
    dr = FrontDoorDRLearner(LogisticRegression(), LogisticRegression(), LinearRegression(),
                            final_model=LinearRegression(), cv=2, floor=0.01, clip=0.3, random_state=0)
    with pytest.warns(UserWarning, match=r"probabilities were outside \[0.3, 0.7\] and were clipped"):
        dr.fit(fd.C, fd.treatment, fd.mediator, fd.y)
    e1, q1 = dr.nuisances_["e1"], dr.nuisances_["q1"]
    expected = int(np.sum((e1 < 0.3) | (e1 > 0.7)) + np.sum((q1 < 0.3) | (q1 > 0.7)))
    assert dr.n_clipped_ == expected > 0
    plugin = FrontDoorPluginLearner(LogisticRegression(), LogisticRegression(), LinearRegression(), clip=0.3)
    plugin.fit(fd.C, fd.treatment, fd.mediator, fd.y)
    with pytest.warns(UserWarning, match="were clipped"):
        plugin.predict(fd.C)
