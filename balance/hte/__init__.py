"""Heterogeneous treatment effects: weighted pseudo-outcome regression, meta-learners and front-door learners.

:class:`PseudoOutcomeLearner` regresses a cross-fitted pseudo-outcome (DR, U, Cov, IPW, plug-in) on X with
inverse-variance or other weights (Fisher 2024); the R-, DR-, IVW-DR-, U-, Cov- and IVW-Cov-learners are presets.
The front-door learners (Jung 2025) estimate τ(c) when an unobserved confounder of treatment and outcome is bypassed
by a mediator.

The learners run no iterative solver of their own (no ``converged_`` or ``n_iter_``): their nuisance and final models
are scikit-learn estimators, whose own ConvergenceWarnings are neither caught nor filtered here.
"""

from ._frontdoor import FrontDoorDRLearner, FrontDoorPluginLearner
from ._frontdoor_r import FrontDoorRLearner
from ._learners import (CovLearner, DRLearner, IVWCovLearner, IVWDRLearner, PseudoOutcomeLearner, RLearner,
                        ULearner)
from ._meta import SLearner, TLearner
from ._simulate import make_front_door, make_hte_setup, make_ihdp_surface

__all__ = [
    "CovLearner",
    "DRLearner",
    "FrontDoorDRLearner",
    "FrontDoorPluginLearner",
    "FrontDoorRLearner",
    "IVWCovLearner",
    "IVWDRLearner",
    "PseudoOutcomeLearner",
    "RLearner",
    "SLearner",
    "TLearner",
    "ULearner",
    "make_front_door",
    "make_hte_setup",
    "make_ihdp_surface",
]
