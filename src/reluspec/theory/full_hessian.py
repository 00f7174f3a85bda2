r"""Gradient and Hessian of the free energy in the full order-parameter space.

The variables are every entry of the student-teacher matrix ``R`` (K x M) and
every entry ``Q_kl`` with ``k < l`` of the student-student matrix. The
diagonal ``Q_kk`` and the teacher matrix ``T`` are held fixed. The vector of
variables is

.. math::

    x = (R_{00}, R_{01}, \dots, R_{K-1,M-1},\;
         Q_{01}, Q_{02}, \dots, Q_{K-2,K-1}),

``R`` in row-major order followed by the upper triangle of ``Q`` in row-major
order, ``K M + K (K - 1) / 2`` numbers in all. A variable ``Q_kl`` moves
``Q_kl`` and ``Q_lk`` together.

The free energy is ``F = K alpha eps_g - s`` with
``s = 1/2 ln det M``, ``M = Q - R T^-1 R^T``
(:mod:`reluspec.theory.free_energy`). With ``W = M^-1``, ``G = W R T^-1`` and
``B = T^-1 R^T W R T^-1 + T^-1``, the identity
``d^2 ln det M = -tr(W dM W dM) + tr(W d^2 M)`` gives the second derivatives
of the entropy

.. math::

    \frac{\partial^2 s}{\partial R_{km}\,\partial R_{k'm'}}
        &= -G_{km'} G_{k'm} - W_{kk'} B_{mm'}, \\
    \frac{\partial^2 s}{\partial R_{km}\,\partial Q_{k'l'}}
        &= G_{k'm} W_{kl'} + W_{kk'} G_{l'm}, \\
    \frac{\partial^2 s}{\partial Q_{kl}\,\partial Q_{k'l'}}
        &= -W_{kk'} W_{ll'} - W_{kl'} W_{lk'}.

Each pair correlation of the generalisation error depends on one variable
only, so its part of the Hessian is diagonal:
``-K alpha / sqrt(K M) * d^2 I / dc12^2`` at ``(Q_kk, R_km, T_mm)`` for
``R_km`` and ``alpha d^2 I / dc12^2`` at ``(Q_kk, Q_kl, Q_ll)`` for ``Q_kl``.

Accuracy: ``W`` comes from a Cholesky factorisation of ``M``, so entries of
the Hessian carry a relative error of about the condition number of ``M``
times the machine epsilon. Near perfect learning ``M`` is close to singular;
the site-symmetric block method of :mod:`reluspec.analysis.stability` keeps
more digits there.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from reluspec.activations import Activation
from reluspec.order_parameters import validate_order_parameters

__all__ = [
    "from_full_variables",
    "full_free_energy_gradient_vector",
    "full_free_energy_hessian",
    "full_free_energy_hessian_vector_product",
    "full_variable_count",
    "full_variable_labels",
    "full_variables",
]


def _check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} = {value!r} is invalid; it must be an integer >= 1")
    return int(value)


def full_variable_count(K: int, M: int) -> int:
    """Return ``K M + K (K - 1) / 2``, the number of full-space variables.

    Raises
    ------
    ValueError
        If ``K`` or ``M`` is not an integer >= 1.
    """
    K = _check_size("K", K)
    M = _check_size("M", M)
    return K * M + K * (K - 1) // 2


def full_variable_labels(K: int, M: int) -> list[str]:
    """Return the names ``"R[k,m]"`` and ``"Q[k,l]"`` of the variables in order.

    Raises
    ------
    ValueError
        If ``K`` or ``M`` is not an integer >= 1.
    """
    K = _check_size("K", K)
    M = _check_size("M", M)
    labels = [f"R[{k},{m}]" for k in range(K) for m in range(M)]
    labels += [f"Q[{k},{l}]" for k in range(K) for l in range(k + 1, K)]
    return labels


def full_variables(R, Q) -> np.ndarray:
    """Return the vector ``x`` of full-space variables of ``(R, Q)``.

    Parameters
    ----------
    R : array_like, shape (K, M)
    Q : array_like, shape (K, K)
        Only the entries above the diagonal are read.

    Returns
    -------
    ndarray, shape (K M + K (K - 1) / 2,)
        ``R`` in row-major order, then ``Q_kl`` for ``k < l`` in row-major
        order.

    Raises
    ------
    ValueError
        If ``R`` is not a non-empty 2-D array or ``Q`` is not K x K.
    """
    R = np.asarray(R, dtype=float)
    Q = np.asarray(Q, dtype=float)
    if R.ndim != 2 or R.size == 0:
        raise ValueError(f"R must be a non-empty 2-D matrix; got shape {R.shape}")
    K = R.shape[0]
    if Q.shape != (K, K):
        raise ValueError(f"Q must have shape {(K, K)} to match R; got {Q.shape}")
    upper = np.triu_indices(K, 1)
    return np.concatenate([R.ravel(), Q[upper]])


def from_full_variables(x, K: int, M: int, diagonal=1.0):
    """Return ``(R, Q)`` from the full-space variables ``x``.

    Parameters
    ----------
    x : array_like, shape (K M + K (K - 1) / 2,)
        Variables in the order of :func:`full_variables`.
    K, M : int
        Numbers of student and teacher units.
    diagonal : float or array_like of shape (K,), default 1.0
        The fixed diagonal ``Q_kk``.

    Returns
    -------
    R : ndarray, shape (K, M)
    Q : ndarray, shape (K, K)
        Symmetric.

    Raises
    ------
    ValueError
        If ``K`` or ``M`` is not an integer >= 1 or ``x`` has the wrong length.
    """
    n = full_variable_count(K, M)
    x = np.asarray(x, dtype=float)
    if x.shape != (n,):
        raise ValueError(
            f"x must have shape ({n},) for K = {K}, M = {M}; got {x.shape}"
        )
    R = x[: K * M].reshape(K, M).copy()
    Q = np.zeros((K, K))
    upper = np.triu_indices(K, 1)
    Q[upper] = x[K * M :]
    Q = Q + Q.T
    Q[np.diag_indices(K)] = diagonal
    return R, Q


@dataclass(frozen=True)
class _FullState:
    """Matrices shared by the gradient, the Hessian and its products."""

    K: int
    M: int
    alpha: float
    R: np.ndarray
    Q: np.ndarray
    W: np.ndarray  # (Q - R T^-1 R^T)^-1
    G: np.ndarray  # W R T^-1
    B: np.ndarray  # T^-1 R^T W R T^-1 + T^-1
    upper: tuple  # row and column indices of Q_kl, k < l
    slope_R: np.ndarray  # dI/dc12 at (Q_kk, R_km, T_mm)
    slope_Q: np.ndarray  # dI/dc12 at (Q_kk, Q_kl, Q_ll), k < l
    curvature_R: np.ndarray  # d^2 I / dc12^2 at (Q_kk, R_km, T_mm)
    curvature_Q: np.ndarray  # d^2 I / dc12^2 at (Q_kk, Q_kl, Q_ll), k < l

    @property
    def error_weight(self) -> float:
        """The factor ``K alpha / sqrt(K M)`` of the student-teacher term."""
        return self.K * self.alpha / math.sqrt(self.K * self.M)


def _positive_definite_inverse(name: str, matrix: np.ndarray, reason: str):
    try:
        factor = scipy.linalg.cho_factor(matrix, lower=True)
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(matrix)[0])
        raise ValueError(
            f"{name} is not positive definite (smallest eigenvalue "
            f"{smallest:.6g}): {reason}"
        ) from None
    inverse = scipy.linalg.cho_solve(factor, np.eye(matrix.shape[0]))
    return 0.5 * (inverse + inverse.T)


def _full_state(activation: Activation, R, Q, alpha, T) -> _FullState:
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha = {alpha!r} must be a real number") from None
    if not (math.isfinite(alpha) and alpha >= 0.0):
        raise ValueError(
            f"alpha = {alpha!r} is invalid: the number of examples per weight "
            "must be finite and at least 0"
        )
    R, Q, T = validate_order_parameters(R, Q, T)
    K, M = R.shape
    T_inverse = _positive_definite_inverse(
        "T", T, "the teacher weight vectors must be linearly independent"
    )
    R_T_inverse = R @ T_inverse
    W = _positive_definite_inverse(
        "Q - R T^-1 R^T",
        Q - R_T_inverse @ R.T,
        "the student weights given the teacher fields must have a non-singular "
        "covariance, otherwise the entropy is -inf",
    )
    G = W @ R_T_inverse
    B = R_T_inverse.T @ G + T_inverse
    B = 0.5 * (B + B.T)

    q = np.diag(Q)
    t = np.diag(T)
    upper = np.triu_indices(K, 1)
    _, slope_R, _ = activation.pair_gradient(q[:, None], R, t[None, :])
    curvature_R = activation.pair_hessian(q[:, None], R, t[None, :])[3]
    rows, columns = upper
    if rows.size:
        _, slope_Q, _ = activation.pair_gradient(q[rows], Q[upper], q[columns])
        curvature_Q = activation.pair_hessian(q[rows], Q[upper], q[columns])[3]
    else:
        slope_Q = curvature_Q = np.zeros(0)
    return _FullState(
        K=K,
        M=M,
        alpha=alpha,
        R=R,
        Q=Q,
        W=W,
        G=G,
        B=B,
        upper=upper,
        slope_R=np.asarray(slope_R, dtype=float).reshape(K, M),
        slope_Q=np.atleast_1d(np.asarray(slope_Q, dtype=float)),
        curvature_R=np.asarray(curvature_R, dtype=float).reshape(K, M),
        curvature_Q=np.atleast_1d(np.asarray(curvature_Q, dtype=float)),
    )


def full_free_energy_gradient_vector(activation: Activation, R, Q, alpha, T=None):
    r"""Compute the gradient of the free energy in the full-space variables.

    .. math::

        \frac{\partial F}{\partial R_{km}} = -\frac{K\alpha}{\sqrt{KM}}
            \partial_{12} I(Q_{kk}, R_{km}, T_{mm}) + (W R T^{-1})_{km},
        \qquad
        \frac{\partial F}{\partial Q_{kl}} = \alpha\,
            \partial_{12} I(Q_{kk}, Q_{kl}, Q_{ll}) - W_{kl},

    with ``W = (Q - R T^-1 R^T)^-1``; this is
    :func:`reluspec.theory.free_energy.free_energy_gradient` arranged in the
    order of :func:`full_variables`.

    Parameters
    ----------
    activation : Activation
    R : array_like, shape (K, M)
    Q : array_like, shape (K, K)
        Symmetric; its diagonal is held fixed.
    alpha : float
        Examples per adjustable weight, ``alpha >= 0``.
    T : array_like, shape (M, M), optional
        Teacher overlaps, the identity by default.

    Returns
    -------
    ndarray, shape (K M + K (K - 1) / 2,)

    Raises
    ------
    ValueError
        On invalid ``alpha`` or order parameters
        (:func:`reluspec.order_parameters.validate_order_parameters`), or if
        ``T`` or ``Q - R T^-1 R^T`` is singular.
    """
    state = _full_state(activation, R, Q, alpha, T)
    dR = -state.error_weight * state.slope_R + state.G
    dQ = state.alpha * state.slope_Q - state.W[state.upper]
    return np.concatenate([dR.ravel(), dQ])


def full_free_energy_hessian(activation: Activation, R, Q, alpha, T=None):
    r"""Compute the dense Hessian of the free energy in the full-space variables.

    The entropy part is given in the module docstring; the generalisation-error
    part is diagonal. The matrix has ``n = K M + K (K - 1) / 2`` rows and is
    built in ``O(n^2)`` memory and time, which limits it to K of a few tens;
    at site-symmetric states :func:`reluspec.analysis.stability.block_spectrum`
    gives its spectrum at any K.

    Parameters and exceptions are those of
    :func:`full_free_energy_gradient_vector`. For ReLU units the curvature of
    the pair correlation diverges at correlation +-1, and the corresponding
    diagonal entry is infinite.

    Returns
    -------
    ndarray, shape (n, n)
        Symmetric, in the order of :func:`full_variables`.
    """
    state = _full_state(activation, R, Q, alpha, T)
    K, M = state.K, state.M
    W, G, B = state.W, state.G, state.B
    rows, columns = state.upper
    n_R = K * M
    n_Q = rows.size
    hessian = np.empty((n_R + n_Q, n_R + n_Q))

    # R-R: -d^2 s = G[k, m'] G[k', m] + W[k, k'] B[m, m'], indexed (k, m, k', m').
    block = np.einsum("ab,cd->adcb", G, G).reshape(n_R, n_R) + np.kron(W, B)
    block[np.diag_indices(n_R)] -= state.error_weight * state.curvature_R.ravel()
    hessian[:n_R, :n_R] = block

    # R-Q: -d^2 s = -(G[k', m] W[k, l'] + W[k, k'] G[l', m]) for Q_k'l'.
    cross = np.einsum("pm,kp->kmp", G[rows, :], W[:, columns])
    cross += np.einsum("kp,pm->kmp", W[:, rows], G[columns, :])
    cross = -cross.reshape(n_R, n_Q)
    hessian[:n_R, n_R:] = cross
    hessian[n_R:, :n_R] = cross.T

    # Q-Q: -d^2 s = W[k, k'] W[l, l'] + W[k, l'] W[l, k'].
    block = W[np.ix_(rows, rows)] * W[np.ix_(columns, columns)]
    block += W[np.ix_(rows, columns)] * W[np.ix_(columns, rows)]
    block[np.diag_indices(n_Q)] += state.alpha * state.curvature_Q
    hessian[n_R:, n_R:] = block
    return hessian


def full_free_energy_hessian_vector_product(
    activation: Activation, R, Q, alpha, vector, T=None
):
    r"""Compute the product of the full-space Hessian with a vector.

    With the vector split into a K x M matrix ``V`` (the ``R`` part) and a
    symmetric K x K matrix ``U`` with zero diagonal (the ``Q`` part),

    .. math::

        (H x)_R &= e \circ V + G V^\top G + W V B - W U G, \\
        (H x)_{Q_{kl}} &= \alpha I''_{kl} U_{kl}
            + \left(W U W - G V^\top W - W V G^\top\right)_{kl},

    where ``e`` is the diagonal error curvature of the ``R`` entries and the
    other symbols are those of the module docstring. This costs
    ``O(K^2 M + K M^2)`` operations and no matrix of size ``n x n``.

    Parameters
    ----------
    activation, R, Q, alpha, T
        As :func:`full_free_energy_gradient_vector`.
    vector : array_like, shape (n,)
        In the order of :func:`full_variables`.

    Returns
    -------
    ndarray, shape (n,)

    Raises
    ------
    ValueError
        As :func:`full_free_energy_gradient_vector`, or if ``vector`` has the
        wrong shape or a non-finite entry.
    """
    state = _full_state(activation, R, Q, alpha, T)
    K, M = state.K, state.M
    W, G, B = state.W, state.G, state.B
    vector = np.asarray(vector, dtype=float)
    n = K * M + state.upper[0].size
    if vector.shape != (n,):
        raise ValueError(f"vector must have shape ({n},); got {vector.shape}")
    if not np.all(np.isfinite(vector)):
        raise ValueError("vector has a non-finite entry")
    V, U = from_full_variables(vector, K, M, diagonal=0.0)

    # An infinite ReLU curvature at correlation +-1 times a zero component
    # contributes nothing, rather than NaN.
    curvature_R = np.where(V != 0.0, state.curvature_R, 0.0)
    curvature_Q = np.where(U[state.upper] != 0.0, state.curvature_Q, 0.0)
    product_R = -state.error_weight * curvature_R * V
    product_R += G @ V.T @ G + W @ V @ B - W @ U @ G
    product_Q = W @ U @ W - G @ V.T @ W - W @ V @ G.T
    product_Q = product_Q[state.upper] + state.alpha * curvature_Q * U[state.upper]
    return np.concatenate([product_R.ravel(), product_Q])
