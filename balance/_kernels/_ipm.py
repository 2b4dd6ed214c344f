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
the caller and passed in as arrays. Point sums run in parallel over fixed-size chunks of units whose partial sums are
added in chunk order, so results do not depend on the number of threads.
"""

import math

import numpy as np
from numba import njit, prange

BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8  # PyTorch Adam defaults, as in the authors' code
MODEL_CODES = {"nonpara": 0, "linear": 1}
_CHUNK_MIN, _CHUNK_MAX_COUNT = 128, 512
# the pass kernels: no ZeroDivisionError branch (it blocks vectorisation) and reassociation allowed
_VEC = dict(fastmath=True, error_model="numpy")


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
    """Chunks of at most ~n/512 (at least 128) units that never straddle the target/arm split.

    Returns (lo, hi, seg) int64 arrays; seg is 0 for target chunks, 1 for arm chunks. Plain Python: called once.
    """
    bounds = []
    for seg, (start, size) in enumerate(((0, n_target), (n_target, n_arm))):
        step = max(_CHUNK_MIN, -(-size // _CHUNK_MAX_COUNT))
        bounds += [(start + lo, start + min(lo + step, size), seg) for lo in range(0, size, step)]
    return tuple(np.array(col, dtype=np.int64) for col in zip(*bounds))


@njit(cache=True, **_VEC)
def _affine_into(z, X, i, W, b):
    """z = b + W' X[i] for one unit (W of shape (d, m)), with the loop over the m outputs innermost."""
    z[:] = b
    for l in range(W.shape[0]):
        xl = X[i, l]
        for k in range(W.shape[1]):
            z[k] += xl * W[l, k]


@njit(cache=True, **_VEC)
def _reduce(acc, seg, which, out):
    """Sum the chunk accumulators of one segment, in chunk order."""
    out[:] = 0.0
    for c in range(acc.shape[0]):
        if seg[c] == which:
            out += acc[c]


# ----------------------------------------------------------------------------------------------------------------
# SIPM
# ----------------------------------------------------------------------------------------------------------------
@njit(cache=True, inline="always", **_VEC)
def _sigmoid(z):
    """Logistic sigmoid 1 / (1 + exp(-z)) by scaling and squaring, in plain arithmetic so that loops vectorise.

    exp(-z) = (e^t)^256 with t = -z / 256 and z clamped to [-50, 50] (|t| <= 0.196); e^t is its degree-11 Taylor
    polynomial (truncation below 1e-17). The eight squarings amplify rounding 256-fold: absolute error below 2e-14
    (tested against numpy). The clamp changes the result by less than 2e-22. A libm exp call would keep the loops
    over discriminators scalar (LLVM vectorises exp only with Intel's SVML, which the PyPI llvmlite lacks).
    """
    t = min(max(-z, -50.0), 50.0) * (1.0 / 256.0)
    p = 1.0 / 39916800.0
    p = p * t + 1.0 / 3628800.0
    p = p * t + 1.0 / 362880.0
    p = p * t + 1.0 / 40320.0
    p = p * t + 1.0 / 5040.0
    p = p * t + 1.0 / 720.0
    p = p * t + 1.0 / 120.0
    p = p * t + 1.0 / 24.0
    p = p * t + 1.0 / 6.0
    p = p * t + 0.5
    p = p * t + 1.0
    p = p * t + 1.0
    for _ in range(8):
        p = p * p
    return 1.0 / (1.0 + p)


@njit(cache=True, **_VEC)
def sigmoid(z):
    """The kernels' sigmoid applied elementwise to a 1-d array (for tests and callers outside the passes)."""
    out = np.empty_like(z)
    for i in range(z.size):
        out[i] = _sigmoid(z[i])
    return out


@njit(cache=True, **_VEC)
def _sipm_unit(a, wi, z, X, i, g, evaluate):
    """Add unit i's terms to the sums ``a`` ((d + 2, K)); ``evaluate``: z holds x'theta + b, made sigmoid here.

    Every loop runs over the K discriminators (contiguous), so that each vectorises.
    """
    K = z.size
    if evaluate:
        for k in range(K):
            z[k] = _sigmoid(z[k])
    for k in range(K):
        sk = z[k]
        a[0, k] += wi * sk
        g[k] = wi * sk * (1.0 - sk)
        a[1, k] += g[k]
    for l in range(X.shape[1]):
        xl = X[i, l]
        for k in range(K):
            a[2 + l, k] += g[k] * xl


@njit(cache=True, parallel=True, **_VEC)
def sipm_sums(X, omega, theta, bias, lo, hi, seg, do_seg, n_target, sig, use_cache, store):
    """Per chunk: S_k = sum omega_i sig_ik, Gb_k = sum omega_i s_ik, Gtheta_lk = sum omega_i s_ik x_il.

    sig = sigmoid(x' theta_k + b_k), s = sig (1 - sig). Returns acc of shape (n_chunks, d + 2, K): row 0 = S,
    row 1 = Gb, rows 2.. = Gtheta. Only chunks with do_seg[seg] are computed. For arm points (seg 1), ``use_cache``
    reads sig from ``sig`` (rows i - n_target) instead of evaluating it, and ``store`` writes it there. One unit at
    a time, every loop runs over the K discriminators (contiguous), so that each vectorises.
    """
    d, K = theta.shape
    acc = np.zeros((lo.size, d + 2, K))
    for c in prange(lo.size):
        if not do_seg[seg[c]]:
            continue
        arm = seg[c] == 1
        z = np.empty(K)
        g = np.empty(K)
        a = acc[c]
        cached = arm and use_cache
        for i in range(lo[c], hi[c]):
            if cached:
                z[:] = sig[i - n_target]
            else:
                _affine_into(z, X, i, theta, bias)
            _sipm_unit(a, omega[i], z, X, i, g, not cached)
            if arm and store:
                sig[i - n_target] = z
    return acc


@njit(cache=True)
def sipm_adversary_grad(T, C):
    """Gradient of -A = -sum_k D_k^2 for (theta, bias) from target sums T and arm sums C (each (d + 2, K))."""
    D = T[0] - C[0]
    g_bias = -2.0 * D * (T[1] - C[1])
    g_theta = -2.0 * D * (T[2:] - C[2:])
    return D, g_theta, g_bias


@njit(cache=True)
def sipm_epochs(X, n_target, pt, base, alpha, model, params, m, v, theta, bias, m_theta, v_theta, m_bias, v_bias,
                sig, t_cache, cache_ok, lo, hi, seg, adv_steps, adv_lr, lr, start, stop, hist, w, s):
    """SIPM epochs ``[start, stop)``: ``adv_steps`` Adam ascent steps of the sigmoids, then one weight step.

    ``X`` stacks the target points (first ``n_target`` rows) and the arm points. ``t_cache`` ((d + 2, K)) holds the
    target sums at the current sigmoids and ``sig`` the arm's sigmoid values there, both valid when cache_ok[0] = 1
    (they do not depend on the weights, so the first ascent step of an epoch re-uses the previous weight step's
    pass). hist[e] = max_k D_k^2, the objective the weights descend.
    """
    d, K = theta.shape
    Xc = X[n_target:]
    omega = np.empty(X.shape[0])
    omega[:n_target] = pt
    grad = np.empty(params.size)
    C = np.empty((d + 2, K))
    T = np.empty((d + 2, K))
    both = np.array([True, True])
    arm_only = np.array([False, True])
    for e in range(start, stop):
        softmax_weights(params, model, Xc, base, alpha, w, s)
        omega[n_target:] = w
        for step in range(adv_steps):
            if step == 0 and cache_ok[0] == 1:
                acc = sipm_sums(X, omega, theta, bias, lo, hi, seg, arm_only, n_target, sig, True, False)
                T[:] = t_cache
            else:
                acc = sipm_sums(X, omega, theta, bias, lo, hi, seg, both, n_target, sig, False, False)
                _reduce(acc, seg, 0, T)
            _reduce(acc, seg, 1, C)
            D, g_theta, g_bias = sipm_adversary_grad(T, C)
            t = e * adv_steps + step + 1
            adam_step(theta, g_theta, m_theta, v_theta, t, adv_lr)
            adam_step(bias, g_bias, m_bias, v_bias, t, adv_lr)
        acc = sipm_sums(X, omega, theta, bias, lo, hi, seg, both, n_target, sig, False, True)
        _reduce(acc, seg, 0, t_cache)
        _reduce(acc, seg, 1, C)
        cache_ok[0] = 1
        D = t_cache[0] - C[0]
        k_star = np.argmax(D * D)
        hist[e] = D[k_star] ** 2
        g = -2.0 * D[k_star] * sig[:, k_star]
        _weight_step(g, params, m, v, e + 1, lr, model, Xc, base, alpha, w, s, grad)
    softmax_weights(params, model, Xc, base, alpha, w, s)


# ----------------------------------------------------------------------------------------------------------------
# WASS
# ----------------------------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True, **_VEC)
def wass_sums(X, omega, W, cb, v, slope, lo, hi, seg, do_seg, n_target, f_out, store):
    """Per chunk: A_h = sum omega phi(z_h), B_h = sum omega phi'(z_h), C_lh = sum omega phi'(z_h) x_l.

    z = W'x + cb (W has shape (d, H)), phi = LeakyReLU(slope). Returns acc (n_chunks, d + 2, H): row 0 = A,
    row 1 = B, rows 2.. = C. With ``store``, arm points' network outputs f = v'phi(z) (without the output bias) are
    written to f_out[i - n_target]. A is not summed unit by unit: phi(z) = phi'(z) z and z is affine in x, so
    A_h = cb_h B_h + sum_l W_lh C_lh exactly, one accumulation per unit and hidden unit fewer.
    """
    d, H = W.shape
    acc = np.zeros((lo.size, d + 2, H))
    for c in prange(lo.size):
        if not do_seg[seg[c]]:
            continue
        keep_f = store and seg[c] == 1
        z = np.empty(H)
        dz = np.empty(H)
        a = acc[c]
        for i in range(lo[c], hi[c]):
            _affine_into(z, X, i, W, cb)
            wi = omega[i]
            for h in range(H):  # branch-free and without a reduction, so that it vectorises
                dz[h] = wi * (1.0 if z[h] > 0.0 else slope)
                a[1, h] += dz[h]
            for l in range(d):
                xl = X[i, l]
                for h in range(H):
                    a[2 + l, h] += dz[h] * xl
            if keep_f:
                f = 0.0
                for h in range(H):
                    f += v[h] * z[h] * (1.0 if z[h] > 0.0 else slope)
                f_out[i - n_target] = f
        for h in range(H):
            a[0, h] = cb[h] * a[1, h]
        for l in range(d):
            for h in range(H):
                a[0, h] += W[l, h] * a[2 + l, h]
    return acc


@njit(cache=True, **_VEC)
def wass_penalty_grad(Xhat, W, cb, v, slope, tau):
    """Gradient penalty tau/R sum_r (|grad_x f(xhat_r)| - 1)^2 and its gradients for W and v (cb, e: zero a.e.).

    Loops over the H hidden units run innermost (contiguous), so that they vectorise.
    """
    d, H = W.shape
    R = Xhat.shape[0]
    g_W = np.zeros((d, H))
    g_v = np.zeros(H)
    value = 0.0
    z = np.empty(H)
    u = np.empty(H)
    dphi = np.empty(H)
    wg = np.empty(H)
    gx = np.empty(d)
    for r in range(R):
        z[:] = cb
        for l in range(d):
            xl = Xhat[r, l]
            for h in range(H):
                z[h] += xl * W[l, h]
        for h in range(H):
            dphi[h] = 1.0 if z[h] > 0.0 else slope
            u[h] = v[h] * dphi[h]
        rho2 = 0.0
        for l in range(d):
            acc = 0.0
            for h in range(H):
                acc += W[l, h] * u[h]
            gx[l] = acc
            rho2 += acc * acc
        rho = math.sqrt(rho2)
        value += tau / R * (rho - 1.0) ** 2
        if rho == 0.0:
            continue  # the norm has no gradient at 0; PyTorch's subgradient there is 0 as well
        coef = tau * 2.0 / R * (rho - 1.0) / rho
        wg[:] = 0.0
        for l in range(d):
            cl = coef * gx[l]
            for h in range(H):
                g_W[l, h] += cl * u[h]
                wg[h] += W[l, h] * gx[l]
        for h in range(H):
            g_v[h] += coef * dphi[h] * wg[h]
    return value, g_W, g_v


@njit(cache=True)
def wass_adversary_grad(T, C, v, e_out, sum_t, sum_c):
    """D and the gradient of -D^2 for (W, cb, v, e) from target sums T and arm sums C (each (d + 2, H))."""
    A = T[0] - C[0]
    D = np.dot(v, A) + e_out * (sum_t - sum_c)
    g_v = -2.0 * D * A
    g_cb = -2.0 * D * v * (T[1] - C[1])
    g_W = -2.0 * D * v * (T[2:] - C[2:])
    g_e = np.array([-2.0 * D * (sum_t - sum_c)])
    return D, g_W, g_cb, g_v, g_e


@njit(cache=True)
def _clip(a, bound):
    if bound > 0.0:
        a1 = a.reshape(-1)
        for i in range(a1.size):
            a1[i] = min(max(a1[i], -bound), bound)


@njit(cache=True)
def wass_epochs(X, n_target, pt, base, alpha, model, params, m, v_w, W, cb, vv, eo, mW, vW, mcb, vcb, mv, vv_, me,
                ve, gp_ic, gp_it, gp_a, slope, clip, tau, t_cache, cache_ok, f_arm, lo, hi, seg, adv_steps, adv_lr, lr,
                start, stop, hist, w, s):
    """WASS epochs ``[start, stop)``: ``adv_steps`` Adam ascent steps of the critic on D^2 - GP, each followed by
    clipping W and v to [-clip, clip] (clip <= 0: off), then one weight step on D^2.

    The critic is W (d, H), cb (H), vv (H) and the output bias eo (1,), with Adam moments mW, vW, ...
    Gradient-penalty draws for epoch e and ascent step a are gp_ic[e, a] (arm indices), gp_it[e, a] (target
    indices) and gp_a[e, a] (mixing weights); tau = 0 switches the penalty off. hist[e] = D^2 at the weight step.
    """
    d, H = W.shape
    Xc = X[n_target:]
    Xt = X[:n_target]
    omega = np.empty(X.shape[0])
    omega[:n_target] = pt
    sum_t = np.sum(pt)
    grad = np.empty(params.size)
    C = np.empty((d + 2, H))
    T = np.empty((d + 2, H))
    both = np.array([True, True])
    arm_only = np.array([False, True])
    R = gp_a.shape[2]
    Xhat = np.empty((R, d))
    for e in range(start, stop):
        softmax_weights(params, model, Xc, base, alpha, w, s)
        omega[n_target:] = w
        sum_c = np.sum(w)
        for step in range(adv_steps):
            if step == 0 and cache_ok[0] == 1:
                acc = wass_sums(X, omega, W, cb, vv, slope, lo, hi, seg, arm_only, n_target, f_arm, False)
                T[:] = t_cache
            else:
                acc = wass_sums(X, omega, W, cb, vv, slope, lo, hi, seg, both, n_target, f_arm, False)
                _reduce(acc, seg, 0, T)
            _reduce(acc, seg, 1, C)
            D, g_W, g_cb, g_v, g_e = wass_adversary_grad(T, C, vv, eo[0], sum_t, sum_c)
            if tau > 0.0:
                for r in range(R):
                    a = gp_a[e, step, r]
                    for l in range(d):
                        Xhat[r, l] = a * Xc[gp_ic[e, step, r], l] + (1.0 - a) * Xt[gp_it[e, step, r], l]
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
        acc = wass_sums(X, omega, W, cb, vv, slope, lo, hi, seg, both, n_target, f_arm, True)
        _reduce(acc, seg, 0, t_cache)
        _reduce(acc, seg, 1, C)
        cache_ok[0] = 1
        D = np.dot(vv, t_cache[0] - C[0]) + eo[0] * (sum_t - sum_c)
        hist[e] = D * D
        g = -2.0 * D * (f_arm + eo[0])
        _weight_step(g, params, m, v_w, e + 1, lr, model, Xc, base, alpha, w, s, grad)
    softmax_weights(params, model, Xc, base, alpha, w, s)
