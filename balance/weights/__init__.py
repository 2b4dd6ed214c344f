"""Weighting estimators: one private module per family, re-exported here."""

from ._cbipm import CBIPM
from ._cbps import CBPS
from ._energy import EnergyBalance
from ._entropy import EntropyBalance
from ._estimands import weights_from_propensity
from ._ipt import InverseProbabilityTilting
from ._propensity import PropensityWeights
from ._stable import StableWeights, smallest_feasible_tols
from ._subgroup import SubgroupWeights
from ._trim import trim_weights
from ._uniform import UniformTransformerWeights
from ._uniform_transformer import UniformTransformer

__all__ = [
    "CBIPM",
    "CBPS",
    "EnergyBalance",
    "EntropyBalance",
    "InverseProbabilityTilting",
    "PropensityWeights",
    "StableWeights",
    "SubgroupWeights",
    "UniformTransformer",
    "UniformTransformerWeights",
    "smallest_feasible_tols",
    "trim_weights",
    "weights_from_propensity",
]
