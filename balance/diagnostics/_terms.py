"""The rows of a balance table: covariates as cobalt 4.6.1 shows them, with its optional squares and products.

cobalt's ``bal.tab`` keeps every level of a factor with three or more levels, one row for a two-level factor (its
second level, ``splitfactor(drop.first = "if2")``), and with ``int = TRUE`` / ``poly = p`` adds powers of the
continuous covariates (``age²``) and the products of every pair of covariates from different variables, each
factor and binary variable split into one 0/1 column per level (``age * married_0``, ``age * married_1``).
"""

from __future__ import annotations

import numpy as np

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _origins(design):
    """Per column of ``design.transform(drop_first=False)``: ``(source column position, role, level)`` with role
    ``"numeric"``, ``"bool"``, ``"level"`` (a factor's dummy for ``level``) or ``"na"`` (a missingness indicator)."""
    out = []
    fills = design.fills or (None,) * len(design.columns)
    for j, (kind, levels, fill) in enumerate(zip(design.kinds, design.categories, fills)):
        out += [(j, "level", level) for level in levels] if kind == "categorical" else [(j, kind, None)]
        if fill is not None:
            out.append((j, "na", None))
    return out


def _observed_values(x):
    return np.unique(x[~np.isnan(x)])


def _r_label(value):
    """A value as R prints it in a level name: ``0``, ``1``, ``2.5``."""
    return np.format_float_positional(value, trim="-")


def _split(x, name, role):
    """A binary variable as one 0/1 column per value, named as cobalt's ``splitfactor`` names them (``x_0``,
    ``x_1``; a boolean ``x_FALSE``, ``x_TRUE``), or the column itself when it is not binary."""
    values = _observed_values(x)
    if role == "bool":
        labels = ["FALSE", "TRUE"]
    elif values.size == 2:
        labels = [_r_label(v) for v in values]
    else:
        return [(name, x)]
    missing = np.isnan(x)
    return [(f"{name}_{label}", np.where(missing, np.nan, (x == v).astype(np.float64)))
            for v, label in zip(values if role != "bool" else (0.0, 1.0), labels)]


def balance_terms(matrix, names, flags, design, *, interactions=False, poly=1):
    """The rows of a balance table from the expanded covariates (``design.transform(drop_first=False)``).

    Returns ``(matrix, names, flags)``: a two-level factor reduced to its second level, then (``poly`` ≥ 2) the
    powers 2..poly of every non-binary numeric covariate, named with a superscript (``age²``), then
    (``interactions``) the product of every pair of columns from different variables, binary variables split
    into one column per value, named ``a * b``. Missingness indicators enter neither. Powers and products that
    are constant over the observed units are dropped (cobalt does). ``flags`` marks the level dummies; the new
    columns are flagged False (a product of two dummies is still recognised as binary from its values).
    """
    origins = _origins(design)
    two_level = {j for j, role, _ in origins if role == "level" and len(design.categories[j]) == 2}
    keep = np.array([not (role == "level" and j in two_level and level == design.categories[j][0])
                     for j, role, level in origins], dtype=bool)
    extra = []
    if poly > 1:
        continuous = [k for k, (_, role, _) in enumerate(origins)
                      if role == "numeric" and _observed_values(matrix[:, k]).size > 2]
        extra += [(f"{names[k]}{str(p).translate(_SUPERSCRIPTS)}", matrix[:, k] ** p)
                  for p in range(2, poly + 1) for k in continuous]
    if interactions:
        split = [(j, column) for k, (j, role, _) in enumerate(origins) if role != "na"
                 for column in (_split(matrix[:, k], names[k], role) if role != "level" else [(names[k], matrix[:, k])])]
        extra += [(f"{name_a} * {name_b}", x_a * x_b)
                  for a, (j_a, (name_a, x_a)) in enumerate(split)
                  for j_b, (name_b, x_b) in split[a + 1:] if j_a != j_b]
    extra = [(name, x) for name, x in extra if _observed_values(x).size > 1]
    out = np.column_stack([matrix[:, keep]] + [x[:, None] for _, x in extra])
    out_names = [name for name, k in zip(names, keep) if k] + [name for name, _ in extra]
    return out, out_names, np.concatenate([flags[keep], np.zeros(len(extra), dtype=bool)])
