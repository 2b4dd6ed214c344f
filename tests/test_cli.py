"""The main job, ``python -m balance``: a complete analysis by default, one-line errors with exit code 2."""

import subprocess
import sys

import pandas as pd
import pytest

from balance._cli import main

from .conftest import SHARED, _shared_file


def test_default_run_reproduces_weightit(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    # WeightIt 1.5.1 glm ATT on lalonde, re78 ~ treat: estimate 1214.07122089147, asympt SE 798.154627084133
    assert "estimate 1214.0712" in out and "std. error 798.1546" in out
    assert "M-estimation" in out and "race_black" in out and "Effective sample size" in out


def test_hc0_flag(capsys):
    assert main(["--vcov", "HC0"]) == 0
    out = capsys.readouterr().out
    assert "std. error 824.0517" in out and "weights treated as known" in out  # WeightIt's se_hc0


def test_runs_as_a_module_in_a_fresh_interpreter():
    proc = subprocess.run([sys.executable, "-m", "balance"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ATT on 're78'" in proc.stdout and proc.stderr == ""


def test_flags_choose_data_columns_and_estimand(tmp_path, capsys):
    frame = pd.read_csv(_shared_file(SHARED / "data" / "lalonde_matchit614.csv"))
    frame["group"] = frame["treat"].map({1: "nsw", 0: "psid"})
    path = tmp_path / "data.csv"
    frame.drop(columns="treat").to_csv(path, index=False)
    code = main(["--data", str(path), "--treatment", "group", "--treated", "nsw", "--outcome", "re78",
                 "--covariates", "age,educ,race,married,nodegree,re74,re75", "--estimand", "ato"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "estimand ATO" in out and "treated = 'nsw'" in out


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--estimand", "XYZ"], "invalid choice: 'XYZ'"),
    (["--data", "/nonexistent.csv"], "no such file"),
    (["--treatment", "nope"], "--treatment: column(s) ['nope'] not in the data"),
    (["--covariates", "age,height"], "--covariates: column(s) ['height'] not in the data"),
    (["--outcome", "race"], "--outcome: column 'race' must be numeric"),
    (["--treatment", "race", "--estimand", "ATC"],
     "estimand='ATC' is not supported by PropensityWeights for a multi-category treatment"),
    (["--treatment", "race", "--treated", "asian"], "treated='asian' is not a level of treatment"),
    (["--treatment", "educ"], "say whether these are categories or doses"),
    (["--treatment-type", "multi-category"], "treatment_type='multi-category' but treatment has two levels"),
    (["--vcov", "magic"], "invalid choice: 'magic'"),
])
def test_bad_flags_give_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in captured.err + captured.out


# ------------------------------------------------------------------------------------------------------------
# a multi-category treatment: lalonde's race, WeightIt 1.5.1 glm (multinomial) ATE as the reference
# ------------------------------------------------------------------------------------------------------------
RACE = ["--treatment", "race", "--covariates", "age,educ,married,nodegree,re74,re75"]
MULTI = SHARED / "oracle" / "weightit-multi-ate"


def _oracle_rows():
    """The oracle's glm ATE means and contrasts (estimate, asympt SE) and the ESS per level."""
    contrasts = pd.read_csv(_shared_file(MULTI / "contrasts.csv"))
    contrasts = contrasts[(contrasts["case"] == "ATE_glm") & (contrasts["model"] == "re78 ~ race")
                          & (contrasts["vcov"] == "asympt")]
    ess = pd.read_csv(_shared_file(MULTI / "balance_observations.csv")).set_index(["case", "sample"])
    return contrasts, ess.loc[("ATE_glm", "Adjusted")]


def _check_effects_and_ess(out):
    contrasts, ess = _oracle_rows()
    lines = out.splitlines()
    for _, row in contrasts.iterrows():
        name = row["contrast"].replace("mean[", "mu[")
        (line,) = [ln for ln in lines if ln.startswith(name + " ")]
        estimate, se = (float(v) for v in line[len(name):].split()[:2])
        # the multinomial MLE stops at ~1e-7 relative of WeightIt's (tests/test_multi_propensity.py), on means of
        # ~7000: 1e-6 x 7000 = 0.007, plus 5e-5 of printing to 4 decimals
        assert abs(estimate - row["estimate"]) < 0.007, (name, estimate, row["estimate"])
        assert abs(se - row["se"]) < 0.007, (name, se, row["se"])
    for level in ("black", "hispan", "white"):
        (line,) = [ln for ln in lines if ln.startswith(level + " ") and ln.rstrip().endswith("%")]
        before, after = (float(v) for v in line.split()[1:3])
        # ESS printed to one decimal: WeightIt's unadjusted n and adjusted ESS
        assert before == {"black": 243.0, "hispan": 72.0, "white": 299.0}[level]
        assert abs(after - ess[level]) <= 0.05 + 1e-9, (level, after, ess[level])


def test_multi_category_att_of_a_focal_level(capsys):
    assert main(RACE + ["--treated", "hispan"]) == 0
    out = capsys.readouterr().out
    assert "focal level 'hispan'" in out and "estimand ATT" in out and "mu[white]" in out
    assert "hispan vs. black" in out and "hispan vs. white" in out  # the focal level against each other one


def _printed_balance(out, comparisons):
    """(comparison, variable) -> the printed row's numbers (smd_un, vratio_un, ks_un, smd_adj, ...; "." as NaN)."""
    rows, current = {}, None
    for line in out.splitlines():
        if not line.strip():  # the table ends at its first blank line
            current = None
        for comparison in comparisons:
            if line.startswith(comparison + " "):
                current, line = comparison, line[len(comparison):]
        fields = line.split()
        if current is None or len(fields) != 8 or fields[1] not in ("Contin.", "Binary"):
            continue
        rows[(current, fields[0])] = [float("nan") if v == "." else float(v) for v in fields[2:]]
    return rows


def test_multi_category_matches_weightit_and_cobalt(capsys):
    assert main(RACE) == 0
    out = capsys.readouterr().out
    assert "treatment 'race' (3 levels 'black', 'hispan', 'white', reference 'black')" in out
    assert "estimand ATE" in out and "ATE on 're78'" in out
    assert "std. error" not in out  # the binary one-line summary is not printed for several contrasts
    _check_effects_and_ess(out)
    pairs = pd.read_csv(_shared_file(MULTI / "balance_pairs.csv"))
    pairs = pairs[(pairs["case"] == "ATE_glm") & (pairs["binary"] == "raw") & pairs["pairwise"]]
    printed = _printed_balance(out, pairs["comparison"].unique())
    assert len(printed) == len(pairs) == 18
    for _, row in pairs.iterrows():
        smd_un, _, ks_un, smd_adj, _, ks_adj = printed[(row["comparison"], row["variable"])]
        # printed to 4 decimals (5e-5); the weighted columns also carry the multinomial MLE's ~1e-7 relative
        # difference from WeightIt's
        for got, want in ((smd_un, row["Diff.Un"]), (ks_un, row["KS.Un"]), (smd_adj, row["Diff.Adj"]),
                          (ks_adj, row["KS.Adj"])):
            assert abs(got - want) <= 5e-5 + 1e-6, (row["comparison"], row["variable"], got, want)
    maxima = pd.read_csv(_shared_file(MULTI / "balance_max_over_pairs.csv"))
    maxima = maxima[(maxima["case"] == "ATE_glm") & (maxima["binary"] == "raw")]
    lines = out[out.index("Largest imbalance over the comparisons"):].splitlines()
    for _, row in maxima.iterrows():  # cobalt's Balance.Across.Pairs, printed to 4 decimals
        (line,) = [ln for ln in lines[:9] if ln.split()[:1] == [row["variable"]]]
        values = line.split()
        assert abs(float(values[2]) - row["Max.Diff.Un"]) <= 5e-5 + 1e-6
        assert abs(float(values[5]) - row["Max.Diff.Adj"]) <= 5e-5 + 1e-6


# ------------------------------------------------------------------------------------------------------------
# a multi-flag run on a real CSV (RHC) against the Python API; files, plot, every method
# ------------------------------------------------------------------------------------------------------------
RHC_POST_TREATMENT = "death,dthdte,sadmdte,dschdte,lstctdte,t3d30,adld3p,urin1"


def test_multi_flag_run_on_rhc_reproduces_the_python_api(tmp_path, capsys):
    import json

    from balance import PropensityWeights, WeightedEffect

    path = _shared_file(SHARED / "data" / "rhc.csv")
    argv = ["--data", str(path), "--index", "ptid", "--treatment", "swang1", "--treated", "RHC",
            "--outcome", "dth30", "--event", "Yes", "--exclude", RHC_POST_TREATMENT, "--missing", "indicator",
            "--estimand", "ATE", "--scale", "rr", "--vcov", "HC0", "--output", str(tmp_path / "out")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "outcome 'dth30' (1 = 'Yes')" in out and "treated = 'RHC'" in out
    frame = pd.read_csv(path).set_index("ptid")
    X = frame.drop(columns=["swang1", "dth30", *RHC_POST_TREATMENT.split(",")])
    y = (frame["dth30"] == "Yes").astype(float)
    api = WeightedEffect(PropensityWeights(estimand="ATE", treated="RHC", missing="indicator"), vcov="HC0",
                         scale="rr").fit(X, frame["swang1"], y)
    expected = api.summary()
    written = pd.read_csv(tmp_path / "out" / "effect.csv", index_col=0)
    # the same computation, written by pandas at full precision (round trip of the CSV text: 1e-15)
    pd.testing.assert_frame_equal(written, pd.DataFrame(expected), check_exact=False, rtol=1e-12, check_names=False)
    weights = pd.read_csv(tmp_path / "out" / "weights.csv", index_col=0)
    assert weights.index.name == "ptid"
    assert (weights.index == frame.index).all()
    assert abs(weights["weight"].to_numpy() - api.weighter_.weights_.to_numpy()).max() < 1e-12
    document = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert document["settings"]["covariates"] == list(X.columns)
    assert document["settings"]["scale"] == "rr" and document["settings"]["method"] == "glm"
    balance = pd.read_csv(tmp_path / "out" / "balance.csv", index_col=0)
    assert "cat2:<NA>" in balance.index  # --missing indicator: cat2's missingness indicator is balanced too


def test_plot_file_is_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    target = tmp_path / "love.png"
    assert main(["--vcov", "HC0", "--plot", str(target)]) == 0
    assert target.stat().st_size > 1000 and target.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("method, cls", [("cbps", "CBPS"), ("ebal", "EntropyBalance"),
                                         ("ipt", "InverseProbabilityTilting"), ("optweight", "StableWeights"),
                                         ("energy", "EnergyBalance")])
def test_every_method_matches_the_python_api(tmp_path, capsys, method, cls):
    import balance
    from balance import WeightedEffect
    from balance.datasets import load_lalonde

    assert main(["--method", method, "--vcov", "HC0", "--output", str(tmp_path)]) == 0
    data = load_lalonde()
    api = WeightedEffect(getattr(balance, cls)(estimand="ATT"), vcov="HC0").fit(data.X, data.treatment, data.y)
    written = pd.read_csv(tmp_path / "effect.csv", index_col=0)
    # same estimator, same data: equal up to the CSV round trip (solvers are deterministic)
    assert abs(written.loc["ATT", "estimate"] - api.summary().loc["ATT", "estimate"]) < 1e-8 * 1e4
    assert abs(written.loc["ATT", "std_err"] - api.summary().loc["ATT", "std_err"]) < 1e-8 * 1e4


def test_methods_without_estimating_equations_default_to_the_weight_bootstrap(tmp_path, capsys):
    assert main(["--method", "optweight", "--n-bootstrap", "20", "--seed", "1", "--output", str(tmp_path)]) == 0
    import json

    assert json.loads((tmp_path / "summary.json").read_text())["settings"]["vcov"] == "fwb"


@pytest.mark.parametrize("argv, message", [
    (["--covariates", "age", "--exclude", "educ"], "give --covariates or --exclude, not both"),
    (["--exclude", "height"], "--exclude: column(s) ['height'] not in the data"),
    (["--outcome", "race", "--event", "asian"], "--event 'asian' is not a value of the outcome column 'race'"),
    (["--method", "magic"], "invalid choice: 'magic'"),
    (["--scale", "rr"], "binary"),
])
def test_more_bad_flags_give_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_labelled_binary_outcome_without_event_says_how(tmp_path, capsys):
    frame = pd.read_csv(_shared_file(SHARED / "data" / "lalonde_matchit614.csv"))
    frame["employed"] = (frame["re78"] > 0).map({True: "yes", False: "no"})
    path = tmp_path / "d.csv"
    frame.drop(columns="re78").to_csv(path, index=False)
    assert main(["--data", str(path), "--outcome", "employed"]) == 2
    assert "--event" in capsys.readouterr().err
    assert main(["--data", str(path), "--outcome", "employed", "--event", "yes", "--scale", "or",
                 "--vcov", "HC0"]) == 0


@pytest.mark.parametrize("method, vcov", [("glm", "asympt"), ("ebal", "HC0")])
def test_continuous_treatment_reproduces_weightit(tmp_path, capsys, method, vcov):
    # WeightIt 1.5.1: weightit(re75 ~ age + educ + race + married + nodegree + re74, method = M), then
    # lm_weightit(re78 ~ re75, vcov = V); the CLI excludes `treat` to fit the same model
    assert main(["--treatment", "re75", "--exclude", "treat", "--method", method, "--vcov", vcov,
                 "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "continuous treatment 're75'" in out and "corr_adj" in out
    oracle = pd.read_csv(_shared_file(SHARED / "oracle" / "weightit-continuous" / "coefficients.csv"))
    row = oracle[(oracle["case"] == method) & (oracle["vcov"] == vcov) & (oracle["term"] == "re75")].iloc[0]
    written = pd.read_csv(tmp_path / "effect.csv", index_col=0)
    # the package matches these to 1e-6 (tests/test_dose_response.py); the CSV keeps full precision
    assert abs(written.loc["re75", "estimate"] / row["estimate"] - 1) < 1e-6
    assert abs(written.loc["re75", "std_err"] / row["se"] - 1) < 2e-6


def test_continuous_treatment_refuses_binary_only_flags(capsys):
    assert main(["--treatment", "re75", "--estimand", "ATT"]) == 2
    assert "one estimand" in capsys.readouterr().err
