"""``python -m balance``: a complete weighting analysis from the command line.

With no arguments it analyses the bundled lalonde data (ATT of the NSW job-training programme on 1978 earnings):
fit the weights, print balance before and after, the effective sample sizes, and the effect with its standard error
and 95% confidence interval. Flags point it at any CSV file.

A multi-category treatment (e.g. ``--treatment race``) gets balance per comparison of two levels, the effective
sample size per level, the weighted mean potential outcome of every level and every pairwise contrast, each with its
standard error; the estimand is the ATE, or the ATT of the level named by ``--treated``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ._treatment import TREATMENT_TYPES
from ._validation import ESTIMANDS, check_treatment
from .diagnostics import balance_table, effective_sample_size, max_over_comparisons
from .effects import WeightedDoseResponse, WeightedEffect
from .effects._outcome import OUTCOME_MODELS
from .effects._vcov import VCOV_TYPES
from .weights import (CBIPM, CBPS, EnergyBalance, EntropyBalance, InverseProbabilityTilting, PropensityWeights,
                      StableWeights)

# method name (WeightIt's where it has one) -> (class, takes random_state, has M-estimation SEs, description)
METHODS = {
    "glm": (PropensityWeights, False, True,
            "propensity-score weights from a logistic (multinomial for several levels) regression (WeightIt's glm)"),
    "cbps": (CBPS, False, True, "covariate-balancing propensity score, just-identified (Imai & Ratkovic 2014)"),
    "ebal": (EntropyBalance, False, True, "entropy balancing (Hainmueller 2012)"),
    "ipt": (InverseProbabilityTilting, False, True, "inverse probability tilting (Graham, Pinto & Egel 2012)"),
    "energy": (EnergyBalance, True, False, "energy balancing (Huling & Mak 2024)"),
    "optweight": (StableWeights, False, False, "stable balancing weights, L2 closest to uniform (Zubizarreta 2015)"),
    "cbipm": (CBIPM, True, False, "covariate balancing by integral probability metrics (Kong et al. 2023)"),
}
METHOD_ALIASES = {"ps": "glm", "stable": "optweight"}

EXAMPLES = """examples:
  python -m balance                                   the ATT of lalonde's job training on 1978 earnings
  python -m balance --data d.csv --treatment T --outcome Y --exclude id,followup
                                                      a CSV; covariates: every other column but these
  python -m balance --method ebal --estimand ATE --vcov HC0
                                                      entropy balancing, the ATE, weights treated as known
  python -m balance --data rhc.csv --treatment swang1 --treated "RHC" --outcome death --event Yes --scale rr
                                                      a binary outcome given as labels, the risk ratio
  python -m balance --treatment race                  a multi-category treatment: every pairwise contrast
  python -m balance --data d.csv --missing indicator  missing covariate values: indicators and fills
  python -m balance --output results/ --plot love.png files: balance.csv, weights.csv, effect.csv,
                                                      summary.json, and the love plot
"""


class UsageError(Exception):
    """A problem with the user's flags or data, reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, never a usage dump or a traceback
        raise UsageError(f"{message} (see python -m balance --help)")


def build_parser():
    parser = _Parser(
        prog="python -m balance",
        description="Weight observational data, check covariate balance and estimate a treatment effect. "
                    "Without arguments: the ATT on the bundled lalonde data.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", help="CSV file to analyse (default: the bundled lalonde data)")
    parser.add_argument("--treatment", help="treatment column (default: treat)")
    parser.add_argument("--outcome", help="outcome column (default: re78)")
    parser.add_argument("--event", help="the outcome value that means 1 when the outcome is given as labels "
                                        "(e.g. --event Yes); the outcome is then coded 1 for it and 0 otherwise")
    parser.add_argument("--covariates", help="comma-separated covariate columns (default: all other columns)")
    parser.add_argument("--exclude", help="comma-separated columns that are not covariates (e.g. post-treatment "
                                          "columns or ids), when the covariates are all other columns")
    parser.add_argument("--index", help="column holding row labels (default: id if present)")
    parser.add_argument("--treated", help="the treated level, when the treatment is not 0/1 or true/false; the focal "
                                          "level of an ATT for a multi-category treatment")
    parser.add_argument("--treatment-type", default="auto", choices=list(TREATMENT_TYPES),
                        help="auto (default: two values binary, text or categories multi-category, float values "
                             "continuous), binary, multi-category (needed for integer codes with more than two "
                             "values) or continuous (a dose: correlation balance and the dose-response slope)")
    parser.add_argument("--sample-weight", help="column of sampling weights (survey or base weights; default: none)")
    parser.add_argument("--method", default="glm", choices=sorted([*METHODS, *METHOD_ALIASES]),
                        help="weighting method: " + "; ".join(f"{k}: {v[3]}" for k, v in METHODS.items())
                        + " (ps = glm, stable = optweight; default: glm)")
    parser.add_argument("--missing", default="error", choices=["error", "indicator"],
                        help="missing covariate values: error (default) or indicator (an indicator column per "
                             "incomplete covariate and a fill value, as WeightIt and cobalt)")
    parser.add_argument("--estimand", default=None, type=str.upper, choices=ESTIMANDS,
                        help="default: ATT (multi-category treatments: ATE, or ATT when --treated names the focal "
                             "level)")
    parser.add_argument("--outcome-model", default="simple", choices=OUTCOME_MODELS,
                        help="simple (weighted difference in means; default), additive, interact or aipw")
    parser.add_argument("--vcov", default=None, choices=sorted(VCOV_TYPES),
                        help="asympt (M-estimation, accounts for estimating the weights; the default for glm, "
                             "cbps, ebal and ipt), fwb (fractional weighted bootstrap, re-estimating the weights; the "
                             "default for the others, which have no estimating equations), bootstrap, HC0 (weights "
                             "treated as known)")
    parser.add_argument("--scale", default="difference", choices=["difference", "rr", "or"],
                        help="effect scale: difference (default), rr (risk ratio) or or (odds ratio); the ratios "
                             "need a binary outcome")
    parser.add_argument("--n-bootstrap", default=999, type=int, help="bootstrap replicates (default: 999)")
    parser.add_argument("--seed", default=None, type=int, help="random seed for the bootstraps")
    parser.add_argument("--alpha", default=0.05, type=float, help="1 - confidence level (default: 0.05)")
    parser.add_argument("--output", metavar="DIR", help="write balance.csv, weights.csv, effect.csv and summary.json "
                                                      "to this folder (created if needed)")
    parser.add_argument("--plot", metavar="FILE", help="save a love plot of the balance (needs matplotlib); the "
                                                       "format follows the extension (.png, .pdf, .svg)")
    return parser


def _load(args):
    if args.data is None:
        from .datasets import load_lalonde

        return load_lalonde().frame, "the bundled lalonde data (Dehejia & Wahba 1999 NSW treated, PSID controls)"
    try:
        frame = pd.read_csv(args.data)
    except FileNotFoundError:
        raise UsageError(f"--data: no such file: {args.data}") from None
    except (IsADirectoryError, PermissionError) as exc:  # a folder (or an unreadable file) given for the CSV
        raise UsageError(f"--data: cannot read {args.data} ({exc.strerror}); give the path of a CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UsageError(f"--data: cannot read {args.data} as CSV ({str(exc).splitlines()[0]})") from None
    index = args.index or ("id" if "id" in frame.columns else None)
    if index is not None:
        _require_columns(frame, [index], "--index")
        frame = frame.set_index(index)
    return frame, args.data


def _require_columns(frame, names, flag):
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise UsageError(f"{flag}: column(s) {missing} not in the data; columns are {list(frame.columns)}")


def _parse_treated(value, column):
    """Command-line text becomes the column's own type, so --treated 1 matches an integer column."""
    if value is None:
        return None
    kind = column.dtype.kind
    try:
        if kind in "iu":
            return int(value)
        if kind == "f":
            return float(value)
        if kind == "b":
            return value.lower() in ("true", "1", "yes")
    except ValueError:
        raise UsageError(f"--treated {value!r} is not a value of the treatment column") from None
    return value


def _split(value):
    return [c.strip() for c in value.split(",") if c.strip()]


def _covariates(frame, args, used):
    """--covariates, or every column not used otherwise and not in --exclude."""
    if args.covariates and args.exclude:
        raise UsageError("give --covariates or --exclude, not both")
    if args.covariates:
        covariates = _split(args.covariates)
        _require_columns(frame, covariates, "--covariates")
    else:
        excluded = _split(args.exclude) if args.exclude else []
        _require_columns(frame, excluded, "--exclude")
        covariates = [c for c in frame.columns if c not in used and c not in excluded]
    if not covariates:
        raise UsageError("no covariates: name them with --covariates")
    return covariates


def _outcome(frame, column, event):
    """The outcome as numbers: the column itself, or 1 where it equals --event and 0 elsewhere."""
    y = frame[column]
    if event is not None:
        if y.isna().any():
            raise UsageError(f"--outcome: column {column!r} has missing values")
        labels = y.astype(str)
        if not (labels == event).any():
            raise UsageError(f"--event {event!r} is not a value of the outcome column {column!r}; its values are "
                             f"{sorted(labels.unique())[:10]}")
        return (labels == event).astype(float)
    if not pd.api.types.is_numeric_dtype(y) or not np.all(np.isfinite(y.to_numpy(dtype=float))):
        hint = " (a binary outcome given as labels: name the label that means 1 with --event)" \
            if not pd.api.types.is_numeric_dtype(y) and y.nunique() == 2 else ""
        raise UsageError(f"--outcome: column {column!r} must be numeric with no missing values{hint}")
    return y


def _weighter(args, estimand, treated):
    cls, seeded, _, _ = METHODS[METHOD_ALIASES.get(args.method, args.method)]
    params = dict(estimand=estimand, treated=treated, treatment_type=args.treatment_type, missing=args.missing)
    if seeded:
        params["random_state"] = args.seed
    return cls(**params)


def run(args, out=None):
    out = sys.stdout if out is None else out
    frame, source = _load(args)
    treatment_col = args.treatment or "treat"
    outcome_col = args.outcome or "re78"
    _require_columns(frame, [treatment_col], "--treatment")
    _require_columns(frame, [outcome_col], "--outcome")
    weight_col = args.sample_weight
    if weight_col is not None:
        _require_columns(frame, [weight_col], "--sample-weight")
    covariates = _covariates(frame, args, (treatment_col, outcome_col, weight_col))
    y = _outcome(frame, outcome_col, args.event)

    X, t = frame[covariates], frame[treatment_col]
    # checked (non-negative, finite, numeric) by the estimators, whose messages name sample_weight
    sw = None if weight_col is None else frame[weight_col]
    treated = _parse_treated(args.treated, t)
    treatment = check_treatment(t, treated=treated, treatment_type=args.treatment_type)
    if treatment.kind == "continuous":
        return _run_continuous(args, frame, source, X, t, y, sw, covariates, out)
    multi = treatment.kind == "multi-category"
    estimand = args.estimand or ("ATE" if multi and treated is None else "ATT")
    method = METHOD_ALIASES.get(args.method, args.method)
    description, has_m_parts = METHODS[method][3], METHODS[method][2]
    vcov = args.vcov or ("asympt" if has_m_parts else "fwb")
    effect = WeightedEffect(_weighter(args, estimand, treated), args.outcome_model, vcov, scale=args.scale,
                            n_bootstrap=args.n_bootstrap, random_state=args.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        effect.fit(X, t, y, sample_weight=sw)
    weighter = effect.weighter_
    a = treatment.a
    table = balance_table(X, t, weighter, estimand=estimand, treated=treated, sample_weight=sw)
    base = np.ones(len(a)) if sw is None else sw.to_numpy()
    levels = weighter.treatment_levels_
    ess = pd.DataFrame({  # before weighting: Kish's ESS of the sampling weights (WeightIt's "Unweighted")
        "before": effective_sample_size(base, a, treatment_type=treatment.kind).to_numpy(),
        "after": weighter.ess_,
        "largest share": weighter.max_weight_share_,
    })

    if multi:
        focal = "" if treatment.focal is None else f"; focal level {levels[treatment.focal]!r}"
        roles = f"{len(levels)} levels {', '.join(map(repr, levels))}, reference {levels[0]!r}{focal}"
    else:
        roles = f"treated = {levels[1]!r}, control = {levels[0]!r}"
    event = "" if args.event is None else f" (1 = {args.event!r})"
    print(f"Data: {source}; {len(frame)} rows, treatment {treatment_col!r} ({roles}), outcome "
          f"{outcome_col!r}{event}", file=out)
    print(f"Method: {method}, {description}; estimand {estimand}", file=out)
    if weight_col is not None:
        print(f"Weights include the sampling weights: column {weight_col!r}", file=out)
    print(file=out)
    for w in caught:
        print(f"Warning: {w.message}", file=out)
    print("Covariate balance" + (" per comparison ('hispan vs. black': hispan minus black)" if multi else "")
          + " (SMD: standardised mean difference, binary rows raw proportions; vratio: variance ratio; ks: "
          "Kolmogorov-Smirnov)", file=out)
    print(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="."), "\n", file=out)
    if multi:
        print("Largest imbalance over the comparisons (|SMD|, max(vratio, 1/vratio), ks)", file=out)
        print(max_over_comparisons(table).to_string(float_format=lambda v: f"{v:.4f}", na_rep="."), "\n", file=out)
    print("Effective sample size (Kish) and the largest unit's share of its group's weight"
          + (", per level" if multi else ""), file=out)
    print(ess.to_string(formatters={"before": "{:.1f}".format, "after": "{:.1f}".format,
                                    "largest share": "{:.1%}".format}), "\n", file=out)
    summary = effect.summary(alpha=args.alpha)
    row = summary.iloc[0]
    means = "mu[level]: weighted mean potential outcome of each level; 'hispan - black': the contrast of two " \
            "levels" if multi else "mu1, mu0: weighted means of the potential outcomes"
    print(f"{estimand} on {outcome_col!r} (outcome model {args.outcome_model!r}; {means})", file=out)
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"), file=out)
    if not multi and args.scale == "difference":
        print(f"  estimate {row['estimate']:.4f}   std. error {row['std_err']:.4f}   "
              f"{100 * (1 - args.alpha):g}% CI [{row['ci_lower']:.4f}, {row['ci_upper']:.4f}]", file=out)
    for note in effect.result_.notes:
        print(f"  {note[0].upper()}{note[1:]}.", file=out)
    settings = dict(data=str(source), rows=len(frame), treatment=treatment_col, outcome=outcome_col, event=args.event,
                    covariates=covariates, method=method, estimand=estimand, vcov=vcov, scale=args.scale,
                    outcome_model=args.outcome_model, missing=args.missing, sample_weight=weight_col,
                    alpha=args.alpha, seed=args.seed)
    if args.output:
        _write_outputs(Path(args.output), settings, table, ess.set_axis([str(v) for v in levels]), summary,
                       effect, t, [str(w.message) for w in caught], out)
    if args.plot:
        _save_love_plot(args.plot, X, t, weighter, estimand, treated, sw, out)
    return 0


def _run_continuous(args, frame, source, X, dose, y, sw, covariates, out):
    """A dose: weights that make it independent of the covariates, correlation balance, the dose-response slope."""
    if args.estimand not in (None, "ATE"):
        raise UsageError(f"--estimand {args.estimand}: a continuous treatment has one estimand, the average "
                         "dose-response (ATE); leave --estimand out")
    if args.treated is not None or args.scale != "difference":
        raise UsageError("--treated and --scale apply to binary and multi-category treatments, not to a dose")
    method = METHOD_ALIASES.get(args.method, args.method)
    description, has_m_parts = METHODS[method][3], METHODS[method][2]
    vcov = args.vcov or ("asympt" if has_m_parts else "fwb")
    model = WeightedDoseResponse(_weighter(args, "ATE", None), "linear", vcov=vcov, n_bootstrap=args.n_bootstrap,
                                 alpha=args.alpha, random_state=args.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, dose, y, sample_weight=sw)
    weighter = model.weighter_
    table = balance_table(X, dose, weighter, sample_weight=sw)
    print(f"Data: {source}; {len(frame)} rows, continuous treatment {dose.name!r}, outcome {y.name!r}", file=out)
    print(f"Method: {method}, {description}", file=out)
    print(file=out)
    for w in caught:
        print(f"Warning: {w.message}", file=out)
    print("Covariate balance: treatment-covariate correlations (Pearson corr, Spearman), before (un) and after (adj) "
          "weighting", file=out)
    print(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="."), "\n", file=out)
    print(f"Effective sample size (Kish): {len(frame)} units, {float(np.asarray(weighter.ess_).ravel()[0]):.1f} "
          "after weighting\n", file=out)
    summary = pd.DataFrame({"estimate": model.coef_, "std_err": np.sqrt(np.diag(model.vcov_))})
    z = stats.norm.ppf(1 - args.alpha / 2)
    summary["ci_lower"], summary["ci_upper"] = summary["estimate"] - z * summary["std_err"], \
        summary["estimate"] + z * summary["std_err"]
    print(f"Dose-response of {y.name!r} on {dose.name!r} (weighted least squares, y ~ 1 + dose; the slope is the "
          "average change in the outcome per unit of the dose)", file=out)
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"), file=out)
    print(f"  slope {model.slope_:.4f}   std. error {model.slope_se_:.4f}   {100 * (1 - args.alpha):g}% CI "
          f"[{summary['ci_lower'].iloc[1]:.4f}, {summary['ci_upper'].iloc[1]:.4f}]", file=out)
    for note in model.vcov_notes_:
        print(f"  {note[0].upper()}{note[1:]}.", file=out)
    settings = dict(data=str(source), rows=len(frame), treatment=dose.name, treatment_type="continuous",
                    outcome=y.name, covariates=covariates, method=method, vcov=vcov, missing=args.missing,
                    sample_weight=args.sample_weight, alpha=args.alpha, seed=args.seed)
    if args.output:
        folder = _make_folder(Path(args.output))
        table.to_csv(folder / "balance.csv")
        pd.DataFrame({"treatment": dose, "weight": model.weights_}).to_csv(
            folder / "weights.csv", index_label=dose.index.name or "row")
        summary.to_csv(folder / "effect.csv")
        document = dict(settings=settings, effect=json.loads(summary.to_json(orient="index")),
                        effective_sample_size=float(np.asarray(weighter.ess_).ravel()[0]),
                        warnings=[str(w.message) for w in caught], notes=list(model.vcov_notes_))
        (folder / "summary.json").write_text(json.dumps(document, indent=2))
        print(f"Wrote balance.csv, weights.csv, effect.csv and summary.json to {folder}", file=out)
    if args.plot:
        _save_love_plot(args.plot, X, dose, weighter, None, None, sw, out)
    return 0


def _make_folder(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--output: cannot create folder {folder} ({exc.strerror})") from None
    return folder


def _write_outputs(folder, settings, table, ess, summary, effect, treatment, warning_texts, out):
    """balance.csv, weights.csv, effect.csv and summary.json (settings, effect, ESS, warnings and notes)."""
    _make_folder(folder)
    table.to_csv(folder / "balance.csv")
    weights = pd.DataFrame({"treatment": treatment, "weight": effect.weighter_.weights_})
    weights.to_csv(folder / "weights.csv", index_label=treatment.index.name or "row")
    summary.to_csv(folder / "effect.csv")
    document = dict(settings=settings, effect=json.loads(summary.to_json(orient="index")),
                    effective_sample_size=json.loads(ess.to_json(orient="index")),
                    warnings=warning_texts, notes=list(effect.result_.notes))
    (folder / "summary.json").write_text(json.dumps(document, indent=2))
    print(f"Wrote balance.csv, weights.csv, effect.csv and summary.json to {folder}", file=out)


def _save_love_plot(path, X, treatment, weighter, estimand, treated, sample_weight, out):
    try:
        import matplotlib

        matplotlib.use("Agg")  # a file, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib (pip install 'causal-balance[plot]')") from None
    from .plot import love_plot

    ax = love_plot(X, treatment, weighter, estimand=estimand, treated=treated, sample_weight=sample_weight)
    try:
        ax.figure.savefig(path, bbox_inches="tight")
    except (OSError, ValueError) as exc:
        raise UsageError(f"--plot: cannot save {path} ({exc})") from None
    finally:
        plt.close(ax.figure)
    print(f"Wrote the love plot to {path}", file=out)


def main(argv=None):
    """Console entry point: returns the exit code (0 success, 2 usage or data error)."""
    try:
        args = build_parser().parse_args(argv)
        return run(args)
    except UsageError as exc:
        print(f"balance: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:  # data problems found by the estimators: one line, no traceback
        print(f"balance: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
