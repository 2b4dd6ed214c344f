"""The data-driven uniform transformer of Yu & Wang (arXiv:2008.03738): a map that makes a reference sample uniform.

A uniform transformer Φ maps covariates to [0, 1]^d so that Φ(X) is uniform when X follows the reference
distribution. In one dimension Φ is the reference CDF; in d dimensions the Knothe-Rosenblatt map (successive
conditional CDFs) is one. The data-driven version follows the authors' R package WUNT (``transformer()``,
``binning()``, ``H()``): rescale to (0, 1), then either a smoothed empirical CDF per coordinate (marginal mode) or a
nested equal-count partition mapped cell by cell onto a regular grid (joint mode).

References
----------
Yu, R. & Wang, S. (2020+). Treatment effects estimation by uniform transformer. arXiv:2008.03738.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

PROFILES = ("constant", "linear", "quadratic")


def profile_cdf(t, profile):
    """Within-bin profile H: a CDF on [-1/2, 1/2] (H(-1/2) = 0, H(1/2) = 1), evaluated at ``t``.

    ``"constant"`` has a uniform density, ``"linear"`` the triangular density 2 - 4|t| and ``"quadratic"`` the smooth
    piecewise-quadratic bump 16(t + 1/2)^2, 2 - 16 t^2, 16(t - 1/2)^2 on [-1/2, -1/4], [-1/4, 1/4], [1/4, 1/2].
    """
    t = np.clip(t, -0.5, 0.5)
    if profile == "constant":
        return t + 0.5
    if profile == "linear":
        return 0.5 + 2 * t - 2 * np.sign(t) * t * t
    low, high = t < -0.25, t > 0.25
    mid = 0.5 + 2 * t - 16 / 3 * t ** 3
    return np.where(low, 16 / 3 * (t + 0.5) ** 3, np.where(high, 1 - 16 / 3 * (0.5 - t) ** 3, mid))


def joint_bin_counts(n, d):
    """Bins per dimension of the nested partition: ⌊n^(1/d)⌋ each, some raised by one while the product stays < n.

    Returned unpermuted (the transformer permutes them at random, as the R package does).
    """
    base = int(np.floor(n ** (1.0 / d) + 1e-9))
    while base ** d > n:  # guard the floating-point root
        base -= 1
    sizes = np.full(d, max(base, 1), dtype=np.int64)
    for j in range(d):
        if np.prod(sizes) // sizes[j] * (sizes[j] + 1) >= n:
            break
        sizes[j] += 1
    return sizes


def _locate(edges, parent, z):
    """Bin index k of each value: the number of inner cuts of its parent's row that are <= z (binary search)."""
    inner = edges[:, 1:-1]
    lo = np.zeros(len(z), dtype=np.int64)
    hi = np.full(len(z), inner.shape[1], dtype=np.int64)
    while np.any(lo < hi):
        active = lo < hi
        mid = (lo + hi) // 2
        take = np.zeros(len(z), dtype=bool)
        take[active] = inner[parent[active], mid[active]] <= z[active]
        lo = np.where(active & take, mid + 1, lo)
        hi = np.where(active & ~take, mid, hi)
    return lo


def _equal_count_edges(z, parent, n_parents, n_bins, rng):
    """Cut every parent's interval [0, 1] into ``n_bins`` bins holding equal counts of its points (±1).

    Each cut lies uniformly at random between the two order statistics it separates; leftover points go to bins
    drawn at random. All random draws have shapes fixed by (n_parents, n_bins), so the edges do not depend on the
    order of the rows. Returns edges of shape (n_parents, n_bins + 1), each row running from 0 to 1.
    """
    order = np.lexsort((z, parent))
    z_sorted = z[order]
    counts = np.bincount(parent, minlength=n_parents)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    base, leftover = np.divmod(counts, n_bins)
    gets_extra = np.argsort(rng.uniform(size=(n_parents, n_bins)), axis=1).argsort(axis=1) < leftover[:, None]
    loc = np.cumsum(base[:, None] + gets_extra, axis=1)[:, :-1]  # points left of each cut, per parent
    padded = np.concatenate([z_sorted, [1.0]])
    index = starts[:, None] + loc
    below = np.where(loc > 0, padded[np.maximum(index - 1, 0)], 0.0)
    above = np.where(loc < counts[:, None], padded[np.minimum(index, len(z_sorted))], 1.0)
    cuts = np.sort(below + rng.uniform(size=below.shape) * (above - below), axis=1)
    ones = np.ones((n_parents, 1))
    return np.hstack([0 * ones, cuts, ones])


class UniformTransformer(TransformerMixin, BaseEstimator):
    """Data-driven uniform transformer: maps covariates to [0, 1]^d so that the reference sample becomes uniform.

    Each coordinate is first rescaled to (0, 1) by its minimum and maximum (over the reference sample and the
    optional ``cover`` points), padded on both sides by a random fraction ε ~ U(0, 1)/n of the range. Then:

    - marginal mode (``marginal=True``, or a single covariate): per coordinate, the n reference values get one bin
      each, separated by cuts drawn uniformly between consecutive order statistics; a value in bin k (0-based) maps
      to (k + H(t))/n, with t its position in the bin relative to the bin's midpoint and width. A smoothed
      empirical CDF: margins become uniform, the joint law only under independence.
    - joint mode (default): a nested (Knothe-style) partition. Dimension 1 is cut into s₁ equal-count bins, each of
      those along dimension 2 into s₂ equal-count bins, and so on (s_j about n^(1/d), product <= n, randomly
      permuted across dimensions); each cell is mapped affinely, coordinate by coordinate through H, onto the
      matching cell of the regular grid. An approximation to the Knothe-Rosenblatt map.

    Parameters
    ----------
    marginal : bool, default=False
        Transform each coordinate by its own smoothed empirical CDF instead of the joint nested partition.
    profile : {"constant", "linear", "quadratic"}, default="constant"
        Within-bin profile H, the CDF on [-1/2, 1/2] used inside each bin (uniform, triangular, or smooth
        piecewise-quadratic density); see :func:`profile_cdf`.
    random_state : int, RandomState instance or None, default=None
        Seeds the padding, the cut points, the permutation of bin counts and the allotment of leftover points.
        The construction is random: pass an int for reproducible output.

    Attributes
    ----------
    data_min_, data_range_ : ndarray of shape (n_features,)
        Minimum and range of each coordinate before padding.
    pad_ : float
        The padding ε, as a fraction of each coordinate's range.
    n_bins_ : ndarray of shape (n_features,)
        Bins per dimension: n each in marginal mode, s_j in joint mode (their product <= n).
    edges_ : list of ndarray
        Bin edges on the rescaled (0, 1) scale. Marginal mode: one array of shape (n + 1,) per coordinate. Joint
        mode: for dimension j an array of shape (s₁···s_{j-1}, s_j + 1), one row of edges per parent cell.
    marginal_ : bool
        Whether the marginal mode was used (``marginal=True`` or a single feature).
    n_samples_fit_ : int
        Size of the reference sample.
    n_features_in_, feature_names_in_ : int, ndarray
        As in scikit-learn.

    Notes
    -----
    Fitting costs O(n log n) per dimension (sorts), transforming O(log n) per value (binary search in the stored
    edges). New points are mapped through the stored bins, so ``fit(X).transform(X)`` is the fitted map applied to
    the reference sample. Values outside the fitted range are mapped to the nearest edge (0 or 1), with a warning;
    pass them as ``cover`` at fit time to include them in the rescaling, as the authors do for the treated sample.
    Ties are kept together: a value is a function of its coordinates, so tied reference points share one image
    (discrete covariates cannot be made uniform). The construction is direct (sorts and random cuts, no iterative
    solver), so there is no ``converged_`` or ``n_iter_``.

    In joint mode the reference sample is uniform exactly at the resolution of the grid (every cell holds the same
    count, ±1 at each level); inside a cell the map is affine, so with few bins per dimension (large d, small n) and
    skewed data the margins are only approximately uniform (a KS test can reject at n = 500, d = 3 for normal
    data). The marginal mode keeps each margin within 1/n of uniform.

    References
    ----------
    Yu, R. & Wang, S. Treatment effects estimation by uniform transformer. arXiv:2008.03738. R package WUNT
    (github.com/lakerwsl/WUNT).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import kstest
    >>> from balance import UniformTransformer
    >>> X = np.random.default_rng(0).lognormal(size=(2000, 2))
    >>> U = UniformTransformer(random_state=0).fit_transform(X)
    >>> bool(U.min() >= 0 and U.max() <= 1)
    True
    >>> bool(all(kstest(U[:, j], "uniform").pvalue > 0.05 for j in range(2)))
    True
    """

    def __init__(self, marginal=False, profile="constant", random_state=None):
        self.marginal = marginal
        self.profile = profile
        self.random_state = random_state

    def fit(self, X, y=None, *, cover=None):
        """Learn the rescaling and the bins from the reference sample ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Reference sample (numeric, finite).
        y : ignored
        cover : array-like of shape (n_other, n_features), default=None
            Further points that the min-max rescaling must cover (the points to be transformed later, e.g. the
            treated units). They do not influence the bins.

        Returns
        -------
        self
        """
        if self.profile not in PROFILES:
            raise ValueError(f"profile={self.profile!r} must be one of {list(PROFILES)}.")
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        rng = check_random_state(self.random_state)
        n, d = X.shape
        span = X if cover is None else np.vstack([X, validate_data(self, cover, dtype=np.float64, reset=False)])
        self.data_min_ = span.min(axis=0)
        self.data_range_ = np.ptp(span, axis=0)
        if np.any(self.data_range_ == 0):
            raise ValueError(f"features {np.flatnonzero(self.data_range_ == 0).tolist()} are constant; a uniform "
                             "transformer needs variation in every coordinate.")
        self.pad_ = float(rng.uniform()) / n
        self.n_samples_fit_ = n
        self.marginal_ = bool(self.marginal) or d == 1
        Z = self._rescale(X)
        if self.marginal_:
            self.n_bins_ = np.full(d, n, dtype=np.int64)
            self.edges_ = [_equal_count_edges(Z[:, j], np.zeros(n, dtype=np.int64), 1, n, rng)[0] for j in range(d)]
            return self
        self.n_bins_ = rng.permutation(joint_bin_counts(n, d))
        self.edges_ = []
        parent = np.zeros(n, dtype=np.int64)
        n_parents = 1
        for j in range(d):
            edges = _equal_count_edges(Z[:, j], parent, n_parents, int(self.n_bins_[j]), rng)
            self.edges_.append(edges)
            # children are located through the stored edges, exactly as new points will be
            parent = parent * self.n_bins_[j] + _locate(edges, parent, Z[:, j])
            n_parents *= int(self.n_bins_[j])
        return self

    def transform(self, X):
        """Map ``X`` through the fitted rescaling and bins to [0, 1]^d.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self, "edges_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Z = self._rescale(X)
        outside = (Z < 0) | (Z > 1)
        if outside.any():
            warnings.warn(f"{int(outside.sum())} values lie outside the fitted range and were mapped to the nearest "
                          "edge (0 or 1); pass them as `cover` in fit to include them in the rescaling.",
                          UserWarning, stacklevel=2)
            Z = np.clip(Z, 0.0, 1.0)
        U = np.empty_like(Z)
        parent = np.zeros(len(Z), dtype=np.int64)
        for j in range(Z.shape[1]):
            edges = self.edges_[j][None, :] if self.marginal_ else self.edges_[j]
            rows = np.zeros(len(Z), dtype=np.int64) if self.marginal_ else parent
            k = _locate(edges, rows, Z[:, j])
            left, right = edges[rows, k], edges[rows, k + 1]
            width = right - left
            t = np.divide(Z[:, j] - (left + right) / 2, width, out=np.full(len(Z), 0.5), where=width > 0)
            U[:, j] = (k + profile_cdf(t, self.profile)) / self.n_bins_[j]
            parent = parent * self.n_bins_[j] + k
        return U

    def _rescale(self, X):
        return ((X - self.data_min_) / self.data_range_ + self.pad_) / (1 + 2 * self.pad_)
