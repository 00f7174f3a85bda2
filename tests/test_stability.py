"""Tests of the full-space stability of site-symmetric states.

The closed-form symmetry blocks are checked against dense eigenvalues of the
full-space Hessian (:func:`full_free_energy_hessian`, itself checked against
mpmath in test_full_hessian.py), and the located bifurcations against sign
changes of the dense spectrum at states solved independently.
"""

import logging
import math

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import reluspec as rs
from reluspec import _kernels
from reluspec.activations import Erf, ReLU
from reluspec.analysis.stability import (
    BLOCK_NAMES,
    _block_matrices,
    block_spectrum,
    find_full_space_bifurcations,
    full_space_counts,
    full_space_stability,
    label_branch,
)
from reluspec.order_parameters import symmetric_matrices
from reluspec.theory.free_energy import symmetric_free_energy_hessian
from reluspec.theory.full_hessian import (
    full_free_energy_gradient_vector,
    full_free_energy_hessian,
)

ACTIVATIONS = [ReLU(), Erf()]


def dense_spectrum(activation, R, S, C, alpha, K):
    Rm, Qm, _ = symmetric_matrices(R, S, C, K)
    return np.linalg.eigvalsh(full_free_energy_hessian(activation, Rm, Qm, alpha))


def block_eigenvalues(blocks):
    return np.sort(
        np.concatenate([np.repeat(b.eigenvalues, b.multiplicity) for b in blocks])
    )


def site_symmetric_state(K, d, u, t):
    """Return (R, S, C) with R - S = d, R + (K - 1) S = u and C inside the domain:
    ``t`` in (0, 1) places C between the bounds where the entropy's arguments
    vanish."""
    S = (u - d) / K
    R = S + d
    low = (u * u - 1.0) / (K - 1)
    high = 1.0 - d * d
    return R, S, low + t * (high - low)


@pytest.fixture(scope="module")
def relu5():
    return rs.solve(rs.SpecializationProblem("relu", 5), alpha=(0.5, 12.0))


@pytest.fixture(scope="module")
def erf3():
    return rs.solve(rs.SpecializationProblem("erf", 3), alpha=(1.0, 70.0))


# -- block spectrum ---------------------------------------------------------------


@settings(max_examples=20)
@given(
    K=st.sampled_from([2, 3, 4, 5]),
    d=st.floats(-0.9, 0.9),
    u=st.floats(-0.9, 0.9),
    t=st.floats(0.05, 0.95),
    alpha=st.floats(0.0, 80.0),
    index=st.sampled_from([0, 1]),
    unspecialized=st.booleans(),
)
def test_block_spectrum_matches_dense(K, d, u, t, alpha, index, unspecialized):
    activation = ACTIVATIONS[index]
    if unspecialized:
        d = 0.0
    R, S, C = site_symmetric_state(K, d, u, t)
    blocks = block_spectrum(activation, R, S, C, alpha, K)
    dense = dense_spectrum(activation, R, S, C, alpha, K)
    values = block_eigenvalues(blocks)
    assert values.size == dense.size == K * K + K * (K - 1) // 2
    # Both are double-precision spectra of the same symmetric matrix: they
    # agree to a few eps times its norm and the condition of Q - R R^T.
    condition = 1.0 / min(1.0 - C - d * d, 1.0 + (K - 1) * C - u * u)
    tolerance = 1e-13 * condition * np.max(np.abs(dense))
    np.testing.assert_allclose(values, dense, rtol=0, atol=tolerance)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
def test_block_spectrum_matches_dense_at_k12(activation):
    R, S, C = site_symmetric_state(12, 0.5, 0.7, 0.4)
    dense = dense_spectrum(activation, R, S, C, 9.0, 12)
    values = block_eigenvalues(block_spectrum(activation, R, S, C, 9.0, 12))
    np.testing.assert_allclose(
        values, dense, rtol=0, atol=1e-11 * np.max(np.abs(dense))
    )


@pytest.mark.parametrize("K", [2, 3, 4, 5, 10, 100, 1000])
def test_block_sizes_and_multiplicities(K):
    blocks = block_spectrum(ReLU(), 0.5, 0.1 / K, 0.0, 3.0, K)
    names = [block.name for block in blocks]
    expected = {2: ["trivial", "standard"], 3: ["trivial", "standard", "[K-2,1,1]"]}
    assert names == expected.get(K, list(BLOCK_NAMES))
    total = sum(block.eigenvalues.size * block.multiplicity for block in blocks)
    assert total == K * K + K * (K - 1) // 2
    by_name = {block.name: block for block in blocks}
    assert by_name["standard"].multiplicity == K - 1
    if K >= 4:
        assert by_name["[K-2,2]"].multiplicity == K * (K - 3) // 2
        assert by_name["[K-2,2]"].eigenvalues.size == 2
    if K >= 3:
        assert by_name["[K-2,1,1]"].multiplicity == (K - 1) * (K - 2) // 2
        assert by_name["standard"].eigenvalues.size == 4
    for block in blocks:
        assert len(block.basis) == block.matrix.shape[0]


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("K", [2, 3, 7, 200])
def test_trivial_block_is_ansatz_hessian_in_orthonormal_coordinates(activation, K):
    """D^-1/2 H_sym D^-1/2 with D = diag(K, K(K-1), K(K-1)/2), the squared
    norms of the directions that R, S and C move in the full space."""
    R, S, C = site_symmetric_state(K, 0.3, 0.6, 0.5)
    blocks = block_spectrum(activation, R, S, C, 5.0, K)
    ansatz = symmetric_free_energy_hessian(activation, R, S, C, 5.0, K)
    metric = np.sqrt(np.array([K, K * (K - 1), K * (K - 1) / 2]))
    expected = np.linalg.eigvalsh(ansatz / np.outer(metric, metric))
    trivial = blocks[0]
    assert trivial.name == "trivial"
    np.testing.assert_allclose(
        trivial.eigenvalues, expected, rtol=0, atol=1e-12 * np.max(np.abs(expected))
    )


def test_unspecialized_degeneracy():
    """At R = S the eigenvalue 1/A - alpha I''(S), with A = 1 - C, has
    multiplicity (K - 1)^2 in the dense spectrum."""
    K, R, C, alpha = 4, 0.2, 0.05, 6.0
    activation = ReLU()
    value = 1.0 / (1.0 - C) - alpha / (2 * math.pi * math.sqrt(1.0 - R * R))
    dense = dense_spectrum(activation, R, R, C, alpha, K)
    assert np.sum(np.abs(dense - value) < 1e-12) == (K - 1) ** 2


# -- stability labels ------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("K", [3, 5])
def test_stability_counts_match_dense(activation, K):
    rng = np.random.default_rng(K)
    for _ in range(8):
        R, S, C = site_symmetric_state(
            K, *rng.uniform([-0.8, -0.8, 0.1], [0.8, 0.8, 0.9])
        )
        alpha = rng.uniform(0.0, 60.0)
        stability = full_space_stability(activation, R, S, C, alpha, K)
        dense = dense_spectrum(activation, R, S, C, alpha, K)
        assert stability.n_unstable == int(np.sum(dense < 0.0))
        problem = rs.SpecializationProblem(activation, K)
        assert stability.n_unstable_ansatz == problem.n_unstable((R, S, C), alpha)
        for name, count, multiplicity in stability.unstable_blocks:
            block = next(b for b in stability.blocks if b.name == name)
            assert count == int(np.sum(block.eigenvalues < 0.0))
            assert multiplicity == block.multiplicity
            assert stability.min_eigenvalue[name] < 0.0


def test_description_names_blocks():
    # At alpha = 0 only the entropy acts, and it is concave. At R = S = 0.2,
    # C = 0.05, alpha = 8 the eigenvalue 1/A - alpha I''(S) = 1.05 - 1.30 is
    # negative in all (K - 1)^2 = 16 directions of the trivial, standard,
    # [K-2,2] and [K-2,1,1] blocks, and the other eigenvalues are positive.
    stable = full_space_stability(ReLU(), 0.5, 0.01, 0.0, 0.0, 5)
    assert stable.description == "stable"
    stability = full_space_stability(ReLU(), 0.2, 0.2, 0.05, 8.0, 5)
    assert stability.n_unstable == 16
    assert stability.description.startswith("unstable: 16 directions")
    assert "[K-2,1,1] 1 x 6" in stability.description


@pytest.mark.parametrize("fixture", ["relu5", "erf3"])
def test_full_gradient_vanishes_on_branches(fixture, request):
    result = request.getfixturevalue(fixture)
    activation = rs.activation(result.activation)
    K = result.K
    for branch in result.branches:
        for alpha, R, S, C in zip(branch.alpha, branch.R, branch.S, branch.C):
            Rm, Qm, _ = symmetric_matrices(R, S, C, K)
            gradient = full_free_energy_gradient_vector(activation, Rm, Qm, alpha)
            # solve() continues with newton_tol = 1e-11 on the gradient per
            # matrix entry divided by 1 + alpha^2.
            assert np.max(np.abs(gradient)) <= 1e-11 * (1 + alpha**2), (
                branch.name,
                alpha,
            )
            # No symmetry-breaking component beyond rounding: the gradient is
            # constant on the diagonal of R, off it, and on Q.
            G = gradient[: K * K].reshape(K, K)
            parts = [np.diag(G), G[~np.eye(K, dtype=bool)], gradient[K * K :]]
            for part in parts:
                assert np.ptp(part) <= 1e-12 * (1 + alpha), (branch.name, alpha)


def test_label_branch_matches_pointwise(relu5):
    branch = relu5.branch("specialized R<S")
    counts, descriptions = label_branch(
        "relu", 5, branch.alpha, branch.R, branch.S, branch.C
    )
    assert counts.shape == branch.alpha.shape
    for i in range(0, branch.alpha.size, 7):
        stability = full_space_stability(
            "relu", branch.R[i], branch.S[i], branch.C[i], branch.alpha[i], 5
        )
        assert counts[i] == stability.n_unstable
        assert descriptions[i] == stability.description
    # Stable inside the ansatz at large alpha, but not in the full space.
    assert branch.n_unstable[-1] == 0
    assert counts[-1] > 0
    assert descriptions[-1].startswith("unstable outside the ansatz only")


# -- bifurcations --------------------------------------------------------------------


def _solve_state(problem, point, alpha):
    return problem.stationary_point((point.R, point.S, point.C), alpha)


@pytest.mark.parametrize(
    "branch_name, block, multiplicity",
    [("specialized R>S", "standard", 4), ("specialized R<S", "[K-2,2]", 5)],
)
def test_bifurcation_is_a_dense_sign_change(relu5, branch_name, block, multiplicity):
    points = find_full_space_bifurcations("relu", 5, relu5.branch(branch_name))
    point = next(p for p in points if p.block == block)
    assert point.multiplicity == multiplicity
    assert not point.singular_in_ansatz
    assert point.alpha_error < 1e-10 * point.alpha
    problem = rs.SpecializationProblem("relu", 5)
    counts = []
    for factor in (1 - 1e-9, 1 + 1e-9):
        alpha = point.alpha * factor
        u = _solve_state(problem, point, alpha)
        counts.append(int(np.sum(dense_spectrum(ReLU(), *u, alpha, 5) < 0.0)))
    # The slope of the eigenvalue decides which side is unstable.
    expected = multiplicity if point.eigenvalue_slope < 0 else -multiplicity
    assert counts[1] - counts[0] == expected


def test_label_changes_at_bifurcation(relu5):
    point = next(
        p
        for p in find_full_space_bifurcations(
            "relu", 5, relu5.branch("specialized R<S")
        )
        if p.block == "[K-2,2]"
    )
    problem = rs.SpecializationProblem("relu", 5)
    alphas = np.array([point.alpha * (1 - 1e-6), point.alpha * (1 + 1e-6)])
    states = np.array([_solve_state(problem, point, a) for a in alphas])
    counts, descriptions = label_branch("relu", 5, alphas, *states.T)
    assert abs(counts[1] - counts[0]) == point.multiplicity
    below, above = descriptions
    assert ("[K-2,2]" in below) != ("[K-2,2]" in above)


def test_unspecialized_branch_point_has_full_multiplicity(relu5):
    points = find_full_space_bifurcations("relu", 5, relu5.branch("unspecialized"))
    assert {p.block for p in points} == {"standard", "[K-2,2]", "[K-2,1,1]"}
    assert sum(p.multiplicity for p in points) + 1 == (5 - 1) ** 2
    assert all(p.singular_in_ansatz for p in points)
    # One eigenvalue in all blocks: the same alpha, to the root tolerance.
    alphas = [p.alpha for p in points]
    assert max(alphas) - min(alphas) <= 1e-12 * alphas[0]
    branch_point = next(c for c in relu5.critical_points if c.kind == "branch_point")
    assert alphas[0] == pytest.approx(branch_point.alpha, rel=1e-10)


def test_no_bifurcation_reported_at_branch_start(erf3):
    for name in ("specialized R>S", "specialized R<S"):
        for point in find_full_space_bifurcations("erf", 3, erf3.branch(name)):
            assert abs(point.R - point.S) > 1e-3


# -- input validation ------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        ((0.5, 0.0, 0.0, 1.0, 1), "K = 1"),
        ((0.5, 0.0, 0.0, 1.0, 2.5), "K = 2.5"),
        ((0.5, 0.0, 0.0, -1.0, 3), "alpha = -1.0"),
        ((0.9, 0.0, 0.5, 1.0, 3), "1 - C - \\(R - S\\)\\^2"),
        ((1.0, 0.0, 0.0, 1.0, 3), "must be positive"),
        ((0.5, 0.0, float("nan"), 1.0, 3), "C = nan"),
    ],
)
def test_rejects_invalid_input(args, message):
    with pytest.raises(ValueError, match=message):
        block_spectrum(ReLU(), *args)


def test_label_branch_rejects_bad_arrays():
    with pytest.raises(ValueError, match="one length"):
        label_branch("relu", 3, [1.0, 2.0], [0.1], [0.1], [0.0])
    with pytest.raises(ValueError, match="state 1"):
        label_branch("relu", 3, [1.0, 2.0], [0.1, 0.9], [0.1, 0.0], [0.0, 0.5])
    with pytest.raises(ValueError, match="rtol"):
        full_space_stability("relu", 0.1, 0.1, 0.0, 1.0, 3, rtol=-1.0)


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_branch_point_end_is_no_crossing(name, caplog):
    """At K = 4 a specialised branch starts with a block eigenvalue that is
    zero to rounding; that end is the branch point, reported once on the
    unspecialised branch, and no crossing of the specialised branch is
    searched there."""
    with caplog.at_level(logging.WARNING, logger="reluspec"):
        result = rs.solve(rs.SpecializationProblem(name, 4), alpha=(1.0, 80.0))
    assert not [r for r in caplog.records if "could not locate" in r.getMessage()]
    (branch_point,) = [p for p in result.critical_points if p.kind == "branch_point"]
    at_branch_point = [
        p
        for p in result.critical_points
        if p.kind == "symmetry_breaking"
        and abs(p.alpha - branch_point.alpha) <= 1e-9 * branch_point.alpha
    ]
    assert at_branch_point
    assert all(p.branches == ("unspecialized",) for p in at_branch_point)


def test_threshold_is_per_block():
    """A block whose eigenvalues are 1e11 times smaller than another's keeps
    its negative eigenvalue: each block's rounding is relative to its own
    size."""
    from reluspec.analysis.stability import Block, _stability_from_blocks

    def block(name, values, multiplicity):
        values = np.array(values)
        return Block(name, values, multiplicity, np.diag(values), ("a", "b"))

    large = block("trivial", [1.0, 1e8], 1)
    small = block("standard", [-1e-3, 1.0], 7)
    marginal = block("[K-2,2]", [-1e-12, 1.0], 5)
    stability = _stability_from_blocks([large, small, marginal], rtol=1e-10)
    assert stability.n_unstable == 7
    assert stability.unstable_blocks == (("standard", 1, 7),)


@pytest.mark.parametrize("name, K", [("relu", 19), ("relu", 100000), ("erf", 5)])
def test_full_count_never_below_ansatz_count(name, K):
    result = rs.solve(rs.SpecializationProblem(name, K), alpha=(0.5, 100.0))
    for branch in result.branches:
        assert np.all(branch.n_unstable_full >= branch.n_unstable)
    unspecialized = result.branch("unspecialized")
    (branch_point,) = [p for p in result.critical_points if p.kind == "branch_point"]
    past = unspecialized.alpha > branch_point.alpha * (1 + 1e-6)
    assert np.all(unspecialized.n_unstable_full[past] >= 1)


def test_small_blocks_negative_at_large_K():
    """erf K = 1000 on the R < S branch at alpha = 59284: the trivial block
    reaches 1e15 while the other blocks have eigenvalues of about -2 to -4,
    sums of terms of order 1e4. All three count as unstable:
    (K - 1) + K (K - 3) / 2 + (K - 1)(K - 2) / 2 directions."""
    K = 1000
    state = (-0.0005776404401879298, 0.0010015792920513372, 1.9782826431753068e-10)
    stability = full_space_stability("erf", *state, 59284.0159467794, K)
    for block in ("standard", "[K-2,2]", "[K-2,1,1]"):
        assert stability.min_eigenvalue[block] < -1.0
    assert stability.n_unstable == (K - 1) + K * (K - 3) // 2 + (K - 1) * (K - 2) // 2


# -- compiled blocks -------------------------------------------------------------

EPS = np.finfo(float).eps

# Offset of each block's eigenvalues in the output of
# _kernels.symmetric_block_spectrum, whose term scales start at offset 10.
SPECTRUM_OFFSET = {"trivial": 0, "standard": 3, "[K-2,2]": 7, "[K-2,1,1]": 9}
BLOCK_SIZE = {"trivial": 3, "standard": 4, "[K-2,2]": 2, "[K-2,1,1]": 1}
# Offset of each block's matrix (row-major) in the output of
# _kernels.symmetric_block_matrices.
MATRIX_OFFSET = {"trivial": 0, "standard": 9, "[K-2,2]": 25, "[K-2,1,1]": 29}


@st.composite
def block_states(draw):
    """Return ``(activation, R, S, C, alpha, K)`` at a valid site-symmetric
    state, from K = 2 up to 1e5 and up to 1e6 of conditioning of M."""
    activation = draw(st.sampled_from(ACTIVATIONS))
    K = draw(
        st.one_of(
            st.sampled_from([2, 3, 4]),
            st.integers(5, 60),
            st.integers(1000, 100_000),
        )
    )
    d = 0.0 if draw(st.booleans()) else draw(st.floats(-0.95, 0.95))
    u = draw(st.floats(-0.95, 0.95))
    t = draw(st.floats(1e-6, 1.0 - 1e-6))
    alpha = draw(st.one_of(st.floats(0.0, 100.0), st.floats(0.0, 1e5)))
    R, S, C = site_symmetric_state(K, d, u, t)
    return activation, R, S, C, alpha, K


def compiled_blocks(activation, R, S, C, alpha, K):
    spectrum = np.empty(_kernels.BLOCK_SPECTRUM_SIZE)
    matrices = np.empty(_kernels.BLOCK_MATRICES_SIZE)
    args = (activation._kind, R, S, C, alpha, K)
    assert _kernels.symmetric_block_spectrum(*args, spectrum) == 0
    assert _kernels.symmetric_block_matrices(*args, matrices) == 0
    return spectrum, matrices


def python_blocks_or_none(activation, R, S, C, alpha, K):
    """Return the Python block matrices, or None (after checking that the
    compiled path declines too) where rounding put the state outside the
    domain."""
    try:
        return _block_matrices(activation, R, S, C, alpha, K)
    except ValueError:
        out = np.empty(_kernels.BLOCK_SPECTRUM_SIZE)
        args = (activation._kind, R, S, C, alpha, K)
        assert _kernels.symmetric_block_spectrum(*args, out) == 1
        return None


@settings(max_examples=300)
@given(block_states())
def test_compiled_blocks_match_python(state):
    """The compiled matrices and term scales repeat the Python expressions
    bit for bit. The eigenvalues come from Jacobi rotations instead of
    LAPACK; both are backward stable, with errors measured against mpmath
    below 2.1 and 7 eps times the Frobenius norm, so that they agree to
    16 eps ||A||_F."""
    blocks = python_blocks_or_none(*state)
    assume(blocks is not None)
    spectrum, matrices = compiled_blocks(*state)

    present = set()
    for index, name in enumerate(BLOCK_NAMES):
        match = [block for block in blocks if block[0] == name]
        if not match:
            start = SPECTRUM_OFFSET[name]
            assert np.all(np.isnan(spectrum[start : start + BLOCK_SIZE[name]]))
            assert np.isnan(spectrum[10 + index])
            continue
        present.add(name)
        _, matrix, _, term_scale = match[0]
        n = matrix.shape[0]

        start = MATRIX_OFFSET[name]
        np.testing.assert_array_equal(
            matrices[start : start + n * n].reshape(n, n), matrix
        )
        assert spectrum[10 + index] == term_scale

        values = spectrum[SPECTRUM_OFFSET[name] : SPECTRUM_OFFSET[name] + n]
        assert np.all(np.diff(values) >= 0.0)
        reference = np.linalg.eigvalsh(matrix)
        tolerance = 16.0 * EPS * np.linalg.norm(matrix)
        np.testing.assert_allclose(values, reference, rtol=0.0, atol=tolerance)

    K = state[-1]
    assert ("[K-2,2]" in present) == (K >= 4)
    assert ("[K-2,1,1]" in present) == (K >= 3)
    if K == 2:
        assert np.all(np.isnan(spectrum[5:7]))


@settings(max_examples=40)
@given(block_states())
def test_compiled_eigenvalues_match_mpmath(state):
    """Against the eigenvalues of the same matrices at 40 digits, the Jacobi
    eigenvalues are within 4 eps ||A||_F (2.1 measured on 5600 states)."""
    blocks = python_blocks_or_none(*state)
    assume(blocks is not None)
    spectrum, _ = compiled_blocks(*state)
    with mpmath.workdps(40):
        for name, matrix, _, _ in blocks:
            exact = mpmath.eigsy(mpmath.matrix(matrix.tolist()), eigvals_only=True)
            exact = np.sort([float(value) for value in exact])
            n = matrix.shape[0]
            values = spectrum[SPECTRUM_OFFSET[name] : SPECTRUM_OFFSET[name] + n]
            tolerance = 4.0 * EPS * np.linalg.norm(matrix)
            np.testing.assert_allclose(values, exact, rtol=0.0, atol=tolerance)


def _near_threshold(blocks, rtol=1e-10, margin=1e-9) -> bool:
    """True when an eigenvalue lies within ``margin`` (relative to the block's
    size) of its threshold in _stability_from_blocks."""
    for block in blocks:
        largest = float(np.max(np.abs(block.eigenvalues)))
        threshold = -(rtol * largest + 64.0 * EPS * block.term_scale)
        size = max(largest, block.term_scale)
        if np.any(np.abs(block.eigenvalues - threshold) <= margin * size):
            return True
    return False


@settings(max_examples=300)
@given(block_states())
def test_compiled_counts_match_python(state):
    """Where no eigenvalue lies within 1e-9 of the block's size of its
    threshold, the counts agree: the two spectra differ by at most
    16 eps ||A||_F <= 32 eps max|eigenvalue| (about 7e-15 of the block), and
    the thresholds by rtol times that."""
    blocks = python_blocks_or_none(*state)
    assume(blocks is not None)
    stability = full_space_stability(*state)
    assume(not _near_threshold(stability.blocks))
    counts = full_space_counts(*state)
    assert counts.n_unstable == stability.n_unstable
    assert counts.n_unstable_ansatz == stability.n_unstable_ansatz
    assert counts.unstable_blocks == stability.unstable_blocks
    assert counts.description == stability.description
    assert counts.stable == stability.stable


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("K", [2, 3, 5])
def test_compiled_counts_match_dense(activation, K):
    rng = np.random.default_rng(10 + K)
    for _ in range(8):
        R, S, C = site_symmetric_state(
            K, *rng.uniform([-0.8, -0.8, 0.1], [0.8, 0.8, 0.9])
        )
        alpha = rng.uniform(0.0, 60.0)
        counts = full_space_counts(activation, R, S, C, alpha, K)
        dense = dense_spectrum(activation, R, S, C, alpha, K)
        assert counts.n_unstable == int(np.sum(dense < 0.0))
        problem = rs.SpecializationProblem(activation, K)
        assert counts.n_unstable_ansatz == problem.n_unstable((R, S, C), alpha)


def test_compiled_counts_at_large_K():
    """The state of test_small_blocks_negative_at_large_K, through the
    compiled path: three blocks unstable, the trivial block stable."""
    K = 1000
    state = (-0.0005776404401879298, 0.0010015792920513372, 1.9782826431753068e-10)
    counts = full_space_counts("erf", *state, 59284.0159467794, K)
    assert counts.unstable_blocks == (
        ("standard", 1, K - 1),
        ("[K-2,2]", 1, K * (K - 3) // 2),
        ("[K-2,1,1]", 1, (K - 1) * (K - 2) // 2),
    )
    assert counts.n_unstable_ansatz == 0
    assert counts.description.startswith("unstable outside the ansatz only")


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((0.5, 0.0, 0.0, 1.0, 1), {}),
        ((0.5, 0.0, 0.0, 1.0, 2.5), {}),
        ((0.5, 0.0, 0.0, 1.0, 3.0), {}),
        ((0.5, 0.0, 0.0, 1.0, True), {}),
        ((0.5, 0.0, 0.0, -1.0, 3), {}),
        ((0.5, 0.0, 0.0, math.nan, 3), {}),
        ((0.5, 0.0, 0.0, math.inf, 3), {}),
        ((0.9, 0.0, 0.5, 1.0, 3), {}),
        ((1.0, 0.0, 0.0, 1.0, 3), {}),
        ((1.5, 0.0, 0.0, 1.0, 3), {}),
        ((0.5, 0.0, math.nan, 1.0, 3), {}),
        ((0.5, 0.0, math.inf, 1.0, 3), {}),
        (("R", 0.0, 0.0, 1.0, 3), {}),
        ((0.5, 0.0, 0.3 + 0.1j, 1.0, 3), {}),
        ((0.1, 0.1, 0.0, 1.0, 3), {"rtol": -1.0}),
        ((0.1, 0.1, 0.0, 1.0, 3), {"rtol": 1.0}),
        ((0.1, 0.1, 0.0, 1.0, 3), {"rtol": math.nan}),
    ],
)
def test_counts_raise_like_full_space_stability(activation, args, kwargs):
    with pytest.raises(ValueError) as expected:
        full_space_stability(activation, *args, **kwargs)
    with pytest.raises(ValueError) as raised:
        full_space_counts(activation, *args, **kwargs)
    assert str(raised.value) == str(expected.value)


@pytest.mark.parametrize(
    "args",
    [
        ("0.5", "0.01", "0.0", "4.0", 5),
        (0.5, 0.01, 0.0, 4.0, np.int64(5)),
        (np.array(0.5), 0.01, 0, 4, 5),
    ],
)
def test_counts_take_odd_valid_inputs(args):
    """Inputs that the compiled function does not take (strings, numpy
    integers for K) reach full_space_stability, which accepts them."""
    expected = full_space_stability("relu", *args)
    counts = full_space_counts("relu", *args)
    assert counts.n_unstable == expected.n_unstable
    assert counts.unstable_blocks == expected.unstable_blocks


def test_counts_dispatch_on_exact_type(monkeypatch):
    """Only exact ReLU and erf instances reach the compiled function; a
    subclass, which may override the pair correlation, takes the Python
    path."""

    class ShiftedReLU(ReLU):
        pass

    calls = []

    def record(*args):
        calls.append(args)
        return None

    monkeypatch.setattr(_kernels, "symmetric_block_counts", record)
    state = (0.2, 0.2, 0.05, 8.0, 5)
    counts = full_space_counts(ShiftedReLU(), *state)
    assert not calls
    assert counts.n_unstable == 16
    full_space_counts(ReLU(), *state)
    assert len(calls) == 1


def test_block_spectrum_output_size_is_checked():
    state = (_kernels.RELU, 0.5, 0.0, 0.0, 1.0, 3)
    with pytest.raises(ValueError, match="needs 14"):
        _kernels.symmetric_block_spectrum(*state, np.empty(13))
    with pytest.raises(ValueError, match="needs 30"):
        _kernels.symmetric_block_matrices(*state, np.empty(29))


@pytest.mark.parametrize("fixture", ["relu5", "erf3"])
def test_compiled_segment_state_matches_python(fixture, request, monkeypatch):
    """The compiled Newton iteration of a branch segment reaches the state of
    the Python one. Both stop one step after a step of at most 1e-11 of the
    coordinates, which puts each within rounding of the root; 1e-11 bounds
    their difference with room for the conditioning of the system."""
    from reluspec.analysis.problem import StationaryPointError
    from reluspec.analysis.stability import _Segment

    result = request.getfixturevalue(fixture)
    name, K = ("relu", 5) if fixture == "relu5" else ("erf", 3)
    problem = rs.SpecializationProblem(name, K)
    checked = 0
    for branch in result.branches:
        u = np.column_stack([branch.R, branch.S, branch.C])
        for i in range(1, len(branch.alpha) - 2, 3):
            segment = _Segment(
                problem, u[i], branch.alpha[i], u[i + 1], branch.alpha[i + 1]
            )
            for t in (0.0, 0.4, 1.0):
                states = []
                for kind in (problem._kind, None):
                    monkeypatch.setattr(problem, "_kind", kind)
                    try:
                        states.append(segment.state(t))
                    except StationaryPointError:
                        # Next to a branch point the system is singular.
                        states.append(None)
                monkeypatch.undo()
                assert (states[0] is None) == (states[1] is None)
                if states[0] is None:
                    continue
                (compiled_u, compiled_alpha), (python_u, python_alpha) = states
                assert np.max(np.abs(compiled_u - python_u)) <= 1e-11
                assert compiled_alpha == pytest.approx(python_alpha, rel=1e-11)
                checked += 1
    assert checked >= 30


def test_crossing_next_to_branch_point_at_large_K():
    """At K = 1e4 the [K-2,1,1] eigenvalue of the R < S branch is negative
    at |R - S| = 1e-4, next to the branch point, and crosses zero before
    |R - S| = 1.1e-3. The crossing is reported between the two traced
    states whose full-space counts differ by that block's multiplicity."""
    K = 10000
    result = rs.solve(rs.SpecializationProblem("relu", K), alpha=(5.0, 8.0))
    branch = result.branch("specialized R<S")
    (point,) = find_full_space_bifurcations("relu", K, branch)
    assert point.block == "[K-2,1,1]"
    outside = np.asarray(branch.n_unstable_full) - np.asarray(branch.n_unstable)
    (j,) = [
        i
        for i in range(len(branch.alpha) - 1)
        if min(branch.alpha[i : i + 2]) < point.alpha < max(branch.alpha[i : i + 2])
    ]
    assert abs(outside[j] - outside[j + 1]) == (K - 1) * (K - 2) // 2
    assert abs(branch.R[j] - branch.S[j]) < 2e-4


@pytest.mark.parametrize("K", [2, 3, 4, 10])
def test_compiled_term_scales_match_blocks(K):
    """The term scale of each block from the compiled spectrum is that of
    the Python block matrices, also where a block before it is absent
    (K = 3 has no [K-2,2] block)."""
    from reluspec.analysis.stability import _block_matrices, _spectra

    R, S, C = site_symmetric_state(K, 0.3, 0.4, 0.5)
    _, _, term_scales = _spectra(ReLU(), (R, S, C), 7.0, K)
    blocks = _block_matrices(ReLU(), R, S, C, 7.0, K)
    expected = {name: terms for name, _, _, terms in blocks}
    assert term_scales == expected
