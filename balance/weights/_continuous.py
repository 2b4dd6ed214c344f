"""Balance conditions for a continuous treatment, shared by the balancing weighters (entropy balancing, stable
weights): the treatment's mean and every balance term's mean unchanged, and zero weighted covariance between the
treatment and each term (WeightIt's ``ebal`` and ``optweight`` for a continuous treatment).

With weights that keep the means of A and of each term x_j at their sample values Ā and x̄_j, the weighted
covariance of A and x_j is zero exactly when the weighted mean of (A − Ā)(x_j − x̄_j) is zero: so the conditions
are the weighted means of the columns ``[A, x, (A − Ā)(x − x̄)]`` equal to ``[Ā, x̄, 0]``, linear in the weights,
and the binary machinery (one reweighted group, the full sample its own target) applies unchanged.
"""

from __future__ import annotations

import numpy as np

from .._base import MParts
from .._stats import normalise

TREATMENT_NAME = "treatment"


def continuous_conditions(a, M, sw, names):
    """The condition columns ``C = [A, M, (A − Ā)(M − M̄)]`` (sampling-weighted means), their targets
    ``[Ā, M̄, 0]`` (the weighted means of C the weights must give) and their names."""
    u = normalise(sw)
    mean_a, mean_m = u @ a, u @ M
    C = np.column_stack([a, M, (a - mean_a)[:, None] * (M - mean_m)])
    labels = [TREATMENT_NAME, *names, *(f"{TREATMENT_NAME}:{n}" for n in names)]
    return C, np.r_[mean_a, mean_m, np.zeros(M.shape[1])], labels


def continuous_tilt_parts(a, M, sw, base, intercept, coef, names, *, fixed_targets=False):
    """:class:`~balance._base.MParts` of continuous entropy balancing.

    The conditions are written with the targets as parameters μ = (μ_A, μ_M), z(μ) = (1, A − μ_A, M − μ_M,
    (A − μ_A)(M − μ_M)) and the weights t = b exp(z(μ)'λ) (b the base times sampling weights):

        ψ_μ = s (A − μ_A, M − μ_M),    ψ_λ = s e₀ − t z(μ),

    e₀ = (1, 0, ..., 0), so that Σ t = Σ s and every other weighted mean of z is 0. With ``fixed_targets`` the
    means are held at their sample values (ψ_μ and μ leave the parameters): WeightIt's "asympt" convention, which
    ignores that the targets are estimated. ``intercept`` and ``coef`` are the fitted solution for the columns of
    :func:`continuous_conditions` (which centre at the sample means, so only the intercept changes).
    """
    p = M.shape[1]
    u = normalise(sw)
    mu = np.r_[u @ a, u @ M]
    lam = np.r_[intercept + coef[:1 + p] @ mu, coef]
    n_mu = 0 if fixed_targets else 1 + p

    def split(theta):
        return (mu if fixed_targets else theta[:n_mu]), theta[n_mu:]

    def pieces(theta):
        m, lam_ = split(theta)
        da, dM = a - m[0], M - m[1:]
        z = np.column_stack([np.ones(len(a)), da, dM, da[:, None] * dM])
        with np.errstate(over="ignore"):
            t = base * np.exp(z @ lam_)
        return m, lam_, da, dM, z, t

    def psi(theta):
        _, _, da, dM, z, t = pieces(theta)
        tilt = -t[:, None] * z
        tilt[:, 0] += sw
        if fixed_targets:
            return tilt
        return np.hstack([sw[:, None] * np.column_stack([da, dM]), tilt])

    def dz_lam(lam_, da, dM):
        """g_i = (∂z_i/∂μ)'λ: the derivative of the logit z_i'λ in μ_A and each μ_M."""
        lam_a, lam_m, lam_am = lam_[1], lam_[2:2 + p], lam_[2 + p:]
        return np.column_stack([-lam_a - dM @ lam_am, -lam_m - da[:, None] * lam_am])

    def psi_jacobian(theta):
        _, lam_, da, dM, z, t = pieces(theta)
        j_lam = -(z * t[:, None]).T @ z
        if fixed_targets:
            return j_lam
        k = z.shape[1]
        jac = np.zeros((n_mu + k, n_mu + k))
        jac[:n_mu, :n_mu] = -sw.sum() * np.eye(n_mu)
        # ∂ψ_λ/∂μ = −Σ z (∂t/∂μ)' − Σ t ∂z/∂μ, with ∂t/∂μ = t g
        d_mu = -(z * t[:, None]).T @ dz_lam(lam_, da, dM)
        st = t.sum()
        d_mu[1, 0] += st
        d_mu[2 + p:, 0] += t @ dM
        d_mu[2:2 + p, 1:] += st * np.eye(p)
        d_mu[2 + p:, 1:] += (t @ da) * np.eye(p)
        jac[n_mu:, :n_mu] = d_mu
        jac[n_mu:, n_mu:] = j_lam
        return jac

    def weights(theta):
        return pieces(theta)[-1]

    def weights_jacobian(theta):
        _, lam_, da, dM, z, t = pieces(theta)
        d_lam = z * t[:, None]
        if fixed_targets:
            return d_lam
        return np.hstack([dz_lam(lam_, da, dM) * t[:, None], d_lam])

    lam_names = ("(Intercept)", TREATMENT_NAME, *names, *(f"{TREATMENT_NAME}:{n}" for n in names))
    mean_names = () if fixed_targets else tuple(f"mean:{n}" for n in (TREATMENT_NAME, *names))
    params = lam if fixed_targets else np.r_[mu, lam]
    return MParts(params=params, names=mean_names + lam_names, psi=psi, weights=weights, psi_jacobian=psi_jacobian,
                  weights_jacobian=weights_jacobian)
