"""balance.plot: each plot renders on lalonde, and the numbers it draws are read back from the artists and compared
with independent computations (balance_table's rows, hand-computed weighted ECDFs, histograms and proportions).

Values read back from artists pass through matplotlib unchanged, so those comparisons are exact up to the one
floating-point operation named at each assert.
"""

import re
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from balance import EntropyBalance, PropensityWeights, balance_table, effective_sample_size  # noqa: E402
from balance.plot import (  # noqa: E402
    balance_plot,
    cate_plot,
    ipm_history_plot,
    love_plot,
    ps_overlap_plot,
    weight_plot,
)
from balance.plot._common import pyplot  # noqa: E402

from .conftest import COVARIATES  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    """Every test starts and ends with no open figure."""
    plt.close("all")
    yield
    plt.close("all")
    assert plt.get_fignums() == []


@pytest.fixture(scope="module")
def data(lalonde):
    X, a = lalonde[COVARIATES], lalonde["treat"]
    return SimpleNamespace(
        X=X, a=a,
        logit=PropensityWeights(estimand="ATT").fit(X, a),
        ebal=EntropyBalance(estimand="ATT").fit(X, a),
    )


def _series(ax, label):
    lines = [line for line in ax.get_lines() if line.get_label() == label]
    assert len(lines) == 1, f"expected one series labelled {label!r}"
    return lines[0]


def _ticklabels(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


# ------------------------------------------------------------------------------------------------------------
# importing
# ------------------------------------------------------------------------------------------------------------
def test_import_balance_does_not_import_matplotlib():
    code = "import sys, balance, balance.plot; print('matplotlib' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # None in sys.modules makes the import fail
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=re.escape('pip install "causal-balance[plot]"')):
        pyplot()


def test_ax_must_be_axes(data):
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        weight_plot(data.logit, data.a, ax="left")


# ------------------------------------------------------------------------------------------------------------
# love_plot
# ------------------------------------------------------------------------------------------------------------
def test_love_plot_values_equal_balance_table(data):
    fits = {"logit": data.logit, "ebal": data.ebal}
    ax = love_plot(data.X, data.a, fits)
    labels = _ticklabels(ax)
    tables = {name: balance_table(data.X, data.a, fit, estimand="ATT") for name, fit in fits.items()}
    columns = {"Unadjusted": tables["logit"]["smd_un"], **{k: t["smd_adj"] for k, t in tables.items()}}
    for name, column in columns.items():
        line = _series(ax, name)
        y = line.get_ydata()
        assert len(y) == len(column)
        # the y position of each point is its row; the tick label there names the covariate
        names = [labels[int(round(pos))] for pos in y]
        # |x| of balance_table's value: exact
        assert_allclose(line.get_xdata(), column.loc[names].abs().to_numpy(), rtol=0, atol=0)
    assert sorted(labels) == sorted(tables["logit"].index)
    assert ax.yaxis_inverted()  # first row on top
    thresholds = [line for line in ax.get_lines() if line.get_gid() == "threshold"]
    assert len(thresholds) == 1
    assert_array_equal(thresholds[0].get_xdata(), [0.1, 0.1])


@pytest.mark.parametrize("order", ["unadjusted", "adjusted", "alphabetical", "data"])
def test_love_plot_order(data, order):
    ax = love_plot(data.X, data.a, data.ebal, order=order)
    table = balance_table(data.X, data.a, data.ebal)
    expected = {
        "unadjusted": table["smd_un"].abs().sort_values(ascending=False, kind="stable").index,
        "adjusted": table["smd_adj"].abs().sort_values(ascending=False, kind="stable").index,
        "alphabetical": sorted(table.index),
        "data": table.index,
    }[order]
    assert _ticklabels(ax) == list(expected)
    assert_array_equal(_series(ax, "Adjusted").get_ydata(), np.arange(len(table)))


def test_love_plot_signed_values_and_two_thresholds(data):
    ax = love_plot(data.X, data.a, data.logit, abs=False, threshold=0.2, order="data")
    table = balance_table(data.X, data.a, data.logit)
    assert_allclose(_series(ax, "Adjusted").get_xdata(), table["smd_adj"], rtol=0, atol=0)  # same numbers, exact
    positions = sorted(line.get_xdata()[0] for line in ax.get_lines() if line.get_gid() == "threshold")
    assert positions == [-0.2, 0.2]


def test_love_plot_vratio_drops_binary_rows_and_folds_ratios(data):
    ax = love_plot(data.X, data.a, data.logit, stat="vratio", threshold=2, order="data")
    table = balance_table(data.X, data.a, data.logit)
    continuous = table[table["type"] == "Contin."]
    assert _ticklabels(ax) == list(continuous.index)
    ratio = continuous["vratio_adj"].to_numpy()
    # cobalt's abs=TRUE shows max(r, 1/r): one division
    assert_allclose(_series(ax, "Adjusted").get_xdata(), np.maximum(ratio, 1 / ratio), rtol=1e-15, atol=0)
    assert [line.get_xdata()[0] for line in ax.get_lines() if line.get_gid() == "threshold"] == [2]


def test_love_plot_ks(data):
    ax = love_plot(data.X, data.a, data.ebal, stat="ks", order="data", threshold=0.05)
    table = balance_table(data.X, data.a, data.ebal)
    assert_allclose(_series(ax, "Adjusted").get_xdata(), table["ks_adj"], rtol=0, atol=0)  # same numbers, exact
    assert_allclose(_series(ax, "Unadjusted").get_xdata(), table["ks_un"], rtol=0, atol=0)
    assert ax.get_xlabel() == "Kolmogorov-Smirnov Statistic"


def test_love_plot_unadjusted_only_and_arrays(data):
    ax = love_plot(data.X, data.a, threshold=None)
    assert [line.get_label() for line in ax.get_lines() if line.get_gid() not in ("reference", "threshold")] == \
        ["Unadjusted"]
    assert not [line for line in ax.get_lines() if line.get_gid() == "threshold"]
    Xn = data.X.drop(columns="race").to_numpy(dtype=float)
    ax = love_plot(Xn, data.a.to_numpy(), np.asarray(data.ebal.weights_), estimand="ATT", order="data")
    assert _ticklabels(ax) == [f"x{j}" for j in range(Xn.shape[1])]


def test_unfitted_weighters_are_refused(data):
    with pytest.raises(TypeError, match="unfitted PropensityWeights"):
        love_plot(data.X, data.a, {"logit": PropensityWeights()})
    with pytest.raises(TypeError, match="unfitted EntropyBalance"):
        balance_plot(data.X, data.a, "age", EntropyBalance())
    with pytest.raises(TypeError, match="unfitted PropensityWeights"):
        weight_plot(PropensityWeights(), data.a)


def test_love_plot_estimands_must_agree(data):
    ate = PropensityWeights(estimand="ATE").fit(data.X, data.a)
    with pytest.raises(ValueError, match="different estimands"):
        love_plot(data.X, data.a, {"att": data.logit, "ate": ate})
    ax = love_plot(data.X, data.a, {"att": data.logit, "ate": ate}, estimand="ATE")
    table = balance_table(data.X, data.a, ate, estimand="ATE")
    line = _series(ax, "ate")
    names = [_ticklabels(ax)[int(round(pos))] for pos in line.get_ydata()]
    assert_allclose(line.get_xdata(), table.loc[names, "smd_adj"].abs(), rtol=0, atol=0)  # exact, as above


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": "size"}, "order='size'"),
        ({"stat": "mean"}, "stat='mean'"),
        ({"weights": {}}, "empty dict"),
        ({"weights": {"Unadjusted": np.ones(614)}}, "reserved"),
        ({"order": "adjusted"}, "needs weights"),
        ({"weights": np.ones(10)}, "10 entries"),
        ({"weights": -np.ones(614)}, "negative"),
        ({"threshold": -0.1}, "threshold must be a positive number"),
        ({"threshold": "0.1"}, "threshold must be a positive number"),
    ],
)
def test_love_plot_bad_input(data, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        love_plot(data.X, data.a, **kwargs)


# ------------------------------------------------------------------------------------------------------------
# balance_plot
# ------------------------------------------------------------------------------------------------------------
def _hand_ecdf(x, w, at):
    return np.array([w[x <= v].sum() / w.sum() for v in at])


def test_balance_plot_ecdf_equals_hand_weighted_ecdf(data):
    w = np.asarray(data.logit.weights_)
    ax = balance_plot(data.X, data.a, "re74", data.logit, kind="ecdf")
    x = data.X["re74"].to_numpy()
    for arm, label in ((0, "Control"), (1, "Treated")):
        line = _series(ax, label)
        xs, ys = line.get_xdata(), line.get_ydata()
        assert line.get_drawstyle() == "steps-post"
        assert ys[0] == 0.0 and ys[-1] == 1.0
        assert xs[-1] == x.max()
        g = data.a.to_numpy() == arm
        at = np.r_[0.0, np.quantile(x[g], [0.3, 0.6, 0.9]), 12345.6]  # 0 is a tied value, 12345.6 between values
        read = ys[[np.flatnonzero(xs <= v)[-1] for v in at]]
        # cumulative sum against a direct sum of the same weights: rounding only
        assert_allclose(read, _hand_ecdf(x[g], w[g], at), rtol=1e-12, atol=1e-14)


def test_balance_plot_density_is_weighted_gaussian_kde(data):
    w = np.asarray(data.logit.weights_)
    ax = balance_plot(data.X, data.a, "age", data.logit, kind="density", mirrored=True)
    x, a = data.X["age"].to_numpy(dtype=float), data.a.to_numpy()
    polys = ax.collections
    assert [p.get_label() for p in polys] == ["Control", "Treated"]
    for arm, poly in zip((0, 1), polys):
        vertices = poly.get_paths()[0].vertices
        grid, density = vertices[1:513, 0], vertices[1:513, 1]
        assert_allclose(np.diff(grid), np.diff(grid)[0], rtol=1e-9, atol=0)  # the evaluation grid
        # the KDE written out: Scott's factor n_eff^(-1/5) times the weighted (n-1 form) SD, Gaussian kernel
        v = w[a == arm] / w[a == arm].sum()
        xa = x[a == arm]
        mean = v @ xa
        sd = np.sqrt(v @ (xa - mean) ** 2 / (1 - v @ v))
        h = sd * (1 / (v @ v)) ** (-1 / 5)
        hand = (v * np.exp(-0.5 * ((grid[:, None] - xa) / h) ** 2)).sum(axis=1) / (h * np.sqrt(2 * np.pi))
        sign = -1.0 if arm == 0 else 1.0  # mirrored: the control below the axis
        assert_allclose(density, sign * hand, rtol=1e-9, atol=1e-15)  # two summation orders: rounding only


def test_balance_plot_hist_equals_hand_weighted_histogram(data):
    w = np.asarray(data.ebal.weights_)
    ax = balance_plot(data.X, data.a, "age", data.ebal, kind="hist")
    x, a = data.X["age"].to_numpy(dtype=float), data.a.to_numpy()
    patches = [p for p in ax.patches if p.get_label() in ("Control", "Treated")]
    assert len(patches) == 2
    for arm, patch in zip((0, 1), patches):
        heights, edges = patch.get_data().values, patch.get_data().edges
        assert_array_equal(edges, patches[0].get_data().edges)  # shared bins
        xa, wa = x[a == arm], w[a == arm]
        inside = [(xa >= lo) & ((xa < hi) | ((hi == edges[-1]) & (xa <= hi))) for lo, hi in zip(edges[:-1], edges[1:])]
        hand = np.array([wa[m].sum() for m in inside]) / wa.sum() / np.diff(edges)
        assert_allclose(heights, hand, rtol=1e-12, atol=1e-15)  # sums in another order: rounding only


def test_balance_plot_categorical_levels_are_weighted_proportions(data):
    w = np.asarray(data.logit.weights_)
    ax = balance_plot(data.X, data.a, "race", data.logit)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["black", "hispan", "white"]
    heights = {c.get_label(): [bar.get_height() for bar in c] for c in ax.containers}
    frame = pd.DataFrame({"race": data.X["race"], "w": w, "a": data.a})
    for arm, label in ((0, "Control"), (1, "Treated")):
        g = frame[frame["a"] == arm]
        hand = g.groupby("race", observed=False)["w"].sum() / g["w"].sum()
        assert_allclose(heights[label], hand.loc[["black", "hispan", "white"]], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("covariate", ["married", "race_black"])
def test_balance_plot_binary_covariates_as_bars(data, covariate):
    ax = balance_plot(data.X, data.a, covariate)  # unweighted: plain proportions
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    values = (data.X["race"] == "black") if covariate == "race_black" else data.X[covariate]
    treated = [bar.get_height() for c in ax.containers if c.get_label() == "Treated" for bar in c]
    share = values[data.a == 1].astype(float).mean()
    assert_allclose(treated, [1 - share, share], rtol=1e-12, atol=1e-15)  # a mean against a dot product


def test_balance_plot_array_by_name_or_position(data):
    Xn, a = data.X.drop(columns="race").to_numpy(dtype=float), data.a.to_numpy()
    by_name = _series(balance_plot(Xn, a, "x1", kind="ecdf"), "Treated").get_ydata()
    by_position = _series(balance_plot(Xn, a, 1, kind="ecdf"), "Treated").get_ydata()
    assert_array_equal(by_name, by_position)


def test_balance_plot_treated_label_and_level_names(data):
    labels = np.where(data.a == 1, "nsw", "psid")
    ax = balance_plot(data.X, labels, "age", treated="nsw", kind="ecdf")
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["Control (psid)", "Treated (nsw)"]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (("wage",), {}, ValueError, "'wage' is not a column of X"),
        ((9,), {}, ValueError, "out of range"),
        ((1.5,), {}, TypeError, "column name or position"),
        (("age",), {"kind": "violin"}, ValueError, "kind='violin'"),
        (("age",), {"kind": "ecdf", "mirrored": True}, ValueError, "mirrored=True"),
        (("age", np.ones(5)), {}, ValueError, "5 entries"),
    ],
)
def test_balance_plot_bad_input(data, args, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        balance_plot(data.X, data.a, *args, **kwargs)


def test_balance_plot_density_needs_spread():
    X = pd.DataFrame({"x": [1.0, 1.0, 1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match="fewer than two distinct values"):
        balance_plot(X, [1, 1, 1, 0, 0, 0], "x")
    assert plt.get_fignums() == []  # checked before a figure is made


def test_bad_band_leaves_no_figure():
    with pytest.raises(ValueError, match="must contain the estimate"):
        cate_plot([1, 2], [1, 2], lower=[2, 2], upper=[3, 3])
    assert plt.get_fignums() == []


# ------------------------------------------------------------------------------------------------------------
# weight_plot
# ------------------------------------------------------------------------------------------------------------
def test_weight_plot_legend_shows_ess(data):
    ax = weight_plot(data.logit, data.a)
    ess = effective_sample_size(data.logit.weights_, data.a)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == [f"Control: ESS = {ess['control']:.1f} of n = 429", f"Treated: ESS = {ess['treated']:.1f} of n = 185"]
    # the bars count the units of each group
    counts = [sum(bar.get_height() for bar in c) for c in ax.containers]
    assert counts == [429, 185]


@pytest.mark.parametrize(
    ("weights", "kwargs", "message"),
    [
        (np.ones(10), {}, "weights has 10 entries but treatment has 614"),
        (-np.ones(614), {}, "negative"),
        (np.ones(614), {"bins": 0}, "bins must be a positive integer"),
        (np.r_[np.zeros(185), np.ones(429)], {}, "zero for every treated unit"),
    ],
)
def test_weight_plot_bad_input(data, weights, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        weight_plot(weights, data.a.sort_values(ascending=False).to_numpy(), **kwargs)


# ------------------------------------------------------------------------------------------------------------
# ps_overlap_plot
# ------------------------------------------------------------------------------------------------------------
def test_ps_overlap_plot_mirrored_histograms(data):
    ax = ps_overlap_plot(data.logit, data.a)
    from_array = ps_overlap_plot(np.asarray(data.logit.ps_), data.a.to_numpy(), ax=plt.subplots()[1])
    ps, a = np.asarray(data.logit.ps_), data.a.to_numpy()
    patches = {p.get_label(): p.get_data() for p in ax.patches}
    for label, patch in {p.get_label(): p.get_data() for p in from_array.patches}.items():
        assert_array_equal(patch.values, patches[label].values)
    control, treated = patches["Control"], patches["Treated"]
    assert np.all(control.values <= 0) and np.all(treated.values >= 0)
    edges = treated.edges
    for arm, heights in ((0, -control.values), (1, treated.values)):
        counts, _ = np.histogram(ps[a == arm], bins=edges)
        # density scale: count / (group size * bin width); one division
        assert_allclose(heights, counts / (a == arm).sum() / np.diff(edges), rtol=1e-12, atol=0)


def test_ps_overlap_density_stays_in_unit_interval(data):
    ax = ps_overlap_plot(data.logit, data.a, kind="density")
    for poly in ax.collections:
        x = poly.get_paths()[0].vertices[:, 0]
        assert x.min() >= 0.0 and x.max() <= 1.0


@pytest.mark.parametrize(
    ("propensity", "error", "message"),
    [
        (np.full(614, 1.5), ValueError, "between 0 and 1"),
        (np.full(10, 0.5), ValueError, "propensity has 10 entries"),
        (PropensityWeights(), TypeError, "fit it first"),
        (np.array(["a"] * 614), TypeError, "numeric"),
    ],
)
def test_ps_overlap_bad_input(data, propensity, error, message):
    with pytest.raises(error, match=re.escape(message)):
        ps_overlap_plot(propensity, data.a.to_numpy())


# ------------------------------------------------------------------------------------------------------------
# cate_plot
# ------------------------------------------------------------------------------------------------------------
def test_cate_plot_from_arrays_with_band():
    x = np.array([0.5, 0.1, 0.9, 0.3])
    cate = 2 * x
    ax = cate_plot(x, cate, lower=cate - 0.1, upper=cate + 0.2)
    line = _series(ax, "CATE")
    assert_array_equal(line.get_xdata(), np.sort(x))
    assert_array_equal(line.get_ydata(), np.sort(cate))
    band = ax.collections[0].get_paths()[0].vertices
    assert_allclose(band[:, 1].min(), cate.min() - 0.1, rtol=0, atol=1e-15)
    assert_allclose(band[:, 1].max(), cate.max() + 0.2, rtol=0, atol=1e-15)


def test_cate_plot_scatter_from_series_names_the_axis():
    x = pd.Series([3.0, 1.0, 2.0], name="age")
    ax = cate_plot(x, [0.3, 0.1, 0.2], kind="scatter")
    assert ax.get_xlabel() == "age"
    assert_array_equal(ax.collections[0].get_offsets(), [[3.0, 0.3], [1.0, 0.1], [2.0, 0.2]])


def test_cate_plot_from_learner(data, lalonde):
    hte = pytest.importorskip("balance.hte")
    from sklearn.linear_model import LinearRegression

    learner = hte.TLearner(LinearRegression()).fit(data.X, data.a, lalonde["re78"])
    ax = cate_plot("age", learner, X=data.X)
    offsets = ax.collections[0].get_offsets()
    assert_array_equal(offsets[:, 0], data.X["age"])
    assert_allclose(offsets[:, 1], learner.predict(data.X), rtol=1e-15, atol=0)  # the same predictions, exact
    assert ax.get_xlabel() == "age"


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (([1, 2, 3], [1, 2]), {}, ValueError, "cate has 2 entries but x has 3"),
        (([1, 2], [1, 2]), {"lower": [0, 1]}, ValueError, "both lower and upper"),
        (([1, 2], [1, 2]), {"lower": [0, 3], "upper": [2, 3]}, ValueError, "must contain the estimate"),
        (([1, np.nan], [1, 2]), {}, ValueError, "x has 1 missing"),
        (([1, 2], [1, 2]), {"kind": "bar"}, ValueError, "kind='bar'"),
        (([1, 2], [1, 2]), {"X": pd.DataFrame({"a": [1, 2]})}, TypeError, "only with a fitted learner"),
    ],
)
def test_cate_plot_bad_input(args, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        cate_plot(*args, **kwargs)


def test_cate_plot_learner_needs_frame_and_column():
    learner = SimpleNamespace(predict=lambda X: np.zeros(len(X)))
    with pytest.raises(TypeError, match="as a DataFrame X="):
        cate_plot("age", learner, X=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="'wage' is not a column of X"):
        cate_plot("wage", learner, X=pd.DataFrame({"age": [1.0, 2.0]}))
    with pytest.raises(TypeError, match="not with a learner"):
        cate_plot("age", learner, X=pd.DataFrame({"age": [1.0, 2.0]}), lower=[0, 0], upper=[1, 1])


# ------------------------------------------------------------------------------------------------------------
# ipm_history_plot
# ------------------------------------------------------------------------------------------------------------
def test_ipm_history_from_array_frame_and_estimator():
    history = np.array([[0.5, 0.4], [0.2, 0.3], [0.1, 0.25]])
    ax = ipm_history_plot(history)
    assert [line.get_label() for line in ax.get_lines()] == ["problem 0", "problem 1"]
    assert_array_equal(ax.get_lines()[1].get_ydata(), history[:, 1])
    frame = pd.DataFrame({"control": [0.3, 0.2, 0.1]}, index=pd.Index([1, 2, 3], name="epoch"))
    ax = ipm_history_plot(SimpleNamespace(ipm_history_=frame), log=True)
    line = _series(ax, "control")
    assert_array_equal(line.get_xdata(), [1, 2, 3])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"
    assert [line.get_label() for line in ipm_history_plot([3.0, 2.0, 1.0]).get_lines()] == ["IPM"]


def test_ipm_history_of_a_fitted_cbipm(rng):
    balance = pytest.importorskip("balance")
    if not hasattr(balance, "CBIPM"):
        pytest.skip("CBIPM is not available")
    X = rng.normal(size=(80, 2))
    t = rng.binomial(1, 1 / (1 + np.exp(-X[:, 0])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 20 epochs: a short curve is all this test needs
        cb = balance.CBIPM(n_epochs=20, random_state=0).fit(X, t)
    ax = ipm_history_plot(cb)
    for name in cb.ipm_history_.columns:
        assert_array_equal(_series(ax, str(name)).get_ydata(), cb.ipm_history_[name])


@pytest.mark.parametrize(
    ("history", "kwargs", "error", "message"),
    [
        (SimpleNamespace(ipm_history_=None), {}, ValueError, "recorded no IPM history"),
        (PropensityWeights(), {}, TypeError, "has no ipm_history_"),
        ([], {}, ValueError, "non-empty"),
        ([1.0, np.inf], {}, ValueError, "missing or infinite"),
        ([1.0, 0.0], {"log": True}, ValueError, "positive objective"),
        (np.zeros((2, 2, 2)), {}, ValueError, "1-d or 2-d"),
    ],
)
def test_ipm_history_bad_input(history, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        ipm_history_plot(history, **kwargs)


# ------------------------------------------------------------------------------------------------------------
# every plot draws on a given axes and returns it
# ------------------------------------------------------------------------------------------------------------
def test_plots_draw_on_the_given_axes(data):
    fig, axes = plt.subplots(2, 3)
    calls = [
        lambda ax: love_plot(data.X, data.a, data.logit, ax=ax),
        lambda ax: balance_plot(data.X, data.a, "age", data.logit, ax=ax),
        lambda ax: weight_plot(data.logit, data.a, ax=ax),
        lambda ax: ps_overlap_plot(data.logit, data.a, ax=ax),
        lambda ax: cate_plot([0.0, 1.0], [1.0, 2.0], ax=ax),
        lambda ax: ipm_history_plot([2.0, 1.0], ax=ax),
    ]
    for call, ax in zip(calls, axes.ravel()):
        assert call(ax) is ax
    assert plt.get_fignums() == [fig.number]


# ------------------------------------------------------------------------------------------------------------
# documentation: the examples run, and every parameter is documented
# ------------------------------------------------------------------------------------------------------------
PLOTS = [balance_plot, cate_plot, ipm_history_plot, love_plot, ps_overlap_plot, weight_plot]


@pytest.mark.parametrize("function", PLOTS, ids=lambda f: f.__name__)
def test_docstring_examples_run(function):
    import doctest

    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(function, function.__name__, globs={})
    assert tests and tests[0].examples, f"{function.__name__} has no Examples section"
    for test in tests:
        runner.run(test)
    assert runner.failures == 0


@pytest.mark.parametrize("function", PLOTS, ids=lambda f: f.__name__)
def test_docstring_parameters_match_signature(function):
    import inspect

    doc = function.__doc__.split("Parameters\n    ----------\n")[1].split("\n    Returns\n")[0]
    documented = [name for line in re.findall(r"^    (\w[\w, ]*) :", doc, flags=re.M) for name in line.split(", ")]
    assert documented == list(inspect.signature(function).parameters)
