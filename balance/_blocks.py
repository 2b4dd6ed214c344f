"""Row blocks: the estimating equations evaluated block by block, in memory (one block) and on dask (one per partition).

Design
------
Every quantity a Newton step or a sandwich needs is a sum over rows of per-row pieces, given a few global
constants (the centre and scale that standardise the design, the treatment's levels, the parameters of the current
iteration): Σψ, Σ∂ψ/∂θ, Σψψᵀ of the stacked system, Σ (∂ψ_out/∂w)ᵀ ∂w/∂θ, cluster sums. So the package evaluates
them with *block evaluators*: plain functions ``f(block, *constants)`` returning a dict of per-block sums.

- In memory the data are a single block and the evaluator is called once on all of it: the in-memory code *is* the
  block code, and its results are those of the in-memory path bit for bit.
- On dask input (:class:`DaskBlocks`), the evaluator is mapped over the partitions with ``dask.delayed`` and the
  per-partition results are combined by a binary tree of :func:`combine` (dask's scheduler, local or distributed,
  does the work; nothing here schedules). Each reduction is one pass over the data; the partitions are read afresh
  in every pass, so no more than a few partitions need to be in memory at once.

How per-block results combine (:func:`combine`): numpy arrays and numbers are summed; keys starting with ``min_``
or ``max_`` take the minimum or maximum; keys starting with ``set_`` take the union (a frozenset, e.g. the values
seen in the treatment); keys starting with ``cat_`` are concatenated (a few gathered values); pandas objects
indexed by a key (cluster sums) are summed label by label. An evaluator therefore returns sums (and minima, maxima,
sets) and the caller divides, solves or inverts once, in memory.

Per-row outputs (the weights) come from :meth:`DaskBlocks.per_row`: a lazy dask Series with the partitions and
divisions of a dask DataFrame ``X`` (a dask array for an array ``X``), computed only when asked for.

Every pass is counted in ``DaskBlocks.n_passes`` so that benchmarks can report the passes over the data.

Where the pieces live
---------------------
- The seam: a weighter with a dask path dispatches in ``fit`` (``any_dask``) to ``_fit_dask``, which checks the
  inputs with :meth:`BaseWeighter._validate_dask_data <balance.BaseWeighter>` (a
  :class:`~balance._dask_data.DaskFitData`: design, levels, constants by reduction; ``per_block`` turns a function
  of the in-memory arrays ``(matrix, a, sw)`` into a block evaluator of the raw partitions), runs the in-memory
  solver with a block-reduced evaluator (``newton_logistic`` with ``logistic_sums``; ``solve_standardised_tilt``
  with ``tilt_sums``), and sets lazy ``weights_`` from ``_block_weights`` (and ``ps_`` from ``_block_ps``), the
  in-memory formulas of one block. ``_block_m_parts(matrix, a, sw)`` gives the :class:`~balance.MParts` of one
  block: the in-memory ``_m_parts`` code with the fitted global constants.
- The effect: :mod:`balance.effects._dask_effect` evaluates the in-memory outcome equations at given estimates
  (``at=``) and the stacked sandwich's sums (:func:`~balance.effects._sandwich.stacked_sums`) block by block.
- Methods that need all the data (pairs of units, a quadratic programme, a scikit-learn model) refuse dask input
  with a one-line reason (``BaseWeighter._dask_refusal``).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from ._dask import import_dask, is_dask_collection


def combine(left, right):
    """Combine two per-block results (dicts of sums, minima, maxima, sets; see the module notes)."""
    out = {}
    for key, value in left.items():
        other = right[key]
        if key.startswith("min_"):
            out[key] = np.minimum(value, other)
        elif key.startswith("max_"):
            out[key] = np.maximum(value, other)
        elif key.startswith("set_"):
            out[key] = value | other
        elif key.startswith("cat_"):
            out[key] = np.concatenate([value, other])
        elif isinstance(value, (pd.Series, pd.DataFrame)):
            out[key] = value.add(other, fill_value=0.0)
        else:
            out[key] = value + other
    return out


def _run_block(func, names, numbered, number, raw, *args):
    """One block's task: check that its inputs are aligned, then evaluate ``func`` on them."""
    _check_aligned(raw, names)
    return func(number, *raw, *args) if numbered else func(*raw, *args)


def _as_series(values, X, name):
    return pd.Series(values, index=X.index, name=name)


def _row_count(part):
    return 0 if part is None else len(part)


def _check_aligned(raw, names):
    """Every input of a block has X's rows: as many, and, for pandas inputs beside a pandas X, the same index labels
    in the same order (rows are paired by position, so a reordered companion would otherwise be paired wrongly
    when the divisions are unknown); misaligned inputs are refused by name."""
    lengths = {name: _row_count(part) for name, part in zip(names, raw) if part is not None}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise ValueError(f"dask inputs are not aligned: one partition has {shown} rows; give every input the "
                         "partitions of X (e.g. take treatment, y and sample_weight as columns of the same dask "
                         "DataFrame, or rechunk the arrays to X's chunks).")
    x = raw[names.index("X")]
    if not isinstance(x, (pd.DataFrame, pd.Series)):
        return
    for name, part in zip(names, raw):
        if name != "X" and isinstance(part, (pd.DataFrame, pd.Series)) and not part.index.equals(x.index):
            raise ValueError(f"dask inputs are not aligned: {name}'s index differs from X's within a partition (the "
                             "same rows in another order, or other rows); take treatment, y and sample_weight as "
                             "columns of the same dask DataFrame as X, or align them to X's index first.")


class DaskBlocks:
    """Per-row dask inputs (``X`` and its companions) split into aligned blocks, one per partition.

    Parameters
    ----------
    **inputs
        ``X`` (a dask DataFrame or a 2-d dask array) and the per-row companions (``treatment``, ``sample_weight``,
        ``y``, ``cluster``, ...): dask Series or 1-d arrays with X's partitions, or None.

    Attributes
    ----------
    names : tuple of str
        The inputs' names; every block is a tuple of their partitions (None for an input that was None).
    npartitions : int
    n_passes : int
        Reductions (passes over the data) run so far.

    Examples
    --------
    >>> import numpy as np, pandas as pd, dask.dataframe as dd
    >>> frame = pd.DataFrame({"x": np.arange(6.0), "t": [0, 1, 0, 1, 1, 0]})
    >>> ddf = dd.from_pandas(frame, npartitions=3)
    >>> blocks = DaskBlocks(X=ddf[["x"]], treatment=ddf["t"])
    >>> blocks.reduce(lambda X, t: {"n": len(X), "sx": X["x"].sum(), "max_t": t.max()})
    {'n': 6, 'sx': np.float64(15.0), 'max_t': np.int64(1)}
    """

    def __init__(self, **inputs):
        import_dask()
        self.names = tuple(inputs)
        X = inputs["X"]
        self.X = X
        self.frame = hasattr(X, "divisions")
        parts = {}
        for name, value in inputs.items():
            if value is None:
                continue
            if not is_dask_collection(value):
                raise TypeError(f"{name} must be a dask collection with X's partitions when X is one; got "
                                f"{type(value).__name__} (wrap it with dask.dataframe.from_pandas or take it as a "
                                "column of the same dask DataFrame).")
            parts[name] = self._delayed(value, name)
        n_parts = {name: len(p) for name, p in parts.items()}
        if len(set(n_parts.values())) > 1:
            shown = ", ".join(f"{name} {n}" for name, n in n_parts.items())
            raise ValueError(f"dask inputs are not aligned: partitions {shown}; give every input the partitions of X "
                             "(take them as columns of one dask DataFrame, or rechunk the arrays to X's chunks).")
        self._check_divisions(inputs)
        self.npartitions = n_parts["X"]
        self.blocks = [tuple(parts[name][i] if name in parts else None for name in self.names)
                       for i in range(self.npartitions)]
        self.n_passes = 0

    @property
    def dask(self):
        """The dask module (a property, not an attribute, so that the blocks pickle with a fitted estimator)."""
        return import_dask()

    def _delayed(self, value, name):
        # optimize_graph=False keeps the source's task keys: inputs taken from one source (X, treatment and y as
        # columns of one dask DataFrame) then share its read tasks, so a pass reads each partition once, not once per
        # input (an optimised graph fuses the read into each input's own tasks)
        if hasattr(value, "to_delayed") and hasattr(value, "divisions"):
            return list(value.to_delayed(optimize_graph=False))
        if value.ndim == 2:
            return list(value.rechunk({1: -1}).to_delayed(optimize_graph=False)[:, 0])
        if value.ndim == 1:
            return list(value.to_delayed(optimize_graph=False))
        raise ValueError(f"{name} must be one- or two-dimensional; got {value.ndim} dimensions.")

    @staticmethod
    def _check_divisions(inputs):
        known = {name: v.divisions for name, v in inputs.items()
                 if v is not None and hasattr(v, "divisions") and v.known_divisions}
        if len(set(known.values())) > 1:
            raise ValueError(f"dask inputs are not aligned: {' and '.join(known)} have different divisions (index "
                             "ranges of the partitions); take them from one dask DataFrame, or repartition them to "
                             "X's divisions.")

    def _tasks(self, func, args, numbered=False):
        # the tasks carry no more than they need (they are pickled to the workers, and with a fitted estimator)
        run = partial(_run_block, func, self.names, numbered)
        return [self.dask.delayed(run, pure=False)(number, block, *args) for number, block in enumerate(self.blocks)]

    def reduce(self, func, *args):
        """One pass: ``func(*block, *args)`` on every block, combined by a tree of :func:`combine`; computed."""
        delayed = self.dask.delayed
        tasks = self._tasks(func, args)
        while len(tasks) > 1:
            tasks = [delayed(combine, pure=False)(*tasks[i:i + 2]) if i + 1 < len(tasks) else tasks[i]
                     for i in range(0, len(tasks), 2)]
        self.n_passes += 1
        return self.dask.compute(tasks[0])[0]

    def per_row(self, func, *args, name="weights", numbered=False):
        """A lazy per-row output: ``func(*block, *args)`` (an ndarray of the block's rows) on every block;
        ``numbered``: ``func(number, *block, *args)`` with the block's position (e.g. to seed random draws).

        A dask Series on X's index and divisions when X is a dask DataFrame, else a 1-d dask array with X's row
        chunks.
        """
        dask = self.dask
        tasks = self._tasks(func, args, numbered)
        if self.frame:
            series = [dask.delayed(_as_series, pure=False)(task, block[0], name)
                      for task, block in zip(tasks, self.blocks)]
            return dask.dataframe.from_delayed(series, meta=pd.Series(dtype=float, name=name),
                                               divisions=self.X.divisions, verify_meta=False)
        sizes = self.X.chunks[0]
        return dask.array.concatenate([dask.array.from_delayed(task, shape=(size,), dtype=float)
                                       for task, size in zip(tasks, sizes)])


