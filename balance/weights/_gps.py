"""The generalised propensity score (GPS) of a continuous treatment: weights f(A) / f(A | X).

Shared by :class:`~balance.PropensityWeights` (a normal linear model, any regressor, or a kernel density of the
residuals) and :class:`~balance.CBPS` (the covariate-balancing GPS of Fong, Hazlett & Imai 2018).

Everything is computed on a standardised scale: the treatment z = (A − c) / s and the covariates' columns centred
and scaled by fixed constants (:class:`~balance.weights._standardize.Standardizer`). The density ratio is invariant
to an affine map of A, so the weights do not depend on A's units (a treatment of magnitude 1e200 gives the same
weights as one of magnitude 1), and the estimating equations on the standardised scale are an exact
reparametrisation of those on the original scale, which leaves every sandwich variance unchanged.

Parameters of the normal GPS, in WeightIt's order: θ = (τ², μ, σ², β) with μ and τ² the (sampling-weighted) mean
and variance of z (divisor Σs), β the coefficients of the linear model of z on D = (1, X) and σ² its residual
variance (divisor Σs). With r = z − Dβ the log weight is

    ℓ = log φ((z − μ)/τ) − log φ(r/σ)                      (PropensityWeights: WeightIt's ``glm`` scale)
    ℓ = log φ(z; μ, τ²) − log φ(z; Dβ, σ²)                 (CBPS: the densities with their 1/τ and 1/σ)

and the weight is s·exp(ℓ). The conditional log density is floored at −50 (WeightIt's CBPS does the same), which
keeps the weights finite for a residual beyond about ten residual SDs; floored units are counted and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import irfft, rfft
from scipy.optimize import least_squares, root

from .._base import MParts, warn_units
from ._standardize import Standardizer

LOG_DENSITY_FLOOR = -50.0
_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
DENSITIES = ("normal", "kernel")


@dataclass(frozen=True)
class GPSData:
    """The problem on the standardised scale: z, the design D = (1, standardised X), sampling weights."""

    z: np.ndarray
    design: np.ndarray
    sw: np.ndarray
    treatment_scale: Standardizer
    covariate_scale: Standardizer

    @classmethod
    def build(cls, a, X, sw, scales=None):
        """Standardise A at its weighted mean and unweighted SD (any fixed affine map would do), X likewise;
        ``scales`` (a fitted problem's ``(treatment_scale, covariate_scale)``) maps new data the same way."""
        if scales is None:
            scales = (Standardizer.fit(a[:, None], [np.average(a, weights=sw)]),
                      Standardizer.fit(X, np.average(X, axis=0, weights=sw)))
        a_scale, x_scale = scales
        return cls(a_scale.design(a[:, None])[:, 1], x_scale.design(X), sw, a_scale, x_scale)

    @property
    def scales(self):
        return self.treatment_scale, self.covariate_scale

    def standardise(self, values):
        """Values in A's units on the standardised scale of z."""
        return (values - self.treatment_scale.center[0]) / self.treatment_scale.scale[0]

    def marginal(self):
        """(τ², μ): the weighted variance (divisor Σs) and mean of z."""
        mu = np.average(self.z, weights=self.sw)
        return float(np.average((self.z - mu) ** 2, weights=self.sw)), float(mu)

    def ols(self):
        """Weighted least squares of z on D: (β, fitted, σ²)."""
        root_w = np.sqrt(self.sw)[:, None]
        beta = np.linalg.lstsq(self.design * root_w, self.z * root_w[:, 0], rcond=None)[0]
        fitted = self.design @ beta
        return beta, fitted, float(np.average((self.z - fitted) ** 2, weights=self.sw))

    def to_original(self, beta):
        """β (standardised z on standardised X) as (intercept, coef) of A on the original X, in A's units."""
        coef = self.covariate_scale.to_original(beta) * self.treatment_scale.scale[0]
        return float(coef[0] + self.treatment_scale.center[0]), coef[1:]


# ----------------------------------------------------------------------------------------------------------------
# log weights and their derivatives
# ----------------------------------------------------------------------------------------------------------------
def normal_log_weights(z, mu, tau2, fitted, sigma2, *, with_scale=False):
    """ℓ = log f(z) − log f(z | X) under the normal GPS, the (floored) conditional log density, and which units'
    conditional log density was floored.

    ``with_scale=False``: densities of the standardised values (WeightIt's glm); True: with the 1/τ and 1/σ
    factors (WeightIt's CBPS); the two differ by the constant sqrt(σ²/τ²)."""
    num = -_HALF_LOG_2PI - 0.5 * (z - mu) ** 2 / tau2 - with_scale * 0.5 * np.log(tau2)
    den = -_HALF_LOG_2PI - 0.5 * (z - fitted) ** 2 / sigma2 - with_scale * 0.5 * np.log(sigma2)
    floored = den < LOG_DENSITY_FLOOR
    den = np.maximum(den, LOG_DENSITY_FLOOR)
    return num - den, den, floored


def kernel_log_weights(z_num, z_den, sw):
    """ℓ = log f(z_num) − log f(z_den) with both densities weighted Gaussian kernel estimates (of the standardised
    treatment and of the standardised residuals), the floored conditional log density and which units were floored.

    The numerator is floored too; it can reach the floor only for a unit of zero sampling weight (any other unit's
    own kernel keeps its density far above it), whose weight is 0 anyway."""
    floor = np.exp(LOG_DENSITY_FLOOR)
    den = kernel_density(z_den, sw)
    floored = ~(den > floor)
    log_den = np.log(np.where(floored, floor, den))
    return np.log(np.maximum(kernel_density(z_num, sw), floor)) - log_den, log_den, floored


def normal_log_weights_jacobian(z, design, theta, *, with_scale=False):
    """dℓ/dθ, shape (n, 3 + q), θ = (τ², μ, σ², β); zero in σ² and β where the floor binds."""
    tau2, mu, sigma2, beta = theta[0], theta[1], theta[2], theta[3:]
    r = z - design @ beta
    floored = normal_log_weights(z, mu, tau2, design @ beta, sigma2, with_scale=with_scale)[2]
    free = ~floored
    d = np.empty((len(z), theta.size))
    d[:, 0] = 0.5 * (z - mu) ** 2 / tau2**2 - with_scale * 0.5 / tau2
    d[:, 1] = (z - mu) / tau2
    d[:, 2] = (with_scale * 0.5 / sigma2 - 0.5 * r**2 / sigma2**2) * free
    d[:, 3:] = design * (-(r / sigma2) * free)[:, None]
    return d


def warn_floored(floored, index, who, stacklevel=5):
    """Warn (naming the units) when conditional densities were floored at exp(LOG_DENSITY_FLOOR)."""
    if floored.any():
        warn_units(f"{who}: {int(floored.sum())} units have a treatment so far from its model's prediction that the "
                   f"conditional density was floored at exp({LOG_DENSITY_FLOOR:g}) to keep the weights finite; their "
                   "weights are set by that floor, not by the model. Look at those units (outliers?), or consider a "
                   "better treatment model, density='kernel' (PropensityWeights) or trim=", floored, index,
                   stacklevel=stacklevel)


# ----------------------------------------------------------------------------------------------------------------
# M-estimation parts
# ----------------------------------------------------------------------------------------------------------------
def gps_parts(gps, theta, names, *, balance):
    """:class:`MParts` of the normal GPS: the marginal variance and mean of z, the residual variance, and either the
    least-squares score s D r (``balance=False``, PropensityWeights) or the balance conditions s w (z − μ) D
    (``balance=True``, just-identified CBPS); weights s·exp(ℓ)."""
    z, D, sw = gps.z, gps.design, gps.sw
    with_scale = balance
    total = sw.sum()

    def unpack(t):
        return t[0], t[1], t[2], t[3:]

    def weights(t):
        tau2, mu, sigma2, beta = unpack(t)
        return sw * np.exp(normal_log_weights(z, mu, tau2, D @ beta, sigma2, with_scale=with_scale)[0])

    def weights_jacobian(t):
        return weights(t)[:, None] * normal_log_weights_jacobian(z, D, t, with_scale=with_scale)

    def psi(t):
        tau2, mu, sigma2, beta = unpack(t)
        r = z - D @ beta
        last = weights(t) * (z - mu) if balance else sw * r
        return np.column_stack([sw * ((z - mu) ** 2 - tau2), sw * (z - mu), sw * (r**2 - sigma2), D * last[:, None]])

    def psi_jacobian(t):
        tau2, mu, sigma2, beta = unpack(t)
        r = z - D @ beta
        q = D.shape[1]
        jac = np.zeros((3 + q, 3 + q))
        jac[0, :2] = -total, -2.0 * np.sum(sw * (z - mu))
        jac[1, 1] = -total
        jac[2, 2] = -total
        jac[2, 3:] = -2.0 * (sw * r) @ D
        if balance:
            w = weights(t)
            jac[3:] = (D * (z - mu)[:, None]).T @ weights_jacobian(t)
            jac[3:, 1] -= w @ D
        else:
            jac[3:, 3:] = -(D * sw[:, None]).T @ D
        return jac

    return MParts(params=np.asarray(theta, dtype=float), names=("Var(A)", "E(A)", "Var(A|X)", *names), psi=psi,
                  weights=weights, psi_jacobian=psi_jacobian, weights_jacobian=weights_jacobian)


# ----------------------------------------------------------------------------------------------------------------
# the covariate-balancing GPS (just identified)
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CBGPSFit:
    theta: np.ndarray
    converged: bool
    n_iter: int
    imbalance: float


def fit_cbgps(gps, *, tol=1e-8, max_iter=100):
    """Solve the just-identified CBGPS conditions Σ s w (z − μ) D = 0 for β (with μ, τ² the marginal moments and
    σ²(β) the residual variance), starting from least squares (WeightIt's start).

    The conditions have no convex objective; MINPACK's hybrid Powell method (``scipy.optimize.root``) with the
    analytic Jacobian solves them. They need not have a root: in some samples (e.g. a quarter of simulated normal
    linear designs at n = 4000) the smallest attainable imbalance is clearly positive, and every root finder stops
    at the same point. Then, as WeightIt (which minimises the norm of the conditions by BFGS), the result is the
    minimiser of the squared imbalance (MINPACK's Levenberg–Marquardt from the hybrid method's end point), and
    ``converged`` is False. ``imbalance`` is the largest |condition| / Σs on the standardised scale (in SDs of z
    times SDs of the covariate).
    """
    z, D, sw = gps.z, gps.design, gps.sw
    tau2, mu = gps.marginal()
    total = sw.sum()
    beta0 = gps.ols()[0]

    def theta_of(beta):
        return np.concatenate([[tau2, mu, np.average((z - D @ beta) ** 2, weights=sw)], beta])

    parts = gps_parts(gps, theta_of(beta0), [""] * D.shape[1], balance=True)

    def conditions(beta):
        theta = theta_of(beta)
        g = parts.psi(theta)[:, 3:].sum(axis=0) / total
        full = parts.psi_jacobian(theta)  # total derivative: σ² depends on β through its own equation
        dsigma2 = -full[2, 3:] / full[2, 2]
        jac = (full[3:, 3:] + np.outer(full[3:, 2], dsigma2)) / total
        return g, jac

    def imbalance(beta):
        g = conditions(beta)[0]
        return float(np.max(np.abs(g))) if np.all(np.isfinite(g)) else np.inf

    budget = 100 * max_iter * (D.shape[1] + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        sol = root(conditions, beta0, jac=True, method="hybr", options={"xtol": 1e-14, "maxfev": budget})
        beta, n_eval = (sol.x if imbalance(sol.x) < imbalance(beta0) else beta0), sol.nfev
        if not imbalance(beta) < tol:  # no root found: the least-squares minimiser of the conditions
            sol = least_squares(lambda b: conditions(b)[0], beta, jac=lambda b: conditions(b)[1], method="lm",
                                xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=budget)
            n_eval += sol.nfev
            beta = sol.x if imbalance(sol.x) < imbalance(beta) else beta
    reached = imbalance(beta)
    return CBGPSFit(theta_of(beta), bool(reached < tol), int(n_eval), reached)


# ----------------------------------------------------------------------------------------------------------------
# kernel density (WeightIt's density = "kernel", i.e. R's stats::density with a Gaussian kernel)
# ----------------------------------------------------------------------------------------------------------------
def bw_nrd0(x):
    """Silverman's rule of thumb as R's ``bw.nrd0``: 0.9 min(SD, IQR/1.34) n^(-1/5) (unweighted, as R's density
    with weights)."""
    hi = np.std(x, ddof=1)
    q75, q25 = np.percentile(x, [75, 25])
    lo = min(hi, (q75 - q25) / 1.34)
    if not lo > 0:
        lo = hi or abs(x[0]) or 1.0
    return 0.9 * lo * len(x) ** -0.2


def kernel_density(x, weights, *, n_grid=None):
    """Weighted Gaussian kernel density of ``x`` evaluated at ``x``, by R's ``density`` method: linear binning of
    the weights on a regular grid, a circular FFT convolution with the kernel on a grid twice as long (so nothing
    wraps around), and linear interpolation back at the points. O(n + m log m) for a grid of m points, instead of
    the O(n²) of exact evaluation; the binning error is O(spacing²).

    Bandwidth :func:`bw_nrd0`; ``n_grid`` defaults to R's (10 n in WeightIt, rounded up to a power of two, at least
    512); the evaluation grid spans [min − 3 bw, max + 3 bw] and the binning grid 4 bw more on each side.
    """
    x = np.asarray(x, dtype=float)
    weights = np.asarray(weights, dtype=float) / np.sum(weights)
    bw = bw_nrd0(x)
    m = max(10 * len(x) if n_grid is None else n_grid, 512)
    m = int(2 ** np.ceil(np.log2(m))) if m > 512 else m
    lo, up = x.min() - 7.0 * bw, x.max() + 7.0 * bw
    delta = (up - lo) / (m - 1)
    pos = (x - lo) / delta
    left = np.floor(pos).astype(np.int64)
    frac = pos - left
    binned = np.bincount(left, weights * (1.0 - frac), minlength=2 * m)[: 2 * m]
    binned += np.bincount(left + 1, weights * frac, minlength=2 * m)[: 2 * m]
    offsets = np.arange(2 * m) * delta
    offsets[m + 1:] = -offsets[m - 1:0:-1]  # distances on the circle of 2m points
    kernel = np.exp(-0.5 * (offsets / bw) ** 2) / (bw * np.sqrt(2.0 * np.pi))
    smoothed = np.maximum(irfft(rfft(binned) * rfft(kernel), n=2 * m)[:m], 0.0)
    return np.interp(x, lo + delta * np.arange(m), smoothed)
