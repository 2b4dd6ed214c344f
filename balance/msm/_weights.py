"""Weights for a treatment history: the product over time points of per-time weights (marginal structural models).

Robins, Hernán & Brumback (2000): with a treatment A_t at time points t = 1..T, each depending on the history H_t
(baseline and earlier covariates, earlier treatments), the weight of a unit is

    W = s · Π_t f_t · Π_t g_t,

where s is the sampling weight, f_t the ATE weight of A_t given H_t (1/P(A_t = a_t | H_t) for inverse
probability weights; any weighting method of the package) and, for stabilised weights, g_t = P(A_t = a_t | A_1..A_{t-1})
the numerator, a model saturated in the earlier treatments (WeightIt's choice; here the cell proportions, which are
the fitted values of that saturated logit).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.linalg import block_diag
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from .._base import MParts
from .._stats import kish_ess
from .._treatment import check_treatment
from .._validation import check_sample_weight
from ..diagnostics._weights import ExtremeWeightsWarning, check_extreme_weights, weight_groups
from ..effects._sandwich import numerical_jacobian
from ..weights import CBPS, PropensityWeights
from ..weights._balance_conditions import new_terms
from ._cbps import JointCBPS
from ._censoring import check_uncensored
from ._data import check_msm_data

_ADVICE = ("The product of per-time weights grows with the number of time points: consider stabilize=True, fewer or "
           "coarser covariates per time point, or a bootstrap variance.")


class SaturatedNumerator:
    """P(A_t = a_t | A_1..A_{t−1}) from the (sampling-weighted) proportions of each level among the units with the
    same earlier treatments: the fitted values of a model saturated in the earlier treatments.

    Parameters: p_{c,k}, the share of level k ≥ 1 in history cell c. Estimating functions
    ψ_{c,k} = s 1{cell = c} (1{A = k} − p_{c,k}); the factor is p_{c,a} (a ≥ 1) or 1 − Σ_k p_{c,k} (a = 0).
    """

    def __init__(self, previous, codes, n_levels, sample_weight):
        self.n_levels = n_levels
        self.sw = sample_weight
        if previous.shape[1]:
            _, self.cell = np.unique(previous, axis=0, return_inverse=True)
            self.cell = self.cell.ravel()
        else:
            self.cell = np.zeros(len(codes), dtype=np.int64)
        self.n_cells = int(self.cell.max()) + 1
        self.codes = codes
        self.totals = np.bincount(self.cell, weights=sample_weight, minlength=self.n_cells)
        self.onehot = (codes[:, None] == np.arange(1, n_levels)).astype(float)  # (n, K-1)
        counts = np.column_stack([np.bincount(self.cell, weights=sample_weight * self.onehot[:, k],
                                              minlength=self.n_cells) for k in range(n_levels - 1)])
        self.params = (counts / np.where(self.totals > 0, self.totals, 1.0)[:, None]).ravel()
        self.names = tuple(f"cell{c}:level{k}" for c in range(self.n_cells) for k in range(1, n_levels))

    def _shares(self, theta):
        return theta.reshape(self.n_cells, self.n_levels - 1)[self.cell]  # (n, K-1)

    def factor(self, theta):
        shares = self._shares(theta)
        return np.where(self.codes == 0, 1.0 - shares.sum(axis=1), (shares * self.onehot).sum(axis=1))

    def factor_jacobian(self, theta):
        out = np.zeros((len(self.codes), theta.size))
        rows = np.arange(len(self.codes))
        sign = np.where(self.codes == 0, -1.0, 1.0)
        for k in range(self.n_levels - 1):
            hit = (self.codes == 0) | (self.codes == k + 1)
            out[rows[hit], self.cell[hit] * (self.n_levels - 1) + k] = sign[hit]
        return out

    def psi(self, theta):
        out = np.zeros((len(self.codes), theta.size))
        resid = self.sw[:, None] * (self.onehot - self._shares(theta))
        rows = np.arange(len(self.codes))
        for k in range(self.n_levels - 1):
            out[rows, self.cell * (self.n_levels - 1) + k] = resid[:, k]
        return out

    def psi_jacobian(self, theta):
        return -np.kron(np.diag(self.totals), np.eye(self.n_levels - 1))


class AdditiveNumerator:
    """P(A_t = a_t | A_1..A_{t−1}) from a logit (multinomial logit) additive in the earlier treatments' codes: fewer
    parameters than the saturated model when there are many time points. The factor is 1 over the propensity
    model's ATE weight; its parameters are :class:`~balance.PropensityWeights`' (logistic score equations)."""

    def __init__(self, previous, treatment, sample_weight):
        self.sw = sample_weight
        X = pd.DataFrame(previous, columns=[f"A_prev{j + 1}" for j in range(previous.shape[1])])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtremeWeightsWarning)
            fitted = PropensityWeights().fit(X, treatment, sample_weight=sample_weight)
        self.parts = fitted._m_parts(X, treatment, sample_weight)
        self.params, self.names = self.parts.params, self.parts.names
        self.psi, self.psi_jacobian = self.parts.psi, self.parts.psi_jacobian

    def factor(self, theta):
        return np.divide(self.sw, self.parts.weights(theta), out=np.ones_like(self.sw), where=self.sw > 0)

    def factor_jacobian(self, theta):
        g = self.factor(theta)
        scaled = np.divide(self.parts.weights_jacobian(theta), self.sw[:, None], out=np.zeros((len(g), theta.size)),
                           where=self.sw[:, None] > 0)
        return -(g ** 2)[:, None] * scaled


class MSMWeights(BaseEstimator):
    """Weights for the effect of a treatment history: the product of per-time-point weights (WeightIt's
    ``weightitMSM``).

    A clone of ``weighter`` (with the ATE estimand, the only one for treatment histories) is fitted at each time point
    on that time's covariates ``X_list[t]`` and treatment ``treatments.iloc[:, t]``; the final weight is the product
    of their weights (sampling weights counted once).

    Parameters
    ----------
    weighter : weighting estimator, default=None
        Fitted at each time point; None means ``PropensityWeights()`` (logistic inverse probability weights,
        WeightIt's ``method = "glm"``). Its estimand must be "ATE".
    stabilize : bool, default=False
        Multiply by the numerator P(A_t = a_t | A_1..A_{t−1}) (WeightIt's ``stabilize = TRUE``).
    numerator : {None, "saturated", "additive"}, default=None
        The numerator's model of the earlier treatments: None or "saturated", the share of each level among units
        with the same earlier treatments (WeightIt's choice, the fitted values of a saturated logit); "additive",
        a logit additive in the earlier treatments (2^{t−1} cells become t parameters over many time points).
        Both are functions of the treatment history only, so either keeps the MSM's estimates consistent.
    censoring : CensoringWeights, default=None
        With ``fit(..., uncensored=...)``: multiply by inverse probability of censoring weights, the dropout in
        interval t modelled from ``X_list[t]`` and the treatment at t; the treatment models (and numerators) at
        time t use the units still observed at its start.

    Attributes
    ----------
    weights_ : Series or ndarray of shape (n_samples,)
        Final weights (sampling weights included once).
    time_weights_ : DataFrame of shape (n_samples, n_times)
        Each time point's weight factor (without the sampling weights and without the numerator).
    propensities_ : DataFrame of shape (n_samples, n_times)
        The propensity scores P(A_t = 1 | H_t) where the weighter has them (``ps_``); absent otherwise.
    numerators_ : DataFrame of shape (n_samples, n_times)
        The stabilisation numerators (``stabilize=True`` only).
    estimators_ : list of fitted weighters
        One per time point.
    times_ : list of str
        The time points (the treatment columns).
    ess_ : DataFrame
        Kish's ESS of the final weights by treatment group at each time point (rows: time points).
    converged_ : bool
        Every time point's weight model converged (the joint solve for CBPS).
    joint_ : bool
        Whether CBPS was fitted jointly over the time points (``weighter`` a :class:`~balance.CBPS`).
    censoring_, uncensored_ : CensoringWeights, ndarray of shape (n_samples, n_times)
        The fitted censoring weights and the fit's 0/1 observation indicators (with ``censoring``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from balance.msm import MSMWeights
    >>> rng = np.random.default_rng(0)
    >>> x0 = rng.normal(size=500); a1 = rng.binomial(1, 1 / (1 + np.exp(-x0)))
    >>> x1 = x0 + a1 + rng.normal(size=500); a2 = rng.binomial(1, 1 / (1 + np.exp(-x1 + 0.5)))
    >>> X_list = [pd.DataFrame({"x0": x0}), pd.DataFrame({"x0": x0, "a1": a1, "x1": x1})]
    >>> msm = MSMWeights(stabilize=True).fit(X_list, pd.DataFrame({"a1": a1, "a2": a2}))
    >>> msm.time_weights_.shape, bool(np.allclose(msm.weights_, msm.time_weights_.prod(axis=1) *
    ...                                                             msm.numerators_.prod(axis=1)))
    ((500, 2), True)
    """

    def __init__(self, weighter=None, *, stabilize=False, numerator=None, censoring=None):
        self.weighter = weighter
        self.stabilize = stabilize
        self.numerator = numerator
        self.censoring = censoring

    def _base_weighter(self):
        weighter = PropensityWeights() if self.weighter is None else self.weighter
        estimand = str(getattr(weighter, "estimand", "ATE")).upper()
        if estimand != "ATE":
            raise ValueError(f"weighter has estimand={estimand!r}; weights for a treatment history target the whole "
                             "population at every time point: use estimand='ATE'.")
        return weighter

    def fit(self, X_list, treatments, sample_weight=None, uncensored=None):
        """Fit the per-time weight models (and numerators) and compute the final weights.

        Parameters
        ----------
        X_list : list of DataFrame or array-like
            For each time point, the covariates its treatment model conditions on.
        treatments : DataFrame of shape (n_samples, n_times)
            One treatment column per time point, in time order.
        sample_weight : array-like of shape (n_samples,), default=None
        uncensored : DataFrame or array-like of shape (n_samples, n_times), default=None
            With ``censoring``: 1 while a unit is still observed at the end of interval t, 0 from its dropout on
            (the values of covariates, treatments and outcome after dropout are ignored but must be finite).

        Returns
        -------
        self
        """
        if self.stabilize not in (True, False):
            raise ValueError(f"stabilize={self.stabilize!r} must be True or False.")
        if self.numerator not in (None, "saturated", "additive"):
            raise ValueError(f"numerator={self.numerator!r} must be None, 'saturated' or 'additive'.")
        weighter = self._base_weighter()
        X_list, frame, times = check_msm_data(X_list, treatments)
        n = frame.shape[0]
        sw = check_sample_weight(sample_weight, n, index=frame.index)
        at_risk = self._at_risk(frame, uncensored)
        self.joint_ = isinstance(weighter, CBPS)
        if self.joint_ and (at_risk is not None or weighter.over):
            raise ValueError("MSMWeights(CBPS()) solves the just-identified balance conditions of complete histories "
                             "jointly: over=True and censoring are not available with it. Use CBPS(over=False), or "
                             "PropensityWeights or another weighter fitted per time point.")
        self.times_ = times
        self.estimators_, factors, ps = [], [], {}
        with warnings.catch_warnings():
            # the per-time factors' extremes are not the final weights'; those are checked below
            warnings.simplefilter("ignore", ExtremeWeightsWarning)
            for t, name in enumerate(frame.columns):
                sw_t = sw if at_risk is None else sw * at_risk[:, t]
                given = sample_weight if at_risk is None else sw_t
                kw = {} if given is None else {"sample_weight": given}
                est = clone(weighter).fit(X_list[t], frame[name], **kw)
                self.estimators_.append(est)
                factors.append(_per_unit_factor(np.asarray(est.weights_, dtype=float), sw_t))
                if hasattr(est, "ps_") and np.ndim(est.ps_) == 1:
                    ps[times[t]] = np.asarray(est.ps_, dtype=float)
        if self.joint_:
            factors, ps = self._fit_joint_cbps(X_list, frame, sample_weight, sw)
        self.converged_ = all(bool(getattr(est, "converged_", True)) for est in self.estimators_)
        index = frame.index
        self.time_weights_ = pd.DataFrame(np.column_stack(factors), index=index, columns=times)
        if ps:
            self.propensities_ = pd.DataFrame(ps, index=index)
        else:
            self.__dict__.pop("propensities_", None)
        weights = sw * self.time_weights_.prod(axis=1).to_numpy()
        if self.stabilize:
            self.numerators_ = pd.DataFrame(
                np.column_stack([m.factor(m.params) for m in self._numerators(frame, sw, at_risk)]), index=index,
                columns=times)
            weights = weights * self.numerators_.prod(axis=1).to_numpy()
        else:
            self.__dict__.pop("numerators_", None)
        if at_risk is not None:
            self.uncensored_ = check_uncensored(uncensored, frame.index, *frame.shape)
            self.censoring_ = clone(self.censoring).fit(_censoring_covariates(X_list, frame), uncensored,
                                                        sample_weight=sample_weight)
            weights = weights * _per_unit_factor(np.asarray(self.censoring_.weights_, dtype=float), sw)
        else:
            self.__dict__.pop("censoring_", None)
            self.__dict__.pop("uncensored_", None)
        self.sample_weight_ = None if sample_weight is None else sw
        self.weights_ = pd.Series(weights, index=index, name="weights") if isinstance(treatments, pd.DataFrame) \
            or isinstance(X_list[0], pd.DataFrame) else weights
        self.ess_ = _ess_by_time(weights, frame, times)
        check_extreme_weights(weights, *weight_groups(check_treatment(frame.iloc[:, -1])), who="MSMWeights",
                              advice=_ADVICE, stacklevel=2)
        return self

    def _joint_equations(self, X_list, frame, sample_weight, sw):
        """The joint CBPS equations on this data, and the fitted per-time logits as the start."""
        matrices, codes = [], []
        for t, est in enumerate(self.estimators_):
            data, M = new_terms(est, X_list[t], frame.iloc[:, t], sample_weight)
            if data.treatment.kind != "binary":
                raise ValueError(f"CBPS over time points is fitted jointly for binary treatments only; treatment "
                                 f"{self.times_[t]!r} is {data.treatment.kind}. Use MSMWeights(PropensityWeights()) "
                                 "or another weighter, fitted per time point.")
            matrices.append(M)
            codes.append(data.a)
        names = [tuple(f"{self.times_[t]}:{n}" for n in ("(Intercept)", *est.terms_))
                 for t, est in enumerate(self.estimators_)]
        return JointCBPS(matrices, codes, sw, names)

    def _fit_joint_cbps(self, X_list, frame, sample_weight, sw):
        """Solve the joint balance conditions from the per-time CBPS fits; the per-time estimators are updated
        to the joint solution (coefficients, scores, weights) so that they describe the final model."""
        joint = self._joint_equations(X_list, frame, sample_weight, sw)
        start = joint.start_from([e.intercept_ for e in self.estimators_], [e.coef_ for e in self.estimators_])
        theta, converged, imbalance = joint.solve(start, self.estimators_[0].tol)
        if not converged:
            warnings.warn(f"MSMWeights(CBPS): the joint balance conditions were not solved (largest mean imbalance "
                          f"{imbalance:.2e} in standardised units); the weights do not balance every time point. "
                          "Use fewer or coarser covariates, or per-time weights.", ConvergenceWarning, stacklevel=3)
        factors, e = joint.factors(theta), joint.propensities(theta)
        for t, (est, (b0, b)) in enumerate(zip(self.estimators_, joint.original_scale(theta))):
            est.intercept_, est.coef_, est.converged_ = b0, b, converged
            est.ps_ = e[:, t] if not isinstance(est.ps_, pd.Series) else pd.Series(e[:, t], index=est.ps_.index)
            w = factors[:, t] * sw
            est.weights_ = w if not isinstance(est.weights_, pd.Series) else pd.Series(w, index=est.weights_.index,
                                                                                         name="weights")
        self.imbalance_ = imbalance
        return list(factors.T), {self.times_[t]: e[:, t] for t in range(len(self.times_))}

    def _at_risk(self, frame, uncensored):
        """(n, T) 0/1: the unit is still observed at the start of time point t; None without censoring."""
        if (uncensored is None) != (self.censoring is None):
            raise ValueError("censoring weights need both MSMWeights(censoring=CensoringWeights()) and fit(..., "
                             "uncensored=<0/1 per time point>); one of them is missing.")
        if uncensored is None:
            return None
        observed = check_uncensored(uncensored, frame.index, *frame.shape)
        return np.column_stack([np.ones(len(frame), dtype=np.int64), observed[:, :-1]])

    def _numerators(self, frame, sw, at_risk=None):
        """The fitted numerator of every time point (among the units at risk): :class:`SaturatedNumerator`, or
        :class:`AdditiveNumerator` after the first time point with ``numerator="additive"``."""
        coded = [check_treatment(frame[c]) for c in frame.columns]
        previous = np.column_stack([t.codes for t in coded])
        out = []
        for t, treatment in enumerate(coded):
            sw_t = sw if at_risk is None else sw * at_risk[:, t]
            if self.numerator == "additive" and t > 0:
                out.append(AdditiveNumerator(previous[:, :t], frame.iloc[:, t].to_numpy(), sw_t))
            else:
                out.append(SaturatedNumerator(previous[:, :t], treatment.codes.astype(np.int64), treatment.n_levels,
                                              sw_t))
        return out

    # -- M-estimation seam -------------------------------------------------------------------------------------
    def _m_parts(self, X_list, treatments, sample_weight=None, uncensored=None):
        """Every time point's (and numerator's) estimating equations, stacked; the weights are their product.

        Raises NotImplementedError when a time point's weighter has no M-estimation form."""
        check_is_fitted(self, "weights_")
        X_list, frame, times = check_msm_data(X_list, treatments)
        sw = check_sample_weight(sample_weight, frame.shape[0], index=frame.index)
        if uncensored is None and hasattr(self, "censoring_"):
            uncensored = self.uncensored_  # the fit's (the variance engine passes X, treatment and weights only)
        at_risk = self._at_risk(frame, uncensored)
        blocks = []  # (params, names, psi, psi_jac, factor, factor_jac)
        if self.joint_:
            joint = self._joint_equations(X_list, frame, sample_weight, sw)
            theta = joint.start_from([e.intercept_ for e in self.estimators_], [e.coef_ for e in self.estimators_])
            blocks.append(_time_block(joint.m_parts(theta), sw, ""))
        for t, est in enumerate([] if self.joint_ else self.estimators_):
            sw_t = sample_weight if at_risk is None else sw * at_risk[:, t]
            parts = est._m_parts(X_list[t], frame.iloc[:, t], sw_t)
            blocks.append(_time_block(parts, sw if sw_t is None else sw_t, f"{times[t]}:"))
        if at_risk is not None:
            parts = self.censoring_._m_parts(_censoring_covariates(X_list, frame), uncensored, sample_weight)
            blocks.append(_time_block(parts, sw, ""))
        if self.stabilize:
            for t, num in enumerate(self._numerators(frame, sw, at_risk)):
                blocks.append((num.params, tuple(f"num_{times[t]}:{n}" for n in num.names), num.psi,
                               num.psi_jacobian, num.factor, num.factor_jacobian))
        sizes = [b[0].size for b in blocks]
        cuts = np.cumsum([0, *sizes])

        def split(theta):
            return [theta[cuts[j]:cuts[j + 1]] for j in range(len(blocks))]

        def factors(theta):
            return np.column_stack([b[4](th) for b, th in zip(blocks, split(theta))])

        def psi(theta):
            return np.hstack([b[2](th) for b, th in zip(blocks, split(theta))])

        def psi_jacobian(theta):
            return block_diag(*[b[3](th) for b, th in zip(blocks, split(theta))])

        def weights(theta):
            return sw * factors(theta).prod(axis=1)

        def weights_jacobian(theta):
            f = factors(theta)
            out = []
            for j, (b, th) in enumerate(zip(blocks, split(theta))):
                others = sw * np.prod(np.delete(f, j, axis=1), axis=1)
                out.append(others[:, None] * b[5](th))
            return np.hstack(out)

        return MParts(params=np.concatenate([b[0] for b in blocks]), names=tuple(n for b in blocks for n in b[1]),
                      psi=psi, weights=weights, psi_jacobian=psi_jacobian, weights_jacobian=weights_jacobian)


def _censoring_covariates(X_list, frame):
    """What predicts dropout in interval t: the history X_list[t] and the treatment at t."""
    out = []
    for X, name in zip(X_list, frame.columns):
        if isinstance(X, pd.DataFrame):
            out.append(X.assign(**{str(name): frame[name].to_numpy()}))
        else:
            out.append(np.column_stack([np.asarray(X), frame[name].to_numpy()]))
    return out


def _per_unit_factor(weights, sw):
    """A time point's weight without the sampling weight (0 where the sampling weight is 0)."""
    return np.divide(weights, sw, out=np.zeros_like(weights), where=sw > 0)


def _time_block(parts, sw, prefix):
    """One time point's MParts as a block of the product: its factor f_t = w_t / s and derivatives."""
    def psi_jac(theta):
        if parts.psi_jacobian is not None:
            return parts.psi_jacobian(theta)
        return numerical_jacobian(lambda th: parts.psi(th).sum(axis=0), theta)

    def factor(theta):
        return _per_unit_factor(parts.weights(theta), sw)

    def factor_jac(theta):
        dw = parts.weights_jacobian(theta) if parts.weights_jacobian is not None else \
            numerical_jacobian(parts.weights, theta)
        return np.divide(dw, sw[:, None], out=np.zeros_like(dw), where=sw[:, None] > 0)

    return parts.params, tuple(prefix + n for n in parts.names), parts.psi, psi_jac, factor, factor_jac


def _ess_by_time(weights, frame, times):
    """Kish's ESS of the final weights in each treatment group of every time point (cobalt's per-time
    "Effective sample sizes")."""
    rows = {}
    for t, name in enumerate(frame.columns):
        coded = check_treatment(frame[name])
        labels = ["control", "treated"] if coded.kind == "binary" else [str(v) for v in coded.levels]
        rows[times[t]] = {label: kish_ess(weights[coded.codes == k]) for k, label in enumerate(labels)}
    return pd.DataFrame(rows).T.rename_axis("time")
