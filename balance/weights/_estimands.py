"""Weights from a propensity score: the ATE weight times the estimand's tilting function.

For a binary treatment with propensity score e = P(A = 1 | X), Li, Morgan & Zaslavsky (2018) write every estimand
as a tilting function h(e): treated units get h/e, controls h/(1 − e), and the target is E[h τ(X)] / E[h].

=========  ======================  ====================  ======================
estimand   h(e)                    treated weight        control weight
=========  ======================  ====================  ======================
ATE        1                       1/e                   1/(1 − e)
ATT        e                       1                     e/(1 − e)
ATC        1 − e                   (1 − e)/e             1
ATO        e(1 − e)                1 − e                 e
ATM        min(e, 1 − e)           min(e, 1 − e)/e       min(e, 1 − e)/(1 − e)
ATOS       1{α ≤ e ≤ 1 − α}        1{...}/e              1{...}/(1 − e)
=========  ======================  ====================  ======================

These are WeightIt's ``get_w_from_ps`` formulas, unnormalised (WeightIt 1.5.1's ``glm`` scale).

References
----------
Li, F., Morgan, K. L., & Zaslavsky, A. M. (2018). Balancing covariates via propensity score weighting. JASA 113,
390–400.
Crump, R. K., Hotz, V. J., Imbens, G. W., & Mitnik, O. A. (2009). Dealing with limited overlap in estimation of
average treatment effects. Biometrika 96, 187–199.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_estimand, check_treatment


def tilting(e, estimand, alpha=0.0):
    """The tilting function h(e) of ``estimand`` (see the module table)."""
    if estimand == "ATE":
        return np.ones_like(e)
    if estimand == "ATT":
        return e
    if estimand == "ATC":
        return 1.0 - e
    if estimand == "ATO":
        return e * (1.0 - e)
    if estimand == "ATM":
        return np.minimum(e, 1.0 - e)
    if estimand == "ATOS":
        return ((e >= alpha) & (e <= 1.0 - alpha)).astype(float)
    raise ValueError(f"unknown estimand {estimand!r}")


def tilting_derivative(e, estimand, alpha=0.0):
    """dh/de, used for the derivative of the weights in the M-estimation seam (zero where h is flat)."""
    if estimand in ("ATE", "ATOS"):
        return np.zeros_like(e)
    if estimand == "ATT":
        return np.ones_like(e)
    if estimand == "ATC":
        return -np.ones_like(e)
    if estimand == "ATO":
        return 1.0 - 2.0 * e
    if estimand == "ATM":
        return np.where(e < 0.5, 1.0, -1.0)
    raise ValueError(f"unknown estimand {estimand!r}")


def arm_weights(e, a, estimand, alpha=0.0):
    """Unit weights h(e)/e for treated (a = 1) and h(e)/(1 − e) for controls (a = 0)."""
    h = tilting(e, estimand, alpha)
    return np.where(a == 1, h / e, h / (1.0 - e))


def arm_weights_derivative(e, a, estimand, alpha=0.0):
    """dw/de of :func:`arm_weights`: h'/e − h/e² (treated) and h'/(1 − e) + h/(1 − e)² (controls)."""
    h = tilting(e, estimand, alpha)
    dh = tilting_derivative(e, estimand, alpha)
    return np.where(a == 1, dh / e - h / e**2, dh / (1.0 - e) + h / (1.0 - e) ** 2)


def crump_alpha(e, sample_weight=None):
    """The optimal-subset threshold α of Crump et al. (2009) for the ATOS.

    With g = 1/(e(1 − e)): α = 0 when max g ≤ 2 E[g]; otherwise γ solves γ = 2 E[g | g ≤ γ] and
    α = 1/2 − sqrt(1/4 − 1/γ). The solution is found exactly over the sorted g (the right-hand side is a step
    function of γ).
    """
    e = np.asarray(e, dtype=float)
    sw = np.ones_like(e) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    # units with zero sampling weight take no part (their g would otherwise move the max and the brackets)
    e, sw = e[sw > 0], sw[sw > 0]
    g = 1.0 / (e * (1.0 - e))
    if g.max() <= 2.0 * np.average(g, weights=sw):
        return 0.0
    order = np.argsort(g)
    g_sorted, w_sorted = g[order], sw[order]
    # rhs[k] = 2 * weighted mean of the k+1 smallest g; γ = rhs[k] is the fixed point when it falls in
    # [g_(k), g_(k+1)): then {g ≤ γ} is exactly the k+1 smallest units.
    rhs = 2.0 * np.cumsum(w_sorted * g_sorted) / np.cumsum(w_sorted)
    upper = np.append(g_sorted[1:], np.inf)
    fixed = np.flatnonzero((rhs >= g_sorted) & (rhs < upper))
    gamma = rhs[fixed[0]] if fixed.size else rhs[-1]
    return float(0.5 - np.sqrt(max(0.25 - 1.0 / gamma, 0.0)))


def weights_from_propensity(propensity, treatment, estimand="ATE", *, treated=None):
    """Weights for an estimand from given propensity scores (the ATE weight times the tilting function).

    Parameters
    ----------
    propensity : array-like of shape (n_samples,)
        P(treated | X) for every unit, strictly between 0 and 1.
    treatment : array-like of shape (n_samples,)
        Binary treatment (0/1, boolean, or two labels with ``treated`` naming the treated one).
    estimand : {"ATE", "ATT", "ATC", "ATO", "ATM", "ATOS"}, default="ATE"
    treated : scalar, default=None
        The treated level when the treatment is not 0/1 or boolean.

    Returns
    -------
    ndarray of shape (n_samples,)
        Unnormalised weights, on WeightIt's ``glm`` scale (ATT: treated 1, controls e/(1 − e)).

    Notes
    -----
    For the ATOS, α is chosen by Crump et al.'s rule on these scores (:func:`crump_alpha`) and units outside
    [α, 1 − α] get weight 0.

    Examples
    --------
    >>> import numpy as np
    >>> from balance import weights_from_propensity
    >>> weights_from_propensity(np.array([0.2, 0.5, 0.8]), np.array([1, 0, 0]), "ATT")
    array([1., 1., 4.])
    """
    estimand = check_estimand(estimand)
    e = np.asarray(propensity, dtype=float).ravel()
    a = check_treatment(treatment, treated=treated, n_samples=e.shape[0], treatment_type="binary").a
    if not np.all((e > 0) & (e < 1)):
        raise ValueError("propensity scores must lie strictly between 0 and 1.")
    alpha = crump_alpha(e) if estimand == "ATOS" else 0.0
    return arm_weights(e, a, estimand, alpha)
