"""The immutable results of a weighted effect estimate."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

SCALE_LABELS = {"difference": None, "rr": "risk ratio", "or": "odds ratio"}


def _fmt(spec):
    return lambda v: format(v, spec)


# how the printed summary formats each column: six significant digits, z to two decimals, p to three digits
_FORMATTERS = {"estimate": _fmt(".6g"), "std_err": _fmt(".6g"), "statistic": _fmt(".2f"), "p_value": _fmt(".3g"),
               "ci_lower": _fmt(".6g"), "ci_upper": _fmt(".6g")}


def format_summary(table, notes, html=False):
    """The printed form of a summary table: every column (whatever ``display.width``), per-column formats that keep
    a binary effect's table within 80 characters, then one line per note. When a note qualifies the standard
    errors (ratio scales), their column prints as ``std_err*``."""
    formatters = {c: f for c, f in _FORMATTERS.items() if c in table}
    if "std_err" in table and any(note.startswith("std_err*") for note in notes):
        table = table.rename(columns={"std_err": "std_err*"})
        formatters["std_err*"] = formatters.pop("std_err")
    if html:
        return f"{table.to_html(formatters=formatters)}<p>{''.join(f'<br>Note: {note}' for note in notes)}</p>"
    # one line per note, so that a note can be searched for
    return "\n".join([table.to_string(formatters=formatters)] + [f"Note: {note}" for note in notes])


class EffectSummary(pd.DataFrame):
    """A summary table (a pandas DataFrame) that prints whole: every column at any ``display.width``, then its notes.

    pandas' own display cuts a six-column table of long floats at the default width of 80 characters; this one
    prints with :func:`format_summary` (``std_err*`` on ratio scales) followed by one ``Note:`` line per note (the
    variance, ratio scales, extreme weights). Attribute beyond the rows: ``notes`` (tuple of str). Any operation on
    the table (selecting rows or columns, rounding, concatenating) gives a plain DataFrame, so the notes never
    travel into other objects (they are not ``DataFrame.attrs``, which pandas copies and compares).
    """

    _metadata = ["notes"]

    @property
    def _constructor(self):
        return pd.DataFrame  # derived frames are plain DataFrames: only the full summary prints its notes

    @classmethod
    def build(cls, table, notes):
        """The table with its notes."""
        out = cls(table)
        out.notes = tuple(notes)
        return out

    def __repr__(self):
        return format_summary(self, self.notes)

    def _repr_html_(self):
        return format_summary(self, self.notes, html=True)


@dataclass(frozen=True)
class EffectResults:
    """An effect with its two potential-outcome means, their covariance and how it was obtained.

    Attributes
    ----------
    estimand : str
    scale : {"difference", "rr", "or"}
        Effect scale. Ratios are estimated, tested and given intervals on the log scale (delta method), then shown
        exponentiated; their ``std_err`` is that of the log ratio.
    estimate : Series
        The effect (first row, on its natural scale) and the weighted potential-outcome means ``mu1``, ``mu0``; for a
        multi-category treatment every pairwise contrast ("hispan - black", ...) and one mean per level
        (``mu[black]``, ...).
    vcov : DataFrame
        Covariance of the contrasts (log scale for ratios) and the means.
    vcov_type : str
        "asympt", "HC0", "bootstrap" or "fwb".
    vcov_config : dict
        How the variance was computed (Jacobian kind, clusters, replicates, conventions).
    n_obs : int
    ess : Series
        Kish effective sample size per group.
    outcome_model : str
    method : str
        The weighting estimator.
    accounts_for_weight_estimation : bool
        Whether the variance reflects that the weights were estimated (asympt, bootstraps) or treats them as known.
    draws : DataFrame or None
        Bootstrap replicates (effect on the log scale for ratios), NaN rows for failed replicates.
    notes : tuple of str
        Statements printed under the table.
    n_contrasts : int
        The first ``n_contrasts`` rows are contrasts (one for a binary treatment, every pair of levels otherwise),
        the rest potential-outcome means.
    std_err : Series or None
        Standard errors when computed apart from ``vcov`` (an outcome of magnitude 1e200 has variances beyond the
        floating-point range, inf in ``vcov``, but finite SEs); None: the square roots of ``vcov``'s diagonal.

    Examples
    --------
    >>> from balance import PropensityWeights, WeightedEffect
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> result = WeightedEffect(PropensityWeights(estimand="ATT")).fit(data.X, data.treatment, data.y).result_
    >>> list(result.summary().index)
    ['ATT', 'mu1', 'mu0']
    >>> result.conf_int().round(1).loc["ATT"].tolist()
    [-350.3, 2778.4]
    """

    estimand: str
    scale: str
    estimate: pd.Series
    vcov: pd.DataFrame
    vcov_type: str
    vcov_config: dict
    n_obs: int
    ess: pd.Series
    outcome_model: str
    method: str
    accounts_for_weight_estimation: bool
    draws: pd.DataFrame | None = None
    notes: tuple = field(default_factory=tuple)
    n_contrasts: int = 1
    std_err: pd.Series | None = None

    # -- derived quantities -----------------------------------------------------------------------------------
    @property
    def _log_rows(self):
        return list(self.estimate.index[:self.n_contrasts]) if self.scale != "difference" else []

    def _inference_scale(self, values):
        values = values.copy()
        for row in self._log_rows:
            values[row] = np.log(values[row])
        return values

    def _natural_scale(self, values):
        values = values.copy()
        for row in self._log_rows:
            values[row] = np.exp(values[row])
        return values

    @property
    def se(self):
        """Standard errors (of the log ratio for ratio scales)."""
        if self.std_err is not None:
            return self.std_err
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.vcov.index, name="std_err")

    @property
    def statistic(self):
        """z statistics against 0 (a ratio against 1)."""
        return (self._inference_scale(self.estimate) / self.se).rename("statistic")

    def pvalue(self):
        """Two-sided normal p-values against 0 (a ratio against 1)."""
        return pd.Series(2 * norm.sf(np.abs(self.statistic)), index=self.estimate.index, name="p_value")

    def conf_int(self, alpha=0.05, method=None):
        """Confidence intervals, a DataFrame with columns ``lower`` and ``upper``.

        Parameters
        ----------
        alpha : float, default=0.05
            1 − confidence level.
        method : {"normal", "percentile"}, default=None
            "percentile" (bootstrap replicates' quantiles) when replicates exist, else "normal" (estimate ± z·se,
            on the log scale for ratios).
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha={alpha!r} must be in (0, 1).")
        method = method or ("percentile" if self.draws is not None else "normal")
        if method == "percentile":
            if self.draws is None:
                raise ValueError("percentile intervals need bootstrap replicates (vcov='bootstrap' or 'fwb').")
            draws = self.draws.dropna()
            lower = draws.quantile(alpha / 2)
            upper = draws.quantile(1 - alpha / 2)
        elif method == "normal":
            z = norm.ppf(1 - alpha / 2)
            centre = self._inference_scale(self.estimate)
            lower, upper = centre - z * self.se, centre + z * self.se
        else:
            raise ValueError(f"method={method!r} must be 'normal' or 'percentile'.")
        return pd.DataFrame({"lower": self._natural_scale(lower), "upper": self._natural_scale(upper)})

    def summary(self, alpha=0.05):
        """One row per quantity: estimate, std_err, statistic, p_value, ci_lower, ci_upper (an :class:`EffectSummary`).

        On a ratio scale the ratio rows' ``estimate`` and CI are ratios, their ``std_err`` and ``statistic`` those
        of the log ratio. The table is a DataFrame; printed, it shows every column at pandas' default width, then
        the notes (the variance; on ratio scales the SE column is labelled ``std_err*`` with a note saying so).
        ``print(result)`` adds a header line (estimand, method, n, ESS).
        """
        ci = self.conf_int(alpha)
        return EffectSummary.build(pd.DataFrame({
            "estimate": self.estimate, "std_err": self.se, "statistic": self.statistic, "p_value": self.pvalue(),
            "ci_lower": ci["lower"], "ci_upper": ci["upper"],
        }), self._notes(alpha))

    def _notes(self, alpha=0.05):
        return self._scale_notes(alpha) + tuple(self.notes)

    def _scale_notes(self, alpha):
        if not self._log_rows:
            return ()
        label = SCALE_LABELS[self.scale]
        rows = ", ".join(self._log_rows)
        return (f"std_err* of {rows} is the standard error of log({label}) (delta method), and its statistic and "
                f"p_value test log({label}) = 0; the estimate and its {100 * (1 - alpha):g}% CI are {label}s.",)

    # -- display ----------------------------------------------------------------------------------------------
    def _header(self):
        ess = ", ".join(f"{k} {v:.1f}" for k, v in self.ess.items())
        return (f"{self.estimand} by {self.method}, outcome model {self.outcome_model!r}, scale {self.scale}; "
                f"n = {self.n_obs}, ESS {ess}; variance: {self.vcov_type}")

    def _text(self, prefix=""):
        return f"{prefix}{self._header()}\n{self.summary()!r}"

    def __str__(self):
        return self._text()

    def __repr__(self):
        return self._text("EffectResults: ")

    def _repr_html_(self):
        return f"<p>{self._header()}</p>{self.summary()._repr_html_()}"
