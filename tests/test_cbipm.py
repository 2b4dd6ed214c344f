"""CBIPM (Kong et al., ICML 2023): numba kernels against plain-numpy references, then the estimator.

Kernel references are written independently here from the formulas of the spec (/work/shared/specs/cbipm.md,
sections 3-5): softmax weights, PyTorch's Adam, the Gaussian-kernel MMD^2 as a double sum, the sigmoid and
LeakyReLU discriminators' mean gaps and gradients (also checked by central finite differences).
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone

from balance import CBIPM, balance_table

ipm = pytest.importorskip("balance._kernels._ipm")


# ---------------------------------------------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------------------------------------------
def ref_adam(p, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba 2015, Algorithm 1; PyTorch's defaults), returning new (p, m, v)."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps), m, v


def ref_weights(params, linear, Xc, base, alpha):
    eta = Xc @ params if linear else params
    s = base * np.exp(eta) / np.sum(base * np.exp(eta))
    return alpha * base / base.sum() + (1 - alpha) * s, s


def ref_param_grad(g, s, linear, Xc, base, alpha):
    r = (1 - alpha) * s * (g - s @ g)
    return Xc.T @ r if linear else r / base


def ref_mmd2(Xc, w, Xt, p, gammas):
    """MMD^2 as the literal double sums of the spec (sec. 4.3), averaged over bandwidths."""
    def k(x, y):
        return np.mean([np.exp(-np.sum((x - y) ** 2) / (2 * g * g)) for g in gammas])

    cc = sum(w[j] * w[l] * k(Xc[j], Xc[l]) for j in range(len(w)) for l in range(len(w)))
    ct = sum(w[j] * p[i] * k(Xc[j], Xt[i]) for j in range(len(w)) for i in range(len(p)))
    tt = sum(p[i] * p[l] * k(Xt[i], Xt[l]) for i in range(len(p)) for l in range(len(p)))
    return cc - 2 * ct + tt


def ref_sipm_gaps(Xt, pt, Xc, w, theta, bias):
    """D_k and the gradients of D_k for the K sigmoids (spec sec. 4.1)."""
    st, sc = 1 / (1 + np.exp(-(Xt @ theta + bias))), 1 / (1 + np.exp(-(Xc @ theta + bias)))
    D = pt @ st - w @ sc
    dt, dc = st * (1 - st), sc * (1 - sc)
    d_theta = Xt.T @ (pt[:, None] * dt) - Xc.T @ (w[:, None] * dc)
    d_bias = pt @ dt - w @ dc
    return D, d_theta, d_bias, sc


def ref_critic(X, W, cb, v, e, slope):
    z = X @ W + cb
    return np.where(z > 0, z, slope * z) @ v + e


def ref_penalty(Xhat, W, cb, v, slope, tau):
    z = Xhat @ W + cb
    grads = (v * np.where(z > 0, 1.0, slope)) @ W.T  # grad_x f for each row
    return tau * np.mean((np.linalg.norm(grads, axis=1) - 1) ** 2)


def central_diff(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (f(up) - f(down)) / (2 * h)
    return grad


def two_chunks_each(n_t, n_c):
    """Chunk bounds (lo, hi, seg) splitting target and arm in two chunks each (production chunks hold >= 512)."""
    cuts = [0, n_t // 2, n_t, n_t + n_c // 2, n_t + n_c]
    return np.array(cuts[:-1]), np.array(cuts[1:]), np.array([0, 0, 1, 1])


@pytest.fixture
def problem(rng):
    Xt, Xc = rng.normal(0.3, 1, (23, 3)), rng.normal(size=(17, 3))
    pt = rng.uniform(0.5, 2, 23)
    return Xt, pt / pt.sum(), Xc, rng.uniform(0.5, 2, 17)


# ---------------------------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------------------------
def test_adam_step_matches_the_reference(rng):
    p, m, v = rng.normal(size=7), np.zeros(7), np.zeros(7)
    rp, rm, rv = p.copy(), m.copy(), v.copy()
    for t in range(1, 6):
        g = rng.normal(size=7)
        ipm.adam_step(p, g, m, v, t, 0.03)
        rp, rm, rv = ref_adam(rp, g, rm, rv, t, 0.03)
    # same algebra, different operation order (PyTorch folds the bias corrections): rounding only
    assert_allclose(p, rp, rtol=1e-13, atol=1e-15)
    assert_allclose(v, rv, rtol=1e-13)


@pytest.mark.parametrize("linear, alpha", [(False, 0.0), (True, 0.0), (True, 0.35)])
def test_softmax_weights_and_parameter_gradient(problem, rng, linear, alpha):
    _, _, Xc, base = problem
    params = rng.normal(size=3 if linear else 17)
    w, s = np.empty(17), np.empty(17)
    ipm.softmax_weights(params, int(linear), Xc, base, alpha, w, s)
    rw, rs = ref_weights(params, linear, Xc, base, alpha)
    assert_allclose(w, rw, rtol=1e-13)  # exact formula, rounding only
    assert_allclose(w.sum(), 1.0, rtol=1e-14)
    g, out = rng.normal(size=17), np.empty(params.size)
    ipm.weight_param_grad(g, s, int(linear), Xc, base, alpha, out)
    assert_allclose(out, ref_param_grad(g, rs, linear, Xc, base, alpha), rtol=1e-12, atol=1e-15)
    if linear or alpha == 0.0:
        # the linear gradient is d(g.w)/d beta; for nonpara it is that derivative per unit of base weight
        numeric = central_diff(lambda q: g @ ref_weights(q, linear, Xc, base, alpha)[0], params)
        assert_allclose(out, numeric if linear else numeric / base, rtol=1e-6, atol=1e-9)  # O(h^2) truncation


@pytest.mark.parametrize("gammas", [[10.0], [1.0, 3.0, 10.0]])
def test_mmd_closed_form_equals_the_double_sum(problem, rng, gammas):
    Xt, pt, Xc, _ = problem
    w = rng.dirichlet(np.ones(17))
    inv = 1 / (2 * np.asarray(gammas) ** 2)
    K = ipm.gaussian_gram(Xc, Xc, inv)
    b = ipm.gaussian_gram_dot(Xc, Xt, pt, inv)
    c = pt @ ipm.gaussian_gram_dot(Xt, Xt, pt, inv)
    value, grad = ipm.mmd_objective_grad(K, b, c, w)
    assert_allclose(value, ref_mmd2(Xc, w, Xt, pt, gammas), rtol=1e-10, atol=1e-14)  # summation order only
    numeric = central_diff(lambda q: ipm.mmd_objective_grad(K, b, c, q)[0], w)
    assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)  # a quadratic: central differences are exact up to rounding


def test_vectorised_sigmoid_is_within_1e15_of_scipy():
    z = np.r_[np.linspace(-80, 80, 200_001), -745.0, 745.0, 0.0]
    from scipy.special import expit

    assert_allclose(ipm.sigmoid(z), expit(z), rtol=0, atol=1e-15)  # the documented bound
    assert np.all((ipm.sigmoid(z) >= 0) & (ipm.sigmoid(z) <= 1))


@pytest.mark.parametrize("d", [3, 6])  # one block of four covariates (one padding) or two (two padding)
def test_sipm_sums_and_adversary_gradient(problem, rng, d):
    Xt, pt, Xc, _ = problem
    Xt, Xc = np.c_[Xt, rng.normal(size=(23, d - 3))], np.c_[Xc, rng.normal(size=(17, d - 3))]
    w = rng.dirichlet(np.ones(17))
    theta, bias = rng.normal(size=(d, 5)) / np.sqrt(d), rng.normal(size=5)
    XT, n_t, d4 = ipm.padded_transpose(np.vstack([Xt, Xc])), len(Xt), 4 * (1 + (d > 4))
    assert XT.shape == (d4, 40) and np.all(XT[d:] == 0)
    lo, hi, seg = two_chunks_each(n_t, len(Xc))
    sig = np.empty((5, 17))
    T, C = ipm.sipm_sums(XT, np.r_[pt, w], ipm.padded_rows(theta, d4), bias, lo, hi, seg, n_t, sig, True)
    assert np.all(T[:, 2 + d:] == 0) and np.all(C[:, 2 + d:] == 0)  # padding covariates add exactly nothing
    D, d_theta, d_bias = T[:, 0] - C[:, 0], (T[:, 2:2 + d] - C[:, 2:2 + d]).T, T[:, 1] - C[:, 1]
    rD, r_theta, r_bias, r_sig = ref_sipm_gaps(Xt, pt, Xc, w, theta, bias)
    # the kernel's sigmoid is within 1e-15 of scipy's (absolute): sums of weighted values likewise
    assert_allclose(sig.T, r_sig, rtol=0, atol=1e-15)
    assert_allclose(D, rD, rtol=0, atol=2e-14)
    assert_allclose(d_theta, r_theta, rtol=1e-10, atol=1e-13)
    assert_allclose(d_bias, r_bias, rtol=1e-10, atol=1e-13)

    def minus_a(th, b=bias):
        return -np.sum(ref_sipm_gaps(Xt, pt, Xc, w, th, b)[0] ** 2)

    # the ascent direction the kernels use, -2 D_k dD_k, is the gradient of -A = -sum_k D_k^2
    assert_allclose(-2 * D * d_theta, central_diff(minus_a, theta), rtol=1e-5, atol=1e-9)
    assert_allclose(-2 * D * d_bias, central_diff(lambda b: minus_a(theta, b), bias), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("d", [3, 6])
def test_wass_sums_gap_and_penalty_gradients(problem, rng, d):
    Xt, pt, Xc, _ = problem
    Xt, Xc = np.c_[Xt, rng.normal(size=(23, d - 3))], np.c_[Xc, rng.normal(size=(17, d - 3))]
    w = rng.dirichlet(np.ones(17))
    W, cb, v, e, slope = rng.normal(size=(d, 6)), rng.normal(size=6), rng.normal(size=6), 0.4, 0.1
    XT, n_t, d4 = ipm.padded_transpose(np.vstack([Xt, Xc])), len(Xt), 4 * (1 + (d > 4))
    lo, hi, seg = two_chunks_each(n_t, len(Xc))
    T, C, phi = np.empty((6, d4 + 2)), np.empty((6, d4 + 2)), np.empty((6, 17))
    ipm.wass_sums(XT, np.r_[pt, w], ipm.padded_rows(W, d4), cb, slope, lo, hi, seg, n_t, T, C, phi, True, True)
    f_arm = v @ phi
    D, g_W, g_cb, g_v, g_e = ipm.wass_adversary_grad(T, C, v, e, pt.sum(), w.sum())
    assert np.all(g_W[:, d:] == 0)  # the padding covariates' coefficients get exactly zero gradient
    g_W = g_W[:, :d].T

    def gap(W_=W, cb_=cb, v_=v, e_=e):
        return pt @ ref_critic(Xt, W_, cb_, v_, e_, slope) - w @ ref_critic(Xc, W_, cb_, v_, e_, slope)

    assert_allclose(D, gap(), rtol=1e-12)
    assert_allclose(f_arm + e, ref_critic(Xc, W, cb, v, e, slope), rtol=1e-12)
    # -D^2 is piecewise smooth (LeakyReLU kinks); with Gaussian draws no unit sits within 1e-6 of a kink
    assert_allclose(g_W, central_diff(lambda q: -gap(W_=q) ** 2, W), rtol=1e-5, atol=1e-9)
    assert_allclose(g_cb, central_diff(lambda q: -gap(cb_=q) ** 2, cb), rtol=1e-5, atol=1e-9)
    assert_allclose(g_v, central_diff(lambda q: -gap(v_=q) ** 2, v), rtol=1e-5, atol=1e-9)
    Xhat = rng.normal(size=(9, d))
    value, p_W, p_v = ipm.wass_penalty_grad(np.c_[Xhat, np.zeros((9, d4 - d))], ipm.padded_rows(W, d4), cb, v, slope,
                                            0.3)
    assert np.all(p_W[:, d:] == 0)
    p_W = p_W[:, :d].T
    assert_allclose(value, ref_penalty(Xhat, W, cb, v, slope, 0.3), rtol=1e-12)
    assert_allclose(p_W, central_diff(lambda q: ref_penalty(Xhat, q, cb, v, slope, 0.3), W), rtol=1e-5, atol=1e-9)
    assert_allclose(p_v, central_diff(lambda q: ref_penalty(Xhat, W, cb, q, slope, 0.3), v), rtol=1e-5, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# whole epoch loops against numpy loops
# ---------------------------------------------------------------------------------------------------------------
def _ref_weight_step(g, params, m, v, t, lr, linear, Xc, base, alpha):
    _, s = ref_weights(params, linear, Xc, base, alpha)
    return ref_adam(params, ref_param_grad(g, s, linear, Xc, base, alpha), m, v, t, lr)


@pytest.mark.parametrize("linear", [False, True])
def test_mmd_epochs_match_a_numpy_loop(problem, linear):
    Xt, pt, Xc, base = problem
    inv = np.array([1 / 2.0])
    K, b = ipm.gaussian_gram(Xc, Xc, inv), ipm.gaussian_gram_dot(Xc, Xt, pt, inv)
    c = pt @ ipm.gaussian_gram_dot(Xt, Xt, pt, inv)
    p0 = np.full(3, 0.1) if linear else np.ones(17)
    params, m, v, w, s, hist = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.empty(17), np.empty(17), np.empty(30)
    ipm.mmd_epochs(K, b, c, params, m, v, int(linear), Xc, base, 0.0, 0.03, 0, 12, hist, w, s)
    ipm.mmd_epochs(K, b, c, params, m, v, int(linear), Xc, base, 0.0, 0.03, 12, 30, hist, w, s)  # resumed in blocks
    rp, rm, rv = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for e in range(30):
        rw, _ = ref_weights(rp, linear, Xc, base, 0.0)
        assert_allclose(hist[e], ref_mmd2(Xc, rw, Xt, pt, [1.0]), rtol=1e-9, atol=1e-14)
        rp, rm, rv = _ref_weight_step(2 * (K @ rw - b), rp, rm, rv, e + 1, 0.03, linear, Xc, base, 0.0)
    # 30 Adam steps of the same maths; rounding differences stay at the 1e-12 level
    assert_allclose(w, ref_weights(rp, linear, Xc, base, 0.0)[0], rtol=1e-9)


def test_sipm_epochs_match_a_numpy_loop(problem, rng):
    Xt, pt, Xc, base = problem
    theta0, bias0 = rng.uniform(-0.5, 0.5, (3, 4)), rng.uniform(-0.5, 0.5, 4)
    XT, n_t = ipm.padded_transpose(np.vstack([Xt, Xc])), len(Xt)
    lo, hi, seg = two_chunks_each(n_t, 17)
    params, theta, bias = np.ones(17), ipm.padded_rows(theta0, 4), bias0.copy()
    state = [np.zeros(17), np.zeros(17)] + [np.zeros_like(a) for a in (theta, theta, bias, bias)]
    sig, t_cache, ok = np.empty((4, 17)), np.empty((4, 6)), np.zeros(1, dtype=np.int64)
    hist, w, s = np.empty(8), np.empty(17), np.empty(17)
    ipm.sipm_epochs(XT, Xc, n_t, pt, base, 0.0, 0, params, *state[:2], theta, bias, *state[2:], sig, t_cache, ok,
                    lo, hi, seg, 3, 0.3, 0.03, 0, 8, hist, w, s)
    assert np.all(theta[:, 3] == 0)  # Adam never moves the padding covariate's coefficients
    theta = theta[:, :3].T
    rp, rm, rv = np.ones(17), np.zeros(17), np.zeros(17)
    th, bi = theta0.copy(), bias0.copy()
    mt, vt, mb, vb = np.zeros_like(th), np.zeros_like(th), np.zeros_like(bi), np.zeros_like(bi)
    for e in range(8):
        rw, _ = ref_weights(rp, False, Xc, base, 0.0)
        for step in range(3):
            D, d_th, d_b, _ = ref_sipm_gaps(Xt, pt, Xc, rw, th, bi)
            t = e * 3 + step + 1
            th, mt, vt = ref_adam(th, -2 * D * d_th, mt, vt, t, 0.3)
            bi, mb, vb = ref_adam(bi, -2 * D * d_b, mb, vb, t, 0.3)
        D, _, _, sc = ref_sipm_gaps(Xt, pt, Xc, rw, th, bi)
        k = np.argmax(D ** 2)
        assert_allclose(hist[e], D[k] ** 2, rtol=1e-8)
        rp, rm, rv = _ref_weight_step(-2 * D[k] * sc[:, k], rp, rm, rv, e + 1, 0.03, False, Xc, base, 0.0)
    assert_allclose(theta, th, rtol=1e-8, atol=1e-12)  # the same iteration; rounding grows mildly over 24 steps
    assert_allclose(w, ref_weights(rp, False, Xc, base, 0.0)[0], rtol=1e-8)


@pytest.mark.parametrize("clip, tau", [(0.1, 0.3), (0.0, 0.0)])
def test_wass_epochs_match_a_numpy_loop(problem, rng, clip, tau):
    Xt, pt, Xc, base = problem
    H, E, S, R = 5, 6, 2, 4
    W0, cb0, v0, e0 = rng.uniform(-.5, .5, (3, H)), rng.uniform(-.5, .5, H), rng.uniform(-.5, .5, H), np.array([.1])
    ic, it, mix = rng.integers(0, 17, (E, S, R)), rng.integers(0, 23, (E, S, R)), rng.random((E, S, R))
    XT, n_t = ipm.padded_transpose(np.vstack([Xt, Xc])), len(Xt)
    lo, hi, seg = two_chunks_each(n_t, 17)
    params, W, cb, v, eo = np.ones(17), ipm.padded_rows(W0, 4), cb0.copy(), v0.copy(), e0.copy()
    moments = [np.zeros_like(a) for a in (W, W, cb, cb, v, v, eo, eo)]
    t_cache, ok, phi = np.empty((H, 6)), np.zeros(1, dtype=np.int64), np.empty((H, 17))
    hist, w, s = np.empty(E), np.empty(17), np.empty(17)
    ipm.wass_epochs(XT, Xc, n_t, pt, base, 0.0, 0, params, np.zeros(17), np.zeros(17), W, cb, v, eo, *moments, ic, it,
                    mix, 0.1, clip, tau, t_cache, ok, phi, lo, hi, seg, S, 0.3, 0.03, 0, E, hist, w, s)
    assert np.all(W[:, 3] == 0)  # Adam and clipping never move the padding covariate's coefficients
    W = W[:, :3].T
    rp, rm, rv = np.ones(17), np.zeros(17), np.zeros(17)
    net = [W0.copy(), cb0.copy(), v0.copy(), e0.copy()]
    mom = [[np.zeros_like(a), np.zeros_like(a)] for a in net]

    def objective(net_, rw, Xhat):
        gap = pt @ ref_critic(Xt, *net_, 0.1) - rw @ ref_critic(Xc, *net_, 0.1)
        return -gap ** 2 + (ref_penalty(Xhat, *net_[:3], 0.1, tau) if tau else 0.0)

    for e in range(E):
        rw, _ = ref_weights(rp, False, Xc, base, 0.0)
        for step in range(S):
            Xhat = mix[e, step][:, None] * Xc[ic[e, step]] + (1 - mix[e, step][:, None]) * Xt[it[e, step]]
            grads = [central_diff(lambda q, j=j: objective(net[:j] + [q] + net[j + 1:], rw, Xhat), net[j])
                     for j in range(4)]
            for j in range(4):
                net[j], mom[j][0], mom[j][1] = ref_adam(net[j], grads[j], *mom[j], e * S + step + 1, 0.3)
            if clip:
                net[0], net[2] = np.clip(net[0], -clip, clip), np.clip(net[2], -clip, clip)
        f = ref_critic(Xc, *net, 0.1)
        D = pt @ ref_critic(Xt, *net, 0.1) - rw @ f
        assert_allclose(hist[e], D ** 2, rtol=1e-5)
        rp, rm, rv = _ref_weight_step(-2 * D * f, rp, rm, rv, e + 1, 0.03, False, Xc, base, 0.0)
    # the reference ascends with finite-difference gradients (error ~1e-9): agreement to that level after 12 steps
    assert_allclose(W, net[0], rtol=1e-5, atol=1e-7)
    assert_allclose(w, ref_weights(rp, False, Xc, base, 0.0)[0], rtol=1e-6)


def test_chunks_cover_each_segment_once():
    lo, hi, seg = ipm.chunk_bounds(300, 70_000)
    assert lo[0] == 0 and np.all(lo[1:] == hi[:-1]) and hi[-1] == 70_300
    assert np.all(hi[seg == 0] <= 300) and np.all(lo[seg == 1] >= 300)
    assert np.sum(seg == 0) == 1 and np.sum(seg == 1) == 64  # at least 512 units a chunk, at most 64 chunks a segment


# ---------------------------------------------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------------------------------------------
def _design(rng, n=300):
    """Confounded design: treatment depends on X0 (linear) and X1^2, so the raw arms are imbalanced."""
    X = rng.normal(size=(n, 3))
    t = rng.binomial(1, 1 / (1 + np.exp(-(0.8 * X[:, 0] + 0.5 * X[:, 1] ** 2 - 0.5))))
    return X, t


FAST = dict(n_epochs=60, n_sigmoids=20, hidden=20, adv_steps=2, random_state=0)


def test_qp_meets_kkt_and_beats_every_adam_iterate(rng):
    X, t = _design(rng, 200)
    qp = CBIPM(solver="qp").fit(X, t)
    adam = CBIPM(n_epochs=300).fit(X, t)
    assert qp.converged_ and qp.ipm_history_ is None
    # KKT of min w'Kw - 2b'w on the simplex: gradient equal (= nu) on the support, >= nu off it.
    Z = (X - X.mean(0)) / X.std(0)
    Xc, Xt = Z[t == 0], Z[t == 1]
    inv = np.array([1 / 200.0])
    K, b = ipm.gaussian_gram(Xc, Xc, inv), ipm.gaussian_gram_dot(Xc, Xt, np.full(len(Xt), 1 / len(Xt)), inv)
    w = np.asarray(qp.weights_)[t == 0] / t.sum()
    grad = 2 * (K @ w - b)
    support = w > 1e-6
    nu = np.median(grad[support])
    # interior-point tolerance 1e-10 on a kernel matrix with entries <= 1: multipliers agree to ~1e-7
    assert_allclose(grad[support], nu, atol=1e-6, rtol=0)
    assert np.all(grad[~support] >= nu - 1e-6)
    # the exact optimum is below every Adam iterate, and Adam's path keeps the weights more spread (spec sec. 6)
    assert qp.ipm_[0] <= adam.ipm_history_["control"].min() + 1e-12
    ess = [1 / np.sum((np.asarray(m.weights_)[t == 0] / t.sum()) ** 2) for m in (qp, adam)]
    assert ess[0] < ess[1]


@pytest.mark.parametrize("ipm_name", ["sipm", "wass"])
def test_random_state_makes_fits_reproducible(rng, ipm_name):
    X, t = _design(rng, 150)
    est = CBIPM(ipm=ipm_name, **FAST)
    first, second = clone(est).fit(X, t).weights_, clone(est).fit(X, t).weights_
    assert_allclose(first, second, rtol=0, atol=0)
    other = clone(est).set_params(random_state=1).fit(X, t).weights_
    assert not np.allclose(first, other, rtol=1e-6)
    gen = clone(est).set_params(random_state=np.random.default_rng(5))
    assert np.all(np.isfinite(gen.fit(X, t).weights_))


@pytest.mark.parametrize("ipm_name", ["mmd", "sipm", "wass"])
def test_results_do_not_depend_on_the_number_of_threads(rng, ipm_name):
    # 7 covariates: the kernels' second block of four (three real, one padding) is exercised as well; each sigmoid
    # or hidden unit sums its chunks in a fixed order whichever thread runs it, so the weights are bitwise equal
    X = np.c_[_design(rng, 1200)[0], rng.normal(size=(1200, 4))]
    t = rng.binomial(1, 1 / (1 + np.exp(-X[:, 0] + 0.5 * X[:, 5])))
    est = CBIPM(ipm=ipm_name, **dict(FAST, n_epochs=20))
    one = clone(est).set_params(n_jobs=1).fit(X, t).weights_
    assert_allclose(clone(est).set_params(n_jobs=2).fit(X, t).weights_, one, rtol=0, atol=0)
    assert_allclose(clone(est).set_params(n_jobs=-1).fit(X, t).weights_, one, rtol=0, atol=0)


def test_a_thread_request_beyond_numbas_is_reduced_with_a_warning(rng):
    import numba

    X, t = _design(rng, 200)
    top = numba.config.NUMBA_NUM_THREADS
    est = CBIPM("ATE", ipm="sipm", **dict(FAST, n_epochs=20))
    assert np.all(clone(est).set_params(n_jobs=1).fit(X, t).n_threads_ == 1)
    assert np.all(clone(est).set_params(n_jobs=-1).fit(X, t).n_threads_ == top)
    with pytest.warns(UserWarning, match=rf"n_jobs={top + 3} asks for {top + 3} threads; numba has {top}"):
        assert np.all(clone(est).set_params(n_jobs=top + 3).fit(X, t).n_threads_ == top)
    with pytest.warns(UserWarning, match=rf"n_jobs={-top - 5} asks for -4 threads; .* so 1 are used"):
        assert np.all(clone(est).set_params(n_jobs=-top - 5).fit(X, t).n_threads_ == 1)
    assert np.all(clone(est).fit(X, t).n_threads_ == 1)  # None: 200 units x 20 sigmoids is below 50,000 pairs


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
@pytest.mark.parametrize("ipm_name, model", [("mmd", "nonpara"), ("mmd", "linear"), ("sipm", "nonpara"),
                                             ("wass", "nonpara"), ("wass", "linear")])
def test_balance_improves_and_weights_have_the_documented_scale(rng, estimand, ipm_name, model):
    X, t = _design(rng, 400)
    params = {"mmd": dict(n_epochs=300), "sipm": dict(FAST, n_epochs=300),
              "wass": dict(n_epochs=300, random_state=0)}[ipm_name]
    if ipm_name == "mmd" and model == "nonpara":
        params["bandwidth"] = [1.0, 3.0]  # a narrower kernel also sees X1^2 (the default 10 is nearly linear)
    est = CBIPM(estimand, ipm=ipm_name, model=model, **params).fit(X, t)
    w = np.asarray(est.weights_)
    table = balance_table(X, t, w, estimand=estimand)
    # mean balance: the largest |SMD| shrinks (simulation with strong confounding: raw max |SMD| ~ 0.5)
    assert table["smd_adj"].abs().max() < 0.6 * table["smd_un"].abs().max()
    if estimand == "ATT":
        assert_allclose(w[t == 1], 1.0, rtol=0)
        assert_allclose(w[t == 0].sum(), t.sum(), rtol=1e-12)
    else:
        assert_allclose([w[t == 1].sum(), w[t == 0].sum()], len(t), rtol=1e-12)
        if model == "linear":
            assert np.all(w >= 1 - 1e-12)  # w = 1/n + (1 - n_g/n) softmax, times n: at least 1
    assert est.ipm_history_.shape == (300, 1 if estimand == "ATT" else 2)


def test_sample_weights_equal_repeated_rows(rng):
    X, t = _design(rng, 80)
    k = rng.integers(0, 3, 80)
    keep = np.repeat(np.arange(80), k)
    for model in ("nonpara", "linear"):
        est = CBIPM("ATE", model=model, n_epochs=50, random_state=0)  # linear: same initial beta
        weighted = np.asarray(clone(est).fit(X, t, sample_weight=k.astype(float)).weights_)
        repeated = np.asarray(clone(est).fit(X[keep], t[keep]).weights_)
        per_unit = np.bincount(keep, weights=repeated, minlength=80)
        # same iterates up to summation order (the per-unit logit gradient makes Adam see k copies)
        assert_allclose(per_unit, weighted, rtol=1e-8, atol=1e-12)
        assert np.all(weighted[k == 0] == 0)


def test_predict_weights_only_for_the_linear_model(rng):
    X, t = _design(rng, 200)
    assert not hasattr(CBIPM(), "predict_weights")
    lin = CBIPM("ATE", model="linear", n_epochs=50).fit(X, t)
    assert_allclose(lin.predict_weights(X, t), lin.weights_, rtol=1e-10)
    assert lin.coef_.shape == (2, 3)
    Xn, tn = _design(np.random.default_rng(1), 120)
    new = lin.predict_weights(Xn, tn)
    assert_allclose([new[tn == 1].sum(), new[tn == 0].sum()], 120, rtol=1e-12)
    frame = pd.DataFrame(X, columns=["a", "b", "c"], index=np.arange(200) + 7)
    nonpara = CBIPM(n_epochs=20).fit(frame, t)
    assert nonpara.weights_.index.equals(frame.index)
    # score refits a nonpara weighter on the scored sample (no predict_weights to call)
    assert nonpara.score(frame, t) == pytest.approx(clone(nonpara).score(frame, t), rel=1e-12)


@pytest.mark.parametrize("params, match", [
    (dict(ipm="energy"), r"ipm='energy' is not supported; choose one of \['mmd', 'sipm', 'wass'\]"),
    (dict(model="logit"), "model='logit'"),
    (dict(solver="qp", ipm="sipm"), "solver='qp'"),
    (dict(n_epochs=0), "n_epochs=0"),
    (dict(lr=-1.0), "lr=-1.0"),
    (dict(bandwidth=[1.0, -2.0]), "bandwidth="),
    (dict(wass_clip=0.0), "wass_clip="),
    (dict(n_jobs=0), "n_jobs=0 must be None or a non-zero integer"),
    (dict(n_jobs=1.5), "n_jobs=1.5"),
    (dict(estimand="ATC"), r"estimand='ATC' is not supported here; choose one of \['ATT', 'ATE'\]"),
])
def test_bad_parameters_name_the_problem(rng, params, match):
    X, t = _design(rng, 50)
    with pytest.raises(ValueError, match=match):
        CBIPM(**params).fit(X, t)


@pytest.mark.parametrize("ipm_name", ["sipm", "wass"])
def test_progress_bar_runs_epochs_in_blocks_with_identical_results(rng, ipm_name):
    pytest.importorskip("tqdm")
    X, t = _design(rng, 60)
    est = CBIPM(ipm=ipm_name, **dict(FAST, n_epochs=250))  # verbose: 100 blocks of 2 epochs, resumed from state
    assert_allclose(clone(est).set_params(verbose=1).fit(X, t).weights_, clone(est).fit(X, t).weights_, rtol=0)


def test_progress_bar_is_optional(rng, monkeypatch):
    X, t = _design(rng, 60)
    quiet = CBIPM(n_epochs=30).fit(X, t).weights_
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # tqdm absent: no bar, no error
    assert_allclose(CBIPM(n_epochs=30, verbose=1).fit(X, t).weights_, quiet, rtol=0)


def test_import_balance_does_not_load_numba():
    code = "import sys, balance; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mmd_refuses_a_kernel_matrix_beyond_the_memory_limit(rng, monkeypatch):
    from balance.weights import _cbipm_solve

    monkeypatch.setattr(_cbipm_solve, "_MMD_MEMORY", 8 * 30 ** 2)  # allow a 30 x 30 kernel matrix at most
    X, t = _design(rng, 100)
    with pytest.raises(ValueError, match="kernel matrix of the weighted arm"):
        CBIPM(n_epochs=5).fit(X, t)
    CBIPM(ipm="sipm", n_epochs=5, n_sigmoids=5, random_state=0).fit(X, t)  # O(n) memory: unaffected


def test_simplex_qp_reports_a_negative_weight_beyond_round_off_as_unsolved(monkeypatch):
    """solve_simplex_qp clips only round-off below 0 (interior-point iterates sit at ±1e-12); a solver point with a
    clearly negative weight is returned clipped but flagged unsolved, so CBIPM reports it (never silently)."""
    from balance.weights import _qp

    fake = _qp.QPResult(x=np.array([1.2, -0.2]), status="Solved", converged=True, infeasible=False, n_iter=3,
                        polished=False, residual=0.0)
    monkeypatch.setattr(_qp, "solve_qp", lambda *args, **kwargs: fake)
    w, solved, _ = _qp.solve_simplex_qp(np.eye(2), np.array([0.5, 0.5]))
    assert not solved and np.all(w >= 0)
    fake_roundoff = _qp.QPResult(x=np.array([1.0, -1e-12]), status="Solved", converged=True, infeasible=False,
                                 n_iter=3, polished=False, residual=0.0)
    monkeypatch.setattr(_qp, "solve_qp", lambda *args, **kwargs: fake_roundoff)
    assert _qp.solve_simplex_qp(np.eye(2), np.array([0.5, 0.5]))[1]
