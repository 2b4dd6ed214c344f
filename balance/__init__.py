"""causal-balance: causal-inference weighting for observational data, scikit-learn native.

Weighting estimators learn one weight per unit (``fit(X, treatment).weights_``); diagnostics measure the balance
they achieve; :class:`WeightedEffect` estimates effects with standard errors that account for estimating the
weights. Submodules: :mod:`balance.datasets` (bundled data and simulation designs), :mod:`balance.hte`
(heterogeneous effects), :mod:`balance.msm` (treatments over time: marginal structural models),
:mod:`balance.sensitivity` (sensitivity to unmeasured confounding) and :mod:`balance.plot` (matplotlib, imported on
demand).
"""

from . import datasets, hte, msm, sensitivity
from ._base import BaseWeighter, MParts
from ._exceptions import InfeasibleBalanceError
from ._search import TuningFailureWarning, tune
from .diagnostics import WeightSummary, balance_table, effective_sample_size, weight_summary
from .diagnostics._weights import ExtremeWeightsWarning
from .effects import EffectResults, ImputedEffect, WeightedDoseResponse, WeightedEffect
from .weights import (
    CBIPM,
    CBPS,
    EnergyBalance,
    EntropyBalance,
    InverseProbabilityTilting,
    PropensityWeights,
    StableWeights,
    SubgroupWeights,
    UniformTransformer,
    UniformTransformerWeights,
    smallest_feasible_tols,
    trim_weights,
    weights_from_propensity,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "BaseWeighter",
    "CBIPM",
    "CBPS",
    "EffectResults",
    "EnergyBalance",
    "EntropyBalance",
    "ExtremeWeightsWarning",
    "ImputedEffect",
    "InfeasibleBalanceError",
    "InverseProbabilityTilting",
    "MParts",
    "PropensityWeights",
    "StableWeights",
    "SubgroupWeights",
    "TuningFailureWarning",
    "UniformTransformer",
    "UniformTransformerWeights",
    "WeightSummary",
    "WeightedDoseResponse",
    "WeightedEffect",
    "balance_table",
    "datasets",
    "effective_sample_size",
    "hte",
    "msm",
    "sensitivity",
    "smallest_feasible_tols",
    "trim_weights",
    "tune",
    "weight_summary",
    "weights_from_propensity",
]
