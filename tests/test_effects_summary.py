"""The effect summary: ratios and their intervals on the ratio scale with the SE labelled as that of the log ratio
(checked against the delta method applied to the potential-outcome means' covariance); the printed result shows
every column and the variance note at pandas' default display width."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy.stats import norm

from balance import PropensityWeights, WeightedEffect
from balance.datasets import load_lalonde

COLUMNS = ["estimate", "std_err", "statistic", "p_value", "ci_lower", "ci_upper"]


@pytest.fixture(scope="module")
def data():
    d = load_lalonde()
    return d.X, d.treatment, (d.y > 0).astype(int), d.y


def _fit(data, scale):
    X, a, employed, _ = data
    return WeightedEffect(PropensityWeights(estimand="ATT"), scale=scale).fit(X, a, employed)


@pytest.mark.parametrize("scale", ["rr", "or"])
def test_ratio_rows_are_ratios_with_the_se_of_the_log_ratio(data, scale):
    fit = _fit(data, scale)
    table = fit.summary()
    row = table.index[0]
    mu1, mu0 = table.loc["mu1", "estimate"], table.loc["mu0", "estimate"]
    cov = fit.result_.vcov.loc[["mu1", "mu0"], ["mu1", "mu0"]].to_numpy()
    # the independent reference: the ratio of the means and the delta method on log(ratio) from their covariance
    if scale == "rr":
        ratio, grad = mu1 / mu0, np.array([1 / mu1, -1 / mu0])
    else:
        ratio = (mu1 / (1 - mu1)) / (mu0 / (1 - mu0))
        grad = np.array([1 / (mu1 * (1 - mu1)), -1 / (mu0 * (1 - mu0))])
    se_log = np.sqrt(grad @ cov @ grad)
    assert_allclose(table.loc[row, "estimate"], ratio, rtol=1e-12)  # a ratio of two floats: round-off only
    # the stacked sandwich's contrast row and the delta method on its means' block are the same algebra: 1e-10
    assert_allclose(table.loc[row, "std_err"], se_log, rtol=1e-10)
    assert_allclose(table.loc[row, "statistic"], np.log(ratio) / se_log, rtol=1e-10)
    z = norm.ppf(0.975)
    assert_allclose(table.loc[row, ["ci_lower", "ci_upper"]].to_numpy(dtype=float),
                    np.exp(np.log(ratio) + np.array([-z, z]) * se_log), rtol=1e-10)
    # the interval is on the ratio scale: around the ratio, not around log(ratio) or 0
    assert table.loc[row, "ci_lower"] < ratio < table.loc[row, "ci_upper"]
    assert table.loc[row, "ci_lower"] > 0


@pytest.mark.parametrize(("scale", "label"), [("rr", "risk ratio"), ("or", "odds ratio")])
def test_printed_ratio_summary_labels_the_se_as_that_of_the_log_ratio(data, scale, label):
    fit = _fit(data, scale)
    text = str(fit.result_)
    header = text.splitlines()[1].split()
    assert header == ["estimate", "std_err*", "statistic", "p_value", "ci_lower", "ci_upper"]
    assert f"Note: std_err* of ATT ({label}) is the standard error of log({label})" in text
    assert f"the estimate and its 95% CI are {label}s" in text
    assert f"standard error of log({label})" in repr(fit.result_)


def test_difference_scale_has_no_log_note(data):
    X, a, _, y = data
    fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(X, a, y)
    text = str(fit.result_)
    assert text.splitlines()[1].split() == COLUMNS
    assert "log(" not in text and "std_err*" not in text


@pytest.mark.parametrize("scale", ["difference", "rr"])
def test_every_column_and_the_variance_note_show_at_the_default_width(data, scale):
    X, a, employed, y = data
    fit = WeightedEffect(PropensityWeights(estimand="ATT"), scale=scale).fit(X, a, employed if scale == "rr" else y)
    with pd.option_context("display.width", 80, "display.max_columns", 0):  # a terminal's defaults
        text = str(fit.result_)
        html = fit.result_._repr_html_()
    assert "..." not in text
    table_lines = text.split("\nNote:")[0].splitlines()[1:]  # after the header line
    assert len(table_lines) == 4  # header and three rows: nothing wrapped
    assert all(len(line) <= 80 for line in table_lines)
    for column in ["estimate", "statistic", "p_value", "ci_lower", "ci_upper"]:
        assert column in table_lines[0] and column in html
    assert "Note: variance: M-estimation sandwich" in text and "Note: variance: M-estimation sandwich" in html


def test_summary_is_a_dataframe_whose_derived_frames_are_plain(data):
    fit = _fit(data, "rr")
    table = fit.summary()
    assert isinstance(table, pd.DataFrame)  # indexes, compares and concatenates as any DataFrame (the CLI writes it)
    assert list(table.columns) == COLUMNS  # the data keep their names; only the printed header is starred
    assert table.loc["mu1", "estimate"] == fit.potential_outcomes_.loc["mu1", "estimate"]
    plain = pd.DataFrame(table.to_dict())
    assert table.equals(plain) and plain.equals(table)
    for derived in (table.iloc[:1], table.round(3), table[["estimate"]], pd.concat([table, table])):
        assert type(derived) is pd.DataFrame  # the notes stay with the whole summary
    assert table.to_csv() == plain.to_csv()


@pytest.mark.parametrize("scale", ["difference", "rr"])
def test_summary_prints_every_column_and_the_variance_note_at_the_default_width(data, scale):
    X, a, employed, y = data
    fit = WeightedEffect(PropensityWeights(estimand="ATT"), scale=scale).fit(X, a, employed if scale == "rr" else y)
    with pd.option_context("display.width", 80, "display.max_columns", 0):  # a terminal's defaults
        table = fit.summary()
        text, html = repr(table), table._repr_html_()
        assert str(table) == text and "..." not in text
    lines = text.split("\nNote:")[0].splitlines()
    assert len(lines) == 4 and all(len(line) <= 80 for line in lines)  # header and three rows: nothing wrapped
    assert lines[0].split() == ["estimate", "std_err*" if scale == "rr" else "std_err", *COLUMNS[2:]]
    for column in COLUMNS[2:]:
        assert column in html
    assert "Note: variance: M-estimation sandwich" in text and "Note: variance: M-estimation sandwich" in html
    assert ("standard error of log(risk ratio)" in text) == (scale == "rr")
    assert text in str(fit.result_)  # the result prints a header line, then the summary
    # the printed numbers are the table's (six significant digits)
    assert f"{table['estimate'].iloc[0]:.6g}" in lines[1]
