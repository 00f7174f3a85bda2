"""The K -> infinity limit: states, critical curves in 1/K and their convergence.

The scaled free energy of :mod:`reluspec.theory.large_k` is regular in
``eps = 1/K``, so ``K = infinity`` (``eps = 0``) is an ordinary point of every
computation here:

* :func:`limit_states` returns every stationary state at ``K = infinity`` and
  fixed ``alpha``, and :func:`follow_states` continues them to finite K;
* :func:`trace_critical_curve` continues the defining system of a branch
  point, fold or equal-free-energy point in ``eps`` with the pseudo-arclength
  solver, from ``eps = 0`` to ``eps = 1/2`` (``K = 2``), a two-parameter
  continuation of the defining conditions in ``(eps, alpha)``;
* :func:`convergence_table` compares finite-K values computed in the original
  order parameters ``(R, S, C)`` (in mpmath where double precision cannot
  resolve the distance to the limit) with the limit, fits the exponent of
  the leading correction and extrapolates by Richardson's method.

Scaling of alpha: the branch point of ReLU has a finite limit
(``alpha_c -> 2 pi``), that of erf grows like K and the curve is traced in
``alpha / K``, whose limit is ``4 pi``
(:func:`~reluspec.theory.large_k.branch_point_scaling`). Folds and equal-free-energy points are traced in
``alpha`` itself. For ReLU they merge with the branch point as
``K -> infinity`` (all three tend to ``2 pi``, at distances of order
``1/K^2``); for erf they tend to finite values below the branch point.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import mpmath
import numpy as np
from scipy.optimize import brentq

from ..activations import Activation
from ..activations import activation as lookup_activation
from ..continuation import PALC, Branch, ContinuationOptions, ContinuationProblem
from ..continuation import continuation as run_continuation
from ..theory import large_k
from ..theory.free_energy import (
    symmetric_free_energy_gradient_mp,
)
from ..theory.generalization import symmetric_generalization_error_mp
from .locate import (
    LocatedPoint,
    LocationError,
    locate_branch_point,
    locate_first_order,
    locate_fold,
    refine_alpha_mp,
)
from .problem import SpecializationProblem

__all__ = [
    "CRITICAL_KINDS",
    "ConvergenceRow",
    "ConvergenceTable",
    "CriticalCurve",
    "CriticalValue",
    "LimitError",
    "LimitState",
    "ScaledState",
    "convergence_table",
    "finite_K_critical_value",
    "finite_K_state",
    "follow_states",
    "generalization_error_expansion",
    "limit_critical_points",
    "limit_states",
    "plot_critical_curves",
    "trace_critical_curve",
]

logger = logging.getLogger(__name__)

UNSPECIALIZED = "unspecialized"
R_ABOVE_S = "specialized R>S"
R_BELOW_S = "specialized R<S"

#: Kinds of critical point whose curves in 1/K are traced.
CRITICAL_KINDS = ("branch_point", "fold", "first_order")

# Relative step of the central differences of the analytic Jacobians, which
# give the third derivatives in the fold system and the derivatives of the
# equal-free-energy residual: truncation h^2 and rounding 1e-16 / h balance
# near h = 1e-5, for an accuracy of about 1e-10.
_FD_STEP = 1e-5


class LimitError(RuntimeError):
    """Raised when a state or critical point of the large-K theory is not found."""


def _activation(value) -> Activation:
    if isinstance(value, str):
        return lookup_activation(value)
    if not isinstance(value, Activation):
        raise ValueError(f"activation must be an Activation or its name, not {value!r}")
    return value


def _check_positive_alpha(alpha) -> float:
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha = {alpha!r} must be a positive number") from None
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha = {alpha!r} is invalid: it must be finite and > 0")
    return alpha


def _newton(function, x0, tol=1e-14, max_iter=50, what="system"):
    """Solve ``function(x) -> (residual, jacobian)`` by Newton's method.

    Converged when a relative step is below ``tol``. Rounding can keep the
    steps of an ill-conditioned system just above it; after ``max_iter``
    steps the iterate is accepted if the last three steps were below 1e-10.
    """
    x = np.array(x0, dtype=float)
    sizes = []
    for _ in range(max_iter):
        try:
            r, J = function(x)
            step = np.linalg.solve(J, -r)
        except (ValueError, np.linalg.LinAlgError) as error:
            raise LimitError(
                f"{what}: Newton's method failed at {x.tolist()}: {error}"
            ) from error
        x = x + step
        sizes.append(float(np.max(np.abs(step) / np.maximum(1.0, np.abs(x)))))
        if sizes[-1] <= tol:
            return x
    if max(sizes[-3:]) <= 1e-10:
        logger.debug(
            "%s: accepted after %d steps of size %s", what, max_iter, sizes[-3:]
        )
        return x
    raise LimitError(
        f"{what}: Newton's method did not converge in {max_iter} steps from "
        f"{np.asarray(x0).tolist()}"
    )


def _chord(system, z0, eps, tol=1e-14, max_iter=12):
    """Solve a defining system at ``eps`` by the chord method: Newton steps
    with the Jacobian of the start ``z0`` throughout. From a start within
    about 1e-6 of the root each step gains six or more digits, and only one
    Jacobian (six residuals by differences) is formed. Returns None where
    the steps do not reach ``tol`` (relative) in ``max_iter``, so that the
    caller can fall back to Newton's method."""
    try:
        J = system.jacobian(z0, eps)
        z = np.array(z0, dtype=float)
        previous = math.inf
        for _ in range(max_iter):
            step = np.linalg.solve(J, -system.residual(z, eps))
            z = z + step
            if not np.all(np.isfinite(z)):
                return None
            size = float(np.max(np.abs(step) / np.maximum(1.0, np.abs(z))))
            # The error left after a step is about the step times the
            # contraction ratio over one minus it: a small step counts only
            # where the steps shrink a hundredfold or more.
            if size <= tol and (size <= 1e-2 * previous or previous <= tol):
                return z
            previous = size
    except (ValueError, np.linalg.LinAlgError):
        return None
    return None


# -- states at K = infinity ------------------------------------------------------------


@dataclass(frozen=True)
class LimitState:
    """A stationary state of the free energy at ``K = infinity``.

    Attributes
    ----------
    activation, branch : str
        Activation name and branch name (``"unspecialized"``,
        ``"specialized R>S"``, ``"specialized R<S"``, with ``" #2"`` for a
        second state of the same kind).
    alpha : float
    d, mu, b : float
        Scaled variables (:mod:`reluspec.theory.large_k`): ``d = R - S``
        and the rescaled linear-part variables.
    generalization_error : float
        ``N(1) - N(d)``.
    free_energy : float
        ``f_0(d)``, the free energy per hidden unit.
    curvature : float
        ``f_0''(d)``; the state is stable where it is positive.
    """

    activation: str
    branch: str
    alpha: float
    d: float
    mu: float
    b: float
    generalization_error: float
    free_energy: float
    curvature: float

    @property
    def stable(self) -> bool:
        """Whether the state is a local minimum (``f_0''(d) > 0``)."""
        return self.curvature > 0.0


def _linear_part(act, d, alpha, eps=0.0):
    """Return ``(mu, b)`` solving ``G_mu = G_b = 0`` at fixed ``d`` and ``eps``."""
    series = large_k._series(act)
    b0 = 1.0 / (alpha * series.slope0)

    def system(y):
        if d == 0.0:
            r, J, _ = large_k._unspecialized(series, y[0], y[1], alpha, eps, 0)
            return r[:2], J[:2, :2]
        p = large_k._point(d, y[0], y[1], eps, allow_negative=True)
        derivatives = large_k._derivatives(series, p, alpha)
        return derivatives.G[1:], derivatives.jacobian[1:, 1:]

    return _newton(system, [0.0, b0], what=f"linear part at d = {d}")


def limit_states(activation, alpha) -> list[LimitState]:
    r"""Return every stationary state at ``K = infinity`` for the given ``alpha``.

    The states are the zeros of ``f_0'(d) = d / (1 - d^2) - alpha N'(d)``:
    ``d = 0`` (unspecialised) and the zeros of
    ``Psi_0(d) = 1/(1 - d^2) - alpha N'(d)/d``, bracketed on a grid of
    ``d`` and located by Brent's method. ``b = 1/(alpha a)`` and ``mu``
    follow from the next orders of the expansion.

    Parameters
    ----------
    activation : Activation or str
    alpha : float
        ``alpha > 0``.

    Returns
    -------
    list of LimitState
        Unspecialised first, then ``R > S`` and ``R < S`` states by
        decreasing ``|d|``.
    """
    act = _activation(activation)
    alpha = _check_positive_alpha(alpha)
    series = large_k._series(act)

    def psi0(d):
        return (
            1.0 / ((1.0 - d) * (1.0 + d)) - alpha * series.slope_difference(0.0, d)[0]
        )

    # Grid: dense near 0 and near |d| = 1, where Psi_0 varies fastest.
    inner = np.linspace(1e-6, 0.99, 400)
    outer = 1.0 - np.geomspace(1e-2, 1e-12, 200)
    grid = np.unique(np.concatenate([inner, outer]))
    roots = []
    for sign in (1.0, -1.0):
        values = [psi0(sign * d) for d in grid]
        for i in range(len(grid) - 1):
            if values[i] == 0.0 or values[i] * values[i + 1] < 0:
                root = brentq(
                    lambda d, sign=sign: psi0(sign * d),
                    grid[i],
                    grid[i + 1],
                    xtol=1e-16,
                    rtol=1e-15,
                )
                roots.append(sign * root)
    states = [_limit_state(act, UNSPECIALIZED, 0.0, alpha)]
    counts = {}
    for d in sorted(roots, key=lambda d: (d < 0, -abs(d))):
        name = R_ABOVE_S if d > 0 else R_BELOW_S
        counts[name] = counts.get(name, 0) + 1
        if counts[name] > 1:
            name = f"{name} #{counts[name]}"
        states.append(_limit_state(act, name, d, alpha))
    return states


def _limit_state(act, name, d, alpha) -> LimitState:
    mu, b = _linear_part(act, d, alpha)
    f = large_k.limit_free_energy(act, d, mu, b, alpha)
    curvature = large_k.limit_free_energy_hessian(act, d, mu, b, alpha)[0, 0, 0]
    return LimitState(
        activation=act.name,
        branch=name,
        alpha=alpha,
        d=float(d),
        mu=float(mu),
        b=float(b),
        generalization_error=float(
            large_k.scaled_generalization_error(act, d, mu, b, 0.0)
        ),
        free_energy=float(f[0]),
        curvature=float(curvature),
    )


# -- states at finite K in the scaled variables ----------------------------------------


@dataclass(frozen=True)
class ScaledState:
    """A stationary state at ``K = 1/eps`` in the scaled variables.

    ``free_energy`` is the free energy per hidden unit
    ``f = F/K + (eps/2) ln eps`` of
    :func:`~reluspec.theory.large_k.scaled_free_energy`, and ``n_unstable``
    counts the negative eigenvalues of the Hessian of F.
    """

    branch: str
    K: float
    alpha: float
    d: float
    mu: float
    b: float
    generalization_error: float
    free_energy: float
    n_unstable: int

    @property
    def order_parameters(self) -> tuple[float, float, float]:
        """``(R, S, C)`` of the state (``S = C = 0`` and ``R = d`` at K = infinity)."""
        eps = 0.0 if math.isinf(self.K) else 1.0 / self.K
        return large_k.scaled_to_order_parameters(self.d, self.mu, self.b, eps)


def _state_system(act, d_fixed, alpha):
    """Return ``system(x, eps) -> (residual, jacobian, d_eps)`` for one branch."""
    series = large_k._series(act)
    if d_fixed:

        def system(x, eps):
            r, J, d_eps = large_k._unspecialized(series, x[0], x[1], alpha, eps, 0)
            return r[:2], J[:2, :2], d_eps[:2]

        return system

    def system(x, eps):
        r, J, _, d_eps, _, _ = large_k._specialized(
            series, x[0], x[1], x[2], alpha, eps
        )
        return r, J, d_eps

    return system


# Smallest step in eps that _solve_along_eps tries before it stops.
_MIN_EPS_STEP = 1e-9


def _format_K(eps) -> str:
    return "inf" if eps == 0.0 else f"{1.0 / eps:.6g}"


def _solve_along_eps(system, x0, eps_targets, what):
    """Follow a regular system from ``eps = 0`` to each target in increasing order.

    Each step is a tangent predictor followed by Newton's method. A step
    whose Newton iteration does not converge or leaves the domain of the
    order parameters is halved, down to ``_MIN_EPS_STEP``.

    Returns
    -------
    results : list of (float, ndarray)
        ``(eps, x)`` for each target reached.
    failure : str or None
        None, or why the first target not reached was not reached. Larger
        targets are not tried, because the path to them passes that point.
    """
    x, eps = np.array(x0, dtype=float), 0.0
    results = []
    for target in sorted(eps_targets):
        while eps < target:
            _, J, d_eps = system(x, eps)
            try:
                tangent = -np.linalg.solve(J, d_eps)
            except np.linalg.LinAlgError:
                tangent = np.zeros_like(x)
            step = target - eps
            while True:
                try:
                    new = _newton(
                        lambda y, e=eps + step: system(y, e)[:2],
                        x + step * tangent,
                        what=what,
                    )
                    break
                except (LimitError, ValueError) as error:
                    if step * 0.5 < _MIN_EPS_STEP:
                        failure = (
                            f"{what}: could not follow the state from eps = "
                            f"{eps:.6g} (K = {_format_K(eps)}) to eps = "
                            f"{target:.6g} (K = {_format_K(target)}): Newton's "
                            "method from the tangent predictor failed for every "
                            f"step in eps from {target - eps:.3g} down to "
                            f"{step:.1e} (the state may end at a fold or leave the "
                            f"domain of the order parameters); last error: {error}"
                        )
                        return results, failure
                    step *= 0.5
            x, eps = new, eps + step
        results.append((target, x.copy()))
    return results, None


def _follow_state(act, alpha, state, Ks):
    """Continue one state to each K; return ``(rows, failure)``.

    ``rows`` contains a ScaledState for each K reached, in the order of
    ``Ks``. ``failure`` is None or the message of :func:`_solve_along_eps`
    for the largest ``eps = 1/K`` not reached (every smaller K is reached).
    """
    series = large_k._series(act)
    unspecialized = state.d == 0.0
    system = _state_system(act, unspecialized, alpha)
    x0 = [state.mu, state.b] if unspecialized else [state.d, state.mu, state.b]
    eps_targets = sorted({0.0 if math.isinf(K) else 1.0 / K for K in Ks})
    reached, failure = _solve_along_eps(
        system, x0, eps_targets, f"state {state.branch} at alpha = {alpha:g}"
    )
    path = dict(reached)
    rows = []
    for K in Ks:
        eps = 0.0 if math.isinf(K) else 1.0 / K
        if eps not in path:
            continue
        x = path[eps]
        d, mu, b = (0.0, x[0], x[1]) if unspecialized else tuple(x)
        p = large_k._point(d, mu, b, eps)
        derivatives = large_k._derivatives(series, p, alpha)
        M = large_k._stability_matrix(derivatives, eps)
        rows.append(
            ScaledState(
                branch=state.branch,
                K=K,
                alpha=alpha,
                d=float(d),
                mu=float(mu),
                b=float(b),
                generalization_error=float(
                    large_k.scaled_generalization_error(act, d, mu, b, eps)
                ),
                free_energy=float(large_k._free_energy(series, p, alpha)),
                n_unstable=int(np.sum(np.linalg.eigvalsh(M) < 0.0)),
            )
        )
    return rows, failure


def _check_follow_Ks(Ks) -> list[float]:
    Ks = [float(K) for K in Ks]
    for K in Ks:
        if not K >= 2.0:
            raise ValueError(f"K = {K!r} is invalid: it must be >= 2 or inf")
    return Ks


def follow_states(activation, alpha, Ks, states=None) -> dict:
    """Continue the states at ``K = infinity`` to finite K in the scaled variables.

    Each state is followed from ``eps = 0`` to every ``eps = 1/K`` by Newton's
    method on the regular equations of :mod:`reluspec.theory.large_k`, so
    that the values keep double precision for any K. A step that fails is
    halved, down to ``1e-9`` in ``eps``.

    Parameters
    ----------
    activation : Activation or str
    alpha : float
    Ks : iterable of float
        Values of ``K >= 2``; ``math.inf`` returns the limit itself.
    states : list of LimitState, optional
        States to follow; :func:`limit_states` by default.

    Returns
    -------
    dict
        ``branch name -> list of ScaledState`` in the order of ``Ks``.

    Raises
    ------
    LimitError
        If a state cannot be followed to one of the K, for example because it
        ends at a fold at a larger K (ReLU's specialised states just above
        ``alpha = 2 pi``). The message names the state, ``alpha``, the ``eps``
        reached and the last error. :func:`convergence_table` leaves such
        states out at the K not reached instead.
    """
    act = _activation(activation)
    alpha = _check_positive_alpha(alpha)
    Ks = _check_follow_Ks(Ks)
    if states is None:
        states = limit_states(act, alpha)
    out = {}
    for state in states:
        rows, failure = _follow_state(act, alpha, state, Ks)
        if failure is not None:
            raise LimitError(failure)
        out[state.branch] = rows
    return out


# -- finite-K values in the original order parameters ----------------------------------


def _mp_newton(residual, x0, dps, what, max_iter=30):
    """Solve ``residual(x) = 0`` in mpmath by Newton's method with a Jacobian
    from central differences at twice the working precision.

    ``residual`` takes and returns lists of mpf. The difference step
    ``10^(-dps - 10)`` times the size of each unknown leaves a truncation error
    far below ``10^(-dps)``. Returns the solution rounded to ``dps`` digits.
    """
    working = 2 * dps + 20
    with mpmath.workdps(working):
        x = [mpmath.mpf(v) for v in x0]
        n = len(x)
        target = mpmath.mpf(10) ** (-dps - 3)
        # A start outside the domain of ``residual`` raises its ValueError.
        # An iterate that leaves the domain later raises LimitError.
        r = residual(x)
        for iteration in range(max_iter):
            if iteration:
                r = _mp_evaluate(residual, x, what)
            J = mpmath.matrix(n, n)
            for j in range(n):
                h = mpmath.mpf(10) ** (-dps - 10) * max(abs(x[j]), mpmath.mpf(1) / 1000)
                plus = list(x)
                minus = list(x)
                plus[j] += h
                minus[j] -= h
                r_plus = _mp_evaluate(residual, plus, what)
                r_minus = _mp_evaluate(residual, minus, what)
                for i in range(n):
                    J[i, j] = (r_plus[i] - r_minus[i]) / (2 * h)
            step = mpmath.lu_solve(J, -mpmath.matrix(r))
            x = [x[i] + step[i] for i in range(n)]
            size = max(
                abs(step[i]) / max(abs(x[i]), mpmath.mpf(10) ** -30) for i in range(n)
            )
            if not mpmath.isfinite(size):
                raise LimitError(f"{what}: the mpmath Newton iteration diverged")
            if size <= target:
                break
        else:
            raise LimitError(f"{what}: the mpmath Newton iteration did not converge")
    with mpmath.workdps(dps):
        return [+v for v in x]


def _mp_evaluate(residual, x, what):
    try:
        return residual(x)
    except ValueError as error:
        raise LimitError(
            f"{what}: the mpmath Newton iteration left the domain: {error}"
        ) from error


def finite_K_state(activation, K, alpha, start, dps=30):
    """Solve ``grad F = 0`` in ``(R, S, C)`` at K units in mpmath.

    Newton's method on
    :func:`~reluspec.theory.free_energy.symmetric_free_energy_gradient_mp`,
    in the original order parameters and independent of the scaled theory,
    with its Jacobian from central differences at twice the precision.

    Parameters
    ----------
    activation : Activation or str
    K : float
        Number of hidden units, at least 2.
    alpha : float
    start : (float, float, float)
        ``(R, S, C)`` close to the state, e.g. from :func:`follow_states`.
    dps : int
        Decimal digits, at least 16.

    Returns
    -------
    (R, S, C, generalization_error) : mpmath.mpf

    Raises
    ------
    LimitError
        If Newton's method does not converge or an iterate leaves the domain
        of the entropy.
    ValueError
        If an argument is invalid or ``start`` lies outside the domain.
    """
    act = _activation(activation)
    alpha = _check_positive_alpha(alpha)
    if not (isinstance(dps, int) and dps >= 16):
        raise ValueError(f"dps = {dps!r} is invalid: it must be an integer >= 16")
    K = float(K)
    if not (math.isfinite(K) and K >= 2):
        raise ValueError(f"K = {K!r} is invalid: it must be finite and >= 2")
    working = 2 * dps + 20

    def gradient(x):
        return symmetric_free_energy_gradient_mp(act, *x, alpha, K, dps=working)

    R, S, C = _mp_newton(
        gradient, [float(v) for v in start], dps, f"state at K = {K:g}"
    )
    with mpmath.workdps(working):
        error = symmetric_generalization_error_mp(act, R, S, C, K, dps=working)
    with mpmath.workdps(dps):
        return R, S, C, +error


# -- critical curves -------------------------------------------------------------------


def _scaled_alpha_guess(series, k):
    """Return ``alpha~_c = k! / I^(2+k)(0)`` from the Taylor coefficients at 0."""
    derivative = math.factorial(2 + k) * series.zero[2 + k]
    return math.factorial(k) / derivative


class _BranchPointSystem:
    """Unknowns ``(mu, b, alpha~)``; residual of :func:`unspecialized_residual`."""

    kind = "branch_point"
    alpha_index = 2

    def __init__(self, act):
        self.act = act
        self.series = large_k._series(act)
        self.k = large_k.branch_point_scaling(act)

    def evaluate(self, z, eps):
        return large_k._unspecialized(self.series, z[0], z[1], z[2], eps, self.k)

    def residual(self, z, eps):
        return self.evaluate(z, eps)[0]

    def jacobian(self, z, eps):
        return self.evaluate(z, eps)[1]

    def parameter_derivative(self, z, eps):
        return self.evaluate(z, eps)[2]

    def start(self):
        alpha_scaled = _scaled_alpha_guess(self.series, self.k)
        b = 1.0 / (alpha_scaled * self.series.slope0)
        return _newton(
            lambda z: self.evaluate(z, 0.0)[:2],
            [0.0, b, alpha_scaled],
            what="branch point",
        )

    def alpha_scaled(self, z):
        return z[2]

    def d(self, z):
        return 0.0


class _FoldSystem:
    """Moore-Spence system: unknowns ``(d, mu, b, alpha, v)``.

    ``Phi = (Psi, G_mu, G_b) = 0``, ``J_Phi v = 0``, ``ell . v = 1``; the
    derivatives of ``J_Phi v`` are central differences of the exact Jacobian.
    """

    kind = "fold"
    k = 0
    alpha_index = 3

    def __init__(self, act, ell=None):
        self.act = act
        self.series = large_k._series(act)
        self.ell = None if ell is None else np.asarray(ell, dtype=float)

    def _phi(self, x, alpha, eps):
        r, J, d_alpha, d_eps, _, _ = large_k._specialized(
            self.series, x[0], x[1], x[2], alpha, eps
        )
        return r, J, d_alpha, d_eps

    def residual(self, z, eps):
        x, alpha, v = z[:3], z[3], z[4:]
        r, J, _, _ = self._phi(x, alpha, eps)
        return np.concatenate([r, J @ v, [self.ell @ v - 1.0]])

    def _jv_derivative(self, x, alpha, eps, v, index):
        """Central difference of ``J_Phi v`` in unknown ``index`` (0-2: x,
        3: alpha, 4: eps)."""
        values = [x[0], x[1], x[2], alpha, eps]
        h = _FD_STEP * max(1.0, abs(values[index]))
        results = []
        for sign in (1.0, -1.0):
            shifted = list(values)
            shifted[index] += sign * h
            J = self._phi(shifted[:3], shifted[3], shifted[4])[1]
            results.append(J @ v)
        return (results[0] - results[1]) / (2.0 * h)

    def jacobian(self, z, eps):
        x, alpha, v = z[:3], z[3], z[4:]
        _, J, d_alpha, _ = self._phi(x, alpha, eps)
        out = np.zeros((7, 7))
        out[:3, :3] = J
        out[:3, 3] = d_alpha
        for index in range(4):
            out[3:6, index] = self._jv_derivative(x, alpha, eps, v, index)
        out[3:6, 4:] = J
        out[6, 4:] = self.ell
        return out

    def parameter_derivative(self, z, eps):
        x, alpha, v = z[:3], z[3], z[4:]
        _, _, _, d_eps = self._phi(x, alpha, eps)
        return np.concatenate([d_eps, self._jv_derivative(x, alpha, eps, v, 4), [0.0]])

    def start(self):
        """Return the fold at ``eps = 0``: the minimum of ``alpha(d)`` along
        the specialised branch of ``f_0``, ``alpha(d) = 1/((1 - d^2) N'(d)/d)``."""
        series = self.series

        def branch_alpha(d):
            return 1.0 / ((1.0 - d * d) * series.slope_difference(0.0, d)[0])

        grid = np.linspace(1e-4, 0.98, 491)
        values = np.array([branch_alpha(d) for d in grid])
        i = int(np.argmin(values))
        if i == 0 and series.zero[2] != 0.0:
            # The branch leaves d = 0 with increasing alpha: the fold is the
            # branch point of f_0 itself (ReLU).
            d, alpha = 0.0, 1.0 / (2.0 * series.zero[2])
        else:
            d = float(
                brentq(
                    lambda t: _psi_d0(series, t, branch_alpha(t)),
                    grid[max(i - 1, 0)],
                    grid[min(i + 1, len(grid) - 1)],
                    xtol=1e-15,
                )
            )
            alpha = branch_alpha(d)
        mu, b = _linear_part(self.act, d, alpha)
        _, J, _, _ = self._phi([d, mu, b], alpha, 0.0)
        # Null vector: (1, v_mu, v_b) with the (mu, b) block solved.
        tail = np.linalg.solve(J[1:, 1:], -J[1:, 0])
        v = np.concatenate([[1.0], tail])
        self.ell = v / np.linalg.norm(v)
        v = v / (self.ell @ v)
        z0 = np.concatenate([[d, mu, b, alpha], v])
        return _newton(
            lambda z: (self.residual(z, 0.0), self.jacobian(z, 0.0)),
            z0,
            tol=1e-13,
            what="fold at K = infinity",
        )

    def alpha_scaled(self, z):
        return z[3]

    def d(self, z):
        return z[0]


def _psi_d0(series, d, alpha):
    """Return ``dPsi/dd`` at ``eps = 0`` (the fold condition of ``f_0``)."""
    p = large_k._point(d, 0.0, 1.0, 0.0)
    return large_k._derivatives(series, p, alpha).psi_gradient[0]


class _EqualFreeEnergySystem:
    """Unknowns ``(mu_u, b_u, d, mu_s, b_s, alpha)``.

    Rows: ``G_mu, G_b`` of the unspecialised state, ``Psi, G_mu, G_b`` of the
    specialised state, and the equal-free-energy residual ``Z``
    (:func:`~reluspec.theory.large_k.equal_free_energy_residual`), whose
    derivatives are central differences.
    """

    kind = "first_order"
    k = 0
    alpha_index = 5

    def __init__(self, act):
        self.act = act
        self.series = large_k._series(act)

    def _z(self, z, eps):
        mu_u, b_u, d, mu_s, b_s, alpha = z
        s = large_k._point(d, mu_s, b_s, eps, allow_negative=True)
        derivatives = large_k._derivatives(self.series, s, alpha)
        value = large_k._breaking_part(self.series, s, derivatives.psi, alpha)
        if d != 0.0:
            u = large_k._point(0.0, mu_u, b_u, eps, allow_negative=True)
            value += large_k._unspecialized_difference(self.series, s, u, alpha) / d**3
        # At d = 0 (ReLU at eps = 0) the difference of the unspecialised parts
        # vanishes faster than d^3 along the solutions and is left out.
        return value

    def _parts(self, z, eps):
        mu_u, b_u, d, mu_s, b_s, alpha = z
        ru, Ju, du = large_k._unspecialized(self.series, mu_u, b_u, alpha, eps, 0)
        rs, Js, das, des, _, _ = large_k._specialized(
            self.series, d, mu_s, b_s, alpha, eps
        )
        return ru, Ju, du, rs, Js, das, des

    def residual(self, z, eps):
        ru, _, _, rs, _, _, _ = self._parts(z, eps)
        return np.concatenate([ru[:2], rs, [self._z(z, eps)]])

    def _z_derivative(self, z, eps, index):
        values = np.append(np.asarray(z, dtype=float), eps)
        h = _FD_STEP * max(1.0, abs(values[index]))
        shifted = [values.copy(), values.copy()]
        shifted[0][index] += h
        shifted[1][index] -= h
        plus = self._z(shifted[0][:6], shifted[0][6])
        minus = self._z(shifted[1][:6], shifted[1][6])
        return (plus - minus) / (2.0 * h)

    def jacobian(self, z, eps):
        _, Ju, _, _, Js, das, _ = self._parts(z, eps)
        out = np.zeros((6, 6))
        out[:2, :2] = Ju[:2, :2]
        out[:2, 5] = Ju[:2, 2]
        out[2:5, 2:5] = Js
        out[2:5, 5] = das
        out[5] = [self._z_derivative(z, eps, i) for i in range(6)]
        return out

    def parameter_derivative(self, z, eps):
        _, _, du, _, _, _, des = self._parts(z, eps)
        return np.concatenate([du[:2], des, [self._z_derivative(z, eps, 6)]])

    def start(self):
        """Return the equal-F point at ``eps = 0``: ``f_0(d) = f_0(0)`` on the
        specialised branch of ``f_0``, or ``d = 0`` where the branch leaves
        ``d = 0`` continuously (ReLU)."""
        series = self.series
        if series.zero[2] != 0.0:
            d, alpha = 0.0, 1.0 / (2.0 * series.zero[2])
        else:

            def branch_alpha(d):
                return 1.0 / ((1.0 - d * d) * series.slope_difference(0.0, d)[0])

            def gap(d):
                alpha = branch_alpha(d)
                return alpha * series.nonlinear(d) + 0.5 * math.log1p(-d * d)

            grid = np.linspace(0.05, 0.98, 187)
            values = [gap(t) for t in grid]
            brackets = [
                i for i in range(len(grid) - 1) if values[i] * values[i + 1] < 0
            ]
            if not brackets:
                raise LimitError(f"no equal-free-energy point of f_0 for {self.act!r}")
            i = brackets[-1]
            d = float(brentq(gap, grid[i], grid[i + 1], xtol=1e-15))
            alpha = branch_alpha(d)
        mu_u, b_u = _linear_part(self.act, 0.0, alpha)
        mu_s, b_s = _linear_part(self.act, d, alpha)
        z0 = [mu_u, b_u, d, mu_s, b_s, alpha]
        return _newton(
            lambda z: (self.residual(z, 0.0), self.jacobian(z, 0.0)),
            z0,
            tol=1e-13,
            what="equal-free-energy point at K = infinity",
        )

    def alpha_scaled(self, z):
        return z[5]

    def d(self, z):
        return z[2]


def _system(act, kind):
    if kind == "branch_point":
        return _BranchPointSystem(act)
    if kind == "fold":
        return _FoldSystem(act)
    if kind == "first_order":
        return _EqualFreeEnergySystem(act)
    raise ValueError(f"kind = {kind!r} is invalid: it must be one of {CRITICAL_KINDS}")


@dataclass(frozen=True)
class CriticalValue:
    """A critical point at one K, solved from the regular defining system.

    ``alpha`` is the critical number of examples per weight and
    ``alpha_scaled = alpha / K^k`` (equal to ``alpha`` for ``k = 0``); at
    ``K = infinity`` with ``k = 1`` ``alpha`` is infinite. ``unknowns`` is
    the solution of the defining system (see :func:`trace_critical_curve`) and
    ``alpha_exponent`` is ``k``.
    """

    kind: str
    K: float
    alpha: float
    alpha_scaled: float
    d: float
    unknowns: np.ndarray
    alpha_exponent: int = 0


@dataclass(frozen=True)
class CriticalCurve:
    """A critical point continued in ``eps = 1/K``.

    Attributes
    ----------
    activation, kind : str
    alpha_exponent : int
        ``k`` with ``alpha = K^k alpha_scaled``.
    eps, alpha_scaled, d : ndarray
        The traced points, ``eps`` from 0 upwards.
    unknowns : ndarray
        Solutions of the defining system, one row per point.
    branch : Branch
        The continuation output, with its status and message.
    """

    activation: str
    kind: str
    alpha_exponent: int
    eps: np.ndarray
    alpha_scaled: np.ndarray
    d: np.ndarray
    unknowns: np.ndarray
    branch: Branch = field(repr=False)
    scale: np.ndarray = field(default=None, repr=False)
    ell: np.ndarray | None = field(default=None, repr=False)

    @property
    def K(self) -> np.ndarray:
        """``1 / eps``, infinite at the first point."""
        with np.errstate(divide="ignore"):
            return 1.0 / self.eps

    @property
    def alpha(self) -> np.ndarray:
        """The critical alpha, ``alpha_scaled K^k``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.alpha_scaled * self.K**self.alpha_exponent

    @property
    def limit(self) -> float:
        """``alpha_scaled`` at ``K = infinity``."""
        return float(self.alpha_scaled[0])

    def solve_at(self, K) -> CriticalValue:
        """Solve the defining system at ``eps = 1/K`` by Newton's method, from
        the traced point nearest in ``eps``; ``K = inf`` gives the limit."""
        K = float(K)
        if not K >= 2.0:
            raise ValueError(f"K = {K!r} is invalid: it must be >= 2 or inf")
        eps = 0.0 if math.isinf(K) else 1.0 / K
        return self._solve_eps(eps)

    def _solve_eps(self, eps) -> CriticalValue:
        system = _system(_activation(self.activation), self.kind)
        if self.kind == "fold":
            system.ell = self.ell
        z0 = self._guess(eps)
        # The Jacobian is that of this start, so that the result does not
        # depend on which K were solved before (a phase diagram split over
        # processes gives the same bits as one process).
        z = _chord(system, z0, eps)
        if z is None:
            z = _newton(
                lambda z: (system.residual(z, eps), system.jacobian(z, eps)),
                z0,
                tol=1e-14,
                what=f"{self.kind} at eps = {eps}",
            )
        K = math.inf if eps == 0.0 else 1.0 / eps
        alpha_scaled = float(system.alpha_scaled(z))
        if self.alpha_exponent == 0:
            alpha = alpha_scaled
        elif eps == 0.0:
            alpha = math.inf
        else:
            alpha = alpha_scaled * K**self.alpha_exponent
        return CriticalValue(
            self.kind,
            K,
            alpha,
            alpha_scaled,
            float(system.d(z)),
            z,
            self.alpha_exponent,
        )

    def _guess(self, eps):
        """Interpolate the unknowns at ``eps``: cubic Hermite between the two
        traced points around it (an error of order h^4 for a spacing h), or
        linear from the nearest point outside the traced range."""
        i = int(np.argmin(np.abs(self.eps - eps)))
        linear = self.unknowns[i] + (eps - self.eps[i]) * self._slope(i)
        j = i + 1 if (eps - self.eps[i]) * (self.eps[-1] - self.eps[0]) > 0 else i - 1
        if not 0 <= j < len(self.eps) or self.eps[j] == self.eps[i]:
            return linear
        h = self.eps[j] - self.eps[i]
        t = (eps - self.eps[i]) / h
        if not 0.0 <= t <= 1.0:
            return linear
        return (
            (1 + 2 * t) * (1 - t) ** 2 * self.unknowns[i]
            + t * (1 - t) ** 2 * h * self._slope(i)
            + t * t * (3 - 2 * t) * self.unknowns[j]
            + t * t * (t - 1) * h * self._slope(j)
        )

    def _slope(self, i):
        """Return ``dz/deps`` at traced point ``i`` from the branch tangent."""
        tangent = self.branch.tangents[i]
        if abs(tangent[-1]) < 1e-12:
            return np.zeros(len(tangent) - 1)
        return self.scale * tangent[:-1] / tangent[-1]

    def expansion(self, h=1e-3):
        """Return ``(a0, a1, a2)`` with ``alpha_scaled = a0 + a1 eps + a2 eps^2 + ...``.

        From solutions of the defining system at ``eps = +-h, +-h/2``: the
        system is analytic in ``eps`` and holds for small negative ``eps``
        too, so central differences with one Richardson step give ``a1`` and
        ``a2`` to about ``h^4``.
        """
        values = {e: self._solve_eps(e).alpha_scaled for e in (h, -h, h / 2, -h / 2)}
        a0 = self.limit
        first = [(values[s] - values[-s]) / (2 * s) for s in (h, h / 2)]
        second = [(values[s] + values[-s] - 2 * a0) / (2 * s * s) for s in (h, h / 2)]
        a1 = (4 * first[1] - first[0]) / 3
        a2 = (4 * second[1] - second[0]) / 3
        return a0, a1, a2


def trace_critical_curve(
    activation, kind, eps_max=0.5, *, ds_max=0.02, ds=None
) -> CriticalCurve:
    r"""Continue a branch point, fold or equal-free-energy point in ``eps = 1/K``.

    The defining system is solved at ``eps = 0`` (``K = infinity``) and
    continued with the pseudo-arclength solver up to ``eps_max``:

    * ``"branch_point"``: unknowns ``(mu, b, alpha~)``, the unspecialised
      state and the vanishing curvature along ``R - S``
      (:func:`~reluspec.theory.large_k.unspecialized_residual`), with
      ``alpha = K^k alpha~`` (``k = 0`` ReLU, ``k = 1`` erf);
    * ``"fold"``: unknowns ``(d, mu, b, alpha, v)``, the Moore-Spence system
      of the specialised residual
      (:func:`~reluspec.theory.large_k.specialized_residual`) with
      ``d > 0`` (the ``R > S`` branch);
    * ``"first_order"``: unknowns ``(mu_u, b_u, d, mu_s, b_s, alpha)``, both
      states stationary and
      :func:`~reluspec.theory.large_k.equal_free_energy_residual` zero.

    Parameters
    ----------
    activation : Activation or str
    kind : {"branch_point", "fold", "first_order"}
    eps_max : float
        Largest ``eps = 1/K``, in ``(0, 1/2]`` (default ``K = 2``).
    ds_max : float
        Largest continuation step (default 0.02).
    ds : float, optional
        First continuation step (default ``min(0.005, ds_max)``); it is at
        most ``ds_max``.

    Returns
    -------
    CriticalCurve

    Notes
    -----
    For ReLU the fold and the equal-free-energy point start at ``d = 0``,
    ``alpha = 2 pi``: at ``K = infinity`` they coincide with the branch
    point. At ``K = 2`` both merge with the branch point again (the two
    specialised states of ``K = 2`` are one state with the units swapped),
    where the equal-free-energy system becomes singular; its curve ends
    where the continuation cannot resolve it, reported in ``branch.status``.
    """
    act = _activation(activation)
    if kind not in CRITICAL_KINDS:
        raise ValueError(
            f"kind = {kind!r} is invalid: it must be one of {CRITICAL_KINDS}"
        )
    eps_max = float(eps_max)
    if not 0.0 < eps_max <= 0.5:
        raise ValueError(f"eps_max = {eps_max!r} is invalid: it must lie in (0, 1/2]")
    if ds is not None:
        try:
            ds = float(ds)
        except (TypeError, ValueError):
            raise ValueError(f"ds = {ds!r} is invalid: it must be a number > 0") from None
        if not 0.0 < ds < math.inf:
            raise ValueError(f"ds = {ds!r} is invalid: it must be a number > 0")
    system = _system(act, kind)
    z0 = system.start()
    # The solver measures arclength in the unknowns and eps; alpha is divided
    # by its value at K = infinity so that all unknowns are of order 1.
    scale = np.ones(len(z0))
    scale[system.alpha_index] = abs(z0[system.alpha_index])
    problem = ContinuationProblem(
        residual=lambda y, eps: system.residual(scale * y, eps),
        u0=z0 / scale,
        p0=0.0,
        jacobian=lambda y, eps: system.jacobian(scale * y, eps) * scale[None, :],
        parameter_derivative=lambda y, eps: system.parameter_derivative(scale * y, eps),
        parameter_scale="linear",
        name=f"{act.name} {kind} in 1/K",
    )
    options = ContinuationOptions(
        ds=min(0.005, ds_max) if ds is None else min(ds, ds_max),
        ds_min=1e-8,
        ds_max=ds_max,
        p_min=-1e-3,
        p_max=eps_max,
        max_steps=2000,
        newton_tol=1e-11,
        detect_branch_points=False,
        detect_stability_changes=False,
        direction=1,
    )
    branch = run_continuation(problem, PALC(), options)
    if branch.status != "parameter_bound":
        logger.warning(
            "%s curve of %s ended at eps = %.6g before eps_max = %g: %s",
            kind,
            act.name,
            branch.p[-1],
            eps_max,
            branch.message,
        )
    z = np.asarray(branch.u) * scale[None, :]
    curve = CriticalCurve(
        activation=act.name,
        kind=kind,
        alpha_exponent=system.k,
        eps=np.asarray(branch.p, dtype=float),
        alpha_scaled=np.array([system.alpha_scaled(row) for row in z]),
        d=np.array([system.d(row) for row in z]),
        unknowns=z,
        branch=branch,
        scale=scale,
        ell=system.ell if kind == "fold" else None,
    )
    return curve


# -- finite-K critical points in the original order parameters -------------------------


def _order_parameter_vector(d, mu, b, eps):
    return np.array(large_k.scaled_to_order_parameters(d, mu, b, eps))


def _located_start(problem, value: CriticalValue, eps):
    """Return a LocatedPoint in ``(R, S, C)`` built from a scaled solution."""
    z, K = value.unknowns, problem.K
    if value.kind == "branch_point":
        u = _order_parameter_vector(0.0, *_branch_point_linear_part(value, eps), eps)
        m = u[0] + (K - 1) * u[1]
        unknowns = np.array([m, u[2], value.alpha])
        return LocatedPoint("branch_point", value.alpha, (u,), 0.0, 0.0, 0, unknowns)
    if value.kind == "fold":
        d, mu, b, alpha = z[:4]
        u = _order_parameter_vector(d, mu, b, eps)
        # Null vector in (R, S, C): the derivative of the coordinate map.
        v_d, v_mu, v_b = z[4:]
        m = 1.0 - eps * mu
        v = np.array(
            [
                (1.0 - eps) * v_d - eps * eps * v_mu,
                -eps * v_d - eps * eps * v_mu,
                eps * eps * (v_b - 2.0 * m * v_mu) / (1.0 - eps),
            ]
        )
        v = v / np.linalg.norm(v)
        return LocatedPoint(
            "fold", alpha, (u,), 0.0, 0.0, 0, np.concatenate([u, [alpha], v])
        )
    mu_u, b_u, d, mu_s, b_s, alpha = z
    u1 = _order_parameter_vector(0.0, mu_u, b_u, eps)
    u2 = _order_parameter_vector(d, mu_s, b_s, eps)
    return LocatedPoint(
        "first_order", alpha, (u1, u2), 0.0, 0.0, 0, np.concatenate([u1, u2, [alpha]])
    )


def _branch_point_linear_part(value: CriticalValue, eps):
    """Return ``(mu, b)`` of a branch point in the ``k = 0`` variables."""
    mu, b = value.unknowns[:2]
    if value.alpha_exponent == 0:
        return mu, b
    # With k = 1, m = 1 - eps^2 mu and B = eps^2 b; in k = 0 variables
    # mu0 = (1 - m)/eps and b0 = B/eps.
    return eps * mu, eps * b


def finite_K_critical_value(activation, kind, K, start: CriticalValue, dps=30):
    """Locate a critical point at integer K in ``(R, S, C)``, refined in mpmath.

    The defining system of :mod:`reluspec.analysis.locate` (branch point,
    Moore-Spence fold, equal free energies) is solved by Newton's method in
    double precision from the scaled solution ``start`` (for example
    ``curve.solve_at(K)``), and then again by
    :func:`~reluspec.analysis.locate.refine_alpha_mp` with ``dps`` digits.
    Where the double-precision Newton iteration does not converge (large K,
    where the system in ``(R, S, C)`` is ill-conditioned), the mpmath
    iteration starts from ``start`` itself.

    Returns
    -------
    alpha : mpmath.mpf
        The critical alpha.
    digits : int
        Correct significant digits estimated by the refinement.
    """
    act = _activation(activation)
    if kind not in CRITICAL_KINDS:
        raise ValueError(
            f"kind = {kind!r} is invalid: it must be one of {CRITICAL_KINDS}"
        )
    K = int(K)
    problem = SpecializationProblem(act, K)
    eps = 1.0 / K
    guess = _located_start(problem, start, eps)
    if kind == "branch_point":
        return _branch_point_mp(act, K, guess, dps)
    try:
        if kind == "branch_point":
            located = locate_branch_point(problem, guess.states[0], guess.alpha)
        elif kind == "fold":
            located = locate_fold(
                problem, guess.states[0], guess.alpha, guess.unknowns[4:]
            )
        else:
            located = locate_first_order(problem, *guess.states, guess.alpha)
    except LocationError as error:
        logger.info(
            "double-precision location at K = %d failed (%s); refining the start",
            K,
            error,
        )
        located = guess
    try:
        return refine_alpha_mp(problem, located, dps=dps)
    except LocationError:
        if located is guess:
            raise
        return refine_alpha_mp(problem, guess, dps=dps)


def _branch_point_mp(act, K, guess: LocatedPoint, dps):
    """Solve the branch-point system in ``(m, C, alpha)`` in mpmath.

    Unknowns ``m = R + (K - 1) S`` and ``C`` with ``R = S = m/K``; equations
    ``e_m . grad F = 0``, ``dF/dC = 0`` and the curvature
    ``d^2 F / dt^2`` along ``e_d = (1 - 1/K, -1/K, 0)``, the central
    difference of ``e_d . grad F`` along ``e_d`` with step ``10^(-dps-10)``
    at ``2 dps + 20`` digits (error far below ``10^(-dps)``).
    """
    working = 2 * dps + 20
    m0, C0, alpha0 = (float(v) for v in guess.unknowns)
    scale = alpha0

    def residual(x):
        m, C, alpha = x[0], x[1], x[2] * scale
        Kmp = mpmath.mpf(K)
        e_d = [1 - 1 / Kmp, -1 / Kmp, mpmath.mpf(0)]
        u = [m / Kmp, m / Kmp, C]

        def slope(t):
            g = symmetric_free_energy_gradient_mp(
                act, *[u[i] + t * e_d[i] for i in range(3)], alpha, K, dps=working
            )
            return sum(g[i] * e_d[i] for i in range(3))

        g = symmetric_free_energy_gradient_mp(act, *u, alpha, K, dps=working)
        h = mpmath.mpf(10) ** (-dps - 10)
        curvature = (slope(h) - slope(-h)) / (2 * h)
        return [(g[0] + g[1]) / Kmp, g[2], curvature / (Kmp - 1)]

    _, _, a = _mp_newton(residual, [m0, C0, 1.0], dps, f"branch point at K = {K}")
    with mpmath.workdps(dps):
        return +(a * scale), dps


def limit_critical_points(activation) -> list[CriticalValue]:
    """Return the branch point, fold and equal-free-energy point at ``K = infinity``.

    Each is the solution of its defining system at ``eps = 0`` (see
    :func:`trace_critical_curve`), without tracing the curve. For erf the
    branch point has ``alpha = inf`` and ``alpha_scaled = lim alpha_c / K``.
    """
    act = _activation(activation)
    values = []
    for kind in CRITICAL_KINDS:
        system = _system(act, kind)
        z = system.start()
        alpha_scaled = float(system.alpha_scaled(z))
        alpha = alpha_scaled if system.k == 0 else math.inf
        values.append(
            CriticalValue(
                kind, math.inf, alpha, alpha_scaled, float(system.d(z)), z, system.k
            )
        )
    return values


# -- convergence -----------------------------------------------------------------------


def generalization_error_expansion(activation, state: LimitState, h=None):
    """Return ``(e0, e1)`` with ``eps_g = e0 + e1 / K + O(1/K^2)`` along a state.

    The regular state equations hold for negative ``eps`` as well, so ``e1``
    is a central difference at ``eps = +-h`` and ``+-h/2`` with one
    Richardson step (error about ``(h/rho)^4`` plus ``1e-16 / h``, with
    ``rho`` the distance in ``eps`` to the nearest singularity).

    By default ``h = min(1e-4, 0.02 rho)``. A state with ``d < 0`` has
    ``R ~ d + eps (1 - d)``, which reaches ``-1`` at
    ``eps = -(1 + d)/(1 - d)``, so ``rho = (1 + d)/(1 - d)``; it is about
    ``1/alpha`` for ReLU's ``R < S`` state at large alpha, where
    ``1 + d ~ 2/alpha``.
    """
    if h is None:
        d = state.d
        rho = (1.0 + d) / (1.0 - d) if d < 0.0 else 1.0
        h = min(1e-4, 0.02 * rho)
    act = _activation(activation)
    unspecialized = state.d == 0.0
    system = _state_system(act, unspecialized, state.alpha)
    x0 = np.array(
        [state.mu, state.b] if unspecialized else [state.d, state.mu, state.b]
    )

    def error(eps):
        _, J, d_eps = system(x0, 0.0)
        guess = x0 - eps * np.linalg.solve(J, d_eps)
        x = _newton(lambda y: system(y, eps)[:2], guess, what="state expansion")
        d, mu, b = (0.0, x[0], x[1]) if unspecialized else tuple(x)
        p = large_k._point(d, mu, b, eps, allow_negative=True)
        series = large_k._series(act)
        return large_k._error_nonlinear(series, p) + 0.5 * eps * series.slope0 * (
            b + eps * mu * mu
        )

    first = [(error(s) - error(-s)) / (2 * s) for s in (h, h / 2)]
    return state.generalization_error, (4 * first[1] - first[0]) / 3


@dataclass(frozen=True)
class ConvergenceRow:
    """One finite-K value of a limiting quantity.

    Attributes
    ----------
    quantity : str
    K : int
    value : mpmath.mpf
        The finite-K value, computed in the original order parameters in
        mpmath (:func:`finite_K_state`, :func:`finite_K_critical_value`).
    distance : mpmath.mpf
        ``value - limit``.
    exponent : float
        ``p`` fitted from the distances at this and the previous K,
        ``|distance| ~ K^-p``; NaN for the first K.
    richardson : mpmath.mpf or None
        ``value + (value - previous) / ((K / K_previous)^p - 1)``, with ``p``
        the integer exponent of the differences of the last three values
        (None where there are fewer or ``p`` is not within 0.25 of an
        integer): an estimate of the limit that does not use it.
    """

    quantity: str
    K: int
    value: object
    distance: object
    exponent: float
    richardson: object


@dataclass(frozen=True)
class ConvergenceTable:
    """Finite-K values of the limiting quantities of one activation.

    ``limits`` maps each quantity to ``(limit, predicted exponent, predicted
    coefficient)``: the leading correction is ``coefficient / K^exponent``,
    from the expansion of the regular equations at ``eps = 0``.
    ``omitted`` lists ``(quantity, K, reason)`` for the finite-K values that
    were not computed because the state could not be followed or solved
    there; those rows are missing from ``rows`` and from the CSV.
    ``remarks`` describes rows whose state has ``R - S`` of the other sign
    than its ``K = infinity`` state.
    """

    activation: str
    alpha: float
    dps: int
    rows: list
    limits: dict
    omitted: tuple = ()
    remarks: tuple = ()

    def notes(self) -> list[str]:
        """Return warnings about the rows: small ``K alpha``, changed signs of
        ``R - S`` and omitted values."""
        notes = []
        state_Ks = [row.K for row in self.rows if row.quantity.startswith("eps_g")]
        if state_Ks and min(state_Ks) * self.alpha < _LARGE_K_ALPHA:
            K = min(state_Ks)
            notes.append(
                f"K alpha = {K * self.alpha:.3g} at K = {K}: the errors approach "
                "their limits like 1/K only for K alpha >> 1 (the fitted exponent "
                f"is within 0.04 of 1 from K alpha = {_LARGE_K_ALPHA:g} on), so the "
                "exponents and Richardson estimates of the errors at smaller "
                "K alpha do not show the 1/K term"
            )
        notes += list(self.remarks)
        for quantity, K, reason in self.omitted:
            notes.append(f"{quantity} at K = {K} left out: {reason}")
        return notes

    def table(self) -> str:
        """Return the table as fixed-width text, with :meth:`notes` at the end."""
        title = (
            f"# {self.activation}: states at alpha = {self.alpha:g}; finite-K values "
            f"computed in (R, S, C) at {self.dps} digits, shown to 17 (the CSV "
            "holds all)"
        )
        lines = [
            title,
            "# Richardson estimates need three K in a geometric sequence, "
            "e.g. 10,100,1000",
            "# limits (K = inf) and leading corrections from the regular equations:",
        ]
        for name, (limit, exponent, coefficient) in self.limits.items():
            lines.append(
                f"#   {name:<34} -> {mpmath.nstr(limit, 16):<20} "
                f"{coefficient:+.8g} / K^{exponent}"
            )
        header = (
            f"{'quantity':<34} {'K':>7}  {'value':>22}  {'distance to limit':>17}  "
            f"{'exponent':>8}  {'Richardson - limit':>18}"
        )
        lines.append(header)
        for row in self.rows:
            limit = self.limits[row.quantity][0]
            richardson = ""
            if row.richardson is not None:
                gap = row.richardson - limit
                richardson = mpmath.nstr(gap, 3, min_fixed=0, max_fixed=0)
            exponent = (
                f"{row.exponent:8.3f}" if math.isfinite(row.exponent) else f"{'':>8}"
            )
            lines.append(
                f"{row.quantity:<34} {row.K:>7}  {mpmath.nstr(row.value, 17):>22}  "
                f"{mpmath.nstr(row.distance, 4, min_fixed=0, max_fixed=0):>17}  "
                f"{exponent}  {richardson:>18}"
            )
        lines += [f"# note: {note}" for note in self.notes()]
        return "\n".join(lines)

    def to_csv(self, path=None) -> str:
        """Return the rows as CSV and write them to ``path`` if given."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            ["quantity", "K", "value", "limit", "distance", "exponent", "richardson"]
        )
        for row in self.rows:
            writer.writerow(
                [
                    row.quantity,
                    row.K,
                    mpmath.nstr(row.value, self.dps),
                    mpmath.nstr(self.limits[row.quantity][0], 17),
                    mpmath.nstr(row.distance, 17),
                    repr(row.exponent),
                    ""
                    if row.richardson is None
                    else mpmath.nstr(row.richardson, self.dps),
                ]
            )
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text


_DEFAULT_STATE_ALPHA = {"relu": 10.0, "erf": 100.0}

# The 1/K expansion of the errors needs K alpha >> 1, because the linear part
# is learnt with b = 1/(alpha a) and m = 1 - mu/K, mu ~ 1/(alpha a). Fitted
# exponents of the unspecialised error (ReLU, alpha = 0.1, K = 10 to 10^5):
# 0.600, 0.964, 0.9994 at K alpha = 10, 100, 1000; erf: 0.655, 0.975, 0.9996.
_LARGE_K_ALPHA = 100.0


def _fit_rows(name, Ks, values, limit):
    """Return the rows of one quantity with fitted exponents and Richardson estimates.

    The Richardson step uses the exponent of three consecutive values,
    ``ln((q1 - q0) / (q2 - q1)) / ln(K2 / K1)`` for geometric K, rounded to
    the nearest integer, so that it does not depend on the computed limit.
    """
    rows = []
    for i, (K, value) in enumerate(zip(Ks, values)):
        distance = value - limit
        exponent, richardson = math.nan, None
        if i >= 1:
            ratio = K / Ks[i - 1]
            previous = values[i - 1] - limit
            if distance != 0 and previous != 0:
                exponent = float(mpmath.log(abs(previous / distance)) / math.log(ratio))
        if i >= 2:
            step_new, step_old = value - values[i - 1], values[i - 1] - values[i - 2]
            ratio = K / Ks[i - 1]
            if (
                step_new != 0
                and step_old != 0
                and math.isclose(ratio, Ks[i - 1] / Ks[i - 2])
            ):
                local = float(mpmath.log(abs(step_old / step_new)) / math.log(ratio))
                p = round(local)
                if p > 0 and abs(local - p) < 0.25:
                    richardson = value + step_new / (mpmath.mpf(ratio) ** p - 1)
        rows.append(ConvergenceRow(name, int(K), value, distance, exponent, richardson))
    return rows


def _finite_K_errors(act, alpha, state, Ks, dps, omitted, remarks) -> dict:
    """Return ``K -> eps_g`` of one state, solved in ``(R, S, C)`` in mpmath.

    A K at which the state cannot be followed or solved is left out, logged
    as a warning and appended to ``omitted`` as ``(quantity, K, reason)``.
    A K at which ``R - S`` has the other sign than at ``K = infinity`` is
    kept, logged and described in ``remarks``.
    """
    name = f"eps_g {state.branch}"
    followed, failure = _follow_state(act, alpha, state, Ks)
    if failure is not None:
        reached = {scaled.K for scaled in followed}
        for K in Ks:
            if K not in reached:
                logger.warning("%s left out at K = %d: %s", name, K, failure)
                omitted.append((name, K, failure))
    values = {}
    for scaled in followed:
        K = int(scaled.K)
        if scaled.d * state.d < 0.0:
            # Near the branch point the state followed at fixed alpha can pass
            # d = 0. Its value is kept under the name of its K = infinity state.
            remark = (
                f"{name} at K = {K}: the state followed from K = infinity has "
                f"R - S = {scaled.d:.3g}, the other sign (it passed the branch "
                "point between this K and K = infinity)"
            )
            logger.warning("%s", remark)
            remarks.append(remark)
        try:
            solved = finite_K_state(act, K, alpha, scaled.order_parameters, dps)
        except LimitError as error:
            reason = (
                f"the state at alpha = {alpha:g} followed in the scaled variables "
                f"was not solved in (R, S, C) at {dps} digits: {error}"
            )
            logger.warning("%s left out at K = %d: %s", name, K, reason)
            omitted.append((name, K, reason))
            continue
        values[K] = solved[3]
    return values


def convergence_table(activation, alpha=None, Ks=(10, 100, 1000, 10**4, 10**5), dps=30):
    """Compare finite-K values with their K -> infinity limits.

    Quantities: the critical alpha of the branch point (``alpha_c / K`` for
    erf), of the fold and of the equal-free-energy point, and the
    generalisation error of every state at ``K = infinity`` for the given
    ``alpha``; for ReLU also the difference of the errors of the ``R < S``
    and ``R > S`` states, which vanishes in the limit. The finite-K values
    are solved in the original order parameters ``(R, S, C)`` in mpmath with
    ``dps`` digits, from starts given by the scaled theory; the limits and
    the predicted leading corrections come from the regular equations at
    ``eps = 0``.

    The errors approach their limits like ``1/K`` only for ``K alpha >> 1``:
    the linear part of the network is learnt with ``1 - m ~ 1/(K alpha a)``.
    At ``alpha = 0.1`` the fitted exponent of the ReLU unspecialised error is
    0.60 at K = 100 and 0.964 at K = 1000. :meth:`ConvergenceTable.notes`
    adds a note where the smallest K has ``K alpha < 100``.

    A state that cannot be followed from ``K = infinity`` to some K (it ends
    at a fold at a larger K, as ReLU's specialised states do just above
    ``alpha = 2 pi``) or not solved in ``(R, S, C)`` there is left out at
    that K: a warning naming the state, ``alpha`` and the failed attempt is
    logged, ``ConvergenceTable.omitted`` lists it and the other rows are
    computed as usual. :func:`follow_states` raises instead.

    Parameters
    ----------
    activation : Activation or str
    alpha : float, optional
        ``alpha`` of the states; 10 for ReLU and 100 for erf by default
        (above the limiting branch point and fold respectively).
    Ks : sequence of int
        Increasing values of ``K >= 3`` (the fold and the equal-free-energy
        point exist for ``K > 2``).
    dps : int
        Decimal digits of the finite-K computations, at least 16.

    Returns
    -------
    ConvergenceTable
    """
    act = _activation(activation)
    if alpha is None:
        alpha = _DEFAULT_STATE_ALPHA.get(act.name, 10.0)
    alpha = _check_positive_alpha(alpha)
    Ks = [int(K) for K in Ks]
    if not Ks or any(K < 3 for K in Ks) or sorted(set(Ks)) != Ks:
        raise ValueError(f"Ks = {Ks!r} is invalid: give increasing integers >= 3")
    if not (isinstance(dps, int) and dps >= 16):
        raise ValueError(f"dps = {dps!r} is invalid: it must be an integer >= 16")

    rows, limits = [], {}
    labels = {
        "branch_point": "alpha_c (branch point)",
        "fold": "alpha_s (fold of R>S)",
        "first_order": "alpha_t (equal free energy)",
    }
    for kind in CRITICAL_KINDS:
        curve = trace_critical_curve(act, kind, eps_max=1.0 / Ks[0])
        name = labels[kind]
        if curve.alpha_exponent:
            name = f"{name} / K^{curve.alpha_exponent}"
        a0, a1, a2 = curve.expansion()
        exponent, coefficient = (
            (1, a1) if abs(a1) > 1e-8 * max(1.0, abs(a0)) else (2, a2)
        )
        limits[name] = (mpmath.mpf(a0), exponent, coefficient)
        values = []
        for K in Ks:
            start = curve.solve_at(K)
            alpha_K, _ = finite_K_critical_value(act, kind, K, start, dps=dps)
            with mpmath.workdps(dps):
                values.append(alpha_K / mpmath.mpf(K) ** curve.alpha_exponent)
        with mpmath.workdps(dps):
            rows += _fit_rows(name, Ks, values, mpmath.mpf(a0))

    states = limit_states(act, alpha)
    errors, omitted, remarks = {}, [], []
    for state in states:
        name = f"eps_g {state.branch}"
        e0, e1 = generalization_error_expansion(act, state)
        limits[name] = (mpmath.mpf(e0), 1, e1)
        values = _finite_K_errors(act, alpha, state, Ks, dps, omitted, remarks)
        errors[state.branch] = (values, e1)
        with mpmath.workdps(dps):
            rows += _fit_rows(
                name, list(values), list(values.values()), mpmath.mpf(e0)
            )
    if R_ABOVE_S in errors and R_BELOW_S in errors:
        name = "eps_g R<S - eps_g R>S"
        above, below = errors[R_ABOVE_S], errors[R_BELOW_S]
        limits[name] = (mpmath.mpf(0), 1, below[1] - above[1])
        common = [K for K in Ks if K in above[0] and K in below[0]]
        with mpmath.workdps(dps):
            difference = [below[0][K] - above[0][K] for K in common]
            rows += _fit_rows(name, common, difference, mpmath.mpf(0))
    return ConvergenceTable(
        act.name, alpha, dps, rows, limits, tuple(omitted), tuple(remarks)
    )


# -- figure ----------------------------------------------------------------------------


def plot_critical_curves(curves, diagram=None, path=None, *, ax=None, alpha_max=None):
    """Plot critical curves against ``1/K``, ending at their ``K = infinity``
    values; see :func:`reluspec.plotting.plot_critical_curves`, which this
    calls with the same arguments.
    """
    from ..plotting import plot_critical_curves as plot

    return plot(curves, diagram, path, ax=ax, alpha_max=alpha_max)
