"""Tests of the high-temperature free energy and its derivatives."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reluspec.activations import Erf, ReLU, activation
from reluspec.theory.free_energy import (
    free_energy,
    free_energy_gradient,
    symmetric_free_energy,
    symmetric_free_energy_alpha_derivative_of_gradient,
    symmetric_free_energy_derivatives,
    symmetric_free_energy_gradient,
    symmetric_free_energy_gradient_mp,
    symmetric_free_energy_hessian,
    symmetric_free_energy_mp,
    symmetric_free_energy_third_derivative,
)

EPS = np.finfo(float).eps
REFERENCE_DPS = 40
ACTIVATIONS = [ReLU(), Erf()]


# -- independent references ----------------------------------------------------


def unit_pair_reference(activation, rho):
    """Return <g(u) g(v)> for unit variances and correlation rho, in mpmath.

    ReLU: the degree-1 arc-cosine kernel,
    (sqrt(1 - rho^2) + (pi - arccos rho) rho) / (2 pi).
    erf(x / sqrt 2): (2 / pi) arcsin(rho / 2).
    """
    rho = mpmath.mpf(rho)
    if isinstance(activation, ReLU):
        return (mpmath.sqrt(1 - rho**2) + (mpmath.pi - mpmath.acos(rho)) * rho) / (
            2 * mpmath.pi
        )
    return 2 / mpmath.pi * mpmath.asin(rho / 2)


def free_energy_reference(activation, R, S, C, alpha, K):
    """Return K alpha eps_g - s from the closed forms, at the current precision."""
    R, S, C, alpha, K = (mpmath.mpf(x) for x in (R, S, C, alpha, K))

    def pair(rho):
        return unit_pair_reference(activation, rho)

    error = pair(1) - pair(R) + (K - 1) / 2 * (pair(C) - 2 * pair(S) + pair(0))
    A = 1 - C - (R - S) ** 2
    B = 1 + (K - 1) * C - (R + (K - 1) * S) ** 2
    entropy = (K - 1) / 2 * mpmath.log(A) + mpmath.log(B) / 2
    return K * alpha * error - entropy


def symmetric_point(K, d, u, t):
    """Return (R, S, C) with R - S = d, R + (K-1) S = u and C inside the domain.

    ``t`` in (0, 1) places C between the bounds where the two log arguments of
    the entropy vanish.
    """
    k = K - 1
    S = (u - d) / K
    R = S + d
    low = (u * u - 1.0) / k
    high = 1.0 - d * d
    return R, S, low + t * (high - low)


def site_symmetric_matrices(R, S, C, K):
    """Return float (R, Q) matrices of the site-symmetric ansatz."""
    R_matrix = np.full((K, K), float(S))
    np.fill_diagonal(R_matrix, R)
    Q = np.full((K, K), float(C))
    np.fill_diagonal(Q, 1.0)
    return R_matrix, Q


def chain_rule_to_symmetric(dR, dQ):
    """Return (dF/dR, dF/dS, dF/dC) from full-matrix gradients."""
    K = dQ.shape[0]
    off_diagonal = ~np.eye(K, dtype=bool)
    return np.array([np.trace(dR), np.sum(dR[off_diagonal]), np.sum(np.triu(dQ, k=1))])


def partial_derivative_mp(function, point, orders):
    """Return a mixed partial derivative of an mpmath function by mp.diff."""
    with mpmath.workdps(REFERENCE_DPS):
        return mpmath.diff(function, [mpmath.mpf(x) for x in point], orders)


site_symmetric_states = st.builds(
    lambda activation, K, d, u, t, alpha: (
        (activation, K) + symmetric_point(K, d, u, t) + (alpha,)
    ),
    st.sampled_from(ACTIVATIONS),
    st.integers(min_value=2, max_value=8),
    st.floats(min_value=-0.95, max_value=0.95),
    st.floats(min_value=-0.95, max_value=0.95),
    st.floats(min_value=0.05, max_value=0.95),
    st.floats(min_value=0.0, max_value=50.0),
)

# Points well inside the domain (log arguments at least 0.1) for derivative
# checks; the last one has non-integer K.
DERIVATIVE_POINTS = [
    (0.3, 0.1, 0.2, 2.0, 2),
    (0.8, 0.05, 0.01, 7.5, 3),
    (0.2, 0.2, 0.1, 1.0, 5),
    (-0.4, 0.3, -0.2, 3.0, 4),
    (0.9, -0.02, 0.0, 40.0, 10),
    (0.5, 0.1, 0.05, 4.0, 2.5),
]


# -- site-symmetric free energy ------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(site_symmetric_states)
def test_symmetric_free_energy_matches_closed_form(state):
    activation, K, R, S, C, alpha = state
    with mpmath.workdps(REFERENCE_DPS):
        reference = free_energy_reference(activation, R, S, C, alpha, K)
    value = symmetric_free_energy(activation, R, S, C, alpha, K)
    # eps_g sums O(K) pair correlations of size at most 1, each to a few ulp,
    # and is multiplied by K alpha. The entropy arguments are at least 1e-3
    # here, which costs at most 3 digits of its O(K) terms.
    tolerance = 64 * EPS * (K * alpha * (1 + K) + 1e3 * K)
    assert abs(value - reference) <= tolerance


@settings(max_examples=20, deadline=None)
@given(site_symmetric_states)
def test_symmetric_free_energy_mp_matches_closed_form(state):
    activation, K, R, S, C, alpha = state
    with mpmath.workdps(60):
        reference = free_energy_reference(activation, R, S, C, alpha, K)
    value = symmetric_free_energy_mp(activation, R, S, C, alpha, K, dps=50)
    # Both are exact to about 50 digits for these exactly represented inputs.
    assert abs(value - reference) <= mpmath.mpf("1e-44") * (1 + abs(reference))


@settings(max_examples=40, deadline=None)
@given(site_symmetric_states)
def test_symmetric_free_energy_nonnegative(state):
    # eps_g is a mean square and so at least 0, while s <= 0 for Q_kk = 1, T = 1.
    activation, K, R, S, C, alpha = state
    assert symmetric_free_energy(activation, R, S, C, alpha, K) >= 0.0


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["relu", "erf"])
def test_symmetric_free_energy_at_zero_alpha(activation):
    from reluspec.theory.entropy import symmetric_entropy

    R, S, C, K = 0.4, 0.1, 0.05, 4
    value = symmetric_free_energy(activation, R, S, C, 0.0, K)
    assert value == -symmetric_entropy(R, S, C, K)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["relu", "erf"])
@pytest.mark.parametrize("R, S, C, alpha, K", DERIVATIVE_POINTS)
def test_symmetric_derivatives_match_mp_diff(activation, R, S, C, alpha, K):
    def function(r, s, c):
        return symmetric_free_energy_mp(
            activation, r, s, c, alpha, K, dps=mpmath.mp.dps
        )

    point = (R, S, C)
    unit = np.eye(3, dtype=int)
    gradient_reference = np.array(
        [float(partial_derivative_mp(function, point, unit[i])) for i in range(3)]
    )
    hessian_reference = np.array(
        [
            [
                float(partial_derivative_mp(function, point, unit[i] + unit[j]))
                for j in range(3)
            ]
            for i in range(3)
        ]
    )
    third_reference = np.empty((3, 3, 3))
    for i in range(3):
        for j in range(i, 3):
            for m in range(j, 3):
                orders = unit[i] + unit[j] + unit[m]
                entry = float(partial_derivative_mp(function, point, orders))
                for axes in [
                    (i, j, m),
                    (i, m, j),
                    (j, i, m),
                    (j, m, i),
                    (m, i, j),
                    (m, j, i),
                ]:
                    third_reference[axes] = entry

    gradient = symmetric_free_energy_gradient(activation, R, S, C, alpha, K)
    hessian = symmetric_free_energy_hessian(activation, R, S, C, alpha, K)
    third = symmetric_free_energy_third_derivative(activation, R, S, C, alpha, K)
    # The float formulas have a handful of roundings per entry on O(K alpha)
    # and O(K / A) terms with A >= 0.1, so 1e-12 relative to the largest
    # entry covers them.
    for value, reference in [
        (gradient, gradient_reference),
        (hessian, hessian_reference),
        (third, third_reference),
    ]:
        scale = np.max(np.abs(reference))
        np.testing.assert_allclose(value, reference, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["relu", "erf"])
@pytest.mark.parametrize("R, S, C, alpha, K", DERIVATIVE_POINTS[:4])
def test_symmetric_gradient_mp_matches_mp_diff(activation, R, S, C, alpha, K):
    def reference_function(r, s, c):
        return free_energy_reference(activation, r, s, c, alpha, K)

    gradient = symmetric_free_energy_gradient_mp(activation, R, S, C, alpha, K, dps=30)
    for i, orders in enumerate(np.eye(3, dtype=int)):
        reference = partial_derivative_mp(reference_function, (R, S, C), orders)
        # mp.diff at 40 digits of a closed form exact to 40 digits.
        assert abs(gradient[i] - reference) <= mpmath.mpf("1e-28") * (
            1 + abs(reference)
        )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["relu", "erf"])
@pytest.mark.parametrize("R, S, C, alpha, K", DERIVATIVE_POINTS[:4])
def test_alpha_derivative_of_gradient(activation, R, S, C, alpha, K):
    value = symmetric_free_energy_alpha_derivative_of_gradient(
        activation, R, S, C, alpha, K
    )
    for i, orders in enumerate(np.eye(3, dtype=int)):

        def function(r, s, c, a, i=i):
            return symmetric_free_energy_gradient_mp(
                activation, r, s, c, a, K, dps=mpmath.mp.dps
            )[i]

        # The mixed derivative d/dalpha of dF/dx_i, taken on the mp gradient.
        reference = partial_derivative_mp(function, (R, S, C, alpha), (0, 0, 0, 1))
        assert value[i] == pytest.approx(float(reference), rel=1e-13, abs=1e-14)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["relu", "erf"])
def test_symmetric_free_energy_near_perfect_learning(activation):
    # Near R = 1 both the entropy and eps_g involve cancellations that the
    # factored forms avoid, so the float values keep 13 digits.
    R, S, C, alpha, K = 1 - 2.0**-30, 2.0**-40, 2.0**-36, 30.0, 3
    reference = symmetric_free_energy_mp(activation, R, S, C, alpha, K, dps=40)
    value = symmetric_free_energy(activation, R, S, C, alpha, K)
    assert value == pytest.approx(float(reference), rel=1e-13)
    gradient_reference = symmetric_free_energy_gradient_mp(
        activation, R, S, C, alpha, K, dps=40
    )
    gradient = symmetric_free_energy_gradient(activation, R, S, C, alpha, K)
    for i in range(3):
        assert gradient[i] == pytest.approx(float(gradient_reference[i]), rel=1e-12)


# -- site-symmetric against full matrices --------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["relu", "erf"])
@pytest.mark.parametrize(
    "R, S, C, alpha, K",
    [
        (0.3, 0.1, 0.2, 2.0, 2),
        (0.8, 0.05, 0.01, 7.5, 3),
        (0.2, 0.2, 0.1, 1.0, 5),
        (-0.4, 0.3, -0.2, 3.0, 4),
        (0.9, -0.02, 0.0, 40.0, 6),
    ],
)
def test_symmetric_matches_full_matrices(activation, R, S, C, alpha, K):
    R_matrix, Q = site_symmetric_matrices(R, S, C, K)
    full = free_energy(activation, R_matrix, Q, alpha)
    symmetric = symmetric_free_energy(activation, R, S, C, alpha, K)
    # Two summation orders of O(K^2) terms of size up to K alpha.
    scale = 1 + K * alpha
    assert abs(full - symmetric) <= 1e-13 * scale * K

    dR, dQ = free_energy_gradient(activation, R_matrix, Q, alpha)
    gradient = symmetric_free_energy_gradient(activation, R, S, C, alpha, K)
    np.testing.assert_allclose(
        chain_rule_to_symmetric(dR, dQ), gradient, rtol=0, atol=1e-13 * scale * K**2
    )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["relu", "erf"])
@pytest.mark.parametrize(
    "R, S, C, alpha, K",
    [(0.3, 0.1, 0.2, 2.0, 2), (0.8, 0.05, 0.01, 7.5, 3), (0.6, 0.05, 0.1, 5.0, 5)],
)
def test_symmetric_hessian_matches_full_gradient(activation, R, S, C, alpha, K):
    def symmetric_gradient_from_full(x):
        R_matrix, Q = site_symmetric_matrices(*x, K)
        return chain_rule_to_symmetric(
            *free_energy_gradient(activation, R_matrix, Q, alpha)
        )

    x = np.array([R, S, C])
    h = 2e-4
    columns = []
    for direction in np.eye(3):
        # Five-point central difference. The truncation error h^4 |F^(5)| / 30 is
        # below 1e-8 because |F^(5)| <= 24 (|grad B| / B)^5 K is about 1e8 at
        # worst here, and the rounding error of the full gradient (1e-13) over
        # h is below 1e-9.
        values = [
            symmetric_gradient_from_full(x + j * h * direction) for j in (-2, -1, 1, 2)
        ]
        columns.append(
            (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h)
        )
    reference = np.column_stack(columns)
    hessian = symmetric_free_energy_hessian(activation, R, S, C, alpha, K)
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(hessian, reference, rtol=0, atol=1e-8 * scale)


def random_order_parameters(rng, K, M, N):
    """Return (R, Q, T) of random student and teacher weight vectors in R^N."""
    student = rng.standard_normal((K, N))
    teacher = rng.standard_normal((M, N))
    return student @ teacher.T / N, student @ student.T / N, teacher @ teacher.T / N


@settings(max_examples=20, deadline=None)
@given(
    st.sampled_from(ACTIVATIONS),
    st.integers(min_value=2, max_value=5),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.floats(min_value=0.0, max_value=20.0),
)
def test_full_free_energy_permutation_invariance(activation, K, M, seed, alpha):
    rng = np.random.default_rng(seed)
    R, Q, T = random_order_parameters(rng, K, M, N=3 * (K + M))
    students = rng.permutation(K)
    teachers = rng.permutation(M)
    permuted = (
        R[np.ix_(students, teachers)],
        Q[np.ix_(students, students)],
        alpha,
        T[np.ix_(teachers, teachers)],
    )
    value = free_energy(activation, R, Q, alpha, T)
    # The sums run in a different order, so rounding differs by a few ulp of
    # the largest term, which is at most K alpha times a pair correlation of
    # variances up to 4 or an entropy term of size 10.
    tolerance = 1e-12 * (1 + K * alpha) * K * M
    assert abs(free_energy(activation, *permuted) - value) <= tolerance
    dR, dQ = free_energy_gradient(activation, R, Q, alpha, T)
    dR_permuted, dQ_permuted = free_energy_gradient(activation, *permuted)
    np.testing.assert_allclose(
        dR_permuted, dR[np.ix_(students, teachers)], rtol=0, atol=tolerance
    )
    np.testing.assert_allclose(
        dQ_permuted, dQ[np.ix_(students, students)], rtol=0, atol=tolerance
    )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["relu", "erf"])
def test_full_gradient_matches_finite_differences(activation):
    rng = np.random.default_rng(3)
    K, M, alpha = 3, 2, 4.0
    R, Q, T = random_order_parameters(rng, K, M, N=15)
    dR, dQ = free_energy_gradient(activation, R, Q, alpha, T)
    h = 1e-4

    def derivative(direction_R, direction_Q):
        values = [
            free_energy(
                activation, R + j * h * direction_R, Q + j * h * direction_Q, alpha, T
            )
            for j in (-2, -1, 1, 2)
        ]
        return (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h)

    for k in range(K):
        for m in range(M):
            direction = np.zeros_like(R)
            direction[k, m] = 1.0
            # Five-point stencil: rounding about eps |F| / h = 1e-11.
            assert dR[k, m] == pytest.approx(
                derivative(direction, np.zeros_like(Q)), abs=1e-8
            )
    for k in range(K):
        for m in range(k, K):
            direction = np.zeros_like(Q)
            direction[k, m] = 1.0
            direction[m, k] = 1.0
            assert dQ[k, m] == pytest.approx(
                derivative(np.zeros_like(R), direction), abs=1e-8
            )


# -- invalid input -------------------------------------------------------------

SYMMETRIC_FUNCTIONS = [
    symmetric_free_energy,
    symmetric_free_energy_derivatives,
    symmetric_free_energy_gradient,
    symmetric_free_energy_hessian,
    symmetric_free_energy_alpha_derivative_of_gradient,
    symmetric_free_energy_third_derivative,
    symmetric_free_energy_mp,
    symmetric_free_energy_gradient_mp,
]


@pytest.mark.parametrize("function", SYMMETRIC_FUNCTIONS)
@pytest.mark.parametrize(
    "alpha, message",
    [
        (-0.5, r"alpha = -0.5 is invalid: .* at least 0"),
        (math.nan, r"alpha = nan must be a finite real number"),
        (math.inf, r"alpha = inf must be a finite real number"),
        (None, r"alpha = None must be a finite real number"),
    ],
)
def test_symmetric_rejects_invalid_alpha(function, alpha, message):
    with pytest.raises(ValueError, match=message):
        function(ReLU(), 0.3, 0.1, 0.1, alpha, 3)


@pytest.mark.parametrize("function", SYMMETRIC_FUNCTIONS)
@pytest.mark.parametrize(
    "R, S, C, K, message",
    [
        (0.5, 0.0, 0.8, 3, r"1 - C - \(R - S\)\^2 = -0.05 .* must be positive"),
        (0.6, 0.6, 0.0, 3, r"1 \+ \(K - 1\) C - \(R \+ \(K - 1\) S\)\^2 = -2.24"),
        (math.nan, 0.0, 0.0, 3, r"R = nan must be a finite real number"),
        (0.0, 0.0, 0.0, 0.5, r"K = 0.5 is invalid"),
    ],
)
def test_symmetric_rejects_invalid_order_parameters(function, R, S, C, K, message):
    with pytest.raises(ValueError, match=message):
        function(Erf(), R, S, C, 1.0, K)


@pytest.mark.parametrize("function", [free_energy, free_energy_gradient])
@pytest.mark.parametrize(
    "R, Q, alpha, message",
    [
        (np.zeros((2, 2)), np.eye(2), -1.0, r"alpha = -1.0 is invalid"),
        (np.zeros((2, 2)), np.eye(2), math.nan, r"alpha = nan must be a finite"),
        (np.full((2, 2), 0.9), np.eye(2), 1.0, r"not positive semi-definite"),
        (np.zeros((2, 2)), np.ones((2, 2)), 1.0, r"Q - R T\^-1 R\^T is not positive"),
        (np.zeros((2, 3)), np.eye(3), 1.0, r"Q must have shape \(2, 2\)"),
    ],
)
def test_full_rejects_invalid_input(function, R, Q, alpha, message):
    with pytest.raises(ValueError, match=message):
        function(ReLU(), R, Q, alpha)


@pytest.mark.parametrize(
    "function", [symmetric_free_energy_mp, symmetric_free_energy_gradient_mp]
)
@pytest.mark.parametrize("dps", [0, 2.5, True, "50"])
def test_mp_rejects_invalid_dps(function, dps):
    with pytest.raises(ValueError, match="dps = .* must be an integer from 1 to 10000"):
        function(Erf(), 0.3, 0.1, 0.1, 1.0, 3, dps=dps)


# -- fused derivatives ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", "erf"])
@pytest.mark.parametrize(
    "R, S, C, alpha, K",
    [
        (0.5, 0.1, 0.05, 3.0, 3),
        (0.95, 0.002, 0.001, 40.0, 10),
        (0.2, 0.2, -0.05, 1.0, 2),
    ],
)
def test_fused_derivatives_match_separate(name, R, S, C, alpha, K):
    """One call of symmetric_free_energy_derivatives gives what the separate
    functions give; the same formulas are summed in the same order, so the
    results agree to a few ulp of the largest entry."""
    from reluspec.theory.free_energy import symmetric_free_energy_derivatives

    act = activation(name)
    gradient, hessian, error_gradient, third = symmetric_free_energy_derivatives(
        act, R, S, C, alpha, K, order=3
    )
    expected = [
        symmetric_free_energy_gradient(act, R, S, C, alpha, K),
        symmetric_free_energy_hessian(act, R, S, C, alpha, K),
        symmetric_free_energy_alpha_derivative_of_gradient(act, R, S, C, alpha, K) / K,
        symmetric_free_energy_third_derivative(act, R, S, C, alpha, K),
    ]
    for value, reference in zip((gradient, hessian, error_gradient, third), expected):
        scale = np.max(np.abs(reference))
        assert np.max(np.abs(value - reference)) <= 1e-14 * scale


def test_fused_derivatives_reject_bad_order():
    from reluspec.theory.free_energy import symmetric_free_energy_derivatives

    with pytest.raises(ValueError, match="order"):
        symmetric_free_energy_derivatives(
            activation("relu"), 0.5, 0.1, 0.0, 1.0, 3, order=4
        )


# -- compiled evaluation ---------------------------------------------------------

# States near perfect learning, where the entropy's arguments are small and
# the factored forms and the series of ln(1 + x) - x take over.
near_perfect_states = st.builds(
    lambda act, K, gap, s, c, alpha: (act, K, 1.0 - gap, s * gap, c * gap, alpha),
    st.sampled_from(ACTIVATIONS),
    st.sampled_from([2, 3, 10, 7.5, 1000]),
    st.floats(min_value=1e-14, max_value=1e-2),
    st.floats(min_value=-0.5, max_value=0.5),
    st.floats(min_value=-0.5, max_value=0.5),
    st.floats(min_value=1e-3, max_value=1e3),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(site_symmetric_states, near_perfect_states))
def test_compiled_free_energy_matches_python(state):
    """The compiled F and derivatives repeat the Python expressions operation
    by operation, and the pair correlations run through the same kernel
    loop, so the bits agree exactly."""
    import sys

    module = sys.modules["reluspec.theory.free_energy"]
    act, K, R, S, C, alpha = state
    try:
        expected = module._symmetric_free_energy_derivatives_python(
            act, R, S, C, alpha, K, 2
        )
        expected_F = module._symmetric_free_energy_python(act, R, S, C, alpha, K)
    except ValueError:
        # Rounding put the state outside the domain: both paths must refuse.
        with pytest.raises(ValueError):
            symmetric_free_energy_derivatives(act, R, S, C, alpha, K)
        return
    values = symmetric_free_energy_derivatives(act, R, S, C, alpha, K)
    for value, reference in zip(values, expected):
        np.testing.assert_array_equal(value, reference)
    assert symmetric_free_energy(act, R, S, C, alpha, K) == expected_F


@pytest.mark.parametrize("value", ["0.3", 0.3 + 0.1j, [0.3]])
def test_compiled_path_validates_odd_inputs(value):
    """Inputs the compiled functions cannot take reach the validating path,
    which names the argument."""
    with pytest.raises(ValueError, match="R = .* must be a finite real number"):
        symmetric_free_energy_derivatives(ReLU(), value, 0.1, 0.1, 1.0, 3)
    with pytest.raises(ValueError, match="R = .* must be a finite real number"):
        symmetric_free_energy(ReLU(), value, 0.1, 0.1, 1.0, 3)
