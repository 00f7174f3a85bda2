"""Exact results for the continuation solver: normal forms, a symmetric toy, Bratu.

Every branch also passes the invariants in ``assert_branch_invariants``: the
residual is below tolerance at every point, the stability counts agree with
eigenvalues recomputed here, and every special point lies in its bracket.
"""

import math

import mpmath
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from reluspec.continuation import (
    PALC,
    ContinuationOptions,
    ContinuationProblem,
    continuation,
    switch_branch,
)

# Residuals are corrected to newton_tol = 1e-10 and then polished, so 1e-9
# leaves a margin of ten for rounding in the recomputation.
RESIDUAL_TOL = 1e-9


def recomputed_jacobian(problem, u, p):
    """F_u from the problem's Jacobian, or by central differences here."""
    if problem.jacobian is not None:
        return np.asarray(problem.jacobian(u, p), dtype=float)
    h = 1e-6
    columns = []
    for j in range(u.size):
        step = np.zeros(u.size)
        step[j] = h
        columns.append(
            (problem.residual(u + step, p) - problem.residual(u - step, p)) / (2 * h)
        )
    return np.array(columns).T


def internal_point(branch, u, p):
    q = math.log(p) if branch.parameter_scale == "log" else p
    return np.append(u, q)


def assert_branch_invariants(problem, branch):
    assert len(branch) >= 2, branch.message
    # Residual below tolerance at every point.
    for u, p in zip(branch.u, branch.p):
        assert np.max(np.abs(problem.residual(u.copy(), p))) <= RESIDUAL_TOL

    # Stability counts agree with eigenvalues recomputed with numpy's general
    # eigensolver. Points with an eigenvalue within 1e-7 of zero are skipped,
    # because their count depends on rounding.
    for index, (u, p) in enumerate(zip(branch.u, branch.p)):
        if problem.stability_matrix is not None:
            eigenvalues = np.linalg.eigvals(problem.stability_matrix(u.copy(), p))
        else:
            eigenvalues = np.linalg.eigvals(recomputed_jacobian(problem, u.copy(), p))
        if np.min(np.abs(eigenvalues.real)) < 1e-7:
            continue
        assert branch.n_unstable[index] == np.count_nonzero(eigenvalues.real < 0)

    # Each special point solves the residual, meets its tolerance and lies on
    # the branch between its bracket points: no farther from either end than
    # the ends are from each other.
    for point in branch.special_points:
        first, second = point.bracket
        assert second == first + 1
        assert first >= 0
        assert second < len(branch)
        assert np.max(np.abs(problem.residual(point.u.copy(), point.p))) <= RESIDUAL_TOL
        assert point.test_value <= point.tolerance
        z_a = internal_point(branch, branch.u[first], branch.p[first])
        z_b = internal_point(branch, branch.u[second], branch.p[second])
        z = internal_point(branch, point.u, point.p)
        chord = np.linalg.norm(z_b - z_a)
        assert np.linalg.norm(z - z_a) <= chord * (1 + 1e-6)
        assert np.linalg.norm(z - z_b) <= chord * (1 + 1e-6)
        # With one special point in the interval, its stability counts are
        # those of the bracket points.
        same_interval = [
            other for other in branch.special_points if other.index == first
        ]
        if len(same_interval) == 1:
            assert point.n_unstable_before == branch.n_unstable[first]
            assert point.n_unstable_after == branch.n_unstable[second]


# -- normal forms ---------------------------------------------------------------


def fold_problem(a=1.0, b=1.0, u_c=0.0, p_c=0.0):
    """a (u - u_c)^2 - b (p - p_c): a fold at (u_c, p_c)."""
    return ContinuationProblem(
        residual=lambda u, p: a * (u - u_c) ** 2 - b * (p - p_c),
        jacobian=lambda u, p: np.array([[2 * a * (u[0] - u_c)]]),
        parameter_derivative=lambda u, p: np.array([-b]),
        u0=[u_c + 1.0],
        p0=p_c + a / b,
        name="fold",
    )


@pytest.mark.parametrize("tangent", ["secant", "bordered"])
def test_fold_normal_form(tangent):
    problem = fold_problem()
    branch = continuation(
        problem, PALC(tangent=tangent), ContinuationOptions(p_max=1.0, direction=-1)
    )
    assert_branch_invariants(problem, branch)
    assert branch.status == "parameter_bound"
    assert branch.p[-1] == 1.0
    assert branch.u[-1, 0] == pytest.approx(-1.0, abs=1e-10)
    assert [point.kind for point in branch.special_points] == ["fold"]
    fold = branch.special_points[0]
    # u = +-sqrt(p): at |tau_q| <= 1e-9 the point is within about 1e-9 of the
    # fold in u, hence within 1e-18 in p, plus the corrector's residual.
    assert abs(fold.p) <= 1e-12
    assert abs(fold.u[0]) <= 1e-8
    assert fold.multiplicity == 1
    assert (fold.n_unstable_before, fold.n_unstable_after) == (0, 1)
    assert abs(fold.null_vectors[0, 0]) == pytest.approx(1.0)


@settings(max_examples=15, deadline=None)
@given(
    a=st.floats(0.2, 5.0),
    b=st.floats(0.2, 5.0),
    u_c=st.floats(-3.0, 3.0),
    p_c=st.floats(-3.0, 3.0),
)
def test_fold_location_property(a, b, u_c, p_c):
    problem = fold_problem(a, b, u_c, p_c)
    options = ContinuationOptions(p_max=p_c + a / b, direction=-1, ds=0.05)
    branch = continuation(problem, PALC(), options)
    assert_branch_invariants(problem, branch)
    folds = branch.special("fold")
    assert len(folds) == 1
    assert branch.special("branch_point") == []
    # p - p_c = a (u - u_c)^2 / b: an error of 1e-8 in u gives 1e-15 in p;
    # the residual tolerance 1e-10 / b dominates.
    assert folds[0].p == pytest.approx(p_c, abs=1e-9)
    assert folds[0].u[0] == pytest.approx(u_c, abs=1e-6)


def transcritical_problem(slope=1.0, curvature=1.0, p_c=0.0, u0=0.0, p0=-0.93):
    """u (slope (p - p_c) - curvature u).

    Its branches are u = 0 and u = slope (p - p_c) / curvature.
    """
    return ContinuationProblem(
        residual=lambda u, p: u * (slope * (p - p_c) - curvature * u),
        jacobian=lambda u, p: np.array([[slope * (p - p_c) - 2 * curvature * u[0]]]),
        parameter_derivative=lambda u, p: slope * u,
        u0=[u0],
        p0=p0,
        name="transcritical",
    )


@settings(max_examples=12, deadline=None)
@given(
    slope=st.floats(0.3, 3.0),
    curvature=st.floats(0.3, 3.0),
    p_c=st.floats(-0.5, 0.5),
)
def test_transcritical_switching_property(slope, curvature, p_c):
    problem = transcritical_problem(slope, curvature, p_c, p0=p_c - 0.93)
    options = ContinuationOptions(p_min=p_c - 1.0, p_max=p_c + 1.0, ds=0.07)
    branch = continuation(problem, PALC(), options)
    assert_branch_invariants(problem, branch)
    assert [point.kind for point in branch.special_points] == ["branch_point"]
    point = branch.special_points[0]
    # On u = 0 the test function is linear in p with slope of order one.
    assert point.p == pytest.approx(p_c, abs=1e-9)
    assert point.multiplicity == 1
    assert (point.n_unstable_before, point.n_unstable_after) == (1, 0)

    new_branches = switch_branch(problem, branch, point, PALC(), options)
    assert len(new_branches) == 2
    sides = set()
    for new in new_branches:
        assert_branch_invariants(problem, new)
        expected = slope * (new.p - p_c) / curvature
        assert np.max(np.abs(new.u[:, 0] - expected)) <= 1e-9
        # Different from the parent u = 0 away from the branch point.
        assert np.max(np.abs(new.u[:, 0])) > 0.1
        sides.add(np.sign(new.p[-1] - p_c))
    assert sides == {-1.0, 1.0}


def test_transcritical_along_crossing_branch():
    problem = transcritical_problem(u0=-0.9, p0=-0.9)
    branch = continuation(problem, PALC(), ContinuationOptions(p_max=1.0, ds=0.07))
    assert_branch_invariants(problem, branch)
    assert [point.kind for point in branch.special_points] == ["branch_point"]
    point = branch.special_points[0]
    assert point.p == pytest.approx(0.0, abs=1e-9)
    assert point.u[0] == pytest.approx(0.0, abs=1e-9)
    # Along u = p the Jacobian p - 2u = -p changes sign: stable for p < 0.
    assert (point.n_unstable_before, point.n_unstable_after) == (0, 1)


def pitchfork_problem(u0, p0, with_derivatives=True):
    """u p - u^3: branches u = 0 and u^2 = p."""
    jacobian = None
    parameter_derivative = None
    if with_derivatives:
        jacobian = lambda u, p: np.array([[p - 3 * u[0] ** 2]])  # noqa: E731
        parameter_derivative = lambda u, p: u.copy()  # noqa: E731
    return ContinuationProblem(
        residual=lambda u, p: u * p - u**3,
        jacobian=jacobian,
        parameter_derivative=parameter_derivative,
        u0=[u0],
        p0=p0,
        name="pitchfork",
    )


@pytest.mark.parametrize("with_derivatives", [True, False])
def test_pitchfork_from_trivial_branch(with_derivatives):
    problem = pitchfork_problem(0.0, -0.93, with_derivatives)
    options = ContinuationOptions(p_min=-1.0, p_max=1.0, ds=0.07)
    branch = continuation(problem, PALC(), options)
    assert_branch_invariants(problem, branch)
    assert [point.kind for point in branch.special_points] == ["branch_point"]
    point = branch.special_points[0]
    assert point.p == pytest.approx(0.0, abs=1e-9)
    assert point.multiplicity == 1
    assert (point.n_unstable_before, point.n_unstable_after) == (1, 0)

    new_branches = switch_branch(problem, branch, point, PALC(), options)
    signs = set()
    for new in new_branches:
        assert_branch_invariants(problem, new)
        # Central differences of a finite-difference Jacobian still give the
        # crossing direction, and the corrector then solves exactly.
        assert np.max(np.abs(new.u[:, 0] ** 2 - new.p)) <= 1e-9
        assert new.p[-1] == pytest.approx(1.0)
        signs.add(np.sign(new.u[-1, 0]))
        # The side branches are unstable: F_u = p - 3u^2 = -2p < 0.
        assert np.all(new.n_unstable[1:] == 1)
    assert signs == {-1.0, 1.0}


@pytest.mark.parametrize("tangent", ["secant", "bordered"])
def test_pitchfork_along_side_branch(tangent):
    problem = pitchfork_problem(1.0, 1.0)
    branch = continuation(
        problem,
        PALC(tangent=tangent),
        ContinuationOptions(p_max=1.0, ds=0.1, direction=-1),
    )
    assert_branch_invariants(problem, branch)
    assert branch.u[-1, 0] == pytest.approx(-1.0)
    # p = u^2 turns at the branch point, so tau_q and det B both change sign
    # there; the point is reported once, as a branch point.
    assert [point.kind for point in branch.special_points] == ["branch_point"]
    point = branch.special_points[0]
    assert abs(point.u[0]) <= 1e-8
    assert abs(point.p) <= 1e-15
    assert point.multiplicity == 1
    assert (point.n_unstable_before, point.n_unstable_after) == (1, 1)


# -- permutation-symmetric toy ---------------------------------------------------


def symmetric_problem(K):
    r"""Gradient of f = K/2 (m - sin p)^2 + sum_k [a/2 d_k^2 + d_k^4/4].

    Here m is the mean of u, d_k = u_k - m and a = 1 - p + m^2 / 2. The
    symmetric branch u_k = sin p has Hessian eigenvalue 1 along (1, ..., 1)
    and a(sin p, p) on the K - 1 dimensional complement, so it has a branch
    point of multiplicity K - 1 where 1 - p + sin(p)^2 / 2 = 0.
    """

    def residual(u, p):
        m = u.mean()
        d = u - m
        a = 1 - p + 0.5 * m**2
        return (
            (m - np.sin(p))
            + m / (2 * K) * np.sum(d**2)
            + a * d
            + d**3
            - np.sum(d**3) / K
        )

    def jacobian(u, p):
        m = u.mean()
        d = u - m
        a = 1 - p + 0.5 * m**2
        total = np.sum(d**2)
        jac = (1 / K + total / (2 * K**2)) * np.ones((K, K))
        jac += (m / K) * (d[None, :] + d[:, None])
        jac += a * (np.eye(K) - 1 / K)
        jac += 3 * np.diag(d**2) - 3 * (d**2)[:, None] / K - 3 * (d**2)[None, :] / K
        jac += 3 * total / K**2
        return jac

    def parameter_derivative(u, p):
        return -np.cos(p) - (u - u.mean())

    return ContinuationProblem(
        residual=residual,
        jacobian=jacobian,
        parameter_derivative=parameter_derivative,
        stability_matrix=jacobian,
        u0=np.zeros(K),
        p0=0.0,
        name=f"symmetric K={K}",
    )


def test_symmetric_problem_derivatives():
    """The toy's Jacobian and dF/dp agree with central differences."""
    problem = symmetric_problem(4)
    rng = np.random.default_rng(1)
    u = rng.normal(size=4)
    p = 0.7
    h = 1e-6
    numeric = np.array(
        [
            (problem.residual(u + h * e, p) - problem.residual(u - h * e, p)) / (2 * h)
            for e in np.eye(4)
        ]
    ).T
    # Central differences with h = 1e-6 are accurate to about 1e-9 here.
    assert np.max(np.abs(numeric - problem.jacobian(u, p))) <= 1e-8
    numeric_p = (problem.residual(u, p + h) - problem.residual(u, p - h)) / (2 * h)
    assert np.max(np.abs(numeric_p - problem.parameter_derivative(u, p))) <= 1e-8


@pytest.mark.parametrize("K", [2, 3, 4, 5])
def test_symmetric_branch_point_multiplicity(K):
    problem = symmetric_problem(K)
    branch = continuation(problem, PALC(), ContinuationOptions(p_max=3.0, ds=0.1))
    assert_branch_invariants(problem, branch)
    p_star = float(mpmath.findroot(lambda p: 1 - p + mpmath.sin(p) ** 2 / 2, 1.5))
    assert [point.kind for point in branch.special_points] == ["branch_point"]
    point = branch.special_points[0]
    assert point.multiplicity == K - 1
    assert point.null_vectors.shape == (K, K - 1)
    # The null space is the complement of (1, ..., 1).
    assert np.max(np.abs(point.null_vectors.sum(axis=0))) <= 1e-6
    # The crossing eigenvalue a(p) has slope about -1 in s, so |test| <= 1e-9
    # places p within a few 1e-9.
    assert point.p == pytest.approx(p_star, abs=1e-8)
    assert (point.n_unstable_before, point.n_unstable_after) == (0, K - 1)
    if K > 2:
        with pytest.raises(ValueError, match="reduced problem"):
            switch_branch(problem, branch, point)


# -- Bratu problem ------------------------------------------------------------------


def bratu_problem(N):
    """-(u'' + lam e^u) = 0 on (0, 1), u(0) = u(1) = 0, on N intervals.

    The sign makes F_u positive definite on the lower branch, so the lower
    branch is stable under du/dt = -F, as it is under u_t = u'' + lam e^u.
    """
    h = 1.0 / N
    n = N - 1
    second = (
        np.diag(-2.0 * np.ones(n))
        + np.diag(np.ones(n - 1), 1)
        + np.diag(np.ones(n - 1), -1)
    ) / h**2
    return ContinuationProblem(
        residual=lambda u, lam: -(second @ u) - lam * np.exp(u),
        jacobian=lambda u, lam: -second - lam * np.diag(np.exp(u)),
        parameter_derivative=lambda u, lam: -np.exp(u),
        u0=np.zeros(n),
        p0=0.5,
        name=f"Bratu N={N}",
    )


def bratu_critical_lambda():
    r"""lambda* of the continuous Bratu problem, from its exact solution.

    u(x) = -2 ln[cosh((x - 1/2) theta / 2) / cosh(theta / 4)] solves the
    problem when theta = sqrt(2 lambda) cosh(theta / 4), that is
    lambda = theta^2 / (2 cosh^2(theta / 4)). Its maximum over theta, with
    y = theta / 4, is at y tanh(y) = 1 and equals 8 y^2 / cosh^2(y).
    """
    with mpmath.workdps(40):
        y = mpmath.findroot(lambda y: y * mpmath.tanh(y) - 1, 1.2)
        return 8 * y**2 / mpmath.cosh(y) ** 2


def test_bratu_exact_solution_formula():
    """The closed form behind lambda* solves u'' + lambda e^u = 0."""
    with mpmath.workdps(30):
        theta = mpmath.mpf(3)
        lam = theta**2 / (2 * mpmath.cosh(theta / 4) ** 2)

        def u(x):
            return -2 * mpmath.log(
                mpmath.cosh((x - 0.5) * theta / 2) / mpmath.cosh(theta / 4)
            )

        for x in (mpmath.mpf("0.1"), mpmath.mpf("0.5"), mpmath.mpf("0.77")):
            assert abs(mpmath.diff(u, x, 2) + lam * mpmath.exp(u(x))) < 1e-20
        assert abs(u(0)) < 1e-25
        assert abs(u(1)) < 1e-25


def discrete_bratu_fold(problem, guess_u, guess_lam):
    """Solve F = 0, F_u phi = 0, phi . phi = 1 with scipy, not with the solver."""
    n = problem.n

    def system(x):
        u, phi, lam = x[:n], x[n : 2 * n], x[2 * n]
        return np.concatenate(
            [problem.residual(u, lam), problem.jacobian(u, lam) @ phi, [phi @ phi - 1]]
        )

    phi0 = np.sin(np.pi * np.arange(1, n + 1) / (n + 1))
    x0 = np.concatenate([guess_u, phi0 / np.linalg.norm(phi0), [guess_lam]])
    solution = scipy.optimize.fsolve(system, x0, xtol=1e-13)
    assert np.max(np.abs(system(solution))) < 1e-8
    return solution[2 * n]


def test_bratu_fold_converges_to_lambda_star():
    lam_star = float(bratu_critical_lambda())
    folds = {}
    for N in (10, 20, 40, 80):
        problem = bratu_problem(N)
        branch = continuation(
            problem,
            PALC(),
            ContinuationOptions(
                p_min=0.5, p_max=4.0, ds=0.5, ds_max=5.0, max_steps=200
            ),
        )
        assert_branch_invariants(problem, branch)
        assert branch.status == "parameter_bound"
        assert [point.kind for point in branch.special_points] == ["fold"]
        fold = branch.special_points[0]
        assert (fold.n_unstable_before, fold.n_unstable_after) == (0, 1)
        # The fold is the largest lambda on the branch.
        assert fold.p >= branch.p.max() - 1e-12
        folds[N] = fold.p
        if N == 40:
            # The located fold agrees with the fold system solved by scipy;
            # the difference is set by newton_tol and locate_tol.
            reference = discrete_bratu_fold(problem, fold.u, fold.p)
            assert fold.p == pytest.approx(reference, abs=1e-10)
    # Second-order finite differences: the error falls by 4 per halving of h.
    errors = [folds[N] - lam_star for N in (10, 20, 40, 80)]
    assert all(error < 0 for error in errors)
    for coarse, fine in zip(errors[:-1], errors[1:]):
        assert coarse / fine == pytest.approx(4.0, abs=0.05)
    # Richardson extrapolation removes the h^2 term; the h^4 term left at
    # N = 80 is about 6e-8 (measured ratio of the extrapolated errors: 16).
    extrapolated = (4 * folds[80] - folds[40]) / 3
    assert extrapolated == pytest.approx(lam_star, abs=2e-7)


# -- log scale and closed curves --------------------------------------------------


def test_log_scale_s_curve():
    """u^3 - 3u = ln p: folds at u = -1, p = e^2 and u = 1, p = e^-2."""
    problem = ContinuationProblem(
        residual=lambda u, p: u**3 - 3 * u - np.log(p),
        jacobian=lambda u, p: np.array([[3 * u[0] ** 2 - 3]]),
        parameter_derivative=lambda u, p: np.array([-1 / p]),
        u0=[-2.5],
        p0=1e-3,
        parameter_scale="log",
        name="S-curve",
    )
    branch = continuation(
        problem, PALC(), ContinuationOptions(p_min=1e-3, p_max=1e4, ds=0.1)
    )
    assert_branch_invariants(problem, branch)
    assert branch.p[-1] == pytest.approx(1e4, rel=1e-14)
    # Seven decades with two folds in well under a hundred steps.
    assert len(branch) < 100
    folds = branch.special("fold")
    assert [fold.p for fold in folds] == pytest.approx(
        [math.exp(2), math.exp(-2)], rel=1e-12
    )
    assert [fold.u[0] for fold in folds] == pytest.approx([-1.0, 1.0], abs=1e-6)
    assert len(branch.special_points) == 2
    # The middle part of the S is unstable: F_u = 3u^2 - 3 < 0 for |u| < 1.
    assert (folds[0].n_unstable_before, folds[0].n_unstable_after) == (0, 1)
    assert (folds[1].n_unstable_before, folds[1].n_unstable_after) == (1, 0)


def test_circle_closes():
    problem = ContinuationProblem(
        residual=lambda u, p: u**2 + p**2 - 1, u0=[0.3], p0=0.5, name="circle"
    )
    branch = continuation(problem, PALC(), ContinuationOptions(ds=0.1))
    assert_branch_invariants(problem, branch)
    assert branch.status == "completed"
    assert sorted(fold.p for fold in branch.special("fold")) == pytest.approx(
        [-1, 1], abs=1e-12
    )
    assert len(branch.special_points) == 2


# -- stability changes that are neither folds nor branch points -------------------


def test_complex_pair_crossing_is_stability_change():
    """F = A(p) u with eigenvalues p +- i: no branch point, two directions change."""

    def matrix(p):
        return np.array([[p, 1.0], [-1.0, p]])

    problem = ContinuationProblem(
        residual=lambda u, p: matrix(p) @ u,
        jacobian=lambda u, p: matrix(p),
        parameter_derivative=lambda u, p: u.copy(),
        u0=[0.0, 0.0],
        p0=-0.93,
    )
    branch = continuation(problem, PALC(), ContinuationOptions(p_max=1.0, ds=0.07))
    assert_branch_invariants(problem, branch)
    assert [point.kind for point in branch.special_points] == ["stability_change"]
    point = branch.special_points[0]
    assert point.p == pytest.approx(0.0, abs=1e-9)
    assert point.multiplicity == 2
    assert (point.n_unstable_before, point.n_unstable_after) == (2, 0)
    assert point.null_vectors is None
    assert np.iscomplexobj(branch.eigenvalues)


def test_separate_stability_matrix():
    problem = ContinuationProblem(
        residual=lambda u, p: u - p,
        stability_matrix=lambda u, p: np.array([[p - 0.5]]),
        u0=[-1.0],
        p0=-1.0,
    )
    branch = continuation(problem, PALC(), ContinuationOptions(p_max=1.0, ds=0.07))
    assert_branch_invariants(problem, branch)
    assert [point.kind for point in branch.special_points] == ["stability_change"]
    point = branch.special_points[0]
    assert point.p == pytest.approx(0.5, abs=1e-9)
    assert (point.n_unstable_before, point.n_unstable_after) == (1, 0)


def test_scaled_residual_branch_point():
    """A residual of size 1e4: the branch-point tolerance scales with |F_z|."""
    scale = 1e4
    problem = ContinuationProblem(
        residual=lambda u, p: scale * (u * (p - 1.3) - u**3 + 0.2 * u**2),
        jacobian=lambda u, p: (
            scale * np.array([[p - 1.3 - 3 * u[0] ** 2 + 0.4 * u[0]]])
        ),
        parameter_derivative=lambda u, p: scale * u,
        u0=[0.0],
        p0=0.2,
        name="scaled",
    )
    options = ContinuationOptions(p_max=2.0, ds=0.1, newton_tol=1e-7)
    branch = continuation(problem, PALC(), options)
    assert [point.kind for point in branch.special_points] == ["branch_point"]
    point = branch.special_points[0]
    assert point.converged
    # The tolerance is locate_tol times the largest |F_z| at the bracket ends.
    ends = [
        np.linalg.norm(scale * np.array([[p - 1.3 - 3 * u**2 + 0.4 * u, u]]), 2)
        for u, p in zip(branch.u[list(point.bracket), 0], branch.p[list(point.bracket)])
    ]
    assert point.tolerance == pytest.approx(1e-9 * max(ends), rel=1e-6)
    assert point.test_value <= point.tolerance
    # The trivial branch's test is linear in p with slope 1e4.
    assert point.p == pytest.approx(1.3, abs=1e-9)
    assert np.max(np.abs(problem.residual(point.u, point.p))) <= 1e-7
