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
import sys
import warnings

import numpy as np
import pandas as pd

from ._treatment import TREATMENT_TYPES
from ._validation import ESTIMANDS, check_treatment
from .diagnostics import balance_table, effective_sample_size, max_over_comparisons
from .effects import WeightedEffect
from .effects._outcome import OUTCOME_MODELS
from .effects._vcov import VCOV_TYPES
from .weights import PropensityWeights

# method name -> (estimator factory, description); later weighting methods register here
METHODS = {
    "ps": (lambda estimand, treated, treatment_type: PropensityWeights(estimand=estimand, treated=treated,
                                                                        treatment_type=treatment_type),
           "propensity-score weights from a logistic (multinomial for several levels) regression (WeightIt's glm)"),
}


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
    )
    parser.add_argument("--data", help="CSV file to analyse (default: the bundled lalonde data)")
    parser.add_argument("--treatment", help="treatment column (default: treat)")
    parser.add_argument("--outcome", help="outcome column (default: re78)")
    parser.add_argument("--covariates", help="comma-separated covariate columns (default: all other columns)")
    parser.add_argument("--index", help="column holding row labels (default: id if present)")
    parser.add_argument("--treated", help="the treated level, when the treatment is not 0/1 or true/false; the focal "
                                          "level of an ATT for a multi-category treatment")
    parser.add_argument("--treatment-type", default="auto", choices=[k for k in TREATMENT_TYPES if k != "continuous"],
                        help="auto (default: two values binary, text or categories multi-category), binary or "
                             "multi-category (needed for integer codes with more than two values)")
    parser.add_argument("--sample-weight", help="column of sampling weights (survey or base weights; default: none)")
    parser.add_argument("--method", default="ps", choices=sorted(METHODS), help="weighting method (default: ps)")
    parser.add_argument("--estimand", default=None, type=str.upper, choices=ESTIMANDS,
                        help="default: ATT (multi-category treatments: ATE, or ATT when --treated names the focal "
                             "level)")
    parser.add_argument("--outcome-model", default="simple", choices=OUTCOME_MODELS,
                        help="simple (weighted difference in means; default), additive, interact or aipw")
    parser.add_argument("--vcov", default="asympt", choices=sorted(VCOV_TYPES),
                        help="asympt (M-estimation, accounts for estimating the weights; default), HC0, bootstrap, fwb")
    parser.add_argument("--n-bootstrap", default=999, type=int, help="bootstrap replicates (default: 999)")
    parser.add_argument("--seed", default=None, type=int, help="random seed for the bootstraps")
    parser.add_argument("--alpha", default=0.05, type=float, help="1 - confidence level (default: 0.05)")
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
    if args.covariates:
        covariates = [c.strip() for c in args.covariates.split(",") if c.strip()]
        _require_columns(frame, covariates, "--covariates")
    else:
        covariates = [c for c in frame.columns if c not in (treatment_col, outcome_col, weight_col)]
    if not covariates:
        raise UsageError("no covariates: name them with --covariates")
    y = frame[outcome_col]
    if not pd.api.types.is_numeric_dtype(y) or not np.all(np.isfinite(y.to_numpy(dtype=float))):
        raise UsageError(f"--outcome: column {outcome_col!r} must be numeric with no missing values")

    X, t = frame[covariates], frame[treatment_col]
    # checked (non-negative, finite, numeric) by the estimators, whose messages name sample_weight
    sw = None if weight_col is None else frame[weight_col]
    treated = _parse_treated(args.treated, t)
    treatment = check_treatment(t, treated=treated, treatment_type=args.treatment_type)
    if treatment.kind == "continuous":  # argparse offers no "continuous"; "auto" can still find one
        raise UsageError(f"--treatment: column {treatment_col!r} looks continuous (float values); the command line "
                         "handles binary and multi-category treatments (integer codes: --treatment-type "
                         "multi-category)")
    multi = treatment.kind == "multi-category"
    estimand = args.estimand or ("ATE" if multi and treated is None else "ATT")
    factory, description = METHODS[args.method]
    effect = WeightedEffect(factory(estimand, treated, args.treatment_type), args.outcome_model, args.vcov,
                            n_bootstrap=args.n_bootstrap, random_state=args.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        effect.fit(X, t, y, sample_weight=sw)
    weighter = effect.weighter_
    a = treatment.a
    table = balance_table(X, t, weighter, estimand=estimand, treated=treated, sample_weight=sw)
    base = np.ones(len(a)) if sw is None else sw.to_numpy()
    ess = pd.DataFrame({  # before weighting: Kish's ESS of the sampling weights (WeightIt's "Unweighted")
        "before": effective_sample_size(base, a, treatment_type=treatment.kind).to_numpy(),
        "after": weighter.ess_,
        "largest share": weighter.max_weight_share_,
    })

    levels = weighter.treatment_levels_
    if multi:
        focal = "" if treatment.focal is None else f"; focal level {levels[treatment.focal]!r}"
        roles = f"{len(levels)} levels {', '.join(map(repr, levels))}, reference {levels[0]!r}{focal}"
    else:
        roles = f"treated = {levels[1]!r}, control = {levels[0]!r}"
    print(f"Data: {source}; {len(frame)} rows, treatment {treatment_col!r} ({roles}), outcome {outcome_col!r}",
          file=out)
    print(f"Method: {args.method}, {description}; estimand {estimand}", file=out)
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
    if not multi:
        print(f"  estimate {row['estimate']:.4f}   std. error {row['std_err']:.4f}   "
              f"{100 * (1 - args.alpha):g}% CI [{row['ci_lower']:.4f}, {row['ci_upper']:.4f}]", file=out)
    for note in effect.result_.notes:
        print(f"  {note[0].upper()}{note[1:]}.", file=out)
    return 0


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
