"""The quantities an effect estimate reports: contrasts of potential-outcome means, and the means themselves.

A binary treatment reports one contrast (the effect, treated minus control) followed by ``mu1`` and ``mu0``. A
treatment with K ≥ 3 levels reports every pairwise contrast in cobalt's and WeightIt's order ("hispan - black",
"white - black", "white - hispan" for levels black, hispan, white: each level against every earlier one) followed by
one mean per level, ``mu[<level>]``. Ratio scales compare log risks or log odds; the delta method carries the
covariance of the means to the contrasts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logit

from ._results import SCALE_LABELS


@dataclass(frozen=True)
class Contrasts:
    """Pairwise contrasts of the potential-outcome means μ_0..μ_{K−1} on a scale, and their labels.

    Parameters
    ----------
    levels : tuple
        Treatment level labels in code order (binary: ``(control, treated)``).
    scale : {"difference", "rr", "or"}
    estimand : str
        Names the binary effect's row.

    Examples
    --------
    >>> import numpy as np
    >>> c = Contrasts(("black", "hispan", "white"), "difference", "ATE")
    >>> c.labels
    ['hispan - black', 'white - black', 'white - hispan', 'mu[black]', 'mu[hispan]', 'mu[white]']
    >>> values, jac = c(np.array([1.0, 3.0, 6.0]))
    >>> values.tolist()
    [2.0, 5.0, 3.0, 1.0, 3.0, 6.0]
    """

    levels: tuple
    scale: str
    estimand: str

    @property
    def binary(self):
        return len(self.levels) == 2

    @property
    def pairs(self):
        """(level, reference level) code pairs, one per contrast."""
        k = len(self.levels)
        return [(hi, lo) for lo in range(k) for hi in range(lo + 1, k)]

    @property
    def n_contrasts(self):
        return len(self.pairs)

    @property
    def mean_codes(self):
        """The level codes of the mean rows, in reporting order (``mu1``, ``mu0`` for a binary treatment)."""
        return [1, 0] if self.binary else list(range(len(self.levels)))

    @property
    def mean_labels(self):
        return [f"mu{k}" for k in self.mean_codes] if self.binary else [f"mu[{level}]" for level in self.levels]

    @property
    def contrast_labels(self):
        suffix = "" if self.scale == "difference" else f" ({SCALE_LABELS[self.scale]})"
        if self.binary:
            return [self.estimand + suffix]
        sign = " - " if self.scale == "difference" else " / "
        return [f"{self.levels[hi]}{sign}{self.levels[lo]}{suffix}" for hi, lo in self.pairs]

    @property
    def labels(self):
        return self.contrast_labels + self.mean_labels

    def __call__(self, mu):
        """The reported values (contrasts on the inference scale, then the means) and their Jacobian in ``mu``.

        Returns
        -------
        values : ndarray of shape (n_contrasts + K,)
        jacobian : ndarray of shape (n_contrasts + K, K)
        """
        mu = np.asarray(mu, dtype=float)
        if self.scale != "difference" and (mu.min() <= 0 or (self.scale == "or" and mu.max() >= 1)):
            names = [f"mu{k}" for k in range(len(mu))] if self.binary else [f"mu[{v}]" for v in self.levels]
            shown = ", ".join(f"{name}={m:.4g}" for name, m in zip(names, mu))
            raise ValueError(f"a {SCALE_LABELS[self.scale]} needs potential-outcome means strictly inside (0, 1); "
                             f"got {shown}.")
        k = len(mu)
        values = np.empty(self.n_contrasts + k)
        jacobian = np.zeros((self.n_contrasts + k, k))
        for row, (hi, lo) in enumerate(self.pairs):
            values[row], jacobian[row, hi], jacobian[row, lo] = _contrast(mu[hi], mu[lo], self.scale)
        for row, code in enumerate(self.mean_codes, start=self.n_contrasts):
            values[row], jacobian[row, code] = mu[code], 1.0
        return values, jacobian


def _contrast(hi, lo, scale):
    """The contrast of two means on ``scale`` and its derivatives in (hi, lo)."""
    if scale == "difference":
        return hi - lo, 1.0, -1.0
    if scale == "rr":
        return np.log(hi / lo), 1 / hi, -1 / lo
    return logit(hi) - logit(lo), 1 / (hi * (1 - hi)), -1 / (lo * (1 - lo))
