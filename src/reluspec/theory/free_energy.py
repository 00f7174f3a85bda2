r"""High-temperature free energy of a soft committee machine.

Training draws student weights from the Gibbs density ``exp(-beta E)``. In the
limit ``beta -> 0`` at fixed ``beta P / N``, the training energy may be replaced
by its average ``P eps_g``, and the typical student minimises

.. math::

    F = K \alpha \, \epsilon_g - s, \qquad \alpha = \frac{\beta P}{K N},

per input dimension and in units of the temperature, where ``eps_g`` is the
generalisation error (:mod:`reluspec.theory.generalization`) and ``s`` the
entropy of the order parameters (:mod:`reluspec.theory.entropy`). E. Oostwal,
M. Straat and M. Biehl, Physica A 564, 125517 (2021), arXiv:1910.07476, study
this model with ReLU and sigmoidal hidden units.

The site-symmetric functions take ``(R, S, C)`` with ``T = 1`` and ``Q_kk = 1``:

.. math::

    \epsilon_g = I(1) - I(R) + \frac{K - 1}{2}\left(I(C) - 2 I(S) + I(0)\right),

with ``I(rho)`` the pair correlation of unit-variance fields with correlation
``rho``. Derivatives are exact: they combine the closed-form derivatives of
``I`` with those of the entropy. The mpmath versions serve to refine special
points (folds, branch points) beyond double precision.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from reluspec import _kernels
from reluspec.activations import Activation, Erf, ReLU
from reluspec.theory.entropy import (
    check_dps,
    check_finite_scalar,
    entropy,
    entropy_gradient,
    symmetric_entropy,
    symmetric_entropy_derivatives,
    symmetric_entropy_gradient,
    symmetric_entropy_gradient_mp,
    symmetric_entropy_hessian,
    symmetric_entropy_mp,
    symmetric_entropy_third_derivative,
    to_mpf,
    validate_symmetric_order_parameters,
)
from reluspec.theory.generalization import (
    generalization_error,
    generalization_error_gradient,
    symmetric_generalization_error,
    symmetric_generalization_error_gradient,
    symmetric_generalization_error_hessian,
    symmetric_generalization_error_mp,
)

__all__ = [
    "free_energy",
    "free_energy_gradient",
    "symmetric_free_energy",
    "symmetric_free_energy_alpha_derivative_of_gradient",
    "symmetric_free_energy_derivatives",
    "symmetric_free_energy_gradient",
    "symmetric_free_energy_gradient_mp",
    "symmetric_free_energy_hessian",
    "symmetric_free_energy_mp",
    "symmetric_free_energy_third_derivative",
]

# Extra decimal digits carried inside the mpmath functions.
_GUARD_DIGITS = 10

# Activations whose site-symmetric free energy and derivatives the compiled
# functions of ``_kernels`` evaluate. They return the same bits as the
# Python expressions below, which remain the path for other activations and
# for inputs the compiled functions decline (then the Python path raises).
_COMPILED = (ReLU, Erf)


def _check_alpha(alpha) -> float:
    number = check_finite_scalar("alpha", alpha)
    if number < 0.0:
        raise ValueError(
            f"alpha = {alpha!r} is invalid: the number of examples per weight "
            "must be at least 0"
        )
    return number


def _check_inputs(R, S, C, alpha, K):
    """Validate the site-symmetric inputs and return them as floats.

    The domain of the entropy is checked before any pair correlation is
    evaluated, so that its error message names the violated condition.
    """
    alpha = _check_alpha(alpha)
    R, S, C, K = validate_symmetric_order_parameters(R, S, C, K)
    return R, S, C, alpha, K


# -- site-symmetric ansatz ---------------------------------------------------


def symmetric_free_energy(activation: Activation, R, S, C, alpha, K) -> float:
    r"""Compute the site-symmetric free energy ``F = K alpha eps_g - s``.

    .. math::

        F = K\alpha\left[I(1) - I(R) + \frac{K-1}{2}\left(I(C) - 2I(S) + I(0)\right)
            \right] - \frac{K-1}{2}\ln\left(1 - C - (R-S)^2\right)
            - \frac12 \ln\left(1 + (K-1)C - (R + (K-1)S)^2\right)

    Parameters
    ----------
    activation : Activation
        Activation of all hidden units of student and teacher.
    R, S : float
        Student-teacher overlaps of matching and of different units.
    C : float
        Overlap of two different student units (``Q_kk = 1``, ``T = 1``).
    alpha : float
        Examples per adjustable weight at high temperature,
        ``alpha = beta P / (K N) >= 0``.
    K : float
        Number of hidden units of student and teacher, ``K >= 1``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If an input is not finite, ``alpha < 0``, ``K < 1``, or the order
        parameters lie outside the domain of the entropy (see
        :func:`reluspec.theory.entropy.symmetric_entropy`).
    """
    if type(activation) in _COMPILED:
        try:
            value = _kernels.symmetric_free_energy(activation._kind, R, S, C, alpha, K)
        except TypeError:
            value = math.nan
        if not math.isnan(value):
            return value
    return _symmetric_free_energy_python(activation, R, S, C, alpha, K)


def _symmetric_free_energy_python(activation, R, S, C, alpha, K) -> float:
    """Evaluate :func:`symmetric_free_energy` by the Python expressions."""
    R, S, C, alpha, K = _check_inputs(R, S, C, alpha, K)
    entropy_part = symmetric_entropy(R, S, C, K)
    error = symmetric_generalization_error(activation, R, S, C, K)
    return K * alpha * float(error) - entropy_part


def symmetric_free_energy_gradient(activation: Activation, R, S, C, alpha, K):
    r"""Compute the gradient of :func:`symmetric_free_energy` in ``(R, S, C)``.

    .. math::

        \nabla F = K\alpha \nabla\epsilon_g - \nabla s, \qquad
        \nabla\epsilon_g = \left(-I'(R),\; -(K-1) I'(S),\;
        \tfrac{K-1}{2} I'(C)\right).

    Parameters and exceptions are those of :func:`symmetric_free_energy`.

    Returns
    -------
    ndarray, shape (3,)
        ``(dF/dR, dF/dS, dF/dC)``.
    """
    R, S, C, alpha, K = _check_inputs(R, S, C, alpha, K)
    error_gradient = symmetric_generalization_error_gradient(activation, R, S, C, K)
    entropy_part = symmetric_entropy_gradient(R, S, C, K)
    return K * alpha * np.asarray(error_gradient, dtype=float) - entropy_part


def symmetric_free_energy_hessian(activation: Activation, R, S, C, alpha, K):
    r"""Compute the Hessian of :func:`symmetric_free_energy` in ``(R, S, C)``.

    .. math::

        \nabla^2 F = K\alpha \nabla^2\epsilon_g - \nabla^2 s, \qquad
        \nabla^2\epsilon_g = \mathrm{diag}\left(-I''(R),\; -(K-1) I''(S),\;
        \tfrac{K-1}{2} I''(C)\right).

    A state is stable inside the ansatz where this matrix is positive definite.
    Parameters and exceptions are those of :func:`symmetric_free_energy`.

    Returns
    -------
    ndarray, shape (3, 3)
    """
    R, S, C, alpha, K = _check_inputs(R, S, C, alpha, K)
    error_hessian = symmetric_generalization_error_hessian(activation, R, S, C, K)
    entropy_part = symmetric_entropy_hessian(R, S, C, K)
    return K * alpha * np.asarray(error_hessian, dtype=float) - entropy_part


def symmetric_free_energy_alpha_derivative_of_gradient(
    activation: Activation, R, S, C, alpha, K
):
    r"""Compute ``d(grad F)/d alpha = K grad eps_g`` in ``(R, S, C)``.

    The free energy is linear in ``alpha``, so the result does not depend on
    ``alpha``. The argument is still validated, and it keeps the signature of
    the other functions of this module. The result is the column of the
    Jacobian of ``grad F = 0`` that belongs to the parameter ``alpha``, in
    continuation and in the augmented systems for folds and branch points.
    Parameters and exceptions are those of :func:`symmetric_free_energy`.

    Returns
    -------
    ndarray, shape (3,)
    """
    R, S, C, alpha, K = _check_inputs(R, S, C, alpha, K)
    error_gradient = symmetric_generalization_error_gradient(activation, R, S, C, K)
    return K * np.asarray(error_gradient, dtype=float)


def symmetric_free_energy_third_derivative(activation: Activation, R, S, C, alpha, K):
    r"""Compute the third derivatives of :func:`symmetric_free_energy`.

    Only the diagonal of the generalisation-error part is non-zero:

    .. math::

        F_{ijl} = K\alpha\,\partial_{ijl}\epsilon_g - s_{ijl}, \qquad
        \partial_{RRR}\epsilon_g = -I'''(R), \;
        \partial_{SSS}\epsilon_g = -(K-1) I'''(S), \;
        \partial_{CCC}\epsilon_g = \tfrac{K-1}{2} I'''(C),

    with ``s_ijl`` from
    :func:`reluspec.theory.entropy.symmetric_entropy_third_derivative`. Newton's
    method on the augmented systems that locate folds and branch points needs
    this tensor, contracted with a null vector of the Hessian.
    Parameters and exceptions are those of :func:`symmetric_free_energy`.

    Returns
    -------
    ndarray, shape (3, 3, 3)
        Tensor symmetric in its three indices, in the order ``(R, S, C)``.
    """
    R, S, C, alpha, K = _check_inputs(R, S, C, alpha, K)
    third_order_pair = [
        float(activation.unit_pair_derivative(rho, order=3)) for rho in (R, S, C)
    ]
    error_third = np.zeros((3, 3, 3))
    error_third[0, 0, 0] = -third_order_pair[0]
    error_third[1, 1, 1] = -(K - 1.0) * third_order_pair[1]
    error_third[2, 2, 2] = 0.5 * (K - 1.0) * third_order_pair[2]
    entropy_part = symmetric_entropy_third_derivative(R, S, C, K)
    return K * alpha * error_third - entropy_part


def symmetric_free_energy_derivatives(activation: Activation, R, S, C, alpha, K, order=2):
    """Return the derivatives of :func:`symmetric_free_energy` up to ``order``.

    ``order = 2`` returns ``(gradient, hessian, error_gradient)`` and
    ``order = 3`` adds the third-derivative tensor, where ``error_gradient``
    is the gradient of eps_g, so that ``K * error_gradient`` is the
    derivative of the gradient with respect to alpha. The values equal those
    of the separate functions of this module; one call validates the inputs
    once and evaluates each derivative of the pair correlation once, which is
    what Newton's method and continuation need at every iterate. For ReLU and
    erf, ``order = 2`` runs in compiled code and returns views of one array.
    """
    if order == 2 and type(activation) in _COMPILED:
        out = np.empty(15)
        try:
            status = _kernels.symmetric_free_energy_derivatives(
                activation._kind, R, S, C, alpha, K, out
            )
        except TypeError:
            status = 1
        if status == 0:
            return out[:3], out[3:12].reshape(3, 3), out[12:]
    return _symmetric_free_energy_derivatives_python(
        activation, R, S, C, alpha, K, order
    )


def _symmetric_free_energy_derivatives_python(activation, R, S, C, alpha, K, order):
    """Evaluate :func:`symmetric_free_energy_derivatives` by the Python
    expressions."""
    R, S, C, alpha, K = _check_inputs(R, S, C, alpha, K)
    entropy_parts = symmetric_entropy_derivatives(R, S, C, K, order)
    k1 = K - 1.0
    weights = np.array([-1.0, -k1, 0.5 * k1])

    def pair_derivative(n):
        return np.array([float(activation.unit_pair_derivative(x, order=n)) for x in (R, S, C)])

    error_gradient = weights * pair_derivative(1)
    error_curvature = weights * pair_derivative(2)
    gradient = K * alpha * error_gradient - entropy_parts[0]
    hessian = K * alpha * np.diag(error_curvature) - entropy_parts[1]
    if order == 2:
        return gradient, hessian, error_gradient
    error_third = np.zeros((3, 3, 3))
    error_third[np.arange(3), np.arange(3), np.arange(3)] = weights * pair_derivative(3)
    third = K * alpha * error_third - entropy_parts[2]
    return gradient, hessian, error_gradient, third


def _to_mpf_alpha(alpha):
    number = to_mpf("alpha", alpha)
    if number < 0:
        raise ValueError(
            f"alpha = {alpha!r} is invalid: the number of examples per weight "
            "must be at least 0"
        )
    return number


def symmetric_free_energy_mp(activation: Activation, R, S, C, alpha, K, dps=50):
    """Compute :func:`symmetric_free_energy` in mpmath with ``dps`` digits.

    Floats are taken at their exact binary value, and strings and mpmath
    numbers are accepted as well. Both parts are computed with 10 guard digits
    before the result is rounded.

    Returns
    -------
    mpmath.mpf

    Raises
    ------
    ValueError
        As :func:`symmetric_free_energy`, or if ``dps`` is not a positive
        integer.
    """
    dps = check_dps(dps)
    working_dps = dps + _GUARD_DIGITS
    with mpmath.workdps(working_dps):
        alpha = _to_mpf_alpha(alpha)
        entropy_part = symmetric_entropy_mp(R, S, C, K, dps=working_dps)
        error = symmetric_generalization_error_mp(
            activation, R, S, C, K, dps=working_dps
        )
        value = mpmath.mpf(K) * alpha * error - entropy_part
    with mpmath.workdps(dps):
        return +value


def symmetric_free_energy_gradient_mp(
    activation: Activation, R, S, C, alpha, K, dps=50
):
    r"""Compute :func:`symmetric_free_energy_gradient` in mpmath.

    The generalisation-error part is assembled from
    ``activation.unit_pair_derivative_mp`` as
    ``(-I'(R), -(K-1) I'(S), (K-1)/2 I'(C))``. Inputs are converted as in
    :func:`symmetric_free_energy_mp`.

    Returns
    -------
    list of mpmath.mpf
        ``[dF/dR, dF/dS, dF/dC]``, each rounded to ``dps`` digits.

    Raises
    ------
    ValueError
        As :func:`symmetric_free_energy_mp`.
    """
    dps = check_dps(dps)
    working_dps = dps + _GUARD_DIGITS
    with mpmath.workdps(working_dps):
        alpha = _to_mpf_alpha(alpha)
        # Validates R, S, C and K, so the pair correlations below see valid input.
        entropy_part = symmetric_entropy_gradient_mp(R, S, C, K, dps=working_dps)
        R, S, C, K = (mpmath.mpf(x) for x in (R, S, C, K))
        slopes = [
            activation.unit_pair_derivative_mp(rho, order=1, dps=working_dps)
            for rho in (R, S, C)
        ]
        error_gradient = [-slopes[0], -(K - 1) * slopes[1], (K - 1) * slopes[2] / 2]
        gradient = [
            K * alpha * error_part - entropy_component
            for error_part, entropy_component in zip(error_gradient, entropy_part)
        ]
    with mpmath.workdps(dps):
        return [+component for component in gradient]


# -- full order-parameter matrices -------------------------------------------


def free_energy(activation: Activation, R, Q, alpha, T=None) -> float:
    r"""Compute the free energy ``F = K alpha eps_g(R, Q, T) - s(R, Q, T)``.

    ``K`` is the number of student units (rows of ``R``), ``eps_g`` is
    :func:`reluspec.theory.generalization.generalization_error` and ``s`` is
    :func:`reluspec.theory.entropy.entropy`,
    ``s = 1/2 ln det(Q - R T^-1 R^T)``.

    Parameters
    ----------
    activation : Activation
    R : array_like, shape (K, M)
        Student-teacher overlaps.
    Q : array_like, shape (K, K)
        Symmetric student overlaps.
    alpha : float
        Examples per adjustable weight, ``alpha >= 0``.
    T : array_like, shape (M, M), optional
        Symmetric positive-definite teacher overlaps; the identity by default.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        On invalid ``alpha``, or as :func:`reluspec.theory.entropy.entropy` for
        invalid matrices.
    """
    alpha = _check_alpha(alpha)
    entropy_part = entropy(R, Q, T)
    K = np.shape(R)[0]
    error = generalization_error(activation, R, Q, T)
    return K * alpha * float(error) - entropy_part


def free_energy_gradient(activation: Activation, R, Q, alpha, T=None):
    r"""Compute the gradient of :func:`free_energy` in ``R`` and ``Q``.

    .. math::

        \frac{\partial F}{\partial R} = K\alpha \frac{\partial \epsilon_g}{\partial R}
            - \frac{\partial s}{\partial R}, \qquad
        \frac{\partial F}{\partial Q} = K\alpha \frac{\partial \epsilon_g}{\partial Q}
            - \frac{\partial s}{\partial Q}.

    Because ``Q`` is symmetric, an off-diagonal entry ``dQ[k, l]`` is the
    derivative when ``Q_kl`` and ``Q_lk`` move together, so the first-order
    change of ``F`` is ``sum(dR * delta_R)`` plus the sum of
    ``dQ[k, l] * delta_Q[k, l]`` over ``k <= l``. For site-symmetric matrices
    the chain rule gives ``dF/dR = trace(dR)``, ``dF/dS`` as the sum of the
    off-diagonal entries of ``dR`` and ``dF/dC`` as the sum of ``dQ`` above the
    diagonal.
    Parameters and exceptions are those of :func:`free_energy`.

    Returns
    -------
    dR : ndarray, shape (K, M)
    dQ : ndarray, shape (K, K)
    """
    alpha = _check_alpha(alpha)
    entropy_dR, entropy_dQ = entropy_gradient(R, Q, T)
    K = np.shape(R)[0]
    error_dR, error_dQ = generalization_error_gradient(activation, R, Q, T)
    dR = K * alpha * np.asarray(error_dR, dtype=float) - entropy_dR
    dQ = K * alpha * np.asarray(error_dQ, dtype=float) - entropy_dQ
    return dR, dQ
