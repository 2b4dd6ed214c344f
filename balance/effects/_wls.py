"""Weighted least squares with the HC0 sandwich: the effect and standard error when weights are treated as known."""

from __future__ import annotations

import numpy as np


def weighted_least_squares(design, y, weights):
    """Coefficients of a WLS fit and their HC0 (robust, weights-fixed) covariance.

    cov = (XᵀWX)⁻¹ XᵀW diag(e²) W X (XᵀWX)⁻¹ with W = diag(weights) and e the residuals, no small-sample
    correction: WeightIt's ``vcov = "HC0"``. With ``design = [1, A]`` the coefficient of A is the Hájek weighted
    difference in means.

    Parameters
    ----------
    design : ndarray of shape (n_samples, k)
    y : ndarray of shape (n_samples,)
    weights : ndarray of shape (n_samples,)

    Returns
    -------
    coef : ndarray of shape (k,)
    cov : ndarray of shape (k, k)
    """
    design, y, weights = (np.asarray(v, dtype=float) for v in (design, y, weights))
    xw = design * weights[:, None]
    bread = np.linalg.inv(xw.T @ design)
    coef = bread @ (xw.T @ y)
    scores = xw * (y - design @ coef)[:, None]
    return coef, bread @ (scores.T @ scores) @ bread
