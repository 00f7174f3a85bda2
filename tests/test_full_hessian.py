"""Tests of the free energy's gradient and Hessian in the full order-parameter space.

References are independent of the library: the free energy is written here in
mpmath from the closed forms of the pair correlations (general variances) and
``1/2 ln det(Q - R T^-1 R^T)``, and differentiated by central differences at
40 digits.
"""

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reluspec.activations import Erf, ReLU
from reluspec.order_parameters import symmetric_matrices
from reluspec.theory.free_energy import (
    free_energy_gradient,
    symmetric_free_energy_hessian,
)
from reluspec.theory.full_hessian import (
    from_full_variables,
    full_free_energy_gradient_vector,
    full_free_energy_hessian,
    full_free_energy_hessian_vector_product,
    full_variable_count,
    full_variable_labels,
    full_variables,
)

ACTIVATIONS = [ReLU(), Erf()]
DPS = 40
# Step of the mpmath central differences: truncation h^2 ~ 1e-24 and rounding
# 10^-DPS / h^2 ~ 1e-16 relative, both far below the tolerances below.
STEP = mp.mpf("1e-12")


# -- independent reference ------------------------------------------------------------


def pair_reference(name, c11, c12, c22):
    """<g(u) g(v)> for a general 2 x 2 covariance, in mpmath.

    ReLU: sqrt(c11 c22) / (2 pi) (sin t + (pi - t) cos t), cos t = c12 / sqrt(c11 c22).
    erf(x / sqrt 2): (2 / pi) arcsin(c12 / sqrt((1 + c11)(1 + c22))).
    """
    if name == "relu":
        scale = mp.sqrt(c11 * c22)
        theta = mp.acos(c12 / scale)
        return scale / (2 * mp.pi) * (mp.sin(theta) + (mp.pi - theta) * mp.cos(theta))
    return 2 / mp.pi * mp.asin(c12 / mp.sqrt((1 + c11) * (1 + c22)))


def free_energy_reference(name, x, K, M, q, T, alpha):
    """F = K alpha eps_g - 1/2 ln det(Q - R T^-1 R^T) at the full variables x."""
    R = mp.matrix(K, M)
    for k in range(K):
        for m in range(M):
            R[k, m] = x[k * M + m]
    Q = mp.matrix(K, K)
    index = K * M
    for k in range(K):
        Q[k, k] = q[k]
        for l in range(k + 1, K):
            Q[k, l] = Q[l, k] = x[index]
            index += 1
    student = sum(
        pair_reference(name, Q[k, k], Q[k, l], Q[l, l])
        for k in range(K)
        for l in range(K)
    )
    cross = sum(
        pair_reference(name, Q[k, k], R[k, m], T[m, m])
        for k in range(K)
        for m in range(M)
    )
    teacher = sum(
        pair_reference(name, T[m, m], T[m, n], T[n, n])
        for m in range(M)
        for n in range(M)
    )
    error = student / (2 * K) - cross / mp.sqrt(K * M) + teacher / (2 * M)
    conditional = Q - R * mp.inverse(T) * R.T
    return K * alpha * error - mp.log(mp.det(conditional)) / 2


def random_state(seed, K, M, general):
    """Return valid float (R, Q, T) with unit Q diagonal; T = I unless general.

    Built from actual weight vectors in N = K + M + 3 dimensions, so that the
    joint covariance is positive definite: ``Q - R T^-1 R^T`` is the Gram
    matrix of the student vectors' parts orthogonal to the teacher vectors.
    """
    rng = np.random.default_rng(seed)
    N = K + M + 3
    if general:
        teacher = np.eye(M, N) + 0.3 * rng.standard_normal((M, N))
    else:
        teacher = np.eye(M, N)
    students = 0.4 * rng.standard_normal((K, M)) @ teacher + rng.standard_normal((K, N))
    students /= np.linalg.norm(students, axis=1)[:, None]
    T = teacher @ teacher.T
    R = students @ teacher.T
    Q = students @ students.T
    np.fill_diagonal(Q, 1.0)
    return R, Q, T


def reference_derivatives(name, R, Q, T, alpha):
    """Return the gradient and Hessian of the reference F by central differences."""
    K, M = R.shape
    with mp.workdps(DPS):
        x0 = [mp.mpf(v) for v in full_variables(R, Q)]
        q = [mp.mpf(1)] * K
        T_mp = mp.matrix(T.tolist())
        a = mp.mpf(alpha)
        n = len(x0)

        def F(shifts):
            x = list(x0)
            for i, s in shifts:
                x[i] += s * STEP
            return free_energy_reference(name, x, K, M, q, T_mp, a)

        center = F([])
        gradient = np.zeros(n)
        hessian = np.zeros((n, n))
        for i in range(n):
            plus, minus = F([(i, 1)]), F([(i, -1)])
            gradient[i] = float((plus - minus) / (2 * STEP))
            hessian[i, i] = float((plus - 2 * center + minus) / STEP**2)
            for j in range(i):
                value = (
                    F([(i, 1), (j, 1)])
                    - F([(i, 1), (j, -1)])
                    - F([(i, -1), (j, 1)])
                    + F([(i, -1), (j, -1)])
                ) / (4 * STEP**2)
                hessian[i, j] = hessian[j, i] = float(value)
    return gradient, hessian


# -- the variables ----------------------------------------------------------------


def test_variables_round_trip():
    R, Q, _ = random_state(0, 4, 3, False)
    x = full_variables(R, Q)
    assert x.shape == (full_variable_count(4, 3),)
    assert full_variable_count(4, 3) == 4 * 3 + 6
    R_back, Q_back = from_full_variables(x, 4, 3)
    np.testing.assert_array_equal(R_back, R)
    np.testing.assert_allclose(Q_back, Q, rtol=0, atol=0)


def test_variable_order_and_labels():
    R = np.arange(6.0).reshape(2, 3)
    Q = np.array([[1.0, 0.1, 0.2], [0.1, 1.0, 0.3], [0.2, 0.3, 1.0]])
    x = full_variables(np.vstack([R, [[7.0, 8.0, 9.0]]]), Q)
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 8.0, 9.0, 0.1, 0.2, 0.3]
    labels = full_variable_labels(3, 3)
    assert labels[:3] == ["R[0,0]", "R[0,1]", "R[0,2]"]
    assert labels[9:] == ["Q[0,1]", "Q[0,2]", "Q[1,2]"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: from_full_variables(np.zeros(6), 2, 2), r"shape \(5,\)"),
        (lambda: from_full_variables(np.zeros(5), 0, 2), "K = 0"),
        (lambda: full_variables(np.zeros((2, 2)), np.eye(3)), "Q must have shape"),
        (lambda: full_variable_count(2, 1.5), "M = 1.5"),
    ],
)
def test_variables_reject_bad_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- gradient and Hessian against the mpmath reference --------------------------------


@settings(max_examples=6)
@given(
    seed=st.integers(0, 10_000),
    K=st.integers(2, 3),
    M=st.integers(1, 3),
    general=st.booleans(),
    alpha=st.floats(0.0, 20.0),
    index=st.sampled_from([0, 1]),
)
def test_hessian_matches_mpmath_differences(seed, K, M, general, alpha, index):
    activation = ACTIVATIONS[index]
    R, Q, T = random_state(seed, K, M, general)
    gradient_ref, hessian_ref = reference_derivatives(activation.name, R, Q, T, alpha)
    hessian = full_free_energy_hessian(activation, R, Q, alpha, T)
    gradient = full_free_energy_gradient_vector(activation, R, Q, alpha, T)
    scale = np.max(np.abs(hessian_ref))
    # Double-precision rounding of W = M^-1 and of the kernels is about
    # cond(M) eps ~ 1e-14 relative here (cond(M) < 100); the reference is
    # accurate to ~1e-16.
    np.testing.assert_allclose(hessian, hessian_ref, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(
        gradient, gradient_ref, rtol=0, atol=1e-12 * np.max(np.abs(gradient_ref))
    )


@settings(max_examples=4)
@given(
    seed=st.integers(0, 10_000),
    K=st.integers(2, 5),
    M=st.integers(1, 5),
    alpha=st.floats(0.0, 30.0),
    index=st.sampled_from([0, 1]),
)
def test_hessian_matches_differences_of_gradient(seed, K, M, alpha, index):
    """Central differences of the library's gradient (another code path)."""
    activation = ACTIVATIONS[index]
    R, Q, T = random_state(seed, K, M, True)
    x = full_variables(R, Q)
    hessian = full_free_energy_hessian(activation, R, Q, alpha, T)
    h = 1e-6
    columns = []
    for i in range(x.size):
        shift = np.zeros(x.size)
        shift[i] = h
        plus = free_energy_gradient(
            activation, *from_full_variables(x + shift, K, M), alpha, T
        )
        minus = free_energy_gradient(
            activation, *from_full_variables(x - shift, K, M), alpha, T
        )
        columns.append((full_variables(*plus) - full_variables(*minus)) / (2 * h))
    differences = np.column_stack(columns)
    # Truncation h^2 |F''''| ~ 1e-11 and rounding eps / h ~ 1e-10, relative.
    scale = max(1.0, np.max(np.abs(hessian)))
    np.testing.assert_allclose(hessian, differences, rtol=0, atol=2e-8 * scale)
    np.testing.assert_array_equal(hessian, hessian.T)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
def test_gradient_vector_matches_library_gradient(activation):
    R, Q, T = random_state(7, 4, 3, True)
    expected = full_variables(*free_energy_gradient(activation, R, Q, 1.7, T))
    gradient = full_free_energy_gradient_vector(activation, R, Q, 1.7, T)
    np.testing.assert_allclose(gradient, expected, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
def test_hessian_vector_product_matches_dense(activation):
    R, Q, T = random_state(3, 4, 5, True)
    hessian = full_free_energy_hessian(activation, R, Q, 4.0, T)
    rng = np.random.default_rng(1)
    for _ in range(3):
        v = rng.standard_normal(hessian.shape[0])
        product = full_free_energy_hessian_vector_product(activation, R, Q, 4.0, v, T)
        # Different orders of summation: rounding of a few ulp of |H| |v|.
        np.testing.assert_allclose(
            product, hessian @ v, rtol=0, atol=1e-13 * np.max(np.abs(hessian)) * v.size
        )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("K", [2, 3, 5])
def test_site_symmetric_chain_rule(activation, K):
    """L^T H L with the directions that R, S and C move is the ansatz Hessian."""
    R, S, C, alpha = 0.45, 0.08, 0.03, 3.0
    Rm, Qm, _ = symmetric_matrices(R, S, C, K)
    hessian = full_free_energy_hessian(activation, Rm, Qm, alpha)
    zero_Q = np.zeros((K, K))
    ones = np.ones((K, K))
    directions = np.column_stack(
        [
            full_variables(np.eye(K), zero_Q),
            full_variables(ones - np.eye(K), zero_Q),
            full_variables(np.zeros((K, K)), ones - np.eye(K)),
        ]
    )
    expected = symmetric_free_energy_hessian(activation, R, S, C, alpha, K)
    np.testing.assert_allclose(
        directions.T @ hessian @ directions, expected, rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
def test_hessian_commutes_with_permutations(activation):
    """Permuting student and teacher units together leaves a site-symmetric
    state and F unchanged, so it permutes the Hessian into itself (the
    symmetry behind the blocks of the stability analysis)."""
    Rm, Qm, _ = symmetric_matrices(0.4, 0.1, 0.05, 4)
    hessian = full_free_energy_hessian(activation, Rm, Qm, 2.0)
    permutation = [2, 0, 3, 1]
    labels = full_variable_labels(4, 4)
    position = {label: i for i, label in enumerate(labels)}

    def moved(label):
        a, b = (permutation[int(t)] for t in label[2:-1].split(","))
        if label[0] == "Q" and a > b:
            a, b = b, a
        return position[f"{label[0]}[{a},{b}]"]

    order = np.array([moved(label) for label in labels])
    assert sorted(order.tolist()) == list(range(len(labels)))
    np.testing.assert_allclose(
        hessian[np.ix_(order, order)],
        hessian,
        rtol=0,
        atol=1e-13 * np.max(np.abs(hessian)),
    )


@pytest.mark.parametrize(
    "R, Q, alpha, message",
    [
        (np.zeros((2, 2)), np.eye(2), -1.0, "alpha = -1.0"),
        (np.zeros((2, 2)), np.eye(2), float("nan"), "alpha = nan"),
        (np.full((2, 2), 0.8), np.eye(2), 1.0, "not positive"),
        (np.zeros((2, 2)), np.array([[1.0, 1.2], [1.2, 1.0]]), 1.0, "Q"),
    ],
)
def test_rejects_invalid_input(R, Q, alpha, message):
    for function in (full_free_energy_hessian, full_free_energy_gradient_vector):
        with pytest.raises(ValueError, match=message):
            function(ReLU(), R, Q, alpha)


def test_product_rejects_bad_vector():
    R, Q, _ = random_state(0, 2, 2, False)
    with pytest.raises(ValueError, match="shape"):
        full_free_energy_hessian_vector_product(ReLU(), R, Q, 1.0, np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        full_free_energy_hessian_vector_product(ReLU(), R, Q, 1.0, np.full(5, np.nan))
