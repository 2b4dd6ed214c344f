"""Treatments over time: marginal structural model weights, censoring weights, balance by time point and effects of
treatment histories (WeightIt's ``weightitMSM``, cobalt's longitudinal ``bal.tab``)."""

from ._balance import MSMBalance, balance_table_msm
from ._censoring import CensoringWeights
from ._data import to_wide
from ._effect import MSMEffect
from ._simulate import simulate_msm
from ._weights import MSMWeights

__all__ = ["CensoringWeights", "MSMBalance", "MSMEffect", "MSMWeights", "balance_table_msm", "simulate_msm", "to_wide"]
