"""Kernel sums for weighting by uniform transformer (Yu & Wang, arXiv:2008.03738).

The estimator's cost is the two-sample kernel sum ``S[i, :] = sum_j K_h(A_i - B_j) W[j, :]`` over all pairs, with a
product kernel. It runs as one parallel loop over chunks of rows of ``A`` (each thread owns its output rows, so no
reduction is needed) in O(n_A + n_B) memory. The inner loops over a block of ``B`` are written coordinate by
coordinate on contiguous rows of ``B`` transposed, so that the compiler vectorises them; this is several times
faster than evaluating one pair at a time. Kernels are coded by integers; the Gaussian family
carries the even polynomial of the higher-order kernels as coefficients ``coef`` of u^0, u^2, u^4, ...
"""

import math

import numpy as np
from numba import njit, prange

# Kernel codes (one coordinate, bandwidth divided out; the estimator module maps names to them):
# 0 gaussian (times the even polynomial ``coef`` for higher orders), 1 epanechnikov, 2 uniform, 3 triangular,
# 4 biweight, 5 triweight, 6 tricube, 7 cosine (these vanish outside [-1, 1]), 8 silverman.
_LOG_INV_SQRT_2PI = -0.5 * math.log(2.0 * math.pi)
_BLOCK = 2048  # columns of B per pass: the scratch rows stay in cache


# Constants of the vectorisable exp below (Cody-Waite range reduction, as in fdlibm's exp).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_SHIFTER = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer that sits in the low mantissa bits
_SHIFTER_BITS = 0x4338000000000000


@njit(cache=True)
def scale_by_exp_neg_half(s2, val, y_buf, e_buf):
    """Multiply ``val`` by exp(-s2 / 2) elementwise (s2 >= 0), to within 3e-16 relative error.

    ``math.exp`` is a library call that stops the compiler from vectorising the loop, and it dominated the kernel sum;
    this version (x = k ln2 + r, |r| <= ln2 / 2, a degree-13 Taylor polynomial for e^r, 2^k assembled from its bits)
    is plain arithmetic and vectorises (about 3x faster). Results below exp(-708) ~ 3e-308 are set to zero.
    ``y_buf`` (float64) and ``e_buf`` (int64) are scratch arrays of the same length.
    """
    n = s2.shape[0]
    y_bits = y_buf.view(np.int64)
    e_float = e_buf.view(np.float64)
    for j in range(n):
        x = max(-0.5 * s2[j], -708.0)
        y = x * _INV_LN2 + _SHIFTER
        y_buf[j] = y
        k = y - _SHIFTER
        r = (x - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        val[j] *= p if s2[j] < 1416.0 else 0.0
    for j in range(n):
        e_buf[j] = (y_bits[j] - _SHIFTER_BITS + 1023) << 52  # the bits of the double 2^k
    for j in range(n):
        val[j] *= e_float[j]


@njit(cache=True)
def _coordinate_factor(code, coef, ak, row, val, s2):
    """Multiply ``val`` by the one-coordinate kernel at u = ak - row (Gaussian: add u^2 to ``s2``, exponentiated
    later, and multiply by the even polynomial of the higher orders). One loop per kernel, so that each vectorises."""
    n = val.shape[0]
    if code == 0 and coef.shape[0] == 1:
        for j in range(n):
            u = ak - row[j]
            s2[j] += u * u
    elif code == 0:
        # higher orders: ``coef`` is padded to five terms (order 10), so the Horner chain has a fixed length, is
        # unrolled and the loop vectorises
        c0, c1, c2, c3, c4 = coef[0], coef[1], coef[2], coef[3], coef[4]
        for j in range(n):
            u = ak - row[j]
            u2 = u * u
            s2[j] += u2
            val[j] *= (((c4 * u2 + c3) * u2 + c2) * u2 + c1) * u2 + c0
    elif code == 1:
        for j in range(n):
            u = ak - row[j]
            val[j] *= 0.75 * max(0.0, 1.0 - u * u)
    elif code == 2:
        for j in range(n):
            val[j] *= 0.5 if abs(ak - row[j]) <= 1.0 else 0.0
    elif code == 3:
        for j in range(n):
            val[j] *= max(0.0, 1.0 - abs(ak - row[j]))
    elif code == 4:
        for j in range(n):
            u = ak - row[j]
            val[j] *= 15.0 / 16.0 * max(0.0, 1.0 - u * u) ** 2
    elif code == 5:
        for j in range(n):
            u = ak - row[j]
            val[j] *= 35.0 / 32.0 * max(0.0, 1.0 - u * u) ** 3
    elif code == 6:
        for j in range(n):
            val[j] *= 70.0 / 81.0 * max(0.0, 1.0 - abs(ak - row[j]) ** 3) ** 3
    elif code == 7:
        for j in range(n):
            u = ak - row[j]
            val[j] *= math.pi / 4.0 * math.cos(math.pi / 2.0 * u) if abs(u) <= 1.0 else 0.0
    else:
        for j in range(n):
            au = abs(ak - row[j]) / math.sqrt(2.0)
            val[j] *= 0.5 * math.exp(-au) * math.sin(au + math.pi / 4.0)


@njit(parallel=True, cache=True)
def kernel_sums(A, Bt, W, h, code, coef, n_chunks):
    """Return ``S`` of shape (n_A, m) with ``S[i] = sum_j K_h(A[i] - B[j]) W[j]`` (product kernel, K_h = K(./h)/h^d).

    ``A`` is (n_A, d) and ``Bt`` = B transposed, (d, n_B); ``W`` is (n_B, m); all C-contiguous float64. ``code`` is
    a kernel code (see above) and ``coef`` the even-polynomial coefficients of the Gaussian family: ``[1.0]`` for
    order 2, else padded with zeros to five terms. ``n_chunks`` (>= 1) splits the rows of ``A`` into that many
    parallel tasks. Exact up to the order of floating-point summation (no pair is skipped unless its kernel value
    is zero).
    """
    n_a, d = A.shape
    n_b = Bt.shape[1]
    m = W.shape[1]
    out = np.zeros((n_a, m))
    inv_h = 1.0 / h
    As = A * inv_h
    Bs = Bt * inv_h
    log_scale = d * (_LOG_INV_SQRT_2PI if code == 0 else 0.0) - d * math.log(h)
    n_chunks = max(1, min(n_a, n_chunks))
    for c in prange(n_chunks):
        val = np.empty(_BLOCK)
        s2 = np.empty(_BLOCK)
        y_buf = np.empty(_BLOCK)
        e_buf = np.empty(_BLOCK, dtype=np.int64)
        for start in range(0, n_b, _BLOCK):
            stop = min(start + _BLOCK, n_b)
            width = stop - start
            for i in range(c * n_a // n_chunks, (c + 1) * n_a // n_chunks):
                v = val[:width]
                v[:] = 1.0
                s2[:width] = 0.0
                for k in range(d):
                    _coordinate_factor(code, coef, As[i, k], Bs[k, start:stop], v, s2[:width])
                if code == 0:
                    scale_by_exp_neg_half(s2[:width], v, y_buf[:width], e_buf[:width])
                for col in range(m):
                    acc = 0.0
                    for j in range(width):
                        acc += v[j] * W[start + j, col]
                    out[i, col] += acc
    scale = math.exp(log_scale)
    for i in range(n_a):
        for col in range(m):
            out[i, col] *= scale
    return out
