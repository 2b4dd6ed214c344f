"""Bundled real data sets and simulation designs for causal weighting.

Loaders read the bundled CSV files (never downloaded) and return a :class:`sklearn.utils.Bunch` with ``frame``,
``X``, ``treatment``, ``y``, ``DESCR``, ``feature_names``, ``treatment_name`` and ``target_name``; the generators
return the same keys plus the true effects of their design. Provenance and licences of the files are in the
``README.md`` next to them and in each loader's ``DESCR``.
"""

from ._generators import make_kang_schafer, make_synthetic
from ._loaders import load_ihdp_covariates, load_lalonde, load_nhefs

__all__ = [
    "load_ihdp_covariates",
    "load_lalonde",
    "load_nhefs",
    "make_kang_schafer",
    "make_synthetic",
]
