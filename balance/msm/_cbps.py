"""CBPS fitted jointly over the time points of a treatment history (WeightIt 1.5.1's ``weightitMSM(method =
"cbps")``; Imai & Ratkovic 2015, in the just-identified form of Huffman & van Gameren 2018).

With logits e_t = expit(D_tᵀβ_t) at each time point (D_t = (1, terms of X_t), binary treatments) and the product of
the ATE weights W = Π_t w_t, w_t = 1/e_t for the treated and 1/(1 − e_t) for the controls, the estimating equations
are the balance conditions of every time point *with the product weight*:

    Σ_i s_i W_i (2A_it − 1) D_it = 0,   t = 1..T

(as many equations as coefficients). ∂ log w_t / ∂β_t = (e_t − A_t) D_t, which gives the analytic Jacobians.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import root
from scipy.special import expit

from .._base import MParts


class JointCBPS:
    """The joint balance equations on standardised designs; ``solve`` finds their root from a start.

    Parameters
    ----------
    matrices : list of ndarray (n, p_t)
        Each time point's CBPS terms (no intercept column).
    codes : list of ndarray (n,)
        0/1 treatments.
    sample_weight : ndarray (n,)
    names : list of tuple of str
        Parameter names per time point (intercept first).
    """

    def __init__(self, matrices, codes, sample_weight, names):
        self.centre = [m.mean(axis=0) for m in matrices]
        self.scale = [np.where(m.std(axis=0) > 0, m.std(axis=0), 1.0) for m in matrices]
        self.designs = [np.column_stack([np.ones(len(m)), (m - c) / s])
                        for m, c, s in zip(matrices, self.centre, self.scale)]
        self.codes = [np.asarray(a, dtype=float) for a in codes]
        self.sw = sample_weight
        self.names = tuple(n for block in names for n in block)
        self.cuts = np.cumsum([0, *[d.shape[1] for d in self.designs]])

    def split(self, theta):
        return [theta[self.cuts[t]:self.cuts[t + 1]] for t in range(len(self.designs))]

    def propensities(self, theta):
        return np.column_stack([expit(d @ b) for d, b in zip(self.designs, self.split(theta))])

    def factors(self, theta):
        e = self.propensities(theta)
        a = np.column_stack(self.codes)
        return np.where(a == 1, 1.0 / e, 1.0 / (1.0 - e))

    def psi(self, theta):
        W = self.sw * self.factors(theta).prod(axis=1)
        return np.hstack([d * (W * (2 * a - 1))[:, None] for d, a in zip(self.designs, self.codes)])

    def weights(self, theta):
        return self.sw * self.factors(theta).prod(axis=1)

    def _dlog(self, theta):
        e = self.propensities(theta)
        return [d * (e[:, t] - a)[:, None] for t, (d, a) in enumerate(zip(self.designs, self.codes))]

    def weights_jacobian(self, theta):
        return self.weights(theta)[:, None] * np.hstack(self._dlog(theta))

    def psi_jacobian(self, theta):
        W = self.weights(theta)
        dlog = np.hstack(self._dlog(theta))
        return np.vstack([(d * (W * (2 * a - 1))[:, None]).T @ dlog for d, a in zip(self.designs, self.codes)])

    def solve(self, start, tol):
        """Newton–Powell (MINPACK hybrid) root of the mean equations; returns (theta, converged, imbalance)."""
        n = self.sw.sum()
        out = root(lambda th: (self.psi(th).sum(axis=0) / n, self.psi_jacobian(th) / n), start, jac=True,
                   method="hybr", options={"xtol": 1e-12})
        imbalance = float(np.abs(self.psi(out.x).sum(axis=0) / n).max())
        return out.x, bool(imbalance < tol), imbalance

    def start_from(self, intercepts, coefs):
        """Standardised parameters of per-time logits given on the original scale."""
        theta = []
        for b0, b, c, s in zip(intercepts, coefs, self.centre, self.scale):
            theta.append(np.r_[b0 + b @ c, b * s])
        return np.concatenate(theta)

    def original_scale(self, theta):
        """Per time point (intercept, coefficients) on the original scale of the terms."""
        out = []
        for b, c, s in zip(self.split(theta), self.centre, self.scale):
            coef = b[1:] / s
            out.append((float(b[0] - coef @ c), coef))
        return out

    def m_parts(self, theta):
        """The joint equations as an :class:`~balance.MParts` block."""
        return MParts(params=theta, names=self.names, psi=self.psi, weights=self.weights,
                      psi_jacobian=self.psi_jacobian, weights_jacobian=self.weights_jacobian)
