"""Tests of the two-group ansatz for partially specialised states.

The closed-form free energy is checked against the full-matrix free energy on
the structured matrices, its derivatives against finite differences of the
closed form, and the followed branch against the full-space gradient.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reluspec as rs
from reluspec.activations import Erf, ReLU
from reluspec.analysis.partial import TwoGroupProblem, follow_partial_branch
from reluspec.analysis.stability import find_full_space_bifurcations
from reluspec.theory.free_energy import symmetric_free_energy
from reluspec.theory.full_hessian import full_free_energy_gradient_vector

ACTIVATIONS = [ReLU(), Erf()]


def random_parameters(problem, rng):
    """Return valid parameters near a specialised site-symmetric state."""
    base = problem.site_symmetric(0.4, 0.05, 0.02)
    for _ in range(100):
        p = base + 0.08 * rng.standard_normal(base.size)
        if problem.is_valid(p):
            return p
    raise AssertionError("no valid parameters drawn")


@pytest.fixture(scope="module")
def relu3():
    return rs.solve(rs.SpecializationProblem("relu", 3), alpha=(4.0, 9.0))


@settings(max_examples=15)
@given(
    K=st.integers(2, 7),
    data=st.data(),
    seed=st.integers(0, 10_000),
    alpha=st.floats(0.0, 40.0),
    index=st.sampled_from([0, 1]),
)
def test_closed_form_matches_full_matrices(K, data, seed, alpha, index):
    K1 = data.draw(st.integers(1, K - 1))
    problem = TwoGroupProblem(ACTIVATIONS[index], K, K1)
    p = random_parameters(problem, np.random.default_rng(seed))
    closed = problem.free_energy(p, alpha)
    full = problem.free_energy_full(p, alpha)
    # Two double-precision sums of O(K^2) terms of size O(1 + alpha).
    assert closed == pytest.approx(full, rel=0, abs=1e-12 * K * K * (1 + alpha))


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("K, K1", [(2, 1), (4, 1), (5, 2), (4, 3)])
def test_derivatives_match_differences_of_closed_form(activation, K, K1):
    problem = TwoGroupProblem(activation, K, K1)
    p = random_parameters(problem, np.random.default_rng(K + K1))
    alpha, h = 3.0, 1e-5
    eye = np.eye(p.size)
    differences = np.array(
        [
            (
                problem.free_energy(p + h * e, alpha)
                - problem.free_energy(p - h * e, alpha)
            )
            / (2 * h)
            for e in eye
        ]
    )
    gradient = problem.gradient(p, alpha)
    # Central differences: truncation h^2 F''' ~ 1e-9, rounding eps F / h ~ 1e-11.
    np.testing.assert_allclose(
        gradient, differences, rtol=0, atol=1e-7 * np.max(np.abs(gradient))
    )
    hessian = problem.hessian(p, alpha)
    columns = np.column_stack(
        [
            (problem.gradient(p + h * e, alpha) - problem.gradient(p - h * e, alpha))
            / (2 * h)
            for e in eye
        ]
    )
    np.testing.assert_allclose(
        hessian, columns, rtol=0, atol=1e-7 * np.max(np.abs(hessian))
    )
    error_part = problem.error_gradient(p)
    np.testing.assert_allclose(
        error_part,
        (problem.gradient(p, alpha + 1.0) - problem.gradient(p, alpha - 1.0)) / 2.0,
        rtol=0,
        atol=1e-12 * np.max(np.abs(error_part)),
    )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("K, K1", [(3, 1), (6, 2)])
def test_site_symmetric_embedding(activation, K, K1):
    problem = TwoGroupProblem(activation, K, K1)
    p = problem.site_symmetric(0.6, 0.05, 0.03)
    assert problem.symmetry_breaking(p) <= 1e-15
    expected = symmetric_free_energy(activation, 0.6, 0.05, 0.03, 4.0, K)
    assert problem.free_energy(p, 4.0) == pytest.approx(expected, rel=1e-13)


def test_parameter_names_and_counts():
    problem = TwoGroupProblem("relu", 5, 1)
    assert problem.names == ("R1", "S12", "S21", "R2", "S22", "C12", "C22")
    assert problem.counts.tolist() == [1, 4, 4, 4, 12, 4, 6]
    # L^T L = diag(counts): the parameters set disjoint sets of entries.
    L = problem.embedding
    np.testing.assert_array_equal(L.T @ L, np.diag(problem.counts))
    problem = TwoGroupProblem("relu", 4, 2)
    assert problem.names == (
        "R1",
        "S11",
        "S12",
        "S21",
        "R2",
        "S22",
        "C11",
        "C12",
        "C22",
    )


def test_stationary_point_is_stationary_in_full_space():
    problem = TwoGroupProblem("erf", 4, 1)
    # Start near one specialised unit and three unspecialised ones.
    start = np.array([0.9, 0.0, 0.05, 0.3, 0.3, 0.0, 0.1])
    p = problem.stationary_point(start, 60.0)
    R, Q = problem.matrices(p)
    gradient = full_free_energy_gradient_vector(Erf(), R, Q, 60.0)
    # Newton's method ends at the rounding level of the gradient, about
    # eps times its largest terms K alpha I' ~ 1e2.
    assert np.max(np.abs(gradient)) < 1e-11
    # One specialised unit (R1 > S21) among three unspecialised (R2 = S22).
    assert problem.symmetry_breaking(p) > 0.1
    values = dict(zip(problem.names, p))
    assert values["R1"] > 0.5
    assert values["R2"] == pytest.approx(values["S22"], abs=1e-10)


def test_follow_branch_from_bifurcation(relu3):
    point = next(
        p
        for p in find_full_space_bifurcations(
            "relu", 3, relu3.branch("specialized R<S")
        )
        if p.block == "standard"
    )
    branch = follow_partial_branch(
        "relu", 3, 1, point, (5.5, 7.0), site_symmetric_branches=relu3.branches
    )
    problem = TwoGroupProblem("relu", 3, 1)
    start = int(np.argmin(np.abs(branch.alpha - point.alpha)))
    assert branch.alpha[start] == point.alpha
    assert problem.symmetry_breaking(branch.parameters[start]) <= 1e-15
    others = np.delete(np.arange(branch.alpha.size), start)
    assert others.size > 10
    for i in others[::5]:
        p, alpha = branch.parameters[i], branch.alpha[i]
        assert problem.symmetry_breaking(p) > 1e-4
        R, Q = problem.matrices(p)
        gradient = full_free_energy_gradient_vector(ReLU(), R, Q, alpha)
        # The continuation's newton_tol = 1e-9 applies to the gradient per
        # entry divided by 1 + alpha^2.
        assert np.max(np.abs(gradient)) <= 1e-9 * (1 + alpha**2)
        assert branch.free_energy[i] == pytest.approx(
            problem.free_energy_full(p, alpha)
        )
    # Every state is compared with an ansatz-stable site-symmetric state.
    assert np.all(np.isfinite(branch.equilibrium_free_energy))
    assert len(branch.status) == 2
    # The branch leaves an ansatz-stable but full-space-unstable state and
    # stays above the site-symmetric equilibrium in this range.
    assert not branch.below_equilibrium
    assert not branch.becomes_equilibrium


@pytest.mark.parametrize(
    "args, message",
    [
        (("relu", 1, 1), "K = 1"),
        (("relu", 4, 0), "K1 = 0"),
        (("relu", 4, 4), "K1 = 4"),
        (("relu", 4.0, 1), "K = 4.0"),
    ],
)
def test_problem_rejects_bad_sizes(args, message):
    with pytest.raises(ValueError, match=message):
        TwoGroupProblem(*args)


def test_follow_rejects_blocks_outside_the_ansatz(relu3):
    points = find_full_space_bifurcations("relu", 3, relu3.branch("unspecialized"))
    hook = next(p for p in points if p.block == "[K-2,1,1]")
    with pytest.raises(ValueError, match="no direction in the two-group ansatz"):
        follow_partial_branch("relu", 3, 1, hook, (4.0, 9.0))
    standard = next(p for p in points if p.block == "standard")
    with pytest.raises(ValueError, match="outside"):
        follow_partial_branch("relu", 3, 1, standard, (7.0, 9.0))


def test_invalid_parameters_raise():
    problem = TwoGroupProblem("relu", 3, 1)
    p = problem.site_symmetric(0.9, 0.0, 0.5)
    assert not problem.is_valid(p)
    with pytest.raises(ValueError, match="positive definite"):
        problem.free_energy(p, 1.0)
    with pytest.raises(ValueError, match="shape"):
        problem.free_energy(np.zeros(3), 1.0)


@pytest.mark.parametrize("block, K1", [("standard", 2), ("[K-2,2]", 2)])
def test_follow_rejects_multiple_null_space(block, K1):
    """At the branch point of the unspecialised branch (K - 1)^2 eigenvalues
    vanish together, so that no single branch leaves along a null vector.
    The site-symmetric branches themselves cross there."""
    result = rs.solve(rs.SpecializationProblem("erf", 5), alpha=(1.0, 100.0))
    points = find_full_space_bifurcations("erf", 5, result.branch("unspecialized"))
    point = next(p for p in points if p.block == block)
    assert point.singular_in_ansatz
    with pytest.raises(ValueError, match="bifurcation is not simple"):
        follow_partial_branch("erf", 5, K1, point, alpha=(1.0, 100.0))
