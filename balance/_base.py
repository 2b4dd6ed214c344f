"""The contract every weighting estimator follows, and the seam it offers the variance engine.

A weighting estimator is a scikit-learn estimator whose ``fit(X, treatment, sample_weight=None)`` learns one weight
per unit (``weights_``). Shared here: input validation (:meth:`BaseWeighter._validate_data`), the fitted
bookkeeping (:meth:`BaseWeighter._set_weights`), the balance ``score`` that lets ``GridSearchCV`` tune by balance,
and the tags that make scikit-learn stratify folds by treatment.

M-estimation seam
-----------------
A method whose weights come from estimating equations (a propensity model, CBPS, entropy balancing, ...) overrides
``_m_parts(X, treatment, sample_weight=None)`` and returns an :class:`MParts`: the parameter vector, the per-unit
estimating functions, the weights as a function of the parameters, and their derivatives. The variance engine stacks
these with the outcome model's equations to get standard errors that account for estimating the weights (WeightIt's
``vcov = "asympt"``, which reads the same four pieces from its "Mparts" attribute). Any third-party weighter that
implements ``_m_parts`` gets M-estimation standard errors without further code.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils import ClassifierTags
from sklearn.utils.validation import check_is_fitted

from ._dask import any_dask, is_dask_collection
from ._exceptions import InfeasibleBalanceError
from ._treatment import ESTIMANDS, ESTIMANDS_BY_TYPE, check_estimand_for, check_treatment_type
from ._validation import CovariateDesign, check_estimand, validate_fit_data
from .diagnostics._weights import check_extreme_weights, concentration_from_sums, weight_groups

EXTREME_ADVICE = ("Consider an estimand that needs less overlap (ATO, ATM), trim=, fewer or coarser covariates, and a "
                  "bootstrap variance.")
# a continuous treatment has only the ATE: no estimand trades overlap for a different population
CONTINUOUS_EXTREME_ADVICE = ("Consider trim=, fewer or coarser covariates, a better treatment model, and a bootstrap "
                             "variance.")


@dataclass(frozen=True)
class MParts:
    """Estimating equations of a fitted weight model, in the form the variance engine consumes.

    All callables take the parameter vector ``theta`` (shape ``(k,)``) and are evaluated on the data the parts were
    built for.

    Attributes
    ----------
    params : ndarray of shape (k,)
        The estimates; ``psi(params).sum(axis=0)`` is zero up to solver tolerance.
    names : tuple of str
        One name per parameter.
    psi : callable
        ``psi(theta)`` -> ndarray of shape (n_samples, k): the per-unit estimating functions, sampling weights
        included.
    weights : callable
        ``weights(theta)`` -> ndarray of shape (n_samples,): the analysis weights (``weights_``) implied by theta.
    psi_jacobian : callable or None
        ``psi_jacobian(theta)`` -> ndarray (k, k), ``sum_i d psi_i / d theta``. None: differentiate numerically.
    weights_jacobian : callable or None
        ``weights_jacobian(theta)`` -> ndarray (n_samples, k), ``d w_i / d theta``. None: differentiate numerically.

    Examples
    --------
    >>> import numpy as np
    >>> from balance import PropensityWeights
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> pw = PropensityWeights(estimand="ATT").fit(data.X, data.treatment)
    >>> parts = pw._m_parts(data.X, data.treatment)
    >>> parts.names[:3]
    ('(Intercept)', 'age', 'educ')
    >>> bool(np.allclose(parts.psi(parts.params).sum(axis=0), 0, atol=1e-6))
    True
    """

    params: np.ndarray
    names: tuple
    psi: Callable[[np.ndarray], np.ndarray]
    weights: Callable[[np.ndarray], np.ndarray]
    psi_jacobian: Callable[[np.ndarray], np.ndarray] | None = None
    weights_jacobian: Callable[[np.ndarray], np.ndarray] | None = None


class BaseWeighter(BaseEstimator):
    """Base class of the weighting estimators (not for direct use).

    Subclasses store their hyper-parameters in ``__init__`` (no other work), define ``_supported_estimands`` and
    implement ``fit``, which calls :meth:`_validate_data` first and :meth:`_set_weights` last.

    Attributes
    ----------
    ess_ : Series
        Kish's effective sample size of ``weights_`` per treatment group (as :func:`balance.effective_sample_size`).
    max_weight_share_ : Series
        Per treatment group, the largest single unit's share of the group's total weight. When a group's ESS is
        below 5 or one unit carries more than 30% of its weight (thresholds calibrated by
        ``benchmarks/extreme_weights.py``; not for a small group of equal weights), ``fit`` warns with an
        :class:`~balance.ExtremeWeightsWarning` giving these numbers.

    Examples
    --------
    A minimal weighter (equal weights), which inherits validation, ``score`` and the scikit-learn plumbing:

    >>> import numpy as np
    >>> from balance import BaseWeighter
    >>> class EqualWeights(BaseWeighter):
    ...     def __init__(self, estimand="ATE"):
    ...         self.estimand = estimand
    ...     def fit(self, X, treatment, sample_weight=None):
    ...         data = self._validate_data(X, treatment, sample_weight)
    ...         return self._set_weights(data.sample_weight, data)
    >>> X = np.array([[1.0], [2.0], [3.0], [4.0]])
    >>> EqualWeights().fit(X, [0, 1, 0, 1]).weights_
    array([1., 1., 1., 1.])
    """

    _supported_estimands = ESTIMANDS  # for a binary treatment
    _supported_treatment_types = ("binary",)
    _multi_category_estimands = ESTIMANDS_BY_TYPE["multi-category"]
    # why a method without a dask path refuses dask input (one line; see balance._dask_data.refuse_dask)
    _dask_refusal = "its solver needs all the data in memory"

    # -- fitting helpers --------------------------------------------------------------------------------------
    def _estimands_for(self, kind):
        """The estimands this weighter supports for a treatment of type ``kind``."""
        if kind == "binary":
            return self._supported_estimands
        if kind == "multi-category":
            return self._multi_category_estimands
        return ESTIMANDS_BY_TYPE[kind]

    def _validate_data(self, X, treatment, sample_weight=None, *, reset=True):
        """Check inputs; on ``reset`` learn the covariate design, the treatment type and its levels.

        Raises a one-line ValueError when the weighter does not support the treatment's type or the estimand for
        it.
        """
        who = type(self).__name__
        if any_dask(X, treatment, sample_weight):  # a method with a dask path dispatches before it gets here
            from ._dask_data import refuse_dask

            if not reset:
                raise TypeError(f"{who}: predicting weights for dask input is not available; fit on the dask data "
                                "and read weights_ (lazy, with X's partitions), or compute() the new data first.")
            raise refuse_dask(who, self._dask_refusal)
        # an estimand no supported treatment type knows is refused before the data are looked at
        estimand = self._estimand()
        treatment_type = check_treatment_type(getattr(self, "treatment_type", "auto"))
        if reset:
            design = CovariateDesign.from_data(X, missing=getattr(self, "missing", "error"))
        else:
            check_is_fitted(self, "design_")
            design = self.design_
            if treatment_type == "auto":  # prediction: the type learned in fit decides
                treatment_type = self.treatment_type_
        # prediction for a fitted multi-category model codes the new treatment against the fitted levels
        levels = self.treatment_levels_ if not reset and self.treatment_type_ == "multi-category" else None
        data = validate_fit_data(design, X, treatment, sample_weight, treated=getattr(self, "treated", None),
                                 treatment_type=treatment_type, levels=levels)
        kind = data.treatment.kind
        if kind not in self._supported_treatment_types:
            levels = f" with {data.treatment.n_levels} levels" if data.treatment.is_categorical else ""
            raise ValueError(f"{who} supports {' and '.join(self._supported_treatment_types)} treatments only; got a "
                             f"{kind} treatment{levels}.")
        check_estimand_for(estimand, data.treatment, self._estimands_for(kind), who)
        if reset:
            self.design_ = design
            self.n_features_in_ = len(design.columns)
            if design.is_frame:
                self.feature_names_in_ = np.asarray(design.columns, dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            self.treatment_levels_ = data.treatment.levels
            self.treatment_type_ = kind
            # kept so that diagnostics given the fitted weighter use the same sampling weights (cobalt reads a
            # weightit object's s.weights); None when none were given
            self.sample_weight_ = None if sample_weight is None else data.sample_weight
        elif kind != self.treatment_type_:
            raise ValueError(f"treatment is {kind}; {who} was fitted on a {self.treatment_type_} treatment.")
        elif kind == "binary":
            if data.treatment.levels[1] != self.treatment_levels_[1] and getattr(self, "treated", None) is None:
                raise ValueError(f"treatment levels {data.treatment.levels} differ from those seen in fit.")
        return data

    def _estimand(self):
        """``estimand`` upper-cased: any case is accepted ("att"), stored as given and normalised where it is used.

        Checked against every estimand of the treatment types the weighter supports; :meth:`_validate_data` then
        checks it against the fitted treatment's type."""
        known = [e for k in self._supported_treatment_types for e in self._estimands_for(k)]
        return check_estimand(getattr(self, "estimand", "ATE"), tuple(dict.fromkeys(known)))

    def _wrap(self, values, data):
        """Return per-unit values as a Series on X's index when X was a DataFrame, else an ndarray."""
        if data.index is not None:
            return pd.Series(values, index=data.index, name="weights")
        return values

    def _set_weights(self, weights, data):
        """Store ``weights_`` after the never-NaN check every method must pass, and report extreme weights.

        ``ess_`` (Kish's effective sample size) and ``max_weight_share_`` (the largest unit's share of its group's
        total weight) are stored per treatment group; when they show that a few units carry a group's weight, an
        :class:`~balance.ExtremeWeightsWarning` gives the numbers.
        """
        weights = _check_weights_valid(weights, type(self).__name__)
        advice = CONTINUOUS_EXTREME_ADVICE if data.treatment.kind == "continuous" else EXTREME_ADVICE
        report = check_extreme_weights(weights, *weight_groups(data.treatment), who=type(self).__name__,
                                       advice=advice, stacklevel=4)
        self.ess_, self.max_weight_share_ = report.ess, report.max_share
        self.weights_ = self._wrap(weights, data)
        return self

    def _validate_dask_data(self, X, treatment, sample_weight):
        """:meth:`_validate_data` for dask input (binary treatments): the checked
        :class:`~balance._dask_data.DaskFitData` (two or three passes) and the estimand; sets the fitted design,
        ``terms_`` (the model matrix's columns) and the bookkeeping."""
        from ._dask_data import DaskFitData

        who = type(self).__name__
        data = DaskFitData.build(X, treatment, sample_weight, treated=getattr(self, "treated", None),
                                 treatment_type=getattr(self, "treatment_type", "auto"),
                                 missing=getattr(self, "missing", "error"))
        estimand = check_estimand_for(self._estimand(), data.treatment, self._estimands_for("binary"), who)
        # the fitted bookkeeping of _validate_data
        self.design_ = data.design
        self.n_features_in_ = len(data.design.columns)
        if data.design.is_frame:
            self.feature_names_in_ = np.asarray(data.design.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.treatment_levels_ = data.treatment.levels
        self.treatment_type_ = "binary"
        self.sample_weight_ = sample_weight
        self.terms_ = list(data.names)
        return data, estimand

    def _set_dask_outputs(self, data):
        """Lazy ``weights_`` (and ``ps_`` when the weighter has ``_block_ps``) of dask input, from the weighter's
        ``_block_weights`` (the in-memory formulas of one block), and the extreme-weights report from one pass of
        :meth:`_block_sums`; returns those sums (a weighter's own counts among them)."""
        model = self._block_state()
        sums = data.blocks.reduce(data.per_block(model._block_sums))
        if not all(np.all(np.isfinite(sums[key])) for key in ("cat_s1", "cat_s2")):
            raise FloatingPointError(f"{type(self).__name__} produced non-finite weights; please report this bug.")
        report = concentration_from_sums(sums, who=type(self).__name__, advice=EXTREME_ADVICE, stacklevel=5)
        self.ess_, self.max_weight_share_ = report.ess, report.max_share
        if hasattr(model, "_block_ps"):
            self.ps_ = data.blocks.per_row(data.per_block(model._block_ps), name="ps")
        self.weights_ = data.blocks.per_row(data.per_block(model._block_weights))
        self._dask_data = data
        return sums

    def _block_sums(self, matrix, a, sw):
        """Per block of dask input: what :meth:`_set_dask_outputs` sums, the weights' concentration sums (a
        weighter that counts more, e.g. clipped scores, extends this)."""
        from .diagnostics._weights import concentration_sums

        return concentration_sums(self._block_weights(matrix, a, sw), a)

    def _block_state(self):
        """A shallow copy holding the fitted state without the lazy dask attributes: what block evaluators carry to
        the workers (small, picklable, and never the graph of the weights they help to compute)."""
        state = copy.copy(self)
        for name, value in list(vars(self).items()):
            if name == "_dask_data" or is_dask_collection(value):
                delattr(state, name)
        return state

    # -- scoring ----------------------------------------------------------------------------------------------
    def score(self, X, treatment, sample_weight=None):
        """Minus the mean absolute standardised mean difference after weighting (higher is better).

        Methods with a parametric weight model (those with ``predict_weights``) weight the new data with the fitted
        model, so ``GridSearchCV`` judges out-of-fold balance. Methods that solve for sample-specific weights
        (entropy balancing, stable and energy weights, ...) have no weights to carry to new units: they are refitted
        on ``(X, treatment)`` with the same parameters, and the score says how well those *settings* balance that
        sample; what was learned in ``fit`` is not used. In cross-validation this judges the settings on samples of
        the size of a test fold. Settings that balance exactly (entropy balancing with ``tols=0``) then score about
        0 wherever they are feasible, so the search cannot tell them apart by balance: tune what trades balance for
        something else (``tols``, a penalty), or compare the feasible ones by effective sample size.

        Settings that cannot weight the scored sample at all (:class:`~balance.InfeasibleBalanceError`, e.g. a
        target mean outside the range of the reweighted units in a small fold) score ``-inf``, the worst, so that a
        search ranks them last; :func:`balance.tune` runs a search and says in one warning how many fits failed
        and why. SMDs follow :func:`balance.balance_table` (cobalt's rules, all levels of categorical covariates).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        treatment : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        from .diagnostics import balance_table

        if hasattr(self, "predict_weights"):
            weights = self.predict_weights(X, treatment, sample_weight=sample_weight)
        else:
            try:
                weights = clone(self).fit(X, treatment, sample_weight=sample_weight).weights_
            except InfeasibleBalanceError:
                return -np.inf
        table = balance_table(
            X, treatment, weights, estimand=self._estimand(), stats=("smd",), sample_weight=sample_weight,
            treated=getattr(self, "treated", None), missing=getattr(self, "missing", "error"),
            treatment_type=getattr(self, "treatment_type", "auto"),
        )
        return -float(np.mean(np.abs(table["smd_adj"].to_numpy())))

    # -- variance seam ----------------------------------------------------------------------------------------
    def _m_parts(self, X, treatment, sample_weight=None):
        """Return the :class:`MParts` of the fitted weight model on ``(X, treatment, sample_weight)``.

        Raises
        ------
        NotImplementedError
            When the method (or its current settings) has no M-estimation form; use a bootstrap then.
        """
        raise NotImplementedError(f"{type(self).__name__} has no M-estimation form; use a bootstrap variance.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Declaring the estimator a binary "classifier" of the treatment makes GridSearchCV / cross_val_score
        # default to StratifiedKFold on the treatment, so every fold has both groups (a balance score needs them).
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags(multi_class=False)
        tags.target_tags.required = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags


def _check_weights_valid(weights, who):
    weights = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(weights)):
        raise FloatingPointError(f"{who} produced {int(np.sum(~np.isfinite(weights)))} non-finite weights; please report this bug.")
    if np.any(weights < 0):
        raise FloatingPointError(f"{who} produced negative weights; please report this bug.")
    return weights


def warn_units(message, mask, index, category=UserWarning, stacklevel=3):
    """Warn with ``message`` followed by (at most ten of) the labels of the units where ``mask`` holds."""
    labels = np.flatnonzero(mask) if index is None else index[np.asarray(mask)]
    shown = ", ".join(map(str, list(labels[:10]))) + (", ..." if len(labels) > 10 else "")
    warnings.warn(f"{message} (units: {shown})", category, stacklevel=stacklevel)
