"""Tests of the validation of order parameters and the site-symmetric matrices."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reluspec.order_parameters import (
    symmetric_matrices,
    validate_order_parameters,
    validate_site_symmetric,
)


def overlaps(K, M, N=50, seed=0):
    """Order parameters of random student and teacher weight vectors."""
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((K, N))
    B = rng.standard_normal((M, N))
    return J @ B.T / N, J @ J.T / N, B @ B.T / N


# -- full matrices ---------------------------------------------------------------------


def test_valid_matrices_are_returned_symmetrised():
    R, Q, T = overlaps(3, 2)
    Q[0, 1] += 1e-17  # asymmetry far below the tolerance
    R2, Q2, T2 = validate_order_parameters(R, Q, T)
    np.testing.assert_array_equal(R2, R)
    np.testing.assert_array_equal(Q2, Q2.T)
    np.testing.assert_array_equal(T2, T)


def test_teacher_defaults_to_identity():
    R = np.array([[0.5, 0.1, 0.0]])
    _, _, T = validate_order_parameters(R, [[1.0]])
    np.testing.assert_array_equal(T, np.eye(3))


def test_perfect_learning_is_valid():
    """R = Q = T from the same weights: a singular but valid joint covariance."""
    _, _, T = overlaps(4, 4)
    validate_order_parameters(T, T, T)


@pytest.mark.parametrize(
    "R, Q, T, pattern",
    [
        (np.ones(3), np.eye(1), None, "R must be a 2-D matrix"),
        (np.ones((2, 3)), np.eye(3), None, r"Q must have shape \(2, 2\)"),
        (np.zeros((2, 3)), np.eye(2), np.eye(2), r"T must have shape \(3, 3\)"),
        ([[0.1, math.nan]], np.eye(1), None, r"R\[0, 1\] = nan is not finite"),
        ([[0.1]], [[math.inf]], None, r"Q\[0, 0\] = inf is not finite"),
        ([[0.1]], [["a"]], None, "Q must be a real matrix"),
        (np.zeros((2, 1)), [[1.0, 0.2], [0.3, 1.0]], None, "Q must be symmetric"),
        (
            np.zeros((2, 1)),
            [[1.0, 0.0], [0.0, -1.0]],
            None,
            r"Q\[1, 1\] = -1.0 is a variance",
        ),
        (
            [[0.0, 1.2]],
            [[1.0]],
            None,
            r"R\[0, 1\] = 1.2 exceeds the Cauchy-Schwarz bound",
        ),
        (np.zeros((2, 1)), [[1.0, 1.5], [1.5, 1.0]], None, r"Q\[0, 1\] = 1.5 exceeds"),
    ],
)
def test_invalid_matrices_raise(R, Q, T, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_order_parameters(R, Q, T)


def test_joint_covariance_must_be_positive_semidefinite():
    """Every pair is a valid correlation, but Q - R R^T has eigenvalue -0.28."""
    R = [[0.8, 0.8], [0.0, 0.0]]
    with pytest.raises(ValueError, match="not positive semi-definite.*student 0"):
        validate_order_parameters(R, np.eye(2), np.eye(2))


def test_zero_variance_unit_is_allowed():
    R = [[0.0, 0.0], [0.6, 0.0]]
    Q = [[0.0, 0.0], [0.0, 1.0]]
    validate_order_parameters(R, Q)
    with pytest.raises(ValueError, match=r"R\[0, 1\]"):
        validate_order_parameters([[0.0, 1e-300], [0.6, 0.0]], Q)


# -- site-symmetric parameters ---------------------------------------------------------


def test_site_symmetric_valid_values_are_floats():
    assert validate_site_symmetric(0.5, 0.1, 0.2, 3) == (0.5, 0.1, 0.2, 3.0)
    assert validate_site_symmetric(1.0, 0.0, 0.0, 1) == (1.0, 0.0, 0.0, 1.0)
    assert validate_site_symmetric(np.float64(0.3), 0, 0, 2.5)[3] == 2.5


@pytest.mark.parametrize(
    "args, pattern",
    [
        ((math.nan, 0, 0, 2), "R = nan is not finite"),
        ((0.5, 0, 0, math.inf), "K = inf is not finite"),
        ((0.5, 0, 0, 0.5), r"K = 0.5 is invalid"),
        ((0.5, "x", 0, 2), "S = 'x' must be a real number"),
        ((1.1, 0, 0, 2), r"R = 1.1 is a correlation"),
        ((0.5, 0, -1.5, 2), r"C = -1.5 is a correlation"),
        ((0.9, -0.5, 0.0, 2), r"1 - C - \(R - S\)\^2 = -0.96"),
        ((0.9, 0.9, 0.0, 2), r"1 \+ \(K - 1\) C - \(R \+ \(K - 1\) S\)\^2 = -2.24"),
    ],
)
def test_site_symmetric_invalid_values_raise(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_site_symmetric(*args)


def test_site_symmetric_k_one_ignores_first_eigenvalue():
    """At K = 1 there are no off-diagonal units, so S and C do not constrain."""
    validate_site_symmetric(0.9, -0.9, -0.9, 1)


def test_site_symmetric_accepts_rounding_at_boundary():
    R = 0.6
    S = R - math.sqrt(1 - 0.2) * (1 + 1e-16)
    validate_site_symmetric(R, S, 0.2, 4)


def test_symmetric_matrices_structure():
    R, Q, T = symmetric_matrices(0.7, 0.1, 0.2, 3)
    np.testing.assert_array_equal(np.diag(R), [0.7] * 3)
    assert R[0, 1] == R[2, 0] == 0.1
    np.testing.assert_array_equal(np.diag(Q), [1.0] * 3)
    assert Q[1, 2] == 0.2
    np.testing.assert_array_equal(T, np.eye(3))
    with pytest.raises(ValueError, match="must be an integer"):
        symmetric_matrices(0.7, 0.1, 0.2, 2.5)


@settings(max_examples=150)
@given(R=st.floats(-1, 1), S=st.floats(-1, 1), C=st.floats(-1, 1), K=st.integers(1, 6))
def test_site_symmetric_agrees_with_full_validation(R, S, C, K):
    """The two eigenvalue conditions are equivalent to positive
    semi-definiteness of the full joint covariance (away from the boundary,
    where the tolerances differ)."""
    first = 1 - C - (R - S) ** 2 if K > 1 else 1.0
    second = 1 + (K - 1) * C - (R + (K - 1) * S) ** 2
    if min(first, second) > -1e-9 and min(first, second) < 1e-9:
        return
    try:
        validate_site_symmetric(R, S, C, K)
        symmetric_valid = True
    except ValueError:
        symmetric_valid = False
    R_full = np.full((K, K), S)
    np.fill_diagonal(R_full, R)
    Q_full = np.full((K, K), C)
    np.fill_diagonal(Q_full, 1.0)
    try:
        validate_order_parameters(R_full, Q_full)
        full_valid = True
    except ValueError:
        full_valid = False
    assert symmetric_valid == full_valid
