"""Weighted column statistics that neither overflow nor underflow: the one home of cobalt's weighted variance and
of Kish's effective sample size.

Squaring a covariate of magnitude 1e160 overflows and squaring one of magnitude 1e-200 underflows, although every
statistic built from the squares (an SMD, a variance ratio, an ESS) is scale-free. So each column is first divided
by a power of two close to its largest absolute value (:func:`scale_columns`) and the statistics are computed on
the scaled values. Dividing by a power of two is exact in binary floating point (outside the subnormal range), and
so is every later rounding step relative to it: results are bitwise those of the plain formulas wherever those do
not overflow or underflow, and correct where they do.
"""

from __future__ import annotations

import numpy as np


def pow2_scale(x, axis=0):
    """Per column (``axis=0``) or overall (``axis=None``), the power of two ``s`` with ``max |x| / s`` in [1, 2).

    An all-zero (or empty) column gets ``s = 1``.

    Examples
    --------
    >>> import numpy as np
    >>> pow2_scale(np.array([[3.0, 0.0], [-5.0, 0.0]]))
    array([4., 1.])
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.ones(x.shape[1]) if axis == 0 and x.ndim == 2 else np.float64(1.0)
    top = np.max(np.abs(x), axis=axis)
    _, exponent = np.frexp(top)  # top = m * 2**exponent, m in [0.5, 1)
    return np.where(top > 0, np.ldexp(1.0, exponent - 1), 1.0)


def scale_columns(X):
    """Return ``(X / s, s)`` with ``s`` = :func:`pow2_scale` of each column (an exact division)."""
    s = pow2_scale(X)
    return X / s, s


def column_std(X):
    """``X.std(axis=0)`` (population SD) computed on scaled columns: bitwise the same where that does not overflow
    or underflow, and correct for columns of magnitude 1e200 or 1e-200. Used to standardise covariates.

    Examples
    --------
    >>> import numpy as np
    >>> column_std(np.array([[1e200, 1e-200], [3e200, 3e-200]]))
    array([1.e+200, 1.e-200])
    """
    Xs, s = scale_columns(X)
    return Xs.std(axis=0) * s


def normalise(w):
    """``w / sum(w)``, summed after an exact rescaling so that weights of any finite magnitude work."""
    w = w / pow2_scale(w, axis=None)
    return w / w.sum()


def reliability_var(X, w):
    """cobalt's weighted variance of each column of ``X`` over the units with ``w > 0``.

    The n − 1 ("reliability weights") form: with :math:`v = w / \\sum w`,
    :math:`\\sum v (x - \\bar x_v)^2 / (1 - \\sum v^2)`, the usual sample variance for equal weights. NaN when one
    unit carries all the weight (the variance is then undefined). ``X`` should hold scaled columns
    (:func:`scale_columns`) so that the squares cannot overflow or underflow; :func:`reliability_sd` does that.
    """
    return reliability_cov(X, X, w)


def reliability_cov(X, a, w):
    """cobalt's weighted covariance of each column of ``X`` with the matching column of ``a`` (or with ``a`` itself
    when it is one-dimensional), over the units with ``w > 0``.

    The n − 1 form of :func:`reliability_var`: with :math:`v = w / \\sum w`,
    :math:`\\sum v (x - \\bar x_v)(a - \\bar a_v) / (1 - \\sum v^2)`; ``reliability_cov(X, X, w)`` is the
    variance. NaN when one unit carries all the weight. Both arguments should hold scaled columns
    (:func:`scale_columns`).

    Examples
    --------
    >>> import numpy as np
    >>> X, a = np.array([[1.0], [2.0], [4.0]]), np.array([0.0, 1.0, 1.0])
    >>> float(reliability_cov(X, a, np.ones(3))[0]), float(np.cov(X[:, 0], a)[0, 1])
    (0.6666666666666665, 0.6666666666666666)
    """
    pos = w > 0
    v = normalise(w[pos])
    correction = 1.0 - v @ v  # 0 when one unit carries all the weight
    if correction <= 0:
        return np.full(X.shape[1], np.nan)
    rows, other = X[pos], a[pos]
    if other.ndim == 1:
        other = other[:, None]
    return v @ ((rows - v @ rows) * (other - v @ other)) / correction


def reliability_sd(X, w):
    """Square root of :func:`reliability_var`, in the units of ``X``, computed on scaled columns.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1e200, 1e-200], [3e200, 3e-200], [2e200, 2e-200]])
    >>> reliability_sd(X, np.ones(3))
    array([1.e+200, 1.e-200])
    """
    Xs, s = scale_columns(X)
    return np.sqrt(reliability_var(Xs, w)) * s


def group_sd(X, w, codes, group=None, n_groups=2, undefined=np.nan):
    """cobalt's SMD denominator per column: the SD within level ``group`` (a code of ``codes``), or with ``group``
    None the root mean of the within-level variances of levels 0..n_groups-1 (the ATE's pooled SD, for a
    multi-category treatment too); :func:`reliability_var` on scaled columns, in the units of ``X``.

    A level where one unit carries all the weight has an undefined variance, counted as ``undefined``.

    Examples
    --------
    >>> import numpy as np
    >>> X, codes = np.array([[1.0], [3.0], [0.0], [4.0]]), np.array([0, 0, 1, 1])
    >>> group_sd(X, np.ones(4), codes, group=1), group_sd(X, np.ones(4), codes)  # variances 8 and 2: mean 5
    (array([2.82842712]), array([2.23606798]))
    """
    Xs, s = scale_columns(X)

    def var(g):
        return np.nan_to_num(reliability_var(Xs[codes == g], w[codes == g]), nan=undefined)

    if group is None:
        return np.sqrt(sum(var(g) for g in range(n_groups)) / n_groups) * s
    return np.sqrt(var(group)) * s


def binary_gap(X):
    """Which columns take exactly two values, and for those the gap of balance_table's 0/1 coding: the other
    value minus the reference (0 when present, else the smaller value), so that a mean difference divided by the
    gap is a difference in proportions. O(n) per column, no sort.

    Examples
    --------
    >>> import numpy as np
    >>> binary_gap(np.array([[0.0, 5.0, 1.0], [-2.0, 7.0, 2.0], [0.0, 5.0, 3.0]]))
    (array([ True,  True, False]), array([-2.,  2.,  0.]))
    """
    lo, hi = X.min(axis=0), X.max(axis=0)
    two_valued = np.all((X == lo) | (X == hi), axis=0) & (hi > lo)
    reference = np.where(lo == 0.0, lo, np.where(hi == 0.0, hi, lo))
    other = np.where(reference == lo, hi, lo)
    return two_valued, np.where(two_valued, other - reference, 0.0)


def kish_ess(w):
    """Kish's effective sample size :math:`(\\sum w)^2 / \\sum w^2`, on weights scaled to a largest value in [1, 2).

    Examples
    --------
    >>> import numpy as np
    >>> round(kish_ess(np.array([1e200, 1e200, 2e200, 2e200])), 12)
    3.6
    """
    w = w / pow2_scale(w, axis=None)
    return float(w.sum() ** 2 / np.sum(w**2))
