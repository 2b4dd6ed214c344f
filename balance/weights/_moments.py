"""Balance terms beyond the means: powers of continuous covariates and pairwise interactions.

Shared by the balancing estimators (entropy balancing, CBPS, inverse probability tilting), as WeightIt's
``moments`` and ``int`` arguments. Terms that cannot carry information are left out: powers of binary columns (equal
to the column), products of two indicators of the same categorical covariate (identically zero), constant
products, and products that are linear combinations of the terms before them (balancing those is implied).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .._stats import column_std, scale_columns


def check_moments(moments, interactions):
    """Validate the ``moments`` and ``interactions`` parameters (ValueError naming them)."""
    if isinstance(moments, bool) or not isinstance(moments, numbers.Integral) or moments < 1:
        raise ValueError(f"moments={moments!r} must be a positive integer (1 balances the means).")
    if not isinstance(interactions, (bool, np.bool_)):
        raise ValueError(f"interactions={interactions!r} must be True or False.")


def _sources(design):
    """For each model-matrix column (reference-level coding) the index of the covariate it comes from."""
    out = []
    for j, (kind, levels) in enumerate(zip(design.kinds, design.categories)):
        out.extend([j] * (len(levels) - 1 if kind == "categorical" else 1))
    return out


@dataclass(frozen=True)
class TermExpansion:
    """Which extra terms to build, learned on the fitting data and replayed on new data."""

    powers: tuple  # (column index, power)
    products: tuple  # (column index, column index)
    names: tuple

    @classmethod
    def learn(cls, X, names, design, moments=1, interactions=False):
        """Choose the terms for the model matrix ``X`` (columns ``names``) of ``design``."""
        if moments == 1 and not interactions:
            return cls((), (), ())
        binary = np.all((X == 0) | (X == 1), axis=0)
        sources = _sources(design) if design is not None and len(_sources(design)) == X.shape[1] \
            else list(range(X.shape[1]))
        powers = [(j, k) for j in range(X.shape[1]) if not binary[j] for k in range(2, moments + 1)]
        products = []
        if interactions:
            products = [(i, j) for i in range(X.shape[1]) for j in range(i + 1, X.shape[1])
                        if sources[i] != sources[j]]
        candidate = cls(tuple(powers), tuple(products), ())
        extra = candidate._extra(X, names)
        keep = _independent_columns(np.column_stack([X, extra]), X.shape[1]) if extra.shape[1] else []
        powers = [t for m, t in enumerate(powers) if X.shape[1] + m in keep]
        products = [t for m, t in enumerate(products) if X.shape[1] + len(candidate.powers) + m in keep]
        labels = [f"{names[j]}^{k}" for j, k in powers] + [f"{names[i]}:{names[j]}" for i, j in products]
        return cls(tuple(powers), tuple(products), tuple(labels))

    def _terms(self, X):
        cols = [X[:, j] ** k for j, k in self.powers] + [X[:, i] * X[:, j] for i, j in self.products]
        return np.column_stack(cols) if cols else np.empty((X.shape[0], 0))

    def _extra(self, X, names=None):
        with np.errstate(over="ignore", under="ignore"):
            extra = self._terms(X)
            reference = self._terms(scale_columns(X)[0])  # the same terms of columns scaled near 1: no overflow
        # a power or product beyond the float range (inf) or below it (rounded to 0) cannot be balanced
        bad = ~np.all(np.isfinite(extra), axis=0) | (np.any(reference != 0, axis=0) &
                                                      (np.max(np.abs(extra), axis=0) < np.finfo(float).tiny))
        if bad.any():
            terms = [f"{names[j]}^{k}" if names else f"column {j} ^ {k}" for j, k in self.powers] + \
                    [f"{names[i]}:{names[j]}" if names else f"columns {i} * {j}" for i, j in self.products]
            raise ValueError(f"the balance term(s) {[t for t, b in zip(terms, bad) if b]} leave the floating-point "
                             "range (a covariate of magnitude beyond about 1e150 or below 1e-150, raised to a power "
                             "or multiplied); rescale those covariates (e.g. income in thousands) or use moments=1 "
                             "and no interactions.")
        return extra

    def transform(self, X, names):
        """Return ``(matrix, names)``: X followed by the learned extra terms."""
        # C order whatever the input's layout, so that the same numbers give bit-identical fits (BLAS kernels
        # round differently on C- and Fortran-ordered arrays)
        if not self.names:
            return np.ascontiguousarray(X), list(names)
        return np.ascontiguousarray(np.column_stack([X, self._extra(X, names)])), list(names) + list(self.names)


def correlation_matrix(M):
    """Correlation matrix of the columns of M (constant columns give zero rows) and which columns vary; the
    intercept is orthogonal to the centred columns, so projections on it need no further term."""
    scale = column_std(M)
    usable = scale > 0
    Z = np.zeros_like(M)
    Z[:, usable] = (M[:, usable] - M[:, usable].mean(axis=0)) / scale[usable]
    return Z.T @ Z / len(M), usable


def _independent_columns(M, n_base):
    """Indices of the columns kept: all of the first ``n_base``, then each later column that is not constant and
    not a linear combination of the intercept and the columns kept before it (1 - R^2 below 1e-10 on the
    correlation matrix, in column order, so the base covariates always stay).

    One in-order elimination (a Cholesky factorisation that skips dependent columns) instead of a regression per
    candidate: the base block is projected out of the later columns' correlation matrix at once, then each kept
    column is projected out of the columns after it. Its remaining diagonal entry is the candidate's 1 - R^2 on
    the columns kept before it: O(k^3) in all for k columns, where a least-squares solve per candidate is O(k^4).
    """
    if n_base + 1 >= len(M):
        # the intercept and the base columns already span the sample (or are collinear, which the fit then
        # reports): no later column is independent
        return list(range(n_base))
    gram, usable = correlation_matrix(M)
    base, later = gram[:n_base, :n_base], gram[:n_base, n_base:]
    # the later columns' correlations given the base (minimum-norm solve, as a collinear base is reported later)
    schur = gram[n_base:, n_base:] - later.T @ np.linalg.lstsq(base, later, rcond=None)[0]
    keep = list(range(n_base))
    for m in range(schur.shape[0]):
        pivot = schur[m, m]
        if usable[n_base + m] and pivot > 1e-10:
            keep.append(n_base + m)
            schur[m + 1:, m + 1:] -= np.outer(schur[m + 1:, m], schur[m, m + 1:]) / pivot
    return keep
