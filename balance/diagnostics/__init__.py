"""Balance diagnostics: covariate balance tables, effective sample size and weight summaries.

The statistics follow R cobalt 4.6.1 (``bal.tab``) and WeightIt 1.5.1 (``summary.weightit``, ``ESS``), so that
results can be compared with them number for number. Diagnostics return DataFrames and never plot.
"""

from ._balance import balance_table, max_over_comparisons
from ._imputed import balance_across_imputations
from ._weights import WeightSummary, effective_sample_size, weight_summary

__all__ = ["WeightSummary", "balance_across_imputations", "balance_table", "effective_sample_size", "max_over_comparisons",
           "weight_summary"]
