"""Exceptions shared by several weighting methods."""


class InfeasibleBalanceError(ValueError):
    """The balance a weighter is asked for cannot be reached on these data with these settings.

    Raised, for example, by entropy balancing when a target mean lies outside the range of the reweighted units'
    values, or by stable weights when no non-negative weights meet the tolerances. It is a ``ValueError`` (the
    settings do not fit the data); :meth:`balance.BaseWeighter.score` scores such a sample as the worst possible
    balance (``-inf``) rather than failing, so that a search over settings ranks those settings last.
    """
