"""A treatment history with time-varying confounding affected by past treatment, and a known effect."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.utils import Bunch

from ._data import history_label

EFFECT = 1.0      # direct effect of each time point's treatment on y
CONFOUNDING = 0.8  # effect of the covariate on the next treatment, and of the last covariate on y
CARRY = 0.6       # L_t = CARRY L_{t-1} + MEDIATION A_t + noise
MEDIATION = 0.5


def simulate_msm(n=2000, n_times=3, *, dropout=False, random_state=None):
    """Simulate a cohort with a binary treatment at ``n_times`` time points (long format and wide layout).

    L_0 ~ N(0, 1); at t = 1..T, A_t ~ Bernoulli(expit(−0.3 + 0.8 L_{t−1} − 0.5 A_{t−1})), then
    L_t = 0.6 L_{t−1} + 0.5 A_t + N(0, 1): the covariate confounds the next treatment and is affected by the
    earlier ones. y = 1 + Σ_t A_t + 0.8 L_T + N(0, 1). Under history a the mean of L_T is Σ_t 0.5·0.6^{T−t} a_t, so
    E[y(a)] = 1 + Σ_t a_t (1 + 0.4·0.6^{T−t}) exactly (``truth``); a regression of y on the treatments and the
    covariates is biased (it blocks the effect through L), and one without covariates is confounded.

    With ``dropout``, a unit still observed at the start of interval t drops out during it with probability
    expit(−2.2 + 0.9 L_{t−1} + 0.4 A_t) (higher covariate, higher outcome: complete cases are biased); its later
    covariates, treatments and outcome are unobserved (NaN in ``long``; in the wide layout their values are kept
    but ignored by the estimators).

    Returns
    -------
    Bunch
        ``long`` (one row per unit and time point: id, time, L (measured before that time's treatment), A, and y on
        the last row), ``X_list`` (history of each time point: L_0..L_{t−1}, A_1..A_{t−1}), ``treatments``, ``y``,
        ``uncensored`` (n × T, 1 while observed at the end of interval t; all ones without dropout) and ``truth``
        (Series: E[y(a)] per history, named like "(1, 0, 1)").

    Examples
    --------
    >>> from balance.msm import simulate_msm
    >>> data = simulate_msm(500, 3, random_state=0)
    >>> data.long.shape, float(data.truth["(1, 1, 1)"] - data.truth["(0, 0, 0)"])
    ((1500, 5), 3.784)
    """
    rng = np.random.default_rng(random_state)
    L = [rng.normal(size=n)]
    A = []
    for t in range(n_times):
        previous = A[-1] if A else np.zeros(n)
        A.append(rng.binomial(1, expit(-0.3 + CONFOUNDING * L[-1] - 0.5 * previous)))
        L.append(CARRY * L[-1] + MEDIATION * A[-1] + rng.normal(size=n))
    y = 1 + EFFECT * np.sum(A, axis=0) + CONFOUNDING * L[-1] + rng.normal(size=n)
    observed = np.ones((n, n_times), dtype=np.int64)
    if dropout:
        alive = np.ones(n, dtype=bool)
        for t in range(n_times):
            alive &= rng.random(n) >= expit(-2.2 + 0.9 * L[t] + 0.4 * A[t])
            observed[:, t] = alive
    X_list = [pd.DataFrame({**{f"L_{s}": L[s] for s in range(t + 1)}, **{f"A_{s + 1}": A[s] for s in range(t)}})
              for t in range(n_times)]
    treatments = pd.DataFrame({f"A_{t + 1}": A[t] for t in range(n_times)})
    at_start = np.column_stack([np.ones(n, dtype=np.int64), observed[:, :-1]])
    long = pd.DataFrame({
        "id": np.repeat(np.arange(n), n_times), "time": np.tile(np.arange(1, n_times + 1), n),
        "L": np.column_stack(L[:-1]).ravel(), "A": np.column_stack(A).astype(float).ravel(),
        "y": np.column_stack([np.full((n, n_times - 1), np.nan), y[:, None]]).ravel(),
    })
    long.loc[at_start.ravel() == 0, ["L", "A"]] = np.nan
    long.loc[np.repeat(observed[:, -1] == 0, n_times), "y"] = np.nan
    weights = EFFECT + CONFOUNDING * MEDIATION * CARRY ** (n_times - 1 - np.arange(n_times))
    grid = list(itertools.product([0, 1], repeat=n_times))
    truth = pd.Series([round(1 + float(np.dot(h, weights)), 12) for h in grid], index=[history_label(h) for h in grid],
                      name="truth")
    return Bunch(long=long, X_list=X_list, treatments=treatments, y=np.where(observed[:, -1] == 1, y, np.nan),
                 uncensored=pd.DataFrame(observed, columns=[f"c_{t + 1}" for t in range(n_times)]), truth=truth)
