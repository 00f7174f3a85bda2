r"""Stability of site-symmetric states in the full order-parameter space.

The variables are those of :mod:`reluspec.theory.full_hessian`: all K^2
entries of ``R`` and the ``K (K - 1) / 2`` entries ``Q_kl`` with ``k < l``
(``M = K``, ``T = I``, ``Q_kk = 1``), with the Euclidean metric of these
independent entries. Eigenvalues of the Hessian depend on the metric, but
their signs do not (Sylvester's law of inertia), so stability does not.

Symmetry blocks. The free energy is invariant under the group S_K permuting
student and teacher units simultaneously. A site-symmetric state is a fixed
point of that action, so the Hessian commutes with it and is block diagonal
in the irreducible representations of S_K. With ``1`` the trivial
and ``S = [K-1, 1]`` the standard representation, the R-space is
``(1 + S) (x) (1 + S) = 2 [K] + 3 [K-1,1] + [K-2,2] + [K-2,1,1]`` and the
space of off-diagonal Q entries (pairs of units) is
``[K] + [K-1,1] + [K-2,2]``. Each irreducible representation of dimension
``d`` therefore contributes a block matrix whose size is the number of its
copies, and each eigenvalue of that matrix is an eigenvalue of the Hessian
with multiplicity ``d``:

==========  ======  ===================  ======================================
block       size    multiplicity         basis of one copy (orthonormal)
==========  ======  ===================  ======================================
trivial     3       1                    R: ``J/K``, ``P/sqrt(K-1)``;
                                         Q: ``(J-I)/sqrt(K(K-1)/2)``
standard    4       K - 1                R: ``u y^T``, ``y u^T``,
                                         ``sqrt(K/(K-2)) P diag(y) P``;
                                         Q: ``(y 1^T + 1 y^T - 2 diag(y))
                                         / sqrt(K-2)``
[K-2,2]     2       K (K - 3) / 2        R: ``Z/|Z|``; Q: ``Z`` of unit norm
[K-2,1,1]   1       (K - 1) (K - 2) / 2  R: ``Y/|Y|``
==========  ======  ===================  ======================================

Here ``J`` is the all-ones matrix, ``P = I - J/K``, ``u`` the unit vector
with equal entries ``1/sqrt(K)``, ``y`` a unit vector with zero sum, ``Z`` a
symmetric matrix with zero diagonal and zero row sums, and ``Y`` an
antisymmetric matrix with zero row sums. The multiplicity is the dimension
of the representation. At K = 2 the standard block is 2 x 2 (the first two
basis vectors), and the blocks of multiplicity 0 (``[K-2,2]`` for K <= 3,
``[K-2,1,1]`` for K = 2) are left out.

At the state, ``M = Q - R R^T`` has the eigenvalue ``A = 1 - C - d^2`` on the
vectors of zero sum and ``B = 1 + (K-1) C - m^2`` on ``1``, with
``d = R - S`` and ``m = R + (K-1) S``. The matrices ``W = M^-1``,
``G = W R`` and ``B_T = R^T W R + I`` of :mod:`reluspec.theory.full_hessian`
act as the scalars

.. math::

    w_S = 1/A,\; w_1 = 1/B,\; g_S = d/A,\; g_1 = m/B,\;
    b_S = 1 + d^2/A,\; b_1 = 1 + m^2/B

on those two subspaces. With the error curvatures
``e_d = -alpha I''(R)``, ``e_o = -alpha I''(S)``, ``q = alpha I''(C)`` and
``delta = e_d - e_o``, the blocks are

.. math::

    H_{[K-2,1,1]} &= w_S + e_o, \\
    H_{[K-2,2]} &= \begin{pmatrix} w_S b_S + g_S^2 + e_o & -\sqrt2\, w_S g_S \\
        -\sqrt2\, w_S g_S & q + w_S^2 \end{pmatrix}, \\
    H_{\mathrm{standard}} &= \begin{pmatrix}
        w_1 b_S + e_o & g_1 g_S & 0 & -w_1 g_S r \\
        g_1 g_S & w_S b_1 + e_o & 0 & -w_S g_1 r \\
        0 & 0 & w_S b_S + g_S^2 + e_o & 2 w_S g_S / \sqrt K \\
        -w_1 g_S r & -w_S g_1 r & 2 w_S g_S / \sqrt K &
            q + w_1 w_S - 2 w_S (w_1 - w_S)/K
        \end{pmatrix} + \delta\, \beta\beta^\top,

with ``r = sqrt((K-2)/K)`` and ``beta = (1/sqrt K, 1/sqrt K, r, 0)``, the
unit vector of the diagonal of R in the standard copies. The trivial block is
the site-symmetric Hessian in ``(R, S, C)`` in orthonormal coordinates:
its eigenvalues are those of ``D^-1/2 H_sym D^-1/2`` with
``D = diag(K, K (K - 1), K (K - 1) / 2)``, the squared norms of the
directions ``I``, ``J - I`` (in R) and ``J - I`` (in Q) that R, S and C move.
In the basis of the table, with ``c = sqrt(2 / (K (K - 1)))``,

.. math::

    H_{\mathrm{trivial}} = \begin{pmatrix}
        w_1 b_1 + g_1^2 + e_o + \delta/K & \delta\sqrt{K-1}/K &
            -c (K-1) w_1 g_1 \\
        \delta\sqrt{K-1}/K & w_S b_S + g_S^2 + e_o + \delta (K-1)/K &
            c \sqrt{K-1}\, w_S g_S \\
        -c (K-1) w_1 g_1 & c \sqrt{K-1}\, w_S g_S &
            q + w_1^2 (K-1)/K + w_S^2/K
        \end{pmatrix}.

Every block costs O(1) operations at any K. The derivation follows from the
second derivatives of :mod:`reluspec.theory.full_hessian`; the tests check the
block spectrum against dense eigenvalues for K = 2 to 6.

On the unspecialised branch (``R = S``) the state is invariant under separate
permutations of students and teachers. Then ``g_S = delta = 0`` and the
eigenvalue ``w_S + e_o`` appears in the trivial, standard, ``[K-2,2]`` and
``[K-2,1,1]`` blocks at once, ``(K - 1)^2`` times in all: the
specialisation branch point of the ansatz is a singular point of
multiplicity ``(K - 1)^2`` in the full space.
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq

from .. import _kernels
from ..activations import Activation, Erf, ReLU
from ..activations import activation as lookup_activation
from ..order_parameters import validate_site_symmetric
from ..theory.entropy import _log_arguments, validate_symmetric_order_parameters
from .problem import SpecializationProblem, StationaryPointError

__all__ = [
    "BLOCK_NAMES",
    "Block",
    "FullCounts",
    "FullSpaceBifurcation",
    "FullStability",
    "block_spectrum",
    "find_full_space_bifurcations",
    "full_space_counts",
    "full_space_stability",
    "label_branch",
]

logger = logging.getLogger(__name__)

TRIVIAL = "trivial"
STANDARD = "standard"
TWO_ROW = "[K-2,2]"
HOOK = "[K-2,1,1]"

#: Names of the symmetry blocks, in the order :func:`block_spectrum` lists them.
BLOCK_NAMES = (TRIVIAL, STANDARD, TWO_ROW, HOOK)

_BASES = {
    TRIVIAL: ("R: J/K", "R: (I - J/K)/sqrt(K-1)", "Q: (J - I)/sqrt(K(K-1)/2)"),
    STANDARD: (
        "R: 1 y^T/sqrt(K)",
        "R: y 1^T/sqrt(K)",
        "R: sqrt(K/(K-2)) P diag(y) P",
        "Q: (y 1^T + 1 y^T - 2 diag(y))/sqrt(K-2)",
    ),
    TWO_ROW: ("R: Z/|Z|", "Q: Z/|Z|_Q"),
    HOOK: ("R: Y/|Y|",),
}

# Relative size below which a negative eigenvalue counts as zero, as in
# SpecializationProblem.n_unstable.
_DEFAULT_RTOL = 1e-10


@dataclass(frozen=True)
class Block:
    """One symmetry block of the full-space Hessian at a site-symmetric state.

    Attributes
    ----------
    name : str
        ``"trivial"``, ``"standard"``, ``"[K-2,2]"`` or ``"[K-2,1,1]"``, the
        irreducible representation of S_K (Young diagram).
    eigenvalues : ndarray
        Eigenvalues of the block matrix in ascending order.
    multiplicity : int
        Dimension of the representation: each eigenvalue occurs this many
        times in the spectrum of the full Hessian.
    matrix : ndarray
        The symmetric block matrix in the orthonormal basis ``basis``.
    basis : tuple of str
        The basis vectors of one copy of the representation, as in the table
        of the module docstring.
    term_scale : float
        Largest absolute value among the terms summed into the entries of
        ``matrix``: its entries are exact to a few ulp of it. For the 1 x 1
        ``[K-2,1,1]`` block ``w_S + e_o`` it is ``max(|w_S|, |e_o|)``.
    """

    name: str
    eigenvalues: np.ndarray
    multiplicity: int
    matrix: np.ndarray
    basis: tuple
    term_scale: float = math.nan


def _number_of_units(K) -> int:
    if isinstance(K, bool) or not isinstance(K, numbers.Integral) or K < 2:
        raise ValueError(f"K = {K!r} is invalid; it must be an integer >= 2")
    return int(K)


def _alpha(alpha) -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha = {alpha!r} must be a real number") from None
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(
            f"alpha = {alpha!r} is invalid: the number of examples per weight "
            "must be finite and at least 0"
        )
    return value


def _activation(activation) -> Activation:
    if isinstance(activation, str):
        activation = lookup_activation(activation)
    if not isinstance(activation, Activation):
        raise TypeError(
            f"activation must be an Activation or its name, not {activation!r}"
        )
    return activation


def _curvature(activation: Activation, name: str, rho: float) -> float:
    value = float(activation.unit_pair_derivative(rho, order=2))
    if not math.isfinite(value):
        raise ValueError(
            f"{name} = {rho!r}: the curvature I''({name}) of the pair correlation "
            "is infinite there, so the Hessian is undefined; use |{name}| < 1"
        )
    return value


def _block_matrices(activation: Activation, R, S, C, alpha, K):
    """Return ``[(name, matrix, multiplicity, term_scale)]`` at a site-symmetric
    state, with ``term_scale`` as in :class:`Block`."""
    R, S, C, _ = validate_site_symmetric(R, S, C, K)
    validate_symmetric_order_parameters(R, S, C, K)
    arguments = _log_arguments(R, S, C, K - 1.0)
    A, B, d, m = arguments.A, arguments.B, arguments.d, arguments.u

    w_S, w_1 = 1.0 / A, 1.0 / B
    g_S, g_1 = d / A, m / B
    b_S, b_1 = 1.0 + d * g_S, 1.0 + m * g_1
    e_d = -alpha * _curvature(activation, "R", R)
    e_o = -alpha * _curvature(activation, "S", S)
    q = alpha * _curvature(activation, "C", C)
    delta = e_d - e_o

    # trivial: J/K and (I - J/K)/sqrt(K-1) in R, (J - I)/sqrt(K(K-1)/2) in Q.
    c = math.sqrt(2.0 / (K * (K - 1.0)))
    root = math.sqrt(K - 1.0)
    trivial = np.empty((3, 3))
    trivial[0, 0] = w_1 * b_1 + g_1 * g_1 + e_o + delta / K
    trivial[1, 1] = w_S * b_S + g_S * g_S + e_o + delta * (K - 1.0) / K
    trivial[2, 2] = q + w_1 * w_1 * (K - 1.0) / K + w_S * w_S / K
    trivial[0, 1] = trivial[1, 0] = delta * root / K
    trivial[0, 2] = trivial[2, 0] = -c * (K - 1.0) * w_1 * g_1
    trivial[1, 2] = trivial[2, 1] = c * root * w_S * g_S
    blocks = [(TRIVIAL, trivial, 1, float(np.max(np.abs(trivial))))]

    # standard: the diagonal of R has the unit vector beta in the copies.
    if K == 2:
        beta = np.array([1.0, 1.0]) / math.sqrt(2.0)
        standard = np.diag([w_1 * b_S + e_o, w_S * b_1 + e_o])
        standard[0, 1] = standard[1, 0] = g_1 * g_S
        standard += delta * np.outer(beta, beta)
        blocks.append((STANDARD, standard, 1, float(np.max(np.abs(standard)))))
        return blocks
    r = math.sqrt((K - 2.0) / K)
    beta = np.array([1.0 / math.sqrt(K), 1.0 / math.sqrt(K), r, 0.0])
    standard = np.diag(
        [
            w_1 * b_S + e_o,
            w_S * b_1 + e_o,
            w_S * b_S + g_S * g_S + e_o,
            q + w_1 * w_S - 2.0 * w_S * (w_1 - w_S) / K,
        ]
    )
    standard[0, 1] = standard[1, 0] = g_1 * g_S
    standard[0, 3] = standard[3, 0] = -w_1 * g_S * r
    standard[1, 3] = standard[3, 1] = -w_S * g_1 * r
    standard[2, 3] = standard[3, 2] = 2.0 * w_S * g_S / math.sqrt(K)
    standard += delta * np.outer(beta, beta)
    blocks.append((STANDARD, standard, K - 1, float(np.max(np.abs(standard)))))

    if K >= 4:
        coupling = -math.sqrt(2.0) * w_S * g_S
        two_row = np.array(
            [[w_S * b_S + g_S * g_S + e_o, coupling], [coupling, q + w_S * w_S]]
        )
        blocks.append(
            (TWO_ROW, two_row, K * (K - 3) // 2, float(np.max(np.abs(two_row))))
        )
    # w_S b_S - g_S^2 = w_S: the transpose in G V^T G flips the sign of g_S^2.
    hook = np.array([[w_S + e_o]])
    blocks.append((HOOK, hook, (K - 1) * (K - 2) // 2, max(abs(w_S), abs(e_o))))
    return blocks


def block_spectrum(activation, R, S, C, alpha, K) -> list[Block]:
    r"""Compute the spectrum of the full-space Hessian at a site-symmetric state.

    The Hessian of ``F = K alpha eps_g - s`` in all entries of ``R`` and the
    off-diagonal entries of ``Q`` (Euclidean metric of the independent
    entries) is split into the blocks of the irreducible representations of
    S_K; see the module docstring for the closed forms. The state need not be
    stationary.

    Parameters
    ----------
    activation : Activation or str
    R, S, C : float
        Site-symmetric order parameters (``M = K``, ``T = I``, ``Q_kk = 1``).
    alpha : float
        Examples per adjustable weight, ``alpha >= 0``.
    K : int
        Number of hidden units, ``K >= 2``.

    Returns
    -------
    list of Block
        ``trivial``, ``standard``, then ``[K-2,2]`` (K >= 4) and
        ``[K-2,1,1]`` (K >= 3). The eigenvalues repeated by their
        multiplicities are the ``K^2 + K (K - 1) / 2`` eigenvalues of
        :func:`reluspec.theory.full_hessian.full_free_energy_hessian`.

    Raises
    ------
    ValueError
        If ``K`` is not an integer >= 2, ``alpha`` is negative or not finite,
        the order parameters are outside the domain of the entropy, or the
        curvature of the pair correlation is infinite (ReLU at ``R``, ``S``
        or ``C`` equal to +-1).
    """
    activation = _activation(activation)
    K = _number_of_units(K)
    alpha = _alpha(alpha)
    blocks = []
    for name, matrix, multiplicity, term_scale in _block_matrices(
        activation, R, S, C, alpha, K
    ):
        blocks.append(
            Block(
                name=name,
                eigenvalues=np.linalg.eigvalsh(matrix),
                multiplicity=multiplicity,
                matrix=matrix,
                basis=_BASES[name][: matrix.shape[0]],
                term_scale=term_scale,
            )
        )
    return blocks


@dataclass(frozen=True)
class FullStability:
    """Stability of a site-symmetric state in the full order-parameter space.

    Attributes
    ----------
    n_unstable : int
        Number of negative eigenvalues of the full-space Hessian, counted
        with multiplicity; 0 marks a local minimum of F in the full space.
    unstable_blocks : tuple of (str, int, int)
        ``(block name, negative eigenvalues of the block, multiplicity)`` for
        every block with a negative eigenvalue, in the order of
        :data:`BLOCK_NAMES`.
    min_eigenvalue : dict of str to float
        The smallest eigenvalue of each block.
    n_unstable_ansatz : int
        Negative eigenvalues of the trivial block, equal to the number of
        negative eigenvalues of the site-symmetric Hessian in ``(R, S, C)``.
    blocks : tuple of Block
    """

    n_unstable: int
    unstable_blocks: tuple
    min_eigenvalue: dict
    n_unstable_ansatz: int
    blocks: tuple

    @property
    def stable(self) -> bool:
        """True when the state is a local minimum in the full space."""
        return self.n_unstable == 0

    @property
    def stable_only_in_ansatz(self) -> bool:
        """True when every unstable direction breaks the site symmetry."""
        return self.n_unstable > 0 and self.n_unstable_ansatz == 0

    @property
    def description(self) -> str:
        """A one-line label such as ``"unstable outside the ansatz only: 6
        directions (standard 1 x 2; [K-2,1,1] 1 x 4)"`` or ``"stable"``."""
        return _describe(self.n_unstable, self.n_unstable_ansatz, self.unstable_blocks)


def _describe(n_unstable: int, n_unstable_ansatz: int, unstable_blocks) -> str:
    """Return the label of :attr:`FullStability.description`."""
    if n_unstable == 0:
        return "stable"
    parts = "; ".join(
        f"{name} {count} x {multiplicity}"
        for name, count, multiplicity in unstable_blocks
    )
    noun = "direction" if n_unstable == 1 else "directions"
    if n_unstable_ansatz == 0:
        prefix = "unstable outside the ansatz only"
    elif n_unstable == n_unstable_ansatz:
        prefix = "unstable inside the ansatz"
    else:
        prefix = "unstable"
    return f"{prefix}: {n_unstable} {noun} ({parts})"


def _stability_from_blocks(blocks, rtol: float) -> FullStability:
    # Each block's eigenvalues carry the rounding of that block's matrix, so
    # a block's own largest eigenvalue sets its threshold. The blocks differ
    # in scale by orders of magnitude at large K, so that a common threshold
    # would count a clearly negative eigenvalue of a small block as zero.
    # The threshold is at least 64 ulp of the terms summed into the block's
    # entries: a 1 x 1 block would otherwise count its own rounding as
    # negative where its two terms cancel, as at a branch point.
    unstable = []
    total = 0
    in_ansatz = 0
    for block in blocks:
        terms = block.term_scale
        if not math.isfinite(terms):
            terms = float(np.max(np.abs(block.matrix)))
        floor = 64.0 * np.finfo(float).eps * terms
        threshold = -(rtol * float(np.max(np.abs(block.eigenvalues))) + floor)
        count = int(np.sum(block.eigenvalues < threshold))
        if block.name == TRIVIAL:
            in_ansatz = count
        if count:
            unstable.append((block.name, count, block.multiplicity))
            total += count * block.multiplicity
    return FullStability(
        n_unstable=total,
        unstable_blocks=tuple(unstable),
        min_eigenvalue={block.name: float(block.eigenvalues[0]) for block in blocks},
        n_unstable_ansatz=in_ansatz,
        blocks=tuple(blocks),
    )


def _check_rtol(rtol) -> float:
    try:
        value = float(rtol)
    except (TypeError, ValueError):
        raise ValueError(f"rtol = {rtol!r} must be a real number") from None
    if not (0.0 <= value < 1.0):
        raise ValueError(f"rtol = {rtol!r} is invalid; it must lie in [0, 1)")
    return value


def full_space_stability(
    activation, R, S, C, alpha, K, rtol: float = _DEFAULT_RTOL
) -> FullStability:
    """Count the unstable directions of a site-symmetric state in the full space.

    Parameters
    ----------
    activation, R, S, C, alpha, K
        As :func:`block_spectrum`.
    rtol : float, default 1e-10
        Eigenvalues above ``-rtol`` times the largest absolute eigenvalue of
        their block count as zero, so that a marginal state (at a branch
        point or a fold) is not called unstable because of rounding. This is
        the rule of ``SpecializationProblem.n_unstable`` applied block by
        block.

    Returns
    -------
    FullStability

    Raises
    ------
    ValueError
        As :func:`block_spectrum`, or if ``rtol`` is not in ``[0, 1)``.
    """
    rtol = _check_rtol(rtol)
    return _stability_from_blocks(block_spectrum(activation, R, S, C, alpha, K), rtol)


class FullCounts(NamedTuple):
    """The counts of :class:`FullStability` without the block matrices.

    Attributes
    ----------
    n_unstable : int
    n_unstable_ansatz : int
    unstable_blocks : tuple of (str, int, int)
        As in :class:`FullStability`.
    """

    n_unstable: int
    n_unstable_ansatz: int
    unstable_blocks: tuple

    @property
    def stable(self) -> bool:
        """True when the state is a local minimum in the full space."""
        return self.n_unstable == 0

    @property
    def description(self) -> str:
        """The label of :attr:`FullStability.description`."""
        return _describe(self.n_unstable, self.n_unstable_ansatz, self.unstable_blocks)


def _compiled_kind(activation):
    """Return the kernel code of ``activation``, or None when only the Python
    expressions evaluate it (any type other than exactly ReLU or Erf)."""
    return activation._kind if type(activation) in (ReLU, Erf) else None


def full_space_counts(
    activation, R, S, C, alpha, K, rtol: float = _DEFAULT_RTOL
) -> FullCounts:
    """Count the unstable directions of a site-symmetric state in the full space.

    Returns the counts of :func:`full_space_stability` (same arguments, same
    errors) without building the block matrices. For ReLU and erf the blocks
    and their eigenvalues are computed in compiled code
    (``reluspec._kernels.symmetric_block_counts``), from the same matrix
    entries but by Jacobi rotations instead of LAPACK. The two spectra
    differ by a few eps times the norm of each block, so that the counts
    differ only for an eigenvalue that close to its threshold. Inputs that
    the compiled code does not take (other activations, invalid or odd
    values) go through :func:`full_space_stability`.
    """
    rtol = _check_rtol(rtol)
    activation = _activation(activation)
    kind = _compiled_kind(activation)
    if kind is not None and type(K) is int and K >= 2:
        try:
            counts = _kernels.symmetric_block_counts(kind, R, S, C, alpha, K, rtol)
        except (TypeError, OverflowError):
            counts = None
        if counts is not None:
            multiplicities = (1, K - 1, K * (K - 3) // 2, (K - 1) * (K - 2) // 2)
            unstable = tuple(
                (name, count, multiplicity)
                for name, count, multiplicity in zip(
                    BLOCK_NAMES, counts, multiplicities
                )
                if count
            )
            total = sum(count * multiplicity for _, count, multiplicity in unstable)
            return FullCounts(total, counts[0], unstable)
    stability = full_space_stability(activation, R, S, C, alpha, K, rtol=rtol)
    return FullCounts(
        stability.n_unstable, stability.n_unstable_ansatz, stability.unstable_blocks
    )


def label_branch(activation, K, alpha, R, S, C, rtol: float = _DEFAULT_RTOL):
    """Label every state of a site-symmetric branch with its full-space stability.

    Parameters
    ----------
    activation : Activation or str
    K : int
        Number of hidden units, ``K >= 2``.
    alpha, R, S, C : array_like, shape (n,)
        The states, for example the arrays of a ``StateBranch``.
    rtol : float, default 1e-10
        As :func:`full_space_stability`.

    Returns
    -------
    n_unstable_full : ndarray of int, shape (n,)
        Negative eigenvalues of the full-space Hessian with multiplicity.
    descriptions : ndarray of str (object), shape (n,)
        :attr:`FullStability.description` of each state.

    Raises
    ------
    ValueError
        If the arrays differ in shape, or a state is invalid (the message
        names its index and the reason from :func:`block_spectrum`).
    """
    activation = _activation(activation)
    K = _number_of_units(K)
    rtol = _check_rtol(rtol)
    arrays = [np.atleast_1d(np.asarray(a, dtype=float)) for a in (alpha, R, S, C)]
    shapes = {array.shape for array in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 1:
        raise ValueError(
            "alpha, R, S and C must be 1-D arrays of one length; got shapes "
            f"{[array.shape for array in arrays]}"
        )
    n = arrays[0].size
    counts = np.empty(n, dtype=np.int64)
    descriptions = np.empty(n, dtype=object)
    for i, (a, r, s, c) in enumerate(zip(*arrays)):
        try:
            stability = full_space_stability(activation, r, s, c, a, K, rtol=rtol)
        except ValueError as error:
            raise ValueError(f"state {i} (alpha = {a!r}) is invalid: {error}") from None
        counts[i] = stability.n_unstable
        descriptions[i] = stability.description
    return counts, descriptions


# -- symmetry-breaking bifurcations along a branch -----------------------------------


@dataclass(frozen=True)
class FullSpaceBifurcation:
    """A point of a site-symmetric branch where a non-trivial block is singular.

    Attributes
    ----------
    branch : str
        Name of the site-symmetric branch.
    block : str
        The symmetry block whose eigenvalue crosses zero.
    multiplicity : int
        Dimension of the null space of the full Hessian from this block.
    alpha : float
    alpha_error : float
        Estimated absolute error of ``alpha``: the largest of the
        root-finding tolerance, the rounding error of the eigenvalue divided
        by its slope, and four times the change of the crossing when its
        state is solved again from the two ends of the segment (the error
        of the state, which dominates where the Hessian is nearly singular).
    R, S, C : float
        The site-symmetric state at ``alpha``.
    null_vector : ndarray
        Unit null vector of the block matrix, in the block's basis.
    eigenvalue_slope : float
        Derivative of the crossing eigenvalue with respect to alpha along the
        branch, by central differences. A negative slope means that the
        block gains an unstable direction as alpha grows, a positive one that
        it loses one.
    singular_in_ansatz : bool
        True when the trivial block changes its number of negative
        eigenvalues between the same two points of the branch, so that the
        point is also a branch point or fold inside the site-symmetric
        ansatz (as on the unspecialised branch, see the module docstring).
    """

    branch: str
    block: str
    multiplicity: int
    alpha: float
    alpha_error: float
    R: float
    S: float
    C: float
    null_vector: np.ndarray
    eigenvalue_slope: float
    singular_in_ansatz: bool


def _block_eigen(activation, u, alpha, K, name):
    """Return the eigen-decomposition, matrix and multiplicity of one block."""
    for block_name, matrix, multiplicity, _ in _block_matrices(
        activation, u[0], u[1], u[2], alpha, K
    ):
        if block_name == name:
            return np.linalg.eigh(matrix), matrix, multiplicity
    raise KeyError(name)


# Positions of each block's eigenvalues in the output of
# _kernels.symmetric_block_spectrum; absent blocks and entries are NaN.
_SPECTRUM_SLICES = (
    (TRIVIAL, slice(0, 3)),
    (STANDARD, slice(3, 7)),
    (TWO_ROW, slice(7, 9)),
    (HOOK, slice(9, 10)),
)


def _compiled_spectra(activation, u, alpha, K, term_scales=None):
    """Return ``{block name: ascending eigenvalues}`` from the compiled
    kernels, or None where only the Python path applies. A dict passed as
    ``term_scales`` receives the term scale of each block."""
    kind = _compiled_kind(activation)
    if kind is None or type(K) is not int:
        return None
    out = np.empty(_kernels.BLOCK_SPECTRUM_SIZE)
    if _kernels.symmetric_block_spectrum(
        kind, float(u[0]), float(u[1]), float(u[2]), float(alpha), K, out
    ):
        return None
    return _row_spectra(out, term_scales)


def _row_spectra(row, term_scales=None) -> dict:
    """Return ``{block name: ascending eigenvalues}`` from one output row of
    ``symmetric_block_spectrum``, and put each block's term scale into the
    dict ``term_scales`` if one is given."""
    spectra = {}
    for position, (name, part) in enumerate(_SPECTRUM_SLICES):
        values = row[part]
        values = values[~np.isnan(values)]
        if values.size:
            spectra[name] = values
            if term_scales is not None:
                term_scales[name] = float(row[10 + position])
    return spectra


def _spectra(activation, u, alpha, K, row=None) -> tuple:
    """Return the eigenvalues of each block at ``u``, their largest size and
    the term scale of each block (see :class:`Block`), from the compiled
    output ``row`` when it is given."""
    term_scales = {}
    if row is not None:
        spectra = _row_spectra(row, term_scales)
    else:
        spectra = _compiled_spectra(activation, u, alpha, K, term_scales)
    if spectra is None:
        blocks = _block_matrices(activation, u[0], u[1], u[2], alpha, K)
        spectra = {name: np.linalg.eigvalsh(matrix) for name, matrix, _, _ in blocks}
        term_scales = {name: terms for name, _, _, terms in blocks}
    scale = max(float(np.max(np.abs(values))) for values in spectra.values())
    return spectra, scale, term_scales


def _is_unspecialized(u) -> bool:
    return abs(u[0] - u[1]) <= 1e-9 * max(1.0, abs(u[0]))


class _Segment:
    r"""Stationary states between two consecutive points of a branch.

    The state at ``t`` in [0, 1] solves ``grad F(u, alpha) = 0`` together with
    ``tau . (z - z(t)) = 0``, where ``z = (y, ln alpha)``, ``z(t)`` is the
    linear interpolation of the two points and ``tau`` their unit secant: a
    pseudo-arclength parametrisation that stays regular at a fold, where a
    solve at fixed alpha would fail. On the unspecialised branch ``y`` is
    ``(R, C)`` with ``S = R``, which keeps ``R = S`` exactly. In ``(R, S, C)``
    the Hessian is singular at the branch point, where Newton's method would
    amplify rounding along ``R - S``. Elsewhere ``y = (R, S, C)``.
    """

    def __init__(self, problem: SpecializationProblem, u_a, alpha_a, u_b, alpha_b):
        self.problem = problem
        self.unspecialized = _is_unspecialized(u_a) and _is_unspecialized(u_b)
        if self.unspecialized:
            self.embedding = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        else:
            self.embedding = np.eye(3)
        self.z_a = self._coordinates(u_a, alpha_a)
        self.z_b = self._coordinates(u_b, alpha_b)
        secant = self.z_b - self.z_a
        self.tau = secant / np.linalg.norm(secant)

    def _coordinates(self, u, alpha) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        y = u[[0, 2]] if self.unspecialized else u
        return np.concatenate([y, [math.log(alpha)]])

    def state(self, t: float, start: float = -1.0):
        """Return ``(u, alpha)`` at the parameter ``t``. With ``start`` in
        [0, 1], the compiled iteration starts from the point of the secant
        at ``start`` instead of ``t`` (the Python one ignores it)."""
        problem, E = self.problem, self.embedding
        if problem._kind is not None:
            out = np.empty(4)
            status = _kernels.symmetric_segment_state(
                problem._kind,
                problem.K,
                self.z_a,
                self.z_b,
                self.tau,
                float(t),
                self.unspecialized,
                out,
                float(start),
            )
            if status == 0:
                return out[:3], float(out[3])
            raise StationaryPointError(
                f"Newton's method found no stationary state at t = {t!r} between "
                f"alpha = {math.exp(self.z_a[-1])!r} and {math.exp(self.z_b[-1])!r}"
            )
        z_t = (1.0 - t) * self.z_a + t * self.z_b
        z = z_t.copy()
        polished = False
        for _ in range(60):
            u, alpha = E @ z[:-1], math.exp(z[-1])
            gradient = E.T @ problem.gradient(u, alpha)
            jacobian = np.empty((z.size, z.size))
            jacobian[:-1, :-1] = E.T @ problem.hessian(u, alpha) @ E
            # d(grad F)/d ln(alpha) = alpha K grad eps_g.
            jacobian[:-1, -1] = alpha * problem.K * (E.T @ problem.error_gradient(u))
            jacobian[-1] = self.tau
            residual = np.concatenate([gradient, [self.tau @ (z - z_t)]])
            try:
                step = np.linalg.solve(jacobian, -residual)
            except np.linalg.LinAlgError:
                break
            factor = 1.0
            while not problem.is_valid(E @ (z + factor * step)[:-1]) and factor > 1e-8:
                factor *= 0.5
            z = z + factor * step
            if polished:
                return E @ z[:-1], math.exp(z[-1])
            # One more step after convergence: Newton's method then reaches the
            # rounding level.
            polished = np.max(np.abs(factor * step)) <= 1e-11 * max(
                1.0, np.max(np.abs(z))
            )
        raise StationaryPointError(
            f"Newton's method found no stationary state at t = {t!r} between "
            f"alpha = {math.exp(self.z_a[-1])!r} and {math.exp(self.z_b[-1])!r}"
        )


def _eigenvalue_at(activation, K, segment, name, index, t):
    u, alpha = segment.state(t)
    spectra = _compiled_spectra(activation, u, alpha, K)
    if spectra is not None:
        return spectra[name][index]
    (values, _), _, _ = _block_eigen(activation, u, alpha, K, name)
    return values[index]


def find_full_space_bifurcations(
    activation, K, branch, rtol: float = _DEFAULT_RTOL
) -> list:
    """Locate where a non-trivial block eigenvalue crosses zero along a branch.

    Such a point is a bifurcation that breaks the S_K symmetry of the
    site-symmetric states: a less symmetric branch of stationary points of
    the full free energy passes through it. Between consecutive points of the
    branch where an eigenvalue of a block changes sign, Brent's method finds
    its zero. At each trial point, Newton's method solves ``grad F = 0`` for
    the site-symmetric state again, together with a pseudo-arclength
    condition that stays regular through folds of the branch.

    Parameters
    ----------
    activation : Activation or str
    K : int
        Number of hidden units, ``K >= 2``.
    branch : StateBranch
        A branch of :func:`reluspec.solve`, or any object with arrays
        ``alpha``, ``R``, ``S``, ``C`` and a ``name``.
    rtol : float, default 1e-10
        An eigenvalue within ``rtol`` times the largest absolute eigenvalue
        of all blocks counts as zero at an unspecialised end point of a
        specialised branch (see Returns).

    Returns
    -------
    list of FullSpaceBifurcation
        Sorted by alpha. A specialised branch leaves the unspecialised one at
        the specialisation branch point, where ``(K - 1)^2`` eigenvalues of
        the full Hessian vanish at once and then change sign linearly in
        ``R - S``; those crossings are reported on the unspecialised branch
        only.

    Raises
    ------
    ValueError
        If ``K`` or ``rtol`` is invalid or a state of the branch is invalid.

    Notes
    -----
    An eigenvalue that crosses zero twice between two points of the branch
    is not found. NOTE: neither is a crossing between a branch point and
    the first traced point of a specialised branch; for ReLU at K >= 3e4
    the R < S states become stable in the full space there, within
    ``|R - S| < 1e-4`` of the branch point. :func:`label_branch` counts an
    eigenvalue within ``rtol`` of zero as zero, so near a crossing its labels
    can change one point of the branch later than the sign does.
    """
    activation = _activation(activation)
    K = _number_of_units(K)
    rtol = _check_rtol(rtol)
    problem = SpecializationProblem(activation, K)
    alpha = np.asarray(branch.alpha, dtype=float)
    u_all = np.column_stack([branch.R, branch.S, branch.C]).astype(float)
    name = getattr(branch, "name", "")
    table = _spectrum_table(activation, u_all, alpha, K)
    spectra = {}

    def spectrum(i):
        if i not in spectra:
            row = None if table is None else table[i]
            spectra[i] = _spectra(activation, u_all[i], alpha[i], K, row)
        return spectra[i]

    found = []
    for i in _segments_with_sign_changes(table, alpha.size):
        before, scale_before, terms_before = spectrum(i)
        after, scale_after, terms_after = spectrum(i + 1)
        crossings = []
        for block in BLOCK_NAMES[1:]:
            if block not in before:
                continue
            for index in np.flatnonzero(
                np.sign(before[block]) != np.sign(after[block])
            ):
                # Branch switching places the points next to the branch point
                # at the start (or, traced backwards, the end) of a branch.
                near_end = i <= 1 or i >= alpha.size - 3
                if _at_branch_point(
                    u_all[i],
                    before[block][index],
                    scale_before,
                    u_all[i + 1],
                    rtol,
                    near_end,
                    terms_before[block],
                ) or _at_branch_point(
                    u_all[i + 1],
                    after[block][index],
                    scale_after,
                    u_all[i],
                    rtol,
                    near_end,
                    terms_after[block],
                ):
                    continue
                crossings.append((block, int(index)))
        if not crossings:
            continue
        in_ansatz = bool(np.any(np.sign(before[TRIVIAL]) != np.sign(after[TRIVIAL])))
        segment = _Segment(problem, u_all[i], alpha[i], u_all[i + 1], alpha[i + 1])
        scale = max(scale_before, scale_after)
        for block, index in crossings:
            try:
                point = _crossing_point(
                    activation, K, segment, block, index, name, in_ansatz, rtol * scale
                )
            except StationaryPointError as error:
                logger.warning(
                    "could not locate the %s crossing on %r between alpha = %r "
                    "and %r: %s",
                    block,
                    name,
                    float(alpha[i]),
                    float(alpha[i + 1]),
                    error,
                )
                continue
            if point is not None:
                found.append(point)
    found.sort(key=lambda point: point.alpha)
    return found


def _spectrum_table(activation, u_all, alpha, K):
    """Return the output rows of ``symmetric_block_spectrum`` at every state
    of a branch from one compiled call, or None where the Python path is
    needed."""
    kind = _compiled_kind(activation)
    if kind is None:
        return None
    table = np.empty((alpha.size, _kernels.BLOCK_SPECTRUM_SIZE))
    if _kernels.symmetric_block_spectrum_many(
        kind,
        float(K),
        np.ascontiguousarray(alpha),
        np.ascontiguousarray(u_all),
        table,
    ):
        return None
    return table


def _segments_with_sign_changes(table, n_points):
    """Return the indices i of the segments (i, i + 1) of a branch on which an
    eigenvalue of a non-trivial block changes sign. Without a spectrum
    table every segment is returned."""
    if table is None:
        return range(n_points - 1)
    values = table[:, 3:10]  # standard, [K-2,2] and [K-2,1,1]; NaN if absent
    signs = np.sign(values)
    present = ~np.isnan(values)
    change = (signs[:-1] != signs[1:]) & present[:-1] & present[1:]
    return np.flatnonzero(change.any(axis=1)).tolist()


def _at_branch_point(
    u, value, scale, u_other, rtol, near_end=True, block_terms=math.inf
) -> bool:
    """Return True for a zero eigenvalue at an unspecialised end of a
    specialised segment: the specialisation branch point.

    The first point that branch switching places on a specialised branch
    (``near_end``: among the first or last two vertices) can have
    ``|R - S|`` of 1e-6 and less. There an eigenvalue that vanishes at the
    branch point and lies below ``1e-9`` of the terms of its own block
    (``block_terms``; the state itself is converged to about 1e-11) counts
    as zero too. A larger one has a sign of its own: at K = 1e4 the
    ``[K-2,1,1]`` eigenvalue is -3e-9 of its terms at ``|R - S| = 1e-4``
    and crosses zero further along the R < S branch.
    """
    if _is_unspecialized(u_other):
        return False
    if _is_unspecialized(u):
        return abs(value) <= rtol * scale
    near = abs(u[0] - u[1]) <= _NEAR_BRANCH_POINT * max(1.0, abs(u[0]))
    threshold = min(1e-6 * scale, 1e-9 * block_terms)
    return near_end and near and abs(value) <= threshold


# Largest |R - S| of a specialised state that counts as next to the branch
# point in _at_branch_point.
_NEAR_BRANCH_POINT = 1e-4


def _state_error(activation, K, segment, block, index, t, alpha, slope) -> float:
    """Estimate the part of a crossing's alpha error that comes from the
    error of its state.

    The state at ``t`` is solved again from the two ends of the segment.
    The estimate is four times the largest change of alpha plus the change
    of the eigenvalue over its slope. On near-singular segments (relu
    K = 1000) those solves spread by up to 6e-13 in alpha, 100 times the
    eigenvalue's rounding over its slope."""
    if segment.problem._kind is None or not slope:
        return 0.0
    reference = _eigenvalue_at(activation, K, segment, block, index, t)
    spread = 0.0
    for start in (0.0, 1.0):
        try:
            u, other = segment.state(t, start)
        except StationaryPointError:
            continue
        spectra = _compiled_spectra(activation, u, other, K)
        if spectra is None:
            continue
        value = spectra[block][index]
        spread = max(spread, abs(other - alpha) + abs(value - reference) / abs(slope))
    return 4.0 * spread


def _crossing_point(activation, K, segment, block, index, name, in_ansatz, zero):
    """Return the crossing of one block eigenvalue inside a segment, or None
    when it only touches zero (within ``zero``) at an end of the segment.

    The end at which a specialised branch leaves the unspecialised one is
    such a touch: the states next to the branch point differ by rounding,
    and the stored spectrum can give the vanishing eigenvalue either sign.
    """

    def eigenvalue(t):
        return _eigenvalue_at(activation, K, segment, block, index, t)

    ends = (eigenvalue(0.0), eigenvalue(1.0))
    if ends[0] == 0.0 or ends[1] == 0.0:
        t_root = 0.0 if ends[0] == 0.0 else 1.0
    elif np.sign(ends[0]) == np.sign(ends[1]) and min(map(abs, ends)) <= zero:
        logger.debug(
            "the %s eigenvalue on %r is zero to within %.3g at an end of the "
            "segment from alpha = %r and does not change sign inside it",
            block,
            name,
            zero,
            math.exp(segment.z_a[-1]),
        )
        return None
    elif np.sign(ends[0]) == np.sign(ends[1]):
        raise StationaryPointError(
            f"the {block} eigenvalue has the same sign at both ends of the segment "
            "after the states were solved again; the crossing is not bracketed"
        )
    else:
        t_root = brentq(eigenvalue, 0.0, 1.0, xtol=1e-15, rtol=4 * np.finfo(float).eps)

    u, alpha = segment.state(t_root)
    (_, vectors), matrix, multiplicity = _block_eigen(activation, u, alpha, K, block)

    # Slope in alpha by central differences in t, and the resulting errors:
    # the root tolerance in t and the rounding of the eigenvalue.
    h = 1e-6
    _, alpha_minus = segment.state(t_root - h)
    _, alpha_plus = segment.state(t_root + h)
    slope = (eigenvalue(t_root + h) - eigenvalue(t_root - h)) / (
        alpha_plus - alpha_minus
    )
    d_alpha_dt = abs(alpha_plus - alpha_minus) / (2.0 * h)
    rounding = 64.0 * np.finfo(float).eps * float(np.max(np.abs(matrix)))
    alpha_error = max(
        1e-15 * d_alpha_dt + 4.0 * np.finfo(float).eps * alpha,
        rounding / abs(slope) if slope else math.inf,
        _state_error(activation, K, segment, block, index, t_root, alpha, slope),
    )
    return FullSpaceBifurcation(
        branch=name,
        block=block,
        multiplicity=multiplicity,
        alpha=float(alpha),
        alpha_error=float(alpha_error),
        R=float(u[0]),
        S=float(u[1]),
        C=float(u[2]),
        null_vector=vectors[:, index],
        eigenvalue_slope=float(slope),
        singular_in_ansatz=in_ansatz,
    )
