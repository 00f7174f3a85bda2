r"""Entropy of student weight vectors with given order parameters.

For student weights ``J_k`` and teacher weights ``B_m`` in R^N, the volume of
student weights with overlaps ``R_km = J_k . B_m / N`` and ``Q_kl = J_k . J_l / N``
(teacher overlaps ``T_mn = B_m . B_n / N``) is, per input dimension and up to a
constant,

.. math::

    s = \tfrac12 \ln\det\left(Q - R T^{-1} R^\top\right),

the entropy term of the high-temperature free energy: ``Q - R T^-1 R^T`` is the
covariance of the student fields given the teacher fields. In the
site-symmetric ansatz (``T = 1``, ``Q_kk = 1``, ``R_km = R`` on the diagonal and
``S`` off it, ``Q_kl = C`` for ``k != l``) the matrix has the eigenvalue

.. math::

    A = 1 - C - (R - S)^2

with multiplicity ``K - 1`` and the eigenvalue

.. math::

    B = 1 + (K - 1) C - (R + (K - 1) S)^2

once, so that ``s = (K - 1)/2 ln A + 1/2 ln B``. Both arguments must be
positive, otherwise the order parameters describe no real weight vectors and the
functions raise ``ValueError``.

Accuracy: ``A`` and ``B`` are evaluated in factored form
(``A = (1 - (R - S)) (1 + (R - S)) - C`` with ``1 - (R - S) = (1 - R) + S``)
when the squared overlap is not small. This keeps their relative precision near
perfect learning (``R -> 1``, ``S, C -> 0``), where both go to zero. The entropy
itself is summed from three terms that are all at most 0 (see
:func:`symmetric_entropy`), so small entropies keep their relative precision
although ``ln A`` and ``ln B`` nearly cancel.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import mpmath
import numpy as np
import scipy.linalg

from reluspec.order_parameters import validate_order_parameters

__all__ = [
    "entropy",
    "entropy_gradient",
    "symmetric_entropy",
    "symmetric_entropy_gradient",
    "symmetric_entropy_derivatives",
    "symmetric_entropy_gradient_mp",
    "symmetric_entropy_hessian",
    "symmetric_entropy_mp",
    "symmetric_entropy_third_derivative",
]

_NO_WEIGHTS = "the order parameters describe no real weight vectors"

# Second derivatives of A and B in (R, S, C), which are constant because A and
# B are quadratic. The B matrix depends on K and is built in _b_hessian.
_A_HESSIAN = np.array([[-2.0, 2.0, 0.0], [2.0, -2.0, 0.0], [0.0, 0.0, 0.0]])


# -- validation --------------------------------------------------------------


def check_finite_scalar(name: str, value) -> float:
    """Return ``value`` as a float, raising ``ValueError`` unless it is finite."""
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} = {value!r} must be a finite real number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} = {value!r} must be a finite real number") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} = {value!r} must be a finite real number")
    return number


def check_number_of_units(K) -> float:
    """Return ``K`` as a float, raising ``ValueError`` unless ``1 <= K < inf``.

    Non-integer ``K`` is accepted so that continuation in ``K`` can pass through
    the site-symmetric formulas.
    """
    number = check_finite_scalar("K", K)
    if number < 1.0:
        raise ValueError(
            f"K = {K!r} is invalid: the number of hidden units must be at least 1"
        )
    return number


# -- site-symmetric ansatz ---------------------------------------------------


def _quadratic_log_argument(x, one_minus_x, one_plus_x, offset):
    """Return ``(1 - x^2 + offset, offset - x^2)`` without cancellation in ``1 - x^2``.

    ``one_minus_x`` and ``one_plus_x`` are ``1 - x`` and ``1 + x`` computed by the
    caller from the order parameters without rounding ``x`` first. Works for
    floats and mpmath numbers alike.
    """
    argument_minus_one = offset - x * x
    if abs(x) >= 0.5:
        # 1 - x^2 cancels as |x| -> 1, while the product of the factors does not.
        argument = one_minus_x * one_plus_x + offset
    else:
        # The argument can only reach 0 here if offset < -3/4, where 1 + offset
        # is exact in binary floating point.
        argument = (1 + offset) - x * x
    return argument, argument_minus_one


class _LogArguments(NamedTuple):
    """The two log arguments of the site-symmetric entropy and their pieces."""

    k: float  # K - 1
    d: float  # R - S
    u: float  # R + (K - 1) S
    A: float  # 1 - C - d^2
    A_minus_one: float
    B: float  # 1 + k C - u^2
    B_minus_one: float


def _log_arguments(R, S, C, k) -> _LogArguments:
    """Return the log arguments for ``k = K - 1``, in floats or in mpmath."""
    one_minus_R = 1 - R
    one_plus_R = 1 + R
    d = R - S
    u = R + k * S
    A, A_minus_one = _quadratic_log_argument(d, one_minus_R + S, one_plus_R - S, -C)
    B, B_minus_one = _quadratic_log_argument(
        u, one_minus_R - k * S, one_plus_R + k * S, k * C
    )
    return _LogArguments(k, d, u, A, A_minus_one, B, B_minus_one)


def _validated_log_arguments(R, S, C, K) -> _LogArguments:
    """Validate float inputs and return their log arguments."""
    R = check_finite_scalar("R", R)
    S = check_finite_scalar("S", S)
    C = check_finite_scalar("C", C)
    K = check_number_of_units(K)
    arguments = _log_arguments(R, S, C, K - 1.0)
    _check_positive(arguments, R, S, C, K)
    return arguments


def validate_symmetric_order_parameters(R, S, C, K):
    """Return ``(R, S, C, K)`` as floats after checking the domain of the entropy.

    Raises
    ------
    ValueError
        If an input is not finite, ``K < 1``, or ``1 - C - (R - S)^2`` (for
        ``K > 1``) or ``1 + (K - 1) C - (R + (K - 1) S)^2`` is not positive.
    """
    R = check_finite_scalar("R", R)
    S = check_finite_scalar("S", S)
    C = check_finite_scalar("C", C)
    K = check_number_of_units(K)
    _check_positive(_log_arguments(R, S, C, K - 1.0), R, S, C, K)
    return R, S, C, K


def _check_positive(arguments: _LogArguments, R, S, C, K) -> None:
    where = f"at R = {R}, S = {S}, C = {C}, K = {K}"
    # At K = 1 the A term carries the factor K - 1 = 0 and drops out.
    if arguments.k > 0 and not arguments.A > 0:
        raise ValueError(
            f"1 - C - (R - S)^2 = {float(arguments.A):.6g} {where} must be "
            f"positive: {_NO_WEIGHTS}"
        )
    if not arguments.B > 0:
        raise ValueError(
            f"1 + (K - 1) C - (R + (K - 1) S)^2 = {float(arguments.B):.6g} {where} "
            f"must be positive: {_NO_WEIGHTS}"
        )


def _log1p_minus_identity(x: float, one_plus_x: float) -> float:
    """Return ``ln(1 + x) - x``, which is at most 0, to full relative precision.

    ``one_plus_x`` is ``1 + x`` computed by the caller with full relative
    precision. For ``|x| <= 1/2`` the series
    ``ln(1 + x) - x = -x^2 / (2 + x) + 2 sum_{n >= 1} t^(2n+1) / (2n + 1)`` with
    ``t = x / (2 + x)``, ``|t| <= 1/3``, avoids the cancellation of the direct
    difference.
    """
    if abs(x) > 0.5:
        return math.log(one_plus_x) - x
    t = x / (2.0 + x)
    t_squared = t * t
    power = t * t_squared
    series = 0.0
    n = 3
    while power != 0.0:
        term = power / n
        series += term
        if abs(term) <= 1e-17 * abs(series):
            break
        power *= t_squared
        n += 2
    return -x * x / (2.0 + x) + 2.0 * series


def _log1p_minus_identity_mp(x, one_plus_x):
    """Return ``ln(1 + x) - x`` in mpmath, with the digits that cancel added."""
    if x == 0:
        return mpmath.mpf(0)
    if abs(x) > 0.5:
        return mpmath.log(one_plus_x) - x
    # The difference is about x^2 / 2, so about -log10|x| digits cancel.
    extra_digits = int(-mpmath.log10(abs(x))) + 5
    with mpmath.extradps(extra_digits):
        return mpmath.log1p(x) - x


def _argument_gradients(arguments: _LogArguments):
    """Return the gradients of ``A`` and ``B`` in ``(R, S, C)``."""
    k, d, u = arguments.k, arguments.d, arguments.u
    a = np.array([-2.0 * d, 2.0 * d, -1.0])
    b = np.array([-2.0 * u, -2.0 * k * u, k])
    return a, b


def _b_hessian(k):
    return np.array(
        [[-2.0, -2.0 * k, 0.0], [-2.0 * k, -2.0 * k * k, 0.0], [0.0, 0.0, 0.0]]
    )


def symmetric_entropy(R, S, C, K) -> float:
    r"""Compute the entropy of site-symmetric order parameters.

    .. math::

        s = \frac{K - 1}{2} \ln\left(1 - C - (R - S)^2\right)
          + \frac12 \ln\left(1 + (K - 1) C - (R + (K - 1) S)^2\right)

    Parameters
    ----------
    R, S : float
        Student-teacher overlaps of matching and of different units.
    C : float
        Overlap of two different student units (``Q_kk = 1``).
    K : float
        Number of hidden units, ``K >= 1``. Non-integer values continue the
        formula in ``K``. At ``K = 1`` the first term is absent.

    Returns
    -------
    float
        The entropy, which is at most 0 and is 0 only at ``R = S = C = 0``.

    Raises
    ------
    ValueError
        If an input is not finite, ``K < 1``, or either logarithm has a
        non-positive argument.

    Notes
    -----
    With ``k = K - 1``, ``d = R - S`` and ``u = R + k S``, the terms linear in
    ``C`` cancel analytically:

    .. math::

        s = -\frac{k d^2 + u^2}{2} + \frac{k}{2} \varphi(A - 1)
          + \frac12 \varphi(B - 1), \qquad \varphi(x) = \ln(1 + x) - x \le 0.

    All three terms are at most 0, so the sum keeps full relative precision and
    is never positive in floating point.
    """
    arguments = _validated_log_arguments(R, S, C, K)
    return _symmetric_entropy_from(arguments, _log1p_minus_identity)


def _symmetric_entropy_from(arguments: _LogArguments, log1p_minus_identity):
    k, d, u = arguments.k, arguments.d, arguments.u
    value = -(k * d * d + u * u) / 2
    value += log1p_minus_identity(arguments.B_minus_one, arguments.B) / 2
    if k > 0:
        value += k * log1p_minus_identity(arguments.A_minus_one, arguments.A) / 2
    return value


def symmetric_entropy_gradient(R, S, C, K) -> np.ndarray:
    r"""Compute the gradient of :func:`symmetric_entropy` in ``(R, S, C)``.

    With ``A = 1 - C - (R - S)^2``, ``B = 1 + (K - 1) C - (R + (K - 1) S)^2`` and
    ``k = K - 1``:

    .. math::

        \partial_R s = -\frac{k (R - S)}{A} - \frac{R + k S}{B}, \quad
        \partial_S s = \frac{k (R - S)}{A} - \frac{k (R + k S)}{B}, \quad
        \partial_C s = -\frac{k}{2A} + \frac{k}{2B}.

    Parameters and exceptions are those of :func:`symmetric_entropy`.

    Returns
    -------
    ndarray, shape (3,)
        ``(ds/dR, ds/dS, ds/dC)``.
    """
    arguments = _validated_log_arguments(R, S, C, K)
    a, b = _argument_gradients(arguments)
    return 0.5 * arguments.k * a / arguments.A + 0.5 * b / arguments.B


def symmetric_entropy_hessian(R, S, C, K) -> np.ndarray:
    r"""Compute the Hessian of :func:`symmetric_entropy` in ``(R, S, C)``.

    With ``a = grad A``, ``b = grad B`` and the constant second derivatives
    ``H_A``, ``H_B`` of the quadratic log arguments,

    .. math::

        \nabla^2 s = \frac{k}{2}\left(\frac{H_A}{A} - \frac{a a^\top}{A^2}\right)
                   + \frac12 \left(\frac{H_B}{B} - \frac{b b^\top}{B^2}\right),

    where ``H_A = [[-2, 2, 0], [2, -2, 0], [0, 0, 0]]`` and
    ``H_B = -2 [[1, k, 0], [k, k^2, 0], [0, 0, 0]]`` with ``k = K - 1``.
    Parameters and exceptions are those of :func:`symmetric_entropy`.

    Returns
    -------
    ndarray, shape (3, 3)
        Symmetric matrix of second derivatives in the order ``(R, S, C)``.
    """
    arguments = _validated_log_arguments(R, S, C, K)
    k, A, B = arguments.k, arguments.A, arguments.B
    a, b = _argument_gradients(arguments)
    hessian_A = _A_HESSIAN / A - np.outer(a, a) / (A * A)
    hessian_B = _b_hessian(k) / B - np.outer(b, b) / (B * B)
    return 0.5 * k * hessian_A + 0.5 * hessian_B


def symmetric_entropy_derivatives(R, S, C, K, order=2):
    """Return the derivatives of :func:`symmetric_entropy` up to ``order``.

    ``order = 2`` returns ``(gradient, hessian)`` and ``order = 3`` adds the
    third-derivative tensor. The inputs are validated once, so that one call
    costs less than the separate functions together; the values are those of
    :func:`symmetric_entropy_gradient`, :func:`symmetric_entropy_hessian` and
    :func:`symmetric_entropy_third_derivative`.
    """
    if order not in (2, 3):
        raise ValueError(f"order = {order!r} is invalid: it must be 2 or 3")
    arguments = _validated_log_arguments(R, S, C, K)
    k, A, B = arguments.k, arguments.A, arguments.B
    a, b = _argument_gradients(arguments)
    gradient = 0.5 * k * a / A + 0.5 * b / B
    b_hessian = _b_hessian(k)
    hessian = 0.5 * k * (_A_HESSIAN / A - np.outer(a, a) / (A * A)) + 0.5 * (
        b_hessian / B - np.outer(b, b) / (B * B)
    )
    if order == 2:
        return gradient, hessian
    third = 0.5 * k * _log_third_derivative(A, a, _A_HESSIAN) + 0.5 * (
        _log_third_derivative(B, b, b_hessian)
    )
    return gradient, hessian, third


def _log_third_derivative(value, gradient, hessian):
    """Return the third-derivative tensor of ``ln f`` for a quadratic ``f``.

    ``d^3 ln f = -(f_ij f_k + f_ik f_j + f_jk f_i) / f^2 + 2 f_i f_j f_k / f^3``
    because the third derivatives of ``f`` vanish.
    """
    hessian_times_gradient = np.einsum("ij,k->ijk", hessian, gradient)
    symmetrised = (
        hessian_times_gradient
        + hessian_times_gradient.transpose(0, 2, 1)
        + hessian_times_gradient.transpose(2, 1, 0)
    )
    cube = np.einsum("i,j,k->ijk", gradient, gradient, gradient)
    return -symmetrised / value**2 + 2.0 * cube / value**3


def symmetric_entropy_third_derivative(R, S, C, K) -> np.ndarray:
    r"""Compute the third derivatives of :func:`symmetric_entropy`.

    Because ``A`` and ``B`` are quadratic in ``(R, S, C)``,

    .. math::

        \partial_i \partial_j \partial_l \ln A
        = -\frac{A_{ij} A_l + A_{il} A_j + A_{jl} A_i}{A^2}
          + \frac{2 A_i A_j A_l}{A^3},

    and likewise for ``B``, so that
    ``s_ijl = (K - 1)/2 (ln A)_ijl + 1/2 (ln B)_ijl``.
    Parameters and exceptions are those of :func:`symmetric_entropy`.

    Returns
    -------
    ndarray, shape (3, 3, 3)
        Tensor symmetric in all three indices, in the order ``(R, S, C)``.
    """
    arguments = _validated_log_arguments(R, S, C, K)
    k = arguments.k
    a, b = _argument_gradients(arguments)
    third_A = _log_third_derivative(arguments.A, a, _A_HESSIAN)
    third_B = _log_third_derivative(arguments.B, b, _b_hessian(k))
    return 0.5 * k * third_A + 0.5 * third_B


def symmetric_entropy_mp(R, S, C, K, dps=50):
    """Compute :func:`symmetric_entropy` in mpmath with ``dps`` decimal digits.

    Inputs may be floats, strings, integers or mpmath numbers; floats are taken
    at their exact binary value. The computation follows the same steps as in
    double precision, with 10 guard digits.

    Returns
    -------
    mpmath.mpf
        The entropy, rounded to ``dps`` digits.

    Raises
    ------
    ValueError
        As :func:`symmetric_entropy`, or if ``dps`` is not a positive integer.
    """
    dps = check_dps(dps)
    with mpmath.workdps(dps + 10):
        R, S, C, K = _to_mpf_arguments(R, S, C, K)
        arguments = _log_arguments(R, S, C, K - 1)
        _check_positive(arguments, R, S, C, K)
        value = _symmetric_entropy_from(arguments, _log1p_minus_identity_mp)
    with mpmath.workdps(dps):
        return +value


def symmetric_entropy_gradient_mp(R, S, C, K, dps=50):
    """Compute :func:`symmetric_entropy_gradient` in mpmath with ``dps`` digits.

    Inputs are converted as in :func:`symmetric_entropy_mp`.

    Returns
    -------
    list of mpmath.mpf
        ``[ds/dR, ds/dS, ds/dC]``, each rounded to ``dps`` digits.

    Raises
    ------
    ValueError
        As :func:`symmetric_entropy_mp`.
    """
    dps = check_dps(dps)
    with mpmath.workdps(dps + 10):
        R, S, C, K = _to_mpf_arguments(R, S, C, K)
        arguments = _log_arguments(R, S, C, K - 1)
        _check_positive(arguments, R, S, C, K)
        k, d, u, A, B = arguments.k, arguments.d, arguments.u, arguments.A, arguments.B
        gradient = [
            -k * d / A - u / B,
            k * d / A - k * u / B,
            k / (2 * B) - k / (2 * A),
        ]
    with mpmath.workdps(dps):
        return [+component for component in gradient]


def _to_mpf_arguments(R, S, C, K):
    """Convert and validate ``(R, S, C, K)`` at the current mpmath precision."""
    R, S, C, K = (to_mpf(name, x) for name, x in zip("RSCK", (R, S, C, K)))
    if K < 1:
        raise ValueError(
            f"K = {K} is invalid: the number of hidden units must be at least 1"
        )
    return R, S, C, K


def check_dps(dps) -> int:
    """Return ``dps`` as an int, raising ``ValueError`` unless 1 <= dps <= 10000."""
    if (
        isinstance(dps, bool)
        or not isinstance(dps, (int, np.integer))
        or not 1 <= dps <= 10_000
    ):
        raise ValueError(f"dps = {dps!r} must be an integer from 1 to 10000")
    return int(dps)


def to_mpf(name: str, value):
    """Convert ``value`` to an mpmath number at the current working precision."""
    try:
        number = mpmath.mpf(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} = {value!r} must be a finite real number") from None
    if not mpmath.isfinite(number):
        raise ValueError(f"{name} = {value!r} must be a finite real number")
    return number


# -- full order-parameter matrices -------------------------------------------


def _cholesky(name: str, matrix: np.ndarray, reason: str) -> np.ndarray:
    try:
        return scipy.linalg.cholesky(matrix, lower=True)
    except np.linalg.LinAlgError:
        smallest = float(np.linalg.eigvalsh(matrix)[0])
        raise ValueError(
            f"{name} is not positive definite (smallest eigenvalue "
            f"{smallest:.6g}): {reason}"
        ) from None


def _conditional_covariance(R, Q, T):
    """Return the Cholesky factors of ``T`` and ``Q - R T^-1 R^T``."""
    T_factor = _cholesky("T", T, "the teacher weight vectors must be independent")
    # W^T W = R T^-1 R^T with W = L_T^-1 R^T.
    W = scipy.linalg.solve_triangular(T_factor, R.T, lower=True)
    M = Q - W.T @ W
    M_factor = _cholesky("Q - R T^-1 R^T", M, _NO_WEIGHTS)
    return T_factor, M_factor


def entropy(R, Q, T=None) -> float:
    r"""Compute the entropy ``1/2 ln det(Q - R T^-1 R^T)`` of order parameters.

    Parameters
    ----------
    R : array_like, shape (K, M)
        Student-teacher overlaps ``R_km = J_k . B_m / N``.
    Q : array_like, shape (K, K)
        Symmetric student overlaps ``Q_kl = J_k . J_l / N``.
    T : array_like, shape (M, M), optional
        Symmetric positive-definite teacher overlaps; the identity by default.

    Returns
    -------
    float
        ``s = 1/2 ln det(Q - R T^{-1} R^T)``, computed from the Cholesky factor of
        the matrix as the sum of the logarithms of its diagonal.

    Raises
    ------
    ValueError
        As :func:`reluspec.order_parameters.validate_order_parameters` (bad
        shape, non-finite or asymmetric entries, a correlation outside
        ``[-1, 1]``, or a joint covariance that is not positive semi-definite),
        and also if ``T`` or ``Q - R T^-1 R^T`` is singular, where the entropy
        is ``-inf``.
    """
    R, Q, T = validate_order_parameters(R, Q, T)
    _, M_factor = _conditional_covariance(R, Q, T)
    return float(np.sum(np.log(np.diag(M_factor))))


def entropy_gradient(R, Q, T=None):
    r"""Compute the gradient of :func:`entropy` in ``R`` and ``Q``.

    With ``M = Q - R T^{-1} R^T``,

    .. math::

        \frac{\partial s}{\partial R} = -M^{-1} R T^{-1}, \qquad
        \frac{\partial s}{\partial Q_{kk}} = \tfrac12 (M^{-1})_{kk}, \qquad
        \frac{\partial s}{\partial Q_{kl}} = (M^{-1})_{kl} \quad (k \ne l).

    Because ``Q`` is symmetric, an off-diagonal entry ``dQ[k, l]`` is the
    derivative when ``Q_kl`` and ``Q_lk`` move together, and ``dQ`` is symmetric.
    The first-order change of ``s`` is therefore
    ``sum(dR * delta_R) + sum over k <= l of dQ[k, l] * delta_Q[k, l]``.

    Parameters and exceptions are those of :func:`entropy`.

    Returns
    -------
    dR : ndarray, shape (K, M)
    dQ : ndarray, shape (K, K)
    """
    R, Q, T = validate_order_parameters(R, Q, T)
    T_factor, M_factor = _conditional_covariance(R, Q, T)
    K = Q.shape[0]
    M_inverse = scipy.linalg.cho_solve((M_factor, True), np.eye(K))
    M_inverse = 0.5 * (M_inverse + M_inverse.T)
    # R T^-1 = (T^-1 R^T)^T because T is symmetric.
    R_T_inverse = scipy.linalg.cho_solve((T_factor, True), R.T).T
    dR = -M_inverse @ R_T_inverse
    dQ = M_inverse.copy()
    dQ[np.diag_indices(K)] *= 0.5
    return dR, dQ
