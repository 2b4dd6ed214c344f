"""Simulation designs with a known CATE: Nie & Wager's setups A–D, Kennedy's E, a simple F, and Jung's front door.

Setups A–F follow Fisher's ``wpor`` (``R/sim_data.R``): Y = b(X) + (A − 0.5) τ(X) + σ ε, ε ~ N(0, 1),
A ~ Bernoulli(e(X)). The front-door design is Jung (2025, arXiv:2509.22531, App. C.1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.utils import Bunch

SETUPS = ("A", "B", "C", "D", "E", "F")
_MIN_P = {"A": 5, "B": 5, "C": 3, "D": 5}


def _kennedy_baseline(x):
    """Piecewise-smooth baseline of setup E (Kennedy 2023)."""
    return np.select(
        [x <= -0.5, x < 0, x < 0.5],
        [0.5 * (x + 2) ** 2, x / 2 + 0.875, -5 * (x - 0.2) ** 2 + 1.075],
        x + 0.125,
    )


def _design(setup, n, p, rng):
    """(X, e(X), b(X), τ(X)) of one setup."""
    if setup == "A":
        X = rng.uniform(size=(n, p))
        s = np.sin(np.pi * X[:, 0] * X[:, 1])
        return X, np.clip(s, 0.1, 0.9), s + 2 * (X[:, 2] - 0.5) ** 2 + X[:, 3] + 0.5 * X[:, 4], X[:, :2].mean(1)
    if setup in ("B", "C", "D"):
        X = rng.normal(size=(n, p))
        x1, x2, x3 = X[:, 0], X[:, 1], X[:, 2]
        if setup == "B":
            b = np.maximum.reduce([np.zeros(n), x1 + x2, x3]) + np.maximum(0, X[:, 3] + X[:, 4])
            return X, np.full(n, 0.5), b, x1 + np.log1p(np.exp(x2))
        if setup == "C":
            return X, expit(-(x2 + x3)), 2 * np.log1p(np.exp(x1 + x2 + x3)), np.ones(n)
        pos123, pos45 = np.maximum(x1 + x2 + x3, 0), np.maximum(X[:, 3] + X[:, 4], 0)
        return X, 1 / (1 + np.exp(-x1) + np.exp(-x2)), (pos123 + pos45) / 2, pos123 - pos45
    if setup == "E":
        x = rng.uniform(-1, 1, size=n)
        return x[:, None], 0.1 + 0.8 * (x > 0), _kennedy_baseline(x), np.zeros(n)
    x = rng.uniform(0.05, 0.95, size=n)
    return x[:, None], x, np.zeros(n), np.zeros(n)


def make_hte_setup(setup="A", n=500, p=10, sigma=1.0, random_state=None):
    """Draw one of the CATE simulation setups A–F of Nie & Wager (2021) and Fisher (2024).

    ============  ================  =================================  ======================================
    setup         X                 e(X)                               τ(X)
    ============  ================  =================================  ======================================
    A             U[0, 1]^p         clip(sin(πX₁X₂), 0.1, 0.9)         (X₁ + X₂)/2
    B             N(0, I_p)         0.5                                X₁ + log(1 + e^{X₂})
    C             N(0, I_p)         1/(1 + e^{X₂+X₃})                  1
    D             N(0, I_p)         1/(1 + e^{−X₁} + e^{−X₂})          max(X₁+X₂+X₃, 0) − max(X₄+X₅, 0)
    E (Kennedy)   U(−1, 1), d = 1   0.1 + 0.8·1{X > 0}                 0
    F             U(0.05, 0.95)     X                                  0
    ============  ================  =================================  ======================================

    Parameters
    ----------
    setup : {"A", "B", "C", "D", "E", "F"}, default="A"
    n : int, default=500
    p : int, default=10
        Number of covariates (ignored by E and F, which have one).
    sigma : float, default=1.0
        Noise standard deviation.
    random_state : None, int or numpy Generator, default=None

    Returns
    -------
    Bunch with ``X`` (n, p), ``treatment`` (n,) 0/1, ``y``, ``tau`` (the true CATE), ``propensity`` and
    ``baseline`` (b(X)).

    Examples
    --------
    >>> from balance.hte import make_hte_setup
    >>> d = make_hte_setup("C", n=100, random_state=0)
    >>> d.X.shape, float(d.tau.mean())
    ((100, 10), 1.0)
    """
    if setup not in SETUPS:
        raise ValueError(f"setup={setup!r} is not one of {list(SETUPS)}.")
    if int(n) < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}.")
    if setup in _MIN_P and p < _MIN_P[setup]:
        raise ValueError(f"setup {setup} needs p >= {_MIN_P[setup]}; got p={p}.")
    rng = np.random.default_rng(random_state)
    X, e, b, tau = _design(setup, int(n), p, rng)
    a = rng.binomial(1, e)
    y = b + (a - 0.5) * tau + sigma * rng.normal(size=len(a))
    return Bunch(X=X, treatment=a, y=y, tau=tau, propensity=e, baseline=b)


def make_front_door(n=1000, d=10, overlap=None, mediator_logit="paper", random_state=None):
    """Jung's (2025) front-door design: binary treatment X and mediator Z, unobserved confounder U of X and Y.

    C ~ N(0, I_d), U ~ N(0, 1); P(X = 1 | C, U) = σ(β₀ + β_cᵀC + β_u U); P(Z = 1 | X, C) = σ(α₀ + α_cᵀC + α_x X);
    Y = θ_cᵀC + θ_z Z + θ_u U + ε. Main design: β₀ = 0.1, β_c = 0.7 w_X, β_u = 0.7, α₀ = 0.1, α_c = 0.7 w_Z,
    α_x = 1.2, θ_c = 0.7 w_Y, θ_z = 1.4, θ_u = −2.4, with unit directions w drawn from the seed. True effect
    τ(c) = θ_z [σ(α₀ + α_cᵀc + α_x) − σ(α₀ + α_cᵀc)]. The author's "observational paradox" rescaling of θ_u is not
    applied.

    Parameters
    ----------
    n : int, default=1000
    d : int, default=10
    overlap : float or None, default=None
        Weak-overlap variant with steepness κ_e (the paper uses 2…10): P(X = 1) = σ(κ_e(β₀ + β_cᵀC + β_u U)) with
        β₀ = 0.2, β_c = 1.2 w, β_u = 1; α_c = 0.8 w, θ_c = w, θ_z = 1, θ_u = 1.
    mediator_logit : {"paper", "code"}, default="paper"
        Weak overlap only: "code" also steepens and flips the mediator logit, q = σ(−κ_e · lin), as the author's
        code does; "paper" keeps it moderate.
    random_state : None, int or numpy Generator, default=None

    Returns
    -------
    Bunch with ``C`` (n, d), ``treatment``, ``mediator``, ``y``, ``tau`` (true τ(C)) and ``coef`` (a dict of the
    coefficients above: x_intercept, x_c, x_u, x_scale, z_intercept, z_c, z_x, z_scale, y_c, y_z, y_u).

    Examples
    --------
    >>> from balance.hte import make_front_door
    >>> fd = make_front_door(n=200, random_state=0)
    >>> fd.C.shape, bool((fd.tau > 0).all())
    ((200, 10), True)
    """
    if mediator_logit not in ("paper", "code"):
        raise ValueError(f"mediator_logit must be 'paper' or 'code'; got {mediator_logit!r}.")
    rng = np.random.default_rng(random_state)
    w_x, w_z, w_y = (v / np.linalg.norm(v) for v in rng.normal(size=(3, d)))
    C, U = rng.normal(size=(n, d)), rng.normal(size=n)
    if overlap is None:
        b0, b_c, b_u, k_x = 0.1, 0.7 * w_x, 0.7, 1.0
        a0, a_c, a_x, th_c, th_z, th_u, k_q = 0.1, 0.7 * w_z, 1.2, 0.7 * w_y, 1.4, -2.4, 1.0
    else:
        b0, b_c, b_u, k_x = 0.2, 1.2 * w_x, 1.0, overlap
        a0, a_c, a_x, th_c, th_z, th_u = 0.1, 0.8 * w_z, 1.2, w_y, 1.0, 1.0
        k_q = -overlap if mediator_logit == "code" else 1.0
    X = rng.binomial(1, expit(k_x * (b0 + C @ b_c + b_u * U)))

    def q1(c, x):
        return expit(k_q * (a0 + c @ a_c + a_x * x))

    Z = rng.binomial(1, q1(C, X))
    y = C @ th_c + th_z * Z + th_u * U + rng.normal(size=n)
    tau = th_z * (q1(C, 1) - q1(C, 0))
    coef = dict(x_intercept=b0, x_c=b_c, x_u=b_u, x_scale=k_x, z_intercept=a0, z_c=a_c, z_x=a_x, z_scale=k_q,
                y_c=th_c, y_z=th_z, y_u=th_u)
    return Bunch(C=C, treatment=X, mediator=Z, y=y, tau=tau, coef=coef)


_IHDP_CONTINUOUS = ["bw", "b.head", "preterm", "birth.o", "nnhealth", "momage"]


def make_ihdp_surface(surface="B", random_state=None):
    """Hill's (2011) semi-synthetic IHDP benchmark: real covariates and treatment, simulated potential outcomes.

    The 747 children of Hill's analysis sample (:func:`balance.datasets.load_ihdp_covariates` with
    ``hill_sample=True``); the six continuous covariates are standardised. Each draw picks new coefficients β and
    new noise (Hill 2011, Sec. 4.1):

    * surface "A" (linear, constant effect): β_j ∈ {0, 1, 2, 3, 4} with probabilities (.5, .2, .15, .1, .05);
      Y(0) ~ N(Xβ, 1), Y(1) ~ N(Xβ + 4, 1).
    * surface "B" (non-linear, heterogeneous; the "IHDP-100" benchmark's surface): β_j ∈ {0, .1, .2, .3, .4} with
      probabilities (.6, .1, .1, .1, .1); Y(0) ~ N(exp((X + 0.5)β), 1), Y(1) ~ N(Xβ − ω, 1), ω chosen so that
      the conditional average effect on the treated is 4.

    Parameters
    ----------
    surface : {"A", "B"}, default="B"
    random_state : None, int or numpy Generator, default=None

    Returns
    -------
    Bunch with ``X`` (DataFrame of the 25 covariates), ``treatment`` (Series, 0/1), ``y`` (the observed outcome),
    ``tau`` (the true CATE, μ₁(X) − μ₀(X)), ``mu0`` and ``mu1``.

    References
    ----------
    Hill, J. L. (2011). Bayesian nonparametric modeling for causal inference. Journal of Computational and
    Graphical Statistics, 20(1), 217–240.

    Examples
    --------
    >>> from balance.hte import make_ihdp_surface
    >>> d = make_ihdp_surface("B", random_state=0)
    >>> d.X.shape, round(float(d.tau[d.treatment == 1].mean()), 6)
    ((747, 25), 4.0)
    """
    from ..datasets import load_ihdp_covariates

    if surface not in ("A", "B"):
        raise ValueError(f"surface must be 'A' or 'B'; got {surface!r}.")
    rng = np.random.default_rng(random_state)
    data = load_ihdp_covariates(hill_sample=True)
    X = data.X.astype(float)
    X[_IHDP_CONTINUOUS] = (X[_IHDP_CONTINUOUS] - X[_IHDP_CONTINUOUS].mean()) / X[_IHDP_CONTINUOUS].std()
    a = data.treatment.to_numpy()
    x = X.to_numpy()
    if surface == "A":
        beta = rng.choice([0, 1, 2, 3, 4], size=x.shape[1], p=[0.5, 0.2, 0.15, 0.1, 0.05])
        mu0 = x @ beta
        mu1 = mu0 + 4
    else:
        beta = rng.choice([0, 0.1, 0.2, 0.3, 0.4], size=x.shape[1], p=[0.6, 0.1, 0.1, 0.1, 0.1])
        mu0 = np.exp((x + 0.5) @ beta)
        linear = x @ beta
        omega = np.mean(linear[a == 1] - mu0[a == 1]) - 4
        mu1 = linear - omega
    y0, y1 = mu0 + rng.normal(size=len(a)), mu1 + rng.normal(size=len(a))
    y = np.where(a == 1, y1, y0)
    return Bunch(X=X, treatment=data.treatment, y=pd.Series(y, index=X.index, name="y"), tau=mu1 - mu0, mu0=mu0,
                 mu1=mu1)
