"""polars and pyarrow tables (and any Arrow PyCapsule or interchange-protocol DataFrame) work wherever a pandas
DataFrame does, string columns included: every result equals, bit for bit, the result from the same data in pandas
(the conversion happens once, in balance._validation.as_pandas, before any check)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from balance import EntropyBalance, PropensityWeights, WeightedEffect, balance_table
from balance._treatment import check_treatment
from balance._validation import as_pandas
from balance.datasets import load_lalonde

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")


class ArrowStreamOnly:
    """A foreign table that offers nothing but the Arrow PyCapsule stream (as DuckDB or a custom engine might)."""

    def __init__(self, table):
        self._table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._table.__arrow_c_stream__(requested_schema)


class InterchangeOnly:
    """A foreign table that offers nothing but the DataFrame interchange protocol."""

    def __init__(self, table):
        self._table = table

    def __dataframe__(self, nan_as_null=False, allow_copy=True):
        return self._table.__dataframe__(nan_as_null=nan_as_null, allow_copy=allow_copy)


@pytest.fixture(scope="module")
def data():
    d = load_lalonde()
    # race as plain strings: a text column, turned into levels by the package as pandas' would be
    X = d.X.reset_index(drop=True).assign(race=d.X["race"].astype(str).to_numpy())
    return X, d.treatment.to_numpy(), d.y.to_numpy()


FRAMES = {
    "polars": pl.from_pandas,
    "pyarrow": lambda X: pa.Table.from_pandas(X, preserve_index=False),
    "arrow-record-batch": lambda X: pa.RecordBatch.from_pandas(X, preserve_index=False),
    "arrow-stream-only": lambda X: ArrowStreamOnly(pa.Table.from_pandas(X, preserve_index=False)),
    "interchange-only": lambda X: InterchangeOnly(pa.Table.from_pandas(X, preserve_index=False)),
}
COLUMNS = {
    "polars": lambda v: pl.Series("v", v),
    "pyarrow": pa.array,
    "arrow-record-batch": lambda v: pa.chunked_array([v[:100], v[100:]]),
    "arrow-stream-only": lambda v: ArrowStreamOnly(pa.chunked_array([v])),
    "interchange-only": pa.array,  # the protocol is for tables; columns come as Arrow arrays
}


@pytest.mark.parametrize("kind", FRAMES)
def test_tables_convert_with_their_column_names_and_string_columns(data, kind):
    X, _, _ = data
    converted = as_pandas(FRAMES[kind](X))
    assert isinstance(converted, pd.DataFrame)
    assert list(converted.columns) == list(X.columns)
    assert converted["race"].tolist() == X["race"].tolist()
    assert_array_equal(converted["re74"].to_numpy(), X["re74"].to_numpy())


@pytest.mark.parametrize("kind", FRAMES)
@pytest.mark.parametrize("make", [lambda: PropensityWeights(estimand="ATT"), lambda: EntropyBalance()],
                         ids=["PropensityWeights", "EntropyBalance"])
def test_weighters_give_the_pandas_weights_bit_for_bit(data, kind, make):
    X, a, _ = data
    reference = make().fit(X, a)
    fitted = make().fit(FRAMES[kind](X), COLUMNS[kind](a))
    assert_array_equal(np.asarray(fitted.weights_), np.asarray(reference.weights_))
    assert list(fitted.feature_names_in_) == list(X.columns)
    # new data in the foreign format for the fitted model
    if hasattr(fitted, "predict_weights"):
        assert_array_equal(np.asarray(fitted.predict_weights(FRAMES[kind](X), COLUMNS[kind](a))),
                           np.asarray(reference.predict_weights(X, a)))


@pytest.mark.parametrize("kind", ["polars", "pyarrow"])
def test_balance_table_and_effect_equal_pandas(data, kind):
    X, a, y = data
    w = PropensityWeights(estimand="ATT").fit(X, a).weights_.to_numpy()
    sw = np.linspace(0.5, 1.5, len(a))
    expected = balance_table(X, a, w, estimand="ATT", sample_weight=sw)
    got = balance_table(FRAMES[kind](X), COLUMNS[kind](a), COLUMNS[kind](w), estimand="ATT",
                        sample_weight=COLUMNS[kind](sw))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    ref = WeightedEffect(PropensityWeights(estimand="ATT")).fit(X, a, y)
    fit = WeightedEffect(PropensityWeights(estimand="ATT")).fit(FRAMES[kind](X), COLUMNS[kind](a), COLUMNS[kind](y))
    assert (fit.estimate_, fit.se_) == (ref.estimate_, ref.se_)


def test_string_and_enum_treatments_from_polars():
    labels = ["b", "a", "c", "a", "b", "c"]
    t = check_treatment(pl.Series("t", labels))
    assert t.kind == "multi-category" and t.levels == ("a", "b", "c")
    # a polars Enum declares its level order, as a pandas Categorical does
    t = check_treatment(pl.Series("t", labels, dtype=pl.Enum(["c", "b", "a"])))
    assert t.levels == ("c", "b", "a")
    # a binary text treatment still needs treated= (the package never guesses)
    with pytest.raises(ValueError, match="treated="):
        check_treatment(pa.array(["x", "y", "x", "y"]))
    assert check_treatment(pa.array(["x", "y", "x", "y"]), treated="y").a.tolist() == [0, 1, 0, 1]


def test_foreign_missing_values_are_reported_like_pandas_ones(data):
    X, a, _ = data
    X = X.copy()
    X.loc[3, "re74"] = np.nan
    with pytest.raises(ValueError, match="'re74' has 1 missing values"):
        PropensityWeights().fit(pl.from_pandas(X, nan_to_null=True), a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = PropensityWeights(missing="indicator").fit(pl.from_pandas(X, nan_to_null=True), a)
        reference = PropensityWeights(missing="indicator").fit(X, a)
    assert_array_equal(np.asarray(fitted.weights_), np.asarray(reference.weights_))


def test_plots_take_polars_tables(data):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from balance.plot import balance_plot, love_plot

    X, a, _ = data
    w = PropensityWeights(estimand="ATT").fit(X, a).weights_.to_numpy()
    ours = love_plot(pl.from_pandas(X), pl.Series(a), pl.Series(w), order="given")
    theirs = love_plot(X, a, w, order="given")
    assert [t.get_text() for t in ours.get_yticklabels()] == [t.get_text() for t in theirs.get_yticklabels()]
    for mine, ref in zip(ours.get_lines(), theirs.get_lines()):
        assert_array_equal(mine.get_xdata(), ref.get_xdata())
    bars = balance_plot(pl.from_pandas(X), pl.Series(a), "race", w)
    assert [t.get_text() for t in bars.get_xticklabels()] == ["black", "hispan", "white"]
    plt.close("all")


def test_bootstrap_and_subgroup_weighting_take_polars_tables(data):
    from balance.weights import SubgroupWeights

    X, a, y = data
    ref = WeightedEffect(PropensityWeights(estimand="ATT"), vcov="bootstrap", n_bootstrap=20,
                         random_state=1).fit(X, a, y)
    fit = WeightedEffect(PropensityWeights(estimand="ATT"), vcov="bootstrap", n_bootstrap=20,
                         random_state=1).fit(pl.from_pandas(X), pl.Series(a), pl.Series(y))
    assert (fit.estimate_, fit.se_) == (ref.estimate_, ref.se_)  # the same replicates, row for row
    sub_ref = SubgroupWeights(PropensityWeights(estimand="ATT"), by="married").fit(X, a)
    sub = SubgroupWeights(PropensityWeights(estimand="ATT"), by="married").fit(pl.from_pandas(X), pl.Series(a))
    assert_array_equal(np.asarray(sub.weights_), np.asarray(sub_ref.weights_))
