"""Tuning a weighter's settings by balance with a scikit-learn search, when some settings fail on some folds."""

from __future__ import annotations

import re
import warnings
from collections import Counter

import numpy as np
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection._search import BaseSearchCV


class TuningFailureWarning(UserWarning):
    """Some fits or scores of a search failed; they were ranked last (see :func:`balance.tune`)."""


# scikit-learn's own messages about non-finite scores, replaced by the summary
_SKLEARN_NOISE = ("One or more of the test scores are non-finite", "One or more of the train scores are non-finite")


def tune(search, X, treatment, sample_weight=None, **fit_params):
    """Fit a scikit-learn search over a weighter's settings; failed fits rank last, with one warning.

    ``GridSearchCV(EntropyBalance(), {"moments": [1, 2, 3]})`` fails wherever a setting is infeasible on a fold
    (a target mean outside the range of a small fold's reweighted units). scikit-learn then scores those fits NaN
    and warns once per failed score with a full traceback; when every setting fails somewhere, ``best_params_`` is
    simply the first one. ``tune`` fits the same search with ``error_score=-inf`` (a failure is the worst score,
    ranked last; a failed *score* of a weighter is already ``-inf``, see :meth:`balance.BaseWeighter.score`),
    replaces scikit-learn's per-failure warnings by one :class:`TuningFailureWarning` that counts the failed
    fits per setting and names the distinct reasons, passes on every other kind of warning the fits raised once
    (the first, with how many similar ones followed), and raises when no setting succeeded on every fold (no
    best setting exists).

    Parameters
    ----------
    search : GridSearchCV, RandomizedSearchCV or another scikit-learn ``BaseSearchCV``
        Over a weighter (or a pipeline ending in one). Its ``error_score`` is set to ``-inf`` unless it is
        ``"raise"`` or a number already.
    X : DataFrame or array-like of shape (n_samples, n_features)
    treatment : array-like of shape (n_samples,)
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to the search's ``fit`` (and so to every candidate) when given.
    **fit_params
        Other arguments of the search's ``fit`` (``groups``, ...).

    Returns
    -------
    search
        The fitted search.

    Raises
    ------
    ValueError
        When every setting failed on at least one fold.

    Examples
    --------
    >>> import warnings
    >>> from sklearn.model_selection import GridSearchCV, StratifiedKFold
    >>> from balance import EntropyBalance, tune
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> folds = StratifiedKFold(3, shuffle=True, random_state=0)
    >>> search = GridSearchCV(EntropyBalance(), {"tols": [0.0, 0.05]}, cv=folds)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     best = tune(search, data.X, data.treatment).best_params_
    >>> sorted(best)
    ['tols']
    """
    if not isinstance(search, BaseSearchCV):
        raise TypeError(f"search must be a scikit-learn search (GridSearchCV, RandomizedSearchCV, ...); got "
                        f"{type(search).__name__}.")
    error_score = search.error_score
    if not (isinstance(error_score, str) or (np.isscalar(error_score) and not np.isnan(error_score))):
        search.set_params(error_score=-np.inf)
    if sample_weight is not None:
        fit_params["sample_weight"] = sample_weight
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.__dict__.pop("best_score_", None)  # set by this fit before it refits the best setting
        try:
            search.fit(X, treatment, **fit_params)
            refit_error = None
        except Exception as exc:
            if getattr(search, "best_score_", None) != -np.inf:
                raise
            refit_error = exc  # every setting failed somewhere, and refitting the "best" one failed too
    reasons = Counter()
    others = {}  # category -> the warnings the candidates' fits raised
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, FitFailedWarning):
            reasons.update(_fit_failure_reasons(text))
        elif text.startswith("Scoring failed."):  # one warning per failed score, its traceback after "Details:"
            reasons[_last_line(text)] += 1
        elif text.startswith(_SKLEARN_NOISE) or (issubclass(w.category, RuntimeWarning)
                                                 and "sklearn" in w.filename and "_search" in w.filename):
            continue  # scikit-learn's notes on non-finite scores, and numpy's on their standard deviation
        else:
            others.setdefault(w.category, []).append(text)
    for category, texts in others.items():  # each kind once, with how often the folds raised it
        more = len(set(texts)) - 1
        suffix = f" (and {more} similar {category.__name__}s from other fits of the search)" if more else ""
        warnings.warn(texts[0] + suffix, category, stacklevel=2)
    if refit_error is not None:
        raise ValueError(f"{_NO_BEST} (the best mean score is -inf), and refitting the first setting on all the data "
                         f"failed too. Why: {_why(reasons)}. {_ADVICE}") from refit_error
    _report_failures(search, reasons)
    return search


_NO_BEST = "every setting failed on at least one fold, so no best setting exists"
_ADVICE = "Widen the grid (e.g. tols > 0), use fewer or coarser terms, or fewer folds."


def _why(reasons):
    return "; ".join(f"{count} x {reason}" for reason, count in reasons.most_common(5))


def _fit_failure_reasons(text):
    """Count per reason (the traceback's last line) in scikit-learn's FitFailedWarning text."""
    reasons = Counter()
    blocks = re.split(r"^-+$", text, flags=re.M)
    for block in blocks:
        found = re.search(r"(\d+) fits? failed with the following error:", block)
        if found:
            reasons[_last_line(block)] += int(found.group(1))
    return reasons


def _last_line(traceback_text):
    """The reason that ends a formatted traceback, as a key shared by the folds: the exception's class without its
    module, and the message up to its first number or parenthesis (where the folds' details begin)."""
    reason = [line for line in traceback_text.strip().splitlines() if line.strip()][-1].strip()
    reason = re.sub(r"^[\w.]+\.(\w+:)", r"\1", reason)
    cut = re.search(r"[\d(]", reason[30:])
    return reason if cut is None else reason[:30 + cut.start()].rstrip() + " ..."


def _report_failures(search, reasons):
    """One warning counting the non-finite fold scores per setting and their reasons; raise if no setting is clean."""
    results = search.cv_results_
    metric = search.refit if isinstance(search.refit, str) else "score"
    keys = [f"split{k}_test_{metric}" for k in range(search.n_splits_)]
    if not all(key in results for key in keys):  # several metrics and a callable refit: no single score to judge
        return
    scores = np.column_stack([results[key] for key in keys])
    failed = ~np.isfinite(scores)
    if not failed.any():
        return
    unexplained = int(failed.sum()) - sum(reasons.values())
    if unexplained > 0:  # a weighter's score of -inf: the setting could not weight the test fold
        reasons["the setting cannot weight the test fold (InfeasibleBalanceError: score -inf)"] += unexplained
    per_setting = failed.sum(axis=1)
    bad = np.flatnonzero(per_setting)
    settings = "; ".join(f"{results['params'][i]} failed on {per_setting[i]} of {search.n_splits_} folds"
                         for i in bad[:10]) + ("" if len(bad) <= 10 else f"; and {len(bad) - 10} more settings")
    message = (f"{int(failed.sum())} of {failed.size} fits failed (scored -inf, ranked last): {settings}. "
               f"Why: {_why(reasons)}.")
    if len(bad) == len(per_setting):
        raise ValueError(f"{_NO_BEST}. {message} {_ADVICE}")
    warnings.warn(message, TuningFailureWarning, stacklevel=3)
