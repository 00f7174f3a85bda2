"""Result objects: a traced branch and its special points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Branch", "SpecialPoint"]

SPECIAL_POINT_KINDS = ("fold", "branch_point", "stability_change")


def _frozen_array(value, dtype=None) -> np.ndarray | None:
    if value is None:
        return None
    array = np.array(value, dtype=dtype)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class SpecialPoint:
    r"""A fold, branch point or stability change located on a branch.

    The point is found by root finding on a test function along the branch
    between the accepted points ``bracket = (index, index + 1)``, re-solving
    the corrector at every trial, until the test function's absolute value is
    at most ``tolerance``. The test functions are

    * fold: :math:`\tau_q`, the parameter component of the unit tangent
      (:math:`dq/ds`, whose sign is that of :math:`dp/ds`);
    * simple branch point: :math:`\mathrm{sign}(\det B)\,\sigma_{\min}(B)` with
      the bordered matrix :math:`B = [F_u, F_q; \tau^T]`;
    * multiple branch point or stability change: the real part of the
      eigenvalue of :math:`F_u` (or of the stability matrix) that crosses zero.

    Attributes
    ----------
    kind : {"fold", "branch_point", "stability_change"}
        Classification. A fold is a turning point in p at which ``[F_u, F_p]``
        keeps full rank. A branch point is where it loses rank, including
        branch points at which the branch itself turns in p (the side branch
        of a pitchfork).
    u : ndarray
        State at the point, shape ``(n,)``, read-only.
    p : float
        Parameter at the point, in the caller's scale.
    index : int
        The point lies on the branch between points ``index`` and
        ``index + 1``.
    bracket : tuple of int
        ``(index, index + 1)``.
    multiplicity : int
        Number of eigenvalues that vanish at the point. It is 1 for folds and
        simple branch points, and K - 1 at the branch point of a permutation
        symmetry of K units. A complex pair crossing the imaginary axis at a
        stability change counts 2.
    test_value : float
        Absolute value of the test function at the reported point.
    tolerance : float
        Bound on ``test_value``: ``locate_tol`` for folds, and ``locate_tol``
        times the test's scale otherwise (see
        :class:`ContinuationOptions`).
    converged : bool
        Whether ``test_value <= tolerance``. If not, a
        :class:`ConvergenceWarning` was issued.
    null_vectors : ndarray or None
        For folds and branch points, an orthonormal basis of the (numerical)
        null space of :math:`F_u`, shape ``(n, multiplicity)``; None for
        stability changes.
    n_unstable_before, n_unstable_after : int
        Number of unstable directions just before and just after the point,
        in the order of the branch.
    tangent : ndarray
        Unit tangent of the branch at the point in ``(u, q)`` coordinates,
        shape ``(n + 1,)``. :func:`switch_branch` needs it.
    s : float
        Pseudo-arclength of the point from point ``index``, measured along
        the predictor direction of that step.
    """

    kind: str
    u: np.ndarray
    p: float
    index: int
    multiplicity: int
    test_value: float
    tolerance: float
    converged: bool
    null_vectors: np.ndarray | None
    n_unstable_before: int
    n_unstable_after: int
    tangent: np.ndarray
    s: float

    def __post_init__(self):
        if self.kind not in SPECIAL_POINT_KINDS:
            raise ValueError(
                f"kind={self.kind!r} is invalid: it must be one of "
                f"{SPECIAL_POINT_KINDS}"
            )
        object.__setattr__(self, "u", _frozen_array(self.u, float))
        object.__setattr__(self, "tangent", _frozen_array(self.tangent, float))
        object.__setattr__(
            self, "null_vectors", _frozen_array(self.null_vectors, float)
        )

    @property
    def bracket(self) -> tuple[int, int]:
        """Indices of the accepted points around the special point."""
        return (self.index, self.index + 1)

    def __repr__(self) -> str:
        return (
            f"SpecialPoint(kind={self.kind!r}, p={self.p:.12g}, index={self.index}, "
            f"multiplicity={self.multiplicity}, test_value={self.test_value:.2e}, "
            f"n_unstable {self.n_unstable_before}->{self.n_unstable_after})"
        )


@dataclass(frozen=True, eq=False)
class Branch:
    """A branch of solutions of F(u, p) = 0 traced by :func:`continuation`.

    All arrays are read-only: accepted points are never modified.

    Attributes
    ----------
    u : ndarray
        States, shape ``(n_points, n)``.
    p : ndarray
        Parameters in the caller's scale, shape ``(n_points,)``.
    tangents : ndarray
        Exact unit tangents in ``(u, q)`` coordinates (``q = ln p`` with the
        log scale), shape ``(n_points, n + 1)``, oriented along the direction
        of continuation.
    ds : ndarray
        Pseudo-arclength step from the previous point, shape ``(n_points,)``;
        ``ds[0] = 0``.
    n_unstable : ndarray of int
        Number of unstable directions at each point (see
        :class:`ContinuationProblem` for the convention).
    eigenvalues : ndarray
        Eigenvalues behind ``n_unstable`` at each point, sorted by real part,
        shape ``(n_points, n)``; complex when the Jacobian is not symmetric
        and has complex eigenvalues.
    newton_iterations : ndarray of int
        Newton updates needed to reach each point (for point 0, the start
        correction).
    special_points : tuple of SpecialPoint
        Folds, branch points and stability changes in the order of the branch.
    status : str
        Why the branch ended: ``"parameter_bound"`` (reached ``p_min`` or
        ``p_max``), ``"completed"`` (returned to its start: a closed curve),
        ``"max_steps"``, ``"newton_failed"`` (the corrector failed at
        ``ds_min``), ``"suspected_branch_jump"`` (the tangent turned by more
        than ``angle_max`` at ``ds_min``), ``"max_rejections"``.
    message : str
        Where and why the branch ended.
    name : str
        Name of the problem.
    parameter_scale : str
        ``"linear"`` or ``"log"``, as in the problem.
    n_rejected : int
        Number of rejected steps.
    """

    u: np.ndarray
    p: np.ndarray
    tangents: np.ndarray
    ds: np.ndarray
    n_unstable: np.ndarray
    eigenvalues: np.ndarray
    newton_iterations: np.ndarray
    special_points: tuple
    status: str
    message: str
    name: str
    parameter_scale: str
    n_rejected: int

    def __post_init__(self):
        object.__setattr__(self, "u", _frozen_array(self.u, float))
        object.__setattr__(self, "p", _frozen_array(self.p, float))
        object.__setattr__(self, "tangents", _frozen_array(self.tangents, float))
        object.__setattr__(self, "ds", _frozen_array(self.ds, float))
        object.__setattr__(self, "n_unstable", _frozen_array(self.n_unstable, int))
        object.__setattr__(self, "eigenvalues", _frozen_array(self.eigenvalues))
        object.__setattr__(
            self, "newton_iterations", _frozen_array(self.newton_iterations, int)
        )
        object.__setattr__(self, "special_points", tuple(self.special_points))

    def __len__(self) -> int:
        return self.p.size

    @property
    def stable(self) -> np.ndarray:
        """Boolean array: True where the point has no unstable direction."""
        return self.n_unstable == 0

    def special(self, kind: str) -> list[SpecialPoint]:
        """Return the special points of one kind, in the order of the branch."""
        if kind not in SPECIAL_POINT_KINDS:
            raise ValueError(
                f"kind={kind!r} is invalid: it must be one of {SPECIAL_POINT_KINDS}"
            )
        return [point for point in self.special_points if point.kind == kind]

    def __repr__(self) -> str:
        kinds = ", ".join(
            f"{point.kind} at p={point.p:.6g}" for point in self.special_points
        )
        return (
            f"Branch(name={self.name!r}, points={len(self)}, "
            f"p=[{self.p.min():.6g}, {self.p.max():.6g}], status={self.status!r}, "
            f"special_points=[{kinds}])"
        )
