"""Optional dask support: recognising dask collections without importing dask, and importing it with a clear error.

Dask is an optional extra (``pip install "causal-balance[dask]"``); importing the package never imports it. Code that
accepts dask input asks :func:`is_dask_collection` first (duck typing on the dask collection protocol, so a plain
numpy or pandas input never pays for a dask import) and calls :func:`import_dask` only on the dask path.
"""

from __future__ import annotations

DASK_EXTRA = 'pip install "causal-balance[dask]"'


def is_dask_collection(obj) -> bool:
    """True for a dask array, DataFrame, Series (anything that implements the dask collection protocol).

    Examples
    --------
    >>> import numpy as np
    >>> is_dask_collection(np.zeros(3))
    False
    """
    return callable(getattr(obj, "__dask_graph__", None)) and callable(getattr(obj, "__dask_keys__", None))


def any_dask(*objs) -> bool:
    """True when any of ``objs`` is a dask collection (None entries are skipped)."""
    return any(obj is not None and is_dask_collection(obj) for obj in objs)


def import_dask():
    """Import and return ``dask``, raising an ImportError that names the extra to install when it is missing."""
    try:
        import dask
        import dask.array  # noqa: F401  (the submodules the dask paths use)
        import dask.dataframe  # noqa: F401
    except ImportError as exc:  # pragma: no cover - dask is installed in the test environment
        raise ImportError(f"dask input needs the optional dependency dask: {DASK_EXTRA}") from exc
    return dask
