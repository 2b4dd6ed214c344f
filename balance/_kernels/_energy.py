"""Kernels of energy balancing: products with a Euclidean distance matrix that is never stored in full.

Energy balancing (Huling & Mak 2024) needs ``D @ V`` for the n x n matrix of Euclidean distances between units
(after scaling the covariates) and a few vectors V, once per solver iteration. Two ways are offered:

* :func:`distance_matvec` recomputes every distance in each call (O(m n p) time, O(m + n) memory);
* :func:`distance_block32` stores the block once in float32 (4 bytes per pair) and :func:`block_matvec` multiplies
  it with float64 accumulation: many times faster per product when the block fits in memory;
* :func:`symmetric_matvec` multiplies a symmetric float32 block of which only the upper triangle is stored (built
  with ``distance_block32(..., upper=True)``; the continuous problem's matrix), each entry read once;
* :func:`distance_quadform` gives ``V' D V`` among one point set visiting each pair once (half the work of a product),
  for the exact energy distance when no gradient is needed.

Distances come from tiles of the Gram matrix: ||a - b||^2 = |a|^2 + |b|^2 - 2 a'b with a'b from BLAS (a matrix
product of a tile of points with another), then a numba pass takes square roots and sums. This runs about four
times faster than differencing coordinates pair by pair (measured: 0.6e9 against 0.15e9 pairs a second on one
core at p = 10), since BLAS keeps coordinates in registers. It loses accuracy only for near pairs, where the two
norms cancel: a pair whose squared distance is below ``NEAR`` times |a|^2 + |b|^2 has its whole row of the tile
recomputed from coordinates in float64. Every other distance has relative error below about (p + 2) eps / NEAR,
i.e. 1e-11 at p = 10 (1e-15 for typical pairs).

Conventions: point sets and vectors are passed transposed and C-contiguous, ``At`` of shape (p, m), ``Vt`` of
shape (k, n), so that the inner loops run over contiguous memory and vectorise; results are new float64 arrays.
Tiles are visited in a fixed order and each output entry is summed in the same order whatever the number of
threads, so results do not depend on it.
"""

import math

import numpy as np
from numba import njit

from .._threads import blas_controller

NEAR = 1e-4  # relative squared distance below which a tile row is recomputed from coordinates
_TILE_ROWS, _TILE_COLS = 256, 512  # a tile's Gram block (1 MB) stays in the L2 cache for the numba pass
_VEC = dict(cache=True, fastmath=True, error_model="numpy")  # no ZeroDivision branch: the loops vectorise


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


@njit(**_VEC)
def _near_count(G, sqa, sqb, i):
    """Pairs of tile row i whose squared distance is below NEAR times the sum of the squared norms."""
    count = 0
    for j in range(G.shape[1]):
        total = sqa[i] + sqb[j]
        count += (total - 2.0 * G[i, j]) < NEAR * total
    return count


@njit(**_VEC)
def _tile_row(G, sqa, sqb, At, Bt, i, d):
    """Distances of tile row i into ``d``: from the Gram block, or from coordinates when a pair is near."""
    n = G.shape[1]
    if _near_count(G, sqa, sqb, i) == 0:
        for j in range(n):
            d[j] = math.sqrt(max(sqa[i] + sqb[j] - 2.0 * G[i, j], 0.0))
        return
    a = np.empty(At.shape[0])
    for c in range(At.shape[0]):
        a[c] = At[c, i]
    _row_block(Bt, a, 0, n, d)
    for j in range(n):
        d[j] = math.sqrt(d[j])


@njit(nogil=True, **_VEC)
def _tile_matvec(G, sqa, sqb, At, Bt, Vt, out):
    """out[i] += sum_j ||A_i - B_j|| Vt[:, j] over one tile (At, Bt: the tile's points; G = At' Bt)."""
    m, n = G.shape
    d = np.empty(n)
    for i in range(m):
        _tile_row(G, sqa, sqb, At, Bt, i, d)
        for col in range(Vt.shape[0]):
            s = 0.0
            for j in range(n):
                s += d[j] * Vt[col, j]
            out[i, col] += s


@njit(nogil=True, **_VEC)
def _tile_block32(G, sqa, sqb, At, Bt, out):
    """out[i, j] = ||A_i - B_j|| in float32 over one tile."""
    m, n = G.shape
    d = np.empty(n)
    for i in range(m):
        _tile_row(G, sqa, sqb, At, Bt, i, d)
        for j in range(n):
            out[i, j] = d[j]


def _tiles(size, step):
    return [(lo, min(lo + step, size)) for lo in range(0, size, step)]


def _squared_norms(Pt):
    return np.einsum("ij,ij->j", Pt, Pt)


def _for_each(task, items):
    """Run ``task`` on every item, on numba's number of threads (each item writes its own rows of the output).

    Tasks are whole stripes of tiles, handed to a thread pool: a thread that the system deschedules delays only
    its own stripes, instead of every tile's barrier as in a parallel loop per tile. BLAS runs single-threaded
    inside (the tiles are small and the pool already uses the cores).
    """
    import numba

    threads = min(numba.get_num_threads(), len(items))
    with blas_controller().limit(limits=1, user_api="blas"):
        if threads <= 1:
            return [task(item) for item in items]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(task, items))


def distance_matvec(At, Bt, Vt):
    """Return ``D @ Vt.T`` with ``D[i, j] = ||A_i - B_j||``, computing the distances tile by tile.

    Parameters
    ----------
    At : ndarray of shape (p, m)
    Bt : ndarray of shape (p, n)
    Vt : ndarray of shape (k, n)

    Returns
    -------
    ndarray of shape (m, k)
    """
    sqa, sqb = _squared_norms(At), _squared_norms(Bt)

    def visit(G, i0, i1, j0, j1, A, B, V, out):
        _tile_matvec(G, sqa[i0:i1], sqb[j0:j1], A, B, V, out)

    return _tiled_product(At, Bt, Vt, visit)


def _tiled_product(At, Bt, Vt, visit):
    """An (m, k) product over the tiles of the pairs of ``At`` and ``Bt`` (as :func:`distance_matvec`):
    ``visit(G, i0, i1, j0, j1, A, B, V, out)`` adds tile (rows i0:i1, columns j0:j1) to ``out`` (its rows of the
    result), with G = A'B the tile's Gram block and V the tile's columns of ``Vt``."""
    out = np.zeros((At.shape[1], Vt.shape[0]))
    col_tiles = [(j0, j1, np.ascontiguousarray(Bt[:, j0:j1]), np.ascontiguousarray(Vt[:, j0:j1]))
                 for j0, j1 in _tiles(Bt.shape[1], _TILE_COLS)]

    def stripe(rows):
        i0, i1 = rows
        A = np.ascontiguousarray(At[:, i0:i1])
        for j0, j1, B, V in col_tiles:
            visit(A.T @ B, i0, i1, j0, j1, A, B, V, out[i0:i1])

    _for_each(stripe, _tiles(At.shape[1], _TILE_ROWS))
    return out


def distance_block32(At, Bt, *, upper=False):
    """Return the (m, n) matrix of distances ``||A_i - B_j||`` in float32 (computed in float64).

    ``upper`` (for ``At is Bt``, a symmetric block): fill only the tiles that meet the upper triangle j >= i and
    leave the others unset (about half the work; the array is allocated in full). Read such a block with
    :func:`symmetric_matvec` only.
    """
    sqa, sqb = _squared_norms(At), _squared_norms(Bt)
    out = np.empty((At.shape[1], Bt.shape[1]), dtype=np.float32)
    col_tiles = [(j0, j1, np.ascontiguousarray(Bt[:, j0:j1])) for j0, j1 in _tiles(Bt.shape[1], _TILE_COLS)]

    def stripe(rows):
        i0, i1 = rows
        A = np.ascontiguousarray(At[:, i0:i1])
        for j0, j1, B in col_tiles:
            if upper and j1 <= i0:  # the tile lies below the diagonal
                continue
            _tile_block32(A.T @ B, sqa[i0:i1], sqb[j0:j1], A, B, out[i0:i1, j0:j1])

    _for_each(stripe, _tiles(At.shape[1], _TILE_ROWS))
    return out


@njit(nogil=True, **_VEC)
def _block_rows(block, Vt, out, i0, i1):
    for i in range(i0, i1):
        for col in range(Vt.shape[0]):
            s = 0.0
            for j in range(block.shape[1]):
                s += block[i, j] * Vt[col, j]
            out[i, col] = s


def block_matvec(block, Vt):
    """Return ``block @ Vt.T`` for a float32 (m, n) block and float64 (k, n) Vt, accumulating in float64."""
    out = np.zeros((block.shape[0], Vt.shape[0]))
    _for_each(lambda rows: _block_rows(block, Vt, out, *rows), _tiles(block.shape[0], _TILE_ROWS))
    return out


@njit(**_VEC)
def _corner(block, v, i, r):
    """sum_{c < 4} B[i + r, i + c] v[i + c] for a symmetric B read from its upper triangle."""
    s = 0.0
    for c in range(4):
        lo, hi = min(r, c), max(r, c)
        s += block[i + lo, i + hi] * v[i + c]
    return s


@njit(nogil=True, **_VEC)
def _upper_rows(block, v, out, col, i0, i1):
    """Rows i0..i1 of a symmetric product B v read from the upper triangle only: out[i] = sum_{j >= i} B_ij v_j
    (with B_ij = B_ji inside each 4 x 4 diagonal corner), and col[j - i0] += B_ij v_i for the j right of the
    corner (what row i contributes to the rows below it). Rows go four at a time, so that each pass over the
    columns updates ``col`` once for four entries read: the loop is bound by reading the block, as a plain
    product is, but reads half of it."""
    n = block.shape[1]
    i = i0
    while i + 4 <= i1:
        r0, r1, r2, r3 = block[i], block[i + 1], block[i + 2], block[i + 3]
        v0, v1, v2, v3 = v[i], v[i + 1], v[i + 2], v[i + 3]
        s0, s1, s2, s3 = _corner(block, v, i, 0), _corner(block, v, i, 1), _corner(block, v, i, 2), \
            _corner(block, v, i, 3)
        for j in range(i + 4, n):
            a0, a1, a2, a3 = np.float64(r0[j]), np.float64(r1[j]), np.float64(r2[j]), np.float64(r3[j])
            vj = v[j]
            s0 += a0 * vj
            s1 += a1 * vj
            s2 += a2 * vj
            s3 += a3 * vj
            col[j - i0] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
        out[i], out[i + 1], out[i + 2], out[i + 3] = s0, s1, s2, s3
        i += 4
    for i in range(i, i1):  # the last rows of the block, one at a time
        row, vi = block[i], v[i]
        s = row[i] * vi
        for j in range(i + 1, n):
            s += row[j] * v[j]
            col[j - i0] += row[j] * vi
        out[i] = s


def symmetric_matvec(block, Vt):
    """Return ``B @ Vt.T`` for a symmetric float32 (n, n) block B of which only the upper triangle (j >= i) is
    read, with float64 accumulation: each stored entry is read once for two products, half the memory traffic of
    :func:`block_matvec` (measured: 0.03 s against 0.065 s of CPU per product at n = 10,000).

    Each stripe of rows adds its column part (the lower triangle's contribution) to a buffer of its own; the
    buffers are added in stripe order, so the result does not depend on the number of threads.
    """
    n, k = block.shape[0], Vt.shape[0]
    out = np.empty((k, n))

    def stripe(rows):
        cols = np.zeros((k, n - rows[0]))
        for c in range(k):
            _upper_rows(block, Vt[c], out[c], cols[c], *rows)
        return cols

    stripes = _tiles(n, _TILE_ROWS)
    for (i0, _), cols in zip(stripes, _for_each(stripe, stripes)):
        out[:, i0:] += cols
    return np.ascontiguousarray(out.T)


def distance_quadform(At, Vt):
    """Return ``Vt @ D @ Vt.T`` (shape (k, k)) for the distances ``D`` among the points of ``At``.

    Each pair of tiles is visited once (D is symmetric): a tile above the diagonal contributes ``V_I' D_IJ V_J``
    and its transpose, a diagonal tile ``V_I' D_II V_I``; about half the work of a product with D. The stripes'
    parts are added in stripe order.
    """
    sq = _squared_norms(At)
    k = Vt.shape[0]
    tiles = [(lo, hi, np.ascontiguousarray(At[:, lo:hi]), np.ascontiguousarray(Vt[:, lo:hi]))
             for lo, hi in _tiles(At.shape[1], _TILE_COLS)]

    def stripe(t):
        i0, i1, A, VI = tiles[t]
        total = np.zeros((k, k))
        for j0, j1, B, VJ in tiles[t:]:
            r = np.zeros((i1 - i0, k))
            _tile_matvec(A.T @ B, sq[i0:i1], sq[j0:j1], A, B, VJ, r)
            part = VI @ r
            total += part if j0 == i0 else part + part.T
        return total

    # stripes near the top have more tiles: interleaving them over the threads balances the work
    return np.sum(_for_each(stripe, list(range(len(tiles)))), axis=0)


# ----------------------------------------------------------------------------------------------------------------
# the distance-covariance matrix of continuous-treatment energy balancing
# ----------------------------------------------------------------------------------------------------------------
@njit(**_VEC)
def _dcov_entry(dx, da, mxi, mxj, mai, maj, gx, ga, ca, cx):
    """K_ij = (dx − mx_i − mx_j + gx)(da − ma_i − ma_j + ga) − ca da − cx dx (see :func:`dcov_matvec`)."""
    return (dx - mxi - mxj + gx) * (da - mai - maj + ga) - ca * da - cx * dx


@njit(nogil=True, **_VEC)
def _tile_dcov_matvec(G, sqa, sqb, At, Bt, Vt, out, ai, aj, mxi, mxj, mai, maj, consts):
    """out[i] += sum_j K_ij Vt[:, j] over one tile, K of :func:`dcov_matvec` from the tile's distances."""
    gx, ga, ca, cx = consts[0], consts[1], consts[2], consts[3]
    m, n = G.shape
    d = np.empty(n)
    for i in range(m):
        _tile_row(G, sqa, sqb, At, Bt, i, d)
        for j in range(n):
            d[j] = _dcov_entry(d[j], abs(ai[i] - aj[j]), mxi[i], mxj[j], mai[i], maj[j], gx, ga, ca, cx)
        for col in range(Vt.shape[0]):
            s = 0.0
            for j in range(n):
                s += d[j] * Vt[col, j]
            out[i, col] += s


def dcov_matvec(Xt, a, mx, ma, consts, Vt):
    """Return ``K @ Vt.T`` for the matrix of continuous energy balancing, recomputing it tile by tile.

    ``K_ij = (D_ij − mx_i − mx_j + gx)(|a_i − a_j| − ma_i − ma_j + ga) − ca |a_i − a_j| − cx D_ij`` with
    D the Euclidean distances among the points of ``Xt`` (shape (p, n)), ``a`` the (scaled) treatment, ``mx``,
    ``ma`` the weighted row means of the two distance matrices and ``consts = (gx, ga, ca, cx)``: the
    double-centred distances' Hadamard product (the distance covariance) minus the two energy-distance terms.
    """
    sq = _squared_norms(Xt)
    consts = np.asarray(consts, dtype=np.float64)

    def visit(G, i0, i1, j0, j1, A, B, V, out):
        _tile_dcov_matvec(G, sq[i0:i1], sq[j0:j1], A, B, V, out, a[i0:i1], a[j0:j1], mx[i0:i1], mx[j0:j1],
                          ma[i0:i1], ma[j0:j1], consts)

    return _tiled_product(Xt, Xt, Vt, visit)


@njit(nogil=True, **_VEC)
def _dcov_rows(block, a, mx, ma, consts, i0, i1):
    """Turn the distances of rows i0..i1 of the upper triangle (j >= i) into entries of K."""
    gx, ga, ca, cx = consts[0], consts[1], consts[2], consts[3]
    for i in range(i0, i1):
        for j in range(i, block.shape[1]):
            block[i, j] = _dcov_entry(block[i, j], abs(a[i] - a[j]), mx[i], mx[j], ma[i], ma[j], gx, ga, ca, cx)


def dcov_block32(Xt, a, mx, ma, consts):
    """The upper triangle of the symmetric matrix K of :func:`dcov_matvec` stored in float32 (entries computed in
    float64 from the float32 distances; the lower triangle is left unset): multiply with :func:`symmetric_matvec`."""
    block = distance_block32(Xt, Xt, upper=True)
    consts = np.asarray(consts, dtype=np.float64)
    _for_each(lambda rows: _dcov_rows(block, a, mx, ma, consts, *rows), _tiles(block.shape[0], _TILE_ROWS))
    return block
