"""The exponential-tilting kernels against plain numpy."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from balance._kernels._tilt import group_moments, standardize_rows, tilt_pass, tilt_pass_rows


def _numpy_tilt(X, rows, c, s, center, scale, beta):
    Z = np.column_stack([np.ones(len(rows)), (X[rows] - center) / scale])
    t = c[rows] * np.exp(s[rows] * (Z @ beta))
    return t.sum(), Z.T @ (s[rows] * t), (Z * t[:, None]).T @ Z


def test_tilt_pass_matches_numpy(rng):
    X = rng.normal(size=(10_000, 4)) * [1, 10, 100, 0.1] + [0, 5, -50, 1]
    rows = np.flatnonzero(rng.random(10_000) < 0.6)
    c = rng.uniform(0.5, 2, rows.size)
    s = np.where(rng.random(rows.size) < 0.5, 1.0, -1.0)
    center, scale = X.mean(axis=0), X.std(axis=0)
    zt = standardize_rows(X, rows, center, 1 / scale)
    assert_allclose(zt, ((X[rows] - center) / scale).T, rtol=1e-14, atol=1e-14)
    beta = rng.normal(scale=0.3, size=5)
    for want_hess in (True, False):
        ours = tilt_pass(zt, c, s, beta, want_hess)
        Z = np.column_stack([np.ones(rows.size), zt.T])
        t = c * np.exp(s * (Z @ beta))
        ref = (t.sum(), Z.T @ (s * t), (Z * t[:, None]).T @ Z if want_hess else np.zeros((5, 5)))
        # sums of ~6000 terms in another order: agreement to 1e-12 relative
        for a, b in zip(ours, ref):
            assert_allclose(a, b, rtol=1e-12, atol=1e-12 * max(np.abs(b).max(), 1))
        assert_array_equal(ours[2], ours[2].T)


def test_tilt_pass_rows_matches_numpy_on_any_layout(rng):
    # the fused kernel of dask blocks: rows gathered and standardised chunk by chunk, X in C or Fortran order,
    # c and s per row of X; more rows than one chunk (4096) and a last partial chunk
    X = rng.normal(size=(9_000, 3)) * [1, 10, 0.1] + [0, 5, 1]
    rows = np.flatnonzero(rng.random(9_000) < 0.7)
    c = rng.uniform(0.5, 2, 9_000)
    s = np.where(rng.random(9_000) < 0.5, 1.0, -1.0)
    center, scale = X.mean(axis=0), X.std(axis=0)
    beta = rng.normal(scale=0.3, size=4)
    ref = _numpy_tilt(X, rows, c, s, center, scale, beta)
    for layout in (np.ascontiguousarray(X), np.asfortranarray(X)):
        ours = tilt_pass_rows(layout, rows, center, 1 / scale, c, s, beta, True)
        for a, b in zip(ours, ref):
            assert_allclose(a, b, rtol=1e-12, atol=1e-12 * max(np.abs(b).max(), 1))
    total, grad, hess = tilt_pass_rows(X, rows[:0], center, 1 / scale, c, s, beta, False)  # an empty block
    assert total == 0 and not grad.any() and not hess.any()


def test_overflow_gives_inf_not_an_error():
    total, grad, hess = tilt_pass(np.array([[1000.0, 0.0]]), np.ones(2), np.ones(2), np.array([0.0, 1.0]))
    assert np.isinf(total)


def test_group_moments_match_numpy(rng):
    X = rng.normal(size=(500, 3)) * [1, 1e3, 1e-3] + [1e4, 0, 1]
    group = rng.integers(0, 2, 500)
    w = rng.uniform(0, 2, 500)
    w[:20] = 0.0  # zero-weight rows are left out, as if absent
    X[:20] = 1e9
    wsum, w2sum, mean, m2, lo, hi = group_moments(X, group, w)
    for g in (0, 1):
        keep = (group == g) & (w > 0)
        m = np.average(X[keep], axis=0, weights=w[keep])
        assert_allclose(wsum[g], w[keep].sum(), rtol=1e-13)
        assert_allclose(w2sum[g], np.sum(w[keep] ** 2), rtol=1e-13)
        assert_allclose(mean[g], m, rtol=1e-13)
        # West's update is stable: no loss from the large mean of column 0
        assert_allclose(m2[g], (w[keep] @ (X[keep] - m) ** 2), rtol=1e-10)
        assert_array_equal(lo[g], X[keep].min(axis=0))
        assert_array_equal(hi[g], X[keep].max(axis=0))


def test_kernel_and_numpy_paths_give_the_same_weights(lalonde, monkeypatch):
    from balance import EntropyBalance, InverseProbabilityTilting
    from balance.weights import _tilt

    from .conftest import COVARIATES

    X, t = lalonde[COVARIATES], lalonde["treat"]
    dense = [EntropyBalance("ATE").fit(X, t).weights_, InverseProbabilityTilting("ATE").fit(X, t).weights_]
    monkeypatch.setattr(_tilt, "_KERNEL_ROWS", 0)  # force the numba kernel on this small sample
    kernel = [EntropyBalance("ATE").fit(X, t).weights_, InverseProbabilityTilting("ATE").fit(X, t).weights_]
    for a, b in zip(dense, kernel):
        # both converge to rounding level; sums in another order: 1e-10 relative
        assert_allclose(a, b, rtol=1e-10)
