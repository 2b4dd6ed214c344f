"""Uniform transformer and weights by uniform transformer (Yu & Wang, arXiv:2008.03738).

References used: closed forms (profile densities, Hermite-based kernel moments, hand-written kernel sums with
scipy.stats.norm), exact identities (equal-count cells, exact basis balance of the series weights, the ATE as
π ATT + (1 - π) ATC), the probability integral transform (KS tests), and a known density ratio (simulation).
"""

import os

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import integrate, stats
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from balance import UniformTransformer, UniformTransformerWeights
from balance.weights._uniform import (
    KERNEL_CODES, gaussian_kernel_coef, kernel_sums, projection_basis, projection_raw_weights,
)
from balance.weights._uniform_transformer import joint_bin_counts, profile_cdf

PROFILE_DENSITIES = {
    "constant": lambda t: np.ones_like(t),
    "linear": lambda t: 2 - 4 * np.abs(t),
    "quadratic": lambda t: np.where(np.abs(t) > 0.25, 16 * (np.abs(t) - 0.5) ** 2, 2 - 16 * t ** 2),
}


# ---------------------------------------------------------------------------------------------------------------
# transformer
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", list(PROFILE_DENSITIES))
def test_profiles_are_the_cdfs_of_the_stated_densities(profile):
    t = np.linspace(-0.5, 0.5, 2001)
    H = profile_cdf(t, profile)
    # reference: the CDF is the integral of the spec's density (quadrature error far below 1e-9)
    expected = [integrate.quad(PROFILE_DENSITIES[profile], -0.5, s, points=[-0.25, 0, 0.25])[0] for s in t[::50]]
    assert_allclose(H[::50], expected, rtol=0, atol=1e-9)
    assert np.all(np.diff(H) >= 0) and H[0] == 0 and H[-1] == 1


@pytest.mark.parametrize(("n", "d", "expected"), [(1000, 2, [32, 31]), (500, 3, [8, 8, 7]), (1000, 3, [10, 10, 10]),
                                                  (7, 2, [3, 2]), (1, 3, [1, 1, 1])])
def test_bin_counts_follow_the_r_rule(n, d, expected):
    # by hand: floor(n^(1/d)) each, raised by one in turn while the product stays below n
    assert joint_bin_counts(n, d).tolist() == expected


@pytest.mark.parametrize("profile", list(PROFILE_DENSITIES))
def test_marginal_mode_makes_every_margin_uniform(profile):
    X = np.random.default_rng(1).lognormal(size=(1500, 3))
    U = UniformTransformer(marginal=True, profile=profile, random_state=0).fit_transform(X)
    # each reference point keeps its own 1/n bin, so the KS distance is at most 1/n
    for j in range(3):
        assert stats.kstest(U[:, j], "uniform").pvalue > 0.5
        ranks = stats.rankdata(X[:, j])
        assert np.all((U[:, j] >= (ranks - 1) / 1500) & (U[:, j] <= ranks / 1500))


@pytest.mark.parametrize("profile", list(PROFILE_DENSITIES))
def test_joint_mode_passes_ks_on_the_sanity_design(profile):
    X = np.random.default_rng(2).normal(size=(1000, 2))
    U = UniformTransformer(profile=profile, random_state=0).fit_transform(X)
    for j in range(2):
        assert stats.kstest(U[:, j], "uniform").pvalue > 0.05


def test_joint_cells_hold_equal_counts():
    X = np.random.default_rng(3).normal(size=(997, 3))
    tr = UniformTransformer(random_state=4).fit(X)
    U = tr.transform(X)
    s = tr.n_bins_
    cells = np.minimum((U * s).astype(int), s - 1)
    # nested equal-count binning: siblings differ by at most one point, at every level
    parent_counts = np.array([len(X)])
    parent = np.zeros(len(X), dtype=int)
    for j in range(3):
        child = parent * s[j] + cells[:, j]
        counts = np.bincount(child, minlength=len(parent_counts) * s[j]).reshape(-1, s[j])
        lo, hi = parent_counts // s[j], -(-parent_counts // s[j])
        assert np.all((counts >= lo[:, None]) & (counts <= hi[:, None]))
        parent, parent_counts = child, counts.ravel()


def test_stored_bins_reproduce_the_fit_map():
    rng = np.random.default_rng(5)
    X = rng.gamma(2.0, size=(600, 2))
    for marginal in (False, True):
        tr = UniformTransformer(marginal=marginal, profile="quadratic", random_state=6).fit(X)
        U = tr.transform(X)
        perm = rng.permutation(len(X))
        # the map is pointwise: any subset, in any order, maps to the same values
        assert_array_equal(tr.transform(X[perm]), U[perm])
        assert_array_equal(tr.transform(X[:7]), U[:7])
        # refitting on the rows in another order gives the same map (random draws do not follow row order)
        assert_array_equal(UniformTransformer(marginal=marginal, profile="quadratic", random_state=6)
                           .fit(X[perm]).transform(X), U)
        # first coordinate: a CDF, non-decreasing
        order = np.argsort(X[:, 0])
        assert np.all(np.diff(U[order, 0]) >= 0)


def test_random_state_determines_the_map():
    X = np.random.default_rng(7).normal(size=(300, 2))
    a = UniformTransformer(random_state=1).fit_transform(X)
    assert_array_equal(clone(UniformTransformer(random_state=1)).fit_transform(X), a)
    assert not np.array_equal(UniformTransformer(random_state=2).fit_transform(X), a)


def test_new_points_outside_the_range_are_reported_or_covered():
    rng = np.random.default_rng(8)
    X, new = rng.normal(size=(200, 2)), rng.normal(3, 1, size=(50, 2))
    with pytest.warns(UserWarning, match="outside the fitted range"):
        U = UniformTransformer(random_state=0).fit(X).transform(new)
    assert U.min() >= 0 and U.max() <= 1
    covered = UniformTransformer(random_state=0).fit(X, cover=new).transform(new)
    assert covered.min() >= 0 and covered.max() <= 1


@parametrize_with_checks([UniformTransformer(random_state=0), UniformTransformer(marginal=True, random_state=0)])
def test_scikit_learn_transformer_checks(estimator, check):
    check(estimator)


def test_transformer_bad_input():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="constant"):
        UniformTransformer().fit(np.column_stack([X, np.ones(50)]))
    with pytest.raises(ValueError, match="profile="):
        UniformTransformer(profile="cubic").fit(X)


# ---------------------------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------------------------
def _numpy_kernel(name, u, order=2):
    """Plain-numpy one-coordinate kernels (standard textbook forms)."""
    inside = np.abs(u) <= 1
    forms = {
        "epanechnikov": 0.75 * (1 - u ** 2) * inside, "uniform": 0.5 * inside, "triangular": (1 - np.abs(u)) * inside,
        "biweight": 15 / 16 * (1 - u ** 2) ** 2 * inside, "triweight": 35 / 32 * (1 - u ** 2) ** 3 * inside,
        "tricube": 70 / 81 * (1 - np.abs(u) ** 3) ** 3 * inside, "cosine": np.pi / 4 * np.cos(np.pi * u / 2) * inside,
        "silverman": 0.5 * np.exp(-np.abs(u) / np.sqrt(2)) * np.sin(np.abs(u) / np.sqrt(2) + np.pi / 4),
    }
    if name == "gaussian":
        return stats.norm.pdf(u) * np.polynomial.polynomial.polyval(u ** 2, gaussian_kernel_coef(order))
    return forms[name]


CASES = [(k, 2) for k in KERNEL_CODES] + [("gaussian", o) for o in (4, 6, 8, 10)]


@pytest.mark.parametrize(("kernel", "order"), CASES)
def test_kernel_sums_match_a_numpy_reference(kernel, order):
    rng = np.random.default_rng(9)
    A, B, W = rng.random((37, 3)), rng.random((2500, 3)), rng.normal(size=(2500, 2))  # > one block of B
    h = 0.3
    K = np.prod(_numpy_kernel(kernel, (A[:, None, :] - B[None, :, :]) / h, order), axis=2) / h ** 3
    # same sums in another order: agreement to rounding, scaled by the sum of |terms|
    assert_allclose(kernel_sums(A, B, W, h, kernel, order), K @ W, rtol=1e-11, atol=1e-11 * np.abs(K).sum(1).max())


@pytest.mark.parametrize(("kernel", "order"), CASES)
def test_kernels_are_kernels_of_their_order(kernel, order):
    # integrate K(u) u^m from the compiled kernel on a fine grid (Simpson: error << 1e-6 for these smooth forms)
    reach = {"gaussian": 12, "silverman": 60}.get(kernel, 1)  # Silverman's tails decay like exp(-|u|/sqrt(2))
    u = np.linspace(-reach, reach, 120001)
    values = kernel_sums(u[:, None], np.zeros((1, 1)), np.ones((1, 1)), 1.0, kernel, order)[:, 0]
    true_order = 4 if kernel == "silverman" else order
    assert_allclose(integrate.simpson(values, x=u), 1.0, rtol=0, atol=1e-6)
    for m in range(1, true_order):
        assert_allclose(integrate.simpson(values * u ** m, x=u), 0.0, rtol=0, atol=1e-6)
    assert abs(integrate.simpson(values * u ** true_order, x=u)) > 1e-3


def test_vectorised_exp_matches_numpy():
    from balance._kernels._uniform import scale_by_exp_neg_half

    s2 = np.concatenate([np.random.default_rng(0).random(100000) * 1415, np.linspace(0, 1415, 5001)])
    val = np.ones_like(s2)
    scale_by_exp_neg_half(s2, val, np.empty_like(s2), np.empty(len(s2), dtype=np.int64))
    assert_allclose(val, np.exp(-0.5 * s2), rtol=5e-16 * 2, atol=0)  # a few ulp
    tiny = np.array([1416.0, 1e4])
    out = np.ones(2)
    scale_by_exp_neg_half(tiny, out, np.empty(2), np.empty(2, dtype=np.int64))
    assert_array_equal(out, 0.0)  # below exp(-708), documented as zero


# ---------------------------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------------------------
def _design(n=600, d=2, seed=10):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    a = rng.binomial(1, 1 / (1 + np.exp(-(0.5 * X[:, 0] - 0.4 * X[:, 1]))))
    y = 1 + X[:, 0] + X[:, 1] ** 2 + 2 * a + rng.normal(size=n)
    return X, a, y


def test_weight_scale_and_default_bandwidth():
    X, a, _ = _design()
    w = UniformTransformerWeights(random_state=0).fit(X, a)
    assert_allclose(w.weights_[a == 1], 1.0, rtol=0, atol=0)
    # the paper's weights a_i / sum(a) sum to one: ours are n1 times them
    assert_allclose(w.weights_[a == 0].sum(), a.sum(), rtol=1e-12)
    assert_allclose(w.arms_[0].ratio.sum(), 1.0, rtol=1e-12)
    assert w.bandwidth_ == len(a) ** (-1 / 2)
    atc = UniformTransformerWeights("ATC", random_state=0).fit(X, a)
    assert_allclose(atc.weights_[a == 1].sum(), (1 - a).sum(), rtol=1e-12)


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_weights_equal_the_density_ratio_computed_by_hand(kernel):
    rng = np.random.default_rng(11)
    X = np.r_[rng.random(300), rng.beta(2, 1, 200)][:, None]
    a = np.r_[np.zeros(300), np.ones(200)].astype(int)
    h = 0.08
    w = UniformTransformerWeights(kernel=kernel, bandwidth=h, random_state=3).fit(X, a)
    U = w.transformer_.transform(X)[:, 0]  # the (now known) fitted transformer
    diff = (U[a == 0][:, None] - U[a == 1][None, :]) / h
    K = stats.norm.pdf(diff) if kernel == "gaussian" else 0.75 * np.clip(1 - diff ** 2, 0, None)
    by_hand = K.sum(axis=1) / h
    assert_allclose(w.weights_[a == 0], 200 * by_hand / by_hand.sum(), rtol=1e-10)


def _smoothed_ratio(u, h):
    """E K_h(u - V) for V ~ Beta(2, 1) (density 2v on [0, 1]), in closed form: the kernel estimate's mean."""
    lo, hi = (u - 1) / h, u / h
    return 2 * (u * (stats.norm.cdf(hi) - stats.norm.cdf(lo)) + h * (stats.norm.pdf(hi) - stats.norm.pdf(lo)))


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="4e8 kernel pairs: too slow uncompiled")
def test_weights_recover_a_known_density_ratio():
    # controls U(0, 1), so the true transformer is the identity; treated Beta(2, 1): f_T / f_C = 2x. The kernel
    # estimate's mean is the smoothed ratio (boundary loss included), and self-normalisation divides by its mean.
    rng = np.random.default_rng(12)
    n0 = n1 = 20000
    h = 0.1
    X = np.r_[rng.random(n0), rng.beta(2, 1, n1)][:, None]
    a = np.r_[np.zeros(n0), np.ones(n1)].astype(int)
    check = integrate.quad(lambda v: 2 * v * stats.norm.pdf((0.97 - v) / h) / h, 0, 1, epsabs=1e-12)[0]
    assert_allclose(_smoothed_ratio(np.array([0.97]), h), check, rtol=1e-8)  # the closed form itself
    w = UniformTransformerWeights(bandwidth=h, random_state=0).fit(X, a)
    x0 = X[a == 0, 0]
    ratio, truth = n0 * w.arms_[0].ratio, _smoothed_ratio(x0, h)
    truth /= truth.mean()
    for lo in np.arange(0.0, 1.0, 0.2):
        inside = (x0 >= lo) & (x0 < lo + 0.2)
        # sd of a bin mean about 0.012 (pointwise sd (2x R(K) / (n1 h))^(1/2), little averaging over two bandwidths),
        # plus about 0.01 from the data-driven transformer (ECDF error, n0 = 20000): atol = 0.05 is about 3 sd
        assert_allclose(ratio[inside].mean(), truth[inside].mean(), rtol=0, atol=0.05)


def test_projection_weights_balance_the_basis_exactly():
    rng = np.random.default_rng(13)
    U0, U1 = rng.random((400, 3)), rng.beta(2, 2, (300, 3))
    for interact in (False, True):
        D0, D1 = projection_basis(U0, 2, interact), projection_basis(U1, 2, interact)
        raw = projection_raw_weights(D0, D1)
        assert_allclose(raw @ D0, D1.sum(axis=0), rtol=1e-9, atol=1e-9)
    assert projection_basis(U0, 2, True).shape[1] == 10  # 1 + 3 + 6 monomials


def test_ate_is_the_share_weighted_att_and_atc():
    X, a, y = _design(seed=14)
    kw = dict(random_state=5, profile="linear")
    means = {}
    for est in ("ATT", "ATC", "ATE"):
        w = np.asarray(UniformTransformerWeights(est, **kw).fit(X, a).weights_)
        means[est] = np.average(y[a == 1], weights=w[a == 1]) - np.average(y[a == 0], weights=w[a == 0])
    pi = a.mean()
    assert_allclose(means["ATE"], pi * means["ATT"] + (1 - pi) * means["ATC"], rtol=1e-10)


def test_plugin_se_matches_the_projection_formula_by_hand():
    X, a, y = _design(seed=15)
    w = UniformTransformerWeights(random_state=0).fit(X, a)
    U = w.arms_[0].embedding
    h = w.bandwidth_
    p = w.arms_[0].ratio
    mu0 = p @ y[a == 0]
    K = np.prod(stats.norm.pdf((U[a == 1][:, None, :] - U[a == 0][None, :, :]) / h), axis=2)
    m0 = K @ y[a == 0] / K.sum(axis=1)  # Nadaraya-Watson at the treated
    n1, n0 = a.sum(), (1 - a).sum()
    var = np.var(y[a == 1] - m0) / n1 + np.var(n0 * p * (y[a == 0] - mu0)) / n0
    assert_allclose(w.plugin_se(y), np.sqrt(var), rtol=1e-9)
    ate = UniformTransformerWeights("ATE", random_state=0).fit(X, a)
    assert 0 < ate.plugin_se(y) < 10 * np.sqrt(var)


def test_higher_order_kernels_clip_negative_weights_and_say_so():
    X, a, _ = _design(seed=16)
    with pytest.warns(UserWarning, match="negative"):
        w = UniformTransformerWeights(kernel_order=4, random_state=0).fit(X, a)
    assert w.n_negative_ > 0 and np.all(w.weights_ >= 0)
    assert int(np.sum(w.weights_[a == 0] == 0)) >= w.n_negative_


def test_clone_is_deterministic_and_extra_sample_is_used():
    X, a, _ = _design(seed=17)
    w = UniformTransformerWeights(random_state=3).fit(X, a)
    assert_array_equal(clone(w).fit(X, a).weights_, w.weights_)
    assert not np.array_equal(UniformTransformerWeights(random_state=4).fit(X, a).weights_, w.weights_)
    frame = pd.DataFrame(X, columns=["x1", "x2"])
    extra = pd.DataFrame(np.random.default_rng(0).normal(size=(500, 2)), columns=["x1", "x2"])
    with_extra = UniformTransformerWeights(extra_X=extra, random_state=3).fit(frame, a)
    assert with_extra.transformer_.n_samples_fit_ == 500
    assert_allclose(with_extra.weights_[a == 0].sum(), a.sum(), rtol=1e-12)


@pytest.mark.parametrize(("params", "match"), [
    (dict(method="series"), "method="), (dict(kernel="laplace"), "kernel="), (dict(kernel_order=3), "kernel_order="),
    (dict(kernel="epanechnikov", kernel_order=4), "kernel_order="), (dict(bandwidth=0.0), "bandwidth="),
    (dict(degree=0), "degree="), (dict(profile="cubic"), "profile="),
    (dict(estimand="ATO"), r"choose one of \['ATT', 'ATC', 'ATE'\]"),
])
def test_bad_parameters_are_named(params, match):
    X, a, _ = _design(n=100)
    with pytest.raises(ValueError, match=match):
        UniformTransformerWeights(**params).fit(X, a)


def test_unsupported_inputs_are_refused_clearly():
    X, a, _ = _design(n=100)
    with pytest.raises(ValueError, match="sample_weight is not supported"):
        UniformTransformerWeights().fit(X, a, sample_weight=np.ones(100))
    with pytest.raises(ValueError, match="extra_X is not available for the ATE"):
        UniformTransformerWeights("ATE", extra_X=X).fit(X, a)
    with pytest.raises(ValueError, match="larger bandwidth"):
        UniformTransformerWeights(kernel="uniform", bandwidth=1e-9, random_state=0).fit(X, a)
    with pytest.raises(ValueError, match="the treated group has 1 unit"):
        UniformTransformerWeights("ATC").fit(X, np.r_[1, np.zeros(99, dtype=int)])
    w = UniformTransformerWeights(random_state=0).fit(X, a)
    with pytest.raises(ValueError, match="100 finite outcomes"):
        w.plugin_se(np.ones(99))


def test_bootstrap_of_the_variance_engine_is_reproducible():
    from balance import WeightedEffect

    X, a, y = _design(n=300, seed=18)
    runs = [WeightedEffect(UniformTransformerWeights(random_state=0), vcov="bootstrap", n_bootstrap=20,
                           random_state=1).fit(X, a, y) for _ in range(2)]
    # each replicate refits a clone with the same random_state: the whole bootstrap is a function of the seeds
    assert_array_equal(runs[0].summary()["std_err"], runs[1].summary()["std_err"])
    assert np.all(np.isfinite(runs[0].summary()["std_err"]))
