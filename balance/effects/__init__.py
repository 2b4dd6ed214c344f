"""Effect estimation on weighted data."""

from ._wls import weighted_least_squares

__all__ = ["weighted_least_squares"]
