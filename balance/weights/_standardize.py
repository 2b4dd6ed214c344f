"""The one standardiser of the weighting solvers: columns centred and divided by their (population) SD on the way
in, coefficients mapped back to the original scale on the way out.

Newton and GMM solvers converge in a handful of steps on standardised columns whatever the covariates' units;
the SD comes from :func:`balance._stats.column_std` (scaled columns, so magnitudes of 1e200 or 1e-200 are safe),
and a constant column (SD 0) is left unscaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._stats import column_std


@dataclass(frozen=True)
class Standardizer:
    """Affine map x -> (x - center) / scale used inside the solvers, and back for the coefficients.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 5.0], [3.0, 5.0]])
    >>> std = Standardizer.fit(X, X.mean(axis=0))
    >>> std.scale.tolist(), std.design(X).tolist()  # the constant column keeps scale 1
    ([1.0, 1.0], [[1.0, -1.0, 0.0], [1.0, 1.0, 0.0]])
    >>> std.to_original(np.array([0.5, 2.0, 0.0])).tolist()  # 0.5 + 2 (x - 2) = -3.5 + 2 x
    [-3.5, 2.0, 0.0]
    """

    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X, center):
        """Centre at ``center``; scale by each column's SD (1 where it is 0, or with fewer than two rows)."""
        scale = column_std(X) if X.shape[0] > 1 else np.ones(X.shape[1])
        return cls(np.asarray(center, dtype=float), np.where(scale > 0, scale, 1.0))

    def design(self, X):
        """The standardised design [1, (X - center) / scale]."""
        Z = np.empty((X.shape[0], X.shape[1] + 1))
        Z[:, 0] = 1.0
        np.subtract(X, self.center, out=Z[:, 1:])
        Z[:, 1:] /= self.scale
        return Z

    def to_original(self, beta):
        """Coefficients [intercept, slopes] (or one such row per level, shape (k, 1 + p)) on the original scale."""
        slopes = beta[..., 1:] / self.scale
        return np.concatenate([beta[..., :1] - (slopes @ self.center)[..., None], slopes], axis=-1)

    def to_standard(self, coef):
        return np.concatenate([[coef[0] + coef[1:] @ self.center], coef[1:] * self.scale])
