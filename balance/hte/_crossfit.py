"""Cross-fitted nuisance predictions for pseudo-outcome regression: v-fold (order 2) and higher-order (3, 4).

Order 2 is ordinary v-fold cross-fitting: each model is fitted on v − 1 folds and predicts the held-out fold.
Orders 3 and 4 follow Fisher's ``wpor`` package ("higher-order cross-fitting with inverted train/test
proportions"): the data are split into ``cf_order`` folds, each nuisance model is fitted on **one** fold and predicts
the others, and a row of fold k gets one copy per assignment of distinct other folds to the nuisance roles —
(propensity, outcome) at order 3 (2 copies), (propensity, κ, outcome) at order 4 (3! = 6 copies), where κ̂ = 1 − π̂
comes from a propensity model fitted on a different fold than π̂. Products of nuisance errors then factorise into
products of biases (Fisher 2024, arXiv:2307.09700).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import permutations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold


@dataclass
class CrossFit:
    """Out-of-fold nuisance predictions, one entry per row copy (``rows`` maps copies to rows)."""

    rows: np.ndarray
    pi: np.ndarray | None = None
    kappa: np.ndarray | None = None
    m: np.ndarray | None = None
    mu1: np.ndarray | None = None
    mu0: np.ndarray | None = None
    n_clipped: int = 0
    folds: np.ndarray | None = None  # fold label of every row
    separate_kappa: bool = False  # κ̂ from its own propensity fit (order 4), not 1 − π̂
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class NuisanceSpec:
    """Which nuisance models a pseudo-outcome/weight pair needs, and the models to clone."""

    propensity_model: object
    outcome_model: object
    need_pi: bool
    need_m: bool
    need_mu: bool
    outcome_form: str  # "single" or "separate"


def _proba(model, X):
    """P(A = 1 | X) from a fitted classifier, whatever the order of its classes."""
    col = int(np.flatnonzero(np.asarray(model.classes_) == 1)[0])
    return model.predict_proba(X)[:, col]


def _fit_predict_outcomes(spec, X_tr, a_tr, y_tr, X_te):
    """Fit the outcome models on a training part; return (m, mu1, mu0) predicted on X_te (None when unused)."""
    m = mu1 = mu0 = None
    if spec.need_m:
        m = clone(spec.outcome_model).fit(X_tr, y_tr).predict(X_te)
    if spec.need_mu:
        if spec.outcome_form == "single":
            model = clone(spec.outcome_model).fit(np.column_stack([X_tr, a_tr]), y_tr)
            ones = np.ones(len(X_te))
            mu1 = model.predict(np.column_stack([X_te, ones]))
            mu0 = model.predict(np.column_stack([X_te, 0 * ones]))
        else:
            mu1 = clone(spec.outcome_model).fit(X_tr[a_tr == 1], y_tr[a_tr == 1]).predict(X_te)
            mu0 = clone(spec.outcome_model).fit(X_tr[a_tr == 0], y_tr[a_tr == 0]).predict(X_te)
    return m, mu1, mu0


def _folds(a, n_folds, seed):
    """Fold label of every row; stratified by treatment so that every training part holds both arms."""
    counts = np.bincount(a, minlength=2)
    if counts.min() < n_folds:
        raise ValueError(
            f"each treatment arm needs at least {n_folds} units for {n_folds}-fold cross-fitting; "
            f"got {counts[1]} treated and {counts[0]} controls."
        )
    labels = np.empty(len(a), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(np.zeros((len(a), 1)), a)):
        labels[test] = k
    return labels


def crossfit_order2(spec, X, a, y, n_folds, seed):
    """Ordinary v-fold cross-fitting: every nuisance of row i comes from models that did not see fold(i)."""
    n = len(a)
    folds = _folds(a, n_folds, seed)
    out = {k: (np.empty(n) if need else None) for k, need in
           (("pi", spec.need_pi), ("m", spec.need_m), ("mu1", spec.need_mu), ("mu0", spec.need_mu))}
    for k in range(n_folds):
        te, tr = folds == k, folds != k
        if spec.need_pi:
            out["pi"][te] = _proba(clone(spec.propensity_model).fit(X[tr], a[tr]), X[te])
        m, mu1, mu0 = _fit_predict_outcomes(spec, X[tr], a[tr], y[tr], X[te])
        for key, value in (("m", m), ("mu1", mu1), ("mu0", mu0)):
            if value is not None:
                out[key][te] = value
    kappa = None if out["pi"] is None else 1.0 - out["pi"]
    return CrossFit(rows=np.arange(n), pi=out["pi"], kappa=kappa, m=out["m"], mu1=out["mu1"], mu0=out["mu0"],
                    folds=folds)


def crossfit_higher(spec, X, a, y, order, seed):
    """Cross-fitting of order 3 or 4: models fitted on one fold, one copy per role assignment of the other folds."""
    n = len(a)
    folds = _folds(a, order, seed)
    # Per training fold f: predictions of that fold's models on every row (row f of each array).
    pi_f = np.empty((order, n)) if spec.need_pi else None
    outcome_f = {key: np.empty((order, n)) for key, need in
                 (("m", spec.need_m), ("mu1", spec.need_mu), ("mu0", spec.need_mu)) if need}
    for f in range(order):
        tr = folds == f
        if spec.need_pi:
            pi_f[f] = _proba(clone(spec.propensity_model).fit(X[tr], a[tr]), X)
        preds = dict(zip(("m", "mu1", "mu0"), _fit_predict_outcomes(spec, X[tr], a[tr], y[tr], X)))
        for key in outcome_f:
            outcome_f[key][f] = preds[key]
    n_roles = order - 1  # (pi, outcome) or (pi, kappa, outcome)
    rows, pi, kappa, outs = [], [], [], {key: [] for key in outcome_f}
    for k in range(order):
        idx = np.flatnonzero(folds == k)
        others = [f for f in range(order) if f != k]
        for roles in permutations(others, n_roles):
            rows.append(idx)
            if spec.need_pi:
                pi.append(pi_f[roles[0]][idx])
                kappa.append(1.0 - pi_f[roles[1] if order == 4 else roles[0]][idx])
            for key in outcome_f:
                outs[key].append(outcome_f[key][roles[-1]][idx])
    cat = np.concatenate
    return CrossFit(
        rows=cat(rows), pi=cat(pi) if spec.need_pi else None, kappa=cat(kappa) if spec.need_pi else None,
        m=cat(outs["m"]) if "m" in outs else None, mu1=cat(outs["mu1"]) if "mu1" in outs else None,
        mu0=cat(outs["mu0"]) if "mu0" in outs else None, folds=folds, separate_kappa=order == 4,
    )


def clip_propensities(cf, clip):
    """Bound π̂ and κ̂ to [clip, 1 − clip] in place; count the values moved (the raw ones are kept in ``raw``)."""
    if cf.pi is None:
        return cf
    n_clipped = 0
    for key in ("pi", "kappa"):
        values = getattr(cf, key)
        if key == "pi" or cf.separate_kappa:  # κ̂ = 1 − π̂ is clipped exactly when π̂ is: count it once
            n_clipped += int(np.sum((values < clip) | (values > 1 - clip)))
        cf.raw[key] = values
        setattr(cf, key, np.clip(values, clip, 1 - clip))
    cf.n_clipped = n_clipped
    return cf
