"""Inverse probability of censoring weights: units that drop out are represented by similar units that stayed
(Robins & Finkelstein 2000; Hernán & Robins, *Causal Inference: What If*, ch. 12).

Follow-up is cut into intervals t = 1..T. ``uncensored[:, t]`` is 1 while a unit is still observed at the end of
interval t (0 from its dropout on). Among the units at risk (observed at the end of t − 1), a classifier estimates
π_t = P(still observed at the end of t | history); a unit observed throughout has weight Π_t 1/π_t, a unit that
dropped out weight 0.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.linalg import block_diag
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._base import MParts
from .._validation import check_sample_weight
from ..diagnostics._weights import ExtremeWeightsWarning
from ..weights import PropensityWeights
from ._data import check_msm_data


def check_uncensored(uncensored, frame_index, n, n_times):
    """0/1 matrix (n, T) of 'still observed at the end of interval t', monotone (no return after dropout)."""
    values = np.asarray(uncensored.to_numpy() if isinstance(uncensored, pd.DataFrame) else uncensored)
    if values.shape != (n, n_times):
        raise ValueError(f"uncensored must have one 0/1 column per time point, shape ({n}, {n_times}); got "
                         f"{values.shape}.")
    if isinstance(uncensored, pd.DataFrame) and frame_index is not None and not uncensored.index.equals(frame_index):
        raise ValueError("uncensored is a DataFrame whose index differs from the covariates'; align it first.")
    if not np.isin(values, (0, 1)).all():
        raise ValueError("uncensored must hold 0 (dropped out by the end of the interval) or 1 (still observed).")
    values = values.astype(np.int64)
    if np.any(np.diff(values, axis=1) > 0):
        raise ValueError("uncensored goes from 0 back to 1 for some units: censoring is permanent (a unit that "
                         "returns must be treated as a new unit or its gap imputed).")
    return values


class CensoringWeights(BaseEstimator):
    """Inverse probability of remaining uncensored, per time interval, from any classifier.

    Parameters
    ----------
    model : None or scikit-learn classifier, default=None
        None: exact logistic maximum likelihood (as R's ``glm``); a classifier with ``predict_proba`` otherwise
        (as :class:`~balance.PropensityWeights`'s ``model``).

    Attributes
    ----------
    weights_ : Series or ndarray of shape (n_samples,)
        Π_t 1/π_t for units observed throughout (sampling weights included), 0 for units that dropped out.
    time_weights_ : DataFrame of shape (n_samples, n_times)
        Each interval's factor: 1/π_t for units still observed at its end, 0 for those who dropped out in it, 1 for
        units that had dropped out before (their weight is already 0) and in intervals nobody dropped out in.
    probabilities_ : DataFrame of shape (n_samples, n_times)
        π_t for the units at risk in interval t (NaN otherwise).
    estimators_ : list
        The fitted :class:`~balance.PropensityWeights` per interval (None where nobody dropped out).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from balance.msm import CensoringWeights
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=1000)
    >>> stay1 = rng.binomial(1, 1 / (1 + np.exp(-1 - x)))
    >>> stay2 = stay1 * rng.binomial(1, 0.8, size=1000)
    >>> cw = CensoringWeights().fit([pd.DataFrame({"x": x})] * 2, pd.DataFrame({"c1": stay1, "c2": stay2}))
    >>> bool((cw.weights_[stay2 == 0] == 0).all()), round(float(cw.weights_.sum()) / 1000, 2)  # sums to about n
    (True, 1.0)
    """

    def __init__(self, model=None):
        self.model = model

    def fit(self, X_list, uncensored, sample_weight=None):
        """Fit one classifier per interval among the units at risk.

        Parameters
        ----------
        X_list : list of DataFrame or array-like
            For each interval, the covariates that predict dropout in it (finite values; those of units no longer
            at risk are ignored).
        uncensored : DataFrame or array-like of shape (n_samples, n_times)
            1 while the unit is still observed at the end of the interval.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        X_list, frame, times = check_msm_data(X_list, uncensored)
        n = frame.shape[0]
        observed = check_uncensored(frame, frame.index, n, len(times))
        sw = check_sample_weight(sample_weight, n, index=frame.index)
        self.times_ = times
        factors, probabilities, self.estimators_ = np.ones((n, len(times))), np.full((n, len(times)), np.nan), []
        for t in range(len(times)):
            at_risk = _at_risk(observed, t) & (sw > 0)
            stays = observed[:, t]
            if not np.any(at_risk & (stays == 0)):
                self.estimators_.append(None)
                continue
            est = self._fit_interval(X_list[t], stays, sw, at_risk)
            self.estimators_.append(est)
            p = np.asarray(est.ps_, dtype=float)
            probabilities[at_risk, t] = p
            factors[at_risk, t] = np.where(stays[at_risk] == 1, 1.0 / p, 0.0)
        factors[observed == 0] = np.where(_dropped_in(observed)[observed == 0], 0.0, 1.0)
        index = frame.index
        self.time_weights_ = pd.DataFrame(factors, index=index, columns=times)
        self.probabilities_ = pd.DataFrame(probabilities, index=index, columns=times)
        weights = sw * factors.prod(axis=1)
        self.weights_ = pd.Series(weights, index=index, name="weights") if isinstance(uncensored, pd.DataFrame) \
            else weights
        self.sample_weight_ = None if sample_weight is None else sw
        return self

    def _fit_interval(self, X, stays, sw, at_risk):
        rows = np.flatnonzero(at_risk)
        X_risk = X.iloc[rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtremeWeightsWarning)  # the per-interval ATE weights are not used
            return PropensityWeights(model=self.model).fit(X_risk, stays[rows], sample_weight=sw[rows])

    def _m_parts(self, X_list, uncensored, sample_weight=None):
        """The per-interval logistic scores on the units at risk (zero elsewhere), stacked; weights Π 1/π_t."""
        check_is_fitted(self, "weights_")
        X_list, frame, _ = check_msm_data(X_list, uncensored)
        n = frame.shape[0]
        observed = check_uncensored(frame, frame.index, n, len(self.times_))
        sw = check_sample_weight(sample_weight, n, index=frame.index)
        blocks = []
        for t, est in enumerate(self.estimators_):
            if est is None:
                continue
            rows = np.flatnonzero(_at_risk(observed, t) & (sw > 0))
            X_risk = X_list[t].iloc[rows] if isinstance(X_list[t], pd.DataFrame) else np.asarray(X_list[t])[rows]
            blocks.append((est._m_parts(X_risk, observed[rows, t], sw[rows]), rows, observed[rows, t]))
        cuts = np.cumsum([0, *[b[0].params.size for b in blocks]])
        alive = observed[:, -1] == 1

        def pieces(theta):
            return [(b, theta[cuts[j]:cuts[j + 1]]) for j, b in enumerate(blocks)]

        def factors(theta):
            """(n, B): 1/π for the units observed through the interval, 1 elsewhere (their weight is 0 anyway)."""
            out = np.ones((n, len(blocks)))
            for j, ((parts, rows, stays), th) in enumerate(pieces(theta)):
                out[rows, j] = np.where(stays == 1, parts.weights(th) / sw[rows], 1.0)
            return out

        def weights(theta):
            return sw * alive * factors(theta).prod(axis=1)

        def psi(theta):
            out = []
            for (parts, rows, _), th in pieces(theta):
                block = np.zeros((n, th.size))
                block[rows] = parts.psi(th)
                out.append(block)
            return np.hstack(out)

        def psi_jacobian(theta):
            return block_diag(*[parts.psi_jacobian(th) for (parts, _, _), th in pieces(theta)])

        def weights_jacobian(theta):
            f = factors(theta)
            out = []
            for j, ((parts, rows, stays), th) in enumerate(pieces(theta)):
                block = np.zeros((n, th.size))
                others = sw[rows] * alive[rows] * np.prod(np.delete(f[rows], j, axis=1), axis=1)
                block[rows] = (others * (stays == 1) / sw[rows])[:, None] * parts.weights_jacobian(th)
                out.append(block)
            return np.hstack(out)

        return MParts(params=np.concatenate([b[0].params for b in blocks]) if blocks else np.zeros(0),
                      names=tuple(f"censoring_{self.times_[t]}:{name}" for t, est in enumerate(self.estimators_)
                                  if est is not None for name in ("(Intercept)", *est.terms_)),
                      psi=psi, weights=weights, psi_jacobian=psi_jacobian, weights_jacobian=weights_jacobian)


def _at_risk(observed, t):
    """Units still observed at the start of interval t."""
    return np.ones(len(observed), dtype=bool) if t == 0 else observed[:, t - 1] == 1


def _dropped_in(observed):
    """(n, T): the unit dropped out during interval t (observed at its start, not at its end)."""
    start = np.column_stack([np.ones(len(observed), dtype=np.int64), observed[:, :-1]])
    return (start == 1) & (observed == 0)
