"""love_plot at real size: 82 rows stay readable (no two row labels overlap, the legend covers no point), and the
cobalt options (var_names, order, colours, markers) do what they say."""

import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from balance import balance_table  # noqa: E402
from balance.plot import love_plot  # noqa: E402

N_ROWS = 82


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def wide():
    """82 covariates with different imbalance (the treatment depends on some), and some long names."""
    rng = np.random.default_rng(20)
    n = 400
    X = pd.DataFrame(rng.normal(size=(n, N_ROWS)),
                     columns=[f"covariate_with_a_long_name_{j:02d}" if j % 7 == 0 else f"x{j:02d}"
                              for j in range(N_ROWS)])
    a = pd.Series((X.iloc[:, :10].sum(axis=1) * 0.3 + rng.normal(size=n) > 0).astype(int))
    weights = np.exp(rng.normal(scale=0.3, size=n))
    return X, a, weights


def _label_boxes(ax):
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in ax.get_yticklabels() if t.get_visible() and t.get_text()]


def _assert_no_overlap(boxes):
    boxes = sorted(boxes, key=lambda b: b.y0)
    for below, above in zip(boxes, boxes[1:]):
        # touching is allowed, overlapping by more than a hundredth of a pixel is not
        assert below.y1 <= above.y0 + 1e-2, (below, above)


def _data_points(ax):
    points = [np.column_stack([line.get_xdata(), line.get_ydata()]) for line in ax.get_lines()
              if line.get_gid() not in ("reference", "threshold")]
    return ax.transData.transform(np.vstack(points))


@pytest.mark.parametrize("order", ["given", "alphabetical", "unadjusted", "adjusted"])
def test_82_rows_labels_do_not_overlap_and_legend_covers_no_point(wide, order):
    X, a, w = wide
    ax = love_plot(X, a, {"weights": w, "other": np.sqrt(w)}, order=order)
    boxes = _label_boxes(ax)
    assert len(boxes) == N_ROWS  # every row labelled, none hidden
    _assert_no_overlap(boxes)
    legend = ax.get_legend().get_window_extent(ax.figure.canvas.get_renderer())
    points = _data_points(ax)
    assert len(points) == 3 * N_ROWS
    assert not any(legend.contains(x, y) for x, y in points)
    # the figure we created grew with the rows (matplotlib's default is 4.8 inches)
    assert ax.figure.get_figheight() > 15


def test_82_rows_on_a_small_given_axes_still_do_not_overprint(wide):
    X, a, w = wide
    fig, ax = plt.subplots(figsize=(6, 4))
    assert love_plot(X, a, w, ax=ax) is ax
    assert fig.get_figheight() == 4  # a given axes is never resized: its labels shrink instead
    _assert_no_overlap(_label_boxes(ax))


def test_labels_in_the_figure_we_create_stay_at_a_readable_size(wide):
    X, a, w = wide
    ax = love_plot(X, a, w)
    # a quarter inch per row leaves room for labels of at least 8 points (matplotlib's default is 10)
    assert min(t.get_fontsize() for t in ax.get_yticklabels()) >= 8


def test_var_names_relabel_rows_and_alphabetical_order_uses_the_labels(wide):
    X, a, w = wide
    names = {"x01": "zeta", "x02": "alpha"}
    ax = love_plot(X, a, w, var_names=names, order="alphabetical")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    expected = sorted([names.get(c, c) for c in X.columns])
    assert labels == expected
    # the relabelled row still carries its own numbers: x02's |SMD| sits at the row labelled "alpha"
    table = balance_table(X, a, w)
    line = next(line for line in ax.get_lines() if line.get_label() == "Adjusted")
    row = labels.index("alpha")
    assert_allclose(line.get_xdata()[line.get_ydata() == row], abs(table.loc["x02", "smd_adj"]), rtol=0, atol=0)


def test_given_order_is_the_tables_and_data_is_its_old_name(wide):
    X, a, w = wide
    given = [t.get_text() for t in love_plot(X, a, w, order="given").get_yticklabels()]
    assert given == list(balance_table(X, a, w).index)
    assert [t.get_text() for t in love_plot(X, a, w, order="data").get_yticklabels()] == given


def test_colors_and_markers_per_series(wide):
    X, a, w = wide
    ax = love_plot(X, a, w, colors=["black", "red"], markers={"Unadjusted": "x", "Adjusted": "o"})
    lines = {line.get_label(): line for line in ax.get_lines() if line.get_gid() in ("Unadjusted", "Adjusted")}
    assert lines["Unadjusted"].get_color() == "black" and lines["Adjusted"].get_color() == "red"
    assert lines["Unadjusted"].get_marker() == "x" and lines["Adjusted"].get_marker() == "o"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"var_names": {"nope": "x"}}, ValueError, "var_names names rows that are not in the plot: ['nope']"),
        ({"var_names": ["a"]}, TypeError, "var_names must be a dict"),
        ({"colors": ["red"]}, ValueError, "colors must give one color per series (2"),
        ({"markers": {"Adjusted": "o"}}, ValueError, "markers has no entry for the series ['Unadjusted']"),
    ],
)
def test_bad_options(wide, kwargs, error, message):
    X, a, w = wide
    with pytest.raises(error, match=re.escape(message)):
        love_plot(X, a, w, **kwargs)


# ------------------------------------------------------------------------------------------------------------
# balance_plot of a factor with many levels
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("given_axes", [False, True])
def test_factor_with_many_levels_has_labels_that_do_not_overlap(given_axes):
    from balance.plot import balance_plot

    rng = np.random.default_rng(3)
    n = 1200
    levels = [f"region number {k}" for k in range(40)]
    X = pd.DataFrame({"region": pd.Categorical(rng.choice(levels, size=n), categories=levels),
                      "age": rng.normal(size=n)})
    a = (rng.random(n) < 0.4).astype(int)
    ax = plt.subplots(figsize=(6.4, 4.8))[1] if given_axes else None
    ax = balance_plot(X, a, "region", ax=ax)
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    boxes = sorted((t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()), key=lambda b: b.x0)
    assert len(boxes) == 40
    for left, right in zip(boxes, boxes[1:]):
        assert left.x1 <= right.x0 + 1e-2, (left, right)
    # every label inside the figure (a created figure makes room for the vertical labels)
    if not given_axes:
        assert min(b.y0 for b in boxes) >= 0
