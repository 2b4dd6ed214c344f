"""Trimming (winsorising) large weights, following WeightIt's ``trim()`` rules."""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import as_1d, check_indexes_agree, check_weights


def trim_weights(weights, a, at, *, lower=False, focal=None):
    """Winsorise weights at a quantile or at a count of the largest, as WeightIt's ``trim()``.

    Parameters
    ----------
    weights : ndarray of shape (n_samples,)
    a : ndarray of shape (n_samples,)
        The coded treatment: 0/1 (1 treated), or the level codes 0..K-1 of a multi-category treatment.
    at : float in [0.5, 1) or int >= 1
        A float is the quantile above which weights are set to that quantile (R's type-3 quantile, numpy's
        ``"closest_observation"``); values below 0.5 mean ``1 - at``. An integer is the number of largest weights
        set to the next largest one.
    lower : bool, default=False
        Also trim the lower tail (at ``1 - at``, or the ``at`` smallest weights).
    focal : int or None, default=None
        A group left untouched: the treated (1) for the ATT and the controls (0) for the ATC, the focal level's code
        for a multi-category ATT, whose weights are all equal by construction. Quantiles and counts are taken over
        the remaining units, pooled.

    Returns
    -------
    trimmed : ndarray of shape (n_samples,)
    touched : ndarray of bool, shape (n_samples,)
        Which units' weights changed.

    Examples
    --------
    >>> import numpy as np
    >>> from balance import trim_weights
    >>> trimmed, touched = trim_weights(np.arange(1.0, 11.0), np.zeros(10, dtype=int), 3)
    >>> trimmed
    array([1., 2., 3., 4., 5., 6., 7., 7., 7., 7.])
    >>> int(touched.sum())
    3
    """
    check_indexes_agree(weights=weights, a=a)
    weights = check_weights(weights, name="weights")
    a, _ = as_1d(a, "a")
    if a.shape != weights.shape:
        raise ValueError(f"a has {a.shape[0]} entries but weights has {weights.shape[0]}; pass one treatment value "
                         "per weight.")
    if a.dtype.kind not in "iub" or (a.size and a.min() < 0):
        raise ValueError("a must be the treatment coded 0/1 (1 = treated), or level codes 0, 1, 2, ...; recode it, "
                         "e.g. a = (treatment == level).")
    if focal is not None and (isinstance(focal, bool) or not isinstance(focal, numbers.Integral) or focal < 0):
        raise ValueError(f"focal={focal!r} must be the code of a treatment group (0 controls, 1 treated) or None.")
    eligible = np.ones(weights.shape, dtype=bool) if focal is None else (a != focal)
    pool = weights[eligible]
    if pool.size == 0:
        raise ValueError(f"no weight can be trimmed: every unit is in the focal group {focal}.")
    if isinstance(at, numbers.Integral) and not isinstance(at, bool):
        if not 1 <= at < pool.size:
            raise ValueError(f"trim={at} must be at least 1 and less than the {pool.size} units that can be trimmed.")
        ordered = np.sort(pool)
        hi = ordered[pool.size - at - 1]
        lo = ordered[at] if lower else -np.inf
    elif isinstance(at, numbers.Real) and 0 < at < 1:
        q = max(at, 1.0 - at)
        hi = np.quantile(pool, q, method="closest_observation")
        lo = np.quantile(pool, 1.0 - q, method="closest_observation") if lower else -np.inf
    else:
        raise ValueError(f"trim={at!r} must be a quantile in (0, 1) or a count of weights (an integer >= 1).")
    trimmed = weights.copy()
    trimmed[eligible] = np.clip(pool, lo, hi)
    return trimmed, trimmed != weights
