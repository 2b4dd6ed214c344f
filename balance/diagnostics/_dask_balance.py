"""Balance tables, effective sample sizes and weight summaries of dask input, in two passes over the blocks.

Every statistic of a balance table except the KS statistic is a function of per-group weighted moments, which
merge exactly across blocks: each block reports, per treatment group and weight vector, the count, the sums of the
weights and of their squares, the weighted mean and the weighted sum of squared deviations from it, and blocks are
merged pairwise in a tree (Chan, Golub & LeVeque 1983), never through sums of squares of raw values (which lose
every digit of a covariate such as 1e9 + N(0, 1)). The merged moments go to the same formula functions as data in
memory (:func:`._balance.group_statistics`), so SMDs, variance ratios, means, SDs and effective sample sizes agree
with the in-memory results to rounding.

Pass 1 reads each block once for what the second pass must know: the treatment levels, each row's range and
whether it is two-valued (binary rows and their 0/1 coding), the power-of-two scale of each row and of the
weights, and a mergeable quantile sketch of each continuous row. Pass 2 computes the moments and, for the KS
statistic, a weighted histogram of each continuous row on bins whose edges are sketch quantiles (values of the
data). At a bin edge both weighted ECDFs are exact; inside a bin they can only move between their values at its
two edges, so the exact KS lies between the largest gap at the edges (the table's value, a value the exact
statistic attains) and that plus ``ks_error`` (zero for a bin holding a single distinct value, so rows with fewer
distinct values than bins are exact). Nothing of the size of the data is ever computed into one process: memory is
flat in the number of rows.

References: Chan, T. F., Golub, G. H. & LeVeque, R. J. (1983). Algorithms for computing the sample variance.
*The American Statistician* 37(3), 242–247.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .._dask import import_dask, is_dask_collection
from .._stats import pow2_scale
from .._treatment import _is_missing, check_treatment
from .._validation import CovariateDesign, _column_kind
from ._balance import ALL, Moments, _comparisons, assemble_table, check_table_options, group_statistics, mean_var
from ._report import ess_frame
from ._terms import balance_terms
from ._weights import (WeightSummary, check_groups_weighted, group_names, inherit, inherit_treatment_type,
                       resolve_weights)

KS_BINS = 2048  # histogram bins per continuous row: the KS error is at most the largest weighted mass in one bin
MAX_LEVELS = 1000  # more distinct treatment values than this in a block: not a set of levels
SPLIT_EVERY = 8  # states merged per task of the tree reduction
CHUNK_ROWS = 65_536  # units of a partition summarised at a time in pass 2 (bounds its temporary arrays)

__all__ = ["dask_balance_table", "dask_effective_sample_size", "dask_weight_summary"]


# --------------------------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------------------------
def _aligned_blocks(anchor_name, anchor, others):
    """The blocks of ``anchor`` and of each of ``others`` (a dict of name to collection or None), as lists of
    delayed objects, one entry per block; None entries stay None.

    A dask DataFrame or Series anchor needs the others to be dask DataFrames or Series with as many partitions (and
    the same divisions when both are known); a dask array anchor needs dask arrays, rechunked to its row blocks.
    Unoptimised graphs, so that collections read from one source share its tasks and read it once per pass.
    """
    dask = import_dask()
    frame = isinstance(anchor, (dask.dataframe.DataFrame, dask.dataframe.Series))
    if not frame and not isinstance(anchor, dask.array.Array):
        raise TypeError(f"{anchor_name} must be a dask DataFrame, Series or Array when other inputs are dask "
                        f"collections; got {type(anchor).__name__}.")
    if not frame:
        if anchor.ndim == 2:
            anchor = anchor.rechunk({1: -1})
        if any(np.isnan(c) for c in anchor.chunks[0]):
            raise ValueError(f"{anchor_name} has unknown block sizes; call {anchor_name}.compute_chunk_sizes() first.")
    blocks = {anchor_name: _collection_blocks(anchor)}
    for name, other in others.items():
        if other is None:
            blocks[name] = None
            continue
        fix = f"build {name} and {anchor_name} from one dask DataFrame (or dask arrays with the same row blocks)"
        if not is_dask_collection(other):
            raise TypeError(f"{name} is a {type(other).__name__} but {anchor_name} is a dask collection; pass {name} "
                            f"as a dask collection with {anchor_name}'s partitions ({fix}).")
        if frame:
            if not isinstance(other, (dask.dataframe.DataFrame, dask.dataframe.Series)):
                raise TypeError(f"{name} is a {type(other).__name__} but {anchor_name} is a dask DataFrame; {fix}.")
            if other.npartitions != anchor.npartitions or (
                    other.known_divisions and anchor.known_divisions and other.divisions != anchor.divisions):
                raise ValueError(f"{name} has {other.npartitions} partitions but {anchor_name} has "
                                 f"{anchor.npartitions} (or different divisions); {fix}.")
        else:
            if not isinstance(other, dask.array.Array):
                raise TypeError(f"{name} is a {type(other).__name__} but {anchor_name} is a dask array; {fix}.")
            if other.ndim == 2 and other.shape[1] == 1:
                other = other[:, 0]
            if other.ndim != 1 or other.shape[0] != anchor.shape[0]:
                raise ValueError(f"{name} has shape {other.shape} but {anchor_name} has {anchor.shape[0]} rows.")
            if other.chunks[0] != anchor.chunks[0]:
                blocks[name] = _rechunked_blocks(other, anchor.chunks[0])
                continue
        blocks[name] = _collection_blocks(other)
    return blocks


def _rechunked_blocks(array, sizes):
    """The blocks of a 1-d dask ``array`` cut at ``sizes``; an empty block is an empty array literal (dask's
    rechunk to blocks of size 0 mixes up the blocks)."""
    parts = iter(_collection_blocks(array.rechunk((tuple(size for size in sizes if size),))))
    return [next(parts) if size else np.empty(0, dtype=array.dtype) for size in sizes]


def _collection_blocks(collection):
    blocks = collection.to_delayed(optimize_graph=False)
    return list(np.ravel(blocks)) if isinstance(blocks, np.ndarray) else list(blocks)


def _reduce(states, merge):
    """Tree reduction of delayed per-block states with ``merge(a, b)``, SPLIT_EVERY at a time."""
    dask = import_dask()
    merge_many = dask.delayed(_merge_many, pure=True)
    while len(states) > 1:
        states = [merge_many(merge, states[i:i + SPLIT_EVERY]) for i in range(0, len(states), SPLIT_EVERY)]
    return states[0]


def _merge_many(merge, states):
    return functools.reduce(merge, states)


def _run_pass(block_function, spec, blocks, merge):
    """Apply ``block_function(spec, position, *parts)`` to every block and merge the results: one pass."""
    dask = import_dask()
    spec = dask.delayed(spec, pure=True)  # one task shared by every block, not a copy in each
    apply = dask.delayed(block_function, pure=True)
    names = list(blocks)
    states = [apply(spec, i, *(None if blocks[n] is None else blocks[n][i] for n in names))
              for i in range(len(blocks[names[0]]))]
    return dask.compute(_reduce(states, merge))[0]


def _values(part, name, index=None, reference="X"):
    """A block of a one-column input as a 1-d ndarray, its index checked against ``index`` (the block of the input
    named ``reference``)."""
    if part is None:
        return None
    if isinstance(part, pd.DataFrame):
        if part.shape[1] != 1:
            raise ValueError(f"{name} must be one column; got a DataFrame with {part.shape[1]} columns.")
        part = part.iloc[:, 0]
    if index is not None and isinstance(part, pd.Series) and not part.index.equals(index):
        raise ValueError(f"{name}'s index differs from {reference}'s in a partition; give them the same index (e.g. "
                         "build both from one dask DataFrame).")
    values = np.asarray(part)
    if index is not None and values.shape[0] != len(index):
        raise ValueError(f"{name} has a block of {values.shape[0]} rows where {reference} has {len(index)}; give "
                         "them the same partitions.")
    return values


# --------------------------------------------------------------------------------------------------------------
# treatment and weights, block by block
# --------------------------------------------------------------------------------------------------------------
def _level_counts(t):
    """``{value: count}`` of a treatment block (None: more than MAX_LEVELS values) and its missing count."""
    missing = _is_missing(t)
    counts = pd.Series(t[~missing]).value_counts(sort=False)
    return (None if len(counts) > MAX_LEVELS else counts.to_dict()), int(missing.sum())


def _merge_counts(a, b):
    if a is None or b is None:
        return None
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + value
    return out if len(out) <= MAX_LEVELS else None


def _weight_check(w):
    """``(missing or infinite, negative, largest finite)`` of a block of weights."""
    if w is None:
        return np.zeros(3)
    try:
        w = w.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("weights must be numeric.") from exc
    finite = np.isfinite(w)
    return np.array([np.sum(~finite), np.sum(w[finite] < 0), np.max(w[finite], initial=0.0)])


def _merge_weight_check(a, b):
    return np.array([a[0] + b[0], a[1] + b[1], max(a[2], b[2])])


def _raise_weight_problems(name, check):
    """The errors of :func:`balance._validation.check_weights`, from the counts of a pass."""
    if check[0]:
        raise ValueError(f"{name} has {int(check[0])} missing or infinite values.")
    if check[1]:
        raise ValueError(f"{name} has {int(check[1])} negative values; weights must be >= 0.")


def _resolve_treatment(counts, missing, dtype, treated, treatment_type, allow_continuous=False):
    """A :class:`balance._treatment.Treatment` of the distinct values (its ``codes`` are theirs, not the units'),
    checked as data in memory are; None for a continuous treatment when ``allow_continuous``."""
    if missing:
        raise ValueError(f"treatment has {missing} missing or infinite values; remove those rows first.")
    if counts is None:
        continuous = treatment_type == "continuous" or (treatment_type in (None, "auto")
                                                       and np.dtype(dtype).kind == "f")
        if allow_continuous and continuous and np.dtype(dtype).kind in "iuf":
            if treated is not None:
                raise ValueError(f"treated={treated!r} has no meaning for a continuous treatment; leave it None.")
            return None
        what = ("this needs a binary or multi-category treatment on dask input" if not allow_continuous else
                "say treatment_type='continuous' if it is a dose")
        raise ValueError(f"treatment has more than {MAX_LEVELS} distinct values; {what}.")
    values = pd.Series(list(counts), dtype=dtype if isinstance(dtype, pd.CategoricalDtype) else None)
    if not isinstance(dtype, pd.CategoricalDtype):
        values = values.astype(dtype)
    t = check_treatment(values, treated=treated, treatment_type=treatment_type)
    if t.kind == "continuous" and not allow_continuous:
        raise ValueError("balance_table on dask input supports binary and multi-category treatments; a continuous "
                         "treatment's correlations need the data in memory.")
    return t


def _codes(t_values, levels):
    """Level codes 0..K-1 of a block of treatment values (levels as the resolved treatment orders them)."""
    if levels is None:
        return np.zeros(len(t_values), dtype=np.int64)
    return pd.Index(list(levels)).get_indexer(pd.Series(t_values).to_numpy())


def _treatment_dtype(treatment):
    meta = getattr(treatment, "_meta", None)
    if isinstance(meta, pd.DataFrame):
        meta = meta.iloc[:, 0]
    return meta.dtype if meta is not None else treatment.dtype


# --------------------------------------------------------------------------------------------------------------
# pass 1 of a balance table: levels, ranges, scales, quantile sketches
# --------------------------------------------------------------------------------------------------------------
def _design_of(X):
    """The :class:`CovariateDesign` of a dask DataFrame's or array's columns, every declared category kept."""
    dask = import_dask()
    if isinstance(X, dask.array.Array):
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-d dask array; got {X.ndim} dimensions.")
        columns = tuple(f"x{j}" for j in range(X.shape[1]))
        return CovariateDesign(columns, ("numeric",) * len(columns), (None,) * len(columns), False)
    if not isinstance(X, dask.dataframe.DataFrame):
        raise TypeError(f"X must be a dask DataFrame or Array when other inputs are dask collections (such as the "
                        f"lazy weights_ of a fit on dask input); got {type(X).__name__}: pass the dask X, or compute "
                        "the other inputs (e.g. weights=fitted.weights_.compute()).")
    meta = X._meta
    columns, kinds, cats = [], [], []
    for c in meta.columns:
        series = meta[c]
        if isinstance(series.dtype, pd.CategoricalDtype):
            if not X[c].cat.known:
                raise ValueError(f"covariate {c!r} is categorical with unknown categories; call "
                                 f"X[{c!r}] = X[{c!r}].cat.as_known() first.")
            kind = "categorical"
        elif pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            raise TypeError(f"covariate {c!r} is text; on dask input make it categorical with known categories "
                            f"(X[{c!r}] = X[{c!r}].astype('category').cat.as_known()).")
        else:
            kind = _column_kind(series)
        columns.append(str(c))
        kinds.append(kind)
        cats.append(tuple(series.cat.categories) if kind == "categorical" else None)
    if not columns:
        raise ValueError("X has no columns.")
    return CovariateDesign(tuple(columns), tuple(kinds), tuple(cats), True)


def _sketch(values, size):
    """A quantile sketch of every column of ``values``: ``(points (k, p), weights (k,))``, k <= size points at
    evenly spaced ranks, each standing for as many units."""
    n = values.shape[0]
    if n <= size:
        return np.sort(values, axis=0), np.ones(n)
    ranks = np.round(np.linspace(0, n - 1, size)).astype(np.int64)
    return np.sort(values, axis=0)[ranks], np.full(size, n / size)


def _merge_sketches(a, b, size):
    """Two sketches as one of at most ``size`` points: per column, the points at evenly spaced cumulative
    weights of the union."""
    points, weights = np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])
    if points.shape[0] <= size:
        return points, weights
    order = np.argsort(points, axis=0, kind="stable")
    total = weights.sum()
    targets = (np.arange(size) + 0.5) * (total / size)
    out = np.empty((size, points.shape[1]))
    for j in range(points.shape[1]):
        cum = np.cumsum(weights[order[:, j]])
        pick = np.minimum(np.searchsorted(cum, targets), cum.size - 1)
        out[:, j] = points[order[pick, j], j]
    return out, np.full(size, total / size)


def _scan_block(spec, position, x, t, w, sw, fitted_sw):
    """Pass 1 on one block: see :func:`_merge_scans` for the fields."""
    design, numeric, sketch_size = spec
    index = x.index if isinstance(x, pd.DataFrame) else None
    n = x.shape[0]
    t, w, sw, fitted_sw = (_values(v, name, index) for v, name in ((t, "treatment"), (w, "weights"),
                                                                  (sw, "sample_weight"),
                                                                  (fitted_sw, "the weighter's sample_weight_")))
    if index is None and t.shape[0] != n:
        raise ValueError(f"treatment has a block of {t.shape[0]} rows where X has {n}; give them the same blocks.")
    counts, t_missing = _level_counts(t)
    frame = pd.DataFrame(x) if index is not None else pd.DataFrame(np.asarray(x, dtype=np.float64),
                                                                   columns=design.columns)
    na = frame.isna().to_numpy().sum(axis=0)
    differs = 0 if fitted_sw is None else int(np.sum(np.asarray(sw, float) != np.asarray(fitted_sw, float)))
    state = {"n": n, "levels": counts, "t_missing": t_missing, "na": na, "w": _weight_check(w),
             "sw": _weight_check(sw), "sw_differs": differs}
    if n == 0 or na.any():  # nothing to summarise; missing values are reported after the pass
        return state
    matrix, _ = design.transform(frame, drop_first=False, impute=False)
    lo, hi = matrix.min(axis=0), matrix.max(axis=0)
    state.update(lo=lo, hi=hi, third=((matrix != lo) & (matrix != hi)).any(axis=0), zero=(matrix == 0).any(axis=0),
                 absmax=np.abs(matrix).max(axis=0), sketch=_sketch(matrix[:, numeric], sketch_size))
    return state


def _merge_scans(a, b, sketch_size):
    """Merge two pass-1 states: rows ``n``; treatment level counts; missing counts; weight checks; per expanded
    column its range (``lo``, ``hi``), whether a third value lies strictly inside it, whether it holds a 0, its
    largest absolute value and a quantile sketch of the numeric columns."""
    out = {"n": a["n"] + b["n"], "levels": _merge_counts(a["levels"], b["levels"]),
           "t_missing": a["t_missing"] + b["t_missing"], "na": a["na"] + b["na"],
           "w": _merge_weight_check(a["w"], b["w"]), "sw": _merge_weight_check(a["sw"], b["sw"]),
           "sw_differs": a["sw_differs"] + b["sw_differs"]}
    if "lo" not in a or "lo" not in b:
        full = a if "lo" in a else b
        out.update({key: full[key] for key in ("lo", "hi", "third", "zero", "absmax", "sketch") if key in full})
        return out
    lo, hi = np.minimum(a["lo"], b["lo"]), np.maximum(a["hi"], b["hi"])
    inside = [(v != lo) & (v != hi) for v in (a["lo"], a["hi"], b["lo"], b["hi"])]
    out.update(lo=lo, hi=hi, third=a["third"] | b["third"] | np.logical_or.reduce(inside),
               zero=a["zero"] | b["zero"], absmax=np.maximum(a["absmax"], b["absmax"]),
               sketch=_merge_sketches(a["sketch"], b["sketch"], sketch_size))
    return out


# --------------------------------------------------------------------------------------------------------------
# pass 2 of a balance table: per-group moments and histograms
# --------------------------------------------------------------------------------------------------------------
def _rows_of_block(plan, x):
    """The balance table's rows of one block, binary rows coded 0/1, every row divided by its scale."""
    design, flags = plan["design"], plan["flags"]
    frame = x if isinstance(x, pd.DataFrame) else pd.DataFrame(np.asarray(x, dtype=np.float64),
                                                               columns=design.columns)
    matrix, names = design.transform(frame, drop_first=False, impute=False)
    matrix, _, _ = balance_terms(matrix, names, flags, design)
    matrix = np.where(plan["two_valued"], matrix != plan["reference"], matrix)
    return matrix / plan["scale"]


def _moment_block(plan, position, x, t, w, sw):
    """Pass 2 on one block: per (group code, weights) the merged-moment state of :func:`_merge_moments`, and per
    continuous row and bin the count of units not equal to the bin's upper edge (``"inexact"``).

    Taken CHUNK_ROWS units at a time and merged like blocks: the temporary arrays (the balance rows, their bins, the
    groups' copies) stay a few tens of MB whatever the partition's size, so a worker's memory is the partition's
    plus a constant."""
    n = len(x)
    if n <= CHUNK_ROWS:
        return _moment_chunk(plan, x, t, w, sw)
    cut = lambda part, start: None if part is None else (  # noqa: E731
        part.iloc[start:start + CHUNK_ROWS] if hasattr(part, "iloc") else part[start:start + CHUNK_ROWS])
    return functools.reduce(_merge_block_states, (_moment_chunk(plan, *(cut(part, start) for part in (x, t, w, sw)))
                                                  for start in range(0, n, CHUNK_ROWS)))


def _moment_chunk(plan, x, t, w, sw):
    rows = _rows_of_block(plan, x)
    codes = _codes(_values(t, "treatment"), plan["levels"])
    n = rows.shape[0]
    runs = {"un": np.ones(n) if sw is None else _values(sw, "sample_weight").astype(np.float64) / plan["sw_scale"]}
    if w is not None:
        runs["adj"] = _values(w, "weights").astype(np.float64) / plan["w_scale"]
    edges, counts, ks_rows = plan["edges"], plan["n_edges"], plan["ks_rows"]
    width = edges.shape[1]
    bins = np.empty((n, len(ks_rows)), dtype=np.int64)
    for k, j in enumerate(ks_rows):  # bin i holds edges[i - 1] < x <= edges[i]
        bins[:, k] = np.searchsorted(edges[k, :counts[k]], rows[:, j], side="left")
    flat = bins + width * np.arange(len(ks_rows))
    on_edge = rows[:, ks_rows] == np.take_along_axis(edges, bins.T, axis=1).T if len(ks_rows) else bins
    state = {"inexact": np.bincount(flat[~on_edge], minlength=width * len(ks_rows)) if len(ks_rows) else None}
    for g in range(plan["n_groups"]):
        for suffix, weights in runs.items():
            keep = (codes == g) & (weights > 0)
            state[g, suffix] = _moments_state(rows[keep], plan["shift"], weights[keep], flat[keep],
                                              width * len(ks_rows))
    return state


def _moments_state(rows, shift, w, flat_bins, n_cells):
    """Count, Σw, Σw², weighted mean of ``rows − shift``, Σw(x − mean)², range and weighted histogram of rows
    of positive weight.

    ``shift`` is a value of each row (its median in the sketch): the mean of the shifted values carries rounding
    errors relative to the spread of the row, not to its offset, so that the merge's squared differences of
    block means stay exact for a covariate such as 1e9 + N(0, 1).
    """
    p = rows.shape[1]
    if w.size == 0:
        return {"n": 0, "w1": 0.0, "w2": 0.0, "mean": np.zeros(p), "m2": np.zeros(p), "lo": np.full(p, np.inf),
                "hi": np.full(p, -np.inf), "hist": np.zeros(n_cells)}
    w1 = w.sum()
    centred = rows - shift
    mean = (w @ centred) / w1
    return {"n": w.size, "w1": w1, "w2": w @ w, "mean": mean, "m2": w @ (centred - mean) ** 2,
            "lo": rows.min(axis=0), "hi": rows.max(axis=0),
            "hist": np.bincount(flat_bins.ravel(), weights=np.repeat(w, flat_bins.shape[1]), minlength=n_cells)}


def _merge_moments(a, b):
    """Chan et al.'s parallel merge of two weighted-moment states (exact up to rounding, no raw sums of squares)."""
    if a["n"] == 0:
        return b
    if b["n"] == 0:
        return a
    w1 = a["w1"] + b["w1"]
    delta = b["mean"] - a["mean"]
    return {"n": a["n"] + b["n"], "w1": w1, "w2": a["w2"] + b["w2"], "mean": a["mean"] + delta * (b["w1"] / w1),
            "m2": a["m2"] + b["m2"] + delta**2 * (a["w1"] * b["w1"] / w1), "lo": np.minimum(a["lo"], b["lo"]),
            "hi": np.maximum(a["hi"], b["hi"]), "hist": a["hist"] + b["hist"]}


def _merge_block_states(a, b):
    out = {"inexact": None if a["inexact"] is None else a["inexact"] + b["inexact"]}
    for key in a:
        if key != "inexact":
            out[key] = _merge_moments(a[key], b[key])
    return out


def _as_moments(state, shift):
    """:class:`._balance.Moments` of a merged state (``correction`` 0 for a single unit, as in memory)."""
    correction = 0.0 if state["n"] < 2 else 1.0 - state["w2"] / state["w1"] ** 2
    return Moments(mean=shift + state["mean"], spread=state["m2"] / state["w1"], correction=correction, lo=state["lo"],
                   hi=state["hi"])


def _ks_bounds(first, second, counts, width, inexact):
    """``(lower, upper)`` bounds of the KS statistic of every continuous row from the two groups' histograms.

    ``lower``: the largest |ECDF gap| at the bin edges below the last (attained by the exact statistic);
    ``upper``: also the largest gap possible inside a bin holding more than one distinct value.
    """
    f_1 = np.cumsum(first.reshape(-1, width), axis=1)
    f_2 = np.cumsum(second.reshape(-1, width), axis=1)
    f_1, f_2 = f_1 / f_1[:, -1:], f_2 / f_2[:, -1:]
    below_last = np.arange(width) < (counts - 1)[:, None]
    gap = np.where(below_last, np.abs(f_1 - f_2), 0.0)
    lower = gap.max(axis=1, initial=0.0)
    within = np.maximum(f_1[:, 1:] - f_2[:, :-1], f_2[:, 1:] - f_1[:, :-1])
    open_bins = (inexact.reshape(-1, width)[:, 1:] > 0)
    upper = np.maximum(lower, np.where(open_bins, within, 0.0).max(axis=1, initial=0.0))
    return lower, upper


# --------------------------------------------------------------------------------------------------------------
# balance_table
# --------------------------------------------------------------------------------------------------------------
def dask_balance_table(X, treatment, fitted, *, estimand, stats, binary, continuous, sd_denom, sample_weight,
                       distance, treated, missing, treatment_type, pairwise, interactions, poly, display, thresholds,
                       by):
    """:func:`balance.diagnostics.balance_table` of dask input (its options already checked where they do not
    depend on the data; ``fitted`` is the resolved ``weights``), in two passes over the blocks (module
    docstring)."""
    for option, given, reason in (
            ("distance", distance is not None, "distance rows are not summarised block by block yet"),
            ("interactions", bool(interactions), "products of covariates are not formed block by block yet"),
            ("poly", poly != 1, "powers of covariates are not formed block by block yet"),
            ("by", by is not None, "subgroup tables are not formed block by block yet")):
        if given:
            raise ValueError(f"{option}= is not available for dask input ({reason}); leave it at its default, or "
                             "compute the table on data in memory.")
    if stats is not None and "ovl" in ((stats,) if isinstance(stats, str) else tuple(stats)):
        raise ValueError("stats='ovl' is not available for dask input (its kernel densities need the data in "
                         "memory); choose from ['smd', 'vratio', 'ks'].")
    inherit("missing", missing, fitted.missing)  # a conflicting rule is an error, as in memory
    fitted_sw = None
    if fitted.sample_weight is not None:  # the fitted weighter's sampling weights, as cobalt uses a weightit's
        if sample_weight is None:
            sample_weight = fitted.sample_weight
        elif sample_weight is not fitted.sample_weight:
            fitted_sw = fitted.sample_weight  # compared block by block in pass 1
    design_full = _design_of(X)
    blocks = _aligned_blocks("X", X, {"treatment": treatment, "weights": fitted.weights,
                                      "sample_weight": sample_weight, "fitted_sample_weight": fitted_sw})
    full_names = design_full.transform(_empty_frame(design_full), drop_first=False, impute=False)[1]
    full_flags = design_full.indicator_flags(drop_first=False)
    numeric = np.flatnonzero(~full_flags)  # numeric columns (booleans and level dummies are flagged)
    sketch_size = KS_BINS - 1
    scan = _run_pass(_scan_block, (design_full, numeric, sketch_size), blocks,
                     functools.partial(_merge_scans, sketch_size=sketch_size))

    # checks of pass 1, in the order data in memory meets them
    bad = np.flatnonzero(scan["na"])
    if bad.size:
        raise ValueError(f"covariate {design_full.columns[bad[0]]!r} has {int(scan['na'][bad[0]])} missing values; "
                         "balance_table on dask input needs complete covariates: drop or impute those rows first.")
    t = _resolve_treatment(scan["levels"], scan["t_missing"], _treatment_dtype(treatment),
                           inherit("treated", treated, fitted.treated), inherit_treatment_type(treatment_type, fitted))
    stats, thresholds, sd_denom = check_table_options(t, fitted, estimand, stats, thresholds, sd_denom)
    if scan["sw_differs"]:
        raise ValueError("sample_weight differs from the sampling weights the weighter was fitted with; drop "
                         "sample_weight= to use the weighter's, or refit the weighter with these.")
    _raise_weight_problems("sample_weight", scan["sw"])
    _raise_weight_problems("weights", scan["w"])

    plan = _plan(design_full, full_names, full_flags, numeric, scan, t)
    plan.update(sw_scale=pow2_scale(scan["sw"][2], axis=None), w_scale=pow2_scale(scan["w"][2], axis=None))
    blocks.pop("fitted_sample_weight")
    merged = _run_pass(_moment_block, plan, blocks, _merge_block_states)

    groups = group_names(t)
    suffixes = ["un"] + (["adj"] if fitted.weights is not None else [])
    for suffix, name in (("un", "sample_weight"), ("adj", "weights")):
        if suffix in suffixes:  # the in-memory check, on one pseudo-unit per group weighted by its positive count
            check_groups_weighted(np.array([merged[g, suffix]["n"] for g in range(t.n_levels)], dtype=float),
                                  np.arange(t.n_levels), name, labels=groups)
    states = {key: value for key, value in merged.items() if key != "inexact"}
    states[ALL, "un"] = functools.reduce(_merge_moments, [states[g, "un"] for g in range(t.n_levels)])
    binary_rows = plan["binary"]

    @functools.cache
    def moment(g, suffix):
        return mean_var(_as_moments(states[(g, "un") if g == ALL else (g, suffix)], plan["shift"]), binary_rows)

    errors = {}

    def distribution(stat, g_1, g_2, suffix, diff):
        ks = np.abs(diff)  # a binary row's KS statistic is its difference in proportions
        error = np.zeros(len(diff))
        if plan["ks_rows"].size:
            hist = [states[(g, "un") if g == ALL else (g, suffix)]["hist"] for g in (g_1, g_2)]
            lower, upper = _ks_bounds(*hist, plan["n_edges"], plan["edges"].shape[1], merged["inexact"])
            ks[plan["ks_rows"]], error[plan["ks_rows"]] = lower, upper - lower
        errors[g_1, g_2, suffix] = error
        return ks

    pairwise = t.focal is None if pairwise is None else pairwise
    options = (stats, sd_denom, binary, continuous, pairwise, display)
    columns = group_statistics(moment, distribution, t, suffixes, options, binary_rows, plan["scale"])
    ess = ess_frame({suffix: [states[g, suffix]["w1"] ** 2 / states[g, suffix]["w2"] for g in range(t.n_levels)]
                     for suffix in suffixes}, [str(g) for g in groups])
    ks_error = None
    if "ks" in stats:
        frames = {name: pd.DataFrame({f"ks_{s}": errors[g_1, g_2, s] for s in suffixes}, index=plan["names"])
                  for name, (g_1, g_2) in _comparisons(t, pairwise).items()}
        ks_error = frames[None] if None in frames else pd.concat(frames, names=["comparison", "variable"])
    return assemble_table(plan["names"], 0, binary_rows, columns, suffixes, stats, t, thresholds, ess,
                          ks_error=ks_error)


def _plan(design_full, full_names, full_flags, numeric, scan, t):
    """What pass 2 needs: the design with the categories present, the rows' 0/1 coding and scales, and the KS
    bin edges of the continuous rows (sketch quantiles and the range, in scaled units)."""
    position = {name: k for k, name in enumerate(full_names)}
    present = tuple(tuple(level for level in levels if scan["absmax"][position[f"{col}_{level}"]] > 0)
                    if kind == "categorical" else None
                    for col, kind, levels in zip(design_full.columns, design_full.kinds, design_full.categories))
    design = CovariateDesign(design_full.columns, design_full.kinds, present, design_full.is_frame)
    matrix, names = design.transform(_empty_frame(design), drop_first=False, impute=False)
    flags = design.indicator_flags(drop_first=False)
    _, names, row_flags = balance_terms(matrix, names, flags, design)
    rows = np.array([position[name] for name in names], dtype=np.int64)
    lo, hi = scan["lo"][rows], scan["hi"][rows]
    two_valued = ~scan["third"][rows] & (hi > lo)
    reference = np.where(scan["zero"][rows], 0.0, lo)
    absmax = np.where(two_valued, 1.0, scan["absmax"][rows])
    scale = pow2_scale(absmax[None, :])
    binary = two_valued | row_flags
    ks_rows = np.flatnonzero(~binary)
    sketch_column = {k: c for c, k in enumerate(numeric)}
    edge_lists = [np.unique(np.r_[lo[j], hi[j], scan["sketch"][0][:, sketch_column[rows[j]]]]) / scale[j]
                  for j in ks_rows]
    shift = np.zeros(len(names))  # binary rows: 0; continuous ones: the sketch's median (a value of the row)
    shift[ks_rows] = [np.median(scan["sketch"][0][:, sketch_column[rows[j]]]) / scale[j] for j in ks_rows]
    width = max((e.size for e in edge_lists), default=1)
    edges = np.array([np.pad(e, (0, width - e.size), mode="edge") for e in edge_lists]).reshape(len(ks_rows), width)
    return {"design": design, "flags": flags, "names": names, "two_valued": two_valued, "reference": reference,
            "scale": scale, "shift": shift, "binary": binary, "ks_rows": ks_rows, "edges": edges,
            "n_edges": np.array([e.size for e in edge_lists], dtype=np.int64),
            "levels": t.levels, "n_groups": t.n_levels}


def _empty_frame(design):
    """An empty block of covariates of ``design``'s columns and dtypes (for the expanded column names)."""
    if design.is_frame:
        return pd.DataFrame({c: pd.Categorical([], categories=levels) if kind == "categorical" else
                             pd.Series([], dtype=bool if kind == "bool" else float)
                             for c, kind, levels in zip(design.columns, design.kinds, design.categories)})
    return np.empty((0, len(design.columns)))


# --------------------------------------------------------------------------------------------------------------
# effective_sample_size and weight_summary
# --------------------------------------------------------------------------------------------------------------
def _weight_stats(w, rows, labels, position, n_top):
    """One group's weights in one block: count, zeros, sum, largest, smallest positive, units of positive weight,
    the sums of the weights and of their squares divided by the power of two ``scale`` near the largest (so that
    no square overflows), and the ``n_top`` largest with their labels and (block, row) positions (``rows``: the
    units' rows in the block)."""
    scale = pow2_scale(w, axis=None)
    ws = w / scale
    top = np.argsort(-w, kind="stable")[:n_top]
    return {"n": w.size, "zeros": int(np.sum(w == 0)), "sum": w.sum(), "max": np.max(w, initial=0.0),
            "min_pos": np.min(w[w > 0], initial=np.inf), "n_pos": int(np.sum(w > 0)), "scale": float(scale),
            "s1": ws.sum(), "s2": ws @ ws,
            "top": {"w": w[top], "block": np.full(top.size, position), "row": rows[top],
                    "labels": None if labels is None else [labels[i] for i in top]}}


def _merge_weight_stats(a, b, n_top):
    scale = max(a["scale"], b["scale"])
    f_a, f_b = a["scale"] / scale, b["scale"] / scale  # powers of two: exact rescaling
    top = {key: np.concatenate([a["top"][key], b["top"][key]]) for key in ("w", "block", "row")}
    order = np.lexsort((top["row"], top["block"], -top["w"]))[:n_top]  # largest first, ties in row order (R)
    top = {key: values[order] for key, values in top.items()}
    labels = None if a["top"]["labels"] is None else a["top"]["labels"] + b["top"]["labels"]
    top["labels"] = None if labels is None else [labels[i] for i in order]
    return {"n": a["n"] + b["n"], "zeros": a["zeros"] + b["zeros"], "sum": a["sum"] + b["sum"],
            "max": max(a["max"], b["max"]), "min_pos": min(a["min_pos"], b["min_pos"]),
            "n_pos": a["n_pos"] + b["n_pos"], "scale": scale, "s1": a["s1"] * f_a + b["s1"] * f_b,
            "s2": a["s2"] * f_a**2 + b["s2"] * f_b**2,
            "top": top}


def _weight_block(n_top, position, w, t):
    """Pass 1 of the weight summaries on one block: checks, treatment level counts, and :func:`_weight_stats` of
    every unit (``"pooled"``) and per treatment value (``"groups"``; None past MAX_LEVELS values)."""
    index = w.index if isinstance(w, pd.Series) else None
    t_labels = t.index if isinstance(t, pd.Series) else None
    w = _values(w, "weights")
    t = _values(t, "treatment", index, reference="weights")
    check = _weight_check(w)
    w = w.astype(np.float64)
    labels = t_labels if t_labels is not None else index
    state = {"lengths": {position: w.size}, "check": check, "levels": None, "t_missing": 0, "groups": None}
    if check[0] or check[1]:
        return state  # reported after the pass
    state["pooled"] = _weight_stats(w, np.arange(w.size), labels, position, n_top)
    if t is not None:
        if t.shape[0] != w.shape[0]:
            raise ValueError(f"treatment has a block of {t.shape[0]} rows where weights has {w.shape[0]}; give "
                             "them the same blocks.")
        state["levels"], state["t_missing"] = _level_counts(t)
        if state["levels"] is not None:
            keys = pd.Series(t).to_numpy()
            state["groups"] = {key: _weight_stats(w[keys == key], np.flatnonzero(keys == key),
                                                  None if labels is None else labels[keys == key], position, n_top)
                               for key in state["levels"]}
    return state


def _merge_weight_blocks(a, b, n_top):
    out = {"lengths": {**a["lengths"], **b["lengths"]}, "check": _merge_weight_check(a["check"], b["check"]),
           "levels": _merge_counts(a["levels"], b["levels"]), "t_missing": a["t_missing"] + b["t_missing"]}
    if "pooled" in a and "pooled" in b:
        out["pooled"] = _merge_weight_stats(a["pooled"], b["pooled"], n_top)
    if out["levels"] is not None and a["groups"] is not None and b["groups"] is not None:
        groups = dict(a["groups"])
        for key, stats in b["groups"].items():
            groups[key] = _merge_weight_stats(groups[key], stats, n_top) if key in groups else stats
        out["groups"] = groups
    else:
        out["groups"] = None
    return out


def _group_weight_stats(weights, treatment, treated, treatment_type, n_top):
    """Pass 1 of the weight summaries, checked as :func:`._weights._weights_by_group` checks data in memory:
    ``(stats per group, group names, levels, the pass's state, weights, treatment)``; levels None: one group."""
    fitted = resolve_weights(weights)
    weights = fitted.weights
    blocks = _aligned_blocks("weights", weights, {"treatment": treatment})
    state = _run_pass(_weight_block, n_top, blocks, functools.partial(_merge_weight_blocks, n_top=n_top))
    _raise_weight_problems("weights", state["check"])
    if treatment is None:
        if not state["pooled"]["n_pos"]:
            raise ValueError("weights is zero for every unit.")
        return [state["pooled"]], None, None, state, weights, treatment
    t = _resolve_treatment(state["levels"], state["t_missing"], _treatment_dtype(treatment),
                           inherit("treated", treated, fitted.treated), inherit_treatment_type(treatment_type, fitted),
                           allow_continuous=True)
    if t is None or t.kind == "continuous":  # one group: the whole sample
        stats, groups, levels = [state["pooled"]], ["all"], None
    else:
        stats, groups, levels = [state["groups"][level] for level in t.levels], group_names(t), t.levels
    check_groups_weighted(np.array([s["n_pos"] for s in stats], dtype=float), np.arange(len(stats)),
                          labels=groups)
    return stats, groups, levels, state, weights, treatment


def dask_effective_sample_size(weights, treatment=None, treated=None, treatment_type=None):
    """:func:`balance.diagnostics.effective_sample_size` of dask weights (and treatment): one pass."""
    stats, groups, *_ = _group_weight_stats(weights, treatment, treated, treatment_type, 0)
    ess = [s["s1"] ** 2 / s["s2"] for s in stats]
    return ess[0] if groups is None else pd.Series(ess, index=groups)


def _spread_block(plan, position, w, t):
    """Pass 2 of :func:`dask_weight_summary` on one block: per group, the sums of squared and absolute
    deviations of the scaled weights from their mean and of v log v over the positive weights (v: a weight over
    the mean positive weight)."""
    w = _values(w, "weights").astype(np.float64)
    codes = _codes(_values(t, "treatment") if t is not None else np.zeros(w.size), plan["levels"])
    out = []
    for g, (scale, mean_s, mean_pos_s) in enumerate(plan["groups"]):
        ws = w[codes == g] / scale
        v = ws[ws > 0] / mean_pos_s
        out.append(np.array([np.sum((ws - mean_s) ** 2), np.sum(np.abs(ws - mean_s)), np.sum(v * np.log(v))]))
    return np.array(out)


def dask_weight_summary(weights, treatment, treated=None, treatment_type=None, n_top=5):
    """:func:`balance.diagnostics.weight_summary` of dask weights and treatment: two passes (the deviations need
    the means); the formulas are those of the in-memory ``_group_stats``."""
    stats, groups, levels, state, weights, treatment = _group_weight_stats(weights, treatment, treated,
                                                                         treatment_type, n_top)
    plan = {"levels": levels, "groups": [(s["scale"], s["s1"] / s["n"], s["s1"] / s["n_pos"]) for s in stats]}
    blocks = _aligned_blocks("weights", weights, {"treatment": treatment})
    spread = _run_pass(_spread_block, plan, blocks, np.add)
    table, top = {}, {}
    offsets = np.cumsum([0] + [state["lengths"][i] for i in range(len(state["lengths"]))])
    labelled = next((getattr(v, "_meta", None) for v in (treatment, weights)
                     if isinstance(getattr(v, "_meta", None), (pd.Series, pd.DataFrame))), None)
    for group, s, (squares, absolute, entropy) in zip(groups, stats, spread):
        mean_s = s["s1"] / s["n"]
        table[group] = {"n": float(s["n"]), "min": s["min_pos"], "max": s["max"], "sum": s["sum"],
                        "mean": s["sum"] / s["n"], "cv": np.sqrt(squares / (s["n"] - 1)) / mean_s if s["n"] > 1
                        else np.nan, "scaled_mad": absolute / s["n"] / mean_s, "neg_entropy": entropy / s["n_pos"],
                        "n_zeros": float(s["zeros"]), "ess": s["s1"] ** 2 / s["s2"]}
        labels = s["top"]["labels"]
        top[group] = pd.Series(s["top"]["w"], index=pd.Index(labels, name=labelled.index.name)
                               if labels is not None else offsets[s["top"]["block"]] + s["top"]["row"])
    return WeightSummary(table=pd.DataFrame(table), top=top)
