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
    (["--treatment", "race"], "needs the focal level: pass treated=<level>"),  # ATT of a 3-level treatment
    (["--vcov", "magic"], "invalid choice: 'magic'"),
])
def test_bad_flags_give_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in captured.err + captured.out
