"""The bad-input grid of tests/test_bad_inputs.py as a table: every case x every estimator, with its outcome.

Run: ``python benchmarks/bad_inputs.py`` (writes benchmarks/results/bad_inputs.md, about a minute). The cases, the
estimators and the judging of each fit come from tests/bad_input_cases.py, the expected outcomes from
tests/test_bad_inputs.py; this script adds nothing of its own but the layout and the counts. Each fit is judged as
the test judges it: CBIPM's warning that 20 epochs (chosen for speed) did not level its objective off does not
count, and a cell where it was the only warning is marked ``ok*``.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_markdown  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from tests.bad_input_cases import SPECS, Outcome, build_cases, differs_from_base, run  # noqa: E402
from tests.test_bad_inputs import expected  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "bad_inputs.md"
SHORT = {"PropensityWeights": "PW", "UniformTransformerWeights": "UTW", "StableWeights": "SW", "CBPS": "CBPS",
         "InverseProbabilityTilting": "IPT", "EntropyBalance": "EB", "EnergyBalance": "EnB", "CBIPM": "CBIPM",
         "WeightedEffect": "WE", "FrontDoorDRLearner": "FD-DR", "FrontDoorRLearner": "FD-R"}


def label(spec):
    """A short column label: PW-ATT, WE(EB-ATT, aipw), DRLearner..."""
    return re.sub("|".join(sorted(SHORT, key=len, reverse=True)), lambda m: SHORT[m.group(0)], spec.name)


def configuration(spec):
    """The estimator's repr, with the learners' scaled pipelines written short."""
    text = " ".join(repr(spec.make()).split())
    return re.sub(r"Pipeline\(steps=\[\('standardscaler', StandardScaler\(\)\), \('\w+', (\w+\([^)]*\))\)\]\)",
                  r"scaled \1", text)


def nan_weights(outcome):
    return (outcome.kind == "invalid" and "non-finite" in outcome.message) or \
        (outcome.kind == "unexplained" and outcome.exception is FloatingPointError)


def run_grid(cases):
    """Every spec on every case: {(spec name, case name): Outcome}, judged as the test judges."""
    grid = {}
    with threadpool_limits(limits=1):  # shared machine: spin-waiting BLAS/OpenMP threads slow small fits 5x
        for spec in SPECS:
            base = run(spec, cases[0], tolerate=spec.tolerate).result  # cases[0] is the clean data
            for case in cases:
                outcome = run(spec, case, tolerate=spec.tolerate)
                problem = differs_from_base(spec, case, outcome, base)
                grid[spec.name, case.name] = Outcome("invalid", problem) if problem else outcome
    return grid


def message_codes(grid, cases):
    """A code (E1, W1, ...) per distinct error/warning message, numbered in table order, and the legend."""
    codes, legend, per_letter = {}, [], Counter()
    for outcome in (grid[spec.name, case.name] for case in cases for spec in SPECS):
        text = outcome.short(160)
        if outcome.kind in ("error", "warning", "invalid", "unexplained") and text not in codes:
            letter = outcome.kind[0].upper()
            per_letter[letter] += 1
            codes[text] = f"{letter}{per_letter[letter]}"
            legend.append((codes[text], text))
    return codes, legend


def cell(spec, outcome, codes):
    tolerated = outcome.kind == "ok" and spec.tolerate and any(re.search(spec.tolerate, w) for w in outcome.warnings)
    return codes.get(outcome.short(160), outcome.kind) + ("*" if tolerated else "")


def summary(grid, cases, seconds):
    counts = Counter(o.kind for o in grid.values())
    mismatches = [(s.name, c.name, grid[s.name, c.name].short(120), expected(s, c.name).kind)
                  for s in SPECS for c in cases if grid[s.name, c.name].kind != expected(s, c.name).kind]
    lines = [
        "# Bad inputs: outcome of every case for every estimator",
        "",
        "Produced by `python benchmarks/bad_inputs.py` from the cases and estimators of `tests/bad_input_cases.py` "
        "(the grid `tests/test_bad_inputs.py` asserts). Each cell is what one fit did: `ok` (valid output, no "
        "warning), `Wk` (valid output with a warning), `Ek` (a ValueError/TypeError), `n/a` (the case does not "
        "apply: no outcome for weighters, no `sample_weight` or `treated=` for the HTE learners); the codes are "
        "listed below the table with their messages. Valid output means finite non-negative weights, one per row, "
        "on X's index, zero where `sample_weight` is zero, inputs untouched, and for the HTE learners finite "
        "CATE predictions and pseudo-outcomes. Data: 80 rows, 3 covariates (tests/bad_input_cases.py:base_data).",
        "",
        machine_markdown(),
        f"- run time: {seconds:.0f} s for {len(grid)} cells and {len(SPECS)} clean reference fits (one BLAS/OpenMP "
        "thread)",
        "",
        "## Counts",
        "",
        f"- NaN/inf-weight outcomes: {sum(nan_weights(o) for o in grid.values())}",
        f"- unexplained exceptions (anything but a ValueError/TypeError naming the problem): {counts['unexplained']}",
        f"- invalid outputs (index or rows lost, data changed, numpy warnings, results that differ from the clean "
        f"fit when the same data are passed another way, reordered or rescaled): {counts['invalid']}",
        f"- clear errors: {counts['error']}; valid output with a warning: {counts['warning']}; valid output: "
        f"{counts['ok']}; not applicable: {counts['n/a']}",
        f"- outcomes that differ from the expectations in tests/test_bad_inputs.py: {len(mismatches)}",
        "",
    ]
    lines += [f"  - {spec}/{case}: expected {want}, got {got}" for spec, case, got, want in mismatches]
    return lines, counts, mismatches


def main():
    cases = build_cases()
    start = time.perf_counter()
    grid = run_grid(cases)
    seconds = time.perf_counter() - start
    codes, legend = message_codes(grid, cases)
    lines, counts, mismatches = summary(grid, cases, seconds)
    header = ["case"] + [label(s) for s in SPECS]
    lines += ["## Outcomes (case x estimator)", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [f"| {case.name} | " + " | ".join(cell(s, grid[s.name, case.name], codes) for s in SPECS) + " |"
              for case in cases]
    lines += ["", "`ok*`: valid output; the only warning was CBIPM's that its objective had not levelled off after "
              "the 20 epochs these configurations use (for speed).", "", "## Messages", "",
              "| code | outcome and message (first 160 characters) | cells |", "|---|---|---|"]
    uses = Counter(codes.get(o.short(160)) for o in grid.values())
    lines += [f"| {code} | {text.replace('|', '/')} | {uses[code]} |" for code, text in legend]
    lines += ["", "## Estimators", "", "`scaled M` is `make_pipeline(StandardScaler(), M)`: the learners pass X to the "
              "user's models unscaled, as scikit-learn does.", "", "| column | configuration |", "|---|---|"]
    lines += [f"| {label(s)} | `{configuration(s)}` |" for s in SPECS]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({seconds:.0f} s); {len(mismatches)} mismatches, {counts['unexplained']} unexplained, "
          f"{counts['invalid']} invalid")


if __name__ == "__main__":
    main()
