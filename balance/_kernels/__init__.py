"""Numba kernels, one module per maths topic; imported lazily by the estimators that need them."""
