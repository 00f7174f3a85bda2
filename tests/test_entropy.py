"""Tests of the entropy of order parameters against mpmath determinants."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reluspec.theory.entropy import (
    entropy,
    entropy_gradient,
    symmetric_entropy,
    symmetric_entropy_gradient,
    symmetric_entropy_gradient_mp,
    symmetric_entropy_hessian,
    symmetric_entropy_mp,
    symmetric_entropy_third_derivative,
)

EPS = np.finfo(float).eps
REFERENCE_DPS = 40


# -- references and generators -------------------------------------------------


def site_symmetric_matrices(R, S, C, K):
    """Return float (R, Q) matrices of the site-symmetric ansatz."""
    R_matrix = np.full((K, K), float(S))
    np.fill_diagonal(R_matrix, R)
    Q = np.full((K, K), float(C))
    np.fill_diagonal(Q, 1.0)
    return R_matrix, Q


def log_det_entropy_mp(R, Q, T=None, dps=REFERENCE_DPS):
    """Return 1/2 ln det(Q - R T^-1 R^T) from mpmath matrices, exact inputs."""
    with mpmath.workdps(dps):
        R_mp = mpmath.matrix(np.asarray(R).tolist())
        Q_mp = mpmath.matrix(np.asarray(Q).tolist())
        if T is None:
            T_inverse = mpmath.eye(R_mp.cols)
        else:
            T_inverse = mpmath.inverse(mpmath.matrix(np.asarray(T).tolist()))
        M = Q_mp - R_mp * T_inverse * R_mp.T
        return mpmath.log(mpmath.det(M)) / 2


def symmetric_point(K, d, u, t):
    """Return (R, S, C) with R - S = d, R + (K-1) S = u and C inside the domain.

    ``t`` in (0, 1) places C between the bounds (u^2 - 1)/(K - 1) (where the
    second log argument vanishes) and 1 - d^2 (where the first one does).
    """
    k = K - 1
    S = (u - d) / K
    R = S + d
    low = (u * u - 1.0) / k
    high = 1.0 - d * d
    C = low + t * (high - low)
    return R, S, C


def symmetric_error_bound(R, S, C, K):
    """Return a bound on the rounding error of the float site-symmetric entropy.

    Each log argument is a sum of a few terms, each rounded a few times, so its
    absolute error is below 8 eps times the sum of the magnitudes of its terms.
    The error of (k/2) ln A is that divided by A, and likewise for B.
    """
    k = K - 1
    d, u = R - S, R + k * S
    A = 1 - C - d * d
    B = 1 + k * C - u * u
    size_A = 1 + abs(C) + d * d + abs(R) + abs(S)
    size_B = 1 + k * abs(C) + u * u + abs(R) + k * abs(S)
    return 8 * EPS * (k / 2 * size_A / A + size_B / (2 * B))


site_symmetric_points = st.builds(
    lambda K, d, u, t: (K,) + symmetric_point(K, d, u, t),
    st.integers(min_value=2, max_value=8),
    st.floats(min_value=-0.99, max_value=0.99),
    st.floats(min_value=-0.99, max_value=0.99),
    st.floats(min_value=0.01, max_value=0.99),
)


def random_order_parameters(rng, K, M, N):
    """Return (R, Q, T) of random student and teacher weight vectors in R^N."""
    student = rng.standard_normal((K, N))
    teacher = rng.standard_normal((M, N))
    R = student @ teacher.T / N
    Q = student @ student.T / N
    T = teacher @ teacher.T / N
    return R, Q, T


def full_error_bound(R, Q, T):
    """Return a bound on the rounding error of the float full-matrix entropy.

    The first-order change of 1/2 ln det M is 1/2 tr(M^-1 delta M), and the
    rounding error of M = Q - R T^-1 R^T is below 64 K eps times
    (|Q| + |R|^2 |T^-1|) in the spectral norm.
    """
    K = Q.shape[0]
    M = Q - R @ np.linalg.solve(T, R.T)
    size = np.linalg.norm(Q, 2) + np.linalg.norm(R, 2) ** 2 * np.linalg.norm(
        np.linalg.inv(T), 2
    )
    return 64 * K * EPS * np.linalg.norm(np.linalg.inv(M), 2) * size


def partial_derivative_mp(function, point, orders):
    """Return the mixed partial derivative of an mpmath function by mp.diff."""
    with mpmath.workdps(REFERENCE_DPS):
        return mpmath.diff(function, [mpmath.mpf(x) for x in point], orders)


# -- site-symmetric entropy ----------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(site_symmetric_points)
def test_symmetric_entropy_matches_log_det(point):
    K, R, S, C = point
    R_matrix, Q = site_symmetric_matrices(R, S, C, K)
    reference = log_det_entropy_mp(R_matrix, Q)
    tolerance = symmetric_error_bound(R, S, C, K)
    assert abs(symmetric_entropy(R, S, C, K) - reference) <= tolerance


@settings(max_examples=40, deadline=None)
@given(site_symmetric_points)
def test_symmetric_entropy_mp_matches_log_det(point):
    K, R, S, C = point
    R_matrix, Q = site_symmetric_matrices(R, S, C, K)
    reference = log_det_entropy_mp(R_matrix, Q, dps=60)
    value = symmetric_entropy_mp(R, S, C, K, dps=50)
    # Both are exact to about 50 digits for exactly represented inputs; the
    # log arguments are at least 1e-4, which costs at most 4 of them.
    assert abs(value - reference) <= mpmath.mpf("1e-44") * (1 + abs(reference))


@pytest.mark.parametrize(
    "R, S, C, K",
    [
        # perfect learning is approached: A and B are about 2^-29
        (1 - 2.0**-30, 0.0, 0.0, 3),
        (1 - 2.0**-30, 2.0**-40, 2.0**-36, 5),
        (-1 + 2.0**-30, 0.0, 0.0, 2),
        # C close to 1 with small R - S: A = 2^-40 - d^2
        (0.25, 0.25 - 2.0**-25, 1 - 2.0**-40, 2),
        # C close to -1/(K - 1): B is about 2^-38
        (2.0**-20, 0.0, -0.5 + 2.0**-38, 3),
    ],
)
def test_symmetric_entropy_near_boundary(R, S, C, K):
    reference = symmetric_entropy_mp(R, S, C, K, dps=50)
    # The inputs are exact binary numbers, so the factored log arguments carry
    # only a few roundings relative to their own size. The unfactored form
    # 1 - C - (R - S)^2 loses about 8 digits of A, which makes s wrong in the
    # 11th digit in the first case.
    assert symmetric_entropy(R, S, C, K) == pytest.approx(float(reference), rel=1e-14)


@pytest.mark.parametrize(
    "R, S, C, K",
    [
        (0.0, 0.0, 1e-20, 3),
        (1e-9, 1e-9, 1e-9, 3),
        (3e-7, -1e-7, 2e-8, 10),
        (0.0, 0.0, -1e-12, 2.5),
        (1e-200, 0.0, 0.0, 4),
    ],
)
def test_symmetric_entropy_small_relative_precision(R, S, C, K):
    reference = symmetric_entropy_mp(R, S, C, K, dps=50)
    # ln A and ln B are of order 1e-9 and cancel to order 1e-18, so that
    # (k/2) ln A + (1/2) ln B in floats would lose most digits. The sum of
    # non-positive terms without C loses none.
    assert symmetric_entropy(R, S, C, K) == pytest.approx(float(reference), rel=1e-14)


def test_symmetric_entropy_zero_at_origin():
    for K in (1, 1.5, 2, 7):
        assert symmetric_entropy(0.0, 0.0, 0.0, K) == 0.0


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=1.0, max_value=50.0),
    st.floats(min_value=-0.99, max_value=0.99),
    st.floats(min_value=-0.99, max_value=0.99),
    st.floats(min_value=0.01, max_value=0.99),
)
def test_symmetric_entropy_nonpositive(K, d, u, t):
    # Jensen: (k ln A + ln B) / (k + 1) <= ln((k A + B) / (k + 1))
    # = ln(1 - (k d^2 + u^2) / (k + 1)) <= 0 for every real k = K - 1 >= 0.
    if K == 1.0:
        R, S, C = u, 0.0, 0.0
    else:
        R, S, C = symmetric_point(K, d, u, t)
    value = symmetric_entropy(R, S, C, K)
    assert value <= 0.0
    if max(abs(R), abs(S), abs(C)) > 1e-150:
        assert value < 0.0


def test_symmetric_entropy_at_one_unit():
    # At K = 1 the first term is absent, so S and C drop out and 1 - C - (R-S)^2
    # may be negative.
    value = symmetric_entropy(0.6, 2.0, 5.0, 1)
    assert value == pytest.approx(0.5 * math.log(1 - 0.36), rel=1e-15)
    assert np.array_equal(symmetric_entropy_gradient(0.6, 2.0, 5.0, 1)[1:], [0, 0])


@pytest.mark.parametrize(
    "R, S, C, K",
    [
        (0.3, 0.1, 0.2, 2),
        (0.8, 0.05, 0.01, 3),
        (0.2, 0.2, 0.1, 5),
        (-0.4, 0.3, -0.2, 4),
        (0.9, -0.02, 0.0, 10),
        (0.5, 0.1, 0.05, 2.5),
    ],
)
def test_symmetric_entropy_derivatives_match_mp_diff(R, S, C, K):
    def function(r, s, c):
        return symmetric_entropy_mp(r, s, c, K, dps=mpmath.mp.dps)

    point = (R, S, C)
    unit = np.eye(3, dtype=int)
    gradient = symmetric_entropy_gradient(R, S, C, K)
    hessian = symmetric_entropy_hessian(R, S, C, K)
    third = symmetric_entropy_third_derivative(R, S, C, K)
    gradient_reference = [
        float(partial_derivative_mp(function, point, unit[i])) for i in range(3)
    ]
    hessian_reference = [
        [
            float(partial_derivative_mp(function, point, unit[i] + unit[j]))
            for j in range(3)
        ]
        for i in range(3)
    ]
    third_reference = np.empty((3, 3, 3))
    for i in range(3):
        for j in range(3):
            for m in range(3):
                orders = unit[i] + unit[j] + unit[m]
                third_reference[i, j, m] = partial_derivative_mp(
                    function, point, orders
                )
    # The float formulas are rational in A, B and the overlaps with a handful
    # of roundings; A and B are at least 0.1 here, so 1e-13 relative to the
    # largest entry covers them.
    scale = np.max(np.abs(gradient_reference))
    np.testing.assert_allclose(gradient, gradient_reference, rtol=0, atol=1e-13 * scale)
    scale = np.max(np.abs(hessian_reference))
    np.testing.assert_allclose(hessian, hessian_reference, rtol=0, atol=1e-13 * scale)
    scale = np.max(np.abs(third_reference))
    np.testing.assert_allclose(third, third_reference, rtol=0, atol=1e-13 * scale)


@pytest.mark.parametrize(
    "R, S, C, K",
    [(0.3, 0.1, 0.2, 2), (-0.4, 0.3, -0.2, 4), (1 - 2.0**-30, 2.0**-40, 2.0**-36, 4)],
)
def test_symmetric_entropy_gradient_mp_matches_mp_diff(R, S, C, K):
    def function(r, s, c):
        return symmetric_entropy_mp(r, s, c, K, dps=mpmath.mp.dps)

    gradient = symmetric_entropy_gradient_mp(R, S, C, K, dps=30)
    for i, orders in enumerate(np.eye(3, dtype=int)):
        reference = partial_derivative_mp(function, (R, S, C), orders)
        # mp.diff at 40 digits against a closed form rounded to 30 digits.
        assert abs(gradient[i] - reference) <= mpmath.mpf("1e-29") * abs(reference)


def test_symmetric_entropy_gradient_near_boundary():
    R, S, C, K = 1 - 2.0**-30, 2.0**-40, 2.0**-36, 4

    def function(r, s, c):
        return symmetric_entropy_mp(r, s, c, K, dps=mpmath.mp.dps)

    gradient = symmetric_entropy_gradient(R, S, C, K)
    for i, orders in enumerate(np.eye(3, dtype=int)):
        reference = float(partial_derivative_mp(function, (R, S, C), orders))
        # 1/A and 1/B are about 2^29 and come from the factored arguments
        # without cancellation.
        assert gradient[i] == pytest.approx(reference, rel=1e-13)


def test_symmetric_derivatives_are_symmetric():
    hessian = symmetric_entropy_hessian(0.7, 0.1, 0.15, 4)
    third = symmetric_entropy_third_derivative(0.7, 0.1, 0.15, 4)
    assert np.array_equal(hessian, hessian.T)
    for axes in [(0, 2, 1), (1, 0, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)]:
        np.testing.assert_allclose(third, third.transpose(axes), rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "R, S, C, K, message",
    [
        (0.5, 0.0, 0.8, 3, r"1 - C - \(R - S\)\^2 = -0.05 .* must be positive"),
        (0.0, 0.0, 1.0, 2, r"1 - C - \(R - S\)\^2 = 0 .* must be positive"),
        (0.6, 0.6, 0.0, 3, r"1 \+ \(K - 1\) C - \(R \+ \(K - 1\) S\)\^2 = -2.24"),
        (0.0, 0.0, -0.5, 3, r"1 \+ \(K - 1\) C .* = 0 .* must be positive"),
        (1.0, 0.0, 0.0, 1, r"= 0 .* describe no real weight vectors"),
        (math.nan, 0.0, 0.0, 3, r"R = nan must be a finite real number"),
        (0.0, math.inf, 0.0, 3, r"S = inf must be a finite real number"),
        (0.0, 0.0, "0.1", 3, r"C = '0.1' must be a finite real number"),
        (0.0, 0.0, 0.0, 0.5, r"K = 0.5 is invalid: .* at least 1"),
        (0.0, 0.0, 0.0, math.nan, r"K = nan must be a finite real number"),
        (0.0, 0.0, 0.0, None, r"K = None must be a finite real number"),
    ],
)
def test_symmetric_entropy_domain_errors(R, S, C, K, message):
    for function in (
        symmetric_entropy,
        symmetric_entropy_gradient,
        symmetric_entropy_hessian,
        symmetric_entropy_third_derivative,
    ):
        with pytest.raises(ValueError, match=message):
            function(R, S, C, K)


@pytest.mark.parametrize(
    "R, S, C, K, message",
    [
        (0.5, 0.0, 0.8, 3, r"1 - C - \(R - S\)\^2 = -0.05 .* must be positive"),
        (0.6, 0.6, 0.0, 3, r"1 \+ \(K - 1\) C - \(R \+ \(K - 1\) S\)\^2"),
        (math.nan, 0.0, 0.0, 3, r"R = nan must be a finite real number"),
        (0.0, 0.0, 0.0, 0.5, r"K = 0.5.* is invalid"),
    ],
)
def test_symmetric_entropy_mp_domain_errors(R, S, C, K, message):
    with pytest.raises(ValueError, match=message):
        symmetric_entropy_mp(R, S, C, K)
    with pytest.raises(ValueError, match=message):
        symmetric_entropy_gradient_mp(R, S, C, K)


@pytest.mark.parametrize("dps", [0, 2.5, True, "50", 10_001])
def test_symmetric_entropy_mp_rejects_bad_dps(dps):
    with pytest.raises(ValueError, match="dps = .* must be an integer from 1 to 10000"):
        symmetric_entropy_mp(0.1, 0.0, 0.0, 2, dps=dps)
    with pytest.raises(ValueError, match="dps = .* must be an integer from 1 to 10000"):
        symmetric_entropy_gradient_mp(0.1, 0.0, 0.0, 2, dps=dps)


# -- full order-parameter matrices ---------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_entropy_matches_log_det(K, M, seed):
    rng = np.random.default_rng(seed)
    R, Q, T = random_order_parameters(rng, K, M, N=3 * (K + M))
    reference = log_det_entropy_mp(R, Q, T)
    assert abs(entropy(R, Q, T) - reference) <= full_error_bound(R, Q, T)


@settings(max_examples=30, deadline=None)
@given(site_symmetric_points)
def test_entropy_on_site_symmetric_matrices(point):
    K, R, S, C = point
    R_matrix, Q = site_symmetric_matrices(R, S, C, K)
    tolerance = max(
        symmetric_error_bound(R, S, C, K), full_error_bound(R_matrix, Q, np.eye(K))
    )
    reference = log_det_entropy_mp(R_matrix, Q)
    assert abs(entropy(R_matrix, Q) - reference) <= tolerance
    assert abs(entropy(R_matrix, Q) - symmetric_entropy(R, S, C, K)) <= 2 * tolerance


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_entropy_nonpositive_for_normalised_students(K, M, seed):
    # With Q_kk = 1 and T = 1 the diagonal of Q - R R^T is at most 1, and by
    # Hadamard's inequality det(Q - R R^T) is at most the product of it.
    rng = np.random.default_rng(seed)
    N = 3 * (K + M)
    student = rng.standard_normal((K, N))
    student *= np.sqrt(N) / np.linalg.norm(student, axis=1, keepdims=True)
    teacher = np.linalg.qr(rng.standard_normal((N, M)))[0].T * np.sqrt(N)
    R = student @ teacher.T / N
    Q = student @ student.T / N
    assert entropy(R, Q) < 0.0


def test_entropy_zero_for_orthonormal_unrelated_students():
    assert entropy(np.zeros((3, 2)), np.eye(3)) == 0.0


def test_entropy_gradient_matches_mp_diff():
    rng = np.random.default_rng(7)
    K, M = 3, 2
    R, Q, T = random_order_parameters(rng, K, M, N=12)
    dR, dQ = entropy_gradient(R, Q, T)

    def along(direction_R, direction_Q):
        def function(t):
            return _shifted_entropy_mp(R, Q, T, direction_R, direction_Q, t)

        return float(mpmath.diff(function, 0))

    reference_R = np.empty_like(R)
    for k in range(K):
        for m in range(M):
            direction = np.zeros_like(R)
            direction[k, m] = 1.0
            with mpmath.workdps(REFERENCE_DPS):
                reference_R[k, m] = along(direction, np.zeros_like(Q))
    reference_Q = np.empty_like(Q)
    for k in range(K):
        for m in range(K):
            # An off-diagonal entry moves together with its mirror image.
            direction = np.zeros_like(Q)
            direction[k, m] = 1.0
            direction[m, k] = 1.0
            with mpmath.workdps(REFERENCE_DPS):
                reference_Q[k, m] = along(np.zeros_like(R), direction)
    tolerance = 1e-12 * max(np.max(np.abs(reference_R)), np.max(np.abs(reference_Q)))
    np.testing.assert_allclose(dR, reference_R, rtol=0, atol=tolerance)
    np.testing.assert_allclose(dQ, reference_Q, rtol=0, atol=tolerance)
    assert np.array_equal(dQ, dQ.T)


def _shifted_entropy_mp(R, Q, T, direction_R, direction_Q, t):
    """Return 1/2 ln det at (R + t direction_R, Q + t direction_Q) in mpmath."""
    R_mp = mpmath.matrix(R.tolist()) + t * mpmath.matrix(direction_R.tolist())
    Q_mp = mpmath.matrix(Q.tolist()) + t * mpmath.matrix(direction_Q.tolist())
    T_inverse = mpmath.inverse(mpmath.matrix(T.tolist()))
    return mpmath.log(mpmath.det(Q_mp - R_mp * T_inverse * R_mp.T)) / 2


@pytest.mark.parametrize("K", [2, 3, 6])
def test_entropy_gradient_chain_rule_to_symmetric(K):
    R, S, C = 0.6, 0.08, 0.12
    R_matrix, Q = site_symmetric_matrices(R, S, C, K)
    dR, dQ = entropy_gradient(R_matrix, Q)
    off_diagonal = ~np.eye(K, dtype=bool)
    chain_rule = [
        np.trace(dR),
        np.sum(dR[off_diagonal]),
        np.sum(np.triu(dQ, k=1)),
    ]
    # Sums of K^2 terms of size at most 10, each accurate to a few ulp.
    np.testing.assert_allclose(
        symmetric_entropy_gradient(R, S, C, K), chain_rule, rtol=0, atol=1e-13
    )


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=2, max_value=5),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_entropy_permutation_invariance(K, M, seed):
    rng = np.random.default_rng(seed)
    R, Q, T = random_order_parameters(rng, K, M, N=3 * (K + M))
    students = rng.permutation(K)
    teachers = rng.permutation(M)
    permuted = (
        R[np.ix_(students, teachers)],
        Q[np.ix_(students, students)],
        T[np.ix_(teachers, teachers)],
    )
    tolerance = 2 * full_error_bound(R, Q, T)
    assert abs(entropy(*permuted) - entropy(R, Q, T)) <= tolerance
    dR, dQ = entropy_gradient(R, Q, T)
    dR_permuted, dQ_permuted = entropy_gradient(*permuted)
    scale = 1e-12 * (np.max(np.abs(dR)) + np.max(np.abs(dQ)))
    np.testing.assert_allclose(
        dR_permuted, dR[np.ix_(students, teachers)], rtol=0, atol=scale
    )
    np.testing.assert_allclose(
        dQ_permuted, dQ[np.ix_(students, students)], rtol=0, atol=scale
    )


@pytest.mark.parametrize(
    "R, Q, T, message",
    [
        (np.full((2, 2), 0.9), np.eye(2), None, r"not positive semi-definite"),
        # Two identical students: Q - R R^T is singular.
        (np.zeros((2, 2)), np.ones((2, 2)), None, r"Q - R T\^-1 R\^T is not positive"),
        (np.zeros((1, 2)), np.eye(1), np.ones((2, 2)), r"T is not positive definite"),
        (np.zeros(3), np.eye(3), None, r"R must be a 2-D matrix"),
        (np.zeros((2, 3)), np.eye(3), None, r"Q must have shape \(2, 2\)"),
        (np.zeros((2, 2)), np.eye(2), np.eye(3), r"T must have shape \(2, 2\)"),
        (np.zeros((2, 2)), [[1, 0.1], [0.2, 1]], None, r"Q must be symmetric"),
        (np.zeros((2, 2)), np.eye(2), [[1, 2], [2, 1]], r"Cauchy-Schwarz"),
        ([[math.nan, 0], [0, 0]], np.eye(2), None, r"R\[0, 0\] = .*nan.* not finite"),
        (np.zeros((2, 2)), [[1, 0], [0, math.inf]], None, r"Q\[1, 1\] = .*inf"),
    ],
)
def test_entropy_domain_errors(R, Q, T, message):
    with pytest.raises(ValueError, match=message):
        entropy(R, Q, T)
    with pytest.raises(ValueError, match=message):
        entropy_gradient(R, Q, T)
