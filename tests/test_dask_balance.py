"""balance_table, effective_sample_size and weight_summary on dask input against the in-memory path.

The reference is the in-memory implementation, itself tested against R cobalt/WeightIt (tests/test_diagnostics.py
and friends). The dask path sums the same terms in another order (per block, then merged in a tree), so results
agree to rounding: tolerance rtol=1e-9 (the issue's), with atol=1e-12 for statistics near zero (an SMD of exactly
balanced groups is a difference of means of order 1 whose rounding is ~1e-15 in absolute terms, so a relative
tolerance means nothing there).
"""


import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")

from balance.diagnostics import _dask_balance, balance_table, effective_sample_size, weight_summary  # noqa: E402

RTOL, ATOL = 1e-9, 1e-12
LOADS = []  # partitions read, for the test that counts passes


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def make_data(n=600, seed=0, levels=2, offset=False):
    """Covariates of every kind, a treatment (the first 60 rows all treated, so that one partition holds a single
    group), balancing-like weights and sampling weights; ``offset``: a column ``big`` = 1e9 + N(0, 1)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    X = pd.DataFrame({
        "x1": x1,
        "big": 1e9 + rng.normal(size=n),  # naive sums of squares lose every digit of its SD
        "count": rng.poisson(3, size=n).astype(float),
        "dummy": rng.integers(0, 2, size=n).astype(float),
        "two": np.where(rng.random(n) < 0.3, 2.0, 5.0),  # two-valued without a 0: coded 1 for 5
        "flag": rng.random(n) < 0.4,
        "race": pd.Categorical(rng.choice(["a", "b", "c"], size=n), categories=["c", "a", "b", "unused"]),
        "sex": pd.Categorical(rng.choice(["F", "M"], size=n)),
        "skew": np.exp(2 * rng.normal(size=n)),
    }, index=pd.Index(np.arange(n) * 7 + 3, name="id"))
    if not offset:  # its SMD is a difference of two means near 1e9, known to ~1e-7 only: tested on its own
        X = X.drop(columns="big")
    p = 1 / (1 + np.exp(-(0.5 * x1 + 0.3 * X["dummy"] - 0.2)))
    if levels == 2:
        t = (rng.random(n) < p).astype(int)
        t[:60] = 1
    else:
        t = np.where(rng.random(n) < p, "b", np.where(rng.random(n) < 0.5, "a", "c"))
        t[:60] = "b"
    w = np.where(t == 1, 1.0, p / (1 - p)) if levels == 2 else 1 / (0.2 + rng.random(n))
    w[70] = 0.0  # a zero weight
    sw = rng.uniform(0.5, 2.0, size=n)
    return X, pd.Series(t, index=X.index), pd.Series(w, index=X.index), pd.Series(sw, index=X.index)


BOUNDS = [(0, 50), (50, 50), (50, 340), (340, 345), (345, None)]  # uneven, one empty, the first one all treated


def _load(frame, bounds):
    LOADS.append(bounds)
    return frame.iloc[bounds[0]:bounds[1]]


def to_dask(frame):
    """``frame`` as a dask collection with the uneven partitions BOUNDS (unknown divisions)."""
    out = dd.from_map(_load, [frame] * len(BOUNDS), BOUNDS, meta=frame.iloc[:0], enforce_metadata=False)
    return out


def assert_tables_equal(mem, dsk, drop=()):
    ess = (dsk.ess, mem.ess)
    mem, dsk = mem.drop(index=list(drop)), dsk.drop(index=list(drop))
    assert list(dsk.columns) == list(mem.columns)
    assert dsk.index.equals(mem.index)
    assert (dsk["type"] == mem["type"]).all()
    numeric = mem.select_dtypes("number").columns
    np.testing.assert_allclose(dsk[numeric].to_numpy(float), mem[numeric].to_numpy(float), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ess[0].to_numpy(), ess[1].to_numpy(), rtol=RTOL)
    assert ess[0].index.equals(ess[1].index) and ess[0].columns.equals(ess[1].columns)


def dask_inputs(X, t, w, sw):
    frame = to_dask(X.assign(_t=t, _w=w, _sw=sw))
    return frame[list(X.columns)], frame["_t"], frame["_w"], frame["_sw"]


@pytest.mark.parametrize("estimand", ["ATT", "ATE", "ATC"])
@pytest.mark.parametrize("sampled", [False, True])
def test_binary_matches_memory(estimand, sampled):
    X, t, w, sw = make_data()
    dX, dt, dw, dsw = dask_inputs(X, t, w, sw)
    kwargs = dict(estimand=estimand, display=("means", "sds"), thresholds={"smd": 0.1, "ks": 0.2})
    mem = balance_table(X, t, w * (sw if sampled else 1), sample_weight=sw if sampled else None, **kwargs)
    dsk = balance_table(dX, dt, dw * (dsw if sampled else 1), sample_weight=dsw if sampled else None, **kwargs)
    assert_tables_equal(mem, dsk)
    assert list(dsk.index) == ["x1", "count", "dummy", "two", "flag", "race_c", "race_a", "race_b", "sex_M",
                               "skew"]  # an unused declared level dropped, a two-level factor one row
    assert (dsk.ks_error.to_numpy() == 0).all()  # fewer distinct values per row than bins: exact KS
    assert dsk.tally["smd"].equals(mem.tally["smd"])
    assert "ks_error 0 (all exact)" in repr(dsk)


def test_partitions_summarised_in_chunks_match_memory(monkeypatch):
    """A partition longer than CHUNK_ROWS is summarised chunk by chunk and the chunks merged like partitions (its
    temporary arrays bounded): the same table as in memory, dask DataFrame and dask array inputs alike."""
    monkeypatch.setattr(_dask_balance, "CHUNK_ROWS", 7)
    X, t, w, sw = make_data(seed=3)
    dX, dt, dw, dsw = dask_inputs(X, t, w, sw)
    kwargs = dict(estimand="ATE", display=("means", "sds"))
    assert_tables_equal(balance_table(X, t, w * sw, sample_weight=sw, **kwargs),
                        balance_table(dX, dt, dw * dsw, sample_weight=dsw, **kwargs))
    numeric = X.select_dtypes("number").astype(float)
    arrays = [da.from_array(v.to_numpy(), chunks=40) for v in (numeric, t, w)]
    assert_tables_equal(balance_table(numeric.to_numpy(), t.to_numpy(), w.to_numpy()), balance_table(*arrays))


def test_options_match_memory():
    X, t, w, sw = make_data(seed=1)
    dX, dt, dw, _ = dask_inputs(X, t, w, sw)
    for kwargs in (dict(sd_denom="all", binary="std", continuous="raw"), dict(stats=["ks", "smd"]),
                   dict(sd_denom="pooled", stats="vratio")):
        assert_tables_equal(balance_table(X, t, w, **kwargs), balance_table(dX, dt, dw, **kwargs))
    assert_tables_equal(balance_table(X, t), balance_table(dX, dt))  # unadjusted only


@pytest.mark.parametrize("kwargs", [dict(), dict(pairwise=False), dict(treated="b", estimand="ATT")])
def test_multi_category_matches_memory(kwargs):
    X, t, w, sw = make_data(levels=3)
    dX, dt, dw, _ = dask_inputs(X, t, w, sw)
    mem = balance_table(X, t, w, display=("means", "sds"), **kwargs)
    dsk = balance_table(dX, dt, dw, display=("means", "sds"), **kwargs)
    assert_tables_equal(mem, dsk)
    assert dsk.ks_error.index.equals(mem.index)


def test_treatment_kinds_and_a_fitted_weighter():
    """A boolean and a categorical treatment (declared order, an unused level) as in memory; a fitted weighter
    whose weights_ and sample_weight_ are dask Series (as dask-fitted weighters give them): its estimand and
    sampling weights are used, a different sample_weight is caught block by block."""
    from balance import PropensityWeights

    X, t, w, sw = make_data(seed=11)
    tc = pd.Series(pd.Categorical(np.where(t == 1, "yes", "no"), categories=["yes", "no", "maybe"]), index=X.index)
    for treatment, kwargs in ((t.astype(bool), {}), (tc, {"treated": "yes"})):
        dX, dt, dw, _ = dask_inputs(X, treatment, w, sw)
        assert_tables_equal(balance_table(X, treatment, w, **kwargs), balance_table(dX, dt, dw, **kwargs))
    dX, dt, _, _ = dask_inputs(X, t, w, sw)
    pw = PropensityWeights(estimand="ATT").fit(X[["x1", "count", "dummy"]], t, sample_weight=sw)
    mem = balance_table(X, t, pw)
    pw.weights_ = to_dask(pd.DataFrame({"w": pw.weights_}))["w"]
    pw.sample_weight_ = to_dask(pd.DataFrame({"sw": sw}))["sw"]
    assert_tables_equal(mem, balance_table(dX, dt, pw))
    assert_tables_equal(mem, balance_table(dX, dt, pw, sample_weight=to_dask(pd.DataFrame({"sw": sw}))["sw"]))
    with pytest.raises(ValueError, match="sample_weight differs from the sampling weights the weighter was fitted"):
        balance_table(dX, dt, pw, sample_weight=to_dask(pd.DataFrame({"sw": sw * 2}))["sw"])
    with pytest.raises(ValueError, match="estimand='ATE' conflicts with the fitted weighter's estimand"):
        balance_table(dX, dt, pw, estimand="ATE")


def test_dask_array_input():
    X, t, w, _ = make_data(seed=2)
    numbers = X[["x1", "count", "dummy", "skew"]].to_numpy()
    chunks = ((50, 0, 290, 260),)
    dX = da.from_array(numbers, chunks=(chunks[0], (2, 2)))  # column blocks too: rechunked
    dt, dw = da.from_array(t.to_numpy(), chunks=chunks), da.from_array(w.to_numpy(), chunks=((300, 300),))
    assert_tables_equal(balance_table(numbers, t.to_numpy(), w.to_numpy(), display="sds"),
                        balance_table(dX, dt, dw, display="sds"))


def test_sd_of_a_large_offset_is_exact():
    """1e9 + N(0, 1): SDs and variance ratios exact to 1e-12 against the SDs of the values with the offset removed
    (an exact subtraction), where the textbook one-pass formula sum(x²)/n − mean² loses every digit (shown below,
    so that the test can fail). The SMD is a difference of two means near 1e9, each known to its ulp (1.2e-7), so
    it is checked to 3e-7 in absolute terms (2.5 ulps of 1e9 over an SD near 1)."""
    X, t, w, sw = make_data(seed=3, offset=True)
    dX, dt, dw, _ = dask_inputs(X, t, w, sw)
    mem, dsk = (balance_table(data, treat, weights, display="sds", estimand="ATT")
                for data, treat, weights in ((X, t, w), (dX, dt, dw)))
    y, a = X["big"].to_numpy() - 1e9, t.to_numpy()
    for level in (0, 1):
        exact = np.std(y[a == level], ddof=1)
        assert dsk.loc["big", f"sd_{level}_un"] == pytest.approx(exact, rel=1e-12)
        assert mem.loc["big", f"sd_{level}_un"] == pytest.approx(exact, rel=1e-12)
    exact_vr = np.var(y[a == 1], ddof=1) / np.var(y[a == 0], ddof=1)
    assert dsk.loc["big", "vratio_un"] == pytest.approx(exact_vr, rel=1e-12)
    exact_smd = (y[a == 1].mean() - y[a == 0].mean()) / np.std(y[a == 1], ddof=1)
    assert dsk.loc["big", "smd_un"] == pytest.approx(exact_smd, abs=3e-7)
    assert_tables_equal(mem, dsk, drop=["big"])
    treated = X["big"].to_numpy()[a == 1]
    with np.errstate(invalid="ignore"):  # the naive variance can come out negative
        naive = np.sqrt((np.sum(treated**2) / treated.size - treated.mean() ** 2) * treated.size / (treated.size - 1))
    assert not abs(naive - np.std(y[a == 1], ddof=1)) < 0.1  # nan or far off


def test_ks_within_its_stated_bound(monkeypatch):
    """With few bins the KS of continuous rows is a lower bound; the exact (in-memory) KS lies within
    [ks, ks + ks_error], the error is positive somewhere and no larger than the largest bin mass allows."""
    monkeypatch.setattr(_dask_balance, "KS_BINS", 9)
    X, t, w, sw = make_data(seed=4)
    dX, dt, dw, _ = dask_inputs(X, t, w, sw)
    mem, dsk = balance_table(X, t, w), balance_table(dX, dt, dw)
    for column in ("ks_un", "ks_adj"):
        exact, low, err = mem[column].to_numpy(), dsk[column].to_numpy(), dsk.ks_error[column].to_numpy()
        assert np.all(low <= exact + ATOL) and np.all(exact <= low + err + ATOL)
    assert dsk.ks_error.loc[["x1", "skew"]].to_numpy().min() > 0
    assert (dsk.ks_error.loc[["dummy", "flag", "race_a"]].to_numpy() == 0).all()  # binary rows are exact
    # the other statistics do not depend on the bins
    np.testing.assert_allclose(dsk["smd_adj"], mem["smd_adj"], rtol=RTOL, atol=ATOL)
    assert "ks_error" in repr(dsk) and "all exact" not in repr(dsk)


def test_two_passes():
    """Each partition is read twice (the two passes) and nothing else is computed from the data."""
    X, t, w, sw = make_data(seed=5)
    dX, dt, dw, _ = dask_inputs(X, t, w, sw)
    LOADS.clear()
    balance_table(dX, dt, dw)
    assert sorted(LOADS, key=str) == sorted(BOUNDS * 2, key=str)


@pytest.mark.parametrize("levels", [2, 3])
def test_ess_and_weight_summary_match_memory(levels):
    X, t, w, _ = make_data(levels=levels, seed=6)
    frame = to_dask(pd.DataFrame({"t": t, "w": w}))
    dt, dw = frame["t"], frame["w"]
    np.testing.assert_allclose(effective_sample_size(dw, dt), effective_sample_size(w, t), rtol=RTOL)
    assert effective_sample_size(dw) == pytest.approx(effective_sample_size(w), rel=RTOL)
    mem, dsk = weight_summary(w, t, n_top=4), weight_summary(dw, dt, n_top=4)
    assert dsk.table.index.equals(mem.table.index) and dsk.table.columns.equals(mem.table.columns)
    np.testing.assert_allclose(dsk.table.to_numpy(), mem.table.to_numpy(), rtol=RTOL)
    for group in mem.top:
        pd.testing.assert_series_equal(dsk.top[group], mem.top[group], check_index_type=False)


def test_weight_summary_arrays_ties_and_continuous():
    rng = np.random.default_rng(7)
    w = np.round(rng.exponential(size=500), 1)  # many ties: the largest keep row order
    t = rng.integers(0, 2, 500)
    dw, dt = da.from_array(w, chunks=((100, 0, 250, 150),)), da.from_array(t, chunks=((100, 0, 250, 150),))
    mem, dsk = weight_summary(w, t, n_top=8), weight_summary(dw, dt, n_top=8)
    np.testing.assert_allclose(dsk.table.to_numpy(), mem.table.to_numpy(), rtol=RTOL)
    for group in mem.top:
        assert dsk.top[group].index.tolist() == mem.top[group].index.tolist()
    dose = rng.normal(size=500)  # continuous: one group, all (more distinct values than MAX_LEVELS per block?)
    ddose = da.from_array(dose, chunks=((100, 0, 250, 150),))
    np.testing.assert_allclose(weight_summary(dw, ddose).table, weight_summary(w, dose).table, rtol=RTOL)
    np.testing.assert_allclose(effective_sample_size(dw, ddose), effective_sample_size(w, dose), rtol=RTOL)


def test_scale_free_statistics_of_huge_weights():
    """Weights of 1e200: no square overflows (power-of-two rescaling), as in memory."""
    X, t, w, _ = make_data(seed=8)
    frame = to_dask(pd.DataFrame({"t": t, "w": w * 1e200}))
    np.testing.assert_allclose(effective_sample_size(frame["w"], frame["t"]), effective_sample_size(w, t),
                               rtol=RTOL)
    dX, dt, dw, _ = dask_inputs(X, t, w * 1e200, w)
    assert_tables_equal(balance_table(X, t, w * 1e200), balance_table(dX, dt, dw))


def test_errors_name_the_input_and_the_fix():
    X, t, w, sw = make_data(seed=9)
    dX, dt, dw, _ = dask_inputs(X, t, w, sw)
    bad = X.copy()
    bad.iloc[[5, 400], 0] = np.nan
    with pytest.raises(ValueError, match="covariate 'x1' has 2 missing values.*drop or impute"):
        balance_table(dask_inputs(bad, t, w, sw)[0], dt, dw)
    negative = w.copy()
    negative.iloc[[3, 500, 501]] = -1.0
    with pytest.raises(ValueError, match="weights has 3 negative values"):
        balance_table(dX, dt, dask_inputs(X, t, negative, sw)[2])
    with pytest.raises(ValueError, match="weights has 2 negative values"):
        effective_sample_size(dask_inputs(X, t, negative.where(negative.index > 30, 1.0), sw)[2])
    with pytest.raises(TypeError, match="treatment is a ndarray but X is a dask collection"):
        balance_table(dX, t.to_numpy(), dw)
    with pytest.raises(ValueError, match="treatment has 2 partitions but X has 5"):
        balance_table(dX, dd.from_pandas(t, npartitions=2), dw)
    with pytest.raises(ValueError, match="stats='ovl' is not available for dask input"):
        balance_table(dX, dt, dw, stats="ovl")
    with pytest.raises(ValueError, match="interactions= is not available for dask input"):
        balance_table(dX, dt, dw, interactions=True)
    with pytest.raises(TypeError, match="covariate 'txt' is text; on dask input make it categorical"):
        balance_table(dask_inputs(X.assign(txt=np.where(t == 1, "u", "v")), t, w, sw)[0], dt, dw)
    unknown = dX.assign(race=dX["race"].cat.as_unknown())
    with pytest.raises(ValueError, match="unknown categories; call X\\['race'\\] = X\\['race'\\].cat.as_known"):
        balance_table(unknown, dt, dw)
    zero_control = w.where(t == 1, 0.0)
    with pytest.raises(ValueError, match="weights is zero for every control unit"):
        balance_table(dX, dt, dask_inputs(X, t, zero_control, sw)[2])
    with pytest.raises(ValueError, match="weights is zero for every control unit"):
        effective_sample_size(dask_inputs(X, t, zero_control, sw)[2], dt)
    with pytest.raises(ValueError, match="balance_table on dask input supports binary and multi-category"):
        balance_table(dX, dask_inputs(X, pd.Series(np.arange(600.0), index=X.index), w, sw)[1], dw)


def test_local_cluster_of_processes(process_cluster):
    """The same table on a LocalCluster of two worker processes (everything sent to workers pickles)."""
    distributed = pytest.importorskip("distributed")
    X, t, w, sw = make_data(seed=10)
    dX, dt, dw, _ = dask_inputs(X, t, w, sw)
    with dask.config.set(scheduler=process_cluster), distributed.get_task_stream(process_cluster) as stream:
        dsk = balance_table(dX, dt, dw, estimand="ATT")
        summary = weight_summary(dw, dt)
    assert stream.data  # the cluster's workers computed the blocks, not this process
    assert_tables_equal(balance_table(X, t, w, estimand="ATT"), dsk)
    np.testing.assert_allclose(summary.table.to_numpy(), weight_summary(w, t).table.to_numpy(), rtol=RTOL)
