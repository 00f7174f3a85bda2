"""Algorithm and option objects of the continuation solver.

Both are frozen dataclasses validated when constructed, so a bad value fails
at the line that sets it. Use :func:`dataclasses.replace` to derive variants;
it validates the new object again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PALC", "ContinuationOptions"]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_real(name, value, low=None, high=None, low_open=False, high_open=False):
    """Raise ValueError unless ``value`` is a real number in the given range."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool
    )
    ok = ok and not math.isnan(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        low_text = "-inf" if low is None else f"{low:g}"
        high_text = "inf" if high is None else f"{high:g}"
        raise ValueError(
            f"{name}={value!r} is invalid: it must be a real number in "
            f"{left}{low_text}, {high_text}{right}"
        )


def _check_int(name, value, low, high=None):
    if not _is_int(value) or value < low or (high is not None and value > high):
        high_text = "" if high is None else f" and <= {high}"
        raise ValueError(
            f"{name}={value!r} is invalid: it must be an integer >= {low}{high_text}"
        )


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r} is invalid: it must be True or False")


@dataclass(frozen=True)
class PALC:
    """Pseudo-arclength continuation with a Newton corrector on the bordered system.

    From an accepted point :math:`z_i = (u_i, q_i)` the predictor steps to
    :math:`z_i + ds\\,\\tau`, and Newton's method solves

    .. math::

        F(u, p(q)) = 0, \\qquad \\tau \\cdot (z - z_i) = ds,

    where :math:`q = p` or :math:`q = \\ln p` (see
    :class:`ContinuationProblem`). This is Keller's pseudo-arclength method:
    the arclength-like constraint keeps the bordered Jacobian non-singular at
    folds, where continuation in p alone fails.

    Parameters
    ----------
    tangent : {"secant", "bordered"}, default "secant"
        Predictor direction :math:`\\tau`. ``"secant"`` uses the chord through
        the last two points (the exact tangent at the first step).
        ``"bordered"`` solves :math:`[F_z; \\tau_{i-1}^T]\\,\\tau = e_{n+1}` at
        each point, which follows strongly curved branches more closely. The
        exact tangent is computed at every accepted point in both cases,
        because the fold and branch-point tests need it.
    step_growth : float, default 1.5
        Factor by which ``ds`` grows after a step that needed at most
        ``target_newton_iterations`` Newton updates and turned the tangent by
        at most half of ``angle_max``. Must be >= 1; lower it if steps are
        rejected after growing.
    step_shrink : float, default 0.5
        Factor applied to ``ds`` after a rejected step and after a step that
        needed more than twice ``target_newton_iterations`` updates. Must lie
        in (0, 1).
    target_newton_iterations : int, default 3
        Newton updates per step regarded as easy.
    """

    tangent: str = "secant"
    step_growth: float = 1.5
    step_shrink: float = 0.5
    target_newton_iterations: int = 3

    def __post_init__(self):
        if self.tangent not in ("secant", "bordered"):
            raise ValueError(
                f"tangent={self.tangent!r} is invalid: it must be 'secant' or "
                "'bordered'"
            )
        _check_real("step_growth", self.step_growth, 1.0, 100.0)
        _check_real("step_shrink", self.step_shrink, 0.0, 1.0, True, True)
        _check_int("target_newton_iterations", self.target_newton_iterations, 1)


@dataclass(frozen=True)
class ContinuationOptions:
    """Options of :func:`continuation`.

    Step sizes are pseudo-arclengths in the internal coordinates
    :math:`z = (u, q)`, with :math:`q = p` for ``parameter_scale="linear"``
    and :math:`q = \\ln p` for ``"log"``.

    Parameters
    ----------
    ds : float, default 0.01
        Initial step. Must lie in ``[ds_min, ds_max]``. Lower it when the
        first step fails or jumps to another branch.
    ds_min : float, default 1e-8
        Smallest step. A step that fails at ``ds_min`` ends the branch with
        status ``"newton_failed"`` or ``"suspected_branch_jump"``. Must be > 0.
    ds_max : float, default 0.5
        Largest step. Lower it if events (folds, branch points) lie closer
        together than a step, because two sign changes within one step cancel
        out. Must be >= ``ds_min``.
    p_min, p_max : float, default -inf, inf
        Parameter bounds in the caller's scale. The branch ends on the bound it
        crosses, with status ``"parameter_bound"``. ``p_min < p_max`` is
        required, and with the log scale ``p_max > 0`` (a ``p_min`` of 0 or
        below means no lower bound).
    max_steps : int, default 1000
        Maximum number of accepted steps; status ``"max_steps"`` after that.
    newton_tol : float, default 1e-10
        Max-norm tolerance on the residual ``F`` at every accepted point. Raise
        it for residuals that cannot be evaluated that accurately.
    newton_max_iter : int, default 10
        Maximum Newton updates per corrector step; a step that needs more is
        rejected and retried with a smaller ``ds``.
    start_newton_max_iter : int, default 50
        Maximum Newton updates when correcting the start ``u0`` at fixed
        ``p0``. The start guess is usually worse than a predictor.
    direction : {+1, -1}, default +1
        Initial direction: the sign of :math:`dp/ds` at the start. With an
        explicit ``tangent`` the first step goes along ``direction * tangent``
        instead.
    detect_folds : bool, default True
        Locate folds, where :math:`dp/ds` changes sign.
    detect_branch_points : bool, default True
        Locate branch points: sign changes of the bordered determinant
        (simple ones), and a group of eigenvalues of :math:`F_u` crossing zero
        together (multiple ones).
    detect_stability_changes : bool, default True
        Locate changes of the number of unstable directions that are neither
        a fold nor a branch point (complex pairs crossing the imaginary axis,
        or changes of a separate stability matrix). Folds and branch points
        carry their own ``n_unstable_before`` and ``n_unstable_after``.
    locate_tol : float, default 1e-9
        Tolerance on the test function at a located special point (see
        :class:`SpecialPoint`). Folds need :math:`|\\tau_q| \\le` ``locate_tol``.
        The other tests are singular values or eigenvalues, so their bound is
        ``locate_tol`` times their scale: the largest singular value of
        ``[F_u, F_q]``, or the largest absolute eigenvalue of the stability
        matrix, at the bracket ends (at least 1). The locator aims at
        ``locate_tol`` itself and settles for the scaled bound when rounding
        noise stops progress. Near a branch point the corrector is
        ill-conditioned, which limits the attainable accuracy. A point that
        misses its bound is reported with ``converged=False`` and a
        :class:`ConvergenceWarning`.
    locate_max_iter : int, default 60
        Maximum corrector solves per located special point.
    max_rejections : int, default 30
        Maximum consecutive rejected steps; status ``"max_rejections"`` after
        that. Halving from ``ds`` to ``ds_min`` normally ends a run of
        rejections first.
    angle_max : float, default 0.5
        Largest angle in radians between the exact tangents at consecutive
        points. A larger turn rejects the step; at ``ds_min`` it ends the
        branch with status ``"suspected_branch_jump"``, because the corrector
        has probably converged to a crossing branch. Must lie in (0, pi].
    verbosity : int, default 0
        Logging through the ``logging`` module: 0 nothing but warnings, 1 the
        start and end of each branch (INFO), 2 also every step and special
        point (INFO), 3 also rejections, Newton iterations and locator
        iterations (DEBUG).
    """

    ds: float = 0.01
    ds_min: float = 1e-8
    ds_max: float = 0.5
    p_min: float = -math.inf
    p_max: float = math.inf
    max_steps: int = 1000
    newton_tol: float = 1e-10
    newton_max_iter: int = 10
    start_newton_max_iter: int = 50
    direction: int = 1
    detect_folds: bool = True
    detect_branch_points: bool = True
    detect_stability_changes: bool = True
    locate_tol: float = 1e-9
    locate_max_iter: int = 60
    max_rejections: int = 30
    angle_max: float = 0.5
    verbosity: int = 0

    def __post_init__(self):
        _check_real("ds_min", self.ds_min, 0.0, math.inf, True, True)
        _check_real("ds_max", self.ds_max, self.ds_min, math.inf, False, True)
        _check_real("ds", self.ds, self.ds_min, self.ds_max)
        _check_real("p_min", self.p_min, None, math.inf, False, True)
        _check_real("p_max", self.p_max, self.p_min, None, True)
        _check_int("max_steps", self.max_steps, 1)
        _check_real("newton_tol", self.newton_tol, 0.0, math.inf, True, True)
        _check_int("newton_max_iter", self.newton_max_iter, 1)
        _check_int("start_newton_max_iter", self.start_newton_max_iter, 0)
        if self.direction not in (1, -1) or isinstance(self.direction, bool):
            raise ValueError(
                f"direction={self.direction!r} is invalid: it must be +1 or -1"
            )
        _check_bool("detect_folds", self.detect_folds)
        _check_bool("detect_branch_points", self.detect_branch_points)
        _check_bool("detect_stability_changes", self.detect_stability_changes)
        _check_real("locate_tol", self.locate_tol, 0.0, math.inf, True, True)
        _check_int("locate_max_iter", self.locate_max_iter, 1)
        _check_int("max_rejections", self.max_rejections, 0)
        _check_real("angle_max", self.angle_max, 0.0, math.pi, True)
        _check_int("verbosity", self.verbosity, 0, 3)

    @property
    def detects_events(self) -> bool:
        """Return True if any kind of special point is detected."""
        return bool(
            self.detect_folds
            or self.detect_branch_points
            or self.detect_stability_changes
        )
