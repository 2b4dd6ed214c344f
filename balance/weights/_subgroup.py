"""Subgroup weighting: one weight model per subgroup, for moderation analysis (WeightIt's ``by =``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.linalg import block_diag
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from .._base import MParts
from .._validation import as_1d, as_pandas, check_indexes_agree, take_rows


class SubgroupWeights(BaseEstimator):
    """Fit a weighting estimator separately within each subgroup (WeightIt's ``weightit(..., by = )``).

    A moderation analysis asks whether an effect differs between subgroups (sex, age band, site). Balance within
    each subgroup is then what matters, and a weight model fitted in each subgroup gives it; the weights of all
    subgroups together serve a pooled analysis too. :class:`~balance.WeightedEffect` given a ``SubgroupWeights``
    reports the effect in every subgroup and the test of their difference (``subgroup_effects_``,
    ``subgroup_differences_``, ``subgroup_test_``).

    Parameters
    ----------
    weighter : weighting estimator
        Cloned and fitted in each subgroup with the same settings.
    by : str or array-like of shape (n_samples,)
        The name of a column of ``X`` (dropped from the covariates of the subgroup models, where it is constant), or
        the subgroup labels themselves (aligned with ``X``'s index when a Series).

    Attributes
    ----------
    estimators_ : dict
        Subgroup label -> the fitted clone of ``weighter``.
    subgroups_ : ndarray
        The subgroup labels in order (a categorical's category order, else sorted).
    subgroup_ : ndarray of shape (n_samples,)
        Each unit's subgroup label.
    weights_ : Series or ndarray of shape (n_samples,)
        Every unit's weight from its subgroup's model (on ``X``'s index when ``X`` is a DataFrame). Each subgroup's
        weights are on the inner weighter's own scale.
    ess_, max_weight_share_ : DataFrame
        The inner estimators' values, one row per subgroup.
    converged_ : bool
        Whether every subgroup's fit converged (True for methods without a solver).
    treatment_type_, treatment_levels_ : as the inner estimators'
        (every subgroup must have the same treatment levels).

    Notes
    -----
    Estimating equations (``_m_parts``, for ``vcov="asympt"``) stack the subgroups' equations: a unit contributes
    only to its own subgroup's, so the bread and meat are block-diagonal and the subgroups' parameters are
    estimated independently, as in WeightIt's stacked M-estimation with ``by``.

    References
    ----------
    Greifer, N. (2024). WeightIt: Weighting for Covariate Balance in Observational Studies (``by`` argument).
    Green, K. M., & Stuart, E. A. (2014). Examining moderation analyses in propensity score methods. Journal of
    Consulting and Clinical Psychology 82, 773–783.

    Examples
    --------
    >>> from balance import PropensityWeights, WeightedEffect
    >>> from balance.weights import SubgroupWeights
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> sw = SubgroupWeights(PropensityWeights(estimand="ATT"), by="married").fit(data.X, data.treatment)
    >>> sw.subgroups_.tolist()
    [0, 1]
    >>> fit = WeightedEffect(sw).fit(data.X, data.treatment, data.y)
    >>> fit.subgroup_effects_.index.tolist()
    [(0, 'ATT'), (1, 'ATT')]
    """

    def __init__(self, weighter, by):
        self.weighter = weighter
        self.by = by

    # the inner weighter's settings, read by WeightedEffect and the diagnostics as a weighter's own
    @property
    def estimand(self):
        return getattr(self.weighter, "estimand", "ATE")

    @property
    def treated(self):
        return getattr(self.weighter, "treated", None)

    @property
    def missing(self):
        return getattr(self.weighter, "missing", "error")

    def _split(self, X):
        """(covariates for the subgroup models, labels ndarray)."""
        if isinstance(self.by, str):
            if not isinstance(X, pd.DataFrame) or self.by not in X.columns:
                raise ValueError(f"by={self.by!r} names no column of X; pass a DataFrame with that column, or the "
                                 "subgroup labels themselves as by=.")
            return X.drop(columns=self.by), X[self.by].to_numpy()
        check_indexes_agree(X=X.index if isinstance(X, pd.DataFrame) else None, by=self.by)
        labels, _ = as_1d(self.by, "by")
        if len(labels) != len(X):
            raise ValueError(f"by has {len(labels)} entries but X has {len(X)} rows.")
        return X, np.asarray(labels)

    def _subgroups(self, X):
        X = as_pandas(X)  # a polars or Arrow table: its by= column is found like a pandas one
        covariates, labels = self._split(X)
        if pd.isna(labels).any():
            raise ValueError(f"by has {int(pd.isna(labels).sum())} missing value(s): every unit needs a subgroup; "
                             "drop those rows or give them a subgroup of their own.")
        column = self.by if isinstance(self.by, str) else getattr(self.by, "name", None)
        source = X[self.by] if isinstance(self.by, str) else self.by
        if isinstance(getattr(source, "dtype", None), pd.CategoricalDtype):
            levels = np.asarray([c for c in source.cat.categories if (labels == c).any()], dtype=object)
        else:
            levels = np.asarray(sorted(pd.unique(labels).tolist()), dtype=object)
        if len(levels) < 2:
            raise ValueError(f"by{'' if column is None else f'={column!r}'} has a single subgroup "
                             f"({levels[0]!r}); subgroup weighting needs two or more.")
        return covariates, labels, levels

    def fit(self, X, treatment, sample_weight=None):
        """Fit a clone of ``weighter`` in every subgroup. Returns self."""
        covariates, labels, levels = self._subgroups(X)
        treatment_values = treatment
        self.estimators_, weights = {}, np.empty(len(labels))
        for level in levels:
            rows = np.flatnonzero(labels == level)
            t_g = take_rows(treatment_values, rows)
            if pd.Series(np.asarray(t_g)).nunique() < 2:
                raise ValueError(f"subgroup {level!r} of by has a single treatment value; every subgroup needs "
                                 "both (all) treatment groups to be weighted. Merge it with another subgroup or "
                                 "drop it.")
            sw_g = None if sample_weight is None else take_rows(sample_weight, rows)
            try:
                fitted = clone(self.weighter).fit(take_rows(covariates, rows), t_g, sample_weight=sw_g)
            except ValueError as exc:
                raise ValueError(f"in subgroup {level!r} of by: {exc}") from exc
            self.estimators_[level] = fitted
            weights[rows] = np.asarray(fitted.weights_, dtype=float)
        first = self.estimators_[levels[0]]
        for level, fitted in self.estimators_.items():
            if list(fitted.treatment_levels_) != list(first.treatment_levels_):
                raise ValueError(f"subgroup {level!r} has treatment levels {list(fitted.treatment_levels_)}, "
                                 f"subgroup {levels[0]!r} {list(first.treatment_levels_)}: every subgroup needs "
                                 "the same levels.")
        self.subgroups_, self.subgroup_ = levels, labels
        self.treatment_type_ = getattr(first, "treatment_type_", "binary")
        self.treatment_levels_ = first.treatment_levels_
        self.converged_ = all(getattr(f, "converged_", True) for f in self.estimators_.values())
        self.ess_ = pd.DataFrame({level: f.ess_ for level, f in self.estimators_.items()}).T.rename_axis("subgroup")
        self.max_weight_share_ = pd.DataFrame({level: f.max_weight_share_ for level, f in
                                               self.estimators_.items()}).T.rename_axis("subgroup")
        self.weights_ = pd.Series(weights, index=X.index, name="weights") if isinstance(X, pd.DataFrame) else weights
        return self

    def _m_parts(self, X, treatment, sample_weight=None):
        """The subgroups' :class:`~balance.MParts` stacked block-diagonally (a unit's ψ is zero outside its own
        subgroup's block)."""
        check_is_fitted(self, "estimators_")
        covariates, labels = self._split(X)
        n = len(labels)
        blocks = []
        for level, fitted in self.estimators_.items():
            rows = np.flatnonzero(labels == level)
            sw_g = None if sample_weight is None else take_rows(sample_weight, rows)
            if not hasattr(fitted, "_m_parts"):
                raise NotImplementedError(f"{type(fitted).__name__} provides no estimating equations")
            parts = fitted._m_parts(take_rows(covariates, rows), take_rows(treatment, rows), sw_g)
            blocks.append((level, rows, parts))
        sizes = [len(p.params) for _, _, p in blocks]
        cuts = np.cumsum([0, *sizes])

        def pieces(theta):
            return [(rows, parts, theta[cuts[k]:cuts[k + 1]]) for k, (_, rows, parts) in enumerate(blocks)]

        def psi(theta):
            out = np.zeros((n, cuts[-1]))
            for k, (rows, parts, th) in enumerate(pieces(theta)):
                out[rows, cuts[k]:cuts[k + 1]] = parts.psi(th)
            return out

        def weights(theta):
            out = np.empty(n)
            for rows, parts, th in pieces(theta):
                out[rows] = parts.weights(th)
            return out

        def psi_jacobian(theta):
            return block_diag(*[parts.psi_jacobian(th) for _, parts, th in pieces(theta)])

        def weights_jacobian(theta):
            out = np.zeros((n, cuts[-1]))
            for k, (rows, parts, th) in enumerate(pieces(theta)):
                out[rows, cuts[k]:cuts[k + 1]] = parts.weights_jacobian(th)
            return out

        # analytic derivatives only when every block has them (else the engine differentiates numerically)
        analytic = all(p.psi_jacobian is not None and p.weights_jacobian is not None for _, _, p in blocks)
        names = tuple(f"[{level}] {name}" for level, _, parts in blocks for name in parts.names)
        return MParts(np.concatenate([p.params for _, _, p in blocks]), names, psi, weights,
                      psi_jacobian if analytic else None, weights_jacobian if analytic else None)

