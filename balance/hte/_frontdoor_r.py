"""FD-R: Jung's front-door R-learner, τ(C) = b(C) · γ_g(C), built from two back-door R-learners.

b(C) = E[Z | do(X = 1), C] − E[Z | do(X = 0), C] is an R-learner of Z on X given C; g(X, C), the effect of Z on Y
given (X, C), an R-learner of Y on Z given (X, C); γ_g(C) = E[g(X, C) | C] is the regression of Jung's pseudo-g
ζ = (1 − ê_X) g̃(0, C) + ê_X g̃(1, C) + (X − ê_X)(g̃(1, C) − g̃(0, C)) on C (Jung 2025, Def. 4–5). No density ratio
enters, which is why FD-R stays stable under weak overlap.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from . import _data
from ._crossfit import _folds, _proba
from ._frontdoor import _FrontDoorBase, _fd_models, _validate, _warn_floor, _xc
from ._tuning import check_final_model, fit_final


class FrontDoorRLearner(_FrontDoorBase):
    """FD-R: front-door CATE as the product of a mediator-stage and an outcome-stage R-learner.

    1. Cross-fitted nuisances: ê_X(C) = P(X = 1 | C), m̂_Z(C) = E[Z | C], ê_Z(X, C) = P(Z = 1 | X, C),
       m̂_Y(X, C) = E[Y | X, C].
    2. b-stage: (X − ê_X)²-weighted regression of (Z − m̂_Z)/(X − ê_X) on C (the R-loss, Eq. 32).
    3. g-stage: (Z − ê_Z)²-weighted regression of (Y − m̂_Y)/(Z − ê_Z) on (X, C) (Eq. 35), cross-fitted over the
       same folds so that ζ of a row uses a g̃ fitted without that row's fold.
    4. γ̂: regression of ζ on C; τ̂ = clip(b̂, −1, 1) · γ̂ (b is a difference of probabilities). With
       ``final_stage="regress"`` the product b̂(C)ζ is regressed on C instead (the author's code).

    Parameters
    ----------
    propensity_model, mediator_model : classifiers, default=None
        For ê_X and for m̂_Z, ê_Z; None: ``_data.default_classifier()``.
    outcome_model : regressor, default=None
        m̂_Y; None: ``_data.default_regressor()``.
    stage_model : regressor accepting sample_weight, default=None
        b- and g-stage regressions; None: ``_data.default_regressor()``.
    final_model : regressor, default=None
        Regression of ζ (or b̂ζ) on C; None: ``_data.default_regressor()``.
    cv : int, default=5
    floor : float, default=0.05
        ê_X and ê_Z are bounded to [floor, 1 − floor]; counted in ``n_floored_`` and warned about.
    final_stage : {"product", "regress"}, default="product"
    random_state : int, RandomState or None, default=None

    Attributes
    ----------
    b_model_, final_model_ : regressors
    pseudo_g_ : ndarray of shape (n_samples,)
        ζ per row.
    nuisances_ : dict of ndarray
        "e_x", "m_z", "e_z", "m_y" (out of fold, after the floor).
    n_floored_ : int
    n_b_bounded_ : int
        Units whose predicted b(C), an effect on a probability, fell outside [-1, 1] and was bounded to it in fit
        ("regress" final stage; ``predict`` with the "product" stage bounds and warns the same way).

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> from balance.hte import FrontDoorRLearner, make_front_door
    >>> fd = make_front_door(n=2000, random_state=0)
    >>> est = FrontDoorRLearner(LogisticRegression(), LogisticRegression(), LinearRegression(),
    ...                         stage_model=LinearRegression(), final_model=LinearRegression(), random_state=0)
    >>> est.fit(fd.C, fd.treatment, fd.mediator, fd.y).predict(fd.C).shape
    (2000,)
    """

    def __init__(self, propensity_model=None, mediator_model=None, outcome_model=None, stage_model=None,
                 final_model=None, cv=5, floor=0.05, final_stage="product", random_state=None):
        self.propensity_model = propensity_model
        self.mediator_model = mediator_model
        self.outcome_model = outcome_model
        self.stage_model = stage_model
        self.final_model = final_model
        self.cv = cv
        self.floor = floor
        self.final_stage = final_stage
        self.random_state = random_state

    def _nuisances(self, models, C, x, z, y, folds):
        """Out-of-fold ê_X, m̂_Z, ê_Z, m̂_Y (a hook: a benchmark may perturb them)."""
        prop, med, out = models
        n = len(x)
        res = {key: np.empty(n) for key in ("e_x", "m_z", "e_z", "m_y")}
        for k in np.unique(folds):
            te, tr = folds == k, folds != k
            res["e_x"][te] = _proba(clone(prop).fit(C[tr], x[tr]), C[te])
            res["m_z"][te] = _proba(clone(med).fit(C[tr], z[tr]), C[te])
            res["e_z"][te] = _proba(clone(med).fit(_xc(x[tr], C[tr]), z[tr]), _xc(x[te], C[te]))
            res["m_y"][te] = clone(out).fit(_xc(x[tr], C[tr]), y[tr]).predict(_xc(x[te], C[te]))
        return res

    def fit(self, X, treatment, mediator, y):
        """Fit the nuisances, the b- and g-stages and γ̂. Returns self."""
        self._check_common()
        _data.check_choice(self.final_stage, "final_stage", ("product", "regress"))
        models = _fd_models(self)
        stage = _data.default_regressor() if self.stage_model is None else self.stage_model
        final = _data.default_regressor() if self.final_model is None else self.final_model
        check_final_model(stage, weighted=True)
        check_final_model(final, weighted=False)
        C, x, z, y = _validate(self, X, treatment, mediator, y)
        folds = _folds(x, self.cv, _data.seed_from(self.random_state))
        nuis = self._nuisances(models, C, x, z, y, folds)
        self.n_floored_ = 0
        for key in ("e_x", "e_z"):
            nuis[key], count = _data.bound_probabilities(nuis[key], self.floor)
            self.n_floored_ += count
        _warn_floor(self.n_floored_, self.floor)
        rows = np.arange(len(y))
        rx, rz = x - nuis["e_x"], z - nuis["e_z"]
        self.b_model_ = fit_final(clone(stage), C, (z - nuis["m_z"]) / rx, rx ** 2, rows, weighted=True)
        g_pseudo, g_weight, XC = (y - nuis["m_y"]) / rz, rz ** 2, _xc(x, C)
        zeta = np.empty(len(y))
        for k in np.unique(folds):
            te, tr = folds == k, folds != k
            g = fit_final(clone(stage), XC[tr], g_pseudo[tr], g_weight[tr], rows[tr], weighted=True)
            g1 = g.predict(_xc(np.ones(te.sum()), C[te]))
            g0 = g.predict(_xc(np.zeros(te.sum()), C[te]))
            e = nuis["e_x"][te]
            zeta[te] = (1 - e) * g0 + e * g1 + (x[te] - e) * (g1 - g0)
        self.n_b_bounded_ = 0
        if self.final_stage == "product":
            target = zeta
        else:
            b, self.n_b_bounded_ = self._b(C)
            target = b * zeta
        self.final_model_ = fit_final(clone(final), C, target, None, rows, weighted=False)
        self.pseudo_g_, self.nuisances_ = zeta, nuis
        return self

    def _b(self, C):
        """b(C), an effect on a probability, bounded to [-1, 1]; returns it and how many were bounded (warned)."""
        b = self.b_model_.predict(C)
        n_bounded = int(np.sum(np.abs(b) > 1))
        if n_bounded:
            warnings.warn(f"{n_bounded} predictions of b(C) were outside [-1, 1] and were bounded to it.",
                          UserWarning, stacklevel=3)
        return np.clip(b, -1.0, 1.0), n_bounded

    def predict(self, X):
        """τ̂(c), shape (n_samples,)."""
        check_is_fitted(self, "final_model_")
        C = self.design_.transform(X)[0]
        gamma = np.asarray(self.final_model_.predict(C), dtype=float)
        return self._b(C)[0] * gamma if self.final_stage == "product" else gamma
