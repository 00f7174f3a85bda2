"""The compiled loops of the specialisation analysis against their Python
versions: the continuation stepper of the site-symmetric problem and the
damped Newton descent of ``SpecializationProblem.local_minimum``.

Both versions of each loop take the same decisions with the same formulas.
They differ only by the rounding of their small linear solves (LAPACK
against Gaussian elimination and Jacobi rotations), so that they reach the
same points to within the corrector's convergence.
"""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import reluspec as rs
from reluspec.analysis.problem import StationaryPointError
from reluspec.continuation import PALC, ContinuationOptions, continuation

CASES = [("relu", 2), ("relu", 3), ("relu", 10), ("erf", 2), ("erf", 3), ("erf", 20)]


def _options(alpha_min, alpha_max, direction=1, ds=0.01):
    # The options of the solve's continuation.
    return ContinuationOptions(
        newton_tol=1e-11,
        ds=ds,
        ds_min=1e-9,
        ds_max=0.15,
        p_min=alpha_min,
        p_max=alpha_max,
        max_steps=4000,
        direction=direction,
    )


def _both(problem, u0, alpha0, options, tangent=None):
    compiled = problem.continuation_problem(u0, alpha0)
    assert compiled.stepper is not None
    python = dataclasses.replace(compiled, stepper=None)
    return (
        continuation(compiled, PALC(), options, tangent=tangent),
        continuation(python, PALC(), options, tangent=tangent),
    )


def _assert_same_branch(fast, slow):
    assert fast.status == slow.status
    assert fast.n_rejected == slow.n_rejected
    assert fast.p.shape == slow.p.shape
    # The corrector accepts a scaled residual of 1e-11 and then polishes
    # while each update halves it, so that two paths can stop at different
    # rounding; where the scaled Jacobian's smallest singular value is near
    # 0.1 (erf K = 20) that leaves 2e-11 between the states.
    np.testing.assert_allclose(fast.u, slow.u, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast.p, slow.p, rtol=1e-10)
    np.testing.assert_array_equal(fast.n_unstable, slow.n_unstable)
    np.testing.assert_array_equal(fast.newton_iterations, slow.newton_iterations)
    assert [p.kind for p in fast.special_points] == [p.kind for p in slow.special_points]
    for a, b in zip(fast.special_points, slow.special_points):
        # Located until the test function is below 1e-9 of its scale; where
        # the test is flat in p (a stability change of erf K = 20 at alpha =
        # 251) that leaves p uncertain to 3e-8.
        assert a.p == pytest.approx(b.p, rel=1e-6)
        assert a.n_unstable_before == b.n_unstable_before
        assert a.n_unstable_after == b.n_unstable_after


@pytest.mark.parametrize("name, K", CASES)
def test_unspecialized_branch_matches_python(name, K):
    problem = rs.SpecializationProblem(name, K)
    u0 = problem.unspecialized_start(0.05)
    fast, slow = _both(problem, u0, 0.05, _options(0.05, 100.0 * K))
    _assert_same_branch(fast, slow)
    assert fast.status == "parameter_bound"
    assert fast.p[-1] == pytest.approx(100.0 * K, rel=1e-15)


@pytest.mark.parametrize("name, K", CASES)
def test_specialized_branch_matches_python(name, K):
    """A specialised branch traced both ways from a minimum at large alpha,
    through its fold."""
    problem = rs.SpecializationProblem(name, K)
    alpha = 20.0 if name == "relu" else 100.0
    u = problem.local_minimum([0.95, 0.0, 0.0], alpha)
    for direction in (-1, 1):
        fast, slow = _both(problem, u, alpha, _options(0.05, 4 * alpha, direction))
        _assert_same_branch(fast, slow)


def test_branch_from_tangent_matches_python():
    """A start with an explicit tangent (as on a crossing branch) skips the
    events of the first step on both paths."""
    problem = rs.SpecializationProblem("erf", 3)
    u = problem.local_minimum([0.95, 0.0, 0.0], 100.0)
    tangent = np.array([0.0, 0.0, 0.0, -1.0])
    fast, slow = _both(problem, u, 100.0, _options(1.0, 200.0, ds=1e-3), tangent)
    _assert_same_branch(fast, slow)


def test_max_steps_status_matches_python():
    problem = rs.SpecializationProblem("relu", 5)
    u0 = problem.unspecialized_start(0.05)
    options = dataclasses.replace(_options(0.05, 100.0), max_steps=12)
    fast, slow = _both(problem, u0, 0.05, options)
    _assert_same_branch(fast, slow)
    assert fast.status == "max_steps"
    assert fast.p.size == 13


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["relu", "erf"]),
    K=st.sampled_from([2, 3, 5, 10, 100]),
    alpha=st.sampled_from([1.0, 7.0, 40.0]),
    x=st.tuples(*[st.floats(-1.0, 1.0)] * 3),
)
def test_local_minimum_matches_python(name, K, alpha, x):
    """The compiled descent finds a minimum wherever the Python one does, and
    every result is a local minimum. Both end with Newton's method to
    1e-12, so that two results near one minimum agree to 1e-8 (the
    Hessian's condition number is below 1e4 at these states). From a saddle
    each escapes along the direction of negative curvature with the sign of
    a rounded gradient, so that the two may reach different minima."""
    problem = rs.SpecializationProblem(name, K)
    u0 = np.array(x) * np.array([1.0, 1.0 / math.sqrt(K - 1), 1.0 / (K - 1)])
    assume(problem.is_valid(u0))
    results = []
    for kind in (problem._kind, None):
        problem._kind = kind
        try:
            results.append(problem.local_minimum(u0, alpha))
        except StationaryPointError:
            results.append(None)
    compiled, python = results
    if python is not None:
        assert compiled is not None
    for u in (compiled, python):
        if u is not None:
            assert problem.n_unstable(u, alpha) == 0
    if compiled is not None and python is not None:
        if np.max(np.abs(compiled - python)) < 1e-3:
            np.testing.assert_allclose(compiled, python, rtol=0, atol=1e-8)


def test_local_minimum_leaves_a_saddle():
    """From a start with R = S exactly, the descent keeps R = S up to
    rounding and reaches the unspecialised saddle (for K = 2 at alpha = 7,
    past the continuous transition at 6.094); it leaves it along the
    direction of negative curvature for a specialised minimum."""
    problem = rs.SpecializationProblem("relu", 2)
    u = problem.local_minimum([0.4375, 0.4375, 0.375], 7.0)
    assert abs(u[0] - u[1]) > 0.1
    assert problem.n_unstable(u, 7.0) == 0


def test_pitchfork_side_branch_reports_one_branch_point():
    """The specialised branch of ReLU K = 2 ends on the unspecialised one at
    a supercritical pitchfork, where it turns in alpha: one branch point,
    not a fold beside it. The event locator reaches the alpha that Newton's
    method on the branch-point equations gives (solve), to the 1e-9 of its
    test functions."""
    problem = rs.SpecializationProblem("relu", 2)
    (located,) = [
        p
        for p in rs.solve(problem, alpha=(0.5, 100.0)).critical_points
        if p.kind == "branch_point"
    ]
    u = problem.local_minimum([0.95, 0.0, 0.0], 20.0)
    fast, slow = _both(problem, u, 20.0, _options(0.05, 80.0, -1))
    for branch in (fast, slow):
        (point,) = branch.special_points
        assert point.kind == "branch_point"
        assert point.p == pytest.approx(located.alpha, rel=1e-9)


def test_branch_start_at_large_alpha_matches_python(caplog):
    """erf K = 99 branches at alpha near 1244, where the Newton steps at
    fixed R - S bounce at the rounding level (1e-7) instead of shrinking;
    both paths accept such an iterate, start the R<S branch there and find
    the same critical points."""
    results = []
    for compiled in (True, False):
        problem = rs.SpecializationProblem("erf", 99)
        if not compiled:
            problem._kind = None
        caplog.clear()
        with caplog.at_level("WARNING", logger="reluspec"):
            results.append(rs.solve(problem, alpha=(1.0, 3000.0)))
        assert not caplog.records
    fast, slow = results
    assert [p.kind for p in fast.critical_points] == [
        p.kind for p in slow.critical_points
    ]
    for a, b in zip(fast.critical_points, slow.critical_points):
        assert a.branches == b.branches
        assert abs(a.alpha - b.alpha) <= a.alpha_error + b.alpha_error
    (branch_point,) = [p for p in fast.critical_points if p.kind == "branch_point"]
    assert "specialized R<S" in branch_point.branches


@pytest.mark.parametrize("K", [20, 1000])
def test_symmetry_breaking_errors_cover_the_python_path(K):
    """The reported error of a symmetry-breaking point includes the error of
    its state: the compiled and the Python solves (whose Newton iterations
    round differently) agree within the sum of their errors. Without that
    part, relu K = 1000's R<S crossing differed by 100 times its error."""
    results = []
    for compiled in (True, False):
        problem = rs.SpecializationProblem("relu", K)
        if not compiled:
            problem._kind = None
        results.append(rs.solve(problem, alpha=(5.0, 8.0)))
    fast, slow = (
        [p for p in r.critical_points if p.kind == "symmetry_breaking"]
        for r in results
    )
    assert len(fast) == len(slow) >= 3
    for a, b in zip(fast, slow):
        assert a.branches == b.branches
        assert abs(a.alpha - b.alpha) <= a.alpha_error + b.alpha_error
