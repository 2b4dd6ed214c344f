"""Kernels of the exponential-tilting duals (entropy balancing, inverse probability tilting, CBPS).

* :func:`standardize_rows` gathers one group's standardised covariates once, transposed (one column per unit);
* :func:`tilt_pass` evaluates, in one pass over them, the three sums Newton's method needs for
  F(beta) = sum_i c_i exp(s_i z_i' beta) - beta' target: sum_i t_i, sum_i s_i t_i z_i and sum_i t_i z_i z_i', with
  t_i = c_i exp(s_i z_i' beta) and z_i = (1, (x_i - center) / scale).
* :func:`group_moments` gives, in one pass, per treatment group the weighted totals, means, sums of squared
  deviations (West's incremental algorithm, stable), minima and maxima of every column.

Conventions: float64 C-contiguous inputs; functions return new arrays and never raise (an overflowing exp gives
inf, which the caller's line search rejects). Units are processed in fixed chunks whose partial sums are added in
chunk order.
"""

import math

import numpy as np
from numba import njit

_CHUNK = 4096  # units per chunk of partial sums


@njit(cache=True)
def standardize_rows(X, rows, center, inv_scale):
    """The block ((X[rows] - center) * inv_scale) transposed, shape (p, len(rows)), in one pass: each later
    :func:`tilt_pass` then reads contiguous columns."""
    p = X.shape[1]
    m = rows.shape[0]
    zt = np.empty((p, m))
    for r in range(m):
        i = rows[r]
        for j in range(p):
            zt[j, r] = (X[i, j] - center[j]) * inv_scale[j]
    return zt


@njit(cache=True, fastmath={"reassoc", "contract"})
def _tilt_chunk(zt, start, stop, c, s, beta, want_hess, grad, hess):
    """Add units ``start:stop`` (columns of ``zt``) to ``grad`` and (if ``want_hess``) the lower triangle of
    ``hess``; return their sum of t. Every inner loop runs over contiguous memory and vectorises (reassociation
    only: an overflow to inf is kept)."""
    p = zt.shape[0]
    k = p + 1
    m = stop - start
    eta = np.full(m, beta[0])
    for j in range(p):
        bj = beta[j + 1]
        for r in range(m):
            eta[r] += bj * zt[j, start + r]
    t = np.empty(m)
    u = np.empty(m)
    total = 0.0
    for r in range(m):
        tr = c[start + r] * math.exp(s[start + r] * eta[r])
        t[r] = tr
        u[r] = s[start + r] * tr
        total += tr
    acc = 0.0
    for r in range(m):
        acc += u[r]
    grad[0] += acc
    for a in range(p):
        acc = 0.0
        for r in range(m):
            acc += u[r] * zt[a, start + r]
        grad[a + 1] += acc
    if want_hess:
        hess[0, 0] += total
        w = np.empty(m)
        for a in range(p):
            acc = 0.0
            for r in range(m):
                w[r] = t[r] * zt[a, start + r]
                acc += w[r]
            hess[a + 1, 0] += acc
            for b in range(a + 1):
                acc = 0.0
                for r in range(m):
                    acc += w[r] * zt[b, start + r]
                hess[a + 1, b + 1] += acc
    return total


@njit(cache=True)
def _combine(part_total, part_grad, part_hess):
    """Add the chunks' partial sums in chunk order and fill the upper triangle of the Hessian."""
    k = part_grad.shape[1]
    total = 0.0
    grad = np.zeros(k)
    hess = np.zeros((k, k))
    for chunk in range(part_total.shape[0]):
        total += part_total[chunk]
        grad += part_grad[chunk]
        hess += part_hess[chunk]
    for a in range(k):
        for b in range(a):
            hess[b, a] = hess[a, b]
    return total, grad, hess


@njit(cache=True)
def tilt_pass(zt, c, s, beta, want_hess=True):
    """Return ``(total, grad, hess)``: sum t, sum s t z (shape (k,)) and sum t z z' (shape (k, k)), k = p + 1,
    with z = (1, column of ``zt``) (see :func:`standardize_rows`); ``c`` and ``s`` are per column.

    With ``want_hess=False`` the Hessian is skipped (returned as zeros). One thread: on the shared machines this
    runs on, a parallel version was slower in wall time as well as in CPU time (threads wait for cores), and the
    chunked partial sums (added in order) keep the rounding error of long sums small.
    """
    m, k = zt.shape[1], zt.shape[0] + 1
    n_chunks = (m + _CHUNK - 1) // _CHUNK
    part_total = np.zeros(n_chunks)
    part_grad = np.zeros((n_chunks, k))
    part_hess = np.zeros((n_chunks, k, k))
    for chunk in range(n_chunks):
        part_total[chunk] = _tilt_chunk(zt, chunk * _CHUNK, min(m, (chunk + 1) * _CHUNK), c, s, beta, want_hess,
                                        part_grad[chunk], part_hess[chunk])
    return _combine(part_total, part_grad, part_hess)


@njit(cache=True)
def tilt_pass_rows(X, rows, center, inv_scale, c, s, beta, want_hess=True):
    """:func:`tilt_pass` of ``standardize_rows(X, rows, center, inv_scale)`` without storing it: each chunk of
    units is standardised into a small buffer and summed there (one read of ``X``, any memory layout; ``c`` and
    ``s`` per row of ``X``). For data read once per evaluation (the blocks of dask input), where gathering a
    standardised copy first would cost more than the sums."""
    p = X.shape[1]
    m, k = rows.shape[0], p + 1
    n_chunks = (m + _CHUNK - 1) // _CHUNK
    part_total = np.zeros(n_chunks)
    part_grad = np.zeros((n_chunks, k))
    part_hess = np.zeros((n_chunks, k, k))
    zt = np.empty((p, _CHUNK))
    c_chunk = np.empty(_CHUNK)
    s_chunk = np.empty(_CHUNK)
    for chunk in range(n_chunks):
        start = chunk * _CHUNK
        size = min(m, start + _CHUNK) - start
        for j in range(p):
            for r in range(size):
                zt[j, r] = (X[rows[start + r], j] - center[j]) * inv_scale[j]
        for r in range(size):
            c_chunk[r] = c[rows[start + r]]
            s_chunk[r] = s[rows[start + r]]
        part_total[chunk] = _tilt_chunk(zt, 0, size, c_chunk, s_chunk, beta, want_hess, part_grad[chunk],
                                        part_hess[chunk])
    return _combine(part_total, part_grad, part_hess)


@njit(cache=True)
def group_moments(X, group, weight, n_groups=2):
    """Per group g in 0..n_groups-1, over rows with ``weight > 0``: weight total, squared-weight total, weighted
    means, weighted sums of squared deviations, minima and maxima of each column (shapes (G,), (G,), then
    (G, p))."""
    n, p = X.shape
    wsum = np.zeros(n_groups)
    w2sum = np.zeros(n_groups)
    mean = np.zeros((n_groups, p))
    m2 = np.zeros((n_groups, p))
    lo = np.full((n_groups, p), np.inf)
    hi = np.full((n_groups, p), -np.inf)
    for i in range(n):
        w = weight[i]
        if w <= 0.0:
            continue
        g = group[i]
        wsum[g] += w
        w2sum[g] += w * w
        frac = w / wsum[g]
        for j in range(p):
            x = X[i, j]
            delta = x - mean[g, j]
            mean[g, j] += frac * delta
            m2[g, j] += w * delta * (x - mean[g, j])
            if x < lo[g, j]:
                lo[g, j] = x
            if x > hi[g, j]:
                hi[g, j] = x
    return wsum, w2sum, mean, m2, lo, hi
