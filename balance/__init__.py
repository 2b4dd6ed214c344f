"""causal-balance: causal-inference weighting for observational data, scikit-learn native.

Weighting estimators learn one weight per unit (``fit(X, treatment).weights_``); diagnostics measure the balance
they achieve; effect estimators (:class:`WeightedEffect`) report effects with standard errors that account for estimating the
weights. Submodules: :mod:`balance.datasets` (bundled data and simulation designs).
"""

from . import datasets
from . import hte
from ._base import BaseWeighter, MParts
from .effects import EffectResults, WeightedEffect
from .diagnostics import WeightSummary, balance_table, effective_sample_size, weight_summary
from .weights import PropensityWeights, trim_weights, weights_from_propensity
from .weights import CBPS, EntropyBalance, InverseProbabilityTilting
from .weights import UniformTransformer, UniformTransformerWeights
from .weights import StableWeights, smallest_feasible_tols
from .weights import EnergyBalance
from .weights import CBIPM

__version__ = "0.1.0.dev0"

__all__ = [
    "BaseWeighter",
    "CBIPM",
    "CBPS",
    "EntropyBalance",
    "InverseProbabilityTilting",
    "EffectResults",
    "EnergyBalance",
    "MParts",
    "PropensityWeights",
    "UniformTransformer",
    "UniformTransformerWeights",
    "StableWeights",
    "WeightedEffect",
    "balance_table",
    "datasets",
    "effective_sample_size",
    "hte",
    "WeightSummary",
    "trim_weights",
    "smallest_feasible_tols",
    "weight_summary",
    "weights_from_propensity",
]
