"""The specialisation problem: stationary points of the site-symmetric free energy.

The state of the student is ``u = (R, S, C)``. Stationary points solve
``grad F(u; alpha) = 0`` with the high-temperature free energy
``F = K alpha eps_g - s``. A state is (meta)stable inside the ansatz when the
3x3 Hessian of F is positive definite.

Symmetry-adapted coordinates. Write the student-teacher matrix as
``R_mat = d (I - 1 1^T / K) + (m / K) 1 1^T`` with ``d = R - S`` and
``m = R + (K - 1) S``. The direction ``e_d = dU/dd = (1 - 1/K, -1/K, 0)``
breaks the permutation symmetry between teacher units, while ``e_m`` and
``e_C`` keep it. On the unspecialised branch (``d = 0``) the Hessian is block
diagonal in these coordinates, because the full free energy is invariant under
separate permutations of student and teacher units and ``e_d`` lies in a
different irreducible representation from ``e_m`` and ``e_C``. A specialised
branch therefore leaves the unspecialised one exactly where
``h_dd = e_d^T H e_d`` vanishes.
"""

from __future__ import annotations

import logging
import math
import numbers

import numpy as np

from .. import _kernels
from ..activations import Activation, Erf, ReLU
from ..activations import activation as lookup_activation
from ..continuation import ContinuationError, ContinuationProblem
from ..theory.free_energy import (
    symmetric_free_energy,
    symmetric_free_energy_derivatives,
    symmetric_free_energy_third_derivative,
)
from ..theory.generalization import (
    symmetric_generalization_error,
    symmetric_generalization_error_gradient,
    symmetric_generalization_error_hessian,
)

__all__ = ["SpecializationProblem", "StationaryPointError"]

logger = logging.getLogger(__name__)


#: Largest K accepted by :class:`SpecializationProblem`.
MAX_K = 100_000


class StationaryPointError(RuntimeError):
    """Raised when no stationary point of the free energy could be found."""


def _check_alpha(alpha) -> float:
    """Return ``alpha`` as a float, raising ValueError unless it is finite and
    at least 0."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(
            f"alpha = {alpha!r} is invalid: it must be a finite number >= 0"
        )
    return value


class SpecializationProblem:
    """Site-symmetric states of a soft committee machine learning a teacher.

    Parameters
    ----------
    activation : Activation or str
        ``reluspec.ReLU()``, ``reluspec.Erf()`` or their names.
    K : int
        Number of hidden units of student and teacher, ``K >= 2``.

    Notes
    -----
    Student and teacher have the same number of units and orthonormal teacher
    vectors (``T = I``); the student vectors are normalised (``Q_kk = 1``).
    """

    def __init__(self, activation: Activation | str, K: int):
        if isinstance(activation, str):
            activation = lookup_activation(activation)
        if not isinstance(activation, Activation):
            raise TypeError(
                f"activation must be an Activation or its name, not {activation!r}"
            )
        if isinstance(K, bool) or not isinstance(K, numbers.Integral):
            raise ValueError(f"K must be an integer >= 2, got {K!r}")
        if K < 2:
            raise ValueError(
                f"K = {K} is invalid: specialisation needs K >= 2 hidden units"
            )
        if K > MAX_K:
            raise ValueError(
                f"K = {K} is invalid: K must be at most {MAX_K}, because beyond "
                "it the overlaps S ~ 1/K and C ~ 1/K^2 of the (R, S, C) "
                "coordinates fall below what double precision resolves"
            )
        self.activation = activation
        self.K = int(K)
        self.e_d = np.array([1.0 - 1.0 / self.K, -1.0 / self.K, 0.0])
        self.e_m = np.array([1.0 / self.K, 1.0 / self.K, 0.0])
        self.e_C = np.array([0.0, 0.0, 1.0])
        self._cache_key = None
        self._cache_value = None
        # Kernel code for the compiled Newton iteration, or None for
        # activations that only have the Python expressions.
        self._kind = activation._kind if type(activation) in (ReLU, Erf) else None

    @property
    def residual_scale(self) -> np.ndarray:
        """Inverse counts ``(1/K, 1/(K(K-1)), 2/(K(K-1)))`` of the entries of R
        and Q that R, S and C stand for."""
        K = self.K
        return np.array([1.0 / K, 1.0 / (K * (K - 1)), 2.0 / (K * (K - 1))])

    def __repr__(self) -> str:
        return f"SpecializationProblem({self.activation!r}, K={self.K})"

    # -- domain --------------------------------------------------------------
    def entropy_arguments(self, u) -> tuple[float, float]:
        """Return the two arguments of the logarithms in the entropy.

        ``1 - C - (R - S)^2`` and ``1 + (K - 1) C - (R + (K - 1) S)^2``; the
        order parameters describe real weight vectors when both are positive.
        """
        R, S, C = u
        K = self.K
        return 1.0 - C - (R - S) ** 2, 1.0 + (K - 1) * C - (R + (K - 1) * S) ** 2

    def is_valid(self, u) -> bool:
        """Return True when ``u`` is finite and inside the entropy's domain."""
        try:
            R, S, C = u
            R, S, C = float(R), float(S), float(C)
        except (TypeError, ValueError):
            return False
        if not (abs(R) <= 1 and abs(S) <= 1 and abs(C) <= 1):
            # Also False for NaN.
            return False
        k = self.K - 1
        return 1.0 - C - (R - S) ** 2 > 0 and 1.0 + k * C - (R + k * S) ** 2 > 0

    # -- free energy and its derivatives ---------------------------------------
    def _derivatives(self, u, alpha):
        """Return (gradient, Hessian, error gradient) at (u, alpha), cached for
        the last point because Newton's method needs all three there."""
        key = (float(u[0]), float(u[1]), float(u[2]), float(alpha))
        if self._cache_key != key:
            self._cache_value = symmetric_free_energy_derivatives(
                self.activation, key[0], key[1], key[2], key[3], self.K
            )
            self._cache_key = key
        return self._cache_value

    def free_energy(self, u, alpha: float) -> float:
        R, S, C = u
        return float(symmetric_free_energy(self.activation, R, S, C, alpha, self.K))

    def gradient(self, u, alpha: float) -> np.ndarray:
        """Return the gradient of F in (R, S, C)."""
        return self._derivatives(u, alpha)[0].copy()

    def hessian(self, u, alpha: float) -> np.ndarray:
        """Return the Hessian of F in (R, S, C)."""
        return self._derivatives(u, alpha)[1].copy()

    def third_derivative(self, u, alpha: float) -> np.ndarray:
        R, S, C = u
        return np.asarray(
            symmetric_free_energy_third_derivative(
                self.activation, R, S, C, alpha, self.K
            ),
            dtype=float,
        )

    def generalization_error(self, u) -> float:
        R, S, C = u
        if self._kind is not None:
            value = _kernels.symmetric_error(
                self._kind, float(R), float(S), float(C), float(self.K)
            )
            if value == value:
                return value
        return float(symmetric_generalization_error(self.activation, R, S, C, self.K))

    def error_gradient(self, u, alpha: float | None = None) -> np.ndarray:
        """Return the gradient of eps_g in (R, S, C); d(grad F)/d alpha = K times it.

        With ``alpha`` given, the value cached with the last gradient is reused.
        """
        if alpha is not None:
            return self._derivatives(u, alpha)[2].copy()
        R, S, C = u
        if self._kind is not None:
            # The cache keeps the point of the last gradient, so this call
            # bypasses it. The eps_g part does not depend on alpha.
            try:
                return symmetric_free_energy_derivatives(
                    self.activation, R, S, C, 0.0, self.K
                )[2]
            except ValueError:
                pass
        return np.asarray(
            symmetric_generalization_error_gradient(self.activation, R, S, C, self.K),
            dtype=float,
        )

    def error_hessian(self, u) -> np.ndarray:
        R, S, C = u
        return np.asarray(
            symmetric_generalization_error_hessian(self.activation, R, S, C, self.K),
            dtype=float,
        )

    def breaking_curvature(self, u, alpha: float) -> float:
        """Return ``h_dd = e_d^T H e_d``, the curvature along the symmetry-breaking
        direction; on the unspecialised branch it vanishes at a branch point."""
        return float(self.e_d @ self.hessian(u, alpha) @ self.e_d)

    def n_unstable(self, u, alpha: float, rtol: float = 1e-10) -> int:
        """Return the number of negative eigenvalues of the Hessian of F.

        Eigenvalues above ``-rtol`` times the largest absolute eigenvalue
        count as zero, so that a marginal state (at a branch point or fold)
        is not called unstable because of rounding.
        """
        w = np.linalg.eigvalsh(self.hessian(u, alpha))
        return int(np.sum(w < -rtol * np.max(np.abs(w))))

    # -- continuation -----------------------------------------------------------
    def continuation_problem(self, u0, alpha0: float) -> ContinuationProblem:
        """Return the residual ``grad F = 0`` as a problem for the continuation
        solver, continued in log alpha, with the Hessian as stability matrix.

        The residual is the gradient divided by the number of matrix entries
        each of R, S and C stands for (see :attr:`residual_scale`) and by
        ``1 + alpha^2``. Near perfect learning the Hessian and the rounding
        error of the gradient both grow like ``alpha^2`` (the entropy's
        arguments shrink like ``1 / alpha``), so that a fixed tolerance on
        this residual fixes the accuracy of the state for every alpha and K.

        Points outside the entropy's domain give a NaN residual, which the
        solver treats as a failed step and answers with a smaller one.
        """

        scale = self.residual_scale

        def residual(u, alpha):
            if not self.is_valid(u) or not alpha > 0:
                return np.full(3, np.nan)
            return scale * self.gradient(u, alpha) / (1.0 + alpha**2)

        def jacobian(u, alpha):
            if not self.is_valid(u):
                return np.full((3, 3), np.nan)
            return scale[:, None] * self.hessian(u, alpha) / (1.0 + alpha**2)

        def stability_matrix(u, alpha):
            if not self.is_valid(u):
                return np.full((3, 3), np.nan)
            return self.hessian(u, alpha)

        def parameter_derivative(u, alpha):
            if not self.is_valid(u):
                return np.full(3, np.nan)
            weight = 1.0 + alpha**2
            return scale * (
                self.K * self.error_gradient(u, alpha) / weight
                - 2.0 * alpha * self.gradient(u, alpha) / weight**2
            )

        return ContinuationProblem(
            residual=residual,
            u0=np.asarray(u0, dtype=float),
            p0=float(alpha0),
            jacobian=jacobian,
            parameter_derivative=parameter_derivative,
            stability_matrix=stability_matrix,
            parameter_scale="log",
            name=f"{self.activation.name} K={self.K}",
            stepper=(
                None if self._kind is None else _Stepper(self._kind, self.K, scale)
            ),
        )

    # -- single states ---------------------------------------------------------------
    def stationary_point(
        self, u0, alpha: float, tol: float = 1e-12, max_iter: int = 50
    ):
        """Return the stationary point reached by Newton's method from ``u0``.

        Steps are halved until they stay inside the entropy's domain. Raises
        :class:`StationaryPointError` with the last residual when Newton does
        not converge.
        """
        alpha = _check_alpha(alpha)
        u = np.array(u0, dtype=float)
        if not self.is_valid(u):
            raise StationaryPointError(
                f"start {u.tolist()} is outside the domain where both entropy "
                "arguments 1 - C - (R - S)^2 and 1 + (K - 1) C - (R + (K - 1) S)^2 "
                "are positive"
            )
        norm, steps, reason = np.inf, 0, "did not converge"
        if self._kind is not None:
            info = np.empty(2)
            status = _kernels.symmetric_newton(
                self._kind, self.K, alpha, u, tol, max_iter, False, info
            )
            if status == 0:
                return u
            norm, steps = info[0], int(info[1])
            if status == 2:
                reason = "stopped at a singular Hessian or a step out of the domain"
        else:
            for steps in range(1, max_iter + 1):
                try:
                    g = self.gradient(u, alpha)
                    H = self.hessian(u, alpha)
                except ValueError:
                    # is_valid passed a state that the entropy's more
                    # accurate arguments put on the boundary, by rounding.
                    reason = "stopped on the boundary of the domain"
                    break
                norm = float(np.max(np.abs(g)))
                try:
                    step = np.linalg.solve(H, -g)
                except np.linalg.LinAlgError:
                    reason = "stopped at a singular Hessian"
                    break
                t = 1.0
                while not self.is_valid(u + t * step) and t > 1e-8:
                    t *= 0.5
                if not self.is_valid(u + t * step):
                    reason = "stopped where no step stays in the domain"
                    break
                u = u + t * step
                size = max(1.0, np.max(np.abs(u)))
                if t == 1.0 and np.max(np.abs(step)) <= tol * size:
                    return u
        raise StationaryPointError(
            f"Newton's method found no stationary point at alpha = {alpha!r} from "
            f"{np.asarray(u0).tolist()}: it {reason} after {steps} of at most "
            f"{max_iter} steps (last gradient max-norm {norm:.3e}); try a start "
            "closer to the state"
        )

    def unspecialized_state(
        self, u0, alpha: float, tol: float = 1e-13, max_iter: int = 50
    ):
        """Return the stationary point with R = S reached by Newton's method in
        ``(m, C)`` from the projection of ``u0`` onto R = S.

        Raises :class:`StationaryPointError` when Newton does not converge.
        """
        K, e_m, e_C = self.K, self.e_m, self.e_C
        _, m, C = self.symmetric_coordinates(u0)
        if self._kind is not None:
            u = np.array(u0, dtype=float)
            status = _kernels.symmetric_newton(
                self._kind, K, alpha, u, tol, max_iter, True, np.empty(2)
            )
            if status == 0:
                return u
        y = np.array([m, C])
        for _ in range(0 if self._kind is not None else max_iter):
            u = y[0] * e_m + y[1] * e_C
            if not self.is_valid(u):
                break
            try:
                g = self.gradient(u, alpha)
                H = self.hessian(u, alpha)
            except ValueError:
                break  # on the boundary of the domain by rounding
            J = np.array(
                [[e_m @ H @ e_m, e_m @ H @ e_C], [e_C @ H @ e_m, e_C @ H @ e_C]]
            )
            try:
                step = np.linalg.solve(J, -np.array([g @ e_m, g @ e_C]))
            except np.linalg.LinAlgError:
                break
            y = y + step
            if np.max(np.abs(step)) <= tol * max(1.0, np.max(np.abs(y))):
                return y[0] * e_m + y[1] * e_C
        raise StationaryPointError(
            f"Newton's method found no unspecialised state at alpha = {alpha!r} "
            f"from m = {m!r}, C = {C!r} within {max_iter} iterations (K = {K})"
        )

    def local_minimum(self, u0, alpha: float, tol: float = 1e-12, max_iter: int = 500):
        """Return a local minimum of F reached from ``u0`` by a damped Newton
        method whose Hessian is made positive definite (absolute eigenvalues).
        At a saddle it steps along the direction of negative curvature.

        F is infinite on the boundary of the domain, so the line search keeps
        every iterate inside. Raises :class:`StationaryPointError` when the
        iteration stalls.
        """
        u = np.array(u0, dtype=float)
        if not self.is_valid(u):
            raise StationaryPointError(f"start {u.tolist()} is outside the domain")
        status = 2
        if self._kind is not None:
            status = _kernels.symmetric_local_minimum(
                self._kind, float(self.K), float(alpha), u, tol, max_iter
            )
            if status == 0:
                return u
        F0 = self.free_energy(u, alpha)
        for _ in range(max_iter if status == 2 else 0):
            try:
                g = self.gradient(u, alpha)
                H = self.hessian(u, alpha)
            except ValueError:
                break  # on the boundary of the domain by rounding
            w, V = np.linalg.eigh(H)
            if np.max(np.abs(g)) <= tol * max(1.0, abs(F0)):
                if w[0] > 0:
                    return u
                # A saddle: step along the direction of negative curvature.
                step = 1e-3 * max(1.0, np.max(np.abs(u))) * V[:, 0]
                if g @ step > 0:
                    step = -step
                slope = 0.0
            else:
                w = np.maximum(np.abs(w), 1e-10 * max(1.0, np.max(np.abs(w))))
                step = -V @ ((V.T @ g) / w)
                slope = float(g @ step)
            t = 1.0
            while t > 1e-14:
                trial = u + t * step
                if self.is_valid(trial):
                    F1 = self.free_energy(trial, alpha)
                    if F1 <= F0 + 1e-4 * t * slope:
                        break
                t *= 0.5
            else:
                break
            if np.max(np.abs(t * step)) <= 1e-15 * max(1.0, np.max(np.abs(u))):
                break
            u, F0 = trial, F1
        # Polish with plain Newton; the damped iteration can stall at rounding.
        u = self.stationary_point(u, alpha, tol=tol)
        if self.n_unstable(u, alpha) != 0:
            raise StationaryPointError(
                f"minimisation from {np.asarray(u0).tolist()} at alpha = {alpha!r} "
                f"ended at a saddle {u.tolist()}"
            )
        return u

    def unspecialized_start(self, alpha: float) -> np.ndarray:
        """Return the unspecialised state at small ``alpha``, reached from u = 0.

        At alpha = 0 the free energy is minus the entropy, whose maximum is
        R = S = C = 0; for small alpha the state moves continuously from there.
        """
        try:
            return self.stationary_point(np.zeros(3), alpha)
        except StationaryPointError as error:
            raise ContinuationError(
                f"could not start the unspecialised branch at alpha = {alpha!r}: "
                f"{error}"
            ) from error

    def symmetric_coordinates(self, u) -> tuple[float, float, float]:
        """Return ``(d, m, C)`` with ``d = R - S`` and ``m = R + (K - 1) S``."""
        R, S, C = u
        return R - S, R + (self.K - 1) * S, C


class _Stepper:
    """The compiled continuation loop of the site-symmetric residual, and its
    corrector for points between accepted ones (see
    :class:`reluspec.continuation.ContinuationProblem`)."""

    def __init__(self, kind: int, K: int, scale):
        self.kind = kind
        self.K = float(K)
        self.scale = np.array(scale, dtype=float)

    def __call__(self, points, count, ds, settings, report) -> int:
        return _kernels.symmetric_palc(
            self.kind, self.K, self.scale, points, count, ds, settings, report
        )

    def point_arrays(self, z, reference, given_tangent):
        """Return the arrays of ``symmetric_palc_point`` at ``z``, or None
        outside the domain."""
        out = np.empty(23)
        if _kernels.symmetric_palc_point(
            self.kind,
            self.K,
            self.scale,
            np.ascontiguousarray(z, dtype=float),
            np.ascontiguousarray(reference, dtype=float),
            given_tangent,
            out,
        ):
            return None
        return out

    def correct(self, origin, predictor, s, z, tol, max_iter) -> bool:
        """Correct ``z`` in place; return True on convergence."""
        status = _kernels.symmetric_palc_correct(
            self.kind, self.K, self.scale, origin, predictor, s, z, tol, max_iter
        )
        return status == 0
