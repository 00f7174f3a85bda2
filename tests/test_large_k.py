"""Tests of the large-K theory in scaled variables (reluspec.theory.large_k).

References are independent of the scaled formulas: the finite-K free
energy and error in (R, S, C) (reluspec.theory.free_energy and
.generalization), central differences, and mpmath closed forms.
"""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reluspec as rs
from reluspec.theory import large_k as lk
from reluspec.theory.free_energy import (
    symmetric_free_energy,
    symmetric_free_energy_gradient,
    symmetric_free_energy_hessian,
    symmetric_free_energy_mp,
)
from reluspec.theory.generalization import symmetric_generalization_error

ACTIVATIONS = [rs.ReLU(), rs.Erf()]


def mp_pair(activation, x):
    """Closed form of I(1, x, 1) in mpmath."""
    if activation.name == "relu":
        return (mpmath.sqrt(1 - x * x) + (mpmath.pi - mpmath.acos(x)) * x) / (
            2 * mpmath.pi
        )
    return 2 / mpmath.pi * mpmath.asin(x / 2)


def mp_nonlinear(activation, x):
    """N(x) = I(x) - I(0) - I'(0) x in mpmath."""
    slope = mpmath.mpf(1) / 4 if activation.name == "relu" else 1 / mpmath.pi
    return mp_pair(activation, x) - mp_pair(activation, 0) - slope * x


# A valid scaled point: |d| < 0.9, moderate mu and b, eps in [0.02, 0.5].
points = st.tuples(
    st.floats(-0.9, 0.9),
    st.floats(-0.5, 0.5),
    st.floats(0.05, 2.0),
    st.floats(1.0, 40.0),
    st.floats(0.02, 0.5),
)


def valid(activation, point):
    d, mu, b, _, eps = point
    try:
        lk.scaled_to_order_parameters(d, mu, b, eps)
    except ValueError:
        return False
    return True


# -- Taylor coefficients ---------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("x0", [0.0, 0.3, -0.7, 0.95])
def test_taylor_coefficients_match_mpmath(activation, x0):
    series = lk._series(activation)
    t = series.taylor(x0, 12)
    with mpmath.workdps(40):
        reference = mpmath.taylor(lambda x: mp_nonlinear(activation, x), x0, 12)
    # The recurrence is forward-stable (its solution grows like the dominant
    # root), so each coefficient keeps a relative error of a few ulp times n.
    for n, (value, ref) in enumerate(zip(t, reference)):
        # Zero coefficients come out of mpmath.taylor as numerical noise of 1e-40.
        assert value == pytest.approx(float(ref), rel=1e-13, abs=1e-30), n


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("x", [1e-12, 1e-4, 0.2, 0.34, 0.36, 0.8])
def test_quotients_match_mpmath(activation, x):
    series = lk._series(activation)
    with mpmath.workdps(50):
        N = mp_nonlinear(activation, mpmath.mpf(x))
        N1 = mpmath.diff(lambda y: mp_nonlinear(activation, y), mpmath.mpf(x))
        reference_n2 = N / mpmath.mpf(x) ** 2
        reference_q1 = N1 / mpmath.mpf(x)
    # Series below 0.35 (ReLU) or 0.7 (erf), direct quotients above; both keep
    # the relative precision to a few ulp (the direct form loses at most a
    # factor 1 / x^2 < 10 of it at the switch).
    assert series.quotient(x, 0, 2) == pytest.approx(float(reference_n2), rel=1e-14)
    assert series.quotient(x, 1, 1) == pytest.approx(float(reference_q1), rel=1e-13)


# -- the scaled free energy against the finite-K free energy ---------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@settings(max_examples=25)
@given(point=points)
def test_free_energy_matches_finite_K(activation, point):
    if not valid(activation, point):
        return
    d, mu, b, alpha, eps = point
    K = 1.0 / eps
    R, S, C = lk.scaled_to_order_parameters(d, mu, b, eps)
    f = lk.scaled_free_energy(activation, d, mu, b, alpha, eps)
    reference = symmetric_free_energy(activation, R, S, C, alpha, K) / K
    reference += 0.5 * eps * math.log(eps)
    # Both sums have terms of order alpha and |ln A|; rounding of R, S, C adds
    # a few ulp of alpha.
    assert f == pytest.approx(reference, abs=1e-13 * (1 + alpha + abs(f)))
    error = lk.scaled_generalization_error(activation, d, mu, b, eps)
    assert error == pytest.approx(
        symmetric_generalization_error(activation, R, S, C, K), abs=1e-15
    )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@settings(max_examples=15)
@given(point=points)
def test_gradient_and_hessian_match_differences(activation, point):
    if not valid(activation, point):
        return
    d, mu, b, alpha, eps = point
    x = np.array([d, mu, b])
    gradient = lk.scaled_free_energy_gradient(activation, *x, alpha, eps)
    hessian = lk.scaled_free_energy_hessian(activation, *x, alpha, eps)
    h = 1e-6
    scale = 1 + alpha + np.max(np.abs(hessian))
    for i in range(3):
        step = np.zeros(3)
        step[i] = h
        try:
            plus = lk.scaled_free_energy(activation, *(x + step), alpha, eps)
            minus = lk.scaled_free_energy(activation, *(x - step), alpha, eps)
            g_plus = lk.scaled_free_energy_gradient(activation, *(x + step), alpha, eps)
            g_minus = lk.scaled_free_energy_gradient(
                activation, *(x - step), alpha, eps
            )
        except ValueError:
            return  # too close to the boundary of the domain for the step
        # Central differences: truncation h^2 f''' and rounding 1e-16 / h.
        assert (plus - minus) / (2 * h) == pytest.approx(gradient[i], abs=1e-8 * scale)
        column = (g_plus - g_minus) / (2 * h)
        np.testing.assert_allclose(column, hessian[:, i], atol=1e-7 * scale)


def _scaled_gradient(g, mu, eps):
    """Return the stationarity residual of the scaled equations expected from
    the finite-K gradient ``g`` in (R, S, C), by the chain rule to
    (d, m, c): dR = (1 - 1/K) dd + dm/K, dS = -dd/K + dm/K, dC = dc/(K - 1)."""
    K = 1 / eps
    F_d = g[0] * (1 - eps) - g[1] * eps
    F_m = (g[0] + g[1]) * eps
    F_c = g[2] / (K - 1)
    m = 1 - eps * mu
    return np.array([F_d / (K - 1), -(F_m + 2 * m * F_c), 2 * eps * F_c])


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@settings(max_examples=15)
@given(point=points)
def test_stationarity_is_weighted_finite_K_gradient(activation, point):
    if not valid(activation, point):
        return
    d, mu, b, alpha, eps = point
    K = 1.0 / eps
    R, S, C = lk.scaled_to_order_parameters(d, mu, b, eps)
    g = symmetric_free_energy_gradient(activation, R, S, C, alpha, K)
    expected = _scaled_gradient(g, mu, eps)
    G = lk.scaled_stationarity(activation, d, mu, b, alpha, eps)
    # The finite-K gradient carries rounding of order K times its terms.
    np.testing.assert_allclose(G, expected, atol=1e-12 * K * (1 + alpha))


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@settings(max_examples=20)
@given(
    eps=st.floats(0.05, 0.5),
    b=st.floats(0.05, 0.9),
    excess=st.floats(0.05, 0.9),
    fraction=st.floats(0.1, 0.9),
    alpha=st.floats(1.0, 1e4),
)
def test_points_with_d_below_minus_one(activation, eps, b, excess, fraction, alpha):
    # With C < 0 the domain 1 - C - d^2 > 0 contains |d| > 1 (ReLU's R < S
    # state at large alpha and finite K lies there). mu solves
    # gamma = b - 2 mu + eps mu^2 = -excess on the root that tends to
    # (b + excess)/2 (real because eps (b + excess) < 1), and
    # d^2 = 1 - fraction C.
    mu = (1 - math.sqrt(1 - eps * (b + excess))) / eps
    gamma = b - 2 * mu + eps * mu * mu
    C = eps * eps * gamma / (1 - eps)
    d = -math.sqrt(1 - fraction * C)
    assert d < -1

    K = 1 / eps
    R, S, C_point = lk.scaled_to_order_parameters(d, mu, b, eps)
    assert C_point == pytest.approx(C, rel=1e-12)
    f = lk.scaled_free_energy(activation, d, mu, b, alpha, eps)
    reference = symmetric_free_energy(activation, R, S, C_point, alpha, K) / K
    reference += 0.5 * eps * math.log(eps)
    # Tolerance as in test_free_energy_matches_finite_K, plus the rounding of
    # A = 1 - C - d^2 = (1 - fraction) |C|, a few ulp of 1, in ln A.
    A = (1 - fraction) * abs(C)
    assert f == pytest.approx(reference, abs=1e-13 * (1 + alpha + abs(f)) + 1e-15 / A)
    error = lk.scaled_generalization_error(activation, d, mu, b, eps)
    assert error == pytest.approx(
        symmetric_generalization_error(activation, R, S, C_point, K), abs=1e-15
    )

    g = symmetric_free_energy_gradient(activation, R, S, C_point, alpha, K)
    expected = _scaled_gradient(g, mu, eps)
    G = lk.scaled_stationarity(activation, d, mu, b, alpha, eps)
    # The entropy terms are of order 1/A.
    scale = 1 + alpha + 1 / A
    np.testing.assert_allclose(G, expected, atol=1e-12 * K * scale)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@settings(max_examples=15)
@given(point=points)
def test_parameter_derivatives_match_differences(activation, point):
    if not valid(activation, point):
        return
    d, mu, b, alpha, eps = point
    d_alpha, d_eps = lk.scaled_stationarity_parameter_derivatives(
        activation, d, mu, b, alpha, eps
    )
    h = 1e-6
    try:
        G_eps = [
            lk.scaled_stationarity(activation, d, mu, b, alpha, e)
            for e in (eps + h, eps - h)
        ]
    except ValueError:
        return
    G_alpha = [
        lk.scaled_stationarity(activation, d, mu, b, a, eps)
        for a in (alpha + h, alpha - h)
    ]
    scale = 1 + alpha + np.max(np.abs(d_eps))
    np.testing.assert_allclose(
        (G_alpha[0] - G_alpha[1]) / (2 * h), d_alpha, atol=1e-8 * scale
    )
    np.testing.assert_allclose(
        (G_eps[0] - G_eps[1]) / (2 * h), d_eps, atol=1e-7 * scale
    )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@settings(max_examples=15)
@given(point=points)
def test_stability_matrix_has_inertia_of_finite_K_hessian(activation, point):
    if not valid(activation, point):
        return
    d, mu, b, alpha, eps = point
    K = 1.0 / eps
    R, S, C = lk.scaled_to_order_parameters(d, mu, b, eps)
    M = lk.scaled_stability_matrix(activation, d, mu, b, alpha, eps)
    H = symmetric_free_energy_hessian(activation, R, S, C, alpha, K)
    w_scaled = np.linalg.eigvalsh(M)
    w = np.linalg.eigvalsh(H)
    # Skip points where an eigenvalue is within rounding of zero.
    if np.min(np.abs(w_scaled)) < 1e-8 * np.max(np.abs(w_scaled)):
        return
    if np.min(np.abs(w)) < 1e-8 * np.max(np.abs(w)):
        return
    assert np.sum(w_scaled < 0) == np.sum(w < 0)
    assert np.max(np.abs(M - M.T)) == 0.0


# -- the limit eps = 0 -----------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("d", [0.0, 0.3, -0.6])
def test_limit_stationarity_is_hierarchy_gradient(activation, d):
    mu, b, alpha = 0.2, 0.4, 7.0
    G = lk.scaled_stationarity(activation, d, mu, b, alpha, 0.0)
    gradient = lk.limit_free_energy_gradient(activation, d, mu, b, alpha)
    expected = [gradient[0, 0], gradient[2, 1], 2 * gradient[1, 2]]
    np.testing.assert_allclose(G, expected, rtol=1e-13, atol=1e-15)
    J = lk.scaled_stationarity_jacobian(activation, d, mu, b, alpha, 0.0)
    # Triangular at eps = 0: d, then mu, then b decouple.
    assert J[0, 1] == 0.0
    assert J[0, 2] == 0.0
    assert J[2, 1] == 0.0
    hessian = lk.limit_free_energy_hessian(activation, d, mu, b, alpha)
    assert J[0, 0] == pytest.approx(hessian[0, 0, 0], rel=1e-12)
    assert J[1, 1] == pytest.approx(hessian[2, 1, 1], rel=1e-12)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
def test_limit_free_energy_derivatives(activation):
    x = np.array([0.4, -0.1, 0.6])
    alpha = 9.0
    gradient = lk.limit_free_energy_gradient(activation, *x, alpha)
    hessian = lk.limit_free_energy_hessian(activation, *x, alpha)
    h = 1e-5
    for i in range(3):
        step = np.zeros(3)
        step[i] = h
        f_plus = lk.limit_free_energy(activation, *(x + step), alpha)
        f_minus = lk.limit_free_energy(activation, *(x - step), alpha)
        np.testing.assert_allclose(
            (f_plus - f_minus) / (2 * h), gradient[:, i], atol=1e-9
        )
        g_plus = lk.limit_free_energy_gradient(activation, *(x + step), alpha)
        g_minus = lk.limit_free_energy_gradient(activation, *(x - step), alpha)
        np.testing.assert_allclose(
            (g_plus - g_minus) / (2 * h), hessian[:, :, i], atol=1e-8
        )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
def test_expansion_remainder_is_third_order(activation):
    d, mu, b, alpha = 0.35, 0.1, 0.5, 8.0
    f0, f1, f2 = lk.limit_free_energy(activation, d, mu, b, alpha)

    def remainder(eps):
        f = lk.scaled_free_energy(activation, d, mu, b, alpha, eps)
        return (f - f0 - eps * f1 - eps**2 * f2) / eps**3

    # A third-order remainder divided by eps^3 changes by O(eps) between eps
    # and eps / 2; rounding adds 1e-16 / eps^3 = 1e-10 at eps = 1e-2 / 2.
    r1, r2 = remainder(1e-2), remainder(5e-3)
    assert abs(r1 - r2) <= 0.05 * max(abs(r1), 1.0)
    assert lk.scaled_free_energy(activation, d, mu, b, alpha, 0.0) == pytest.approx(
        f0, rel=1e-15
    )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
def test_f0_matches_mpmath_closed_form(activation):
    d, alpha = mpmath.mpf("0.45"), mpmath.mpf(12)
    with mpmath.workdps(40):
        reference = alpha * (mp_nonlinear(activation, 1) - mp_nonlinear(activation, d))
        reference -= mpmath.log(1 - d * d) / 2
    value = lk.limit_free_energy(activation, 0.45, 0.0, 1.0, 12.0)[0]
    assert value == pytest.approx(float(reference), rel=1e-15)


# -- the unspecialised branch and the equal-F residual ---------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("eps", [0.5, 0.2, 0.01])
def test_unspecialized_residual_matches_finite_K(activation, eps):
    k = lk.branch_point_scaling(activation)
    mu, b, alpha_scaled = 0.3, 0.35, 5.0
    K = 1.0 / eps
    alpha = alpha_scaled * K**k
    w = eps ** (1 + k)
    m = 1 - w * mu
    C = w * eps * (b - 2 * mu + w * mu * mu) / (1 - eps)
    R = S = eps * m
    residual, jacobian, d_eps = lk.unspecialized_residual(
        activation, mu, b, alpha_scaled, eps
    )
    g = symmetric_free_energy_gradient(activation, R, S, C, alpha, K)
    F_m = (g[0] + g[1]) / K
    F_c = g[2] / (K - 1)
    H = symmetric_free_energy_hessian(activation, R, S, C, alpha, K)
    e_d = np.array([1 - 1 / K, -1 / K, 0.0])
    curvature = e_d @ H @ e_d / (K - 1)
    expected = [-(F_m + 2 * m * F_c), 2 * w * F_c, curvature]
    # Finite-K rounding grows like K alpha for the gradient terms.
    np.testing.assert_allclose(residual, expected, atol=1e-12 * K * alpha)

    # Jacobian and eps-derivative against central differences.
    h = 1e-6
    for j in range(3):
        z = np.array([mu, b, alpha_scaled])
        z_plus, z_minus = z.copy(), z.copy()
        z_plus[j] += h
        z_minus[j] -= h
        column = (
            lk.unspecialized_residual(activation, *z_plus, eps)[0]
            - lk.unspecialized_residual(activation, *z_minus, eps)[0]
        ) / (2 * h)
        np.testing.assert_allclose(
            column, jacobian[:, j], atol=1e-7 * (1 + alpha_scaled)
        )
    plus = lk.unspecialized_residual(activation, mu, b, alpha_scaled, eps + h)[0]
    minus = lk.unspecialized_residual(activation, mu, b, alpha_scaled, eps - h)[0]
    np.testing.assert_allclose(
        (plus - minus) / (2 * h), d_eps, atol=1e-7 * (1 + alpha_scaled)
    )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
def test_unspecialized_branch_point_limit_closed_form(activation):
    k = lk.branch_point_scaling(activation)
    # alpha~_c = k! / I^(2+k)(0): 1/I''(0) = 2 pi for ReLU, 1/I'''(0) = 4 pi for erf.
    alpha_c = 2 * math.pi if activation.name == "relu" else 4 * math.pi
    b = 1 / (alpha_c * float(activation.unit_pair_derivative(0.0)))
    # At eps = 0, G_b = alpha~ a - 1/b and Psi_0 = 1 - alpha~ I^(2+k)(0)/k! do
    # not depend on mu; both vanish at the closed-form values.
    for mu in (-0.3, 0.0, 0.4):
        residual = lk.unspecialized_residual(activation, mu, b, alpha_c, 0.0, k)[0]
        assert abs(residual[1]) < 1e-15
        assert abs(residual[2]) < 1e-15


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
def test_equal_free_energy_residual_is_difference(activation):
    eps, alpha = 0.2, 8.0
    specialized = (0.3, 0.1, 0.4)
    unspecialized = (0.05, 0.45)
    Z = lk.equal_free_energy_residual(
        activation, specialized, unspecialized, alpha, eps
    )
    psi = lk.specialized_residual(activation, *specialized, alpha, eps)[0][0]
    f_s = lk.scaled_free_energy(activation, *specialized, alpha, eps)
    f_u = lk.scaled_free_energy(activation, 0.0, *unspecialized, alpha, eps)
    d = specialized[0]
    # Z d^3 + (1 - eps) d^2 Psi / 2 is the difference of free energies.
    assert Z * d**3 + (1 - eps) * d * d * psi / 2 == pytest.approx(f_s - f_u, abs=1e-14)


def test_equal_free_energy_residual_large_K():
    # Near the ReLU branch point at K = 1e4 the two free energies per unit
    # agree to about 1e-16; the residual must still match an mpmath
    # evaluation of the finite-K free energies at 60 digits.
    # The point resembles the equal-F point at K = 1e4: d = 0.4 eps, the linear
    # parts a distance of order d^2 apart, alpha - 2 pi of order eps^2.
    activation, eps, alpha = rs.ReLU(), 1e-4, 2 * math.pi + 4.4e-9
    specialized = (4e-5, 2e-9, 2 / math.pi + 1e-13)
    unspecialized = (0.0, 2 / math.pi)
    Z = lk.equal_free_energy_residual(
        activation, specialized, unspecialized, alpha, eps
    )
    psi = lk.specialized_residual(activation, *specialized, alpha, eps)[0][0]
    with mpmath.workdps(60):
        K = 1 / mpmath.mpf(eps)

        def order_parameters(d, mu, b):
            d, mu, b = (mpmath.mpf(v) for v in (d, mu, b))
            e = mpmath.mpf(eps)
            S = e * (1 - d - e * mu)
            return d + S, S, e * e * (b - 2 * mu + e * mu * mu) / (1 - e)

        F_s = symmetric_free_energy_mp(
            activation, *order_parameters(*specialized), alpha, K, 60
        )
        F_u = symmetric_free_energy_mp(
            activation, *order_parameters(0, *unspecialized), alpha, K, 60
        )
        d = mpmath.mpf(specialized[0])
        reference = ((F_s - F_u) / K - (1 - mpmath.mpf(eps)) * d * d * psi / 2) / d**3
    # psi is exact to about 1e-16 absolute, so the reference carries 1e-16 / d
    # = 2.5e-12 of its error; the double-precision residual must agree to that,
    # although the free energies per unit it compares differ by about 1e-16.
    assert Z == pytest.approx(float(reference), rel=1e-9, abs=1e-11)


# -- conversions and input validation --------------------------------------------------


@settings(max_examples=30)
@given(point=points)
def test_coordinates_round_trip(point):
    d, mu, b, _, eps = point
    try:
        R, S, C = lk.scaled_to_order_parameters(d, mu, b, eps)
    except ValueError:
        return
    back = lk.order_parameters_to_scaled(R, S, C, 1 / eps)
    # mu and b lose log10(K) digits to 1 - m.
    np.testing.assert_allclose(back, [d, mu, b], atol=1e-12 / eps)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0.1, 0.0, 0.5, 5.0, 0.6), "eps"),
        ((0.1, 0.0, 0.5, 5.0, -0.1), "eps"),
        ((2.0, 0.0, 0.5, 5.0, 0.1), "d = R - S"),
        ((1.0, 0.0, 0.5, 5.0, 0.1), "positive"),
        ((0.1, 0.0, -0.5, 5.0, 0.1), "b ="),
        ((0.1, 0.0, 0.5, -1.0, 0.1), "alpha"),
        ((0.1, math.nan, 0.5, 5.0, 0.1), "mu"),
        ((0.999, 0.0, 0.5, 5.0, 0.5), "positive"),
    ],
)
def test_invalid_input_raises(arguments, message):
    with pytest.raises(ValueError, match=message):
        lk.scaled_free_energy(rs.ReLU(), *arguments)


def test_invalid_scaling_and_points():
    with pytest.raises(ValueError, match="k = 1 is invalid"):
        lk.unspecialized_residual(rs.ReLU(), 0.0, 1.0, 1.0, 0.1, k=1)
    with pytest.raises(ValueError, match="k = 2"):
        lk.unspecialized_residual(rs.Erf(), 0.0, 1.0, 1.0, 0.1, k=2)
    with pytest.raises(ValueError, match="d = 0"):
        lk.equal_free_energy_residual(rs.ReLU(), (0.0, 0.1, 0.4), (0.1, 0.4), 5.0, 0.1)
    with pytest.raises(ValueError, match="activation"):
        lk.scaled_free_energy("relu", 0.1, 0.0, 0.5, 5.0, 0.1)
