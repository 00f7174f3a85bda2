"""Exception and warning classes of the continuation solver."""

from __future__ import annotations

import numpy as np

__all__ = ["ContinuationError", "ConvergenceWarning"]


class ContinuationError(RuntimeError):
    """Failure of Newton's method or of a continuation start.

    Parameters
    ----------
    message : str
        What failed, where, and what to try next.
    residual_norm : float, optional
        Max-norm of the residual at the last iterate.
    iterations : int, optional
        Newton iterations (linear solves) performed.
    point : array_like, optional
        Last iterate: ``u`` for a start, ``(u, q)`` for a corrector step.
    parameter : float, optional
        Parameter ``p`` in the caller's scale at the failure, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        residual_norm: float | None = None,
        iterations: int | None = None,
        point=None,
        parameter: float | None = None,
    ):
        super().__init__(message)
        self.residual_norm = residual_norm
        self.iterations = iterations
        self.point = None if point is None else np.array(point, dtype=float)
        self.parameter = parameter


class ConvergenceWarning(UserWarning):
    """A special point was located, but not to the requested tolerance."""
