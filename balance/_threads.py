"""Thread control: the one home of numba's thread count and of the BLAS / OpenMP thread-pool limits
(threadpoolctl) that the kernels and the cross-fitting workers set for a block of work and restore after it.

numba and threadpoolctl are imported when first used, so that ``import balance`` does not load them.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager


@contextmanager
def numba_threads(count):
    """Run the block on ``count`` of numba's threads (yielded), restoring the previous count on exit.

    Examples
    --------
    >>> import numba
    >>> before = numba.get_num_threads()
    >>> with numba_threads(1) as count:
    ...     numba.get_num_threads(), count
    (1, 1)
    >>> numba.get_num_threads() == before
    True
    """
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield count
    finally:
        numba.set_num_threads(previous)


def numba_max_threads():
    """numba's thread count ceiling (``NUMBA_NUM_THREADS``, the cores unless set)."""
    import numba

    return numba.config.NUMBA_NUM_THREADS


def threadpool_controller():
    """A new threadpoolctl controller: it knows the thread-pool libraries loaded when it is built (use it where
    a library may have been loaded since, e.g. a model's OpenMP runtime)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@functools.cache
def blas_controller():
    """One threadpoolctl controller for the process, for BLAS limits: building one scans every loaded library
    (about 4 ms, most of a small problem's solve when paid on each product, e.g. 26x the APG time at 120 units),
    and numpy's BLAS is loaded before any of our code runs."""
    return threadpool_controller()
