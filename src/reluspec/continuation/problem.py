"""Continuation problems: a residual F(u, p) = 0 with its derivatives."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["ContinuationProblem"]

# Central differences with a step of eps**(1/3) balance truncation and rounding
# errors; the derivative is then accurate to about eps**(2/3) ~ 4e-11 relative.
_FD_STEP = np.finfo(float).eps ** (1.0 / 3.0)


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ContinuationProblem:
    r"""A residual :math:`F(u, p) = 0` for :math:`u \in \mathbb{R}^n` and a scalar p.

    Parameters
    ----------
    residual : callable
        ``residual(u, p) -> ndarray`` of shape ``(n,)``.
    u0 : array_like
        Start state, shape ``(n,)``. It need not solve the residual exactly:
        :func:`continuation` corrects it by Newton's method at fixed ``p0``.
    p0 : float
        Start parameter, > 0 for ``parameter_scale="log"``.
    jacobian : callable, optional
        ``jacobian(u, p) -> ndarray`` of shape ``(n, n)``, the Jacobian
        :math:`F_u = \partial F / \partial u`. When omitted, central finite
        differences with step ``eps**(1/3) * max(1, |u_j|)`` are used (2n
        residual calls, about 10 correct digits).
    parameter_derivative : callable, optional
        ``parameter_derivative(u, p) -> ndarray`` of shape ``(n,)``, the
        derivative :math:`F_p = \partial F / \partial p` with respect to the
        caller's parameter p, also with the log scale (the solver applies the
        chain rule :math:`\partial F/\partial \ln p = p\,F_p`). Central finite
        differences in the internal parameter when omitted.
    stability_matrix : callable, optional
        ``stability_matrix(u, p) -> ndarray`` of shape ``(n, n)``, symmetric;
        each negative eigenvalue counts one unstable direction. For a
        gradient problem :math:`F = \nabla_u f` this is the Hessian of the
        free energy :math:`f`, whose minima are the stable states. When
        omitted, the unstable directions are the eigenvalues of :math:`F_u`
        with negative real part, which is linear stability under the flow
        :math:`du/dt = -F(u, p)`. Under that convention, for
        :math:`F = \nabla f` the two counts agree.
    parameter_scale : {"linear", "log"}, default "linear"
        Coordinate in which the solver steps: :math:`q = p`, or
        :math:`q = \ln p` so that a range such as :math:`10^{-1}` to
        :math:`10^4` takes tens of steps. Step sizes, tangents and the
        ``tangent`` argument of :func:`continuation` refer to ``(u, q)``.
    name : str, default ""
        Label copied to every :class:`Branch`.
    stepper : callable, optional
        A compiled implementation of the stepping loop for this residual,
        with the interface of ``reluspec._kernels.symmetric_palc``
        (``stepper(points, count, ds, settings, report) -> status``). It
        must take the decisions of the Python loop with the same formulas;
        :func:`continuation` then runs it and locates the special points
        between the points it returns. Library problems set it; leave it
        None otherwise.

    Raises
    ------
    ValueError
        If a callable is not callable, ``u0`` is not a finite non-empty 1-D
        array, ``p0`` is not finite (or not > 0 with the log scale), or the
        scale is unknown.
    """

    residual: Callable
    u0: np.ndarray
    p0: float
    jacobian: Callable | None = None
    parameter_derivative: Callable | None = None
    stability_matrix: Callable | None = None
    parameter_scale: str = "linear"
    name: str = ""
    stepper: Callable | None = None

    def __post_init__(self):
        if not callable(self.residual):
            raise ValueError(
                f"residual={self.residual!r} is invalid: it must be callable"
            )
        for field in ("jacobian", "parameter_derivative", "stability_matrix", "stepper"):
            value = getattr(self, field)
            if value is not None and not callable(value):
                raise ValueError(
                    f"{field}={value!r} is invalid: it must be callable or None"
                )
        try:
            u0 = np.array(self.u0, dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"u0 is invalid: it must be a 1-D float array ({err})"
            ) from err
        if u0.ndim != 1 or u0.size == 0:
            raise ValueError(
                f"u0 is invalid: it must be a non-empty 1-D array, got shape {u0.shape}"
            )
        if not np.all(np.isfinite(u0)):
            raise ValueError("u0 is invalid: it contains NaN or infinite entries")
        object.__setattr__(self, "u0", _readonly(u0))
        try:
            p0 = float(self.p0)
        except (TypeError, ValueError):
            raise ValueError(
                f"p0={self.p0!r} is invalid: it must be a real number"
            ) from None
        if not math.isfinite(p0):
            raise ValueError(f"p0={self.p0!r} is invalid: it must be finite")
        object.__setattr__(self, "p0", p0)
        if self.parameter_scale not in ("linear", "log"):
            raise ValueError(
                f"parameter_scale={self.parameter_scale!r} is invalid: it must be "
                "'linear' or 'log'"
            )
        if self.parameter_scale == "log" and p0 <= 0:
            raise ValueError(
                f"p0={p0!r} is invalid for parameter_scale='log': it must be > 0"
            )
        if not isinstance(self.name, str):
            raise ValueError(f"name={self.name!r} is invalid: it must be a string")

    @property
    def n(self) -> int:
        """Dimension of the state u."""
        return self.u0.size


class _System:
    """The problem in internal coordinates ``z = (u, q)``, with shape checks."""

    def __init__(self, problem: ContinuationProblem):
        self.problem = problem
        self.n = problem.n
        self.log = problem.parameter_scale == "log"
        self.has_stability_matrix = problem.stability_matrix is not None

    # -- parameter transform --------------------------------------------------

    def parameter(self, q: float) -> float:
        """Return the caller's p for the internal coordinate q."""
        return math.exp(q) if self.log else float(q)

    def internal(self, p: float) -> float:
        """Return the internal coordinate q for the caller's p."""
        return math.log(p) if self.log else float(p)

    # -- user callables with checks -------------------------------------------

    def residual_up(self, u: np.ndarray, p: float) -> np.ndarray:
        value = np.asarray(self.problem.residual(u.copy(), p), dtype=float)
        if value.shape != (self.n,):
            raise ValueError(
                f"residual returned shape {value.shape}, expected ({self.n},)"
            )
        return value

    def jacobian_u(self, u: np.ndarray, p: float) -> np.ndarray:
        if self.problem.jacobian is None:
            return self._fd_jacobian(u, p)
        value = np.asarray(self.problem.jacobian(u.copy(), p), dtype=float)
        if value.shape != (self.n, self.n):
            raise ValueError(
                f"jacobian returned shape {value.shape}, expected ({self.n}, {self.n})"
            )
        return value

    def jacobian_q(self, u: np.ndarray, q: float) -> np.ndarray:
        """Return dF/dq, with the chain rule for the log scale."""
        p = self.parameter(q)
        if self.problem.parameter_derivative is None:
            h = _FD_STEP * max(1.0, abs(q))
            plus = self.residual_up(u, self.parameter(q + h))
            minus = self.residual_up(u, self.parameter(q - h))
            return (plus - minus) / (2.0 * h)
        value = np.asarray(self.problem.parameter_derivative(u.copy(), p), dtype=float)
        if value.shape != (self.n,):
            raise ValueError(
                f"parameter_derivative returned shape {value.shape}, expected "
                f"({self.n},)"
            )
        return value * p if self.log else value

    def stability_matrix(self, u: np.ndarray, p: float) -> np.ndarray:
        value = np.asarray(self.problem.stability_matrix(u.copy(), p), dtype=float)
        if value.shape != (self.n, self.n):
            raise ValueError(
                f"stability_matrix returned shape {value.shape}, expected "
                f"({self.n}, {self.n})"
            )
        scale = (
            max(1.0, float(np.max(np.abs(value))))
            if np.all(np.isfinite(value))
            else 1.0
        )
        if np.max(np.abs(value - value.T)) > 1e-8 * scale:
            raise ValueError(
                f"stability_matrix at p={p:.6g} is not symmetric (max asymmetry "
                f"{np.max(np.abs(value - value.T)):.3e}); it must return a "
                "symmetric matrix such as a Hessian"
            )
        return value

    def _fd_jacobian(self, u: np.ndarray, p: float) -> np.ndarray:
        jac = np.empty((self.n, self.n))
        for j in range(self.n):
            h = _FD_STEP * max(1.0, abs(u[j]))
            shifted = u.copy()
            shifted[j] = u[j] + h
            plus = self.residual_up(shifted, p)
            shifted[j] = u[j] - h
            minus = self.residual_up(shifted, p)
            jac[:, j] = (plus - minus) / (2.0 * h)
        return jac

    # -- functions of z -------------------------------------------------------

    def residual(self, z: np.ndarray) -> np.ndarray:
        return self.residual_up(z[: self.n], self.parameter(z[self.n]))

    def jacobian_z(self, z: np.ndarray) -> np.ndarray:
        """Return the n x (n+1) matrix [F_u, F_q] at z."""
        u = z[: self.n]
        q = z[self.n]
        jac = np.empty((self.n, self.n + 1))
        jac[:, : self.n] = self.jacobian_u(u, self.parameter(q))
        jac[:, self.n] = self.jacobian_q(u, q)
        return jac
