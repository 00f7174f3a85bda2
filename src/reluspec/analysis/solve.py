"""Find every site-symmetric state, its stability and the phase transitions.

:func:`solve` runs these phases:

1. continue the unspecialised branch from small alpha, starting at the
   maximum of the entropy (R = S = C = 0);
2. at each branch point, locate it with its defining system and follow the
   crossing branch in both directions;
3. minimise F from many starts at a few values of alpha and follow every
   state not yet on a branch in both directions, which finds branches that
   are not connected to the unspecialised one in the solved range;
4. locate every fold with its defining system;
5. on a grid of alpha that includes every special point, collect the locally
   stable states, take the one of least F as the equilibrium, and classify
   each change of the equilibrium as continuous (at a branch point) or first
   order (located as the point of equal free energies).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field, replace

import mpmath
import numpy as np
from scipy.optimize import brentq

from .. import __version__, _kernels
from ..continuation import PALC, ContinuationError, ContinuationOptions, continuation
from .locate import (
    LocatedPoint,
    LocationError,
    locate_branch_point,
    locate_first_order,
    locate_fold,
    refine_alpha_mp,
)
from .locate import _newton as newton_system
from .locate import _rounding_error
from .problem import SpecializationProblem, StationaryPointError
from .results import (
    CONVENTIONS,
    CriticalPoint,
    LearningCurve,
    SpecializationResult,
    StateBranch,
    Transition,
)
from .stability import find_full_space_bifurcations, full_space_counts

__all__ = ["solve", "SolveOptions"]

logger = logging.getLogger(__name__)

#: Largest ``precision`` of :func:`solve`, in decimal digits; refining one
#: critical point takes about a second at 200 digits.
MAX_PRECISION = 1000

UNSPECIALIZED = "unspecialized"
R_ABOVE_S = "specialized R>S"
R_BELOW_S = "specialized R<S"


@dataclass(frozen=True)
class SolveOptions:
    """Options of :func:`solve`.

    Attributes
    ----------
    grid_points : int
        Number of log-spaced alpha values of the learning curve (default 200);
        every special point is added to the grid as well.
    starts : int
        Number of random starts of the minimisation at each seed alpha
        (default 8), besides fixed starts near the known kinds of state.
        Raise it when a branch may be missing.
    seed : int
        Seed of the random starts, so that results are reproducible.
    ds_max : float
        Largest continuation step in the arclength of (R, S, C, log alpha)
        (default 0.15). Lower it when a branch looks under-resolved.
    max_steps : int
        Cap on continuation steps per branch (default 4000).
    distinct_tol : float
        States closer than this in max-norm count as one (default 1e-6).
    """

    grid_points: int = 200
    starts: int = 8
    seed: int = 0
    ds_max: float = 0.15
    max_steps: int = 4000
    distinct_tol: float = 1e-6

    def __post_init__(self):
        if not (isinstance(self.grid_points, int) and self.grid_points >= 2):
            raise ValueError(
                f"grid_points = {self.grid_points!r} must be an integer >= 2"
            )
        if not (isinstance(self.starts, int) and self.starts >= 0):
            raise ValueError(f"starts = {self.starts!r} must be an integer >= 0")
        if not (0 < self.ds_max <= 1):
            raise ValueError(f"ds_max = {self.ds_max!r} must lie in (0, 1]")
        if not (isinstance(self.max_steps, int) and self.max_steps >= 10):
            raise ValueError(f"max_steps = {self.max_steps!r} must be an integer >= 10")
        if not (0 < self.distinct_tol < 1e-2):
            raise ValueError(
                f"distinct_tol = {self.distinct_tol!r} must lie in (0, 1e-2)"
            )


@dataclass
class _Trace:
    """A traced branch before naming: points, stability and special points."""

    alpha: np.ndarray
    u: np.ndarray
    n_unstable: np.ndarray
    special_points: list = field(default_factory=list)
    origin: str = ""
    name: str = ""
    source: object = None  # the continuation Branch, when the trace is one
    n_unstable_full: np.ndarray | None = None
    stability_note: tuple = ()

    def unstable_count(self, stability: str) -> np.ndarray:
        """Return the unstable-direction counts of the chosen stability label."""
        return self.n_unstable_full if stability == "full" else self.n_unstable


#: Smallest and largest alpha that :func:`solve` accepts. Solves over the
#: whole range were checked for both activations with K = 2, 3 and 10.
#: Beyond it the continuation steps are not sized for the length in log alpha.
ALPHA_MIN = 1e-8
ALPHA_MAX = 1e8


def _validate_alpha(alpha) -> tuple[float, float]:
    valid = f"a pair (lo, hi) with {ALPHA_MIN:g} <= lo < hi <= {ALPHA_MAX:g}"
    try:
        lo, hi = (float(a) for a in alpha)
    except (TypeError, ValueError) as error:
        raise ValueError(f"alpha must be {valid}, got {alpha!r}") from error
    if not (ALPHA_MIN <= lo < hi <= ALPHA_MAX):
        raise ValueError(f"alpha range ({lo!r}, {hi!r}) is invalid: need {valid}")
    return lo, hi


def solve(
    problem: SpecializationProblem,
    alpha=(0.5, 60.0),
    *,
    options: SolveOptions | None = None,
    precision: int | None = None,
    stability: str = "full",
) -> SpecializationResult:
    """Find every site-symmetric state for ``alpha`` in the given range.

    Parameters
    ----------
    problem : SpecializationProblem
        Activation and number of hidden units K.
    alpha : (float, float)
        Range ``(lo, hi)`` of the training set size,
        ``ALPHA_MIN = 1e-8 <= lo < hi <= ALPHA_MAX = 1e8``.
    options : SolveOptions, optional
        Grid size, number of random starts, continuation step cap.
    precision : int, optional
        If given (16 or more), every branch point, fold and first-order
        point is located again in mpmath with this many digits; the decimal
        value is stored in ``CriticalPoint.alpha_high_precision`` and shown
        by ``summary()``. Symmetry-breaking points keep their double
        precision location.
    stability : {"full", "ansatz"}
        Which stability decides the equilibrium: ``"full"`` (default) counts
        the unstable directions of the Hessian in the space of all entries of
        R and Q, so that a state stable only inside the ansatz is unstable;
        ``"ansatz"`` uses the 3x3 Hessian in (R, S, C). Both labels are
        stored on every branch.

    Returns
    -------
    SpecializationResult
        Branches, critical points, transitions and the learning curve.

    Notes
    -----
    The unspecialised state has R = S: every student unit overlaps equally
    with all teacher units. Specialised branches have R > S or (for K >= 3,
    where it is a distinct state) R < S. For K = 2 the R < S states are the
    R > S states with the two student units swapped and are not listed.
    """
    if not isinstance(problem, SpecializationProblem):
        raise TypeError(
            f"problem must be a SpecializationProblem, not {problem!r}; create one "
            "with reluspec.SpecializationProblem(activation, K)"
        )
    lo, hi = _validate_alpha(alpha)
    options = options or SolveOptions()
    if stability not in ("full", "ansatz"):
        raise ValueError(
            f"stability = {stability!r} is invalid: use 'full' or 'ansatz'"
        )
    if precision is not None and (
        isinstance(precision, bool)
        or not isinstance(precision, int)
        or not 16 <= precision <= MAX_PRECISION
    ):
        raise ValueError(
            f"precision = {precision!r} is invalid: it must be an integer number of "
            f"digits from 16 to {MAX_PRECISION}"
        )
    alpha_min = min(lo / 2.0, 0.05)
    logger.info("solving %r for alpha in [%g, %g]", problem, lo, hi)

    traces = [_trace_unspecialized(problem, alpha_min, hi, options)]
    # Branch points located for the crossing branches, reused by phase 4.
    located_branch_points = {}
    traces += _trace_crossing_branches(
        problem, traces[0], alpha_min, hi, options, located_branch_points
    )
    traces += _trace_seeded_branches(problem, traces, lo, hi, alpha_min, options)
    traces = _distinct_named_traces(problem, traces)
    for trace in traces:
        _label_full_space(problem, trace)

    known = ()
    if _uses_regular_system(problem):
        # The regular equations give the R > S fold; the (R, S, C) one near
        # it, which they replace, is not located.
        solution = _regular_solution(problem)
        skip = None if solution is None else solution[0].alpha
        critical = _locate_critical_points(
            problem, traces, lo, hi, located_branch_points, skip
        )
        critical, known = _regular_critical_points(problem, critical, lo, hi, solution)
        _move_turning_points_to_folds(traces, critical)
    else:
        critical = _locate_critical_points(
            problem, traces, lo, hi, located_branch_points
        )
    pieces = _split_into_pieces(traces, stability)
    curve_data, transitions, first_order_points = _equilibrium(
        problem, pieces, critical, lo, hi, options, known
    )
    critical = sorted(critical + first_order_points, key=lambda p: p.alpha)
    if precision is not None:
        before = {id(p): (p.alpha, p.alpha_error) for p in critical}
        critical = [_refine(problem, p, precision) for p in critical]
        transitions = [_refined_transition(t, critical, before) for t in transitions]

    branches = [
        _to_state_branch(problem, t, curve_data, lo, hi, stability, critical)
        for t in traces
    ]
    critical = sorted(
        critical + _symmetry_breaking_points(problem, branches), key=lambda p: p.alpha
    )
    result = SpecializationResult(
        activation=problem.activation.name,
        K=problem.K,
        alpha_range=(lo, hi),
        branches=branches,
        critical_points=[_public_point(problem, p) for p in critical],
        transitions=transitions,
        learning_curve=curve_data["curve"],
        metadata={
            "version": __version__,
            "conventions": dict(CONVENTIONS),
            "stability": stability,
        },
    )
    logger.info(
        "found %d branches, %d critical points, %d transitions",
        len(branches),
        len(critical),
        len(transitions),
    )
    return result


# -- phase 1-3: tracing ------------------------------------------------------------------
def _continuation_options(problem, options, alpha_min, alpha_max, direction=1):
    return ContinuationOptions(
        newton_tol=1e-11,
        ds=0.01,
        ds_min=1e-9,
        ds_max=options.ds_max,
        p_min=alpha_min,
        p_max=alpha_max,
        max_steps=options.max_steps,
        direction=direction,
    )


def _from_branch(branch, origin) -> _Trace:
    return _Trace(
        alpha=np.array(branch.p, dtype=float),
        u=np.array(branch.u, dtype=float),
        n_unstable=np.array(branch.n_unstable, dtype=int),
        special_points=list(branch.special_points),
        origin=origin,
        source=branch,
    )


def _check_status(branch, what):
    if branch.status not in ("completed", "parameter_bound"):
        logger.warning("%s stopped early (%s): %s", what, branch.status, branch.message)


def _trace_unspecialized(problem, alpha_min, alpha_max, options) -> _Trace:
    u0 = problem.unspecialized_start(alpha_min)
    branch = continuation(
        problem.continuation_problem(u0, alpha_min),
        PALC(),
        _continuation_options(problem, options, alpha_min, alpha_max),
    )
    _check_status(branch, "unspecialised branch")
    return _from_branch(branch, "unspecialized")


def _trace_crossing_branches(
    problem, parent, alpha_min, alpha_max, options, located_branch_points=None
):
    """Follow the branches that cross the unspecialised one at its branch points.

    The crossing branch is started from the located branch point with the
    known symmetry-breaking direction: two points with fixed ``d = R - S``
    (``delta`` and ``2 delta`` on either side) are solved for ``(m, C,
    alpha)``, and their chord is the initial tangent. Each trace begins with
    the branch point itself.
    """
    traces = []
    for point in parent.special_points:
        if point.kind != "branch_point":
            continue
        try:
            located = _branch_point(problem, point.u, point.p, located_branch_points)
        except LocationError as error:
            logger.warning(
                "branch point near alpha = %.6g not located: %s", point.p, error
            )
            continue
        u_bp, alpha_bp = located.states[0], located.alpha
        for sign in (1.0, -1.0):
            try:
                trace = _trace_from_branch_point(
                    problem, u_bp, alpha_bp, sign, alpha_min, alpha_max, options
                )
            except (ContinuationError, StationaryPointError) as error:
                logger.warning(
                    "the crossing branch at alpha = %.8g (sign of R - S: %+d) could "
                    "not be started: %s",
                    alpha_bp,
                    sign,
                    error,
                )
                continue
            traces.append(trace)
    return traces


_FIXED_D_FAILURES = {
    1: "did not converge",
    2: "left the domain",
    3: "met a singular Jacobian",
}


def _fixed_d_state(problem, u_bp, alpha_bp, d, error=True):
    """Solve grad F = 0 for (m, C, alpha) at fixed ``d = R - S`` by Newton.

    Returns the state, its alpha and, with ``error``, the rounding error of
    alpha (NaN without).
    """
    e_d, e_m, e_C = problem.e_d, problem.e_m, problem.e_C
    K = problem.K
    _, m, C = problem.symmetric_coordinates(u_bp)

    def state(y):
        return d * e_d + y[0] * e_m + y[1] * e_C

    def system(y, jacobian=True):
        if problem._kind is not None:
            out = np.empty(12)
            if _kernels.symmetric_fixed_d_system(
                problem._kind, float(K), float(d), np.asarray(y, dtype=float), out
            ):
                return np.full(3, np.nan), np.full((3, 3), np.nan)
            return out[:3], out[3:].reshape(3, 3)
        u = state(y)
        if not problem.is_valid(u) or not y[2] > 0:
            return np.full(3, np.nan), np.full((3, 3), np.nan)
        H = problem.hessian(u, y[2])
        J = np.column_stack([H @ e_m, H @ e_C, K * problem.error_gradient(u)])
        return problem.gradient(u, y[2]), J

    if problem._kind is not None:
        y = np.array([m, C, alpha_bp], dtype=float)
        info = np.empty(3)
        status = _kernels.symmetric_fixed_d(
            problem._kind, float(K), float(d), y, 1e-13, 40, 1e-7, info
        )
        if status == 0:
            alpha_error = math.nan
            if error:
                r, J = system(y)
                # The error only has to show whether alpha is resolved, so
                # that a few rounding samples suffice.
                alpha_error = _rounding_error(system, y, r, J, 2, samples=4)
                if info[0] > 1e-13:
                    alpha_error = max(alpha_error, info[2])
            return state(y), float(y[2]), alpha_error
        raise StationaryPointError(
            f"no stationary point with R - S = {d:.3g} was found near the branch "
            f"point at alpha = {alpha_bp:.8g}: Newton's method in (m, C, alpha) "
            f"{_FIXED_D_FAILURES[status]} after {int(info[1])} steps (last "
            f"relative step {info[0]:.1e})"
        )
    try:
        # The error only has to show whether alpha is resolved, so that a
        # few rounding samples suffice.
        y, alpha_error, _, _ = newton_system(
            system, [m, C, alpha_bp], "crossing branch start", 2, samples=4
        )
    except LocationError as error:
        raise StationaryPointError(
            f"no stationary point with R - S = {d:.3g} was found near the branch "
            f"point at alpha = {alpha_bp:.8g}: {error}"
        ) from error
    return state(y), float(y[2]), alpha_error


def _trace_from_branch_point(
    problem, u_bp, alpha_bp, sign, alpha_min, alpha_max, options
):
    # The smallest start whose alpha is resolved keeps a fold close to the
    # branch point (it approaches the branch point as K grows) on the traced
    # part of the branch. At a pitchfork alpha changes like d^2, and at tiny d
    # the change drowns in rounding.
    for size in (1e-6, 1e-5, 1e-4, 1e-3):
        delta = sign * size
        u1, a1, error1 = _fixed_d_state(problem, u_bp, alpha_bp, delta)
        u2, a2, error2 = _fixed_d_state(problem, u_bp, alpha_bp, 2 * delta)
        noise = max(error1, error2, 1e-14 * alpha_bp)
        if abs(a2 - a1) > 100 * noise or abs(a1 - alpha_bp) > 100 * noise:
            break
    tangent = np.append(u2 - u1, math.log(a2) - math.log(a1))
    tangent /= np.linalg.norm(tangent)
    if not alpha_min <= a1 <= alpha_max:
        raise ContinuationError(
            f"the crossing branch starts outside the alpha range at {a1:.6g}"
        )
    branch = continuation(
        problem.continuation_problem(u1, a1),
        PALC(),
        replace(_continuation_options(problem, options, alpha_min, alpha_max), ds=1e-3),
        tangent=tangent,
    )
    _check_status(branch, f"branch from alpha = {alpha_bp:.8g}")
    trace = _from_branch(branch, f"branch point at alpha = {alpha_bp:.8g}")
    trace.alpha = np.concatenate([[alpha_bp], trace.alpha])
    trace.u = np.vstack([u_bp, trace.u])
    trace.n_unstable = np.concatenate(
        [[problem.n_unstable(u_bp, alpha_bp)], trace.n_unstable]
    )
    return trace


def _seed_alphas(lo, hi):
    return sorted({hi, math.sqrt(lo * hi)})


def _random_starts(problem, rng, count):
    """Draw valid starts: the 'specialised' corners plus uniform random points."""
    K = problem.K
    fixed = [
        (0.95, 0.0, 0.0),
        (0.6, 0.05, 0.0),
        (-0.5, 0.5 / max(1.0, math.sqrt(K - 1)), 0.0),
        (0.0, 0.5 / max(1.0, math.sqrt(K - 1)), 0.0),
    ]
    starts = [np.array(s) for s in fixed if problem.is_valid(s)]
    tries = 0
    while len(starts) < len(fixed) + count and tries < 100 * (count + 1):
        tries += 1
        scale = np.array([1.0, 1.0 / math.sqrt(K - 1), 1.0 / (K - 1)])
        u = rng.uniform(-1.0, 1.0, 3) * scale
        if problem.is_valid(u):
            starts.append(u)
    return starts


def _on_traces(u, alpha, traces) -> bool:
    """Return True if the state (u, alpha) lies on one of the traced branches.

    The test is the distance, in (R, S, C, ln alpha), from the point to the
    polygon through the traced points. A chord of a branch whose tangent
    turns by at most ``angle_max = 0.5`` rad strays from the branch by at
    most ``0.5 h / 8`` for a chord of length ``h``, so a point within
    ``h / 10`` of a chord lies on that branch, while another branch is
    farther away except where two branches cross.
    """
    z = np.append(np.asarray(u, dtype=float), math.log(alpha))
    for trace in traces:
        points = np.column_stack([trace.u, np.log(trace.alpha)])
        if len(points) < 2:
            continue
        start, end = points[:-1], points[1:]
        chord = end - start
        length_squared = np.einsum("ij,ij->i", chord, chord)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.einsum("ij,ij->i", z - start, chord) / length_squared
        t = np.clip(np.nan_to_num(t), 0.0, 1.0)
        nearest = start + t[:, None] * chord
        distance = np.max(np.abs(nearest - z), axis=1)
        if np.any(distance <= 0.1 * np.sqrt(length_squared) + 1e-7):
            return True
    return False


def _trace_seeded_branches(problem, traces, lo, hi, alpha_min, options):
    rng = np.random.default_rng(options.seed)
    found = []
    for alpha in _seed_alphas(lo, hi):
        minima = []
        for start in _random_starts(problem, rng, options.starts):
            try:
                u = problem.local_minimum(start, alpha)
            except StationaryPointError:
                continue
            if any(np.max(np.abs(u - m)) <= options.distinct_tol for m in minima):
                continue
            minima.append(u)
        for u in minima:
            if _on_traces(u, alpha, traces + found):
                continue
            logger.info("new state at alpha = %g: R, S, C = %s", alpha, u)
            found.append(_trace_both_ways(problem, u, alpha, alpha_min, hi, options))
    return found


def _trace_both_ways(problem, u, alpha, alpha_min, alpha_max, options) -> _Trace:
    cont_problem = problem.continuation_problem(u, alpha)
    parts = []
    for direction in (-1, 1):
        if (direction < 0 and alpha <= alpha_min) or (
            direction > 0 and alpha >= alpha_max
        ):
            continue
        branch = continuation(
            cont_problem,
            PALC(),
            _continuation_options(problem, options, alpha_min, alpha_max, direction),
        )
        _check_status(branch, f"branch seeded at alpha = {alpha:.6g}")
        parts.append((direction, branch))
    alphas, us, unstable, special = [], [], [], []
    for direction, branch in parts:
        p, x, n = (
            np.asarray(branch.p),
            np.asarray(branch.u),
            np.asarray(branch.n_unstable),
        )
        if direction < 0:
            p, x, n = p[::-1], x[::-1], n[::-1]
        if alphas:
            p, x, n = p[1:], x[1:], n[1:]  # the seed itself is already present
        alphas.append(p)
        us.append(x)
        unstable.append(n)
        special += list(branch.special_points)
    return _Trace(
        alpha=np.concatenate(alphas),
        u=np.concatenate(us),
        n_unstable=np.concatenate(unstable),
        special_points=special,
        origin=f"minimum at alpha = {alpha:.6g}",
    )


# -- naming ------------------------------------------------------------------------------
#: The relative eigenvalue threshold of full_space_counts.
_FULL_RTOL = 1e-10

#: The smallest relative tolerance scipy's brentq accepts (4 ulp).
_BRENT_RTOL = 4.0 * np.finfo(float).eps

#: Machine epsilon of double precision.
_EPS = float(np.finfo(float).eps)

#: |R - S| at or below this counts as zero (the unspecialised branch carries
#: R - S at rounding level only).
_D_ZERO = 1e-7


def _split_by_sign(trace) -> list:
    """Split a trace into parts of one sign of R - S (or R = S throughout).

    A trace splits where it crosses or joins the unspecialised branch. The
    crossing point belongs to both neighbouring parts, and runs of fewer than
    three points with R = S (a branch point at which a trace starts or that
    it passes) are absorbed by their neighbours.
    """
    d = trace.u[:, 0] - trace.u[:, 1]
    sign = np.where(np.abs(d) <= _D_ZERO, 0, np.sign(d)).astype(int)
    runs = []  # [sign, first index, last index]
    for i, value in enumerate(sign):
        if runs and runs[-1][0] == value:
            runs[-1][2] = i
        else:
            runs.append([value, i, i])
    merged = []
    for run in runs:
        if run[0] == 0 and run[2] - run[1] < 2 and (merged or len(runs) > 1):
            # A short R = S run joins the previous run, or the next one.
            if merged:
                merged[-1][2] = run[2]
            else:
                run[0] = None
                merged.append(run)
            continue
        if merged and (merged[-1][0] == run[0] or merged[-1][0] is None):
            merged[-1][0] = run[0]
            merged[-1][2] = run[2]
        else:
            merged.append(run)
    if len(merged) == 1:
        return [trace]
    parts = []
    for k, (_, first, last) in enumerate(merged):
        start = first - 1 if k > 0 else first  # share the crossing point
        parts.append((start, last))
    pieces = [
        _Trace(
            alpha=trace.alpha[a : b + 1],
            u=trace.u[a : b + 1],
            n_unstable=trace.n_unstable[a : b + 1],
            origin=trace.origin,
        )
        for a, b in parts
    ]
    # Each special point goes to the part passing closest to it.
    for point in trace.special_points:
        z = np.append(np.asarray(point.u, dtype=float), math.log(point.p))
        distances = [
            np.min(np.max(np.abs(np.column_stack([p.u, np.log(p.alpha)]) - z), axis=1))
            for p in pieces
        ]
        pieces[int(np.argmin(distances))].special_points.append(point)
    return pieces


def _name_trace(problem, trace):
    """Name a trace by the sign of R - S; drop the mirror branch for K = 2."""
    d = trace.u[:, 0] - trace.u[:, 1]
    if np.sum(np.abs(d) > _D_ZERO) <= 1:
        trace.name = UNSPECIALIZED
        return
    sign = np.sign(d[np.argmax(np.abs(d))])
    if sign > 0:
        trace.name = R_ABOVE_S
    elif problem.K == 2:
        trace.name = ""  # the R < S states of K = 2 are the R > S states relabelled
    else:
        trace.name = R_BELOW_S


def _new_parts(trace, earlier) -> list:
    """Return the parts of ``trace`` that no earlier trace of its kind covers.

    Points lying on an earlier trace are dropped; each remaining run of at
    least three points becomes a part, extended by one covered point at each
    end so that it joins the branch it continues.
    """
    same_kind = [t for t in earlier if t.name.split(" #")[0] == trace.name]
    if not same_kind:
        return [trace]
    covered = np.array(
        [_on_traces(x, a, same_kind) for x, a in zip(trace.u, trace.alpha)]
    )
    if not covered.any():
        return [trace]
    parts, i, n = [], 0, len(covered)
    while i < n:
        if covered[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and not covered[j + 1]:
            j += 1
        if j - i + 1 >= 3:
            a, b = max(i - 1, 0), min(j + 1, n - 1)
            part = _Trace(
                alpha=trace.alpha[a : b + 1],
                u=trace.u[a : b + 1],
                n_unstable=trace.n_unstable[a : b + 1],
                origin=trace.origin,
                name=trace.name,
            )
            part.special_points = [
                p for p in trace.special_points if _on_traces(p.u, p.p, [part])
            ]
            parts.append(part)
        i = j + 1
    return parts


def _distinct_named_traces(problem, traces) -> list:
    """Split, name and deduplicate traces, numbering repeated names."""
    kept, counts = [], {}
    for trace in traces:
        for part in _split_by_sign(trace):
            _name_trace(problem, part)
            if not part.name:
                continue
            for new in _new_parts(part, kept):
                counts[new.name] = counts.get(new.name, 0) + 1
                if counts[new.name] > 1:
                    new.name = f"{new.name} #{counts[new.name]}"
                kept.append(new)
    return kept


def _label_full_space(problem, trace):
    """Store the full-space stability of every point of the trace."""
    counts, notes = [], []
    for u, alpha, n_ansatz in zip(trace.u, trace.alpha, trace.n_unstable):
        count, note = _full_label(problem, u, alpha, int(n_ansatz))
        counts.append(count)
        notes.append(note)
    trace.n_unstable_full = np.asarray(counts, dtype=int)
    trace.stability_note = tuple(notes)


def _full_label(problem, u, alpha, n_ansatz):
    """Return the full-space count and description of a state whose count
    inside the ansatz is ``n_ansatz``.

    The trivial block is the ansatz Hessian in another basis, so it has the
    same inertia. Its count is replaced by ``n_ansatz``, so that the two
    labels never disagree on a marginal eigenvalue that one basis rounds
    below zero and the other does not.
    """
    stability = full_space_counts(problem.activation, *u, alpha, problem.K)
    count = stability.n_unstable - stability.n_unstable_ansatz + n_ansatz
    if count == stability.n_unstable:
        return count, stability.description
    outside = count - n_ansatz
    if count == 0:
        return 0, "stable"
    return count, (
        f"unstable: {n_ansatz} direction(s) inside the ansatz and {outside} "
        "outside it"
    )


def _is_stable(problem, u, alpha, stability) -> bool:
    if stability == "full":
        if problem._kind is not None:
            # The counts of full_space_counts without its argument checks.
            R, S, C = (float(x) for x in u)
            counts = _kernels.symmetric_block_counts(
                problem._kind, R, S, C, float(alpha), problem.K, _FULL_RTOL
            )
            if counts is not None:
                return not any(counts)
        return full_space_counts(problem.activation, *u, alpha, problem.K).stable
    return problem.n_unstable(u, alpha) == 0


# -- phase 4: critical points ------------------------------------------------------------
@dataclass
class _Point:
    """A located critical point before conversion to the public class."""

    kind: str
    alpha: float
    alpha_error: float
    residual: float
    branches: tuple
    states: dict  # branch name -> (R, S, C)
    located: LocatedPoint | None = None
    alpha_high_precision: str = ""
    note: str = ""


#: From this K on, the fold of the R > S branch and the equal-F point of ReLU
#: come from the equations regular in 1/K (:mod:`reluspec.analysis.limit`).
#: Near alpha = 2 pi they lie within about 0.4 / K^2 of the branch point,
#: where the (R, S, C) defining systems are singular to rounding. Where both
#: methods converge (K = 3 to 400) they agree to 2e-11 relative; from K = 33
#: on, the (R, S, C) equal-F system fails for some K.
REGULAR_SYSTEM_MIN_K = 20


def _uses_regular_system(problem) -> bool:
    return (
        problem.activation.name == "relu"
        and type(problem.activation).__name__ == "ReLU"
        and problem.K >= REGULAR_SYSTEM_MIN_K
    )


@functools.lru_cache(maxsize=None)
def _regular_curve(kind):
    """Return the ReLU critical curve of ``kind`` in 1/K, traced once per process."""
    from .limit import trace_critical_curve

    # Only K >= REGULAR_SYSTEM_MIN_K is solved on it, so eps = 1/K stops
    # there. Its points only start the solves at eps = 1/K (from cubic
    # interpolation), so that steps of 0.025 suffice: the solves agree with
    # those from a trace in steps of 0.005 to 2 ulp for K = 20..199.
    eps_max = 1.0 / REGULAR_SYSTEM_MIN_K
    return trace_critical_curve("relu", kind, eps_max=eps_max, ds=0.025, ds_max=0.025)


def _regular_solution(problem):
    """Return the fold and the equal-F point of the regular equations in 1/K
    at this K as LocatedPoints, or None (with a warning) where they fail."""
    from .limit import _located_start

    K = problem.K
    try:
        return tuple(
            _located_start(problem, _regular_curve(kind).solve_at(K), 1.0 / K)
            for kind in ("fold", "first_order")
        )
    except (RuntimeError, ValueError) as error:
        logger.warning(
            "the regular equations in 1/K failed at K = %d (%s); the fold and the "
            "equal-F point come from the (R, S, C) equations",
            K,
            error,
        )
        return None


def _regular_critical_points(problem, critical, lo, hi, solution=None):
    """Replace the R > S fold of large-K ReLU by the one of the regular
    equations, and return the equal-F point of those equations as a known
    first-order point ``[(LocatedPoint, (unspecialized, R > S))]``.

    The regular equations are solved to a few ulp (checked against the
    mpmath solution of the (R, S, C) equations in tests), so the error
    reported is 8 ulp of alpha. ``solution`` is the result of
    :func:`_regular_solution`, computed here when not given.
    """
    K = problem.K
    if solution is None:
        solution = _regular_solution(problem)
    if solution is None:
        return critical, ()
    fold, equal = solution

    def finish(located):
        residual = max(
            float(np.max(np.abs(problem.gradient(u, located.alpha))))
            for u in located.states
        )
        error = 8.0 * np.finfo(float).eps * located.alpha
        return replace(located, alpha_error=error, residual=residual)

    fold, equal = finish(fold), finish(equal)
    name = "specialized R>S"
    without_old_fold = [
        p
        for p in critical
        if not (
            p.kind == "fold"
            and name in p.branches
            and abs(p.alpha - fold.alpha) <= 1e-4 * fold.alpha
        )
    ]
    if lo <= fold.alpha <= hi:
        without_old_fold.append(_fold_point(fold, name))
    logger.debug(
        "K = %d: fold at %.15g and equal-F point at %.15g from the regular equations",
        K,
        fold.alpha,
        equal.alpha,
    )
    return sorted(without_old_fold, key=lambda p: p.alpha), (
        (equal, (UNSPECIALIZED, name)),
    )


def _move_turning_points_to_folds(traces, critical):
    """Put the turning vertex of a trace on its located fold.

    At large K the traced R > S branch turns back a little away from the
    fold of the regular equations, because its steps are at the resolution
    of double precision there. The states between the two would otherwise
    be missing from the branch, although one of them is the equilibrium
    just above the equal-F point.
    """
    for point in critical:
        if point.kind != "fold" or point.located is None:
            continue
        for trace in traces:
            if trace.name not in point.branches or len(trace.alpha) < 3:
                continue
            a = trace.alpha
            turning = [
                i
                for i in range(1, len(a) - 1)
                if (a[i] - a[i - 1]) * (a[i + 1] - a[i]) < 0
            ]
            if not turning:
                continue
            i = min(turning, key=lambda j: abs(a[j] - point.alpha))
            if abs(a[i] - point.alpha) > 1e-4 * point.alpha:
                continue
            trace.alpha = a.copy()
            trace.u = trace.u.copy()
            trace.alpha[i] = point.alpha
            trace.u[i] = point.states[trace.name]


def _locate_critical_points(
    problem, traces, lo, hi, located_branch_points=None, known_fold=None
):
    """Locate the special points of every trace, and the folds at turning
    points that the solver's test missed. Folds of the R > S branch within
    1e-3 (relative) of ``known_fold`` are not located: the regular large-K
    equations give that fold."""

    def skipped(trace, alpha):
        return (
            known_fold is not None
            and trace.name == R_ABOVE_S
            and abs(alpha - known_fold) <= 1e-3 * known_fold
        )

    points = []
    for trace in traces:
        for special in trace.special_points:
            if special.kind == "fold" and skipped(trace, float(special.p)):
                continue
            point = _locate_one(problem, trace, special, traces, located_branch_points)
            if point is None or not lo <= point.alpha <= hi:
                continue
            if any(_same_point(point, other) for other in points):
                continue
            points.append(point)
    for point in _turning_point_folds(problem, traces, points, skipped):
        if lo <= point.alpha <= hi:
            points.append(point)
    return sorted(points, key=lambda p: p.alpha)


def _turning_point_folds(problem, traces, points, skipped=None):
    """Locate folds at turning points of alpha along a trace that the
    solver's fold test missed.

    Near a branch point at large K the fold is very flat in the arclength
    of (R, S, C, log alpha). The tangent's alpha component can then change
    sign inside the first step from the branch point, where no event is
    tested. A vertex at which alpha turns back marks such a fold all the same.
    ``skipped(trace, alpha)`` marks turning points not to locate.
    """
    found = []
    folds = [p for p in points if p.kind == "fold"]
    for trace in traces:
        if trace.name == UNSPECIALIZED:
            continue
        a = trace.alpha
        for i in range(1, len(a) - 1):
            before, after = a[i] - a[i - 1], a[i + 1] - a[i]
            if min(abs(before), abs(after)) <= 1e-12 * a[i] or before * after > 0:
                continue
            if skipped is not None and skipped(trace, float(a[i])):
                continue
            spacing = max(abs(before), abs(after))
            near = [
                f
                for f in folds + found
                if trace.name in f.branches and abs(f.alpha - a[i]) <= 2.0 * spacing
            ]
            if near:
                continue
            try:
                located = locate_fold(problem, trace.u[i], float(a[i]), None)
            except LocationError as error:
                logger.warning(
                    "fold at the turning point near alpha = %.10g of %r not "
                    "located: %s",
                    a[i],
                    trace.name,
                    error,
                )
                continue
            logger.debug("fold at alpha = %.12g found at a turning point", located.alpha)
            found.append(_fold_point(located, trace.name))
    return found


def _in_curve(curve, name, u, alpha) -> bool:
    """Return True if the learning curve has the state ``u`` of branch
    ``name`` at ``alpha``."""
    for i in np.nonzero(np.abs(curve.alpha - alpha) <= 1e-12 * alpha)[0]:
        state = np.array([curve.R[i], curve.S[i], curve.C[i]])
        if curve.branch[i] == name and np.max(np.abs(state - u)) <= 1e-8:
            return True
    return False


def _fold_point(located, name) -> _Point:
    """Return the critical point of a located fold of branch ``name``."""
    return _Point(
        "fold",
        located.alpha,
        located.alpha_error,
        located.residual,
        (name,),
        {name: located.states[0]},
        located,
    )


def _same_point(a, b) -> bool:
    if a.kind != b.kind or abs(a.alpha - b.alpha) > 1e-8 * abs(a.alpha):
        return False
    state_a = next(iter(a.states.values()))
    return any(
        np.max(np.abs(np.asarray(s) - state_a)) < 1e-6 for s in b.states.values()
    )


def _branch_point(problem, u, alpha, cache=None):
    """Return :func:`locate_branch_point` from ``(u, alpha)``, computed once
    per start when ``cache`` is a dict (the result depends on the start
    only)."""
    if cache is None:
        return locate_branch_point(problem, u, alpha)
    key = (np.asarray(u, dtype=float).tobytes(), float(alpha))
    if key not in cache:
        try:
            cache[key] = locate_branch_point(problem, u, alpha)
        except LocationError as error:
            cache[key] = error
    if isinstance(cache[key], LocationError):
        raise cache[key]
    return cache[key]


def _locate_one(problem, trace, special, traces, located_branch_points=None):
    u, alpha = np.asarray(special.u, dtype=float), float(special.p)
    if special.kind == "branch_point" and trace.name == UNSPECIALIZED:
        try:
            located = _branch_point(problem, u, alpha, located_branch_points)
        except LocationError as error:
            logger.warning(
                "branch point near alpha = %.6g not located: %s", alpha, error
            )
            return None
        state = located.states[0]
        names = [UNSPECIALIZED] + [
            t.name
            for t in traces
            if t.name != UNSPECIALIZED and np.max(np.abs(t.u[0] - state)) < 1e-4
        ]
        return _Point(
            "branch_point",
            located.alpha,
            located.alpha_error,
            located.residual,
            tuple(names),
            {name: state for name in names},
            located,
        )
    if special.kind == "fold":
        null = getattr(special, "null_vectors", None)
        v0 = None
        if null is not None and np.size(null) >= 3:
            v0 = (
                np.asarray(null, dtype=float).reshape(-1, 3)[0]
                if np.ndim(null)
                else None
            )
        try:
            located = locate_fold(problem, u, alpha, v0)
        except LocationError as error:
            logger.warning("fold near alpha = %.6g not located: %s", alpha, error)
            return None
        return _fold_point(located, trace.name)
    if special.kind == "branch_point":
        # A branch point away from the unspecialised branch is a secondary
        # bifurcation, reported with the solver's own location. One with
        # R = S is the crossing with the unspecialised branch, which that
        # branch reports.
        if abs(u[0] - u[1]) <= 1e-4 * max(1.0, float(np.max(np.abs(u)))):
            return None
        tolerance = float(getattr(special, "tolerance", math.nan))
        return _Point(
            "branch_point",
            alpha,
            tolerance * alpha if math.isfinite(tolerance) else math.nan,
            float(getattr(special, "test_value", math.nan)),
            (trace.name,),
            {trace.name: u},
        )
    return None


def _symmetry_breaking_points(problem, branches) -> list:
    """Locate where a full-space Hessian block outside the ansatz is singular."""
    points = []
    for branch in branches:
        if len(branch.alpha) < 2:
            continue
        try:
            found = find_full_space_bifurcations(problem.activation, problem.K, branch)
        except (ValueError, RuntimeError) as error:
            logger.warning(
                "symmetry-breaking points on %s not located: %s", branch.name, error
            )
            continue
        for bifurcation in found:
            u = np.array([bifurcation.R, bifurcation.S, bifurcation.C])
            points.append(
                _Point(
                    "symmetry_breaking",
                    bifurcation.alpha,
                    bifurcation.alpha_error,
                    0.0,
                    (branch.name,),
                    {branch.name: u},
                    note=(
                        f"block {bifurcation.block}, multiplicity "
                        f"{bifurcation.multiplicity}"
                    ),
                )
            )
    return points


def _refined_transition(transition, critical, before):
    """Return ``transition`` at the refined alpha of the critical point it was
    located at: the equal-F point of a first-order transition or the branch
    point of a continuous one. ``before`` maps ``id(point)`` to the alpha and
    error the point had before refinement."""
    kind = "first_order" if transition.kind == "first_order" else "branch_point"
    names = {transition.before, transition.after}
    for point in critical:
        if point.kind != kind or not point.alpha_high_precision:
            continue
        if not names <= set(point.branches):
            continue
        alpha, error = before.get(id(point), (math.nan, math.nan))
        if abs(alpha - transition.alpha) <= max(error, transition.alpha_error):
            # alpha is a double: its error is at least its rounding.
            rounding = 0.5 * math.ulp(point.alpha)
            return replace(
                transition,
                alpha=point.alpha,
                alpha_error=max(point.alpha_error, rounding),
            )
    return transition


def _refine(problem, point, precision):
    if point.located is None:
        return point
    try:
        value, digits = refine_alpha_mp(problem, point.located, dps=precision)
    except (
        LocationError,
        ValueError,
        ZeroDivisionError,
        np.linalg.LinAlgError,
    ) as error:
        logger.warning(
            "refinement of the %s at alpha = %.6g failed: %s",
            point.kind,
            point.alpha,
            error,
        )
        return point
    point.alpha_high_precision = mpmath.nstr(value, max(digits, 1), strip_zeros=False)
    point.alpha = float(value)
    point.alpha_error = abs(point.alpha) * 10.0 ** (-digits)
    return point


def _state_dict(problem, u, alpha) -> dict:
    u = np.asarray(u, dtype=float)
    return {
        "R": float(u[0]),
        "S": float(u[1]),
        "C": float(u[2]),
        "generalization_error": problem.generalization_error(u),
        "free_energy": problem.free_energy(u, alpha),
    }


def _public_point(problem, point) -> CriticalPoint:
    return CriticalPoint(
        kind=point.kind,
        alpha=float(point.alpha),
        alpha_error=float(point.alpha_error),
        branches=tuple(point.branches),
        states={
            name: _state_dict(problem, u, point.alpha)
            for name, u in point.states.items()
        },
        residual=float(point.residual),
        alpha_high_precision=point.alpha_high_precision,
        note=point.note,
    )


# -- phase 5: equilibrium ------------------------------------------------------------------
@dataclass
class _Piece:
    """A stretch of a trace on which alpha is monotone (folds end pieces)."""

    trace: _Trace
    start: int
    stop: int  # inclusive
    stability: str = "full"
    _cache: tuple | None = field(default=None, repr=False)
    # Corrected states and interpolated free energies at the points of the
    # equilibrium grid, computed for the whole grid at once by prefill.
    _states: dict = field(default_factory=dict, repr=False)
    _energies: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.trace.name

    def alpha_range(self) -> tuple[float, float]:
        a = self.trace.alpha[self.start : self.stop + 1]
        return float(a.min()), float(a.max())

    def guess(self, alpha, problem=None):
        """Interpolate the state at ``alpha`` in log alpha.

        With ``problem`` given, cubic Hermite interpolation with the exact
        slopes ``du/dln(alpha) = -H^-1 K alpha grad eps_g`` (implicit function
        theorem); otherwise, and next to a fold where H is singular, linear.
        Returns the guess and the spacing of the two traced points around it.
        """
        a = self.trace.alpha[self.start : self.stop + 1]
        u = self.trace.u[self.start : self.stop + 1]
        if a[0] > a[-1]:
            a, u = a[::-1], u[::-1]
        j = int(np.clip(np.searchsorted(a, alpha), 1, len(a) - 1))
        if a[j] == a[j - 1]:
            return u[j].copy(), 0.0
        h = math.log(a[j]) - math.log(a[j - 1])
        t = (math.log(alpha) - math.log(a[j - 1])) / h
        t = min(max(t, 0.0), 1.0)
        spacing = float(np.max(np.abs(u[j] - u[j - 1])))
        linear = (1 - t) * u[j - 1] + t * u[j]
        if problem is None:
            return linear, spacing
        slopes = self._values(problem)[4]
        if not (np.all(np.isfinite(slopes[j - 1])) and np.all(np.isfinite(slopes[j]))):
            return linear, spacing
        h00 = (1 + 2 * t) * (1 - t) ** 2
        h10 = t * (1 - t) ** 2
        h01 = t * t * (3 - 2 * t)
        h11 = t * t * (t - 1)
        cubic = (
            h00 * u[j - 1] + h10 * h * slopes[j - 1] + h01 * u[j] + h11 * h * slopes[j]
        )
        return cubic, spacing

    def _values(self, problem):
        """Cache F, dF/dalpha and stability at the traced points of the piece."""
        if self._cache is None:
            a = self.trace.alpha[self.start : self.stop + 1]
            u = self.trace.u[self.start : self.stop + 1]
            counts = self.trace.unstable_count(self.stability)
            stable = counts[self.start : self.stop + 1] == 0
            F = error = None
            if problem._kind is not None:
                F, error = np.empty(len(a)), np.empty(len(a))
                state_slopes = np.empty(u.shape)
                if _kernels.symmetric_branch_values(
                    problem._kind,
                    float(problem.K),
                    np.ascontiguousarray(a, dtype=float),
                    np.ascontiguousarray(u, dtype=float),
                    F,
                    error,
                    state_slopes,
                ):
                    F = error = None
            if F is None:
                F = np.array([problem.free_energy(x, al) for x, al in zip(u, a)])
                error = np.array([problem.generalization_error(x) for x in u])
                state_slopes = np.full(u.shape, np.nan)
                for i, (x, al) in enumerate(zip(u, a)):
                    H = problem.hessian(x, al)
                    if np.linalg.cond(H) < 1e8:
                        rhs = -problem.K * al * problem.error_gradient(x, al)
                        state_slopes[i] = np.linalg.solve(H, rhs)
            slope = problem.K * error
            if a[0] > a[-1]:
                a, F, slope, stable = a[::-1], F[::-1], slope[::-1], stable[::-1]
                state_slopes = state_slopes[::-1]
            self._cache = (a, F, slope, stable, state_slopes)
        return self._cache

    def prefill(self, problem, grid):
        """Compute :meth:`interpolated_free_energy` and :meth:`state` at every
        point of ``grid`` inside the piece, vectorised and with one compiled
        Newton call, and keep them for later calls at the same alpha.

        A state is kept where Newton's method from the cubic guess converges
        and passes the checks of :meth:`state`; the other points are left to
        :meth:`state`, which also tries the nearest traced point and the
        fixed-d solve.
        """
        a, F, slope, stable, slopes = self._values(problem)
        if len(a) < 2:
            return
        grid = np.asarray(grid, dtype=float)
        inside = (a[0] * (1 - 1e-9) <= grid) & (grid <= a[-1] * (1 + 1e-9))
        alphas = grid[inside]
        if alphas.size == 0:
            return
        # interpolated_free_energy, for every alpha at once.
        clipped = np.clip(alphas, a[0], a[-1])
        j = np.clip(np.searchsorted(a, clipped), 1, len(a) - 1)
        h = a[j] - a[j - 1]
        flat = h == 0
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (clipped - a[j - 1]) / h
        values = (
            (1 + 2 * t) * (1 - t) ** 2 * F[j - 1]
            + t * (1 - t) ** 2 * h * slope[j - 1]
            + t * t * (3 - 2 * t) * F[j]
            + t * t * (t - 1) * h * slope[j]
        )
        values = np.where(flat, F[j], values)
        both = np.where(flat, stable[j], stable[j - 1] & stable[j])
        for alpha, value, flag in zip(alphas.tolist(), values, both):
            self._energies[alpha] = (float(value), bool(flag))
        if problem._kind is None:
            return
        # state: the cubic guess in log alpha and Newton's method from it.
        # The piece is monotone in alpha, so that a holds its traced alphas
        # in ascending order and u its states in the same order.
        u = self.trace.u[self.start : self.stop + 1]
        if self.trace.alpha[self.start] > self.trace.alpha[self.stop]:
            u = u[::-1]
        log_a = np.log(a)
        log_h = log_a[j] - log_a[j - 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.clip((np.log(clipped) - log_a[j - 1]) / log_h, 0.0, 1.0)
        s = s[:, None]
        spacing = np.max(np.abs(u[j] - u[j - 1]), axis=1)
        linear = (1 - s) * u[j - 1] + s * u[j]
        step = log_h[:, None]
        cubic = (
            (1 + 2 * s) * (1 - s) ** 2 * u[j - 1]
            + s * (1 - s) ** 2 * step * slopes[j - 1]
            + s * s * (3 - 2 * s) * u[j]
            + s * s * (s - 1) * step * slopes[j]
        )
        smooth = np.all(np.isfinite(slopes[j - 1]), axis=1) & np.all(
            np.isfinite(slopes[j]), axis=1
        )
        guesses = np.where(smooth[:, None], cubic, linear)
        guesses[flat] = u[j][flat]
        unspecialized = self.name == UNSPECIALIZED
        states = guesses.copy()  # Newton's method overwrites its starts
        status = np.empty(len(alphas))
        _kernels.symmetric_newton_many(
            problem._kind,
            float(problem.K),
            np.ascontiguousarray(alphas),
            states,
            1e-13 if unspecialized else 1e-12,
            50,
            unspecialized,
            status,
        )

        # The checks of state(): a traced point is returned as it is, and a
        # state must lie on the named side (_on_named_side), near the guess.
        on_traced = (np.abs(a[j] - alphas) <= 1e-14 * alphas) | (
            np.abs(a[j - 1] - alphas) <= 1e-14 * alphas
        )
        d = states[:, 0] - states[:, 1]
        if self.name.startswith("specialized R>S"):
            side = d > _D_ZERO
        elif self.name.startswith("specialized R<S"):
            side = -d > _D_ZERO
        else:
            side = np.ones(len(alphas), dtype=bool)
        near = np.max(np.abs(states - guesses), axis=1) <= np.maximum(
            1e-5, 2.0 * spacing
        )
        R, S, C = guesses.T
        k = problem.K - 1
        valid = (
            (np.abs(guesses) <= 1).all(axis=1)
            & (1.0 - C - (R - S) ** 2 > 0)
            & (1.0 + k * C - (R + k * S) ** 2 > 0)
        )
        keep = (status == 0) & ~on_traced & side & near & valid
        for alpha, x in zip(alphas[keep].tolist(), states[keep]):
            self._states[alpha] = x.copy()

    def interpolated_free_energy(self, problem, alpha):
        """Return (F, both neighbours stable) at ``alpha``, or None outside."""
        known = self._energies.get(alpha)
        if known is not None:
            return known
        a, F, slope, stable, _ = self._values(problem)
        if not a[0] * (1 - 1e-9) <= alpha <= a[-1] * (1 + 1e-9) or len(a) < 2:
            return None
        alpha = min(max(alpha, a[0]), a[-1])  # the bounds are reached to rounding
        j = int(np.clip(np.searchsorted(a, alpha), 1, len(a) - 1))
        h = a[j] - a[j - 1]
        if h == 0:
            return float(F[j]), bool(stable[j])
        t = (alpha - a[j - 1]) / h
        h00 = (1 + 2 * t) * (1 - t) ** 2
        h10 = t * (1 - t) ** 2
        h01 = t * t * (3 - 2 * t)
        h11 = t * t * (t - 1)
        value = (
            h00 * F[j - 1] + h10 * h * slope[j - 1] + h01 * F[j] + h11 * h * slope[j]
        )
        return float(value), bool(stable[j - 1] and stable[j])

    def passes_through(self, u, alpha) -> bool:
        """Return True if the piece contains the state ``u`` at ``alpha``."""
        low, high = self.alpha_range()
        if not low * (1 - 1e-9) <= alpha <= high * (1 + 1e-9):
            return False
        vertices = self.trace.u[self.start : self.stop + 1]
        if np.min(np.max(np.abs(vertices - u), axis=1)) <= 1e-8:
            return True
        guess, spacing = self.guess(alpha)
        return bool(np.max(np.abs(guess - u)) <= max(1e-6, 2.0 * spacing))

    def state(self, problem, alpha):
        """Return the corrected state of this piece at ``alpha``, or None.

        The result depends on ``alpha`` only and is kept for later calls."""
        if alpha in self._states:
            known = self._states[alpha]
            return None if known is None else known.copy()
        u = self._corrected_state(problem, alpha)
        self._states[alpha] = None if u is None else u.copy()
        return u

    def _corrected_state(self, problem, alpha):
        low, high = self.alpha_range()
        if not low * (1 - 1e-9) <= alpha <= high * (1 + 1e-9):
            return None
        a = self.trace.alpha[self.start : self.stop + 1]
        exact = np.nonzero(np.abs(a - alpha) <= 1e-14 * alpha)[0]
        if len(exact):
            # A traced point is already converged; Newton could fail there
            # when the point is a branch point with a singular Hessian.
            return self.trace.u[self.start + exact[0]].copy()
        guess, spacing = self.guess(min(max(alpha, low), high), problem)
        if self.name == UNSPECIALIZED:
            # Newton restricted to R = S: near a branch point the full Hessian
            # is nearly singular along R - S, and a full step could leave the
            # branch.
            solve = problem.unspecialized_state
        else:
            solve = problem.stationary_point
        vertices = self.trace.u[self.start : self.stop + 1]
        nearest = vertices[np.argmin(np.abs(a - alpha))]
        for start in (guess, nearest):
            try:
                u = solve(start, alpha)
            except StationaryPointError:
                continue
            if not _on_named_side(self.name, u):
                # Newton's method reached a neighbouring branch.
                continue
            if np.max(np.abs(u - guess)) <= max(1e-5, 2.0 * spacing):
                return u
        if self.name == UNSPECIALIZED:
            return None
        return self._state_at_fixed_d(problem, alpha)

    def _state_at_fixed_d(self, problem, alpha):
        """Return the state at ``alpha`` by root finding in ``d = R - S``.

        Each trial ``d`` between the two traced points around ``alpha`` is
        solved for ``(m, C, alpha)`` at fixed ``d``, and Brent's method moves
        ``d`` until that alpha is the requested one (alpha is monotone in d
        on a piece). Near a branch point at large K the Hessian in (R, S, C)
        has a condition number near 1e19, so that Newton's method at fixed
        alpha jumps to the mirror branch. At fixed d the system stays
        regular.
        Returns None when the bracket does not hold a solution.
        """
        a = self.trace.alpha[self.start : self.stop + 1]
        u = self.trace.u[self.start : self.stop + 1]
        if a[0] > a[-1]:
            a, u = a[::-1], u[::-1]
        j = int(np.clip(np.searchsorted(a, alpha), 1, len(a) - 1))
        d_low, d_high = u[j - 1, 0] - u[j - 1, 1], u[j, 0] - u[j, 1]
        if d_low == d_high:
            return None
        # At d = 0 (a branch point) alpha is not determined by d.
        if abs(d_low) <= _D_ZERO:
            d_low += 1e-3 * (d_high - d_low)
        if abs(d_high) <= _D_ZERO:
            d_high -= 1e-3 * (d_high - d_low)
        solutions = {}

        def mismatch(d):
            k = j - 1 if abs(d - d_low) <= abs(d - d_high) else j
            state, alpha_d, _ = _fixed_d_state(problem, u[k], a[k], d, error=False)
            solutions[d] = state
            return math.log(alpha_d) - math.log(alpha)

        try:
            f_low, f_high = mismatch(d_low), mismatch(d_high)
            if f_low == 0.0:
                d = d_low
            elif f_high == 0.0:
                d = d_high
            elif f_low * f_high > 0.0:
                return None
            else:
                d = brentq(
                    mismatch,
                    d_low,
                    d_high,
                    xtol=1e-12 * abs(d_high - d_low),
                    rtol=_BRENT_RTOL,
                )
                mismatch(d)
        except (StationaryPointError, ValueError):
            return None
        state = solutions[d]
        return state if _on_named_side(self.name, state) else None


def _on_named_side(name, u) -> bool:
    """Return False when the sign of R - S contradicts the branch name, or
    when R - S is within ``_D_ZERO`` of zero on a specialised branch.

    Next to a branch point at large K, Newton's method at fixed alpha can
    converge to the unspecialised state, whose R - S is rounding of either
    sign (1e-9 at K = 3000); away from the branch point itself no
    specialised state has R - S that small.
    """
    if name.startswith("specialized R>S"):
        return u[0] - u[1] > _D_ZERO
    if name.startswith("specialized R<S"):
        return u[1] - u[0] > _D_ZERO
    return True


def _split_into_pieces(traces, stability="full"):
    pieces = []
    for trace in traces:
        a = trace.alpha
        start = 0
        for i in range(1, len(a) - 1):
            # Changes of alpha at rounding level (a branch point at which
            # a pitchfork branch starts) are no turning points.
            before, after = a[i] - a[i - 1], a[i + 1] - a[i]
            if min(abs(before), abs(after)) <= 1e-12 * a[i]:
                continue
            if before * after < 0:
                pieces.append(_Piece(trace, start, i, stability))
                start = i
        if len(a) - 1 > start:
            pieces.append(_Piece(trace, start, len(a) - 1, stability))
    return pieces


def _grid(lo, hi, critical, count):
    grid = set(np.geomspace(lo, hi, count).tolist())
    for point in critical:
        for factor in (1 - 1e-7, 1.0, 1 + 1e-7):
            a = point.alpha * factor
            if lo <= a <= hi:
                grid.add(a)
    alphas = sorted(grid)
    # Midpoints between close special points resolve structures a hair apart.
    specials = sorted(p.alpha for p in critical if lo <= p.alpha <= hi)
    for a, b in zip(specials, specials[1:]):
        if b > a:
            alphas.append(math.sqrt(a * b))
    return np.array(sorted(set(alphas)))


def _stable_states(problem, pieces, alpha):
    """Return [(free energy, piece index)] of the locally stable states at alpha.

    Where both traced points around ``alpha`` are stable, F comes from cubic
    Hermite interpolation with the exact slope ``dF/dalpha = K eps_g`` (an
    error of order step^4); elsewhere the state is corrected by Newton's
    method and its stability computed.
    """
    states, interpolated_indices = [], []
    for index, piece in enumerate(pieces):
        interpolated = piece.interpolated_free_energy(problem, alpha)
        if interpolated is None:
            continue
        F, both_stable = interpolated
        if both_stable:
            states.append((F, index))
            interpolated_indices.append(index)
            continue
        u = piece.state(problem, alpha)
        if u is not None and _is_stable(problem, u, alpha, piece.stability):
            states.append((problem.free_energy(u, alpha), index))
    return _exact_near_ties(problem, pieces, alpha, states, interpolated_indices)


def _exact_near_ties(problem, pieces, alpha, states, interpolated, rtol=1e-6):
    """Replace interpolated free energies within ``rtol`` of the least one by
    the free energies of the corrected states.

    Interpolation errors (order step^4) can exceed the difference of two
    free energies near their crossing, which then decides the equilibrium.
    A state that cannot be corrected keeps its interpolated value.
    """
    if len(states) < 2:
        return states
    least = min(F for F, _ in states)
    close = [
        (F, index)
        for F, index in states
        if index in interpolated and F - least <= rtol * max(abs(least), 1.0)
    ]
    if len(close) < 2 and all(F - least > rtol * abs(least) for F, _ in states[1:]):
        return states
    exact = []
    for F, index in states:
        if (F, index) in close:
            u = pieces[index].state(problem, alpha)
            if u is not None:
                F = problem.free_energy(u, alpha)
        exact.append((F, index))
    return exact


def _equilibrium(problem, pieces, critical, lo, hi, options, known=()):
    grid = _grid(lo, hi, list(critical) + [k[0] for k in known], options.grid_points)
    for piece in pieces:
        piece.prefill(problem, grid)
    rows = []  # (alpha, piece index, u, F)
    for alpha in grid:
        states = sorted(_stable_states(problem, pieces, alpha))
        if rows and states:
            # Free energies equal to rounding do not move the equilibrium:
            # keep the previous state, so that two states that coincide (as the
            # specialised states do for large K) cannot alternate. A known
            # equal-F point decides such a tie by the side alpha lies on.
            previous = rows[-1][1]
            least = states[0][0]
            tie = 64 * _EPS * abs(least)
            preferred = _side_of_known(known, pieces, alpha, states, least + tie)
            for F, index in states:
                if index == preferred or (
                    preferred is None and index == previous and F - least <= tie
                ):
                    states.insert(0, (F, index))
                    break
        for _, index in states:
            u = pieces[index].state(problem, alpha)
            if u is not None:
                rows.append((float(alpha), index, u, problem.free_energy(u, alpha)))
                break
        else:
            logger.warning("no locally stable state found at alpha = %.6g", alpha)
    rows = _consistent_with_known(rows, pieces, known)
    if not rows:
        raise ContinuationError(
            f"no locally stable state was found anywhere in alpha = [{lo}, {hi}]"
        )

    transitions, first_order_points, boundaries = [], [], []
    for k in range(1, len(rows)):
        a0, i0, _, _ = rows[k - 1]
        a1, i1, u1, _ = rows[k]
        if i0 == i1:
            continue
        if pieces[i0].name == pieces[i1].name:
            # Two pieces of one branch that meet: the same state, no transition.
            u_same = pieces[i0].state(problem, a1)
            if u_same is not None and np.max(np.abs(u_same - u1)) <= 1e-8:
                rows[k] = (a1, i0, u1, rows[k][3])
                continue
        outcome = _classify_switch(problem, pieces, critical, a0, a1, i0, i1, known)
        transition, point = outcome
        transitions.append(transition)
        boundaries.append((transition.alpha, i0, i1, point))
        if point is not None:
            first_order_points.append(point)

    transitions, boundaries = _collapse_round_trips(transitions, boundaries)
    first_order_points = [b[3] for b in boundaries if b[3] is not None]
    curve = _learning_curve(problem, pieces, rows, boundaries)
    intervals = _intervals(rows, boundaries, lo, hi)
    data = {"curve": curve, "intervals": intervals, "pieces": pieces}
    return data, transitions, first_order_points


def _collapse_round_trips(transitions, boundaries, rtol=1e-5):
    """Merge a change X -> Y and its reversal Y -> X a rounding-level distance
    apart: the two states are indistinguishable there, so neither change is
    real. The surrounding transitions absorb the span in their alpha_error."""
    transitions, boundaries = list(transitions), list(boundaries)
    changed = True
    while changed:
        changed = False
        for k in range(len(transitions) - 1):
            first, second = transitions[k], transitions[k + 1]
            if (
                first.before == second.after
                and first.after == second.before
                and abs(second.alpha - first.alpha) <= rtol * first.alpha
            ):
                span = abs(second.alpha - first.alpha)
                logger.warning(
                    "dropping the transitions %s -> %s -> %s at alpha = %.10g and "
                    "%.10g: the states do not differ beyond rounding there",
                    first.before,
                    first.after,
                    second.after,
                    first.alpha,
                    second.alpha,
                )
                del transitions[k : k + 2]
                del boundaries[k : k + 2]
                for j in (k - 1, k):
                    if 0 <= j < len(transitions):
                        t = transitions[j]
                        transitions[j] = replace(
                            t, alpha_error=max(t.alpha_error, span)
                        )
                changed = True
                break
    return transitions, boundaries


def _classify_switch(problem, pieces, critical, a0, a1, i0, i1, known=()):
    before, after = pieces[i0], pieces[i1]
    located = _known_first_order(known, before.name, after.name, a0, a1)
    if located is not None:
        return _first_order_transition(problem, critical, before, after, located)
    for point in critical:
        if point.kind != "branch_point" or not a0 <= point.alpha <= a1:
            continue
        u_bp = next(iter(point.states.values()))
        if before.passes_through(u_bp, point.alpha) and after.passes_through(
            u_bp, point.alpha
        ):
            return (
                Transition(
                    kind="continuous",
                    alpha=point.alpha,
                    alpha_error=point.alpha_error,
                    before=before.name,
                    after=after.name,
                    jump=0.0,
                ),
                None,
            )

    # First order: start from the linear interpolation of the F difference.
    dF = []
    for a in (a0, a1):
        ub, ua = before.state(problem, a), after.state(problem, a)
        if ub is None or ua is None:
            dF.append(None)
        else:
            dF.append(problem.free_energy(ua, a) - problem.free_energy(ub, a))
    if dF[0] is not None and dF[1] is not None and dF[0] != dF[1]:
        t = dF[0] / (dF[0] - dF[1])
        alpha0 = a0 + min(max(t, 0.0), 1.0) * (a1 - a0)
    else:
        # Start inside the range where both pieces exist.
        low = max(a0, before.alpha_range()[0], after.alpha_range()[0])
        high = min(a1, before.alpha_range()[1], after.alpha_range()[1])
        alpha0 = math.sqrt(low * high) if 0 < low <= high else math.sqrt(a0 * a1)
    ub, ua = before.state(problem, alpha0), after.state(problem, alpha0)
    located = None
    if ub is not None and ua is not None:
        try:
            located = locate_first_order(problem, ub, ua, alpha0)
        except LocationError as error:
            logger.warning(
                "equal-F point in [%.6g, %.6g] not located: %s", a0, a1, error
            )
    if located is not None and not _both_stable(problem, located, before.stability):
        logger.warning(
            "the equal-F point at alpha = %.10g is not between the spinodals "
            "(a state is unstable there); trying bisection",
            located.alpha,
        )
        located = None
    if located is None or not a0 * (1 - 1e-6) <= located.alpha <= a1 * (1 + 1e-6):
        located = _equal_free_energy_by_bisection(problem, before, after, a0, a1)
    if located is None:
        # NOTE: where the free energies of the two states differ by less
        # than rounding across the whole bracket, both location methods can
        # fail. The transition is then reported as the middle of the bracket
        # that the spinodals and the grid allow, with half its width as
        # alpha_error. ReLU at large K, the case known to need this, takes
        # its equal-F point from the regular equations instead.
        low, high = a0, a1
        edge_after = _stability_edge(
            critical, after.name, a1, below=True, kinds=("fold",)
        )
        if not math.isfinite(edge_after):
            edge_after = _stability_edge(critical, after.name, a1, below=True)
        edge_before = _stability_edge(critical, before.name, edge_after, below=False)
        if math.isfinite(edge_after) and edge_after > low:
            low = edge_after
        if math.isfinite(edge_before) and edge_before < high:
            high = edge_before
        if not low < high:
            if math.isfinite(edge_after) and edge_after < edge_before:
                # The grid interval lies past a spinodal because marginal
                # eigenvalues count as zero; the spinodals still bracket it.
                low, high = edge_after, edge_before
            else:
                low, high = a0, a1
        logger.warning(
            "the equilibrium changes from %s to %s between alpha = %.10g and %.10g; "
            "the equal-free-energy point could not be located more precisely",
            before.name,
            after.name,
            low,
            high,
        )
        alpha_t, alpha_error = 0.5 * (low + high), 0.5 * (high - low)
        states = before.state(problem, a0), after.state(problem, a1)
        transition = _jump(
            problem, critical, before, after, alpha_t, alpha_error, states
        )
        return transition, None
    return _first_order_transition(problem, critical, before, after, located)


def _jump(problem, critical, before, after, alpha_t, alpha_error, states):
    """Return the first-order Transition at ``alpha_t`` between the states
    ``(before, after)``, with its spinodals."""
    state_b, state_a = states
    return Transition(
        kind="first_order",
        alpha=alpha_t,
        alpha_error=alpha_error,
        before=before.name,
        after=after.name,
        jump=problem.generalization_error(state_a)
        - problem.generalization_error(state_b),
        spinodals=(
            _stability_edge(critical, after.name, alpha_t, below=True),
            _stability_edge(critical, before.name, alpha_t, below=False),
        ),
    )


def _first_order_transition(problem, critical, before, after, located):
    """Return the transition and critical point of a located equal-F point
    whose states are those of ``before`` and ``after``, in this order."""
    alpha_t, alpha_error = located.alpha, located.alpha_error
    state_b, state_a = located.states
    point = _Point(
        "first_order",
        alpha_t,
        alpha_error,
        located.residual,
        (before.name, after.name),
        {before.name: state_b, after.name: state_a}
        if before.name != after.name
        else {before.name: state_b, after.name + " (after)": state_a},
        located,
    )
    transition = _jump(
        problem, critical, before, after, alpha_t, alpha_error, located.states
    )
    return transition, point


def _consistent_with_known(rows, pieces, known, window=1e-5):
    """Drop the learning-curve rows next to a known equal-F point that
    contradict it.

    Within ``window`` (relative) of the point, a row must be on the branch
    the point puts in equilibrium on its side (for large-K ReLU, the only
    source of known points, the R < S states lie above the R > S ones
    there), and a row on the branch after
    the point must be at least half as far from R = S as the located state:
    Newton's method there can reach the unspecialised state from a guess on
    the specialised branch. For ReLU at large K such rows appear where the
    branches lie closer together than the corrected states resolve.
    """
    for located, (before, after) in known:
        distance = abs(located.states[1][0] - located.states[1][1])
        consistent = []
        for row in rows:
            alpha, index, u, _ = row
            name = pieces[index].name
            if abs(alpha - located.alpha) <= window * located.alpha:
                if name not in (before, after):
                    continue
                if alpha > located.alpha and name == before:
                    continue
                if alpha < located.alpha and name == after:
                    continue
                if name == after and abs(u[0] - u[1]) < 0.5 * distance:
                    continue
            consistent.append(row)
        if len(consistent) < len(rows):
            logger.debug(
                "dropped %d learning-curve rows next to the equal-F point at %.15g",
                len(rows) - len(consistent),
                located.alpha,
            )
        rows = consistent
    return rows


def _side_of_known(known, pieces, alpha, states, limit, window=1e-5):
    """Return the index of the piece that a known equal-F point puts in
    equilibrium at ``alpha``, or None.

    The point decides when both of its states are among ``states`` with a
    free energy up to ``limit``. Within ``window`` (relative) of the point it
    also decides when the two free energies differ by more, unless a third
    state lies below both by more than 1e-9 relative. There, for ReLU at
    large K, the free energies differ by less than the error of the states
    that the grid corrects.
    """
    # The piece of least free energy represents its branch.
    tied, stable, least = {}, {}, {}
    for F, index in sorted(states, reverse=True):
        name = pieces[index].name
        stable[name], least[name] = index, F
        if F <= limit:
            tied[name] = index
    lowest = min(least.values(), default=math.inf)
    for located, (before, after) in known:
        near = abs(alpha - located.alpha) <= window * located.alpha
        # A third state below both by more than the error of the corrected
        # states keeps the equilibrium.
        pair = [least[n] for n in (before, after) if n in least]
        if near and (not pair or min(pair) > lowest + 1e-9 * abs(lowest)):
            near = False
        candidates = stable if near else tied
        if before in candidates and after in candidates:
            return candidates[after] if alpha > located.alpha else candidates[before]
        if near and alpha > located.alpha and after in candidates:
            return candidates[after]
        if near and alpha <= located.alpha and before in candidates:
            return candidates[before]
    return None


def _known_first_order(known, before, after, a0, a1, rtol=1e-5):
    """Return a known equal-F point between the two branches near [a0, a1],
    with its states in the order (before, after), or None.

    The window is widened by ``rtol``: where the free energies differ by
    less than rounding, the grid finds the change of the equilibrium a little
    away from the equal-F point.
    """
    for located, names in known:
        if set(names) != {before, after} or before == after:
            continue
        if not a0 * (1 - rtol) <= located.alpha <= a1 * (1 + rtol):
            continue
        if names[0] == before:
            return located
        return replace(located, states=located.states[::-1])
    return None


def _both_stable(problem, located, stability) -> bool:
    """Return True if both states of an equal-F point are locally stable."""
    return all(_is_stable(problem, u, located.alpha, stability) for u in located.states)


def _equal_free_energy_by_bisection(problem, before, after, a0, a1):
    """Locate F_before = F_after by Brent's method on the difference.

    The fallback when the augmented Newton system fails, which happens when
    the two states are so close that the system is ill-conditioned. Returns
    None when the difference does not change sign inside both pieces.
    """
    low = max(a0, before.alpha_range()[0], after.alpha_range()[0])
    high = min(a1, before.alpha_range()[1], after.alpha_range()[1])
    if not 0 < low < high:
        return None

    def difference(alpha):
        ub, ua = before.state(problem, alpha), after.state(problem, alpha)
        if ub is None or ua is None:
            raise StationaryPointError(f"a state is missing at alpha = {alpha!r}")
        return problem.free_energy(ua, alpha) - problem.free_energy(ub, alpha)

    try:
        f_low, f_high = difference(low), difference(high)
        if not f_low * f_high < 0:
            return None
        alpha_t = brentq(difference, low, high, xtol=1e-15 * high, rtol=_BRENT_RTOL)
    except (StationaryPointError, ValueError):
        return None
    ub, ua = before.state(problem, alpha_t), after.state(problem, alpha_t)
    if ub is None or ua is None:
        return None
    # The difference of the free energies is known to a few ulp of F; its
    # slope in alpha is K times the difference of the errors.
    slope = problem.K * abs(
        problem.generalization_error(ua) - problem.generalization_error(ub)
    )
    F = abs(problem.free_energy(ub, alpha_t))
    alpha_error = max(
        1e-15 * alpha_t, 4 * np.finfo(float).eps * max(F, 1.0) / max(slope, 1e-300)
    )
    return LocatedPoint(
        "first_order",
        float(alpha_t),
        (ub, ua),
        float(alpha_error),
        abs(difference(alpha_t)),
        0,
        np.concatenate([ub, ua, [alpha_t]]),
    )


def _stability_edge(critical, name, alpha, below, kinds=("fold", "branch_point")):
    """Return the nearest fold or branch point of branch ``name`` on one side."""
    candidates = [
        p.alpha
        for p in critical
        if p.kind in kinds
        and name in p.branches
        and ((p.alpha <= alpha) if below else (p.alpha >= alpha))
    ]
    if not candidates:
        return math.nan
    return max(candidates) if below else min(candidates)


def _learning_curve(problem, pieces, rows, boundaries):
    entries = [(a, pieces[i].name, u, F) for a, i, u, F in rows]
    for alpha, i0, i1, point in boundaries:
        for index in (i0, i1):
            # The located states of a first-order point, where there is one:
            # next to a branch point the pieces lie too close together for
            # a Newton correction from their interpolation.
            name = pieces[index].name
            if index == i1 and name == pieces[i0].name:
                name += " (after)"
            u = None if point is None else point.states.get(name)
            if u is None:
                u = pieces[index].state(problem, alpha)
            else:
                u = np.array(u, dtype=float)
                if pieces[index].name == UNSPECIALIZED:
                    # Project onto R = S: the located state is off it by rounding.
                    m = u[0] + (problem.K - 1) * u[1]
                    u[0] = u[1] = m / problem.K
            if u is not None:
                F = problem.free_energy(u, alpha)
                entries.append((alpha, pieces[index].name, u, F))
    # Sort by alpha; at a jump the state before comes first.
    order = {id(e): k for k, e in enumerate(entries)}
    side_rank = {}
    for alpha, i0, i1, _ in boundaries:
        side_rank[(alpha, pieces[i0].name)] = 0
        side_rank[(alpha, pieces[i1].name)] = 1
    entries.sort(key=lambda e: (e[0], side_rank.get((e[0], e[1]), 0), order[id(e)]))
    u = np.array([e[2] for e in entries])
    return LearningCurve(
        alpha=np.array([e[0] for e in entries]),
        R=u[:, 0].copy(),
        S=u[:, 1].copy(),
        C=u[:, 2].copy(),
        generalization_error=np.array([problem.generalization_error(x) for x in u]),
        free_energy=np.array([e[3] for e in entries]),
        branch=tuple(e[1] for e in entries),
    )


def _intervals(rows, boundaries, lo, hi):
    """Return [(alpha_from, alpha_to, piece index)] of the equilibrium."""
    intervals = []
    start, current = lo, rows[0][1]
    for alpha, i0, i1, _ in boundaries:
        intervals.append((start, alpha, i0))
        start, current = alpha, i1
    intervals.append((start, hi, current))
    return intervals


def _to_state_branch(
    problem, trace, curve_data, lo, hi, stability, critical=()
) -> StateBranch:
    a = trace.alpha
    keep = (a >= lo * (1 - 1e-12)) & (a <= hi * (1 + 1e-12))
    indices = np.nonzero(keep)[0]
    equilibrium = np.zeros(len(a), dtype=bool)
    for index in indices:
        if trace.unstable_count(stability)[index] != 0:
            continue
        for start, stop, piece_index in curve_data["intervals"]:
            piece = curve_data["pieces"][piece_index]
            inside = start * (1 - 1e-12) <= a[index] <= stop * (1 + 1e-12)
            if piece.trace is trace and inside and piece.start <= index <= piece.stop:
                equilibrium[index] = True
    rows = [
        (float(a[i]), trace.u[i], int(trace.n_unstable[i]),
         int(trace.n_unstable_full[i]), trace.stability_note[i], bool(equilibrium[i]))
        for i in indices
    ]
    rows = _with_extra_points(
        problem, trace, rows, keep, lo, hi, critical, curve_data["curve"]
    )
    alpha = np.array([row[0] for row in rows])
    u = np.array([row[1] for row in rows]).reshape(-1, 3)
    return StateBranch(
        name=trace.name,
        alpha=alpha,
        R=u[:, 0].copy(),
        S=u[:, 1].copy(),
        C=u[:, 2].copy(),
        generalization_error=np.array([problem.generalization_error(x) for x in u]),
        free_energy=np.array([problem.free_energy(x, al) for x, al in zip(u, alpha)]),
        n_unstable=np.array([row[2] for row in rows], dtype=np.int64),
        equilibrium=np.array([row[5] for row in rows], dtype=bool),
        n_unstable_full=np.array([row[3] for row in rows], dtype=np.int64),
        stability_note=tuple(row[4] for row in rows),
        stability=stability,
    )


def _with_extra_points(problem, trace, rows, keep, lo, hi, critical, curve):
    """Add the states at the ends of the alpha range and at the folds of the
    branch to its rows, so that a drawn branch reaches both.

    A row is ``(alpha, u, n_unstable, n_unstable_full, note, equilibrium)``
    in the order of the trace. An end state is solved by Newton's method
    from the chord of the trace across ``lo`` or ``hi``. It is in
    equilibrium when the learning curve has this branch's state there. A
    fold state is marginal and not an equilibrium.
    """
    a = trace.alpha
    solve = (
        problem.unspecialized_state
        if trace.name == UNSPECIALIZED
        else problem.stationary_point
    )
    positions = np.nonzero(keep)[0]
    extra = []  # (position in the trace, alpha, u, "end" or "fold")
    for bound in (lo, hi):
        if np.any(np.abs(a[keep] - bound) <= 1e-12 * bound):
            continue
        for i in range(len(a) - 1):
            if keep[i] == keep[i + 1] or not min(a[i], a[i + 1]) < bound < max(
                a[i], a[i + 1]
            ):
                continue
            t = (bound - a[i]) / (a[i + 1] - a[i])
            try:
                u = solve((1 - t) * trace.u[i] + t * trace.u[i + 1], bound)
            except StationaryPointError:
                continue
            extra.append((i + t, bound, u, "end"))
    for point in critical:
        if point.kind != "fold" or trace.name not in point.branches:
            continue
        if not lo <= point.alpha <= hi or len(a) < 2:
            continue
        u = np.asarray(point.states[trace.name], dtype=float)
        distance = np.max(np.abs(trace.u - u), axis=1)
        i = int(np.argmin(distance))
        if distance[i] <= 1e-12:
            continue
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(a)]
        j = min(neighbours, key=lambda n: distance[n])
        extra.append((0.5 * (i + j), point.alpha, u, "fold"))
    if not extra:
        return rows
    order = [(float(p), row) for p, row in zip(positions, rows)]
    for position, alpha, u, kind in extra:
        n_ansatz = problem.n_unstable(u, alpha)
        count, note = _full_label(problem, u, alpha, n_ansatz)
        equilibrium = kind == "end" and _in_curve(curve, trace.name, u, alpha)
        order.append((position, (float(alpha), u, n_ansatz, count, note, equilibrium)))
    order.sort(key=lambda item: item[0])
    return [row for _, row in order]
