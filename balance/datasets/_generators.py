"""Simulated data sets with known truth: the Kang-Schafer design and the synthetic timing design.

Both take ``random_state`` as anything :func:`numpy.random.default_rng` accepts (None, an int, a
:class:`numpy.random.Generator`, ...), so an int seed reproduces the draws.

References
----------
.. [1] Kang, J. D. Y. and Schafer, J. L. (2007). Demystifying double robustness: A comparison of alternative
   strategies for estimating a population mean from incomplete data. Statistical Science, 22(4), 523-539.
"""

from numbers import Integral

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.utils import Bunch

__all__ = ["make_kang_schafer", "make_synthetic"]

# Kang & Schafer: the propensity logit and the outcome regression, both linear in Z (no intercept in the logit).
_KS_PS_COEF = np.array([-1.0, 0.5, -0.25, -0.1])
_KS_Y_INTERCEPT = 210.0
_KS_Y_COEF = np.array([27.4, 13.7, 13.7, 13.7])

# Synthetic timing design of the WeightIt benchmarks.
_SYN_PS_INTERCEPT = -0.8
_SYN_PS_COEF = np.array([0.5, -0.4, 0.3, -0.3, 0.2, 0.2, -0.1, 0.1, 0.4, -0.5])
_SYN_Y_INTERCEPT = 1.0
_SYN_Y_COEF = np.array([1.0, 0.5, -0.5, 0.25, 0.25, 0.0, 0.0, 0.1, 0.5, -0.5])
_SYN_EFFECT = (1.0, 0.5)  # individual effect: 1 + 0.5 * x1

_KS_DESCR = """\
Kang and Schafer (2007) simulation design, as coded in Google's empirical_calibration (Apache-2.0).

Z1..Z4 ~ iid N(0, 1); treat ~ Bernoulli(expit(-Z1 + 0.5 Z2 - 0.25 Z3 - 0.1 Z4)), P(treat = 1) = 0.5;
y = 210 + 27.4 Z1 + 13.7 Z2 + 13.7 Z3 + 13.7 Z4 + N(0, 1), independent of treat given Z.
Observed ("misspecified") covariates: x1 = exp(Z1 / 2), x2 = Z2 / (1 + exp(Z1)) + 10,
x3 = (Z1 Z3 / 25 + 0.6)^3, x4 = (Z2 + Z4 + 20)^2.
Truth: the treatment has no effect, so the ATT and the ATE are 0; E[y] = 210 (the estimand of the missing-data
version, where y is seen only when treat = 1). The treated mean is about 200, the control mean about 220.

Columns: treat, z1..z4 (true covariates), x1..x4 (observed covariates), y.

Kang, J. D. Y. and Schafer, J. L. (2007). Demystifying double robustness: A comparison of alternative strategies
for estimating a population mean from incomplete data. Statistical Science, 22(4), 523-539.
"""

_SYN_DESCR = """\
Synthetic design on which the R package WeightIt was timed (10 covariates, binary treatment).

x1..x8 ~ iid N(0, 1); x9 ~ Bernoulli(0.4); x10 ~ Bernoulli(0.2).
treat ~ Bernoulli(expit(-0.8 + X beta)), beta = (0.5, -0.4, 0.3, -0.3, 0.2, 0.2, -0.1, 0.1, 0.4, -0.5);
about 35 % treated.
y = 1 + X gamma + treat (1 + 0.5 x1) + N(0, 1), gamma = (1, 0.5, -0.5, 0.25, 0.25, 0, 0, 0.1, 0.5, -0.5).
Truth: the individual effect is tau = 1 + 0.5 x1; true_att is its mean over the treated rows of the sample and
true_ate its mean over all rows.

Columns: treat, x1..x10, y. The draws differ from the stored R files (another generator), the distribution is the
same.
"""


def _check_n(n):
    # bool is an Integral, but make_*(True) is surely a mistake.
    if not isinstance(n, Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    return int(n)


def _simulated_bunch(frame, feature_names, descr, **extra):
    return Bunch(
        frame=frame,
        X=frame[feature_names],
        treatment=frame["treat"],
        y=frame["y"],
        DESCR=descr,
        feature_names=feature_names,
        treatment_name="treat",
        target_name="y",
        **extra,
    )


def make_kang_schafer(n=1000, *, random_state=None):
    """Simulate the Kang and Schafer (2007) design.

    Four latent standard-normal covariates Z drive both the treatment (response) indicator and the outcome;
    the analyst sees only nonlinear transforms X of them, so models linear in X are misspecified [1]_. The outcome
    does not depend on the treatment: the true ATT and ATE are 0, while the naive difference in means is about
    -20. The population mean of the outcome, the estimand of the original missing-data version, is 210.

    Parameters
    ----------
    n : int, default=1000
        Number of rows (Kang and Schafer used 200 and 1000).
    random_state : None, int or numpy.random.Generator, default=None
        Seed or generator, passed to :func:`numpy.random.default_rng`. A Generator is used (and advanced) as is.

    Returns
    -------
    data : sklearn.utils.Bunch
        With the keys:

        frame : DataFrame of shape (n, 10)
            Columns ``treat, z1, z2, z3, z4, x1, x2, x3, x4, y``.
        X : DataFrame of shape (n, 4)
            The observed covariates ``x1 = exp(z1/2)``, ``x2 = z2/(1 + exp(z1)) + 10``,
            ``x3 = (z1*z3/25 + 0.6)**3``, ``x4 = (z2 + z4 + 20)**2``.
        Z : DataFrame of shape (n, 4)
            The true covariates ``z1, z2, z3, z4``.
        treatment : Series of shape (n,)
            ``treat`` (int 0/1), drawn with probability ``propensity``.
        y : Series of shape (n,)
            ``210 + 27.4 z1 + 13.7 (z2 + z3 + z4) + N(0, 1)``.
        propensity : Series of shape (n,)
            The true ``P(treat = 1 | Z) = expit(-z1 + 0.5 z2 - 0.25 z3 - 0.1 z4)``.
        true_att, true_ate : float
            0.0: the treatment has no effect.
        true_mean : float
            210.0, the population mean of ``y``.
        DESCR : str
        feature_names : list of str
        treatment_name : str
        target_name : str

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer.

    See Also
    --------
    make_synthetic

    Notes
    -----
    The design follows the code of Google's ``empirical_calibration`` package (``data/kang_schafer.py``), in which
    the outcome is independent of the treatment given Z.

    References
    ----------
    .. [1] Kang, J. D. Y. and Schafer, J. L. (2007). Demystifying double robustness: A comparison of alternative
       strategies for estimating a population mean from incomplete data. Statistical Science, 22(4), 523-539.

    Examples
    --------
    >>> from balance.datasets import make_kang_schafer
    >>> data = make_kang_schafer(200, random_state=0)
    >>> data.X.shape, data.Z.shape
    ((200, 4), (200, 4))
    >>> data.true_att
    0.0
    """
    n = _check_n(n)
    rng = np.random.default_rng(random_state)
    z = rng.standard_normal((n, 4))
    propensity = expit(z @ _KS_PS_COEF)
    treat = (rng.random(n) < propensity).astype(np.int64)
    y = _KS_Y_INTERCEPT + z @ _KS_Y_COEF + rng.standard_normal(n)
    z1, z2, z3, z4 = z.T
    x = np.column_stack([
        np.exp(z1 / 2),
        z2 / (1 + np.exp(z1)) + 10,
        (z1 * z3 / 25 + 0.6) ** 3,
        (z2 + z4 + 20) ** 2,
    ])
    frame = pd.DataFrame({"treat": treat})
    frame[["z1", "z2", "z3", "z4"]] = z
    frame[["x1", "x2", "x3", "x4"]] = x
    frame["y"] = y
    return _simulated_bunch(
        frame,
        ["x1", "x2", "x3", "x4"],
        _KS_DESCR,
        Z=frame[["z1", "z2", "z3", "z4"]],
        propensity=pd.Series(propensity, name="propensity"),
        true_att=0.0,
        true_ate=0.0,
        true_mean=_KS_Y_INTERCEPT,
    )


def make_synthetic(n=1000, *, random_state=None):
    """Simulate the synthetic design on which the R package WeightIt was timed.

    Ten covariates (eight normal, two binary), a logistic treatment assignment with about 35 % treated and a
    linear outcome whose treatment effect varies with ``x1``. Same distribution as the stored timing files, not the
    same draws (they were made with R's generator).

    Parameters
    ----------
    n : int, default=1000
        Number of rows.
    random_state : None, int or numpy.random.Generator, default=None
        Seed or generator, passed to :func:`numpy.random.default_rng`. A Generator is used (and advanced) as is.

    Returns
    -------
    data : sklearn.utils.Bunch
        With the keys:

        frame : DataFrame of shape (n, 12)
            Columns ``treat, x1, ..., x10, y``; ``treat``, ``x9`` and ``x10`` are int 0/1.
        X : DataFrame of shape (n, 10)
            ``x1, ..., x8 ~ N(0, 1)``, ``x9 ~ Bernoulli(0.4)``, ``x10 ~ Bernoulli(0.2)``, independent.
        treatment : Series of shape (n,)
            ``treat``, drawn with probability ``propensity``.
        y : Series of shape (n,)
            ``1 + X @ gamma + treat * (1 + 0.5 x1) + N(0, 1)``.
        propensity : Series of shape (n,)
            The true ``P(treat = 1 | X) = expit(-0.8 + X @ beta)``.
        tau : Series of shape (n,)
            The individual effects ``1 + 0.5 x1``.
        true_att : float
            Mean of ``tau`` over the treated rows (the sample ATT).
        true_ate : float
            Mean of ``tau`` over all rows (the sample ATE).
        DESCR : str
        feature_names : list of str
        treatment_name : str
        target_name : str

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer.

    See Also
    --------
    make_kang_schafer

    Notes
    -----
    ``beta = (0.5, -0.4, 0.3, -0.3, 0.2, 0.2, -0.1, 0.1, 0.4, -0.5)`` and
    ``gamma = (1, 0.5, -0.5, 0.25, 0.25, 0, 0, 0.1, 0.5, -0.5)``. If no row is treated, ``true_att`` is NaN.

    Examples
    --------
    >>> from balance.datasets import make_synthetic
    >>> data = make_synthetic(500, random_state=0)
    >>> data.frame.shape
    (500, 12)
    >>> bool(abs(data.true_ate - data.tau.mean()) < 1e-12)
    True
    """
    n = _check_n(n)
    rng = np.random.default_rng(random_state)
    x = np.column_stack([
        rng.standard_normal((n, 8)),
        rng.binomial(1, 0.4, n),
        rng.binomial(1, 0.2, n),
    ])
    propensity = expit(_SYN_PS_INTERCEPT + x @ _SYN_PS_COEF)
    treat = (rng.random(n) < propensity).astype(np.int64)
    tau = _SYN_EFFECT[0] + _SYN_EFFECT[1] * x[:, 0]
    y = _SYN_Y_INTERCEPT + x @ _SYN_Y_COEF + treat * tau + rng.standard_normal(n)
    names = [f"x{j}" for j in range(1, 11)]
    frame = pd.DataFrame(x, columns=names).astype({"x9": np.int64, "x10": np.int64})
    frame.insert(0, "treat", treat)
    frame["y"] = y
    return _simulated_bunch(
        frame,
        names,
        _SYN_DESCR,
        propensity=pd.Series(propensity, name="propensity"),
        tau=pd.Series(tau, name="tau"),
        true_att=float(tau[treat == 1].mean()) if treat.any() else float("nan"),
        true_ate=float(tau.mean()),
    )
