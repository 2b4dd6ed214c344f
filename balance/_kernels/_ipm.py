"""Kernels of covariate balancing by integral probability metric (CBIPM; Kong et al., ICML 2023, arXiv:2305.13715).

One balancing problem reweights the points of one arm (``Xc``, base weights ``base``) towards a target sample
(``Xt``, probabilities ``pt``). The weights are a softmax: one logit per unit ("nonpara", model code 0) or
``Xc @ beta`` ("linear", code 1), optionally mixed with the base distribution, ``w = alpha * base / sum(base) +
(1 - alpha) * s`` (the ATE form of the linear model). Every loop below is the full-batch alternating scheme of the
authors' code with analytic gradients and PyTorch's Adam:

* MMD: Adam descent on the closed-form Gaussian-kernel MMD^2 (:func:`mmd_epochs`);
* SIPM: K sigmoid discriminators ascend the sum of their squared mean gaps, the weights descend the largest one
  (:func:`sipm_epochs`);
* WASS: a one-hidden-layer LeakyReLU network ascends D^2 minus a gradient penalty, with weight clipping; the weights
  descend D^2 (:func:`wass_epochs`).

Conventions: arrays in are float64 and C-contiguous; the ``*_epochs`` loops advance the state arrays they are given
in place over epochs ``[start, stop)`` (so a caller can run them in blocks, e.g. to show progress) and write the
objective of each epoch into ``hist``. Randomness (discriminator initialisation, gradient-penalty draws) is drawn by
the caller and passed in as arrays. The points are stored transposed, (d4, n) with d4 = d padded to a multiple of 4
(:func:`padded_transpose`), so that the loops over units are contiguous and vectorise. Point sums are formed over
fixed-size chunks of units and added in chunk order, one sigmoid or hidden unit on one thread: SIPM runs its
sigmoids' whole epochs in parallel (each sigmoid's ascent is independent of the others within an epoch), WASS its
hidden units pass by pass (they are coupled through the critic's output). Either way results do not depend on the
number of threads.
"""

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8  # PyTorch Adam defaults, as in the authors' code
MODEL_CODES = {"nonpara": 0, "linear": 1}
_CHUNK_MIN, _CHUNK_MAX_COUNT = 512, 64
# parallel loops over sigmoids / hidden units run over this many blocks of them (scratch arrays allocated per block)
_BLOCKS = 16
# the pass kernels: no ZeroDivisionError branch (it blocks vectorisation) and reassociation allowed
_VEC = dict(fastmath=True, error_model="numpy")
_LOG2E, _LN2 = 1.4426950408889634, 0.6931471805599453


# ----------------------------------------------------------------------------------------------------------------
# optimiser and weight model
# ----------------------------------------------------------------------------------------------------------------
@njit(cache=True)
def adam_step(p, grad, m, v, t, lr):
    """One Adam descent step on ``p`` in place (PyTorch's update; ``t`` is the 1-based step count)."""
    bc1 = 1.0 - BETA1 ** t
    root_bc2 = math.sqrt(1.0 - BETA2 ** t)
    p1, g1, m1, v1 = p.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1)
    for i in range(p1.size):
        m1[i] = BETA1 * m1[i] + (1.0 - BETA1) * g1[i]
        v1[i] = BETA2 * v1[i] + (1.0 - BETA2) * g1[i] * g1[i]
        p1[i] -= (lr / bc1) * m1[i] / (math.sqrt(v1[i]) / root_bc2 + ADAM_EPS)


@njit(cache=True)
def softmax_weights(params, model, Xc, base, alpha, w, s):
    """Weights of the arm from the weight parameters: ``s`` = base-weighted softmax, ``w`` = the mixture.

    s_j = base_j exp(eta_j) / sum_l base_l exp(eta_l) with eta = params (nonpara) or Xc @ params (linear);
    w = alpha base / sum(base) + (1 - alpha) s. Both written in place.
    """
    n = base.size
    for j in range(n):
        if model == 0:
            s[j] = params[j]
        else:
            acc = 0.0
            for l in range(Xc.shape[1]):
                acc += Xc[j, l] * params[l]
            s[j] = acc
    top = s.max()
    total = 0.0
    base_total = 0.0
    for j in range(n):
        s[j] = base[j] * math.exp(s[j] - top)
        total += s[j]
        base_total += base[j]
    for j in range(n):
        s[j] /= total
        w[j] = alpha * base[j] / base_total + (1.0 - alpha) * s[j]


@njit(cache=True)
def weight_param_grad(g, s, model, Xc, base, alpha, out):
    """Gradient of the objective with respect to the weight parameters, from g = dL/dw (into ``out``).

    Linear: (1 - alpha) Xc' [s * (g - s.g)]. Nonpara: s * (g - s.g) / base, i.e. the logit gradient per unit of
    base weight, so that a unit with base weight k moves exactly as k repeated copies of it would under Adam.
    """
    sg = 0.0
    for j in range(s.size):
        sg += s[j] * g[j]
    if model == 0:
        for j in range(s.size):
            out[j] = (1.0 - alpha) * s[j] * (g[j] - sg) / base[j]
    else:
        out[:] = 0.0
        for j in range(s.size):
            r = (1.0 - alpha) * s[j] * (g[j] - sg)
            for l in range(Xc.shape[1]):
                out[l] += r * Xc[j, l]


@njit(cache=True)
def _weight_step(g, params, m, v, t, lr, model, Xc, base, alpha, w, s, grad):
    weight_param_grad(g, s, model, Xc, base, alpha, grad)
    adam_step(params, grad, m, v, t, lr)


# ----------------------------------------------------------------------------------------------------------------
# MMD
# ----------------------------------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _gaussian_kernel(A, i, B, j, inv_two_gamma2):
    """exp(-|A_i - B_j|^2 / (2 gamma^2)) averaged over the bandwidths."""
    d2 = 0.0
    for l in range(A.shape[1]):
        diff = A[i, l] - B[j, l]
        d2 += diff * diff
    acc = 0.0
    for q in range(inv_two_gamma2.size):
        acc += math.exp(-d2 * inv_two_gamma2[q])
    return acc / inv_two_gamma2.size


@njit(cache=True, parallel=True)
def gaussian_gram(A, B, inv_two_gamma2):
    """Kernel matrix of the Gaussian kernel averaged over the bandwidths, shape (len(A), len(B))."""
    out = np.empty((A.shape[0], B.shape[0]))
    for i in prange(A.shape[0]):
        for j in range(B.shape[0]):
            out[i, j] = _gaussian_kernel(A, i, B, j, inv_two_gamma2)
    return out


@njit(cache=True, parallel=True)
def gaussian_gram_dot(A, B, v, inv_two_gamma2):
    """K(A, B) @ v without storing the kernel matrix (O(len(A) + len(B)) memory)."""
    out = np.empty(A.shape[0])
    for i in prange(A.shape[0]):
        total = 0.0
        for j in range(B.shape[0]):
            total += v[j] * _gaussian_kernel(A, i, B, j, inv_two_gamma2)
        out[i] = total
    return out


@njit(cache=True)
def mmd_objective_grad(K, b, c, w):
    """MMD^2(w) = w'Kw - 2 b'w + c and its gradient 2 (Kw - b)."""
    Kw = np.dot(K, w)
    value = np.dot(w, Kw) - 2.0 * np.dot(b, w) + c
    return value, 2.0 * (Kw - b)


@njit(cache=True)
def mmd_epochs(K, b, c, params, m, v, model, Xc, base, alpha, lr, start, stop, hist, w, s):
    """Adam epochs ``[start, stop)`` on the softmax parameters of the closed-form MMD^2; hist[e] = MMD^2 entering e."""
    grad = np.empty(params.size)
    for e in range(start, stop):
        softmax_weights(params, model, Xc, base, alpha, w, s)
        value, g = mmd_objective_grad(K, b, c, w)
        hist[e] = value
        _weight_step(g, params, m, v, e + 1, lr, model, Xc, base, alpha, w, s, grad)
    softmax_weights(params, model, Xc, base, alpha, w, s)


# ----------------------------------------------------------------------------------------------------------------
# chunked point sums (shared by SIPM and WASS)
# ----------------------------------------------------------------------------------------------------------------
def chunk_bounds(n_target, n_arm):
    """Chunks of at most ~n/64 (at least 512) units that never straddle the target/arm split.

    Returns (lo, hi, seg) int64 arrays; seg is 0 for target chunks, 1 for arm chunks. Plain Python: called once.
    """
    bounds = []
    for seg, (start, size) in enumerate(((0, n_target), (n_target, n_arm))):
        step = max(_CHUNK_MIN, -(-size // _CHUNK_MAX_COUNT))
        bounds += [(start + lo, start + min(lo + step, size), seg) for lo in range(0, size, step)]
    return tuple(np.array(col, dtype=np.int64) for col in zip(*bounds))


def padded_transpose(X):
    """``X`` (n, d) as a C-contiguous (d4, n) array with d4 = d rounded up to a multiple of 4, extra rows zero.

    The passes read the covariates four at a time in their loops over units, so that the four sums stay in
    registers. Padding changes no result: a zero covariate adds exactly 0 to every affine map, and its coefficients
    get exactly zero gradients, so Adam (and clipping) keep them at the 0 they start from.
    """
    out = np.zeros((-(-X.shape[1] // 4) * 4, X.shape[0]))
    out[:X.shape[1]] = X.T
    return out


def padded_rows(P, d4):
    """Coefficients ``P`` (d, m), one column per discriminator or hidden unit, as rows of length d4 (zero-padded)."""
    out = np.zeros((P.shape[1], d4))
    out[:, :P.shape[0]] = P.T
    return out


@njit(cache=True, inline="always", **_VEC)
def _affine(XT, lo, m, p, b, z, first=0):
    """z[i] = b + sum_l p_l x_(lo + i), l for the m units from ``lo`` (``XT`` (d4, n), ``p`` of length d4), over the
    covariates from ``first`` (0 or 4) on: with 4, a caller adds the first four in its own loop.

    Like every loop over units here, it indexes row slices from 0: an index ``lo + i`` could be negative as far as
    numba knows, and the wraparound it then adds to each access keeps LLVM from vectorising (3-5x slower).
    """
    hi = lo + m
    z[:m] = b
    for q in range(first, XT.shape[0], 4):
        x0, x1, x2, x3 = XT[q, lo:hi], XT[q + 1, lo:hi], XT[q + 2, lo:hi], XT[q + 3, lo:hi]
        p0, p1, p2, p3 = p[q], p[q + 1], p[q + 2], p[q + 3]
        for i in range(m):
            z[i] += p0 * x0[i] + p1 * x1[i] + p2 * x2[i] + p3 * x3[i]


@njit(cache=True, inline="always", **_VEC)
def _covariate_sums(XT, lo, m, g, out, first):
    """out[2 + l] = sum_i g[i] x_(lo + i), l for the covariates from ``first`` (a multiple of 4) on."""
    hi = lo + m
    for q in range(first, XT.shape[0], 4):
        x0, x1, x2, x3 = XT[q, lo:hi], XT[q + 1, lo:hi], XT[q + 2, lo:hi], XT[q + 3, lo:hi]
        s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
        for i in range(m):
            s0 += g[i] * x0[i]
            s1 += g[i] * x1[i]
            s2 += g[i] * x2[i]
            s3 += g[i] * x3[i]
        out[2 + q], out[3 + q], out[4 + q], out[5 + q] = s0, s1, s2, s3


# ----------------------------------------------------------------------------------------------------------------
# SIPM
# ----------------------------------------------------------------------------------------------------------------
@intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits`` (a register reinterpretation, which vectorises)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@njit(cache=True, inline="always", **_VEC)
def _sigmoid(z):
    """Logistic sigmoid 1 / (1 + exp(-z)) in plain arithmetic, so that the loops calling it vectorise.

    exp(x) = 2^k e^r with x = -z clamped to [-50, 50], k = round(x / ln 2) and |r| <= ln(2) / 2; e^r is its [5/5]
    Pade approximant P(r) / P(-r) (relative error below 1e-15 there) and 2^k is built from its exponent bits, so
    that sigmoid = P(-r) / (P(-r) + 2^k P(r)) costs one division. Absolute error below 1e-15 (tested against
    scipy); the clamp changes the result by less than 2e-22. A libm exp call would keep the loops scalar (LLVM
    vectorises exp only with Intel's SVML, which the PyPI llvmlite lacks).
    """
    x = min(max(-z, -50.0), 50.0)
    k = np.rint(x * _LOG2E)
    r = x - k * _LN2
    u = r * r
    even = 1.0 + u * (1.0 / 9.0 + u * (1.0 / 1008.0))
    odd = r * (0.5 + u * (1.0 / 72.0 + u * (1.0 / 30240.0)))
    return (even - odd) / ((even - odd) + _float_from_bits((np.int64(k) + 1023) << 52) * (even + odd))


@njit(cache=True, **_VEC)
def sigmoid(z):
    """The kernels' sigmoid applied elementwise to a 1-d array (for tests and callers outside the passes)."""
    out = np.empty_like(z)
    for i in range(z.size):
        out[i] = _sigmoid(z[i])
    return out


@njit(cache=True, inline="always", **_VEC)
def _sipm_point_sums(XT, omega, lo, m, th, s, g, out, evaluate):
    """out = [sum w s, sum w s(1 - s), sum w s(1 - s) x_l for each l] over the m units from ``lo``.

    ``s`` holds the sigmoid values, or with ``evaluate`` their arguments less the first four covariates' terms
    (``th`` (d4) the coefficients): the loop adds those terms and replaces the arguments by the values. ``g``
    receives w s (1 - s). The first four covariates are summed in the same loop, the rest (if any) four at a
    time from ``g``.
    """
    hi = lo + m
    x0, x1, x2, x3, om = XT[0, lo:hi], XT[1, lo:hi], XT[2, lo:hi], XT[3, lo:hi], omega[lo:hi]
    p0, p1, p2, p3 = th[0], th[1], th[2], th[3]
    S, Gb, G0, G1, G2, G3 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(m):
        si = _sigmoid(s[i] + p0 * x0[i] + p1 * x1[i] + p2 * x2[i] + p3 * x3[i]) if evaluate else s[i]
        s[i] = si
        ws = om[i] * si
        gi = ws - ws * si
        g[i] = gi
        S += ws
        Gb += gi
        G0 += gi * x0[i]
        G1 += gi * x1[i]
        G2 += gi * x2[i]
        G3 += gi * x3[i]
    out[0], out[1], out[2], out[3], out[4], out[5] = S, Gb, G0, G1, G2, G3
    _covariate_sums(XT, lo, m, g, out, 4)


@njit(cache=True, inline="always", **_VEC)
def _sipm_segment(XT, omega, th, b, lo, hi, seg, which, n_target, sig_row, s, g, part, out, cached, store):
    """Sums of sigmoid (th, b) over the chunks of segment ``which`` (0 target, 1 arm), added in chunk order.

    out = [S, Gb, Gtheta_1..d4] (see :func:`sipm_sums`). For the arm, ``cached`` reads the sigmoid values from
    ``sig_row`` (indexed from the first arm unit) instead of evaluating them, and ``store`` writes them there.
    """
    out[:] = 0.0
    for c in range(lo.size):
        if seg[c] != which:
            continue
        L, m = lo[c], hi[c] - lo[c]
        off = L - n_target
        if cached:
            s[:m] = sig_row[off:off + m]
        else:
            _affine(XT, L, m, th, b, s, 4)
        _sipm_point_sums(XT, omega, L, m, th, s, g, part, not cached)
        if store:
            sig_row[off:off + m] = s[:m]
        out += part


@njit(cache=True, parallel=True, **_VEC)
def sipm_sums(XT, omega, theta, bias, lo, hi, seg, n_target, sig, store):
    """S_k = sum omega_i sig_ik, Gb_k = sum omega_i s_ik, Gtheta_kl = sum omega_i s_ik x_il for target and arm.

    ``XT`` is the (d4, n) padded transpose of the stacked points (the first ``n_target`` the target), ``theta``
    (K, d4) and ``bias`` (K) the sigmoids, sig = sigmoid(theta_k . x + b_k) and s = sig (1 - sig). Returns T and C,
    each (K, d4 + 2): [:, 0] = S, [:, 1] = Gb, [:, 2:] = Gtheta. With ``store`` the arm's sigmoid values are written
    to ``sig`` ((K, n_arm)).
    """
    K, d4 = theta.shape
    T, C = np.empty((K, d4 + 2)), np.empty((K, d4 + 2))
    for k in prange(K):
        width = np.max(hi - lo)
        s, g, part = np.empty(width), np.empty(width), np.empty(d4 + 2)
        _sipm_segment(XT, omega, theta[k], bias[k], lo, hi, seg, 0, n_target, sig[k], s, g, part, T[k], False, False)
        _sipm_segment(XT, omega, theta[k], bias[k], lo, hi, seg, 1, n_target, sig[k], s, g, part, C[k], False, store)
    return T, C


@njit(cache=True, parallel=True, **_VEC)
def sipm_ascent(XT, omega, n_target, theta, bias, m_theta, v_theta, m_bias, v_bias, sig, t_cache, cache_ok, C_out,
                lo, hi, seg, adv_steps, adv_lr, t0):
    """One epoch of the sigmoids: ``adv_steps`` Adam ascent steps on A = sum_k D_k^2, then the weight step's pass.

    A's gradient for sigmoid k involves only D_k and k's own sums, so each sigmoid runs its whole epoch on its own
    (in parallel over k: one parallel region per epoch). Per step, k's target sums T_k and arm sums C_k give
    D_k = T_k[0] - C_k[0] and the gradients -2 D_k (T_k[1] - C_k[1]) (bias) and -2 D_k (T_k[2:] - C_k[2:])
    (theta_k), and Adam takes step t0 + step + 1. The final pass at the new sigmoids stores the target sums in
    ``t_cache``, the arm sums in ``C_out`` and the arm's sigmoid values in ``sig``: they do not depend on the
    weights, so with cache_ok[0] = 1 the first ascent step re-uses them (only the arm sums are redone, from the
    stored values, at the new weights).
    """
    K, d4 = theta.shape
    use_cache = cache_ok[0] == 1
    n_blocks = min(K, _BLOCKS)
    for block in prange(n_blocks):
        width = np.max(hi - lo)
        s, g, part = np.empty(width), np.empty(width), np.empty(d4 + 2)
        T, C = np.empty(d4 + 2), np.empty(d4 + 2)
        g_theta, g_bias = np.empty(d4), np.empty(1)
        for k in range(block * K // n_blocks, (block + 1) * K // n_blocks):
            th, b = theta[k], bias[k:k + 1]
            for step in range(adv_steps + 1):
                final = step == adv_steps
                cached = step == 0 and use_cache
                if cached:
                    T[:] = t_cache[k]
                else:
                    _sipm_segment(XT, omega, th, b[0], lo, hi, seg, 0, n_target, sig[k], s, g, part, T, False, False)
                _sipm_segment(XT, omega, th, b[0], lo, hi, seg, 1, n_target, sig[k], s, g, part, C, cached, final)
                if final:
                    break
                D = T[0] - C[0]
                g_bias[0] = -2.0 * D * (T[1] - C[1])
                for l in range(d4):
                    g_theta[l] = -2.0 * D * (T[2 + l] - C[2 + l])
                adam_step(th, g_theta, m_theta[k], v_theta[k], t0 + step + 1, adv_lr)
                adam_step(b, g_bias, m_bias[k:k + 1], v_bias[k:k + 1], t0 + step + 1, adv_lr)
            t_cache[k] = T
            C_out[k] = C


@njit(cache=True)
def sipm_epochs(XT, Xc, n_target, pt, base, alpha, model, params, m, v, theta, bias, m_theta, v_theta, m_bias,
                v_bias, sig, t_cache, cache_ok, lo, hi, seg, adv_steps, adv_lr, lr, start, stop, hist, w, s):
    """SIPM epochs ``[start, stop)``: ``adv_steps`` Adam ascent steps of the sigmoids, then one weight step.

    ``XT`` is the padded transpose of the stacked points (the first ``n_target`` the target, then the arm ``Xc``),
    ``theta`` (K, d4) and ``bias`` (K) the sigmoids; ``sig`` ((K, n_arm)), ``t_cache`` ((K, d4 + 2)) and
    ``cache_ok`` carry the stored pass between epochs (see :func:`sipm_ascent`). hist[e] = max_k D_k^2, the
    objective the weights descend.
    """
    K, d4 = theta.shape
    omega = np.empty(XT.shape[1])
    omega[:n_target] = pt
    grad = np.empty(params.size)
    C = np.empty((K, d4 + 2))
    for e in range(start, stop):
        softmax_weights(params, model, Xc, base, alpha, w, s)
        omega[n_target:] = w
        sipm_ascent(XT, omega, n_target, theta, bias, m_theta, v_theta, m_bias, v_bias, sig, t_cache, cache_ok, C,
                    lo, hi, seg, adv_steps, adv_lr, e * adv_steps)
        cache_ok[0] = 1
        D = t_cache[:, 0] - C[:, 0]
        k_star = np.argmax(D * D)
        hist[e] = D[k_star] ** 2
        g = -2.0 * D[k_star] * sig[k_star]
        _weight_step(g, params, m, v, e + 1, lr, model, Xc, base, alpha, w, s, grad)
    softmax_weights(params, model, Xc, base, alpha, w, s)


# ----------------------------------------------------------------------------------------------------------------
# WASS
# ----------------------------------------------------------------------------------------------------------------
@njit(cache=True, inline="always", **_VEC)
def _wass_segment(XT, omega, w_h, cb_h, slope, lo, hi, seg, which, n_target, phi_row, z, g, part, out, store):
    """Sums of hidden unit (w_h, cb_h) over the chunks of segment ``which`` (0 target, 1 arm), added in chunk order.

    out = [A, B, C_1..d4] (see :func:`wass_sums`); ``store`` writes the arm's phi(z) to ``phi_row`` (indexed from the
    first arm unit).
    """
    out[:] = 0.0
    p0, p1, p2, p3 = w_h[0], w_h[1], w_h[2], w_h[3]
    for c in range(lo.size):
        if seg[c] != which:
            continue
        L, m = lo[c], hi[c] - lo[c]
        x0, x1, x2, x3, om = XT[0, L:L + m], XT[1, L:L + m], XT[2, L:L + m], XT[3, L:L + m], omega[L:L + m]
        _affine(XT, L, m, w_h, cb_h, z, 4)
        B, C0, C1, C2, C3 = 0.0, 0.0, 0.0, 0.0, 0.0
        for i in range(m):  # branch-free, so that it vectorises
            zi = z[i] + p0 * x0[i] + p1 * x1[i] + p2 * x2[i] + p3 * x3[i]
            z[i] = zi
            gi = om[i] * (1.0 if zi > 0.0 else slope)
            g[i] = gi
            B += gi
            C0 += gi * x0[i]
            C1 += gi * x1[i]
            C2 += gi * x2[i]
            C3 += gi * x3[i]
        part[1], part[2], part[3], part[4], part[5] = B, C0, C1, C2, C3
        _covariate_sums(XT, L, m, g, part, 4)
        out += part
        if store:
            ph = phi_row[L - n_target:L - n_target + m]
            for i in range(m):
                ph[i] = z[i] * (1.0 if z[i] > 0.0 else slope)
    total = cb_h * out[1]
    for l in range(w_h.size):
        total += w_h[l] * out[2 + l]
    out[0] = total


@njit(cache=True, parallel=True, **_VEC)
def wass_sums(XT, omega, W, cb, slope, lo, hi, seg, n_target, T, C, phi, do_target, store):
    """A_h = sum omega phi(z_h), B_h = sum omega phi'(z_h), C_hl = sum omega phi'(z_h) x_l over target (into ``T``)
    and arm (into ``C``), each (H, d4 + 2): [:, 0] = A, [:, 1] = B, [:, 2:] = C.

    z = W x + cb (``W`` (H, d4), ``XT`` the (d4, n) padded transpose of the points), phi = LeakyReLU(slope). The
    hidden units run in parallel, each over all chunks in order. ``do_target`` False skips the target sums;
    ``store`` writes the arm's phi(z) to ``phi`` ((H, n_arm)). A is not summed unit by unit: phi(z) = phi'(z) z and
    z is affine in x, so A_h = cb_h B_h + sum_l W_hl C_hl exactly.
    """
    H, d4 = W.shape
    n_blocks = min(H, _BLOCKS)
    for block in prange(n_blocks):
        width = np.max(hi - lo)
        z, g, part = np.empty(width), np.empty(width), np.empty(d4 + 2)
        for h in range(block * H // n_blocks, (block + 1) * H // n_blocks):
            if do_target:
                _wass_segment(XT, omega, W[h], cb[h], slope, lo, hi, seg, 0, n_target, phi[h], z, g, part, T[h],
                              False)
            _wass_segment(XT, omega, W[h], cb[h], slope, lo, hi, seg, 1, n_target, phi[h], z, g, part, C[h], store)


@njit(cache=True, **_VEC)
def wass_penalty_grad(Xhat, W, cb, v, slope, tau):
    """Gradient penalty tau/R sum_r (|grad_x f(xhat_r)| - 1)^2 and its gradients for W (H, d4) and v (cb, e: zero
    a.e.).

    grad_x f(xhat_r) = sum_h v_h phi'(z_rh) W_h =: gx_r. With c_r = 2 tau / R (|gx_r| - 1) / |gx_r| and
    S_hl = sum_r phi'(z_rh) c_r gx_rl, the gradients are dW_hl = v_h S_hl and dv_h = sum_l W_hl S_hl. The loops run
    over the R interpolates (contiguous, on their transpose), one hidden unit at a time, so that they vectorise.
    """
    H, d4 = W.shape
    R = Xhat.shape[0]
    XhT = np.ascontiguousarray(Xhat.T)
    z = np.empty(R)
    dphi = np.empty((H, R))
    gx = np.zeros((d4, R))
    for h in range(H):
        _affine(XhT, 0, R, W[h], cb[h], z)
        for r in range(R):
            dphi[h, r] = 1.0 if z[r] > 0.0 else slope
        for l in range(d4):
            c = v[h] * W[h, l]
            for r in range(R):
                gx[l, r] += c * dphi[h, r]
    value = 0.0
    coef = np.empty(R)
    for r in range(R):
        rho2 = 0.0
        for l in range(d4):
            rho2 += gx[l, r] * gx[l, r]
        rho = math.sqrt(rho2)
        value += tau / R * (rho - 1.0) ** 2
        # the norm has no gradient at 0; PyTorch's subgradient there is 0 as well
        coef[r] = tau * 2.0 / R * (rho - 1.0) / rho if rho > 0.0 else 0.0
    for l in range(d4):
        for r in range(R):
            gx[l, r] *= coef[r]
    g_W = np.empty((H, d4))
    g_v = np.zeros(H)
    for h in range(H):
        for l in range(d4):
            acc = 0.0
            for r in range(R):
                acc += dphi[h, r] * gx[l, r]
            g_W[h, l] = v[h] * acc
            g_v[h] += W[h, l] * acc
    return value, g_W, g_v


@njit(cache=True)
def wass_adversary_grad(T, C, v, e_out, sum_t, sum_c):
    """D and the gradient of -D^2 for (W, cb, v, e) from target sums T and arm sums C (each (H, d4 + 2))."""
    H, d4 = T.shape[0], T.shape[1] - 2
    A = T[:, 0] - C[:, 0]
    D = np.dot(v, A) + e_out * (sum_t - sum_c)
    g_v = -2.0 * D * A
    g_cb = -2.0 * D * v * (T[:, 1] - C[:, 1])
    g_W = np.empty((H, d4))
    for h in range(H):
        for l in range(d4):
            g_W[h, l] = -2.0 * D * v[h] * (T[h, 2 + l] - C[h, 2 + l])
    g_e = np.array([-2.0 * D * (sum_t - sum_c)])
    return D, g_W, g_cb, g_v, g_e


@njit(cache=True)
def _clip(a, bound):
    if bound > 0.0:
        a1 = a.reshape(-1)
        for i in range(a1.size):
            a1[i] = min(max(a1[i], -bound), bound)


@njit(cache=True)
def wass_epochs(XT, Xc, n_target, pt, base, alpha, model, params, m, v_w, W, cb, vv, eo, mW, vW, mcb, vcb, mv, vv_,
                me, ve, gp_ic, gp_it, gp_a, slope, clip, tau, t_cache, cache_ok, phi, lo, hi, seg, adv_steps, adv_lr,
                lr, start, stop, hist, w, s):
    """WASS epochs ``[start, stop)``: ``adv_steps`` Adam ascent steps of the critic on D^2 - GP, each followed by
    clipping W and v to [-clip, clip] (clip <= 0: off), then one weight step on D^2.

    ``XT`` is the padded transpose of the stacked points (the first ``n_target`` the target, then the arm ``Xc``).
    The critic is W (H, d4), cb (H), vv (H) and the output bias eo (1,), with Adam moments mW, vW, ...
    Gradient-penalty draws for epoch e and ascent step a are gp_ic[e, a] (arm indices), gp_it[e, a] (target
    indices) and gp_a[e, a] (mixing weights); tau = 0 switches the penalty off. ``phi`` ((H, n_arm)) receives the
    arm's hidden-layer outputs at the weight step's pass. hist[e] = D^2 at the weight step.
    """
    H, d4 = W.shape
    omega = np.empty(XT.shape[1])
    omega[:n_target] = pt
    sum_t = np.sum(pt)
    grad = np.empty(params.size)
    C = np.empty((H, d4 + 2))
    T = np.empty((H, d4 + 2))
    f_arm = np.empty(Xc.shape[0])
    R = gp_a.shape[2]
    Xhat = np.empty((R, d4))
    for e in range(start, stop):
        softmax_weights(params, model, Xc, base, alpha, w, s)
        omega[n_target:] = w
        sum_c = np.sum(w)
        for step in range(adv_steps):
            cached = step == 0 and cache_ok[0] == 1
            if cached:
                T[:] = t_cache
            wass_sums(XT, omega, W, cb, slope, lo, hi, seg, n_target, T, C, phi, not cached, False)
            D, g_W, g_cb, g_v, g_e = wass_adversary_grad(T, C, vv, eo[0], sum_t, sum_c)
            if tau > 0.0:
                for r in range(R):
                    a = gp_a[e, step, r]
                    ic, it = n_target + gp_ic[e, step, r], gp_it[e, step, r]
                    for l in range(d4):
                        Xhat[r, l] = a * XT[l, ic] + (1.0 - a) * XT[l, it]
                _, p_W, p_v = wass_penalty_grad(Xhat, W, cb, vv, slope, tau)
                g_W += p_W
                g_v += p_v
            t = e * adv_steps + step + 1
            adam_step(W, g_W, mW, vW, t, adv_lr)
            adam_step(cb, g_cb, mcb, vcb, t, adv_lr)
            adam_step(vv, g_v, mv, vv_, t, adv_lr)
            adam_step(eo, g_e, me, ve, t, adv_lr)
            _clip(W, clip)
            _clip(vv, clip)
        wass_sums(XT, omega, W, cb, slope, lo, hi, seg, n_target, t_cache, C, phi, True, True)
        cache_ok[0] = 1
        f_arm[:] = 0.0
        for h in range(H):  # the critic's output at the arm's points, without the output bias
            for j in range(f_arm.size):
                f_arm[j] += vv[h] * phi[h, j]
        D = np.dot(vv, t_cache[:, 0] - C[:, 0]) + eo[0] * (sum_t - sum_c)
        hist[e] = D * D
        g = -2.0 * D * (f_arm + eo[0])
        _weight_step(g, params, m, v_w, e + 1, lr, model, Xc, base, alpha, w, s, grad)
    softmax_weights(params, model, Xc, base, alpha, w, s)
