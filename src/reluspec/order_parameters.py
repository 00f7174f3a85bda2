r"""Order parameters of a soft committee machine and their validation.

For a student with K hidden units (weight vectors ``J_k``) and a teacher with
M hidden units (``B_m``) in N input dimensions, the order parameters are

* ``R_km = J_k . B_m / N`` (student-teacher overlaps, K x M),
* ``Q_kl = J_k . J_l / N`` (student-student, K x K),
* ``T_mn = B_m . B_n / N`` (teacher-teacher, M x M).

For N -> infinity the hidden fields ``(x_k, y_m)`` are jointly Gaussian with
covariance

.. math::

    \Sigma = \begin{pmatrix} Q & R \\ R^T & T \end{pmatrix},

which must be symmetric positive semi-definite. In the site-symmetric ansatz
(M = K, T = identity, Q_kk = 1)

.. math::

    R_{km} = R\,\delta_{km} + S\,(1 - \delta_{km}), \qquad
    Q_{kl} = \delta_{kl} + C\,(1 - \delta_{kl}),

and :math:`\Sigma \succeq 0` reduces to the two eigenvalues of
:math:`Q - R R^T` being non-negative:
:math:`1 - C - (R - S)^2 \ge 0` (multiplicity K - 1) and
:math:`1 + (K - 1) C - (R + (K - 1) S)^2 \ge 0` (multiplicity 1).

Rounding: a pair correlation beyond 1 by at most
:data:`reluspec.activations.CORRELATION_TOLERANCE` (8 ulp of 1) and a
negative eigenvalue of size :data:`EIGENVALUE_TOLERANCE` times the matrix
dimension are accepted as rounding of valid order parameters.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from reluspec.activations import CORRELATION_TOLERANCE

__all__ = [
    "EIGENVALUE_TOLERANCE",
    "symmetric_matrices",
    "validate_order_parameters",
    "validate_site_symmetric",
]

#: Accepted negative eigenvalue, per unit of the matrix dimension, of the
#: joint covariance scaled to unit variances (and of the site-symmetric
#: eigenvalues, relative to the size of their terms).
EIGENVALUE_TOLERANCE: float = 64 * np.finfo(float).eps

# Relative asymmetry |Q_kl - Q_lk| / sqrt(Q_kk Q_ll) accepted as rounding.
_SYMMETRY_TOLERANCE = 8 * np.finfo(float).eps


def _matrix(name: str, value, shape=None) -> np.ndarray:
    """Convert to a finite 2-D float64 array, checking the shape."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a real matrix: {error}") from None
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix; got {array.ndim} dimensions")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {array.shape}")
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        k, m = (int(i) for i in bad[0])
        raise ValueError(f"{name}[{k}, {m}] = {float(array[k, m])!r} is not finite")
    return array


def _check_covariance_block(name: str, block: np.ndarray) -> None:
    """Check that a square block is symmetric with non-negative diagonal."""
    diagonal = np.diag(block)
    bad = np.flatnonzero(diagonal < 0)
    if bad.size:
        k = int(bad[0])
        raise ValueError(
            f"{name}[{k}, {k}] = {float(diagonal[k])!r} is a variance and must be >= 0"
        )
    scale = np.sqrt(np.outer(diagonal, diagonal))
    asymmetry = np.abs(block - block.T)
    bad = np.argwhere(asymmetry > _SYMMETRY_TOLERANCE * scale)
    if bad.size:
        k, l = (int(i) for i in bad[0])
        raise ValueError(
            f"{name} must be symmetric: {name}[{k}, {l}] = {float(block[k, l])!r} but "
            f"{name}[{l}, {k}] = {float(block[l, k])!r}"
        )


def _check_correlations(name: str, block, rows, columns) -> None:
    """Check |block_ij| <= sqrt(rows_i columns_j) within rounding."""
    bound = np.sqrt(np.outer(rows, columns)) * (1.0 + CORRELATION_TOLERANCE)
    bad = np.argwhere(np.abs(block) > bound)
    if bad.size:
        k, m = (int(i) for i in bad[0])
        raise ValueError(
            f"{name}[{k}, {m}] = {float(block[k, m])!r} exceeds the Cauchy-Schwarz "
            f"bound sqrt(variance_{k} variance_{m}) = "
            f"{math.sqrt(rows[k] * columns[m])!r}; "
            "a correlation must lie in [-1, 1]"
        )


def validate_order_parameters(R, Q, T=None):
    """Validate full order-parameter matrices.

    Parameters
    ----------
    R : array_like, shape (K, M)
        Student-teacher overlaps.
    Q : array_like, shape (K, K)
        Student-student overlaps; symmetric, diagonal >= 0.
    T : array_like, shape (M, M), optional
        Teacher-teacher overlaps; the identity when omitted.

    Returns
    -------
    R, Q, T : ndarray
        float64 copies; ``Q`` and ``T`` are symmetrised (``(Q + Q^T) / 2``).

    Raises
    ------
    ValueError
        If a matrix has the wrong shape or a non-finite entry, or if ``Q`` or
        ``T`` is not symmetric or has a negative diagonal entry. Also if an
        overlap exceeds the Cauchy-Schwarz bound of its variances (the
        message names the entry), or if the joint covariance
        ``[[Q, R], [R^T, T]]`` has a negative eigenvalue beyond rounding.
    """
    R = _matrix("R", R)
    K, M = R.shape
    if K < 1 or M < 1:
        raise ValueError(f"R must have at least one row and column; got {R.shape}")
    Q = _matrix("Q", Q, (K, K))
    T = np.eye(M) if T is None else _matrix("T", T, (M, M))
    _check_covariance_block("Q", Q)
    _check_covariance_block("T", T)
    Q = 0.5 * (Q + Q.T)
    T = 0.5 * (T + T.T)
    q, t = np.diag(Q), np.diag(T)
    _check_correlations("Q", Q, q, q)
    _check_correlations("T", T, t, t)
    _check_correlations("R", R, q, t)

    # Positive semi-definiteness of the joint covariance at unit variances;
    # a unit of zero variance has zero covariances (checked above).
    joint = np.block([[Q, R], [R.T, T]])
    variances = np.concatenate([q, t])
    scale = 1.0 / np.sqrt(np.where(variances > 0, variances, 1.0))
    eigenvalues, vectors = np.linalg.eigh(joint * np.outer(scale, scale))
    tolerance = EIGENVALUE_TOLERANCE * (K + M)
    if eigenvalues[0] < -tolerance:
        direction = vectors[:, 0]
        labels = [f"student {k}" for k in range(K)] + [f"teacher {m}" for m in range(M)]
        involved = ", ".join(labels[i] for i in np.flatnonzero(np.abs(direction) > 0.1))
        raise ValueError(
            "the joint covariance [[Q, R], [R^T, T]] is not positive semi-definite: "
            f"its smallest eigenvalue at unit variances is {eigenvalues[0]:.6g} "
            f"(valid: >= {-tolerance:.2g}); the offending direction involves "
            f"{involved}"
        )
    return R, Q, T


def _real_scalar(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} = {value!r} must be a real number") from None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} = {value!r} is not finite")
    return value


def validate_site_symmetric(R, S, C, K):
    """Validate site-symmetric order parameters ``(R, S, C, K)``.

    ``K`` is the number of student (and teacher) units; real ``K >= 1`` is
    accepted so that results can be continued in ``K``.

    Returns
    -------
    R, S, C, K : float

    Raises
    ------
    ValueError
        If a value is not finite, ``K < 1``, ``|R|``, ``|S|`` or ``|C|``
        exceeds 1 beyond rounding, or the joint covariance is not positive
        semi-definite: ``1 - C - (R - S)^2 < 0`` (only for ``K > 1``) or
        ``1 + (K - 1) C - (R + (K - 1) S)^2 < 0`` beyond rounding.
    """
    R = _real_scalar("R", R)
    S = _real_scalar("S", S)
    C = _real_scalar("C", C)
    K = _real_scalar("K", K)
    if K < 1:
        raise ValueError(f"K = {K!r} is invalid; the number of units must be >= 1")
    for name, value in (("R", R), ("S", S), ("C", C)):
        if abs(value) > 1.0 + CORRELATION_TOLERANCE:
            raise ValueError(
                f"{name} = {value!r} is a correlation and must lie in [-1, 1]"
            )
    where = f"at R = {R!r}, S = {S!r}, C = {C!r}, K = {K!r}"
    k1 = K - 1.0
    if k1 > 0:
        first = 1.0 - C - (R - S) ** 2
        size = 1.0 + abs(C) + (R - S) ** 2
        if first < -EIGENVALUE_TOLERANCE * size:
            raise ValueError(
                f"1 - C - (R - S)^2 = {first:.6g} {where} is negative: the joint "
                "covariance of student and teacher fields is not positive "
                "semi-definite (valid: >= 0)"
            )
    second = 1.0 + k1 * C - (R + k1 * S) ** 2
    size = 1.0 + abs(k1 * C) + (R + k1 * S) ** 2
    if second < -EIGENVALUE_TOLERANCE * size:
        raise ValueError(
            f"1 + (K - 1) C - (R + (K - 1) S)^2 = {second:.6g} {where} is negative: "
            "the joint covariance of student and teacher fields is not positive "
            "semi-definite (valid: >= 0)"
        )
    return R, S, C, K


def symmetric_matrices(R, S, C, K):
    """Return the full matrices ``(R, Q, T)`` of the site-symmetric ansatz.

    ``R_km = R delta_km + S (1 - delta_km)``, ``Q_kl = delta_kl + C (1 -
    delta_kl)``, ``T`` the K x K identity.

    Raises
    ------
    ValueError
        As :func:`validate_site_symmetric`, or if ``K`` is not an integer.
    """
    R, S, C, K_real = validate_site_symmetric(R, S, C, K)
    if K_real != int(K_real):
        raise ValueError(f"K = {K!r} must be an integer to build K x K matrices")
    K = int(K_real)
    R_matrix = np.full((K, K), S)
    np.fill_diagonal(R_matrix, R)
    Q_matrix = np.full((K, K), C)
    np.fill_diagonal(Q_matrix, 1.0)
    return R_matrix, Q_matrix, np.eye(K)
