"""Loaders for the real data sets bundled with the package.

The CSV files live in the repository's top-level ``datasets/`` folder and are installed as
``balance/datasets/data/``; nothing is ever downloaded. Provenance, licences, sha256 sums and column descriptions
are in that folder's ``README.md``, whose section for each file is the loader's ``DESCR``.

References
----------
.. [1] LaLonde, R. J. (1986). Evaluating the econometric evaluations of training programs with experimental data.
   American Economic Review, 76(4), 604-620.
.. [2] Dehejia, R. H. and Wahba, S. (1999). Causal effects in nonexperimental studies: Reevaluating the evaluation
   of training programs. Journal of the American Statistical Association, 94(448), 1053-1062.
.. [3] Hernán, M. A. and Robins, J. M. (2020). Causal Inference: What If. Boca Raton: Chapman & Hall/CRC.
.. [4] Hill, J. L. (2011). Bayesian nonparametric modeling for causal inference. Journal of Computational and
   Graphical Statistics, 20(1), 217-240.
"""

from importlib import resources
from pathlib import Path

import pandas as pd
from sklearn.utils import Bunch

__all__ = ["load_lalonde", "load_nhefs", "load_ihdp_covariates"]

_LALONDE_FEATURES = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]
_LALONDE_RACES = ["black", "hispan", "white"]

# The covariates of the IP-weighting model in Hernán & Robins, chapter 12 (before its squared terms).
_NHEFS_FEATURES = [
    "sex", "race", "age", "education", "smokeintensity", "smokeyrs", "exercise", "active", "wt71",
]
# Levels from the codebook, so that a subset of rows keeps every category.
_NHEFS_FACTORS = {"education": [1, 2, 3, 4, 5], "exercise": [0, 1, 2], "active": [0, 1, 2]}
# The codebook spells two names differently from the data file's header.
_NHEFS_CODEBOOK_FIXES = {"bithcontrol": "birthcontrol", "smkintensity 82_71": "smkintensity82_71"}

# site8 is the reference site and the ethnicity indicators define Hill's sample, so Hill's 25 covariates omit them.
_IHDP_NOT_FEATURES = ["treat", "site8", "momwhite", "momblack", "momhisp"]


def _data_dir():
    """Return the folder holding the bundled files.

    An installed wheel carries them in ``balance/datasets/data/``; a source checkout has them only in the
    repository's top-level ``datasets/`` folder.
    """
    installed = resources.files(__package__) / "data"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "datasets"


def _read_csv(name, **kwargs):
    # open() rather than a path, because a Traversable need not be a file on disk.
    with (_data_dir() / name).open("rb") as f:
        return pd.read_csv(f, **kwargs)


def _describe(*names):
    """Return the README sections of the given files, joined: the ``DESCR`` of a loader."""
    text = (_data_dir() / "README.md").read_text(encoding="utf-8")
    sections = {s.split("\n", 1)[0].strip(): "## " + s.strip() for s in text.split("\n## ")[1:]}
    return "\n\n".join(sections[name] for name in names) + "\n"


def _bunch(frame, rows, feature_names, treatment_name, target_name, descr, **extra):
    data = frame.loc[rows]
    return Bunch(
        frame=frame,
        X=data[feature_names],
        treatment=data[treatment_name],
        y=None if target_name is None else data[target_name],
        DESCR=descr,
        feature_names=list(feature_names),
        treatment_name=treatment_name,
        target_name=target_name,
        **extra,
    )


def load_lalonde():
    """Load the LaLonde job-training data (614 rows, MatchIt/cobalt layout).

    185 men treated in the National Supported Work demonstration (Dehejia and Wahba's subsample) and 429 comparison
    men from the PSID [1]_ [2]_: the data set of the WeightIt, cobalt and MatchIt examples. The copy is numerically
    identical to causalpy's Apache-2.0 file.

    Returns
    -------
    data : sklearn.utils.Bunch
        With the keys:

        frame : DataFrame of shape (614, 9)
            All columns, indexed by ``id`` (``"NSW1"`` ... ``"NSW185"``, ``"PSID1"`` ... ``"PSID429"``).
        X : DataFrame of shape (614, 7)
            ``age, educ, race, married, nodegree, re74, re75``; ``race`` is categorical with categories
            ``["black", "hispan", "white"]``; earnings are 1978 US$ (float), the other columns integers.
        treatment : Series of shape (614,)
            ``treat``: 1 for NSW participants, 0 for PSID controls.
        y : Series of shape (614,)
            ``re78``, earnings in 1978 (US$).
        DESCR : str
            Source, citation, licence and columns.
        feature_names : list of str
        treatment_name : str
        target_name : str

    See Also
    --------
    load_nhefs, load_ihdp_covariates

    References
    ----------
    .. [1] LaLonde, R. J. (1986). Evaluating the econometric evaluations of training programs with experimental
       data. American Economic Review, 76(4), 604-620.
    .. [2] Dehejia, R. H. and Wahba, S. (1999). Causal effects in nonexperimental studies: Reevaluating the
       evaluation of training programs. Journal of the American Statistical Association, 94(448), 1053-1062.

    Examples
    --------
    >>> from balance.datasets import load_lalonde
    >>> data = load_lalonde()
    >>> data.X.shape
    (614, 7)
    >>> int(data.treatment.sum())
    185
    >>> list(data.X["race"].cat.categories)
    ['black', 'hispan', 'white']
    """
    frame = _read_csv(
        "lalonde.csv", index_col="id", dtype={"race": pd.CategoricalDtype(_LALONDE_RACES)}
    )
    return _bunch(frame, frame.index, _LALONDE_FEATURES, "treat", "re78", _describe("lalonde.csv"))


def load_nhefs(*, complete_cases=True):
    """Load the NHEFS smoking-cessation data of Hernán and Robins' *Causal Inference: What If*.

    1629 smokers examined in 1971 and again in 1982 [1]_. The treatment ``qsmk`` is quitting smoking between the
    visits, the outcome ``wt82_71`` the weight change (kg), which is missing for 63 people.

    Parameters
    ----------
    complete_cases : bool, default=True
        If True, ``X``, ``treatment`` and ``y`` hold only the 1566 rows with an observed outcome, the sample of the
        book's analyses. If False they hold all 1629 rows, and ``y`` has 63 missing values. ``frame`` always holds
        all rows.

    Returns
    -------
    data : sklearn.utils.Bunch
        With the keys:

        frame : DataFrame of shape (1629, 63)
            The file's columns, indexed by the person identifier ``seqn``; ``education``, ``exercise`` and
            ``active`` are categorical (levels from the codebook); columns with missing values are float.
        X : DataFrame of shape (n_samples, 9)
            The covariates of the book's IP-weighting model (chapter 12): ``sex, race, age, education,
            smokeintensity, smokeyrs, exercise, active, wt71``. The book's propensity model also uses the squares
            of ``age``, ``smokeintensity``, ``smokeyrs`` and ``wt71``.
        treatment : Series of shape (n_samples,)
            ``qsmk``: 1 = quit smoking, 0 = did not.
        y : Series of shape (n_samples,)
            ``wt82_71``, weight change 1971-1982 in kg.
        codebook : Series of shape (64,)
            Description of every column, indexed by the column names of the data file.
        DESCR : str
            Source, citation, licence, columns and the handling of missing outcomes.
        feature_names : list of str
        treatment_name : str
        target_name : str

    See Also
    --------
    load_lalonde, load_ihdp_covariates

    References
    ----------
    .. [1] Hernán, M. A. and Robins, J. M. (2020). Causal Inference: What If. Boca Raton: Chapman & Hall/CRC.

    Examples
    --------
    >>> from balance.datasets import load_nhefs
    >>> data = load_nhefs()
    >>> data.frame.shape[0], data.X.shape
    (1629, (1566, 9))
    >>> load_nhefs(complete_cases=False).X.shape
    (1629, 9)
    """
    dtype = {name: pd.CategoricalDtype(levels) for name, levels in _NHEFS_FACTORS.items()}
    frame = _read_csv("nhefs.csv", index_col="seqn", dtype=dtype)
    rows = frame.index[frame["wt82_71"].notna()] if complete_cases else frame.index
    codebook = _read_csv("nhefs_codebook.csv", index_col="Variable name")["Description"]
    codebook = codebook.rename(index=_NHEFS_CODEBOOK_FIXES).rename_axis("variable")
    descr = _describe("nhefs.csv", "nhefs_codebook.csv")
    return _bunch(frame, rows, _NHEFS_FEATURES, "qsmk", "wt82_71", descr, codebook=codebook)


def load_ihdp_covariates(*, hill_sample=False):
    """Load the covariates of the Infant Health and Development Program (IHDP) used by Hill (2011).

    985 low-birth-weight premature infants of a randomised trial, with 29 covariates and the treatment ``treat``
    [1]_. No outcome ships with them: Hill's benchmarks simulate the outcomes, so ``y`` is None.

    Parameters
    ----------
    hill_sample : bool, default=False
        If True, keep Hill's analysis sample: drop the treated children of non-white mothers (keep rows with
        ``treat == 0`` or ``momwhite == 1``), leaving 747 rows (139 treated, 608 control). This makes the groups
        differ in the mothers' ethnicity, so the data are no longer a randomised comparison.

    Returns
    -------
    data : sklearn.utils.Bunch
        With the keys:

        frame : DataFrame of shape (n_samples, 30)
            All columns of the file; the index keeps the file's row numbers (0-984).
        X : DataFrame of shape (n_samples, 25)
            Hill's 25 covariates: every column except ``treat``, the reference site ``site8`` and the ethnicity
            indicators ``momwhite``, ``momblack``, ``momhisp``.
        treatment : Series of shape (n_samples,)
            ``treat``: 1 = IHDP intervention, 0 = control.
        y : None
            No outcome is shipped.
        DESCR : str
            Source, citation, licence and columns.
        feature_names : list of str
        treatment_name : str
        target_name : None

    See Also
    --------
    load_lalonde, load_nhefs

    References
    ----------
    .. [1] Hill, J. L. (2011). Bayesian nonparametric modeling for causal inference. Journal of Computational and
       Graphical Statistics, 20(1), 217-240.

    Examples
    --------
    >>> from balance.datasets import load_ihdp_covariates
    >>> load_ihdp_covariates().X.shape
    (985, 25)
    >>> data = load_ihdp_covariates(hill_sample=True)
    >>> data.treatment.value_counts().sort_index().to_dict()
    {0: 608, 1: 139}
    """
    frame = _read_csv("ihdp_covariates.csv")
    if hill_sample:
        frame = frame[(frame["treat"] == 0) | (frame["momwhite"] == 1)]
    features = [c for c in frame.columns if c not in _IHDP_NOT_FEATURES]
    return _bunch(frame, frame.index, features, "treat", None, _describe("ihdp_covariates.csv"))
