"""balance.plot with a multi-category treatment (lalonde's race: black, hispan, white): every level is drawn, the
numbers read back from the artists equal independent computations (hand-weighted ECDFs, proportions, histograms,
Kish's ESS), and the love plot's default is the largest absolute value over the pairwise comparisons.

Values read back from artists pass through matplotlib unchanged, so comparisons are exact up to the floating-point
operations named at each assert.
"""

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import balance.plot._love as love_module  # noqa: E402
from balance import PropensityWeights, balance_table  # noqa: E402
from balance.plot import balance_plot, love_plot, ps_overlap_plot, weight_plot  # noqa: E402

from .conftest import SHARED, _shared_file  # noqa: E402

LEVELS = ["black", "hispan", "white"]
COVARIATES = ["age", "educ", "married", "nodegree", "re74", "re75"]


@pytest.fixture(autouse=True)
def _close_figures():
    plt.close("all")
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data(lalonde):
    X, race = lalonde[COVARIATES], lalonde["race"]
    return SimpleNamespace(X=X, race=race, codes=race.cat.codes.to_numpy(),
                           ps=PropensityWeights(estimand="ATE").fit(X, race))


def _hand_ecdf(x, w, at):
    return np.array([w[x <= v].sum() / w.sum() for v in at])


# ------------------------------------------------------------------------------------------------------------
# balance_plot
# ------------------------------------------------------------------------------------------------------------
def test_balance_plot_draws_every_level_as_its_weighted_ecdf(data):
    w = np.asarray(data.ps.weights_)
    ax = balance_plot(data.X, data.race, "re74", data.ps, kind="ecdf")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == LEVELS
    x = data.X["re74"].to_numpy()
    for k, level in enumerate(LEVELS):
        (line,) = [ln for ln in ax.get_lines() if ln.get_label() == level]
        xs, ys = line.get_xdata(), line.get_ydata()
        g = data.codes == k
        at = np.r_[0.0, np.quantile(x[g], [0.3, 0.6, 0.9])]
        read = ys[[np.flatnonzero(xs <= v)[-1] for v in at]]
        # cumulative sum against a direct sum of the same weights: rounding only
        assert_allclose(read, _hand_ecdf(x[g], w[g], at), rtol=1e-12, atol=1e-14)


def test_balance_plot_binary_covariate_bars_per_level(data):
    w = np.asarray(data.ps.weights_)
    ax = balance_plot(data.X, data.race, "married", data.ps)
    heights = {c.get_label(): [bar.get_height() for bar in c] for c in ax.containers}
    assert list(heights) == LEVELS
    married = data.X["married"].to_numpy(dtype=float)
    for k, level in enumerate(LEVELS):
        g = data.codes == k
        share = w[g] @ married[g] / w[g].sum()
        assert_allclose(heights[level], [1 - share, share], rtol=1e-12, atol=1e-15)  # two summation orders
    widths = {bar.get_width() for c in ax.containers for bar in c}
    assert_allclose(sorted(widths), [0.8 / 3])  # three groups share each slot


def test_balance_plot_density_per_level_and_mirrored_refused(data):
    ax = balance_plot(data.X, data.race, "age", kind="density")
    assert [p.get_label() for p in ax.collections] == LEVELS
    with pytest.raises(ValueError, match=re.escape("mirrored=True needs two groups; the treatment has 3 levels")):
        balance_plot(data.X, data.race, "age", mirrored=True)


def test_integer_levels_need_treatment_type(data):
    codes = pd.Series(data.codes, index=data.X.index)
    with pytest.raises(ValueError, match="treatment_type='multi-category'"):
        balance_plot(data.X, codes, "age", kind="ecdf")
    ax = balance_plot(data.X, codes, "age", kind="ecdf", treatment_type="multi-category")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]


def test_zero_weights_for_a_level_are_named(data):
    w = np.where(data.codes == 1, 0.0, 1.0)
    with pytest.raises(ValueError, match="weights is zero for every 'hispan' unit"):
        balance_plot(data.X, data.race, "age", w)


# ------------------------------------------------------------------------------------------------------------
# weight_plot
# ------------------------------------------------------------------------------------------------------------
def test_weight_plot_one_panel_per_level_with_ess(data):
    w = np.asarray(data.ps.weights_)
    axes = weight_plot(data.ps, data.race, bins=20)
    assert len(axes) == 3 and len({ax.figure for ax in axes}) == 1
    edges = np.histogram_bin_edges(w, bins=20)
    for k, (level, ax) in enumerate(zip(LEVELS, axes)):
        wk = w[data.codes == k]
        ess = wk.sum() ** 2 / (wk**2).sum()  # Kish's ESS written out
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"{level}: ESS = {ess:.1f} of n = {wk.size}"]
        counts = [p.get_height() for p in ax.patches]
        assert_array_equal(counts, np.histogram(wk, bins=edges)[0])  # shared bins: counts are exact


def test_weight_plot_given_axes_and_wrong_number(data):
    _, given = plt.subplots(3, 1)
    axes = weight_plot(data.ps, data.race, ax=given)
    assert all(a is b for a, b in zip(axes, given))
    with pytest.raises(ValueError, match="ax must be None or 3 matplotlib Axes, one per treatment level; got 2"):
        weight_plot(data.ps, data.race, ax=given[:2])


# ------------------------------------------------------------------------------------------------------------
# ps_overlap_plot
# ------------------------------------------------------------------------------------------------------------
def test_overlap_panel_per_level_shows_that_levels_score_in_every_group(data):
    ps = data.ps.ps_.to_numpy()
    axes = ps_overlap_plot(data.ps, data.race)
    assert [ax.get_xlabel() for ax in axes] == [f"P(treatment = {level} | X)" for level in LEVELS]
    for k, ax in enumerate(axes):
        patches = {p.get_label(): p.get_data() for p in ax.patches}
        assert list(patches) == LEVELS
        edges = patches["black"].edges
        for j, level in enumerate(LEVELS):
            heights = patches[level].values
            assert np.all(heights >= 0)  # not mirrored
            counts, _ = np.histogram(ps[data.codes == j, k], bins=edges)
            # density scale: count / (group size * bin width); one division
            assert_allclose(heights, counts / (data.codes == j).sum() / np.diff(edges), rtol=1e-12, atol=0)


def test_overlap_columns_matched_by_level_name(data):
    reordered = data.ps.ps_[["white", "black", "hispan"]]
    first = ps_overlap_plot(data.ps, data.race)
    second = ps_overlap_plot(reordered, data.race)
    for a, b in zip(first, second):
        assert_array_equal([p.get_data().values for p in a.patches], [p.get_data().values for p in b.patches])


@pytest.mark.parametrize(("propensity", "kwargs", "message"), [
    (np.full((614, 2), 0.5), {}, "one column per treatment level (3: ['black', 'hispan', 'white'])"),
    (np.full(614, 0.5), {}, "got shape (614,)"),
    (np.full((614, 3), 1.5), {}, "between 0 and 1"),
    (None, {"mirrored": True}, "mirrored=True needs two groups"),
])
def test_overlap_bad_input(data, propensity, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ps_overlap_plot(data.ps if propensity is None else propensity, data.race, **kwargs)


# ------------------------------------------------------------------------------------------------------------
# love_plot on a multi-category balance table ((comparison, variable) MultiIndex, as balance_table documents it)
# ------------------------------------------------------------------------------------------------------------
def _multi_table(rng, comparisons):
    """A table in balance_table's multi-category format, with known values."""
    variables = ["age", "educ", "married"]
    index = pd.MultiIndex.from_product([comparisons, variables], names=["comparison", "variable"])
    table = pd.DataFrame({"type": ["Contin.", "Contin.", "Binary"] * len(comparisons)}, index=index)
    for column in ("smd_un", "smd_adj"):
        table[column] = rng.normal(0.0, 0.3, len(index))
    for column in ("vratio_un", "vratio_adj"):
        table[column] = rng.uniform(0.3, 3.0, len(index))
    table.loc[(slice(None), "married"), ["vratio_un", "vratio_adj"]] = np.nan  # binary: no variance ratio
    return table


@pytest.fixture
def fake_table(monkeypatch, rng):
    """balance_table stubbed: every pair of levels by default (and with pairwise=True), each level against the
    full sample with pairwise=False."""
    tables = {True: _multi_table(rng, ["hispan vs. black", "white vs. black", "white vs. hispan"]),
              False: _multi_table(rng, ["All vs. black", "All vs. hispan", "All vs. white"])}
    monkeypatch.setattr(love_module, "balance_table",
                        lambda *args, pairwise=None, **kwargs: tables[pairwise is not False])
    return tables


def _points(ax, label):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    names = [t.get_text() for t in ax.get_yticklabels()]
    return dict(zip([names[int(round(y))] for y in line.get_ydata()], line.get_xdata()))


def test_love_plot_default_is_max_over_pairwise_comparisons(fake_table, data):
    ax = love_plot(data.X, data.race, np.ones(614))
    pairwise = fake_table[True]
    for label, column in (("Unadjusted", "smd_un"), ("Adjusted", "smd_adj")):
        expected = pairwise[column].abs().groupby(level="variable").max()
        got = _points(ax, label)
        assert_array_equal([got[v] for v in expected.index], expected.to_numpy())  # a max of |x|: exact
    assert "maximum over comparisons" in ax.get_title()


def test_love_plot_max_of_variance_ratios_folds_then_drops_binary_rows(fake_table, data):
    ax = love_plot(data.X, data.race, np.ones(614), stat="vratio", threshold=2)
    pairwise = fake_table[True]
    values = pairwise["vratio_adj"]
    expected = np.maximum(values, 1 / values).groupby(level="variable").max().dropna()
    got = _points(ax, "Adjusted")
    assert sorted(got) == ["age", "educ"]
    assert_array_equal([got[v] for v in expected.index], expected.to_numpy())


@pytest.mark.parametrize("comparison", ["white vs. hispan", "All vs. black"])
def test_love_plot_one_comparison_on_request(fake_table, data, comparison):
    ax = love_plot(data.X, data.race, np.ones(614), comparison=comparison, abs=False)
    rows = fake_table[not comparison.startswith("All")].xs(comparison, level="comparison")
    got = _points(ax, "Adjusted")
    assert_array_equal([got[v] for v in rows.index], rows["smd_adj"].to_numpy())  # signed, unchanged
    assert ax.get_title().endswith(comparison)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"comparison": "black vs. white"}, "comparison='black vs. white' is not in the balance table; choose one of"),
    ({"abs": False}, "pass abs=True, or name one comparison"),
])
def test_love_plot_multi_bad_input(fake_table, data, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        love_plot(data.X, data.race, np.ones(614), **kwargs)


def test_love_plot_comparison_refused_for_binary(lalonde):
    with pytest.raises(ValueError, match="applies to a multi-category treatment; this treatment is binary"):
        love_plot(lalonde[COVARIATES], lalonde["treat"], comparison="1 vs. 0")


def test_love_plot_default_equals_cobalts_balance_across_pairs(data):
    """cobalt 4.6.1's "Balance.Across.Pairs" (max |diff| over the pairwise comparisons) for WeightIt's glm ATE."""
    table = pd.read_csv(_shared_file(SHARED / "oracle" / "weightit-multi-ate" / "balance_max_over_pairs.csv"))
    table = table[(table["case"] == "ATE_glm") & (table["binary"] == "raw")].set_index("variable")
    ax = love_plot(data.X, data.race, data.ps)
    for label, column in (("Unadjusted", "Max.Diff.Un"), ("Adjusted", "Max.Diff.Adj")):
        got = _points(ax, label)
        assert sorted(got) == sorted(table.index)
        # unadjusted: the same arithmetic as cobalt's; adjusted: our multinomial MLE agrees with WeightIt's to
        # ~1e-7 relative, which moves the weighted differences by as much
        tol = 1e-12 if label == "Unadjusted" else 1e-6
        assert_allclose([got[v] for v in table.index], table[column].to_numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize(("comparison", "pairwise"), [("white vs. hispan", True), ("All vs. hispan", False)])
def test_love_plot_comparison_equals_balance_table_rows(data, comparison, pairwise):
    ax = love_plot(data.X, data.race, data.ps, comparison=comparison)
    rows = balance_table(data.X, data.race, data.ps, pairwise=pairwise).xs(comparison, level="comparison")
    for label, column in (("Unadjusted", "smd_un"), ("Adjusted", "smd_adj")):
        got = _points(ax, label)
        assert_array_equal([got[v] for v in rows.index], rows[column].abs().to_numpy())  # |x|: exact
