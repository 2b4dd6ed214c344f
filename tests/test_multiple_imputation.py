"""Multiple imputation: ImputedEffect, Rubin's rules and balance across imputations.

Reference: ../shared/oracle/weightit-mi (mice 3.15.0's five completed lalonde_mis data sets; WeightIt 1.5.1 glm
weights within each, lm_weightit(re78 ~ treat) with vcov asympt and HC0, Rubin's rules with the Barnard-Rubin df by
hand, cobalt 4.6.1's balance across imputations).

Tolerances: 1e-8 (weights and scores absolute, the rest relative). Our logistic fit runs to tol=1e-12; R's glm stops
at a relative deviance change of 1e-8, so its scores are converged to ~1e-9 only: that is the limiting error, and
every derived number (estimates, SEs, balance) carries it, inside 1e-8.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer

from balance import ImputedEffect, PropensityWeights, WeightedEffect, balance_table
from balance.diagnostics import balance_across_imputations
from balance.effects import rubin_pool

from .conftest import COVARIATES, SHARED, _shared_file

MI = SHARED / "oracle" / "weightit-mi"
RTOL = 1e-8
STAT_NAMES = {"Diff": "smd", "V.Ratio": "vratio", "KS": "ks"}


def _read(name):
    return pd.read_csv(_shared_file(MI / name))


@pytest.fixture(scope="module")
def completed():
    """The five completed data sets (race categorical, as the lalonde fixtures), and treatment and outcome."""
    data = []
    for k in range(1, 6):
        d = _read(f"imputed_{k}.csv").set_index("id")
        d["race"] = pd.Categorical(d["race"], categories=["black", "hispan", "white"])
        data.append(d)
    return [d[COVARIATES] for d in data], data[0]["treat"], data[0]["re78"]


@pytest.fixture(scope="module")
def fitted(completed):
    """ImputedEffect per (estimand, vcov) on the completed data sets."""
    X, t, y = completed
    return {(e, v): ImputedEffect(WeightedEffect(PropensityWeights(estimand=e, tol=1e-12), vcov=v)).fit(X, t, y)
            for e in ("ATT", "ATE") for v in ("asympt", "HC0")}


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_weights_per_imputation_match_weightit(fitted, estimand):
    ref = _read(f"weights/glm_{estimand}.csv")
    mi = fitted[(estimand, "asympt")]
    for k, fit in enumerate(mi.fits_, start=1):
        rows = ref[ref["imp"] == k].set_index("id")
        # 1e-8 absolute or relative: R's glm converges its scores to ~1e-9 only (as in tests/test_propensity.py), so
        # tiny control weights (0.015) differ by ~1.6e-8 relatively and large ATE weights (35) by ~3e-7 absolutely
        np.testing.assert_allclose(fit.weighter_.weights_.loc[rows.index], rows["weight"], rtol=RTOL, atol=1e-8)
        np.testing.assert_allclose(fit.weighter_.ps_.loc[rows.index], rows["ps"], rtol=0, atol=1e-8)


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
@pytest.mark.parametrize("vcov", ["asympt", "HC0"])
def test_estimates_and_ses_per_imputation(fitted, estimand, vcov):
    ref = _read("estimates_by_imputation.csv").query(f"case == 'glm_{estimand}' and vcov == '{vcov}'")
    mi = fitted[(estimand, vcov)]
    # lm_weightit(re78 ~ treat): (Intercept) is the control mean, treat the effect
    for term, row in (("treat", estimand), ("(Intercept)", "mu0")):
        r = ref[ref["term"] == term].set_index("imp").sort_index()
        np.testing.assert_allclose(mi.estimates_[row], r["estimate"], rtol=RTOL)
        np.testing.assert_allclose(np.sqrt(mi.variances_[row]), r["se"], rtol=RTOL)


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
@pytest.mark.parametrize("vcov", ["asympt", "HC0"])
def test_pooled_matches_rubins_rules_by_hand(fitted, estimand, vcov):
    ref = _read("pooled_by_hand.csv").query(f"case == 'glm_{estimand}' and vcov == '{vcov}'").set_index("term")
    mi = fitted[(estimand, vcov)]
    assert mi.dfcom_ == 612  # n - p of lm(re78 ~ treat)
    for term, row in (("treat", estimand), ("(Intercept)", "mu0")):
        ours, r = mi.pooled_.loc[row], ref.loc[term]
        for col, theirs in [("estimate", "estimate"), ("std_err", "se"), ("df", "df"), ("conf_low", "ci_low"),
                            ("conf_high", "ci_high"), ("p_value", "p_value"), ("riv", "riv"), ("lambda", "lambda"),
                            ("fmi", "fmi")]:
            # riv, lambda and fmi rest on B, a variance of nearly equal estimates: relative error amplified by
            # estimate / (its spread over imputations) ~ 30-100, hence 1e-6 for them
            rtol = 1e-6 if col in ("riv", "lambda", "fmi") else RTOL
            # a p-value of 1e-17 magnifies the estimate's relative error by the squared statistic (~80): 1e-15 abs
            atol = 1e-15 if col == "p_value" else 0
            np.testing.assert_allclose(ours[col], r[theirs], rtol=rtol, atol=atol, err_msg=f"{term} {col}")
    assert mi.estimate_ == mi.pooled_.loc[estimand, "estimate"]


def test_rubin_pool_on_the_oracle_inputs():
    """rubin_pool alone, fed the oracle's own per-imputation estimates and SEs (no fitting error): 1e-12."""
    est = _read("estimates_by_imputation.csv")
    ref = _read("pooled_by_hand.csv")
    for (case, vcov), group in est.groupby(["case", "vcov"]):
        q = group.pivot(index="imp", columns="term", values="estimate")
        u = group.pivot(index="imp", columns="term", values="se") ** 2
        out = rubin_pool(q, u, dfcom=612)
        r = ref[(ref["case"] == case) & (ref["vcov"] == vcov)].set_index("term").loc[out.index]
        for col, theirs in [("estimate", "estimate"), ("std_err", "se"), ("df", "df"), ("conf_low", "ci_low"),
                            ("conf_high", "ci_high"), ("riv", "riv"), ("lambda", "lambda"), ("fmi", "fmi"),
                            ("ubar", "ubar"), ("b", "b"), ("t", "t")]:
            np.testing.assert_allclose(out[col], r[theirs], rtol=1e-12, err_msg=f"{case} {vcov} {col}")
        # p-values: the t tail at ~1e-17 differs between R's and scipy's algorithms in the last digits
        np.testing.assert_allclose(out["p_value"], r["p_value"], rtol=1e-12, atol=1e-15)


def test_rubin_pool_closed_forms():
    """Identities: equal estimates give B = 0, T = Ubar, lambda = 0; infinite dfcom gives Rubin's (m-1)/lambda^2."""
    out = rubin_pool([2.0, 2.0, 2.0], [0.25, 0.25, 0.25], dfcom=np.inf).iloc[0]
    assert (out["estimate"], out["std_err"], out["b"], out["lambda"]) == (2.0, 0.5, 0.0, 0.0)
    assert out["df"] == pytest.approx(2 / 1e-8)  # lambda floored at 1e-4 as in mice
    q, u = np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 1.0])
    out = rubin_pool(q, u).iloc[0]
    b = np.var(q, ddof=1)
    lam = (4 / 3) * b / (1 + (4 / 3) * b)
    assert out["t"] == pytest.approx(1 + 4 / 3 * b, rel=1e-14)
    assert out["df"] == pytest.approx(2 / lam**2, rel=1e-14)
    with pytest.raises(ValueError, match="at least 2 imputations"):
        rubin_pool([1.0], [1.0])


@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
@pytest.mark.parametrize("absolute", [False, True])
def test_balance_across_imputations_matches_cobalt(fitted, completed, estimand, absolute):
    ref = _read("balance_across_imputations.csv")
    ref = ref[(ref["case"] == f"glm_{estimand}") & (ref["abs"] == absolute)].set_index("variable")
    ours = balance_table(fitted[(estimand, "asympt")], completed[1], abs=absolute)
    assert list(ours.index) == list(ref.index)
    assert list(ours["type"]) == list(ref["Type"])
    for column in ref.columns[3:]:
        summary, rest = column.split(".", 1)
        stat, sample = rest.rsplit(".", 1)
        theirs = ref[column].to_numpy(dtype=float)
        mine = ours[f"{STAT_NAMES[stat]}_{sample.lower()}_{summary.lower()}"].to_numpy()
        # SMDs and KS are unit-free; an adjusted SMD near 0 carries R's weight error (~1e-9) absolutely: 1e-8 abs
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=1e-8, err_msg=column)  # NaN where cobalt's NA


def test_balance_per_imputation_and_list_entry(fitted, completed):
    """The per-imputation tables are cobalt's (balance_by_imputation.csv), and a list of data sets with the fitted
    weighters gives the same summary as the fitted ImputedEffect."""
    X, t, _ = completed
    mi = fitted[("ATT", "asympt")]
    tables = balance_table(mi, t, per_imputation=True)
    ref = _read("balance_by_imputation.csv").query("case == 'glm_ATT' and abs == False")
    for k in range(1, 6):
        r = ref[ref["imp"] == k].set_index("variable")
        np.testing.assert_allclose(tables.loc[k, "smd_adj"].loc[r.index], r["Diff.Adj"], rtol=RTOL, atol=1e-8)
        np.testing.assert_allclose(tables.loc[k, "vratio_adj"].loc[r.index], r["V.Ratio.Adj"], rtol=RTOL)
        np.testing.assert_allclose(tables.loc[k, "ks_un"].loc[r.index], r["KS.Un"], rtol=RTOL)
    scores = [f.weighter_.ps_.to_numpy() for f in mi.fits_]
    by_list = balance_across_imputations(X, t, [f.weighter_ for f in mi.fits_], distance=scores)
    pd.testing.assert_frame_equal(by_list, balance_table(mi, t))
    with pytest.raises(ValueError, match="2 imputations|one per imputation"):
        balance_table(X, t, [mi.fits_[0].weighter_] * 2)
    with pytest.raises(ValueError, match="multiply imputed"):
        balance_table(X[0], t, abs=True)
    # a nested list of numbers is still one array-like data set
    rows = X[0][["age", "educ"]].to_numpy().tolist()
    pd.testing.assert_frame_equal(balance_table(rows, t.to_numpy()), balance_table(np.array(rows), t.to_numpy()))


@pytest.fixture(scope="module")
def lalonde_missing(lalonde_mis):
    d = lalonde_mis.set_index("id") if "id" in lalonde_mis else lalonde_mis
    return d[COVARIATES], d["treat"], d["re78"]


def test_imputation_reproducible_whatever_n_jobs(lalonde_missing):
    X, t, y = lalonde_missing
    effect = WeightedEffect(PropensityWeights(estimand="ATT"))
    one = ImputedEffect(effect, n_imputations=3, random_state=7, n_jobs=1).fit(X, t, y)
    two = ImputedEffect(effect, n_imputations=3, random_state=7, n_jobs=2).fit(X, t, y)
    pd.testing.assert_frame_equal(one.pooled_, two.pooled_)
    for a, b in zip(one.imputations_, two.imputations_):
        pd.testing.assert_frame_equal(a, b)
    other = ImputedEffect(effect, n_imputations=3, random_state=8).fit(X, t, y)
    assert not one.imputations_[0].equals(other.imputations_[0])  # the seed matters
    # imputations differ from each other (posterior draws), and only where values were missing
    na = X.isna()
    assert not one.imputations_[0]["re74"].equals(one.imputations_[1]["re74"])
    for d in one.imputations_:
        assert not d.isna().to_numpy().any()
        pd.testing.assert_frame_equal(d[~na["re74"]][["age", "educ"]], X[~na["re74"]][["age", "educ"]])
        assert set(d["married"].unique()) <= {0.0, 1.0}  # nearest observed value: a 0/1 column stays 0/1
        assert (d["re74"] >= 0).all()
        assert isinstance(d["race"].dtype, pd.CategoricalDtype)


def test_imputed_categorical_column_and_custom_imputer(lalonde_missing):
    """A categorical column with missing values is imputed as one of its levels; any imputer works (here a mean
    imputer, whose m identical imputations give B = 0: lambda 0 and the pooled SE the within SE)."""
    X, t, y = lalonde_missing
    X = X.copy()
    X.loc[X.index[::15], "race"] = np.nan
    mi = ImputedEffect(WeightedEffect(PropensityWeights(estimand="ATT"), vcov="HC0"), imputer=SimpleImputer(),
                       n_imputations=2, random_state=0).fit(X, t, y)
    assert set(mi.imputations_[0]["race"].unique()) <= {"black", "hispan", "white"}
    assert mi.pooled_["lambda"].max() == 0
    assert mi.pooled_.loc["ATT", "std_err"] == pytest.approx(mi.fits_[0].se_, rel=1e-12)


def test_across_approach_one_weight_vector(lalonde_missing):
    """Mitra & Reiter's across approach: the weights are those of the averaged propensity scores (checked against
    ATT weights e/(1-e) computed here), the same in every imputation; the outcome analysis is then pooled."""
    X, t, y = lalonde_missing
    mi = ImputedEffect(WeightedEffect(PropensityWeights(estimand="ATT"), vcov="HC0"), approach="across",
                       n_imputations=3, random_state=1).fit(X, t, y)
    within = ImputedEffect(WeightedEffect(PropensityWeights(estimand="ATT"), vcov="HC0"), n_imputations=3,
                           random_state=1).fit(X, t, y)
    scores = np.mean([f.weighter_.ps_.to_numpy() for f in within.fits_], axis=0)  # the same imputations
    np.testing.assert_allclose(mi.ps_, scores, rtol=1e-12)
    expected = np.where(t == 1, 1.0, scores / (1 - scores))
    np.testing.assert_allclose(mi.weights_, expected, rtol=1e-12)
    for fit in mi.fits_:
        np.testing.assert_allclose(fit.weighter_.weights_, expected, rtol=1e-12)
    # simple outcome model: the effect does not depend on the covariates, so all imputations agree (B = 0)
    assert mi.pooled_.loc["ATT", "lambda"] == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="vcov='HC0'"):
        ImputedEffect(WeightedEffect(PropensityWeights()), approach="across").fit(X, t, y)


def test_refusals_name_the_problem(lalonde_missing, completed):
    X, t, y = lalonde_missing
    effect = WeightedEffect(PropensityWeights())
    with pytest.raises(ValueError, match="n_imputations"):
        ImputedEffect(effect, n_imputations=1).fit(X, t, y)
    with pytest.raises(ValueError, match="approach"):
        ImputedEffect(effect, approach="sideways").fit(X, t, y)
    with pytest.raises(ValueError, match="impute_with"):
        ImputedEffect(effect, impute_with="outcome").fit(X, t, y)
    with pytest.raises(TypeError, match="WeightedEffect"):
        ImputedEffect(PropensityWeights()).fit(X, t, y)
    with pytest.raises(ValueError, match="nothing to impute"):
        ImputedEffect(effect).fit(X.dropna(), t[X.dropna().index], y[X.dropna().index])
    y_missing = y.copy()
    y_missing.iloc[0] = np.nan
    with pytest.raises(ValueError, match="outcome has 1 missing"):
        ImputedEffect(effect).fit(X, t, y_missing)
    with pytest.raises(ValueError, match=r"X\[1\] has missing values"):
        ImputedEffect(effect).fit([completed[0][0], X.set_axis(completed[0][0].index)], t, y)


def test_love_plot_shows_mean_and_range_over_imputations(fitted, completed):
    """The plotted points are the summary's means and the lines its min-max, of |SMD| (abs=True by default)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from balance.plot import love_plot

    mi = fitted[("ATT", "asympt")]
    ax = love_plot(mi, completed[1], order="data")
    summary = balance_table(mi, completed[1], abs=True, stats="smd")
    rows = [label.get_text() for label in ax.get_yticklabels()]
    assert rows == list(summary.index)
    lines = {line.get_gid(): line for line in ax.lines}
    np.testing.assert_array_equal(lines["Adjusted"].get_xdata(), summary["smd_adj_mean"].to_numpy())
    ranges = {c.get_gid(): c for c in ax.collections}
    segments = np.array(ranges["Adjusted range"].get_segments())  # (rows, 2 ends, x/y)
    np.testing.assert_array_equal(segments[:, 0, 0], summary["smd_adj_min"].to_numpy())
    np.testing.assert_array_equal(segments[:, 1, 0], summary["smd_adj_max"].to_numpy())
    assert (summary["smd_adj_min"] <= summary["smd_adj_mean"]).all()
    plt.close(ax.figure)


def test_clone_and_params():
    from sklearn.base import clone

    est = ImputedEffect(WeightedEffect(PropensityWeights()), n_imputations=3, random_state=2, impute_with=())
    params = clone(est).get_params(deep=False)
    assert params["n_imputations"] == 3 and params["impute_with"] == () and params["random_state"] == 2


def test_multi_category_contrasts_and_ratio_scale_are_pooled(completed):
    """Plumbing identities: a multi-category treatment pools every pairwise contrast (each imputation's own
    WeightedEffect numbers, refitted here independently); a risk ratio is pooled on the log scale (geometric mean
    of the ratios, interval exponentiated)."""
    X, t, y = completed
    covariates = [d.drop(columns="race") for d in X]
    race = X[0]["race"]
    mi = ImputedEffect(WeightedEffect(PropensityWeights(), vcov="HC0")).fit(covariates, race, y)
    assert list(mi.pooled_.index[:3]) == ["hispan - black", "white - black", "white - hispan"]
    alone = [WeightedEffect(PropensityWeights(), vcov="HC0").fit(d, race, y).contrasts_ for d in covariates]
    np.testing.assert_allclose(mi.estimate_, np.mean([c["estimate"] for c in alone], axis=0), rtol=1e-12)
    within = np.mean([c["std_err"] ** 2 for c in alone], axis=0)
    between = np.var([c["estimate"] for c in alone], axis=0, ddof=1)
    np.testing.assert_allclose(mi.se_ ** 2, within + 1.2 * between, rtol=1e-12)  # T = Ubar + (1 + 1/5) B

    employed = (y > 0).astype(float)
    rr = ImputedEffect(WeightedEffect(PropensityWeights(estimand="ATT"), scale="rr")).fit(X, t, employed)
    ratios = np.array([fit.estimate_ for fit in rr.fits_])
    assert rr.estimate_ == pytest.approx(np.exp(np.log(ratios).mean()), rel=1e-12)
    row = rr.pooled_.iloc[0]
    half = row["std_err"] * __import__("scipy").stats.t.ppf(0.975, row["df"])
    assert row["conf_low"] == pytest.approx(rr.estimate_ * np.exp(-half), rel=1e-12)


def test_inner_warnings_are_passed_on_naming_imputations(completed):
    """Each imputation's warnings reach the caller (also from joblib workers), prefixed with the imputation; an
    identical message is given once for all imputations that raised it."""
    X, t, y = completed
    with pytest.warns(UserWarning) as record:
        ImputedEffect(WeightedEffect(PropensityWeights(estimand="ATT", clip=(0.1, 0.9))), n_jobs=2).fit(X, t, y)
    clipped = [str(w.message) for w in record if "were clipped" in str(w.message)]
    named = [int(k) for m in clipped for k in m.split(":")[0].removeprefix("imputation(s) ").split(", ")]
    assert sorted(named) == [1, 2, 3, 4, 5]  # every imputation once (the counts, hence messages, differ)
    with pytest.warns(UserWarning, match=r"imputation\(s\) 1, 2: clip=\(0.1, 0.9\): \d+ propensity"):
        ImputedEffect(WeightedEffect(PropensityWeights(estimand="ATT", clip=(0.1, 0.9)))).fit([X[0], X[0]], t, y)


def test_impute_once_keeps_each_column_kind():
    """Booleans stay booleans, numbers take observed values only, rows without missing values are untouched, and
    the same seed gives the same draws (the imputer's random_state is set from it)."""
    from balance.effects._imputation import default_imputer, impute_once

    rng = np.random.default_rng(3)
    n = 200
    X = pd.DataFrame({"flag": rng.random(n) < 0.5, "count": rng.integers(0, 5, n).astype(float),
                      "z": rng.normal(size=n)})
    X.loc[X.index[::7], "count"] = np.nan
    X["flag"] = X["flag"].astype("boolean")
    X.loc[X.index[1::9], "flag"] = pd.NA
    t, y = rng.integers(0, 2, n), rng.normal(size=n)
    done = impute_once(X, t, y, default_imputer(), seed=5)
    assert done["flag"].dtype == "boolean" and not done["flag"].isna().any()
    assert set(done["count"]) <= set(X["count"].dropna())
    complete = X.notna().all(axis=1)
    pd.testing.assert_frame_equal(done[complete], X[complete])
    pd.testing.assert_frame_equal(done, impute_once(X, t, y, default_imputer(), seed=5))


def test_pyarrow_string_column_with_missing_values_is_imputed():
    # a "string" column with <NA> (pyarrow-backed when pyarrow is installed) crashed the level indicators
    import warnings

    from balance import ImputedEffect, PropensityWeights, WeightedEffect
    from balance.datasets import load_lalonde

    data = load_lalonde()
    X = data.X.assign(race=data.X["race"].astype("string").where(data.X["age"] > 20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ImputedEffect(WeightedEffect(PropensityWeights(estimand="ATT")), n_imputations=2,
                            random_state=0).fit(X, data.treatment, data.y)
    assert np.isfinite(fit.estimate_) and all(not f.isna().any().any() for f in fit.imputations_)
