"""Defining systems of branch points, folds and first-order transitions.

Each special point solves a regular augmented system, which Newton's method
solves to rounding level in double precision and which
:func:`refine_alpha_mp` solves again in mpmath at any precision.

* Branch point of the unspecialised branch, unknowns ``(m, C, alpha)`` with
  ``R = S = m / K``: stationarity along ``e_m`` and ``e_C`` and a vanishing
  curvature ``h_dd = e_d^T H e_d`` along the symmetry-breaking direction.
* Fold of any branch, unknowns ``(u, alpha, v)``: ``grad F = 0``,
  ``H v = 0`` and ``l . v = 1`` (the Moore-Spence system).
* First-order transition, unknowns ``(u1, u2, alpha)``: both states
  stationary and ``F(u1) = F(u2)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mpmath
import numpy as np

from ..theory.free_energy import (
    symmetric_free_energy_gradient_mp,
    symmetric_free_energy_mp,
)
from .problem import SpecializationProblem

__all__ = [
    "LocatedPoint",
    "LocationError",
    "locate_branch_point",
    "locate_fold",
    "locate_first_order",
    "refine_alpha_mp",
]

logger = logging.getLogger(__name__)


class LocationError(RuntimeError):
    """Raised when Newton's method on a defining system does not converge."""


@dataclass(frozen=True)
class LocatedPoint:
    """Solution of a defining system.

    ``states`` lists the (R, S, C) states involved: one, or two for a
    first-order transition. ``alpha_error`` is the alpha component of the
    Newton correction computed at the solution, a first-order estimate of the
    distance to the exact root. ``residual`` is the max-norm of the system.
    """

    kind: str
    alpha: float
    states: tuple
    alpha_error: float
    residual: float
    iterations: int
    unknowns: np.ndarray


def _newton(
    system, x0, kind, alpha_index, tol=1e-13, max_iter=40, floor=1e-7, samples=16
):
    """Solve ``system(x) -> (residual, jacobian)`` by Newton's method.

    Converged when a relative step is below ``tol``. Rounding in an
    ill-conditioned system can keep the steps above ``tol``. The iterate is
    therefore also accepted when the last three steps were all below
    ``floor`` and either ``max_iter`` steps were taken or the last three
    steps set no new minimum (the steps bounce at the rounding level instead
    of shrinking); ``alpha_error`` then reports their size.
    ``samples`` is passed to :func:`_rounding_error`.
    """
    x = np.array(x0, dtype=float)
    history = []
    for iteration in range(1, max_iter + 1):
        r, J = system(x)
        if not np.all(np.isfinite(r)) or not np.all(np.isfinite(J)):
            raise LocationError(
                f"{kind}: the defining system is not finite at {x.tolist()} "
                f"after {iteration - 1} Newton steps"
            )
        try:
            step = np.linalg.solve(J, -r)
        except np.linalg.LinAlgError as error:
            raise LocationError(
                f"{kind}: singular Jacobian of the defining system at {x.tolist()}"
            ) from error
        x = x + step
        size = float(np.max(np.abs(step) / np.maximum(1.0, np.abs(x))))
        history.append((size, abs(step[alpha_index])))
        recent = [h for h, _ in history[-3:]]
        stalled = len(history) >= 6 and min(recent) >= min(
            h for h, _ in history[:-3]
        )
        if size <= tol or (
            (iteration == max_iter or stalled) and max(recent) <= floor
        ):
            r, J = system(x)
            alpha_error = _rounding_error(system, x, r, J, alpha_index, samples)
            if size > tol:
                alpha_error = max(alpha_error, max(a for _, a in history[-3:]))
            return x, alpha_error, float(np.max(np.abs(r))), iteration
    error = LocationError(
        f"{kind}: Newton's method did not converge in {max_iter} steps from "
        f"{np.asarray(x0).tolist()}; relative step sizes were "
        f"{', '.join(f'{h:.1e}' for h, _ in history[-5:])}"
    )
    error.iterate = x
    raise error


# Digits of the mpmath iteration that takes over when rounding stalls
# Newton's method in double precision.
_FALLBACK_DPS = 30
# Minimum number of correct digits of alpha for that iteration to count.
_FALLBACK_MIN_DIGITS = 12


def _solve_defining_system(problem, system, x0, kind, alpha_index):
    """Solve a defining system by :func:`_newton`, and in mpmath where
    rounding stalls the double-precision steps.

    Near a branch point at large K a fold or an equal-free-energy point lies
    so close to the branch point that the system is singular to rounding:
    Newton's steps then wander at the 1e-7 level. The mpmath iteration of
    :func:`refine_alpha_mp`, started from the last iterate, does not see
    that rounding. The result has the form of :func:`_newton`'s.
    """
    try:
        return _newton(system, x0, kind, alpha_index)
    except LocationError as error:
        iterate = getattr(error, "iterate", None)
        if iterate is None or not np.all(np.isfinite(iterate)):
            raise
        stalled = str(error)
        try:
            x_mp, digits = _refine_mp(
                problem, _KIND_NAMES[kind], iterate, _FALLBACK_DPS, max_iter=60
            )
        except (
            LocationError,
            ValueError,
            ZeroDivisionError,
            np.linalg.LinAlgError,
        ) as mp_error:
            raise LocationError(
                f"{stalled}; the iteration in mpmath from the last iterate failed "
                f"too: {mp_error}"
            ) from None
    if digits < _FALLBACK_MIN_DIGITS:
        raise LocationError(
            f"{stalled}; the iteration in mpmath from the last iterate reached "
            f"only {digits} correct digits"
        )
    x = np.array([float(c) for c in x_mp])
    r, _ = system(x)
    alpha = abs(x[alpha_index])
    alpha_error = max(alpha * 10.0 ** (-digits), 4 * np.finfo(float).eps * alpha)
    logger.info(
        "%s located in mpmath at alpha = %.15g after Newton's method stalled in "
        "double precision",
        kind,
        x[alpha_index],
    )
    return x, alpha_error, float(np.max(np.abs(r))), 40


_KIND_NAMES = {
    "branch point": "branch_point",
    "fold": "fold",
    "first-order point": "first_order",
}


def _rounding_error(system, x, r, J, alpha_index, samples=16):
    """Estimate the error of the alpha component of a converged root.

    ``system(x, jacobian)`` returns the residual and, with ``jacobian``
    true, its Jacobian.

    The computed root is off by about ``J^-1`` times the rounding error of
    the residual. That error is sampled by evaluating the residual at points
    a few ulp away and removing the linear change ``J dx``; the estimate is
    four times the largest resulting alpha correction (the correction of the
    residual at the root itself among them), plus the rounding of alpha.
    """
    rng = np.random.default_rng(0)
    signs = rng.choice([-1.0, 1.0], size=(samples, x.size))
    steps = 4 * np.finfo(float).eps * np.abs(x) * signs
    noise = np.empty((x.size, samples + 1))
    noise[:, 0] = -r
    for k, dx in enumerate(steps):
        # Only the residual: a system takes jacobian=False to skip its
        # Jacobian, the costly part (third derivatives for a fold).
        r_near, _ = system(x + dx, False)
        noise[:, k + 1] = r_near - r - J @ dx
    try:
        corrections = np.linalg.solve(J, noise)[alpha_index]
    except np.linalg.LinAlgError:
        return float("nan")
    # The samples find the size of the rounding error, not its maximum.
    # With 6 samples the actual errors against 30-digit mpmath roots reached
    # 3.6 times the largest sampled correction. With 16 samples and the
    # factor 4 they stayed below 0.7 of the estimate (erf K = 10 and 15).
    spread = 4.0 * float(np.max(np.abs(corrections)))
    return spread + 2 * np.finfo(float).eps * abs(x[alpha_index])


def locate_branch_point(problem: SpecializationProblem, u0, alpha0) -> LocatedPoint:
    """Locate the branch point of the unspecialised branch near ``(u0, alpha0)``."""
    K = problem.K
    e_m, e_C = problem.e_m, problem.e_C
    m0 = float(u0[0] + (K - 1) * u0[1])

    def state(x):
        return x[0] * e_m + x[1] * e_C

    def system(x, jacobian=True):
        u, alpha = state(x), x[2]
        if not problem.is_valid(u) or not alpha > 0:
            return np.full(3, np.nan), np.full((3, 3), np.nan)
        g = problem.gradient(u, alpha)
        r = np.array([g @ e_m, g @ e_C, _breaking_curvature(problem, x)])
        return r, _branch_point_jacobian(problem, x) if jacobian else None

    x, alpha_error, residual, iterations = _newton(
        system, [m0, float(u0[2]), float(alpha0)], "branch point", 2
    )
    return LocatedPoint(
        "branch_point", float(x[2]), (state(x),), alpha_error, residual, iterations, x
    )


def locate_fold(problem: SpecializationProblem, u0, alpha0, v0=None) -> LocatedPoint:
    """Locate a fold (a turning point in alpha) near ``(u0, alpha0)``.

    ``v0`` approximates the null vector of the Hessian; by default the
    eigenvector of the eigenvalue closest to zero.
    """
    u0 = np.asarray(u0, dtype=float)
    if v0 is None:
        w, V = np.linalg.eigh(problem.hessian(u0, alpha0))
        v0 = V[:, np.argmin(np.abs(w))]
    v0 = np.asarray(v0, dtype=float)
    ell = v0 / np.linalg.norm(v0)
    v0 = ell.copy()

    def system(x, jacobian=True):
        u, alpha, v = x[:3], x[3], x[4:]
        if not problem.is_valid(u) or not alpha > 0:
            return np.full(7, np.nan), np.full((7, 7), np.nan)
        g = problem.gradient(u, alpha)
        H = problem.hessian(u, alpha)
        r = np.concatenate([g, H @ v, [ell @ v - 1.0]])
        return r, _fold_jacobian(problem, x, ell) if jacobian else None

    x, alpha_error, residual, iterations = _solve_defining_system(
        problem, system, np.concatenate([u0, [alpha0], v0]), "fold", 3
    )
    return LocatedPoint(
        "fold", float(x[3]), (x[:3].copy(),), alpha_error, residual, iterations, x
    )


def locate_first_order(problem: SpecializationProblem, u1, u2, alpha0) -> LocatedPoint:
    """Locate the alpha where the states near ``u1`` and ``u2`` have equal F."""

    def system(x, jacobian=True):
        a, b, alpha = x[:3], x[3:6], x[6]
        if not (problem.is_valid(a) and problem.is_valid(b)) or not alpha > 0:
            return np.full(7, np.nan), np.full((7, 7), np.nan)
        r = np.concatenate(
            [
                problem.gradient(a, alpha),
                problem.gradient(b, alpha),
                [problem.free_energy(a, alpha) - problem.free_energy(b, alpha)],
            ]
        )
        return r, _first_order_jacobian(problem, x) if jacobian else None

    x0 = np.concatenate([np.asarray(u1, float), np.asarray(u2, float), [alpha0]])
    x, alpha_error, residual, iterations = _solve_defining_system(
        problem, system, x0, "first-order point", 6
    )
    if np.max(np.abs(x[:3] - x[3:6])) < 1e-6:
        raise LocationError(
            f"first-order point: both states converged to the same state {x[:3].tolist()}"
        )
    return LocatedPoint(
        "first_order",
        float(x[6]),
        (x[:3].copy(), x[3:6].copy()),
        alpha_error,
        residual,
        iterations,
        x,
    )


# -- high precision ---------------------------------------------------------------
def _gradient_mp(problem, u, alpha):
    R, S, C = u
    return list(
        symmetric_free_energy_gradient_mp(
            problem.activation, R, S, C, alpha, problem.K, dps=mpmath.mp.dps
        )
    )


def _free_energy_mp(problem, u, alpha):
    R, S, C = u
    return symmetric_free_energy_mp(
        problem.activation, R, S, C, alpha, problem.K, dps=mpmath.mp.dps
    )


def _directional_derivative_mp(function, u, direction):
    """Return d/dt function(u + t direction) at t = 0, by mpmath differentiation."""
    return mpmath.diff(lambda t: function([a + t * b for a, b in zip(u, direction)]), 0)


def refine_alpha_mp(
    problem: SpecializationProblem,
    point: LocatedPoint,
    dps: int = 30,
    max_iter: int = 60,
):
    """Solve the defining system of ``point`` again in mpmath with ``dps`` digits.

    The iteration is Newton's method with the double-precision Jacobian of the
    located point held fixed: each step multiplies the error by about the
    Jacobian's condition number times 1e-16, so a handful of steps reach any
    precision. Returns ``(alpha, digits)`` where ``alpha`` is an mpf and
    ``digits`` the number of correct significant digits estimated from the
    last correction. Raises :class:`LocationError` if the iteration diverges.
    """
    if dps < 16:
        raise ValueError(f"dps = {dps} is invalid: refinement needs dps >= 16")
    if point.kind not in ("branch_point", "fold", "first_order"):
        raise ValueError(f"unknown kind of point {point.kind!r}")
    x, digits = _refine_mp(problem, point.kind, point.unknowns, dps, max_iter)
    alpha_index = {"branch_point": 2, "fold": 3, "first_order": 6}[point.kind]
    with mpmath.workdps(dps):
        alpha = +x[alpha_index]
    return alpha, digits


def _refine_mp(problem, kind, unknowns, dps, max_iter):
    """Return the unknowns of a defining system solved in mpmath (a list of
    mpf at ``dps + 15`` digits) and the number of correct digits of alpha."""
    K = problem.K
    x_double = np.asarray(unknowns, dtype=float)
    with mpmath.workdps(dps + 15):
        e_m = [mpmath.mpf(1) / K, mpmath.mpf(1) / K, mpmath.mpf(0)]

        if kind == "branch_point":
            alpha_index = 2

            def residual(x):
                m, C, alpha = x
                u = [m * e_m[0], m * e_m[1], C]
                g = _gradient_mp(problem, u, alpha)
                curvature = 1 / (
                    1 - C
                ) - alpha * problem.activation.unit_pair_derivative_mp(
                    u[1], order=2, dps=mpmath.mp.dps
                )
                return [
                    sum(g[i] * e_m[i] for i in range(3)),
                    g[2],
                    curvature,
                ]

            def jacobian_double(x):
                return _branch_point_jacobian(problem, x)

        elif kind == "fold":
            alpha_index = 3
            ell = x_double[4:] / np.linalg.norm(x_double[4:])
            ell_mp = [mpmath.mpf(float(c)) for c in ell]

            def residual(x):
                u, alpha, v = x[:3], x[3], x[4:]
                g = _gradient_mp(problem, u, alpha)
                Hv = [
                    _directional_derivative_mp(
                        lambda w, i=i: _gradient_mp(problem, w, alpha)[i], u, v
                    )
                    for i in range(3)
                ]
                return g + Hv + [sum(a * b for a, b in zip(ell_mp, v)) - 1]

            def jacobian_double(x):
                return _fold_jacobian(problem, x, ell)

        else:
            alpha_index = 6

            def residual(x):
                a, b, alpha = x[:3], x[3:6], x[6]
                return (
                    _gradient_mp(problem, a, alpha)
                    + _gradient_mp(problem, b, alpha)
                    + [
                        _free_energy_mp(problem, a, alpha)
                        - _free_energy_mp(problem, b, alpha)
                    ]
                )

            def jacobian_double(x):
                return _first_order_jacobian(problem, x)

        J = jacobian_double(x_double)
        J_inverse = mpmath.matrix(np.linalg.inv(J).tolist())
        x = mpmath.matrix([mpmath.mpf(float(c)) for c in x_double])
        target = mpmath.mpf(10) ** (-dps)
        last = None
        for _ in range(max_iter):
            r = mpmath.matrix(residual(list(x)))
            step = -(J_inverse * r)
            x = x + step
            last = abs(step[alpha_index])
            if last <= target * abs(x[alpha_index]):
                break
            if not mpmath.isfinite(last) or last > 1:
                raise LocationError(f"{kind}: high-precision refinement diverged")
        digits = int(
            min(dps, -mpmath.log10(max(last / abs(x[alpha_index]), target)))
            if last
            else dps
        )
        return list(x), digits


def _breaking_curvature(problem, x):
    """Return ``h_dd / (K - 1) = 1 / (1 - C) - alpha I''(S)`` at R = S = m / K.

    On the unspecialised branch the curvature ``e_d^T H e_d`` along the
    symmetry-breaking direction reduces to ``(K - 1)(1/A - alpha I''(S))``
    with ``A = 1 - C``: the error contributes ``-alpha (K - 1) I''(S)`` and
    the entropy term ``(K - 1)/2 ln A`` contributes ``(K - 1)/A``. This form
    has none of the cancellation of the quadratic form.
    """
    m, C, alpha = x
    S = m / problem.K
    return 1.0 / (1.0 - C) - alpha * float(
        problem.activation.unit_pair_derivative(S, order=2)
    )


def _branch_point_jacobian(problem, x):
    K = problem.K
    e_m, e_C = problem.e_m, problem.e_C
    m, C, alpha = x
    u = m * e_m + C * e_C
    H = problem.hessian(u, alpha)
    g_eps = problem.error_gradient(u)
    S = m / K
    curvature_slope = float(problem.activation.unit_pair_derivative(S, order=3))
    curvature = float(problem.activation.unit_pair_derivative(S, order=2))
    return np.array(
        [
            [e_m @ H @ e_m, e_m @ H @ e_C, K * (g_eps @ e_m)],
            [e_C @ H @ e_m, e_C @ H @ e_C, K * (g_eps @ e_C)],
            [-alpha * curvature_slope / K, 1.0 / (1.0 - C) ** 2, -curvature],
        ]
    )


def _fold_jacobian(problem, x, ell):
    K = problem.K
    u, alpha, v = x[:3], x[3], x[4:]
    H = problem.hessian(u, alpha)
    J = np.zeros((7, 7))
    J[:3, :3] = H
    J[:3, 3] = K * problem.error_gradient(u)
    J[3:6, :3] = np.einsum("ijk,j->ik", problem.third_derivative(u, alpha), v)
    J[3:6, 3] = K * (problem.error_hessian(u) @ v)
    J[3:6, 4:] = H
    J[6, 4:] = ell
    return J


def _first_order_jacobian(problem, x):
    K = problem.K
    a, b, alpha = x[:3], x[3:6], x[6]
    J = np.zeros((7, 7))
    J[:3, :3] = problem.hessian(a, alpha)
    J[:3, 6] = K * problem.error_gradient(a)
    J[3:6, 3:6] = problem.hessian(b, alpha)
    J[3:6, 6] = K * problem.error_gradient(b)
    J[6, :3] = problem.gradient(a, alpha)
    J[6, 3:6] = -problem.gradient(b, alpha)
    J[6, 6] = K * (problem.generalization_error(a) - problem.generalization_error(b))
    return J
