"""Effects within subgroups weighted separately (:class:`~balance.weights.SubgroupWeights`), and their differences.

The subgroups share no units, so their estimating equations (weight model and outcome model) occupy separate
blocks of a block-diagonal bread and meat: the stacked M-estimator of all subgroups is the set of separate
per-subgroup estimators, and their estimates are independent. A difference of two subgroups' effects therefore has
variance v_g + v_h, and equality across G subgroups is tested by the Wald statistic on G − 1 degrees of freedom.
With clusters the independence needs every cluster inside one subgroup (checked).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone

from .._validation import take_rows


def subgroup_effects(effect, subgroups, X, treatment, y, sample_weight=None, cluster=None, alpha=0.05):
    """Refit ``effect`` (its settings, the inner weighter) in every subgroup of a fitted SubgroupWeights.

    Returns
    -------
    effects : DataFrame indexed by (subgroup, contrast): estimate, std_err, conf_low, conf_high, p_value
        (each subgroup's ``contrasts_``).
    differences : DataFrame indexed by (contrast, "h - g"): the difference of two subgroups' effects (on the
        inference scale: a ratio's log), its std_err, conf_low, conf_high, p_value.
    test : DataFrame indexed by contrast: the Wald statistic of equal effects in all subgroups, df, p_value.
    fits : dict of subgroup -> fitted WeightedEffect
    """
    covariates, labels = subgroups._split(X)
    if cluster is not None:
        _check_clusters_nested(np.asarray(cluster), labels)
    fits = {}
    for level in subgroups.subgroups_:
        rows = np.flatnonzero(labels == level)
        inner = clone(effect).set_params(weighter=subgroups.weighter)
        fits[level] = inner.fit(take_rows(covariates, rows), take_rows(treatment, rows), take_rows(y, rows),
                                sample_weight=None if sample_weight is None else take_rows(sample_weight, rows),
                                cluster=None if cluster is None else take_rows(cluster, rows))
    effects = pd.concat({level: fit.contrasts_ for level, fit in fits.items()}, names=["subgroup", "contrast"])
    log_scale = effect.scale != "difference"
    z = stats.norm.ppf(1 - alpha / 2)
    diff_rows, test_rows = {}, {}
    for contrast in next(iter(fits.values())).contrasts_.index:
        theta = np.array([fit.contrasts_.loc[contrast, "estimate"] for fit in fits.values()])
        theta = np.log(theta) if log_scale else theta
        var = np.array([fit.contrasts_.loc[contrast, "std_err"] for fit in fits.values()]) ** 2
        levels = list(fits)
        for (i, g), (j, h) in combinations(enumerate(levels), 2):
            estimate, se = theta[j] - theta[i], np.sqrt(var[i] + var[j])
            diff_rows[(contrast, f"{h} - {g}")] = {
                "estimate": estimate, "std_err": se, "conf_low": estimate - z * se, "conf_high": estimate + z * se,
                "p_value": 2 * stats.norm.sf(abs(estimate) / se)}
        contrast_matrix = np.hstack([-np.ones((len(levels) - 1, 1)), np.eye(len(levels) - 1)])
        d = contrast_matrix @ theta
        statistic = float(d @ np.linalg.solve(contrast_matrix @ np.diag(var) @ contrast_matrix.T, d))
        test_rows[contrast] = {"statistic": statistic, "df": len(levels) - 1,
                               "p_value": float(stats.chi2.sf(statistic, len(levels) - 1))}
    differences = pd.DataFrame.from_dict(diff_rows, orient="index")
    differences.index = pd.MultiIndex.from_tuples(differences.index, names=["contrast", "difference"])
    test = pd.DataFrame.from_dict(test_rows, orient="index").rename_axis("contrast")
    return effects, differences, test, fits


def _check_clusters_nested(cluster, labels):
    spans = pd.DataFrame({"cluster": cluster, "subgroup": labels}).groupby("cluster")["subgroup"].nunique()
    if (spans > 1).any():
        raise ValueError(f"{int((spans > 1).sum())} cluster(s) contain units of several subgroups (e.g. cluster "
                         f"{spans.index[spans > 1][0]!r}); the subgroup effects are then not independent and "
                         "their difference's SE would be wrong. Use subgroups that nest the clusters.")
