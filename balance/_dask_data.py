"""Validated dask inputs of a weighting fit: the covariate design, the treatment's levels and per-block arrays.

The dask counterpart of :func:`balance._validation.validate_fit_data`. The checks that need the whole data (the
treatment's levels, the categories present, sampling weights that are all zero, group sizes, constant or collinear
covariates, the standardisation constants of the solvers) are reductions over the partitions
(:class:`balance._blocks.DaskBlocks`): two passes over the data, three with :meth:`DaskFitData.standardizer`.
Every block is then turned into the arrays the in-memory code uses by :meth:`DaskFitData.arrays`, with the same
:class:`~balance._validation.CovariateDesign` (so dummies are named and ordered as in memory) and the treatment coded
against the global levels (so a partition that holds a single treatment group, or no rows, is coded correctly).

Supported: binary treatments; numeric, boolean and categorical covariates whose categories dask knows (a column of
unknown categories, or of text, is refused with the advice to call ``X.categorize()``); ``missing="error"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from ._blocks import DaskBlocks
from ._dask import is_dask_collection
from ._stats import pow2_scale
from ._treatment import as_1d, check_treatment, _is_missing
from ._validation import (CovariateDesign, check_constant_range, check_group_sizes, check_more_units_than_columns,
                          well_conditioned)
from .weights._standardize import Standardizer


def refuse_dask(who, reason):
    """The one-line error of a method that cannot take dask input."""
    return TypeError(f"{who} does not accept dask input: {reason}. Fit it on a sample in memory (X.sample(...)."
                     "compute()), or use PropensityWeights, EntropyBalance, InverseProbabilityTilting or CBPS, which "
                     "fit on dask collections exactly.")


def dask_design(X):
    """The :class:`CovariateDesign` of a dask DataFrame or array, learned from its meta (the categories present are
    read in the first pass). Categorical columns must have known categories; a text column must be made categorical
    first."""
    if not is_dask_collection(X) or (hasattr(X, "divisions") and X.ndim != 2):
        raise TypeError(f"X must be a dask DataFrame or 2-d dask array when the other inputs are dask collections; "
                        f"got {type(X).__name__} (take X, treatment and y as columns of one dask DataFrame).")
    if not hasattr(X, "divisions"):
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-d dask array; got {X.ndim} dimensions.")
        return CovariateDesign.from_data(np.empty((0, X.shape[1])))
    meta = X._meta
    for c in meta.columns:
        dtype = meta[c].dtype
        if isinstance(dtype, pd.CategoricalDtype) and not X[c].cat.known:
            raise ValueError(f"covariate {c!r} is categorical with unknown categories; call X = X.categorize() "
                             "(one pass over the data) before fitting.")
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            raise ValueError(f"covariate {c!r} holds text; make it categorical with X = X.categorize() (one pass "
                             "over the data) before fitting on dask input.")
    return CovariateDesign.from_data(meta)


def _scan(X, treatment, sample_weight, categorical):
    """First pass: rows, treatment values, categories present, bad sampling weights."""
    t, _ = as_1d(treatment, "treatment")
    missing = _is_missing(t)
    # three values tell a binary treatment from any other (a continuous one would otherwise send every value)
    out = {"n": len(t), "n_missing": int(missing.sum()),
           "set_treatment": frozenset(pd.unique(t[~missing])[:3].tolist())}
    for col in categorical:
        out[f"set_cat:{col}"] = frozenset(X[col].dropna().unique().tolist())
    if sample_weight is not None:
        sw = np.asarray(as_1d(sample_weight, "sample_weight")[0], dtype=np.float64)
        out.update(n_nonfinite=int(np.sum(~np.isfinite(sw))), n_negative=int(np.sum(sw < 0)),
                   n_positive=int(np.sum(sw > 0)))
    return out


@dataclass
class DaskFitData:
    """Dask inputs of a binary-treatment weighting fit, checked (see the module notes).

    Attributes
    ----------
    blocks : DaskBlocks
        ``X``, ``treatment``, ``sample_weight`` by partition.
    design : CovariateDesign
    names : list of str
        The model matrix's columns (reference-level coding).
    treatment : Treatment
        The levels (control, treated) and kind; its codes are empty (they live in the blocks).
    stats : dict
        Sums of the second pass: ``n``, ``sum_x``, ``min_x``, ``max_x``, ``max_abs``, ``sw_x``, ``sw_sum``,
        ``sw_a``, ``n_pos`` (units of positive sampling weight per group).
    """

    blocks: DaskBlocks
    design: CovariateDesign
    names: list
    treatment: object
    stats: dict
    _standardizer: Standardizer | None = None

    @classmethod
    def build(cls, X, treatment, sample_weight=None, *, treated=None, treatment_type="auto", missing="error"):
        """Check the dask inputs (two passes over the data) and learn the design and the treatment's levels."""
        if missing != "error":
            raise ValueError(f"missing={missing!r} is not available for dask input (it needs the covariates' "
                             "medians); fill or drop the missing values first (X.fillna(...), X.dropna()).")
        if treatment_type not in ("auto", "binary"):
            raise ValueError(f"treatment_type={treatment_type!r}: dask input supports binary treatments only.")
        design = dask_design(X)
        blocks = DaskBlocks(X=X, treatment=treatment, sample_weight=sample_weight)
        categorical = [c for c, k in zip(design.columns, design.kinds) if k == "categorical"]
        scan = blocks.reduce(_scan, categorical)
        _check_scan(scan, sample_weight is not None)
        t = check_treatment(_levels_seen(scan["set_treatment"], treatment.dtype), treated=treated,
                            treatment_type=treatment_type)
        if t.kind != "binary":
            raise ValueError(f"treatment is {t.kind}: dask input supports binary treatments only.")
        if categorical:
            meta = X._meta
            cats = tuple(tuple(c for c in meta[col].cat.categories if c in scan[f"set_cat:{col}"])
                         if kind == "categorical" else None for col, kind in zip(design.columns, design.kinds))
            design = CovariateDesign(design.columns, design.kinds, cats, True)
        names = design.transform(X._meta if design.is_frame else np.empty((0, len(design.columns))))[1]
        data = cls(blocks, design, names, t, {})
        data.stats = blocks.reduce(data.per_block(_design_sums))
        check_group_sizes(t, None, sizes=data.stats["n_pos"])
        check_constant_range(data.stats["min_x"], data.stats["max_x"], names)
        return data

    @property
    def n(self):
        return int(self.stats["n"])

    @property
    def coder(self):
        return BlockCoder(self.design, self.treatment.levels[1])

    def standardizer(self):
        """The solvers' :class:`~balance.weights._standardize.Standardizer` (centre: the sampling-weighted mean;
        scale: the SD, computed on power-of-two-scaled columns as :func:`balance._stats.column_std`), after the rank
        check of :func:`balance._validation.check_full_rank` on the Gram matrix of the scaled design. One pass, the
        first time (kept for the effect's outcome model, which standardises by the same SD)."""
        if self._standardizer is None:
            self._standardizer = self._standardize()
        return self._standardizer

    def _standardize(self):
        stats, n = self.stats, self.n
        pow2 = pow2_scale(stats["max_abs"][None, :])
        sums = self.blocks.reduce(self.per_block(_spread_sums, pow2, stats["sum_x"] / pow2 / n, stats["max_abs"]))
        _check_rank(sums["gram"], n, self.names)
        scale = np.sqrt(sums["ss"] / n) * pow2 if n > 1 else np.ones(len(self.names))
        return Standardizer(stats["sw_x"] / stats["sw_sum"], np.where(scale > 0, scale, 1.0))

    def per_block(self, func, *args):
        """``func(matrix, a, sw, *args)`` as a block evaluator of the raw partitions."""
        return self.coder.per_block(func, *args)


@dataclass(frozen=True)
class BlockCoder:
    """Turns one block of raw partitions into the arrays of the in-memory code (small: it travels with the tasks)."""

    design: CovariateDesign
    treated_level: object

    def arrays(self, X, treatment, sample_weight):
        """The block's model matrix, coded treatment (int8 0/1) and sampling weights (ones when None)."""
        matrix, _ = self.design.transform(X, drop_first=True)
        t, _ = as_1d(treatment, "treatment")
        a = (t == self.treated_level).astype(np.int8)
        sw = np.ones(len(a)) if sample_weight is None else \
            np.asarray(as_1d(sample_weight, "sample_weight")[0], dtype=np.float64)
        return matrix, a, sw

    def per_block(self, func, *args):
        """``func(matrix, a, sw, *args)`` as a block evaluator of the raw partitions (picklable when ``func`` is)."""
        return partial(_coded_call, self, func, args)


def _coded_call(coder, func, args, X, treatment, sample_weight):
    return func(*coder.arrays(X, treatment, sample_weight), *args)


def _check_scan(scan, weighted):
    if scan["n_missing"]:
        raise ValueError(f"treatment has {scan['n_missing']} missing or infinite values; remove those rows first.")
    if weighted:
        if scan["n_nonfinite"]:
            raise ValueError(f"sample_weight has {scan['n_nonfinite']} missing or infinite values.")
        if scan["n_negative"]:
            raise ValueError(f"sample_weight has {scan['n_negative']} negative values; weights must be >= 0.")
        if not scan["n_positive"]:
            raise ValueError("sample_weight is zero for every unit.")


def _levels_seen(values, dtype):
    """The treatment values seen, as a Series of the treatment's dtype (booleans stay booleans: True is treated)."""
    values = sorted(values, key=str)
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = object
    try:
        return pd.Series(values, dtype=dtype)
    except (TypeError, ValueError):
        return pd.Series(values, dtype=object)


def _design_sums(matrix, a, sw):
    """Second pass: rows, column sums, ranges and magnitudes, sampling-weighted sums, group sizes."""
    return {
        "n": matrix.shape[0], "sum_x": matrix.sum(axis=0), "min_x": matrix.min(axis=0, initial=np.inf),
        "max_x": matrix.max(axis=0, initial=-np.inf), "max_abs": np.abs(matrix).max(axis=0, initial=0.0),
        "sw_x": sw @ matrix, "sw_sum": sw.sum(), "sw_a": sw @ a, "n_pos": np.bincount(a[sw > 0], minlength=2),
    }


def _spread_sums(matrix, a, sw, pow2, mean_scaled, max_abs):
    scaled = matrix / pow2
    unit = matrix / np.where(max_abs > 0, max_abs, 1.0)
    design = np.column_stack([np.ones(len(unit)), unit])
    return {"ss": ((scaled - mean_scaled) ** 2).sum(axis=0), "gram": design.T @ design}


def _check_rank(gram, n, names):
    """check_full_rank's test on the Gram matrix of [1, X / max|X|]; the columns named from its null space."""
    check_more_units_than_columns(len(names), n)
    eig, vectors = np.linalg.eigh(gram)
    if well_conditioned(eig):
        return
    null = np.abs(vectors[:, 0])
    cols = ["(intercept)" if j == 0 else names[j - 1] for j in np.flatnonzero(null > 1e-6 * null.max())]
    raise ValueError(f"covariates are perfectly collinear: {cols} are linear combinations of each other; remove "
                     "one of them.")
