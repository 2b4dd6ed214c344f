"""Effect estimation on weighted data, with variances that account for estimating the weights."""

from ._dose_response import WeightedDoseResponse
from ._imputed_effect import ImputedEffect
from ._pooling import rubin_pool
from ._results import EffectResults
from ._sandwich import sandwich_cov
from ._weighted_effect import WeightedEffect
from ._wls import weighted_least_squares

__all__ = ["EffectResults", "ImputedEffect", "WeightedDoseResponse", "WeightedEffect", "rubin_pool", "sandwich_cov",
           "weighted_least_squares"]
