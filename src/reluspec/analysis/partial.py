r"""Partially specialised states: a reduced ansatz with two groups of units.

The K student units, and with them the K teacher units, are split into a
group of ``K1`` and a group of ``K2 = K - K1``. Every order parameter is
invariant under permutations inside each group, the subgroup
``S_K1 x S_K2`` of the permutations of student and teacher units together.
Student ``k`` of group ``a`` and teacher ``m`` of group ``b`` have

* ``R_km = R_a`` for ``m = k`` and ``S_ab`` otherwise (``S_12 != S_21`` is
  allowed),
* ``Q_kl = C_ab`` for ``k != l``, ``Q_kk = 1``,

nine parameters ``(R1, S11, S12, S21, R2, S22, C11, C12, C22)``; a group of
one unit has no ``S_aa`` and no ``C_aa``. The set of such matrices is the
fixed-point subspace of ``S_K1 x S_K2`` in the full order-parameter space,
so the gradient of the full free energy at such a point lies in the subspace
too: a stationary point of the reduced free energy is a stationary point of
the full one. The site-symmetric states are the points with ``R1 = R2``,
``S_ab = S`` and ``C_ab = C``.

Of the symmetry blocks of :mod:`reluspec.analysis.stability`, the subspace
contains the three trivial directions, one direction of each of the four
copies of the standard representation and (for ``K1, K2 >= 2``) one of each
of the two copies of ``[K-2,2]``, so the branches that leave a site-symmetric
branch where a standard or ``[K-2,2]`` eigenvalue vanishes can be followed
here (equivariant branching lemma). ``[K-2,1,1]`` has no direction in the
subspace.

Free energy in closed form. The generalisation error is a weighted sum of
unit pair correlations. The matrix ``M = Q - R R^T`` has the eigenvalues
``a_1 = 1 - C11 - (R1 - S11)^2`` (``K1 - 1`` times),
``a_2 = 1 - C22 - (R2 - S22)^2`` (``K2 - 1`` times) and the two eigenvalues of
``[[d_1, sqrt(K1 K2) X], [sqrt(K1 K2) X, d_2]]`` on the vectors constant on
each group, with ``d_a`` the row sum of ``M`` within group ``a`` and ``X`` the
entry of ``M`` between the groups, so that

.. math::

    s = \tfrac12\left[(K_1 - 1)\ln a_1 + (K_2 - 1)\ln a_2
        + \ln\left(d_1 d_2 - K_1 K_2 X^2\right)\right].

The gradient and Hessian in the nine parameters are those of the full
space (:mod:`reluspec.theory.full_hessian`) contracted with the embedding,
``L^T g`` and ``L^T H L``; they cost ``O(K^3)`` operations.
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from ..activations import Activation
from ..activations import activation as lookup_activation
from ..continuation import (
    PALC,
    ContinuationError,
    ContinuationOptions,
    ContinuationProblem,
    continuation,
)
from ..theory.free_energy import free_energy as full_free_energy
from ..theory.full_hessian import (
    full_free_energy_gradient_vector,
    full_free_energy_hessian,
    full_free_energy_hessian_vector_product,
    full_variables,
)
from .problem import SpecializationProblem, StationaryPointError
from .stability import HOOK, STANDARD, TWO_ROW, FullSpaceBifurcation

__all__ = [
    "PartialBranch",
    "TwoGroupProblem",
    "follow_partial_branch",
]

logger = logging.getLogger(__name__)

_ALL_NAMES = ("R1", "S11", "S12", "S21", "R2", "S22", "C11", "C12", "C22")

# Deviation from the site-symmetric subspace below which a continued state
# counts as site-symmetric; the continuation's states are accurate to about
# its newton_tol.
_SYMMETRIC_TOLERANCE = 1e-7

# Largest K for which the full-space stability of partial states is computed
# from the dense Hessian, of size K^2 + K (K - 1) / 2.
_DENSE_LIMIT = 30


class TwoGroupProblem:
    """States invariant under permutations within two groups of units.

    Parameters
    ----------
    activation : Activation or str
    K : int
        Number of hidden units of student and teacher, ``K >= 2``.
    K1 : int
        Size of the first group, ``1 <= K1 <= K - 1``; the units ``0..K1-1``.

    Attributes
    ----------
    names : tuple of str
        The parameters, a subset of ``(R1, S11, S12, S21, R2, S22, C11, C12,
        C22)``: ``S11`` and ``C11`` only for ``K1 >= 2``, ``S22`` and ``C22``
        only for ``K2 >= 2``.
    counts : ndarray
        Number of entries of ``R`` or of ``Q_kl`` (``k < l``) that each
        parameter sets; ``L^T L = diag(counts)`` for the embedding ``L``.
    """

    def __init__(self, activation: Activation | str, K: int, K1: int):
        if isinstance(activation, str):
            activation = lookup_activation(activation)
        if not isinstance(activation, Activation):
            raise TypeError(
                f"activation must be an Activation or its name, not {activation!r}"
            )
        for name, value in (("K", K), ("K1", K1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} = {value!r} must be an integer")
        if K < 2:
            raise ValueError(f"K = {K} is invalid; it must be at least 2")
        if not 1 <= K1 <= K - 1:
            raise ValueError(f"K1 = {K1} is invalid; it must lie in [1, {K - 1}]")
        self.activation = activation
        self.K, self.K1, self.K2 = int(K), int(K1), int(K - K1)
        K1, K2 = self.K1, self.K2
        counts = {
            "R1": K1,
            "S11": K1 * (K1 - 1),
            "S12": K1 * K2,
            "S21": K1 * K2,
            "R2": K2,
            "S22": K2 * (K2 - 1),
            "C11": K1 * (K1 - 1) // 2,
            "C12": K1 * K2,
            "C22": K2 * (K2 - 1) // 2,
        }
        self.names = tuple(name for name in _ALL_NAMES if counts[name] > 0)
        self.counts = np.array([counts[name] for name in self.names], dtype=float)
        self._embedding = self._build_embedding()

    def __repr__(self) -> str:
        return f"TwoGroupProblem({self.activation!r}, K={self.K}, K1={self.K1})"

    # -- parameters and matrices ------------------------------------------------
    def _full(self, p) -> dict:
        p = np.asarray(p, dtype=float)
        if p.shape != (len(self.names),):
            raise ValueError(
                f"parameters must have shape ({len(self.names)},) for "
                f"{self.names}; got {p.shape}"
            )
        values = dict.fromkeys(_ALL_NAMES, 0.0)
        values.update(zip(self.names, (float(x) for x in p)))
        return values

    def matrices(self, p):
        """Return the K x K matrices ``(R, Q)`` of the parameters ``p``."""
        v = self._full(p)
        K, K1 = self.K, self.K1
        first = np.arange(K) < K1
        same = first[:, None] == first[None, :]
        R = np.where(
            same,
            np.where(first[:, None], v["S11"], v["S22"]),
            np.where(first[:, None], v["S12"], v["S21"]),
        )
        R[np.diag_indices(K)] = np.where(first, v["R1"], v["R2"])
        Q = np.where(
            same, np.where(first[:, None], v["C11"], v["C22"]), v["C12"]
        ).astype(float)
        Q[np.diag_indices(K)] = 1.0
        return R.astype(float), Q

    def site_symmetric(self, R, S, C) -> np.ndarray:
        """Return the parameters of the site-symmetric state ``(R, S, C)``."""
        values = {"R1": R, "R2": R, "C11": C, "C12": C, "C22": C}
        return np.array([values.get(name, S) for name in self.names], dtype=float)

    def _build_embedding(self) -> np.ndarray:
        """Return ``L``: column j is d x / d p_j in the full-space variables."""
        columns = []
        for j in range(len(self.names)):
            unit = np.zeros(len(self.names))
            unit[j] = 1.0
            R, Q = self.matrices(unit)
            Q[np.diag_indices(self.K)] = 0.0
            columns.append(full_variables(R, Q))
        return np.column_stack(columns)

    def symmetry_breaking(self, p) -> float:
        """Return the largest deviation of ``p`` from the site-symmetric state
        with the same mean overlaps ``R``, ``S`` and ``C``; 0 on a
        site-symmetric state."""
        p = np.asarray(p, dtype=float)
        R_matrix, Q_matrix = self.matrices(p)
        K = self.K
        R = np.trace(R_matrix) / K
        S = (R_matrix.sum() - K * R) / (K * (K - 1))
        C = (Q_matrix.sum() - K) / (K * (K - 1))
        return float(np.max(np.abs(p - self.site_symmetric(R, S, C))))

    @property
    def embedding(self) -> np.ndarray:
        """The matrix ``L`` with ``x = L p`` (read-only copy)."""
        return self._embedding.copy()

    # -- domain ---------------------------------------------------------------------
    def _entropy_arguments(self, v):
        """Return ``(a_1, a_2, d_1, det)`` of the entropy (module docstring)."""
        K1, K2 = self.K1, self.K2
        a1 = 1.0 - v["C11"] - (v["R1"] - v["S11"]) ** 2
        a2 = 1.0 - v["C22"] - (v["R2"] - v["S22"]) ** 2
        # Diagonal and off-diagonal entries of M inside each group.
        diagonal_1 = 1.0 - (
            v["R1"] ** 2 + (K1 - 1) * v["S11"] ** 2 + K2 * v["S12"] ** 2
        )
        off_1 = v["C11"] - (
            2 * v["R1"] * v["S11"] + (K1 - 2) * v["S11"] ** 2 + K2 * v["S12"] ** 2
        )
        diagonal_2 = 1.0 - (
            K1 * v["S21"] ** 2 + v["R2"] ** 2 + (K2 - 1) * v["S22"] ** 2
        )
        off_2 = v["C22"] - (
            K1 * v["S21"] ** 2 + 2 * v["R2"] * v["S22"] + (K2 - 2) * v["S22"] ** 2
        )
        d1 = diagonal_1 + (K1 - 1) * off_1
        d2 = diagonal_2 + (K2 - 1) * off_2
        cross = v["C12"] - (
            v["S21"] * (v["R1"] + (K1 - 1) * v["S11"])
            + v["S12"] * (v["R2"] + (K2 - 1) * v["S22"])
        )
        return a1, a2, d1, d1 * d2 - K1 * K2 * cross**2

    def is_valid(self, p) -> bool:
        """Return True when ``p`` is finite, every overlap lies in (-1, 1) and
        ``Q - R R^T`` is positive definite."""
        p = np.asarray(p, dtype=float)
        if p.shape != (len(self.names),) or not np.all(np.isfinite(p)):
            return False
        if np.any(np.abs(p) >= 1.0):
            return False
        a1, a2, d1, det = self._entropy_arguments(self._full(p))
        return (
            (self.K1 < 2 or a1 > 0) and (self.K2 < 2 or a2 > 0) and d1 > 0 and det > 0
        )

    def _check(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        self._full(p)  # checks the shape
        if not self.is_valid(p):
            raise ValueError(
                f"parameters {dict(zip(self.names, np.atleast_1d(p).tolist()))} are "
                "invalid: every overlap must lie in (-1, 1) and Q - R R^T must be "
                "positive definite"
            )
        return p

    # -- free energy ---------------------------------------------------------------
    def generalization_error(self, p) -> float:
        """Return ``eps_g`` from the weighted unit pair correlations."""
        v = self._full(self._check(p))
        K, K1, K2 = self.K, self.K1, self.K2
        pair = self.activation.unit_pair

        def I(rho):
            return float(pair(rho))

        student = (
            K * I(1.0)
            + K1 * (K1 - 1) * (I(v["C11"]) if K1 > 1 else 0.0)
            + K2 * (K2 - 1) * (I(v["C22"]) if K2 > 1 else 0.0)
            + 2 * K1 * K2 * I(v["C12"])
        )
        cross = (
            K1 * I(v["R1"])
            + K1 * (K1 - 1) * (I(v["S11"]) if K1 > 1 else 0.0)
            + K1 * K2 * (I(v["S12"]) + I(v["S21"]))
            + K2 * I(v["R2"])
            + K2 * (K2 - 1) * (I(v["S22"]) if K2 > 1 else 0.0)
        )
        teacher = K * I(1.0) + K * (K - 1) * I(0.0)
        return student / (2 * K) - cross / K + teacher / (2 * K)

    def entropy(self, p) -> float:
        """Return ``s = 1/2 ln det(Q - R R^T)`` in closed form."""
        a1, a2, _, det = self._entropy_arguments(self._full(self._check(p)))
        value = math.log(det)
        if self.K1 > 1:
            value += (self.K1 - 1) * math.log(a1)
        if self.K2 > 1:
            value += (self.K2 - 1) * math.log(a2)
        return 0.5 * value

    def free_energy(self, p, alpha) -> float:
        """Return ``F = K alpha eps_g - s`` at the parameters ``p``."""
        return self.K * float(alpha) * self.generalization_error(p) - self.entropy(p)

    def free_energy_full(self, p, alpha) -> float:
        """Return F from the full matrices, an independent check of
        :meth:`free_energy` that costs ``O(K^3)``."""
        R, Q = self.matrices(self._check(p))
        return float(full_free_energy(self.activation, R, Q, alpha))

    def gradient(self, p, alpha) -> np.ndarray:
        """Return ``dF/dp = L^T grad_x F``."""
        R, Q = self.matrices(self._check(p))
        return self._embedding.T @ full_free_energy_gradient_vector(
            self.activation, R, Q, alpha
        )

    def error_gradient(self, p) -> np.ndarray:
        """Return ``K d eps_g / dp``, the derivative of :meth:`gradient` in alpha."""
        R, Q = self.matrices(self._check(p))
        at_one = full_free_energy_gradient_vector(self.activation, R, Q, 1.0)
        at_zero = full_free_energy_gradient_vector(self.activation, R, Q, 0.0)
        return self._embedding.T @ (at_one - at_zero)

    def hessian(self, p, alpha) -> np.ndarray:
        """Return ``L^T H L``, the Hessian of F in the parameters ``p``."""
        R, Q = self.matrices(self._check(p))
        columns = [
            full_free_energy_hessian_vector_product(self.activation, R, Q, alpha, c)
            for c in self._embedding.T
        ]
        hessian = self._embedding.T @ np.column_stack(columns)
        return 0.5 * (hessian + hessian.T)

    def metric_eigenvalues(self, p, alpha):
        """Return the eigenvalues and eigenvectors of ``L^T H L v = w D v`` with
        ``D = diag(counts)``: the spectrum of the full Hessian restricted to the
        subspace, in the Euclidean metric of the full-space variables."""
        return scipy.linalg.eigh(self.hessian(p, alpha), np.diag(self.counts))

    def n_unstable(self, p, alpha, rtol: float = 1e-10) -> int:
        """Return the number of unstable directions inside the two-group ansatz."""
        values, _ = self.metric_eigenvalues(p, alpha)
        return int(np.sum(values < -rtol * np.max(np.abs(values))))

    def n_unstable_full(self, p, alpha, rtol: float = 1e-10) -> int:
        """Return the number of negative eigenvalues of the dense full Hessian.

        Raises
        ------
        ValueError
            If ``K`` exceeds 30, where the dense matrix is too costly.
        """
        if self.K > _DENSE_LIMIT:
            raise ValueError(
                f"K = {self.K} is too large for the dense full-space Hessian "
                f"(limit {_DENSE_LIMIT})"
            )
        R, Q = self.matrices(self._check(p))
        values = np.linalg.eigvalsh(
            full_free_energy_hessian(self.activation, R, Q, alpha)
        )
        return int(np.sum(values < -rtol * np.max(np.abs(values))))

    # -- stationary points -----------------------------------------------------------
    def stationary_point(self, p0, alpha, tol: float = 1e-10, max_iter: int = 50):
        """Return the stationary point reached by Newton's method from ``p0``.

        Steps are halved until they stay inside the domain. After the first
        step below ``tol`` (relative), one more step is taken, which brings
        the state to the rounding level. Raises
        :class:`~reluspec.analysis.StationaryPointError` when Newton's method
        does not converge.
        """
        p = self._check(p0).copy()
        norm = math.inf
        polished = False
        for _ in range(max_iter):
            gradient = self.gradient(p, alpha)
            norm = float(np.max(np.abs(gradient / self.counts)))
            try:
                step = np.linalg.solve(self.hessian(p, alpha), -gradient)
            except np.linalg.LinAlgError:
                break
            factor = 1.0
            while not self.is_valid(p + factor * step) and factor > 1e-8:
                factor *= 0.5
            p = p + factor * step
            if polished:
                return p
            # One more step after convergence reaches the rounding level.
            polished = np.max(np.abs(factor * step)) <= tol * max(
                1.0, np.max(np.abs(p))
            )
        raise StationaryPointError(
            f"Newton's method found no two-group stationary point at alpha = "
            f"{alpha!r} within {max_iter} iterations (last scaled gradient "
            f"max-norm {norm:.3e}); try a start closer to the state"
        )

    def continuation_problem(self, p0, alpha0) -> ContinuationProblem:
        """Return ``grad F = 0`` in the parameters as a continuation problem in
        log alpha, scaled like
        :meth:`SpecializationProblem.continuation_problem` (each component
        divided by its count and by ``1 + alpha^2``), with the metric
        Hessian ``D^-1/2 L^T H L D^-1/2`` as stability matrix."""
        scale = 1.0 / self.counts
        root = np.sqrt(scale)
        n = len(self.names)

        def residual(p, alpha):
            if not self.is_valid(p) or not alpha > 0:
                return np.full(n, np.nan)
            return scale * self.gradient(p, alpha) / (1.0 + alpha**2)

        def jacobian(p, alpha):
            if not self.is_valid(p):
                return np.full((n, n), np.nan)
            return scale[:, None] * self.hessian(p, alpha) / (1.0 + alpha**2)

        def parameter_derivative(p, alpha):
            if not self.is_valid(p):
                return np.full(n, np.nan)
            weight = 1.0 + alpha**2
            return scale * (
                self.error_gradient(p) / weight
                - 2.0 * alpha * self.gradient(p, alpha) / weight**2
            )

        def stability_matrix(p, alpha):
            if not self.is_valid(p):
                return np.full((n, n), np.nan)
            return root[:, None] * self.hessian(p, alpha) * root[None, :]

        return ContinuationProblem(
            residual=residual,
            u0=np.asarray(p0, dtype=float),
            p0=float(alpha0),
            jacobian=jacobian,
            parameter_derivative=parameter_derivative,
            stability_matrix=stability_matrix,
            parameter_scale="log",
            name=f"{self.activation.name} K={self.K} K1={self.K1}",
        )


@dataclass(frozen=True)
class PartialBranch:
    """A branch of two-group stationary states that leaves a site-symmetric one.

    Attributes
    ----------
    K, K1 : int
        Number of units and size of the first group.
    names : tuple of str
        Parameter names of the columns of ``parameters``.
    start : FullSpaceBifurcation
        The symmetry-breaking bifurcation the branch leaves from.
    alpha : ndarray
        Along the branch, in order; the start is in the middle.
    parameters : ndarray, shape (n, len(names))
    generalization_error, free_energy : ndarray
    n_unstable : ndarray of int
        Unstable directions inside the two-group ansatz.
    n_unstable_full : ndarray of int
        Negative eigenvalues of the dense full Hessian (-1 where K > 30).
    equilibrium_free_energy : ndarray
        Free energy of the site-symmetric equilibrium (the ansatz-stable
        site-symmetric state of least F) at the same alpha; NaN where no
        site-symmetric state was found.
    status : tuple of str
        Why each half of the branch ended: a status of the continuation
        (``"parameter_bound"`` and so on), or ``"site_symmetric: ..."`` where
        the half met a site-symmetric state again (at another
        symmetry-breaking bifurcation between the last two points) and was
        cut there.
    """

    K: int
    K1: int
    names: tuple
    start: FullSpaceBifurcation
    alpha: np.ndarray
    parameters: np.ndarray
    generalization_error: np.ndarray
    free_energy: np.ndarray
    n_unstable: np.ndarray
    n_unstable_full: np.ndarray
    equilibrium_free_energy: np.ndarray
    status: tuple = field(default=())

    @property
    def free_energy_gap(self) -> np.ndarray:
        """``F(partial) - F(site-symmetric equilibrium)``; negative where the
        partially specialised state has the lower free energy."""
        return self.free_energy - self.equilibrium_free_energy

    @property
    def below_equilibrium(self) -> bool:
        """True when the branch has a lower F than the site-symmetric
        equilibrium somewhere (beyond a relative 1e-12 of rounding)."""
        gap = self.free_energy_gap
        tolerance = 1e-12 * np.maximum(1.0, np.abs(self.free_energy))
        return bool(np.any(gap < -tolerance))

    @property
    def becomes_equilibrium(self) -> bool:
        """True when a state of the branch is below the site-symmetric
        equilibrium and stable in the full space (in the two-group ansatz
        where ``n_unstable_full`` is unknown)."""
        gap = self.free_energy_gap
        tolerance = 1e-12 * np.maximum(1.0, np.abs(self.free_energy))
        known = self.n_unstable_full >= 0
        stable = np.where(known, self.n_unstable_full == 0, self.n_unstable == 0)
        return bool(np.any((gap < -tolerance) & stable))


def _null_direction(problem: TwoGroupProblem, p_star, alpha_star):
    """Return the unit null vector of the reduced Hessian at the bifurcation."""
    values, vectors = problem.metric_eigenvalues(p_star, alpha_star)
    index = int(np.argmin(np.abs(values)))
    scale = float(np.max(np.abs(values)))
    if abs(values[index]) > 1e-6 * scale:
        raise ValueError(
            f"the two-group Hessian at alpha = {alpha_star!r} has no null vector "
            f"(smallest eigenvalue {values[index]:.3g}, scale {scale:.3g}): the "
            "bifurcating direction does not lie in this two-group ansatz"
        )
    null = np.flatnonzero(np.abs(values) <= 1e-6 * scale)
    if null.size > 1:
        raise ValueError(
            f"the two-group Hessian at alpha = {alpha_star!r} has {null.size} zero "
            f"eigenvalues ({', '.join(f'{values[i]:.3g}' for i in null)}; scale "
            f"{scale:.3g}): the bifurcation is not simple, so no single branch "
            "leaves it along a null vector. This happens at the branch point of "
            "the unspecialised branch (singular_in_ansatz), where the "
            "site-symmetric specialised branches cross too"
        )
    vector = vectors[:, index]
    return vector / np.sqrt(vector @ (problem.counts * vector))


def _first_point(problem: TwoGroupProblem, p_star, alpha_star, direction, distance):
    """Solve grad F = 0 with ``direction . D (p - p_star) = distance``.

    ``D = diag(counts)`` and alpha is free. The solution is the point of the
    new branch at the given distance from the bifurcation, in the metric of
    the full-space variables.
    """
    weighted = problem.counts * direction
    z = np.concatenate([p_star + distance * direction, [math.log(alpha_star)]])
    n = len(problem.names)
    polished = False
    for _ in range(60):
        p, alpha = z[:n], math.exp(z[n])
        jacobian = np.empty((n + 1, n + 1))
        jacobian[:n, :n] = problem.hessian(p, alpha)
        jacobian[:n, n] = alpha * problem.error_gradient(p)
        jacobian[n, :n] = weighted
        jacobian[n, n] = 0.0
        residual = np.concatenate(
            [problem.gradient(p, alpha), [weighted @ (p - p_star) - distance]]
        )
        step = np.linalg.solve(jacobian, -residual)
        factor = 1.0
        while not problem.is_valid((z + factor * step)[:n]) and factor > 1e-8:
            factor *= 0.5
        z = z + factor * step
        if polished:
            return z[:n], math.exp(z[n])
        # One more step after convergence: Newton's method then reaches the
        # rounding level, which the condition of the system near a fold can
        # keep above a fixed step tolerance.
        polished = np.max(np.abs(factor * step)) <= 1e-10 * max(1.0, np.max(np.abs(z)))
    raise StationaryPointError(
        f"no two-group state found at distance {distance!r} from the bifurcation "
        f"at alpha = {alpha_star!r}"
    )


def _equilibrium_free_energy(problem: SpecializationProblem, branches, alpha):
    """Return the least F of the ansatz-stable site-symmetric states at alpha."""
    best = math.nan
    for branch in branches:
        a = np.asarray(branch.alpha, dtype=float)
        u_all = np.column_stack([branch.R, branch.S, branch.C])
        for i in range(a.size - 1):
            low, high = sorted((a[i], a[i + 1]))
            if not low <= alpha <= high or high == low:
                continue
            t = (alpha - a[i]) / (a[i + 1] - a[i])
            start = (1.0 - t) * u_all[i] + t * u_all[i + 1]
            try:
                u = problem.stationary_point(start, alpha)
            except StationaryPointError:
                continue
            if problem.n_unstable(u, alpha) != 0:
                continue
            value = problem.free_energy(u, alpha)
            if not value >= best:
                best = value
    return best


def follow_partial_branch(
    activation,
    K: int,
    K1: int,
    bifurcation: FullSpaceBifurcation,
    alpha=(0.5, 100.0),
    *,
    site_symmetric_branches=(),
    distance: float = 1e-3,
    options: ContinuationOptions | None = None,
) -> PartialBranch:
    """Follow the two-group branch that leaves a symmetry-breaking bifurcation.

    At a zero of a ``standard`` or ``[K-2,2]`` block eigenvalue on a
    site-symmetric branch (found by
    :func:`~reluspec.analysis.stability.find_full_space_bifurcations`), a
    branch of ``S_K1 x S_K2``-invariant
    stationary points crosses the site-symmetric one. Its first points are
    found at ``+-distance`` from the bifurcation along the null vector of the
    reduced Hessian (alpha free), and each half is continued away from the
    bifurcation with the pseudo-arclength solver in log alpha.

    Parameters
    ----------
    activation : Activation or str
    K, K1 : int
        Number of units and size of the first group (``1 <= K1 <= K - 1``;
        ``2 <= K1 <= K - 2`` for a ``[K-2,2]`` bifurcation).
    bifurcation : FullSpaceBifurcation
        Where the branch starts.
    alpha : (float, float)
        Range of alpha to follow the branch in.
    site_symmetric_branches : sequence of StateBranch, optional
        The branches of :func:`reluspec.solve` in the same range; with them,
        each state is compared with the site-symmetric equilibrium. Without
        them ``equilibrium_free_energy`` is NaN.
    distance : float, default 1e-3
        Distance of the first points from the bifurcation, in the Euclidean
        metric of the full-space variables.
    options : ContinuationOptions, optional
        For the continuation; ``p_min``, ``p_max`` are set from ``alpha``.

    Returns
    -------
    PartialBranch

    Raises
    ------
    ValueError
        If the block is ``[K-2,1,1]`` or ``trivial`` (no direction in the
        two-group ansatz), ``K1`` does not suit the block, or the alpha range
        is invalid.
    StationaryPointError
        If no first point of the branch is found.
    """
    problem = TwoGroupProblem(activation, K, K1)
    if bifurcation.block not in (STANDARD, TWO_ROW):
        raise ValueError(
            f"block {bifurcation.block!r} has no direction in the two-group ansatz; "
            f"only {STANDARD!r} and {TWO_ROW!r} bifurcations can be followed "
            f"({HOOK!r} needs another reduced ansatz)"
        )
    if bifurcation.block == TWO_ROW and not 2 <= K1 <= K - 2:
        raise ValueError(
            f"K1 = {K1} is invalid for a {TWO_ROW} bifurcation; it must lie in "
            f"[2, {K - 2}] so that both groups have two units"
        )
    try:
        lo, hi = (float(x) for x in alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha = {alpha!r} must be a pair (lo, hi)") from None
    if not 0.0 < lo < hi < math.inf:
        raise ValueError(f"alpha = {alpha!r} is invalid; it needs 0 < lo < hi")
    if not lo <= bifurcation.alpha <= hi:
        raise ValueError(
            f"the bifurcation at alpha = {bifurcation.alpha!r} lies outside "
            f"alpha = ({lo}, {hi})"
        )

    alpha_star = bifurcation.alpha
    p_star = problem.site_symmetric(bifurcation.R, bifurcation.S, bifurcation.C)
    direction = _null_direction(problem, p_star, alpha_star)
    # The tangent, whose parameter component is the fold test, is only as
    # accurate as the states (newton_tol): at the fold of the relu K = 3
    # branch near alpha = 6.2745 the test stalls at 1.0e-8. A fold is
    # located to 100 times newton_tol.
    base = options or ContinuationOptions(
        ds=0.01, ds_max=0.05, newton_tol=1e-9, locate_tol=1e-7
    )
    settings = ContinuationOptions(
        **{
            **{k: getattr(base, k) for k in base.__dataclass_fields__},
            "p_min": lo,
            "p_max": hi,
            "direction": 1,
        }
    )

    halves, statuses = [], []
    for sign in (-1.0, 1.0):
        p_first, alpha_first = _first_point(
            problem, p_star, alpha_star, direction, sign * distance
        )
        secant = np.concatenate(
            [p_first - p_star, [math.log(alpha_first) - math.log(alpha_star)]]
        )
        continuation_problem = problem.continuation_problem(p_first, alpha_first)
        try:
            traced = continuation(
                continuation_problem,
                PALC(),
                settings,
                tangent=secant / np.linalg.norm(secant),
            )
        except ContinuationError as error:
            logger.warning("the half branch with sign %+d failed: %s", sign, error)
            statuses.append(f"failed: {error}")
            halves.append((np.array([alpha_first]), p_first[None, :]))
            continue
        alpha_half, p_half = np.asarray(traced.p), np.asarray(traced.u)
        status = traced.status
        # A half that reaches a site-symmetric state has met another
        # symmetry-breaking bifurcation. Beyond it the continuation would
        # follow the site-symmetric branch, so the half ends there.
        breaking = np.array([problem.symmetry_breaking(p) for p in p_half])
        returned = np.flatnonzero(breaking[1:] <= _SYMMETRIC_TOLERANCE)
        if returned.size:
            stop = int(returned[0]) + 1
            alpha_half, p_half = alpha_half[: stop + 1], p_half[: stop + 1]
            status = (
                "site_symmetric: met a site-symmetric state between alpha = "
                f"{alpha_half[-2]:.10g} and {alpha_half[-1]:.10g}"
            )
        statuses.append(status)
        halves.append((alpha_half, p_half))

    alpha_all = np.concatenate([halves[0][0][::-1], [alpha_star], halves[1][0]])
    p_all = np.vstack([halves[0][1][::-1], p_star[None, :], halves[1][1]])
    return _partial_branch(
        problem, bifurcation, alpha_all, p_all, site_symmetric_branches, statuses
    )


def _partial_branch(problem, bifurcation, alpha, parameters, branches, statuses):
    site_problem = SpecializationProblem(problem.activation, problem.K)
    error = np.array([problem.generalization_error(p) for p in parameters])
    energy = np.array([problem.free_energy(p, a) for p, a in zip(parameters, alpha)])
    n_unstable = np.array(
        [problem.n_unstable(p, a) for p, a in zip(parameters, alpha)], dtype=np.int64
    )
    if problem.K <= _DENSE_LIMIT:
        n_full = np.array(
            [problem.n_unstable_full(p, a) for p, a in zip(parameters, alpha)],
            dtype=np.int64,
        )
    else:
        n_full = np.full(alpha.size, -1, dtype=np.int64)
    if branches:
        reference = np.array(
            [_equilibrium_free_energy(site_problem, branches, a) for a in alpha]
        )
    else:
        reference = np.full(alpha.size, np.nan)
    return PartialBranch(
        K=problem.K,
        K1=problem.K1,
        names=problem.names,
        start=bifurcation,
        alpha=alpha,
        parameters=parameters,
        generalization_error=error,
        free_energy=energy,
        n_unstable=n_unstable,
        n_unstable_full=n_full,
        equilibrium_free_energy=reference,
        status=tuple(statuses),
    )
