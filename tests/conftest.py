"""Shared fixtures: the lalonde data read straight from the shared research copy, and the WeightIt oracle."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
ORACLE = SHARED / "oracle" / "weightit-lalonde-att"
COVARIATES = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]


def _shared_file(path):
    if not path.exists():
        pytest.skip(f"reference file {path} is not available (../shared/ sits beside the repository in CI)")
    return path


@pytest.fixture(scope="session")
def lalonde():
    """lalonde read independently of balance.datasets (index id, race categorical)."""
    df = pd.read_csv(_shared_file(SHARED / "data" / "lalonde_matchit614.csv"), index_col="id")
    df["race"] = pd.Categorical(df["race"], categories=["black", "hispan", "white"])
    return df


@pytest.fixture(scope="session")
def lalonde_mis():
    """cobalt's lalonde_mis (614 rows; married, re74, re75 partly missing), race categorical."""
    df = pd.read_csv(_shared_file(SHARED / "data" / "lalonde_mis_cobalt614.csv"))
    df["race"] = pd.Categorical(df["race"], categories=["black", "hispan", "white"])
    return df


@pytest.fixture(scope="session")
def oracle():
    """Read an oracle CSV by file stem, indexed by unit id where it has one."""

    def read(stem):
        frame = pd.read_csv(_shared_file(ORACLE / f"{stem}.csv"))
        return frame.set_index("id") if "id" in frame else frame

    return read


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


def simulate(rng, n=500, p=3):
    """A small logistic-propensity design with known coefficients."""
    X = rng.normal(size=(n, p))
    beta = np.linspace(0.8, -0.5, p)
    a = rng.binomial(1, 1 / (1 + np.exp(-(-0.3 + X @ beta))))
    return X, a


@pytest.fixture(scope="session")
def process_cluster():
    """A client of a dask LocalCluster of two worker processes, started once for the session (starting the worker
    processes costs ~10 s). Not the default scheduler: a test selects it with ``dask.config.set(scheduler=client)``."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        yield client
