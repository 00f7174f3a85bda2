r"""Generalisation error of a soft committee machine.

With student fields ``x_k`` (K units) and teacher fields ``y_m`` (M units),
jointly Gaussian with covariance ``[[Q, R], [R^T, T]]``, and output
``sigma = sum_k g(x_k) / sqrt(K)``, ``tau = sum_m g(y_m) / sqrt(M)``:

.. math::

    \epsilon_g = \tfrac12 \langle (\sigma - \tau)^2 \rangle
    = \frac{1}{2K} \sum_{k,l} I(Q_{kk}, Q_{kl}, Q_{ll})
    - \frac{1}{\sqrt{KM}} \sum_{k,m} I(Q_{kk}, R_{km}, T_{mm})
    + \frac{1}{2M} \sum_{m,n} I(T_{mm}, T_{mn}, T_{nn}),

with ``I`` the pair correlation of the activation
(:meth:`reluspec.activations.Activation.pair`). In the site-symmetric ansatz
(M = K, T = identity, unit variances) with ``I(rho) = I(1, rho, 1)``:

.. math::

    \epsilon_g = I(1) - I(R) + \frac{K - 1}{2}\,\bigl(I(C) - 2 I(S) + I(0)\bigr)

(D. Saad and S. A. Solla, Phys. Rev. E 52, 4225, 1995, for erf units). The
site-symmetric functions evaluate ``I(1) - I(R)`` as the deficit
:meth:`~reluspec.activations.Activation.unit_pair_deficit` at ``1 - R`` and
split ``I(C) - 2 I(S) + I(0)`` into ``I'(0) (C - 2 S)`` and the parts beyond
linear order, so that small errors near perfect learning (``R -> 1``,
``S, C -> 0``) keep their relative precision.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from reluspec.activations import CORRELATION_TOLERANCE, Activation
from reluspec.order_parameters import validate_order_parameters, validate_site_symmetric

__all__ = [
    "generalization_error",
    "generalization_error_gradient",
    "symmetric_generalization_error",
    "symmetric_generalization_error_gradient",
    "symmetric_generalization_error_hessian",
    "symmetric_generalization_error_mp",
]


def generalization_error(activation: Activation, R, Q, T=None) -> float:
    r"""Return the generalisation error for full order-parameter matrices.

    Parameters
    ----------
    activation : Activation
        Hidden-unit activation of student and teacher.
    R : array_like, shape (K, M)
        Student-teacher overlaps ``R_km = J_k . B_m / N``.
    Q : array_like, shape (K, K)
        Student-student overlaps ``Q_kl = J_k . J_l / N``.
    T : array_like, shape (M, M), optional
        Teacher-teacher overlaps; the M x M identity when omitted.

    Returns
    -------
    float
        :math:`\epsilon_g` as in the module docstring; ``K != M`` is allowed.

    Raises
    ------
    ValueError
        If the order parameters are invalid
        (:func:`reluspec.order_parameters.validate_order_parameters`).

    Notes
    -----
    The three sums are of order 1 each, so the absolute error is a few ulp
    times ``K**2``. A tiny ``eps_g`` near perfect learning therefore has a
    larger relative error. The site-symmetric functions avoid that
    cancellation.
    """
    R, Q, T = validate_order_parameters(R, Q, T)
    K, M = R.shape
    q, t = np.diag(Q), np.diag(T)
    student = np.sum(activation.pair(q[:, None], Q, q[None, :]))
    cross = np.sum(activation.pair(q[:, None], R, t[None, :]))
    teacher = np.sum(activation.pair(t[:, None], T, t[None, :]))
    return float(student / (2 * K) - cross / math.sqrt(K * M) + teacher / (2 * M))


def generalization_error_gradient(activation: Activation, R, Q, T=None):
    r"""Return the gradient of :func:`generalization_error` in ``R`` and ``Q``.

    Convention: ``Q`` is symmetric and each unordered pair ``k != l`` is one
    variable, so ``dQ[k, l] = dQ[l, k]`` is the derivative when ``Q_kl`` and
    ``Q_lk`` change together. ``dQ[k, k]`` is the derivative with respect to
    the variance ``Q_kk``, which enters the diagonal term
    ``I(Q_kk, Q_kk, Q_kk)`` in all three places. To first order, a change
    ``(delta_R, delta_Q)`` with symmetric ``delta_Q`` changes the error by
    ``sum_{k,m} dR[k, m] delta_R[k, m] + sum_{k <= l} dQ[k, l] delta_Q[k, l]``.

    Returns
    -------
    dR : ndarray, shape (K, M)
        :math:`-\partial_{12} I(Q_{kk}, R_{km}, T_{mm}) / \sqrt{KM}`.
    dQ : ndarray, shape (K, K)
        Symmetric; off the diagonal
        :math:`\partial_{12} I(Q_{kk}, Q_{kl}, Q_{ll}) / K`.

    Raises
    ------
    ValueError
        If the order parameters are invalid, or a variance is 0 for an
        activation whose pair correlation is not differentiable there (ReLU).
    """
    R, Q, T = validate_order_parameters(R, Q, T)
    K, M = R.shape
    q, t = np.diag(Q), np.diag(T)
    norm = math.sqrt(K * M)

    # Cross term: dI/dc12 for R_km, dI/dc11 for the variance Q_kk.
    cross_11, cross_12, _ = activation.pair_gradient(q[:, None], R, t[None, :])
    dR = -cross_12 / norm

    # Student term: Q_kk is c11 of row k, c22 of column k, and all three
    # entries of the diagonal term (k, k).
    student_11, student_12, student_22 = activation.pair_gradient(
        q[:, None], Q, q[None, :]
    )
    dQ = (student_12 + student_12.T) / (2 * K)
    variance_part = (
        student_11.sum(axis=1) + student_22.sum(axis=0) + np.diag(student_12)
    ) / (2 * K) - cross_11.sum(axis=1) / norm
    np.fill_diagonal(dQ, variance_part)
    return dR, dQ


def _unit_terms(activation: Activation, R, S, C, K):
    """Return the deficit ``I(1) - I(R)`` and ``I(C) - 2 I(S) + I(0)``."""
    deficit = float(activation.unit_pair_deficit(1.0 - R))
    if K == 1:
        return deficit, 0.0
    slope = float(activation.unit_pair_derivative(0.0, order=1))
    nonlinear = float(activation.unit_pair_nonlinear(C)) - 2.0 * float(
        activation.unit_pair_nonlinear(S)
    )
    return deficit, slope * (C - 2.0 * S) + nonlinear


def symmetric_generalization_error(activation: Activation, R, S, C, K) -> float:
    r"""Return the site-symmetric generalisation error.

    .. math::

        \epsilon_g = I(1) - I(R) + \frac{K - 1}{2}\bigl(I(C) - 2 I(S) + I(0)\bigr)

    Parameters
    ----------
    activation : Activation
    R, S, C : float
        Diagonal and off-diagonal student-teacher overlaps, student-student
        overlap (unit variances, orthonormal teacher).
    K : float
        Number of units, ``K >= 1``; real values are allowed.

    Returns
    -------
    float
        Relative error of a few ulp, also near perfect learning: the
        difference ``I(1) - I(R)`` is evaluated from ``1 - R`` directly.

    Raises
    ------
    ValueError
        If the order parameters are invalid
        (:func:`reluspec.order_parameters.validate_site_symmetric`).
    """
    R, S, C, K = validate_site_symmetric(R, S, C, K)
    deficit, coupling = _unit_terms(activation, R, S, C, K)
    return deficit + 0.5 * (K - 1.0) * coupling


def symmetric_generalization_error_gradient(activation: Activation, R, S, C, K):
    r"""Return :math:`(\partial_R, \partial_S, \partial_C)\,\epsilon_g`.

    The components are ``-I'(R)``, ``-(K - 1) I'(S)`` and
    ``(K - 1)/2 I'(C)``, with ``I'`` the first derivative of the
    unit-variance pair correlation.

    Returns
    -------
    ndarray, shape (3,)

    Raises
    ------
    ValueError
        As :func:`symmetric_generalization_error`.
    """
    R, S, C, K = validate_site_symmetric(R, S, C, K)
    slope = activation.unit_pair_derivative
    k1 = K - 1.0
    return np.array(
        [
            -float(slope(R, order=1)),
            -k1 * float(slope(S, order=1)) if k1 else 0.0,
            0.5 * k1 * float(slope(C, order=1)) if k1 else 0.0,
        ]
    )


def symmetric_generalization_error_hessian(activation: Activation, R, S, C, K):
    r"""Return the 3 x 3 Hessian of :func:`symmetric_generalization_error`.

    The error is a sum of functions of one variable each, so the Hessian is
    ``diag(-I''(R), -(K - 1) I''(S), (K - 1)/2 I''(C))``. For ReLU units
    ``I''`` diverges at correlation +-1, so the corresponding entry is an
    infinity (``-inf`` at ``R = 1``). At ``K = 1`` the ``S`` and ``C``
    entries are 0.

    Returns
    -------
    ndarray, shape (3, 3)

    Raises
    ------
    ValueError
        As :func:`symmetric_generalization_error`.
    """
    R, S, C, K = validate_site_symmetric(R, S, C, K)
    curvature = activation.unit_pair_derivative
    k1 = K - 1.0
    hessian = np.zeros((3, 3))
    hessian[0, 0] = -float(curvature(R, order=2))
    if k1:
        hessian[1, 1] = -k1 * float(curvature(S, order=2))
        hessian[2, 2] = 0.5 * k1 * float(curvature(C, order=2))
    return hessian


def _validate_site_symmetric_mp(R, S, C, K):
    """Convert to mpf and check the domain at the current precision."""
    values = []
    for name, value in (("R", R), ("S", S), ("C", C), ("K", K)):
        try:
            value = mpmath.mpf(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} = {value!r} must be a real number") from None
        if not mpmath.isfinite(value):
            raise ValueError(f"{name} = {value} is not finite")
        values.append(value)
    R, S, C, K = values
    if K < 1:
        raise ValueError(f"K = {K} is invalid; the number of units must be >= 1")
    for name, value in (("R", R), ("S", S), ("C", C)):
        if abs(value) > 1 + CORRELATION_TOLERANCE:
            raise ValueError(
                f"{name} = {value} is a correlation and must lie in [-1, 1]"
            )
    # The mpmath inputs may carry more digits than a float, so the positive
    # semi-definiteness check is the float one on the rounded values.
    validate_site_symmetric(float(R), float(S), float(C), float(K))
    return R, S, C, K


def symmetric_generalization_error_mp(activation: Activation, R, S, C, K, dps=50):
    r"""Return :func:`symmetric_generalization_error` in mpmath.

    Evaluates ``I(1) - I(R) + (K - 1)/2 (I(C) - 2 I(S) + I(0))`` from
    :meth:`~reluspec.activations.Activation.unit_pair_mp` with enough guard
    digits for the cancellations near ``R = 1`` and ``S, C = 0``.

    Parameters
    ----------
    R, S, C, K
        Floats, strings or mpmath numbers; converted exactly.
    dps : int
        Decimal digits of the result.

    Returns
    -------
    mpmath.mpf

    Raises
    ------
    ValueError
        As :func:`symmetric_generalization_error`, or if ``dps`` is not a
        positive integer.
    """
    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 1:
        raise ValueError(f"dps = {dps!r} is invalid; it must be a positive integer")
    with mpmath.workdps(dps + 20):
        R, S, C, K = _validate_site_symmetric_mp(R, S, C, K)
        guard = 20
        for small in (1 - R, S, C):
            if small != 0:
                guard += max(0, int(-mpmath.log10(abs(small))) + 1)
    working = dps + guard
    with mpmath.workdps(working):
        pair = activation.unit_pair_mp
        value = pair(1, dps=working) - pair(R, dps=working)
        if K != 1:
            coupling = (
                pair(C, dps=working) - 2 * pair(S, dps=working) + pair(0, dps=working)
            )
            value += (K - 1) / 2 * coupling
    with mpmath.workdps(dps):
        return +value
