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
from joblib import cpu_count, effective_n_jobs
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.parallel import Parallel, delayed

from .._threads import threadpool_controller
from ._data import bound_probabilities


SEPARATE_Z = 2.0  # "auto" takes separate arm models when they beat the single model by this many SEs


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
    outcome_form: str | None = None  # the form of μ̂ₐ used ("single" or "separate"; chosen when asked for "auto")
    outcome_loss: dict = field(default_factory=dict)  # out-of-fold mean squared error of Y per form fitted
    outcome_models: list = field(default_factory=list)  # per training part, the fitted μ̂ₐ model(s) of that form


@dataclass(frozen=True)
class NuisanceSpec:
    """Which nuisance models a pseudo-outcome/weight pair needs, and the models to clone."""

    propensity_model: object
    outcome_model: object
    need_pi: bool
    need_m: bool
    need_mu: bool
    outcome_form: str  # "single", "separate" or "auto" (both fitted, one kept by out-of-fold loss: _choose_form)

    def forms(self):
        """The forms of μ̂ₐ to fit."""
        if not self.need_mu:
            return ()
        return ("single", "separate") if self.outcome_form == "auto" else (self.outcome_form,)


def _proba(model, X):
    """P(A = 1 | X) from a fitted classifier, whatever the order of its classes."""
    col = int(np.flatnonzero(np.asarray(model.classes_) == 1)[0])
    return model.predict_proba(X)[:, col]


def fit_predict(model, X, t, fit, pred, proba=False, settings=None):
    """Fit a clone of ``model`` on rows ``fit`` of (X, t); predict rows ``pred`` once per column setting.

    ``fit`` and ``pred`` are integer row indices (so ``X[pred]`` is a copy that may be altered). ``settings`` is a
    list of {column: value} giving counterfactual inputs (e.g. the treatment column at 1, then 0); None predicts X
    as it is. ``proba`` returns P(class 1) instead of ``predict``. Returns the fitted clone and a list of arrays,
    one per setting.
    """
    fitted = clone(model).fit(X[fit], t[fit])
    X_pred = X[pred]
    out = []
    for setting in settings or [{}]:
        for col, value in setting.items():
            X_pred[:, col] = value
        out.append(_proba(fitted, X_pred) if proba else fitted.predict(X_pred))
    return fitted, out


def plugin_effect(form, models, X):
    """μ̂₁(x) − μ̂₀(x) from the fitted outcome model(s) of one form: one model of Y on (X, A), or a (μ̂₁, μ̂₀) pair."""
    if form == "single":
        ones = np.ones((len(X), 1))
        return models.predict(np.hstack([X, ones])) - models.predict(np.hstack([X, 0 * ones]))
    return models[0].predict(X) - models[1].predict(X)


def _limited(controller, inner, fn, args):
    # OpenMP thread counts are per calling thread, so each worker limits its own (scikit-learn's
    # HistGradientBoosting reads it at fit time).
    with controller.limit(limits=inner, user_api="openmp"):
        return fn(*args)


def run_jobs(jobs, n_jobs):
    """``[fn(*args) for fn, args in jobs]``, on ``n_jobs`` threads when that is more than one.

    With several workers each gets cpu_count // n_workers OpenMP and BLAS threads, so that the workers' own
    thread pools do not oversubscribe the cores; with one, the models keep their default threading. The results
    are in the order of ``jobs`` whatever the scheduling.
    """
    n_workers = effective_n_jobs(n_jobs)
    if n_workers == 1:
        return [fn(*args) for fn, args in jobs]
    inner = max(1, cpu_count() // n_workers)
    controller = threadpool_controller()  # one scan of the loaded libraries, shared by the workers
    # BLAS thread counts are process-wide: set once here, not by each worker (their restores would race).
    with controller.limit(limits=inner, user_api="blas"):
        return Parallel(n_jobs=n_workers, prefer="threads")(
            delayed(_limited)(controller, inner, fn, args) for fn, args in jobs)


def _part_jobs(spec, X, XA, a, y, fit, pred):
    """The nuisance fits of one training part: a list of (keys, (fn, args)), ``keys`` naming the returned arrays."""
    jobs = []
    if spec.need_pi:
        jobs.append((("pi",), (fit_predict, (spec.propensity_model, X, a, fit, pred, True))))
    if spec.need_m:
        jobs.append((("m",), (fit_predict, (spec.outcome_model, X, y, fit, pred))))
    if "single" in spec.forms():
        # One model of Y on (X, A), A the last column of XA, evaluated at A = 1 and A = 0.
        settings = [{-1: 1.0}, {-1: 0.0}]
        jobs.append((("mu1:single", "mu0:single"),
                     (fit_predict, (spec.outcome_model, XA, y, fit, pred, False, settings))))
    if "separate" in spec.forms():
        for arm, key in ((1, "mu1:separate"), (0, "mu0:separate")):
            jobs.append(((key,), (fit_predict, (spec.outcome_model, X, y, fit[a[fit] == arm], pred))))
    return jobs


def _nuisance_jobs(spec, X, a, y, parts):
    """Jobs for every (training rows, prediction rows) part; returns (part number, keys) per job and the jobs."""
    XA = np.column_stack([X, a]) if "single" in spec.forms() else None
    labelled = [(k, keys, job) for k, (fit, pred) in enumerate(parts)
                for keys, job in _part_jobs(spec, X, XA, a, y, fit, pred)]
    return [(k, keys) for k, keys, _ in labelled], [job for _, _, job in labelled]


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


def _outcome_models(labels, results, n_parts):
    """Per form of μ̂ₐ, the fitted outcome model(s) of every training part (a model, or a (μ̂₁, μ̂₀) pair)."""
    models = {}
    for (k, keys), (fitted, _) in zip(labels, results):
        for key in keys:
            if key.startswith("mu"):
                arm, form = key[2], key.split(":")[1]
                models.setdefault(form, [{} for _ in range(n_parts)])[k][arm] = fitted
    return {form: [part["1"] if form == "single" else (part["1"], part["0"]) for part in parts]
            for form, parts in models.items()}


def _choose_form(spec, cf, values, a_rows, y_rows, models):
    """Set μ̂₁, μ̂₀ of ``cf`` to the form asked for, or with "auto" to the separate arm models only when their
    out-of-fold squared error of the observed outcome, (Y − μ̂_A(X))², is smaller than the single model's by more
    than ``SEPARATE_Z`` standard errors of the paired difference (otherwise the single model)."""
    forms = spec.forms()
    if not forms:
        return cf
    errors = {form: (y_rows - np.where(a_rows == 1, values[f"mu1:{form}"], values[f"mu0:{form}"])) ** 2
              for form in forms}
    loss = {form: float(np.mean(e)) for form, e in errors.items()}
    form = forms[0]
    if len(forms) == 2:
        gain = errors["single"] - errors["separate"]
        mean, se = np.mean(gain), np.std(gain, ddof=1) / np.sqrt(len(gain))
        loss["z"] = float(mean / se) if se > 0 else float(np.sign(mean) * np.inf if mean else 0.0)
        form = "separate" if loss["z"] > SEPARATE_Z else "single"
    cf.mu1, cf.mu0 = values[f"mu1:{form}"], values[f"mu0:{form}"]
    cf.outcome_form, cf.outcome_loss, cf.outcome_models = form, loss, models[form]
    return cf


def crossfit_order2(spec, X, a, y, n_folds, seed, n_jobs=None):
    """Ordinary v-fold cross-fitting: every nuisance of row i comes from models that did not see fold(i)."""
    n = len(a)
    folds = _folds(a, n_folds, seed)
    parts = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(n_folds)]
    labels, jobs = _nuisance_jobs(spec, X, a, y, parts)
    results = run_jobs(jobs, n_jobs)
    out = {}
    for (k, keys), (_, values) in zip(labels, results):
        for key, value in zip(keys, values):
            out.setdefault(key, np.empty(n))[parts[k][1]] = value
    kappa = None if "pi" not in out else 1.0 - out["pi"]
    cf = CrossFit(rows=np.arange(n), pi=out.get("pi"), kappa=kappa, m=out.get("m"), folds=folds)
    return _choose_form(spec, cf, out, a, y, _outcome_models(labels, results, n_folds))


def crossfit_higher(spec, X, a, y, order, seed, n_jobs=None):
    """Cross-fitting of order 3 or 4: models fitted on one fold, one copy per role assignment of the other folds."""
    n = len(a)
    folds = _folds(a, order, seed)
    # Per training fold f: predictions of that fold's models on every row (row f of each array).
    everyone = np.arange(n)
    labels, jobs = _nuisance_jobs(spec, X, a, y, [(np.flatnonzero(folds == f), everyone) for f in range(order)])
    results = run_jobs(jobs, n_jobs)
    per_fold = {}
    for (f, keys), (_, values) in zip(labels, results):
        for key, value in zip(keys, values):
            per_fold.setdefault(key, np.empty((order, n)))[f] = value
    pi_f = per_fold.pop("pi", None)
    outcome_f = per_fold
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
    rows = cat(rows)
    cf = CrossFit(rows=rows, pi=cat(pi) if spec.need_pi else None, kappa=cat(kappa) if spec.need_pi else None,
                  m=cat(outs.pop("m")) if "m" in outs else None, folds=folds, separate_kappa=order == 4)
    values = {key: cat(parts) for key, parts in outs.items()}
    return _choose_form(spec, cf, values, a[rows], y[rows], _outcome_models(labels, results, order))


def clip_propensities(cf, clip):
    """Bound π̂ and κ̂ to [clip, 1 − clip] in place; count the values moved (the raw ones are kept in ``raw``)."""
    if cf.pi is None:
        return cf
    n_clipped = 0
    for key in ("pi", "kappa"):
        values = getattr(cf, key)
        bounded, count = bound_probabilities(values, clip)
        if key == "pi" or cf.separate_kappa:  # κ̂ = 1 − π̂ is clipped exactly when π̂ is: count it once
            n_clipped += count
        cf.raw[key] = values
        setattr(cf, key, bounded)
    cf.n_clipped = n_clipped
    return cf
