"""Plots of balance, weights, overlap and effects (matplotlib, the optional extra ``causal-balance[plot]``).

Every plot is a plain function that takes the data (or a fitted estimator), draws on ``ax`` (a new figure when
``ax=None``) and returns that matplotlib Axes; none calls ``show()``. Plain functions rather than scikit-learn's
Display objects: the numbers behind each plot are already public (:func:`balance.balance_table`,
:func:`balance.effective_sample_size`, a weighter's ``weights_`` and ``ps_``), so a Display would only repeat them.

matplotlib is imported when a plot is drawn, never at ``import balance`` or ``import balance.plot``.

Binary and multi-category treatments: a multi-category treatment's levels are each drawn in their own colour
(``balance_plot``), get a panel each (``weight_plot``, ``ps_overlap_plot``, which then return an array of Axes),
and the love plot shows the largest imbalance over the pairs of levels, or one comparison on request.

- :func:`love_plot`: a balance statistic per covariate, unadjusted and for one or several weightings (cobalt's
  ``love.plot``).
- :func:`balance_plot`: one covariate's weighted distribution per group (cobalt's ``bal.plot``).
- :func:`weight_plot`: the weights per group with their effective sample sizes (WeightIt).
- :func:`ps_overlap_plot`: mirrored propensity-score distributions (overlap).
- :func:`cate_plot`: conditional effects against a covariate, from arrays or a fitted learner.
- :func:`dose_response_plot`: the average dose-response function of a continuous treatment with its band.
- :func:`ipm_history_plot`: the CBIPM training curve.
- :func:`msm_love_plot`, :func:`msm_weight_plot`: a treatment history's love plot and weights, one panel per time
  point.
- :func:`sensitivity_plot`: marginal-sensitivity bounds of an effect against Λ (:mod:`balance.sensitivity`).
- :func:`ovb_contour_plot`: sensemakr's omitted-variable-bias contours with benchmarks.
"""

from ._distribution import balance_plot
from ._effects import cate_plot, dose_response_plot, ipm_history_plot
from ._love import love_plot
from ._msm import msm_love_plot, msm_weight_plot
from ._sensitivity import ovb_contour_plot, sensitivity_plot
from ._weights import ps_overlap_plot, weight_plot

__all__ = ["balance_plot", "cate_plot", "dose_response_plot", "ipm_history_plot", "love_plot", "msm_love_plot",
           "msm_weight_plot", "ovb_contour_plot", "ps_overlap_plot", "sensitivity_plot", "weight_plot"]
