"""Weights by uniform transformer (WUNT; Yu & Wang, arXiv:2008.03738): density-ratio weights in transformed space.

For the ATT, the control units need the weight w(x) = f_T(x) / f_C(x). After a uniform transformer Φ (fitted on the
controls, so that Φ(X) | control is uniform on [0, 1]^d) the Jacobians cancel and w(x) = g_T(Φ(x)), the density of
the transformed treated points. Weight construction becomes density estimation: a kernel estimate (the control
weights a_i = Σ_j K_h(U_i - V_j), a two-sample U-statistic) or a series (projection) estimate. The ATC swaps the
groups. Follows the authors' R package WUNT (``wunt()``); the ATE combination is an extension, see the class notes.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import hermite_e
from sklearn.preprocessing import PolynomialFeatures
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._base import BaseWeighter
from .._validation import check_constant, check_full_rank
from ._uniform_transformer import PROFILES, UniformTransformer

# Names of the product kernels, mapped to the integer codes of balance._kernels._uniform.
KERNEL_CODES = {
    "gaussian": 0, "epanechnikov": 1, "uniform": 2, "triangular": 3, "biweight": 4, "triweight": 5, "tricube": 6,
    "cosine": 7, "silverman": 8,
}
GAUSSIAN_ORDERS = (2, 4, 6, 8, 10)


def gaussian_kernel_coef(order):
    """Coefficients c_k of u^(2k) in the Gaussian kernel of ``order`` (2, 4, ..., 10): K(u) = φ(u) Σ c_k u^(2k).

    The order-2r kernel is φ(u) Σ_{k<r} (-1)^k He_2k(u) / (2^k k!) (Hermite polynomials He; Wand & Jones 1995,
    §2.8): its moments of order 1, ..., 2r - 1 vanish. Order 4 gives (3 - u²)/2.
    """
    r = order // 2
    series = np.zeros(2 * r - 1)
    for k in range(r):
        series[2 * k] = (-1) ** k / (2 ** k * np.prod(np.arange(1, k + 1)))
    return hermite_e.herme2poly(series)[::2].copy()


def kernel_sums(A, B, W, bandwidth, kernel="gaussian", order=2):
    """Σ_j K_h(A_i - B_j) W_j for every row i of ``A`` (product kernel): ndarray of shape (n_A, W.shape[1])."""
    import numba

    from .._kernels._uniform import kernel_sums as _sums

    coef = np.ones(1)
    if kernel == "gaussian" and order > 2:
        coef = np.zeros(5)  # the compiled loop takes the polynomial padded to order 10
        coef[:order // 2] = gaussian_kernel_coef(order)
    return _sums(np.ascontiguousarray(A, dtype=np.float64), np.ascontiguousarray(np.asarray(B, dtype=np.float64).T),
                 np.ascontiguousarray(W, dtype=np.float64), float(bandwidth), KERNEL_CODES[kernel], coef,
                 8 * numba.get_num_threads())


def projection_basis(U, degree, interact):
    """Intercept plus pure powers u_j^k (k <= degree), or every monomial of total degree <= degree (``interact``)."""
    if interact:
        return PolynomialFeatures(degree, include_bias=True).fit_transform(U)
    return np.column_stack([np.ones(len(U))] + [U ** k for k in range(1, degree + 1)])


def projection_raw_weights(basis_ref, basis_focal):
    """Series density-ratio weights: row sums of Ψ_ref Ψ_focalᵀ after orthonormalising the basis on the reference.

    Equal to D_ref (D_refᵀ D_ref)⁺ D_focalᵀ 1, so Σ_i a_i D_ref,i = Σ_j D_focal,j: the weights balance every basis
    function exactly. Directions with singular values below the usual rank tolerance are dropped (a dummy
    covariate makes its powers collinear).
    """
    left, sing, right_t = np.linalg.svd(basis_ref, full_matrices=False)
    keep = sing > sing[0] * max(basis_ref.shape) * np.finfo(float).eps
    coef = right_t[keep].T / sing[keep]
    return left[:, keep] @ (basis_focal @ coef).sum(axis=0)


@dataclass(frozen=True)
class ArmFit:
    """One density-ratio fit: the reference group (weighted) against the focal group (its target)."""

    reference: int  # treatment value (0/1) of the reference group
    is_reference: np.ndarray  # (n_samples,) bool, the units of the reference group
    embedding: np.ndarray  # (n_samples, d) covariates of every unit through the reference group's transformer
    ratio: np.ndarray  # (n_reference,) normalised weights of the reference units, summing to one


class UniformTransformerWeights(BaseWeighter):
    """Weights by uniform transformer (WUNT): density-ratio weights estimated after a data-driven uniform map.

    For the ATT the controls (the reference group) fix a :class:`UniformTransformer` Φ under which they are uniform;
    the treated (the focal group) are mapped through it, and the control weights estimate the density of the
    transformed treated points at each control: a_i = Σ_j K_h(Φ(X_i) - Φ(X_j)) over the treated j (``method=
    "kernel"``, a two-sample kernel U-statistic), or a series estimate on polynomials of Φ (``"projection"``). The
    weights are self-normalised (Hájek), as in the authors' R package WUNT.

    Binary treatments only (a multi-category one is refused in one line): the method and the R package define one
    reference group and one focal group, and a K-level version is not part of either.

    Parameters
    ----------
    estimand : {"ATT", "ATC", "ATE"}, default="ATT"
        "ATT" as in the paper; "ATC" swaps the groups (the treated are the reference). "ATE" is an extension beyond
        the paper (see Notes).
    method : {"kernel", "projection"}, default="kernel"
        Kernel density estimate of the transformed focal points, or the series (projection) estimate.
    kernel : {"gaussian", "epanechnikov", "uniform", "triangular", "biweight", "triweight", "tricube", "cosine", \
"silverman"}, default="gaussian"
        One-dimensional kernel of the product kernel (``method="kernel"``). All but "gaussian" and "silverman" are
        supported on [-1, 1]; the Gaussian has standard deviation h. "silverman" is a fourth-order kernel.
    kernel_order : {2, 4, 6, 8, 10}, default=2
        Order of the Gaussian kernel (the Gaussian density times an even polynomial, :func:`gaussian_kernel_coef`);
        higher orders reduce smoothing bias and are recommended by the authors when d is large. Only "gaussian"
        takes an order other than 2.
    bandwidth : float or None, default=None
        Bandwidth h on the transformed [0, 1]^d scale. None: h = n^(-1/d), n the total number of units and d the
        number of model-matrix columns (the R package's default; it has no data-driven selector).
    degree : int, default=2
        Polynomial degree of the projection basis.
    interact : bool, default=False
        Projection basis with every monomial of total degree <= ``degree`` instead of pure powers.
    extra_X : DataFrame or array-like, default=None
        An additional sample from the reference group's covariate distribution (the controls' for the ATT, the
        treated's for the ATC), used in place of the reference group to fit the transformer (the R package's
        ``extra``). Not available for the ATE.
    marginal : bool, default=False
        Use the transformer's marginal mode (per-coordinate smoothed ECDF) instead of the joint nested partition.
    profile : {"constant", "linear", "quadratic"}, default="constant"
        Within-bin profile of the transformer.
    treated : scalar, default=None
        Which treatment level is treated, when the treatment is neither 0/1 nor boolean.
    treatment_type : {"auto", "binary", "multi-category", "continuous"}, default="auto"
        What the treatment is; ``"auto"`` decides from the data (two values: binary; categorical or text with more
        levels: multi-category; float: continuous; integers with more than two values: an error asking for this
        parameter). See :mod:`balance._treatment`.
    random_state : int, RandomState instance or None, default=None
        Seeds the transformer(s). The weights are a deterministic function of the data given an int.
    missing : {"error", "indicator"}, default="error"
        Missing covariate values: ``"error"`` raises naming the column; ``"indicator"`` adds a missingness
        indicator ``<column>:<NA>`` per incomplete column and fills its missing values with the observed median
        (WeightIt's and cobalt's approach), so the missingness pattern is balanced too.

    Attributes
    ----------
    weights_ : Series or ndarray of shape (n_samples,)
        Analysis weights. Scale: ATT, treated 1 and control weights n₁ a_i / Σ a (summing to n₁, so each arm sums
        to its focal group's size; the paper's weights a_i / Σ a sum to one); ATC, the mirror image; ATE, each arm
        sums to n. Multiplying one group's weights by a constant changes no balance statistic or weighted
        difference in means.
    bandwidth_ : float
        Bandwidth used (kernel method).
    transformer_ : UniformTransformer or tuple of two
        The fitted transformer (ATT: fitted on the controls; ATC: on the treated; ATE: both, in that order).
    arms_ : list of ArmFit
        Per density-ratio fit (one, or two for the ATE): reference group and its units, the embedding of every
        unit (n_samples, d) and the reference units' normalised weights. Used by :meth:`plugin_se`.
    n_negative_ : int
        Reference-group weights that came out negative (possible with higher-order or Silverman kernels and with
        the projection method) and were set to zero, with a warning. Weights are never negative in this package.
    treatment_levels_ : tuple
        (control level, treated level).
    n_features_in_, feature_names_in_ : int, ndarray
        As in scikit-learn.

    Notes
    -----
    ATT: with p_i = a_i / Σ a over the controls, the effect is mean(Y_T) - Σ p_i Y_i. The ATE extension (not in the
    paper or the R package) uses ATE = π ATT + (1 - π) ATC with π = n₁/n: both density ratios are estimated (a
    transformer per group) and treated weights are 1 + n₀ q_j, control weights 1 + n₁ p_i (p, q the two arms'
    normalised weights), so that the weighted mean difference is exactly π̂ ATT̂ + (1 - π̂) ATĈ.

    Inference: the randomness of the data-driven transformer is not covered by any closed-form variance. The
    recommended default is a nonparametric bootstrap that refits a clone of this estimator per replicate (e.g.
    ``balance.effects.WeightedEffect(..., vcov="bootstrap")``). :meth:`plugin_se` gives the plug-in standard error
    from the Hoeffding projection of the U-statistic with the transformer held fixed. There are no estimating
    equations (no ``_m_parts``), and sampling weights are not supported.

    The kernel sum costs O(n₀ n₁ d) and runs in a parallel numba loop (O(n) memory). The Gaussian kernel's default
    bandwidth leaves visible smoothing bias in small samples; higher orders and smoother profiles reduce it.

    No iterative solver is involved (sorts, kernel sums, an SVD for the projection basis, a least-squares fit for
    :meth:`plugin_se`), so there is nothing to converge: the class has no ``converged_`` or ``n_iter_``.

    References
    ----------
    Yu, R. & Wang, S. Treatment effects estimation by uniform transformer. arXiv:2008.03738 (earlier title:
    Covariate balancing by uniform transformer). R package WUNT, github.com/lakerwsl/WUNT.
    Wand, M. P. & Jones, M. C. (1995). Kernel Smoothing. Chapman & Hall.

    Examples
    --------
    >>> from balance import UniformTransformerWeights
    >>> from balance.datasets import make_kang_schafer
    >>> data = make_kang_schafer(1000, random_state=0)
    >>> wunt = UniformTransformerWeights(random_state=0).fit(data.X, data.treatment)
    >>> controls = (data.treatment == 0).to_numpy()
    >>> bool(abs(wunt.weights_[controls].sum() - (~controls).sum()) < 1e-9)
    True
    """

    _supported_estimands = ("ATT", "ATC", "ATE")
    _dask_refusal = "its transformer is trained on all units together"

    def __init__(self, estimand="ATT", *, method="kernel", kernel="gaussian", kernel_order=2, bandwidth=None,
                 degree=2, interact=False, extra_X=None, marginal=False, profile="constant", treated=None,
                 treatment_type="auto", random_state=None, missing="error"):
        self.estimand = estimand
        self.method = method
        self.kernel = kernel
        self.kernel_order = kernel_order
        self.bandwidth = bandwidth
        self.degree = degree
        self.interact = interact
        self.extra_X = extra_X
        self.marginal = marginal
        self.profile = profile
        self.treated = treated
        self.treatment_type = treatment_type
        self.random_state = random_state
        self.missing = missing

    # -- fitting ----------------------------------------------------------------------------------------------
    def fit(self, X, treatment, sample_weight=None):
        """Fit the uniform transformer(s) and compute the density-ratio weights.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Covariates (numeric, boolean or categorical columns; categoricals enter as dummies).
        treatment : array-like of shape (n_samples,)
            Binary treatment.
        sample_weight : None
            Not supported (a ValueError is raised otherwise); bootstrap by resampling rows instead.

        Returns
        -------
        self
        """
        self._check_params()
        data = self._validate_data(X, treatment, sample_weight)
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by UniformTransformerWeights (the transformer and the "
                             "kernel estimate are unweighted); resample rows for a bootstrap instead.")
        check_constant(data.X, data.names)
        check_full_rank(data.X, data.names)  # a degenerate linear relation leaves f_C without a density
        estimand = self._estimand()
        extra = None
        if self.extra_X is not None:
            if estimand == "ATE":
                raise ValueError("extra_X is not available for the ATE (it would need one extra sample per group).")
            extra = self.design_.transform(self.extra_X, drop_first=True)[0]
        n, d = data.X.shape
        self.bandwidth_ = float(self.bandwidth) if self.bandwidth is not None else n ** (-1.0 / d)
        rng = check_random_state(self.random_state)
        references = {"ATT": (0,), "ATC": (1,), "ATE": (0, 1)}[estimand]
        seeds = rng.randint(np.iinfo(np.int32).max, size=2)  # always two draws: the ATT arm's seed is the ATE's
        transformers, self.arms_, n_negative = [], [], 0
        for reference in references:
            tr, arm, negative = self._fit_arm(data.X, data.a, reference, extra, int(seeds[reference]))
            transformers.append(tr)
            self.arms_.append(arm)
            n_negative += negative
        self.transformer_ = transformers[0] if len(transformers) == 1 else tuple(transformers)
        self.n_negative_ = n_negative
        return self._set_weights(self._combine(data.a, estimand), data)

    def _fit_arm(self, X, a, reference, extra, seed):
        ref = a == reference
        if extra is None and ref.sum() < 2:
            group = "control" if reference == 0 else "treated"
            raise ValueError(f"the {group} group has {int(ref.sum())} unit; the uniform transformer fitted on it "
                             "needs at least 2.")
        tr = UniformTransformer(marginal=self.marginal, profile=self.profile, random_state=seed)
        tr.fit(X[ref] if extra is None else extra, cover=X)
        embedding = tr.transform(X)
        if self.method == "kernel":
            raw = kernel_sums(embedding[ref], embedding[~ref], np.ones((int((~ref).sum()), 1)), self.bandwidth_,
                              self.kernel, self.kernel_order)[:, 0]
        else:
            raw = projection_raw_weights(projection_basis(embedding[ref], self.degree, self.interact),
                                         projection_basis(embedding[~ref], self.degree, self.interact))
        negative = raw < 0
        if negative.any():
            warnings.warn(f"{int(negative.sum())} of {len(raw)} density-ratio weights were negative (a "
                          f"{'higher-order kernel' if self.method == 'kernel' else 'series estimate'} is not a "
                          "density) and were set to zero.", UserWarning, stacklevel=3)
            raw = np.where(negative, 0.0, raw)
        total = raw.sum()
        if not total > 0:
            raise ValueError("every density-ratio weight is zero: no focal unit lies within the kernel's reach of "
                             f"a reference unit at bandwidth={self.bandwidth_:.3g}; use a larger bandwidth.")
        return tr, ArmFit(reference, ref, embedding, raw / total), int(negative.sum())

    def _combine(self, a, estimand):
        """Analysis weights from the normalised arm weights (scale in the class docstring)."""
        n1, n0 = int(a.sum()), int((1 - a).sum())
        if estimand != "ATE":
            arm = self.arms_[0]
            weights = np.ones(len(a))
            weights[a == arm.reference] = arm.ratio * (n1 if arm.reference == 0 else n0)
            return weights
        weights = np.ones(len(a))
        for arm in self.arms_:
            ref = a == arm.reference
            weights[ref] += arm.ratio * int((~ref).sum())
        return weights

    def _check_params(self):
        if self.method not in ("kernel", "projection"):
            raise ValueError(f"method={self.method!r} must be 'kernel' or 'projection'.")
        if self.kernel not in KERNEL_CODES:
            raise ValueError(f"kernel={self.kernel!r} must be one of {list(KERNEL_CODES)}.")
        if self.kernel_order not in GAUSSIAN_ORDERS or (self.kernel != "gaussian" and self.kernel_order != 2):
            raise ValueError(f"kernel_order={self.kernel_order!r} must be one of {list(GAUSSIAN_ORDERS)}, and 2 "
                             "unless kernel='gaussian'.")
        if self.bandwidth is not None and not (isinstance(self.bandwidth, numbers.Real)
                                               and np.isfinite(self.bandwidth) and self.bandwidth > 0):
            raise ValueError(f"bandwidth={self.bandwidth!r} must be a positive number or None.")
        if not (isinstance(self.degree, numbers.Integral) and self.degree >= 1):
            raise ValueError(f"degree={self.degree!r} must be a positive integer.")
        if self.profile not in PROFILES:
            raise ValueError(f"profile={self.profile!r} must be one of {list(PROFILES)}.")

    # -- inference --------------------------------------------------------------------------------------------
    def plugin_se(self, y):
        """Plug-in standard error of the weighted mean difference, from the Hoeffding projection.

        For the ATT (Hájek form, transformer held fixed): ATT̂ - ATT ≈ (1/n₁) Σ_T [Y_j - m₀(X_j) - ATT]
        - (1/n₀) Σ_C w(X_i)(Y_i - μ₀ᵀ), so Var ≈ Var_T(Y - m₀(X))/n₁ + Var_C(w (Y - μ₀ᵀ))/n₀, with ŵ_i = n₀ p_i and
        m̂₀ at the treated a Nadaraya-Watson regression on the controls in transformed space (second-order Gaussian
        kernel, same bandwidth) or, for ``method="projection"``, the least-squares fit on the same basis. The ATC
        mirrors it; the ATE adds the two arms' projections as π ATT + (1 - π) ATC plus the delta-method term of π̂.

        This ignores the randomness of the data-driven transformer (fitted on the same controls) and is not the
        efficient variance; prefer a bootstrap that refits this estimator.

        Parameters
        ----------
        y : array-like of shape (n_samples,)
            Outcomes of the units passed to ``fit``, in the same order.

        Returns
        -------
        float
        """
        check_is_fitted(self, "arms_")
        y = np.asarray(y, dtype=np.float64).ravel()
        a = self._treatment_vector()
        if y.shape[0] != len(a) or not np.all(np.isfinite(y)):
            raise ValueError(f"y must hold {len(a)} finite outcomes, one per unit passed to fit.")
        pieces = {arm.reference: self._arm_influence(arm, a, y) for arm in self.arms_}
        estimand = self._estimand()
        if estimand == "ATT":
            influence = pieces[0][0]
        elif estimand == "ATC":
            influence = -pieces[1][0]
        else:
            pi = a.mean()
            att, atc = pieces[0][1], -pieces[1][1]
            influence = pi * pieces[0][0] - (1 - pi) * pieces[1][0] + (att - atc) * (a - pi) / len(a)
        return float(np.sqrt(np.sum(influence ** 2)))

    def _treatment_vector(self):
        arm = self.arms_[0]
        return np.where(arm.is_reference, arm.reference, 1 - arm.reference).astype(float)

    def _arm_influence(self, arm, a, y):
        """Influence values of (focal mean - weighted reference mean) for one arm, and that contrast."""
        ref = a == arm.reference
        U_ref, U_focal = arm.embedding[ref], arm.embedding[~ref]
        mu_ref = float(arm.ratio @ y[ref])
        if self.method == "kernel":
            sums = kernel_sums(U_focal, U_ref, np.column_stack([np.ones(ref.sum()), y[ref]]), self.bandwidth_)
            fitted = np.divide(sums[:, 1], sums[:, 0], out=np.full(len(sums), mu_ref), where=sums[:, 0] > 0)
        else:
            basis = projection_basis(U_ref, self.degree, self.interact)
            coef = np.linalg.lstsq(basis, y[ref], rcond=None)[0]
            fitted = projection_basis(U_focal, self.degree, self.interact) @ coef
        residual = y[~ref] - fitted
        influence = np.zeros(len(a))
        influence[~ref] = (residual - residual.mean()) / (~ref).sum()
        influence[ref] = -arm.ratio * (y[ref] - mu_ref)
        return influence, float(y[~ref].mean() - mu_ref)
