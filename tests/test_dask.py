"""Dask input (issue 18): the weight models and WeightedEffect on dask collections give the in-memory results.

The reference is the package's own in-memory path on the same rows, which the oracle tests tie to WeightIt. The
dask path sums the same per-row pieces in another order (per partition, then a tree), so results agree to rounding:
every comparison uses a relative tolerance of 1e-9 (the sums differ by about 1e-15 relative; Newton's solution and
the sandwich amplify that by the condition numbers, far below 1e-9 here). The partitions are uneven on purpose:
one is empty, one holds only controls, one only treated units, one a handful of rows.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import balance

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")

from balance import CBPS, EntropyBalance, InverseProbabilityTilting, PropensityWeights, WeightedEffect  # noqa: E402
from balance.weights import _estimands  # noqa: E402

RTOL = 1e-9
COVARIATES = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def frame(lalonde):
    """lalonde sorted by treatment (controls first), with sampling weights; index the lalonde ids."""
    df = lalonde.sort_values("treat", kind="stable").copy()
    df["sw"] = np.linspace(0.5, 2.0, len(df))
    df["cl"] = np.arange(len(df)) % 37  # clusters that span partitions
    df["high"] = (df["re78"] > df["re78"].median()).astype(float)
    return df


def _pieces(df):
    """Uneven partitions: 7 controls, an empty one, controls only, mixed, treated only."""
    return [df.iloc[:7], df.iloc[:0], df.iloc[7:300], df.iloc[300:500], df.iloc[500:]]


@pytest.fixture(scope="module")
def ddf(frame):
    parts = _pieces(frame)
    assert {len(p) for p in parts} >= {0, 7} and parts[2]["treat"].nunique() == 1 and parts[4]["treat"].nunique() == 1
    return dd.from_delayed([dask.delayed(p) for p in parts], meta=frame.iloc[:0], verify_meta=False)


def _close(actual, expected, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=0)


# -- PropensityWeights --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimand, clip", [("ATE", None), ("ATT", None), ("ATC", (0.05, 0.95)), ("ATO", None),
                                            ("ATM", None), ("ATOS", (0.1, 0.9))])
def test_propensity_weights_on_dask_match_in_memory(frame, ddf, estimand, clip):
    mem = PropensityWeights(estimand, clip=clip).fit(frame[COVARIATES], frame["treat"], sample_weight=frame["sw"])
    lazy = PropensityWeights(estimand, clip=clip).fit(ddf[COVARIATES], ddf["treat"], sample_weight=ddf["sw"])
    weights = lazy.weights_.compute()
    pd.testing.assert_index_equal(weights.index, mem.weights_.index)  # the rows keep their labels and order
    _close(weights, mem.weights_)
    _close(lazy.ps_.compute(), mem.ps_)
    _close(np.r_[lazy.intercept_, lazy.coef_], np.r_[mem.intercept_, mem.coef_])
    _close(lazy.coef_table_["std_err"], mem.coef_table_["std_err"])
    _close(lazy.ess_, mem.ess_)
    _close(lazy.max_weight_share_, mem.max_weight_share_)
    assert (lazy.converged_, lazy.n_iter_) == (mem.converged_, mem.n_iter_)
    assert (lazy.n_clipped_, lazy.n_bounded_, lazy.n_trimmed_) == (mem.n_clipped_, mem.n_bounded_, mem.n_trimmed_)
    assert lazy.terms_ == mem.terms_ and lazy.treatment_levels_ == mem.treatment_levels_
    if estimand == "ATOS":
        assert lazy.atos_alpha_ == pytest.approx(mem.atos_alpha_, rel=1e-12)


def test_balance_table_of_a_weighter_fitted_on_dask(frame, ddf):
    """The fitted weighter's lazy weights go straight into the dask balance table (balance/diagnostics)."""
    lazy = EntropyBalance("ATT").fit(ddf[COVARIATES], ddf["treat"])
    mem = EntropyBalance("ATT").fit(frame[COVARIATES], frame["treat"])
    table = balance.balance_table(ddf[COVARIATES], ddf["treat"], lazy)
    expected = balance.balance_table(frame[COVARIATES], frame["treat"], mem)
    np.testing.assert_allclose(table["smd_adj"], expected["smd_adj"], rtol=0, atol=1e-12)  # SMDs of ~1e-16


def test_crump_alpha_search_refines_intervals(frame, ddf, monkeypatch):
    """With a coarse grid and a tiny gathering limit the search refines intervals over several passes; α is still
    the in-memory one (the same fixed point of γ = 2 E[g | g ≤ γ])."""
    monkeypatch.setattr(_estimands, "_CRUMP_GRID", 4)
    monkeypatch.setattr(_estimands, "_CRUMP_COLLECT", 3)
    mem = PropensityWeights("ATOS").fit(frame[COVARIATES], frame["treat"])
    lazy = PropensityWeights("ATOS").fit(ddf[COVARIATES], ddf["treat"])
    assert mem.atos_alpha_ > 0
    assert lazy.atos_alpha_ == pytest.approx(mem.atos_alpha_, rel=1e-12)


def test_fitted_on_dask_pickles(ddf):
    """A weighter fitted on dask input pickles (its lazy weights and the blocks they come from)."""
    import pickle

    fitted = PropensityWeights("ATT").fit(ddf[COVARIATES], ddf["treat"])
    again = pickle.loads(pickle.dumps(fitted))
    _close(again.weights_.compute(), fitted.weights_.compute())


def test_each_pass_reads_every_partition_once(frame):
    """X, treatment and y taken as columns of one dask DataFrame share its read tasks: the data are read once per
    pass (counted where the partitions are made), however many inputs come from them."""
    reads = []

    def read(i):
        reads.append(i)
        return _pieces(frame)[i]

    source = dd.from_map(read, range(5), meta=frame.iloc[:0], enforce_metadata=False)
    pw = PropensityWeights("ATT").fit(source[COVARIATES], source["treat"])
    assert len(reads) == 5 * pw._dask_data.blocks.n_passes
    reads.clear()
    WeightedEffect(PropensityWeights("ATT"), "additive").fit(source[COVARIATES], source["treat"], source["re78"])
    # 15 passes (9 for the weights, 6 for the outcome model and the sandwich); reading X, treatment and y apart
    # would be about three times as many
    assert len(reads) == 5 * 15


def test_dask_arrays(frame):
    """X a 2-d dask array with uneven row chunks, the treatment a dask array with the same chunks."""
    X = frame[["age", "educ", "re74", "re75"]].to_numpy()
    a = frame["treat"].to_numpy()
    chunks = (7, 293, 200, 114)
    lazy = PropensityWeights("ATT").fit(da.from_array(X, chunks=(chunks, 4)), da.from_array(a, chunks=(chunks,)))
    mem = PropensityWeights("ATT").fit(X, a)
    assert isinstance(lazy.weights_, da.Array) and lazy.weights_.chunks[0] == chunks
    _close(lazy.weights_.compute(), mem.weights_)


def test_in_memory_only_functions_refuse_dask_input(ddf):
    """Functions without a dask path say so (before: an AttributeError from pandas' interchange reader)."""
    from balance.hte import DRLearner

    with pytest.raises(TypeError, match="an input is a dask DataFrame, but this function needs the data in memory"):
        DRLearner().fit(ddf[COVARIATES], ddf["treat"], ddf["re78"])


def test_dask_input_errors(frame, ddf):
    X = ddf[COVARIATES]
    fitted = PropensityWeights().fit(frame[COVARIATES], frame["treat"])
    with pytest.raises(TypeError, match="X must be a dask DataFrame or 2-d dask array"):
        PropensityWeights().fit(fitted, ddf["treat"])  # a fitted estimator where the data belong
    with pytest.raises(TypeError, match="X must be a dask DataFrame"):
        PropensityWeights().fit(ddf["age"], ddf["treat"])
    other = dd.from_pandas(frame, npartitions=3)
    with pytest.raises(ValueError, match="not aligned: partitions"):
        PropensityWeights().fit(X, other["treat"])
    shifted = dd.from_delayed([dask.delayed(p) for p in _pieces(frame.iloc[1:])], meta=frame.iloc[:0], verify_meta=False)
    with pytest.raises(ValueError, match="not aligned: (one partition has|treatment's index differs)"):
        PropensityWeights().fit(X, shifted["treat"])
    # the same rows in another order within each partition (divisions unknown, so only the index can tell): an
    # error, not weights or an effect paired with the wrong units
    reordered = dd.from_delayed([dask.delayed(p.iloc[::-1]) for p in _pieces(frame)], meta=frame.iloc[:0],
                                verify_meta=False)
    with pytest.raises(ValueError, match="not aligned: treatment's index differs from X's"):
        PropensityWeights().fit(X, reordered["treat"])
    with pytest.raises(ValueError, match="not aligned: y's index differs from X's"):
        WeightedEffect(PropensityWeights("ATT")).fit(X, ddf["treat"], reordered["re78"])
    with pytest.raises(TypeError, match="must be a dask collection"):
        PropensityWeights().fit(X, frame["treat"])
    with pytest.raises(ValueError, match=r"unknown categories; call X = X.categorize\(\)"):
        PropensityWeights().fit(X.assign(race=X["race"].cat.as_unknown()), ddf["treat"])
    with pytest.raises(ValueError, match=r"holds text; make it categorical"):
        PropensityWeights().fit(X.assign(race=X["race"].astype(object)), ddf["treat"])
    with pytest.raises(TypeError, match="does not accept dask input: a scikit-learn model"):
        PropensityWeights(model="precomputed").fit(X, ddf["treat"])
    with pytest.raises(TypeError, match="predicting weights for dask input is not available"):
        PropensityWeights().fit(frame[COVARIATES], frame["treat"]).predict_weights(X, ddf["treat"])
    with pytest.raises(TypeError, match="does not accept dask input: trimming"):
        PropensityWeights(trim=0.9).fit(X, ddf["treat"])
    with pytest.raises(ValueError, match="binary treatments only"):
        PropensityWeights().fit(ddf[["age", "educ"]], ddf["race"])
    with pytest.raises(ValueError, match="are constant"):
        PropensityWeights().fit(X.assign(one=1.0), ddf["treat"])
    with pytest.raises(ValueError, match="perfectly collinear"):
        PropensityWeights().fit(X.assign(age2=X["age"] * 2.0), ddf["treat"])
    with pytest.raises(ValueError, match="sample_weight has 1 negative"):
        PropensityWeights().fit(X, ddf["treat"], sample_weight=ddf["sw"].where(ddf["sw"] > 0.5, -1.0))


def test_import_does_not_import_dask():
    code = "import sys, balance, balance.diagnostics, balance.effects, balance.weights; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name, reason", [("EnergyBalance", "all pairs"), ("StableWeights", "all units at once"),
                                          ("CBIPM", "all pairs"), ("UniformTransformerWeights", "all units")])
def test_methods_needing_all_the_data_refuse_dask(ddf, name, reason):
    import balance

    with pytest.raises(TypeError, match=f"{name} does not accept dask input: .*{reason}"):
        getattr(balance, name)().fit(ddf[["age", "educ"]], ddf["treat"])


# -- EntropyBalance -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimand", ["ATT", "ATC", "ATE"])
def test_entropy_balance_on_dask_matches_in_memory(frame, ddf, estimand):
    mem = EntropyBalance(estimand).fit(frame[COVARIATES], frame["treat"], sample_weight=frame["sw"])
    lazy = EntropyBalance(estimand).fit(ddf[COVARIATES], ddf["treat"], sample_weight=ddf["sw"])
    _close(lazy.weights_.compute(), mem.weights_)
    _close(np.r_[lazy.intercept_, np.ravel(lazy.coef_)], np.r_[mem.intercept_, np.ravel(mem.coef_)])
    _close(lazy.ess_, mem.ess_)
    assert (lazy.converged_, lazy.n_iter_) == (mem.converged_, mem.n_iter_) and lazy.terms_ == mem.terms_
    mem_effect, lazy_effect = (WeightedEffect(EntropyBalance(estimand), "additive").fit(
        data[COVARIATES], data["treat"], data["re78"], sample_weight=data["sw"]) for data in (frame, ddf))
    _same_effect(lazy_effect, mem_effect)


@pytest.mark.parametrize("method", [PropensityWeights("ATE"), CBPS("ATO")])
def test_separation_on_dask_is_reported_not_converged(method):
    """A covariate that predicts the treatment perfectly: the linear-programming test needs the rows in memory,
    so the dask fit reports its symptoms (not converged, a ConvergenceWarning naming them) and its weights stay
    finite; the warnings point at the caller's line."""
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    data = dd.from_pandas(X.assign(t=(X["x"] > 0).astype(int)), npartitions=3)
    with pytest.warns(ConvergenceWarning, match="symptoms of separation.*not run on dask") as record:
        fit = method.fit(data[["x", "z"]], data["t"])
    assert not fit.converged_ and np.isfinite(fit.weights_.compute()).all()
    assert {Path(w.filename).name for w in record} == {Path(__file__).name}


@pytest.mark.parametrize("magnitude", [1e200, 1e-200])
@pytest.mark.parametrize("method", [PropensityWeights, EntropyBalance])
def test_extreme_weights_report_of_huge_and_tiny_sampling_weights(frame, ddf, method, magnitude):
    """Sampling weights of 1e200 (squares overflow) and 1e-200 (squares underflow), with partitions holding one
    treatment group only: the dask ESS and largest share, from per-block sums rescaled by powers of two, equal the
    in-memory ones (before: a FloatingPointError at 1e200, NaN at 1e-200)."""
    mem = method("ATT").fit(frame[COVARIATES], frame["treat"], sample_weight=frame["sw"] * magnitude)
    lazy = method("ATT").fit(ddf[COVARIATES], ddf["treat"], sample_weight=ddf["sw"] * magnitude)
    _close(lazy.ess_, mem.ess_)
    _close(lazy.max_weight_share_, mem.max_weight_share_)


@pytest.mark.parametrize("method, estimand", [(EntropyBalance, "ATT"), (EntropyBalance, "ATE"), (CBPS, "ATT"),
                                             (InverseProbabilityTilting, "ATE")])
def test_tilts_on_large_blocks_use_the_fused_kernel_and_match_in_memory(frame, ddf, method, estimand, monkeypatch):
    """Blocks above _KERNEL_ROWS rows are read by the numba kernel tilt_pass_rows (here every block, the threshold
    set to 0): the same weights and iterations as in memory, signed (CBPS, IPT) and not."""
    from balance._kernels import _tilt as kernels
    from balance.weights import _tilt

    calls, kernel = [], kernels.tilt_pass_rows
    monkeypatch.setattr(_tilt, "_KERNEL_ROWS", 0)
    monkeypatch.setattr(kernels, "tilt_pass_rows", lambda *args: calls.append(1) or kernel(*args))
    mem = method(estimand).fit(frame[COVARIATES], frame["treat"], sample_weight=frame["sw"])
    with dask.config.set(scheduler="synchronous"):  # in this process, where the patches are
        lazy = method(estimand).fit(ddf[COVARIATES], ddf["treat"], sample_weight=ddf["sw"])
        weights = lazy.weights_.compute()
    assert calls  # the kernel ran
    _close(weights, mem.weights_)
    assert (lazy.converged_, lazy.n_iter_) == (mem.converged_, mem.n_iter_)


@pytest.mark.parametrize("method, estimand", [
    (InverseProbabilityTilting, "ATT"), (InverseProbabilityTilting, "ATC"), (InverseProbabilityTilting, "ATE"),
    (CBPS, "ATT"), (CBPS, "ATC"), (CBPS, "ATE"), (CBPS, "ATO")])
def test_logit_balancing_weights_on_dask_match_in_memory(frame, ddf, method, estimand):
    """IPT and the just-identified CBPS: the balance conditions' dual (the logistic MLE for CBPS's ATO) solved by
    the in-memory Newton method with block sums; weights, scores, counts and the stacked sandwich as in memory."""
    mem = method(estimand).fit(frame[COVARIATES], frame["treat"], sample_weight=frame["sw"])
    lazy = method(estimand).fit(ddf[COVARIATES], ddf["treat"], sample_weight=ddf["sw"])
    _close(lazy.weights_.compute(), mem.weights_)
    _close(lazy.ps_.compute(), mem.ps_)
    assert (lazy.converged_, lazy.n_iter_) == (mem.converged_, mem.n_iter_)
    mem_effect, lazy_effect = (WeightedEffect(method(estimand)).fit(
        data[COVARIATES], data["treat"], data["re78"], sample_weight=data["sw"]) for data in (frame, ddf))
    _same_effect(lazy_effect, mem_effect)


def test_entropy_balance_dask_refusals(ddf):
    with pytest.raises(TypeError, match="EntropyBalance with tols.* does not accept dask input"):
        EntropyBalance(tols=0.1).fit(ddf[COVARIATES], ddf["treat"])
    with pytest.raises(TypeError, match="CBPS with over.* does not accept dask input"):
        CBPS(over=True).fit(ddf[COVARIATES], ddf["treat"])
    with pytest.raises(TypeError, match="InverseProbabilityTilting with moments.* does not accept dask input"):
        InverseProbabilityTilting(moments=2).fit(ddf[COVARIATES], ddf["treat"])
    with pytest.raises(balance.InfeasibleBalanceError, match="infeasible"):
        EntropyBalance().fit(ddf[COVARIATES].assign(re74=ddf["re74"] + 1e6 * ddf["treat"]), ddf["treat"])


# -- WeightedEffect ------------------------------------------------------------------------------------------------
def _effects(frame, ddf, estimand, model, vcov, cluster=None, y="re78", **options):
    fits = []
    for data in (frame, ddf):
        fits.append(WeightedEffect(PropensityWeights(estimand), model, vcov, **options).fit(
            data[COVARIATES], data["treat"], data[y], sample_weight=data["sw"],
            cluster=None if cluster is None else data[cluster]))
    return fits


def _same_effect(lazy, mem):
    _close(lazy.result_.estimate, mem.result_.estimate)
    _close(lazy.result_.std_err, mem.result_.std_err)
    _close(np.diag(lazy.result_.vcov), np.diag(mem.result_.vcov))
    _close(lazy.result_.ess, mem.result_.ess)
    assert lazy.result_.vcov_config == mem.result_.vcov_config and lazy.result_.notes == mem.result_.notes
    assert lazy.result_.n_obs == mem.result_.n_obs


@pytest.mark.parametrize("estimand, model, vcov", [
    ("ATE", "simple", "asympt"), ("ATT", "simple", "asympt"), ("ATC", "additive", "asympt"),
    ("ATO", "additive", "asympt"), ("ATM", "simple", "HC0"), ("ATOS", "additive", "asympt"),
    ("ATE", "additive", "HC0")])
def test_weighted_effect_on_dask_matches_in_memory(frame, ddf, estimand, model, vcov):
    mem, lazy = _effects(frame, ddf, estimand, model, vcov)
    _same_effect(lazy, mem)


@pytest.mark.parametrize("model, vcov", [("simple", "asympt"), ("additive", "HC0")])
def test_weighted_effect_on_dask_with_clusters(frame, ddf, model, vcov):
    """Cluster sums are added label by label across partitions: the same G/(G − 1) cluster-robust sandwich."""
    mem, lazy = _effects(frame, ddf, "ATT", model, vcov, cluster="cl")
    _same_effect(lazy, mem)
    assert lazy.result_.vcov_config["clusters"] == 37


def test_weighted_effect_on_dask_binary_outcome(frame, ddf):
    """A 0/1 outcome: the logistic outcome model (Newton on the outcome equations' block sums) and a risk ratio;
    conditioning on the covariates."""
    mem, lazy = _effects(frame, ddf, "ATT", "additive", "asympt", y="high", scale="rr")
    _same_effect(lazy, mem)
    mem, lazy = _effects(frame, ddf, "ATE", "additive", "HC0", condition_on_covariates=True)
    _same_effect(lazy, mem)


@pytest.mark.parametrize("model, y", [("interact", "re78"), ("aipw", "re78"), ("aipw", "high")])
def test_weighted_effect_on_dask_interacted_and_augmented(frame, ddf, model, y):
    """The interacted and augmented (doubly robust) outcome models, a logistic one for the 0/1 outcome: Newton on
    the block sums of the same outcome equations."""
    mem, lazy = _effects(frame, ddf, "ATE", model, "asympt", y=y)
    _same_effect(lazy, mem)


def test_fractional_bootstrap_on_dask(frame, ddf):
    """vcov='fwb': each replicate is the in-memory effect with the sampling weights times the replicate's Exp(1)
    draws (made inside each partition from the replicate's seed), and the same random_state gives the same
    replicates."""
    fits = [WeightedEffect(PropensityWeights("ATT"), "additive", "fwb", n_bootstrap=2, random_state=5).fit(
        ddf[COVARIATES], ddf["treat"], ddf["re78"], sample_weight=ddf["sw"]) for _ in range(2)]
    pd.testing.assert_frame_equal(fits[0].result_.draws, fits[1].result_.draws)
    assert fits[0].se_ == pytest.approx(fits[0].result_.draws["ATT"].std(ddof=1), rel=1e-12)
    problem = fits[0]._problem
    draws = problem.draws(2024).compute()
    assert draws.index.equals(frame.index) and not np.allclose(draws, frame["sw"])
    values, converged = problem.replicate("fwb", None, 2024)
    mem = WeightedEffect(PropensityWeights("ATT"), "additive").fit(frame[COVARIATES], frame["treat"], frame["re78"],
                                                                   sample_weight=draws)
    _close(values, mem.result_.estimate)
    assert converged


@pytest.mark.parametrize("factor", [1e200, 1e-200])
def test_asympt_refuses_covariates_whose_squares_leave_the_float_range(frame, ddf, factor):
    # as in memory: at 1e-200 the squares underflow and the SE came out finite but wrong (763 against 798)
    scaled = ddf.assign(re74=ddf["re74"] * factor)
    with pytest.raises(ValueError, match="beyond 1e150 or below 1e-150"):
        WeightedEffect(PropensityWeights("ATT")).fit(scaled[COVARIATES], scaled["treat"], scaled["re78"])
    in_memory = frame.assign(re74=frame["re74"] * factor)
    with pytest.raises(ValueError, match="beyond 1e150 or below 1e-150"):
        WeightedEffect(PropensityWeights("ATT")).fit(in_memory[COVARIATES], in_memory["treat"], in_memory["re78"])


def test_weighted_effect_dask_refusals(frame, ddf):
    X, t, y = ddf[COVARIATES], ddf["treat"], ddf["re78"]
    first = frame.index[0]
    with pytest.raises(ValueError, match="vcov='bootstrap' is not available for dask input"):
        WeightedEffect(PropensityWeights(), vcov="bootstrap").fit(X, t, y)
    with pytest.raises(ValueError, match="vcov='fwb' with cluster= is not available"):
        WeightedEffect(PropensityWeights(), vcov="fwb").fit(X, t, y, cluster=ddf["cl"])
    with pytest.raises(ValueError, match="y has 1 missing"):
        WeightedEffect(PropensityWeights()).fit(X, t, y.map_partitions(lambda s: s.where(s.index != first)))
    with pytest.raises(ValueError, match="needs a binary"):
        WeightedEffect(PropensityWeights(), scale="rr").fit(X, t, y)


def test_on_a_cluster_of_processes(frame, ddf, process_cluster):
    """The same fit on a distributed cluster of two worker processes: every block evaluator and its fitted state
    is pickled to the workers, and the results are those in memory."""
    distributed = pytest.importorskip("distributed")
    mem = WeightedEffect(PropensityWeights("ATT"), "additive").fit(frame[COVARIATES], frame["treat"], frame["re78"],
                                                                   sample_weight=frame["sw"], cluster=frame["cl"])
    with dask.config.set(scheduler=process_cluster), distributed.get_task_stream(process_cluster) as stream:
        lazy = WeightedEffect(PropensityWeights("ATT"), "additive").fit(ddf[COVARIATES], ddf["treat"], ddf["re78"],
                                                                        sample_weight=ddf["sw"], cluster=ddf["cl"])
        weights = lazy.weighter_.weights_.compute()
    assert len({task["worker"] for task in stream.data}) == 2  # both worker processes ran blocks
    _same_effect(lazy, mem)
    _close(weights, mem.weighter_.weights_)
