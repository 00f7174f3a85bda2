r"""The K -> infinity limit of the site-symmetric free energy, regular in 1/K.

Write the site-symmetric order parameters of K student and K teacher units in
the coordinates

.. math::

    d = R - S, \qquad m = R + (K - 1) S, \qquad c = (K - 1) C,
    \qquad B = 1 + c - m^2,

where ``m`` is the overlap of the summed student and teacher vectors and
``B`` the second argument of the entropy. At fixed ``alpha`` and large K,
``d`` stays of order 1 on every branch: 0 on the unspecialised one, and the
same ``+-d*`` on the two specialised ones of ReLU. The linear part of the
network is learnt with an error of order ``1/K``, so ``1 - m`` and ``B`` are
of order ``eps = 1/K``. The rescaled variables

.. math::

    \mu = \frac{1 - m}{\epsilon}, \qquad b = \frac{B}{\epsilon}, \qquad
    \epsilon = \frac1K,

are of order 1, and ``R, S, C`` follow as ``S = eps (1 - d - eps mu)``,
``R = d + S``, ``C = eps^2 gamma / (1 - eps)`` with
``gamma = b - 2 mu + eps mu^2``. The map is exact for every real ``K >= 2``.

Free energy per hidden unit
---------------------------
Split the pair correlation as ``I(x) = I(0) + a x + N(x)`` with
``a = I'(0)`` (1/4 for ReLU, 1/pi for erf). The linear part of the network
contributes ``(a/2)(B + (1 - m)^2)`` to the error, and

.. math::

    f(d, \mu, b; \alpha, \epsilon) = \frac{F}{K} + \frac{\epsilon}{2}\ln\epsilon
    = \alpha\Bigl[N(1) - N(R) - (1-\epsilon)\,\epsilon\,\sigma^2 n_2(S)
      + \frac{\epsilon^3 \gamma^2 n_2(C)}{2(1-\epsilon)}\Bigr]
    - \frac{1-\epsilon}{2}\ln A
    + \epsilon\Bigl[\frac{\alpha a}{2}(b + \epsilon\mu^2) - \frac12\ln b\Bigr],

with ``sigma = 1 - d - eps mu``, ``A = 1 - C - d^2`` and
``n_2(x) = N(x) / x^2``, which is regular at 0. Every term is a regular
function of ``eps``; the state-independent ``-(eps/2) ln eps`` is dropped.
Expanding in ``eps`` gives the hierarchy

.. math::

    f = f_0(d) + \epsilon f_1(d, b) + \epsilon^2 f_2(d, \mu, b) + O(\epsilon^3),

    f_0 = \alpha\,(N(1) - N(d)) - \tfrac12 \ln(1 - d^2),

    f_1 = -\alpha (1-d) N'(d) - \tfrac{\alpha}{2}(1-d)^2 N''(0)
          + \tfrac12\ln(1-d^2) + \tfrac{\alpha a}{2} b - \tfrac12 \ln b,

    f_2 = \alpha\mu\bigl(N'(d) + (1-d)N''(0)\bigr) + \tfrac{\alpha a}{2}\mu^2
          + \frac{b - 2\mu}{2(1-d^2)}
          - \tfrac{\alpha}{2} N''(d)(1-d)^2 + \tfrac{\alpha}{2} N''(0)(1-d)^2
          - \tfrac{\alpha}{6} N'''(0)(1-d)^3.

``f_0`` is the free energy per hidden unit at ``K = infinity``. It depends on
``d`` alone: ``f_1`` fixes ``b`` and ``f_2`` fixes ``mu``. For ReLU ``N`` is
even, so ``f_0`` is even in ``d`` and the states with ``R > S`` and
``R < S`` have the same ``d`` up to sign, the same free energy and the same
error ``N(1) - N(d*)`` at ``K = infinity``.

The expansion describes finite K only where ``eps b`` and ``eps mu`` are
small. ``b = 1/(alpha a)``, and on the unspecialised state ``mu`` is of
order ``1/(alpha a)`` at small alpha, so it needs ``K alpha a >> 1``: at
``alpha = 0.1`` the error of the unspecialised ReLU state approaches its
limit with a fitted exponent of 0.60 at K = 100, 0.96 at K = 1000 and
0.9994 at K = 10^4.

Regular stationarity equations
------------------------------
With ``F_d``, ``F_m``, ``F_c`` the derivatives of ``F`` in ``(d, m, c)``,
the residual

.. math::

    G = \Bigl(\frac{F_d}{K-1},\; -(F_m + 2 m F_c),\; 2\epsilon F_c\Bigr)
      = \bigl(d\,\Psi,\; -E_m + \mu G_b,\; G_b\bigr),

    \Psi = \frac1A - \alpha\,\frac{N'(R) - N'(S)}{d}, \qquad
    G_b = \alpha I'(C) + \frac{\epsilon}{A} - \frac1b,

    E_m = \frac{\alpha\,\epsilon\gamma\,q_1(C)}{1-\epsilon} + \frac1A - \frac{\mu}{b}
          - \alpha\bigl(N'(R) + (1-\epsilon)\,\sigma\, q_1(S)\bigr),

with ``q_1(x) = N'(x) / x``, is the gradient of ``f`` in ``(d, mu, b)``
multiplied by ``P = diag(1/(1-eps), 1/eps^2, 2/eps)``: every term is regular
at ``eps = 0``, where ``G = (f_0'(d), d f_2 / d mu, 2 d f_1 / d b)``. Its
Jacobian there is triangular with diagonal ``(f_0''(d), alpha a, 1/b^2)``, so
each state of ``f_0`` with ``f_0'' != 0`` continues to a unique regular
branch in ``eps``. The same formulas hold for small negative ``eps`` (an
analytic continuation without physical meaning), so that continuation in
``eps`` passes through ``eps = 0`` as an ordinary point.

``Psi = G_d / d`` is the curvature along the symmetry-breaking direction
divided by ``K - 1`` when ``d = 0``, ``Psi = 1/(1 - C) - alpha I''(S)``,
which vanishes at the branch point, and it is the residual whose zeros with
``d != 0`` are the specialised states. The divided difference is summed as
a Taylor series when ``d`` is small, so ``Psi`` keeps its absolute precision
as ``d -> 0``.

Scaling of the branch point
---------------------------
At ``K = infinity`` the branch point is where ``f_0''(0) = 1 - alpha N''(0)``
vanishes: ``alpha_c = 1 / I''(0) = 2 pi`` for ReLU. For erf ``I''(0) = 0``
and the branch point moves to ``alpha ~ K``: with ``alpha = K^k alpha~`` and
``w = eps^(1 + k)``, ``mu = (1 - m) / w`` and ``b = B / w``, the
unspecialised branch solves regular equations (see
:func:`unspecialized_residual`) and the branch point condition reads
``1/(1 - C) = alpha~ m^k I''(eps m) / (eps m)^k``, whose limit is
``alpha~_c = k! / I^(2+k)(0)``: ``2 pi`` for ReLU (``k = 0``) and ``4 pi``
for erf (``k = 1``).

Accuracy
--------
``N(x)`` comes from :meth:`~reluspec.activations.Activation.unit_pair_nonlinear`
with full relative precision near 0. The quotients ``N(x)/x^2``,
``N'(x)/x`` and the divided differences of ``I'`` and ``N`` are summed from
Taylor series where their arguments are small, from the recurrence of the
Taylor coefficients of ``I^(p)(x) = s (c - x^2)^(-1/2)`` (``p = 2``,
``s = 1/(2 pi)``, ``c = 1`` for ReLU; ``p = 1``, ``s = 2/pi``, ``c = 4`` for
erf), so that no term loses digits to cancellation as ``eps -> 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reluspec.activations import Activation, Erf, ReLU
from reluspec.theory.entropy import check_finite_scalar

__all__ = [
    "branch_point_scaling",
    "equal_free_energy_residual",
    "limit_free_energy",
    "limit_free_energy_gradient",
    "limit_free_energy_hessian",
    "order_parameters_to_scaled",
    "scaled_free_energy",
    "scaled_free_energy_gradient",
    "scaled_free_energy_hessian",
    "scaled_generalization_error",
    "scaled_stability_matrix",
    "scaled_stationarity",
    "scaled_stationarity_jacobian",
    "scaled_stationarity_parameter_derivatives",
    "scaled_to_order_parameters",
    "specialized_residual",
    "unspecialized_generalization_error",
    "unspecialized_residual",
]

# Highest Taylor order summed in the series below. A series is used only where
# its ratio of convergence is at most SERIES_RATIO, so that the terms beyond
# this order are below 0.35**40 ~ 6e-19 of the first.
_TAYLOR_ORDER = 40
_SERIES_RATIO = 0.35


class _PairSeries:
    """Taylor coefficients and small-argument quotients of one activation.

    The pair correlation ``I(x) = I(1, x, 1)`` has a derivative of order
    ``p`` equal to ``s (c - x^2)^(-1/2)``. With ``y = (c - x^2)^(-1/2)``,
    ``(c - x^2) y' = x y``, so the Taylor coefficients ``y_n`` of ``y`` at
    ``x0`` obey

        (c - x0^2) (n + 1) y_(n+1) = (2n + 1) x0 y_n + n y_(n-1),

    a forward recurrence that is stable because the coefficients grow like
    the dominant root ``1 / (sqrt(c) - |x0|)``.
    """

    def __init__(self, activation: Activation):
        if isinstance(activation, ReLU):
            self.order, self.scale, self.c = 2, 1.0 / (2.0 * math.pi), 1.0
        elif isinstance(activation, Erf):
            self.order, self.scale, self.c = 1, 2.0 / math.pi, 4.0
        else:
            raise ValueError(
                f"activation {activation!r} is not supported by the large-K "
                "theory: it needs the closed forms of ReLU() or Erf()"
            )
        self.activation = activation
        self.slope0 = float(activation.unit_pair_derivative(0.0, order=1))
        self.nonlinear_one = float(activation.unit_pair_nonlinear(1.0))
        # Series at 0 are used for |x| up to this bound.
        self.small = _SERIES_RATIO * math.sqrt(self.c)
        self.zero = self.taylor(0.0)
        # (order, power, derivative) -> (lowest power of x, coefficients) of
        # the series of quotient at 0, built on first use.
        self._quotient_series = {}

    def radius(self, x0: float) -> float:
        """Return the radius of convergence of the Taylor series of I at x0."""
        return math.sqrt(self.c) - abs(x0)

    def taylor(self, x0: float, order: int = _TAYLOR_ORDER) -> np.ndarray:
        """Return ``t_0..t_order`` with ``I(x0 + h) = sum_j t_j h^j``.

        ``t_1`` is ``I'(x0) - a``, the slope of the nonlinear part ``N``,
        and ``t_0`` is ``N(x0)``, so that the same coefficients expand ``N``.
        """
        act = self.activation
        coefficients = np.zeros(order + 1)
        coefficients[0] = float(act.unit_pair_nonlinear(x0))
        coefficients[1] = self.nonlinear_slope(x0) if x0 != 0.0 else 0.0
        p, gap = self.order, self.c - x0 * x0
        y_previous, y = 0.0, gap**-0.5
        for n in range(order + 1 - p):
            # t_(n+p) = s y_n n! / (n + p)!
            factor = 1.0
            for j in range(n + 1, n + p + 1):
                factor *= j
            coefficients[n + p] = self.scale * y / factor
            y_next = ((2 * n + 1) * x0 * y + n * y_previous) / (gap * (n + 1))
            y_previous, y = y, y_next
        if p == 1:
            # The recurrence gave I'(x0); the nonlinear part has slope I'(x0) - a.
            coefficients[1] = self.nonlinear_slope(x0) if x0 != 0.0 else 0.0
        return coefficients

    # -- the nonlinear part and its quotients ----------------------------------------
    def nonlinear(self, x: float) -> float:
        """Return ``N(x) = I(x) - I(0) - a x``."""
        return float(self.activation.unit_pair_nonlinear(x))

    def nonlinear_slope(self, x: float) -> float:
        """Return ``N'(x) = I'(x) - a`` with full relative precision."""
        if abs(x) <= self.small:
            return x * self.quotient(x, 1, 1)
        return float(self.activation.unit_pair_derivative(x, order=1)) - self.slope0

    def derivative(self, x: float, order: int) -> float:
        """Return ``I^(order)(x)`` for order 2 or 3 (equal to ``N^(order)``)."""
        return float(self.activation.unit_pair_derivative(x, order=order))

    def _nonlinear_derivative(self, x: float, order: int) -> float:
        if order == 0:
            return self.nonlinear(x)
        if order == 1:
            return self.nonlinear_slope(x)
        return self.derivative(x, order)

    def quotient(self, x: float, order: int, power: int, derivative: bool = False):
        """Return ``N^(order)(x) / x^power`` or its derivative in ``x``.

        Valid where the quotient is regular at 0 (the Taylor coefficients of
        ``N^(order)`` below ``x^power`` vanish). Summed from the series at 0
        for small ``|x|`` and formed directly otherwise.
        """
        if abs(x) <= self.small:
            lowest, coefficients = self._quotient_coefficients(order, power, derivative)
            total = 0.0
            for c in coefficients:
                total = total * x + c
            return total * x**lowest if lowest else total
        value = self._nonlinear_derivative(x, order) / x**power
        if not derivative:
            return value
        higher = self._nonlinear_derivative(x, order + 1) / x**power
        return higher - power * value / x

    def _quotient_coefficients(self, order: int, power: int, derivative: bool):
        """Return the lowest power of x and the coefficients, highest power
        first, of the series of :meth:`quotient` at 0 (for Horner's rule).

        ``N^(order)(x) = sum_j j!/(j - order)! t_j x^(j - order)``; dividing
        by ``x^power`` and differentiating term by term gives the rest.
        """
        key = (order, power, derivative)
        if key not in self._quotient_series:
            t = self.zero
            start = order + power + (1 if derivative else 0)
            coefficients = []
            for j in range(start, len(t)):
                falling = math.prod(range(j - order + 1, j + 1))
                exponent = j - order - power
                if derivative:
                    coefficients.append(falling * exponent * t[j])
                else:
                    coefficients.append(falling * t[j])
            lowest = start - order - power - (1 if derivative else 0)
            self._quotient_series[key] = (lowest, tuple(reversed(coefficients)))
        return self._quotient_series[key]

    def slope_difference(self, base: float, step: float):
        """Return ``D = (I'(base + step) - I'(base)) / step`` and its partial
        derivatives ``(D, dD/dbase, dD/dstep)``; ``D = I''(base)`` at step 0."""
        if abs(step) <= _SERIES_RATIO * self.radius(base):
            t = self.taylor(base)
            n = np.arange(len(t))
            powers = step ** np.maximum(n - 2, 0)
            value = float(np.sum((n * t)[2:] * powers[2:]))
            # d/dbase t_n = (n + 1) t_(n+1)
            shifted = np.append(t[1:] * n[1:], 0.0)
            d_base = float(np.sum((n * shifted)[2:] * powers[2:]))
            powers_h = step ** np.maximum(n - 3, 0)
            d_step = float(np.sum((n * (n - 2) * t)[3:] * powers_h[3:]))
            return value, d_base, d_step
        top = base + step
        value = (self.nonlinear_slope(top) - self.nonlinear_slope(base)) / step
        curvature_top = self.derivative(top, 2)
        d_base = (curvature_top - self.derivative(base, 2)) / step
        d_step = (curvature_top - value) / step
        return value, d_base, d_step

    def nonlinear_difference(self, base: float, top: float) -> float:
        """Return ``(N(top) - N(base)) / (top - base)``, ``N'(base)`` if equal."""
        step = top - base
        if step == 0.0:
            return self.nonlinear_slope(base)
        if abs(step) <= _SERIES_RATIO * self.radius(base):
            t = self.taylor(base)
            return float(t[1] + np.sum(t[2:] * step ** np.arange(1, len(t) - 1)))
        return (self.nonlinear(top) - self.nonlinear(base)) / step


_SERIES_CACHE: dict = {}


def _series(activation: Activation) -> _PairSeries:
    if not isinstance(activation, Activation):
        raise ValueError(f"activation must be an Activation, got {activation!r}")
    key = type(activation)
    if key not in _SERIES_CACHE:
        _SERIES_CACHE[key] = _PairSeries(activation)
    return _SERIES_CACHE[key]


# -- validation ------------------------------------------------------------------------


def _check_eps(eps, allow_negative=False) -> float:
    eps = check_finite_scalar("eps", eps)
    if allow_negative:
        # The analytic continuation used inside continuation in eps, which may
        # step a little beyond eps = 0 or eps = 1/2 before landing on a bound.
        if not -0.5 <= eps <= 0.75:
            raise ValueError(f"eps = {eps!r} is invalid: it must lie in [-1/2, 3/4]")
        return eps
    if not 0.0 <= eps <= 0.5:
        raise ValueError(
            f"eps = {eps!r} is invalid: eps = 1/K must lie in [0, 1/2] (K >= 2, "
            "eps = 0 is K = infinity)"
        )
    return eps


def _check_alpha(alpha) -> float:
    alpha = check_finite_scalar("alpha", alpha)
    if alpha < 0.0:
        raise ValueError(f"alpha = {alpha!r} is invalid: it must be at least 0")
    return alpha


@dataclass(frozen=True)
class _Point:
    """Order parameters and their pieces at a scaled point ``(d, mu, b, eps)``."""

    d: float
    mu: float
    b: float
    eps: float
    m: float  # 1 - eps mu
    sigma: float  # 1 - d - eps mu
    S: float
    R: float
    gamma: float  # b - 2 mu + eps mu^2
    C: float
    A: float  # 1 - C - d^2


def _point(d, mu, b, eps, allow_negative=False) -> _Point:
    d = check_finite_scalar("d", d)
    mu = check_finite_scalar("mu", mu)
    b = check_finite_scalar("b", b)
    eps = _check_eps(eps, allow_negative)
    # |d| may exceed 1 at finite K where C < 0, as on the R < S branch of ReLU
    # at large alpha. The domain is A = 1 - C - d^2 > 0 with |R|, |S| < 1,
    # checked below, so |d| < 2 is only a first bound.
    if not -2.0 < d < 2.0:
        raise ValueError(f"d = R - S = {d!r} is invalid: it must lie in (-2, 2)")
    if not b > 0.0:
        raise ValueError(
            f"b = {b!r} is invalid: b = K (1 + (K - 1) C - m^2) must be positive"
        )
    m = 1.0 - eps * mu
    sigma = 1.0 - d - eps * mu
    S = eps * sigma
    R = d + S
    gamma = b - 2.0 * mu + eps * mu * mu
    C = eps * eps * gamma / (1.0 - eps)
    A = (1.0 - d) * (1.0 + d) - C
    where = f"at d = {d!r}, mu = {mu!r}, b = {b!r}, eps = {eps!r}"
    if not A > 0.0:
        raise ValueError(
            f"1 - C - (R - S)^2 = {A:.6g} {where} must be positive: the order "
            "parameters describe no real weight vectors"
        )
    for name, value in (("R", R), ("S", S), ("C", C)):
        if not abs(value) < 1.0:
            raise ValueError(
                f"{name} = {value!r} {where} is a correlation and must lie in (-1, 1)"
            )
    return _Point(d, mu, b, eps, m, sigma, S, R, gamma, C, A)


# -- coordinates -----------------------------------------------------------------------


def scaled_to_order_parameters(d, mu, b, eps):
    """Return ``(R, S, C)`` of the scaled point ``(d, mu, b)`` at ``eps = 1/K``.

    ``S = eps (1 - d - eps mu)``, ``R = d + S``,
    ``C = eps^2 (b - 2 mu + eps mu^2) / (1 - eps)``.

    Raises
    ------
    ValueError
        If ``eps`` is outside ``[0, 1/2]``, ``|d| >= 2``, ``b <= 0`` or the
        point lies outside the domain of the entropy (``1 - C - d^2 > 0``
        and ``|R|, |S|, |C| < 1``).
    """
    p = _point(d, mu, b, eps)
    return p.R, p.S, p.C


def order_parameters_to_scaled(R, S, C, K):
    """Return ``(d, mu, b)`` of the site-symmetric ``(R, S, C)`` with K units.

    ``d = R - S``, ``mu = K (1 - m)``, ``b = K (1 + (K - 1) C - m^2)`` with
    ``m = R + (K - 1) S``. The inverse of :func:`scaled_to_order_parameters`;
    in double precision ``mu`` and ``b`` lose about ``log10(K)`` digits to
    the cancellation in ``1 - m``.

    Raises
    ------
    ValueError
        If an input is not finite or ``K < 2``.
    """
    R, S, C = (check_finite_scalar(n, v) for n, v in (("R", R), ("S", S), ("C", C)))
    K = check_finite_scalar("K", K)
    if K < 2.0:
        raise ValueError(f"K = {K!r} is invalid: the scaled variables need K >= 2")
    m = R + (K - 1.0) * S
    one_minus_m = (1.0 - R) - (K - 1.0) * S
    c = (K - 1.0) * C
    B = c + one_minus_m * (1.0 + m)
    return R - S, K * one_minus_m, K * B


# -- free energy, gradient, Hessian ----------------------------------------------------


def _free_energy(series: _PairSeries, p: _Point, alpha: float) -> float:
    eps = p.eps
    error = _error_nonlinear(series, p)
    entropy = 0.5 * (1.0 - eps) * math.log(p.A)
    linear = eps * (
        0.5 * alpha * series.slope0 * (p.b + eps * p.mu**2) - 0.5 * math.log(p.b)
    )
    return alpha * error - entropy + linear


def _error_nonlinear(series: _PairSeries, p: _Point) -> float:
    """Return ``N(1) - N(R) - (K-1) N(S) + (K-1) N(C) / 2`` in regular form."""
    eps = p.eps
    value = series.nonlinear_one - series.nonlinear(p.R)
    value -= (1.0 - eps) * eps * p.sigma**2 * series.quotient(p.S, 0, 2)
    value += eps**3 * p.gamma**2 * series.quotient(p.C, 0, 2) / (2.0 * (1.0 - eps))
    return value


def scaled_free_energy(activation: Activation, d, mu, b, alpha, eps) -> float:
    r"""Compute the free energy per hidden unit in the scaled variables.

    .. math::

        f = \frac{F}{K} + \frac{\epsilon}{2}\ln\epsilon,

    with ``F = K alpha eps_g - s`` the site-symmetric free energy
    (:func:`reluspec.theory.free_energy.symmetric_free_energy`) at the order
    parameters of :func:`scaled_to_order_parameters`, written as the regular
    function of ``eps`` in the module docstring. At ``eps = 0`` it is
    ``f_0(d) = alpha (N(1) - N(d)) - ln(1 - d^2) / 2``.

    Parameters
    ----------
    activation : Activation
        ``ReLU()`` or ``Erf()``.
    d : float
        ``R - S``, with ``1 - C - d^2 > 0``; ``|d|`` exceeds 1 where
        ``C < 0``, as on ReLU's ``R < S`` branch at large alpha and finite K.
    mu, b : float
        ``mu = K (1 - m)`` and ``b = K (1 + (K - 1) C - m^2) > 0`` with
        ``m = R + (K - 1) S``.
    alpha : float
        Examples per adjustable weight, ``alpha >= 0``.
    eps : float
        ``1 / K`` in ``[0, 1/2]``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If an input is invalid or outside the domain of the entropy.
    """
    series = _series(activation)
    alpha = _check_alpha(alpha)
    return _free_energy(series, _point(d, mu, b, eps), alpha)


@dataclass(frozen=True)
class _Derivatives:
    """Residual ``G``, ``Psi`` and their first derivatives at one point."""

    G: np.ndarray  # (d Psi, G_mu, G_b)
    psi: float
    jacobian: np.ndarray  # dG / d(d, mu, b)
    psi_gradient: np.ndarray  # dPsi / d(d, mu, b)
    reduced: dict  # off-diagonal Jacobian entries divided by their eps powers
    d_alpha: np.ndarray  # dG / dalpha
    psi_alpha: float
    d_eps: np.ndarray  # dG / deps
    psi_eps: float


def _derivatives(series: _PairSeries, p: _Point, alpha: float) -> _Derivatives:
    d, mu, b, eps = p.d, p.mu, p.b, p.eps
    A, C, S, R, sigma, gamma, m = p.A, p.C, p.S, p.R, p.sigma, p.gamma, p.m
    one_minus = 1.0 - eps
    inverse_A2 = 1.0 / (A * A)

    # Pieces: the divided difference of I', and the quotients of N.
    D, D_base, D_step = series.slope_difference(S, d)
    q1_C = series.quotient(C, 1, 1)
    q1_C_prime = series.quotient(C, 1, 1, derivative=True)
    q1_S = series.quotient(S, 1, 1)
    q1_S_prime = series.quotient(S, 1, 1, derivative=True)
    slope_C = series.slope0 + series.nonlinear_slope(C)
    curvature_C = series.derivative(C, 2)
    slope_R = series.nonlinear_slope(R)
    curvature_R = series.derivative(R, 2)

    # Derivatives of C in (mu, b) with the factor eps^2 / (1 - eps) taken out.
    c_mu, c_b = -2.0 * m / one_minus, 1.0 / one_minus
    C_mu, C_b = eps * eps * c_mu, eps * eps * c_b

    # Psi = 1/A - alpha D(S, d) and G_d = d Psi.
    psi = 1.0 / A - alpha * D
    psi_d = 2.0 * d * inverse_A2 - alpha * (D_step - eps * D_base)
    psi_mu_reduced = c_mu * inverse_A2 + alpha * D_base  # psi_mu / eps^2
    psi_b_reduced = c_b * inverse_A2  # psi_b / eps^2
    psi_gradient = np.array(
        [psi_d, eps * eps * psi_mu_reduced, eps * eps * psi_b_reduced]
    )

    # G_b = alpha I'(C) + eps / A - 1 / b.
    G_b = alpha * slope_C + eps / A - 1.0 / b
    Gb_d_reduced = 2.0 * d * inverse_A2  # dG_b/dd / eps
    Gb_curvature = alpha * curvature_C + eps * inverse_A2
    Gb_mu_reduced = Gb_curvature * c_mu  # dG_b/dmu / eps^2
    Gb_b = Gb_curvature * C_b + 1.0 / (b * b)

    # E_m = alpha eps gamma q1(C) / (1 - eps) + 1/A - mu/b
    #       - alpha (N'(R) + (1 - eps) sigma q1(S)).
    u = eps / one_minus
    E_m = (
        alpha * u * gamma * q1_C
        + 1.0 / A
        - mu / b
        - alpha * (slope_R + one_minus * sigma * q1_S)
    )
    # d/dd: the N' terms combine to -alpha (1 - eps)(N''(R) - N''(S)).
    Em_d = 2.0 * d * inverse_A2 - alpha * one_minus * (
        curvature_R - (q1_S + S * q1_S_prime)
    )
    Em_mu = (
        alpha * u * (-2.0 * m * q1_C + gamma * q1_C_prime * C_mu)
        + C_mu * inverse_A2
        - 1.0 / b
        - alpha
        * (curvature_R * (-eps * eps) + one_minus * (-eps) * (q1_S + S * q1_S_prime))
    )
    Em_b = (
        alpha * u * (q1_C + gamma * q1_C_prime * C_b) + C_b * inverse_A2 + mu / (b * b)
    )

    G_mu = -E_m + mu * G_b
    Gmu_d = -Em_d + mu * eps * Gb_d_reduced
    Gmu_mu = -Em_mu + G_b + mu * eps * eps * Gb_mu_reduced
    Gmu_b = -Em_b + mu * Gb_b

    jacobian = np.array(
        [
            [
                psi + d * psi_d,
                eps * eps * d * psi_mu_reduced,
                eps * eps * d * psi_b_reduced,
            ],
            [Gmu_d, Gmu_mu, Gmu_b],
            [eps * Gb_d_reduced, eps * eps * Gb_mu_reduced, Gb_b],
        ]
    )
    reduced = {
        "d_mu": d * psi_mu_reduced,
        "d_b": d * psi_b_reduced,
        "b_d": Gb_d_reduced,
        "b_mu": Gb_mu_reduced,
    }

    # Derivatives in alpha.
    psi_alpha = -D
    Em_alpha = u * gamma * q1_C - (slope_R + one_minus * sigma * q1_S)
    d_alpha = np.array([d * psi_alpha, -Em_alpha + mu * slope_C, slope_C])

    # Derivatives in eps.
    S_eps = sigma - eps * mu
    C_eps = gamma * eps * (2.0 - eps) / one_minus**2 + eps * eps * mu * mu / one_minus
    psi_eps = C_eps * inverse_A2 - alpha * D_base * S_eps
    Gb_eps = alpha * curvature_C * C_eps + 1.0 / A + eps * C_eps * inverse_A2
    u_eps = 1.0 / one_minus**2
    Em_eps = (
        alpha
        * (u_eps * gamma * q1_C + u * mu * mu * q1_C + u * gamma * q1_C_prime * C_eps)
        + C_eps * inverse_A2
        - alpha * curvature_R * S_eps
        - alpha
        * (-sigma * q1_S + one_minus * (-mu * q1_S + sigma * q1_S_prime * S_eps))
    )
    d_eps = np.array([d * psi_eps, -Em_eps + mu * Gb_eps, Gb_eps])

    G = np.array([d * psi, G_mu, G_b])
    return _Derivatives(
        G, psi, jacobian, psi_gradient, reduced, d_alpha, psi_alpha, d_eps, psi_eps
    )


def _inverse_weights(eps: float) -> np.ndarray:
    """Return ``1 / P``: the gradient of f is ``G / P``."""
    return np.array([1.0 - eps, eps * eps, 0.5 * eps])


def scaled_stationarity(activation: Activation, d, mu, b, alpha, eps) -> np.ndarray:
    r"""Compute the regular stationarity residual ``G`` of the scaled free energy.

    .. math::

        G = P\,\nabla_{(d, \mu, b)} f, \qquad
        P = \mathrm{diag}\Bigl(\frac{1}{1-\epsilon}, \frac{1}{\epsilon^2},
        \frac{2}{\epsilon}\Bigr),

    in the regular form of the module docstring, so that ``G`` is finite at
    ``eps = 0``, where it equals ``(f_0'(d), d f_2 / d mu, 2 d f_1 / d b)``.
    The stationary points of F at ``K = 1/eps`` are the zeros of G.
    Parameters and exceptions are those of :func:`scaled_free_energy`.

    Returns
    -------
    ndarray, shape (3,)
        ``(G_d, G_mu, G_b)``.
    """
    series = _series(activation)
    alpha = _check_alpha(alpha)
    return _derivatives(series, _point(d, mu, b, eps), alpha).G


def scaled_stationarity_jacobian(activation: Activation, d, mu, b, alpha, eps):
    """Compute ``dG / d(d, mu, b)`` of :func:`scaled_stationarity` exactly.

    At ``eps = 0`` the matrix is lower triangular with diagonal
    ``(f_0''(d), alpha a, 1/b^2)``. Parameters and exceptions are those of
    :func:`scaled_free_energy`.

    Returns
    -------
    ndarray, shape (3, 3)
    """
    series = _series(activation)
    alpha = _check_alpha(alpha)
    return _derivatives(series, _point(d, mu, b, eps), alpha).jacobian


def scaled_stationarity_parameter_derivatives(
    activation: Activation, d, mu, b, alpha, eps
):
    """Compute ``dG/dalpha`` and ``dG/deps`` of :func:`scaled_stationarity`.

    Parameters and exceptions are those of :func:`scaled_free_energy`.

    Returns
    -------
    d_alpha, d_eps : ndarray, shape (3,)
    """
    series = _series(activation)
    alpha = _check_alpha(alpha)
    derivatives = _derivatives(series, _point(d, mu, b, eps), alpha)
    return derivatives.d_alpha, derivatives.d_eps


def scaled_free_energy_gradient(activation: Activation, d, mu, b, alpha, eps):
    r"""Compute the exact gradient of :func:`scaled_free_energy` in ``(d, mu, b)``.

    .. math::

        \nabla f = \bigl((1 - \epsilon)\,G_d,\; \epsilon^2 G_\mu,\;
        \tfrac{\epsilon}{2} G_b\bigr)

    with ``G`` from :func:`scaled_stationarity`. Parameters and exceptions
    are those of :func:`scaled_free_energy`.

    Returns
    -------
    ndarray, shape (3,)
    """
    series = _series(activation)
    alpha = _check_alpha(alpha)
    p = _point(d, mu, b, eps)
    return _inverse_weights(p.eps) * _derivatives(series, p, alpha).G


def scaled_free_energy_hessian(activation: Activation, d, mu, b, alpha, eps):
    r"""Compute the exact Hessian of :func:`scaled_free_energy` in ``(d, mu, b)``.

    ``H = P^{-1} dG/dx``, symmetric; at ``eps = 0`` it is
    ``diag(f_0''(d), 0, 0)`` because f depends on ``mu`` and ``b`` only at
    order ``eps``. Parameters and exceptions are those of
    :func:`scaled_free_energy`.

    Returns
    -------
    ndarray, shape (3, 3)
    """
    series = _series(activation)
    alpha = _check_alpha(alpha)
    p = _point(d, mu, b, eps)
    hessian = _inverse_weights(p.eps)[:, None] * _derivatives(series, p, alpha).jacobian
    return 0.5 * (hessian + hessian.T)


def _stability_matrix(derivatives: _Derivatives, eps: float) -> np.ndarray:
    """Return ``P^(1/2) H P^(1/2)`` from the reduced Jacobian entries."""
    J, reduced = derivatives.jacobian, derivatives.reduced
    one_minus = 1.0 - eps
    root = math.sqrt(abs(eps))
    M = np.diag(np.diag(J)).astype(float)
    # M_ij = J_ij sqrt(P_j / P_i), with the powers of eps cancelled by hand.
    M[0, 1] = M[1, 0] = eps * math.sqrt(one_minus) * reduced["d_mu"]
    M[0, 2] = M[2, 0] = eps * root * math.sqrt(2.0 * one_minus) * reduced["d_b"]
    M[1, 2] = M[2, 1] = eps * root * reduced["b_mu"] / math.sqrt(2.0)
    return M


def scaled_stability_matrix(activation: Activation, d, mu, b, alpha, eps):
    r"""Compute the symmetric matrix whose inertia is that of the Hessian of F.

    ``M = P^{1/2} H P^{1/2}`` with ``H`` the Hessian of f
    (:func:`scaled_free_energy_hessian`). It is congruent to ``H`` and, for
    ``eps > 0``, to the Hessian of F in ``(R, S, C)``, so its negative
    eigenvalues count the unstable directions. It stays regular at
    ``eps = 0``, where it is ``diag(f_0''(d), alpha a, 1/b^2)``.
    Parameters and exceptions are those of :func:`scaled_free_energy`.

    Returns
    -------
    ndarray, shape (3, 3)
    """
    series = _series(activation)
    alpha = _check_alpha(alpha)
    p = _point(d, mu, b, eps)
    return _stability_matrix(_derivatives(series, p, alpha), p.eps)


def scaled_generalization_error(activation: Activation, d, mu, b, eps) -> float:
    r"""Compute the generalisation error of the scaled point.

    .. math::

        \epsilon_g = N(1) - N(R) - (1-\epsilon)\epsilon\sigma^2 n_2(S)
        + \frac{\epsilon^3\gamma^2 n_2(C)}{2(1-\epsilon)}
        + \frac{\epsilon a}{2}\bigl(b + \epsilon\mu^2\bigr),

    equal to :func:`reluspec.theory.generalization.symmetric_generalization_error`
    at the order parameters of :func:`scaled_to_order_parameters` and to
    ``N(1) - N(d)`` at ``eps = 0``.

    Raises
    ------
    ValueError
        As :func:`scaled_free_energy`.
    """
    series = _series(activation)
    p = _point(d, mu, b, eps)
    linear = 0.5 * p.eps * series.slope0 * (p.b + p.eps * p.mu**2)
    return _error_nonlinear(series, p) + linear


# -- the specialised-state residual ----------------------------------------------------


def _specialized(series, d, mu, b, alpha, eps):
    p = _point(d, mu, b, eps, allow_negative=True)
    derivatives = _derivatives(series, p, alpha)
    residual = np.array([derivatives.psi, derivatives.G[1], derivatives.G[2]])
    jacobian = derivatives.jacobian.copy()
    jacobian[0] = derivatives.psi_gradient
    d_alpha = derivatives.d_alpha.copy()
    d_alpha[0] = derivatives.psi_alpha
    d_eps = derivatives.d_eps.copy()
    d_eps[0] = derivatives.psi_eps
    return residual, jacobian, d_alpha, d_eps, derivatives, p


def specialized_residual(activation: Activation, d, mu, b, alpha, eps):
    r"""Compute ``(Psi, G_mu, G_b)`` with its derivatives, for states with ``d != 0``.

    ``Psi = G_d / d`` (module docstring) removes the trivial zero ``d = 0``
    of ``G_d``, so the zeros of this residual are the specialised states and
    its Jacobian is regular where two specialised states merge at the
    branch point. ``eps`` may lie in ``[-1/2, 3/4]``: beyond ``[0, 1/2]`` the
    formulas are the analytic continuation in ``eps``, which continuation
    in ``eps`` visits when it steps past a bound before landing on it.

    Returns
    -------
    residual : ndarray, shape (3,)
    jacobian : ndarray, shape (3, 3)
        Derivatives in ``(d, mu, b)``.
    d_alpha, d_eps : ndarray, shape (3,)
        Derivatives in ``alpha`` and ``eps``.

    Raises
    ------
    ValueError
        As :func:`scaled_free_energy`, with ``eps`` in ``[-1/2, 3/4]``.
    """
    series = _series(activation)
    alpha = _check_alpha(alpha)
    residual, jacobian, d_alpha, d_eps, _, _ = _specialized(
        series, d, mu, b, alpha, eps
    )
    return residual, jacobian, d_alpha, d_eps


# -- equal free energies ---------------------------------------------------------------


def _ratio_series(y: float) -> float:
    """Return ``(log1p(-y) + y / (1 - y)) / y^2 = sum_{n >= 2} (1 - 1/n) y^(n-2)``."""
    if abs(y) > 0.1:
        return (math.log1p(-y) + y / (1.0 - y)) / (y * y)
    return sum((1.0 - 1.0 / n) * y ** (n - 2) for n in range(2, 30))


def _breaking_part(series, p: _Point, psi: float, alpha: float) -> float:
    """Return ``[f(d) - f(0) - (1 - eps) d^2 Psi / 2] / d^3`` at fixed ``(mu, b)``."""
    d, eps, C = p.d, p.eps, p.C
    x0 = eps * p.m
    y = d * d / (1.0 - C)
    one_minus = 1.0 - eps
    if abs(d) <= _SERIES_RATIO * series.radius(x0) / max(one_minus, 1e-300):
        t = series.taylor(x0)
        total = 0.0
        for j in range(3, len(t)):
            kappa = one_minus * (one_minus ** (j - 1) - (-eps) ** (j - 1))
            total += (0.5 * j - 1.0) * t[j] * kappa * d ** (j - 3)
        return alpha * total - 0.5 * one_minus * d * _ratio_series(y) / (1.0 - C) ** 2
    # Direct form: (K - 1)(N(S) - N(x0)) = -(1 - eps) d DN(x0, S).
    nonlinear = (series.nonlinear(p.R) - series.nonlinear(x0)) - one_minus * d * (
        series.nonlinear_difference(x0, p.S)
    )
    delta = -alpha * nonlinear - 0.5 * one_minus * math.log1p(-y)
    return (delta - 0.5 * one_minus * d * d * psi) / d**3


def _unspecialized_difference(series, s: _Point, u: _Point, alpha: float) -> float:
    """Return ``f(0, mu_s, b_s) - f(0, mu_u, b_u)`` term by term.

    Every term is a difference formed without cancellation, so the sum keeps
    an absolute error of a few ulp of its largest term, which is of order
    ``eps`` times the change of the variables.
    """
    eps = s.eps
    one_minus = 1.0 - eps
    d_mu = s.mu - u.mu
    d_b = s.b - u.b
    sum_mu = s.mu + u.mu
    d_gamma = d_b - 2.0 * d_mu + eps * d_mu * sum_mu
    C_s = eps * eps * (u.gamma + d_gamma) / one_minus
    d_C = eps * eps * d_gamma / one_minus
    x0_u, x0_s = eps * u.m, eps * (u.m - eps * d_mu)
    nonlinear = eps * d_mu * series.nonlinear_difference(x0_u, x0_s)
    nonlinear += 0.5 * eps * d_gamma * series.nonlinear_difference(u.C, C_s)
    entropy = -0.5 * one_minus * math.log1p(-d_C / (1.0 - u.C))
    linear = eps * (
        0.5 * alpha * series.slope0 * (d_b + eps * d_mu * sum_mu)
        - 0.5 * math.log1p(d_b / u.b)
    )
    return alpha * nonlinear + entropy + linear


def equal_free_energy_residual(
    activation: Activation, specialized, unspecialized, alpha, eps
) -> float:
    r"""Compute ``Z = (f(x_s) - f(x_u)) / d^3`` in a form regular as ``d -> 0``.

    ``x_s = (d, mu_s, b_s)`` is a specialised and ``x_u = (0, mu_u, b_u)`` an
    unspecialised point. The residual is

    .. math::

        Z = \frac{f(d, \mu_s, b_s) - f(0, \mu_s, b_s) - (1-\epsilon) d^2 \Psi(x_s) / 2}
                 {d^3}
            + \frac{f(0, \mu_s, b_s) - f(0, \mu_u, b_u)}{d^3},

    which equals ``(f(x_s) - f(x_u)) / d^3`` where ``Psi(x_s) = 0`` (at a
    specialised state). The first part is summed from the Taylor series of
    ``N`` at ``eps m``, in which the ``d^2`` terms cancel exactly. The second
    part is summed term by term from differences formed without
    cancellation. So ``Z`` keeps its precision where the two free energies
    per unit agree to ``O(eps^4)``, as for ReLU near its branch point.

    Parameters
    ----------
    specialized : (float, float, float)
        ``(d, mu_s, b_s)`` with ``d != 0``.
    unspecialized : (float, float)
        ``(mu_u, b_u)``.
    alpha, eps : float
        As :func:`scaled_free_energy`, with ``eps`` in ``[-1/2, 3/4]``.

    Raises
    ------
    ValueError
        If ``d = 0`` or a point is invalid.
    """
    series = _series(activation)
    alpha = _check_alpha(alpha)
    d, mu_s, b_s = (float(v) for v in specialized)
    mu_u, b_u = (float(v) for v in unspecialized)
    if d == 0.0:
        raise ValueError("d = 0 is invalid: the specialised point needs R != S")
    s = _point(d, mu_s, b_s, eps, allow_negative=True)
    u = _point(0.0, mu_u, b_u, eps, allow_negative=True)
    psi = _derivatives(series, s, alpha).psi
    return (
        _breaking_part(series, s, psi, alpha)
        + _unspecialized_difference(series, s, u, alpha) / d**3
    )


# -- the unspecialised branch with alpha ~ K^k -----------------------------------------


def branch_point_scaling(activation: Activation) -> int:
    """Return ``k`` such that the branch point ``alpha_c`` grows like ``K^k``.

    ``k`` is the order of the first non-zero derivative ``I^(2+k)(0)``:
    0 for ReLU (``I''(0) = 1/(2 pi)``), 1 for erf (``I''(0) = 0``,
    ``I'''(0) = 1/(4 pi)``).
    """
    series = _series(activation)
    return 0 if series.zero[2] != 0.0 else 1


def unspecialized_residual(activation: Activation, mu, b, alpha_scaled, eps, k=None):
    r"""Compute the regular equations of the unspecialised branch and its branch point.

    With ``alpha = K^k alpha~``, ``w = eps^(1+k)``, ``m = 1 - w mu``,
    ``B = w b``, ``R = S = eps m``, ``gamma = b - 2 mu + w mu^2`` and
    ``C = w eps gamma / (1 - eps)``, the residual is

    .. math::

        G_\mu = -E_m + \mu G_b, \qquad
        G_b = \tilde\alpha I'(C) + \frac{w}{1 - C} - \frac1b,

        E_m = \frac{\tilde\alpha\,\epsilon\gamma q_1(C)}{1-\epsilon}
              + \frac{1}{1-C} - \frac{\mu}{b}
              - \tilde\alpha\, m^{1+k}\, \frac{N'(\epsilon m)}{(\epsilon m)^{1+k}},

        \Psi_0 = \frac{1}{1 - C} - \tilde\alpha\, m^k
                 \frac{I''(\epsilon m)}{(\epsilon m)^k},

    where ``G_mu = G_b = 0`` is the unspecialised state and ``Psi_0 = 0``
    (the vanishing curvature along ``R - S``) the branch point. All terms are
    regular at ``eps = 0``, where the branch point is
    ``alpha~ = k! / I^(2+k)(0)``, ``b = 1 / (alpha~ a)``.

    Parameters
    ----------
    activation : Activation
    mu, b : float
        Scaled variables, ``b > 0``.
    alpha_scaled : float
        ``alpha~ = alpha / K^k >= 0``.
    eps : float
        ``1/K`` in ``[-1/2, 3/4]``.
    k : int, optional
        0 or 1; by default :func:`branch_point_scaling`.

    Returns
    -------
    residual : ndarray, shape (3,)
        ``(G_mu, G_b, Psi_0)``.
    jacobian : ndarray, shape (3, 3)
        Derivatives in ``(mu, b, alpha~)``.
    d_eps : ndarray, shape (3,)
        Derivatives in ``eps``.

    Raises
    ------
    ValueError
        On invalid input, or ``k = 1`` for an activation with ``I''(0) != 0``,
        whose quotients would be singular.
    """
    series = _series(activation)
    mu = check_finite_scalar("mu", mu)
    b = check_finite_scalar("b", b)
    alpha_scaled = _check_alpha(alpha_scaled)
    eps = _check_eps(eps, allow_negative=True)
    if k is None:
        k = branch_point_scaling(activation)
    if k not in (0, 1):
        raise ValueError(f"k = {k!r} is invalid: it must be 0 or 1")
    if k == 1 and series.zero[2] != 0.0:
        raise ValueError(
            f"k = 1 is invalid for {activation!r}: I''(0) != 0, so the branch point "
            "stays finite and needs k = 0"
        )
    if not b > 0.0:
        raise ValueError(f"b = {b!r} is invalid: it must be positive")
    return _unspecialized(series, mu, b, alpha_scaled, eps, k)


def _unspecialized(series, mu, b, a_s, eps, k):
    # Newton's method and its predictor may propose b <= 0, where B = w b is
    # outside the domain of the entropy and 1/b is infinite or of the wrong
    # sign. The ValueError lets callers shorten the step.
    if not b > 0.0:
        raise ValueError(
            f"b = {b!r} at mu = {mu!r}, eps = {eps!r} is invalid: b = B/w must "
            "be positive"
        )
    one_minus = 1.0 - eps
    w = eps ** (1 + k)
    w_eps = (1 + k) * eps**k
    m = 1.0 - w * mu
    x0 = eps * m
    gamma = b - 2.0 * mu + w * mu * mu
    v = w * eps / one_minus  # C = v gamma
    C = v * gamma
    if not (abs(C) < 1.0 and abs(x0) < 1.0):
        raise ValueError(
            f"the unspecialised point mu = {mu!r}, b = {b!r}, eps = {eps!r} has "
            f"C = {C!r}, R = S = {x0!r}; both must lie in (-1, 1)"
        )
    inverse = 1.0 / (1.0 - C)

    # Quotients: Q = N'(x)/x^(1+k), Rq = I''(x)/x^k, and their derivatives.
    Q = series.quotient(x0, 1, 1 + k)
    Q_prime = series.quotient(x0, 1, 1 + k, derivative=True)
    Rq = series.quotient(x0, 2, k)
    Rq_prime = series.quotient(x0, 2, k, derivative=True)
    q1_C = series.quotient(C, 1, 1)
    q1_C_prime = series.quotient(C, 1, 1, derivative=True)
    slope_C = series.slope0 + series.nonlinear_slope(C)
    curvature_C = series.derivative(C, 2)

    m_mu, x0_mu = -w, -eps * w
    gamma_mu = -2.0 * m
    C_mu, C_b = v * gamma_mu, v
    u = eps / one_minus

    G_b = a_s * slope_C + w * inverse - 1.0 / b
    E_m = a_s * u * gamma * q1_C + inverse - mu / b - a_s * m ** (1 + k) * Q
    G_mu = -E_m + mu * G_b
    psi = inverse - a_s * m**k * Rq

    # Derivatives in (mu, b, alpha~).
    Gb_x = [
        (a_s * curvature_C + w * inverse**2) * C_mu,
        (a_s * curvature_C + w * inverse**2) * C_b + 1.0 / (b * b),
        slope_C,
    ]
    power_term_mu = (1 + k) * m**k * m_mu * Q + m ** (1 + k) * Q_prime * x0_mu
    Em_x = [
        a_s * u * (gamma_mu * q1_C + gamma * q1_C_prime * C_mu)
        + C_mu * inverse**2
        - 1.0 / b
        - a_s * power_term_mu,
        a_s * u * (q1_C + gamma * q1_C_prime * C_b) + C_b * inverse**2 + mu / (b * b),
        u * gamma * q1_C - m ** (1 + k) * Q,
    ]
    Gmu_x = [
        -Em_x[0] + G_b + mu * Gb_x[0],
        -Em_x[1] + mu * Gb_x[1],
        -Em_x[2] + mu * Gb_x[2],
    ]
    curvature_power_mu = (
        k * m ** (k - 1) * m_mu * Rq if k else 0.0
    ) + m**k * Rq_prime * x0_mu
    psi_x = [
        C_mu * inverse**2 - a_s * curvature_power_mu,
        C_b * inverse**2,
        -(m**k) * Rq,
    ]

    # Derivatives in eps.
    m_eps = -w_eps * mu
    x0_eps = m + eps * m_eps
    gamma_eps = w_eps * mu * mu
    v_eps = ((2 + k) * eps ** (1 + k) * one_minus + eps ** (2 + k)) / one_minus**2
    C_eps = v_eps * gamma + v * gamma_eps
    Gb_eps = a_s * curvature_C * C_eps + w_eps * inverse + w * C_eps * inverse**2
    u_eps = 1.0 / one_minus**2
    power_term_eps = (1 + k) * m**k * m_eps * Q + m ** (1 + k) * Q_prime * x0_eps
    Em_eps = (
        a_s
        * (u_eps * gamma * q1_C + u * gamma_eps * q1_C + u * gamma * q1_C_prime * C_eps)
        + C_eps * inverse**2
        - a_s * power_term_eps
    )
    curvature_power_eps = (
        k * m ** (k - 1) * m_eps * Rq if k else 0.0
    ) + m**k * Rq_prime * x0_eps
    psi_eps = C_eps * inverse**2 - a_s * curvature_power_eps

    residual = np.array([G_mu, G_b, psi])
    jacobian = np.array([Gmu_x, Gb_x, psi_x])
    d_eps = np.array([-Em_eps + mu * Gb_eps, Gb_eps, psi_eps])
    return residual, jacobian, d_eps


def unspecialized_generalization_error(activation: Activation, mu, b, eps, k=None):
    r"""Compute eps_g of the unspecialised point of :func:`unspecialized_residual`.

    .. math::

        \epsilon_g = N(1) + \frac{a w}{2}(b + w\mu^2) - \epsilon m^2 n_2(\epsilon m)
        + \frac{w^2\epsilon\gamma^2 n_2(C)}{2(1-\epsilon)},

    which tends to ``N(1)``: the unspecialised network learns its linear part
    and nothing of the rest. Arguments as in :func:`unspecialized_residual`.
    """
    series = _series(activation)
    eps = _check_eps(eps)
    if k is None:
        k = branch_point_scaling(activation)
    w = eps ** (1 + k)
    m = 1.0 - w * mu
    gamma = b - 2.0 * mu + w * mu * mu
    C = w * eps * gamma / (1.0 - eps)
    x0 = eps * m
    value = series.nonlinear_one + 0.5 * series.slope0 * w * (b + w * mu * mu)
    value -= eps * m * m * series.quotient(x0, 0, 2)
    value += w * w * eps * gamma**2 * series.quotient(C, 0, 2) / (2.0 * (1.0 - eps))
    return value


# -- the limiting free energy ----------------------------------------------------------


def _limit_pieces(series, d):
    """Return ``N^(j)(d)`` for j = 0..4 and ``N''(0)``, ``N'''(0)``."""
    t = series.taylor(d, 4)
    values = [t[0], t[1], 2.0 * t[2], 6.0 * t[3], 24.0 * t[4]]
    return values, 2.0 * series.zero[2], 6.0 * series.zero[3]


def _check_limit_point(d, mu, b, alpha):
    d = check_finite_scalar("d", d)
    mu = check_finite_scalar("mu", mu)
    b = check_finite_scalar("b", b)
    alpha = _check_alpha(alpha)
    if not -1.0 < d < 1.0:
        raise ValueError(f"d = {d!r} is invalid: it must lie in (-1, 1)")
    if not b > 0.0:
        raise ValueError(f"b = {b!r} is invalid: it must be positive")
    return d, mu, b, alpha


def limit_free_energy(activation: Activation, d, mu, b, alpha) -> np.ndarray:
    r"""Compute the coefficients ``(f_0, f_1, f_2)`` of the large-K expansion.

    ``f = f_0(d) + eps f_1(d, b) + eps^2 f_2(d, mu, b) + O(eps^3)`` for the
    scaled free energy per hidden unit (:func:`scaled_free_energy`), with the
    formulas of the module docstring. ``f_0`` is the free energy per hidden
    unit at ``K = infinity``; its stationary points in ``d`` are the states,
    and ``b``, ``mu`` are the stationary points of ``f_1`` and ``f_2``.

    Parameters
    ----------
    activation : Activation
    d : float
        ``R - S`` in ``(-1, 1)``.
    mu, b : float
        Scaled variables, ``b > 0``.
    alpha : float
        ``alpha >= 0``.

    Returns
    -------
    ndarray, shape (3,)
    """
    series = _series(activation)
    d, mu, b, alpha = _check_limit_point(d, mu, b, alpha)
    (N0, N1, N2, _, _), n2_zero, n3_zero = _limit_pieces(series, d)
    a = series.slope0
    one_minus_d = 1.0 - d
    log_A = math.log1p(-d * d)
    f0 = alpha * (series.nonlinear_one - N0) - 0.5 * log_A
    f1 = (
        -alpha * one_minus_d * N1
        - 0.5 * alpha * one_minus_d**2 * n2_zero
        + 0.5 * log_A
        + 0.5 * alpha * a * b
        - 0.5 * math.log(b)
    )
    f2 = (
        alpha * mu * (N1 + one_minus_d * n2_zero)
        + 0.5 * alpha * a * mu * mu
        + (b - 2.0 * mu) / (2.0 * (1.0 - d * d))
        - 0.5 * alpha * N2 * one_minus_d**2
        + 0.5 * alpha * n2_zero * one_minus_d**2
        - alpha * n3_zero * one_minus_d**3 / 6.0
    )
    return np.array([f0, f1, f2])


def limit_free_energy_gradient(activation: Activation, d, mu, b, alpha) -> np.ndarray:
    """Compute the gradients of ``(f_0, f_1, f_2)`` in ``(d, mu, b)``.

    Row ``i`` is the gradient of ``f_i``. The limiting stationarity equations
    are ``(row 0)[d] = 0``, ``(row 2)[mu] = 0`` and ``(row 1)[b] = 0``, which
    are :func:`scaled_stationarity` at ``eps = 0`` (with ``2 df_1/db``).
    Arguments as in :func:`limit_free_energy`.

    Returns
    -------
    ndarray, shape (3, 3)
    """
    series = _series(activation)
    d, mu, b, alpha = _check_limit_point(d, mu, b, alpha)
    (_, N1, N2, N3, _), n2_zero, n3_zero = _limit_pieces(series, d)
    a = series.slope0
    s = 1.0 - d
    one_minus_d2 = 1.0 - d * d
    gradient = np.zeros((3, 3))
    gradient[0, 0] = -alpha * N1 + d / one_minus_d2
    gradient[1, 0] = (
        alpha * N1 - alpha * s * N2 + alpha * s * n2_zero - d / one_minus_d2
    )
    gradient[1, 2] = 0.5 * alpha * a - 0.5 / b
    gradient[2, 0] = (
        alpha * mu * (N2 - n2_zero)
        + (b - 2.0 * mu) * d / one_minus_d2**2
        - 0.5 * alpha * N3 * s * s
        + alpha * N2 * s
        - alpha * n2_zero * s
        + 0.5 * alpha * n3_zero * s * s
    )
    gradient[2, 1] = alpha * (N1 + s * n2_zero) + alpha * a * mu - 1.0 / one_minus_d2
    gradient[2, 2] = 0.5 / one_minus_d2
    return gradient


def limit_free_energy_hessian(activation: Activation, d, mu, b, alpha) -> np.ndarray:
    """Compute the Hessians of ``(f_0, f_1, f_2)`` in ``(d, mu, b)``.

    Arguments as in :func:`limit_free_energy`.

    Returns
    -------
    ndarray, shape (3, 3, 3)
        ``[i]`` is the symmetric Hessian of ``f_i``.
    """
    series = _series(activation)
    d, mu, b, alpha = _check_limit_point(d, mu, b, alpha)
    (_, _, N2, N3, N4), n2_zero, n3_zero = _limit_pieces(series, d)
    a = series.slope0
    s = 1.0 - d
    q = 1.0 - d * d
    # d/dd of d / (1 - d^2) is (1 + d^2) / (1 - d^2)^2.
    entropy_curvature = (1.0 + d * d) / (q * q)
    hessian = np.zeros((3, 3, 3))
    hessian[0, 0, 0] = -alpha * N2 + entropy_curvature
    hessian[1, 0, 0] = (
        alpha * N2 + alpha * N2 - alpha * s * N3 - alpha * n2_zero - entropy_curvature
    )
    hessian[1, 2, 2] = 0.5 / (b * b)
    hessian[2, 0, 0] = (
        alpha * mu * N3
        + (b - 2.0 * mu) * (1.0 + 3.0 * d * d) / q**3
        - 0.5 * alpha * N4 * s * s
        + alpha * N3 * s
        + alpha * N3 * s
        - alpha * N2
        + alpha * n2_zero
        - alpha * n3_zero * s
    )
    hessian[2, 0, 1] = hessian[2, 1, 0] = alpha * (N2 - n2_zero) - 2.0 * d / q**2
    hessian[2, 0, 2] = hessian[2, 2, 0] = d / q**2
    hessian[2, 1, 1] = alpha * a
    return hessian
