"""Natural cubic spline basis with R's ``splines::ns()`` parametrisation (so coefficients match R's).

``ns(x, df)`` (no intercept) places ``df − 1`` interior knots at the quantiles ``1/df, ..., (df − 1)/df`` of x (R's
default quantile, numpy's "linear") and the boundary knots at its range. The cubic B-spline basis on those knots
(boundary knots of multiplicity 4), without its first function, is reduced to the natural splines (second derivative
zero at both boundary knots) by the last columns of Q in the QR decomposition of the boundary constraints, exactly as
R's ``ns`` does; beyond the boundary knots the basis continues linearly (R's ``predict.ns``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline


@dataclass(frozen=True)
class NaturalSplineBasis:
    """A fitted natural cubic spline basis: interior and boundary knots, evaluated by :meth:`transform`.

    Examples
    --------
    >>> import numpy as np
    >>> basis = NaturalSplineBasis.from_data(np.arange(58.0, 73.0), df=5)
    >>> basis.knots.round(1).tolist(), basis.boundary.tolist()
    ([60.8, 63.6, 66.4, 69.2], [58.0, 72.0])
    >>> basis.transform([58.0, 65.0, 72.0]).shape
    (3, 5)
    """

    knots: np.ndarray
    boundary: np.ndarray

    @classmethod
    def from_data(cls, x, df=3, knots=None):
        """Knots from the data as ``ns(x, df)`` (or ``ns(x, knots=knots)`` when ``knots`` is given)."""
        x = np.asarray(x, dtype=float)
        boundary = np.array([x.min(), x.max()])
        if knots is None:
            knots = np.quantile(x, np.arange(1, df) / df)
        knots = np.sort(np.asarray(knots, dtype=float))
        positions = np.concatenate([boundary[:1], knots, boundary[1:]])
        if boundary[0] == boundary[1] or np.any(np.diff(positions) <= 0):
            raise ValueError(
                f"the spline's knots {np.round(positions, 6).tolist()} (boundary knots at the treatment's range, "
                "interior knots at its quantiles) are not strictly increasing: too many tied treatment values for "
                f"{len(knots) + 1} degrees of freedom. Use a smaller df, or pass knots= strictly inside the range.")
        return cls(knots, boundary)

    @property
    def df(self):
        return len(self.knots) + 1

    def _bsplines(self, x, nu=0):
        """Cubic B-splines on the augmented knots (and derivative ``nu``), first function dropped (no intercept)."""
        augmented = np.concatenate([np.repeat(self.boundary[0], 4), self.knots, np.repeat(self.boundary[1], 4)])
        n_basis = len(augmented) - 4
        return BSpline(augmented, np.eye(n_basis), 3, extrapolate=True)(x, nu=nu)[:, 1:]

    def _null_space(self):
        """Columns spanning the B-spline coefficients with zero second derivative at both boundary knots."""
        constraints = self._bsplines(self.boundary, nu=2)
        q = np.linalg.qr(constraints.T, mode="complete")[0]  # Householder QR, R's sign convention
        return q[:, 2:]

    def transform(self, x):
        """The basis at ``x``: an array of shape (len(x), df); linear beyond the boundary knots."""
        x = np.asarray(x, dtype=float)
        inside = np.clip(x, *self.boundary)
        values = self._bsplines(inside)
        outside = x != inside
        if outside.any():  # the natural spline is linear there: value and slope at the nearest boundary knot
            values[outside] += (x - inside)[outside, None] * self._bsplines(inside[outside], nu=1)
        return values @ self._null_space()
