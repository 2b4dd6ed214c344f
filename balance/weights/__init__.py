"""Weighting estimators: one private module per family, re-exported here."""

from ._estimands import weights_from_propensity
from ._propensity import PropensityWeights
from ._trim import trim_weights

__all__ = ["PropensityWeights", "trim_weights", "weights_from_propensity"]
