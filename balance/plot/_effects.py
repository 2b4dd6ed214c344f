"""Plots of estimated effects and of training curves: CATE against a covariate, the average dose-response function
of a continuous treatment, CBIPM's IPM history."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import as_1d, check_indexes_agree
from ._common import get_axes

CATE_KINDS = ("line", "scatter")


def _numeric(values, name, n=None):
    arr, _ = as_1d(values, name)
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric.") from exc
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but x has {n}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has {int(np.sum(~np.isfinite(arr)))} missing or infinite values.")
    return arr


def _from_learner(x, learner, X):
    """The covariate column ``x`` of ``X`` and the learner's CATE predictions at every row of ``X``."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError("with a fitted learner, pass the covariates as a DataFrame X= and x as one of its columns.")
    if x not in X.columns:
        raise ValueError(f"x={x!r} is not a column of X; the columns are {list(X.columns)}.")
    return X[x], learner.predict(X), str(x)


def cate_plot(x, cate, *, lower=None, upper=None, X=None, kind=None, ax=None):
    """Plot conditional average treatment effects (CATE) against one covariate, with an optional band.

    Either arrays (a covariate and CATE estimates at its values, e.g. on a grid, with pointwise interval bounds),
    or a fitted CATE learner (anything with ``predict(X)``, such as the learners of :mod:`balance.hte`) together
    with the covariates ``X`` and the name of the covariate to put on the horizontal axis; the learner's
    predictions at every row of ``X`` are then plotted against that column.

    Parameters
    ----------
    x : array-like of shape (n_points,) or str
        Covariate values; with a learner, the name of a column of ``X``.
    cate : array-like of shape (n_points,) or fitted learner
        CATE estimates at ``x``, or a fitted learner with ``predict(X)``.
    lower, upper : array-like of shape (n_points,), default=None
        Pointwise lower and upper bounds, drawn as a shaded band (both or neither; arrays only).
    X : DataFrame, default=None
        Covariates to predict at (learner only).
    kind : {"line", "scatter"}, default=None
        A line through the points sorted by ``x``, or one dot per point. None: "line" for arrays, "scatter" for
        a learner (whose unit-level predictions also vary with the other covariates).
    ax : matplotlib Axes, default=None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on; a horizontal line marks zero effect.

    Raises
    ------
    ValueError
        If the arrays differ in length, hold missing values, only one bound is given, a bound lies on the wrong
        side of the estimate, ``x`` is not a column of ``X``, or for an unknown ``kind``.
    TypeError
        If a learner is given without a DataFrame ``X``, or bounds are given with a learner.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from balance.plot import cate_plot
    >>> grid = np.linspace(0, 1, 21)
    >>> ax = cate_plot(grid, 1 + grid, lower=0.8 + grid, upper=1.2 + grid)
    >>> ax.get_lines()[0].get_ydata()[:3].round(2)
    array([1.  , 1.05, 1.1 ])
    >>> plt.close(ax.figure)
    """
    if kind is not None and kind not in CATE_KINDS:
        raise ValueError(f"kind={kind!r} is not supported; choose one of {list(CATE_KINDS)}.")
    if (lower is None) != (upper is None):
        raise ValueError("give both lower and upper for a band, or neither.")
    if hasattr(cate, "predict"):
        if lower is not None:
            raise TypeError("lower/upper come with arrays of CATE estimates, not with a learner.")
        x, cate, xlabel = _from_learner(x, cate, X)
        kind = kind or "scatter"
    else:
        if X is not None:
            raise TypeError("X= is used only with a fitted learner; with arrays, pass x and cate directly.")
        xlabel = getattr(x, "name", None) or "x"
        kind = kind or "line"
        check_indexes_agree(x=x, cate=cate, lower=lower, upper=upper)
    xs = _numeric(x, "x")
    est = _numeric(cate, "cate", xs.shape[0])
    order = np.argsort(xs, kind="stable")
    if lower is not None:
        lo, hi = _numeric(lower, "lower", xs.shape[0]), _numeric(upper, "upper", xs.shape[0])
        if np.any(lo > est) or np.any(hi < est):
            raise ValueError("the band must contain the estimate: lower <= cate <= upper at every point.")

    ax = get_axes(ax)
    if kind == "line":
        ax.plot(xs[order], est[order], color="C0", label="CATE")
    else:
        ax.scatter(xs, est, s=8, color="C0", alpha=0.6, label="CATE")
    if lower is not None:
        ax.fill_between(xs[order], lo[order], hi[order], color="C0", alpha=0.25, label="Interval")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(str(xlabel))
    ax.set_ylabel("Conditional average treatment effect")
    ax.legend()
    return ax


def _history(history):
    """The history as a DataFrame (one column per problem), from an estimator, a DataFrame or an array."""
    if hasattr(history, "ipm_history_"):
        if history.ipm_history_ is None:
            raise ValueError(f"{type(history).__name__} recorded no IPM history (e.g. solver='qp' solves in one "
                             "step); there is no training curve to plot.")
        history = history.ipm_history_
    elif hasattr(history, "fit"):
        raise TypeError(f"{type(history).__name__} has no ipm_history_; fit a CBIPM estimator first, or pass the "
                        "history as an array.")
    if isinstance(history, pd.Series):
        history = history.to_frame(history.name or "IPM")
    if not isinstance(history, pd.DataFrame):
        arr = np.asarray(history)
        if arr.ndim not in (1, 2) or arr.shape[0] == 0:
            raise ValueError(f"history must be a non-empty 1-d or 2-d array; got shape {arr.shape}.")
        history = pd.DataFrame(arr.reshape(arr.shape[0], -1))
        history.columns = ["IPM"] if history.shape[1] == 1 else [f"problem {j}" for j in history.columns]
    try:
        values = history.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("history must be numeric.") from exc
    if values.shape[0] == 0:
        raise ValueError("history is empty.")
    return history, values


def ipm_history_plot(history, *, log=False, ax=None):
    """Plot a CBIPM training curve: the IPM objective per epoch, one line per balancing problem.

    Parameters
    ----------
    history : fitted estimator with ``ipm_history_``, DataFrame, Series or array-like of shape (n_epochs,) or (n_epochs, n_problems)
        A fitted :class:`balance.CBIPM`-like estimator (its ``ipm_history_``: one column per weighted arm, indexed
        by epoch) or the history itself. Epochs are the DataFrame's index, else 0, 1, ...
    log : bool, default=False
        Logarithmic vertical axis (useful when the objective falls by orders of magnitude; it must then be
        positive).
    ax : matplotlib Axes, default=None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on, one ``Line2D`` per problem labelled by its column name.

    Raises
    ------
    ValueError
        If the estimator recorded no history, the history is empty or not 1-d/2-d, or ``log=True`` with values
        that are not positive.
    TypeError
        If an estimator without ``ipm_history_`` or a non-numeric history is given.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from balance.plot import ipm_history_plot
    >>> ax = ipm_history_plot([0.5, 0.2, 0.1, 0.08], log=True)
    >>> ax.get_yscale()
    'log'
    >>> plt.close(ax.figure)
    """
    frame, values = _history(history)
    if not np.all(np.isfinite(values)):
        raise ValueError("history has missing or infinite values.")
    if log and np.any(values <= 0):
        raise ValueError("log=True needs a positive objective; the history has values <= 0.")
    ax = get_axes(ax)
    epochs = frame.index.to_numpy()
    for j, name in enumerate(frame.columns):
        ax.plot(epochs, values[:, j], label=str(name))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(frame.index.name or "epoch")
    ax.set_ylabel("IPM objective")
    ax.set_title("Training curve")
    ax.legend()
    return ax


def dose_response_plot(model, doses=None, *, n_points=200, alpha=None, rug=True, ax=None):
    """Plot the average dose-response function (ADRF) of a fitted :class:`~balance.WeightedDoseResponse`, with its
    pointwise confidence band and a rug of the observed treatment values.

    Parameters
    ----------
    model : fitted WeightedDoseResponse
    doses : array-like of shape (n_doses,), default=None
        Where to evaluate the curve; None: ``n_points`` doses evenly over the observed range of the treatment.
    n_points : int, default=200
    alpha : float, default=None
        1 − the band's confidence level; None: the model's ``alpha``. The band is pointwise (from
        ``model.predict``: normal limits for the sandwiches, percentile limits for the bootstraps), not simultaneous.
    rug : bool, default=True
        Mark every observed treatment value along the horizontal axis (where the data are, and where the curve is
        extrapolated).
    ax : matplotlib Axes, default=None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on: the curve is the ``Line2D`` labelled "ADRF", the band a ``PolyCollection``, the rug a
        ``LineCollection`` with gid "rug".

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from balance import PropensityWeights, WeightedDoseResponse
    >>> from balance.datasets import load_lalonde
    >>> from balance.plot import dose_response_plot
    >>> data = load_lalonde()
    >>> X, dose = data.X.drop(columns="re75"), data.X["re75"]
    >>> model = WeightedDoseResponse(PropensityWeights(), "spline", knots=[1000, 4000])
    >>> fit = model.fit(X, dose, data.y)
    >>> ax = dose_response_plot(fit)
    >>> ax.get_xlabel()
    're75'
    >>> plt.close("all")
    """
    if not hasattr(model, "predict") or not hasattr(model, "doses_"):
        raise TypeError(f"model must be a fitted WeightedDoseResponse; got {type(model).__name__} (call fit first).")
    if not (isinstance(n_points, (int, np.integer)) and n_points >= 2):
        raise ValueError(f"n_points={n_points!r} must be an integer >= 2.")
    observed = np.asarray(model.doses_, dtype=float)
    grid = np.linspace(observed.min(), observed.max(), n_points) if doses is None else np.sort(_numeric(doses, "doses"))
    table = model.predict(grid, alpha=alpha)
    level = 100 * (1 - (model.alpha if alpha is None else alpha))
    ax = get_axes(ax)
    ax.fill_between(grid, table["conf_low"], table["conf_high"], color="C0", alpha=0.25,
                    label=f"{level:g}% pointwise interval")
    ax.plot(grid, table["estimate"], color="C0", label="ADRF")
    if rug:
        ax.vlines(observed, 0, 0.03, transform=ax.get_xaxis_transform(), color="black", alpha=0.3, linewidth=0.5,
                  gid="rug")
    ax.set_xlabel(model.treatment_name_)
    ax.set_ylabel("Average potential outcome E[Y(a)]")
    ax.set_title(f"Average dose-response ({model.outcome_model}, vcov={model.vcov_type_})")
    ax.legend()
    return ax
