"""Bad-input cases and the estimators they are run against, shared by tests/test_bad_inputs.py and
benchmarks/bad_inputs.py (which writes the case x estimator table to benchmarks/results/bad_inputs.md).

:func:`run` fits one estimator on one case and classifies what happened as an :class:`Outcome`:

- ``"error"``: a ValueError or TypeError (the message should name the problem);
- ``"warning"``: valid output, with a UserWarning (ConvergenceWarning included) saying what was changed or approximated;
- ``"ok"``: valid output without a warning;
- ``"invalid"``: output that breaks the rules (NaN/inf or negative weights, index or rows not preserved, results
  that differ from the same data passed another way, inputs mutated);
- ``"unexplained"``: any other exception (IndexError, LinAlgError, ZeroDivisionError, a numba error...);
- ``"n/a"``: the case does not apply (e.g. ``y`` for a weighter, ``sample_weight`` for a learner without it).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.base import clone

from balance import CBIPM, EntropyBalance, PropensityWeights, WeightedEffect
from balance.hte import (CovLearner, DRLearner, FrontDoorDRLearner, FrontDoorPluginLearner, FrontDoorRLearner,
                         IVWCovLearner, IVWDRLearner, RLearner, SLearner, TLearner, ULearner)

from .test_contract import IDS, WEIGHTERS

N = 80  # rows of every case: small enough that the whole grid runs in seconds


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One bad input: the arguments of fit, and how its output is judged."""

    name: str
    X: object
    treatment: object
    y: object
    sample_weight: object = None
    treated: object = None
    uses_y: bool = False  # the case is about y (not applicable to weighters)
    uses_sample_weight: bool = False  # the case is about sample_weight (not applicable to the HTE learners)
    uses_treated: bool = False  # the case passes treated= (the HTE learners have no such parameter)
    compare: str | None = None  # results must equal the base case's: "same" data passed another way, rows in
    # another "order" (positions in ``rows``), or a covariate at another "scale" (every method standardises)
    rows: np.ndarray | None = None  # base-case position of each row, when the rows are reordered
    mediator: object = None
    uses_mediator: bool = False  # the case is about the mediator (only the front-door learners take one)

    def index(self):
        return self.X.index if isinstance(self.X, pd.DataFrame) else None


def base_data(n=N, seed=0):
    """Three covariates, a logistic treatment (about 40% treated), an outcome with a known effect, a mediator."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.uniform(size=n)})
    a = rng.binomial(1, 1 / (1 + np.exp(-(-0.4 + 0.6 * X["x1"] - 0.4 * X["x2"]))))
    y = 1 + X["x1"] + 0.5 * X["x2"] + a * (1 + 0.5 * X["x1"]) + rng.normal(scale=0.5, size=n)
    z = rng.binomial(1, 0.25 + 0.5 * a)
    return X, pd.Series(a, name="t"), pd.Series(y.to_numpy(), name="y"), z


def _with(values, pos, value):
    out = values.astype(float).copy()
    out.iloc[pos] = value
    return out


def _reindexed(X, t, y, index):
    return X.set_axis(index), t.set_axis(index), y.set_axis(index)


def _group_of(t, size, seed=1):
    """Treatment with exactly ``size`` treated units (the first treated ones are kept)."""
    a = np.zeros(len(t), dtype=int)
    a[np.flatnonzero(t.to_numpy())[:size]] = 1
    return pd.Series(a, index=t.index, name=t.name)


def build_cases(n=N):
    """All cases, in table order. Each entry is a :class:`Case` built from :func:`base_data`."""
    X, t, y, z = base_data(n)
    rng = np.random.default_rng(11)
    ones = np.ones(n)
    cases = [Case("base (clean data)", X, t, y)]

    cases += [
        Case("NaN in X", _with(X, (3, 0), np.nan), t, y),
        Case("inf in X", _with(X, (5, 1), np.inf), t, y),
        Case("NaN in treatment", X, _with(t, 2, np.nan), y),
        Case("inf in treatment", X, _with(t, 2, np.inf), y),
        Case("NaN in y", X, t, _with(y, 4, np.nan), uses_y=True),
        Case("inf in y", X, t, _with(y, 4, -np.inf), uses_y=True),
        Case("NaN in sample_weight", X, t, y, np.r_[np.nan, ones[1:]], uses_sample_weight=True),
        Case("inf in sample_weight", X, t, y, np.r_[ones[:-1], np.inf], uses_sample_weight=True),
    ]

    collinear = X.assign(x4=2 * X["x1"] - X["x2"] + 1)
    separating = X.assign(s=t + rng.uniform(0, 0.5, n))  # every treated unit above every control
    outside = X.copy()
    outside.loc[np.flatnonzero(t)[0], "x1"] = X.loc[t == 0, "x1"].max() + 10
    cases += [
        Case("constant covariate", X.assign(k=1.0), t, y),
        Case("duplicated covariate", X.assign(x1_copy=X["x1"]), t, y),
        Case("perfectly collinear columns", collinear, t, y),
        Case("perfect separation", separating, t, y),
        Case("treated group of size 1", X, _group_of(t, 1), y),
        Case("treated group of size 2", X, _group_of(t, 2), y),
        Case("treated value outside controls' range", outside, t, y),
        Case("covariate of size 1e12", X.assign(x1=X["x1"] * 1e12), t, y, compare="scale"),
        Case("covariate of size 1e-12", X.assign(x1=X["x1"] * 1e-12), t, y, compare="scale"),
        Case("object column: numbers as strings", X.assign(x3=X["x3"].round(3).astype(str)), t, y),
        Case("object column: free text", X.assign(note=[f"visit note {i}" for i in range(n)]), t, y),
    ]

    three = t.copy()
    three.iloc[::7] = 2
    cases += [
        Case("one treatment level", X, pd.Series(1, index=t.index), y),
        Case("three treatment levels", X, three, y),
        Case("treatment shorter than X", X, t.iloc[:-1], y),
        Case("treatment Series with another index", X, t.set_axis(t.index + 1), y),
        Case("y Series with another index", X, t, y.set_axis(y.index + 1), uses_y=True),
    ]

    labels = t.map({0: "a", 1: "b"})
    shuffled = np.random.default_rng(5).permutation(n)
    cases += [
        Case("boolean treatment", X, t.astype(bool), y, compare="same"),
        Case("labels 'a'/'b' without treated=", X, labels, y),
        Case("labels 'a'/'b' with treated='b'", X, labels, y, treated="b", uses_treated=True, compare="same"),
        Case("non-default index", *_reindexed(X, t, y, pd.Index(1000 + 3 * np.arange(n), name="id")),
             compare="same"),
        Case("shuffled rows and index", X.iloc[shuffled], t.iloc[shuffled], y.iloc[shuffled], compare="order",
             rows=shuffled),
        Case("duplicated index", *_reindexed(X, t, y, pd.Index(np.arange(n) // 2, name="id")), compare="same"),
        Case("X DataFrame, treatment and y ndarray", X, t.to_numpy(), y.to_numpy(), compare="same"),
        Case("X ndarray, treatment and y Series", X.to_numpy(), t, y, compare="same"),
    ]

    zero = ones.copy()
    zero[:6] = 0
    negative = ones.copy()
    negative[7] = -1
    cases += [
        Case("some zero sample_weight", X, t, y, zero, uses_sample_weight=True),
        Case("all-zero sample_weight", X, t, y, np.zeros(n), uses_sample_weight=True),
        Case("sample_weight zero for every control", X, t, y, t.to_numpy() * 1.0, uses_sample_weight=True),
        Case("negative sample_weight", X, t, y, negative, uses_sample_weight=True),
        Case("1 covariate", X[["x1"]], t, y),
        Case("10,000 covariates", np.column_stack([X.to_numpy(), rng.normal(size=(n, 10_000 - 3))]), t, y),
    ]

    level_in_treated_only = X.assign(b=0.0)
    level_in_treated_only.loc[np.flatnonzero(t)[:6], "b"] = 1.0  # b = 1 is seen among the treated only
    near = X.assign(s=t + np.random.default_rng(12).uniform(0, 0.5, n))
    near.loc[np.flatnonzero(t == 0)[0], "s"] = 1.25  # one control among the treated and one treated among the
    near.loc[np.flatnonzero(t)[0], "s"] = 0.25  # controls: the logistic MLE exists, with extreme weights
    cases += [
        Case("quasi-complete separation", level_in_treated_only, t, y),
        Case("near separation", near, t, y),
    ]
    for case in cases:  # the mediator follows the rows, and y's type
        m = z if case.rows is None else z[case.rows]
        case.mediator = pd.Series(m, index=case.index()) if isinstance(case.y, pd.Series) else m
    return cases + _issue15_cases(X, t, y, z)


def _issue15_cases(X, t, y, z):
    """Inputs paired by position (X an ndarray, two Series with different indexes), MultiIndex columns, complex
    covariates, a constant 0/1 outcome, a mediator equal to the treatment."""
    n, Xa = len(t), X.to_numpy()
    shifted = pd.Series(np.ones(n), index=t.index + 1)
    cases = [
        Case("X ndarray, y Series with another index than treatment's", Xa, t, y.set_axis(y.index + 1), uses_y=True),
        Case("X ndarray, sample_weight Series with another index than treatment's", Xa, t, y, shifted,
             uses_sample_weight=True),
        Case("MultiIndex columns", X.set_axis(pd.MultiIndex.from_product([["g"], X.columns]), axis=1), t, y),
        Case("complex covariate", X.assign(x3=X["x3"] + 0.5j), t, y),
        Case("constant 0/1 outcome", X, t, pd.Series(np.ones(n), name="y"), uses_y=True),
    ]
    for case in cases:
        case.mediator = pd.Series(z, index=t.index)
    cases.append(Case("mediator equal to the treatment", X, t, y, mediator=t.copy(), uses_mediator=True))
    return cases


# ---------------------------------------------------------------------------------------------------------------
# estimators
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Spec:
    """An estimator of the grid: ``make(treated)`` returns a fresh instance; ``kind`` says how it is fitted."""

    name: str
    kind: str  # "weighter", "effect", "hte" or "frontdoor"
    make: Callable
    crossfit: bool = False  # folds are drawn by row position: reordered rows give another (valid) fit
    tolerate: str | None = None  # warning (regex) the configuration itself causes, ignored when judging outcomes

    @property
    def group(self):
        """"weighter", "effect" or "hte" (the front-door learners included)."""
        return "hte" if self.kind == "frontdoor" else self.kind


# CBIPM runs 20 epochs here (speed): its objective has not levelled off, which it rightly says every time
_SHORT_TRAINING = "had not levelled off after 20 epochs"


def _tolerated(proto):
    return _SHORT_TRAINING if isinstance(proto, CBIPM) and proto.solver != "qp" else None


def _weighter_spec(name, proto):
    return Spec(name, "weighter", lambda treated=None: clone(proto).set_params(treated=treated),
                tolerate=_tolerated(proto))


def _effect_spec(name, proto, outcome_model, vcov):
    return Spec(name, "effect", lambda treated=None: WeightedEffect(clone(proto).set_params(treated=treated),
                                                                    outcome_model, vcov), tolerate=_tolerated(proto))


def _small_models():
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # The learners pass X to the user's models unscaled (scikit-learn's convention): standardising is the models'
    # business, as it is in any well-specified pipeline. A near-unpenalised ridge rather than least squares: the
    # same fit on these data, ten times faster at 10,000 covariates.
    return (make_pipeline(StandardScaler(), LogisticRegression()),
            make_pipeline(StandardScaler(), Ridge(alpha=1e-6)))


def _hte_spec(cls):
    def make(treated=None):
        clf, reg = _small_models()
        if cls in (TLearner, SLearner):
            return cls(reg)
        return cls(propensity_model=clf, outcome_model=reg, final_model=clone(reg), cv=2, random_state=0)

    return Spec(cls.__name__, "hte", make, crossfit=cls not in (TLearner, SLearner))


def _frontdoor_spec(cls):
    def make(treated=None):
        clf, reg = _small_models()
        if cls is FrontDoorPluginLearner:  # no cross-fitting, no final model: the plug-in of the nuisances
            return cls(propensity_model=clf, mediator_model=clone(clf), outcome_model=reg)
        extra = {"stage_model": clone(reg)} if cls is FrontDoorRLearner else {}
        return cls(propensity_model=clf, mediator_model=clone(clf), outcome_model=reg, final_model=clone(reg), cv=2,
                   random_state=0, **extra)

    return Spec(cls.__name__, "frontdoor", make, crossfit=cls is not FrontDoorPluginLearner)


def _unique_ids(ids):
    seen, out = {}, []
    for name in ids:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


SPECS = (
    [_weighter_spec(name, w) for name, w in zip(_unique_ids(IDS), WEIGHTERS)]
    + [
        _effect_spec("WeightedEffect(PropensityWeights-ATT, simple)", PropensityWeights(estimand="ATT"), "simple",
                     "asympt"),
        _effect_spec("WeightedEffect(PropensityWeights-ATE, aipw)", PropensityWeights(estimand="ATE"), "aipw",
                     "asympt"),
        _effect_spec("WeightedEffect(EntropyBalance-ATT, simple)", EntropyBalance(estimand="ATT"), "simple",
                     "asympt"),
        _effect_spec("WeightedEffect(EntropyBalance-ATT, aipw)", EntropyBalance(estimand="ATT"), "aipw", "asympt"),
        _effect_spec("WeightedEffect(CBIPM-ATT, simple)", CBIPM(estimand="ATT", n_epochs=20), "simple", "HC0"),
        _effect_spec("WeightedEffect(CBIPM-ATE, aipw)", CBIPM(estimand="ATE", model="linear", n_epochs=20,
                                                              random_state=0), "aipw", "HC0"),
    ]
    + [_hte_spec(cls) for cls in (DRLearner, IVWDRLearner, RLearner, ULearner, CovLearner, IVWCovLearner, TLearner,
                                  SLearner)]
    + [_frontdoor_spec(cls) for cls in (FrontDoorDRLearner, FrontDoorRLearner, FrontDoorPluginLearner)]
)


# ---------------------------------------------------------------------------------------------------------------
# running and judging
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    kind: str  # "ok", "warning", "error", "invalid", "unexplained", "n/a"
    message: str = ""
    exception: type | None = None
    warnings: list = field(default_factory=list)
    result: object = None  # what is compared with the base case: weights, effect or CATE predictions

    def short(self, width=90):
        text = " ".join(self.message.split())
        text = text if len(text) <= width else text[: width - 3] + "..."
        if self.kind == "error":
            return f"error ({self.exception.__name__}): {text}"
        if self.kind in ("warning", "invalid", "unexplained"):
            label = f"{self.exception.__name__}: " if self.kind == "unexplained" else ""
            return f"{self.kind}: {label}{text}"
        return self.kind


def applies(spec, case):
    if case.uses_y and spec.kind == "weighter":
        return "weighters take no outcome"
    if case.uses_sample_weight and spec.group == "hte":
        return "fit takes no sample_weight"
    if case.uses_treated and spec.group == "hte":
        return "no treated= parameter"
    if case.uses_mediator and spec.kind != "frontdoor":
        return "fit takes no mediator"
    return None


def _fit(spec, case):
    est = spec.make(case.treated)
    if spec.kind == "weighter":
        return est.fit(case.X, case.treatment, sample_weight=case.sample_weight)
    if spec.kind == "effect":
        return est.fit(case.X, case.treatment, case.y, sample_weight=case.sample_weight)
    if spec.kind == "frontdoor":
        return est.fit(case.X, case.treatment, case.mediator, case.y)
    return est.fit(case.X, case.treatment, case.y)


def _check_output(spec, est, case):
    """Return (problem or None, result to compare with the base case)."""
    n, index = len(case.treatment), case.index()
    if spec.kind in ("weighter", "effect"):
        weighter = est if spec.kind == "weighter" else est.weighter_
        w = weighter.weights_
        if index is not None and not (isinstance(w, pd.Series) and w.index.equals(index)):
            return "weights_ do not carry X's index", None
        values = np.asarray(w, dtype=float)
        if values.shape != (n,):
            return f"weights_ has shape {values.shape}, expected ({n},)", None
        if not np.all(np.isfinite(values)):
            return f"{int(np.sum(~np.isfinite(values)))} non-finite weights", None
        if np.any(values < 0):
            return "negative weights", None
        if case.sample_weight is not None and np.any(values[np.asarray(case.sample_weight) == 0] != 0):
            return "units with sample_weight 0 got non-zero weights", None
        if spec.kind == "weighter":
            return None, values
        effect = np.array([est.estimate_, est.se_])
        if not np.all(np.isfinite(effect)):
            return f"effect {est.estimate_} with SE {est.se_} is not finite", None
        return None, effect
    tau = np.asarray(est.predict(case.X), dtype=float)
    if tau.shape != (n,) or not np.all(np.isfinite(tau)):
        return "CATE predictions are not finite, or not one per row", None
    for name in ("weights_", "pseudo_outcome_", "pseudo_g_"):
        values = getattr(est, name, None)
        if values is None:
            continue
        if not np.all(np.isfinite(np.asarray(values, dtype=float))):
            return f"{name} has non-finite values", None
        if isinstance(values, pd.Series) and hasattr(est, "rows_") and not values.index.equals(index[est.rows_]):
            return f"{name} is not aligned with X's index", None
    if np.any(np.asarray(getattr(est, "weights_", 0.0)) < 0):
        return "negative weights_", None
    return None, tau


def _snapshot(case):
    return [v.copy() if hasattr(v, "copy") else v for v in (case.X, case.treatment, case.y, case.sample_weight)]


def _unchanged(before, case):
    for old, new in zip(before, (case.X, case.treatment, case.y, case.sample_weight)):
        if isinstance(old, pd.DataFrame) and not old.equals(new):
            return False
        if isinstance(old, (pd.Series, np.ndarray)) and not np.array_equal(np.asarray(old), np.asarray(new),
                                                                           equal_nan=old.dtype.kind == "f"):
            return False
    return True


def run(spec, case, tolerate=None):
    """Fit ``spec`` on ``case`` and classify what happened (see the module docstring); warnings matching the regex
    ``tolerate`` do not count (they are still listed in ``Outcome.warnings``)."""
    reason = applies(spec, case)
    if reason:
        return Outcome("n/a", reason)
    before = _snapshot(case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est = _fit(spec, case)
            problem, result = _check_output(spec, est, case)
        except (ValueError, TypeError) as exc:
            from numpy.linalg import LinAlgError

            kind = "unexplained" if isinstance(exc, LinAlgError) else "error"
            return Outcome(kind, str(exc), type(exc))
        except Exception as exc:  # anything else is a bug: recorded, never hidden
            return Outcome("unexplained", str(exc), type(exc))
    if not _unchanged(before, case):
        return Outcome("invalid", "the input data were modified in place")
    if problem:
        return Outcome("invalid", problem)
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    relevant = [w for w in caught if issubclass(w.category, UserWarning)
                and not (tolerate and re.search(tolerate, str(w.message)))]
    numeric = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    if numeric:  # numpy overflow / invalid-value warnings: something went wrong without being explained
        return Outcome("invalid", "numpy warned: " + "; ".join(map(str, (w.message for w in numeric))),
                       warnings=messages, result=result)
    if relevant:
        return Outcome("warning", str(relevant[0].message), warnings=messages, result=result)
    return Outcome("ok", warnings=messages, result=result)


# same data another way: the same float matrix reaches the solver; reordered rows: sums in another order (the
# contract suite's tolerance); a rescaled covariate: every method standardises, CBIPM's QP to its 1e-8 tolerance
RTOL = {"same": 1e-12, "order": 1e-9, "scale": 1e-6}


def differs_from_base(spec, case, outcome, base):
    """None, or how a valid outcome differs from the clean fit ``base`` (the base case's ``Outcome.result``) when
    the case holds the same data passed another way, reordered or rescaled. Cross-fitted learners draw their folds
    by row position, so reordered rows legitimately give them another fit."""
    if not case.compare or outcome.kind not in ("ok", "warning") or (case.compare == "order" and spec.crossfit):
        return None
    reference = base if case.rows is None or spec.kind == "effect" else base[case.rows]
    rtol = RTOL[case.compare]
    gap = np.abs(np.asarray(outcome.result) - reference)
    if np.all(gap <= rtol * np.abs(reference) + rtol * np.max(np.abs(base))):
        return None
    return f"results differ from the clean fit by up to {np.max(gap):.3g} (rtol {rtol:g}, {case.compare})"
