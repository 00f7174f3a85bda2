"""Tests of the generalisation error for full matrices and the site-symmetric form."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reluspec.activations import Erf, ReLU
from reluspec.order_parameters import symmetric_matrices
from reluspec.theory.generalization import (
    generalization_error,
    generalization_error_gradient,
    symmetric_generalization_error,
    symmetric_generalization_error_gradient,
    symmetric_generalization_error_hessian,
    symmetric_generalization_error_mp,
)

ACTIVATIONS = [ReLU(), Erf()]
IDS = ["relu", "erf"]
EPS = np.finfo(float).eps


def overlaps(K, M, N=40, seed=0, teacher_noise=1.0):
    """Order parameters of random weights; the student is a noisy teacher
    (for K = M) so that the error is neither 0 nor of order 1."""
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((M, N))
    J = rng.standard_normal((K, N))
    if K == M:
        J = B + teacher_noise * J
    return J @ B.T / N, J @ J.T / N, B @ B.T / N


def generalization_error_mp(act, R, Q, T, dps=40):
    """The full-matrix formula in mpmath, entry by entry (nested lists or arrays)."""
    K, M = len(R), len(R[0])
    with mpmath.workdps(dps):
        pair = act.pair_mp
        student = mpmath.fsum(
            pair(Q[k][k], Q[k][l], Q[l][l], dps=dps) for k in range(K) for l in range(K)
        )
        cross = mpmath.fsum(
            pair(Q[k][k], R[k][m], T[m][m], dps=dps) for k in range(K) for m in range(M)
        )
        teacher = mpmath.fsum(
            pair(T[m][m], T[m][n], T[n][n], dps=dps) for m in range(M) for n in range(M)
        )
        return student / (2 * K) - cross / mpmath.sqrt(K * M) + teacher / (2 * M)


site_symmetric = st.tuples(
    st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1), st.integers(1, 8)
).filter(
    lambda p: (
        (p[3] == 1 or 1 - p[2] - (p[0] - p[1]) ** 2 > 1e-6)
        and 1 + (p[3] - 1) * p[2] - (p[0] + (p[3] - 1) * p[1]) ** 2 > 1e-6
    )
)


# -- full matrices ---------------------------------------------------------------------


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("K, M", [(3, 3), (2, 5), (4, 1)])
def test_full_matrix_against_mpmath(act, K, M):
    R, Q, T = overlaps(K, M, seed=K + 10 * M)
    value = generalization_error(act, R, Q, T)
    reference = generalization_error_mp(act, R, Q, T)
    # Three sums of K**2, K M and M**2 terms of order 1, each to a few ulp.
    assert abs(value - reference) <= 8 * EPS * (K + M) ** 2


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("K, M", [(3, 3), (2, 4)])
def test_full_matrix_against_monte_carlo(act, K, M):
    """eps_g = <(sigma - tau)**2> / 2 from 10**6 sampled Gaussian fields with
    the joint covariance [[Q, R], [R^T, T]] (fixed seed), within 5 standard
    errors."""
    R, Q, T = overlaps(K, M, seed=7, teacher_noise=0.7)
    joint = np.block([[Q, R], [R.T, T]])
    rng = np.random.default_rng(99)
    fields = rng.multivariate_normal(np.zeros(K + M), joint, size=1_000_000)
    sigma = act(fields[:, :K]).sum(axis=1) / math.sqrt(K)
    tau = act(fields[:, K:]).sum(axis=1) / math.sqrt(M)
    samples = 0.5 * (sigma - tau) ** 2
    standard_error = samples.std() / math.sqrt(samples.size)
    value = generalization_error(act, R, Q, T)
    assert abs(value - samples.mean()) < 5 * standard_error


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_zero_error_at_perfect_learning(act):
    for K in (1, 2, 5):
        _, _, T = overlaps(K, K, seed=K)
        assert generalization_error(act, T, T, T) == 0.0
    assert generalization_error(act, np.eye(3), np.eye(3)) == 0.0


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@settings(max_examples=40)
@given(K=st.integers(1, 5), M=st.integers(1, 5), seed=st.integers(0, 10**6))
def test_error_nonnegative_and_permutation_invariant(act, K, M, seed):
    R, Q, T = overlaps(K, M, N=max(K + M, 6), seed=seed)
    value = generalization_error(act, R, Q, T)
    assert value >= -8 * EPS * (K + M) ** 2
    rng = np.random.default_rng(seed)
    p = rng.permutation(K)
    q = rng.permutation(M)
    permuted = generalization_error(act, R[p][:, q], Q[p][:, p], T[q][:, q])
    assert permuted == pytest.approx(value, rel=1e-13, abs=8 * EPS * (K + M) ** 2)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_full_matrix_invalid_input(act):
    with pytest.raises(ValueError, match="positive semi-definite"):
        generalization_error(act, [[0.8, 0.8], [0.0, 0.0]], np.eye(2))
    with pytest.raises(ValueError, match=r"Q must have shape"):
        generalization_error_gradient(act, np.zeros((2, 2)), np.eye(3))


# -- gradient of the full-matrix error -------------------------------------------------


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("K, M", [(3, 3), (2, 3)])
def test_full_gradient_against_mp_diff(act, K, M):
    """Each entry against mpmath differentiation of the mpmath error along
    the corresponding direction (Q_kl and Q_lk together off the diagonal)."""
    R, Q, T = overlaps(K, M, seed=3)
    dR, dQ = generalization_error_gradient(act, R, Q, T)
    assert np.array_equal(dQ, dQ.T)

    def directional(direction_R, direction_Q):
        def f(t):
            R_t = [
                [R[k, m] + t * direction_R[k][m] for m in range(M)] for k in range(K)
            ]
            Q_t = [
                [Q[k, l] + t * direction_Q[k][l] for l in range(K)] for k in range(K)
            ]
            return generalization_error_mp(act, R_t, Q_t, T.tolist(), dps=mpmath.mp.dps)

        with mpmath.workdps(30):
            return float(mpmath.diff(f, 0))

    zero_R = np.zeros((K, M))
    zero_Q = np.zeros((K, K))
    scale = np.abs(dR).max() + np.abs(dQ).max()
    for k in range(K):
        for m in range(M):
            direction = zero_R.copy()
            direction[k, m] = 1
            numeric = directional(direction.tolist(), zero_Q.tolist())
            assert dR[k, m] == pytest.approx(numeric, abs=1e-14 * scale)
    for k in range(K):
        for l in range(k, K):
            direction = zero_Q.copy()
            direction[k, l] = direction[l, k] = 1
            numeric = directional(zero_R.tolist(), direction.tolist())
            assert dQ[k, l] == pytest.approx(numeric, abs=1e-14 * scale)


# -- site-symmetric form ---------------------------------------------------------------


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@settings(max_examples=60)
@given(params=site_symmetric)
def test_symmetric_matches_full_matrices(act, params):
    R, S, C, K = params
    full = generalization_error(act, *symmetric_matrices(R, S, C, K))
    value = symmetric_generalization_error(act, R, S, C, K)
    assert value == pytest.approx(full, rel=1e-13, abs=8 * EPS * K**2)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@settings(max_examples=60)
@given(params=site_symmetric)
def test_symmetric_against_mpmath(act, params):
    R, S, C, K = params
    value = symmetric_generalization_error(act, R, S, C, K)
    reference = symmetric_generalization_error_mp(act, R, S, C, K, dps=30)
    # Relative to the size of the terms, which cancel when C is close to 2 S
    # and I(C) - 2 I(S) + I(0) is of second order.
    terms = abs(reference) + (K - 1) * (abs(C) + abs(S))
    assert abs(value - reference) <= 16 * EPS * terms


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("K", [1, 2, 7])
def test_symmetric_near_perfect_learning(act, K):
    """At R = 1 - 1e-12, S = C = 0 the relative error is below 1e-12 (it is a
    few ulp)."""
    for R, S, C in [
        (1 - 1e-12, 0.0, 0.0),
        (1 - 1e-9, 1e-11, -3e-11),
        (1 - 1e-10, 1e-13, 1e-13),
    ]:
        value = symmetric_generalization_error(act, R, S, C, K)
        reference = symmetric_generalization_error_mp(act, R, S, C, K, dps=40)
        if reference == 0:  # K = 1 at R = 1
            assert value == 0.0
        else:
            assert abs(value / reference - 1) < 1e-14
    assert symmetric_generalization_error(act, 1.0, 0.0, 0.0, K) == 0.0


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_symmetric_real_K_interpolates(act):
    """The formula is affine in K at fixed R, S, C."""
    values = [
        symmetric_generalization_error(act, 0.6, 0.05, 0.1, K) for K in (2, 2.5, 3)
    ]
    assert values[1] == pytest.approx((values[0] + values[2]) / 2, rel=1e-14)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize(
    "params", [(0.6, 0.05, 0.1, 3), (0.95, -0.02, 0.01, 5), (0.3, 0.3, 0.2, 2)]
)
def test_symmetric_derivatives_against_mp_diff(act, params):
    R, S, C, K = params
    gradient = symmetric_generalization_error_gradient(act, R, S, C, K)
    hessian = symmetric_generalization_error_hessian(act, R, S, C, K)
    with mpmath.workdps(40):
        point = [mpmath.mpf(x) for x in (R, S, C)]

        def f(r, s, c):
            return symmetric_generalization_error_mp(act, r, s, c, K, dps=mpmath.mp.dps)

        for i in range(3):
            order = [0, 0, 0]
            order[i] = 1
            numeric = mpmath.diff(f, point, tuple(order))
            assert gradient[i] == pytest.approx(float(numeric), rel=1e-14, abs=1e-16)
            for j in range(3):
                order = [0, 0, 0]
                order[i] += 1
                order[j] += 1
                numeric = mpmath.diff(f, point, tuple(order))
                assert hessian[i, j] == pytest.approx(
                    float(numeric), rel=1e-13, abs=1e-15
                )


def test_symmetric_hessian_at_perfect_learning():
    hessian = symmetric_generalization_error_hessian(ReLU(), 1.0, 0.0, 0.0, 3)
    assert hessian[0, 0] == -math.inf
    assert np.isfinite(hessian[1:, 1:]).all()
    gradient = symmetric_generalization_error_gradient(ReLU(), 1.0, 0.0, 0.0, 3)
    assert gradient[0] == -0.5


def test_symmetric_k_one_ignores_s_and_c():
    act = ReLU()
    assert symmetric_generalization_error(act, 0.5, 0.9, -0.9, 1) == pytest.approx(
        symmetric_generalization_error(act, 0.5, 0.0, 0.0, 1), rel=0, abs=0
    )
    np.testing.assert_array_equal(
        symmetric_generalization_error_gradient(act, 0.5, 1.0, 1.0, 1)[1:], [0.0, 0.0]
    )
    np.testing.assert_array_equal(
        symmetric_generalization_error_hessian(act, 0.5, 1.0, 1.0, 1)[1:, 1:], 0.0
    )


@pytest.mark.parametrize("act", ACTIVATIONS, ids=IDS)
def test_symmetric_gradient_matches_full_gradient(act):
    """dR summed over the diagonal, over the off-diagonal entries, and dQ over
    the pairs k < l give the site-symmetric gradient."""
    R, S, C, K = 0.7, 0.1, 0.2, 4
    dR, dQ = generalization_error_gradient(act, *symmetric_matrices(R, S, C, K))
    expected = symmetric_generalization_error_gradient(act, R, S, C, K)
    off = ~np.eye(K, dtype=bool)
    assert np.trace(dR) == pytest.approx(expected[0], rel=1e-13)
    assert dR[off].sum() == pytest.approx(expected[1], rel=1e-13)
    assert np.triu(dQ, 1).sum() == pytest.approx(expected[2], rel=1e-13)


@pytest.mark.parametrize(
    "args, pattern",
    [
        ((1.1, 0, 0, 2), "R = 1.1"),
        ((0.5, 0, 0, 0), "K = 0"),
        ((0.9, -0.5, 0.0, 2), "positive"),
        ((math.nan, 0, 0, 2), "not finite"),
    ],
)
def test_symmetric_invalid_input(args, pattern):
    for function in (
        symmetric_generalization_error,
        symmetric_generalization_error_gradient,
        symmetric_generalization_error_hessian,
        symmetric_generalization_error_mp,
    ):
        with pytest.raises(ValueError, match=pattern):
            function(ReLU(), *args)


def test_symmetric_mp_rejects_bad_dps():
    with pytest.raises(ValueError, match="dps"):
        symmetric_generalization_error_mp(ReLU(), 0.5, 0, 0, 2, dps=0)


@settings(max_examples=30)
@given(params=site_symmetric)
def test_symmetric_error_nonnegative(params):
    for act in ACTIVATIONS:
        value = symmetric_generalization_error(act, *params)
        assert value >= -16 * EPS * params[3]
