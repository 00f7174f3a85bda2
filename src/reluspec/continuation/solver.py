"""The pseudo-arclength continuation loop."""

from __future__ import annotations

import logging
import math

import numpy as np

from ._newton import _newton
from ._point import PointData, null_space_tangent
from .branch import Branch
from .errors import ContinuationError
from .events import Segment, detect_events
from .options import PALC, ContinuationOptions
from .problem import ContinuationProblem, _System

__all__ = ["continuation"]

logger = logging.getLogger(__name__)

_STEP_ERRORS = (ContinuationError, FloatingPointError, np.linalg.LinAlgError)


def continuation(
    problem: ContinuationProblem,
    algorithm: PALC = PALC(),
    options: ContinuationOptions = ContinuationOptions(),
    *,
    tangent=None,
) -> Branch:
    r"""Trace the branch of solutions of F(u, p) = 0 through the start of a problem.

    The start ``(u0, p0)`` is first corrected by Newton's method at fixed p.
    From there, predictor-corrector steps (:class:`PALC`) follow the branch
    in the internal coordinates :math:`z = (u, q)` until a parameter bound, a
    closed curve, ``max_steps`` or a failure at ``ds_min``. Between every two
    accepted points, folds, branch points and stability changes are detected
    and located (see :class:`SpecialPoint`).

    Step control: a step is rejected, and retried with ``ds`` times
    ``step_shrink``, if the corrector fails (no convergence in
    ``newton_max_iter`` updates, a singular matrix, or a NaN or infinite
    residual) or if the exact tangent turns by more than ``angle_max``. After
    an accepted step ``ds`` grows by ``step_growth`` when the step was easy.

    Parameters
    ----------
    problem : ContinuationProblem
        Residual, derivatives and start.
    algorithm : PALC, optional
        Predictor and step-size control.
    options : ContinuationOptions, optional
        Step sizes, bounds, tolerances and detection switches.
    tangent : array_like, optional
        Initial direction in ``(u, q)`` coordinates, shape ``(n + 1,)`` (with
        the log scale, the last component refers to ``ln p``). Use it to start
        on a crossing branch at a branch point, where the tangent is not
        unique (:func:`switch_branch` does this). The first step goes along
        ``options.direction * tangent``, the start is not checked for a
        singular Jacobian, and no special point is searched for in the first
        step, whose start is normally the branch point itself.

    Returns
    -------
    Branch
        The accepted points, their tangents and stability, the special points,
        and the status and message saying why the branch ended. A failure
        after the start does not raise: the branch is returned up to the last
        accepted point.

    Raises
    ------
    ContinuationError
        If the start cannot be corrected to a solution, or, without
        ``tangent``, if ``[F_u, F_p]`` is rank-deficient at the start (a
        branch point), because the direction of the branch is then undefined.
    ValueError
        If ``p0`` lies outside ``[p_min, p_max]``, the bounds do not suit the
        log scale, ``tangent`` has the wrong shape, or a user callable returns
        an array of the wrong shape.
    """
    if not isinstance(problem, ContinuationProblem):
        raise ValueError(
            f"problem must be a ContinuationProblem, got {type(problem).__name__}"
        )
    if not isinstance(algorithm, PALC):
        raise ValueError(f"algorithm must be a PALC, got {type(algorithm).__name__}")
    if not isinstance(options, ContinuationOptions):
        raise ValueError(
            f"options must be a ContinuationOptions, got {type(options).__name__}"
        )
    system = _System(problem)
    q_min, q_max = _internal_bounds(system, options)
    p0 = problem.p0
    if not options.p_min <= p0 <= options.p_max:
        raise ValueError(
            f"p0={p0!r} lies outside the bounds [p_min, p_max] = "
            f"[{options.p_min!r}, {options.p_max!r}]"
        )
    q0 = system.internal(p0)
    u0, iterations = _correct_start(system, problem.u0.copy(), p0, options)
    z0 = np.append(u0, q0)
    if tangent is None:
        start_tangent = _start_tangent(system, z0, options.direction)
    else:
        start_tangent = _explicit_tangent(tangent, system.n, options.direction)
    try:
        start = PointData(system, z0, start_tangent, tangent=start_tangent)
    except FloatingPointError as err:
        raise ContinuationError(
            f"the start cannot be analysed: {err}",
            point=z0[:-1],
            parameter=p0,
        ) from err
    return trace(
        system,
        start,
        iterations,
        algorithm,
        options,
        (q_min, q_max),
        skip_first_events=tangent is not None,
    )


def _internal_bounds(system: _System, options: ContinuationOptions):
    if not system.log:
        return options.p_min, options.p_max
    if options.p_max <= 0:
        raise ValueError(
            f"p_max={options.p_max!r} is invalid for parameter_scale='log': it "
            "must be > 0"
        )
    q_min = math.log(options.p_min) if options.p_min > 0 else -math.inf
    q_max = math.log(options.p_max) if math.isfinite(options.p_max) else math.inf
    return q_min, q_max


def _correct_start(system: _System, u0: np.ndarray, p0: float, options):
    """Correct u0 at fixed p0; raise ContinuationError with advice on failure."""
    residual = system.residual_up(u0, p0)
    norm = float(np.max(np.abs(residual)))
    if norm <= options.newton_tol:
        return u0, 0
    if not math.isfinite(norm):
        raise ContinuationError(
            f"the residual at the start (p0={p0!r}) is NaN or infinite; choose a "
            "u0 inside the domain of the residual",
            residual_norm=norm,
            iterations=0,
            point=u0,
            parameter=p0,
        )
    try:
        return _newton(
            lambda u: system.residual_up(u, p0),
            lambda u: system.jacobian_u(u, p0),
            u0,
            options.newton_tol,
            options.start_newton_max_iter,
            debug=options.verbosity >= 3,
            polish=True,
        )
    except ContinuationError as err:
        raise ContinuationError(
            f"the start is not a solution (residual norm {norm:.3e} at p0={p0!r}) "
            f"and Newton's method at fixed p0 failed: {err}. Supply a u0 closer "
            "to a solution or a p0 where one is known; if F_u is singular there "
            "(a fold or a branch point), start at a different p0.",
            residual_norm=err.residual_norm,
            iterations=err.iterations,
            point=err.point,
            parameter=p0,
        ) from err


def _start_tangent(system: _System, z0: np.ndarray, direction: int) -> np.ndarray:
    """Return the unit null vector of [F_u, F_q] with sign(dq/ds) = direction."""
    jac_z = system.jacobian_z(z0)
    if not np.all(np.isfinite(jac_z)):
        raise ContinuationError(
            "the Jacobian [F_u, F_p] at the start contains NaN or inf",
            point=z0[:-1],
            parameter=system.parameter(z0[-1]),
        )
    sing = np.linalg.svd(jac_z, compute_uv=False)
    if sing[0] == 0.0 or sing[-1] <= 1e3 * np.finfo(float).eps * sing[0]:
        raise ContinuationError(
            f"[F_u, F_p] is rank-deficient at the start p0="
            f"{system.parameter(z0[-1])!r} (singular values {sing}), so the start "
            "is a branch point and the direction of the branch is not unique. "
            "Start at a different p0, or pass tangent= to choose a branch.",
            residual_norm=float(np.max(np.abs(system.residual(z0)))),
            iterations=0,
            point=z0[:-1],
            parameter=system.parameter(z0[-1]),
        )
    reference = np.zeros(system.n + 1)
    reference[-1] = 1.0
    tangent = null_space_tangent(jac_z, reference)
    if abs(tangent[-1]) > 1e-12:
        sign = 1.0 if tangent[-1] > 0 else -1.0
    else:
        # The start is a fold: orient by the largest component instead.
        sign = 1.0 if tangent[np.argmax(np.abs(tangent))] > 0 else -1.0
    return direction * sign * tangent


def _explicit_tangent(tangent, n: int, direction: int) -> np.ndarray:
    tangent = np.array(tangent, dtype=float)
    if tangent.shape != (n + 1,):
        raise ValueError(
            f"tangent has shape {tangent.shape}, expected ({n + 1},): the state "
            "components followed by the parameter component"
        )
    norm = np.linalg.norm(tangent)
    if not (np.isfinite(norm) and norm > 0):
        raise ValueError("tangent is invalid: it must be finite and non-zero")
    return direction * tangent / norm


class _Tracer:
    """State of one continuation run; see :func:`trace`."""

    def __init__(self, system, start, start_iterations, algorithm, options, bounds):
        self.system = system
        self.algorithm = algorithm
        self.options = options
        self.q_min, self.q_max = bounds
        self.points = [start]
        self.iterations = [start_iterations]
        self.steps = [0.0]
        self.special = []
        self.n_rejected = 0
        self.cos_angle_max = math.cos(options.angle_max)
        self.debug = options.verbosity >= 3

    # -- phases of one step ---------------------------------------------------

    def predictor(self) -> np.ndarray:
        current = self.points[-1]
        if self.algorithm.tangent == "bordered" or len(self.points) == 1:
            return current.tangent
        chord = current.z - self.points[-2].z
        return chord / np.linalg.norm(chord)

    def corrector(self, predictor: np.ndarray, ds: float):
        """Solve F(z) = 0, predictor . (z - z_i) = ds from z_i + ds * predictor."""
        n = self.system.n
        origin = self.points[-1].z

        def residual(z):
            value = np.empty(n + 1)
            value[:n] = self.system.residual(z)
            value[n] = predictor @ (z - origin) - ds
            return value

        def jacobian(z):
            return np.vstack([self.system.jacobian_z(z), predictor])

        z, iterations = _newton(
            residual,
            jacobian,
            origin + ds * predictor,
            self.options.newton_tol,
            self.options.newton_max_iter,
            debug=self.debug,
            polish=True,
        )
        return PointData(self.system, z, predictor), iterations

    def land_on_bound(self, predictor, overshoot: PointData, q_bound: float):
        """Return the point of the branch at q = q_bound, or None if not found."""
        current = self.points[-1]
        if abs(q_bound - current.q) <= 1e-14 * max(1.0, abs(q_bound)):
            return None
        fraction = (q_bound - current.q) / (overshoot.q - current.q)
        guess = current.u + fraction * (overshoot.u - current.u)
        p_bound = self.system.parameter(q_bound)
        try:
            u, _ = _newton(
                lambda u: self.system.residual_up(u, p_bound),
                lambda u: self.system.jacobian_u(u, p_bound),
                guess,
                self.options.newton_tol,
                self.options.newton_max_iter,
                debug=self.debug,
                polish=True,
            )
            point = PointData(self.system, np.append(u, q_bound), predictor)
        except _STEP_ERRORS as err:
            logger.debug("landing on the bound q=%.6g failed: %s", q_bound, err)
            return None
        if predictor @ (point.z - current.z) <= 0:
            return None
        return point

    def closes_loop(self, predictor, new: PointData) -> bool:
        """Return True if the accepted step to ``new`` passed the start point."""
        if len(self.points) < 5:
            return False
        start = self.points[0]
        current = self.points[-2]
        offset = start.z - current.z
        s0 = float(predictor @ offset)
        length = float(predictor @ (new.z - current.z))
        if not 0.0 < s0 <= length:
            return False
        if np.linalg.norm(offset - s0 * predictor) > 0.25 * length:
            return False
        if start.tangent @ new.tangent <= 0:
            return False
        return _reaches_start(self.system, self.options, start, current, new, predictor)

    def next_step(self, ds: float, iterations: int, cos_angle: float) -> float:
        """Adapt ds after an accepted step."""
        algorithm = self.algorithm
        options = self.options
        easy_turn = cos_angle >= math.cos(0.5 * options.angle_max)
        if iterations <= algorithm.target_newton_iterations and easy_turn:
            ds *= algorithm.step_growth
        elif iterations > 2 * algorithm.target_newton_iterations:
            ds *= algorithm.step_shrink
        return min(max(ds, options.ds_min), options.ds_max)

    # -- main loop ------------------------------------------------------------

    def run(self, skip_first_events: bool):
        options = self.options
        ds = options.ds
        status = "max_steps"
        message = f"reached max_steps={options.max_steps}"
        for _ in range(options.max_steps):
            current = self.points[-1]
            predictor = self.predictor()
            rejections = 0
            new = None
            while True:
                failure = None
                try:
                    new, iterations = self.corrector(predictor, ds)
                except _STEP_ERRORS as err:
                    failure = ("newton_failed", str(err))
                else:
                    cos_angle = float(current.tangent @ new.tangent)
                    if cos_angle < self.cos_angle_max:
                        angle = math.acos(max(-1.0, min(1.0, cos_angle)))
                        failure = (
                            "suspected_branch_jump",
                            f"the tangent turned by {angle:.3g} rad > angle_max="
                            f"{options.angle_max:.3g}",
                        )
                if failure is None:
                    break
                new = None
                self.n_rejected += 1
                rejections += 1
                if self.debug:
                    logger.debug("step rejected at ds=%.3e: %s", ds, failure[1])
                if ds <= options.ds_min:
                    status, reason = failure
                    message = (
                        f"the step from p={current.p:.10g} failed at the minimum "
                        f"step ds_min={options.ds_min:.1e}: {reason}. "
                        + (
                            "The corrector has probably converged to a crossing "
                            "branch, so the point was not accepted; a branch point "
                            "is likely nearby."
                            if status == "suspected_branch_jump"
                            else "Check the residual near this point, or lower "
                            "ds_min or raise newton_tol."
                        )
                    )
                    break
                if rejections > options.max_rejections:
                    status = "max_rejections"
                    message = (
                        f"{rejections} consecutive steps from p={current.p:.10g} were "
                        f"rejected (max_rejections={options.max_rejections}); last "
                        f"failure: {failure[1]}"
                    )
                    break
                ds = max(ds * self.algorithm.step_shrink, options.ds_min)
            if new is None:
                break

            # Parameter bounds: end exactly on the bound that was crossed.
            stop = None
            if new.q > self.q_max or new.q < self.q_min:
                q_bound = self.q_max if new.q > self.q_max else self.q_min
                p_bound = self.system.parameter(q_bound)
                status = "parameter_bound"
                new = self.land_on_bound(predictor, new, q_bound)
                if new is None:
                    message = (
                        f"reached the parameter bound p={p_bound:.10g}; the point on "
                        "the bound could not be corrected, so the branch ends at the "
                        "last point inside"
                    )
                    break
                message = f"reached the parameter bound p={p_bound:.10g}"
                stop = status

            self.accept(new, predictor, iterations, skip_first_events)
            if stop is not None:
                break
            if self.closes_loop(predictor, new):
                status = "completed"
                message = "the branch returned to its start point: it is a closed curve"
                break
            ds = self.next_step(ds, iterations, cos_angle)
        return status, message

    def accept(self, new: PointData, predictor, iterations: int, skip_first_events):
        index = len(self.points) - 1
        current = self.points[-1]
        self.points.append(new)
        self.iterations.append(iterations)
        self.steps.append(float(predictor @ (new.z - current.z)))
        if self.options.verbosity >= 2:
            logger.info(
                "step %d: p=%.10g, ds=%.3e, %d Newton iterations, %d unstable",
                index + 1,
                new.p,
                self.steps[-1],
                iterations,
                new.n_unstable,
            )
        if not self.options.detects_events or (skip_first_events and index == 0):
            return
        segment = Segment(self.system, current, new, predictor, index, self.options)
        self.special.extend(detect_events(segment))


def trace(
    system: _System,
    start: PointData,
    start_iterations: int,
    algorithm: PALC,
    options: ContinuationOptions,
    bounds,
    skip_first_events: bool = False,
) -> Branch:
    """Run the continuation loop from a corrected start with a known tangent."""
    if system.problem.stepper is not None:
        return _compiled_trace(
            system,
            start,
            start_iterations,
            algorithm,
            options,
            bounds,
            skip_first_events,
        )
    tracer = _Tracer(system, start, start_iterations, algorithm, options, bounds)
    name = system.problem.name
    if options.verbosity >= 1:
        logger.info("branch %r: start at p=%.10g", name, start.p)
    status, message = tracer.run(skip_first_events)
    if options.verbosity >= 1:
        logger.info(
            "branch %r: %s after %d points (%s)",
            name,
            status,
            len(tracer.points),
            message,
        )
    points = tracer.points
    n = system.n
    eigenvalues = np.array([point.stability_eigenvalues for point in points])
    return Branch(
        u=np.array([point.z[:n] for point in points]),
        p=np.array([point.p for point in points]),
        tangents=np.array([point.tangent for point in points]),
        ds=np.array(tracer.steps),
        n_unstable=np.array([point.n_unstable for point in points]),
        eigenvalues=eigenvalues,
        newton_iterations=np.array(tracer.iterations),
        special_points=tuple(tracer.special),
        status=status,
        message=message,
        name=name,
        parameter_scale=system.problem.parameter_scale,
        n_rejected=tracer.n_rejected,
    )


# Columns of a row of the points array of a compiled stepper
# (reluspec._kernels.symmetric_palc).
_Z, _TANGENT, _PREDICTOR, _EIGEN = slice(0, 4), slice(4, 8), slice(8, 12), slice(12, 15)
_ITERATIONS, _STEP, _UNSTABLE, _DET_SIGN, _ALPHA = 15, 16, 17, 18, 19
_PALC_STATUS = {
    0: "max_steps",
    1: "parameter_bound",
    2: "parameter_bound",
    3: "newton_failed",
    4: "suspected_branch_jump",
    5: "max_rejections",
}
_LOOP_CANDIDATE = 6


def _compiled_trace(
    system, start, start_iterations, algorithm, options, bounds, skip_first_events
) -> Branch:
    """Run the stepping loop of :class:`_Tracer` in the problem's compiled
    stepper, then locate the special points between the accepted points.

    The stepper returns, for every accepted point, its tangent, the
    predictor that reached it, the eigenvalues of the stability matrix and
    the sign of the bordered determinant. :func:`detect_events` searches a
    step for events, as in the Python loop, only where one of its tests
    changes sign or an end is close to singular, because elsewhere it would
    find none.
    """
    from .. import _kernels

    n = system.n
    q_min, q_max = bounds
    points = np.empty((options.max_steps + 1, _kernels.PALC_ROW))
    points[0, _Z] = start.z
    points[0, _TANGENT] = start.tangent
    points[0, _PREDICTOR] = start.tangent
    points[0, _EIGEN] = np.real(start.stability_eigenvalues)
    points[0, _ITERATIONS] = start_iterations
    points[0, _STEP] = 0.0
    points[0, _UNSTABLE] = start.n_unstable
    points[0, _DET_SIGN] = start.det_sign
    points[0, _ALPHA] = start.p
    settings = np.array(
        [
            options.ds_min,
            options.ds_max,
            q_min,
            q_max,
            options.max_steps,
            options.newton_tol,
            options.newton_max_iter,
            options.max_rejections,
            options.angle_max,
            algorithm.step_growth,
            algorithm.step_shrink,
            algorithm.target_newton_iterations,
            1.0 if algorithm.tangent == "secant" else 0.0,
        ]
    )
    report = np.empty(4)
    count, ds, n_rejected = 1, options.ds, 0
    cache = {0: start}

    def point_at(i):
        if i not in cache:
            cache[i] = PointData(
                system,
                points[i, _Z].copy(),
                points[i, _PREDICTOR].copy(),
                tangent=points[i, _TANGENT].copy(),
            )
        return cache[i]

    while True:
        code = system.problem.stepper(points, count, ds, settings, report)
        count, ds = int(report[0]), float(report[1])
        n_rejected += int(report[2])
        if code != _LOOP_CANDIDATE:
            break
        if _closes_loop(system, options, point_at, points, count):
            status, message = (
                "completed",
                "the branch returned to its start point: it is a closed curve",
            )
            break
        if count - 1 >= options.max_steps:
            code = 0
            break
    if code != _LOOP_CANDIDATE:
        status = _PALC_STATUS[code]
        message = _compiled_message(code, options, points[count - 1], report[3])

    special = []
    candidates = _steps_with_possible_events(points[:count])
    if not options.detects_events:
        candidates[:] = False
    if skip_first_events and len(candidates):
        candidates[0] = False
    for i in np.flatnonzero(candidates).tolist():
        segment = Segment(
            system,
            point_at(i),
            point_at(i + 1),
            points[i + 1, _PREDICTOR].copy(),
            i,
            options,
        )
        special.extend(detect_events(segment))

    rows = points[:count]
    branch = Branch(
        u=rows[:, _Z][:, :n].copy(),
        p=rows[:, _ALPHA].copy(),
        tangents=rows[:, _TANGENT].copy(),
        ds=rows[:, _STEP].copy(),
        n_unstable=rows[:, _UNSTABLE].astype(int),
        eigenvalues=rows[:, _EIGEN].copy(),
        newton_iterations=rows[:, _ITERATIONS].astype(int),
        special_points=tuple(special),
        status=status,
        message=message,
        name=system.problem.name,
        parameter_scale=system.problem.parameter_scale,
        n_rejected=n_rejected,
    )
    if options.verbosity >= 1:
        logger.info(
            "branch %r: %s after %d points (%s)", branch.name, status, count, message
        )
    return branch


def _steps_with_possible_events(rows) -> np.ndarray:
    """Return, for each step between consecutive rows, False when every test
    of :func:`detect_events` keeps its sign on it with room to spare.

    A step is searched when the fold test (the parameter component of the
    tangent) changes sign as :func:`_changes_sign` defines it, or when the
    determinant sign or the unstable count changes. It is also searched
    when, at either end, an eigenvalue of the stability matrix is within
    1e-8 of the largest or the fold test within 1e-10 of zero.
    """
    fold = rows[:, _TANGENT][:, -1]
    a, b = fold[:-1], fold[1:]
    flips = (a != 0.0) & ((b == 0.0) | ((a > 0.0) != (b > 0.0)))
    flips |= rows[:-1, _DET_SIGN] != rows[1:, _DET_SIGN]
    flips |= rows[:-1, _UNSTABLE] != rows[1:, _UNSTABLE]
    eigenvalues = np.abs(rows[:, _EIGEN])
    marginal = (eigenvalues.min(axis=1) <= 1e-8 * eigenvalues.max(axis=1)) | (
        np.abs(fold) <= 1e-10
    )
    return flips | marginal[:-1] | marginal[1:]


def _reaches_start(system, options, start, current, new, predictor) -> bool:
    """Return True if the branch between ``current`` and ``new`` passes
    through the start point: the corrected point at the start's arclength
    lies within 1e-6 of it."""
    s0 = float(predictor @ (start.z - current.z))
    segment = Segment(system, current, new, predictor, 0, options)
    try:
        on_branch = segment.point(s0)
    except _STEP_ERRORS:
        return False
    scale = max(1.0, float(np.linalg.norm(start.z)))
    return bool(np.linalg.norm(on_branch.z - start.z) <= 1e-6 * scale)


def _closes_loop(system, options, point_at, points, count) -> bool:
    """Run the correction step of :meth:`_Tracer.closes_loop` for the last
    accepted point, whose geometric conditions the stepper has checked."""
    start, current, new = point_at(0), point_at(count - 2), point_at(count - 1)
    predictor = points[count - 1, _PREDICTOR].copy()
    return _reaches_start(system, options, start, current, new, predictor)


def _compiled_message(code, options, last, alpha) -> str:
    p = float(last[_ALPHA])
    if code == 0:
        return f"reached max_steps={options.max_steps}"
    if code == 1:
        return f"reached the parameter bound p={p:.10g}"
    if code == 2:
        return (
            f"reached the parameter bound p={alpha:.10g}; the point on the bound "
            "could not be corrected, so the branch ends at the last point inside"
        )
    if code == 5:
        return (
            f"{options.max_rejections + 1} consecutive steps from p={alpha:.10g} "
            f"were rejected (max_rejections={options.max_rejections})"
        )
    reason = (
        "the tangent turned by more than angle_max; the corrector has probably "
        "converged to a crossing branch, so the point was not accepted and a "
        "branch point is likely nearby"
        if code == 4
        else "the corrector did not converge; check the residual near this point, "
        "or lower ds_min or raise newton_tol"
    )
    return (
        f"the step from p={alpha:.10g} failed at the minimum step "
        f"ds_min={options.ds_min:.1e}: {reason}"
    )
