"""Tests of balance.datasets: the bundled files, the loaders and the simulation designs.

References are independent of the loaders: sha256 sums and counts from the team's data README
(shared/data/README.md beside the repository), the original CSV read with plain pandas, published numbers, and the
population values of the simulation designs computed here by quadrature.
"""

import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from scipy.special import expit

from balance.datasets import (
    load_ihdp_covariates,
    load_lalonde,
    load_nhefs,
    make_kang_schafer,
    make_synthetic,
)
from balance.datasets._loaders import _data_dir

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # beside the repository, as in conftest.py

# sha256 of the research copies, from shared/data/README.md; the bundled files must be byte copies.
SHIPPED = {
    "lalonde.csv": "1a32c91903bb9f2e4a29fca8a00603ddc0337c6a2e708c81a4e81b5c71a4ffa7",
    "nhefs.csv": "1b8b59aa8588d6cc61de73ab49a3096c4efa18b2b28127c1cd63c9262e3b475a",
    "nhefs_codebook.csv": "a81bd088658e18c9d4a85be34b521d781f99267eee7278f57f94ec01d9d99ff0",
    "ihdp_covariates.csv": "f00fc75f44f66f8afc52686943a65fbf651593bdb5756b0ac14b4d70c0b81a32",
}
LOADERS = [load_lalonde, load_nhefs, load_ihdp_covariates]

# Monte Carlo checks: one large seeded draw, every comparison within 5 standard errors. For a correct generator a
# 5-SE miss has probability about 6e-7 per statistic, so a failure points to a wrong design, not to bad luck.
N_MC = 200_000
N_SE = 5


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _shared_csv(name):
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"the team's research copy {path} is not available")
    return pd.read_csv(path)


# --- bundled files -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_bundled_file_is_byte_copy(name):
    assert _sha256((_data_dir() / name).read_bytes()) == SHIPPED[name]


def test_only_permissive_files_ship():
    # Anything else in datasets/ would go into the wheel, e.g. a GPL or unlicensed file (see the README).
    assert {p.name for p in (REPO / "datasets").iterdir()} == set(SHIPPED) | {"README.md"}


def test_readme_sums_match_files():
    readme = (REPO / "datasets" / "README.md").read_text(encoding="utf-8")
    for name, digest in SHIPPED.items():
        section = readme.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert re.search(r"sha256: `([0-9a-f]{64})`", section).group(1) == digest


@pytest.mark.parametrize("loader", LOADERS)
def test_loader_bunch_and_descr(loader):
    data = loader()
    assert list(data.X.columns) == data.feature_names
    assert data.treatment.name == data.treatment_name
    assert data.X.index.equals(data.treatment.index)
    assert set(data.treatment.unique()) == {0, 1}
    assert "Licence" in data.DESCR and "Citation" in data.DESCR
    # The README, hence DESCR, must describe every column of the file.
    for column in [data.frame.index.name, *data.frame.columns]:
        if column is not None:
            assert f"`{column}`" in data.DESCR


# --- lalonde --------------------------------------------------------------------------------------------------------


def test_lalonde_layout():
    data = load_lalonde()
    assert data.frame.shape == (614, 9)
    assert data.feature_names == ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
    assert data.frame.index.name == "id"
    assert data.frame.index.is_unique
    assert data.frame.index[[0, 184, 185, -1]].tolist() == ["NSW1", "NSW185", "PSID1", "PSID429"]
    race = data.X["race"]
    assert isinstance(race.dtype, pd.CategoricalDtype)
    assert list(race.cat.categories) == ["black", "hispan", "white"]
    assert race.notna().all()
    assert int(data.treatment.sum()) == 185
    assert (data.treatment_name, data.target_name) == ("treat", "re78")
    for column in ["treat", "age", "educ", "married", "nodegree"]:
        assert pd.api.types.is_integer_dtype(data.frame[column])
    for column in ["re74", "re75", "re78"]:
        assert pd.api.types.is_float_dtype(data.frame[column])


def test_lalonde_matches_original_csv():
    raw = _shared_csv("lalonde_matchit614.csv")
    data = load_lalonde()
    # Same file, so same values to the last bit.
    assert_allclose(data.y.to_numpy(), raw["re78"].to_numpy(), rtol=0, atol=0)
    assert data.X["race"].astype(str).tolist() == raw["race"].tolist()
    by_arm = raw.groupby("treat")["re74"].mean()
    assert_allclose(data.X["re74"].groupby(data.treatment).mean(), by_arm, rtol=1e-12)


def test_lalonde_published_treated_mean():
    # Dehejia and Wahba (1999) report mean 1978 earnings of $6,349 for the 185 NSW treated; rounded to dollars.
    data = load_lalonde()
    assert abs(data.y[data.treatment == 1].mean() - 6349) < 0.5


# --- NHEFS ---------------------------------------------------------------------------------------------------------


def test_nhefs_complete_cases():
    data = load_nhefs()
    assert data.frame.shape == (1629, 63)
    assert data.X.shape == (1566, 9)
    assert data.y.notna().all()
    assert data.treatment.value_counts().to_dict() == {0: 1163, 1: 403}
    assert data.frame.loc[data.X.index, "wt82_71"].notna().all()


def test_nhefs_all_rows():
    data = load_nhefs(complete_cases=False)
    assert data.X.shape == (1629, 9)
    assert int(data.y.isna().sum()) == 63
    assert data.treatment.value_counts().to_dict() == {0: 1201, 1: 428}


def test_nhefs_covariates_and_codebook():
    data = load_nhefs()
    assert data.feature_names == [
        "sex", "race", "age", "education", "smokeintensity", "smokeyrs", "exercise", "active", "wt71",
    ]
    assert list(data.X["education"].cat.categories) == [1, 2, 3, 4, 5]
    assert list(data.X["exercise"].cat.categories) == [0, 1, 2]
    assert list(data.X["active"].cat.categories) == [0, 1, 2]
    assert data.X.notna().all().all()
    assert set(data.codebook.index) == {data.frame.index.name, *data.frame.columns}


def test_nhefs_matches_original_csv():
    raw = _shared_csv("nhefs.csv").dropna(subset=["wt82_71"])
    data = load_nhefs()
    assert_allclose(data.y.to_numpy(), raw["wt82_71"].to_numpy(), rtol=0, atol=0)
    assert_allclose(data.X["wt71"].to_numpy(), raw["wt71"].to_numpy(), rtol=0, atol=0)


# --- IHDP ----------------------------------------------------------------------------------------------------------


def test_ihdp_full():
    data = load_ihdp_covariates()
    assert data.frame.shape == (985, 30)
    assert data.X.shape == (985, 25)
    assert data.y is None and data.target_name is None
    assert data.treatment.value_counts().to_dict() == {0: 608, 1: 377}


def test_ihdp_hill_sample():
    data = load_ihdp_covariates(hill_sample=True)
    assert data.frame.shape == (747, 30)
    assert data.treatment.value_counts().to_dict() == {0: 608, 1: 139}
    assert (data.frame.loc[data.treatment == 1, "momwhite"] == 1).all()
    # The covariate list of spec datasets.md section 7 (econml's ihdp_surface_A/B).
    hill = ["bw", "b.head", "preterm", "birth.o", "nnhealth", "momage", "sex", "twin", "b.marr", "mom.lths",
            "mom.hs", "mom.scoll", "cig", "first", "booze", "drugs", "work.dur", "prenatal"]
    assert data.feature_names == hill + [f"site{k}" for k in range(1, 8)]


# --- generators: arguments and reproducibility ----------------------------------------------------------------------

GENERATORS = [make_kang_schafer, make_synthetic]


@pytest.mark.parametrize("make", GENERATORS)
def test_generator_seed(make):
    first, again, other = make(300, random_state=7), make(300, random_state=7), make(300, random_state=8)
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert not np.allclose(first.y, other.y)
    pd.testing.assert_frame_equal(make(300, random_state=np.random.default_rng(7)).frame, first.frame)


@pytest.mark.parametrize("make", GENERATORS)
@pytest.mark.parametrize("n", [0, -5, 2.5, 100.0, "100", None, True])
def test_generator_rejects_bad_n(make, n):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        make(n)


@pytest.mark.parametrize("make", GENERATORS)
def test_generator_bunch(make):
    data = make(np.int64(50), random_state=0)
    assert data.frame.shape[0] == 50
    assert list(data.X.columns) == data.feature_names
    assert data.treatment.dtype == np.int64
    assert data.y.name == data.target_name == "y"
    assert data.DESCR


# --- generators: the designs against their population truth ---------------------------------------------------------


def _normal_expectation(func, sd, degree=80):
    """E[func(S)] for S ~ N(0, sd**2), by Gauss-Hermite quadrature (exact to ~1e-12 for these smooth functions)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(degree)
    return float(np.sum(weights * func(sd * nodes)) / np.sqrt(2 * np.pi))


def _ols(design, y):
    """OLS coefficients and their classical standard errors (the designs' noise is homoskedastic N(0, 1))."""
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    sigma2 = resid @ resid / (len(y) - design.shape[1])
    se = np.sqrt(sigma2 * np.diag(np.linalg.inv(design.T @ design)))
    return coef, se, sigma2


def _logit(design, treat):
    fit = sm.Logit(treat, design).fit(disp=0)
    return fit.params, fit.bse


KS_PS = np.array([-1.0, 0.5, -0.25, -0.1])
KS_Y = np.array([27.4, 13.7, 13.7, 13.7])


@pytest.fixture(scope="module")
def kang_schafer():
    return make_kang_schafer(N_MC, random_state=20070101)


def test_kang_schafer_transforms(kang_schafer):
    z1, z2, z3, z4 = kang_schafer.Z.to_numpy().T
    expected = np.column_stack([np.exp(z1 / 2), z2 / (1 + np.exp(z1)) + 10, (z1 * z3 / 25 + 0.6) ** 3,
                                (z2 + z4 + 20) ** 2])
    # The same closed forms, so equal to rounding.
    assert_allclose(kang_schafer.X.to_numpy(), expected, rtol=1e-12)
    assert_allclose(kang_schafer.propensity, expit(kang_schafer.Z.to_numpy() @ KS_PS), rtol=1e-12)


def test_kang_schafer_outcome_model(kang_schafer):
    # y on (1, Z, treat): coefficients (210, 27.4, 13.7, 13.7, 13.7) and 0 for treat (true ATT = ATE = 0).
    design = np.column_stack([np.ones(N_MC), kang_schafer.Z, kang_schafer.treatment])
    coef, se, sigma2 = _ols(design, kang_schafer.y.to_numpy())
    truth = np.r_[210.0, KS_Y, 0.0]
    assert np.all(np.abs(coef - truth) < N_SE * se), (coef, se)
    # Var of the N(0, 1) noise: the sample variance has SE sqrt(2 / n).
    assert abs(sigma2 - 1) < N_SE * np.sqrt(2 / N_MC)
    assert kang_schafer.true_att == kang_schafer.true_ate == 0.0
    assert kang_schafer.true_mean == 210.0


def test_kang_schafer_treatment_model(kang_schafer):
    # The logit is linear in Z without intercept, and symmetric about 0, so P(treat = 1) = 0.5 exactly.
    treat = kang_schafer.treatment.to_numpy()
    assert abs(treat.mean() - 0.5) < N_SE * np.sqrt(0.25 / N_MC)
    params, bse = _logit(np.column_stack([np.ones(N_MC), kang_schafer.Z]), treat)
    assert np.all(np.abs(params - np.r_[0.0, KS_PS]) < N_SE * bse), (params, bse)


def test_kang_schafer_group_means(kang_schafer):
    # Population E[y | treat = 1] by Stein's lemma: E[Z pi(Z)] = a E[pi (1 - pi)] for pi = expit(Z a), so
    # E[y | T = 1] = 210 + (b . a) E[pi (1 - pi)] / E[pi]; the spec says "about 200" (and about 220 for controls).
    sd = np.linalg.norm(KS_PS)
    e_pq = _normal_expectation(lambda s: expit(s) * (1 - expit(s)), sd)
    shift = KS_Y @ KS_PS * e_pq / 0.5
    treat, y = kang_schafer.treatment.to_numpy(), kang_schafer.y.to_numpy()
    for arm, expected in [(1, 210 + shift), (0, 210 - shift)]:
        values = y[treat == arm]
        assert abs(values.mean() - expected) < N_SE * values.std() / np.sqrt(len(values))
    assert abs(210 + shift - 200) < 1


SYN_PS = np.array([0.5, -0.4, 0.3, -0.3, 0.2, 0.2, -0.1, 0.1, 0.4, -0.5])
SYN_Y = np.array([1.0, 0.5, -0.5, 0.25, 0.25, 0.0, 0.0, 0.1, 0.5, -0.5])


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(N_MC, random_state=1001)


def _synthetic_population():
    """Population P(treat = 1) and E[x1 | treat = 1] of the synthetic design.

    The normal part of the logit, S = x1..x8 . beta, is N(0, sum beta_j^2); average over the four (x9, x10) cells.
    E[x1 pi] = beta_1 E[pi (1 - pi)] by Stein's lemma, because x1 enters pi only through S.
    """
    sd = np.linalg.norm(SYN_PS[:8])
    p_treat = e_pq = 0.0
    for x9, p9 in [(0, 0.6), (1, 0.4)]:
        for x10, p10 in [(0, 0.8), (1, 0.2)]:
            shift = -0.8 + SYN_PS[8] * x9 + SYN_PS[9] * x10
            p_treat += p9 * p10 * _normal_expectation(lambda s: expit(shift + s), sd)
            e_pq += p9 * p10 * _normal_expectation(lambda s: expit(shift + s) * (1 - expit(shift + s)), sd)
    return p_treat, SYN_PS[0] * e_pq / p_treat


def test_synthetic_marginals(synthetic):
    x = synthetic.X.to_numpy()
    # Means of the covariates: 0 for the normals (SE 1 / sqrt(n)), 0.4 and 0.2 for the Bernoullis.
    expected = np.r_[np.zeros(8), 0.4, 0.2]
    se = np.sqrt(np.r_[np.ones(8), 0.4 * 0.6, 0.2 * 0.8] / N_MC)
    assert np.all(np.abs(x.mean(axis=0) - expected) < N_SE * se)
    assert set(np.unique(x[:, 8:])) == {0.0, 1.0}


def test_synthetic_treatment_model(synthetic):
    p_treat, _ = _synthetic_population()
    treat = synthetic.treatment.to_numpy()
    assert abs(treat.mean() - p_treat) < N_SE * np.sqrt(p_treat * (1 - p_treat) / N_MC)
    assert abs(p_treat - 0.35) < 0.01  # the README's "about 35 % treated"
    params, bse = _logit(np.column_stack([np.ones(N_MC), synthetic.X]), treat)
    assert np.all(np.abs(params - np.r_[-0.8, SYN_PS]) < N_SE * bse), (params, bse)
    assert_allclose(synthetic.propensity, expit(-0.8 + synthetic.X.to_numpy() @ SYN_PS), rtol=1e-12)


def test_synthetic_outcome_model(synthetic):
    # y on (1, X, treat, treat * x1): coefficients (1, gamma, 1, 0.5).
    x, treat = synthetic.X.to_numpy(), synthetic.treatment.to_numpy()
    design = np.column_stack([np.ones(N_MC), x, treat, treat * x[:, 0]])
    coef, se, sigma2 = _ols(design, synthetic.y.to_numpy())
    assert np.all(np.abs(coef - np.r_[1.0, SYN_Y, 1.0, 0.5]) < N_SE * se), (coef, se)
    assert abs(sigma2 - 1) < N_SE * np.sqrt(2 / N_MC)


def test_synthetic_effects(synthetic):
    x1, treat = synthetic.X["x1"].to_numpy(), synthetic.treatment.to_numpy()
    # The sample effects are means of 1 + 0.5 x1: exact up to summation order.
    assert_allclose(synthetic.tau, 1 + 0.5 * x1, rtol=1e-12)
    assert_allclose(synthetic.true_att, np.mean(1 + 0.5 * x1[treat == 1]), rtol=1e-12)
    assert_allclose(synthetic.true_ate, np.mean(1 + 0.5 * x1), rtol=1e-12)
    # Against the population: ATE = 1, ATT = 1 + 0.5 E[x1 | T = 1]; SE = 0.5 sd(x1 | arm) / sqrt(n_arm).
    _, e_x1_treated = _synthetic_population()
    assert abs(synthetic.true_ate - 1) < N_SE * 0.5 / np.sqrt(N_MC)
    treated = x1[treat == 1]
    att_se = 0.5 * treated.std() / np.sqrt(len(treated))
    assert abs(synthetic.true_att - (1 + 0.5 * e_x1_treated)) < N_SE * att_se


# --- packaging -----------------------------------------------------------------------------------------------------


def _run(args, **kwargs):
    """Run the test interpreter; on failure show its output, which says why (e.g. a build error)."""
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, **kwargs)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_wheel_carries_data(tmp_path):
    pytest.importorskip("hatchling", reason="hatchling builds the wheel; pip install 'causal-balance[test]'")
    _run(["-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(tmp_path)], cwd=REPO)
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        data_files = {n.removeprefix("balance/datasets/data/") for n in zf.namelist()
                      if n.startswith("balance/datasets/data/")}
        assert data_files == set(SHIPPED) | {"README.md"}
        for name, digest in SHIPPED.items():
            assert _sha256(zf.read(f"balance/datasets/data/{name}")) == digest
        # A pure-Python wheel unpacked on sys.path is an installation: the loaders must find the files inside the
        # package (importlib.resources), not in a source checkout, which is kept off the path here.
        site = tmp_path / "site"
        zf.extractall(site)
    script = "from balance.datasets._loaders import _data_dir; import balance.datasets as d; " \
             "print(_data_dir()); print(d.load_lalonde().X.shape)"
    out = _run(["-c", script], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)}).splitlines()
    assert Path(out[0]) == site / "balance" / "datasets" / "data"
    assert out[1] == "(614, 7)"
