"""Kernels of energy balancing: products with a Euclidean distance matrix that is never stored in full.

Energy balancing (Huling & Mak 2024) needs ``D @ V`` for the n x n matrix of Euclidean distances between units
(after scaling the covariates) and a few vectors V, once per solver iteration. Two ways are offered:

* :func:`distance_matvec` recomputes every distance in each call (O(m n p) time, O(m + n) memory; exact in float64);
* :func:`distance_block32` stores the block once in float32 (4 bytes per pair) and :func:`block_matvec` multiplies
  it with float64 accumulation: about twenty times faster per product when the block fits in memory;
* :func:`distance_quadform` gives ``V' D V`` among one point set visiting each pair once (half the work of a product),
  for the exact energy distance when no gradient is needed.

Conventions: point sets and vectors are passed transposed and C-contiguous, ``At`` of shape (p, m), ``Vt`` of
shape (k, n), so that the inner loops run over contiguous memory and vectorise; results are new float64 arrays of
shape (m, k). Rows
are split into fixed chunks processed in parallel, and every output entry is summed in the same order whatever the
number of threads, so results do not depend on it.
"""

import math

import numpy as np
from numba import njit, prange

_ROWS = 32  # rows per parallel chunk
_COLS = 512  # columns per inner block (its squared distances stay in L1 cache)


@njit(cache=True, fastmath=True)
def _row_block(Bt, a, j0, j1, d2):
    """Write the squared distances from point ``a`` to points ``j0..j1`` of ``Bt`` into ``d2[:j1 - j0]``."""
    length = j1 - j0
    ac = a[0]
    for jj in range(length):
        t = Bt[0, j0 + jj] - ac
        d2[jj] = t * t
    for c in range(1, Bt.shape[0]):
        ac = a[c]
        for jj in range(length):
            t = Bt[c, j0 + jj] - ac
            d2[jj] += t * t


@njit(cache=True, parallel=True, fastmath=True)
def distance_matvec(At, Bt, Vt):
    """Return ``D @ Vt.T`` with ``D[i, j] = ||A_i - B_j||``, computing the distances on the fly.

    Parameters
    ----------
    At : ndarray of shape (p, m)
    Bt : ndarray of shape (p, n)
    Vt : ndarray of shape (k, n)

    Returns
    -------
    ndarray of shape (m, k)
    """
    p, m = At.shape
    n = Bt.shape[1]
    k = Vt.shape[0]
    out = np.zeros((m, k))
    n_chunks = (m + _ROWS - 1) // _ROWS
    for chunk in prange(n_chunks):
        d2 = np.empty(_COLS)
        a = np.empty(p)
        for i in range(chunk * _ROWS, min(m, (chunk + 1) * _ROWS)):
            for c in range(p):
                a[c] = At[c, i]
            for j0 in range(0, n, _COLS):
                j1 = min(n, j0 + _COLS)
                _row_block(Bt, a, j0, j1, d2)
                for col in range(k):
                    s = 0.0
                    for jj in range(j1 - j0):
                        s += math.sqrt(d2[jj]) * Vt[col, j0 + jj]
                    out[i, col] += s
    return out


@njit(cache=True, parallel=True, fastmath=True)
def distance_block32(At, Bt):
    """Return the (m, n) matrix of distances ``||A_i - B_j||`` in float32 (computed in float64)."""
    p, m = At.shape
    n = Bt.shape[1]
    out = np.empty((m, n), dtype=np.float32)
    n_chunks = (m + _ROWS - 1) // _ROWS
    for chunk in prange(n_chunks):
        d2 = np.empty(_COLS)
        a = np.empty(p)
        for i in range(chunk * _ROWS, min(m, (chunk + 1) * _ROWS)):
            for c in range(p):
                a[c] = At[c, i]
            for j0 in range(0, n, _COLS):
                j1 = min(n, j0 + _COLS)
                _row_block(Bt, a, j0, j1, d2)
                for jj in range(j1 - j0):
                    out[i, j0 + jj] = math.sqrt(d2[jj])
    return out


@njit(cache=True, parallel=True, fastmath=True)
def block_matvec(block, Vt):
    """Return ``block @ Vt.T`` for a float32 (m, n) block and float64 (k, n) Vt, accumulating in float64."""
    m, n = block.shape
    k = Vt.shape[0]
    out = np.zeros((m, k))
    n_chunks = (m + _ROWS - 1) // _ROWS
    for chunk in prange(n_chunks):
        for i in range(chunk * _ROWS, min(m, (chunk + 1) * _ROWS)):
            for col in range(k):
                s = 0.0
                for j in range(n):
                    s += block[i, j] * Vt[col, j]
                out[i, col] = s
    return out


@njit(cache=True, parallel=True, fastmath=True)
def distance_quadform(At, Vt):
    """Return ``Vt @ D @ Vt.T`` (shape (k, k)) for the distances ``D`` among the points of ``At``.

    Each pair is visited once (j > i): half the work of a product with D. Row i contributes
    ``V_ia r_ib + V_ib r_ia`` with ``r_i = sum_{j > i} D_ij V_j``. Chunk c pairs row block c with block
    ``n_blocks - 1 - c`` so that every chunk has about the same number of pairs.
    """
    p, m = At.shape
    k = Vt.shape[0]
    n_blocks = (m + _ROWS - 1) // _ROWS
    n_chunks = (n_blocks + 1) // 2
    partial = np.zeros((n_chunks, k, k))
    for chunk in prange(n_chunks):
        d2 = np.empty(_COLS)
        a = np.empty(p)
        r = np.empty(k)
        for side in range(2):
            blk = chunk if side == 0 else n_blocks - 1 - chunk
            if side == 1 and blk == chunk:
                continue
            for i in range(blk * _ROWS, min(m, (blk + 1) * _ROWS)):
                for c in range(p):
                    a[c] = At[c, i]
                r[:] = 0.0
                for j0 in range(i + 1, m, _COLS):
                    j1 = min(m, j0 + _COLS)
                    _row_block(At, a, j0, j1, d2)
                    for col in range(k):
                        s = 0.0
                        for jj in range(j1 - j0):
                            s += math.sqrt(d2[jj]) * Vt[col, j0 + jj]
                        r[col] += s
                for u in range(k):
                    for v in range(k):
                        partial[chunk, u, v] += Vt[u, i] * r[v] + Vt[v, i] * r[u]
    return partial.sum(axis=0)
