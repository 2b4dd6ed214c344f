"""Front-door CATE learners for a binary treatment and a binary mediator: FD-DR, FD-R and the plug-in FD-PI.

Under the conditional front-door criterion (every X → Y path goes through Z, C blocks X–Z confounding, (X, C) blocks
Z–Y confounding) τ(c) = Σ_{z,x} {q(z | 1, c) − q(z | 0, c)} e(x | c) m(z, x, c) with e(x | c) = P(X = x | C),
q(z | x, c) = P(Z = z | X = x, C), m(z, x, c) = E[Y | Z, X, C] (Jung 2025, Eq. 4), even with an unobserved
confounder of X and Y.

References
----------
Jung, Y. (2025). Debiased front-door learners for heterogeneous effects. arXiv:2509.22531 (ICLR 2026).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from . import _data
from ._crossfit import _folds, _proba
from ._tuning import check_final_model, fit_final


def _check_binary(values, name, n, index=None):
    from .._validation import check_treatment

    if values is None:
        raise ValueError(f"{name} is required.")
    try:
        return check_treatment(values, n_samples=n, index=index, fix=_data.TREATMENT_FIX,
                               treatment_type="binary").a.astype(np.int64)
    except ValueError as exc:
        raise ValueError(f"{name} must be binary (0/1 or boolean): {str(exc).replace('treatment', name)}") from exc


def _validate(est, C, treatment, mediator, y):
    matrix, x, y, index = _data.validate(est, C, treatment, y, mediator=mediator)
    z = _check_binary(mediator, "mediator", len(x), index)
    _check_mediator_positivity(x, z)
    return matrix, x, z, y


def _check_mediator_positivity(x, z):
    """Refuse data in which a (treatment, mediator) pair never occurs: m(z, x, c) would then be pure extrapolation.

    The front-door formula averages E[Y | Z = z, X = x, C] over both mediator values within each treatment arm, so
    it needs P(Z = z | X = x, C) > 0 for every z and x (positivity of the mediator given treatment and covariates).
    A mediator equal to the treatment, or its negation, leaves two of the four pairs empty.
    """
    empty = [(xv, zv) for xv in (0, 1) for zv in (0, 1) if not np.any((x == xv) & (z == zv))]
    if empty:
        pairs = ", ".join(f"mediator = {zv} with treatment = {xv}" for xv, zv in empty)
        same = " (the mediator equals the treatment)" if np.array_equal(x, z) else (
            " (the mediator is the treatment's negation)" if np.array_equal(x, 1 - z) else "")
        raise ValueError(f"mediator: no unit has {pairs}{same}; the front-door formula needs both mediator values "
                         "in each treatment arm (positivity of P(mediator | treatment, X)). Check that the mediator "
                         "is the intended column; a mediator determined by the treatment identifies no front-door "
                         "effect.")


def _xc(x, C):
    return np.column_stack([x, C])


def _fd_models(est):
    clf = _data.default_classifier
    prop = clf() if est.propensity_model is None else est.propensity_model
    med = clf() if est.mediator_model is None else est.mediator_model
    out = _data.default_regressor() if est.outcome_model is None else est.outcome_model
    for model, name, method in ((prop, "propensity_model", "predict_proba"), (med, "mediator_model", "predict_proba"),
                                (out, "outcome_model", "predict")):
        _data.check_model(model, name, method)
    return prop, med, out


def fit_fd_nuisances(models, C, x, z, y):
    """Fit e(1 | c), q(1 | x, c) and m(z, x, c) on one sample; return them as fitted models."""
    prop, med, out = models
    return (clone(prop).fit(C, x), clone(med).fit(_xc(x, C), z),
            clone(out).fit(np.column_stack([z, x, C]), y))


def predict_fd_nuisances(fitted, C):
    """e1 (n,), q1 (n, 2) with q1[:, x] = q(1 | x, c), m (n, 2, 2) with m[:, z, x] = m(z, x, c)."""
    e_model, q_model, m_model = fitted
    n = len(C)
    q1 = _predict_q1(q_model, C)
    m = np.empty((n, 2, 2))
    for zv in (0, 1):
        for xv in (0, 1):
            m[:, zv, xv] = m_model.predict(np.column_stack([np.full(n, zv), np.full(n, xv), C]))
    return {"e1": _proba(e_model, C), "q1": q1, "m": m}


def _predict_q1(q_model, C):
    """q1 (n, 2) with q1[:, x] = q(1 | x, c)."""
    return np.column_stack([_proba(q_model, _xc(np.full(len(C), xv), C)) for xv in (0, 1)])


def _clip_numerators(e1, q1, clip):
    """e1 and q1 bounded to [clip, 1 − clip], and how many entries that moved."""
    (e1, n_e), (q1, n_q) = _data.bound_probabilities(e1, clip), _data.bound_probabilities(q1, clip)
    return e1, q1, n_e + n_q


def fd_plugin(e1, q1, m, clip=1e-6):
    """FD-PI for binary Z: Δq(c) Σ_x e(x | c)[m(1, x, c) − m(0, x, c)] (Jung 2025, Eq. 49), and the number of
    probabilities clipped to [clip, 1 − clip]."""
    e1, q1, n_clipped = _clip_numerators(e1, q1, clip)
    tau = (q1[:, 1] - q1[:, 0]) * (e1 * (m[:, 1, 1] - m[:, 0, 1]) + (1 - e1) * (m[:, 1, 0] - m[:, 0, 0]))
    return tau, n_clipped


def fd_dr_pseudo_outcome(y, x, z, e1, q1, m, e_den, q_den, floor=0.05, clip=1e-6):
    """Jung's front-door pseudo-outcome ψ = φ₁ − φ₀ (Eq. 19), the number of floored denominators and of clipped
    numerators.

    φ_x̄ = ξ_x̄ (Y − m(Z, X, C)) + π_x̄ (r(Z, C) − ν(X, C)) + s^x̄(X, C), with ξ_x̄ = q(Z | x̄, C)/q(Z | X, C),
    π_x̄ = 1{X = x̄}/e(X | C), r(z) = Σ_x m(z, x) e(x), ν(X) = Σ_z r(z) q(z | X), s^x̄(X) = Σ_z m(z, X) q(z | x̄).
    The denominators e(X | C) and q(Z | X, C) come from ``e_den`` and ``q_den`` (P(X = 1 | C), P(Z = 1 | x, C))
    floored to [floor, 1 − floor]; numerators are clipped to [clip, 1 − clip].
    """
    idx = np.arange(len(y))
    e1, q1, n_clipped = _clip_numerators(e1, q1, clip)
    e_obs_den, n_e = _data.bound_probabilities(np.where(x == 1, e_den, 1 - e_den), floor)
    q_obs_den, n_q = _data.bound_probabilities(np.where(z == 1, q_den[idx, x], 1 - q_den[idx, x]), floor)
    n_floored = n_e + n_q
    e_x = np.column_stack([1 - e1, e1])  # e(x | c) for x = 0, 1
    r = np.einsum("nzx,nx->nz", m, e_x)  # r(z, c)
    q_zx = np.stack([1 - q1, q1], axis=1)  # q(z | x, c), shape (n, z, x)
    nu = r[:, 0] * q_zx[idx, 0, x] + r[:, 1] * q_zx[idx, 1, x]
    resid = y - m[idx, z, x]
    psi = np.zeros(len(y))
    for xbar, sign in ((1, 1.0), (0, -1.0)):
        xi = q_zx[idx, z, xbar] / q_obs_den
        s = m[idx, 0, x] * q_zx[:, 0, xbar] + m[idx, 1, x] * q_zx[:, 1, xbar]
        phi = xi * resid + (x == xbar) / e_obs_den * (r[idx, z] - nu) + s
        psi += sign * phi
    return psi, n_floored, n_clipped


def _warn_clip(count, clip, stacklevel=3):
    if count:
        warnings.warn(f"{count} propensity or mediator probabilities were outside [{clip}, {1 - clip}] and were "
                      f"clipped (clip={clip}).", UserWarning, stacklevel=stacklevel)


def _warn_floor(count, floor, stacklevel=3):
    if count:
        warnings.warn(f"{count} propensity or mediator-probability denominators were outside [{floor}, {1 - floor}] "
                      f"and were floored (floor={floor}).", UserWarning, stacklevel=stacklevel)


class _FrontDoorBase(BaseEstimator):
    def _check_common(self):
        _data.check_int(self.cv, "cv", 2)
        _data.check_probability_bound(self.floor, "floor")


class FrontDoorDRLearner(_FrontDoorBase):
    """FD-DR: regression of Jung's doubly robust front-door pseudo-outcome on the covariates.

    The nuisances e(x | c), q(z | x, c) and m(z, x, c) are cross-fitted; the pseudo-outcome ψ (see
    :func:`fd_dr_pseudo_outcome`) satisfies E[ψ | C] = τ(C) if q is right, or if m and e are right.

    Parameters
    ----------
    propensity_model, mediator_model : classifiers, default=None
        P(X = 1 | C) and P(Z = 1 | X, C); None: ``_data.default_classifier()``.
    outcome_model : regressor, default=None
        E[Y | Z, X, C]; None: ``_data.default_regressor()``.
    final_model : regressor, default=None
        Regression of ψ on C; None: ``_data.default_regressor()``.
    cv : int, default=5
        Cross-fitting folds.
    floor : float, default=0.05
        Denominators e(X | C) and q(Z | X, C) are floored to [floor, 1 − floor] (Jung's code); counted in
        ``n_floored_`` and warned about.
    clip : float, default=1e-6
        Numerator probabilities are clipped to [clip, 1 − clip]; counted in ``n_clipped_`` and warned about.
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    final_model_ : regressor
    pseudo_outcome_ : ndarray of shape (n_samples,)
    nuisances_ : dict
        Out-of-fold "e1" (n,), "q1" (n, 2), "m" (n, 2, 2).
    n_floored_ : int
    n_clipped_ : int

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> from balance.hte import FrontDoorDRLearner, make_front_door
    >>> fd = make_front_door(n=2000, random_state=0)
    >>> est = FrontDoorDRLearner(LogisticRegression(), LogisticRegression(), LinearRegression(),
    ...                          final_model=LinearRegression(), random_state=0)
    >>> est = est.fit(fd.C, fd.treatment, fd.mediator, fd.y)
    >>> est.predict(fd.C).shape
    (2000,)
    """

    def __init__(self, propensity_model=None, mediator_model=None, outcome_model=None, final_model=None, cv=5,
                 floor=0.05, clip=1e-6, random_state=None):
        self.propensity_model = propensity_model
        self.mediator_model = mediator_model
        self.outcome_model = outcome_model
        self.final_model = final_model
        self.cv = cv
        self.floor = floor
        self.clip = clip
        self.random_state = random_state

    def _nuisances(self, models, C, x, z, y, folds):
        """Out-of-fold nuisance predictions (a hook: a benchmark may perturb them)."""
        n = len(x)
        out = {"e1": np.empty(n), "q1": np.empty((n, 2)), "m": np.empty((n, 2, 2))}
        for k in np.unique(folds):
            te, tr = folds == k, folds != k
            pred = predict_fd_nuisances(fit_fd_nuisances(models, C[tr], x[tr], z[tr], y[tr]), C[te])
            for key, value in pred.items():
                out[key][te] = value
        return out

    def fit(self, X, treatment, mediator, y):
        """Cross-fit the nuisances, build ψ and regress it on X (the covariates C). Returns self."""
        self._check_common()
        _data.check_probability_bound(self.clip, "clip")
        models = _fd_models(self)
        final = _data.default_regressor() if self.final_model is None else self.final_model
        check_final_model(final, weighted=False)
        C, x, z, y = _validate(self, X, treatment, mediator, y)
        folds = _folds(x, self.cv, _data.seed_from(self.random_state))
        nuis = self._nuisances(models, C, x, z, y, folds)
        psi, self.n_floored_, self.n_clipped_ = fd_dr_pseudo_outcome(
            y, x, z, nuis["e1"], nuis["q1"], nuis["m"], nuis.get("e_den", nuis["e1"]), nuis.get("q_den", nuis["q1"]),
            self.floor, self.clip)
        _warn_floor(self.n_floored_, self.floor)
        _warn_clip(self.n_clipped_, self.clip)
        self.final_model_ = fit_final(clone(final), C, psi, None, np.arange(len(y)), weighted=False)
        self.pseudo_outcome_, self.nuisances_ = psi, nuis
        return self

    def predict(self, X):
        """τ̂(c), shape (n_samples,)."""
        check_is_fitted(self, "final_model_")
        return np.asarray(self.final_model_.predict(self.design_.transform(X)[0]), dtype=float)


class FrontDoorPluginLearner(BaseEstimator):
    """FD-PI: the plug-in front-door formula with nuisance models fitted on the full data (Jung 2025, Eq. 49).

    τ̂(c) = {q̂(1 | 1, c) − q̂(1 | 0, c)} Σ_x ê(x | c){m̂(1, x, c) − m̂(0, x, c)}; the baseline for the debiased
    learners.

    Parameters
    ----------
    propensity_model, mediator_model, outcome_model
        As for :class:`FrontDoorDRLearner`.
    clip : float, default=1e-6
        Probabilities are clipped to [clip, 1 − clip]; ``predict`` warns with the count when any is.
    floor : float, default=0.05
        Positivity check of the mediator: ``fit`` counts the fitted probabilities q̂(z | x, c) of the training units
        (both mediator values at both treatment values, the ones the formula uses) below ``floor`` and warns with the
        count (the bound below which :class:`FrontDoorDRLearner` floors its denominators). Nothing is changed.

    Attributes
    ----------
    models_ : tuple
        Fitted clones (e, q, m).
    n_low_overlap_ : int
        Pairs (training unit, treatment value x) whose fitted q̂(z | x, c) is below ``floor`` for a mediator value z.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> from balance.hte import FrontDoorPluginLearner, make_front_door
    >>> fd = make_front_door(n=2000, random_state=0)
    >>> pi = FrontDoorPluginLearner(LogisticRegression(), LogisticRegression(), LinearRegression())
    >>> bool(abs(pi.fit(fd.C, fd.treatment, fd.mediator, fd.y).predict(fd.C).mean() - fd.tau.mean()) < 0.1)
    True
    """

    def __init__(self, propensity_model=None, mediator_model=None, outcome_model=None, clip=1e-6, floor=0.05):
        self.propensity_model = propensity_model
        self.mediator_model = mediator_model
        self.outcome_model = outcome_model
        self.clip = clip
        self.floor = floor

    def fit(self, X, treatment, mediator, y):
        """Fit e, q and m on all the data and check the mediator's positivity. Returns self."""
        _data.check_probability_bound(self.clip, "clip")
        _data.check_probability_bound(self.floor, "floor")
        models = _fd_models(self)
        C, x, z, y = _validate(self, X, treatment, mediator, y)
        self.models_ = fit_fd_nuisances(models, C, x, z, y)
        q1 = _predict_q1(self.models_[1], C)
        self.n_low_overlap_ = int(np.sum(np.minimum(q1, 1 - q1) < self.floor))  # a mediator value below floor
        if self.n_low_overlap_:
            warnings.warn(f"{self.n_low_overlap_} of the {q1.size} fitted mediator distributions P(mediator | "
                          "treatment = x, X) of the training units (one per unit and treatment value) give a mediator "
                          f"value less than floor={self.floor}: positivity of the mediator is doubtful there, and the "
                          "plug-in formula extrapolates the outcome model to (mediator, treatment) pairs that are rare "
                          "at those X. Check overlap, or use FrontDoorDRLearner, which floors and counts these "
                          "denominators.", UserWarning, stacklevel=2)
        return self

    def _predict_nuisances(self, C):
        """Nuisances at new covariates (a hook: a benchmark may perturb them)."""
        return predict_fd_nuisances(self.models_, C)

    def predict(self, X):
        """τ̂(c) by the plug-in formula, shape (n_samples,)."""
        check_is_fitted(self, "models_")
        nuis = self._predict_nuisances(self.design_.transform(X)[0])
        tau, n_clipped = fd_plugin(nuis["e1"], nuis["q1"], nuis["m"], self.clip)
        _warn_clip(n_clipped, self.clip)
        return tau
