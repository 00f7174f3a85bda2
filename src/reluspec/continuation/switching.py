"""Branch switching at a simple branch point."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from ._point import PointData
from .branch import Branch, SpecialPoint
from .errors import ContinuationError
from .options import PALC, ContinuationOptions
from .problem import ContinuationProblem, _System
from .solver import _internal_bounds, trace

__all__ = ["switch_branch"]

logger = logging.getLogger(__name__)

# Step for the central differences of F_z along a direction (second derivatives).
_SECOND_DERIVATIVE_STEP = 1e-5

# Step sizes tried in turn, as fractions of options.ds, until the first point
# of the new branch lies off the parent branch.
_STEP_FRACTIONS = (1.0, 0.25, 0.0625)


def _crossing_direction(system: _System, z: np.ndarray, parent_tangent: np.ndarray):
    r"""Return the unit tangent of the crossing branch and its angle to the parent.

    At a simple branch point the null space of :math:`F_z = [F_u, F_q]` is
    spanned by the parent tangent :math:`\tau` and a vector :math:`\phi \perp
    \tau`. With :math:`\psi` the left null vector, the tangents
    :math:`t = \cos\theta\,\tau + \sin\theta\,\phi` of the branches through
    the point solve the algebraic bifurcation equation
    :math:`\psi^T F_{zz}[t, t] = 0`, a quadratic form in
    :math:`(\cos\theta, \sin\theta)`. One root is the parent,
    :math:`\theta = 0`; the other is the crossing branch.
    """
    n = system.n
    jac_z = system.jacobian_z(z)
    left, _, vh = np.linalg.svd(jac_z)
    basis = vh[n - 1 :].T  # the two smallest right singular directions
    tangent = basis @ (basis.T @ parent_tangent)
    tangent /= np.linalg.norm(tangent)
    complements = [column - (column @ tangent) * tangent for column in basis.T]
    phi = max(complements, key=np.linalg.norm)
    phi /= np.linalg.norm(phi)
    psi = left[:, n - 1]

    h = _SECOND_DERIVATIVE_STEP * max(1.0, float(np.linalg.norm(z)))

    def second_derivative(v, w):
        """psi . F_zz[v, w] by central differences of F_z along v."""
        difference = system.jacobian_z(z + h * v) - system.jacobian_z(z - h * v)
        return float(psi @ (difference @ w)) / (2.0 * h)

    c11 = second_derivative(tangent, tangent)
    c12 = 0.5 * (second_derivative(tangent, phi) + second_derivative(phi, tangent))
    c22 = second_derivative(phi, phi)
    # Q(theta) = A + B cos(2 theta) + C sin(2 theta).
    mean = 0.5 * (c11 + c22)
    half_difference = 0.5 * (c11 - c22)
    amplitude = math.hypot(half_difference, c12)
    if amplitude <= 1e-12 * max(1.0, abs(mean)):
        theta = 0.5 * math.pi
    elif abs(mean) > amplitude:
        raise ContinuationError(
            "the quadratic form of the algebraic bifurcation equation at the branch "
            f"point is definite (coefficients {c11:.3e}, {c12:.3e}, {c22:.3e}), so "
            "no real branch crosses the parent: the point is isolated or of higher "
            "order"
        )
    else:
        phase = math.atan2(c12, half_difference)
        spread = math.acos(-mean / amplitude)
        candidates = [0.5 * (phase + spread), 0.5 * (phase - spread)]
        theta = max(candidates, key=lambda angle: abs(math.sin(angle)))
    direction = math.cos(theta) * tangent + math.sin(theta) * phi
    direction /= np.linalg.norm(direction)
    return direction, tangent, abs(math.sin(theta))


def switch_branch(
    problem: ContinuationProblem,
    branch: Branch,
    point: SpecialPoint,
    algorithm: PALC = PALC(),
    options: ContinuationOptions = ContinuationOptions(),
) -> list[Branch]:
    r"""Trace the branch crossing ``branch`` at a simple branch point, both ways.

    The direction of the crossing branch is the second root of the algebraic
    bifurcation equation in the null space of :math:`[F_u, F_q]` (second
    derivatives by central differences of the Jacobian). Continuation then
    starts from the branch point along plus and minus that direction. A new
    branch counts as different from the parent when its first point lies off
    the parent's tangent line by at least half of what the crossing angle
    predicts. If it does not, smaller first steps are tried.

    Parameters
    ----------
    problem : ContinuationProblem
        The problem that produced ``branch``.
    branch : Branch
        The parent branch.
    point : SpecialPoint
        A branch point of ``branch`` with multiplicity 1.
    algorithm, options
        As for :func:`continuation`; ``options.direction`` is ignored, both
        directions are traced, and ``options.ds`` is the first step.

    Returns
    -------
    list of Branch
        Two branches starting at the branch point, along ``+phi`` and
        ``-phi`` where ``phi`` is the crossing direction.

    Raises
    ------
    ValueError
        If ``point`` is not a branch point of ``branch``, or has multiplicity
        > 1: several branches leave such a point, and choosing them needs a
        reduced problem (for instance the residual restricted to a subspace
        fixed by part of the symmetry, where the point becomes simple).
    ContinuationError
        If no crossing branch can be found, or every attempted first step
        lands back on the parent branch. The message lists what was tried.
    """
    if not isinstance(point, SpecialPoint) or point.kind != "branch_point":
        kind = getattr(point, "kind", type(point).__name__)
        raise ValueError(
            f"point must be a SpecialPoint of kind 'branch_point', got {kind!r}"
        )
    if not any(point is candidate for candidate in branch.special_points):
        raise ValueError("point is not one of branch.special_points")
    if point.multiplicity > 1:
        raise ValueError(
            f"the branch point at p={point.p:.10g} has multiplicity "
            f"{point.multiplicity}: several branches cross there, and switching "
            "needs a reduced problem, for example the residual restricted to a "
            "subspace invariant under part of the symmetry, in which the point "
            "is simple"
        )
    system = _System(problem)
    bounds = _internal_bounds(system, options)
    z_star = np.append(np.array(point.u, dtype=float), system.internal(point.p))
    direction, parent_tangent, sin_angle = _crossing_direction(
        system, z_star, np.array(point.tangent, dtype=float)
    )
    logger.info(
        "switching at p=%.10g: crossing direction %s, angle to parent %.3g rad",
        point.p,
        direction,
        math.asin(min(1.0, sin_angle)),
    )
    new_branches = []
    for sign in (1.0, -1.0):
        tried = []
        for fraction in _STEP_FRACTIONS:
            ds = max(options.ds * fraction, options.ds_min)
            step_options = dataclasses.replace(
                options, ds=ds, ds_max=max(options.ds_max, ds), direction=1
            )
            start = PointData(
                system, z_star, sign * direction, tangent=sign * direction
            )
            new = trace(
                system,
                start,
                0,
                algorithm,
                step_options,
                bounds,
                skip_first_events=True,
            )
            if len(new) < 2:
                tried.append(f"ds={ds:.3e}: no step accepted ({new.message})")
                continue
            z1 = np.append(new.u[1], system.internal(new.p[1]))
            offset = z1 - z_star
            off_line = float(
                np.linalg.norm(offset - (offset @ parent_tangent) * parent_tangent)
            )
            required = 0.5 * sin_angle * float(np.linalg.norm(offset))
            if off_line >= required and off_line > 0.0:
                new_branches.append(new)
                break
            tried.append(
                f"ds={ds:.3e}: first point at distance {off_line:.3e} from the "
                f"parent's tangent line, below the {required:.3e} expected"
            )
        else:
            raise ContinuationError(
                f"branch switching at p={point.p:.10g} in direction "
                f"{'+' if sign > 0 else '-'}phi found no branch different from the "
                f"parent. Tried: {'; '.join(tried)}",
                point=point.u,
                parameter=point.p,
            )
    return new_branches
