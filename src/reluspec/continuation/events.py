"""Detection and location of special points between two accepted points.

Three families of test functions are watched on every step:

* the parameter component of the unit tangent, :math:`\\tau_q`, whose sign
  change marks a turning point in p;
* the sign of :math:`\\det B`, :math:`B = [F_u, F_q; \\tau^T]`. If
  :math:`F_u` is invertible and :math:`w = F_u^{-1} F_q`, then
  :math:`\\det B = \\det F_u \\, \\tau_q \\, (1 + |w|^2)`, so
  :math:`\\det B` keeps its sign through a fold (both other factors change
  sign) and changes sign at a simple branch point;
* the number of eigenvalues of :math:`F_u` with negative real part (and of
  the stability matrix, if there is one). When m eigenvalues cross zero
  together, :math:`\\det B` changes sign only for odd m, and the count is what
  reveals an even multiplicity.

Each sign change is located by root finding on the branch, and roots that
coincide are merged into one special point that is then classified.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._newton import _newton
from ._point import PointData
from .branch import SpecialPoint
from .errors import ContinuationError, ConvergenceWarning

logger = logging.getLogger(__name__)

_SQRT_EPS = math.sqrt(np.finfo(float).eps)
_LOCATOR_ERRORS = (ContinuationError, FloatingPointError, np.linalg.LinAlgError)
# Failed trials are retried this many times, each halfway to the nearest
# point known on the branch.
_TRIAL_RETRIES = 6
# The locator stops after this many trials that fail to lower the best test
# value by 10 %, once that value meets the scaled tolerance.
_STALLED_MAX = 3


class Segment:
    """The branch between accepted points a and b.

    Points in between are parametrised by :math:`s = \\tau \\cdot (z - z_a)` in
    ``[0, length]``, with :math:`\\tau` the predictor direction of the step
    that reached b, so that every trial point is a corrector solve. Near a
    branch point the hyperplane also cuts the crossing branch close by. Each
    solve therefore starts from a cubic Hermite interpolation between the
    nearest points already known on this branch. A result whose tangent turned
    by more than ``angle_max`` from the nearest known point lies on the
    crossing branch and is rejected.
    """

    def __init__(self, system, a, b, predictor, index, options):
        self.system = system
        self.a = a
        self.b = b
        self.predictor = predictor
        self.index = index
        self.length = float(predictor @ (b.z - a.z))
        self.options = options
        self.debug = options.verbosity >= 3
        self.known = [(0.0, a), (self.length, b)]
        self._cos_angle_max = math.cos(options.angle_max)

    def _hermite_guess(self, s: float) -> np.ndarray:
        """Interpolate z(s) by a cubic Hermite polynomial between known points.

        The two known points around s and their tangents, scaled to
        dz/ds = tau / (predictor . tau), give an error of order h^4 for a
        spacing h, far below the distance to a crossing branch near a branch
        point, where a linear predictor would land on that branch.
        """
        left_s, left = max(
            (item for item in self.known if item[0] < s), key=lambda item: item[0]
        )
        right_s, right = min(
            (item for item in self.known if item[0] > s), key=lambda item: item[0]
        )
        h = right_s - left_s
        t = (s - left_s) / h
        left_slope = left.tangent / (self.predictor @ left.tangent)
        right_slope = right.tangent / (self.predictor @ right.tangent)
        return (
            (2 * t**3 - 3 * t**2 + 1) * left.z
            + (t**3 - 2 * t**2 + t) * h * left_slope
            + (-2 * t**3 + 3 * t**2) * right.z
            + (t**3 - t**2) * h * right_slope
        )

    def nearest_known(self, s: float) -> float:
        """Return the pseudo-arclength of the known point nearest to s."""
        return min(self.known, key=lambda item: abs(item[0] - s))[0]

    def point(self, s: float) -> PointData:
        """Return the corrected point at pseudo-arclength s.

        Raises ContinuationError if the corrector fails or converges to
        another branch.
        """
        if s <= 0.0:
            return self.a
        if s >= self.length:
            return self.b
        s_base, base = min(self.known, key=lambda item: abs(item[0] - s))
        if s_base == s:
            return base
        n = self.system.n
        a_z = self.a.z
        predictor = self.predictor
        guess = self._hermite_guess(s)
        correct = getattr(self.system.problem.stepper, "correct", None)
        if correct is not None:
            z = np.array(guess, dtype=float)
            if not correct(
                np.ascontiguousarray(a_z, dtype=float),
                np.ascontiguousarray(predictor, dtype=float),
                float(s),
                z,
                self.options.newton_tol,
                self.options.newton_max_iter,
            ):
                raise ContinuationError(
                    f"the corrector at s={s:.6g} did not converge", point=z
                )
            return self._accept(s, z, base)

        def residual(z):
            value = np.empty(n + 1)
            value[:n] = self.system.residual(z)
            value[n] = predictor @ (z - a_z) - s
            return value

        def jacobian(z):
            return np.vstack([self.system.jacobian_z(z), predictor])

        z, _ = _newton(
            residual,
            jacobian,
            guess,
            self.options.newton_tol,
            self.options.newton_max_iter,
            debug=self.debug,
            polish=True,
        )
        return self._accept(s, z, base)

    def _accept(self, s, z, base) -> PointData:
        point = PointData(self.system, z, self.predictor)
        if point.tangent @ base.tangent < self._cos_angle_max:
            raise ContinuationError(
                f"the corrector at s={s:.6g} converged to a point whose tangent "
                "turned by more than angle_max, on a crossing branch",
                point=z,
            )
        self.known.append((s, point))
        return point


@dataclass
class _Root:
    """A located zero of one test function."""

    kind: str  # "fold", "bordered", "jacobian" or "stability"
    s: float
    point: PointData
    value: float
    converged: bool
    error_s: float
    slope: float
    indices: tuple = field(default_factory=tuple)


def _changes_sign(f_a: float, f_b: float) -> bool:
    """Return True if a test changes sign on (a, b].

    A zero at a belongs to the previous step.
    """
    if f_a == 0.0:
        return False
    return f_b == 0.0 or (f_a > 0.0) != (f_b > 0.0)


def find_root(segment: Segment, test, kind: str, scale: float) -> _Root:
    """Locate a zero of ``test`` on the segment by the Illinois method.

    The Illinois variant of regula falsi halves the retained end's value when
    the same end is kept twice, which gives superlinear convergence on smooth
    tests while keeping the bracket. A trial that fails to correct is moved
    halfway towards the nearest point known on the branch and retried. The
    search aims at ``|test| <= locate_tol`` and stops early once the best
    value meets ``locate_tol * scale`` but has stopped improving.
    That happens when rounding noise in the test takes over, or when trials
    near a branch point keep landing on the crossing branch. The root counts
    as converged if ``|test| <= locate_tol * scale``.
    """
    options = segment.options
    length = segment.length
    f_a = test(segment.a)
    f_b = test(segment.b)
    # The mean slope over the segment is immune to rounding noise near the
    # root, so the error estimate in s uses it.
    slope = abs(f_b - f_a) / length if length > 0 else math.inf
    if f_b == 0.0:
        return _Root(kind, length, segment.b, 0.0, True, 0.0, slope)
    if f_a == 0.0:
        return _Root(kind, 0.0, segment.a, 0.0, True, 0.0, slope)
    lo, f_lo, hi, f_hi = 0.0, f_a, length, f_b
    weight_lo, weight_hi = f_lo, f_hi
    if abs(f_a) <= abs(f_b):
        best = (0.0, segment.a, f_a)
    else:
        best = (length, segment.b, f_b)
    last_moved = 0
    stalled = 0
    for iteration in range(options.locate_max_iter):
        s = (lo * weight_hi - hi * weight_lo) / (weight_hi - weight_lo)
        if not lo < s < hi:
            s = 0.5 * (lo + hi)
        point = None
        for _ in range(_TRIAL_RETRIES):
            try:
                point = segment.point(s)
                break
            except _LOCATOR_ERRORS as err:
                # A trial closer to a point known on the branch starts from a
                # better guess; any s inside (lo, hi) keeps the bracket valid.
                logger.debug("locator trial at s=%.12g failed: %s", s, err)
                s = 0.5 * (s + segment.nearest_known(s))
        if point is None:
            break
        value = float(test(point))
        if not math.isfinite(value):
            break
        if segment.debug:
            logger.debug(
                "locate %s: iteration %d, s=%.12g, test=%.3e", kind, iteration, s, value
            )
        stalled = 0 if abs(value) < 0.9 * abs(best[2]) else stalled + 1
        if abs(value) < abs(best[2]):
            best = (s, point, value)
        if abs(value) <= options.locate_tol:
            break
        if stalled >= _STALLED_MAX and abs(best[2]) <= options.locate_tol * scale:
            break
        if (value > 0.0) == (f_lo > 0.0):
            lo, f_lo, weight_lo = s, value, value
            if last_moved == -1:
                weight_hi *= 0.5
            last_moved = -1
        else:
            hi, f_hi, weight_hi = s, value, value
            if last_moved == 1:
                weight_lo *= 0.5
            last_moved = 1
        if hi - lo <= 4.0 * np.finfo(float).eps * max(length, abs(hi)):
            break
    s, point, value = best
    converged = abs(value) <= options.locate_tol * scale
    error_s = min(abs(value) / slope, length) if slope > 0 else length
    return _Root(kind, s, point, value, converged, error_s, slope)


def _locate_eigenvalue_crossings(
    segment, eigenvalues_of, count_a, count_b, kind, scale
):
    """Locate the zeros of the eigenvalues whose crossing changed a count.

    With real parts sorted ascending, r_k changes sign for every k between the
    two counts. Eigenvalues that vanish together with the located one (within
    what the locator's accuracy allows) are grouped with it instead of being
    located again, which is how a multiple crossing is counted once.
    """
    if count_a == count_b:
        return []
    remaining = list(range(min(count_a, count_b), max(count_a, count_b)))
    roots = []
    while remaining:
        k = remaining[len(remaining) // 2]
        root = find_root(
            segment,
            lambda point, k=k: eigenvalues_of(point)[k].real,
            kind,
            scale,
        )
        values = eigenvalues_of(root.point)
        window = root.slope * (20.0 * root.error_s + _SQRT_EPS * segment.length)
        window = max(window, segment.options.locate_tol * scale)
        group = [j for j in remaining if abs(values[j].real) <= window]
        if k not in group:
            group.append(k)
        root.indices = tuple(sorted(group))
        remaining = [j for j in remaining if j not in group]
        roots.append(root)
    return roots


def _segment_scales(segment: Segment) -> dict:
    """Return the scale of each test on a segment, for the relative tolerance.

    The fold test is a component of a unit vector. The other tests are
    singular values or eigenvalues of F_z or of the stability matrix, so their
    scale is the largest one at the two ends, and at least 1.
    """
    a, b = segment.a, segment.b
    jacobian_scale = max(1.0, a.jac_z_norm, b.jac_z_norm)
    stability_scale = max(
        1.0,
        float(np.max(np.abs(a.stability_eigenvalues))),
        float(np.max(np.abs(b.stability_eigenvalues))),
    )
    return {
        "fold": 1.0,
        "bordered": jacobian_scale,
        "jacobian": jacobian_scale,
        "stability": stability_scale,
    }


def _merge_distance(first: _Root, second: _Root, length: float) -> float:
    return 10.0 * (first.error_s + second.error_s) + _SQRT_EPS * length


def _same_event(root: _Root, previous: _Root, length: float) -> bool:
    """Return True if two roots, ``previous`` at the smaller s, are one event.

    Besides roots closer than their errors: the side branch of a pitchfork
    turns in p at the branch point, so that its fold test and bordered test
    vanish together. Next to the branch point the bordered matrix is nearly
    singular and the tangent, whose parameter component is the fold test,
    carries amplified rounding: the fold root can land 1e-4 of the step
    away while p differs by 1e-11. A fold that close to a branch point is
    not distinguishable from the turn of the side branch.
    """
    if root.s - previous.s <= _merge_distance(root, previous, length):
        return True
    if {root.kind, previous.kind} != {"fold", "bordered"}:
        return False
    p = abs(previous.point.p)
    return (
        root.s - previous.s <= 1e-3 * length
        and abs(root.point.p - previous.point.p) <= 1e-9 * max(p, 1.0)
    )


def _cluster(roots, length):
    clusters = []
    for root in sorted(roots, key=lambda r: r.s):
        if clusters and _same_event(root, clusters[-1][-1], length):
            clusters[-1].append(root)
        else:
            clusters.append([root])
    return clusters


def _classify(cluster, options):
    """Return (kind, representative root, multiplicity) for merged roots."""
    by_kind = {}
    for root in cluster:
        by_kind.setdefault(root.kind, []).append(root)
    jacobian_roots = by_kind.get("jacobian", [])
    n_crossing = sum(len(root.indices) for root in jacobian_roots)
    if "bordered" in by_kind:
        # The test with the smallest estimated error in s locates the point.
        root = min(by_kind["bordered"] + jacobian_roots, key=lambda r: r.error_s)
        return "branch_point", root, max(1, n_crossing)
    if n_crossing >= 2:
        root = jacobian_roots[0]
        crossing = root.point.jac_eigenvalues[list(root.indices)]
        scale = max(1.0, float(np.max(np.abs(root.point.jac_eigenvalues))))
        imaginary = float(np.max(np.abs(np.imag(crossing))))
        if imaginary <= 1e3 * options.locate_tol + _SQRT_EPS * scale:
            return "branch_point", root, n_crossing
        return "stability_change", root, n_crossing
    if "fold" in by_kind:
        return "fold", by_kind["fold"][0], 1
    root = (jacobian_roots or by_kind["stability"])[0]
    return "stability_change", root, len(root.indices)


def _null_vectors(point: PointData, multiplicity: int, n: int) -> np.ndarray:
    _, _, vh = np.linalg.svd(point.jac_z[:, :n])
    return vh[n - multiplicity :].T.copy()


def _inside_bracket(segment: Segment, point: PointData) -> bool:
    """Return True if the point lies between a and b, no farther from either
    than a is from b."""
    chord = np.linalg.norm(segment.b.z - segment.a.z)
    limit = chord * (1.0 + 1e-6) + 1e-12
    return bool(
        np.linalg.norm(point.z - segment.a.z) <= limit
        and np.linalg.norm(point.z - segment.b.z) <= limit
    )


def _same_spectrum(point: PointData) -> bool:
    jac = point.jac_eigenvalues
    stab = point.stability_eigenvalues
    if np.iscomplexobj(jac):
        return False
    scale = max(1.0, float(np.max(np.abs(jac))))
    return bool(np.allclose(jac, stab, rtol=0.0, atol=1e-8 * scale))


def detect_events(segment: Segment) -> list[SpecialPoint]:
    """Return the special points between the two ends of a segment."""
    options = segment.options
    system = segment.system
    a, b = segment.a, segment.b
    roots = []
    scales = _segment_scales(segment)

    # A turning point in p: the parameter component of the tangent changes sign.
    if _changes_sign(a.tangent[-1], b.tangent[-1]):
        roots.append(
            find_root(segment, lambda point: point.tangent[-1], "fold", scales["fold"])
        )

    # A simple branch point: the bordered determinant changes sign.
    if _changes_sign(a.det_sign, b.det_sign):
        roots.append(
            find_root(
                segment,
                lambda point: point.bordered_test,
                "bordered",
                scales["bordered"],
            )
        )

    # Eigenvalues of F_u crossing zero, one by one or in groups.
    roots += _locate_eigenvalue_crossings(
        segment,
        lambda point: point.jac_eigenvalues,
        a.n_negative_jac,
        b.n_negative_jac,
        "jacobian",
        scales["jacobian"],
    )

    # A separate stability matrix, unless it has the spectrum of F_u.
    if system.has_stability_matrix and not (_same_spectrum(a) and _same_spectrum(b)):
        roots += _locate_eigenvalue_crossings(
            segment,
            lambda point: point.stability_eigenvalues,
            a.n_unstable,
            b.n_unstable,
            "stability",
            scales["stability"],
        )
    if not roots:
        return []

    clusters = _cluster(roots, segment.length)
    counts = [a.n_unstable]
    for left, right in zip(clusters[:-1], clusters[1:]):
        middle = 0.5 * (left[-1].s + right[0].s)
        try:
            counts.append(segment.point(middle).n_unstable)
        except _LOCATOR_ERRORS:
            counts.append(right[0].point.n_unstable)
    counts.append(b.n_unstable)

    enabled = {
        "fold": options.detect_folds,
        "branch_point": options.detect_branch_points,
        "stability_change": options.detect_stability_changes,
    }
    found = []
    for position, cluster in enumerate(clusters):
        kind, root, multiplicity = _classify(cluster, options)
        before, after = counts[position], counts[position + 1]
        if not enabled[kind]:
            if options.detect_stability_changes and before != after:
                kind = "stability_change"
            else:
                continue
        point = root.point
        where = (
            f"{kind} near p={point.p:.10g} between points {segment.index} and "
            f"{segment.index + 1}"
        )
        if not _inside_bracket(segment, point):
            message = (
                f"the located {where} lies outside its bracket, so the locator "
                "has left the branch; the point is not reported. Lower ds_max to "
                "separate the events."
            )
            logger.warning(message)
            warnings.warn(message, ConvergenceWarning, stacklevel=4)
            continue
        if not root.converged:
            message = (
                f"the {where} was located only to |test|={abs(root.value):.3e} > "
                f"{options.locate_tol * scales[root.kind]:.1e} (locate_tol "
                "times the test's scale), because rounding noise in the test took "
                "over or locate_max_iter was reached. Raise locate_tol or "
                "locate_max_iter, or lower newton_tol."
            )
            logger.warning(message)
            warnings.warn(message, ConvergenceWarning, stacklevel=4)
        null_vectors = None
        if kind in ("fold", "branch_point"):
            null_vectors = _null_vectors(point, multiplicity, system.n)
        special = SpecialPoint(
            kind=kind,
            u=point.u.copy(),
            p=point.p,
            index=segment.index,
            multiplicity=multiplicity,
            test_value=abs(root.value),
            tolerance=options.locate_tol * scales[root.kind],
            converged=root.converged,
            null_vectors=null_vectors,
            n_unstable_before=before,
            n_unstable_after=after,
            tangent=point.tangent.copy(),
            s=root.s,
        )
        if options.verbosity >= 2:
            logger.info("found %r", special)
        found.append(special)
    return found
