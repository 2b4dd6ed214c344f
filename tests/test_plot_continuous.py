"""balance.plot for a continuous treatment: the dose-response plot, the treatment-covariate scatter of balance_plot
and the correlation love plot. The numbers drawn are read back from the artists and compared with independent
computations (the fitted model's predict, closed-form weighted least squares, WeightIt's entropy-balancing weights,
which make the weighted treatment-covariate covariances zero).
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from balance import WeightedDoseResponse, balance_table  # noqa: E402
from balance.plot import balance_plot, dose_response_plot, love_plot  # noqa: E402

from .conftest import SHARED, _shared_file  # noqa: E402
from .test_dose_response import COVS, OracleWeights, _oracle_weights  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    df = pd.read_csv(_shared_file(SHARED / "data" / "lalonde_matchit614.csv"), index_col="id")
    df["race"] = pd.Categorical(df["race"], categories=["black", "hispan", "white"])
    return df[COVS], df["re75"], df["re78"], _oracle_weights("ebal", df.index)


def test_dose_response_plot_draws_predict(data):
    """The line and band are model.predict on the grid over the observed range; the rug marks every unit."""
    X, dose, y, w = data
    fit = WeightedDoseResponse(OracleWeights(w), outcome_model="spline", knots=[1000.0, 4000.0], vcov="HC0")
    fit.fit(X, dose, y)
    ax = dose_response_plot(fit, n_points=50, alpha=0.1)
    grid = np.linspace(dose.min(), dose.max(), 50)
    table = fit.predict(grid, alpha=0.1)
    line = next(line for line in ax.get_lines() if line.get_label() == "ADRF")
    assert_array_equal(line.get_xdata(), grid)
    assert_array_equal(line.get_ydata(), table["estimate"].to_numpy())
    band = ax.collections[0].get_paths()[0].vertices
    assert_allclose(band[:, 1].min(), table["conf_low"].min())
    assert_allclose(band[:, 1].max(), table["conf_high"].max())
    rug = next(c for c in ax.collections if c.get_gid() == "rug")
    assert len(rug.get_segments()) == len(dose)
    assert ax.get_xlabel() == "re75" and "90% pointwise" in ax.get_legend().get_texts()[0].get_text()
    with pytest.raises(TypeError, match="fitted WeightedDoseResponse"):
        dose_response_plot(WeightedDoseResponse(OracleWeights(w)))


def _wls_slope(x, a, w):
    """Weighted least-squares slope of a on x: weighted covariance over weighted variance."""
    xc, ac = x - np.average(x, weights=w), a - np.average(a, weights=w)
    return np.sum(w * xc * ac) / np.sum(w * xc ** 2)


def test_balance_plot_scatter(data):
    """Points at (covariate, treatment) with area proportional to the weight; the fitted line is the weighted
    least-squares line (closed form, 1e-8); after entropy balancing, which sets the weighted covariance of re75
    with age to zero, the line is flat (slope below 1e-6 of the unweighted one) and lies on the weighted mean."""
    X, dose, y, w = data
    before = balance_plot(X, dose, "age")
    after = balance_plot(X, dose, "age", w, ax=plt.subplots()[1])
    for ax, weights in ((before, np.ones(len(dose))), (after, w)):
        points = next(c for c in ax.collections if c.get_gid() == "units")
        keep = weights > 0
        assert_array_equal(points.get_offsets(), np.column_stack([X["age"], dose])[keep])
        assert_allclose(points.get_sizes(), 20 * weights[keep] / weights[keep].mean())
        fit = next(line for line in ax.get_lines() if line.get_gid() == "fit")
        xs, ys = fit.get_data()
        slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
        assert_allclose(slope, _wls_slope(X["age"].to_numpy(float), dose.to_numpy(), weights), rtol=1e-8, atol=1e-12)
        mean = next(line for line in ax.get_lines() if line.get_gid() == "mean")
        assert_allclose(mean.get_ydata()[0], np.average(dose, weights=weights))
    unweighted = _wls_slope(X["age"].to_numpy(float), dose.to_numpy(), np.ones(len(dose)))
    flat = next(line for line in after.get_lines() if line.get_gid() == "fit").get_ydata()
    assert abs(flat[1] - flat[0]) < 1e-6 * abs(unweighted) * np.ptp(X["age"])
    assert after.get_xlabel() == "age" and after.get_ylabel() == "re75" and "weighted" in after.get_title()


def test_balance_plot_levels(data):
    """A categorical covariate: the treatment's weighted ECDF within each level (hand-computed at the last point:
    1 for every level, and at the median of re75 the weighted share of units at or below it)."""
    X, dose, y, w = data
    ax = balance_plot(X, dose, "race", w, kind="ecdf")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["black", "hispan", "white"]
    cut = float(np.median(dose))
    for line, level in zip(ax.get_lines(), labels):
        xs, cdf = line.get_data()
        rows = (X["race"] == level).to_numpy()
        share = w[rows][dose.to_numpy()[rows] <= cut].sum() / w[rows].sum()
        assert_allclose(cdf[np.searchsorted(xs, cut, side="right") - 1], share, rtol=1e-12)
        assert cdf[-1] == pytest.approx(1.0)
    assert ax.get_xlabel() == "re75"
    with pytest.raises(ValueError, match="mirrored=True needs two groups"):
        balance_plot(X, dose, "age", w, mirrored=True)


def _has_correlations():
    try:
        balance_table(pd.DataFrame({"x": [1.0, 2.0, 4.0, 3.0]}), np.array([0.5, 1.5, 2.5, 0.1]), stats="corr")
    except (ValueError, TypeError):
        return False
    return True


@pytest.mark.skipif(not _has_correlations(), reason="balance_table has no continuous correlations yet (d-balance)")
def test_love_plot_correlations(data):
    """A continuous treatment's love plot shows |corr_un| and |corr_adj| from balance_table (exact), with the
    threshold at 0.1 (cobalt's default); stat='spearman' the rank correlations."""
    X, dose, y, w = data
    ax = love_plot(X, dose, w, order="data")
    table = balance_table(X, dose, w, stats="corr")
    unadjusted, adjusted = ax.get_lines()[:2]
    assert_array_equal(unadjusted.get_xdata(), np.abs(table["corr_un"].to_numpy()))
    assert_array_equal(adjusted.get_xdata(), np.abs(table["corr_adj"].to_numpy()))
    assert [line.get_xdata()[0] for line in ax.get_lines() if line.get_gid() == "threshold"] == [0.1]
    assert ax.get_xlabel() == "Absolute Treatment-Covariate Correlation"
    spearman = love_plot(X, dose, w, stat="spearman", order="data", ax=plt.subplots()[1])
    table = balance_table(X, dose, w, stats="spearman")
    assert_array_equal(spearman.get_lines()[1].get_xdata(), np.abs(table["spearman_adj"].to_numpy()))
